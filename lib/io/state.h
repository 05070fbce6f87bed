/* lib/io/state.h - a bounded writer and reader of saved device state: typed little-endian fields in tagged, versioned sections. */
#ifndef EMBER_IO_STATE_H
#define EMBER_IO_STATE_H

/*
 * The format a device's save() writes and its load() reads (devices/device.h),
 * and what vmm_devices_save/load (vmm/devstate.c) wrap around them:
 *
 *   section := tag_len:u8  tag:tag_len bytes  version:u32  payload_len:u32  payload
 *
 * Fields are little-endian u8/u16/u32/u64, raw bytes, or strings (u16 length,
 * then the bytes, no NUL). Sections nest (at most VMM_STATE_MAX_DEPTH deep);
 * a tag is 1..VMM_STATE_TAG_MAX printable ASCII characters; a version is
 * 1 or more, chosen by the writer of the section's layout.
 *
 * Both sides keep a sticky error: after the first failure every further call
 * does nothing (a reader returns zeroes), so a device writes or reads its
 * whole state straight through and checks the error once at the end
 * (vmm_sw_error / vmm_sr_error). The reader never reads past the buffer or
 * past the end of the section it is in, and it refuses a section whose tag
 * is not the one asked for, whose version is 0 or newer than the caller
 * knows, whose length passes its parent's end, or whose payload was not read
 * to its last byte (vmm_sr_end). Malformed input is -EINVAL with a message
 * (vmm_sr_detail) naming the section path, e.g. "serial8250: truncated".
 *
 * A load() that follows the rule "read everything into locals, validate
 * (vmm_sr_fail), vmm_sr_end, then apply" changes nothing on bad input, and
 * its messages name its section (validating before the end keeps the
 * section in the path).
 *
 * No locking: one writer or reader is used by one thread at a time. The
 * writer allocates (its buffer grows); the reader never does.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMM_STATE_TAG_MAX   31u
#define VMM_STATE_MAX_DEPTH 8u
/* A writer refuses to grow past this (-E2BIG): device state is small;
 * guest memory is never saved through it. */
#define VMM_STATE_MAX_BYTES (64ull << 20)
#define VMM_STATE_DETAIL    160u

struct vmm_state_w {
	uint8_t *buf;
	size_t len, cap;
	int err; /* sticky: the first error (-ENOMEM, -E2BIG, -EINVAL), or 0 */
	unsigned depth;
	size_t open[VMM_STATE_MAX_DEPTH]; /* offset of each open section's payload_len */
};

struct vmm_state_r {
	const uint8_t *buf;
	size_t pos;
	size_t end; /* the end of the innermost open section (or of the buffer) */
	int err;    /* sticky: the first error (-EINVAL), or 0 */
	unsigned depth;
	size_t ends[VMM_STATE_MAX_DEPTH]; /* the enclosing ends, outermost first */
	char tags[VMM_STATE_MAX_DEPTH][VMM_STATE_TAG_MAX + 1];
	char detail[VMM_STATE_DETAIL];
};

/* ------------------------------------------------------------- writer */

/* An empty writer (no allocation yet). */
void vmm_sw_init(struct vmm_state_w *w);
/* Frees the buffer (the writer is empty again). NULL is a no-op. */
void vmm_sw_free(struct vmm_state_w *w);

void vmm_sw_u8(struct vmm_state_w *w, uint8_t v);
void vmm_sw_u16(struct vmm_state_w *w, uint16_t v);
void vmm_sw_u32(struct vmm_state_w *w, uint32_t v);
void vmm_sw_u64(struct vmm_state_w *w, uint64_t v);
void vmm_sw_bool(struct vmm_state_w *w, bool v);
void vmm_sw_bytes(struct vmm_state_w *w, const void *data, size_t len);
/* A string of at most 65535 bytes (longer is -EINVAL); NULL writes "". */
void vmm_sw_str(struct vmm_state_w *w, const char *s);

/* Opens a section (tag as above, version >= 1; else -EINVAL); every field
 * up to the matching vmm_sw_end is its payload. Nesting deeper than
 * VMM_STATE_MAX_DEPTH is -EINVAL. */
void vmm_sw_begin(struct vmm_state_w *w, const char *tag, uint32_t version);
/* Closes the innermost section (its length is filled in); -EINVAL if none
 * is open. */
void vmm_sw_end(struct vmm_state_w *w);

/* The sticky error (0 if none). */
int vmm_sw_error(const struct vmm_state_w *w);
/* Hands the bytes written to the caller: returns 0 with *buf (malloc'ed,
 * the caller frees it; never NULL, even for 0 bytes) and *len, and the
 * writer is empty again. Returns the sticky error (buffer freed), -EINVAL
 * if a section is still open, -ENOMEM. */
int vmm_sw_take(struct vmm_state_w *w, void **buf, size_t *len);

/* ------------------------------------------------------------- reader */

/* A reader over buf[0..len) (not copied: it must outlive the reader). */
void vmm_sr_init(struct vmm_state_r *r, const void *buf, size_t len);

/* Each returns the next field, or 0 (and sets the sticky -EINVAL) when the
 * section or buffer ends first or an error is already set. */
uint8_t vmm_sr_u8(struct vmm_state_r *r);
uint16_t vmm_sr_u16(struct vmm_state_r *r);
uint32_t vmm_sr_u32(struct vmm_state_r *r);
uint64_t vmm_sr_u64(struct vmm_state_r *r);
/* A byte that must be 0 or 1 (else -EINVAL). */
bool vmm_sr_bool(struct vmm_state_r *r);
/* Copies len bytes into data (zeroes them on error). */
void vmm_sr_bytes(struct vmm_state_r *r, void *data, size_t len);
/* Reads a string into s (cap bytes with the NUL); a longer one, or one
 * holding a NUL byte, is -EINVAL. s is "" on error. */
void vmm_sr_str(struct vmm_state_r *r, char *s, size_t cap);

/* Opens the next section, which must be tag; on entry *version is the
 * newest version the caller understands, on return the section's (from 1
 * to that). Returns 0, or the sticky error (-EINVAL: a different tag, an
 * unknown version, a length past the enclosing end, too deep). */
int vmm_sr_begin(struct vmm_state_r *r, const char *tag, uint32_t *version);
/* Closes the innermost section: its payload must have been read to its
 * end (else -EINVAL "trailing bytes"). Returns the sticky error. */
int vmm_sr_end(struct vmm_state_r *r);
/* Skips the next section, whatever its tag and version (its header checked
 * as vmm_sr_begin does). Returns 0 or the sticky error. A load that must
 * know its part ends well before it applies anything reads ahead so on a
 * copy of the reader (struct assignment). */
int vmm_sr_skip(struct vmm_state_r *r);
/* Copies the tag of the next section into tag (VMM_STATE_TAG_MAX + 1
 * bytes) without consuming anything. Returns 0, or -EINVAL (no well-formed
 * section header next; the sticky error is not set). */
int vmm_sr_peek_tag(const struct vmm_state_r *r, char *tag);

/* Bytes left in the innermost section (or the buffer); 0 on error. */
size_t vmm_sr_remaining(const struct vmm_state_r *r);
/* True when the whole buffer was read, no section is open and no error. */
bool vmm_sr_done(const struct vmm_state_r *r);

/* Records a semantic error a load() found (an index past the queue size,
 * say): sets the sticky error to code (negative errno) with the formatted
 * message, prefixed with the section path. Only the first error is kept.
 * Returns the sticky error. */
int vmm_sr_fail(struct vmm_state_r *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The sticky error (0 if none). */
int vmm_sr_error(const struct vmm_state_r *r);
/* What went wrong ("" if nothing did). */
const char *vmm_sr_detail(const struct vmm_state_r *r);

#endif /* EMBER_IO_STATE_H */
