/* devices/device.h - the device model contract: a const ops table, an instance, uniform verbs. */
#ifndef EMBER_DEVICES_DEVICE_H
#define EMBER_DEVICES_DEVICE_H

/*
 * Every device model is
 *   - one const struct dev_ops per device type, whose first member is the
 *     struct bus_ops the bus dispatches through (name, valid access widths,
 *     access handler), followed by the lifecycle verbs every device has;
 *   - an instance struct whose first member is a struct dev, created by the
 *     device's own typed constructor (e.g. serial8250_create) that takes its
 *     configuration (callbacks into the VMM) and returns -errno on failure.
 *
 * Devices know nothing of addresses, IRQ numbers, file descriptors or
 * terminals: the board (vmm/arch/x86/board.c) decides where a device sits
 * (dev_register) and what its callbacks do (raise a KVM IRQ line, write to
 * stdout, reboot the VM). A device's handler copes with any offset inside its
 * window and any value; the bus already filtered widths.
 *
 * Lifecycle: create -> dev_register (one or more windows) -> vCPUs run and
 * call the handler through the bus -> [dev_reset on a VM reboot] -> stop
 * vCPUs -> bus_destroy -> dev_destroy. A pause of the VM needs nothing of
 * a device: its vCPUs are out of KVM_RUN and the VMM's own work on the
 * device (console input, virtio queues) waits on the VM's device lock. Unless a device says otherwise, its handler and its other
 * functions may be called from several threads at once (each stateful
 * device has its own lock); dev_reset may run while vCPUs run; dev_destroy
 * may not.
 *
 * Callbacks a device makes into the VMM run on the thread that caused them
 * (a vCPU thread, or the thread that called e.g. serial8250_rx_push). Each
 * device's header says which callbacks run with its lock held; those must
 * not call back into the same device.
 */

#include "../lib/io/bus.h"
#include "../lib/io/state.h"

struct dev;

struct dev_ops {
	/* name (e.g. "serial8250"), access widths, access handler; the
	 * handler's opaque is the struct dev * (the instance). */
	struct bus_ops bus;
	/* Required. Puts the device in its power-on state, as after a machine
	 * reset (a guest reboot). Host-side configuration (callbacks) and
	 * battery-backed state (the RTC's clock and CMOS memory) survive. */
	void (*reset)(struct dev *dev);
	/* Required. Frees the instance. No vCPU may be inside its handler and
	 * no bus it was registered on may dispatch any more. */
	void (*destroy)(struct dev *dev);
	/* Optional (NULL: the device has no state worth keeping, its saved
	 * section is empty). Writes the device's guest-visible state into w
	 * as one or more sections of lib/io/state.h. Called with the VM
	 * paused (no vCPU in the handler, the VMM's work on the device
	 * quiesced); takes the device's own lock. Host-side configuration
	 * (callbacks, fds, paths) is not saved: the VMM rebuilds it from the
	 * configuration. Returns 0 or the writer's sticky error. */
	int (*save)(struct dev *dev, struct vmm_state_w *w);
	/* Optional, and present exactly when save is. Reads what save wrote
	 * into a freshly created instance (same configuration, vCPUs not
	 * started). Refuses malformed or impossible state with the reader's
	 * sticky error (-EINVAL, a message in vmm_sr_detail) and then leaves
	 * the instance as it was. Returns 0 or that error. */
	int (*load)(struct dev *dev, struct vmm_state_r *r);
};

/* The first member of every device instance. */
struct dev {
	const struct dev_ops *ops;
};

static inline const char *dev_name(const struct dev *dev)
{
	return dev->ops->bus.name;
}

static inline void dev_reset(struct dev *dev)
{
	dev->ops->reset(dev);
}

/* dev->ops->save, or 0 (nothing written) for a device without one. */
static inline int dev_save(struct dev *dev, struct vmm_state_w *w)
{
	return dev->ops->save ? dev->ops->save(dev, w) : vmm_sw_error(w);
}

/* dev->ops->load, or 0 (nothing read) for a device without one. */
static inline int dev_load(struct dev *dev, struct vmm_state_r *r)
{
	return dev->ops->load ? dev->ops->load(dev, r) : vmm_sr_error(r);
}

/* NULL is a no-op. */
static inline void dev_destroy(struct dev *dev)
{
	if (dev)
		dev->ops->destroy(dev);
}

/* Registers the device's window [base, base + len - 1] (offsets from 0) on
 * bus. Errors as bus_register. */
__attribute__((warn_unused_result)) static inline int dev_register(struct bus *bus, uint64_t base,
								   uint64_t len, struct dev *dev)
{
	return bus_register(bus, base, len, &dev->ops->bus, dev);
}

/* Registers [base, base + len - 1] as the device's offsets dev_offset...
 * (bus_register_at). Errors as bus_register_at. */
__attribute__((warn_unused_result)) static inline int
dev_register_at(struct bus *bus, uint64_t base, uint64_t len, struct dev *dev, uint64_t dev_offset)
{
	return bus_register_at(bus, base, len, &dev->ops->bus, dev, dev_offset);
}

#endif /* EMBER_DEVICES_DEVICE_H */
