/* devices/rtc_cmos.c - MC146818 RTC: host time plus offset, BCD/binary, 12/24 h, UIP, flags. */
#include "rtc_cmos.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
	REG_SEC = 0x00,
	REG_SEC_ALARM = 0x01,
	REG_MIN = 0x02,
	REG_MIN_ALARM = 0x03,
	REG_HOUR = 0x04,
	REG_HOUR_ALARM = 0x05,
	REG_WDAY = 0x06,
	REG_MDAY = 0x07,
	REG_MONTH = 0x08,
	REG_YEAR = 0x09,
	REG_A = 0x0a,
	REG_B = 0x0b,
	REG_C = 0x0c,
	REG_D = 0x0d,
	REG_CENTURY = RTC_CMOS_CENTURY,
};

#define A_UIP	   0x80
#define A_DV_MASK  0x70
#define A_DV_RESET 0x60 /* DV bits 6-5 both set: divider chain held in reset */
#define A_RS_MASK  0x0f
#define A_DEFAULT  0x26 /* 32.768 kHz time base, 1024 Hz periodic rate */

#define B_SET	    0x80
#define B_PIE	    0x40
#define B_AIE	    0x20
#define B_UIE	    0x10
#define B_SQWE	    0x08
#define B_DM_BINARY 0x04
#define B_24H	    0x02
#define B_DEFAULT   B_24H

#define C_IRQF 0x80
#define C_PF   0x40
#define C_AF   0x20
#define C_UF   0x10

#define D_VRT 0x80

#define NS	  1000000000LL
#define UIP_NS	  244141LL /* 8 periods of 32.768 kHz before each update */
#define ALARM_ANY 0xc0

struct rtc_cmos {
	struct dev dev;
	pthread_mutex_t lock;
	struct rtc_cmos_config cfg;
	uint8_t ram[128]; /* registers A and B live at their index; C, D and the
			     clock registers are computed */
	uint8_t index;
	bool nmi_masked;
	int64_t offset_s;    /* guest seconds = host seconds + offset_s */
	int64_t frozen_secs; /* the clock while frozen */
	uint8_t flags;	     /* C_PF | C_AF | C_UF */
	int64_t last_eval;   /* host ns the flags were last brought up to date */
	bool irq_level;
};

_Static_assert(offsetof(struct rtc_cmos, dev) == 0, "struct dev must come first");

struct rtc_tm {
	int64_t year; /* 0..9999 */
	int mon;      /* 1..12 */
	int mday;     /* 1..31 */
	int hour, min, sec;
	int wday; /* 0 = Sunday */
};

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b < 0) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
	int64_t r = a % b;
	return r < 0 ? r + b : r;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, struct rtc_tm *tm)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	tm->mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm->mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	tm->year = yoe + era * 400 + (tm->mon <= 2);
}

static void secs_to_tm(int64_t secs, struct rtc_tm *tm)
{
	int64_t days = floor_div(secs, 86400), rem = floor_mod(secs, 86400);
	civil_from_days(days, tm);
	tm->hour = (int)(rem / 3600);
	tm->min = (int)(rem / 60 % 60);
	tm->sec = (int)(rem % 60);
	tm->wday = (int)floor_mod(days + 4, 7); /* 1970-01-01 was a Thursday */
}

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static int64_t tm_to_secs(struct rtc_tm *tm)
{
	tm->year = tm->year < 0 ? 0 : tm->year > 9999 ? 9999 : tm->year;
	tm->mon = clampi(tm->mon, 1, 12);
	tm->mday = clampi(tm->mday, 1, 31);
	tm->hour = clampi(tm->hour, 0, 23);
	tm->min = clampi(tm->min, 0, 59);
	tm->sec = clampi(tm->sec, 0, 59);
	return days_from_civil(tm->year, tm->mon, tm->mday) * 86400 + tm->hour * 3600 +
	       tm->min * 60 + tm->sec;
}

static int64_t host_now(const struct rtc_cmos *rtc)
{
	if (rtc->cfg.now_ns)
		return rtc->cfg.now_ns(rtc->cfg.opaque);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static bool is_frozen(const struct rtc_cmos *rtc)
{
	return (rtc->ram[REG_B] & B_SET) || (rtc->ram[REG_A] & A_DV_RESET) == A_DV_RESET;
}

static bool divider_running(const struct rtc_cmos *rtc)
{
	return (rtc->ram[REG_A] & A_DV_RESET) != A_DV_RESET;
}

static int64_t guest_secs(const struct rtc_cmos *rtc, int64_t now)
{
	return is_frozen(rtc) ? rtc->frozen_secs : floor_div(now, NS) + rtc->offset_s;
}

static void set_guest_secs(struct rtc_cmos *rtc, int64_t now, int64_t secs)
{
	if (is_frozen(rtc))
		rtc->frozen_secs = secs;
	else
		rtc->offset_s = secs - floor_div(now, NS);
}

/* ---- register encoding (B.DM, B.24H) ---- */

static uint8_t enc(const struct rtc_cmos *rtc, int v)
{
	v = clampi(v, 0, 99);
	if (rtc->ram[REG_B] & B_DM_BINARY)
		return (uint8_t)v;
	return (uint8_t)((v / 10) << 4 | v % 10);
}

static int dec(const struct rtc_cmos *rtc, uint8_t r)
{
	if (rtc->ram[REG_B] & B_DM_BINARY)
		return r;
	return (r >> 4) * 10 + (r & 0x0f);
}

static uint8_t enc_hour(const struct rtc_cmos *rtc, int h)
{
	if (rtc->ram[REG_B] & B_24H)
		return enc(rtc, h);
	int h12 = h % 12 ? h % 12 : 12;
	return (uint8_t)(enc(rtc, h12) | (h >= 12 ? 0x80 : 0));
}

static int dec_hour(const struct rtc_cmos *rtc, uint8_t r)
{
	if (rtc->ram[REG_B] & B_24H)
		return dec(rtc, r);
	int h = dec(rtc, r & 0x7f) % 12;
	return (r & 0x80) ? h + 12 : h;
}

/* ---- interrupt flags ---- */

/* The periodic rate in 1/32768 s ticks, 0 for none. */
static int64_t period_ticks(const struct rtc_cmos *rtc)
{
	unsigned rs = rtc->ram[REG_A] & A_RS_MASK;
	if (rs == 0)
		return 0;
	if (rs <= 2) /* 256 Hz and 128 Hz with the 32.768 kHz time base */
		rs += 7;
	return (int64_t)1 << (rs - 1);
}

/* Host ns to 1/32768 s ticks, rounding down, without overflow. */
static int64_t to_ticks(int64_t ns)
{
	return floor_div(ns, NS) * 32768 + floor_mod(ns, NS) * 32768 / NS;
}

static bool alarm_field_matches(uint8_t alarm, uint8_t now)
{
	return (alarm & ALARM_ANY) == ALARM_ANY || alarm == now;
}

static bool alarm_matches(const struct rtc_cmos *rtc, int64_t secs)
{
	struct rtc_tm tm;
	secs_to_tm(secs, &tm);
	return alarm_field_matches(rtc->ram[REG_SEC_ALARM], enc(rtc, tm.sec)) &&
	       alarm_field_matches(rtc->ram[REG_MIN_ALARM], enc(rtc, tm.min)) &&
	       alarm_field_matches(rtc->ram[REG_HOUR_ALARM], enc_hour(rtc, tm.hour));
}

/* Brings the flags up to now: what happened since last_eval. */
static void eval_flags(struct rtc_cmos *rtc, int64_t now)
{
	int64_t last = rtc->last_eval;
	rtc->last_eval = now;
	if (now <= last)
		return;
	int64_t ticks = period_ticks(rtc);
	if (ticks && divider_running(rtc) && to_ticks(now) / ticks != to_ticks(last) / ticks)
		rtc->flags |= C_PF;
	if (is_frozen(rtc))
		return;
	int64_t from = guest_secs(rtc, last), to = guest_secs(rtc, now);
	if (to <= from)
		return;
	rtc->flags |= C_UF;
	if (to - from > 86400) /* a whole day passed: every alarm time did */
		from = to - 86400;
	for (int64_t s = from + 1; s <= to && !(rtc->flags & C_AF); s++)
		if (alarm_matches(rtc, s))
			rtc->flags |= C_AF;
}

static bool irqf(const struct rtc_cmos *rtc)
{
	uint8_t b = rtc->ram[REG_B];
	return ((rtc->flags & C_PF) && (b & B_PIE)) || ((rtc->flags & C_AF) && (b & B_AIE)) ||
	       ((rtc->flags & C_UF) && (b & B_UIE));
}

static void update_irq(struct rtc_cmos *rtc)
{
	bool level = irqf(rtc);
	if (level != rtc->irq_level) {
		rtc->irq_level = level;
		if (rtc->cfg.set_irq)
			rtc->cfg.set_irq(rtc->cfg.opaque, level);
	}
}

/* ---- registers ---- */

static uint8_t read_reg(struct rtc_cmos *rtc, unsigned reg)
{
	int64_t now;
	struct rtc_tm tm;
	switch (reg) {
	case REG_SEC:
	case REG_MIN:
	case REG_HOUR:
	case REG_WDAY:
	case REG_MDAY:
	case REG_MONTH:
	case REG_YEAR:
	case REG_CENTURY:
		secs_to_tm(guest_secs(rtc, host_now(rtc)), &tm);
		switch (reg) {
		case REG_SEC:
			return enc(rtc, tm.sec);
		case REG_MIN:
			return enc(rtc, tm.min);
		case REG_HOUR:
			return enc_hour(rtc, tm.hour);
		case REG_WDAY:
			return enc(rtc, tm.wday + 1);
		case REG_MDAY:
			return enc(rtc, tm.mday);
		case REG_MONTH:
			return enc(rtc, tm.mon);
		case REG_YEAR:
			return enc(rtc, (int)(tm.year % 100));
		default:
			return enc(rtc, (int)(tm.year / 100));
		}
	case REG_A:
		now = host_now(rtc);
		if (!is_frozen(rtc) && floor_mod(now, NS) >= NS - UIP_NS)
			return rtc->ram[REG_A] | A_UIP;
		return rtc->ram[REG_A];
	case REG_C: {
		eval_flags(rtc, host_now(rtc));
		uint8_t v = (uint8_t)(rtc->flags | (irqf(rtc) ? C_IRQF : 0));
		rtc->flags = 0;
		return v;
	}
	case REG_D:
		return D_VRT;
	default:
		return rtc->ram[reg];
	}
}

/* A clock register written in the current format. */
static void write_time(struct rtc_cmos *rtc, unsigned reg, uint8_t val)
{
	int64_t now = host_now(rtc);
	eval_flags(rtc, now);
	struct rtc_tm tm;
	secs_to_tm(guest_secs(rtc, now), &tm);
	switch (reg) {
	case REG_SEC:
		tm.sec = dec(rtc, val & 0x7f);
		break;
	case REG_MIN:
		tm.min = dec(rtc, val & 0x7f);
		break;
	case REG_HOUR:
		tm.hour = dec_hour(rtc, val);
		break;
	case REG_MDAY:
		tm.mday = dec(rtc, val);
		break;
	case REG_MONTH:
		tm.mon = dec(rtc, val);
		break;
	case REG_YEAR:
		tm.year = tm.year / 100 * 100 + clampi(dec(rtc, val), 0, 99);
		break;
	default: /* REG_CENTURY */
		tm.year = (int64_t)clampi(dec(rtc, val), 0, 99) * 100 + tm.year % 100;
		break;
	}
	set_guest_secs(rtc, now, tm_to_secs(&tm));
}

/* Writes A or B, freezing or restarting the clock as SET / DV change. */
static void write_control(struct rtc_cmos *rtc, unsigned reg, uint8_t val)
{
	int64_t now = host_now(rtc);
	eval_flags(rtc, now);
	bool was = is_frozen(rtc);
	int64_t secs = guest_secs(rtc, now);
	if (reg == REG_A) {
		rtc->ram[REG_A] = val & (uint8_t)~A_UIP;
	} else {
		if (val & B_SET)
			val &= (uint8_t)~B_UIE;
		rtc->ram[REG_B] = val;
	}
	bool is = is_frozen(rtc);
	if (!was && is)
		rtc->frozen_secs = secs;
	else if (was && !is)
		rtc->offset_s = rtc->frozen_secs - floor_div(now, NS);
}

static void write_reg(struct rtc_cmos *rtc, unsigned reg, uint8_t val)
{
	switch (reg) {
	case REG_SEC:
	case REG_MIN:
	case REG_HOUR:
	case REG_MDAY:
	case REG_MONTH:
	case REG_YEAR:
	case REG_CENTURY:
		write_time(rtc, reg, val);
		break;
	case REG_WDAY: /* computed from the date */
	case REG_C:
	case REG_D:
		break;
	case REG_A:
	case REG_B:
		write_control(rtc, reg, val);
		break;
	default:
		rtc->ram[reg] = val;
		break;
	}
}

static void rtc_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
		       unsigned len, bool is_write)
{
	struct rtc_cmos *rtc = opaque;
	if (offset >= RTC_CMOS_WINDOW)
		return;
	bool retime = false;
	pthread_mutex_lock(&rtc->lock);
	if (offset == 0) {
		if (is_write) {
			rtc->index = data[0] & 0x7f;
			rtc->nmi_masked = data[0] & 0x80;
		} /* reads: write-only register, all-ones */
	} else if (is_write) {
		write_reg(rtc, rtc->index, data[0]);
		/* the clock, its alarm, rate or enables: when the next
		 * interrupt can come may have changed */
		retime = rtc->index <= REG_B || rtc->index == REG_CENTURY;
	} else {
		/* reading C clears flags the timer skipped while they were up */
		retime = rtc->index == REG_C && rtc->flags &&
			 (rtc->ram[REG_B] & (B_PIE | B_AIE | B_UIE));
		data[0] = read_reg(rtc, rtc->index);
	}
	update_irq(rtc);
	pthread_mutex_unlock(&rtc->lock);
	if (retime && rtc->cfg.timer_changed)
		rtc->cfg.timer_changed(rtc->cfg.opaque);
}

static void rtc_reset(struct dev *dev)
{
	struct rtc_cmos *rtc = (struct rtc_cmos *)dev;
	pthread_mutex_lock(&rtc->lock);
	rtc->ram[REG_B] &= (uint8_t) ~(B_PIE | B_AIE | B_UIE | B_SQWE);
	rtc->flags = 0;
	rtc->index = 0;
	rtc->nmi_masked = false;
	rtc->last_eval = host_now(rtc);
	update_irq(rtc);
	pthread_mutex_unlock(&rtc->lock);
	if (rtc->cfg.timer_changed)
		rtc->cfg.timer_changed(rtc->cfg.opaque);
}

static void rtc_destroy(struct dev *dev)
{
	struct rtc_cmos *rtc = (struct rtc_cmos *)dev;
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}

/* The saved state: CMOS memory (A and B included), the index latch, the
 * clock as its offset from the host's wall clock (so the guest's clock has
 * moved on by the time between save and load, as a battery-backed clock
 * would), the frozen time and the pending flags. The flags are brought up
 * to date from the moment of the load. */
#define RTC_STATE_VERSION 1

static int rtc_save(struct dev *dev, struct vmm_state_w *w)
{
	struct rtc_cmos *rtc = (struct rtc_cmos *)dev;
	pthread_mutex_lock(&rtc->lock);
	eval_flags(rtc, host_now(rtc));
	vmm_sw_begin(w, "rtc_cmos", RTC_STATE_VERSION);
	vmm_sw_bytes(w, rtc->ram, sizeof(rtc->ram));
	vmm_sw_u8(w, rtc->index);
	vmm_sw_bool(w, rtc->nmi_masked);
	vmm_sw_u64(w, (uint64_t)rtc->offset_s);
	vmm_sw_u64(w, (uint64_t)rtc->frozen_secs);
	vmm_sw_u8(w, rtc->flags);
	vmm_sw_end(w);
	pthread_mutex_unlock(&rtc->lock);
	return vmm_sw_error(w);
}

static int rtc_load(struct dev *dev, struct vmm_state_r *r)
{
	struct rtc_cmos *rtc = (struct rtc_cmos *)dev;
	uint8_t ram[sizeof(rtc->ram)];
	uint32_t version = RTC_STATE_VERSION;
	if (vmm_sr_begin(r, "rtc_cmos", &version))
		return vmm_sr_error(r);
	vmm_sr_bytes(r, ram, sizeof(ram));
	uint8_t index = vmm_sr_u8(r);
	bool nmi_masked = vmm_sr_bool(r);
	int64_t offset_s = (int64_t)vmm_sr_u64(r);
	int64_t frozen_secs = (int64_t)vmm_sr_u64(r);
	uint8_t flags = vmm_sr_u8(r);
	/* years 0..9999 are about +-3.2e11 s from the epoch */
	const int64_t span = 400000000000LL;
	if (index >= sizeof(ram) || (flags & ~(C_PF | C_AF | C_UF)) || offset_s < -span ||
	    offset_s > span || frozen_secs < -span || frozen_secs > span)
		return vmm_sr_fail(r, -EINVAL, "index, flags or time out of range");

	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	pthread_mutex_lock(&rtc->lock);
	memcpy(rtc->ram, ram, sizeof(ram));
	rtc->index = index;
	rtc->nmi_masked = nmi_masked;
	rtc->offset_s = offset_s;
	rtc->frozen_secs = frozen_secs;
	rtc->flags = flags;
	rtc->last_eval = host_now(rtc);
	update_irq(rtc);
	pthread_mutex_unlock(&rtc->lock);
	if (rtc->cfg.timer_changed)
		rtc->cfg.timer_changed(rtc->cfg.opaque);
	return 0;
}

static const struct dev_ops rtc_cmos_ops = {
    .bus = {.name = "rtc_cmos", .sizes = BUS_W1, .access = rtc_access},
    .reset = rtc_reset,
    .destroy = rtc_destroy,
    .save = rtc_save,
    .load = rtc_load,
};

int rtc_cmos_create(const struct rtc_cmos_config *cfg, struct rtc_cmos **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	struct rtc_cmos *rtc = calloc(1, sizeof(*rtc));
	if (!rtc)
		return -ENOMEM;
	rtc->dev.ops = &rtc_cmos_ops;
	rtc->cfg = *cfg;
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->ram[REG_A] = A_DEFAULT;
	rtc->ram[REG_B] = B_DEFAULT;
	rtc->last_eval = host_now(rtc);
	*out = rtc;
	return 0;
}

struct dev *rtc_cmos_dev(struct rtc_cmos *rtc)
{
	return &rtc->dev;
}

static bool ram_index_ok(unsigned index)
{
	return index >= 0x0e && index < 0x80 && index != REG_CENTURY;
}

int rtc_cmos_set_ram(struct rtc_cmos *rtc, unsigned index, uint8_t value)
{
	if (!ram_index_ok(index))
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	rtc->ram[index] = value;
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

int rtc_cmos_get_ram(struct rtc_cmos *rtc, unsigned index)
{
	if (!ram_index_ok(index))
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	int v = rtc->ram[index];
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

bool rtc_cmos_nmi_masked(struct rtc_cmos *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	bool m = rtc->nmi_masked;
	pthread_mutex_unlock(&rtc->lock);
	return m;
}

int64_t rtc_cmos_poll(struct rtc_cmos *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	int64_t now = host_now(rtc);
	eval_flags(rtc, now);
	update_irq(rtc);
	uint8_t b = rtc->ram[REG_B];
	/* the enabled events whose flag is not already up: one that is stays
	 * up until register C is read, which re-times (rtc_access), so no
	 * wake-up is owed for it (a guest that enables the 8 kHz rate and
	 * never reads C costs no timer at all) */
	uint8_t want = b & (B_PIE | B_AIE | B_UIE);
	if (rtc->flags & C_PF)
		want &= (uint8_t)~B_PIE;
	if (rtc->flags & C_AF)
		want &= (uint8_t)~B_AIE;
	if (rtc->flags & C_UF)
		want &= (uint8_t)~B_UIE;
	int64_t next = -1;
	if (want) {
		b = want;
		next = NS; /* nothing can happen now (clock stopped): look again */
		int64_t ticks = period_ticks(rtc);
		if ((b & B_PIE) && ticks && divider_running(rtc)) {
			int64_t nb = (to_ticks(now) / ticks + 1) * ticks; /* next boundary */
			int64_t at =
			    floor_div(nb, 32768) * NS + (floor_mod(nb, 32768) * NS + 32767) / 32768;
			next = at > now ? at - now : 1;
		}
		if ((b & (B_AIE | B_UIE)) && !is_frozen(rtc)) {
			int64_t ns = NS - floor_mod(now, NS);
			if (ns < next)
				next = ns;
		}
	}
	pthread_mutex_unlock(&rtc->lock);
	return next;
}

bool rtc_cmos_force_alarm(struct rtc_cmos *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	eval_flags(rtc, host_now(rtc));
	rtc->flags |= C_AF | C_UF;
	update_irq(rtc);
	bool up = rtc->irq_level;
	pthread_mutex_unlock(&rtc->lock);
	return up;
}
