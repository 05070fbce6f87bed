/* fuzz/fuzz_virtio_vsock.c - libFuzzer target: virtio-vsock's packet parser and connection state machine, fed guest packets and host events. */
#include "fuzz_common.h"
#include "../tests/unit/virtio_mmio_access.h"
#include "../devices/virtio/vsock.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <sys/uio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: records, each a kind byte then its operands:
 *   kind % 4 == 0: a guest packet: 44 header bytes (with bit 7 of the kind
 *     byte, the cids and type are made valid and op taken mod 8, so the
 *     state machine is reached: ports 0-3, and for the host end with bit 2
 *     set the first host-initiated ports), a payload length byte and that many bytes
 *     (the chain holds what the input has, the header's len is as given);
 *   1: a host stream event: stream selector, bytes readable, bytes the
 *     stream takes (0: -EAGAIN), bit 0x80 of the last: end of file;
 *   2: a host CONNECT: 2 bytes of guest port;
 *   3: rx buffers: count, and one length byte each.
 * The host side is a fake (no sockets). Invariants: every tx chain comes
 * back, no used length exceeds the buffer, the ring never breaks (the
 * harness writes good rings), the table stays bounded, and a driver reset at
 * the end closes every stream (none leaks).
 */
#define MEM	 (1u << 20)
#define QSZ	 16u
#define CID	 3u
#define RX_GPA	 0x20000u
#define HDR_GPA	 0x10000u
#define DATA_GPA 0x11000u
#define NSTREAMS 64u

struct fstream {
	virtio_vsock_handle h;
	uint32_t readable, room;
	bool eof, live;
};

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct tdrv_mmio m; /* the window at 0 on bus */
	struct virtio_vsock *v;
	struct virtio_mmio *t;
	struct fstream s[NSTREAMS];
	unsigned live;
	uint16_t tx_avail, rx_avail, rx_used_seen;
	uint32_t rx_len[QSZ];
};

static struct rig R;

static struct fstream *fs_new(void)
{
	for (unsigned i = 0; i < NSTREAMS; i++)
		if (!R.s[i].live) {
			R.s[i] = (struct fstream){.live = true};
			R.live++;
			return &R.s[i];
		}
	return NULL;
}

static int f_connect(void *host, uint32_t port, virtio_vsock_handle h, void **stream)
{
	(void)host;
	if (port & 1)
		return -ECONNREFUSED;
	struct fstream *s = fs_new();
	if (!s)
		return -ENOMEM;
	s->h = h;
	s->room = 1u << 20;
	*stream = s;
	return 0;
}
static void f_accepted(void *host, void *stream, uint32_t local_port)
{
	(void)host;
	FUZZ_CHECK(((struct fstream *)stream)->live);
	FUZZ_CHECK(local_port >= VIRTIO_VSOCK_LOCAL_PORT_BASE);
}
static ssize_t f_readv(void *host, void *stream, const struct iovec *iov, int n)
{
	(void)host;
	struct fstream *s = stream;
	FUZZ_CHECK(s->live && n > 0);
	if (!s->readable)
		return s->eof ? 0 : -EAGAIN;
	size_t done = 0;
	for (int i = 0; i < n && s->readable; i++) {
		size_t k = iov[i].iov_len < s->readable ? iov[i].iov_len : s->readable;
		memset(iov[i].iov_base, 0x5a, k); /* the buffer is really guest RAM */
		s->readable -= (uint32_t)k;
		done += k;
	}
	return (ssize_t)done;
}
static ssize_t f_writev(void *host, void *stream, const struct iovec *iov, int n)
{
	(void)host;
	struct fstream *s = stream;
	FUZZ_CHECK(s->live && n > 0);
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		volatile const uint8_t *p = iov[i].iov_base;
		if (iov[i].iov_len)
			(void)p[iov[i].iov_len - 1]; /* readable, or ASan says */
		total += iov[i].iov_len;
	}
	if (!s->room)
		return -EAGAIN;
	size_t k = total < s->room ? total : s->room;
	s->room -= (uint32_t)k;
	return (ssize_t)k;
}
static void f_watch(void *host, void *stream, bool rd, bool wr)
{
	(void)host;
	(void)rd;
	(void)wr;
	FUZZ_CHECK(((struct fstream *)stream)->live);
}
static void f_shutdown(void *host, void *stream)
{
	(void)host;
	FUZZ_CHECK(((struct fstream *)stream)->live);
}
static void f_close(void *host, void *stream)
{
	(void)host;
	struct fstream *s = stream;
	FUZZ_CHECK(s->live);
	s->live = false;
	R.live--;
}

static const struct virtio_vsock_host_ops fops = {
    .connect = f_connect,
    .accepted = f_accepted,
    .readv = f_readv,
    .writev = f_writev,
    .watch = f_watch,
    .shutdown = f_shutdown,
    .close = f_close,
};

static uint16_t ld16(uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, R.mem.host + gpa, 2);
	return v;
}
static void st16(uint64_t gpa, uint16_t v)
{
	memcpy(R.mem.host + gpa, &v, 2);
}
/* queue i: descriptors at 0x1000 * (3i + 1), avail next, used next */
static uint64_t qdesc(unsigned i)
{
	return 0x1000ull * (3 * i + 1);
}
static void desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = R.mem.host + qdesc(q) + 16ull * i;
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}
static void publish(unsigned q, uint16_t *idx, uint16_t head)
{
	uint64_t avail = qdesc(q) + 0x1000;
	st16(avail + 4 + 2ull * (*idx % QSZ), head);
	(*idx)++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	st16(avail + 2, *idx);
	tdrv_wr(&R.m, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static void rig_init(void)
{
	static int ready;
	if (ready)
		return;
	if (vmm_mem_create(&R.mem, MEM, MEM, MEM, EMBER_MEM_ANON, false, NULL) < 0 ||
	    bus_create("mmio", UINT64_MAX, &R.bus) < 0)
		abort();
	struct virtio_mmio_config cfg = {.mem = &R.mem};
	struct virtio_vsock_options o = {.guest_cid = CID, .host_ops = &fops};
	if (virtio_vsock_create(cfg, &o, &R.v, &R.t) < 0 ||
	    dev_register(R.bus, 0, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(R.t)) < 0)
		abort();
	R.m = (struct tdrv_mmio){.bus = R.bus};
	ready = 1;
}

static void driver_up(void)
{
	memset(R.mem.host, 0, 0x20000);
	R.tx_avail = R.rx_avail = R.rx_used_seen = 0;
	tdrv_wr(&R.m, VIRTIO_MMIO_STATUS, 0);
	tdrv_wr(&R.m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	tdrv_accept(&R.m, 1ull << VIRTIO_F_VERSION_1);
	for (unsigned q = 0; q < 3; q++) {
		tdrv_wr(&R.m, VIRTIO_MMIO_QUEUE_SEL, q);
		tdrv_wr(&R.m, VIRTIO_MMIO_QUEUE_NUM, QSZ);
		tdrv_wr(&R.m, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)qdesc(q));
		tdrv_wr(&R.m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)qdesc(q) + 0x1000);
		tdrv_wr(&R.m, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)qdesc(q) + 0x2000);
		tdrv_wr(&R.m, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	tdrv_wr(&R.m, VIRTIO_MMIO_STATUS,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		    VIRTIO_CONFIG_S_DRIVER_OK);
	FUZZ_CHECK(tdrv_rd(&R.m, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK);
}

/* The rx used entries so far are within their buffers. */
static void check_rx(void)
{
	uint64_t used = qdesc(0) + 0x2000;
	uint16_t idx = ld16(used + 2);
	FUZZ_CHECK((uint16_t)(idx - R.rx_used_seen) <= (uint16_t)(R.rx_avail - R.rx_used_seen));
	for (; R.rx_used_seen != idx; R.rx_used_seen++) {
		uint8_t *e = R.mem.host + used + 4 + 8ull * (R.rx_used_seen % QSZ);
		uint32_t id, len;
		memcpy(&id, e, 4);
		memcpy(&len, e + 4, 4);
		FUZZ_CHECK(id < QSZ);
		FUZZ_CHECK(len <= R.rx_len[id]);
		FUZZ_CHECK(len == 0 || len >= VIRTIO_VSOCK_HDR_BYTES);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rig_init();
	driver_up();
	size_t i = 0;
	while (i < size) {
		uint8_t kind = data[i++];
		switch (kind % 4) {
		case 0: {
			if (size - i < VIRTIO_VSOCK_HDR_BYTES + 1)
				return 0;
			uint8_t raw[VIRTIO_VSOCK_HDR_BYTES];
			memcpy(raw, data + i, sizeof(raw));
			i += sizeof(raw);
			if (kind & 0x80) {
				struct virtio_vsock_pkt p;
				virtio_vsock_hdr_decode(raw, &p);
				p.src_cid = CID;
				p.dst_cid = VIRTIO_VSOCK_HOST_CID;
				p.type = VIRTIO_VSOCK_TYPE_STREAM;
				p.op %= 8;
				p.src_port %= 4;
				/* bit 2: one of the first host-initiated ports */
				p.dst_port = (p.dst_port & 4 ? VIRTIO_VSOCK_LOCAL_PORT_BASE : 0) +
					     p.dst_port % 4;
				virtio_vsock_hdr_encode(&p, raw);
			}
			uint32_t plen = data[i++];
			if (plen > size - i)
				plen = (uint32_t)(size - i);
			memcpy(R.mem.host + HDR_GPA, raw, sizeof(raw));
			memcpy(R.mem.host + DATA_GPA, data + i, plen);
			i += plen;
			desc(1, 0, HDR_GPA, sizeof(raw), plen ? VRING_DESC_F_NEXT : 0, 1);
			desc(1, 1, DATA_GPA, plen, 0, 0);
			publish(1, &R.tx_avail, 0);
			FUZZ_CHECK(ld16(qdesc(1) + 0x2000 + 2) == R.tx_avail); /* returned */
			break;
		}
		case 1: {
			if (size - i < 3)
				return 0;
			struct fstream *s = &R.s[data[i] % NSTREAMS];
			if (s->live) {
				s->readable += data[i + 1] * 64u;
				s->room += (data[i + 2] & 0x7f) * 64u;
				s->eof |= data[i + 2] & 0x80;
				virtio_vsock_host_ready(R.v, s->h, true, true);
			}
			i += 3;
			break;
		}
		case 2: {
			if (size - i < 2)
				return 0;
			struct fstream *s = fs_new();
			uint16_t port;
			memcpy(&port, data + i, 2);
			i += 2;
			if (s && virtio_vsock_host_connect(R.v, s, port, &s->h) < 0) {
				s->live = false;
				R.live--;
			}
			break;
		}
		case 3: {
			if (size - i < 1)
				return 0;
			unsigned n = data[i++] % 8;
			for (unsigned k = 0; k < n && i < size; k++) {
				if ((uint16_t)(R.rx_avail - R.rx_used_seen) >= QSZ)
					break;
				uint16_t id = (uint16_t)(R.rx_avail % QSZ);
				uint32_t len = data[i++] * 32u;
				R.rx_len[id] = len;
				desc(0, id, RX_GPA + 0x1000ull * id, len, VRING_DESC_F_WRITE, 0);
				publish(0, &R.rx_avail, id);
			}
			break;
		}
		}
		check_rx();
		FUZZ_CHECK(!(tdrv_rd(&R.m, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
		struct virtio_vsock_stats st;
		virtio_vsock_get_stats(R.v, &st);
		FUZZ_CHECK(st.conns <= VIRTIO_VSOCK_MAX_CONNS);
	}
	tdrv_wr(&R.m, VIRTIO_MMIO_STATUS, 0); /* a reset closes every stream */
	FUZZ_CHECK(R.live == 0);
	return 0;
}
