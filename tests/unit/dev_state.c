/* tests/unit/dev_state.c - the legacy devices' save and load: a fresh instance loaded from a saved one behaves the same; malformed states are refused and change nothing. */
#include "state_util.h"

#include "../../devices/bootmarker.h"
#include "../../devices/i8042.h"
#include "../../devices/pci_host.h"
#include "../../devices/pvpanic.h"
#include "../../devices/reset_cf9.h"
#include "../../devices/rtc_cmos.h"
#include "../../devices/serial8250.h"

static uint8_t pio(struct dev *d, unsigned off, bool is_write, uint8_t v)
{
	d->ops->bus.access(d, off, off, 0, &v, 1, is_write);
	return v;
}

/* Saves from, loads into to, and checks that to now saves the same bytes. */
static void *copy_state(struct dev *from, struct dev *to, size_t *len)
{
	void *buf = state_take(state_dev_save, from, len);
	char detail[VMM_STATE_DETAIL];
	int rc = state_load(state_dev_load, to, buf, *len, detail, sizeof(detail));
	if (rc)
		TEST_FAIL("load: %d: %s", rc, detail);
	size_t len2;
	void *again = state_take(state_dev_save, to, &len2);
	CHECK_EQ(len2, *len);
	CHECK(len2 == *len && !memcmp(buf, again, len2));
	free(again);
	return buf;
}

/* ---------------------------------------------------------------- 16550A */

struct uart_host {
	uint8_t out[64];
	unsigned nout;
	bool level;
};
static void uart_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct uart_host *h = opaque;
	for (size_t i = 0; i < len && h->nout < sizeof(h->out); i++)
		h->out[h->nout++] = buf[i];
}
static void uart_irq(void *opaque, bool level)
{
	((struct uart_host *)opaque)->level = level;
}

static struct serial8250 *uart_new(struct uart_host *h)
{
	struct serial8250 *s;
	memset(h, 0, sizeof(*h));
	struct serial8250_config cfg = {.tx = uart_tx, .set_irq = uart_irq, .opaque = h};
	if (serial8250_create(&cfg, &s))
		TEST_FAIL("serial8250_create");
	return s;
}

TEST(dev_state_serial8250_round_trip)
{
	struct uart_host ha, hb;
	struct serial8250 *a = uart_new(&ha), *b = uart_new(&hb);
	struct dev *da = serial8250_dev(a), *db = serial8250_dev(b);
	pio(da, 3, true, 0x83); /* DLAB, 8N1 */
	pio(da, 0, true, 0x01); /* 115200 */
	pio(da, 3, true, 0x03);
	pio(da, 2, true, 0xc7); /* FIFOs on, trigger 14 */
	pio(da, 4, true, 0x0b); /* DTR RTS OUT2 */
	pio(da, 1, true, 0x01); /* received data interrupt */
	pio(da, 7, true, 0x5a);
	serial8250_rx_push(a, (const uint8_t *)"hello", 5);
	CHECK_EQ(pio(da, 0, false, 0), 'h'); /* one byte read before the save */
	CHECK(ha.level);

	size_t len;
	void *buf = copy_state(da, db, &len);
	/* the fresh UART raised its line for the pending data */
	CHECK(hb.level);
	for (unsigned reg = 1; reg <= 7; reg++)
		if (reg != 5 && reg != 6 && reg != 2) /* LSR, MSR, IIR change on read */
			CHECK_EQ(pio(db, reg, false, 0), pio(da, reg, false, 0));
	CHECK_EQ(pio(db, 2, false, 0), pio(da, 2, false, 0));
	CHECK_EQ(pio(db, 5, false, 0), pio(da, 5, false, 0));
	pio(db, 3, true, 0x83);
	CHECK_EQ(pio(db, 0, false, 0), 0x01); /* the divisor */
	pio(db, 3, true, 0x03);
	/* the receive FIFO continues where it stopped */
	char got[5] = {0};
	for (int i = 0; i < 4; i++)
		got[i] = (char)pio(db, 0, false, 0);
	CHECK_STR(got, "ello");
	CHECK(!hb.level);
	/* and it transmits */
	pio(db, 0, true, 'X');
	CHECK_EQ(hb.nout, 1);
	CHECK_EQ(hb.out[0], 'X');

	/* malformed: and a FIFO count past the FIFO */
	struct uart_host hc;
	struct serial8250 *c = uart_new(&hc);
	state_check_refusals(state_dev_save, state_dev_load, serial8250_dev(c), buf, len);
	size_t rx_count_at = 1 + 10 + 8 + 10 + 1;
	CHECK_EQ(((uint8_t *)buf)[rx_count_at], 4);
	state_check_patched(state_dev_load, serial8250_dev(c), buf, len, rx_count_at, 17,
			    "serial8250: 17 bytes in the receive FIFO");
	/* 4 bytes in a FIFO of 1 (FIFOs off) */
	state_check_patched(state_dev_load, serial8250_dev(c), buf, len, 1 + 10 + 8 + 3, 0, "FIFO");
	free(buf);
	dev_destroy(da);
	dev_destroy(db);
	dev_destroy(serial8250_dev(c));
}

/* ---------------------------------------------------------------- i8042 */

struct kbd_host {
	bool level;
};
static void kbd_irq(void *opaque, bool level)
{
	((struct kbd_host *)opaque)->level = level;
}

TEST(dev_state_i8042_round_trip)
{
	struct kbd_host ha = {0}, hb = {0}, hc = {0};
	struct i8042 *a, *b, *c;
	REQUIRE_OK(i8042_create(&(struct i8042_config){.set_irq = kbd_irq, .opaque = &ha}, &a));
	REQUIRE_OK(i8042_create(&(struct i8042_config){.set_irq = kbd_irq, .opaque = &hb}, &b));
	REQUIRE_OK(i8042_create(&(struct i8042_config){.set_irq = kbd_irq, .opaque = &hc}, &c));
	struct dev *da = i8042_dev(a), *db = i8042_dev(b);
	pio(da, I8042_COMMAND, true, 0x60); /* write the command byte */
	pio(da, I8042_DATA, true, 0x45);
	pio(da, I8042_DATA, true, 0xf0); /* scan code set ... */
	pio(da, I8042_DATA, true, 0x03); /* ... 3 */
	pio(da, I8042_DATA, true, 0xf2); /* identify: ACK, 0xab, 0x41 (+ the two ACKs) */
	CHECK_EQ(pio(da, I8042_DATA, false, 0), 0xfa);
	CHECK(ha.level);

	size_t len;
	void *buf = copy_state(da, db, &len);
	CHECK(hb.level);
	CHECK_EQ(pio(db, I8042_COMMAND, false, 0), pio(da, I8042_COMMAND, false, 0));
	/* the queue continues: ACK (set 3), ACK (identify), 0xab, 0x41 */
	const uint8_t want[] = {0xfa, 0xfa, 0xab, 0x41};
	for (unsigned i = 0; i < sizeof(want); i++)
		CHECK_EQ(pio(db, I8042_DATA, false, 0), want[i]);
	CHECK(!hb.level);
	pio(db, I8042_COMMAND, true, 0x20); /* the command byte came across */
	CHECK_EQ(pio(db, I8042_DATA, false, 0), 0x45);
	pio(db, I8042_DATA, true, 0xf0); /* and the scan code set */
	pio(db, I8042_DATA, true, 0x00);
	CHECK_EQ(pio(db, I8042_DATA, false, 0), 0xfa);
	CHECK_EQ(pio(db, I8042_DATA, false, 0), 0xfa);
	CHECK_EQ(pio(db, I8042_DATA, false, 0), 0x3f); /* set 3, translated */

	state_check_refusals(state_dev_save, state_dev_load, i8042_dev(c), buf, len);
	/* a queue entry from a source that does not exist */
	size_t q_at = 1 + 5 + 8 + 32 + 5 + 2;
	CHECK_EQ(((uint8_t *)buf)[q_at], 4);
	state_check_patched(state_dev_load, i8042_dev(c), buf, len, q_at + 2, 7, "source 7");
	/* the serial port's state is not the i8042's */
	CHECK_ERR(state_load(state_dev_load, i8042_dev(c), "\x0aserial8250", 11, NULL, 0), -EINVAL);
	free(buf);
	dev_destroy(da);
	dev_destroy(db);
	dev_destroy(i8042_dev(c));
}

/* ---------------------------------------------------------------- RTC */

#define NS 1000000000LL
struct rtc_host {
	int64_t now;
	bool level;
	int retimes;
};
static int64_t rtc_now(void *opaque)
{
	return ((struct rtc_host *)opaque)->now;
}
static void rtc_irq(void *opaque, bool level)
{
	((struct rtc_host *)opaque)->level = level;
}
static void rtc_retime(void *opaque)
{
	((struct rtc_host *)opaque)->retimes++;
}
static struct rtc_cmos *rtc_new(struct rtc_host *h, int64_t now)
{
	struct rtc_cmos *rtc;
	memset(h, 0, sizeof(*h));
	h->now = now;
	if (rtc_cmos_create(&(struct rtc_cmos_config){.now_ns = rtc_now,
						      .set_irq = rtc_irq,
						      .timer_changed = rtc_retime,
						      .opaque = h},
			    &rtc))
		TEST_FAIL("rtc_cmos_create");
	return rtc;
}
static uint8_t rtc_rd(struct dev *d, uint8_t reg)
{
	pio(d, 0, true, reg);
	return pio(d, 1, false, 0);
}
static void rtc_wr(struct dev *d, uint8_t reg, uint8_t v)
{
	pio(d, 0, true, reg);
	pio(d, 1, true, v);
}

TEST(dev_state_rtc_cmos_clock_moves_on)
{
	/* 2024-02-29 13:45:07 UTC */
	const int64_t t0 = 1709214307LL * NS;
	struct rtc_host ha, hb, hc;
	struct rtc_cmos *a = rtc_new(&ha, t0), *b = rtc_new(&hb, t0 + 3600 * NS),
			*c = rtc_new(&hc, t0);
	struct dev *da = rtc_cmos_dev(a), *db = rtc_cmos_dev(b);
	/* the guest sets its clock to 01:02:03 (binary, 24 h) and some CMOS bytes */
	rtc_wr(da, 0x0b, 0x80 | 0x04 | 0x02);
	rtc_wr(da, 0x04, 1);
	rtc_wr(da, 0x02, 2);
	rtc_wr(da, 0x00, 3);
	rtc_wr(da, 0x0b, 0x04 | 0x02 | 0x10); /* running, update interrupts on */
	rtc_wr(da, 0x40, 0x99);
	pio(da, 0, true, 0x8f); /* NMIs masked, index 0x0f */
	ha.now += 2 * NS;
	CHECK_EQ(rtc_cmos_poll(a), -1); /* UF up: no timer owed until C is read */
	CHECK(ha.level);		/* UF */
	CHECK_EQ(rtc_rd(da, 0x00), 5);
	pio(da, 0, true, 0x8f);

	size_t len;
	void *buf = state_take(state_dev_save, da, &len);
	/* loaded 10 s of host time later than it was saved */
	hb.now = ha.now + 10 * NS;
	int retimes = hb.retimes;
	REQUIRE_OK(state_load(state_dev_load, db, buf, len, NULL, 0));
	CHECK(hb.retimes > retimes); /* told the VMM to re-time its interrupts */
	CHECK(hb.level);	     /* the update flag still pending */
	CHECK(rtc_cmos_nmi_masked(b));
	CHECK_EQ(rtc_rd(db, 0x0b), 0x04 | 0x02 | 0x10);
	CHECK_EQ(rtc_rd(db, 0x40), 0x99);
	CHECK_EQ(rtc_rd(db, 0x04), 1);
	CHECK_EQ(rtc_rd(db, 0x02), 2);
	CHECK_EQ(rtc_rd(db, 0x00), 15); /* 01:02:05 saved, 10 s passed */
	CHECK_EQ(rtc_rd(db, 0x0c) & 0x90, 0x90);
	CHECK(!hb.level);

	state_check_refusals(state_dev_save, state_dev_load, rtc_cmos_dev(c), buf, len);
	/* index past the CMOS */
	state_check_patched(state_dev_load, rtc_cmos_dev(c), buf, len, 1 + 8 + 8 + 128, 0x80,
			    "out of range");
	free(buf);
	dev_destroy(da);
	dev_destroy(db);
	dev_destroy(rtc_cmos_dev(c));
}

/* ---------------------------------------------------------------- small ones */

static void count_mark(void *opaque, uint8_t value, uint64_t ns)
{
	(void)value;
	(void)ns;
	(*(int *)opaque)++;
}

TEST(dev_state_pvpanic_cf9_bootmarker_pci_host)
{
	struct pvpanic *p1, *p2;
	REQUIRE_OK(pvpanic_create(&(struct pvpanic_config){0}, &p1));
	REQUIRE_OK(pvpanic_create(&(struct pvpanic_config){0}, &p2));
	pio(pvpanic_dev(p1), 0, true, PVPANIC_CRASH_LOADED);
	size_t len;
	void *buf = copy_state(pvpanic_dev(p1), pvpanic_dev(p2), &len);
	CHECK_EQ(pvpanic_events(p2), PVPANIC_CRASH_LOADED);
	struct pvpanic *p3;
	REQUIRE_OK(pvpanic_create(&(struct pvpanic_config){0}, &p3));
	state_check_refusals(state_dev_save, state_dev_load, pvpanic_dev(p3), buf, len);
	((uint8_t *)buf)[len - 1] = 0x80;
	CHECK_ERR(state_load(state_dev_load, pvpanic_dev(p3), buf, len, NULL, 0), -EINVAL);
	CHECK_EQ(pvpanic_events(p3), 0);
	free(buf);

	struct reset_cf9 *r1, *r2, *r3;
	REQUIRE_OK(reset_cf9_create(&(struct reset_cf9_config){0}, &r1));
	REQUIRE_OK(reset_cf9_create(&(struct reset_cf9_config){0}, &r2));
	REQUIRE_OK(reset_cf9_create(&(struct reset_cf9_config){0}, &r3));
	pio(reset_cf9_dev(r1), 0, true, RESET_CF9_SYS_RST);
	buf = copy_state(reset_cf9_dev(r1), reset_cf9_dev(r2), &len);
	CHECK_EQ(pio(reset_cf9_dev(r2), 0, false, 0), RESET_CF9_SYS_RST);
	state_check_refusals(state_dev_save, state_dev_load, reset_cf9_dev(r3), buf, len);
	free(buf);

	int marks = 0;
	struct bootmarker *m1, *m2, *m3;
	struct bootmarker_config mc = {.mark = count_mark, .opaque = &marks};
	REQUIRE_OK(bootmarker_create(&mc, &m1));
	REQUIRE_OK(bootmarker_create(&mc, &m2));
	REQUIRE_OK(bootmarker_create(&mc, &m3));
	pio(bootmarker_dev(m1), 0, true, 0x42);
	CHECK_EQ(marks, 1);
	buf = copy_state(bootmarker_dev(m1), bootmarker_dev(m2), &len);
	pio(bootmarker_dev(m2), 0, true, 0x42); /* marked before the save: not again */
	CHECK_EQ(marks, 1);
	pio(bootmarker_dev(m2), 0, true, 0x43);
	CHECK_EQ(marks, 2);
	state_check_refusals(state_dev_save, state_dev_load, bootmarker_dev(m3), buf, len);
	free(buf);

	struct pci_host *h1, *h2, *h3;
	REQUIRE_OK(pci_host_create(&(struct pci_host_config){0}, &h1));
	REQUIRE_OK(pci_host_create(&(struct pci_host_config){0}, &h2));
	REQUIRE_OK(pci_host_create(&(struct pci_host_config){0}, &h3));
	struct dev *d1 = pci_host_dev(h1), *d2 = pci_host_dev(h2);
	uint8_t l[4] = {0x3c, 0, 0, 0x80}; /* 00:00.0 register 0x3c */
	d1->ops->bus.access(d1, 0, 0xcf8, 0, l, 4, true);
	pio(d1, 4, true, 11); /* interrupt line */
	buf = copy_state(d1, d2, &len);
	CHECK_EQ(pci_host_latch(h2), 0x8000003c);
	CHECK_EQ(pio(d2, 4, false, 0), 11);
	state_check_refusals(state_dev_save, state_dev_load, pci_host_dev(h3), buf, len);
	/* a read-only byte (the vendor ID) changed */
	((uint8_t *)buf)[1 + 8 + 8 + 4] ^= 1;
	char detail[VMM_STATE_DETAIL];
	CHECK_ERR(state_load(state_dev_load, pci_host_dev(h3), buf, len, detail, sizeof(detail)),
		  -EINVAL);
	CHECK(strstr(detail, "read-only") != NULL);
	free(buf);

	dev_destroy(pvpanic_dev(p1));
	dev_destroy(pvpanic_dev(p2));
	dev_destroy(pvpanic_dev(p3));
	dev_destroy(reset_cf9_dev(r1));
	dev_destroy(reset_cf9_dev(r2));
	dev_destroy(reset_cf9_dev(r3));
	dev_destroy(bootmarker_dev(m1));
	dev_destroy(bootmarker_dev(m2));
	dev_destroy(bootmarker_dev(m3));
	dev_destroy(d1);
	dev_destroy(d2);
	dev_destroy(pci_host_dev(h3));
}
