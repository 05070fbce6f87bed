/* lib/hv/runner.c - the vCPU runner: one thread per vCPU, a state machine driven by requests, exit dispatch. */
#include "hv_internal.h"

#include "../base/deadline.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Per vCPU, under rv->lock: target (the state requests ask for, last request
 * wins), state (what the thread has reached), req_seq/ack_seq (a requester
 * waits until the thread has converged past its request), and one call slot.
 * req_flag is the one word the exit path reads (atomically, without the lock):
 * set by every request, cleared by the thread when it has converged.
 */
struct rvcpu {
	struct ehv_runner *r;
	struct ehv_vcpu *vcpu;
	int idx;
	pthread_t thread;
	bool thread_ok;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int req_flag;
	int state;  /* enum ehv_vcpu_state; written under lock, read atomically */
	int target; /* enum ehv_vcpu_state */
	int error;
	uint64_t req_seq, ack_seq;
	bool ran; /* entered RUNNING at least once */
	/* call slot */
	bool call_busy;
	ehv_vcpu_fn call_fn;
	void *call_arg;
	int call_ret;
	uint64_t call_seq, call_done;
};

struct ehv_runner {
	ehv_exit_handler_fn handlers[EHV_EXIT_REASON_MAX];
	void *opaque;
	void (*on_stop)(void *opaque, int idx);
	int (*on_thread_start)(void *opaque, int idx);
	unsigned n;
	struct rvcpu *v;
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	unsigned nstopped;
};

static __thread struct rvcpu *tls_self;

const char *ehv_vcpu_state_name(enum ehv_vcpu_state state)
{
	switch (state) {
	case EHV_VCPU_CREATED:
		return "created";
	case EHV_VCPU_RUNNING:
		return "running";
	case EHV_VCPU_PAUSED:
		return "paused";
	case EHV_VCPU_STOPPED:
		return "stopped";
	default:
		return "invalid";
	}
}

static void set_state(struct rvcpu *rv, int state)
{
	__atomic_store_n(&rv->state, state, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------ vCPU thread */

/* The handler's verdict for one exit: EHV_ACTION_* or -errno. */
static inline int dispatch(struct ehv_runner *r, struct ehv_vcpu *v, const struct ehv_exit *e)
{
	unsigned reason = (unsigned)e->reason;
	if (reason == EHV_EXIT_CANCELED || reason == EHV_EXIT_NOTHING)
		return EHV_ACTION_CONTINUE;
	ehv_exit_handler_fn h = r->handlers[reason];
	if (!h)
		return -ENOSYS;
	int act = h(v, e, r->opaque);
	if (act < 0)
		return act;
	if (act > EHV_ACTION_STOP_ALL)
		return -EINVAL;
	return act;
}

static void stop_others(struct rvcpu *self)
{
	struct ehv_runner *r = self->r;
	for (unsigned i = 0; i < r->n; i++) {
		struct rvcpu *o = &r->v[i];
		if (o == self)
			continue;
		pthread_mutex_lock(&o->lock);
		o->target = EHV_VCPU_STOPPED;
		o->req_seq++;
		__atomic_store_n(&o->req_flag, 1, __ATOMIC_SEQ_CST);
		pthread_cond_broadcast(&o->cond);
		pthread_mutex_unlock(&o->lock);
		ehv_vcpu_kick(o->vcpu);
	}
}

/* The exit path: no lock, no allocation, no syscall but the backend's run.
 * Returns when a request is pending (CONTINUE) or with an action / -errno. */
static int run_loop(struct rvcpu *rv)
{
	struct ehv_runner *r = rv->r;
	struct ehv_vcpu *v = rv->vcpu;
	struct ehv_exit exit;
	while (!__atomic_load_n(&rv->req_flag, __ATOMIC_ACQUIRE)) {
		int reason = ehv_vcpu_run(v, &exit);
		if (reason < 0)
			return reason;
		int act = dispatch(r, v, &exit);
		if (act != EHV_ACTION_CONTINUE)
			return act;
	}
	return EHV_ACTION_CONTINUE;
}

/* Finishes a half-done I/O, MMIO, MSR or hypercall (one run with
 * immediate_exit set; more if the completion produced new exits). Returns
 * CONTINUE, PAUSE, STOP, STOP_ALL (from a handler) or -errno. */
static int complete_pending(struct rvcpu *rv)
{
	struct ehv_exit exit;
	int verdict = EHV_ACTION_CONTINUE;
	for (int guard = 0; ehv_vcpu_has_pending_completion(rv->vcpu); guard++) {
		if (guard > 1000)
			return -ELOOP;
		int reason = ehv_vcpu_complete_pending(rv->vcpu, &exit);
		if (reason < 0)
			return reason;
		if (reason == EHV_EXIT_CANCELED)
			break;
		int act = dispatch(rv->r, rv->vcpu, &exit);
		if (act < 0 || act == EHV_ACTION_STOP || act == EHV_ACTION_STOP_ALL)
			return act;
		if (act == EHV_ACTION_PAUSE)
			verdict = act;
	}
	return verdict;
}

/* Applies an action or error returned by the unlocked part; lock held. */
static void apply(struct rvcpu *rv, int act)
{
	if (act < 0) {
		rv->error = act;
		rv->target = EHV_VCPU_STOPPED;
	} else if (act == EHV_ACTION_STOP) {
		rv->target = EHV_VCPU_STOPPED;
	} else if (act == EHV_ACTION_STOP_ALL) {
		rv->target = EHV_VCPU_STOPPED;
		pthread_mutex_unlock(&rv->lock);
		stop_others(rv);
		pthread_mutex_lock(&rv->lock);
	} else if (act == EHV_ACTION_PAUSE && rv->target == EHV_VCPU_RUNNING) {
		rv->target = EHV_VCPU_PAUSED;
	}
}

static void do_call(struct rvcpu *rv)
{
	ehv_vcpu_fn fn = rv->call_fn;
	void *arg = rv->call_arg;
	uint64_t seq = rv->call_seq;
	pthread_mutex_unlock(&rv->lock);
	int act = complete_pending(rv);
	int ret = act < 0 ? act : fn(rv->vcpu, arg);
	pthread_mutex_lock(&rv->lock);
	if (act != EHV_ACTION_CONTINUE)
		apply(rv, act);
	rv->call_ret = ret;
	rv->call_done = seq;
	rv->call_busy = false;
	rv->call_fn = NULL;
	pthread_cond_broadcast(&rv->cond);
}

static void *vcpu_thread(void *arg)
{
	struct rvcpu *rv = arg;
	tls_self = rv;
	ehvi_set_runner_thread_vcpu(rv->vcpu);
	char name[16];
	snprintf(name, sizeof(name), "ember-vcpu-%u", ehv_vcpu_id(rv->vcpu));
	pthread_setname_np(pthread_self(), name);
	/* signals go to other threads; this one takes only kicks (and faults) */
	sigset_t set;
	sigfillset(&set);
	sigdelset(&set, ehv_kick_signal());
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGILL);
	sigdelset(&set, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	/* the caller's hook (a seccomp filter): before anything else runs here */
	int hook = rv->r->on_thread_start ? rv->r->on_thread_start(rv->r->opaque, rv->idx) : 0;

	pthread_mutex_lock(&rv->lock);
	if (hook < 0) {
		rv->error = hook;
		rv->target = EHV_VCPU_STOPPED;
	}
	for (;;) {
		if (rv->target == EHV_VCPU_STOPPED)
			break;
		if (rv->call_busy && rv->call_done < rv->call_seq) {
			do_call(rv);
			continue;
		}
		uint64_t seen = rv->req_seq;
		int act = EHV_ACTION_CONTINUE;
		if (rv->target == EHV_VCPU_PAUSED && rv->state != EHV_VCPU_PAUSED) {
			pthread_mutex_unlock(&rv->lock);
			act = complete_pending(rv);
			if (act >= 0 && rv->ran)
				(void)ehv_vcpu_on_suspend(rv->vcpu);
			pthread_mutex_lock(&rv->lock);
			if (act != EHV_ACTION_CONTINUE && act != EHV_ACTION_PAUSE) {
				apply(rv, act);
				continue;
			}
			set_state(rv, EHV_VCPU_PAUSED);
		} else if (rv->target == EHV_VCPU_RUNNING && rv->state != EHV_VCPU_RUNNING) {
			set_state(rv, EHV_VCPU_RUNNING);
			rv->ran = true;
		}
		if (rv->req_seq != seen)
			continue; /* a newer request came while unlocked */
		rv->ack_seq = seen;
		__atomic_store_n(&rv->req_flag, 0, __ATOMIC_SEQ_CST);
		pthread_cond_broadcast(&rv->cond);
		if (rv->state == EHV_VCPU_RUNNING) {
			pthread_mutex_unlock(&rv->lock);
			act = run_loop(rv);
			pthread_mutex_lock(&rv->lock);
			apply(rv, act);
			continue;
		}
		pthread_cond_wait(&rv->cond, &rv->lock);
	}
	set_state(rv, EHV_VCPU_STOPPED);
	rv->ack_seq = rv->req_seq;
	if (rv->call_busy && rv->call_done < rv->call_seq) {
		rv->call_ret = -ESRCH;
		rv->call_done = rv->call_seq;
		rv->call_busy = false;
	}
	__atomic_store_n(&rv->req_flag, 0, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&rv->cond);
	pthread_mutex_unlock(&rv->lock);

	pthread_mutex_lock(&rv->r->wait_lock);
	rv->r->nstopped++;
	pthread_cond_broadcast(&rv->r->wait_cond);
	pthread_mutex_unlock(&rv->r->wait_lock);
	if (rv->r->on_stop)
		rv->r->on_stop(rv->r->opaque, rv->idx);
	tls_self = NULL;
	ehvi_set_runner_thread_vcpu(NULL);
	return NULL;
}

/* --------------------------------------------------------------- requests */

enum req_kind { REQ_START, REQ_PAUSE, REQ_RESUME, REQ_STOP };

/* Posts a request; returns the sequence number to wait for, 0 when there is
 * nothing to wait for, or -ESRCH. */
static int64_t post(struct rvcpu *rv, enum req_kind kind)
{
	int64_t ret;
	pthread_mutex_lock(&rv->lock);
	if (rv->state == EHV_VCPU_STOPPED || rv->target == EHV_VCPU_STOPPED) {
		ret = kind == REQ_STOP ? 0 : -ESRCH;
		if (kind == REQ_STOP && rv->state != EHV_VCPU_STOPPED)
			ret = (int64_t)rv->req_seq; /* stopping: wait for it */
		pthread_mutex_unlock(&rv->lock);
		return ret;
	}
	switch (kind) {
	case REQ_START:
		if (rv->target == EHV_VCPU_CREATED)
			rv->target = EHV_VCPU_RUNNING;
		break;
	case REQ_PAUSE:
		rv->target = EHV_VCPU_PAUSED;
		break;
	case REQ_RESUME:
		if (rv->target == EHV_VCPU_PAUSED)
			rv->target = EHV_VCPU_RUNNING;
		break;
	case REQ_STOP:
		rv->target = EHV_VCPU_STOPPED;
		break;
	}
	ret = (int64_t)++rv->req_seq;
	__atomic_store_n(&rv->req_flag, 1, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&rv->cond);
	pthread_mutex_unlock(&rv->lock);
	ehv_vcpu_kick(rv->vcpu);
	return ret;
}

static int wait_ack(struct rvcpu *rv, int64_t seq)
{
	if (seq <= 0)
		return (int)seq;
	pthread_mutex_lock(&rv->lock);
	while (rv->ack_seq < (uint64_t)seq && rv->state != EHV_VCPU_STOPPED)
		pthread_cond_wait(&rv->cond, &rv->lock);
	pthread_mutex_unlock(&rv->lock);
	return 0;
}

/* A blocking request from one of the runner's own vCPU threads could wait
 * for itself, or for a vCPU that waits for it: refused. */
static bool is_own_thread(struct ehv_runner *r, int idx)
{
	(void)idx;
	struct rvcpu *self = tls_self;
	return self && self->r == r;
}

static int request(struct ehv_runner *r, int idx, enum req_kind kind)
{
	if (!r || (idx != EHV_ALL_VCPUS && (idx < 0 || (unsigned)idx >= r->n)))
		return -EINVAL;
	if (is_own_thread(r, idx))
		return -EDEADLK;
	if (idx != EHV_ALL_VCPUS)
		return wait_ack(&r->v[idx], post(&r->v[idx], kind));
	int64_t seqs[EHV_RUNNER_MAX_VCPUS];
	int err = 0;
	for (unsigned i = 0; i < r->n; i++)
		seqs[i] = post(&r->v[i], kind);
	for (unsigned i = 0; i < r->n; i++) {
		int e = wait_ack(&r->v[i], seqs[i]);
		if (e < 0 && !err)
			err = e;
	}
	if (kind == REQ_STOP)
		return 0;
	return err;
}

int ehv_runner_start(struct ehv_runner *runner, int idx)
{
	return request(runner, idx, REQ_START);
}

int ehv_runner_pause(struct ehv_runner *runner, int idx)
{
	return request(runner, idx, REQ_PAUSE);
}

int ehv_runner_resume(struct ehv_runner *runner, int idx)
{
	return request(runner, idx, REQ_RESUME);
}

int ehv_runner_stop(struct ehv_runner *runner, int idx)
{
	return request(runner, idx, REQ_STOP);
}

int ehv_runner_call(struct ehv_runner *runner, int idx, ehv_vcpu_fn fn, void *arg)
{
	if (!runner || !fn || idx < 0 || (unsigned)idx >= runner->n)
		return -EINVAL;
	if (is_own_thread(runner, idx))
		return -EDEADLK;
	struct rvcpu *rv = &runner->v[idx];
	pthread_mutex_lock(&rv->lock);
	while (rv->call_busy && rv->state != EHV_VCPU_STOPPED)
		pthread_cond_wait(&rv->cond, &rv->lock);
	if (rv->state == EHV_VCPU_STOPPED || rv->target == EHV_VCPU_STOPPED) {
		pthread_mutex_unlock(&rv->lock);
		return -ESRCH;
	}
	rv->call_busy = true;
	rv->call_fn = fn;
	rv->call_arg = arg;
	uint64_t seq = ++rv->call_seq;
	__atomic_store_n(&rv->req_flag, 1, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&rv->cond);
	pthread_mutex_unlock(&rv->lock);
	ehv_vcpu_kick(rv->vcpu);
	pthread_mutex_lock(&rv->lock);
	while (rv->call_done < seq)
		pthread_cond_wait(&rv->cond, &rv->lock);
	int ret = rv->call_ret;
	pthread_mutex_unlock(&rv->lock);
	return ret;
}

int ehv_runner_kick(struct ehv_runner *runner, int idx)
{
	if (!runner || idx < 0 || (unsigned)idx >= runner->n)
		return -EINVAL;
	struct rvcpu *rv = &runner->v[idx];
	if (__atomic_load_n(&rv->state, __ATOMIC_ACQUIRE) == EHV_VCPU_STOPPED)
		return -ESRCH;
	return ehv_vcpu_kick(rv->vcpu);
}

int ehv_runner_wait(struct ehv_runner *runner, int timeout_ms)
{
	if (!runner)
		return -EINVAL;
	if (is_own_thread(runner, EHV_ALL_VCPUS))
		return -EDEADLK;
	struct timespec deadline;
	if (timeout_ms >= 0)
		base_deadline_after_ms(&deadline, timeout_ms);
	int r = 0;
	pthread_mutex_lock(&runner->wait_lock);
	while (runner->nstopped < runner->n) {
		if (base_cond_wait_until(&runner->wait_cond, &runner->wait_lock,
					 timeout_ms < 0 ? NULL : &deadline) == ETIMEDOUT) {
			r = runner->nstopped < runner->n ? -ETIMEDOUT : 0;
			break;
		}
	}
	pthread_mutex_unlock(&runner->wait_lock);
	return r;
}

int ehv_runner_state(struct ehv_runner *runner, int idx)
{
	if (!runner || idx < 0 || (unsigned)idx >= runner->n)
		return -EINVAL;
	return __atomic_load_n(&runner->v[idx].state, __ATOMIC_ACQUIRE);
}

int ehv_runner_error(struct ehv_runner *runner, int idx)
{
	if (!runner || idx < 0 || (unsigned)idx >= runner->n)
		return -EINVAL;
	struct rvcpu *rv = &runner->v[idx];
	pthread_mutex_lock(&rv->lock);
	int e = rv->state == EHV_VCPU_STOPPED ? rv->error : 0;
	pthread_mutex_unlock(&rv->lock);
	return e;
}

struct ehv_vcpu *ehv_runner_vcpu(struct ehv_runner *runner, int idx)
{
	if (!runner || idx < 0 || (unsigned)idx >= runner->n)
		return NULL;
	return runner->v[idx].vcpu;
}

/* ------------------------------------------------------- create / destroy */

static void teardown(struct ehv_runner *r, unsigned attached)
{
	for (unsigned i = 0; i < r->n; i++) {
		struct rvcpu *rv = &r->v[i];
		if (rv->thread_ok) {
			post(rv, REQ_STOP);
			pthread_join(rv->thread, NULL);
		}
	}
	for (unsigned i = 0; i < r->n; i++) {
		pthread_mutex_destroy(&r->v[i].lock);
		pthread_cond_destroy(&r->v[i].cond);
	}
	for (unsigned i = 0; i < attached; i++)
		ehvi_vcpu_detach_runner(r->v[i].vcpu, r);
	pthread_mutex_destroy(&r->wait_lock);
	pthread_cond_destroy(&r->wait_cond);
	free(r->v);
	free(r);
}

int ehv_runner_create(const struct ehv_runner_config *cfg, struct ehv_runner **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg || !cfg->vcpus || cfg->nr_vcpus == 0 || cfg->nr_vcpus > EHV_RUNNER_MAX_VCPUS)
		return -EINVAL;
	for (unsigned i = 0; i < cfg->nr_vcpus; i++) {
		if (!cfg->vcpus[i])
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (cfg->vcpus[j] == cfg->vcpus[i])
				return -EINVAL;
	}
	struct ehv_runner *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->v = calloc(cfg->nr_vcpus, sizeof(*r->v));
	if (!r->v) {
		free(r);
		return -ENOMEM;
	}
	r->n = cfg->nr_vcpus;
	r->opaque = cfg->opaque;
	r->on_stop = cfg->on_stop;
	r->on_thread_start = cfg->on_thread_start;
	for (unsigned i = 0; i < EHV_EXIT_REASON_MAX; i++)
		r->handlers[i] = cfg->handlers[i] ? cfg->handlers[i] : cfg->default_handler;
	pthread_mutex_init(&r->wait_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* ehv_runner_wait's deadline */
	pthread_cond_init(&r->wait_cond, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < r->n; i++) {
		struct rvcpu *rv = &r->v[i];
		rv->r = r;
		rv->vcpu = cfg->vcpus[i];
		rv->idx = (int)i;
		rv->state = rv->target = EHV_VCPU_CREATED;
		pthread_mutex_init(&rv->lock, NULL);
		pthread_cond_init(&rv->cond, NULL);
	}
	unsigned attached = 0;
	int err = 0;
	for (; attached < r->n; attached++) {
		err = ehvi_vcpu_attach_runner(r->v[attached].vcpu, r);
		if (err < 0)
			break;
	}
	if (err < 0) {
		teardown(r, attached);
		return err;
	}
	for (unsigned i = 0; i < r->n; i++) {
		int e = pthread_create(&r->v[i].thread, NULL, vcpu_thread, &r->v[i]);
		if (e) {
			teardown(r, attached);
			return -e;
		}
		r->v[i].thread_ok = true;
	}
	*out = r;
	return 0;
}

void ehv_runner_destroy(struct ehv_runner *runner)
{
	if (!runner || is_own_thread(runner, EHV_ALL_VCPUS))
		return;
	teardown(runner, runner->n);
}
