/* devices/virtio/net.c - virtio-net: transmit and receive between the guest's rings and a tap fd, headers checked, offloads matched to the driver's. */
#include "net.h"
#include "ratelimit.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

_Static_assert(sizeof(struct virtio_net_hdr_v1) == VIRTIO_NET_HDR_BYTES, "virtio_net_hdr_v1");

#define F(x) (1ull << VIRTIO_NET_F_##x)
#define NET_FEATURES                                                                       \
	(F(CSUM) | F(GUEST_CSUM) | F(MAC) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_ECN) | \
	 F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_ECN) | F(MRG_RXBUF) | F(STATUS))

#define RX_SLOTS  64u	/* receive chains held at once */
#define SLOT_BUFS 32u	/* buffers per receive chain */
#define RX_IOV	  1024u /* UIO_MAXIOV */
#define TX_BUFS	  64u
/* the largest frame without GUEST_TSO: 1500 bytes of MTU (or the device's
 * mtu), Ethernet, VLAN */
#define FRAME_OVERHEAD (14u + 4u)
#define SMALL_FRAME    (1500u + FRAME_OVERHEAD)

struct rx_slot {
	struct vq_chain c;
	struct vq_buf bufs[SLOT_BUFS];
};

struct virtio_net {
	struct virtio_net_options opt;
	struct virtio_mmio *t;
	int fd;
	uint64_t features; /* negotiated (0 until activate) */
	bool offloads_pending;
	bool watching;
	struct virtio_dev_ops ops; /* this card's (F_MTU only with an mtu) */
	struct virtio_net_stats stats;
	/* rate limits, each direction its own buckets (under the lock) */
	struct ratelimit rl_rx, rl_tx;
	/* transmit back-pressure: the chain the fd refused with EAGAIN, kept
	 * (not returned to the driver) until the fd is writable again */
	struct vq_chain tx_c;
	bool tx_held;	  /* tx_c is popped, not yet sent */
	bool tx_blocked;  /* waiting for the fd to be writable */
	bool tx_watching; /* the last tx_watch said on */
	/* receive chains taken from the ring, not yet used: a ring of slots */
	unsigned rx_head, rx_count;
	uint64_t rx_avail; /* their writable bytes */
	unsigned rx_descs; /* their buffers */
	struct rx_slot rx[RX_SLOTS];
	struct iovec rx_iov[RX_IOV];
	struct vq_buf tx_bufs[TX_BUFS];
	struct iovec tx_iov[TX_BUFS + 1];
};

int virtio_net_fd(const struct virtio_net *net)
{
	return net->fd;
}

void virtio_net_get_stats(struct virtio_net *net, struct virtio_net_stats *out)
{
	virtio_mmio_lock(net->t);
	*out = net->stats;
	virtio_mmio_unlock(net->t);
}

static void net_config_read(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
	struct virtio_net *net = dev;
	struct virtio_net_config c;
	memset(&c, 0, sizeof(c));
	memcpy(c.mac, net->opt.mac, 6);
	c.status = VIRTIO_NET_S_LINK_UP;
	c.max_virtqueue_pairs = 1;
	c.mtu = net->opt.mtu; /* read by a driver that took VIRTIO_NET_F_MTU */
	if (off >= sizeof(c) || len > sizeof(c) - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, (const uint8_t *)&c + off, len);
}

static void set_watch(struct virtio_net *net, bool on)
{
	if (net->watching == on)
		return;
	net->watching = on;
	if (net->opt.rx_watch)
		net->opt.rx_watch(net->opt.opaque, on);
}

static void set_tx_watch(struct virtio_net *net, bool on)
{
	if (net->tx_watching == on)
		return;
	net->tx_watching = on;
	if (net->opt.tx_watch)
		net->opt.tx_watch(net->opt.opaque, on);
}

/* TUN_F_* for what the driver accepted to receive. */
static unsigned offloads_for(uint64_t f)
{
	if (!(f & F(GUEST_CSUM)))
		return 0;
	unsigned o = TUN_F_CSUM;
	if (f & F(GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (f & F(GUEST_TSO6))
		o |= TUN_F_TSO6;
	if ((f & F(GUEST_ECN)) && (o & (TUN_F_TSO4 | TUN_F_TSO6)))
		o |= TUN_F_TSO_ECN;
	return o;
}

static void apply_offloads(struct virtio_net *net)
{
	if (!net->offloads_pending)
		return;
	net->offloads_pending = false;
	unsigned o = offloads_for(net->features);
	net->stats.offloads = ioctl(net->fd, TUNSETOFFLOAD, (unsigned long)o) < 0 ? -errno : (int)o;
}

/* The largest frame the guest may be handed (header not counted). */
static uint64_t rx_need(const struct virtio_net *net)
{
	if (offloads_for(net->features) & (TUN_F_TSO4 | TUN_F_TSO6))
		return VIRTIO_NET_MAX_FRAME;
	uint64_t mtu_frame = (uint64_t)net->opt.mtu + FRAME_OVERHEAD;
	return mtu_frame > SMALL_FRAME ? mtu_frame : SMALL_FRAME;
}

static bool mergeable(const struct virtio_net *net)
{
	return net->features & F(MRG_RXBUF);
}

static void rx_clear(struct virtio_net *net)
{
	net->rx_head = net->rx_count = net->rx_descs = 0;
	net->rx_avail = 0;
}

/* Takes receive chains from the ring until they hold need bytes (one chain
 * without MRG_RXBUF). Returns 0, or -EIO (broken ring). *pushed: a bad
 * chain was returned. */
static int rx_fill(struct virtio_net *net, struct virtq *q, uint64_t need, bool *pushed)
{
	bool mrg = mergeable(net);
	while (net->rx_count < RX_SLOTS && (mrg ? net->rx_avail < need : net->rx_count == 0)) {
		struct rx_slot *s = &net->rx[(net->rx_head + net->rx_count) % RX_SLOTS];
		s->c = (struct vq_chain){.bufs = s->bufs, .max_bufs = SLOT_BUFS};
		int r = vq_pop(q, &s->c);
		if (r <= 0)
			return r == 0 ? 0 : -EIO;
		if (s->c.error || s->c.nreadable || s->c.writable_len < VIRTIO_NET_HDR_BYTES) {
			net->stats.bad_chains++;
			vq_push(q, s->c.head, 0);
			*pushed = true;
			continue;
		}
		net->rx_count++;
		net->rx_avail += s->c.writable_len;
		net->rx_descs += s->c.nbufs;
	}
	return 0;
}

/* The held chains as iovecs, at most need + header bytes. */
static unsigned rx_iov(struct virtio_net *net, uint64_t want)
{
	unsigned n = 0;
	uint64_t have = 0;
	for (unsigned i = 0; i < net->rx_count && have < want; i++) {
		const struct vq_chain *c = &net->rx[(net->rx_head + i) % RX_SLOTS].c;
		for (unsigned b = 0; b < c->nbufs && have < want; b++) {
			if (n == RX_IOV)
				return n;
			net->rx_iov[n++] =
			    (struct iovec){.iov_base = c->bufs[b].host, .iov_len = c->bufs[b].len};
			have += c->bufs[b].len;
		}
		if (!mergeable(net))
			break;
	}
	return n;
}

/* Byte off of what rx_iov describes (0 past its end). */
static uint8_t iov_byte(const struct iovec *iov, unsigned n, uint64_t off)
{
	for (unsigned i = 0; i < n; i++) {
		if (off < iov[i].iov_len)
			return ((const uint8_t *)iov[i].iov_base)[off];
		off -= iov[i].iov_len;
	}
	return 0;
}

/* A frame of len bytes (header included) was read into the held chains:
 * returns them to the driver. */
static void rx_complete(struct virtio_net *net, struct virtq *q, uint64_t len)
{
	struct vq_chain *first = &net->rx[net->rx_head].c;
	uint16_t used = 0;
	uint64_t left = len;
	for (unsigned i = 0; i < net->rx_count && left; i++) {
		const struct vq_chain *c = &net->rx[(net->rx_head + i) % RX_SLOTS].c;
		left -= left < c->writable_len ? left : c->writable_len;
		used++;
	}
	uint16_t nb = used; /* little-endian (x86 host, VERSION_1) */
	vq_chain_write(first, offsetof(struct virtio_net_hdr_v1, num_buffers), &nb, 2);
	if (!(net->features & F(GUEST_CSUM))) {
		uint8_t flags = 0; /* no DATA_VALID for a driver that did not ask */
		vq_chain_write(first, offsetof(struct virtio_net_hdr_v1, flags), &flags, 1);
	}
	left = len;
	for (unsigned i = 0; i < used; i++) {
		struct rx_slot *s = &net->rx[net->rx_head];
		uint64_t n = left < s->c.writable_len ? left : s->c.writable_len;
		vq_push(q, s->c.head, (uint32_t)n);
		left -= n;
		net->rx_avail -= s->c.writable_len;
		net->rx_descs -= s->c.nbufs;
		net->rx_head = (net->rx_head + 1) % RX_SLOTS;
		net->rx_count--;
	}
	net->stats.rx_packets++;
	net->stats.rx_bytes += len - VIRTIO_NET_HDR_BYTES;
}

/* Frames from the fd into the guest, while it has buffers (lock held). */
static void rx_run(struct virtio_net *net)
{
	struct virtio_mmio *t = net->t;
	struct virtq *q = virtio_mmio_queue(t, VIRTIO_NET_RXQ);
	apply_offloads(net);
	uint64_t need = VIRTIO_NET_HDR_BYTES + rx_need(net);
	uint64_t now = ratelimit_clock(&net->rl_rx);
	bool pushed = false;
	for (unsigned frames = 0;;) {
		if (frames >= VIRTIO_NET_BATCH) {
			set_watch(net, true); /* the fd stays readable: the loop comes back */
			break;
		}
		if (!ratelimit_ready(&net->rl_rx, now)) {
			/* out of tokens: the fd is not watched meanwhile (frames
			 * wait in the tap); the VMM's timer runs this queue again */
			set_watch(net, false);
			ratelimit_throttle(&net->rl_rx, now);
			break;
		}
		if (rx_fill(net, q, need, &pushed) < 0) {
			rx_clear(net);
			set_watch(net, false);
			virtio_mmio_needs_reset(t);
			break;
		}
		/* enough for any frame, or all the guest will give (it cannot
		 * post more while the device holds every slot or descriptor) */
		bool enough =
		    net->rx_count && (!mergeable(net) || net->rx_avail >= need ||
				      net->rx_count == RX_SLOTS || net->rx_descs >= q->size);
		if (!enough) {
			vq_set_notify(q, true); /* tell me when there are buffers */
			if (vq_has_work(q))
				continue;
			set_watch(net, false);
			break;
		}
		vq_set_notify(q, false);
		unsigned n = rx_iov(net, need);
		uint64_t room = 0;
		for (unsigned i = 0; i < n; i++)
			room += net->rx_iov[i].iov_len;
		ssize_t r = readv(net->fd, net->rx_iov, (int)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			if (errno != EAGAIN)
				net->stats.rx_dropped++;
			set_watch(net, true); /* wait for the next frame */
			break;
		}
		frames++;
		if ((uint64_t)r < VIRTIO_NET_HDR_BYTES + VIRTIO_NET_MIN_FRAME ||
		    (uint64_t)r > room) {
			net->stats.rx_dropped++; /* short, or longer than the buffers */
			continue;
		}
		if (iov_byte(net->rx_iov, n, offsetof(struct virtio_net_hdr_v1, gso_type)) !=
		    VIRTIO_NET_HDR_GSO_NONE)
			net->stats.rx_gso++;
		rx_complete(net, q, (uint64_t)r);
		ratelimit_charge(&net->rl_rx, (uint64_t)r - VIRTIO_NET_HDR_BYTES);
		pushed = true;
	}
	if (pushed)
		virtio_mmio_signal(t, VIRTIO_NET_RXQ);
}

int virtio_net_tx_check(const struct virtio_net_hdr_v1 *h, uint64_t features, uint64_t frame_len)
{
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
	memcpy(&hdr_len, &h->hdr_len, 2);
	memcpy(&gso_size, &h->gso_size, 2);
	memcpy(&csum_start, &h->csum_start, 2);
	memcpy(&csum_offset, &h->csum_offset, 2);
	bool csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return -EINVAL; /* DATA_VALID, RSC_INFO: receive only */
	if (csum && (!(features & F(CSUM)) || (uint64_t)csum_start + csum_offset + 2 > frame_len))
		return -EINVAL;
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	bool ecn = h->gso_type & VIRTIO_NET_HDR_GSO_ECN;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return ecn ? -EINVAL : 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(features & F(HOST_TSO4)))
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(features & F(HOST_TSO6)))
			return -EINVAL;
		break;
	default:
		return -EINVAL; /* UFO and the rest: not offered */
	}
	if (ecn && !(features & F(HOST_ECN)))
		return -EINVAL;
	if (!csum || gso_size == 0 || hdr_len > frame_len)
		return -EINVAL;
	return 0;
}

/* One transmit chain to the fd. Returns the frame bytes sent (0 for a
 * chain dropped), or -EAGAIN when the fd is full (nothing sent: the chain
 * is to be tried again when it is writable). */
static int64_t tx_one(struct virtio_net *net, const struct vq_chain *c)
{
	struct virtio_net_stats *st = &net->stats;
	if (c->error || c->nreadable != c->nbufs ||
	    c->readable_len < VIRTIO_NET_HDR_BYTES + VIRTIO_NET_MIN_FRAME ||
	    c->readable_len > VIRTIO_NET_HDR_BYTES + VIRTIO_NET_MAX_FRAME) {
		st->bad_chains++;
		return 0;
	}
	struct virtio_net_hdr_v1 h;
	uint64_t frame = c->readable_len - VIRTIO_NET_HDR_BYTES;
	vq_chain_read(c, 0, &h, sizeof(h));
	if (virtio_net_tx_check(&h, net->features, frame) < 0) {
		st->bad_headers++;
		return 0;
	}
	h.num_buffers = 0; /* unused on transmit */
	net->tx_iov[0] = (struct iovec){.iov_base = &h, .iov_len = sizeof(h)};
	int n = vq_chain_iov(c, false, VIRTIO_NET_HDR_BYTES, frame, net->tx_iov + 1, TX_BUFS);
	if (n < 0) {
		st->bad_chains++;
		return 0;
	}
	ssize_t r;
	do
		r = writev(net->fd, net->tx_iov, n + 1);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && net->opt.tx_watch)
		return -EAGAIN; /* full: back-pressure (without a watch, dropped) */
	if (r < 0) {
		st->tx_dropped++; /* EIO (the tap is down), EINVAL */
		return 0;
	}
	st->tx_packets++;
	st->tx_bytes += frame;
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE)
		st->tx_gso++;
	return (int64_t)frame;
}

/* Transmit chains to the fd while the rate limit and the fd allow (lock
 * held). A chain the fd refuses (EAGAIN) stays the device's: the queue
 * stops, without notifications, until virtio_net_tx_ready. */
static void tx_run(struct virtio_net *net)
{
	struct virtio_mmio *t = net->t;
	struct virtq *q = virtio_mmio_queue(t, VIRTIO_NET_TXQ);
	if (net->tx_blocked)
		return; /* the fd's writability resumes it */
	apply_offloads(net);
	struct vq_chain *c = &net->tx_c;
	uint64_t now = ratelimit_clock(&net->rl_tx);
	bool pushed = false, throttled = false, blocked = false;
	unsigned frames = 0;
	int r = 0;
	for (;;) {
		vq_set_notify(q, false);
		while (frames < VIRTIO_NET_BATCH) {
			if (!ratelimit_ready(&net->rl_tx, now)) {
				throttled = net->tx_held || vq_has_work(q);
				break;
			}
			if (!net->tx_held) {
				*c = (struct vq_chain){.bufs = net->tx_bufs, .max_bufs = TX_BUFS};
				if ((r = vq_pop(q, c)) != 1)
					break;
			}
			int64_t sent = tx_one(net, c);
			if (sent == -EAGAIN) {
				net->tx_held = blocked = true;
				break;
			}
			net->tx_held = false;
			vq_push(q, c->head, 0);
			ratelimit_charge(&net->rl_tx, (uint64_t)sent);
			pushed = true;
			frames++;
		}
		if (r < 0 || frames >= VIRTIO_NET_BATCH || throttled || blocked)
			break;
		vq_set_notify(q, true);
		if (!vq_has_work(q))
			break;
	}
	if (r < 0) {
		virtio_mmio_needs_reset(t);
	} else if (blocked) {
		net->stats.tx_blocked++;
		net->tx_blocked = true;
		set_tx_watch(net, true);
	} else if (throttled) {
		ratelimit_throttle(&net->rl_tx, now); /* the VMM's timer runs it again */
	} else if (frames >= VIRTIO_NET_BATCH) {
		vq_set_notify(q, true);
		if (net->opt.requeue)
			net->opt.requeue(net->opt.opaque, VIRTIO_NET_TXQ);
	}
	if (pushed)
		virtio_mmio_signal(t, VIRTIO_NET_TXQ);
}

static void net_process(void *dev, struct virtio_mmio *t, unsigned qi)
{
	(void)t;
	struct virtio_net *net = dev;
	if (qi == VIRTIO_NET_RXQ)
		rx_run(net);
	else if (qi == VIRTIO_NET_TXQ)
		tx_run(net);
}

static int net_activate(void *dev, uint64_t features)
{
	struct virtio_net *net = dev;
	net->features = features;
	net->stats.features = features;
	net->offloads_pending = true; /* set on the fd by the I/O thread */
	return 0;
}

static void net_reset(void *dev)
{
	struct virtio_net *net = dev;
	net->features = 0;
	rx_clear(net); /* the chains were the old rings' */
	/* the watch goes off at the next fd event (backend_ready sees it) */
	net->tx_held = net->tx_blocked = false; /* a held chain was the old ring's */
	/* (and a transmit watch at its next event: virtio_net_tx_ready) */
}

/* Saved state: the MAC the driver read (a restored guest keeps its address
 * even if the new tap's configuration made another). The negotiated
 * features come back through activate; the receive chains held, and a
 * transmit chain held by back-pressure, are taken again from the ring
 * (net_held). */
static unsigned net_held(void *dev, unsigned q, uint16_t *heads, unsigned max)
{
	struct virtio_net *net = dev;
	unsigned n = 0;
	for (; q == VIRTIO_NET_RXQ && n < net->rx_count && n < max; n++)
		heads[n] = net->rx[(net->rx_head + n) % RX_SLOTS].c.head;
	if (q == VIRTIO_NET_TXQ && net->tx_held && max)
		heads[n++] = net->tx_c.head; /* the last one taken */
	return n;
}

static int net_save(void *dev, struct vmm_state_w *w)
{
	struct virtio_net *net = dev;
	vmm_sw_begin(w, "virtio-net", 1);
	vmm_sw_bytes(w, net->opt.mac, 6);
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int net_load(void *dev, struct vmm_state_r *r, uint64_t features)
{
	(void)features;
	struct virtio_net *net = dev;
	uint8_t mac[6];
	uint32_t version = 1;
	vmm_sr_begin(r, "virtio-net", &version);
	vmm_sr_bytes(r, mac, sizeof(mac));
	if (mac[0] & 1)
		return vmm_sr_fail(r, -EINVAL, "a multicast MAC");
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	memcpy(net->opt.mac, mac, 6);
	rx_clear(net);
	net->tx_held = net->tx_blocked = false;
	return 0;
}

/* The offloads the driver negotiated, on the tap at once. */
static void net_restored(void *dev, struct virtio_mmio *t)
{
	(void)t;
	apply_offloads(dev);
}

static bool running(struct virtio_net *net)
{
	uint8_t s = virtio_mmio_status(net->t);
	struct virtq *q = virtio_mmio_queue(net->t, VIRTIO_NET_RXQ);
	return (s & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(s & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)) && q && q->enabled;
}

void virtio_net_backend_ready(struct virtio_net *net, bool hold)
{
	virtio_mmio_lock(net->t);
	if (!hold && running(net))
		rx_run(net);
	else
		set_watch(net, false);
	virtio_mmio_unlock(net->t);
}

void virtio_net_tx_ready(struct virtio_net *net, bool hold)
{
	virtio_mmio_lock(net->t);
	bool was = net->tx_blocked;
	net->tx_blocked = false;
	set_tx_watch(net, false);
	struct virtq *q = virtio_mmio_queue(net->t, VIRTIO_NET_TXQ);
	if (was && !hold && (virtio_mmio_status(net->t) & VIRTIO_CONFIG_S_DRIVER_OK) && q &&
	    q->enabled)
		tx_run(net);
	virtio_mmio_unlock(net->t);
}

struct ratelimit *virtio_net_ratelimit(struct virtio_net *net, unsigned q)
{
	if (!net)
		return NULL;
	return q == VIRTIO_NET_RXQ ? &net->rl_rx : q == VIRTIO_NET_TXQ ? &net->rl_tx : NULL;
}

int virtio_net_create(struct virtio_mmio_config cfg, const struct virtio_net_options *opt,
		      struct virtio_net **out, struct virtio_mmio **out_t)
{
	if (!opt || !out || !out_t || opt->fd < 0 || (opt->mac[0] & 1) ||
	    (opt->mtu && opt->mtu < VIRTIO_NET_MTU_MIN))
		return -EINVAL;
	*out = NULL;
	*out_t = NULL;
	int fl = fcntl(opt->fd, F_GETFL);
	if (fl < 0 || fcntl(opt->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	struct virtio_net *net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	net->opt = *opt;
	net->fd = opt->fd;
	/* nothing offloaded until a driver accepts it (an inherited tap may
	 * have offloads on from its last user) */
	net->stats.offloads = ioctl(net->fd, TUNSETOFFLOAD, (unsigned long)0) < 0 ? -errno : 0;
	net->ops = (struct virtio_dev_ops){
	    .name = "virtio-net",
	    .device_id = VIRTIO_ID_NET,
	    .nqueues = VIRTIO_NET_QUEUES,
	    .queue_max = 256,
	    .features = NET_FEATURES | (opt->mtu ? F(MTU) : 0),
	    .config_size = sizeof(struct virtio_net_config),
	    .config_read = net_config_read,
	    .activate = net_activate,
	    .process = net_process,
	    .reset = net_reset,
	    .held = net_held,
	    .save = net_save,
	    .load = net_load,
	    .restored = net_restored,
	};
	cfg.ops = &net->ops;
	cfg.dev = net;
	int r = virtio_mmio_create(&cfg, &net->t);
	if (r < 0) {
		free(net);
		return r;
	}
	*out = net;
	*out_t = net->t;
	return 0;
}

void virtio_net_destroy(struct virtio_net *net)
{
	if (!net)
		return;
	close(net->fd);
	free(net);
}
