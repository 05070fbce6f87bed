/* tests/guests/lm64_spin.c - 64-bit guest: one SYNC, then counts in RAX forever without exiting. */
#include "guest.h"

void guest_main(unsigned long cpu, unsigned long arg)
{
	GUEST_SYNC(0);
	__asm__ __volatile__("xor %%eax, %%eax\n1: inc %%rax\njmp 1b" ::: "rax");
}
