/* cli/jail.h - `ember run --jail DIR`: the VMM in namespaces of its own, rooted in DIR, as an unprivileged uid. */
#ifndef EMBER_CLI_JAIL_H
#define EMBER_CLI_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* At most this many --net fd=N taps pass into a jail. */
#define JAIL_MAX_KEPT_FDS 16

struct jail_opts {
	const char *dir; /* --jail DIR: the new root; NULL: no jail */
	bool have_uid, have_gid;
	uid_t uid;			 /* --jail-uid N */
	gid_t gid;			 /* --jail-gid N */
	bool keep_net;			 /* --jail-net host: no new network namespace (a tap) */
	uint64_t nofile;		 /* --jail-nofile N (default 4096) */
	uint64_t fsize;			 /* --jail-fsize BYTES (0: no limit) */
	char cgroup[64];		 /* --jail-cgroup NAME under /sys/fs/cgroup ("": none) */
	char mem_max[32];		 /* --jail-memory-max V (cgroup memory.max) */
	uint64_t mem_max_bytes;		 /* its value in bytes (UINT64_MAX: max; 0: none) */
	char cpu_max[32];		 /* --jail-cpu-max "QUOTA PERIOD" (cgroup cpu.max) */
	char pids_max[32];		 /* --jail-pids-max N (cgroup pids.max) */
	int keep_fds[JAIL_MAX_KEPT_FDS]; /* the taps passed in (--net fd=N), kept open */
	unsigned nkeep;
};

/* Takes the --jail* options out of argv (argc updated); the rest is left
 * for the configuration, where the fds of --net fd=N options (--net VALUE
 * or --net=VALUE, any fd= key of VALUE's comma-separated list) are noted
 * in keep_fds. 0, or -EINVAL with a message in err (an fd that is not a
 * number, more than JAIL_MAX_KEPT_FDS). */
int jail_parse(int *argc, char **argv, struct jail_opts *o, char *err, size_t len);

/*
 * Enters the jail: a cgroup when asked; new mount, PID, IPC, UTS (and,
 * unless keep_net, network) namespaces; a fork (the child is PID 1 of the
 * new PID namespace); DIR bind-mounted and made the root (pivot_root), the
 * old root detached; /dev a fresh tmpfs holding only kvm, net/tun, urandom,
 * null (device nodes made anew, owned by the jail's uid); hostname "ember";
 * every fd above 2 closed but keep_fds (a tap passed by fd works from any
 * network namespace: its interface stays in the caller's); RLIMIT_NOFILE and RLIMIT_FSIZE; groups, gid and
 * uid dropped; no_new_privs. Returns 0 in the jailed child (which goes on
 * to configure and run the VM, its paths now inside DIR), or, in the
 * parent, the exit status to end with once the child ended (> 0, or 0 when
 * the child exited 0: then *parent is set; err holds a message, else "",
 * when the cgroup could not be removed). -errno with a message in err
 * when a step failed (nothing is left half-done in the caller's process
 * but the namespaces, which end with it).
 *
 * The cgroup (o->cgroup): made anew by the parent, /sys/fs/cgroup/NAME
 * (a stale empty one removed first, one in use refused), the controllers
 * its limits need enabled in the root's cgroup.subtree_control, the
 * limits written; the child moves itself in before anything else, the
 * parent stays out and removes the cgroup when the child ended (or when
 * a later step failed).
 */
int jail_enter(const struct jail_opts *o, bool *parent, char *err, size_t len);

#endif /* EMBER_CLI_JAIL_H */
