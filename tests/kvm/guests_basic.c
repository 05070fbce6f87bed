/* tests/kvm/guests_basic.c - the test guests in each CPU mode and the ucall channel, end to end. */
#include "../lib/kvm_util.h"

#include <string.h>

/* Real mode: CR0.PE clear, ucall from 16-bit code, guest-side assertion. */
KVM_TEST(guests_real_mode_hello)
{
	struct kvmu_guest g = KVMU_GUEST(rm16_hello);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(2, &g, &v);
	struct kvmu_ucall uc;

	CHECK_EQ(g.mode, KVMU_MODE_REAL);
	CHECK_EQ(g.base, 0x8000);
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.nargs, 2);
	CHECK_EQ(uc.args[0] & 1, 0); /* CR0.PE */
	CHECK_EQ(uc.args[1], 0x1600);
	CHECK_STR(uc.file, "tests/guests/rm16_hello.S");
	CHECK(uc.line > 0);
	kvmu_expect_done(v);
	/* after DONE the guest halts */
	kvmu_run(v);
	CHECK_EQ(v->exit.kind, EKVM_EXIT_HLT);
	kvmu_vm_destroy(vm);
}

/* 32-bit protected mode: flat segments, paging off, C runtime. */
KVM_TEST(guests_prot32_hello)
{
	struct kvmu_guest g = KVMU_GUEST(pm32_hello);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, 0xabcdef01);
	struct kvmu_ucall uc;
	struct kvm_sregs sregs;

	CHECK_EQ(g.mode, KVMU_MODE_PROT32);
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.nargs, 4);
	CHECK_EQ(uc.args[0], 0);
	CHECK_EQ(uc.args[1], 0xabcdef01);
	CHECK_EQ(uc.args[2] & 0x80000001, 1); /* PE on, PG off */
	CHECK_EQ(uc.args[3], 4);	      /* sizeof(void *) */
	CHECK_STR(uc.file, "tests/guests/pm32_hello.c");
	kvmu_expect_done(v);
	kvmu_get_sregs(v, &sregs);
	CHECK_EQ(sregs.cs.selector, KVMU_SEL_CODE32);
	CHECK_EQ(sregs.cs.db, 1);
	CHECK_EQ(sregs.efer & 0x400, 0); /* not LMA */
	kvmu_vm_destroy(vm);
}

/* 64-bit long mode: paging, EFER.LMA, a 64-bit value through the ucall. */
KVM_TEST(guests_long64_hello)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_hello);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, 0x123456789abcdefull);
	struct kvmu_ucall uc;

	CHECK_EQ(g.mode, KVMU_MODE_LONG64);
	CHECK_EQ(g.base, 0x100000);
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.args[0], 0);
	CHECK_EQ(uc.args[1], 0x123456789abcdefull);
	CHECK_EQ(uc.args[2] & 0x80000001, 0x80000001); /* PG, PE */
	CHECK_EQ(uc.args[3] & 0x500, 0x500);	       /* EFER.LME, LMA */
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.nargs, 3);
	CHECK_EQ(uc.args[0] & 0x20, 0x20); /* CR4.PAE */
	CHECK_EQ(uc.args[1], 8);
	CHECK_EQ(uc.args[2], 0x1122334455667788ull);
	CHECK_STR(uc.file, "tests/guests/lm64_hello.c");
	kvmu_expect_done(v);
	kvmu_vm_destroy(vm);
}

/*
 * A failed GUEST_ASSERT_EQ reaches the host as ASSERT_FAIL naming the guest
 * file and line, the expression and both values (the guest reports the line
 * it is about to fail on first). kvmu_run_ucall would turn it into this
 * test's failure; the raw variant lets us look at it.
 */
KVM_TEST(guests_assert_reaches_host)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_assert);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(4, &g, &v);
	struct kvmu_ucall uc;

	kvmu_expect_sync(v, &uc);
	REQUIRE_EQ(uc.nargs, 1);
	uint64_t want_line = uc.args[0];
	REQUIRE_EQ(kvmu_run_ucall_raw(v, &uc), UCALL_ASSERT_FAIL);
	CHECK_STR(uc.file, "tests/guests/lm64_assert.c");
	CHECK_EQ(uc.line, want_line);
	CHECK_STR(uc.text, "x + 1 == 42");
	CHECK_EQ(uc.nargs, 2);
	CHECK_EQ(uc.args[0], 8);
	CHECK_EQ(uc.args[1], 42);
	/* the guest stays halted after a failed assertion */
	kvmu_run(v);
	CHECK_EQ(v->exit.kind, EKVM_EXIT_HLT);
	kvmu_vm_destroy(vm);
}

/* The same from 16-bit assembly (RM_ASSERT_EQ). */
KVM_TEST(guests_real_mode_assert_reaches_host)
{
	struct kvmu_guest g = KVMU_GUEST(rm16_assert);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(2, &g, &v);
	struct kvmu_ucall uc;

	REQUIRE_EQ(kvmu_run_ucall_raw(v, &uc), UCALL_ASSERT_FAIL);
	CHECK_STR(uc.file, "tests/guests/rm16_assert.S");
	CHECK_EQ(uc.line, 9);
	CHECK_STR(uc.text, "%ecx == $0x1234");
	CHECK_EQ(uc.nargs, 2);
	CHECK_EQ(uc.args[0], 0x1233);
	CHECK_EQ(uc.args[1], 0x1234);
	kvmu_vm_destroy(vm);
}

/* An unexpected exception in a 64-bit guest is reported as an assertion
 * failure carrying vector, error code and RIP. */
KVM_TEST(guests_unexpected_exception_reported)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_assert);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, 1); /* arg 1: ud2 */
	struct kvmu_ucall uc;

	kvmu_expect_sync(v, &uc);
	uint64_t ud2_rip = uc.args[0];
	REQUIRE_EQ(kvmu_run_ucall_raw(v, &uc), UCALL_ASSERT_FAIL);
	CHECK_STR(uc.file, "tests/guests/rt/guest_rt.c");
	CHECK(strstr(uc.text, "unexpected exception") != NULL);
	CHECK_EQ(uc.nargs, 3);
	CHECK_EQ(uc.args[0], 6); /* #UD */
	CHECK_EQ(uc.args[2], ud2_rip);
	kvmu_vm_destroy(vm);
}

/* Guest memory accessors are bounds checked: in range works, the exact end
 * works, one byte past or a wrapping length is refused. */
KVM_TEST(guests_memory_bounds)
{
	struct kvmu_vm *vm = kvmu_vm_create(2);
	uint64_t end = 2ull << 20;
	CHECK(kvmu_gpa_ok(vm, 0, end));
	CHECK(kvmu_gpa_ok(vm, end - 8, 8));
	CHECK(kvmu_gpa_ok(vm, end, 0));
	CHECK(!kvmu_gpa_ok(vm, end - 7, 8));
	CHECK(!kvmu_gpa_ok(vm, end + 1, 0));
	CHECK(!kvmu_gpa_ok(vm, 8, UINT64_MAX));
	CHECK(!kvmu_gpa_ok(vm, UINT64_MAX, 2));
	kvmu_write64(vm, end - 8, 0x0102030405060708ull);
	CHECK_EQ(kvmu_read64(vm, end - 8), 0x0102030405060708ull);
	CHECK_EQ(kvmu_read32(vm, end - 4), 0x01020304);
	kvmu_vm_destroy(vm);
}
