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

struct mock_hyp {
	struct mock_caps caps;
};

struct mock_slot {
	bool used;
	uint64_t gpa, size;
};

struct mock_vm {
	struct mock_caps caps;
	pthread_mutex_t lock;
	struct mock_slot slots[EHV_MAX_MEM_SLOTS];
	uint64_t ids[MOCK_MAX_IDS / 64];
	uint64_t hypercall_mask;
	size_t sysreg_traps;
};

struct mock_vcpu {
	uint8_t imm;
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
	size_t ncpuid;
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
	free(hyp->be);
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

static int mock_vm_create(struct ehv_hypervisor *hyp, struct ehv_vm *vm)
{
	struct mock_vm *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->caps = ((struct mock_hyp *)hyp->be)->caps;
	pthread_mutex_init(&m->lock, NULL);
	vm->be = m;
	return 0;
}

static void mock_vm_destroy(struct ehv_vm *vm)
{
	struct mock_vm *m = vm->be;
	pthread_mutex_destroy(&m->lock);
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
	(void)hva;
	(void)flags;
	struct mock_vm *m = vm->be;
	int r = 0;
	pthread_mutex_lock(&m->lock);
	if (size == 0) {
		m->slots[slot].used = false;
		goto out;
	}
	for (unsigned i = 0; i < EHV_MAX_MEM_SLOTS; i++) {
		struct mock_slot *s = &m->slots[i];
		if (i != slot && s->used && gpa < s->gpa + s->size && s->gpa < gpa + size) {
			r = -EEXIST;
			goto out;
		}
	}
	m->slots[slot] = (struct mock_slot){true, gpa, size};
out:
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
	pthread_mutex_unlock(&vm->lock);
	if (dup) {
		free(m);
		return -EEXIST;
	}
	m->vm = vm;
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
	(void)e;
	((struct mock_vcpu *)v->be)->ncpuid = n;
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
};
