/* tests/unit/dev_pci_host.c - PCI configuration mechanism #1 and the host bridge, via the PIO bus (with the 0xCF9 reset register behind it). */
#include "../lib/test.h"
#include "../../devices/pci_host.h"
#include "../../devices/reset_cf9.h"

#include <errno.h>

#define ADDR 0xcf8
#define DATA 0xcfc

struct seen {
	int resets, hard;
};

static void on_reset(void *opaque, bool hard)
{
	struct seen *s = opaque;
	s->resets++;
	s->hard += hard;
}

static uint64_t io(struct bus *bus, uint64_t port, unsigned len, bool write, uint64_t v)
{
	uint64_t val = v;
	bus_access_u64(bus, port, &val, len, write, 0);
	return val;
}

/* A config read as Linux's conf1 does it: the latch, then CONFIG_DATA + (reg & 3). */
static uint64_t cfg_read(struct bus *bus, unsigned b, unsigned d, unsigned f, unsigned reg,
			 unsigned len)
{
	io(bus, ADDR, 4, true, 0x80000000u | b << 16 | d << 11 | f << 8 | (reg & 0xfc));
	return io(bus, DATA + (reg & 3), len, false, 0);
}

static void cfg_write(struct bus *bus, unsigned reg, unsigned len, uint64_t v)
{
	io(bus, ADDR, 4, true, 0x80000000u | (reg & 0xfc));
	io(bus, DATA + (reg & 3), len, true, v);
}

struct rig {
	struct bus *pio;
	struct reset_cf9 *rc;
	struct pci_host *ph;
	struct seen s;
};

static void rig_up(struct rig *r)
{
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &r->pio));
	REQUIRE_OK(reset_cf9_create(&(struct reset_cf9_config){.reset = on_reset, .opaque = &r->s},
				    &r->rc));
	REQUIRE_OK(
	    pci_host_create(&(struct pci_host_config){.cf9_ops = &reset_cf9_dev(r->rc)->ops->bus,
						      .cf9_opaque = reset_cf9_dev(r->rc)},
			    &r->ph));
	REQUIRE_OK(dev_register(r->pio, PCI_HOST_PORT, PCI_HOST_WINDOW, pci_host_dev(r->ph)));
}

static void rig_down(struct rig *r)
{
	bus_destroy(r->pio);
	dev_destroy(pci_host_dev(r->ph));
	dev_destroy(reset_cf9_dev(r->rc));
}

TEST(dev_pci_host_latch_reads_back_masked)
{
	struct rig r = {0};
	rig_up(&r);
	CHECK_STR(dev_name(pci_host_dev(r.ph)), "pci_host");
	CHECK_EQ(io(r.pio, ADDR, 4, false, 0), 0);
	/* Linux's type 1 probe: outl(0x80000000, 0xcf8), inl(0xcf8) == 0x80000000 */
	io(r.pio, ADDR, 4, true, 0x80000000u);
	CHECK_EQ(io(r.pio, ADDR, 4, false, 0), 0x80000000u);
	/* bus, device, function, register and the extended register bits are
	 * kept; reserved bits 30:28 and 1:0 read 0 */
	io(r.pio, ADDR, 4, true, 0xffffffffu);
	CHECK_EQ(io(r.pio, ADDR, 4, false, 0), PCI_HOST_LATCH_MASK);
	CHECK_EQ(pci_host_latch(r.ph), PCI_HOST_LATCH_MASK);
	io(r.pio, ADDR, 4, true, 0x00abcd37u);
	CHECK_EQ(io(r.pio, ADDR, 4, false, 0), 0x00abcd34u);
	/* narrower accesses in the latch's dword are not the latch */
	io(r.pio, ADDR, 2, true, 0);
	io(r.pio, ADDR + 2, 2, true, 0);
	io(r.pio, ADDR + 3, 1, true, 0x01); /* Linux writes 0xcfb before probing */
	CHECK_EQ(pci_host_latch(r.ph), 0x00abcd34u);
	CHECK_EQ(io(r.pio, ADDR, 1, false, 0), 0xff);
	CHECK_EQ(io(r.pio, ADDR + 2, 2, false, 0), 0xffff);
	CHECK_EQ(io(r.pio, ADDR, 2, false, 0), 0xffff);
	/* a dword at 0xcfc is data, not the latch */
	io(r.pio, DATA, 4, true, 0x80000000u);
	CHECK_EQ(pci_host_latch(r.ph), 0x00abcd34u);
	/* a reset clears it */
	dev_reset(pci_host_dev(r.ph));
	CHECK_EQ(io(r.pio, ADDR, 4, false, 0), 0);
	CHECK_EQ(r.s.resets, 0);
	rig_down(&r);
}

TEST(dev_pci_host_bridge_header_at_00_0_0)
{
	struct rig r = {0};
	rig_up(&r);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x00, 4),
		 (uint64_t)PCI_HOST_DEVICE_ID << 16 | PCI_HOST_VENDOR_ID);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x00, 2), 0x8086);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x02, 2), 0x0d57);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x01, 1), 0x80);
	/* class 0x060000 in the top 3 bytes of dword 8 (revision 0); Linux's
	 * sanity check reads PCI_CLASS_DEVICE (0x0a, 2 bytes) == 0x0600 */
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x08, 4), 0x06000000u);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x0a, 2), 0x0600);
	/* an unaligned word inside the data dword: bytes 0x09-0x0a */
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x09, 2), 0x0000);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x0b, 1), 0x06);
	/* header type 0, single function; no BARs, capabilities or interrupt pin */
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x0e, 1), 0x00);
	for (unsigned reg = 0x10; reg < 0x28; reg += 4)
		CHECK_EQ(cfg_read(r.pio, 0, 0, 0, reg, 4), 0);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x34, 1), 0);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x3d, 1), 0);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0xfc, 4), 0);
	/* a dword at 0xcfd would pass 0xcff: the bus rejects it */
	io(r.pio, ADDR, 4, true, 0x80000000u);
	CHECK_EQ(io(r.pio, DATA + 1, 4, false, 0), 0xffffffffu);
	rig_down(&r);
}

TEST(dev_pci_host_enable_bit_and_unknown_devices_read_all_ones)
{
	struct rig r = {0};
	rig_up(&r);
	/* enable bit clear: no config cycle */
	io(r.pio, ADDR, 4, true, 0x00000000u);
	CHECK_EQ(io(r.pio, DATA, 4, false, 0), 0xffffffffu);
	CHECK_EQ(io(r.pio, DATA + 2, 2, false, 0), 0xffff);
	CHECK_EQ(io(r.pio, DATA + 3, 1, false, 0), 0xff);
	/* every other bus, device and function, as Linux's scan sees them */
	static const unsigned bdf[][3] = {{0, 0, 1}, {0, 0, 7},	  {0, 1, 0},   {0, 31, 7},
					  {1, 0, 0}, {255, 0, 0}, {0, 0x18, 3}};
	for (size_t i = 0; i < sizeof(bdf) / sizeof(bdf[0]); i++) {
		CHECK_EQ(cfg_read(r.pio, bdf[i][0], bdf[i][1], bdf[i][2], 0x00, 4), 0xffffffffu);
		CHECK_EQ(cfg_read(r.pio, bdf[i][0], bdf[i][1], bdf[i][2], 0x0a, 2), 0xffff);
		CHECK_EQ(cfg_read(r.pio, bdf[i][0], bdf[i][1], bdf[i][2], 0x0e, 1), 0xff);
	}
	/* the extended register bits (27:24): register 256 and up do not exist */
	io(r.pio, ADDR, 4, true, 0x81000000u);
	CHECK_EQ(io(r.pio, DATA, 4, false, 0), 0xffffffffu);
	/* a write to an absent device changes nothing at 00:00.0 */
	io(r.pio, ADDR, 4, true, 0x80000800u | 0x04); /* 00:01.0 command */
	io(r.pio, DATA, 2, true, 0x0007);
	io(r.pio, ADDR, 4, true, 0x7fffff04u); /* enable clear */
	io(r.pio, DATA, 2, true, 0x0007);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x04, 2), 0);
	rig_down(&r);
}

TEST(dev_pci_host_read_only_registers_ignore_writes)
{
	struct rig r = {0};
	rig_up(&r);
	cfg_write(r.pio, 0x00, 4, 0x12345678u); /* vendor/device */
	cfg_write(r.pio, 0x08, 4, 0xffffffffu); /* revision, class */
	cfg_write(r.pio, 0x0e, 1, 0x80);	/* header type */
	cfg_write(r.pio, 0x10, 4, 0xffffffffu); /* BAR sizing: none implemented */
	cfg_write(r.pio, 0x3d, 1, 0x01);	/* interrupt pin */
	cfg_write(r.pio, 0x06, 2, 0xffff);	/* status */
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x00, 4), 0x0d578086u);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x08, 4), 0x06000000u);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x0e, 1), 0x00);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x10, 4), 0);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x3d, 1), 0);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x06, 2), 0);
	/* the writable ones: command bits 0-2, cache line, latency, interrupt line */
	cfg_write(r.pio, 0x04, 4, 0xffffffffu);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x04, 4), 0x00000007u);
	cfg_write(r.pio, 0x0c, 2, 0x4010);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x0c, 4), 0x00004010u);
	cfg_write(r.pio, 0x3c, 4, 0xffffff0bu);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x3c, 4), 0x0000000bu);
	/* a reset puts them back */
	dev_reset(pci_host_dev(r.ph));
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x04, 2), 0);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x0c, 2), 0);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x3c, 1), 0);
	CHECK_EQ(cfg_read(r.pio, 0, 0, 0, 0x00, 4), 0x0d578086u);
	rig_down(&r);
}

TEST(dev_pci_host_forwards_the_cf9_byte_to_the_reset_register)
{
	struct rig r = {0};
	rig_up(&r);
	/* a latch full of bits: 0xcf9's byte is still the reset register */
	io(r.pio, ADDR, 4, true, 0x80000000u);
	/* Linux (reboot=p, cold): cf9 = inb & ~0x0e; outb(cf9 | 2); outb(cf9 | 0x0e) */
	uint8_t cf9 = (uint8_t)(io(r.pio, RESET_CF9_PORT, 1, false, 0) & ~0x0eu);
	CHECK_EQ(cf9, 0);
	io(r.pio, RESET_CF9_PORT, 1, true, cf9 | 2);
	CHECK_EQ(r.s.resets, 0);
	CHECK_EQ(io(r.pio, RESET_CF9_PORT, 1, false, 0), RESET_CF9_SYS_RST);
	io(r.pio, RESET_CF9_PORT, 1, true, cf9 | 0x0e);
	CHECK_EQ(r.s.resets, 1);
	CHECK_EQ(r.s.hard, 1);
	CHECK_EQ(reset_cf9_count(r.rc), 1);
	/* the byte write did not touch the latch, and the latch's dword writes
	 * never reach the reset register (0x0e in byte 1 would be a reset) */
	CHECK_EQ(pci_host_latch(r.ph), 0x80000000u);
	io(r.pio, ADDR, 4, true, 0x80000e00u);
	CHECK_EQ(r.s.resets, 1);
	CHECK_EQ(pci_host_latch(r.ph), 0x80000e00u);
	/* nor do words at 0xcf8 or 0xcf9 */
	io(r.pio, ADDR, 2, true, 0x0e00);
	io(r.pio, RESET_CF9_PORT, 2, true, 0x0e0e);
	CHECK_EQ(r.s.resets, 1);
	/* without a reset register the byte reads all-ones and writes go nowhere */
	struct pci_host *bare;
	REQUIRE_OK(pci_host_create(&(struct pci_host_config){0}, &bare));
	struct bus *pio2;
	REQUIRE_OK(bus_create("pio2", BUS_PIO_LAST, &pio2));
	REQUIRE_OK(dev_register(pio2, PCI_HOST_PORT, PCI_HOST_WINDOW, pci_host_dev(bare)));
	CHECK_EQ(io(pio2, RESET_CF9_PORT, 1, false, 0), 0xff);
	io(pio2, RESET_CF9_PORT, 1, true, 0x0e);
	CHECK_EQ(r.s.resets, 1);
	bus_destroy(pio2);
	dev_destroy(pci_host_dev(bare));
	rig_down(&r);
}

static void nop_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
		       unsigned len, bool is_write)
{
	(void)opaque, (void)offset, (void)addr, (void)vcpu, (void)data, (void)len, (void)is_write;
}

TEST(dev_pci_host_create_checks_its_arguments)
{
	struct pci_host *ph = (struct pci_host *)1;
	CHECK_ERR(pci_host_create(NULL, &ph), -EINVAL);
	CHECK_ERR(pci_host_create(&(struct pci_host_config){0}, NULL), -EINVAL);
	static const struct bus_ops no_handler = {.name = "x", .sizes = BUS_W1};
	CHECK_ERR(pci_host_create(&(struct pci_host_config){.cf9_ops = &no_handler}, &ph), -EINVAL);
	CHECK(ph == NULL);
	static const struct bus_ops words_only = {
	    .name = "x", .sizes = BUS_W2, .access = nop_access};
	CHECK_ERR(pci_host_create(&(struct pci_host_config){.cf9_ops = &words_only}, &ph), -EINVAL);
}
