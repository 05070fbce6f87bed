/* ember/loop.h - the VMM's event loop: file descriptors, timers and wake-ups dispatched by one thread (epoll). */
#ifndef EMBER_LOOP_H
#define EMBER_LOOP_H

/*
 * Model
 * -----
 * A struct ember_loop is an epoll set and a list of sources. A source is a
 * file descriptor with the events wanted (EMBER_LOOP_IN/OUT), a timer (a
 * timerfd on CLOCK_MONOTONIC) or a wake-up (an eventfd that any thread, or a
 * signal handler, can fire). Each has a callback and an opaque pointer.
 *
 * Thread model
 * ------------
 * Callbacks run only on the thread that calls ember_loop_run() or
 * ember_loop_run_once() (the loop thread), one at a time, in no promised
 * order. Only one thread may run the loop at a time. Every other function
 * may be called from any thread, including from inside a callback:
 * registration changes are serialised by a mutex that callbacks do not run
 * under. ember_loop_wake() and ember_loop_quit() are also async-signal-safe.
 *
 * A VM (include/ember/vmm.h) owns one loop and one I/O thread that runs it,
 * from ember_vm_start() until the VM has stopped: the lifecycle calls can
 * then come from any thread, and ember_vm_wait() only waits. The loop is
 * given out by ember_vm_loop() for callers that add their own sources.
 *
 * Removal
 * -------
 * ember_loop_remove() unregisters a source at once: from inside any
 * callback of this loop (its own included) the removed source's callback is
 * not called again, not even for an event of the same round. From another
 * thread, ember_loop_remove() waits until a callback of that source that is
 * already running has returned (so that callback must not wait for the
 * remover), and none starts after that. The memory of
 * a removed source is freed by the loop thread (or ember_loop_destroy), so
 * the pointer must not be used after the call. The fd is never closed by the
 * loop (timers and wake-ups close their own timerfd/eventfd).
 *
 * Errors are negative errno values; functions with a return value return 0
 * (or a documented count) on success.
 */

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ember_loop;
struct ember_loop_source;

/* Events of a file descriptor source (a mask). */
#define EMBER_LOOP_IN  0x1u /* readable (or hung up: read to see EOF) */
#define EMBER_LOOP_OUT 0x2u /* writable */
#define EMBER_LOOP_ERR 0x4u /* error or hang-up (reported, never requested) */

/* A file descriptor is ready: events is the subset of EMBER_LOOP_* seen. */
typedef void (*ember_loop_fd_fn)(void *opaque, int fd, unsigned events);
/* A timer expired (expirations: how many periods passed, >= 1) or a wake-up
 * fired (expirations: how many ember_loop_wake() calls were coalesced). */
typedef void (*ember_loop_tick_fn)(void *opaque, uint64_t expirations);

/* Creates an empty loop. Errors: -EINVAL (NULL out), -ENOMEM, -EMFILE. */
int ember_loop_create(struct ember_loop **out);
/* Frees the loop and every source still registered (their fds are not
 * closed). Not while a thread runs it. NULL is allowed. */
void ember_loop_destroy(struct ember_loop *loop);

/*
 * Registers fd for events (EMBER_LOOP_IN and/or EMBER_LOOP_OUT; 0 keeps it
 * registered but idle). Level-triggered: the callback runs on every round
 * while the condition holds. *out (may be NULL) receives the source for
 * ember_loop_modify/remove. Errors: -EINVAL (NULL loop or fn, fd < 0, bad
 * events), -EEXIST (fd already registered in this loop), -EBADF, -EPERM (fd
 * does not support epoll, e.g. a regular file), -ENOMEM.
 */
int ember_loop_add_fd(struct ember_loop *loop, int fd, unsigned events, ember_loop_fd_fn fn,
		      void *opaque, struct ember_loop_source **out);
/* Changes the events a file descriptor source waits for. -EINVAL for a
 * timer or wake-up source or bad events. */
int ember_loop_modify(struct ember_loop_source *src, unsigned events);

/*
 * A timer: first expiry after first_ns nanoseconds, then every interval_ns
 * (0: once). first_ns 0 creates it disarmed. Errors: -EINVAL, -ENOMEM,
 * -EMFILE.
 */
int ember_loop_add_timer(struct ember_loop *loop, uint64_t first_ns, uint64_t interval_ns,
			 ember_loop_tick_fn fn, void *opaque, struct ember_loop_source **out);
/* Re-arms (or with first_ns 0 disarms) a timer source. -EINVAL if src is
 * not a timer. */
int ember_loop_timer_set(struct ember_loop_source *src, uint64_t first_ns, uint64_t interval_ns);

/* A wake-up: fn runs on the loop thread after ember_loop_wake(src). */
int ember_loop_add_wakeup(struct ember_loop *loop, ember_loop_tick_fn fn, void *opaque,
			  struct ember_loop_source **out);
/* Fires a wake-up source. Any thread, async-signal-safe; never blocks.
 * -EINVAL if src is not a wake-up. */
int ember_loop_wake(struct ember_loop_source *src);

/* Unregisters and frees src (see Removal above). NULL is allowed. */
void ember_loop_remove(struct ember_loop_source *src);

/*
 * Waits up to timeout_ms (< 0: forever, 0: poll) for events and dispatches
 * them. Returns the number of callbacks run (0 on a timeout or when only
 * ember_loop_quit woke it), or -EINTR (a signal interrupted the wait),
 * -EBUSY (another thread is running the loop), -EINVAL.
 */
int ember_loop_run_once(struct ember_loop *loop, int timeout_ms);
/* Dispatches until ember_loop_quit(). Returns 0, or the error of a failed
 * wait (signals are retried). Clears the quit request on return. */
int ember_loop_run(struct ember_loop *loop);
/* Makes ember_loop_run() return after the current round (or before the
 * next if it is not running). Any thread, async-signal-safe. */
void ember_loop_quit(struct ember_loop *loop);

/* The number of sources registered (for tests and diagnostics). */
unsigned ember_loop_count(struct ember_loop *loop);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_LOOP_H */
