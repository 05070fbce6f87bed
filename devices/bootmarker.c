/* devices/bootmarker.c - the boot-time marker port. */
#include "bootmarker.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

struct bootmarker {
	struct dev dev;
	struct bootmarker_config cfg;
	uint64_t count;	  /* relaxed atomic */
	uint64_t seen[4]; /* bit per value already marked (relaxed atomics) */
};

_Static_assert(offsetof(struct bootmarker, dev) == 0, "struct dev must come first");

static uint64_t now_ns(const struct bootmarker *bm)
{
	if (bm->cfg.now_ns)
		return bm->cfg.now_ns(bm->cfg.opaque);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void bootmarker_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu,
			      uint8_t *data, unsigned len, bool is_write)
{
	struct bootmarker *bm = opaque;
	if (!is_write || offset != 0)
		return; /* reads: all-ones */
	uint8_t value = data[0];
	if (bm->cfg.match_value && value != bm->cfg.value)
		return;
	uint64_t now = now_ns(bm);
	__atomic_fetch_add(&bm->count, 1, __ATOMIC_RELAXED);
	uint64_t bit = 1ull << (value & 63);
	if (__atomic_fetch_or(&bm->seen[value >> 6], bit, __ATOMIC_RELAXED) & bit)
		return; /* marked already: once per value */
	if (bm->cfg.mark)
		bm->cfg.mark(bm->cfg.opaque, value,
			     now >= bm->cfg.start_ns ? now - bm->cfg.start_ns : 0);
}

static void bootmarker_reset(struct dev *dev)
{
	struct bootmarker *bm = (struct bootmarker *)dev;
	__atomic_store_n(&bm->count, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		__atomic_store_n(&bm->seen[i], 0, __ATOMIC_RELAXED);
}

static void bootmarker_destroy(struct dev *dev)
{
	free(dev);
}

/* The saved state: the values already marked (a restored guest that writes
 * one again is not reported twice); the count is the host's statistic. */
static int bootmarker_save(struct dev *dev, struct vmm_state_w *w)
{
	struct bootmarker *bm = (struct bootmarker *)dev;
	vmm_sw_begin(w, "bootmarker", 1);
	for (int i = 0; i < 4; i++)
		vmm_sw_u64(w, __atomic_load_n(&bm->seen[i], __ATOMIC_RELAXED));
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int bootmarker_load(struct dev *dev, struct vmm_state_r *r)
{
	struct bootmarker *bm = (struct bootmarker *)dev;
	uint64_t seen[4];
	uint32_t version = 1;
	vmm_sr_begin(r, "bootmarker", &version);
	for (int i = 0; i < 4; i++)
		seen[i] = vmm_sr_u64(r);
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	for (int i = 0; i < 4; i++)
		__atomic_store_n(&bm->seen[i], seen[i], __ATOMIC_RELAXED);
	return 0;
}

static const struct dev_ops bootmarker_ops = {
    .bus = {.name = "bootmarker", .sizes = BUS_W1 | BUS_W2 | BUS_W4, .access = bootmarker_access},
    .reset = bootmarker_reset,
    .destroy = bootmarker_destroy,
    .save = bootmarker_save,
    .load = bootmarker_load,
};

int bootmarker_create(const struct bootmarker_config *cfg, struct bootmarker **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	struct bootmarker *bm = calloc(1, sizeof(*bm));
	if (!bm)
		return -ENOMEM;
	bm->dev.ops = &bootmarker_ops;
	bm->cfg = *cfg;
	*out = bm;
	return 0;
}

struct dev *bootmarker_dev(struct bootmarker *bm)
{
	return &bm->dev;
}

uint64_t bootmarker_count(struct bootmarker *bm)
{
	return __atomic_load_n(&bm->count, __ATOMIC_RELAXED);
}
