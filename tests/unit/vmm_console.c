/* tests/unit/vmm_console.c - the console's output buffer (non-blocking, bounded) and the UART's transmitter-busy path. */
#include "../lib/test.h"
#include "../../devices/serial8250.h"
#include "../../vmm/console.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* A pipe whose capacity is one page, the smallest Linux allows. */
static void small_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		TEST_FAIL("pipe2: %s", strerror(errno));
	if (fcntl(p[1], F_SETPIPE_SZ, 4096) < 0)
		TEST_FAIL("F_SETPIPE_SZ: %s", strerror(errno));
}

static size_t drain(int fd, uint8_t *buf, size_t cap)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	size_t n = 0;
	ssize_t r;
	while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
		n += (size_t)r;
	fcntl(fd, F_SETFL, fl);
	return n;
}

TEST(console_out_bounded_nonblocking_and_lossless)
{
	int p[2];
	small_pipe(p);
	struct vmm_conout c;
	REQUIRE_OK(vmm_conout_init(&c, p[1], 8192));
	/* the caller's blocking fd was not made non-blocking: a new file
	 * description was opened for the library's writes */
	CHECK(!(fcntl(p[1], F_GETFL) & O_NONBLOCK));
	CHECK(c.own_fd);
	CHECK(c.pollable);
	CHECK(fcntl(c.fd, F_GETFL) & O_NONBLOCK);

	static uint8_t src[40000], got[40000];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + i / 251);
	size_t pushed = 0, read_back = 0;
	bool was_empty = false;
	/* fill: the buffer empty, the push writes what the pipe takes (4096)
	 * itself and rings the next 8192 */
	CHECK(c.direct);
	pushed += vmm_conout_push(&c, src, sizeof(src), &was_empty);
	CHECK(was_empty);
	CHECK_EQ(pushed, 4096 + 8192);
	CHECK_EQ(c.written, 4096);
	CHECK(vmm_conout_full(&c));
	CHECK_EQ(vmm_conout_push(&c, src + pushed, 1, &was_empty), 0);
	CHECK(!was_empty);
	CHECK_EQ(vmm_conout_flush(&c), 0); /* the pipe is full: flush returns, it does not wait */
	CHECK_EQ(vmm_conout_pending(&c), 8192);
	/* a reader makes room: while the ring holds bytes a push goes behind
	 * them, not to the pipe */
	read_back += drain(p[0], got, sizeof(got));
	CHECK_EQ(read_back, 4096);
	CHECK_EQ(vmm_conout_flush(&c), 4096);
	read_back += drain(p[0], got + read_back, sizeof(got) - read_back);
	CHECK_EQ(read_back, 8192);
	CHECK_EQ(vmm_conout_push(&c, src + pushed, 50, &was_empty), 50);
	CHECK(!was_empty);
	pushed += 50;
	CHECK_EQ(vmm_conout_pending(&c), 4096 + 50);
	CHECK_EQ(drain(p[0], got + read_back, sizeof(got) - read_back), 0);
	/* a reader drains in steps; pushes wrap around the ring */
	while (read_back < sizeof(src)) {
		read_back += drain(p[0], got + read_back, sizeof(got) - read_back);
		if (vmm_conout_flush(&c) < 0)
			TEST_FAIL("flush failed");
		if (pushed < sizeof(src))
			pushed += vmm_conout_push(
			    &c, src + pushed,
			    3000 < sizeof(src) - pushed ? 3000 : sizeof(src) - pushed, NULL);
	}
	CHECK_EQ(read_back, sizeof(src));
	CHECK(memcmp(src, got, sizeof(src)) == 0); /* no byte lost, none reordered */
	CHECK_EQ(c.written, sizeof(src));
	CHECK_EQ(c.dropped, 0);
	vmm_conout_fini(&c);
	close(p[0]);
	close(p[1]);
}

TEST(console_out_reader_gone_drops_without_stalling)
{
	int p[2];
	small_pipe(p);
	signal(SIGPIPE, SIG_IGN);
	struct vmm_conout c;
	REQUIRE_OK(vmm_conout_init(&c, p[1], 1024));
	close(p[0]);
	/* the push's own write fails: the console is gone */
	CHECK_EQ(vmm_conout_push(&c, (const uint8_t *)"hello", 5, NULL), 5);
	CHECK(c.dead);
	CHECK_ERR(vmm_conout_flush(&c), -EPIPE);
	CHECK(!vmm_conout_full(&c));
	/* the console is gone: everything is taken (and dropped) */
	static uint8_t big[4096];
	CHECK_EQ(vmm_conout_push(&c, big, sizeof(big), NULL), sizeof(big));
	CHECK_EQ(vmm_conout_pending(&c), 0);
	CHECK_EQ(c.dropped, 5 + sizeof(big));
	vmm_conout_fini(&c);
	close(p[1]);

	/* no console at all */
	REQUIRE_OK(vmm_conout_init(&c, -1, 0));
	CHECK_EQ(c.cap, VMM_CONOUT_SIZE);
	CHECK_EQ(vmm_conout_push(&c, big, 10, NULL), 10);
	CHECK(!vmm_conout_full(&c));
	vmm_conout_fini(&c);
}

TEST(console_out_regular_file_and_socket)
{
	char path[] = "/tmp/ember-conout-XXXXXX";
	int f = mkstemp(path);
	REQUIRE(f >= 0);
	unlink(path);
	struct vmm_conout c;
	REQUIRE_OK(vmm_conout_init(&c, f, 0));
	CHECK(!c.pollable);
	CHECK(!c.own_fd);
	bool was_empty = true;
	CHECK_EQ(vmm_conout_push(&c, (const uint8_t *)"file\n", 5, &was_empty), 5);
	CHECK(!was_empty); /* written by the push itself: nothing for the I/O thread */
	CHECK_EQ(lseek(f, 0, SEEK_CUR), 5);
	CHECK_EQ(vmm_conout_flush(&c), 0);
	vmm_conout_fini(&c);
	close(f);

	int sv[2];
	REQUIRE_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	REQUIRE_OK(vmm_conout_init(&c, sv[0], 0));
	CHECK(c.is_socket);
	CHECK(!c.direct); /* a vCPU thread may not send(): the I/O thread does */
	CHECK(!(fcntl(sv[0], F_GETFL) & O_NONBLOCK));
	/* more than the socket buffer: the flush returns instead of blocking */
	static uint8_t big[VMM_CONOUT_SIZE];
	CHECK_EQ(vmm_conout_push(&c, big, sizeof(big), NULL), sizeof(big));
	long total = 0, w;
	for (int i = 0; i < 50 && (w = vmm_conout_flush(&c)) > 0; i++)
		total += w;
	CHECK(total > 0);
	vmm_conout_fini(&c);
	close(sv[0]);
	close(sv[1]);
}

TEST(console_in_escape)
{
	struct vmm_conin ci = {0};
	CHECK(!vmm_conin_feed(&ci, true, (const uint8_t *)"ab\001\001c", 5));
	CHECK_EQ(ci.len, 4);
	CHECK(memcmp(ci.buf, "ab\001c", 4) == 0);
	CHECK(!vmm_conin_feed(&ci, true, (const uint8_t *)"\001", 1)); /* split escape */
	CHECK(vmm_conin_feed(&ci, true, (const uint8_t *)"x", 1));
	CHECK_EQ(ci.len, 4);
	vmm_conin_consume(&ci, 3);
	CHECK_EQ(ci.len, 1);
	CHECK_EQ(ci.buf[0], 'c');
	/* escape off: Ctrl-A is data */
	CHECK(!vmm_conin_feed(&ci, false, (const uint8_t *)"\001x", 2));
	CHECK_EQ(ci.len, 3);
}

/* ---- the UART when the host is busy */

struct slow_host {
	size_t room; /* bytes the host takes before it is full */
	uint8_t tx[4096];
	size_t ntx;
	bool level;
	int raises;
};

static void slow_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct slow_host *h = opaque;
	if (len > h->room)
		TEST_FAIL("tx of %zu bytes with room for %zu", len, h->room);
	for (size_t i = 0; i < len; i++)
		h->tx[h->ntx++] = buf[i];
	h->room -= len;
}

static bool slow_full(void *opaque)
{
	return ((struct slow_host *)opaque)->room == 0;
}

static void slow_irq(void *opaque, bool level)
{
	struct slow_host *h = opaque;
	h->level = level;
	if (level)
		h->raises++;
}

static uint8_t uin(struct serial8250 *s, unsigned reg)
{
	struct dev *d = serial8250_dev(s);
	uint8_t v = 0xee;
	d->ops->bus.access(d, reg, 0x3f8 + reg, 0, &v, 1, false);
	return v;
}

static void uout(struct serial8250 *s, unsigned reg, uint8_t v)
{
	struct dev *d = serial8250_dev(s);
	d->ops->bus.access(d, reg, 0x3f8 + reg, 0, &v, 1, true);
}

static struct serial8250 *slow_uart(struct slow_host *h)
{
	struct serial8250_config cfg = {
	    .tx = slow_tx, .tx_full = slow_full, .set_irq = slow_irq, .opaque = h};
	struct serial8250 *s = NULL;
	if (serial8250_create(&cfg, &s) < 0)
		TEST_FAIL("serial8250_create");
	return s;
}

TEST(uart_tx_busy_clears_thre_and_holds_bytes)
{
	struct slow_host h = {.room = 2};
	struct serial8250 *s = slow_uart(&h);
	uout(s, 2, 0x01); /* FIFOs on */
	CHECK_EQ(uin(s, 5) & 0x60, 0x60);
	uout(s, 0, 'a');
	uout(s, 0, 'b');
	CHECK_EQ(h.ntx, 2);
	CHECK_EQ(uin(s, 5) & 0x60, 0x60); /* sent: still empty */
	uout(s, 0, 'c');		  /* the host is full now */
	CHECK_EQ(h.ntx, 2);
	CHECK_EQ(uin(s, 5) & 0x60, 0x00); /* THRE and TEMT clear: busy */
	for (int i = 0; i < 15; i++)	  /* the rest of a 16-byte FIFO load */
		uout(s, 0, (uint8_t)('d' + i));
	CHECK_EQ(serial8250_tx_dropped(s), 0);
	uout(s, 0, '!'); /* a 17th byte while THRE is 0: lost, as on hardware */
	CHECK_EQ(serial8250_tx_dropped(s), 1);
	/* room for 10: ten go out, still busy */
	h.room = 10;
	serial8250_tx_ready(s);
	CHECK_EQ(h.ntx, 12);
	CHECK_EQ(uin(s, 5) & 0x60, 0x00);
	h.room = 100;
	serial8250_tx_ready(s);
	CHECK_EQ(h.ntx, 18);
	CHECK_EQ(uin(s, 5) & 0x60, 0x60);
	CHECK(memcmp(h.tx, "abcdefghijklmnopqr", 18) == 0); /* in order */
	dev_destroy(serial8250_dev(s));
}

/* Linux's interrupt-driven transmit (serial8250_tx_chars: 16 bytes per
 * THRE interrupt, stop when LSR.THRE is 0) against a host that takes a few
 * bytes at a time: nothing is lost, the THRE interrupt comes back after
 * each tx_ready that empties the FIFO. */
TEST(uart_tx_busy_interrupt_driven_driver_loses_nothing)
{
	struct slow_host h = {.room = 5};
	struct serial8250 *s = slow_uart(&h);
	uout(s, 4, 0x0b); /* OUT2: the interrupt is not gated */
	uout(s, 2, 0x81);
	static char msg[1000];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('A' + i % 53);
	size_t pos = 0;
	uout(s, 1, 0x07); /* THRI on */
	for (int round = 0; round < 2000 && h.ntx < sizeof(msg); round++) {
		while (h.level) {
			uint8_t iir = uin(s, 2);
			if (iir & 0x01)
				break;
			if ((iir & 0x0e) == 0x02 || (uin(s, 5) & 0x20)) {
				for (int k = 0; k < 16 && pos < sizeof(msg); k++)
					uout(s, 0, (uint8_t)msg[pos++]);
				if (pos == sizeof(msg))
					uout(s, 1, 0x05); /* stop_tx */
			}
		}
		h.room += 7; /* the host's reader drains a little */
		serial8250_tx_ready(s);
	}
	CHECK_EQ(pos, sizeof(msg));
	CHECK_EQ(h.ntx, sizeof(msg));
	CHECK(memcmp(h.tx, msg, sizeof(msg)) == 0);
	CHECK_EQ(serial8250_tx_dropped(s), 0);
	CHECK(h.raises > 10); /* each emptied FIFO raised THRE again */
	dev_destroy(serial8250_dev(s));
}

TEST(uart_tx_busy_fifo_clear_and_reset_discard)
{
	struct slow_host h = {.room = 0};
	struct serial8250 *s = slow_uart(&h);
	uout(s, 2, 0x01);
	uout(s, 0, 'x');
	CHECK_EQ(uin(s, 5) & 0x60, 0x00);
	uout(s, 2, 0x05); /* FCR: clear the TX FIFO */
	CHECK_EQ(uin(s, 5) & 0x60, 0x60);
	h.room = 10;
	serial8250_tx_ready(s);
	CHECK_EQ(h.ntx, 0);
	/* without FIFOs the THR alone holds one byte */
	h.room = 0;
	uout(s, 2, 0x00);
	uout(s, 0, '1');
	uout(s, 0, '2');
	CHECK_EQ(serial8250_tx_dropped(s), 1);
	h.room = 10;
	serial8250_tx_ready(s);
	CHECK_EQ(h.ntx, 1);
	CHECK_EQ(h.tx[0], '1');
	dev_destroy(serial8250_dev(s));
}
