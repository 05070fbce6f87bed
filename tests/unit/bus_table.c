/* tests/unit/bus_table.c - the PIO/MMIO bus: registration rules, dispatch, widths, unhandled. */
#include "../lib/test.h"
#include "../../lib/io/bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

/* A device that records its last access and answers reads with a pattern. */
struct rec {
	int calls;
	void *opaque;
	uint64_t offset, addr;
	unsigned vcpu, len;
	bool is_write;
	uint8_t wdata[8];
	uint8_t tag; /* reads return tag + byte index */
};

static void rec_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
		       unsigned len, bool is_write)
{
	struct rec *r = opaque;
	r->calls++;
	r->opaque = opaque;
	r->offset = offset;
	r->addr = addr;
	r->vcpu = vcpu;
	r->len = len;
	r->is_write = is_write;
	if (is_write)
		memcpy(r->wdata, data, len);
	else
		for (unsigned i = 0; i < len; i++)
			data[i] = (uint8_t)(r->tag + i);
}

static const struct bus_ops rec_ops_1 = {"rec1", BUS_W1, rec_access};
static const struct bus_ops rec_ops_124 = {"rec124", BUS_W1 | BUS_W2 | BUS_W4, rec_access};
static const struct bus_ops rec_ops_all = {"recall", BUS_W_ALL, rec_access};

/* reads nothing: the bus's pre-fill must show through */
static void silent_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu,
			  uint8_t *data, unsigned len, bool is_write)
{
	(*(int *)opaque)++;
}
static const struct bus_ops silent_ops = {"silent", BUS_W_ALL, silent_access};

static struct bus *new_bus(uint64_t last)
{
	struct bus *b = NULL;
	int r = bus_create("test", last, &b);
	if (r < 0 || !b)
		TEST_FAIL("bus_create: %d", r);
	return b;
}

TEST(bus_create_args)
{
	CHECK_ERR(bus_create("x", BUS_PIO_LAST, NULL), -EINVAL);
	struct bus *b = NULL;
	REQUIRE_OK(bus_create("a-rather-long-bus-name", BUS_PIO_LAST, &b));
	CHECK_EQ(strlen(bus_name(b)), 15);
	bus_destroy(b);
	bus_destroy(NULL);
}

TEST(bus_register_rejects_invalid)
{
	struct bus *b = new_bus(BUS_PIO_LAST);
	struct rec r = {0};
	static const struct bus_ops no_fn = {"nofn", BUS_W1, NULL};
	static const struct bus_ops no_sizes = {"nosz", 0, rec_access};
	static const struct bus_ops bad_sizes = {"badsz", BUS_W1 | 16, rec_access};
	CHECK_ERR(bus_register(NULL, 0x10, 1, &rec_ops_1, &r), -EINVAL);
	CHECK_ERR(bus_register(b, 0x10, 1, NULL, &r), -EINVAL);
	CHECK_ERR(bus_register(b, 0x10, 1, &no_fn, &r), -EINVAL);
	CHECK_ERR(bus_register(b, 0x10, 1, &no_sizes, &r), -EINVAL);
	CHECK_ERR(bus_register(b, 0x10, 1, &bad_sizes, &r), -EINVAL);
	CHECK_ERR(bus_register(b, 0x10, 0, &rec_ops_1, &r), -EINVAL);
	/* past the PIO space, and wrapping */
	CHECK_ERR(bus_register(b, 0xffff, 2, &rec_ops_1, &r), -EINVAL);
	CHECK_ERR(bus_register(b, 0x10000, 1, &rec_ops_1, &r), -EINVAL);
	CHECK_ERR(bus_register(b, 0x10, UINT64_MAX, &rec_ops_1, &r), -EINVAL);
	CHECK_ERR(bus_register_at(b, 0x10, 2, &rec_ops_1, &r, UINT64_MAX), -EINVAL);
	/* the last port itself is fine */
	CHECK_OK(bus_register(b, 0xffff, 1, &rec_ops_1, &r));
	/* nothing half-registered: the failed calls left only that one */
	int n = 0;
	uint8_t one;
	for (uint64_t a = 0; a < 0x10000; a++)
		n += bus_access(b, a, &one, 1, false, 0) == 0;
	CHECK_EQ(n, 1);
	bus_destroy(b);

	/* wrap-around on a 64-bit bus */
	b = new_bus(BUS_MMIO_LAST);
	CHECK_ERR(bus_register(b, UINT64_MAX, 2, &rec_ops_1, &r), -EINVAL);
	CHECK_ERR(bus_register(b, UINT64_MAX - 3, 8, &rec_ops_1, &r), -EINVAL);
	CHECK_OK(bus_register(b, UINT64_MAX - 7, 8, &rec_ops_1, &r));
	bus_destroy(b);
}

TEST(bus_register_overlap)
{
	struct bus *b = new_bus(BUS_PIO_LAST);
	struct rec r = {0};
	REQUIRE_OK(bus_register(b, 0x10, 8, &rec_ops_1, &r)); /* 0x10-0x17 */
	CHECK_ERR(bus_register(b, 0x10, 8, &rec_ops_1, &r), -EEXIST);
	CHECK_ERR(bus_register(b, 0x17, 1, &rec_ops_1, &r), -EEXIST);
	CHECK_ERR(bus_register(b, 0x0f, 2, &rec_ops_1, &r), -EEXIST);
	CHECK_ERR(bus_register(b, 0x12, 2, &rec_ops_1, &r), -EEXIST);
	CHECK_ERR(bus_register(b, 0x00, 0x100, &rec_ops_1, &r), -EEXIST);
	CHECK_ERR(bus_register_at(b, 0x16, 4, &rec_ops_1, &r, 4), -EEXIST);
	/* touching on either side is not overlapping */
	CHECK_OK(bus_register(b, 0x18, 1, &rec_ops_1, &r));
	CHECK_OK(bus_register(b, 0x0f, 1, &rec_ops_1, &r));
	CHECK_OK(bus_register(b, 0x00, 0x0f, &rec_ops_1, &r));
	CHECK_ERR(bus_register(b, 0x00, 1, &rec_ops_1, &r), -EEXIST);
	CHECK_ERR(bus_register(b, 0x0e, 0x20, &rec_ops_1, &r), -EEXIST);
	bus_destroy(b);
}

TEST(bus_dispatch_boundaries)
{
	struct bus *b = new_bus(BUS_PIO_LAST);
	struct rec a = {.tag = 0xa0}, c = {.tag = 0xc0}, d = {.tag = 0xd0};
	REQUIRE_OK(bus_register(b, 0x3f8, 8, &rec_ops_1, &a));
	REQUIRE_OK(bus_register(b, 0x401, 4, &rec_ops_124, &c)); /* a 1-port gap at 0x400 */
	REQUIRE_OK(bus_register(b, 0x405, 4, &rec_ops_124, &d)); /* touching c */
	uint8_t v[4];

	CHECK_OK(bus_access(b, 0x3f8, v, 1, false, 3));
	CHECK_EQ(a.calls, 1);
	CHECK_EQ(a.offset, 0);
	CHECK_EQ(a.addr, 0x3f8);
	CHECK_EQ(a.vcpu, 3);
	CHECK_EQ(v[0], 0xa0);
	CHECK_OK(bus_access(b, 0x3ff, v, 1, false, 0));
	CHECK_EQ(a.offset, 7);
	CHECK_EQ(a.calls, 2);

	/* just outside: unhandled, nobody called */
	CHECK_ERR(bus_access(b, 0x3f7, v, 1, false, 0), -ENOENT);
	CHECK_EQ(v[0], 0xff);
	CHECK_ERR(bus_access(b, 0x400, v, 1, true, 0), -ENOENT);
	CHECK_EQ(a.calls, 2);

	/* the last byte of c and the first of d go to the right device */
	v[0] = 0x5a;
	CHECK_OK(bus_access(b, 0x404, v, 1, true, 1));
	CHECK_EQ(c.calls, 1);
	CHECK_EQ(c.offset, 3);
	CHECK(c.is_write);
	CHECK_EQ(c.wdata[0], 0x5a);
	CHECK_OK(bus_access(b, 0x405, v, 4, false, 1));
	CHECK_EQ(d.calls, 1);
	CHECK_EQ(d.offset, 0);
	CHECK_EQ(d.len, 4);
	CHECK_EQ(v[0], 0xd0);
	CHECK_EQ(v[3], 0xd3);
	CHECK_EQ(c.calls, 1);
	/* a 4-byte access at c's last 2 bytes straddles into d: rejected */
	CHECK_ERR(bus_access(b, 0x403, v, 4, false, 0), -EINVAL);
	CHECK_EQ(v[0], 0xff);
	CHECK_EQ(v[3], 0xff);
	CHECK_EQ(c.calls, 1);
	CHECK_EQ(d.calls, 1);
	bus_destroy(b);
}

TEST(bus_dispatch_many_ranges)
{
	/* 200 ranges registered in a scrambled order; every address of every
	 * range must reach its own device with the right offset */
	enum { N = 200 };
	struct bus *b = new_bus(BUS_MMIO_LAST);
	static struct rec recs[N];
	for (int k = 0; k < N; k++) {
		int i = (k * 73) % N; /* 73 is coprime with 200: a permutation */
		recs[i] = (struct rec){.tag = (uint8_t)i};
		REQUIRE_OK(bus_register(b, 0x1000ull * (uint64_t)i + 0x100, 0x10 + (uint64_t)i,
					&rec_ops_all, &recs[i]));
	}
	for (int i = 0; i < N; i++) {
		uint64_t base = 0x1000ull * (uint64_t)i + 0x100, len = 0x10 + (uint64_t)i;
		uint8_t v[8];
		for (uint64_t off = 0; off < len; off += 5) {
			REQUIRE_OK(bus_access(b, base + off, v, 1, false, 0));
			CHECK_EQ(v[0], (uint8_t)i);
			CHECK_EQ(recs[i].offset, off);
		}
		CHECK_ERR(bus_access(b, base - 1, v, 1, false, 0), -ENOENT);
		CHECK_ERR(bus_access(b, base + len, v, 1, false, 0), -ENOENT);
	}
	bus_destroy(b);
}

TEST(bus_invalid_widths)
{
	struct bus *b = new_bus(BUS_PIO_LAST);
	struct rec r = {.tag = 1};
	REQUIRE_OK(bus_register(b, 0x70, 2, &rec_ops_1, &r));
	uint8_t v[16];
	for (unsigned len = 2; len <= 8; len *= 2) {
		memset(v, 0, sizeof(v));
		CHECK_ERR(bus_access(b, 0x70, v, len, false, 0), -EINVAL);
		for (unsigned i = 0; i < len; i++)
			CHECK_EQ(v[i], 0xff);
		CHECK_ERR(bus_access(b, 0x70, v, len, true, 0), -EINVAL);
	}
	/* not a power of two, zero, too wide */
	memset(v, 0, sizeof(v));
	CHECK_ERR(bus_access(b, 0x70, v, 3, false, 0), -EINVAL);
	CHECK_EQ(v[2], 0xff);
	CHECK_ERR(bus_access(b, 0x70, v, 0, false, 0), -EINVAL);
	CHECK_ERR(bus_access(b, 0x70, v, 16, false, 0), -EINVAL);
	CHECK_EQ(v[15], 0xff);
	CHECK_ERR(bus_access(b, 0x70, v, 16, true, 0), -EINVAL);
	CHECK_EQ(r.calls, 0);
	CHECK_OK(bus_access(b, 0x71, v, 1, false, 0));
	CHECK_EQ(r.calls, 1);

	struct bus_stats st;
	bus_get_stats(b, &st);
	CHECK_EQ(st.rejected, 10);
	CHECK_EQ(st.unhandled_reads, 0);
	bus_destroy(b);
}

TEST(bus_access_wrap_at_top)
{
	struct bus *b = new_bus(BUS_MMIO_LAST);
	struct rec r = {.tag = 7};
	REQUIRE_OK(bus_register(b, UINT64_MAX - 7, 8, &rec_ops_all, &r));
	uint8_t v[8];
	CHECK_OK(bus_access(b, UINT64_MAX, v, 1, false, 0));
	CHECK_EQ(r.offset, 7);
	CHECK_OK(bus_access(b, UINT64_MAX - 7, v, 8, false, 0));
	CHECK_EQ(r.offset, 0);
	/* addr + len would wrap to 0 */
	CHECK_ERR(bus_access(b, UINT64_MAX, v, 2, false, 0), -EINVAL);
	CHECK_ERR(bus_access(b, UINT64_MAX - 3, v, 8, true, 0), -EINVAL);
	CHECK_EQ(r.calls, 2);
	bus_destroy(b);
}

TEST(bus_unhandled_reads_all_ones)
{
	struct bus *b = new_bus(BUS_MMIO_LAST);
	int silent = 0;
	REQUIRE_OK(bus_register(b, 0x1000, 0x100, &silent_ops, &silent));
	uint8_t v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	CHECK_ERR(bus_access(b, 0x2000, v, 8, false, 0), -ENOENT);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(v[i], 0xff);
	CHECK_ERR(bus_access(b, 0x0, v, 4, true, 0), -ENOENT);
	CHECK_ERR(bus_access(b, 0xfff, v, 1, true, 0), -ENOENT);
	/* a handler that leaves the data alone reads as all-ones */
	memset(v, 0, sizeof(v));
	CHECK_OK(bus_access(b, 0x1008, v, 8, false, 0));
	CHECK_EQ(silent, 1);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(v[i], 0xff);
	struct bus_stats st;
	bus_get_stats(b, &st);
	CHECK_EQ(st.unhandled_reads, 1);
	CHECK_EQ(st.unhandled_writes, 2);
	CHECK_EQ(st.rejected, 0);
	bus_destroy(b);
}

TEST(bus_register_at_sparse_window)
{
	struct bus *b = new_bus(BUS_PIO_LAST);
	struct rec r = {0};
	REQUIRE_OK(bus_register_at(b, 0x60, 1, &rec_ops_1, &r, 0));
	REQUIRE_OK(bus_register_at(b, 0x64, 1, &rec_ops_1, &r, 4));
	uint8_t v[1] = {0};
	CHECK_OK(bus_access(b, 0x64, v, 1, true, 0));
	CHECK_EQ(r.offset, 4);
	CHECK_EQ(r.addr, 0x64);
	CHECK_OK(bus_access(b, 0x60, v, 1, true, 0));
	CHECK_EQ(r.offset, 0);
	CHECK_ERR(bus_access(b, 0x61, v, 1, true, 0), -ENOENT);
	CHECK_EQ(r.calls, 2);
	bus_destroy(b);
}

/* vCPU-like threads dispatch without locks while the table changes under
 * them; every access to the stable device must land there. */
struct hammer {
	struct bus *bus;
	const bool *stop;
	long ok, bad;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	uint8_t v[4];
	while (!__atomic_load_n(h->stop, __ATOMIC_RELAXED)) {
		int r = bus_access(h->bus, 0x8000, v, 4, false, 1);
		if (r == 0 && v[0] == 0x42 && v[3] == 0x45)
			h->ok++;
		else
			h->bad++;
		(void)bus_access(h->bus, 0x100, v, 1, true, 1); /* the churning range */
	}
	return NULL;
}

static void count_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
			 unsigned len, bool is_write)
{
	__atomic_fetch_add((int *)opaque, 1, __ATOMIC_RELAXED);
}
static const struct bus_ops count_ops = {"count", BUS_W_ALL, count_access};

static void fixed_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
			 unsigned len, bool is_write)
{
	if (!is_write)
		for (unsigned i = 0; i < len; i++)
			data[i] = (uint8_t)(0x42 + i);
}
static const struct bus_ops fixed_ops = {"fixed", BUS_W4, fixed_access};

TEST(bus_dispatch_while_registering)
{
	struct bus *b = new_bus(BUS_MMIO_LAST);
	int fixed = 0, churn = 0;
	REQUIRE_OK(bus_register(b, 0x8000, 4, &fixed_ops, &fixed));
	bool stop = false;
	struct hammer h[2] = {{.bus = b, .stop = &stop}, {.bus = b, .stop = &stop}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&t[i], NULL, hammer_thread, &h[i]) == 0);
	for (int i = 0; i < 2000; i++) {
		REQUIRE_OK(bus_register(b, 0x9000 + (uint64_t)i, 1, &count_ops, &churn));
		if (i == 1000)
			REQUIRE_OK(bus_register(b, 0x100, 1, &count_ops, &churn));
	}
	__atomic_store_n(&stop, true, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CHECK(h[i].ok > 0);
		CHECK_EQ(h[i].bad, 0);
	}
	bus_destroy(b);
}

TEST(bus_access_u64_values)
{
	struct bus *b = new_bus(BUS_MMIO_LAST);
	struct rec r = {.tag = 0x10};
	REQUIRE_OK(bus_register(b, 0x1000, 8, &rec_ops_124, &r));
	uint64_t v = 0xdeadbeefcafef00dull;
	CHECK_OK(bus_access_u64(b, 0x1000, &v, 2, true, 5));
	CHECK_EQ(r.len, 2);
	CHECK_EQ(r.vcpu, 5);
	CHECK_EQ(r.wdata[0], 0x0d);
	CHECK_EQ(r.wdata[1], 0xf0);
	v = 0;
	CHECK_OK(bus_access_u64(b, 0x1004, &v, 4, false, 0));
	CHECK_EQ(v, 0x13121110); /* little-endian, zero-extended */
	CHECK_ERR(bus_access_u64(b, 0x1000, &v, 8, false, 0), -EINVAL); /* not a valid width */
	CHECK_EQ(v, UINT64_MAX);
	CHECK_ERR(bus_access_u64(b, 0x2000, &v, 2, false, 0), -ENOENT);
	CHECK_EQ(v, 0xffff);
	CHECK_ERR(bus_access_u64(b, 0x1000, &v, 16, false, 0), -EINVAL);
	CHECK_EQ(v, UINT64_MAX);
	CHECK_ERR(bus_access_u64(b, 0x1000, &v, 0, true, 0), -EINVAL);
	CHECK_EQ(r.calls, 2);
	bus_destroy(b);
}
