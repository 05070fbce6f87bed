/* tests/unit/base_deadline.c - lib/base/deadline.h: millisecond timeouts as normalised CLOCK_MONOTONIC deadlines, waits that end at them. */
#include "../../lib/base/deadline.h"
#include "../lib/test.h"

#include <stdint.h>

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

TEST(base_deadline_after_ms_is_now_plus_the_timeout_normalised)
{
	static const int ms[] = {0, 1, 999, 1000, 1999, 2500, 60000};
	for (unsigned i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		struct timespec before, d, after;
		clock_gettime(CLOCK_MONOTONIC, &before);
		base_deadline_after_ms(&d, ms[i]);
		clock_gettime(CLOCK_MONOTONIC, &after);
		CHECK(d.tv_nsec >= 0 && d.tv_nsec < 1000000000);
		CHECK(ts_ns(&d) >= ts_ns(&before) + (int64_t)ms[i] * 1000000);
		CHECK(ts_ns(&d) <= ts_ns(&after) + (int64_t)ms[i] * 1000000);
	}
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static int flag;

static void *signaller(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	flag = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	return NULL;
}

TEST(base_cond_wait_until_times_out_at_the_deadline_and_wakes_when_signalled)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &ca);
	pthread_condattr_destroy(&ca);

	/* nobody signals: ETIMEDOUT, not before the deadline */
	struct timespec d, now;
	base_deadline_after_ms(&d, 50);
	pthread_mutex_lock(&lock);
	int r = 0;
	while (r != ETIMEDOUT)
		r = base_cond_wait_until(&cond, &lock, &d);
	pthread_mutex_unlock(&lock);
	clock_gettime(CLOCK_MONOTONIC, &now);
	CHECK(ts_ns(&now) >= ts_ns(&d));

	/* a deadline already passed: ETIMEDOUT at once */
	base_deadline_after_ms(&d, 0);
	pthread_mutex_lock(&lock);
	CHECK_EQ(base_cond_wait_until(&cond, &lock, &d), ETIMEDOUT);

	/* no deadline: returns 0 once signalled */
	pthread_t t;
	REQUIRE_EQ(pthread_create(&t, NULL, signaller, NULL), 0);
	while (!flag)
		CHECK_EQ(base_cond_wait_until(&cond, &lock, NULL), 0);
	pthread_mutex_unlock(&lock);
	pthread_join(t, NULL);
	CHECK_EQ(flag, 1);
	pthread_cond_destroy(&cond);
}
