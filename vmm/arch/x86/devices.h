/* vmm/arch/x86/devices.h - the x86 board's device list: layout of the MMIO region and GSIs, and the DSDT entries made from it. */
#ifndef EMBER_VMM_X86_DEVICES_H
#define EMBER_VMM_X86_DEVICES_H

#include "../../devmgr.h"
#include "acpi.h"
#include "layout.h"

/*
 * The device manager's ranges on this board (vmm/devmgr.h):
 *   MMIO devices: windows from X86_DEVICE_MMIO_BASE (0xd0000000) to
 *     X86_DEVICE_MMIO_END (0xe0000000), 4 KiB granules, in the order the
 *     devices are added. The region is inside the 32-bit MMIO hole
 *     (0xc0000000-0xffffffff), which the E820 map already leaves out of RAM,
 *     so windows need no E820 entry of their own; the IOAPIC (0xfec00000) and
 *     LAPIC (0xfee00000) are above it.
 *   GSIs: the legacy devices keep their ISA IRQs (1 keyboard, 4 COM1, 8 RTC);
 *     other devices get IOAPIC pins X86_DEVICE_GSI_FIRST..LAST (16..23), the
 *     pins the in-kernel IOAPIC has (24) beyond the ISA ones, so there is no
 *     conflict with legacy edge-triggered IRQs. That is 8 interrupting
 *     devices; a larger IOAPIC or MSIs would give more.
 */
#define X86_DEVICE_MMIO_BASE X86_VIRTIO_MMIO_BASE /* 0xd0000000 */
#define X86_DEVICE_MMIO_END  0xe0000000ULL
#define X86_DEVICE_GSI_FIRST 16
#define X86_DEVICE_GSI_LAST  23
#define X86_VIRTIO_MMIO_SIZE 0x1000ULL /* one window per virtio-mmio device */

/* The board's layout for vmm_devmgr_init. */
void vmm_x86_devmgr_layout(struct vmm_devmgr_layout *out);

/*
 * The DSDT entries of every attached device with an ACPI name (pending
 * devices are left out): _HID, _UID and a _CRS of its ACPI-listed PIO
 * ranges, its MMIO window (Memory32Fixed) and its interrupt (Extended
 * Interrupt with the GSI). Fills up to cap entries of out and returns how
 * many, or -E2BIG (cap too small), -EINVAL (a window above 4 GiB or too many
 * resources for one entry).
 */
struct ember_config;
struct vmm_devopt;
/* The virtqueues (and QueueNotify ioeventfds) a device option's virtio
 * device has: a disk one per vCPU up to VIRTIO_MMIO_MAX_QUEUES, a balloon 4,
 * others 1. */
unsigned vmm_x86_virtio_queues(const struct ember_config *cfg, const struct vmm_devopt *o);

/* The device list's names of the hotplug slots: "hotplug0"... */
#define X86_HOTPLUG_NAME "hotplug"

/* The device list's name of the ACPI Generic Event Device. */
#define X86_GED_NAME "acpi-ged"

/* The device list's name of the --console virtio device. */
#define X86_VIRTIO_CONSOLE_NAME "console0"

int vmm_x86_acpi_devices(const struct vmm_devmgr *m, struct vmm_acpi_device *out, unsigned cap);

#endif /* EMBER_VMM_X86_DEVICES_H */
