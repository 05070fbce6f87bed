/* devices/virtio/ratelimit.c - token buckets with debt: exact long-run rates, bounded bursts, big requests still served. */
#include "ratelimit.h"

#include <time.h>

#define NS_PER_SEC 1000000000ull

typedef unsigned __int128 u128;

static uint64_t sat64(u128 v)
{
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void rl_bucket_init(struct rl_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
	*b = (struct rl_bucket){.rate = rate, .last_ns = now_ns};
	if (!rate)
		return;
	b->burst = burst ? burst : rate; /* default: one second's worth */
	b->tokens = b->burst;
}

void rl_bucket_refill(struct rl_bucket *b, uint64_t now_ns)
{
	if (!b->rate || now_ns <= b->last_ns)
		return;
	uint64_t elapsed = now_ns - b->last_ns;
	b->last_ns = now_ns;
	if (b->tokens == b->burst && !b->debt) {
		b->frac = 0; /* full: nothing to earn */
		return;
	}
	/* (2^64-1)^2 + 1e9 < 2^128: no overflow */
	u128 prod = (u128)b->rate * elapsed + b->frac;
	uint64_t earned = sat64(prod / NS_PER_SEC);
	b->frac = (uint64_t)(prod % NS_PER_SEC);
	if (earned >= b->debt) {
		earned -= b->debt;
		b->debt = 0;
	} else {
		b->debt -= earned;
		earned = 0;
	}
	b->tokens = sat_add(b->tokens, earned);
	if (b->tokens >= b->burst) {
		b->tokens = b->burst;
		b->frac = 0;
	}
}

bool rl_bucket_ready(struct rl_bucket *b, uint64_t now_ns)
{
	if (!b->rate)
		return true;
	rl_bucket_refill(b, now_ns);
	return !b->debt && b->tokens > 0;
}

void rl_bucket_charge(struct rl_bucket *b, uint64_t n)
{
	if (!b->rate)
		return;
	if (n <= b->tokens) {
		b->tokens -= n;
		return;
	}
	b->debt = sat_add(b->debt, n - b->tokens);
	b->tokens = 0;
}

uint64_t rl_bucket_available(struct rl_bucket *b, uint64_t now_ns)
{
	if (!b->rate)
		return UINT64_MAX;
	rl_bucket_refill(b, now_ns);
	return b->debt ? 0 : b->tokens;
}

uint64_t rl_bucket_wait_ns(struct rl_bucket *b, uint64_t now_ns)
{
	if (rl_bucket_ready(b, now_ns))
		return 0;
	/* not ready: tokens is 0; the debt and one token are needed */
	u128 need = ((u128)b->debt + 1) * NS_PER_SEC;
	need = need > b->frac ? need - b->frac : 0;
	uint64_t ns = sat64((need + b->rate - 1) / b->rate);
	return ns < RATELIMIT_MIN_WAIT_NS ? RATELIMIT_MIN_WAIT_NS : ns;
}

void ratelimit_set(struct ratelimit *rl, const struct ratelimit_config *cfg, uint64_t now_ns)
{
	rl->cfg = *cfg;
	rl_bucket_init(&rl->bytes, cfg->bytes_per_sec, cfg->bytes_burst, now_ns);
	rl_bucket_init(&rl->ops, cfg->ops_per_sec, cfg->ops_burst, now_ns);
	/* the resolved bursts, so that a read-back shows what is in force */
	rl->cfg.bytes_burst = rl->bytes.burst;
	rl->cfg.ops_burst = rl->ops.burst;
}

bool ratelimit_active(const struct ratelimit *rl)
{
	return rl->bytes.rate || rl->ops.rate;
}

bool ratelimit_ready(struct ratelimit *rl, uint64_t now_ns)
{
	/* both refilled (no short circuit), so both clocks move on */
	bool b = rl_bucket_ready(&rl->bytes, now_ns);
	bool o = rl_bucket_ready(&rl->ops, now_ns);
	return b && o;
}

void ratelimit_charge(struct ratelimit *rl, uint64_t bytes)
{
	rl_bucket_charge(&rl->bytes, bytes);
	rl_bucket_charge(&rl->ops, 1);
}

uint64_t ratelimit_bytes_available(struct ratelimit *rl, uint64_t now_ns)
{
	return rl_bucket_available(&rl->bytes, now_ns);
}

uint64_t ratelimit_wait_ns(struct ratelimit *rl, uint64_t now_ns)
{
	uint64_t b = rl_bucket_wait_ns(&rl->bytes, now_ns);
	uint64_t o = rl_bucket_wait_ns(&rl->ops, now_ns);
	return b > o ? b : o;
}

void ratelimit_throttle(struct ratelimit *rl, uint64_t now_ns)
{
	uint64_t ns = ratelimit_wait_ns(rl, now_ns);
	if (!ns)
		return;
	rl->throttled++;
	if (rl->wait)
		rl->wait(rl->opaque, ns);
}

uint64_t ratelimit_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t ratelimit_clock(const struct ratelimit *rl)
{
	return rl->clock ? rl->clock() : ratelimit_now();
}
