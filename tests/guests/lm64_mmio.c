/* tests/guests/lm64_mmio.c - 64-bit guest: MMIO writes and reads of 1, 2, 4 and 8 bytes at arg. */
#include "guest.h"

void guest_main(unsigned long cpu, unsigned long arg)
{
	uint64_t m = arg;

	mmio_write8(m + 0x00, 0x11);
	mmio_write16(m + 0x10, 0x2233);
	mmio_write32(m + 0x20, 0x44556677);
	mmio_write64(m + 0x30, 0x8899aabbccddeeffull);

	GUEST_ASSERT_EQ(mmio_read8(m + 0x01), 0x5a);
	GUEST_ASSERT_EQ(mmio_read16(m + 0x12), 0x1234);
	GUEST_ASSERT_EQ(mmio_read32(m + 0x24), 0x89abcdef);
	GUEST_ASSERT_EQ(mmio_read64(m + 0x38), 0x0123456789abcdefull);

	/* HLT with interrupts off exits to the host (no in-kernel irqchip) */
	cli();
	hlt();
	GUEST_SYNC(0x4c54);
}
