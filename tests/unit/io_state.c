/* tests/unit/io_state.c - the bounded state writer and reader (lib/io/state.h): round trips and every malformed input refused. */
#include "../lib/test.h"
#include "../../lib/io/state.h"
#include "../../lib/io/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Writes a nested state: outer v2 { u8 u16 u32 u64 bool str inner v1 { bytes } }. */
static void write_sample(struct vmm_state_w *w)
{
	vmm_sw_begin(w, "outer", 2);
	vmm_sw_u8(w, 0xab);
	vmm_sw_u16(w, 0x1234);
	vmm_sw_u32(w, 0xdeadbeef);
	vmm_sw_u64(w, 0x0102030405060708ull);
	vmm_sw_bool(w, true);
	vmm_sw_str(w, "hello");
	vmm_sw_begin(w, "inner", 1);
	vmm_sw_bytes(w, "xyz", 3);
	vmm_sw_end(w);
	vmm_sw_end(w);
}

/* Reads write_sample's state; returns the sticky error. */
static int read_sample(const void *buf, size_t len, struct vmm_state_r *r, uint32_t outer_max)
{
	uint32_t v = outer_max;
	char s[16], b[3];
	vmm_sr_init(r, buf, len);
	vmm_sr_begin(r, "outer", &v);
	uint8_t a = vmm_sr_u8(r);
	uint16_t c = vmm_sr_u16(r);
	uint32_t d = vmm_sr_u32(r);
	uint64_t e = vmm_sr_u64(r);
	bool f = vmm_sr_bool(r);
	vmm_sr_str(r, s, sizeof(s));
	uint32_t vi = 1;
	vmm_sr_begin(r, "inner", &vi);
	vmm_sr_bytes(r, b, 3);
	vmm_sr_end(r);
	vmm_sr_end(r);
	if (vmm_sr_error(r))
		return vmm_sr_error(r);
	CHECK_EQ(v, 2);
	CHECK_EQ(a, 0xab);
	CHECK_EQ(c, 0x1234);
	CHECK_EQ(d, 0xdeadbeef);
	CHECK_EQ(e, 0x0102030405060708ull);
	CHECK(f);
	CHECK_STR(s, "hello");
	CHECK(!memcmp(b, "xyz", 3));
	CHECK(vmm_sr_done(r));
	return 0;
}

TEST(io_state_round_trip_little_endian)
{
	struct vmm_state_w w;
	vmm_sw_init(&w);
	write_sample(&w);
	REQUIRE_OK(vmm_sw_error(&w));
	void *buf;
	size_t len;
	REQUIRE_OK(vmm_sw_take(&w, &buf, &len));
	/* 1 + 5 + 4 + 4 header, 1 + 2 + 4 + 8 + 1 + 2 + 5 fields, 1 + 5 + 8 + 3 inner */
	CHECK_EQ(len, 14 + 23 + 17);
	const uint8_t *p = buf;
	CHECK_EQ(p[0], 5);
	CHECK(!memcmp(p + 1, "outer", 5));
	CHECK_EQ(p[6], 2); /* version, little-endian */
	CHECK_EQ(p[10], len - 14);
	CHECK_EQ(p[14], 0xab);
	CHECK_EQ(p[15], 0x34);
	struct vmm_state_r r;
	CHECK_OK(read_sample(buf, len, &r, 2));
	/* a reader that knows up to version 3 reads version 2 too */
	CHECK_OK(read_sample(buf, len, &r, 3));
	free(buf);
}

TEST(io_state_refuses_every_truncation)
{
	struct vmm_state_w w;
	vmm_sw_init(&w);
	write_sample(&w);
	void *buf;
	size_t len;
	REQUIRE_OK(vmm_sw_take(&w, &buf, &len));
	for (size_t cut = 0; cut < len; cut++) {
		struct vmm_state_r r;
		void *copy = malloc(cut ? cut : 1);
		memcpy(copy, buf, cut);
		CHECK_ERR(read_sample(copy, cut, &r, 2), -EINVAL);
		CHECK(vmm_sr_detail(&r)[0] != '\0');
		free(copy);
	}
	free(buf);
}

TEST(io_state_refuses_wrong_tag_version_and_trailing_bytes)
{
	struct vmm_state_w w;
	vmm_sw_init(&w);
	write_sample(&w);
	void *buf;
	size_t len;
	REQUIRE_OK(vmm_sw_take(&w, &buf, &len));
	uint8_t *p = buf;
	struct vmm_state_r r;

	/* a reader that knows only version 1 */
	CHECK_ERR(read_sample(buf, len, &r, 1), -EINVAL);
	CHECK(strstr(vmm_sr_detail(&r), "version 2") != NULL);

	/* another tag */
	p[1] = 'O';
	CHECK_ERR(read_sample(buf, len, &r, 2), -EINVAL);
	CHECK(strstr(vmm_sr_detail(&r), "'Outer' where 'outer'") != NULL);
	p[1] = 'o';

	/* version 0 */
	p[6] = 0;
	CHECK_ERR(read_sample(buf, len, &r, 2), -EINVAL);
	p[6] = 2;

	/* a payload length past the buffer */
	p[10]++;
	CHECK_ERR(read_sample(buf, len, &r, 2), -EINVAL);
	p[10]--;

	/* a shorter payload: the inner section passes its parent's end */
	p[10]--;
	CHECK_ERR(read_sample(buf, len, &r, 2), -EINVAL);
	p[10]++;

	/* a bool that is neither 0 nor 1 */
	p[14 + 15] = 2;
	CHECK_ERR(read_sample(buf, len, &r, 2), -EINVAL);
	CHECK(strstr(vmm_sr_detail(&r), "outer: boolean") != NULL);
	p[14 + 15] = 1;

	/* bytes the reader did not read */
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, buf, len);
	longer[len] = 0;
	vmm_put32(longer + 10, vmm_le32(longer + 10) + 1);
	CHECK_ERR(read_sample(longer, len + 1, &r, 2), -EINVAL);
	CHECK(strstr(vmm_sr_detail(&r), "trailing") != NULL);
	/* and the whole buffer not read is not done */
	vmm_sr_init(&r, buf, len);
	CHECK(!vmm_sr_done(&r));
	free(longer);

	/* still intact */
	CHECK_OK(read_sample(buf, len, &r, 2));
	free(buf);
}

TEST(io_state_reader_errors_are_sticky_and_zero)
{
	uint8_t one[1] = {7};
	struct vmm_state_r r;
	vmm_sr_init(&r, one, 1);
	CHECK_EQ(vmm_sr_u32(&r), 0);
	CHECK_ERR(vmm_sr_error(&r), -EINVAL);
	/* the byte that is there is not read after the error */
	CHECK_EQ(vmm_sr_u8(&r), 0);
	CHECK_EQ(vmm_sr_remaining(&r), 0);
	/* the first message stays */
	vmm_sr_fail(&r, -ERANGE, "second");
	CHECK_ERR(vmm_sr_error(&r), -EINVAL);
	CHECK(strstr(vmm_sr_detail(&r), "truncated") != NULL);

	/* strings: too long for the caller, or holding a NUL */
	struct vmm_state_w w;
	vmm_sw_init(&w);
	vmm_sw_str(&w, "abcdef");
	void *buf;
	size_t len;
	REQUIRE_OK(vmm_sw_take(&w, &buf, &len));
	char s[4];
	vmm_sr_init(&r, buf, len);
	vmm_sr_str(&r, s, sizeof(s));
	CHECK_ERR(vmm_sr_error(&r), -EINVAL);
	CHECK_STR(s, "");
	((uint8_t *)buf)[4] = 0;
	char big[16];
	vmm_sr_init(&r, buf, len);
	vmm_sr_str(&r, big, sizeof(big));
	CHECK_ERR(vmm_sr_error(&r), -EINVAL);
	free(buf);

	/* a semantic failure names the section path */
	vmm_sw_init(&w);
	vmm_sw_begin(&w, "a", 1);
	vmm_sw_begin(&w, "b", 1);
	vmm_sw_u16(&w, 9);
	vmm_sw_end(&w);
	vmm_sw_end(&w);
	REQUIRE_OK(vmm_sw_take(&w, &buf, &len));
	vmm_sr_init(&r, buf, len);
	uint32_t v = 1;
	char tag[VMM_STATE_TAG_MAX + 1];
	CHECK_OK(vmm_sr_peek_tag(&r, tag));
	CHECK_STR(tag, "a");
	struct vmm_state_r ahead = r;
	CHECK_OK(vmm_sr_skip(&ahead)); /* the whole of "a" */
	CHECK(vmm_sr_done(&ahead));
	CHECK_OK(vmm_sr_begin(&r, "a", &v));
	v = 1;
	CHECK_OK(vmm_sr_begin(&r, "b", &v));
	CHECK_EQ(vmm_sr_u16(&r), 9);
	CHECK_ERR(vmm_sr_fail(&r, -ERANGE, "index %u past the queue", 9), -ERANGE);
	CHECK_STR(vmm_sr_detail(&r), "a/b: index 9 past the queue");
	free(buf);
}

TEST(io_state_writer_refuses_misuse)
{
	struct vmm_state_w w;
	void *buf;
	size_t len;
	vmm_sw_init(&w);
	vmm_sw_end(&w); /* nothing open */
	CHECK_ERR(vmm_sw_error(&w), -EINVAL);
	CHECK_ERR(vmm_sw_take(&w, &buf, &len), -EINVAL);

	vmm_sw_init(&w);
	vmm_sw_begin(&w, "x", 1); /* never closed */
	CHECK_ERR(vmm_sw_take(&w, &buf, &len), -EINVAL);

	const char *bad_tags[] = {"", "has space", "0123456789012345678901234567890123"};
	for (size_t i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++) {
		vmm_sw_init(&w);
		vmm_sw_begin(&w, bad_tags[i], 1);
		CHECK_ERR(vmm_sw_error(&w), -EINVAL);
		vmm_sw_free(&w);
	}
	vmm_sw_init(&w);
	vmm_sw_begin(&w, "v0", 0);
	CHECK_ERR(vmm_sw_error(&w), -EINVAL);
	vmm_sw_free(&w);

	vmm_sw_init(&w);
	for (unsigned i = 0; i <= VMM_STATE_MAX_DEPTH; i++)
		vmm_sw_begin(&w, "d", 1);
	CHECK_ERR(vmm_sw_error(&w), -EINVAL);
	vmm_sw_free(&w);

	/* an empty writer hands out an empty, freeable buffer */
	vmm_sw_init(&w);
	REQUIRE_OK(vmm_sw_take(&w, &buf, &len));
	CHECK(buf != NULL);
	CHECK_EQ(len, 0);
	free(buf);
}
