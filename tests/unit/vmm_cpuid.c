/* tests/unit/vmm_cpuid.c - unit tests of the CPUID filter: hidden SVM/VMX, hypervisor bit, KVM leaves, topology. */
#include "../lib/test.h"

#include "../../vmm/arch/x86/x86.h"

#include <errno.h>
#include <stdlib.h>

#define SIG EHV_CPUID_SIGNIFICANT_INDEX

/* A host table shaped like KVM_GET_SUPPORTED_CPUID's answer. */
static struct vmm_cpuid *host_table(bool amd)
{
	static const struct ehv_x86_cpuid_entry common[] = {
	    {.function = 1,
	     .eax = 0x00a20f12,
	     .ebx = 0x00100800,
	     .ecx = 0x7ef8320b | (1u << 5),
	     .edx = 0x178bfbff},
	    {.function = 4, .index = 0, .flags = SIG, .eax = 0x00000121},
	    {.function = 4, .index = 1, .flags = SIG, .eax = 0x00000122},
	    {.function = 4, .index = 2, .flags = SIG, .eax = 0x00000143},
	    {.function = 4, .index = 3, .flags = SIG, .eax = 0x00000163},
	    {.function = 4, .index = 4, .flags = SIG, .eax = 0},
	    {.function = 7, .index = 0, .flags = SIG, .ebx = 0x219c91a9},
	    {.function = 0xb, .index = 0, .flags = SIG, .eax = 1, .ebx = 2, .ecx = 0x100},
	    {.function = 0xb, .index = 1, .flags = SIG, .eax = 5, .ebx = 16, .ecx = 0x201},
	    {.function = 0x40000000,
	     .eax = 0x40000001,
	     .ebx = 0x4b4d564b,
	     .ecx = 0x564b4d56,
	     .edx = 0x4d},
	    {.function = 0x40000001, .eax = 0x01007afb},
	    {.function = 0x80000000, .eax = 0x80000021},
	    {.function = 0x80000001, .ecx = 0x75c237ff, .edx = 0x2fd3fbff},
	    {.function = 0x80000008, .eax = 0x3030, .ecx = 0x700f},
	    {.function = 0x8000000a, .eax = 1, .ebx = 0x8000, .edx = 0x1ebfbcff},
	    {.function = 0x8000001e, .eax = 0x12, .ebx = 0x0103, .ecx = 0x0301},
	};
	size_t n = sizeof(common) / sizeof(common[0]) + 1;
	struct vmm_cpuid *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	c->entries[0] = (struct ehv_x86_cpuid_entry){.function = 0, .eax = 0x10};
	if (amd) {
		c->entries[0].ebx = 0x68747541; /* Auth enti cAMD */
		c->entries[0].edx = 0x69746e65;
		c->entries[0].ecx = 0x444d4163;
	} else {
		c->entries[0].ebx = 0x756e6547; /* Genu ineI ntel */
		c->entries[0].edx = 0x49656e69;
		c->entries[0].ecx = 0x6c65746e;
	}
	for (size_t i = 1; i < n; i++)
		c->entries[i] = common[i - 1];
	c->nent = (uint32_t)n;
	return c;
}

static const struct ehv_x86_cpuid_entry *get(const struct vmm_cpuid *c, uint32_t f, uint32_t i)
{
	const struct ehv_x86_cpuid_entry *e = vmm_x86_cpuid_find(c, f, i);
	if (!e)
		TEST_FAIL("no CPUID leaf %#x.%u", f, i);
	return e;
}

TEST(vmm_cpuid_hides_virtualisation_sets_hypervisor)
{
	struct vmm_cpuid *host = host_table(true), *c;
	uint32_t nent = host->nent;
	REQUIRE_OK(vmm_x86_cpuid(host, 0, 1, &c));
	CHECK_EQ(host->nent, nent); /* input untouched */
	CHECK(host->entries[1].ecx & (1u << 5));
	CHECK_EQ(get(c, 1, 0)->ecx & (1u << 5), 0);	     /* VMX */
	CHECK(get(c, 1, 0)->ecx & (1u << 31));		     /* hypervisor */
	CHECK(get(c, 1, 0)->ecx & (1u << 24));		     /* TSC deadline */
	CHECK_EQ(get(c, 0x80000001, 0)->ecx & (1u << 2), 0); /* SVM */
	CHECK(vmm_x86_cpuid_find(c, 0x8000000a, 0) == NULL);
	/* KVM's leaves are kept: signature and kvmclock */
	CHECK_EQ(get(c, 0x40000000, 0)->ebx, 0x4b4d564b);
	CHECK(get(c, 0x40000001, 0)->eax & (1u << 3));
	/* other leaves pass through */
	CHECK_EQ(get(c, 7, 0)->ebx, 0x219c91a9);
	free(c);
	free(host);
}

TEST(vmm_cpuid_topology_consistent)
{
	for (int amd = 0; amd <= 1; amd++) {
		struct vmm_cpuid *host = host_table(amd);
		for (unsigned ncpus = 1; ncpus <= 6; ncpus++) {
			for (unsigned v = 0; v < ncpus; v++) {
				struct vmm_cpuid *c;
				REQUIRE_OK(vmm_x86_cpuid(host, v, ncpus, &c));
				const struct ehv_x86_cpuid_entry *l1 = get(c, 1, 0);
				CHECK_EQ(l1->ebx >> 24, v);		       /* APIC ID */
				CHECK((l1->ebx >> 16 & 0xff) >= ncpus);	       /* logical count */
				CHECK_EQ(l1->ebx & 0xffff, 0x0800);	       /* CLFLUSH kept */
				CHECK_EQ(!!(l1->edx & (1u << 28)), ncpus > 1); /* HTT */
				/* leaf 0xB: SMT level 1 thread, core level ncpus */
				CHECK_EQ(get(c, 0xb, 0)->ebx, 1);
				CHECK_EQ(get(c, 0xb, 0)->ecx, 0x100);
				CHECK_EQ(get(c, 0xb, 0)->edx, v);
				CHECK_EQ(get(c, 0xb, 1)->ebx, ncpus);
				CHECK_EQ(get(c, 0xb, 1)->ecx, 0x201);
				CHECK((1u << get(c, 0xb, 1)->eax) >= ncpus);
				CHECK_EQ(get(c, 0xb, 1)->edx, v);
				CHECK_EQ(get(c, 0xb, 2)->ecx, 2); /* end of levels */
				/* leaf 4: cores per package; L1/L2 private, L3 shared */
				unsigned cores = (get(c, 4, 0)->eax >> 26) + 1;
				CHECK(cores >= ncpus && cores < 2 * ncpus);
				CHECK_EQ(get(c, 4, 0)->eax >> 14 & 0xfff, 0);
				CHECK_EQ((get(c, 4, 3)->eax >> 14 & 0xfff) + 1, cores);
				CHECK_EQ(get(c, 4, 0)->eax & 0x3fff, 0x121); /* cache type kept */
				CHECK_EQ(get(c, 4, 4)->eax, 0);
				if (amd) {
					CHECK_EQ((get(c, 0x80000008, 0)->ecx & 0xff) + 1, ncpus);
					CHECK((1u << (get(c, 0x80000008, 0)->ecx >> 12 & 0xf)) >=
					      ncpus);
					CHECK_EQ(get(c, 0x8000001e, 0)->eax, v);
					CHECK_EQ(get(c, 0x8000001e, 0)->ecx & 0x7ff, 0);
				} else {
					CHECK_EQ(get(c, 0x80000008, 0)->ecx, 0x700f);
				}
				/* exactly three 0xB subleaves */
				unsigned nb = 0;
				for (uint32_t i = 0; i < c->nent; i++)
					nb += c->entries[i].function == 0xb;
				CHECK_EQ(nb, 3);
				free(c);
			}
		}
		free(host);
	}
}

/* Above 64 vCPUs (issue 9): leaf 1's logical count was 0 for 129-254 with
 * HTT set, and leaf 4's core count saturated at 64 while leaf 0xB said
 * ncpus. Now packages of up to 64 cores, and every leaf agrees. */
TEST(vmm_cpuid_topology_many_vcpus)
{
	static const unsigned counts[] = {1, 2, 3, 64, 65, 128, 129, 254};
	for (int amd = 0; amd <= 1; amd++) {
		struct vmm_cpuid *host = host_table(amd);
		for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
			unsigned n = counts[k];
			unsigned per_pkg = n < 64 ? n : 64;
			unsigned vs[] = {0, n / 2, n - 1, n > 64 ? 64 : 0};
			for (size_t j = 0; j < 4; j++) {
				unsigned v = vs[j];
				struct vmm_cpuid *c;
				REQUIRE_OK(vmm_x86_cpuid(host, v, n, &c));
				const struct ehv_x86_cpuid_entry *l1 = get(c, 1, 0);
				unsigned logical = l1->ebx >> 16 & 0xff;
				unsigned shift = get(c, 0xb, 1)->eax;
				unsigned cores4 = (get(c, 4, 0)->eax >> 26) + 1;
				CHECK_EQ(l1->ebx >> 24, v); /* APIC ID */
				CHECK_EQ(!!(l1->edx & (1u << 28)), n > 1);
				if (n > 1 && logical == 0)
					TEST_FAIL("%u vCPUs: HTT with a logical count of 0", n);
				/* leaf 1, leaf 4 and leaf 0xB: the same package */
				CHECK_EQ(logical, 1u << shift);
				CHECK_EQ(cores4, 1u << shift);
				CHECK_EQ(get(c, 0xb, 1)->ebx, per_pkg);
				CHECK(per_pkg <= (1u << shift) && (1u << shift) < 2 * per_pkg + 1);
				CHECK_EQ((get(c, 4, 3)->eax >> 14 & 0xfff) + 1, cores4);
				CHECK_EQ(get(c, 0xb, 0)->edx, v);
				/* the APIC ID splits into package and core by the shift */
				CHECK_EQ(v >> shift, v / 64);
				CHECK((v & ((1u << shift) - 1)) < per_pkg);
				/* enough packages for every vCPU */
				CHECK(((n + per_pkg - 1) / per_pkg) * per_pkg >= n);
				if (amd) {
					CHECK_EQ((get(c, 0x80000008, 0)->ecx & 0xff) + 1, per_pkg);
					CHECK_EQ(get(c, 0x80000008, 0)->ecx >> 12 & 0xf, shift);
					CHECK_EQ(get(c, 0x8000001e, 0)->ebx & 0xff, v % 64);
					CHECK_EQ(get(c, 0x8000001e, 0)->ecx & 0xff, v / 64);
				}
				free(c);
			}
		}
		free(host);
	}
}

/* The host's physical address bits bound --mem (issue 9: 1T failed in
 * KVM_SET_USER_MEMORY_REGION with EINVAL on a 40-bit host). */
TEST(vmm_max_guest_ram_from_phys_bits)
{
	const uint64_t hole = 1ull << 30;
	CHECK_EQ(vmm_x86_max_guest_ram(40, hole), (1ull << 40) - hole);
	CHECK_EQ(vmm_x86_max_guest_ram(36, hole), (64ull << 30) - hole);
	CHECK_EQ(vmm_x86_max_guest_ram(39, hole), (512ull << 30) - hole);
	CHECK_EQ(vmm_x86_max_guest_ram(46, hole), EMBER_MAX_MEM);
	CHECK_EQ(vmm_x86_max_guest_ram(52, hole), EMBER_MAX_MEM);
	CHECK_EQ(vmm_x86_max_guest_ram(30, hole), 0);
	unsigned bits = vmm_x86_host_phys_bits();
	CHECK(bits >= 32 && bits <= 52);
	TEST_LOG("this host: %u physical address bits, at most %llu GiB of guest RAM", bits,
		 (unsigned long long)vmm_x86_max_guest_ram(bits, hole) >> 30);
}

TEST(vmm_cpuid_adds_missing_kvm_leaves)
{
	struct vmm_cpuid *host = host_table(false), *c;
	/* drop 0x40000000/1 from the host table */
	uint32_t w = 0;
	for (uint32_t i = 0; i < host->nent; i++)
		if ((host->entries[i].function & 0xffff0000) != 0x40000000)
			host->entries[w++] = host->entries[i];
	host->nent = w;
	REQUIRE_OK(vmm_x86_cpuid(host, 1, 2, &c));
	CHECK_EQ(get(c, 0x40000000, 0)->eax, 0x40000001);
	CHECK_EQ(get(c, 0x40000000, 0)->ecx, 0x564b4d56);
	CHECK(get(c, 0x40000001, 0)->eax & 1);
	free(c);
	free(host);
}

TEST(vmm_cpuid_xsave_leaf_matches_features)
{
	struct vmm_cpuid *host = host_table(true), *c;
	size_t n = host->nent;
	host = realloc(host, sizeof(*host) + (n + 4) * sizeof(host->entries[0]));
	/* XCR0 x87|SSE|AVX|PKRU; AVX state at 576 (256 bytes), PKRU at 2688 */
	host->entries[n++] = (struct ehv_x86_cpuid_entry){
	    .function = 0xd, .index = 0, .flags = SIG, .eax = 0x207, .ebx = 0x240, .ecx = 0xa88};
	host->entries[n++] =
	    (struct ehv_x86_cpuid_entry){.function = 0xd, .index = 1, .flags = SIG, .eax = 5};
	host->entries[n++] = (struct ehv_x86_cpuid_entry){
	    .function = 0xd, .index = 2, .flags = SIG, .eax = 0x100, .ebx = 0x240};
	host->entries[n++] = (struct ehv_x86_cpuid_entry){
	    .function = 0xd, .index = 9, .flags = SIG, .eax = 8, .ebx = 0xa80};
	host->nent = (uint32_t)n;
	/* leaf 1 ECX of the table has no AVX (bit 28); leaf 7 ECX has no PKU */
	host->entries[1].ecx &= ~(1u << 28);
	REQUIRE_OK(vmm_x86_cpuid(host, 0, 1, &c));
	CHECK_EQ(get(c, 0xd, 0)->eax, 0x3);
	CHECK_EQ(get(c, 0xd, 0)->ecx, 576);
	CHECK(vmm_x86_cpuid_find(c, 0xd, 2) == NULL);
	CHECK(vmm_x86_cpuid_find(c, 0xd, 9) == NULL);
	CHECK_EQ(get(c, 0xd, 1)->eax, 5);
	free(c);
	/* with AVX and PKU visible, both stay and the size covers PKRU */
	host->entries[1].ecx |= 1u << 28;
	for (uint32_t i = 0; i < host->nent; i++)
		if (host->entries[i].function == 7)
			host->entries[i].ecx |= 1u << 3;
	REQUIRE_OK(vmm_x86_cpuid(host, 0, 1, &c));
	CHECK_EQ(get(c, 0xd, 0)->eax, 0x207);
	CHECK_EQ(get(c, 0xd, 0)->ecx, 0xa88);
	CHECK_EQ(get(c, 0xd, 2)->eax, 0x100);
	free(c);
	free(host);
}

/* The starting XCR0 is exactly the user components leaf 0xD lists. */
TEST(vmm_cpuid_initial_xcr0)
{
	struct vmm_cpuid *host = host_table(true), *c;
	size_t n = host->nent;
	host = realloc(host, sizeof(*host) + (n + 3) * sizeof(host->entries[0]));
	host->entries[n++] = (struct ehv_x86_cpuid_entry){
	    .function = 0xd, .index = 0, .flags = SIG, .eax = 0x207, .ebx = 0x240, .ecx = 0xa88};
	host->entries[n++] = (struct ehv_x86_cpuid_entry){
	    .function = 0xd, .index = 2, .flags = SIG, .eax = 0x100, .ebx = 0x240};
	host->entries[n++] = (struct ehv_x86_cpuid_entry){
	    .function = 0xd, .index = 9, .flags = SIG, .eax = 8, .ebx = 0xa80};
	host->nent = (uint32_t)n;
	host->entries[1].ecx |= (1u << 26) | (1u << 28); /* XSAVE, AVX */
	REQUIRE_OK(vmm_x86_cpuid(host, 0, 1, &c));
	CHECK_EQ(vmm_x86_initial_xcr0(c), 0x7); /* no PKU in leaf 7: x87, SSE, AVX */
	free(c);
	for (uint32_t i = 0; i < host->nent; i++)
		if (host->entries[i].function == 7)
			host->entries[i].ecx |= 1u << 3;
	REQUIRE_OK(vmm_x86_cpuid(host, 0, 1, &c));
	CHECK_EQ(vmm_x86_initial_xcr0(c), 0x207);
	free(c);
	host->entries[1].ecx &= ~(1u << 26); /* no XSAVE: XCR0 left alone */
	REQUIRE_OK(vmm_x86_cpuid(host, 0, 1, &c));
	CHECK_EQ(vmm_x86_initial_xcr0(c), 0);
	free(c);
	free(host);
}

TEST(vmm_cpuid_rejects_bad_arguments)
{
	struct vmm_cpuid *host = host_table(true), *c = NULL;
	CHECK_ERR(vmm_x86_cpuid(NULL, 0, 1, &c), -EINVAL);
	CHECK_ERR(vmm_x86_cpuid(host, 0, 0, &c), -EINVAL);
	CHECK_ERR(vmm_x86_cpuid(host, 2, 2, &c), -EINVAL);
	CHECK_ERR(vmm_x86_cpuid(host, 0, 255, &c), -EINVAL);
	CHECK_ERR(vmm_x86_cpuid(host, 0, 1, NULL), -EINVAL);
	/* a table with no leaf 0 or 0xB: no topology leaves are invented */
	host->nent = 0;
	REQUIRE_OK(vmm_x86_cpuid(host, 0, 1, &c));
	CHECK(vmm_x86_cpuid_find(c, 0xb, 0) == NULL);
	CHECK(vmm_x86_cpuid_find(c, 0x40000000, 0) != NULL);
	free(c);
	free(host);
}
