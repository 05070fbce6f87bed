/* vmm/seccomp.c - per-thread seccomp filters: an allow-list per thread kind, built with libseccomp. */
#include "seccomp.h"

#include <ember/hv.h>

#include <errno.h>
#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <seccomp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/userfaultfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <termios.h>
#include <unistd.h>

/* ------------------------------------------------------------ the lists */

/* Syscalls allowed with any arguments; END ends a list. */
#define END (-1)

/* What every thread of the VMM does: memory (never executable: mmap and
 * mprotect are checked apart), locks, signals (a kick, a re-raised fatal
 * one), time, its log lines (write), thread exit. The lists below are what
 * `strace -f` saw each kind do after its filter was loaded in the e2e and
 * KVM suites (tests/e2e/run.sh), plus what the code does on paths those
 * runs do not take (commented). */
static const int sys_common[] = {
    SCMP_SYS(write),
    SCMP_SYS(futex),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(gettid),
    SCMP_SYS(getpid),
    SCMP_SYS(tgkill),
    SCMP_SYS(madvise),
    SCMP_SYS(munmap),
    SCMP_SYS(brk),
    SCMP_SYS(mremap),
    /* sleeping grants nothing (the mock backend's vCPUs sleep in run) */
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    END,
};

/* A vCPU thread: KVM_RUN, the vCPU's state and the VM's IRQ lines (by
 * ioctl number, below); writes to eventfds (write); a device's register
 * write may re-arm the loop's timer (a rate limit) or fd (a tap). */
static const int sys_vcpu[] = {
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(timerfd_settime),
    END,
};

/* The I/O thread: the loop (epoll, eventfd reads, timerfds), disks
 * (io_uring_enter; the sync engine's positioned vectored I/O and
 * fdatasync; discard and write-zeroes through fallocate), the tap
 * (readv/writev), vsock's host end (AF_UNIX sockets, checked apart:
 * connect, accept4, readv, sendmsg, send, shutdown, getsockopt for a
 * connect's result), the balloon (madvise), the console (poll while
 * draining), virtio-rng (getrandom). */
static const int sys_io[] = {
    SCMP_SYS(read),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(close),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(poll),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(fdatasync),
    SCMP_SYS(fsync),
    SCMP_SYS(fallocate),
    SCMP_SYS(io_uring_enter),
    SCMP_SYS(connect),
    SCMP_SYS(accept4),
    SCMP_SYS(shutdown),
    SCMP_SYS(sendto),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvfrom),
    SCMP_SYS(getsockopt),
    SCMP_SYS(fcntl),
    SCMP_SYS(getrandom),
    /* a machine reset (ember_vm_reset, --reboot restart) runs on this
     * thread and loads the kernel, initrd and built-in initramfs again:
     * their files (and the kernel cache's, the guest kernel's modules for
     * --root) are opened, read, mapped read-only, and a decompressed
     * kernel may be stored in the cache */
    SCMP_SYS(openat),
    SCMP_SYS(open),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(statx),
    SCMP_SYS(lseek),
    SCMP_SYS(getdents64),
    SCMP_SYS(readlink),
    SCMP_SYS(uname),
    SCMP_SYS(mkdir),
    SCMP_SYS(rename),
    SCMP_SYS(unlink),
    SCMP_SYS(ftruncate),
    SCMP_SYS(geteuid),	 /* the kernel cache (vmm/boot/kcache.c): the user's */
    SCMP_SYS(getuid),	 /* directory, its entries touched (utimensat), stored */
    SCMP_SYS(utimensat), /* (mkostemp, fchmod, rename) and pruned (unlinkat) */
    SCMP_SYS(fchmod),
    SCMP_SYS(chmod),
    SCMP_SYS(unlinkat),
    SCMP_SYS(access),
    SCMP_SYS(time),
    END,
};

/* The control thread (ctl/, the control plane): its socket (AF_UNIX,
 * checked apart) and clients, and the VM operations it calls:
 * pause/resume (futex, tgkill kicks), snapshots (files in a directory the
 * client names), a disk resize (fstat). */
static const int sys_ctl[] = {
    SCMP_SYS(read),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(close),
    SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(eventfd2),
    SCMP_SYS(bind),
    SCMP_SYS(listen),
    SCMP_SYS(accept4),
    SCMP_SYS(connect),
    SCMP_SYS(shutdown),
    SCMP_SYS(sendto),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvfrom),
    SCMP_SYS(recvmsg),
    SCMP_SYS(getsockopt),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockname),
    SCMP_SYS(fcntl),
    SCMP_SYS(openat),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(lseek),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(mkdirat),
    SCMP_SYS(mkdir),
    SCMP_SYS(rmdir),
    SCMP_SYS(renameat),
    SCMP_SYS(rename),
    SCMP_SYS(unlinkat),
    SCMP_SYS(unlink),
    SCMP_SYS(getdents64), /* a snapshot directory's leftovers */
    SCMP_SYS(readlink),	  /* realpath */
    SCMP_SYS(statx),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_create), /* a NIC hot-added through the socket: its rate limit timer */
    SCMP_SYS(getrandom),
    SCMP_SYS(sched_setscheduler), /* make-rt: the vCPU threads' SCHED_FIFO */
    /* swap (vmm/pageserver.c, whose thread the VM's start made): the
     * resident pages, the swap file; the uffd's ioctls below */
    SCMP_SYS(mincore),
    END,
};

/* The page server's thread: waits for faults (poll on the userfaultfd and
 * its stop eventfd), reads them, reads pages from its source files and
 * puts them in place (ioctl UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_WAKE). */
static const int sys_pageserver[] = {
    SCMP_SYS(read), SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(pread64), SCMP_SYS(mincore), END,
};

/* The main thread once the VM runs: it waits (futex), takes stop signals
 * (rt_sigaction, tgkill to re-raise), prints the result (write; stdio's
 * first use fstat()s stdout), restores the terminal (ioctl TCSETS, TCGETS) and
 * tears the VM down: joins the threads, takes the loop's fds off its epoll
 * and closes them, unmaps, removes vsock's socket file (unlink after a
 * stat). */
static const int sys_main[] = {
    SCMP_SYS(close),	  SCMP_SYS(epoll_ctl), SCMP_SYS(rt_sigaction), SCMP_SYS(fstat),
    SCMP_SYS(newfstatat), SCMP_SYS(unlink),    SCMP_SYS(shutdown),     END,
};

/* Under AddressSanitizer (MODE=asan) every thread may also need what the
 * sanitizer's runtime does for a report or the leak check at exit: read
 * /proc/self/maps, stop the world (a tracer thread: clone, ptrace, wait),
 * an alternate signal stack. */
static const int sys_sanitizer[] = {
#if defined(__SANITIZE_ADDRESS__)
    SCMP_SYS(openat),
    SCMP_SYS(open),
    SCMP_SYS(readlink),
    SCMP_SYS(getdents64),
    SCMP_SYS(clone),
    SCMP_SYS(ptrace),
    SCMP_SYS(prctl),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(wait4),
    SCMP_SYS(waitid),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(lseek),
    SCMP_SYS(getppid),
    SCMP_SYS(kill),
    SCMP_SYS(uname),
    SCMP_SYS(pipe2),
    SCMP_SYS(dup2),
    SCMP_SYS(getrlimit),
    SCMP_SYS(prlimit64),
    SCMP_SYS(sched_getparam),
    SCMP_SYS(sched_yield),
    SCMP_SYS(read),
    SCMP_SYS(close),
#endif
    END,
};

/* ioctl requests beyond the hypervisor's (compared on their low 32 bits,
 * the kernel's unsigned int cmd). */
static const unsigned long ioctl_vcpu[] = {
    TUNSETOFFLOAD, /* virtio-net's offloads, set when the driver writes its features */
    0};
static const unsigned long ioctl_io[] = {TUNSETOFFLOAD, BLKDISCARD, BLKZEROOUT, 0};
/* a disk's size; a NIC hotplugged through the socket: its tap */
static const unsigned long ioctl_ctl[] = {
    BLKGETSIZE64, TUNSETIFF, TUNGETIFF, TUNSETVNETHDRSZ, TUNSETOFFLOAD,
    /* swap: guest memory registered, fed and unregistered on this thread */
    UFFDIO_REGISTER, UFFDIO_UNREGISTER, UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_WAKE, 0};
/* tcsetattr checks its TCSETS with a TCGETS (a pty ignores bad c_cflag
 * bits); SIGWINCH's handler asks the terminal's size */
static const unsigned long ioctl_pageserver[] = {UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_WAKE, 0};
static const unsigned long ioctl_main[] = {TCSETS, TCGETS, TIOCGWINSZ,
					   UFFDIO_UNREGISTER /* a page server's end */, 0};

/* The hypervisor's groups (ehv_kvm_ioctls) a kind may use, as bits. */
#define G(g) (1u << (g))

struct kind_desc {
	const char *name;
	const int *sys;
	const unsigned long *ioctls; /* 0-terminated */
	unsigned hv_groups;	     /* G(EHV_IOCTLS_*) */
	bool unix_sockets;	     /* socket(AF_UNIX, ...) */
};

static const struct kind_desc kinds[EMBER_THREAD_KINDS] = {
    /* a vCPU runs, has its state read and written (runner calls: crash
     * registers, snapshots), and its devices raise interrupts */
    [EMBER_THREAD_VCPU] = {"vcpu", sys_vcpu, ioctl_vcpu,
			   G(EHV_IOCTLS_VCPU_RUN) | G(EHV_IOCTLS_VCPU_STATE) | G(EHV_IOCTLS_VM_IRQ),
			   false},
    /* a machine reset (on this thread) sets the in-kernel chips and PIT
     * back to their boot state, and the board's load sets the boot vCPU's
     * registers again */
    [EMBER_THREAD_IO] = {"io", sys_io, ioctl_io,
			 G(EHV_IOCTLS_VM_IRQ) | G(EHV_IOCTLS_VM_STATE) | G(EHV_IOCTLS_VCPU_STATE),
			 true},
    /* snapshots save the VM's state from the control thread */
    [EMBER_THREAD_CTL] = {"ctl", sys_ctl, ioctl_ctl, G(EHV_IOCTLS_VM_IRQ) | G(EHV_IOCTLS_VM_STATE),
			  true},
    [EMBER_THREAD_MAIN] = {"main", sys_main, ioctl_main, 0, false},
    [EMBER_THREAD_PAGESERVER] = {"pageserver", sys_pageserver, ioctl_pageserver, 0, false},
};

/* ------------------------------------------------------------ mode, names */

static atomic_int g_mode = VMM_SECCOMP_KILL;
static atomic_uint g_test_kinds; /* EMBER_SECCOMP_TEST: a bit per kind */

const char *vmm_seccomp_mode_name(enum vmm_seccomp_mode mode)
{
	switch (mode) {
	case VMM_SECCOMP_KILL:
		return "kill";
	case VMM_SECCOMP_LOG:
		return "log";
	case VMM_SECCOMP_OFF:
		return "off";
	}
	return NULL;
}

int vmm_seccomp_parse_mode(const char *s, enum vmm_seccomp_mode *mode)
{
	for (int m = VMM_SECCOMP_KILL; s && m <= VMM_SECCOMP_OFF; m++)
		if (!strcmp(s, vmm_seccomp_mode_name((enum vmm_seccomp_mode)m))) {
			*mode = (enum vmm_seccomp_mode)m;
			return 0;
		}
	return -EINVAL;
}

const char *vmm_seccomp_kind_name(enum ember_thread_kind kind)
{
	return (unsigned)kind < EMBER_THREAD_KINDS ? kinds[kind].name : NULL;
}

void vmm_seccomp_set_mode(enum vmm_seccomp_mode mode)
{
	atomic_store(&g_mode, (int)mode);
	/* a comma-separated list of kind names; unknown names are ignored */
	const char *t = getenv("EMBER_SECCOMP_TEST");
	unsigned set = 0;
	while (t && *t) {
		size_t n = strcspn(t, ",");
		for (int i = 0; i < EMBER_THREAD_KINDS; i++)
			if (strlen(kinds[i].name) == n && !strncmp(t, kinds[i].name, n))
				set |= 1u << i;
		t += n + (t[n] == ',');
	}
	atomic_store(&g_test_kinds, set);
}

enum vmm_seccomp_mode vmm_seccomp_mode(void)
{
	return (enum vmm_seccomp_mode)atomic_load(&g_mode);
}

/* ------------------------------------------------------------ building */

static int add_list(scmp_filter_ctx ctx, const int *list)
{
	for (; *list != END; list++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, *list, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ioctl with this request (the low 32 bits: glibc may pass it sign-extended) */
static int allow_ioctl(scmp_filter_ctx ctx, unsigned long req)
{
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, (uint32_t)req));
}

static bool in_sys_list(const int *list, int nr)
{
	for (; *list != END; list++)
		if (*list == nr)
			return true;
	return false;
}

static int build(scmp_filter_ctx ctx, const struct kind_desc *d, enum vmm_seccomp_mode mode)
{
	int r = add_list(ctx, sys_common);
	if (r == 0)
		r = add_list(ctx, d->sys);
	if (r == 0)
		r = add_list(ctx, sys_sanitizer);
	/* glibc's malloc opens /proc/sys/vm/overcommit_memory the first time an
	 * arena gives memory back (shrink_heap), on whichever thread frees: the
	 * main thread did, at its teardown after a snapshot from the control
	 * thread, and died of SIGSYS. A kind without openat has it refused
	 * (EACCES: malloc then takes its madvise way) instead of killed; no
	 * file opens either way. (Log mode lets it run, logged.) */
	if (r == 0 && mode == VMM_SECCOMP_KILL && !in_sys_list(d->sys, SCMP_SYS(openat)) &&
	    !in_sys_list(sys_sanitizer, SCMP_SYS(openat)))
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
	/* memory never becomes executable */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	for (const unsigned long *n = d->ioctls; r == 0 && *n; n++)
		r = allow_ioctl(ctx, *n);
	for (int g = EHV_IOCTLS_VCPU_RUN; r == 0 && g <= EHV_IOCTLS_VM_STATE; g++) {
		const unsigned long *reqs;
		int n = (d->hv_groups & G(g)) ? ehv_kvm_ioctls((enum ehv_ioctl_group)g, &reqs) : 0;
		for (int i = 0; r == 0 && i < n; i++)
			r = allow_ioctl(ctx, reqs[i]);
	}
	/* the hot calls first in the program: KVM_RUN, the loop's wait and its
	 * eventfd reads and writes */
	static const int hot[] = {SCMP_SYS(ioctl), SCMP_SYS(epoll_wait), SCMP_SYS(read),
				  SCMP_SYS(write), SCMP_SYS(futex)};
	for (size_t i = 0; r == 0 && i < sizeof(hot) / sizeof(hot[0]); i++)
		r = seccomp_syscall_priority(ctx, hot[i], (uint8_t)(255 - i));
	if (r == 0 && d->unix_sockets)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
	return r;
}

/* ------------------------------------------------------------ programs */

/* Every kind's program for the kill and log modes, built once (by the first
 * vmm_seccomp_prepare, from ember_vm_create before the VM's threads start)
 * and kept for the process's life, so a thread installs a ready program:
 * no allocation, and no malloc arena of its own left holding a filter
 * build's freed memory. */
static pthread_mutex_t g_prog_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock_fprog g_prog[EMBER_THREAD_KINDS][2];
static atomic_bool g_prog_ready[2];

/* The vCPU thread's hot call, KVM_RUN, allowed in 7 instructions ahead of
 * libseccomp's program, whose ioctl rule compares the request with each
 * allowed number in turn (sorted by value: KVM_RUN came ~50 instructions
 * in, run on every exit). Anything else (another arch, another call,
 * another request) falls through to libseccomp's program unchanged. */
#define FAST_RUN_LEN 7
static void fast_run(struct sock_filter f[FAST_RUN_LEN], uint32_t run)
{
	const struct sock_filter p[FAST_RUN_LEN] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 5),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
	    /* the request's low 32 bits (little-endian), as the ioctl rules match */
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, run, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	memcpy(f, p, sizeof(p));
}

/* kind's program in mode (KILL or LOG) into *out, the BPF read back from
 * libseccomp's export through a memfd (after fast_run for the vCPU's). */
static int export_one(enum ember_thread_kind kind, enum vmm_seccomp_mode mode,
		      struct sock_fprog *out)
{
	scmp_filter_ctx ctx =
	    seccomp_init(mode == VMM_SECCOMP_KILL ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_LOG);
	if (!ctx)
		return -ENOMEM;
	int r = build(ctx, &kinds[kind], mode);
	int fd = -1;
	if (r == 0) {
		fd = memfd_create("ember-seccomp", MFD_CLOEXEC);
		r = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
	}
	seccomp_release(ctx);
	off_t size = r == 0 ? lseek(fd, 0, SEEK_END) : 0;
	if (r == 0 && (size <= 0 || size % (off_t)sizeof(struct sock_filter)))
		r = -E2BIG;
	/* the vCPU's program starts with KVM_RUN's fast path (see fast_run;
	 * the hypervisor's run request is its VCPU_RUN group's first) */
	const unsigned long *run = NULL;
	size_t pre = kind == EMBER_THREAD_VCPU && ehv_kvm_ioctls(EHV_IOCTLS_VCPU_RUN, &run) > 0
			 ? FAST_RUN_LEN
			 : 0;
	if (r == 0 && (size_t)(size / (off_t)sizeof(struct sock_filter)) + pre > BPF_MAXINSNS)
		r = -E2BIG;
	struct sock_filter *f =
	    r == 0 ? malloc((size_t)size + pre * sizeof(struct sock_filter)) : NULL;
	if (r == 0 && !f)
		r = -ENOMEM;
	if (r == 0 && pread(fd, f + pre, (size_t)size, 0) != size)
		r = -EIO;
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		free(f);
		return r;
	}
	if (pre)
		fast_run(f, (uint32_t)run[0]);
	out->filter = f;
	out->len = (unsigned short)(pre + (size_t)size / sizeof(struct sock_filter));
	return 0;
}

int vmm_seccomp_build(enum ember_thread_kind kind, enum vmm_seccomp_mode mode,
		      struct sock_fprog *out)
{
	if ((unsigned)kind >= EMBER_THREAD_KINDS || (unsigned)mode > VMM_SECCOMP_LOG || !out)
		return -EINVAL;
	return export_one(kind, mode, out);
}

#ifdef EMBER_SECCOMP_PREBUILT
/* The programs libseccomp built at build time (tools/seccomp-gen.c writes
 * them with vmm_seccomp_build, the Makefile compiles them in): a process
 * takes them as they are, which spares it building them at every start
 * (1.5 ms on hardware, 15 ms in the KVM sandbox's L1; half of that
 * libseccomp probing the kernel). test-unit checks they equal what
 * vmm_seccomp_build makes now. */
#include "seccomp_prebuilt.h"
#endif

bool vmm_seccomp_compiled_in(void)
{
#ifdef EMBER_SECCOMP_PREBUILT
	return true;
#else
	return false;
#endif
}

int vmm_seccomp_prepare(enum vmm_seccomp_mode mode)
{
	if ((unsigned)mode > VMM_SECCOMP_OFF)
		return -EINVAL;
	if (mode == VMM_SECCOMP_OFF || atomic_load(&g_prog_ready[mode]))
		return 0;
	pthread_mutex_lock(&g_prog_lock);
	int r = 0;
	if (!atomic_load(&g_prog_ready[mode])) {
		struct sock_fprog p[EMBER_THREAD_KINDS] = {{0}};
#ifdef EMBER_SECCOMP_PREBUILT
		for (int k = 0; k < EMBER_THREAD_KINDS; k++)
			p[k] = seccomp_prebuilt[k][mode];
#else
		for (int k = 0; r == 0 && k < EMBER_THREAD_KINDS; k++)
			r = export_one((enum ember_thread_kind)k, mode, &p[k]);
#endif
		if (r == 0) {
			for (int k = 0; k < EMBER_THREAD_KINDS; k++)
				g_prog[k][mode] = p[k];
			atomic_store(&g_prog_ready[mode], true);
		} else {
			for (int k = 0; k < EMBER_THREAD_KINDS; k++)
				free(p[k].filter);
		}
	}
	pthread_mutex_unlock(&g_prog_lock);
	return r;
}

const struct sock_fprog *vmm_seccomp_program(enum ember_thread_kind kind,
					     enum vmm_seccomp_mode mode)
{
	if ((unsigned)kind >= EMBER_THREAD_KINDS || mode > VMM_SECCOMP_LOG ||
	    !atomic_load(&g_prog_ready[mode]))
		return NULL;
	return &g_prog[kind][mode];
}

int vmm_seccomp_enter_mode(enum ember_thread_kind kind, enum vmm_seccomp_mode mode)
{
	if ((unsigned)kind >= EMBER_THREAD_KINDS || (unsigned)mode > VMM_SECCOMP_OFF)
		return -EINVAL;
	if (mode == VMM_SECCOMP_OFF)
		return 0;
	int r = vmm_seccomp_prepare(mode); /* nothing to do once prepared */
	if (r < 0)
		return r;
	/* the kernel takes a filter from an unprivileged thread only with
	 * no_new_privs */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &g_prog[kind][mode]) < 0)
		return -errno;
	if (atomic_load(&g_test_kinds) & (1u << kind)) {
		/* the test hook: one syscall outside every list */
		struct sysinfo si;
		(void)syscall(SYS_sysinfo, &si);
	}
	return 0;
}

int vmm_seccomp_enter(enum ember_thread_kind kind)
{
	return vmm_seccomp_enter_mode(kind, vmm_seccomp_mode());
}

/* ------------------------------------------------------------ figures */

int vmm_seccomp_describe(enum ember_thread_kind kind, char *names, size_t len)
{
	if ((unsigned)kind >= EMBER_THREAD_KINDS)
		return -EINVAL;
	const struct kind_desc *d = &kinds[kind];
	int extra[] = {SCMP_SYS(mmap), SCMP_SYS(mprotect), SCMP_SYS(ioctl),
		       d->unix_sockets ? SCMP_SYS(socket) : END, END};
	const int *lists[] = {sys_common, d->sys, sys_sanitizer, extra};
	int seen[256];
	int n = 0;
	size_t used = 0;
	if (names && len)
		names[0] = 0;
	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++)
		for (const int *p = lists[l]; *p != END; p++) {
			bool dup = false;
			for (int i = 0; i < n; i++)
				dup |= seen[i] == *p;
			if (dup || n >= (int)(sizeof(seen) / sizeof(seen[0])))
				continue;
			if (*p == SCMP_SYS(ioctl) && !d->ioctls[0] && !d->hv_groups)
				continue;
			seen[n++] = *p;
			if (names && used < len) {
				char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, *p);
				int w = snprintf(names + used, len - used, "%s%s", used ? " " : "",
						 s ? s : "?");
				free(s);
				if (w > 0)
					used += (size_t)w;
			}
		}
	return n;
}
