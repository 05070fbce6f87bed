/* tests/unit/aml_walk.h - a tiny AML reader for the DSDT subset Ember emits, written from the spec apart from the encoder (shared by the ACPI and device-manager tests). */
#ifndef EMBER_TESTS_AML_WALK_H
#define EMBER_TESTS_AML_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* ---------------------------------------------------------------- AML walker */

/* A tiny AML reader for the subset the builder emits, written from the
 * spec independently of the encoder: what a guest's interpreter sees. */
struct found_dev {
	char path[128];
	uint64_t hid_int;
	char hid_str[16];
	uint64_t uid;
	uint8_t crs[64];
	size_t crs_len;
};
struct walk {
	const uint8_t *p;
	size_t n;
	struct found_dev devs[300];
	int ndevs;
	int s5_count;
	uint64_t s5_first;
	/* Methods (their paths and body bytes) and operation regions */
	struct {
		char path[128];
		const uint8_t *body;
		size_t len;
		int nargs;
	} methods[64];
	int nmethods;
	struct {
		char path[128];
		int space;
		uint64_t offset, len;
	} regions[8];
	int nregions;
	bool bad;
};

static inline size_t pkglen(const uint8_t *p, size_t avail, size_t *len_bytes)
{
	*len_bytes = 0;
	if (!avail)
		return 0;
	unsigned follow = p[0] >> 6;
	if (follow + 1 > avail)
		return 0;
	size_t v = follow ? (p[0] & 0xf) : (p[0] & 0x3f);
	for (unsigned i = 0; i < follow; i++)
		v |= (size_t)p[1 + i] << (4 + 8 * i);
	*len_bytes = follow + 1;
	return v;
}

/* NameString -> dotted text; returns bytes consumed or 0. */
static inline size_t namestr(const uint8_t *p, size_t avail, char *out, size_t cap)
{
	size_t i = 0, o = 0;
	out[0] = 0;
	if (i < avail && p[i] == '\\') {
		out[o++] = '\\';
		i++;
	}
	unsigned segs = 1;
	if (i < avail && p[i] == 0x2e) {
		segs = 2;
		i++;
	} else if (i < avail && p[i] == 0x2f) {
		segs = p[i + 1];
		i += 2;
	} else if (i < avail && p[i] == 0) {
		out[o] = 0;
		return i + 1;
	}
	for (unsigned s = 0; s < segs; s++) {
		if (i + 4 > avail || o + 6 > cap)
			return 0;
		if (s)
			out[o++] = '.';
		memcpy(out + o, p + i, 4);
		o += 4;
		i += 4;
	}
	out[o] = 0;
	return i;
}

/* Reads a data object; returns bytes consumed (0 on error). */
static inline size_t data_obj(struct walk *w, const uint8_t *p, size_t avail, uint64_t *ival,
			      char *sval, const uint8_t **buf, size_t *buflen, int *pkg_count)
{
	if (!avail)
		return 0;
	*ival = 0;
	switch (p[0]) {
	case 0x00:
	case 0x01:
		*ival = p[0];
		return 1;
	case 0xff:
		*ival = UINT64_MAX;
		return 1;
	case 0x0a:
		*ival = p[1];
		return 2;
	case 0x0b:
		*ival = (uint64_t)p[1] | (uint64_t)p[2] << 8;
		return 3;
	case 0x0c:
		*ival = le32(p + 1);
		return 5;
	case 0x0e:
		*ival = le64(p + 1);
		return 9;
	case 0x0d: {
		size_t l = strnlen((const char *)p + 1, avail - 1);
		if (l + 2 > avail)
			return 0;
		if (sval)
			snprintf(sval, 16, "%s", (const char *)p + 1);
		return l + 2;
	}
	case 0x11: { /* Buffer: PkgLength BufferSize bytes */
		size_t lb, len = pkglen(p + 1, avail - 1, &lb);
		if (!len || 1 + len > avail)
			return 0;
		uint64_t size;
		size_t k = data_obj(w, p + 1 + lb, len - lb, &size, NULL, NULL, NULL, NULL);
		if (!k || lb + k + size != len)
			return 0;
		if (buf) {
			*buf = p + 1 + lb + k;
			*buflen = (size_t)size;
		}
		return 1 + len;
	}
	case 0x12: { /* Package: PkgLength NumElements elements */
		size_t lb, len = pkglen(p + 1, avail - 1, &lb);
		if (!len || 1 + len > avail)
			return 0;
		int count = p[1 + lb];
		size_t off = 1 + lb + 1;
		uint64_t first = 0;
		for (int i = 0; i < count; i++) {
			uint64_t v;
			size_t k = data_obj(w, p + off, 1 + len - off, &v, NULL, NULL, NULL, NULL);
			if (!k)
				return 0;
			if (i == 0)
				first = v;
			off += k;
		}
		if (off != 1 + len)
			return 0;
		if (pkg_count)
			*pkg_count = count;
		*ival = first;
		return 1 + len;
	}
	}
	return 0;
}

static inline void walk_terms(struct walk *w, const uint8_t *p, size_t n, const char *scope,
			      struct found_dev *dev)
{
	size_t i = 0;
	while (i < n && !w->bad) {
		char name[64], path[128];
		if (p[i] == 0x10 || (p[i] == 0x5b && i + 1 < n && p[i + 1] == 0x82)) {
			bool device = p[i] != 0x10;
			size_t op = device ? 2 : 1, lb;
			size_t len = pkglen(p + i + op, n - i - op, &lb);
			if (!len || i + op + len > n) {
				w->bad = true;
				return;
			}
			size_t k = namestr(p + i + op + lb, len - lb, name, sizeof(name));
			if (!k) {
				w->bad = true;
				return;
			}
			snprintf(path, sizeof(path), "%s%s%s", name[0] == '\\' ? "" : scope,
				 name[0] == '\\' || !scope[0] ? "" : ".", name);
			struct found_dev *d = NULL;
			if (device && w->ndevs < 300) {
				d = &w->devs[w->ndevs++];
				memset(d, 0, sizeof(*d));
				snprintf(d->path, sizeof(d->path), "%s", path);
			}
			walk_terms(w, p + i + op + lb + k, len - lb - k, path, d);
			i += op + len;
		} else if (p[i] == 0x08) {
			size_t k = namestr(p + i + 1, n - i - 1, name, sizeof(name));
			if (!k) {
				w->bad = true;
				return;
			}
			uint64_t v;
			char s[16] = "";
			const uint8_t *buf = NULL;
			size_t buflen = 0;
			int count = 0;
			size_t d =
			    data_obj(w, p + i + 1 + k, n - i - 1 - k, &v, s, &buf, &buflen, &count);
			if (!d) {
				w->bad = true;
				return;
			}
			if (dev && !strcmp(name, "_HID")) {
				dev->hid_int = v;
				snprintf(dev->hid_str, sizeof(dev->hid_str), "%s", s);
			} else if (dev && !strcmp(name, "_UID")) {
				dev->uid = v;
			} else if (dev && !strcmp(name, "_CRS") && buf && buflen <= 64) {
				memcpy(dev->crs, buf, buflen);
				dev->crs_len = buflen;
			} else if (!strcmp(name, "\\_S5_")) {
				w->s5_count = count;
				w->s5_first = v;
			}
			i += 1 + k + d;
		} else if (p[i] == 0x14) { /* Method: PkgLength NameString flags body */
			size_t lb, len = pkglen(p + i + 1, n - i - 1, &lb);
			size_t k = len && i + 1 + len <= n
				       ? namestr(p + i + 1 + lb, len - lb, name, sizeof(name))
				       : 0;
			if (!k || lb + k + 1 > len) {
				w->bad = true;
				return;
			}
			if (w->nmethods < 64) {
				int m = w->nmethods++;
				snprintf(w->methods[m].path, sizeof(w->methods[m].path), "%s%s%s",
					 scope, scope[0] ? "." : "", name);
				w->methods[m].nargs = p[i + 1 + lb + k] & 7;
				w->methods[m].body = p + i + 1 + lb + k + 1;
				w->methods[m].len = len - lb - k - 1;
			}
			i += 1 + len;
		} else if (p[i] == 0x5b && i + 1 < n && p[i + 1] == 0x80) {
			/* OperationRegion: NameString space offset length */
			size_t k = namestr(p + i + 2, n - i - 2, name, sizeof(name));
			uint64_t off = 0, rlen = 0;
			size_t a = k && i + 2 + k < n ? data_obj(w, p + i + 3 + k, n - i - 3 - k,
								 &off, NULL, NULL, NULL, NULL)
						      : 0;
			size_t b = a ? data_obj(w, p + i + 3 + k + a, n - i - 3 - k - a, &rlen,
						NULL, NULL, NULL, NULL)
				     : 0;
			if (!b) {
				w->bad = true;
				return;
			}
			if (w->nregions < 8) {
				int r = w->nregions++;
				snprintf(w->regions[r].path, sizeof(w->regions[r].path), "%s%s%s",
					 scope, scope[0] ? "." : "", name);
				w->regions[r].space = p[i + 2 + k];
				w->regions[r].offset = off;
				w->regions[r].len = rlen;
			}
			i += 3 + k + a + b;
		} else if (p[i] == 0x5b && i + 1 < n && p[i + 1] == 0x81) { /* Field: skipped */
			size_t lb, len = pkglen(p + i + 2, n - i - 2, &lb);
			if (!len || i + 2 + len > n) {
				w->bad = true;
				return;
			}
			i += 2 + len;
		} else {
			w->bad = true;
			return;
		}
	}
}

static inline int find_method(struct walk *w, const char *path)
{
	for (int i = 0; i < w->nmethods; i++)
		if (!strcmp(w->methods[i].path, path))
			return i;
	return -1;
}

static inline struct found_dev *find_dev(struct walk *w, const char *path)
{
	for (int i = 0; i < w->ndevs; i++)
		if (!strcmp(w->devs[i].path, path))
			return &w->devs[i];
	return NULL;
}

#endif /* EMBER_TESTS_AML_WALK_H */
