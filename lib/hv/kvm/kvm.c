/* lib/hv/kvm/kvm.c - the KVM backend of the vCPU layer, on the KVM binding (layer 1). */
#include "kvm_backend.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kvm_hyp {
	struct ekvm_sys *sys;
	atomic_bool tsc_restored; /* a vCPU's TSC was restored (see kvm_restore_state) */
	/* the host's tables for saves and restores, read once (under host_lock;
	 * immutable once set, freed with the VM) */
	pthread_mutex_t host_lock;
	uint32_t *msr_idx; /* KVM_GET_MSR_INDEX_LIST, IA32_TSC first */
	uint32_t nmsr;
	struct kvm_cpuid2 *host_cpuid; /* KVM_GET_SUPPORTED_CPUID */
};

struct kvm_vm_be {
	struct ekvm_vm *vm;
	/* a handle on its own dup of /dev/kvm: the system queries a restore
	 * needs (supported CPUID, MSR index list) after the hypervisor handle
	 * may be closed; NULL if the dup failed (then restore says -ENOTSUP) */
	struct ekvm_sys *sys;
	atomic_bool tsc_restored; /* a vCPU's TSC was restored (see kvm_restore_state) */
	/* the host's tables for saves and restores, read once (under host_lock;
	 * immutable once set, freed with the VM) */
	pthread_mutex_t host_lock;
	uint32_t *msr_idx; /* KVM_GET_MSR_INDEX_LIST, IA32_TSC first */
	uint32_t nmsr;
	struct kvm_cpuid2 *host_cpuid; /* KVM_GET_SUPPORTED_CPUID */
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
	int fd = fcntl(ekvm_sys_fd(((struct kvm_hyp *)hyp->be)->sys), F_DUPFD_CLOEXEC, 0);
	if (fd >= 0 && ekvm_sys_from_fd(fd, &b->sys) < 0)
		close(fd);
	pthread_mutex_init(&b->host_lock, NULL);
	vm->be = b;
	return 0;
}

static void kvm_vm_destroy(struct ehv_vm *vm)
{
	struct kvm_vm_be *b = vm->be;
	pthread_mutex_destroy(&b->host_lock);
	free(b->msr_idx);
	free(b->host_cpuid);
	ekvm_sys_close(b->sys);
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

static int kvm_vcpu_pre_fault(struct ehv_vcpu *v, uint64_t gpa, uint64_t size)
{
	/* an older KVM answers the unknown vCPU ioctl -EINVAL: ask first */
	if (ekvm_vm_check_extension(kvm_of(v->vm), KVM_CAP_PRE_FAULT_MEMORY) <= 0)
		return -EOPNOTSUPP;
	return ekvm_vcpu_pre_fault_memory(kv(v), gpa, size, NULL);
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

/* ------------------------------------------------------ whole state */

#define MSR_IA32_TSC	      0x10u
#define MSR_IA32_TSC_DEADLINE 0x6e0u

struct kvm_msr_rec {
	uint32_t index, zero;
	uint64_t value;
};

/* The MSR index list with IA32_TSC moved first (restore writes the TSC
 * before the MSRs that depend on it), read once per VM; valid until the VM
 * is destroyed. */
static int host_msrs(struct ehv_vm *vm, const uint32_t **out, uint32_t *n)
{
	struct kvm_vm_be *b = vm->be;
	if (!b->sys)
		return -ENOTSUP;
	int r = 0;
	pthread_mutex_lock(&b->host_lock);
	if (!b->msr_idx) {
		struct kvm_msr_list *l = NULL;
		r = ekvm_sys_msr_index_list(b->sys, &l);
		uint32_t *idx = r == 0 ? malloc((l->nmsrs + 1) * sizeof(*idx)) : NULL;
		if (r == 0 && !idx)
			r = -ENOMEM;
		if (r == 0) {
			uint32_t k = 0;
			for (uint32_t i = 0; i < l->nmsrs; i++)
				if (l->indices[i] == MSR_IA32_TSC)
					idx[k++] = MSR_IA32_TSC;
			for (uint32_t i = 0; i < l->nmsrs; i++)
				if (l->indices[i] != MSR_IA32_TSC)
					idx[k++] = l->indices[i];
			b->nmsr = k;
			b->msr_idx = idx;
		}
		free(l);
	}
	*out = b->msr_idx;
	*n = b->nmsr;
	pthread_mutex_unlock(&b->host_lock);
	return r;
}

/* KVM_GET_SUPPORTED_CPUID, read once per VM (as host_msrs). */
static int host_cpuid(struct ehv_vm *vm, const struct kvm_cpuid2 **out)
{
	struct kvm_vm_be *b = vm->be;
	if (!b->sys)
		return -ENOTSUP;
	int r = 0;
	pthread_mutex_lock(&b->host_lock);
	if (!b->host_cpuid)
		r = ekvm_sys_supported_cpuid(b->sys, &b->host_cpuid);
	*out = b->host_cpuid;
	pthread_mutex_unlock(&b->host_lock);
	return r;
}

/* Reads every listed MSR that KVM reads back for this vCPU into a "MSRS"
 * section; *skipped counts the others. */
static int save_msrs(struct ehv_vcpu *v, struct ehvi_sw *w, uint32_t *skipped)
{
	const uint32_t *idx;
	uint32_t n;
	int r = host_msrs(v->vm, &idx, &n);
	if (r < 0)
		return r;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + (size_t)n * sizeof(m->entries[0]));
	uint8_t *sec = calloc(1, 4 + (size_t)n * sizeof(struct kvm_msr_rec));
	if (!m || !sec) {
		r = -ENOMEM;
		goto out;
	}
	uint32_t got = 0;
	*skipped = 0;
	for (uint32_t i = 0; i < n;) {
		/* KVM_GET_MSRS stops at the first index it refuses */
		m->nmsrs = n - i;
		for (uint32_t j = 0; j < n - i; j++) {
			m->entries[j].index = idx[i + j];
			m->entries[j].data = 0;
		}
		r = ekvm_vcpu_get_msrs(kv(v), m);
		if (r < 0)
			goto out;
		for (int j = 0; j < r; j++) {
			struct kvm_msr_rec rec = {m->entries[j].index, 0, m->entries[j].data};
			memcpy(sec + 4 + (size_t)got++ * sizeof(rec), &rec, sizeof(rec));
		}
		i += (uint32_t)r;
		if (i < n) {
			(*skipped)++; /* refused: no state for this guest */
			i++;
		}
	}
	memcpy(sec, &got, 4);
	ehvi_sw_section(w, "MSRS", 1, sec, 4 + (size_t)got * sizeof(struct kvm_msr_rec));
	r = 0;
out:
	free(m);
	free(sec);
	return r;
}

/* "TSCT": the TSC read alone, with the host time of the read (the middle
 * of the ioctl), which ties it to the VM blob's clock (hv.h) */
struct tsc_time {
	int64_t mono;
	uint64_t tsc;
};

static int save_tsc_time(struct ehv_vcpu *v, struct ehvi_sw *w)
{
	_Alignas(struct kvm_msrs)
	    uint8_t buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)] = {0};
	struct kvm_msrs *m = (struct kvm_msrs *)buf;
	m->nmsrs = 1;
	m->entries[0].index = MSR_IA32_TSC;
	int64_t t0 = ehvi_mono_ns();
	int r = ekvm_vcpu_get_msrs(kv(v), m);
	int64_t t1 = ehvi_mono_ns();
	if (r < 0)
		return r;
	if (r == 1) { /* KVM reads the TSC of every x86 vCPU */
		struct tsc_time t = {t0 + (t1 - t0) / 2, m->entries[0].data};
		ehvi_sw_section(w, "TSCT", 1, &t, sizeof(t));
	}
	return 0;
}

/* TSC ticks in ns nanoseconds at khz (|ns| within EHVI_TSC_REF_MAX_NS). */
static int64_t tsc_ticks(int64_t ns, uint32_t khz)
{
	return ns * (int64_t)khz / 1000000;
}

static int kvm_save_state(struct ehv_vcpu *v, struct ehvi_sw *w)
{
	struct ekvm_vcpu *k = kv(v);
	struct ekvm_vm *kvm = kvm_of(v->vm);
	int r;
	/* CPUID */
	struct kvm_cpuid2 *c =
	    calloc(1, sizeof(*c) + EHV_CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = EHV_CPUID_MAX_ENTRIES;
	r = ekvm_vcpu_get_cpuid2(k, c);
	if (r == 0)
		ehvi_sw_section(w, "CPID", 1, c->entries, c->nent * sizeof(c->entries[0]));
	free(c);
	if (r < 0)
		return r;
	int khz = ekvm_vcpu_get_tsc_khz(k);
	if (khz > 0) {
		uint32_t u = (uint32_t)khz;
		ehvi_sw_section(w, "TSCK", 1, &u, sizeof(u));
	}
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if ((r = ekvm_vcpu_get_regs(k, &regs)) < 0 || (r = ekvm_vcpu_get_sregs(k, &sregs)) < 0)
		return r;
	ehvi_sw_section(w, "REGS", 1, &regs, sizeof(regs));
	ehvi_sw_section(w, "SREG", 1, &sregs, sizeof(sregs));
	if (ekvm_vm_check_extension(kvm, KVM_CAP_XSAVE) > 0) {
		int size = ekvm_vcpu_xsave_size(k);
		if (size < 0)
			return size;
		void *x = calloc(1, (size_t)size);
		if (!x)
			return -ENOMEM;
		r = ekvm_vcpu_get_xsave2(k, x, (size_t)size);
		if (r == 0)
			ehvi_sw_section(w, "XSAV", 1, x, (size_t)size);
		free(x);
	} else {
		struct kvm_fpu fpu;
		r = ekvm_vcpu_get_fpu(k, &fpu);
		if (r == 0)
			ehvi_sw_section(w, "FPU ", 1, &fpu, sizeof(fpu));
	}
	if (r < 0)
		return r;
	if (ekvm_vm_check_extension(kvm, KVM_CAP_XCRS) > 0) {
		struct kvm_xcrs x;
		memset(&x, 0, sizeof(x));
		if ((r = ekvm_vcpu_get_xcrs(k, &x)) < 0)
			return r;
		ehvi_sw_section(w, "XCRS", 1, &x, sizeof(x));
	}
	uint32_t skipped = 0;
	if ((r = save_msrs(v, w, &skipped)) < 0 || (r = save_tsc_time(v, w)) < 0)
		return r;
	struct kvm_mp_state mp;
	if ((r = ekvm_vcpu_get_mp_state(k, &mp)) < 0)
		return r;
	ehvi_sw_section(w, "MPST", 1, &mp, sizeof(mp));
	if (atomic_load(&v->vm->platform)) {
		struct kvm_lapic_state l;
		if ((r = ekvm_vcpu_get_lapic(k, &l)) < 0)
			return r;
		ehvi_sw_section(w, "LAPC", 1, &l, sizeof(l));
	}
	struct kvm_vcpu_events ev;
	struct kvm_debugregs dr;
	memset(&ev, 0, sizeof(ev));
	memset(&dr, 0, sizeof(dr));
	if ((r = ekvm_vcpu_get_vcpu_events(k, &ev)) < 0 ||
	    (r = ekvm_vcpu_get_debugregs(k, &dr)) < 0)
		return r;
	ehvi_sw_section(w, "EVNT", 1, &ev, sizeof(ev));
	ehvi_sw_section(w, "DBGR", 1, &dr, sizeof(dr));
	snprintf(v->detail, sizeof(v->detail),
		 "%u listed MSRs skipped (KVM does not read them back for this guest)", skipped);
	return 0;
}

/* A section of the backend's structure size, version 1; *r set on a
 * refusal (only the first one is kept). */
static const struct ehvi_section *sec_fixed(const struct ehvi_sections *secs, const char tag[4],
					    size_t size, bool required, int *r)
{
	const struct ehvi_section *s = ehvi_find(secs, tag);
	if (*r == 0 && !s && required)
		*r = ehvi_refuse(secs, -EINVAL, "section %.4s is missing", tag);
	else if (*r == 0 && s && (s->version != 1 || (size && s->len != size)))
		*r = ehvi_refuse(secs, -EINVAL,
				 "section %.4s: version %u, %u bytes; this host's is version 1, "
				 "%zu bytes (another kernel ABI?)",
				 tag, s->version, s->len, size);
	return s;
}

/* The feature leaves restore compares with what the host offers, and the
 * bits KVM or the VMM sets on its own (OSXSAVE and OSPKE follow CR4; the
 * hypervisor bit, TSC deadline and HTT are the VMM's to set). */
struct feature_leaf {
	uint32_t fn, index;
	uint8_t reg; /* 0 eax, 1 ebx, 2 ecx, 3 edx */
	uint32_t free_bits;
};
static const struct feature_leaf feature_leaves[] = {
    {1, 0, 2, (1u << 27) | (1u << 24) | (1u << 31)},
    {1, 0, 3, 1u << 28},
    {7, 0, 1, 0},
    {7, 0, 2, 1u << 4},
    {7, 0, 3, 0},
    {7, 1, 0, 0},
    {0xd, 0, 0, 0},
    {0xd, 0, 3, 0},
    {0xd, 1, 0, 0},
    {0x80000001, 0, 2, 0},
    {0x80000001, 0, 3, 0},
};

static uint32_t cpuid_reg(const struct kvm_cpuid_entry2 *e, uint8_t reg)
{
	return reg == 0 ? e->eax : reg == 1 ? e->ebx : reg == 2 ? e->ecx : e->edx;
}

/* -ENOTSUP (with a detail) when the saved CPUID, XSAVE area or XCR0 asks
 * for a feature the host does not offer. */
static int check_features(struct ehv_vcpu *v, const struct ehvi_sections *secs,
			  const struct ehvi_section *cpid, const struct ehvi_section *xsav,
			  const struct ehvi_section *xcrs)
{
	const struct kvm_cpuid2 *host;
	int r = host_cpuid(v->vm, &host);
	if (r < 0)
		return ehvi_refuse(secs, r, "cannot read the host's CPUID (%d)", r);
	const struct kvm_cpuid_entry2 *saved = (const void *)cpid->data;
	uint32_t nsaved = cpid->len / sizeof(*saved);
	for (uint32_t i = 0; i < nsaved && r == 0; i++) {
		struct kvm_cpuid_entry2 e;
		memcpy(&e, &saved[i], sizeof(e));
		for (size_t f = 0; f < sizeof(feature_leaves) / sizeof(feature_leaves[0]); f++) {
			const struct feature_leaf *fl = &feature_leaves[f];
			if (e.function != fl->fn || e.index != fl->index)
				continue;
			const struct kvm_cpuid_entry2 *h = ekvm_cpuid_find(host, fl->fn, fl->index);
			uint32_t want = cpuid_reg(&e, fl->reg) & ~fl->free_bits;
			uint32_t have = h ? cpuid_reg(h, fl->reg) : 0;
			if (want & ~have) {
				r = ehvi_refuse(
				    secs, -ENOTSUP,
				    "CPUID 0x%x.%u %s bits 0x%08x are not offered by the "
				    "host",
				    fl->fn, fl->index,
				    (const char *[]){"eax", "ebx", "ecx", "edx"}[fl->reg],
				    want & ~have);
				break;
			}
		}
	}
	const struct kvm_cpuid_entry2 *d = ekvm_cpuid_find(host, 0xd, 0);
	uint64_t host_xcr0 = d ? ((uint64_t)d->edx << 32) | d->eax : 0;
	if (r < 0)
		return r;
	if (xsav) {
		if (ekvm_vm_check_extension(kvm_of(v->vm), KVM_CAP_XSAVE) <= 0)
			return ehvi_refuse(secs, -ENOTSUP, "the host has no XSAVE (KVM_CAP_XSAVE)");
		int size = ekvm_vcpu_xsave_size(kv(v));
		if (size < 0)
			return size;
		if (xsav->len > (uint32_t)size)
			return ehvi_refuse(secs, -ENOTSUP,
					   "the XSAVE area is %u bytes, the host's only %d",
					   xsav->len, size);
		uint64_t bv;
		memcpy(&bv, xsav->data + 512, 8);
		if (bv & ~host_xcr0)
			return ehvi_refuse(secs, -ENOTSUP,
					   "XSAVE components 0x%llx are not supported by the host "
					   "(XCR0 mask 0x%llx)",
					   (unsigned long long)bv, (unsigned long long)host_xcr0);
	}
	if (xcrs) {
		struct kvm_xcrs x;
		memcpy(&x, xcrs->data, sizeof(x));
		if (x.nr_xcrs > KVM_MAX_XCRS)
			return ehvi_refuse(secs, -EINVAL, "section XCRS: %u XCRs", x.nr_xcrs);
		for (uint32_t i = 0; i < x.nr_xcrs; i++)
			if (x.xcrs[i].xcr == 0 && (x.xcrs[i].value & ~host_xcr0))
				return ehvi_refuse(
				    secs, -ENOTSUP,
				    "XCR0 0x%llx has features the host lacks (0x%llx)",
				    (unsigned long long)x.xcrs[i].value,
				    (unsigned long long)host_xcr0);
	}
	return 0;
}

/* -ENOTSUP when a saved MSR is not in the host's index list. */
static int check_msrs(struct ehv_vcpu *v, const struct ehvi_sections *secs,
		      const struct ehvi_section *msrs, uint32_t n)
{
	const uint32_t *idx;
	uint32_t nidx;
	int r = host_msrs(v->vm, &idx, &nidx);
	if (r < 0)
		return ehvi_refuse(secs, r, "cannot read the host's MSR list (%d)", r);
	for (uint32_t i = 0; i < n && r == 0; i++) {
		struct kvm_msr_rec rec;
		memcpy(&rec, msrs->data + 4 + (size_t)i * sizeof(rec), sizeof(rec));
		bool listed = false;
		for (uint32_t j = 0; j < nidx && !listed; j++)
			listed = idx[j] == rec.index;
		if (!listed)
			r = ehvi_refuse(secs, -ENOTSUP, "MSR 0x%x not supported by the host",
					rec.index);
	}
	return r;
}

/* Writes msrs[0..n-1]; -ENOTSUP naming the MSR KVM refuses. */
static int set_msrs(struct ehv_vcpu *v, const struct ehvi_sections *secs,
		    const struct kvm_msr_rec *recs, uint32_t n)
{
	if (n == 0)
		return 0;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + (size_t)n * sizeof(m->entries[0]));
	if (!m)
		return -ENOMEM;
	m->nmsrs = n;
	for (uint32_t i = 0; i < n; i++) {
		m->entries[i].index = recs[i].index;
		m->entries[i].data = recs[i].value;
	}
	int r = ekvm_vcpu_set_msrs(kv(v), m);
	if (r >= 0 && (uint32_t)r < n)
		r = ehvi_refuse(secs, -ENOTSUP, "KVM refused MSR 0x%x = 0x%llx", recs[r].index,
				(unsigned long long)recs[r].value);
	free(m);
	return r < 0 ? r : 0;
}

static int kvm_restore_state(struct ehv_vcpu *v, const struct ehvi_sections *secs)
{
	struct ekvm_vcpu *k = kv(v);
	int r = 0;
	const struct ehvi_section *cpid = sec_fixed(secs, "CPID", 0, true, &r);
	const struct ehvi_section *tsck = sec_fixed(secs, "TSCK", 4, false, &r);
	const struct ehvi_section *tsct =
	    sec_fixed(secs, "TSCT", sizeof(struct tsc_time), false, &r);
	const struct ehvi_section *regs =
	    sec_fixed(secs, "REGS", sizeof(struct kvm_regs), true, &r);
	const struct ehvi_section *sregs =
	    sec_fixed(secs, "SREG", sizeof(struct kvm_sregs), true, &r);
	const struct ehvi_section *xsav = sec_fixed(secs, "XSAV", 0, false, &r);
	const struct ehvi_section *fpu = sec_fixed(secs, "FPU ", sizeof(struct kvm_fpu), false, &r);
	const struct ehvi_section *xcrs =
	    sec_fixed(secs, "XCRS", sizeof(struct kvm_xcrs), false, &r);
	const struct ehvi_section *msrs = sec_fixed(secs, "MSRS", 0, true, &r);
	const struct ehvi_section *mp =
	    sec_fixed(secs, "MPST", sizeof(struct kvm_mp_state), true, &r);
	const struct ehvi_section *lapic =
	    sec_fixed(secs, "LAPC", sizeof(struct kvm_lapic_state), false, &r);
	const struct ehvi_section *ev =
	    sec_fixed(secs, "EVNT", sizeof(struct kvm_vcpu_events), true, &r);
	const struct ehvi_section *dr =
	    sec_fixed(secs, "DBGR", sizeof(struct kvm_debugregs), true, &r);
	if (r < 0)
		return r;
	unsigned known = 8 + (tsck != NULL) + (tsct != NULL) + (xsav != NULL) + (fpu != NULL) +
			 (xcrs != NULL) + (lapic != NULL);
	if (known != secs->n)
		return ehvi_refuse(secs, -EINVAL, "unknown sections in a vCPU blob");
	if (cpid->len % sizeof(struct kvm_cpuid_entry2) ||
	    cpid->len / sizeof(struct kvm_cpuid_entry2) > EHV_CPUID_MAX_ENTRIES)
		return ehvi_refuse(secs, -EINVAL, "section CPID has a bad size");
	if ((xsav != NULL) == (fpu != NULL))
		return ehvi_refuse(secs, -EINVAL, "the blob needs one of XSAV and FPU");
	if (xsav && xsav->len < sizeof(struct kvm_xsave))
		return ehvi_refuse(secs, -EINVAL, "section XSAV is shorter than 4 KiB");
	if ((lapic != NULL) != atomic_load(&v->vm->platform))
		return ehvi_refuse(secs, -EINVAL, "the saved vCPU %s a LAPIC, this VM %s",
				   lapic ? "has" : "has no", lapic ? "has none" : "has one");
	uint32_t nmsr;
	if (msrs->len < 4 || (memcpy(&nmsr, msrs->data, 4), nmsr > EHV_MSR_LIST_MAX) ||
	    msrs->len != 4 + (size_t)nmsr * sizeof(struct kvm_msr_rec))
		return ehvi_refuse(secs, -EINVAL, "section MSRS has a bad size");
	uint32_t khz = 0;
	if (tsck)
		memcpy(&khz, tsck->data, 4);
	int cur_khz = ekvm_vcpu_get_tsc_khz(k);
	bool set_khz = khz && cur_khz > 0 && (uint32_t)cur_khz != khz;
	/* KVM runs a rate within 250 ppm of the host's without scaling (its
	 * tsc_tolerance_ppm); farther needs TSC scaling (KVM_CAP_TSC_CONTROL) */
	uint64_t diff = khz > (uint32_t)cur_khz ? khz - (uint32_t)cur_khz : (uint32_t)cur_khz - khz;
	if (set_khz && diff * 1000000 > (uint64_t)cur_khz * 250 &&
	    ekvm_vm_check_extension(kvm_of(v->vm), KVM_CAP_TSC_CONTROL) <= 0)
		return ehvi_refuse(
		    secs, -ENOTSUP,
		    "the TSC ran at %u kHz, the host's at %d kHz and it cannot scale", khz,
		    cur_khz);
	if ((r = check_features(v, secs, cpid, xsav, xcrs)) < 0 ||
	    (r = check_msrs(v, secs, msrs, nmsr)) < 0)
		return r;

	/* checked: apply, in QEMU's order (registers, FPU, XCRs, special
	 * registers, MSRs with the TSC first, MP state, LAPIC, the TSC
	 * deadline, events, debug registers) */
	struct kvm_msr_rec *recs = calloc(nmsr ? nmsr : 1, sizeof(*recs));
	void *xbuf = NULL;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cpid->len);
	if (!recs || !c) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(recs, msrs->data + 4, (size_t)nmsr * sizeof(*recs));
	c->nent = cpid->len / sizeof(struct kvm_cpuid_entry2);
	memcpy(c->entries, cpid->data, cpid->len);
	if (c->nent && (r = ekvm_vcpu_set_cpuid2(k, c)) < 0) {
		r = ehvi_refuse(secs, r, "KVM refused the saved CPUID (%d)", r);
		goto out;
	}
	if (set_khz && (r = ekvm_vcpu_set_tsc_khz(k, khz)) < 0) {
		r = ehvi_refuse(secs, -ENOTSUP, "KVM cannot run the TSC at %u kHz (%d)", khz, r);
		goto out;
	}
	struct kvm_regs kr;
	struct kvm_sregs ks;
	memcpy(&kr, regs->data, sizeof(kr));
	memcpy(&ks, sregs->data, sizeof(ks));
	if ((r = ekvm_vcpu_set_regs(k, &kr)) < 0)
		goto out;
	if (xsav) {
		int size = ekvm_vcpu_xsave_size(k);
		if (size < 0) {
			r = size;
			goto out;
		}
		xbuf = calloc(1, (size_t)size); /* a smaller saved area: the rest is zero */
		if (!xbuf) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(xbuf, xsav->data, xsav->len);
		r = ekvm_vcpu_set_xsave2(k, xbuf, (size_t)size);
	} else {
		struct kvm_fpu f;
		memcpy(&f, fpu->data, sizeof(f));
		r = ekvm_vcpu_set_fpu(k, &f);
	}
	if (r < 0) {
		r = ehvi_refuse(secs, r, "KVM refused the saved FPU/XSAVE state (%d)", r);
		goto out;
	}
	if (xcrs) {
		struct kvm_xcrs x;
		memcpy(&x, xcrs->data, sizeof(x));
		if ((r = ekvm_vcpu_set_xcrs(k, &x)) < 0) {
			r = ehvi_refuse(secs, -ENOTSUP, "KVM refused the saved XCRs (%d)", r);
			goto out;
		}
	}
	if ((r = ekvm_vcpu_set_sregs(k, &ks)) < 0) {
		r = ehvi_refuse(secs, r, "KVM refused the saved special registers (%d)", r);
		goto out;
	}
	/* The TSC first: KVM (before Linux 6.6) takes a host write within a
	 * second of the TSC it expects from the last write as an attempt to
	 * synchronise vCPUs, and keeps its own value; in a new VM the last
	 * write is the vCPU's creation (TSC 0), so a guest saved less than a
	 * second or so after its start would get its TSC back near 0. The
	 * first vCPU restored in a VM writes a value 4 s ahead first, which
	 * is never "close", then the saved one, which then is not close
	 * either; the other vCPUs write theirs once and are synchronised with
	 * it, as KVM intends. */
	if (nmsr && recs[0].index == MSR_IA32_TSC) {
		uint64_t hz = (uint64_t)(khz ? khz : (uint32_t)(cur_khz > 0 ? cur_khz : 0)) * 1000;
		if (!atomic_exchange(&((struct kvm_vm_be *)v->vm->be)->tsc_restored, true)) {
			struct kvm_msr_rec ahead = {MSR_IA32_TSC, 0, recs[0].value + 4 * hz};
			if (hz && (r = set_msrs(v, secs, &ahead, 1)) < 0)
				goto out;
		}
		/* A timed TSC: every vCPU's TSC as it was at one saved instant
		 * (the first restored vCPU's reading) and runs on from there
		 * since one restore instant (its write), to which the VM's clock
		 * is moved too (ehv_vm_restore_state): vCPUs saved or restored
		 * at different times keep their TSCs and the clock together. */
		if (tsct && hz) {
			struct tsc_time t;
			memcpy(&t, tsct->data, sizeof(t));
			struct ehvi_tsc_ref ref = {t.mono, ehvi_mono_ns()};
			int64_t now = ref.restored;
			ehvi_tsc_ref(v->vm, &ref);
			if (llabs(ref.saved - t.mono) <= EHVI_TSC_REF_MAX_NS &&
			    llabs(now - ref.restored) <= EHVI_TSC_REF_MAX_NS)
				recs[0].value = t.tsc + (uint64_t)tsc_ticks(ref.saved - t.mono +
										now - ref.restored,
									    (uint32_t)(hz / 1000));
		}
	}
	/* every MSR but the TSC deadline (the list has IA32_TSC first) */
	uint32_t deadline = nmsr;
	for (uint32_t i = 0; i < nmsr; i++)
		if (recs[i].index == MSR_IA32_TSC_DEADLINE) {
			struct kvm_msr_rec t = recs[i];
			memmove(&recs[i], &recs[i + 1], (size_t)(nmsr - i - 1) * sizeof(*recs));
			recs[nmsr - 1] = t;
			deadline = nmsr - 1;
			break;
		}
	if ((r = set_msrs(v, secs, recs, deadline)) < 0)
		goto out;
	struct kvm_mp_state m;
	memcpy(&m, mp->data, sizeof(m));
	if ((r = ekvm_vcpu_set_mp_state(k, &m)) < 0)
		goto out;
	if (lapic) {
		struct kvm_lapic_state l;
		memcpy(&l, lapic->data, sizeof(l));
		if ((r = ekvm_vcpu_set_lapic(k, &l)) < 0)
			goto out;
	}
	if ((r = set_msrs(v, secs, recs + deadline, nmsr - deadline)) < 0)
		goto out;
	struct kvm_vcpu_events e;
	memcpy(&e, ev->data, sizeof(e));
	e.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if ((r = ekvm_vcpu_set_vcpu_events(k, &e)) < 0) {
		r = ehvi_refuse(secs, r, "KVM refused the saved vCPU events (%d)", r);
		goto out;
	}
	struct kvm_debugregs d;
	memcpy(&d, dr->data, sizeof(d));
	d.flags = 0;
	r = ekvm_vcpu_set_debugregs(k, &d);
out:
	if (r < 0 && !v->detail[0])
		snprintf(v->detail, sizeof(v->detail),
			 "KVM refused the saved state (%d): the vCPU is partly restored", r);
	free(recs);
	free(xbuf);
	free(c);
	return r;
}

static int kvm_get_dirty_log(struct ehv_vm *vm, uint32_t slot, uint64_t *bitmap, uint64_t pages)
{
	(void)pages;
	return ekvm_vm_get_dirty_log(kvm_of(vm), slot, bitmap);
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
    .vcpu_pre_fault = kvm_vcpu_pre_fault,
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
    .vcpu_save_state = kvm_save_state,
    .vcpu_restore_state = kvm_restore_state,
    .vm_get_dirty_log = kvm_get_dirty_log,
};
