/* tests/unit/kvm_errors.c - the binding's error contract without /dev/kvm: paths, fds, NULL handles. */
#include <ember/kvm.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "../lib/test.h"

/* Open file descriptors of this process (to catch leaks on error paths). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	REQUIRE(d != NULL);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

TEST(kvm_open_path_errors)
{
	int fds = count_fds();
	struct ekvm_sys *sys = (struct ekvm_sys *)1;
	CHECK_ERR(ekvm_sys_open_path("/nonexistent/ember/kvm", &sys), -ENOENT);
	CHECK(sys == NULL);
	/* a device that is not KVM: a clean error (the ioctl is not its) */
	sys = (struct ekvm_sys *)1;
	CHECK_ERR(ekvm_sys_open_path("/dev/null", &sys), -ENOTTY);
	CHECK(sys == NULL);
	/* a regular file: the same */
	char path[] = "/tmp/ember-kvm-errors-XXXXXX";
	int tmp = mkstemp(path);
	REQUIRE(tmp >= 0);
	close(tmp);
	sys = (struct ekvm_sys *)1;
	CHECK_ERR(ekvm_sys_open_path(path, &sys), -ENOTTY);
	CHECK(sys == NULL);
	unlink(path);
	/* a directory cannot be opened read-write */
	sys = (struct ekvm_sys *)1;
	CHECK_ERR(ekvm_sys_open_path("/", &sys), -EISDIR);
	CHECK(sys == NULL);
	/* bad arguments: *out is cleared too */
	sys = (struct ekvm_sys *)1;
	CHECK_ERR(ekvm_sys_open_path(NULL, &sys), -EINVAL);
	CHECK(sys == NULL);
	CHECK_ERR(ekvm_sys_open_path("/dev/null", NULL), -EINVAL);
	/* no descriptor leaked by the failures */
	CHECK_EQ(count_fds(), fds);
}

TEST(kvm_from_fd_errors)
{
	struct ekvm_sys *sys = (struct ekvm_sys *)1;
	CHECK_ERR(ekvm_sys_from_fd(-1, &sys), -EINVAL);
	CHECK(sys == NULL);
	CHECK_ERR(ekvm_sys_from_fd(-100, &sys), -EINVAL);
	/* a closed fd: the library's first ioctl says -EBADF */
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(close(fd) == 0);
	CHECK_ERR(ekvm_sys_from_fd(fd, &sys), -EBADF);
	CHECK(sys == NULL);
	/* an fd that is not /dev/kvm: refused, and left to the caller (still open) */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_ERR(ekvm_sys_from_fd(fd, &sys), -ENOTTY);
	CHECK(fcntl(fd, F_GETFD) >= 0);
	close(fd);
	int pipefd[2];
	REQUIRE(pipe(pipefd) == 0);
	sys = (struct ekvm_sys *)1;
	CHECK_ERR(ekvm_sys_from_fd(pipefd[0], &sys), -ENOTTY);
	CHECK(sys == NULL);
	close(pipefd[0]);
	close(pipefd[1]);
	/* a directory fd (O_RDONLY): not KVM either */
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_ERR(ekvm_sys_from_fd(fd, &sys), -ENOTTY);
	close(fd);
	CHECK_ERR(ekvm_sys_from_fd(0, NULL), -EINVAL);
}

/* Every function that takes a handle reports NULL as -EINVAL (or -EBADF). */
#define NULL_OK(expr)                                                                              \
	do {                                                                                       \
		long long r_ = (long long)(expr);                                                  \
		if (r_ != -EINVAL && r_ != -EBADF)                                                 \
			test_fail_at(__FILE__, __LINE__, false, "%s: got %lld (%s), want -EINVAL", \
				     #expr, r_, test_errno_name(r_));                              \
	} while (0)

TEST(kvm_null_sys_handle)
{
	struct kvm_cpuid2 cpuid = {.nent = 0};
	struct kvm_cpuid2 *pc = NULL;
	struct kvm_msr_list list = {.nmsrs = 0};
	struct kvm_msr_list *pl = NULL;
	struct kvm_msrs msrs = {.nmsrs = 0};
	uint64_t u64;
	struct ekvm_vm *vm = NULL;

	NULL_OK(ekvm_sys_fd(NULL));
	NULL_OK(ekvm_sys_ioctl_raw(NULL, KVM_GET_API_VERSION, NULL));
	NULL_OK(ekvm_sys_api_version(NULL));
	NULL_OK(ekvm_sys_check_extension(NULL, KVM_CAP_USER_MEMORY));
	NULL_OK(ekvm_sys_vcpu_mmap_size(NULL));
	NULL_OK(ekvm_sys_get_supported_cpuid(NULL, &cpuid));
	NULL_OK(ekvm_sys_get_emulated_cpuid(NULL, &cpuid));
	NULL_OK(ekvm_sys_supported_cpuid(NULL, &pc));
	NULL_OK(ekvm_sys_emulated_cpuid(NULL, &pc));
	NULL_OK(ekvm_sys_get_msr_index_list(NULL, &list));
	NULL_OK(ekvm_sys_get_msr_feature_index_list(NULL, &list));
	NULL_OK(ekvm_sys_msr_index_list(NULL, &pl));
	NULL_OK(ekvm_sys_msr_feature_index_list(NULL, &pl));
	NULL_OK(ekvm_sys_get_feature_msrs(NULL, &msrs));
	NULL_OK(ekvm_sys_get_mce_cap_supported(NULL, &u64));
	NULL_OK(ekvm_sys_get_supported_hv_cpuid(NULL, &cpuid));
	pc = (struct kvm_cpuid2 *)1;
	NULL_OK(ekvm_sys_supported_hv_cpuid(NULL, &pc));
	CHECK(pc == NULL);
	struct kvm_device_attr attr = {.group = 0};
	NULL_OK(ekvm_sys_has_device_attr(NULL, &attr));
	NULL_OK(ekvm_sys_get_device_attr(NULL, &attr));
	vm = (struct ekvm_vm *)1;
	NULL_OK(ekvm_vm_create(NULL, 0, &vm));
	CHECK(pc == NULL && pl == NULL && vm == NULL);
	ekvm_sys_close(NULL); /* allowed */
}

TEST(kvm_null_vm_handle)
{
	struct kvm_enable_cap cap = {.cap = 0};
	struct kvm_userspace_memory_region region = {.slot = 0};
	uint64_t bitmap = 0;
	struct kvm_irqchip chip = {.chip_id = 0};
	int32_t status;
	struct kvm_irq_routing routing = {.nr = 0};
	struct kvm_msi msi = {.data = 0};
	struct kvm_pit_state2 pit;
	struct ekvm_ioeventfd ev = {.fd = 0, .len = 1};
	struct kvm_clock_data clock = {.clock = 0};
	struct kvm_msr_filter filter = {.flags = 0};
	struct kvm_create_device dev = {.type = 0};
	struct ekvm_vcpu *vcpu = NULL;

	NULL_OK(ekvm_vm_fd(NULL));
	NULL_OK(ekvm_vm_ioctl_raw(NULL, KVM_CREATE_IRQCHIP, NULL));
	NULL_OK(ekvm_vm_check_extension(NULL, KVM_CAP_USER_MEMORY));
	NULL_OK(ekvm_vm_enable_cap(NULL, &cap));
	NULL_OK(ekvm_vm_set_user_memory_region(NULL, &region));
	NULL_OK(ekvm_vm_set_memory(NULL, 0, 0, 0, 4096, &bitmap));
	NULL_OK(ekvm_vm_remove_memory(NULL, 0));
	NULL_OK(ekvm_vm_get_dirty_log(NULL, 0, &bitmap));
	NULL_OK(ekvm_vm_clear_dirty_log(NULL, 0, 0, 64, &bitmap));
	NULL_OK(ekvm_vm_set_tss_addr(NULL, 0xfffbd000));
	NULL_OK(ekvm_vm_set_identity_map_addr(NULL, 0xfffbc000));
	NULL_OK(ekvm_vm_create_irqchip(NULL));
	NULL_OK(ekvm_vm_get_irqchip(NULL, &chip));
	NULL_OK(ekvm_vm_set_irqchip(NULL, &chip));
	NULL_OK(ekvm_vm_irq_line(NULL, 4, 1));
	NULL_OK(ekvm_vm_irq_line_status(NULL, 4, 1, &status));
	NULL_OK(ekvm_vm_set_gsi_routing(NULL, &routing));
	NULL_OK(ekvm_vm_signal_msi(NULL, &msi));
	NULL_OK(ekvm_vm_create_pit2(NULL, 0));
	NULL_OK(ekvm_vm_get_pit2(NULL, &pit));
	NULL_OK(ekvm_vm_set_pit2(NULL, &pit));
	NULL_OK(ekvm_vm_irqfd(NULL, 0, 4, -1));
	NULL_OK(ekvm_vm_irqfd_remove(NULL, 0, 4));
	NULL_OK(ekvm_vm_ioeventfd(NULL, &ev));
	NULL_OK(ekvm_vm_ioeventfd_remove(NULL, &ev));
	NULL_OK(ekvm_vm_register_coalesced(NULL, 0xe0000, 4096, false));
	NULL_OK(ekvm_vm_unregister_coalesced(NULL, 0xe0000, 4096, false));
	NULL_OK(ekvm_vm_get_clock(NULL, &clock));
	NULL_OK(ekvm_vm_set_clock(NULL, &clock));
	NULL_OK(ekvm_vm_set_msr_filter(NULL, &filter));
	NULL_OK(ekvm_vm_enable_user_space_msr(NULL, KVM_MSR_EXIT_REASON_FILTER));
	NULL_OK(ekvm_vm_enable_hypercall_exit(NULL, 1ull << 12));
	NULL_OK(ekvm_vm_create_device(NULL, &dev));
	struct kvm_device_attr attr = {.group = 0};
	NULL_OK(ekvm_vm_has_device_attr(NULL, &attr));
	NULL_OK(ekvm_vm_get_device_attr(NULL, &attr));
	NULL_OK(ekvm_vm_set_device_attr(NULL, &attr));
	NULL_OK(ekvm_vm_set_boot_cpu_id(NULL, 0));
	NULL_OK(ekvm_vm_reinject_control(NULL, true));
	struct kvm_pmu_event_filter pmu = {.action = KVM_PMU_EVENT_DENY};
	NULL_OK(ekvm_vm_set_pmu_event_filter(NULL, &pmu));
	NULL_OK(ekvm_vm_stats_fd(NULL));
	NULL_OK(ekvm_vm_enable_dirty_ring(NULL, 65536));
	NULL_OK(ekvm_vm_reset_dirty_rings(NULL));
	vcpu = (struct ekvm_vcpu *)1;
	NULL_OK(ekvm_vcpu_create(NULL, 0, &vcpu));
	CHECK(vcpu == NULL);
	ekvm_vm_destroy(NULL); /* allowed */
}

TEST(kvm_null_vcpu_handle)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_cpuid2 cpuid = {.nent = 0};
	struct kvm_enable_cap cap = {.cap = 0};
	struct kvm_lapic_state lapic;
	struct kvm_msrs msrs = {.nmsrs = 0};
	uint64_t u64;
	struct kvm_mp_state mp = {.mp_state = 0};
	static struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_vcpu_events events;
	struct kvm_guest_debug dbg = {.control = 0};
	struct kvm_translation tr = {.linear_address = 0};
	struct kvm_coalesced_mmio entry;
	struct ekvm_exit ex;
	memset(&regs, 0, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	memset(&fpu, 0, sizeof(fpu));
	memset(&lapic, 0, sizeof(lapic));
	memset(&xcrs, 0, sizeof(xcrs));
	memset(&dregs, 0, sizeof(dregs));
	memset(&events, 0, sizeof(events));

	NULL_OK(ekvm_vcpu_fd(NULL));
	NULL_OK(ekvm_vcpu_ioctl_raw(NULL, KVM_RUN, NULL));
	NULL_OK(ekvm_vcpu_get_regs(NULL, &regs));
	NULL_OK(ekvm_vcpu_set_regs(NULL, &regs));
	NULL_OK(ekvm_vcpu_get_sregs(NULL, &sregs));
	NULL_OK(ekvm_vcpu_set_sregs(NULL, &sregs));
	NULL_OK(ekvm_vcpu_get_fpu(NULL, &fpu));
	NULL_OK(ekvm_vcpu_set_fpu(NULL, &fpu));
	NULL_OK(ekvm_vcpu_set_cpuid2(NULL, &cpuid));
	NULL_OK(ekvm_vcpu_get_cpuid2(NULL, &cpuid));
	NULL_OK(ekvm_vcpu_enable_cap(NULL, &cap));
	NULL_OK(ekvm_vcpu_get_lapic(NULL, &lapic));
	NULL_OK(ekvm_vcpu_set_lapic(NULL, &lapic));
	NULL_OK(ekvm_vcpu_get_msrs(NULL, &msrs));
	NULL_OK(ekvm_vcpu_set_msrs(NULL, &msrs));
	NULL_OK(ekvm_vcpu_get_msr(NULL, 0x10, &u64));
	NULL_OK(ekvm_vcpu_set_msr(NULL, 0x10, 0));
	NULL_OK(ekvm_vcpu_get_mp_state(NULL, &mp));
	NULL_OK(ekvm_vcpu_set_mp_state(NULL, &mp));
	NULL_OK(ekvm_vcpu_get_xsave(NULL, &xsave));
	NULL_OK(ekvm_vcpu_set_xsave(NULL, &xsave));
	NULL_OK(ekvm_vcpu_xsave_size(NULL));
	NULL_OK(ekvm_vcpu_get_xsave2(NULL, &xsave, sizeof(xsave)));
	NULL_OK(ekvm_vcpu_set_xsave2(NULL, &xsave, sizeof(xsave)));
	NULL_OK(ekvm_vcpu_get_xcrs(NULL, &xcrs));
	NULL_OK(ekvm_vcpu_set_xcrs(NULL, &xcrs));
	NULL_OK(ekvm_vcpu_get_debugregs(NULL, &dregs));
	NULL_OK(ekvm_vcpu_set_debugregs(NULL, &dregs));
	NULL_OK(ekvm_vcpu_get_vcpu_events(NULL, &events));
	NULL_OK(ekvm_vcpu_set_vcpu_events(NULL, &events));
	NULL_OK(ekvm_vcpu_set_guest_debug(NULL, &dbg));
	NULL_OK(ekvm_vcpu_kvmclock_ctrl(NULL));
	NULL_OK(ekvm_vcpu_get_tsc_khz(NULL));
	NULL_OK(ekvm_vcpu_set_tsc_khz(NULL, 1000000));
	NULL_OK(ekvm_vcpu_translate(NULL, &tr));
	NULL_OK(ekvm_vcpu_smi(NULL));
	NULL_OK(ekvm_vcpu_nmi(NULL));
	NULL_OK(ekvm_vcpu_interrupt(NULL, 0x30));
	NULL_OK(ekvm_vcpu_tpr_access_reporting(NULL, true));
	NULL_OK(ekvm_vcpu_coalesced_mmio_pop(NULL, &entry));
	NULL_OK(ekvm_vcpu_run(NULL, &ex));
	struct kvm_sregs2 sregs2;
	memset(&sregs2, 0, sizeof(sregs2));
	NULL_OK(ekvm_vcpu_get_sregs2(NULL, &sregs2));
	NULL_OK(ekvm_vcpu_set_sregs2(NULL, &sregs2));
	NULL_OK(ekvm_vcpu_set_vapic_addr(NULL, 0x8000));
	struct kvm_nested_state nested = {.size = sizeof(nested)};
	NULL_OK(ekvm_vcpu_nested_state_size(NULL));
	NULL_OK(ekvm_vcpu_get_nested_state(NULL, &nested));
	NULL_OK(ekvm_vcpu_set_nested_state(NULL, &nested));
	sigset_t set;
	sigemptyset(&set);
	NULL_OK(ekvm_vcpu_set_signal_mask(NULL, &set));
	NULL_OK(ekvm_vcpu_set_signal_mask(NULL, NULL));
	struct kvm_x86_mce mce = {.bank = 0};
	NULL_OK(ekvm_vcpu_setup_mce(NULL, 4));
	NULL_OK(ekvm_vcpu_set_mce(NULL, &mce));
	struct kvm_device_attr attr = {.group = 0};
	NULL_OK(ekvm_vcpu_has_device_attr(NULL, &attr));
	NULL_OK(ekvm_vcpu_get_device_attr(NULL, &attr));
	NULL_OK(ekvm_vcpu_set_device_attr(NULL, &attr));
	NULL_OK(ekvm_vcpu_get_supported_hv_cpuid(NULL, &cpuid));
	NULL_OK(ekvm_vcpu_stats_fd(NULL));
	struct kvm_dirty_gfn gfn;
	NULL_OK(ekvm_vcpu_dirty_ring_harvest(NULL, &gfn, 1));
	/* a device fd that is not one: refused before any ioctl */
	CHECK_ERR(ekvm_device_has_attr(-1, &attr), -EINVAL);
	CHECK_ERR(ekvm_device_get_attr(-1, &attr), -EINVAL);
	CHECK_ERR(ekvm_device_set_attr(-1, &attr), -EINVAL);

	/* the accessors and plain stores tolerate NULL too */
	CHECK(ekvm_vcpu_run_area(NULL) == NULL);
	CHECK(ekvm_vcpu_sync_regs(NULL) == NULL);
	/* not 0, a valid id: a value no vCPU can have */
	CHECK_EQ(ekvm_vcpu_id(NULL), EKVM_VCPU_ID_NONE);
	CHECK(EKVM_VCPU_ID_NONE > UINT32_MAX);
	ekvm_vcpu_set_sync_valid(NULL, KVM_SYNC_X86_REGS);
	ekvm_vcpu_set_sync_dirty(NULL, KVM_SYNC_X86_REGS);
	ekvm_vcpu_set_immediate_exit(NULL, true);
	ekvm_vcpu_set_request_interrupt_window(NULL, true);
	ekvm_vcpu_destroy(NULL);
}

TEST(kvm_null_vcpu_decode_exit)
{
	/* decoding without a vCPU: no crash, an exit that says nothing */
	struct ekvm_exit ex;
	memset(&ex, 0, sizeof(ex));
	ex.kind = EKVM_EXIT_HLT;
	ex.raw_reason = KVM_EXIT_HLT;
	ekvm_vcpu_decode_exit(NULL, &ex);
	CHECK_EQ(ex.kind, EKVM_EXIT_UNSUPPORTED);
	CHECK_EQ(ex.raw_reason, KVM_EXIT_UNKNOWN);
	ekvm_vcpu_decode_exit(NULL, NULL);
}
