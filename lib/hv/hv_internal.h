/* lib/hv/hv_internal.h - private definitions of the vCPU layer: handles and the backend ops table. */
#ifndef EMBER_LIB_HV_INTERNAL_H
#define EMBER_LIB_HV_INTERNAL_H

#include <ember/hv.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

/* What the last exit left for the caller to answer (or for the next run to
 * complete). Filled by the backend's vcpu_run, used by ehv_vcpu_handle_*. */
enum ehvi_pend_kind {
	EHVI_PEND_NONE = 0,
	EHVI_PEND_IO,
	EHVI_PEND_MMIO,
	EHVI_PEND_SYSREG,
	EHVI_PEND_HYPERCALL,
};

struct ehvi_pending {
	uint8_t kind;	      /* enum ehvi_pend_kind */
	bool answer_required; /* a read or hypercall: run refuses until handled */
	bool handled;	      /* ehv_vcpu_handle_* was called */
	bool write;
	uint8_t size;	 /* bytes per element */
	uint32_t count;	 /* I/O elements */
	uint64_t addr;	 /* port, GPA, MSR index */
	uint8_t *data;	 /* I/O and MMIO: the backend's buffer (count * size bytes) */
	uint64_t *value; /* sysreg: value slot; hypercall: ret slot */
	uint8_t *fault;	 /* sysreg: error slot (1 = fault) */
	uint64_t nr;	 /* hypercall */
	uint64_t args[6];
};

struct ehvi_ops;

/* ---- the saved-state container (state.c) */

#define EHVI_DETAIL_MAX 160

/* A growable writer of sections, with a sticky error. */
struct ehvi_sw {
	uint8_t *buf;
	size_t len, cap;
	uint32_t nsections;
	int err;
};
/* Appends one section (tag: four characters) of len bytes. */
void ehvi_sw_section(struct ehvi_sw *w, const char tag[4], uint32_t version, const void *data,
		     size_t len);

#define EHVI_MAX_SECTIONS 32
struct ehvi_section {
	uint32_t tag, version, len;
	const uint8_t *data;
};
/* A parsed, checked blob: distinct tags, each inside the buffer. detail
 * is where a backend writes why it refused (EHVI_DETAIL_MAX bytes). */
struct ehvi_sections {
	unsigned n;
	struct ehvi_section s[EHVI_MAX_SECTIONS];
	char *detail;
};
/* The section with this tag, or NULL. */
const struct ehvi_section *ehvi_find(const struct ehvi_sections *secs, const char tag[4]);
/* Writes a refusal reason into secs->detail and returns err. */
int ehvi_refuse(const struct ehvi_sections *secs, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The host's CLOCK_MONOTONIC in ns: the time base of the saved clock's and
 * TSCs' reading times (state.c, the backends' vCPU blobs). */
int64_t ehvi_mono_ns(void);
/* The instant a restored VM's clock and TSCs are tied to: the host times
 * (ehvi_mono_ns) at which the first vCPU restored with a timed TSC had it
 * read, when saved (saved, the saving host's), and written back (restored,
 * this host's). ehv_vm_restore_state moves the saved clock to it. */
struct ehvi_tsc_ref {
	int64_t saved, restored;
};
/* A vCPU restore's: makes *ref the VM's reference unless a vCPU made one
 * before, and sets *ref to the reference in force. Thread-safe. */
void ehvi_tsc_ref(struct ehv_vm *vm, struct ehvi_tsc_ref *ref);
/* The VM's reference, if a vCPU restore made one (false otherwise). */
bool ehvi_tsc_ref_get(struct ehv_vm *vm, struct ehvi_tsc_ref *ref);
/* Saved and restore times further apart than this are not one snapshot's:
 * nothing is moved by them. */
#define EHVI_TSC_REF_MAX_NS (60ll * 1000000000ll)

struct ehv_hypervisor {
	const struct ehvi_ops *ops;
	enum ehv_backend backend;
	void *be;
};

struct ehv_vm {
	const struct ehvi_ops *ops;
	enum ehv_backend backend;
	atomic_int refs; /* the caller's + one per vCPU */
	void *be;
	/* the platform step: done once, before any vCPU (under plat_lock) */
	pthread_mutex_t plat_lock;
	atomic_bool platform;
	unsigned platform_flags;
	bool had_vcpu; /* a vCPU was created (under plat_lock) */
	/* ehvi_tsc_ref's (under plat_lock) */
	bool has_tsc_ref;
	struct ehvi_tsc_ref tsc_ref;
	/* memory slots as set (size 0 = unused), for the dirty log's checks */
	struct {
		uint64_t size;
		unsigned flags;
	} slots[EHV_MAX_MEM_SLOTS];
	char detail[EHVI_DETAIL_MAX]; /* ehv_vm_state_detail */
};

struct ehv_vcpu {
	const struct ehvi_ops *ops;
	struct ehv_vm *vm;
	uint32_t id;
	void *be;
	/* the backend's immediate_exit byte (KVM: kvm_run->immediate_exit) */
	uint8_t *imm;
	/* kicks: seq counts kicks, ack is seq as seen at the last Canceled */
	uint32_t kick_seq, kick_ack;
	/* kernel tid of the thread inside run, 0 when none */
	int run_tid;
	/* set once the backend failed in a way that leaves the vCPU unusable */
	bool broken;
	/* the last exit's pending answer / completion */
	struct ehvi_pending pend;
	bool needs_completion;
	/* attached runner (at most one) */
	void *runner;
	/* per-reason exit counters: one writer (the vCPU thread), relaxed atomics */
	uint64_t counts[EHV_EXIT_REASON_MAX];
	char detail[EHVI_DETAIL_MAX]; /* ehv_vcpu_state_detail */
};

/* The backend ops. Every function receives initialised core handles; the
 * backend keeps its state in ->be. vcpu_run fills *exit and vcpu->pend, and
 * returns 0 or -errno; it maps an interrupted run to EHV_EXIT_CANCELED. */
struct ehvi_ops {
	const char *name;
	int (*hyp_open)(struct ehv_hypervisor *hyp, const struct ehv_hypervisor_options *opts);
	void (*hyp_close)(struct ehv_hypervisor *hyp);
	int (*hyp_check_cap)(struct ehv_hypervisor *hyp, long cap);
	int (*vm_create)(struct ehv_hypervisor *hyp, struct ehv_vm *vm);
	void (*vm_destroy)(struct ehv_vm *vm);
	void *(*vm_handle)(struct ehv_vm *vm);
	int (*vm_set_memory)(struct ehv_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size,
			     void *hva, unsigned flags);
	int (*vm_enable_cap)(struct ehv_vm *vm, uint32_t cap, const uint64_t args[4]);
	int (*vm_check_cap)(struct ehv_vm *vm, long cap);
	int (*vm_trap_sysregs)(struct ehv_vm *vm, const struct ehv_sysreg_trap *traps, size_t n,
			       unsigned flags);
	int (*vm_trap_hypercalls)(struct ehv_vm *vm, uint64_t nr_mask);
	/* must set vcpu->be and vcpu->imm */
	int (*vcpu_create)(struct ehv_vcpu *vcpu);
	void (*vcpu_destroy)(struct ehv_vcpu *vcpu);
	void *(*vcpu_handle)(struct ehv_vcpu *vcpu);
	int (*vcpu_run)(struct ehv_vcpu *vcpu, struct ehv_exit *exit);
	int (*vcpu_enable_cap)(struct ehv_vcpu *vcpu, uint32_t cap, const uint64_t args[4]);
	int (*vcpu_on_suspend)(struct ehv_vcpu *vcpu);
	int (*vcpu_pre_fault)(struct ehv_vcpu *vcpu, uint64_t gpa, uint64_t size);
	int (*vcpu_get_regs)(struct ehv_vcpu *vcpu, struct ehv_x86_regs *regs);
	int (*vcpu_set_regs)(struct ehv_vcpu *vcpu, const struct ehv_x86_regs *regs);
	int (*vcpu_get_sregs)(struct ehv_vcpu *vcpu, struct ehv_x86_sregs *sregs);
	int (*vcpu_set_sregs)(struct ehv_vcpu *vcpu, const struct ehv_x86_sregs *sregs);
	int (*vcpu_set_cpuid)(struct ehv_vcpu *vcpu, const struct ehv_x86_cpuid_entry *e, size_t n);
	int (*vcpu_set_debug)(struct ehv_vcpu *vcpu, unsigned flags);
	int (*vcpu_request_irq_window)(struct ehv_vcpu *vcpu, bool on);
	int (*vcpu_inject_interrupt)(struct ehv_vcpu *vcpu, uint32_t vector);
	/* VM-level operations; the core has checked the arguments. The list
	 * queries return the total count and copy up to max. */
	int (*hyp_supported_cpuid)(struct ehv_hypervisor *hyp, struct ehv_x86_cpuid_entry *out,
				   size_t max);
	int (*hyp_msr_list)(struct ehv_hypervisor *hyp, bool feature, uint32_t *out, size_t max);
	int (*vm_setup_platform)(struct ehv_vm *vm, unsigned flags);
	int (*vm_irq_line)(struct ehv_vm *vm, uint32_t gsi, bool level);
	int (*vm_irqfd)(struct ehv_vm *vm, int fd, uint32_t gsi, int resample_fd, bool remove);
	int (*vm_ioeventfd)(struct ehv_vm *vm, const struct ehv_ioeventfd *ev, bool remove);
	int (*vm_get_clock)(struct ehv_vm *vm, struct ehv_clock *clock);
	int (*vm_set_clock)(struct ehv_vm *vm, const struct ehv_clock *clock);
	/* chip: an enum ehv_irqchip_id, or EHV_IRQCHIP_MAX for the PIT */
	int (*vm_get_state)(struct ehv_vm *vm, unsigned chip, struct ehv_state_blob *st);
	int (*vm_set_state)(struct ehv_vm *vm, unsigned chip, const struct ehv_state_blob *st);
	int (*vcpu_msrs)(struct ehv_vcpu *vcpu, struct ehv_msr *msrs, size_t n, bool set);
	int (*vcpu_xcr0)(struct ehv_vcpu *vcpu, uint64_t *xcr0, bool set);
	int (*vcpu_get_mp_state)(struct ehv_vcpu *vcpu, enum ehv_mp_state *state);
	int (*vcpu_set_mp_state)(struct ehv_vcpu *vcpu, enum ehv_mp_state state);
	int (*vcpu_get_lapic)(struct ehv_vcpu *vcpu, struct ehv_lapic_state *lapic);
	int (*vcpu_set_lapic)(struct ehv_vcpu *vcpu, const struct ehv_lapic_state *lapic);
	/* whole state (state.c holds the container): save writes the
	 * backend's sections; restore checks every section first (changing
	 * nothing on a refusal, with a detail), then applies them */
	int (*vcpu_save_state)(struct ehv_vcpu *vcpu, struct ehvi_sw *w);
	int (*vcpu_restore_state)(struct ehv_vcpu *vcpu, const struct ehvi_sections *secs);
	/* the slot exists and logs dirty pages; bitmap is big enough */
	int (*vm_get_dirty_log)(struct ehv_vm *vm, uint32_t slot, uint64_t *bitmap, uint64_t pages);
};

extern const struct ehvi_ops ehvi_mock_ops;
extern const struct ehvi_ops ehvi_kvm_ops;

/* Ops for a backend, NULL if not built in. */
const struct ehvi_ops *ehvi_backend_ops(enum ehv_backend backend);

/* True when the vCPU's immediate_exit is set (relaxed; for the mock). */
static inline bool ehvi_imm_pending(const struct ehv_vcpu *vcpu)
{
	return __atomic_load_n(vcpu->imm, __ATOMIC_SEQ_CST) != 0;
}

/* Runner hook: the runner attached to a vCPU (core.c keeps the pointer). */
int ehvi_vcpu_attach_runner(struct ehv_vcpu *vcpu, void *runner);
void ehvi_vcpu_detach_runner(struct ehv_vcpu *vcpu, void *runner);

/* Set by a runner thread to the vCPU it drives: a vCPU attached to a runner
 * runs only there. */
void ehvi_set_runner_thread_vcpu(struct ehv_vcpu *vcpu);

/* Current thread's kernel tid (cached per thread). */
int ehvi_thread_tid(void);

#endif
