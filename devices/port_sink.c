/* devices/port_sink.c - the "ignore" device: reads a fill byte, drops writes. */
#include "port_sink.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct port_sink {
	struct dev dev;
	uint8_t fill;
	uint64_t count; /* relaxed atomic */
};

_Static_assert(offsetof(struct port_sink, dev) == 0, "struct dev must come first");

static void sink_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
			unsigned len, bool is_write)
{
	struct port_sink *ps = opaque;
	__atomic_fetch_add(&ps->count, 1, __ATOMIC_RELAXED);
	if (!is_write)
		memset(data, ps->fill, len);
}

static void sink_reset(struct dev *dev)
{
}

static void sink_destroy(struct dev *dev)
{
	free(dev);
}

static const struct dev_ops port_sink_ops = {
    .bus = {.name = "port_sink", .sizes = BUS_W_ALL, .access = sink_access},
    .reset = sink_reset,
    .destroy = sink_destroy,
};

int port_sink_create(uint8_t fill, struct port_sink **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct port_sink *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->dev.ops = &port_sink_ops;
	ps->fill = fill;
	*out = ps;
	return 0;
}

struct dev *port_sink_dev(struct port_sink *ps)
{
	return &ps->dev;
}

uint64_t port_sink_count(struct port_sink *ps)
{
	return __atomic_load_n(&ps->count, __ATOMIC_RELAXED);
}
