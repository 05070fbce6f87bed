/* tests/unit/virtio_mmio.c - the virtio-mmio transport and virtio-rng, driven through the MMIO bus as Linux's virtio_mmio driver does. */
#include "virtio_driver.h"
#include "../../devices/virtio/mmio.h"
#include "../../devices/virtio/rng.h"
#include "state_util.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#define MEM_SIZE  (1u << 20)
#define BASE	  0xd0000000ull
#define QSZ	  8
#define DESC_GPA  0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA  0x3000
#define BUF_GPA	  0x10000

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct virtio_rng *rng;
	struct virtio_mmio *t;
	struct tdrv_queue q;
	struct tdrv_mmio m;
	int irqs;
	int notifies;
	unsigned last_notify;
	bool defer; /* notify() only records (the VMM's loop would process) */
};

static void on_irq(void *opaque)
{
	((struct rig *)opaque)->irqs++;
}

static void on_notify(void *opaque, unsigned q)
{
	struct rig *r = opaque;
	r->notifies++;
	r->last_notify = q;
	if (!r->defer)
		virtio_mmio_process(r->t, q);
}

#define rd(r, off)    tdrv_rd(&(r)->m, off)
#define wr(r, off, v) tdrv_wr(&(r)->m, off, v)

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	REQUIRE_OK(
	    vmm_mem_create(&r->mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	struct virtio_mmio_config cfg = {
	    .mem = &r->mem, .interrupt = on_irq, .notify = on_notify, .opaque = r};
	REQUIRE_OK(virtio_rng_create(cfg, &r->rng, &r->t));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->q = (struct tdrv_queue){
	    .mem = &r->mem, .size = QSZ, .desc = DESC_GPA, .avail = AVAIL_GPA, .used = USED_GPA};
	r->m = (struct tdrv_mmio){.bus = r->bus, .base = BASE};
}

static void rig_fini(struct rig *r)
{
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_rng_destroy(r->rng);
	vmm_mem_destroy(&r->mem);
}

static void linux_probe(struct rig *r, uint64_t features)
{
	uint64_t offered = tdrv_probe(&r->m, VIRTIO_ID_RNG, features);
	CHECK(offered & (1ull << VIRTIO_F_VERSION_1));
	CHECK(offered & (1ull << VIRTIO_RING_F_EVENT_IDX));
	CHECK(offered & (1ull << VIRTIO_RING_F_INDIRECT_DESC));
}

static void linux_setup_queue(struct rig *r, uint64_t desc)
{
	struct tdrv_queue q = r->q;
	q.desc = desc;
	tdrv_setup_queue(&r->m, 0, &q);
	CHECK_EQ(rd(r, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
}

#define DRIVER_ALL TDRV_DRIVER_ALL

TEST(virtio_mmio_rng_serves_a_linux_like_driver)
{
	struct rig r;
	rig_init(&r);
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX);
	linux_probe(&r, f);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK_EQ(virtio_mmio_features(r.t), f);
	linux_setup_queue(&r, DESC_GPA);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_QUEUE_READY), 1);
	wr(&r, VIRTIO_MMIO_STATUS, DRIVER_ALL);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS), DRIVER_ALL);
	CHECK_EQ(r.notifies, 1); /* DRIVER_OK: the ready queue is looked at once */

	/* hwrng asks for 64 bytes */
	uint8_t zero[64] = {0};
	REQUIRE_OK(vmm_mem_write(&r.mem, BUF_GPA, zero, 64));
	tdrv_desc(&r.q, DESC_GPA, 0, BUF_GPA, 64, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.q, 0);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(r.notifies, 2);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 4), 0);
	CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 8), 64);
	uint8_t got[64];
	REQUIRE_OK(vmm_mem_read(&r.mem, BUF_GPA, got, 64));
	CHECK(memcmp(got, zero, 64) != 0); /* 2^-512 to fail by chance */
	CHECK_EQ(r.irqs, 1);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(&r, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CHECK_EQ(virtio_rng_bytes(r.rng), 64);
	/* a request larger than the per-request cap is served in part */
	tdrv_desc(&r.q, DESC_GPA, 1, BUF_GPA, 16384, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.q, 1);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 8 + 8), VIRTIO_RNG_MAX_REQUEST);
	/* a notify for a queue that does not exist is dropped */
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 5);
	CHECK_EQ(r.notifies, 3);

	/* the driver resets the device (module unload): everything goes */
	wr(&r, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS), 0);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_QUEUE_READY), 0);
	CHECK_EQ(virtio_mmio_features(r.t), 0);
	/* and comes back (module reload): the queue starts from index 0 again */
	linux_probe(&r, f);
	memset(r.mem.host + USED_GPA, 0, 64); /* a new driver's zeroed rings */
	memset(r.mem.host + AVAIL_GPA, 0, 64);
	r.q.avail_idx = 0;
	linux_setup_queue(&r, DESC_GPA);
	wr(&r, VIRTIO_MMIO_STATUS, DRIVER_ALL);
	tdrv_publish(&r.q, 0);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 1);
	rig_fini(&r);
}

/* A buffer published and kicked before DRIVER_OK (Linux's balloon does this
 * with its first statistics buffer) is served once the driver sets DRIVER_OK,
 * without another kick. */
TEST(virtio_mmio_serves_a_kick_made_before_driver_ok)
{
	struct rig r;
	rig_init(&r);
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX);
	linux_probe(&r, f);
	linux_setup_queue(&r, DESC_GPA);
	tdrv_desc(&r.q, DESC_GPA, 0, BUF_GPA, 32, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.q, 0);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(r.notifies, 1);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 0); /* not running yet */
	wr(&r, VIRTIO_MMIO_STATUS, DRIVER_ALL);
	CHECK_EQ(r.notifies, 2);
	CHECK_EQ(r.last_notify, 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 8), 32);
	/* writing DRIVER_OK again is no new start: no kick */
	wr(&r, VIRTIO_MMIO_STATUS, DRIVER_ALL);
	CHECK_EQ(r.notifies, 2);
	rig_fini(&r);
}

TEST(virtio_mmio_refuses_bad_negotiation_and_queues)
{
	struct rig r;
	rig_init(&r);
	/* no VERSION_1 (a legacy driver): FEATURES_OK does not stick */
	linux_probe(&r, 1ull << VIRTIO_RING_F_EVENT_IDX);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	/* a feature the device never offered */
	linux_probe(&r, (1ull << VIRTIO_F_VERSION_1) | (1ull << 5));
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	/* queue registers are ignored before FEATURES_OK */
	wr(&r, VIRTIO_MMIO_QUEUE_READY, 1);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_QUEUE_READY), 0);
	/* DRIVER_OK without FEATURES_OK: the device needs a reset */
	wr(&r, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* a queue whose descriptor table is past guest RAM */
	linux_probe(&r, 1ull << VIRTIO_F_VERSION_1);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	linux_setup_queue(&r, MEM_SIZE + 0x1000);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_QUEUE_READY), 0);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* a queue size that is not a power of two */
	linux_probe(&r, 1ull << VIRTIO_F_VERSION_1);
	wr(&r, VIRTIO_MMIO_QUEUE_NUM, 6);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* registers: only aligned 32-bit accesses; SHM absent; config empty */
	linux_probe(&r, 1ull << VIRTIO_F_VERSION_1);
	uint64_t v = 0x1234;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_MAGIC_VALUE, &v, 2, false, 0);
	CHECK_EQ(v, 0);
	v = 0;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_STATUS, &v, 1, true, 0);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) != 0); /* the byte write did not reset it */
	CHECK_EQ(rd(&r, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffu);
	v = 0x55;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG, &v, 1, false, 0);
	CHECK_EQ(v, 0);
	rig_fini(&r);
}

TEST(virtio_mmio_hostile_ring_marks_needs_reset_and_interrupts)
{
	struct rig r;
	rig_init(&r);
	linux_probe(&r, 1ull << VIRTIO_F_VERSION_1);
	linux_setup_queue(&r, DESC_GPA);
	wr(&r, VIRTIO_MMIO_STATUS, DRIVER_ALL);
	/* a bad chain (a loop) is returned with 0 bytes, and the device, which
	 * has no way to say "error" inside the request, needs a reset */
	int irqs = r.irqs;
	tdrv_desc(&r.q, DESC_GPA, 0, BUF_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	tdrv_desc(&r.q, DESC_GPA, 1, BUF_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	tdrv_publish(&r.q, 0);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 8), 0);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CHECK(r.irqs > irqs);
	/* the driver resets it and sets it up again */
	wr(&r, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS), 0);
	static const uint8_t zeros[8 + 8 * QSZ];
	REQUIRE_OK(vmm_mem_write(&r.mem, USED_GPA, zeros, sizeof(zeros)));
	REQUIRE_OK(
	    vmm_mem_write(&r.mem, AVAIL_GPA, zeros, sizeof(zeros))); /* a new driver's rings */
	r.q.avail_idx = 0;
	linux_probe(&r, 1ull << VIRTIO_F_VERSION_1);
	linux_setup_queue(&r, DESC_GPA);
	wr(&r, VIRTIO_MMIO_STATUS, DRIVER_ALL);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS), DRIVER_ALL);
	/* a good request works again */
	tdrv_desc(&r.q, DESC_GPA, 0, BUF_GPA, 8, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.q, 0);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 8), 8);
	/* a head past the queue breaks the ring: NEEDS_RESET and a config interrupt */
	irqs = r.irqs;
	tdrv_publish(&r.q, QSZ + 1);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK(rd(&r, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CHECK_EQ(r.irqs, irqs + 1);
	/* no more work until the driver resets */
	r.defer = true;
	tdrv_desc(&r.q, DESC_GPA, 2, BUF_GPA, 8, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.q, 2);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	virtio_mmio_process(r.t, 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 1);
	/* the driver's status write cannot clear the device's NEEDS_RESET */
	wr(&r, VIRTIO_MMIO_STATUS, DRIVER_ALL);
	CHECK(rd(&r, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	wr(&r, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS), 0);
	rig_fini(&r);
}

TEST(virtio_mmio_create_checks_ops)
{
	struct vmm_mem mem = {0};
	struct virtio_mmio *t;
	static const struct virtio_dev_ops bad_queues = {.name = "x", .nqueues = 0, .queue_max = 8};
	struct virtio_mmio_config cfg = {.ops = &bad_queues, .mem = &mem};
	CHECK_ERR(virtio_mmio_create(&cfg, &t), -EINVAL);
	CHECK_ERR(virtio_mmio_create(NULL, &t), -EINVAL);
	struct virtio_rng *rng;
	CHECK_ERR(virtio_rng_create((struct virtio_mmio_config){0}, &rng, &t), -EINVAL);
}

/* ------------------------------------------------------------ saved state */

TEST(virtio_mmio_state_rng_continues_with_event_idx)
{
	struct rig r;
	rig_init(&r);
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX);
	linux_probe(&r, f);
	linux_setup_queue(&r, DESC_GPA);
	wr(&r, VIRTIO_MMIO_STATUS, DRIVER_ALL);
	tdrv_desc(&r.q, DESC_GPA, 0, BUF_GPA, 64, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.q, 0);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 1);
	wr(&r, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	size_t len;
	uint8_t *buf = state_take(state_dev_save, virtio_mmio_dev(r.t), &len);

	/* a fresh transport and device, as the restored VM builds them */
	bus_destroy(r.bus);
	dev_destroy(virtio_mmio_dev(r.t));
	virtio_rng_destroy(r.rng);
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r.bus));
	struct virtio_mmio_config cfg = {
	    .mem = &r.mem, .interrupt = on_irq, .notify = on_notify, .opaque = &r};
	REQUIRE_OK(virtio_rng_create(cfg, &r.rng, &r.t));
	REQUIRE_OK(dev_register(r.bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r.t)));
	r.m.bus = r.bus;
	r.irqs = 0;
	REQUIRE_OK(state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, NULL, 0));
	CHECK_EQ(r.irqs, 0); /* the interrupt status was clear */
	CHECK_EQ(rd(&r, VIRTIO_MMIO_STATUS), DRIVER_ALL);
	CHECK_EQ(virtio_mmio_features(r.t), f);
	/* the driver asks to hear of used entry 1 (used_event = 1) ... */
	uint16_t ue = 1;
	REQUIRE_OK(vmm_mem_write(&r.mem, AVAIL_GPA + 4 + 2 * QSZ, &ue, 2));
	tdrv_desc(&r.q, DESC_GPA, 1, BUF_GPA, 32, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.q, 1);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 2);
	CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 4 + 8), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 8 + 8), 32);
	CHECK_EQ(r.irqs, 1);
	/* ... and not of entry 2 (used_event still 1): no interrupt */
	tdrv_publish(&r.q, 1);
	wr(&r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 3);
	CHECK_EQ(r.irqs, 1);
	free(buf);
	rig_fini(&r);
}

/* A device that keeps the chains it takes (work in flight), and says so
 * through held or not. */
struct keeper {
	bool say_held;
	unsigned kept;
	uint16_t heads[8];
	struct vq_buf bufs[4];
};
static void keeper_cfg(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
	(void)dev, (void)off;
	memset(data, 0, len);
}
static void keeper_process(void *dev, struct virtio_mmio *t, unsigned q)
{
	struct keeper *k = dev;
	struct vq_chain c = {.bufs = k->bufs, .max_bufs = 4};
	while (k->kept < 8 && vq_pop(virtio_mmio_queue(t, q), &c) == 1)
		k->heads[k->kept++] = c.head;
}
static unsigned keeper_held(void *dev, unsigned q, uint16_t *heads, unsigned max)
{
	struct keeper *k = dev;
	unsigned n = q == 0 && k->say_held ? k->kept : 0;
	for (unsigned i = 0; i < n && i < max; i++)
		heads[i] = k->heads[i];
	return n;
}
static const struct virtio_dev_ops keeper_ops = {.name = "keeper",
						 .device_id = 42,
						 .nqueues = 1,
						 .queue_max = QSZ,
						 .config_read = keeper_cfg,
						 .process = keeper_process,
						 .held = keeper_held};

TEST(virtio_mmio_state_chains_in_flight_are_busy_held_ones_taken_again)
{
	struct vmm_mem mem;
	REQUIRE_OK(vmm_mem_create(&mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	struct keeper k = {0}, k2 = {0};
	struct virtio_mmio *t, *t2;
	REQUIRE_OK(virtio_mmio_create(
	    &(struct virtio_mmio_config){.ops = &keeper_ops, .dev = &k, .mem = &mem}, &t));
	REQUIRE_OK(virtio_mmio_create(
	    &(struct virtio_mmio_config){.ops = &keeper_ops, .dev = &k2, .mem = &mem}, &t2));
	struct bus *bus;
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &bus));
	REQUIRE_OK(dev_register(bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(t)));
	struct tdrv_mmio m = {.bus = bus, .base = BASE};
	struct tdrv_queue q = {
	    .mem = &mem, .size = QSZ, .desc = DESC_GPA, .avail = AVAIL_GPA, .used = USED_GPA};
	tdrv_probe(&m, 42, 1ull << VIRTIO_F_VERSION_1);
	tdrv_setup_queue(&m, 0, &q);
	tdrv_wr(&m, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
	for (uint16_t i = 0; i < 2; i++) {
		tdrv_desc(&q, DESC_GPA, i, BUF_GPA, 16, VRING_DESC_F_WRITE, 0);
		tdrv_publish(&q, i);
	}
	tdrv_wr(&m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(k.kept, 2);
	/* two chains in flight the device does not account for: not quiesced */
	struct vmm_state_w w;
	vmm_sw_init(&w);
	CHECK_ERR(virtio_mmio_save(t, &w), -EBUSY);
	vmm_sw_free(&w);
	/* held: the saved position is before them, and the fresh device
	 * takes them again */
	k.say_held = true;
	size_t len;
	uint8_t *buf = state_take(state_dev_save, virtio_mmio_dev(t), &len);
	REQUIRE_OK(state_load(state_dev_load, virtio_mmio_dev(t2), buf, len, NULL, 0));
	CHECK_EQ(k2.kept, 0);
	virtio_mmio_process(t2, 0);
	CHECK_EQ(k2.kept, 2);
	free(buf);
	bus_destroy(bus);
	dev_destroy(virtio_mmio_dev(t));
	dev_destroy(virtio_mmio_dev(t2));
	vmm_mem_destroy(&mem);
}
