/* tests/guests/pvh32_fuzz.c - booted by the VMM: random accesses of random widths to every port and MMIO window of the board, random virtqueues; counts on ttyS0. */
#include "guest.h"
#include "board.h"
#include "serial.h"

/*
 * The host (tests/kvm/hostile_fuzz.c) boots this as the kernel of a real
 * Ember VM (PVH, 64 MiB, one vCPU) with every kind of virtio device: a
 * disk, rng, balloon, vsock, a NIC on a tap and the virtio console. The
 * guest, from a fixed seed:
 *   1. port I/O: reads and writes of 1, 2 and 4 bytes with random values,
 *      half to the board's ports (UART, i8042, RTC, pvpanic, PCI
 *      configuration, ACPI PM, the boot marker), half anywhere in 0..0xffff;
 *   2. MMIO: reads and writes of 1, 2 and 4 bytes with random values to the
 *      virtio-mmio windows (registers and configuration space), anywhere
 *      in the device region 0xd0000000-0xdfffffff, and to the ACPI Generic
 *      Event Device's registers (events, GPE acks, hotplug slots, eject);
 *   3. virtqueues: for each virtio device, rounds of: reset, random
 *      features, random queue sizes (mostly powers of two), a descriptor
 *      table (half the rounds plausible chains in the arena, the others
 *      hostile throughout), available ring and notifications of random
 *      content, and random interrupt acks.
 * Only what would end the run is held back: writes that power off, reset
 * or report a panic (ACPI SLP_EN, the reset registers, i8042 pulse
 * commands, pvpanic), and balloon inflations of the guest's own code (the
 * balloon's queues get only page lists of the arena and past RAM, see
 * PFNS). Device DMA is steered away from the guest's own
 * image and stack (below 16 MiB): descriptor and ring addresses are in the
 * arena at 16..48 MiB, beyond RAM, in MMIO, or random 64-bit values.
 * Then it sets the NIC up as a driver would and waits for a frame (the
 * test sends them into its tap), re-initialises the UART, prints
 *   "fuzz: done pio N mmio M vq K notify Q devices D ids I,J,... rx R"
 * (ids: the virtio device IDs found, in window order; R: the frames the
 * NIC's receive queue took then, 0 if none came)
 * and powers off (ACPI S5).
 */

#define VIRTIO_REGION 0x10000000u
#define MAX_DEVS      16u

#define ARENA	  0x1000000u /* 16 MiB */
#define ARENA_LEN 0x2000000u /* 32 MiB */
#define MEM_END	  0x4000000u /* 64 MiB */
/* The balloon's page numbers: what its inflate queue reads is a list of
 * pages to give up (and its reporting queue gives up the buffers
 * themselves), so the balloon's rings and buffers are only here: the
 * rings in its first 64 KiB, the buffers after them, filled once with
 * page numbers in the arena or past RAM. Nothing else the guest hands a
 * device points here (dma_addr stays out), so no other device's late
 * write lands on them. */
#define PFNS	   0x3000000u /* 48 MiB */
#define PFNS_RINGS 0x10000u
#define PFNS_LEN   0x100000u /* 1 MiB */
#define BALLOON_ID 5u

#ifndef FUZZ_PIO
#define FUZZ_PIO 40000u
#endif
#ifndef FUZZ_MMIO
#define FUZZ_MMIO 40000u
#endif
#ifndef FUZZ_ROUNDS
#define FUZZ_ROUNDS 60u /* virtqueue rounds per device */
#endif

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static unsigned n_pio, n_mmio, n_vq, n_notify;

static uint64_t rnd(void)
{
	uint64_t x = rng_state; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}
static uint32_t rnd32(void)
{
	return (uint32_t)(rnd() >> 32);
}
static uint32_t below(uint32_t n)
{
	return n ? rnd32() % n : 0;
}
static unsigned width(void)
{
	static const unsigned w[] = {1, 2, 4};
	return w[below(3)];
}

/* ---------------------------------------------------------------- ports */

/* The board's ports and windows (vmm/arch/x86/layout.h, devices.c). */
static const struct {
	uint16_t base, len;
} board_ports[] = {
    {0x3f8, 8}, /* COM1 */
    {0x60, 1},	/* i8042 data */
    {0x64, 1},	/* i8042 command */
    {0x70, 2},	/* RTC CMOS */
    {0x505, 1}, /* pvpanic */
    {0xcf8, 8}, /* PCI configuration mechanism #1, 0xcf9 reset */
    {0x600, 3}, /* ACPI sleep control/status, reset */
    {0x80, 1},	/* boot marker */
    {0x2f8, 8}, /* COM2 (absent: unclaimed) */
    {0x40, 4},	/* PIT (in-kernel) */
    {0x20, 2},	/* PIC (in-kernel) */
};

/* The byte of value v that lands on port p for an access of w bytes at
 * port at, or -1 when the access does not cover p. */
static int byte_at(uint16_t at, unsigned w, uint32_t v, uint16_t p)
{
	if (p < at || p >= at + w)
		return -1;
	return (int)((v >> (8 * (p - at))) & 0xff);
}

/* Would this write end the run? (power off, reset, panic) */
static bool ends_run(uint16_t port, unsigned w, uint32_t v)
{
	int b;
	if (byte_at(port, w, v, 0x505) >= 0) /* pvpanic */
		return true;
	if (byte_at(port, w, v, 0x602) >= 0) /* ACPI reset register */
		return true;
	if ((b = byte_at(port, w, v, 0x600)) >= 0 && (b & 0x20)) /* SLP_EN */
		return true;
	if ((b = byte_at(port, w, v, 0xcf9)) >= 0 && (b & 0x06)) /* reset cf9 */
		return true;
	if ((b = byte_at(port, w, v, 0x64)) >= 0 && b >= 0xd0) /* output port, pulses */
		return true;
	return false;
}

static void pio_one(uint16_t port)
{
	unsigned w = width();
	uint32_t v = rnd32();
	n_pio++;
	if (rnd32() & 1) {
		if (w == 1)
			(void)inb(port);
		else if (w == 2)
			(void)inw(port);
		else
			(void)inl(port);
		return;
	}
	if (ends_run(port, w, v))
		return;
	if (w == 1)
		outb(port, (uint8_t)v);
	else if (w == 2)
		outw(port, (uint16_t)v);
	else
		outl(port, v);
}

static void fuzz_pio(void)
{
	const unsigned nb = sizeof(board_ports) / sizeof(board_ports[0]);
	for (unsigned i = 0; i < FUZZ_PIO; i++) {
		uint16_t port;
		if (rnd32() & 1) {
			unsigned k = below(nb);
			port =
			    (uint16_t)(board_ports[k].base + below(board_ports[k].len + 3u) - 1u);
		} else {
			port = (uint16_t)rnd32();
		}
		pio_one(port);
	}
}

/* ---------------------------------------------------------------- MMIO */

/* An address for the device to use: mostly in the arena, else a hostile one. */
static uint64_t dma_addr(void)
{
	switch (below(8)) {
	case 0:
		return rnd(); /* anywhere in 64 bits */
	case 1:
		return MEM_END - below(64); /* straddles the end of RAM */
	case 2:
		return VIRTIO_BASE + below(VIRTIO_WIN); /* MMIO, not RAM */
	case 3:
		return 0xfffffffffffff000ull + below(0x1000); /* wraps */
	default:
		return ARENA + below(ARENA_LEN);
	}
}

static void mmio_write(uint32_t a, unsigned w, uint32_t v)
{
	if (w == 1)
		mmio_write8(a, (uint8_t)v);
	else if (w == 2)
		mmio_write16(a, (uint16_t)v);
	else
		mmio_write32(a, v);
}

static void mmio_one(uint32_t a)
{
	unsigned w = width();
	a &= ~(uint32_t)(w - 1) | (rnd32() & 7 ? 0 : 3); /* mostly aligned */
	n_mmio++;
	if (rnd32() & 1) {
		if (w == 1)
			(void)mmio_read8(a);
		else if (w == 2)
			(void)mmio_read16(a);
		else
			(void)mmio_read32(a);
		return;
	}
	uint32_t off = a & (VIRTIO_WIN - 1);
	uint32_t v = rnd32();
	if (off >= R_DESC_LO && off < R_USED_HI + 4) /* queue addresses: steered DMA */
		v = (off & 4) ? (uint32_t)(dma_addr() >> 32) : (uint32_t)dma_addr();
	mmio_write(a, w, v);
}

static unsigned ndevs;
static uint32_t devs[MAX_DEVS], dev_ids[MAX_DEVS];

static void find_devices(void)
{
	for (uint32_t k = 0; k < MAX_DEVS; k++) {
		uint32_t b = VIRTIO_BASE + k * VIRTIO_WIN;
		uint32_t id;
		if (mmio_read32(b + R_MAGIC) == 0x74726976 && (id = mmio_read32(b + R_DEVICE_ID))) {
			dev_ids[ndevs] = id;
			devs[ndevs++] = b;
		}
	}
}

static void fuzz_mmio(void)
{
	for (unsigned i = 0; i < FUZZ_MMIO; i++) {
		uint32_t a;
		if (ndevs && below(4) != 0)
			a = devs[below(ndevs)] + below(below(4) ? 0x100 : VIRTIO_WIN);
		else if (below(2))
			a = GED_BASE + below(0x40); /* its 16-byte window and past it */
		else
			a = VIRTIO_BASE + below(VIRTIO_REGION);
		mmio_one(a);
	}
}

/* ---------------------------------------------------------------- virtqueues */

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static void wr(uint32_t base, uint32_t off, uint32_t v)
{
	n_vq++;
	mmio_write32(base + off, v);
}
static uint32_t rd(uint32_t base, uint32_t off)
{
	n_vq++;
	return mmio_read32(base + off);
}

static uint32_t rand_len(void)
{
	switch (below(6)) {
	case 0:
		return rnd32(); /* anything, up to 4 GiB */
	case 1:
		return 0;
	default:
		return below(8192);
	}
}

/* Fills n random descriptors at table. In a plausible table (about half
 * the rounds) the descriptors are what a driver might post, so the devices
 * get past their first checks and parse requests: buffers in the arena of
 * sane lengths, short chains linked forward, a mix of readable and
 * writable parts, an indirect flag now and then; the rest are hostile
 * throughout. */
static void random_table(volatile struct desc *t, unsigned n, unsigned qsize, bool plausible)
{
	for (unsigned i = 0; i < n; i++) {
		if (plausible && below(16) != 0) {
			t[i].addr = ARENA + below(ARENA_LEN - 0x2000);
			t[i].len = below(8) ? 1 + below(2048) : rand_len();
			uint16_t f = (uint16_t)(below(2) ? 2 : 0); /* WRITE */
			if (i + 1 < n && below(3) == 0)
				f |= 1; /* NEXT */
			if (below(32) == 0)
				f |= 4; /* INDIRECT */
			t[i].flags = f;
			t[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
			continue;
		}
		t[i].addr = dma_addr();
		t[i].len = rand_len();
		t[i].flags = (uint16_t)(below(4) ? (rnd32() & 7) : rnd32());
		t[i].next = (uint16_t)(below(8) ? below(qsize ? qsize : 1) : rnd32());
	}
}

/* A queue size: mostly a power of two up to max (what the split ring
 * needs), sometimes anything up to max, sometimes any 16-bit value. */
static uint32_t queue_size(uint32_t max)
{
	unsigned k = below(8);
	if (k == 0)
		return rnd32() & 0xffff;
	if (k == 1)
		return 1 + below(max ? max : 1);
	unsigned bits = 0; /* the largest power of two up to max (at most 2^15) */
	while (bits < 15 && (2u << bits) <= max)
		bits++;
	return 1u << below(bits + 1);
}

/* Random bytes in some buffers of the arena (request headers, PFNs). */
static void scribble_arena(void)
{
	for (unsigned i = 0; i < 64; i++) {
		volatile uint32_t *p =
		    (volatile uint32_t *)(uintptr_t)((ARENA + below(ARENA_LEN)) & ~3u);
		*p = below(4) ? below(16) : rnd32(); /* small values: valid types, ids */
	}
}

/* A balloon queue: its table's buffers moved into
 * the page-number region, no indirect tables (their contents would be
 * taken as descriptors), lengths up to the region's end or a little past. */
static void balloon_table(volatile struct desc *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint32_t off = (PFNS_RINGS + below(PFNS_LEN - PFNS_RINGS)) & ~3u;
		t[i].addr = PFNS + off;
		t[i].len = below(4) ? below(PFNS_LEN - off + 1) : below(0x2000);
		t[i].flags = (uint16_t)(t[i].flags & 3); /* NEXT, WRITE */
	}
}

static void fill_pfns(void)
{
	volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)(PFNS + PFNS_RINGS);
	for (unsigned i = 0; i < (PFNS_LEN - PFNS_RINGS) / 4; i++)
		p[i] = below(4) ? (ARENA + below(ARENA_LEN)) >> 12 /* the arena's pages */
				: (MEM_END >> 12) +
				      (below(2) ? below(64) : rnd32() >> 12); /* past RAM */
}

static void vq_round(uint32_t b, uint32_t id)
{
	wr(b, R_STATUS, 0);
	wr(b, R_STATUS, 1);
	wr(b, R_STATUS, 1 | 2);
	for (uint32_t sel = 0; sel < 2; sel++) {
		wr(b, R_DEV_FEAT_SEL, sel);
		uint32_t f = rd(b, R_DEV_FEAT);
		wr(b, R_DRV_FEAT_SEL, sel);
		/* mostly a subset of what is offered (VERSION_1 kept), sometimes anything */
		uint32_t want = below(4) ? (f & rnd32()) | (sel ? 1u : 0) : rnd32();
		wr(b, R_DRV_FEAT, want);
	}
	wr(b, R_STATUS, 1 | 2 | 8);
	unsigned nq = 1 + below(4);
	bool plausible = below(2);
	uint32_t slot = ARENA + below(ARENA_LEN / 0x10000) * 0x10000; /* 64 KiB per round */
	uint64_t avail_at[4] = {0}; /* each queue's available ring, as given to the device */
	for (unsigned q = 0; q < nq; q++) {
		uint32_t sel = below(8) ? q : rnd32();
		wr(b, R_QUEUE_SEL, sel);
		uint32_t max = rd(b, R_QUEUE_MAX);
		uint32_t num = queue_size(max);
		wr(b, R_QUEUE_NUM, num);
		/* the balloon's queues: in PFNS, whole */
		bool pages = id == BALLOON_ID;
		uint32_t dt = pages ? PFNS + (sel & 3) * 0x4000 : slot + q * 0x4000,
			 av = dt + 0x2000, us = dt + 0x3000;
		if (dt + 0x4000 > ARENA + ARENA_LEN && !pages)
			dt = av = us = ARENA;
		uint64_t d = below(8) || pages ? dt : dma_addr(), a = below(8) ? av : dma_addr(),
			 u = below(8) ? us : dma_addr();
		wr(b, R_DESC_LO, (uint32_t)d);
		wr(b, R_DESC_HI, (uint32_t)(d >> 32));
		avail_at[q] = a;
		wr(b, R_AVAIL_LO, (uint32_t)a);
		wr(b, R_AVAIL_HI, (uint32_t)(a >> 32));
		wr(b, R_USED_LO, (uint32_t)u);
		wr(b, R_USED_HI, (uint32_t)(u >> 32));
		unsigned qs = num && num <= 256 ? num : 16;
		random_table((volatile struct desc *)(uintptr_t)dt, qs, qs, plausible);
		if (pages) /* every entry the device may read (up to queue_max) */
			balloon_table((volatile struct desc *)(uintptr_t)dt, 256);
		volatile uint16_t *ring = (volatile uint16_t *)(uintptr_t)av;
		ring[0] = (uint16_t)(below(4) ? 0 : rnd32()); /* flags */
		for (unsigned i = 0; i < qs; i++)
			ring[2 + i] = (uint16_t)(below(8) ? below(qs) : rnd32());
		ring[1] = (uint16_t)(below(4) ? 1 + below(qs) : rnd32()); /* idx */
		wr(b, R_QUEUE_READY, below(8) ? 1 : rnd32());
	}
	wr(b, R_STATUS, below(8) ? (1 | 2 | 4 | 8) : rnd32() & 0xff);
	scribble_arena();
	for (unsigned k = 0; k < 4; k++) {
		n_notify++;
		wr(b, R_NOTIFY, below(8) ? below(nq) : rnd32());
		/* more buffers on a random queue, as a driver refills: its
		 * available ring's index moves, where that ring is the guest's
		 * own scratch memory (the arena, or the balloon's rings in
		 * PFNS), not a hostile address */
		uint64_t at = avail_at[below(nq)];
		bool ours = (at >= ARENA && at + 4 <= ARENA + ARENA_LEN) ||
			    (at >= PFNS && at + 4 <= PFNS + PFNS_RINGS);
		if (ours) {
			volatile uint16_t *ring = (volatile uint16_t *)(uintptr_t)at;
			ring[1] = (uint16_t)(ring[1] + 1 + below(4));
		}
		for (unsigned s = 0; s < 20; s++)
			pause();
		uint32_t is = rd(b, R_INT_STATUS);
		wr(b, R_INT_ACK, below(4) ? is : rnd32());
	}
	if (below(4) == 0) /* a configuration-space access or two */
		(void)rd(b, 0x100 + (below(64) & ~3u));
}

static void fuzz_virtqueues(void)
{
	for (unsigned r = 0; r < FUZZ_ROUNDS; r++)
		for (unsigned k = 0; k < ndevs; k++)
			vq_round(devs[k], dev_ids[k]);
	for (unsigned k = 0; k < ndevs; k++)
		mmio_write32(devs[k] + R_STATUS, 0); /* leave them reset */
}

/* After the attack, the NIC driven as a driver would: VERSION_1 only, its
 * receive queue given 8 buffers of 2 KiB (each holds a header and a whole
 * frame), at the arena's end. The test keeps sending frames into the tap,
 * so they must land there: the card recovered from the rounds before (its
 * reset, a new setup). Returns the used ring's index once it moved (an
 * MMIO read paces each look), 0 if no frame came in about 100000 looks. */
static unsigned nic_receive(void)
{
	uint32_t b = 0;
	for (unsigned k = 0; k < ndevs; k++)
		if (dev_ids[k] == 1)
			b = devs[k];
	if (!b)
		return 0;
	const uint32_t base = ARENA + ARENA_LEN - 0x10000, av = base + 0x1000, us = base + 0x2000;
	volatile struct desc *t = (volatile struct desc *)(uintptr_t)base;
	volatile uint16_t *avail = (volatile uint16_t *)(uintptr_t)av;
	volatile uint16_t *used = (volatile uint16_t *)(uintptr_t)us;
	wr(b, R_STATUS, 0);
	wr(b, R_STATUS, 1);
	wr(b, R_STATUS, 1 | 2);
	wr(b, R_DRV_FEAT_SEL, 1);
	wr(b, R_DRV_FEAT, 1); /* VERSION_1 */
	wr(b, R_DRV_FEAT_SEL, 0);
	wr(b, R_DRV_FEAT, 0);
	wr(b, R_STATUS, 1 | 2 | 8);
	if (!(rd(b, R_STATUS) & 8))
		return 0;
	for (unsigned i = 0; i < 8; i++) {
		t[i].addr = base + 0x4000 + i * 0x800;
		t[i].len = 0x800;
		t[i].flags = 2; /* WRITE */
		t[i].next = 0;
		avail[2 + i] = (uint16_t)i;
	}
	for (unsigned i = 0; i < 2 + 8 * 4 + 1; i++)
		used[i] = 0;
	avail[0] = 0;
	avail[1] = 8;
	wr(b, R_QUEUE_SEL, 0);
	wr(b, R_QUEUE_NUM, 8);
	wr(b, R_DESC_LO, base);
	wr(b, R_DESC_HI, 0);
	wr(b, R_AVAIL_LO, av);
	wr(b, R_AVAIL_HI, 0);
	wr(b, R_USED_LO, us);
	wr(b, R_USED_HI, 0);
	wr(b, R_QUEUE_READY, 1);
	wr(b, R_STATUS, 1 | 2 | 4 | 8);
	wr(b, R_NOTIFY, 0);
	unsigned got = 0;
	for (unsigned i = 0; i < 100000 && !got; i++) {
		got = used[1];
		(void)rd(b, R_INT_STATUS);
	}
	wr(b, R_STATUS, 0);
	return got;
}

/* ---------------------------------------------------------------- main */

/* The UART back to 8N1, no loopback, no interrupts, after random writes. */
static void serial_reinit(void)
{
	outb(0x3f8 + 3, 0x80); /* DLAB */
	outb(0x3f8 + 0, 1);
	outb(0x3f8 + 1, 0);
	outb(0x3f8 + 3, 0x03);
	outb(0x3f8 + 1, 0x00);
	outb(0x3f8 + 2, 0x07); /* FIFOs on, cleared */
	outb(0x3f8 + 4, 0x03);
}

void guest_main(unsigned long cpu, unsigned long arg)
{
	(void)cpu;
	(void)arg;
	cli();
	serial_puts("fuzz: start\n");
	find_devices();
	fill_pfns();
	fuzz_pio();
	serial_reinit();
	serial_puts("fuzz: ports done\n");
	fuzz_mmio();
	serial_reinit();
	serial_puts("fuzz: mmio done\n");
	fuzz_virtqueues();
	unsigned rx = nic_receive();
	serial_reinit();
	serial_puts("fuzz: done pio ");
	serial_putdec(n_pio);
	serial_puts(" mmio ");
	serial_putdec(n_mmio);
	serial_puts(" vq ");
	serial_putdec(n_vq);
	serial_puts(" notify ");
	serial_putdec(n_notify);
	serial_puts(" devices ");
	serial_putdec(ndevs);
	serial_puts(" ids");
	for (unsigned k = 0; k < ndevs; k++) {
		serial_puts(k ? "," : " ");
		serial_putdec(dev_ids[k]);
	}
	serial_puts(" rx ");
	serial_putdec(rx);
	serial_puts("\n");
	outb(SLEEP_CTL, S5_POWER_OFF);
	for (;;)
		hlt();
}
