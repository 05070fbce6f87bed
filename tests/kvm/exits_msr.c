/* tests/kvm/exits_msr.c - X86_RDMSR / X86_WRMSR exits: MSR filter, unknown MSRs, #GP from the host. */
#include "../lib/kvm_util.h"

#define MSR_STAR	 0xc0000081u
#define MSR_LSTAR	 0xc0000082u
#define MSR_TEST_UNKNOWN 0x2ee70000u

static void expect_msr(struct kvmu_vcpu *v, enum ekvm_exit_kind kind, uint32_t index,
		       uint32_t reason)
{
	kvmu_run(v);
	const struct ekvm_exit *e = &v->exit;
	if (e->kind != kind || e->u.msr.index != index)
		kvmu_fail_exit(v, kind == EKVM_EXIT_X86_RDMSR ? "expected an X86Rdmsr exit"
							      : "expected an X86Wrmsr exit");
	CHECK_EQ(e->u.msr.reason, reason);
	REQUIRE(e->u.msr.data != NULL && e->u.msr.error != NULL);
}

/*
 * KVM_CAP_X86_USER_SPACE_MSR (FILTER | UNKNOWN) and a filter that denies
 * STAR: the guest's RDMSR/WRMSR of STAR and of an MSR KVM does not know exit
 * to the host, which answers a value (the guest checks it), takes a written
 * value (checked here), or sets error = 1 (the guest sees #GP). LSTAR stays
 * in the kernel. STAR itself is never touched: the guest's write went to us.
 */
KVM_TEST(exits_msr_filter_and_unknown)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_msr);
	struct kvmu_vm *vm = kvmu_vm_create(4);

	if (ekvm_vm_check_extension(vm->vm, KVM_CAP_X86_USER_SPACE_MSR) <= 0 ||
	    ekvm_vm_check_extension(vm->vm, KVM_CAP_X86_MSR_FILTER) <= 0)
		TEST_SKIP("KVM lacks KVM_CAP_X86_USER_SPACE_MSR or KVM_CAP_X86_MSR_FILTER");
	REQUIRE_OK(ekvm_vm_enable_user_space_msr(vm->vm, KVM_MSR_EXIT_REASON_FILTER |
							     KVM_MSR_EXIT_REASON_UNKNOWN));
	uint8_t deny = 0; /* bit 0 clear: STAR denied */
	struct kvm_msr_filter filter = {
	    .flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
	    .ranges[0] = {.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			  .nmsrs = 1,
			  .base = MSR_STAR,
			  .bitmap = &deny},
	};
	REQUIRE_OK(ekvm_vm_set_msr_filter(vm->vm, &filter));
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, 0);
	const struct ekvm_exit *e = &v->exit;

	expect_msr(v, EKVM_EXIT_X86_RDMSR, MSR_STAR, KVM_MSR_EXIT_REASON_FILTER);
	CHECK_EQ(e->raw_reason, KVM_EXIT_X86_RDMSR);
	*e->u.msr.data = 0x1122334455667788ull;
	*e->u.msr.error = 0;

	expect_msr(v, EKVM_EXIT_X86_WRMSR, MSR_STAR, KVM_MSR_EXIT_REASON_FILTER);
	CHECK_EQ(e->raw_reason, KVM_EXIT_X86_WRMSR);
	CHECK_EQ(e->u.msr.value, 0x002300100000beefull);
	*e->u.msr.error = 0;

	expect_msr(v, EKVM_EXIT_X86_RDMSR, MSR_TEST_UNKNOWN, KVM_MSR_EXIT_REASON_UNKNOWN);
	*e->u.msr.error = 1; /* -> #GP in the guest */
	expect_msr(v, EKVM_EXIT_X86_RDMSR, MSR_TEST_UNKNOWN, KVM_MSR_EXIT_REASON_UNKNOWN);
	*e->u.msr.data = 0x5555aaaa5555aaaaull;
	*e->u.msr.error = 0;

	expect_msr(v, EKVM_EXIT_X86_WRMSR, MSR_TEST_UNKNOWN, KVM_MSR_EXIT_REASON_UNKNOWN);
	CHECK_EQ(e->u.msr.value, 0xabcdef);
	*e->u.msr.error = 0;
	expect_msr(v, EKVM_EXIT_X86_WRMSR, MSR_STAR, KVM_MSR_EXIT_REASON_FILTER);
	CHECK_EQ(e->u.msr.value, 1);
	*e->u.msr.error = 1; /* -> #GP */

	kvmu_expect_done(v);

	uint64_t star = 0, lstar = 0;
	REQUIRE_OK(ekvm_vcpu_get_msr(v->vcpu, MSR_STAR, &star));
	REQUIRE_OK(ekvm_vcpu_get_msr(v->vcpu, MSR_LSTAR, &lstar));
	CHECK_EQ(star, 0);
	CHECK_EQ(lstar, 0x100000);
	kvmu_vm_destroy(vm);
}

/* Without KVM_CAP_X86_USER_SPACE_MSR a filtered MSR is a #GP for the guest
 * and no exit: the same guest then fails its first assertion, at the line
 * of the RDMSR of STAR, with an unexpected #GP (vector 13). */
KVM_TEST(exits_msr_filter_without_user_space_msr_is_gp)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_msr);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	struct kvmu_ucall uc;

	if (ekvm_vm_check_extension(vm->vm, KVM_CAP_X86_MSR_FILTER) <= 0)
		TEST_SKIP("KVM lacks KVM_CAP_X86_MSR_FILTER");
	uint8_t deny = 0;
	struct kvm_msr_filter filter = {
	    .flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
	    .ranges[0] = {.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			  .nmsrs = 1,
			  .base = MSR_STAR,
			  .bitmap = &deny},
	};
	REQUIRE_OK(ekvm_vm_set_msr_filter(vm->vm, &filter));
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, 0);
	REQUIRE_EQ(kvmu_run_ucall_raw(v, &uc), UCALL_ASSERT_FAIL);
	CHECK_STR(uc.file, "tests/guests/rt/guest_rt.c");
	REQUIRE_EQ(uc.nargs, 3);
	CHECK_EQ(uc.args[0], 13);
	kvmu_vm_destroy(vm);
}
