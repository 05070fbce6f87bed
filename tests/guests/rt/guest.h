/* tests/guests/rt/guest.h - the freestanding C runtime of the 32- and 64-bit test guests. */
#ifndef EMBER_GUEST_H
#define EMBER_GUEST_H

/*
 * A C guest defines
 *
 *     void guest_main(unsigned long cpu, unsigned long arg);
 *
 * The host (tests/lib/kvm_util.c) enters _start (crt32.S / crt64.S) with a
 * stack, cpu = the vCPU id and arg = the value the test chose; when
 * guest_main returns the runtime sends UCALL_DONE and halts.
 *
 * Memory is identity mapped (flat segments in 32-bit mode, 4 GiB of 2 MiB
 * pages in long mode), so a pointer is a guest-physical address.
 *
 * 64-bit guests also get an IDT (256 vectors) set up before guest_main:
 * guest_set_handler() installs a C handler for a vector; an exception with
 * no handler is a guest assertion failure, unless it happens inside one of
 * the *_safe() helpers, which return the vector instead (0 = no fault).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ucall.h"

void guest_main(unsigned long cpu, unsigned long arg);

void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ __volatile__("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ __volatile__("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ __volatile__("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ __volatile__("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/* MMIO accessors: exactly one access of the given width. */
#define GUEST_MMIO_ACCESSORS(bits)                                          \
	static inline uint##bits##_t mmio_read##bits(uint64_t gpa)          \
	{                                                                   \
		return *(volatile uint##bits##_t *)(uintptr_t)gpa;          \
	}                                                                   \
	static inline void mmio_write##bits(uint64_t gpa, uint##bits##_t v) \
	{                                                                   \
		*(volatile uint##bits##_t *)(uintptr_t)gpa = v;             \
	}
GUEST_MMIO_ACCESSORS(8)
GUEST_MMIO_ACCESSORS(16)
GUEST_MMIO_ACCESSORS(32)
#ifdef __x86_64__
GUEST_MMIO_ACCESSORS(64)
#endif

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c,
			 uint32_t *d)
{
	__asm__ __volatile__("cpuid"
			     : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
			     : "a"(leaf), "c"(sub));
}

/* true on an AMD (or Hygon) vCPU: selects vmmcall over vmcall */
bool guest_is_amd(void);

static inline uint64_t rdmsr(uint32_t index)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index) : "memory");
	return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t index, uint64_t v)
{
	__asm__ __volatile__("wrmsr"
			     :
			     : "c"(index), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			     : "memory");
}

static inline void cli(void)
{
	__asm__ __volatile__("cli" ::: "memory");
}
static inline void sti(void)
{
	__asm__ __volatile__("sti" ::: "memory");
}
static inline void hlt(void)
{
	__asm__ __volatile__("hlt" ::: "memory");
}
/* sti; hlt as one pair: an interrupt pending after sti wakes the hlt */
static inline void sti_hlt(void)
{
	__asm__ __volatile__("sti; hlt" ::: "memory");
}
static inline void pause(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

#ifdef __x86_64__
/* ------------------------------------------------------ 64-bit only: traps */

/* What the interrupt stubs push (crt64.S); handlers may change it (rip...). */
struct guest_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss;
};
typedef void (*guest_handler)(struct guest_frame *f);

/* Installs fn for vector (NULL: back to the default, a guest assertion
 * failure unless a *_safe() helper expects a fault). */
void guest_set_handler(unsigned vector, guest_handler fn);

/* Fault fixup used by the *_safe helpers: while guest_fixup_rip is set, a
 * vector without handler resumes at it and stores the vector in
 * guest_fixup_vector. */
extern volatile uint64_t guest_fixup_rip;
extern volatile uint64_t guest_fixup_vector;

/* Each returns 0, or the vector of the exception the instruction raised. */
static inline uint8_t rdmsr_safe(uint32_t index, uint64_t *value)
{
	uint32_t lo = 0, hi = 0;
	guest_fixup_vector = 0;
	__asm__ __volatile__("movq $1f, guest_fixup_rip\n\t"
			     "rdmsr\n\t"
			     "1: movq $0, guest_fixup_rip"
			     : "+a"(lo), "+d"(hi)
			     : "c"(index)
			     : "memory");
	*value = ((uint64_t)hi << 32) | lo;
	return (uint8_t)guest_fixup_vector;
}
static inline uint8_t wrmsr_safe(uint32_t index, uint64_t v)
{
	guest_fixup_vector = 0;
	__asm__ __volatile__("movq $1f, guest_fixup_rip\n\t"
			     "wrmsr\n\t"
			     "1: movq $0, guest_fixup_rip"
			     :
			     : "c"(index), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			     : "memory");
	return (uint8_t)guest_fixup_vector;
}

/* KVM hypercall (vmmcall on AMD, vmcall on Intel): nr in RAX, args in
 * RBX, RCX, RDX, RSI; returns RAX. */
static inline uint64_t kvm_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2,
				     uint64_t a3)
{
	uint64_t ret;
	if (guest_is_amd())
		__asm__ __volatile__("vmmcall"
				     : "=a"(ret)
				     : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(a3)
				     : "memory");
	else
		__asm__ __volatile__("vmcall"
				     : "=a"(ret)
				     : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(a3)
				     : "memory");
	return ret;
}
#endif /* __x86_64__ */

#endif /* EMBER_GUEST_H */
