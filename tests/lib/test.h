/* tests/lib/test.h - Ember's test framework: registration, checks, runner. */
#ifndef EMBER_TEST_H
#define EMBER_TEST_H

/*
 * A test is a function registered at load time with TEST(name) (or
 * KVM_TEST(name) for tests that need /dev/kvm: without it they FAIL, never
 * skip silently, unless the runner is told --allow-no-kvm, which only
 * reports them as skipped).
 *
 * The runner (tests/lib/runner.c) runs each test in a forked child with a
 * timeout, so a crash or hang is that test's failure, not the runner's. It
 * prints "PASS name", "FAIL name: file:line: message" or "SKIP name: why"
 * and ends with the plain line "N passed, N failed" (", N skipped" follows
 * when some were skipped).
 *
 *   CHECK(cond)            record a failure and go on
 *   REQUIRE(cond)          record a failure and end the test
 *   CHECK_EQ(a, b)         integer equality, prints both values (as long long)
 *   REQUIRE_EQ(a, b)
 *   CHECK_OK(expr)         expr returns >= 0 (a -errno contract); prints errno name
 *   REQUIRE_OK(expr)
 *   CHECK_ERR(expr, -E)    expr returns exactly -E
 *   TEST_FAIL(fmt, ...)    record a failure with a message and end the test
 *   TEST_SKIP(fmt, ...)    end the test as skipped (a missing capability)
 *   TEST_LOG(fmt, ...)     informational line, printed with the test's output
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef void (*test_fn)(void);

enum test_flags {
	TEST_NEEDS_KVM = 1 << 0,
};

void test_register(const char *name, const char *file, test_fn fn, unsigned flags,
		   unsigned timeout_s);
void test_fail_at(const char *file, int line, bool fatal, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void test_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void test_end_now(void) __attribute__((noreturn));
const char *test_errno_name(long long err);

#define TEST_REGISTER_(name, flags, timeout)                                        \
	static void test_fn_##name(void);                                           \
	__attribute__((constructor)) static void test_reg_##name(void)              \
	{                                                                           \
		test_register(#name, __FILE__, test_fn_##name, (flags), (timeout)); \
	}                                                                           \
	static void test_fn_##name(void)

#define TEST(name)     TEST_REGISTER_(name, 0, 60)
#define KVM_TEST(name) TEST_REGISTER_(name, TEST_NEEDS_KVM, 120)
/* with an explicit timeout in seconds */
#define KVM_TEST_T(name, secs) TEST_REGISTER_(name, TEST_NEEDS_KVM, (secs))

#define CHECK_(cond, fatal)                                                     \
	do {                                                                    \
		if (!(cond))                                                    \
			test_fail_at(__FILE__, __LINE__, (fatal), "%s", #cond); \
	} while (0)
#define CHECK(cond)   CHECK_(cond, false)
#define REQUIRE(cond) CHECK_(cond, true)

#define CHECK_EQ_(a, b, fatal)                                                               \
	do {                                                                                 \
		long long a_ = (long long)(a), b_ = (long long)(b);                          \
		if (a_ != b_)                                                                \
			test_fail_at(__FILE__, __LINE__, (fatal),                            \
				     "%s == %s: %lld (0x%llx) != %lld (0x%llx)", #a, #b, a_, \
				     (unsigned long long)a_, b_, (unsigned long long)b_);    \
	} while (0)
#define CHECK_EQ(a, b)	 CHECK_EQ_(a, b, false)
#define REQUIRE_EQ(a, b) CHECK_EQ_(a, b, true)

#define CHECK_OK_(expr, fatal)                                                                   \
	do {                                                                                     \
		long long r_ = (long long)(expr);                                                \
		if (r_ < 0)                                                                      \
			test_fail_at(__FILE__, __LINE__, (fatal), "%s failed: %lld (%s)", #expr, \
				     r_, test_errno_name(r_));                                   \
	} while (0)
#define CHECK_OK(expr)	 CHECK_OK_(expr, false)
#define REQUIRE_OK(expr) CHECK_OK_(expr, true)

#define CHECK_ERR(expr, want)                                                        \
	do {                                                                         \
		long long r_ = (long long)(expr), w_ = (long long)(want);            \
		if (r_ != w_)                                                        \
			test_fail_at(__FILE__, __LINE__, false,                      \
				     "%s: got %lld (%s), want %lld (%s)", #expr, r_, \
				     test_errno_name(r_), w_, test_errno_name(w_));  \
	} while (0)

#define CHECK_STR(a, b)                                                                           \
	do {                                                                                      \
		const char *a_ = (a), *b_ = (b);                                                  \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                                            \
			test_fail_at(__FILE__, __LINE__, false, "%s == %s: \"%s\" != \"%s\"", #a, \
				     #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                 \
	} while (0)

#define TEST_FAIL(...) test_fail_at(__FILE__, __LINE__, true, __VA_ARGS__)
#define TEST_SKIP(...) test_skip(__VA_ARGS__)
#define TEST_LOG(...)  test_log(__VA_ARGS__)

#endif /* EMBER_TEST_H */
