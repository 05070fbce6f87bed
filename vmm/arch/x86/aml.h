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

/* Expressions and statements (ACPI 6.5 20.2.5), written in prefix order:
 * an operator's opcode, then its operands as the grammar lists them (e.g.
 * Store: aml_op(AML_STORE), the source, the target; And: AML_AND, two
 * operands, a target, AML_NULL_NAME for none). */
#define AML_NULL_NAME 0x00
#define AML_LOCAL0    0x60 /* Local0..Local7: AML_LOCAL0 + i */
#define AML_ARG0      0x68 /* Arg0..Arg6: AML_ARG0 + i */
#define AML_STORE     0x70
#define AML_AND	      0x7b
#define AML_NOTIFY    0x86
#define AML_LEQUAL    0x93
void aml_op(struct aml *a, uint8_t op);
/* If(predicate){...}: append the predicate, then the body, then aml_end. */
size_t aml_if_begin(struct aml *a);
/* OperationRegion(name, space, offset, length); space: AML_SPACE_*. */
#define AML_SPACE_MEMORY 0x00
#define AML_SPACE_IO	 0x01
void aml_opregion(struct aml *a, const char *name, uint8_t space, uint64_t offset, uint64_t len);
/* Field(region, flags){...}: append aml_field_unit()s, then aml_end.
 * flags: access type (AML_FIELD_DWORD: DWordAcc), NoLock, Preserve. */
#define AML_FIELD_DWORD 0x03
size_t aml_field_begin(struct aml *a, const char *region, uint8_t flags);
/* A named field unit of bits bits (name: one 4-character segment). */
void aml_field_unit(struct aml *a, const char *name, unsigned bits);

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
