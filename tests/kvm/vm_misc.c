/* tests/kvm/vm_misc.c - kvmclock, VM capabilities, TSS/identity map, MSR filter, devices. */
#include "vm_realmode.h"

#include <linux/kvm_para.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

KVM_TEST(vm_clock_get_set)
{
	struct rm_vm t;
	rm_open(&t);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_ADJUST_CLOCK));
	struct kvm_clock_data c;
	memset(&c, 0, sizeof(c));
	REQUIRE_OK(ekvm_vm_get_clock(t.vm, &c));
	uint64_t first = c.clock;
	TEST_LOG("kvmclock %llu ns, flags 0x%x", (unsigned long long)first, c.flags);

	/* one hour ahead, then read back: at least that, and not much more */
	const uint64_t hour = 3600ull * 1000000000ull;
	struct kvm_clock_data set;
	memset(&set, 0, sizeof(set));
	set.clock = first + hour;
	REQUIRE_OK(ekvm_vm_set_clock(t.vm, &set));
	memset(&c, 0, sizeof(c));
	REQUIRE_OK(ekvm_vm_get_clock(t.vm, &c));
	CHECK(c.clock >= first + hour);
	CHECK(c.clock < first + hour + 10ull * 1000000000ull);
	/* and back to a small value: the clock follows (it is set, not only advanced) */
	set.clock = 1000000000ull;
	REQUIRE_OK(ekvm_vm_set_clock(t.vm, &set));
	REQUIRE_OK(ekvm_vm_get_clock(t.vm, &c));
	CHECK(c.clock >= 1000000000ull && c.clock < 11000000000ull);

	/* unknown flags: -EINVAL */
	set.flags = 1u << 30;
	CHECK_ERR(ekvm_vm_set_clock(t.vm, &set), -EINVAL);
	rm_close(&t);
}

KVM_TEST(vm_enable_cap)
{
	struct rm_vm t;
	rm_open(&t);
	/* KVM_CAP_X86_DISABLE_EXITS: allowed before vCPUs exist, refused after */
	int de = ekvm_vm_check_extension(t.vm, KVM_CAP_X86_DISABLE_EXITS);
	TEST_LOG("KVM_CAP_X86_DISABLE_EXITS = 0x%x", de);
	REQUIRE(de > 0);
	CHECK(de & KVM_X86_DISABLE_EXITS_PAUSE);
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_DISABLE_EXITS,
				     .args = {KVM_X86_DISABLE_EXITS_PAUSE}};
	CHECK_OK(ekvm_vm_enable_cap(t.vm, &cap));
	cap.args[0] = 1u << 20; /* not an exit KVM knows */
	CHECK_ERR(ekvm_vm_enable_cap(t.vm, &cap), -EINVAL);

	/* a capability that cannot be enabled, and flags KVM does not take */
	struct kvm_enable_cap none = {.cap = KVM_CAP_USER_MEMORY};
	CHECK_ERR(ekvm_vm_enable_cap(t.vm, &none), -EINVAL);
	none.cap = 99999;
	CHECK_ERR(ekvm_vm_enable_cap(t.vm, &none), -EINVAL);

	rm_add_ram(&t);
	rm_add_vcpu(&t);
	/* once a vCPU exists: refused (-EINVAL) since Linux 6.3, accepted before */
	cap.args[0] = KVM_X86_DISABLE_EXITS_PAUSE;
	int r = ekvm_vm_enable_cap(t.vm, &cap);
	TEST_LOG("KVM_CAP_X86_DISABLE_EXITS after KVM_CREATE_VCPU: %d", r);
	CHECK(r == 0 || r == -EINVAL);
	rm_close(&t);
}

KVM_TEST(vm_tss_and_identity_map_addr)
{
	struct rm_vm t;
	rm_open(&t);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_SET_TSS_ADDR));
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_SET_IDENTITY_MAP_ADDR));
	/* the addresses QEMU uses, below 4 GiB, three pages for the TSS */
	CHECK_OK(ekvm_vm_set_identity_map_addr(t.vm, 0xfeffc000));
	CHECK_OK(ekvm_vm_set_tss_addr(t.vm, 0xfeffd000));
	rm_add_ram(&t);
	rm_add_vcpu(&t);
	/* the identity map address cannot change once a vCPU exists */
	CHECK_ERR(ekvm_vm_set_identity_map_addr(t.vm, 0xfeffc000), -EINVAL);
	rm_close(&t);
}

/* RDMSR 0x1a0 (filtered: KVM asks user space), then reports EAX:EDX on
 * ports 0x10/0x12; WRMSR 0x1a0 (filtered), then RDMSR 0x10 (not filtered). */
RM_GUEST(msr_filter_guest, "mov $0x1a0, %ecx\n"
			   "rdmsr\n"
			   "out %ax, $0x10\n"
			   "mov %dx, %ax\n"
			   "out %ax, $0x12\n"
			   "mov $0x5678, %eax\n"
			   "xor %edx, %edx\n"
			   "wrmsr\n"
			   "mov $0x10, %ecx\n"
			   "rdmsr\n"
			   "out %al, $0x14\n"
			   "hlt\n");

KVM_TEST(vm_msr_filter)
{
	struct rm_vm t;
	rm_setup(&t, msr_filter_guest, msr_filter_guest_end);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_X86_MSR_FILTER));
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_X86_USER_SPACE_MSR));
	uint8_t deny = 0; /* bit 0 clear: MSR `base` denied */
	struct kvm_msr_filter f;
	memset(&f, 0, sizeof(f));
	f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	f.ranges[0].flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
	f.ranges[0].base = 0x1a0;
	f.ranges[0].nmsrs = 1;
	f.ranges[0].bitmap = &deny;

	/* bad filters: -EINVAL */
	struct kvm_msr_filter bad = f;
	bad.flags = 1u << 5;
	CHECK_ERR(ekvm_vm_set_msr_filter(t.vm, &bad), -EINVAL);
	bad = f;
	bad.ranges[0].flags = 1u << 7;
	CHECK_ERR(ekvm_vm_set_msr_filter(t.vm, &bad), -EINVAL);
	CHECK_ERR(ekvm_vm_enable_user_space_msr(t.vm, 1u << 20), -EINVAL);

	REQUIRE_OK(ekvm_vm_set_msr_filter(t.vm, &f));
	REQUIRE_OK(ekvm_vm_enable_user_space_msr(t.vm, KVM_MSR_EXIT_REASON_FILTER));

	struct ekvm_exit ex;
	rm_run(&t, &ex);
	REQUIRE_EQ(ex.kind, EKVM_EXIT_X86_RDMSR);
	CHECK_EQ(ex.u.msr.index, 0x1a0);
	CHECK_EQ(ex.u.msr.reason, KVM_MSR_EXIT_REASON_FILTER);
	*ex.u.msr.data = 0x0000abcd00001234ull;
	*ex.u.msr.error = 0;
	rm_expect_out(&t, 0x10, 2, 0x1234);
	rm_expect_out(&t, 0x12, 2, 0xabcd);
	rm_run(&t, &ex);
	REQUIRE_EQ(ex.kind, EKVM_EXIT_X86_WRMSR);
	CHECK_EQ(ex.u.msr.index, 0x1a0);
	CHECK_EQ(ex.u.msr.value, 0x5678);
	*ex.u.msr.error = 0;
	/* IA32_TSC is outside the filter: handled in the kernel, no exit */
	struct ekvm_exit ex2;
	rm_run(&t, &ex2);
	CHECK_EQ(ex2.kind, EKVM_EXIT_IO_OUT);
	CHECK_EQ(ex2.u.io.port, 0x14);
	rm_expect_kind(&t, EKVM_EXIT_HLT);

	/* an empty default-allow filter removes the filter */
	struct kvm_msr_filter allow;
	memset(&allow, 0, sizeof(allow));
	CHECK_OK(ekvm_vm_set_msr_filter(t.vm, &allow));
	rm_close(&t);
}

/*
 * A range of 70 MSRs (not a multiple of 64) whose bitmap is the 9 bytes its
 * bits need, placed at the very end of a mapping followed by an inaccessible
 * page. KVM reads BITS_TO_LONGS(70) * 8 = 16 bytes of a bitmap: handed the
 * caller's pointer it would run into the guard page (-EFAULT); the library
 * copies the 9 bytes into a 16-byte buffer first. The last bit (MSR 0x1a0,
 * in the 9th byte) is the only denied one, and the guest's RDMSR/WRMSR of
 * it exit, so the 9th byte really reached KVM.
 */
KVM_TEST(vm_msr_filter_bitmap_not_multiple_of_64)
{
	struct rm_vm t;
	rm_setup(&t, msr_filter_guest, msr_filter_guest_end);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_X86_MSR_FILTER));
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_X86_USER_SPACE_MSR));
	const uint32_t nmsrs = 70, base = 0x1a0 - 69;
	const size_t need = (nmsrs + 7) / 8;
	CHECK_EQ(need, 9);
	CHECK_EQ(EKVM_MSR_BITMAP_BYTES(nmsrs), 16);
	CHECK_EQ(EKVM_MSR_BITMAP_BYTES(64), 8);
	CHECK_EQ(EKVM_MSR_BITMAP_BYTES(1), 8);
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *two = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(two != MAP_FAILED);
	REQUIRE(mprotect(two + page, (size_t)page, PROT_NONE) == 0);
	uint8_t *bitmap = two + page - need; /* its last byte is the page's last */
	memset(bitmap, 0xff, need);
	bitmap[8] = 0x1f; /* bits 64..68 allowed, bit 69 (MSR 0x1a0) denied */

	struct kvm_msr_filter f;
	memset(&f, 0, sizeof(f));
	f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	f.ranges[0].flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
	f.ranges[0].base = base;
	f.ranges[0].nmsrs = nmsrs;
	f.ranges[0].bitmap = bitmap;
	/* the kernel itself, handed the same pointer, reads past the 9 bytes */
	CHECK_ERR(EKVM_IOCTL(ekvm_vm_ioctl_raw, t.vm, KVM_X86_SET_MSR_FILTER, &f), -EFAULT);
	REQUIRE_OK(ekvm_vm_set_msr_filter(t.vm, &f));
	REQUIRE_OK(ekvm_vm_enable_user_space_msr(t.vm, KVM_MSR_EXIT_REASON_FILTER));

	struct ekvm_exit ex;
	rm_run(&t, &ex);
	REQUIRE_EQ(ex.kind, EKVM_EXIT_X86_RDMSR);
	CHECK_EQ(ex.u.msr.index, 0x1a0);
	CHECK_EQ(ex.u.msr.reason, KVM_MSR_EXIT_REASON_FILTER);
	*ex.u.msr.data = 0x0000beef00005678ull;
	*ex.u.msr.error = 0;
	rm_expect_out(&t, 0x10, 2, 0x5678);
	rm_expect_out(&t, 0x12, 2, 0xbeef);
	rm_run(&t, &ex);
	REQUIRE_EQ(ex.kind, EKVM_EXIT_X86_WRMSR);
	CHECK_EQ(ex.u.msr.index, 0x1a0);
	*ex.u.msr.error = 0;
	rm_run(&t, &ex);
	CHECK_EQ(ex.kind, EKVM_EXIT_IO_OUT);
	rm_expect_kind(&t, EKVM_EXIT_HLT);

	/* a heap bitmap of exactly 9 bytes (ASan would flag a read past it) */
	uint8_t *heap = malloc(need);
	REQUIRE(heap != NULL);
	memcpy(heap, bitmap, need);
	f.ranges[0].bitmap = heap;
	CHECK_OK(ekvm_vm_set_msr_filter(t.vm, &f));
	free(heap);
	/* the library's own checks: an unreadable bitmap, a range too big */
	f.ranges[0].bitmap = two + page; /* the guard page */
	CHECK_ERR(ekvm_vm_set_msr_filter(t.vm, &f), -EFAULT);
	f.ranges[0].bitmap = bitmap;
	f.ranges[0].nmsrs = EKVM_MSR_FILTER_MAX_NMSRS + 1;
	CHECK_ERR(ekvm_vm_set_msr_filter(t.vm, &f), -EINVAL);
	/* the largest range KVM takes: 0x600 bytes of bitmap (a fresh buffer) */
	uint8_t *big = calloc(1, KVM_MSR_FILTER_MAX_BITMAP_SIZE);
	REQUIRE(big != NULL);
	f.ranges[0].nmsrs = EKVM_MSR_FILTER_MAX_NMSRS;
	f.ranges[0].bitmap = big;
	CHECK_OK(ekvm_vm_set_msr_filter(t.vm, &f));
	free(big);
	munmap(two, 2 * (size_t)page);
	rm_close(&t);
}

KVM_TEST(vm_hypercall_exit_enable)
{
	struct rm_vm t;
	rm_open(&t);
	int mask = ekvm_vm_check_extension(t.vm, KVM_CAP_EXIT_HYPERCALL);
	TEST_LOG("KVM_CAP_EXIT_HYPERCALL = 0x%x", mask);
	if (mask <= 0) {
		/* the capability is absent: enabling it must fail */
		CHECK(ekvm_vm_enable_hypercall_exit(t.vm, 1ull << KVM_HC_MAP_GPA_RANGE) < 0);
		rm_close(&t);
		TEST_SKIP("KVM_CAP_EXIT_HYPERCALL absent (refusal checked)");
	}
	CHECK(mask & (1 << KVM_HC_MAP_GPA_RANGE));
	CHECK_OK(ekvm_vm_enable_hypercall_exit(t.vm, 1ull << KVM_HC_MAP_GPA_RANGE));
	/* a hypercall KVM does not let user space handle: -EINVAL */
	CHECK_ERR(ekvm_vm_enable_hypercall_exit(t.vm, 1ull << 40), -EINVAL);
	rm_close(&t);
}

KVM_TEST(vm_create_device)
{
	struct rm_vm t;
	rm_open(&t);
	/*
	 * On x86 the only KVM_CREATE_DEVICE type is the KVM-VFIO pseudo device
	 * (when the kernel has CONFIG_KVM_VFIO, as Debian's does). Test mode
	 * asks without creating.
	 */
	struct kvm_create_device dev = {.type = KVM_DEV_TYPE_VFIO, .flags = KVM_CREATE_DEVICE_TEST};
	int r = ekvm_vm_create_device(t.vm, &dev);
	TEST_LOG("KVM_DEV_TYPE_VFIO test: %d", r);
	/* an unknown device type: -ENODEV */
	struct kvm_create_device bogus = {.type = KVM_DEV_TYPE_MAX + 10};
	CHECK_ERR(ekvm_vm_create_device(t.vm, &bogus), -ENODEV);
	/* an ARM device type on x86: -ENODEV */
	struct kvm_create_device gic = {.type = KVM_DEV_TYPE_ARM_VGIC_V3};
	CHECK_ERR(ekvm_vm_create_device(t.vm, &gic), -ENODEV);
	if (r == -ENODEV) {
		rm_close(&t);
		TEST_SKIP("this kernel has no KVM-VFIO device (CONFIG_KVM_VFIO off)");
	}
	CHECK_EQ(r, 0);
	dev.flags = 0;
	dev.fd = (uint32_t)-1;
	REQUIRE_OK(ekvm_vm_create_device(t.vm, &dev));
	int fd = (int)dev.fd;
	CHECK(fd >= 0);
	/* the new fd is a KVM device: KVM_HAS_DEVICE_ATTR answers on it */
	struct kvm_device_attr attr = {.group = KVM_DEV_VFIO_GROUP, .attr = KVM_DEV_VFIO_GROUP_ADD};
	CHECK_OK(ekvm_device_has_attr(fd, &attr));
	attr.group = 0x7777;
	CHECK_ERR(ekvm_device_has_attr(fd, &attr), -ENXIO);
	/* SET: KVM reads a group fd at attr.addr; -1 is no file (-EBADF), an
	 * eventfd is not a VFIO group (-EINVAL) */
	int32_t group_fd = -1;
	attr.group = KVM_DEV_VFIO_GROUP;
	attr.addr = (uint64_t)(uintptr_t)&group_fd;
	CHECK_ERR(ekvm_device_set_attr(fd, &attr), -EBADF);
	group_fd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(group_fd >= 0);
	CHECK_ERR(ekvm_device_set_attr(fd, &attr), -EINVAL);
	close(group_fd);
	/* the VFIO device has no GET: KVM answers -EPERM for a missing accessor */
	CHECK_ERR(ekvm_device_get_attr(fd, &attr), -EPERM);
	/* a negative device fd: refused by the library */
	CHECK_ERR(ekvm_device_has_attr(-1, &attr), -EINVAL);
	close(fd);
	rm_close(&t);
}
