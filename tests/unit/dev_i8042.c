/* tests/unit/dev_i8042.c - the i8042 controller: commands, Linux's probe, keyboard, reset. */
#include "../lib/test.h"
#include "../../devices/i8042.h"

#include <errno.h>
#include <stdlib.h>

#define DATA 0
#define CMD  4

#define STR_OBF	    0x01
#define STR_IBF	    0x02
#define STR_SYS	    0x04
#define STR_CMD	    0x08
#define STR_KEYLOCK 0x10
#define STR_AUXDATA 0x20

#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40

struct host {
	int resets;
	bool level;
	int raises, lowers;
	struct i8042 *dev; /* for the re-entrancy check */
	uint8_t status_in_reset;
};

static uint8_t in(struct i8042 *k, unsigned port)
{
	struct dev *d = i8042_dev(k);
	uint8_t v = 0xee;
	d->ops->bus.access(d, port, 0x60 + port, 0, &v, 1, false);
	return v;
}

static void out(struct i8042 *k, unsigned port, uint8_t v)
{
	struct dev *d = i8042_dev(k);
	d->ops->bus.access(d, port, 0x60 + port, 0, &v, 1, true);
}

static void host_reset(void *opaque)
{
	struct host *h = opaque;
	h->resets++;
	/* runs without the device lock: calling back in must not deadlock */
	if (h->dev)
		h->status_in_reset = in(h->dev, CMD);
}

static void host_irq(void *opaque, bool level)
{
	struct host *h = opaque;
	h->level = level;
	if (level)
		h->raises++;
	else
		h->lowers++;
}

static struct i8042 *kbc_new(struct host *h)
{
	memset(h, 0, sizeof(*h));
	struct i8042_config cfg = {.reset = host_reset, .set_irq = host_irq, .opaque = h};
	struct i8042 *k = NULL;
	int r = i8042_create(&cfg, &k);
	if (r < 0 || !k)
		TEST_FAIL("i8042_create: %d", r);
	h->dev = k;
	return k;
}

/*
 * Linux's __i8042_command: nparam bytes out, nresp bytes back. Every poll
 * of the status register must find what Linux waits for at once (IBF clear
 * before a write, OBF set before a read): a miss here would be a 500 ms
 * timeout in the guest. Returns -1 like Linux on an AUX_LOOP answer without
 * AUXDATA.
 */
static int command(struct i8042 *k, uint8_t *param, uint8_t cmd, int nparam, int nresp)
{
	REQUIRE(!(in(k, CMD) & STR_IBF));
	out(k, CMD, cmd);
	for (int i = 0; i < nparam; i++) {
		REQUIRE(!(in(k, CMD) & STR_IBF));
		out(k, DATA, param[i]);
	}
	for (int i = 0; i < nresp; i++) {
		uint8_t st = in(k, CMD);
		if (!(st & STR_OBF))
			TEST_FAIL("command 0x%02x: no answer byte %d (Linux would time out)", cmd,
				  i);
		if (cmd == 0xd3 && !(st & STR_AUXDATA))
			return -1;
		param[i] = in(k, DATA);
	}
	return 0;
}

static int flush(struct i8042 *k)
{
	int n = 0;
	while (in(k, CMD) & STR_OBF) {
		if (n++ >= 16)
			return -EIO;
		in(k, DATA);
	}
	return n;
}

TEST(dev_i8042_initial_status)
{
	struct host h;
	struct i8042 *k = kbc_new(&h);
	CHECK_STR(dev_name(i8042_dev(k)), "i8042");
	uint8_t st = in(k, CMD);
	CHECK_EQ(st & (STR_OBF | STR_IBF), 0);
	CHECK(st & STR_KEYLOCK); /* not inhibited */
	CHECK(st & STR_SYS);	 /* POST done */
	/* offsets 1-3 of a 5-byte window: nothing there */
	uint8_t v = 0x12;
	i8042_dev(k)->ops->bus.access(i8042_dev(k), 1, 0x61, 0, &v, 1, false);
	CHECK_EQ(v, 0x12);
	CHECK_ERR(i8042_create(NULL, &k), -EINVAL);
	dev_destroy(i8042_dev(h.dev));
}

TEST(dev_i8042_self_test_and_interface_tests)
{
	struct host h;
	struct i8042 *k = kbc_new(&h);
	uint8_t p[1];
	REQUIRE_OK(command(k, p, 0xaa, 0, 1));
	CHECK_EQ(p[0], 0x55);
	CHECK(in(k, CMD) & STR_SYS);
	REQUIRE_OK(command(k, p, 0xab, 0, 1));
	CHECK_EQ(p[0], 0x00);
	CHECK_EQ(in(k, CMD) & STR_OBF, 0);
	/* the status register tells which port was written last */
	CHECK(in(k, CMD) & STR_CMD);
	out(k, CMD, 0x60);
	out(k, DATA, 0x45);
	CHECK(!(in(k, CMD) & STR_CMD));
	dev_destroy(i8042_dev(k));
}

TEST(dev_i8042_command_byte_and_ram)
{
	struct host h;
	struct i8042 *k = kbc_new(&h);
	uint8_t p[1];
	REQUIRE_OK(command(k, p, 0x20, 0, 1));
	CHECK_EQ(p[0], 0x65); /* XLATE, AUXDIS, SYS, KBDINT */
	p[0] = 0x12;
	REQUIRE_OK(command(k, p, 0x60, 1, 0));
	REQUIRE_OK(command(k, p, 0x20, 0, 1));
	CHECK_EQ(p[0], 0x12);
	CHECK_EQ(in(k, CMD) & STR_SYS, 0); /* the system flag follows it */
	p[0] = 0x77;
	REQUIRE_OK(command(k, p, 0x7f, 1, 0));
	REQUIRE_OK(command(k, p, 0x3f, 0, 1));
	CHECK_EQ(p[0], 0x77);
	/* enable/disable commands flip the command byte's bits */
	REQUIRE_OK(command(k, p, 0xad, 0, 0));
	REQUIRE_OK(command(k, p, 0x20, 0, 1));
	CHECK(p[0] & CTR_KBDDIS);
	REQUIRE_OK(command(k, p, 0xae, 0, 0));
	REQUIRE_OK(command(k, p, 0x20, 0, 1));
	CHECK(!(p[0] & CTR_KBDDIS));
	REQUIRE_OK(command(k, p, 0xa8, 0, 0));
	REQUIRE_OK(command(k, p, 0x20, 0, 1));
	CHECK(!(p[0] & CTR_AUXDIS));
	REQUIRE_OK(command(k, p, 0xa7, 0, 0));
	REQUIRE_OK(command(k, p, 0x20, 0, 1));
	CHECK(p[0] & CTR_AUXDIS);
	/* output port */
	REQUIRE_OK(command(k, p, 0xd0, 0, 1));
	CHECK_EQ(p[0] & 0x03, 0x03);
	p[0] = 0xdf;
	REQUIRE_OK(command(k, p, 0xd1, 1, 0)); /* Linux's A20 gate write */
	REQUIRE_OK(command(k, p, 0xd0, 0, 1));
	CHECK_EQ(p[0], 0xdf);
	CHECK_EQ(h.resets, 0);
	/* the others that answer */
	REQUIRE_OK(command(k, p, 0xa4, 0, 1));
	CHECK_EQ(p[0], 0xf1);
	REQUIRE_OK(command(k, p, 0xc0, 0, 1));
	REQUIRE_OK(command(k, p, 0xe0, 0, 1));
	CHECK_EQ(flush(k), 0);
	dev_destroy(i8042_dev(k));
}

TEST(dev_i8042_reset_callback)
{
	struct host h;
	struct i8042 *k = kbc_new(&h);
	out(k, CMD, 0xfe); /* Linux's reboot=k */
	CHECK_EQ(h.resets, 1);
	CHECK(h.status_in_reset & STR_KEYLOCK); /* the callback could read the device */
	out(k, CMD, 0xff);			/* pulses nothing */
	CHECK_EQ(h.resets, 1);
	out(k, CMD, 0xf0); /* pulses every line, reset included */
	CHECK_EQ(h.resets, 2);
	out(k, CMD, 0xf1);
	CHECK_EQ(h.resets, 2);
	uint8_t p[1] = {0xfe};
	REQUIRE_OK(command(k, p, 0xd1, 1, 0)); /* output port with reset low */
	CHECK_EQ(h.resets, 3);
	p[0] = 0xff;
	REQUIRE_OK(command(k, p, 0xd1, 1, 0));
	CHECK_EQ(h.resets, 3);
	/* Linux's emergency restart loop: wait for IBF clear, write 0xfe, 10 times */
	for (int i = 0; i < 10; i++) {
		REQUIRE(!(in(k, CMD) & STR_IBF));
		out(k, CMD, 0xfe);
	}
	CHECK_EQ(h.resets, 13);
	/* no reset callback: nothing happens */
	struct i8042_config cfg = {0};
	struct i8042 *k2;
	REQUIRE_OK(i8042_create(&cfg, &k2));
	out(k2, CMD, 0xfe);
	dev_destroy(i8042_dev(k2));
	dev_destroy(i8042_dev(k));
}

/* i8042_controller_check, _selftest, _init as in drivers/input/serio/i8042.c */
static void linux_controller_init(struct i8042 *k, uint8_t *ctr)
{
	REQUIRE(flush(k) >= 0);
	uint8_t p[1];
	REQUIRE_OK(command(k, p, 0xaa, 0, 1));
	REQUIRE_EQ(p[0], 0x55);
	uint8_t c[2];
	int n = 0;
	do {
		REQUIRE(n < 10);
		REQUIRE_OK(command(k, &c[n++ % 2], 0x20, 0, 1));
	} while (n < 2 || c[0] != c[1]);
	*ctr = c[0];
	*ctr |= CTR_KBDDIS;
	*ctr &= (uint8_t)~CTR_KBDINT;
	CHECK(in(k, CMD) & STR_KEYLOCK); /* else "Warning: Keylock active" */
	CHECK(*ctr & CTR_XLATE);	 /* translated, like a PC BIOS leaves it */
	REQUIRE_OK(command(k, ctr, 0x60, 1, 0));
	CHECK_EQ(flush(k), 0);
}

/* i8042_check_aux up to its first verdict. Returns 0 (AUX port) or -1. */
static int linux_check_aux(struct i8042 *k)
{
	REQUIRE(flush(k) >= 0);
	uint8_t p = 0x5a;
	int ret = command(k, &p, 0xd3, 1, 1);
	if (ret || p != 0x5a) {
		if (command(k, &p, 0xa9, 0, 1) || (p && p != 0xfa && p != 0xff))
			return -1;
	}
	return 0;
}

TEST(dev_i8042_linux_probe_noaux_dumbkbd)
{
	struct host h;
	struct i8042 *k = kbc_new(&h);
	uint8_t ctr;
	linux_controller_init(k, &ctr);
	/* i8042.noaux: no AUX check. i8042_enable_kbd_port: */
	ctr &= (uint8_t)~CTR_KBDDIS;
	ctr |= CTR_KBDINT;
	REQUIRE_OK(command(k, &ctr, 0x60, 1, 0));
	/* i8042.dumbkbd: atkbd never writes; nothing may be pending */
	CHECK_EQ(in(k, CMD) & STR_OBF, 0);
	CHECK(!h.level);
	CHECK_EQ(h.resets, 0);
	dev_destroy(i8042_dev(k));
}

TEST(dev_i8042_linux_probe_finds_no_aux_at_once)
{
	struct host h;
	struct i8042 *k = kbc_new(&h);
	uint8_t ctr;
	linux_controller_init(k, &ctr);
	CHECK_EQ(linux_check_aux(k), -1);
	/* nothing left behind to confuse the keyboard */
	CHECK_EQ(in(k, CMD) & STR_OBF, 0);
	/* the loopback never echoes, whatever the byte */
	for (int v = 0; v < 256; v++) {
		uint8_t p = (uint8_t)v;
		REQUIRE_OK(command(k, &p, 0xd3, 1, 1));
		CHECK(p != v);
	}
	/* AUX_SEND to the absent device: swallowed, no stray answer */
	uint8_t p = 0xf2;
	REQUIRE_OK(command(k, &p, 0xd4, 1, 0));
	CHECK_EQ(in(k, CMD) & STR_OBF, 0);
	dev_destroy(i8042_dev(k));
}

/* atkbd over ps2_command: the keyboard answers through IRQ 1. */
static int kbd_command(struct i8042 *k, struct host *h, uint8_t byte, uint8_t *resp, int max)
{
	int raises = h->raises;
	REQUIRE(!(in(k, CMD) & STR_IBF));
	out(k, DATA, byte);
	int n = 0;
	/* the "interrupt handler": one byte per rising edge */
	while (h->level && n < max) {
		REQUIRE_EQ(h->raises, raises + n + 1);
		uint8_t st = in(k, CMD);
		REQUIRE(st & STR_OBF);
		REQUIRE(!(st & STR_AUXDATA));
		resp[n++] = in(k, DATA);
	}
	return n;
}

TEST(dev_i8042_keyboard_answers_atkbd)
{
	struct host h;
	struct i8042 *k = kbc_new(&h);
	uint8_t ctr;
	linux_controller_init(k, &ctr);
	ctr &= (uint8_t)~CTR_KBDDIS;
	ctr |= CTR_KBDINT;
	REQUIRE_OK(command(k, &ctr, 0x60, 1, 0));
	uint8_t r[8];
	/* GET ID on a translating controller: fa ab 41 */
	REQUIRE_EQ(kbd_command(k, &h, 0xf2, r, 8), 3);
	CHECK_EQ(r[0], 0xfa);
	CHECK_EQ(r[1], 0xab);
	CHECK_EQ(r[2], 0x41);
	CHECK(!h.level);
	/* set LEDs: ack the command and its parameter */
	REQUIRE_EQ(kbd_command(k, &h, 0xed, r, 8), 1);
	CHECK_EQ(r[0], 0xfa);
	REQUIRE_EQ(kbd_command(k, &h, 0x00, r, 8), 1);
	CHECK_EQ(r[0], 0xfa);
	/* typematic, enable, reset */
	REQUIRE_EQ(kbd_command(k, &h, 0xf3, r, 8), 1);
	REQUIRE_EQ(kbd_command(k, &h, 0x20, r, 8), 1);
	REQUIRE_EQ(kbd_command(k, &h, 0xf4, r, 8), 1);
	CHECK_EQ(r[0], 0xfa);
	REQUIRE_EQ(kbd_command(k, &h, 0xff, r, 8), 2);
	CHECK_EQ(r[0], 0xfa);
	CHECK_EQ(r[1], 0xaa);
	REQUIRE_EQ(kbd_command(k, &h, 0xee, r, 8), 1);
	CHECK_EQ(r[0], 0xee);
	/* scan code set query: translated value of set 2 */
	REQUIRE_EQ(kbd_command(k, &h, 0xf0, r, 8), 1);
	REQUIRE_EQ(kbd_command(k, &h, 0x00, r, 8), 2);
	CHECK_EQ(r[1], 0x41);
	/* unknown command: resend */
	REQUIRE_EQ(kbd_command(k, &h, 0x42, r, 8), 1);
	CHECK_EQ(r[0], 0xfe);

	/* untranslated: the raw ID and set */
	ctr &= (uint8_t)~CTR_XLATE;
	REQUIRE_OK(command(k, &ctr, 0x60, 1, 0));
	REQUIRE_EQ(kbd_command(k, &h, 0xf2, r, 8), 3);
	CHECK_EQ(r[2], 0x83);
	REQUIRE_EQ(kbd_command(k, &h, 0xf0, r, 8), 1);
	REQUIRE_EQ(kbd_command(k, &h, 0x01, r, 8), 1); /* select set 1 */
	REQUIRE_EQ(kbd_command(k, &h, 0xf0, r, 8), 1);
	REQUIRE_EQ(kbd_command(k, &h, 0x00, r, 8), 2);
	CHECK_EQ(r[1], 0x01);

	/* with the keyboard interrupt off the bytes wait, the line stays low */
	ctr &= (uint8_t)~CTR_KBDINT;
	REQUIRE_OK(command(k, &ctr, 0x60, 1, 0));
	out(k, DATA, 0xf2);
	CHECK(!h.level);
	CHECK_EQ(flush(k), 3);
	dev_destroy(i8042_dev(k));
}

TEST(dev_i8042_kbd_write_reenables_interface)
{
	struct host h;
	struct i8042 *k = kbc_new(&h);
	uint8_t p[1];
	REQUIRE_OK(command(k, p, 0xad, 0, 0));
	REQUIRE_OK(command(k, p, 0x20, 0, 1));
	CHECK(p[0] & CTR_KBDDIS);
	out(k, DATA, 0xf4); /* sending to the keyboard */
	CHECK_EQ(in(k, DATA), 0xfa);
	REQUIRE_OK(command(k, p, 0x20, 0, 1));
	CHECK(!(p[0] & CTR_KBDDIS));
	dev_destroy(i8042_dev(k));
}

TEST(dev_i8042_reset_state_and_bad_input)
{
	struct host h;
	struct i8042 *k = kbc_new(&h);
	struct dev *d = i8042_dev(k);
	srand(8042);
	int resets = 0;
	for (int i = 0; i < 200000; i++) {
		unsigned port = (rand() % 2) ? CMD : DATA;
		uint8_t v = (uint8_t)rand();
		if (rand() % 2) {
			if (port == CMD && ((v >= 0xf0 && !(v & 1))))
				resets++;
			out(k, port, v);
		} else {
			uint8_t st = in(k, port);
			if (port == CMD)
				CHECK_EQ(st & STR_IBF, 0);
		}
		if (i % 40000 == 0)
			dev_reset(d);
	}
	/* bytes after 0xd1 may also reset: at least the pulses did */
	CHECK(h.resets >= resets);
	/* the queue is bounded: flush always ends */
	for (int i = 0; i < 100; i++)
		out(k, DATA, 0xf2);
	int n = 0;
	while ((in(k, CMD) & STR_OBF) && n < 1000) {
		in(k, DATA);
		n++;
	}
	CHECK(n <= 16);
	/* reset: empty queue, default command byte, line low */
	out(k, DATA, 0xf2);
	dev_reset(d);
	CHECK_EQ(in(k, CMD) & STR_OBF, 0);
	CHECK(!h.level);
	uint8_t p[1];
	REQUIRE_OK(command(k, p, 0x20, 0, 1));
	CHECK_EQ(p[0], 0x65);
	dev_destroy(d);
}
