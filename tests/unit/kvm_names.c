/* tests/unit/kvm_names.c - the binding's exit, system-event and internal-error names. */
#include <ember/kvm.h>

#include <strings.h>

#include "../lib/test.h"

/* Every KVM_EXIT_* number x86 headers (and the binding's "Newer ABI") define. */
#define R(x)                                 \
	{                                    \
		KVM_EXIT_##x, "KVM_EXIT_" #x \
	}
static const struct {
	uint32_t reason;
	const char *name;
} reasons[] = {
    R(UNKNOWN),
    R(EXCEPTION),
    R(IO),
    R(HYPERCALL),
    R(DEBUG),
    R(HLT),
    R(MMIO),
    R(IRQ_WINDOW_OPEN),
    R(SHUTDOWN),
    R(FAIL_ENTRY),
    R(INTR),
    R(SET_TPR),
    R(TPR_ACCESS),
    R(S390_SIEIC),
    R(S390_RESET),
    R(DCR),
    R(NMI),
    R(INTERNAL_ERROR),
    R(OSI),
    R(PAPR_HCALL),
    R(S390_UCONTROL),
    R(WATCHDOG),
    R(S390_TSCH),
    R(EPR),
    R(SYSTEM_EVENT),
    R(S390_STSI),
    R(IOAPIC_EOI),
    R(HYPERV),
    R(ARM_NISV),
    R(X86_RDMSR),
    R(X86_WRMSR),
    R(DIRTY_RING_FULL),
    R(AP_RESET_HOLD),
    R(X86_BUS_LOCK),
    R(XEN),
    R(RISCV_SBI),
    R(RISCV_CSR),
    R(NOTIFY),
    R(LOONGARCH_IOCSR),
    R(MEMORY_FAULT),
    R(TDX),
};
#undef R
#define NREASONS (sizeof(reasons) / sizeof(reasons[0]))

TEST(kvm_exit_reason_names)
{
	/* the numbers are 0..40, each once */
	CHECK_EQ(NREASONS, 41);
	for (size_t i = 0; i < NREASONS; i++) {
		CHECK_EQ(reasons[i].reason, i);
		CHECK_STR(ekvm_exit_reason_name(reasons[i].reason), reasons[i].name);
	}
	/* numbers nobody defined */
	CHECK(ekvm_exit_reason_name(41) == NULL);
	CHECK(ekvm_exit_reason_name(100) == NULL);
	CHECK(ekvm_exit_reason_name(0x7fffffff) == NULL);
	CHECK(ekvm_exit_reason_name(0xffffffff) == NULL);
}

/* The decoded kinds and their names (kvm-ioctls' VcpuExit spelling). */
static const struct {
	enum ekvm_exit_kind kind;
	const char *name;
} kinds[] = {
    {EKVM_EXIT_UNKNOWN, "Unknown"},
    {EKVM_EXIT_EXCEPTION, "Exception"},
    {EKVM_EXIT_HYPERCALL, "Hypercall"},
    {EKVM_EXIT_DEBUG, "Debug"},
    {EKVM_EXIT_HLT, "Hlt"},
    {EKVM_EXIT_IRQ_WINDOW_OPEN, "IrqWindowOpen"},
    {EKVM_EXIT_SHUTDOWN, "Shutdown"},
    {EKVM_EXIT_FAIL_ENTRY, "FailEntry"},
    {EKVM_EXIT_INTR, "Intr"},
    {EKVM_EXIT_SET_TPR, "SetTpr"},
    {EKVM_EXIT_TPR_ACCESS, "TprAccess"},
    {EKVM_EXIT_S390_SIEIC, "S390Sieic"},
    {EKVM_EXIT_S390_RESET, "S390Reset"},
    {EKVM_EXIT_DCR, "Dcr"},
    {EKVM_EXIT_NMI, "Nmi"},
    {EKVM_EXIT_INTERNAL_ERROR, "InternalError"},
    {EKVM_EXIT_OSI, "Osi"},
    {EKVM_EXIT_PAPR_HCALL, "PaprHcall"},
    {EKVM_EXIT_S390_UCONTROL, "S390Ucontrol"},
    {EKVM_EXIT_WATCHDOG, "Watchdog"},
    {EKVM_EXIT_S390_TSCH, "S390Tsch"},
    {EKVM_EXIT_EPR, "Epr"},
    {EKVM_EXIT_SYSTEM_EVENT, "SystemEvent"},
    {EKVM_EXIT_S390_STSI, "S390Stsi"},
    {EKVM_EXIT_IOAPIC_EOI, "IoapicEoi"},
    {EKVM_EXIT_HYPERV, "Hyperv"},
    {EKVM_EXIT_ARM_NISV, "ArmNisv"},
    {EKVM_EXIT_X86_RDMSR, "X86Rdmsr"},
    {EKVM_EXIT_X86_WRMSR, "X86Wrmsr"},
    {EKVM_EXIT_DIRTY_RING_FULL, "DirtyRingFull"},
    {EKVM_EXIT_AP_RESET_HOLD, "ApResetHold"},
    {EKVM_EXIT_X86_BUS_LOCK, "X86BusLock"},
    {EKVM_EXIT_XEN, "Xen"},
    {EKVM_EXIT_RISCV_SBI, "RiscvSbi"},
    {EKVM_EXIT_RISCV_CSR, "RiscvCsr"},
    {EKVM_EXIT_NOTIFY, "Notify"},
    {EKVM_EXIT_LOONGARCH_IOCSR, "LoongArchIocsr"},
    {EKVM_EXIT_MEMORY_FAULT, "MemoryFault"},
    {EKVM_EXIT_TDX, "Tdx"},
    {EKVM_EXIT_IO_IN, "IoIn"},
    {EKVM_EXIT_IO_OUT, "IoOut"},
    {EKVM_EXIT_MMIO_READ, "MmioRead"},
    {EKVM_EXIT_MMIO_WRITE, "MmioWrite"},
    {EKVM_EXIT_UNSUPPORTED, "Unsupported"},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

TEST(kvm_exit_kind_names)
{
	for (size_t i = 0; i < NKINDS; i++) {
		const char *n = ekvm_exit_kind_name(kinds[i].kind);
		CHECK_STR(n, kinds[i].name);
		/* unique */
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(n, ekvm_exit_kind_name(kinds[j].kind)) != 0);
	}
	/* every raw reason but IO and MMIO (split by direction) is its own kind */
	for (size_t i = 0; i < NREASONS; i++) {
		uint32_t r = reasons[i].reason;
		if (r == KVM_EXIT_IO || r == KVM_EXIT_MMIO)
			continue;
		CHECK(strcmp(ekvm_exit_kind_name((enum ekvm_exit_kind)r), "Invalid") != 0);
	}
	/* values that are no kind: "Invalid", never NULL */
	static const int invalid[] = {KVM_EXIT_IO,	  KVM_EXIT_MMIO,	  41,	99,
				      EKVM_EXIT_KIND_MAX, EKVM_EXIT_KIND_MAX + 1, 1000, -1,
				      0x7fffffff};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		CHECK_STR(ekvm_exit_kind_name((enum ekvm_exit_kind)invalid[i]), "Invalid");
	/* the enum mirrors the UAPI numbers */
	CHECK_EQ(EKVM_EXIT_HLT, KVM_EXIT_HLT);
	CHECK_EQ(EKVM_EXIT_SYSTEM_EVENT, KVM_EXIT_SYSTEM_EVENT);
	CHECK_EQ(EKVM_EXIT_TDX, 40);
	CHECK_EQ(EKVM_EXIT_MEMORY_FAULT, 39);
}

TEST(kvm_system_event_names)
{
	static const struct {
		uint32_t type;
		const char *word;
	} ev[] = {
	    {KVM_SYSTEM_EVENT_SHUTDOWN, "shutdown"}, {KVM_SYSTEM_EVENT_RESET, "reset"},
	    {KVM_SYSTEM_EVENT_CRASH, "crash"},	     {KVM_SYSTEM_EVENT_WAKEUP, "wakeup"},
	    {KVM_SYSTEM_EVENT_SUSPEND, "suspend"},   {KVM_SYSTEM_EVENT_SEV_TERM, "sev"},
	};
	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		const char *n = ekvm_system_event_name(ev[i].type);
		REQUIRE(n != NULL);
		if (!strcasestr(n, ev[i].word))
			TEST_FAIL("system event %u named \"%s\", want one with \"%s\"", ev[i].type,
				  n, ev[i].word);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(n, ekvm_system_event_name(ev[j].type)) != 0);
	}
	CHECK(ekvm_system_event_name(0) == NULL);
	CHECK(ekvm_system_event_name(7) == NULL);
	CHECK(ekvm_system_event_name(0xffffffff) == NULL);
}

TEST(kvm_internal_error_names)
{
	static const struct {
		uint32_t sub;
		const char *word;
	} ie[] = {
	    {KVM_INTERNAL_ERROR_EMULATION, "emulation"},
	    {KVM_INTERNAL_ERROR_SIMUL_EX, "simul"},
	    {KVM_INTERNAL_ERROR_DELIVERY_EV, "delivery"},
	    {KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, "unexpected"},
	};
	for (size_t i = 0; i < sizeof(ie) / sizeof(ie[0]); i++) {
		const char *n = ekvm_internal_error_name(ie[i].sub);
		REQUIRE(n != NULL);
		if (!strcasestr(n, ie[i].word))
			TEST_FAIL("internal error %u named \"%s\", want one with \"%s\"", ie[i].sub,
				  n, ie[i].word);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(n, ekvm_internal_error_name(ie[j].sub)) != 0);
	}
	CHECK(ekvm_internal_error_name(0) == NULL);
	CHECK(ekvm_internal_error_name(5) == NULL);
	CHECK(ekvm_internal_error_name(0xffffffff) == NULL);
}

TEST(kvm_library_version)
{
	CHECK_EQ(ekvm_library_version(), EMBER_KVM_API_VERSION);
	CHECK_EQ(ekvm_library_version() >> 16, EMBER_KVM_API_MAJOR);
	CHECK_EQ(ekvm_library_version() & 0xffff, EMBER_KVM_API_MINOR);
}
