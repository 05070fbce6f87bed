/* lib/kvm/exit.c - KVM_RUN and the decoding of kvm_run into a typed exit, with names. */
#include "internal.h"

#include <string.h>

/* Newer kvm_run union members that 6.1's headers lack (KVM API doc). */
struct memory_fault_abi {
	uint64_t flags;
	uint64_t gpa;
	uint64_t size;
};

/*
 * An IoIn/IoOut exit always carries data != NULL and len = size * count >= 1
 * inside the run area, so a handler can use it without checks. Anything a
 * sane kernel never produces (a direction other than in/out, a size other
 * than 1, 2 or 4, a count of 0, data outside the mapping) decodes to
 * Unsupported with the fields copied and data NULL, len 0.
 */
static void decode_io(struct ekvm_vcpu *vcpu, struct ekvm_exit *exit)
{
	struct kvm_run *run = vcpu->run;
	uint64_t len = (uint64_t)run->io.size * run->io.count;
	exit->u.io.port = run->io.port;
	exit->u.io.size = run->io.size;
	exit->u.io.count = run->io.count;
	exit->u.io.data = NULL;
	exit->u.io.len = 0;
	exit->kind = EKVM_EXIT_UNSUPPORTED;
	if (run->io.direction != KVM_EXIT_IO_OUT && run->io.direction != KVM_EXIT_IO_IN)
		return;
	if (run->io.size != 1 && run->io.size != 2 && run->io.size != 4)
		return;
	if (len == 0 || run->io.data_offset < sizeof(*run) ||
	    run->io.data_offset > vcpu->run_size || len > vcpu->run_size - run->io.data_offset)
		return;
	exit->kind = run->io.direction == KVM_EXIT_IO_OUT ? EKVM_EXIT_IO_OUT : EKVM_EXIT_IO_IN;
	exit->u.io.data = (uint8_t *)run + run->io.data_offset;
	exit->u.io.len = (uint32_t)len;
}

/* MmioRead/MmioWrite always carry len 1..8 (the size of kvm_run's buffer);
 * a len of 0 or above 8 decodes to Unsupported with data NULL, len 0. */
static void decode_mmio(struct ekvm_vcpu *vcpu, struct ekvm_exit *exit)
{
	struct kvm_run *run = vcpu->run;
	exit->u.mmio.addr = run->mmio.phys_addr;
	if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data)) {
		exit->kind = EKVM_EXIT_UNSUPPORTED;
		exit->u.mmio.data = NULL;
		exit->u.mmio.len = 0;
		return;
	}
	exit->kind = run->mmio.is_write ? EKVM_EXIT_MMIO_WRITE : EKVM_EXIT_MMIO_READ;
	exit->u.mmio.data = run->mmio.data;
	exit->u.mmio.len = run->mmio.len;
}

void ekvm_vcpu_decode_exit(struct ekvm_vcpu *vcpu, struct ekvm_exit *exit)
{
	if (!exit)
		return;
	if (!vcpu) {
		/* a caller's mistake: an exit that says nothing, not a crash */
		exit->kind = EKVM_EXIT_UNSUPPORTED;
		exit->raw_reason = KVM_EXIT_UNKNOWN;
		return;
	}
	struct kvm_run *run = vcpu->run;
	uint32_t reason = run->exit_reason;
	exit->raw_reason = reason;
	switch (reason) {
	case KVM_EXIT_IO:
		decode_io(vcpu, exit);
		return;
	case KVM_EXIT_MMIO:
		decode_mmio(vcpu, exit);
		return;
	case KVM_EXIT_EXCEPTION:
		exit->u.ex.exception = run->ex.exception;
		exit->u.ex.error_code = run->ex.error_code;
		break;
	case KVM_EXIT_HYPERCALL: {
		exit->u.hypercall.nr = run->hypercall.nr;
		memcpy(exit->u.hypercall.args, run->hypercall.args, sizeof(exit->u.hypercall.args));
		exit->u.hypercall.ret = (uint64_t *)&run->hypercall.ret;
		exit->u.hypercall.longmode = run->hypercall.longmode;
		/* 6.1 names the 64-bit word "longmode + pad"; newer kernels "flags" */
		memcpy(&exit->u.hypercall.flags, &run->hypercall.longmode, sizeof(uint64_t));
		break;
	}
	case KVM_EXIT_DEBUG:
		exit->u.debug = run->debug.arch;
		break;
	case KVM_EXIT_FAIL_ENTRY:
		exit->u.fail_entry.hardware_entry_failure_reason =
		    run->fail_entry.hardware_entry_failure_reason;
		exit->u.fail_entry.cpu = run->fail_entry.cpu;
		break;
	case KVM_EXIT_INTERNAL_ERROR: {
		uint32_t n = run->internal.ndata;
		if (n > 16)
			n = 16;
		exit->u.internal.suberror = run->internal.suberror;
		exit->u.internal.ndata = n;
		memset(exit->u.internal.data, 0, sizeof(exit->u.internal.data));
		memcpy(exit->u.internal.data, run->internal.data, n * sizeof(uint64_t));
		break;
	}
	case KVM_EXIT_SYSTEM_EVENT: {
		uint32_t n = run->system_event.ndata;
		if (n > 16)
			n = 16;
		exit->u.system_event.type = run->system_event.type;
		exit->u.system_event.ndata = n;
		memset(exit->u.system_event.data, 0, sizeof(exit->u.system_event.data));
		memcpy(exit->u.system_event.data, run->system_event.data, n * sizeof(uint64_t));
		break;
	}
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		exit->u.msr.index = run->msr.index;
		exit->u.msr.reason = run->msr.reason;
		exit->u.msr.value = run->msr.data;
		exit->u.msr.data = (uint64_t *)&run->msr.data;
		exit->u.msr.error = &run->msr.error;
		break;
	case KVM_EXIT_IOAPIC_EOI:
		exit->u.eoi.vector = run->eoi.vector;
		break;
	case KVM_EXIT_TPR_ACCESS:
		exit->u.tpr_access.rip = run->tpr_access.rip;
		exit->u.tpr_access.is_write = run->tpr_access.is_write;
		break;
	case KVM_EXIT_HYPERV:
		exit->u.hyperv = &run->hyperv;
		break;
	case KVM_EXIT_XEN:
		exit->u.xen = &run->xen;
		break;
	case KVM_EXIT_MEMORY_FAULT: {
		struct memory_fault_abi mf;
		memcpy(&mf, &run->hw, sizeof(mf));
		exit->u.memory_fault.flags = mf.flags;
		exit->u.memory_fault.gpa = mf.gpa;
		exit->u.memory_fault.size = mf.size;
		break;
	}
	case KVM_EXIT_NOTIFY:
		exit->u.notify.flags = run->notify.flags;
		break;
	case KVM_EXIT_EPR:
		exit->u.epr.epr = &run->epr.epr;
		break;
	case KVM_EXIT_UNKNOWN:
	case KVM_EXIT_HLT:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_SHUTDOWN:
	case KVM_EXIT_INTR:
	case KVM_EXIT_SET_TPR:
	case KVM_EXIT_S390_SIEIC:
	case KVM_EXIT_S390_RESET:
	case KVM_EXIT_DCR:
	case KVM_EXIT_NMI:
	case KVM_EXIT_OSI:
	case KVM_EXIT_PAPR_HCALL:
	case KVM_EXIT_S390_UCONTROL:
	case KVM_EXIT_WATCHDOG:
	case KVM_EXIT_S390_TSCH:
	case KVM_EXIT_S390_STSI:
	case KVM_EXIT_ARM_NISV:
	case KVM_EXIT_DIRTY_RING_FULL:
	case KVM_EXIT_AP_RESET_HOLD:
	case KVM_EXIT_X86_BUS_LOCK:
	case KVM_EXIT_RISCV_SBI:
	case KVM_EXIT_RISCV_CSR:
	case KVM_EXIT_LOONGARCH_IOCSR:
	case KVM_EXIT_TDX:
		break;
	default:
		exit->kind = EKVM_EXIT_UNSUPPORTED;
		return;
	}
	exit->kind = (enum ekvm_exit_kind)reason;
}

int ekvm_vcpu_run(struct ekvm_vcpu *vcpu, struct ekvm_exit *exit)
{
	if (!vcpu || !exit)
		return -EINVAL;
	if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
		int e = errno;
		if (e != EINTR)
			return -e;
		/* KVM sets exit_reason = KVM_EXIT_INTR for a signal or immediate_exit */
		exit->kind = EKVM_EXIT_INTR;
		exit->raw_reason = KVM_EXIT_INTR;
		return 0;
	}
	ekvm_vcpu_decode_exit(vcpu, exit);
	return 0;
}

static const char *const kind_names[EKVM_EXIT_KIND_MAX] = {
    [EKVM_EXIT_UNKNOWN] = "Unknown",
    [EKVM_EXIT_EXCEPTION] = "Exception",
    [EKVM_EXIT_HYPERCALL] = "Hypercall",
    [EKVM_EXIT_DEBUG] = "Debug",
    [EKVM_EXIT_HLT] = "Hlt",
    [EKVM_EXIT_IRQ_WINDOW_OPEN] = "IrqWindowOpen",
    [EKVM_EXIT_SHUTDOWN] = "Shutdown",
    [EKVM_EXIT_FAIL_ENTRY] = "FailEntry",
    [EKVM_EXIT_INTR] = "Intr",
    [EKVM_EXIT_SET_TPR] = "SetTpr",
    [EKVM_EXIT_TPR_ACCESS] = "TprAccess",
    [EKVM_EXIT_S390_SIEIC] = "S390Sieic",
    [EKVM_EXIT_S390_RESET] = "S390Reset",
    [EKVM_EXIT_DCR] = "Dcr",
    [EKVM_EXIT_NMI] = "Nmi",
    [EKVM_EXIT_INTERNAL_ERROR] = "InternalError",
    [EKVM_EXIT_OSI] = "Osi",
    [EKVM_EXIT_PAPR_HCALL] = "PaprHcall",
    [EKVM_EXIT_S390_UCONTROL] = "S390Ucontrol",
    [EKVM_EXIT_WATCHDOG] = "Watchdog",
    [EKVM_EXIT_S390_TSCH] = "S390Tsch",
    [EKVM_EXIT_EPR] = "Epr",
    [EKVM_EXIT_SYSTEM_EVENT] = "SystemEvent",
    [EKVM_EXIT_S390_STSI] = "S390Stsi",
    [EKVM_EXIT_IOAPIC_EOI] = "IoapicEoi",
    [EKVM_EXIT_HYPERV] = "Hyperv",
    [EKVM_EXIT_ARM_NISV] = "ArmNisv",
    [EKVM_EXIT_X86_RDMSR] = "X86Rdmsr",
    [EKVM_EXIT_X86_WRMSR] = "X86Wrmsr",
    [EKVM_EXIT_DIRTY_RING_FULL] = "DirtyRingFull",
    [EKVM_EXIT_AP_RESET_HOLD] = "ApResetHold",
    [EKVM_EXIT_X86_BUS_LOCK] = "X86BusLock",
    [EKVM_EXIT_XEN] = "Xen",
    [EKVM_EXIT_RISCV_SBI] = "RiscvSbi",
    [EKVM_EXIT_RISCV_CSR] = "RiscvCsr",
    [EKVM_EXIT_NOTIFY] = "Notify",
    [EKVM_EXIT_LOONGARCH_IOCSR] = "LoongArchIocsr",
    [EKVM_EXIT_MEMORY_FAULT] = "MemoryFault",
    [EKVM_EXIT_TDX] = "Tdx",
    [EKVM_EXIT_IO_IN] = "IoIn",
    [EKVM_EXIT_IO_OUT] = "IoOut",
    [EKVM_EXIT_MMIO_READ] = "MmioRead",
    [EKVM_EXIT_MMIO_WRITE] = "MmioWrite",
    [EKVM_EXIT_UNSUPPORTED] = "Unsupported",
};

const char *ekvm_exit_kind_name(enum ekvm_exit_kind kind)
{
	if ((unsigned)kind >= EKVM_EXIT_KIND_MAX || !kind_names[kind])
		return "Invalid";
	return kind_names[kind];
}

#define R(x) [KVM_EXIT_##x] = "KVM_EXIT_" #x
static const char *const reason_names[] = {
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

const char *ekvm_exit_reason_name(uint32_t reason)
{
	if (reason >= sizeof(reason_names) / sizeof(reason_names[0]))
		return NULL;
	return reason_names[reason];
}

const char *ekvm_system_event_name(uint32_t type)
{
	switch (type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		return "shutdown";
	case KVM_SYSTEM_EVENT_RESET:
		return "reset";
	case KVM_SYSTEM_EVENT_CRASH:
		return "crash";
	case KVM_SYSTEM_EVENT_WAKEUP:
		return "wakeup";
	case KVM_SYSTEM_EVENT_SUSPEND:
		return "suspend";
	case KVM_SYSTEM_EVENT_SEV_TERM:
		return "sev-term";
	default:
		return NULL;
	}
}

const char *ekvm_internal_error_name(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "emulation";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "simultaneous-exceptions";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "delivery-event";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
		return "unexpected-exit-reason";
	default:
		return NULL;
	}
}
