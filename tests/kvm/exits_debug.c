/* tests/kvm/exits_debug.c - Debug exits via KVM_SET_GUEST_DEBUG: single-step, hw and sw breakpoints. */
#include "../lib/kvm_util.h"

#include <stdlib.h>

/*
 * Environment limits found while writing these (both are nested setups):
 *  - the QEMU-TCG sandbox (kvm_amd 6.1 on TCG's SVM): breakpoints that L1
 *    KVM programs for L2 through DR0-3 + the VMCB's DR7 never fire (TCG
 *    arms hardware breakpoints when a DR is written with DR7 enabling it,
 *    not when VMRUN loads DR7), and TCG delivers INT3's #BP to L2 without
 *    honouring KVM's #BP intercept. Guest-owned breakpoints and single-step
 *    do work there.
 *  - one native x86 host (itself a VM with nested VMX) delivers no data
 *    breakpoints at all, not even guest-owned ones, and hands KVM the INT3
 *    as an instruction to emulate (an emulation failure).
 * The tests below skip, saying so, only on those exact signatures (and the
 * sandbox ones only under the sandbox, EMBER_SANDBOX=1); anything else fails.
 */

#define DB_VECTOR 1
#define BP_VECTOR 3
#define DR6_B0	  (1ull << 0)
#define DR6_B1	  (1ull << 1)
#define DR6_BS	  (1ull << 14)

static bool in_sandbox(void)
{
	const char *s = getenv("EMBER_SANDBOX");
	return s && strcmp(s, "1") == 0;
}

static void set_debug(struct kvmu_vcpu *v, uint32_t control, uint64_t dr0, uint64_t dr1,
		      uint64_t dr7)
{
	struct kvm_guest_debug dbg = {.control = control};
	dbg.arch.debugreg[0] = dr0;
	dbg.arch.debugreg[1] = dr1;
	dbg.arch.debugreg[7] = dr7;
	REQUIRE_OK(ekvm_vcpu_set_guest_debug(v->vcpu, &dbg));
}

static const struct ekvm_exit *expect_debug(struct kvmu_vcpu *v, uint32_t exception)
{
	const struct ekvm_exit *e = kvmu_run(v);
	if (e->kind != EKVM_EXIT_DEBUG || e->u.debug.exception != exception)
		kvmu_fail_exit(v, exception == DB_VECTOR ? "expected a Debug exit (#DB)"
							 : "expected a Debug exit (#BP)");
	CHECK_EQ(e->raw_reason, KVM_EXIT_DEBUG);
	return e;
}

/* Runs the guest through its first n SYNCs; the last one into *uc. */
static void skip_syncs(struct kvmu_vcpu *v, int n, struct kvmu_ucall *uc)
{
	for (int i = 0; i < n; i++)
		kvmu_expect_sync(v, uc);
}

/*
 * KVM_GUESTDBG_SINGLESTEP: one Debug exit (#DB, DR6.BS) per instruction,
 * with pc = the next instruction. The guest reports the addresses of four
 * consecutive instructions (nop; movabs, 10 bytes; inc, 3 bytes; nop); we step
 * until the movabs and require the next two steps to land exactly on the
 * following ones, with the registers as far as executed.
 */
KVM_TEST(exits_debug_single_step)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_debug);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(4, &g, &v);
	struct kvmu_ucall uc;
	struct kvm_regs regs;
	const struct ekvm_exit *e;

	kvmu_expect_sync(v, &uc);
	uint64_t ss_1 = uc.args[1], ss_2 = uc.args[2], ss_3 = uc.args[3];
	CHECK_EQ(ss_2 - ss_1, 10);
	CHECK_EQ(ss_3 - ss_2, 3);

	set_debug(v, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP, 0, 0, 0);
	int steps = 0;
	do {
		e = expect_debug(v, DB_VECTOR);
		CHECK(e->u.debug.dr6 & DR6_BS);
		REQUIRE(++steps < 200);
	} while (e->u.debug.pc != ss_1);
	e = expect_debug(v, DB_VECTOR);
	CHECK_EQ(e->u.debug.pc, ss_2);
	kvmu_get_regs(v, &regs);
	CHECK_EQ(regs.rax, 0x1122334455667788ull);
	e = expect_debug(v, DB_VECTOR);
	CHECK_EQ(e->u.debug.pc, ss_3);
	CHECK(e->u.debug.dr6 & DR6_BS);
	kvmu_get_regs(v, &regs);
	CHECK_EQ(regs.rip, ss_3);
	CHECK_EQ(regs.rax, 0x1122334455667789ull);

	set_debug(v, 0, 0, 0, 0);
	kvmu_expect_sync(v, &uc); /* next stop: the hw breakpoint part */
	kvmu_vm_destroy(vm);
}

/* KVM_GUESTDBG_USE_HW_BP, DR0 an execution breakpoint: a Debug exit before
 * the instruction runs, pc = its address, DR6.B0. */
KVM_TEST(exits_debug_hw_breakpoint)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_debug);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(4, &g, &v);
	struct kvmu_ucall uc;

	skip_syncs(v, 2, &uc);
	uint64_t hw_bp = uc.args[0];
	set_debug(v, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP, hw_bp, 0, 0x400 | (1ull << 0));
	const struct ekvm_exit *e = kvmu_run(v);
	if (in_sandbox() && kvmu_exit_is_ucall(e) && kvmu_host_is_amd(vm))
		TEST_SKIP("the breakpoint did not fire: QEMU TCG's nested SVM does not arm "
			  "breakpoints that come with VMRUN's DR7 (see the top of this file)");
	if (e->kind != EKVM_EXIT_DEBUG || e->u.debug.exception != DB_VECTOR)
		kvmu_fail_exit(v, "expected a Debug exit (#DB)");
	CHECK_EQ(e->u.debug.pc, hw_bp);
	CHECK(e->u.debug.dr6 & DR6_B0);
	struct kvm_regs regs;
	kvmu_get_regs(v, &regs);
	CHECK_EQ(regs.rip, hw_bp);

	/* off again (else the same instruction would break again) */
	set_debug(v, 0, 0, 0, 0);
	kvmu_expect_sync(v, &uc);
	kvmu_vm_destroy(vm);
}

/* KVM_GUESTDBG_USE_HW_BP, DR1 a 4-byte write watchpoint: a Debug exit after
 * the store (DR6.B1), the value already in memory. */
KVM_TEST(exits_debug_hw_watchpoint)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_debug);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(4, &g, &v);
	struct kvmu_ucall uc;

	skip_syncs(v, 3, &uc);
	if (uc.args[0] == 0)
		TEST_SKIP("this CPU delivers no data breakpoints, not even the guest's own");
	CHECK_EQ(uc.args[0], 1);
	kvmu_expect_sync(v, &uc);
	uint64_t watched = uc.args[0];
	/* DR7: L1 | RW1 = write | LEN1 = 4 bytes */
	set_debug(v, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP, 0, watched,
		  0x400 | (1ull << 2) | (1ull << 20) | (3ull << 22));
	const struct ekvm_exit *e = kvmu_run(v);
	if (in_sandbox() && kvmu_exit_is_ucall(e) && kvmu_host_is_amd(vm))
		TEST_SKIP("the watchpoint did not fire: QEMU TCG's nested SVM does not arm "
			  "breakpoints that come with VMRUN's DR7 (see the top of this file)");
	if (e->kind != EKVM_EXIT_DEBUG || e->u.debug.exception != DB_VECTOR)
		kvmu_fail_exit(v, "expected a Debug exit (#DB)");
	CHECK(e->u.debug.dr6 & DR6_B1);
	CHECK_EQ(kvmu_read32(vm, watched), 0x600d);

	set_debug(v, 0, 0, 0, 0);
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.args[0], 0x600d);
	kvmu_vm_destroy(vm);
}

/*
 * KVM_GUESTDBG_USE_SW_BP: the guest's int3 exits as Debug with exception 3
 * (#BP) and pc = RIP = the int3; we step over it by hand. Without this
 * exit the guest would take #BP itself and fail an assertion.
 */
KVM_TEST(exits_debug_sw_breakpoint)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_debug);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(4, &g, &v);
	struct kvmu_ucall uc;
	struct kvm_regs regs;

	skip_syncs(v, 6, &uc);
	uint64_t sw_bp = uc.args[0];
	set_debug(v, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP, 0, 0, 0);
	const struct ekvm_exit *e = kvmu_run(v);
	if (in_sandbox() && kvmu_exit_is_ucall(e) && kvmu_host_is_amd(vm)) {
		kvmu_decode_ucall(v, &uc);
		if (uc.cmd == UCALL_ASSERT_FAIL && uc.nargs == 3 && uc.args[0] == BP_VECTOR)
			TEST_SKIP("the guest took #BP itself: QEMU TCG's nested SVM ignores "
				  "KVM's #BP intercept for INT3 (see the top of this file)");
	}
	if (e->kind == EKVM_EXIT_INTERNAL_ERROR && !kvmu_host_is_amd(vm) &&
	    e->u.internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    (e->u.internal.data[0] & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
	    v->run->emulation_failure.insn_bytes[0] == 0xcc) {
		kvmu_get_regs(v, &regs);
		if (regs.rip == sw_bp)
			TEST_SKIP("this host's VMX handed KVM the int3 to emulate, not a #BP "
				  "exit (see the top of this file)");
	}
	if (e->kind != EKVM_EXIT_DEBUG || e->u.debug.exception != BP_VECTOR)
		kvmu_fail_exit(v, "expected a Debug exit (#BP)");
	CHECK_EQ(e->raw_reason, KVM_EXIT_DEBUG);
	CHECK_EQ(e->u.debug.pc, sw_bp);
	kvmu_get_regs(v, &regs);
	CHECK_EQ(regs.rip, sw_bp);
	regs.rip = sw_bp + 1;
	kvmu_set_regs(v, &regs);
	set_debug(v, 0, 0, 0, 0);
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.args[0], 2);
	kvmu_expect_done(v);
	kvmu_vm_destroy(vm);
}
