/* tests/unit/dev_serial8250.c - the 16550A UART, driven through its ops like Linux's 8250 driver. */
#include "../lib/test.h"
#include "../../devices/serial8250.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

/* registers */
#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

/* What the UART told the "VMM". */
struct host {
	uint8_t tx[4096];
	size_t ntx;
	bool level;
	int raises, lowers;
	int rx_ready;
};

static void host_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct host *h = opaque;
	for (size_t i = 0; i < len && h->ntx < sizeof(h->tx); i++)
		h->tx[h->ntx++] = buf[i];
}

static void host_irq(void *opaque, bool level)
{
	struct host *h = opaque;
	if (level == h->level)
		TEST_FAIL("set_irq(%d) called without a change", level);
	h->level = level;
	if (level)
		h->raises++;
	else
		h->lowers++;
}

static void host_rx_ready(void *opaque)
{
	((struct host *)opaque)->rx_ready++;
}

static struct serial8250 *uart_new(struct host *h, bool ungated)
{
	memset(h, 0, sizeof(*h));
	struct serial8250_config cfg = {
	    .tx = host_tx,
	    .set_irq = host_irq,
	    .rx_ready = host_rx_ready,
	    .opaque = h,
	    .ungated_irq = ungated,
	};
	struct serial8250 *s = NULL;
	int r = serial8250_create(&cfg, &s);
	if (r < 0 || !s)
		TEST_FAIL("serial8250_create: %d", r);
	return s;
}

static uint8_t in(struct serial8250 *s, unsigned reg)
{
	struct dev *d = serial8250_dev(s);
	uint8_t v = 0xee;
	d->ops->bus.access(d, reg, 0x3f8 + reg, 0, &v, 1, false);
	return v;
}

static void out(struct serial8250 *s, unsigned reg, uint8_t v)
{
	struct dev *d = serial8250_dev(s);
	d->ops->bus.access(d, reg, 0x3f8 + reg, 0, &v, 1, true);
}

static size_t push(struct serial8250 *s, const char *str)
{
	return serial8250_rx_push(s, (const uint8_t *)str, strlen(str));
}

TEST(dev_serial_reset_state)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	CHECK_STR(dev_name(serial8250_dev(s)), "serial8250");
	CHECK_EQ(serial8250_dev(s)->ops->bus.sizes, BUS_W1);
	CHECK_EQ(in(s, IER), 0x00);
	CHECK_EQ(in(s, IIR), 0x01);
	CHECK_EQ(in(s, LCR), 0x00);
	CHECK_EQ(in(s, MCR), 0x00);
	CHECK_EQ(in(s, LSR), 0x60);
	CHECK_EQ(in(s, MSR), 0xb0);
	CHECK_EQ(in(s, SCR), 0x00);
	out(s, SCR, 0xa5);
	CHECK_EQ(in(s, SCR), 0xa5);
	/* reserved bits do not stick */
	out(s, IER, 0xff);
	CHECK_EQ(in(s, IER), 0x0f);
	out(s, MCR, 0xff);
	CHECK_EQ(in(s, MCR), 0x1f);
	CHECK_EQ(h.level, false);
	dev_destroy(serial8250_dev(s));
	CHECK_ERR(serial8250_create(NULL, &s), -EINVAL);
}

TEST(dev_serial_lcr_dlab_divisor)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	out(s, IER, 0x05);
	out(s, LCR, 0x83); /* DLAB, 8N1 */
	CHECK_EQ(in(s, LCR), 0x83);
	out(s, DLL, 0x01); /* 115200 baud */
	out(s, DLM, 0x02);
	CHECK_EQ(in(s, DLL), 0x01);
	CHECK_EQ(in(s, DLM), 0x02);
	CHECK_EQ(h.ntx, 0); /* DLL writes are not THR writes */
	out(s, LCR, 0x03);
	CHECK_EQ(in(s, IER), 0x05); /* IER untouched by the DLM write */
	out(s, THR, 'x');
	CHECK_EQ(h.ntx, 1);
	out(s, LCR, 0x83);
	CHECK_EQ(in(s, DLL), 0x01); /* untouched by the THR write */
	CHECK_EQ(in(s, DLM), 0x02);
	/* IIR/FCR and the rest do not depend on DLAB */
	CHECK_EQ(in(s, IIR) & 0x0f, 0x01);
	CHECK_EQ(in(s, LSR), 0x60);
	dev_destroy(serial8250_dev(s));
}

TEST(dev_serial_tx_callback)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	const char *msg = "Linux version 6.1\r\n";
	for (const char *p = msg; *p; p++) {
		/* what a polled console does: wait for THRE, write */
		REQUIRE(in(s, LSR) & 0x20);
		out(s, THR, (uint8_t)*p);
	}
	CHECK_EQ(h.ntx, strlen(msg));
	CHECK(memcmp(h.tx, msg, h.ntx) == 0);
	CHECK_EQ(in(s, LSR) & 0x60, 0x60); /* THRE and TEMT: sent at once */
	dev_destroy(serial8250_dev(s));
}

TEST(dev_serial_rx_push_and_read)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	/* FIFOs off: a single holding register */
	CHECK_EQ(push(s, "xy"), 1);
	CHECK_EQ(push(s, "z"), 0);
	CHECK_EQ(in(s, LSR) & 0x01, 0x01);
	CHECK_EQ(in(s, RBR), 'x');
	CHECK_EQ(in(s, LSR) & 0x01, 0x00);
	CHECK_EQ(h.rx_ready, 1);
	/* FIFOs on: 16 bytes */
	out(s, FCR, 0x01);
	CHECK_EQ(push(s, "abcdefghijklmnopqrst"), 16);
	CHECK_EQ(push(s, "u"), 0); /* full */
	char got[17] = {0};
	for (int i = 0; i < 16; i++) {
		REQUIRE(in(s, LSR) & 0x01);
		got[i] = (char)in(s, RBR);
	}
	CHECK_STR(got, "abcdefghijklmnop");
	CHECK_EQ(in(s, LSR) & 0x01, 0);
	CHECK_EQ(h.rx_ready, 2);   /* told once, when it became empty */
	CHECK_EQ(in(s, RBR), 'p'); /* an empty FIFO repeats the last byte */
	CHECK_EQ(h.rx_ready, 2);
	CHECK_EQ(serial8250_rx_push(s, NULL, 0), 0);
	dev_destroy(serial8250_dev(s));
}

TEST(dev_serial_fcr_fifo_control)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	CHECK_EQ(in(s, IIR) & 0xc0, 0x00);
	out(s, FCR, 0x01);
	CHECK_EQ(in(s, IIR) & 0xc0, 0xc0);
	CHECK_EQ(push(s, "hello"), 5);
	/* clear RX */
	out(s, FCR, 0x03);
	CHECK_EQ(in(s, LSR) & 0x01, 0);
	CHECK_EQ(h.rx_ready, 1);
	CHECK_EQ(in(s, IIR) & 0xc0, 0xc0);
	/* clear TX only: RX kept */
	CHECK_EQ(push(s, "ab"), 2);
	out(s, FCR, 0x05);
	CHECK_EQ(in(s, LSR) & 0x01, 1);
	/* disabling the FIFOs empties them; other bits need FCR.0 */
	out(s, FCR, 0xc0);
	CHECK_EQ(in(s, LSR) & 0x01, 0);
	CHECK_EQ(in(s, IIR) & 0xc0, 0x00);
	CHECK_EQ(push(s, "xy"), 1); /* back to one holding register */
	CHECK_EQ(in(s, RBR), 'x');
	/* FCR writes never disturb LCR/IER */
	CHECK_EQ(in(s, LCR), 0);
	CHECK_EQ(in(s, IER), 0);
	dev_destroy(serial8250_dev(s));
}

TEST(dev_serial_rx_trigger_levels)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	out(s, MCR, 0x08); /* OUT2 */
	out(s, FCR, 0x41); /* FIFO on, trigger 4 */
	out(s, IER, 0x01);
	CHECK_EQ(in(s, IIR), 0xc1);
	CHECK_EQ(push(s, "abc"), 3);
	CHECK_EQ(in(s, IIR), 0xcc); /* below the trigger: character timeout */
	CHECK(h.level);
	CHECK_EQ(push(s, "d"), 1);
	CHECK_EQ(in(s, IIR), 0xc4); /* at the trigger: data available */
	in(s, RBR);
	CHECK_EQ(in(s, IIR), 0xcc);
	in(s, RBR);
	in(s, RBR);
	in(s, RBR);
	CHECK_EQ(in(s, IIR), 0xc1);
	CHECK(!h.level);
	/* 14-byte trigger */
	out(s, FCR, 0xc1);
	CHECK_EQ(push(s, "0123456789abc"), 13);
	CHECK_EQ(in(s, IIR), 0xcc);
	CHECK_EQ(push(s, "d"), 1);
	CHECK_EQ(in(s, IIR), 0xc4);
	dev_destroy(serial8250_dev(s));
}

TEST(dev_serial_thre_interrupt)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	out(s, MCR, 0x0b); /* DTR RTS OUT2 */
	CHECK(!h.level);
	/* enabling ETBEI with an empty THR raises THRE */
	out(s, IER, 0x02);
	CHECK(h.level);
	CHECK_EQ(h.raises, 1);
	/* an IIR read that reports THRE clears it */
	CHECK_EQ(in(s, IIR), 0x02);
	CHECK(!h.level);
	CHECK_EQ(in(s, IIR), 0x01);
	/* rewriting IER with ETBEI still set is not a new edge */
	out(s, IER, 0x02);
	CHECK_EQ(in(s, IIR), 0x01);
	CHECK(!h.level);
	/* off and on again: re-asserted (Linux's UART_BUG_THRE test) */
	out(s, IER, 0x00);
	out(s, IER, 0x02);
	CHECK_EQ(in(s, IIR), 0x02);
	/* every THR write re-asserts it (the byte left at once) */
	out(s, THR, 'a');
	CHECK(h.level);
	CHECK_EQ(in(s, IIR), 0x02);
	CHECK(!h.level);
	/* ETBEI off masks a latched THRE */
	out(s, THR, 'b');
	CHECK(h.level);
	out(s, IER, 0x00);
	CHECK(!h.level);
	CHECK_EQ(in(s, IIR), 0x01);
	CHECK_EQ(h.ntx, 2);
	dev_destroy(serial8250_dev(s));
}

TEST(dev_serial_iir_priorities)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	out(s, FCR, 0x01);
	out(s, MCR, 0x18); /* loopback (to make errors and modem deltas), OUT2 */
	in(s, MSR);	   /* drop the deltas of entering loopback */
	/* 17 bytes into a 16-byte FIFO: an overrun */
	for (int i = 0; i < 17; i++)
		out(s, THR, (uint8_t)('A' + i));
	out(s, MCR, 0x19); /* DTR: a modem status change (DSR) */
	out(s, IER, 0x0f);
	CHECK_EQ(in(s, IIR), 0xc6); /* line status first */
	uint8_t lsr = in(s, LSR);
	CHECK_EQ(lsr & 0x03, 0x03);	/* OE, DR */
	CHECK_EQ(in(s, LSR) & 0x02, 0); /* read clears OE */
	CHECK_EQ(in(s, IIR), 0xc4);	/* then received data (16 >= trigger 1) */
	for (int i = 0; i < 16; i++)
		CHECK_EQ(in(s, RBR), 'A' + i); /* the 17th byte was lost */
	CHECK_EQ(in(s, IIR), 0xc2);	       /* then THRE (latched by the THR writes) */
	CHECK_EQ(in(s, IIR), 0xc0);	       /* then modem status */
	uint8_t msr = in(s, MSR);
	CHECK_EQ(msr & 0x0f, 0x02); /* DDSR */
	CHECK_EQ(msr & 0xf0, 0xa0); /* DCD (OUT2), DSR (DTR) */
	CHECK_EQ(in(s, IIR), 0xc1);
	CHECK_EQ(h.ntx, 0); /* loopback sends nothing out */
	dev_destroy(serial8250_dev(s));
}

TEST(dev_serial_irq_line_gating)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	out(s, IER, 0x01);
	CHECK_EQ(push(s, "a"), 1);
	CHECK_EQ(in(s, IIR) & 0x0f, 0x04); /* pending... */
	CHECK(!h.level);		   /* ...but OUT2 is off: the PC's gate */
	out(s, MCR, 0x08);
	CHECK(h.level);
	out(s, MCR, 0x18); /* loopback cuts the line too */
	CHECK(!h.level);
	out(s, MCR, 0x08);
	CHECK(h.level);
	in(s, RBR);
	CHECK(!h.level);
	CHECK_EQ(h.raises, 2);
	CHECK_EQ(h.lowers, 2);
	/* RX from the host raises it again: one rising edge per burst */
	CHECK_EQ(push(s, "bc"), 1); /* FIFOs off: one byte */
	CHECK(h.level);
	CHECK_EQ(h.raises, 3);
	/* reset lowers the line */
	dev_reset(serial8250_dev(s));
	CHECK(!h.level);
	CHECK_EQ(in(s, LSR), 0x60);
	CHECK_EQ(in(s, IER), 0);
	dev_destroy(serial8250_dev(s));

	/* without the gate */
	s = uart_new(&h, true);
	out(s, IER, 0x01);
	CHECK_EQ(push(s, "a"), 1);
	CHECK(h.level);
	in(s, RBR);
	CHECK(!h.level);
	dev_destroy(serial8250_dev(s));
}

TEST(dev_serial_loopback)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	out(s, FCR, 0x01);
	CHECK_EQ(in(s, MSR), 0xb0);
	out(s, MCR, 0x10 | 0x0a);	   /* what autoconfig writes */
	CHECK_EQ(in(s, MSR) & 0xf0, 0x90); /* RTS->CTS, OUT2->DCD */
	out(s, MCR, 0x10 | 0x05);	   /* DTR, OUT1 */
	uint8_t msr = in(s, MSR);
	CHECK_EQ(msr & 0xf0, 0x60); /* DSR, RI */
	CHECK_EQ(msr & 0x0f, 0x0b); /* DCTS, DDSR, DDCD */
	out(s, MCR, 0x10);	    /* RI falls: trailing edge */
	CHECK_EQ(in(s, MSR), 0x06); /* DDSR, TERI */
	/* host input is refused, THR loops back */
	CHECK_EQ(push(s, "x"), 0);
	out(s, THR, 'q');
	CHECK_EQ(in(s, LSR) & 0x01, 1);
	CHECK_EQ(in(s, RBR), 'q');
	CHECK_EQ(h.ntx, 0);
	/* leaving loopback: the cable's lines again, with deltas */
	out(s, MCR, 0x00);
	CHECK_EQ(in(s, MSR), 0xb0 | 0x0b); /* CTS, DSR, DCD back on: DCTS, DDSR, DDCD */
	dev_destroy(serial8250_dev(s));
}

/* ---- Linux's 8250 autoconfig, step by step (drivers/tty/serial/8250) ---- */

enum uart_type {
	T_NONE,
	T_8250_OR_16450,
	T_UNKNOWN,
	T_16550,
	T_16550A,
	T_16650,
	T_16650V2,
	T_NS16550A,
	T_16750,
	T_XSCALE,
	T_U6_16550A,
};

static int size_fifo(struct serial8250 *s)
{
	uint8_t old_lcr = in(s, LCR);
	out(s, LCR, 0);
	uint8_t old_fcr = in(s, FCR); /* reads IIR, as Linux does */
	uint8_t old_mcr = in(s, MCR);
	out(s, FCR, 0x07);
	out(s, MCR, 0x10);
	out(s, LCR, 0x80);
	uint8_t old_dll = in(s, DLL), old_dlm = in(s, DLM);
	out(s, DLL, 1);
	out(s, DLM, 0);
	out(s, LCR, 0x03);
	for (int i = 0; i < 256; i++)
		out(s, THR, (uint8_t)i);
	int count;
	for (count = 0; (in(s, LSR) & 0x01) && count < 256; count++)
		in(s, RBR);
	out(s, FCR, old_fcr);
	out(s, MCR, old_mcr);
	out(s, LCR, 0x80);
	out(s, DLL, old_dll);
	out(s, DLM, old_dlm);
	out(s, LCR, old_lcr);
	return count;
}

static enum uart_type autoconfig_16550a(struct serial8250 *s, int *fifo)
{
	/* EFR with DLAB (ST16C650V1) */
	out(s, LCR, 0x80);
	if (in(s, 2) == 0)
		return T_16650;
	/* EFR with LCR 0xbf (ST16C650V2, TI16C752) */
	out(s, LCR, 0xbf);
	if (in(s, 2) == 0)
		return T_16650V2;
	/* National Semiconductor SuperIO bank 2 */
	out(s, LCR, 0);
	uint8_t st1 = in(s, MCR);
	out(s, LCR, 0xe0);
	uint8_t st2 = in(s, 2);
	if (!((st2 ^ st1) & 0x10)) {
		out(s, LCR, 0);
		out(s, MCR, st1 ^ 0x10);
		out(s, LCR, 0xe0);
		st2 = in(s, 2);
		out(s, LCR, 0);
		out(s, MCR, st1);
		if ((st2 ^ st1) & 0x10)
			return T_NS16550A;
	}
	/* TI16750 64-byte FIFO bit */
	out(s, LCR, 0);
	out(s, FCR, 0x21);
	st1 = in(s, IIR) >> 5;
	out(s, FCR, 0x01);
	out(s, LCR, 0x80);
	out(s, FCR, 0x21);
	st2 = in(s, IIR) >> 5;
	out(s, FCR, 0x01);
	out(s, LCR, 0);
	if (st1 == 6 && st2 == 7)
		return T_16750;
	/* XScale UUE bit */
	uint8_t iersave = in(s, IER);
	out(s, IER, iersave & (uint8_t)~0x40);
	if (!(in(s, IER) & 0x40)) {
		out(s, IER, iersave | 0x40);
		if (in(s, IER) & 0x40)
			return T_XSCALE;
	}
	out(s, IER, iersave);
	*fifo = size_fifo(s);
	return *fifo == 64 ? T_U6_16550A : T_16550A;
}

static enum uart_type linux_autoconfig(struct serial8250 *s, int *fifo)
{
	/* IER existence test */
	uint8_t scratch = in(s, IER);
	out(s, IER, 0);
	uint8_t scratch2 = in(s, IER) & 0x0f;
	out(s, IER, 0x0f);
	uint8_t scratch3 = in(s, IER) & 0x0f;
	out(s, IER, scratch);
	if (scratch2 != 0 || scratch3 != 0x0f)
		return T_NONE;
	uint8_t save_mcr = in(s, MCR), save_lcr = in(s, LCR);
	/* loopback test (COM1-4 skip it; a PCI or platform port does not) */
	out(s, MCR, 0x10 | 0x0a);
	uint8_t status1 = in(s, MSR) & 0xf0;
	out(s, MCR, save_mcr);
	if (status1 != 0x90)
		return T_NONE;
	out(s, LCR, 0xbf);
	out(s, 2, 0); /* EFR */
	out(s, LCR, 0);
	out(s, FCR, 0x01);
	enum uart_type t;
	switch (in(s, IIR) >> 6) {
	case 0:
		t = T_8250_OR_16450;
		break;
	case 1:
		t = T_UNKNOWN;
		break;
	case 2:
		t = T_16550;
		break;
	default:
		t = autoconfig_16550a(s, fifo);
		break;
	}
	out(s, LCR, save_lcr);
	/* reset the UART */
	out(s, MCR, save_mcr);
	out(s, FCR, 0x01);
	out(s, FCR, 0x07);
	out(s, FCR, 0x00);
	in(s, RBR);
	out(s, IER, 0);
	return t;
}

TEST(dev_serial_linux_autoconfig_16550a)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	int fifo = -1;
	CHECK_EQ(linux_autoconfig(s, &fifo), T_16550A);
	CHECK_EQ(fifo, 16);
	CHECK_EQ(h.ntx, 0); /* the probe's loopback bytes never reach the host */
	CHECK(!h.level);

	/* serial8250_do_startup: clear FIFOs and interrupt registers */
	out(s, FCR, 0x01);
	out(s, FCR, 0x07);
	out(s, FCR, 0x00);
	in(s, LSR);
	in(s, RBR);
	in(s, IIR);
	in(s, MSR);
	CHECK(in(s, LSR) != 0xff); /* the "LSR safety check" */
	/* THRE re-assertion test: no UART_BUG_THRE */
	REQUIRE(in(s, LSR) & 0x20);
	out(s, IER, 0x02);
	uint8_t iir1 = in(s, IIR);
	out(s, IER, 0);
	out(s, IER, 0x02);
	uint8_t iir = in(s, IIR);
	out(s, IER, 0);
	CHECK(!(iir1 & 0x01));
	CHECK(!(iir & 0x01));
	/* set_mctrl with OUT2, then the TX-enable test: no UART_BUG_TXEN */
	out(s, LCR, 0x03);
	out(s, MCR, 0x0b);
	out(s, IER, 0x02);
	uint8_t lsr = in(s, LSR);
	iir = in(s, IIR);
	out(s, IER, 0);
	CHECK(!((lsr & 0x40) && (iir & 0x01)));
	/* set_termios: 115200 8N1, FIFO trigger 8, RX interrupts */
	out(s, IER, 0x05);
	out(s, LCR, 0x83);
	out(s, DLL, 1);
	out(s, DLM, 0);
	out(s, LCR, 0x03);
	out(s, FCR, 0x01);
	out(s, FCR, 0x81);
	CHECK_EQ(in(s, IIR), 0xc1);
	/* a typed line arrives and raises the line, the handler drains it */
	int raises = h.raises;
	CHECK_EQ(push(s, "ls\r"), 3);
	CHECK(h.level);
	CHECK_EQ(h.raises, raises + 1);
	char got[4] = {0};
	int n = 0;
	while (!(in(s, IIR) & 0x01)) {
		uint8_t st = in(s, LSR);
		while (st & 0x01) {
			got[n++] = (char)in(s, RBR);
			st = in(s, LSR);
		}
	}
	CHECK_STR(got, "ls\r");
	CHECK(!h.level);
	dev_destroy(serial8250_dev(s));
}

/* The transmit path of serial8250_start_tx / tx_chars under interrupts. */
TEST(dev_serial_interrupt_driven_tx)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	out(s, MCR, 0x0b);
	out(s, FCR, 0x81);
	out(s, IER, 0x05);
	const char *msg = "a message longer than one sixteen-byte FIFO load\n";
	size_t pos = 0, len = strlen(msg);
	out(s, IER, 0x07); /* start_tx: THRI on */
	int irqs = 0;
	while (h.level && irqs < 100) {
		irqs++;
		uint8_t iir;
		while (!((iir = in(s, IIR)) & 0x01)) {
			uint8_t lsr = in(s, LSR);
			if (lsr & 0x20) {
				for (int k = 0; k < 16 && pos < len; k++)
					out(s, THR, (uint8_t)msg[pos++]);
				if (pos == len)
					out(s, IER, 0x05); /* __stop_tx */
			}
		}
	}
	CHECK_EQ(pos, len);
	CHECK_EQ(h.ntx, len);
	CHECK(memcmp(h.tx, msg, len) == 0);
	CHECK(!h.level);
	CHECK(irqs >= 1 && irqs < 10);
	dev_destroy(serial8250_dev(s));
}

TEST(dev_serial_bad_input_never_crashes)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	struct dev *d = serial8250_dev(s);
	srand(8250);
	for (int i = 0; i < 200000; i++) {
		unsigned reg = (unsigned)rand() % 8;
		uint8_t v = (uint8_t)rand();
		if (rand() % 2) {
			out(s, reg, v);
		} else {
			uint8_t r = in(s, reg);
			if (reg == LSR)
				CHECK_EQ(r & 0x60, 0x60);
			if (reg == IIR) {
				uint8_t id = r & 0x0f;
				CHECK(id == 0x01 || id == 0x00 || id == 0x02 || id == 0x04 ||
				      id == 0x06 || id == 0x0c);
			}
		}
		if (i % 97 == 0)
			serial8250_rx_push(s, (const uint8_t *)"0123456789abcdefghij", 20);
		if (i % 50000 == 0)
			dev_reset(d);
	}
	/* offsets past the window (a badly registered window) are ignored */
	uint8_t v = 0x5a;
	d->ops->bus.access(d, 8, 0, 0, &v, 1, false);
	CHECK_EQ(v, 0x5a);
	d->ops->bus.access(d, UINT64_MAX, 0, 0, &v, 1, true);
	/* through a bus: other widths are rejected before the device */
	struct bus *b;
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &b));
	REQUIRE_OK(dev_register(b, 0x3f8, SERIAL8250_WINDOW, d));
	uint8_t w[4];
	CHECK_ERR(bus_access(b, 0x3f8, w, 2, false, 0), -EINVAL);
	CHECK_ERR(bus_access(b, 0x3fc, w, 4, true, 0), -EINVAL);
	CHECK_OK(bus_access(b, 0x3fd, w, 1, false, 0));
	CHECK_EQ(w[0] & 0x60, 0x60);
	bus_destroy(b);
	dev_destroy(d);
}

/* A console thread pushes host input while a "vCPU" thread drains it the
 * way Linux's handler does: nothing is lost or reordered. */
struct feeder {
	struct serial8250 *s;
	const uint8_t *data;
	size_t len;
};

static void *feed_thread(void *arg)
{
	struct feeder *f = arg;
	size_t pos = 0;
	while (pos < f->len) {
		size_t n = serial8250_rx_push(f->s, f->data + pos, f->len - pos);
		pos += n;
		if (!n)
			sched_yield(); /* a VMM would wait for rx_ready() */
	}
	return NULL;
}

TEST(dev_serial_concurrent_input)
{
	struct host h;
	struct serial8250 *s = uart_new(&h, false);
	out(s, FCR, 0x81);
	enum { LEN = 100000 };
	static uint8_t data[LEN], got[LEN];
	for (size_t i = 0; i < LEN; i++)
		data[i] = (uint8_t)(i * 7 + i / 256);
	struct feeder f = {s, data, LEN};
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, feed_thread, &f) == 0);
	size_t n = 0;
	while (n < LEN) {
		if (in(s, LSR) & 0x01)
			got[n++] = in(s, RBR);
	}
	pthread_join(t, NULL);
	CHECK(memcmp(got, data, LEN) == 0);
	CHECK_EQ(in(s, LSR) & 0x03, 0); /* no data left, no overrun */
	dev_destroy(serial8250_dev(s));
}
