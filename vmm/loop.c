/* vmm/loop.c - the event loop of include/ember/loop.h: epoll, timerfd and eventfd sources, safe removal. */
#include <ember/loop.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum src_kind { SRC_FD, SRC_TIMER, SRC_WAKEUP, SRC_QUIT };

struct ember_loop_source {
	struct ember_loop *loop;
	enum src_kind kind;
	int fd;
	unsigned events;
	ember_loop_fd_fn fd_fn;
	ember_loop_tick_fn tick_fn;
	void *opaque;
	bool removed; /* under loop->lock */
	struct ember_loop_source *next;
};

/*
 * lock guards the lists, every source's removed flag and running. The loop
 * thread takes it around the check "not removed" and the mark "running",
 * never across a callback; a remover on another thread waits on cond until
 * its source is no longer the running one.
 */
struct ember_loop {
	int epfd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ember_loop_source *sources; /* registered */
	struct ember_loop_source *zombies; /* removed, freed by the loop thread */
	struct ember_loop_source *running; /* the callback being run */
	struct ember_loop_source quit;	   /* an eventfd: ember_loop_quit */
	unsigned count;
	bool busy; /* a thread is in run_once */
	pthread_t thread;
	volatile sig_atomic_t quit_requested;
};

static uint32_t to_epoll(unsigned events)
{
	return ((events & EMBER_LOOP_IN) ? EPOLLIN : 0) |
	       ((events & EMBER_LOOP_OUT) ? EPOLLOUT : 0);
}

static unsigned from_epoll(uint32_t ev)
{
	return ((ev & EPOLLIN) ? EMBER_LOOP_IN : 0) | ((ev & EPOLLOUT) ? EMBER_LOOP_OUT : 0) |
	       ((ev & (EPOLLERR | EPOLLHUP)) ? EMBER_LOOP_ERR : 0);
}

int ember_loop_create(struct ember_loop **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct ember_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->quit.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->quit.kind = SRC_QUIT;
	l->quit.loop = l;
	int e = 0;
	if (l->epfd < 0 || l->quit.fd < 0) {
		e = -errno;
	} else {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->quit};
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->quit.fd, &ev) < 0)
			e = -errno;
	}
	if (e < 0) {
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->quit.fd >= 0)
			close(l->quit.fd);
		free(l);
		return e;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	*out = l;
	return 0;
}

static void free_source(struct ember_loop_source *s)
{
	if (s->kind != SRC_FD)
		close(s->fd);
	free(s);
}

static void free_list(struct ember_loop_source *s)
{
	while (s) {
		struct ember_loop_source *n = s->next;
		free_source(s);
		s = n;
	}
}

void ember_loop_destroy(struct ember_loop *loop)
{
	if (!loop)
		return;
	free_list(loop->sources);
	free_list(loop->zombies);
	close(loop->quit.fd);
	close(loop->epfd);
	pthread_mutex_destroy(&loop->lock);
	pthread_cond_destroy(&loop->cond);
	free(loop);
}

/* Registers a new source with its fd; takes ownership of s (freed on error;
 * the fd too unless it is the caller's). */
static int add_source(struct ember_loop *loop, struct ember_loop_source *s,
		      struct ember_loop_source **out)
{
	struct epoll_event ev = {.events = to_epoll(s->events), .data.ptr = s};
	s->loop = loop;
	pthread_mutex_lock(&loop->lock);
	int e = epoll_ctl(loop->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0 ? -errno : 0;
	if (e == 0) {
		s->next = loop->sources;
		loop->sources = s;
		loop->count++;
	}
	pthread_mutex_unlock(&loop->lock);
	if (e < 0) {
		free_source(s);
		return e;
	}
	if (out)
		*out = s;
	return 0;
}

static struct ember_loop_source *new_source(enum src_kind kind, int fd, void *opaque)
{
	struct ember_loop_source *s = calloc(1, sizeof(*s));
	if (!s) {
		if (kind != SRC_FD && fd >= 0)
			close(fd);
		return NULL;
	}
	s->kind = kind;
	s->fd = fd;
	s->opaque = opaque;
	return s;
}

int ember_loop_add_fd(struct ember_loop *loop, int fd, unsigned events, ember_loop_fd_fn fn,
		      void *opaque, struct ember_loop_source **out)
{
	if (out)
		*out = NULL;
	if (!loop || !fn || fd < 0 || (events & ~(EMBER_LOOP_IN | EMBER_LOOP_OUT)))
		return -EINVAL;
	struct ember_loop_source *s = new_source(SRC_FD, fd, opaque);
	if (!s)
		return -ENOMEM;
	s->events = events;
	s->fd_fn = fn;
	return add_source(loop, s, out);
}

int ember_loop_modify(struct ember_loop_source *src, unsigned events)
{
	if (!src || src->kind != SRC_FD || (events & ~(EMBER_LOOP_IN | EMBER_LOOP_OUT)))
		return -EINVAL;
	struct ember_loop *l = src->loop;
	pthread_mutex_lock(&l->lock);
	int e = 0;
	if (src->events != events) {
		struct epoll_event ev = {.events = to_epoll(events), .data.ptr = src};
		e = epoll_ctl(l->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0 ? -errno : 0;
		if (e == 0)
			src->events = events;
	}
	pthread_mutex_unlock(&l->lock);
	return e;
}

static int arm(int fd, uint64_t first_ns, uint64_t interval_ns)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(first_ns / 1000000000u),
			 .tv_nsec = (long)(first_ns % 1000000000u)},
	    .it_interval = {.tv_sec = (time_t)(interval_ns / 1000000000u),
			    .tv_nsec = (long)(interval_ns % 1000000000u)},
	};
	return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}

int ember_loop_add_timer(struct ember_loop *loop, uint64_t first_ns, uint64_t interval_ns,
			 ember_loop_tick_fn fn, void *opaque, struct ember_loop_source **out)
{
	if (out)
		*out = NULL;
	if (!loop || !fn)
		return -EINVAL;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	int e = arm(fd, first_ns, interval_ns);
	if (e < 0) {
		close(fd);
		return e;
	}
	struct ember_loop_source *s = new_source(SRC_TIMER, fd, opaque);
	if (!s)
		return -ENOMEM;
	s->events = EMBER_LOOP_IN;
	s->tick_fn = fn;
	return add_source(loop, s, out);
}

int ember_loop_timer_set(struct ember_loop_source *src, uint64_t first_ns, uint64_t interval_ns)
{
	if (!src || src->kind != SRC_TIMER)
		return -EINVAL;
	return arm(src->fd, first_ns, interval_ns);
}

int ember_loop_add_wakeup(struct ember_loop *loop, ember_loop_tick_fn fn, void *opaque,
			  struct ember_loop_source **out)
{
	if (out)
		*out = NULL;
	if (!loop || !fn)
		return -EINVAL;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct ember_loop_source *s = new_source(SRC_WAKEUP, fd, opaque);
	if (!s)
		return -ENOMEM;
	s->events = EMBER_LOOP_IN;
	s->tick_fn = fn;
	return add_source(loop, s, out);
}

static void poke(int fd)
{
	uint64_t one = 1;
	ssize_t r = write(fd, &one, sizeof(one));
	(void)r; /* EAGAIN: the counter is saturated, the loop wakes anyway */
}

int ember_loop_wake(struct ember_loop_source *src)
{
	if (!src || src->kind != SRC_WAKEUP)
		return -EINVAL;
	poke(src->fd);
	return 0;
}

void ember_loop_quit(struct ember_loop *loop)
{
	if (!loop)
		return;
	loop->quit_requested = 1;
	poke(loop->quit.fd);
}

static bool on_loop_thread(struct ember_loop *l)
{
	return l->busy && pthread_equal(l->thread, pthread_self());
}

void ember_loop_remove(struct ember_loop_source *src)
{
	if (!src)
		return;
	struct ember_loop *l = src->loop;
	pthread_mutex_lock(&l->lock);
	if (!src->removed) {
		src->removed = true;
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, src->fd, NULL);
		for (struct ember_loop_source **p = &l->sources; *p; p = &(*p)->next) {
			if (*p == src) {
				*p = src->next;
				break;
			}
		}
		l->count--;
		src->next = l->zombies;
		l->zombies = src;
	}
	bool self = on_loop_thread(l);
	while (!self && l->running == src)
		pthread_cond_wait(&l->cond, &l->lock);
	if (!l->busy) { /* nobody dispatches: nothing can point at it */
		struct ember_loop_source *z = l->zombies;
		l->zombies = NULL;
		pthread_mutex_unlock(&l->lock);
		free_list(z);
		return;
	}
	pthread_mutex_unlock(&l->lock);
}

unsigned ember_loop_count(struct ember_loop *loop)
{
	if (!loop)
		return 0;
	pthread_mutex_lock(&loop->lock);
	unsigned n = loop->count;
	pthread_mutex_unlock(&loop->lock);
	return n;
}

/* Reads a timerfd or eventfd counter (0 when a spurious wake found none). */
static uint64_t drain_counter(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static void dispatch(struct ember_loop *l, struct ember_loop_source *s, uint32_t ev)
{
	if (s->kind == SRC_FD) {
		s->fd_fn(s->opaque, s->fd, from_epoll(ev));
		return;
	}
	uint64_t n = drain_counter(s->fd);
	if (n)
		s->tick_fn(s->opaque, n);
}

#define LOOP_BATCH 32

int ember_loop_run_once(struct ember_loop *loop, int timeout_ms)
{
	if (!loop)
		return -EINVAL;
	struct ember_loop *l = loop;
	pthread_mutex_lock(&l->lock);
	if (l->busy) {
		pthread_mutex_unlock(&l->lock);
		return -EBUSY;
	}
	l->busy = true;
	l->thread = pthread_self();
	/* events of the last round are handled: removed sources can go */
	struct ember_loop_source *z = l->zombies;
	l->zombies = NULL;
	pthread_mutex_unlock(&l->lock);
	free_list(z);

	struct epoll_event evs[LOOP_BATCH];
	int n = epoll_wait(l->epfd, evs, LOOP_BATCH, timeout_ms);
	int ret = n < 0 ? -errno : 0;
	for (int i = 0; i < n; i++) {
		struct ember_loop_source *s = evs[i].data.ptr;
		if (s == &l->quit) {
			drain_counter(l->quit.fd);
			continue;
		}
		pthread_mutex_lock(&l->lock);
		bool live = !s->removed;
		if (live)
			l->running = s;
		pthread_mutex_unlock(&l->lock);
		if (!live)
			continue;
		dispatch(l, s, evs[i].events);
		ret++;
		pthread_mutex_lock(&l->lock);
		l->running = NULL;
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->lock);
	}

	pthread_mutex_lock(&l->lock);
	l->busy = false;
	z = l->zombies;
	l->zombies = NULL;
	pthread_mutex_unlock(&l->lock);
	free_list(z);
	return ret;
}

int ember_loop_run(struct ember_loop *loop)
{
	if (!loop)
		return -EINVAL;
	int r = 0;
	while (!loop->quit_requested) {
		r = ember_loop_run_once(loop, -1);
		if (r == -EINTR)
			r = 0;
		else if (r < 0)
			break;
		r = 0;
	}
	loop->quit_requested = 0;
	return r;
}
