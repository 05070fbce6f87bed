/* tests/unit/hv_mock_api.c - vCPU layer on the mock backend: handles, exit answers, completion, bad input. */
#include "hv_mock_env.h"

struct env {
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
	struct ehv_vcpu *v;
};

static void env_open(struct env *e, const struct ehv_mock_step *steps, size_t n)
{
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &e->hyp));
	REQUIRE_OK(ehv_vm_create(e->hyp, &e->vm));
	REQUIRE_OK(ehv_vcpu_create(e->vm, 0, &e->v));
	REQUIRE_OK(ehv_mock_vcpu_script(e->v, steps, n));
}

static void env_close(struct env *e)
{
	ehv_vcpu_destroy(e->v);
	ehv_vm_destroy(e->vm);
	ehv_hypervisor_close(e->hyp);
}

TEST(hv_names)
{
	for (int i = 0; i < EHV_EXIT_REASON_MAX; i++) {
		const char *n = ehv_exit_reason_name(i);
		CHECK(strcmp(n, "Invalid") != 0);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(n, ehv_exit_reason_name(j)) != 0);
	}
	CHECK_STR(ehv_exit_reason_name(EHV_EXIT_REASON_MAX), "Invalid");
	CHECK_STR(ehv_exit_reason_name((enum ehv_exit_reason) - 1), "Invalid");
	CHECK_STR(ehv_exit_reason_name(EHV_EXIT_IO_READ), "IoRead");
	CHECK_STR(ehv_exit_reason_name(EHV_EXIT_SEND_IPI), "SendIPI");
	CHECK_STR(ehv_exit_reason_name(EHV_EXIT_CANCELED), "Canceled");
	CHECK_STR(ehv_vcpu_state_name(EHV_VCPU_PAUSED), "paused");
	CHECK_STR(ehv_vcpu_state_name(9), "invalid");
	CHECK_STR(ehv_backend_name(EHV_BACKEND_MOCK), "mock");
	CHECK_STR(ehv_backend_name(EHV_BACKEND_KVM), "kvm");
	CHECK_STR(ehv_backend_name(EHV_BACKEND_MAX), "invalid");
	CHECK_EQ(ehv_library_version(), EMBER_HV_API_VERSION);
}

TEST(hv_mock_handles)
{
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
	struct ehv_vcpu *v, *w;
	struct ehv_hypervisor_options bad = {.backend = EHV_BACKEND_MAX};
	CHECK_ERR(ehv_hypervisor_open(&bad, &hyp), -EINVAL);
	CHECK_ERR(ehv_hypervisor_open(NULL, NULL), -EINVAL);
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	CHECK_EQ(ehv_hypervisor_backend(hyp), EHV_BACKEND_MOCK);
	CHECK_ERR(ehv_hypervisor_backend(NULL), -EINVAL);
	CHECK_EQ(ehv_hypervisor_check_raw_capability(hyp, 7), 0);
	CHECK_OK(ehv_mock_set_capability(hyp, 7, 3));
	CHECK_OK(ehv_mock_set_capability(hyp, 8, 0));
	CHECK_EQ(ehv_hypervisor_check_raw_capability(hyp, 7), 3);
	REQUIRE_OK(ehv_vm_create(hyp, &vm));
	CHECK_EQ(ehv_vm_backend(vm), EHV_BACKEND_MOCK);
	CHECK(ehv_vm_backend_handle(vm) == NULL);
	CHECK_EQ(ehv_vm_check_raw_capability(vm, 7), 3);
	uint64_t args[4] = {1, 2, 3, 4};
	CHECK_OK(ehv_vm_enable_raw_capability(vm, 7, args));
	CHECK_ERR(ehv_vm_enable_raw_capability(vm, 8, NULL), -EINVAL);
	CHECK_ERR(ehv_vm_enable_raw_capability(NULL, 7, NULL), -EINVAL);

	/* memory: alignment, overlap, removal */
	static uint8_t mem[3 * 4096] __attribute__((aligned(4096)));
	CHECK_OK(ehv_vm_set_memory(vm, 0, 0, 8192, mem, 0));
	CHECK_ERR(ehv_vm_set_memory(vm, 1, 4096, 4096, mem, 0), -EEXIST);
	CHECK_ERR(ehv_vm_set_memory(vm, 1, 100, 4096, mem, 0), -EINVAL);
	CHECK_ERR(ehv_vm_set_memory(vm, 1, 8192, 4096, mem + 1, 0), -EINVAL);
	CHECK_ERR(ehv_vm_set_memory(vm, 1, 8192, 4096, mem, 0x80), -EINVAL);
	CHECK_ERR(ehv_vm_set_memory(vm, EHV_MAX_MEM_SLOTS, 8192, 4096, mem, 0), -EINVAL);
	CHECK_ERR(ehv_vm_set_memory(vm, 1, UINT64_MAX & ~4095ull, 8192, mem, 0), -EINVAL);
	CHECK_OK(ehv_vm_set_memory(vm, 1, 8192, 4096, mem + 8192, EHV_MEM_READONLY));
	CHECK_OK(ehv_vm_remove_memory(vm, 0));
	CHECK_OK(ehv_vm_set_memory(vm, 2, 4096, 4096, mem, 0)); /* now free */

	/* traps */
	struct ehv_sysreg_trap t = {0x174, 2, EHV_TRAP_READ | EHV_TRAP_WRITE};
	CHECK_OK(ehv_vm_trap_sysregs(vm, &t, 1, EHV_TRAP_UNKNOWN_SYSREGS));
	CHECK_OK(ehv_vm_trap_sysregs(vm, NULL, 0, 0));
	t.count = 0;
	CHECK_ERR(ehv_vm_trap_sysregs(vm, &t, 1, 0), -EINVAL);
	t.count = 1;
	t.access = 0;
	CHECK_ERR(ehv_vm_trap_sysregs(vm, &t, 1, 0), -EINVAL);
	t.access = EHV_TRAP_READ;
	t.first = UINT32_MAX;
	t.count = 2;
	CHECK_ERR(ehv_vm_trap_sysregs(vm, &t, 1, 0), -EINVAL);
	CHECK_ERR(ehv_vm_trap_sysregs(vm, &t, 17, 0), -EINVAL);
	CHECK_OK(ehv_vm_trap_hypercalls(vm, 1u << 12));

	/* vCPUs */
	REQUIRE_OK(ehv_vcpu_create(vm, 5, &v));
	CHECK_ERR(ehv_vcpu_create(vm, 5, &w), -EEXIST);
	CHECK_ERR(ehv_vcpu_create(NULL, 1, &w), -EINVAL);
	CHECK_EQ(ehv_vcpu_id(v), 5);
	CHECK_EQ(ehv_vcpu_id(NULL), 0);
	CHECK(ehv_vcpu_backend_handle(v) == NULL);
	CHECK_OK(ehv_vcpu_enable_raw_capability(v, 7, args));
	CHECK_ERR(ehv_vcpu_enable_raw_capability(v, 99, args), -EINVAL);
	struct ehv_mock_stats st;
	CHECK_OK(ehv_mock_vcpu_stats(v, &st));
	CHECK_EQ(st.caps_enabled, 1);
	CHECK_EQ(st.last_cap, 7);
	CHECK_EQ(st.last_cap_args[3], 4);
	CHECK_OK(ehv_vcpu_on_suspend(v));
	/* pre-faulting: the range checked first, then the mock cannot */
	CHECK_ERR(ehv_vcpu_pre_fault_memory(v, 0x1000, 0), -EINVAL);
	CHECK_ERR(ehv_vcpu_pre_fault_memory(v, 0x1001, 4096), -EINVAL);
	CHECK_ERR(ehv_vcpu_pre_fault_memory(v, UINT64_MAX & ~4095ull, 8192), -EINVAL);
	CHECK_ERR(ehv_vcpu_pre_fault_memory(NULL, 0, 4096), -EINVAL);
	CHECK_ERR(ehv_vcpu_pre_fault_memory(v, 0x1000, 4096), -EOPNOTSUPP);

	/* registers */
	CHECK_OK(ehv_vcpu_set_real_mode(v, 0x1000, 0x8000));
	struct ehv_x86_regs regs;
	struct ehv_x86_sregs sregs;
	CHECK_OK(ehv_vcpu_get_regs(v, &regs));
	CHECK_EQ(regs.rip, 0x1000);
	CHECK_EQ(regs.rsp, 0x8000);
	CHECK_EQ(regs.rflags, 2);
	CHECK_OK(ehv_vcpu_get_sregs(v, &sregs));
	CHECK_EQ(sregs.cs.base, 0);
	CHECK_EQ(sregs.cs.selector, 0);
	CHECK_EQ(sregs.ss.limit, 0xffff);
	CHECK_EQ(sregs.cr0 & 1, 0);
	CHECK_ERR(ehv_vcpu_get_regs(v, NULL), -EINVAL);
	struct ehv_x86_cpuid_entry cpuid = {.function = 0x40000001, .eax = 0x31237648};
	CHECK_OK(ehv_vcpu_set_cpuid(v, &cpuid, 1));
	CHECK_ERR(ehv_vcpu_set_cpuid(v, &cpuid, 257), -EINVAL);
	CHECK_OK(ehv_vcpu_set_debug(v, EHV_DEBUG_SINGLESTEP));
	CHECK_ERR(ehv_vcpu_set_debug(v, 0x100), -EINVAL);
	CHECK_OK(ehv_vcpu_request_interrupt_window(v, true));
	CHECK_OK(ehv_vcpu_inject_interrupt(v, 0x20));
	CHECK_ERR(ehv_vcpu_inject_interrupt(v, 256), -EINVAL);

	/* a VM destroyed before its vCPU stays alive until the vCPU goes */
	ehv_vm_destroy(vm);
	CHECK_OK(ehv_vcpu_kick(v));
	CHECK_EQ(ehv_vcpu_run(v, NULL), EHV_EXIT_CANCELED);
	ehv_vcpu_destroy(v);
	ehv_hypervisor_close(hyp);
	/* NULLs */
	ehv_vcpu_destroy(NULL);
	ehv_vm_destroy(NULL);
	ehv_hypervisor_close(NULL);
	CHECK_ERR(ehv_vcpu_run(NULL, NULL), -EINVAL);
	CHECK(!ehv_vcpu_has_pending_completion(NULL));
}

TEST(hv_mock_kick_signal)
{
	int s = ehv_kick_signal();
	CHECK(s >= SIGRTMIN && s <= SIGRTMAX);
	CHECK_ERR(ehv_set_kick_signal(SIGINT), -EINVAL);
	CHECK_OK(ehv_set_kick_signal(SIGRTMIN + 3));
	CHECK_EQ(ehv_kick_signal(), SIGRTMIN + 3);
	struct env e;
	env_open(&e, NULL, 0);
	/* installed with the first vCPU: fixed from now on */
	CHECK_ERR(ehv_set_kick_signal(SIGRTMIN + 4), -EBUSY);
	CHECK_OK(ehv_set_kick_signal(SIGRTMIN + 3));
	struct sigaction sa;
	sigaction(SIGRTMIN + 3, NULL, &sa);
	CHECK(sa.sa_flags & SA_SIGINFO);
	CHECK(!(sa.sa_flags & SA_RESTART));
	env_close(&e);
}

/* ------------------------------------------------------------ I/O answers */

struct io_log {
	int calls;
	struct ehv_io_access last;
	uint64_t next; /* value to answer reads with (incremented) */
	int fail_at;   /* fail the fail_at-th call (1-based), 0 = never */
	uint64_t written[16];
};

static int io_cb(void *opaque, struct ehv_io_access *a)
{
	struct io_log *l = opaque;
	l->calls++;
	l->last = *a;
	if (l->fail_at && l->calls == l->fail_at)
		return -EIO;
	if (a->write) {
		if (l->calls <= 16)
			l->written[l->calls - 1] = a->value;
	} else {
		a->value = l->next++;
	}
	return 0;
}

TEST(hv_mock_io_callbacks)
{
	struct ehv_mock_step s[8];
	memset(s, 0, sizeof(s));
	s[0] = hvt_step_exit(EHV_EXIT_IO_READ);
	s[0].exit.u.io_read.port = 0x3f8;
	s[0].exit.u.io_read.width = 4;
	s[1] = hvt_step_exit(EHV_EXIT_IO_READ); /* rep insw, 5 elements */
	s[1].exit.u.io_read.port = 0x1f0;
	s[1].exit.u.io_read.width = 2;
	s[1].exit.u.io_read.count = 5;
	s[2] = hvt_step_io_write(0x80, 1, 0xab);
	s[3] = hvt_step_exit(EHV_EXIT_IO_WRITE); /* rep outsb, 3 elements */
	s[3].exit.u.io_write.port = 0xe9;
	s[3].exit.u.io_write.width = 1;
	s[3].exit.u.io_write.count = 3;
	s[3].exit.u.io_write.data = 'a';
	s[4] = hvt_step_mmio_read(0xfed00000, 8);
	s[5] = hvt_step_mmio_write(0xfed00010, 2, 0xbeef);
	s[6] = hvt_step_exit(EHV_EXIT_HALT);
	struct env e;
	env_open(&e, s, 7);
	struct ehv_exit x;
	struct io_log l;
	memset(&l, 0, sizeof(l));
	l.next = 0x11223344;

	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_IO_READ);
	CHECK_EQ(x.u.io_read.port, 0x3f8);
	CHECK_EQ(x.u.io_read.width, 4);
	CHECK_EQ(x.u.io_read.count, 1);
	CHECK(ehv_vcpu_has_pending_completion(e.v));
	CHECK_ERR(ehv_vcpu_handle_mmio(e.v, io_cb, &l), -EINVAL); /* wrong kind */
	CHECK_ERR(ehv_vcpu_handle_io(e.v, NULL, &l), -EINVAL);
	CHECK_OK(ehv_vcpu_handle_io(e.v, io_cb, &l));
	CHECK_EQ(l.last.addr, 0x3f8);
	CHECK_EQ(l.last.size, 4);
	CHECK(!l.last.write);
	CHECK_EQ(l.last.vcpu_id, 0);
	CHECK_ERR(ehv_vcpu_handle_io(e.v, io_cb, &l), -EINVAL); /* twice */
	CHECK_EQ(l.calls, 1);

	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_IO_READ);
	CHECK_EQ(x.u.io_read.count, 5);
	CHECK_OK(ehv_vcpu_handle_io(e.v, io_cb, &l));
	CHECK_EQ(l.calls, 6);

	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_IO_WRITE);
	CHECK_EQ(x.u.io_write.port, 0x80);
	CHECK_EQ(x.u.io_write.data, 0xab);
	CHECK_OK(ehv_vcpu_handle_io(e.v, io_cb, &l));
	CHECK_EQ(l.written[6], 0xab);
	CHECK(l.last.write);

	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_IO_WRITE);
	CHECK_EQ(x.u.io_write.count, 3);
	CHECK_OK(ehv_vcpu_handle_io(e.v, io_cb, &l));
	CHECK_EQ(l.written[7], 'a');
	CHECK_EQ(l.written[8], 'b');
	CHECK_EQ(l.written[9], 'c');

	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_MMIO_READ);
	CHECK_EQ(x.u.mmio_read.addr, 0xfed00000);
	CHECK_EQ(x.u.mmio_read.width, 8);
	CHECK_EQ(x.u.mmio_read.reg, EHV_REG_UNKNOWN);
	l.next = 0x8877665544332211ull;
	CHECK_OK(ehv_vcpu_handle_mmio(e.v, io_cb, &l));
	CHECK_EQ(l.last.size, 8);

	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_MMIO_WRITE);
	CHECK_EQ(x.u.mmio_write.data, 0xbeef);
	CHECK_EQ(x.u.mmio_write.width, 2);
	CHECK_OK(ehv_vcpu_handle_mmio(e.v, io_cb, &l));
	CHECK_EQ(l.last.value, 0xbeef);
	CHECK_EQ(l.last.addr, 0xfed00010);

	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_HALT);
	CHECK(!ehv_vcpu_has_pending_completion(e.v));
	CHECK_ERR(ehv_vcpu_handle_io(e.v, io_cb, &l), -EINVAL); /* exit at the wrong time */

	/* what the "guest" got */
	struct ehv_mock_record rec[8];
	REQUIRE_EQ(ehv_mock_vcpu_records(e.v, rec, 8), 6);
	CHECK_EQ(rec[0].reason, EHV_EXIT_IO_READ);
	CHECK_EQ(rec[0].value, 0x11223344);
	CHECK(rec[0].handled);
	CHECK(!rec[0].immediate);
	CHECK_EQ(rec[1].count, 5);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(rec[1].values[i], (0x11223345 + i) & 0xffff); /* 2-byte elements */
	CHECK_EQ(rec[4].reason, EHV_EXIT_MMIO_READ);
	CHECK_EQ(rec[4].value, 0x8877665544332211ull);
	CHECK_EQ(rec[4].step, 4);
	env_close(&e);
}

TEST(hv_mock_io_callback_failure)
{
	struct ehv_mock_step s[4];
	s[0] = hvt_step_exit(EHV_EXIT_IO_READ);
	s[0].exit.u.io_read.port = 0x60;
	s[0].exit.u.io_read.width = 2;
	s[0].exit.u.io_read.count = 4;
	s[1] = hvt_step_exit(EHV_EXIT_IO_WRITE);
	s[1].exit.u.io_write.port = 0x61;
	s[1].exit.u.io_write.width = 1;
	s[1].exit.u.io_write.count = 4;
	s[2] = hvt_step_mmio_read(0x1000, 4);
	s[3] = hvt_step_exit(EHV_EXIT_HALT);
	struct env e;
	env_open(&e, s, 4);
	struct io_log l;
	memset(&l, 0, sizeof(l));
	l.next = 7;
	l.fail_at = 2;
	/* element 1 answered, element 2 fails: it and the rest read all ones */
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_IO_READ);
	CHECK_ERR(ehv_vcpu_handle_io(e.v, io_cb, &l), -EIO);
	CHECK_EQ(l.calls, 2);
	/* a failed write stops at the failing element */
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_IO_WRITE);
	l.calls = 0;
	CHECK_ERR(ehv_vcpu_handle_io(e.v, io_cb, &l), -EIO);
	CHECK_EQ(l.calls, 2);
	/* MMIO read failing: all ones */
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_MMIO_READ);
	l.calls = 0;
	l.fail_at = 1;
	CHECK_ERR(ehv_vcpu_handle_mmio(e.v, io_cb, &l), -EIO);
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_HALT);
	struct ehv_mock_record rec[4];
	REQUIRE_EQ(ehv_mock_vcpu_records(e.v, rec, 4), 3);
	CHECK_EQ(rec[0].values[0], 7);
	CHECK_EQ(rec[0].values[1], 0xffff);
	CHECK_EQ(rec[0].values[3], 0xffff);
	CHECK_EQ(rec[2].value, 0xffffffff);
	env_close(&e);
}

TEST(hv_mock_unanswered_read)
{
	struct ehv_mock_step s[3];
	s[0] = hvt_step_mmio_read(0x2000, 1);
	s[1] = hvt_step_io_write(0x70, 1, 1);
	s[2] = hvt_step_exit(EHV_EXIT_HALT);
	struct env e;
	env_open(&e, s, 3);
	struct io_log l;
	memset(&l, 0, sizeof(l));
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_MMIO_READ);
	/* run refuses until the read is answered, and does not enter the guest */
	CHECK_ERR(ehv_vcpu_run(e.v, NULL), -EBUSY);
	CHECK_ERR(ehv_vcpu_complete_pending(e.v, NULL), -EBUSY);
	struct ehv_mock_stats st;
	CHECK_OK(ehv_mock_vcpu_stats(e.v, &st));
	CHECK_EQ(st.runs, 1);
	CHECK_OK(ehv_vcpu_handle_mmio(e.v, io_cb, &l));
	/* a write need not be handled: the next run just goes on */
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_IO_WRITE);
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_HALT);
	struct ehv_mock_record rec[2];
	REQUIRE_EQ(ehv_mock_vcpu_records(e.v, rec, 2), 2);
	CHECK(rec[0].handled);
	CHECK(!rec[1].handled);
	env_close(&e);
}

/* ------------------------------------------------ hypercalls and sysregs */

static int hc_cb(void *opaque, struct ehv_hypercall *c)
{
	int *calls = opaque;
	++*calls;
	if (c->nr == 99)
		return -ENOSYS;
	c->ret = c->nr * 1000 + c->args[0] + c->args[5];
	return 0;
}

struct msr_regs {
	uint64_t val[4];
	int calls;
};

static int sysreg_cb(void *opaque, struct ehv_sysreg_access *a)
{
	struct msr_regs *m = opaque;
	m->calls++;
	if (a->addr < 0x174 || a->addr > 0x177)
		return -ENOENT;
	if (a->addr == 0x177) {
		a->fault = true;
		return 0;
	}
	if (a->write)
		m->val[a->addr - 0x174] = a->value;
	else
		a->value = m->val[a->addr - 0x174];
	return 0;
}

TEST(hv_mock_hypercall_sysreg)
{
	struct ehv_mock_step s[8];
	s[0] = hvt_step_exit(EHV_EXIT_HYPERCALL);
	s[0].exit.u.hypercall.nr = 12;
	for (int i = 0; i < 6; i++)
		s[0].exit.u.hypercall.args[i] = (uint64_t)i + 1;
	s[1] = hvt_step_exit(EHV_EXIT_HYPERCALL);
	s[1].exit.u.hypercall.nr = 99;
	s[2] = hvt_step_exit(EHV_EXIT_SYSREG_WRITE);
	s[2].exit.u.sysreg_write.addr = 0x175;
	s[2].exit.u.sysreg_write.value = 0xfeedface12345678ull;
	s[3] = hvt_step_exit(EHV_EXIT_SYSREG_READ);
	s[3].exit.u.sysreg_read.addr = 0x175;
	s[3].exit.u.sysreg_read.reg = EHV_REG_UNKNOWN;
	s[4] = hvt_step_exit(EHV_EXIT_SYSREG_READ);
	s[4].exit.u.sysreg_read.addr = 0x177; /* the callback makes it fault */
	s[5] = hvt_step_exit(EHV_EXIT_SYSREG_READ);
	s[5].exit.u.sysreg_read.addr = 0x999; /* the callback fails: fault */
	s[6] = hvt_step_exit(EHV_EXIT_HALT);
	struct env e;
	env_open(&e, s, 7);
	struct ehv_exit x;
	int calls = 0;
	struct msr_regs m;
	memset(&m, 0, sizeof(m));
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_HYPERCALL);
	CHECK_EQ(x.u.hypercall.nr, 12);
	CHECK_EQ(x.u.hypercall.args[5], 6);
	CHECK_ERR(ehv_vcpu_handle_sysreg(e.v, sysreg_cb, &m), -EINVAL);
	CHECK_OK(ehv_vcpu_handle_hypercall(e.v, hc_cb, &calls));
	CHECK_ERR(ehv_vcpu_handle_hypercall(e.v, hc_cb, &calls), -EINVAL);
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_HYPERCALL);
	CHECK_ERR(ehv_vcpu_handle_hypercall(e.v, hc_cb, &calls), -ENOSYS);
	CHECK_EQ(calls, 2);
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_SYSREG_WRITE);
	CHECK_EQ(x.u.sysreg_write.addr, 0x175);
	CHECK_EQ(x.u.sysreg_write.value, 0xfeedface12345678ull);
	CHECK_OK(ehv_vcpu_handle_sysreg(e.v, sysreg_cb, &m));
	CHECK_EQ(m.val[1], 0xfeedface12345678ull);
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_SYSREG_READ);
	CHECK_EQ(x.u.sysreg_read.reg, EHV_REG_UNKNOWN);
	CHECK_OK(ehv_vcpu_handle_sysreg(e.v, sysreg_cb, &m));
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_SYSREG_READ);
	CHECK_OK(ehv_vcpu_handle_sysreg(e.v, sysreg_cb, &m));
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_SYSREG_READ);
	CHECK_ERR(ehv_vcpu_handle_sysreg(e.v, sysreg_cb, &m), -ENOENT);
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_HALT);
	struct ehv_mock_record rec[8];
	REQUIRE_EQ(ehv_mock_vcpu_records(e.v, rec, 8), 6);
	CHECK_EQ(rec[0].value, 12 * 1000 + 1 + 6);
	CHECK_EQ(rec[1].value, (uint64_t)-1000); /* -KVM_ENOSYS */
	CHECK(!rec[2].fault);
	CHECK_EQ(rec[3].value, 0xfeedface12345678ull);
	CHECK(!rec[3].fault);
	CHECK(rec[4].fault);
	CHECK(rec[5].fault);
	CHECK_EQ(ehv_vcpu_exit_count(e.v, EHV_EXIT_SYSREG_READ), 3);
	CHECK_EQ(ehv_vcpu_exit_count(e.v, EHV_EXIT_HYPERCALL), 2);
	env_close(&e);
}

/* Every neutral reason the mock is given comes back with its fields. */
TEST(hv_mock_every_reason)
{
	struct ehv_mock_step s[EHV_EXIT_REASON_MAX];
	int n = 0;
	for (int r = 0; r < EHV_EXIT_REASON_MAX; r++) {
		s[n] = hvt_step_exit(r);
		s[n].exit.u.unsupported.ndata = 0;
		switch (r) {
		case EHV_EXIT_IO_READ:
			s[n].exit.u.io_read.width = 1;
			break;
		case EHV_EXIT_IO_WRITE:
			s[n].exit.u.io_write.width = 1;
			break;
		case EHV_EXIT_MMIO_READ:
			s[n].exit.u.mmio_read.width = 1;
			break;
		case EHV_EXIT_MMIO_WRITE:
			s[n].exit.u.mmio_write.width = 1;
			break;
		case EHV_EXIT_CPU_UP:
			s[n].exit.u.cpu_up.target_cpu = 3;
			s[n].exit.u.cpu_up.entry_point = 0x9000;
			s[n].exit.u.cpu_up.arg = 77;
			break;
		case EHV_EXIT_SEND_IPI:
			s[n].exit.u.send_ipi.target_cpu = 2;
			s[n].exit.u.send_ipi.vector = 0xec;
			s[n].exit.u.send_ipi.to_all = true;
			break;
		case EHV_EXIT_EXTERNAL_INTERRUPT:
			s[n].exit.u.external_interrupt.vector = 0x31;
			break;
		case EHV_EXIT_NESTED_PAGE_FAULT:
			s[n].exit.u.nested_page_fault.addr = 0x123000;
			s[n].exit.u.nested_page_fault.access = EHV_NPF_WRITE;
			break;
		case EHV_EXIT_FAIL_ENTRY:
			s[n].exit.u.fail_entry.hardware_reason = 0x80000021;
			break;
		default:
			break;
		}
		n++;
	}
	struct env e;
	env_open(&e, s, (size_t)n);
	struct io_log l;
	memset(&l, 0, sizeof(l));
	int calls = 0;
	struct msr_regs m;
	memset(&m, 0, sizeof(m));
	for (int r = 0; r < EHV_EXIT_REASON_MAX; r++) {
		struct ehv_exit x;
		CHECK_EQ(ehv_vcpu_run(e.v, &x), r);
		if (r == EHV_EXIT_IO_READ)
			CHECK_OK(ehv_vcpu_handle_io(e.v, io_cb, &l));
		if (r == EHV_EXIT_MMIO_READ)
			CHECK_OK(ehv_vcpu_handle_mmio(e.v, io_cb, &l));
		if (r == EHV_EXIT_SYSREG_READ)
			CHECK_ERR(ehv_vcpu_handle_sysreg(e.v, sysreg_cb, &m), -ENOENT);
		if (r == EHV_EXIT_HYPERCALL)
			CHECK_OK(ehv_vcpu_handle_hypercall(e.v, hc_cb, &calls));
		if (r == EHV_EXIT_CPU_UP)
			CHECK_EQ(x.u.cpu_up.entry_point, 0x9000);
		if (r == EHV_EXIT_SEND_IPI)
			CHECK_EQ(x.u.send_ipi.vector, 0xec);
		if (r == EHV_EXIT_NESTED_PAGE_FAULT)
			CHECK_EQ(x.u.nested_page_fault.addr, 0x123000);
		if (r == EHV_EXIT_FAIL_ENTRY)
			CHECK_EQ(x.u.fail_entry.hardware_reason, 0x80000021);
		CHECK_EQ(ehv_vcpu_exit_count(e.v, r), 1);
	}
	struct ehv_mock_stats st;
	CHECK_OK(ehv_mock_vcpu_stats(e.v, &st));
	CHECK(st.script_done);
	env_close(&e);
}

TEST(hv_mock_script_bad)
{
	struct env e;
	env_open(&e, NULL, 0);
	struct ehv_mock_step s = hvt_step_exit(EHV_EXIT_REASON_MAX);
	CHECK_ERR(ehv_mock_vcpu_script(e.v, &s, 1), -EINVAL);
	s = hvt_step_io_write(1, 9, 0);
	CHECK_ERR(ehv_mock_vcpu_script(e.v, &s, 1), -EINVAL);
	s = hvt_step_mmio_read(1, 0);
	CHECK_ERR(ehv_mock_vcpu_script(e.v, &s, 1), -EINVAL);
	s = hvt_step_exit(EHV_EXIT_IO_READ);
	s.exit.u.io_read.width = 4;
	s.exit.u.io_read.count = 17;
	CHECK_ERR(ehv_mock_vcpu_script(e.v, &s, 1), -EINVAL);
	s.kind = 7;
	CHECK_ERR(ehv_mock_vcpu_script(e.v, &s, 1), -EINVAL);
	CHECK_ERR(ehv_mock_vcpu_script(NULL, &s, 1), -EINVAL);
	CHECK_ERR(ehv_mock_vcpu_records(e.v, NULL, 1), -EINVAL);
	/* a failing run is reported and the vCPU goes on */
	struct ehv_mock_step f[2] = {{.kind = EHV_MOCK_FAIL, .error = -EFAULT},
				     hvt_step_exit(EHV_EXIT_HALT)};
	CHECK_OK(ehv_mock_vcpu_script(e.v, f, 2));
	CHECK_ERR(ehv_vcpu_run(e.v, NULL), -EFAULT);
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_HALT);
	env_close(&e);
}

/* --------------------------------------------------------------- completion */

TEST(hv_mock_complete_pending)
{
	struct ehv_mock_step s[5];
	s[0] = hvt_step_mmio_read(0x3000, 8);
	s[0].flags = EHV_MOCK_F_SPLIT; /* a 16-byte access: two fragments */
	s[1] = hvt_step_mmio_read(0x3008, 8);
	s[2] = hvt_step_io_write(0x10, 1, 1);
	s[3] = hvt_step_exit(EHV_EXIT_HALT);
	struct env e;
	env_open(&e, s, 4);
	struct ehv_exit x;
	struct io_log l;
	memset(&l, 0, sizeof(l));
	l.next = 100;
	/* nothing pending: Canceled without running */
	CHECK_EQ(ehv_vcpu_complete_pending(e.v, &x), EHV_EXIT_CANCELED);
	struct ehv_mock_stats st;
	CHECK_OK(ehv_mock_vcpu_stats(e.v, &st));
	CHECK_EQ(st.runs, 0);
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_MMIO_READ);
	CHECK_OK(ehv_vcpu_handle_mmio(e.v, io_cb, &l));
	/* completing the first fragment produces the second exit */
	CHECK_EQ(ehv_vcpu_complete_pending(e.v, &x), EHV_EXIT_MMIO_READ);
	CHECK_EQ(x.u.mmio_read.addr, 0x3008);
	CHECK_OK(ehv_vcpu_handle_mmio(e.v, io_cb, &l));
	CHECK_EQ(ehv_vcpu_complete_pending(e.v, &x), EHV_EXIT_CANCELED);
	CHECK(!ehv_vcpu_has_pending_completion(e.v));
	struct ehv_mock_record rec[4];
	REQUIRE_EQ(ehv_mock_vcpu_records(e.v, rec, 4), 2);
	CHECK(rec[0].immediate);
	CHECK(rec[1].immediate);
	CHECK_EQ(rec[1].value, 101);
	/* a kick that came before the completion run is not consumed by it */
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_IO_WRITE);
	CHECK_OK(ehv_vcpu_kick(e.v));
	CHECK_EQ(ehv_vcpu_complete_pending(e.v, &x), EHV_EXIT_CANCELED);
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_CANCELED);
	CHECK_EQ(ehv_vcpu_run(e.v, &x), EHV_EXIT_HALT);
	env_close(&e);
}

/* ----------------------------------------------------------------- runner */

struct mid_mmio {
	struct ehv_runner *r;
	atomic_int in_handler;
	atomic_int pauser_started;
	int pause_ret;
};

static int mid_read(void *opaque, struct ehv_io_access *a)
{
	(void)opaque;
	a->value = 0xcafe;
	return 0;
}

static int h_mid_mmio(struct ehv_vcpu *v, const struct ehv_exit *x, void *opaque)
{
	struct mid_mmio *m = opaque;
	(void)x;
	atomic_store(&m->in_handler, 1);
	while (!atomic_load(&m->pauser_started))
		sched_yield();
	hvt_sleep_us(30000); /* the pause request is posted meanwhile */
	int r = ehv_vcpu_handle_mmio(v, mid_read, NULL);
	return r < 0 ? r : EHV_ACTION_CONTINUE;
}

static void *pauser(void *arg)
{
	struct mid_mmio *m = arg;
	atomic_store(&m->pauser_started, 1);
	m->pause_ret = ehv_runner_pause(m->r, 0);
	return NULL;
}

static int check_completed(struct ehv_vcpu *v, void *arg)
{
	(void)arg;
	return ehv_vcpu_has_pending_completion(v) ? 1 : 0;
}

/* A vCPU paused in the middle of an MMIO read completes it (one run with
 * immediate_exit) before the pause is acknowledged. */
TEST(hv_mock_runner_pause_mid_mmio)
{
	struct ehv_mock_step s[2];
	s[0] = hvt_step_mmio_read(HVT_MMIO_ADDR, 4);
	s[1] = hvt_step_io_write(0x11, 4, 0);
	struct env e;
	env_open(&e, s, 2);
	struct mid_mmio m;
	memset(&m, 0, sizeof(m));
	struct ehv_runner_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = &e.v;
	cfg.nr_vcpus = 1;
	cfg.handlers[EHV_EXIT_MMIO_READ] = h_mid_mmio;
	cfg.handlers[EHV_EXIT_IO_WRITE] = hvt_h_io;
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
	CHECK_EQ(ehv_runner_call(m.r, 0, check_completed, NULL), 0);
	struct ehv_mock_stats st;
	CHECK_OK(ehv_mock_vcpu_stats(e.v, &st));
	CHECK_EQ(st.steps_done, 1); /* the guest did not go on to the next exit */
	CHECK_EQ(st.suspends, 1);   /* on_suspend told the hypervisor */
	struct ehv_mock_record rec[2];
	REQUIRE_EQ(ehv_mock_vcpu_records(e.v, rec, 2), 1);
	CHECK_EQ(rec[0].reason, EHV_EXIT_MMIO_READ);
	CHECK_EQ(rec[0].value, 0xcafe);
	CHECK(rec[0].immediate);
	CHECK(rec[0].handled);
	CHECK_OK(ehv_runner_resume(m.r, 0));
	while (ehv_vcpu_exit_count(e.v, EHV_EXIT_IO_WRITE) == 0)
		hvt_sleep_us(1000);
	ehv_runner_destroy(m.r);
	env_close(&e);
}

static int h_pause_self(struct ehv_vcpu *v, const struct ehv_exit *x, void *opaque)
{
	(void)x;
	(void)opaque;
	int r = ehv_vcpu_handle_io(v, hvt_sink, NULL);
	return r < 0 ? r : EHV_ACTION_PAUSE;
}

static int h_stop_all(struct ehv_vcpu *v, const struct ehv_exit *x, void *opaque)
{
	(void)v;
	(void)x;
	(void)opaque;
	return EHV_ACTION_STOP_ALL;
}

static int h_bad_action(struct ehv_vcpu *v, const struct ehv_exit *x, void *opaque)
{
	(void)v;
	(void)x;
	(void)opaque;
	return 17;
}

static int h_no_answer(struct ehv_vcpu *v, const struct ehv_exit *x, void *opaque)
{
	(void)v;
	(void)x;
	(void)opaque;
	return EHV_ACTION_CONTINUE;
}

TEST(hv_mock_runner_actions)
{
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
	struct ehv_vcpu *v[3];
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	REQUIRE_OK(ehv_vm_create(hyp, &vm));
	struct ehv_mock_step io_read = hvt_step_exit(EHV_EXIT_IO_READ);
	io_read.exit.u.io_read.width = 1;
	struct ehv_mock_step s0[2] = {hvt_step_io_write(1, 1, 1), hvt_step_exit(EHV_EXIT_HALT)};
	struct ehv_mock_step s1[1] = {{.kind = EHV_MOCK_SPIN}};
	struct ehv_mock_step s2[2] = {hvt_step_exit(EHV_EXIT_SHUTDOWN),
				      hvt_step_exit(EHV_EXIT_HALT)};
	for (int i = 0; i < 3; i++)
		REQUIRE_OK(ehv_vcpu_create(vm, (uint32_t)i, &v[i]));
	REQUIRE_OK(ehv_mock_vcpu_script(v[0], s0, 2));
	REQUIRE_OK(ehv_mock_vcpu_script(v[1], s1, 1));
	REQUIRE_OK(ehv_mock_vcpu_script(v[2], s2, 2));
	struct ehv_runner_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = v;
	cfg.nr_vcpus = 3;
	cfg.handlers[EHV_EXIT_IO_WRITE] = h_pause_self;
	cfg.handlers[EHV_EXIT_SHUTDOWN] = h_stop_all;
	cfg.default_handler = hvt_h_stop;
	struct ehv_runner *r;
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	/* vCPU 0 pauses itself after its I/O exit; resumed, it halts */
	CHECK_OK(ehv_runner_start(r, 0));
	while (ehv_runner_state(r, 0) != EHV_VCPU_PAUSED)
		hvt_sleep_us(500);
	CHECK_EQ(ehv_vcpu_exit_count(v[0], EHV_EXIT_HALT), 0);
	CHECK(!ehv_vcpu_has_pending_completion(v[0]));
	CHECK_OK(ehv_runner_resume(r, 0));
	while (ehv_runner_state(r, 0) != EHV_VCPU_STOPPED)
		hvt_sleep_us(500);
	CHECK_EQ(ehv_vcpu_exit_count(v[0], EHV_EXIT_HALT), 1);
	/* vCPU 2's shutdown stops everybody, vCPU 1 included */
	CHECK_OK(ehv_runner_start(r, 1));
	CHECK_OK(ehv_runner_start(r, 2));
	CHECK_OK(ehv_runner_wait(r, 10000));
	for (int i = 0; i < 3; i++)
		CHECK_EQ(ehv_runner_error(r, i), 0);
	CHECK_EQ(ehv_vcpu_exit_count(v[2], EHV_EXIT_HALT), 0);
	ehv_runner_destroy(r);

	/* a handler returning nonsense, or leaving a read unanswered */
	struct ehv_mock_step s3[1] = {hvt_step_io_write(1, 1, 1)};
	REQUIRE_OK(ehv_mock_vcpu_script(v[0], s3, 1));
	REQUIRE_OK(ehv_mock_vcpu_script(v[1], &io_read, 1));
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = v;
	cfg.nr_vcpus = 2;
	cfg.handlers[EHV_EXIT_IO_WRITE] = h_bad_action;
	cfg.handlers[EHV_EXIT_IO_READ] = h_no_answer;
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	CHECK_OK(ehv_runner_start(r, EHV_ALL_VCPUS));
	CHECK_OK(ehv_runner_wait(r, 10000));
	CHECK_EQ(ehv_runner_error(r, 0), -EINVAL);
	CHECK_EQ(ehv_runner_error(r, 1), -EBUSY);
	ehv_runner_destroy(r);
	for (int i = 0; i < 3; i++)
		ehv_vcpu_destroy(v[i]);
	ehv_vm_destroy(vm);
	ehv_hypervisor_close(hyp);
}

/* Kicks through the runner are consumed by it: handlers never see them. */
TEST(hv_mock_runner_kicks)
{
	struct ehv_mock_step s[1] = {{.kind = EHV_MOCK_SPIN}};
	struct env e;
	env_open(&e, s, 1);
	struct ehv_runner_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = &e.v;
	cfg.nr_vcpus = 1;
	cfg.default_handler = h_bad_action; /* would stop it with -EINVAL */
	struct ehv_runner *r;
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	CHECK_OK(ehv_runner_kick(r, 0)); /* created: harmless */
	CHECK_OK(ehv_runner_start(r, 0));
	for (int i = 0; i < 50; i++) {
		CHECK_OK(ehv_runner_kick(r, 0));
		hvt_sleep_us(200);
	}
	CHECK_EQ(ehv_runner_state(r, 0), EHV_VCPU_RUNNING);
	CHECK(ehv_vcpu_exit_count(e.v, EHV_EXIT_CANCELED) >= 10);
	CHECK_ERR(ehv_runner_kick(r, 1), -EINVAL);
	CHECK_ERR(ehv_runner_kick(NULL, 0), -EINVAL);
	ehv_runner_destroy(r);
	env_close(&e);
}

/* A vCPU driven by a runner is not run from elsewhere, nor destroyed. */
TEST(hv_mock_runner_owns_vcpu)
{
	struct ehv_mock_step s[1] = {{.kind = EHV_MOCK_SPIN}};
	struct env e;
	env_open(&e, s, 1);
	struct ehv_runner_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = &e.v;
	cfg.nr_vcpus = 1;
	struct ehv_runner *r;
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	CHECK_ERR(ehv_vcpu_run(e.v, NULL), -EBUSY);
	CHECK_EQ(ehv_vcpu_complete_pending(e.v, NULL), EHV_EXIT_CANCELED); /* nothing pending */
	ehv_vcpu_destroy(e.v); /* refused: still attached */
	CHECK_EQ(ehv_vcpu_id(e.v), 0);
	CHECK_OK(ehv_runner_start(r, 0));
	CHECK_ERR(ehv_vcpu_run(e.v, NULL), -EBUSY);
	ehv_runner_destroy(r);
	/* detached: the caller's again */
	CHECK_OK(ehv_vcpu_kick(e.v));
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_CANCELED);
	env_close(&e);
}

static struct ehv_vcpu *sig_target;

static void kick_from_handler(int sig)
{
	(void)sig;
	ehv_vcpu_kick(sig_target); /* async-signal-safe */
}

static void *raise_later(void *arg)
{
	(void)arg;
	hvt_sleep_us(20000);
	raise(SIGUSR2); /* handled on this thread */
	return NULL;
}

/* The kick works from a signal handler (on another thread, and on the vCPU
 * thread itself). */
TEST(hv_mock_kick_from_signal_handler)
{
	struct ehv_mock_step s[1] = {{.kind = EHV_MOCK_SPIN}};
	struct env e;
	env_open(&e, s, 1);
	sig_target = e.v;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_from_handler;
	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGUSR2, &sa, NULL) == 0);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, raise_later, NULL) == 0);
	uint64_t t0 = hvt_now_ns();
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_CANCELED);
	CHECK(hvt_now_ns() - t0 >= 15000000ull);
	pthread_join(t, NULL);
	/* on the vCPU thread, before run */
	raise(SIGUSR2);
	CHECK_EQ(ehv_vcpu_run(e.v, NULL), EHV_EXIT_CANCELED);
	env_close(&e);
}
