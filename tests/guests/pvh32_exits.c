/* tests/guests/pvh32_exits.c - booted by the VMM: times port-I/O exit round trips with the TSC, prints the cycles per exit on ttyS0. */
#include "guest.h"
#include "board.h"
#include "serial.h"

/*
 * For bench/seccomp_bench.sh: 5 rounds of 20000 byte writes to an unclaimed
 * port (0x2f8, no device: the VMM's bus counts it and returns), each round
 * timed with rdtsc; prints "exits: round R cycles_per_exit C" and the
 * minimum, then powers off (ACPI S5).
 */

#define PORT   0x2f8
#define N      20000u
#define ROUNDS 5u

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return (uint64_t)hi << 32 | lo;
}

/* a / b without libgcc's 64-bit division (a 32-bit guest) */
static uint64_t div64(uint64_t a, uint32_t b)
{
	uint64_t q = 0, r = 0;
	for (int i = 63; i >= 0; i--) {
		r = r << 1 | ((a >> i) & 1);
		if (r >= b) {
			r -= b;
			q |= 1ull << i;
		}
	}
	return q;
}

void guest_main(unsigned long cpu, unsigned long arg)
{
	(void)cpu;
	(void)arg;
	uint32_t best = ~0u;
	for (unsigned r = 0; r < ROUNDS; r++) {
		uint64_t t0 = rdtsc();
		for (unsigned i = 0; i < N; i++)
			outb(PORT, (uint8_t)i);
		uint32_t c = (uint32_t)div64(rdtsc() - t0, N);
		if (c < best)
			best = c;
		serial_puts("exits: round ");
		serial_putdec(r);
		serial_puts(" cycles_per_exit ");
		serial_putdec(c);
		serial_puts("\n");
	}
	serial_puts("exits: best cycles_per_exit ");
	serial_putdec(best);
	serial_puts("\n");
	outb(SLEEP_CTL, S5_POWER_OFF);
	for (;;)
		hlt();
}
