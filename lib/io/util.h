/* lib/io/util.h - the helpers the VMM's directories stand on: errors, overflow-safe math, byte order, file mapping, the clock. */
#ifndef EMBER_IO_UTIL_H
#define EMBER_IO_UTIL_H

/*
 * This directory (lib/io/) is below devices/ and vmm/: it includes only the
 * C library and public headers (<ember/vmm.h> for struct ember_error), so
 * the bus, guest memory and these helpers serve devices/, vmm/boot/,
 * vmm/arch/ and vmm/ without any of them including another's private
 * headers the wrong way (tests/unit/vmm_layering.c checks the order).
 */

#include <ember/vmm.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* Fills err (if not NULL) with code and a printf-formatted message; returns
 * code, so that `return vmm_errf(err, -EINVAL, "...")` reads naturally. */
int vmm_errf(struct ember_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with a printf-formatted context and ": "; returns
 * err->code (or code if err is NULL). */
int vmm_err_prefix(struct ember_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t vmm_now_ns(void);

/* a + b > limit, without overflow. */
static inline bool vmm_range_exceeds(uint64_t a, uint64_t b, uint64_t limit)
{
	return a > limit || b > limit - a;
}

static inline uint64_t vmm_align_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}
static inline uint64_t vmm_align_down(uint64_t v, uint64_t align)
{
	return v & ~(align - 1);
}

/* Little-endian loads and stores on byte buffers (no alignment needed). */
static inline uint16_t vmm_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t vmm_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t vmm_le64(const uint8_t *p)
{
	return (uint64_t)vmm_le32(p) | (uint64_t)vmm_le32(p + 4) << 32;
}
static inline void vmm_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void vmm_put32(uint8_t *p, uint32_t v)
{
	vmm_put16(p, (uint16_t)v);
	vmm_put16(p + 2, (uint16_t)(v >> 16));
}
static inline void vmm_put64(uint8_t *p, uint64_t v)
{
	vmm_put32(p, (uint32_t)v);
	vmm_put32(p + 4, (uint32_t)(v >> 32));
}

/* Reads a whole file into a private read-only mapping (no copy); *size gets
 * its length. Unmap with vmm_unmap_file. Empty files map to a 1-byte dummy
 * with *size = 0. Errors: -errno of open/fstat/mmap, -EISDIR. */
int vmm_map_file(const char *path, const uint8_t **data, uint64_t *size);
/* The same for an open file (fd stays open and the caller's). */
int vmm_map_fd(int fd, const uint8_t **data, uint64_t *size);
void vmm_unmap_file(const uint8_t *data, uint64_t size);

#endif /* EMBER_IO_UTIL_H */
