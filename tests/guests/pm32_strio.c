/* tests/guests/pm32_strio.c - 32-bit guest: string port I/O (rep outsb, rep insw, rep outsl). */
#include "guest.h"

static const char msg[] = "hello";
static const uint32_t dwords[3] = {0x03020100, 0x07060504, 0x0b0a0908};
static uint16_t words[5] __attribute__((aligned(16)));

void guest_main(unsigned long cpu, unsigned long arg)
{
	const void *src = msg;
	void *dst = words;
	unsigned long n = 5;

	__asm__ __volatile__("cld; rep outsb" : "+S"(src), "+c"(n) : "d"(0x500) : "memory");
	GUEST_ASSERT_EQ(n, 0);
	GUEST_ASSERT_EQ((uintptr_t)src, (uintptr_t)msg + 5);

	words[4] = 0xffff; /* guard: must stay */
	n = 4;
	__asm__ __volatile__("cld; rep insw" : "+D"(dst), "+c"(n) : "d"(0x502) : "memory");
	GUEST_ASSERT_EQ(n, 0);
	GUEST_ASSERT_EQ((uintptr_t)dst, (uintptr_t)words + 8);
	GUEST_ASSERT_EQ(words[0], 0x1111);
	GUEST_ASSERT_EQ(words[1], 0x2222);
	GUEST_ASSERT_EQ(words[2], 0x3333);
	GUEST_ASSERT_EQ(words[3], 0x4444);
	GUEST_ASSERT_EQ(words[4], 0xffff);

	src = dwords;
	n = 3;
	__asm__ __volatile__("cld; rep outsl" : "+S"(src), "+c"(n) : "d"(0x504) : "memory");
	GUEST_ASSERT_EQ(n, 0);
}
