/* vmm/arch/x86/acpi.h - builds the ACPI tables (RSDP, XSDT, FADT, MADT, DSDT) for the x86 board. */
#ifndef EMBER_VMM_X86_ACPI_H
#define EMBER_VMM_X86_ACPI_H

#include <ember/vmm.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The board describes its machine as data (CPUs, interrupt controllers, the
 * hardware-reduced sleep and reset registers, and a list of devices with
 * their resources); vmm_acpi_build() lays the tables out in one buffer that
 * the board copies to guest memory at base_gpa. Later devices (virtio-mmio:
 * _HID "LNRO0005", a Memory32Fixed window and an interrupt) are more entries
 * in the device list.
 */

enum vmm_acpi_res_kind {
	VMM_ACPI_RES_IO,    /* base, len: an I/O port range (len <= 255) */
	VMM_ACPI_RES_MEM32, /* base, len: a fixed 32-bit memory window */
	VMM_ACPI_RES_IRQ,   /* base: the GSI; level/active_low */
};
struct vmm_acpi_res {
	enum vmm_acpi_res_kind kind;
	uint32_t base;
	uint32_t len;
	bool level;
	bool active_low;
};

#define VMM_ACPI_MAX_RES 4
struct vmm_acpi_device {
	char name[5];	 /* ACPI name segment, e.g. "COM1" */
	const char *hid; /* "PNP0501" (an EISA id) or "LNRO0005" (a string id) */
	uint32_t uid;
	unsigned nres;
	struct vmm_acpi_res res[VMM_ACPI_MAX_RES];
};

/* FADT IA-PC boot architecture flags (ACPI 6.5 table 5.11) */
#define VMM_ACPI_IAPC_LEGACY_DEVICES	   (1u << 0)
#define VMM_ACPI_IAPC_8042		   (1u << 1)
#define VMM_ACPI_IAPC_VGA_NOT_PRESENT	   (1u << 2)
#define VMM_ACPI_IAPC_MSI_NOT_SUPPORTED	   (1u << 3)
#define VMM_ACPI_IAPC_PCIE_ASPM_CONTROLS   (1u << 4)
#define VMM_ACPI_IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

/*
 * The Generic Event Device (devices/ged.h's registers at mmio_base, one
 * level-triggered active-high GSI; a MADT interrupt source override makes
 * a legacy GSI level-triggered too): the DSDT gets \_SB.PWRB (PNP0C0C),
 * \_SB.SLPB (PNP0C0E) and \_SB.GED_ (ACPI0013) with an OperationRegion
 * over the registers and an _EVT that reads the event register once and
 * Notifies the buttons (0x80), calls \_SB.GED_.Gnnn for each GPE-style
 * event n < ngpe (each writes n to the acknowledge register).
 */
struct vmm_acpi_ged {
	uint32_t mmio_base;
	uint32_t gsi;
	unsigned ngpe; /* GPE handlers G000.. (at most 24) */
	/* Hotplug slots: \_SB.HPB_ (ACPI0004, a container, whose scan handler
	 * makes Linux act on a bus check) holding S000.. (LNRO0005, the
	 * window and GSI below) whose _STA is 0xf while bit i of the GED's
	 * slot register is set, else 0; the GED's hotplug event is
	 * Notify(\_SB.HPB_, 0) (bus check). */
	unsigned nslots; /* at most VMM_ACPI_MAX_SLOTS */
	struct {
		uint32_t mmio_base, mmio_size, gsi;
	} slots[4];
	bool vmgenid; /* GED_EV_VMGENID notifies \_SB.VGEN (its ID changed) */
};
#define VMM_ACPI_MAX_SLOTS 4

struct vmm_acpi_config {
	unsigned ncpus; /* processors; APIC ID i, ACPI UID i */
	uint32_t lapic_addr;
	uint32_t ioapic_addr;
	uint8_t ioapic_id;
	/* hardware-reduced ACPI registers (I/O ports, 8 bits each) */
	uint16_t sleep_control_port;
	uint16_t sleep_status_port;
	uint16_t reset_port;
	uint8_t reset_value;
	uint8_t s5_sleep_type; /* the _S5 SLP_TYP the sleep control register receives */
	uint16_t iapc_boot_arch;
	uint8_t rtc_century; /* CMOS index of the century, 0 for none */
	const struct vmm_acpi_device *devices;
	unsigned ndevices;
	/* guest-physical address of the 16-byte VM Generation ID, 0: no
	 * \_SB.VGEN device */
	uint64_t vmgenid_addr;
	const struct vmm_acpi_ged *ged; /* NULL: no GED, no buttons */
};

/* Offsets of each table in the built buffer (for tests and logs). */
struct vmm_acpi_layout {
	size_t rsdp, xsdt, fadt, madt, dsdt;
	size_t size; /* bytes used */
};

/*
 * Builds every table into buf (cap bytes), which the guest will see at
 * base_gpa (16-byte aligned: the RSDP is first, where the legacy scan of
 * 0xe0000..0xfffff finds it). Returns 0 and fills *layout, or -EINVAL (bad
 * configuration, e.g. an invalid device name or id), -E2BIG (cap too
 * small), -ENOMEM; err says which.
 */
int vmm_acpi_build(const struct vmm_acpi_config *cfg, uint8_t *buf, size_t cap, uint64_t base_gpa,
		   struct vmm_acpi_layout *layout, struct ember_error *err);

/* Sum of bytes mod 256 (0 for a valid table). */
uint8_t vmm_acpi_checksum(const uint8_t *p, size_t n);

#endif /* EMBER_VMM_X86_ACPI_H */
