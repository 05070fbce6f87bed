/* tests/guests/pm32_hello.c - 32-bit protected-mode guest: reports id, argument and CR0, then DONE. */
#include "guest.h"

void guest_main(unsigned long cpu, unsigned long arg)
{
	uint32_t cr0;
	__asm__ __volatile__("mov %%cr0, %0" : "=r"(cr0));
	GUEST_SYNC(cpu, arg, cr0, sizeof(void *));
}
