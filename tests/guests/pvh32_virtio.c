/* tests/guests/pvh32_virtio.c - booted by the VMM: drives its virtio-blk and virtio-rng with hostile rings, reports on ttyS0. */
#include "guest.h"
#include "board.h"
#include "serial.h"

/*
 * The host (tests/kvm/virtio_hostile.c) boots this as the kernel of a real
 * Ember VM (PVH, 64 MiB, one vCPU) with a disk (sector s holds bytes
 * s * 31 + i) and an entropy source, found at the first two virtio-mmio
 * windows. For each hostile ring the guest publishes it, notifies, and
 * checks what the device reports: DEVICE_NEEDS_RESET for a ring or chain it
 * cannot use, an error in the request's status byte for a well-formed chain
 * carrying a bad request. After each case the other device must still
 * work, and the broken one must work again after a driver reset. Each case
 * prints "ok NAME" or "FAIL NAME: ..."; the last line is "hostile: done N
 * failed F", then the guest powers off (ACPI S5).
 */

#define F_INDIRECT_DESC 28 /* in the low feature word */
#define F_VERSION_1	0  /* bit 32: the high word's bit 0 */

#define BLK_T_IN  0u
#define BLK_S_OK  0u
#define BLK_S_ERR 1u

#define QSIZE  16u
#define SECTOR 512u

/* Guest memory (64 MiB, the image at 1 MiB): rings and buffers. */
#define BLK_RING   0x200000u
#define RNG_RING   0x210000u
#define IND_TABLE  0x220000u /* indirect tables, 4 KiB apart */
#define HDR_BUF	   0x230000u
#define DATA_BUF   0x231000u
#define STATUS_BUF 0x232000u
#define RNG_BUF	   0x233000u
#define BIG_BUF	   0x1000000u /* 16 MiB: the target of 32 MiB descriptors */
#define MEM_END	   0x4000000u /* 64 MiB */

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vdev {
	const char *name;
	uint32_t base;
	uint32_t ring; /* desc at ring, avail at +0x1000, used at +0x2000 */
	uint16_t avail_idx, used_seen;
};

static unsigned failures, cases;

/* ---------------------------------------------------------------- console */

static void puthex(uint64_t v)
{
	char b[19];
	int n = 0;
	b[n++] = '0';
	b[n++] = 'x';
	int shift = 60;
	while (shift > 0 && !((v >> shift) & 0xf))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		b[n++] = "0123456789abcdef"[(v >> shift) & 0xf];
	b[n] = 0;
	serial_puts(b);
}
/* One case's verdict: ok, or FAIL with what was seen. */
static void verdict(const char *name, bool ok, const char *what, uint64_t v1, uint64_t v2)
{
	cases++;
	if (ok) {
		serial_puts("ok ");
		serial_puts(name);
		serial_puts("\n");
		return;
	}
	failures++;
	serial_puts("FAIL ");
	serial_puts(name);
	serial_puts(": ");
	serial_puts(what);
	serial_puts(" ");
	puthex(v1);
	serial_puts(" ");
	puthex(v2);
	serial_puts("\n");
}

/* ---------------------------------------------------------------- driver */

static inline void barrier(void)
{
	__asm__ __volatile__("" ::: "memory");
}
static uint32_t rd(const struct vdev *d, uint32_t off)
{
	return mmio_read32(d->base + off);
}
static void wr(const struct vdev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->base + off, v);
}
static volatile struct desc *desc_table(const struct vdev *d)
{
	return (volatile struct desc *)(uintptr_t)d->ring;
}
static volatile uint16_t *avail(const struct vdev *d)
{
	return (volatile uint16_t *)(uintptr_t)(d->ring + 0x1000);
}
static volatile uint32_t *used(const struct vdev *d)
{
	return (volatile uint32_t *)(uintptr_t)(d->ring + 0x2000);
}
static uint16_t used_idx(const struct vdev *d)
{
	return *((volatile uint16_t *)(uintptr_t)(d->ring + 0x2000) + 1);
}
/* The length of the used entry for the request used_seen names. */
static uint32_t used_len(const struct vdev *d, uint16_t n)
{
	return used(d)[1 + 2 * (n % QSIZE) + 1];
}
static void set_desc(volatile struct desc *t, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	t[i].addr = addr;
	t[i].len = len;
	t[i].flags = flags;
	t[i].next = next;
}

/* Resets the device and brings queue 0 up (QSIZE entries at ring_desc);
 * returns false if the device refused a step. */
static bool dev_setup(struct vdev *d, uint32_t ring_desc)
{
	wr(d, R_STATUS, 0);
	if (rd(d, R_STATUS) != 0)
		return false;
	wr(d, R_STATUS, S_ACK);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DEV_FEAT_SEL, 1);
	if (!(rd(d, R_DEV_FEAT) & (1u << F_VERSION_1)))
		return false;
	wr(d, R_DEV_FEAT_SEL, 0);
	if (!(rd(d, R_DEV_FEAT) & (1u << F_INDIRECT_DESC)))
		return false;
	wr(d, R_DRV_FEAT_SEL, 0);
	wr(d, R_DRV_FEAT, 1u << F_INDIRECT_DESC);
	wr(d, R_DRV_FEAT_SEL, 1);
	wr(d, R_DRV_FEAT, 1u << F_VERSION_1);
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(rd(d, R_STATUS) & S_FEATURES_OK))
		return false;
	wr(d, R_QUEUE_SEL, 0);
	if (rd(d, R_QUEUE_MAX) < QSIZE)
		return false;
	wr(d, R_QUEUE_NUM, QSIZE);
	memset((void *)(uintptr_t)d->ring, 0, 0x3000);
	wr(d, R_DESC_LO, ring_desc);
	wr(d, R_DESC_HI, 0);
	wr(d, R_AVAIL_LO, d->ring + 0x1000);
	wr(d, R_AVAIL_HI, 0);
	wr(d, R_USED_LO, d->ring + 0x2000);
	wr(d, R_USED_HI, 0);
	wr(d, R_QUEUE_READY, 1);
	if (rd(d, R_QUEUE_READY) != 1)
		return false;
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	d->avail_idx = d->used_seen = 0;
	return (rd(d, R_STATUS) & (S_DRIVER_OK | S_NEEDS_RESET)) == S_DRIVER_OK;
}

static bool dev_init(struct vdev *d)
{
	return dev_setup(d, d->ring);
}

/* Publishes head and notifies queue 0. */
static void publish(struct vdev *d, uint16_t head)
{
	avail(d)[2 + d->avail_idx % QSIZE] = head;
	barrier();
	d->avail_idx++;
	avail(d)[1] = d->avail_idx;
	barrier();
	wr(d, R_NOTIFY, 0);
}

/*
 * Waits for the device's answer: returns 1 when the used index moved (one
 * more request done), 2 when the device set DEVICE_NEEDS_RESET (whether or
 * not it also returned the chain, within grace_rounds), 0 after the bound (each round reads the
 * status register, an exit to the VMM, so the bound is time as well).
 */
#define ROUNDS 2000000u
static int wait_dev(struct vdev *d, unsigned grace_rounds)
{
	unsigned grace = 0;
	bool moved = false;
	for (unsigned i = 0; i < ROUNDS; i++) {
		if (rd(d, R_STATUS) & S_NEEDS_RESET) {
			wr(d, R_INT_ACK, rd(d, R_INT_STATUS));
			return 2;
		}
		if (!moved && used_idx(d) != d->used_seen) {
			moved = true;
			d->used_seen++;
		}
		/* a chain returned: a reset, if any, comes with it */
		if (moved && grace++ >= grace_rounds)
			break;
	}
	if (moved)
		wr(d, R_INT_ACK, rd(d, R_INT_STATUS));
	return moved ? 1 : 0;
}

/* ---------------------------------------------------------------- requests */

static struct vdev blk = {.name = "blk", .ring = BLK_RING};
static struct vdev rng = {.name = "rng", .ring = RNG_RING};

static void blk_header(uint32_t type, uint64_t sector)
{
	volatile uint32_t *h = (volatile uint32_t *)(uintptr_t)HDR_BUF;
	h[0] = type;
	h[1] = 0;
	h[2] = (uint32_t)sector;
	h[3] = (uint32_t)(sector >> 32);
}

static volatile uint8_t *status_byte(void)
{
	return (volatile uint8_t *)(uintptr_t)STATUS_BUF;
}

/* A read of one sector through the direct table (indirect false) or an
 * indirect one; true when the status is OK, the length right and the data
 * the disk's pattern. */
static bool blk_read(uint64_t sector, bool indirect, uint32_t *why, uint32_t *seen)
{
	blk_header(BLK_T_IN, sector);
	memset((void *)(uintptr_t)DATA_BUF, 0, SECTOR);
	*status_byte() = 0xff;
	volatile struct desc *t =
	    indirect ? (volatile struct desc *)(uintptr_t)IND_TABLE : desc_table(&blk);
	set_desc(t, 0, HDR_BUF, 16, D_NEXT, 1);
	set_desc(t, 1, DATA_BUF, SECTOR, D_WRITE | D_NEXT, 2);
	set_desc(t, 2, STATUS_BUF, 1, D_WRITE, 0);
	if (indirect)
		set_desc(desc_table(&blk), 0, IND_TABLE, 3 * 16, D_INDIRECT, 0);
	publish(&blk, 0);
	int r = wait_dev(&blk, 0);
	*why = (uint32_t)r;
	*seen = *status_byte();
	if (r != 1 || *status_byte() != BLK_S_OK)
		return false;
	*seen = used_len(&blk, (uint16_t)(blk.used_seen - 1));
	if (*seen != SECTOR + 1)
		return false;
	const uint8_t *p = (const uint8_t *)(uintptr_t)DATA_BUF;
	for (unsigned i = 0; i < SECTOR; i++)
		if (p[i] != (uint8_t)(sector * 31 + i)) {
			*seen = 0xda7a0000u | i;
			return false;
		}
	return true;
}

/* 64 bytes of entropy: true when the used length is 64 and they are not
 * all the zeros the buffer held. */
static bool rng_read(uint32_t *why, uint32_t *seen)
{
	memset((void *)(uintptr_t)RNG_BUF, 0, 64);
	set_desc(desc_table(&rng), 0, RNG_BUF, 64, D_WRITE, 0);
	publish(&rng, 0);
	int r = wait_dev(&rng, 0);
	*why = (uint32_t)r;
	*seen = 0;
	if (r != 1)
		return false;
	*seen = used_len(&rng, (uint16_t)(rng.used_seen - 1));
	if (*seen != 64)
		return false;
	const uint8_t *p = (const uint8_t *)(uintptr_t)RNG_BUF;
	for (unsigned i = 0; i < 64; i++)
		if (p[i])
			return true;
	return false;
}

/* After a hostile case on d: the other device still works now, and d works
 * again after a driver reset. */
static void recovery(const char *name, struct vdev *d)
{
	uint32_t why, seen;
	struct vdev *other = d == &blk ? &rng : &blk;
	bool ok = other == &rng ? rng_read(&why, &seen) : blk_read(3, false, &why, &seen);
	verdict(name, ok, "the other device failed afterwards:", why, seen);
	ok = dev_init(d);
	verdict(name, ok, "the device did not come back up after a reset:", rd(d, R_STATUS), 0);
	if (ok) {
		ok = d == &blk ? blk_read(2, false, &why, &seen) : rng_read(&why, &seen);
		verdict(name, ok, "the device did not work after a reset:", why, seen);
	}
}

/* The case just published must end in DEVICE_NEEDS_RESET. */
static void expect_needs_reset(const char *name, struct vdev *d)
{
	int r = wait_dev(d, 2000);
	verdict(name, r == 2, "no DEVICE_NEEDS_RESET: wait/status", (uint64_t)r, rd(d, R_STATUS));
	recovery(name, d);
}

/* The request just published must complete with an error status byte,
 * the device still running. */
static void expect_error_status(const char *name, struct vdev *d)
{
	int r = wait_dev(d, 2000);
	verdict(name, r == 1 && *status_byte() == BLK_S_ERR, "no error status: wait/status byte",
		(uint64_t)r, *status_byte());
	verdict(name, (rd(d, R_STATUS) & S_NEEDS_RESET) == 0, "the device needs a reset: status",
		rd(d, R_STATUS), 0);
	recovery(name, d);
}

/* The blk request's header and status descriptors around a data
 * descriptor (addr, len, flags, next), in the direct table. */
static void blk_chain(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	blk_header(BLK_T_IN, 0);
	*status_byte() = 0xff;
	volatile struct desc *t = desc_table(&blk);
	set_desc(t, 0, HDR_BUF, 16, D_NEXT, 1);
	set_desc(t, 1, addr, len, flags, next);
	set_desc(t, 2, STATUS_BUF, 1, D_WRITE, 0);
}

/* ---------------------------------------------------------------- the cases */

static bool find(struct vdev *d, uint32_t device_id)
{
	for (unsigned i = 0; i < 2; i++) {
		uint32_t base = VIRTIO_BASE + i * VIRTIO_WIN;
		if (mmio_read32(base + R_MAGIC) == 0x74726976u &&
		    mmio_read32(base + R_VERSION) == 2 &&
		    mmio_read32(base + R_DEVICE_ID) == device_id) {
			d->base = base;
			return true;
		}
	}
	return false;
}

static void cases_blk(void)
{
	volatile struct desc *t = desc_table(&blk);
	volatile struct desc *ind = (volatile struct desc *)(uintptr_t)IND_TABLE;
	volatile struct desc *ind2 = (volatile struct desc *)(uintptr_t)(IND_TABLE + 0x1000);

	/* a descriptor loop: data -> status -> data -> ... */
	blk_chain(DATA_BUF, SECTOR, D_WRITE | D_NEXT, 2);
	set_desc(t, 2, STATUS_BUF, 1, D_WRITE | D_NEXT, 1);
	publish(&blk, 0);
	expect_needs_reset("desc-loop", &blk);

	/* a loop of one descriptor onto itself */
	blk_chain(DATA_BUF, SECTOR, D_WRITE | D_NEXT, 1);
	publish(&blk, 0);
	expect_needs_reset("desc-self-loop", &blk);

	/* a next index past the queue */
	blk_chain(DATA_BUF, SECTOR, D_WRITE | D_NEXT, 200);
	publish(&blk, 0);
	expect_needs_reset("next-past-queue", &blk);

	/* a head index past the queue in the available ring */
	blk_chain(DATA_BUF, SECTOR, D_WRITE | D_NEXT, 2);
	publish(&blk, QSIZE);
	expect_needs_reset("head-past-queue", &blk);

	/* an available index more than a queue ahead of the device */
	blk_chain(DATA_BUF, SECTOR, D_WRITE | D_NEXT, 2);
	blk.avail_idx = (uint16_t)(blk.avail_idx + QSIZE); /* QSIZE + 1 ahead after publish */
	publish(&blk, 0);
	expect_needs_reset("avail-index-past-queue", &blk);

	/* a length of 4 GiB - 1 (the most a descriptor can say) */
	blk_chain(DATA_BUF, 0xffffffffu, D_WRITE | D_NEXT, 2);
	publish(&blk, 0);
	expect_needs_reset("len-4g", &blk);

	/* lengths that add up to 4 GiB: 128 device-writable buffers of 32
	 * MiB each, all inside guest memory, in one indirect table */
	set_desc(ind, 0, HDR_BUF, 16, D_NEXT, 1);
	for (unsigned i = 1; i <= 128; i++)
		set_desc(ind, i, BIG_BUF, 32u << 20, D_WRITE | D_NEXT, (uint16_t)(i + 1));
	set_desc(ind, 129, STATUS_BUF, 1, D_WRITE, 0);
	set_desc(t, 0, IND_TABLE, 130 * 16, D_INDIRECT, 0);
	blk_header(BLK_T_IN, 0);
	publish(&blk, 0);
	expect_needs_reset("len-sum-4g", &blk);

	/* a buffer past guest memory, one that straddles its end, one that
	 * wraps the 64-bit address space, one in the MMIO hole */
	blk_chain(0x7f000000u, SECTOR, D_WRITE | D_NEXT, 2);
	publish(&blk, 0);
	expect_needs_reset("addr-past-memory", &blk);
	blk_chain(MEM_END - 256, SECTOR, D_WRITE | D_NEXT, 2);
	publish(&blk, 0);
	expect_needs_reset("addr-straddles-end", &blk);
	blk_chain(0xfffffffffffff000ull, 0x2000, D_WRITE | D_NEXT, 2);
	publish(&blk, 0);
	expect_needs_reset("addr-wraps", &blk);
	blk_chain(VIRTIO_BASE, SECTOR, D_WRITE | D_NEXT, 2);
	publish(&blk, 0);
	expect_needs_reset("addr-mmio", &blk);

	/* an indirect table inside an indirect table */
	set_desc(ind2, 0, HDR_BUF, 16, D_NEXT, 1);
	set_desc(ind2, 1, DATA_BUF, SECTOR, D_WRITE | D_NEXT, 2);
	set_desc(ind2, 2, STATUS_BUF, 1, D_WRITE, 0);
	set_desc(ind, 0, HDR_BUF, 16, D_NEXT, 1);
	set_desc(ind, 1, IND_TABLE + 0x1000, 3 * 16, D_INDIRECT, 0);
	set_desc(t, 0, IND_TABLE, 2 * 16, D_INDIRECT, 0);
	blk_header(BLK_T_IN, 0);
	publish(&blk, 0);
	expect_needs_reset("indirect-nested", &blk);

	/* an indirect table of 4 GiB - 16 bytes, one past guest memory */
	set_desc(t, 0, IND_TABLE, 0xfffffff0u, D_INDIRECT, 0);
	publish(&blk, 0);
	expect_needs_reset("indirect-len-4g", &blk);
	set_desc(t, 0, 0x7f000000u, 3 * 16, D_INDIRECT, 0);
	publish(&blk, 0);
	expect_needs_reset("indirect-past-memory", &blk);

	/* a chain with nowhere to put the status byte */
	blk_header(BLK_T_IN, 0);
	set_desc(t, 0, HDR_BUF, 16, 0, 0);
	publish(&blk, 0);
	expect_needs_reset("no-status-byte", &blk);

	/* a ring placed past guest memory: QueueReady does not stick */
	{
		bool up = dev_setup(&blk, 0x7f000000u);
		uint32_t st = rd(&blk, R_STATUS);
		verdict("ring-past-memory", !up && (st & S_NEEDS_RESET) && !rd(&blk, R_QUEUE_READY),
			"the queue was taken: status", st, 0);
		recovery("ring-past-memory", &blk);
	}

	/* well-formed chains carrying bad requests: an error status */
	blk_chain(DATA_BUF, SECTOR, D_WRITE | D_NEXT, 2);
	blk_header(BLK_T_IN, 1ull << 40); /* past the disk's end */
	publish(&blk, 0);
	expect_error_status("sector-past-end", &blk);
	blk_chain(DATA_BUF, SECTOR, D_WRITE | D_NEXT, 2);
	set_desc(t, 0, HDR_BUF, 8, D_NEXT, 1); /* a header of 8 bytes */
	publish(&blk, 0);
	expect_error_status("short-header", &blk);
}

static void cases_rng(void)
{
	volatile struct desc *t = desc_table(&rng);
	set_desc(t, 0, RNG_BUF, 64, D_WRITE | D_NEXT, 1);
	set_desc(t, 1, RNG_BUF, 64, D_WRITE | D_NEXT, 0);
	publish(&rng, 0);
	expect_needs_reset("rng-desc-loop", &rng);

	set_desc(t, 0, 0xfffffff000ull, 64, D_WRITE, 0);
	publish(&rng, 0);
	expect_needs_reset("rng-addr-past-memory", &rng);
}

void guest_main(unsigned long cpu, unsigned long arg)
{
	(void)cpu;
	(void)arg;
	serial_puts("hostile: start\n");
	uint32_t why = 0, seen = 0;
	bool found = find(&blk, 2) && find(&rng, 4);
	verdict("found", found, "virtio-blk or virtio-rng missing at", VIRTIO_BASE, 0);
	if (found) {
		bool up = dev_init(&blk) && dev_init(&rng);
		verdict("init", up, "device setup refused: status", rd(&blk, R_STATUS),
			rd(&rng, R_STATUS));
		if (up) {
			verdict("blk-read", blk_read(1, false, &why, &seen),
				"a good read failed: wait/seen", why, seen);
			verdict("blk-read-indirect", blk_read(5, true, &why, &seen),
				"a good indirect read failed: wait/seen", why, seen);
			verdict("rng-read", rng_read(&why, &seen), "a good rng read failed", why,
				seen);
			cases_blk();
			cases_rng();
		}
	}
	serial_puts("hostile: done ");
	serial_putdec(cases);
	serial_puts(" failed ");
	serial_putdec(failures);
	serial_puts("\n");
	outb(SLEEP_CTL, S5_POWER_OFF);
	for (;;)
		hlt();
}
