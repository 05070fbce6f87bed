/* vmm/arch/x86/aml.h - a small ACPI Machine Language encoder (the subset a DSDT of devices needs). */
#ifndef EMBER_VMM_X86_AML_H
#define EMBER_VMM_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A growable byte buffer. Objects with a PkgLength (Scope, Device, Package,
 * Buffer, Method) are opened with *_begin(), which returns a mark, and
 * closed with aml_end(mark), which inserts the length once the contents are
 * known. Out of memory or a malformed name sets a sticky error checked once
 * at the end with aml_ok(). ACPI 6.5 section 20 (AML) gives the encodings.
 */
struct aml {
	uint8_t *buf;
	size_t len;
	size_t cap;
	bool error;
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
bool aml_ok(const struct aml *a);

void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t v);

/* NameString: "\\_SB_", "_HID", "COM1", "\\_SB_.COM1" (segments of up to 4
 * characters [A-Z0-9_], first not a digit; short segments are padded with
 * '_'). */
void aml_namestring(struct aml *a, const char *path);
/* Integer with the shortest encoding (ZeroOp, OneOp, Byte/Word/DWord/QWord). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* "PNP0501" -> its compressed EISA id as a DWord. Sets the error on a bad id. */
void aml_eisaid(struct aml *a, const char *id);
/* True if id has the EISA form (3 letters A-Z then 4 hex digits). */
bool aml_is_eisaid(const char *id);

/* Name(path, <object appended next>) */
void aml_name(struct aml *a, const char *path);

size_t aml_scope_begin(struct aml *a, const char *path);
size_t aml_device_begin(struct aml *a, const char *path);
/* Package(count){...}: append count elements, then aml_end. */
size_t aml_package_begin(struct aml *a, uint8_t count);
/* Method(path, nargs, NotSerialized){...} */
size_t aml_method_begin(struct aml *a, const char *path, uint8_t nargs);
void aml_return(struct aml *a); /* ReturnOp; append the value next */
/* Closes the object opened at mark. */
void aml_end(struct aml *a, size_t mark);

/* Buffer(){bytes} with a known content (e.g. a resource template). */
void aml_buffer(struct aml *a, const uint8_t *p, size_t n);

/* Resource template descriptors (ACPI 6.5 section 6.4), appended to a plain
 * struct aml used as a byte buffer; finish with aml_res_end and wrap with
 * aml_buffer. */
void aml_res_io(struct aml *r, uint16_t base, uint8_t len);
void aml_res_mem32(struct aml *r, uint32_t base, uint32_t len, bool writable);
/* Extended Interrupt descriptor: consumer, exclusive, one GSI. */
void aml_res_irq(struct aml *r, uint32_t gsi, bool level, bool active_low);
void aml_res_end(struct aml *r);

#endif /* EMBER_VMM_X86_AML_H */
