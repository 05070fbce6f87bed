/* tests/unit/vmm_loop.c - the event loop (include/ember/loop.h): fds, timers, wake-ups, removal from callbacks, threads. */
#include "../lib/test.h"

#include <ember/loop.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct ember_loop *new_loop(void)
{
	struct ember_loop *l = NULL;
	int r = ember_loop_create(&l);
	if (r < 0 || !l)
		TEST_FAIL("ember_loop_create: %d", r);
	return l;
}

struct fd_seen {
	int calls;
	int fd;
	unsigned events;
	char data[64];
	size_t len;
};

static void read_cb(void *opaque, int fd, unsigned events)
{
	struct fd_seen *s = opaque;
	s->calls++;
	s->fd = fd;
	s->events = events;
	ssize_t n = read(fd, s->data + s->len, sizeof(s->data) - s->len);
	if (n > 0)
		s->len += (size_t)n;
}

TEST(loop_fd_readable_dispatches_with_events)
{
	struct ember_loop *l = new_loop();
	int p[2];
	REQUIRE_OK(pipe2(p, O_NONBLOCK));
	struct fd_seen s = {0};
	struct ember_loop_source *src = NULL;
	REQUIRE_OK(ember_loop_add_fd(l, p[0], EMBER_LOOP_IN, read_cb, &s, &src));
	CHECK(src != NULL);
	CHECK_EQ(ember_loop_count(l), 1);
	CHECK_EQ(ember_loop_run_once(l, 0), 0); /* nothing to read yet */
	CHECK_EQ(s.calls, 0);
	REQUIRE_EQ(write(p[1], "abc", 3), 3);
	CHECK_EQ(ember_loop_run_once(l, 1000), 1);
	CHECK_EQ(s.calls, 1);
	CHECK_EQ(s.fd, p[0]);
	CHECK_EQ(s.events, EMBER_LOOP_IN);
	CHECK_EQ(s.len, 3);
	CHECK(memcmp(s.data, "abc", 3) == 0);
	/* the same fd twice is refused */
	CHECK_ERR(ember_loop_add_fd(l, p[0], EMBER_LOOP_IN, read_cb, &s, NULL), -EEXIST);
	/* a hang-up is reported */
	close(p[1]);
	CHECK_EQ(ember_loop_run_once(l, 1000), 1);
	CHECK(s.events & EMBER_LOOP_ERR);
	ember_loop_remove(src);
	CHECK_EQ(ember_loop_count(l), 0);
	ember_loop_destroy(l);
	close(p[0]);
}

static void count_cb(void *opaque, int fd, unsigned events)
{
	(void)fd;
	(void)events;
	(*(int *)opaque)++;
}

TEST(loop_modify_switches_events)
{
	struct ember_loop *l = new_loop();
	int p[2];
	REQUIRE_OK(pipe2(p, O_NONBLOCK));
	int calls = 0;
	struct ember_loop_source *w = NULL;
	/* registered idle: an empty pipe's write end is writable, but not asked */
	REQUIRE_OK(ember_loop_add_fd(l, p[1], 0, count_cb, &calls, &w));
	CHECK_EQ(ember_loop_run_once(l, 0), 0);
	CHECK_EQ(calls, 0);
	REQUIRE_OK(ember_loop_modify(w, EMBER_LOOP_OUT));
	CHECK_EQ(ember_loop_run_once(l, 1000), 1);
	CHECK_EQ(calls, 1);
	/* level-triggered: still writable, called again */
	CHECK_EQ(ember_loop_run_once(l, 1000), 1);
	CHECK_EQ(calls, 2);
	REQUIRE_OK(ember_loop_modify(w, 0));
	CHECK_EQ(ember_loop_run_once(l, 0), 0);
	CHECK_EQ(calls, 2);
	CHECK_ERR(ember_loop_modify(w, 0x80), -EINVAL);
	ember_loop_destroy(l); /* frees the source; the fds stay ours */
	CHECK_EQ(write(p[1], "x", 1), 1);
	close(p[0]);
	close(p[1]);
}

TEST(loop_bad_arguments)
{
	struct ember_loop *l = new_loop();
	int calls = 0;
	struct ember_loop_source *src = (void *)1;
	CHECK_ERR(ember_loop_create(NULL), -EINVAL);
	CHECK_ERR(ember_loop_add_fd(NULL, 0, EMBER_LOOP_IN, count_cb, &calls, NULL), -EINVAL);
	CHECK_ERR(ember_loop_add_fd(l, -1, EMBER_LOOP_IN, count_cb, &calls, &src), -EINVAL);
	CHECK(src == NULL); /* *out cleared on failure */
	CHECK_ERR(ember_loop_add_fd(l, 0, EMBER_LOOP_IN, NULL, &calls, NULL), -EINVAL);
	CHECK_ERR(ember_loop_add_fd(l, 0, EMBER_LOOP_ERR, count_cb, &calls, NULL), -EINVAL);
	CHECK_ERR(ember_loop_add_fd(l, 9999, EMBER_LOOP_IN, count_cb, &calls, NULL), -EBADF);
	/* a regular file cannot be polled */
	char path[] = "/tmp/ember-loop-XXXXXX";
	int f = mkstemp(path);
	REQUIRE(f >= 0);
	unlink(path);
	CHECK_ERR(ember_loop_add_fd(l, f, EMBER_LOOP_IN, count_cb, &calls, NULL), -EPERM);
	close(f);
	CHECK_ERR(ember_loop_add_timer(l, 1, 0, NULL, NULL, NULL), -EINVAL);
	CHECK_ERR(ember_loop_add_wakeup(NULL, NULL, NULL, NULL), -EINVAL);
	CHECK_ERR(ember_loop_wake(NULL), -EINVAL);
	CHECK_ERR(ember_loop_run_once(NULL, 0), -EINVAL);
	CHECK_ERR(ember_loop_run(NULL), -EINVAL);
	CHECK_EQ(ember_loop_count(l), 0);
	ember_loop_remove(NULL);
	ember_loop_quit(NULL);
	ember_loop_destroy(NULL);
	ember_loop_destroy(l);
}

struct ticks {
	int calls;
	uint64_t total;
	uint64_t first_ns;
};

static void tick_cb(void *opaque, uint64_t n)
{
	struct ticks *t = opaque;
	if (!t->calls)
		t->first_ns = now_ns();
	t->calls++;
	t->total += n;
}

TEST(loop_timer_once_periodic_and_rearm)
{
	struct ember_loop *l = new_loop();
	struct ticks once = {0}, per = {0};
	struct ember_loop_source *t1 = NULL, *t2 = NULL;
	uint64_t t0 = now_ns();
	REQUIRE_OK(ember_loop_add_timer(l, 30000000, 0, tick_cb, &once, &t1)); /* 30 ms */
	REQUIRE_OK(ember_loop_add_timer(l, 5000000, 5000000, tick_cb, &per, &t2));
	while (now_ns() - t0 < 120000000ull)
		ember_loop_run_once(l, 10);
	uint64_t elapsed = now_ns() - t0; /* more than 120 ms on a loaded host */
	CHECK_EQ(once.calls, 1);
	CHECK_EQ(once.total, 1);
	CHECK(once.first_ns - t0 >= 30000000ull);  /* not early */
	CHECK(per.total >= 10);			   /* ~24 periods in 120 ms */
	CHECK(per.total <= elapsed / 5000000 + 1); /* never more periods than elapsed */
	/* disarmed: no more ticks */
	REQUIRE_OK(ember_loop_timer_set(t2, 0, 0));
	uint64_t before = per.total;
	ember_loop_run_once(l, 50);
	CHECK_EQ(per.total, before);
	/* re-armed once */
	REQUIRE_OK(ember_loop_timer_set(t1, 1000000, 0));
	CHECK_EQ(ember_loop_run_once(l, 1000), 1);
	CHECK_EQ(once.calls, 2);
	/* a wake-up source is not a timer, and the reverse */
	CHECK_ERR(ember_loop_wake(t1), -EINVAL);
	CHECK_ERR(ember_loop_modify(t1, EMBER_LOOP_IN), -EINVAL);
	CHECK_EQ(ember_loop_count(l), 2);
	ember_loop_destroy(l);
}

TEST(loop_wakeup_coalesces)
{
	struct ember_loop *l = new_loop();
	struct ticks t = {0};
	struct ember_loop_source *w = NULL;
	REQUIRE_OK(ember_loop_add_wakeup(l, tick_cb, &t, &w));
	CHECK_ERR(ember_loop_timer_set(w, 1, 0), -EINVAL);
	CHECK_EQ(ember_loop_run_once(l, 0), 0);
	REQUIRE_OK(ember_loop_wake(w));
	REQUIRE_OK(ember_loop_wake(w));
	REQUIRE_OK(ember_loop_wake(w));
	CHECK_EQ(ember_loop_run_once(l, 1000), 1);
	CHECK_EQ(t.calls, 1); /* three wakes, one callback */
	CHECK_EQ(t.total, 3);
	CHECK_EQ(ember_loop_run_once(l, 0), 0);
	ember_loop_destroy(l);
}

/* ---- removal from within callbacks */

struct rm_ctx {
	struct ember_loop_source *a, *b;
	int a_calls, b_calls;
};

static void rm_a(void *opaque, uint64_t n)
{
	struct rm_ctx *c = opaque;
	(void)n;
	c->a_calls++;
	ember_loop_remove(c->b); /* b's event of this same round must not run */
	ember_loop_remove(c->a); /* and itself */
	c->a = c->b = NULL;
}

static void rm_b(void *opaque, uint64_t n)
{
	struct rm_ctx *c = opaque;
	(void)n;
	c->b_calls++;
	ember_loop_remove(c->a);
	ember_loop_remove(c->b);
	c->a = c->b = NULL;
}

TEST(loop_remove_self_and_other_from_callback)
{
	struct ember_loop *l = new_loop();
	struct rm_ctx c = {0};
	REQUIRE_OK(ember_loop_add_wakeup(l, rm_a, &c, &c.a));
	REQUIRE_OK(ember_loop_add_wakeup(l, rm_b, &c, &c.b));
	/* both ready in the same round: whichever runs first removes both */
	ember_loop_wake(c.a);
	ember_loop_wake(c.b);
	CHECK_EQ(ember_loop_run_once(l, 1000), 1);
	CHECK_EQ(c.a_calls + c.b_calls, 1);
	CHECK_EQ(ember_loop_count(l), 0);
	CHECK_EQ(ember_loop_run_once(l, 0), 0);
	ember_loop_destroy(l); /* ASan: nothing freed twice, nothing leaked */
}

/* A callback that removes itself and adds a new source for the same fd. */
struct readd_ctx {
	struct ember_loop *l;
	struct ember_loop_source *src;
	int calls;
};

static void readd_cb(void *opaque, int fd, unsigned events)
{
	struct readd_ctx *c = opaque;
	(void)events;
	char buf[8];
	ssize_t r = read(fd, buf, sizeof(buf));
	(void)r;
	c->calls++;
	ember_loop_remove(c->src);
	c->src = NULL;
	if (c->calls < 3 && ember_loop_add_fd(c->l, fd, EMBER_LOOP_IN, readd_cb, c, &c->src) < 0)
		c->calls = 100;
}

TEST(loop_remove_and_readd_fd_from_callback)
{
	struct readd_ctx c = {.l = new_loop()};
	int p[2];
	REQUIRE_OK(pipe2(p, O_NONBLOCK));
	REQUIRE_OK(ember_loop_add_fd(c.l, p[0], EMBER_LOOP_IN, readd_cb, &c, &c.src));
	for (int i = 0; i < 3; i++) {
		REQUIRE_EQ(write(p[1], "x", 1), 1);
		CHECK_EQ(ember_loop_run_once(c.l, 1000), 1);
		CHECK_EQ(c.calls, i + 1);
	}
	CHECK_EQ(ember_loop_count(c.l), 0);
	ember_loop_destroy(c.l);
	close(p[0]);
	close(p[1]);
}

/* ---- threads: run on one thread, register/wake/remove/quit from another */

struct slow_ctx {
	atomic_int inside, done;
};

static void slow_cb(void *opaque, uint64_t n)
{
	struct slow_ctx *c = opaque;
	(void)n;
	atomic_store(&c->inside, 1);
	usleep(100000);
	atomic_store(&c->done, 1);
}

static void *runner_thread(void *arg)
{
	ember_loop_run(arg);
	return NULL;
}

TEST(loop_remove_from_other_thread_waits_for_running_callback)
{
	struct ember_loop *l = new_loop();
	struct slow_ctx c = {0};
	struct ember_loop_source *w = NULL;
	REQUIRE_OK(ember_loop_add_wakeup(l, slow_cb, &c, &w));
	pthread_t t;
	REQUIRE_EQ(pthread_create(&t, NULL, runner_thread, l), 0);
	ember_loop_wake(w);
	while (!atomic_load(&c.inside))
		usleep(1000);
	/* the callback sleeps 100 ms: remove returns only after it finished */
	ember_loop_remove(w);
	CHECK_EQ(atomic_load(&c.done), 1);
	CHECK_EQ(ember_loop_count(l), 0);
	uint64_t t0 = now_ns();
	ember_loop_quit(l);
	REQUIRE_EQ(pthread_join(t, NULL), 0);
	CHECK(now_ns() - t0 < 1000000000ull); /* quit wakes a loop blocked forever */
	ember_loop_destroy(l);
}

TEST(loop_run_once_busy_from_second_thread)
{
	struct ember_loop *l = new_loop();
	pthread_t t;
	REQUIRE_EQ(pthread_create(&t, NULL, runner_thread, l), 0);
	int r = 0;
	for (int i = 0; i < 200 && r != -EBUSY; i++) {
		usleep(1000);
		r = ember_loop_run_once(l, 0);
	}
	CHECK_ERR(r, -EBUSY);
	ember_loop_quit(l);
	REQUIRE_EQ(pthread_join(t, NULL), 0);
	/* the quit was consumed: the next run waits again, a timeout returns 0 */
	CHECK_EQ(ember_loop_run_once(l, 10), 0);
	ember_loop_destroy(l);
}

TEST(loop_quit_before_run_returns_at_once)
{
	struct ember_loop *l = new_loop();
	ember_loop_quit(l);
	uint64_t t0 = now_ns();
	CHECK_OK(ember_loop_run(l));
	CHECK(now_ns() - t0 < 500000000ull);
	ember_loop_destroy(l);
}
