/* tests/unit/virtio_net.c - virtio-net driven through virtio-mmio like Linux's virtio_net: on a socketpair, and on a real tap in a private network namespace. */
#include "virtio_driver.h"
#include "vmm_fixtures.h"
#include "state_util.h"
#include "../../devices/virtio/net.h"
#include "../../devices/virtio/ratelimit.h"
#include "../../vmm/config.h"
#include "../../vmm/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MEM_SIZE  (2u << 20)
#define BASE	  0xd0000000ull
#define QSZ	  64
#define RX_DESC	  0x1000
#define RX_AVAIL  0x2000
#define RX_USED	  0x3000
#define TX_DESC	  0x4000
#define TX_AVAIL  0x5000
#define TX_USED	  0x6000
#define TX_HDR	  0x8000
#define TX_DATA	  0x10000
#define RX_BUF	  0x40000
#define RX_BUFLEN 0x4000
#define ETYPE	  0x88b5 /* IEEE local experimental */

#define F(x) (1ull << VIRTIO_NET_F_##x)

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct virtio_net *net;
	struct virtio_mmio *t;
	struct tdrv_mmio m;
	struct tdrv_queue rx, tx;
	int host; /* the other end of the frames */
	uint16_t rx_used, tx_used;
	int watch; /* the last rx_watch: -1 never called, 0 off, 1 on */
	int watches;
	int txwatch; /* the last tx_watch: -1 never called, 0 off, 1 on */
	uint16_t mtu;
	unsigned requeues;
	uint64_t offered;
};

static void on_watch(void *opaque, bool on)
{
	struct rig *r = opaque;
	r->watch = on;
	r->watches++;
}
static void on_tx_watch(void *opaque, bool on)
{
	struct rig *r = opaque;
	r->txwatch = on;
}
static void on_requeue(void *opaque, unsigned q)
{
	struct rig *r = opaque;
	(void)q;
	r->requeues++;
}

static const uint8_t MAC[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};

/* The device on fd (a socketpair end, or a tap), negotiated with features. */
static void rig_start(struct rig *r, int fd, uint64_t features)
{
	REQUIRE_OK(
	    vmm_mem_create(&r->mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	struct virtio_mmio_config cfg = {.mem = &r->mem};
	struct virtio_net_options o = {.fd = fd,
				       .rx_watch = on_watch,
				       .tx_watch = on_tx_watch,
				       .requeue = on_requeue,
				       .opaque = r,
				       .mtu = r->mtu};
	memcpy(o.mac, MAC, 6);
	r->watch = r->txwatch = -1;
	REQUIRE_OK(virtio_net_create(cfg, &o, &r->net, &r->t));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->m = (struct tdrv_mmio){.bus = r->bus, .base = BASE};
	r->rx = (struct tdrv_queue){
	    .mem = &r->mem, .size = QSZ, .desc = RX_DESC, .avail = RX_AVAIL, .used = RX_USED};
	r->tx = (struct tdrv_queue){
	    .mem = &r->mem, .size = QSZ, .desc = TX_DESC, .avail = TX_AVAIL, .used = TX_USED};
	r->offered = tdrv_probe(&r->m, VIRTIO_ID_NET, (1ull << VIRTIO_F_VERSION_1) | features);
	tdrv_setup_queue(&r->m, VIRTIO_NET_RXQ, &r->rx);
	tdrv_setup_queue(&r->m, VIRTIO_NET_TXQ, &r->tx);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
	CHECK_EQ(tdrv_rd(&r->m, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
}

/* On a socketpair; mtu for VIRTIO_NET_F_MTU (0: none), sndbuf the device
 * end's send buffer (0: the default). */
static void rig_init_with(struct rig *r, uint64_t features, uint16_t mtu, int sndbuf)
{
	memset(r, 0, sizeof(*r));
	int sv[2];
	REQUIRE_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	int big = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (sndbuf)
		REQUIRE_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)));
	r->host = sv[1];
	r->mtu = mtu;
	rig_start(r, sv[0], features);
}

static void rig_init(struct rig *r, uint64_t features)
{
	rig_init_with(r, features, 0, 0);
}

static void rig_fini(struct rig *r)
{
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_net_destroy(r->net); /* closes the device's end */
	close(r->host);
	vmm_mem_destroy(&r->mem);
}

/* Sends one frame: the header in one descriptor, the frame in another. */
static void tx_send(struct rig *r, const struct virtio_net_hdr_v1 *h, const void *frame,
		    uint32_t len)
{
	REQUIRE_OK(vmm_mem_write(&r->mem, TX_HDR, h, sizeof(*h)));
	REQUIRE_OK(vmm_mem_write(&r->mem, TX_DATA, frame, len));
	tdrv_desc(&r->tx, TX_DESC, 0, TX_HDR, sizeof(*h), VRING_DESC_F_NEXT, 1);
	tdrv_desc(&r->tx, TX_DESC, 1, TX_DATA, len, 0, 0);
	tdrv_publish(&r->tx, 0);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
}

/* Posts n receive buffers of len bytes (descriptors first..first+n-1). */
static void rx_post(struct rig *r, unsigned first, unsigned n, uint32_t len)
{
	for (unsigned i = first; i < first + n; i++) {
		tdrv_desc(&r->rx, RX_DESC, i % QSZ, RX_BUF + (uint64_t)(i % QSZ) * RX_BUFLEN, len,
			  VRING_DESC_F_WRITE, 0);
		tdrv_publish(&r->rx, (uint16_t)(i % QSZ));
	}
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
}

static uint16_t used_idx(struct rig *r, const struct tdrv_queue *q)
{
	return tdrv_rd16(&r->mem, q->used + 2);
}
static void used_entry(struct rig *r, const struct tdrv_queue *q, uint16_t i, uint32_t *id,
		       uint32_t *len)
{
	*id = tdrv_rd32(&r->mem, q->used + 4 + 8ull * (i % q->size));
	*len = tdrv_rd32(&r->mem, q->used + 8 + 8ull * (i % q->size));
}

static void frame_fill(uint8_t *f, uint32_t len, uint8_t seed)
{
	memset(f, 0xff, 6); /* broadcast */
	memcpy(f + 6, MAC, 6);
	f[12] = ETYPE >> 8;
	f[13] = ETYPE & 0xff;
	for (uint32_t i = 14; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seed);
}

static struct virtio_net_stats stats(struct rig *r)
{
	struct virtio_net_stats s;
	virtio_net_get_stats(r->net, &s);
	return s;
}

TEST(virtio_net_features_and_config_space)
{
	struct rig r;
	rig_init(&r, F(MAC) | F(STATUS) | F(CSUM) | F(GUEST_CSUM) | F(MRG_RXBUF));
	uint64_t want = F(CSUM) | F(GUEST_CSUM) | F(MAC) | F(STATUS) | F(MRG_RXBUF) | F(HOST_TSO4) |
			F(HOST_TSO6) | F(HOST_ECN) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_ECN) |
			(1ull << VIRTIO_F_VERSION_1);
	CHECK_EQ(r.offered & want, want);
	CHECK(!(r.offered & F(CTRL_VQ)));
	CHECK(!(r.offered & F(GUEST_UFO)));
	uint8_t mac[6];
	for (unsigned i = 0; i < 6; i++) {
		uint64_t v = 0;
		bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG + i, &v, 1, false, 0);
		mac[i] = (uint8_t)v;
	}
	CHECK(memcmp(mac, MAC, 6) == 0);
	uint64_t st = 0;
	bus_access_u64(r.bus,
		       BASE + VIRTIO_MMIO_CONFIG + offsetof(struct virtio_net_config, status), &st,
		       2, false, 0);
	CHECK_EQ(st, VIRTIO_NET_S_LINK_UP);
	struct virtio_net_stats s = stats(&r);
	CHECK_EQ(s.features & want, (1ull << VIRTIO_F_VERSION_1) | F(MAC) | F(STATUS) | F(CSUM) |
					F(GUEST_CSUM) | F(MRG_RXBUF));
	/* a multicast MAC or no fd is refused */
	struct virtio_net *n;
	struct virtio_mmio *t;
	struct virtio_net_options o = {.fd = r.host};
	o.mac[0] = 1;
	CHECK_ERR(virtio_net_create((struct virtio_mmio_config){.mem = &r.mem}, &o, &n, &t),
		  -EINVAL);
	o.mac[0] = 2;
	o.fd = -1;
	CHECK_ERR(virtio_net_create((struct virtio_mmio_config){.mem = &r.mem}, &o, &n, &t),
		  -EINVAL);
	rig_fini(&r);
}

TEST(virtio_net_transmit_reaches_the_fd_with_its_header)
{
	struct rig r;
	rig_init(&r, F(CSUM) | F(HOST_TSO4));
	uint8_t frame[1000];
	frame_fill(frame, sizeof(frame), 1);
	struct virtio_net_hdr_v1 h = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .csum_start = 34,
				      .csum_offset = 16,
				      .num_buffers = 77};
	tx_send(&r, &h, frame, sizeof(frame));
	CHECK_EQ(used_idx(&r, &r.tx), 1);
	uint32_t id, len;
	used_entry(&r, &r.tx, 0, &id, &len);
	CHECK_EQ(id, 0);
	CHECK_EQ(len, 0);
	uint8_t got[2000];
	ssize_t n = recv(r.host, got, sizeof(got), MSG_DONTWAIT);
	REQUIRE_EQ(n, (ssize_t)(12 + sizeof(frame)));
	struct virtio_net_hdr_v1 gh;
	memcpy(&gh, got, 12);
	CHECK_EQ(gh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	CHECK_EQ(gh.csum_start, 34);
	CHECK_EQ(gh.csum_offset, 16);
	CHECK_EQ(gh.num_buffers, 0); /* unused on transmit: cleared */
	CHECK(memcmp(got + 12, frame, sizeof(frame)) == 0);
	/* a TSO frame, negotiated */
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				       .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				       .hdr_len = 54,
				       .gso_size = 1448,
				       .csum_start = 34,
				       .csum_offset = 16};
	tx_send(&r, &h, frame, sizeof(frame));
	CHECK_EQ(recv(r.host, got, sizeof(got), MSG_DONTWAIT), (ssize_t)(12 + sizeof(frame)));
	/* TSO6 and ECN were not negotiated: dropped, the chain still returned */
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	tx_send(&r, &h, frame, sizeof(frame));
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	tx_send(&r, &h, frame, sizeof(frame));
	CHECK_EQ(recv(r.host, got, sizeof(got), MSG_DONTWAIT), -1);
	CHECK_EQ(used_idx(&r, &r.tx), 4);
	struct virtio_net_stats s = stats(&r);
	CHECK_EQ(s.tx_packets, 2);
	CHECK_EQ(s.tx_gso, 1);
	CHECK_EQ(s.tx_bytes, 2 * sizeof(frame));
	CHECK_EQ(s.bad_headers, 2);
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
	rig_fini(&r);
}

TEST(virtio_net_tx_header_check)
{
	uint64_t all = F(CSUM) | F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_ECN);
	struct virtio_net_hdr_v1 h = {0};
	CHECK_OK(virtio_net_tx_check(&h, 0, 60));
	h.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	CHECK_ERR(virtio_net_tx_check(&h, all, 60), -EINVAL);
	h = (struct virtio_net_hdr_v1){
	    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6};
	CHECK_ERR(virtio_net_tx_check(&h, 0, 60), -EINVAL); /* CSUM not negotiated */
	CHECK_OK(virtio_net_tx_check(&h, F(CSUM), 60));
	CHECK_OK(virtio_net_tx_check(&h, F(CSUM), 42));
	CHECK_ERR(virtio_net_tx_check(&h, F(CSUM), 41), -EINVAL); /* the field past the end */
	h.csum_start = 0xffff;
	h.csum_offset = 0xffff;
	CHECK_ERR(virtio_net_tx_check(&h, F(CSUM), 65562), -EINVAL);
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				       .gso_type = VIRTIO_NET_HDR_GSO_TCPV6,
				       .hdr_len = 74,
				       .gso_size = 1428,
				       .csum_start = 54,
				       .csum_offset = 16};
	CHECK_OK(virtio_net_tx_check(&h, all, 9000));
	CHECK_ERR(virtio_net_tx_check(&h, all & ~F(HOST_TSO6), 9000), -EINVAL);
	CHECK_ERR(virtio_net_tx_check(&h, all, 70), -EINVAL); /* hdr_len past the frame */
	h.gso_size = 0;
	CHECK_ERR(virtio_net_tx_check(&h, all, 9000), -EINVAL);
	h.gso_size = 1428;
	h.flags = 0;
	CHECK_ERR(virtio_net_tx_check(&h, all, 9000), -EINVAL); /* GSO without NEEDS_CSUM */
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	CHECK_ERR(virtio_net_tx_check(&h, all, 9000), -EINVAL); /* UFO: not offered */
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	CHECK_OK(virtio_net_tx_check(&h, all, 9000));
	CHECK_ERR(virtio_net_tx_check(&h, all & ~F(HOST_ECN), 9000), -EINVAL);
	h.gso_type = VIRTIO_NET_HDR_GSO_ECN; /* ECN on a non-GSO frame */
	CHECK_ERR(virtio_net_tx_check(&h, all, 9000), -EINVAL);
}

TEST(virtio_net_receive_one_frame_per_buffer_and_watch)
{
	struct rig r;
	rig_init(&r, F(GUEST_CSUM) | F(MRG_RXBUF));
	CHECK_EQ(r.watch, -1); /* nothing asked before the guest posted buffers */
	rx_post(&r, 0, 4, 2048);
	CHECK_EQ(r.watch, 1); /* buffers: watch the fd (it was empty: EAGAIN) */
	uint8_t pkt[12 + 1500];
	memset(pkt, 0, 12);
	pkt[0] = VIRTIO_NET_HDR_F_DATA_VALID;
	frame_fill(pkt + 12, 1500, 9);
	REQUIRE_EQ(send(r.host, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	REQUIRE_EQ(send(r.host, pkt, 12 + 60, 0), 12 + 60);
	virtio_net_backend_ready(r.net, false);
	REQUIRE_EQ(used_idx(&r, &r.rx), 2);
	uint32_t id, len;
	used_entry(&r, &r.rx, 0, &id, &len);
	CHECK_EQ(id, 0);
	CHECK_EQ(len, sizeof(pkt));
	uint8_t got[sizeof(pkt)];
	REQUIRE_OK(vmm_mem_read(&r.mem, RX_BUF, got, sizeof(got)));
	CHECK_EQ(got[0], VIRTIO_NET_HDR_F_DATA_VALID);
	CHECK_EQ(got[10] | got[11] << 8, 1); /* num_buffers */
	CHECK(memcmp(got + 12, pkt + 12, 1500) == 0);
	used_entry(&r, &r.rx, 1, &id, &len);
	CHECK_EQ(id, 1);
	CHECK_EQ(len, 72);
	CHECK_EQ(r.watch, 1);
	/* three frames for the last two buffers: two go in, then the device
	 * has no buffer and stops watching (the third waits in the fd) */
	REQUIRE_EQ(send(r.host, pkt, 12 + 100, 0), 12 + 100);
	REQUIRE_EQ(send(r.host, pkt, 12 + 100, 0), 12 + 100);
	REQUIRE_EQ(send(r.host, pkt, 12 + 100, 0), 12 + 100);
	virtio_net_backend_ready(r.net, false);
	CHECK_EQ(used_idx(&r, &r.rx), 4);
	CHECK_EQ(r.watch, 0);
	/* a kick with new buffers resumes, and the waiting frame arrives */
	rx_post(&r, 4, 1, 2048);
	CHECK_EQ(used_idx(&r, &r.rx), 5);
	used_entry(&r, &r.rx, 4, &id, &len);
	CHECK_EQ(id, 4);
	CHECK_EQ(len, 112);
	CHECK_EQ(r.watch, 0);
	/* paused: the device only stops watching */
	rx_post(&r, 5, 1, 2048);
	CHECK_EQ(r.watch, 1);
	REQUIRE_EQ(send(r.host, pkt, 12 + 100, 0), 12 + 100);
	virtio_net_backend_ready(r.net, true);
	CHECK_EQ(r.watch, 0);
	CHECK_EQ(used_idx(&r, &r.rx), 5);
	struct virtio_net_stats s = stats(&r);
	CHECK_EQ(s.rx_packets, 5);
	CHECK_EQ(s.rx_bytes, 1500 + 60 + 3 * 100);
	CHECK_EQ(s.rx_dropped, 0);
	CHECK_EQ(s.offloads, -ENOTTY); /* a socketpair has no TUNSETOFFLOAD */
	rig_fini(&r);
}

TEST(virtio_net_receive_mergeable_buffers_for_a_big_frame)
{
	struct rig r;
	rig_init(&r, F(GUEST_CSUM) | F(GUEST_TSO4) | F(MRG_RXBUF));
	/* GUEST_TSO4: the device waits for room for a 64 KiB frame */
	rx_post(&r, 0, 2, RX_BUFLEN);
	CHECK_EQ(r.watch, -1);
	rx_post(&r, 2, 3, RX_BUFLEN); /* 5 * 16 KiB >= 65562 + 12 */
	CHECK_EQ(r.watch, 1);
	static uint8_t pkt[12 + 40000];
	memset(pkt, 0, 12);
	pkt[1] = VIRTIO_NET_HDR_GSO_TCPV4;
	frame_fill(pkt + 12, 40000, 3);
	REQUIRE_EQ(send(r.host, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	virtio_net_backend_ready(r.net, false);
	REQUIRE_EQ(used_idx(&r, &r.rx), 3); /* 40012 bytes: three 16 KiB buffers */
	uint32_t id, len, total = 0;
	for (uint16_t i = 0; i < 3; i++) {
		used_entry(&r, &r.rx, i, &id, &len);
		CHECK_EQ(id, i);
		total += len;
	}
	CHECK_EQ(total, sizeof(pkt));
	used_entry(&r, &r.rx, 2, &id, &len);
	CHECK_EQ(len, sizeof(pkt) - 2 * RX_BUFLEN);
	static uint8_t got[3 * RX_BUFLEN];
	REQUIRE_OK(vmm_mem_read(&r.mem, RX_BUF, got, sizeof(got)));
	CHECK_EQ(got[1], VIRTIO_NET_HDR_GSO_TCPV4);
	CHECK_EQ(got[10] | got[11] << 8, 3); /* num_buffers */
	CHECK(memcmp(got + 12, pkt + 12, 40000) == 0);
	CHECK_EQ(stats(&r).rx_gso, 1);
	rig_fini(&r);
}

TEST(virtio_net_bad_chains_dropped_and_ring_errors_need_reset)
{
	struct rig r;
	rig_init(&r, F(CSUM) | F(MRG_RXBUF));
	uint8_t frame[200];
	frame_fill(frame, sizeof(frame), 5);
	struct virtio_net_hdr_v1 h = {0};
	/* transmit: a device-writable buffer in the chain */
	REQUIRE_OK(vmm_mem_write(&r.mem, TX_HDR, &h, sizeof(h)));
	REQUIRE_OK(vmm_mem_write(&r.mem, TX_DATA, frame, sizeof(frame)));
	tdrv_desc(&r.tx, TX_DESC, 0, TX_HDR, 12, VRING_DESC_F_NEXT, 1);
	tdrv_desc(&r.tx, TX_DESC, 1, TX_DATA, sizeof(frame), VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.tx, 0);
	/* a header alone (no frame); a descriptor loop; 4 GiB; past memory */
	tdrv_desc(&r.tx, TX_DESC, 2, TX_HDR, 12, 0, 0);
	tdrv_publish(&r.tx, 2);
	tdrv_desc(&r.tx, TX_DESC, 3, TX_HDR, 12, VRING_DESC_F_NEXT, 4);
	tdrv_desc(&r.tx, TX_DESC, 4, TX_DATA, 100, VRING_DESC_F_NEXT, 3);
	tdrv_publish(&r.tx, 3);
	tdrv_desc(&r.tx, TX_DESC, 5, TX_DATA, 0xffffffffu, 0, 0);
	tdrv_publish(&r.tx, 5);
	tdrv_desc(&r.tx, TX_DESC, 6, MEM_SIZE - 8, 100, 0, 0);
	tdrv_publish(&r.tx, 6);
	/* a frame longer than 64 KiB + headers */
	tdrv_desc(&r.tx, TX_DESC, 7, TX_HDR, 12, VRING_DESC_F_NEXT, 8);
	tdrv_desc(&r.tx, TX_DESC, 8, TX_DATA, VIRTIO_NET_MAX_FRAME + 1, 0, 0);
	tdrv_publish(&r.tx, 7);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	CHECK_EQ(used_idx(&r, &r.tx), 6);
	uint8_t got[512];
	CHECK_EQ(recv(r.host, got, sizeof(got), MSG_DONTWAIT), -1);
	struct virtio_net_stats s = stats(&r);
	CHECK_EQ(s.bad_chains, 6);
	CHECK_EQ(s.tx_packets, 0);
	/* and a good one still goes */
	tx_send(&r, &h, frame, sizeof(frame));
	CHECK_EQ(recv(r.host, got, sizeof(got), MSG_DONTWAIT), (ssize_t)(12 + sizeof(frame)));

	/* receive: a driver-readable buffer, a buffer shorter than the header */
	tdrv_desc(&r.rx, RX_DESC, 0, RX_BUF, 2048, 0, 0);
	tdrv_publish(&r.rx, 0);
	tdrv_desc(&r.rx, RX_DESC, 1, RX_BUF, 8, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.rx, 1);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
	CHECK_EQ(used_idx(&r, &r.rx), 2);
	uint32_t id, len;
	used_entry(&r, &r.rx, 0, &id, &len);
	CHECK_EQ(len, 0);
	s = stats(&r);
	CHECK_EQ(s.bad_chains, 8);
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
	/* a frame shorter than an Ethernet header is dropped, buffers kept */
	rx_post(&r, 2, 1, 2048);
	REQUIRE_EQ(send(r.host, got, 12 + 5, 0), 12 + 5);
	virtio_net_backend_ready(r.net, false);
	CHECK_EQ(used_idx(&r, &r.rx), 2);
	CHECK_EQ(stats(&r).rx_dropped, 1);

	/* the available index runs past the queue size: DEVICE_NEEDS_RESET */
	uint16_t bogus = (uint16_t)(r.tx.avail_idx + QSZ + 1);
	REQUIRE_OK(vmm_mem_write(&r.mem, TX_AVAIL + 2, &bogus, 2));
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	CHECK(tdrv_rd(&r.m, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* not running: a readable fd only turns the watch off */
	REQUIRE_EQ(send(r.host, got, 12 + 60, 0), 12 + 60);
	virtio_net_backend_ready(r.net, false);
	CHECK_EQ(r.watch, 0);
	/* a reset and a new negotiation bring it back */
	r.rx.avail_idx = r.tx.avail_idx = 0;
	memset(r.mem.host, 0, 0x8000);
	r.offered = tdrv_probe(&r.m, VIRTIO_ID_NET, (1ull << VIRTIO_F_VERSION_1) | F(MRG_RXBUF));
	tdrv_setup_queue(&r.m, VIRTIO_NET_RXQ, &r.rx);
	tdrv_setup_queue(&r.m, VIRTIO_NET_TXQ, &r.tx);
	tdrv_wr(&r.m, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
	rx_post(&r, 0, 2, 2048);
	CHECK_EQ(used_idx(&r, &r.rx), 1);
	used_entry(&r, &r.rx, 0, &id, &len);
	CHECK_EQ(len, 12 + 60);
	rig_fini(&r);
}

TEST(virtio_net_transmit_a_full_ring_in_one_kick)
{
	struct rig r;
	rig_init(&r, 0);
	uint8_t frame[64];
	frame_fill(frame, sizeof(frame), 2);
	struct virtio_net_hdr_v1 h = {0};
	REQUIRE_OK(vmm_mem_write(&r.mem, TX_HDR, &h, sizeof(h)));
	REQUIRE_OK(vmm_mem_write(&r.mem, TX_DATA, frame, sizeof(frame)));
	tdrv_desc(&r.tx, TX_DESC, 0, TX_HDR, 12, VRING_DESC_F_NEXT, 1);
	tdrv_desc(&r.tx, TX_DESC, 1, TX_DATA, sizeof(frame), 0, 0);
	/* a full ring in one kick, all sent, none left for a second run */
	for (unsigned i = 0; i < QSZ; i++)
		tdrv_publish(&r.tx, 0);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	CHECK_EQ(used_idx(&r, &r.tx), QSZ);
	CHECK_EQ(r.requeues, 0);
	CHECK_EQ(stats(&r).tx_packets, QSZ);
	rig_fini(&r);
}

/* ---------------------------------------------------------------- flow control */

/* Simulated time for the limiters. */
static uint64_t fake_now = 1000000000ull;
static uint64_t fake_clock(void)
{
	return fake_now;
}
static unsigned waits;
static void on_rl_wait(void *opaque, uint64_t delay_ns)
{
	(void)opaque;
	(void)delay_ns;
	waits++;
}
/* queue q's limiter at bytes_per_sec (burst as much), on the fake clock */
static void limit(struct rig *r, unsigned q, uint64_t bytes_per_sec)
{
	struct ratelimit *rl = virtio_net_ratelimit(r->net, q);
	REQUIRE(rl);
	rl->clock = fake_clock;
	rl->wait = on_rl_wait;
	struct ratelimit_config c = {.bytes_per_sec = bytes_per_sec, .bytes_burst = bytes_per_sec};
	virtio_mmio_lock(r->t);
	ratelimit_set(rl, &c, fake_now);
	virtio_mmio_unlock(r->t);
}

/* n frames of len bytes on the transmit ring, frame i in descriptors 2i and
 * 2i+1 with its own data (seed i), published, not yet kicked. */
static void tx_queue_frames(struct rig *r, unsigned n, uint32_t len)
{
	REQUIRE(n <= QSZ / 2 && len <= 2048);
	struct virtio_net_hdr_v1 h = {0};
	REQUIRE_OK(vmm_mem_write(&r->mem, TX_HDR, &h, sizeof(h)));
	uint8_t frame[2048];
	for (unsigned i = 0; i < n; i++) {
		frame_fill(frame, len, (uint8_t)i);
		uint64_t at = TX_DATA + 2048ull * i;
		REQUIRE_OK(vmm_mem_write(&r->mem, at, frame, len));
		tdrv_desc(&r->tx, TX_DESC, 2 * i, TX_HDR, 12, VRING_DESC_F_NEXT,
			  (uint16_t)(2 * i + 1));
		tdrv_desc(&r->tx, TX_DESC, 2 * i + 1, at, len, 0, 0);
		tdrv_publish(&r->tx, (uint16_t)(2 * i));
	}
}

/* Frames waiting on the host end: checks each is frame seed, seed+1... of
 * len bytes; returns how many. */
static unsigned host_drain(struct rig *r, uint32_t len, unsigned seed)
{
	uint8_t got[12 + 2048], want[2048];
	unsigned n = 0;
	ssize_t k;
	while ((k = recv(r->host, got, sizeof(got), MSG_DONTWAIT)) > 0) {
		CHECK_EQ(k, (ssize_t)(12 + len));
		frame_fill(want, len, (uint8_t)(seed + n));
		CHECK(memcmp(got + 12, want, len) == 0);
		n++;
	}
	return n;
}

TEST(virtio_net_rate_limits_transmit)
{
	struct rig r;
	rig_init(&r, 0);
	limit(&r, VIRTIO_NET_TXQ, 1000); /* 1000 bytes/s, a bucket of 1000 */
	waits = 0;
	tx_queue_frames(&r, 5, 400);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	/* 400 + 400 from the bucket, the third on debt; then it waits */
	CHECK_EQ(used_idx(&r, &r.tx), 3);
	CHECK_EQ(host_drain(&r, 400, 0), 3);
	CHECK_EQ(waits, 1);
	/* a kick without tokens sends nothing */
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	CHECK_EQ(used_idx(&r, &r.tx), 3);
	/* a second later (the VMM's timer runs the queue): the debt is paid,
	 * 800 tokens: the last two */
	fake_now += 1000000000ull;
	virtio_mmio_process(r.t, VIRTIO_NET_TXQ);
	CHECK_EQ(used_idx(&r, &r.tx), 5);
	CHECK_EQ(host_drain(&r, 400, 3), 2);
	CHECK_EQ(stats(&r).tx_packets, 5);
	/* the receive direction has its own, unlimited buckets */
	CHECK(virtio_net_ratelimit(r.net, VIRTIO_NET_RXQ) !=
	      virtio_net_ratelimit(r.net, VIRTIO_NET_TXQ));
	CHECK(!ratelimit_active(virtio_net_ratelimit(r.net, VIRTIO_NET_RXQ)));
	CHECK(virtio_net_ratelimit(r.net, 2) == NULL);
	rig_fini(&r);
}

TEST(virtio_net_rate_limits_receive)
{
	struct rig r;
	rig_init(&r, F(MRG_RXBUF));
	limit(&r, VIRTIO_NET_RXQ, 1000);
	waits = 0;
	uint8_t pkt[12 + 600];
	memset(pkt, 0, 12);
	frame_fill(pkt + 12, 600, 5);
	for (int i = 0; i < 4; i++)
		REQUIRE_EQ(send(r.host, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	rx_post(&r, 0, 8, 2048);
	/* 600 from the bucket, 600 on debt; then the fd is not watched */
	CHECK_EQ(used_idx(&r, &r.rx), 2);
	CHECK(r.watch != 1); /* frames wait in the fd, unwatched */
	CHECK_EQ(waits, 1);
	/* a kick with more buffers takes nothing without tokens */
	rx_post(&r, 8, 1, 2048);
	CHECK_EQ(used_idx(&r, &r.rx), 2);
	fake_now += 1000000000ull; /* +1000: 800 after the debt */
	virtio_mmio_process(r.t, VIRTIO_NET_RXQ);
	CHECK_EQ(used_idx(&r, &r.rx), 4);
	CHECK_EQ(stats(&r).rx_packets, 4);
	CHECK_EQ(stats(&r).rx_bytes, 4 * 600);
	rig_fini(&r);
}

TEST(virtio_net_transmit_back_pressure_when_the_fd_is_full)
{
	struct rig r;
	rig_init_with(&r, 0, 0, 4096); /* a small send buffer: full after a few frames */
	tx_queue_frames(&r, 32, 1400);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	uint16_t sent = used_idx(&r, &r.tx);
	REQUIRE(sent > 0 && sent < 32); /* the fd said EAGAIN before the end */
	struct virtio_net_stats s = stats(&r);
	CHECK_EQ(s.tx_dropped, 0); /* held, not dropped */
	CHECK_EQ(s.tx_blocked, 1);
	CHECK_EQ(r.txwatch, 1); /* the host watches the fd for writing */
	/* the queue is stopped: no notifications, a kick sends nothing */
	CHECK(tdrv_rd16(&r.mem, r.tx.used) & VRING_USED_F_NO_NOTIFY);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	CHECK_EQ(used_idx(&r, &r.tx), sent);
	/* the host reads, the fd is writable: the device goes on, in order */
	unsigned got = 0;
	for (int round = 0; round < 64 && used_idx(&r, &r.tx) < 32; round++) {
		got += host_drain(&r, 1400, got);
		virtio_net_tx_ready(r.net, false);
	}
	got += host_drain(&r, 1400, got);
	CHECK_EQ(used_idx(&r, &r.tx), 32);
	CHECK_EQ(got, 32);
	s = stats(&r);
	CHECK_EQ(s.tx_packets, 32);
	CHECK_EQ(s.tx_dropped, 0);
	CHECK(s.tx_blocked >= 1);
	CHECK_EQ(r.txwatch, 0);
	/* notifications back on once the ring is empty */
	CHECK(!(tdrv_rd16(&r.mem, r.tx.used) & VRING_USED_F_NO_NOTIFY));
	rig_fini(&r);
}

TEST(virtio_net_back_pressure_held_frame_dropped_by_a_reset)
{
	struct rig r;
	rig_init_with(&r, 0, 0, 4096);
	tx_queue_frames(&r, 32, 1400);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	uint16_t sent = used_idx(&r, &r.tx);
	REQUIRE(sent < 32 && r.txwatch == 1);
	unsigned got = host_drain(&r, 1400, 0);
	CHECK_EQ(got, sent);
	/* the driver resets the device: the held chain was the old ring's */
	tdrv_wr(&r.m, VIRTIO_MMIO_STATUS, 0);
	virtio_net_tx_ready(r.net, false); /* the watch fires once more: off, nothing sent */
	CHECK_EQ(r.txwatch, 0);
	CHECK_EQ(host_drain(&r, 1400, 0), 0);
	rig_fini(&r);
}

TEST(virtio_net_mtu_offered_and_honoured_on_receive)
{
	struct rig r;
	rig_init_with(&r, F(MTU) | F(MRG_RXBUF), 9000, 0);
	CHECK(r.offered & F(MTU));
	uint64_t v = 0;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG + offsetof(struct virtio_net_config, mtu),
		       &v, 2, false, 0);
	CHECK_EQ(v, 9000);
	CHECK(stats(&r).features & F(MTU));
	/* no GUEST_TSO: the device waits for room for a 9000-byte MTU frame */
	rx_post(&r, 0, 2, 4096);
	CHECK_EQ(r.watch, -1); /* 8192 < 9000 + 18 + 12 */
	rx_post(&r, 2, 1, 4096);
	CHECK_EQ(r.watch, 1);
	static uint8_t pkt[12 + 9014];
	memset(pkt, 0, 12);
	frame_fill(pkt + 12, 9014, 4);
	REQUIRE_EQ(send(r.host, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	virtio_net_backend_ready(r.net, false);
	REQUIRE_EQ(used_idx(&r, &r.rx), 3);
	CHECK_EQ(stats(&r).rx_bytes, 9014);
	rig_fini(&r);
	/* without an mtu, F_MTU is not offered */
	rig_init(&r, 0);
	CHECK(!(r.offered & F(MTU)));
	rig_fini(&r);
	/* an mtu below 68 is refused */
	struct virtio_net *n;
	struct virtio_mmio *t;
	struct virtio_net_options o = {.fd = 0, .mtu = 67};
	CHECK_ERR(virtio_net_create((struct virtio_mmio_config){0}, &o, &n, &t), -EINVAL);
}

TEST(virtio_net_mtu_and_rate_options_checked)
{
	struct ember_config *cfg;
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&cfg));
	REQUIRE_OK(ember_config_set(cfg, "net", "tap=e0,mtu=67", &err));
	struct vmm_devopt *d = &cfg->devs[cfg->ndevs - 1];
	CHECK_ERR(d->type->resolve(cfg, d, &err), -EINVAL);
	CHECK(strstr(err.msg, "--net mtu=67: out of range 68..65535") != NULL);
	REQUIRE_OK(ember_config_set(cfg, "net", "tap=e1,mtu=65536", &err));
	d = &cfg->devs[cfg->ndevs - 1];
	CHECK_ERR(d->type->resolve(cfg, d, &err), -EINVAL);
	CHECK(strstr(err.msg, "out of range") != NULL);
	/* the rate keys are the net option's too; a burst needs its rate */
	REQUIRE_OK(ember_config_set(cfg, "net", "tap=e2,bw=10M,bw-burst=1M,ops=1000", &err));
	CHECK_ERR(ember_config_set(cfg, "net", "tap=e3,ops-burst=5", &err), -EINVAL);
	CHECK(strstr(ember_config_usage(), "mtu=68..65535") != NULL);
	ember_config_free(cfg);
}

/* ---------------------------------------------------------------- a real tap */

/* A private network namespace for this test process (the runner forks
 * each test), so taps made here vanish with it. */
static void private_netns(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		TEST_SKIP("unshare(CLONE_NEWNET): %s (needs root / CAP_SYS_ADMIN)",
			  strerror(errno));
	if (access("/dev/net/tun", R_OK | W_OK) < 0)
		TEST_SKIP("/dev/net/tun: %s (no tun module)", strerror(errno));
}

static void link_up(const char *name)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	REQUIRE(s >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	REQUIRE_OK(ioctl(s, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP;
	REQUIRE_OK(ioctl(s, SIOCSIFFLAGS, &ifr));
	close(s);
}

TEST(virtio_net_tap_open_and_fd_checks)
{
	private_netns();
	struct ember_error e = {0};
	int fd;
	REQUIRE_OK(vmm_tap_open("embtest0", &fd, &e));
	char name[VMM_TAP_NAME_MAX + 1];
	int d;
	CHECK_OK(vmm_tap_check_fd(fd, name, &d, &e));
	CHECK_STR(name, "embtest0");
	CHECK(d >= 0 && d != fd);
	int hs = 0;
	CHECK_OK(ioctl(d, TUNGETVNETHDRSZ, &hs));
	CHECK_EQ(hs, 12);
	close(d);
	/* a second attach of the same (single-queue) tap is refused */
	int fd2;
	CHECK_ERR(vmm_tap_open("embtest0", &fd2, &e), -EBUSY);
	CHECK(strstr(e.msg, "--net tap=embtest0") != NULL);
	close(fd);
	/* not a tap: a socket, a closed fd, a tun */
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK_ERR(vmm_tap_check_fd(s, NULL, NULL, &e), -ENOTTY);
	CHECK(strstr(e.msg, "not an attached tap") != NULL);
	close(s);
	CHECK_ERR(vmm_tap_check_fd(s, NULL, NULL, &e), -EBADF);
	int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	REQUIRE(tun >= 0);
	CHECK_ERR(vmm_tap_check_fd(tun, NULL, NULL, &e), -ENOTTY); /* not attached yet */
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "embtun0");
	REQUIRE_OK(ioctl(tun, TUNSETIFF, &ifr));
	CHECK_ERR(vmm_tap_check_fd(tun, NULL, NULL, &e), -EINVAL);
	CHECK(strstr(e.msg, "a tun, not a tap") != NULL);
	close(tun);
	/* a tap without the virtio header */
	tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "embtest1");
	REQUIRE_OK(ioctl(tun, TUNSETIFF, &ifr));
	CHECK_ERR(vmm_tap_check_fd(tun, NULL, NULL, &e), -EINVAL);
	CHECK(strstr(e.msg, "without IFF_VNET_HDR") != NULL);
	close(tun);
	CHECK_ERR(vmm_tap_open("a/b", &fd, &e), -EINVAL);
	CHECK_ERR(vmm_tap_open("", &fd, &e), -EINVAL);
}

TEST(virtio_net_mac_parse_and_default)
{
	uint8_t m[6];
	CHECK_OK(vmm_tap_parse_mac("52:54:00:Ab:cD:eF", m));
	CHECK(memcmp(m, MAC, 6) == 0);
	CHECK_OK(vmm_tap_parse_mac("52-54-00-ab-cd-ef", m));
	const char *bad[] = {
	    "01:00:5e:00:00:01", "00:00:00:00:00:00",  "52:54:00:ab:cd", "52:54:00:ab:cd:eg",
	    "52:54-00:ab:cd:ef", "52:54:00:ab:cd:ef:", "525400abcdef",	 NULL};
	for (int i = 0; bad[i]; i++)
		if (vmm_tap_parse_mac(bad[i], m) != -EINVAL)
			TEST_FAIL("\"%s\" accepted as a MAC", bad[i]);
	uint8_t a[6], b[6], c[6];
	vmm_tap_default_mac("tap0", a);
	vmm_tap_default_mac("tap0", b);
	vmm_tap_default_mac("tap1", c);
	CHECK(memcmp(a, b, 6) == 0);
	CHECK(memcmp(a, c, 6) != 0);
	CHECK_EQ(a[0] & 3, 2); /* locally administered, unicast */
	CHECK_EQ(c[0] & 3, 2);
	char s[18];
	vmm_tap_format_mac(MAC, s);
	CHECK_STR(s, "52:54:00:ab:cd:ef");
}

static char *tmp_with(const void *data, size_t len)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/ember-net-XXXXXX");
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	REQUIRE_EQ(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

TEST(virtio_net_option_checked_before_the_vm_is_built)
{
	private_netns();
	size_t blen;
	uint8_t *bz = fx_bzimage(4096, &blen);
	char kernel[64], initrd[64];
	snprintf(kernel, sizeof(kernel), "%s", tmp_with(bz, blen));
	snprintf(initrd, sizeof(initrd), "%s", tmp_with("initrd", 6));
	free(bz);
	struct {
		const char *spec, *msg;
	} bad[] = {
	    {"tap=embt0,fd=3", "give one of tap=NAME and fd=N"},
	    {"mac=52:54:00:00:00:01", "give one of tap=NAME and fd=N"},
	    {"tap=embt0,mac=ff:ff:ff:ff:ff:ff", "--net mac=ff:ff:ff:ff:ff:ff: not a unicast"},
	    {"fd=0", "--net fd=0: not an attached tap"},
	    {"fd=999", "--net fd=999: not an open file descriptor"},
	    {"tap=a b", "--net tap=a b: not an interface name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ember_config c;
		vmm_config_init(&c);
		struct ember_error e = {0};
		c.console_in = -1;
		CHECK_OK(ember_config_set(&c, "kernel", kernel, &e));
		CHECK_OK(ember_config_set(&c, "initrd", initrd, &e));
		CHECK_OK(ember_config_set(&c, "net", bad[i].spec, &e));
		int r = ember_config_resolve(&c, &e);
		if (r >= 0 || !strstr(e.msg, bad[i].msg))
			TEST_FAIL("--net %s: %d \"%s\", want \"%s\"", bad[i].spec, r, e.msg,
				  bad[i].msg);
		vmm_config_fini(&c);
	}
	struct ember_config c;
	vmm_config_init(&c);
	struct ember_error e = {0};
	CHECK_ERR(ember_config_set(&c, "net", "tap=embt0,speed=10", &e), -EINVAL);
	CHECK(strstr(e.msg, "--net: unknown key 'speed'") != NULL);
	CHECK_ERR(ember_config_set(&c, "net", "tap=abcdefghijklmnop", &e), -ENAMETOOLONG);
	CHECK_OK(ember_config_set(&c, "net", "embt0", &e)); /* the implied key: tap */
	vmm_config_fini(&c);
	/* a good one resolves (the tap attaches, then is let go) */
	vmm_config_init(&c);
	c.console_in = -1;
	CHECK_OK(ember_config_set(&c, "kernel", kernel, &e));
	CHECK_OK(ember_config_set(&c, "initrd", initrd, &e));
	CHECK_OK(ember_config_set(&c, "net", "tap=embt0,mac=52:54:00:00:00:01", &e));
	int r = ember_config_resolve(&c, &e);
	if (r < 0)
		TEST_FAIL("%s", e.msg);
	vmm_config_fini(&c);
	/* an inherited, attached tap fd resolves too */
	int tfd;
	REQUIRE_OK(vmm_tap_open("embt1", &tfd, &e));
	char spec[32];
	snprintf(spec, sizeof(spec), "fd=%d", tfd);
	vmm_config_init(&c);
	c.console_in = -1;
	CHECK_OK(ember_config_set(&c, "kernel", kernel, &e));
	CHECK_OK(ember_config_set(&c, "initrd", initrd, &e));
	CHECK_OK(ember_config_set(&c, "net", spec, &e));
	r = ember_config_resolve(&c, &e);
	if (r < 0)
		TEST_FAIL("%s: %s", spec, e.msg);
	vmm_config_fini(&c);
	close(tfd);
	/* the same tap twice */
	vmm_config_init(&c);
	c.console_in = -1;
	CHECK_OK(ember_config_set(&c, "kernel", kernel, &e));
	CHECK_OK(ember_config_set(&c, "initrd", initrd, &e));
	CHECK_OK(ember_config_set(&c, "net", "tap=embt0", &e));
	CHECK_OK(ember_config_set(&c, "net", "embt0", &e));
	CHECK_ERR(ember_config_resolve(&c, &e), -EINVAL);
	CHECK(strstr(e.msg, "--net tap=embt0: the tap is given twice") != NULL);
	vmm_config_fini(&c);
	unlink(kernel);
	unlink(initrd);
}

TEST(virtio_net_on_a_real_tap)
{
	private_netns();
	struct ember_error e = {0};
	int fd;
	REQUIRE_OK(vmm_tap_open("embtest0", &fd, &e));
	int ifindex = (int)if_nametoindex("embtest0");
	REQUIRE(ifindex > 0);
	link_up("embtest0");
	/* the host's side of the tap: a packet socket on it */
	int ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETYPE));
	REQUIRE(ps >= 0);
	struct sockaddr_ll sll = {
	    .sll_family = AF_PACKET, .sll_protocol = htons(ETYPE), .sll_ifindex = ifindex};
	REQUIRE_OK(bind(ps, (struct sockaddr *)&sll, sizeof(sll)));
	struct rig r;
	memset(&r, 0, sizeof(r));
	r.host = -1;
	rig_start(&r, fd,
		  F(CSUM) | F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(HOST_TSO4) |
		      F(MRG_RXBUF));
	/* guest -> host */
	uint8_t frame[300];
	frame_fill(frame, sizeof(frame), 4);
	struct virtio_net_hdr_v1 h = {0};
	tx_send(&r, &h, frame, sizeof(frame));
	CHECK_EQ(used_idx(&r, &r.tx), 1);
	struct pollfd p = {.fd = ps, .events = POLLIN};
	REQUIRE_EQ(poll(&p, 1, 2000), 1);
	uint8_t got[2048];
	ssize_t n = recv(ps, got, sizeof(got), 0);
	CHECK_EQ(n, (ssize_t)sizeof(frame));
	CHECK(n > 0 && memcmp(got, frame, (size_t)n) == 0);
	/* the offloads the guest took were set on the tap */
	struct virtio_net_stats s = stats(&r);
	CHECK_EQ(s.offloads, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
	/* host -> guest */
	rx_post(&r, 0, 8, RX_BUFLEN); /* 128 KiB: room for a 64 KiB frame */
	CHECK_EQ(r.watch, 1);
	frame_fill(frame, sizeof(frame), 8);
	memcpy(frame + 6, "\x02\x00\x00\x00\x00\x01", 6);
	REQUIRE_EQ(sendto(ps, frame, sizeof(frame), 0, (struct sockaddr *)&sll, sizeof(sll)),
		   (ssize_t)sizeof(frame));
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	REQUIRE_EQ(poll(&p, 1, 2000), 1);
	virtio_net_backend_ready(r.net, false);
	/* the kernel may send its own frames (IPv6) too: find ours */
	bool found = false;
	for (uint16_t i = 0; i < used_idx(&r, &r.rx) && !found; i++) {
		uint32_t id, len;
		used_entry(&r, &r.rx, i, &id, &len);
		if (len != 12 + sizeof(frame))
			continue;
		REQUIRE_OK(vmm_mem_read(&r.mem, RX_BUF + id * RX_BUFLEN, got, len));
		found =
		    memcmp(got + 12, frame, sizeof(frame)) == 0 && (got[10] | got[11] << 8) == 1;
	}
	CHECK(found);
	close(ps);
	bus_destroy(r.bus);
	dev_destroy(virtio_mmio_dev(r.t));
	virtio_net_destroy(r.net);
	vmm_mem_destroy(&r.mem);
}

/* ------------------------------------------------------------ saved state */

/* Replaces the rig's device by a fresh one on fd (same guest memory), as a
 * restored VM builds it; its options carry mac. */
static void rig_fresh_device(struct rig *r, int fd, const uint8_t *mac)
{
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_net_destroy(r->net);
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	struct virtio_net_options o = {
	    .fd = fd, .rx_watch = on_watch, .requeue = on_requeue, .opaque = r};
	memcpy(o.mac, mac, 6);
	REQUIRE_OK(
	    virtio_net_create((struct virtio_mmio_config){.mem = &r->mem}, &o, &r->net, &r->t));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->m.bus = r->bus;
}

static void new_pair(struct rig *r, int *dev_end)
{
	int sv[2];
	REQUIRE_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	if (r->host >= 0)
		close(r->host);
	r->host = sv[1];
	*dev_end = sv[0];
}

static uint8_t config_byte(struct rig *r, unsigned off)
{
	uint64_t v = 0;
	bus_access_u64(r->bus, BASE + VIRTIO_MMIO_CONFIG + off, &v, 1, false, 0);
	return (uint8_t)v;
}

TEST(virtio_net_state_round_trip_takes_held_buffers_again)
{
	struct rig r;
	uint64_t feat = F(GUEST_CSUM) | F(MRG_RXBUF) | F(MAC);
	rig_init(&r, feat);
	rx_post(&r, 0, 3, 2048);
	uint8_t pkt[12 + 200] = {0};
	frame_fill(pkt + 12, 200, 3);
	REQUIRE_EQ(send(r.host, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	virtio_net_backend_ready(r.net, false);
	REQUIRE_EQ(used_idx(&r, &r.rx), 1);
	/* buffers 1 and 2 are the device's now, waiting for frames */
	size_t len;
	uint8_t *buf = state_take(state_dev_save, virtio_mmio_dev(r.t), &len);

	/* a fresh device on another fd, whose options made another MAC */
	const uint8_t other[6] = {0x52, 0x54, 0, 1, 2, 3};
	int fd;
	new_pair(&r, &fd);
	rig_fresh_device(&r, fd, other);
	CHECK_EQ(config_byte(&r, 5), 3);
	char detail[VMM_STATE_DETAIL];
	int rc = state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, detail, sizeof(detail));
	if (rc)
		TEST_FAIL("load: %d: %s", rc, detail);
	for (unsigned i = 0; i < 6; i++) /* the guest keeps the address it read */
		CHECK_EQ(config_byte(&r, i), MAC[i]);
	CHECK_EQ(stats(&r).features, (1ull << VIRTIO_F_VERSION_1) | feat);
	/* the next frame lands in buffer 1, taken again from the ring */
	frame_fill(pkt + 12, 200, 4);
	REQUIRE_EQ(send(r.host, pkt, 12 + 100, 0), 12 + 100);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
	virtio_net_backend_ready(r.net, false);
	REQUIRE_EQ(used_idx(&r, &r.rx), 2);
	uint32_t id, ulen;
	used_entry(&r, &r.rx, 1, &id, &ulen);
	CHECK_EQ(id, 1);
	CHECK_EQ(ulen, 112);
	uint8_t got[112];
	REQUIRE_OK(vmm_mem_read(&r.mem, RX_BUF + RX_BUFLEN, got, sizeof(got)));
	CHECK(memcmp(got + 12, pkt + 12, 100) == 0);
	/* and transmit continues too */
	struct virtio_net_hdr_v1 h = {0};
	tx_send(&r, &h, pkt + 12, 100);
	CHECK_EQ(used_idx(&r, &r.tx), 1);
	CHECK_EQ(recv(r.host, got, sizeof(got), MSG_DONTWAIT), 12 + 100);

	/* refusals, by a fresh device that stays so */
	new_pair(&r, &fd);
	rig_fresh_device(&r, fd, other);
	state_check_refusals(state_dev_save, state_dev_load, virtio_mmio_dev(r.t), buf, len);
	state_check_patched(state_dev_load, virtio_mmio_dev(r.t), buf, len, len - 6, 0x01,
			    "virtio-mmio/virtio-net: a multicast MAC");
	CHECK_EQ(config_byte(&r, 5), 3);
	free(buf);
	rig_fini(&r);
}

TEST(virtio_net_state_offloads_set_on_the_tap_again)
{
	private_netns();
	struct ember_error e = {0};
	int fd;
	REQUIRE_OK(vmm_tap_open("embtest0", &fd, &e));
	struct rig r;
	memset(&r, 0, sizeof(r));
	r.host = -1;
	rig_start(&r, fd, F(CSUM) | F(GUEST_CSUM) | F(GUEST_TSO4) | F(MRG_RXBUF));
	struct virtio_net_hdr_v1 h = {0};
	uint8_t frame[100];
	frame_fill(frame, sizeof(frame), 1);
	tx_send(&r, &h, frame, sizeof(frame)); /* the I/O thread's first run sets them */
	CHECK_EQ(stats(&r).offloads, TUN_F_CSUM | TUN_F_TSO4);
	size_t len;
	uint8_t *buf = state_take(state_dev_save, virtio_mmio_dev(r.t), &len);
	/* the restored VM opens the tap again: the device turns offloads off */
	bus_destroy(r.bus);
	dev_destroy(virtio_mmio_dev(r.t));
	virtio_net_destroy(r.net);
	r.bus = NULL;
	REQUIRE_OK(vmm_tap_open("embtest0", &fd, &e));
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r.bus));
	struct virtio_net_options o = {.fd = fd, .opaque = &r};
	memcpy(o.mac, MAC, 6);
	REQUIRE_OK(virtio_net_create((struct virtio_mmio_config){.mem = &r.mem}, &o, &r.net, &r.t));
	CHECK_EQ(stats(&r).offloads, 0);
	REQUIRE_OK(state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, NULL, 0));
	/* on the tap at the load, before any queue work */
	CHECK_EQ(stats(&r).offloads, TUN_F_CSUM | TUN_F_TSO4);
	free(buf);
	rig_fini(&r);
}

/* A transmit chain held by back-pressure (the fd was full) is saved as not
 * taken: the loaded device takes it again from the ring and sends it. */
TEST(virtio_net_state_a_held_transmit_chain_is_taken_again)
{
	struct rig r;
	rig_init_with(&r, 0, 0, 4096);
	tx_queue_frames(&r, 32, 1400);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	uint16_t sent = used_idx(&r, &r.tx);
	REQUIRE(sent < 32 && r.txwatch == 1);
	CHECK_EQ(host_drain(&r, 1400, 0), sent);
	size_t len;
	uint8_t *buf = state_take(state_dev_save, virtio_mmio_dev(r.t), &len);
	int fd;
	new_pair(&r, &fd);
	rig_fresh_device(&r, fd, MAC);
	char detail[VMM_STATE_DETAIL];
	int rc = state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, detail, sizeof(detail));
	if (rc)
		TEST_FAIL("load: %d: %s", rc, detail);
	/* the run after the load: the held frame first, then the rest */
	virtio_mmio_process(r.t, VIRTIO_NET_TXQ);
	CHECK_EQ(used_idx(&r, &r.tx), 32);
	CHECK_EQ(host_drain(&r, 1400, sent), 32 - sent);
	free(buf);
	rig_fini(&r);
}

/* A refused receive chain returned between two the device holds: they
 * cannot be given back to the ring, so the save is refused (-EBUSY) rather
 * than wrong; once a frame used them, it saves. */
TEST(virtio_net_state_held_chains_out_of_order_are_busy)
{
	struct rig r;
	rig_init(&r, F(MRG_RXBUF));
	tdrv_desc(&r.rx, RX_DESC, 0, RX_BUF, 256, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.rx, 0);
	tdrv_desc(&r.rx, RX_DESC, 1, RX_BUF + RX_BUFLEN, 256, 0, 0); /* readable: refused */
	tdrv_publish(&r.rx, 1);
	for (uint16_t i = 2; i < 12; i++) {
		tdrv_desc(&r.rx, RX_DESC, i, RX_BUF + i * (uint64_t)RX_BUFLEN, 256,
			  VRING_DESC_F_WRITE, 0);
		tdrv_publish(&r.rx, i);
	}
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
	CHECK_EQ(used_idx(&r, &r.rx), 1); /* the refused one */
	CHECK_EQ(stats(&r).bad_chains, 1);
	struct vmm_state_w w;
	vmm_sw_init(&w);
	CHECK_ERR(dev_save(virtio_mmio_dev(r.t), &w), -EBUSY);
	vmm_sw_free(&w);
	/* a frame takes every held buffer (mergeable): nothing is held now */
	uint8_t pkt[12 + 1514] = {0};
	frame_fill(pkt + 12, 1514, 5);
	REQUIRE_EQ(send(r.host, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	virtio_net_backend_ready(r.net, false);
	REQUIRE(used_idx(&r, &r.rx) > 1);
	vmm_sw_init(&w);
	int rc = dev_save(virtio_mmio_dev(r.t), &w);
	vmm_sw_free(&w);
	/* the chains taken after the frame (if any) are in order again */
	CHECK_OK(rc);
	rig_fini(&r);
}
