/* vmm/arch/x86/aml.c - encodes AML: names, integers, strings, scopes, devices, packages, resources. */
#include "aml.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* opcodes (ACPI 6.5, 20.3) */
#define ZERO_OP		  0x00
#define ONE_OP		  0x01
#define NAME_OP		  0x08
#define BYTE_PREFIX	  0x0a
#define WORD_PREFIX	  0x0b
#define DWORD_PREFIX	  0x0c
#define STRING_PREFIX	  0x0d
#define QWORD_PREFIX	  0x0e
#define SCOPE_OP	  0x10
#define BUFFER_OP	  0x11
#define PACKAGE_OP	  0x12
#define METHOD_OP	  0x14
#define DUAL_NAME_PREFIX  0x2e
#define MULTI_NAME_PREFIX 0x2f
#define EXT_OP_PREFIX	  0x5b
#define DEVICE_OP	  0x82 /* after EXT_OP_PREFIX */
#define OPREGION_OP	  0x80 /* after EXT_OP_PREFIX */
#define FIELD_OP	  0x81 /* after EXT_OP_PREFIX */
#define IF_OP		  0xa0
#define ROOT_CHAR	  0x5c
#define RETURN_OP	  0xa4
#define ONES_OP		  0xff

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

bool aml_ok(const struct aml *a)
{
	return !a->error;
}

static bool reserve(struct aml *a, size_t n)
{
	if (a->error)
		return false;
	if (n > SIZE_MAX / 2 - a->len) {
		a->error = true;
		return false;
	}
	if (a->len + n <= a->cap)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + n)
		cap *= 2;
	uint8_t *p = realloc(a->buf, cap);
	if (!p) {
		a->error = true;
		return false;
	}
	a->buf = p;
	a->cap = cap;
	return true;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (!n || !reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t v)
{
	aml_bytes(a, &v, 1);
}

static bool name_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

void aml_namestring(struct aml *a, const char *path)
{
	char segs[8][4];
	unsigned n = 0;
	const char *p = path;
	if (*p == '\\') {
		aml_byte(a, ROOT_CHAR);
		p++;
	}
	while (*p) {
		if (n >= 8) {
			a->error = true;
			return;
		}
		unsigned k = 0;
		while (*p && *p != '.') {
			if (k >= 4 || !name_char(*p, k == 0)) {
				a->error = true;
				return;
			}
			segs[n][k++] = *p++;
		}
		if (k == 0) {
			a->error = true;
			return;
		}
		while (k < 4)
			segs[n][k++] = '_';
		n++;
		if (*p == '.' && !*++p) {
			a->error = true; /* a trailing dot */
			return;
		}
	}
	if (n == 0) {
		aml_byte(a, 0); /* NullName */
	} else if (n == 2) {
		aml_byte(a, DUAL_NAME_PREFIX);
	} else if (n > 2) {
		aml_byte(a, MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)n);
	}
	for (unsigned i = 0; i < n; i++)
		aml_bytes(a, segs[i], 4);
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[9];
	size_t n;
	if (v == 0) {
		aml_byte(a, ZERO_OP);
		return;
	}
	if (v == 1) {
		aml_byte(a, ONE_OP);
		return;
	}
	if (v == UINT64_MAX) {
		aml_byte(a, ONES_OP);
		return;
	}
	if (v <= 0xff) {
		b[0] = BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xffff) {
		b[0] = WORD_PREFIX;
		n = 2;
	} else if (v <= 0xffffffff) {
		b[0] = DWORD_PREFIX;
		n = 4;
	} else {
		b[0] = QWORD_PREFIX;
		n = 8;
	}
	for (size_t i = 0; i < n; i++)
		b[1 + i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, 1 + n);
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p > 0x7f) {
			a->error = true; /* AML strings are ASCII */
			return;
		}
	aml_byte(a, STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

bool aml_is_eisaid(const char *id)
{
	if (strlen(id) != 7)
		return false;
	for (int i = 0; i < 3; i++)
		if (id[i] < 'A' || id[i] > 'Z')
			return false;
	for (int i = 3; i < 7; i++)
		if (!isxdigit((unsigned char)id[i]) || islower((unsigned char)id[i]))
			return false;
	return true;
}

static unsigned hexval(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

void aml_eisaid(struct aml *a, const char *id)
{
	if (!aml_is_eisaid(id)) {
		a->error = true;
		return;
	}
	unsigned c0 = (unsigned)(id[0] - 0x40), c1 = (unsigned)(id[1] - 0x40),
		 c2 = (unsigned)(id[2] - 0x40);
	uint32_t v = (uint32_t)((c0 << 2) | (c1 >> 3));
	v |= (uint32_t)(((c1 & 7) << 5) | c2) << 8;
	v |= (uint32_t)((hexval(id[3]) << 4) | hexval(id[4])) << 16;
	v |= (uint32_t)((hexval(id[5]) << 4) | hexval(id[6])) << 24;
	uint8_t b[5] = {DWORD_PREFIX, (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};
	aml_bytes(a, b, sizeof(b));
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, NAME_OP);
	aml_namestring(a, path);
}

/* Opening an object records where its PkgLength goes; the length is
 * inserted there by aml_end. */
static size_t begin(struct aml *a, const uint8_t *op, size_t oplen)
{
	aml_bytes(a, op, oplen);
	return a->len;
}

size_t aml_scope_begin(struct aml *a, const char *path)
{
	static const uint8_t op[] = {SCOPE_OP};
	size_t m = begin(a, op, 1);
	aml_namestring(a, path);
	return m;
}

size_t aml_device_begin(struct aml *a, const char *path)
{
	static const uint8_t op[] = {EXT_OP_PREFIX, DEVICE_OP};
	size_t m = begin(a, op, 2);
	aml_namestring(a, path);
	return m;
}

size_t aml_package_begin(struct aml *a, uint8_t count)
{
	static const uint8_t op[] = {PACKAGE_OP};
	size_t m = begin(a, op, 1);
	aml_byte(a, count);
	return m;
}

size_t aml_method_begin(struct aml *a, const char *path, uint8_t nargs)
{
	static const uint8_t op[] = {METHOD_OP};
	size_t m = begin(a, op, 1);
	aml_namestring(a, path);
	aml_byte(a, (uint8_t)(nargs & 7)); /* NotSerialized, SyncLevel 0 */
	return m;
}

void aml_return(struct aml *a)
{
	aml_byte(a, RETURN_OP);
}

void aml_end(struct aml *a, size_t mark)
{
	if (a->error || mark > a->len)
		return;
	size_t body = a->len - mark;
	uint8_t pl[4];
	size_t n;
	/* PkgLength counts its own bytes: 1 byte holds up to 63, then
	 * 1 + k bytes hold 4 + 8k bits. */
	if (body + 1 <= 0x3f) {
		pl[0] = (uint8_t)(body + 1);
		n = 1;
	} else {
		size_t total;
		if (body + 2 <= 0xfff)
			n = 2;
		else if (body + 3 <= 0xfffff)
			n = 3;
		else if (body + 4 <= 0xfffffff)
			n = 4;
		else {
			a->error = true;
			return;
		}
		total = body + n;
		pl[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
		for (size_t i = 1; i < n; i++)
			pl[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	if (!reserve(a, n))
		return;
	memmove(a->buf + mark + n, a->buf + mark, body);
	memcpy(a->buf + mark, pl, n);
	a->len += n;
}

void aml_op(struct aml *a, uint8_t op)
{
	aml_byte(a, op);
}

size_t aml_if_begin(struct aml *a)
{
	static const uint8_t op[] = {IF_OP};
	return begin(a, op, 1);
}

void aml_opregion(struct aml *a, const char *name, uint8_t space, uint64_t offset, uint64_t len)
{
	static const uint8_t op[] = {EXT_OP_PREFIX, OPREGION_OP};
	aml_bytes(a, op, 2);
	aml_namestring(a, name);
	aml_byte(a, space);
	aml_integer(a, offset);
	aml_integer(a, len);
}

size_t aml_field_begin(struct aml *a, const char *region, uint8_t flags)
{
	static const uint8_t op[] = {EXT_OP_PREFIX, FIELD_OP};
	size_t m = begin(a, op, 2);
	aml_namestring(a, region);
	aml_byte(a, flags);
	return m;
}

void aml_field_unit(struct aml *a, const char *name, unsigned bits)
{
	/* NamedField: NameSeg, then the width as a PkgLength value (not
	 * counting its own bytes) */
	if (strlen(name) != 4 || strchr(name, '.') || strchr(name, '\\') || bits == 0 ||
	    bits > 0xfffff) {
		a->error = true;
		return;
	}
	aml_namestring(a, name);
	if (bits <= 0x3f) {
		aml_byte(a, (uint8_t)bits);
	} else if (bits <= 0xfff) {
		aml_byte(a, (uint8_t)(0x40 | (bits & 0xf)));
		aml_byte(a, (uint8_t)(bits >> 4));
	} else {
		aml_byte(a, (uint8_t)(0x80 | (bits & 0xf)));
		aml_byte(a, (uint8_t)(bits >> 4));
		aml_byte(a, (uint8_t)(bits >> 12));
	}
}

void aml_buffer(struct aml *a, const uint8_t *p, size_t n)
{
	static const uint8_t op[] = {BUFFER_OP};
	size_t m = begin(a, op, 1);
	aml_integer(a, n);
	aml_bytes(a, p, n);
	aml_end(a, m);
}

void aml_res_io(struct aml *r, uint16_t base, uint8_t len)
{
	/* small item 0x08 (I/O port), length 7: decode16, min, max, align, len */
	uint8_t d[8] = {
	    0x47, 0x01, (uint8_t)base, (uint8_t)(base >> 8), (uint8_t)base, (uint8_t)(base >> 8),
	    0x01, len};
	aml_bytes(r, d, sizeof(d));
}

void aml_res_mem32(struct aml *r, uint32_t base, uint32_t len, bool writable)
{
	/* large item 0x06 (32-bit fixed memory range), length 9 */
	uint8_t d[12] = {0x86, 9, 0, writable ? 1 : 0};
	for (int i = 0; i < 4; i++) {
		d[4 + i] = (uint8_t)(base >> (8 * i));
		d[8 + i] = (uint8_t)(len >> (8 * i));
	}
	aml_bytes(r, d, sizeof(d));
}

void aml_res_irq(struct aml *r, uint32_t gsi, bool level, bool active_low)
{
	/* large item 0x09 (extended interrupt), length 6: flags, count, gsi */
	uint8_t flags = 0x01 /* consumer */ | (level ? 0 : 0x02) | (active_low ? 0x04 : 0);
	uint8_t d[9] = {0x89,
			6,
			0,
			flags,
			1,
			(uint8_t)gsi,
			(uint8_t)(gsi >> 8),
			(uint8_t)(gsi >> 16),
			(uint8_t)(gsi >> 24)};
	aml_bytes(r, d, sizeof(d));
}

void aml_res_end(struct aml *r)
{
	/* end tag, checksum 0 ("treated as if the checksum operation succeeded") */
	uint8_t d[2] = {0x79, 0};
	aml_bytes(r, d, sizeof(d));
}
