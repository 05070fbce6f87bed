/* devices/virtio/ratelimit.h - token buckets for a device's bandwidth (bytes/s) and operations (ops/s). */
#ifndef EMBER_DEVICES_VIRTIO_RATELIMIT_H
#define EMBER_DEVICES_VIRTIO_RATELIMIT_H

/*
 * The model (the one Firecracker's rate limiter describes, in rate/burst
 * terms): a bucket holds up to `burst` tokens and refills at `rate` tokens
 * per second; it starts full. A bandwidth bucket counts bytes, an
 * operations bucket counts requests. A device takes a request off its queue
 * only while every bucket of its limiter is ready (it has at least one
 * token and owes none), then charges the request's cost. A cost larger than
 * what the bucket holds is charged in full: the bucket goes into debt and
 * is not ready until the refill has paid the debt back and one token is in
 * it. So a request larger than the bucket still makes progress (one at a
 * time), and over any interval T the device takes at most
 * burst + rate * T + (one request) tokens: the long-run rate is exact.
 *
 * rate 0 means unlimited (the bucket is always ready, charges are free);
 * burst 0 means one second's worth of rate. Arithmetic is in 128 bits where
 * a product could overflow and saturates at UINT64_MAX, so any rate and any
 * elapsed time are safe.
 *
 * Time is CLOCK_MONOTONIC nanoseconds, passed in by the caller
 * (ratelimit_now() reads it) so tests run on simulated time.
 *
 * Threads: none here, no locks either. A struct ratelimit belongs to its
 * device and is used under the device's lock (the virtio-mmio transport's:
 * queue work runs under it, and the device's setter takes it).
 *
 * Use in a device's queue work (virtio_dev_ops.process):
 *
 *     uint64_t now = ratelimit_now();
 *     while (ratelimit_ready(rl, now) && vq_pop(q, &c) == 1) {
 *             ... serve the request ...
 *             ratelimit_charge(rl, bytes);        (1 op and `bytes` bytes)
 *     }
 *     if (!ratelimit_ready(rl, now) && vq_has_work(q))
 *             ratelimit_throttle(rl, now);        (the VMM re-runs the queue later)
 *
 * ratelimit_throttle calls the limiter's wait callback (set by the VMM) with
 * the time until the limiter is ready again; the VMM arms a timer on its
 * loop that runs the device's queue work again then. Without a callback
 * (tests) the device simply stops; whoever drives it calls it again.
 */

#include <stdbool.h>
#include <stdint.h>

/* A bucket that waits never asks to be woken sooner than this: at a high
 * rate, a wake-up per token would be a busy loop. */
#define RATELIMIT_MIN_WAIT_NS 1000000ull /* 1 ms */

struct rl_bucket {
	uint64_t rate;	  /* tokens per second; 0: unlimited */
	uint64_t burst;	  /* capacity (resolved: never 0 when rate != 0) */
	uint64_t tokens;  /* 0..burst */
	uint64_t debt;	  /* owed by a request larger than what the bucket held */
	uint64_t last_ns; /* time of the last refill */
	uint64_t frac;	  /* refill remainder, in token-nanoseconds (< 1e9) */
};

/* (Re)configures a bucket: rate and burst as above; it starts full. */
void rl_bucket_init(struct rl_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns);
/* Adds the tokens earned since the last refill (pays the debt first). A
 * clock that went backwards adds nothing. */
void rl_bucket_refill(struct rl_bucket *b, uint64_t now_ns);
/* Refills, then: may a request be taken? (unlimited: always) */
bool rl_bucket_ready(struct rl_bucket *b, uint64_t now_ns);
/* Takes n tokens: those held, the rest as debt. */
void rl_bucket_charge(struct rl_bucket *b, uint64_t n);
/* Tokens a request may use now without debt (after a refill): UINT64_MAX
 * when unlimited. */
uint64_t rl_bucket_available(struct rl_bucket *b, uint64_t now_ns);
/* Nanoseconds from now_ns until the bucket is ready (0 if it is), at least
 * RATELIMIT_MIN_WAIT_NS otherwise. */
uint64_t rl_bucket_wait_ns(struct rl_bucket *b, uint64_t now_ns);

/* A limit as configured (the public struct ember_rate_limit has the same
 * fields and meaning). */
struct ratelimit_config {
	uint64_t bytes_per_sec, bytes_burst;
	uint64_t ops_per_sec, ops_burst;
};

struct ratelimit {
	struct ratelimit_config cfg;
	struct rl_bucket bytes, ops;
	/* Called by ratelimit_throttle: re-run the device's queues in
	 * delay_ns. NULL: nobody is told. */
	void (*wait)(void *opaque, uint64_t delay_ns);
	void *opaque;
	/* The device's clock (NULL: ratelimit_now); tests simulate time. */
	uint64_t (*clock)(void);
	uint64_t throttled; /* times the device stopped for lack of tokens */
};

/* Sets (or changes) the limits; the buckets start full. The wait callback
 * is kept. */
void ratelimit_set(struct ratelimit *rl, const struct ratelimit_config *cfg, uint64_t now_ns);
/* Limiting anything? */
bool ratelimit_active(const struct ratelimit *rl);
/* Both buckets ready (see above). */
bool ratelimit_ready(struct ratelimit *rl, uint64_t now_ns);
/* One operation of `bytes` bytes was taken. */
void ratelimit_charge(struct ratelimit *rl, uint64_t bytes);
/* Bytes a request may take now without debt (UINT64_MAX: no byte limit). */
uint64_t ratelimit_bytes_available(struct ratelimit *rl, uint64_t now_ns);
/* Time until both buckets are ready (0: ready now). */
uint64_t ratelimit_wait_ns(struct ratelimit *rl, uint64_t now_ns);
/* The device stopped taking requests: count it and tell the wait
 * callback how long until it may go on. */
void ratelimit_throttle(struct ratelimit *rl, uint64_t now_ns);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t ratelimit_now(void);
/* The limiter's clock: rl->clock, else ratelimit_now. */
uint64_t ratelimit_clock(const struct ratelimit *rl);

#endif /* EMBER_DEVICES_VIRTIO_RATELIMIT_H */
