/* tests/unit/virtio_ratelimit.c - token buckets (refill, burst, debt, overflow, unlimited) and a rate-limited virtio-rng on simulated time. */
#include "virtio_driver.h"
#include "../../devices/virtio/ratelimit.h"
#include "../../devices/virtio/blk.h"
#include "../../devices/virtio/rng.h"

#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/virtio_ring.h>

#define MS  1000000ull
#define SEC 1000000000ull

TEST(ratelimit_bucket_starts_full_and_refills_at_its_rate)
{
	struct rl_bucket b;
	rl_bucket_init(&b, 1000, 100, 0); /* 1000 tokens/s, holds 100 */
	CHECK(rl_bucket_ready(&b, 0));
	CHECK_EQ(rl_bucket_available(&b, 0), 100);
	rl_bucket_charge(&b, 100);
	CHECK(!rl_bucket_ready(&b, 0));
	CHECK_EQ(rl_bucket_available(&b, 0), 0);
	/* 1 ms: one token; 50 ms: 50 more; fractions are kept (0.5 ms twice) */
	CHECK(rl_bucket_ready(&b, 1 * MS));
	CHECK_EQ(rl_bucket_available(&b, 1 * MS), 1);
	CHECK_EQ(rl_bucket_available(&b, 51 * MS), 51);
	CHECK_EQ(rl_bucket_available(&b, 51 * MS + MS / 2), 51);
	CHECK_EQ(rl_bucket_available(&b, 52 * MS), 52);
	/* never more than the burst, however long it waits */
	CHECK_EQ(rl_bucket_available(&b, 3600 * SEC), 100);
	/* a clock that goes backwards adds nothing */
	rl_bucket_charge(&b, 100);
	CHECK_EQ(rl_bucket_available(&b, 1 * SEC), 0);
	CHECK_EQ(rl_bucket_available(&b, 3600 * SEC + 10 * MS), 10);
}

TEST(ratelimit_burst_defaults_to_one_second_and_bounds_what_is_taken_at_once)
{
	struct rl_bucket b;
	rl_bucket_init(&b, 5000, 0, 0);
	CHECK_EQ(b.burst, 5000);
	CHECK_EQ(rl_bucket_available(&b, 0), 5000);
	/* a burst of small requests: exactly the bucket, then nothing */
	unsigned n = 0;
	while (rl_bucket_ready(&b, 0) && n < 100000) {
		rl_bucket_charge(&b, 10);
		n++;
	}
	CHECK_EQ(n, 500);
	/* wait_ns: the time until one token (at least the minimum wait) */
	CHECK_EQ(rl_bucket_wait_ns(&b, 0), RATELIMIT_MIN_WAIT_NS);
	rl_bucket_init(&b, 1, 1, 0); /* 1 token/s */
	rl_bucket_charge(&b, 1);
	CHECK_EQ(rl_bucket_wait_ns(&b, 0), SEC);
	CHECK_EQ(rl_bucket_wait_ns(&b, SEC / 4), 3 * SEC / 4);
	CHECK_EQ(rl_bucket_wait_ns(&b, SEC), 0);
}

TEST(ratelimit_a_request_larger_than_the_bucket_still_makes_progress)
{
	struct rl_bucket b;
	rl_bucket_init(&b, 1000, 100, 0);
	CHECK(rl_bucket_ready(&b, 0));
	rl_bucket_charge(&b, 1000); /* 10x the bucket: 900 owed */
	CHECK_EQ(b.debt, 900);
	CHECK(!rl_bucket_ready(&b, 500 * MS));
	CHECK_EQ(rl_bucket_wait_ns(&b, 500 * MS), 401 * MS); /* 400 owed + 1 token */
	CHECK(!rl_bucket_ready(&b, 900 * MS));
	CHECK(rl_bucket_ready(&b, 901 * MS));
	/* and the long-run rate holds with such requests: 10 s at 1000/s,
	 * 1000-token requests, served whenever ready */
	rl_bucket_init(&b, 1000, 100, 0);
	unsigned served = 0;
	for (uint64_t t = 0; t <= 10 * SEC; t += MS)
		if (rl_bucket_ready(&b, t)) {
			rl_bucket_charge(&b, 1000);
			served++;
		}
	/* at most burst + rate*T + one request: 100 + 10000 + 1000 tokens */
	CHECK(served >= 10 && served <= 11);
}

TEST(ratelimit_long_run_rate_is_exact_with_mixed_request_sizes)
{
	struct rl_bucket b;
	rl_bucket_init(&b, 12345, 4096, 0);
	uint64_t taken = 0, seed = 1;
	const uint64_t T = 100 * SEC;
	for (uint64_t t = 0; t <= T; t += 250000) { /* every 0.25 ms */
		while (rl_bucket_ready(&b, t)) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t n = 1 + (seed >> 33) % 8192;
			rl_bucket_charge(&b, n);
			taken += n;
		}
	}
	uint64_t ideal = 12345ull * 100;
	CHECK(taken <= ideal + 4096 + 8192);
	CHECK(taken >= ideal - 8192); /* never starved either */
}

TEST(ratelimit_huge_rates_and_times_do_not_overflow)
{
	struct rl_bucket b;
	rl_bucket_init(&b, UINT64_MAX, 0, 0);
	CHECK_EQ(b.burst, UINT64_MAX);
	rl_bucket_charge(&b, UINT64_MAX);
	CHECK_EQ(b.tokens, 0);
	CHECK(rl_bucket_ready(&b, 1)); /* 1 ns earns 1.8e10 tokens */
	CHECK(rl_bucket_available(&b, UINT64_MAX) == UINT64_MAX);
	/* charges saturate, refills of a huge elapsed time saturate */
	rl_bucket_charge(&b, UINT64_MAX);
	rl_bucket_charge(&b, UINT64_MAX);
	CHECK_EQ(b.debt, UINT64_MAX);
	CHECK(!rl_bucket_ready(&b, UINT64_MAX)); /* 1.8e10/ns for 0 ns: still owed */
	/* a slow bucket deep in debt: the wait saturates instead of wrapping */
	rl_bucket_init(&b, 1, 1, 0);
	rl_bucket_charge(&b, UINT64_MAX);
	CHECK_EQ(rl_bucket_wait_ns(&b, 0), UINT64_MAX);
	CHECK(!rl_bucket_ready(&b, UINT64_MAX));
	/* a big rate over a long time: no wrap to a small count */
	rl_bucket_init(&b, UINT64_MAX / 3, UINT64_MAX / 2, 0);
	rl_bucket_charge(&b, UINT64_MAX / 2);
	CHECK_EQ(rl_bucket_available(&b, UINT64_MAX - 1), UINT64_MAX / 2);
}

TEST(ratelimit_zero_is_unlimited)
{
	struct ratelimit rl = {0};
	struct ratelimit_config c = {0};
	ratelimit_set(&rl, &c, 0);
	CHECK(!ratelimit_active(&rl));
	for (int i = 0; i < 1000; i++) {
		CHECK(ratelimit_ready(&rl, 0));
		ratelimit_charge(&rl, UINT64_MAX);
	}
	CHECK_EQ(ratelimit_bytes_available(&rl, 0), UINT64_MAX);
	CHECK_EQ(ratelimit_wait_ns(&rl, 0), 0);
	/* only ops limited: bytes are free, the 3rd request waits */
	c = (struct ratelimit_config){.ops_per_sec = 2};
	ratelimit_set(&rl, &c, 0);
	CHECK(ratelimit_active(&rl));
	CHECK_EQ(rl.cfg.ops_burst, 2); /* resolved: one second's worth */
	CHECK_EQ(ratelimit_bytes_available(&rl, 0), UINT64_MAX);
	ratelimit_charge(&rl, 1ull << 40);
	ratelimit_charge(&rl, 1ull << 40);
	CHECK(!ratelimit_ready(&rl, 0));
	CHECK_EQ(ratelimit_wait_ns(&rl, 0), SEC / 2);
	CHECK(ratelimit_ready(&rl, SEC / 2));
}

/* ---------------------------------------------------------------- the device */

#define MEM_SIZE  (1u << 20)
#define BASE	  0xd0000000ull
#define QSZ	  8
#define DESC_GPA  0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA  0x3000
#define BUF_GPA	  0x10000
#define BUF_LEN	  64

static uint64_t sim_now;
static uint64_t sim_clock(void)
{
	return sim_now;
}

struct rlrig {
	struct vmm_mem mem;
	struct bus *bus;
	struct virtio_rng *rng;
	struct virtio_mmio *t;
	struct tdrv_queue q;
	struct tdrv_mmio m;
	uint64_t wake_at; /* the wait callback's deadline, 0: none */
	unsigned waits;
};

static void rl_irq(void *opaque)
{
	(void)opaque;
}

static void rl_wait_cb(void *opaque, uint64_t delay_ns)
{
	struct rlrig *r = opaque;
	r->wake_at = sim_now + delay_ns;
	r->waits++;
}

/* The rig's limiter on simulated time, with limits lim; then the driver's
 * probe of device_id and its queue 0. */
static void rig_start(struct rlrig *r, struct ratelimit *rl, const struct ratelimit_config *lim,
		      uint32_t device_id)
{
	rl->clock = sim_clock;
	rl->wait = rl_wait_cb;
	rl->opaque = r;
	virtio_mmio_lock(r->t);
	ratelimit_set(rl, lim, sim_now);
	virtio_mmio_unlock(r->t);
	r->m = (struct tdrv_mmio){.bus = r->bus, .base = BASE};
	r->q = (struct tdrv_queue){
	    .mem = &r->mem, .size = QSZ, .desc = DESC_GPA, .avail = AVAIL_GPA, .used = USED_GPA};
	tdrv_probe(&r->m, device_id, 1ull << VIRTIO_F_VERSION_1);
	tdrv_setup_queue(&r->m, 0, &r->q);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
}

TEST(ratelimit_rng_delivers_the_configured_rate_over_simulated_time)
{
	struct rlrig r;
	memset(&r, 0, sizeof(r));
	sim_now = 0;
	REQUIRE_OK(
	    vmm_mem_create(&r.mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r.bus));
	struct virtio_mmio_config cfg = {.mem = &r.mem, .interrupt = rl_irq, .opaque = &r};
	REQUIRE_OK(virtio_rng_create(cfg, &r.rng, &r.t));
	REQUIRE_OK(dev_register(r.bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r.t)));
	struct ratelimit *rl = virtio_rng_ratelimit(r.rng);
	/* 2000 bytes/s, 256 bytes of burst, and at most 100 requests/s */
	struct ratelimit_config lim = {
	    .bytes_per_sec = 2000, .bytes_burst = 256, .ops_per_sec = 100};
	rig_start(&r, rl, &lim, VIRTIO_ID_RNG);
	for (unsigned i = 0; i < QSZ; i++) {
		tdrv_desc(&r.q, DESC_GPA, i, BUF_GPA + i * BUF_LEN, BUF_LEN, VRING_DESC_F_WRITE, 0);
		tdrv_publish(&r.q, (uint16_t)i);
	}
	/* the kick: the burst goes at once (256 bytes), then the device stops */
	virtio_mmio_process(r.t, 0);
	CHECK_EQ(virtio_rng_bytes(r.rng), 256);
	REQUIRE(r.wake_at > 0);
	/* a kick before one token is back (0.5 ms at 2000/s) takes nothing */
	sim_now = 400000;
	virtio_mmio_process(r.t, 0);
	CHECK_EQ(virtio_rng_bytes(r.rng), 256);

	/* 10 simulated seconds: the driver gives each buffer back as soon as it
	 * is used; the VMM's timer runs the queue at each deadline */
	uint16_t used_seen = tdrv_rd16(&r.mem, USED_GPA + 2);
	for (unsigned i = 0; i < used_seen; i++) /* republish what was used so far */
		tdrv_publish(&r.q, (uint16_t)tdrv_rd32(&r.mem, USED_GPA + 4 + 8ull * (i % QSZ)));
	unsigned timer_runs = 0;
	for (sim_now = 0; sim_now <= 10 * SEC; sim_now += MS) {
		if (!r.wake_at || sim_now < r.wake_at)
			continue;
		r.wake_at = 0;
		timer_runs++;
		virtio_mmio_process(r.t, 0);
		uint16_t used = tdrv_rd16(&r.mem, USED_GPA + 2);
		for (; used_seen != used; used_seen++)
			tdrv_publish(&r.q, (uint16_t)tdrv_rd32(
					       &r.mem, USED_GPA + 4 + 8ull * (used_seen % QSZ)));
	}
	uint64_t bytes = virtio_rng_bytes(r.rng);
	/* 256 + 2000/s * 10 s, give or take one request and the 1 ms steps */
	CHECK(bytes >= 19500 && bytes <= 20256 + BUF_LEN);
	CHECK(timer_runs > 100);
	CHECK(r.waits >= timer_runs);
	CHECK(rl->throttled >= timer_runs);
	/* the requests stayed within 100/s too */
	CHECK(virtio_rng_requests(r.rng) <= 100 * 10 + 100 + 1);

	/* unlimited again: everything posted is served at the next run */
	lim = (struct ratelimit_config){0};
	virtio_mmio_lock(r.t);
	ratelimit_set(rl, &lim, sim_now);
	virtio_mmio_unlock(r.t);
	uint64_t before = virtio_rng_bytes(r.rng);
	virtio_mmio_process(r.t, 0);
	CHECK(virtio_rng_bytes(r.rng) > before);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), (uint16_t)(r.q.avail_idx));

	bus_destroy(r.bus);
	dev_destroy(virtio_mmio_dev(r.t));
	virtio_rng_destroy(r.rng);
	vmm_mem_destroy(&r.mem);
}

/* virtio-blk: the check sits where a request is taken off the ring, so the
 * limiter's state says what was taken, however requests complete. */
TEST(ratelimit_blk_takes_requests_only_while_it_has_tokens)
{
	char path[] = "/tmp/ember-rl-blk-XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	REQUIRE(ftruncate(fd, 1 << 20) == 0);
	close(fd);
	struct rlrig r;
	memset(&r, 0, sizeof(r));
	sim_now = 0;
	REQUIRE_OK(
	    vmm_mem_create(&r.mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r.bus));
	struct virtio_mmio_config cfg = {.mem = &r.mem, .interrupt = rl_irq, .opaque = &r};
	struct virtio_blk_options o = {.path = path, .queues = 1};
	struct virtio_blk *blk;
	char err[128];
	REQUIRE_OK(virtio_blk_create(cfg, &o, &blk, &r.t, err, sizeof(err)));
	REQUIRE_OK(dev_register(r.bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r.t)));
	struct ratelimit *rl = virtio_blk_ratelimit(blk);
	/* 10 requests/s, one at a time; 1 MiB/s of data */
	struct ratelimit_config lim = {.bytes_per_sec = 1 << 20, .ops_per_sec = 10, .ops_burst = 1};
	rig_start(&r, rl, &lim, VIRTIO_ID_BLOCK);
	/* two 4 KiB reads of sector 0: header, data, status */
	uint8_t hdr[16] = {0}; /* VIRTIO_BLK_T_IN = 0, sector 0 */
	REQUIRE_OK(vmm_mem_write(&r.mem, BUF_GPA, hdr, 16));
	for (unsigned k = 0; k < 2; k++) {
		unsigned d = k * 3;
		tdrv_desc(&r.q, DESC_GPA, d, BUF_GPA, 16, VRING_DESC_F_NEXT, (uint16_t)(d + 1));
		tdrv_desc(&r.q, DESC_GPA, d + 1, BUF_GPA + 0x1000, 4096,
			  VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, (uint16_t)(d + 2));
		tdrv_desc(&r.q, DESC_GPA, d + 2, BUF_GPA + 0x100 + k, 1, VRING_DESC_F_WRITE, 0);
		tdrv_publish(&r.q, (uint16_t)d);
	}
	virtio_mmio_process(r.t, 0);
	/* one taken: its 4096 data bytes and its operation charged; the other
	 * waits 100 ms for the next operation token */
	CHECK_EQ(rl->bytes.tokens, (1u << 20) - 4096);
	CHECK_EQ(rl->throttled, 1);
	CHECK_EQ(r.wake_at, 100 * MS);
	sim_now = 50 * MS; /* a kick too early: nothing taken */
	virtio_mmio_process(r.t, 0);
	CHECK_EQ(rl->bytes.tokens, 1u << 20); /* 50 ms refilled the 4 KiB */
	CHECK_EQ(rl->throttled, 2);
	sim_now = 100 * MS; /* the timer: the second is taken, nothing waits */
	virtio_mmio_process(r.t, 0);
	CHECK_EQ(rl->throttled, 2);
	CHECK_EQ(rl->ops.tokens, 0);
	CHECK_EQ(rl->bytes.tokens, (1u << 20) - 4096);

	bus_destroy(r.bus);
	dev_destroy(virtio_mmio_dev(r.t));
	virtio_blk_destroy(blk);
	vmm_mem_destroy(&r.mem);
	unlink(path);
}
