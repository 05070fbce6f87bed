/* tests/guests/rt/board.h - what the PVH test guests know of Ember's board: the ACPI sleep control register and the virtio-mmio window map and registers (VIRTIO 1.2, 4.2.2). */
#ifndef EMBER_GUEST_BOARD_H
#define EMBER_GUEST_BOARD_H

/* hardware-reduced ACPI: SLEEP_CONTROL_REG (the FADT's), and S5 written to it */
#define SLEEP_CTL    0x600
#define S5_POWER_OFF ((5 << 2) | (1 << 5)) /* SLP_TYP 5, SLP_EN */

/* the virtio-mmio windows: the first at VIRTIO_BASE, one every VIRTIO_WIN */
#define VIRTIO_BASE 0xd0000000u
#define VIRTIO_WIN  0x1000u
/* the ACPI Generic Event Device's registers (vmm/arch/x86/layout.h X86_GED_ADDR) */
#define GED_BASE 0xfeb00000u

/* virtio-mmio registers */
#define R_MAGIC	       0x000
#define R_VERSION      0x004
#define R_DEVICE_ID    0x008
#define R_DEV_FEAT     0x010
#define R_DEV_FEAT_SEL 0x014
#define R_DRV_FEAT     0x020
#define R_DRV_FEAT_SEL 0x024
#define R_QUEUE_SEL    0x030
#define R_QUEUE_MAX    0x034
#define R_QUEUE_NUM    0x038
#define R_QUEUE_READY  0x044
#define R_NOTIFY       0x050
#define R_INT_STATUS   0x060
#define R_INT_ACK      0x064
#define R_STATUS       0x070
#define R_DESC_LO      0x080
#define R_DESC_HI      0x084
#define R_AVAIL_LO     0x090
#define R_AVAIL_HI     0x094
#define R_USED_LO      0x0a0
#define R_USED_HI      0x0a4

/* device status bits */
#define S_ACK	      1u
#define S_DRIVER      2u
#define S_DRIVER_OK   4u
#define S_FEATURES_OK 8u
#define S_NEEDS_RESET 0x40u

/* descriptor flags */
#define D_NEXT	   1u
#define D_WRITE	   2u
#define D_INDIRECT 4u

#endif
