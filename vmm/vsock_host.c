/* vmm/vsock_host.c - the hybrid-vsock muxer: a listening Unix socket, CONNECT lines, PATH_<port> connections, each stream nonblocking on the loop. */
#include "vsock_host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum smode {
	S_LINE, /* a host client that has not sent its CONNECT line */
	S_DEV,	/* the device's */
};

struct stream {
	struct vmm_vsock_host *h;
	int fd;
	struct ember_loop_source *src; /* NULL while detached (under h->mu) */
	enum smode mode;
	char line[VMM_VSOCK_LINE_MAX];
	unsigned nline;
	virtio_vsock_handle handle;
	unsigned want; /* EMBER_LOOP_* the device asked for (under h->mu) */
	bool closed;   /* atomic: no more events for the device */
	bool zombie;   /* on the zombie list (under h->mu) */
	uint64_t
	    deadline; /* CLOCK_MONOTONIC ns the CONNECT line or the guest's answer is due by (0: none) */
	struct stream *next, *prev; /* all streams (under h->mu) */
	struct stream *znext;
};

struct vmm_vsock_host {
	struct ember_loop *loop;
	pthread_mutex_t *dev_lock;
	const bool *paused;
	struct virtio_vsock *dev;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	dev_t dev_no;
	ino_t ino;
	struct ember_loop_source *lsrc, *reaper, *timer;
	unsigned timeout_ms;
	pthread_mutex_t mu;
	struct stream *all, *zombies;
	unsigned unnamed;
};

static bool fill_addr(struct sockaddr_un *a, const char *path)
{
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(a->sun_path))
		return false;
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, path, n);
	return true;
}

int vmm_vsock_host_check_path(const char *path, char *msg, size_t msglen)
{
	struct sockaddr_un a;
	if (!path || !fill_addr(&a, path)) {
		snprintf(msg, msglen, "socket path is empty or longer than %zu bytes",
			 sizeof(a.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(msg, msglen, "%s exists and is not a socket (not replaced)", path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(msg, msglen, "socket: %s", strerror(errno));
		return -errno;
	}
	int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	int e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN) {
		snprintf(msg, msglen, "%s: something listens there already (another VM?)", path);
		return -EEXIST;
	}
	return 0; /* stale: ECONNREFUSED and the like */
}

/* ---------------------------------------------------------------- streams */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t deadline(const struct vmm_vsock_host *h)
{
	return now_ns() + (uint64_t)__atomic_load_n(&h->timeout_ms, __ATOMIC_RELAXED) * 1000000ull;
}

static void on_stream(void *opaque, int fd, unsigned events);

static struct stream *stream_new(struct vmm_vsock_host *h, int fd, enum smode mode, unsigned events)
{
	struct stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->h = h;
	s->fd = fd;
	s->mode = mode;
	if (ember_loop_add_fd(h->loop, fd, events, on_stream, s, &s->src) < 0) {
		free(s);
		return NULL;
	}
	pthread_mutex_lock(&h->mu);
	s->next = h->all;
	if (h->all)
		h->all->prev = s;
	h->all = s;
	if (mode == S_LINE)
		h->unnamed++;
	pthread_mutex_unlock(&h->mu);
	return s;
}

/* h->mu held: the stream waits for ev (0: nothing). A detached stream is
 * registered again when it wants something. */
static void arm_locked(struct stream *s, unsigned ev)
{
	if (s->zombie)
		return;
	if (s->src)
		ember_loop_modify(s->src, ev);
	else if (ev && ember_loop_add_fd(s->h->loop, s->fd, ev, on_stream, s, &s->src) < 0)
		s->src = NULL; /* out of memory: the stream stays quiet */
}

/* Loop thread: takes the stream out of the epoll set. A socket whose peer
 * is gone reports a hang-up whatever it is registered for, so a stream that
 * has nothing to wait for (the device does not want it, or the VM is
 * paused) must not stay registered, or the loop would spin on it. */
static void detach(struct stream *s)
{
	pthread_mutex_lock(&s->h->mu);
	struct ember_loop_source *src = s->src;
	s->src = NULL;
	pthread_mutex_unlock(&s->h->mu);
	ember_loop_remove(src);
}

/* Any thread: the stream is done; the loop thread frees it. */
static void stream_close(struct stream *s)
{
	struct vmm_vsock_host *h = s->h;
	__atomic_store_n(&s->closed, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&h->mu);
	if (!s->zombie) {
		s->zombie = true;
		s->znext = h->zombies;
		h->zombies = s;
		if (s->mode == S_LINE)
			h->unnamed--;
	}
	if (s->src)
		ember_loop_modify(s->src, 0);
	pthread_mutex_unlock(&h->mu);
	ember_loop_wake(h->reaper);
}

static void stream_free(struct vmm_vsock_host *h, struct stream *s)
{
	/* h->mu held */
	if (s->prev)
		s->prev->next = s->next;
	else
		h->all = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ember_loop_remove(s->src);
	close(s->fd);
	free(s);
}

static void on_reap(void *opaque, uint64_t n)
{
	(void)n;
	struct vmm_vsock_host *h = opaque;
	pthread_mutex_lock(&h->mu);
	struct stream *z = h->zombies;
	h->zombies = NULL;
	while (z) {
		struct stream *next = z->znext;
		stream_free(h, z);
		z = next;
	}
	pthread_mutex_unlock(&h->mu);
}

/* The listener: takes dev_lock; false (and the listener quiet) while the
 * VM is paused. */
static bool enter(struct vmm_vsock_host *h, struct ember_loop_source *src)
{
	if (!h->dev_lock)
		return true;
	pthread_mutex_lock(h->dev_lock);
	if (h->paused && *h->paused) {
		ember_loop_modify(src, 0); /* vmm_vsock_host_resume re-arms it */
		pthread_mutex_unlock(h->dev_lock);
		return false;
	}
	return true;
}

static void leave(struct vmm_vsock_host *h)
{
	if (h->dev_lock)
		pthread_mutex_unlock(h->dev_lock);
}

/* "CONNECT <port>" (the newline already cut off). */
static int parse_connect(const char *line, uint32_t *port)
{
	if (strncmp(line, "CONNECT ", 8))
		return -EINVAL;
	const char *p = line + 8;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -ERANGE;
	}
	if (*p == '\r')
		p++;
	if (*p)
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

/* A host client's CONNECT line, a byte at a time so that nothing after the
 * newline is taken from the stream. */
static void line_ready(struct stream *s)
{
	for (;;) {
		char ch;
		ssize_t r = read(s->fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			stream_close(s);
			return;
		}
		if (ch != '\n') {
			if (s->nline + 1 >= sizeof(s->line)) {
				stream_close(s); /* too long for a CONNECT line */
				return;
			}
			s->line[s->nline++] = ch;
			continue;
		}
		s->line[s->nline] = 0;
		uint32_t port;
		if (parse_connect(s->line, &port) < 0) {
			stream_close(s);
			return;
		}
		struct vmm_vsock_host *h = s->h;
		pthread_mutex_lock(&h->mu);
		s->mode = S_DEV;
		h->unnamed--;
		s->want = 0;
		arm_locked(s, 0); /* the device says what it wants */
		pthread_mutex_unlock(&h->mu);
		__atomic_store_n(&s->deadline, deadline(h),
				 __ATOMIC_RELAXED); /* the guest's turn */
		if (virtio_vsock_host_connect(h->dev, s, port, &s->handle) < 0) {
			pthread_mutex_lock(&h->mu);
			s->mode = S_LINE; /* not the device's: counted as unnamed in close */
			h->unnamed++;
			pthread_mutex_unlock(&h->mu);
			stream_close(s);
		}
		return;
	}
}

static void on_stream(void *opaque, int fd, unsigned events)
{
	(void)fd;
	struct stream *s = opaque;
	struct vmm_vsock_host *h = s->h;
	if (__atomic_load_n(&s->closed, __ATOMIC_ACQUIRE))
		return;
	if (h->dev_lock) {
		pthread_mutex_lock(h->dev_lock);
		if (h->paused && *h->paused) {
			detach(s); /* vmm_vsock_host_resume registers it again */
			pthread_mutex_unlock(h->dev_lock);
			return;
		}
	}
	if (s->mode == S_LINE) {
		line_ready(s);
	} else if ((events & EMBER_LOOP_ERR) && !(s->want & EMBER_LOOP_IN)) {
		/* hung up while the device does not read it: quiet until it
		 * asks (then the read sees the end) */
		if (s->want & EMBER_LOOP_OUT)
			virtio_vsock_host_ready(h->dev, s->handle, false, true);
		if (!__atomic_load_n(&s->closed, __ATOMIC_ACQUIRE)) {
			pthread_mutex_lock(&h->mu);
			bool idle = !(s->want & EMBER_LOOP_IN);
			pthread_mutex_unlock(&h->mu);
			if (idle)
				detach(s);
		}
	} else {
		/* an error or hang-up shows as readable: the read says which */
		bool rd = events & (EMBER_LOOP_IN | EMBER_LOOP_ERR);
		bool wr = events & (EMBER_LOOP_OUT | EMBER_LOOP_ERR);
		virtio_vsock_host_ready(h->dev, s->handle, rd, wr);
	}
	leave(h);
}

static void on_listen(void *opaque, int fd, unsigned events)
{
	(void)events;
	struct vmm_vsock_host *h = opaque;
	if (!enter(h, h->lsrc))
		return;
	for (unsigned i = 0; i < 16; i++) {
		int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0)
			break;
		pthread_mutex_lock(&h->mu);
		bool full = h->unnamed >= VMM_VSOCK_MAX_UNNAMED;
		pthread_mutex_unlock(&h->mu);
		struct stream *s = full ? NULL : stream_new(h, c, S_LINE, EMBER_LOOP_IN);
		if (!s)
			close(c);
		else
			__atomic_store_n(&s->deadline, deadline(h), __ATOMIC_RELAXED);
	}
	leave(h);
}

/* Loop thread, now and then: host clients past their deadline are closed
 * (one that has sent its CONNECT line through the device, which tells the
 * guest RST). */
static void on_tick(void *opaque, uint64_t n)
{
	(void)n;
	struct vmm_vsock_host *h = opaque;
	if (h->dev_lock) {
		pthread_mutex_lock(h->dev_lock);
		if (h->paused && *h->paused) {
			pthread_mutex_unlock(h->dev_lock);
			return; /* the guest cannot answer while paused */
		}
	}
	uint64_t now = now_ns();
	for (;;) {
		struct stream *late = NULL;
		pthread_mutex_lock(&h->mu);
		for (struct stream *s = h->all; s && !late; s = s->next) {
			uint64_t d = __atomic_load_n(&s->deadline, __ATOMIC_RELAXED);
			if (!s->zombie && d && d <= now) {
				__atomic_store_n(&s->deadline, 0, __ATOMIC_RELAXED);
				late = s;
			}
		}
		enum smode mode = late ? late->mode : S_LINE;
		virtio_vsock_handle hd = late ? late->handle : 0;
		pthread_mutex_unlock(&h->mu);
		if (!late)
			break;
		if (mode == S_LINE)
			stream_close(late);
		else
			virtio_vsock_host_abort(h->dev, hd); /* closes it */
	}
	if (h->dev_lock)
		pthread_mutex_unlock(h->dev_lock);
}

static uint64_t tick_ns(unsigned timeout_ms)
{
	uint64_t t = (uint64_t)timeout_ms * 1000000ull / 4;
	return t < 10000000ull ? 10000000ull : t > 1000000000ull ? 1000000000ull : t;
}

/* ---------------------------------------------------------------- device ops */

static int op_connect(void *host, uint32_t port, virtio_vsock_handle hd, void **out)
{
	struct vmm_vsock_host *h = host;
	char path[sizeof(h->path) + 16];
	snprintf(path, sizeof(path), "%s_%u", h->path, port);
	struct sockaddr_un a;
	if (!fill_addr(&a, path))
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		return -e; /* ENOENT, ECONNREFUSED, EAGAIN (backlog full): refused */
	}
	struct stream *s = stream_new(h, fd, S_DEV, 0);
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->handle = hd;
	*out = s;
	return 0;
}

static void op_accepted(void *host, void *stream, uint32_t local_port)
{
	(void)host;
	struct stream *s = stream;
	__atomic_store_n(&s->deadline, 0, __ATOMIC_RELAXED);
	char ok[24];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", local_port);
	ssize_t r = send(s->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r != n) /* a fresh socket has room for 14 bytes; if not, end it */
		shutdown(s->fd, SHUT_RDWR);
}

static ssize_t op_readv(void *host, void *stream, const struct iovec *iov, int n)
{
	(void)host;
	struct stream *s = stream;
	for (;;) {
		ssize_t r = readv(s->fd, iov, n);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static ssize_t op_writev(void *host, void *stream, const struct iovec *iov, int n)
{
	(void)host;
	struct stream *s = stream;
	struct msghdr m = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)n};
	for (;;) {
		ssize_t r = sendmsg(s->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static void op_watch(void *host, void *stream, bool readable, bool writable)
{
	struct vmm_vsock_host *h = host;
	struct stream *s = stream;
	unsigned ev = (readable ? EMBER_LOOP_IN : 0) | (writable ? EMBER_LOOP_OUT : 0);
	pthread_mutex_lock(&h->mu);
	s->want = ev;
	if (!h->paused || !*h->paused)
		arm_locked(s, ev);
	pthread_mutex_unlock(&h->mu);
}

static void op_shutdown(void *host, void *stream)
{
	(void)host;
	shutdown(((struct stream *)stream)->fd, SHUT_WR);
}

static void op_close(void *host, void *stream)
{
	(void)host;
	stream_close(stream);
}

const struct virtio_vsock_host_ops vmm_vsock_host_ops = {
    .connect = op_connect,
    .accepted = op_accepted,
    .readv = op_readv,
    .writev = op_writev,
    .watch = op_watch,
    .shutdown = op_shutdown,
    .close = op_close,
};

/* ---------------------------------------------------------------- lifetime */

int vmm_vsock_host_create(struct ember_loop *loop, const char *path, pthread_mutex_t *dev_lock,
			  const bool *paused, struct vmm_vsock_host **out, char *msg, size_t msglen)
{
	*out = NULL;
	int r = vmm_vsock_host_check_path(path, msg, msglen);
	if (r < 0)
		return r;
	struct vmm_vsock_host *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	h->loop = loop;
	h->dev_lock = dev_lock;
	h->paused = paused;
	h->lfd = -1;
	h->timeout_ms = VMM_VSOCK_CONNECT_TIMEOUT_MS;
	snprintf(h->path, sizeof(h->path), "%s", path);
	pthread_mutex_init(&h->mu, NULL);
	struct sockaddr_un a;
	fill_addr(&a, path);
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* stale: checked above */
	h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0 || bind(h->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(h->lfd, 128) < 0 || stat(path, &st) < 0) {
		r = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		if (h->lfd >= 0)
			close(h->lfd);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return r;
	}
	h->dev_no = st.st_dev;
	h->ino = st.st_ino;
	r = ember_loop_add_wakeup(loop, on_reap, h, &h->reaper);
	if (r < 0) {
		snprintf(msg, msglen, "cannot add a wake-up: %s", strerror(-r));
		h->reaper = NULL;
		vmm_vsock_host_destroy(h);
		return r;
	}
	*out = h;
	return 0;
}

void vmm_vsock_host_bind(struct vmm_vsock_host *h, struct virtio_vsock *dev)
{
	h->dev = dev;
}

int vmm_vsock_host_start(struct vmm_vsock_host *h)
{
	uint64_t t = tick_ns(h->timeout_ms);
	int r = ember_loop_add_timer(h->loop, t, t, on_tick, h, &h->timer);
	if (r < 0)
		return r;
	return ember_loop_add_fd(h->loop, h->lfd, EMBER_LOOP_IN, on_listen, h, &h->lsrc);
}

void vmm_vsock_host_set_timeout(struct vmm_vsock_host *h, unsigned ms)
{
	__atomic_store_n(&h->timeout_ms, ms, __ATOMIC_RELAXED);
	if (h->timer) {
		uint64_t t = tick_ns(ms);
		ember_loop_timer_set(h->timer, t, t);
	}
}

void vmm_vsock_host_resume(struct vmm_vsock_host *h)
{
	if (!h)
		return;
	if (h->lsrc)
		ember_loop_modify(h->lsrc, EMBER_LOOP_IN);
	pthread_mutex_lock(&h->mu);
	for (struct stream *s = h->all; s; s = s->next)
		arm_locked(s, s->mode == S_LINE ? EMBER_LOOP_IN : s->want);
	pthread_mutex_unlock(&h->mu);
}

void vmm_vsock_host_destroy(struct vmm_vsock_host *h)
{
	if (!h)
		return;
	if (h->lsrc)
		ember_loop_remove(h->lsrc);
	if (h->timer)
		ember_loop_remove(h->timer);
	pthread_mutex_lock(&h->mu);
	while (h->all)
		stream_free(h, h->all);
	h->zombies = NULL;
	pthread_mutex_unlock(&h->mu);
	if (h->reaper)
		ember_loop_remove(h->reaper);
	struct stat st;
	if (lstat(h->path, &st) == 0 && st.st_dev == h->dev_no && st.st_ino == h->ino)
		unlink(h->path);
	if (h->lfd >= 0)
		close(h->lfd);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
