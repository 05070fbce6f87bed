/* fuzz/fuzz_virtio_rng.c - libFuzzer target: a guest's memory holding virtio-rng requests on a ready queue; the device fills them. */
#include "fuzz_vq.h"
#include "../tests/unit/virtio_mmio_access.h"
#include "../devices/virtio/rng.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the queue size (1 << (b % 5): 1..16), byte 1 the ring
 * features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC) and the notifications
 * (1 + (b >> 2) % 3); the rest is the first bytes of 64 KiB of guest RAM:
 * descriptors at 0, available ring at 0x1000, used ring at 0x2000, buffers
 * anywhere. The target links with vq_pop/vq_push wrapped (fuzz_vq.h).
 * Invariants: the device answers every chain it takes (used.idx == what it
 * popped, in the ring unless the guest's buffers cover it) or is
 * DEVICE_NEEDS_RESET with the bad chain answered; each answer is a chain it
 * took, with min(writable, VIRTIO_RNG_MAX_REQUEST) bytes for a good chain
 * (never more than the chain's writable buffers) and 0 for a refused one;
 * its byte and request counters move by what it answered; it changed guest
 * memory only in the chains' writable buffers and the used ring.
 */
#define MEM	  (64u << 10)
#define AVAIL_GPA 0x1000
#define USED_GPA  0x2000

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct tdrv_mmio m; /* the window at 0 on bus */
	struct virtio_rng *rng;
	struct virtio_mmio *t;
	uint8_t before[MEM];
};

static struct rig *rig(void)
{
	static struct rig r;
	static int ready;
	if (ready)
		return &r;
	fuzz_vq_mem_bus(&r.mem, &r.bus, MEM);
	struct virtio_mmio_config cfg = {.mem = &r.mem};
	if (virtio_rng_create(cfg, &r.rng, &r.t) < 0)
		abort();
	fuzz_vq_window(r.bus, r.t, &r.m);
	ready = 1;
	return &r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct rig *r = rig();
	uint16_t qsize = (uint16_t)(1u << (data[0] % 5));
	uint64_t features = fuzz_vq_ring_features(data[1]);
	unsigned notifies = 1 + (data[1] >> 2) % 3;
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, 0);
	fuzz_vq_reset();
	memset(r->mem.host, 0, MEM);
	memcpy(r->mem.host, data + 2, size - 2 < MEM ? size - 2 : MEM);
	memset(r->mem.host + USED_GPA, 0, 4); /* the driver's fresh used ring */
	memcpy(r->before, r->mem.host, MEM);
	/* (DRIVER_OK already runs the queue) */
	uint64_t bytes0 = virtio_rng_bytes(r->rng), requests0 = virtio_rng_requests(r->rng);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	tdrv_accept(&r->m, features);
	fuzz_vq_queue(&r->m, 0, qsize, 0, AVAIL_GPA, USED_GPA);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		    VIRTIO_CONFIG_S_DRIVER_OK);
	FUZZ_CHECK(tdrv_rd(&r->m, VIRTIO_MMIO_QUEUE_READY) == 1);
	for (unsigned i = 0; i < notifies; i++)
		tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY,
			0); /* served at once (no notify callback) */

	virtio_mmio_lock(r->t);
	struct virtq *q = virtio_mmio_queue(r->t, 0);
	uint64_t popped = q->popped, pushed = q->pushed;
	uint16_t used_idx = q->used_idx;
	virtio_mmio_unlock(r->t);
	uint8_t status = (uint8_t)tdrv_rd(&r->m, VIRTIO_MMIO_STATUS);
	FUZZ_CHECK(popped == pushed);
	FUZZ_CHECK(used_idx == (uint16_t)pushed);
	if (!fuzz_vq.overflow) {
		FUZZ_CHECK(fuzz_vq_unanswered(q) == 0);
		FUZZ_CHECK(fuzz_vq.n == popped);
		uint64_t written = 0;
		bool refused = false;
		for (unsigned i = 0; i < fuzz_vq.n; i++) {
			const struct fuzz_vq_chain *c = &fuzz_vq.c[i];
			uint64_t want = c->writable_len < VIRTIO_RNG_MAX_REQUEST
					    ? c->writable_len
					    : VIRTIO_RNG_MAX_REQUEST;
			FUZZ_CHECK(c->written == (c->error ? 0 : want));
			refused |= c->error != 0;
			written += c->written;
		}
		FUZZ_CHECK(!refused || (status & VIRTIO_CONFIG_S_NEEDS_RESET));
		FUZZ_CHECK(virtio_rng_bytes(r->rng) - bytes0 == written);
		FUZZ_CHECK(virtio_rng_requests(r->rng) - requests0 == fuzz_vq.n);
	}
	if (!fuzz_vq_clobbered(USED_GPA + 2, 2)) {
		uint16_t ring_idx;
		memcpy(&ring_idx, r->mem.host + USED_GPA + 2, 2);
		FUZZ_CHECK(ring_idx == (uint16_t)pushed);
	}
	const uint64_t used[] = {USED_GPA};
	fuzz_vq_check_writes(r->mem.host, r->before, MEM, used, 1, qsize);
	return 0;
}
