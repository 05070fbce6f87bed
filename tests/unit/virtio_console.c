/* tests/unit/virtio_console.c - virtio-console driven as Linux's virtio_console does: input into posted buffers, output with back-pressure, size, reset. */
#include "virtio_driver.h"
#include "vmm_fixtures.h"
#include "../../devices/virtio/console.h"
#include "state_util.h"
#include "../../vmm/boot/boot.h"
#include "../../vmm/config.h"
#include "../../vmm/devmgr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <glob.h>
#include <unistd.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#define MEM_SIZE (1u << 20)
#define BASE	 0xd0000000ull
#define QSZ	 8
/* receiveq at 0x1000.., transmitq at 0x4000.. */
#define RX_DESC	 0x1000
#define RX_AVAIL 0x2000
#define RX_USED	 0x3000
#define TX_DESC	 0x4000
#define TX_AVAIL 0x5000
#define TX_USED	 0x6000
#define RX_BUF	 0x10000
#define TX_BUF	 0x20000

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct virtio_console *con;
	struct virtio_mmio *t;
	struct tdrv_queue rx, tx;
	struct tdrv_mmio m;
	int irqs, rx_ready;
	/* the host's console buffer: cap bytes at most */
	uint8_t out[256];
	size_t out_len, out_cap;
};

static void on_irq(void *opaque)
{
	((struct rig *)opaque)->irqs++;
}

static void on_notify(void *opaque, unsigned q)
{
	virtio_mmio_process(((struct rig *)opaque)->t, q);
}

static size_t host_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct rig *r = opaque;
	size_t room = r->out_cap - r->out_len, n = len < room ? len : room;
	memcpy(r->out + r->out_len, buf, n);
	r->out_len += n;
	return n;
}

static void host_rx_ready(void *opaque)
{
	((struct rig *)opaque)->rx_ready++;
}

#define rd(r, off)    tdrv_rd(&(r)->m, off)
#define wr(r, off, v) tdrv_wr(&(r)->m, off, v)

/* A bus and the device on it (the rig's memory exists). */
static void rig_device(struct rig *r, uint16_t cols, uint16_t rows)
{
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	struct virtio_mmio_config cfg = {
	    .mem = &r->mem, .interrupt = on_irq, .notify = on_notify, .opaque = r};
	struct virtio_console_host host = {
	    .tx = host_tx, .rx_ready = host_rx_ready, .opaque = r, .cols = cols, .rows = rows};
	REQUIRE_OK(virtio_console_create(cfg, &host, &r->con, &r->t));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->m = (struct tdrv_mmio){.bus = r->bus, .base = BASE};
}

static void rig_init(struct rig *r, uint16_t cols, uint16_t rows)
{
	memset(r, 0, sizeof(*r));
	r->out_cap = sizeof(r->out);
	REQUIRE_OK(
	    vmm_mem_create(&r->mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	rig_device(r, cols, rows);
}

static void rig_fini(struct rig *r)
{
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_console_destroy(r->con);
	vmm_mem_destroy(&r->mem);
}

/* Probe, both queues (fresh, zeroed rings), DRIVER_OK. */
static void linux_up(struct rig *r, uint64_t features)
{
	memset(r->mem.host, 0, 0x8000);
	r->rx = (struct tdrv_queue){
	    .mem = &r->mem, .size = QSZ, .desc = RX_DESC, .avail = RX_AVAIL, .used = RX_USED};
	r->tx = (struct tdrv_queue){
	    .mem = &r->mem, .size = QSZ, .desc = TX_DESC, .avail = TX_AVAIL, .used = TX_USED};
	tdrv_probe(&r->m, VIRTIO_ID_CONSOLE, features);
	REQUIRE(rd(r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	tdrv_setup_queue(&r->m, VIRTIO_CONSOLE_Q_RX, &r->rx);
	tdrv_setup_queue(&r->m, VIRTIO_CONSOLE_Q_TX, &r->tx);
	wr(r, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
	REQUIRE_EQ(rd(r, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
}

/* The driver posts receive buffer i (len bytes at RX_BUF + 0x100 * i). */
static void post_rx(struct rig *r, unsigned i, uint32_t len)
{
	tdrv_desc(&r->rx, RX_DESC, i, RX_BUF + 0x100ull * i, len, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r->rx, (uint16_t)i);
	wr(r, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_Q_RX);
}

/* The driver sends s as one chain of two descriptors (split at cut). */
static void send_tx(struct rig *r, unsigned head, const char *s, size_t cut)
{
	size_t n = strlen(s);
	uint64_t a = TX_BUF + 0x100ull * head, b = a + 0x80;
	REQUIRE_OK(vmm_mem_write(&r->mem, a, s, cut));
	REQUIRE_OK(vmm_mem_write(&r->mem, b, s + cut, n - cut));
	tdrv_desc(&r->tx, TX_DESC, head, a, (uint32_t)cut, VRING_DESC_F_NEXT, (uint16_t)(head + 1));
	tdrv_desc(&r->tx, TX_DESC, head + 1, b, (uint32_t)(n - cut), 0, 0);
	tdrv_publish(&r->tx, (uint16_t)head);
	wr(r, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_Q_TX);
}

static const uint64_t F = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX);

TEST(virtio_console_input_goes_into_posted_buffers_and_waits_without_them)
{
	struct rig r;
	rig_init(&r, 0, 0);
	/* before the driver is up, nothing is taken (the host holds it) */
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"early", 5), 0);
	linux_up(&r, F);
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"x", 1), 0); /* no buffer yet */
	post_rx(&r, 0, 4);
	post_rx(&r, 1, 4);
	CHECK_EQ(r.rx_ready, 2); /* each post tells the host */
	int irqs = r.irqs;
	/* 10 bytes: two 4-byte buffers take 8, 2 stay with the host */
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"echo hi\nxy", 10), 8);
	CHECK_EQ(tdrv_rd16(&r.mem, RX_USED + 2), 2);
	CHECK_EQ(tdrv_rd32(&r.mem, RX_USED + 4), 0); /* id */
	CHECK_EQ(tdrv_rd32(&r.mem, RX_USED + 8), 4); /* len */
	CHECK_EQ(tdrv_rd32(&r.mem, RX_USED + 12), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, RX_USED + 16), 4);
	char got[9] = {0};
	REQUIRE_OK(vmm_mem_read(&r.mem, RX_BUF, got, 4));
	REQUIRE_OK(vmm_mem_read(&r.mem, RX_BUF + 0x100, got + 4, 4));
	CHECK_STR(got, "echo hi\n");
	CHECK(r.irqs > irqs);
	/* the rest once a buffer comes back */
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"xy", 2), 0);
	post_rx(&r, 2, 64);
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"xy", 2), 2);
	CHECK_EQ(tdrv_rd32(&r.mem, RX_USED + 4 + 8 * 2 + 4), 2);
	/* a receive chain with no writable buffer is returned empty, counted */
	tdrv_desc(&r.rx, RX_DESC, 3, RX_BUF + 0x300, 16, 0, 0);
	tdrv_publish(&r.rx, 3);
	post_rx(&r, 4, 16);
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"z", 1), 1);
	struct virtio_console_stats st;
	virtio_console_get_stats(r.con, &st);
	CHECK_EQ(st.bytes_in, 11);
	CHECK_EQ(st.bad_chains, 1);
	CHECK_EQ(tdrv_rd16(&r.mem, RX_USED + 2), 5);
	rig_fini(&r);
}

TEST(virtio_console_output_waits_for_room_and_loses_nothing)
{
	struct rig r;
	rig_init(&r, 0, 0);
	linux_up(&r, F);
	r.out_cap = 3; /* the host's buffer is nearly full */
	send_tx(&r, 0, "abcdefg", 3);
	CHECK_EQ(r.out_len, 3);
	CHECK_EQ(tdrv_rd16(&r.mem, TX_USED + 2), 0); /* held: the guest waits */
	send_tx(&r, 2, "hij", 1);
	CHECK_EQ(r.out_len, 3); /* nothing else taken while the first waits */
	CHECK_EQ(tdrv_rd16(&r.mem, TX_USED + 2), 0);
	/* room for 2 more: the held chain moves on, still not done */
	r.out_cap = 5;
	virtio_console_tx_ready(r.con);
	CHECK_EQ(r.out_len, 5);
	CHECK_EQ(tdrv_rd16(&r.mem, TX_USED + 2), 0);
	/* room for everything: both chains complete, in order */
	int irqs = r.irqs;
	r.out_cap = sizeof(r.out);
	virtio_console_tx_ready(r.con);
	CHECK_EQ(r.out_len, 10);
	CHECK(!memcmp(r.out, "abcdefghij", 10));
	CHECK_EQ(tdrv_rd16(&r.mem, TX_USED + 2), 2);
	CHECK_EQ(tdrv_rd32(&r.mem, TX_USED + 4), 0);
	CHECK_EQ(tdrv_rd32(&r.mem, TX_USED + 8), 0); /* the device wrote nothing */
	CHECK_EQ(tdrv_rd32(&r.mem, TX_USED + 12), 2);
	CHECK(r.irqs > irqs);
	struct virtio_console_stats st;
	virtio_console_get_stats(r.con, &st);
	CHECK_EQ(st.bytes_out, 10);
	CHECK(st.tx_waits >= 2);
	/* a transmit chain with only a writable buffer is refused, the queue goes on */
	tdrv_desc(&r.tx, TX_DESC, 4, TX_BUF + 0x400, 8, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.tx, 4);
	send_tx(&r, 5, "kl", 1);
	CHECK_EQ(r.out_len, 12);
	CHECK_EQ(tdrv_rd16(&r.mem, TX_USED + 2), 4);
	virtio_console_get_stats(r.con, &st);
	CHECK_EQ(st.bad_chains, 1);
	rig_fini(&r);
}

TEST(virtio_console_size_is_offered_only_with_a_terminal)
{
	struct rig r;
	rig_init(&r, 0, 0);
	tdrv_wr(&r.m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_CONSOLE_F_SIZE), 0);
	CHECK_ERR(virtio_console_set_size(r.con, 80, 24), -EOPNOTSUPP);
	/* MULTIPORT is not offered: a driver asking for it fails negotiation */
	tdrv_probe(&r.m, VIRTIO_ID_CONSOLE, F | (1ull << VIRTIO_CONSOLE_F_MULTIPORT));
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	rig_fini(&r);

	rig_init(&r, 132, 43);
	uint64_t f = F | (1ull << VIRTIO_CONSOLE_F_SIZE);
	uint64_t offered = tdrv_probe(&r.m, VIRTIO_ID_CONSOLE, f);
	CHECK(offered & (1ull << VIRTIO_CONSOLE_F_SIZE));
	CHECK(!(offered & (1ull << VIRTIO_CONSOLE_F_MULTIPORT)));
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_CONFIG) & 0xffff, 132); /* cols */
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_CONFIG) >> 16, 43);	   /* rows */
	linux_up(&r, f);
	/* the first receive buffers bring a configuration interrupt (Linux
	 * reads the size then), once */
	CHECK_EQ(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG, 0);
	post_rx(&r, 0, 16);
	CHECK(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	wr(&r, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	post_rx(&r, 1, 16);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG, 0);
	/* a resize: new values, a new generation, an interrupt */
	uint32_t gen = rd(&r, VIRTIO_MMIO_CONFIG_GENERATION);
	CHECK_OK(virtio_console_set_size(r.con, 100, 30));
	CHECK_EQ(rd(&r, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	CHECK(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_CONFIG), (30u << 16) | 100);
	rig_fini(&r);
}

TEST(virtio_console_driver_reset_and_reload)
{
	struct rig r;
	rig_init(&r, 80, 25);
	uint64_t f = F | (1ull << VIRTIO_CONSOLE_F_SIZE);
	linux_up(&r, f);
	post_rx(&r, 0, 16);
	r.out_cap = 2;
	send_tx(&r, 0, "held!", 2); /* waits for room */
	CHECK_EQ(r.out_len, 2);
	/* module unload: the queues go and the device forgets the held chain */
	wr(&r, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS), 0);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"q", 1), 0);
	r.out_cap = sizeof(r.out);
	virtio_console_tx_ready(r.con); /* nothing to send: no queue */
	CHECK_EQ(r.out_len, 2);
	/* module reload: new rings from index 0; both directions work again */
	linux_up(&r, f);
	post_rx(&r, 0, 16);
	CHECK(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG); /* size told again */
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"ls\n", 3), 3);
	CHECK_EQ(tdrv_rd16(&r.mem, RX_USED + 2), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, RX_USED + 8), 3);
	send_tx(&r, 0, "again", 2);
	CHECK_EQ(r.out_len, 7);
	CHECK(!memcmp(r.out, "heagain", 7));
	CHECK_EQ(tdrv_rd16(&r.mem, TX_USED + 2), 1);
	rig_fini(&r);
}

/* A broken ring marks the device DEVICE_NEEDS_RESET; the driver's reset
 * brings it back whole (queues, features, interrupt state). */
TEST(virtio_console_needs_reset_then_reset_recovers)
{
	struct rig r;
	rig_init(&r, 0, 0);
	linux_up(&r, F);
	/* an available index running past the queue size: the ring is broken */
	uint16_t idx = QSZ + 3;
	REQUIRE_OK(vmm_mem_write(&r.mem, TX_AVAIL + 2, &idx, 2));
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_Q_TX);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	/* nothing moves while it needs a reset, input included */
	post_rx(&r, 0, 16);
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"a", 1), 0);
	/* the reset clears status, interrupt status and features */
	wr(&r, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS), 0);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CHECK_EQ(virtio_mmio_features(r.t), 0);
	for (unsigned q = 0; q < 2; q++) {
		wr(&r, VIRTIO_MMIO_QUEUE_SEL, q);
		CHECK_EQ(rd(&r, VIRTIO_MMIO_QUEUE_READY), 0);
	}
	linux_up(&r, F);
	send_tx(&r, 0, "back", 2);
	CHECK_EQ(r.out_len, 4);
	CHECK(!memcmp(r.out, "back", 4));
	post_rx(&r, 0, 16);
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"in", 2), 2);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
	rig_fini(&r);
}

TEST(virtio_console_create_checks)
{
	struct vmm_mem mem;
	REQUIRE_OK(vmm_mem_create(&mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	struct virtio_mmio_config cfg = {.mem = &mem};
	struct virtio_console *c;
	struct virtio_mmio *t;
	struct virtio_console_host host = {0};
	CHECK_ERR(virtio_console_create(cfg, &host, &c, &t), -EINVAL); /* no tx */
	CHECK_ERR(virtio_console_create(cfg, NULL, &c, &t), -EINVAL);
	host.tx = host_tx;
	CHECK_ERR(virtio_console_create((struct virtio_mmio_config){0}, &host, &c, &t), -EINVAL);
	/* the library's resize call checks its arguments */
	CHECK_ERR(ember_vm_console_resize(NULL, 80, 24), -EINVAL);
	vmm_mem_destroy(&mem);
}

/* --console virtio in the configuration: the key, the default command line
 * (hvc0, early messages on ttyS0), --dry-run, and the device list's entry. */
TEST(virtio_console_config_and_device_list)
{
	size_t len;
	uint8_t *bz = fx_bzimage(4096, &len);
	char kernel[] = "/tmp/ember-unit-XXXXXX";
	int fd = mkstemp(kernel);
	REQUIRE(fd >= 0 && write(fd, bz, len) == (ssize_t)len);
	close(fd);
	struct ember_config c;
	struct ember_error err = {0};
	vmm_config_init(&c);
	c.console_in = -1;
	char v[16];
	CHECK_EQ(ember_config_get(&c, "console", v, sizeof(v)), 6);
	CHECK_STR(v, "serial");
	CHECK_ERR(ember_config_set(&c, "console", "pl011", &err), -EINVAL);
	CHECK(strstr(err.msg, "console: 'pl011' is not serial or virtio") != NULL);
	unsigned fl;
	char *argv[] = {"--console", "virtio", "-k", kernel, "-i", kernel};
	REQUIRE_OK(ember_config_parse_args(&c, 6, argv, &fl, &err));
	CHECK(c.console_virtio);
	CHECK_EQ(ember_config_get(&c, "console", v, sizeof(v)), 6);
	CHECK_STR(v, "virtio");
	if (ember_config_resolve(&c, &err) < 0)
		TEST_FAIL("%s", err.msg);
	CHECK_STR(c.cmdline, EMBER_DEFAULT_CMDLINE_HVC0);
	CHECK(strstr(c.cmdline, "console=ttyS0") == NULL);
	char out[8192];
	ember_config_format(&c, out, sizeof(out));
	CHECK(strstr(out, "console: hvc0 (virtio-console) in=fd-1") != NULL);
	CHECK(strstr(out, "device console0: virtio-console (hvc0); mmio 0xd0000000-0xd0000fff; "
			  "irq 16; 2 ioeventfds; irqfd; acpi V000 LNRO0005\n") != NULL);
	/* after the device options: a disk keeps the first window and V000 */
	struct vmm_devmgr *m = malloc(sizeof(*m));
	REQUIRE(m != NULL);
	REQUIRE_OK(ember_config_set(&c, "rng", "", &err));
	REQUIRE_OK(vmm_board_plan(&c, m, &err));
	const struct vmm_dev_desc *d = vmm_devmgr_find(m, "console0");
	REQUIRE(d != NULL);
	CHECK_EQ(d->nioeventfds, 2);
	CHECK_STR(d->acpi_name, "V001");
	CHECK_EQ(vmm_devmgr_find(m, "rng0")->mmio_base, 0xd0000000ull);
	free(m);
	/* the serial default is unchanged; a given command line is the user's */
	vmm_config_fini(&c);
	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "initrd", kernel, NULL));
	REQUIRE_OK(ember_config_resolve(&c, &err));
	CHECK_STR(c.cmdline, EMBER_DEFAULT_CMDLINE);
	vmm_config_fini(&c);
	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "initrd", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "console", "virtio", NULL));
	REQUIRE_OK(ember_config_set(&c, "cmdline", "console=hvc0 foo", NULL));
	REQUIRE_OK(ember_config_resolve(&c, &err));
	CHECK_STR(c.cmdline, "console=hvc0 foo");
	/* the built-in initramfs: quiet before earlyprintk (or the early
	 * console replays the log at the default level) */
	if (access("/bin/busybox", R_OK) == 0) {
		vmm_config_fini(&c);
		vmm_config_init(&c);
		c.console_in = -1;
		REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
		REQUIRE_OK(ember_config_set(&c, "console", "virtio", NULL));
		REQUIRE_OK(ember_config_resolve(&c, &err));
		CHECK(c.builtin_initrd);
		CHECK_STR(c.cmdline, "quiet " EMBER_DEFAULT_CMDLINE_HVC0);
	}
	vmm_config_fini(&c);
	unlink(kernel);
	free(bz);
}

/* The built-in initramfs carries the four modules hvc0 needs, or none. */
TEST(virtio_console_initramfs_modules)
{
	struct vmm_initramfs_module mods[VMM_INITRAMFS_MODULES_MAX];
	CHECK_EQ(vmm_initramfs_console_modules("0.0-no-such-release", mods, 16), 0);
	CHECK_EQ(vmm_initramfs_console_modules("../etc", mods, 16), 0);
	/* a release of this machine's kernels that has the module (the running
	 * kernel may be another: the sandbox's, a build VM's) */
	glob_t g;
	if (glob("/lib/modules/*/kernel/drivers/char/virtio_console.ko", 0, NULL, &g) != 0)
		TEST_SKIP("no virtio_console.ko in /lib/modules here (linux-image-amd64)");
	char release[256];
	snprintf(release, sizeof(release), "%s", g.gl_pathv[0] + strlen("/lib/modules/"));
	*strchr(release, '/') = 0;
	globfree(&g);
	unsigned n = vmm_initramfs_console_modules(release, mods, 16);
	REQUIRE_EQ(n, 4);
	CHECK_STR(mods[0].name, "virtio_ring.ko");
	CHECK_STR(mods[1].name, "virtio.ko");
	CHECK_STR(mods[2].name, "virtio_mmio.ko");
	CHECK_STR(mods[3].name, "virtio_console.ko");
	vmm_initramfs_modules_free(mods, n);
	CHECK_EQ(vmm_initramfs_console_modules(release, mods, 3), 0); /* not all: none */
}

/* ------------------------------------------------------------ saved state */

static void rig_fresh_device(struct rig *r, uint16_t cols, uint16_t rows)
{
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_console_destroy(r->con);
	rig_device(r, cols, rows);
}

TEST(virtio_console_state_held_output_continues_without_repeats)
{
	struct rig r;
	rig_init(&r, 80, 25);
	linux_up(&r, F | (1ull << VIRTIO_CONSOLE_F_SIZE));
	r.out_cap = 3;
	send_tx(&r, 0, "abcdefg", 3);
	send_tx(&r, 2, "hij", 1);
	CHECK_EQ(r.out_len, 3);
	post_rx(&r, 0, 8);
	size_t len;
	uint8_t *buf = state_take(state_dev_save, virtio_mmio_dev(r.t), &len);

	rig_fresh_device(&r, 132, 43);
	REQUIRE_OK(state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, NULL, 0));
	uint64_t v = 0;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG, &v, 4, false, 0);
	CHECK_EQ(v, 80u | 25u << 16); /* the size the guest was told */
	/* the output held at "abc" goes on from "d", then the next chain */
	r.out_cap = sizeof(r.out);
	virtio_console_tx_ready(r.con);
	CHECK_EQ(r.out_len, 10);
	CHECK(!memcmp(r.out, "abcdefghij", 10));
	CHECK_EQ(tdrv_rd16(&r.mem, TX_USED + 2), 2);
	/* input goes into the buffer posted before the save */
	CHECK_EQ(virtio_console_rx_push(r.con, (const uint8_t *)"in", 2), 2);
	CHECK_EQ(tdrv_rd16(&r.mem, RX_USED + 2), 1);

	rig_fresh_device(&r, 0, 0);
	/* no terminal now: the size the driver negotiated is not offered */
	char detail[VMM_STATE_DETAIL];
	CHECK_ERR(
	    state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, detail, sizeof(detail)),
	    -EINVAL);
	CHECK(strstr(detail, "not offered") != NULL);
	rig_fresh_device(&r, 1, 1);
	state_check_refusals(state_dev_save, state_dev_load, virtio_mmio_dev(r.t), buf, len);
	state_check_patched(state_dev_load, virtio_mmio_dev(r.t), buf, len, len - 4, 1,
			    "virtio-mmio/virtio-console: transmit offset");
	free(buf);
	rig_fini(&r);
}
