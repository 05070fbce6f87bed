/* devices/ged.h - the ACPI Generic Event Device's registers: pending events, GPE acknowledgements, hotplug slots. */
#ifndef EMBER_DEVICES_GED_H
#define EMBER_DEVICES_GED_H

/*
 * The hardware side of an ACPI Generic Event Device (ACPI 6.5 5.6.9,
 * _HID ACPI0013). The DSDT (vmm/arch/x86/acpi.c) declares the GED with one
 * level-triggered, active-high interrupt and an _EVT method that reads the
 * event register through an OperationRegion over this window and
 * dispatches on its bits (Linux: drivers/acpi/evged.c runs _EVT from a
 * threaded, one-shot handler, so the line stays masked until _EVT read the
 * register and lowered it).
 *
 * Window (GED_WINDOW bytes; 4-byte accesses at 4-byte aligned offsets,
 * others read 0 and are ignored):
 *   0x00 EVENT  read: the pending events, which the read clears (the line
 *               goes low); write: ignored. Bits: GED_EV_POWER (power
 *               button), GED_EV_SLEEP (sleep button), GED_EV_HOTPLUG (a
 *               hotplug slot changed: look at SLOTS), GED_EV_VMGENID (the
 *               VM Generation ID changed), GED_EV_GPE(n).
 *   0x04 ACK    write n: the DSDT's handler of GPE-style event n ran
 *               (counted, ged_stats.gpe_handled[n]); read 0.
 *   0x08 SLOTS  read: bit i set = hotplug slot i holds a device (_STA of
 *               the slot's device is 0xf, else 0); write: ignored.
 *   0x0c EJECT  write i: the guest ejected slot i's device:
 *               eject(opaque, i) is called; read 0. (The DSDT gives the
 *               slots no _EJ0 today: Linux 6.1 cannot eject an
 *               ACPI-enumerated platform device, see ember_vm_net_hotplug_remove.)
 * The interrupt line is high while any event is pending.
 *
 * Thread-safety: any thread; one mutex per device. set_irq() runs with it
 * held; eject() after it is dropped (it may call ged_set_slots).
 * Reset (a guest reboot) clears pending events and lowers the line; the
 * slots and the counters stay. Saved state (dev_save/dev_load): the pending
 * events; a save while a hotplug slot holds a card is -EBUSY.
 */

#include "device.h"

#include <stdbool.h>
#include <stdint.h>

#define GED_WINDOW     0x10
#define GED_REG_EVENT  0x00
#define GED_REG_ACK    0x04
#define GED_REG_SLOTS  0x08
#define GED_REG_EJECT  0x0c
#define GED_EV_POWER   (1u << 0)
#define GED_EV_SLEEP   (1u << 1)
#define GED_EV_HOTPLUG (1u << 2)
#define GED_EV_VMGENID (1u << 3) /* the VM Generation ID changed (a restore) */
#define GED_MAX_GPE    24
#define GED_EV_GPE(n)  (1u << (8 + (n))) /* n < GED_MAX_GPE */
#define GED_MAX_SLOTS  32

struct ged_config {
	void (*set_irq)(void *opaque, bool level);  /* NULL: none */
	void (*eject)(void *opaque, unsigned slot); /* NULL: none */
	void *opaque;
};

struct ged_stats {
	uint64_t raised[3]; /* power, sleep, hotplug events raised */
	uint64_t gpe_raised[GED_MAX_GPE];
	uint64_t reads; /* reads of EVENT that found events */
	uint64_t gpe_handled[GED_MAX_GPE];
	uint64_t ejects;
};

struct ged;

/* Returns 0 and *out, or -EINVAL (NULL cfg or out), -ENOMEM. Free with
 * dev_destroy. */
int ged_create(const struct ged_config *cfg, struct ged **out);
struct dev *ged_dev(struct ged *g);

/* Makes events pending (an OR of GED_EV_*) and raises the line. Returns
 * -EINVAL for no bit or an unknown bit, else 0. */
int ged_raise(struct ged *g, uint32_t events);
/* Sets the SLOTS register (which hotplug slots hold a device). */
void ged_set_slots(struct ged *g, uint32_t present);
uint32_t ged_slots(struct ged *g);
void ged_get_stats(struct ged *g, struct ged_stats *out);

#endif /* EMBER_DEVICES_GED_H */
