/* vmm/virtio.c - virtio devices on the board: device options to virtio-mmio models, queues served by the I/O thread. */
#include "virtio.h"
#include "config.h"
#include "internal.h"
#include "tap.h"

#include "../devices/virtio/balloon.h"
#include "../devices/virtio/blk.h"
#include "../devices/virtio/net.h"
#include "../devices/virtio/console.h"
#include "../devices/virtio/rng.h"
#include "../devices/virtio/vsock.h"
#include "vsock_host.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum kind { K_BLK, K_RNG, K_BALLOON, K_VSOCK, K_NET, K_CONSOLE };

struct vmm_virtio;

/* One queue's kick source. */
struct vq_watch {
	struct vmm_virtio *v;
	unsigned q;
	struct ember_loop_source *src;
	bool held; /* kicked while paused */
};

struct vmm_virtio {
	struct ember_vm *vm;
	struct vmm_dev_desc *desc;
	enum kind kind;
	struct virtio_mmio *t;
	union {
		struct virtio_blk *blk;
		struct virtio_rng *rng;
		struct virtio_balloon *balloon;
		struct virtio_vsock *vsock;
		struct virtio_net *net;
		struct virtio_console *console;
	} u;
	struct vmm_vsock_host *vsock_host; /* K_VSOCK: the Unix-socket side */
	struct ember_loop_source *tap_src; /* K_NET: the tap, watched for reading */
	unsigned tap_events;		   /* K_NET: EMBER_LOOP_IN/OUT asked for */
	char tap_name[VMM_TAP_NAME_MAX + 1];
	char mac[18];
	unsigned nq;
	struct vq_watch w[VMM_DEV_MAX_IOEVENTFDS];
	struct ember_loop_source *io_src; /* a disk's io_uring completions, or NULL */
	/* Rate limiters (devices/virtio/ratelimit.h), changed under the
	 * transport lock; the timer re-runs every queue when a throttled
	 * device has tokens again. */
	struct vmm_virtio_limiter rl[VMM_VIRTIO_MAX_LIMITERS];
	unsigned nrl;
	struct ember_loop_source *rl_timer;
};

/* The transport's interrupt: the irqfd raises the GSI (edge). */
static void interrupt(void *opaque)
{
	struct vmm_virtio *v = opaque;
	uint64_t one = 1;
	if (v->desc->irqfd_fd >= 0) {
		ssize_t r = write(v->desc->irqfd_fd, &one, sizeof(one));
		(void)r; /* a full counter still has the line raised */
	}
}

/* A QueueNotify that exited to the VMM: hand it to the I/O thread. */
static void notify(void *opaque, unsigned q)
{
	struct vmm_virtio *v = opaque;
	if (q >= v->nq || v->desc->ioeventfds[q].fd < 0)
		return;
	uint64_t one = 1;
	ssize_t r = write(v->desc->ioeventfds[q].fd, &one, sizeof(one));
	(void)r;
}

/* I/O thread: queue w->q was kicked. */
static void on_kick(void *opaque, int fd, unsigned events)
{
	(void)events;
	struct vq_watch *w = opaque;
	struct vmm_virtio *v = w->v;
	uint64_t n;
	ssize_t r = read(fd, &n, sizeof(n));
	(void)r; /* nonblocking eventfd: EAGAIN means a kick already consumed */
	pthread_mutex_lock(&v->vm->dev_lock);
	if (v->vm->devs_paused)
		w->held = true;
	else
		virtio_mmio_process(v->t, w->q);
	pthread_mutex_unlock(&v->vm->dev_lock);
}

/* I/O thread: a disk's io_uring completions. Completed requests go to the
 * used ring even while paused (none are in flight then: vmm_virtio_quiesce
 * drained them); requests are only taken from the rings when not paused. */
static void on_io(void *opaque, int fd, unsigned events)
{
	(void)events;
	struct vmm_virtio *v = opaque;
	uint64_t n;
	ssize_t r = read(fd, &n, sizeof(n));
	(void)r; /* nonblocking eventfd */
	pthread_mutex_lock(&v->vm->dev_lock);
	virtio_blk_poll(v->u.blk, !v->vm->devs_paused);
	pthread_mutex_unlock(&v->vm->dev_lock);
}

/* A limiter ran dry with requests waiting (lock held, I/O thread): the
 * timer runs the queues again in delay_ns. */
static void rl_wait(void *opaque, uint64_t delay_ns)
{
	struct vmm_virtio *v = opaque;
	if (v->rl_timer)
		ember_loop_timer_set(v->rl_timer, delay_ns, 0);
}

/* I/O thread: tokens are back (or the limits changed): run every queue. */
static void on_rl_timer(void *opaque, uint64_t expirations)
{
	(void)expirations;
	struct vmm_virtio *v = opaque;
	pthread_mutex_lock(&v->vm->dev_lock);
	for (unsigned q = 0; q < v->nq; q++) {
		if (v->vm->devs_paused)
			v->w[q].held = true;
		else
			virtio_mmio_process(v->t, q);
	}
	pthread_mutex_unlock(&v->vm->dev_lock);
}

int vmm_virtio_rate_config(const struct vmm_devopt *o, struct ratelimit_config *out)
{
	*out = (struct ratelimit_config){
	    .bytes_per_sec = vmm_devopt_size(o, "bw", 0),
	    .bytes_burst = vmm_devopt_size(o, "bw-burst", 0),
	    .ops_per_sec = vmm_devopt_size(o, "ops", 0),
	    .ops_burst = vmm_devopt_size(o, "ops-burst", 0),
	};
	return out->bytes_per_sec || out->ops_per_sec;
}

void vmm_virtio_add_limiter(struct vmm_virtio *v, const char *name, struct ratelimit *rl,
			    const struct ratelimit_config *cfg)
{
	if (v->nrl >= VMM_VIRTIO_MAX_LIMITERS)
		return;
	rl->wait = rl_wait;
	rl->opaque = v;
	if (cfg)
		ratelimit_set(rl, cfg, ratelimit_clock(rl));
	v->rl[v->nrl++] = (struct vmm_virtio_limiter){.name = name, .rl = rl};
}

_Static_assert(VMM_NET_MTU_MIN == VIRTIO_NET_MTU_MIN, "--net mtu= range");

static void tap_watch(struct vmm_virtio *v, unsigned bit, bool on)
{
	v->tap_events = on ? v->tap_events | bit : v->tap_events & ~bit;
	if (v->tap_src)
		ember_loop_modify(v->tap_src, v->tap_events);
}
/* --net: the device asks to watch its tap for frames, or to stop. */
static void net_rx_watch(void *opaque, bool on)
{
	tap_watch(opaque, EMBER_LOOP_IN, on);
}
/* --net: the tap was full; the device asks to know when it is writable. */
static void net_tx_watch(void *opaque, bool on)
{
	tap_watch(opaque, EMBER_LOOP_OUT, on);
}

/* I/O thread: the tap has a frame for the guest, or room for the guest's. */
static void on_tap(void *opaque, int fd, unsigned events)
{
	(void)fd;
	struct vmm_virtio *v = opaque;
	pthread_mutex_lock(&v->vm->dev_lock);
	bool paused = v->vm->devs_paused;
	if (events & EMBER_LOOP_OUT) {
		if (paused)
			v->w[VIRTIO_NET_TXQ].held = true; /* resume runs the transmit queue */
		virtio_net_tx_ready(v->u.net, paused);
	}
	if (events & (EMBER_LOOP_IN | EMBER_LOOP_ERR) || !(events & EMBER_LOOP_OUT)) {
		if (paused)
			v->w[VIRTIO_NET_RXQ].held = true; /* resume runs the receive queue */
		virtio_net_backend_ready(v->u.net, paused);
	}
	pthread_mutex_unlock(&v->vm->dev_lock);
}

/* --net tap=NAME or fd=N[,mac=MAC]: the tap (attached or checked), the card. */
static int net_create(struct vmm_virtio *v, struct virtio_mmio_config cfg,
		      const struct vmm_devopt *o, struct ember_error *err)
{
	const char *tap = vmm_devopt_get(o, "tap"), *mac = vmm_devopt_get(o, "mac");
	struct virtio_net_options no = {.rx_watch = net_rx_watch,
					.tx_watch = net_tx_watch,
					.requeue = notify,
					.opaque = v,
					.mtu = (uint16_t)vmm_devopt_u64(o, "mtu", 0)};
	int fd = -1, r;
	if (tap) {
		r = vmm_tap_open(tap, &fd, err);
		snprintf(v->tap_name, sizeof(v->tap_name), "%s", tap);
	} else {
		uint64_t n = vmm_devopt_u64(o, "fd", UINT64_MAX);
		r = n > INT32_MAX ? vmm_errf(err, -EINVAL, "--net %s: bad fd", o->spec)
				  : vmm_tap_check_fd((int)n, v->tap_name, &fd, err);
	}
	if (r < 0)
		return r;
	if (mac && vmm_tap_parse_mac(mac, no.mac) < 0) {
		close(fd);
		return vmm_errf(err, -EINVAL, "--net mac=%s: not a unicast MAC address", mac);
	}
	if (!mac)
		vmm_tap_default_mac(v->tap_name, no.mac);
	vmm_tap_format_mac(no.mac, v->mac);
	no.fd = fd;
	r = virtio_net_create(cfg, &no, &v->u.net, &v->t);
	if (r < 0) {
		close(fd);
		return vmm_errf(err, r, "--net %s: cannot create the device: %s", o->spec,
				strerror(-r));
	}
	/* each direction its own buckets, with the option's limits */
	struct ratelimit_config rc;
	vmm_virtio_rate_config(o, &rc);
	vmm_virtio_add_limiter(v, "rx", virtio_net_ratelimit(v->u.net, VIRTIO_NET_RXQ), &rc);
	vmm_virtio_add_limiter(v, "tx", virtio_net_ratelimit(v->u.net, VIRTIO_NET_TXQ), &rc);
	return 0;
}

/* A device's VMM side for entry d, and its transport's configuration. */
static struct vmm_virtio *virtio_new(struct ember_vm *vm, struct vmm_dev_desc *d,
				     struct virtio_mmio_config *cfg)
{
	struct vmm_virtio *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->vm = vm;
	v->desc = d;
	v->nq = d->nioeventfds;
	*cfg = (struct virtio_mmio_config){
	    .mem = &vm->mem, .interrupt = interrupt, .notify = notify, .opaque = v};
	return v;
}

/* The device made: its transport is what the entry puts on the bus. */
static int virtio_bind(struct vmm_virtio *v, struct vmm_virtio **out)
{
	v->desc->ops = &virtio_mmio_dev(v->t)->ops->bus;
	v->desc->opaque = virtio_mmio_dev(v->t);
	*out = v;
	return 0;
}

int vmm_virtio_create(struct ember_vm *vm, struct vmm_dev_desc *d, const struct vmm_devopt *o,
		      struct vmm_virtio **out, struct ember_error *err)
{
	*out = NULL;
	struct virtio_mmio_config cfg;
	struct vmm_virtio *v = virtio_new(vm, d, &cfg);
	if (!v)
		return vmm_errf(err, -ENOMEM, "out of memory");
	int r;
	const char *name = o->type->name;
	if (!strcmp(name, "disk")) {
		v->kind = K_BLK;
		struct virtio_blk_options bo = {
		    .path = vmm_devopt_get(o, "path"),
		    .read_only = vmm_devopt_bool(o, "ro", false),
		    .serial = vmm_devopt_get(o, "serial"),
		    .queues = v->nq,
		};
		const char *cache = vmm_devopt_get(o, "cache"), *eng = vmm_devopt_get(o, "engine");
		bo.direct = cache && !strcmp(cache, "none");
		if (eng)
			bo.engine = !strcmp(eng, "sync") ? VIRTIO_BLK_ENGINE_SYNC
							 : VIRTIO_BLK_ENGINE_IO_URING;
		char msg[256];
		r = virtio_blk_create(cfg, &bo, &v->u.blk, &v->t, msg, sizeof(msg));
		if (r < 0) {
			free(v);
			return vmm_errf(err, r, "--disk %s: %s", o->spec, msg);
		}
		struct ratelimit_config rc;
		vmm_virtio_rate_config(o, &rc);
		vmm_virtio_add_limiter(v, NULL, virtio_blk_ratelimit(v->u.blk), &rc);
	} else if (!strcmp(name, "rng")) {
		v->kind = K_RNG;
		r = virtio_rng_create(cfg, &v->u.rng, &v->t);
		if (r == 0) {
			struct ratelimit_config rc;
			vmm_virtio_rate_config(o, &rc);
			vmm_virtio_add_limiter(v, NULL, virtio_rng_ratelimit(v->u.rng), &rc);
		}
	} else if (!strcmp(name, "net")) {
		v->kind = K_NET;
		r = net_create(v, cfg, o, err);
		if (r < 0) {
			free(v);
			return r;
		}
	} else if (!strcmp(name, "balloon")) {
		v->kind = K_BALLOON;
		struct virtio_balloon_options bo = {.no_reporting =
							!vmm_devopt_bool(o, "reporting", true)};
		r = virtio_balloon_create_opts(cfg, &bo, &v->u.balloon, &v->t);
	} else if (!strcmp(name, "vsock")) {
		v->kind = K_VSOCK;
		char msg[256];
		const char *path = vmm_devopt_get(o, "socket");
		r = vmm_vsock_host_create(vm->loop, path, &vm->dev_lock, &vm->devs_paused,
					  &v->vsock_host, msg, sizeof(msg));
		if (r < 0) {
			free(v);
			return vmm_errf(err, r, "--vsock socket=%s: %s", path, msg);
		}
		struct virtio_vsock_options vo = {.guest_cid = vmm_devopt_u64(o, "cid", 0),
						  .host_ops = &vmm_vsock_host_ops,
						  .host = v->vsock_host};
		r = virtio_vsock_create(cfg, &vo, &v->u.vsock, &v->t);
		if (r < 0)
			vmm_vsock_host_destroy(v->vsock_host);
		else
			vmm_vsock_host_bind(v->vsock_host, v->u.vsock);
	} else {
		r = -EOPNOTSUPP;
	}
	if (r < 0) {
		free(v);
		return vmm_errf(err, r, "--%s: cannot create the device: %s", name, strerror(-r));
	}
	return virtio_bind(v, out);
}

/* The virtio console's host side is the VM's console: output into the same
 * bounded buffer as the UART's (its I/O thread writes it out), input from
 * the same reader and escape (vmm_virtio_console_input). */
static size_t console_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct vmm_virtio *v = opaque;
	return vmm_vm_console_write(v->vm, buf, len);
}

static void console_rx_ready(void *opaque)
{
	struct vmm_virtio *v = opaque;
	vmm_vm_wake(v->vm); /* the I/O thread pushes held input (console_in_flush) */
}

int vmm_virtio_create_console(struct ember_vm *vm, struct vmm_dev_desc *d, struct vmm_virtio **out,
			      struct ember_error *err)
{
	*out = NULL;
	struct virtio_mmio_config cfg;
	struct vmm_virtio *v = virtio_new(vm, d, &cfg);
	if (!v)
		return vmm_errf(err, -ENOMEM, "out of memory");
	v->kind = K_CONSOLE;
	struct virtio_console_host host = {
	    .tx = console_tx, .rx_ready = console_rx_ready, .opaque = v};
	/* a terminal's size for VIRTIO_CONSOLE_F_SIZE (input first: "stdin is a tty") */
	struct winsize ws;
	int fds[2] = {vm->cfg.console_in, vm->cfg.console_out};
	for (unsigned i = 0; i < 2; i++)
		if (fds[i] >= 0 && isatty(fds[i]) && ioctl(fds[i], TIOCGWINSZ, &ws) == 0 &&
		    ws.ws_col && ws.ws_row) {
			host.cols = ws.ws_col;
			host.rows = ws.ws_row;
			break;
		}
	int r = virtio_console_create(cfg, &host, &v->u.console, &v->t);
	if (r < 0) {
		free(v);
		return vmm_errf(err, r, "--console virtio: cannot create the device: %s",
				strerror(-r));
	}
	return virtio_bind(v, out);
}

size_t vmm_virtio_console_input(struct vmm_virtio *v, const uint8_t *buf, size_t len)
{
	return v->kind == K_CONSOLE ? virtio_console_rx_push(v->u.console, buf, len) : 0;
}

void vmm_virtio_console_ready(struct vmm_virtio *v)
{
	if (v->kind == K_CONSOLE)
		virtio_console_tx_ready(v->u.console);
}

void vmm_virtio_console_resize(struct vmm_virtio *v, uint16_t cols, uint16_t rows)
{
	if (v->kind == K_CONSOLE)
		(void)virtio_console_set_size(v->u.console, cols,
					      rows); /* -EOPNOTSUPP: no F_SIZE */
}

int vmm_virtio_start(struct vmm_virtio *v, struct ember_error *err)
{
	for (unsigned q = 0; q < v->nq; q++) {
		struct vq_watch *w = &v->w[q];
		*w = (struct vq_watch){.v = v, .q = q};
		int r = ember_loop_add_fd(v->vm->loop, v->desc->ioeventfds[q].fd, EMBER_LOOP_IN,
					  on_kick, w, &w->src);
		if (r < 0)
			return vmm_errf(err, r, "%s: cannot watch queue %u: %s", v->desc->name, q,
					strerror(-r));
	}
	int efd = v->kind == K_BLK ? virtio_blk_event_fd(v->u.blk) : -1;
	if (efd >= 0) {
		int r = ember_loop_add_fd(v->vm->loop, efd, EMBER_LOOP_IN, on_io, v, &v->io_src);
		if (r < 0)
			return vmm_errf(err, r, "%s: cannot watch its I/O completions: %s",
					v->desc->name, strerror(-r));
	}
	if (v->kind == K_VSOCK) {
		int r = vmm_vsock_host_start(v->vsock_host);
		if (r < 0)
			return vmm_errf(err, r, "%s: cannot watch its socket: %s", v->desc->name,
					strerror(-r));
	}
	if (v->nrl) {
		/* disarmed until a limiter runs dry */
		int r = ember_loop_add_timer(v->vm->loop, 0, 0, on_rl_timer, v, &v->rl_timer);
		if (r < 0)
			return vmm_errf(err, r, "%s: cannot make the rate limit timer: %s",
					v->desc->name, strerror(-r));
	}
	if (v->kind == K_NET) {
		/* idle until the device has receive buffers (net_rx_watch) */
		int r = ember_loop_add_fd(v->vm->loop, virtio_net_fd(v->u.net), 0, on_tap, v,
					  &v->tap_src);
		if (r < 0)
			return vmm_errf(err, r, "%s: cannot watch the tap: %s", v->desc->name,
					strerror(-r));
	}
	return 0;
}

unsigned vmm_virtio_quiesce(struct vmm_virtio *v)
{
	if (!v || v->kind != K_BLK)
		return 0;
	unsigned n = virtio_blk_drain(v->u.blk);
	/* a queue that stopped at its in-flight limit is run again on resume */
	for (unsigned q = 0; q < v->nq; q++)
		v->w[q].held = true;
	return n;
}

void vmm_virtio_kick(struct vmm_virtio *v)
{
	for (unsigned q = 0; v && q < v->nq; q++) {
		if (!v->w[q].held)
			continue;
		v->w[q].held = false;
		virtio_mmio_process(v->t, q);
	}
	if (v && v->kind == K_VSOCK)
		vmm_vsock_host_resume(v->vsock_host); /* sockets quieted while paused */
}

int vmm_virtio_save(struct vmm_virtio *v, struct vmm_state_w *w)
{
	return virtio_mmio_save(v->t, w);
}

int vmm_virtio_load(struct vmm_virtio *v, struct vmm_state_r *r)
{
	int rc = virtio_mmio_load_deferred(v->t, r);
	for (unsigned q = 0; rc == 0 && q < v->nq; q++)
		v->w[q].held = true; /* run each queue once at the start */
	return rc;
}

void vmm_virtio_finish_load(struct vmm_virtio *v)
{
	virtio_mmio_finish_load(v->t);
}

const struct vmm_dev_desc *vmm_virtio_desc(const struct vmm_virtio *v)
{
	return v->desc;
}

void vmm_virtio_reset(struct vmm_virtio *v)
{
	if (!v)
		return;
	/* under the transport lock: Status 0 (a tap's read watch goes off at
	 * its next event, virtio_net_backend_ready) */
	dev_reset(virtio_mmio_dev(v->t));
	for (unsigned q = 0; q < v->nq; q++)
		v->w[q].held = false;
	if (v->rl_timer)
		ember_loop_timer_set(v->rl_timer, 0, 0); /* no queue left to re-run */
}

/* "; rate limited: waited N times" for a device whose limiters are on. */
static int format_limits(struct vmm_virtio *v, char *buf, size_t len)
{
	uint64_t waits = 0;
	bool on = false;
	virtio_mmio_lock(v->t);
	for (unsigned i = 0; i < v->nrl; i++) {
		on |= ratelimit_active(v->rl[i].rl);
		waits += v->rl[i].rl->throttled;
	}
	virtio_mmio_unlock(v->t);
	if (!on)
		return 0;
	return snprintf(buf, len, "; rate limited: waited %" PRIu64 " times", waits);
}

/* Feature bits by name, for the stop summary's lines. */
struct feature_name {
	unsigned bit;
	const char *name;
};
/* The names of the bits of FEATURES in TABLE, comma-separated ("none"). */
static void feature_names(uint64_t features, const struct feature_name *table, size_t n, char *buf,
			  size_t len)
{
	size_t used = 0;
	buf[0] = 0;
	for (size_t i = 0; i < n && used < len; i++)
		if (features & (1ull << table[i].bit)) {
			int w = snprintf(buf + used, len - used, "%s%s", used ? "," : "",
					 table[i].name);
			used += w < 0 ? 0 : (size_t)w;
		}
	if (!buf[0])
		snprintf(buf, len, "none");
}

int vmm_virtio_format(struct vmm_virtio *v, char *buf, size_t len)
{
	int n = 0;
	switch (v->kind) {
	case K_BLK: {
		struct virtio_blk_stats s;
		virtio_blk_get_stats(v->u.blk, &s);
		n = snprintf(buf, len,
			     "%s: reads %" PRIu64 " writes %" PRIu64 " flushes %" PRIu64
			     " (fdatasync done %" PRIu64 ") discards %" PRIu64 " errors %" PRIu64
			     " bad requests %" PRIu64
			     "; engine %s, cache %s, %u queues, most in flight %" PRIu64
			     ", unaligned direct %" PRIu64,
			     v->desc->name, s.reads, s.writes, s.flushes, s.synced,
			     s.discards + s.write_zeroes, s.errors, s.bad_chains,
			     virtio_blk_engine_name(v->u.blk),
			     virtio_blk_direct(v->u.blk) ? "none" : "writeback", v->nq,
			     s.inflight_max, s.bounced);
		break;
	}
	case K_RNG:
		n = snprintf(buf, len, "%s: %" PRIu64 " bytes in %" PRIu64 " requests",
			     v->desc->name, virtio_rng_bytes(v->u.rng),
			     virtio_rng_requests(v->u.rng));
		break;
	case K_NET: {
		struct virtio_net_stats s;
		virtio_net_get_stats(v->u.net, &s);
		char feat[96];
		static const struct feature_name names[] = {
		    {VIRTIO_NET_F_CSUM, "csum"},	{VIRTIO_NET_F_GUEST_CSUM, "gcsum"},
		    {VIRTIO_NET_F_HOST_TSO4, "tso4"},	{VIRTIO_NET_F_HOST_TSO6, "tso6"},
		    {VIRTIO_NET_F_HOST_ECN, "ecn"},	{VIRTIO_NET_F_GUEST_TSO4, "gtso4"},
		    {VIRTIO_NET_F_GUEST_TSO6, "gtso6"}, {VIRTIO_NET_F_GUEST_ECN, "gecn"},
		    {VIRTIO_NET_F_MRG_RXBUF, "mrg"},	{VIRTIO_NET_F_MAC, "mac"},
		    {VIRTIO_NET_F_STATUS, "status"},	{VIRTIO_NET_F_MTU, "mtu"},
		};
		feature_names(s.features, names, sizeof(names) / sizeof(names[0]), feat,
			      sizeof(feat));
		/* one line of at most 256 bytes (the stop summary's), then
		 * the rate limits' */
		n = snprintf(buf, len,
			     "%s: tap %s mac %s features %s offloads 0x%x; rx %" PRIu64
			     " frames %" PRIu64 " B gso %" PRIu64 " drop %" PRIu64 "; tx %" PRIu64
			     " frames %" PRIu64 " B gso %" PRIu64 " drop %" PRIu64 " full %" PRIu64
			     "; bad %" PRIu64 "+%" PRIu64,
			     v->desc->name, v->tap_name, v->mac, feat,
			     s.offloads < 0 ? 0u : (unsigned)s.offloads, s.rx_packets, s.rx_bytes,
			     s.rx_gso, s.rx_dropped, s.tx_packets, s.tx_bytes, s.tx_gso,
			     s.tx_dropped, s.tx_blocked, s.bad_chains, s.bad_headers);
		break;
	}
	case K_CONSOLE: {
		struct virtio_console_stats s;
		virtio_console_get_stats(v->u.console, &s);
		n = snprintf(buf, len,
			     "%s: %" PRIu64 " bytes out, %" PRIu64 " bytes in, %" PRIu64
			     " waits for the console, bad requests %" PRIu64,
			     v->desc->name, s.bytes_out, s.bytes_in, s.tx_waits, s.bad_chains);
		break;
	}
	case K_BALLOON: {
		struct virtio_balloon_stats s;
		virtio_balloon_get_stats(v->u.balloon, &s);
		/* what the driver negotiated: with deflate-on-oom its OOM
		 * notifier takes pages back without the host asking */
		static const struct feature_name names[] = {
		    {VIRTIO_BALLOON_F_STATS_VQ, "stats"},
		    {VIRTIO_BALLOON_F_DEFLATE_ON_OOM, "deflate-on-oom"},
		    {VIRTIO_BALLOON_F_REPORTING, "reporting"},
		};
		char feat[48];
		feature_names(s.features, names, sizeof(names) / sizeof(names[0]), feat,
			      sizeof(feat));
		n = snprintf(buf, len,
			     "%s: target %u pages, guest holds %u; %" PRIu64
			     " pages given back, %" PRIu64 " taken back; features %s",
			     v->desc->name, s.target_pages, s.actual_pages, s.discarded, s.deflated,
			     feat);
		break;
	}
	case K_VSOCK: {
		struct virtio_vsock_stats s;
		virtio_vsock_get_stats(v->u.vsock, &s);
		return snprintf(buf, len,
				"%s: %" PRIu64 " connections (%" PRIu64 " open, at most %" PRIu64
				" at once), %" PRIu64 " refused; %" PRIu64
				" bytes to the guest, %" PRIu64 " from it; %" PRIu64 " bad packets",
				v->desc->name, s.opened, s.conns, s.peak, s.refused, s.rx_bytes,
				s.tx_bytes, s.bad_packets);
	}
	}
	size_t used = n < 0 ? 0 : (size_t)n < len ? (size_t)n : len;
	return n + format_limits(v, buf ? buf + used : NULL, len - used);
}

void vmm_virtio_destroy(struct vmm_virtio *v)
{
	if (!v)
		return;
	for (unsigned q = 0; q < v->nq; q++)
		if (v->w[q].src)
			ember_loop_remove(v->w[q].src);
	if (v->io_src)
		ember_loop_remove(v->io_src);
	if (v->rl_timer)
		ember_loop_remove(v->rl_timer);
	if (v->tap_src)
		ember_loop_remove(v->tap_src);
	v->tap_src = NULL;
	if (v->t)
		dev_destroy(virtio_mmio_dev(v->t));
	switch (v->kind) {
	case K_BLK:
		virtio_blk_destroy(v->u.blk);
		break;
	case K_RNG:
		virtio_rng_destroy(v->u.rng);
		break;
	case K_BALLOON:
		virtio_balloon_destroy(v->u.balloon);
		break;
	case K_VSOCK:
		virtio_vsock_destroy(v->u.vsock); /* closes every stream */
		vmm_vsock_host_destroy(v->vsock_host);
		break;
	case K_NET:
		virtio_net_destroy(v->u.net);
		break;
	case K_CONSOLE:
		virtio_console_destroy(v->u.console);
		break;
	}
	free(v);
}

/* ---------------------------------------------------------------- the library's controls */

/* The virtio device named name (its part before a '.', of length n). */
static struct vmm_virtio *find_device(struct ember_vm *vm, const char *name, size_t n)
{
	struct vmm_virtio *v;
	for (unsigned i = 0; (v = vmm_board_virtio(vm, i)); i++)
		if (strlen(v->desc->name) == n && !strncmp(v->desc->name, name, n))
			return v;
	return NULL;
}

/* The limiters of "dev" (all) or "dev.lim" (one) into out[]; returns their
 * count or a negative errno with err set. */
static int find_limiters(struct ember_vm *vm, const char *device, struct vmm_virtio **vout,
			 struct ratelimit **out, struct ember_error *err)
{
	if (!vm || !device)
		return vmm_errf(err, -EINVAL, "rate limit: no VM or no device name");
	const char *dot = strchr(device, '.');
	struct vmm_virtio *v =
	    find_device(vm, device, dot ? (size_t)(dot - device) : strlen(device));
	if (!v)
		return vmm_errf(err, -ENODEV, "rate limit: no device '%s'", device);
	if (!v->nrl)
		return vmm_errf(err, -EOPNOTSUPP, "rate limit: %s has no rate limiter",
				v->desc->name);
	int n = 0;
	for (unsigned i = 0; i < v->nrl; i++)
		if (!dot || (v->rl[i].name && !strcmp(v->rl[i].name, dot + 1)))
			out[n++] = v->rl[i].rl;
	if (!n)
		return vmm_errf(err, -ENODEV, "rate limit: %s has no limiter '%s'", v->desc->name,
				dot + 1);
	*vout = v;
	return n;
}

int ember_vm_set_rate_limit(struct ember_vm *vm, const char *device,
			    const struct ember_rate_limit *limit, struct ember_error *err)
{
	if (!limit)
		return vmm_errf(err, -EINVAL, "rate limit: no limit given");
	if ((limit->bytes_burst && !limit->bytes_per_sec) ||
	    (limit->ops_burst && !limit->ops_per_sec))
		return vmm_errf(err, -EINVAL, "rate limit: a burst needs its rate");
	struct vmm_virtio *v;
	struct ratelimit *rl[VMM_VIRTIO_MAX_LIMITERS];
	int n = find_limiters(vm, device, &v, rl, err);
	if (n < 0)
		return n;
	struct ratelimit_config cfg = {
	    .bytes_per_sec = limit->bytes_per_sec,
	    .bytes_burst = limit->bytes_burst,
	    .ops_per_sec = limit->ops_per_sec,
	    .ops_burst = limit->ops_burst,
	};
	virtio_mmio_lock(v->t);
	for (int i = 0; i < n; i++)
		ratelimit_set(rl[i], &cfg, ratelimit_clock(rl[i]));
	virtio_mmio_unlock(v->t);
	/* a device that waited for tokens looks at its queues now */
	if (v->rl_timer)
		ember_loop_timer_set(v->rl_timer, 1, 0);
	return 0;
}

int ember_vm_get_rate_limit(struct ember_vm *vm, const char *device, struct ember_rate_limit *out,
			    struct ember_error *err)
{
	if (!out)
		return vmm_errf(err, -EINVAL, "rate limit: no result buffer");
	struct vmm_virtio *v;
	struct ratelimit *rl[VMM_VIRTIO_MAX_LIMITERS];
	int n = find_limiters(vm, device, &v, rl, err);
	if (n < 0)
		return n;
	if (n > 1)
		return vmm_errf(err, -EINVAL, "rate limit: %s has %d limiters: name one", device,
				n);
	virtio_mmio_lock(v->t);
	struct ratelimit_config c = rl[0]->cfg;
	virtio_mmio_unlock(v->t);
	*out = (struct ember_rate_limit){.bytes_per_sec = c.bytes_per_sec,
					 .bytes_burst = c.bytes_burst,
					 .ops_per_sec = c.ops_per_sec,
					 .ops_burst = c.ops_burst};
	return 0;
}

static struct vmm_virtio *find_balloon(struct ember_vm *vm)
{
	struct vmm_virtio *v;
	for (unsigned i = 0; (v = vmm_board_virtio(vm, i)); i++)
		if (v->kind == K_BALLOON)
			return v;
	return NULL;
}

#define BALLOON_PAGE 4096ull

int ember_vm_balloon_set_target(struct ember_vm *vm, uint64_t bytes, struct ember_error *err)
{
	if (!vm)
		return vmm_errf(err, -EINVAL, "balloon: no VM");
	struct vmm_virtio *v = find_balloon(vm);
	if (!v)
		return vmm_errf(err, -ENODEV, "balloon: the VM has no balloon (--balloon)");
	if (bytes > vm->mem.size)
		return vmm_errf(err, -EINVAL,
				"balloon: a target of %" PRIu64
				" bytes is more than the guest's %" PRIu64,
				bytes, vm->mem.size);
	/* dev_lock: not while the I/O thread works on devices; the transport
	 * lock (taken by the device) orders it with the queue work */
	pthread_mutex_lock(&vm->dev_lock);
	virtio_balloon_set_target(v->u.balloon, (uint32_t)(bytes / BALLOON_PAGE));
	pthread_mutex_unlock(&vm->dev_lock);
	return 0;
}

int vmm_virtio_balloon_peek(struct ember_vm *vm, uint64_t *actual, uint64_t *target)
{
	struct vmm_virtio *v = find_balloon(vm);
	if (!v)
		return -ENODEV;
	struct virtio_balloon_stats s;
	pthread_mutex_lock(&vm->dev_lock);
	virtio_balloon_get_stats(v->u.balloon, &s);
	pthread_mutex_unlock(&vm->dev_lock);
	*actual = s.actual_pages * BALLOON_PAGE;
	*target = s.target_pages * BALLOON_PAGE;
	return 0;
}

int ember_vm_balloon_stats(struct ember_vm *vm, struct ember_balloon_stats *out,
			   struct ember_error *err)
{
	if (!vm || !out)
		return vmm_errf(err, -EINVAL, "balloon: no VM or no result buffer");
	struct vmm_virtio *v = find_balloon(vm);
	if (!v)
		return vmm_errf(err, -ENODEV, "balloon: the VM has no balloon (--balloon)");
	struct virtio_balloon_stats s;
	pthread_mutex_lock(&vm->dev_lock);
	virtio_balloon_get_stats(v->u.balloon, &s);
	bool kick = !vm->devs_paused && virtio_balloon_request_stats(v->u.balloon) == -EAGAIN;
	pthread_mutex_unlock(&vm->dev_lock);
	/* No stats buffer held: Linux queues its first one and kicks before
	 * DRIVER_OK, when the transport does not look at queues; have the I/O
	 * thread look now (a kick through the queue's own eventfd). */
	for (unsigned q = 0; kick && q < v->nq; q++)
		notify(v, q);
	*out = (struct ember_balloon_stats){
	    .target_bytes = s.target_pages * BALLOON_PAGE,
	    .actual_bytes = s.actual_pages * BALLOON_PAGE,
	    .inflated_bytes = s.inflated * BALLOON_PAGE,
	    .deflated_bytes = s.deflated * BALLOON_PAGE,
	    .reported_bytes = s.reported * BALLOON_PAGE,
	    .given_back_bytes = s.discarded * BALLOON_PAGE,
	    .guest_valid = s.guest_valid,
	    .guest_updates = s.guest_updates,
	};
	for (unsigned i = 0; i < EMBER_BALLOON_GUEST_STATS && i < 10; i++)
		out->guest[i] = s.guest[i];
	return 0;
}

/* ---------------------------------------------------------------- disk resize (ctlacpi) */

int ember_vm_disk_resize(struct ember_vm *vm, unsigned index, uint64_t bytes,
			 struct ember_error *err)
{
	if (!vm)
		return vmm_errf(err, -EINVAL, "disk resize: no VM");
	char name[24];
	snprintf(name, sizeof(name), "disk%u", index);
	struct vmm_virtio *v = find_device(vm, name, strlen(name));
	if (!v || v->kind != K_BLK)
		return vmm_errf(err, -ENODEV, "no such device on this VM (no %s)", name);
	char msg[256];
	/* dev_lock: not while the I/O thread works on the disk; a paused
	 * guest gets the configuration interrupt when it resumes */
	pthread_mutex_lock(&vm->dev_lock);
	int r = virtio_blk_resize(v->u.blk, bytes, msg, sizeof(msg));
	pthread_mutex_unlock(&vm->dev_lock);
	if (r < 0)
		return vmm_errf(err, r, "disk resize: %s: %s", name, msg);
	vmm_logf(&vm->cfg, EMBER_LOG_INFO, "%s: resized to %" PRIu64 " bytes", name, bytes);
	return 0;
}

/* ---------------------------------------------------------------- hotplug (ctlacpi) */

int vmm_virtio_hotplug_net(struct ember_vm *vm, struct vmm_dev_desc *d, const char *spec,
			   struct vmm_virtio **out, struct ember_error *err)
{
	*out = NULL;
	const struct vmm_devopt_type *t = vmm_devopt_type_find("net");
	if (!t || !spec)
		return vmm_errf(err, -EINVAL, "net hotplug: no spec");
	const struct bus_ops *ops = d->ops;
	void *opaque = d->opaque;
	struct ember_config tmp;
	vmm_config_init(&tmp);
	int r = vmm_config_add_device(&tmp, t, spec, err);
	if (r == 0 && t->resolve)
		r = t->resolve(&tmp, &tmp.devs[0], err);
	if (r == 0)
		r = vmm_virtio_create(vm, d, &tmp.devs[0], out, err);
	if (r == 0 && (r = vmm_virtio_start(*out, err)) < 0) {
		vmm_virtio_destroy(*out);
		*out = NULL;
	}
	vmm_config_fini(&tmp);
	d->ops = ops;
	d->opaque = opaque;
	return r;
}

struct dev *vmm_virtio_bus_dev(struct vmm_virtio *v)
{
	return virtio_mmio_dev(v->t);
}

uint8_t vmm_virtio_status(struct vmm_virtio *v)
{
	return virtio_mmio_status(v->t);
}
