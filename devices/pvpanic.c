/* devices/pvpanic.c - the pvpanic device (guest panic notification port). */
#include "pvpanic.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#define PVPANIC_SUPPORTED (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED)

struct pvpanic {
	struct dev dev;
	struct pvpanic_config cfg;
	unsigned events; /* relaxed atomic */
};

_Static_assert(offsetof(struct pvpanic, dev) == 0, "struct dev must come first");

static void pvpanic_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu,
			   uint8_t *data, unsigned len, bool is_write)
{
	(void)addr;
	(void)vcpu;
	(void)len;
	struct pvpanic *p = opaque;
	if (offset != 0)
		return;
	if (!is_write) {
		data[0] = PVPANIC_SUPPORTED;
		return;
	}
	unsigned ev = data[0] & PVPANIC_SUPPORTED;
	if (!ev)
		return;
	__atomic_fetch_or(&p->events, ev, __ATOMIC_RELAXED);
	if (p->cfg.event)
		p->cfg.event(p->cfg.opaque, ev);
}

static void pvpanic_reset(struct dev *dev)
{
	struct pvpanic *p = (struct pvpanic *)dev;
	__atomic_store_n(&p->events, 0, __ATOMIC_RELAXED);
}

static void pvpanic_destroy(struct dev *dev)
{
	free(dev);
}

/* The saved state: the events the guest reported. */
static int pvpanic_save(struct dev *dev, struct vmm_state_w *w)
{
	struct pvpanic *p = (struct pvpanic *)dev;
	vmm_sw_begin(w, "pvpanic", 1);
	vmm_sw_u8(w, (uint8_t)__atomic_load_n(&p->events, __ATOMIC_RELAXED));
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int pvpanic_load(struct dev *dev, struct vmm_state_r *r)
{
	struct pvpanic *p = (struct pvpanic *)dev;
	uint32_t version = 1;
	vmm_sr_begin(r, "pvpanic", &version);
	uint8_t ev = vmm_sr_u8(r);
	if (ev & ~PVPANIC_SUPPORTED)
		return vmm_sr_fail(r, -EINVAL, "events %#x", ev);
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	__atomic_store_n(&p->events, ev, __ATOMIC_RELAXED);
	return 0;
}

static const struct dev_ops pvpanic_ops = {
    .bus = {.name = "pvpanic", .sizes = BUS_W1, .access = pvpanic_access},
    .reset = pvpanic_reset,
    .destroy = pvpanic_destroy,
    .save = pvpanic_save,
    .load = pvpanic_load,
};

int pvpanic_create(const struct pvpanic_config *cfg, struct pvpanic **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	struct pvpanic *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dev.ops = &pvpanic_ops;
	p->cfg = *cfg;
	*out = p;
	return 0;
}

struct dev *pvpanic_dev(struct pvpanic *p)
{
	return &p->dev;
}

unsigned pvpanic_events(struct pvpanic *p)
{
	return __atomic_load_n(&p->events, __ATOMIC_RELAXED);
}
