/* tests/guests/lm64_more.c - 64-bit guest: TPR access, IOAPIC EOI, SynIC, Xen hypercall, dirty pages. */
#include "guest.h"

enum { MORE_TPR = 1, MORE_EOI, MORE_SYNIC, MORE_XEN, MORE_DIRTY };

#define APIC_BASE	    0xfee00000ull
#define APIC_TPR	    0x80
#define APIC_EOI	    0xb0
#define APIC_SVR	    0xf0
#define HV_X64_MSR_SCONTROL 0x40000080u

extern const char tpr_read[], tpr_write[];
static volatile uint64_t irqs, irq_vector;

static void on_msi(struct guest_frame *f)
{
	irqs++;
	irq_vector = f->vector;
	mmio_write32(APIC_BASE + APIC_EOI, 0);
}

static void tpr_access(void)
{
	uint32_t tpr;
	GUEST_SYNC((uintptr_t)tpr_read, (uintptr_t)tpr_write);
	__asm__ __volatile__(".globl tpr_read\ntpr_read: movl (%1), %0"
			     : "=r"(tpr)
			     : "r"(APIC_BASE + APIC_TPR)
			     : "memory");
	__asm__ __volatile__(".globl tpr_write\ntpr_write: movl %0, (%1)"
			     :
			     : "r"(0x20u), "r"(APIC_BASE + APIC_TPR)
			     : "memory");
	GUEST_SYNC(tpr, mmio_read32(APIC_BASE + APIC_TPR));
}

/* The host routes a level-triggered MSI to vector 0x50 (split irqchip);
 * our EOI for it goes to the host's IOAPIC as an IoapicEoi exit. */
static void ioapic_eoi(void)
{
	guest_set_handler(0x50, on_msi);
	mmio_write32(APIC_BASE + APIC_SVR, 0x1ff); /* APIC software-enabled */
	sti();
	GUEST_SYNC(0); /* the host sends the MSI now */
	for (unsigned long i = 0; i < 100000000 && !irqs; i++)
		pause();
	cli();
	GUEST_SYNC(irqs, irq_vector);
}

static void synic(void)
{
	wrmsr(HV_X64_MSR_SCONTROL, 1);
	GUEST_SYNC(rdmsr(HV_X64_MSR_SCONTROL));
}

/* Xen hypercall ABI (64-bit): number in RAX, args in RDI, RSI, RDX, R10,
 * R8, R9; the instruction is the vendor's VMCALL/VMMCALL. */
static uint64_t xen_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	uint64_t ret;
	/* asked first: a call between the register variables' setting and the
	 * asm would clobber them (r8-r10 are the caller's to save) */
	bool amd = guest_is_amd();
	register uint64_t r10 __asm__("r10") = 0x1010;
	register uint64_t r8 __asm__("r8") = 0x1008;
	register uint64_t r9 __asm__("r9") = 0x1009;
	if (amd)
		__asm__ __volatile__("vmmcall"
				     : "=a"(ret)
				     : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8),
				       "r"(r9)
				     : "memory");
	else
		__asm__ __volatile__("vmcall"
				     : "=a"(ret)
				     : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8),
				       "r"(r9)
				     : "memory");
	return ret;
}

static void xen(void)
{
	GUEST_ASSERT_EQ(xen_hypercall(18, 0xa0, 0xa1, 0xa2), 0x5e5e);
}

/* arg: low 32 bits = base GPA of the dirty-logged slot, then one byte per
 * page over `pages` pages */
static void dirty(uint64_t base, unsigned pages)
{
	for (unsigned i = 0; i < pages; i++)
		*(volatile uint8_t *)(uintptr_t)(base + (uint64_t)i * 4096) = (uint8_t)(i + 1);
	GUEST_SYNC(pages);
}

void guest_main(unsigned long cpu, unsigned long arg)
{
	switch (arg >> 32) {
	case MORE_TPR:
		tpr_access();
		break;
	case MORE_EOI:
		ioapic_eoi();
		break;
	case MORE_SYNIC:
		synic();
		break;
	case MORE_XEN:
		xen();
		break;
	case MORE_DIRTY:
		dirty(arg & 0xfff00000u, (unsigned)(arg & 0xfffffu));
		break;
	default:
		GUEST_FAIL("unknown scenario", arg);
	}
}
