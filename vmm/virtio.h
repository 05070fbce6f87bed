/* vmm/virtio.h - the VMM's virtio devices: a device option made a virtio-mmio device, its queues served on the VM's I/O thread. */
#ifndef EMBER_VMM_VIRTIO_H
#define EMBER_VMM_VIRTIO_H

/*
 * For each virtio entry of the device list (a --disk, --rng or --balloon):
 *   vmm_virtio_create  builds the device model (devices/virtio/) and its
 *                      transport and binds it to the entry (ops/opaque), so
 *                      that vmm_devmgr_attach puts its window on the MMIO bus
 *                      and makes its ioeventfds (QueueNotify, one per queue)
 *                      and its irqfd;
 *   vmm_virtio_start   after attach: watches each queue's ioeventfd in the
 *                      VM's loop; a kick runs the device's queue work on the
 *                      I/O thread (never on a vCPU thread), under the VM's
 *                      dev_lock;
 *   vmm_virtio_quiesce on pause: drains a disk's requests in flight, so a
 *                      paused VM has no disk I/O running (drain, not hold);
 *   vmm_virtio_kick    runs every queue once (after a resume: kicks that
 *                      came while the VM was paused were held);
 *   vmm_virtio_destroy stops watching and frees the device.
 * The device interrupts the guest by writing its irqfd (edge-triggered GSI).
 * A QueueNotify write that reached the transport anyway (no ioeventfd)
 * signals the same eventfd, so the work still happens on the I/O thread.
 */

#include <stdbool.h>

#include "devmgr.h"
#include "vm.h"

struct vmm_devopt;
struct vmm_virtio;

int vmm_virtio_create(struct ember_vm *vm, struct vmm_dev_desc *d, const struct vmm_devopt *o,
		      struct vmm_virtio **out, struct ember_error *err);
int vmm_virtio_start(struct vmm_virtio *v, struct ember_error *err);
void vmm_virtio_kick(struct vmm_virtio *v);
/* Pausing (dev_lock held, devs_paused set): waits until the device has no
 * I/O in flight, completing what was (a disk's io_uring requests: used ring
 * and interrupt), and marks its queues for the kick on resume. Returns the
 * requests waited for. */
unsigned vmm_virtio_quiesce(struct vmm_virtio *v);
void vmm_virtio_destroy(struct vmm_virtio *v);
/* One line for --verbose logs and the stop summary: what the device did. */
int vmm_virtio_format(struct vmm_virtio *v, char *buf, size_t len);

#endif /* EMBER_VMM_VIRTIO_H */
