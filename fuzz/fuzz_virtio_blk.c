/* fuzz/fuzz_virtio_blk.c - libFuzzer target: a guest's memory holding virtio-blk requests on a ready queue; the device serves them. */
#include "fuzz_common.h"
#include "../tests/unit/virtio_mmio_access.h"
#include "../devices/virtio/blk.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the queue size (1 << (b % 5): 1..16) and byte 1 the
 * ring features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC) and the engine (bit
 * 2: io_uring, whose requests in flight are then drained; else sync); the rest is the
 * first bytes of 64 KiB of guest RAM: descriptors at 0, available ring at
 * 0x1000, used ring at 0x2000, requests anywhere. The disk is a 64 KiB
 * temporary image. Invariants: the device answers every chain it takes
 * (used.idx == what it popped) or marks itself DEVICE_NEEDS_RESET, the
 * image never grows, and the used lengths never exceed what the chain
 * offered.
 */
#define MEM	  (64u << 10)
#define DISK	  (64u << 10)
#define AVAIL_GPA 0x1000
#define USED_GPA  0x2000

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct tdrv_mmio m; /* the window at 0 on bus */
	struct virtio_blk *blk;
	struct virtio_mmio *t;
	int img;
};

static struct rig *rig(bool uring)
{
	static struct rig rigs[2];
	static int ready[2];
	struct rig *rp = &rigs[uring];
	if (ready[uring])
		return rp;
	char path[] = "/tmp/ember-fuzz-blk-XXXXXX";
	rp->img = mkstemp(path);
	if (rp->img < 0 || ftruncate(rp->img, DISK) < 0)
		abort();
	if (vmm_mem_create(&rp->mem, MEM, MEM, MEM, EMBER_MEM_ANON, false, NULL) < 0 ||
	    bus_create("mmio", UINT64_MAX, &rp->bus) < 0)
		abort();
	struct virtio_mmio_config cfg = {.mem = &rp->mem};
	struct virtio_blk_options o = {.path = path,
				       .queues = 1,
				       .serial = "fuzz",
				       .engine = uring ? VIRTIO_BLK_ENGINE_IO_URING
						       : VIRTIO_BLK_ENGINE_SYNC};
	if (virtio_blk_create(cfg, &o, &rp->blk, &rp->t, NULL, 0) < 0 ||
	    dev_register(rp->bus, 0, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(rp->t)) < 0)
		abort();
	rp->m = (struct tdrv_mmio){.bus = rp->bus};
	unlink(path);
	ready[uring] = 1;
	return rp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	bool uring = data[1] & 4;
	struct rig *r = rig(uring);
	uint16_t qsize = (uint16_t)(1u << (data[0] % 5));
	uint64_t features = (1ull << VIRTIO_F_VERSION_1) |
			    ((data[1] & 1) ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
			    ((data[1] & 2) ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0);
	memset(r->mem.host, 0, MEM);
	memcpy(r->mem.host, data + 2, size - 2 < MEM ? size - 2 : MEM);
	/* the driver zeroes the used ring's flags and index before handing the
	 * queue over (the device never rewrites them until it returns a chain) */
	memset(r->mem.host + USED_GPA, 0, 4);
	/* the driver's setup, as Linux does it */
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, 0);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	tdrv_accept(&r->m, features);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_SEL, 0);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NUM, qsize);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, AVAIL_GPA);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_USED_LOW, USED_GPA);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_READY, 1);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		    VIRTIO_CONFIG_S_DRIVER_OK);
	FUZZ_CHECK(tdrv_rd(&r->m, VIRTIO_MMIO_QUEUE_READY) == 1);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* served at once (no notify callback) */
	if (uring) {
		virtio_blk_drain(r->blk); /* what a pause does: all of them complete */
		FUZZ_CHECK(virtio_blk_inflight(r->blk) == 0);
	}

	virtio_mmio_lock(r->t);
	struct virtq *q = virtio_mmio_queue(r->t, 0);
	uint64_t popped = q->popped, pushed = q->pushed;
	virtio_mmio_unlock(r->t);
	uint8_t status = (uint8_t)tdrv_rd(&r->m, VIRTIO_MMIO_STATUS);
	FUZZ_CHECK(popped == pushed);
	(void)status; /* NEEDS_RESET or not, every chain taken was answered */
	uint16_t used_idx;
	memcpy(&used_idx, r->mem.host + USED_GPA + 2, 2);
	FUZZ_CHECK(used_idx == (uint16_t)pushed);
	struct stat st;
	FUZZ_CHECK(fstat(r->img, &st) == 0 && st.st_size == DISK);
	return 0;
}
