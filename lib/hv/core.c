/* lib/hv/core.c - the vCPU layer's backend-neutral core: handles, run, kicks, exit answers, counters. */
#include "hv_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

unsigned ehv_library_version(void)
{
	return EMBER_HV_API_VERSION;
}

/* ------------------------------------------------------------------ names */

static const char *const reason_names[EHV_EXIT_REASON_MAX] = {
    [EHV_EXIT_NOTHING] = "Nothing",
    [EHV_EXIT_HYPERCALL] = "Hypercall",
    [EHV_EXIT_MMIO_READ] = "MmioRead",
    [EHV_EXIT_MMIO_WRITE] = "MmioWrite",
    [EHV_EXIT_SYSREG_READ] = "SysRegRead",
    [EHV_EXIT_SYSREG_WRITE] = "SysRegWrite",
    [EHV_EXIT_IO_READ] = "IoRead",
    [EHV_EXIT_IO_WRITE] = "IoWrite",
    [EHV_EXIT_EXTERNAL_INTERRUPT] = "ExternalInterrupt",
    [EHV_EXIT_NESTED_PAGE_FAULT] = "NestedPageFault",
    [EHV_EXIT_HALT] = "Halt",
    [EHV_EXIT_CPU_UP] = "CpuUp",
    [EHV_EXIT_CPU_DOWN] = "CpuDown",
    [EHV_EXIT_SYSTEM_DOWN] = "SystemDown",
    [EHV_EXIT_FAIL_ENTRY] = "FailEntry",
    [EHV_EXIT_SEND_IPI] = "SendIPI",
    [EHV_EXIT_SHUTDOWN] = "Shutdown",
    [EHV_EXIT_SYSTEM_RESET] = "SystemReset",
    [EHV_EXIT_DEBUG] = "Debug",
    [EHV_EXIT_INTERNAL_ERROR] = "InternalError",
    [EHV_EXIT_IOAPIC_EOI] = "IoapicEoi",
    [EHV_EXIT_IRQ_WINDOW_OPEN] = "IrqWindowOpen",
    [EHV_EXIT_CANCELED] = "Canceled",
    [EHV_EXIT_UNSUPPORTED] = "Unsupported",
};

const char *ehv_exit_reason_name(enum ehv_exit_reason reason)
{
	if ((unsigned)reason >= EHV_EXIT_REASON_MAX || !reason_names[reason])
		return "Invalid";
	return reason_names[reason];
}

const char *ehv_backend_name(enum ehv_backend backend)
{
	switch (backend) {
	case EHV_BACKEND_KVM:
		return "kvm";
	case EHV_BACKEND_MOCK:
		return "mock";
	default:
		return "invalid";
	}
}

const struct ehvi_ops *ehvi_backend_ops(enum ehv_backend backend)
{
	switch (backend) {
	case EHV_BACKEND_KVM:
		return &ehvi_kvm_ops;
	case EHV_BACKEND_MOCK:
		return &ehvi_mock_ops;
	default:
		return NULL;
	}
}

/* ------------------------------------------------------------ kick signal */

static int kick_signo;	    /* 0 until chosen or installed */
static bool kick_installed; /* under kick_lock */
static pid_t kick_pid;	    /* our pid, cached at install */
static pthread_mutex_t kick_lock = PTHREAD_MUTEX_INITIALIZER;

/* The vCPU this thread is running (set only around the backend's run), and
 * the thread's cached tid. initial-exec: safe to read in a signal handler. */
static __thread struct ehv_vcpu *tls_vcpu __attribute__((tls_model("initial-exec")));
static __thread int tls_tid __attribute__((tls_model("initial-exec")));
static __thread int tls_unblocked_signo __attribute__((tls_model("initial-exec")));
static __thread struct ehv_vcpu *tls_runner_vcpu __attribute__((tls_model("initial-exec")));

void ehvi_set_runner_thread_vcpu(struct ehv_vcpu *vcpu)
{
	tls_runner_vcpu = vcpu;
}

static void kick_handler(int sig, siginfo_t *info, void *uc)
{
	(void)sig;
	(void)info;
	(void)uc;
	struct ehv_vcpu *v = tls_vcpu;
	if (v && __atomic_load_n(&v->kick_seq, __ATOMIC_SEQ_CST) !=
		     __atomic_load_n(&v->kick_ack, __ATOMIC_SEQ_CST))
		__atomic_store_n(v->imm, 1, __ATOMIC_SEQ_CST);
}

static int default_kick_signo(void)
{
	return SIGRTMIN + 1;
}

int ehv_kick_signal(void)
{
	int s = __atomic_load_n(&kick_signo, __ATOMIC_ACQUIRE);
	return s ? s : default_kick_signo();
}

int ehv_set_kick_signal(int signo)
{
	if (!((signo >= SIGRTMIN && signo <= SIGRTMAX) || signo == SIGUSR1 || signo == SIGUSR2))
		return -EINVAL;
	pthread_mutex_lock(&kick_lock);
	int r = 0;
	if (kick_installed)
		r = signo == kick_signo ? 0 : -EBUSY;
	else
		__atomic_store_n(&kick_signo, signo, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&kick_lock);
	return r;
}

static int install_kick_handler(void)
{
	int r = 0;
	pthread_mutex_lock(&kick_lock);
	if (!kick_installed) {
		int s = kick_signo ? kick_signo : default_kick_signo();
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = kick_handler;
		sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: KVM_RUN must see EINTR */
		sigemptyset(&sa.sa_mask);
		if (sigaction(s, &sa, NULL) < 0) {
			r = -errno;
		} else {
			kick_pid = getpid();
			__atomic_store_n(&kick_signo, s, __ATOMIC_RELEASE);
			kick_installed = true;
		}
	}
	pthread_mutex_unlock(&kick_lock);
	return r;
}

int ehvi_thread_tid(void)
{
	if (!tls_tid)
		tls_tid = (int)syscall(SYS_gettid);
	return tls_tid;
}

/* First run on a thread (or after the signal changed): cache the tid and
 * unblock the kick signal. Not on the steady-state exit path. */
static void bind_thread(void)
{
	ehvi_thread_tid();
	int s = ehv_kick_signal();
	if (tls_unblocked_signo != s) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, s);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		tls_unblocked_signo = s;
	}
}

int ehv_vcpu_kick(struct ehv_vcpu *vcpu)
{
	if (!vcpu)
		return -EINVAL;
	int saved = errno;
	__atomic_add_fetch(&vcpu->kick_seq, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(vcpu->imm, 1, __ATOMIC_SEQ_CST);
	int tid = __atomic_load_n(&vcpu->run_tid, __ATOMIC_SEQ_CST);
	if (tid > 0)
		syscall(SYS_tgkill, kick_pid, tid, __atomic_load_n(&kick_signo, __ATOMIC_ACQUIRE));
	errno = saved;
	return 0;
}

int ehv_vcpu_set_immediate_exit(struct ehv_vcpu *vcpu, bool on)
{
	if (!vcpu)
		return -EINVAL;
	if (on) {
		__atomic_store_n(vcpu->imm, 1, __ATOMIC_SEQ_CST);
	} else {
		__atomic_store_n(vcpu->imm, 0, __ATOMIC_SEQ_CST);
		/* a kick not yet consumed keeps it set */
		if (__atomic_load_n(&vcpu->kick_seq, __ATOMIC_SEQ_CST) !=
		    __atomic_load_n(&vcpu->kick_ack, __ATOMIC_SEQ_CST))
			__atomic_store_n(vcpu->imm, 1, __ATOMIC_SEQ_CST);
	}
	return 0;
}

/* ------------------------------------------------------------- hypervisor */

int ehv_hypervisor_open(const struct ehv_hypervisor_options *opts, struct ehv_hypervisor **out)
{
	struct ehv_hypervisor_options def = {.backend = EHV_BACKEND_KVM};
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!opts)
		opts = &def;
	const struct ehvi_ops *ops = ehvi_backend_ops(opts->backend);
	if (!ops)
		return -EINVAL;
	struct ehv_hypervisor *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ops = ops;
	h->backend = opts->backend;
	int r = ops->hyp_open(h, opts);
	if (r < 0) {
		free(h);
		return r;
	}
	*out = h;
	return 0;
}

void ehv_hypervisor_close(struct ehv_hypervisor *hyp)
{
	if (!hyp)
		return;
	hyp->ops->hyp_close(hyp);
	free(hyp);
}

int ehv_hypervisor_backend(const struct ehv_hypervisor *hyp)
{
	return hyp ? (int)hyp->backend : -EINVAL;
}

int ehv_hypervisor_check_raw_capability(struct ehv_hypervisor *hyp, long cap)
{
	if (!hyp)
		return -EINVAL;
	return hyp->ops->hyp_check_cap(hyp, cap);
}

/* --------------------------------------------------------------------- VM */

int ehv_vm_create(struct ehv_hypervisor *hyp, struct ehv_vm **out)
{
	if (!hyp || !out)
		return -EINVAL;
	*out = NULL;
	struct ehv_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->ops = hyp->ops;
	vm->backend = hyp->backend;
	atomic_init(&vm->refs, 1);
	atomic_init(&vm->platform, false);
	pthread_mutex_init(&vm->plat_lock, NULL);
	int r = hyp->ops->vm_create(hyp, vm);
	if (r < 0) {
		pthread_mutex_destroy(&vm->plat_lock);
		free(vm);
		return r;
	}
	*out = vm;
	return 0;
}

static void vm_put(struct ehv_vm *vm)
{
	if (atomic_fetch_sub(&vm->refs, 1) == 1) {
		vm->ops->vm_destroy(vm);
		pthread_mutex_destroy(&vm->plat_lock);
		free(vm);
	}
}

void ehv_vm_destroy(struct ehv_vm *vm)
{
	if (vm)
		vm_put(vm);
}

void *ehv_vm_backend_handle(struct ehv_vm *vm)
{
	return vm ? vm->ops->vm_handle(vm) : NULL;
}

int ehv_vm_backend(const struct ehv_vm *vm)
{
	return vm ? (int)vm->backend : -EINVAL;
}

int ehv_vm_set_memory(struct ehv_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
		      unsigned flags)
{
	const uint64_t pg = 4096;
	if (!vm || slot >= EHV_MAX_MEM_SLOTS || (flags & ~(EHV_MEM_READONLY | EHV_MEM_LOG_DIRTY)))
		return -EINVAL;
	if (size && (!hva || (gpa & (pg - 1)) || (size & (pg - 1)) || ((uintptr_t)hva & (pg - 1)) ||
		     gpa + size < gpa))
		return -EINVAL;
	int r = vm->ops->vm_set_memory(vm, slot, gpa, size, hva, flags);
	if (r == 0) {
		vm->slots[slot].size = size;
		vm->slots[slot].flags = size ? flags : 0;
	}
	return r;
}

int ehv_vm_remove_memory(struct ehv_vm *vm, uint32_t slot)
{
	return ehv_vm_set_memory(vm, slot, 0, 0, NULL, 0);
}

int ehv_vm_enable_raw_capability(struct ehv_vm *vm, uint32_t cap, const uint64_t args[4])
{
	static const uint64_t zero[4];
	if (!vm)
		return -EINVAL;
	return vm->ops->vm_enable_cap(vm, cap, args ? args : zero);
}

int ehv_vm_check_raw_capability(struct ehv_vm *vm, long cap)
{
	if (!vm)
		return -EINVAL;
	return vm->ops->vm_check_cap(vm, cap);
}

int ehv_vm_trap_sysregs(struct ehv_vm *vm, const struct ehv_sysreg_trap *traps, size_t n,
			unsigned flags)
{
	if (!vm || (n && !traps) || n > 16 || (flags & ~EHV_TRAP_UNKNOWN_SYSREGS))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct ehv_sysreg_trap *t = &traps[i];
		if (!t->count || t->count > 12288 ||
		    !(t->access & (EHV_TRAP_READ | EHV_TRAP_WRITE)) ||
		    (t->access & ~(EHV_TRAP_READ | EHV_TRAP_WRITE)) ||
		    (uint64_t)t->first + t->count > 0x100000000ull)
			return -EINVAL;
	}
	return vm->ops->vm_trap_sysregs(vm, traps, n, flags);
}

int ehv_vm_trap_hypercalls(struct ehv_vm *vm, uint64_t nr_mask)
{
	if (!vm)
		return -EINVAL;
	return vm->ops->vm_trap_hypercalls(vm, nr_mask);
}

/* ------------------------------------------------------- hypervisor queries */

int ehv_hypervisor_supported_cpuid(struct ehv_hypervisor *hyp, struct ehv_x86_cpuid_entry *out,
				   size_t max)
{
	if (!hyp || (max && !out))
		return -EINVAL;
	return hyp->ops->hyp_supported_cpuid(hyp, out, max);
}

int ehv_hypervisor_msr_index_list(struct ehv_hypervisor *hyp, uint32_t *out, size_t max)
{
	if (!hyp || (max && !out))
		return -EINVAL;
	return hyp->ops->hyp_msr_list(hyp, false, out, max);
}

int ehv_hypervisor_feature_msr_index_list(struct ehv_hypervisor *hyp, uint32_t *out, size_t max)
{
	if (!hyp || (max && !out))
		return -EINVAL;
	return hyp->ops->hyp_msr_list(hyp, true, out, max);
}

/* ------------------------------------------------------------ VM platform */

int ehv_vm_setup_platform(struct ehv_vm *vm, const struct ehv_platform_config *cfg)
{
	const unsigned known = EHV_PLATFORM_PIT | EHV_PLATFORM_PIT_SPEAKER_DUMMY;
	unsigned flags = cfg ? cfg->flags : 0;
	if (!vm || (flags & ~known) ||
	    ((flags & EHV_PLATFORM_PIT_SPEAKER_DUMMY) && !(flags & EHV_PLATFORM_PIT)))
		return -EINVAL;
	pthread_mutex_lock(&vm->plat_lock);
	int r;
	if (atomic_load(&vm->platform))
		r = -EEXIST;
	else if (vm->had_vcpu)
		r = -EBUSY;
	else
		r = vm->ops->vm_setup_platform(vm, flags);
	if (r == 0) {
		vm->platform_flags = flags;
		atomic_store(&vm->platform, true);
	}
	pthread_mutex_unlock(&vm->plat_lock);
	return r;
}

static bool has_platform(struct ehv_vm *vm)
{
	return atomic_load_explicit(&vm->platform, memory_order_acquire);
}

int ehv_vm_set_irq_line(struct ehv_vm *vm, uint32_t gsi, bool level)
{
	if (!vm || gsi >= EHV_MAX_GSI)
		return -EINVAL;
	if (!has_platform(vm))
		return -ENXIO;
	return vm->ops->vm_irq_line(vm, gsi, level);
}

int ehv_vm_pulse_irq(struct ehv_vm *vm, uint32_t gsi)
{
	int r = ehv_vm_set_irq_line(vm, gsi, true);
	return r < 0 ? r : vm->ops->vm_irq_line(vm, gsi, false);
}

int ehv_vm_irqfd(struct ehv_vm *vm, int fd, uint32_t gsi, int resample_fd)
{
	if (!vm || fd < 0 || gsi >= EHV_MAX_GSI || resample_fd < -1)
		return -EINVAL;
	if (!has_platform(vm))
		return -ENXIO;
	return vm->ops->vm_irqfd(vm, fd, gsi, resample_fd, false);
}

int ehv_vm_irqfd_remove(struct ehv_vm *vm, int fd, uint32_t gsi)
{
	if (!vm || fd < 0 || gsi >= EHV_MAX_GSI)
		return -EINVAL;
	if (!has_platform(vm))
		return -ENXIO;
	return vm->ops->vm_irqfd(vm, fd, gsi, -1, true);
}

static bool ioeventfd_valid(const struct ehv_ioeventfd *ev)
{
	const unsigned known = EHV_IOEVENT_PIO | EHV_IOEVENT_DATAMATCH;
	if (!ev || ev->fd < 0 || (ev->flags & ~known))
		return false;
	if (ev->len != 0 && ev->len != 1 && ev->len != 2 && ev->len != 4 && ev->len != 8)
		return false;
	if (ev->addr + ev->len < ev->addr)
		return false;
	if (ev->flags & EHV_IOEVENT_PIO)
		return ev->len != 0 && ev->addr + ev->len <= 0x10000;
	/* KVM: a datamatch needs a length */
	return !(ev->len == 0 && (ev->flags & EHV_IOEVENT_DATAMATCH));
}

int ehv_vm_ioeventfd(struct ehv_vm *vm, const struct ehv_ioeventfd *ev)
{
	if (!vm || !ioeventfd_valid(ev))
		return -EINVAL;
	return vm->ops->vm_ioeventfd(vm, ev, false);
}

int ehv_vm_ioeventfd_remove(struct ehv_vm *vm, const struct ehv_ioeventfd *ev)
{
	if (!vm || !ioeventfd_valid(ev))
		return -EINVAL;
	return vm->ops->vm_ioeventfd(vm, ev, true);
}

int ehv_vm_get_clock(struct ehv_vm *vm, struct ehv_clock *clock)
{
	if (!vm || !clock)
		return -EINVAL;
	return vm->ops->vm_get_clock(vm, clock);
}

int ehv_vm_set_clock(struct ehv_vm *vm, const struct ehv_clock *clock)
{
	if (!vm || !clock)
		return -EINVAL;
	return vm->ops->vm_set_clock(vm, clock);
}

static int get_state(struct ehv_vm *vm, unsigned chip, struct ehv_state_blob *st)
{
	if (!vm || !st)
		return -EINVAL;
	if (!has_platform(vm) ||
	    (chip == EHV_IRQCHIP_MAX && !(vm->platform_flags & EHV_PLATFORM_PIT)))
		return -ENXIO;
	memset(st, 0, sizeof(*st));
	st->backend = (uint32_t)vm->backend;
	return vm->ops->vm_get_state(vm, chip, st);
}

static int set_state(struct ehv_vm *vm, unsigned chip, const struct ehv_state_blob *st)
{
	if (!vm || !st || st->backend != (uint32_t)vm->backend || st->size > EHV_STATE_BLOB_MAX)
		return -EINVAL;
	if (!has_platform(vm) ||
	    (chip == EHV_IRQCHIP_MAX && !(vm->platform_flags & EHV_PLATFORM_PIT)))
		return -ENXIO;
	return vm->ops->vm_set_state(vm, chip, st);
}

int ehv_vm_get_irqchip(struct ehv_vm *vm, enum ehv_irqchip_id chip, struct ehv_state_blob *st)
{
	if ((unsigned)chip >= EHV_IRQCHIP_MAX)
		return -EINVAL;
	return get_state(vm, chip, st);
}

int ehv_vm_set_irqchip(struct ehv_vm *vm, enum ehv_irqchip_id chip, const struct ehv_state_blob *st)
{
	if ((unsigned)chip >= EHV_IRQCHIP_MAX)
		return -EINVAL;
	return set_state(vm, chip, st);
}

int ehv_vm_get_pit(struct ehv_vm *vm, struct ehv_state_blob *st)
{
	return get_state(vm, EHV_IRQCHIP_MAX, st);
}

int ehv_vm_set_pit(struct ehv_vm *vm, const struct ehv_state_blob *st)
{
	return set_state(vm, EHV_IRQCHIP_MAX, st);
}

/* ------------------------------------------------------------------- vCPU */

int ehv_vcpu_create(struct ehv_vm *vm, uint32_t id, struct ehv_vcpu **out)
{
	if (!vm || !out)
		return -EINVAL;
	*out = NULL;
	int r = install_kick_handler();
	if (r < 0)
		return r;
	struct ehv_vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->ops = vm->ops;
	v->vm = vm;
	v->id = id;
	/* under plat_lock: the platform step and vCPU creation are ordered */
	pthread_mutex_lock(&vm->plat_lock);
	r = vm->ops->vcpu_create(v);
	if (r == 0)
		vm->had_vcpu = true;
	pthread_mutex_unlock(&vm->plat_lock);
	if (r < 0) {
		free(v);
		return r;
	}
	atomic_fetch_add(&vm->refs, 1);
	*out = v;
	return 0;
}

void ehv_vcpu_destroy(struct ehv_vcpu *vcpu)
{
	if (!vcpu)
		return;
	/* still attached to a runner whose thread may run it: refuse (the
	 * vCPU stays valid; destroy the runner first) */
	if (__atomic_load_n(&vcpu->runner, __ATOMIC_SEQ_CST))
		return;
	if (tls_vcpu == vcpu)
		tls_vcpu = NULL;
	struct ehv_vm *vm = vcpu->vm;
	vcpu->ops->vcpu_destroy(vcpu);
	free(vcpu);
	vm_put(vm);
}

uint32_t ehv_vcpu_id(const struct ehv_vcpu *vcpu)
{
	return vcpu ? vcpu->id : 0;
}

void *ehv_vcpu_backend_handle(struct ehv_vcpu *vcpu)
{
	return vcpu ? vcpu->ops->vcpu_handle(vcpu) : NULL;
}

static inline void count_exit(struct ehv_vcpu *v, unsigned reason)
{
	uint64_t *c = &v->counts[reason];
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* completion: a run made only to finish the last exit's instruction; its
 * Canceled must not consume a kick meant for the caller. */
static int vcpu_run(struct ehv_vcpu *v, struct ehv_exit *exit, bool completion)
{
	if (__builtin_expect(v->broken, 0))
		return -EBADFD;
	/* attached to a runner: only its thread runs the vCPU */
	if (__builtin_expect(__atomic_load_n(&v->runner, __ATOMIC_RELAXED) != NULL, 0) &&
	    tls_runner_vcpu != v)
		return -EBUSY;
	if (v->pend.kind != EHVI_PEND_NONE && v->pend.answer_required && !v->pend.handled)
		return -EBUSY;
	if (__builtin_expect(tls_unblocked_signo == 0, 0))
		bind_thread();
	tls_vcpu = v;
	__atomic_store_n(&v->run_tid, tls_tid, __ATOMIC_SEQ_CST);
	int r = v->ops->vcpu_run(v, exit);
	__atomic_store_n(&v->run_tid, 0, __ATOMIC_RELEASE);
	tls_vcpu = NULL;
	if (r < 0) {
		v->pend.kind = EHVI_PEND_NONE;
		return r;
	}
	unsigned reason = (unsigned)exit->reason;
	if (reason >= EHV_EXIT_REASON_MAX) {
		reason = EHV_EXIT_UNSUPPORTED;
		exit->reason = EHV_EXIT_UNSUPPORTED;
	}
	if (reason == EHV_EXIT_CANCELED) {
		__atomic_store_n(v->imm, 0, __ATOMIC_SEQ_CST);
		uint32_t seq = __atomic_load_n(&v->kick_seq, __ATOMIC_SEQ_CST);
		if (!completion)
			__atomic_store_n(&v->kick_ack, seq, __ATOMIC_SEQ_CST);
		else if (seq != __atomic_load_n(&v->kick_ack, __ATOMIC_SEQ_CST))
			__atomic_store_n(v->imm, 1, __ATOMIC_SEQ_CST); /* keep the kick */
	}
	count_exit(v, reason);
	return (int)reason;
}

int ehv_vcpu_run(struct ehv_vcpu *vcpu, struct ehv_exit *exit)
{
	struct ehv_exit local;
	if (!vcpu)
		return -EINVAL;
	return vcpu_run(vcpu, exit ? exit : &local, false);
}

bool ehv_vcpu_has_pending_completion(const struct ehv_vcpu *vcpu)
{
	return vcpu && vcpu->pend.kind != EHVI_PEND_NONE;
}

int ehv_vcpu_complete_pending(struct ehv_vcpu *vcpu, struct ehv_exit *exit)
{
	struct ehv_exit local;
	if (!vcpu)
		return -EINVAL;
	if (!exit)
		exit = &local;
	if (vcpu->pend.kind == EHVI_PEND_NONE) {
		memset(exit, 0, sizeof(*exit));
		exit->reason = EHV_EXIT_CANCELED;
		return EHV_EXIT_CANCELED;
	}
	if (vcpu->pend.answer_required && !vcpu->pend.handled)
		return -EBUSY;
	__atomic_store_n(vcpu->imm, 1, __ATOMIC_SEQ_CST);
	return vcpu_run(vcpu, exit, true);
}

int ehv_vcpu_on_suspend(struct ehv_vcpu *vcpu)
{
	if (!vcpu)
		return -EINVAL;
	return vcpu->ops->vcpu_on_suspend(vcpu);
}

int ehv_vcpu_pre_fault_memory(struct ehv_vcpu *vcpu, uint64_t gpa, uint64_t size)
{
	if (!vcpu || !size || ((gpa | size) & 4095) || gpa + size < gpa)
		return -EINVAL;
	return vcpu->ops->vcpu_pre_fault ? vcpu->ops->vcpu_pre_fault(vcpu, gpa, size) : -EOPNOTSUPP;
}

int ehv_vcpu_enable_raw_capability(struct ehv_vcpu *vcpu, uint32_t cap, const uint64_t args[4])
{
	static const uint64_t zero[4];
	if (!vcpu)
		return -EINVAL;
	return vcpu->ops->vcpu_enable_cap(vcpu, cap, args ? args : zero);
}

/* --------------------------------------------------------- exit answers */

static inline uint64_t load_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;
	memcpy(&v, p, size); /* x86-64: little-endian host */
	return v;
}

static inline void store_le(uint8_t *p, unsigned size, uint64_t v)
{
	memcpy(p, &v, size);
}

static int handle_access(struct ehv_vcpu *v, uint8_t kind, ehv_io_fn fn, void *opaque)
{
	struct ehvi_pending *p = &v->pend;
	if (!fn || p->kind != kind || p->handled || p->size == 0 || p->size > 8 || !p->data)
		return -EINVAL;
	int err = 0;
	for (uint32_t i = 0; i < p->count; i++) {
		uint8_t *d = p->data + (size_t)i * p->size;
		struct ehv_io_access a = {.addr = p->addr,
					  .size = p->size,
					  .write = p->write,
					  .value = 0,
					  .vcpu_id = v->id};
		if (p->write) {
			if (err)
				break;
			a.value = load_le(d, p->size);
			int r = fn(opaque, &a);
			if (r < 0)
				err = r;
		} else {
			if (!err) {
				int r = fn(opaque, &a);
				if (r < 0)
					err = r;
			}
			store_le(d, p->size, err ? ~0ull : a.value);
		}
	}
	p->handled = true;
	return err;
}

int ehv_vcpu_handle_io(struct ehv_vcpu *vcpu, ehv_io_fn fn, void *opaque)
{
	if (!vcpu)
		return -EINVAL;
	return handle_access(vcpu, EHVI_PEND_IO, fn, opaque);
}

int ehv_vcpu_handle_mmio(struct ehv_vcpu *vcpu, ehv_io_fn fn, void *opaque)
{
	if (!vcpu)
		return -EINVAL;
	return handle_access(vcpu, EHVI_PEND_MMIO, fn, opaque);
}

int ehv_vcpu_handle_hypercall(struct ehv_vcpu *vcpu, ehv_hypercall_fn fn, void *opaque)
{
	if (!vcpu || !fn)
		return -EINVAL;
	struct ehvi_pending *p = &vcpu->pend;
	if (p->kind != EHVI_PEND_HYPERCALL || p->handled || !p->value)
		return -EINVAL;
	struct ehv_hypercall c = {.nr = p->nr, .ret = 0, .vcpu_id = vcpu->id};
	memcpy(c.args, p->args, sizeof(c.args));
	int r = fn(opaque, &c);
	*p->value = r < 0 ? (uint64_t)-1000 : c.ret;
	p->handled = true;
	return r < 0 ? r : 0;
}

int ehv_vcpu_handle_sysreg(struct ehv_vcpu *vcpu, ehv_sysreg_fn fn, void *opaque)
{
	if (!vcpu || !fn)
		return -EINVAL;
	struct ehvi_pending *p = &vcpu->pend;
	if (p->kind != EHVI_PEND_SYSREG || p->handled || !p->value || !p->fault)
		return -EINVAL;
	struct ehv_sysreg_access a = {.addr = (uint32_t)p->addr,
				      .write = p->write,
				      .value = p->write ? *p->value : 0,
				      .fault = false,
				      .vcpu_id = vcpu->id};
	int r = fn(opaque, &a);
	if (r < 0)
		a.fault = true;
	if (!p->write && !a.fault)
		*p->value = a.value;
	*p->fault = a.fault ? 1 : 0;
	p->handled = true;
	return r < 0 ? r : 0;
}

/* ----------------------------------------------------------- observability */

uint64_t ehv_vcpu_exit_count(const struct ehv_vcpu *vcpu, enum ehv_exit_reason reason)
{
	if (!vcpu || (unsigned)reason >= EHV_EXIT_REASON_MAX)
		return 0;
	return __atomic_load_n(&vcpu->counts[reason], __ATOMIC_RELAXED);
}

uint64_t ehv_vcpu_exit_counts(const struct ehv_vcpu *vcpu, uint64_t out[EHV_EXIT_REASON_MAX])
{
	uint64_t total = 0;
	for (unsigned i = 0; i < EHV_EXIT_REASON_MAX; i++) {
		uint64_t c = vcpu ? __atomic_load_n(&vcpu->counts[i], __ATOMIC_RELAXED) : 0;
		if (out)
			out[i] = c;
		total += c;
	}
	return total;
}

/* ------------------------------------------------------------- x86 state */

int ehv_vcpu_get_regs(struct ehv_vcpu *vcpu, struct ehv_x86_regs *regs)
{
	if (!vcpu || !regs)
		return -EINVAL;
	return vcpu->ops->vcpu_get_regs(vcpu, regs);
}

int ehv_vcpu_set_regs(struct ehv_vcpu *vcpu, const struct ehv_x86_regs *regs)
{
	if (!vcpu || !regs)
		return -EINVAL;
	return vcpu->ops->vcpu_set_regs(vcpu, regs);
}

int ehv_vcpu_get_sregs(struct ehv_vcpu *vcpu, struct ehv_x86_sregs *sregs)
{
	if (!vcpu || !sregs)
		return -EINVAL;
	return vcpu->ops->vcpu_get_sregs(vcpu, sregs);
}

int ehv_vcpu_set_sregs(struct ehv_vcpu *vcpu, const struct ehv_x86_sregs *sregs)
{
	if (!vcpu || !sregs)
		return -EINVAL;
	return vcpu->ops->vcpu_set_sregs(vcpu, sregs);
}

static void real_mode_seg(struct ehv_x86_segment *s, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
}

int ehv_vcpu_set_real_mode(struct ehv_vcpu *vcpu, uint16_t ip, uint16_t sp)
{
	struct ehv_x86_sregs sr;
	int r = ehv_vcpu_get_sregs(vcpu, &sr);
	if (r < 0)
		return r;
	real_mode_seg(&sr.cs, 0xb);
	real_mode_seg(&sr.ds, 0x3);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.cr0 &= ~(1ull << 0 | 1ull << 31); /* PE, PG */
	r = ehv_vcpu_set_sregs(vcpu, &sr);
	if (r < 0)
		return r;
	struct ehv_x86_regs regs;
	memset(&regs, 0, sizeof(regs));
	regs.rip = ip;
	regs.rsp = sp;
	regs.rflags = 2;
	return ehv_vcpu_set_regs(vcpu, &regs);
}

int ehv_vcpu_set_cpuid(struct ehv_vcpu *vcpu, const struct ehv_x86_cpuid_entry *entries, size_t n)
{
	if (!vcpu || (n && !entries) || n > 256)
		return -EINVAL;
	return vcpu->ops->vcpu_set_cpuid(vcpu, entries, n);
}

int ehv_vcpu_set_debug(struct ehv_vcpu *vcpu, unsigned flags)
{
	if (!vcpu || (flags & ~(EHV_DEBUG_SINGLESTEP | EHV_DEBUG_SW_BP)))
		return -EINVAL;
	return vcpu->ops->vcpu_set_debug(vcpu, flags);
}

int ehv_vcpu_request_interrupt_window(struct ehv_vcpu *vcpu, bool on)
{
	if (!vcpu)
		return -EINVAL;
	return vcpu->ops->vcpu_request_irq_window(vcpu, on);
}

int ehv_vcpu_inject_interrupt(struct ehv_vcpu *vcpu, uint32_t vector)
{
	if (!vcpu || vector > 255)
		return -EINVAL;
	return vcpu->ops->vcpu_inject_interrupt(vcpu, vector);
}

int ehv_vcpu_get_msrs(struct ehv_vcpu *vcpu, struct ehv_msr *msrs, size_t n)
{
	if (!vcpu || n > EHV_MSRS_MAX || (n && !msrs))
		return -EINVAL;
	return n ? vcpu->ops->vcpu_msrs(vcpu, msrs, n, false) : 0;
}

int ehv_vcpu_set_msrs(struct ehv_vcpu *vcpu, const struct ehv_msr *msrs, size_t n)
{
	if (!vcpu || n > EHV_MSRS_MAX || (n && !msrs))
		return -EINVAL;
	/* the backend reads only: the cast keeps one op for both directions */
	return n ? vcpu->ops->vcpu_msrs(vcpu, (struct ehv_msr *)msrs, n, true) : 0;
}

int ehv_vcpu_get_xcr0(struct ehv_vcpu *vcpu, uint64_t *xcr0)
{
	if (!vcpu || !xcr0)
		return -EINVAL;
	return vcpu->ops->vcpu_xcr0(vcpu, xcr0, false);
}

int ehv_vcpu_set_xcr0(struct ehv_vcpu *vcpu, uint64_t xcr0)
{
	if (!vcpu || !(xcr0 & 1))
		return -EINVAL;
	return vcpu->ops->vcpu_xcr0(vcpu, &xcr0, true);
}

int ehv_vcpu_get_mp_state(struct ehv_vcpu *vcpu, enum ehv_mp_state *state)
{
	if (!vcpu || !state)
		return -EINVAL;
	return vcpu->ops->vcpu_get_mp_state(vcpu, state);
}

int ehv_vcpu_set_mp_state(struct ehv_vcpu *vcpu, enum ehv_mp_state state)
{
	if (!vcpu || (unsigned)state >= EHV_MP_MAX)
		return -EINVAL;
	return vcpu->ops->vcpu_set_mp_state(vcpu, state);
}

int ehv_vcpu_get_lapic(struct ehv_vcpu *vcpu, struct ehv_lapic_state *lapic)
{
	if (!vcpu || !lapic)
		return -EINVAL;
	if (!has_platform(vcpu->vm))
		return -ENXIO;
	return vcpu->ops->vcpu_get_lapic(vcpu, lapic);
}

int ehv_vcpu_set_lapic(struct ehv_vcpu *vcpu, const struct ehv_lapic_state *lapic)
{
	if (!vcpu || !lapic)
		return -EINVAL;
	if (!has_platform(vcpu->vm))
		return -ENXIO;
	return vcpu->ops->vcpu_set_lapic(vcpu, lapic);
}

/* ------------------------------------------------------------ runner hook */

int ehvi_vcpu_attach_runner(struct ehv_vcpu *vcpu, void *runner)
{
	void *expected = NULL;
	if (!__atomic_compare_exchange_n(&vcpu->runner, &expected, runner, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_SEQ_CST))
		return -EBUSY;
	return 0;
}

void ehvi_vcpu_detach_runner(struct ehv_vcpu *vcpu, void *runner)
{
	void *expected = runner;
	__atomic_compare_exchange_n(&vcpu->runner, &expected, NULL, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
}
