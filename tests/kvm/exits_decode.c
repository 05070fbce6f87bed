/* tests/kvm/exits_decode.c - ekvm_vcpu_decode_exit on a synthetic kvm_run for every KVM_EXIT_*. */
#include "../lib/kvm_util.h"

#include <stddef.h>

/*
 * Exit reasons the other tests/kvm/exits_*.c produce with a real guest:
 * IO (in/out, widths 1/2/4, string), MMIO (read/write, 1/2/4/8), HLT,
 * SHUTDOWN, INTR, IRQ_WINDOW_OPEN, X86_RDMSR, X86_WRMSR, HYPERCALL, DEBUG,
 * INTERNAL_ERROR, FAIL_ENTRY, SYSTEM_EVENT (exits_io.c, exits_msr.c,
 * exits_misc.c, exits_debug.c, exits_irq.c) and, where the kernel allows,
 * TPR_ACCESS, IOAPIC_EOI, HYPERV, XEN and DIRTY_RING_FULL (exits_more.c).
 * XEN needs a kernel built with CONFIG_KVM_XEN: neither Debian's 6.1 (the
 * sandbox) nor the native host we tried has it, so exits_xen_hypercall skips
 * there. Some of the others skip on known limits of nested environments
 * (each test says which, and skips only on that exact signature).
 *
 * Exit reasons that cannot be produced by an x86 guest on the kernels we
 * test (Debian 6.1 kvm_amd in the QEMU-TCG sandbox; a native KVM host where
 * there is one), and why. Their decoding is checked below on a synthetic
 * kvm_run instead:
 *
 *   UNKNOWN (0)           x86 KVM reports exit codes it does not handle as
 *                         INTERNAL_ERROR/UNEXPECTED_EXIT_REASON, never UNKNOWN.
 *   EXCEPTION (1)         VMX only, for a real-mode guest without
 *                         unrestricted guest support (pre-Westmere); SVM never.
 *   SET_TPR (11)          defined in the ABI, set by no kernel.
 *   S390_SIEIC (13), S390_RESET (14), S390_UCONTROL (20), S390_TSCH (22),
 *   S390_STSI (25)        s390 only.
 *   DCR (15)              PowerPC 44x only (removed from the kernel).
 *   NMI (16)              defined, set by no kernel.
 *   OSI (18), PAPR_HCALL (19), WATCHDOG (21), EPR (23)
 *                         PowerPC only.
 *   ARM_NISV (28)         arm64 only.
 *   AP_RESET_HOLD (32)    AMD SEV-ES guests only (needs SEV hardware).
 *   X86_BUS_LOCK (33)     needs bus-lock detection (Intel since Sapphire
 *                         Rapids, AMD Zen 5 with Linux 6.12+); TCG's SVM has
 *                         none and 6.1 has no AMD support.
 *   RISCV_SBI (35), RISCV_CSR (36)
 *                         RISC-V only.
 *   NOTIFY (37)           Intel "notify VM exit" (Sapphire Rapids+) for a
 *                         guest stuck in a non-interruptible window; not on
 *                         AMD; not something a test guest provokes reliably.
 *   LOONGARCH_IOCSR (38)  LoongArch only.
 *   MEMORY_FAULT (39)     Linux 6.8+ (guest_memfd / private memory); the
 *                         sandbox kernel is 6.1.
 *   TDX (40)              Intel TDX guests only.
 */

struct reason_case {
	uint32_t reason;
	enum ekvm_exit_kind kind;
};

/* Every KVM_EXIT_* that decodes to a kind of the same value. */
static const uint32_t same_kind[] = {
    KVM_EXIT_UNKNOWN,
    KVM_EXIT_EXCEPTION,
    KVM_EXIT_HYPERCALL,
    KVM_EXIT_DEBUG,
    KVM_EXIT_HLT,
    KVM_EXIT_IRQ_WINDOW_OPEN,
    KVM_EXIT_SHUTDOWN,
    KVM_EXIT_FAIL_ENTRY,
    KVM_EXIT_INTR,
    KVM_EXIT_SET_TPR,
    KVM_EXIT_TPR_ACCESS,
    KVM_EXIT_S390_SIEIC,
    KVM_EXIT_S390_RESET,
    KVM_EXIT_DCR,
    KVM_EXIT_NMI,
    KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_OSI,
    KVM_EXIT_PAPR_HCALL,
    KVM_EXIT_S390_UCONTROL,
    KVM_EXIT_WATCHDOG,
    KVM_EXIT_S390_TSCH,
    KVM_EXIT_EPR,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_EXIT_S390_STSI,
    KVM_EXIT_IOAPIC_EOI,
    KVM_EXIT_HYPERV,
    KVM_EXIT_ARM_NISV,
    KVM_EXIT_X86_RDMSR,
    KVM_EXIT_X86_WRMSR,
    KVM_EXIT_DIRTY_RING_FULL,
    KVM_EXIT_AP_RESET_HOLD,
    KVM_EXIT_X86_BUS_LOCK,
    KVM_EXIT_XEN,
    KVM_EXIT_RISCV_SBI,
    KVM_EXIT_RISCV_CSR,
    KVM_EXIT_NOTIFY,
    KVM_EXIT_LOONGARCH_IOCSR,
    KVM_EXIT_MEMORY_FAULT,
    KVM_EXIT_TDX,
};

static void decode(struct kvmu_vcpu *v, uint32_t reason, struct ekvm_exit *e)
{
	v->run->exit_reason = reason;
	memset(e, 0xa5, sizeof(*e));
	ekvm_vcpu_decode_exit(v->vcpu, e);
	CHECK_EQ(e->raw_reason, reason);
}

/* Every exit reason of the ABI (0..40) decodes to its kind, is named, and
 * its kind is named; numbers past the known ones are Unsupported. */
KVM_TEST(exits_decode_every_reason)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_hello);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(2, &g, &v);
	struct ekvm_exit e;
	bool seen[KVM_EXIT_TDX + 1] = {false};

	for (size_t i = 0; i < sizeof(same_kind) / sizeof(same_kind[0]); i++) {
		uint32_t r = same_kind[i];
		decode(v, r, &e);
		CHECK_EQ(e.kind, r);
		const char *name = ekvm_exit_reason_name(r);
		CHECK(name != NULL && strncmp(name, "KVM_EXIT_", 9) == 0);
		CHECK(strcmp(ekvm_exit_kind_name(e.kind), "Invalid") != 0);
		seen[r] = true;
	}
	/* IO and MMIO are split by direction (exits_decode_io_mmio) */
	seen[KVM_EXIT_IO] = seen[KVM_EXIT_MMIO] = true;
	CHECK_STR(ekvm_exit_reason_name(KVM_EXIT_IO), "KVM_EXIT_IO");
	CHECK_STR(ekvm_exit_reason_name(KVM_EXIT_MMIO), "KVM_EXIT_MMIO");
	for (uint32_t r = 0; r <= KVM_EXIT_TDX; r++)
		if (!seen[r])
			TEST_FAIL("exit reason %u missing from this test's table", r);

	const uint32_t unknown[] = {KVM_EXIT_TDX + 1, 99, 100, 1000, 0xffffffffu};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		decode(v, unknown[i], &e);
		CHECK_EQ(e.kind, EKVM_EXIT_UNSUPPORTED);
		CHECK(ekvm_exit_reason_name(unknown[i]) == NULL);
	}
	CHECK_STR(ekvm_exit_kind_name(EKVM_EXIT_UNSUPPORTED), "Unsupported");
	CHECK_STR(ekvm_exit_kind_name(EKVM_EXIT_KIND_MAX), "Invalid");
	CHECK_STR(ekvm_exit_kind_name(EKVM_EXIT_IO_IN), "IoIn");
	CHECK_STR(ekvm_exit_kind_name(EKVM_EXIT_HLT), "Hlt");
	kvmu_vm_destroy(vm);
}

/* IO and MMIO: direction split, fields, pointers into kvm_run, bounds. */
KVM_TEST(exits_decode_io_mmio)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_hello);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(2, &g, &v);
	struct kvm_run *run = v->run;
	struct ekvm_exit e;
	int mmap_size = ekvm_sys_vcpu_mmap_size(vm->sys);
	REQUIRE(mmap_size >= 8192);

	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.size = 2;
	run->io.port = 0x1234;
	run->io.count = 3;
	run->io.data_offset = 4096;
	decode(v, KVM_EXIT_IO, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_IO_OUT);
	CHECK_EQ(e.u.io.port, 0x1234);
	CHECK_EQ(e.u.io.size, 2);
	CHECK_EQ(e.u.io.count, 3);
	CHECK(e.u.io.data == (uint8_t *)run + 4096);
	CHECK_EQ(e.u.io.len, 6);
	run->io.direction = KVM_EXIT_IO_IN;
	decode(v, KVM_EXIT_IO, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_IO_IN);
	/* a data_offset inside struct kvm_run, or data running past the
	 * mapping: Unsupported with no pointer (never an IoIn a handler would
	 * write through), the other fields still there */
	run->io.data_offset = 8;
	decode(v, KVM_EXIT_IO, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_UNSUPPORTED);
	CHECK(e.u.io.data == NULL);
	CHECK_EQ(e.u.io.len, 0);
	CHECK_EQ(e.u.io.port, 0x1234);
	CHECK_EQ(e.u.io.count, 3);
	run->io.data_offset = (uint64_t)mmap_size - 4;
	run->io.size = 4;
	run->io.count = 2;
	decode(v, KVM_EXIT_IO, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_UNSUPPORTED);
	CHECK(e.u.io.data == NULL);
	run->io.count = 1; /* exactly up to the end: fine */
	decode(v, KVM_EXIT_IO, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_IO_IN);
	CHECK(e.u.io.data == (uint8_t *)run + mmap_size - 4);
	CHECK_EQ(e.u.io.len, 4);
	run->io.data_offset = 0xffffffffffff0000ull;
	run->io.count = 0xffffffffu;
	decode(v, KVM_EXIT_IO, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_UNSUPPORTED);
	CHECK(e.u.io.data == NULL);
	/* a direction other than in (0) / out (1), a size other than 1/2/4,
	 * a count of 0: Unsupported, not a silent IoIn */
	run->io.data_offset = 4096;
	run->io.size = 1;
	run->io.count = 1;
	const uint8_t bad_dir[] = {2, 0x80, 0xff};
	for (size_t i = 0; i < sizeof(bad_dir); i++) {
		run->io.direction = bad_dir[i];
		decode(v, KVM_EXIT_IO, &e);
		CHECK_EQ(e.kind, EKVM_EXIT_UNSUPPORTED);
		CHECK(e.u.io.data == NULL);
		CHECK_EQ(e.u.io.len, 0);
	}
	run->io.direction = KVM_EXIT_IO_OUT;
	const uint8_t bad_size[] = {0, 3, 8, 0xff};
	for (size_t i = 0; i < sizeof(bad_size); i++) {
		run->io.size = bad_size[i];
		decode(v, KVM_EXIT_IO, &e);
		CHECK_EQ(e.kind, EKVM_EXIT_UNSUPPORTED);
		CHECK(e.u.io.data == NULL);
	}
	run->io.size = 1;
	run->io.count = 0;
	decode(v, KVM_EXIT_IO, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_UNSUPPORTED);
	run->io.count = 1;
	decode(v, KVM_EXIT_IO, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_IO_OUT);
	CHECK_EQ(e.u.io.len, 1);

	run->mmio.phys_addr = 0xfee00030;
	run->mmio.len = 4;
	run->mmio.is_write = 1;
	decode(v, KVM_EXIT_MMIO, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_MMIO_WRITE);
	CHECK_EQ(e.u.mmio.addr, 0xfee00030);
	CHECK_EQ(e.u.mmio.len, 4);
	CHECK(e.u.mmio.data == run->mmio.data);
	run->mmio.is_write = 0;
	for (uint32_t len = 1; len <= 8; len++) {
		run->mmio.len = len;
		decode(v, KVM_EXIT_MMIO, &e);
		CHECK_EQ(e.kind, EKVM_EXIT_MMIO_READ);
		CHECK_EQ(e.u.mmio.len, len);
		CHECK(e.u.mmio.data == run->mmio.data);
	}
	/* a len of 0 or past the 8-byte buffer: Unsupported, no pointer (not
	 * clamped: a truncated access cannot be emulated correctly) */
	const uint32_t bad_len[] = {0, 9, 200, 0xffffffffu};
	for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
		run->mmio.len = bad_len[i];
		decode(v, KVM_EXIT_MMIO, &e);
		CHECK_EQ(e.kind, EKVM_EXIT_UNSUPPORTED);
		CHECK(e.u.mmio.data == NULL);
		CHECK_EQ(e.u.mmio.len, 0);
		CHECK_EQ(e.u.mmio.addr, 0xfee00030);
	}
	kvmu_vm_destroy(vm);
}

/* The payload of every kind that has one. */
KVM_TEST(exits_decode_payloads)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_hello);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(2, &g, &v);
	struct kvm_run *run = v->run;
	struct ekvm_exit e;

	run->ex.exception = 13;
	run->ex.error_code = 0x18;
	decode(v, KVM_EXIT_EXCEPTION, &e);
	CHECK_EQ(e.u.ex.exception, 13);
	CHECK_EQ(e.u.ex.error_code, 0x18);

	run->hypercall.nr = 12;
	for (int i = 0; i < 6; i++)
		run->hypercall.args[i] = 0x100 + i;
	run->hypercall.ret = 0;
	run->hypercall.longmode = 1;
	decode(v, KVM_EXIT_HYPERCALL, &e);
	CHECK_EQ(e.u.hypercall.nr, 12);
	CHECK_EQ(e.u.hypercall.args[0], 0x100);
	CHECK_EQ(e.u.hypercall.args[5], 0x105);
	CHECK_EQ(e.u.hypercall.longmode, 1);
	CHECK_EQ(e.u.hypercall.flags & 1, 1);
	CHECK(e.u.hypercall.ret == (uint64_t *)&run->hypercall.ret);

	run->debug.arch.exception = 1;
	run->debug.arch.pc = 0x123456;
	run->debug.arch.dr6 = 0xffff4ff0;
	run->debug.arch.dr7 = 0x401;
	decode(v, KVM_EXIT_DEBUG, &e);
	CHECK_EQ(e.u.debug.exception, 1);
	CHECK_EQ(e.u.debug.pc, 0x123456);
	CHECK_EQ(e.u.debug.dr6, 0xffff4ff0);
	CHECK_EQ(e.u.debug.dr7, 0x401);

	run->fail_entry.hardware_entry_failure_reason = 0x80000021;
	run->fail_entry.cpu = 3;
	decode(v, KVM_EXIT_FAIL_ENTRY, &e);
	CHECK_EQ(e.u.fail_entry.hardware_entry_failure_reason, 0x80000021);
	CHECK_EQ(e.u.fail_entry.cpu, 3);

	run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->internal.ndata = 2;
	run->internal.data[0] = 0xaa;
	run->internal.data[1] = 0xbb;
	decode(v, KVM_EXIT_INTERNAL_ERROR, &e);
	CHECK_EQ(e.u.internal.suberror, KVM_INTERNAL_ERROR_EMULATION);
	CHECK_EQ(e.u.internal.ndata, 2);
	CHECK_EQ(e.u.internal.data[1], 0xbb);
	CHECK_EQ(e.u.internal.data[2], 0); /* not copied past ndata */
	run->internal.ndata = 1000;	   /* bounded by the 16 slots */
	decode(v, KVM_EXIT_INTERNAL_ERROR, &e);
	CHECK_EQ(e.u.internal.ndata, 16);

	run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
	run->system_event.ndata = 1;
	run->system_event.data[0] = 0x77;
	decode(v, KVM_EXIT_SYSTEM_EVENT, &e);
	CHECK_EQ(e.u.system_event.type, KVM_SYSTEM_EVENT_CRASH);
	CHECK_EQ(e.u.system_event.ndata, 1);
	CHECK_EQ(e.u.system_event.data[0], 0x77);
	run->system_event.ndata = 17;
	decode(v, KVM_EXIT_SYSTEM_EVENT, &e);
	CHECK_EQ(e.u.system_event.ndata, 16);

	run->msr.index = 0xc0000081;
	run->msr.reason = KVM_MSR_EXIT_REASON_FILTER;
	run->msr.data = 0x1234;
	run->msr.error = 0;
	decode(v, KVM_EXIT_X86_WRMSR, &e);
	CHECK_EQ(e.kind, EKVM_EXIT_X86_WRMSR);
	CHECK_EQ(e.u.msr.index, 0xc0000081);
	CHECK_EQ(e.u.msr.reason, KVM_MSR_EXIT_REASON_FILTER);
	CHECK_EQ(e.u.msr.value, 0x1234);
	CHECK(e.u.msr.data == (uint64_t *)&run->msr.data);
	CHECK(e.u.msr.error == &run->msr.error);

	run->eoi.vector = 0x31;
	decode(v, KVM_EXIT_IOAPIC_EOI, &e);
	CHECK_EQ(e.u.eoi.vector, 0x31);

	run->tpr_access.rip = 0x4321;
	run->tpr_access.is_write = 1;
	decode(v, KVM_EXIT_TPR_ACCESS, &e);
	CHECK_EQ(e.u.tpr_access.rip, 0x4321);
	CHECK_EQ(e.u.tpr_access.is_write, 1);

	decode(v, KVM_EXIT_HYPERV, &e);
	CHECK(e.u.hyperv == &run->hyperv);
	decode(v, KVM_EXIT_XEN, &e);
	CHECK(e.u.xen == &run->xen);
	decode(v, KVM_EXIT_EPR, &e);
	CHECK(e.u.epr.epr == &run->epr.epr);

	/* memory_fault {flags, gpa, size} overlays the exit union (Linux 6.8) */
	uint64_t mf[3] = {KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x200000, 0x1000};
	memcpy((char *)run + offsetof(struct kvm_run, hw), mf, sizeof(mf));
	decode(v, KVM_EXIT_MEMORY_FAULT, &e);
	CHECK_EQ(e.u.memory_fault.flags, KVM_MEMORY_EXIT_FLAG_PRIVATE);
	CHECK_EQ(e.u.memory_fault.gpa, 0x200000);
	CHECK_EQ(e.u.memory_fault.size, 0x1000);

	run->notify.flags = 1;
	decode(v, KVM_EXIT_NOTIFY, &e);
	CHECK_EQ(e.u.notify.flags, 1);

	/* after all this, the vCPU still runs its guest normally */
	kvmu_expect_sync(v, NULL);
	kvmu_vm_destroy(vm);
}
