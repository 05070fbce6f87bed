/* tests/lib/ucall.h - the guest->host ucall ABI, shared by the test guests and the host. */
#ifndef EMBER_TEST_UCALL_H
#define EMBER_TEST_UCALL_H

/*
 * A ucall is one 32-bit OUT to UCALL_PORT whose value is the guest-physical
 * address of a struct ucall_msg in guest memory (every test guest runs with
 * linear == physical addresses: real mode with segment bases 0, flat 32-bit
 * protected mode, or identity-mapped long mode). The host reads the message
 * through the VM's bounds-checked memory accessors (tests/lib/kvm_util.c);
 * a message it cannot read, or an OUT of another size to UCALL_PORT, is a
 * test failure.
 *
 *   UCALL_SYNC         the guest reports up to UCALL_MAX_ARGS values and
 *                      goes on when the host runs it again
 *   UCALL_DONE         the guest finished; it halts if run again
 *   UCALL_ASSERT_FAIL  a guest assertion failed at file:line (text: the
 *                      expression, args: the values involved); the guest
 *                      halts forever, the host fails the test naming file:line
 *
 * From guest C (built with -DEMBER_GUEST): GUEST_SYNC(...), GUEST_DONE(),
 * GUEST_ASSERT(cond), GUEST_ASSERT_EQ(a, b), GUEST_FAIL("text", ...).
 * From 16-bit guest assembly: tests/guests/rt/rm16.h.
 */

#define UCALL_PORT     0xE7
#define UCALL_MAX_ARGS 4

#define UCALL_NONE	  0
#define UCALL_SYNC	  1
#define UCALL_DONE	  2
#define UCALL_ASSERT_FAIL 3

/* Byte offsets in struct ucall_msg (for guest assembly). */
#define UCALL_OFF_CMD	0
#define UCALL_OFF_LINE	4
#define UCALL_OFF_FILE	8
#define UCALL_OFF_TEXT	16
#define UCALL_OFF_NARGS 24
#define UCALL_OFF_ARGS	32
#define UCALL_MSG_SIZE	64

#ifndef __ASSEMBLER__
#include <stdint.h>

/* The message as it lies in guest memory (same layout in 16/32/64-bit). */
struct ucall_msg {
	uint32_t cmd;	/* UCALL_* */
	uint32_t line;	/* __LINE__ of the call site */
	uint64_t file;	/* GPA of the NUL-terminated __FILE__, or 0 */
	uint64_t text;	/* GPA of a NUL-terminated text (assertion), or 0 */
	uint32_t nargs; /* 0..UCALL_MAX_ARGS */
	uint32_t pad;
	uint64_t args[UCALL_MAX_ARGS];
};

_Static_assert(sizeof(struct ucall_msg) == UCALL_MSG_SIZE, "ucall_msg layout");
_Static_assert(__builtin_offsetof(struct ucall_msg, args) == UCALL_OFF_ARGS, "ucall_msg layout");
_Static_assert(__builtin_offsetof(struct ucall_msg, nargs) == UCALL_OFF_NARGS, "ucall_msg layout");

#ifdef EMBER_GUEST
/* ---------------------------------------------------------------- guest side */

static inline void ucall_send(struct ucall_msg *msg)
{
	/* the message lives on the stack: the host reads it during the OUT */
	__asm__ __volatile__("outl %0, %1"
			     :
			     : "a"((uint32_t)(uintptr_t)msg), "i"(UCALL_PORT)
			     : "memory");
}

#define UCALL_NARGS_(_0, _1, _2, _3, _4, n, ...) n
#define UCALL_NARGS(...)			 UCALL_NARGS_(0, ##__VA_ARGS__, 4, 3, 2, 1, 0)

#define GUEST_UCALL(cmd_, text_, ...)                  \
	do {                                           \
		struct ucall_msg m_ = {                \
		    .cmd = (cmd_),                     \
		    .line = __LINE__,                  \
		    .file = (uintptr_t)__FILE__,       \
		    .text = (uintptr_t)(text_),        \
		    .nargs = UCALL_NARGS(__VA_ARGS__), \
		    .args = {__VA_ARGS__},             \
		};                                     \
		ucall_send(&m_);                       \
	} while (0)

static inline __attribute__((noreturn)) void guest_halt_forever(void)
{
	for (;;)
		__asm__ __volatile__("cli; hlt");
}

/* GUEST_SYNC(a, b, ...): up to 4 values (cast to uint64_t). */
#define GUEST_SYNC(...) GUEST_UCALL(UCALL_SYNC, 0, ##__VA_ARGS__)
#define GUEST_DONE()	GUEST_UCALL(UCALL_DONE, 0)
/* GUEST_FAIL("what", values...): fail the test here. */
#define GUEST_FAIL(text, ...)                                        \
	do {                                                         \
		GUEST_UCALL(UCALL_ASSERT_FAIL, text, ##__VA_ARGS__); \
		guest_halt_forever();                                \
	} while (0)
#define GUEST_ASSERT(cond)                 \
	do {                               \
		if (!(cond))               \
			GUEST_FAIL(#cond); \
	} while (0)
/* Fails with both values as args[0] and args[1]. */
#define GUEST_ASSERT_EQ(a, b)                                    \
	do {                                                     \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b); \
		if (a_ != b_)                                    \
			GUEST_FAIL(#a " == " #b, a_, b_);        \
	} while (0)
#define GUEST_ASSERT_NE(a, b)                                    \
	do {                                                     \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b); \
		if (a_ == b_)                                    \
			GUEST_FAIL(#a " != " #b, a_, b_);        \
	} while (0)
#endif /* EMBER_GUEST */
#endif /* !__ASSEMBLER__ */
#endif /* EMBER_TEST_UCALL_H */
