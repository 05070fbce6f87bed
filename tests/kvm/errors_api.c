/* tests/kvm/errors_api.c - bad arguments to the binding on real KVM: documented errors, no crash. */
#include "vm_realmode.h"

#include <sys/eventfd.h>
#include <sys/wait.h>

KVM_TEST(errors_vcpu_ids)
{
	struct rm_vm t;
	rm_open(&t);
	int max_id = ekvm_vm_check_extension(t.vm, KVM_CAP_MAX_VCPU_ID);
	TEST_LOG("KVM_CAP_MAX_VCPU_ID = %d", max_id);
	REQUIRE(max_id > 0);
	struct ekvm_vcpu *v = NULL, *dup = NULL;
	/* ids run from 0 to KVM_CAP_MAX_VCPU_ID - 1 */
	CHECK_ERR(ekvm_vcpu_create(t.vm, (unsigned long)max_id, &v), -EINVAL);
	CHECK(v == NULL);
	CHECK_ERR(ekvm_vcpu_create(t.vm, ~0ul, &v), -EINVAL);
	/* ids that do not fit KVM's u32: refused before KVM truncates them
	 * (KVM would create vCPU 3 and vCPU max_id - 1 here) */
	v = (struct ekvm_vcpu *)1;
	CHECK_ERR(ekvm_vcpu_create(t.vm, (1ul << 32) + 3, &v), -EINVAL);
	CHECK(v == NULL);
	CHECK_ERR(ekvm_vcpu_create(t.vm, (1ul << 32) + (unsigned long)max_id - 1, &v), -EINVAL);
	CHECK_ERR(ekvm_vcpu_create(t.vm, 1ul << 32, &v), -EINVAL);
	/* nothing was created: vCPU 3 and vCPU 0 are still free */
	struct ekvm_vcpu *v3 = NULL;
	REQUIRE_OK(ekvm_vcpu_create(t.vm, 3, &v3));
	CHECK_EQ(ekvm_vcpu_id(v3), 3);
	ekvm_vcpu_destroy(v3);
	CHECK_ERR(ekvm_vcpu_create(t.vm, (1ul << 32) + 3, &v), -EINVAL);
	/* the boot CPU id has the same 32-bit limit */
	CHECK_ERR(ekvm_vm_set_boot_cpu_id(t.vm, (1ul << 32) + 1), -EINVAL);
	REQUIRE_OK(ekvm_vcpu_create(t.vm, (unsigned long)max_id - 1, &v));
	CHECK_EQ(ekvm_vcpu_id(v), max_id - 1);
	/* the same id twice: -EEXIST, the first vCPU unharmed */
	CHECK_ERR(ekvm_vcpu_create(t.vm, (unsigned long)max_id - 1, &dup), -EEXIST);
	CHECK(dup == NULL);
	struct kvm_regs r;
	CHECK_OK(ekvm_vcpu_get_regs(v, &r));
	ekvm_vcpu_destroy(v);
	rm_close(&t);
}

KVM_TEST(errors_closed_fds)
{
	/* a /dev/kvm handle whose fd was closed behind its back: -EBADF */
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0);
	struct ekvm_sys *sys;
	REQUIRE_OK(ekvm_sys_from_fd(fd, &sys));
	REQUIRE(close(fd) == 0);
	CHECK_ERR(ekvm_sys_api_version(sys), -EBADF);
	CHECK_ERR(ekvm_sys_check_extension(sys, KVM_CAP_USER_MEMORY), -EBADF);
	struct ekvm_vm *vm = NULL;
	CHECK_ERR(ekvm_vm_create(sys, 0, &vm), -EBADF);
	CHECK(vm == NULL);
	ekvm_sys_close(sys);

	/* the same for a VM and a vCPU */
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	REQUIRE(close(ekvm_vcpu_fd(t.vcpu)) == 0);
	struct kvm_regs r;
	CHECK_ERR(ekvm_vcpu_get_regs(t.vcpu, &r), -EBADF);
	struct ekvm_exit ex;
	CHECK_ERR(ekvm_vcpu_run(t.vcpu, &ex), -EBADF);
	REQUIRE(close(ekvm_vm_fd(t.vm)) == 0);
	CHECK_ERR(ekvm_vm_create_irqchip(t.vm), -EBADF);
	CHECK_ERR(ekvm_vm_check_extension(t.vm, KVM_CAP_USER_MEMORY), -EBADF);
	rm_close(&t); /* closes the numbers again: EBADF, ignored */
}

KVM_TEST(errors_null_arguments)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	/* valid handles, NULL out-pointers: -EINVAL from the library, no crash */
	CHECK_ERR(ekvm_vcpu_get_regs(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_set_sregs(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_get_msrs(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_get_msr(t.vcpu, 0x10, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_get_xsave2(t.vcpu, NULL, 65536), -EINVAL);
	CHECK_ERR(ekvm_vcpu_translate(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_coalesced_mmio_pop(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_run(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vm_get_dirty_log(t.vm, 0, NULL), -EINVAL);
	CHECK_ERR(ekvm_vm_get_clock(t.vm, NULL), -EINVAL);
	CHECK_ERR(ekvm_vm_ioeventfd(t.vm, NULL), -EINVAL);
	CHECK_ERR(ekvm_vm_set_gsi_routing(t.vm, NULL), -EINVAL);
	CHECK_ERR(ekvm_vm_create(t.sys, 0, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_create(t.vm, 1, NULL), -EINVAL);
	CHECK_ERR(ekvm_sys_supported_cpuid(t.sys, NULL), -EINVAL);
	CHECK_ERR(ekvm_sys_get_mce_cap_supported(t.sys, NULL), -EINVAL);
	CHECK_ERR(ekvm_sys_get_supported_hv_cpuid(t.sys, NULL), -EINVAL);
	CHECK_ERR(ekvm_sys_has_device_attr(t.sys, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_get_nested_state(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_set_mce(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_get_device_attr(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_get_supported_hv_cpuid(t.vcpu, NULL), -EINVAL);
	CHECK_ERR(ekvm_vm_set_pmu_event_filter(t.vm, NULL), -EINVAL);
	CHECK_ERR(ekvm_vm_has_device_attr(t.vm, NULL), -EINVAL);
	CHECK_ERR(ekvm_vcpu_dirty_ring_harvest(t.vcpu, NULL, 1), -EINVAL);
	rm_close(&t);
}

KVM_TEST(errors_bad_user_pointers)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	uint8_t *ram = rm_alloc(0x10000);
	REQUIRE_OK(ekvm_vm_set_memory(t.vm, 1, KVM_MEM_LOG_DIRTY_PAGES, 0x20000, 0x10000, ram));
	/* pointers inside structures are the kernel's to check: -EFAULT */
	CHECK_ERR(ekvm_vm_get_dirty_log(t.vm, 1, (void *)16), -EFAULT);
	struct kvm_msr_filter f;
	memset(&f, 0, sizeof(f));
	f.ranges[0].flags = KVM_MSR_FILTER_READ;
	f.ranges[0].nmsrs = 8;
	f.ranges[0].base = 0x1a0;
	f.ranges[0].bitmap = (uint8_t *)16;
	if (rm_has_cap(t.sys, KVM_CAP_X86_MSR_FILTER))
		CHECK_ERR(ekvm_vm_set_msr_filter(t.vm, &f), -EFAULT);
	munmap(ram, 0x10000);
	rm_close(&t);
}

KVM_TEST(errors_too_big)
{
	struct rm_vm t;
	rm_open(&t);
	REQUIRE_OK(ekvm_vm_create_irqchip(t.vm));
	rm_add_ram(&t);
	rm_add_vcpu(&t);
	/* more MSRs than KVM takes in one call: -E2BIG */
	struct kvm_msrs big = {.nmsrs = 100000};
	CHECK_ERR(ekvm_vcpu_get_msrs(t.vcpu, &big), -E2BIG);
	CHECK_ERR(ekvm_vcpu_set_msrs(t.vcpu, &big), -E2BIG);
	CHECK_ERR(ekvm_sys_get_feature_msrs(t.sys, &big), -E2BIG);
	/* an empty CPUID buffer: -E2BIG */
	struct kvm_cpuid2 none = {.nent = 0};
	CHECK_ERR(ekvm_sys_get_supported_cpuid(t.sys, &none), -E2BIG);
	/* more GSI routes than KVM_MAX_IRQ_ROUTES: -EINVAL */
	struct kvm_irq_routing routes = {.nr = 1u << 20};
	CHECK_ERR(ekvm_vm_set_gsi_routing(t.vm, &routes), -EINVAL);
	/* a second irqchip: -EEXIST */
	CHECK_ERR(ekvm_vm_create_irqchip(t.vm), -EEXIST);
	rm_close(&t);
}

KVM_TEST(errors_wrong_order)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	/* the in-kernel irqchip comes before the vCPUs: -EINVAL after */
	CHECK_ERR(ekvm_vm_create_irqchip(t.vm), -EINVAL);
	/* vCPU operations that need the in-kernel LAPIC */
	struct kvm_lapic_state l;
	CHECK_ERR(ekvm_vcpu_get_lapic(t.vcpu, &l), -EINVAL);
	CHECK_ERR(ekvm_vm_irq_line(t.vm, 0, 1), -ENXIO);
	rm_close(&t);
}

KVM_TEST(errors_raw_tier_passes_errno)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	/* an ioctl number KVM does not know: the kernel's errno comes through */
	CHECK_ERR(ekvm_vm_ioctl_raw(t.vm, _IO(KVMIO, 0xff), NULL), -ENOTTY);
	CHECK(ekvm_vcpu_ioctl_raw(t.vcpu, _IO(KVMIO, 0xff), NULL) < 0);
	CHECK(ekvm_sys_ioctl_raw(t.sys, _IO(KVMIO, 0xff), NULL) < 0);
	/* a good one returns its value */
	CHECK_EQ(
	    ekvm_vm_ioctl_raw(t.vm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_USER_MEMORY),
	    1);
	rm_close(&t);
}

/* Fork: KVM refuses VM and vCPU ioctls from another address space (-EIO). */
KVM_TEST(errors_after_fork)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct kvm_regs r;
		int bad = 0;
		if (ekvm_vcpu_get_regs(t.vcpu, &r) != -EIO)
			bad |= 1;
		struct kvm_clock_data c;
		if (ekvm_vm_get_clock(t.vm, &c) != -EIO)
			bad |= 2;
		_exit(bad);
	}
	int ws;
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	REQUIRE(WIFEXITED(ws));
	CHECK_EQ(WEXITSTATUS(ws), 0);
	/* the parent's handles still work */
	struct kvm_regs r;
	CHECK_OK(ekvm_vcpu_get_regs(t.vcpu, &r));
	struct kvm_clock_data c;
	CHECK_OK(ekvm_vm_get_clock(t.vm, &c));
	rm_close(&t);
}

/* Which bad fds the library rejects (negative: -EINVAL, no ioctl) and which
 * the kernel does (a closed fd: -EBADF; an fd that is not an eventfd:
 * -EINVAL), as kvm.h says. */
KVM_TEST(errors_bad_fds)
{
	struct rm_vm t;
	rm_open(&t);
	REQUIRE_OK(ekvm_vm_create_irqchip(t.vm));
	rm_add_ram(&t);
	rm_add_vcpu(&t);
	int efd = eventfd(0, EFD_CLOEXEC);
	int pipefd[2];
	REQUIRE(pipe(pipefd) == 0);
	/* a closed fd number: closed last, and this test opens nothing more
	 * until it is done with it (the number would be reused) */
	int closed = eventfd(0, EFD_CLOEXEC);
	REQUIRE(efd >= 0 && closed >= 0);
	REQUIRE(close(closed) == 0);

	/* irqfd */
	CHECK_ERR(ekvm_vm_irqfd(t.vm, -1, 4, -1), -EINVAL);
	CHECK_ERR(ekvm_vm_irqfd(t.vm, -5, 4, -1), -EINVAL);
	CHECK_ERR(ekvm_vm_irqfd_remove(t.vm, -1, 4), -EINVAL);
	CHECK_ERR(ekvm_vm_irqfd(t.vm, closed, 4, -1), -EBADF);
	CHECK_ERR(ekvm_vm_irqfd(t.vm, pipefd[0], 4, -1), -EINVAL);
	/* a resample fd that is closed or not an eventfd */
	CHECK_ERR(ekvm_vm_irqfd(t.vm, efd, 4, closed), -EBADF);
	CHECK_ERR(ekvm_vm_irqfd(t.vm, efd, 4, pipefd[0]), -EINVAL);
	/* and nothing was registered by the failures */
	CHECK_OK(ekvm_vm_irqfd(t.vm, efd, 4, -1));
	CHECK_OK(ekvm_vm_irqfd_remove(t.vm, efd, 4));

	/* ioeventfd */
	struct ekvm_ioeventfd ev = {.addr = 0x610, .len = 1, .fd = -1, .pio = true};
	CHECK_ERR(ekvm_vm_ioeventfd(t.vm, &ev), -EINVAL);
	CHECK_ERR(ekvm_vm_ioeventfd_remove(t.vm, &ev), -EINVAL);
	ev.fd = closed;
	CHECK_ERR(ekvm_vm_ioeventfd(t.vm, &ev), -EBADF);
	ev.fd = pipefd[0];
	CHECK_ERR(ekvm_vm_ioeventfd(t.vm, &ev), -EINVAL);
	ev.fd = efd;
	CHECK_OK(ekvm_vm_ioeventfd(t.vm, &ev));
	CHECK_OK(ekvm_vm_ioeventfd_remove(t.vm, &ev));

	/* /dev/kvm itself */
	struct ekvm_sys *s = (struct ekvm_sys *)1;
	CHECK_ERR(ekvm_sys_from_fd(closed, &s), -EBADF);
	CHECK(s == NULL);
	CHECK_ERR(ekvm_sys_from_fd(efd, &s), -ENOTTY);
	CHECK(s == NULL);
	/* a VM fd is not /dev/kvm: KVM_GET_API_VERSION is a system ioctl */
	CHECK_ERR(ekvm_sys_from_fd(ekvm_vm_fd(t.vm), &s), -ENOTTY);
	CHECK(s == NULL);

	/* a stats or device fd that is negative */
	struct kvm_stats_header h;
	CHECK_ERR(ekvm_stats_read_header(-1, &h), -EINVAL);
	CHECK_ERR(ekvm_stats_read_header(closed, &h), -EBADF);
	close(pipefd[0]);
	close(pipefd[1]);
	close(efd);
	rm_close(&t);
}
