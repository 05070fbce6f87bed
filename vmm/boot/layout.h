/* vmm/boot/layout.h - where the x86 Linux boot puts its structures in guest physical memory. */
#ifndef EMBER_VMM_BOOT_LAYOUT_H
#define EMBER_VMM_BOOT_LAYOUT_H

/*
 * The part of the x86 board's address map (vmm/arch/x86/layout.h, which
 * includes this) that the loaders write: the boot GDT, PVH start info, the
 * zero page, the identity-mapped boot page tables, the command line, the
 * bzImage's load address and the MMIO hole RAM stops at below 4 GiB. It is
 * here, below the board, so that the board includes the loaders and the
 * loaders never include the board.
 */
#define X86_GDT_ADDR	      0x500ULL
#define X86_PVH_INFO_ADDR     0x6000ULL
#define X86_PVH_MODLIST_ADDR  0x6040ULL
#define X86_PVH_MEMMAP_ADDR   0x6080ULL
#define X86_PVH_MEMMAP_MAX    128
#define X86_ZERO_PAGE_ADDR    0x7000ULL
#define X86_PML4_ADDR	      0x9000ULL
#define X86_PDPT_ADDR	      0xa000ULL
#define X86_PD_ADDR	      0xb000ULL /* 4 pages */
#define X86_CMDLINE_ADDR      0x20000ULL
#define X86_CMDLINE_MAX	      0x10000ULL
#define X86_HIMEM_START	      0x100000ULL
#define X86_BZIMAGE_LOAD_ADDR 0x100000ULL
#define X86_MMIO_HOLE_START   0xc0000000ULL
#define X86_MMIO_HOLE_END     0x100000000ULL

/* GDT selectors (the boot protocol needs __BOOT_CS 0x10 and __BOOT_DS 0x18). */
#define X86_SEL_CODE64	0x10
#define X86_SEL_DATA	0x18
#define X86_SEL_CODE32	0x20
#define X86_SEL_TSS	0x28
#define X86_GDT_ENTRIES 6

#endif /* EMBER_VMM_BOOT_LAYOUT_H */
