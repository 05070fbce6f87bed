/* cli/main.c - the `ember` command: a thin front on the VMM library (ember run). */
#include <ember/ctl.h>
#include <ember/vmm.h>

#include "ctl.h"
#include "jail.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ the terminal */

/* Raw mode is set only when stdin is a terminal we own (foreground), and
 * restored on every exit path: normal return, exit(), and every signal
 * that ends the process (the handlers restore it, then die by the signal). */
static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;
static struct ember_vm *volatile running_vm;

static void tty_restore(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_saved = 0;
	}
}

static void tty_raw(void)
{
	if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp())
		return;
	struct termios t;
	if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return;
	t = saved_tio;
	cfmakeraw(&t);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	tio_saved = 1;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
		tio_saved = 0;
}

/* SIGINT, SIGTERM, SIGHUP, SIGQUIT: stop the VM cleanly; ember_vm_run then
 * returns and main restores the terminal. A second one ends the process,
 * unless it came within STOP_SAME_NS of the first: coreutils' timeout
 * signals ember and then its whole process group, and a shell's Ctrl-C
 * reaches every process of the job, so one request often arrives twice. */
#define STOP_SAME_NS 1000000000ll
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t waiting_restore; /* --restore-on-request, no VM yet */
static struct timespec stop_first;	      /* when the first stop signal came */
static void on_stop_signal(int sig)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now); /* async-signal-safe */
	if (stop_signal) { /* also after the run returned: the request is being served */
		long long dt = (long long)(now.tv_sec - stop_first.tv_sec) * 1000000000ll +
			       (now.tv_nsec - stop_first.tv_nsec);
		if (dt >= 0 && dt < STOP_SAME_NS)
			return; /* the same request */
	}
	if (waiting_restore) { /* main stops the waiting server and exits */
		stop_first = now;
		stop_signal = sig;
		return;
	}
	if (stop_signal || !running_vm) {
		tty_restore();
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_first = now;
	stop_signal = sig;
	ember_vm_request_stop(running_vm);
}

/* The terminal was resized: the guest's hvc0 is told (--console virtio). */
static void on_winch(int sig)
{
	(void)sig;
	int e = errno;
	struct winsize ws;
	struct ember_vm *vm = running_vm;
	if (vm && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		(void)ember_vm_console_resize(vm, ws.ws_col, ws.ws_row); /* async-signal-safe */
	errno = e;
}

/* Crashes of the VMM itself: restore the terminal, then die as usual. */
static void on_fatal_signal(int sig)
{
	tty_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal;
	int stops[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		sigaddset(&sa.sa_mask, stops[i]); /* one stop handler at a time */
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		sigaction(stops[i], &sa, NULL);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_fatal_signal;
	sa.sa_flags = SA_RESETHAND;
	int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_winch;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGWINCH, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	signal(SIGTTIN, SIG_IGN); /* a background run does not read the terminal */
}

/* stdin is a terminal whose foreground process group is not ours: `ember
 * run &` from an interactive shell. Reading it would stop the process
 * (SIGTTIN) at the first keystroke; such a run leaves the terminal alone. */
static bool stdin_tty_in_background(void)
{
	if (!isatty(STDIN_FILENO))
		return false;
	pid_t fg = tcgetpgrp(STDIN_FILENO);
	return fg >= 0 && fg != getpgrp();
}

/* ------------------------------------------------------------ messages */

static enum ember_log_level log_level = EMBER_LOG_INFO;

/* One line on stderr; "\r\n" while the terminal is raw. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "ember: %s%s", line, tio_saved ? "\r\n" : "\n");
	fflush(stderr);
}

static void on_log(void *opaque, enum ember_log_level level, const char *msg)
{
	(void)opaque;
	static const char *const prefix[] = {"error: ", "warning: ", "", "debug: "};
	if (level <= log_level)
		say("%s%s", prefix[level <= EMBER_LOG_DEBUG ? level : EMBER_LOG_DEBUG], msg);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ember run [OPTIONS]     boot a Linux guest (ember run --help)\n"
		   "       ember version           print the version\n"
		   "       ember help              this text\n");
	cli_ctl_usage(f);
}

/* `ember run --socket PATH|NAME`: taken out of the arguments before the
 * configuration parses them (the control socket is the CLI's, not the
 * configuration's). Returns 0, or -1 for a --socket without a value. */
static int take_socket_arg(int *argc, char **argv, const char **sock)
{
	int out = 0;
	for (int i = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--socket")) {
			if (i + 1 >= *argc)
				return -1;
			*sock = argv[++i];
		} else if (!strncmp(argv[i], "--socket=", 9)) {
			*sock = argv[i] + 9;
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	return 0;
}

/* ------------------------------------------------------------ ember run */

/* One scheme (ember(1)): 2 for values that cannot work (a bad option value,
 * too little --mem for the kernel, a command line too long), 1 for a file
 * Ember cannot use, whatever is wrong with it (missing, unreadable, a
 * directory, not a kernel, truncated, an empty initrd) and host errors. */
static int resolve_status(int r)
{
	return r == -EINVAL || r == -E2BIG || r == -ERANGE || r == -ENAMETOOLONG ? EMBER_EXIT_USAGE
										 : EMBER_EXIT_ERROR;
}

/* `ember run --restore DIR` and what goes with it, last in --help. */
static const char restore_usage[] =
    "\n"
    "Restore (ember run --restore DIR [these]; the configuration is the snapshot's):\n"
    "      --restore DIR       continue the guest of the snapshot in DIR\n"
    "      --restore-memory=map|uffd|copy\n"
    "                          guest memory mapped from the snapshot's memory file\n"
    "                          privately, read at the guest's first touch (map, the\n"
    "                          default); served by the userfaultfd page server (uffd:\n"
    "                          the VM can swap); or read whole into fresh memory\n"
    "                          before the guest runs (copy: a longer restore, then\n"
    "                          no first-touch faults, 2 MiB pages)\n"
    "      --verify-memory     check the memory file's CRC-32 too (reads every page)\n"
    "      --restore-disk [N,]path=IMAGE\n"
    "      --restore-net [N,]tap=NAME|fd=FD\n"
    "      --restore-vsock [N,]socket=PATH\n"
    "                          a clone's own host side for the snapshot's disk, NIC or\n"
    "                          vsock N (0, the first, if not given), so that clones run\n"
    "                          at once: a copy of the image as it was at the snapshot,\n"
    "                          a tap, a socket of its own (serials, MACs, CIDs stay)\n"
    "      --socket PATH|NAME, -v, -q, --jail*  as above (in a jail, DIR and every\n"
    "                          path of the snapshot inside the jail's directory)\n"
    "      --restore-on-request\n"
    "                          instead of --restore DIR: start now, with /dev/kvm open\n"
    "                          and a KVM VM made, and restore when `ember restore DIR\n"
    "                          SOCKET` asks on the --socket (needed); --restore-memory\n"
    "                          and --verify-memory are then the requests' defaults\n";

/* The jailer's options (cli/jail.c), after the configuration's in --help. */
static const char jail_usage[] =
    "\n"
    "Jail (as root; cli/jail.c):\n"
    "      --jail DIR          run the VMM in new mount, PID, IPC, UTS and network\n"
    "                          namespaces with DIR as its root: every path above is\n"
    "                          then inside DIR; its /dev holds only kvm, net/tun,\n"
    "                          urandom and null\n"
    "      --jail-uid N, --jail-gid N\n"
    "                          the unprivileged uid and gid it runs as\n"
    "      --jail-net new|host a new network namespace (default; a tap passed in by\n"
    "                          --net fd=N works from it) or the host's (a tap by name)\n"
    "      --jail-nofile N     RLIMIT_NOFILE (default 4096)\n"
    "      --jail-fsize BYTES  RLIMIT_FSIZE (default none)\n"
    "      --jail-cgroup NAME  a cgroup v2 of its own, /sys/fs/cgroup/NAME (made anew,\n"
    "                          removed when the VM ends), with\n"
    "      --jail-memory-max V (bytes, K/M/G/T suffix, or max; not below --mem),\n"
    "      --jail-cpu-max \"QUOTA [PERIOD]\" (microseconds), --jail-pids-max N|max\n";

/* The configuration's part of `ember run`: parse, resolve, --help and
 * --dry-run. Returns -1 to go on and boot, else the exit status. */
static int configure(struct ember_config *cfg, int argc, char **argv, uint64_t start_ns)
{
	struct ember_error err = {0};
	unsigned flags = 0;

	ember_config_set_start_ns(cfg, start_ns);
	/* Console input: stdin, unless it is the terminal of a foreground job
	 * that is not us; the Ctrl-A escape only on a terminal (piped input
	 * reaches the guest byte for byte). */
	bool background = stdin_tty_in_background();
	ember_config_set_console(cfg, background ? -1 : STDIN_FILENO, STDOUT_FILENO);
	if (ember_config_set(cfg, "console-escape",
			     !background && isatty(STDIN_FILENO) ? "on" : "off", &err) < 0) {
		say("%s", err.msg);
		return EMBER_EXIT_ERROR;
	}
	if (ember_config_parse_args(cfg, argc, argv, &flags, &err) < 0) {
		say("%s", err.msg);
		return EMBER_EXIT_USAGE;
	}
	if (flags & EMBER_ARGS_HELP) {
		fputs(ember_config_usage(), stdout);
		fputs("  --socket PATH|NAME  serve the VM's control socket at PATH, or at "
		      "NAME.sock in\n"
		      "                      the per-user directory (`ember list`; "
		      "docs/PROTOCOL.md)\n",
		      stdout);
		fputs(jail_usage, stdout);
		fputs(restore_usage, stdout);
		return 0;
	}
	log_level = ember_config_log_level(cfg);
	ember_config_set_log(cfg, on_log, NULL);
	int r = ember_config_resolve(cfg, &err);
	if (r < 0) {
		say("%s", err.msg);
		return resolve_status(r);
	}
	if (background && log_level >= EMBER_LOG_INFO)
		say("in the background: the guest gets no console input (run it in the "
		    "foreground to type to it)");
	if (flags & EMBER_ARGS_DRY_RUN) {
		int n = ember_config_format(cfg, NULL, 0);
		char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
		if (!buf) {
			say("out of memory");
			return EMBER_EXIT_ERROR;
		}
		ember_config_format(cfg, buf, (size_t)n + 1);
		fputs(buf, stdout);
		free(buf);
		return 0;
	}
	return -1;
}

/* Runs a built VM until it stops, says how it ended, stops its control
 * server (NULL: none) and destroys it; returns the exit status. */
static int run_vm(struct ember_vm *vm, struct ember_ctl_server *srv, uint64_t start_ns)
{
	int r;
	running_vm = vm;
	install_signals();
	/* Raw only on an interactive console: then Ctrl-C goes to the guest and
	 * Ctrl-A x stops the VM. */
	tty_raw();
	atexit(tty_restore);

	struct ember_run_result res;
	/* ember_vm_run, with this thread confined once the VM runs: from here
	 * it only waits, prints and tears down (--seccomp) */
	struct ember_error err = {0};
	r = ember_vm_start(vm);
	if (r == 0 && ember_vm_seccomp_confine_caller(vm, &err) < 0) {
		say("%s", err.msg);
		ember_vm_request_stop(vm);
	}
	if (r == 0 || r == -EALREADY)
		r = ember_vm_wait(vm, -1, &res);
	else
		ember_vm_wait(vm, -1, NULL); /* the start failed: let the I/O thread finish */
	running_vm = NULL;
	tty_restore();
	int status;
	if (r < 0) {
		say("cannot run the VM: %s", strerror(-r));
		status = EMBER_EXIT_ERROR;
	} else {
		status = ember_stop_reason_exit_status(res.reason);
		double secs = (double)(now_ns() - start_ns) / 1e9;
		switch (res.reason) {
		case EMBER_STOP_POWEROFF:
			if (log_level >= EMBER_LOG_INFO)
				say("guest powered off after %.3f s", secs);
			break;
		case EMBER_STOP_REBOOT:
			say("guest rebooted after %.3f s (%s); exit status %d", secs, res.detail,
			    status);
			break;
		case EMBER_STOP_CRASH: {
			say("guest crashed after %.3f s: %s; exit status %d", secs, res.detail,
			    status);
			int n = ember_vm_format_registers(vm, NULL, 0);
			if (n > 0) {
				char *buf = malloc((size_t)n + 1);
				if (buf) {
					ember_vm_format_registers(vm, buf, (size_t)n + 1);
					fputs(buf, stderr);
					free(buf);
				}
			}
			break;
		}
		case EMBER_STOP_REQUESTED:
			if (stop_signal)
				say("stopped by %s after %.3f s", strsignal(stop_signal), secs);
			else
				say("stopped after %.3f s (%s)", secs, res.detail);
			break;
		case EMBER_STOP_ERROR:
			say("the VM failed after %.3f s: %s (%s)", secs, res.detail,
			    strerror(-res.error));
			break;
		case EMBER_STOP_PANIC:
			say("guest panicked after %.3f s: %s; exit status %d", secs, res.detail,
			    status);
			break;
		case EMBER_STOP_HALTED:
			say("guest halted for good after %.3f s: %s; exit status %d", secs,
			    res.detail, status);
			break;
		}
	}
	ember_ctl_server_stop(srv); /* after the exit event went out */
	ember_vm_destroy(vm);
	return status;
}

/* --socket's path (cli_socket_path, the per-user directory made for a
 * NAME) into buf; a bad one is said: -1. */
static int socket_path(const char *sock_arg, char *buf, size_t len)
{
	int r = cli_socket_path(sock_arg, true, buf, len);
	if (r < 0)
		say("--socket %s: %s", sock_arg,
		    r == -EINVAL ? "not a path (with a /) nor a name ([A-Za-z0-9._-])"
				 : strerror(-r));
	return r < 0 ? -1 : 0;
}

/* Serves --socket for vm (none when sock_arg is NULL), then runs it (run_vm);
 * vm is destroyed when the socket cannot be served. The exit status. */
static int serve_and_run(struct ember_vm *vm, const char *sock_arg, uint64_t start_ns)
{
	struct ember_ctl_server *srv = NULL;
	if (sock_arg) {
		char sock[256];
		struct ember_error err = {0};
		if (socket_path(sock_arg, sock, sizeof(sock)) < 0) {
			ember_vm_destroy(vm);
			return EMBER_EXIT_USAGE;
		}
		if (ember_ctl_server_start(vm, sock, NULL, &srv, &err) < 0) {
			say("%s", err.msg);
			ember_vm_destroy(vm);
			return EMBER_EXIT_ERROR;
		}
	}
	return run_vm(vm, srv, start_ns);
}

/* --jail: parse_jail takes the --jail* options out of argv; enter_jail,
 * when --jail DIR was there, enters the jail. Both return -1 to go on (in
 * the jailed child, or with no jail), else the exit status to end with (a
 * usage error; the parent, once the child ended; an error). */
static int parse_jail(int *argc, char **argv, struct jail_opts *jo)
{
	char jerr[512];
	if (jail_parse(argc, argv, jo, jerr, sizeof(jerr)) < 0) {
		say("%s", jerr);
		return EMBER_EXIT_USAGE;
	}
	return -1;
}

static int enter_jail(const struct jail_opts *jo)
{
	char jerr[512];
	if (!jo->dir)
		return -1;
	bool parent;
	int jr = jail_enter(jo, &parent, jerr, sizeof(jerr));
	if (jr < 0) {
		say("%s", jerr);
		return EMBER_EXIT_ERROR;
	}
	if (parent) {
		if (jerr[0])
			say("%s", jerr);
		return jr;
	}
	/* what the jailed VMM is, seen from inside */
	say("jail: uid %u gid %u pid %d in %s", (unsigned)getuid(), (unsigned)getgid(),
	    (int)getpid(), jo->dir);
	return -1;
}

/* A restored VM whose RAM is above --jail-memory-max's cgroup memory.max
 * (0: none) would be OOM-killed once the guest used it: said, true. */
static bool ram_over_jail_limit(struct ember_vm *vm, uint64_t mem_max)
{
	struct ember_vm_info info;
	if (!mem_max || ember_vm_query(vm, &info) < 0 || info.mem_size <= mem_max)
		return false;
	say("--jail-memory-max is below the restored guest's RAM (%" PRIu64
	    " MiB): the VMM would be OOM-killed",
	    info.mem_size >> 20);
	return true;
}

/* `ember run --restore-on-request --socket S`: serves S with no VM until
 * a restore request (`ember restore DIR S`) brings one in, then runs it as
 * `ember run --restore DIR` would. The exit status. */
static int restore_on_request(const char *sock_arg, const struct ember_restore_opts *base,
			      uint64_t mem_max)
{
	char sock[256];
	int r = socket_path(sock_arg, sock, sizeof(sock));
	if (r < 0)
		return EMBER_EXIT_USAGE;
	struct ember_ctl_server *srv;
	struct ember_error err = {0};
	if (ember_ctl_server_start_waiting(sock, NULL, base, &srv, &err) < 0) {
		say("%s", err.msg);
		return EMBER_EXIT_ERROR;
	}
	if (log_level >= EMBER_LOG_INFO)
		say("waiting for a restore request on %s (ember restore DIR %s)", sock, sock_arg);
	waiting_restore = 1;
	install_signals(); /* a stop signal now ends the wait, and the server */
	struct ember_vm *vm = NULL;
	do
		r = ember_ctl_server_wait_vm(srv, 200, &vm);
	while (r == -ETIMEDOUT && !stop_signal);
	waiting_restore = 0;
	if (r < 0) {
		ember_ctl_server_stop(srv); /* and a VM restored meanwhile with it */
		if (stop_signal)
			say("stopped by %s while waiting for a restore request",
			    strsignal(stop_signal));
		else
			say("exit requested before any restore");
		return ember_stop_reason_exit_status(EMBER_STOP_REQUESTED);
	}
	if (ram_over_jail_limit(vm, mem_max)) {
		ember_ctl_server_stop(srv);
		ember_vm_destroy(vm);
		return EMBER_EXIT_USAGE;
	}
	if (log_level >= EMBER_LOG_DEBUG)
		say("restored on request");
	return run_vm(vm, srv, now_ns());
}

/* `ember run --restore DIR`: the guest of a snapshot, continued. Only the
 * options that are not the configuration's (it comes from the snapshot),
 * and --socket. */
static int cmd_restore(int argc, char **argv, uint64_t start_ns)
{
	const char *sock_arg = NULL;
	if (take_socket_arg(&argc, argv, &sock_arg) < 0) {
		say("--socket needs a path or a name");
		return EMBER_EXIT_USAGE;
	}
	struct jail_opts jo;
	int r = parse_jail(&argc, argv, &jo);
	if (r >= 0)
		return r;
	const char *dir = NULL;
	bool on_request = false;
	struct ember_restore_opts o = {.console_in = -1, .console_out = STDOUT_FILENO};
	struct ember_restore_device devs[16];
	log_level = EMBER_LOG_INFO;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		static const char *const kinds[] = {"disk", "net", "vsock"};
		const char *kind = NULL;
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			char opt[32];
			snprintf(opt, sizeof(opt), "--restore-%s", kinds[k]);
			if (!strcmp(a, opt))
				kind = kinds[k];
		}
		if (kind) {
			if (i + 1 >= argc) {
				say("%s needs [N,]KEY=VALUE", a);
				return EMBER_EXIT_USAGE;
			}
			if (o.ndevices == sizeof(devs) / sizeof(devs[0])) {
				say("%s: more than %zu device changes", a,
				    sizeof(devs) / sizeof(devs[0]));
				return EMBER_EXIT_USAGE;
			}
			const char *v = argv[++i];
			if (ember_restore_device_parse(kind, v, &devs[o.ndevices]) < 0) {
				say("%s %s: not [N,]KEY=VALUE", a, v);
				return EMBER_EXIT_USAGE;
			}
			o.ndevices++;
			o.devices = devs;
			continue;
		}
		if (!strcmp(a, "--restore") && i + 1 < argc)
			dir = argv[++i];
		else if (!strncmp(a, "--restore=", 10))
			dir = a + 10;
		else if (!strcmp(a, "--restore-on-request"))
			on_request = true;
		else if (!strcmp(a, "--verify-memory"))
			o.flags |= EMBER_RESTORE_VERIFY_MEMORY;
		else if (!strcmp(a, "--restore-memory=uffd"))
			o.flags = (o.flags & ~EMBER_RESTORE_COPY) | EMBER_RESTORE_UFFD;
		else if (!strcmp(a, "--restore-memory=copy"))
			o.flags = (o.flags & ~EMBER_RESTORE_UFFD) | EMBER_RESTORE_COPY;
		else if (!strcmp(a, "--restore-memory=map"))
			o.flags &= ~(EMBER_RESTORE_UFFD | EMBER_RESTORE_COPY);
		else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
			log_level = EMBER_LOG_DEBUG;
		else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
			log_level = EMBER_LOG_WARN;
		else {
			say("--restore: '%s' does not apply (the configuration is the snapshot's; "
			    "only -v, -q, --socket, --verify-memory, "
			    "--restore-memory=map|uffd|copy, --restore-disk|net|vsock and --jail* "
			    "go with it)",
			    a);
			return EMBER_EXIT_USAGE;
		}
	}
	if (on_request && dir) {
		say("--restore DIR or --restore-on-request, not both");
		return EMBER_EXIT_USAGE;
	}
	if (on_request && !sock_arg) {
		say("--restore-on-request needs --socket PATH|NAME: the restore request comes "
		    "there");
		return EMBER_EXIT_USAGE;
	}
	if (on_request && o.ndevices) {
		say("--restore-on-request: a clone's disk, NIC and vsock come with the restore "
		    "request (ember restore DIR SOCKET --disk|--net|--vsock SPEC)");
		return EMBER_EXIT_USAGE;
	}
	if (!on_request && (!dir || !*dir)) {
		say("--restore needs a snapshot directory");
		return EMBER_EXIT_USAGE;
	}
	/* --jail: from here on this is the jailed child (its paths inside the
	 * jail), or the parent that waits for it and ends as it did */
	if ((r = enter_jail(&jo)) >= 0)
		return r;
	bool background = stdin_tty_in_background();
	o.console_in = background ? -1 : STDIN_FILENO;
	o.log = on_log;
	if (on_request)
		return restore_on_request(sock_arg, &o, jo.mem_max_bytes);
	struct ember_vm *vm;
	struct ember_error err = {0};
	r = ember_vm_restore(dir, &o, &vm, &err);
	if (r < 0) {
		say("%s", err.msg[0] ? err.msg : strerror(-r));
		return EMBER_EXIT_ERROR;
	}
	if (ram_over_jail_limit(vm, jo.mem_max_bytes)) {
		ember_vm_destroy(vm);
		return EMBER_EXIT_USAGE;
	}
	if (log_level >= EMBER_LOG_DEBUG)
		say("restored %s in %.1f ms", dir, (double)(now_ns() - start_ns) / 1e6);
	return serve_and_run(vm, sock_arg, start_ns);
}

static int cmd_run(int argc, char **argv, uint64_t start_ns)
{
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--restore") || !strncmp(argv[i], "--restore=", 10) ||
		    !strcmp(argv[i], "--restore-on-request"))
			return cmd_restore(argc, argv, start_ns);
	struct ember_config *cfg;
	struct ember_error err = {0};
	const char *sock_arg = NULL;
	int r;
	if (take_socket_arg(&argc, argv, &sock_arg) < 0) {
		say("--socket needs a path or a name");
		return EMBER_EXIT_USAGE;
	}
	struct jail_opts jo;
	if ((r = parse_jail(&argc, argv, &jo)) >= 0 || (r = enter_jail(&jo)) >= 0)
		return r;
	if (ember_config_new(&cfg) < 0) {
		say("out of memory");
		return EMBER_EXIT_ERROR;
	}
	r = configure(cfg, argc, argv, start_ns);
	if (r >= 0) {
		ember_config_free(cfg);
		return r;
	}
	/* a cgroup memory.max below the guest's RAM: the VM would be killed
	 * by the kernel's OOM killer once the guest used its memory */
	if (jo.mem_max_bytes && jo.mem_max_bytes < ember_config_mem_size(cfg)) {
		say("--jail-memory-max %s is below the guest's RAM (%" PRIu64
		    " MiB, --mem): the VMM would be OOM-killed",
		    jo.mem_max, ember_config_mem_size(cfg) >> 20);
		ember_config_free(cfg);
		return EMBER_EXIT_USAGE;
	}

	struct ember_vm *vm;
	r = ember_vm_create(cfg, &vm, &err);
	ember_config_free(cfg); /* the VM has its own copy */
	if (r < 0) {
		say("%s", err.msg[0] ? err.msg : strerror(-r));
		return r == -EINVAL ? EMBER_EXIT_USAGE : EMBER_EXIT_ERROR;
	}
	return serve_and_run(vm, sock_arg, start_ns);
}

int main(int argc, char **argv)
{
	uint64_t start_ns = now_ns();
	if (argc < 2) {
		usage(stderr);
		return EMBER_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2, start_ns);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		unsigned v = ember_library_version();
		printf("ember %u.%u (libember VMM API %u.%u)\n", EMBER_VMM_API_MAJOR,
		       EMBER_VMM_API_MINOR, v >> 16, v & 0xffff);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (cli_ctl_is_command(argv[1]))
		return cli_ctl_main(argc - 1, argv + 1);
	fprintf(stderr, "ember: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EMBER_EXIT_USAGE;
}
