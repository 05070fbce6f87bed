/* tests/unit/virtio_balloon.c - virtio-balloon through virtio-mmio: inflate gives pages back, stats, reporting, the target. */
#include "virtio_driver.h"
#include "../../devices/virtio/balloon.h"
#include "state_util.h"

#include <errno.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#define MEM_SIZE (4u << 20)
#define BASE	 0xd0000000ull
#define QSZ	 8
#define PFN_GPA	 0x8000
#define PAGE_GPA 0x100000 /* the pages the guest gives up */

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct virtio_balloon *b;
	struct virtio_mmio *t;
	struct tdrv_mmio m;
	struct tdrv_queue q[4];
	int irqs;
};

static void on_irq(void *opaque)
{
	((struct rig *)opaque)->irqs++;
}

static void rig_init(struct rig *r, uint64_t features, unsigned nq)
{
	memset(r, 0, sizeof(*r));
	REQUIRE_OK(
	    vmm_mem_create(&r->mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	struct virtio_mmio_config cfg = {.mem = &r->mem, .interrupt = on_irq, .opaque = r};
	REQUIRE_OK(virtio_balloon_create(cfg, &r->b, &r->t));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->m = (struct tdrv_mmio){.bus = r->bus, .base = BASE};
	uint64_t offered = tdrv_probe(&r->m, VIRTIO_ID_BALLOON, features);
	CHECK(offered & (1ull << VIRTIO_BALLOON_F_STATS_VQ));
	CHECK(offered & (1ull << VIRTIO_BALLOON_F_REPORTING));
	for (unsigned i = 0; i < nq; i++) {
		r->q[i] = (struct tdrv_queue){.mem = &r->mem,
					      .size = QSZ,
					      .desc = 0x10000 + 0x4000ull * i,
					      .avail = 0x11000 + 0x4000ull * i,
					      .used = 0x12000 + 0x4000ull * i};
		tdrv_setup_queue(&r->m, i, &r->q[i]);
	}
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
}

static void rig_fini(struct rig *r)
{
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_balloon_destroy(r->b);
	vmm_mem_destroy(&r->mem);
}

static void send(struct rig *r, unsigned qi, uint64_t gpa, uint32_t len, bool writable)
{
	tdrv_desc(&r->q[qi], r->q[qi].desc, 0, gpa, len, writable ? VRING_DESC_F_WRITE : 0, 0);
	tdrv_publish(&r->q[qi], 0);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, qi);
}

TEST(virtio_balloon_inflate_gives_pages_back)
{
	struct rig r;
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BALLOON_F_STATS_VQ) |
		     (1ull << VIRTIO_BALLOON_F_REPORTING);
	rig_init(&r, f, 4);
	/* the host wants 3 pages: num_pages in the config, a config interrupt */
	virtio_balloon_set_target(r.b, 3);
	uint64_t v = 0;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG, &v, 4, false, 0);
	CHECK_EQ(v, 3);
	CHECK(tdrv_rd(&r.m, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	/* guest pages with data, then inflated: they read as zero */
	memset(r.mem.host + PAGE_GPA, 0xaa, 3 * 4096);
	uint32_t pfns[4] = {PAGE_GPA >> 12, (PAGE_GPA >> 12) + 1, (PAGE_GPA >> 12) + 2,
			    (MEM_SIZE >> 12) + 5 /* not RAM */};
	REQUIRE_OK(vmm_mem_write(&r.mem, PFN_GPA, pfns, sizeof(pfns)));
	send(&r, 0, PFN_GPA, sizeof(pfns), false);
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[0].used + 2), 1);
	CHECK_EQ(r.mem.host[PAGE_GPA], 0);
	CHECK_EQ(r.mem.host[PAGE_GPA + 3 * 4096 - 1], 0);
	/* the driver says it holds them */
	v = 3;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG + 4, &v, 4, true, 0);
	struct virtio_balloon_stats st;
	virtio_balloon_get_stats(r.b, &st);
	CHECK_EQ(st.inflated, 4);
	CHECK_EQ(st.discarded, 3);
	CHECK_EQ(st.bad_pfns, 1);
	CHECK_EQ(st.actual_pages, 3);
	CHECK_EQ(st.target_pages, 3);
	/* the device bits the driver took (no deflate-on-oom: not asked for) */
	CHECK_EQ(st.features,
		 (1ull << VIRTIO_BALLOON_F_STATS_VQ) | (1ull << VIRTIO_BALLOON_F_REPORTING));
	/* deflate: counted; the pages fault back in */
	send(&r, 1, PFN_GPA, 8, false);
	virtio_balloon_get_stats(r.b, &st);
	CHECK_EQ(st.deflated, 2);

	/* stats: the driver's buffer is held until the host asks again */
	uint8_t s[20] = {0};
	uint16_t tag = VIRTIO_BALLOON_S_MEMFREE;
	uint64_t val = 123456789;
	memcpy(s, &tag, 2);
	memcpy(s + 2, &val, 8);
	tag = VIRTIO_BALLOON_S_MEMTOT;
	val = 987654321;
	memcpy(s + 10, &tag, 2);
	memcpy(s + 12, &val, 8);
	REQUIRE_OK(vmm_mem_write(&r.mem, PFN_GPA, s, sizeof(s)));
	send(&r, 2, PFN_GPA, sizeof(s), false);
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[2].used + 2), 0); /* held */
	virtio_balloon_get_stats(r.b, &st);
	CHECK(st.have_guest_stats);
	CHECK_EQ(st.guest[VIRTIO_BALLOON_S_MEMFREE], 123456789);
	CHECK_EQ(st.guest[VIRTIO_BALLOON_S_MEMTOT], 987654321);
	REQUIRE_OK(virtio_balloon_request_stats(r.b));
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[2].used + 2), 1); /* returned: refill */
	CHECK_ERR(virtio_balloon_request_stats(r.b), -EAGAIN);

	/* free page reporting (queue 3 with stats): writable free pages */
	memset(r.mem.host + PAGE_GPA, 0x55, 8192);
	send(&r, 3, PAGE_GPA, 8192, true);
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[3].used + 2), 1);
	CHECK_EQ(r.mem.host[PAGE_GPA + 4096], 0);
	virtio_balloon_get_stats(r.b, &st);
	CHECK_EQ(st.reported, 2);
	CHECK_EQ(st.discarded, 5);
	rig_fini(&r);
}

TEST(virtio_balloon_queue_order_follows_features)
{
	/* without STATS_VQ, the reporting queue is queue 2 */
	struct rig r;
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BALLOON_F_REPORTING);
	rig_init(&r, f, 3);
	memset(r.mem.host + PAGE_GPA, 0x55, 4096);
	send(&r, 2, PAGE_GPA, 4096, true);
	struct virtio_balloon_stats st;
	virtio_balloon_get_stats(r.b, &st);
	CHECK_EQ(st.reported, 1);
	CHECK_EQ(st.have_guest_stats, false);
	CHECK_EQ(r.mem.host[PAGE_GPA], 0);
	CHECK_ERR(virtio_balloon_request_stats(r.b), -EAGAIN);
	rig_fini(&r);
}

TEST(vmm_mem_discard_checks)
{
	struct vmm_mem m;
	REQUIRE_OK(vmm_mem_create(&m, 1 << 20, 1 << 20, 1 << 20, EMBER_MEM_MEMFD, false, NULL));
	memset(m.host, 0x11, 8192);
	CHECK_OK(vmm_mem_discard(&m, 4096, 4096));
	CHECK_EQ(m.host[4096], 0);
	CHECK_EQ(m.host[0], 0x11);
	CHECK_ERR(vmm_mem_discard(&m, 100, 4096), -EINVAL);
	CHECK_ERR(vmm_mem_discard(&m, (1 << 20) - 4096, 8192), -EFAULT);
	CHECK_ERR(vmm_mem_discard(&m, 0, 0), -EFAULT);
	vmm_mem_destroy(&m);
}

/* ------------------------------------------------------------ saved state */

static void rig_fresh_device(struct rig *r)
{
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_balloon_destroy(r->b);
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	struct virtio_mmio_config cfg = {.mem = &r->mem, .interrupt = on_irq, .opaque = r};
	REQUIRE_OK(virtio_balloon_create(cfg, &r->b, &r->t));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->m.bus = r->bus;
}

TEST(virtio_balloon_state_target_actual_and_held_stats)
{
	struct rig r;
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BALLOON_F_STATS_VQ);
	rig_init(&r, f, 3);
	virtio_balloon_set_target(r.b, 7);
	uint64_t v = 5;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG + 4, &v, 4, true, 0);
	uint8_t s[10] = {0};
	uint16_t tag = VIRTIO_BALLOON_S_MEMFREE;
	uint64_t val = 4242;
	memcpy(s, &tag, 2);
	memcpy(s + 2, &val, 8);
	REQUIRE_OK(vmm_mem_write(&r.mem, PFN_GPA, s, sizeof(s)));
	send(&r, 2, PFN_GPA, sizeof(s), false);
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[2].used + 2), 0); /* held by the device */
	size_t len;
	uint8_t *buf = state_take(state_dev_save, virtio_mmio_dev(r.t), &len);

	rig_fresh_device(&r);
	r.irqs = 0;
	REQUIRE_OK(state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, NULL, 0));
	CHECK(r.irqs >= 1); /* the pending configuration interrupt raised again */
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG, &v, 4, false, 0);
	CHECK_EQ(v, 7);
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG + 4, &v, 4, false, 0);
	CHECK_EQ(v, 5);
	struct virtio_balloon_stats st;
	virtio_balloon_get_stats(r.b, &st);
	CHECK_EQ(st.guest[VIRTIO_BALLOON_S_MEMFREE], 4242);
	/* the held stats buffer: not the device's until it takes it again */
	CHECK_ERR(virtio_balloon_request_stats(r.b), -EAGAIN);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	REQUIRE_OK(virtio_balloon_request_stats(r.b));
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[2].used + 2), 1); /* returned in the first used slot */
	CHECK_EQ(tdrv_rd32(&r.mem, r.q[2].used + 4), 0);

	rig_fresh_device(&r);
	state_check_refusals(state_dev_save, state_dev_load, virtio_mmio_dev(r.t), buf, len);
	/* a statistics tag the device does not know */
	state_check_patched(state_dev_load, virtio_mmio_dev(r.t), buf, len, len - 80 - 4 + 1, 0x04,
			    "virtio-mmio/virtio-balloon: statistics tags");
	free(buf);
	rig_fini(&r);
}
