/* devices/virtio/console.h - virtio-console (VIRTIO 1.2, 5.3): one port (hvc0 in a Linux guest), no multiport. */
#ifndef EMBER_DEVICES_VIRTIO_CONSOLE_H
#define EMBER_DEVICES_VIRTIO_CONSOLE_H

/*
 * Port 0 only: queue 0 (receiveq) carries host input into buffers the driver
 * posted, queue 1 (transmitq) carries the guest's output. VIRTIO_CONSOLE_F_SIZE
 * is offered when the host gives a size (a terminal's), with cols/rows in
 * the configuration space; no MULTIPORT, no EMERG_WRITE.
 *
 * Output back-pressure: each transmit chain's readable bytes go to the
 * host's tx(), which may take fewer than offered (its buffer is full). The
 * device then keeps that chain, unfinished, and takes no other transmit
 * buffer until virtio_console_tx_ready() says there is room: the guest waits
 * (Linux's driver spins until its buffer comes back), nothing is dropped.
 *
 * Input: virtio_console_rx_push() fills the posted receive buffers and
 * returns how many bytes they took; the rest stays with the caller (held,
 * not lost). When the driver posts buffers, rx_ready() tells the host to
 * push again.
 *
 * A driver reset (Status 0) forgets an unfinished transmit chain (its
 * queue is gone) and the size notification; the device is usable again
 * after the driver's next setup.
 *
 * Threads: every function here and every callback runs with the
 * transport's lock held (virtio_console_rx_push and _tx_ready take it), on
 * the thread that serves the queues (the VMM's loop). No allocation after
 * create.
 */

#include "mmio.h"

#include <stddef.h>
#include <stdint.h>

#define VIRTIO_CONSOLE_Q_RX 0
#define VIRTIO_CONSOLE_Q_TX 1

struct virtio_console_host {
	/* The guest wrote len >= 1 bytes on the port: returns how many the
	 * host took (len, or fewer when it is full; then the device waits for
	 * virtio_console_tx_ready). Lock held: must not call into the device. */
	size_t (*tx)(void *opaque, const uint8_t *buf, size_t len);
	/* The driver posted receive buffers: the host may push input again
	 * (lock held: arrange it, e.g. wake the loop; NULL: not told). */
	void (*rx_ready)(void *opaque);
	void *opaque;
	/* The terminal's size; 0 x 0: VIRTIO_CONSOLE_F_SIZE is not offered. */
	uint16_t cols, rows;
};

struct virtio_console;

/* Counters, for logs and tests. */
struct virtio_console_stats {
	uint64_t bytes_out;  /* guest -> host, taken by tx() */
	uint64_t bytes_in;   /* host -> guest, placed in receive buffers */
	uint64_t tx_waits;   /* times a transmit chain waited for room */
	uint64_t bad_chains; /* chains refused by the virtqueue or without buffers */
};

/* Creates the device and its transport (*out_t goes on the MMIO bus).
 * cfg.ops and cfg.dev are filled in here. host is copied; host->tx is
 * required. Returns 0, -EINVAL, -ENOMEM. */
int virtio_console_create(struct virtio_mmio_config cfg, const struct virtio_console_host *host,
			  struct virtio_console **out, struct virtio_mmio **out_t);
/* Frees the device (after its transport was destroyed with dev_destroy). */
void virtio_console_destroy(struct virtio_console *c);

/* Host input: copies up to len bytes into the posted receive buffers (one
 * used entry per buffer chain filled) and interrupts the driver. Returns
 * the bytes taken: 0 when the driver is not ready or posted no buffer. */
size_t virtio_console_rx_push(struct virtio_console *c, const uint8_t *buf, size_t len);
/* The host has room again: the waiting transmit chain, then any others. */
void virtio_console_tx_ready(struct virtio_console *c);
/* A new terminal size (configuration change interrupt). -EOPNOTSUPP when
 * the device was created without one (F_SIZE not offered). */
int virtio_console_set_size(struct virtio_console *c, uint16_t cols, uint16_t rows);
void virtio_console_get_stats(struct virtio_console *c, struct virtio_console_stats *out);

#endif /* EMBER_DEVICES_VIRTIO_CONSOLE_H */
