/* devices/reset_cf9.c - the reset control register (port 0xCF9). */
#include "reset_cf9.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#define KEPT (RESET_CF9_SYS_RST | RESET_CF9_FULL_RST)

struct reset_cf9 {
	struct dev dev;
	struct reset_cf9_config cfg;
	uint8_t value;	/* relaxed atomic: the kept bits */
	uint64_t count; /* relaxed atomic */
};

_Static_assert(offsetof(struct reset_cf9, dev) == 0, "struct dev must come first");

static void cf9_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
		       unsigned len, bool is_write)
{
	(void)addr;
	(void)vcpu;
	(void)len;
	struct reset_cf9 *rc = opaque;
	if (offset != 0)
		return;
	if (!is_write) {
		data[0] = __atomic_load_n(&rc->value, __ATOMIC_RELAXED);
		return;
	}
	uint8_t v = data[0];
	__atomic_store_n(&rc->value, (uint8_t)(v & KEPT), __ATOMIC_RELAXED);
	if (!(v & RESET_CF9_RST_CPU))
		return;
	__atomic_fetch_add(&rc->count, 1, __ATOMIC_RELAXED);
	if (rc->cfg.reset)
		rc->cfg.reset(rc->cfg.opaque, (v & KEPT) != 0);
}

static void cf9_reset(struct dev *dev)
{
	struct reset_cf9 *rc = (struct reset_cf9 *)dev;
	__atomic_store_n(&rc->value, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&rc->count, 0, __ATOMIC_RELAXED);
}

static void cf9_destroy(struct dev *dev)
{
	free(dev);
}

/* The saved state: the kept bits of the register (the reset count is the
 * host's statistic, not the guest's). */
static int cf9_save(struct dev *dev, struct vmm_state_w *w)
{
	struct reset_cf9 *rc = (struct reset_cf9 *)dev;
	vmm_sw_begin(w, "reset_cf9", 1);
	vmm_sw_u8(w, __atomic_load_n(&rc->value, __ATOMIC_RELAXED));
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int cf9_load(struct dev *dev, struct vmm_state_r *r)
{
	struct reset_cf9 *rc = (struct reset_cf9 *)dev;
	uint32_t version = 1;
	vmm_sr_begin(r, "reset_cf9", &version);
	uint8_t v = vmm_sr_u8(r);
	if (v & ~KEPT)
		return vmm_sr_fail(r, -EINVAL, "register value %#x", v);
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	__atomic_store_n(&rc->value, v, __ATOMIC_RELAXED);
	return 0;
}

static const struct dev_ops reset_cf9_ops = {
    .bus = {.name = "reset_cf9", .sizes = BUS_W1, .access = cf9_access},
    .reset = cf9_reset,
    .destroy = cf9_destroy,
    .save = cf9_save,
    .load = cf9_load,
};

int reset_cf9_create(const struct reset_cf9_config *cfg, struct reset_cf9 **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	struct reset_cf9 *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	rc->dev.ops = &reset_cf9_ops;
	rc->cfg = *cfg;
	*out = rc;
	return 0;
}

struct dev *reset_cf9_dev(struct reset_cf9 *rc)
{
	return &rc->dev;
}

uint64_t reset_cf9_count(struct reset_cf9 *rc)
{
	return __atomic_load_n(&rc->count, __ATOMIC_RELAXED);
}
