/* lib/kvm/guest.c - the convenience tier: guest memory in one call, GDT/TSS/page tables, vCPU modes. */
#include <ember/kvm_guest.h>

#include "internal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE_SIZE 4096ull

struct ekvm_guest_mem {
	struct ekvm_vm *vm;
	uint32_t slot;
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

/* ---------------------------------------------------------------- memory */

int ekvm_guest_mem_create(struct ekvm_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size,
			  struct ekvm_guest_mem **out)
{
	if (out)
		*out = NULL;
	if (!vm || !out || size == 0 || (gpa | size) & (PAGE_SIZE - 1) || gpa + size < gpa ||
	    size > SIZE_MAX)
		return -EINVAL;
	struct ekvm_guest_mem *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	void *host = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (host == MAP_FAILED) {
		free(m);
		return -ENOMEM;
	}
	int r = ekvm_vm_set_memory(vm, slot, 0, gpa, size, host);
	if (r < 0) {
		munmap(host, (size_t)size);
		free(m);
		return r;
	}
	*m =
	    (struct ekvm_guest_mem){.vm = vm, .slot = slot, .gpa = gpa, .size = size, .host = host};
	*out = m;
	return 0;
}

void ekvm_guest_mem_destroy(struct ekvm_guest_mem *mem)
{
	if (!mem)
		return;
	/* Removal fails only for a slot KVM does not know, which cannot be ours:
	 * the memory is unmapped either way. */
	(void)ekvm_vm_remove_memory(mem->vm, mem->slot);
	munmap(mem->host, (size_t)mem->size);
	free(mem);
}

struct ekvm_vm *ekvm_guest_mem_vm(const struct ekvm_guest_mem *mem)
{
	return mem ? mem->vm : NULL;
}

uint32_t ekvm_guest_mem_slot(const struct ekvm_guest_mem *mem)
{
	return mem ? mem->slot : 0;
}

uint64_t ekvm_guest_mem_gpa(const struct ekvm_guest_mem *mem)
{
	return mem ? mem->gpa : 0;
}

uint64_t ekvm_guest_mem_size(const struct ekvm_guest_mem *mem)
{
	return mem ? mem->size : 0;
}

void *ekvm_guest_mem_host(const struct ekvm_guest_mem *mem)
{
	return mem ? mem->host : NULL;
}

static bool range_ok(const struct ekvm_guest_mem *m, uint64_t gpa, uint64_t len)
{
	return gpa >= m->gpa && gpa - m->gpa <= m->size && len <= m->size - (gpa - m->gpa);
}

void *ekvm_guest_mem_ptr(const struct ekvm_guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (!mem || !range_ok(mem, gpa, len))
		return NULL;
	return mem->host + (gpa - mem->gpa);
}

int ekvm_guest_mem_read(const struct ekvm_guest_mem *mem, uint64_t gpa, void *buf, size_t len)
{
	if (!mem || (!buf && len))
		return -EINVAL;
	if (!range_ok(mem, gpa, len))
		return -EFAULT;
	if (len)
		memcpy(buf, mem->host + (gpa - mem->gpa), len);
	return 0;
}

int ekvm_guest_mem_write(struct ekvm_guest_mem *mem, uint64_t gpa, const void *buf, size_t len)
{
	if (!mem || (!buf && len))
		return -EINVAL;
	if (!range_ok(mem, gpa, len))
		return -EFAULT;
	if (len)
		memcpy(mem->host + (gpa - mem->gpa), buf, len);
	return 0;
}

/* ------------------------------------------------ descriptor tables, paging */

#define GDT_OFF	  0x0000ull
#define TSS_OFF	  0x0800ull
#define PML4_OFF  0x1000ull
#define PDPT_OFF  0x2000ull
#define PD_OFF	  0x3000ull
#define GDT_LIMIT (EKVM_GUEST_SEL_TSS + 16 - 1)
#define TSS_LIMIT 0x67

#define CR0_PE	 (1ull << 0)
#define CR0_MP	 (1ull << 1)
#define CR0_ET	 (1ull << 4)
#define CR0_NE	 (1ull << 5)
#define CR0_WP	 (1ull << 16)
#define CR0_PG	 (1ull << 31)
#define CR4_PAE	 (1ull << 5)
#define CR4_OSFX (1ull << 9)
#define CR4_OSXE (1ull << 10)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

#define PTE_P  (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_PS (1ull << 7)

uint64_t ekvm_guest_tables_size(uint64_t map_size, uint64_t page_size)
{
	if ((page_size != EKVM_GUEST_PAGE_2M && page_size != EKVM_GUEST_PAGE_1G) || map_size == 0 ||
	    map_size > EKVM_GUEST_MAP_MAX)
		return 0;
	if (page_size == EKVM_GUEST_PAGE_1G)
		return PD_OFF;
	uint64_t gibs = (map_size + EKVM_GUEST_PAGE_1G - 1) / EKVM_GUEST_PAGE_1G;
	return PD_OFF + gibs * PAGE_SIZE;
}

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, bool l, bool db)
{
	return (struct kvm_segment){
	    .limit = 0xffffffff,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .db = db,
	    .s = 1,
	    .l = l,
	    .g = 1,
	};
}

static struct kvm_segment tss_seg(uint64_t base)
{
	return (struct kvm_segment){
	    .base = base,
	    .limit = TSS_LIMIT,
	    .selector = EKVM_GUEST_SEL_TSS,
	    .type = 11, /* busy TSS (32- or 64-bit) */
	    .present = 1,
	};
}

/* The 8-byte GDT descriptor of what a kvm_segment describes. */
static uint64_t gdt_desc(const struct kvm_segment *s)
{
	uint32_t limit = s->g ? s->limit >> 12 : s->limit;
	return (limit & 0xffffull) | ((uint64_t)(s->base & 0xffffff) << 16) |
	       ((uint64_t)(s->type & 0xf) << 40) | ((uint64_t)(s->s & 1) << 44) |
	       ((uint64_t)(s->dpl & 3) << 45) | ((uint64_t)(s->present & 1) << 47) |
	       ((uint64_t)((limit >> 16) & 0xf) << 48) | ((uint64_t)(s->avl & 1) << 52) |
	       ((uint64_t)(s->l & 1) << 53) | ((uint64_t)(s->db & 1) << 54) |
	       ((uint64_t)(s->g & 1) << 55) | ((uint64_t)((s->base >> 24) & 0xff) << 56);
}

/* Resolved arguments of a protected- or long-mode setup. */
struct tables {
	uint64_t gpa, map_size, page_size, size;
};

static int resolve_tables(struct ekvm_vcpu *vcpu, const struct ekvm_guest_mem *mem,
			  const struct ekvm_guest_tables *in, bool lm, struct tables *t)
{
	if (!vcpu || !mem || mem->vm != vcpu->vm)
		return -EINVAL;
	t->gpa = in ? in->gpa : EKVM_GUEST_TABLES_GPA;
	t->page_size = in && in->page_size ? in->page_size : EKVM_GUEST_PAGE_2M;
	t->map_size = in && in->map_size ? in->map_size : mem->gpa + mem->size;
	if (t->gpa & (PAGE_SIZE - 1))
		return -EINVAL;
	if (lm) {
		if (t->page_size != EKVM_GUEST_PAGE_2M && t->page_size != EKVM_GUEST_PAGE_1G)
			return -EINVAL;
		if (t->map_size > EKVM_GUEST_MAP_MAX)
			return -EINVAL;
		t->map_size = (t->map_size + t->page_size - 1) & ~(t->page_size - 1);
		t->size = ekvm_guest_tables_size(t->map_size, t->page_size);
	} else {
		t->size = PML4_OFF;
		if (t->gpa + t->size > 1ull << 32)
			return -EINVAL;
	}
	if (!range_ok(mem, t->gpa, t->size))
		return -EINVAL;
	return 0;
}

/* GDT + TSS at t->gpa. */
static void write_gdt(struct ekvm_guest_mem *mem, const struct tables *t)
{
	struct kvm_segment code64 = flat_seg(EKVM_GUEST_SEL_CODE64, 11, true, false);
	struct kvm_segment data = flat_seg(EKVM_GUEST_SEL_DATA, 3, false, true);
	struct kvm_segment code32 = flat_seg(EKVM_GUEST_SEL_CODE32, 11, false, true);
	struct kvm_segment tss = tss_seg(t->gpa + TSS_OFF);
	uint64_t gdt[(GDT_LIMIT + 1) / 8] = {0};
	gdt[EKVM_GUEST_SEL_CODE64 / 8] = gdt_desc(&code64);
	gdt[EKVM_GUEST_SEL_DATA / 8] = gdt_desc(&data);
	gdt[EKVM_GUEST_SEL_CODE32 / 8] = gdt_desc(&code32);
	gdt[EKVM_GUEST_SEL_TSS / 8] = gdt_desc(&tss);
	gdt[EKVM_GUEST_SEL_TSS / 8 + 1] = tss.base >> 32;
	memcpy(ekvm_guest_mem_ptr(mem, t->gpa + GDT_OFF, sizeof(gdt)), gdt, sizeof(gdt));
	uint8_t *tss_img = ekvm_guest_mem_ptr(mem, t->gpa + TSS_OFF, TSS_LIMIT + 1);
	memset(tss_img, 0, TSS_LIMIT + 1);
	tss_img[0x66] = TSS_LIMIT + 1; /* I/O map base past the limit: no I/O bitmap */
}

/* Identity map of [0, t->map_size): PML4[0] -> PDPT -> 1 GiB pages or PDs. */
static void write_page_tables(struct ekvm_guest_mem *mem, const struct tables *t)
{
	uint64_t *pml4 = ekvm_guest_mem_ptr(mem, t->gpa + PML4_OFF, PAGE_SIZE);
	uint64_t *pdpt = ekvm_guest_mem_ptr(mem, t->gpa + PDPT_OFF, PAGE_SIZE);
	uint64_t gibs = (t->map_size + EKVM_GUEST_PAGE_1G - 1) / EKVM_GUEST_PAGE_1G;
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = (t->gpa + PDPT_OFF) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < gibs; i++) {
		if (t->page_size == EKVM_GUEST_PAGE_1G) {
			pdpt[i] = (i << 30) | PTE_P | PTE_RW | PTE_PS;
			continue;
		}
		uint64_t pd_gpa = t->gpa + PD_OFF + i * PAGE_SIZE;
		uint64_t *pd = ekvm_guest_mem_ptr(mem, pd_gpa, PAGE_SIZE);
		pdpt[i] = pd_gpa | PTE_P | PTE_RW;
		for (uint64_t j = 0; j < 512; j++) {
			uint64_t addr = (i << 30) | (j << 21);
			pd[j] = addr < t->map_size ? addr | PTE_P | PTE_RW | PTE_PS : 0;
		}
	}
}

/* ---------------------------------------------------------------- vCPU modes */

static int set_regs(struct ekvm_vcpu *vcpu, const struct kvm_sregs *sregs, uint64_t rip,
		    uint64_t rsp)
{
	int r = ekvm_vcpu_set_sregs(vcpu, sregs);
	if (r < 0)
		return r;
	struct kvm_regs regs = {.rip = rip, .rsp = rsp, .rflags = 0x2};
	return ekvm_vcpu_set_regs(vcpu, &regs);
}

static struct kvm_segment real_seg(uint16_t sel, uint8_t type)
{
	return (struct kvm_segment){
	    .base = (uint64_t)sel << 4,
	    .limit = 0xffff,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .s = 1,
	};
}

int ekvm_vcpu_setup_real(struct ekvm_vcpu *vcpu, uint16_t cs, uint16_t ip, uint16_t ss, uint16_t sp)
{
	if (!vcpu)
		return -EINVAL;
	struct kvm_sregs sregs;
	int r = ekvm_vcpu_get_sregs(vcpu, &sregs);
	if (r < 0)
		return r;
	sregs.cs = real_seg(cs, 11);
	sregs.ss = real_seg(ss, 3);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = real_seg(0, 3);
	sregs.idt.base = 0;
	sregs.idt.limit = 0x3ff; /* the real-mode interrupt vector table */
	sregs.cr0 &= ~(CR0_PE | CR0_PG);
	sregs.cr3 = 0;
	sregs.cr4 = 0;
	sregs.efer = 0;
	return set_regs(vcpu, &sregs, ip, sp);
}

/* Segments and descriptor tables of protected and long mode. */
static void prot_segments(struct kvm_sregs *sregs, const struct tables *t, bool lm)
{
	sregs->gdt.base = t->gpa + GDT_OFF;
	sregs->gdt.limit = GDT_LIMIT;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cs = lm ? flat_seg(EKVM_GUEST_SEL_CODE64, 11, true, false)
		       : flat_seg(EKVM_GUEST_SEL_CODE32, 11, false, true);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss =
	    flat_seg(EKVM_GUEST_SEL_DATA, 3, false, true);
	sregs->tr = tss_seg(t->gpa + TSS_OFF);
	memset(&sregs->ldt, 0, sizeof(sregs->ldt));
	sregs->ldt.unusable = 1;
}

/*
 * Long mode needs a CPUID that has it: KVM (seen on Linux 6.12, not on 6.1)
 * refuses KVM_SET_SREGS with EFER.LME for a vCPU whose CPUID lacks LM. A
 * vCPU with no CPUID at all (none set yet: every leaf reads 0) gets the two
 * leaves that say long mode, 0x80000000 (the highest extended leaf) and
 * 0x80000001 (EDX.LM); one the caller gave a CPUID keeps it. 0 or -errno.
 */
static int cpuid_for_long_mode(struct ekvm_vcpu *vcpu)
{
	struct kvm_cpuid2 none = {.nent = 0};
	int r = ekvm_vcpu_get_cpuid2(vcpu, &none);
	if (r == -E2BIG || (r == 0 && none.nent > 0)) /* it has entries: the caller's */
		return 0;
	if (r < 0)
		return r;
	struct {
		struct kvm_cpuid2 h;
		struct kvm_cpuid_entry2 e[2];
	} c;
	memset(&c, 0, sizeof(c));
	c.h.nent = 2;
	c.e[0].function = 0x80000000u;
	c.e[0].eax = 0x80000001u;
	c.e[1].function = 0x80000001u;
	c.e[1].edx = 1u << 29; /* LM */
	return ekvm_vcpu_set_cpuid2(vcpu, &c.h);
}

/* Protected mode (lm false) or long mode: tables, segments, control registers. */
static int setup_prot(struct ekvm_vcpu *vcpu, struct ekvm_guest_mem *mem,
		      const struct ekvm_guest_tables *tables, bool lm, uint64_t entry,
		      uint64_t stack)
{
	struct tables t;
	struct kvm_sregs sregs;
	int r = resolve_tables(vcpu, mem, tables, lm, &t);
	if (r < 0)
		return r;
	if (lm && (r = cpuid_for_long_mode(vcpu)) < 0)
		return r;
	if ((r = ekvm_vcpu_get_sregs(vcpu, &sregs)) < 0)
		return r;
	write_gdt(mem, &t);
	prot_segments(&sregs, &t, lm);
	if (lm) {
		write_page_tables(mem, &t);
		sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
		sregs.cr3 = t.gpa + PML4_OFF;
		sregs.cr4 = CR4_PAE | CR4_OSFX | CR4_OSXE;
		sregs.efer = EFER_LME | EFER_LMA;
	} else {
		sregs.cr0 = CR0_PE | CR0_ET | CR0_NE;
		sregs.cr3 = 0;
		sregs.cr4 = 0;
		sregs.efer = 0;
	}
	return set_regs(vcpu, &sregs, entry, stack);
}

int ekvm_vcpu_setup_prot32(struct ekvm_vcpu *vcpu, struct ekvm_guest_mem *mem,
			   const struct ekvm_guest_tables *tables, uint32_t entry, uint32_t stack)
{
	return setup_prot(vcpu, mem, tables, false, entry, stack);
}

int ekvm_vcpu_setup_long64(struct ekvm_vcpu *vcpu, struct ekvm_guest_mem *mem,
			   const struct ekvm_guest_tables *tables, uint64_t entry, uint64_t stack)
{
	return setup_prot(vcpu, mem, tables, true, entry, stack);
}
