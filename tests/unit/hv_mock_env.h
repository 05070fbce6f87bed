/* tests/unit/hv_mock_env.h - the mock backend's struct hvt_backend: the shared guests as exit scripts. */
#ifndef EMBER_TESTS_HV_MOCK_ENV_H
#define EMBER_TESTS_HV_MOCK_ENV_H

#include "hv_bodies.h"

struct hvt_mock_env {
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
};

static void hvt_mock_open(void **out)
{
	struct hvt_mock_env *env = calloc(1, sizeof(*env));
	REQUIRE(env);
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &env->hyp));
	REQUIRE_OK(ehv_vm_create(env->hyp, &env->vm));
	*out = env;
}

static void hvt_mock_close(void *p)
{
	struct hvt_mock_env *env = p;
	ehv_vm_destroy(env->vm);
	ehv_hypervisor_close(env->hyp);
	free(env);
}

static inline struct ehv_mock_step hvt_step_exit(enum ehv_exit_reason reason)
{
	struct ehv_mock_step s;
	memset(&s, 0, sizeof(s));
	s.kind = EHV_MOCK_EXIT;
	s.exit.reason = reason;
	return s;
}

static inline struct ehv_mock_step hvt_step_io_write(uint16_t port, uint8_t width, uint64_t data)
{
	struct ehv_mock_step s = hvt_step_exit(EHV_EXIT_IO_WRITE);
	s.exit.u.io_write.port = port;
	s.exit.u.io_write.width = width;
	s.exit.u.io_write.count = 1;
	s.exit.u.io_write.data = data;
	return s;
}

static inline struct ehv_mock_step hvt_step_mmio_write(uint64_t addr, uint8_t width, uint64_t data)
{
	struct ehv_mock_step s = hvt_step_exit(EHV_EXIT_MMIO_WRITE);
	s.exit.u.mmio_write.addr = addr;
	s.exit.u.mmio_write.width = width;
	s.exit.u.mmio_write.data = data;
	return s;
}

static inline struct ehv_mock_step hvt_step_mmio_read(uint64_t addr, uint8_t width)
{
	struct ehv_mock_step s = hvt_step_exit(EHV_EXIT_MMIO_READ);
	s.exit.u.mmio_read.addr = addr;
	s.exit.u.mmio_read.width = width;
	s.exit.u.mmio_read.reg = EHV_REG_UNKNOWN;
	return s;
}

static void hvt_mock_vcpu(void *p, uint32_t id, enum hvt_guest g, uint32_t n, uint32_t m,
			  struct ehv_vcpu **out)
{
	struct hvt_mock_env *env = p;
	REQUIRE_OK(ehv_vcpu_create(env->vm, id, out));
	struct ehv_mock_step *steps = calloc(n + m + 8, sizeof(*steps));
	REQUIRE(steps);
	size_t k = 0;
	switch (g) {
	case HVT_SPIN:
		steps[k].kind = EHV_MOCK_SPIN;
		k++;
		break;
	case HVT_OUT_LOOP:
		steps[k] = hvt_step_io_write(HVT_PORT, 1, 0x5a);
		steps[k].repeat = UINT32_MAX;
		steps[k].delay_us = 20;
		k++;
		break;
	case HVT_COUNTED:
		for (uint32_t i = 0; i < n; i++)
			steps[k++] = hvt_step_io_write(HVT_PORT, 1, i & 0xff);
		for (uint32_t i = 0; i < m; i++)
			steps[k++] = hvt_step_mmio_write(HVT_MMIO_ADDR, 1, i & 0xff);
		steps[k++] = hvt_step_exit(EHV_EXIT_HALT);
		break;
	case HVT_MMIO_READ:
		steps[k++] = hvt_step_mmio_read(HVT_MMIO_ADDR, 4);
		steps[k++] = hvt_step_io_write(HVT_PORT + 1, 4, 0); /* the mock cannot echo */
		steps[k++] = hvt_step_exit(EHV_EXIT_HALT);
		break;
	}
	REQUIRE_OK(ehv_mock_vcpu_script(*out, steps, k));
	free(steps);
}

static const struct hvt_backend hvt_mock_backend = {
    .name = "mock",
    .open = hvt_mock_open,
    .close = hvt_mock_close,
    .vcpu = hvt_mock_vcpu,
};

#endif
