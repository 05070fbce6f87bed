/* tests/guests/lm64_smp.c - 64-bit guest for 2 vCPUs: rendezvous, shared atomic counter, per-vCPU PIO. */
#include "guest.h"

static volatile uint32_t arrived[2], finished[2];
static volatile uint32_t counter;

void guest_main(unsigned long cpu, unsigned long arg)
{
	unsigned long spins = 0;
	GUEST_ASSERT(cpu < 2);
	/* both vCPUs must be in the guest at the same time to get past this */
	arrived[cpu] = 1;
	while (!arrived[cpu ^ 1]) {
		pause();
		if (++spins == 4000000000ul)
			GUEST_FAIL("the other vCPU never arrived", cpu);
	}
	for (unsigned i = 0; i < (unsigned)arg; i++) {
		__asm__ __volatile__("lock incl %0" : "+m"(counter));
		if (i % (arg / 8) == 0)
			outl(0x600 + cpu, (uint32_t)(cpu << 24 | i));
	}
	/* wait for the other one, so that both report the final count */
	finished[cpu] = 1;
	while (!finished[cpu ^ 1])
		pause();
	GUEST_SYNC(cpu, counter);
}
