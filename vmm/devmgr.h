/* vmm/devmgr.h - the device manager: the board's devices as one list of descriptors (windows, GSIs, ioeventfds, irqfds). */
#ifndef EMBER_VMM_DEVMGR_H
#define EMBER_VMM_DEVMGR_H

/*
 * A device is described in one place: a struct vmm_dev_desc in the device
 * manager's list. The board plans the list from the configuration
 * (vmm_board_plan, a pure function: no VM, no device instance), which is
 * what `--dry-run` prints; ember_vm_create() plans the same list, creates an
 * instance for each entry and attaches it (vmm_devmgr_attach: its PIO ranges
 * and MMIO window on the buses, its ioeventfds and irqfds). The board's
 * ACPI DSDT is generated from the same list (each entry with an ACPI name),
 * so the addresses and interrupts the guest is told about are the ones the
 * buses dispatch and the IRQ lines raise.
 *
 * Resources
 *  - PIO ranges: fixed, given by the descriptor (the legacy devices sit at
 *    their PC addresses). Overlaps are refused when a device is added.
 *  - An MMIO window: a device asks for mmio_size bytes and gets a window
 *    from the board's MMIO region (struct vmm_devmgr_layout: on x86
 *    0xd0000000..0xdfffffff, inside the 32-bit MMIO hole, so it takes no RAM
 *    and the E820 map needs no extra hole), 4 KiB aligned, in the order
 *    devices are added. A fixed mmio_base may be given instead.
 *  - A GSI: fixed (the ISA IRQs of the legacy devices) or allocated from
 *    the board's range of IOAPIC pins (x86: 16..23, pins with no legacy
 *    use), in order. The manager wires it: vmm_dev_set_irq(desc, level)
 *    calls the board's irq line with that GSI, and is the set_irq callback
 *    devices are created with.
 *  - ioeventfds (a guest write at window offset X, optionally matching a
 *    value, signals an eventfd without a vCPU exit) and an irqfd (an eventfd
 *    that raises the GSI): declared in the descriptor, created at attach
 *    time through the manager's hooks (struct vmm_devmgr_hooks), which the
 *    board fills from the hypervisor layer. No device uses them yet.
 *
 * Entries may be pending: described (a window and a GSI are reserved, so
 * the layout does not move when the device arrives) but not built: not on
 * a bus, not in the DSDT; --dry-run says why. Disks are pending until the
 * virtio-blk device exists.
 *
 * Thread-safety: the list is built and attached by one thread before the
 * vCPUs run and is read-only afterwards; vmm_dev_set_irq may then be called
 * from any thread (it reads the descriptor only).
 */

#include <ember/vmm.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/io/bus.h"

struct ember_config;

#define VMM_DEV_MAX_PIO	       4
#define VMM_DEV_MAX_IOEVENTFDS 16 /* one per virtqueue; more queues share (the driver maps) */
#define VMM_DEVMGR_MAX	       48

enum vmm_dev_kind {
	VMM_DEV_PLATFORM,    /* a device of the board at fixed addresses (UART, RTC...) */
	VMM_DEV_IN_KERNEL,   /* emulated by the hypervisor (PIT, IOAPIC): listed only */
	VMM_DEV_VIRTIO_MMIO, /* a virtio-mmio transport: _HID LNRO0005, window + interrupt */
	VMM_DEV_MMIO,	     /* another MMIO device with an allocated window (tests) */
};

struct vmm_dev_pio {
	uint16_t base;
	uint16_t len;
	uint64_t dev_offset; /* offset the device sees at base (bus_register_at) */
	bool acpi;	     /* listed in the device's _CRS */
};

struct vmm_dev_ioeventfd {
	uint64_t offset; /* in the MMIO window (virtio-mmio QueueNotify: 0x50) */
	unsigned len;	 /* 1, 2, 4 or 8; 0: any width */
	bool datamatch;	 /* signal only when the value written equals data */
	uint64_t data;	 /* (virtio: the queue index) */
	int fd;		 /* filled by vmm_devmgr_attach; -1 before */
};

struct vmm_devmgr;

struct vmm_dev_desc {
	char name[16];	  /* "com1", "disk0": unique; --dry-run and messages */
	const char *what; /* what it is, one phrase: "16550A UART (ttyS0)" (static) */
	enum vmm_dev_kind kind;

	/* ACPI: a DSDT Device() when acpi_name is set (4 characters, e.g.
	 * "COM1", "V000"); _HID (an EISA id like "PNP0501" or a string like
	 * "LNRO0005"), _UID, and a _CRS of the PIO ranges marked acpi, the MMIO
	 * window and the interrupt. */
	char acpi_name[5];
	const char *acpi_hid;
	uint32_t acpi_uid;

	unsigned npio;
	struct vmm_dev_pio pio[VMM_DEV_MAX_PIO];

	/* MMIO window: asked for with mmio_size (0: none); mmio_base is 0 to
	 * allocate one (then mmio_size is rounded up to the layout's granule:
	 * the device owns all of it), or a fixed address. Filled in by
	 * vmm_devmgr_add; ioeventfds are checked against the size asked. */
	uint64_t mmio_base;
	uint64_t mmio_size;

	/* Interrupt: has_irq; gsi is fixed when gsi_fixed, else allocated.
	 * level/active_low as the DSDT declares it (default edge, active high). */
	bool has_irq;
	bool gsi_fixed;
	uint32_t gsi;
	bool level;
	bool active_low;

	unsigned nioeventfds;
	struct vmm_dev_ioeventfd ioeventfds[VMM_DEV_MAX_IOEVENTFDS];
	bool irqfd;   /* the device raises its GSI through an irqfd */
	int irqfd_fd; /* filled by vmm_devmgr_attach; -1 before */

	/* Not built yet: described, resources reserved, not attached. */
	const char *pending; /* why (static), or NULL */
	const char *detail;  /* extra text for --dry-run (e.g. the disk's options), or NULL */

	/* The instance, set by the board after it created the device: what the
	 * buses dispatch to (ops NULL: nothing to dispatch, e.g. in-kernel). */
	const struct bus_ops *ops;
	void *opaque;

	struct vmm_devmgr *mgr; /* back pointer, for vmm_dev_set_irq */
};

/* The board's resource ranges. */
struct vmm_devmgr_layout {
	uint64_t mmio_base;  /* first address of the MMIO device region */
	uint64_t mmio_end;   /* one past its last address */
	uint64_t mmio_align; /* window alignment and granule (4 KiB) */
	uint32_t gsi_first;  /* the GSIs the manager may allocate, inclusive */
	uint32_t gsi_last;
};

/* What the manager calls into the board (or a test). Any may be NULL: then
 * a device needing it cannot be attached (-EOPNOTSUPP). */
struct vmm_devmgr_hooks {
	/* raise or lower a GSI (the board's IRQ line) */
	void (*set_irq)(void *opaque, uint32_t gsi, bool level);
	/* an ioeventfd at a guest-physical MMIO address; *fd receives it */
	int (*add_ioeventfd)(void *opaque, uint64_t addr, unsigned len, bool datamatch,
			     uint64_t data, int *fd);
	/* an irqfd raising gsi (level: the GSI is level-triggered, so the
	 * irqfd needs a resample eventfd, KVM_IRQFD_FLAG_RESAMPLE); *fd
	 * receives it */
	int (*add_irqfd)(void *opaque, uint32_t gsi, bool level, int *fd);
	void *opaque;
	/* The fds the hooks return belong to the hooks' owner (the board closes
	 * them when the VM is destroyed); the descriptors only record them. */
};

struct vmm_devmgr {
	struct vmm_devmgr_layout layout;
	struct vmm_devmgr_hooks hooks;
	uint64_t next_mmio;
	uint32_t next_gsi;
	unsigned n;
	struct vmm_dev_desc devs[VMM_DEVMGR_MAX];
};

/* Empties *m for a board layout (hooks none). */
void vmm_devmgr_init(struct vmm_devmgr *m, const struct vmm_devmgr_layout *layout);

/*
 * Adds a copy of *d to the list, allocating its MMIO window and GSI when it
 * asks for them; *out (if not NULL) receives the entry, whose address is
 * stable for the manager's life. Errors (err says which device and why):
 * -EINVAL (bad descriptor: no name, a duplicate name, a bad PIO range or
 * ioeventfd), -EEXIST (a PIO range or fixed window overlaps another
 * device's, a fixed GSI is taken), -ENOSPC (the MMIO region or the GSI
 * range is used up), -E2BIG (more than VMM_DEVMGR_MAX devices).
 */
int vmm_devmgr_add(struct vmm_devmgr *m, const struct vmm_dev_desc *d, struct vmm_dev_desc **out,
		   struct ember_error *err);

/* The entry named name, or NULL. */
struct vmm_dev_desc *vmm_devmgr_find(struct vmm_devmgr *m, const char *name);

/*
 * Puts every built entry (not pending, not in-kernel, ops set) on the
 * buses: its PIO ranges on pio and its window on mmio; then creates its
 * ioeventfds (at mmio_base + offset) and irqfd through the hooks. Returns 0
 * or the first error (-EOPNOTSUPP: a hook is missing; an error of
 * bus_register or of a hook), err naming the device.
 */
int vmm_devmgr_attach(struct vmm_devmgr *m, struct bus *pio, struct bus *mmio,
		      struct ember_error *err);

/* Raises (level true) or lowers the device's GSI through the hooks. The
 * set_irq callback shape of the legacy devices: opaque is the descriptor. */
void vmm_dev_set_irq(void *desc, bool level);

/*
 * One line per device, as `ember run --dry-run` prints it:
 *   device com1: 16550A UART (ttyS0); pio 0x3f8-0x3ff; irq 4; acpi COM1 PNP0501
 * snprintf style (returns the full length).
 */
int vmm_devmgr_format(const struct vmm_devmgr *m, char *buf, size_t len);

/* ------------------------------------------------------------ the board's side */

/*
 * Implemented by vmm/arch/<arch>/: initialises *m with the board's layout and
 * adds the board's devices for cfg (the legacy devices, then one entry per
 * device option). Pure: touches neither the file system nor a VM, so
 * ember_config_format (--dry-run) and ember_config_resolve (does the list
 * fit?) call it too. Errors as vmm_devmgr_add.
 */
int vmm_board_plan(const struct ember_config *cfg, struct vmm_devmgr *m, struct ember_error *err);

/*
 * Implemented by vmm/arch/<arch>/: the most guest RAM this host can give a
 * guest on this board (*max), and for the message when --mem is above it,
 * the host's physical address bits (*phys_bits) and the size of the MMIO
 * hole below 4 GiB (*hole). Pure, like vmm_board_plan (reads CPUID).
 */
void vmm_board_ram_limit(uint64_t *max, unsigned *phys_bits, uint64_t *hole);

#endif /* EMBER_VMM_DEVMGR_H */
