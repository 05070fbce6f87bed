/* tests/unit/dev_ged.c - the ACPI Generic Event Device's registers: events read-to-clear with a level line, GPE acks, slots, eject. */
#include "../lib/test.h"
#include "../../devices/ged.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct seen {
	int level, rises, ejects;
	unsigned last_slot;
};

static void on_irq(void *opaque, bool level)
{
	struct seen *s = opaque;
	s->rises += level && !s->level;
	s->level = level;
}

static void on_eject(void *opaque, unsigned slot)
{
	struct seen *s = opaque;
	s->ejects++;
	s->last_slot = slot;
}

static uint32_t rd(struct ged *g, uint64_t off, unsigned len)
{
	uint8_t d[8];
	memset(d, 0xff, sizeof(d));
	ged_dev(g)->ops->bus.access(ged_dev(g), off, 0, 0, d, len, false);
	uint32_t v = 0;
	for (unsigned i = 0; i < len && i < 4; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void wr(struct ged *g, uint64_t off, uint32_t v)
{
	uint8_t d[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	ged_dev(g)->ops->bus.access(ged_dev(g), off, 0, 0, d, 4, true);
}

TEST(dev_ged_events_read_to_clear_with_a_level_line)
{
	struct seen s = {0};
	struct ged *g;
	CHECK_ERR(ged_create(NULL, &g), -EINVAL);
	REQUIRE_OK(ged_create(
	    &(struct ged_config){.set_irq = on_irq, .eject = on_eject, .opaque = &s}, &g));
	CHECK_EQ(rd(g, GED_REG_EVENT, 4), 0u);
	CHECK_ERR(ged_raise(g, 0), -EINVAL);
	CHECK_ERR(ged_raise(g, 1u << 7), -EINVAL); /* no such event */
	CHECK_EQ(s.rises, 0);
	REQUIRE_OK(ged_raise(g, GED_EV_POWER));
	REQUIRE_OK(ged_raise(g, GED_EV_POWER)); /* coalesces */
	REQUIRE_OK(ged_raise(g, GED_EV_GPE(5)));
	CHECK_EQ(s.level, 1);
	CHECK_EQ(s.rises, 1);
	/* a narrow or misaligned read neither sees nor clears the events */
	CHECK_EQ(rd(g, GED_REG_EVENT, 1), 0u);
	CHECK_EQ(rd(g, 2, 4), 0u);
	CHECK_EQ(s.level, 1);
	CHECK_EQ(rd(g, GED_REG_EVENT, 4), GED_EV_POWER | GED_EV_GPE(5));
	CHECK_EQ(s.level, 0);
	CHECK_EQ(rd(g, GED_REG_EVENT, 4), 0u);
	wr(g, GED_REG_EVENT, 0xffffffff); /* read-only */
	CHECK_EQ(rd(g, GED_REG_EVENT, 4), 0u);
	/* acknowledgements are counted per event; out of range ignored */
	wr(g, GED_REG_ACK, 5);
	wr(g, GED_REG_ACK, 5);
	wr(g, GED_REG_ACK, GED_MAX_GPE);
	struct ged_stats st;
	ged_get_stats(g, &st);
	CHECK_EQ(st.raised[0], 2);
	CHECK_EQ(st.gpe_raised[5], 1);
	CHECK_EQ(st.gpe_handled[5], 2);
	CHECK_EQ(st.reads, 1);
	/* slots and eject */
	ged_set_slots(g, 0x5);
	CHECK_EQ(rd(g, GED_REG_SLOTS, 4), 0x5u);
	wr(g, GED_REG_EJECT, 2);
	CHECK_EQ(s.ejects, 1);
	CHECK_EQ(s.last_slot, 2);
	wr(g, GED_REG_EJECT, GED_MAX_SLOTS); /* no such slot */
	CHECK_EQ(s.ejects, 1);
	/* reset: pending events go, the line drops, the slots stay */
	REQUIRE_OK(ged_raise(g, GED_EV_SLEEP));
	CHECK_EQ(s.level, 1);
	dev_reset(ged_dev(g));
	CHECK_EQ(s.level, 0);
	CHECK_EQ(rd(g, GED_REG_EVENT, 4), 0u);
	CHECK_EQ(ged_slots(g), 0x5u);
	dev_destroy(ged_dev(g));
}

/* Saved state: the pending events come back (and the line with them) in a
 * fresh device; a bad event bit or a truncated section is refused with the
 * device unchanged; a board with a hotplugged card is not saved. */
TEST(dev_ged_save_load_pending_events)
{
	struct seen s = {0}, s2 = {0};
	struct ged *g, *g2;
	REQUIRE_OK(ged_create(&(struct ged_config){.set_irq = on_irq, .opaque = &s}, &g));
	REQUIRE_OK(ged_create(&(struct ged_config){.set_irq = on_irq, .opaque = &s2}, &g2));
	REQUIRE_OK(ged_raise(g, GED_EV_SLEEP | GED_EV_GPE(3)));
	struct vmm_state_w w;
	vmm_sw_init(&w);
	REQUIRE_OK(dev_save(ged_dev(g), &w));
	void *buf;
	size_t len;
	REQUIRE_OK(vmm_sw_take(&w, &buf, &len));
	struct vmm_state_r r;
	vmm_sr_init(&r, buf, len - 1); /* truncated */
	CHECK_ERR(dev_load(ged_dev(g2), &r), -EINVAL);
	CHECK_EQ(s2.level, 0);
	vmm_sr_init(&r, buf, len);
	REQUIRE_OK(dev_load(ged_dev(g2), &r));
	CHECK_EQ(s2.level, 1);
	CHECK_EQ(rd(g2, GED_REG_EVENT, 4), GED_EV_SLEEP | GED_EV_GPE(3));
	CHECK_EQ(s2.level, 0);
	/* an unknown event bit */
	uint8_t *b = buf;
	for (size_t i = 0; i + 4 <= len; i++)
		if (b[i] == (uint8_t)(GED_EV_SLEEP | GED_EV_GPE(3)) &&
		    b[i + 1] == (uint8_t)((GED_EV_SLEEP | GED_EV_GPE(3)) >> 8)) {
			b[i] |= 0x80; /* bit 7: no event */
			break;
		}
	vmm_sr_init(&r, buf, len);
	CHECK_ERR(dev_load(ged_dev(g2), &r), -EINVAL);
	CHECK_EQ(rd(g2, GED_REG_EVENT, 4), 0u);
	free(buf);
	/* a card in a slot: no save */
	ged_set_slots(g, 1);
	vmm_sw_init(&w);
	CHECK_ERR(dev_save(ged_dev(g), &w), -EBUSY);
	vmm_sw_free(&w);
	dev_destroy(ged_dev(g));
	dev_destroy(ged_dev(g2));
}
