/* vmm/arch/x86/acpi_pm.h - the hardware-reduced ACPI sleep control/status and reset registers as a PIO device. */
#ifndef EMBER_VMM_X86_ACPI_PM_H
#define EMBER_VMM_X86_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "../../../lib/io/bus.h"

/*
 * Three byte-wide registers, at offsets 0, 1 and 2 of a 3-byte window (the
 * FADT's SLEEP_CONTROL_REG, SLEEP_STATUS_REG and RESET_REG, see acpi.c):
 *   0  sleep control: a write with SLP_EN (bit 5) and SLP_TYP (bits 4:2)
 *      equal to s5_sleep_type powers the machine off (poweroff());
 *      another sleep type is reported through sleep() once per type (a
 *      guest writing it in a loop cannot flood the log) and otherwise
 *      ignored.
 *   1  sleep status: reads WAK_STS (bit 7) set; writes are ignored.
 *   2  reset: a write of reset_value resets the machine (reset()).
 * Other reads return 0. Only 1-byte accesses (the bus rejects the rest).
 * Callbacks run on the vCPU thread that wrote; no lock is held.
 */
struct acpi_pm {
	void (*poweroff)(void *opaque);
	void (*reset)(void *opaque);
	void (*sleep)(void *opaque, unsigned sleep_type);
	void *opaque;
	uint8_t s5_sleep_type;
	uint8_t reset_value;
	uint8_t sleep_reported; /* bit per sleep type already reported (atomic; start 0) */
};

#define ACPI_PM_WINDOW 3
extern const struct bus_ops acpi_pm_ops; /* opaque: struct acpi_pm * */

#endif /* EMBER_VMM_X86_ACPI_PM_H */
