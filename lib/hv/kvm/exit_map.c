/* lib/hv/kvm/exit_map.c - the KVM_EXIT_* to neutral exit-reason mapping (see the table in hv.h). */
#include "kvm_backend.h"

#include <string.h>

static uint64_t load_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;
	memcpy(&v, p, size > 8 ? 8 : size);
	return v;
}

static void unsupported(struct ehv_exit *e, uint32_t ndata, uint64_t d0, uint64_t d1)
{
	e->reason = EHV_EXIT_UNSUPPORTED;
	e->u.unsupported.ndata = ndata;
	e->u.unsupported.data[0] = d0;
	e->u.unsupported.data[1] = d1;
}

static void copy_data(uint64_t *dst, uint32_t *ndst, const uint64_t *src, uint32_t n)
{
	if (n > 4)
		n = 4;
	*ndst = n;
	memcpy(dst, src, n * sizeof(uint64_t));
}

/* The hot exits (I/O, MMIO) fill every field they define and leave the rest
 * of *e alone; the others start from a zeroed *e. *p needs no clearing: each
 * pending kind sets every field it uses. */
int ehvi_kvm_map_exit(const struct ekvm_exit *ke, struct ehv_exit *e, struct ehvi_pending *p)
{
	p->kind = EHVI_PEND_NONE;
	p->handled = false;
	switch (ke->kind) {
	case EKVM_EXIT_IO_IN:
	case EKVM_EXIT_IO_OUT: {
		bool out = ke->kind == EKVM_EXIT_IO_OUT;
		if (!ke->u.io.data || ke->u.io.size == 0 || ke->u.io.size > 8 ||
		    ke->u.io.count == 0)
			return -EIO;
		e->raw_reason = ke->raw_reason;
		p->kind = EHVI_PEND_IO;
		p->answer_required = !out;
		p->write = out;
		p->addr = ke->u.io.port;
		p->size = ke->u.io.size;
		p->count = ke->u.io.count;
		p->data = ke->u.io.data;
		if (out) {
			e->reason = EHV_EXIT_IO_WRITE;
			e->u.io_write.port = ke->u.io.port;
			e->u.io_write.width = ke->u.io.size;
			e->u.io_write.count = ke->u.io.count;
			e->u.io_write.data = load_le(ke->u.io.data, ke->u.io.size);
		} else {
			e->reason = EHV_EXIT_IO_READ;
			e->u.io_read.port = ke->u.io.port;
			e->u.io_read.width = ke->u.io.size;
			e->u.io_read.count = ke->u.io.count;
		}
		return 0;
	}
	case EKVM_EXIT_MMIO_READ:
	case EKVM_EXIT_MMIO_WRITE: {
		bool wr = ke->kind == EKVM_EXIT_MMIO_WRITE;
		if (!ke->u.mmio.data || ke->u.mmio.len == 0 || ke->u.mmio.len > 8)
			return -EIO;
		e->raw_reason = ke->raw_reason;
		p->kind = EHVI_PEND_MMIO;
		p->answer_required = !wr;
		p->write = wr;
		p->addr = ke->u.mmio.addr;
		p->size = (uint8_t)ke->u.mmio.len;
		p->count = 1;
		p->data = ke->u.mmio.data;
		if (wr) {
			e->reason = EHV_EXIT_MMIO_WRITE;
			e->u.mmio_write.addr = ke->u.mmio.addr;
			e->u.mmio_write.width = (uint8_t)ke->u.mmio.len;
			e->u.mmio_write.data = load_le(ke->u.mmio.data, ke->u.mmio.len);
		} else {
			e->reason = EHV_EXIT_MMIO_READ;
			e->u.mmio_read.addr = ke->u.mmio.addr;
			e->u.mmio_read.width = (uint8_t)ke->u.mmio.len;
			/* KVM writes the destination register itself */
			e->u.mmio_read.reg = EHV_REG_UNKNOWN;
			e->u.mmio_read.reg_width = 0;
			e->u.mmio_read.signed_ext = false;
		}
		return 0;
	}
	default:
		break;
	}
	memset(e, 0, sizeof(*e));
	e->raw_reason = ke->raw_reason;
	switch (ke->kind) {
	case EKVM_EXIT_HYPERCALL:
		if (!ke->u.hypercall.ret)
			return -EIO;
		e->reason = EHV_EXIT_HYPERCALL;
		e->u.hypercall.nr = ke->u.hypercall.nr;
		memcpy(e->u.hypercall.args, ke->u.hypercall.args, sizeof(e->u.hypercall.args));
		p->kind = EHVI_PEND_HYPERCALL;
		p->answer_required = true;
		p->nr = ke->u.hypercall.nr;
		memcpy(p->args, ke->u.hypercall.args, sizeof(p->args));
		p->value = ke->u.hypercall.ret;
		return 0;
	case EKVM_EXIT_X86_RDMSR:
	case EKVM_EXIT_X86_WRMSR: {
		bool wr = ke->kind == EKVM_EXIT_X86_WRMSR;
		if (!ke->u.msr.data || !ke->u.msr.error)
			return -EIO;
		p->kind = EHVI_PEND_SYSREG;
		p->answer_required = !wr;
		p->write = wr;
		p->addr = ke->u.msr.index;
		p->value = ke->u.msr.data;
		p->fault = ke->u.msr.error;
		if (wr) {
			e->reason = EHV_EXIT_SYSREG_WRITE;
			e->u.sysreg_write.addr = ke->u.msr.index;
			e->u.sysreg_write.value = ke->u.msr.value;
		} else {
			e->reason = EHV_EXIT_SYSREG_READ;
			e->u.sysreg_read.addr = ke->u.msr.index;
			e->u.sysreg_read.reg = EHV_REG_UNKNOWN; /* KVM loads EDX:EAX */
		}
		return 0;
	}
	case EKVM_EXIT_HLT:
		e->reason = EHV_EXIT_HALT;
		return 0;
	case EKVM_EXIT_INTR:
		e->reason = EHV_EXIT_CANCELED;
		return 0;
	case EKVM_EXIT_SHUTDOWN:
		e->reason = EHV_EXIT_SHUTDOWN;
		return 0;
	case EKVM_EXIT_IRQ_WINDOW_OPEN:
		e->reason = EHV_EXIT_IRQ_WINDOW_OPEN;
		return 0;
	case EKVM_EXIT_DEBUG:
		e->reason = EHV_EXIT_DEBUG;
		e->u.debug.exception = ke->u.debug.exception;
		e->u.debug.pc = ke->u.debug.pc;
		e->u.debug.dr6 = ke->u.debug.dr6;
		e->u.debug.dr7 = ke->u.debug.dr7;
		return 0;
	case EKVM_EXIT_FAIL_ENTRY:
		e->reason = EHV_EXIT_FAIL_ENTRY;
		e->u.fail_entry.hardware_reason = ke->u.fail_entry.hardware_entry_failure_reason;
		e->u.fail_entry.cpu = ke->u.fail_entry.cpu;
		return 0;
	case EKVM_EXIT_INTERNAL_ERROR: {
		uint32_t n = ke->u.internal.ndata > 16 ? 16 : ke->u.internal.ndata;
		e->reason = EHV_EXIT_INTERNAL_ERROR;
		e->u.internal_error.suberror = ke->u.internal.suberror;
		e->u.internal_error.ndata = n;
		memcpy(e->u.internal_error.data, ke->u.internal.data, n * sizeof(uint64_t));
		return 0;
	}
	case EKVM_EXIT_SYSTEM_EVENT: {
		uint32_t type = ke->u.system_event.type;
		uint32_t n = ke->u.system_event.ndata;
		const uint64_t *d = ke->u.system_event.data;
		switch (type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
		case KVM_SYSTEM_EVENT_CRASH:
		case KVM_SYSTEM_EVENT_SEV_TERM:
			e->reason = EHV_EXIT_SYSTEM_DOWN;
			e->u.system_down.kind =
			    type == KVM_SYSTEM_EVENT_SHUTDOWN ? EHV_SYSTEM_DOWN_POWEROFF
			    : type == KVM_SYSTEM_EVENT_CRASH  ? EHV_SYSTEM_DOWN_CRASH
							      : EHV_SYSTEM_DOWN_TERMINATE;
			copy_data(e->u.system_down.data, &e->u.system_down.ndata, d, n);
			return 0;
		case KVM_SYSTEM_EVENT_RESET:
			e->reason = EHV_EXIT_SYSTEM_RESET;
			copy_data(e->u.system_reset.data, &e->u.system_reset.ndata, d, n);
			return 0;
		default: /* WAKEUP, SUSPEND (arm64) and newer types */
			unsupported(e, 1, type, 0);
			return 0;
		}
	}
	case EKVM_EXIT_IOAPIC_EOI:
		e->reason = EHV_EXIT_IOAPIC_EOI;
		e->u.ioapic_eoi.vector = ke->u.eoi.vector;
		return 0;
	case EKVM_EXIT_AP_RESET_HOLD:
		e->reason = EHV_EXIT_CPU_DOWN;
		e->u.cpu_down.state = EHV_CPU_DOWN_RESET_HOLD;
		return 0;
	case EKVM_EXIT_MEMORY_FAULT:
		e->reason = EHV_EXIT_NESTED_PAGE_FAULT;
		e->u.nested_page_fault.addr = ke->u.memory_fault.gpa;
		e->u.nested_page_fault.size = ke->u.memory_fault.size;
		e->u.nested_page_fault.access =
		    EHV_NPF_UNKNOWN_ACCESS |
		    ((ke->u.memory_fault.flags & KVM_MEMORY_EXIT_FLAG_PRIVATE) ? EHV_NPF_PRIVATE
									       : 0);
		return 0;
	case EKVM_EXIT_EXCEPTION:
		unsupported(e, 2, ke->u.ex.exception, ke->u.ex.error_code);
		return 0;
	case EKVM_EXIT_TPR_ACCESS:
		unsupported(e, 2, ke->u.tpr_access.rip, ke->u.tpr_access.is_write);
		return 0;
	case EKVM_EXIT_HYPERV:
		unsupported(e, ke->u.hyperv ? 1 : 0, ke->u.hyperv ? ke->u.hyperv->type : 0, 0);
		return 0;
	case EKVM_EXIT_XEN:
		unsupported(e, ke->u.xen ? 1 : 0, ke->u.xen ? ke->u.xen->type : 0, 0);
		return 0;
	case EKVM_EXIT_NOTIFY:
		unsupported(e, 1, ke->u.notify.flags, 0);
		return 0;
	default:
		/* UNKNOWN (the backend adds hardware_exit_reason), SET_TPR, NMI,
		 * other architectures' exits, DIRTY_RING_FULL, BUS_LOCK, TDX and
		 * numbers the binding does not know */
		unsupported(e, 0, 0, 0);
		return 0;
	}
}
