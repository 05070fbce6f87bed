/* tests/unit/vmm_devmgr.c - the device manager: a fake MMIO device reaches the DSDT, the MMIO bus and its GSI from one descriptor; the board's list. */
#include "../lib/test.h"
#include "aml_walk.h"

#include "../../vmm/arch/x86/acpi.h"
#include "../../vmm/arch/x86/devices.h"
#include "../../vmm/arch/x86/layout.h"
#include "../../vmm/config.h"
#include "../../vmm/devmgr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fake MMIO device: remembers its last access. */
struct fake {
	uint64_t offset, addr, value;
	unsigned len, n;
	bool write;
};
static void fake_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
			unsigned len, bool is_write)
{
	struct fake *f = opaque;
	f->offset = offset;
	f->addr = addr;
	f->len = len;
	f->write = is_write;
	f->n++;
	if (is_write) {
		f->value = 0;
		memcpy(&f->value, data, len);
	} else {
		uint32_t magic = 0x74726976; /* "virt" */
		memcpy(data, &magic, len < 4 ? len : 4);
	}
}
static const struct bus_ops fake_ops = {.name = "fake", .sizes = BUS_W4, .access = fake_access};

/* The hooks, recording what the manager asked of the "hypervisor". */
struct hooks_log {
	uint32_t irq_gsi[8];
	bool irq_level[8];
	unsigned nirq;
	uint64_t ioev_addr[4], ioev_data[4];
	unsigned nioev;
	uint32_t irqfd_gsi;
	bool irqfd_level;
	unsigned nirqfd;
};
static void h_irq(void *opaque, uint32_t gsi, bool level)
{
	struct hooks_log *h = opaque;
	if (h->nirq < 8) {
		h->irq_gsi[h->nirq] = gsi;
		h->irq_level[h->nirq] = level;
	}
	h->nirq++;
}
static int h_ioev(void *opaque, uint64_t addr, unsigned len, bool datamatch, uint64_t data, int *fd)
{
	struct hooks_log *h = opaque;
	if (h->nioev < 4) {
		h->ioev_addr[h->nioev] = addr;
		h->ioev_data[h->nioev] = datamatch ? data : ~0ull;
	}
	*fd = 100 + (int)h->nioev++;
	return 0;
}
static int h_irqfd(void *opaque, uint32_t gsi, bool level, int *fd)
{
	struct hooks_log *h = opaque;
	h->irqfd_gsi = gsi;
	h->irqfd_level = level;
	h->nirqfd++;
	*fd = 200;
	return 0;
}

static struct vmm_dev_desc fake_desc(const char *name)
{
	struct vmm_dev_desc d = {
	    .what = "fake MMIO device",
	    .kind = VMM_DEV_VIRTIO_MMIO,
	    .acpi_name = "V000",
	    .acpi_hid = "LNRO0005",
	    .mmio_size = 0x200, /* rounded up to a 4 KiB window */
	    .has_irq = true,
	    .level = true,
	    .nioeventfds = 2,
	    .ioeventfds = {{.offset = 0x50, .len = 4, .datamatch = true, .data = 0},
			   {.offset = 0x50, .len = 4, .datamatch = true, .data = 1}},
	    .irqfd = true,
	};
	snprintf(d.name, sizeof(d.name), "%s", name);
	return d;
}

/* The board's list plus one fake device: the DSDT says where it is, the
 * MMIO bus dispatches its window to it, its GSI raises the board's line,
 * its ioeventfds and irqfd are asked of the hypervisor at those places. */
TEST(vmm_devmgr_fake_mmio_device)
{
	struct vmm_devmgr *m = calloc(1, sizeof(*m));
	struct ember_error err = {0};
	struct hooks_log h = {0};
	struct fake f = {0};
	REQUIRE(m);
	REQUIRE_OK(vmm_board_plan(NULL, m, &err));
	m->hooks = (struct vmm_devmgr_hooks){
	    .set_irq = h_irq, .add_ioeventfd = h_ioev, .add_irqfd = h_irqfd, .opaque = &h};
	struct vmm_dev_desc d = fake_desc("fake0"), *e;
	int r = vmm_devmgr_add(m, &d, &e, &err);
	if (r < 0)
		TEST_FAIL("%s", err.msg);
	/* placed in the documented region, first GSI of the documented range */
	CHECK_EQ(e->mmio_base, X86_DEVICE_MMIO_BASE);
	CHECK_EQ(e->gsi, X86_DEVICE_GSI_FIRST);
	CHECK(vmm_devmgr_find(m, "fake0") == e);
	e->ops = &fake_ops;
	e->opaque = &f;

	/* attach: the window on the MMIO bus, ioeventfds, irqfd. Only devices
	 * with an instance are attached, so the board's legacy ones are not
	 * (their ops are unset here) and the PIO bus stays empty. */
	struct bus *pio, *mmio;
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &pio));
	REQUIRE_OK(bus_create("mmio", BUS_MMIO_LAST, &mmio));
	r = vmm_devmgr_attach(m, pio, mmio, &err);
	if (r < 0)
		TEST_FAIL("%s", err.msg);
	uint64_t v = 0x1234;
	CHECK_OK(bus_access_u64(mmio, X86_DEVICE_MMIO_BASE + 0x70, &v, 4, true, 0));
	CHECK_EQ(f.n, 1);
	CHECK_EQ(f.offset, 0x70);
	CHECK_EQ(f.value, 0x1234);
	CHECK(f.write);
	CHECK_OK(bus_access_u64(mmio, X86_DEVICE_MMIO_BASE, &v, 4, false, 0));
	CHECK_EQ(v, 0x74726976);
	CHECK_EQ(f.offset, 0);
	/* the whole 4 KiB window is the device's, nothing past it */
	CHECK_OK(bus_access_u64(mmio, X86_DEVICE_MMIO_BASE + 0xffc, &v, 4, false, 0));
	CHECK_EQ(f.offset, 0xffc);
	CHECK_ERR(bus_access_u64(mmio, X86_DEVICE_MMIO_BASE + 0x1000, &v, 4, false, 0), -ENOENT);
	CHECK_ERR(bus_access_u64(pio, X86_PORT_COM1, &v, 1, false, 0), -ENOENT);
	REQUIRE_EQ(h.nioev, 2);
	CHECK_EQ(h.ioev_addr[0], X86_DEVICE_MMIO_BASE + 0x50);
	CHECK_EQ(h.ioev_data[0], 0);
	CHECK_EQ(h.ioev_data[1], 1);
	CHECK_EQ(e->ioeventfds[0].fd, 100);
	CHECK_EQ(e->ioeventfds[1].fd, 101);
	CHECK_EQ(h.nirqfd, 1);
	CHECK_EQ(h.irqfd_gsi, X86_DEVICE_GSI_FIRST);
	CHECK(h.irqfd_level); /* the fake device is level-triggered: a resample fd */
	CHECK_EQ(e->irqfd_fd, 200);

	/* its GSI is wired: raising it calls the irq line with that GSI */
	vmm_dev_set_irq(e, true);
	vmm_dev_set_irq(e, false);
	REQUIRE_EQ(h.nirq, 2);
	CHECK_EQ(h.irq_gsi[0], X86_DEVICE_GSI_FIRST);
	CHECK(h.irq_level[0]);
	CHECK(!h.irq_level[1]);
	/* and a legacy device's is its ISA IRQ, from the same list */
	vmm_dev_set_irq(vmm_devmgr_find(m, "com1"), true);
	CHECK_EQ(h.irq_gsi[2], X86_IRQ_COM1);

	/* the DSDT, generated from the list and read back as a guest would */
	struct vmm_acpi_device adevs[VMM_DEVMGR_MAX];
	int n = vmm_x86_acpi_devices(m, adevs, VMM_DEVMGR_MAX);
	REQUIRE_EQ(n, 5); /* COM1, PS2K, RTC_, PEVT (pvpanic) and the fake device */
	struct vmm_acpi_config acfg = {
	    .ncpus = 1,
	    .lapic_addr = X86_LAPIC_ADDR,
	    .ioapic_addr = X86_IOAPIC_ADDR,
	    .sleep_control_port = X86_PORT_ACPI_SLEEP_CTL,
	    .sleep_status_port = X86_PORT_ACPI_SLEEP_STS,
	    .s5_sleep_type = X86_ACPI_S5_SLP_TYP,
	    .devices = adevs,
	    .ndevices = (unsigned)n,
	};
	uint8_t *buf = calloc(1, X86_ACPI_SIZE);
	struct vmm_acpi_layout lay;
	REQUIRE(buf);
	r = vmm_acpi_build(&acfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err);
	if (r < 0)
		TEST_FAIL("%s", err.msg);
	size_t len = le32(buf + lay.dsdt + 4);
	CHECK(!memcmp(buf + lay.dsdt, "DSDT", 4));
	struct walk *w = calloc(1, sizeof(*w));
	REQUIRE(w);
	walk_terms(w, buf + lay.dsdt + 36, len - 36, "", NULL);
	CHECK(!w->bad);
	struct found_dev *fd = find_dev(w, "\\_SB_.V000");
	REQUIRE(fd);
	CHECK_STR(fd->hid_str, "LNRO0005");
	CHECK_EQ(fd->uid, 0);
	/* _CRS: Memory32Fixed(ReadWrite, base, 4 KiB), Interrupt(level, high, GSI), end */
	REQUIRE_EQ(fd->crs_len, 12 + 9 + 2);
	CHECK_EQ(fd->crs[0], 0x86);
	CHECK_EQ(fd->crs[3], 1); /* read-write */
	CHECK_EQ(le32(fd->crs + 4), X86_DEVICE_MMIO_BASE);
	CHECK_EQ(le32(fd->crs + 8), 0x1000);
	CHECK_EQ(fd->crs[12], 0x89);
	CHECK_EQ(fd->crs[15] & 0x02, 0); /* level-triggered: bit 1 clear */
	CHECK_EQ(fd->crs[16], 1);	 /* one interrupt */
	CHECK_EQ(le32(fd->crs + 17), X86_DEVICE_GSI_FIRST);
	CHECK_EQ(fd->crs[21], 0x79);
	/* the legacy devices' entries come from the list too */
	struct found_dev *com = find_dev(w, "\\_SB_.COM1");
	REQUIRE(com);
	CHECK_EQ(com->crs[0], 0x47);
	CHECK_EQ(com->crs[2] | com->crs[3] << 8, X86_PORT_COM1);
	CHECK_EQ(le32(com->crs + 8 + 5), X86_IRQ_COM1);
	struct found_dev *kbd = find_dev(w, "\\_SB_.PS2K");
	REQUIRE(kbd);
	CHECK_EQ(kbd->crs[0], 0x47);
	CHECK_EQ(kbd->crs[8], 0x47); /* the second port, 0x64 */
	CHECK_EQ(kbd->crs[10] | kbd->crs[11] << 8, X86_PORT_I8042_CMD);
	CHECK(find_dev(w, "\\_SB_.RTC_") != NULL);
	struct found_dev *pv = find_dev(w, "\\_SB_.PEVT");
	REQUIRE(pv);
	CHECK_EQ(pv->crs[0], 0x47);
	CHECK_EQ(pv->crs[2] | pv->crs[3] << 8, X86_PORT_PVPANIC);
	free(w);
	free(buf);

	/* --dry-run's line for it */
	char out[4096];
	vmm_devmgr_format(m, out, sizeof(out));
	if (!strstr(out, "device fake0: fake MMIO device; mmio 0xd0000000-0xd0000fff; irq 16 "
			 "level; 2 ioeventfds; irqfd; acpi V000 LNRO0005\n"))
		TEST_FAIL("dry-run lines:\n%s", out);
	bus_destroy(pio);
	bus_destroy(mmio);
	free(m);
}

/* The legacy devices are attached from the list: their PIO ranges on the
 * bus with the device offsets the descriptor gives. */
TEST(vmm_devmgr_legacy_ranges)
{
	struct vmm_devmgr *m = calloc(1, sizeof(*m));
	struct ember_error err = {0};
	struct fake f = {0};
	static const struct bus_ops any = {
	    .name = "any", .sizes = BUS_W_ALL, .access = fake_access};
	REQUIRE(m);
	REQUIRE_OK(vmm_board_plan(NULL, m, &err));
	struct vmm_dev_desc *kbd = vmm_devmgr_find(m, "i8042");
	REQUIRE(kbd);
	kbd->ops = &any;
	kbd->opaque = &f;
	struct bus *pio, *mmio;
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &pio));
	REQUIRE_OK(bus_create("mmio", BUS_MMIO_LAST, &mmio));
	REQUIRE_OK(vmm_devmgr_attach(m, pio, mmio, &err));
	uint64_t v = 0;
	CHECK_OK(bus_access_u64(pio, X86_PORT_I8042_CMD, &v, 1, false, 0));
	CHECK_EQ(f.offset, 4); /* I8042_COMMAND */
	CHECK_OK(bus_access_u64(pio, X86_PORT_I8042_DATA, &v, 1, false, 0));
	CHECK_EQ(f.offset, 0);
	CHECK_ERR(bus_access_u64(pio, 0x62, &v, 1, false, 0), -ENOENT);
	/* in-kernel devices are listed, never put on a bus */
	struct vmm_dev_desc *pit = vmm_devmgr_find(m, "pit");
	REQUIRE(pit);
	CHECK_EQ(pit->kind, VMM_DEV_IN_KERNEL);
	pit->ops = &any;
	bus_destroy(pio);
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &pio));
	REQUIRE_OK(vmm_devmgr_attach(m, pio, mmio, &err));
	CHECK_ERR(bus_access_u64(pio, 0x40, &v, 1, false, 0), -ENOENT);
	bus_destroy(pio);
	bus_destroy(mmio);
	free(m);
}

/* One entry owns the whole of config mechanism #1, 0xcf8-0xcff, 0xcf9
 * (the reset register) included: the bus takes no overlapping ranges. */
TEST(vmm_devmgr_board_pci_host_owns_0xcf8_to_0xcff)
{
	struct vmm_devmgr *m = calloc(1, sizeof(*m));
	struct ember_error err = {0};
	REQUIRE(m);
	REQUIRE_OK(vmm_board_plan(NULL, m, &err));
	struct vmm_dev_desc *d = vmm_devmgr_find(m, "pci-host");
	REQUIRE(d);
	CHECK_EQ(d->kind, VMM_DEV_PLATFORM);
	CHECK_EQ(d->npio, 1);
	CHECK_EQ(d->pio[0].base, X86_PORT_PCI_CONF1);
	CHECK_EQ(d->pio[0].len, 8);
	CHECK(!d->acpi_name[0]); /* no PCI root in the DSDT */
	CHECK(vmm_devmgr_find(m, "reset-cf9") == NULL);
	for (unsigned i = 0; i < m->n; i++)
		for (unsigned k = 0; k < m->devs[i].npio && &m->devs[i] != d; k++) {
			const struct vmm_dev_pio *p = &m->devs[i].pio[k];
			CHECK(p->base + p->len <= X86_PORT_PCI_CONF1 ||
			      p->base >= X86_PORT_PCI_CONF1 + 8);
		}
	free(m);
}

#define CHECK_ADD_BAD(m, d, want, what)                                           \
	do {                                                                      \
		struct ember_error e_ = {0};                                      \
		unsigned n_ = (m)->n;                                             \
		CHECK_ERR(vmm_devmgr_add((m), (d), NULL, &e_), (want));           \
		if (!strstr(e_.msg, (what)))                                      \
			TEST_FAIL("message \"%s\" lacks \"%s\"", e_.msg, (what)); \
		CHECK_EQ((m)->n, n_);                                             \
	} while (0)

/* Bad descriptors and exhausted ranges are refused, with nothing half-added. */
TEST(vmm_devmgr_refuses)
{
	struct vmm_devmgr *m = calloc(1, sizeof(*m));
	struct ember_error err = {0};
	REQUIRE(m);
	REQUIRE_OK(vmm_board_plan(NULL, m, &err));
	struct vmm_dev_desc d = {.name = "clash", .npio = 1, .pio = {{.base = 0x3fc, .len = 8}}};
	CHECK_ADD_BAD(m, &d, -EEXIST, "overlap com1's");
	d = (struct vmm_dev_desc){.name = "com1"};
	CHECK_ADD_BAD(m, &d, -EINVAL, "two devices named com1");
	d = (struct vmm_dev_desc){.name = "irq4", .has_irq = true, .gsi_fixed = true, .gsi = 4};
	CHECK_ADD_BAD(m, &d, -EEXIST, "GSI 4 is com1's");
	d = (struct vmm_dev_desc){.name = "high", .npio = 1, .pio = {{.base = 0xfffe, .len = 4}}};
	CHECK_ADD_BAD(m, &d, -EINVAL, "bad PIO range");
	d = fake_desc("ioev");
	d.ioeventfds[1].offset = 0x1000 - 2; /* past the asked 0x200 bytes */
	CHECK_ADD_BAD(m, &d, -EINVAL, "outside its window");
	d = (struct vmm_dev_desc){.name = "fixed", .mmio_base = X86_IOAPIC_ADDR, .mmio_size = 16};
	CHECK_ADD_BAD(m, &d, -EEXIST, "overlaps ioapic's");
	/* the GSI range: 8 devices fit, the ninth does not */
	for (unsigned i = 0; i < X86_DEVICE_GSI_LAST - X86_DEVICE_GSI_FIRST + 1; i++) {
		char name[16];
		snprintf(name, sizeof(name), "v%u", i);
		d = fake_desc(name);
		REQUIRE_OK(vmm_devmgr_add(m, &d, NULL, &err));
		CHECK_EQ(m->devs[m->n - 1].gsi, X86_DEVICE_GSI_FIRST + i);
		CHECK_EQ(m->devs[m->n - 1].mmio_base, X86_DEVICE_MMIO_BASE + 0x1000ull * i);
	}
	uint64_t next = m->next_mmio;
	d = fake_desc("v8");
	CHECK_ADD_BAD(m, &d, -ENOSPC, "no interrupt left");
	CHECK_EQ(m->next_mmio, next); /* its window was given back */
	/* a hook the board does not have yet: attach fails, naming the device */
	struct bus *pio, *mmio;
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &pio));
	REQUIRE_OK(bus_create("mmio", BUS_MMIO_LAST, &mmio));
	m->devs[m->n - 1].ops = &fake_ops;
	CHECK_ERR(vmm_devmgr_attach(m, pio, mmio, &err), -EOPNOTSUPP);
	CHECK(strstr(err.msg, "device v7: ioeventfds are not available") != NULL);
	bus_destroy(pio);
	bus_destroy(mmio);
	free(m);
}

/* The board's plan: legacy devices, then one pending entry per disk, the
 * DSDT leaving pending entries out; too many disks fail in resolve's plan. */
TEST(vmm_devmgr_board_plan_disks)
{
	struct vmm_devmgr *m = calloc(1, sizeof(*m));
	struct ember_config c;
	struct ember_error err = {0};
	REQUIRE(m);
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "disk", "path=/a.img,ro=on", NULL));
	REQUIRE_OK(ember_config_set(&c, "disk", "/b.img", NULL));
	REQUIRE_OK(vmm_board_plan(&c, m, &err));
	struct vmm_dev_desc *d0 = vmm_devmgr_find(m, "disk0"), *d1 = vmm_devmgr_find(m, "disk1");
	REQUIRE(d0 && d1);
	CHECK(!d0->pending);
	CHECK_EQ(d0->nioeventfds, 1); /* one queue per vCPU: 1 vCPU */
	CHECK_EQ(d0->ioeventfds[0].offset, 0x50);
	CHECK(d0->ioeventfds[0].datamatch && d0->ioeventfds[0].data == 0);
	CHECK(d0->irqfd && !d0->level);
	CHECK_EQ(d0->kind, VMM_DEV_VIRTIO_MMIO);
	CHECK_STR(d0->acpi_hid, "LNRO0005");
	CHECK_EQ(d0->mmio_base, X86_DEVICE_MMIO_BASE);
	CHECK_EQ(d1->mmio_base, X86_DEVICE_MMIO_BASE + X86_VIRTIO_MMIO_SIZE);
	CHECK_EQ(d0->gsi, X86_DEVICE_GSI_FIRST);
	CHECK_EQ(d1->gsi, X86_DEVICE_GSI_FIRST + 1);
	struct vmm_acpi_device adevs[VMM_DEVMGR_MAX];
	CHECK_EQ(vmm_x86_acpi_devices(m, adevs, VMM_DEVMGR_MAX), 6); /* 4 legacy + 2 disks */
	CHECK_ERR(vmm_x86_acpi_devices(m, adevs, 3), -E2BIG);
	for (int i = 2; i < 8; i++)
		REQUIRE_OK(ember_config_set(&c, "disk", "/x.img", NULL));
	REQUIRE_OK(vmm_board_plan(&c, m, &err));
	REQUIRE_OK(ember_config_set(&c, "disk", "/x.img", NULL));
	CHECK_ERR(vmm_board_plan(&c, m, &err), -ENOSPC);
	CHECK(strstr(err.msg, "device disk8: no interrupt left") != NULL);
	vmm_config_fini(&c);
	free(m);
}
