/* tests/guests/rt/guest_rt.c - runtime of the C test guests: mem*, IDT and trap dispatch. */
#include "guest.h"

/* Declared here, called from crt*.S only. */
void guest_rt_init(void);
void guest_rt_done(void);

void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;
	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *ap = a, *bp = b;
	for (; n; n--, ap++, bp++)
		if (*ap != *bp)
			return *ap < *bp ? -1 : 1;
	return 0;
}

bool guest_is_amd(void)
{
	uint32_t a, b, c, d;
	cpuid(0, 0, &a, &b, &c, &d);
	/* "AuthenticAMD" / "HygonGenuine": EBX = "Auth" / "Hygo" */
	return b == 0x68747541 || b == 0x6f677948;
}

void guest_rt_done(void)
{
	GUEST_DONE();
}

#ifdef __x86_64__
struct idt_gate {
	uint16_t off0;
	uint16_t sel;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t off1;
	uint32_t off2;
	uint32_t zero;
} __attribute__((packed));

extern const char guest_isr_stubs[];

static struct idt_gate idt[256] __attribute__((aligned(16)));
static volatile guest_handler handlers[256];
volatile uint64_t guest_fixup_rip;
volatile uint64_t guest_fixup_vector;

void guest_isr(struct guest_frame *f);

void guest_set_handler(unsigned vector, guest_handler fn)
{
	if (vector < 256)
		handlers[vector] = fn;
}

void guest_rt_init(void)
{
	uint16_t cs;
	__asm__ __volatile__("mov %%cs, %0" : "=r"(cs));
	/* Every vCPU runs this; they all write the same values. */
	for (unsigned v = 0; v < 256; v++) {
		uint64_t addr = (uint64_t)(uintptr_t)(guest_isr_stubs + 16 * v);
		idt[v] = (struct idt_gate){
		    .off0 = (uint16_t)addr,
		    .sel = cs,
		    .ist = 0,
		    .type_attr = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
		    .off1 = (uint16_t)(addr >> 16),
		    .off2 = (uint32_t)(addr >> 32),
		    .zero = 0,
		};
	}
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
	__asm__ __volatile__("lidt %0" : : "m"(idtr) : "memory");
}

void guest_isr(struct guest_frame *f)
{
	guest_handler fn = handlers[f->vector & 0xff];
	if (fn) {
		fn(f);
		return;
	}
	if (guest_fixup_rip) {
		guest_fixup_vector = f->vector;
		f->rip = guest_fixup_rip;
		guest_fixup_rip = 0;
		return;
	}
	GUEST_FAIL("unexpected exception (vector, error code, rip)", f->vector, f->error_code,
		   f->rip);
}
#else
void guest_rt_init(void)
{
}
#endif
