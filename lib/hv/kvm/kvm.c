/* lib/hv/kvm/kvm.c - the KVM backend of the vCPU layer, on the KVM binding (layer 1). */
#include "kvm_backend.h"

#include <stdlib.h>
#include <string.h>

struct kvm_hyp {
	struct ekvm_sys *sys;
};

struct kvm_vm_be {
	struct ekvm_vm *vm;
};

struct kvm_vcpu_be {
	struct ekvm_vcpu *vcpu;
	struct kvm_run *run;
	struct ekvm_exit kexit;
};

/* ------------------------------------------------------------ hypervisor */

static int kvm_hyp_open(struct ehv_hypervisor *hyp, const struct ehv_hypervisor_options *opts)
{
	struct kvm_hyp *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	int r = ekvm_sys_open_path(opts->device ? opts->device : "/dev/kvm", &k->sys);
	if (r < 0) {
		free(k);
		return r;
	}
	hyp->be = k;
	return 0;
}

static void kvm_hyp_close(struct ehv_hypervisor *hyp)
{
	struct kvm_hyp *k = hyp->be;
	ekvm_sys_close(k->sys);
	free(k);
}

static int kvm_hyp_check_cap(struct ehv_hypervisor *hyp, long cap)
{
	return ekvm_sys_check_extension(((struct kvm_hyp *)hyp->be)->sys, cap);
}

/* -------------------------------------------------------------------- VM */

static int kvm_vm_create(struct ehv_hypervisor *hyp, struct ehv_vm *vm)
{
	struct kvm_vm_be *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	int r = ekvm_vm_create(((struct kvm_hyp *)hyp->be)->sys, 0, &b->vm);
	if (r < 0) {
		free(b);
		return r;
	}
	/* Real mode on VMX without unrestricted guest needs a TSS: the address
	 * QEMU uses, just below the BIOS. A no-op on SVM; errors do not matter. */
	(void)ekvm_vm_set_tss_addr(b->vm, 0xfffbd000);
	vm->be = b;
	return 0;
}

static void kvm_vm_destroy(struct ehv_vm *vm)
{
	struct kvm_vm_be *b = vm->be;
	ekvm_vm_destroy(b->vm);
	free(b);
}

static void *kvm_vm_handle(struct ehv_vm *vm)
{
	return ((struct kvm_vm_be *)vm->be)->vm;
}

static struct ekvm_vm *kvm_of(struct ehv_vm *vm)
{
	return ((struct kvm_vm_be *)vm->be)->vm;
}

static int kvm_vm_set_memory(struct ehv_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size,
			     void *hva, unsigned flags)
{
	uint32_t kf = 0;
	if (flags & EHV_MEM_READONLY)
		kf |= KVM_MEM_READONLY;
	if (flags & EHV_MEM_LOG_DIRTY)
		kf |= KVM_MEM_LOG_DIRTY_PAGES;
	if (size == 0)
		return ekvm_vm_remove_memory(kvm_of(vm), slot);
	return ekvm_vm_set_memory(kvm_of(vm), slot, kf, gpa, size, hva);
}

static int kvm_vm_enable_cap(struct ehv_vm *vm, uint32_t cap, const uint64_t args[4])
{
	struct kvm_enable_cap c;
	memset(&c, 0, sizeof(c));
	c.cap = cap;
	memcpy(c.args, args, sizeof(c.args));
	return ekvm_vm_enable_cap(kvm_of(vm), &c);
}

static int kvm_vm_check_cap(struct ehv_vm *vm, long cap)
{
	return ekvm_vm_check_extension(kvm_of(vm), cap);
}

static int kvm_vm_trap_sysregs(struct ehv_vm *vm, const struct ehv_sysreg_trap *traps, size_t n,
			       unsigned flags)
{
	struct ekvm_vm *k = kvm_of(vm);
	if (ekvm_vm_check_extension(k, KVM_CAP_X86_USER_SPACE_MSR) <= 0 ||
	    ekvm_vm_check_extension(k, KVM_CAP_X86_MSR_FILTER) <= 0)
		return -EOPNOTSUPP;
	uint32_t mask = (n ? KVM_MSR_EXIT_REASON_FILTER : 0) |
			((flags & EHV_TRAP_UNKNOWN_SYSREGS) ? KVM_MSR_EXIT_REASON_UNKNOWN : 0);
	struct kvm_msr_filter f;
	memset(&f, 0, sizeof(f));
	f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		/* a zero bit denies the access, which exits with the FILTER reason */
		uint8_t *bitmap = calloc((traps[i].count + 7) / 8, 1);
		if (!bitmap) {
			r = -ENOMEM;
			goto out;
		}
		f.ranges[i].flags = ((traps[i].access & EHV_TRAP_READ) ? KVM_MSR_FILTER_READ : 0) |
				    ((traps[i].access & EHV_TRAP_WRITE) ? KVM_MSR_FILTER_WRITE : 0);
		f.ranges[i].nmsrs = traps[i].count;
		f.ranges[i].base = traps[i].first;
		f.ranges[i].bitmap = bitmap;
	}
	r = ekvm_vm_enable_user_space_msr(k, mask);
	if (r < 0)
		goto out;
	r = ekvm_vm_set_msr_filter(k, &f);
out:
	for (size_t i = 0; i < n; i++)
		free(f.ranges[i].bitmap);
	return r;
}

static int kvm_vm_trap_hypercalls(struct ehv_vm *vm, uint64_t nr_mask)
{
	struct ekvm_vm *k = kvm_of(vm);
	if (ekvm_vm_check_extension(k, KVM_CAP_EXIT_HYPERCALL) <= 0)
		return -EOPNOTSUPP;
	return ekvm_vm_enable_hypercall_exit(k, nr_mask);
}

/* ------------------------------------------------------------------ vCPU */

static int kvm_vcpu_create(struct ehv_vcpu *v)
{
	struct kvm_vcpu_be *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	int r = ekvm_vcpu_create(kvm_of(v->vm), v->id, &b->vcpu);
	if (r < 0) {
		free(b);
		return r;
	}
	b->run = ekvm_vcpu_run_area(b->vcpu);
	v->be = b;
	v->imm = &b->run->immediate_exit;
	return 0;
}

static void kvm_vcpu_destroy(struct ehv_vcpu *v)
{
	struct kvm_vcpu_be *b = v->be;
	ekvm_vcpu_destroy(b->vcpu);
	free(b);
}

static void *kvm_vcpu_handle(struct ehv_vcpu *v)
{
	return ((struct kvm_vcpu_be *)v->be)->vcpu;
}

static inline struct ekvm_vcpu *kv(struct ehv_vcpu *v)
{
	return ((struct kvm_vcpu_be *)v->be)->vcpu;
}

static int kvm_vcpu_run(struct ehv_vcpu *v, struct ehv_exit *e)
{
	struct kvm_vcpu_be *b = v->be;
	v->pend.kind = EHVI_PEND_NONE;
	int r = ekvm_vcpu_run(b->vcpu, &b->kexit);
	if (r < 0)
		return r;
	r = ehvi_kvm_map_exit(&b->kexit, e, &v->pend);
	if (r < 0) {
		memset(&v->pend, 0, sizeof(v->pend));
		v->broken = true; /* the exit cannot be completed: never re-enter */
		return r;
	}
	if (b->kexit.kind == EKVM_EXIT_UNKNOWN) {
		e->u.unsupported.ndata = 1;
		e->u.unsupported.data[0] = b->run->hw.hardware_exit_reason;
	}
	return 0;
}

static int kvm_vcpu_enable_cap(struct ehv_vcpu *v, uint32_t cap, const uint64_t args[4])
{
	struct kvm_enable_cap c;
	memset(&c, 0, sizeof(c));
	c.cap = cap;
	memcpy(c.args, args, sizeof(c.args));
	return ekvm_vcpu_enable_cap(kv(v), &c);
}

static int kvm_vcpu_on_suspend(struct ehv_vcpu *v)
{
	int r = ekvm_vcpu_kvmclock_ctrl(kv(v));
	/* -EINVAL: the guest has no kvmclock, nothing to tell */
	return r == -EINVAL ? 0 : r;
}

static int kvm_get_regs(struct ehv_vcpu *v, struct ehv_x86_regs *o)
{
	struct kvm_regs r;
	int ret = ekvm_vcpu_get_regs(kv(v), &r);
	if (ret < 0)
		return ret;
	*o =
	    (struct ehv_x86_regs){r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8,
				  r.r9,	 r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags};
	return 0;
}

static int kvm_set_regs(struct ehv_vcpu *v, const struct ehv_x86_regs *i)
{
	struct kvm_regs r = {
	    .rax = i->rax,
	    .rbx = i->rbx,
	    .rcx = i->rcx,
	    .rdx = i->rdx,
	    .rsi = i->rsi,
	    .rdi = i->rdi,
	    .rsp = i->rsp,
	    .rbp = i->rbp,
	    .r8 = i->r8,
	    .r9 = i->r9,
	    .r10 = i->r10,
	    .r11 = i->r11,
	    .r12 = i->r12,
	    .r13 = i->r13,
	    .r14 = i->r14,
	    .r15 = i->r15,
	    .rip = i->rip,
	    .rflags = i->rflags,
	};
	return ekvm_vcpu_set_regs(kv(v), &r);
}

static void seg_out(struct ehv_x86_segment *o, const struct kvm_segment *s)
{
	*o = (struct ehv_x86_segment){.base = s->base,
				      .limit = s->limit,
				      .selector = s->selector,
				      .type = s->type,
				      .present = s->present,
				      .dpl = s->dpl,
				      .db = s->db,
				      .s = s->s,
				      .l = s->l,
				      .g = s->g,
				      .avl = s->avl,
				      .unusable = s->unusable};
}

static void seg_in(struct kvm_segment *s, const struct ehv_x86_segment *i)
{
	memset(s, 0, sizeof(*s));
	s->base = i->base;
	s->limit = i->limit;
	s->selector = i->selector;
	s->type = i->type;
	s->present = i->present;
	s->dpl = i->dpl;
	s->db = i->db;
	s->s = i->s;
	s->l = i->l;
	s->g = i->g;
	s->avl = i->avl;
	s->unusable = i->unusable;
}

static int kvm_get_sregs(struct ehv_vcpu *v, struct ehv_x86_sregs *o)
{
	struct kvm_sregs s;
	int r = ekvm_vcpu_get_sregs(kv(v), &s);
	if (r < 0)
		return r;
	seg_out(&o->cs, &s.cs);
	seg_out(&o->ds, &s.ds);
	seg_out(&o->es, &s.es);
	seg_out(&o->fs, &s.fs);
	seg_out(&o->gs, &s.gs);
	seg_out(&o->ss, &s.ss);
	seg_out(&o->tr, &s.tr);
	seg_out(&o->ldt, &s.ldt);
	o->gdt = (struct ehv_x86_dtable){s.gdt.base, s.gdt.limit};
	o->idt = (struct ehv_x86_dtable){s.idt.base, s.idt.limit};
	o->cr0 = s.cr0;
	o->cr2 = s.cr2;
	o->cr3 = s.cr3;
	o->cr4 = s.cr4;
	o->cr8 = s.cr8;
	o->efer = s.efer;
	o->apic_base = s.apic_base;
	return 0;
}

static int kvm_set_sregs(struct ehv_vcpu *v, const struct ehv_x86_sregs *i)
{
	struct kvm_sregs s;
	int r = ekvm_vcpu_get_sregs(kv(v), &s); /* keeps interrupt_bitmap */
	if (r < 0)
		return r;
	seg_in(&s.cs, &i->cs);
	seg_in(&s.ds, &i->ds);
	seg_in(&s.es, &i->es);
	seg_in(&s.fs, &i->fs);
	seg_in(&s.gs, &i->gs);
	seg_in(&s.ss, &i->ss);
	seg_in(&s.tr, &i->tr);
	seg_in(&s.ldt, &i->ldt);
	s.gdt.base = i->gdt.base;
	s.gdt.limit = i->gdt.limit;
	s.idt.base = i->idt.base;
	s.idt.limit = i->idt.limit;
	s.cr0 = i->cr0;
	s.cr2 = i->cr2;
	s.cr3 = i->cr3;
	s.cr4 = i->cr4;
	s.cr8 = i->cr8;
	s.efer = i->efer;
	s.apic_base = i->apic_base;
	return ekvm_vcpu_set_sregs(kv(v), &s);
}

static int kvm_set_cpuid(struct ehv_vcpu *v, const struct ehv_x86_cpuid_entry *e, size_t n)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		c->entries[i].function = e[i].function;
		c->entries[i].index = e[i].index;
		c->entries[i].flags = (e[i].flags & EHV_CPUID_SIGNIFICANT_INDEX)
					  ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX
					  : 0;
		c->entries[i].eax = e[i].eax;
		c->entries[i].ebx = e[i].ebx;
		c->entries[i].ecx = e[i].ecx;
		c->entries[i].edx = e[i].edx;
	}
	int r = ekvm_vcpu_set_cpuid2(kv(v), c);
	free(c);
	return r;
}

static int kvm_set_debug(struct ehv_vcpu *v, unsigned flags)
{
	struct kvm_guest_debug d;
	memset(&d, 0, sizeof(d));
	if (flags) {
		d.control = KVM_GUESTDBG_ENABLE;
		if (flags & EHV_DEBUG_SINGLESTEP)
			d.control |= KVM_GUESTDBG_SINGLESTEP;
		if (flags & EHV_DEBUG_SW_BP)
			d.control |= KVM_GUESTDBG_USE_SW_BP;
	}
	return ekvm_vcpu_set_guest_debug(kv(v), &d);
}

static int kvm_irq_window(struct ehv_vcpu *v, bool on)
{
	ekvm_vcpu_set_request_interrupt_window(kv(v), on);
	return 0;
}

static int kvm_inject(struct ehv_vcpu *v, uint32_t vector)
{
	return ekvm_vcpu_interrupt(kv(v), vector);
}

const struct ehvi_ops ehvi_kvm_ops = {
    .name = "kvm",
    .hyp_open = kvm_hyp_open,
    .hyp_close = kvm_hyp_close,
    .hyp_check_cap = kvm_hyp_check_cap,
    .vm_create = kvm_vm_create,
    .vm_destroy = kvm_vm_destroy,
    .vm_handle = kvm_vm_handle,
    .vm_set_memory = kvm_vm_set_memory,
    .vm_enable_cap = kvm_vm_enable_cap,
    .vm_check_cap = kvm_vm_check_cap,
    .vm_trap_sysregs = kvm_vm_trap_sysregs,
    .vm_trap_hypercalls = kvm_vm_trap_hypercalls,
    .vcpu_create = kvm_vcpu_create,
    .vcpu_destroy = kvm_vcpu_destroy,
    .vcpu_handle = kvm_vcpu_handle,
    .vcpu_run = kvm_vcpu_run,
    .vcpu_enable_cap = kvm_vcpu_enable_cap,
    .vcpu_on_suspend = kvm_vcpu_on_suspend,
    .vcpu_get_regs = kvm_get_regs,
    .vcpu_set_regs = kvm_set_regs,
    .vcpu_get_sregs = kvm_get_sregs,
    .vcpu_set_sregs = kvm_set_sregs,
    .vcpu_set_cpuid = kvm_set_cpuid,
    .vcpu_set_debug = kvm_set_debug,
    .vcpu_request_irq_window = kvm_irq_window,
    .vcpu_inject_interrupt = kvm_inject,
};
