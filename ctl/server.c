/* ctl/server.c - the VM's control socket: the control thread, its bounded clients, the dispatch of the command table's requests to the VMM library, and the event stream. */
#include "proto.h"

#include "../lib/base/deadline.h"
#include "../lib/io/util.h"
#include "../vmm/seccomp.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_MAX_CLIENTS 64
#define DEFAULT_IDLE_MS	    30000
#define DEFAULT_HELLO_MS    5000

struct client {
	int fd; /* -1: a free slot */
	bool hello;
	unsigned events; /* mask of 1 << enum ember_vm_event_kind (under srv->lock) */
	uint64_t last_ns;
};

struct ember_ctl_server {
	struct ember_vm *vm;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* the socket file we made, removed only if still ours */
	ino_t ino;
	int lfd, wake_fd;
	pthread_t thread;
	bool thread_started;
	bool listening; /* our event listener is on the VM */
	struct ember_ctl_server_opts o;
	/* lock: the clients' fds and masks as the event listener sees them.
	 * Only the control thread changes them (under the lock); it reads
	 * them without. Never held while a request is served. */
	pthread_mutex_t lock;
	struct client *clients;
	unsigned nclients;
	char *rbuf; /* EMBER_CTL_MAX_MESSAGE + 1 */
	uint64_t events_sent, events_dropped;
	/* A server started waiting (ember_ctl_server_start_waiting): vm is NULL
	 * until a restore request brings one in. The control thread alone
	 * changes vm, under lock, and signals vm_cond; until
	 * ember_ctl_server_wait_vm takes it, the VM is the server's (vm_owned). */
	bool waiting;
	bool vm_owned, vm_taken, cancelled;
	bool want_ahead; /* a VM to make ahead, on the control thread */
	pthread_cond_t vm_cond;
	struct ember_restore_opts base; /* flags, console, log, hyp */
	struct ember_vm_ahead *ahead;	/* the next restore's VM, made ahead */
};

/* ------------------------------------------------------------ sending */

/* One datagram, never blocking: a client that does not read its responses
 * loses them (-EAGAIN) and is then closed by the caller. */
static int send_obj(int fd, struct json_object *o)
{
	if (!o)
		return -ENOMEM;
	size_t len;
	char *s = ctl_encode(o, &len);
	json_object_put(o);
	if (!s)
		return -EMSGSIZE;
	ssize_t w = send(fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	int e = errno;
	free(s);
	return w == (ssize_t)len ? 0 : w < 0 ? -e : -EIO;
}

static int send_error(int fd, int64_t id, const char *code, const char *msg, int err)
{
	return send_obj(fd, ctl_response_error(id, code, msg, err));
}

/* ------------------------------------------------------------ events */

static struct json_object *event_json(const struct ember_vm_event *ev)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "event",
			       json_object_new_string(ember_vm_event_kind_name(ev->kind)));
	json_object_object_add(o, "state", json_object_new_string(ember_vm_state_name(ev->state)));
	switch (ev->kind) {
	case EMBER_VM_EVENT_STATE:
		json_object_object_add(o, "vcpus_paused",
				       json_object_new_boolean(ev->vcpus_paused));
		break;
	case EMBER_VM_EVENT_EXIT:
		if (ev->result) {
			json_object_object_add(
			    o, "reason",
			    json_object_new_string(ember_stop_reason_name(ev->result->reason)));
			json_object_object_add(o, "detail",
					       json_object_new_string(ev->result->detail));
			json_object_object_add(
			    o, "exit_status",
			    json_object_new_int(ember_stop_reason_exit_status(ev->result->reason)));
		}
		break;
	case EMBER_VM_EVENT_BALLOON:
		json_object_object_add(o, "actual_bytes",
				       json_object_new_uint64(ev->balloon_actual_bytes));
		json_object_object_add(o, "target_bytes",
				       json_object_new_uint64(ev->balloon_target_bytes));
		json_object_object_add(o, "oom", json_object_new_boolean(ev->balloon_oom));
		break;
	case EMBER_VM_EVENT_POWER:
		json_object_object_add(o, "power",
				       json_object_new_string(ev->power ? ev->power : ""));
		break;
	default:
		break;
	}
	return o;
}

/* The VM's event listener: any thread (never with the server's lock held
 * by the same thread: the control thread serves requests without it). */
static void on_vm_event(const struct ember_vm_event *ev, void *opaque)
{
	struct ember_ctl_server *srv = opaque;
	if ((unsigned)ev->kind >= EMBER_VM_EVENT_KINDS)
		return;
	unsigned bit = 1u << ev->kind;
	char *s = NULL;
	size_t len = 0;
	pthread_mutex_lock(&srv->lock);
	for (unsigned i = 0; i < srv->o.max_clients; i++) {
		struct client *c = &srv->clients[i];
		if (c->fd < 0 || !(c->events & bit))
			continue;
		if (!s) {
			struct json_object *o = event_json(ev);
			s = o ? ctl_encode(o, &len) : NULL;
			json_object_put(o);
			if (!s)
				break;
		}
		if (send(c->fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len)
			srv->events_sent++;
		else
			srv->events_dropped++; /* a listener that does not read loses events */
	}
	pthread_mutex_unlock(&srv->lock);
	free(s);
}

/* ------------------------------------------------------------ handlers */

struct req {
	struct ember_ctl_server *srv;
	struct client *client;
	struct json_object *args;
	struct json_object *result; /* set by the handler (NULL: {}) */
	const char *code;	    /* a specific error code, else from the errno */
	struct ember_error err;
};

typedef int (*handler_fn)(struct req *r);

static uint64_t arg_u(struct json_object *args, const char *name, uint64_t def)
{
	struct json_object *v;
	return json_object_object_get_ex(args, name, &v) ? json_object_get_uint64(v) : def;
}

static const char *arg_s(struct json_object *args, const char *name)
{
	struct json_object *v;
	return json_object_object_get_ex(args, name, &v) ? json_object_get_string(v) : NULL;
}

static bool arg_has(struct json_object *args, const char *name)
{
	return json_object_object_get_ex(args, name, NULL);
}

static int h_exit(struct req *r)
{
	struct ember_ctl_server *srv = r->srv;
	if (!srv->vm) { /* a waiting server: no restore will come */
		pthread_mutex_lock(&srv->lock);
		srv->cancelled = true;
		pthread_cond_broadcast(&srv->vm_cond);
		pthread_mutex_unlock(&srv->lock);
		return 0;
	}
	ember_vm_request_stop(srv->vm);
	return 0;
}

static int h_powerbtn(struct req *r)
{
	return ember_vm_power_button(r->srv->vm, &r->err);
}

static int h_sleepbtn(struct req *r)
{
	return ember_vm_sleep_button(r->srv->vm, &r->err);
}

static int h_rtc(struct req *r)
{
	return ember_vm_rtc_interrupt(r->srv->vm, &r->err);
}

static int h_gpe(struct req *r)
{
	return ember_vm_inject_gpe(r->srv->vm, (unsigned)arg_u(r->args, "n", 0), &r->err);
}

static struct json_object *state_json(struct ember_vm *vm)
{
	struct ember_vm_info info;
	struct json_object *o = json_object_new_object();
	if (!o || ember_vm_query(vm, &info) < 0)
		return o;
	json_object_object_add(o, "state", json_object_new_string(ember_vm_state_name(info.state)));
	json_object_object_add(o, "vcpus_paused",
			       json_object_new_boolean(ember_vm_vcpus_paused(vm)));
	return o;
}

/* The lifecycle's errors, said for a control client. */
static int lifecycle(struct req *r, int e, const char *what)
{
	if (e == 0) {
		r->result = state_json(r->srv->vm);
		return 0;
	}
	if (e == -EINVAL || e == -EBUSY)
		r->code = "bad-state";
	return vmm_errf(&r->err, e, "%s: %s", what,
			e == -EINVAL  ? "the VM has not started"
			: e == -EBUSY ? "the whole VM is suspended (resume-vm first)"
			: e == -ESRCH ? "the VM has stopped"
				      : strerror(-e));
}

static int h_suspend_vcpus(struct req *r)
{
	return lifecycle(r, ember_vm_pause_vcpus(r->srv->vm), "suspend-vcpus");
}

static int h_resume_vcpus(struct req *r)
{
	return lifecycle(r, ember_vm_resume_vcpus(r->srv->vm), "resume-vcpus");
}

static int h_suspend_vm(struct req *r)
{
	return lifecycle(r, ember_vm_pause(r->srv->vm), "suspend-vm");
}

static int h_resume_vm(struct req *r)
{
	return lifecycle(r, ember_vm_resume(r->srv->vm), "resume-vm");
}

static int h_balloon(struct req *r)
{
	const char *cmd = arg_s(r->args, "command");
	bool has_bytes = arg_has(r->args, "bytes");
	if (!cmd)
		cmd = has_bytes ? "target" : "stats";
	if (!strcmp(cmd, "target")) {
		if (!has_bytes)
			return vmm_errf(&r->err, -EINVAL, "balloon target needs bytes");
		uint64_t b = arg_u(r->args, "bytes", 0);
		int e = ember_vm_balloon_set_target(r->srv->vm, b, &r->err);
		if (e < 0)
			return e;
		r->result = json_object_new_object();
		json_object_object_add(r->result, "target_bytes",
				       json_object_new_uint64(b & ~4095ull));
		return 0;
	}
	if (has_bytes)
		return vmm_errf(&r->err, -EINVAL, "balloon stats takes no bytes");
	struct ember_balloon_stats st;
	int e = ember_vm_balloon_stats(r->srv->vm, &st, &r->err);
	if (e < 0)
		return e;
	struct json_object *o = json_object_new_object(), *g = json_object_new_object();
	json_object_object_add(o, "target_bytes", json_object_new_uint64(st.target_bytes));
	json_object_object_add(o, "actual_bytes", json_object_new_uint64(st.actual_bytes));
	json_object_object_add(o, "inflated_bytes", json_object_new_uint64(st.inflated_bytes));
	json_object_object_add(o, "deflated_bytes", json_object_new_uint64(st.deflated_bytes));
	json_object_object_add(o, "reported_bytes", json_object_new_uint64(st.reported_bytes));
	json_object_object_add(o, "given_back_bytes", json_object_new_uint64(st.given_back_bytes));
	json_object_object_add(o, "guest_updates", json_object_new_uint64(st.guest_updates));
	for (unsigned i = 0; i < EMBER_BALLOON_GUEST_STATS; i++)
		if (st.guest_valid & (1u << i))
			json_object_object_add(g, ctl_balloon_guest_names[i],
					       json_object_new_uint64(st.guest[i]));
	json_object_object_add(o, "guest", g);
	r->result = o;
	return 0;
}

static int h_disk(struct req *r)
{
	return ember_vm_disk_resize(r->srv->vm, (unsigned)arg_u(r->args, "index", 0),
				    arg_u(r->args, "bytes", 0), &r->err);
}

static int h_snapshot(struct req *r)
{
	struct json_object *v;
	struct ember_snapshot_opts so = {0};
	if (json_object_object_get_ex(r->args, "resume", &v) && json_object_get_boolean(v))
		so.flags |= EMBER_SNAPSHOT_RESUME;
	so.base_dir = arg_s(r->args, "base");
	if (so.base_dir)
		so.flags |= EMBER_SNAPSHOT_INCREMENTAL;
	return ember_vm_snapshot(r->srv->vm, arg_s(r->args, "path"), &so, &r->err);
}

static int h_swap(struct req *r)
{
	static const char *const cmds[] = {"enable", "trim", "out", "disable", "status"};
	static const char *const states[] = {"disabled", "ready", "swapped-out"};
	const char *cmd = arg_s(r->args, "command");
	const unsigned n_cmds = sizeof(cmds) / sizeof(cmds[0]);
	unsigned c = 0;
	while (c < n_cmds && (!cmd || strcmp(cmd, cmds[c])))
		c++;
	if (c == n_cmds)
		return vmm_errf(&r->err, -EINVAL,
				"swap: command must be enable, trim, out, disable or status");
	struct ember_swap_status st;
	int e = ember_vm_swap(r->srv->vm, (enum ember_swap_command)c, NULL, &st, &r->err);
	if (e == -ENOTSUP)
		r->code = "unsupported";
	if (e < 0)
		return e;
	struct json_object *o = json_object_new_object();
	json_object_object_add(
	    o, "state",
	    json_object_new_string(
		(unsigned)st.state < sizeof(states) / sizeof(states[0]) ? states[st.state] : "?"));
	json_object_object_add(o, "faults", json_object_new_uint64(st.faults));
	json_object_object_add(o, "bytes_in", json_object_new_uint64(st.bytes_in));
	json_object_object_add(o, "zero_pages", json_object_new_uint64(st.zero_pages));
	json_object_object_add(o, "errors", json_object_new_uint64(st.errors));
	json_object_object_add(o, "last_out_pages", json_object_new_uint64(st.last_out_pages));
	json_object_object_add(o, "out_pages", json_object_new_uint64(st.out_pages));
	json_object_object_add(o, "swapped_pages", json_object_new_uint64(st.swapped_pages));
	json_object_object_add(o, "page_size", json_object_new_uint64(st.page_size));
	r->result = o;
	return 0;
}

static int h_hotplug_net(struct req *r)
{
	const char *cmd = arg_s(r->args, "command");
	if (!strcmp(cmd, "add")) {
		const char *spec = arg_s(r->args, "spec");
		if (!spec || arg_has(r->args, "slot"))
			return vmm_errf(&r->err, -EINVAL, "net add takes spec (and no slot)");
		unsigned slot = 0;
		int e = ember_vm_net_hotplug_add(r->srv->vm, spec, &slot, &r->err);
		if (e < 0)
			return e;
		r->result = json_object_new_object();
		json_object_object_add(r->result, "slot", json_object_new_int((int)slot));
		return 0;
	}
	if (!arg_has(r->args, "slot") || arg_has(r->args, "spec"))
		return vmm_errf(&r->err, -EINVAL, "net remove takes slot (and no spec)");
	return ember_vm_net_hotplug_remove(r->srv->vm, (unsigned)arg_u(r->args, "slot", 0),
					   &r->err);
}

/* The mask an "events" argument names (absent: all). */
static unsigned events_mask(struct json_object *args)
{
	struct json_object *v;
	if (!json_object_object_get_ex(args, "events", &v))
		return EMBER_CTL_EVENTS_ALL;
	unsigned m = 0;
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(v, i));
		if (!strcmp(s, "all"))
			m |= EMBER_CTL_EVENTS_ALL;
		for (unsigned k = 0; k < EMBER_VM_EVENT_KINDS; k++)
			if (!strcmp(s, ember_vm_event_kind_name((enum ember_vm_event_kind)k)))
				m |= 1u << k;
	}
	return m;
}

static int set_events(struct req *r, unsigned mask)
{
	pthread_mutex_lock(&r->srv->lock);
	r->client->events = mask;
	pthread_mutex_unlock(&r->srv->lock);
	struct json_object *a = json_object_new_array();
	for (unsigned k = 0; k < EMBER_VM_EVENT_KINDS; k++)
		if (mask & (1u << k))
			json_object_array_add(a, json_object_new_string(ember_vm_event_kind_name(
						     (enum ember_vm_event_kind)k)));
	r->result = json_object_new_object();
	json_object_object_add(r->result, "events", a);
	return 0;
}

static int h_register(struct req *r)
{
	return set_events(r, r->client->events | events_mask(r->args));
}

static int h_unregister_listener(struct req *r)
{
	return set_events(r, r->client->events & ~events_mask(r->args));
}

static int h_unregister(struct req *r)
{
	return set_events(r, 0);
}

static int h_vcpu_pid_tid(struct req *r)
{
	struct ember_vm_info info;
	int e = ember_vm_query(r->srv->vm, &info);
	if (e < 0)
		return vmm_errf(&r->err, e, "vcpu-pid-tid: %s", strerror(-e));
	struct json_object *a = json_object_new_array();
	for (unsigned i = 0; i < info.vcpus; i++) {
		pid_t tid = 0;
		if (ember_vm_vcpu_tid(r->srv->vm, i, &tid) < 0)
			continue;
		struct json_object *v = json_object_new_object();
		json_object_object_add(v, "index", json_object_new_int((int)i));
		json_object_object_add(v, "tid", json_object_new_int((int)tid));
		json_object_array_add(a, v);
	}
	r->result = json_object_new_object();
	json_object_object_add(r->result, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(r->result, "vcpus", a);
	return 0;
}

static int h_make_rt(struct req *r)
{
	struct ember_vm_info info;
	int prio = (int)arg_u(r->args, "priority", 1);
	if (prio < 1)
		return vmm_errf(&r->err, -EINVAL, "make-rt: priority must be 1..99");
	int e = ember_vm_query(r->srv->vm, &info);
	if (e < 0)
		return vmm_errf(&r->err, e, "make-rt: %s", strerror(-e));
	struct sched_param sp = {.sched_priority = prio};
	unsigned done = 0;
	for (unsigned i = 0; i < info.vcpus; i++) {
		pid_t tid;
		if (ember_vm_vcpu_tid(r->srv->vm, i, &tid) < 0)
			continue;
		if (sched_setscheduler(tid, SCHED_FIFO, &sp) < 0) {
			e = -errno;
			/* nothing half-done: what was changed goes back */
			struct sched_param zero = {0};
			for (unsigned k = 0; k < i; k++)
				if (ember_vm_vcpu_tid(r->srv->vm, k, &tid) == 0)
					sched_setscheduler(tid, SCHED_OTHER, &zero);
			if (e == -EPERM)
				return vmm_errf(&r->err, e,
						"make-rt: the host refused SCHED_FIFO for vCPU %u "
						"(needs CAP_SYS_NICE or an RLIMIT_RTPRIO >= %d)",
						i, prio);
			return vmm_errf(&r->err, e, "make-rt: vCPU %u: %s", i, strerror(-e));
		}
		done++;
	}
	r->result = json_object_new_object();
	json_object_object_add(r->result, "policy", json_object_new_string("fifo"));
	json_object_object_add(r->result, "priority", json_object_new_int(prio));
	json_object_object_add(r->result, "threads", json_object_new_int((int)done));
	return 0;
}

static int no_hw(struct req *r, const char *code, const char *what)
{
	r->code = code;
	return vmm_errf(&r->err, -ENODEV, "no such device on this VM: Ember has no %s", what);
}

static int h_pci_pme(struct req *r)
{
	return no_hw(r, "no-pci", "PCI devices");
}

static int h_usb(struct req *r)
{
	return no_hw(r, "no-usb", "USB controller");
}

static int h_gpu(struct req *r)
{
	return no_hw(r, "no-gpu", "GPU");
}

static int h_bat(struct req *r)
{
	return no_hw(r, "no-battery", "battery");
}

static int h_hotplug_vfio(struct req *r)
{
	return no_hw(r, "no-vfio", "VFIO (no PCI)");
}

/* One kind's device changes of a restore request: "[N,]KEY=VALUE", several
 * separated by ';' (parsed in place in buf). */
static int restore_devices(struct req *r, const char *kind, char *buf,
			   struct ember_restore_device *devs, unsigned *n, unsigned max)
{
	char *save = NULL;
	for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		if (*n == max)
			return vmm_errf(&r->err, -EINVAL, "restore: more than %u device changes",
					max);
		if (ember_restore_device_parse(kind, t, &devs[*n]) < 0)
			return vmm_errf(&r->err, -EINVAL, "restore: %s '%s' is not [N,]KEY=VALUE",
					kind, t);
		(*n)++;
	}
	return 0;
}

#define RESTORE_MAX_DEVICES 16

/* restore: on a waiting server, the VM of a snapshot; it becomes the
 * server's VM, handed to ember_ctl_server_wait_vm. */
static int h_restore(struct req *r)
{
	struct ember_ctl_server *srv = r->srv;
	if (srv->vm) {
		r->code = "has-vm";
		return vmm_errf(&r->err, -EEXIST, "restore: this VMM has its VM already");
	}
	if (!srv->waiting || srv->cancelled) {
		r->code = "stopped";
		return vmm_errf(&r->err, -ESRCH, "restore: this VMM is exiting");
	}
	struct ember_restore_opts o = srv->base;
	const char *mem = arg_s(r->args, "memory");
	if (mem && !strcmp(mem, "uffd"))
		o.flags = (o.flags & ~EMBER_RESTORE_COPY) | EMBER_RESTORE_UFFD;
	else if (mem && !strcmp(mem, "copy"))
		o.flags = (o.flags & ~EMBER_RESTORE_UFFD) | EMBER_RESTORE_COPY;
	else if (mem) /* map */
		o.flags &= ~(EMBER_RESTORE_UFFD | EMBER_RESTORE_COPY);
	struct json_object *v;
	if (json_object_object_get_ex(r->args, "verify", &v) && json_object_get_boolean(v))
		o.flags |= EMBER_RESTORE_VERIFY_MEMORY;
	static const char *const kinds[] = {"disk", "net", "vsock"};
	char *bufs[3] = {0};
	struct ember_restore_device devs[RESTORE_MAX_DEVICES];
	unsigned nd = 0;
	int e = 0;
	for (unsigned k = 0; k < 3 && e == 0; k++) {
		const char *spec = arg_s(r->args, kinds[k]);
		if (!spec)
			continue;
		bufs[k] = strdup(spec);
		e = bufs[k] ? restore_devices(r, kinds[k], bufs[k], devs, &nd, RESTORE_MAX_DEVICES)
			    : vmm_errf(&r->err, -ENOMEM, "out of memory");
	}
	o.devices = nd ? devs : NULL;
	o.ndevices = nd;
	struct ember_vm *vm = NULL;
	uint64_t t0 = vmm_now_ns();
	if (e == 0) {
		if (srv->ahead) { /* made on base.hyp; taken whatever the result */
			o.ahead = srv->ahead;
			o.hyp = NULL;
			srv->ahead = NULL;
		}
		e = ember_vm_restore(arg_s(r->args, "path"), &o, &vm, &r->err);
	}
	uint64_t us = (vmm_now_ns() - t0) / 1000;
	for (unsigned k = 0; k < 3; k++)
		free(bufs[k]);
	if (e < 0) {
		srv->want_ahead = true; /* the server waits on, for another restore */
		return e;
	}
	/* this thread confined as it would have been from its start */
	e = vmm_seccomp_enter(EMBER_THREAD_CTL);
	const char *fail = e < 0 ? "cannot load the control thread's seccomp filter" : NULL;
	if (!fail && (e = ember_vm_add_event_listener(vm, on_vm_event, srv)) < 0)
		fail = "cannot listen to the VM's events";
	if (fail) {
		ember_vm_destroy(vm);
		srv->want_ahead = true;
		return vmm_errf(&r->err, e, "restore: %s: %s", fail, strerror(-e));
	}
	struct ember_vm_info info;
	ember_vm_query(vm, &info);
	pthread_mutex_lock(&srv->lock);
	srv->vm = vm;
	srv->listening = true;
	srv->vm_owned = true;
	pthread_cond_broadcast(&srv->vm_cond);
	pthread_mutex_unlock(&srv->lock);
	struct json_object *res = json_object_new_object();
	json_object_object_add(res, "vcpus", json_object_new_int((int)info.vcpus));
	json_object_object_add(res, "mem_size", json_object_new_uint64(info.mem_size));
	json_object_object_add(res, "restore_us", json_object_new_uint64(us));
	r->result = res;
	return 0;
}

static int h_status(struct req *r)
{
	if (!r->srv->vm) { /* a waiting server */
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "state", json_object_new_string("waiting"));
		json_object_object_add(o, "vcpus_paused", json_object_new_boolean(0));
		json_object_object_add(o, "vcpus", json_object_new_int(0));
		json_object_object_add(o, "mem_size", json_object_new_uint64(0));
		json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
		r->result = o;
		return 0;
	}
	struct ember_vm_info info;
	int e = ember_vm_query(r->srv->vm, &info);
	if (e < 0)
		return vmm_errf(&r->err, e, "status: %s", strerror(-e));
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(ember_vm_state_name(info.state)));
	json_object_object_add(o, "vcpus_paused",
			       json_object_new_boolean(ember_vm_vcpus_paused(r->srv->vm)));
	json_object_object_add(o, "vcpus", json_object_new_int((int)info.vcpus));
	json_object_object_add(o, "mem_size", json_object_new_uint64(info.mem_size));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	r->result = o;
	return 0;
}

/* The handler of each request of the table, by name (a unit test checks
 * that every command has one). */
static const struct {
	const char *name;
	handler_fn fn;
} handlers[] = {
    {"exit", h_exit},
    {"restore", h_restore},
    {"powerbtn", h_powerbtn},
    {"sleepbtn", h_sleepbtn},
    {"rtc", h_rtc},
    {"gpe", h_gpe},
    {"suspend-vcpus", h_suspend_vcpus},
    {"resume-vcpus", h_resume_vcpus},
    {"suspend-vm", h_suspend_vm},
    {"resume-vm", h_resume_vm},
    {"balloon", h_balloon},
    {"disk", h_disk},
    {"snapshot", h_snapshot},
    {"swap", h_swap},
    {"hotplug-net", h_hotplug_net},
    {"register-listener", h_register},
    {"unregister-listener", h_unregister_listener},
    {"unregister", h_unregister},
    {"vcpu-pid-tid", h_vcpu_pid_tid},
    {"make-rt", h_make_rt},
    {"pci-pme", h_pci_pme},
    {"usb", h_usb},
    {"gpu", h_gpu},
    {"bat", h_bat},
    {"hotplug-vfio", h_hotplug_vfio},
    {"status", h_status},
};

static handler_fn find_handler(const char *name)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (!strcmp(handlers[i].name, name))
			return handlers[i].fn;
	return NULL;
}

/* Tested: every command of the table has a handler. */
bool ctl_server_has_handler(const char *name);
bool ctl_server_has_handler(const char *name)
{
	return find_handler(name) != NULL;
}

/* ------------------------------------------------------------ the control thread */

static void client_close(struct ember_ctl_server *srv, struct client *c)
{
	pthread_mutex_lock(&srv->lock);
	close(c->fd);
	c->fd = -1;
	c->events = 0;
	srv->nclients--;
	pthread_mutex_unlock(&srv->lock);
}

static void on_accept(struct ember_ctl_server *srv)
{
	int fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (srv->nclients >= srv->o.max_clients) {
		char m[96];
		snprintf(m, sizeof(m), "the server has %u clients already", srv->o.max_clients);
		send_error(fd, -1, "busy", m, -EBUSY);
		close(fd);
		return;
	}
	for (unsigned i = 0; i < srv->o.max_clients; i++) {
		struct client *c = &srv->clients[i];
		if (c->fd >= 0)
			continue;
		if (send_obj(fd, ctl_hello("server")) < 0) {
			close(fd);
			return;
		}
		pthread_mutex_lock(&srv->lock);
		*c = (struct client){.fd = fd, .last_ns = vmm_now_ns()};
		srv->nclients++;
		pthread_mutex_unlock(&srv->lock);
		return;
	}
	close(fd);
}

/* The requests a waiting server (no VM yet) serves; the others answer
 * no-vm. */
static bool waiting_request(const char *name)
{
	static const char *const ok[] = {
	    "restore", "status", "exit", "register-listener", "unregister-listener", "unregister"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(ok[i], name))
			return true;
	return false;
}

/* Serves one datagram of c; false: close the connection. */
static bool serve(struct ember_ctl_server *srv, struct client *c, const char *buf, size_t len)
{
	struct ctl_msg m;
	const char *code;
	char why[256];
	int r = ctl_decode(buf, len, &m, &code, why, sizeof(why));
	bool keep = true;
	if (r < 0) {
		keep = send_error(c->fd, m.has_id ? m.id : -1, code, why, r) == 0;
	} else if (m.kind == CTL_MSG_HELLO) {
		if (c->hello) {
			keep = send_error(c->fd, -1, "bad-message", "a second hello", -EPROTO) == 0;
		} else if (m.protocol != EMBER_CTL_PROTOCOL) {
			snprintf(why, sizeof(why),
				 "protocol %" PRId64 " asked, this server speaks %d", m.protocol,
				 EMBER_CTL_PROTOCOL);
			send_error(c->fd, -1, "protocol-version", why, -EPROTONOSUPPORT);
			keep = false;
		} else {
			c->hello = true;
		}
	} else if (!c->hello) {
		send_error(c->fd, m.id, "hello-required", "send {\"hello\":{\"protocol\":1}} first",
			   -EPROTO);
		keep = false;
	} else {
		struct req q = {.srv = srv, .client = c, .args = m.args};
		handler_fn fn = find_handler(m.cmd->name);
		if (!srv->vm && fn && !waiting_request(m.cmd->name)) {
			fn = NULL;
			q.code = "no-vm";
			r = vmm_errf(&q.err, -ENXIO,
				     "%s: no VM yet (this VMM waits for a restore request)",
				     m.cmd->name);
		} else {
			r = fn ? fn(&q) : vmm_errf(&q.err, -ENOSYS, "no handler");
		}
		if (r < 0) {
			json_object_put(q.result);
			keep = send_error(c->fd, m.id, q.code ? q.code : ctl_errno_code(r),
					  q.err.msg[0] ? q.err.msg : strerror(-r), r) == 0;
		} else {
			keep = send_obj(c->fd, ctl_response_ok(m.id, q.result)) == 0;
		}
	}
	ctl_msg_fini(&m);
	return keep;
}

static void on_readable(struct ember_ctl_server *srv, struct client *c)
{
	/* MSG_TRUNC: the datagram's real length, so an oversized one is seen */
	ssize_t n = recv(c->fd, srv->rbuf, EMBER_CTL_MAX_MESSAGE + 1, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(srv, c);
		return;
	}
	c->last_ns = vmm_now_ns();
	bool keep;
	if (n > EMBER_CTL_MAX_MESSAGE) {
		char why[96];
		snprintf(why, sizeof(why), "a message of %zd bytes (at most %d): discarded", n,
			 EMBER_CTL_MAX_MESSAGE);
		keep = send_error(c->fd, -1, "too-large", why, -EMSGSIZE) == 0;
	} else {
		keep = serve(srv, c, srv->rbuf, (size_t)n);
	}
	if (!keep)
		client_close(srv, c);
}

/* Closes the clients past their hello or idle time; returns the ms until
 * the next such deadline (-1: none). */
static int expire(struct ember_ctl_server *srv)
{
	uint64_t now = vmm_now_ns();
	int64_t next = -1;
	for (unsigned i = 0; i < srv->o.max_clients; i++) {
		struct client *c = &srv->clients[i];
		if (c->fd < 0 || c->events) /* listeners may stay silent */
			continue;
		uint64_t lim = (uint64_t)(c->hello ? srv->o.idle_ms : srv->o.hello_ms) * 1000000ull;
		uint64_t idle = now - c->last_ns;
		if (idle >= lim) {
			send_error(c->fd, -1, "idle",
				   c->hello ? "no request for too long" : "no hello in time",
				   -ETIMEDOUT);
			client_close(srv, c);
			continue;
		}
		int64_t left = (int64_t)((lim - idle) / 1000000ull) + 1;
		if (next < 0 || left < next)
			next = left;
	}
	return (int)next;
}

static void *ctl_thread(void *arg)
{
	struct ember_ctl_server *srv = arg;
	pthread_setname_np(pthread_self(), "ember-ctl");
	/* the control thread's seccomp filter (the mode of the last VM created);
	 * a thread that cannot be confined serves nothing. A waiting server's
	 * thread is confined once its restore has built the VM (h_restore). */
	if (!srv->waiting && vmm_seccomp_enter(EMBER_THREAD_CTL) < 0)
		return NULL;
	unsigned nfds = srv->o.max_clients + 2;
	struct pollfd *p = calloc(nfds, sizeof(*p));
	unsigned *who = calloc(nfds, sizeof(*who));
	if (!p || !who) {
		free(p);
		free(who);
		return NULL;
	}
	for (;;) {
		/* a waiting server keeps a VM made ahead for its next restore (none
		 * if it cannot be made: the restore then says why) */
		if (srv->want_ahead && !srv->ahead && !srv->vm && !srv->cancelled)
			(void)ember_vm_ahead_make(srv->base.hyp, &srv->ahead, NULL);
		srv->want_ahead = false;
		int timeout = expire(srv);
		unsigned n = 0;
		p[n++] = (struct pollfd){.fd = srv->wake_fd, .events = POLLIN};
		p[n++] = (struct pollfd){.fd = srv->lfd, .events = POLLIN};
		for (unsigned i = 0; i < srv->o.max_clients; i++) {
			if (srv->clients[i].fd < 0)
				continue;
			who[n] = i;
			p[n++] = (struct pollfd){.fd = srv->clients[i].fd, .events = POLLIN};
		}
		int r = poll(p, n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		if (p[0].revents)
			break; /* ember_ctl_server_stop */
		if (p[1].revents & POLLIN)
			on_accept(srv);
		for (unsigned k = 2; k < n; k++) {
			struct client *c = &srv->clients[who[k]];
			if (c->fd != p[k].fd || !p[k].revents)
				continue;
			if (p[k].revents & POLLIN)
				on_readable(srv, c);
			else
				client_close(srv, c); /* POLLHUP/POLLERR without data */
		}
	}
	free(p);
	free(who);
	return NULL;
}

/* ------------------------------------------------------------ start and stop */

/* A socket at path nobody listens on is stale: removed. A live one or
 * anything else stays. */
static int clear_path(const char *path, struct ember_error *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : vmm_errf(err, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return vmm_errf(err, -EEXIST, "%s exists and is not a socket: not replaced", path);
	if (st.st_uid != getuid())
		return vmm_errf(err, -EEXIST, "%s is another user's socket: not replaced", path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vmm_errf(err, -errno, "socket: %s", strerror(errno));
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, path, strlen(path) + 1);
	int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	int e = errno;
	close(fd);
	if (r == 0 || e != ECONNREFUSED)
		return vmm_errf(err, -EADDRINUSE, "%s: a server already listens there", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return vmm_errf(err, -errno, "%s: cannot remove the stale socket: %s", path,
				strerror(errno));
	return 0;
}

static void server_free(struct ember_ctl_server *srv)
{
	if (srv->listening)
		ember_vm_remove_event_listener(srv->vm, on_vm_event, srv);
	if (srv->vm_owned) /* restored, never taken by ember_ctl_server_wait_vm */
		ember_vm_destroy(srv->vm);
	ember_vm_ahead_free(srv->ahead);
	for (unsigned i = 0; srv->clients && i < srv->o.max_clients; i++)
		if (srv->clients[i].fd >= 0)
			close(srv->clients[i].fd);
	if (srv->lfd >= 0) {
		struct stat st;
		if (lstat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
			unlink(srv->path);
		close(srv->lfd);
	}
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->vm_cond);
	free(srv->clients);
	free(srv->rbuf);
	free(srv);
}

/* ember_ctl_server_start, or with vm NULL ember_ctl_server_start_waiting's
 * (base given). */
static int server_start(struct ember_vm *vm, const char *path,
			const struct ember_ctl_server_opts *opts,
			const struct ember_restore_opts *base, struct ember_ctl_server **out,
			struct ember_error *err)
{
	if (!path || !out || !*path)
		return vmm_errf(err, -EINVAL, "control socket: no path");
	*out = NULL;
	struct ember_ctl_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return vmm_errf(err, -ENOMEM, "out of memory");
	if (strlen(path) >= sizeof(srv->path)) {
		free(srv);
		return vmm_errf(err, -EINVAL, "control socket: the path is longer than %zu bytes",
				sizeof(srv->path) - 1);
	}
	memcpy(srv->path, path, strlen(path) + 1);
	srv->vm = vm;
	srv->lfd = srv->wake_fd = -1;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* ember_ctl_server_wait_vm's deadline */
	pthread_cond_init(&srv->vm_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!vm) {
		srv->waiting = true;
		srv->want_ahead = true;
		srv->base = *base;
		srv->base.devices = NULL; /* the request's own */
		srv->base.ndevices = 0;
		srv->base.ahead = NULL;
	}
	if (opts)
		srv->o = *opts;
	if (!srv->o.max_clients)
		srv->o.max_clients = DEFAULT_MAX_CLIENTS;
	if (!srv->o.idle_ms)
		srv->o.idle_ms = DEFAULT_IDLE_MS;
	if (!srv->o.hello_ms)
		srv->o.hello_ms = DEFAULT_HELLO_MS;
	srv->clients = calloc(srv->o.max_clients, sizeof(srv->clients[0]));
	srv->rbuf = malloc(EMBER_CTL_MAX_MESSAGE + 1);
	if (!srv->clients || !srv->rbuf) {
		server_free(srv);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < srv->o.max_clients; i++)
		srv->clients[i].fd = -1;
	int r = clear_path(path, err);
	if (r < 0) {
		server_free(srv);
		return r;
	}
	srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	srv->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->wake_fd < 0 || srv->lfd < 0) {
		r = -errno;
		server_free(srv);
		return vmm_errf(err, r, "control socket: %s", strerror(-r));
	}
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, path, strlen(path) + 1);
	/* owner only from the start: bind creates the file with the socket
	 * inode's mode (less the umask), made 0600 first; the process umask
	 * is left alone (other threads may be creating files) */
	r = fchmod(srv->lfd, 0600) < 0 ? -1 : bind(srv->lfd, (struct sockaddr *)&a, sizeof(a));
	int e = errno;
	if (r < 0) {
		close(srv->lfd);
		srv->lfd = -1;
		server_free(srv);
		return vmm_errf(err, -e, "control socket %s: %s", path, strerror(e));
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		srv->dev = st.st_dev;
		srv->ino = st.st_ino;
	}
	if (lstat(path, &st) < 0 || (st.st_mode & 0077)) { /* never wider than 0600 */
		r = -EPERM;
		server_free(srv);
		return vmm_errf(err, r, "control socket %s: not created owner-only", path);
	}
	if (listen(srv->lfd, 128) < 0) {
		r = -errno;
		server_free(srv);
		return vmm_errf(err, r, "control socket %s: listen: %s", path, strerror(-r));
	}
	r = vm ? ember_vm_add_event_listener(vm, on_vm_event, srv) : 0;
	if (r < 0) {
		server_free(srv);
		return vmm_errf(err, r, "control socket: cannot listen to the VM's events: %s",
				strerror(-r));
	}
	srv->listening = vm != NULL;
	sigset_t all, oldset;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &oldset);
	r = -pthread_create(&srv->thread, NULL, ctl_thread, srv);
	pthread_sigmask(SIG_SETMASK, &oldset, NULL);
	if (r < 0) {
		server_free(srv);
		return vmm_errf(err, r, "control socket: no thread: %s", strerror(-r));
	}
	srv->thread_started = true;
	*out = srv;
	return 0;
}

int ember_ctl_server_start(struct ember_vm *vm, const char *path,
			   const struct ember_ctl_server_opts *opts, struct ember_ctl_server **out,
			   struct ember_error *err)
{
	if (!vm)
		return vmm_errf(err, -EINVAL, "control socket: no VM");
	return server_start(vm, path, opts, NULL, out, err);
}

int ember_ctl_server_start_waiting(const char *path, const struct ember_ctl_server_opts *opts,
				   const struct ember_restore_opts *base,
				   struct ember_ctl_server **out, struct ember_error *err)
{
	struct ember_restore_opts none = {.console_in = -1, .console_out = -1};
	if (base && base->ahead)
		return vmm_errf(err, -EINVAL, "control socket: a VM made ahead in base");
	return server_start(NULL, path, opts, base ? base : &none, out, err);
}

int ember_ctl_server_wait_vm(struct ember_ctl_server *srv, int timeout_ms, struct ember_vm **vm)
{
	if (!srv || !vm || !srv->waiting)
		return -EINVAL;
	*vm = NULL;
	struct timespec dl;
	if (timeout_ms >= 0)
		base_deadline_after_ms(&dl, timeout_ms);
	int r = 0;
	pthread_mutex_lock(&srv->lock);
	while (!srv->vm_owned && !srv->cancelled && !srv->vm_taken && r == 0)
		if (base_cond_wait_until(&srv->vm_cond, &srv->lock, timeout_ms < 0 ? NULL : &dl) ==
		    ETIMEDOUT)
			r = -ETIMEDOUT;
	if (srv->vm_owned) {
		*vm = srv->vm;
		srv->vm_owned = false;
		srv->vm_taken = true;
		r = 0;
	} else if (srv->vm_taken) {
		r = -EINVAL;
	} else if (srv->cancelled) {
		r = -ECANCELED;
	}
	pthread_mutex_unlock(&srv->lock);
	return r;
}

void ember_ctl_server_stop(struct ember_ctl_server *srv)
{
	if (!srv)
		return;
	/* no event comes after this (a waiting server's restore under way may
	 * yet add its listener: server_free removes that one) */
	pthread_mutex_lock(&srv->lock);
	bool listening = srv->listening;
	struct ember_vm *vm = srv->vm;
	pthread_mutex_unlock(&srv->lock);
	if (listening) {
		ember_vm_remove_event_listener(vm, on_vm_event, srv);
		pthread_mutex_lock(&srv->lock);
		srv->listening = false;
		pthread_mutex_unlock(&srv->lock);
	}
	if (srv->thread_started) {
		uint64_t one = 1;
		if (write(srv->wake_fd, &one, sizeof(one)) < 0) {
			/* an eventfd write fails only when it would overflow */
		}
		pthread_join(srv->thread, NULL);
	}
	server_free(srv);
}

const char *ember_ctl_server_path(const struct ember_ctl_server *srv)
{
	return srv ? srv->path : NULL;
}
