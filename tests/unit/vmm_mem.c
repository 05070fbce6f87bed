/* tests/unit/vmm_mem.c - unit tests of guest memory (layout, checked accessors, backings), the E820 map and boot MSRs. */
#include "../lib/test.h"

#include "../../vmm/arch/x86/layout.h"
#include "../../vmm/arch/x86/x86.h"
#include "../../lib/io/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Resident pages of a mapping, from mincore. */
static size_t resident_pages(void *p, size_t len)
{
	size_t pages = len / 4096;
	unsigned char *vec = calloc(pages, 1);
	size_t n = 0;
	if (vec && mincore(p, len, vec) == 0)
		for (size_t i = 0; i < pages; i++)
			n += vec[i] & 1;
	free(vec);
	return n;
}

TEST(vmm_mem_single_region)
{
	struct vmm_mem m;
	struct ember_error err = {0};
	REQUIRE_OK(vmm_mem_create(&m, 64 << 20, X86_MMIO_HOLE_START, X86_MMIO_HOLE_END,
				  EMBER_MEM_ANON, false, &err));
	CHECK_EQ(m.nregions, 1);
	CHECK_EQ(m.regions[0].gpa, 0);
	CHECK_EQ(m.regions[0].size, 64 << 20);
	CHECK_EQ(vmm_mem_low_end(&m), 64 << 20);
	/* nothing was touched: no page is resident */
	CHECK_EQ(resident_pages(m.host, 64 << 20), 0);

	CHECK(vmm_mem_ptr(&m, 0, 1) == m.host);
	CHECK(vmm_mem_ptr(&m, (64 << 20) - 1, 1) == m.host + (64 << 20) - 1);
	CHECK(vmm_mem_ptr(&m, (64 << 20) - 4096, 4096) != NULL);
	CHECK(vmm_mem_ptr(&m, (64 << 20) - 4096, 4097) == NULL);
	CHECK(vmm_mem_ptr(&m, 64 << 20, 1) == NULL);
	CHECK(vmm_mem_ptr(&m, 64 << 20, 0) == NULL);
	CHECK(vmm_mem_ptr(&m, 0, 0) != NULL);
	CHECK(vmm_mem_ptr(&m, UINT64_MAX, 2) == NULL);
	CHECK(vmm_mem_ptr(&m, 16, UINT64_MAX) == NULL);
	CHECK(vmm_mem_ptr(&m, UINT64_MAX - 5, 10) == NULL);
	CHECK(!vmm_mem_contains(&m, 0x1000, UINT64_MAX - 0x800));

	uint8_t buf[16] = "0123456789abcde";
	CHECK_OK(vmm_mem_write(&m, 0x1000, buf, 16));
	uint8_t back[16] = {0};
	CHECK_OK(vmm_mem_read(&m, 0x1000, back, 16));
	CHECK(!memcmp(buf, back, 16));
	CHECK_ERR(vmm_mem_write(&m, (64 << 20) - 8, buf, 16), -EFAULT);
	CHECK_ERR(vmm_mem_read(&m, (64 << 20) - 8, back, 16), -EFAULT);
	CHECK_OK(vmm_mem_zero(&m, 0x1000, 16));
	CHECK_EQ(((uint8_t *)m.host)[0x1005], 0);
	CHECK_ERR(vmm_mem_zero(&m, 64 << 20, 1), -EFAULT);
	/* only what was written is resident (one transparent huge page at most) */
	CHECK(resident_pages(m.host, 64 << 20) <= 512);
	vmm_mem_destroy(&m);
	vmm_mem_destroy(&m); /* twice is fine */
	CHECK(vmm_mem_ptr(&m, 0, 1) == NULL);
	CHECK(vmm_mem_ptr(NULL, 0, 1) == NULL);
}

TEST(vmm_mem_two_regions_around_hole)
{
	struct vmm_mem m;
	/* a small hole for the test: RAM [0,16M) and [32M, 40M) */
	REQUIRE_OK(vmm_mem_create(&m, 24 << 20, 16 << 20, 32 << 20, EMBER_MEM_ANON, false, NULL));
	CHECK_EQ(m.nregions, 2);
	CHECK_EQ(m.regions[1].gpa, 32 << 20);
	CHECK_EQ(m.regions[1].size, 8 << 20);
	CHECK_EQ(m.regions[1].offset, 16 << 20);
	CHECK_EQ(vmm_mem_low_end(&m), 16 << 20);
	CHECK(vmm_mem_ptr(&m, (16 << 20) - 1, 1) != NULL);
	CHECK(vmm_mem_ptr(&m, 16 << 20, 1) == NULL); /* the hole */
	CHECK(vmm_mem_ptr(&m, (31 << 20), 1) == NULL);
	CHECK(vmm_mem_ptr(&m, (16 << 20) - 1, 2) == NULL); /* straddles the hole */
	CHECK(vmm_mem_ptr(&m, 32 << 20, 1) == m.host + (16 << 20));
	CHECK(vmm_mem_ptr(&m, (40 << 20) - 1, 1) != NULL);
	CHECK(vmm_mem_ptr(&m, 40 << 20, 1) == NULL);

	struct vmm_e820 e[VMM_E820_MAX];
	unsigned n = vmm_x86_e820(&m, e, VMM_E820_MAX);
	CHECK_EQ(n, 4);
	CHECK_EQ(e[0].addr, 0);
	CHECK_EQ(e[0].size, X86_EBDA_START);
	CHECK_EQ(e[1].type, VMM_E820_RESERVED);
	CHECK_EQ(e[2].addr, X86_HIMEM_START);
	CHECK_EQ(e[2].addr + e[2].size, 16 << 20);
	CHECK_EQ(e[3].addr, 32 << 20);
	CHECK_EQ(e[3].size, 8 << 20);
	vmm_mem_destroy(&m);
}

TEST(vmm_mem_e820_large)
{
	/* 6 GiB: 3 GiB below the hole, 3 GiB from 4 GiB (address space only) */
	struct vmm_mem m;
	REQUIRE_OK(vmm_mem_create(&m, 6ull << 30, X86_MMIO_HOLE_START, X86_MMIO_HOLE_END,
				  EMBER_MEM_ANON, false, NULL));
	struct vmm_e820 e[VMM_E820_MAX];
	unsigned n = vmm_x86_e820(&m, e, VMM_E820_MAX);
	REQUIRE_EQ(n, 4);
	CHECK_EQ(e[2].addr + e[2].size, X86_MMIO_HOLE_START);
	CHECK_EQ(e[3].addr, 1ull << 32);
	CHECK_EQ(e[3].size, 3ull << 30);
	uint64_t ram = 0;
	for (unsigned i = 0; i < n; i++)
		if (e[i].type == VMM_E820_RAM)
			ram += e[i].size;
	CHECK_EQ(ram, (6ull << 30) - (X86_HIMEM_START - X86_EBDA_START));
	/* entries never overlap and are sorted */
	for (unsigned i = 1; i < n; i++)
		CHECK(e[i - 1].addr + e[i - 1].size <= e[i].addr);
	CHECK_EQ(vmm_x86_e820(&m, e, 2), 2);
	vmm_mem_destroy(&m);
}

TEST(vmm_mem_memfd_backing)
{
	struct vmm_mem m;
	struct ember_error err = {0};
	REQUIRE_OK(vmm_mem_create(&m, 8 << 20, X86_MMIO_HOLE_START, X86_MMIO_HOLE_END,
				  EMBER_MEM_MEMFD, false, &err));
	CHECK(m.fd >= 0);
	CHECK_OK(vmm_mem_write(&m, 4096, "hi", 2));
	char b[2];
	CHECK_EQ(pread(m.fd, b, 2, 4096), 2);
	CHECK(b[0] == 'h' && b[1] == 'i');
	vmm_mem_destroy(&m);
	CHECK_EQ(m.fd, -1);
}

TEST(vmm_mem_rejects_bad_arguments)
{
	struct vmm_mem m;
	struct ember_error err = {0};
	CHECK_ERR(vmm_mem_create(&m, 0, 0, 0, EMBER_MEM_ANON, false, &err), -EINVAL);
	CHECK_ERR(vmm_mem_create(&m, 4097, 0, 0, EMBER_MEM_ANON, false, &err), -EINVAL);
	CHECK(strstr(err.msg, "multiple of 4 KiB") != NULL);
	CHECK_ERR(vmm_mem_create(&m, 4 << 20, 8192, 4096, EMBER_MEM_ANON, false, &err), -EINVAL);
	CHECK_ERR(vmm_mem_create(&m, 4 << 20, 4097, 8192, EMBER_MEM_ANON, false, &err), -EINVAL);
	CHECK(strstr(err.msg, "hole") != NULL);
	CHECK_ERR(vmm_mem_create(&m, 4 << 20, 0, 0, (enum ember_mem_backing)7, false, &err),
		  -EINVAL);
}

TEST(vmm_mem_hugepages_clear_error)
{
	struct vmm_mem m;
	struct ember_error err = {0};
	CHECK_ERR(vmm_mem_create(&m, (2 << 20) + 4096, 0, 0, EMBER_MEM_ANON, true, &err), -EINVAL);
	CHECK(strstr(err.msg, "2048 KiB") != NULL);
	int r = vmm_mem_create(&m, 2 << 20, 0, 0, EMBER_MEM_ANON, true, &err);
	if (r == 0) {
		TEST_LOG("the host has hugetlb pages reserved");
		CHECK(m.hugepages);
		vmm_mem_destroy(&m);
	} else {
		CHECK(strstr(err.msg, "nr_hugepages") != NULL);
	}
	r = vmm_mem_create(&m, 2 << 20, 0, 0, EMBER_MEM_MEMFD, true, &err);
	if (r == 0)
		vmm_mem_destroy(&m);
	else
		CHECK(err.msg[0] != 0);
}

TEST(vmm_boot_msrs_expected)
{
	struct ehv_msr msrs[32];
	unsigned n = vmm_x86_boot_msrs(msrs, 32);
	CHECK(n >= 10);
	bool mtrr = false, misc = false;
	for (unsigned i = 0; i < n; i++) {
		if (msrs[i].index == 0x2ff) {
			mtrr = true;
			CHECK_EQ(msrs[i].value, 0x806);
		}
		if (msrs[i].index == 0x1a0) {
			misc = true;
			CHECK_EQ(msrs[i].value & 1, 1);
		}
	}
	CHECK(mtrr && misc);
	CHECK_EQ(vmm_x86_boot_msrs(msrs, 3), 3);
}

TEST(vmm_mem_host_mapping_2m_aligned)
{
	/* KVM and THP need the host address congruent to the guest's mod 2 MiB */
	for (int i = 0; i < 4; i++) {
		struct vmm_mem m;
		REQUIRE_OK(vmm_mem_create(&m, (16 + 4 * i) << 20, X86_MMIO_HOLE_START,
					  X86_MMIO_HOLE_END,
					  i & 1 ? EMBER_MEM_MEMFD : EMBER_MEM_ANON, false, NULL));
		CHECK_EQ((uintptr_t)m.host & ((2u << 20) - 1), 0);
		vmm_mem_destroy(&m);
	}
}
