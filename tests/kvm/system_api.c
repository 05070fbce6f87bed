/* tests/kvm/system_api.c - /dev/kvm (system) operations of the binding against real KVM. */
#include "vm_realmode.h"

#define PAGE 4096

static struct ekvm_sys *open_sys(void)
{
	struct ekvm_sys *sys = NULL;
	REQUIRE_OK(ekvm_sys_open(&sys));
	REQUIRE(sys != NULL);
	return sys;
}

KVM_TEST(system_open_and_api_version)
{
	struct ekvm_sys *sys = open_sys();
	CHECK(ekvm_sys_fd(sys) >= 0);
	CHECK_EQ(ekvm_sys_api_version(sys), 12);
	/* the raw tier gives the same answer */
	CHECK_EQ(ekvm_sys_ioctl_raw(sys, KVM_GET_API_VERSION, NULL), 12);
	ekvm_sys_close(sys);

	/* an explicit path and a wrapped fd work the same way */
	REQUIRE_OK(ekvm_sys_open_path("/dev/kvm", &sys));
	CHECK_EQ(ekvm_sys_api_version(sys), 12);
	ekvm_sys_close(sys);
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE_OK(ekvm_sys_from_fd(fd, &sys));
	CHECK_EQ(ekvm_sys_fd(sys), fd);
	CHECK_EQ(ekvm_sys_api_version(sys), 12);
	ekvm_sys_close(sys);
	/* the handle owned the fd: it is closed now */
	CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
}

KVM_TEST(system_check_extension)
{
	struct ekvm_sys *sys = open_sys();
	/* present on every x86 KVM this project supports */
	static const long present[] = {
	    KVM_CAP_IRQCHIP,	    KVM_CAP_HLT,
	    KVM_CAP_USER_MEMORY,    KVM_CAP_SET_TSS_ADDR,
	    KVM_CAP_EXT_CPUID,	    KVM_CAP_NR_VCPUS,
	    KVM_CAP_NR_MEMSLOTS,    KVM_CAP_PIT2,
	    KVM_CAP_IOEVENTFD,	    KVM_CAP_IRQFD,
	    KVM_CAP_MP_STATE,	    KVM_CAP_COALESCED_MMIO,
	    KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_MAX_VCPUS,
	    KVM_CAP_MAX_VCPU_ID,    KVM_CAP_READONLY_MEM,
	    KVM_CAP_XCRS,	    KVM_CAP_DEBUGREGS,
	    KVM_CAP_VCPU_EVENTS,    KVM_CAP_GET_TSC_KHZ,
	    KVM_CAP_KVMCLOCK_CTRL,  KVM_CAP_SIGNAL_MSI,
	    KVM_CAP_IRQ_ROUTING,    KVM_CAP_ADJUST_CLOCK,
	    KVM_CAP_SYNC_REGS,	    KVM_CAP_SET_IDENTITY_MAP_ADDR,
	};
	for (size_t i = 0; i < sizeof(present) / sizeof(present[0]); i++) {
		int r = ekvm_sys_check_extension(sys, present[i]);
		if (r <= 0)
			test_fail_at(__FILE__, __LINE__, false, "capability %ld: got %d, want > 0",
				     present[i], r);
	}
	/* other architectures' capabilities and numbers nobody defined */
	static const long absent[] = {KVM_CAP_S390_PSW, KVM_CAP_ARM_PSCI, KVM_CAP_PPC_HIOR,
				      KVM_CAP_MIPS_FPU, 100000,		  1L << 30};
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		CHECK_EQ(ekvm_sys_check_extension(sys, absent[i]), 0);

	/* capability values that carry information */
	CHECK_EQ(ekvm_sys_check_extension(sys, KVM_CAP_COALESCED_MMIO),
		 KVM_COALESCED_MMIO_PAGE_OFFSET);
	int nr = ekvm_sys_check_extension(sys, KVM_CAP_NR_VCPUS);
	int max = ekvm_sys_check_extension(sys, KVM_CAP_MAX_VCPUS);
	int max_id = ekvm_sys_check_extension(sys, KVM_CAP_MAX_VCPU_ID);
	CHECK(nr >= 1 && nr <= max);
	CHECK(max_id >= max);
	CHECK(ekvm_sys_check_extension(sys, KVM_CAP_NR_MEMSLOTS) >= 32);
	int sync = ekvm_sys_check_extension(sys, KVM_CAP_SYNC_REGS);
	CHECK_EQ(sync & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS),
		 KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS);

	/* the VM fd answers too (KVM_CAP_CHECK_EXTENSION_VM), the same for generic caps */
	struct ekvm_vm *vm;
	REQUIRE_OK(ekvm_vm_create(sys, 0, &vm));
	CHECK(ekvm_sys_check_extension(sys, KVM_CAP_CHECK_EXTENSION_VM) > 0);
	CHECK_EQ(ekvm_vm_check_extension(vm, KVM_CAP_USER_MEMORY),
		 ekvm_sys_check_extension(sys, KVM_CAP_USER_MEMORY));
	CHECK_EQ(ekvm_vm_check_extension(vm, KVM_CAP_NR_MEMSLOTS),
		 ekvm_sys_check_extension(sys, KVM_CAP_NR_MEMSLOTS));
	CHECK_EQ(ekvm_vm_check_extension(vm, KVM_CAP_S390_PSW), 0);
	ekvm_vm_destroy(vm);
	ekvm_sys_close(sys);
}

KVM_TEST(system_vcpu_mmap_size)
{
	struct ekvm_sys *sys = open_sys();
	int size = ekvm_sys_vcpu_mmap_size(sys);
	TEST_LOG("vcpu mmap size %d", size);
	REQUIRE_OK(size);
	/* kvm_run page + the PIO data page (x86) + the coalesced MMIO ring page */
	CHECK(size >= 2 * PAGE);
	CHECK_EQ(size % PAGE, 0);
	CHECK((size_t)size >= sizeof(struct kvm_run));
	CHECK(size >= (KVM_COALESCED_MMIO_PAGE_OFFSET + 1) * PAGE);
	ekvm_sys_close(sys);
}

static struct kvm_cpuid2 *cpuid_alloc(uint32_t nent)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
	REQUIRE(c != NULL);
	c->nent = nent;
	return c;
}

KVM_TEST(system_supported_cpuid)
{
	struct ekvm_sys *sys = open_sys();

	/* caller buffer, big enough */
	struct kvm_cpuid2 *big = cpuid_alloc(512);
	REQUIRE_OK(ekvm_sys_get_supported_cpuid(sys, big));
	TEST_LOG("%u supported CPUID entries", big->nent);
	CHECK(big->nent > 2 && big->nent < 512);
	const struct kvm_cpuid_entry2 *leaf0 = ekvm_cpuid_find(big, 0, 0);
	const struct kvm_cpuid_entry2 *leaf1 = ekvm_cpuid_find(big, 1, 0);
	const struct kvm_cpuid_entry2 *ext0 = ekvm_cpuid_find(big, 0x80000000, 0);
	REQUIRE(leaf0 && leaf1 && ext0);
	CHECK(leaf0->eax >= 1);
	CHECK(ext0->eax >= 0x80000001);
	/* every basic leaf reported is within leaf 0's maximum */
	for (uint32_t i = 0; i < big->nent; i++)
		if (big->entries[i].function < 0x40000000)
			CHECK(big->entries[i].function <= leaf0->eax);
	/* leaf 1 EDX: FPU (bit 0), TSC (4), MSR (5), APIC (9) */
	CHECK_EQ(leaf1->edx & 0x231, 0x231);

	/* a buffer that is too small: -E2BIG */
	struct kvm_cpuid2 *tiny = cpuid_alloc(1);
	CHECK_ERR(ekvm_sys_get_supported_cpuid(sys, tiny), -E2BIG);

	/* allocating form: the same entries */
	struct kvm_cpuid2 *all = NULL;
	REQUIRE_OK(ekvm_sys_supported_cpuid(sys, &all));
	REQUIRE(all != NULL);
	CHECK_EQ(all->nent, big->nent);
	if (all->nent == big->nent)
		CHECK(memcmp(all->entries, big->entries, all->nent * sizeof(all->entries[0])) == 0);
	free(all);
	free(tiny);
	free(big);
	ekvm_sys_close(sys);
}

KVM_TEST(system_emulated_cpuid)
{
	struct ekvm_sys *sys = open_sys();
	REQUIRE(rm_has_cap(sys, KVM_CAP_EXT_EMUL_CPUID));
	struct kvm_cpuid2 *buf = cpuid_alloc(128);
	REQUIRE_OK(ekvm_sys_get_emulated_cpuid(sys, buf));
	TEST_LOG("%u emulated CPUID entries", buf->nent);
	CHECK(buf->nent >= 1);
	/* KVM emulates MOVBE (leaf 1 ECX bit 22) whatever the host has */
	const struct kvm_cpuid_entry2 *leaf1 = ekvm_cpuid_find(buf, 1, 0);
	REQUIRE(leaf1 != NULL);
	CHECK(leaf1->ecx & (1u << 22));

	struct kvm_cpuid2 *tiny = cpuid_alloc(1);
	CHECK_ERR(ekvm_sys_get_emulated_cpuid(sys, tiny), -E2BIG);

	struct kvm_cpuid2 *all = NULL;
	REQUIRE_OK(ekvm_sys_emulated_cpuid(sys, &all));
	REQUIRE(all != NULL);
	CHECK_EQ(all->nent, buf->nent);
	if (all->nent == buf->nent)
		CHECK(memcmp(all->entries, buf->entries, all->nent * sizeof(all->entries[0])) == 0);
	free(all);
	free(tiny);
	free(buf);
	ekvm_sys_close(sys);
}

static struct kvm_msr_list *msr_list_alloc(uint32_t n)
{
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + n * sizeof(l->indices[0]));
	REQUIRE(l != NULL);
	l->nmsrs = n;
	return l;
}

static bool msr_list_has(const struct kvm_msr_list *l, uint32_t index)
{
	for (uint32_t i = 0; i < l->nmsrs; i++)
		if (l->indices[i] == index)
			return true;
	return false;
}

KVM_TEST(system_msr_index_list)
{
	struct ekvm_sys *sys = open_sys();

	/* too small: -E2BIG and the needed count */
	struct kvm_msr_list *probe = msr_list_alloc(0);
	CHECK_ERR(ekvm_sys_get_msr_index_list(sys, probe), -E2BIG);
	uint32_t needed = probe->nmsrs;
	TEST_LOG("%u MSRs to save", needed);
	REQUIRE(needed > 4);
	struct kvm_msr_list *one = msr_list_alloc(1);
	CHECK_ERR(ekvm_sys_get_msr_index_list(sys, one), -E2BIG);
	CHECK_EQ(one->nmsrs, needed);

	/* exactly the needed count */
	struct kvm_msr_list *list = msr_list_alloc(needed);
	REQUIRE_OK(ekvm_sys_get_msr_index_list(sys, list));
	CHECK_EQ(list->nmsrs, needed);
	CHECK(msr_list_has(list, 0x10));  /* IA32_TSC */
	CHECK(msr_list_has(list, 0x174)); /* IA32_SYSENTER_CS */

	/* allocating form */
	struct kvm_msr_list *all = NULL;
	REQUIRE_OK(ekvm_sys_msr_index_list(sys, &all));
	REQUIRE(all != NULL);
	CHECK_EQ(all->nmsrs, needed);
	if (all->nmsrs == needed)
		CHECK(memcmp(all->indices, list->indices, needed * sizeof(uint32_t)) == 0);
	free(all);
	free(list);
	free(one);
	free(probe);
	ekvm_sys_close(sys);
}

KVM_TEST(system_msr_feature_index_list)
{
	struct ekvm_sys *sys = open_sys();
	REQUIRE(rm_has_cap(sys, KVM_CAP_GET_MSR_FEATURES));

	struct kvm_msr_list *probe = msr_list_alloc(0);
	CHECK_ERR(ekvm_sys_get_msr_feature_index_list(sys, probe), -E2BIG);
	uint32_t needed = probe->nmsrs;
	TEST_LOG("%u feature MSRs", needed);
	REQUIRE(needed >= 2);

	struct kvm_msr_list *list = msr_list_alloc(needed);
	REQUIRE_OK(ekvm_sys_get_msr_feature_index_list(sys, list));
	CHECK_EQ(list->nmsrs, needed);
	/* KVM always offers IA32_ARCH_CAPABILITIES and IA32_UCODE_REV */
	CHECK(msr_list_has(list, 0x10a));
	CHECK(msr_list_has(list, 0x8b));

	struct kvm_msr_list *all = NULL;
	REQUIRE_OK(ekvm_sys_msr_feature_index_list(sys, &all));
	REQUIRE(all != NULL);
	CHECK_EQ(all->nmsrs, needed);
	free(all);
	free(list);
	free(probe);
	ekvm_sys_close(sys);
}

KVM_TEST(system_feature_msrs)
{
	struct ekvm_sys *sys = open_sys();
	REQUIRE(rm_has_cap(sys, KVM_CAP_GET_MSR_FEATURES));
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[3];
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 2;
	m.e[0].index = 0x10a; /* IA32_ARCH_CAPABILITIES */
	m.e[1].index = 0x8b;  /* IA32_UCODE_REV */
	m.e[0].data = m.e[1].data = 0xdeadbeefdeadbeefull;
	CHECK_EQ(ekvm_sys_get_feature_msrs(sys, &m.hdr), 2);
	TEST_LOG("ARCH_CAPABILITIES 0x%llx UCODE_REV 0x%llx", (unsigned long long)m.e[0].data,
		 (unsigned long long)m.e[1].data);
	/* KVM wrote both values over the pattern */
	CHECK(m.e[0].data != 0xdeadbeefdeadbeefull);
	CHECK(m.e[1].data != 0xdeadbeefdeadbeefull);

	/* an MSR that is not a feature MSR in the middle: KVM stops there */
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 3;
	m.e[0].index = 0x10a;
	m.e[1].index = 0xdeadbeef;
	m.e[2].index = 0x8b;
	CHECK_EQ(ekvm_sys_get_feature_msrs(sys, &m.hdr), 1);
	ekvm_sys_close(sys);
}

KVM_TEST(system_mce_cap_supported)
{
	struct ekvm_sys *sys = open_sys();
	REQUIRE(rm_has_cap(sys, KVM_CAP_MCE));
	uint64_t cap = 0;
	REQUIRE_OK(ekvm_sys_get_mce_cap_supported(sys, &cap));
	TEST_LOG("MCG_CAP supported 0x%llx", (unsigned long long)cap);
	/* MCG_CTL_P (bit 8) is always offered; the bank count is KVM_CAP_MCE's value
	 * (KVM_X86_SETUP_MCE takes it in bits 7..0) */
	CHECK(cap & (1u << 8));
	int banks = ekvm_sys_check_extension(sys, KVM_CAP_MCE);
	CHECK(banks >= 1 && banks <= 32);
	ekvm_sys_close(sys);
}

KVM_TEST(system_create_vm_types)
{
	struct ekvm_sys *sys = open_sys();
	struct ekvm_vm *vm = NULL;
	REQUIRE_OK(ekvm_vm_create(sys, 0, &vm));
	REQUIRE(vm != NULL);
	CHECK(ekvm_vm_fd(vm) >= 0);
	/* a VM outlives the /dev/kvm handle it came from */
	ekvm_sys_close(sys);
	CHECK(ekvm_vm_check_extension(vm, KVM_CAP_USER_MEMORY) > 0);
	ekvm_vm_destroy(vm);

	sys = open_sys();
	/* machine types x86 does not have */
	struct ekvm_vm *bad = NULL;
	CHECK_ERR(ekvm_vm_create(sys, 0xdead, &bad), -EINVAL);
	CHECK_ERR(ekvm_vm_create(sys, 31, &bad), -EINVAL);
	/* two VMs at once are independent */
	struct ekvm_vm *a, *b;
	REQUIRE_OK(ekvm_vm_create(sys, 0, &a));
	REQUIRE_OK(ekvm_vm_create(sys, 0, &b));
	CHECK(ekvm_vm_fd(a) != ekvm_vm_fd(b));
	ekvm_vm_destroy(a);
	ekvm_vm_destroy(b);
	ekvm_sys_close(sys);
}
