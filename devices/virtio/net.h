/* devices/virtio/net.h - virtio-net (VIRTIO 1.2, 5.1) on a tap file descriptor with a virtio_net_hdr: checksum and TSO offloads, mergeable receive buffers. */
#ifndef EMBER_DEVICES_VIRTIO_NET_H
#define EMBER_DEVICES_VIRTIO_NET_H

/*
 * A network card whose other end is a file descriptor that carries one
 * Ethernet frame per read or write, each preceded by a 12-byte
 * struct virtio_net_hdr_v1: a tap opened with IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR and TUNSETVNETHDRSZ 12 (vmm/tap.c), or in tests a
 * SOCK_SEQPACKET socket. The device never opens anything itself.
 *
 * Queues: 0 receive (host -> guest), 1 transmit (guest -> host); no control
 * queue. Offered: VIRTIO_NET_F_MAC (the MAC given), STATUS (link up), CSUM,
 * GUEST_CSUM, HOST_TSO4/6, HOST_ECN, GUEST_TSO4/6, GUEST_ECN, MRG_RXBUF.
 * When the driver has set DRIVER_OK, the device sets the fd's offloads
 * (TUNSETOFFLOAD) to what the driver accepted to receive: TUN_F_CSUM for
 * GUEST_CSUM, TSO4/TSO6/TSO_ECN for GUEST_TSO4/TSO6/ECN (with GUEST_CSUM),
 * so the tap hands over only what the guest can take. That happens on the
 * first queue work after activation (the I/O thread), not on the vCPU
 * thread that wrote the status; a fd that is not a tap (ENOTTY) keeps no
 * offloads and the device goes on.
 *
 * Transmit: each chain must be driver-readable only, hold the 12-byte
 * header and a frame of 14 to VIRTIO_NET_MAX_FRAME bytes; the header must
 * ask only for what was negotiated (virtio_net_tx_check). The device
 * copies the header (the guest cannot change it after the check), then
 * writev()s it and the frame straight from guest memory. A chain that does
 * not check out, or a write the fd refuses, is dropped and counted; the
 * chain goes back to the driver either way (used length 0). A full fd
 * (EAGAIN) is back-pressure, not a drop, when the host gave opt->tx_watch:
 * the device keeps that chain, stops the transmit queue (notifications
 * off), counts it (tx_blocked) and asks for the fd's writability
 * (tx_watch on); virtio_net_tx_ready, when it is writable, sends the chain
 * and goes on. Without tx_watch such a frame is dropped.
 *
 * Rate limits (ratelimit.h): each direction has its own limiter
 * (virtio_net_ratelimit); a direction out of tokens stops taking frames
 * (receive: the fd is not watched meanwhile) and calls ratelimit_throttle,
 * whose wait callback the host makes re-run the queue. Unlimited by default.
 *
 * VIRTIO_NET_F_MTU is offered when opt->mtu is set (VIRTIO_NET_MTU_MIN up
 * to 65535): the config space's mtu field holds it, and without GUEST_TSO
 * the device waits for receive buffers of mtu + 18 bytes (at least 1518).
 *
 * Receive: the device reads a frame only when the driver has posted
 * enough buffers for the largest frame it may get (65562 bytes plus the
 * header with GUEST_TSO, 1530 without), readv() straight into them: one
 * chain per frame, or with MRG_RXBUF as many chains as it takes
 * (num_buffers in the header). Receive chains must be device-writable
 * only and, with MRG_RXBUF, at least the header long; a bad one is
 * returned with length 0 and counted. A frame that does not fit what was
 * posted is dropped (the buffers are kept for the next one).
 *
 * The host side (the VMM) watches the fd for reading through
 * opt->rx_watch: on when the device has buffers and wants frames, off when
 * the guest has posted none (the tap queues or drops what comes meanwhile;
 * a receive-queue kick turns it on again). When the fd is readable the
 * VMM calls virtio_net_backend_ready on the thread that serves the queues.
 * Work is bounded per call (VIRTIO_NET_BATCH frames each way); what is
 * left is asked for again through opt->requeue (transmit) or by the fd
 * staying watched (receive).
 *
 * A broken ring (vq_pop -EIO) makes the device DEVICE_NEEDS_RESET.
 * Threads: queue work and virtio_net_backend_ready on one thread at a
 * time (the VMM's I/O thread), under the transport's lock; the callbacks
 * run with that lock held.
 */

#include "mmio.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_NET_HDR_BYTES 12u    /* struct virtio_net_hdr_v1 (VERSION_1) */
#define VIRTIO_NET_MAX_FRAME 65562u /* a GSO frame: 64 KiB + Ethernet + VLAN headers */
#define VIRTIO_NET_MIN_FRAME 14u    /* an Ethernet header */
#define VIRTIO_NET_RXQ	     0u
#define VIRTIO_NET_TXQ	     1u
#define VIRTIO_NET_QUEUES    2u
#define VIRTIO_NET_BATCH     256u
#define VIRTIO_NET_MTU_MIN   68u /* the smallest mtu= (IPv4's minimum) */

struct virtio_net_hdr_v1;

struct virtio_net_options {
	int fd;		/* the frame fd; owned by the device once create succeeds */
	uint8_t mac[6]; /* a unicast address */
	/* the host's hooks, called with the transport lock held */
	void (*rx_watch)(void *opaque, bool on);   /* watch fd for reading, or stop */
	void (*requeue)(void *opaque, unsigned q); /* run queue q's work again soon */
	/* watch fd for writing, or stop (NULL: a full fd drops frames) */
	void (*tx_watch)(void *opaque, bool on);
	void *opaque;
	uint16_t mtu; /* 0: VIRTIO_NET_F_MTU not offered */
};

struct virtio_net;

/*
 * Creates the device and its transport (*out_t, for the MMIO bus); cfg.ops
 * and cfg.dev are filled in here, mem/interrupt/notify are the caller's.
 * The fd is made non-blocking and its offloads cleared (TUNSETOFFLOAD 0;
 * ENOTTY for a fd that is not a tap is not an error). Returns 0, -EINVAL (bad options: fd < 0, a
 * multicast MAC, an mtu below VIRTIO_NET_MTU_MIN), -ENOMEM; on failure the fd is not closed.
 */
int virtio_net_create(struct virtio_mmio_config cfg, const struct virtio_net_options *opt,
		      struct virtio_net **out, struct virtio_mmio **out_t);
/* Closes the fd and frees the device (after its transport was destroyed).
 * NULL is allowed. */
void virtio_net_destroy(struct virtio_net *net);
/* The frame fd (for the host's watch). */
int virtio_net_fd(const struct virtio_net *net);

/* The fd is readable (the host's watch fired). hold: the VM's devices are
 * paused, so only stop watching (a later receive-queue run resumes).
 * Takes the transport lock. */
void virtio_net_backend_ready(struct virtio_net *net, bool hold);
/* The fd is writable (the host's transmit watch fired): the watch goes off
 * and, unless hold (paused: the host runs the transmit queue on resume),
 * the held chain and the rest of the queue are sent. Takes the lock. */
void virtio_net_tx_ready(struct virtio_net *net, bool hold);
/* The limiter of queue q (VIRTIO_NET_RXQ or VIRTIO_NET_TXQ), NULL for
 * another q. Used under the transport lock. */
struct ratelimit *virtio_net_ratelimit(struct virtio_net *net, unsigned q);

/*
 * The transmit header check: header h for a frame of frame_len bytes
 * (after the header) under the negotiated features. Only NEEDS_CSUM in
 * flags, and only with VIRTIO_NET_F_CSUM, its checksum field inside the
 * frame; gso_type NONE, TCPV4 (HOST_TSO4) or TCPV6 (HOST_TSO6), the ECN bit
 * only with HOST_ECN, a GSO frame with NEEDS_CSUM, a gso_size and hdr_len
 * inside the frame. Returns 0 or -EINVAL. Pure (no state).
 */
int virtio_net_tx_check(const struct virtio_net_hdr_v1 *h, uint64_t features, uint64_t frame_len);

struct virtio_net_stats {
	uint64_t rx_packets, rx_bytes, rx_dropped; /* dropped: did not fit, or short */
	uint64_t tx_packets, tx_bytes, tx_dropped; /* dropped: refused by the fd */
	uint64_t tx_blocked;			   /* times the fd was full (back-pressure) */
	uint64_t rx_gso, tx_gso;		   /* frames with a GSO type (TSO) */
	uint64_t bad_chains;			   /* chains refused (both queues) */
	uint64_t bad_headers;			   /* transmit headers that did not check out */
	uint64_t features;			   /* the last features the driver activated */
	int offloads;				   /* TUN_F_* set on the fd; -errno if refused */
};
/* A consistent copy (takes the transport lock). */
void virtio_net_get_stats(struct virtio_net *net, struct virtio_net_stats *out);

#endif /* EMBER_DEVICES_VIRTIO_NET_H */
