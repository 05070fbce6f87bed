/* tests/unit/hv_state_blob.h - a test-side reader and writer of the saved-state blob format (hv.h), to build blobs wrong in exactly one way. */
#ifndef EMBER_TESTS_HV_STATE_BLOB_H
#define EMBER_TESTS_HV_STATE_BLOB_H

#include "../lib/test.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- a test-side view of the blob format (hv.h documents it), to build
 * blobs that are wrong in exactly one way */

#define HDR  32
#define SHDR 16

struct tsec {
	char tag[5];
	uint32_t version, len;
	uint8_t *data;
};
struct tblob {
	uint16_t version, kind;
	uint32_t magic, backend;
	unsigned n;
	struct tsec s[40];
};

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t crc(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return ~c;
}

static inline void tb_parse(struct tblob *b, const uint8_t *p, size_t len)
{
	memset(b, 0, sizeof(*b));
	REQUIRE(len >= HDR);
	b->magic = rd32(p);
	b->version = (uint16_t)(p[4] | (p[5] << 8));
	b->kind = (uint16_t)(p[6] | (p[7] << 8));
	b->backend = rd32(p + 8);
	b->n = rd32(p + 12);
	REQUIRE(b->n <= 40);
	size_t off = HDR;
	for (unsigned i = 0; i < b->n; i++) {
		REQUIRE(off + SHDR <= len);
		memcpy(b->s[i].tag, p + off, 4);
		b->s[i].version = rd32(p + off + 4);
		b->s[i].len = rd32(p + off + 8);
		b->s[i].data = malloc(b->s[i].len + 1);
		REQUIRE(b->s[i].data);
		memcpy(b->s[i].data, p + off + SHDR, b->s[i].len);
		off += SHDR + ((b->s[i].len + 7u) & ~7u);
	}
	REQUIRE_EQ(off, len);
}

/* Serialises b (with a correct CRC and length). Allocates. */
static inline uint8_t *tb_build(const struct tblob *b, size_t *len)
{
	size_t n = HDR;
	for (unsigned i = 0; i < b->n; i++)
		n += SHDR + ((b->s[i].len + 7u) & ~7u);
	uint8_t *p = calloc(1, n);
	REQUIRE(p);
	wr32(p, b->magic);
	p[4] = (uint8_t)b->version;
	p[5] = (uint8_t)(b->version >> 8);
	p[6] = (uint8_t)b->kind;
	p[7] = (uint8_t)(b->kind >> 8);
	wr32(p + 8, b->backend);
	wr32(p + 12, b->n);
	wr32(p + 16, (uint32_t)n);
	size_t off = HDR;
	for (unsigned i = 0; i < b->n; i++) {
		memcpy(p + off, b->s[i].tag, 4);
		wr32(p + off + 4, b->s[i].version);
		wr32(p + off + 8, b->s[i].len);
		memcpy(p + off + SHDR, b->s[i].data, b->s[i].len);
		off += SHDR + ((b->s[i].len + 7u) & ~7u);
	}
	wr32(p + 24, crc(p + HDR, n - HDR));
	*len = n;
	return p;
}

static inline void tb_free(struct tblob *b)
{
	for (unsigned i = 0; i < b->n; i++)
		free(b->s[i].data);
	b->n = 0;
}

static inline struct tsec *tb_find(struct tblob *b, const char *tag)
{
	for (unsigned i = 0; i < b->n; i++)
		if (!memcmp(b->s[i].tag, tag, 4))
			return &b->s[i];
	return NULL;
}

static inline void tb_drop(struct tblob *b, const char *tag)
{
	struct tsec *s = tb_find(b, tag);
	REQUIRE(s);
	free(s->data);
	unsigned i = (unsigned)(s - b->s);
	memmove(&b->s[i], &b->s[i + 1], (b->n - i - 1) * sizeof(b->s[0]));
	b->n--;
}

#endif
