/* devices/virtio/rng.c - virtio-rng: guest entropy from getrandom(). */
#include "rng.h"

#include <errno.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <sys/random.h>

struct virtio_rng {
	uint64_t bytes, requests; /* relaxed atomics */
	struct ratelimit rl;	  /* under the transport lock */
	struct vq_buf bufs[64];
};

static void rng_config_read(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
	(void)dev;
	(void)off;
	(void)data;
	(void)len; /* config_size 0: never called */
}

/* Fills up to len bytes of the chain's writable buffers; returns the count. */
static uint32_t fill(const struct vq_chain *c)
{
	uint32_t done = 0;
	for (unsigned i = c->nreadable; i < c->nbufs && done < VIRTIO_RNG_MAX_REQUEST; i++) {
		const struct vq_buf *b = &c->bufs[i];
		uint32_t want = b->len;
		if (want > VIRTIO_RNG_MAX_REQUEST - done)
			want = VIRTIO_RNG_MAX_REQUEST - done;
		uint32_t got = 0;
		while (got < want) {
			ssize_t n = getrandom(b->host + got, want - got, 0);
			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				return done + got; /* give what we have */
			}
			got += (uint32_t)n;
		}
		done += got;
	}
	return done;
}

static void rng_process(void *dev, struct virtio_mmio *t, unsigned qi)
{
	struct virtio_rng *rng = dev;
	struct virtq *q = virtio_mmio_queue(t, qi);
	struct vq_chain c = {.bufs = rng->bufs, .max_bufs = 64};
	int r = 0;
	bool pushed = false;
	uint64_t now = ratelimit_clock(&rng->rl);
	/* a request is taken only while the limiter has tokens, and served
	 * in full (the bucket may go into debt): partial answers would only
	 * multiply the driver's round trips */
	while (ratelimit_ready(&rng->rl, now) && (r = vq_pop(q, &c)) == 1) {
		__atomic_fetch_add(&rng->requests, 1, __ATOMIC_RELAXED);
		pushed = true;
		if (c.error) {
			virtio_mmio_refuse_chain(t, qi, c.head);
			break;
		}
		uint32_t n = fill(&c);
		vq_push(q, c.head, n);
		ratelimit_charge(&rng->rl, n);
		__atomic_fetch_add(&rng->bytes, n, __ATOMIC_RELAXED);
	}
	if (r < 0)
		virtio_mmio_needs_reset(t);
	else if (vq_has_work(q) && !ratelimit_ready(&rng->rl, now))
		ratelimit_throttle(&rng->rl, now); /* the VMM runs the queue again later */
	if (pushed)
		virtio_mmio_signal(t, qi);
}

static const struct virtio_dev_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .nqueues = 1,
    .queue_max = 256,
    .config_size = 0,
    .config_read = rng_config_read,
    .process = rng_process,
};

int virtio_rng_create(struct virtio_mmio_config cfg, struct virtio_rng **out,
		      struct virtio_mmio **out_t)
{
	if (!out || !out_t)
		return -EINVAL;
	*out = NULL;
	*out_t = NULL;
	struct virtio_rng *rng = calloc(1, sizeof(*rng));
	if (!rng)
		return -ENOMEM;
	cfg.ops = &rng_ops;
	cfg.dev = rng;
	int r = virtio_mmio_create(&cfg, out_t);
	if (r < 0) {
		free(rng);
		return r;
	}
	*out = rng;
	return 0;
}

void virtio_rng_destroy(struct virtio_rng *rng)
{
	free(rng);
}

uint64_t virtio_rng_bytes(struct virtio_rng *rng)
{
	return __atomic_load_n(&rng->bytes, __ATOMIC_RELAXED);
}

uint64_t virtio_rng_requests(struct virtio_rng *rng)
{
	return __atomic_load_n(&rng->requests, __ATOMIC_RELAXED);
}

struct ratelimit *virtio_rng_ratelimit(struct virtio_rng *rng)
{
	return &rng->rl;
}
