/* devices/pci_host.h - a minimal PCI host bridge: configuration mechanism #1 at ports 0xCF8-0xCFF. */
#ifndef EMBER_DEVICES_PCI_HOST_H
#define EMBER_DEVICES_PCI_HOST_H

/*
 * PCI configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2), the one
 * x86 Linux probes first (arch/x86/pci/direct.c): an address latch
 * (CONFIG_ADDRESS) and a data window (CONFIG_DATA).
 *
 * Window: 8 bytes, offsets 0-7 (the board puts it at 0xCF8-0xCFF); 1-, 2-
 * and 4-byte accesses.
 *   offset 0, 4 bytes: the address latch. A write stores it; a read returns
 *     it. Bit 31 enables config cycles; 23:16 bus, 15:11 device, 10:8
 *     function, 7:2 register. Bits 27:24 are kept too (AMD's extended
 *     register number, register 256 and above): the bridge has none, so an
 *     access with them set reads all-ones. Bits 30:28 and 1:0 read 0.
 *   offset 1, 1 byte: the reset control register (0xCF9), which lies in the
 *     latch's dword. The bridge owns no state there: it forwards the access
 *     to the handler given at create (offset 0; e.g. devices/reset_cf9.h),
 *     or, with none, reads all-ones and drops writes.
 *   other accesses at offsets 0-3 (bytes at 0xCF8/0xCFA/0xCFB, words): not
 *     the latch. Reads all-ones, writes dropped (Linux writes 0xCFB while it
 *     probes; mechanism #2 is not offered, so its probe fails).
 *   offsets 4-7: CONFIG_DATA, the 4 bytes of the register the latch
 *     selects, byte (offset - 4) and up. With the enable bit clear, or for
 *     any bus/device/function other than 00:00.0, reads are all-ones (no
 *     device: the vendor ID 0xffff tells a driver so) and writes dropped.
 *
 * 00:00.0 is a host bridge: header type 0, single function, class 0x060000,
 * vendor 0x8086 device 0x0d57 (the ID Cloud Hypervisor's virtual host bridge
 * uses and EDK2's CloudHv platform knows; no Linux driver binds it), revision
 * 0, no BARs, no interrupt pin, no capabilities, status 0. Writable:
 * command bits 0-2 (I/O, memory, bus master: stored, no effect), cache line
 * size, latency timer and interrupt line (scratch bytes, as the PCI
 * spec lets software use them). Every other register reads its fixed value
 * and ignores writes.
 *
 * Thread-safety: any thread, no lock. The latch is one atomic 32-bit word,
 * shared by all vCPUs as on hardware (the guest serialises its own config
 * cycles: Linux takes pci_config_lock); the writable bytes are relaxed
 * atomics. The forwarded handler runs on the calling vCPU thread, with the
 * bridge holding nothing.
 */

#include "device.h"

#include <stdbool.h>
#include <stdint.h>

#define PCI_HOST_PORT	    0xcf8
#define PCI_HOST_WINDOW	    8
#define PCI_HOST_VENDOR_ID  0x8086
#define PCI_HOST_DEVICE_ID  0x0d57
#define PCI_HOST_CLASS	    0x060000 /* bridge, host bridge, prog-if 0 */
#define PCI_HOST_ENABLE	    0x80000000u
#define PCI_HOST_LATCH_MASK 0x8ffffffcu /* what the latch keeps */

struct pci_host_config {
	/* The handler of the byte at offset 1 (0xCF9), called with offset 0,
	 * the access's addr, len 1. NULL: none. Must outlive the bridge. */
	const struct bus_ops *cf9_ops;
	void *cf9_opaque;
};

struct pci_host;

/* Returns 0 and *out, or -EINVAL (NULL cfg or out, cf9_ops without an
 * access handler or not accepting 1-byte accesses), -ENOMEM. */
int pci_host_create(const struct pci_host_config *cfg, struct pci_host **out);
struct dev *pci_host_dev(struct pci_host *ph);
/* The address latch as the guest last wrote it (masked), for tests. */
uint32_t pci_host_latch(struct pci_host *ph);

#endif /* EMBER_DEVICES_PCI_HOST_H */
