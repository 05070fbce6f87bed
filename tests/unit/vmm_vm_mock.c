/* tests/unit/vmm_vm_mock.c - a whole VM (memory, platform, devices, ACPI, a loaded kernel) built on the mock hypervisor, no KVM. */
#include "../lib/test.h"

#include "vmm_fixtures.h"

#include "../../vmm/arch/x86/layout.h"
#include "../../vmm/arch/x86/x86.h"
#include "../../lib/io/util.h"
#include "../../vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

/* A small supported-CPUID table, shaped like KVM's answer on Intel. */
static const struct ehv_x86_cpuid_entry host_cpuid[] = {
    {.function = 0, .eax = 0xd, .ebx = 0x756e6547, .edx = 0x49656e69, .ecx = 0x6c65746e},
    {.function = 1,
     .eax = 0x000906ea,
     .ebx = 0x00100800,
     .ecx = 0x7ffafbff | (1u << 5),
     .edx = 0xbfebfbff},
    {.function = 7, .index = 0, .flags = EHV_CPUID_SIGNIFICANT_INDEX, .ebx = 0x029c6fbf},
    {.function = 0xb, .index = 0, .flags = EHV_CPUID_SIGNIFICANT_INDEX, .eax = 1, .ebx = 2},
    {.function = 0x80000000, .eax = 0x80000008},
    {.function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800},
};

static const struct ehv_x86_cpuid_entry *find(const struct ehv_x86_cpuid_entry *t, int n,
					      uint32_t f)
{
	for (int i = 0; i < n; i++)
		if (t[i].function == f)
			return &t[i];
	return NULL;
}

TEST(vmm_vm_builds_on_the_mock_hypervisor)
{
	/* the kernel, as a file */
	char kernel[] = "/tmp/ember-unit-vm-XXXXXX";
	REQUIRE_OK(fx_bzimage_file(kernel, 65536));

	struct ember_config *cfg;
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&cfg));
	REQUIRE_OK(ember_config_set_console(cfg, -1, -1));
	REQUIRE_OK(ember_config_set(cfg, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(cfg, "initrd", kernel, NULL)); /* any file */
	REQUIRE_OK(ember_config_set(cfg, "cpus", "2", NULL));
	REQUIRE_OK(ember_config_set(cfg, "mem", "128M", NULL));
	int r = ember_config_resolve(cfg, &err);
	if (r < 0)
		TEST_FAIL("resolve: %s", err.msg);

	struct ehv_hypervisor *hyp;
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, host_cpuid,
						sizeof(host_cpuid) / sizeof(host_cpuid[0])));

	struct ember_vm *vm = (struct ember_vm *)1;
	CHECK_ERR(ember_vm_create_on(cfg, NULL, &vm, &err), -EINVAL);
	CHECK(vm == NULL);
	r = ember_vm_create_on(cfg, hyp, &vm, &err);
	if (r < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
	REQUIRE(vm->hyp == hyp && vm->hv && vm->ncpus == 2);
	CHECK_EQ(ehv_vm_backend(vm->hv), EHV_BACKEND_MOCK);

	/* memory: every region of guest RAM reached a slot of the mock */
	struct ehv_mock_vm_state st;
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	REQUIRE(vm->mem.nregions >= 1);
	uint64_t mapped = 0;
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct vmm_mem_region *reg = &vm->mem.regions[i];
		CHECK(st.slots[i].used);
		CHECK_EQ(st.slots[i].gpa, reg->gpa);
		CHECK_EQ(st.slots[i].size, reg->size);
		CHECK(st.slots[i].hva == vm->mem.host + reg->offset);
		mapped += st.slots[i].size;
	}
	CHECK_EQ(mapped, 128ull << 20);

	/* the platform step: irqchip and PIT with the dummy speaker port */
	CHECK(st.platform);
	CHECK_EQ(st.platform_flags, EHV_PLATFORM_PIT | EHV_PLATFORM_PIT_SPEAKER_DUMMY);
	CHECK_EQ(st.vcpus_created, 2);

	/* CPUID per vCPU: filtered from the hypervisor's table, APIC ID = index */
	for (unsigned i = 0; i < 2; i++) {
		struct ehv_x86_cpuid_entry c[EHV_CPUID_MAX_ENTRIES];
		int n = ehv_mock_vcpu_cpuid(vm->vcpus[i], c, EHV_CPUID_MAX_ENTRIES);
		REQUIRE(n > 0 && n <= EHV_CPUID_MAX_ENTRIES);
		const struct ehv_x86_cpuid_entry *l1 = find(c, n, 1);
		REQUIRE(l1);
		CHECK_EQ(l1->ebx >> 24, i);		  /* initial APIC ID */
		CHECK(l1->ecx & (1u << 31));		  /* hypervisor bit */
		CHECK(!(l1->ecx & (1u << 5)));		  /* VMX hidden */
		CHECK(find(c, n, 0x40000000) != NULL);	  /* KVM signature leaf added */
		CHECK_EQ(find(c, n, 0)->ebx, 0x756e6547); /* vendor kept */
	}

	/* MSRs: the boot set reached each vCPU */
	struct ehv_msr want[16], got[16];
	unsigned nm = vmm_x86_boot_msrs(want, 16);
	REQUIRE(nm > 0);
	bool nonzero = false;
	for (unsigned i = 0; i < 2; i++) {
		for (unsigned k = 0; k < nm; k++)
			got[k] = (struct ehv_msr){.index = want[k].index, .value = ~0ull};
		REQUIRE_EQ(ehv_vcpu_get_msrs(vm->vcpus[i], got, nm), nm);
		for (unsigned k = 0; k < nm; k++) {
			CHECK_EQ(got[k].value, want[k].value);
			nonzero |= want[k].value != 0;
		}
	}
	CHECK(nonzero); /* so a vCPU that got nothing (reads 0) would fail */

	/* the APs stay as the hypervisor makes them: waiting for INIT/SIPI */
	enum ehv_mp_state mp;
	CHECK_OK(ehv_vcpu_get_mp_state(vm->vcpus[0], &mp));
	CHECK_EQ(mp, EHV_MP_RUNNABLE);
	CHECK_OK(ehv_vcpu_get_mp_state(vm->vcpus[1], &mp));
	CHECK_EQ(mp, EHV_MP_UNINITIALIZED);

	/* the entry registers: vCPU 0 at the 64-bit entry of the loaded bzImage */
	struct ehv_x86_regs regs;
	struct ehv_x86_sregs sregs;
	REQUIRE_OK(ehv_vcpu_get_regs(vm->vcpus[0], &regs));
	REQUIRE_OK(ehv_vcpu_get_sregs(vm->vcpus[0], &sregs));
	CHECK_EQ(regs.rip, 0x100200);
	CHECK_EQ(regs.rsi, X86_ZERO_PAGE_ADDR);
	CHECK_EQ(sregs.cr3, X86_PML4_ADDR);
	CHECK_EQ(sregs.efer, 0x500);
	CHECK_EQ(sregs.cs.l, 1);
	CHECK_EQ(sregs.cs.selector, X86_SEL_CODE64);
	REQUIRE_OK(ehv_vcpu_get_regs(vm->vcpus[1], &regs));
	CHECK_EQ(regs.rip, 0xfff0); /* the AP keeps its reset state */

	/* the kernel's protected-mode code is in guest memory at 1 MiB */
	const uint8_t *k = vmm_mem_ptr(&vm->mem, 0x100000, 16);
	REQUIRE(k);
	for (unsigned i = 0; i < 16; i++)
		CHECK_EQ(k[i], (uint8_t)(i * 7 + 1));
	/* ACPI: the RSDP signature in the BIOS area */
	const uint8_t *acpi = vmm_mem_ptr(&vm->mem, X86_ACPI_ADDR, X86_ACPI_SIZE);
	REQUIRE(acpi);
	CHECK(memmem(acpi, X86_ACPI_SIZE, "RSD PTR ", 8) != NULL);

	/* a device on the PIO bus drives its IRQ line into the mock's irqchip:
	 * the UART with OUT2 set and the THR-empty interrupt enabled raises
	 * IRQ 4 */
	CHECK_EQ(st.levels[X86_IRQ_COM1], 0);
	uint64_t v = 0;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_COM1 + 5, &v, 1, false, 0)); /* LSR */
	CHECK_EQ(v & 0x60, 0x60);
	v = 0x08;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_COM1 + 4, &v, 1, true, 0)); /* MCR: OUT2 */
	v = 0x02;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_COM1 + 1, &v, 1, true, 0)); /* IER: THRI */
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	CHECK_EQ(st.levels[X86_IRQ_COM1], 1);
	CHECK(st.rising[X86_IRQ_COM1] >= 1);

	ember_vm_destroy(vm);
	/* the hypervisor was borrowed: still usable */
	CHECK_EQ(ehv_hypervisor_supported_cpuid(hyp, NULL, 0),
		 (int)(sizeof(host_cpuid) / sizeof(host_cpuid[0])));
	ehv_hypervisor_close(hyp);
	ember_config_free(cfg);
	unlink(kernel);
}

static void rtc_out(struct ember_vm *vm, uint8_t reg, uint8_t val)
{
	uint64_t v = reg;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_RTC, &v, 1, true, 0));
	v = val;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_RTC + 1, &v, 1, true, 0));
}

static uint8_t rtc_in(struct ember_vm *vm, uint8_t reg)
{
	uint64_t v = reg;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_RTC, &v, 1, true, 0));
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_RTC + 1, &v, 1, false, 0));
	return (uint8_t)v;
}

/* Runs the VM's loop for ms milliseconds as its I/O thread would, reading
 * register C whenever IRQ 8 is high (the guest's handler). Returns the
 * rising edges of IRQ 8 the mock's irqchip saw meanwhile. */
static uint32_t rtc_run(struct ember_vm *vm, int ms)
{
	struct ehv_mock_vm_state st;
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	uint32_t before = st.rising[X86_IRQ_RTC];
	uint64_t end = vmm_now_ns() + (uint64_t)ms * 1000000;
	while (vmm_now_ns() < end) {
		CHECK(ember_loop_run_once(ember_vm_loop(vm), 5) >= 0);
		REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
		if (st.levels[X86_IRQ_RTC])
			CHECK(rtc_in(vm, 0x0c) & 0x80); /* IRQF, cleared by the read */
	}
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	return st.rising[X86_IRQ_RTC] - before;
}

/* The board drives the RTC's interrupts with a timer of the VM's loop:
 * enabling the periodic interrupt (register B.PIE) at rate 6 of register A
 * makes IRQ 8 rise about 1024 times a second, a slower rate fewer times,
 * and clearing PIE stops it. */
TEST(vmm_vm_rtc_interrupts_come_from_the_boards_timer)
{
	size_t len;
	uint8_t *bz = fx_bzimage(65536, &len);
	REQUIRE(bz);
	char kernel[] = "/tmp/ember-unit-vm-XXXXXX";
	int kfd = mkstemp(kernel);
	REQUIRE(kfd >= 0);
	REQUIRE(write(kfd, bz, len) == (ssize_t)len);
	close(kfd);
	free(bz);
	struct ember_config *cfg;
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&cfg));
	REQUIRE_OK(ember_config_set_console(cfg, -1, -1));
	REQUIRE_OK(ember_config_set(cfg, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(cfg, "initrd", kernel, NULL));
	REQUIRE_OK(ember_config_set(cfg, "mem", "128M", NULL));
	if (ember_config_resolve(cfg, &err) < 0)
		TEST_FAIL("resolve: %s", err.msg);
	struct ehv_hypervisor *hyp;
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, host_cpuid,
						sizeof(host_cpuid) / sizeof(host_cpuid[0])));
	struct ember_vm *vm;
	if (ember_vm_create_on(cfg, hyp, &vm, &err) < 0)
		TEST_FAIL("create on the mock: %s", err.msg);

	/* nothing enabled: no interrupt */
	CHECK_EQ(rtc_run(vm, 100), 0);
	/* PIE at 1024 Hz (A = 0x26, the reset value) */
	rtc_out(vm, 0x0a, 0x26);
	rtc_out(vm, 0x0b, 0x42);
	uint32_t fast = rtc_run(vm, 200);
	TEST_LOG("IRQ 8 at 1024 Hz: %u rising edges in 200 ms", fast);
	CHECK(fast >= 20);  /* a loaded host's loop still runs the timer */
	CHECK(fast <= 207); /* never more than the rate allows */
	/* 8 Hz (rate 13) */
	rtc_out(vm, 0x0a, 0x2d);
	uint32_t slow = rtc_run(vm, 500);
	TEST_LOG("IRQ 8 at 8 Hz: %u rising edges in 500 ms", slow);
	CHECK(slow >= 2 && slow <= 6);
	/* PIE cleared: the timer stops */
	rtc_out(vm, 0x0b, 0x02);
	rtc_in(vm, 0x0c);
	CHECK_EQ(rtc_run(vm, 200), 0);
	/* devices paused (what ember_vm_pause sets): the guest's enable is
	 * seen only at the kick after resume, then it ticks again */
	pthread_mutex_lock(&vm->dev_lock);
	vm->devs_paused = true;
	pthread_mutex_unlock(&vm->dev_lock);
	rtc_out(vm, 0x0a, 0x26);
	rtc_out(vm, 0x0b, 0x42);
	rtc_in(vm, 0x0c);
	CHECK_EQ(rtc_run(vm, 200), 0);
	pthread_mutex_lock(&vm->dev_lock);
	vm->devs_paused = false;
	pthread_mutex_unlock(&vm->dev_lock);
	vmm_board_devices_kick(vm);
	uint32_t resumed = rtc_run(vm, 200);
	TEST_LOG("IRQ 8 at 1024 Hz after resume: %u rising edges in 200 ms", resumed);
	CHECK(resumed >= 20);

	ember_vm_destroy(vm);
	ehv_hypervisor_close(hyp);
	ember_config_free(cfg);
	unlink(kernel);
}
