/* tests/guests/pvh32_halt.c - booted by the VMM: starts its APs, then every vCPU halts (interrupts off or on, as the command line says). */
#include "guest.h"
#include "serial.h"

/*
 * The host (tests/kvm/halt_detect.c) boots this as the PVH kernel of a real
 * Ember VM. The command line says what to do:
 *   halt.irq=off|on   HLT with interrupts disabled (cli; hlt), or enabled
 *                     (sti; hlt, with IDTs whose handlers just return)
 *   halt.aps=N        start N application processors (INIT + start-up IPI
 *                     to all but self) and wait until each has checked in;
 *                     0 leaves them waiting for their start-up IPI
 * The APs run a real-mode stub at 0x70000 that counts itself in and halts
 * the same way. The BSP then prints "halt: N APs up, halting irq=X" on
 * ttyS0 and halts.
 */

#define TRAMPOLINE  0x70000u /* start-up IPI vector 0x70 */
#define AP_COUNTER  0x70100u
#define LAPIC	    0xfee00000u
#define LAPIC_SVR   0x0f0
#define LAPIC_ICR   0x300
#define LAPIC_ICR2  0x310
#define ICR_BUSY    (1u << 12)
#define ICR_ALL_BUT (3u << 18)
#define ICR_ASSERT  (1u << 14)
#define ICR_INIT    (5u << 8)
#define ICR_SIPI    (6u << 8)

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr;
};

/* The value of key=... on the command line (up to a space), or NULL. */
static const char *arg_of(const char *cmdline, const char *key)
{
	size_t n = 0;
	while (key[n])
		n++;
	for (const char *p = cmdline; *p; p++)
		if ((p == cmdline || p[-1] == ' ') && !memcmp(p, key, n) && p[n] == '=')
			return p + n + 1;
	return NULL;
}

static void lapic_wr(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC + reg, v);
}
static void icr_send(uint32_t low)
{
	lapic_wr(LAPIC_ICR2, 0);
	lapic_wr(LAPIC_ICR, low);
	for (unsigned i = 0; i < 100000 && (mmio_read32(LAPIC + LAPIC_ICR) & ICR_BUSY); i++)
		pause();
}

/* Real mode at 7000:0000: [sti|cli]; ds = 0x7000; lock inc dword [0x100];
 * 1: hlt; jmp 1b. At 7000:0010 an iret for the real-mode IVT. */
static void write_trampoline(bool irq_on)
{
	static const uint8_t code[] = {
	    0xfa,				/* cli (patched to sti) */
	    0xb8, 0x00, 0x70,			/* mov ax, 0x7000 */
	    0x8e, 0xd8,				/* mov ds, ax */
	    0xf0, 0x66, 0xff, 0x06, 0x00, 0x01, /* lock inc dword [0x100] */
	    0xf4,				/* hlt */
	    0xeb, 0xfd,				/* jmp to the hlt */
	};
	uint8_t *t = (uint8_t *)(uintptr_t)TRAMPOLINE;
	memcpy(t, code, sizeof(code));
	if (irq_on)
		t[0] = 0xfb;
	t[0x10] = 0xcf; /* iret */
	/* the real-mode IVT at 0: every vector to 7000:0010 */
	uintptr_t zero; /* address 0, hidden from the compiler's null-pointer rules */
	__asm__("" : "=r"(zero) : "0"((uintptr_t)0));
	volatile uint32_t *ivt = (volatile uint32_t *)zero;
	for (unsigned v = 0; v < 256; v++)
		ivt[v] = (0x7000u << 16) | 0x10;
	*(volatile uint32_t *)(uintptr_t)AP_COUNTER = 0;
}

/* A 32-bit IDT whose every gate returns at once (for sti; hlt). */
void halt_iret(void);
__asm__(".text\n.globl halt_iret\nhalt_iret:\n\tiret\n");
static uint64_t idt[256] __attribute__((aligned(16)));

static void load_idt(void)
{
	uint16_t cs;
	__asm__ __volatile__("mov %%cs, %0" : "=r"(cs));
	uint32_t off = (uint32_t)(uintptr_t)halt_iret;
	for (unsigned v = 0; v < 256; v++)
		idt[v] = (off & 0xffffu) | ((uint64_t)cs << 16) | ((uint64_t)0x8e << 40) |
			 ((uint64_t)(off >> 16) << 48);
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) d = {sizeof(idt) - 1, (uint32_t)(uintptr_t)idt};
	__asm__ __volatile__("lidt %0" : : "m"(d));
}

void guest_main(unsigned long cpu, unsigned long arg)
{
	(void)cpu;
	const struct hvm_start_info *si = (const struct hvm_start_info *)arg;
	const char *cmdline = (const char *)(uintptr_t)si->cmdline_paddr;
	const char *irq = arg_of(cmdline, "halt.irq");
	const char *aps = arg_of(cmdline, "halt.aps");
	bool irq_on = irq && irq[0] == 'o' && irq[1] == 'n';
	unsigned naps = aps ? (unsigned)(aps[0] - '0') : 0;

	write_trampoline(irq_on);
	if (naps) {
		lapic_wr(LAPIC_SVR, 0x1ff); /* software-enabled, spurious vector 0xff */
		icr_send(ICR_ALL_BUT | ICR_ASSERT | ICR_INIT);
		for (unsigned k = 0; k < 2; k++) {
			icr_send(ICR_ALL_BUT | ICR_SIPI | (TRAMPOLINE >> 12));
			for (unsigned i = 0;
			     i < 20000000 && *(volatile uint32_t *)(uintptr_t)AP_COUNTER < naps;
			     i++)
				pause();
			if (*(volatile uint32_t *)(uintptr_t)AP_COUNTER >= naps)
				break;
		}
	}
	unsigned up = *(volatile uint32_t *)(uintptr_t)AP_COUNTER;
	serial_puts("halt: ");
	serial_putc((char)('0' + (up > 9 ? 9 : up)));
	serial_puts(" APs up, halting irq=");
	serial_puts(irq_on ? "on\n" : "off\n");
	if (irq_on) {
		load_idt();
		for (;;)
			sti_hlt();
	}
	for (;;) {
		cli();
		hlt();
	}
}
