/* tests/unit/hv_runner_notify.c - the runner tells its owner when a vCPU stops (on_stop); its timed wait. */
#include "../lib/test.h"

#include <ember/hv.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct notify {
	int efd;
	atomic_int calls;
	atomic_int mask; /* bit idx: on_stop(idx) seen */
	atomic_int bad;	 /* on_stop ran while the vCPU was not STOPPED */
	struct ehv_runner *r;
};

static void on_stop(void *opaque, int idx)
{
	struct notify *n = opaque;
	if (n->r && ehv_runner_state(n->r, idx) != EHV_VCPU_STOPPED)
		atomic_store(&n->bad, 1);
	atomic_fetch_add(&n->calls, 1);
	atomic_fetch_or(&n->mask, 1 << idx);
	uint64_t one = 1;
	ssize_t w = write(n->efd, &one, sizeof(one));
	(void)w;
}

static int h_stop(struct ehv_vcpu *v, const struct ehv_exit *x, void *opaque)
{
	(void)v;
	(void)x;
	(void)opaque;
	return EHV_ACTION_STOP;
}

TEST(hv_runner_on_stop_wakes_an_eventfd_and_timed_wait_times_out)
{
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
	struct ehv_vcpu *v[2];
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	REQUIRE_OK(ehv_vm_create(hyp, &vm));
	REQUIRE_OK(ehv_vcpu_create(vm, 0, &v[0]));
	REQUIRE_OK(ehv_vcpu_create(vm, 1, &v[1]));
	/* vCPU 0 halts after 50 ms "in the guest"; vCPU 1 spins until stopped */
	struct ehv_mock_step halt = {.kind = EHV_MOCK_EXIT, .delay_us = 50000};
	halt.exit.reason = EHV_EXIT_HALT;
	struct ehv_mock_step spin = {.kind = EHV_MOCK_SPIN};
	REQUIRE_OK(ehv_mock_vcpu_script(v[0], &halt, 1));
	REQUIRE_OK(ehv_mock_vcpu_script(v[1], &spin, 1));
	struct notify n = {.efd = eventfd(0, EFD_CLOEXEC)};
	REQUIRE(n.efd >= 0);
	struct ehv_runner_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = v;
	cfg.nr_vcpus = 2;
	cfg.handlers[EHV_EXIT_HALT] = h_stop;
	cfg.opaque = &n;
	cfg.on_stop = on_stop;
	struct ehv_runner *r;
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	n.r = r;
	REQUIRE_OK(ehv_runner_start(r, EHV_ALL_VCPUS));
	/* the owner sleeps in poll on the eventfd: no polling of states */
	struct pollfd p = {.fd = n.efd, .events = POLLIN};
	uint64_t t0 = mono_ms();
	REQUIRE_EQ(poll(&p, 1, 5000), 1);
	CHECK(mono_ms() - t0 < 4000);
	CHECK_EQ(atomic_load(&n.mask), 1); /* vCPU 0, and only it */
	CHECK_EQ(ehv_runner_state(r, 0), EHV_VCPU_STOPPED);
	CHECK_EQ(ehv_runner_state(r, 1), EHV_VCPU_RUNNING);
	uint64_t cnt;
	REQUIRE_EQ(read(n.efd, &cnt, sizeof(cnt)), (ssize_t)sizeof(cnt));
	CHECK_EQ(cnt, 1);
	/* a timed wait with a vCPU still running: times out after its time
	 * on CLOCK_MONOTONIC, not earlier */
	t0 = mono_ms();
	CHECK_ERR(ehv_runner_wait(r, 150), -ETIMEDOUT);
	uint64_t took = mono_ms() - t0;
	CHECK(took >= 150);
	CHECK(took < 3000);
	/* a stop request also reports through on_stop */
	REQUIRE_OK(ehv_runner_stop(r, 1));
	REQUIRE_EQ(poll(&p, 1, 5000), 1);
	CHECK_OK(ehv_runner_wait(r, 0));
	CHECK_EQ(atomic_load(&n.mask), 3);
	ehv_runner_destroy(r);
	CHECK_EQ(atomic_load(&n.calls), 2); /* once per vCPU, destroy adds none */
	CHECK_EQ(atomic_load(&n.bad), 0);
	ehv_vcpu_destroy(v[0]);
	ehv_vcpu_destroy(v[1]);
	ehv_vm_destroy(vm);
	ehv_hypervisor_close(hyp);
	close(n.efd);
}
