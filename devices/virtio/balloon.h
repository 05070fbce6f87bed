/* devices/virtio/balloon.h - virtio-balloon (VIRTIO 1.2, 5.5): the host asks for guest memory back; free page reporting. */
#ifndef EMBER_DEVICES_VIRTIO_BALLOON_H
#define EMBER_DEVICES_VIRTIO_BALLOON_H

/*
 * Queues (in the driver's order): inflate, deflate, stats (if
 * VIRTIO_BALLOON_F_STATS_VQ is negotiated), reporting (if
 * VIRTIO_BALLOON_F_REPORTING). Offered: STATS_VQ, DEFLATE_ON_OOM,
 * REPORTING.
 *   - inflate: 32-bit page frame numbers (4 KiB pages); each page that is
 *     guest RAM is given back to the host (vmm_mem_discard; runs of
 *     consecutive frames in one call). Frames outside RAM are counted and
 *     skipped.
 *   - deflate: the guest takes pages back; they fault in as zero pages.
 *   - stats: the driver's buffer of {u16 tag, u64 value} is kept until the
 *     host asks for fresh numbers (virtio_balloon_request_stats), then
 *     returned so the driver refills it.
 *   - reporting: device-writable buffers that are free guest pages, given
 *     back like inflated ones and returned at once.
 * The target (num_pages) is the host's: virtio_balloon_set_target changes it
 * and tells the driver (configuration interrupt); "actual" is the driver's.
 * With hugetlb guest memory nothing is given back (4 KiB pages cannot be
 * freed from a huge page); the counts still move.
 */

#include "mmio.h"

#include <stdint.h>

struct virtio_balloon;

struct virtio_balloon_stats {
	uint32_t target_pages; /* the host's num_pages */
	uint32_t actual_pages; /* what the driver says it holds */
	uint64_t features;     /* the device bits the driver took (0 after a reset) */
	uint64_t inflated, deflated, reported; /* 4 KiB pages seen in each queue */
	uint64_t discarded;		       /* pages actually given back to the host */
	uint64_t bad_pfns;		       /* frames outside guest RAM */
	bool have_guest_stats;
	uint64_t guest_updates; /* stats buffers received */
	uint64_t guest[10];	/* VIRTIO_BALLOON_S_* values, by tag (those the guest sent) */
	uint32_t guest_valid;	/* bit per tag */
};

/* Creates the device and its transport (*out_t for the MMIO bus); cfg.ops
 * and cfg.dev are filled in here. Returns 0, -EINVAL, -ENOMEM. */
int virtio_balloon_create(struct virtio_mmio_config cfg, struct virtio_balloon **out,
			  struct virtio_mmio **out_t);
void virtio_balloon_destroy(struct virtio_balloon *b);
struct virtio_balloon_options {
	bool no_reporting; /* do not offer VIRTIO_BALLOON_F_REPORTING */
};
/* The same with options (NULL: the defaults, as virtio_balloon_create). */
int virtio_balloon_create_opts(struct virtio_mmio_config cfg,
			       const struct virtio_balloon_options *opt,
			       struct virtio_balloon **out, struct virtio_mmio **out_t);
/* Sets the number of 4 KiB pages the host wants the guest to give up, and
 * interrupts the driver. Any thread. */
void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages);
/* Returns the held stats buffer so the driver sends fresh numbers. Returns
 * 0, or -EAGAIN (the driver has not given one yet / stats not negotiated).
 * Any thread. */
int virtio_balloon_request_stats(struct virtio_balloon *b);
void virtio_balloon_get_stats(struct virtio_balloon *b, struct virtio_balloon_stats *out);

#endif /* EMBER_DEVICES_VIRTIO_BALLOON_H */
