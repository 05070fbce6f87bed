/* devices/virtio/console.c - virtio-console, port 0: host input into posted buffers, guest output with back-pressure. */
#include "console.h"

#include <errno.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUFS 64

struct virtio_console {
	struct virtio_mmio *t;
	struct virtio_console_host host;
	uint64_t features; /* negotiated */
	bool has_size;	   /* VIRTIO_CONSOLE_F_SIZE offered */
	uint16_t cols, rows;
	bool size_told; /* the configuration interrupt for the size was sent */
	/* a transmit chain the host could not take whole: its readable bytes
	 * from tx_off on are still to go */
	bool tx_held;
	struct vq_chain tx_chain;
	uint64_t tx_off;
	uint64_t tx_resume; /* after a load: tx_off of the held chain, taken again */
	struct vq_buf tx_bufs[MAX_BUFS];
	struct vq_buf rx_bufs[MAX_BUFS];
	struct virtio_console_stats st;
};

static void config_read(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
	struct virtio_console *c = dev;
	struct virtio_console_config cc;
	memset(&cc, 0, sizeof(cc));
	cc.cols = c->cols;
	cc.rows = c->rows;
	cc.max_nr_ports = 1;
	memcpy(data, (const uint8_t *)&cc + off, len); /* bounds checked by the transport */
}

/* Sends what is left of the held chain; true when all of it went. */
static bool tx_drain(struct virtio_console *c)
{
	const struct vq_chain *ch = &c->tx_chain;
	uint64_t pos = 0;
	for (unsigned i = 0; i < ch->nreadable; i++) {
		const struct vq_buf *b = &ch->bufs[i];
		if (c->tx_off >= pos + b->len) {
			pos += b->len;
			continue;
		}
		uint64_t skip = c->tx_off - pos;
		size_t want = (size_t)(b->len - skip); /* >= 1: tx_off < pos + len */
		size_t took = c->host.tx(c->host.opaque, b->host + skip, want);
		if (took > want)
			took = want;
		c->tx_off += took;
		c->st.bytes_out += took;
		if (took < want)
			return false;
		pos += b->len;
	}
	return true;
}

static void tx_process(struct virtio_console *c, struct virtio_mmio *t)
{
	struct virtq *q = virtio_mmio_queue(t, VIRTIO_CONSOLE_Q_TX);
	bool pushed = false;
	int r = 0;
	for (;;) {
		if (!c->tx_held) {
			c->tx_chain = (struct vq_chain){.bufs = c->tx_bufs, .max_bufs = MAX_BUFS};
			r = vq_pop(q, &c->tx_chain);
			if (r != 1)
				break;
			c->tx_off = c->tx_resume;
			c->tx_resume = 0;
			if (c->tx_chain.error || c->tx_chain.nreadable == 0) {
				c->st.bad_chains++;
				vq_push(q, c->tx_chain.head, 0);
				pushed = true;
				continue;
			}
			c->tx_held = true;
		}
		if (!tx_drain(c)) {
			c->st.tx_waits++;
			break; /* the host is full: the chain waits for tx_ready */
		}
		c->tx_held = false;
		vq_push(q, c->tx_chain.head, 0);
		pushed = true;
	}
	if (r < 0)
		virtio_mmio_needs_reset(t);
	if (pushed)
		virtio_mmio_signal(t, VIRTIO_CONSOLE_Q_TX);
}

static void process(void *dev, struct virtio_mmio *t, unsigned qi)
{
	struct virtio_console *c = dev;
	if (qi == VIRTIO_CONSOLE_Q_TX) {
		tx_process(c, t);
		return;
	}
	/* receive buffers posted (also called at DRIVER_OK: then maybe none
	 * yet): tell the driver the size once (Linux reads it on a
	 * configuration interrupt, and has port 0 once it posts buffers), and
	 * the host to push input */
	if (!vq_has_work(virtio_mmio_queue(t, VIRTIO_CONSOLE_Q_RX)))
		return;
	if ((c->features & (1ull << VIRTIO_CONSOLE_F_SIZE)) && !c->size_told) {
		c->size_told = true;
		virtio_mmio_config_changed(t);
	}
	if (c->host.rx_ready)
		c->host.rx_ready(c->host.opaque);
}

static int activate(void *dev, uint64_t features)
{
	struct virtio_console *c = dev;
	c->features = features;
	return 0;
}

static void reset(void *dev)
{
	struct virtio_console *c = dev;
	c->features = 0;
	c->size_told = false;
	c->tx_held = false;
	c->tx_off = 0;
	c->tx_resume = 0;
}

/* Saved state: the size the driver was told, and how far the transmit
 * chain held for a full host had gone (that chain is taken again from the
 * ring after a load and continues from there). Input waits on the host's
 * side (the VMM's console buffer), not in the device. */
static unsigned held(void *dev, unsigned q, uint16_t *heads, unsigned max)
{
	struct virtio_console *c = dev;
	if (q != VIRTIO_CONSOLE_Q_TX || !c->tx_held || !max)
		return 0;
	heads[0] = c->tx_chain.head;
	return 1;
}

static int save(void *dev, struct vmm_state_w *w)
{
	struct virtio_console *c = dev;
	vmm_sw_begin(w, "virtio-console", 1);
	vmm_sw_u16(w, c->cols);
	vmm_sw_u16(w, c->rows);
	vmm_sw_bool(w, c->size_told);
	vmm_sw_bool(w, c->tx_held);
	vmm_sw_u64(w, c->tx_held ? c->tx_off : 0);
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int load(void *dev, struct vmm_state_r *r, uint64_t features)
{
	(void)features;
	struct virtio_console *c = dev;
	uint32_t version = 1;
	vmm_sr_begin(r, "virtio-console", &version);
	uint16_t cols = vmm_sr_u16(r), rows = vmm_sr_u16(r);
	bool size_told = vmm_sr_bool(r);
	bool tx_held = vmm_sr_bool(r);
	uint64_t tx_off = vmm_sr_u64(r);
	if (tx_off > UINT32_MAX || (!tx_held && tx_off))
		return vmm_sr_fail(r, -EINVAL, "transmit offset %llu", (unsigned long long)tx_off);
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	if (c->has_size) {
		c->cols = cols;
		c->rows = rows;
	}
	c->size_told = size_told;
	c->tx_held = false;
	c->tx_off = 0;
	c->tx_resume = tx_off;
	return 0;
}

#define CONSOLE_OPS(feat)                                                                        \
	{                                                                                        \
		.name = "virtio-console", .device_id = VIRTIO_ID_CONSOLE, .nqueues = 2,          \
		.queue_max = 256, .features = (feat),                                            \
		.config_size = sizeof(struct virtio_console_config), .config_read = config_read, \
		.activate = activate, .process = process, .reset = reset, .held = held,          \
		.save = save, .load = load,                                                      \
	}
static const struct virtio_dev_ops console_ops = CONSOLE_OPS(0);
static const struct virtio_dev_ops console_ops_size = CONSOLE_OPS(1ull << VIRTIO_CONSOLE_F_SIZE);

int virtio_console_create(struct virtio_mmio_config cfg, const struct virtio_console_host *host,
			  struct virtio_console **out, struct virtio_mmio **out_t)
{
	if (!out || !out_t || !host || !host->tx)
		return -EINVAL;
	*out = NULL;
	*out_t = NULL;
	struct virtio_console *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->host = *host;
	c->has_size = host->cols && host->rows;
	c->cols = host->cols;
	c->rows = host->rows;
	cfg.ops = c->has_size ? &console_ops_size : &console_ops;
	cfg.dev = c;
	int r = virtio_mmio_create(&cfg, &c->t);
	if (r < 0) {
		free(c);
		return r;
	}
	*out = c;
	*out_t = c->t;
	return 0;
}

void virtio_console_destroy(struct virtio_console *c)
{
	free(c);
}

size_t virtio_console_rx_push(struct virtio_console *c, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	bool pushed = false;
	virtio_mmio_lock(c->t);
	struct virtq *q = virtio_mmio_queue(c->t, VIRTIO_CONSOLE_Q_RX);
	while (done < len && virtio_mmio_queue_live(c->t, VIRTIO_CONSOLE_Q_RX)) {
		struct vq_chain ch = {.bufs = c->rx_bufs, .max_bufs = MAX_BUFS};
		int r = vq_pop(q, &ch);
		if (r < 0)
			virtio_mmio_needs_reset(c->t);
		if (r != 1)
			break;
		uint64_t n = 0;
		if (ch.error || ch.writable_len == 0)
			c->st.bad_chains++;
		else
			n = vq_chain_write(&ch, 0, buf + done, len - done);
		vq_push(q, ch.head, (uint32_t)n); /* n <= writable_len, which fits in 32 bits */
		pushed = true;
		done += (size_t)n;
		c->st.bytes_in += n;
	}
	if (pushed)
		virtio_mmio_signal(c->t, VIRTIO_CONSOLE_Q_RX);
	virtio_mmio_unlock(c->t);
	return done;
}

void virtio_console_tx_ready(struct virtio_console *c)
{
	virtio_mmio_process(c->t, VIRTIO_CONSOLE_Q_TX);
}

int virtio_console_set_size(struct virtio_console *c, uint16_t cols, uint16_t rows)
{
	virtio_mmio_lock(c->t);
	int r = -EOPNOTSUPP;
	if (c->has_size) {
		c->cols = cols;
		c->rows = rows;
		virtio_mmio_config_changed(c->t);
		r = 0;
	}
	virtio_mmio_unlock(c->t);
	return r;
}

void virtio_console_get_stats(struct virtio_console *c, struct virtio_console_stats *out)
{
	virtio_mmio_lock(c->t);
	*out = c->st;
	virtio_mmio_unlock(c->t);
}
