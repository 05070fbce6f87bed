/* tests/unit/dev_rtc_cmos.c - the MC146818 RTC on a fixed clock: formats, UIP, setting, flags. */
#include "../lib/test.h"
#include "../../devices/rtc_cmos.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define NS 1000000000LL
/* 2024-02-29 13:45:07 UTC, a Thursday */
#define T0 1709214307LL

struct host {
	int64_t now; /* ns since the epoch */
	bool level;
	int raises;
	int retimes; /* timer_changed() calls */
	bool real;   /* the RTC reads the host's clock: mdelay() really waits */
};

static int64_t host_now(void *opaque)
{
	return ((struct host *)opaque)->now;
}

static void host_irq(void *opaque, bool level)
{
	struct host *h = opaque;
	h->level = level;
	h->raises += level;
}

static void host_retime(void *opaque)
{
	((struct host *)opaque)->retimes++;
}

static struct rtc_cmos *rtc_new(struct host *h, int64_t now)
{
	memset(h, 0, sizeof(*h));
	h->now = now;
	struct rtc_cmos_config cfg = {
	    .now_ns = host_now, .set_irq = host_irq, .timer_changed = host_retime, .opaque = h};
	struct rtc_cmos *rtc = NULL;
	int r = rtc_cmos_create(&cfg, &rtc);
	if (r < 0 || !rtc)
		TEST_FAIL("rtc_cmos_create: %d", r);
	return rtc;
}

static void port(struct rtc_cmos *rtc, unsigned off, uint8_t *v, bool is_write)
{
	struct dev *d = rtc_cmos_dev(rtc);
	d->ops->bus.access(d, off, 0x70 + off, 0, v, 1, is_write);
}

static uint8_t rd(struct rtc_cmos *rtc, uint8_t reg)
{
	uint8_t v = reg;
	port(rtc, 0, &v, true);
	v = 0xee;
	port(rtc, 1, &v, false);
	return v;
}

static void wr(struct rtc_cmos *rtc, uint8_t reg, uint8_t val)
{
	port(rtc, 0, &reg, true);
	port(rtc, 1, &val, true);
}

struct rtc_time {
	int sec, min, hour, mday, mon, year, wday;
};

static void read_all(struct rtc_cmos *rtc, struct rtc_time *t)
{
	t->sec = rd(rtc, 0x00);
	t->min = rd(rtc, 0x02);
	t->hour = rd(rtc, 0x04);
	t->wday = rd(rtc, 0x06);
	t->mday = rd(rtc, 0x07);
	t->mon = rd(rtc, 0x08);
	t->year = rd(rtc, 0x09);
}

TEST(dev_rtc_reads_fixed_time_bcd)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS + NS / 2);
	CHECK_STR(dev_name(rtc_cmos_dev(rtc)), "rtc_cmos");
	CHECK_EQ(rd(rtc, 0x0b), 0x02); /* 24 h, BCD */
	CHECK_EQ(rd(rtc, 0x0a), 0x26);
	CHECK_EQ(rd(rtc, 0x0d), 0x80); /* VRT */
	struct rtc_time t;
	read_all(rtc, &t);
	CHECK_EQ(t.sec, 0x07);
	CHECK_EQ(t.min, 0x45);
	CHECK_EQ(t.hour, 0x13);
	CHECK_EQ(t.wday, 5); /* Thursday; Sunday = 1 */
	CHECK_EQ(t.mday, 0x29);
	CHECK_EQ(t.mon, 0x02);
	CHECK_EQ(t.year, 0x24);
	CHECK_EQ(rd(rtc, 0x32), 0x20);
	/* it follows the host clock */
	h.now += 60 * NS;
	CHECK_EQ(rd(rtc, 0x02), 0x46);
	h.now = 4102444799LL * NS; /* 2099-12-31 23:59:59 */
	read_all(rtc, &t);
	CHECK_EQ(t.sec, 0x59);
	CHECK_EQ(t.hour, 0x23);
	CHECK_EQ(t.mday, 0x31);
	CHECK_EQ(t.mon, 0x12);
	CHECK_EQ(t.year, 0x99);
	CHECK_EQ(rd(rtc, 0x32), 0x20);
	h.now += NS;
	CHECK_EQ(rd(rtc, 0x09), 0x00);
	CHECK_EQ(rd(rtc, 0x32), 0x21);
	CHECK_EQ(rd(rtc, 0x08), 0x01);
	dev_destroy(rtc_cmos_dev(rtc));
}

TEST(dev_rtc_binary_and_12_hour)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS);
	wr(rtc, 0x0b, 0x06); /* binary, 24 h */
	struct rtc_time t;
	read_all(rtc, &t);
	CHECK_EQ(t.sec, 7);
	CHECK_EQ(t.min, 45);
	CHECK_EQ(t.hour, 13);
	CHECK_EQ(t.mday, 29);
	CHECK_EQ(t.mon, 2);
	CHECK_EQ(t.year, 24);
	CHECK_EQ(rd(rtc, 0x32), 20);
	wr(rtc, 0x0b, 0x04);		   /* binary, 12 h */
	CHECK_EQ(rd(rtc, 0x04), 0x80 | 1); /* 1 PM */
	wr(rtc, 0x0b, 0x00);		   /* BCD, 12 h */
	CHECK_EQ(rd(rtc, 0x04), 0x81);
	h.now = (T0 - 13 * 3600 - 45 * 60 - 7) * NS; /* midnight */
	CHECK_EQ(rd(rtc, 0x04), 0x12);		     /* 12 AM */
	h.now += 12 * 3600 * NS;		     /* noon */
	CHECK_EQ(rd(rtc, 0x04), 0x92);		     /* 12 PM */
	h.now += 11 * 3600 * NS;		     /* 23:00 */
	CHECK_EQ(rd(rtc, 0x04), 0x91);
	/* writing an hour in 12 h mode: 11 PM -> 23 */
	wr(rtc, 0x0b, 0x80);
	wr(rtc, 0x04, 0x91);
	wr(rtc, 0x0b, 0x02);
	CHECK_EQ(rd(rtc, 0x04), 0x23);
	dev_destroy(rtc_cmos_dev(rtc));
}

TEST(dev_rtc_uip_window)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS + 500000000);
	CHECK_EQ(rd(rtc, 0x0a) & 0x80, 0);
	h.now = (T0 + 1) * NS - 100000; /* 100 us before the update */
	CHECK_EQ(rd(rtc, 0x0a), 0x80 | 0x26);
	CHECK_EQ(rd(rtc, 0x00), 0x07);	/* the old second until the update */
	h.now = (T0 + 1) * NS - 300000; /* 300 us before: not yet */
	CHECK_EQ(rd(rtc, 0x0a) & 0x80, 0);
	h.now = (T0 + 1) * NS;
	CHECK_EQ(rd(rtc, 0x0a) & 0x80, 0);
	CHECK_EQ(rd(rtc, 0x00), 0x08);
	/* never while the clock is stopped for setting */
	h.now = (T0 + 2) * NS - 100000;
	wr(rtc, 0x0b, 0x82);
	CHECK_EQ(rd(rtc, 0x0a) & 0x80, 0);
	/* UIP is read-only */
	wr(rtc, 0x0b, 0x02);
	h.now = T0 * NS;
	wr(rtc, 0x0a, 0xa6);
	CHECK_EQ(rd(rtc, 0x0a), 0x26);
	dev_destroy(rtc_cmos_dev(rtc));
}

/* Linux's mc146818_avoid_UIP + mc146818_get_time on x86 (RTC_ALWAYS_BCD). */
static int linux_get_time(struct rtc_cmos *rtc, struct host *h, struct tm *out)
{
	for (int i = 0; i < 10; i++) {
		uint8_t seconds = rd(rtc, 0x00);
		if (rd(rtc, 0x0a) & 0x80) {
			h->now += 1000000; /* mdelay(1) */
			if (h->real)
				nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
			continue;
		}
		if (seconds != rd(rtc, 0x00))
			continue;
		struct rtc_time t;
		read_all(rtc, &t);
		uint8_t century = rd(rtc, 0x32); /* FADT.century = 0x32 */
		if (rd(rtc, 0x0a) & 0x80) {
			h->now += 1000000;
			if (h->real)
				nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
			continue;
		}
		if (seconds != rd(rtc, 0x00))
			continue;
#define BCD(x) (((x) >> 4) * 10 + ((x)&0x0f))
		out->tm_sec = BCD(t.sec);
		out->tm_min = BCD(t.min);
		out->tm_hour = BCD(t.hour);
		out->tm_mday = BCD(t.mday);
		out->tm_mon = BCD(t.mon) - 1;
		out->tm_year = BCD(t.year) + (BCD(century) - 19) * 100;
#undef BCD
		return 0;
	}
	return -EIO;
}

TEST(dev_rtc_linux_reads_host_time)
{
	struct host h;
	/* land in the UIP window on purpose: Linux waits it out */
	struct rtc_cmos *rtc = rtc_new(&h, (T0 + 1) * NS - 200000);
	struct tm tm;
	REQUIRE_OK(linux_get_time(rtc, &h, &tm));
	CHECK_EQ(timegm(&tm), T0 + 1);
	/* a spread of instants, including leap days and centuries */
	static const int64_t when[] = {0,	   951782400 /* 2000-02-29 */,
				       1709214307, 1940889600,
				       4102444799, 4107542400 /* 2100-03-01 */};
	for (size_t i = 0; i < sizeof(when) / sizeof(when[0]); i++) {
		h.now = when[i] * NS + 123456789;
		REQUIRE_OK(linux_get_time(rtc, &h, &tm));
		CHECK_EQ(timegm(&tm), when[i]);
	}
	dev_destroy(rtc_cmos_dev(rtc));
}

/* Linux's mc146818_set_time: SET, divider reset, fields, release. */
static void linux_set_time(struct rtc_cmos *rtc, int year, int mon, int mday, int hour, int min,
			   int sec)
{
#define BIN2BCD(x) ((uint8_t)((((x) / 10) << 4) | ((x) % 10)))
	uint8_t control = rd(rtc, 0x0b);
	wr(rtc, 0x0b, control | 0x80);
	uint8_t freq = rd(rtc, 0x0a);
	wr(rtc, 0x0a, freq | 0x70);
	wr(rtc, 0x09, BIN2BCD(year % 100));
	wr(rtc, 0x08, BIN2BCD(mon));
	wr(rtc, 0x07, BIN2BCD(mday));
	wr(rtc, 0x04, BIN2BCD(hour));
	wr(rtc, 0x02, BIN2BCD(min));
	wr(rtc, 0x00, BIN2BCD(sec));
	wr(rtc, 0x32, BIN2BCD(year / 100));
	wr(rtc, 0x0b, control);
	wr(rtc, 0x0a, freq);
#undef BIN2BCD
}

TEST(dev_rtc_guest_sets_time)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS + 300000000);
	/* 2031-07-04 00:00:00 */
	linux_set_time(rtc, 2031, 7, 4, 0, 0, 0);
	struct tm tm;
	REQUIRE_OK(linux_get_time(rtc, &h, &tm));
	CHECK_EQ(timegm(&tm), 1940889600);
	CHECK_EQ(rd(rtc, 0x06), 6); /* a Friday */
	/* it runs on from there with the host clock */
	h.now += 3 * NS;
	REQUIRE_OK(linux_get_time(rtc, &h, &tm));
	CHECK_EQ(timegm(&tm), 1940889603);
	/* stopped while SET is held */
	wr(rtc, 0x0b, 0x82);
	h.now += 10 * NS;
	CHECK_EQ(rd(rtc, 0x00), 0x03);
	wr(rtc, 0x0b, 0x02);
	CHECK_EQ(rd(rtc, 0x00), 0x03);
	h.now += NS;
	CHECK_EQ(rd(rtc, 0x00), 0x04);
	/* a single field written while running */
	wr(rtc, 0x02, 0x30);
	CHECK_EQ(rd(rtc, 0x02), 0x30);
	CHECK_EQ(rd(rtc, 0x00), 0x04);
	/* garbage in a field is clamped, not trusted */
	wr(rtc, 0x08, 0x99);
	CHECK_EQ(rd(rtc, 0x08), 0x12);
	wr(rtc, 0x04, 0xff);
	CHECK_EQ(rd(rtc, 0x04), 0x23);
	/* day of week is derived, writes ignored */
	uint8_t wday = rd(rtc, 0x06);
	wr(rtc, 0x06, 0x07);
	CHECK_EQ(rd(rtc, 0x06), wday);
	/* a machine reset keeps the clock (battery-backed) */
	uint8_t min = rd(rtc, 0x02);
	dev_reset(rtc_cmos_dev(rtc));
	CHECK_EQ(rd(rtc, 0x02), min);
	CHECK_EQ(rd(rtc, 0x09), 0x31);
	dev_destroy(rtc_cmos_dev(rtc));
}

TEST(dev_rtc_update_interrupt)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS + 100000000);
	CHECK_EQ(rtc_cmos_poll(rtc), -1); /* nothing enabled */
	wr(rtc, 0x0b, 0x12);		  /* UIE */
	int64_t next = rtc_cmos_poll(rtc);
	CHECK_EQ(next, 900000000); /* the next second */
	CHECK(!h.level);
	h.now += next;
	rtc_cmos_poll(rtc);
	CHECK(h.level);
	/* IRQF | UF, and PF: the 1024 Hz flag latches without PIE */
	CHECK_EQ(rd(rtc, 0x0c), 0xd0);
	CHECK(!h.level);
	CHECK_EQ(rd(rtc, 0x0c), 0x00);
	/* flags latch without the enable; enabling raises at once */
	wr(rtc, 0x0b, 0x02);
	h.now += NS;
	rtc_cmos_poll(rtc);
	CHECK(!h.level);
	wr(rtc, 0x0b, 0x12);
	CHECK(h.level);
	CHECK_EQ(rd(rtc, 0x0c), 0xd0);
	/* SET clears UIE */
	wr(rtc, 0x0b, 0x92);
	CHECK_EQ(rd(rtc, 0x0b), 0x82);
	dev_destroy(rtc_cmos_dev(rtc));
}

TEST(dev_rtc_periodic_and_alarm_interrupts)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS + 100000000);
	/* 1024 Hz (rate 6) */
	wr(rtc, 0x0b, 0x42);
	int64_t next = rtc_cmos_poll(rtc);
	CHECK(next > 0 && next <= 976563);
	CHECK(!h.level);
	h.now += next;
	rtc_cmos_poll(rtc);
	CHECK(h.level);
	CHECK_EQ(rd(rtc, 0x0c), 0xc0); /* IRQF | PF */
	CHECK(!h.level);
	/* rate 0: no periodic flag */
	wr(rtc, 0x0a, 0x20);
	h.now += NS / 10;
	CHECK_EQ(rd(rtc, 0x0c) & 0x40, 0);
	/* alarm at 13:45:09, nothing else */
	wr(rtc, 0x0b, 0x22);
	wr(rtc, 0x01, 0x09);
	wr(rtc, 0x03, 0x45);
	wr(rtc, 0x05, 0x13);
	h.now = T0 * NS + 500000000; /* 13:45:07.5 */
	rd(rtc, 0x0c);
	h.now += NS; /* :08 */
	rtc_cmos_poll(rtc);
	CHECK(!h.level);
	h.now += NS; /* :09 */
	rtc_cmos_poll(rtc);
	CHECK(h.level);
	CHECK_EQ(rd(rtc, 0x0c), 0xb0); /* IRQF | AF | UF */
	/* "don't care" hours and minutes: matches every minute at :09 */
	wr(rtc, 0x03, 0xc0);
	wr(rtc, 0x05, 0xff);
	h.now += 59 * NS; /* 13:46:08 */
	rtc_cmos_poll(rtc);
	CHECK_EQ(rd(rtc, 0x0c) & 0x20, 0);
	h.now += NS; /* 13:46:09 */
	CHECK_EQ(rd(rtc, 0x0c) & 0x20, 0x20);
	/* a reset clears the enables and the flags */
	h.now += 60 * NS;
	rtc_cmos_poll(rtc);
	CHECK(h.level);
	dev_reset(rtc_cmos_dev(rtc));
	CHECK(!h.level);
	CHECK_EQ(rd(rtc, 0x0b), 0x02);
	CHECK_EQ(rd(rtc, 0x0c), 0x00);
	dev_destroy(rtc_cmos_dev(rtc));
}

TEST(dev_rtc_cmos_memory_and_nmi)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS);
	wr(rtc, 0x40, 0xab);
	CHECK_EQ(rd(rtc, 0x40), 0xab);
	CHECK_EQ(rd(rtc, 0x41), 0x00);
	CHECK_EQ(rtc_cmos_get_ram(rtc, 0x40), 0xab);
	CHECK_OK(rtc_cmos_set_ram(rtc, 0x34, 0x12));
	CHECK_EQ(rd(rtc, 0x34), 0x12);
	CHECK_ERR(rtc_cmos_set_ram(rtc, 0x0a, 0), -EINVAL);
	CHECK_ERR(rtc_cmos_set_ram(rtc, 0x32, 0), -EINVAL);
	CHECK_ERR(rtc_cmos_set_ram(rtc, 0x80, 0), -EINVAL);
	CHECK_ERR(rtc_cmos_get_ram(rtc, 0x05), -EINVAL);
	/* bit 7 of the index masks NMIs and does not select a register */
	CHECK(!rtc_cmos_nmi_masked(rtc));
	CHECK_EQ(rd(rtc, 0x80 | 0x40), 0xab);
	CHECK(rtc_cmos_nmi_masked(rtc));
	CHECK_EQ(rd(rtc, 0x40), 0xab);
	CHECK(!rtc_cmos_nmi_masked(rtc));
	/* the index port reads all-ones; C and D ignore writes */
	uint8_t v = 0;
	port(rtc, 0, &v, false);
	CHECK_EQ(v, 0);
	wr(rtc, 0x0d, 0x00);
	CHECK_EQ(rd(rtc, 0x0d), 0x80);
	/* memory survives a machine reset */
	dev_reset(rtc_cmos_dev(rtc));
	CHECK_EQ(rd(rtc, 0x40), 0xab);
	CHECK_ERR(rtc_cmos_create(NULL, &rtc), -EINVAL);
	dev_destroy(rtc_cmos_dev(rtc));
}

TEST(dev_rtc_default_clock_is_the_hosts)
{
	struct rtc_cmos_config cfg = {0};
	struct rtc_cmos *rtc;
	REQUIRE_OK(rtc_cmos_create(&cfg, &rtc));
	struct host h = {.real = true};
	struct tm tm;
	/* CLOCK_REALTIME itself: time() may read the coarse clock, a tick behind */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t before = ts.tv_sec;
	REQUIRE_OK(linux_get_time(rtc, &h, &tm));
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t after = ts.tv_sec;
	time_t got = timegm(&tm);
	CHECK(got >= before && got <= after);
	dev_destroy(rtc_cmos_dev(rtc));
}

TEST(dev_rtc_bad_input_never_crashes)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS);
	srand(146818);
	for (int i = 0; i < 200000; i++) {
		uint8_t v = (uint8_t)rand();
		port(rtc, (unsigned)rand() % 2, &v, rand() % 2);
		h.now += rand() % 1000000;
		if (i % 1000 == 0)
			h.now += (int64_t)(rand() % 100000) * NS;
		if (i % 5000 == 0)
			rtc_cmos_poll(rtc);
	}
	/* every time register keeps a sane value in any mode */
	wr(rtc, 0x0b, 0x06);
	wr(rtc, 0x0a, 0x26);
	CHECK(rd(rtc, 0x00) < 60);
	CHECK(rd(rtc, 0x02) < 60);
	CHECK(rd(rtc, 0x04) < 24);
	uint8_t mon = rd(rtc, 0x08);
	CHECK(mon >= 1 && mon <= 12);
	uint8_t v = 0;
	rtc_cmos_dev(rtc)->ops->bus.access(rtc_cmos_dev(rtc), 2, 0x72, 0, &v, 1, true);
	dev_destroy(rtc_cmos_dev(rtc));
}

/*
 * The board's timer (vmm/arch/x86/board.c's rtc_retime) on simulated time:
 * poll, sleep for what the poll returned, poll again; the "guest" reads C
 * after each rising edge of IRQ 8, as Linux's rtc_cmos handler does. Runs
 * for duration ns from now and returns how many interrupts came; *polls
 * gets how many times the timer fired.
 */
static int run_timer(struct rtc_cmos *rtc, struct host *h, int64_t duration, int *polls)
{
	int64_t end = h->now + duration;
	int irqs = 0;
	*polls = 0;
	if (h->level) /* raised by the write that enabled it: handled first */
		rd(rtc, 0x0c);
	int64_t next = rtc_cmos_poll(rtc);
	while (next >= 0 && h->now + next <= end && *polls < 100000) {
		h->now += next; /* the timer fires */
		(*polls)++;
		next = rtc_cmos_poll(rtc);
		if (h->level) {
			irqs++;
			int retimes = h->retimes;
			CHECK(rd(rtc, 0x0c) & 0x80); /* IRQF; reading clears it */
			CHECK(!h->level);
			/* and asks for a poll, as the board's timer_changed does */
			CHECK_EQ(h->retimes, retimes + 1);
			next = rtc_cmos_poll(rtc);
		}
	}
	h->now = end;
	return irqs;
}

TEST(dev_rtc_timer_gives_the_periodic_rate_of_register_a)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS + 123456789);
	int polls;
	/* no enable: the timer stops (poll says -1), no interrupt */
	CHECK_EQ(run_timer(rtc, &h, NS, &polls), 0);
	CHECK_EQ(polls, 0);
	/* PIE at the reset rate 6: 1024 Hz */
	wr(rtc, 0x0b, 0x42);
	int n = run_timer(rtc, &h, NS, &polls);
	TEST_LOG("1024 Hz: %d interrupts in 1 s, %d polls", n, polls);
	CHECK(n >= 1023 && n <= 1025);
	/* rate 15: 2 Hz, over 3 s */
	wr(rtc, 0x0a, 0x2f);
	n = run_timer(rtc, &h, 3 * NS, &polls);
	CHECK(n >= 5 && n <= 7);
	CHECK(polls <= 8); /* the timer sleeps a whole period, it does not spin */
	/* rate 3: 8192 Hz, over 10 ms */
	wr(rtc, 0x0a, 0x23);
	n = run_timer(rtc, &h, NS / 100, &polls);
	CHECK(n >= 81 && n <= 83);
	/* rate 0: no periodic interrupt although PIE stays set */
	wr(rtc, 0x0a, 0x20);
	CHECK_EQ(run_timer(rtc, &h, NS, &polls), 0);
	/* the divider held in reset stops it too */
	wr(rtc, 0x0a, 0x66);
	CHECK_EQ(run_timer(rtc, &h, NS, &polls), 0);
	dev_destroy(rtc_cmos_dev(rtc));
}

/* A guest that enables interrupts and never reads C: once the flags are
 * up, nothing more can happen, and the timer stops until C is read. */
TEST(dev_rtc_unacknowledged_interrupts_cost_no_timer)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS + 100000000);
	wr(rtc, 0x0a, 0x23);		   /* 8192 Hz */
	wr(rtc, 0x0b, 0x52);		   /* PIE, UIE */
	int64_t next = rtc_cmos_poll(rtc); /* the next period */
	CHECK(next > 0 && next <= 122071);
	h.now += next;
	next = rtc_cmos_poll(rtc); /* PF up: the second's end is still owed */
	CHECK(h.level);
	CHECK(next > 122071);
	h.now += next;
	CHECK_EQ(rtc_cmos_poll(rtc), -1); /* PF and UF up: nothing owed */
	h.now += 5 * NS;
	CHECK_EQ(rtc_cmos_poll(rtc), -1);
	CHECK(h.level);
	/* reading C clears both and asks for a poll, which owes the timer again */
	int retimes = h.retimes;
	CHECK_EQ(rd(rtc, 0x0c), 0xd0);
	CHECK_EQ(h.retimes, retimes + 1);
	CHECK(!h.level);
	next = rtc_cmos_poll(rtc);
	CHECK(next > 0 && next <= 122071);
	/* a read of C with nothing up does not */
	CHECK_EQ(rd(rtc, 0x0c), 0x00);
	CHECK_EQ(h.retimes, retimes + 1);
	dev_destroy(rtc_cmos_dev(rtc));
}

TEST(dev_rtc_timer_gives_update_and_alarm_interrupts)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS + 100000000); /* 13:45:07.1 */
	int polls;
	/* UIE: one a second */
	wr(rtc, 0x0b, 0x12);
	CHECK_EQ(run_timer(rtc, &h, 5 * NS, &polls), 5);
	CHECK(polls <= 6);
	/* AIE alone, alarm at any hour, any minute, second 30: once a minute */
	wr(rtc, 0x01, 0x30);
	wr(rtc, 0x03, 0xc0);
	wr(rtc, 0x05, 0xc0);
	wr(rtc, 0x0b, 0x22);
	rd(rtc, 0x0c);
	CHECK_EQ(run_timer(rtc, &h, 180 * NS, &polls), 3);
	/* SET freezes the clock: no update, no alarm */
	wr(rtc, 0x0b, 0xb2);
	CHECK_EQ(run_timer(rtc, &h, 120 * NS, &polls), 0);
	dev_destroy(rtc_cmos_dev(rtc));
}

TEST(dev_rtc_timer_changed_on_what_moves_the_next_interrupt)
{
	struct host h;
	struct rtc_cmos *rtc = rtc_new(&h, T0 * NS);
	/* reads, CMOS memory and C/D do not re-time */
	rd(rtc, 0x0c);
	rd(rtc, 0x00);
	wr(rtc, 0x40, 0x12);
	wr(rtc, 0x0c, 0x00);
	wr(rtc, 0x0d, 0x00);
	CHECK_EQ(h.retimes, 0);
	/* A, B, an alarm, the clock, the century do */
	wr(rtc, 0x0b, 0x42);
	CHECK_EQ(h.retimes, 1);
	wr(rtc, 0x0a, 0x2f);
	CHECK_EQ(h.retimes, 2);
	wr(rtc, 0x01, 0x30);
	CHECK_EQ(h.retimes, 3);
	wr(rtc, 0x00, 0x00);
	CHECK_EQ(h.retimes, 4);
	wr(rtc, RTC_CMOS_CENTURY, 0x20);
	CHECK_EQ(h.retimes, 5);
	/* a machine reset clears the enables: the timer must stop */
	dev_reset(rtc_cmos_dev(rtc));
	CHECK_EQ(h.retimes, 6);
	CHECK_EQ(rtc_cmos_poll(rtc), -1);
	dev_destroy(rtc_cmos_dev(rtc));
}
