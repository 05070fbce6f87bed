/* vmm/virtio.h - the VMM's virtio devices: a device option made a virtio-mmio device, its queues served on the VM's I/O thread. */
#ifndef EMBER_VMM_VIRTIO_H
#define EMBER_VMM_VIRTIO_H

/*
 * For each virtio entry of the device list (a --disk, --rng or --balloon,
 * and the --console virtio device):
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

#include "../devices/virtio/ratelimit.h"
#include "../lib/io/state.h"
#include "devmgr.h"
#include "vm.h"

struct vmm_devopt;
struct vmm_virtio;

/*
 * Rate limiting. A device with token buckets (devices/virtio/ratelimit.h:
 * blk, rng, net) gives each of its limiters to vmm_virtio_add_limiter in
 * vmm_virtio_create, with the limits of its sub-options
 * (vmm_virtio_rate_config reads bw, bw-burst, ops, ops-burst: put
 * VMM_DEVOPT_RATE_KEYS, config.h, in its option's keys). The VMM then:
 *   - sets the limiter's wait callback: when the device finds a limiter dry
 *     with requests waiting it calls ratelimit_throttle, and a timer on the
 *     VM's loop (one per device) re-runs every queue of the device (under
 *     dev_lock, held while paused) when the tokens are back;
 *   - serves ember_vm_set_rate_limit / ember_vm_get_rate_limit: the device
 *     is named "disk0" (every limiter of it) or "net0.rx" (the limiter
 *     named rx); a change is made under the transport lock and the queues
 *     run again at once.
 * A device's queue work must therefore touch its limiters only under the
 * transport lock (process() already runs under it). A device with two
 * directions (net) names them ("rx", "tx"); one with one limiter gives NULL.
 */
#define VMM_VIRTIO_MAX_LIMITERS 2
struct vmm_virtio_limiter {
	const char *name; /* NULL: the device's only limiter */
	struct ratelimit *rl;
};
/* The limits in o's rate sub-options into *out; returns whether any is set. */
int vmm_virtio_rate_config(const struct vmm_devopt *o, struct ratelimit_config *out);
/* Registers a limiter of v (from vmm_virtio_create, before the device runs)
 * and sets its limits (cfg NULL: unlimited). name is static storage. */
void vmm_virtio_add_limiter(struct vmm_virtio *v, const char *name, struct ratelimit *rl,
			    const struct ratelimit_config *cfg);

int vmm_virtio_create(struct ember_vm *vm, struct vmm_dev_desc *d, const struct vmm_devopt *o,
		      struct vmm_virtio **out, struct ember_error *err);
/* The --console virtio device (hvc0) for its entry d: its output goes into
 * the VM's console buffer (vmm_vm_console_write; when that is full the
 * device stops taking transmit buffers until vmm_virtio_console_ready), its
 * input comes from vmm_virtio_console_input. */
int vmm_virtio_create_console(struct ember_vm *vm, struct vmm_dev_desc *d, struct vmm_virtio **out,
			      struct ember_error *err);
/* I/O thread, dev_lock held: console input into the guest's posted receive
 * buffers; returns the bytes taken (0 for a device that is no console). */
size_t vmm_virtio_console_input(struct vmm_virtio *v, const uint8_t *buf, size_t len);
/* I/O thread, dev_lock held: the console buffer has room again. */
void vmm_virtio_console_ready(struct vmm_virtio *v);
/* I/O thread, dev_lock held: the terminal's new size (nothing when the
 * device was made without one). */
void vmm_virtio_console_resize(struct vmm_virtio *v, uint16_t cols, uint16_t rows);
int vmm_virtio_start(struct vmm_virtio *v, struct ember_error *err);
void vmm_virtio_kick(struct vmm_virtio *v);
/* Pausing (dev_lock held, devs_paused set): waits until the device has no
 * I/O in flight, completing what was (a disk's io_uring requests: used ring
 * and interrupt), and marks its queues for the kick on resume. Returns the
 * requests waited for. */
unsigned vmm_virtio_quiesce(struct vmm_virtio *v);
/* A machine reset (dev_lock held, devs_paused set, quiesced): the device
 * and its transport back to Status 0 (its queues dropped, held kicks
 * forgotten); the host side (image, tap, vsock socket) stays. */
void vmm_virtio_reset(struct vmm_virtio *v);
void vmm_virtio_destroy(struct vmm_virtio *v);
/* Saved state (vmm/devstate.c): the transport's and the device's sections
 * (virtio_mmio_save: the VM paused, dev_lock held). Returns 0 or -errno. */
int vmm_virtio_save(struct vmm_virtio *v, struct vmm_state_w *w);
/* virtio_mmio_load_deferred into v (the VM freshly built, dev_lock held); every queue
 * is then run once at the next kick (vmm_virtio_kick: chains the saved
 * device held are taken again). Returns 0 or the reader's error. */
int vmm_virtio_load(struct vmm_virtio *v, struct vmm_state_r *r);
/* After every device loaded: what the guest sees of the load (a device's
 * restored hook, e.g. virtio-vsock's transport reset; a pending interrupt
 * raised again). Call it after the interrupt controllers' state is back. */
void vmm_virtio_finish_load(struct vmm_virtio *v);
/* Its entry in the device list ("disk0"). */
const struct vmm_dev_desc *vmm_virtio_desc(const struct vmm_virtio *v);
/* The balloon's size and target in bytes, as the driver last said (no
 * request to the guest: cheap, for the balloon event's watcher). Any
 * thread, not with dev_lock held (it takes it). -ENODEV without a balloon. */
int vmm_virtio_balloon_peek(struct ember_vm *vm, uint64_t *actual, uint64_t *target);
/*
 * Hotplug (the board's slots): a virtio-net made from spec (--net's
 * sub-options: tap=NAME or fd=N, mac=MAC; checked as --net is) for the
 * slot's entry d, whose ioeventfds and irqfd exist already, and started on
 * the VM's loop. d->ops/opaque are left to the caller (the slot's proxy
 * stays on the bus). Any thread but the I/O thread. 0 and *out, or the
 * errors of --net, err set.
 */
int vmm_virtio_hotplug_net(struct ember_vm *vm, struct vmm_dev_desc *d, const char *spec,
			   struct vmm_virtio **out, struct ember_error *err);
/* The bus-facing device of v's transport, and its device status byte. */
struct dev *vmm_virtio_bus_dev(struct vmm_virtio *v);
uint8_t vmm_virtio_status(struct vmm_virtio *v);
/* One line for --verbose logs and the stop summary: what the device did. */
int vmm_virtio_format(struct vmm_virtio *v, char *buf, size_t len);

#endif /* EMBER_VMM_VIRTIO_H */
