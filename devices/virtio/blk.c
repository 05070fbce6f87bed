/* devices/virtio/blk.c - virtio-blk: requests parsed and bounded, synchronous I/O on a raw image. */
#include "blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct virtio_blk {
	struct virtio_dev_ops ops; /* per instance: the queue count varies */
	struct virtio_mmio *t;
	int fd;
	bool read_only, block_device;
	uint64_t capacity; /* sectors */
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_stats stats; /* under the transport lock */
	struct vq_buf bufs[MAX_BUFS];
	struct iovec iov[MAX_BUFS];
};

uint64_t virtio_blk_capacity(const struct virtio_blk *blk)
{
	return blk->capacity;
}

void virtio_blk_get_stats(struct virtio_blk *blk, struct virtio_blk_stats *out)
{
	virtio_mmio_lock(blk->t);
	*out = blk->stats;
	virtio_mmio_unlock(blk->t);
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

static int rw(struct virtio_blk *blk, const struct vq_chain *c, bool write, uint64_t sector,
	      uint64_t off, uint64_t len)
{
	int n = vq_chain_iov(c, !write, off, len, blk->iov, MAX_BUFS);
	if (n < 0)
		return n;
	uint64_t pos = sector * SECTOR, done = 0;
	struct iovec *iov = blk->iov;
	while (done < len) {
		ssize_t r = write ? pwritev(blk->fd, iov, n, (off_t)(pos + done))
				  : preadv(blk->fd, iov, n, (off_t)(pos + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (uint64_t)r;
		/* a short transfer: skip what was done */
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0 && r > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
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
	return -errno;
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

/* One request; returns the bytes written into the chain (data + status). */
static uint32_t request(struct virtio_blk *blk, const struct vq_chain *c)
{
	struct virtio_blk_stats *st = &blk->stats;
	uint8_t hdr[HDR_BYTES];
	if (c->error || c->readable_len < HDR_BYTES || c->writable_len < 1 ||
	    vq_chain_read(c, 0, hdr, HDR_BYTES) != HDR_BYTES) {
		st->bad_chains++;
		if (!c->error && c->writable_len >= 1) {
			uint8_t s = VIRTIO_BLK_S_IOERR;
			vq_chain_write(c, c->writable_len - 1, &s, 1);
			return 1;
		}
		return 0;
	}
	uint32_t type;
	uint64_t sector;
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	uint64_t in_data = c->writable_len - 1; /* device-writable bytes before the status */
	uint64_t out_data = c->readable_len - HDR_BYTES;
	uint32_t written = 0;
	int r = 0;
	uint8_t status = VIRTIO_BLK_S_OK;
	switch (type) {
	case VIRTIO_BLK_T_IN:
		st->reads++;
		if (!in_range(blk, sector, in_data))
			r = -EINVAL;
		else if ((r = rw(blk, c, false, sector, 0, in_data)) == 0)
			written = (uint32_t)in_data;
		break;
	case VIRTIO_BLK_T_OUT:
		st->writes++;
		if (blk->read_only)
			r = -EROFS;
		else if (!in_range(blk, sector, out_data))
			r = -EINVAL;
		else
			r = rw(blk, c, true, sector, HDR_BYTES, out_data);
		break;
	case VIRTIO_BLK_T_FLUSH:
		st->flushes++;
		if (!blk->read_only && fdatasync(blk->fd) < 0)
			r = -errno;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		st->get_ids++;
		uint64_t n = in_data < VIRTIO_BLK_ID_BYTES ? in_data : VIRTIO_BLK_ID_BYTES;
		written = (uint32_t)vq_chain_write(c, 0, blk->serial, n);
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (type == VIRTIO_BLK_T_DISCARD)
			st->discards++;
		else
			st->write_zeroes++;
		r = blk->read_only ? -EROFS : discard(blk, c, type == VIRTIO_BLK_T_WRITE_ZEROES);
		break;
	default:
		st->unsupported++;
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (r < 0) {
		st->errors++;
		status = VIRTIO_BLK_S_IOERR;
		written = 0;
	}
	vq_chain_write(c, c->writable_len - 1, &status, 1);
	return written + 1;
}

static void blk_process(void *dev, struct virtio_mmio *t, unsigned qi)
{
	struct virtio_blk *blk = dev;
	struct virtq *q = virtio_mmio_queue(t, qi);
	struct vq_chain c = {.bufs = blk->bufs, .max_bufs = MAX_BUFS};
	bool pushed = false;
	int r;
	while ((r = vq_pop(q, &c)) == 1) {
		vq_push(q, c.head, request(blk, &c));
		pushed = true;
	}
	if (r < 0)
		virtio_mmio_needs_reset(t);
	if (pushed)
		virtio_mmio_signal(t, qi);
}

static int lock_image(int fd, bool read_only)
{
	struct flock fl = {.l_type = read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
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
	    opt->queues > VIRTIO_BLK_MAX_QUEUES ||
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
	int flags = (opt->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (opt->direct ? O_DIRECT : 0);
	int r = 0;
	blk->fd = open(opt->path, flags);
	struct stat st;
	if (blk->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", opt->path, strerror(-r));
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
	if (r < 0) {
		virtio_blk_destroy(blk);
		return r;
	}
	blk->capacity = size / SECTOR;
	blk->read_only = opt->read_only;
	if (opt->serial)
		memcpy(blk->serial, opt->serial, strlen(opt->serial));
	blk->ops = (struct virtio_dev_ops){
	    .name = "virtio-blk",
	    .device_id = VIRTIO_ID_BLOCK,
	    .nqueues = opt->queues,
	    .queue_max = 256,
	    .features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
			(1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_DISCARD) |
			(1ull << VIRTIO_BLK_F_WRITE_ZEROES) |
			(opt->queues > 1 ? 1ull << VIRTIO_BLK_F_MQ : 0) |
			(opt->read_only ? 1ull << VIRTIO_BLK_F_RO : 0),
	    .config_size = sizeof(struct virtio_blk_config),
	    .config_read = blk_config_read,
	    .process = blk_process,
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
	if (blk->fd >= 0)
		close(blk->fd); /* drops the OFD lock */
	free(blk);
}
