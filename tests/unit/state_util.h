/* tests/unit/state_util.h - helpers for the device save/load tests: a device's state as bytes, and the malformed variants every load must refuse. */
#ifndef EMBER_TESTS_UNIT_STATE_UTIL_H
#define EMBER_TESTS_UNIT_STATE_UTIL_H

#include "../lib/test.h"
#include "../../devices/device.h"
#include "../../lib/io/state.h"
#include "../../lib/io/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What save writes through fn(opaque, w), as a malloc'ed buffer. */
typedef int (*state_save_fn)(void *opaque, struct vmm_state_w *w);
typedef int (*state_load_fn)(void *opaque, struct vmm_state_r *r);

static inline void *state_take(state_save_fn fn, void *opaque, size_t *len)
{
	struct vmm_state_w w;
	void *buf = NULL;
	vmm_sw_init(&w);
	int r = fn(opaque, &w);
	if (r < 0 || vmm_sw_take(&w, &buf, len) < 0)
		TEST_FAIL("save: %d (%s)", r, test_errno_name(r));
	return buf;
}

/* Loads buf[0..len) through fn; returns its result and wants the whole
 * buffer read on success. */
static inline int state_load(state_load_fn fn, void *opaque, const void *buf, size_t len,
			     char *detail, size_t cap)
{
	struct vmm_state_r r;
	vmm_sr_init(&r, buf, len);
	int rc = fn(opaque, &r);
	if (detail)
		snprintf(detail, cap, "%s", vmm_sr_detail(&r));
	if (rc == 0 && !vmm_sr_done(&r))
		return -EMSGSIZE;
	return rc;
}

static inline int state_dev_save(void *dev, struct vmm_state_w *w)
{
	return dev_save(dev, w);
}
static inline int state_dev_load(void *dev, struct vmm_state_r *r)
{
	return dev_load(dev, r);
}

/*
 * The malformed variants of a good state buf (one top-level section):
 * every truncation, another tag, version 0 and a version past the one
 * saved, one byte more in the section. Each must be refused by load into
 * target, and leave target's own saved state as it was.
 */
static inline void state_check_refusals(state_save_fn save, state_load_fn load, void *target,
					const void *buf, size_t len)
{
	size_t before_len;
	uint8_t *before = state_take(save, target, &before_len);
	uint8_t *copy = malloc(len + 1);
	char detail[VMM_STATE_DETAIL];
	REQUIRE(copy != NULL);
	REQUIRE(len > 10);
	const uint8_t *b = buf;
	size_t tl = b[0], vo = 1 + tl; /* the version's offset */
	for (size_t cut = 0; cut < len; cut++) {
		memcpy(copy, buf, cut);
		int rc = state_load(load, target, copy, cut, detail, sizeof(detail));
		if (rc != -EINVAL)
			TEST_FAIL("a state cut at %zu of %zu bytes: load gave %d", cut, len, rc);
		if (!detail[0])
			TEST_FAIL("a state cut at %zu bytes: no message", cut);
	}
	memcpy(copy, buf, len);
	copy[1] ^= 0x20; /* another tag */
	CHECK_ERR(state_load(load, target, copy, len, detail, sizeof(detail)), -EINVAL);
	CHECK(strstr(detail, "expected") != NULL);
	memcpy(copy, buf, len);
	vmm_put32(copy + vo, 0);
	CHECK_ERR(state_load(load, target, copy, len, NULL, 0), -EINVAL);
	vmm_put32(copy + vo, vmm_le32(b + vo) + 1); /* a newer layout */
	CHECK_ERR(state_load(load, target, copy, len, detail, sizeof(detail)), -EINVAL);
	CHECK(strstr(detail, "version") != NULL);
	memcpy(copy, buf, len);
	copy[len] = 0;
	vmm_put32(copy + vo + 4, vmm_le32(b + vo + 4) + 1); /* a byte more */
	CHECK_ERR(state_load(load, target, copy, len + 1, detail, sizeof(detail)), -EINVAL);
	CHECK(strstr(detail, "trailing") != NULL);

	size_t after_len;
	uint8_t *after = state_take(save, target, &after_len);
	CHECK_EQ(after_len, before_len);
	CHECK(after_len == before_len && !memcmp(before, after, after_len));
	free(after);
	free(before);
	free(copy);
}

/* buf with byte at set to value must be refused (-EINVAL) by load into
 * target, with a message holding want (if not NULL). */
static inline void state_check_patched(state_load_fn load, void *target, const void *buf,
				       size_t len, size_t at, uint8_t value, const char *want)
{
	char detail[VMM_STATE_DETAIL];
	uint8_t *bad = malloc(len);
	REQUIRE(bad != NULL && at < len);
	memcpy(bad, buf, len);
	bad[at] = value;
	int rc = state_load(load, target, bad, len, detail, sizeof(detail));
	if (rc != -EINVAL)
		test_fail_at(__FILE__, __LINE__, false, "byte %zu = %#x: load gave %d", at, value,
			     rc);
	else if (want && !strstr(detail, want))
		test_fail_at(__FILE__, __LINE__, false, "byte %zu = %#x: \"%s\" lacks \"%s\"", at,
			     value, detail, want);
	free(bad);
}

#endif /* EMBER_TESTS_UNIT_STATE_UTIL_H */
