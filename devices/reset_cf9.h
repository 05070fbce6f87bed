/* devices/reset_cf9.h - the PC reset control register at port 0xCF9 (PIIX/ICH RCR). */
#ifndef EMBER_DEVICES_RESET_CF9_H
#define EMBER_DEVICES_RESET_CF9_H

/*
 * One byte, the chipset's Reset Control Register, as Linux's `reboot=p`
 * (BOOT_CF9_FORCE) drives it: it reads the register, writes it back with
 * SYS_RST (bit 1) set, then with RST_CPU (bit 2) and, for a cold reboot,
 * FULL_RST (bit 3).
 *   write: bits 1 and 3 are kept; a write with RST_CPU set calls
 *          reset(opaque, hard), hard = SYS_RST or FULL_RST set in that write.
 *   read:  the kept bits (RST_CPU reads 0: it acts, it is not stored).
 * Only 1-byte accesses reach the device: 0xCF9 lies in the PCI
 * configuration mechanism's address latch (0xCF8, 4 bytes). On the board
 * the PCI host bridge (pci_host.h) owns 0xCF8-0xCFF and forwards the byte
 * at 0xCF9 here; its 4-byte latch accesses never touch this register.
 *
 * Thread-safety: any thread, no lock (one atomic byte). reset() runs on the
 * vCPU thread that wrote the port.
 */

#include "device.h"

#include <stdbool.h>
#include <stdint.h>

#define RESET_CF9_PORT	   0xcf9
#define RESET_CF9_WINDOW   1
#define RESET_CF9_SYS_RST  (1u << 1)
#define RESET_CF9_RST_CPU  (1u << 2)
#define RESET_CF9_FULL_RST (1u << 3)

struct reset_cf9_config {
	void (*reset)(void *opaque, bool hard); /* may be NULL */
	void *opaque;
};

struct reset_cf9;

/* Returns 0 and *out, or -EINVAL (NULL cfg or out), -ENOMEM. */
int reset_cf9_create(const struct reset_cf9_config *cfg, struct reset_cf9 **out);
struct dev *reset_cf9_dev(struct reset_cf9 *rc);
/* How many resets were requested since creation or reset. */
uint64_t reset_cf9_count(struct reset_cf9 *rc);

#endif /* EMBER_DEVICES_RESET_CF9_H */
