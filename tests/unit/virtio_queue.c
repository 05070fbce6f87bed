/* tests/unit/virtio_queue.c - the split virtqueue, device side: good chains, indirect tables, hostile rings, notification suppression. */
#include "virtio_driver.h"
#include "../../devices/virtio/virtqueue.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

/* Guest layout for the tests: 1 MiB of RAM, one queue of QSZ entries. */
#define MEM_SIZE  (1u << 20)
#define QSZ	  8
#define DESC_GPA  0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA  0x3000
#define INDIR_GPA 0x4000
#define BUFS_GPA  0x10000

struct drv {
	struct vmm_mem mem;
	struct virtq q;
	struct tdrv_queue t;
	struct vq_buf bufs[16];
	struct vq_chain chain;
};

static void drv_init(struct drv *d, bool event_idx, bool indirect)
{
	memset(d, 0, sizeof(*d));
	REQUIRE_OK(
	    vmm_mem_create(&d->mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	REQUIRE_OK(
	    vq_enable(&d->q, &d->mem, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, event_idx, indirect));
	d->chain = (struct vq_chain){.bufs = d->bufs, .max_bufs = 16};
	d->t = (struct tdrv_queue){
	    .mem = &d->mem, .size = QSZ, .desc = DESC_GPA, .avail = AVAIL_GPA, .used = USED_GPA};
}

static void drv_fini(struct drv *d)
{
	vmm_mem_destroy(&d->mem);
}

#define put_desc(d, table, i, addr, len, flags, next) \
	tdrv_desc(&(d)->t, table, i, addr, len, flags, next)
#define publish(d, head) tdrv_publish(&(d)->t, head)
#define rd16(d, gpa)	 tdrv_rd16(&(d)->mem, gpa)
#define rd32(d, gpa)	 tdrv_rd32(&(d)->mem, gpa)

TEST(virtq_enable_checks_layout)
{
	struct drv d;
	drv_init(&d, false, false);
	struct virtq q;
	CHECK_ERR(vq_enable(&q, &d.mem, 0, DESC_GPA, AVAIL_GPA, USED_GPA, false, false), -EINVAL);
	CHECK_ERR(vq_enable(&q, &d.mem, 6, DESC_GPA, AVAIL_GPA, USED_GPA, false, false), -EINVAL);
	CHECK_ERR(vq_enable(&q, &d.mem, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA, false, false),
		  -EINVAL);
	CHECK_ERR(vq_enable(&q, &d.mem, 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA, false, false),
		  -EINVAL);
	CHECK_ERR(vq_enable(&q, &d.mem, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2, false, false),
		  -EINVAL);
	/* a ring that runs past guest RAM */
	CHECK_ERR(vq_enable(&q, &d.mem, 8, MEM_SIZE - 64, AVAIL_GPA, USED_GPA, false, false),
		  -EFAULT);
	/* the largest queue fits in 1 MiB */
	CHECK_OK(vq_enable(&q, &d.mem, 32768, DESC_GPA, AVAIL_GPA, USED_GPA, false, false));
	CHECK(q.enabled);
	vq_reset(&q);
	CHECK(!q.enabled);
	struct vq_chain c = {0};
	CHECK_ERR(vq_pop(&q, &c), -EINVAL);
	CHECK_ERR(vq_push(&q, 0, 0), -EINVAL);
	drv_fini(&d);
}

TEST(virtq_pops_chain_and_pushes_used)
{
	struct drv d;
	drv_init(&d, false, false);
	CHECK_EQ(vq_pop(&d.q, &d.chain), 0);
	CHECK(!vq_has_work(&d.q));
	/* a virtio-blk-like request: 16-byte header, 512 data out, 1 status in */
	put_desc(&d, DESC_GPA, 3, BUFS_GPA, 16, VRING_DESC_F_NEXT, 5);
	put_desc(&d, DESC_GPA, 5, BUFS_GPA + 0x100, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	put_desc(&d, DESC_GPA, 1, BUFS_GPA + 0x400, 1, VRING_DESC_F_WRITE, 0);
	REQUIRE_OK(vmm_mem_write(&d.mem, BUFS_GPA, "0123456789abcdef", 16));
	publish(&d, 3);
	CHECK(vq_has_work(&d.q));
	REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
	CHECK_EQ(d.chain.error, 0);
	CHECK_EQ(d.chain.head, 3);
	CHECK_EQ(d.chain.nbufs, 3);
	CHECK_EQ(d.chain.nreadable, 1);
	CHECK_EQ(d.chain.readable_len, 16);
	CHECK_EQ(d.chain.writable_len, 513);
	CHECK(!d.bufs[0].device_writes && d.bufs[1].device_writes && d.bufs[2].device_writes);
	char hdr[17] = {0};
	CHECK_EQ(vq_chain_read(&d.chain, 4, hdr, 16), 12);
	CHECK_STR(hdr, "456789abcdef");
	uint8_t fill[513];
	memset(fill, 0xab, sizeof(fill));
	fill[512] = 0; /* status OK */
	CHECK_EQ(vq_chain_write(&d.chain, 0, fill, sizeof(fill)), 513);
	CHECK_EQ(rd16(&d, BUFS_GPA + 0x100 + 510), 0xabab);
	CHECK_EQ(rd16(&d, BUFS_GPA + 0x400) & 0xff, 0);
	CHECK_EQ(vq_pop(&d.q, &d.chain), 0);
	REQUIRE_OK(vq_push(&d.q, 3, 513));
	CHECK_EQ(rd16(&d, USED_GPA + 2), 1);   /* used.idx */
	CHECK_EQ(rd32(&d, USED_GPA + 4), 3);   /* used.ring[0].id */
	CHECK_EQ(rd32(&d, USED_GPA + 8), 513); /* used.ring[0].len */
	CHECK(vq_need_interrupt(&d.q));
	CHECK(!vq_need_interrupt(&d.q)); /* nothing new */
	CHECK_ERR(vq_push(&d.q, QSZ, 0), -EINVAL);
	/* the index wraps around the ring and past 65535 */
	for (unsigned i = 0; i < 70000; i++) {
		put_desc(&d, DESC_GPA, i % QSZ, BUFS_GPA, 4, 0, 0);
		publish(&d, (uint16_t)(i % QSZ));
		REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
		REQUIRE_EQ(d.chain.head, i % QSZ);
		REQUIRE_OK(vq_push(&d.q, d.chain.head, 0));
	}
	CHECK_EQ(rd16(&d, USED_GPA + 2), (uint16_t)70001);
	CHECK_EQ(d.q.bad_chains, 0);
	drv_fini(&d);
}

TEST(virtq_indirect_tables)
{
	struct drv d;
	drv_init(&d, false, true);
	put_desc(&d, INDIR_GPA, 0, BUFS_GPA, 8, VRING_DESC_F_NEXT, 1);
	put_desc(&d, INDIR_GPA, 1, BUFS_GPA + 8, 8, VRING_DESC_F_NEXT, 2);
	put_desc(&d, INDIR_GPA, 2, BUFS_GPA + 16, 100, VRING_DESC_F_WRITE, 0);
	put_desc(&d, DESC_GPA, 0, INDIR_GPA, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(&d, 0);
	REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
	CHECK_EQ(d.chain.error, 0);
	CHECK_EQ(d.chain.nbufs, 3);
	CHECK_EQ(d.chain.readable_len, 16);
	CHECK_EQ(d.chain.writable_len, 100);
	vq_push(&d.q, 0, 0);

	/* an indirect table inside an indirect table */
	put_desc(&d, INDIR_GPA, 1, INDIR_GPA + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	put_desc(&d, INDIR_GPA, 0, BUFS_GPA, 8, VRING_DESC_F_NEXT, 1);
	publish(&d, 0);
	REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
	CHECK_ERR(d.chain.error, -EINVAL);
	vq_push(&d.q, 0, 0);
	/* INDIRECT together with NEXT; a length not a whole number of
	 * descriptors; an empty table; a table past guest RAM */
	put_desc(&d, DESC_GPA, 0, INDIR_GPA, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	put_desc(&d, DESC_GPA, 1, INDIR_GPA, 40, VRING_DESC_F_INDIRECT, 0);
	put_desc(&d, DESC_GPA, 2, INDIR_GPA, 0, VRING_DESC_F_INDIRECT, 0);
	put_desc(&d, DESC_GPA, 3, MEM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	const int want[] = {-EINVAL, -EINVAL, -EINVAL, -EFAULT};
	for (uint16_t h = 0; h < 4; h++) {
		publish(&d, h);
		REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
		CHECK_ERR(d.chain.error, want[h]);
		vq_push(&d.q, h, 0);
	}
	/* a loop inside the indirect table ends */
	put_desc(&d, INDIR_GPA, 0, BUFS_GPA, 8, VRING_DESC_F_NEXT, 1);
	put_desc(&d, INDIR_GPA, 1, BUFS_GPA, 8, VRING_DESC_F_NEXT, 0);
	put_desc(&d, DESC_GPA, 0, INDIR_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	publish(&d, 0);
	REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
	CHECK_ERR(d.chain.error, -ELOOP);
	vq_push(&d.q, 0, 0);
	CHECK_EQ(d.q.bad_chains, 6);
	/* not negotiated: refused */
	struct drv e;
	drv_init(&e, false, false);
	put_desc(&e, DESC_GPA, 0, INDIR_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	publish(&e, 0);
	REQUIRE_EQ(vq_pop(&e.q, &e.chain), 1);
	CHECK_ERR(e.chain.error, -EINVAL);
	drv_fini(&e);
	drv_fini(&d);
}

TEST(virtq_hostile_chains_are_refused_one_by_one)
{
	struct drv d;
	drv_init(&d, false, false);
	/* 0: a descriptor loop (0 -> 1 -> 0) */
	put_desc(&d, DESC_GPA, 0, BUFS_GPA, 8, VRING_DESC_F_NEXT, 1);
	put_desc(&d, DESC_GPA, 1, BUFS_GPA, 8, VRING_DESC_F_NEXT, 0);
	/* 2: next index past the queue */
	put_desc(&d, DESC_GPA, 2, BUFS_GPA, 8, VRING_DESC_F_NEXT, QSZ + 3);
	/* 3: a length of 4 GiB - 1 */
	put_desc(&d, DESC_GPA, 3, BUFS_GPA, 0xffffffffu, 0, 0);
	/* 4: an address past guest memory */
	put_desc(&d, DESC_GPA, 4, MEM_SIZE + 0x1000, 16, 0, 0);
	/* 5: an address that wraps the 64-bit space */
	put_desc(&d, DESC_GPA, 5, UINT64_MAX - 4, 16, 0, 0);
	/* 6: readable after writable */
	put_desc(&d, DESC_GPA, 6, BUFS_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 7);
	put_desc(&d, DESC_GPA, 7, BUFS_GPA, 8, 0, 0);
	const int want[] = {-ELOOP, 0, -EINVAL, -EFAULT, -EFAULT, -EFAULT, -EINVAL};
	const uint16_t heads[] = {0, 0, 2, 3, 4, 5, 6};
	for (unsigned i = 0; i < 7; i++) {
		if (i == 1)
			continue;
		publish(&d, heads[i]);
		REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
		CHECK_EQ(d.chain.head, heads[i]);
		CHECK_ERR(d.chain.error, want[i]);
		REQUIRE_OK(vq_push(&d.q, heads[i], 0));
	}
	CHECK_EQ(d.q.bad_chains, 6);
	/* more buffers than the caller has room for */
	struct vq_buf two[2];
	struct vq_chain small = {.bufs = two, .max_bufs = 2};
	put_desc(&d, DESC_GPA, 0, BUFS_GPA, 8, VRING_DESC_F_NEXT, 1);
	put_desc(&d, DESC_GPA, 1, BUFS_GPA, 8, VRING_DESC_F_NEXT, 2);
	put_desc(&d, DESC_GPA, 2, BUFS_GPA, 8, 0, 0);
	publish(&d, 0);
	REQUIRE_EQ(vq_pop(&d.q, &small), 1);
	CHECK_ERR(small.error, -E2BIG);
	REQUIRE_OK(vq_push(&d.q, 0, 0));
	/* lengths whose sum overflows 32 bits */
	put_desc(&d, DESC_GPA, 0, 0, MEM_SIZE, VRING_DESC_F_NEXT, 1);
	put_desc(&d, DESC_GPA, 1, 0, MEM_SIZE, VRING_DESC_F_NEXT, 2);
	put_desc(&d, DESC_GPA, 2, 0, MEM_SIZE, 0, 0);
	publish(&d, 0);
	REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
	CHECK_EQ(d.chain.error, 0); /* 3 MiB is fine */
	vq_push(&d.q, 0, 0);
	/* the queue still works after all that */
	put_desc(&d, DESC_GPA, 4, BUFS_GPA, 8, 0, 0);
	publish(&d, 4);
	REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
	CHECK_EQ(d.chain.error, 0);
	drv_fini(&d);
}

TEST(virtq_broken_ring_needs_reset)
{
	struct drv d;
	drv_init(&d, false, false);
	/* a head index past the queue */
	publish(&d, QSZ);
	CHECK_ERR(vq_pop(&d.q, &d.chain), -EIO);
	CHECK(d.q.broken);
	CHECK_ERR(vq_pop(&d.q, &d.chain), -EIO); /* stays broken */
	CHECK(!vq_has_work(&d.q));
	/* re-enabled by the driver (after a reset): works again */
	REQUIRE_OK(vq_enable(&d.q, &d.mem, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, false, false));
	d.t.avail_idx = 0;
	REQUIRE_OK(vmm_mem_write(&d.mem, AVAIL_GPA + 2, &d.t.avail_idx, 2));
	put_desc(&d, DESC_GPA, 0, BUFS_GPA, 8, 0, 0);
	publish(&d, 0);
	CHECK_EQ(vq_pop(&d.q, &d.chain), 1);
	/* the available index runs ahead by more than the queue size */
	uint16_t idx = (uint16_t)(d.t.avail_idx + QSZ + 1);
	REQUIRE_OK(vmm_mem_write(&d.mem, AVAIL_GPA + 2, &idx, 2));
	CHECK_ERR(vq_pop(&d.q, &d.chain), -EIO);
	drv_fini(&d);
}

TEST(virtq_notification_suppression)
{
	/* without EVENT_IDX: the driver's NO_INTERRUPT flag, the device's NO_NOTIFY */
	struct drv d;
	drv_init(&d, false, false);
	put_desc(&d, DESC_GPA, 0, BUFS_GPA, 8, 0, 0);
	uint16_t flags = VRING_AVAIL_F_NO_INTERRUPT;
	REQUIRE_OK(vmm_mem_write(&d.mem, AVAIL_GPA, &flags, 2));
	publish(&d, 0);
	REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
	vq_push(&d.q, 0, 0);
	CHECK(!vq_need_interrupt(&d.q));
	vq_set_notify(&d.q, false);
	CHECK_EQ(rd16(&d, USED_GPA) & VRING_USED_F_NO_NOTIFY, VRING_USED_F_NO_NOTIFY);
	vq_set_notify(&d.q, true);
	CHECK_EQ(rd16(&d, USED_GPA) & VRING_USED_F_NO_NOTIFY, 0);
	drv_fini(&d);

	/* with EVENT_IDX: used_event says when to interrupt, avail_event when
	 * to notify */
	drv_init(&d, true, false);
	const uint64_t used_event = AVAIL_GPA + 4 + 2 * QSZ, avail_event = USED_GPA + 4 + 8 * QSZ;
	uint16_t ev = 2; /* interrupt me when used.idx goes past 2 */
	REQUIRE_OK(vmm_mem_write(&d.mem, used_event, &ev, 2));
	bool irq[4];
	for (unsigned i = 0; i < 4; i++) {
		put_desc(&d, DESC_GPA, i, BUFS_GPA, 8, 0, 0);
		publish(&d, (uint16_t)i);
		REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
		CHECK_EQ(rd16(&d, avail_event), i + 1); /* asks for the next one */
		vq_push(&d.q, (uint16_t)i, 0);
		irq[i] = vq_need_interrupt(&d.q);
	}
	/* the first (no interrupt yet), then used.idx 3 crosses used_event 2 */
	CHECK(irq[0]);
	CHECK(!irq[1]);
	CHECK(irq[2]);
	CHECK(!irq[3]);
	vq_set_notify(&d.q, false);
	put_desc(&d, DESC_GPA, 4, BUFS_GPA, 8, 0, 0);
	publish(&d, 4);
	REQUIRE_EQ(vq_pop(&d.q, &d.chain), 1);
	CHECK_EQ(rd16(&d, avail_event), 4); /* not moved while notifications are off */
	vq_set_notify(&d.q, true);
	CHECK_EQ(rd16(&d, avail_event), 5);
	drv_fini(&d);
}
