/* devices/virtio/blk.c - virtio-blk: requests parsed and bounded, I/O on a raw image through io_uring or synchronously. */
#include "blk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SECTOR	       512u
#define HDR_BYTES      16u
#define MAX_BUFS       (VIRTIO_BLK_SEG_MAX + 2)
#define DISCARD_SEG    16u	  /* {u64 sector, u32 num_sectors, u32 flags} */
#define MAX_DZ_SEGS    1u	  /* discard / write-zeroes segments per request */
#define MAX_DZ_SECTORS (1u << 22) /* 2 GiB per discard / write-zeroes segment */
#define QUEUE_MAX      256u	  /* QueueNumMax */
#define RING_MAX       4096u	  /* io_uring entries at most */
#define NO_STATUS      0xffu	  /* a chain without a status byte */

/* One request from when it leaves the available ring until its head is
 * returned. */
struct blk_req {
	struct blk_req *next; /* free list */
	unsigned q;
	uint32_t type;
	uint32_t written;  /* data bytes the used length counts on success */
	uint64_t pos;	   /* read/write: the next byte of the image */
	uint64_t left;	   /* read/write: bytes still to transfer */
	struct iovec *iov; /* read/write: the next iovec (into iovs) */
	int niov;
	struct vq_chain chain;
	struct vq_buf bufs[MAX_BUFS];
	struct iovec iovs[MAX_BUFS];
};

struct blk_queue {
	struct blk_req *reqs; /* depth of them, untouched until first used */
	unsigned fresh;	      /* reqs[fresh..depth) never used yet */
	struct blk_req *free; /* returned ones */
	unsigned inflight;
	bool stalled; /* stopped at the in-flight limit with buffers left */
	bool pushed;  /* used entries not yet signalled */
};

struct virtio_blk {
	struct virtio_dev_ops ops; /* per instance: the queue count varies */
	struct virtio_mmio *t;
	int fd;
	int fd_buffered; /* cache=none: a second, buffered fd for unaligned requests; else -1 */
	bool read_only, block_device, direct;
	uint32_t dio_mem_align, dio_off_align; /* cache=none */
	uint64_t capacity;		       /* sectors */
	uint64_t size;			       /* the image's bytes when opened */
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_stats stats; /* under the transport lock */
	bool uring;
	struct io_uring ring;
	int efd;	  /* the ring's completion eventfd, or -1 */
	unsigned in_ring; /* requests submitted and not reaped */
	unsigned depth;
	struct blk_queue q[VIRTIO_BLK_MAX_QUEUES];
	struct ratelimit rl; /* under the transport lock */
};

uint64_t virtio_blk_capacity(const struct virtio_blk *blk)
{
	return blk->capacity;
}

int virtio_blk_resize(struct virtio_blk *blk, uint64_t bytes, char *msg, size_t msglen)
{
	struct stat st;
	int r = 0;
	virtio_mmio_lock(blk->t);
	uint64_t now = blk->capacity * SECTOR;
	if (blk->read_only) {
		r = -EROFS;
		snprintf(msg, msglen, "the disk is read-only");
	} else if (blk->block_device) {
		r = -EOPNOTSUPP;
		snprintf(msg, msglen, "the disk is a block device: resize it on the host");
	} else if (bytes % SECTOR) {
		r = -EINVAL;
		snprintf(msg, msglen, "%" PRIu64 " bytes is not a multiple of %u", bytes, SECTOR);
	} else if (bytes < now) {
		r = -EINVAL;
		snprintf(msg, msglen,
			 "%" PRIu64 " bytes is less than its %" PRIu64 " (shrinking is refused)",
			 bytes, now);
	} else if (bytes > INT64_MAX) {
		r = -EFBIG;
		snprintf(msg, msglen, "%" PRIu64 " bytes is too large", bytes);
	} else if (bytes != now) {
		if (fstat(blk->fd, &st) < 0 ||
		    ((uint64_t)st.st_size < bytes && ftruncate(blk->fd, (off_t)bytes) < 0)) {
			r = -errno;
			snprintf(msg, msglen, "cannot grow the image to %" PRIu64 " bytes: %s",
				 bytes, strerror(errno));
		} else {
			blk->capacity = bytes / SECTOR;
			virtio_mmio_config_changed(blk->t);
		}
	}
	virtio_mmio_unlock(blk->t);
	return r;
}

const char *virtio_blk_engine_name(const struct virtio_blk *blk)
{
	return blk->uring ? "io_uring" : "sync";
}

bool virtio_blk_direct(const struct virtio_blk *blk)
{
	return blk->direct;
}

int virtio_blk_event_fd(const struct virtio_blk *blk)
{
	return blk->uring ? blk->efd : -1;
}

void virtio_blk_get_stats(struct virtio_blk *blk, struct virtio_blk_stats *out)
{
	virtio_mmio_lock(blk->t);
	*out = blk->stats;
	virtio_mmio_unlock(blk->t);
}

unsigned virtio_blk_inflight(struct virtio_blk *blk)
{
	virtio_mmio_lock(blk->t);
	unsigned n = 0;
	for (unsigned i = 0; i < blk->ops.nqueues; i++)
		n += blk->q[i].inflight;
	virtio_mmio_unlock(blk->t);
	return n;
}

static void blk_config_read(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
	struct virtio_blk *blk = dev;
	struct virtio_blk_config c;
	memset(&c, 0, sizeof(c));
	c.capacity = blk->capacity;
	c.seg_max = VIRTIO_BLK_SEG_MAX;
	c.blk_size = SECTOR;
	c.num_queues = (uint16_t)blk->ops.nqueues;
	c.max_discard_sectors = MAX_DZ_SECTORS;
	c.max_discard_seg = MAX_DZ_SEGS;
	c.discard_sector_alignment = 4096 / SECTOR;
	c.max_write_zeroes_sectors = MAX_DZ_SECTORS;
	c.max_write_zeroes_seg = MAX_DZ_SEGS;
	c.write_zeroes_may_unmap = 1;
	if (off >= sizeof(c) || len > sizeof(c) - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, (const uint8_t *)&c + off, len);
}

/* Bytes [sector * 512, + bytes) inside the disk? */
static bool in_range(const struct virtio_blk *blk, uint64_t sector, uint64_t bytes)
{
	uint64_t n = bytes / SECTOR;
	return bytes % SECTOR == 0 && sector <= blk->capacity && n <= blk->capacity - sector;
}

/* Drops the first r bytes of an iovec array (a short transfer). */
static void iov_advance(struct iovec **iov, int *n, size_t r)
{
	while (*n > 0 && r >= (*iov)->iov_len) {
		r -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n > 0 && r > 0) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + r;
		(*iov)->iov_len -= r;
	}
}

/* The whole of a read or write, synchronously on fd. */
static int xfer_sync(int fd, struct blk_req *rq, bool write)
{
	while (rq->left > 0) {
		ssize_t r = write ? pwritev(fd, rq->iov, rq->niov, (off_t)rq->pos)
				  : preadv(fd, rq->iov, rq->niov, (off_t)rq->pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		rq->pos += (uint64_t)r;
		rq->left -= (uint64_t)r;
		iov_advance(&rq->iov, &rq->niov, (size_t)r);
	}
	return 0;
}

/* cache=none: may the request go to the O_DIRECT fd as it is? */
static bool dio_aligned(const struct virtio_blk *blk, const struct blk_req *rq)
{
	uint64_t off = blk->dio_off_align - 1, mem = blk->dio_mem_align - 1;
	if ((rq->pos | rq->left) & off)
		return false;
	for (int i = 0; i < rq->niov; i++)
		if (((uintptr_t)rq->iov[i].iov_base & mem) || (rq->iov[i].iov_len & off))
			return false;
	return true;
}

static int zero_range(struct virtio_blk *blk, uint64_t pos, uint64_t len, bool unmap)
{
	if (blk->block_device) {
		uint64_t range[2] = {pos, len};
		return ioctl(blk->fd, unmap ? BLKDISCARD : BLKZEROOUT, range) < 0 ? -errno : 0;
	}
	int mode = unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;
	if (fallocate(blk->fd, mode, (off_t)pos, (off_t)len) == 0)
		return 0;
	if (!unmap && (errno == EOPNOTSUPP || errno == ENOSYS) &&
	    fallocate(blk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)pos,
		      (off_t)len) == 0)
		return 0; /* a hole reads as zeros too */
	if (unmap || (errno != EOPNOTSUPP && errno != ENOSYS))
		return -errno;
	/* no fallocate at all (9p, some NFS): write-zeroes still must zero */
	static const uint8_t zeros[65536] __attribute__((aligned(4096))); /* O_DIRECT too */
	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ssize_t w = pwrite(blk->fd, zeros, n, (off_t)pos);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		pos += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/* Discard or write-zeroes: segments in the readable data after the header. */
static int discard(struct virtio_blk *blk, const struct vq_chain *c, bool zeroes)
{
	uint64_t bytes = c->readable_len - HDR_BYTES;
	if (bytes == 0 || bytes % DISCARD_SEG || bytes / DISCARD_SEG > MAX_DZ_SEGS)
		return -EINVAL;
	for (uint64_t i = 0; i < bytes / DISCARD_SEG; i++) {
		uint8_t seg[DISCARD_SEG];
		if (vq_chain_read(c, HDR_BYTES + i * DISCARD_SEG, seg, DISCARD_SEG) != DISCARD_SEG)
			return -EINVAL;
		uint64_t sector;
		uint32_t num, flags;
		memcpy(&sector, seg, 8);
		memcpy(&num, seg + 8, 4);
		memcpy(&flags, seg + 12, 4);
		if (num == 0 || num > MAX_DZ_SECTORS ||
		    !in_range(blk, sector, (uint64_t)num * SECTOR))
			return -EINVAL;
		/* discard: only the unmap bit is defined, and only for write-zeroes */
		if ((flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
		    (!zeroes && (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)))
			return -EINVAL;
		bool unmap = !zeroes || (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
		int r = zero_range(blk, sector * SECTOR, (uint64_t)num * SECTOR, unmap);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Returns rq's head to the driver with its status (push false: dropped, for
 * a reset), and rq to its queue's free list. */
static void complete(struct virtio_blk *blk, struct blk_req *rq, uint8_t status, bool push)
{
	struct blk_queue *bq = &blk->q[rq->q];
	struct virtq *q = push ? virtio_mmio_queue(blk->t, rq->q) : NULL;
	if (q && q->enabled) {
		uint32_t len = 0;
		if (status != NO_STATUS) {
			vq_chain_write(&rq->chain, rq->chain.writable_len - 1, &status, 1);
			len = (status == VIRTIO_BLK_S_OK ? rq->written : 0) + 1;
		}
		vq_push(q, rq->chain.head, len);
		bq->pushed = true;
	}
	rq->next = bq->free;
	bq->free = rq;
	bq->inflight--;
}

static void complete_r(struct virtio_blk *blk, struct blk_req *rq, int r)
{
	if (r < 0)
		blk->stats.errors++;
	complete(blk, rq, r < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, true);
}

/* io_uring: the next part of a read or write, or a flush, onto the ring.
 * Returns 0 or -EAGAIN (no submission entry: cannot happen while the ring
 * has an entry per request, kept as a guard). */
static int submit(struct virtio_blk *blk, struct blk_req *rq)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&blk->ring);
	if (!sqe) {
		io_uring_submit(&blk->ring);
		sqe = io_uring_get_sqe(&blk->ring);
	}
	if (!sqe)
		return -EAGAIN;
	if (rq->type == VIRTIO_BLK_T_FLUSH)
		io_uring_prep_fsync(sqe, blk->fd, IORING_FSYNC_DATASYNC);
	else if (rq->type == VIRTIO_BLK_T_OUT)
		io_uring_prep_writev(sqe, blk->fd, rq->iov, (unsigned)rq->niov, rq->pos);
	else
		io_uring_prep_readv(sqe, blk->fd, rq->iov, (unsigned)rq->niov, rq->pos);
	io_uring_sqe_set_data(sqe, rq);
	blk->in_ring++;
	return 0;
}

/* A read (T_IN) or write (T_OUT) of the chain's data [off, off + len) at
 * sector: on the ring, or done here (sync engine, unaligned cache=none). */
static void start_rw(struct virtio_blk *blk, struct blk_req *rq, uint64_t sector, uint64_t off,
		     uint64_t len)
{
	bool write = rq->type == VIRTIO_BLK_T_OUT;
	int n = vq_chain_iov(&rq->chain, !write, off, len, rq->iovs, MAX_BUFS);
	if (n < 0) {
		complete_r(blk, rq, n);
		return;
	}
	rq->iov = rq->iovs;
	rq->niov = n;
	rq->pos = sector * SECTOR;
	rq->left = len;
	rq->written = write ? 0 : (uint32_t)len;
	int fd = blk->fd;
	if (blk->direct && !dio_aligned(blk, rq)) {
		blk->stats.bounced++;
		fd = blk->fd_buffered;
	} else if (blk->uring && len > 0 && submit(blk, rq) == 0) {
		return;
	}
	complete_r(blk, rq, xfer_sync(fd, rq, write));
}

static void start_flush(struct virtio_blk *blk, struct blk_req *rq)
{
	if (blk->read_only) {
		complete_r(blk, rq, 0);
		return;
	}
	if (blk->uring && submit(blk, rq) == 0)
		return;
	int r = fdatasync(blk->fd) < 0 ? -errno : 0;
	if (r == 0)
		blk->stats.synced++;
	complete_r(blk, rq, r);
}

/* Parses the request rq holds and starts it: it completes here (get-id,
 * discard, write-zeroes, refusals, the sync engine) or on the ring. */
static void start(struct virtio_blk *blk, struct blk_req *rq)
{
	const struct vq_chain *c = &rq->chain;
	struct virtio_blk_stats *st = &blk->stats;
	uint8_t hdr[HDR_BYTES];
	rq->written = 0;
	if (c->error || c->readable_len < HDR_BYTES || c->writable_len < 1 ||
	    vq_chain_read(c, 0, hdr, HDR_BYTES) != HDR_BYTES) {
		st->bad_chains++;
		bool has_status = !c->error && c->writable_len >= 1;
		/* no status byte the device could write: returned with 0 bytes, a
		 * silent completion the driver could take for success otherwise;
		 * the device needs a reset (as virtio_mmio_refuse_chain says) */
		if (!has_status)
			virtio_mmio_needs_reset(blk->t);
		complete(blk, rq, has_status ? VIRTIO_BLK_S_IOERR : NO_STATUS, true);
		return;
	}
	uint64_t sector;
	memcpy(&rq->type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	uint64_t in_data = c->writable_len - 1; /* device-writable bytes before the status */
	uint64_t out_data = c->readable_len - HDR_BYTES;
	switch (rq->type) {
	case VIRTIO_BLK_T_IN:
		st->reads++;
		if (!in_range(blk, sector, in_data))
			complete_r(blk, rq, -EINVAL);
		else
			start_rw(blk, rq, sector, 0, in_data);
		return;
	case VIRTIO_BLK_T_OUT:
		st->writes++;
		if (blk->read_only)
			complete_r(blk, rq, -EROFS);
		else if (!in_range(blk, sector, out_data))
			complete_r(blk, rq, -EINVAL);
		else
			start_rw(blk, rq, sector, HDR_BYTES, out_data);
		return;
	case VIRTIO_BLK_T_FLUSH:
		st->flushes++;
		start_flush(blk, rq);
		return;
	case VIRTIO_BLK_T_GET_ID: {
		st->get_ids++;
		uint64_t n = in_data < VIRTIO_BLK_ID_BYTES ? in_data : VIRTIO_BLK_ID_BYTES;
		rq->written = (uint32_t)vq_chain_write(c, 0, blk->serial, n);
		complete_r(blk, rq, 0);
		return;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (rq->type == VIRTIO_BLK_T_DISCARD)
			st->discards++;
		else
			st->write_zeroes++;
		complete_r(blk, rq,
			   blk->read_only ? -EROFS
					  : discard(blk, c, rq->type == VIRTIO_BLK_T_WRITE_ZEROES));
		return;
	default:
		st->unsupported++;
		complete(blk, rq, VIRTIO_BLK_S_UNSUPP, true);
		return;
	}
}

/* What a request costs the bandwidth bucket: its data bytes (the chain
 * without the 16-byte header and the status byte). */
static uint64_t blk_request_bytes(const struct vq_chain *c)
{
	uint64_t n = c->readable_len + c->writable_len;
	return n > HDR_BYTES + 1 ? n - HDR_BYTES - 1 : 0;
}

/*
 * The one place a request leaves queue qi's available ring (lock held).
 * NULL when the ring is empty or broken (then DEVICE_NEEDS_RESET), or when
 * the queue has its limit of requests in flight (then it is marked stalled:
 * virtio_blk_poll comes back to it). A check that holds requests back (a
 * rate limit) belongs here, before vq_pop.
 */
static struct blk_req *take_request(struct virtio_blk *blk, unsigned qi)
{
	struct blk_queue *bq = &blk->q[qi];
	struct virtq *q = virtio_mmio_queue(blk->t, qi);
	if (!bq->free && bq->fresh == blk->depth) {
		bq->stalled = vq_has_work(q);
		return NULL;
	}
	/* the rate limit: no token, no request (the VMM runs the queues again
	 * when they are back); a request taken is charged in full */
	uint64_t now = ratelimit_clock(&blk->rl);
	if (!ratelimit_ready(&blk->rl, now)) {
		if (vq_has_work(q))
			ratelimit_throttle(&blk->rl, now);
		return NULL;
	}
	/* reused ones first: the pool's pages are touched only as deep as the
	 * guest ever went (the VMM's RSS) */
	struct blk_req *rq = bq->free ? bq->free : &bq->reqs[bq->fresh];
	rq->q = qi;
	rq->chain = (struct vq_chain){.bufs = rq->bufs, .max_bufs = MAX_BUFS};
	int r = vq_pop(q, &rq->chain);
	if (r < 0)
		virtio_mmio_needs_reset(blk->t);
	if (r != 1)
		return NULL;
	ratelimit_charge(&blk->rl, blk_request_bytes(&rq->chain));
	if (rq == bq->free)
		bq->free = rq->next;
	else
		bq->fresh++;
	bq->inflight++;
	if (bq->inflight > blk->stats.inflight_max)
		blk->stats.inflight_max = bq->inflight;
	return rq;
}

/* Lock held: interrupts for the queues that returned heads. */
static void signal_pushed(struct virtio_blk *blk)
{
	for (unsigned i = 0; i < blk->ops.nqueues; i++) {
		if (blk->q[i].pushed) {
			blk->q[i].pushed = false;
			virtio_mmio_signal(blk->t, i);
		}
	}
}

static void blk_process(void *dev, struct virtio_mmio *t, unsigned qi)
{
	(void)t;
	struct virtio_blk *blk = dev;
	struct blk_req *rq;
	/* a refused chain stops the device until the driver resets it */
	while (!(virtio_mmio_status(blk->t) & VIRTIO_CONFIG_S_NEEDS_RESET) &&
	       (rq = take_request(blk, qi)))
		start(blk, rq);
	if (blk->uring)
		io_uring_submit(&blk->ring);
	signal_pushed(blk);
}

/* One completion from the ring (lock held). push false: a reset drops it. */
static void reaped(struct virtio_blk *blk, struct blk_req *rq, int res, bool push)
{
	blk->in_ring--;
	int r = res < 0 ? res : 0;
	if (rq->type == VIRTIO_BLK_T_FLUSH) {
		if (res == 0)
			blk->stats.synced++;
	} else if (res == 0 && rq->left > 0) {
		r = -EIO; /* end of file: the image shrank under us */
	} else if (res > 0 && (uint64_t)res < rq->left) {
		/* a short transfer: the rest goes back on the ring */
		rq->pos += (uint64_t)res;
		rq->left -= (uint64_t)res;
		iov_advance(&rq->iov, &rq->niov, (size_t)res);
		if (push && submit(blk, rq) == 0)
			return;
		r = -EIO;
	}
	if (push)
		complete_r(blk, rq, r);
	else
		complete(blk, rq, NO_STATUS, false);
}

/* Lock held: everything the ring has completed. */
static void reap(struct virtio_blk *blk, bool push)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&blk->ring, head, cqe)
	{
		n++;
		reaped(blk, io_uring_cqe_get_data(cqe), cqe->res, push);
	}
	io_uring_cq_advance(&blk->ring, n);
}

/* Lock held: waits until nothing is on the ring; returns what was there. */
static unsigned wait_ring(struct virtio_blk *blk, bool push)
{
	unsigned n = blk->in_ring;
	while (blk->uring && blk->in_ring > 0) {
		int r = io_uring_submit_and_wait(&blk->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			break; /* cannot wait: a ring this device set up itself */
		reap(blk, push);
	}
	return n;
}

void virtio_blk_poll(struct virtio_blk *blk, bool refill)
{
	uint32_t stalled = 0;
	virtio_mmio_lock(blk->t);
	if (blk->uring) {
		reap(blk, true);
		io_uring_submit(&blk->ring);
	}
	signal_pushed(blk);
	for (unsigned i = 0; refill && i < blk->ops.nqueues; i++) {
		if (blk->q[i].stalled && (blk->q[i].free || blk->q[i].fresh < blk->depth)) {
			blk->q[i].stalled = false;
			stalled |= 1u << i;
		}
	}
	virtio_mmio_unlock(blk->t);
	for (unsigned i = 0; i < blk->ops.nqueues; i++)
		if (stalled & (1u << i))
			virtio_mmio_process(blk->t, i); /* checks DRIVER_OK and the queue */
}

unsigned virtio_blk_drain(struct virtio_blk *blk)
{
	virtio_mmio_lock(blk->t);
	unsigned n = wait_ring(blk, true);
	signal_pushed(blk);
	virtio_mmio_unlock(blk->t);
	return n;
}

/* Driver reset (lock held): the requests in flight finish and are dropped. */
static void blk_reset(void *dev)
{
	struct virtio_blk *blk = dev;
	wait_ring(blk, false);
	for (unsigned i = 0; i < blk->ops.nqueues; i++) {
		blk->q[i].stalled = false;
		blk->q[i].pushed = false;
	}
}

static int lock_image(int fd, bool read_only)
{
	struct flock fl = {.l_type = read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
}

/* cache=none: the direct-I/O alignment of the image (statx, else the
 * block device's logical block size, else a page). */
static void dio_alignment(struct virtio_blk *blk)
{
	struct statx sx;
	blk->dio_mem_align = blk->dio_off_align = 4096;
	if (statx(blk->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align && sx.stx_dio_mem_align) {
		blk->dio_mem_align = sx.stx_dio_mem_align;
		blk->dio_off_align = sx.stx_dio_offset_align;
		return;
	}
	int ssz = 0;
	if (blk->block_device && ioctl(blk->fd, BLKSSZGET, &ssz) == 0 && ssz > 0)
		blk->dio_mem_align = blk->dio_off_align = (uint32_t)ssz;
}

/* The request pool (depth per queue) and, unless engine=sync, the ring. */
static int setup_engine(struct virtio_blk *blk, const struct virtio_blk_options *opt, char *err,
			size_t errlen)
{
	unsigned nq = opt->queues;
	blk->depth = opt->depth ? opt->depth : VIRTIO_BLK_DEPTH;
	if (blk->depth > QUEUE_MAX)
		blk->depth = QUEUE_MAX;
	for (unsigned i = 0; i < nq; i++) {
		struct blk_queue *bq = &blk->q[i];
		bq->reqs = calloc(blk->depth, sizeof(*bq->reqs));
		if (!bq->reqs) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	if (opt->engine == VIRTIO_BLK_ENGINE_SYNC)
		return 0;
	unsigned entries = 1;
	while (entries < nq * blk->depth && entries < RING_MAX)
		entries <<= 1;
	int r = io_uring_queue_init(entries, &blk->ring, 0);
	if (r < 0) {
		if (opt->engine == VIRTIO_BLK_ENGINE_AUTO)
			return 0; /* the synchronous engine then */
		snprintf(err, errlen, "engine=io_uring: io_uring unavailable: %s", strerror(-r));
		return r;
	}
	blk->uring = true;
	blk->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (blk->efd < 0) {
		r = -errno;
	} else {
		r = io_uring_register_eventfd(&blk->ring, blk->efd);
	}
	if (r < 0)
		snprintf(err, errlen, "io_uring completion eventfd: %s", strerror(-r));
	return r;
}

/* The saved state: what the driver saw of the disk (its size, read-only,
 * serial), to refuse a load on an image that changed. Paused means no
 * request in flight (vmm_virtio_quiesce drained them). Lock held. */
static int blk_save(void *dev, struct vmm_state_w *w)
{
	struct virtio_blk *blk = dev;
	unsigned inflight = 0;
	for (unsigned i = 0; i < blk->ops.nqueues; i++)
		inflight += blk->q[i].inflight;
	if (inflight || blk->in_ring)
		return -EBUSY;
	vmm_sw_begin(w, "virtio-blk", 1);
	vmm_sw_u64(w, blk->size);
	vmm_sw_u64(w, blk->capacity);
	vmm_sw_bool(w, blk->read_only);
	vmm_sw_bytes(w, blk->serial, sizeof(blk->serial));
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int blk_load(void *dev, struct vmm_state_r *r, uint64_t features)
{
	(void)features;
	struct virtio_blk *blk = dev;
	uint32_t version = 1;
	char serial[sizeof(blk->serial)];
	vmm_sr_begin(r, "virtio-blk", &version);
	uint64_t size = vmm_sr_u64(r);
	uint64_t capacity = vmm_sr_u64(r);
	bool read_only = vmm_sr_bool(r);
	vmm_sr_bytes(r, serial, sizeof(serial));
	if (size != blk->size || capacity != blk->capacity)
		return vmm_sr_fail(r, -EINVAL,
				   "the disk image changed size: %llu bytes when saved, %llu now",
				   (unsigned long long)size, (unsigned long long)blk->size);
	if (read_only != blk->read_only)
		return vmm_sr_fail(r, -EINVAL, "the disk was %s when saved, is %s now",
				   read_only ? "read-only" : "writable",
				   blk->read_only ? "read-only" : "writable");
	if (memcmp(serial, blk->serial, sizeof(serial)))
		return vmm_sr_fail(r, -EINVAL, "the disk's serial changed");
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	return 0;
}

int virtio_blk_create(struct virtio_mmio_config cfg, const struct virtio_blk_options *opt,
		      struct virtio_blk **out, struct virtio_mmio **out_t, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	if (!opt || !opt->path || !out || !out_t || opt->queues == 0 ||
	    opt->queues > VIRTIO_BLK_MAX_QUEUES || opt->engine > VIRTIO_BLK_ENGINE_IO_URING ||
	    (opt->serial && strlen(opt->serial) > VIRTIO_BLK_ID_BYTES)) {
		snprintf(err, errlen, "bad disk options");
		return -EINVAL;
	}
	*out = NULL;
	*out_t = NULL;
	struct virtio_blk *blk = calloc(1, sizeof(*blk));
	if (!blk) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	blk->fd_buffered = blk->efd = -1;
	int flags = (opt->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	int r = 0;
	blk->fd = open(opt->path, flags | (opt->direct ? O_DIRECT : 0));
	struct stat st;
	if (blk->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s%s", opt->path, strerror(-r),
			 opt->direct && r == -EINVAL
			     ? " (cache=none: the file system refuses O_DIRECT)"
			     : "");
	} else if (fstat(blk->fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", opt->path, strerror(-r));
	} else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		r = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file or a block device", opt->path);
	} else if ((r = lock_image(blk->fd, opt->read_only)) < 0) {
		snprintf(err, errlen, "%s: %s", opt->path,
			 r == -EBUSY ? "locked by another process (another VM uses it)"
				     : strerror(-r));
	} else if (opt->direct && (blk->fd_buffered = open(opt->path, flags)) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", opt->path, strerror(-r));
	}
	uint64_t size = 0;
	if (r == 0) {
		blk->block_device = S_ISBLK(st.st_mode);
		if (blk->block_device && ioctl(blk->fd, BLKGETSIZE64, &size) < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: BLKGETSIZE64: %s", opt->path, strerror(-r));
		} else if (!blk->block_device) {
			size = (uint64_t)st.st_size;
		}
	}
	if (r == 0)
		r = setup_engine(blk, opt, err, errlen);
	if (r < 0) {
		virtio_blk_destroy(blk);
		return r;
	}
	blk->direct = opt->direct;
	if (blk->direct)
		dio_alignment(blk);
	blk->capacity = size / SECTOR; /* a partial last sector is not reachable */
	blk->size = size;
	blk->read_only = opt->read_only;
	if (opt->serial)
		memcpy(blk->serial, opt->serial, strlen(opt->serial));
	blk->ops = (struct virtio_dev_ops){
	    .name = "virtio-blk",
	    .device_id = VIRTIO_ID_BLOCK,
	    .nqueues = opt->queues,
	    .queue_max = QUEUE_MAX,
	    .features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
			(1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_DISCARD) |
			(1ull << VIRTIO_BLK_F_WRITE_ZEROES) |
			(opt->queues > 1 ? 1ull << VIRTIO_BLK_F_MQ : 0) |
			(opt->read_only ? 1ull << VIRTIO_BLK_F_RO : 0),
	    .config_size = sizeof(struct virtio_blk_config),
	    .config_read = blk_config_read,
	    .process = blk_process,
	    .reset = blk_reset,
	    .save = blk_save,
	    .load = blk_load,
	};
	cfg.ops = &blk->ops;
	cfg.dev = blk;
	r = virtio_mmio_create(&cfg, &blk->t);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the virtio-mmio transport: %s", strerror(-r));
		virtio_blk_destroy(blk);
		return r;
	}
	*out = blk;
	*out_t = blk->t;
	return 0;
}

void virtio_blk_destroy(struct virtio_blk *blk)
{
	if (!blk)
		return;
	if (blk->uring) {
		wait_ring(blk, false); /* the transport is gone: nothing to lock */
		io_uring_queue_exit(&blk->ring);
	}
	if (blk->efd >= 0)
		close(blk->efd);
	for (unsigned i = 0; i < VIRTIO_BLK_MAX_QUEUES; i++)
		free(blk->q[i].reqs);
	if (blk->fd_buffered >= 0)
		close(blk->fd_buffered);
	if (blk->fd >= 0)
		close(blk->fd); /* drops the OFD lock */
	free(blk);
}

struct ratelimit *virtio_blk_ratelimit(struct virtio_blk *blk)
{
	return &blk->rl;
}
