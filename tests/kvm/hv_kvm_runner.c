/* tests/kvm/hv_kvm_runner.c - the vCPU runner on real KVM: pause in the middle of an MMIO read, completion rule. */
#include "hv_kvm_env.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

struct mid {
	struct ehv_runner *r;
	atomic_int in_handler;
	atomic_int pauser_started;
	int pause_ret;
	uint64_t out11; /* what the guest wrote to port 0x11 */
};

static int answer(void *opaque, struct ehv_io_access *a)
{
	(void)opaque;
	a->value = 0xcafe1234;
	return 0;
}

static int h_mmio(struct ehv_vcpu *v, const struct ehv_exit *e, void *opaque)
{
	struct mid *m = opaque;
	(void)e;
	atomic_store(&m->in_handler, 1);
	while (!atomic_load(&m->pauser_started))
		sched_yield();
	hvt_sleep_us(50000); /* the pause request is posted meanwhile */
	int r = ehv_vcpu_handle_mmio(v, answer, NULL);
	return r < 0 ? r : EHV_ACTION_CONTINUE;
}

static int keep(void *opaque, struct ehv_io_access *a)
{
	struct mid *m = opaque;
	m->out11 = a->value;
	return 0;
}

static int h_io(struct ehv_vcpu *v, const struct ehv_exit *e, void *opaque)
{
	(void)e;
	int r = ehv_vcpu_handle_io(v, keep, opaque);
	return r < 0 ? r : EHV_ACTION_CONTINUE;
}

static void *pauser(void *arg)
{
	struct mid *m = arg;
	atomic_store(&m->pauser_started, 1);
	m->pause_ret = ehv_runner_pause(m->r, 0);
	return NULL;
}

struct regs_snap {
	struct ehv_x86_regs regs;
	bool pending;
};

static int snap(struct ehv_vcpu *v, void *arg)
{
	struct regs_snap *s = arg;
	s->pending = ehv_vcpu_has_pending_completion(v);
	return ehv_vcpu_get_regs(v, &s->regs);
}

/* Paused while its MMIO read is being answered, the vCPU finishes the
 * instruction (one KVM_RUN with immediate_exit) before the pause returns:
 * the saved registers show the loaded value and the next RIP, and the guest
 * did not run any further. */
KVM_TEST(hv_kvm_runner_pause_mid_mmio)
{
	void *penv;
	struct ehv_vcpu *v;
	hvk_backend.open(&penv);
	hvk_backend.vcpu(penv, 0, HVT_MMIO_READ, 0, 0, &v);
	struct mid m;
	memset(&m, 0, sizeof(m));
	struct ehv_runner_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = &v;
	cfg.nr_vcpus = 1;
	cfg.handlers[EHV_EXIT_MMIO_READ] = h_mmio;
	cfg.handlers[EHV_EXIT_IO_WRITE] = h_io;
	cfg.handlers[EHV_EXIT_HALT] = hvt_h_stop;
	cfg.opaque = &m;
	REQUIRE_OK(ehv_runner_create(&cfg, &m.r));
	CHECK_OK(ehv_runner_start(m.r, 0));
	while (!atomic_load(&m.in_handler))
		sched_yield();
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, pauser, &m) == 0);
	pthread_join(t, NULL);
	CHECK_EQ(m.pause_ret, 0);
	CHECK_EQ(ehv_runner_state(m.r, 0), EHV_VCPU_PAUSED);
	struct regs_snap s;
	CHECK_OK(ehv_runner_call(m.r, 0, snap, &s));
	CHECK(!s.pending);
	CHECK_EQ(s.regs.rax & 0xffffffff, 0xcafe1234);
	CHECK_EQ(s.regs.rip, HVK_GPA(hvk_mmio_read_done));
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_IO_WRITE), 0); /* no further guest progress */
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_MMIO_READ), 1);
	CHECK(ehv_vcpu_exit_count(v, EHV_EXIT_CANCELED) >= 1);
	/* resumed, it goes on from there */
	CHECK_OK(ehv_runner_resume(m.r, 0));
	CHECK_OK(ehv_runner_wait(m.r, 20000));
	CHECK_EQ(ehv_runner_error(m.r, 0), 0);
	CHECK_EQ(m.out11, 0xcafe1234);
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_MMIO_READ), 1);
	ehv_runner_destroy(m.r);
	ehv_vcpu_destroy(v);
	hvk_backend.close(penv);
}

/* Without the completion run, a register read right after an MMIO exit sees
 * the instruction unfinished: the rule the runner applies is needed. */
KVM_TEST(hv_kvm_completion_rule)
{
	void *penv;
	struct ehv_vcpu *v;
	hvk_backend.open(&penv);
	hvk_backend.vcpu(penv, 0, HVT_MMIO_READ, 0, 0, &v);
	struct ehv_exit e;
	REQUIRE_EQ(ehv_vcpu_run(v, &e), EHV_EXIT_MMIO_READ);
	CHECK_EQ(e.u.mmio_read.addr, HVT_MMIO_ADDR);
	CHECK_EQ(e.u.mmio_read.width, 4);
	CHECK_OK(ehv_vcpu_handle_mmio(v, answer, NULL));
	struct ehv_x86_regs regs;
	CHECK_OK(ehv_vcpu_get_regs(v, &regs));
	CHECK(regs.rip != HVK_GPA(hvk_mmio_read_done)); /* not finished yet */
	CHECK(ehv_vcpu_has_pending_completion(v));
	CHECK_EQ(ehv_vcpu_complete_pending(v, &e), EHV_EXIT_CANCELED);
	CHECK(!ehv_vcpu_has_pending_completion(v));
	CHECK_OK(ehv_vcpu_get_regs(v, &regs));
	CHECK_EQ(regs.rip, HVK_GPA(hvk_mmio_read_done));
	CHECK_EQ(regs.rax & 0xffffffff, 0xcafe1234);
	/* nothing pending now: no run */
	uint64_t canceled = ehv_vcpu_exit_count(v, EHV_EXIT_CANCELED);
	CHECK_EQ(ehv_vcpu_complete_pending(v, &e), EHV_EXIT_CANCELED);
	CHECK_EQ(ehv_vcpu_exit_count(v, EHV_EXIT_CANCELED), canceled);
	REQUIRE_EQ(ehv_vcpu_run(v, &e), EHV_EXIT_IO_WRITE);
	CHECK_EQ(e.u.io_write.data, 0xcafe1234);
	ehv_vcpu_destroy(v);
	hvk_backend.close(penv);
}

static int count_dir(const char *path)
{
	int n = 0;
	DIR *d = opendir(path);
	if (!d)
		return -1;
	for (struct dirent *de; (de = readdir(d));)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The process's own threads: /proc/self/task without KVM's tasks (Linux
 * 6.12's NX huge page recovery runs as a task of the process that made the
 * VM, "kvm-nx-lpage-recovery", for the VM's life). */
static int count_tasks(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(comm, sizeof(comm), f))
				comm[0] = 0;
			fclose(f);
		}
		if (strncmp(comm, "kvm-", 4))
			n++;
	}
	closedir(d);
	return n;
}

/* The number of threads, once it settles at want: a joined thread leaves
 * /proc/self/task a moment after pthread_join returns (the kernel wakes the
 * joiner before it reaps the thread). */
static int tasks_settled(int want)
{
	int n = count_tasks();
	for (int i = 0; i < 1000 && n != want; i++) {
		hvt_sleep_us(1000);
		n = count_tasks();
	}
	return n;
}

/* Bad input leaves nothing behind: after creating and tearing down VMs,
 * vCPUs and runners (some stopped by errors), the process has the same fds
 * and threads as before (LeakSanitizer checks memory in the asan build). */
KVM_TEST(hv_kvm_no_leaks)
{
	int fds = count_dir("/proc/self/fd"), tasks = count_tasks();
	for (int round = 0; round < 3; round++) {
		void *penv;
		struct ehv_vcpu *v[3];
		hvk_backend.open(&penv);
		for (uint32_t i = 0; i < 3; i++)
			hvk_backend.vcpu(penv, i, i == 2 ? HVT_MMIO_READ : HVT_OUT_LOOP, 0, 0,
					 &v[i]);
		struct ehv_runner_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.vcpus = v;
		cfg.nr_vcpus = 3;
		cfg.handlers[EHV_EXIT_IO_WRITE] = hvt_h_io; /* MmioRead unhandled: -ENOSYS */
		struct ehv_runner *r;
		REQUIRE_OK(ehv_runner_create(&cfg, &r));
		CHECK_EQ(count_tasks(), tasks + 3);
		CHECK_OK(ehv_runner_start(r, EHV_ALL_VCPUS));
		while (ehv_runner_state(r, 2) != EHV_VCPU_STOPPED)
			hvt_sleep_us(1000);
		CHECK_EQ(ehv_runner_error(r, 2), -ENOSYS);
		if (round == 1)
			CHECK_OK(ehv_runner_pause(r, 0));
		ehv_runner_destroy(r); /* with vCPUs running or paused */
		CHECK_EQ(tasks_settled(tasks), tasks);
		/* a failed creation leaves nothing either */
		struct ehv_vcpu *w;
		CHECK_ERR(ehv_vcpu_create(((struct hvk_env *)penv)->vm, 0, &w), -EEXIST);
		for (int i = 0; i < 3; i++)
			ehv_vcpu_destroy(v[i]);
		hvk_backend.close(penv);
		CHECK_EQ(count_dir("/proc/self/fd"), fds);
	}
	struct ehv_hypervisor *h;
	struct ehv_hypervisor_options o = {.device = "/nonexistent"};
	CHECK_ERR(ehv_hypervisor_open(&o, &h), -ENOENT);
	CHECK_EQ(count_dir("/proc/self/fd"), fds);
	CHECK_EQ(tasks_settled(tasks), tasks);
}
