/* devices/ged.c - the ACPI Generic Event Device's register window (events, GPE acks, hotplug slots). */
#include "ged.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define EV_KNOWN                                                         \
	(GED_EV_POWER | GED_EV_SLEEP | GED_EV_HOTPLUG | GED_EV_VMGENID | \
	 (((1u << GED_MAX_GPE) - 1) << 8))

struct ged {
	struct dev dev;
	struct ged_config cfg;
	pthread_mutex_t lock;
	uint32_t pending;
	uint32_t slots;
	bool level;
	struct ged_stats st;
};
_Static_assert(offsetof(struct ged, dev) == 0, "struct dev must come first");
_Static_assert(8 + GED_MAX_GPE <= 32, "GPE bits fit the event register");

/* Lock held: the line follows the pending events. */
static void update_irq(struct ged *g)
{
	bool level = g->pending != 0;
	if (level != g->level) {
		g->level = level;
		if (g->cfg.set_irq)
			g->cfg.set_irq(g->cfg.opaque, level);
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void ged_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
		       unsigned len, bool is_write)
{
	(void)addr;
	(void)vcpu;
	struct ged *g = opaque;
	if (len != 4 || (offset & 3) || offset >= GED_WINDOW) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	bool eject = false;
	uint32_t v = is_write ? get32(data) : 0;
	pthread_mutex_lock(&g->lock);
	switch (offset) {
	case GED_REG_EVENT:
		if (!is_write) {
			v = g->pending;
			g->pending = 0;
			if (v)
				g->st.reads++;
			update_irq(g);
		}
		break;
	case GED_REG_ACK:
		if (is_write && v < GED_MAX_GPE)
			g->st.gpe_handled[v]++;
		v = 0;
		break;
	case GED_REG_SLOTS:
		v = g->slots;
		break;
	case GED_REG_EJECT:
		if (is_write && v < GED_MAX_SLOTS) {
			g->st.ejects++;
			eject = true;
		}
		break;
	}
	pthread_mutex_unlock(&g->lock);
	if (!is_write)
		put32(data, offset == GED_REG_EJECT ? 0 : v);
	else if (eject && g->cfg.eject)
		g->cfg.eject(g->cfg.opaque, v);
}

static void ged_reset(struct dev *dev)
{
	struct ged *g = (struct ged *)dev;
	pthread_mutex_lock(&g->lock);
	g->pending = 0;
	update_irq(g);
	pthread_mutex_unlock(&g->lock);
}

static void ged_destroy(struct dev *dev)
{
	struct ged *g = (struct ged *)dev;
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* The saved state: the events pending for the guest's _EVT. A board with
 * a hotplugged card is not saved (the card is not in the configuration the
 * restore rebuilds from). */
static int ged_save(struct dev *dev, struct vmm_state_w *w)
{
	struct ged *g = (struct ged *)dev;
	pthread_mutex_lock(&g->lock);
	uint32_t pending = g->pending, slots = g->slots;
	pthread_mutex_unlock(&g->lock);
	if (slots)
		return -EBUSY;
	vmm_sw_begin(w, "acpi-ged", 1);
	vmm_sw_u32(w, pending);
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int ged_load(struct dev *dev, struct vmm_state_r *r)
{
	struct ged *g = (struct ged *)dev;
	uint32_t version = 1;
	if (vmm_sr_begin(r, "acpi-ged", &version))
		return vmm_sr_error(r);
	uint32_t pending = vmm_sr_u32(r);
	if (pending & ~EV_KNOWN)
		return vmm_sr_fail(r, -EINVAL, "events %#x", pending);
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	pthread_mutex_lock(&g->lock);
	g->pending = pending;
	update_irq(g);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static const struct dev_ops ged_ops = {
    .bus = {.name = "acpi-ged", .sizes = BUS_W1 | BUS_W2 | BUS_W4 | BUS_W8, .access = ged_access},
    .reset = ged_reset,
    .destroy = ged_destroy,
    .save = ged_save,
    .load = ged_load,
};

int ged_create(const struct ged_config *cfg, struct ged **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	struct ged *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->dev.ops = &ged_ops;
	g->cfg = *cfg;
	pthread_mutex_init(&g->lock, NULL);
	*out = g;
	return 0;
}

struct dev *ged_dev(struct ged *g)
{
	return &g->dev;
}

int ged_raise(struct ged *g, uint32_t events)
{
	if (!events || (events & ~EV_KNOWN))
		return -EINVAL;
	pthread_mutex_lock(&g->lock);
	g->pending |= events;
	for (unsigned i = 0; i < 3; i++)
		if (events & (1u << i))
			g->st.raised[i]++;
	for (unsigned n = 0; n < GED_MAX_GPE; n++)
		if (events & GED_EV_GPE(n))
			g->st.gpe_raised[n]++;
	update_irq(g);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

void ged_set_slots(struct ged *g, uint32_t present)
{
	pthread_mutex_lock(&g->lock);
	g->slots = present;
	pthread_mutex_unlock(&g->lock);
}

uint32_t ged_slots(struct ged *g)
{
	pthread_mutex_lock(&g->lock);
	uint32_t v = g->slots;
	pthread_mutex_unlock(&g->lock);
	return v;
}

void ged_get_stats(struct ged *g, struct ged_stats *out)
{
	pthread_mutex_lock(&g->lock);
	*out = g->st;
	pthread_mutex_unlock(&g->lock);
}
