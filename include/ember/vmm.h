/* ember/vmm.h - layer 3: the VMM as a library: configure, build and run a Linux guest. */
#ifndef EMBER_VMM_H
#define EMBER_VMM_H

/*
 * Overview
 * --------
 * Running a guest is three steps, each a library call:
 *
 *   1. Configuration is data. A struct ember_config (opaque) starts with
 *      defaults (ember_config_new), then takes key/value settings
 *      (ember_config_set) or
 *      from a command line in the style of kvmtool and crosvm
 *      (ember_config_parse_args). ember_config_resolve() validates it and
 *      resolves every default (the host's kernel, the built-in initramfs, the
 *      kernel command line, the image format) so that ember_config_format()
 *      prints exactly what will be built (`ember run --dry-run`).
 *   2. ember_vm_create() builds the machine from a resolved configuration:
 *      guest memory, the KVM VM, vCPUs, the board's devices, ACPI tables, and
 *      loads the kernel. Bad or truncated images are rejected here, before any
 *      vCPU runs.
 *   3. ember_vm_start() lets the vCPUs run; the guest then stops by itself
 *      (power-off, reboot, crash, a host failure) or on ember_vm_stop() /
 *      ember_vm_request_stop(); ember_vm_wait() waits for that. In between,
 *      ember_vm_pause() and ember_vm_resume() freeze and thaw it and
 *      ember_vm_query() reports on it. ember_vm_run() is start + wait;
 *      ember_run() does 2 and 3 and cleans up.
 *
 * Error contract
 * --------------
 * Functions return 0 (or a documented non-negative value) on success and a
 * negative errno on failure. Functions that take a struct ember_error *err
 * (may be NULL) also fill err->msg with one line saying what was wrong, for
 * the caller to print; err->code holds the same negative errno. The library
 * never prints and never exits: diagnostics go through the optional log
 * callback in the configuration, and only the caller decides what to do.
 *
 * Thread-safety
 * -------------
 * A struct ember_config is used by one thread at a time. The lifecycle
 * calls on a struct ember_vm (start, pause, resume, stop, wait, query, run)
 * may be made from any thread, concurrently; ember_vm_request_stop() is also
 * async-signal-safe. ember_vm_destroy() must be the last call: not
 * concurrently with any other call on that VM. The library runs one thread
 * per vCPU, from ember_vm_create() to ember_vm_destroy() (they wait until
 * ember_vm_start()), and one I/O thread from ember_vm_start() until the VM
 * has stopped: it runs the VM's event loop (include/ember/loop.h), which
 * serves the console and carries out stop requests. No thread of the
 * library ever blocks on a console fd: output goes through a bounded buffer
 * and a guest that outruns its reader sees its UART busy.
 * The library blocks no signal in the caller's threads; its own threads
 * block all but the vCPU kick signal, so a process's signals reach the
 * caller's threads.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_VMM_API_MAJOR 0
#define EMBER_VMM_API_MINOR \
	4 /* 2: struct ember_config became opaque; 3: ember_restore_opts.devices;  \
	     4: ember_restore_opts.ahead, ember_vm_ahead_make */
#define EMBER_VMM_API_VERSION ((EMBER_VMM_API_MAJOR << 16) | EMBER_VMM_API_MINOR)

/* Returns EMBER_VMM_API_VERSION of the library actually linked. */
unsigned ember_library_version(void);

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */
#define EMBER_ERROR_MAX 512
struct ember_error {
	int code;		   /* the negative errno also returned */
	char msg[EMBER_ERROR_MAX]; /* one line, no trailing newline; "" if none */
};

/* ------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------ */
#define EMBER_PATH_MAX	  4096
#define EMBER_CMDLINE_MAX 4096
#define EMBER_MAX_CPUS	  254 /* xAPIC IDs 0..253 (255 is broadcast) */
#define EMBER_MIN_MEM	  (16ULL << 20)
#define EMBER_MAX_MEM	  (1ULL << 40)
#define EMBER_DEFAULT_MEM (256ULL << 20)

enum ember_mem_backing {
	EMBER_MEM_ANON = 0, /* anonymous private mmap (default) */
	EMBER_MEM_MEMFD,    /* a memfd, shared mapping (shareable with other processes later) */
};

enum ember_kernel_format {
	EMBER_KERNEL_UNKNOWN = 0, /* not resolved yet */
	EMBER_KERNEL_BZIMAGE,	  /* x86 boot protocol (vmlinuz) */
	EMBER_KERNEL_ELF_PVH,	  /* ELF vmlinux entered through its PVH note */
};

/* How a bzImage is entered (an ELF vmlinux always enters through PVH): the
 * values of the key "boot". */
enum ember_boot_path {
	EMBER_BOOT_AUTO = 0, /* PVH when the payload can be decompressed on the host and is
				an ELF with a PVH note, else the boot protocol */
	EMBER_BOOT_PVH,	     /* decompress on the host and enter through PVH, or fail */
	EMBER_BOOT_BZIMAGE,  /* the x86 boot protocol: the guest decompresses itself */
};

enum ember_log_level { EMBER_LOG_ERROR, EMBER_LOG_WARN, EMBER_LOG_INFO, EMBER_LOG_DEBUG };
/* Log callback: called from any of the VMM's threads, possibly concurrently;
 * msg is one line without a newline, valid during the call only. */
typedef void (*ember_log_fn)(void *opaque, enum ember_log_level level, const char *msg);

/*
 * The configuration is opaque. Its layout is private to the library, so that
 * new device kinds and settings (disks now, network, vsock and the rest
 * later) are new keys and accessors, not a new struct layout: a program
 * built against this header keeps working with a newer library, which a
 * public struct of fixed fields could not promise without a version field
 * and reserved room in every release. It is created with ember_config_new(),
 * filled with ember_config_set() (string keys, the same as the command line)
 * or ember_config_parse_args(), plus typed setters for what is not a string
 * (file descriptors, the log callback, a clock value), and read back with
 * ember_config_get() and the typed getters.
 *
 * Thread-safety: a configuration is used by one thread at a time;
 * ember_vm_create() copies it, so it may be changed or freed afterwards.
 */
struct ember_config;

/* The command line Ember gives a guest when none is configured. The board
 * has a PCI host bridge behind configuration mechanism #1 (0xcf8), so Linux
 * finds a config access method (no pci=off, which makes it print "PCI:
 * Fatal: No config space access function found"). pci=noearly skips the
 * early type 1 scans, which on AMD CPU families with a GART (0xf-0x12,
 * early 0x15) read every bus and slot twice looking for an AGP bridge
 * (2 x 8192 config reads, about 33,000 PIO exits); the i8042.* options skip
 * slow probes of absent PS/2 devices. */
#define EMBER_DEFAULT_CMDLINE_TAIL "panic=-1 pci=noearly i8042.noaux i8042.nomux i8042.dumbkbd"
#define EMBER_DEFAULT_CMDLINE	   "console=ttyS0 " EMBER_DEFAULT_CMDLINE_TAIL
/* The default with console virtio: the kernel's early messages on ttyS0
 * (earlyprintk, until hvc0 registers when the virtio_console module loads),
 * then hvc0 as the console and /dev/console. */
#define EMBER_DEFAULT_CMDLINE_HVC0 "earlyprintk=ttyS0 console=hvc0 " EMBER_DEFAULT_CMDLINE_TAIL

/*
 * Allocates a configuration with the defaults: host kernel, 256 MiB, 1 vCPU,
 * anonymous memory, console on fds 0/1, escape on, no devices. *out owns it;
 * free it with ember_config_free(). Errors: -EINVAL (out NULL), -ENOMEM.
 */
int ember_config_new(struct ember_config **out);

/* Frees a configuration and everything it owns. NULL is allowed. */
void ember_config_free(struct ember_config *cfg);

/*
 * Sets one configuration key from a string, as the command line does:
 *   kernel PATH | initrd PATH|"builtin" | cmdline STR | append STR |
 *   mem SIZE (bytes with a K/M/G/T suffix, a bare number is MiB) |
 *   cpus N | mem-backing anon|memfd | hugepages on|off | busybox PATH |
 *   interactive on|off|auto | log-level error|warn|info|debug |
 *   console-escape on|off | console serial|virtio (the guest's console:
 *   the UART, ttyS0, default; or a virtio-console, hvc0, which makes the
 *   default command line EMBER_DEFAULT_CMDLINE_HVC0) | boot auto|pvh|bzimage (how a bzImage boots:
 *   decompressed on the host and entered through PVH, or the boot protocol) |
 *   kernel-cache on|off (keep a bzImage decompressed on the host for the
 *   next boot of the same file; default on) | kernel-cache-dir PATH (an
 *   absolute path; default "", which ember_config_resolve makes
 *   ${XDG_CACHE_HOME:-$HOME/.cache}/ember/kernels, or leaves "" when neither
 *   variable is set: then no cache, not an error) |
 *   reboot exit|restart (a guest reboot ends the run, EMBER_STOP_REBOOT,
 *   default; or resets the machine and boots again: ember_vm_reset) |
 *   root on|off (boot the root file system on the first disk through the
 *   built-in initramfs, which loads the kernel's modules for virtio-blk and
 *   ext4 from the host's /lib/modules/RELEASE, mounts root= (added as
 *   "root=/dev/vda rw" when the command line has none) and switch_roots to
 *   its init; needs a disk, excludes an initrd file) |
 *   disk SUBOPTS (repeatable: each call appends one disk; see below) |
 *   rng SUBOPTS | balloon SUBOPTS (SUBOPTS may be "")
 * Device keys take comma-separated key=value sub-options, as --disk does:
 *   disk: path=IMG (required; a bare IMG means path=IMG), ro=on|off
 *         (default off), serial=ID (up to 20 bytes), and the rate limits
 *         bw=BYTES[/s], bw-burst=BYTES, ops=N[/s], ops-burst=N (see
 *         struct ember_rate_limit; K/M/G/T suffixes; a burst needs its rate)
 *   rng:  the same rate limits, all optional
 *   balloon: reporting=on|off (free page reporting offered; default on)
 * A value may not contain a comma. Sub-options are checked here (unknown
 * key, bad value, missing path); the image itself by ember_config_resolve.
 * Any set un-resolves the configuration. Returns 0, or -EINVAL (bad value),
 * -ENOENT (unknown key), -ENAMETOOLONG (string too long), -E2BIG (too many
 * devices), -ENOMEM; err says which key and why (device errors name the
 * option and the sub-option: "--disk: unknown key 'rw'").
 */
int ember_config_set(struct ember_config *cfg, const char *key, const char *value,
		     struct ember_error *err);

/*
 * The current value of a key as a string (the form ember_config_set takes;
 * after ember_config_resolve, the resolved one), snprintf style: writes at
 * most len bytes (NUL-terminated if len > 0) and returns the length of the
 * full value, or -ENOENT (unknown key), -EINVAL (cfg or key NULL). Keys:
 * those of ember_config_set except disk, plus "disks" (the number of disk
 * entries), "kernel-format" (unknown|bzImage|elf-pvh), "boot-path" (the
 * path resolve chose: pvh|bzimage; "" before) and "resolved" (on|off).
 */
int ember_config_get(const struct ember_config *cfg, const char *key, char *buf, size_t len);

/* Typed getters (cfg must not be NULL). */
uint64_t ember_config_mem_size(const struct ember_config *cfg);
unsigned ember_config_cpus(const struct ember_config *cfg);
enum ember_log_level ember_config_log_level(const struct ember_config *cfg);

/*
 * The console: the fds the guest's ttyS0 reads from and writes to, -1 for
 * none (the default is 0 and 1). The fds are borrowed: the library never
 * closes them nor changes terminal modes. Returns 0 or -EINVAL (an fd < -1).
 */
int ember_config_set_console(struct ember_config *cfg, int in_fd, int out_fd);

/* The log callback (NULL: no messages) and its opaque argument. */
void ember_config_set_log(struct ember_config *cfg, ember_log_fn log, void *opaque);

/* CLOCK_MONOTONIC nanoseconds when the run started, for the boot-time marks
 * (0, the default: the time of ember_vm_create). */
void ember_config_set_start_ns(struct ember_config *cfg, uint64_t start_ns);

/* Flags returned by ember_config_parse_args. */
#define EMBER_ARGS_HELP	   (1u << 0) /* --help / -h was given */
#define EMBER_ARGS_DRY_RUN (1u << 1) /* --dry-run was given */

/*
 * Parses the arguments of `ember run` (argv[0] is the first option, not the
 * program name): --kernel/-k PATH, --initrd/-i PATH, --cmdline STR,
 * --append/-p STR, --mem/-m SIZE, --cpus/-c N, --mem-backing anon|memfd,
 * --hugepages, --busybox PATH, --interactive/--no-interactive,
 * --log-level LEVEL, --quiet/-q, --verbose/-v, --boot auto|pvh|bzimage,
 * --kernel-cache on|off, --kernel-cache-dir PATH, --root (the key root on),
 * --reboot exit|restart,
 * --dry-run/-n, --help/-h,
 * and the repeatable device options (--disk SUBOPTS, as the key "disk");
 * both "--opt value" and "--opt=value". *flags receives the
 * EMBER_ARGS_* seen. Returns 0 or a negative errno with err naming the
 * argument (-EINVAL for an unknown option, a missing or a bad value).
 */
int ember_config_parse_args(struct ember_config *cfg, int argc, char *const argv[], unsigned *flags,
			    struct ember_error *err);

/* The usage text of `ember run` (static storage). */
const char *ember_config_usage(void);

/*
 * Validates *cfg and resolves its defaults (kernel path, built-in initramfs,
 * final command line, interactive mode, kernel format detected from the
 * file, the boot path from a bzImage's header and its payload's format, not
 * decompressed here). Touches the file system (reads the kernel and initrd,
 * opens each disk image with the mode asked and closes it) but builds
 * nothing: every check of the kernel image, the initrd and their fit in
 * mem_size runs here (the loader's own checks, on the image as given: for a
 * bzImage booted through PVH the fit is the bzImage's, a few MiB more than
 * its decompressed vmlinux needs), so nothing needs guest memory or
 * /dev/kvm to find a bad image. With neither an initrd nor root= on the
 * command line, the built-in initramfs is used. The appended command line
 * is folded in only when every check passed. Idempotent.
 * Errors (err names the file or key): -EINVAL (a bad value, mem_size above
 * what this host can map, boot bzimage with an ELF), -E2BIG (a command line
 * too long for the kernel, or mem_size too small for the kernel, initrd or
 * vCPU count: the message gives the size needed), -ENOENT/-EACCES/-EISDIR
 * (a file missing, unreadable or a directory, or no kernel in /boot),
 * -ENOEXEC (not a kernel, a malformed or truncated image, an empty or
 * non-regular file, boot pvh with a payload Ember cannot decompress),
 * -EFBIG (an initrd larger than the kernel accepts below initrd_addr_max),
 * or the errno of a failed read or open (a disk: "--disk path=IMG:
 * Permission denied").
 */
int ember_config_resolve(struct ember_config *cfg, struct ember_error *err);

/*
 * Formats the configuration as "key: value" lines, then the machine's device
 * list, one "device NAME: ..." line each (what it is, its ports, MMIO
 * window and interrupt, its ACPI name, or why it is not attached): the
 * output of `ember run --dry-run`. snprintf style: writes at most len bytes
 * (NUL-terminated if len > 0) and returns the length the full text needs.
 */
int ember_config_format(const struct ember_config *cfg, char *buf, size_t len);

/*
 * Parses a size: a decimal number with an optional suffix K, M, G or T
 * (powers of 1024, case-insensitive, optionally followed by "B" or "iB");
 * a bare number counts in units of default_unit (e.g. 1 << 20 for MiB).
 * Returns 0, -EINVAL (not a size) or -ERANGE (overflows 64 bits).
 */
int ember_parse_size(const char *s, uint64_t default_unit, uint64_t *out);

/* ------------------------------------------------------------------------
 * The VM
 * ------------------------------------------------------------------------ */
struct ember_vm;

/* Why the VM stopped. */
enum ember_stop_reason {
	EMBER_STOP_POWEROFF = 0, /* the guest powered off (ACPI S5) */
	EMBER_STOP_REBOOT,	 /* the guest asked for a reset (ACPI reset register, i8042),
				    with "reboot" = exit (else the machine resets: ember_vm_reset) */
	EMBER_STOP_CRASH,	 /* triple fault, failed entry, KVM internal error */
	EMBER_STOP_REQUESTED,	 /* ember_vm_stop/request_stop (a signal, the console escape) */
	EMBER_STOP_ERROR,	 /* a host-side failure while running (see error) */
	EMBER_STOP_PANIC,	 /* the guest kernel panicked (it said so on the pvpanic port) */
	EMBER_STOP_HALTED,	 /* every vCPU halted for good: HLT with interrupts disabled
				    (Linux's halt -f), seen twice a second apart */
};

/* Exit statuses of `ember run` for each reason (documented in ember(1)). */
#define EMBER_EXIT_POWEROFF 0
#define EMBER_EXIT_ERROR    1 /* host error, bad image */
#define EMBER_EXIT_USAGE    2 /* bad command line or configuration */
#define EMBER_EXIT_REBOOT   32
#define EMBER_EXIT_CRASH    33
#define EMBER_EXIT_STOPPED  34 /* stopped by request (SIGINT/SIGTERM, Ctrl-A x) */
#define EMBER_EXIT_PANIC    35 /* the guest kernel panicked (pvpanic) */
#define EMBER_EXIT_HALTED   36 /* the guest halted for good (every vCPU in HLT, IF=0) */

struct ember_run_result {
	enum ember_stop_reason reason;
	int error;	  /* EMBER_STOP_ERROR: the negative errno */
	int vcpu;	  /* the vCPU that caused the stop, -1 if none */
	uint64_t run_ns;  /* from ember_vm_start to the stop */
	char detail[256]; /* one line: what happened (exit reason names) */
};

/*
 * Builds the machine described by a resolved configuration (*cfg is copied;
 * fds in it are borrowed, not closed). On success *out owns the VM; free it
 * with ember_vm_destroy(). No vCPU runs until ember_vm_run(). A bzImage
 * booted through PVH (key "boot") is decompressed here, into a temporary
 * host buffer of at most min(init_size, guest RAM below 4 GiB) bytes, or
 * taken from the kernel cache (key "kernel-cache"), which a successful
 * decompression fills; a cache that cannot be read or written is skipped
 * with a debug log line, never an error.
 * Errors: -EINVAL (configuration not resolved or invalid), -ENOEXEC (bad
 * kernel image, a corrupt bzImage payload), -E2BIG (image, initrd or command line does not fit in guest
 * memory), -ENOMEM, -ENOENT/-EACCES (/dev/kvm or a file), or an errno from
 * KVM. err says which.
 */
int ember_vm_create(const struct ember_config *cfg, struct ember_vm **out, struct ember_error *err);

/*
 * The same, on a hypervisor the caller opened (<ember/hv.h>): the VM is
 * created from hyp instead of opening /dev/kvm itself, and every hypervisor
 * query (the supported CPUID) goes through it. hyp is borrowed: it must stay
 * open until ember_vm_destroy() returns, and may serve several VMs. With the
 * mock backend the whole machine is built (memory, platform, devices, ACPI,
 * kernel, vCPU state) with no KVM, for tests; running it runs the mock's
 * scripts. Errors: as ember_vm_create, -EINVAL for a NULL hyp.
 */
struct ehv_hypervisor;
int ember_vm_create_on(const struct ember_config *cfg, struct ehv_hypervisor *hyp,
		       struct ember_vm **out, struct ember_error *err);

/*
 * The lifecycle. States and the calls that move between them:
 *
 *   CREATED --start--> RUNNING --pause--> PAUSED --resume--> RUNNING
 *   any state --stop, or the guest's own ending--> STOPPED (final)
 *
 * Errors of a call in the wrong state (nothing changes):
 *   ember_vm_start    -EALREADY unless CREATED (started once only).
 *   ember_vm_pause    -EINVAL in CREATED (not started), -ESRCH when STOPPED
 *                     or stopping; 0 when already PAUSED.
 *   ember_vm_resume   -EINVAL in CREATED, -ESRCH when STOPPED or stopping;
 *                     0 when already RUNNING.
 *   ember_vm_stop     never fails for a valid vm; 0 when already STOPPED.
 *   ember_vm_wait     -EINVAL in CREATED (nothing would end the wait).
 * Every call returns -EINVAL for a NULL vm.
 */
enum ember_vm_state {
	EMBER_VM_CREATED = 0, /* built, no vCPU has run */
	EMBER_VM_RUNNING,     /* the vCPUs run, the I/O thread serves the devices */
	EMBER_VM_PAUSED,      /* nothing of the guest runs (see ember_vm_pause) */
	EMBER_VM_STOPPED,     /* the guest has ended: the result is final */
};

/*
 * CREATED -> RUNNING: starts the I/O thread and releases the vCPUs into the
 * guest. Errors: -EALREADY (not CREATED), -EAGAIN/-ENOMEM (no thread), an
 * errno of the vCPU layer (the VM is then STOPPED with EMBER_STOP_ERROR).
 */
int ember_vm_start(struct ember_vm *vm);

/*
 * RUNNING -> PAUSED. Returns when every vCPU is out of the guest with any
 * half-done port or MMIO access completed, and the devices are quiesced: the
 * I/O thread does no device work (console input is held, the UART's held
 * output is not released; output the guest already wrote may still drain to
 * the console fd). The in-kernel timers' clock is not stopped: a guest sees
 * the paused time pass. Errors: see the lifecycle table.
 */
int ember_vm_pause(struct ember_vm *vm);

/* PAUSED -> RUNNING: the devices resume, then the vCPUs continue exactly
 * where they stopped. Errors: see the lifecycle table. */
int ember_vm_resume(struct ember_vm *vm);

/*
 * Stops the VM (RUNNING or PAUSED: reason EMBER_STOP_REQUESTED unless the
 * guest had already ended; CREATED: straight to STOPPED with
 * EMBER_STOP_REQUESTED) and waits until it is STOPPED. Returns 0. Bounded:
 * the I/O thread drains console output only while the reader takes it (it
 * gives up after 250 ms without progress).
 */
int ember_vm_stop(struct ember_vm *vm);

/*
 * Waits until the VM is STOPPED, at most timeout_ms milliseconds (< 0:
 * forever; 0: just look), on CLOCK_MONOTONIC; then fills *res (may be NULL)
 * and returns 0. -ETIMEDOUT when it is still running or paused; -EINVAL in
 * CREATED. Any number of threads may wait.
 */
int ember_vm_wait(struct ember_vm *vm, int timeout_ms, struct ember_run_result *res);

/*
 * ember_vm_start + ember_vm_wait(forever): runs the guest until it stops;
 * fills *res. Returns 0 when the guest stopped for any reason in enum
 * ember_stop_reason (including EMBER_STOP_ERROR for a failure after the
 * guest started), or a negative errno when the VM could not start
 * (-EALREADY: it was started before).
 */
int ember_vm_run(struct ember_vm *vm, struct ember_run_result *res);

/*
 * Resets the machine in place, as a guest reboot does with the
 * configuration's "reboot" = restart (`ember run --reboot restart`; the
 * default, exit, ends the run with EMBER_STOP_REBOOT instead). Asynchronous:
 * returns once the request is recorded; the VM's I/O thread then
 *   1. pauses every vCPU (half-done I/O completed),
 *   2. drains the devices' I/O in flight and resets every device (virtio
 *      devices to Status 0, their queues dropped: the guest's drivers set
 *      them up again; the UART, RTC, i8042... to their power-on state),
 *   3. puts the in-kernel interrupt controllers, the PIT and every vCPU
 *      (registers, MSRs but the TSC, LAPIC, XCR0, MP state) back to what
 *      they were before the first run (the FPU/XSAVE contents and the
 *      hypervisor's pending-event state are not saved by the vCPU layer
 *      yet, so they are left: the kernel booting initialises the FPU),
 *   4. discards guest RAM (it reads as zeros) and loads the kernel, initrd,
 *      command line, boot parameters and ACPI tables again,
 *   5. lets the vCPUs run (unless the VM was paused meanwhile: then it stays
 *      PAUSED and ember_vm_resume boots it; the same for
 *      ember_vm_pause_vcpus and ember_vm_resume_vcpus), and tells the
 *      listeners (EMBER_VM_EVENT_POWER "reset").
 * The VM stays RUNNING throughout (or PAUSED); disks stay open and locked,
 * taps and sockets stay; ember_vm_query's resets counts the resets done. A
 * reset that fails (e.g. the kernel file went away) stops the VM with
 * EMBER_STOP_ERROR and the reason. Requests made before a reset began are
 * all served by it. Any thread (not async-signal-safe: it may log).
 * Errors: -EINVAL (NULL vm, CREATED: nothing ran yet), -ESRCH (STOPPED or
 * stopping).
 */
int ember_vm_reset(struct ember_vm *vm);

/*
 * Seccomp (configuration key "seccomp" = kill, the default, log or off):
 * every thread the VM runs loads its own syscall filter at its start (the
 * vCPU threads, the I/O thread; docs/SECURITY.md lists what each allows).
 * This call confines the CALLING thread too, with the main-thread list:
 * enough to wait for the VM, stop it, take signals, print, restore a
 * terminal, destroy the VM and exit, and nothing else (no open, no exec, no
 * new thread, no new VM). For a front end such as `ember run` that, once
 * the VM runs, does only that. Call it after ember_vm_start (threads made
 * afterwards by this thread inherit the filter). The filter cannot be
 * removed. 0 with nothing done when the mode is off; -EINVAL (NULL, a VM
 * not started) or the kernel's error; err says why.
 */
int ember_vm_seccomp_confine_caller(struct ember_vm *vm, struct ember_error *err);

/* Asks the VM to stop without waiting (ember_vm_wait/run then return with
 * EMBER_STOP_REQUESTED). Async-signal-safe; callable from any thread; before
 * ember_vm_start it makes the VM stop as soon as it starts. */
void ember_vm_request_stop(struct ember_vm *vm);

/* The console's terminal has a new size (e.g. on SIGWINCH): with
 * --console virtio the guest's hvc0 is told (VIRTIO_CONSOLE_F_SIZE, when
 * the console was a terminal at start); ttyS0 has no such thing. Only the
 * latest size counts; the VM's I/O thread passes it on (after a resume, if
 * paused). Async-signal-safe; callable from any thread. Returns 0, or
 * -EINVAL (vm NULL, cols or rows 0 or above 65535). */
int ember_vm_console_resize(struct ember_vm *vm, unsigned cols, unsigned rows);

/* What ember_vm_query reports about the VM. */
struct ember_vm_info {
	enum ember_vm_state state;
	unsigned vcpus;			/* number of vCPUs */
	uint64_t mem_size;		/* guest RAM in bytes */
	uint64_t console_bytes_out;	/* console bytes written to console_out */
	uint64_t console_bytes_dropped; /* lost because console_out failed */
	uint64_t console_bytes_pending; /* buffered, waiting for console_out */
	unsigned resets;		/* machine resets done (ember_vm_reset) */
};
/* Fills *info. Any thread, any state. -EINVAL for NULL. */
int ember_vm_query(struct ember_vm *vm, struct ember_vm_info *info);

/* Exit reason counters kept per vCPU (indexes for ember_vcpu_info.exits). */
#define EMBER_VCPU_EXIT_KINDS 32
struct ember_vcpu_info {
	int tid;			       /* the vCPU thread's Linux thread id (gettid) */
	uint64_t exits_total;		       /* exits since creation */
	uint64_t exits[EMBER_VCPU_EXIT_KINDS]; /* per reason, see ember_vcpu_exit_name */
};
/* Fills *info for vCPU idx (0..vcpus-1). Any thread, any state; the
 * counters are read while the vCPU runs (each is exact, the set is not a
 * snapshot). -EINVAL for NULL or a bad idx. */
int ember_vm_query_vcpu(struct ember_vm *vm, unsigned idx, struct ember_vcpu_info *info);
/* The name of exit counter kind ("io-write", "mmio-read", "hlt", ...), NULL
 * for an index that counts nothing. */
const char *ember_vcpu_exit_name(unsigned kind);

struct ember_loop; /* include/ember/loop.h */
/*
 * The VM's event loop, for callers that add their own fds, timers or
 * wake-ups: their callbacks run on the VM's I/O thread, from ember_vm_start
 * until the VM is STOPPED (not before, not after). Valid until
 * ember_vm_destroy; remove your sources before it. NULL for NULL.
 */
struct ember_loop *ember_vm_loop(struct ember_vm *vm);

/*
 * Formats the registers of every vCPU as captured when the VM stopped (one
 * block per vCPU), snprintf style. Meaningful once STOPPED; returns 0 ("")
 * if no registers were captured.
 */
int ember_vm_format_registers(const struct ember_vm *vm, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * Device controls at run time
 * ------------------------------------------------------------------------
 * Devices are named as in the device list (--dry-run): "disk0", "disk1"
 * (the --disk options in order), "rng0", "balloon0", "net0". These calls
 * may be made from any thread, in any state from ember_vm_create until
 * ember_vm_destroy, concurrently with each other and with the lifecycle
 * calls; the change is made under the device's lock and takes effect for
 * the next request the device takes.
 */

/*
 * A device's rate limit: two token buckets (as Firecracker's rate limiter),
 * one counting bytes (a disk: its requests' data bytes; the entropy source:
 * the bytes it gives), one counting operations (requests). Each refills at
 * its rate and holds at most its burst (0: one second's worth, the rate);
 * both start full. A device takes a request only while both buckets have a
 * token and charges its whole cost, so a request larger than the bucket is
 * still served (the bucket then owes the difference, and waits). Over T
 * seconds a device serves at most burst + rate * T (+ one request). A rate
 * of 0 is unlimited; a burst without its rate is invalid.
 * On the command line: bw=BYTES[/s], bw-burst=BYTES, ops=N[/s],
 * ops-burst=N sub-options of --disk and --rng (K/M/G/T suffixes, powers of
 * 1024).
 */
struct ember_rate_limit {
	uint64_t bytes_per_sec; /* 0: no bandwidth limit */
	uint64_t bytes_burst;	/* bucket size in bytes; 0: bytes_per_sec */
	uint64_t ops_per_sec;	/* 0: no operation limit */
	uint64_t ops_burst;	/* bucket size in requests; 0: ops_per_sec */
};

/*
 * Replaces the rate limit of a device (its buckets restart full), and lets
 * a device that was waiting for tokens look at its queues again at once.
 * device: "disk0", "rng0", ...; a device with a limiter per direction
 * (net) takes "net0.rx" or "net0.tx" for one of them, "net0" for both.
 * Errors (err says which): -EINVAL (NULL argument, a burst without its
 * rate), -ENODEV (no such device), -EOPNOTSUPP (the device has no rate
 * limiter, e.g. the balloon).
 */
int ember_vm_set_rate_limit(struct ember_vm *vm, const char *device,
			    const struct ember_rate_limit *limit, struct ember_error *err);
/* The rate limit in force (bursts resolved: never 0 with a rate). Errors:
 * as ember_vm_set_rate_limit, and -EINVAL when the name covers two limiters
 * ("net0": name the direction). */
int ember_vm_get_rate_limit(struct ember_vm *vm, const char *device, struct ember_rate_limit *out,
			    struct ember_error *err);

/*
 * The balloon (--balloon; the first one if several). The target is what
 * the host asks the guest to give up; the guest's driver inflates (gives
 * pages back: the VMM's resident memory shrinks) or deflates towards it in
 * its own time, and says how much it holds (actual_bytes).
 *
 * ember_vm_balloon_set_target sets the target in bytes, rounded down to
 * 4 KiB pages, and interrupts the driver (configuration change). 0
 * deflates it all. While the VM is paused the guest sees the change when
 * it resumes. Errors: -EINVAL (NULL vm, more than the guest's memory),
 * -ENODEV (no balloon).
 */
int ember_vm_balloon_set_target(struct ember_vm *vm, uint64_t bytes, struct ember_error *err);

/* Indexes of ember_balloon_stats.guest: the guest's own numbers (VIRTIO 1.2
 * 5.5.6.3), in bytes except the event counts. */
enum ember_balloon_guest_stat {
	EMBER_BALLOON_SWAP_IN = 0,  /* bytes swapped in */
	EMBER_BALLOON_SWAP_OUT,	    /* bytes swapped out */
	EMBER_BALLOON_MAJOR_FAULTS, /* count */
	EMBER_BALLOON_MINOR_FAULTS, /* count */
	EMBER_BALLOON_FREE_MEMORY,
	EMBER_BALLOON_TOTAL_MEMORY,
	EMBER_BALLOON_AVAILABLE_MEMORY,
	EMBER_BALLOON_DISK_CACHES,
	EMBER_BALLOON_HUGETLB_ALLOCATIONS, /* count */
	EMBER_BALLOON_HUGETLB_FAILURES,	   /* count */
	EMBER_BALLOON_GUEST_STATS
};
struct ember_balloon_stats {
	uint64_t target_bytes;	   /* the host's target */
	uint64_t actual_bytes;	   /* what the driver says the balloon holds */
	uint64_t inflated_bytes;   /* pages the driver put in the balloon, ever */
	uint64_t deflated_bytes;   /* pages it took back, ever */
	uint64_t reported_bytes;   /* free pages the guest reported, ever */
	uint64_t given_back_bytes; /* of those, given back to the host (madvise), ever */
	/* The guest's statistics: guest_valid has bit 1 << i for each
	 * guest[i] the driver has sent (0: none yet, or stats not negotiated). */
	uint32_t guest_valid;
	uint64_t guest[EMBER_BALLOON_GUEST_STATS];
	uint64_t guest_updates; /* statistics messages received */
};
/*
 * Fills *out with the balloon's counts and the last statistics the guest
 * sent, and asks the guest for fresh ones (they arrive asynchronously,
 * within the driver's reaction time: call again to see them;
 * guest_updates counts arrivals). Errors: -EINVAL (NULL), -ENODEV (no
 * balloon).
 */
int ember_vm_balloon_stats(struct ember_vm *vm, struct ember_balloon_stats *out,
			   struct ember_error *err);

/* ------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------
 * A snapshot is a directory: a text manifest ("manifest": format version,
 * 2 since 2026-12-06, whose states time the TSC and clock readings; this
 * Ember restores versions 1 and 2,
 * the host CPU's identity, each part's size and CRC-32 (zlib's crc32), the
 * disks' sizes), the configuration ("config"), the VM's and every vCPU's
 * hypervisor state ("vm.state", "vcpuN.state"), the devices' state
 * ("devices.state"), and guest memory ("memory", a sparse file as large as
 * guest RAM: only the pages the guest touched are written, found with
 * /proc/self/pagemap for anonymous memory (every page is read where /proc
 * is not mounted, as in `ember run --jail`) and SEEK_DATA for a memfd, and
 * all-zero pages are left out too; "pages" is the bitmap of the pages the
 * file holds). It is written in a temporary directory beside dir and
 * renamed to dir at the end: dir either appears whole or not at all.
 */
#define EMBER_SNAPSHOT_RESUME 0x1u /* resume the guest after saving (default: stay paused) */
/* only the pages written since the snapshot in base_dir, which must be this
 * VM's last one; restoring it layers it over its base (which must stay) */
#define EMBER_SNAPSHOT_INCREMENTAL 0x2u

struct ember_snapshot_opts {
	unsigned flags;	      /* EMBER_SNAPSHOT_* */
	const char *base_dir; /* EMBER_SNAPSHOT_INCREMENTAL: its base snapshot */
};

/*
 * Saves the VM into the new directory dir (its parent must exist; dir must
 * not). A RUNNING VM is paused first (as ember_vm_pause: half-done exits
 * completed, virtio quiesced, no disk I/O in flight) and stays PAUSED unless
 * opts asks EMBER_SNAPSHOT_RESUME; a PAUSED VM stays paused. opts may be
 * NULL (a full snapshot, stay paused). From the first snapshot on, the VM's
 * RAM logs the pages the guest writes (KVM's dirty log: a write-protect
 * fault on the first write to each page after a snapshot) so that an
 * incremental can follow. Any thread but the VM's own (the lifecycle calls
 * made meanwhile wait until it is saved). Errors (err says which, nothing is
 * left at dir, and a VM that was running runs on): -EINVAL (NULL, a VM not
 * started or a wrong base), -ESRCH
 * (STOPPED), -EEXIST (dir exists), -ENOSYS (a part the hypervisor or a
 * device cannot save), and the errno of a failed write (-ENOSPC, ...).
 */
int ember_vm_snapshot(struct ember_vm *vm, const char *dir, const struct ember_snapshot_opts *opts,
		      struct ember_error *err);

/* Verify guest memory's checksum too (reads every saved page: no longer lazy). */
#define EMBER_RESTORE_VERIFY_MEMORY 0x1u
/* guest memory served by the userfaultfd page server from the memory file
 * (its own thread puts each page in place at the first touch by the guest,
 * a device or KVM) instead of mapped from it privately; for anonymous or
 * memfd memory without hugepages (-EOPNOTSUPP otherwise), and the VMM
 * needs userfaultfd (-EPERM otherwise). Such a VM can swap (ember_vm_swap);
 * its snapshot reads every page in first. */
#define EMBER_RESTORE_UFFD 0x2u
/* guest memory read from the memory file (its saved pages only) into fresh
 * anonymous memory with transparent huge pages before any vCPU runs,
 * instead of mapped from it privately: the restore itself takes longer
 * (the reading), the guest then runs without first-touch faults on the
 * file, and the hypervisor can map its memory in 2 MiB pages; the memory
 * file may then be removed or replaced. Not with EMBER_RESTORE_UFFD
 * (-EINVAL). */
#define EMBER_RESTORE_COPY 0x4u

/* A restored device's host side given anew, so that clones of one snapshot
 * can run at once, each with its own: kind "disk" (path=: a copy of the
 * image as it was when the snapshot was taken, of the same size), "net"
 * (tap= or fd=) or "vsock" (socket=); index: the device among those of its
 * kind, 0 for the first (--disk order); spec: "key=value,..." with only
 * those keys (what the guest sees, a serial, a MAC, a CID, stays as saved).
 * The strings are the caller's; read during ember_vm_restore only. */
struct ember_restore_device {
	const char *kind;
	unsigned index;
	const char *spec;
};

/* Parses text "[N,]KEY=VALUE,..." (N: the device's index, 0..1000, 0 when
 * not given) into *out for kind (borrowed, as text: out->spec points into
 * it), as `ember run --restore-disk|net|vsock` and the control protocol's
 * restore request take it. -EINVAL for an N that is not a number up to
 * 1000 followed by a comma, or NULL arguments. */
int ember_restore_device_parse(const char *kind, const char *text,
			       struct ember_restore_device *out);

struct ember_restore_opts {
	unsigned flags;		     /* EMBER_RESTORE_* */
	int console_in, console_out; /* the restored VM's console fds (-1: none) */
	ember_log_fn log;	     /* NULL: no log; else every message, debug included */
	void *log_opaque;
	struct ehv_hypervisor *hyp; /* NULL: open /dev/kvm (else as ember_vm_create_on) */
	const struct ember_restore_device *devices; /* ndevices of them, or NULL */
	unsigned ndevices;
	/* NULL, or what ember_vm_ahead_make made before the snapshot was known:
	 * the restore takes it whatever it returns (the caller neither frees nor
	 * reuses it); hyp must then be NULL (it is the ahead's hypervisor) */
	struct ember_vm_ahead *ahead;
};

/*
 * A VM made ahead of its restore: the hypervisor opened and its VM made
 * (KVM_CREATE_VM: 15 ms in the KVM sandbox, most of it waiting for an RCU
 * grace period while Linux moves the VM's NX huge page recovery thread into
 * the caller's cgroups) before the snapshot to restore is known, as a VMM
 * started ahead of its restore request does (`ember run
 * --restore-on-request`). ember_vm_restore takes it through
 * ember_restore_opts.ahead. hyp: the hypervisor to make it on, borrowed
 * (it must outlive the restored VM), or NULL to open /dev/kvm (then owned:
 * the restored VM closes it). Any thread. Errors (err says which): -ENOMEM,
 * the errno of opening /dev/kvm or of making the VM.
 */
struct ember_vm_ahead;
int ember_vm_ahead_make(struct ehv_hypervisor *hyp, struct ember_vm_ahead **out,
			struct ember_error *err);
/* Frees one that no restore took (its VM, and its hypervisor if it opened
 * it). NULL is allowed. */
void ember_vm_ahead_free(struct ember_vm_ahead *a);

/*
 * Builds a VM from the snapshot in dir. Everything that can be checked is
 * checked first, before anything is built: the manifest (format version,
 * truncation, each part's CRC-32; the memory file's size, and with
 * EMBER_RESTORE_VERIFY_MEMORY its pages' CRC-32), the host CPU (its identity
 * must equal the saved one), every disk image's size. Then the VM is built
 * from the saved configuration (its kernel and initrd are not read: the
 * memory holds them) with guest memory mapped from the memory file
 * privately (copy-on-write; nothing is read until the guest touches it;
 * or as EMBER_RESTORE_UFFD or EMBER_RESTORE_COPY ask), an
 * incremental's pages copied over its base's, and the devices', VM's and
 * vCPUs' states loaded; the VM Generation ID changes. *out is then a VM in
 * state CREATED, ready for ember_vm_start, which continues the guest where
 * the snapshot left it. opts may be NULL (no console, no log). The
 * snapshot's files may be removed once ember_vm_restore returns, but for
 * the memory file, which is mapped (with EMBER_RESTORE_COPY it may go too). Errors (err names the part; no VM is
 * left behind): -EINVAL (a malformed, truncated or corrupt part: a
 * checksum), -EPROTO (a format version this Ember does not read), -ENOTSUP (a CPU or feature
 * this host lacks), -ESTALE (a disk image changed size), -ENOENT (a missing
 * part, or opts->devices names a device the snapshot lacks), -EINVAL also
 * for an opts->devices entry that changes more than the host side, and
 * ember_vm_create's errors (a disk image another VM holds: -EBUSY).
 */
int ember_vm_restore(const char *dir, const struct ember_restore_opts *opts, struct ember_vm **out,
		     struct ember_error *err);

/* ------------------------------------------------------------------------
 * Swap: guest memory written out to a file and served back on demand
 * ------------------------------------------------------------------------
 * crosvm's SwapCommand vocabulary, on a userfaultfd page server (a thread
 * of the VMM that puts each absent page in place when the guest, a device
 * or KVM touches it):
 *   ENABLE   registers guest RAM with the page server (state READY).
 *   OUT      pauses the VM (vCPUs and devices, as ember_vm_pause), writes
 *            every resident page to the swap file (an unlinked, owner-only
 *            file in dir, or $XDG_RUNTIME_DIR, $TMPDIR, /tmp; all-zero pages
 *            left as holes), releases them from host RAM (MADV_DONTNEED, or a
 *            hole punched in a memfd) and resumes a VM that was running
 *            (state SWAPPED_OUT). The guest's next touch of a page reads it
 *            back from the file. May be repeated.
 *   TRIM     crosvm's drops pages from its staging memory; Ember has none
 *            (OUT writes straight to the file): -ENOTSUP.
 *   DISABLE  brings every page back from the swap file and unregisters
 *            (state DISABLED).
 *   STATUS   only fills *st.
 * Guest RAM must be anonymous or a memfd without hugepages, not mapped
 * from a snapshot file (a --restore-memory=map restore): -EOPNOTSUPP.
 * The VMM needs userfaultfd for kernel faults too (root, CAP_SYS_PTRACE,
 * vm.unprivileged_userfaultfd=1 or /dev/userfaultfd): else -EPERM.
 * A snapshot of a VM with pages swapped out brings them back first.
 * st (may be NULL) gets the state and counters after the command. Any
 * thread but the VM's own; the calls are serialised. 0, or -EINVAL (NULL
 * vm, unknown command, ENABLE twice, OUT or DISABLE when not enabled, a
 * VM not started or stopped), -ENOTSUP, -EOPNOTSUPP, -EPERM, or the errno
 * of the swap file's writing; err says which.
 */
enum ember_swap_command {
	EMBER_SWAP_ENABLE = 0,
	EMBER_SWAP_TRIM,
	EMBER_SWAP_OUT,
	EMBER_SWAP_DISABLE,
	EMBER_SWAP_STATUS,
};
enum ember_swap_state {
	EMBER_SWAP_DISABLED = 0,
	EMBER_SWAP_READY,	/* enabled, nothing swapped out yet */
	EMBER_SWAP_SWAPPED_OUT, /* pages were swapped out (some may be back) */
};
struct ember_swap_status {
	enum ember_swap_state state;
	uint64_t faults;	 /* page faults served since enable */
	uint64_t bytes_in;	 /* bytes copied back in (faults and disable) */
	uint64_t zero_pages;	 /* faults answered with a zero page */
	uint64_t errors;	 /* pages whose source could not be read */
	uint64_t last_out_pages; /* pages the last OUT released */
	uint64_t out_pages;	 /* pages every OUT released */
	uint64_t swapped_pages;	 /* pages still in the swap file only */
	uint64_t page_size;	 /* 4096 */
};
int ember_vm_swap(struct ember_vm *vm, enum ember_swap_command cmd, const char *dir,
		  struct ember_swap_status *st, struct ember_error *err);

/*
 * The VM Generation ID the guest sees (16 bytes, an ACPI \_SB.VGEN device
 * with _HID "VMGENCTR" and _CID "VM_GEN_COUNTER", which Linux's vmgenid
 * driver reads): random at ember_vm_create, new at every ember_vm_restore,
 * so two clones of one snapshot differ. Any thread. 0, or -EINVAL.
 */
int ember_vm_generation_id(struct ember_vm *vm, uint8_t id[16]);

/* ------------------------------------------------------------------------
 * Guest-visible control actions (ACPI events, the RTC, disk resize, NIC
 * hotplug)
 * ------------------------------------------------------------------------
 * Ember's board is ACPI hardware-reduced: events reach the guest through an
 * ACPI Generic Event Device (_HID ACPI0013, Linux's evged driver) whose
 * _EVT method reads the event register of the board's GED and dispatches:
 * the power button (\_SB.PWRB, PNP0C0C) and sleep button (\_SB.SLPB,
 * PNP0C0E) get Notify(0x80), which Linux's button driver (button.ko)
 * turns into KEY_POWER / KEY_SLEEP (systemd-logind powers off on
 * KEY_POWER); GPE-style event n runs the DSDT's handler for n.
 *
 * Each call may be made from any thread while the VM exists (created,
 * running or paused; a paused guest sees the event when it resumes).
 * Events of one kind coalesce until the guest's _EVT has read them (like a
 * button pressed twice before the OS looked). Errors, err set: -EINVAL
 * (NULL vm), -ENODEV "no such device on this VM" where the VM has no such
 * device, and the ones each call lists.
 */

/* Presses the ACPI power button (Notify(\_SB.PWRB, 0x80)). */
int ember_vm_power_button(struct ember_vm *vm, struct ember_error *err);
/* Presses the ACPI sleep button (Notify(\_SB.SLPB, 0x80)). Ember cannot
 * suspend a guest (no S3): the guest's answer to it is its own. */
int ember_vm_sleep_button(struct ember_vm *vm, struct ember_error *err);
/* The DSDT's GPE-style event numbers (EMBER_GPE_COUNT of them, 0 up) */
#define EMBER_GPE_COUNT 8
/*
 * Delivers GPE-style event n: the GED's _EVT calls the DSDT's handler for
 * it (\_SB.GED_.Gnnn), which acknowledges it to the VMM (counted in
 * ember_acpi_stats.gpe_handled[n]). -ENOENT for an n the DSDT has no
 * handler for (n >= EMBER_GPE_COUNT).
 */
int ember_vm_inject_gpe(struct ember_vm *vm, unsigned n, struct ember_error *err);

/* What the guest did with the events (counts since ember_vm_create). */
struct ember_acpi_stats {
	uint64_t power_button; /* presses injected */
	uint64_t sleep_button;
	uint64_t gpe[EMBER_GPE_COUNT];	       /* GPE events injected */
	uint64_t evt_reads;		       /* reads of the event register by _EVT */
	uint64_t gpe_handled[EMBER_GPE_COUNT]; /* the DSDT's GPE handler ran */
};
/* Fills *out. -EINVAL (NULL), -ENODEV (no GED on this VM). Any thread. */
int ember_vm_acpi_stats(struct ember_vm *vm, struct ember_acpi_stats *out, struct ember_error *err);

/*
 * An RTC interrupt: the CMOS RTC's alarm and update-ended flags (register C
 * AF and UF) are set now, as if the alarm second had come, and IRQ 8 is
 * raised for each of them the guest enabled (register B AIE, UIE). Returns
 * 1 when the interrupt was raised, 0 when the guest enabled neither (the
 * flags wait in register C, as on the real chip), -ENODEV (no RTC).
 */
int ember_vm_rtc_interrupt(struct ember_vm *vm, struct ember_error *err);

/*
 * Resizes disk `index` (the --disk options in order: disk0...) to bytes, a
 * multiple of 512: the image file is grown with ftruncate (sparse) and
 * virtio-blk's capacity follows, with a configuration change interrupt, so
 * the guest sees the new size without a reboot (Linux: "new size", and
 * /sys/block/vdX/size). Shrinking is refused (-EINVAL): data the guest may
 * use would be cut off under it. Resizing to the current size is a no-op.
 * Errors: -EINVAL (not a multiple of 512, smaller than now), -EROFS (a
 * read-only disk), -ENODEV (no disk `index`), -EFBIG or another errno of
 * ftruncate (nothing changed).
 */
int ember_vm_disk_resize(struct ember_vm *vm, unsigned index, uint64_t bytes,
			 struct ember_error *err);

/*
 * virtio-net hotplug: a running VM configured with hotplug slots (config
 * key "hotplug-slots") gains a NIC described as --net's argument (tap=NAME
 * or fd=N, mac=MAC) in a free slot (*slot receives it); the guest is told
 * through the GED (ACPI bus check) and scans it. Remove makes the slot's
 * _STA read 0 and tells the guest (a bus check again); the slot is free once
 * the guest's driver let go of the card (reset it, status 0), waited for up
 * to 10 s a call (-EBUSY after that: call again). Linux 6.1 does not remove
 * an ACPI-enumerated platform device by itself: its user space unbinds
 * virtio-mmio from it (e.g. a udev rule on the slot's status), as
 * tests/e2e/init.sh does. Errors: -ENODEV (no hotplug slots on this VM, or
 * nothing in that slot), -ENOSPC (every slot taken), -EINVAL (a bad spec),
 * and the errors of --net (the tap).
 */
int ember_vm_net_hotplug_add(struct ember_vm *vm, const char *spec, unsigned *slot,
			     struct ember_error *err);
int ember_vm_net_hotplug_remove(struct ember_vm *vm, unsigned slot, struct ember_error *err);

/* ------------------------------------------------------------------------
 * vCPU-only pause, vCPU threads and events (the control plane, ctl.h)
 * ------------------------------------------------------------------------ */

/*
 * Pauses or resumes only the vCPUs of a RUNNING VM: the devices and the
 * I/O thread go on (a disk request in flight completes, console output
 * drains, the balloon's statistics still come). The VM's state stays
 * RUNNING; ember_vm_vcpus_paused() tells. ember_vm_pause/resume act on the
 * whole VM whatever this says; ember_vm_resume also resumes vCPUs paused
 * here. Errors: -EINVAL (NULL, or CREATED), -ESRCH (STOPPED or stopping),
 * -EBUSY (the whole VM is PAUSED: resume it with ember_vm_resume).
 * 0 when already in the asked state. Any thread.
 */
int ember_vm_pause_vcpus(struct ember_vm *vm);
int ember_vm_resume_vcpus(struct ember_vm *vm);
/* True while the vCPUs are paused by ember_vm_pause_vcpus (false for NULL). */
bool ember_vm_vcpus_paused(struct ember_vm *vm);

/* vCPU idx's thread id (gettid; the /proc/PID/task/TID entry), fixed from
 * ember_vm_create to ember_vm_destroy. Any thread. -EINVAL for NULL or a
 * bad idx. */
int ember_vm_vcpu_tid(struct ember_vm *vm, unsigned idx, pid_t *tid);

enum ember_vm_event_kind {
	EMBER_VM_EVENT_STATE = 0, /* the state changed: ev->state, ev->vcpus_paused */
	EMBER_VM_EVENT_EXIT,	  /* the VM stopped: ev->result (after the STATE event) */
	EMBER_VM_EVENT_BALLOON,	  /* the balloon's size moved: ev->balloon_* */
	EMBER_VM_EVENT_POWER,	  /* the guest's power state: ev->power */
	EMBER_VM_EVENT_KINDS
};
struct ember_vm_event {
	enum ember_vm_event_kind kind;
	enum ember_vm_state state; /* STATE: the new state (every kind: the current one) */
	bool vcpus_paused;	   /* STATE: ember_vm_pause_vcpus in force */
	const struct ember_run_result *result; /* EXIT: why it stopped; else NULL */
	uint64_t balloon_actual_bytes;	       /* BALLOON: what the guest holds now */
	uint64_t balloon_target_bytes;	       /* BALLOON: the host's target */
	bool balloon_oom;		       /* BALLOON: the guest deflated on its own (OOM) */
	const char *power; /* POWER: "poweroff", "reboot", "reset" (the machine was reset in
			      place: ember_vm_reset), "sleep", "wake", ...; else NULL */
};
/* Called on the thread that made the change (a lifecycle caller, the I/O
 * thread, a vCPU thread), one event at a time for a VM (calls are
 * serialised); *ev is valid during the call only. A listener must not
 * block, and must not call ember_vm_add/remove_event_listener nor a
 * lifecycle call of the same VM (it would deadlock). */
typedef void (*ember_vm_event_fn)(const struct ember_vm_event *ev, void *opaque);
#define EMBER_VM_MAX_LISTENERS 16
/*
 * Adds a listener (fn, opaque): it gets every event from now on, in order,
 * until removed. Any thread, any state until ember_vm_destroy. Errors:
 * -EINVAL (NULL vm or fn), -EEXIST (that pair is registered),
 * -ENOSPC (EMBER_VM_MAX_LISTENERS already).
 */
int ember_vm_add_event_listener(struct ember_vm *vm, ember_vm_event_fn fn, void *opaque);
/* Removes it; when this returns, fn is not running and will not be called
 * again for that opaque. -EINVAL (NULL), -ENOENT (not registered). */
int ember_vm_remove_event_listener(struct ember_vm *vm, ember_vm_event_fn fn, void *opaque);
/* Name of an event kind ("state", "exit", "balloon", "power"), NULL past the last. */
const char *ember_vm_event_kind_name(enum ember_vm_event_kind kind);
/* Name of a state ("created", "running", "paused", "stopped"). */
const char *ember_vm_state_name(enum ember_vm_state state);

/* Stops the VM if it runs (as ember_vm_stop, bounded the same way, also
 * with a console reader that stopped reading), then frees it and everything
 * it owns. NULL is allowed. Must be the last call on vm (see
 * Thread-safety). */
void ember_vm_destroy(struct ember_vm *vm);

/*
 * ember_vm_create + ember_vm_run + ember_vm_destroy: boots the guest and
 * returns when it stops, with *res filled (0), or a negative errno when the
 * VM could not be built or started (err says why). The crash register dump
 * is not kept: use the three calls to get it.
 */
int ember_run(const struct ember_config *cfg, struct ember_run_result *res,
	      struct ember_error *err);

/* Name of a stop reason ("poweroff", "reboot", "crash", "stopped", "error",
 * "panic", "halted"). */
const char *ember_stop_reason_name(enum ember_stop_reason reason);
/* Exit status `ember run` uses for a stop reason (EMBER_EXIT_*). */
int ember_stop_reason_exit_status(enum ember_stop_reason reason);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_VMM_H */
