/* devices/pvpanic.h - the pvpanic device: the guest kernel reports a panic through one port. */
#ifndef EMBER_DEVICES_PVPANIC_H
#define EMBER_DEVICES_PVPANIC_H

/*
 * QEMU's pvpanic ISA device, as Linux's pvpanic-mmio driver (ACPI HID
 * QEMU0001, an I/O port or MMIO resource) sees it: one byte.
 *   read:  the events the device supports (PVPANIC_PANICKED |
 *          PVPANIC_CRASH_LOADED); the driver writes only those.
 *   write: the events that happened; bit 0 "the guest panicked", bit 1 "a
 *          crash kernel is loaded and will take over". Other bits are
 *          ignored; a write of 0 is no event.
 * Every write with a supported bit set calls event(opaque, bits); the device
 * keeps the OR of all events since creation or reset (pvpanic_events).
 *
 * Thread-safety: any thread, no lock (state is one atomic). event() runs on
 * the vCPU thread that wrote the port.
 */

#include "device.h"

#include <stdint.h>

#define PVPANIC_WINDOW	     1
#define PVPANIC_PANICKED     (1u << 0)
#define PVPANIC_CRASH_LOADED (1u << 1)

struct pvpanic_config {
	void (*event)(void *opaque, unsigned events); /* may be NULL */
	void *opaque;
};

struct pvpanic;

/* Returns 0 and *out, or -EINVAL (NULL cfg or out), -ENOMEM. */
int pvpanic_create(const struct pvpanic_config *cfg, struct pvpanic **out);
struct dev *pvpanic_dev(struct pvpanic *p);
/* The OR of the events written since creation or the last reset. */
unsigned pvpanic_events(struct pvpanic *p);

#endif /* EMBER_DEVICES_PVPANIC_H */
