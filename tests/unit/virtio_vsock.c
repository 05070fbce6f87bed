/* tests/unit/virtio_vsock.c - virtio-vsock with its Unix-socket muxer: connections both ways, data, credit stalls, RST and bad packets. */
#include "virtio_driver.h"
#include "../../devices/virtio/vsock.h"
#include "state_util.h"
#include "vsock_nop.h"
#include "../../vmm/vsock_host.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MEM_SIZE (4u << 20)
#define BASE	 0xd0000000ull
#define QSZ	 16
#define NRX	 8
#define RXBUF	 (VIRTIO_VSOCK_HDR_BYTES + 4096)
#define RX_GPA	 0x100000ull
#define HDR_GPA	 0x40000ull
#define DATA_GPA 0x50000ull
#define CID	 7
#define GBUF	 (64u << 10) /* the test guest's buf_alloc */

/* One received packet. */
struct gpkt {
	struct virtio_vsock_pkt h;
	uint8_t data[4096];
};

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct ember_loop *loop;
	struct vmm_vsock_host *host;
	struct virtio_vsock *v;
	struct virtio_mmio *t;
	struct tdrv_mmio m;
	struct tdrv_queue q[3];
	uint16_t rx_used; /* next used entry to read */
	char dir[64], path[96];
	pthread_mutex_t dev_lock; /* as the VM's: the muxer takes it */
	bool paused;
	uint32_t g_fwd; /* what the guest says it consumed (one connection at a time) */
};

static void rx_post(struct rig *r, uint16_t i)
{
	tdrv_desc(&r->q[0], r->q[0].desc, i, RX_GPA + 0x2000ull * i, RXBUF, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r->q[0], i);
}

/* The driver's probe (from a reset): fresh queues, NRX rx buffers. */
static void driver_up(struct rig *r)
{
	memset(r->mem.host, 0, RX_GPA);
	r->rx_used = 0;
	tdrv_probe(&r->m, VIRTIO_ID_VSOCK, 1ull << VIRTIO_F_VERSION_1);
	for (unsigned i = 0; i < 3; i++) {
		r->q[i] = (struct tdrv_queue){.mem = &r->mem,
					      .size = QSZ,
					      .desc = 0x10000 + 0x4000ull * i,
					      .avail = 0x11000 + 0x4000ull * i,
					      .used = 0x12000 + 0x4000ull * i};
		tdrv_setup_queue(&r->m, i, &r->q[i]);
	}
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
	for (uint16_t i = 0; i < NRX; i++)
		rx_post(r, i);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/ember-vsock-XXXXXX");
	REQUIRE(mkdtemp(r->dir));
	snprintf(r->path, sizeof(r->path), "%s/v.sock", r->dir);
	REQUIRE_OK(
	    vmm_mem_create(&r->mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	REQUIRE_OK(ember_loop_create(&r->loop));
	char msg[256];
	pthread_mutex_init(&r->dev_lock, NULL);
	REQUIRE_OK(vmm_vsock_host_create(r->loop, r->path, &r->dev_lock, &r->paused, &r->host, msg,
					 sizeof(msg)));
	struct virtio_mmio_config cfg = {.mem = &r->mem};
	struct virtio_vsock_options o = {
	    .guest_cid = CID, .host_ops = &vmm_vsock_host_ops, .host = r->host};
	REQUIRE_OK(virtio_vsock_create(cfg, &o, &r->v, &r->t));
	vmm_vsock_host_bind(r->host, r->v);
	REQUIRE_OK(vmm_vsock_host_start(r->host));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->m = (struct tdrv_mmio){.bus = r->bus, .base = BASE};
	driver_up(r);
}

static void rig_fini(struct rig *r)
{
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_vsock_destroy(r->v);
	vmm_vsock_host_destroy(r->host);
	ember_loop_destroy(r->loop);
	pthread_mutex_destroy(&r->dev_lock);
	vmm_mem_destroy(&r->mem);
	struct stat st;
	CHECK(stat(r->path, &st) < 0); /* the socket file is gone */
	rmdir(r->dir);
}

/* The guest sends one packet (header + payload, two descriptors). */
static void g_send_raw(struct rig *r, const struct virtio_vsock_pkt *p, const void *data,
		       uint32_t len, uint32_t desc_len)
{
	struct tdrv_queue *q = &r->q[1];
	uint8_t raw[VIRTIO_VSOCK_HDR_BYTES];
	virtio_vsock_hdr_encode(p, raw);
	REQUIRE_OK(vmm_mem_write(&r->mem, HDR_GPA, raw, sizeof(raw)));
	if (len)
		REQUIRE_OK(vmm_mem_write(&r->mem, DATA_GPA, data, len));
	tdrv_desc(q, q->desc, 0, HDR_GPA, VIRTIO_VSOCK_HDR_BYTES, desc_len ? VRING_DESC_F_NEXT : 0,
		  1);
	if (desc_len)
		tdrv_desc(q, q->desc, 1, DATA_GPA, desc_len, 0, 0);
	tdrv_publish(q, 0);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
}

static void g_send(struct rig *r, uint16_t op, uint32_t gport, uint32_t hport, uint32_t flags,
		   const void *data, uint32_t len)
{
	struct virtio_vsock_pkt p = {.src_cid = CID,
				     .dst_cid = VIRTIO_VSOCK_HOST_CID,
				     .src_port = gport,
				     .dst_port = hport,
				     .len = len,
				     .type = VIRTIO_VSOCK_TYPE_STREAM,
				     .op = op,
				     .flags = flags,
				     .buf_alloc = GBUF,
				     .fwd_cnt = r->g_fwd};
	g_send_raw(r, &p, data, len, len);
}

/* Runs the loop until nothing happens. */
static void spin(struct rig *r)
{
	for (int i = 0; i < 50; i++)
		if (ember_loop_run_once(r->loop, i < 2 ? 5 : 0) == 0 && i >= 2)
			break;
}

/* Nothing to do for the loop: a source that fires on every round would make
 * each of these polls run a callback; the muxer's deadline timer (one per
 * second) may take one of them. */
static bool loop_idle(struct rig *r)
{
	int busy = 0;
	for (int i = 0; i < 5; i++)
		busy += ember_loop_run_once(r->loop, 0) > 0;
	return busy <= 1;
}

/* The next packet the device put in the rx queue (the buffer is posted
 * again); false if there is none. */
static bool g_recv(struct rig *r, struct gpkt *out)
{
	uint16_t used = tdrv_rd16(&r->mem, r->q[0].used + 2);
	if (used == r->rx_used) {
		spin(r);
		used = tdrv_rd16(&r->mem, r->q[0].used + 2);
		if (used == r->rx_used)
			return false;
	}
	uint64_t e = r->q[0].used + 4 + 8ull * (r->rx_used % QSZ);
	uint32_t id = tdrv_rd32(&r->mem, e), len = tdrv_rd32(&r->mem, e + 4);
	r->rx_used++;
	REQUIRE(id < NRX);
	REQUIRE(len >= VIRTIO_VSOCK_HDR_BYTES && len <= RXBUF);
	uint8_t raw[VIRTIO_VSOCK_HDR_BYTES];
	REQUIRE_OK(vmm_mem_read(&r->mem, RX_GPA + 0x2000ull * id, raw, sizeof(raw)));
	virtio_vsock_hdr_decode(raw, &out->h);
	CHECK_EQ(out->h.len, len - VIRTIO_VSOCK_HDR_BYTES);
	CHECK_EQ(out->h.src_cid, VIRTIO_VSOCK_HOST_CID);
	CHECK_EQ(out->h.dst_cid, CID);
	CHECK_EQ(out->h.type, VIRTIO_VSOCK_TYPE_STREAM);
	REQUIRE_OK(vmm_mem_read(&r->mem, RX_GPA + 0x2000ull * id + VIRTIO_VSOCK_HDR_BYTES,
				out->data, out->h.len));
	rx_post(r, (uint16_t)id);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	return true;
}

static int listen_at(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	unlink(path);
	REQUIRE_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
	REQUIRE_OK(listen(fd, 8));
	return fd;
}

static int connect_to(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	REQUIRE_OK(connect(fd, (struct sockaddr *)&a, sizeof(a)));
	return fd;
}

/* Reads what is there within a short wait. */
static ssize_t read_some(int fd, void *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 200) <= 0)
		return -EAGAIN;
	return read(fd, buf, len);
}

/* A guest connection to host port 5000 with a listener there; returns the
 * host end. */
static int guest_connect(struct rig *r, uint32_t gport, int lfd)
{
	g_send(r, VIRTIO_VSOCK_OP_REQUEST, gport, 5000, 0, NULL, 0);
	struct gpkt p;
	REQUIRE(g_recv(r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
	CHECK_EQ(p.h.src_port, 5000);
	CHECK_EQ(p.h.dst_port, gport);
	CHECK_EQ(p.h.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	REQUIRE(c >= 0);
	return c;
}

TEST(virtio_vsock_guest_to_host_connection_and_data)
{
	struct rig r;
	rig_init(&r);
	uint64_t cid = 0;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG, &cid, 8, false, 0);
	CHECK_EQ(cid, CID);
	char lpath[128];
	snprintf(lpath, sizeof(lpath), "%s_5000", r.path);
	int lfd = listen_at(lpath);
	int c = guest_connect(&r, 1234, lfd);

	/* guest -> host */
	g_send(&r, VIRTIO_VSOCK_OP_RW, 1234, 5000, 0, "world", 5);
	char buf[64] = {0};
	CHECK_EQ(read_some(c, buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "world", 5));
	/* host -> guest */
	REQUIRE_EQ(write(c, "hello", 5), 5);
	struct gpkt p;
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
	CHECK_EQ(p.h.len, 5);
	CHECK(!memcmp(p.data, "hello", 5));
	CHECK_EQ(p.h.fwd_cnt, 5); /* the 5 guest bytes went to the host */

	/* nobody listens on 5001: RST */
	g_send(&r, VIRTIO_VSOCK_OP_REQUEST, 1235, 5001, 0, NULL, 0);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	CHECK_EQ(p.h.dst_port, 1235);

	/* the host closes: SHUTDOWN(SEND) to the guest; the guest closes: RST */
	close(c);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	CHECK_EQ(p.h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	/* half-open now: the hung-up socket must not keep the loop busy */
	spin(&r);
	CHECK(loop_idle(&r));
	g_send(&r, VIRTIO_VSOCK_OP_SHUTDOWN, 1234, 5000,
	       VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV, NULL, 0);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	spin(&r);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(r.v, &st);
	CHECK_EQ(st.conns, 0);
	CHECK_EQ(st.opened, 1);
	CHECK_EQ(st.refused, 1);
	CHECK_EQ(st.tx_bytes, 5);
	CHECK_EQ(st.rx_bytes, 5);
	CHECK_EQ(st.bad_packets, 0);
	close(lfd);
	unlink(lpath);
	rig_fini(&r);
}

TEST(virtio_vsock_paused_vm_serves_no_socket)
{
	struct rig r;
	rig_init(&r);
	char lpath[128];
	snprintf(lpath, sizeof(lpath), "%s_5000", r.path);
	int lfd = listen_at(lpath);
	int c = guest_connect(&r, 1234, lfd);
	pthread_mutex_lock(&r.dev_lock);
	r.paused = true;
	pthread_mutex_unlock(&r.dev_lock);
	REQUIRE_EQ(write(c, "abc", 3), 3);
	struct gpkt p;
	CHECK(!g_recv(&r, &p)); /* nothing reaches the guest while paused */
	CHECK(loop_idle(&r));	/* and the loop does not spin */
	pthread_mutex_lock(&r.dev_lock);
	r.paused = false;
	vmm_vsock_host_resume(r.host);
	pthread_mutex_unlock(&r.dev_lock);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
	CHECK_EQ(p.h.len, 3);
	CHECK(!memcmp(p.data, "abc", 3));
	close(c);
	close(lfd);
	unlink(lpath);
	rig_fini(&r);
}

TEST(virtio_vsock_host_to_guest_connect_protocol)
{
	struct rig r;
	rig_init(&r);
	int c = connect_to(r.path);
	REQUIRE_EQ(write(c, "CONNECT 52\n", 11), 11);
	struct gpkt p;
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	CHECK_EQ(p.h.dst_port, 52);
	uint32_t hport = p.h.src_port;
	CHECK(hport >= VIRTIO_VSOCK_LOCAL_PORT_BASE);
	g_send(&r, VIRTIO_VSOCK_OP_RESPONSE, 52, hport, 0, NULL, 0);
	spin(&r);
	char buf[64] = {0}, want[32];
	snprintf(want, sizeof(want), "OK %u\n", hport);
	CHECK_EQ(read_some(c, buf, sizeof(buf)), (ssize_t)strlen(want));
	CHECK_STR(buf, want);
	/* data both ways */
	REQUIRE_EQ(write(c, "ping", 4), 4);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
	CHECK_EQ(p.h.len, 4);
	CHECK(!memcmp(p.data, "ping", 4));
	g_send(&r, VIRTIO_VSOCK_OP_RW, 52, hport, 0, "pong!", 5);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(read_some(c, buf, sizeof(buf)), 5);
	CHECK_STR(buf, "pong!");
	/* the guest resets it: the host end is closed */
	g_send(&r, VIRTIO_VSOCK_OP_RST, 52, hport, 0, NULL, 0);
	spin(&r);
	CHECK_EQ(read_some(c, buf, sizeof(buf)), 0);
	close(c);

	/* a refused one (the guest answers RST): closed without OK */
	c = connect_to(r.path);
	REQUIRE_EQ(write(c, "CONNECT 53\n", 11), 11);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	CHECK_EQ(p.h.dst_port, 53);
	CHECK(p.h.src_port != hport);
	g_send(&r, VIRTIO_VSOCK_OP_RST, 53, p.h.src_port, 0, NULL, 0);
	spin(&r);
	CHECK_EQ(read_some(c, buf, sizeof(buf)), 0);
	close(c);

	/* too slow: a client that sends no CONNECT line, and one the guest
	 * does not answer, are closed at the deadline (the guest gets RST) */
	vmm_vsock_host_set_timeout(r.host, 100);
	int quiet = connect_to(r.path);
	c = connect_to(r.path);
	REQUIRE_EQ(write(c, "CONNECT 54\n", 11), 11);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	CHECK_EQ(p.h.dst_port, 54);
	uint32_t unanswered = p.h.src_port;
	for (int i = 0; i < 40; i++)
		ember_loop_run_once(r.loop, 10);
	CHECK_EQ(read_some(quiet, buf, sizeof(buf)), 0);
	CHECK_EQ(read_some(c, buf, sizeof(buf)), 0);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	CHECK_EQ(p.h.src_port, unanswered);
	CHECK_EQ(p.h.dst_port, 54);
	close(quiet);
	close(c);
	vmm_vsock_host_set_timeout(r.host, VMM_VSOCK_CONNECT_TIMEOUT_MS);

	/* a bad line: closed */
	c = connect_to(r.path);
	REQUIRE_EQ(write(c, "HELLO 52\n", 9), 9);
	spin(&r);
	CHECK_EQ(read_some(c, buf, sizeof(buf)), 0);
	close(c);
	CHECK(!g_recv(&r, &p));
	rig_fini(&r);
}

/* FNV-1a over a stream. */
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* The guest sends 4 KiB chunks of a pattern while its credit allows. */
static void send_by_credit(struct rig *r, uint32_t total, uint32_t *sent, uint32_t fwd,
			   uint64_t *hs)
{
	uint8_t chunk[4096];
	while (*sent < total && VIRTIO_VSOCK_BUF_ALLOC - (*sent - fwd) >= sizeof(chunk)) {
		for (unsigned i = 0; i < sizeof(chunk); i++)
			chunk[i] = (uint8_t)((*sent + i) * 7 + (*sent + i) / 4093);
		g_send(r, VIRTIO_VSOCK_OP_RW, 1234, 5000, 0, chunk, sizeof(chunk));
		*hs = fnv(*hs, chunk, sizeof(chunk));
		*sent += sizeof(chunk);
	}
}

TEST(virtio_vsock_credit_stalls_the_guest_not_drops)
{
	struct rig r;
	rig_init(&r);
	char lpath[128];
	snprintf(lpath, sizeof(lpath), "%s_5000", r.path);
	int lfd = listen_at(lpath);
	int c = guest_connect(&r, 1234, lfd);
	int sz = 4096;
	setsockopt(c, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));

	/* the guest writes 1 MiB as its credit allows; the host reads nothing
	 * at first */
	const uint32_t total = 1u << 20;
	uint32_t sent = 0, fwd = 0, got = 0;
	uint64_t hs = 0xcbf29ce484222325ull, hr = hs;
	uint8_t in[65536];
	struct gpkt p;
	/* phase 1, nobody reads: the guest sends while it has credit, until
	 * the credit stops coming */
	for (;;) {
		send_by_credit(&r, total, &sent, fwd, &hs);
		uint32_t before = fwd;
		while (g_recv(&r, &p)) {
			CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
			fwd = p.h.fwd_cnt;
		}
		if (fwd == before)
			break;
	}
	/* stalled by credit: out of it, nothing dropped or reset */
	CHECK(sent < total);
	CHECK(VIRTIO_VSOCK_BUF_ALLOC - (sent - fwd) < 4096);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(r.v, &st);
	CHECK_EQ(st.conns, 1);
	CHECK_EQ(st.bad_packets, 0);
	CHECK_EQ(st.tx_bytes, sent);
	/* phase 2: the host reads; everything arrives, in order */
	unsigned idle = 0;
	while (got < total && idle < 100) {
		send_by_credit(&r, total, &sent, fwd, &hs);
		ssize_t n = read_some(c, in, sizeof(in));
		if (n > 0) {
			hr = fnv(hr, in, (size_t)n);
			got += (uint32_t)n;
			idle = 0;
		} else {
			idle++;
		}
		while (g_recv(&r, &p)) {
			CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
			fwd = p.h.fwd_cnt;
		}
	}
	CHECK_EQ(sent, total);
	CHECK_EQ(got, total);
	CHECK_EQ(hs, hr);

	/* host -> guest: the device sends no more than the guest's credit,
	 * then asks for credit */
	r.g_fwd = 0;
	g_send(&r, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 1234, 5000, 0, NULL, 0);
	struct virtio_vsock_pkt small = {.src_cid = CID,
					 .dst_cid = VIRTIO_VSOCK_HOST_CID,
					 .src_port = 1234,
					 .dst_port = 5000,
					 .type = VIRTIO_VSOCK_TYPE_STREAM,
					 .op = VIRTIO_VSOCK_OP_CREDIT_UPDATE,
					 .buf_alloc = 6000,
					 .fwd_cnt = 0};
	g_send_raw(&r, &small, NULL, 0, 0);
	memset(in, 0x5a, 20000);
	REQUIRE_EQ(write(c, in, 20000), 20000);
	uint32_t rx = 0;
	bool asked = false;
	while (g_recv(&r, &p)) {
		if (p.h.op == VIRTIO_VSOCK_OP_RW)
			rx += p.h.len;
		else if (p.h.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST)
			asked = true;
	}
	CHECK_EQ(rx, 6000);
	CHECK(asked);
	/* the guest consumed it all: the rest comes */
	small.fwd_cnt = 6000;
	small.buf_alloc = GBUF;
	g_send_raw(&r, &small, NULL, 0, 0);
	while (g_recv(&r, &p))
		if (p.h.op == VIRTIO_VSOCK_OP_RW)
			rx += p.h.len;
	CHECK_EQ(rx, 20000);
	close(c);
	close(lfd);
	unlink(lpath);
	rig_fini(&r);
}

TEST(virtio_vsock_control_packets_before_data)
{
	struct rig r;
	rig_init(&r);
	char lpath[128];
	snprintf(lpath, sizeof(lpath), "%s_5000", r.path);
	int lfd = listen_at(lpath);
	int c = guest_connect(&r, 1234, lfd);
	/* the host sends more than the rx buffers hold: all NRX fill up with
	 * data and the connection still has data to send */
	uint8_t buf[65536];
	memset(buf, 0x42, sizeof(buf));
	REQUIRE_EQ(write(c, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	spin(&r);
	/* another connection's RESPONSE takes the next free buffer */
	g_send(&r, VIRTIO_VSOCK_OP_REQUEST, 1235, 5000, 0, NULL, 0);
	struct gpkt p;
	unsigned rw_before = 0;
	bool response = false;
	while (!response && g_recv(&r, &p)) {
		if (p.h.op == VIRTIO_VSOCK_OP_RW)
			rw_before++;
		response = p.h.op == VIRTIO_VSOCK_OP_RESPONSE && p.h.dst_port == 1235;
	}
	CHECK(response);
	CHECK_EQ(rw_before, NRX); /* only what was in the ring already */
	int c2 = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(c2 >= 0);
	close(c2);
	close(c);
	close(lfd);
	unlink(lpath);
	rig_fini(&r);
}

TEST(virtio_vsock_bad_packets_and_unknown_ports)
{
	struct rig r;
	rig_init(&r);
	struct gpkt p;
	/* data for a connection that does not exist: RST */
	g_send(&r, VIRTIO_VSOCK_OP_RW, 99, 98, 0, "x", 1);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	CHECK_EQ(p.h.src_port, 98);
	CHECK_EQ(p.h.dst_port, 99);
	/* an RST for nothing: no answer */
	g_send(&r, VIRTIO_VSOCK_OP_RST, 99, 98, 0, NULL, 0);
	CHECK(!g_recv(&r, &p));
	/* a bad op and a bad type: RST */
	g_send(&r, 77, 99, 98, 0, NULL, 0);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	struct virtio_vsock_pkt h = {.src_cid = CID,
				     .dst_cid = VIRTIO_VSOCK_HOST_CID,
				     .src_port = 99,
				     .dst_port = 98,
				     .type = VIRTIO_VSOCK_TYPE_SEQPACKET,
				     .op = VIRTIO_VSOCK_OP_REQUEST};
	g_send_raw(&r, &h, NULL, 0, 0);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	/* a wrong source cid: dropped */
	h.type = VIRTIO_VSOCK_TYPE_STREAM;
	h.src_cid = CID + 1;
	g_send_raw(&r, &h, NULL, 0, 0);
	CHECK(!g_recv(&r, &p));
	/* len beyond the chain, beyond the maximum, a short header */
	h.src_cid = CID;
	h.op = VIRTIO_VSOCK_OP_RW;
	h.len = 4096;
	g_send_raw(&r, &h, "abc", 3, 3);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	h.len = 0xffffffffu;
	g_send_raw(&r, &h, "abc", 3, 3);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	struct tdrv_queue *q = &r.q[1];
	tdrv_desc(q, q->desc, 0, HDR_GPA, 10, 0, 0);
	tdrv_publish(q, 0);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	CHECK(!g_recv(&r, &p));
	/* every tx chain came back */
	CHECK_EQ(tdrv_rd16(&r.mem, q->used + 2), q->avail_idx);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(r.v, &st);
	CHECK_EQ(st.bad_packets, 6);
	CHECK_EQ(virtio_mmio_status(r.t) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);

	/* an established connection that gets a bad packet is reset, and the
	 * device goes on serving new ones */
	char lpath[128];
	snprintf(lpath, sizeof(lpath), "%s_5000", r.path);
	int lfd = listen_at(lpath);
	int c = guest_connect(&r, 1234, lfd);
	h.src_port = 1234;
	h.dst_port = 5000;
	h.len = 100;
	g_send_raw(&r, &h, "abc", 3, 3);
	REQUIRE(g_recv(&r, &p));
	CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	spin(&r);
	char buf[8];
	CHECK_EQ(read_some(c, buf, sizeof(buf)), 0); /* the host end was closed */
	close(c);
	c = guest_connect(&r, 1235, lfd);
	g_send(&r, VIRTIO_VSOCK_OP_RW, 1235, 5000, 0, "ok", 2);
	CHECK_EQ(read_some(c, buf, sizeof(buf)), 2);
	close(c);
	close(lfd);
	unlink(lpath);
	rig_fini(&r);
}

TEST(virtio_vsock_connection_table_is_bounded)
{
	/* two descriptors per connection (the test's end and the muxer's) */
	struct rlimit rl;
	REQUIRE_OK(getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_cur < 2 * VIRTIO_VSOCK_MAX_CONNS + 64) {
		if (rl.rlim_max < 2 * VIRTIO_VSOCK_MAX_CONNS + 64)
			TEST_SKIP("RLIMIT_NOFILE's hard limit %llu is below the %u descriptors "
				  "this test needs",
				  (unsigned long long)rl.rlim_max, 2 * VIRTIO_VSOCK_MAX_CONNS + 64);
		rl.rlim_cur = rl.rlim_max;
		REQUIRE_OK(setrlimit(RLIMIT_NOFILE, &rl));
	}
	struct rig r;
	rig_init(&r);
	char lpath[128];
	snprintf(lpath, sizeof(lpath), "%s_5000", r.path);
	int lfd = listen_at(lpath);
	static int fds[VIRTIO_VSOCK_MAX_CONNS];
	struct gpkt p;
	unsigned ok = 0;
	for (unsigned i = 0; i <= VIRTIO_VSOCK_MAX_CONNS; i++) {
		g_send(&r, VIRTIO_VSOCK_OP_REQUEST, 10000 + i, 5000, 0, NULL, 0);
		REQUIRE(g_recv(&r, &p));
		if (i < VIRTIO_VSOCK_MAX_CONNS) {
			CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RESPONSE);
			fds[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			ok += fds[i] >= 0;
		} else {
			CHECK_EQ(p.h.op, VIRTIO_VSOCK_OP_RST); /* one too many */
		}
	}
	CHECK_EQ(ok, VIRTIO_VSOCK_MAX_CONNS);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(r.v, &st);
	CHECK_EQ(st.conns, VIRTIO_VSOCK_MAX_CONNS);
	CHECK_EQ(st.peak, VIRTIO_VSOCK_MAX_CONNS);
	CHECK_EQ(st.refused, 1);
	/* a driver reset closes them all */
	tdrv_wr(&r.m, VIRTIO_MMIO_STATUS, 0);
	virtio_vsock_get_stats(r.v, &st);
	CHECK_EQ(st.conns, 0);
	spin(&r);
	char b;
	CHECK_EQ(read_some(fds[0], &b, 1), 0);
	for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
		close(fds[i]);
	/* the driver comes back (a module reload): connections work again */
	driver_up(&r);
	int c = guest_connect(&r, 1234, lfd);
	g_send(&r, VIRTIO_VSOCK_OP_RW, 1234, 5000, 0, "again", 5);
	char buf[8];
	CHECK_EQ(read_some(c, buf, sizeof(buf)), 5);
	close(c);
	close(lfd);
	unlink(lpath);
	rig_fini(&r);
}

TEST(virtio_vsock_header_check)
{
	struct virtio_vsock_pkt p = {.src_cid = 5,
				     .dst_cid = 2,
				     .type = VIRTIO_VSOCK_TYPE_STREAM,
				     .op = VIRTIO_VSOCK_OP_RW,
				     .len = 10};
	CHECK_OK(virtio_vsock_hdr_check(&p, 5, 10));
	CHECK_ERR(virtio_vsock_hdr_check(&p, 5, 9), -EINVAL);
	CHECK_ERR(virtio_vsock_hdr_check(&p, 6, 10), -EADDRNOTAVAIL);
	p.op = VIRTIO_VSOCK_OP_SHUTDOWN;
	CHECK_ERR(virtio_vsock_hdr_check(&p, 5, 10), -EINVAL); /* payload on a control op */
	p.op = 0;
	CHECK_ERR(virtio_vsock_hdr_check(&p, 5, 10), -EPROTO);
	p.op = VIRTIO_VSOCK_OP_RW;
	p.len = VIRTIO_VSOCK_MAX_PKT + 1;
	CHECK_ERR(virtio_vsock_hdr_check(&p, 5, UINT32_MAX), -EINVAL);
	uint8_t raw[VIRTIO_VSOCK_HDR_BYTES];
	virtio_vsock_hdr_encode(&p, raw);
	struct virtio_vsock_pkt q;
	virtio_vsock_hdr_decode(raw, &q);
	CHECK_EQ(q.src_cid, 5);
	CHECK_EQ(q.dst_cid, 2);
	CHECK_EQ(q.type, VIRTIO_VSOCK_TYPE_STREAM);
	CHECK_EQ(q.op, VIRTIO_VSOCK_OP_RW);
	CHECK_EQ(q.len, VIRTIO_VSOCK_MAX_PKT + 1);
	uint8_t raw2[VIRTIO_VSOCK_HDR_BYTES];
	virtio_vsock_hdr_encode(&q, raw2);
	CHECK(!memcmp(raw, raw2, sizeof(raw)));
	CHECK_EQ(raw[30], VIRTIO_VSOCK_OP_RW); /* op at byte 30, little-endian */
	/* the path checks: too long, not a socket */
	char msg[256], lng[200];
	memset(lng, 'a', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = 0;
	CHECK_ERR(vmm_vsock_host_check_path(lng, msg, sizeof(msg)), -ENAMETOOLONG);
	CHECK_ERR(vmm_vsock_host_check_path("/dev/null", msg, sizeof(msg)), -EEXIST);
	/* a live socket is refused, a stale one (nobody listens) replaced */
	char dir[] = "/tmp/ember-vsock-XXXXXX", path[64];
	REQUIRE(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	int l = listen_at(path);
	CHECK_ERR(vmm_vsock_host_check_path(path, msg, sizeof(msg)), -EEXIST);
	struct ember_loop *loop;
	REQUIRE_OK(ember_loop_create(&loop));
	struct vmm_vsock_host *h = NULL;
	CHECK_ERR(vmm_vsock_host_create(loop, path, NULL, NULL, &h, msg, sizeof(msg)), -EEXIST);
	close(l);
	CHECK_OK(vmm_vsock_host_check_path(path, msg, sizeof(msg)));
	REQUIRE_OK(vmm_vsock_host_create(loop, path, NULL, NULL, &h, msg, sizeof(msg)));
	close(connect_to(path)); /* it listens there now */
	vmm_vsock_host_destroy(h);
	struct stat st;
	CHECK(lstat(path, &st) < 0);
	ember_loop_destroy(loop);
	rmdir(dir);
}

/* ------------------------------------------------------------ saved state */

/* A device with guest CID cid on r's bus and memory, no muxer. */
static void state_device(struct rig *r, uint64_t cid)
{
	if (r->bus) {
		bus_destroy(r->bus);
		dev_destroy(virtio_mmio_dev(r->t));
		virtio_vsock_destroy(r->v);
	}
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	struct virtio_vsock_options o = {.guest_cid = cid, .host_ops = &vsock_nop_ops};
	REQUIRE_OK(
	    virtio_vsock_create((struct virtio_mmio_config){.mem = &r->mem}, &o, &r->v, &r->t));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->m = (struct tdrv_mmio){.bus = r->bus, .base = BASE};
}

static void event_post(struct rig *r, uint16_t i)
{
	tdrv_desc(&r->q[2], r->q[2].desc, i, 0x30000ull + 0x100 * i, 8, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r->q[2], i);
}

TEST(virtio_vsock_state_load_resets_the_transport_and_keeps_the_cid)
{
	struct rig r;
	memset(&r, 0, sizeof(r));
	REQUIRE_OK(
	    vmm_mem_create(&r.mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	state_device(&r, CID);
	driver_up(&r);
	size_t len0;
	uint8_t *buf0 = state_take(state_dev_save, virtio_mmio_dev(r.t), &len0);
	event_post(&r, 0);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[2].used + 2), 0); /* event buffers wait */
	size_t len;
	uint8_t *buf = state_take(state_dev_save, virtio_mmio_dev(r.t), &len);

	/* a fresh device whose configuration gives another CID */
	state_device(&r, 9);
	memset(r.mem.host + 0x30000, 0xee, 8);
	REQUIRE_OK(state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, NULL, 0));
	uint64_t cid = 0;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG, &cid, 8, false, 0);
	CHECK_EQ(cid, CID);
	/* the transport reset event, in the buffer posted before the save */
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[2].used + 2), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, r.q[2].used + 4), 0);
	CHECK_EQ(tdrv_rd32(&r.mem, r.q[2].used + 8), 4);
	CHECK_EQ(tdrv_rd32(&r.mem, 0x30000), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(r.v, &st);
	CHECK_EQ(st.transport_resets, 1);
	/* the guest's packets are checked against the kept CID: a request to
	 * a port nobody listens on is answered (RST) */
	struct virtio_vsock_pkt p = {.src_cid = CID,
				     .dst_cid = VIRTIO_VSOCK_HOST_CID,
				     .src_port = 1000,
				     .dst_port = 5000,
				     .type = VIRTIO_VSOCK_TYPE_STREAM,
				     .op = VIRTIO_VSOCK_OP_REQUEST,
				     .buf_alloc = GBUF};
	g_send_raw(&r, &p, NULL, 0, 0);
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[0].used + 2), 1);
	virtio_vsock_get_stats(r.v, &st);
	CHECK_EQ(st.refused, 1);
	CHECK_EQ(st.bad_packets, 0);
	/* a host connection's REQUEST waits until the driver handled the
	 * reset (it publishes an event buffer again): taken before, it would
	 * be reset with the old connections */
	virtio_vsock_handle h = 0;
	REQUIRE_OK(virtio_vsock_host_connect(r.v, &r, 5000, &h));
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 2); /* a kick, no new buffer */
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[0].used + 2), 1);
	event_post(&r, 1);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	REQUIRE(tdrv_rd16(&r.mem, r.q[0].used + 2) == 2);
	uint32_t id = tdrv_rd32(&r.mem, r.q[0].used + 4 + 8);
	REQUIRE(id < NRX);
	uint8_t raw[VIRTIO_VSOCK_HDR_BYTES];
	REQUIRE_OK(vmm_mem_read(&r.mem, RX_GPA + 0x2000ull * id, raw, sizeof(raw)));
	struct virtio_vsock_pkt req;
	virtio_vsock_hdr_decode(raw, &req);
	CHECK_EQ(req.op, VIRTIO_VSOCK_OP_REQUEST);
	CHECK_EQ(req.dst_port, 5000);

	/* no event buffer at the load (the guest's event ring as it was at
	 * the first save): the event waits for the driver's next buffer */
	state_device(&r, CID);
	uint16_t zero = 0;
	REQUIRE_OK(vmm_mem_write(&r.mem, r.q[2].avail + 2, &zero, 2));
	REQUIRE_OK(vmm_mem_write(&r.mem, r.q[2].used + 2, &zero, 2));
	r.q[2].avail_idx = 0;
	REQUIRE_OK(state_load(state_dev_load, virtio_mmio_dev(r.t), buf0, len0, NULL, 0));
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[2].used + 2), 0);
	memset(r.mem.host + 0x30100, 0xee, 8);
	event_post(&r, 1);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[2].used + 2), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, r.q[2].used + 4), 1);
	CHECK_EQ(tdrv_rd32(&r.mem, 0x30100), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	/* once */
	event_post(&r, 2);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	CHECK_EQ(tdrv_rd16(&r.mem, r.q[2].used + 2), 1);
	free(buf0);

	state_device(&r, CID);
	state_check_refusals(state_dev_save, state_dev_load, virtio_mmio_dev(r.t), buf, len);
	state_check_patched(state_dev_load, virtio_mmio_dev(r.t), buf, len, len - 12, 2,
			    "virtio-mmio/virtio-vsock: guest CID 2");
	free(buf);
	bus_destroy(r.bus);
	dev_destroy(virtio_mmio_dev(r.t));
	virtio_vsock_destroy(r.v);
	vmm_mem_destroy(&r.mem);
}
