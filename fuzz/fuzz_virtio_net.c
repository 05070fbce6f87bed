/* fuzz/fuzz_virtio_net.c - libFuzzer target: a guest's memory holding virtio-net transmit and receive rings; the device serves them against a socketpair. */
#include "fuzz_common.h"
#include "../tests/unit/virtio_mmio_access.h"
#include "../devices/virtio/net.h"

#include <errno.h>
#include <stdbool.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the queue size (1 << (b % 5): 1..16), byte 1 the ring
 * features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC), bytes 2-5 the low 32
 * device feature bits the driver accepts (masked by what is offered),
 * bytes 6-7 the lengths of two frames the host side has queued for the
 * guest (taken from the input's tail); the rest is the first bytes of
 * 64 KiB of guest RAM: receive queue descriptors at 0, available ring at
 * 0x400, used ring at 0x600; transmit queue at 0x800, 0xc00, 0xe00;
 * buffers anywhere (fuzz/run.sh gives inputs up to 8 KiB). Invariants: every transmit chain taken is answered
 * with length 0 (or the device is DEVICE_NEEDS_RESET), but one held while
 * the device's end (a 4 KiB send buffer) is full and the watch is on, no receive used
 * length exceeds 12 + 65562, a frame that reaches the host is at least a
 * header and an Ethernet header long, and its header passes
 * virtio_net_tx_check under the negotiated features.
 */
#define MEM (64u << 10)

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct tdrv_mmio m; /* the window at 0 on bus */
	struct virtio_net *net;
	struct virtio_mmio *t;
	int host;
	bool tx_watch; /* the device waits for the fd to be writable */
};

static void on_tx_watch(void *opaque, bool on)
{
	((struct rig *)opaque)->tx_watch = on;
}

static struct rig *rig(void)
{
	static struct rig r;
	static int ready;
	if (ready)
		return &r;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	r.host = sv[1];
	int small = 4096; /* a few frames fill it: transmit back-pressure */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	if (vmm_mem_create(&r.mem, MEM, MEM, MEM, EMBER_MEM_ANON, false, NULL) < 0 ||
	    bus_create("mmio", UINT64_MAX, &r.bus) < 0)
		abort();
	struct virtio_mmio_config cfg = {.mem = &r.mem};
	/* with transmit back-pressure (a full fd holds a chain) and an MTU */
	struct virtio_net_options o = {.fd = sv[0],
				       .mac = {0x52, 0x54, 0, 1, 2, 3},
				       .tx_watch = on_tx_watch,
				       .opaque = &r,
				       .mtu = 9000};
	if (virtio_net_create(cfg, &o, &r.net, &r.t) < 0 ||
	    dev_register(r.bus, 0, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r.t)) < 0)
		abort();
	r.m = (struct tdrv_mmio){.bus = r.bus};
	ready = 1;
	return &r;
}

static void queue(struct rig *r, unsigned q, uint16_t size, uint64_t base)
{
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_SEL, q);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NUM, size);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)base);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)base + 0x400);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)base + 0x600);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Every frame that reached the host: long enough, its header valid under
 * the negotiated features. */
static void host_check(struct rig *r, uint64_t negotiated)
{
	static uint8_t out[VIRTIO_NET_HDR_BYTES + VIRTIO_NET_MAX_FRAME];
	ssize_t n;
	while ((n = recv(r->host, out, sizeof(out), MSG_DONTWAIT)) >= 0) {
		FUZZ_CHECK((size_t)n >= VIRTIO_NET_HDR_BYTES + VIRTIO_NET_MIN_FRAME);
		struct virtio_net_hdr_v1 h;
		memcpy(&h, out, sizeof(h));
		FUZZ_CHECK(
		    virtio_net_tx_check(&h, negotiated, (uint64_t)n - VIRTIO_NET_HDR_BYTES) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	struct rig *r = rig();
	uint16_t qsize = (uint16_t)(1u << (data[0] % 5));
	uint32_t dev_features;
	memcpy(&dev_features, data + 2, 4);
	uint64_t features = (1ull << VIRTIO_F_VERSION_1) | dev_features |
			    ((data[1] & 1) ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
			    ((data[1] & 2) ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0);
	memset(r->mem.host, 0, MEM);
	memcpy(r->mem.host, data + 8, size - 8 < MEM ? size - 8 : MEM);
	/* the host's frames for the guest: from the input's tail */
	for (int i = 0; i < 2; i++) {
		size_t len = (size_t)data[6 + i] * 8;
		if (len && len <= size)
			send(r->host, data + size - len, len, MSG_DONTWAIT);
	}
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, 0);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	tdrv_wr(&r->m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	features &= ((uint64_t)tdrv_rd(&r->m, VIRTIO_MMIO_DEVICE_FEATURES) | ~0xffffffffull);
	tdrv_accept(&r->m, features);
	queue(r, VIRTIO_NET_RXQ, qsize, 0);
	queue(r, VIRTIO_NET_TXQ, qsize, 0x800);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		    VIRTIO_CONFIG_S_DRIVER_OK);
	FUZZ_CHECK(tdrv_rd(&r->m, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ); /* served at once (no notify) */
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
	virtio_net_backend_ready(r->net, false);

	uint64_t negotiated = virtio_mmio_features(r->t);
	/* what reached the host; a chain held while the fd was full goes once
	 * the host has read (a few rounds) */
	for (int round = 0;; round++) {
		host_check(r, negotiated);
		if (!r->tx_watch || round == 4)
			break;
		virtio_net_tx_ready(r->net, false);
	}

	virtio_mmio_lock(r->t);
	struct virtq *tx = virtio_mmio_queue(r->t, VIRTIO_NET_TXQ);
	struct virtq *rx = virtio_mmio_queue(r->t, VIRTIO_NET_RXQ);
	uint64_t tx_popped = tx->popped, tx_pushed = tx->pushed;
	uint64_t rx_popped = rx->popped, rx_pushed = rx->pushed;
	uint16_t rx_used = rx->used_idx;
	virtio_mmio_unlock(r->t);
	FUZZ_CHECK(tx_popped == tx_pushed + (r->tx_watch ? 1 : 0)); /* at most one held */
	FUZZ_CHECK(rx_pushed <= rx_popped);
	/* A receive buffer may be placed over the used ring itself (the guest
	 * owns its memory): then the lengths there are packet bytes, not the
	 * device's, and only an honest layout is checked. */
	bool honest = true;
	for (uint16_t i = 0; i < qsize; i++) {
		struct vring_desc d;
		memcpy(&d, r->mem.host + 16u * i, sizeof(d));
		uint64_t end = d.addr + d.len;
		if ((d.flags & VRING_DESC_F_INDIRECT) ||
		    (d.addr < 0x600 + 8 + 8u * qsize && end > 0x600) || end < d.addr)
			honest = false;
	}
	for (uint16_t i = 0; honest && i < rx_used && i < qsize; i++) {
		uint32_t len;
		memcpy(&len, r->mem.host + 0x600 + 8 + 8u * i, 4);
		FUZZ_CHECK(len <= VIRTIO_NET_HDR_BYTES + VIRTIO_NET_MAX_FRAME);
	}
	/* frames the guest did not take: gone before the next input (a held
	 * chain goes with the reset that starts it) */
	static uint8_t out[VIRTIO_NET_HDR_BYTES + VIRTIO_NET_MAX_FRAME];
	int dfd = virtio_net_fd(r->net);
	while (recv(dfd, out, sizeof(out), MSG_DONTWAIT) >= 0)
		;
	return 0;
}
