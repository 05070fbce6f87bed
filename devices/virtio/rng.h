/* devices/virtio/rng.h - virtio-rng (VIRTIO 1.2, 5.4): an entropy source for the guest from the host's getrandom(). */
#ifndef EMBER_DEVICES_VIRTIO_RNG_H
#define EMBER_DEVICES_VIRTIO_RNG_H

/*
 * One request queue; each chain's device-writable buffers are filled with
 * host randomness (getrandom(2), the kernel's CSPRNG), at most
 * VIRTIO_RNG_MAX_REQUEST bytes per chain (the driver asks again), and
 * returned with the count written. A chain with no writable buffer, or one
 * the virtqueue refused, is returned with 0 bytes. No configuration space,
 * no feature bits. Runs in virtio_mmio_process (the VMM's loop thread).
 *
 * Rate limit (ratelimit.h; unlimited by default): the bandwidth bucket
 * counts entropy bytes, the operations bucket requests. A request is taken
 * only while both have tokens and is served in full (its bytes charged,
 * the bucket possibly left in debt); when the buckets run dry with
 * requests waiting, the device stops and calls the limiter's wait
 * callback.
 */

#include "mmio.h"
#include "ratelimit.h"

#define VIRTIO_RNG_MAX_REQUEST 4096u

struct virtio_rng;

/* Creates the device and its transport: *out_t is what the board places on
 * the MMIO bus (virtio_mmio_dev). cfg.ops and cfg.dev are filled in here;
 * the rest (mem, interrupt, notify) is the caller's. Returns 0, -EINVAL,
 * -ENOMEM. */
int virtio_rng_create(struct virtio_mmio_config cfg, struct virtio_rng **out,
		      struct virtio_mmio **out_t);
/* Frees the device (after its transport was destroyed with dev_destroy). */
void virtio_rng_destroy(struct virtio_rng *rng);
/* Bytes given to the guest and requests served so far. */
uint64_t virtio_rng_bytes(struct virtio_rng *rng);
uint64_t virtio_rng_requests(struct virtio_rng *rng);
/* The device's limiter: its wait callback and clock are set before the
 * device runs; its limits are read and changed (ratelimit_set) under the
 * transport's lock (virtio_mmio_lock), which the queue work holds. */
struct ratelimit *virtio_rng_ratelimit(struct virtio_rng *rng);

#endif /* EMBER_DEVICES_VIRTIO_RNG_H */
