/* devices/virtio/virtqueue.h - the device side of a split virtqueue (VIRTIO 1.2, 2.7), trusting nothing from the guest. */
#ifndef EMBER_DEVICES_VIRTIO_VIRTQUEUE_H
#define EMBER_DEVICES_VIRTIO_VIRTQUEUE_H

/*
 * A split virtqueue as the device sees it: the driver publishes descriptor
 * chains in the available ring, the device takes them (vq_pop), does the
 * work, and returns each head with the number of bytes it wrote (vq_push);
 * vq_need_interrupt then says whether the driver wants to be interrupted.
 * VIRTIO_RING_F_EVENT_IDX and VIRTIO_RING_F_INDIRECT_DESC are supported.
 *
 * Every value read from guest memory is checked before it is used:
 *   - the rings must lie in guest RAM, aligned as the spec says
 *     (descriptors 16, available ring 2, used ring 4), queue size a power of
 *     two from 1 to 32768 (vq_enable);
 *   - the available index may run ahead of the device by at most the queue
 *     size, and each head must be below it (else the ring is broken);
 *   - a chain ends within the queue size's count of descriptors (a loop
 *     ends), including the entries of an indirect table; an indirect table
 *     is a whole number of descriptors, in guest RAM, not empty, not
 *     combined with F_NEXT, and holds no indirect descriptor itself;
 *   - every buffer lies inside guest RAM (one region), device-writable
 *     buffers come after the readable ones, and the summed lengths fit in 32
 *     bits (a used.len must be able to say them).
 * A broken ring (first two points) is the driver's fault at a level the
 * device cannot recover from: vq_pop returns -EIO and the device should set
 * DEVICE_NEEDS_RESET. A bad chain (the rest) is consumed and returned with
 * chain->error set, for the device to answer: the devices here cannot find
 * a status byte in a chain that was not walked to its end, so they return
 * it with a used length of 0 and ask for a reset (virtio_mmio_refuse_chain),
 * as QEMU does; the other devices keep running.
 *
 * Guest memory is reached only through vmm_mem_ptr; host pointers handed out
 * stay valid while the guest memory mapping exists.
 *
 * Thread-safety: a queue is driven by one thread at a time (the device's);
 * the guest runs concurrently, which the code allows for with the barriers
 * the spec asks for. No allocation, no syscall, no lock.
 */

#include "../../lib/io/mem.h"

#include <stdbool.h>
#include <stdint.h>

#define VQ_MAX_SIZE 32768u

/* One buffer of a chain: guest address, length, its host pointer (already
 * bounds-checked: host[0..len) is guest RAM) and direction. */
struct vq_buf {
	uint64_t gpa;
	uint8_t *host;
	uint32_t len;
	bool device_writes; /* VIRTQ_DESC_F_WRITE */
};

/* A descriptor chain as vq_pop returns it; bufs is the caller's array. */
struct vq_chain {
	uint16_t head;	       /* what vq_push must be given back */
	int error;	       /* 0, or why the chain was refused (-EINVAL, -EFAULT, -E2BIG...) */
	unsigned nbufs;	       /* buffers filled in bufs (all of them when error == 0) */
	unsigned nreadable;    /* the first nreadable are driver -> device */
	uint64_t readable_len; /* sum of the readable lengths */
	uint64_t writable_len; /* sum of the device-writable lengths */
	struct vq_buf *bufs;
	unsigned max_bufs; /* capacity of bufs: a longer chain is -E2BIG */
};

struct virtq {
	/* set by vq_enable */
	const struct vmm_mem *mem;
	uint16_t size;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool enabled;
	uint8_t *desc;	/* host pointers of the three parts */
	uint8_t *avail; /* flags, idx, ring[size], used_event */
	uint8_t *used;	/* flags, idx, ring[size] of {id, len}, avail_event */
	/* device state */
	uint16_t last_avail; /* next available entry to take */
	uint16_t used_idx;   /* the device's copy of used.idx */
	uint16_t signalled;  /* used_idx when the driver was last interrupted */
	bool signalled_valid;
	bool notify; /* the device wants notifications (vq_set_notify) */
	bool broken; /* vq_pop returned -EIO once: stays so until vq_enable/reset */
	uint64_t popped, pushed, bad_chains;
};

/* Bytes each ring part takes for a queue size. */
uint64_t vq_desc_bytes(uint16_t size);
uint64_t vq_avail_bytes(uint16_t size);
uint64_t vq_used_bytes(uint16_t size);

/*
 * Checks and maps a queue the driver set up: size (power of two, 1..32768),
 * the three guest addresses (aligned, inside guest RAM), and the negotiated
 * ring features. Starts from index 0 (a fresh queue, as after a reset).
 * Returns 0, or -EINVAL (bad size or alignment), -EFAULT (a part not in
 * guest RAM); *q is left disabled on failure.
 */
int vq_enable(struct virtq *q, const struct vmm_mem *mem, uint16_t size, uint64_t desc_gpa,
	      uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect);

/* Disables the queue and forgets its state (device reset). */
void vq_reset(struct virtq *q);

/*
 * Takes the next available chain into *chain (whose bufs/max_bufs the
 * caller set). Returns 1 with a chain (chain->error 0, or a refused chain
 * that still must be pushed back), 0 when the ring is empty, -EIO when the
 * ring itself is broken (the device should ask for a reset), -EINVAL when the
 * queue is not enabled.
 */
int vq_pop(struct virtq *q, struct vq_chain *chain);

/* Returns head to the driver with the number of bytes written into its
 * device-writable buffers (clamped to what the chain offered is the
 * device's job). Returns 0, -EINVAL (not enabled, or head >= size). */
int vq_push(struct virtq *q, uint16_t head, uint32_t written);

/* After one or more vq_push: true if the driver should be interrupted now
 * (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). Records it. */
bool vq_need_interrupt(struct virtq *q);

/* Asks the driver to notify (true) or not bother (false) for new buffers:
 * VIRTQ_USED_F_NO_NOTIFY, or avail_event with EVENT_IDX. After enabling,
 * the device must check vq_has_work once more (a buffer may have come in
 * before the driver saw the request). */
void vq_set_notify(struct virtq *q, bool enable);

/* True if the driver has published chains the device has not taken. */
bool vq_has_work(const struct virtq *q);

/* Asks the driver to notify at the next chain it publishes, even with
 * chains published and not taken yet (EVENT_IDX: avail_event set to the
 * avail index now; else VIRTQ_USED_F_NO_NOTIFY cleared). Returns the avail
 * index now (0 on a disabled queue), to compare with vq_avail_idx later. */
uint16_t vq_notify_at_next(struct virtq *q);

/* The driver's avail index (0 on a disabled queue). */
uint16_t vq_avail_idx(const struct virtq *q);

/* Copies between a chain's buffers and a flat host buffer: vq_chain_read
 * gathers from the readable buffers starting at byte off, vq_chain_write
 * scatters into the writable ones starting at byte off. Return the bytes
 * copied (less than len when the buffers end first). */
uint64_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, uint64_t len);
uint64_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, uint64_t len);

/* Describes [off, off + len) of the chain's readable (writable false) or
 * writable bytes as at most max iovecs (host pointers into guest RAM, for
 * preadv/pwritev). Returns the count, or -E2BIG (more than max needed),
 * -ERANGE (the buffers end before off + len). */
struct iovec;
int vq_chain_iov(const struct vq_chain *c, bool writable, uint64_t off, uint64_t len,
		 struct iovec *iov, unsigned max);

#endif /* EMBER_DEVICES_VIRTIO_VIRTQUEUE_H */
