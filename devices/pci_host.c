/* devices/pci_host.c - PCI configuration mechanism #1 with one host bridge at 00:00.0. */
#include "pci_host.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#define CFG_SIZE     256
#define ADDR_EXT_REG 0x0f000000u /* bits 27:24: register 256 and above */
#define ADDR_BDF     0x00ffff00u /* bus, device, function */
#define ADDR_REG     0x000000fcu

/* Registers of a type 0 header the bridge has (PCI Local Bus 3.0, 6.1). */
#define REG_VENDOR     0x00
#define REG_DEVICE     0x02
#define REG_COMMAND    0x04
#define REG_CLASS      0x09 /* prog-if, subclass, class: 3 bytes */
#define REG_CACHE_LINE 0x0c
#define REG_LATENCY    0x0d
#define REG_HEADER     0x0e
#define REG_INT_LINE   0x3c
#define COMMAND_RW     0x07 /* I/O space, memory space, bus master */

struct pci_host {
	struct dev dev;
	struct pci_host_config cfg;
	uint32_t latch;		 /* relaxed atomic */
	uint8_t space[CFG_SIZE]; /* 00:00.0's registers; writable bytes as relaxed atomics */
};

_Static_assert(offsetof(struct pci_host, dev) == 0, "struct dev must come first");

/* Per byte of the configuration space, the bits a write may change. */
static const uint8_t writable[CFG_SIZE] = {
    [REG_COMMAND] = COMMAND_RW,
    [REG_CACHE_LINE] = 0xff,
    [REG_LATENCY] = 0xff,
    [REG_INT_LINE] = 0xff,
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Puts the host bridge's registers in their power-on state (byte by byte,
 * atomically: a reset may run while vCPUs read them). */
static void init_space(uint8_t *space)
{
	uint8_t s[CFG_SIZE] = {0};
	put16(&s[REG_VENDOR], PCI_HOST_VENDOR_ID);
	put16(&s[REG_DEVICE], PCI_HOST_DEVICE_ID);
	s[REG_CLASS] = (uint8_t)PCI_HOST_CLASS;
	s[REG_CLASS + 1] = (uint8_t)(PCI_HOST_CLASS >> 8);
	s[REG_CLASS + 2] = (uint8_t)(PCI_HOST_CLASS >> 16);
	s[REG_HEADER] = 0x00; /* type 0, single function */
	for (unsigned i = 0; i < CFG_SIZE; i++)
		__atomic_store_n(&space[i], s[i], __ATOMIC_RELAXED);
}

static void data_access(struct pci_host *ph, unsigned byte, uint8_t *data, unsigned len,
			bool is_write)
{
	uint32_t a = __atomic_load_n(&ph->latch, __ATOMIC_RELAXED);
	if (!(a & PCI_HOST_ENABLE) || (a & ADDR_EXT_REG) || (a & ADDR_BDF))
		return; /* no such device or register: all-ones (the bus's fill), write dropped */
	unsigned reg = (a & ADDR_REG) + byte; /* byte + len <= 4: reg + len <= CFG_SIZE */
	for (unsigned i = 0; i < len; i++, reg++) {
		if (!is_write) {
			data[i] = __atomic_load_n(&ph->space[reg], __ATOMIC_RELAXED);
			continue;
		}
		uint8_t m = writable[reg];
		if (!m)
			continue;
		uint8_t old = __atomic_load_n(&ph->space[reg], __ATOMIC_RELAXED);
		__atomic_store_n(&ph->space[reg], (uint8_t)((old & ~m) | (data[i] & m)),
				 __ATOMIC_RELAXED);
	}
}

static void pci_host_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu,
			    uint8_t *data, unsigned len, bool is_write)
{
	struct pci_host *ph = opaque;
	if (offset >= 4) {
		data_access(ph, (unsigned)(offset - 4), data, len, is_write);
		return;
	}
	if (offset == 0 && len == 4) {
		if (is_write) {
			uint32_t v = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
				     (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
			__atomic_store_n(&ph->latch, v & PCI_HOST_LATCH_MASK, __ATOMIC_RELAXED);
			return;
		}
		uint32_t v = __atomic_load_n(&ph->latch, __ATOMIC_RELAXED);
		for (unsigned i = 0; i < 4; i++)
			data[i] = (uint8_t)(v >> (8 * i));
		return;
	}
	if (offset == 1 && len == 1 && ph->cfg.cf9_ops)
		ph->cfg.cf9_ops->access(ph->cfg.cf9_opaque, 0, addr, vcpu, data, 1, is_write);
	/* anything else in the latch's dword: all-ones, dropped */
}

static void pci_host_reset(struct dev *dev)
{
	struct pci_host *ph = (struct pci_host *)dev;
	__atomic_store_n(&ph->latch, 0, __ATOMIC_RELAXED);
	init_space(ph->space);
}

static void pci_host_destroy(struct dev *dev)
{
	free(dev);
}

/* The saved state: the address latch and the host bridge's configuration
 * space; on load only its writable bits may differ from the power-on
 * values. */
static int pci_host_save(struct dev *dev, struct vmm_state_w *w)
{
	struct pci_host *ph = (struct pci_host *)dev;
	vmm_sw_begin(w, "pci_host", 1);
	vmm_sw_u32(w, __atomic_load_n(&ph->latch, __ATOMIC_RELAXED));
	for (unsigned i = 0; i < CFG_SIZE; i++)
		vmm_sw_u8(w, __atomic_load_n(&ph->space[i], __ATOMIC_RELAXED));
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int pci_host_load(struct dev *dev, struct vmm_state_r *r)
{
	struct pci_host *ph = (struct pci_host *)dev;
	uint8_t space[CFG_SIZE], fresh[CFG_SIZE];
	uint32_t version = 1;
	vmm_sr_begin(r, "pci_host", &version);
	uint32_t latch = vmm_sr_u32(r);
	vmm_sr_bytes(r, space, sizeof(space));
	if (latch & ~PCI_HOST_LATCH_MASK)
		return vmm_sr_fail(r, -EINVAL, "address latch %#x", latch);
	init_space(fresh);
	for (unsigned i = 0; i < CFG_SIZE; i++)
		if ((space[i] ^ fresh[i]) & ~writable[i])
			return vmm_sr_fail(r, -EINVAL, "read-only register byte %#x changed", i);
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	__atomic_store_n(&ph->latch, latch, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < CFG_SIZE; i++)
		__atomic_store_n(&ph->space[i], space[i], __ATOMIC_RELAXED);
	return 0;
}

static const struct dev_ops pci_host_ops = {
    .bus = {.name = "pci_host", .sizes = BUS_W1 | BUS_W2 | BUS_W4, .access = pci_host_access},
    .reset = pci_host_reset,
    .destroy = pci_host_destroy,
    .save = pci_host_save,
    .load = pci_host_load,
};

int pci_host_create(const struct pci_host_config *cfg, struct pci_host **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	if (cfg->cf9_ops && (!cfg->cf9_ops->access || !(cfg->cf9_ops->sizes & BUS_W1)))
		return -EINVAL;
	struct pci_host *ph = calloc(1, sizeof(*ph));
	if (!ph)
		return -ENOMEM;
	ph->dev.ops = &pci_host_ops;
	ph->cfg = *cfg;
	init_space(ph->space);
	*out = ph;
	return 0;
}

struct dev *pci_host_dev(struct pci_host *ph)
{
	return &ph->dev;
}

uint32_t pci_host_latch(struct pci_host *ph)
{
	return __atomic_load_n(&ph->latch, __ATOMIC_RELAXED);
}
