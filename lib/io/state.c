/* lib/io/state.c - the bounded writer and reader of saved device state (state.h). */
#include "state.h"

#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- writer */

void vmm_sw_init(struct vmm_state_w *w)
{
	memset(w, 0, sizeof(*w));
}

void vmm_sw_free(struct vmm_state_w *w)
{
	if (!w)
		return;
	free(w->buf);
	vmm_sw_init(w);
}

static bool sw_reserve(struct vmm_state_w *w, size_t n)
{
	if (w->err)
		return false;
	if (vmm_range_exceeds(w->len, n, VMM_STATE_MAX_BYTES)) {
		w->err = -E2BIG;
		return false;
	}
	if (w->len + n <= w->cap)
		return true;
	size_t cap = w->cap ? w->cap : 256;
	while (cap < w->len + n)
		cap *= 2;
	uint8_t *nb = realloc(w->buf, cap);
	if (!nb) {
		w->err = -ENOMEM;
		return false;
	}
	w->buf = nb;
	w->cap = cap;
	return true;
}

void vmm_sw_bytes(struct vmm_state_w *w, const void *data, size_t len)
{
	if (!sw_reserve(w, len))
		return;
	if (len)
		memcpy(w->buf + w->len, data, len);
	w->len += len;
}

void vmm_sw_u8(struct vmm_state_w *w, uint8_t v)
{
	vmm_sw_bytes(w, &v, 1);
}

void vmm_sw_u16(struct vmm_state_w *w, uint16_t v)
{
	uint8_t b[2];
	vmm_put16(b, v);
	vmm_sw_bytes(w, b, sizeof(b));
}

void vmm_sw_u32(struct vmm_state_w *w, uint32_t v)
{
	uint8_t b[4];
	vmm_put32(b, v);
	vmm_sw_bytes(w, b, sizeof(b));
}

void vmm_sw_u64(struct vmm_state_w *w, uint64_t v)
{
	uint8_t b[8];
	vmm_put64(b, v);
	vmm_sw_bytes(w, b, sizeof(b));
}

void vmm_sw_bool(struct vmm_state_w *w, bool v)
{
	vmm_sw_u8(w, v ? 1 : 0);
}

void vmm_sw_str(struct vmm_state_w *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n > UINT16_MAX) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	vmm_sw_u16(w, (uint16_t)n);
	vmm_sw_bytes(w, s, n);
}

static bool tag_ok(const char *tag, size_t *len)
{
	if (!tag)
		return false;
	size_t n = strlen(tag);
	if (n == 0 || n > VMM_STATE_TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (tag[i] < 0x21 || tag[i] > 0x7e)
			return false;
	*len = n;
	return true;
}

void vmm_sw_begin(struct vmm_state_w *w, const char *tag, uint32_t version)
{
	size_t n;
	if (w->err)
		return;
	if (!tag_ok(tag, &n) || version == 0 || w->depth >= VMM_STATE_MAX_DEPTH) {
		w->err = -EINVAL;
		return;
	}
	vmm_sw_u8(w, (uint8_t)n);
	vmm_sw_bytes(w, tag, n);
	vmm_sw_u32(w, version);
	if (w->err)
		return;
	w->open[w->depth++] = w->len;
	vmm_sw_u32(w, 0); /* payload_len, filled by vmm_sw_end */
}

void vmm_sw_end(struct vmm_state_w *w)
{
	if (w->err)
		return;
	if (w->depth == 0) {
		w->err = -EINVAL;
		return;
	}
	size_t at = w->open[--w->depth];
	size_t payload = w->len - at - 4;
	if (payload > UINT32_MAX) {
		w->err = -E2BIG;
		return;
	}
	vmm_put32(w->buf + at, (uint32_t)payload);
}

int vmm_sw_error(const struct vmm_state_w *w)
{
	return w->err;
}

int vmm_sw_take(struct vmm_state_w *w, void **buf, size_t *len)
{
	int rc = w->err;
	if (!rc && w->depth)
		rc = -EINVAL;
	if (!rc && !w->buf && !sw_reserve(w, 1))
		rc = w->err;
	if (rc) {
		vmm_sw_free(w);
		return rc;
	}
	*buf = w->buf;
	*len = w->len;
	w->buf = NULL;
	vmm_sw_free(w);
	return 0;
}

/* ------------------------------------------------------------- reader */

void vmm_sr_init(struct vmm_state_r *r, const void *buf, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->end = buf ? len : 0;
}

/* "a/b/c" of the open sections, into out. */
static void sr_path(const struct vmm_state_r *r, char *out, size_t cap)
{
	size_t at = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < r->depth && at < cap; i++) {
		int n = snprintf(out + at, cap - at, "%s%s", i ? "/" : "", r->tags[i]);
		if (n < 0)
			break;
		at += (size_t)n;
	}
}

__attribute__((format(printf, 3, 0))) static int sr_failv(struct vmm_state_r *r, int code,
							  const char *fmt, va_list ap)
{
	if (r->err)
		return r->err;
	char path[VMM_STATE_DETAIL];
	char msg[VMM_STATE_DETAIL];
	sr_path(r, path, sizeof(path));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* "path: msg", cut to fit */
	size_t at = 0;
	if (path[0]) {
		at = strnlen(path, sizeof(r->detail) - 3);
		memcpy(r->detail, path, at);
		memcpy(r->detail + at, ": ", 2);
		at += 2;
	}
	size_t n = strnlen(msg, sizeof(r->detail) - 1 - at);
	memcpy(r->detail + at, msg, n);
	r->detail[at + n] = '\0';
	r->err = code;
	return code;
}

int vmm_sr_fail(struct vmm_state_r *r, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = sr_failv(r, code, fmt, ap);
	va_end(ap);
	return rc;
}

static const uint8_t *sr_take(struct vmm_state_r *r, size_t n)
{
	if (r->err)
		return NULL;
	if (n > r->end - r->pos) {
		vmm_sr_fail(r, -EINVAL, "truncated (%zu bytes wanted, %zu left)", n,
			    r->end - r->pos);
		return NULL;
	}
	const uint8_t *p = r->buf + r->pos;
	r->pos += n;
	return p;
}

uint8_t vmm_sr_u8(struct vmm_state_r *r)
{
	const uint8_t *p = sr_take(r, 1);
	return p ? p[0] : 0;
}

uint16_t vmm_sr_u16(struct vmm_state_r *r)
{
	const uint8_t *p = sr_take(r, 2);
	return p ? vmm_le16(p) : 0;
}

uint32_t vmm_sr_u32(struct vmm_state_r *r)
{
	const uint8_t *p = sr_take(r, 4);
	return p ? vmm_le32(p) : 0;
}

uint64_t vmm_sr_u64(struct vmm_state_r *r)
{
	const uint8_t *p = sr_take(r, 8);
	return p ? vmm_le64(p) : 0;
}

bool vmm_sr_bool(struct vmm_state_r *r)
{
	uint8_t v = vmm_sr_u8(r);
	if (v > 1)
		vmm_sr_fail(r, -EINVAL, "boolean field holds %u", v);
	return v == 1 && !r->err;
}

void vmm_sr_bytes(struct vmm_state_r *r, void *data, size_t len)
{
	const uint8_t *p = sr_take(r, len);
	if (!len)
		return;
	if (p)
		memcpy(data, p, len);
	else
		memset(data, 0, len);
}

void vmm_sr_str(struct vmm_state_r *r, char *s, size_t cap)
{
	if (cap)
		s[0] = '\0';
	uint16_t n = vmm_sr_u16(r);
	const uint8_t *p = sr_take(r, n);
	if (!p)
		return;
	if (n >= cap) {
		vmm_sr_fail(r, -EINVAL, "string of %u bytes (at most %zu)", n, cap ? cap - 1 : 0);
		return;
	}
	if (memchr(p, '\0', n)) {
		vmm_sr_fail(r, -EINVAL, "string holds a NUL byte");
		return;
	}
	memcpy(s, p, n);
	s[n] = '\0';
}

/* Parses a section header at r->pos (not consuming): tag into tag, version,
 * payload length, header size. Returns 0 or -EINVAL with why. */
static int sr_header(const struct vmm_state_r *r, char *tag, uint32_t *version, uint32_t *plen,
		     size_t *hdr, const char **why)
{
	size_t left = r->end - r->pos;
	const uint8_t *p = r->buf + r->pos;
	*why = "truncated section header";
	if (left < 1)
		return -EINVAL;
	size_t n = p[0];
	if (n == 0 || n > VMM_STATE_TAG_MAX) {
		*why = "bad section tag length";
		return -EINVAL;
	}
	if (left < 1 + n + 8)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (p[1 + i] < 0x21 || p[1 + i] > 0x7e) {
			*why = "bad section tag";
			return -EINVAL;
		}
		tag[i] = (char)p[1 + i];
	}
	tag[n] = '\0';
	*version = vmm_le32(p + 1 + n);
	*plen = vmm_le32(p + 1 + n + 4);
	*hdr = 1 + n + 8;
	return 0;
}

int vmm_sr_peek_tag(const struct vmm_state_r *r, char *tag)
{
	uint32_t version, plen;
	size_t hdr;
	const char *why;
	if (r->err)
		return -EINVAL;
	return sr_header(r, tag, &version, &plen, &hdr, &why);
}

int vmm_sr_begin(struct vmm_state_r *r, const char *tag, uint32_t *version)
{
	char got[VMM_STATE_TAG_MAX + 1];
	uint32_t v, plen;
	size_t hdr;
	const char *why;
	if (r->err)
		return r->err;
	if (r->depth >= VMM_STATE_MAX_DEPTH)
		return vmm_sr_fail(r, -EINVAL, "sections nested too deep");
	if (sr_header(r, got, &v, &plen, &hdr, &why))
		return vmm_sr_fail(r, -EINVAL, "%s where section '%s' was expected", why, tag);
	if (strcmp(got, tag))
		return vmm_sr_fail(r, -EINVAL, "section '%s' where '%s' was expected", got, tag);
	if (v == 0 || v > *version)
		return vmm_sr_fail(r, -EINVAL,
				   "section '%s' has version %u (this build reads 1 to %u)", tag, v,
				   *version);
	if (plen > r->end - r->pos - hdr)
		return vmm_sr_fail(r, -EINVAL, "section '%s' of %u bytes passes its end (%zu left)",
				   tag, plen, r->end - r->pos - hdr);
	r->pos += hdr;
	r->ends[r->depth] = r->end;
	snprintf(r->tags[r->depth], sizeof(r->tags[0]), "%s", tag);
	r->depth++;
	r->end = r->pos + plen;
	*version = v;
	return 0;
}

int vmm_sr_skip(struct vmm_state_r *r)
{
	char tag[VMM_STATE_TAG_MAX + 1];
	uint32_t v, plen;
	size_t hdr;
	const char *why;
	if (r->err)
		return r->err;
	if (sr_header(r, tag, &v, &plen, &hdr, &why))
		return vmm_sr_fail(r, -EINVAL, "%s", why);
	if (v == 0 || plen > r->end - r->pos - hdr)
		return vmm_sr_fail(r, -EINVAL, "section '%s': bad version or length", tag);
	r->pos += hdr + plen;
	return 0;
}

int vmm_sr_end(struct vmm_state_r *r)
{
	if (r->err)
		return r->err;
	if (r->depth == 0)
		return vmm_sr_fail(r, -EINVAL, "no open section to end");
	if (r->pos != r->end)
		return vmm_sr_fail(r, -EINVAL, "%zu trailing bytes", r->end - r->pos);
	r->depth--;
	r->end = r->ends[r->depth];
	return 0;
}

size_t vmm_sr_remaining(const struct vmm_state_r *r)
{
	return r->err ? 0 : r->end - r->pos;
}

bool vmm_sr_done(const struct vmm_state_r *r)
{
	return !r->err && r->depth == 0 && r->pos == r->end;
}

int vmm_sr_error(const struct vmm_state_r *r)
{
	return r->err;
}

const char *vmm_sr_detail(const struct vmm_state_r *r)
{
	return r->detail;
}
