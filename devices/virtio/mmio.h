/* devices/virtio/mmio.h - the virtio-mmio transport, version 2 (VIRTIO 1.2, 4.2), modern devices only. */
#ifndef EMBER_DEVICES_VIRTIO_MMIO_H
#define EMBER_DEVICES_VIRTIO_MMIO_H

/*
 * One virtio-mmio window (VIRTIO_MMIO_WINDOW bytes) in front of one virtio
 * device. The transport owns the registers, the feature negotiation, the
 * device status and the virtqueues' configuration; the device (its struct
 * virtio_dev_ops) owns its configuration space and the work on its queues.
 *
 * What the transport enforces:
 *   - registers are 32-bit accesses at 4-byte aligned offsets (others are
 *     ignored, reads give 0); configuration space takes 1, 2, 4 and 8 bytes;
 *   - the driver must accept VIRTIO_F_VERSION_1 and nothing the device did
 *     not offer, or FEATURES_OK does not stick (the driver sees it clear);
 *   - queue sizes are powers of two up to the device's maximum; a queue is
 *     checked (vq_enable: aligned, inside guest RAM) when the driver sets
 *     QueueReady, and a queue that does not check out stays not ready and
 *     the device is marked DEVICE_NEEDS_RESET;
 *   - writing 0 to Status resets the device and every queue.
 * Ring features offered on top of the device's: VIRTIO_F_VERSION_1,
 * VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC.
 *
 * Threads: register accesses come from vCPU threads (any, concurrently);
 * queue work runs where the VMM decides (its event loop): notify() tells
 * it a queue was kicked through QueueNotify (a VMM that registers an
 * ioeventfd on the QueueNotify address never sees those writes). One mutex
 * per transport serialises register accesses, resets and the device's
 * queue work (virtio_mmio_lock): the device processes its queues holding it,
 * so a reset never races a request. No allocation after creation.
 */

#include "../device.h"
#include "../../lib/io/state.h"
#include "virtqueue.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_MMIO_WINDOW     0x1000
#define VIRTIO_MMIO_MAX_QUEUES 16
#define VIRTIO_MMIO_MAGIC      0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR     0x52424d45u /* "EMBR" */

/* Register offsets (VIRTIO 1.2, 4.2.2). */
#define VIRTIO_MMIO_MAGIC_VALUE		0x000
#define VIRTIO_MMIO_VERSION		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LOW	0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_USED_LOW	0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HIGH	0x0a4
#define VIRTIO_MMIO_SHM_SEL		0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW		0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH	0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW	0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH	0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100

#define VIRTIO_MMIO_INT_VRING  1u /* InterruptStatus: used buffer notification */
#define VIRTIO_MMIO_INT_CONFIG 2u /* InterruptStatus: configuration change */

struct virtio_mmio;

/* What a virtio device gives the transport. dev is the device's opaque. */
struct virtio_dev_ops {
	const char *name;   /* e.g. "virtio-rng" */
	uint32_t device_id; /* VIRTIO_ID_* */
	unsigned nqueues;   /* 1..VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max; /* QueueNumMax: a power of two, <= VQ_MAX_SIZE */
	uint64_t features;  /* device-specific feature bits offered */
	uint32_t config_size;
	/* Configuration space, [off, off + len) inside config_size (checked). */
	void (*config_read)(void *dev, uint32_t off, uint8_t *data, unsigned len);
	void (*config_write)(void *dev, uint32_t off, const uint8_t *data,
			     unsigned len); /* NULL: RO */
	/* The driver set DRIVER_OK with these features: the device may start
	 * (return 0), or refuse (-errno: DEVICE_NEEDS_RESET). Lock held. */
	int (*activate)(void *dev, uint64_t features);
	/* Queue q has new buffers: called with the lock held by whoever
	 * calls virtio_mmio_process (the VMM, on its loop). Use vq_pop/vq_push
	 * on virtio_mmio_queue(t, q), then virtio_mmio_signal. */
	void (*process)(void *dev, struct virtio_mmio *t, unsigned q);
	/* Back to the state before activate (driver reset). Lock held. */
	void (*reset)(void *dev);

	/* ---- saved state (virtio_mmio_save/load); every member optional ---- */
	/* Chains of queue q the device took off the ring and holds unused (a
	 * receive buffer waiting for data, output waiting for room): their
	 * heads in the order taken, at most max of them, and how many. A save
	 * puts the queue's position back before them, so the loaded device
	 * takes them again; so they must be the last ones taken from q (the
	 * save checks them against the available ring: -EBUSY if not, e.g. a
	 * refused chain was returned after a held one). Lock held. */
	unsigned (*held)(void *dev, unsigned q, uint16_t *heads, unsigned max);
	/* The device's own state as one section (lock held, VM paused).
	 * Returns the writer's error, or -EBUSY (work in flight a pause should
	 * have drained). */
	int (*save)(void *dev, struct vmm_state_w *w);
	/* Present with save: reads it (lock held), for the negotiated
	 * features; refuses with the reader's sticky error and changes nothing.
	 * Chains the device held are forgotten (they are taken again). */
	int (*load)(void *dev, struct vmm_state_r *r, uint64_t features);
	/* After a load, the transport's state in place and the device running
	 * (lock held): the device may use its queues, e.g. virtio-vsock tells
	 * the driver its connections are gone. */
	void (*restored)(void *dev, struct virtio_mmio *t);
};

struct virtio_mmio_config {
	const struct virtio_dev_ops *ops;
	void *dev;
	const struct vmm_mem *mem;
	/* Interrupt the driver (edge: the line is pulsed, or an irqfd written). */
	void (*interrupt)(void *opaque);
	/* A QueueNotify write for queue q (from a vCPU thread, lock not held):
	 * the VMM arranges for virtio_mmio_process(t, q) to run. NULL: it runs
	 * at once on the vCPU thread (tests). */
	void (*notify)(void *opaque, unsigned q);
	void *opaque;
};

/* Returns 0 and *out, or -EINVAL (bad ops: queue counts, sizes), -ENOMEM. */
int virtio_mmio_create(const struct virtio_mmio_config *cfg, struct virtio_mmio **out);
/* The bus-facing device (window VIRTIO_MMIO_WINDOW). */
struct dev *virtio_mmio_dev(struct virtio_mmio *t);

/* Runs the device's process() for queue q under the lock, if the driver has
 * finished setup (DRIVER_OK) and the queue is ready. Any thread. */
void virtio_mmio_process(struct virtio_mmio *t, unsigned q);

/* For the device, lock held: queue q (NULL if q is out of range). */
struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned q);
/* For the device, lock held: the driver finished its setup (DRIVER_OK, no
 * NEEDS_RESET or FAILED) and queue q is ready: the device may use it on
 * its own initiative (host input, say). */
bool virtio_mmio_queue_live(struct virtio_mmio *t, unsigned q);
/* For the device, lock held, after vq_push on queue q: interrupts the driver
 * if the queue asks for it. */
void virtio_mmio_signal(struct virtio_mmio *t, unsigned q);
/* For the device, lock held: something is wrong beyond one request: set
 * DEVICE_NEEDS_RESET and tell the driver (configuration interrupt). */
void virtio_mmio_needs_reset(struct virtio_mmio *t);
/* For the device, lock held: a chain the device can neither serve nor
 * answer with an error inside the request (the walker refused it, or it has
 * no room for the device's status byte). Sets DEVICE_NEEDS_RESET (with a
 * configuration interrupt), then returns head on queue q with 0 bytes
 * written, so the driver's bookkeeping stays whole. Completing it silently
 * instead would let the driver read a status byte the device never wrote.
 * The device takes no more chains: the transport runs no queue work until
 * the driver resets the device. */
void virtio_mmio_refuse_chain(struct virtio_mmio *t, unsigned q, uint16_t head);
/* For the device, lock held: its configuration changed (generation + 1,
 * configuration interrupt). */
void virtio_mmio_config_changed(struct virtio_mmio *t);

/*
 * The transport's state and the device's (its ops' save), as one
 * "virtio-mmio" section: status, features, selectors, interrupt status,
 * configuration generation, each queue's setup and position (available and
 * used indices, the event-index bookkeeping). The VM must be paused: every
 * chain taken must have been used, except those the device holds (ops
 * held), else -EBUSY. Takes the lock. Returns 0 or -errno.
 */
int virtio_mmio_save(struct virtio_mmio *t, struct vmm_state_w *w);
/*
 * Reads a virtio_mmio_save state into t, a transport of the same device
 * type and queue layout (freshly created, guest memory mapped): refuses
 * another device, features the device does not offer, a queue size that
 * is not a power of two up to the maximum, rings outside guest memory or
 * misaligned, a chain in flight, and the device's own refusals, with the
 * reader's -EINVAL and nothing changed. On success the device runs as
 * saved (activate is called again with the negotiated features) and, if
 * the interrupt status was not clear, the interrupt is raised once more
 * (a restored interrupt controller may have lost the edge). Takes the lock.
 */
int virtio_mmio_load(struct virtio_mmio *t, struct vmm_state_r *r);
/* virtio_mmio_load in two steps, for a load of several devices that must
 * change nothing the guest sees (its memory, its interrupts) until all of
 * them loaded: the state only, then (once every device loaded)
 * virtio_mmio_finish_load: the device's restored hook and the interrupt. */
int virtio_mmio_load_deferred(struct virtio_mmio *t, struct vmm_state_r *r);
void virtio_mmio_finish_load(struct virtio_mmio *t);

void virtio_mmio_lock(struct virtio_mmio *t);
void virtio_mmio_unlock(struct virtio_mmio *t);

/* Introspection (for --dry-run, tests, the query API): the device status
 * byte and the negotiated features. Any thread. */
uint8_t virtio_mmio_status(struct virtio_mmio *t);
uint64_t virtio_mmio_features(struct virtio_mmio *t);

#endif /* EMBER_DEVICES_VIRTIO_MMIO_H */
