/* lib/hv/mock/mock.c - the scripted mock backend: exits from a test's script, answers recorded. */
#include "../hv_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOCK_MAX_CAPS	 16
#define MOCK_MAX_RECORDS 4096
#define MOCK_MAX_IDS	 4096
#define MOCK_BUF	 64

struct mock_cap {
	long cap;
	int value;
};

struct mock_caps {
	struct mock_cap c[MOCK_MAX_CAPS];
	unsigned n;
};

#define MOCK_MAX_MSRS	 512
#define MOCK_MAX_REFUSED 8

struct mock_hyp {
	struct mock_caps caps;
	struct ehv_x86_cpuid_entry *cpuid;
	size_t ncpuid;
	uint32_t *msr_index, *msr_feature;
	size_t nindex, nfeature;
	bool feature_set;
};

struct mock_vm {
	struct mock_caps caps;
	pthread_mutex_t lock;
	/* slots, platform, lines, eventfds, clock: what tests inspect */
	struct ehv_mock_vm_state st;
	uint64_t ids[MOCK_MAX_IDS / 64];
	uint64_t hypercall_mask;
	size_t sysreg_traps;
	uint64_t clock_set_ns;	 /* the clock's value at clock_set_host */
	uint64_t clock_set_host; /* host CLOCK_MONOTONIC ns of the last set */
	struct ehv_state_blob chips[EHV_IRQCHIP_MAX + 1]; /* the PIT last */
	uint64_t *dirty[EHV_MAX_MEM_SLOTS];		  /* slots with EHV_MEM_LOG_DIRTY */
	/* the hypervisor's tables when the VM was created, for restore's checks */
	uint32_t *msr_index;
	size_t nindex;
	uint64_t xcr0_supported; /* CPUID 0xD.0 EDX:EAX; 0 = no leaf 0xD */
};

struct mock_vcpu {
	uint8_t imm;
	uint64_t xcr0; /* 0: never set, reads as 1 (x87, the reset value) */
	struct mock_vm *vm;
	struct ehv_mock_step *steps;
	size_t nsteps, cur;
	uint32_t rep_done;
	/* the exit whose answer the next run consumes */
	uint32_t last_step;
	unsigned last_flags;
	enum ehv_exit_reason last_reason;
	uint8_t buf[MOCK_BUF];
	uint64_t val;
	uint8_t fault;
	struct ehv_mock_record *records;
	size_t nrec;
	struct ehv_mock_stats stats;
	struct ehv_x86_regs regs;
	struct ehv_x86_sregs sregs;
	unsigned debug_flags;
	bool irq_window;
	int injected;
	struct ehv_x86_cpuid_entry *cpuid;
	size_t ncpuid;
	struct ehv_msr msrs[MOCK_MAX_MSRS];
	size_t nmsrs;
	uint32_t refused[MOCK_MAX_REFUSED];
	size_t nrefused;
	enum ehv_mp_state mp_state;
	struct ehv_lapic_state lapic;
};

static int caps_lookup(const struct mock_caps *caps, long cap)
{
	for (unsigned i = 0; i < caps->n; i++)
		if (caps->c[i].cap == cap)
			return caps->c[i].value;
	return 0;
}

/* ------------------------------------------------------------ hypervisor */

static int mock_hyp_open(struct ehv_hypervisor *hyp, const struct ehv_hypervisor_options *opts)
{
	(void)opts;
	struct mock_hyp *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	hyp->be = m;
	return 0;
}

static void mock_hyp_close(struct ehv_hypervisor *hyp)
{
	struct mock_hyp *m = hyp->be;
	free(m->cpuid);
	free(m->msr_index);
	free(m->msr_feature);
	free(m);
}

static int mock_hyp_check_cap(struct ehv_hypervisor *hyp, long cap)
{
	return caps_lookup(&((struct mock_hyp *)hyp->be)->caps, cap);
}

int ehv_mock_set_capability(struct ehv_hypervisor *hyp, long cap, int value)
{
	if (!hyp || hyp->ops != &ehvi_mock_ops)
		return -EINVAL;
	struct mock_caps *caps = &((struct mock_hyp *)hyp->be)->caps;
	for (unsigned i = 0; i < caps->n; i++)
		if (caps->c[i].cap == cap) {
			caps->c[i].value = value;
			return 0;
		}
	if (caps->n >= MOCK_MAX_CAPS)
		return -ENOSPC;
	caps->c[caps->n++] = (struct mock_cap){cap, value};
	return 0;
}

/* -------------------------------------------------------------------- VM */

static uint64_t host_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int mock_vm_create(struct ehv_hypervisor *hyp, struct ehv_vm *vm)
{
	struct mock_vm *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	struct mock_hyp *h = hyp->be;
	m->caps = h->caps;
	if (h->nindex) {
		m->msr_index = malloc(h->nindex * sizeof(*m->msr_index));
		if (!m->msr_index) {
			free(m);
			return -ENOMEM;
		}
		memcpy(m->msr_index, h->msr_index, h->nindex * sizeof(*m->msr_index));
		m->nindex = h->nindex;
	}
	for (size_t i = 0; i < h->ncpuid; i++)
		if (h->cpuid[i].function == 0xd && h->cpuid[i].index == 0)
			m->xcr0_supported = ((uint64_t)h->cpuid[i].edx << 32) | h->cpuid[i].eax;
	m->clock_set_host = host_ns();
	for (unsigned i = 0; i <= EHV_IRQCHIP_MAX; i++) {
		m->chips[i].backend = EHV_BACKEND_MOCK;
		m->chips[i].size = EHV_MOCK_STATE_SIZE;
	}
	pthread_mutex_init(&m->lock, NULL);
	vm->be = m;
	return 0;
}

static void mock_vm_destroy(struct ehv_vm *vm)
{
	struct mock_vm *m = vm->be;
	pthread_mutex_destroy(&m->lock);
	for (unsigned i = 0; i < EHV_MAX_MEM_SLOTS; i++)
		free(m->dirty[i]);
	free(m->msr_index);
	free(m);
}

static void *mock_vm_handle(struct ehv_vm *vm)
{
	(void)vm;
	return NULL;
}

static int mock_vm_set_memory(struct ehv_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size,
			      void *hva, unsigned flags)
{
	struct mock_vm *m = vm->be;
	int r = 0;
	uint64_t *dirty = NULL;
	if (size && (flags & EHV_MEM_LOG_DIRTY)) {
		dirty = calloc((size / 4096 + 63) / 64, 8);
		if (!dirty)
			return -ENOMEM;
	}
	pthread_mutex_lock(&m->lock);
	if (size == 0) {
		memset(&m->st.slots[slot], 0, sizeof(m->st.slots[slot]));
		free(m->dirty[slot]);
		m->dirty[slot] = NULL;
		goto out;
	}
	for (unsigned i = 0; i < EHV_MAX_MEM_SLOTS; i++) {
		const uint64_t sg = m->st.slots[i].gpa, ss = m->st.slots[i].size;
		if (i != slot && m->st.slots[i].used && gpa < sg + ss && sg < gpa + size) {
			r = -EEXIST;
			goto out;
		}
	}
	m->st.slots[slot].used = true;
	m->st.slots[slot].gpa = gpa;
	m->st.slots[slot].size = size;
	m->st.slots[slot].hva = hva;
	m->st.slots[slot].flags = flags;
	free(m->dirty[slot]);
	m->dirty[slot] = dirty;
	dirty = NULL;
out:
	pthread_mutex_unlock(&m->lock);
	free(dirty);
	return r;
}

static int mock_get_dirty_log(struct ehv_vm *vm, uint32_t slot, uint64_t *bitmap, uint64_t pages)
{
	struct mock_vm *m = vm->be;
	size_t words = (size_t)((pages + 63) / 64);
	pthread_mutex_lock(&m->lock);
	int r = m->dirty[slot] ? 0 : -EINVAL;
	if (r == 0) {
		memcpy(bitmap, m->dirty[slot], words * 8);
		memset(m->dirty[slot], 0, words * 8);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int ehv_mock_vm_mark_dirty(struct ehv_vm *vm, uint64_t gpa, uint64_t len)
{
	if (!vm || vm->ops != &ehvi_mock_ops || len == 0 || gpa + len < gpa)
		return -EINVAL;
	struct mock_vm *m = vm->be;
	int r = -ENOENT;
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < EHV_MAX_MEM_SLOTS; i++) {
		const uint64_t sg = m->st.slots[i].gpa, ss = m->st.slots[i].size;
		if (!m->st.slots[i].used || !m->dirty[i] || gpa < sg || gpa + len > sg + ss)
			continue;
		for (uint64_t pg = (gpa - sg) / 4096; pg <= (gpa + len - 1 - sg) / 4096; pg++)
			m->dirty[i][pg / 64] |= 1ull << (pg % 64);
		r = 0;
		break;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int mock_vm_enable_cap(struct ehv_vm *vm, uint32_t cap, const uint64_t args[4])
{
	(void)args;
	return caps_lookup(&((struct mock_vm *)vm->be)->caps, cap) > 0 ? 0 : -EINVAL;
}

static int mock_vm_check_cap(struct ehv_vm *vm, long cap)
{
	return caps_lookup(&((struct mock_vm *)vm->be)->caps, cap);
}

static int mock_vm_trap_sysregs(struct ehv_vm *vm, const struct ehv_sysreg_trap *traps, size_t n,
				unsigned flags)
{
	(void)traps;
	(void)flags;
	((struct mock_vm *)vm->be)->sysreg_traps = n;
	return 0;
}

static int mock_vm_trap_hypercalls(struct ehv_vm *vm, uint64_t nr_mask)
{
	((struct mock_vm *)vm->be)->hypercall_mask = nr_mask;
	return 0;
}

/* ------------------------------------------------------------------ vCPU */

static void reset_sregs(struct ehv_x86_sregs *s)
{
	memset(s, 0, sizeof(*s));
	/* the x86 reset state, as KVM reports it */
	s->cs = (struct ehv_x86_segment){.base = 0xffff0000,
					 .limit = 0xffff,
					 .selector = 0xf000,
					 .type = 0xb,
					 .present = 1,
					 .s = 1};
	s->ds = (struct ehv_x86_segment){.limit = 0xffff, .type = 3, .present = 1, .s = 1};
	s->es = s->fs = s->gs = s->ss = s->ds;
	s->tr = (struct ehv_x86_segment){.limit = 0xffff, .type = 0xb, .present = 1};
	s->ldt = (struct ehv_x86_segment){.limit = 0xffff, .type = 2, .present = 1};
	s->gdt.limit = s->idt.limit = 0xffff;
	s->cr0 = 0x60000010;
	s->apic_base = 0xfee00900;
}

static int mock_vcpu_create(struct ehv_vcpu *v)
{
	struct mock_vm *vm = v->vm->be;
	if (v->id >= MOCK_MAX_IDS)
		return -EINVAL;
	struct mock_vcpu *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&vm->lock);
	uint64_t bit = 1ull << (v->id % 64);
	bool dup = vm->ids[v->id / 64] & bit;
	if (!dup)
		vm->ids[v->id / 64] |= bit;
	if (!dup)
		vm->st.vcpus_created++;
	pthread_mutex_unlock(&vm->lock);
	if (dup) {
		free(m);
		return -EEXIST;
	}
	m->vm = vm;
	/* as KVM: with an in-kernel irqchip the APs wait for INIT/SIPI */
	m->mp_state =
	    v->id != 0 && atomic_load(&v->vm->platform) ? EHV_MP_UNINITIALIZED : EHV_MP_RUNNABLE;
	m->lapic.regs[0x23] = (uint8_t)v->id; /* APIC ID in bits 31:24 */
	m->lapic.regs[0x30] = 0x14;	      /* version 0x14, 6 LVT entries */
	m->lapic.regs[0x32] = 0x05;
	m->injected = -1;
	m->regs.rip = 0xfff0;
	m->regs.rflags = 2;
	reset_sregs(&m->sregs);
	v->be = m;
	v->imm = &m->imm;
	return 0;
}

static void mock_vcpu_destroy(struct ehv_vcpu *v)
{
	struct mock_vcpu *m = v->be;
	pthread_mutex_lock(&m->vm->lock);
	m->vm->ids[v->id / 64] &= ~(1ull << (v->id % 64));
	pthread_mutex_unlock(&m->vm->lock);
	free(m->steps);
	free(m->records);
	free(m->cpuid);
	free(m);
}

static void *mock_vcpu_handle(struct ehv_vcpu *v)
{
	(void)v;
	return NULL;
}

static bool imm_set(struct mock_vcpu *m)
{
	return __atomic_load_n(&m->imm, __ATOMIC_SEQ_CST) != 0;
}

/* Sleeps up to us microseconds in small slices; false if a kick ended it
 * (us == 0: until kicked). */
static bool stay_in_guest(struct mock_vcpu *m, uint64_t us)
{
	uint64_t slept = 0;
	while (!imm_set(m)) {
		if (us && slept >= us)
			return true;
		uint64_t slice = 50;
		if (us && us - slept < slice)
			slice = us - slept;
		struct timespec ts = {0, (long)slice * 1000};
		nanosleep(&ts, NULL); /* a kick's signal cuts it short */
		slept += slice;
	}
	return false;
}

/* The previous exit's answer, as KVM consumes it on re-entry. */
static void consume_answer(struct ehv_vcpu *v, struct mock_vcpu *m, bool imm)
{
	struct ehvi_pending *p = &v->pend;
	struct ehv_mock_record rec;
	memset(&rec, 0, sizeof(rec));
	rec.step = m->last_step;
	rec.reason = m->last_reason;
	rec.immediate = imm;
	rec.handled = p->handled;
	switch (p->kind) {
	case EHVI_PEND_IO:
	case EHVI_PEND_MMIO:
		rec.count = p->count;
		for (uint32_t i = 0; i < p->count && i < 8; i++) {
			uint64_t x = 0;
			memcpy(&x, m->buf + (size_t)i * p->size, p->size);
			rec.values[i] = x;
		}
		rec.value = rec.values[0];
		break;
	case EHVI_PEND_SYSREG:
		rec.value = m->val;
		rec.fault = m->fault != 0;
		break;
	case EHVI_PEND_HYPERCALL:
		rec.value = m->val;
		break;
	default:
		return;
	}
	m->stats.completions++;
	if (m->records && m->nrec < MOCK_MAX_RECORDS)
		m->records[m->nrec++] = rec;
}

static void produce(struct ehv_vcpu *v, struct mock_vcpu *m, const struct ehv_mock_step *s,
		    struct ehv_exit *e)
{
	struct ehvi_pending *p = &v->pend;
	*e = s->exit;
	e->raw_reason = (uint32_t)s->exit.reason;
	memset(m->buf, 0, sizeof(m->buf));
	m->val = 0;
	m->fault = 0;
	switch (e->reason) {
	case EHV_EXIT_IO_READ:
		p->kind = EHVI_PEND_IO;
		p->answer_required = true;
		p->addr = e->u.io_read.port;
		p->size = e->u.io_read.width;
		p->count = e->u.io_read.count ? e->u.io_read.count : 1;
		e->u.io_read.count = p->count;
		p->data = m->buf;
		break;
	case EHV_EXIT_IO_WRITE:
		p->kind = EHVI_PEND_IO;
		p->write = true;
		p->addr = e->u.io_write.port;
		p->size = e->u.io_write.width;
		p->count = e->u.io_write.count ? e->u.io_write.count : 1;
		e->u.io_write.count = p->count;
		for (uint32_t i = 0; i < p->count; i++) {
			uint64_t x = e->u.io_write.data + i;
			memcpy(m->buf + (size_t)i * p->size, &x, p->size);
		}
		p->data = m->buf;
		break;
	case EHV_EXIT_MMIO_READ:
		p->kind = EHVI_PEND_MMIO;
		p->answer_required = true;
		p->addr = e->u.mmio_read.addr;
		p->size = e->u.mmio_read.width;
		p->count = 1;
		p->data = m->buf;
		break;
	case EHV_EXIT_MMIO_WRITE:
		p->kind = EHVI_PEND_MMIO;
		p->write = true;
		p->addr = e->u.mmio_write.addr;
		p->size = e->u.mmio_write.width;
		p->count = 1;
		memcpy(m->buf, &e->u.mmio_write.data, p->size);
		p->data = m->buf;
		break;
	case EHV_EXIT_SYSREG_READ:
		p->kind = EHVI_PEND_SYSREG;
		p->answer_required = true;
		p->addr = e->u.sysreg_read.addr;
		p->value = &m->val;
		p->fault = &m->fault;
		break;
	case EHV_EXIT_SYSREG_WRITE:
		p->kind = EHVI_PEND_SYSREG;
		p->write = true;
		p->addr = e->u.sysreg_write.addr;
		m->val = e->u.sysreg_write.value;
		p->value = &m->val;
		p->fault = &m->fault;
		break;
	case EHV_EXIT_HYPERCALL:
		p->kind = EHVI_PEND_HYPERCALL;
		p->answer_required = true;
		p->nr = e->u.hypercall.nr;
		memcpy(p->args, e->u.hypercall.args, sizeof(p->args));
		p->value = &m->val;
		break;
	default:
		break;
	}
	m->last_step = (uint32_t)m->cur;
	m->last_flags = s->flags;
	m->last_reason = e->reason;
	m->stats.steps_done++;
	uint32_t reps = s->repeat ? s->repeat : 1;
	if (++m->rep_done >= reps) {
		m->rep_done = 0;
		m->cur++;
		if (m->cur >= m->nsteps)
			m->stats.script_done = true;
	}
}

static int canceled(struct mock_vcpu *m, struct ehv_exit *e)
{
	memset(e, 0, sizeof(*e));
	e->reason = EHV_EXIT_CANCELED;
	e->raw_reason = EHV_EXIT_CANCELED;
	m->stats.canceled++;
	return 0;
}

static int mock_vcpu_run(struct ehv_vcpu *v, struct ehv_exit *e)
{
	struct mock_vcpu *m = v->be;
	bool imm = imm_set(m);
	bool chain = false;
	m->stats.runs++;
	if (v->pend.kind != EHVI_PEND_NONE) {
		consume_answer(v, m, imm);
		chain = (m->last_flags & EHV_MOCK_F_SPLIT) != 0;
	}
	memset(&v->pend, 0, sizeof(v->pend));
	if (imm && !chain)
		return canceled(m, e);
	if (m->cur >= m->nsteps) {
		stay_in_guest(m, 0); /* an idle guest */
		return canceled(m, e);
	}
	const struct ehv_mock_step *s = &m->steps[m->cur];
	switch (s->kind) {
	case EHV_MOCK_FAIL:
		m->cur++;
		if (m->cur >= m->nsteps)
			m->stats.script_done = true;
		return s->error < 0 ? s->error : -EIO;
	case EHV_MOCK_SPIN:
		stay_in_guest(m, 0);
		m->cur++;
		if (m->cur >= m->nsteps)
			m->stats.script_done = true;
		return canceled(m, e);
	case EHV_MOCK_EXIT:
	default:
		if (s->delay_us && !chain && !stay_in_guest(m, s->delay_us))
			return canceled(m, e);
		produce(v, m, s, e);
		return 0;
	}
}

static int mock_vcpu_enable_cap(struct ehv_vcpu *v, uint32_t cap, const uint64_t args[4])
{
	struct mock_vcpu *m = v->be;
	if (caps_lookup(&m->vm->caps, cap) <= 0)
		return -EINVAL;
	m->stats.caps_enabled++;
	m->stats.last_cap = cap;
	memcpy(m->stats.last_cap_args, args, sizeof(m->stats.last_cap_args));
	return 0;
}

static int mock_vcpu_on_suspend(struct ehv_vcpu *v)
{
	((struct mock_vcpu *)v->be)->stats.suspends++;
	return 0;
}

static int mock_get_regs(struct ehv_vcpu *v, struct ehv_x86_regs *r)
{
	*r = ((struct mock_vcpu *)v->be)->regs;
	return 0;
}

static int mock_set_regs(struct ehv_vcpu *v, const struct ehv_x86_regs *r)
{
	((struct mock_vcpu *)v->be)->regs = *r;
	return 0;
}

static int mock_get_sregs(struct ehv_vcpu *v, struct ehv_x86_sregs *s)
{
	*s = ((struct mock_vcpu *)v->be)->sregs;
	return 0;
}

static int mock_set_sregs(struct ehv_vcpu *v, const struct ehv_x86_sregs *s)
{
	((struct mock_vcpu *)v->be)->sregs = *s;
	return 0;
}

static int mock_set_cpuid(struct ehv_vcpu *v, const struct ehv_x86_cpuid_entry *e, size_t n)
{
	struct mock_vcpu *m = v->be;
	struct ehv_x86_cpuid_entry *c = malloc((n ? n : 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (n)
		memcpy(c, e, n * sizeof(*c));
	free(m->cpuid);
	m->cpuid = c;
	m->ncpuid = n;
	return 0;
}

static int mock_set_debug(struct ehv_vcpu *v, unsigned flags)
{
	((struct mock_vcpu *)v->be)->debug_flags = flags;
	return 0;
}

static int mock_irq_window(struct ehv_vcpu *v, bool on)
{
	((struct mock_vcpu *)v->be)->irq_window = on;
	return 0;
}

static int mock_inject(struct ehv_vcpu *v, uint32_t vector)
{
	((struct mock_vcpu *)v->be)->injected = (int)vector;
	return 0;
}

/* ------------------------------------------------- VM-level operations */

/* Copies up to max of n items of size sz; returns n. */
static int copy_list(void *out, size_t max, const void *in, size_t n, size_t sz)
{
	size_t k = n < max ? n : max;
	if (k)
		memcpy(out, in, k * sz);
	return (int)n;
}

static int mock_supported_cpuid(struct ehv_hypervisor *hyp, struct ehv_x86_cpuid_entry *out,
				size_t max)
{
	struct mock_hyp *m = hyp->be;
	return copy_list(out, max, m->cpuid, m->ncpuid, sizeof(*out));
}

static int mock_msr_list(struct ehv_hypervisor *hyp, bool feature, uint32_t *out, size_t max)
{
	struct mock_hyp *m = hyp->be;
	if (feature && !m->feature_set)
		return -EOPNOTSUPP;
	return feature ? copy_list(out, max, m->msr_feature, m->nfeature, sizeof(*out))
		       : copy_list(out, max, m->msr_index, m->nindex, sizeof(*out));
}

static int dup_array(void **dst, const void *src, size_t n, size_t sz)
{
	void *c = NULL;
	if (n) {
		c = malloc(n * sz);
		if (!c)
			return -ENOMEM;
		memcpy(c, src, n * sz);
	}
	free(*dst);
	*dst = c;
	return 0;
}

int ehv_mock_set_supported_cpuid(struct ehv_hypervisor *hyp,
				 const struct ehv_x86_cpuid_entry *entries, size_t n)
{
	if (!hyp || hyp->ops != &ehvi_mock_ops || (n && !entries))
		return -EINVAL;
	if (n > EHV_CPUID_MAX_ENTRIES)
		return -E2BIG;
	struct mock_hyp *m = hyp->be;
	int r = dup_array((void **)&m->cpuid, entries, n, sizeof(*entries));
	if (r == 0)
		m->ncpuid = n;
	return r;
}

int ehv_mock_set_msr_lists(struct ehv_hypervisor *hyp, const uint32_t *index, size_t nindex,
			   const uint32_t *feature, size_t nfeature)
{
	if (!hyp || hyp->ops != &ehvi_mock_ops || (nindex && !index) || (nfeature && !feature))
		return -EINVAL;
	if (nindex > EHV_MSR_LIST_MAX || nfeature > EHV_MSR_LIST_MAX)
		return -E2BIG;
	struct mock_hyp *m = hyp->be;
	int r = dup_array((void **)&m->msr_index, index, nindex, sizeof(*index));
	if (r == 0)
		r = dup_array((void **)&m->msr_feature, feature, nfeature, sizeof(*feature));
	if (r < 0)
		return r;
	m->nindex = nindex;
	m->nfeature = nfeature;
	m->feature_set = feature != NULL;
	return 0;
}

static int mock_setup_platform(struct ehv_vm *vm, unsigned flags)
{
	struct mock_vm *m = vm->be;
	pthread_mutex_lock(&m->lock);
	m->st.platform = true;
	m->st.platform_flags = flags;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mock_irq_line(struct ehv_vm *vm, uint32_t gsi, bool level)
{
	struct mock_vm *m = vm->be;
	pthread_mutex_lock(&m->lock);
	m->st.irq_line_calls++;
	m->st.last_gsi = gsi;
	m->st.last_level = level;
	if (gsi < 64) {
		if (level && !m->st.levels[gsi])
			m->st.rising[gsi]++;
		m->st.levels[gsi] = level;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mock_irqfd(struct ehv_vm *vm, int fd, uint32_t gsi, int resample_fd, bool remove)
{
	struct mock_vm *m = vm->be;
	int r = remove ? -ENOENT : 0;
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->st.nirqfds; i++) {
		if (m->st.irqfds[i].fd != fd)
			continue;
		if (!remove) {
			r = -EEXIST;
		} else if (m->st.irqfds[i].gsi == gsi) {
			m->st.irqfds[i] = m->st.irqfds[--m->st.nirqfds];
			r = 0;
		}
		break;
	}
	if (r == 0 && !remove) {
		if (m->st.nirqfds >= EHV_MOCK_MAX_EVENTFDS)
			r = -ENOSPC;
		else
			m->st.irqfds[m->st.nirqfds++] = (typeof(m->st.irqfds[0])){
			    .fd = fd, .resample_fd = resample_fd, .gsi = gsi};
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static bool same_ioevent(const struct ehv_ioeventfd *a, const struct ehv_ioeventfd *b)
{
	bool dm = (a->flags & EHV_IOEVENT_DATAMATCH) != 0;
	return a->addr == b->addr && a->len == b->len && a->fd == b->fd && a->flags == b->flags &&
	       (!dm || a->datamatch == b->datamatch);
}

/* KVM's collision rule for a new ioeventfd: the same bus and address, a
 * length that overlaps (0 matches any), and datamatches that can both
 * match; the eventfd does not matter. */
static bool ioevent_collides(const struct ehv_ioeventfd *a, const struct ehv_ioeventfd *b)
{
	bool adm = (a->flags & EHV_IOEVENT_DATAMATCH) != 0;
	bool bdm = (b->flags & EHV_IOEVENT_DATAMATCH) != 0;
	if ((a->flags & EHV_IOEVENT_PIO) != (b->flags & EHV_IOEVENT_PIO) || a->addr != b->addr)
		return false;
	if (!a->len || !b->len)
		return true;
	return a->len == b->len && (!adm || !bdm || a->datamatch == b->datamatch);
}

static int mock_ioeventfd(struct ehv_vm *vm, const struct ehv_ioeventfd *ev, bool remove)
{
	struct mock_vm *m = vm->be;
	int r = remove ? -ENOENT : 0;
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->st.nioeventfds; i++) {
		if (remove ? !same_ioevent(&m->st.ioeventfds[i], ev)
			   : !ioevent_collides(&m->st.ioeventfds[i], ev))
			continue;
		if (remove) {
			m->st.ioeventfds[i] = m->st.ioeventfds[--m->st.nioeventfds];
			r = 0;
		} else {
			r = -EEXIST;
		}
		break;
	}
	if (r == 0 && !remove) {
		if (m->st.nioeventfds >= EHV_MOCK_MAX_EVENTFDS)
			r = -ENOSPC;
		else
			m->st.ioeventfds[m->st.nioeventfds++] = *ev;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* The mock clock runs at host speed from the last set value. */
static int mock_get_clock(struct ehv_vm *vm, struct ehv_clock *clock)
{
	struct mock_vm *m = vm->be;
	pthread_mutex_lock(&m->lock);
	clock->ns = m->clock_set_ns + (host_ns() - m->clock_set_host);
	clock->flags = EHV_CLOCK_STABLE;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mock_set_clock(struct ehv_vm *vm, const struct ehv_clock *clock)
{
	struct mock_vm *m = vm->be;
	pthread_mutex_lock(&m->lock);
	m->clock_set_ns = clock->ns;
	m->clock_set_host = host_ns();
	m->st.clock = (struct ehv_clock){clock->ns, EHV_CLOCK_STABLE};
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mock_get_state(struct ehv_vm *vm, unsigned chip, struct ehv_state_blob *st)
{
	struct mock_vm *m = vm->be;
	pthread_mutex_lock(&m->lock);
	*st = m->chips[chip];
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mock_set_state(struct ehv_vm *vm, unsigned chip, const struct ehv_state_blob *st)
{
	struct mock_vm *m = vm->be;
	if (st->size != EHV_MOCK_STATE_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	m->chips[chip] = *st;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int ehv_mock_vm_state(struct ehv_vm *vm, struct ehv_mock_vm_state *out)
{
	if (!vm || vm->ops != &ehvi_mock_ops || !out)
		return -EINVAL;
	struct mock_vm *m = vm->be;
	pthread_mutex_lock(&m->lock);
	*out = m->st;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static bool msr_refused(const struct mock_vcpu *m, uint32_t index)
{
	for (size_t i = 0; i < m->nrefused; i++)
		if (m->refused[i] == index)
			return true;
	return false;
}

static struct ehv_msr *msr_slot(struct mock_vcpu *m, uint32_t index, bool create)
{
	for (size_t i = 0; i < m->nmsrs; i++)
		if (m->msrs[i].index == index)
			return &m->msrs[i];
	if (!create || m->nmsrs >= MOCK_MAX_MSRS)
		return NULL;
	m->msrs[m->nmsrs] = (struct ehv_msr){index, 0};
	return &m->msrs[m->nmsrs++];
}

static int mock_msrs(struct ehv_vcpu *v, struct ehv_msr *msrs, size_t n, bool set)
{
	struct mock_vcpu *m = v->be;
	size_t i;
	for (i = 0; i < n; i++) {
		if (msr_refused(m, msrs[i].index))
			break;
		struct ehv_msr *s = msr_slot(m, msrs[i].index, set);
		if (set) {
			if (!s)
				break; /* table full: refused, as an unknown MSR */
			s->value = msrs[i].value;
		} else {
			msrs[i].value = s ? s->value : 0;
		}
	}
	return (int)i;
}

static int mock_xcr0(struct ehv_vcpu *v, uint64_t *xcr0, bool set)
{
	struct mock_vcpu *m = v->be;
	if (set)
		m->xcr0 = *xcr0;
	else
		*xcr0 = m->xcr0 ? m->xcr0 : 1;
	return 0;
}

int ehv_mock_vcpu_refuse_msr(struct ehv_vcpu *vcpu, uint32_t index)
{
	if (!vcpu || vcpu->ops != &ehvi_mock_ops)
		return -EINVAL;
	struct mock_vcpu *m = vcpu->be;
	if (m->nrefused >= MOCK_MAX_REFUSED)
		return -ENOSPC;
	m->refused[m->nrefused++] = index;
	return 0;
}

int ehv_mock_vcpu_cpuid(struct ehv_vcpu *vcpu, struct ehv_x86_cpuid_entry *out, size_t max)
{
	if (!vcpu || vcpu->ops != &ehvi_mock_ops || (max && !out))
		return -EINVAL;
	struct mock_vcpu *m = vcpu->be;
	return copy_list(out, max, m->cpuid, m->ncpuid, sizeof(*out));
}

static int mock_get_mp_state(struct ehv_vcpu *v, enum ehv_mp_state *state)
{
	*state = ((struct mock_vcpu *)v->be)->mp_state;
	return 0;
}

static int mock_set_mp_state(struct ehv_vcpu *v, enum ehv_mp_state state)
{
	((struct mock_vcpu *)v->be)->mp_state = state;
	return 0;
}

static int mock_get_lapic(struct ehv_vcpu *v, struct ehv_lapic_state *lapic)
{
	*lapic = ((struct mock_vcpu *)v->be)->lapic;
	return 0;
}

static int mock_set_lapic(struct ehv_vcpu *v, const struct ehv_lapic_state *lapic)
{
	((struct mock_vcpu *)v->be)->lapic = *lapic;
	return 0;
}

/* -------------------------------------------------------------- scripting */

static bool step_valid(const struct ehv_mock_step *s)
{
	const struct ehv_exit *e = &s->exit;
	if (s->kind != EHV_MOCK_EXIT)
		return s->kind == EHV_MOCK_SPIN || s->kind == EHV_MOCK_FAIL;
	if ((unsigned)e->reason >= EHV_EXIT_REASON_MAX)
		return false;
	switch (e->reason) {
	case EHV_EXIT_IO_READ: {
		uint32_t c = e->u.io_read.count ? e->u.io_read.count : 1;
		return e->u.io_read.width >= 1 && e->u.io_read.width <= 8 &&
		       (uint64_t)c * e->u.io_read.width <= MOCK_BUF;
	}
	case EHV_EXIT_IO_WRITE: {
		uint32_t c = e->u.io_write.count ? e->u.io_write.count : 1;
		return e->u.io_write.width >= 1 && e->u.io_write.width <= 8 &&
		       (uint64_t)c * e->u.io_write.width <= MOCK_BUF;
	}
	case EHV_EXIT_MMIO_READ:
		return e->u.mmio_read.width >= 1 && e->u.mmio_read.width <= 8;
	case EHV_EXIT_MMIO_WRITE:
		return e->u.mmio_write.width >= 1 && e->u.mmio_write.width <= 8;
	default:
		return true;
	}
}

int ehv_mock_vcpu_script(struct ehv_vcpu *vcpu, const struct ehv_mock_step *steps, size_t n)
{
	if (!vcpu || vcpu->ops != &ehvi_mock_ops || (n && !steps) || n > (1u << 20))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!step_valid(&steps[i]))
			return -EINVAL;
	struct mock_vcpu *m = vcpu->be;
	struct ehv_mock_step *copy = NULL;
	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, steps, n * sizeof(*copy));
	}
	if (!m->records) {
		m->records = calloc(MOCK_MAX_RECORDS, sizeof(*m->records));
		if (!m->records) {
			free(copy);
			return -ENOMEM;
		}
	}
	free(m->steps);
	m->steps = copy;
	m->nsteps = n;
	m->cur = 0;
	m->rep_done = 0;
	m->nrec = 0;
	m->stats.script_done = n == 0;
	return 0;
}

int ehv_mock_vcpu_records(struct ehv_vcpu *vcpu, struct ehv_mock_record *out, size_t max)
{
	if (!vcpu || vcpu->ops != &ehvi_mock_ops || (max && !out))
		return -EINVAL;
	struct mock_vcpu *m = vcpu->be;
	size_t n = m->nrec < max ? m->nrec : max;
	if (n)
		memcpy(out, m->records, n * sizeof(*out));
	return (int)m->nrec;
}

int ehv_mock_vcpu_stats(struct ehv_vcpu *vcpu, struct ehv_mock_stats *out)
{
	if (!vcpu || vcpu->ops != &ehvi_mock_ops || !out)
		return -EINVAL;
	*out = ((struct mock_vcpu *)vcpu->be)->stats;
	return 0;
}

/* ------------------------------------------------------ whole state */

struct mock_msr_rec {
	uint32_t index, zero;
	uint64_t value;
};

static int mock_save_state(struct ehv_vcpu *v, struct ehvi_sw *w)
{
	struct mock_vcpu *m = v->be;
	ehvi_sw_section(w, "CPID", 1, m->cpuid, m->ncpuid * sizeof(*m->cpuid));
	ehvi_sw_section(w, "REGS", 1, &m->regs, sizeof(m->regs));
	ehvi_sw_section(w, "SREG", 1, &m->sregs, sizeof(m->sregs));
	uint64_t xcr0 = m->xcr0 ? m->xcr0 : 1;
	ehvi_sw_section(w, "XCR0", 1, &xcr0, sizeof(xcr0));
	size_t bytes = 4 + m->nmsrs * sizeof(struct mock_msr_rec);
	uint8_t *msrs = calloc(1, bytes);
	if (!msrs)
		return -ENOMEM;
	uint32_t n = (uint32_t)m->nmsrs;
	memcpy(msrs, &n, 4);
	for (size_t i = 0; i < m->nmsrs; i++) {
		struct mock_msr_rec rec = {m->msrs[i].index, 0, m->msrs[i].value};
		memcpy(msrs + 4 + i * sizeof(rec), &rec, sizeof(rec));
	}
	ehvi_sw_section(w, "MSRS", 1, msrs, bytes);
	free(msrs);
	uint32_t mp = (uint32_t)m->mp_state;
	ehvi_sw_section(w, "MPST", 1, &mp, sizeof(mp));
	if (atomic_load(&v->vm->platform))
		ehvi_sw_section(w, "LAPC", 1, &m->lapic, sizeof(m->lapic));
	return 0;
}

/* A fixed-size section: present, version 1, the structure's size. */
static const struct ehvi_section *need(const struct ehvi_sections *secs, const char tag[4],
				       size_t size, int *r)
{
	const struct ehvi_section *s = ehvi_find(secs, tag);
	if (*r == 0 && (!s || s->version != 1 || (size && s->len != size)))
		*r = ehvi_refuse(secs, -EINVAL, "section %.4s %s", tag,
				 s ? "has the wrong version or size" : "is missing");
	return s;
}

static int mock_restore_state(struct ehv_vcpu *v, const struct ehvi_sections *secs)
{
	struct mock_vcpu *m = v->be;
	struct mock_vm *vm = m->vm;
	int r = 0;
	const struct ehvi_section *cpid = need(secs, "CPID", 0, &r);
	const struct ehvi_section *regs = need(secs, "REGS", sizeof(m->regs), &r);
	const struct ehvi_section *sregs = need(secs, "SREG", sizeof(m->sregs), &r);
	const struct ehvi_section *xcr = need(secs, "XCR0", 8, &r);
	const struct ehvi_section *msrs = need(secs, "MSRS", 0, &r);
	const struct ehvi_section *mp = need(secs, "MPST", 4, &r);
	bool platform = atomic_load(&v->vm->platform);
	const struct ehvi_section *lapic = ehvi_find(secs, "LAPC");
	unsigned known = 6 + (lapic != NULL) + (ehvi_find(secs, "VCID") != NULL);
	if (r < 0)
		return r;
	if (cpid->len % sizeof(struct ehv_x86_cpuid_entry) ||
	    cpid->len / sizeof(struct ehv_x86_cpuid_entry) > EHV_CPUID_MAX_ENTRIES)
		return ehvi_refuse(secs, -EINVAL, "section CPID has a bad size");
	if ((lapic != NULL) != platform || (lapic && lapic->len != sizeof(m->lapic)))
		return ehvi_refuse(secs, -EINVAL, "the LAPIC section does not match the platform");
	if (known != secs->n)
		return ehvi_refuse(secs, -EINVAL, "unknown sections in a vCPU blob");
	uint32_t n, mpv;
	uint64_t xcr0;
	memcpy(&xcr0, xcr->data, 8);
	memcpy(&mpv, mp->data, 4);
	if (msrs->len < 4 || (memcpy(&n, msrs->data, 4), n > MOCK_MAX_MSRS) ||
	    msrs->len != 4 + n * sizeof(struct mock_msr_rec))
		return ehvi_refuse(secs, -EINVAL, "section MSRS has a bad size");
	if (mpv >= EHV_MP_MAX || !(xcr0 & 1))
		return ehvi_refuse(secs, -EINVAL, "a bad MP state or XCR0");
	if (vm->xcr0_supported && (xcr0 & ~vm->xcr0_supported))
		return ehvi_refuse(
		    secs, -ENOTSUP, "XCR0 0x%llx has features the host lacks (supported 0x%llx)",
		    (unsigned long long)xcr0, (unsigned long long)vm->xcr0_supported);
	struct ehv_msr *list = calloc(n ? n : 1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct mock_msr_rec rec;
		memcpy(&rec, msrs->data + 4 + i * sizeof(rec), sizeof(rec));
		list[i] = (struct ehv_msr){rec.index, rec.value};
		bool listed = vm->nindex == 0;
		for (size_t j = 0; j < vm->nindex && !listed; j++)
			listed = vm->msr_index[j] == rec.index;
		if (!listed || msr_refused(m, rec.index)) {
			free(list);
			return ehvi_refuse(secs, -ENOTSUP, "MSR 0x%x not supported by the host",
					   rec.index);
		}
	}
	/* checked: apply */
	r = mock_set_cpuid(v, (const struct ehv_x86_cpuid_entry *)cpid->data,
			   cpid->len / sizeof(struct ehv_x86_cpuid_entry));
	if (r == 0) {
		memcpy(&m->regs, regs->data, sizeof(m->regs));
		memcpy(&m->sregs, sregs->data, sizeof(m->sregs));
		m->xcr0 = xcr0;
		m->nmsrs = 0;
		r = mock_msrs(v, list, n, true) == (int)n ? 0 : -ENOTSUP;
		m->mp_state = (enum ehv_mp_state)mpv;
		if (lapic)
			memcpy(&m->lapic, lapic->data, sizeof(m->lapic));
	}
	free(list);
	return r;
}

const struct ehvi_ops ehvi_mock_ops = {
    .name = "mock",
    .hyp_open = mock_hyp_open,
    .hyp_close = mock_hyp_close,
    .hyp_check_cap = mock_hyp_check_cap,
    .vm_create = mock_vm_create,
    .vm_destroy = mock_vm_destroy,
    .vm_handle = mock_vm_handle,
    .vm_set_memory = mock_vm_set_memory,
    .vm_enable_cap = mock_vm_enable_cap,
    .vm_check_cap = mock_vm_check_cap,
    .vm_trap_sysregs = mock_vm_trap_sysregs,
    .vm_trap_hypercalls = mock_vm_trap_hypercalls,
    .vcpu_create = mock_vcpu_create,
    .vcpu_destroy = mock_vcpu_destroy,
    .vcpu_handle = mock_vcpu_handle,
    .vcpu_run = mock_vcpu_run,
    .vcpu_enable_cap = mock_vcpu_enable_cap,
    .vcpu_on_suspend = mock_vcpu_on_suspend,
    .vcpu_get_regs = mock_get_regs,
    .vcpu_set_regs = mock_set_regs,
    .vcpu_get_sregs = mock_get_sregs,
    .vcpu_set_sregs = mock_set_sregs,
    .vcpu_set_cpuid = mock_set_cpuid,
    .vcpu_set_debug = mock_set_debug,
    .vcpu_request_irq_window = mock_irq_window,
    .vcpu_inject_interrupt = mock_inject,
    .hyp_supported_cpuid = mock_supported_cpuid,
    .hyp_msr_list = mock_msr_list,
    .vm_setup_platform = mock_setup_platform,
    .vm_irq_line = mock_irq_line,
    .vm_irqfd = mock_irqfd,
    .vm_ioeventfd = mock_ioeventfd,
    .vm_get_clock = mock_get_clock,
    .vm_set_clock = mock_set_clock,
    .vm_get_state = mock_get_state,
    .vm_set_state = mock_set_state,
    .vcpu_msrs = mock_msrs,
    .vcpu_xcr0 = mock_xcr0,
    .vcpu_get_mp_state = mock_get_mp_state,
    .vcpu_set_mp_state = mock_set_mp_state,
    .vcpu_get_lapic = mock_get_lapic,
    .vcpu_set_lapic = mock_set_lapic,
    .vcpu_save_state = mock_save_state,
    .vcpu_restore_state = mock_restore_state,
    .vm_get_dirty_log = mock_get_dirty_log,
};
