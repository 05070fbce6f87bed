/* tests/unit/dev_legacy_board.c - every legacy device on one PIO bus at PC addresses, via dispatch. */
#include "../lib/test.h"
#include "../../devices/bootmarker.h"
#include "../../devices/i8042.h"
#include "../../devices/rtc_cmos.h"
#include "../../devices/serial8250.h"

#include <errno.h>
#include <stdlib.h>

struct board {
	struct bus *pio;
	struct serial8250 *com1;
	struct i8042 *kbc;
	struct rtc_cmos *rtc;
	struct bootmarker *marker;
	struct dev *devs[4];
	/* what the devices told the "VMM" */
	char out[256];
	size_t nout;
	bool irq4, irq1;
	int resets, marks;
};

static void com1_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct board *b = opaque;
	for (size_t i = 0; i < len && b->nout < sizeof(b->out) - 1; i++)
		b->out[b->nout++] = (char)buf[i];
}
static void com1_irq(void *opaque, bool level)
{
	((struct board *)opaque)->irq4 = level;
}
static void kbc_irq(void *opaque, bool level)
{
	((struct board *)opaque)->irq1 = level;
}
static void kbc_reset(void *opaque)
{
	((struct board *)opaque)->resets++;
}
static void on_mark(void *opaque, uint8_t value, uint64_t ns)
{
	((struct board *)opaque)->marks++;
}

/* What vmm/arch/x86/board.c is expected to do, in datasheet order. */
static void board_init(struct board *b)
{
	memset(b, 0, sizeof(*b));
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &b->pio));
	struct serial8250_config sc = {.tx = com1_tx, .set_irq = com1_irq, .opaque = b};
	struct i8042_config kc = {.reset = kbc_reset, .set_irq = kbc_irq, .opaque = b};
	struct rtc_cmos_config rc = {0};
	struct bootmarker_config mc = {
	    .mark = on_mark, .opaque = b, .match_value = true, .value = 0x7b};
	REQUIRE_OK(serial8250_create(&sc, &b->com1));
	REQUIRE_OK(i8042_create(&kc, &b->kbc));
	REQUIRE_OK(rtc_cmos_create(&rc, &b->rtc));
	REQUIRE_OK(bootmarker_create(&mc, &b->marker));
	b->devs[0] = serial8250_dev(b->com1);
	b->devs[1] = i8042_dev(b->kbc);
	b->devs[2] = rtc_cmos_dev(b->rtc);
	b->devs[3] = bootmarker_dev(b->marker);
	REQUIRE_OK(dev_register(b->pio, 0x3f8, SERIAL8250_WINDOW, b->devs[0])); /* COM1, IRQ 4 */
	REQUIRE_OK(dev_register_at(b->pio, 0x60, 1, b->devs[1], I8042_DATA));	/* IRQ 1 */
	REQUIRE_OK(dev_register_at(b->pio, 0x64, 1, b->devs[1], I8042_COMMAND));
	REQUIRE_OK(dev_register(b->pio, 0x70, RTC_CMOS_WINDOW, b->devs[2])); /* IRQ 8 */
	REQUIRE_OK(dev_register(b->pio, 0x80, 1, b->devs[3]));
	/* a second device on a taken port is refused */
	CHECK_ERR(dev_register(b->pio, 0x3fc, 1, b->devs[3]), -EEXIST);
}

static void board_destroy(struct board *b)
{
	/* as the board does: the buses go first (no vCPU dispatches any more),
	 * then the devices */
	bus_destroy(b->pio);
	for (int i = 0; i < 4; i++)
		dev_destroy(b->devs[i]);
}

static uint8_t inb(struct board *b, uint16_t port)
{
	uint8_t v;
	(void)bus_access(b->pio, port, &v, 1, false, 0);
	return v;
}

static void outb(struct board *b, uint16_t port, uint8_t v)
{
	(void)bus_access(b->pio, port, &v, 1, true, 0);
}

TEST(dev_legacy_board_wiring)
{
	struct board b;
	board_init(&b);
	/* console output through the bus */
	for (const char *p = "ok\n"; *p; p++) {
		while (!(inb(&b, 0x3fd) & 0x20))
			;
		outb(&b, 0x3f8, (uint8_t)*p);
	}
	CHECK_STR(b.out, "ok\n");
	/* the keyboard controller at 0x60/0x64, not at 0x61 */
	outb(&b, 0x64, 0xaa);
	CHECK(inb(&b, 0x64) & 0x01);
	CHECK_EQ(inb(&b, 0x60), 0x55);
	CHECK_EQ(inb(&b, 0x61), 0xff);
	outb(&b, 0x64, 0xfe);
	CHECK_EQ(b.resets, 1);
	/* the RTC answers with a valid BCD second */
	outb(&b, 0x70, 0x00);
	uint8_t sec = inb(&b, 0x71);
	CHECK((sec & 0x0f) <= 9 && (sec >> 4) <= 5);
	outb(&b, 0x70, 0x0d);
	CHECK_EQ(inb(&b, 0x71), 0x80);
	/* the marker */
	outb(&b, 0x80, 0x00);
	outb(&b, 0x80, 0x7b);
	CHECK_EQ(b.marks, 1);
	/* COM2-4 are absent: Linux's probe reads all-ones there (LSR 0xff) */
	CHECK_EQ(inb(&b, 0x2fd), 0xff);
	CHECK_EQ(inb(&b, 0x3e9), 0xff);
	struct bus_stats st;
	bus_get_stats(b.pio, &st);
	CHECK_EQ(st.unhandled_reads, 3);
	/* machine reset: every device's verb, then it still works */
	for (int i = 0; i < 4; i++)
		dev_reset(b.devs[i]);
	CHECK_EQ(inb(&b, 0x3fd), 0x60);
	CHECK_EQ(inb(&b, 0x64) & 0x01, 0);
	board_destroy(&b);
}

/* Any port, any width, any value: nothing crashes, every answer is defined. */
TEST(dev_legacy_board_random_io)
{
	struct board b;
	board_init(&b);
	srand(1981);
	static const uint16_t hot[] = {0x3f8, 0x60, 0x64, 0x70, 0x80};
	for (int i = 0; i < 300000; i++) {
		uint16_t port =
		    (rand() % 4) ? (uint16_t)(hot[rand() % 5] + rand() % 8) : (uint16_t)rand();
		unsigned len = 1u << (rand() % 5); /* 1..16, 16 invalid */
		uint8_t v[16];
		for (unsigned k = 0; k < len; k++)
			v[k] = (uint8_t)rand();
		int r = bus_access(b.pio, port, v, len, rand() % 2, (unsigned)(rand() % 4));
		CHECK(r == 0 || r == -ENOENT || r == -EINVAL);
	}
	board_destroy(&b);
}
