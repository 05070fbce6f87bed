/* tests/guests/lm64_assert.c - 64-bit guest that fails an assertion (arg 0) or runs ud2 (arg 1). */
#include "guest.h"

static volatile uint64_t x = 7;
extern const char ud2_site[];

void guest_main(unsigned long cpu, unsigned long arg)
{
	if (arg == 1) {
		GUEST_SYNC((uint64_t)(uintptr_t)ud2_site);
		__asm__ __volatile__(".globl ud2_site\nud2_site: ud2");
	}
	GUEST_SYNC(__LINE__ + 1);
	GUEST_ASSERT_EQ(x + 1, 42);
}
