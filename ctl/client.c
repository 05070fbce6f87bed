/* ctl/client.c - the C client library of the control socket (ember_ctl_*): connect with the hello, one typed call per request, the event stream, the per-user socket directory. */
#include "proto.h"

#include "../lib/io/util.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 5000
#define EVENT_QUEUE	   64

struct ember_ctl {
	int fd;
	int timeout_ms;
	int64_t next_id;
	char code[32]; /* the last refused request's code */
	char *buf;     /* EMBER_CTL_MAX_MESSAGE + 1 */
	/* events that came while a call waited: a ring of JSON texts */
	char *queue[EVENT_QUEUE];
	unsigned q_head, q_len;
	uint64_t q_dropped;
	char *last_event; /* what ember_ctl_next_event handed out last */
};

/* Receives one datagram within timeout_ms into c->buf (NUL-terminated).
 * Returns its length, -ETIMEDOUT, -EPIPE (closed), -EMSGSIZE. */
static long recv_one(struct ember_ctl *c, int timeout_ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	uint64_t end = vmm_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
	for (;;) {
		int wait = -1;
		if (timeout_ms >= 0) {
			uint64_t now = vmm_now_ns();
			wait = now >= end ? 0 : (int)((end - now + 999999) / 1000000);
		}
		int r = poll(&p, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n =
		    recv(c->fd, c->buf, EMBER_CTL_MAX_MESSAGE + 1, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return errno == ECONNRESET ? -EPIPE : -errno;
		if (n == 0)
			return -EPIPE;
		if (n > EMBER_CTL_MAX_MESSAGE)
			return -EMSGSIZE;
		c->buf[n] = 0;
		return (long)n;
	}
}

static struct json_object *parse(const char *s, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(CTL_MAX_DEPTH);
	if (!tok)
		return NULL;
	struct json_object *o = json_tokener_parse_ex(tok, s, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static int send_obj(struct ember_ctl *c, struct json_object *o)
{
	size_t len;
	char *s = o ? ctl_encode(o, &len) : NULL;
	json_object_put(o);
	if (!s)
		return -ENOMEM;
	ssize_t w = send(c->fd, s, len, MSG_NOSIGNAL);
	int e = errno;
	free(s);
	if (w == (ssize_t)len)
		return 0;
	return w < 0 ? (e == ECONNRESET ? -EPIPE : -e) : -EIO;
}

/* A refused request: err gets "CODE: message" and the server's errno. */
static int remote_error(struct ember_ctl *c, struct json_object *resp, struct ember_error *err)
{
	struct json_object *e, *v;
	const char *code = "failed", *msg = "";
	int no = -EPROTO;
	if (json_object_object_get_ex(resp, "error", &e) &&
	    json_object_is_type(e, json_type_object)) {
		if (json_object_object_get_ex(e, "code", &v) &&
		    json_object_is_type(v, json_type_string))
			code = json_object_get_string(v);
		if (json_object_object_get_ex(e, "message", &v) &&
		    json_object_is_type(v, json_type_string))
			msg = json_object_get_string(v);
		if (json_object_object_get_ex(e, "errno", &v) &&
		    json_object_is_type(v, json_type_int))
			no = json_object_get_int(v);
	}
	if (no >= 0 || no < -4095)
		no = ctl_code_errno(code);
	snprintf(c->code, sizeof(c->code), "%s", code);
	return vmm_errf(err, no, "%s: %s", code, msg);
}

static void queue_event(struct ember_ctl *c, const char *s)
{
	char *copy = strdup(s);
	if (!copy)
		return;
	if (c->q_len == EVENT_QUEUE) { /* the oldest goes */
		free(c->queue[c->q_head]);
		c->q_head = (c->q_head + 1) % EVENT_QUEUE;
		c->q_len--;
		c->q_dropped++;
	}
	c->queue[(c->q_head + c->q_len) % EVENT_QUEUE] = copy;
	c->q_len++;
}

/* Sends the request and waits for its response; *result takes the result
 * object (NULL: dropped). args is taken (NULL: {}). */
static int call_obj(struct ember_ctl *c, const char *name, struct json_object *args,
		    struct json_object **result, struct ember_error *err)
{
	if (result)
		*result = NULL;
	if (!c || !name) {
		json_object_put(args);
		return vmm_errf(err, -EINVAL, "no connection or no request");
	}
	c->code[0] = 0;
	int64_t id = c->next_id++;
	struct json_object *o = json_object_new_object();
	if (!o) {
		json_object_put(args);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "request", json_object_new_string(name));
	json_object_object_add(o, "args", args ? args : json_object_new_object());
	int r = send_obj(c, o);
	if (r < 0)
		return vmm_errf(err, r, "%s: cannot send: %s", name, strerror(-r));
	uint64_t end = vmm_now_ns() + (uint64_t)c->timeout_ms * 1000000ull;
	for (;;) {
		uint64_t now = vmm_now_ns();
		long n = recv_one(c, now >= end ? 0 : (int)((end - now) / 1000000ull));
		if (n < 0)
			return vmm_errf(err, (int)n, "%s: %s", name,
					n == -ETIMEDOUT ? "no response in time"
					: n == -EPIPE	? "the server closed the connection"
							: strerror((int)-n));
		struct json_object *m = parse(c->buf, (size_t)n), *v;
		if (!m || !json_object_is_type(m, json_type_object)) {
			json_object_put(m);
			return vmm_errf(err, -EPROTO, "%s: the server sent something not JSON",
					name);
		}
		if (json_object_object_get_ex(m, "event", NULL)) {
			queue_event(c, c->buf);
			json_object_put(m);
			continue;
		}
		bool ok_id = json_object_object_get_ex(m, "id", &v) &&
			     json_object_is_type(v, json_type_int) &&
			     json_object_get_int64(v) == id;
		bool null_id = json_object_object_get_ex(m, "id", &v) && !v;
		struct json_object *okv;
		bool has_ok = json_object_object_get_ex(m, "ok", &okv) &&
			      json_object_is_type(okv, json_type_boolean);
		if (!has_ok || (!ok_id && !null_id)) {
			json_object_put(m);
			if (!has_ok)
				return vmm_errf(err, -EPROTO, "%s: a message that is no response",
						name);
			continue; /* an older request's late response */
		}
		if (!json_object_get_boolean(okv)) {
			r = remote_error(c, m, err);
			json_object_put(m);
			return r;
		}
		if (result && json_object_object_get_ex(m, "result", &v))
			*result = json_object_get(v);
		json_object_put(m);
		return 0;
	}
}

/* ------------------------------------------------------------ connect */

int ember_ctl_connect(const char *path, int timeout_ms, struct ember_ctl **out,
		      struct ember_error *err)
{
	if (!path || !out)
		return vmm_errf(err, -EINVAL, "no socket path");
	*out = NULL;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		return vmm_errf(err, -EINVAL, "%s: too long for a socket path", path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	struct ember_ctl *c = calloc(1, sizeof(*c));
	if (!c || !(c->buf = malloc(EMBER_CTL_MAX_MESSAGE + 1))) {
		free(c);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	c->next_id = 1;
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		ember_ctl_close(c);
		return vmm_errf(err, -e, "%s: %s", path,
				e == EPROTOTYPE ? "not an Ember control socket" : strerror(e));
	}
	long n = recv_one(c, c->timeout_ms);
	struct json_object *m = n > 0 ? parse(c->buf, (size_t)n) : NULL, *h, *p;
	int r = 0;
	if (n < 0)
		r = vmm_errf(err, (int)n, "%s: no hello from the server: %s", path,
			     n == -ETIMEDOUT ? "timed out" : strerror((int)-n));
	else if (m && json_object_object_get_ex(m, "ok", NULL))
		r = remote_error(c, m, err); /* e.g. busy */
	else if (!m || !json_object_object_get_ex(m, "hello", &h) ||
		 !json_object_object_get_ex(h, "protocol", &p) ||
		 !json_object_is_type(p, json_type_int))
		r = vmm_errf(err, -EPROTO, "%s: not an Ember control socket (no hello)", path);
	else if (json_object_get_int64(p) != EMBER_CTL_PROTOCOL)
		r = vmm_errf(err, -EPROTO, "%s: the server speaks protocol %" PRId64 ", not %d",
			     path, json_object_get_int64(p), EMBER_CTL_PROTOCOL);
	json_object_put(m);
	if (r == 0) {
		r = send_obj(c, ctl_hello("client"));
		if (r < 0)
			vmm_errf(err, r, "%s: cannot send the hello: %s", path, strerror(-r));
	}
	if (r < 0) {
		ember_ctl_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void ember_ctl_close(struct ember_ctl *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	while (c->q_len) {
		free(c->queue[c->q_head]);
		c->q_head = (c->q_head + 1) % EVENT_QUEUE;
		c->q_len--;
	}
	free(c->last_event);
	free(c->buf);
	free(c);
}

int ember_ctl_fd(const struct ember_ctl *c)
{
	return c ? c->fd : -1;
}

const char *ember_ctl_error_code(const struct ember_ctl *c)
{
	return c ? c->code : "";
}

int ember_ctl_call(struct ember_ctl *c, const char *name, const char *args_json, char **result,
		   struct ember_error *err)
{
	if (result)
		*result = NULL;
	struct json_object *args = NULL;
	if (args_json && *args_json) {
		args = parse(args_json, strlen(args_json));
		if (!args || !json_object_is_type(args, json_type_object)) {
			json_object_put(args);
			return vmm_errf(err, -EINVAL, "%s: the arguments are not a JSON object",
					name ? name : "?");
		}
	}
	struct json_object *res;
	int r = call_obj(c, name, args, &res, err);
	if (r == 0 && result) {
		const char *s =
		    res ? json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN) : NULL;
		*result = strdup(s ? s : "{}");
		if (!*result)
			r = vmm_errf(err, -ENOMEM, "out of memory");
	}
	json_object_put(res);
	return r;
}

/* ------------------------------------------------------------ typed calls */

static int simple(struct ember_ctl *c, const char *name, struct ember_error *err)
{
	return call_obj(c, name, NULL, NULL, err);
}

static struct json_object *args_new(void)
{
	return json_object_new_object();
}

static void add_u(struct json_object *o, const char *k, uint64_t v)
{
	if (o)
		json_object_object_add(o, k, json_object_new_uint64(v));
}

static void add_s(struct json_object *o, const char *k, const char *v)
{
	if (o && v)
		json_object_object_add(o, k, json_object_new_string(v));
}

int ember_ctl_exit(struct ember_ctl *c, struct ember_error *err)
{
	return simple(c, "exit", err);
}

int ember_ctl_powerbtn(struct ember_ctl *c, struct ember_error *err)
{
	return simple(c, "powerbtn", err);
}

int ember_ctl_sleepbtn(struct ember_ctl *c, struct ember_error *err)
{
	return simple(c, "sleepbtn", err);
}

int ember_ctl_rtc(struct ember_ctl *c, struct ember_error *err)
{
	return simple(c, "rtc", err);
}

int ember_ctl_gpe(struct ember_ctl *c, unsigned n, struct ember_error *err)
{
	struct json_object *a = args_new();
	add_u(a, "n", n);
	return call_obj(c, "gpe", a, NULL, err);
}

int ember_ctl_suspend_vcpus(struct ember_ctl *c, struct ember_error *err)
{
	return simple(c, "suspend-vcpus", err);
}

int ember_ctl_resume_vcpus(struct ember_ctl *c, struct ember_error *err)
{
	return simple(c, "resume-vcpus", err);
}

int ember_ctl_suspend_vm(struct ember_ctl *c, struct ember_error *err)
{
	return simple(c, "suspend-vm", err);
}

int ember_ctl_resume_vm(struct ember_ctl *c, struct ember_error *err)
{
	return simple(c, "resume-vm", err);
}

int ember_ctl_balloon_target(struct ember_ctl *c, uint64_t bytes, struct ember_error *err)
{
	struct json_object *a = args_new();
	add_s(a, "command", "target");
	add_u(a, "bytes", bytes);
	return call_obj(c, "balloon", a, NULL, err);
}

static uint64_t get_u(struct json_object *o, const char *k)
{
	struct json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_uint64(v) : 0;
}

int ember_ctl_balloon_stats(struct ember_ctl *c, struct ember_balloon_stats *out,
			    struct ember_error *err)
{
	if (!out)
		return vmm_errf(err, -EINVAL, "no result buffer");
	struct json_object *a = args_new(), *res;
	add_s(a, "command", "stats");
	int r = call_obj(c, "balloon", a, &res, err);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	out->target_bytes = get_u(res, "target_bytes");
	out->actual_bytes = get_u(res, "actual_bytes");
	out->inflated_bytes = get_u(res, "inflated_bytes");
	out->deflated_bytes = get_u(res, "deflated_bytes");
	out->reported_bytes = get_u(res, "reported_bytes");
	out->given_back_bytes = get_u(res, "given_back_bytes");
	out->guest_updates = get_u(res, "guest_updates");
	struct json_object *g;
	if (json_object_object_get_ex(res, "guest", &g))
		for (unsigned i = 0; i < EMBER_BALLOON_GUEST_STATS; i++)
			if (json_object_object_get_ex(g, ctl_balloon_guest_names[i], NULL)) {
				out->guest_valid |= 1u << i;
				out->guest[i] = get_u(g, ctl_balloon_guest_names[i]);
			}
	json_object_put(res);
	return 0;
}

int ember_ctl_disk_resize(struct ember_ctl *c, unsigned index, uint64_t bytes,
			  struct ember_error *err)
{
	struct json_object *a = args_new();
	add_u(a, "index", index);
	add_s(a, "command", "resize");
	add_u(a, "bytes", bytes);
	return call_obj(c, "disk", a, NULL, err);
}

int ember_ctl_snapshot(struct ember_ctl *c, const char *dir, unsigned flags, const char *base,
		       struct ember_error *err)
{
	struct json_object *a = args_new();
	add_s(a, "command", "take");
	add_s(a, "path", dir);
	if (a && (flags & EMBER_CTL_SNAPSHOT_RESUME))
		json_object_object_add(a, "resume", json_object_new_boolean(1));
	if (flags & EMBER_CTL_SNAPSHOT_INCREMENTAL)
		add_s(a, "base", base);
	return call_obj(c, "snapshot", a, NULL, err);
}

int ember_ctl_restore(struct ember_ctl *c, const char *dir, const char *memory, unsigned flags,
		      const char *disk, const char *net, const char *vsock, uint64_t *us,
		      struct ember_error *err)
{
	struct json_object *a = args_new(), *res;
	add_s(a, "path", dir);
	if (memory)
		add_s(a, "memory", memory);
	if (a && (flags & EMBER_CTL_RESTORE_VERIFY))
		json_object_object_add(a, "verify", json_object_new_boolean(1));
	if (disk)
		add_s(a, "disk", disk);
	if (net)
		add_s(a, "net", net);
	if (vsock)
		add_s(a, "vsock", vsock);
	int r = call_obj(c, "restore", a, &res, err);
	if (r < 0)
		return r;
	if (us)
		*us = get_u(res, "restore_us");
	json_object_put(res);
	return 0;
}

int ember_ctl_swap(struct ember_ctl *c, const char *command, char **status, struct ember_error *err)
{
	char args[128];
	snprintf(args, sizeof(args), "{\"command\":\"%.32s\"}", command ? command : "");
	return ember_ctl_call(c, "swap", args, status, err);
}

int ember_ctl_net_add(struct ember_ctl *c, const char *spec, unsigned *slot,
		      struct ember_error *err)
{
	struct json_object *a = args_new(), *res;
	add_s(a, "command", "add");
	add_s(a, "spec", spec);
	int r = call_obj(c, "hotplug-net", a, &res, err);
	if (r == 0 && slot)
		*slot = (unsigned)get_u(res, "slot");
	json_object_put(res);
	return r;
}

int ember_ctl_net_remove(struct ember_ctl *c, unsigned slot, struct ember_error *err)
{
	struct json_object *a = args_new();
	add_s(a, "command", "remove");
	add_u(a, "slot", slot);
	return call_obj(c, "hotplug-net", a, NULL, err);
}

static struct json_object *events_args(unsigned mask)
{
	struct json_object *a = args_new(), *l = json_object_new_array();
	for (unsigned k = 0; k < EMBER_VM_EVENT_KINDS; k++)
		if (mask & (1u << k))
			json_object_array_add(l, json_object_new_string(ember_vm_event_kind_name(
						     (enum ember_vm_event_kind)k)));
	if (a)
		json_object_object_add(a, "events", l);
	else
		json_object_put(l);
	return a;
}

int ember_ctl_register_listener(struct ember_ctl *c, unsigned mask, struct ember_error *err)
{
	return call_obj(c, "register-listener", events_args(mask), NULL, err);
}

int ember_ctl_unregister_listener(struct ember_ctl *c, unsigned mask, struct ember_error *err)
{
	return call_obj(c, "unregister-listener", events_args(mask), NULL, err);
}

int ember_ctl_unregister(struct ember_ctl *c, struct ember_error *err)
{
	return simple(c, "unregister", err);
}

int ember_ctl_vcpu_pid_tid(struct ember_ctl *c, pid_t *pid, pid_t *tids, unsigned max, unsigned *n,
			   struct ember_error *err)
{
	struct json_object *res, *v;
	int r = call_obj(c, "vcpu-pid-tid", NULL, &res, err);
	if (r < 0)
		return r;
	if (pid)
		*pid = (pid_t)get_u(res, "pid");
	size_t count = 0;
	if (json_object_object_get_ex(res, "vcpus", &v) &&
	    json_object_is_type(v, json_type_array)) {
		count = json_object_array_length(v);
		for (size_t i = 0; i < count; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			uint64_t idx = get_u(e, "index");
			if (tids && idx < max)
				tids[idx] = (pid_t)get_u(e, "tid");
		}
	}
	if (n)
		*n = (unsigned)count;
	json_object_put(res);
	return 0;
}

int ember_ctl_make_rt(struct ember_ctl *c, unsigned priority, struct ember_error *err)
{
	struct json_object *a = args_new();
	if (priority)
		add_u(a, "priority", priority);
	return call_obj(c, "make-rt", a, NULL, err);
}

int ember_ctl_pci_pme(struct ember_ctl *c, unsigned requester, struct ember_error *err)
{
	struct json_object *a = args_new();
	add_u(a, "requester", requester);
	return call_obj(c, "pci-pme", a, NULL, err);
}

static int with_command(struct ember_ctl *c, const char *name, const char *command,
			struct ember_error *err)
{
	struct json_object *a = args_new();
	add_s(a, "command", command);
	return call_obj(c, name, a, NULL, err);
}

int ember_ctl_usb(struct ember_ctl *c, const char *command, struct ember_error *err)
{
	return with_command(c, "usb", command, err);
}

int ember_ctl_gpu(struct ember_ctl *c, const char *command, struct ember_error *err)
{
	return with_command(c, "gpu", command, err);
}

int ember_ctl_bat(struct ember_ctl *c, const char *command, struct ember_error *err)
{
	return with_command(c, "bat", command, err);
}

int ember_ctl_hotplug_vfio(struct ember_ctl *c, const char *command, struct ember_error *err)
{
	return with_command(c, "hotplug-vfio", command, err);
}

static enum ember_vm_state state_of(const char *s)
{
	for (int k = EMBER_VM_CREATED; k <= EMBER_VM_STOPPED; k++)
		if (s && !strcmp(s, ember_vm_state_name((enum ember_vm_state)k)))
			return (enum ember_vm_state)k;
	return EMBER_VM_CREATED;
}

static const char *get_s(struct json_object *o, const char *k)
{
	struct json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		   ? json_object_get_string(v)
		   : NULL;
}

static bool get_b(struct json_object *o, const char *k)
{
	struct json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

int ember_ctl_status(struct ember_ctl *c, struct ember_ctl_status *out, struct ember_error *err)
{
	if (!out)
		return vmm_errf(err, -EINVAL, "no result buffer");
	struct json_object *res;
	int r = call_obj(c, "status", NULL, &res, err);
	if (r < 0)
		return r;
	const char *st = get_s(res, "state");
	out->waiting = st && !strcmp(st, "waiting");
	out->state = state_of(st);
	out->vcpus_paused = get_b(res, "vcpus_paused");
	out->vcpus = (unsigned)get_u(res, "vcpus");
	out->mem_size = get_u(res, "mem_size");
	out->pid = (pid_t)get_u(res, "pid");
	json_object_put(res);
	return 0;
}

/* ------------------------------------------------------------ events */

static int fill_event(struct ember_ctl *c, char *json, struct ember_ctl_event *ev,
		      struct ember_error *err)
{
	free(c->last_event);
	c->last_event = json;
	memset(ev, 0, sizeof(*ev));
	ev->json = json;
	struct json_object *o = parse(json, strlen(json));
	const char *kind = get_s(o, "event");
	int r = -EPROTO;
	for (unsigned k = 0; kind && k < EMBER_VM_EVENT_KINDS; k++)
		if (!strcmp(kind, ember_vm_event_kind_name((enum ember_vm_event_kind)k))) {
			ev->kind = (enum ember_vm_event_kind)k;
			r = 0;
		}
	if (r < 0) {
		json_object_put(o);
		return vmm_errf(err, r, "an event of an unknown kind");
	}
	ev->state = state_of(get_s(o, "state"));
	ev->vcpus_paused = get_b(o, "vcpus_paused");
	const char *s = get_s(o, ev->kind == EMBER_VM_EVENT_POWER ? "power" : "reason");
	snprintf(ev->reason, sizeof(ev->reason), "%s", s ? s : "");
	s = get_s(o, "detail");
	snprintf(ev->detail, sizeof(ev->detail), "%s", s ? s : "");
	ev->exit_status = (int)get_u(o, "exit_status");
	ev->balloon_actual_bytes = get_u(o, "actual_bytes");
	ev->balloon_target_bytes = get_u(o, "target_bytes");
	json_object_put(o);
	return 0;
}

int ember_ctl_next_event(struct ember_ctl *c, int timeout_ms, struct ember_ctl_event *ev,
			 struct ember_error *err)
{
	if (!c || !ev)
		return vmm_errf(err, -EINVAL, "no connection or no event buffer");
	if (c->q_len) {
		char *s = c->queue[c->q_head];
		c->q_head = (c->q_head + 1) % EVENT_QUEUE;
		c->q_len--;
		return fill_event(c, s, ev, err);
	}
	uint64_t end = vmm_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
	for (;;) {
		int wait = timeout_ms;
		if (timeout_ms > 0) {
			uint64_t now = vmm_now_ns();
			wait = now >= end ? 0 : (int)((end - now) / 1000000ull);
		}
		long n = recv_one(c, wait);
		if (n < 0)
			return vmm_errf(err, (int)n, "%s",
					n == -ETIMEDOUT ? "no event"
					: n == -EPIPE	? "the server closed the connection"
							: strerror((int)-n));
		struct json_object *m = parse(c->buf, (size_t)n);
		bool is_event = m && json_object_object_get_ex(m, "event", NULL);
		json_object_put(m);
		if (!is_event)
			continue; /* a late response: not an event */
		char *s = strdup(c->buf);
		if (!s)
			return vmm_errf(err, -ENOMEM, "out of memory");
		return fill_event(c, s, ev, err);
	}
}

/* ------------------------------------------------------------ the socket directory */

int ember_ctl_socket_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n = xdg && xdg[0] == '/' ? snprintf(buf, len, "%s/ember", xdg)
				     : snprintf(buf, len, "/tmp/ember-%u", (unsigned)getuid());
	return n < 0 ? -EINVAL : n;
}

int ember_ctl_name_path(const char *name, bool create, char *buf, size_t len)
{
	size_t l = name ? strlen(name) : 0;
	if (!l || l > 64 || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	for (size_t i = 0; i < l; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return -EINVAL;
	}
	char dir[256];
	int n = ember_ctl_socket_dir(dir, sizeof(dir));
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	if (create) {
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		struct stat st;
		if (lstat(dir, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 0077))
			return -EPERM;
	}
	n = snprintf(buf, len, "%s/%s.sock", dir, name);
	return n < 0 ? -EINVAL : n;
}
