/* vmm/arch/x86/devices.c - the x86 board's device list, planned from the configuration, and the DSDT entries made from it. */
#include "devices.h"
#include "acpi_pm.h"
#include "layout.h"
#include "x86.h"

#include "../../config.h"
#include "../../internal.h"

#include "../../../devices/ged.h"
#include "../../../devices/i8042.h"
#include "../../../devices/pci_host.h"
#include "../../../devices/pvpanic.h"
#include "../../../devices/rtc_cmos.h"
#include "../../../devices/serial8250.h"
#include "../../../devices/virtio/mmio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The device region takes no RAM (so the E820 map needs no hole for it) and
 * stays below the in-kernel IOAPIC and LAPIC. */
_Static_assert(X86_PORT_RESET_CF9 == X86_PORT_PCI_CONF1 + 1,
	       "the PCI host bridge forwards its offset 1 to the reset control register");
_Static_assert(X86_DEVICE_MMIO_BASE >= X86_MMIO_HOLE_START &&
		   X86_DEVICE_MMIO_END <= X86_IOAPIC_ADDR,
	       "the device MMIO region must lie in the MMIO hole, below the IOAPIC");

void vmm_x86_devmgr_layout(struct vmm_devmgr_layout *out)
{
	*out = (struct vmm_devmgr_layout){
	    .mmio_base = X86_DEVICE_MMIO_BASE,
	    .mmio_end = X86_DEVICE_MMIO_END,
	    .mmio_align = 4096,
	    .gsi_first = X86_DEVICE_GSI_FIRST,
	    .gsi_last = X86_DEVICE_GSI_LAST,
	};
}

#define BOOT_MARKER_PORT 0x80 /* where the e2e and built-in inits write their marks */
#define PIO(b, l, off, a)                                                 \
	{                                                                 \
		.base = (b), .len = (l), .dev_offset = (off), .acpi = (a) \
	}

/* The board's own devices, in datasheet order. board.c creates an instance
 * for each of the platform ones (by name). */
static const struct vmm_dev_desc legacy[] = {
    {.name = "pic",
     .what = "8259A PIC pair",
     .kind = VMM_DEV_IN_KERNEL,
     .npio = 2,
     .pio = {PIO(0x20, 2, 0, false), PIO(0xa0, 2, 0, false)}},
    {.name = "pit",
     .what = "8254 PIT",
     .kind = VMM_DEV_IN_KERNEL,
     .npio = 2,
     .pio = {PIO(0x40, 4, 0, false), PIO(0x61, 1, 0, false)}},
    {.name = "ioapic",
     .what = "IOAPIC, 24 pins",
     .kind = VMM_DEV_IN_KERNEL,
     .mmio_base = X86_IOAPIC_ADDR,
     .mmio_size = 0x1000},
    {.name = "lapic",
     .what = "local APIC of each vCPU",
     .kind = VMM_DEV_IN_KERNEL,
     .mmio_base = X86_LAPIC_ADDR,
     .mmio_size = 0x1000},
    {.name = "com1",
     .what = "16550A UART (ttyS0)",
     .kind = VMM_DEV_PLATFORM,
     .acpi_name = "COM1",
     .acpi_hid = "PNP0501",
     .acpi_uid = 1,
     .npio = 1,
     .pio = {PIO(X86_PORT_COM1, SERIAL8250_WINDOW, 0, true)},
     .has_irq = true,
     .gsi_fixed = true,
     .gsi = X86_IRQ_COM1},
    {.name = "i8042",
     .what = "i8042 keyboard controller (reset line)",
     .kind = VMM_DEV_PLATFORM,
     .acpi_name = "PS2K",
     .acpi_hid = "PNP0303",
     .npio = 2,
     .pio = {PIO(X86_PORT_I8042_DATA, 1, I8042_DATA, true),
	     PIO(X86_PORT_I8042_CMD, 1, I8042_COMMAND, true)},
     .has_irq = true,
     .gsi_fixed = true,
     .gsi = X86_IRQ_KEYBOARD},
    {.name = "rtc",
     .what = "MC146818 CMOS RTC",
     .kind = VMM_DEV_PLATFORM,
     .acpi_name = "RTC_",
     .acpi_hid = "PNP0B00",
     .npio = 1,
     .pio = {PIO(X86_PORT_RTC, RTC_CMOS_WINDOW, 0, true)},
     .has_irq = true,
     .gsi_fixed = true,
     .gsi = X86_IRQ_RTC},
    {.name = "bootmarker",
     .what = "boot-time marker port",
     .kind = VMM_DEV_PLATFORM,
     .npio = 1,
     .pio = {PIO(BOOT_MARKER_PORT, 1, 0, false)}},
    /* Linux's pvpanic-mmio driver (a module: the built-in initramfs loads
     * it) takes this I/O port resource as QEMU's ISA pvpanic offers it. */
    {.name = "pvpanic",
     .what = "pvpanic (guest kernel panic notifier)",
     .kind = VMM_DEV_PLATFORM,
     .acpi_name = "PEVT",
     .acpi_hid = "QEMU0001",
     .npio = 1,
     .pio = {PIO(X86_PORT_PVPANIC, PVPANIC_WINDOW, 0, true)}},
    /* Configuration mechanism #1 (0xcf8-0xcff) and, inside its address
     * latch's dword, the reset control register at 0xcf9: one owner for
     * the 8 ports (the bus refuses overlaps); the bridge hands the byte at
     * 0xcf9 to the reset register's handler (board.c). */
    {.name = "pci-host",
     .what = "PCI host bridge 00:00.0 (config mechanism #1; 0xcf9 reset control register)",
     .kind = VMM_DEV_PLATFORM,
     .npio = 1,
     .pio = {PIO(X86_PORT_PCI_CONF1, PCI_HOST_WINDOW, 0, false)}},
    {.name = "acpi-pm",
     .what = "ACPI sleep control, sleep status and reset registers",
     .kind = VMM_DEV_PLATFORM,
     .npio = 1,
     .pio = {PIO(X86_PORT_ACPI_SLEEP_CTL, ACPI_PM_WINDOW, 0, false)}},
    /* Power and sleep buttons, GPE-style events (and hotplug): its DSDT
     * entry (with _EVT) is acpi.c's own, so no acpi_name here. */
    {.name = X86_GED_NAME,
     .what = "ACPI Generic Event Device (power/sleep buttons, GPE events)",
     .kind = VMM_DEV_PLATFORM,
     .mmio_base = X86_GED_ADDR,
     .mmio_size = 0x1000,
     .has_irq = true,
     .gsi_fixed = true,
     .gsi = X86_IRQ_GED,
     .level = true},
};

/* Virtqueues of a device kind (one ioeventfd on QueueNotify each): a disk
 * has one queue per vCPU (up to the transport's maximum). */
unsigned vmm_x86_virtio_queues(const struct ember_config *cfg, const struct vmm_devopt *o)
{
	if (!strcmp(o->type->name, "disk"))
		return cfg->cpus < VIRTIO_MMIO_MAX_QUEUES ? cfg->cpus : VIRTIO_MMIO_MAX_QUEUES;
	if (!strcmp(o->type->name, "balloon"))
		return 4; /* inflate, deflate, stats, reporting */
	if (!strcmp(o->type->name, "vsock"))
		return 3; /* rx, tx, event */
	if (!strcmp(o->type->name, "net"))
		return 2; /* receive, transmit */
	return 1;
}

/* One virtio-mmio entry: an allocated window and GSI, an ioeventfd per
 * queue on QueueNotify (datamatch: the queue index) and an irqfd (edge) for
 * its interrupt. */
static int plan_virtio(struct vmm_devmgr *m, const char *name, const char *what, const char *detail,
		       unsigned uid, unsigned nqueues, struct ember_error *err)
{
	struct vmm_dev_desc d = {
	    .what = what,
	    .kind = VMM_DEV_VIRTIO_MMIO,
	    .acpi_hid = "LNRO0005",
	    .acpi_uid = uid,
	    .mmio_size = X86_VIRTIO_MMIO_SIZE,
	    .has_irq = true,
	    .detail = detail,
	};
	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.acpi_name, sizeof(d.acpi_name), "V%03X", uid & 0xfff);
	d.nioeventfds = nqueues;
	for (unsigned q = 0; q < d.nioeventfds; q++)
		d.ioeventfds[q] = (struct vmm_dev_ioeventfd){.offset = VIRTIO_MMIO_QUEUE_NOTIFY,
							     .len = 4,
							     .datamatch = true,
							     .data = q,
							     .fd = -1};
	d.irqfd = true;
	d.irqfd_fd = -1;
	return vmm_devmgr_add(m, &d, NULL, err);
}

/* A device option's entry, named after it (disk0, rng0...). */
static int plan_option(const struct ember_config *cfg, struct vmm_devmgr *m,
		       const struct vmm_devopt *o, unsigned nvirtio, struct ember_error *err)
{
	char name[24];
	snprintf(name, sizeof(name), "%s%u", o->type->name, o->index);
	return plan_virtio(m, name, o->type->what, o->spec, nvirtio, vmm_x86_virtio_queues(cfg, o),
			   err);
}

int vmm_board_plan(const struct ember_config *cfg, struct vmm_devmgr *m, struct ember_error *err)
{
	struct vmm_devmgr_layout l;
	vmm_x86_devmgr_layout(&l);
	vmm_devmgr_init(m, &l);
	for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++) {
		int r = vmm_devmgr_add(m, &legacy[i], NULL, err);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; cfg && i < cfg->ndevs; i++) {
		int r = plan_option(cfg, m, &cfg->devs[i], i, err);
		if (r < 0)
			return r;
	}
	/* --console virtio: receiveq and transmitq of port 0, after the
	 * device options (their names and ACPI ids stay as they were) */
	if (cfg && cfg->console_virtio) {
		int r = plan_virtio(m, X86_VIRTIO_CONSOLE_NAME, "virtio-console (hvc0)", NULL,
				    cfg->ndevs, 2, err);
		if (r < 0)
			return r;
	}
	/* hotplug slots last (the other devices keep their places): a window,
	 * a GSI, the queues' ioeventfds and the irqfd of a virtio-net, made at
	 * boot and used by whichever card a slot holds; the DSDT entry is the
	 * GED block's (acpi.c), so no ACPI name here */
	for (unsigned i = 0; cfg && i < cfg->hotplug_slots; i++) {
		char name[16];
		snprintf(name, sizeof(name), X86_HOTPLUG_NAME "%u", i & 0xffu);
		struct vmm_dev_desc *d;
		int r = plan_virtio(m, name, "hotplug slot (virtio-net)", NULL, 0x100 + i, 2, err);
		if (r < 0)
			return r;
		d = vmm_devmgr_find(m, name);
		if (d)
			d->acpi_name[0] = 0;
	}
	return 0;
}

int vmm_x86_acpi_devices(const struct vmm_devmgr *m, struct vmm_acpi_device *out, unsigned cap)
{
	unsigned n = 0;
	for (unsigned i = 0; i < m->n; i++) {
		const struct vmm_dev_desc *d = &m->devs[i];
		if (!d->acpi_name[0] || d->pending || d->kind == VMM_DEV_IN_KERNEL)
			continue;
		if (n >= cap)
			return -E2BIG;
		struct vmm_acpi_device *a = &out[n];
		memset(a, 0, sizeof(*a));
		memcpy(a->name, d->acpi_name, sizeof(a->name));
		a->hid = d->acpi_hid;
		a->uid = d->acpi_uid;
		for (unsigned k = 0; k < d->npio; k++) {
			if (!d->pio[k].acpi)
				continue;
			if (a->nres >= VMM_ACPI_MAX_RES)
				return -EINVAL;
			a->res[a->nres++] = (struct vmm_acpi_res){
			    .kind = VMM_ACPI_RES_IO, .base = d->pio[k].base, .len = d->pio[k].len};
		}
		if (d->mmio_size) {
			if (a->nres >= VMM_ACPI_MAX_RES ||
			    vmm_range_exceeds(d->mmio_base, d->mmio_size, 1ull << 32))
				return -EINVAL;
			a->res[a->nres++] = (struct vmm_acpi_res){.kind = VMM_ACPI_RES_MEM32,
								  .base = (uint32_t)d->mmio_base,
								  .len = (uint32_t)d->mmio_size};
		}
		if (d->has_irq) {
			if (a->nres >= VMM_ACPI_MAX_RES)
				return -EINVAL;
			a->res[a->nres++] = (struct vmm_acpi_res){.kind = VMM_ACPI_RES_IRQ,
								  .base = d->gsi,
								  .level = d->level,
								  .active_low = d->active_low};
		}
		n++;
	}
	return (int)n;
}

void vmm_board_ram_limit(uint64_t *max, unsigned *phys_bits, uint64_t *hole)
{
	*hole = X86_MMIO_HOLE_END - X86_MMIO_HOLE_START;
	*phys_bits = vmm_x86_host_phys_bits();
	*max = vmm_x86_max_guest_ram(*phys_bits, *hole);
}
