/* tests/kvm/vm_more.c - boot CPU id, PIT reinjection, PMU event filter, VM attributes, stats fd, dirty ring. */
#include "vm_realmode.h"

/* The vCPU that starts runnable is the boot CPU; the others wait for
 * INIT/SIPI (with the in-kernel LAPIC). */
static void check_bsp(struct ekvm_vm *vm, unsigned long bsp)
{
	struct ekvm_vcpu *v[2] = {NULL, NULL};
	for (unsigned long id = 0; id < 2; id++) {
		REQUIRE_OK(ekvm_vcpu_create(vm, id, &v[id]));
		struct kvm_mp_state mp;
		REQUIRE_OK(ekvm_vcpu_get_mp_state(v[id], &mp));
		CHECK_EQ(mp.mp_state,
			 id == bsp ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED);
	}
	/* too late once a vCPU exists */
	CHECK_ERR(ekvm_vm_set_boot_cpu_id(vm, 0), -EBUSY);
	ekvm_vcpu_destroy(v[0]);
	ekvm_vcpu_destroy(v[1]);
}

KVM_TEST(vm_more_boot_cpu_id)
{
	struct rm_vm t;
	rm_open(&t);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_SET_BOOT_CPU_ID));
	CHECK_ERR(ekvm_vm_set_boot_cpu_id(t.vm, 1ul << 32), -EINVAL);
	REQUIRE_OK(ekvm_vm_set_boot_cpu_id(t.vm, 1));
	REQUIRE_OK(ekvm_vm_create_irqchip(t.vm));
	check_bsp(t.vm, 1);
	rm_close(&t);
	/* the default, for comparison: vCPU 0 */
	rm_open(&t);
	REQUIRE_OK(ekvm_vm_create_irqchip(t.vm));
	check_bsp(t.vm, 0);
	rm_close(&t);
}

KVM_TEST(vm_more_reinject_control)
{
	struct rm_vm t;
	rm_open(&t);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_REINJECT_CONTROL));
	/* no PIT yet */
	CHECK_ERR(ekvm_vm_reinject_control(t.vm, false), -ENXIO);
	REQUIRE_OK(ekvm_vm_create_irqchip(t.vm));
	REQUIRE_OK(ekvm_vm_create_pit2(t.vm, KVM_PIT_SPEAKER_DUMMY));
	CHECK_OK(ekvm_vm_reinject_control(t.vm, false));
	CHECK_OK(ekvm_vm_reinject_control(t.vm, true));
	rm_close(&t);
}

/* struct kvm_pmu_event_filter with room for events */
struct pmu_filter {
	struct kvm_pmu_event_filter f;
	uint64_t events[4];
};

KVM_TEST(vm_more_pmu_event_filter)
{
	struct rm_vm t;
	rm_open(&t);
	int cap = ekvm_sys_check_extension(t.sys, KVM_CAP_PMU_EVENT_FILTER);
	TEST_LOG("KVM_CAP_PMU_EVENT_FILTER = %d", cap);
	REQUIRE(cap > 0);
	struct pmu_filter p;
	memset(&p, 0, sizeof(p));
	p.f.action = KVM_PMU_EVENT_DENY;
	p.f.nevents = 2;
	p.events[0] = 0x003c; /* unhalted core cycles */
	p.events[1] = 0x00c0; /* instructions retired */
	CHECK_OK(ekvm_vm_set_pmu_event_filter(t.vm, &p.f));
	/* an allow-list with no events: every event denied (also valid) */
	p.f.action = KVM_PMU_EVENT_ALLOW;
	p.f.nevents = 0;
	CHECK_OK(ekvm_vm_set_pmu_event_filter(t.vm, &p.f));
	/* the kernel's checks */
	p.f.action = 7;
	CHECK_ERR(ekvm_vm_set_pmu_event_filter(t.vm, &p.f), -EINVAL);
	p.f.action = KVM_PMU_EVENT_DENY;
	p.f.flags = 1u << 31;
	CHECK_ERR(ekvm_vm_set_pmu_event_filter(t.vm, &p.f), -EINVAL);
	p.f.flags = 0;
	p.f.nevents = 301; /* KVM_PMU_EVENT_FILTER_MAX_EVENTS + 1: refused unread */
	CHECK_ERR(ekvm_vm_set_pmu_event_filter(t.vm, &p.f), -E2BIG);
	rm_close(&t);
}

KVM_TEST(vm_more_device_attr)
{
	struct rm_vm t;
	rm_open(&t);
	/* Linux 6.1 x86 has no VM-level attributes: the VM ioctl answers
	 * -ENOTTY (later kernels add groups, e.g. for SEV, -ENXIO for others) */
	uint64_t val = 0;
	struct kvm_device_attr a = {.group = 0, .attr = 0, .addr = (uint64_t)(uintptr_t)&val};
	int r = ekvm_vm_has_device_attr(t.vm, &a);
	TEST_LOG("KVM_HAS_DEVICE_ATTR on the VM: %d", r);
	CHECK(r == -ENOTTY || r == -ENXIO);
	r = ekvm_vm_get_device_attr(t.vm, &a);
	CHECK(r == -ENOTTY || r == -ENXIO);
	r = ekvm_vm_set_device_attr(t.vm, &a);
	CHECK(r == -ENOTTY || r == -ENXIO);
	/* the system-level one x86 has: the XSAVE features a guest may use */
	int sup = ekvm_sys_has_device_attr(t.sys, &a);
	TEST_LOG("KVM_HAS_DEVICE_ATTR(KVM_X86_XCOMP_GUEST_SUPP) on /dev/kvm: %d", sup);
	REQUIRE_OK(sup);
	REQUIRE_OK(ekvm_sys_get_device_attr(t.sys, &a));
	TEST_LOG("KVM_X86_XCOMP_GUEST_SUPP = 0x%llx", (unsigned long long)val);
	CHECK_EQ(val & 3, 3); /* x87 and SSE state at least */
	struct kvm_device_attr bad = {.group = 0, .attr = 99, .addr = a.addr};
	CHECK_ERR(ekvm_sys_has_device_attr(t.sys, &bad), -ENXIO);
	CHECK_ERR(ekvm_sys_get_device_attr(t.sys, &bad), -ENXIO);
	/* a value pointer KVM cannot write */
	a.addr = 16;
	CHECK_ERR(ekvm_sys_get_device_attr(t.sys, &a), -EFAULT);
	rm_close(&t);
}

KVM_TEST(vm_more_stats_fd)
{
	struct rm_vm t;
	rm_open(&t);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_BINARY_STATS_FD));
	int fd = ekvm_vm_stats_fd(t.vm);
	REQUIRE(fd >= 0);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	struct kvm_stats_header h;
	REQUIRE_OK(ekvm_stats_read_header(fd, &h));
	TEST_LOG("VM stats: %u descriptors, names of %u bytes", h.num_desc, h.name_size);
	CHECK(h.num_desc > 0);
	CHECK(h.name_size >= 8);
	struct kvm_stats_desc *d = NULL;
	REQUIRE_OK(ekvm_stats_read_descriptors(fd, &h, &d));
	bool found = false;
	for (uint32_t i = 0; i < h.num_desc; i++) {
		const struct kvm_stats_desc *e =
		    (const struct kvm_stats_desc *)((const char *)d + i * ekvm_stats_desc_size(&h));
		CHECK(e->name[0] != '\0');
		CHECK(e->size >= 1);
		found |= strcmp(e->name, "remote_tlb_flush") == 0;
	}
	CHECK(found);
	free(d);
	uint64_t v = ~0ull;
	CHECK_OK(ekvm_stats_read_by_name(fd, "remote_tlb_flush", &v));
	CHECK(v != ~0ull);
	CHECK_ERR(ekvm_stats_read_by_name(fd, "no_such_statistic", &v), -ENOENT);
	/* the fd is read-only */
	CHECK(write(fd, "x", 1) < 0);
	close(fd);
	rm_close(&t);
}

/* Writes pages 0, 3 and 5 of slot 1 (guest physical 0x10000), halts,
 * then writes pages 3 and 7 and halts again. */
RM_GUEST(dirty_ring_guest, "mov $0x1000, %ax\n"
			   "mov %ax, %es\n"
			   "movb $1, %es:0x0000\n"
			   "movb $1, %es:0x3000\n"
			   "movb $1, %es:0x5010\n"
			   "hlt\n"
			   "movb $2, %es:0x3000\n"
			   "movb $2, %es:0x7000\n"
			   "hlt\n");

#define RING_BYTES 65536u

/* Harvests and returns a bit set of the slot 1 page offsets (< 16). */
static unsigned harvest_pages(struct ekvm_vcpu *v, unsigned *count)
{
	struct kvm_dirty_gfn g[64];
	int n = ekvm_vcpu_dirty_ring_harvest(v, g, 64);
	REQUIRE(n >= 0);
	unsigned set = 0;
	for (int i = 0; i < n; i++) {
		CHECK_EQ(g[i].slot, 1);
		CHECK(g[i].flags & KVM_DIRTY_GFN_F_DIRTY);
		REQUIRE(g[i].offset < 16);
		set |= 1u << g[i].offset;
	}
	*count = (unsigned)n;
	return set;
}

KVM_TEST(vm_more_dirty_ring)
{
	struct rm_vm t;
	rm_open(&t);
	int max = ekvm_vm_check_extension(t.vm, KVM_CAP_DIRTY_LOG_RING);
	TEST_LOG("KVM_CAP_DIRTY_LOG_RING = %d", max);
	REQUIRE(max >= (int)RING_BYTES);
	/* not a power of two, smaller than a page: -EINVAL */
	CHECK_ERR(ekvm_vm_enable_dirty_ring(t.vm, 3u * 4096u), -EINVAL);
	CHECK_ERR(ekvm_vm_enable_dirty_ring(t.vm, 1024), -EINVAL);
	CHECK_ERR(ekvm_vm_enable_dirty_ring(t.vm, 1u << 30), -E2BIG);
	CHECK_ERR(ekvm_vm_reset_dirty_rings(t.vm), -EINVAL); /* no ring yet */
	REQUIRE_OK(ekvm_vm_enable_dirty_ring(t.vm, RING_BYTES));
	rm_add_ram(&t);
	uint8_t *logged = rm_alloc(0x10000);
	REQUIRE_OK(ekvm_vm_set_memory(t.vm, 1, KVM_MEM_LOG_DIRTY_PAGES, 0x10000, 0x10000, logged));
	rm_add_vcpu(&t);
	rm_load(&t, dirty_ring_guest, dirty_ring_guest_end);
	/* the bitmap interface is off while the ring is on */
	uint64_t bitmap[1];
	CHECK_ERR(ekvm_vm_get_dirty_log(t.vm, 1, bitmap), -ENXIO);

	unsigned n;
	CHECK_EQ(harvest_pages(t.vcpu, &n), 0);
	CHECK_EQ(n, 0);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	CHECK_EQ(logged[0x5010], 1);
	CHECK_EQ(harvest_pages(t.vcpu, &n), (1u << 0) | (1u << 3) | (1u << 5));
	CHECK_EQ(n, 3);
	/* harvested entries are not seen twice */
	CHECK_EQ(harvest_pages(t.vcpu, &n), 0);
	int reset = ekvm_vm_reset_dirty_rings(t.vm);
	TEST_LOG("KVM_RESET_DIRTY_RINGS reset %d entries", reset);
	CHECK_EQ(reset, 3);
	/* after the reset page 3 is write-protected again: its second write
	 * is reported, as is the new page 7 */
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	CHECK_EQ(harvest_pages(t.vcpu, &n), (1u << 3) | (1u << 7));
	CHECK_EQ(n, 2);
	CHECK_EQ(ekvm_vm_reset_dirty_rings(t.vm), 2);
	CHECK_EQ(ekvm_vm_reset_dirty_rings(t.vm), 0);
	/* too late once a vCPU exists */
	struct rm_vm u;
	rm_setup(&u, NULL, NULL);
	CHECK_ERR(ekvm_vm_enable_dirty_ring(u.vm, RING_BYTES), -EINVAL);
	struct kvm_dirty_gfn g;
	CHECK_ERR(ekvm_vcpu_dirty_ring_harvest(u.vcpu, &g, 1), -ENODEV);
	rm_close(&u);
	munmap(logged, 0x10000);
	rm_close(&t);
}
