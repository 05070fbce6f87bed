/* devices/virtio/vsock.h - virtio-vsock (VIRTIO 1.2, 5.10): stream connections with credit-based flow control, host side behind a narrow interface. */
#ifndef EMBER_DEVICES_VIRTIO_VSOCK_H
#define EMBER_DEVICES_VIRTIO_VSOCK_H

/*
 * The device speaks the virtio-vsock packet protocol with the guest's
 * driver on three queues (rx 0, tx 1, event 2) and keeps the connection
 * table: VIRTIO_VSOCK_TYPE_STREAM connections keyed by (local port, peer
 * port), at most VIRTIO_VSOCK_MAX_CONNS of them (a request beyond that is
 * answered RST). It knows no sockets: each connection's host end is an
 * opaque stream that the host side (struct virtio_vsock_host_ops, the VMM's
 * Unix-socket muxer) reads and writes for it.
 *
 * Flow control is the spec's credit scheme, both ways:
 *   guest -> host: every packet to the guest carries buf_alloc
 *     (VIRTIO_VSOCK_BUF_ALLOC) and fwd_cnt (bytes handed to the host
 *     stream). Guest data is written to the stream at once; what the stream
 *     does not take is kept in the connection's buffer (buf_alloc bytes,
 *     allocated on first need) and the stream is watched for writability.
 *     fwd_cnt advances only as the stream takes bytes, so a host peer that
 *     stops reading stalls the guest by credit; nothing is dropped. A
 *     guest that sends beyond its credit (more than the buffer can keep) is
 *     answered RST.
 *   host -> guest: the device reads from a stream only while the guest's
 *     credit (peer buf_alloc - (bytes sent - peer fwd_cnt)) is positive, at
 *     most that many bytes, straight into the guest's rx buffers. At zero
 *     credit it stops watching the stream and sends CREDIT_REQUEST once.
 *   The device answers CREDIT_REQUEST with CREDIT_UPDATE and sends one
 *   unasked when the space the guest last heard of fell below half of
 *   buf_alloc and more has been forwarded since.
 * Host-bound packets other than RST for a connection that does not exist,
 * a bad op or type, a wrong cid, or a len beyond the chain or beyond
 * VIRTIO_VSOCK_MAX_PKT are answered RST (when there is a connection to name)
 * or dropped, and counted; a tx chain is always returned.
 *
 * Order to the guest: RSTs for unknown connections, then every connection's
 * control packets (REQUEST, RESPONSE, RST, SHUTDOWN, credit), then data,
 * one packet per connection in turn, so a handshake never waits behind
 * other connections' data.
 *
 * Shutdown: a guest SHUTDOWN with SEND shuts the stream's write side once
 * the buffer has drained (ops->shutdown); SEND and RCV both (the guest
 * closed) drains, then RST to the guest and the stream is closed. End of
 * file on the stream sends SHUTDOWN(SEND) to the guest; a stream error or a
 * failed write sends RST and closes.
 *
 * Threads and locks: everything runs under the transport's lock
 * (virtio_mmio_lock): the queue work (process), and the host side's entry
 * points below, which take it themselves. The host ops are called with
 * that lock held, from the thread that called into the device, and must
 * not call back into the device. Queue work and host events run on the
 * VMM's event loop; only a driver reset (a register write, on a vCPU
 * thread) calls ops->close from elsewhere, so close must not wait for the
 * loop. No allocation in the packet path except a connection's buffer, made
 * once on first need.
 */

#include "mmio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VIRTIO_VSOCK_MAX_CONNS	     1024u	 /* open connections; more are refused (RST) */
#define VIRTIO_VSOCK_BUF_ALLOC	     (64u << 10) /* the per-connection buffer the guest is told of */
#define VIRTIO_VSOCK_MAX_PKT	     (64u << 10) /* payload of one packet, either way */
#define VIRTIO_VSOCK_HDR_BYTES	     44u
#define VIRTIO_VSOCK_HOST_CID	     2u
#define VIRTIO_VSOCK_LOCAL_PORT_BASE (1u << 30) /* host ports of host-initiated connections */

struct iovec;

/* A connection as the host side names it: slot and generation, so a stale
 * handle (the connection is gone) is recognised. 0 is never a handle. */
typedef uint32_t virtio_vsock_handle;

/* The host side. host is the opaque of virtio_vsock_options; stream is
 * what connect() returned or virtio_vsock_host_connect() was given. */
struct virtio_vsock_host_ops {
	/* The guest connects to host port port: return 0 with *stream (the
	 * device calls readv/writev/watch/close on it from now on), or -errno
	 * (the guest gets RST). h names the connection for host_ready. */
	int (*connect)(void *host, uint32_t port, virtio_vsock_handle h, void **stream);
	/* The guest accepted a host-initiated connection; local_port is the
	 * host end's port. */
	void (*accepted)(void *host, void *stream, uint32_t local_port);
	/* Nonblocking: bytes moved, 0 (readv: end of file), -EAGAIN, -errno. */
	ssize_t (*readv)(void *host, void *stream, const struct iovec *iov, int n);
	ssize_t (*writev)(void *host, void *stream, const struct iovec *iov, int n);
	/* What the device wants to hear of (host_ready) from now on. */
	void (*watch)(void *host, void *stream, bool readable, bool writable);
	/* The guest will send no more: shut the stream's write side. */
	void (*shutdown)(void *host, void *stream);
	/* The connection is gone: the host side frees the stream (the device
	 * never names it again). Any thread; must not wait for the loop. */
	void (*close)(void *host, void *stream);
};

struct virtio_vsock_options {
	uint64_t guest_cid; /* >= 3 */
	const struct virtio_vsock_host_ops *host_ops;
	void *host;
};

struct virtio_vsock;

/* Creates the device and its transport (*out_t). cfg.ops/dev are filled in
 * here. Returns 0, -EINVAL (bad options: cid < 3 or reserved, no ops),
 * -ENOMEM. */
int virtio_vsock_create(struct virtio_mmio_config cfg, const struct virtio_vsock_options *opt,
			struct virtio_vsock **out, struct virtio_mmio **out_t);
/* Closes every connection (ops->close) and frees the device (after the
 * transport was destroyed). NULL is allowed. */
void virtio_vsock_destroy(struct virtio_vsock *v);

/* The host side, any thread (takes the transport lock): */
/* A host client asks for guest port port on stream: the device sends the
 * guest a REQUEST; the answer comes as ops->accepted, or ops->close on RST.
 * Returns 0 with *h, or -ENOTCONN (the driver is not running), -EBUSY (the
 * table is full). On error the stream is not the device's (no close). */
int virtio_vsock_host_connect(struct virtio_vsock *v, void *stream, uint32_t port,
			      virtio_vsock_handle *h);
/* The stream of h is readable and/or writable (as watched). A stale h is
 * ignored. */
void virtio_vsock_host_ready(struct virtio_vsock *v, virtio_vsock_handle h, bool readable,
			     bool writable);

/* The host side gives up on h (a host client that the guest did not answer
 * in time): RST to the guest, ops->close on the stream. A stale h is
 * ignored. */
void virtio_vsock_host_abort(struct virtio_vsock *v, virtio_vsock_handle h);

struct virtio_vsock_stats {
	uint64_t conns;		   /* open now */
	uint64_t peak;		   /* the most open at once */
	uint64_t opened;	   /* established, both directions */
	uint64_t refused;	   /* RST answered to a request (no listener, table full) */
	uint64_t rx_bytes;	   /* host -> guest payload */
	uint64_t tx_bytes;	   /* guest -> host payload */
	uint64_t bad_packets;	   /* malformed or out of protocol */
	uint64_t rst_dropped;	   /* RSTs for unknown connections not sent (queue full) */
	uint64_t transport_resets; /* transport reset events sent (after a load) */
};
void virtio_vsock_get_stats(struct virtio_vsock *v, struct virtio_vsock_stats *out);

/* The packet header (little-endian on the wire), for the parser and tests. */
struct virtio_vsock_pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};
/* Decodes VIRTIO_VSOCK_HDR_BYTES bytes. */
void virtio_vsock_hdr_decode(const uint8_t *raw, struct virtio_vsock_pkt *p);
void virtio_vsock_hdr_encode(const struct virtio_vsock_pkt *p, uint8_t *raw);
/* Checks a guest (tx) packet with readable bytes after the header against
 * the device's rules: 0, or -EINVAL (len beyond the chain or
 * VIRTIO_VSOCK_MAX_PKT, payload on a non-RW op), -EPROTO (bad type or op),
 * -EADDRNOTAVAIL (src not the guest's cid, dst not the host). */
int virtio_vsock_hdr_check(const struct virtio_vsock_pkt *p, uint64_t guest_cid,
			   uint64_t payload_avail);

#endif /* EMBER_DEVICES_VIRTIO_VSOCK_H */
