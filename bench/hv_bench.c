/* bench/hv_bench.c - exit round trips through the vCPU layer (callbacks, runner) against the binding loop; kick latency. */
/*
 * Round trips: a real-mode guest loops on one exiting instruction (OUT to a
 * port, or a byte store to unbacked memory). The same number of exits is
 * timed through the raw binding loop (ekvm_vcpu_run, reading the data from
 * the run area) and through the neutral layer (ehv_vcpu_run + a
 * ehv_vcpu_handle_io/mmio callback), interleaved round by round, medians
 * reported with the ratio hv/binding (goal <= 1.05). The runner figure is the
 * same loop on a runner thread with a handler table (handoff included).
 *
 * Kick latency: a vCPU spins in the guest; another thread kicks it and
 * measures until run returns Canceled on the vCPU thread. Median and p99.
 *
 * Output: BENCH <name> <value> <unit>
 * Usage: hv-bench [exits-per-round] [rounds] [kicks]
 */
#include "bench.h"
#include <ember/hv.h>
#include <ember/kvm.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE   0x10000
#define CODE_GPA   0x1000
#define MMIO_SEG   0x2000 /* DS base 0x20000: outside the memory slot */
#define BENCH_PORT 0x10

static const uint8_t pio_loop[] = {
    0xe6, BENCH_PORT, /* 1: out 0x10, al */
    0xeb, 0xfc,	      /* jmp 1b */
};
static const uint8_t mmio_loop[] = {
    0x88, 0x07, /* 1: mov [bx], al  (DS:BX = 0x20000) */
    0xeb, 0xfc, /* jmp 1b */
};
static const uint8_t spin_loop[] = {0xeb, 0xfe}; /* 1: jmp 1b */

static void die(const char *what, int err)
{
	fprintf(stderr, "hv-bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* A VM through the layer, with one vCPU in real mode at CODE_GPA, DS at
 * MMIO_SEG. The binding loop drives the same kind of VM through
 * ehv_*_backend_handle: identical guest and kernel state, only the user-space
 * path differs. */
struct vm {
	struct ehv_vm *vm;
	struct ehv_vcpu *vcpu;
	struct ekvm_vcpu *kvcpu;
	uint8_t *mem;
};

static void vm_setup(struct ehv_hypervisor *hyp, struct vm *v, const uint8_t *code, size_t len,
		     uint32_t id)
{
	int e;
	if ((e = ehv_vm_create(hyp, &v->vm)) < 0)
		die("ehv_vm_create", e);
	v->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->mem == MAP_FAILED)
		die("mmap", errno);
	memcpy(v->mem + CODE_GPA, code, len);
	if ((e = ehv_vm_set_memory(v->vm, 0, 0, MEM_SIZE, v->mem, 0)) < 0)
		die("ehv_vm_set_memory", e);
	if ((e = ehv_vcpu_create(v->vm, id, &v->vcpu)) < 0)
		die("ehv_vcpu_create", e);
	if ((e = ehv_vcpu_set_real_mode(v->vcpu, CODE_GPA, 0x8000)) < 0)
		die("ehv_vcpu_set_real_mode", e);
	struct ehv_x86_sregs s;
	if ((e = ehv_vcpu_get_sregs(v->vcpu, &s)) < 0)
		die("get sregs", e);
	s.ds.base = (uint64_t)MMIO_SEG << 4;
	s.ds.selector = MMIO_SEG;
	if ((e = ehv_vcpu_set_sregs(v->vcpu, &s)) < 0)
		die("set sregs", e);
	v->kvcpu = ehv_vcpu_backend_handle(v->vcpu);
}

static void vm_teardown(struct vm *v)
{
	ehv_vcpu_destroy(v->vcpu);
	ehv_vm_destroy(v->vm);
	munmap(v->mem, MEM_SIZE);
}

static volatile uint64_t sink;

/* the binding loop: KVM_RUN, decode, read the data */
static double bind_loop(struct vm *v, int n, enum ekvm_exit_kind want)
{
	struct ekvm_exit exit;
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		int e = ekvm_vcpu_run(v->kvcpu, &exit);
		if (e < 0)
			die("ekvm_vcpu_run", e);
		if (exit.kind != want)
			die("binding: unexpected exit", EPROTO);
		sink += want == EKVM_EXIT_IO_OUT ? exit.u.io.data[0] : exit.u.mmio.data[0];
	}
	return (now_us() - t0) / n;
}

static int cb(void *opaque, struct ehv_io_access *a)
{
	(void)opaque;
	sink += a->value;
	return 0;
}

/* the layer: run, then the callback through handle_io / handle_mmio */
static double hv_loop(struct vm *v, int n, enum ehv_exit_reason want)
{
	struct ehv_exit exit;
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		int r = ehv_vcpu_run(v->vcpu, &exit);
		if (r != (int)want)
			die("hv: unexpected exit", r < 0 ? r : EPROTO);
		r = want == EHV_EXIT_IO_WRITE ? ehv_vcpu_handle_io(v->vcpu, cb, NULL)
					      : ehv_vcpu_handle_mmio(v->vcpu, cb, NULL);
		if (r < 0)
			die("hv: handle", r);
	}
	return (now_us() - t0) / n;
}

/* ----------------------------------------------------------------- runner */

struct runner_ctx {
	atomic_long left;
	sem_t done;
};

static int h_io(struct ehv_vcpu *v, const struct ehv_exit *e, void *opaque)
{
	struct runner_ctx *c = opaque;
	(void)e;
	int r = ehv_vcpu_handle_io(v, cb, NULL);
	if (r < 0)
		return r;
	if (atomic_fetch_sub(&c->left, 1) > 1)
		return EHV_ACTION_CONTINUE;
	sem_post(&c->done); /* once per round */
	return EHV_ACTION_PAUSE;
}

static double runner_loop(struct ehv_runner *r, struct runner_ctx *c, int n)
{
	atomic_store(&c->left, n);
	double t0 = now_us();
	int e = ehv_runner_resume(r, 0);
	if (e < 0)
		die("ehv_runner_resume", e);
	while (sem_wait(&c->done) < 0)
		;
	double us = (now_us() - t0) / n;
	/* the handler asked for the pause: wait until it is taken */
	while (ehv_runner_state(r, 0) != EHV_VCPU_PAUSED) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	return us;
}

/* ------------------------------------------------------------ round trips */

static void exit_bench(struct ehv_hypervisor *hyp, const char *name, const uint8_t *code,
		       size_t len, enum ekvm_exit_kind kwant, enum ehv_exit_reason want, int n,
		       int rounds)
{
	double b_us[64], h_us[64];
	struct vm b, h;
	vm_setup(hyp, &b, code, len, 0);
	vm_setup(hyp, &h, code, len, 0);
	bind_loop(&b, n / 10 + 1, kwant); /* warm up (TCG translation, page faults) */
	hv_loop(&h, n / 10 + 1, want);
	for (int i = 0; i < rounds; i++) {
		if (i % 2) {
			h_us[i] = hv_loop(&h, n, want);
			b_us[i] = bind_loop(&b, n, kwant);
		} else {
			b_us[i] = bind_loop(&b, n, kwant);
			h_us[i] = hv_loop(&h, n, want);
		}
	}
	double ratio = paired_ratio(h_us, b_us, rounds);
	double mb = median(b_us, rounds), mh = median(h_us, rounds);
	printf("BENCH hv.%s.binding %.3f us/exit\n", name, mb);
	printf("BENCH hv.%s.layer %.3f us/exit\n", name, mh);
	printf("BENCH hv.%s.ratio %.4f layer/binding\n", name, ratio);
	fflush(stdout);
	vm_teardown(&b);
	vm_teardown(&h);
}

static void runner_bench(struct ehv_hypervisor *hyp, int n, int rounds)
{
	double b_us[64], r_us[64];
	struct vm b, h;
	vm_setup(hyp, &b, pio_loop, sizeof(pio_loop), 0);
	vm_setup(hyp, &h, pio_loop, sizeof(pio_loop), 0);
	struct runner_ctx c;
	sem_init(&c.done, 0, 0);
	struct ehv_runner_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = &h.vcpu;
	cfg.nr_vcpus = 1;
	cfg.handlers[EHV_EXIT_IO_WRITE] = h_io;
	cfg.opaque = &c;
	struct ehv_runner *r;
	int e = ehv_runner_create(&cfg, &r);
	if (e < 0)
		die("ehv_runner_create", e);
	if ((e = ehv_runner_pause(r, 0)) < 0)
		die("ehv_runner_pause", e);
	bind_loop(&b, n / 10 + 1, EKVM_EXIT_IO_OUT);
	runner_loop(r, &c, n / 10 + 1);
	for (int i = 0; i < rounds; i++) {
		if (i % 2) {
			r_us[i] = runner_loop(r, &c, n);
			b_us[i] = bind_loop(&b, n, EKVM_EXIT_IO_OUT);
		} else {
			b_us[i] = bind_loop(&b, n, EKVM_EXIT_IO_OUT);
			r_us[i] = runner_loop(r, &c, n);
		}
	}
	ehv_runner_destroy(r);
	sem_destroy(&c.done);
	double ratio = paired_ratio(r_us, b_us, rounds);
	double mb = median(b_us, rounds), mr = median(r_us, rounds);
	printf("BENCH hv.pio_runner.binding %.3f us/exit\n", mb);
	printf("BENCH hv.pio_runner.layer %.3f us/exit\n", mr);
	printf("BENCH hv.pio_runner.ratio %.4f layer/binding\n", ratio);
	fflush(stdout);
	vm_teardown(&b);
	vm_teardown(&h);
}

/* ------------------------------------------------------------ kick latency */

struct kick_ctx {
	struct ehv_vcpu *vcpu;
	int n;
	sem_t armed, done; /* blocking waits: spinning would steal the CPU the vCPU needs */
	double *lat;
	_Atomic double t_kick;
};

static void *kicker(void *arg)
{
	struct kick_ctx *k = arg;
	for (int i = 1; i <= k->n; i++) {
		while (sem_wait(&k->armed) < 0)
			;
		/* let the vCPU get into the guest */
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
		atomic_store(&k->t_kick, now_us());
		ehv_vcpu_kick(k->vcpu);
		while (sem_wait(&k->done) < 0)
			;
	}
	return NULL;
}

static void kick_bench(struct ehv_hypervisor *hyp, int n)
{
	struct vm v;
	vm_setup(hyp, &v, spin_loop, sizeof(spin_loop), 0);
	struct kick_ctx k;
	memset(&k, 0, sizeof(k));
	k.vcpu = v.vcpu;
	k.n = n;
	sem_init(&k.armed, 0, 0);
	sem_init(&k.done, 0, 0);
	k.lat = calloc((size_t)n, sizeof(double));
	if (!k.lat)
		die("calloc", ENOMEM);
	pthread_t t;
	if (pthread_create(&t, NULL, kicker, &k))
		die("pthread_create", EAGAIN);
	for (int i = 1; i <= n; i++) {
		sem_post(&k.armed);
		int r = ehv_vcpu_run(v.vcpu, NULL);
		double now = now_us();
		if (r != EHV_EXIT_CANCELED)
			die("kick: unexpected exit", r < 0 ? r : EPROTO);
		k.lat[i - 1] = now - atomic_load(&k.t_kick);
		sem_post(&k.done);
	}
	pthread_join(t, NULL);
	qsort(k.lat, (size_t)n, sizeof(double), cmp_double);
	printf("BENCH hv.kick.median %.1f us\n", k.lat[n / 2]);
	printf("BENCH hv.kick.p99 %.1f us\n", k.lat[(n * 99) / 100]);
	fflush(stdout);
	free(k.lat);
	sem_destroy(&k.armed);
	sem_destroy(&k.done);
	vm_teardown(&v);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 5000;
	int rounds = argc > 2 ? atoi(argv[2]) : 7;
	int kicks = argc > 3 ? atoi(argv[3]) : 200;
	if (n <= 0 || rounds <= 0 || rounds > 64 || kicks <= 0) {
		fprintf(stderr, "usage: hv-bench [exits 1..] [rounds 1..64] [kicks 1..]\n");
		return 2;
	}
	struct ehv_hypervisor *hyp;
	int e = ehv_hypervisor_open(NULL, &hyp);
	if (e < 0)
		die("open /dev/kvm", e);
	printf("BENCH hv.config %d exits x %d rounds, %d kicks\n", n, rounds, kicks);
	exit_bench(hyp, "pio", pio_loop, sizeof(pio_loop), EKVM_EXIT_IO_OUT, EHV_EXIT_IO_WRITE, n,
		   rounds);
	exit_bench(hyp, "mmio", mmio_loop, sizeof(mmio_loop), EKVM_EXIT_MMIO_WRITE,
		   EHV_EXIT_MMIO_WRITE, n, rounds);
	runner_bench(hyp, n, rounds);
	kick_bench(hyp, kicks);
	ehv_hypervisor_close(hyp);
	return 0;
}
