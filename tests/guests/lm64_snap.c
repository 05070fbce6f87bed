/* tests/guests/lm64_snap.c - 64-bit guest for the snapshot tests: counts in R15 and in memory under a periodic LAPIC timer, with XMM/YMM patterns loaded. */
#include "guest.h"

/*
 * The page the host reads and writes (GPA SNAP_SHARED, its own memory
 * slot, dirty-logged by the host):
 *   +0  the counter (a copy of R15 after each increment)
 *   +8  stop: the host sets it to end the counting loop
 *   +16 the TSC, read on every iteration
 *   +24 LAPIC timer ticks
 *   +64 where XMM7 and YMM8 are stored for the check
 * Flow: arm the timer, load the vector patterns, SYNC(avx), count until
 * stop, then wait for three more ticks and SYNC(r15, ticks since stop, tsc,
 * vector check), then DONE.
 */
#define SNAP_SHARED 0x400000ull
#define LAPIC	    0xfee00000ull

struct shared {
	volatile uint64_t counter, stop, tsc, ticks;
	uint64_t pad[4];
	uint8_t xmm7[16];
	uint8_t ymm8[32];
};

static const uint8_t pat_xmm[16] __attribute__((aligned(16))) = {
    0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x0f};
static const uint8_t pat_ymm[32] __attribute__((aligned(32))) = {
    0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f, 0x90,
    0x01, 0x12, 0x23, 0x34, 0x45, 0x56, 0x67, 0x78, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0};

static void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC + reg) = v;
}

static void on_timer(struct guest_frame *f)
{
	(void)f;
	((struct shared *)SNAP_SHARED)->ticks++;
	lapic_write(0xb0, 0); /* EOI */
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

void guest_main(unsigned long cpu, unsigned long arg)
{
	(void)cpu;
	(void)arg;
	struct shared *sh = (struct shared *)SNAP_SHARED;
	uint32_t a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	const bool avx = ((c >> 26) & 1) && ((c >> 28) & 1); /* XSAVE and AVX */
	/* SSE is on (the host's long-mode setup sets OSFXSR); AVX needs
	 * CR4.OSXSAVE and XCR0 = x87 | SSE | AVX, which the host sets (see
	 * tests/kvm/hv_snapshot.c: an XSETBV here is not seen by KVM under
	 * the nested sandbox) */
	if (avx) {
		uint64_t cr4;
		uint32_t lo, hi;
		__asm__ __volatile__("mov %%cr4, %0" : "=r"(cr4));
		GUEST_ASSERT(cr4 & (1ull << 18));
		__asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		GUEST_ASSERT_EQ(lo & 7, 7);
		__asm__ __volatile__("vmovdqu %0, %%ymm8" ::"m"(pat_ymm));
	}
	__asm__ __volatile__("movdqu %0, %%xmm7" ::"m"(pat_xmm));

	guest_set_handler(0x40, on_timer);
	lapic_write(0xf0, 0x1ff);	       /* software enable, spurious vector 0xff */
	lapic_write(0x3e0, 0x3);	       /* divide by 16 */
	lapic_write(0x320, 0x40 | (1u << 17)); /* periodic, vector 0x40 */
	lapic_write(0x380, 62500);	       /* 1 ms at KVM's 1 GHz APIC bus */
	GUEST_SYNC(avx);
	sti();

	uint64_t r15;
	__asm__ __volatile__("xor %%r15, %%r15\n"
			     "1: inc %%r15\n"
			     "mov %%r15, (%[sh])\n"
			     "rdtsc\n"
			     "shl $32, %%rdx\n"
			     "or %%rdx, %%rax\n"
			     "mov %%rax, 16(%[sh])\n"
			     "cmpq $0, 8(%[sh])\n"
			     "je 1b\n"
			     "mov %%r15, %[out]\n"
			     : [out] "=r"(r15)
			     : [sh] "r"(sh)
			     : "rax", "rdx", "r15", "memory", "cc");
	uint64_t tsc = rdtsc();
	GUEST_ASSERT_EQ(sh->counter, r15);
	/* the timer still fires */
	uint64_t t0 = sh->ticks;
	for (unsigned long i = 0; i < 200000000ul && sh->ticks < t0 + 3; i++)
		pause();
	cli();
	/* the vector registers still hold the patterns */
	__asm__ __volatile__("movdqu %%xmm7, %0" : "=m"(sh->xmm7));
	unsigned vec_ok = memcmp(sh->xmm7, pat_xmm, 16) == 0;
	if (avx) {
		__asm__ __volatile__("vmovdqu %%ymm8, %0" : "=m"(sh->ymm8));
		vec_ok |= (memcmp(sh->ymm8, pat_ymm, 32) == 0) << 1;
	}
	GUEST_SYNC(r15, sh->ticks - t0, tsc, vec_ok);
}
