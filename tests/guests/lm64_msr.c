/* tests/guests/lm64_msr.c - 64-bit guest: RDMSR/WRMSR that KVM hands to the host (filter, unknown MSR). */
#include "guest.h"

#define MSR_STAR	 0xc0000081u
#define MSR_LSTAR	 0xc0000082u
#define MSR_TEST_UNKNOWN 0x2ee70000u /* no such MSR */

void guest_main(unsigned long cpu, unsigned long arg)
{
	uint64_t v;

	/* STAR is denied by the host's filter: both go to the host */
	GUEST_ASSERT_EQ(rdmsr(MSR_STAR), 0x1122334455667788ull);
	wrmsr(MSR_STAR, 0x0023001000000000ull | 0xbeef);

	/* an MSR KVM does not know: the host answers #GP, then a value */
	GUEST_ASSERT_EQ(rdmsr_safe(MSR_TEST_UNKNOWN, &v), 13);
	GUEST_ASSERT_EQ(rdmsr_safe(MSR_TEST_UNKNOWN, &v), 0);
	GUEST_ASSERT_EQ(v, 0x5555aaaa5555aaaaull);
	/* host accepts this write, refuses the next (#GP) */
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_TEST_UNKNOWN, 0xabcdef), 0);
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_STAR, 1), 13);

	/* LSTAR is not filtered: KVM handles it, no exit */
	wrmsr(MSR_LSTAR, 0x100000ull);
	GUEST_ASSERT_EQ(rdmsr(MSR_LSTAR), 0x100000ull);
}
