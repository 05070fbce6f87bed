/* tests/unit/dev_bootmarker.c - the boot-time marker port and the "ignore" port sink. */
#include "../lib/test.h"
#include "../../devices/bootmarker.h"

#include <errno.h>

struct marks {
	uint64_t now;
	int n;
	uint8_t value[8];
	uint64_t ns[8];
};

static uint64_t fake_now(void *opaque)
{
	return ((struct marks *)opaque)->now;
}

static void on_mark(void *opaque, uint8_t value, uint64_t ns)
{
	struct marks *m = opaque;
	if (m->n < 8) {
		m->value[m->n] = value;
		m->ns[m->n] = ns;
	}
	m->n++;
}

static void access1(struct dev *d, uint8_t *v, unsigned len, bool is_write)
{
	d->ops->bus.access(d, 0, 0x80, 0, v, len, is_write);
}

TEST(dev_bootmarker_reports_value_and_time)
{
	struct marks m = {.now = 5000000};
	struct bootmarker_config cfg = {
	    .mark = on_mark, .opaque = &m, .start_ns = 1000000, .now_ns = fake_now};
	struct bootmarker *bm;
	REQUIRE_OK(bootmarker_create(&cfg, &bm));
	struct dev *d = bootmarker_dev(bm);
	CHECK_STR(dev_name(d), "bootmarker");
	uint8_t v[4] = {0x7b, 0, 0, 0};
	access1(d, v, 1, true);
	REQUIRE_EQ(m.n, 1);
	CHECK_EQ(m.value[0], 0x7b);
	CHECK_EQ(m.ns[0], 4000000);
	/* wider writes: the low byte */
	m.now = 9000000;
	v[0] = 0x40;
	v[1] = 0x99;
	access1(d, v, 4, true);
	REQUIRE_EQ(m.n, 2);
	CHECK_EQ(m.value[1], 0x40);
	CHECK_EQ(m.ns[1], 8000000);
	CHECK_EQ(bootmarker_count(bm), 2);
	/* reads do nothing (the bus shows all-ones) */
	v[0] = 0x11;
	access1(d, v, 1, false);
	CHECK_EQ(v[0], 0x11);
	CHECK_EQ(m.n, 2);
	/* a clock before the start reports 0, not a huge number */
	m.now = 10;
	access1(d, v, 1, true);
	CHECK_EQ(m.ns[2], 0);
	dev_reset(d);
	CHECK_EQ(bootmarker_count(bm), 0);
	dev_destroy(d);
	CHECK_ERR(bootmarker_create(NULL, &bm), -EINVAL);
}

/* A guest writing the port in a loop logs each value once (issue 9). */
TEST(dev_bootmarker_once_per_value)
{
	struct marks m = {0};
	struct bootmarker_config cfg = {.mark = on_mark, .opaque = &m, .now_ns = fake_now};
	struct bootmarker *bm;
	REQUIRE_OK(bootmarker_create(&cfg, &bm));
	struct dev *d = bootmarker_dev(bm);
	for (int i = 0; i < 10000; i++) {
		uint8_t v = (uint8_t)(i % 3 == 0 ? 0 : i % 3 == 1 ? 0x7b : 0xff);
		access1(d, &v, 1, true);
	}
	CHECK_EQ(m.n, 3);
	CHECK_EQ(m.value[0], 0);
	CHECK_EQ(m.value[1], 0x7b);
	CHECK_EQ(m.value[2], 0xff);
	CHECK_EQ(bootmarker_count(bm), 10000);
	/* a reset (a guest reboot) marks each value again */
	dev_reset(d);
	uint8_t v = 0x7b;
	access1(d, &v, 1, true);
	CHECK_EQ(m.n, 4);
	dev_destroy(d);
}

TEST(dev_bootmarker_match_value_and_default_clock)
{
	struct marks m = {0};
	struct bootmarker_config cfg = {
	    .mark = on_mark, .opaque = &m, .match_value = true, .value = 123};
	struct bootmarker *bm;
	REQUIRE_OK(bootmarker_create(&cfg, &bm));
	struct dev *d = bootmarker_dev(bm);
	/* Linux's I/O delay writes of 0 are not marks */
	uint8_t v = 0;
	for (int i = 0; i < 100; i++)
		access1(d, &v, 1, true);
	CHECK_EQ(m.n, 0);
	v = 123;
	access1(d, &v, 1, true);
	CHECK_EQ(m.n, 1);
	CHECK(m.ns[0] > 0); /* CLOCK_MONOTONIC since 0: the uptime */
	CHECK_EQ(bootmarker_count(bm), 1);
	/* through a bus at 0x80 */
	struct bus *b;
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &b));
	REQUIRE_OK(dev_register(b, 0x80, 1, d));
	CHECK_OK(bus_access(b, 0x80, &v, 1, true, 2));
	CHECK_EQ(m.n, 1); /* 123 again: counted, not marked twice */
	CHECK_EQ(bootmarker_count(bm), 2);
	uint8_t w[8];
	CHECK_ERR(bus_access(b, 0x80, w, 8, true, 0), -EINVAL);
	CHECK_OK(bus_access(b, 0x80, w, 1, false, 0));
	CHECK_EQ(w[0], 0xff);
	bus_destroy(b);
	dev_destroy(d);
}
