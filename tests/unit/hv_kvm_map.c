/* tests/unit/hv_kvm_map.c - the KVM backend's KVM_EXIT_* -> neutral mapping, on synthetic exits (no /dev/kvm). */
#include "../../lib/hv/kvm/kvm_backend.h"

#include <string.h>

#include "../lib/test.h"

static int map(const struct ekvm_exit *ke, struct ehv_exit *e, struct ehvi_pending *p)
{
	memset(p, 0, sizeof(*p));
	return ehvi_kvm_map_exit(ke, e, p);
}

static struct ekvm_exit kexit(enum ekvm_exit_kind kind, uint32_t raw)
{
	struct ekvm_exit k;
	memset(&k, 0, sizeof(k));
	k.kind = kind;
	k.raw_reason = raw;
	return k;
}

/* The table in hv.h, entry by entry. */
TEST(hv_kvm_map_table)
{
	static const struct {
		enum ekvm_exit_kind kind;
		enum ehv_exit_reason want;
	} table[] = {
	    {EKVM_EXIT_UNKNOWN, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_EXCEPTION, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_DEBUG, EHV_EXIT_DEBUG},
	    {EKVM_EXIT_HLT, EHV_EXIT_HALT},
	    {EKVM_EXIT_IRQ_WINDOW_OPEN, EHV_EXIT_IRQ_WINDOW_OPEN},
	    {EKVM_EXIT_SHUTDOWN, EHV_EXIT_SHUTDOWN},
	    {EKVM_EXIT_FAIL_ENTRY, EHV_EXIT_FAIL_ENTRY},
	    {EKVM_EXIT_INTR, EHV_EXIT_CANCELED},
	    {EKVM_EXIT_SET_TPR, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_TPR_ACCESS, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_S390_SIEIC, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_S390_RESET, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_DCR, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_NMI, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_INTERNAL_ERROR, EHV_EXIT_INTERNAL_ERROR},
	    {EKVM_EXIT_OSI, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_PAPR_HCALL, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_S390_UCONTROL, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_WATCHDOG, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_S390_TSCH, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_EPR, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_S390_STSI, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_IOAPIC_EOI, EHV_EXIT_IOAPIC_EOI},
	    {EKVM_EXIT_HYPERV, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_ARM_NISV, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_DIRTY_RING_FULL, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_AP_RESET_HOLD, EHV_EXIT_CPU_DOWN},
	    {EKVM_EXIT_X86_BUS_LOCK, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_XEN, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_RISCV_SBI, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_RISCV_CSR, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_NOTIFY, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_LOONGARCH_IOCSR, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_MEMORY_FAULT, EHV_EXIT_NESTED_PAGE_FAULT},
	    {EKVM_EXIT_TDX, EHV_EXIT_UNSUPPORTED},
	    {EKVM_EXIT_UNSUPPORTED, EHV_EXIT_UNSUPPORTED},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		struct ekvm_exit k = kexit(table[i].kind, (uint32_t)table[i].kind);
		struct ehv_exit e;
		struct ehvi_pending p;
		CHECK_OK(map(&k, &e, &p));
		if (e.reason != table[i].want)
			TEST_FAIL("%s -> %s, want %s", ekvm_exit_kind_name(table[i].kind),
				  ehv_exit_reason_name(e.reason),
				  ehv_exit_reason_name(table[i].want));
		CHECK_EQ(e.raw_reason, (uint32_t)table[i].kind);
		CHECK_EQ(p.kind, EHVI_PEND_NONE);
	}
}

TEST(hv_kvm_map_io_mmio)
{
	uint8_t data[16] = {0x34, 0x12, 0x78, 0x56};
	struct ehv_exit e;
	struct ehvi_pending p;
	struct ekvm_exit k = kexit(EKVM_EXIT_IO_OUT, KVM_EXIT_IO);
	k.u.io.port = 0x3f8;
	k.u.io.size = 2;
	k.u.io.count = 2;
	k.u.io.data = data;
	k.u.io.len = 4;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.reason, EHV_EXIT_IO_WRITE);
	CHECK_EQ(e.u.io_write.port, 0x3f8);
	CHECK_EQ(e.u.io_write.width, 2);
	CHECK_EQ(e.u.io_write.count, 2);
	CHECK_EQ(e.u.io_write.data, 0x1234);
	CHECK_EQ(p.kind, EHVI_PEND_IO);
	CHECK(p.write);
	CHECK(!p.answer_required);
	CHECK(p.data == data);
	k.kind = EKVM_EXIT_IO_IN;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.reason, EHV_EXIT_IO_READ);
	CHECK_EQ(e.u.io_read.count, 2);
	CHECK(p.answer_required);
	k.u.io.data = NULL; /* the binding refused a bogus data offset */
	CHECK_ERR(map(&k, &e, &p), -EIO);

	k = kexit(EKVM_EXIT_MMIO_READ, KVM_EXIT_MMIO);
	k.u.mmio.addr = 0xfee00000;
	k.u.mmio.len = 4;
	k.u.mmio.data = data;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.reason, EHV_EXIT_MMIO_READ);
	CHECK_EQ(e.u.mmio_read.addr, 0xfee00000);
	CHECK_EQ(e.u.mmio_read.width, 4);
	CHECK_EQ(e.u.mmio_read.reg, EHV_REG_UNKNOWN);
	CHECK_EQ(e.u.mmio_read.reg_width, 0);
	CHECK_EQ(p.kind, EHVI_PEND_MMIO);
	CHECK_EQ(p.size, 4);
	k.kind = EKVM_EXIT_MMIO_WRITE;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.reason, EHV_EXIT_MMIO_WRITE);
	CHECK_EQ(e.u.mmio_write.data, 0x56781234);
	k.u.mmio.len = 9;
	CHECK_ERR(map(&k, &e, &p), -EIO);
}

TEST(hv_kvm_map_fields)
{
	struct ehv_exit e;
	struct ehvi_pending p;
	uint64_t ret = 0, msr = 0;
	uint8_t err = 0;

	struct ekvm_exit k = kexit(EKVM_EXIT_HYPERCALL, KVM_EXIT_HYPERCALL);
	k.u.hypercall.nr = 12;
	k.u.hypercall.args[0] = 0x1000;
	k.u.hypercall.args[5] = 6;
	k.u.hypercall.ret = &ret;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.reason, EHV_EXIT_HYPERCALL);
	CHECK_EQ(e.u.hypercall.nr, 12);
	CHECK_EQ(e.u.hypercall.args[0], 0x1000);
	CHECK_EQ(e.u.hypercall.args[5], 6);
	CHECK(p.value == &ret);

	k = kexit(EKVM_EXIT_X86_RDMSR, KVM_EXIT_X86_RDMSR);
	k.u.msr.index = 0x174;
	k.u.msr.data = &msr;
	k.u.msr.error = &err;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.reason, EHV_EXIT_SYSREG_READ);
	CHECK_EQ(e.u.sysreg_read.addr, 0x174);
	CHECK_EQ(e.u.sysreg_read.reg, EHV_REG_UNKNOWN);
	CHECK(p.answer_required);
	k.kind = EKVM_EXIT_X86_WRMSR;
	k.u.msr.value = 0xabcdef;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.reason, EHV_EXIT_SYSREG_WRITE);
	CHECK_EQ(e.u.sysreg_write.value, 0xabcdef);
	CHECK(!p.answer_required);

	k = kexit(EKVM_EXIT_DEBUG, KVM_EXIT_DEBUG);
	k.u.debug.exception = 1;
	k.u.debug.pc = 0x1003;
	k.u.debug.dr6 = 0xffff4ff0;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.u.debug.exception, 1);
	CHECK_EQ(e.u.debug.pc, 0x1003);
	CHECK_EQ(e.u.debug.dr6, 0xffff4ff0);

	k = kexit(EKVM_EXIT_FAIL_ENTRY, KVM_EXIT_FAIL_ENTRY);
	k.u.fail_entry.hardware_entry_failure_reason = (uint64_t)-1;
	k.u.fail_entry.cpu = 1;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.u.fail_entry.hardware_reason, (uint64_t)-1);
	CHECK_EQ(e.u.fail_entry.cpu, 1);

	k = kexit(EKVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTERNAL_ERROR);
	k.u.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	k.u.internal.ndata = 3;
	k.u.internal.data[2] = 99;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.u.internal_error.suberror, KVM_INTERNAL_ERROR_EMULATION);
	CHECK_EQ(e.u.internal_error.ndata, 3);
	CHECK_EQ(e.u.internal_error.data[2], 99);

	k = kexit(EKVM_EXIT_IOAPIC_EOI, KVM_EXIT_IOAPIC_EOI);
	k.u.eoi.vector = 0x30;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.u.ioapic_eoi.vector, 0x30);

	k = kexit(EKVM_EXIT_MEMORY_FAULT, KVM_EXIT_MEMORY_FAULT);
	k.u.memory_fault.gpa = 0x200000;
	k.u.memory_fault.size = 0x1000;
	k.u.memory_fault.flags = KVM_MEMORY_EXIT_FLAG_PRIVATE;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.u.nested_page_fault.addr, 0x200000);
	CHECK_EQ(e.u.nested_page_fault.size, 0x1000);
	CHECK_EQ(e.u.nested_page_fault.access, EHV_NPF_UNKNOWN_ACCESS | EHV_NPF_PRIVATE);

	k = kexit(EKVM_EXIT_TPR_ACCESS, KVM_EXIT_TPR_ACCESS);
	k.u.tpr_access.rip = 0x1234;
	k.u.tpr_access.is_write = 1;
	CHECK_OK(map(&k, &e, &p));
	CHECK_EQ(e.reason, EHV_EXIT_UNSUPPORTED);
	CHECK_EQ(e.u.unsupported.ndata, 2);
	CHECK_EQ(e.u.unsupported.data[0], 0x1234);
	CHECK_EQ(e.u.unsupported.data[1], 1);
}

TEST(hv_kvm_map_system_events)
{
	static const struct {
		uint32_t type;
		enum ehv_exit_reason want;
		int kind;
	} t[] = {
	    {KVM_SYSTEM_EVENT_SHUTDOWN, EHV_EXIT_SYSTEM_DOWN, EHV_SYSTEM_DOWN_POWEROFF},
	    {KVM_SYSTEM_EVENT_RESET, EHV_EXIT_SYSTEM_RESET, -1},
	    {KVM_SYSTEM_EVENT_CRASH, EHV_EXIT_SYSTEM_DOWN, EHV_SYSTEM_DOWN_CRASH},
	    {KVM_SYSTEM_EVENT_WAKEUP, EHV_EXIT_UNSUPPORTED, -1},
	    {KVM_SYSTEM_EVENT_SUSPEND, EHV_EXIT_UNSUPPORTED, -1},
	    {KVM_SYSTEM_EVENT_SEV_TERM, EHV_EXIT_SYSTEM_DOWN, EHV_SYSTEM_DOWN_TERMINATE},
	    {77, EHV_EXIT_UNSUPPORTED, -1},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct ehv_exit e;
		struct ehvi_pending p;
		struct ekvm_exit k = kexit(EKVM_EXIT_SYSTEM_EVENT, KVM_EXIT_SYSTEM_EVENT);
		k.u.system_event.type = t[i].type;
		k.u.system_event.ndata = 6;
		k.u.system_event.data[0] = 0xaa;
		CHECK_OK(map(&k, &e, &p));
		CHECK_EQ(e.reason, t[i].want);
		if (t[i].kind >= 0) {
			CHECK_EQ(e.u.system_down.kind, t[i].kind);
			CHECK_EQ(e.u.system_down.ndata, 4); /* bounded */
			CHECK_EQ(e.u.system_down.data[0], 0xaa);
		}
		if (t[i].want == EHV_EXIT_SYSTEM_RESET)
			CHECK_EQ(e.u.system_reset.data[0], 0xaa);
		if (t[i].want == EHV_EXIT_UNSUPPORTED)
			CHECK_EQ(e.u.unsupported.data[0], t[i].type);
	}
}
