/* vmm/arch/x86/cpuid.c - the guest's CPUID: KVM's supported set, filtered, with a consistent topology. */
#include "x86.h"

#include <cpuid.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Leaf 1 */
#define L1_ECX_VMX	    (1u << 5)
#define L1_ECX_TSC_DEADLINE (1u << 24)
#define L1_ECX_XSAVE	    (1u << 26)
#define L1_ECX_HYPERVISOR   (1u << 31)
#define L1_EDX_HTT	    (1u << 28)
/* Leaf 0x80000001 */
#define LX1_ECX_SVM (1u << 2)

#define KVM_SIG_LEAF	  0x40000000u
#define KVM_FEATURES_LEAF 0x40000001u

const struct ehv_x86_cpuid_entry *vmm_x86_cpuid_find(const struct vmm_cpuid *c, uint32_t function,
						     uint32_t index)
{
	for (uint32_t i = 0; c && i < c->nent; i++) {
		const struct ehv_x86_cpuid_entry *e = &c->entries[i];
		if (e->function != function)
			continue;
		if ((e->flags & EHV_CPUID_SIGNIFICANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}

/* The most cores in one package: leaf 4 EAX[31:26] counts up to 64. */
#define PKG_MAX_CORES 64u

/* Bits needed to number n items: ceil(log2(n)). */
static unsigned id_bits(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

static bool is_amd(const struct vmm_cpuid *c)
{
	const struct ehv_x86_cpuid_entry *e = vmm_x86_cpuid_find(c, 0, 0);
	if (!e)
		return false;
	/* "AuthenticAMD" / "HygonGenuine": EBX, EDX, ECX */
	return (e->ebx == 0x68747541 && e->edx == 0x69746e65 && e->ecx == 0x444d4163) ||
	       (e->ebx == 0x6f677948 && e->edx == 0x6e65476e && e->ecx == 0x656e6975);
}

static void add(struct vmm_cpuid *c, uint32_t cap, struct ehv_x86_cpuid_entry e)
{
	if (c->nent < cap)
		c->entries[c->nent++] = e;
}

/* Leaf 0xB/0x1F: SMT level (one thread per core), then the core level with
 * per_pkg cores in the package. */
static void add_topology_leaf(struct vmm_cpuid *c, uint32_t cap, uint32_t leaf, unsigned apic,
			      unsigned per_pkg)
{
	const uint32_t f = EHV_CPUID_SIGNIFICANT_INDEX;
	/* level 0: SMT, one thread per core; level 1: cores in the package */
	add(c, cap,
	    (struct ehv_x86_cpuid_entry){.function = leaf,
					 .index = 0,
					 .flags = f,
					 .eax = 0,
					 .ebx = 1,
					 .ecx = (1u << 8) | 0,
					 .edx = apic});
	add(c, cap,
	    (struct ehv_x86_cpuid_entry){.function = leaf,
					 .index = 1,
					 .flags = f,
					 .eax = id_bits(per_pkg),
					 .ebx = per_pkg,
					 .ecx = (2u << 8) | 1,
					 .edx = apic});
	add(c, cap,
	    (struct ehv_x86_cpuid_entry){.function = leaf,
					 .index = 2,
					 .flags = f,
					 .eax = 0,
					 .ebx = 0,
					 .ecx = 2,
					 .edx = apic});
}

/* XSAVE components and the CPUID feature bit each needs (leaf, register,
 * bit): a component whose feature the guest does not see is dropped from
 * leaf 0xD, so that the sizes there agree with what the kernel enables.
 * (Seen under nested KVM on TCG: leaf 0xD offered AVX and PKRU state while
 * leaf 1/7 did not offer AVX or PKU, and Linux warned "XSAVE consistency
 * problem" and fell back to FXSAVE.) */
struct xfeature_need {
	unsigned first, last; /* component numbers */
	uint32_t leaf;
	int reg; /* 1 = EBX, 2 = ECX, 3 = EDX */
	unsigned bit;
};
static const struct xfeature_need xneeds[] = {
    {2, 2, 1, 2, 28},	/* AVX: 1.ECX.AVX */
    {3, 4, 7, 1, 14},	/* MPX: 7.EBX.MPX */
    {5, 7, 7, 1, 16},	/* AVX-512: 7.EBX.AVX512F */
    {9, 9, 7, 2, 3},	/* PKRU: 7.ECX.PKU */
    {17, 18, 7, 3, 24}, /* AMX: 7.EDX.AMX-TILE */
};

static bool has_bit(const struct vmm_cpuid *c, uint32_t leaf, int reg, unsigned bit)
{
	const struct ehv_x86_cpuid_entry *e = vmm_x86_cpuid_find(c, leaf, 0);
	if (!e)
		return false;
	uint32_t v = reg == 1 ? e->ebx : reg == 2 ? e->ecx : e->edx;
	return (v >> bit) & 1;
}

/* Rewrites leaf 0xD of c in place (c already filtered). */
static void fix_xsave_leaf(struct vmm_cpuid *c)
{
	struct ehv_x86_cpuid_entry *d0 = NULL;
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0xd && c->entries[i].index == 0)
			d0 = &c->entries[i];
	if (!d0)
		return;
	uint64_t mask = d0->eax | (uint64_t)d0->edx << 32;
	for (size_t k = 0; k < sizeof(xneeds) / sizeof(xneeds[0]); k++)
		if (!has_bit(c, xneeds[k].leaf, xneeds[k].reg, xneeds[k].bit))
			for (unsigned b = xneeds[k].first; b <= xneeds[k].last; b++)
				mask &= ~(1ull << b);
	uint32_t max_size = 576; /* legacy area + XSAVE header */
	uint32_t w = 0;
	for (uint32_t i = 0; i < c->nent; i++) {
		struct ehv_x86_cpuid_entry e = c->entries[i];
		if (e.function == 0xd && e.index >= 2 && e.index < 64) {
			if (!(mask & (1ull << e.index)))
				continue; /* a component the guest cannot enable */
			if (e.index < 32 && e.eax && e.ebx && e.eax + e.ebx > max_size)
				max_size = e.eax + e.ebx; /* user components: offset + size */
		}
		c->entries[w++] = e;
	}
	c->nent = w;
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0xd && c->entries[i].index == 0) {
			c->entries[i].eax = (uint32_t)mask;
			c->entries[i].edx = (uint32_t)(mask >> 32);
			c->entries[i].ecx = max_size;
			c->entries[i].ebx = 576; /* XCR0 = x87 at reset; KVM updates it */
		}
}

int vmm_x86_cpuid(const struct vmm_cpuid *host, unsigned vcpu_index, unsigned ncpus,
		  struct vmm_cpuid **out)
{
	if (!host || !out || ncpus == 0 || ncpus > 254 || vcpu_index >= ncpus || host->nent > 4096)
		return -EINVAL;
	uint32_t cap = host->nent + 8;
	struct vmm_cpuid *c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	const unsigned apic = vcpu_index;
	/* Up to 64 vCPUs are one package of cores; more are packages of 64:
	 * leaf 4's core count has 6 bits and leaf 1's logical count 8, and
	 * with packages of 64 every leaf says the same (APIC ID = package * 64
	 * + core, as leaf 0xB's shift says). */
	const unsigned per_pkg = ncpus < PKG_MAX_CORES ? ncpus : PKG_MAX_CORES;
	const unsigned pow2 = 1u << id_bits(per_pkg);
	const bool amd = is_amd(host);
	const struct ehv_x86_cpuid_entry *l0 = vmm_x86_cpuid_find(host, 0, 0);
	const uint32_t max_basic = l0 ? l0->eax : 0;
	bool have_sig = false, have_features = false;

	for (uint32_t i = 0; i < host->nent; i++) {
		struct ehv_x86_cpuid_entry e = host->entries[i];
		switch (e.function) {
		case 0xb:
		case 0x1f:
		case 0x8000000a:  /* SVM features */
			continue; /* topology leaves are rebuilt below; SVM is hidden */
		case 1:
			e.ecx &= ~L1_ECX_VMX;
			e.ecx |= L1_ECX_HYPERVISOR | L1_ECX_TSC_DEADLINE;
			e.ebx = (e.ebx & 0x0000ffffu) | (apic << 24) | (pow2 << 16);
			if (per_pkg > 1)
				e.edx |= L1_EDX_HTT;
			else
				e.edx &= ~L1_EDX_HTT;
			break;
		case 4: {
			/* EAX[31:26] cores per package - 1; EAX[25:14] threads
			 * sharing the cache - 1: L1/L2 per core, L3 per package */
			if ((e.eax & 0x1f) == 0)
				break; /* no more caches */
			unsigned level = (e.eax >> 5) & 7;
			unsigned sharing = level >= 3 ? pow2 - 1 : 0;
			e.eax = (e.eax & 0x3fffu) | ((sharing & 0xfffu) << 14) |
				(((pow2 - 1) & 0x3fu) << 26);
			break;
		}
		case KVM_SIG_LEAF:
			have_sig = true;
			break;
		case KVM_FEATURES_LEAF:
			have_features = true;
			break;
		case 0x80000001:
			e.ecx &= ~LX1_ECX_SVM;
			break;
		case 0x80000008:
			if (amd) /* ECX[15:12] APIC ID bits, [7:0] cores - 1 (per package) */
				e.ecx = (e.ecx & ~0xf0ffu) | (id_bits(per_pkg) << 12) |
					((per_pkg - 1) & 0xff);
			break;
		case 0x8000001e:
			e.eax = apic; /* extended APIC ID */
			/* core (compute unit) in the package, 1 thread per unit */
			e.ebx = (e.ebx & ~0xffffu) | ((vcpu_index % PKG_MAX_CORES) & 0xff);
			/* one node per package */
			e.ecx = (e.ecx & ~0x7ffu) | (vcpu_index / PKG_MAX_CORES);
			break;
		default:
			break;
		}
		add(c, cap, e);
	}
	if (max_basic >= 0xb)
		add_topology_leaf(c, cap, 0xb, apic, per_pkg);
	if (max_basic >= 0x1f)
		add_topology_leaf(c, cap, 0x1f, apic, per_pkg);
	if (!have_sig)
		/* "KVMKVMKVM\0\0\0" in EBX, ECX, EDX */
		add(c, cap,
		    (struct ehv_x86_cpuid_entry){.function = KVM_SIG_LEAF,
						 .eax = KVM_FEATURES_LEAF,
						 .ebx = 0x4b4d564b,
						 .ecx = 0x564b4d56,
						 .edx = 0x4d});
	if (!have_features)
		/* kvmclock (both MSR sets) with the stable bit, as KVM offers */
		add(c, cap,
		    (struct ehv_x86_cpuid_entry){.function = KVM_FEATURES_LEAF,
						 .eax = (1u << 0) | (1u << 3) | (1u << 24)});
	fix_xsave_leaf(c);
	*out = c;
	return 0;
}

unsigned vmm_x86_host_phys_bits(void)
{
	unsigned a, b, c, d;
	if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000008 &&
	    __get_cpuid(0x80000008, &a, &b, &c, &d) && (a & 0xff) >= 32)
		return a & 0xff;
	return 36;
}

uint64_t vmm_x86_max_guest_ram(unsigned phys_bits, uint64_t hole_size)
{
	/* KVM_MEM_MAX_NR_PAGES: a slot's page count fits in 31 bits; the RAM
	 * above 4 GiB is one slot, below the hole another */
	const uint64_t slot_max = ((1ull << 31) - 1) * 4096;
	uint64_t top = phys_bits >= 64 ? UINT64_MAX : 1ull << phys_bits;
	uint64_t max = top > hole_size ? top - hole_size : 0;
	if (max > slot_max + (4ull << 30) - hole_size)
		max = slot_max + (4ull << 30) - hole_size;
	if (max > EMBER_MAX_MEM)
		max = EMBER_MAX_MEM;
	return max & ~((2ull << 20) - 1);
}

uint64_t vmm_x86_initial_xcr0(const struct vmm_cpuid *c)
{
	const struct ehv_x86_cpuid_entry *l1 = vmm_x86_cpuid_find(c, 1, 0);
	const struct ehv_x86_cpuid_entry *d0 = vmm_x86_cpuid_find(c, 0xd, 0);
	if (!l1 || !(l1->ecx & L1_ECX_XSAVE) || !d0)
		return 0;
	uint64_t mask = d0->eax | (uint64_t)d0->edx << 32;
	return mask & 3 ? mask | 3 : 0; /* x87 and SSE always; nothing without them */
}
