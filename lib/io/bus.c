/* lib/io/bus.c - the PIO/MMIO bus: immutable sorted range tables, binary-search dispatch. */
#include "bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct bus_range {
	uint64_t base;
	uint64_t last; /* base + len - 1, never wraps */
	uint64_t dev_offset;
	const struct bus_ops *ops;
	void *opaque;
};

/* Published tables are never modified; a change builds a new one. */
struct bus_table {
	struct bus_table *retired_next; /* older tables, freed by bus_destroy */
	size_t n;
	struct bus_range r[];
};

struct bus {
	struct bus_table *table; /* atomic: release store, acquire load */
	uint64_t last;
	pthread_mutex_t lock; /* serialises writers only */
	struct bus_table *retired;
	uint64_t unhandled_reads, unhandled_writes, rejected; /* relaxed atomics */
	char name[16];
};

static struct bus_table *table_alloc(size_t n)
{
	struct bus_table *t = calloc(1, sizeof(*t) + n * sizeof(t->r[0]));
	if (t)
		t->n = n;
	return t;
}

static struct bus_table *table_get(const struct bus *bus)
{
	return __atomic_load_n(&bus->table, __ATOMIC_ACQUIRE);
}

/* Publishes t and keeps the previous table until bus_destroy. Lock held. */
static void table_publish(struct bus *bus, struct bus_table *t)
{
	struct bus_table *old = bus->table;
	__atomic_store_n(&bus->table, t, __ATOMIC_RELEASE);
	old->retired_next = bus->retired;
	bus->retired = old;
}

int bus_create(const char *name, uint64_t last, struct bus **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct bus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return -ENOMEM;
	bus->table = table_alloc(0);
	if (!bus->table) {
		free(bus);
		return -ENOMEM;
	}
	bus->last = last;
	pthread_mutex_init(&bus->lock, NULL);
	if (name) {
		strncpy(bus->name, name, sizeof(bus->name) - 1);
		bus->name[sizeof(bus->name) - 1] = 0;
	}
	*out = bus;
	return 0;
}

void bus_destroy(struct bus *bus)
{
	if (!bus)
		return;
	free(bus->table);
	for (struct bus_table *t = bus->retired, *next; t; t = next) {
		next = t->retired_next;
		free(t);
	}
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

const char *bus_name(const struct bus *bus)
{
	return bus ? bus->name : "";
}

/* Index of the last range with base <= addr, or -1. */
static long table_search(const struct bus_table *t, uint64_t addr)
{
	size_t lo = 0, hi = t->n; /* answer in [lo - 1, hi - 1] */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->r[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

static bool sizes_valid(unsigned sizes)
{
	return sizes != 0 && (sizes & ~BUS_W_ALL) == 0;
}

int bus_register_at(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		    void *opaque, uint64_t dev_offset)
{
	if (!bus || !ops || !ops->access || !sizes_valid(ops->sizes) || len == 0)
		return -EINVAL;
	if (len - 1 > UINT64_MAX - base || base + (len - 1) > bus->last)
		return -EINVAL;
	if (len - 1 > UINT64_MAX - dev_offset)
		return -EINVAL;
	uint64_t last = base + (len - 1);

	pthread_mutex_lock(&bus->lock);
	const struct bus_table *cur = bus->table;
	long i = table_search(cur, base); /* the range before (or at) base */
	size_t pos = (size_t)(i + 1);
	int ret = -EEXIST;
	if (i >= 0 && cur->r[i].last >= base)
		goto out;
	if (pos < cur->n && cur->r[pos].base <= last)
		goto out;
	ret = -ENOMEM;
	struct bus_table *t = table_alloc(cur->n + 1);
	if (!t)
		goto out;
	memcpy(t->r, cur->r, pos * sizeof(t->r[0]));
	t->r[pos] = (struct bus_range){base, last, dev_offset, ops, opaque};
	memcpy(t->r + pos + 1, cur->r + pos, (cur->n - pos) * sizeof(t->r[0]));
	table_publish(bus, t);
	ret = 0;
out:
	pthread_mutex_unlock(&bus->lock);
	return ret;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque)
{
	return bus_register_at(bus, base, len, ops, opaque, 0);
}

static void count(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

int bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned len, bool is_write,
	       unsigned vcpu)
{
	if (!is_write)
		memset(data, 0xff, len);
	/* a power of two up to 8, and addr + len - 1 does not wrap */
	if (len == 0 || len > 8 || (len & (len - 1)) || addr > UINT64_MAX - (len - 1)) {
		count(&bus->rejected);
		return -EINVAL;
	}
	const struct bus_table *t = table_get(bus);
	long i = table_search(t, addr);
	if (i < 0 || t->r[i].last < addr) {
		count(is_write ? &bus->unhandled_writes : &bus->unhandled_reads);
		return -ENOENT;
	}
	const struct bus_range *r = &t->r[i];
	if (!(r->ops->sizes & len) || addr + (len - 1) > r->last) {
		count(&bus->rejected);
		return -EINVAL;
	}
	r->ops->access(r->opaque, r->dev_offset + (addr - r->base), addr, vcpu, data, len,
		       is_write);
	return 0;
}

int bus_access_u64(struct bus *bus, uint64_t addr, uint64_t *value, unsigned len, bool is_write,
		   unsigned vcpu)
{
	uint8_t buf[8];
	if (len == 0 || len > 8) {
		count(&bus->rejected);
		if (!is_write)
			*value = UINT64_MAX;
		return -EINVAL;
	}
	if (is_write)
		for (unsigned i = 0; i < len; i++)
			buf[i] = (uint8_t)(*value >> (8 * i));
	int ret = bus_access(bus, addr, buf, len, is_write, vcpu);
	if (!is_write) {
		uint64_t v = 0;
		for (unsigned i = 0; i < len; i++)
			v |= (uint64_t)buf[i] << (8 * i);
		*value = v;
	}
	return ret;
}

void bus_get_stats(const struct bus *bus, struct bus_stats *out)
{
	out->unhandled_reads = __atomic_load_n(&bus->unhandled_reads, __ATOMIC_RELAXED);
	out->unhandled_writes = __atomic_load_n(&bus->unhandled_writes, __ATOMIC_RELAXED);
	out->rejected = __atomic_load_n(&bus->rejected, __ATOMIC_RELAXED);
}
