/* ember/ctl.h - the control plane: a VM's control socket (server) and the C client library that drives it. */
#ifndef EMBER_CTL_H
#define EMBER_CTL_H

/*
 * Overview
 * --------
 * A running VM is controlled from outside through a Unix socket that
 * `ember run --socket PATH` (or a program calling ember_ctl_server_start)
 * serves. The protocol is JSON, one message per SOCK_SEQPACKET datagram of
 * at most EMBER_CTL_MAX_MESSAGE bytes, and is described completely in
 * docs/PROTOCOL.md: the hello both ways, requests {"id":N,"request":NAME,
 * "args":{...}}, exactly one response {"id":N,"ok":true,"result":{...}}
 * or {"id":N,"ok":false,"error":{"code":CODE,"message":LINE,"errno":E}}
 * per request, and events {"event":KIND,...} on connections registered as
 * listeners. The requests are crosvm's VmRequest vocabulary (all 24), plus
 * "status" and "restore" (a VMM started waiting for its VM). One command
 * table (ember_ctl_command) drives the server's dispatch, this client
 * library, the `ember` subcommands and the document.
 *
 * Error contract: as <ember/vmm.h>: 0 (or a documented non-negative
 * value) or a negative errno, with err (may be NULL) filled. For a request
 * the server refused, the errno is the one the server reports (its
 * "errno" field; -EPROTO when it gave none) and err->msg is
 * "CODE: message"; ember_ctl_error_code() gives CODE alone.
 *
 * Thread-safety: a struct ember_ctl (one connection) is used by one thread
 * at a time. Different connections are independent.
 */

#include <ember/vmm.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_CTL_PROTOCOL    1	    /* the protocol version in the hello */
#define EMBER_CTL_MAX_MESSAGE 65536 /* bytes in one datagram, either way */

/* ------------------------------------------------------------------------
 * The command table
 * ------------------------------------------------------------------------ */

/* The type of one argument of a request. */
enum ember_ctl_arg_type {
	EMBER_CTL_ARG_UINT = 0, /* a JSON integer >= 0 (bounded by max) */
	EMBER_CTL_ARG_STRING,	/* a JSON string (bounded by max bytes) */
	EMBER_CTL_ARG_BOOL,	/* true or false */
	EMBER_CTL_ARG_ENUM,	/* a JSON string, one of values ("a|b|c") */
	EMBER_CTL_ARG_STRINGS,	/* an array of strings, each one of values */
};

struct ember_ctl_arg {
	const char *name;
	enum ember_ctl_arg_type type;
	bool required;
	uint64_t max;	    /* UINT: largest value; STRING: longest length; 0: no bound */
	const char *values; /* ENUM/STRINGS: the allowed values, '|'-separated */
	const char *doc;    /* one line */
};

#define EMBER_CTL_MAX_ARGS 6
struct ember_ctl_command {
	const char *name;    /* the protocol's name: "suspend-vcpus" */
	const char *crosvm;  /* crosvm's VmRequest variant: "SuspendVcpus" (NULL: ours) */
	const char *cli;     /* the `ember` subcommand and its arguments */
	const char *doc;     /* one line: what it does */
	const char *example; /* an example request's "args" object, as JSON */
	const char *result;  /* the result object's fields, one line */
	const char *errors;  /* error codes it may answer besides the common ones */
	struct ember_ctl_arg args[EMBER_CTL_MAX_ARGS]; /* up to the first name NULL */
};

/* Is s one of values ("a|b|c", an ENUM or STRINGS argument's)? */
bool ember_ctl_value_allowed(const char *values, const char *s);

/* The command table: *n receives its length. Static storage. */
const struct ember_ctl_command *ember_ctl_commands(size_t *n);
/* The command named name (or its crosvm name), NULL if none. */
const struct ember_ctl_command *ember_ctl_command_find(const char *name);

/* The error codes of the protocol, each with its errno and its doc line:
 * *n receives the count; name NULL past the last. Static storage. */
struct ember_ctl_error_code {
	const char *name;
	int err; /* the negative errno it stands for */
	const char *doc;
};
const struct ember_ctl_error_code *ember_ctl_error_codes(size_t *n);

/* ------------------------------------------------------------------------
 * The server (the VM's side)
 * ------------------------------------------------------------------------ */

struct ember_ctl_server;

struct ember_ctl_server_opts {
	unsigned max_clients; /* connections served at once (0: 64); more are refused */
	unsigned idle_ms;     /* a connection that sends nothing this long (and is not a
				 listener) is closed (0: 30000) */
	unsigned hello_ms;    /* the client's hello must come within this (0: 5000) */
};

/*
 * Serves vm's control socket at path and starts the control thread.
 * The socket is created mode 0600 (owner only); a file already at path is
 * replaced only when it is a socket nobody listens on (a stale one),
 * never followed. vm is borrowed: stop the server before ember_vm_destroy.
 * The server registers an event listener on vm (ember_vm_add_event_listener)
 * for the connections that ask for events. Requests are served one at a
 * time, in the order they come, on the control thread; the VM keeps
 * running whatever a client sends (bad input gets an error response or
 * the connection is closed).
 * Errors (err says which): -EINVAL (NULL, a path too long for a socket
 * address), -EEXIST (path is not a socket), -EADDRINUSE (a live server
 * listens there), -ENOSPC (the VM's listener slots are full), -ENOMEM,
 * -EAGAIN (no thread), or the errno of socket/bind/listen.
 */
int ember_ctl_server_start(struct ember_vm *vm, const char *path,
			   const struct ember_ctl_server_opts *opts, struct ember_ctl_server **out,
			   struct ember_error *err);

/*
 * A VMM started ahead of its VM (`ember run --restore-on-request`,
 * Firecracker's snapshot load): serves path as ember_ctl_server_start does
 * but with no VM, until a "restore" request brings one in from a snapshot.
 * Until then the server answers status (state "waiting"), exit (no VM will
 * come: ember_ctl_server_wait_vm returns -ECANCELED), the listener
 * requests (their events flow once the VM is there), restore, and every
 * other request with the error no-vm; it keeps a VM made ahead
 * (ember_vm_ahead_make, on base->hyp) for the next restore, made again
 * after a restore that failed. A restore runs on the control thread, as
 * ember_vm_restore with base's flags, console fds, log and hypervisor (the
 * request's memory, verify and device arguments over them); a failed one
 * answers its error and the server waits on. Once one has succeeded the
 * server is that VM's, as ember_ctl_server_start's (restore then answers
 * has-vm), and the control thread takes its seccomp filter. base may be
 * NULL (no console, no log, /dev/kvm); it is copied but for its log
 * callback's opaque and hyp, which must outlive the server (and hyp the
 * VM); base->ahead and base->devices are not used. Errors: as
 * ember_ctl_server_start, -EINVAL also for base->ahead set.
 */
int ember_ctl_server_start_waiting(const char *path, const struct ember_ctl_server_opts *opts,
				   const struct ember_restore_opts *base,
				   struct ember_ctl_server **out, struct ember_error *err);

/*
 * Waits until a restore request has brought the waiting server srv its VM,
 * at most timeout_ms (< 0: forever; 0: only look). 0 with *vm: the VM, in
 * state CREATED, is the caller's from now on (it starts it with
 * ember_vm_start, and destroys it after ember_ctl_server_stop, as with
 * ember_ctl_server_start). -ETIMEDOUT: none yet; -ECANCELED: the exit
 * request came instead; -EINVAL: NULL, a server not started waiting, or
 * its VM taken already. One thread at a time. A server stopped without its
 * VM taken destroys the VM.
 */
int ember_ctl_server_wait_vm(struct ember_ctl_server *srv, int timeout_ms, struct ember_vm **vm);

/* Stops the control thread, closes every connection and removes the
 * socket file. NULL is allowed. Not from the control thread itself (an
 * event listener or a request handler). */
void ember_ctl_server_stop(struct ember_ctl_server *srv);

/* The socket path served (static until ember_ctl_server_stop). */
const char *ember_ctl_server_path(const struct ember_ctl_server *srv);

/*
 * The directory of a user's VM sockets ($XDG_RUNTIME_DIR/ember when
 * XDG_RUNTIME_DIR is set, else /tmp/ember-UID), snprintf style; and the
 * path of the socket named name there (name: [A-Za-z0-9._-], 1..64 bytes,
 * not "." or ".."; -EINVAL otherwise) as NAME.sock. `ember list` lists
 * that directory. ember_ctl_socket_dir creates nothing; ember_ctl_name_path
 * with create set creates the directory (mode 0700) if missing and
 * refuses one that is not a directory owned by the caller (-EPERM).
 * Returns the full length, or a negative errno.
 */
int ember_ctl_socket_dir(char *buf, size_t len);
int ember_ctl_name_path(const char *name, bool create, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * The client library
 * ------------------------------------------------------------------------ */

struct ember_ctl;

/*
 * Connects to the control socket at path and exchanges the hello (the
 * server's protocol must be EMBER_CTL_PROTOCOL). Waits at most timeout_ms
 * for each answer (the default of every later call too; <= 0: 5000).
 * *out owns the connection: ember_ctl_close it. Errors: -EINVAL, -ENOENT /
 * -ECONNREFUSED / -EACCES (nobody serves there, or not for you), -EPROTO
 * (not an Ember control socket, or another protocol version), -EBUSY (the
 * server has too many clients), -ETIMEDOUT, -ENOMEM.
 */
int ember_ctl_connect(const char *path, int timeout_ms, struct ember_ctl **out,
		      struct ember_error *err);
/* Closes the connection (a listener stops getting events). NULL allowed. */
void ember_ctl_close(struct ember_ctl *c);
/* The connection's socket, for poll (readable: an event or a response). */
int ember_ctl_fd(const struct ember_ctl *c);
/* The protocol code of the last refused request ("no-device"), "" if none. */
const char *ember_ctl_error_code(const struct ember_ctl *c);

/*
 * The generic call: sends request name with args (a JSON object as text,
 * NULL or "" for none), waits for its response (events that come first
 * are queued for ember_ctl_next_event). On success *result (may be NULL)
 * receives the result object as JSON text (malloc'd: free() it). Errors:
 * as described under "Error contract", -EPIPE (the server went away),
 * -ETIMEDOUT, -EPROTO (a response that breaks the protocol).
 */
int ember_ctl_call(struct ember_ctl *c, const char *name, const char *args_json, char **result,
		   struct ember_error *err);

/* One typed call per request (each as the command table's doc line says;
 * errors as ember_ctl_call). */
int ember_ctl_exit(struct ember_ctl *c, struct ember_error *err);
int ember_ctl_powerbtn(struct ember_ctl *c, struct ember_error *err);
int ember_ctl_sleepbtn(struct ember_ctl *c, struct ember_error *err);
int ember_ctl_rtc(struct ember_ctl *c, struct ember_error *err);
int ember_ctl_gpe(struct ember_ctl *c, unsigned n, struct ember_error *err);
int ember_ctl_suspend_vcpus(struct ember_ctl *c, struct ember_error *err);
int ember_ctl_resume_vcpus(struct ember_ctl *c, struct ember_error *err);
int ember_ctl_suspend_vm(struct ember_ctl *c, struct ember_error *err);
int ember_ctl_resume_vm(struct ember_ctl *c, struct ember_error *err);
int ember_ctl_balloon_target(struct ember_ctl *c, uint64_t bytes, struct ember_error *err);
int ember_ctl_balloon_stats(struct ember_ctl *c, struct ember_balloon_stats *out,
			    struct ember_error *err);
int ember_ctl_disk_resize(struct ember_ctl *c, unsigned index, uint64_t bytes,
			  struct ember_error *err);
/* flags: EMBER_CTL_SNAPSHOT_* (the VM stays paused after it unless RESUME);
 * base: the base snapshot's directory for INCREMENTAL, else NULL. */
#define EMBER_CTL_SNAPSHOT_RESUME      (1u << 0)
#define EMBER_CTL_SNAPSHOT_INCREMENTAL (1u << 1)
int ember_ctl_snapshot(struct ember_ctl *c, const char *dir, unsigned flags, const char *base,
		       struct ember_error *err);
/* On a waiting server (ember_ctl_server_start_waiting): restores the
 * snapshot in dir as its VM. memory: "map", "uffd", "copy" or NULL (the
 * server's default); flags: EMBER_CTL_RESTORE_VERIFY; disk, net, vsock:
 * each NULL or a clone's host side of that kind, "[N,]KEY=VALUE" (as
 * `ember run --restore-disk|net|vsock`), several separated by ';'. *us
 * (may be NULL) receives the restore's time on the server. Errors as
 * ember_ctl_call; codes has-vm (the server has its VM), no-vm never. */
#define EMBER_CTL_RESTORE_VERIFY (1u << 0)
int ember_ctl_restore(struct ember_ctl *c, const char *dir, const char *memory, unsigned flags,
		      const char *disk, const char *net, const char *vsock, uint64_t *us,
		      struct ember_error *err);
/* command: "enable", "trim", "out", "disable", "status"; *status (may be
 * NULL) receives the result as JSON text (free() it). */
int ember_ctl_swap(struct ember_ctl *c, const char *command, char **status,
		   struct ember_error *err);
int ember_ctl_net_add(struct ember_ctl *c, const char *spec, unsigned *slot,
		      struct ember_error *err);
int ember_ctl_net_remove(struct ember_ctl *c, unsigned slot, struct ember_error *err);

/* Event kinds, as a mask of 1u << enum ember_vm_event_kind. */
#define EMBER_CTL_EVENTS_ALL ((1u << EMBER_VM_EVENT_KINDS) - 1)
/* This connection gets the events of the kinds in mask from now on (added
 * to those it had); UnregisterListener removes kinds, Unregister all. */
int ember_ctl_register_listener(struct ember_ctl *c, unsigned mask, struct ember_error *err);
int ember_ctl_unregister_listener(struct ember_ctl *c, unsigned mask, struct ember_error *err);
int ember_ctl_unregister(struct ember_ctl *c, struct ember_error *err);

/* The VMM's pid and each vCPU's thread id: tids[i] for vCPU i, at most max
 * of them; *n receives the VM's vCPU count (may exceed max). */
int ember_ctl_vcpu_pid_tid(struct ember_ctl *c, pid_t *pid, pid_t *tids, unsigned max, unsigned *n,
			   struct ember_error *err);
/* SCHED_FIFO for every vCPU thread; -EPERM where the host refuses. */
int ember_ctl_make_rt(struct ember_ctl *c, unsigned priority, struct ember_error *err);
/* Requests for hardware Ember has not: they answer their error code
 * (no-pci, no-usb, no-gpu, no-battery, no-vfio: -ENODEV). */
int ember_ctl_pci_pme(struct ember_ctl *c, unsigned requester, struct ember_error *err);
int ember_ctl_usb(struct ember_ctl *c, const char *command, struct ember_error *err);
int ember_ctl_gpu(struct ember_ctl *c, const char *command, struct ember_error *err);
int ember_ctl_bat(struct ember_ctl *c, const char *command, struct ember_error *err);
int ember_ctl_hotplug_vfio(struct ember_ctl *c, const char *command, struct ember_error *err);

/* The no-op query: the VM's state and size; waiting (state CREATED, no
 * vCPUs, no memory): a server with no VM yet, waiting for its restore. */
struct ember_ctl_status {
	enum ember_vm_state state;
	bool vcpus_paused;
	unsigned vcpus;
	uint64_t mem_size;
	pid_t pid;
	bool waiting;
};
int ember_ctl_status(struct ember_ctl *c, struct ember_ctl_status *out, struct ember_error *err);

/* One event of the stream. */
struct ember_ctl_event {
	enum ember_vm_event_kind kind;
	enum ember_vm_state state;
	bool vcpus_paused;
	char reason[32];	       /* EXIT: the stop reason's name; POWER: the power state */
	char detail[256];	       /* EXIT: the result's detail line */
	int exit_status;	       /* EXIT: the status `ember run` exits with */
	uint64_t balloon_actual_bytes; /* BALLOON */
	uint64_t balloon_target_bytes; /* BALLOON */
	char *json;		       /* the event as received (malloc'd; freed by the next
				      call or ember_ctl_close) */
};
/*
 * The next event: one queued while a call waited, else one that comes
 * within timeout_ms (< 0: forever, 0: only look). Returns 0 with *ev
 * filled, -ETIMEDOUT when none came, -EPIPE when the server closed (the VM
 * ended and its server stopped).
 */
int ember_ctl_next_event(struct ember_ctl *c, int timeout_ms, struct ember_ctl_event *ev,
			 struct ember_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_CTL_H */
