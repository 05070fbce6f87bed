/* tests/lib/runner.c - the test runner: forks one child per test, with a timeout. */
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 1024
#define EXIT_SKIP 77

struct test {
	const char *name;
	const char *file;
	test_fn fn;
	unsigned flags;
	unsigned timeout_s;
};

static struct test tests[MAX_TESTS];
static int ntests;
static bool failed;	    /* in the child: some check failed */
static const char *current; /* in the child: the running test */

void test_register(const char *name, const char *file, test_fn fn, unsigned flags,
		   unsigned timeout_s)
{
	if (ntests >= MAX_TESTS) {
		fprintf(stderr, "runner: more than %d tests\n", MAX_TESTS);
		abort();
	}
	tests[ntests++] = (struct test){name, file, fn, flags, timeout_s};
}

void test_end_now(void)
{
	fflush(stdout);
	exit(failed ? 1 : 0);
}

void test_fail_at(const char *file, int line, bool fatal, const char *fmt, ...)
{
	va_list ap;
	failed = true;
	printf("FAIL %s: %s:%d: ", current ? current : "?", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (fatal)
		test_end_now();
}

void test_skip(const char *fmt, ...)
{
	va_list ap;
	printf("SKIP %s: ", current ? current : "?");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(failed ? 1 : EXIT_SKIP);
}

void test_log(const char *fmt, ...)
{
	va_list ap;
	printf("     %s: ", current ? current : "?");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static const struct {
	int err;
	const char *name;
} errno_names[] = {
    {EPERM, "EPERM"},		{ENOENT, "ENOENT"},
    {EINTR, "EINTR"},		{EIO, "EIO"},
    {ENXIO, "ENXIO"},		{E2BIG, "E2BIG"},
    {EBADF, "EBADF"},		{EAGAIN, "EAGAIN"},
    {ENOMEM, "ENOMEM"},		{EACCES, "EACCES"},
    {EFAULT, "EFAULT"},		{EBUSY, "EBUSY"},
    {EEXIST, "EEXIST"},		{ENODEV, "ENODEV"},
    {EINVAL, "EINVAL"},		{ENOSPC, "ENOSPC"},
    {ERANGE, "ERANGE"},		{ENOSYS, "ENOSYS"},
    {ENOTTY, "ENOTTY"},		{EPROTO, "EPROTO"},
    {ESRCH, "ESRCH"},		{EPIPE, "EPIPE"},
    {EOPNOTSUPP, "EOPNOTSUPP"}, {ENOEXEC, "ENOEXEC"},
    {EMSGSIZE, "EMSGSIZE"},	{EOVERFLOW, "EOVERFLOW"},
    {ETIMEDOUT, "ETIMEDOUT"},	{ECANCELED, "ECANCELED"},
};

const char *test_errno_name(long long err)
{
	if (err >= 0)
		return "ok";
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].err == -err)
			return errno_names[i].name;
	return "errno";
}

static bool matches(const struct test *t, int argc, char **argv, int first)
{
	if (first >= argc)
		return true;
	for (int i = first; i < argc; i++)
		if (strstr(t->name, argv[i]) || strstr(t->file, argv[i]))
			return true;
	return false;
}

static void usage(const char *prog)
{
	printf("usage: %s [--list] [--no-fork] [--allow-no-kvm] [FILTER...]\n"
	       "Runs every registered test whose name or file contains a FILTER (all by\n"
	       "default), each in its own process with a timeout, and ends with the line\n"
	       "\"N passed, N failed\". Tests that need /dev/kvm fail without it unless\n"
	       "--allow-no-kvm is given (then they are reported as skipped).\n",
	       prog);
}

int main(int argc, char **argv)
{
	bool list = false, nofork = false, allow_no_kvm = false;
	int first = 1;
	for (; first < argc && argv[first][0] == '-'; first++) {
		if (!strcmp(argv[first], "--list"))
			list = true;
		else if (!strcmp(argv[first], "--no-fork"))
			nofork = true;
		else if (!strcmp(argv[first], "--allow-no-kvm"))
			allow_no_kvm = true;
		else if (!strcmp(argv[first], "--help") || !strcmp(argv[first], "-h")) {
			usage(argv[0]);
			return 0;
		} else {
			fprintf(stderr, "%s: unknown option %s\n", argv[0], argv[first]);
			usage(argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	bool have_kvm = access("/dev/kvm", R_OK | W_OK) == 0;
	int passed = 0, nfailed = 0, skipped = 0;
	for (int i = 0; i < ntests; i++) {
		struct test *t = &tests[i];
		if (!matches(t, argc, argv, first))
			continue;
		if (list) {
			printf("%s%s\n", t->name, (t->flags & TEST_NEEDS_KVM) ? " (kvm)" : "");
			continue;
		}
		if ((t->flags & TEST_NEEDS_KVM) && !have_kvm) {
			if (allow_no_kvm) {
				printf("SKIP %s: no usable /dev/kvm (--allow-no-kvm)\n", t->name);
				skipped++;
			} else {
				printf(
				    "FAIL %s: needs /dev/kvm; run it through tools/kvm-sandbox\n",
				    t->name);
				nfailed++;
			}
			continue;
		}
		current = t->name;
		failed = false;
		int status;
		fflush(stdout);
		if (nofork) {
			t->fn();
			status = failed ? 1 : 0;
		} else {
			pid_t pid = fork();
			if (pid < 0) {
				printf("FAIL %s: fork: %s\n", t->name, strerror(errno));
				nfailed++;
				continue;
			}
			if (pid == 0) {
				alarm(t->timeout_s);
				t->fn();
				test_end_now();
			}
			int ws;
			while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
				;
			if (WIFSIGNALED(ws)) {
				int sig = WTERMSIG(ws);
				if (sig == SIGALRM)
					printf("FAIL %s: timed out after %u s\n", t->name,
					       t->timeout_s);
				else
					printf("FAIL %s: killed by signal %d (%s)\n", t->name, sig,
					       strsignal(sig));
				nfailed++;
				continue;
			}
			status = WEXITSTATUS(ws);
		}
		if (status == 0) {
			printf("PASS %s\n", t->name);
			passed++;
		} else if (status == EXIT_SKIP) {
			skipped++;
		} else {
			if (status != 1)
				printf("FAIL %s: exit status %d\n", t->name, status);
			nfailed++;
		}
	}
	if (list)
		return 0;
	if (skipped)
		printf("%d passed, %d failed, %d skipped\n", passed, nfailed, skipped);
	else
		printf("%d passed, %d failed\n", passed, nfailed);
	return nfailed ? 1 : 0;
}
