/* fuzz/fuzz_virtio_console.c - libFuzzer target: a guest's memory holding virtio-console receive and transmit rings; the device serves them against a host with a small buffer. */
#include "fuzz_vq.h"
#include "../tests/unit/virtio_mmio_access.h"
#include "../devices/virtio/console.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the queue size (1 << (b % 5): 1..16), byte 1 the ring
 * features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC), bit 2 accepts
 * VIRTIO_CONSOLE_F_SIZE (offered: the host has an 80 x 25 terminal), bit 3
 * has the host resize it; byte 2 is how many bytes the host takes per tx()
 * call for the first rounds (0: none, the device must wait), byte 3 the
 * length of the host's input for the guest (8 * b bytes from the input's
 * tail); the rest is the first bytes of 64 KiB of guest RAM: receive queue
 * descriptors at 0, available ring at 0x400, used ring at 0x600; transmit
 * queue at 0x800, 0xc00, 0xe00; buffers anywhere. The transmit queue is
 * notified, then the receive queue, the host pushes its input, then says
 * it has room (tx_ready) a few times, the last with room for everything.
 * The target links with vq_pop/vq_push wrapped (fuzz_vq.h). Invariants:
 * each answer is a chain the device took, never longer than its writable
 * buffers; the transmit queue answers every chain (popped == pushed; one
 * may stay held if the device stopped, DEVICE_NEEDS_RESET); what the host is given lies in
 * the readable buffers of a transmit chain taken, and in the end adds up
 * to exactly their readable bytes (nothing lost, nothing made up; less
 * for a chain still held); every
 * receive chain is answered and the bytes placed are what rx_push says it
 * took, no more than offered; a refused chain is answered with 0; the
 * device changed guest memory only in the receive chains' writable buffers
 * and the used rings.
 */
#define MEM	(64u << 10)
#define RX_USED 0x600
#define TX_USED 0xe00

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct tdrv_mmio m; /* the window at 0 on bus */
	struct virtio_console *con;
	struct virtio_mmio *t;
	size_t room;	/* bytes the host takes per tx() call */
	uint64_t out;	/* bytes the host took */
	uint64_t calls; /* tx() calls */
	uint8_t before[MEM];
};

static struct rig r;

/* The host's output: what it is shown must be in a transmit chain's readable buffers. */
static size_t host_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct rig *rp = opaque;
	FUZZ_CHECK(len >= 1);
	rp->calls++;
	struct virtq *tx = virtio_mmio_queue(rp->t, VIRTIO_CONSOLE_Q_TX);
	bool inside = fuzz_vq.overflow;
	for (unsigned i = 0; i < fuzz_vq.n && !inside; i++) {
		const struct fuzz_vq_chain *c = &fuzz_vq.c[i];
		if (c->q != tx || c->answered || c->error)
			continue;
		for (unsigned j = 0; j < c->nreadable && !inside; j++)
			inside =
			    buf >= c->bufs[j].host && buf + len <= c->bufs[j].host + c->bufs[j].len;
	}
	FUZZ_CHECK(inside);
	size_t n = len < rp->room ? len : rp->room;
	rp->out += n;
	return n;
}

static struct rig *rig(void)
{
	static int ready;
	if (ready)
		return &r;
	fuzz_vq_mem_bus(&r.mem, &r.bus, MEM);
	struct virtio_mmio_config cfg = {.mem = &r.mem};
	struct virtio_console_host host = {.tx = host_tx, .opaque = &r, .cols = 80, .rows = 25};
	if (virtio_console_create(cfg, &host, &r.con, &r.t) < 0)
		abort();
	fuzz_vq_window(r.bus, r.t, &r.m);
	ready = 1;
	return &r;
}

/* Sums of the chains taken from q: readable bytes of the good ones, used lengths. */
static void sums(const struct virtq *q, uint64_t *readable, uint64_t *written)
{
	*readable = *written = 0;
	for (unsigned i = 0; i < fuzz_vq.n; i++) {
		const struct fuzz_vq_chain *c = &fuzz_vq.c[i];
		if (c->q != q)
			continue;
		if (!c->error)
			*readable += c->readable_len;
		*written += c->written;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	struct rig *rp = rig();
	uint16_t qsize = (uint16_t)(1u << (data[0] % 5));
	uint64_t features =
	    fuzz_vq_ring_features(data[1]) | ((data[1] & 4) ? 1ull << VIRTIO_CONSOLE_F_SIZE : 0);
	tdrv_wr(&rp->m, VIRTIO_MMIO_STATUS, 0);
	fuzz_vq_reset();
	rp->room = data[2];
	rp->out = rp->calls = 0;
	memset(rp->mem.host, 0, MEM);
	memcpy(rp->mem.host, data + 4, size - 4 < MEM ? size - 4 : MEM);
	memset(rp->mem.host + RX_USED, 0, 4); /* fresh used rings */
	memset(rp->mem.host + TX_USED, 0, 4);
	memcpy(rp->before, rp->mem.host, MEM);
	struct virtio_console_stats st0, st;
	virtio_console_get_stats(rp->con, &st0);
	tdrv_wr(&rp->m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	tdrv_accept(&rp->m, features);
	FUZZ_CHECK(tdrv_rd(&rp->m, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	fuzz_vq_queue(&rp->m, VIRTIO_CONSOLE_Q_RX, qsize, 0, 0x400, 0x600);
	fuzz_vq_queue(&rp->m, VIRTIO_CONSOLE_Q_TX, qsize, 0x800, 0xc00, 0xe00);
	tdrv_wr(&rp->m, VIRTIO_MMIO_STATUS,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		    VIRTIO_CONFIG_S_DRIVER_OK);
	if (data[1] & 8)
		FUZZ_CHECK(virtio_console_set_size(rp->con, 132, 43) == 0);
	/* served at once (no notify callback) */
	tdrv_wr(&rp->m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_Q_TX);
	tdrv_wr(&rp->m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_Q_RX);
	/* the host's input for the guest: from the input's tail */
	size_t in_len = (size_t)data[3] * 8;
	if (in_len > size)
		in_len = size;
	size_t took = virtio_console_rx_push(rp->con, data + size - in_len, in_len);
	FUZZ_CHECK(took <= in_len);
	/* the host drains its buffer: room again, a few times, then for all of it */
	for (int round = 0; round < 4; round++) {
		if (round == 3)
			rp->room = SIZE_MAX;
		virtio_console_tx_ready(rp->con);
	}

	virtio_console_get_stats(rp->con, &st);
	virtio_mmio_lock(rp->t);
	struct virtq *rx = virtio_mmio_queue(rp->t, VIRTIO_CONSOLE_Q_RX);
	struct virtq *tx = virtio_mmio_queue(rp->t, VIRTIO_CONSOLE_Q_TX);
	uint64_t rx_popped = rx->popped, rx_pushed = rx->pushed;
	uint64_t tx_popped = tx->popped, tx_pushed = tx->pushed;
	uint16_t rx_used = rx->used_idx, tx_used = tx->used_idx;
	virtio_mmio_unlock(rp->t);
	FUZZ_CHECK(rx_popped == rx_pushed);
	/* the host had room for all in the end, but a device that needs a
	 * reset stops serving: its chain held for the host stays so */
	bool stopped = tdrv_rd(&rp->m, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET;
	FUZZ_CHECK(tx_popped == tx_pushed || (stopped && tx_popped == tx_pushed + 1));
	FUZZ_CHECK(rx_used == (uint16_t)rx_pushed && tx_used == (uint16_t)tx_pushed);
	const uint64_t used[] = {RX_USED, TX_USED};
	for (unsigned i = 0; i < 2; i++)
		if (!fuzz_vq_clobbered(used[i] + 2, 2)) {
			uint16_t ring_idx;
			memcpy(&ring_idx, rp->mem.host + used[i] + 2, 2);
			FUZZ_CHECK(ring_idx == (uint16_t)(i ? tx_pushed : rx_pushed));
		}
	FUZZ_CHECK(st.bytes_out - st0.bytes_out == rp->out);
	FUZZ_CHECK(st.bytes_in - st0.bytes_in == took);
	if (!fuzz_vq.overflow) {
		FUZZ_CHECK(fuzz_vq_unanswered(rx) == 0);
		FUZZ_CHECK(fuzz_vq_unanswered(tx) == tx_popped - tx_pushed);
		uint64_t readable, written;
		sums(tx, &readable, &written);
		FUZZ_CHECK(written == 0);
		/* every byte the chains held, once (but what the held one still has) */
		FUZZ_CHECK(tx_popped == tx_pushed ? rp->out == readable : rp->out < readable);
		sums(rx, &readable, &written);
		FUZZ_CHECK(written == took);
		for (unsigned i = 0; i < fuzz_vq.n; i++)
			FUZZ_CHECK(!fuzz_vq.c[i].error || fuzz_vq.c[i].written == 0);
	}
	fuzz_vq_check_writes(rp->mem.host, rp->before, MEM, used, 2, qsize);
	return 0;
}
