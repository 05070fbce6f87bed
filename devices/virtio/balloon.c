/* devices/virtio/balloon.c - virtio-balloon: inflate/deflate, guest statistics, free page reporting. */
#include "balloon.h"

#include <errno.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>

#define PAGE	  4096u
#define MAX_BUFS  64
#define STAT_SIZE 10 /* packed {u16 tag; u64 val} */

enum { Q_INFLATE, Q_DEFLATE, Q_EXTRA1, Q_EXTRA2, NQUEUES };

struct virtio_balloon {
	struct virtio_dev_ops ops; /* per instance: reporting may be turned off */
	struct virtio_mmio *t;
	const struct vmm_mem *mem;
	uint64_t features;		/* negotiated */
	struct virtio_balloon_stats st; /* under the transport lock */
	bool stats_held;
	uint16_t stats_head;
	struct vq_buf bufs[MAX_BUFS];
};

/* Queue index of the stats and reporting queues for the negotiated features. */
static int stats_queue(const struct virtio_balloon *b)
{
	return b->features & (1ull << VIRTIO_BALLOON_F_STATS_VQ) ? Q_EXTRA1 : -1;
}
static int reporting_queue(const struct virtio_balloon *b)
{
	if (!(b->features & (1ull << VIRTIO_BALLOON_F_REPORTING)))
		return -1;
	return stats_queue(b) >= 0 ? Q_EXTRA2 : Q_EXTRA1;
}

static void config_read(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
	struct virtio_balloon *b = dev;
	struct virtio_balloon_config c;
	memset(&c, 0, sizeof(c));
	c.num_pages = b->st.target_pages;
	c.actual = b->st.actual_pages;
	memcpy(data, (const uint8_t *)&c + off, len);
}

static void config_write(void *dev, uint32_t off, const uint8_t *data, unsigned len)
{
	struct virtio_balloon *b = dev;
	/* only "actual" (offset 4, 4 bytes) is the driver's to write */
	if (off == offsetof(struct virtio_balloon_config, actual) && len == 4)
		memcpy(&b->st.actual_pages, data, 4);
}

static void give_back(struct virtio_balloon *b, uint64_t gpa, uint64_t pages)
{
	if (!b->mem->hugepages && vmm_mem_discard(b->mem, gpa, pages * PAGE) == 0)
		b->st.discarded += pages;
}

/* Inflate or deflate: the chain holds PFNs. */
static void pfns(struct virtio_balloon *b, const struct vq_chain *c, bool inflate)
{
	uint64_t run_start = 0, run_len = 0;
	for (uint64_t off = 0; off + 4 <= c->readable_len; off += 4) {
		uint32_t pfn;
		if (vq_chain_read(c, off, &pfn, 4) != 4)
			break;
		uint64_t gpa = (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT;
		if (inflate)
			b->st.inflated++;
		else
			b->st.deflated++;
		if (!vmm_mem_contains(b->mem, gpa, PAGE)) {
			b->st.bad_pfns++;
			continue;
		}
		if (!inflate)
			continue;
		if (run_len && gpa == run_start + run_len * PAGE) {
			run_len++;
			continue;
		}
		if (run_len)
			give_back(b, run_start, run_len);
		run_start = gpa;
		run_len = 1;
	}
	if (run_len)
		give_back(b, run_start, run_len);
}

static void stats(struct virtio_balloon *b, const struct vq_chain *c)
{
	for (uint64_t off = 0; off + STAT_SIZE <= c->readable_len; off += STAT_SIZE) {
		uint8_t s[STAT_SIZE];
		if (vq_chain_read(c, off, s, STAT_SIZE) != STAT_SIZE)
			break;
		uint16_t tag;
		uint64_t val;
		memcpy(&tag, s, 2);
		memcpy(&val, s + 2, 8);
		if (tag < 10) {
			b->st.guest[tag] = val;
			b->st.guest_valid |= 1u << tag;
		}
	}
	b->st.have_guest_stats = true;
	b->st.guest_updates++;
}

static void report(struct virtio_balloon *b, const struct vq_chain *c)
{
	for (unsigned i = c->nreadable; i < c->nbufs; i++) {
		const struct vq_buf *buf = &c->bufs[i];
		b->st.reported += buf->len / PAGE;
		if (!(buf->gpa & (PAGE - 1)) && !(buf->len & (PAGE - 1)))
			give_back(b, buf->gpa, buf->len / PAGE);
	}
}

static void process(void *dev, struct virtio_mmio *t, unsigned qi)
{
	struct virtio_balloon *b = dev;
	struct virtq *q = virtio_mmio_queue(t, qi);
	struct vq_chain c = {.bufs = b->bufs, .max_bufs = MAX_BUFS};
	bool pushed = false;
	int r;
	while ((r = vq_pop(q, &c)) == 1) {
		if (c.error) {
			virtio_mmio_refuse_chain(t, qi, c.head);
			pushed = true;
			break;
		}
		if ((int)qi == stats_queue(b)) {
			stats(b, &c);
			if (!b->stats_held) { /* keep it until the host asks again */
				b->stats_held = true;
				b->stats_head = c.head;
				continue;
			}
		} else if (qi == Q_INFLATE || qi == Q_DEFLATE) {
			pfns(b, &c, qi == Q_INFLATE);
		} else if ((int)qi == reporting_queue(b)) {
			report(b, &c);
		}
		vq_push(q, c.head, 0);
		pushed = true;
	}
	if (r < 0)
		virtio_mmio_needs_reset(t);
	if (pushed)
		virtio_mmio_signal(t, qi);
}

static int activate(void *dev, uint64_t features)
{
	struct virtio_balloon *b = dev;
	b->features = features;
	b->st.features = features & b->ops.features;
	return 0;
}

static void reset(void *dev)
{
	struct virtio_balloon *b = dev;
	b->features = 0;
	b->st.features = 0;
	b->stats_held = false;
	b->st.actual_pages = 0;
}

/* Saved state: the target and actual sizes, the guest's last statistics
 * (the stats buffer held for the next request is taken again from the
 * ring after a load: the guest's statistics in it are read again). */
static unsigned held(void *dev, unsigned q, uint16_t *heads, unsigned max)
{
	struct virtio_balloon *b = dev;
	if (!b->stats_held || (int)q != stats_queue(b) || !max)
		return 0;
	heads[0] = b->stats_head;
	return 1;
}

static int save(void *dev, struct vmm_state_w *w)
{
	struct virtio_balloon *b = dev;
	vmm_sw_begin(w, "virtio-balloon", 1);
	vmm_sw_u32(w, b->st.target_pages);
	vmm_sw_u32(w, b->st.actual_pages);
	vmm_sw_bool(w, b->st.have_guest_stats);
	vmm_sw_u32(w, b->st.guest_valid);
	for (unsigned i = 0; i < 10; i++)
		vmm_sw_u64(w, b->st.guest[i]);
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int load(void *dev, struct vmm_state_r *r, uint64_t features)
{
	(void)features;
	struct virtio_balloon *b = dev;
	struct virtio_balloon_stats n = b->st;
	uint32_t version = 1;
	vmm_sr_begin(r, "virtio-balloon", &version);
	n.target_pages = vmm_sr_u32(r);
	n.actual_pages = vmm_sr_u32(r);
	n.have_guest_stats = vmm_sr_bool(r);
	n.guest_valid = vmm_sr_u32(r);
	for (unsigned i = 0; i < 10; i++)
		n.guest[i] = vmm_sr_u64(r);
	if (n.guest_valid >> 10)
		return vmm_sr_fail(r, -EINVAL, "statistics tags %#x", n.guest_valid);
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	b->st = n;
	b->stats_held = false;
	return 0;
}

static const struct virtio_dev_ops balloon_ops = {
    .name = "virtio-balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .nqueues = NQUEUES,
    .queue_max = 256,
    .features = (1ull << VIRTIO_BALLOON_F_STATS_VQ) | (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
		(1ull << VIRTIO_BALLOON_F_REPORTING),
    .config_size = sizeof(struct virtio_balloon_config),
    .config_read = config_read,
    .config_write = config_write,
    .activate = activate,
    .process = process,
    .reset = reset,
    .held = held,
    .save = save,
    .load = load,
};

int virtio_balloon_create(struct virtio_mmio_config cfg, struct virtio_balloon **out,
			  struct virtio_mmio **out_t)
{
	return virtio_balloon_create_opts(cfg, NULL, out, out_t);
}

int virtio_balloon_create_opts(struct virtio_mmio_config cfg,
			       const struct virtio_balloon_options *opt,
			       struct virtio_balloon **out, struct virtio_mmio **out_t)
{
	if (!out || !out_t || !cfg.mem)
		return -EINVAL;
	*out = NULL;
	*out_t = NULL;
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->mem = cfg.mem;
	b->ops = balloon_ops;
	if (opt && opt->no_reporting)
		b->ops.features &= ~(1ull << VIRTIO_BALLOON_F_REPORTING);
	cfg.ops = &b->ops;
	cfg.dev = b;
	int r = virtio_mmio_create(&cfg, &b->t);
	if (r < 0) {
		free(b);
		return r;
	}
	*out = b;
	*out_t = b->t;
	return 0;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	free(b);
}

void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages)
{
	virtio_mmio_lock(b->t);
	b->st.target_pages = pages;
	virtio_mmio_config_changed(b->t);
	virtio_mmio_unlock(b->t);
}

int virtio_balloon_request_stats(struct virtio_balloon *b)
{
	int r = -EAGAIN;
	virtio_mmio_lock(b->t);
	int sq = stats_queue(b);
	if (b->stats_held && sq >= 0) {
		struct virtq *q = virtio_mmio_queue(b->t, (unsigned)sq);
		b->stats_held = false;
		if (vq_push(q, b->stats_head, 0) == 0) {
			virtio_mmio_signal(b->t, (unsigned)sq);
			r = 0;
		}
	}
	virtio_mmio_unlock(b->t);
	return r;
}

void virtio_balloon_get_stats(struct virtio_balloon *b, struct virtio_balloon_stats *out)
{
	virtio_mmio_lock(b->t);
	*out = b->st;
	virtio_mmio_unlock(b->t);
}
