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
 * Engines. I/O runs through io_uring (liburing) or synchronously:
 *   - io_uring (the default where io_uring_queue_init works): one ring per
 *     disk, shared by its queues, its eventfd registered with
 *     io_uring_register_eventfd. Reads, writes (readv/writev straight into
 *     guest buffers) and flushes (fsync with IORING_FSYNC_DATASYNC, what
 *     fdatasync does) are submitted from process() and complete later, in
 *     any order: whoever watches virtio_blk_event_fd() calls
 *     virtio_blk_poll(), which writes each status byte, returns the heads
 *     to the used ring and interrupts the driver. Get-id, discard and
 *     write-zeroes (fallocate/ioctl) and refused requests complete at once,
 *     so they can overtake reads and writes still in flight.
 *   - sync (engine=sync, or io_uring unavailable: io_uring_queue_init failed,
 *     e.g. EPERM from a seccomp policy or ENOSYS): preadv/pwritev/fdatasync
 *     on the thread that calls process(); each request completes before the
 *     next is taken; virtio_blk_event_fd() is -1.
 * Each queue has at most depth requests in flight (options.depth, default
 * VIRTIO_BLK_DEPTH, never more than the queue size): past that, process()
 * leaves the rest on the available ring, and virtio_blk_poll() goes back
 * to them once requests complete. One function takes requests off the
 * available ring (take_request in blk.c).
 *
 * cache=none opens the image O_DIRECT. O_DIRECT wants buffers, offsets and
 * lengths aligned to the file's direct-I/O alignment (statx STATX_DIOALIGN;
 * BLKSSZGET on a block device; 4096 when neither says). Guest buffers are
 * in guest RAM (page aligned as a whole), but a descriptor may point
 * anywhere and a request may be 512 bytes at any sector: such a request
 * is served synchronously on a second, buffered descriptor of the same
 * image (a slow path that keeps it correct; Linux's own page-cache I/O is
 * page aligned and never takes it). A flush's fdatasync covers both.
 *
 * Pausing: virtio_blk_drain() waits for every request in flight and
 * completes it; with the VMM taking no new request while paused, a paused
 * VM has no disk I/O running (vmm/virtio.c). A driver reset waits for the
 * requests in flight the same way but drops them (their heads belong to the
 * old queues); that wait runs on the thread that wrote the status register
 * (a vCPU thread), which a reset, rare and not on the I/O path, may afford.
 * A single queue turned off (QueueReady 0) while its requests are in flight
 * is not waited for: a completion that finds its queue disabled is dropped
 * (nothing written); one that finds it enabled again by then would land in
 * the new ring. Linux turns queues off only after a device reset, which
 * waits. Locking: the transport's lock serialises process(), poll,
 * drain and reset, so the ring is driven by one thread at a time.
 *
 * Rate limit (ratelimit.h; unlimited by default), one limiter for all the
 * disk's queues, checked in take_request before vq_pop: a request is taken
 * off a queue only while the limiter has tokens; it costs one operation
 * and its data bytes (charged when taken, not when it completes). When the
 * buckets run dry with requests waiting, the device stops and calls the
 * limiter's wait callback.
 */

#include "mmio.h"
#include "ratelimit.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_BLK_ID_BYTES   20
#define VIRTIO_BLK_MAX_QUEUES VIRTIO_MMIO_MAX_QUEUES
#define VIRTIO_BLK_SEG_MAX    126 /* data segments per request (queue size - 2) */
#define VIRTIO_BLK_DEPTH      32  /* default requests in flight per queue */

enum virtio_blk_engine {
	VIRTIO_BLK_ENGINE_AUTO,	    /* io_uring where io_uring_queue_init works, else sync */
	VIRTIO_BLK_ENGINE_SYNC,	    /* preadv/pwritev/fdatasync on the caller's thread */
	VIRTIO_BLK_ENGINE_IO_URING, /* io_uring or nothing (create fails) */
};

struct virtio_blk_options {
	const char *path;
	bool read_only;
	const char *serial; /* NULL: none (get-id returns zeros) */
	bool direct;	    /* cache=none: O_DIRECT */
	unsigned queues;    /* 1..VIRTIO_BLK_MAX_QUEUES */
	enum virtio_blk_engine engine;
	unsigned depth; /* requests in flight per queue; 0: VIRTIO_BLK_DEPTH */
};

struct virtio_blk;

/*
 * Opens and locks the image, creates the device and its transport (*out_t,
 * for the MMIO bus). cfg.ops/dev are filled in here; mem, interrupt, notify
 * are the caller's. Returns 0, or -EINVAL (bad options; O_DIRECT refused by
 * the file system), -errno of open, -EBUSY (the image is locked by another
 * process), -ENOMEM, -errno of io_uring_queue_init (engine io_uring asked
 * for and unavailable); err (may be NULL) says which in one line.
 */
int virtio_blk_create(struct virtio_mmio_config cfg, const struct virtio_blk_options *opt,
		      struct virtio_blk **out, struct virtio_mmio **out_t, char *err,
		      size_t errlen);
/* Waits for the requests in flight (dropping them), closes the ring and the
 * image (after the transport was destroyed). NULL is allowed. */
void virtio_blk_destroy(struct virtio_blk *blk);
/* Capacity in 512-byte sectors. */
uint64_t virtio_blk_capacity(const struct virtio_blk *blk);
/*
 * Grows the disk to bytes (a multiple of 512): the image file is extended
 * with ftruncate when it is smaller (sparse), then the capacity follows and
 * the driver gets a configuration change interrupt (generation + 1). Any
 * thread (takes the transport lock). Returns 0 (also for the current
 * size), -EINVAL (not a multiple of 512, or smaller than the capacity: a
 * shrink is refused), -EROFS (read-only), -EOPNOTSUPP (a block device),
 * or ftruncate's/fstat's -errno; nothing changed on an error, msg says
 * why.
 */
int virtio_blk_resize(struct virtio_blk *blk, uint64_t bytes, char *msg, size_t msglen);

/* "io_uring" or "sync": the engine the disk runs. */
const char *virtio_blk_engine_name(const struct virtio_blk *blk);
/* True for cache=none (the image is open O_DIRECT). */
bool virtio_blk_direct(const struct virtio_blk *blk);
/* The io_uring completion eventfd (nonblocking, owned by the disk): when it
 * is readable, read it and call virtio_blk_poll. -1 for the sync engine. */
int virtio_blk_event_fd(const struct virtio_blk *blk);
/*
 * Completes what finished: status bytes, used ring, interrupts. With refill,
 * then runs each queue that had stopped at its in-flight limit (through
 * virtio_mmio_process). Takes the transport lock; not from inside
 * process(). Any thread, one at a time with the other calls here.
 */
void virtio_blk_poll(struct virtio_blk *blk, bool refill);
/* Waits until no request is in flight, completing each (used ring,
 * interrupt); takes no new request. Takes the transport lock. Returns the
 * requests it waited for. */
unsigned virtio_blk_drain(struct virtio_blk *blk);
/* Requests in flight now (all queues). Takes the transport lock. */
unsigned virtio_blk_inflight(struct virtio_blk *blk);

struct virtio_blk_stats {
	uint64_t reads, writes, flushes, discards, write_zeroes, get_ids;
	uint64_t synced;       /* flushes whose fdatasync (or io_uring's) returned 0 */
	uint64_t bounced;      /* cache=none requests served on the buffered fd */
	uint64_t inflight_max; /* most requests in flight at once on one queue */
	uint64_t errors;       /* requests answered IOERR */
	uint64_t unsupported;  /* UNSUPP */
	uint64_t bad_chains;   /* refused by the virtqueue or unparseable */
};
void virtio_blk_get_stats(struct virtio_blk *blk, struct virtio_blk_stats *out);

/* The disk's limiter, used as virtio-rng's is (rng.h): changed only under
 * the transport's lock. */
struct ratelimit *virtio_blk_ratelimit(struct virtio_blk *blk);

#endif /* EMBER_DEVICES_VIRTIO_BLK_H */
