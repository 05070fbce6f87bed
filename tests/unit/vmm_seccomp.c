/* tests/unit/vmm_seccomp.c - the per-thread seccomp filters (vmm/seccomp.c): each kind's list, kill/log/off, the test hook. */
#include "../lib/test.h"

#include "../../vmm/seccomp.h"

#include <ember/hv.h>
#include <ember/vmm.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* What a child does once its filter is loaded; its exit status. */
typedef int (*child_fn)(void);

/* Runs fn in a child confined as kind in mode; returns the wait status.
 * Exit status 100: the filter did not load. */
static int confined(enum ember_thread_kind kind, enum vmm_seccomp_mode mode, child_fn fn)
{
	pid_t pid = fork();
	if (pid < 0)
		TEST_FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		if (vmm_seccomp_enter_mode(kind, mode) < 0)
			_exit(100);
		_exit(fn());
	}
	int st = 0;
	if (waitpid(pid, &st, 0) != pid)
		TEST_FAIL("waitpid: %s", strerror(errno));
	return st;
}

static bool killed_by_sigsys(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

static bool exited(int st, int code)
{
	return WIFEXITED(st) && WEXITSTATUS(st) == code;
}

/* sysinfo: in no kind's list (the test hook's syscall too) */
static int do_sysinfo(void)
{
	struct sysinfo si;
	return syscall(SYS_sysinfo, &si) == 0 ? 0 : 1;
}

/* no kind makes pipes (the VM's fds are made before its threads run) */
__attribute__((unused)) static int do_pipe2(void)
{
	int p[2];
	return syscall(SYS_pipe2, p, O_CLOEXEC) < 0 ? 1 : 0;
}

static int do_allowed_basics(void)
{
	void *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	memset(m, 1, 1 << 16);
	if (mprotect(m, 4096, PROT_READ) < 0 || munmap(m, 1 << 16) < 0)
		return 2;
	void *big = malloc(8 << 20); /* mmap under malloc */
	if (!big)
		return 3;
	free(big);
	struct timespec ts;
	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) < 0 || syscall(SYS_gettid) <= 0 ||
	    getpid() <= 0)
		return 4;
	if (write(STDERR_FILENO, "", 0) < 0)
		return 5;
	return 0;
}

static int do_mmap_exec(void)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return m == MAP_FAILED ? 1 : 0;
}

static int do_mprotect_exec(void)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	return mprotect(m, 4096, PROT_READ | PROT_EXEC) == 0 ? 0 : 2;
}

/* KVM_RUN on a bad fd: allowed, so the kernel answers EBADF */
static int do_kvm_run_ioctl(void)
{
	const unsigned long *reqs;
	if (ehv_kvm_ioctls(EHV_IOCTLS_VCPU_RUN, &reqs) < 1)
		return 1;
	return ioctl(-1, reqs[0], 0) < 0 && errno == EBADF ? 0 : 2;
}

/* a terminal ioctl no vCPU makes */
static int do_tcsets(void)
{
	return ioctl(-1, TCSETS, NULL) < 0 ? 0 : 1;
}

static int do_tcgets(void)
{
	struct termios t;
	return ioctl(-1, TCGETS, &t) < 0 ? 0 : 1;
}

static int do_socket_unix(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 1;
	close(s);
	return 0;
}

static int do_socket_inet(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	return s < 0 ? 0 : 0; /* killed before it returns */
}

static int do_mkdir(void)
{
	return syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent/ember-seccomp-test", 0700) < 0 ? 0 : 0;
}

static int do_execve(void)
{
	char *argv[] = {(char *)"/bin/true", NULL};
	execve("/bin/true", argv, environ);
	return 1;
}

__attribute__((unused)) static int do_clone_thread(void)
{
	/* a fork is a clone: no kind but the sanitizer's lists makes threads */
	pid_t p = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (p == 0)
		_exit(0);
	return 0;
}

static const enum ember_thread_kind all_kinds[] = {EMBER_THREAD_VCPU, EMBER_THREAD_IO,
						   EMBER_THREAD_CTL, EMBER_THREAD_MAIN,
						   EMBER_THREAD_PAGESERVER};
#define NKINDS (sizeof(all_kinds) / sizeof(all_kinds[0]))

TEST(vmm_seccomp_kill_stops_each_kind_at_a_syscall_outside_its_list)
{
	for (size_t i = 0; i < NKINDS; i++) {
		int st = confined(all_kinds[i], VMM_SECCOMP_KILL, do_sysinfo);
		if (!killed_by_sigsys(st))
			TEST_FAIL("%s: sysinfo under kill: status %#x, want SIGSYS",
				  vmm_seccomp_kind_name(all_kinds[i]), st);
		/* execve: no kind runs programs */
		st = confined(all_kinds[i], VMM_SECCOMP_KILL, do_execve);
		if (!killed_by_sigsys(st))
			TEST_FAIL("%s: execve under kill: status %#x, want SIGSYS",
				  vmm_seccomp_kind_name(all_kinds[i]), st);
	}
}

/* openat, refused: 0 if it failed with EACCES and the process lives on */
static int do_openat_refused(void)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/sys/vm/overcommit_memory",
			      O_RDONLY | O_CLOEXEC);
	return fd < 0 && errno == EACCES ? 0 : 1;
}

/* The kinds without openat (vCPU, main, page server) have it refused with
 * EACCES under kill, not killed: glibc's malloc opens a /proc file the first
 * time an arena shrinks, on whichever thread frees. The others open. */
TEST(vmm_seccomp_openat_refused_not_killed_where_not_listed)
{
#if !defined(__SANITIZE_ADDRESS__)
	static const enum ember_thread_kind refused[] = {EMBER_THREAD_VCPU, EMBER_THREAD_MAIN,
							 EMBER_THREAD_PAGESERVER};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int st = confined(refused[i], VMM_SECCOMP_KILL, do_openat_refused);
		if (!exited(st, 0))
			TEST_FAIL("%s: openat under kill: status %#x, want EACCES and exit 0",
				  vmm_seccomp_kind_name(refused[i]), st);
	}
#endif
	static const enum ember_thread_kind opens[] = {EMBER_THREAD_IO, EMBER_THREAD_CTL};
	for (size_t i = 0; i < sizeof(opens) / sizeof(opens[0]); i++) {
		int st = confined(opens[i], VMM_SECCOMP_KILL, do_openat_refused);
		if (!exited(st, 1))
			TEST_FAIL("%s: openat under kill: status %#x, want it to open",
				  vmm_seccomp_kind_name(opens[i]), st);
	}
}

TEST(vmm_seccomp_each_kind_keeps_its_basics)
{
	for (size_t i = 0; i < NKINDS; i++) {
		int st = confined(all_kinds[i], VMM_SECCOMP_KILL, do_allowed_basics);
		if (!exited(st, 0))
			TEST_FAIL("%s: memory, time and ids under kill: status %#x",
				  vmm_seccomp_kind_name(all_kinds[i]), st);
	}
}

TEST(vmm_seccomp_log_and_off_let_the_syscall_run)
{
	for (size_t i = 0; i < NKINDS; i++) {
		int st = confined(all_kinds[i], VMM_SECCOMP_LOG, do_sysinfo);
		if (!exited(st, 0))
			TEST_FAIL("%s: sysinfo under log: status %#x, want exit 0 (the call ran)",
				  vmm_seccomp_kind_name(all_kinds[i]), st);
		st = confined(all_kinds[i], VMM_SECCOMP_OFF, do_sysinfo);
		CHECK(exited(st, 0));
		st = confined(all_kinds[i], VMM_SECCOMP_OFF, do_execve);
		CHECK(exited(st, 0)); /* /bin/true ran */
	}
}

TEST(vmm_seccomp_no_executable_memory)
{
	for (size_t i = 0; i < NKINDS; i++) {
		CHECK(killed_by_sigsys(confined(all_kinds[i], VMM_SECCOMP_KILL, do_mmap_exec)));
		CHECK(killed_by_sigsys(confined(all_kinds[i], VMM_SECCOMP_KILL, do_mprotect_exec)));
	}
	/* without a filter the same calls work (the test itself is sound) */
	CHECK(exited(confined(EMBER_THREAD_VCPU, VMM_SECCOMP_OFF, do_mmap_exec), 0));
	CHECK(exited(confined(EMBER_THREAD_VCPU, VMM_SECCOMP_OFF, do_mprotect_exec), 0));
}

TEST(vmm_seccomp_vcpu_ioctls_by_number)
{
	CHECK(exited(confined(EMBER_THREAD_VCPU, VMM_SECCOMP_KILL, do_kvm_run_ioctl), 0));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_VCPU, VMM_SECCOMP_KILL, do_tcsets)));
	/* KVM_RUN is the vCPU's alone */
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_IO, VMM_SECCOMP_KILL, do_kvm_run_ioctl)));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_MAIN, VMM_SECCOMP_KILL, do_kvm_run_ioctl)));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_CTL, VMM_SECCOMP_KILL, do_kvm_run_ioctl)));
	/* the main thread restores the terminal: tcsetattr on a pty is TCSETS
	 * then TCGETS (e2e interactive_shell died by SIGSYS without it) */
	CHECK(exited(confined(EMBER_THREAD_MAIN, VMM_SECCOMP_KILL, do_tcsets), 0));
	CHECK(exited(confined(EMBER_THREAD_MAIN, VMM_SECCOMP_KILL, do_tcgets), 0));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_VCPU, VMM_SECCOMP_KILL, do_tcgets)));
}

TEST(vmm_seccomp_sockets_unix_only_and_not_on_vcpus)
{
	CHECK(exited(confined(EMBER_THREAD_CTL, VMM_SECCOMP_KILL, do_socket_unix), 0));
	CHECK(exited(confined(EMBER_THREAD_IO, VMM_SECCOMP_KILL, do_socket_unix), 0));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_CTL, VMM_SECCOMP_KILL, do_socket_inet)));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_IO, VMM_SECCOMP_KILL, do_socket_inet)));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_VCPU, VMM_SECCOMP_KILL, do_socket_unix)));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_MAIN, VMM_SECCOMP_KILL, do_socket_unix)));
	/* only the control thread makes directories (snapshots) */
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_VCPU, VMM_SECCOMP_KILL, do_mkdir)));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_IO, VMM_SECCOMP_KILL, do_mkdir)));
	CHECK(exited(confined(EMBER_THREAD_CTL, VMM_SECCOMP_KILL, do_mkdir), 0));
	/* the page server: no sockets, no files made, no threads */
	CHECK(
	    killed_by_sigsys(confined(EMBER_THREAD_PAGESERVER, VMM_SECCOMP_KILL, do_socket_unix)));
	CHECK(killed_by_sigsys(confined(EMBER_THREAD_PAGESERVER, VMM_SECCOMP_KILL, do_mkdir)));
#if !defined(__SANITIZE_ADDRESS__) /* the sanitizer's stop-the-world clones */
	CHECK(
	    killed_by_sigsys(confined(EMBER_THREAD_PAGESERVER, VMM_SECCOMP_KILL, do_clone_thread)));
	for (size_t i = 0; i < NKINDS; i++) {
		CHECK(killed_by_sigsys(confined(all_kinds[i], VMM_SECCOMP_KILL, do_clone_thread)));
		CHECK(killed_by_sigsys(confined(all_kinds[i], VMM_SECCOMP_KILL, do_pipe2)));
	}
#endif
}

/* the hook: EMBER_SECCOMP_TEST=KIND[,KIND...] makes those kinds' enter call
 * sysinfo. In a child: the hook set to hook, the mode set, a vCPU filter
 * first when vcpu_first (the hook is not for it), then the io thread's;
 * returns the child's wait status (exit 7: the io enter went through). */
static int io_enter_with_hook(const char *hook, enum vmm_seccomp_mode mode, bool vcpu_first)
{
	pid_t pid = fork();
	if (pid == 0) {
		setenv("EMBER_SECCOMP_TEST", hook, 1);
		vmm_seccomp_set_mode(mode);
		if (vcpu_first && vmm_seccomp_enter(EMBER_THREAD_VCPU) < 0)
			_exit(100);
		_exit(vmm_seccomp_enter(EMBER_THREAD_IO) == 0 ? 7 : 101);
	}
	int st = 0;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

TEST(vmm_seccomp_test_hook_fires_on_its_kind_only)
{
	CHECK(killed_by_sigsys(io_enter_with_hook("io", VMM_SECCOMP_KILL, true)));
	CHECK(exited(io_enter_with_hook("io", VMM_SECCOMP_LOG, true), 7));
	/* a list: each kind in it (here the io thread, second), none other */
	CHECK(killed_by_sigsys(io_enter_with_hook("main,io", VMM_SECCOMP_KILL, false)));
	CHECK(exited(io_enter_with_hook("main,ctl,iox", VMM_SECCOMP_KILL, false), 7));
}

/* a thread that installs the io filter between two looks at malloc's books */
struct enter_arg {
	int r;
	size_t arena_before, arena_after, used_before, used_after;
};

static void *enter_io_thread(void *arg)
{
	struct enter_arg *a = arg;
	struct mallinfo2 m = mallinfo2();
	a->arena_before = m.arena;
	a->used_before = m.uordblks;
	a->r = vmm_seccomp_enter_mode(EMBER_THREAD_IO, VMM_SECCOMP_LOG);
	m = mallinfo2();
	a->arena_after = m.arena;
	a->used_after = m.uordblks;
	return NULL;
}

TEST(vmm_seccomp_prebuilt_filters_install_without_allocating)
{
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		if (vmm_seccomp_program(EMBER_THREAD_IO, VMM_SECCOMP_LOG) ||
		    vmm_seccomp_program(EMBER_THREAD_IO, VMM_SECCOMP_KILL))
			_exit(101); /* nothing prepared yet in this process */
		if (vmm_seccomp_prepare(VMM_SECCOMP_LOG) < 0 ||
		    vmm_seccomp_prepare(VMM_SECCOMP_OFF) < 0)
			_exit(102);
		for (int k = 0; k < EMBER_THREAD_KINDS; k++) {
			const struct sock_fprog *p =
			    vmm_seccomp_program((enum ember_thread_kind)k, VMM_SECCOMP_LOG);
			if (!p || p->len < 4 || p->len > BPF_MAXINSNS)
				_exit(103);
			/* libseccomp's programs begin by loading the arch (offset 4) */
			if (p->filter[0].code != (BPF_LD | BPF_W | BPF_ABS) || p->filter[0].k != 4)
				_exit(104);
		}
		/* the vCPU's begins with KVM_RUN's fast path: allowed by the 7th
		 * instruction (the rest of its ioctls are libseccomp's, after) */
		const struct sock_fprog *vp =
		    vmm_seccomp_program(EMBER_THREAD_VCPU, VMM_SECCOMP_LOG);
		const unsigned long *run;
		if (ehv_kvm_ioctls(EHV_IOCTLS_VCPU_RUN, &run) < 1 ||
		    vp->filter[5].k != (uint32_t)run[0] ||
		    vp->filter[6].code != (BPF_RET | BPF_K) ||
		    vp->filter[6].k != SECCOMP_RET_ALLOW || vp->filter[7].k != 4)
			_exit(110);
		if (vmm_seccomp_program(EMBER_THREAD_IO, VMM_SECCOMP_KILL) ||
		    vmm_seccomp_program(EMBER_THREAD_KINDS, VMM_SECCOMP_LOG) ||
		    vmm_seccomp_program(EMBER_THREAD_IO, VMM_SECCOMP_OFF))
			_exit(105); /* only what was asked for */
		/* a new thread installs it: its malloc arena would appear in the
		 * books (mallinfo2 sums every arena) had it allocated */
		struct enter_arg a = {.r = -1};
		pthread_t t;
		if (pthread_create(&t, NULL, enter_io_thread, &a) || pthread_join(t, NULL))
			_exit(106);
		if (a.r != 0)
			_exit(107);
		if (a.arena_after != a.arena_before || a.used_after != a.used_before)
			_exit(108);
		/* and it is the filter: sysinfo is logged, not refused, in log mode */
		_exit(do_sysinfo() == 0 ? 7 : 109);
	}
	int st = 0;
	REQUIRE_EQ(waitpid(pid, &st, 0), pid);
	TEST_LOG("child status %#x (exit 7: all went through)", st);
	CHECK(exited(st, 7));
	CHECK_ERR(vmm_seccomp_prepare((enum vmm_seccomp_mode)7), -EINVAL);
}

/* The programs the build compiled in are what libseccomp makes of the lists
 * now, instruction for instruction, in both modes (in a child: preparing is
 * for the process's life). */
static int compare_compiled_in(void)
{
	if (!vmm_seccomp_compiled_in())
		return 1;
	if (vmm_seccomp_prepare(VMM_SECCOMP_KILL) || vmm_seccomp_prepare(VMM_SECCOMP_LOG))
		return 2;
	static const enum vmm_seccomp_mode modes[] = {VMM_SECCOMP_KILL, VMM_SECCOMP_LOG};
	for (int k = 0; k < EMBER_THREAD_KINDS; k++) {
		for (int m = 0; m < 2; m++) {
			const struct sock_fprog *have =
			    vmm_seccomp_program((enum ember_thread_kind)k, modes[m]);
			struct sock_fprog now;
			if (!have || vmm_seccomp_build((enum ember_thread_kind)k, modes[m], &now))
				return 3;
			bool same =
			    now.len == have->len &&
			    !memcmp(now.filter, have->filter, now.len * sizeof(now.filter[0]));
			free(now.filter);
			if (!same)
				return 10 + k * 2 + m;
		}
	}
	struct sock_fprog none;
	if (vmm_seccomp_build(EMBER_THREAD_KINDS, VMM_SECCOMP_LOG, &none) != -EINVAL ||
	    vmm_seccomp_build(EMBER_THREAD_IO, VMM_SECCOMP_OFF, &none) != -EINVAL)
		return 4;
	return 0;
}

TEST(vmm_seccomp_compiled_in_programs_equal_libseccomps)
{
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0)
		_exit(compare_compiled_in());
	int st;
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st));
	/* 1: not compiled in; 2: not prepared; 3: no program; 4: bad
	 * arguments taken; 10 + 2 * kind + mode: that program differs */
	CHECK_EQ(WEXITSTATUS(st), 0);
}

TEST(vmm_seccomp_describe_counts_and_names)
{
	char names[4096];
	int n[NKINDS];
	for (size_t i = 0; i < NKINDS; i++) {
		n[i] = vmm_seccomp_describe(all_kinds[i], names, sizeof(names));
		CHECK(n[i] > 10);
		CHECK(strstr(names, "futex") != NULL);
		CHECK(strstr(names, "mmap") != NULL);
		CHECK(strstr(names, "execve") == NULL);
		test_log("%s: %d syscalls: %s", vmm_seccomp_kind_name(all_kinds[i]), n[i], names);
	}
	CHECK(n[EMBER_THREAD_VCPU] < n[EMBER_THREAD_IO]);
	CHECK(n[EMBER_THREAD_VCPU] < n[EMBER_THREAD_CTL]);
	vmm_seccomp_describe(EMBER_THREAD_VCPU, names, sizeof(names));
	CHECK(strstr(names, "ioctl") != NULL);
	CHECK(strstr(names, "socket") == NULL);
	CHECK_ERR(vmm_seccomp_describe(EMBER_THREAD_KINDS, NULL, 0), -EINVAL);
}

TEST(vmm_seccomp_config_key)
{
	struct ember_config *cfg;
	struct ember_error err = {0};
	CHECK_OK(ember_config_new(&cfg));
	char v[16];
	CHECK(ember_config_get(cfg, "seccomp", v, sizeof(v)) >= 0);
	CHECK_STR(v, "kill");
	CHECK_OK(ember_config_set(cfg, "seccomp", "log", &err));
	CHECK(ember_config_get(cfg, "seccomp", v, sizeof(v)) >= 0);
	CHECK_STR(v, "log");
	CHECK_OK(ember_config_set(cfg, "seccomp", "off", &err));
	CHECK(ember_config_get(cfg, "seccomp", v, sizeof(v)) >= 0);
	CHECK_STR(v, "off");
	CHECK_ERR(ember_config_set(cfg, "seccomp", "trap", &err), -EINVAL);
	CHECK(strstr(err.msg, "kill, log or off") != NULL);
	char *argv[] = {(char *)"--seccomp", (char *)"kill", (char *)"--seccomp=log"};
	unsigned flags;
	CHECK_OK(ember_config_parse_args(cfg, 3, argv, &flags, &err));
	CHECK(ember_config_get(cfg, "seccomp", v, sizeof(v)) >= 0);
	CHECK_STR(v, "log");
	ember_config_free(cfg);
	enum vmm_seccomp_mode m;
	CHECK_ERR(vmm_seccomp_parse_mode(NULL, &m), -EINVAL);
	CHECK_ERR(vmm_seccomp_enter_mode(EMBER_THREAD_KINDS, VMM_SECCOMP_OFF), -EINVAL);
}
