/* devices/virtio/blk.h - virtio-blk (VIRTIO 1.2, 5.2) on a raw image file or block device. */
#ifndef EMBER_DEVICES_VIRTIO_BLK_H
#define EMBER_DEVICES_VIRTIO_BLK_H

/*
 * A disk: a raw image (regular file or block device) the device opens
 * itself. Requests: read, write, flush (fdatasync on the host), get-id
 * (the serial, up to 20 bytes), discard (punches holes) and write-zeroes
 * (zeroes the range, unmapping when the driver allows it).
 *
 * Capacity is the image size in 512-byte sectors, rounded down: the bytes
 * of a trailing partial sector are not reachable (VIRTIO 1.2 5.2.4 counts
 * capacity in whole sectors), and a request past capacity fails with
 * VIRTIO_BLK_S_IOERR. A read-only disk offers VIRTIO_BLK_F_RO and answers
 * writes, discards and write-zeroes with IOERR. A request the device
 * cannot parse (no 16-byte header, no status byte, a data length that is not
 * whole sectors) gets IOERR when its status byte can be written, else
 * nothing but its used entry (length 0).
 *
 * A writable image is locked with an OFD write lock on the whole file,
 * a read-only one with a read lock, so two VMs cannot write one image at
 * once (nor one write while another reads it).
 *
 * I/O is synchronous (preadv/pwritev on the image fd, straight into guest
 * buffers) on the thread that calls virtio_mmio_process: the VMM's event
 * loop or a device thread.
 */

#include "mmio.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_BLK_ID_BYTES   20
#define VIRTIO_BLK_MAX_QUEUES VIRTIO_MMIO_MAX_QUEUES
#define VIRTIO_BLK_SEG_MAX    126 /* data segments per request (queue size - 2) */

struct virtio_blk_options {
	const char *path;
	bool read_only;
	const char *serial; /* NULL: none (get-id returns zeros) */
	bool direct;	    /* cache=none: O_DIRECT */
	unsigned queues;    /* 1..VIRTIO_BLK_MAX_QUEUES */
};

struct virtio_blk;

/*
 * Opens and locks the image, creates the device and its transport (*out_t,
 * for the MMIO bus). cfg.ops/dev are filled in here; mem, interrupt, notify
 * are the caller's. Returns 0, or -EINVAL (bad options), -errno of open,
 * -EBUSY (the image is locked by another process), -ENOMEM; err (may be
 * NULL) says which in one line.
 */
int virtio_blk_create(struct virtio_mmio_config cfg, const struct virtio_blk_options *opt,
		      struct virtio_blk **out, struct virtio_mmio **out_t, char *err,
		      size_t errlen);
/* Closes the image (after the transport was destroyed). NULL is allowed. */
void virtio_blk_destroy(struct virtio_blk *blk);
/* Capacity in 512-byte sectors. */
uint64_t virtio_blk_capacity(const struct virtio_blk *blk);

struct virtio_blk_stats {
	uint64_t reads, writes, flushes, discards, write_zeroes, get_ids;
	uint64_t errors;      /* requests answered IOERR */
	uint64_t unsupported; /* UNSUPP */
	uint64_t bad_chains;  /* refused by the virtqueue or unparseable */
};
void virtio_blk_get_stats(struct virtio_blk *blk, struct virtio_blk_stats *out);

#endif /* EMBER_DEVICES_VIRTIO_BLK_H */
