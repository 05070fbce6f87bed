/* cli/jail.c - `ember run --jail DIR`: namespaces, pivot_root into DIR, device nodes, limits, an unprivileged uid. */
#include "jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(char *err, size_t len, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t len, int e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, len, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < len && e > 0)
		snprintf(err + n, len - (size_t)n, ": %s", strerror(e));
	return -(e > 0 ? e : EINVAL);
}

/* ------------------------------------------------------------ options */

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	unsigned long long x = strtoull(s, &end, 10);
	if (*end || errno)
		return -EINVAL;
	*v = x;
	return 0;
}

static int set_str(char *dst, size_t n, const char *v)
{
	if (!v || strlen(v) >= n || strchr(v, '\n'))
		return -EINVAL;
	strcpy(dst, v);
	return 0;
}

/* cgroup v2 values, checked here so that a bad one is refused before
 * anything is made. memory.max: "max" or bytes with an optional K, M, G
 * or T suffix (*bytes: the limit, UINT64_MAX for max). */
static int parse_mem_max(const char *s, uint64_t *bytes)
{
	if (!strcmp(s, "max")) {
		*bytes = UINT64_MAX;
		return 0;
	}
	char *end;
	errno = 0;
	if (!(*s >= '0' && *s <= '9'))
		return -EINVAL;
	unsigned long long x = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (*end) {
		const char *sfx = strchr("KMGT", *end >= 'a' ? *end - 32 : *end);
		if (!sfx || end[1])
			return -EINVAL;
		shift = 10 * (unsigned)(sfx - "KMGT" + 1);
	}
	if (errno || x == 0 || x > (UINT64_MAX >> shift))
		return -EINVAL;
	*bytes = (uint64_t)x << shift;
	return 0;
}

/* cpu.max: "QUOTA [PERIOD]" in microseconds, QUOTA "max" or at least
 * 1000, PERIOD 1000 to 1000000 (the kernel's bounds). */
static int check_cpu_max(const char *s)
{
	char quota[24];
	const char *sp = strchr(s, ' ');
	size_t n = sp ? (size_t)(sp - s) : strlen(s);
	uint64_t q, p = 100000;
	if (n == 0 || n >= sizeof(quota))
		return -EINVAL;
	memcpy(quota, s, n);
	quota[n] = 0;
	if (strcmp(quota, "max") && (parse_u64(quota, &q) < 0 || q < 1000))
		return -EINVAL;
	if (sp && (parse_u64(sp + 1, &p) < 0 || p < 1000 || p > 1000000))
		return -EINVAL;
	return 0;
}

/* pids.max: "max" or a number of tasks (threads count), at least 1. */
static int check_pids_max(const char *s)
{
	uint64_t v;
	if (!strcmp(s, "max"))
		return 0;
	return parse_u64(s, &v) < 0 || v == 0 || v > 4194304 ? -EINVAL : 0;
}

int jail_parse(int *argc, char **argv, struct jail_opts *o, char *err, size_t len)
{
	static const char *const names[] = {
	    "jail",	  "jail-uid",	 "jail-gid",	    "jail-net",	    "jail-nofile",
	    "jail-fsize", "jail-cgroup", "jail-memory-max", "jail-cpu-max", "jail-pids-max",
	};
	memset(o, 0, sizeof(*o));
	o->nofile = 4096;
	int out = 0;
	for (int i = 0; i < *argc; i++) {
		const char *a = argv[i];
		int k = -1;
		const char *val = NULL;
		for (int j = 0; a[0] == '-' && a[1] == '-' && j < 10; j++) {
			size_t n = strlen(names[j]);
			if (!strncmp(a + 2, names[j], n) && (a[2 + n] == 0 || a[2 + n] == '=')) {
				k = j;
				val = a[2 + n] == '=' ? a + 3 + n : NULL;
			}
		}
		if (k < 0) {
			argv[out++] = argv[i];
			continue;
		}
		if (!val) {
			if (i + 1 >= *argc)
				return fail(err, len, 0, "--%s needs a value", names[k]);
			val = argv[++i];
		}
		uint64_t v = 0;
		int r = 0;
		switch (k) {
		case 0:
			if (val[0] != '/')
				return fail(err, len, 0, "--jail: '%s' is not an absolute path",
					    val);
			o->dir = val;
			break;
		case 1:
		case 2:
			r = parse_u64(val, &v);
			if (r < 0 || v == 0 || v >= 0xffffffffu)
				return fail(err, len, 0, "--%s: '%s' is not a uid/gid other than 0",
					    names[k], val);
			if (k == 1)
				o->uid = (uid_t)v, o->have_uid = true;
			else
				o->gid = (gid_t)v, o->have_gid = true;
			break;
		case 3:
			if (strcmp(val, "host") && strcmp(val, "new"))
				return fail(err, len, 0, "--jail-net: '%s' is not new or host",
					    val);
			o->keep_net = !strcmp(val, "host");
			break;
		case 4:
			if (parse_u64(val, &o->nofile) < 0 || o->nofile < 64)
				return fail(err, len, 0,
					    "--jail-nofile: '%s' is not a number >= 64", val);
			break;
		case 5:
			if (parse_u64(val, &o->fsize) < 0)
				return fail(err, len, 0,
					    "--jail-fsize: '%s' is not a size in bytes", val);
			break;
		case 6:
			if (set_str(o->cgroup, sizeof(o->cgroup), val) < 0 || !val[0] ||
			    strchr(val, '/') || val[0] == '.')
				return fail(err, len, 0, "--jail-cgroup: '%s' is not a cgroup name",
					    val);
			break;
		case 7:
			r = set_str(o->mem_max, sizeof(o->mem_max), val);
			if (r == 0 && parse_mem_max(val, &o->mem_max_bytes) < 0)
				return fail(err, len, 0,
					    "--jail-memory-max: '%s' is not a size (bytes, or with "
					    "a K, M, G or T suffix) or max",
					    val);
			break;
		case 8:
			r = set_str(o->cpu_max, sizeof(o->cpu_max), val);
			if (r == 0 && check_cpu_max(val) < 0)
				return fail(err, len, 0,
					    "--jail-cpu-max: '%s' is not \"QUOTA [PERIOD]\" "
					    "(microseconds: QUOTA max or >= 1000, PERIOD 1000 "
					    "to 1000000)",
					    val);
			break;
		case 9:
			r = set_str(o->pids_max, sizeof(o->pids_max), val);
			if (r == 0 && check_pids_max(val) < 0)
				return fail(err, len, 0,
					    "--jail-pids-max: '%s' is not a number of tasks "
					    "(>= 1) or max",
					    val);
			break;
		}
		if (r < 0)
			return fail(err, len, 0, "--%s: '%s' is too long", names[k], val);
	}
	*argc = out;
	for (int i = 0; o->dir && i < out; i++) { /* the taps passed in by fd stay open */
		const char *v = !strcmp(argv[i], "--net") && i + 1 < out ? argv[i + 1]
				: !strncmp(argv[i], "--net=", 6)	 ? argv[i] + 6
									 : NULL;
		for (const char *p = v; p && *p;) {
			size_t n = strcspn(p, ",");
			if (n > 3 && !strncmp(p, "fd=", 3)) {
				char num[16];
				uint64_t fd;
				if (n - 3 >= sizeof(num))
					return fail(err, len, 0, "--net %s: the fd is not a number",
						    v);
				memcpy(num, p + 3, n - 3);
				num[n - 3] = 0;
				if (parse_u64(num, &fd) < 0 || fd > INT32_MAX)
					return fail(err, len, 0, "--net %s: '%s' is not an fd", v,
						    num);
				if (o->nkeep == JAIL_MAX_KEPT_FDS)
					return fail(err, len, 0,
						    "--jail: more than %d taps passed by fd",
						    JAIL_MAX_KEPT_FDS);
				o->keep_fds[o->nkeep++] = (int)fd;
			}
			p += n + (p[n] == ',');
		}
	}
	if (!o->dir && (o->have_uid || o->have_gid || o->cgroup[0]))
		return fail(err, len, 0, "--jail-* options need --jail DIR");
	if ((o->mem_max[0] || o->cpu_max[0] || o->pids_max[0]) && !o->cgroup[0])
		return fail(err, len, 0,
			    "--jail-memory-max, -cpu-max, -pids-max need --jail-cgroup");
	return 0;
}

/* ------------------------------------------------------------ steps */

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, strlen(s));
	int e = n < 0 ? errno : 0;
	close(fd);
	return n < 0 ? -e : 0;
}

#define CGROUP_ROOT "/sys/fs/cgroup"

/* Whether the space-separated list in the file at path names word. */
static bool file_lists(const char *path, const char *word)
{
	char buf[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	size_t wl = strlen(word);
	for (char *p = buf; (p = strstr(p, word)) != NULL; p += wl)
		if ((p == buf || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\n' || !p[wl]))
			return true;
	return false;
}

/* rmdir the jail's cgroup NAME, relative to an fd of /sys/fs/cgroup opened
 * before the namespaces (the parent shares the child's mount namespace:
 * after a pivot_root its root is the jail's too); a just-reaped VMM's
 * cgroup can stay populated for a moment, so EBUSY is retried for up to
 * about a second. */
static int remove_cgroup(int rootfd, const char *name)
{
	for (int i = 0; i < 100; i++) {
		if (unlinkat(rootfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		usleep(10000);
	}
	return -errno;
}

/* In the parent: a cgroup v2 of its own, /sys/fs/cgroup/NAME, made anew
 * (a stale empty one from an earlier run is removed first; one with tasks
 * in it is refused), with the controllers its limits need enabled in the
 * root and the limits written. The jailed child moves itself in
 * (join_cgroup); the parent stays out, so that it can remove the cgroup
 * once the child ended. */
static int make_cgroup(const struct jail_opts *o, char *path, size_t pathlen, char *err, size_t len)
{
	char file[320];
	snprintf(path, pathlen, CGROUP_ROOT "/%s", o->cgroup);
	struct statfs fs;
	if (statfs(CGROUP_ROOT, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
		return fail(err, len, 0, "jail: " CGROUP_ROOT " is not a cgroup v2 hierarchy");
	const struct {
		const char *ctl, *name, *value;
	} lims[] = {{"memory", "memory.max", o->mem_max},
		    {"cpu", "cpu.max", o->cpu_max},
		    {"pids", "pids.max", o->pids_max}};
	for (size_t i = 0; i < 3; i++) {
		if (!lims[i].value[0] ||
		    file_lists(CGROUP_ROOT "/cgroup.subtree_control", lims[i].ctl))
			continue;
		if (!file_lists(CGROUP_ROOT "/cgroup.controllers", lims[i].ctl))
			return fail(err, len, 0,
				    "jail: --jail-%s-max: this kernel's cgroup v2 has no %s "
				    "controller (" CGROUP_ROOT "/cgroup.controllers)",
				    lims[i].ctl, lims[i].ctl);
		char plus[16];
		snprintf(plus, sizeof(plus), "+%s", lims[i].ctl);
		int r = write_file(CGROUP_ROOT "/cgroup.subtree_control", plus);
		if (r < 0)
			return fail(err, len, -r,
				    "jail: cannot enable the %s controller in " CGROUP_ROOT
				    "/cgroup.subtree_control",
				    lims[i].ctl);
	}
	if (rmdir(path) < 0 && errno != ENOENT)
		return fail(err, len, errno,
			    errno == EBUSY ? "jail: the cgroup %s is in use (another VM's?)"
					   : "jail: cannot remove the stale cgroup %s",
			    path);
	if (mkdir(path, 0755) < 0)
		return fail(err, len, errno, "jail: cannot make the cgroup %s", path);
	for (size_t i = 0; i < 3; i++) {
		if (!lims[i].value[0])
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, lims[i].name);
		int r = write_file(file, lims[i].value);
		if (r < 0) {
			fail(err, len, -r, "jail: cannot set %s to '%s'", file, lims[i].value);
			(void)rmdir(path);
			return r;
		}
	}
	return 0;
}

/* In the child, first thing: into the cgroup (cgroup.procs "0": itself). */
static int join_cgroup(const char *path, char *err, size_t len)
{
	char file[320];
	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	int r = write_file(file, "0");
	if (r < 0)
		return fail(err, len, -r, "jail: cannot move into the cgroup %s", path);
	return 0;
}

/* A device node like the host's at dst (under the jail's fresh /dev). */
static int make_node(const char *host, const char *dst, mode_t mode, const struct jail_opts *o,
		     bool required, char *err, size_t len)
{
	struct stat st;
	if (stat(host, &st) < 0 || !S_ISCHR(st.st_mode)) {
		if (!required)
			return 0;
		return fail(err, len, errno ? errno : ENODEV, "jail: %s", host);
	}
	if (mknod(dst, S_IFCHR | mode, st.st_rdev) < 0)
		return fail(err, len, errno, "jail: mknod %s", dst);
	if (chmod(dst, mode) < 0 ||
	    chown(dst, o->have_uid ? o->uid : 0, o->have_gid ? o->gid : 0) < 0)
		return fail(err, len, errno, "jail: chown %s", dst);
	return 0;
}

static bool kept(const struct jail_opts *o, long fd)
{
	for (unsigned i = 0; i < o->nkeep; i++)
		if (o->keep_fds[i] == fd)
			return true;
	return false;
}

/* Every fd from 3 up but the kept ones (the taps passed in). */
static void close_stray_fds(const struct jail_opts *o)
{
	unsigned from = 3;
#ifdef SYS_close_range
	for (;;) { /* the gaps between kept fds, lowest first; on a failure, one by one */
		unsigned next = ~0u;
		for (unsigned i = 0; i < o->nkeep; i++)
			if ((unsigned)o->keep_fds[i] >= from && (unsigned)o->keep_fds[i] < next)
				next = (unsigned)o->keep_fds[i];
		if (next > from && syscall(SYS_close_range, from, next - 1, 0u) < 0)
			break;
		if (next == ~0u)
			return;
		from = next + 1;
	}
#endif
	struct rlimit rl;
	long max =
	    getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (long)rl.rlim_cur : 65536;
	for (long fd = from; fd < max; fd++)
		if (!kept(o, fd))
			close((int)fd);
}

/* In the child: the new root, its /dev, the limits and the drop. */
static int confine(const struct jail_opts *o, char *err, size_t len)
{
	char path[4200];
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(err, len, errno, "jail: cannot make the mounts private");
	if (mount(o->dir, o->dir, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(err, len, errno, "jail: cannot bind-mount %s", o->dir);
	snprintf(path, sizeof(path), "%s/dev", o->dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return fail(err, len, errno, "jail: mkdir %s", path);
	if (mount("ember-dev", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		return fail(err, len, errno, "jail: cannot mount a tmpfs on %s", path);
	snprintf(path, sizeof(path), "%s/dev/net", o->dir);
	if (mkdir(path, 0755) < 0)
		return fail(err, len, errno, "jail: mkdir %s", path);
	static const struct {
		const char *host, *name;
		mode_t mode;
		bool required;
	} nodes[] = {{"/dev/kvm", "kvm", 0600, true},
		     {"/dev/net/tun", "net/tun", 0600, false},
		     {"/dev/urandom", "urandom", 0666, false},
		     {"/dev/null", "null", 0666, false}};
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		snprintf(path, sizeof(path), "%s/dev/%s", o->dir, nodes[i].name);
		int r =
		    make_node(nodes[i].host, path, nodes[i].mode, o, nodes[i].required, err, len);
		if (r < 0)
			return r;
	}
	if (chdir(o->dir) < 0)
		return fail(err, len, errno, "jail: chdir %s", o->dir);
	/* the new root over the old one, then the old one detached. Where the
	 * current root is itself a chroot (not a mount point: pivot_root says
	 * EINVAL, e.g. in the KVM sandbox), a chroot into the bind mount; with
	 * the uid dropped and no_new_privs there is no way back out of it. */
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			return fail(err, len, errno, "jail: cannot detach the old root");
	} else if (errno != EINVAL || chroot(".") < 0) {
		return fail(err, len, errno, "jail: pivot_root into %s", o->dir);
	}
	if (chdir("/") < 0)
		return fail(err, len, errno, "jail: chdir /");
	if (sethostname("ember", 5) < 0)
		return fail(err, len, errno, "jail: sethostname");
	close_stray_fds(o);
	struct rlimit nofile = {o->nofile, o->nofile};
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
		return fail(err, len, errno, "jail: RLIMIT_NOFILE %" PRIu64, o->nofile);
	if (o->fsize) {
		struct rlimit fs = {o->fsize, o->fsize};
		if (setrlimit(RLIMIT_FSIZE, &fs) < 0)
			return fail(err, len, errno, "jail: RLIMIT_FSIZE %" PRIu64, o->fsize);
	}
	if (o->have_gid || o->have_uid) {
		if (setgroups(0, NULL) < 0)
			return fail(err, len, errno, "jail: setgroups");
	}
	if (o->have_gid && setresgid(o->gid, o->gid, o->gid) < 0)
		return fail(err, len, errno, "jail: setresgid %u", (unsigned)o->gid);
	if (o->have_uid && setresuid(o->uid, o->uid, o->uid) < 0)
		return fail(err, len, errno, "jail: setresuid %u", (unsigned)o->uid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, len, errno, "jail: no_new_privs");
	/* killed with the parent (a watchdog's SIGKILL reaches only the parent);
	 * after the drop, which clears it */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail(err, len, errno, "jail: PR_SET_PDEATHSIG");
	return 0;
}

/* ------------------------------------------------------------ the parent */

static volatile pid_t child_pid;

static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* The parent's end: the child's exit status, after the cgroup (if any) is
 * removed; a child killed by a signal (SIGSYS from a seccomp filter...)
 * kills the parent by the same signal. */
static int wait_child(pid_t pid, const struct jail_opts *o, int cgfd, char *err, size_t len)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	int st = 0;
	int w;
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (cgfd >= 0) {
		int r = remove_cgroup(cgfd, o->cgroup);
		if (r < 0)
			fail(err, len, -r, "jail: cannot remove the cgroup %s/%s", CGROUP_ROOT,
			     o->cgroup);
		close(cgfd);
	}
	if (w < 0)
		return 1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	int sig = WTERMSIG(st);
	signal(sig, SIG_DFL);
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core); /* the child's core is the one that matters */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if (err[0]) /* the message would be lost with the parent */
		fprintf(stderr, "ember: %s\n", err);
	raise(sig);
	return 128 + sig;
}

int jail_enter(const struct jail_opts *o, bool *parent, char *err, size_t len)
{
	*parent = false;
	err[0] = 0;
	char cgroup[256] = "";
	int cgfd = -1;
	if (o->cgroup[0]) {
		int r = make_cgroup(o, cgroup, sizeof(cgroup), err, len);
		if (r < 0)
			return r;
		cgfd = open(CGROUP_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgfd < 0) {
			r = fail(err, len, errno, "jail: cannot open " CGROUP_ROOT);
			(void)rmdir(cgroup);
			return r;
		}
	}
	int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
	if (!o->keep_net)
		flags |= CLONE_NEWNET;
	int r = 0;
	if (unshare(flags) < 0)
		r = fail(err, len, errno, "jail: cannot make new namespaces (root needed)");
	fflush(NULL);
	pid_t pid = r < 0 ? 0 : fork();
	if (r == 0 && pid < 0)
		r = fail(err, len, errno, "jail: fork");
	if (r < 0) {
		if (cgfd >= 0) {
			(void)remove_cgroup(cgfd, o->cgroup);
			close(cgfd);
		}
		return r;
	}
	if (pid > 0) {
		child_pid = pid;
		*parent = true;
		return wait_child(pid, o, cgfd, err, len);
	}
	if (cgfd >= 0) { /* (closed with the other stray fds by confine) */
		r = join_cgroup(cgroup, err, len);
		if (r < 0)
			return r;
	}
	return confine(o, err, len);
}
