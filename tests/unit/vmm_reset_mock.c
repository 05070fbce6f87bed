/* tests/unit/vmm_reset_mock.c - the VM's reset path (--reboot restart, ember_vm_reset) on the mock hypervisor. */
#include "../lib/test.h"

#include "hv_mock_env.h"
#include "vmm_fixtures.h"

#include "../../vmm/arch/x86/layout.h"
#include "../../vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/*
 * A mock VM whose vCPU 0 writes the ACPI reset register after a while. The
 * test meanwhile changes what a running guest would have changed (vCPU
 * registers, MP state, MSRs, a LAPIC, the PIC's state, guest RAM, a UART
 * register) and, once the machine was reset, checks that every one of them
 * is back to its boot value while the VM kept running in the same process.
 */

#define KVMCLOCK_MSR 0x4b564d01u /* MSR_KVM_SYSTEM_TIME_NEW */
#define TSC_MSR	     0x10u

struct reset_vm {
	char kernel[32];
	struct ember_config *cfg;
	struct ehv_hypervisor *hyp;
	struct ember_vm *vm;
};

static void reset_vm_create(struct reset_vm *m, const char *reboot)
{
	snprintf(m->kernel, sizeof(m->kernel), "/tmp/ember-unit-reset-XXXXXX");
	REQUIRE_OK(fx_bzimage_file(m->kernel, 65536));
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&m->cfg));
	REQUIRE_OK(ember_config_set_console(m->cfg, -1, -1));
	REQUIRE_OK(ember_config_set(m->cfg, "kernel", m->kernel, NULL));
	REQUIRE_OK(ember_config_set(m->cfg, "initrd", m->kernel, NULL));
	REQUIRE_OK(ember_config_set(m->cfg, "cpus", "2", NULL));
	REQUIRE_OK(ember_config_set(m->cfg, "mem", "128M", NULL));
	if (reboot)
		REQUIRE_OK(ember_config_set(m->cfg, "reboot", reboot, NULL));
	if (ember_config_resolve(m->cfg, &err) < 0)
		TEST_FAIL("resolve: %s", err.msg);
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &m->hyp));
	static const uint32_t msrs[] = {TSC_MSR, KVMCLOCK_MSR};
	REQUIRE_OK(ehv_mock_set_msr_lists(m->hyp, msrs, 2, NULL, 0));
	if (ember_vm_create_on(m->cfg, m->hyp, &m->vm, &err) < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
}

static void reset_vm_destroy(struct reset_vm *m)
{
	ember_vm_destroy(m->vm);
	ehv_hypervisor_close(m->hyp);
	ember_config_free(m->cfg);
	unlink(m->kernel);
}

/* vCPU 0 writes the ACPI reset register after delay_ms, then idles. */
static void script_reboot(struct reset_vm *m, unsigned delay_ms)
{
	struct ehv_mock_step s = hvt_step_io_write(X86_PORT_ACPI_RESET, 1, X86_ACPI_RESET_VALUE);
	s.delay_us = delay_ms * 1000ull;
	REQUIRE_OK(ehv_mock_vcpu_script(m->vm->vcpus[0], &s, 1));
}

static unsigned resets_of(struct ember_vm *vm)
{
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(vm, &info));
	return info.resets;
}

/* Waits up to 5 s for n resets. */
static bool wait_resets(struct ember_vm *vm, unsigned n)
{
	for (int i = 0; i < 500 && resets_of(vm) < n; i++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	return resets_of(vm) >= n;
}

struct msr_job {
	struct ehv_msr m[2];
	bool set;
};
/* vCPU thread: reads or writes the two MSRs of the mock's list. */
static int msr_call(struct ehv_vcpu *vcpu, void *arg)
{
	struct msr_job *j = arg;
	return j->set ? ehv_vcpu_set_msrs(vcpu, j->m, 2) : ehv_vcpu_get_msrs(vcpu, j->m, 2);
}

/* Listener: counts the POWER events "reset". */
static void on_event(const struct ember_vm_event *ev, void *opaque)
{
	if (ev->kind == EMBER_VM_EVENT_POWER && ev->power && !strcmp(ev->power, "reset"))
		__atomic_add_fetch((unsigned *)opaque, 1, __ATOMIC_SEQ_CST);
}

/* vCPU thread: its registers. */
static int regs_call(struct ehv_vcpu *vcpu, void *arg)
{
	return ehv_vcpu_get_regs(vcpu, arg);
}

TEST(vmm_reset_a_guest_reboot_resets_the_machine_in_place)
{
	struct reset_vm m;
	reset_vm_create(&m, "restart");
	struct ember_vm *vm = m.vm;
	CHECK_EQ(resets_of(vm), 0);

	/* the boot state, as built */
	struct ehv_x86_regs regs0;
	struct ehv_lapic_state lapic1, lapic;
	struct ehv_state_blob pic0, blob;
	REQUIRE_OK(ehv_vcpu_get_regs(vm->vcpus[0], &regs0));
	REQUIRE_EQ(regs0.rip, 0x100200); /* the bzImage's 64-bit entry */
	REQUIRE_OK(ehv_vcpu_get_lapic(vm->vcpus[1], &lapic1));
	REQUIRE_OK(ehv_vm_get_irqchip(vm->hv, EHV_IRQCHIP_PIC_MASTER, &pic0));
	uint8_t kernel0[64];
	REQUIRE_OK(vmm_mem_read(&vm->mem, 0x100000, kernel0, sizeof(kernel0)));

	/* what a running guest changes (before the start, as the mock lets) */
	struct ehv_x86_regs r = regs0;
	r.rip = 0xdead000;
	r.rax = 0x1234;
	REQUIRE_OK(ehv_vcpu_set_regs(vm->vcpus[0], &r));
	REQUIRE_OK(ehv_vcpu_get_regs(vm->vcpus[1], &r));
	r.rip = 0xbeef000;
	REQUIRE_OK(ehv_vcpu_set_regs(vm->vcpus[1], &r));
	REQUIRE_OK(ehv_vcpu_set_mp_state(vm->vcpus[1], EHV_MP_RUNNABLE));
	lapic = lapic1;
	lapic.regs[0x80] = 0xf0; /* TPR */
	REQUIRE_OK(ehv_vcpu_set_lapic(vm->vcpus[1], &lapic));
	blob = pic0;
	memset(blob.data, 0x5a, blob.size);
	REQUIRE_OK(ehv_vm_set_irqchip(vm->hv, EHV_IRQCHIP_PIC_MASTER, &blob));
	struct msr_job j = {.m = {{TSC_MSR, 777777}, {KVMCLOCK_MSR, 0x10001}}, .set = true};
	REQUIRE_EQ(msr_call(vm->vcpus[0], &j), 2);
	REQUIRE_OK(vmm_mem_zero(&vm->mem, 0x100000, sizeof(kernel0)));
	REQUIRE_OK(vmm_mem_write(&vm->mem, 32u << 20, "OLD-GUEST-DATA", 14));
	uint64_t v = 0x02;
	REQUIRE_OK(bus_access_u64(vm->pio, X86_PORT_COM1 + 1, &v, 1, true, 0)); /* IER */

	unsigned power_resets = 0;
	REQUIRE_OK(ember_vm_add_event_listener(vm, on_event, &power_resets));
	script_reboot(&m, 200);
	REQUIRE_OK(ember_vm_start(vm));
	if (!wait_resets(vm, 1))
		TEST_FAIL("no machine reset within 5 s");
	CHECK_EQ(resets_of(vm), 1);
	REQUIRE_OK(ember_vm_pause(vm)); /* the vCPUs out of run, to look at them */
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(vm, &info));
	CHECK_EQ(info.state, EMBER_VM_PAUSED); /* it never stopped */
	/* the listeners were told (after the reset, from the I/O thread) */
	for (int i = 0; i < 500 && !__atomic_load_n(&power_resets, __ATOMIC_SEQ_CST); i++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	CHECK_EQ(__atomic_load_n(&power_resets, __ATOMIC_SEQ_CST), 1);

	/* the vCPUs: vCPU 0 at the kernel's entry again, the AP waiting for SIPI */
	REQUIRE_OK(ehv_runner_call(vm->runner, 0, regs_call, &r));
	CHECK_EQ(r.rip, 0x100200);
	CHECK_EQ(r.rax, regs0.rax);
	REQUIRE_OK(ehv_runner_call(vm->runner, 1, regs_call, &r));
	CHECK_EQ(r.rip, 0xfff0);
	enum ehv_mp_state mp;
	REQUIRE_OK(ehv_vcpu_get_mp_state(vm->vcpus[1], &mp));
	CHECK_EQ(mp, EHV_MP_UNINITIALIZED);
	REQUIRE_OK(ehv_vcpu_get_lapic(vm->vcpus[1], &lapic));
	CHECK(memcmp(lapic.regs, lapic1.regs, sizeof(lapic.regs)) == 0);
	/* the MSRs: the paravirtual clock off again, the TSC left counting */
	j.set = false;
	REQUIRE_EQ(ehv_runner_call(vm->runner, 0, msr_call, &j), 2);
	CHECK_EQ(j.m[0].value, 777777);
	CHECK_EQ(j.m[1].value, 0);
	/* the in-kernel PIC */
	REQUIRE_OK(ehv_vm_get_irqchip(vm->hv, EHV_IRQCHIP_PIC_MASTER, &blob));
	CHECK_EQ(blob.size, pic0.size);
	CHECK(memcmp(blob.data, pic0.data, pic0.size) == 0);
	/* RAM: the kernel loaded again, the old guest's data gone */
	uint8_t got[64];
	REQUIRE_OK(vmm_mem_read(&vm->mem, 0x100000, got, sizeof(got)));
	CHECK(memcmp(got, kernel0, sizeof(got)) == 0);
	REQUIRE_OK(vmm_mem_read(&vm->mem, 32u << 20, got, 14));
	static const uint8_t zero[14];
	CHECK(memcmp(got, zero, 14) == 0);
	const uint8_t *acpi = vmm_mem_ptr(&vm->mem, X86_ACPI_ADDR, X86_ACPI_SIZE);
	REQUIRE(acpi);
	CHECK(memmem(acpi, X86_ACPI_SIZE, "RSD PTR ", 8) != NULL);
	/* a device: the UART's interrupt enable register at its power-on 0 */
	v = 0xff;
	REQUIRE_OK(bus_access_u64(vm->pio, X86_PORT_COM1 + 1, &v, 1, false, 0));
	CHECK_EQ(v & 0xff, 0);

	/* the rebooted guest runs on; stopping it is an ordinary stop */
	REQUIRE_OK(ember_vm_resume(vm));
	struct ember_run_result res;
	CHECK_EQ(ember_vm_wait(vm, 200, &res), -ETIMEDOUT);
	REQUIRE_OK(ember_vm_stop(vm));
	REQUIRE_OK(ember_vm_wait(vm, 0, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	CHECK_EQ(resets_of(vm), 1);
	CHECK_EQ(ember_vm_reset(vm), -ESRCH);
	reset_vm_destroy(&m);
}

TEST(vmm_reset_by_default_a_guest_reboot_ends_the_run)
{
	struct reset_vm m;
	reset_vm_create(&m, NULL);
	char val[16];
	CHECK_EQ(ember_config_get(m.cfg, "reboot", val, sizeof(val)), 4);
	CHECK_STR(val, "exit");
	script_reboot(&m, 50);
	REQUIRE_OK(ember_vm_start(m.vm));
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_wait(m.vm, 5000, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REBOOT);
	CHECK(strstr(res.detail, "ACPI reset register") != NULL);
	CHECK_EQ(resets_of(m.vm), 0);
	reset_vm_destroy(&m);
}

TEST(vmm_reset_by_the_library_and_its_errors)
{
	CHECK_ERR(ember_vm_reset(NULL), -EINVAL);
	struct reset_vm m;
	reset_vm_create(&m, NULL);		  /* the API resets whatever "reboot" says */
	CHECK_ERR(ember_vm_reset(m.vm), -EINVAL); /* CREATED: nothing ran */
	REQUIRE_OK(ember_vm_start(m.vm));
	REQUIRE_OK(ember_vm_reset(m.vm));
	if (!wait_resets(m.vm, 1))
		TEST_FAIL("no machine reset within 5 s");
	REQUIRE_OK(ember_vm_reset(m.vm)); /* and again */
	if (!wait_resets(m.vm, 2))
		TEST_FAIL("no second machine reset within 5 s");
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(m.vm, &info));
	CHECK_EQ(info.state, EMBER_VM_RUNNING);
	REQUIRE_OK(ember_vm_stop(m.vm));
	CHECK_ERR(ember_vm_reset(m.vm), -ESRCH);
	reset_vm_destroy(&m);
}

TEST(vmm_reset_config_key_and_option)
{
	struct ember_config *cfg;
	struct ember_error err = {0};
	char val[16];
	REQUIRE_OK(ember_config_new(&cfg));
	CHECK_ERR(ember_config_set(cfg, "reboot", "again", &err), -EINVAL);
	CHECK(strstr(err.msg, "reboot: 'again' is not exit or restart") != NULL);
	char *argv[] = {"--reboot", "restart"};
	REQUIRE_OK(ember_config_parse_args(cfg, 2, argv, NULL, &err));
	CHECK_EQ(ember_config_get(cfg, "reboot", val, sizeof(val)), 7);
	CHECK_STR(val, "restart");
	char *argv2[] = {"--reboot=exit"};
	REQUIRE_OK(ember_config_parse_args(cfg, 1, argv2, NULL, &err));
	CHECK_EQ(ember_config_get(cfg, "reboot", val, sizeof(val)), 4);
	CHECK_STR(val, "exit");
	CHECK(strstr(ember_config_usage(), "--reboot exit|restart") != NULL);
	ember_config_free(cfg);
}
