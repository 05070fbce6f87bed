/* vmm/seccomp.h - per-thread seccomp filters (libseccomp): one allow-list per kind of VMM thread. */
#ifndef EMBER_VMM_SECCOMP_H
#define EMBER_VMM_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The kinds of thread a VMM process runs, each with its own filter:
 *   VCPU  a vCPU thread of the runner (KVM_RUN, the vCPU state ioctls, the
 *         device handlers' exits: eventfd writes, irqchip lines)
 *   IO    the VM's event loop thread (epoll, eventfds, timers, disk, tap,
 *         vsock's Unix sockets, io_uring_enter)
 *   CTL   the control socket's thread (AF_UNIX sockets only, snapshot files)
 *   MAIN  the thread that built and started the VM and now waits for it,
 *         then tears it down (confined by ember_vm_seccomp_confine_caller)
 *   PAGESERVER  the userfaultfd page server (vmm/pageserver.c): poll, read of
 *         its userfaultfd, pread of its source files, UFFDIO_COPY/ZEROPAGE/WAKE
 * A filter, once loaded, stays for the thread's life (and every thread it
 * creates afterwards); it cannot be widened.
 */
enum ember_thread_kind {
	EMBER_THREAD_VCPU = 0,
	EMBER_THREAD_IO,
	EMBER_THREAD_CTL,
	EMBER_THREAD_MAIN,
	EMBER_THREAD_PAGESERVER,
	EMBER_THREAD_KINDS
};

/* What a syscall outside the list does: kill the whole process (SIGSYS,
 * the default), log it (SECCOMP_RET_LOG: the kernel's audit log, type 1326)
 * and let it run, or no filter at all. */
enum vmm_seccomp_mode {
	VMM_SECCOMP_KILL = 0,
	VMM_SECCOMP_LOG,
	VMM_SECCOMP_OFF,
};

/* "kill", "log", "off" (and NULL for anything else). */
const char *vmm_seccomp_mode_name(enum vmm_seccomp_mode mode);
/* Parses "kill", "log" or "off"; -EINVAL otherwise. */
int vmm_seccomp_parse_mode(const char *s, enum vmm_seccomp_mode *mode);
/* "vcpu", "io", "ctl", "main", "pageserver"; NULL for an unknown kind. */
const char *vmm_seccomp_kind_name(enum ember_thread_kind kind);

/*
 * The process-wide mode used by vmm_seccomp_enter() (threads that know no
 * VM: the control thread). ember_vm_create sets it from the VM's
 * configuration (the last VM created wins). Also reads the test hook
 * EMBER_SECCOMP_TEST=KIND[,KIND...] (vcpu, io, ctl, main) from the
 * environment: a thread of a kind listed then makes one syscall outside its
 * list (sysinfo) right after its filter is loaded. Any thread; not thread-safe against
 * vmm_seccomp_enter on other threads reading the hook (set it before).
 */
void vmm_seccomp_set_mode(enum vmm_seccomp_mode mode);
enum vmm_seccomp_mode vmm_seccomp_mode(void);

/*
 * Makes every kind's BPF program for mode (kill or log; off needs none)
 * ready once for the process's life, so that vmm_seccomp_enter later
 * installs a ready program without allocating: the programs the build
 * compiled in (EMBER_SECCOMP_PREBUILT, the Makefile's way: no work at run
 * time), else built now with libseccomp (vmm_seccomp_build).
 * ember_vm_create calls it from the creating thread before any VM thread
 * starts. Thread-safe (a mutex; a no-op once done). 0, -EINVAL (bad mode),
 * -ENOMEM, -E2BIG (a program longer than the kernel takes) or libseccomp's
 * negative errno.
 */
int vmm_seccomp_prepare(enum vmm_seccomp_mode mode);

struct sock_fprog;
/*
 * kind's program in mode (KILL or LOG), built now with libseccomp, into *out
 * (out->filter malloc'd: the caller frees it). What vmm_seccomp_prepare
 * installs; for the build-time generator (tools/seccomp-gen.c) and the test
 * that its output is current. 0, -EINVAL (bad kind or mode), -ENOMEM, -E2BIG
 * or libseccomp's negative errno.
 */
int vmm_seccomp_build(enum ember_thread_kind kind, enum vmm_seccomp_mode mode,
		      struct sock_fprog *out);
/* Whether this build compiled its programs in (EMBER_SECCOMP_PREBUILT, the
 * Makefile's library) rather than building them at run time. For tests. */
bool vmm_seccomp_compiled_in(void);
/* kind's prepared program in mode (KILL or LOG), or NULL before
 * vmm_seccomp_prepare(mode) or for a bad argument. Owned by this module, valid
 * for the process's life. For tests. */
const struct sock_fprog *vmm_seccomp_program(enum ember_thread_kind kind,
					     enum vmm_seccomp_mode mode);

/*
 * Loads kind's filter on the calling thread (no_new_privs is set first, as
 * the kernel requires), in the process-wide mode; 0 with nothing done when
 * the mode is off. Call at the thread's start, before it touches guest
 * data. Installs the program vmm_seccomp_prepare built (building it first,
 * which allocates, when no one prepared the mode yet); allocates nothing
 * after that. Errors: -EINVAL (bad kind), vmm_seccomp_prepare's, or the
 * kernel's refusal (-EACCES, -EFAULT, -EINVAL, -ENOSYS: no seccomp here).
 */
int vmm_seccomp_enter(enum ember_thread_kind kind);
/* The same with an explicit mode (the VM's own threads use their VM's). */
int vmm_seccomp_enter_mode(enum ember_thread_kind kind, enum vmm_seccomp_mode mode);

/*
 * The number of distinct syscalls kind's filter allows (a syscall allowed
 * only with some arguments, e.g. ioctl with listed request numbers, counts
 * once) and, when names is not NULL, a space-separated list of their names
 * in names (truncated to len). For the documentation's figures and tests.
 */
int vmm_seccomp_describe(enum ember_thread_kind kind, char *names, size_t len);

#endif /* EMBER_VMM_SECCOMP_H */
