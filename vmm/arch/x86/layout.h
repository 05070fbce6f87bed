/* vmm/arch/x86/layout.h - the x86 machine's guest physical address map and port numbers. */
#ifndef EMBER_VMM_X86_LAYOUT_H
#define EMBER_VMM_X86_LAYOUT_H

/* The addresses the Linux boot writes (GDT, zero page, PVH start info, page
 * tables, command line, kernel, the MMIO hole it must stay below) are
 * vmm/boot/layout.h's; this header adds the board's own. */
#include "../../boot/layout.h"

/*
 * Guest physical memory (the board's datasheet):
 *
 *   0x0000_0000  real-mode IVT and BDA (left zero)
 *   0x0000_0500  boot GDT (null, null, code64 0x10, data 0x18, code32 0x20, tss 0x28)
 *   0x0000_6000  PVH hvm_start_info, then its module list and memory map
 *   0x0000_7000  boot_params ("zero page") for the x86 boot protocol
 *   0x0000_9000  boot page tables: PML4, PDPT, 4 PDs (identity map 0..4 GiB, 2 MiB pages)
 *   0x0002_0000  kernel command line (up to 64 KiB)
 *   0x0009_fc00  top of low RAM in the E820 map (the rest up to 1 MiB is not RAM)
 *   0x000e_0000  ACPI tables (RSDP first, found by the legacy scan too)
 *   0x000f_f000  the VM Generation ID (16 bytes)
 *   0x000f_fff0  the reset vector: a stub that writes the ACPI reset register
 *   0x0010_0000  bzImage protected-mode kernel (ELF kernels load at their p_paddr)
 *   ...          RAM up to min(mem, 3 GiB); the initrd at the top of it
 *   0xc000_0000  MMIO hole: 0xd000_0000 device windows (devices.h: the device list),
 *                0xfeb0_0000 the ACPI Generic Event Device (devices/ged.h),
 *                0xfec0_0000 IOAPIC, 0xfee0_0000 LAPIC
 *   0x1_0000_0000  RAM above 3 GiB continues here
 */
#define X86_EBDA_START	 0x9fc00ULL
#define X86_ACPI_ADDR	 0xe0000ULL
#define X86_ACPI_SIZE	 0x1f000ULL /* up to 0xff000; the last page holds the reset vector */
#define X86_RESET_VECTOR 0xffff0ULL /* F000:FFF0, where a BIOS would start */
/* the VM Generation ID's 16 bytes, in the reset vector's page (reserved) */
#define X86_VMGENID_ADDR 0xff000ULL

#define X86_VIRTIO_MMIO_BASE 0xd0000000ULL
#define X86_GED_ADDR	     0xfeb00000ULL /* the ACPI Generic Event Device's registers (4 KiB) */
#define X86_IOAPIC_ADDR	     0xfec00000ULL
#define X86_LAPIC_ADDR	     0xfee00000ULL

/*
 * I/O ports. The legacy devices sit at their PC addresses; the ACPI
 * hardware-reduced sleep and reset registers are Ember's own.
 */
#define X86_PORT_I8042_DATA	0x60
#define X86_PORT_I8042_CMD	0x64
#define X86_PORT_RTC		0x70
#define X86_PORT_COM1		0x3f8
#define X86_PORT_ACPI_SLEEP_CTL 0x600 /* FADT SLEEP_CONTROL_REG (8 bits) */
#define X86_PORT_ACPI_SLEEP_STS 0x601 /* FADT SLEEP_STATUS_REG (8 bits) */
#define X86_PORT_ACPI_RESET	0x602 /* FADT RESET_REG (8 bits) */
#define X86_PORT_PVPANIC	0x505 /* pvpanic (ACPI QEMU0001), QEMU's port */
#define X86_PORT_PCI_CONF1	0xcf8 /* PCI config mechanism #1, 0xcf8-0xcff */
#define X86_PORT_RESET_CF9	0xcf9 /* reset control register (reboot=p), inside it */
#define X86_ACPI_RESET_VALUE	0x01
#define X86_ACPI_S5_SLP_TYP	5 /* the _S5 sleep type the DSDT declares */

/* ISA interrupts (GSIs; the in-kernel IOAPIC pins equal GSIs except IRQ 0 -> pin 2). */
#define X86_IRQ_KEYBOARD 1
#define X86_IRQ_COM1	 4
#define X86_IRQ_RTC	 8
#define X86_IRQ_GED	 9 /* level, active high (a MADT override says so), as an SCI would be */

#endif /* EMBER_VMM_X86_LAYOUT_H */
