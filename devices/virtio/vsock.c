/* devices/virtio/vsock.c - virtio-vsock: the connection table, the packet protocol and credit flow control; host ends are opaque streams. */
#include "vsock.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define Q_RX	 0u
#define Q_TX	 1u
#define Q_EVENT	 2u
#define MAX_BUFS 64u
#define NONE	 UINT32_MAX
#define NBUCKETS 1024u
#define RSTQ	 64u
#define Q_CTL	 0
#define Q_DATA	 1

_Static_assert(sizeof(struct virtio_vsock_hdr) == VIRTIO_VSOCK_HDR_BYTES, "header size");

/* What a connection has to tell the guest (one rx packet each). */
enum {
	P_RST = 1u << 0,
	P_REQUEST = 1u << 1,
	P_RESPONSE = 1u << 2,
	P_CREDIT_UPDATE = 1u << 3,
	P_READ = 1u << 4, /* the stream may have data: read into the next rx buffer */
	P_SHUTDOWN = 1u << 5,
};

enum cstate {
	C_FREE,
	C_CONNECTING,  /* host-initiated: REQUEST sent or to send, waiting for RESPONSE */
	C_ESTABLISHED, /* either way */
	C_RESETTING,   /* the stream is closed; an RST is owed to the guest, then free */
};

struct conn {
	enum cstate st;
	uint16_t gen;
	uint32_t local_port, peer_port;
	void *stream;
	uint32_t pending;      /* P_* */
	int8_t queue;	       /* which FIFO it waits in (Q_CTL, Q_DATA), or -1 */
	uint32_t qnext, hnext; /* FIFO and hash chain: slot indices */
	/* guest -> host */
	uint8_t *buf; /* VIRTIO_VSOCK_BUF_ALLOC ring, allocated on first need */
	uint32_t head, used;
	uint32_t rx_cnt, fwd_cnt, fwd_cnt_sent;
	/* host -> guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool credit_requested;
	/* shutdown */
	bool guest_shut_send, guest_shut_rcv, host_eof, host_shut, shutdown_sent;
	bool w_read, w_write; /* what the stream is watched for */
	bool req_held;	      /* its REQUEST waits for the transport reset's end */
};

struct virtio_vsock {
	struct virtio_dev_ops ops;
	struct virtio_mmio *t;
	uint64_t cid;
	const struct virtio_vsock_host_ops *h;
	void *host;
	struct conn conns[VIRTIO_VSOCK_MAX_CONNS];
	uint32_t buckets[NBUCKETS];
	/* connections with something to send: control packets first (a
	 * RESPONSE must not wait behind other connections' data), then data */
	uint32_t qhead[2], qtail[2];
	uint32_t nconns, next_local;
	struct {
		uint32_t local, peer;
	} rstq[RSTQ];
	unsigned rst_head, rst_n;
	/* the rx chain taken but not used yet (valid while the queue's
	 * popped count says it is still that queue's) */
	bool rx_held;
	uint64_t rx_held_popped;
	/* after a load: the transport reset event is owed to the driver */
	bool reset_owed;
	/* the event was delivered, and the driver has not yet published an
	 * event buffer after it (reset_avail: the event queue's avail index
	 * then): it has not handled the reset yet */
	bool reset_unacked;
	uint16_t reset_avail;
	struct vq_chain rx;
	struct vq_buf rxbufs[MAX_BUFS];
	struct vq_buf txbufs[MAX_BUFS];
	struct iovec iov[MAX_BUFS];
	struct virtio_vsock_stats st;
};

/* ---------------------------------------------------------------- header */

static uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v; /* little-endian host */
}
static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

void virtio_vsock_hdr_decode(const uint8_t *raw, struct virtio_vsock_pkt *p)
{
	p->src_cid = ld64(raw);
	p->dst_cid = ld64(raw + 8);
	p->src_port = ld32(raw + 16);
	p->dst_port = ld32(raw + 20);
	p->len = ld32(raw + 24);
	p->type = ld16(raw + 28);
	p->op = ld16(raw + 30);
	p->flags = ld32(raw + 32);
	p->buf_alloc = ld32(raw + 36);
	p->fwd_cnt = ld32(raw + 40);
}

void virtio_vsock_hdr_encode(const struct virtio_vsock_pkt *p, uint8_t *raw)
{
	memcpy(raw, &p->src_cid, 8);
	memcpy(raw + 8, &p->dst_cid, 8);
	memcpy(raw + 16, &p->src_port, 4);
	memcpy(raw + 20, &p->dst_port, 4);
	memcpy(raw + 24, &p->len, 4);
	memcpy(raw + 28, &p->type, 2);
	memcpy(raw + 30, &p->op, 2);
	memcpy(raw + 32, &p->flags, 4);
	memcpy(raw + 36, &p->buf_alloc, 4);
	memcpy(raw + 40, &p->fwd_cnt, 4);
}

int virtio_vsock_hdr_check(const struct virtio_vsock_pkt *p, uint64_t guest_cid,
			   uint64_t payload_avail)
{
	if (p->type != VIRTIO_VSOCK_TYPE_STREAM || p->op == VIRTIO_VSOCK_OP_INVALID ||
	    p->op > VIRTIO_VSOCK_OP_CREDIT_REQUEST)
		return -EPROTO;
	if (p->src_cid != guest_cid || p->dst_cid != VIRTIO_VSOCK_HOST_CID)
		return -EADDRNOTAVAIL;
	if (p->len > VIRTIO_VSOCK_MAX_PKT || p->len > payload_avail ||
	    (p->op != VIRTIO_VSOCK_OP_RW && p->len))
		return -EINVAL;
	return 0;
}

/* ---------------------------------------------------------------- table */

static uint32_t hash(uint32_t local, uint32_t peer)
{
	uint32_t h = local * 0x9e3779b1u ^ peer * 0x85ebca77u;
	return (h ^ (h >> 15)) % NBUCKETS;
}

static uint32_t slot_of(const struct virtio_vsock *v, const struct conn *c)
{
	return (uint32_t)(c - v->conns);
}

static virtio_vsock_handle handle_of(const struct virtio_vsock *v, const struct conn *c)
{
	return ((uint32_t)c->gen << 16) | (slot_of(v, c) + 1);
}

static struct conn *lookup(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	for (uint32_t i = v->buckets[hash(local, peer)]; i != NONE; i = v->conns[i].hnext)
		if (v->conns[i].local_port == local && v->conns[i].peer_port == peer)
			return &v->conns[i];
	return NULL;
}

static struct conn *conn_new(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	if (v->nconns >= VIRTIO_VSOCK_MAX_CONNS)
		return NULL;
	for (uint32_t i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];
		if (c->st != C_FREE)
			continue;
		uint16_t gen = c->gen;
		memset(c, 0, sizeof(*c));
		c->gen = gen;
		c->local_port = local;
		c->peer_port = peer;
		c->queue = -1;
		c->qnext = NONE;
		uint32_t b = hash(local, peer);
		c->hnext = v->buckets[b];
		v->buckets[b] = i;
		v->nconns++;
		v->st.conns = v->nconns;
		if (v->nconns > v->st.peak)
			v->st.peak = v->nconns;
		return c;
	}
	return NULL;
}

static void unqueue(struct virtio_vsock *v, struct conn *c)
{
	if (c->queue < 0)
		return;
	int k = c->queue;
	uint32_t s = slot_of(v, c), prev = NONE;
	for (uint32_t i = v->qhead[k]; i != NONE; prev = i, i = v->conns[i].qnext) {
		if (i != s)
			continue;
		if (prev == NONE)
			v->qhead[k] = c->qnext;
		else
			v->conns[prev].qnext = c->qnext;
		if (v->qtail[k] == s)
			v->qtail[k] = prev;
		break;
	}
	c->queue = -1;
	c->qnext = NONE;
}

/* Adds what to c's pending work and puts c in the FIFO it belongs to. */
static void enqueue(struct virtio_vsock *v, struct conn *c, uint32_t what)
{
	c->pending |= what;
	if (!c->pending)
		return;
	int k = (c->pending & ~P_READ) ? Q_CTL : Q_DATA;
	if (c->queue == k)
		return;
	unqueue(v, c);
	uint32_t s = slot_of(v, c);
	c->queue = (int8_t)k;
	c->qnext = NONE;
	if (v->qtail[k] == NONE)
		v->qhead[k] = s;
	else
		v->conns[v->qtail[k]].qnext = s;
	v->qtail[k] = s;
}

/* Frees the slot (the stream is already closed or never was). */
static void conn_free(struct virtio_vsock *v, struct conn *c)
{
	unqueue(v, c);
	uint32_t s = slot_of(v, c);
	uint32_t *pp = &v->buckets[hash(c->local_port, c->peer_port)];
	while (*pp != NONE && *pp != s)
		pp = &v->conns[*pp].hnext;
	if (*pp == s)
		*pp = c->hnext;
	free(c->buf);
	uint16_t gen = (uint16_t)(c->gen + 1);
	memset(c, 0, sizeof(*c));
	c->gen = gen;
	c->queue = -1;
	c->qnext = c->hnext = NONE;
	v->nconns--;
	v->st.conns = v->nconns;
}

static void close_stream(struct virtio_vsock *v, struct conn *c)
{
	if (c->stream)
		v->h->close(v->host, c->stream);
	c->stream = NULL;
}

/* The connection is over with an RST to the guest: the stream goes now,
 * the slot when the RST is sent. */
static void conn_rst(struct virtio_vsock *v, struct conn *c)
{
	close_stream(v, c);
	c->st = C_RESETTING;
	c->pending = 0;
	enqueue(v, c, P_RST);
}

static void queue_rst(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	if (v->rst_n == RSTQ) {
		v->st.rst_dropped++;
		return;
	}
	unsigned i = (v->rst_head + v->rst_n++) % RSTQ;
	v->rstq[i].local = local;
	v->rstq[i].peer = peer;
}

static uint32_t peer_credit(const struct conn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;
	return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

static void update_watch(struct virtio_vsock *v, struct conn *c)
{
	if (c->st != C_ESTABLISHED || !c->stream)
		return;
	bool rd =
	    !c->host_eof && !c->guest_shut_rcv && peer_credit(c) > 0 && !(c->pending & P_READ);
	bool wr = c->used > 0;
	if (rd == c->w_read && wr == c->w_write)
		return;
	c->w_read = rd;
	c->w_write = wr;
	v->h->watch(v->host, c->stream, rd, wr);
}

/* A credit update is owed when the space the guest last heard of is under
 * half the buffer and more has been forwarded since. */
static void maybe_credit_update(struct virtio_vsock *v, struct conn *c)
{
	uint32_t held = c->rx_cnt - c->fwd_cnt_sent;
	uint32_t seen_free = held >= VIRTIO_VSOCK_BUF_ALLOC ? 0 : VIRTIO_VSOCK_BUF_ALLOC - held;
	if (seen_free < VIRTIO_VSOCK_BUF_ALLOC / 2 && c->fwd_cnt != c->fwd_cnt_sent)
		enqueue(v, c, P_CREDIT_UPDATE);
}

/* Both sides done, or the guest closed: after the buffer drained. */
static void check_shutdown(struct virtio_vsock *v, struct conn *c)
{
	if (c->st != C_ESTABLISHED || c->used)
		return;
	if (c->guest_shut_send && !c->host_shut) {
		c->host_shut = true;
		v->h->shutdown(v->host, c->stream);
	}
	if ((c->guest_shut_send && c->guest_shut_rcv) ||
	    (c->guest_shut_send && c->host_eof && c->shutdown_sent))
		conn_rst(v, c);
}

/* ---------------------------------------------------------------- guest -> host */

static int ring_iov(struct conn *c, struct iovec *iov)
{
	uint32_t first = VIRTIO_VSOCK_BUF_ALLOC - c->head;
	if (first > c->used)
		first = c->used;
	iov[0] = (struct iovec){.iov_base = c->buf + c->head, .iov_len = first};
	if (first == c->used)
		return 1;
	iov[1] = (struct iovec){.iov_base = c->buf, .iov_len = c->used - first};
	return 2;
}

/* Writes what the buffer holds to the stream. */
static void flush(struct virtio_vsock *v, struct conn *c)
{
	while (c->used && c->st == C_ESTABLISHED) {
		struct iovec iov[2];
		int n = ring_iov(c, iov);
		ssize_t r = v->h->writev(v->host, c->stream, iov, n);
		if (r == -EAGAIN || r == 0)
			break;
		if (r < 0 || (uint64_t)r > c->used) {
			conn_rst(v, c);
			return;
		}
		c->head = (uint32_t)((c->head + (uint64_t)r) % VIRTIO_VSOCK_BUF_ALLOC);
		c->used -= (uint32_t)r;
		c->fwd_cnt += (uint32_t)r;
	}
	if (c->st != C_ESTABLISHED)
		return;
	if (!c->used)
		c->head = 0;
	maybe_credit_update(v, c);
	check_shutdown(v, c);
}

static void rw_data(struct virtio_vsock *v, struct conn *c, const struct vq_chain *ch, uint32_t len)
{
	c->rx_cnt += len;
	v->st.tx_bytes += len;
	uint32_t off = 0;
	if (!c->used && len) {
		int n = vq_chain_iov(ch, false, VIRTIO_VSOCK_HDR_BYTES, len, v->iov, MAX_BUFS);
		if (n > 0) {
			ssize_t r = v->h->writev(v->host, c->stream, v->iov, n);
			if (r < 0 && r != -EAGAIN) {
				conn_rst(v, c);
				return;
			}
			if (r > 0) {
				off = (uint32_t)((uint64_t)r > len ? len : (uint64_t)r);
				c->fwd_cnt += off;
			}
		}
	}
	uint32_t rest = len - off;
	if (rest) {
		if (rest > VIRTIO_VSOCK_BUF_ALLOC - c->used) {
			v->st.bad_packets++; /* beyond the credit it was given */
			conn_rst(v, c);
			return;
		}
		if (!c->buf && !(c->buf = malloc(VIRTIO_VSOCK_BUF_ALLOC))) {
			conn_rst(v, c);
			return;
		}
		uint32_t tail = (c->head + c->used) % VIRTIO_VSOCK_BUF_ALLOC;
		uint32_t first = VIRTIO_VSOCK_BUF_ALLOC - tail;
		if (first > rest)
			first = rest;
		uint64_t got =
		    vq_chain_read(ch, VIRTIO_VSOCK_HDR_BYTES + off, c->buf + tail, first);
		if (first < rest)
			got += vq_chain_read(ch, VIRTIO_VSOCK_HDR_BYTES + off + first, c->buf,
					     rest - first);
		c->used += (uint32_t)got;
	}
	maybe_credit_update(v, c);
}

static void tx_packet(struct virtio_vsock *v, const struct vq_chain *ch)
{
	uint8_t raw[VIRTIO_VSOCK_HDR_BYTES];
	if (ch->error || ch->readable_len < VIRTIO_VSOCK_HDR_BYTES ||
	    vq_chain_read(ch, 0, raw, sizeof(raw)) != sizeof(raw)) {
		v->st.bad_packets++;
		return;
	}
	struct virtio_vsock_pkt p;
	virtio_vsock_hdr_decode(raw, &p);
	struct conn *c = lookup(v, p.dst_port, p.src_port);
	int r = virtio_vsock_hdr_check(&p, v->cid, ch->readable_len - VIRTIO_VSOCK_HDR_BYTES);
	if (r < 0) {
		v->st.bad_packets++;
		if (r == -EADDRNOTAVAIL || p.op == VIRTIO_VSOCK_OP_RST)
			return; /* not ours to answer */
		if (c && c->st != C_RESETTING)
			conn_rst(v, c);
		else if (!c)
			queue_rst(v, p.dst_port, p.src_port);
		return;
	}
	if (c && c->st == C_RESETTING)
		return; /* an RST is on its way */
	if (c) {
		c->peer_buf_alloc = p.buf_alloc;
		c->peer_fwd_cnt = p.fwd_cnt;
		if (peer_credit(c))
			c->credit_requested = false;
	}
	if (!c && p.op != VIRTIO_VSOCK_OP_REQUEST) {
		if (p.op != VIRTIO_VSOCK_OP_RST)
			queue_rst(v, p.dst_port, p.src_port);
		return;
	}
	switch (p.op) {
	case VIRTIO_VSOCK_OP_REQUEST: {
		if (c) { /* the pair is taken */
			v->st.bad_packets++;
			conn_rst(v, c);
			return;
		}
		c = conn_new(v, p.dst_port, p.src_port);
		if (!c) {
			v->st.refused++;
			queue_rst(v, p.dst_port, p.src_port);
			return;
		}
		c->peer_buf_alloc = p.buf_alloc;
		c->peer_fwd_cnt = p.fwd_cnt;
		if (v->h->connect(v->host, p.dst_port, handle_of(v, c), &c->stream) < 0) {
			c->stream = NULL;
			v->st.refused++;
			conn_rst(v, c);
			return;
		}
		c->st = C_ESTABLISHED;
		v->st.opened++;
		enqueue(v, c, P_RESPONSE);
		break;
	}
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->st != C_CONNECTING) {
			v->st.bad_packets++;
			conn_rst(v, c);
			return;
		}
		c->st = C_ESTABLISHED;
		c->pending &= ~P_REQUEST;
		v->st.opened++;
		v->h->accepted(v->host, c->stream, c->local_port);
		break;
	case VIRTIO_VSOCK_OP_RST:
		close_stream(v, c);
		conn_free(v, c);
		return;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (p.flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
			c->guest_shut_send = true;
		if (p.flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
			c->guest_shut_rcv = true;
		check_shutdown(v, c);
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->st != C_ESTABLISHED || c->guest_shut_send) {
			v->st.bad_packets++;
			conn_rst(v, c);
			return;
		}
		rw_data(v, c, ch, p.len);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		enqueue(v, c, P_CREDIT_UPDATE);
		break;
	}
	if (c->st == C_ESTABLISHED)
		update_watch(v, c);
}

/* ---------------------------------------------------------------- host -> guest */

static uint32_t put_hdr(struct virtio_vsock *v, const struct vq_chain *ch, struct conn *c,
			uint32_t local, uint32_t peer, uint16_t op, uint32_t flags, uint32_t len)
{
	struct virtio_vsock_pkt p = {
	    .src_cid = VIRTIO_VSOCK_HOST_CID,
	    .dst_cid = v->cid,
	    .src_port = local,
	    .dst_port = peer,
	    .len = len,
	    .type = VIRTIO_VSOCK_TYPE_STREAM,
	    .op = op,
	    .flags = flags,
	};
	if (c) {
		p.buf_alloc = VIRTIO_VSOCK_BUF_ALLOC;
		p.fwd_cnt = c->fwd_cnt;
		c->fwd_cnt_sent = c->fwd_cnt;
		c->pending &= ~P_CREDIT_UPDATE; /* this packet is one */
	}
	uint8_t raw[VIRTIO_VSOCK_HDR_BYTES];
	virtio_vsock_hdr_encode(&p, raw);
	vq_chain_write(ch, 0, raw, sizeof(raw));
	return VIRTIO_VSOCK_HDR_BYTES + len;
}

/* One packet of c's into the chain; returns its length, or 0 when c turned
 * out to have nothing to send (the chain stays unused). */
static uint32_t conn_packet(struct virtio_vsock *v, struct conn *c, const struct vq_chain *ch)
{
	uint32_t lp = c->local_port, pp = c->peer_port;
	if (c->pending & P_RST) {
		put_hdr(v, ch, NULL, lp, pp, VIRTIO_VSOCK_OP_RST, 0, 0);
		conn_free(v, c);
		return VIRTIO_VSOCK_HDR_BYTES;
	}
	if (c->pending & P_REQUEST) {
		c->pending &= ~P_REQUEST;
		return put_hdr(v, ch, c, lp, pp, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
	}
	if (c->pending & P_RESPONSE) {
		c->pending &= ~P_RESPONSE;
		return put_hdr(v, ch, c, lp, pp, VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
	}
	if (c->pending & P_CREDIT_UPDATE)
		return put_hdr(v, ch, c, lp, pp, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
	if (c->pending & P_READ) {
		uint32_t credit = peer_credit(c);
		if (credit == 0 || c->host_eof || c->guest_shut_rcv) {
			c->pending &= ~P_READ;
			if (credit == 0 && !c->credit_requested && !c->host_eof) {
				c->credit_requested = true;
				return put_hdr(v, ch, c, lp, pp, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0,
					       0);
			}
			return 0;
		}
		uint64_t room = ch->writable_len - VIRTIO_VSOCK_HDR_BYTES;
		uint64_t want = credit;
		if (want > room)
			want = room;
		if (want > VIRTIO_VSOCK_MAX_PKT)
			want = VIRTIO_VSOCK_MAX_PKT;
		int n = vq_chain_iov(ch, true, VIRTIO_VSOCK_HDR_BYTES, want, v->iov, MAX_BUFS);
		if (n <= 0) {
			c->pending &= ~P_READ;
			return 0;
		}
		ssize_t r = v->h->readv(v->host, c->stream, v->iov, n);
		if (r == -EAGAIN) {
			c->pending &= ~P_READ;
			return 0;
		}
		if (r < 0 || (uint64_t)r > want) {
			close_stream(v, c);
			put_hdr(v, ch, NULL, lp, pp, VIRTIO_VSOCK_OP_RST, 0, 0);
			conn_free(v, c);
			return VIRTIO_VSOCK_HDR_BYTES;
		}
		if (r == 0) {
			c->pending &= ~P_READ;
			c->host_eof = true;
			c->pending |= P_SHUTDOWN;
		} else {
			c->tx_cnt += (uint32_t)r;
			v->st.rx_bytes += (uint64_t)r;
			return put_hdr(v, ch, c, lp, pp, VIRTIO_VSOCK_OP_RW, 0, (uint32_t)r);
		}
	}
	if (c->pending & P_SHUTDOWN) {
		c->pending &= ~P_SHUTDOWN;
		c->shutdown_sent = true;
		uint32_t n = put_hdr(v, ch, c, lp, pp, VIRTIO_VSOCK_OP_SHUTDOWN,
				     VIRTIO_VSOCK_SHUTDOWN_SEND, 0);
		check_shutdown(v, c);
		return n;
	}
	return 0;
}

/* vq_pop, and when the ring is empty: ask for a notification (a full
 * fence) and look once more, so that a buffer the driver published while
 * it still saw the old avail_event is not left waiting for a kick that
 * never comes. */
static int pop(struct virtq *q, struct vq_chain *c)
{
	int r = vq_pop(q, c);
	if (r != 0)
		return r;
	vq_set_notify(q, true);
	return vq_pop(q, c);
}

static bool rx_take(struct virtio_vsock *v, struct virtq *q)
{
	if (v->rx_held && q->popped == v->rx_held_popped)
		return true;
	v->rx_held = false;
	v->rx = (struct vq_chain){.bufs = v->rxbufs, .max_bufs = MAX_BUFS};
	for (;;) {
		int r = pop(q, &v->rx);
		if (r == 0)
			return false;
		if (r < 0) {
			virtio_mmio_needs_reset(v->t);
			return false;
		}
		if (!v->rx.error && v->rx.writable_len >= VIRTIO_VSOCK_HDR_BYTES &&
		    v->rx.nreadable == 0)
			break;
		v->st.bad_packets++;
		vq_push(q, v->rx.head, 0);
	}
	v->rx_held = true;
	v->rx_held_popped = q->popped;
	return true;
}

static bool driver_running(struct virtio_vsock *v)
{
	uint8_t s = virtio_mmio_status(v->t);
	return (s & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(s & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED));
}

/* Sends what is owed to the guest while it has rx buffers. */
static void rx_fill(struct virtio_vsock *v)
{
	struct virtq *q = virtio_mmio_queue(v->t, Q_RX);
	if (!q || !q->enabled || !driver_running(v))
		return;
	bool pushed = false;
	while ((v->rst_n || v->qhead[Q_CTL] != NONE || v->qhead[Q_DATA] != NONE) && rx_take(v, q)) {
		uint32_t len = 0;
		if (v->rst_n) {
			unsigned i = v->rst_head;
			v->rst_head = (v->rst_head + 1) % RSTQ;
			v->rst_n--;
			len = put_hdr(v, &v->rx, NULL, v->rstq[i].local, v->rstq[i].peer,
				      VIRTIO_VSOCK_OP_RST, 0, 0);
		} else {
			uint32_t head =
			    v->qhead[Q_CTL] != NONE ? v->qhead[Q_CTL] : v->qhead[Q_DATA];
			struct conn *c = &v->conns[head];
			unqueue(v, c);
			len = conn_packet(v, c, &v->rx);
			if (c->st != C_FREE) {
				if (c->pending)
					enqueue(v, c, 0);
				update_watch(v, c);
			}
		}
		if (!len)
			continue;
		vq_push(q, v->rx.head, len);
		v->rx_held = false;
		pushed = true;
	}
	if (pushed)
		virtio_mmio_signal(v->t, Q_RX);
}

/* ---------------------------------------------------------------- transport */

static void vsock_config_read(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
	struct virtio_vsock *v = dev;
	uint8_t c[8];
	memcpy(c, &v->cid, 8);
	memset(data, 0, len);
	if (off < sizeof(c))
		memcpy(data, c + off, len < sizeof(c) - off ? len : sizeof(c) - off);
}

/* Lock held: VIRTIO_VSOCK_EVENT_TRANSPORT_RESET into the driver's next
 * event buffer (the driver then drops every connection and reads the CID
 * again), or owed until it posts one. */
static void send_reset_event(struct virtio_vsock *v, struct virtio_mmio *t)
{
	struct virtq *q = virtio_mmio_queue(t, Q_EVENT);
	struct vq_chain ch = {.bufs = v->txbufs, .max_bufs = MAX_BUFS};
	v->reset_owed = true;
	for (;;) {
		int r = vq_pop(q, &ch);
		if (r < 0)
			virtio_mmio_needs_reset(t);
		if (r != 1)
			return;
		const uint32_t ev = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET; /* le32 id */
		if (ch.error || vq_chain_write(&ch, 0, &ev, sizeof(ev)) != sizeof(ev)) {
			v->st.bad_packets++;
			vq_push(q, ch.head, 0);
			continue;
		}
		vq_push(q, ch.head, sizeof(ev));
		v->reset_owed = false;
		/* the driver refills the event queue once it has handled the
		 * event (Linux: virtio_vsock_event_work); till then a host
		 * connection's REQUEST would be taken and then reset with the
		 * connections of before the snapshot, so it waits */
		v->reset_unacked = true;
		v->reset_avail = vq_notify_at_next(q);
		v->st.transport_resets++;
		virtio_mmio_signal(t, Q_EVENT);
		return;
	}
}

/* Lock held: once the driver published an event buffer after the reset
 * event (it handled the reset), the host connections' REQUESTs go. */
static void check_reset_done(struct virtio_vsock *v, struct virtio_mmio *t)
{
	if (!v->reset_unacked || vq_avail_idx(virtio_mmio_queue(t, Q_EVENT)) == v->reset_avail)
		return;
	v->reset_unacked = false;
	for (uint32_t i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];
		if (c->st == C_CONNECTING && c->req_held) {
			c->req_held = false;
			enqueue(v, c, P_REQUEST);
		}
	}
}

static void vsock_process(void *dev, struct virtio_mmio *t, unsigned qi)
{
	struct virtio_vsock *v = dev;
	check_reset_done(v, t);
	if (qi == Q_TX) {
		struct virtq *q = virtio_mmio_queue(t, Q_TX);
		struct vq_chain ch = {.bufs = v->txbufs, .max_bufs = MAX_BUFS};
		bool pushed = false;
		int r;
		while ((r = pop(q, &ch)) == 1) {
			tx_packet(v, &ch);
			vq_push(q, ch.head, 0);
			pushed = true;
		}
		if (r < 0)
			virtio_mmio_needs_reset(t);
		if (pushed)
			virtio_mmio_signal(t, Q_TX);
	}
	/* rx: new buffers; tx: replies; event: the driver's buffers wait for
	 * a transport reset event, which only a load sends */
	if (v->reset_owed)
		send_reset_event(v, t);
	rx_fill(v);
}

static void drop_all(struct virtio_vsock *v)
{
	for (uint32_t i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];
		if (c->st == C_FREE)
			continue;
		close_stream(v, c);
		conn_free(v, c);
	}
	v->qhead[Q_CTL] = v->qtail[Q_CTL] = v->qhead[Q_DATA] = v->qtail[Q_DATA] = NONE;
	v->rst_n = v->rst_head = 0;
	v->rx_held = false;
}

static void vsock_reset(void *dev)
{
	struct virtio_vsock *v = dev;
	drop_all(v);
	v->reset_owed = v->reset_unacked = false;
	v->next_local = VIRTIO_VSOCK_LOCAL_PORT_BASE; /* no host client is left */
}

/* Saved state: the guest's CID (kept, as Firecracker does) and the next
 * host port. Connections do not survive: their host ends are not in the
 * snapshot, so a load sends the driver a transport reset (send_reset_event)
 * and it drops them. */
static unsigned vsock_held(void *dev, unsigned qi, uint16_t *heads, unsigned max)
{
	struct virtio_vsock *v = dev;
	const struct virtq *q = virtio_mmio_queue(v->t, Q_RX);
	if (qi != Q_RX || !v->rx_held || q->popped != v->rx_held_popped || !max)
		return 0;
	heads[0] = v->rx.head;
	return 1;
}

static int vsock_save(void *dev, struct vmm_state_w *w)
{
	struct virtio_vsock *v = dev;
	vmm_sw_begin(w, "virtio-vsock", 1);
	vmm_sw_u64(w, v->cid);
	vmm_sw_u32(w, v->next_local);
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int vsock_load(void *dev, struct vmm_state_r *r, uint64_t features)
{
	(void)features;
	struct virtio_vsock *v = dev;
	uint32_t version = 1;
	vmm_sr_begin(r, "virtio-vsock", &version);
	uint64_t cid = vmm_sr_u64(r);
	uint32_t next_local = vmm_sr_u32(r);
	if (cid < 3 || cid >= 0xffffffffu)
		return vmm_sr_fail(r, -EINVAL, "guest CID %llu", (unsigned long long)cid);
	if (next_local < VIRTIO_VSOCK_LOCAL_PORT_BASE || next_local == UINT32_MAX)
		return vmm_sr_fail(r, -EINVAL, "next host port %u", next_local);
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	drop_all(v);
	v->cid = cid;
	v->next_local = next_local;
	v->reset_owed = v->reset_unacked = false;
	return 0;
}

static void vsock_restored(void *dev, struct virtio_mmio *t)
{
	send_reset_event(dev, t);
}

int virtio_vsock_create(struct virtio_mmio_config cfg, const struct virtio_vsock_options *opt,
			struct virtio_vsock **out, struct virtio_mmio **out_t)
{
	if (!out || !out_t || !opt || opt->guest_cid < 3 || opt->guest_cid >= 0xffffffffu ||
	    !opt->host_ops || !opt->host_ops->connect || !opt->host_ops->accepted ||
	    !opt->host_ops->readv || !opt->host_ops->writev || !opt->host_ops->watch ||
	    !opt->host_ops->shutdown || !opt->host_ops->close)
		return -EINVAL;
	*out = NULL;
	*out_t = NULL;
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->cid = opt->guest_cid;
	v->h = opt->host_ops;
	v->host = opt->host;
	v->qhead[Q_CTL] = v->qtail[Q_CTL] = v->qhead[Q_DATA] = v->qtail[Q_DATA] = NONE;
	v->next_local = VIRTIO_VSOCK_LOCAL_PORT_BASE;
	for (uint32_t i = 0; i < NBUCKETS; i++)
		v->buckets[i] = NONE;
	/* the connection slots stay as calloc left them (C_FREE, gen 0): only
	 * conn_new, which sets a slot's links, reads one that is free, so the
	 * ~90 KiB of slots are not touched (RSS) until connections use them */
	v->ops = (struct virtio_dev_ops){
	    .name = "virtio-vsock",
	    .device_id = VIRTIO_ID_VSOCK,
	    .nqueues = 3,
	    .queue_max = 256,
	    .config_size = sizeof(struct virtio_vsock_config),
	    .config_read = vsock_config_read,
	    .process = vsock_process,
	    .reset = vsock_reset,
	    .held = vsock_held,
	    .save = vsock_save,
	    .load = vsock_load,
	    .restored = vsock_restored,
	};
	cfg.ops = &v->ops;
	cfg.dev = v;
	int r = virtio_mmio_create(&cfg, &v->t);
	if (r < 0) {
		free(v);
		return r;
	}
	*out = v;
	*out_t = v->t;
	return 0;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	drop_all(v);
	free(v);
}

int virtio_vsock_host_connect(struct virtio_vsock *v, void *stream, uint32_t port,
			      virtio_vsock_handle *h)
{
	virtio_mmio_lock(v->t);
	int r = 0;
	struct conn *c = NULL;
	if (!driver_running(v)) {
		r = -ENOTCONN;
	} else {
		uint32_t local = 0;
		for (unsigned tries = 0; tries < 2 * VIRTIO_VSOCK_MAX_CONNS; tries++) {
			uint32_t cand = v->next_local++;
			if (v->next_local == UINT32_MAX)
				v->next_local = VIRTIO_VSOCK_LOCAL_PORT_BASE;
			if (!lookup(v, cand, port)) {
				local = cand;
				break;
			}
		}
		c = local ? conn_new(v, local, port) : NULL;
		if (!c)
			r = -EBUSY;
	}
	if (c) {
		c->stream = stream;
		c->st = C_CONNECTING;
		*h = handle_of(v, c);
		check_reset_done(v, v->t);
		if (v->reset_unacked || v->reset_owed)
			c->req_held = true; /* after the driver handled the reset */
		else
			enqueue(v, c, P_REQUEST);
		rx_fill(v);
	}
	virtio_mmio_unlock(v->t);
	return r;
}

/* Lock held: the live connection h names, or NULL. */
static struct conn *by_handle(struct virtio_vsock *v, virtio_vsock_handle h)
{
	uint32_t slot = (h & 0xffffu) - 1;
	struct conn *c = slot < VIRTIO_VSOCK_MAX_CONNS ? &v->conns[slot] : NULL;
	if (!c || c->gen != (uint16_t)(h >> 16) || c->st == C_FREE || c->st == C_RESETTING)
		return NULL;
	return c;
}

void virtio_vsock_host_abort(struct virtio_vsock *v, virtio_vsock_handle h)
{
	virtio_mmio_lock(v->t);
	struct conn *c = by_handle(v, h);
	if (c) {
		conn_rst(v, c);
		rx_fill(v);
	}
	virtio_mmio_unlock(v->t);
}

void virtio_vsock_host_ready(struct virtio_vsock *v, virtio_vsock_handle h, bool readable,
			     bool writable)
{
	virtio_mmio_lock(v->t);
	struct conn *c = by_handle(v, h);
	if (c && c->st == C_ESTABLISHED && driver_running(v)) {
		if (writable)
			flush(v, c);
		if (readable && c->st == C_ESTABLISHED)
			enqueue(v, c, P_READ);
		if (c->st == C_ESTABLISHED)
			update_watch(v, c);
		rx_fill(v);
	}
	virtio_mmio_unlock(v->t);
}

void virtio_vsock_get_stats(struct virtio_vsock *v, struct virtio_vsock_stats *out)
{
	virtio_mmio_lock(v->t);
	*out = v->st;
	virtio_mmio_unlock(v->t);
}
