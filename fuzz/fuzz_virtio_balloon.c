/* fuzz/fuzz_virtio_balloon.c - libFuzzer target: a guest's memory holding virtio-balloon inflate, deflate, statistics and free page reporting queues; the device serves them. */
#include "fuzz_vq.h"
#include "../tests/unit/virtio_mmio_access.h"
#include "../devices/virtio/balloon.h"

#include <errno.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __real_vmm_mem_discard(const struct vmm_mem *m, uint64_t gpa, uint64_t len);
int __wrap_vmm_mem_discard(const struct vmm_mem *m, uint64_t gpa, uint64_t len);

/*
 * Input: byte 0 picks the queue size (1 << (b % 5): 1..16), byte 1 the ring
 * features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC) and the device's (bit 2
 * STATS_VQ, bit 3 REPORTING, bit 4 DEFLATE_ON_OOM), byte 2 the host's
 * target (pages); the rest is the first bytes of 64 KiB of guest RAM (16
 * pages): queue i (inflate, deflate, then stats and reporting as
 * negotiated) has its descriptors at 0x800 * i, available ring at +0x400,
 * used ring at +0x600; buffers and page frames anywhere. Every queue is
 * notified, the host asks for statistics, the stats queue is notified
 * again and the host asks again. The target links with vq_pop, vq_push and
 * vmm_mem_discard wrapped (fuzz_vq.h). Invariants: the device answers every
 * chain it takes (used.idx == popped, in the ring unless the guest's
 * buffers or a page given back cover it), with 0 bytes, but for one stats
 * buffer it holds until the host asks; a refused chain sets
 * DEVICE_NEEDS_RESET; every page it gives back is a whole page inside
 * guest memory; its counters move by what the chains held (4 bytes per
 * inflated or deflated frame, a reported page per 4 KiB of a reporting
 * buffer; pages given back no more than those, frames outside RAM no more
 * than the frames); it changed guest memory only in the used rings and the
 * pages it gave back.
 */
#define MEM  (64u << 10)
#define PAGE 4096u

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct tdrv_mmio m; /* the window at 0 on bus */
	struct virtio_balloon *b;
	struct virtio_mmio *t;
	uint64_t discarded; /* pages given back, as the wrapper saw them */
	uint8_t before[MEM];
};

static struct rig r;

int __wrap_vmm_mem_discard(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
	FUZZ_CHECK(m == &r.mem);
	FUZZ_CHECK(len && gpa % PAGE == 0 && len % PAGE == 0);
	FUZZ_CHECK(vmm_mem_contains(m, gpa, len));
	int ret = __real_vmm_mem_discard(m, gpa, len);
	if (ret == 0) {
		r.discarded += len / PAGE;
		fuzz_vq_allow(gpa, len);
	}
	return ret;
}

static struct rig *rig(void)
{
	static int ready;
	if (ready)
		return &r;
	fuzz_vq_mem_bus(&r.mem, &r.bus, MEM);
	struct virtio_mmio_config cfg = {.mem = &r.mem};
	if (virtio_balloon_create(cfg, &r.b, &r.t) < 0)
		abort();
	fuzz_vq_window(r.bus, r.t, &r.m);
	ready = 1;
	return &r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	struct rig *rp = rig();
	uint16_t qsize = (uint16_t)(1u << (data[0] % 5));
	uint64_t features = fuzz_vq_ring_features(data[1]) |
			    ((data[1] & 4) ? 1ull << VIRTIO_BALLOON_F_STATS_VQ : 0) |
			    ((data[1] & 8) ? 1ull << VIRTIO_BALLOON_F_REPORTING : 0) |
			    ((data[1] & 16) ? 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM : 0);
	bool stats = data[1] & 4, reporting = data[1] & 8;
	unsigned nq = 2 + stats + reporting;
	int sq = stats ? 2 : -1, rq = reporting ? 2 + stats : -1;
	tdrv_wr(&rp->m, VIRTIO_MMIO_STATUS, 0);
	fuzz_vq_reset();
	rp->discarded = 0;
	memset(rp->mem.host, 0, MEM);
	memcpy(rp->mem.host, data + 3, size - 3 < MEM ? size - 3 : MEM);
	for (unsigned q = 0; q < nq; q++)
		memset(rp->mem.host + 0x800 * q + 0x600, 0, 4); /* fresh used rings */
	memcpy(rp->before, rp->mem.host, MEM);
	struct virtio_balloon_stats st0, st;
	virtio_balloon_get_stats(rp->b, &st0);
	tdrv_wr(&rp->m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	tdrv_accept(&rp->m, features);
	FUZZ_CHECK(tdrv_rd(&rp->m, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	for (unsigned q = 0; q < nq; q++)
		fuzz_vq_queue(&rp->m, q, qsize, 0x800 * q, 0x800 * q + 0x400, 0x800 * q + 0x600);
	tdrv_wr(&rp->m, VIRTIO_MMIO_STATUS,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		    VIRTIO_CONFIG_S_DRIVER_OK);
	virtio_balloon_set_target(rp->b, data[2]);
	for (unsigned q = 0; q < nq; q++)
		tdrv_wr(&rp->m, VIRTIO_MMIO_QUEUE_NOTIFY,
			q); /* served at once (no notify callback) */
	/* the host asks for fresh statistics; the driver gives its buffer again */
	int asked = virtio_balloon_request_stats(rp->b);
	FUZZ_CHECK(asked == 0 || asked == -EAGAIN);
	if (sq >= 0) {
		tdrv_wr(&rp->m, VIRTIO_MMIO_QUEUE_NOTIFY, (uint32_t)sq);
		asked = virtio_balloon_request_stats(rp->b);
		FUZZ_CHECK(asked == 0 || asked == -EAGAIN);
	}
	uint32_t target;
	uint64_t v = 0;
	bus_access_u64(rp->bus, VIRTIO_MMIO_CONFIG, &v, 4, false, 0);
	target = (uint32_t)v;
	FUZZ_CHECK(target == data[2]);

	uint8_t status = (uint8_t)tdrv_rd(&rp->m, VIRTIO_MMIO_STATUS);
	virtio_balloon_get_stats(rp->b, &st);
	uint64_t used[4];
	bool refused = false;
	uint64_t frames[2] = {0}, reported = 0;
	for (unsigned q = 0; q < nq; q++) {
		used[q] = 0x800 * q + 0x600;
		virtio_mmio_lock(rp->t);
		struct virtq *vq = virtio_mmio_queue(rp->t, q);
		uint64_t popped = vq->popped, pushed = vq->pushed;
		uint16_t used_idx = vq->used_idx;
		virtio_mmio_unlock(rp->t);
		/* the stats buffer given after the host's last request is held */
		FUZZ_CHECK(popped == pushed || ((int)q == sq && popped == pushed + 1));
		FUZZ_CHECK(used_idx == (uint16_t)pushed);
		if (!fuzz_vq_clobbered(used[q] + 2, 2)) {
			uint16_t ring_idx;
			memcpy(&ring_idx, rp->mem.host + used[q] + 2, 2);
			FUZZ_CHECK(ring_idx == (uint16_t)pushed);
		}
		if (fuzz_vq.overflow)
			continue;
		FUZZ_CHECK(fuzz_vq_unanswered(vq) == popped - pushed);
		for (unsigned i = 0; i < fuzz_vq.n; i++) {
			const struct fuzz_vq_chain *c = &fuzz_vq.c[i];
			if (c->q != vq)
				continue;
			FUZZ_CHECK(c->written == 0);
			if (c->error) {
				refused = true;
				continue;
			}
			if (q < 2)
				frames[q] += c->readable_len / 4;
			if ((int)q == rq)
				for (unsigned j = c->nreadable; j < c->nbufs; j++)
					reported += c->bufs[j].len / PAGE;
		}
	}
	FUZZ_CHECK(!refused || (status & VIRTIO_CONFIG_S_NEEDS_RESET));
	FUZZ_CHECK(st.discarded - st0.discarded == rp->discarded);
	FUZZ_CHECK(st.target_pages == data[2]);
	if (!fuzz_vq.overflow) {
		FUZZ_CHECK(st.inflated - st0.inflated == frames[0]);
		FUZZ_CHECK(st.deflated - st0.deflated == frames[1]);
		FUZZ_CHECK(st.reported - st0.reported == reported);
		FUZZ_CHECK(rp->discarded <= frames[0] + reported);
		FUZZ_CHECK(st.bad_pfns - st0.bad_pfns <= frames[0] + frames[1]);
	}
	FUZZ_CHECK((st.guest_valid >> 10) == 0);
	fuzz_vq_check_writes(rp->mem.host, rp->before, MEM, used, nq, qsize);
	return 0;
}
