/* tests/unit/dev_pvpanic_cf9.c - the pvpanic port and the 0xCF9 reset control register, via the PIO bus. */
#include "../lib/test.h"
#include "../../devices/pvpanic.h"
#include "../../devices/reset_cf9.h"

#include <errno.h>

#define PVPANIC_PORT 0x505

struct seen {
	int panics, events_calls, resets, hard;
	unsigned last_events;
};

static void on_event(void *opaque, unsigned events)
{
	struct seen *s = opaque;
	s->events_calls++;
	s->last_events = events;
	if (events & PVPANIC_PANICKED)
		s->panics++;
}

static void on_reset(void *opaque, bool hard)
{
	struct seen *s = opaque;
	s->resets++;
	s->hard += hard;
}

static uint64_t io(struct bus *bus, uint64_t port, unsigned len, bool write, uint64_t v)
{
	uint64_t val = v;
	bus_access_u64(bus, port, &val, len, write, 0);
	return val;
}

TEST(dev_pvpanic_reports_panic_once_per_write)
{
	struct seen s = {0};
	struct bus *pio;
	struct pvpanic *p;
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &pio));
	REQUIRE_OK(pvpanic_create(&(struct pvpanic_config){.event = on_event, .opaque = &s}, &p));
	REQUIRE_OK(dev_register(pio, PVPANIC_PORT, PVPANIC_WINDOW, pvpanic_dev(p)));
	CHECK_STR(dev_name(pvpanic_dev(p)), "pvpanic");
	/* the driver reads the supported events first */
	CHECK_EQ(io(pio, PVPANIC_PORT, 1, false, 0), PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	/* a write of 0 or of unsupported bits is no event */
	io(pio, PVPANIC_PORT, 1, true, 0);
	io(pio, PVPANIC_PORT, 1, true, 0xf0);
	CHECK_EQ(s.events_calls, 0);
	CHECK_EQ(pvpanic_events(p), 0);
	/* crash kernel loaded, then the panic */
	io(pio, PVPANIC_PORT, 1, true, PVPANIC_CRASH_LOADED);
	CHECK_EQ(s.events_calls, 1);
	CHECK_EQ(s.panics, 0);
	io(pio, PVPANIC_PORT, 1, true, 0xf0 | PVPANIC_PANICKED);
	CHECK_EQ(s.events_calls, 2);
	CHECK_EQ(s.panics, 1);
	CHECK_EQ(s.last_events, PVPANIC_PANICKED);
	CHECK_EQ(pvpanic_events(p), PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	/* only 1-byte accesses reach it */
	io(pio, PVPANIC_PORT, 2, true, PVPANIC_PANICKED);
	CHECK_EQ(s.events_calls, 2);
	dev_reset(pvpanic_dev(p));
	CHECK_EQ(pvpanic_events(p), 0);
	bus_destroy(pio);
	dev_destroy(pvpanic_dev(p));
	CHECK_ERR(pvpanic_create(NULL, &p), -EINVAL);
}

TEST(dev_reset_cf9_linux_reboot_p_sequence)
{
	struct seen s = {0};
	struct bus *pio;
	struct reset_cf9 *rc;
	REQUIRE_OK(bus_create("pio", BUS_PIO_LAST, &pio));
	REQUIRE_OK(
	    reset_cf9_create(&(struct reset_cf9_config){.reset = on_reset, .opaque = &s}, &rc));
	REQUIRE_OK(dev_register(pio, RESET_CF9_PORT, RESET_CF9_WINDOW, reset_cf9_dev(rc)));
	/* Linux (reboot=p, cold): cf9 = inb & ~0x0e; outb(cf9 | 2); outb(cf9 | 0x0e) */
	uint8_t cf9 = (uint8_t)(io(pio, RESET_CF9_PORT, 1, false, 0) & ~0x0eu);
	CHECK_EQ(cf9, 0);
	io(pio, RESET_CF9_PORT, 1, true, cf9 | 2);
	CHECK_EQ(s.resets, 0);
	CHECK_EQ(io(pio, RESET_CF9_PORT, 1, false, 0), RESET_CF9_SYS_RST);
	io(pio, RESET_CF9_PORT, 1, true, cf9 | 0x0e);
	CHECK_EQ(s.resets, 1);
	CHECK_EQ(s.hard, 1);
	/* RST_CPU is not stored */
	CHECK_EQ(io(pio, RESET_CF9_PORT, 1, false, 0), RESET_CF9_SYS_RST | RESET_CF9_FULL_RST);
	/* warm: 0x06 with SYS_RST is still hard; RST_CPU alone is a soft reset */
	io(pio, RESET_CF9_PORT, 1, true, RESET_CF9_RST_CPU);
	CHECK_EQ(s.resets, 2);
	CHECK_EQ(s.hard, 1);
	CHECK_EQ(reset_cf9_count(rc), 2);
	/* 4-byte accesses at 0xcf8 (PCI config address) never reach it */
	io(pio, 0xcf8, 4, true, 0xffffffff);
	CHECK_EQ(s.resets, 2);
	dev_reset(reset_cf9_dev(rc));
	CHECK_EQ(io(pio, RESET_CF9_PORT, 1, false, 0), 0);
	CHECK_EQ(reset_cf9_count(rc), 0);
	bus_destroy(pio);
	dev_destroy(reset_cf9_dev(rc));
	CHECK_ERR(reset_cf9_create(&(struct reset_cf9_config){0}, NULL), -EINVAL);
}
