/* tests/unit/hv_mock_vm.c - the VM-level operations of the vCPU layer on the mock: platform, lines, eventfds, clock, state, MSRs, queries. */
#include "hv_mock_env.h"

#include <sys/eventfd.h>
#include <unistd.h>

struct vmenv {
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
};

static void vm_open(struct vmenv *e)
{
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &e->hyp));
	REQUIRE_OK(ehv_vm_create(e->hyp, &e->vm));
}

static void vm_close(struct vmenv *e)
{
	ehv_vm_destroy(e->vm);
	ehv_hypervisor_close(e->hyp);
}

static struct ehv_mock_vm_state vm_state(struct ehv_vm *vm)
{
	struct ehv_mock_vm_state st;
	memset(&st, 0, sizeof(st));
	CHECK_OK(ehv_mock_vm_state(vm, &st));
	return st;
}

TEST(hv_mock_platform_once_before_vcpus)
{
	struct vmenv e;
	vm_open(&e);
	/* nothing works on the irqchip before the platform exists */
	CHECK_ERR(ehv_vm_set_irq_line(e.vm, 4, true), -ENXIO);
	CHECK_ERR(ehv_vm_irqfd(e.vm, 0, 4, -1), -ENXIO);
	struct ehv_state_blob b;
	CHECK_ERR(ehv_vm_get_irqchip(e.vm, EHV_IRQCHIP_IOAPIC, &b), -ENXIO);
	CHECK_ERR(ehv_vm_setup_platform(NULL, NULL), -EINVAL);
	CHECK_ERR(ehv_vm_setup_platform(e.vm, &(struct ehv_platform_config){.flags = 1u << 9}),
		  -EINVAL);
	/* speaker dummy without a PIT makes no sense */
	CHECK_ERR(ehv_vm_setup_platform(
		      e.vm, &(struct ehv_platform_config){.flags = EHV_PLATFORM_PIT_SPEAKER_DUMMY}),
		  -EINVAL);
	CHECK(!vm_state(e.vm).platform);

	const unsigned f = EHV_PLATFORM_PIT | EHV_PLATFORM_PIT_SPEAKER_DUMMY;
	CHECK_OK(ehv_vm_setup_platform(e.vm, &(struct ehv_platform_config){.flags = f}));
	struct ehv_mock_vm_state st = vm_state(e.vm);
	CHECK(st.platform);
	CHECK_EQ(st.platform_flags, f);
	/* once: a second call is refused */
	CHECK_ERR(ehv_vm_setup_platform(e.vm, NULL), -EEXIST);

	/* a VM with a vCPU can no longer get a platform */
	struct ehv_vm *vm2;
	struct ehv_vcpu *v;
	REQUIRE_OK(ehv_vm_create(e.hyp, &vm2));
	REQUIRE_OK(ehv_vcpu_create(vm2, 0, &v));
	CHECK_ERR(ehv_vm_setup_platform(vm2, NULL), -EBUSY);
	CHECK(!vm_state(vm2).platform);
	ehv_vcpu_destroy(v);
	ehv_vm_destroy(vm2);
	vm_close(&e);
}

TEST(hv_mock_irq_lines)
{
	struct vmenv e;
	vm_open(&e);
	REQUIRE_OK(ehv_vm_setup_platform(e.vm, NULL));
	CHECK_ERR(ehv_vm_set_irq_line(NULL, 4, true), -EINVAL);
	CHECK_ERR(ehv_vm_set_irq_line(e.vm, EHV_MAX_GSI, true), -EINVAL);
	CHECK_ERR(ehv_vm_pulse_irq(e.vm, EHV_MAX_GSI), -EINVAL);
	CHECK_OK(ehv_vm_set_irq_line(e.vm, 4, true));
	struct ehv_mock_vm_state st = vm_state(e.vm);
	CHECK_EQ(st.levels[4], 1);
	CHECK_EQ(st.rising[4], 1);
	CHECK_EQ(st.last_gsi, 4);
	CHECK(st.last_level);
	/* staying high is no new edge */
	CHECK_OK(ehv_vm_set_irq_line(e.vm, 4, true));
	CHECK_OK(ehv_vm_set_irq_line(e.vm, 4, false));
	st = vm_state(e.vm);
	CHECK_EQ(st.levels[4], 0);
	CHECK_EQ(st.rising[4], 1);
	CHECK_EQ(st.irq_line_calls, 3);
	/* a pulse: one rising edge, the line low afterwards, two calls */
	CHECK_OK(ehv_vm_pulse_irq(e.vm, 8));
	st = vm_state(e.vm);
	CHECK_EQ(st.rising[8], 1);
	CHECK_EQ(st.levels[8], 0);
	CHECK_EQ(st.irq_line_calls, 5);
	CHECK_EQ(st.last_gsi, 8);
	CHECK(!st.last_level);
	vm_close(&e);
}

TEST(hv_mock_irqfd_assign_remove)
{
	struct vmenv e;
	vm_open(&e);
	REQUIRE_OK(ehv_vm_setup_platform(e.vm, NULL));
	int fd = eventfd(0, EFD_CLOEXEC), rfd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(fd >= 0 && rfd >= 0);
	CHECK_ERR(ehv_vm_irqfd(e.vm, -1, 5, -1), -EINVAL);
	CHECK_ERR(ehv_vm_irqfd(e.vm, fd, EHV_MAX_GSI, -1), -EINVAL);
	CHECK_ERR(ehv_vm_irqfd(e.vm, fd, 5, -2), -EINVAL);
	CHECK_OK(ehv_vm_irqfd(e.vm, fd, 5, rfd));
	CHECK_ERR(ehv_vm_irqfd(e.vm, fd, 6, -1), -EEXIST); /* one gsi per eventfd */
	struct ehv_mock_vm_state st = vm_state(e.vm);
	REQUIRE_EQ(st.nirqfds, 1);
	CHECK_EQ(st.irqfds[0].fd, fd);
	CHECK_EQ(st.irqfds[0].gsi, 5);
	CHECK_EQ(st.irqfds[0].resample_fd, rfd);
	CHECK_ERR(ehv_vm_irqfd_remove(e.vm, fd, 6), -ENOENT); /* wrong gsi */
	CHECK_OK(ehv_vm_irqfd_remove(e.vm, fd, 5));
	CHECK_EQ(vm_state(e.vm).nirqfds, 0);
	CHECK_ERR(ehv_vm_irqfd_remove(e.vm, fd, 5), -ENOENT);
	close(fd);
	close(rfd);
	vm_close(&e);
}

TEST(hv_mock_ioeventfd_assign_remove)
{
	struct vmenv e;
	vm_open(&e);
	int fd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(fd >= 0);
	struct ehv_ioeventfd pio = {.addr = 0x500, .len = 2, .flags = EHV_IOEVENT_PIO, .fd = fd};
	struct ehv_ioeventfd mm = {
	    .addr = 0xd0000050, .len = 4, .flags = EHV_IOEVENT_DATAMATCH, .datamatch = 7, .fd = fd};
	/* bad descriptions */
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, NULL), -EINVAL);
	struct ehv_ioeventfd bad = pio;
	bad.len = 3;
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &bad), -EINVAL);
	bad = pio;
	bad.addr = 0xffff;
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &bad), -EINVAL); /* past the last port */
	bad = pio;
	bad.len = 0;
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &bad), -EINVAL); /* PIO needs a length */
	bad = mm;
	bad.len = 0;
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &bad), -EINVAL); /* datamatch needs a length */
	bad = mm;
	bad.addr = UINT64_MAX - 1;
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &bad), -EINVAL);
	bad = mm;
	bad.fd = -1;
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &bad), -EINVAL);
	bad = mm;
	bad.flags |= 1u << 7;
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &bad), -EINVAL);

	CHECK_OK(ehv_vm_ioeventfd(e.vm, &pio));
	CHECK_OK(ehv_vm_ioeventfd(e.vm, &mm));
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &mm), -EEXIST);
	/* KVM's collision rule: another fd on the same words collides too,
	 * another datamatch or address does not */
	int fd2 = eventfd(0, EFD_CLOEXEC);
	REQUIRE(fd2 >= 0);
	struct ehv_ioeventfd mm2 = mm;
	mm2.fd = fd2;
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &mm2), -EEXIST);
	mm2.flags = 0; /* any value: overlaps the datamatch 7 */
	CHECK_ERR(ehv_vm_ioeventfd(e.vm, &mm2), -EEXIST);
	struct ehv_ioeventfd pio2 = pio;
	pio2.flags = 0; /* MMIO at 0x500: another bus */
	CHECK_OK(ehv_vm_ioeventfd(e.vm, &pio2));
	CHECK_OK(ehv_vm_ioeventfd_remove(e.vm, &pio2));
	close(fd2);
	struct ehv_mock_vm_state st = vm_state(e.vm);
	REQUIRE_EQ(st.nioeventfds, 2);
	CHECK_EQ(st.ioeventfds[0].addr, 0x500);
	CHECK_EQ(st.ioeventfds[0].flags, EHV_IOEVENT_PIO);
	CHECK_EQ(st.ioeventfds[1].datamatch, 7);
	/* removal matches the whole description, the datamatch included */
	struct ehv_ioeventfd other = mm;
	other.datamatch = 8;
	CHECK_ERR(ehv_vm_ioeventfd_remove(e.vm, &other), -ENOENT);
	CHECK_OK(ehv_vm_ioeventfd_remove(e.vm, &mm));
	CHECK_OK(ehv_vm_ioeventfd_remove(e.vm, &pio));
	CHECK_EQ(vm_state(e.vm).nioeventfds, 0);
	close(fd);
	vm_close(&e);
}

TEST(hv_mock_clock_round_trip)
{
	struct vmenv e;
	vm_open(&e);
	struct ehv_clock c;
	CHECK_ERR(ehv_vm_get_clock(e.vm, NULL), -EINVAL);
	CHECK_ERR(ehv_vm_set_clock(NULL, &c), -EINVAL);
	CHECK_OK(ehv_vm_set_clock(e.vm, &(struct ehv_clock){.ns = 5000000000ull}));
	CHECK_OK(ehv_vm_get_clock(e.vm, &c));
	/* it runs on from the set value */
	CHECK(c.ns >= 5000000000ull && c.ns < 5000000000ull + 10000000000ull);
	CHECK_EQ(c.flags, EHV_CLOCK_STABLE);
	struct ehv_clock d;
	CHECK_OK(ehv_vm_get_clock(e.vm, &d));
	CHECK(d.ns >= c.ns);
	CHECK_EQ(vm_state(e.vm).clock.ns, 5000000000ull);
	vm_close(&e);
}

TEST(hv_mock_irqchip_pit_state_round_trip)
{
	struct vmenv e;
	vm_open(&e);
	REQUIRE_OK(ehv_vm_setup_platform(e.vm, NULL)); /* no PIT */
	struct ehv_state_blob b;
	CHECK_ERR(ehv_vm_get_pit(e.vm, &b), -ENXIO);
	CHECK_ERR(ehv_vm_get_irqchip(e.vm, EHV_IRQCHIP_MAX, &b), -EINVAL);
	for (int chip = 0; chip < EHV_IRQCHIP_MAX; chip++) {
		REQUIRE_OK(ehv_vm_get_irqchip(e.vm, chip, &b));
		CHECK_EQ(b.backend, EHV_BACKEND_MOCK);
		CHECK_EQ(b.size, EHV_MOCK_STATE_SIZE);
		b.data[0] = (uint8_t)(0x10 + chip);
		b.data[EHV_MOCK_STATE_SIZE - 1] = 0x5a;
		CHECK_OK(ehv_vm_set_irqchip(e.vm, chip, &b));
	}
	for (int chip = 0; chip < EHV_IRQCHIP_MAX; chip++) {
		REQUIRE_OK(ehv_vm_get_irqchip(e.vm, chip, &b));
		CHECK_EQ(b.data[0], 0x10 + chip); /* each chip keeps its own */
		CHECK_EQ(b.data[EHV_MOCK_STATE_SIZE - 1], 0x5a);
	}
	/* a blob of another backend or size is refused */
	b.backend = EHV_BACKEND_KVM;
	CHECK_ERR(ehv_vm_set_irqchip(e.vm, EHV_IRQCHIP_IOAPIC, &b), -EINVAL);
	b.backend = EHV_BACKEND_MOCK;
	b.size = 12;
	CHECK_ERR(ehv_vm_set_irqchip(e.vm, EHV_IRQCHIP_IOAPIC, &b), -EINVAL);
	b.size = EHV_STATE_BLOB_MAX + 1;
	CHECK_ERR(ehv_vm_set_irqchip(e.vm, EHV_IRQCHIP_IOAPIC, &b), -EINVAL);
	vm_close(&e);

	/* with a PIT */
	vm_open(&e);
	REQUIRE_OK(
	    ehv_vm_setup_platform(e.vm, &(struct ehv_platform_config){.flags = EHV_PLATFORM_PIT}));
	REQUIRE_OK(ehv_vm_get_pit(e.vm, &b));
	b.data[3] = 0x77;
	CHECK_OK(ehv_vm_set_pit(e.vm, &b));
	memset(&b, 0, sizeof(b));
	REQUIRE_OK(ehv_vm_get_pit(e.vm, &b));
	CHECK_EQ(b.data[3], 0x77);
	struct ehv_state_blob chip;
	REQUIRE_OK(ehv_vm_get_irqchip(e.vm, EHV_IRQCHIP_PIC_MASTER, &chip));
	CHECK_EQ(chip.data[3], 0); /* the PIT is not a chip */
	vm_close(&e);
}

TEST(hv_mock_vcpu_msrs_mp_state_lapic)
{
	struct vmenv e;
	vm_open(&e);
	struct ehv_vcpu *v0, *v1;
	struct ehv_lapic_state l;
	REQUIRE_OK(ehv_vcpu_create(e.vm, 0, &v0));
	CHECK_ERR(ehv_vcpu_get_lapic(v0, &l), -ENXIO); /* no irqchip, no LAPIC */
	enum ehv_mp_state mp;
	CHECK_OK(ehv_vcpu_get_mp_state(v0, &mp));
	CHECK_EQ(mp, EHV_MP_RUNNABLE);
	ehv_vcpu_destroy(v0);
	vm_close(&e);

	vm_open(&e);
	REQUIRE_OK(ehv_vm_setup_platform(e.vm, NULL));
	REQUIRE_OK(ehv_vcpu_create(e.vm, 0, &v0));
	REQUIRE_OK(ehv_vcpu_create(e.vm, 1, &v1));
	CHECK_EQ(vm_state(e.vm).vcpus_created, 2);

	/* MSRs: set, get back, stop at a refused one */
	struct ehv_msr set[3] = {{0x174, 0x10}, {0xc0000081, 0x23001000000000ull}, {0x1a0, 1}};
	CHECK_EQ(ehv_vcpu_set_msrs(v0, set, 3), 3);
	struct ehv_msr get[4] = {{0x1a0, 0}, {0x174, 0}, {0xc0000081, 0}, {0x999, 42}};
	CHECK_EQ(ehv_vcpu_get_msrs(v0, get, 4), 4);
	CHECK_EQ(get[0].value, 1);
	CHECK_EQ(get[1].value, 0x10);
	CHECK_EQ(get[2].value, 0x23001000000000ull);
	CHECK_EQ(get[3].value, 0); /* never set */
	get[1].value = 0;
	CHECK_EQ(ehv_vcpu_get_msrs(v1, get, 2), 2); /* per vCPU */
	CHECK_EQ(get[1].value, 0);
	CHECK_OK(ehv_mock_vcpu_refuse_msr(v0, 0xc0000081));
	struct ehv_msr two[2] = {{0x174, 0x20}, {0xc0000081, 5}};
	CHECK_EQ(ehv_vcpu_set_msrs(v0, two, 2), 1); /* the first one done */
	CHECK_EQ(ehv_vcpu_get_msrs(v0, get, 4), 2);
	CHECK_EQ(get[1].value, 0x20);
	CHECK_EQ(ehv_vcpu_set_msrs(v0, NULL, 0), 0);
	/* XCR0: x87 at reset, a set value reads back, bit 0 is required */
	uint64_t xcr0 = 0;
	CHECK_OK(ehv_vcpu_get_xcr0(v0, &xcr0));
	CHECK_EQ(xcr0, 1);
	CHECK_OK(ehv_vcpu_set_xcr0(v0, 0x207));
	CHECK_OK(ehv_vcpu_get_xcr0(v0, &xcr0));
	CHECK_EQ(xcr0, 0x207);
	CHECK_ERR(ehv_vcpu_set_xcr0(v0, 0x206), -EINVAL);
	CHECK_ERR(ehv_vcpu_get_xcr0(v0, NULL), -EINVAL);
	CHECK_ERR(ehv_vcpu_set_xcr0(NULL, 1), -EINVAL);
	CHECK_ERR(ehv_vcpu_set_msrs(v0, NULL, 1), -EINVAL);
	CHECK_ERR(ehv_vcpu_get_msrs(v0, get, EHV_MSRS_MAX + 1), -EINVAL);
	CHECK_ERR(ehv_vcpu_get_msrs(NULL, get, 1), -EINVAL);

	/* MP state: the BSP runnable, the AP waiting for INIT/SIPI */
	CHECK_OK(ehv_vcpu_get_mp_state(v0, &mp));
	CHECK_EQ(mp, EHV_MP_RUNNABLE);
	CHECK_OK(ehv_vcpu_get_mp_state(v1, &mp));
	CHECK_EQ(mp, EHV_MP_UNINITIALIZED);
	CHECK_OK(ehv_vcpu_set_mp_state(v1, EHV_MP_HALTED));
	CHECK_OK(ehv_vcpu_get_mp_state(v1, &mp));
	CHECK_EQ(mp, EHV_MP_HALTED);
	CHECK_ERR(ehv_vcpu_set_mp_state(v1, EHV_MP_MAX), -EINVAL);
	CHECK_ERR(ehv_vcpu_get_mp_state(v1, NULL), -EINVAL);

	/* LAPIC: the ID register holds the vCPU id; a round trip keeps it all */
	REQUIRE_OK(ehv_vcpu_get_lapic(v1, &l));
	CHECK_EQ(l.regs[0x23], 1);
	l.regs[0x80] = 0x20; /* TPR */
	l.regs[EHV_LAPIC_SIZE - 1] = 0xee;
	CHECK_OK(ehv_vcpu_set_lapic(v1, &l));
	struct ehv_lapic_state l2;
	REQUIRE_OK(ehv_vcpu_get_lapic(v1, &l2));
	CHECK(memcmp(&l, &l2, sizeof(l)) == 0);
	REQUIRE_OK(ehv_vcpu_get_lapic(v0, &l2));
	CHECK_EQ(l2.regs[0x23], 0);
	CHECK_EQ(l2.regs[0x80], 0);
	ehv_vcpu_destroy(v1);
	ehv_vcpu_destroy(v0);
	vm_close(&e);
}

TEST(hv_mock_supported_cpuid_and_msr_lists)
{
	struct vmenv e;
	vm_open(&e);
	struct ehv_x86_cpuid_entry out[4];
	CHECK_EQ(ehv_hypervisor_supported_cpuid(e.hyp, out, 4), 0); /* empty by default */
	CHECK_ERR(ehv_hypervisor_supported_cpuid(e.hyp, NULL, 4), -EINVAL);
	CHECK_ERR(ehv_hypervisor_supported_cpuid(NULL, out, 4), -EINVAL);
	const struct ehv_x86_cpuid_entry t[3] = {
	    {.function = 0, .eax = 0xd, .ebx = 0x756e6547},
	    {.function = 1, .ecx = 0x80000000},
	    {.function = 7, .index = 0, .flags = EHV_CPUID_SIGNIFICANT_INDEX, .ebx = 9},
	};
	CHECK_OK(ehv_mock_set_supported_cpuid(e.hyp, t, 3));
	CHECK_EQ(ehv_hypervisor_supported_cpuid(e.hyp, NULL, 0), 3); /* size query */
	memset(out, 0, sizeof(out));
	CHECK_EQ(ehv_hypervisor_supported_cpuid(e.hyp, out, 2), 3); /* truncated copy */
	CHECK_EQ(out[1].ecx, 0x80000000u);
	CHECK_EQ(out[2].function, 0); /* not written */
	CHECK_EQ(ehv_hypervisor_supported_cpuid(e.hyp, out, 4), 3);
	CHECK_EQ(out[2].ebx, 9);
	CHECK_EQ(out[2].flags, EHV_CPUID_SIGNIFICANT_INDEX);
	CHECK_ERR(ehv_mock_set_supported_cpuid(e.hyp, t, EHV_CPUID_MAX_ENTRIES + 1), -E2BIG);

	uint32_t l[8];
	CHECK_EQ(ehv_hypervisor_msr_index_list(e.hyp, l, 8), 0);
	CHECK_ERR(ehv_hypervisor_feature_msr_index_list(e.hyp, l, 8), -EOPNOTSUPP);
	const uint32_t idx[3] = {0x174, 0x175, 0xc0000080}, feat[1] = {0x10a};
	CHECK_OK(ehv_mock_set_msr_lists(e.hyp, idx, 3, feat, 1));
	CHECK_EQ(ehv_hypervisor_msr_index_list(e.hyp, l, 8), 3);
	CHECK_EQ(l[2], 0xc0000080u);
	CHECK_EQ(ehv_hypervisor_feature_msr_index_list(e.hyp, l, 8), 1);
	CHECK_EQ(l[0], 0x10a);
	CHECK_ERR(ehv_hypervisor_msr_index_list(e.hyp, NULL, 1), -EINVAL);
	/* the mock-only calls refuse a NULL handle */
	CHECK_ERR(ehv_mock_set_msr_lists(NULL, idx, 3, NULL, 0), -EINVAL);

	/* a vCPU's CPUID as set reaches the mock whole */
	struct ehv_vcpu *v;
	REQUIRE_OK(ehv_vcpu_create(e.vm, 0, &v));
	CHECK_EQ(ehv_mock_vcpu_cpuid(v, out, 4), 0);
	CHECK_OK(ehv_vcpu_set_cpuid(v, t, 3));
	memset(out, 0, sizeof(out));
	CHECK_EQ(ehv_mock_vcpu_cpuid(v, out, 4), 3);
	CHECK(memcmp(out, t, sizeof(t)) == 0);
	ehv_vcpu_destroy(v);
	vm_close(&e);
}

TEST(hv_mock_memory_slots_recorded)
{
	struct vmenv e;
	vm_open(&e);
	static uint8_t mem[2 * 4096] __attribute__((aligned(4096)));
	CHECK_OK(ehv_vm_set_memory(e.vm, 3, 0x100000, 8192, mem, EHV_MEM_READONLY));
	struct ehv_mock_vm_state st = vm_state(e.vm);
	CHECK(st.slots[3].used);
	CHECK_EQ(st.slots[3].gpa, 0x100000);
	CHECK_EQ(st.slots[3].size, 8192);
	CHECK(st.slots[3].hva == mem);
	CHECK_EQ(st.slots[3].flags, EHV_MEM_READONLY);
	CHECK(!st.slots[0].used);
	CHECK_OK(ehv_vm_remove_memory(e.vm, 3));
	CHECK(!vm_state(e.vm).slots[3].used);
	vm_close(&e);
}
