/* tests/guests/lm64_hello.c - 64-bit guest: reports its id/argument and mode, then DONE. */
#include "guest.h"

void guest_main(unsigned long cpu, unsigned long arg)
{
	uint64_t cr0, cr4, efer = rdmsr(0xc0000080);
	__asm__ __volatile__("mov %%cr0, %0; mov %%cr4, %1" : "=r"(cr0), "=r"(cr4));
	GUEST_SYNC(cpu, arg, cr0, efer);
	GUEST_SYNC(cr4, sizeof(void *), 0x1122334455667788ull);
}
