/* tests/unit/hv_bodies.h - vCPU-layer test bodies shared by the mock (unit) and KVM test suites. */
#ifndef EMBER_TESTS_HV_BODIES_H
#define EMBER_TESTS_HV_BODIES_H

/*
 * Each body takes a struct hvt_backend: how to make a VM and vCPUs that run
 * one of a few guests. tests/unit/hv_mock_*.c provides it with scripts,
 * tests/kvm/hv_*.c with real-mode machine code; the bodies only use
 * <ember/hv.h>, so the same checks run on both.
 */
#include <ember/hv.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../lib/test.h"

enum hvt_guest {
	HVT_SPIN,     /* stays in the guest forever, no exits */
	HVT_OUT_LOOP, /* an endless loop of IoWrite to port 0x10 */
	HVT_COUNTED,  /* n IoWrite to port 0x10, m MmioWrite to HVT_MMIO_ADDR, then Halt */
	HVT_MMIO_READ /* MmioRead HVT_MMIO_ADDR (4 bytes), IoWrite of the value to 0x11, Halt */
};
#define HVT_PORT      0x10
#define HVT_MMIO_ADDR 0x10000

struct hvt_backend {
	const char *name;
	/* a hypervisor and a VM able to hold up to 4 vCPUs */
	void (*open)(void **env);
	void (*close)(void *env);
	/* vCPU id running guest g (n, m for HVT_COUNTED) */
	void (*vcpu)(void *env, uint32_t id, enum hvt_guest g, uint32_t n, uint32_t m,
		     struct ehv_vcpu **out);
};

static inline uint64_t hvt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void hvt_sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ kicks */

struct hvt_kicker {
	struct ehv_vcpu *vcpu;
	unsigned delay_us;
	int ret;
};

static void *hvt_kick_after(void *arg)
{
	struct hvt_kicker *k = arg;
	hvt_sleep_us(k->delay_us);
	k->ret = ehv_vcpu_kick(k->vcpu);
	return NULL;
}

/* A kick before run is not lost; a kick during run ends it. */
static inline void hvt_body_kick_before_run(const struct hvt_backend *B)
{
	void *env;
	struct ehv_vcpu *v;
	struct ehv_exit e;
	B->open(&env);
	B->vcpu(env, 0, HVT_SPIN, 0, 0, &v);
	CHECK_OK(ehv_vcpu_kick(v));
	CHECK_EQ(ehv_vcpu_run(v, &e), EHV_EXIT_CANCELED);
	CHECK_EQ(e.reason, EHV_EXIT_CANCELED);
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_CANCELED), 1);
	/* two kicks before a run merge into one Canceled */
	CHECK_OK(ehv_vcpu_kick(v));
	CHECK_OK(ehv_vcpu_kick(v));
	CHECK_EQ(ehv_vcpu_run(v, NULL), EHV_EXIT_CANCELED);
	/* immediate_exit set by the caller */
	CHECK_OK(ehv_vcpu_set_immediate_exit(v, true));
	CHECK_EQ(ehv_vcpu_run(v, NULL), EHV_EXIT_CANCELED);
	/* a kick from another thread while the vCPU is in the guest */
	struct hvt_kicker k = {v, 20000, -1};
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, hvt_kick_after, &k) == 0);
	uint64_t t0 = hvt_now_ns();
	CHECK_EQ(ehv_vcpu_run(v, NULL), EHV_EXIT_CANCELED);
	uint64_t dt = hvt_now_ns() - t0;
	pthread_join(t, NULL);
	CHECK_EQ(k.ret, 0);
	CHECK(dt >= 15000000ull); /* it really waited in the guest for the kick */
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_CANCELED), 4);
	/* a cleared immediate_exit with no kick pending: the guest runs again */
	CHECK_OK(ehv_vcpu_set_immediate_exit(v, true));
	CHECK_OK(ehv_vcpu_set_immediate_exit(v, false));
	k = (struct hvt_kicker){v, 5000, -1};
	REQUIRE(pthread_create(&t, NULL, hvt_kick_after, &k) == 0);
	t0 = hvt_now_ns();
	CHECK_EQ(ehv_vcpu_run(v, NULL), EHV_EXIT_CANCELED);
	CHECK(hvt_now_ns() - t0 >= 3000000ull);
	pthread_join(t, NULL);
	CHECK_ERR(ehv_vcpu_kick(NULL), -EINVAL);
	ehv_vcpu_destroy(v);
	B->close(env);
}

struct hvt_kick_loop {
	struct ehv_vcpu *vcpu;
	unsigned n;
	/* blocking hand-offs: a spinning waiter would steal the CPU the vCPU
	 * thread needs (the sandbox has one) */
	sem_t armed;	  /* the vCPU thread is about to run */
	sem_t done;	  /* its run returned */
	uint64_t *lat_ns; /* kick-to-return latency per iteration */
	_Atomic uint64_t kick_ns;
};

static void hvt_sem_wait(sem_t *s)
{
	while (sem_wait(s) < 0)
		;
}

static void *hvt_kick_loop_thread(void *arg)
{
	struct hvt_kick_loop *s = arg;
	for (unsigned i = 1; i <= s->n; i++) {
		hvt_sem_wait(&s->armed);
		/* land at different points: before entry, right at it, in the guest */
		switch (i % 4) {
		case 0:
			break;
		case 1:
			for (volatile int j = 0; j < 200; j++)
				;
			break;
		case 2:
			hvt_sleep_us(50);
			break;
		default:
			hvt_sleep_us(300);
			break;
		}
		atomic_store(&s->kick_ns, hvt_now_ns());
		ehv_vcpu_kick(s->vcpu);
		hvt_sem_wait(&s->done);
	}
	return NULL;
}

static int hvt_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* n kicks from another thread while the vCPU spins in the guest: every one
 * ends exactly one run (never lost, never stuck, never spurious). Reports
 * median and 99th percentile kick latency. */
static inline void hvt_body_kick_loop(const struct hvt_backend *B, unsigned n)
{
	void *env;
	struct hvt_kick_loop s;
	memset(&s, 0, sizeof(s));
	B->open(&env);
	B->vcpu(env, 0, HVT_SPIN, 0, 0, &s.vcpu);
	s.n = n;
	s.lat_ns = calloc(n, sizeof(uint64_t));
	REQUIRE(s.lat_ns);
	sem_init(&s.armed, 0, 0);
	sem_init(&s.done, 0, 0);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, hvt_kick_loop_thread, &s) == 0);
	unsigned bad = 0;
	for (unsigned i = 1; i <= n; i++) {
		sem_post(&s.armed);
		int r = ehv_vcpu_run(s.vcpu, NULL);
		uint64_t now = hvt_now_ns();
		if (r != EHV_EXIT_CANCELED && bad++ < 5)
			TEST_LOG("iteration %u: run returned %d", i, r);
		uint64_t k = atomic_load(&s.kick_ns);
		s.lat_ns[i - 1] = now > k ? now - k : 0;
		sem_post(&s.done);
	}
	pthread_join(t, NULL);
	sem_destroy(&s.armed);
	sem_destroy(&s.done);
	CHECK_EQ(bad, 0);
	CHECK_EQ(ehv_vcpu_exit_count(s.vcpu, EHV_EXIT_CANCELED), n);
	CHECK_EQ(ehv_vcpu_exit_counts(s.vcpu, NULL), n);
	/* nothing left over: no spurious Canceled from a late signal */
	struct hvt_kicker k = {s.vcpu, 20000, -1};
	REQUIRE(pthread_create(&t, NULL, hvt_kick_after, &k) == 0);
	uint64_t t0 = hvt_now_ns();
	CHECK_EQ(ehv_vcpu_run(s.vcpu, NULL), EHV_EXIT_CANCELED);
	CHECK(hvt_now_ns() - t0 >= 10000000ull);
	pthread_join(t, NULL);
	qsort(s.lat_ns, n, sizeof(uint64_t), hvt_cmp_u64);
	TEST_LOG("%s: %u kicks, latency median %.1f us, p99 %.1f us", B->name, n,
		 s.lat_ns[n / 2] / 1e3, s.lat_ns[(n * 99) / 100] / 1e3);
	free(s.lat_ns);
	ehv_vcpu_destroy(s.vcpu);
	B->close(env);
}

/* --------------------------------------------------------------- counters */

static int hvt_sink(void *opaque, struct ehv_io_access *a)
{
	(void)opaque;
	if (!a->write)
		a->value = 0;
	return 0;
}

/* The counters match the exits the guest made. */
static inline void hvt_body_counters(const struct hvt_backend *B)
{
	void *env;
	struct ehv_vcpu *v;
	struct ehv_exit e;
	const uint32_t n = 37, m = 23;
	B->open(&env);
	B->vcpu(env, 0, HVT_COUNTED, n, m, &v);
	uint64_t before[EHV_EXIT_REASON_MAX];
	CHECK_EQ(ehv_vcpu_exit_counts(v, before), 0);
	unsigned io = 0, mmio = 0, other = 0;
	for (;;) {
		int r = ehv_vcpu_run(v, &e);
		REQUIRE(r >= 0);
		if (r == EHV_EXIT_IO_WRITE) {
			CHECK_EQ(e.u.io_write.port, HVT_PORT);
			CHECK_EQ(e.u.io_write.width, 1);
			CHECK_EQ(e.u.io_write.data & 0xff, io & 0xff);
			CHECK_OK(ehv_vcpu_handle_io(v, hvt_sink, NULL));
			io++;
		} else if (r == EHV_EXIT_MMIO_WRITE) {
			CHECK_EQ(e.u.mmio_write.addr, HVT_MMIO_ADDR);
			CHECK_EQ(e.u.mmio_write.width, 1);
			CHECK_EQ(e.u.mmio_write.data & 0xff, mmio & 0xff);
			CHECK_OK(ehv_vcpu_handle_mmio(v, hvt_sink, NULL));
			mmio++;
		} else if (r == EHV_EXIT_HALT) {
			break;
		} else {
			if (other++ < 5)
				TEST_LOG("unexpected exit %s", ehv_exit_reason_name(r));
			if (other > 100)
				break;
		}
	}
	CHECK_EQ(io, n);
	CHECK_EQ(mmio, m);
	uint64_t c[EHV_EXIT_REASON_MAX];
	uint64_t total = ehv_vcpu_exit_counts(v, c);
	CHECK_EQ(c[EHV_EXIT_IO_WRITE], n);
	CHECK_EQ(c[EHV_EXIT_MMIO_WRITE], m);
	CHECK_EQ(c[EHV_EXIT_HALT], 1);
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_IO_WRITE), n);
	CHECK_EQ(total, n + m + 1 + c[EHV_EXIT_CANCELED]);
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_REASON_MAX), 0);
	CHECK_EQ(ehv_vcpu_exit_count(NULL, EHV_EXIT_HALT), 0);
	ehv_vcpu_destroy(v);
	B->close(env);
}

/* ----------------------------------------------------------------- runner */

static int hvt_h_io(struct ehv_vcpu *v, const struct ehv_exit *e, void *opaque)
{
	(void)e;
	(void)opaque;
	int r = ehv_vcpu_handle_io(v, hvt_sink, NULL);
	return r < 0 ? r : EHV_ACTION_CONTINUE;
}

static int hvt_h_mmio(struct ehv_vcpu *v, const struct ehv_exit *e, void *opaque)
{
	(void)e;
	(void)opaque;
	int r = ehv_vcpu_handle_mmio(v, hvt_sink, NULL);
	return r < 0 ? r : EHV_ACTION_CONTINUE;
}

static int hvt_h_stop(struct ehv_vcpu *v, const struct ehv_exit *e, void *opaque)
{
	(void)v;
	(void)e;
	(void)opaque;
	return EHV_ACTION_STOP;
}

static void hvt_io_config(struct ehv_runner_config *cfg, struct ehv_vcpu **vcpus, unsigned n)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vcpus = vcpus;
	cfg->nr_vcpus = n;
	cfg->handlers[EHV_EXIT_IO_WRITE] = hvt_h_io;
	cfg->handlers[EHV_EXIT_IO_READ] = hvt_h_io;
	cfg->handlers[EHV_EXIT_MMIO_WRITE] = hvt_h_mmio;
	cfg->handlers[EHV_EXIT_MMIO_READ] = hvt_h_mmio;
	cfg->handlers[EHV_EXIT_HALT] = hvt_h_stop;
}

static uint64_t hvt_io_count(struct ehv_vcpu *v)
{
	return ehv_vcpu_exit_count(v, EHV_EXIT_IO_WRITE);
}

static bool hvt_wait_progress(struct ehv_vcpu *v, uint64_t from, uint64_t by, unsigned ms)
{
	uint64_t end = hvt_now_ns() + (uint64_t)ms * 1000000ull;
	while (hvt_now_ns() < end) {
		if (hvt_io_count(v) >= from + by)
			return true;
		hvt_sleep_us(1000);
	}
	return false;
}

/* Pause, resume and stop four vCPUs looping on I/O exits. */
static inline void hvt_body_runner_4(const struct hvt_backend *B)
{
	void *env;
	struct ehv_vcpu *v[4];
	struct ehv_runner *r;
	struct ehv_runner_config cfg;
	B->open(&env);
	for (unsigned i = 0; i < 4; i++)
		B->vcpu(env, i, HVT_OUT_LOOP, 0, 0, &v[i]);
	hvt_io_config(&cfg, v, 4);
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	for (int i = 0; i < 4; i++)
		CHECK_EQ(ehv_runner_state(r, i), EHV_VCPU_CREATED);
	hvt_sleep_us(10000);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(hvt_io_count(v[i]), 0); /* created: not running */
	CHECK_OK(ehv_runner_start(r, EHV_ALL_VCPUS));
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(ehv_runner_state(r, i), EHV_VCPU_RUNNING);
		CHECK(hvt_wait_progress(v[i], 0, 5, 20000));
	}
	for (int round = 0; round < 3; round++) {
		CHECK_OK(ehv_runner_pause(r, EHV_ALL_VCPUS));
		uint64_t c[4];
		for (int i = 0; i < 4; i++) {
			CHECK_EQ(ehv_runner_state(r, i), EHV_VCPU_PAUSED);
			c[i] = hvt_io_count(v[i]);
		}
		hvt_sleep_us(20000);
		for (int i = 0; i < 4; i++)
			CHECK_EQ(hvt_io_count(v[i]), c[i]); /* paused: no progress */
		CHECK_OK(ehv_runner_pause(r, 1));	    /* pausing a paused vCPU */
		CHECK_OK(ehv_runner_resume(r, EHV_ALL_VCPUS));
		for (int i = 0; i < 4; i++) {
			CHECK_EQ(ehv_runner_state(r, i), EHV_VCPU_RUNNING);
			CHECK(hvt_wait_progress(v[i], c[i], 3, 20000));
		}
	}
	/* one vCPU alone */
	CHECK_OK(ehv_runner_pause(r, 2));
	CHECK_EQ(ehv_runner_state(r, 2), EHV_VCPU_PAUSED);
	CHECK_EQ(ehv_runner_state(r, 3), EHV_VCPU_RUNNING);
	uint64_t c3 = hvt_io_count(v[3]);
	CHECK(hvt_wait_progress(v[3], c3, 3, 20000));
	CHECK_OK(ehv_runner_stop(r, 3));
	CHECK_EQ(ehv_runner_state(r, 3), EHV_VCPU_STOPPED);
	CHECK_ERR(ehv_runner_resume(r, 3), -ESRCH);
	CHECK_ERR(ehv_runner_kick(r, 3), -ESRCH);
	CHECK_ERR(ehv_runner_pause(r, EHV_ALL_VCPUS), -ESRCH); /* the others are paused anyway */
	CHECK_EQ(ehv_runner_state(r, 0), EHV_VCPU_PAUSED);
	CHECK_ERR(ehv_runner_wait(r, 10), -ETIMEDOUT);
	CHECK_OK(ehv_runner_stop(r, EHV_ALL_VCPUS));
	CHECK_OK(ehv_runner_wait(r, 5000));
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(ehv_runner_state(r, i), EHV_VCPU_STOPPED);
		CHECK_EQ(ehv_runner_error(r, i), 0);
	}
	/* requests to a stopped runner: clear errors */
	CHECK_ERR(ehv_runner_start(r, EHV_ALL_VCPUS), -ESRCH);
	CHECK_ERR(ehv_runner_pause(r, 0), -ESRCH);
	CHECK_OK(ehv_runner_stop(r, 0));
	CHECK_ERR(ehv_runner_kick(r, 0), -ESRCH);
	CHECK_ERR(ehv_runner_state(r, 4), -EINVAL);
	CHECK_ERR(ehv_runner_pause(r, 7), -EINVAL);
	ehv_runner_destroy(r);
	for (int i = 0; i < 4; i++)
		ehv_vcpu_destroy(v[i]);
	B->close(env);
}

struct hvt_call_info {
	pid_t tid;
	char name[16];
	uint32_t id;
	int self_req;	   /* a blocking request from the vCPU's own thread */
	int self_req_kick; /* a kick of another vCPU from it */
	struct ehv_runner *r;
};

static int hvt_call_fn(struct ehv_vcpu *v, void *arg)
{
	struct hvt_call_info *ci = arg;
	ci->tid = (pid_t)syscall(SYS_gettid);
	prctl(PR_GET_NAME, ci->name, 0, 0, 0);
	ci->id = ehv_vcpu_id(v);
	if (ci->r) {
		ci->self_req = ehv_runner_pause(ci->r, 0);
		/* another vCPU of the same runner: refused too (could deadlock) */
		if (ehv_runner_call(ci->r, 1, hvt_call_fn, NULL) != -EDEADLK ||
		    ehv_runner_wait(ci->r, 0) != -EDEADLK)
			ci->self_req = -EINVAL;
		ci->self_req_kick = ehv_runner_kick(ci->r, 1);
	}
	return 42;
}

/* Run a function on the vCPU thread, in every state. */
static inline void hvt_body_runner_call(const struct hvt_backend *B)
{
	void *env;
	struct ehv_vcpu *v[2];
	struct ehv_runner *r;
	struct ehv_runner_config cfg;
	struct hvt_call_info ci;
	B->open(&env);
	B->vcpu(env, 0, HVT_OUT_LOOP, 0, 0, &v[0]);
	B->vcpu(env, 3, HVT_OUT_LOOP, 0, 0, &v[1]);
	hvt_io_config(&cfg, v, 2);
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	CHECK_EQ(ehv_runner_vcpu(r, 1), v[1]);
	CHECK(ehv_runner_vcpu(r, 2) == NULL);
	/* created */
	memset(&ci, 0, sizeof(ci));
	CHECK_EQ(ehv_runner_call(r, 1, hvt_call_fn, &ci), 42);
	CHECK_STR(ci.name, "ember-vcpu-3");
	CHECK_EQ(ci.id, 3);
	pid_t t_created = ci.tid;
	CHECK(t_created != (pid_t)syscall(SYS_gettid));
	CHECK_EQ(ehv_runner_state(r, 1), EHV_VCPU_CREATED);
	/* running */
	CHECK_OK(ehv_runner_start(r, EHV_ALL_VCPUS));
	CHECK(hvt_wait_progress(v[1], 0, 3, 20000));
	for (int i = 0; i < 20; i++) {
		memset(&ci, 0, sizeof(ci));
		CHECK_EQ(ehv_runner_call(r, 1, hvt_call_fn, &ci), 42);
		CHECK_EQ(ci.tid, t_created);
	}
	CHECK_EQ(ehv_runner_state(r, 1), EHV_VCPU_RUNNING);
	uint64_t c = hvt_io_count(v[1]);
	CHECK(hvt_wait_progress(v[1], c, 3, 20000)); /* still running after the calls */
	memset(&ci, 0, sizeof(ci));
	CHECK_EQ(ehv_runner_call(r, 0, hvt_call_fn, &ci), 42);
	CHECK_STR(ci.name, "ember-vcpu-0");
	/* paused; a blocking request from the vCPU's own thread is refused */
	CHECK_OK(ehv_runner_pause(r, 0));
	memset(&ci, 0, sizeof(ci));
	ci.r = r;
	CHECK_EQ(ehv_runner_call(r, 0, hvt_call_fn, &ci), 42);
	CHECK_EQ(ci.self_req, -EDEADLK);
	CHECK_EQ(ci.self_req_kick, 0);
	CHECK_EQ(ehv_runner_state(r, 0), EHV_VCPU_PAUSED);
	/* stopped */
	CHECK_OK(ehv_runner_stop(r, 0));
	CHECK_ERR(ehv_runner_call(r, 0, hvt_call_fn, &ci), -ESRCH);
	CHECK_ERR(ehv_runner_call(r, 5, hvt_call_fn, &ci), -EINVAL);
	CHECK_ERR(ehv_runner_call(r, 1, NULL, &ci), -EINVAL);
	/* destroy with a vCPU still running: it is stopped and joined */
	ehv_runner_destroy(r);
	ehv_vcpu_destroy(v[0]);
	ehv_vcpu_destroy(v[1]);
	B->close(env);
}

/* A guest that halts: the runner's Halt handler stops it; wait sees it. */
static inline void hvt_body_runner_halt(const struct hvt_backend *B)
{
	void *env;
	struct ehv_vcpu *v;
	struct ehv_runner *r;
	struct ehv_runner_config cfg;
	B->open(&env);
	B->vcpu(env, 0, HVT_COUNTED, 10, 5, &v);
	hvt_io_config(&cfg, &v, 1);
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	CHECK_OK(ehv_runner_start(r, 0));
	CHECK_OK(ehv_runner_wait(r, 20000));
	CHECK_EQ(ehv_runner_state(r, 0), EHV_VCPU_STOPPED);
	CHECK_EQ(ehv_runner_error(r, 0), 0);
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_IO_WRITE), 10);
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_MMIO_WRITE), 5);
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_HALT), 1);
	ehv_runner_destroy(r);
	/* a vCPU can be attached again once the runner is gone */
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	ehv_runner_destroy(r);
	ehv_vcpu_destroy(v);
	B->close(env);
}

/* Unhandled exits stop the vCPU with -ENOSYS; a failing handler stops it
 * with its error. */
static int hvt_h_fail(struct ehv_vcpu *v, const struct ehv_exit *e, void *opaque)
{
	(void)v;
	(void)e;
	(void)opaque;
	return -EPIPE;
}

static inline void hvt_body_runner_errors(const struct hvt_backend *B)
{
	void *env;
	struct ehv_vcpu *v[2];
	struct ehv_runner *r;
	struct ehv_runner_config cfg;
	B->open(&env);
	B->vcpu(env, 0, HVT_COUNTED, 3, 0, &v[0]);
	B->vcpu(env, 1, HVT_COUNTED, 3, 0, &v[1]);
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = v;
	cfg.nr_vcpus = 1;
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	/* the same vCPU in a second runner */
	struct ehv_runner *r2;
	CHECK_ERR(ehv_runner_create(&cfg, &r2), -EBUSY);
	CHECK_OK(ehv_runner_start(r, 0));
	CHECK_OK(ehv_runner_wait(r, 20000));
	CHECK_EQ(ehv_runner_error(r, 0), -ENOSYS);
	ehv_runner_destroy(r);
	cfg.vcpus = &v[1];
	cfg.handlers[EHV_EXIT_IO_WRITE] = hvt_h_fail;
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	CHECK_OK(ehv_runner_start(r, 0));
	CHECK_OK(ehv_runner_wait(r, 20000));
	CHECK_EQ(ehv_runner_error(r, 0), -EPIPE);
	CHECK_EQ(ehv_vcpu_exit_count(v[1], EHV_EXIT_IO_WRITE), 1);
	ehv_runner_destroy(r);
	/* bad configs */
	struct ehv_vcpu *dup[2] = {v[0], v[0]};
	cfg.vcpus = dup;
	cfg.nr_vcpus = 2;
	CHECK_ERR(ehv_runner_create(&cfg, &r), -EINVAL);
	cfg.nr_vcpus = 0;
	CHECK_ERR(ehv_runner_create(&cfg, &r), -EINVAL);
	CHECK_ERR(ehv_runner_create(NULL, &r), -EINVAL);
	CHECK_ERR(ehv_runner_start(NULL, 0), -EINVAL);
	ehv_runner_destroy(NULL);
	ehv_vcpu_destroy(v[0]);
	ehv_vcpu_destroy(v[1]);
	B->close(env);
}

#endif
