/* lib/base/deadline.h - timeouts as CLOCK_MONOTONIC deadlines for condition-variable waits, shared by every layer. */
#ifndef EMBER_BASE_DEADLINE_H
#define EMBER_BASE_DEADLINE_H

/*
 * lib/base/ is the lowest private directory: header-only, it includes only
 * the C library, and any layer's private code may include it (lib/hv's
 * runner and vmm/'s lifecycle both wait with a timeout in milliseconds).
 * The condition variables waited on must use CLOCK_MONOTONIC
 * (pthread_condattr_setclock), so a change of the wall clock moves no
 * deadline.
 */

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>

/* *deadline = now (CLOCK_MONOTONIC) + timeout_ms (>= 0), normalised. */
static inline void base_deadline_after_ms(struct timespec *deadline, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, deadline);
	deadline->tv_sec += timeout_ms / 1000;
	deadline->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline->tv_nsec >= 1000000000) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000;
	}
}

/* One wait on cond with mutex held: until signalled (a spurious wake-up
 * too), or until deadline passes; deadline NULL waits without one. Returns
 * 0, or ETIMEDOUT (positive, as pthread does) once the deadline passed. */
static inline int base_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex,
				       const struct timespec *deadline)
{
	if (!deadline)
		return pthread_cond_wait(cond, mutex);
	return pthread_cond_timedwait(cond, mutex, deadline) == ETIMEDOUT ? ETIMEDOUT : 0;
}

#endif /* EMBER_BASE_DEADLINE_H */
