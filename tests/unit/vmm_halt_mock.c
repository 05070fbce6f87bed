/* tests/unit/vmm_halt_mock.c - the halt detector (vmm/halt.c) on the mock hypervisor: which vCPU states end the run. */
#include "../lib/test.h"

#include "vmm_fixtures.h"

#include "../../vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

/*
 * A mock vCPU whose script is exhausted stays "in the guest" until kicked,
 * making no exit: for the detector, a guest that sits in HLT. Its MP state
 * and RFLAGS are what the test set, so each case says what KVM would report.
 */

struct mock_vm {
	char kernel[32];
	struct ember_config *cfg;
	struct ehv_hypervisor *hyp;
	struct ember_vm *vm;
};

static void mock_vm_create(struct mock_vm *m, unsigned cpus)
{
	size_t len;
	uint8_t *bz = fx_bzimage(65536, &len);
	REQUIRE(bz);
	snprintf(m->kernel, sizeof(m->kernel), "/tmp/ember-unit-halt-XXXXXX");
	int fd = mkstemp(m->kernel);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, bz, len) == (ssize_t)len);
	close(fd);
	free(bz);
	struct ember_error err = {0};
	char n[8];
	snprintf(n, sizeof(n), "%u", cpus);
	REQUIRE_OK(ember_config_new(&m->cfg));
	REQUIRE_OK(ember_config_set_console(m->cfg, -1, -1));
	REQUIRE_OK(ember_config_set(m->cfg, "kernel", m->kernel, NULL));
	REQUIRE_OK(ember_config_set(m->cfg, "initrd", m->kernel, NULL));
	REQUIRE_OK(ember_config_set(m->cfg, "cpus", n, NULL));
	if (ember_config_resolve(m->cfg, &err) < 0)
		TEST_FAIL("resolve: %s", err.msg);
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &m->hyp));
	if (ember_vm_create_on(m->cfg, m->hyp, &m->vm, &err) < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
}

static void mock_vm_destroy(struct mock_vm *m)
{
	ember_vm_destroy(m->vm);
	ehv_hypervisor_close(m->hyp);
	ember_config_free(m->cfg);
	unlink(m->kernel);
}

/* vCPU idx in mp state with RFLAGS.IF as given (before the start). */
static void set_vcpu(struct mock_vm *m, unsigned idx, enum ehv_mp_state mp, bool irq_on)
{
	struct ehv_x86_regs regs;
	REQUIRE_OK(ehv_vcpu_set_mp_state(m->vm->vcpus[idx], mp));
	REQUIRE_OK(ehv_vcpu_get_regs(m->vm->vcpus[idx], &regs));
	regs.rflags = irq_on ? 0x202 : 0x2;
	REQUIRE_OK(ehv_vcpu_set_regs(m->vm->vcpus[idx], &regs));
}

TEST(vmm_halt_every_vcpu_halted_irq_off_stops_the_vm)
{
	struct mock_vm m;
	mock_vm_create(&m, 2);
	set_vcpu(&m, 0, EHV_MP_HALTED, false);
	set_vcpu(&m, 1, EHV_MP_HALTED, false);
	REQUIRE_OK(ember_vm_start(m.vm));
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_wait(m.vm, 10000, &res));
	CHECK_EQ(res.reason, EMBER_STOP_HALTED);
	CHECK(strstr(res.detail, "2 halted, 0 waiting") != NULL);
	/* two looks a second apart, the first after a second without exits */
	CHECK(res.run_ns >= 2000000000ull);
	mock_vm_destroy(&m);
}

TEST(vmm_halt_waiting_ap_counts_as_stuck)
{
	struct mock_vm m;
	mock_vm_create(&m, 2);
	set_vcpu(&m, 0, EHV_MP_HALTED, false); /* vCPU 1: UNINITIALIZED, as created */
	REQUIRE_OK(ember_vm_start(m.vm));
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_wait(m.vm, 10000, &res));
	CHECK_EQ(res.reason, EMBER_STOP_HALTED);
	CHECK(strstr(res.detail, "1 halted, 1 waiting") != NULL);
	mock_vm_destroy(&m);
}

/* Not halted for good: one vCPU with interrupts on, one running, or every
 * vCPU waiting for a start-up IPI with none halted. */
TEST(vmm_halt_leaves_runnable_or_interruptible_guests_alone)
{
	static const struct {
		enum ehv_mp_state mp0, mp1;
		bool irq0, irq1;
	} cases[] = {
	    {EHV_MP_HALTED, EHV_MP_HALTED, false, true},
	    {EHV_MP_RUNNABLE, EHV_MP_HALTED, false, false},
	    {EHV_MP_UNINITIALIZED, EHV_MP_UNINITIALIZED, false, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mock_vm m;
		mock_vm_create(&m, 2);
		set_vcpu(&m, 0, cases[i].mp0, cases[i].irq0);
		set_vcpu(&m, 1, cases[i].mp1, cases[i].irq1);
		REQUIRE_OK(ember_vm_start(m.vm));
		struct ember_run_result res;
		CHECK_ERR(ember_vm_wait(m.vm, 3500, &res), -ETIMEDOUT);
		REQUIRE_OK(ember_vm_stop(m.vm));
		REQUIRE_OK(ember_vm_wait(m.vm, 0, &res));
		CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
		mock_vm_destroy(&m);
	}
}
