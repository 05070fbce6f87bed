/* fuzz/fuzz_vq.h - for device fuzz targets linked with -Wl,--wrap=vq_pop,--wrap=vq_push: every chain the device takes, and every answer it gives checked against it. */
#ifndef EMBER_FUZZ_VQ_H
#define EMBER_FUZZ_VQ_H

#include "fuzz_common.h"
#include "../tests/unit/virtio_mmio_access.h"
#include "../devices/virtio/virtqueue.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*
 * The target links with --wrap, so the device's (and its transport's)
 * calls of vq_pop and vq_push come here first. Each chain vq_pop hands out
 * is recorded as the device saw it (its buffers, readable and writable
 * lengths); each vq_push must answer a head that was taken and not yet
 * answered on that queue, with a used length no larger than what that
 * chain offered as device-writable. fuzz_vq_reset starts an input's log;
 * fuzz_vq_check_writes then says that the device changed guest memory only
 * in the writable buffers of the chains it took, the queues' used rings
 * and the ranges a target adds (fuzz_vq_allow: e.g. pages a balloon gave
 * back).
 */
#define FUZZ_VQ_MAX_CHAINS 256
#define FUZZ_VQ_MAX_BUFS   64
#define FUZZ_VQ_MAX_ALLOW  64

struct fuzz_vq_chain {
	const struct virtq *q;
	uint16_t head;
	bool answered;
	uint32_t written; /* the used length it was answered with */
	int error;
	unsigned nbufs, nreadable;
	uint64_t readable_len, writable_len;
	struct vq_buf bufs[FUZZ_VQ_MAX_BUFS];
};

static struct {
	unsigned n;
	bool overflow; /* more chains than the log holds: the input is not checked */
	struct fuzz_vq_chain c[FUZZ_VQ_MAX_CHAINS];
	unsigned nallow;
	struct {
		uint64_t gpa, len;
	} allow[FUZZ_VQ_MAX_ALLOW];
} fuzz_vq;

int __real_vq_pop(struct virtq *q, struct vq_chain *chain);
int __real_vq_push(struct virtq *q, uint16_t head, uint32_t written);
int __wrap_vq_pop(struct virtq *q, struct vq_chain *chain);
int __wrap_vq_push(struct virtq *q, uint16_t head, uint32_t written);

static inline void fuzz_vq_reset(void)
{
	fuzz_vq.n = 0;
	fuzz_vq.overflow = false;
	fuzz_vq.nallow = 0;
}

/* Guest memory the device may change besides the chains' writable buffers. */
static inline void fuzz_vq_allow(uint64_t gpa, uint64_t len)
{
	if (fuzz_vq.nallow == FUZZ_VQ_MAX_ALLOW) {
		fuzz_vq.overflow = true;
		return;
	}
	fuzz_vq.allow[fuzz_vq.nallow].gpa = gpa;
	fuzz_vq.allow[fuzz_vq.nallow++].len = len;
}

int __wrap_vq_pop(struct virtq *q, struct vq_chain *chain)
{
	int r = __real_vq_pop(q, chain);
	if (r != 1)
		return r;
	FUZZ_CHECK(chain->nbufs <= chain->max_bufs);
	FUZZ_CHECK(chain->nreadable <= chain->nbufs);
	if (fuzz_vq.n == FUZZ_VQ_MAX_CHAINS || chain->nbufs > FUZZ_VQ_MAX_BUFS) {
		fuzz_vq.overflow = true;
		return r;
	}
	struct fuzz_vq_chain *c = &fuzz_vq.c[fuzz_vq.n++];
	*c = (struct fuzz_vq_chain){.q = q,
				    .head = chain->head,
				    .error = chain->error,
				    .nbufs = chain->nbufs,
				    .nreadable = chain->nreadable,
				    .readable_len = chain->readable_len,
				    .writable_len = chain->writable_len};
	memcpy(c->bufs, chain->bufs, chain->nbufs * sizeof(*c->bufs));
	if (!chain->error) { /* a complete chain: its lengths are its buffers' */
		uint64_t rd = 0, wr = 0;
		for (unsigned i = 0; i < chain->nbufs; i++) {
			FUZZ_CHECK(chain->bufs[i].device_writes == (i >= chain->nreadable));
			*(chain->bufs[i].device_writes ? &wr : &rd) += chain->bufs[i].len;
		}
		FUZZ_CHECK(rd == chain->readable_len && wr == chain->writable_len);
		FUZZ_CHECK(rd + wr <= UINT32_MAX);
	}
	return r;
}

int __wrap_vq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	if (!fuzz_vq.overflow) {
		/* a chain of that head taken from this queue and not answered
		 * (the oldest that offered room for written) */
		struct fuzz_vq_chain *c = NULL;
		bool taken = false;
		for (unsigned i = 0; i < fuzz_vq.n && !c; i++) {
			struct fuzz_vq_chain *x = &fuzz_vq.c[i];
			if (x->q != q || x->head != head || x->answered)
				continue;
			taken = true;
			if (written <= x->writable_len)
				c = x;
		}
		FUZZ_CHECK(taken);
		FUZZ_CHECK(c); /* used length <= what the chain offered as writable */
		c->answered = true;
		c->written = written;
	}
	return __real_vq_push(q, head, written);
}

/* Chains taken from q and not answered. */
static inline unsigned fuzz_vq_unanswered(const struct virtq *q)
{
	unsigned n = 0;
	for (unsigned i = 0; i < fuzz_vq.n; i++)
		n += fuzz_vq.c[i].q == q && !fuzz_vq.c[i].answered;
	return n;
}

/* Whether [gpa, gpa + len) overlaps a chain's writable buffer or an allowed range. */
static inline bool fuzz_vq_clobbered(uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < fuzz_vq.n; i++)
		for (unsigned j = fuzz_vq.c[i].nreadable; j < fuzz_vq.c[i].nbufs; j++) {
			const struct vq_buf *b = &fuzz_vq.c[i].bufs[j];
			if (b->gpa < gpa + len && gpa < b->gpa + b->len)
				return true;
		}
	for (unsigned i = 0; i < fuzz_vq.nallow; i++)
		if (fuzz_vq.allow[i].gpa < gpa + len &&
		    gpa < fuzz_vq.allow[i].gpa + fuzz_vq.allow[i].len)
			return true;
	return false;
}

/* The device changed mem (size bytes at guest address 0; before: its
 * contents when the device started) only in the writable buffers of the
 * chains it took, the used rings (used[i], nused of them, of size qsize)
 * and the allowed ranges. */
static inline void fuzz_vq_check_writes(const uint8_t *mem, const uint8_t *before, uint64_t size,
					const uint64_t *used, unsigned nused, uint16_t qsize)
{
	static uint8_t ok[1u << 20];
	if (fuzz_vq.overflow || size > sizeof(ok) || !memcmp(mem, before, size))
		return;
	memset(ok, 0, size);
	for (unsigned i = 0; i < fuzz_vq.n; i++)
		for (unsigned j = fuzz_vq.c[i].nreadable; j < fuzz_vq.c[i].nbufs; j++) {
			const struct vq_buf *b = &fuzz_vq.c[i].bufs[j];
			FUZZ_CHECK(b->gpa + b->len <= size);
			memset(ok + b->gpa, 1, b->len);
		}
	for (unsigned i = 0; i < fuzz_vq.nallow; i++) {
		FUZZ_CHECK(fuzz_vq.allow[i].gpa + fuzz_vq.allow[i].len <= size);
		memset(ok + fuzz_vq.allow[i].gpa, 1, fuzz_vq.allow[i].len);
	}
	for (unsigned i = 0; i < nused; i++)
		memset(ok + used[i], 1, vq_used_bytes(qsize));
	for (uint64_t a = 0; a < size; a++)
		FUZZ_CHECK(ok[a] ||
			   mem[a] == before[a]); /* written outside what the device may write */
}

/* ---- a device's rig: guest memory, a bus, its window, its queues ---- */

/* size bytes of anonymous guest memory into mem and an MMIO bus into *bus
 * (aborts on failure: the rig is the harness, not the input). */
static inline void fuzz_vq_mem_bus(struct vmm_mem *mem, struct bus **bus, uint64_t size)
{
	if (vmm_mem_create(mem, size, size, size, EMBER_MEM_ANON, false, NULL) < 0 ||
	    bus_create("mmio", UINT64_MAX, bus) < 0)
		abort();
}

/* Registers t's window at 0 on bus and points the test driver m at it. */
static inline void fuzz_vq_window(struct bus *bus, struct virtio_mmio *t, struct tdrv_mmio *m)
{
	if (dev_register(bus, 0, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(t)) < 0)
		abort();
	*m = (struct tdrv_mmio){.bus = bus};
}

/* Queue q: size entries, its descriptor table, available and used rings
 * at those guest addresses, then ready. */
static inline void fuzz_vq_queue(struct tdrv_mmio *m, unsigned q, uint16_t size, uint32_t desc,
				 uint32_t avail, uint32_t used)
{
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_SEL, q);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_NUM, size);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, avail);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_USED_LOW, used);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* VIRTIO_F_VERSION_1 and, from an input byte b, the ring features: bit 0
 * EVENT_IDX, bit 1 INDIRECT_DESC. */
static inline uint64_t fuzz_vq_ring_features(uint8_t b)
{
	return (1ull << VIRTIO_F_VERSION_1) | ((b & 1) ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
	       ((b & 2) ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0);
}

#endif /* EMBER_FUZZ_VQ_H */
