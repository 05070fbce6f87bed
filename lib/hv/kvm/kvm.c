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
	/* The one owner of the identity map and the TSS (see hv.h, "x86
	 * reserved pages"): real mode on VMX without unrestricted guest needs
	 * both; the addresses QEMU uses, just below the BIOS. The identity map
	 * must come before any vCPU; SVM and unrestricted guest accept and
	 * ignore them. Kernels without the identity-map ioctl answer -ENOTTY
	 * or -EINVAL: then KVM keeps its default, the same page. */
	r = ekvm_vm_set_identity_map_addr(b->vm, EHV_X86_IDENTITY_MAP_GPA);
	if (r == -ENOTTY || r == -EINVAL)
		r = 0;
	if (r == 0)
		r = ekvm_vm_set_tss_addr(b->vm, EHV_X86_TSS_GPA);
	if (r < 0) {
		ekvm_vm_destroy(b->vm);
		free(b);
		return r;
	}
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
	int r;
	/* An UNINITIALIZED vCPU (an AP waiting for INIT/SIPI) blocks in
	 * KVM_RUN and returns EAGAIN once the SIPI made it runnable: enter
	 * again (a kick in between makes that run return Canceled). */
	do
		r = ekvm_vcpu_run(b->vcpu, &b->kexit);
	while (r == -EAGAIN);
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

/* ------------------------------------------------- VM-level operations */

static int kvm_supported_cpuid(struct ehv_hypervisor *hyp, struct ehv_x86_cpuid_entry *out,
			       size_t max)
{
	struct kvm_cpuid2 *c;
	int r = ekvm_sys_supported_cpuid(((struct kvm_hyp *)hyp->be)->sys, &c);
	if (r < 0)
		return r;
	size_t n = c->nent < EHV_CPUID_MAX_ENTRIES ? c->nent : EHV_CPUID_MAX_ENTRIES;
	for (size_t i = 0; i < n && i < max; i++) {
		const struct kvm_cpuid_entry2 *k = &c->entries[i];
		out[i] = (struct ehv_x86_cpuid_entry){
		    .function = k->function,
		    .index = k->index,
		    .flags = (k->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)
				 ? EHV_CPUID_SIGNIFICANT_INDEX
				 : 0,
		    .eax = k->eax,
		    .ebx = k->ebx,
		    .ecx = k->ecx,
		    .edx = k->edx,
		};
	}
	free(c);
	return (int)n;
}

static int kvm_msr_list(struct ehv_hypervisor *hyp, bool feature, uint32_t *out, size_t max)
{
	struct ekvm_sys *sys = ((struct kvm_hyp *)hyp->be)->sys;
	struct kvm_msr_list *l;
	if (feature && ekvm_sys_check_extension(sys, KVM_CAP_GET_MSR_FEATURES) <= 0)
		return -EOPNOTSUPP;
	int r =
	    feature ? ekvm_sys_msr_feature_index_list(sys, &l) : ekvm_sys_msr_index_list(sys, &l);
	if (r < 0)
		return r;
	size_t n = l->nmsrs < EHV_MSR_LIST_MAX ? l->nmsrs : EHV_MSR_LIST_MAX;
	for (size_t i = 0; i < n && i < max; i++)
		out[i] = l->indices[i];
	free(l);
	return (int)n;
}

static int kvm_setup_platform(struct ehv_vm *vm, unsigned flags)
{
	int r = ekvm_vm_create_irqchip(kvm_of(vm));
	if (r == 0 && (flags & EHV_PLATFORM_PIT))
		r = ekvm_vm_create_pit2(kvm_of(vm), (flags & EHV_PLATFORM_PIT_SPEAKER_DUMMY)
							? KVM_PIT_SPEAKER_DUMMY
							: 0);
	return r;
}

static int kvm_irq_line(struct ehv_vm *vm, uint32_t gsi, bool level)
{
	return ekvm_vm_irq_line(kvm_of(vm), gsi, level ? 1 : 0);
}

static int kvm_irqfd(struct ehv_vm *vm, int fd, uint32_t gsi, int resample_fd, bool remove)
{
	if (remove)
		return ekvm_vm_irqfd_remove(kvm_of(vm), fd, gsi);
	int r = ekvm_vm_irqfd(kvm_of(vm), fd, gsi, resample_fd);
	return r == -EBUSY ? -EEXIST : r; /* KVM: "this eventfd is already an irqfd" */
}

static int kvm_ioeventfd(struct ehv_vm *vm, const struct ehv_ioeventfd *ev, bool remove)
{
	struct ekvm_ioeventfd k = {
	    .addr = ev->addr,
	    .len = ev->len,
	    .fd = ev->fd,
	    .pio = (ev->flags & EHV_IOEVENT_PIO) != 0,
	    .has_datamatch = (ev->flags & EHV_IOEVENT_DATAMATCH) != 0,
	    .datamatch = ev->datamatch,
	};
	return remove ? ekvm_vm_ioeventfd_remove(kvm_of(vm), &k)
		      : ekvm_vm_ioeventfd(kvm_of(vm), &k);
}

static int kvm_get_clock(struct ehv_vm *vm, struct ehv_clock *clock)
{
	struct kvm_clock_data d;
	memset(&d, 0, sizeof(d));
	int r = ekvm_vm_get_clock(kvm_of(vm), &d);
	if (r < 0)
		return r;
	clock->ns = d.clock;
	clock->flags = (d.flags & KVM_CLOCK_TSC_STABLE) ? EHV_CLOCK_STABLE : 0;
	return 0;
}

static int kvm_set_clock(struct ehv_vm *vm, const struct ehv_clock *clock)
{
	struct kvm_clock_data d;
	memset(&d, 0, sizeof(d));
	d.clock = clock->ns;
	return ekvm_vm_set_clock(kvm_of(vm), &d);
}

/* KVM's layout size of each state blob (the PIT is EHV_IRQCHIP_MAX). */
static size_t kvm_state_size(unsigned chip)
{
	switch (chip) {
	case EHV_IRQCHIP_PIC_MASTER:
	case EHV_IRQCHIP_PIC_SLAVE:
		return sizeof(struct kvm_pic_state);
	case EHV_IRQCHIP_IOAPIC:
		return sizeof(struct kvm_ioapic_state);
	default:
		return sizeof(struct kvm_pit_state2);
	}
}

_Static_assert(sizeof(struct kvm_pit_state2) <= EHV_STATE_BLOB_MAX, "PIT state blob");
_Static_assert(sizeof(((struct kvm_irqchip *)0)->chip) <= EHV_STATE_BLOB_MAX, "irqchip blob");
_Static_assert(KVM_IRQCHIP_PIC_MASTER == EHV_IRQCHIP_PIC_MASTER &&
		   KVM_IRQCHIP_PIC_SLAVE == EHV_IRQCHIP_PIC_SLAVE &&
		   KVM_IRQCHIP_IOAPIC == EHV_IRQCHIP_IOAPIC,
	       "irqchip ids");

static int kvm_get_state(struct ehv_vm *vm, unsigned chip, struct ehv_state_blob *st)
{
	size_t size = kvm_state_size(chip);
	int r;
	if (chip == EHV_IRQCHIP_MAX) {
		struct kvm_pit_state2 p;
		memset(&p, 0, sizeof(p));
		r = ekvm_vm_get_pit2(kvm_of(vm), &p);
		if (r == 0)
			memcpy(st->data, &p, size);
	} else {
		struct kvm_irqchip c;
		memset(&c, 0, sizeof(c));
		c.chip_id = chip;
		r = ekvm_vm_get_irqchip(kvm_of(vm), &c);
		if (r == 0)
			memcpy(st->data, &c.chip, size);
	}
	if (r == 0)
		st->size = (uint32_t)size;
	return r;
}

static int kvm_set_state(struct ehv_vm *vm, unsigned chip, const struct ehv_state_blob *st)
{
	size_t size = kvm_state_size(chip);
	if (st->size != size)
		return -EINVAL;
	if (chip == EHV_IRQCHIP_MAX) {
		struct kvm_pit_state2 p;
		memcpy(&p, st->data, size);
		return ekvm_vm_set_pit2(kvm_of(vm), &p);
	}
	struct kvm_irqchip c;
	memset(&c, 0, sizeof(c));
	c.chip_id = chip;
	memcpy(&c.chip, st->data, size);
	return ekvm_vm_set_irqchip(kvm_of(vm), &c);
}

static int kvm_msrs(struct ehv_vcpu *v, struct ehv_msr *msrs, size_t n, bool set)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	if (!m)
		return -ENOMEM;
	m->nmsrs = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		m->entries[i].index = msrs[i].index;
		m->entries[i].data = set ? msrs[i].value : 0;
	}
	int r = set ? ekvm_vcpu_set_msrs(kv(v), m) : ekvm_vcpu_get_msrs(kv(v), m);
	for (int i = 0; !set && i < r; i++)
		msrs[i].value = m->entries[i].data;
	free(m);
	return r;
}

static int kvm_xcr0(struct ehv_vcpu *v, uint64_t *xcr0, bool set)
{
	struct kvm_xcrs x;
	memset(&x, 0, sizeof(x));
	if (set) {
		x.nr_xcrs = 1;
		x.xcrs[0].xcr = 0;
		x.xcrs[0].value = *xcr0;
		return ekvm_vcpu_set_xcrs(kv(v), &x);
	}
	int r = ekvm_vcpu_get_xcrs(kv(v), &x);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; i++)
		if (x.xcrs[i].xcr == 0) {
			*xcr0 = x.xcrs[i].value;
			return 0;
		}
	*xcr0 = 1; /* no XSAVE: x87 only */
	return 0;
}

_Static_assert(KVM_MP_STATE_RUNNABLE == EHV_MP_RUNNABLE &&
		   KVM_MP_STATE_UNINITIALIZED == EHV_MP_UNINITIALIZED &&
		   KVM_MP_STATE_INIT_RECEIVED == EHV_MP_INIT_RECEIVED &&
		   KVM_MP_STATE_HALTED == EHV_MP_HALTED &&
		   KVM_MP_STATE_SIPI_RECEIVED == EHV_MP_SIPI_RECEIVED,
	       "the neutral MP states are KVM's numbers");

static int kvm_get_mp_state(struct ehv_vcpu *v, enum ehv_mp_state *state)
{
	struct kvm_mp_state mp;
	int r = ekvm_vcpu_get_mp_state(kv(v), &mp);
	if (r < 0)
		return r;
	if (mp.mp_state >= EHV_MP_MAX)
		return -ERANGE;
	*state = (enum ehv_mp_state)mp.mp_state;
	return 0;
}

static int kvm_set_mp_state(struct ehv_vcpu *v, enum ehv_mp_state state)
{
	struct kvm_mp_state mp = {.mp_state = (uint32_t)state};
	return ekvm_vcpu_set_mp_state(kv(v), &mp);
}

_Static_assert(sizeof(((struct kvm_lapic_state *)0)->regs) == EHV_LAPIC_SIZE, "LAPIC page");

static int kvm_get_lapic(struct ehv_vcpu *v, struct ehv_lapic_state *lapic)
{
	struct kvm_lapic_state l;
	int r = ekvm_vcpu_get_lapic(kv(v), &l);
	if (r == 0)
		memcpy(lapic->regs, l.regs, EHV_LAPIC_SIZE);
	return r;
}

static int kvm_set_lapic(struct ehv_vcpu *v, const struct ehv_lapic_state *lapic)
{
	struct kvm_lapic_state l;
	memcpy(l.regs, lapic->regs, EHV_LAPIC_SIZE);
	return ekvm_vcpu_set_lapic(kv(v), &l);
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
    .hyp_supported_cpuid = kvm_supported_cpuid,
    .hyp_msr_list = kvm_msr_list,
    .vm_setup_platform = kvm_setup_platform,
    .vm_irq_line = kvm_irq_line,
    .vm_irqfd = kvm_irqfd,
    .vm_ioeventfd = kvm_ioeventfd,
    .vm_get_clock = kvm_get_clock,
    .vm_set_clock = kvm_set_clock,
    .vm_get_state = kvm_get_state,
    .vm_set_state = kvm_set_state,
    .vcpu_msrs = kvm_msrs,
    .vcpu_xcr0 = kvm_xcr0,
    .vcpu_get_mp_state = kvm_get_mp_state,
    .vcpu_set_mp_state = kvm_set_mp_state,
    .vcpu_get_lapic = kvm_get_lapic,
    .vcpu_set_lapic = kvm_set_lapic,
};
