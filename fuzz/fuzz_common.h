/* fuzz/fuzz_common.h - shared by the fuzz targets: one lazily created guest memory and a boot request. */
#ifndef EMBER_FUZZ_COMMON_H
#define EMBER_FUZZ_COMMON_H

#include "../vmm/arch/x86/layout.h"
#include "../vmm/internal.h"
#include "../vmm/boot/boot.h"
#include "../lib/io/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * 256 MiB of anonymous guest memory, created once per process and never
 * freed (the loaders only write into it, and only the pages they write get
 * faulted in). Large enough for a real kernel's init_size, so that inputs
 * derived from /boot/vmlinuz-* get past the size checks to the copy.
 */
#define FUZZ_MEM_SIZE (256ull << 20)

static inline const struct vmm_mem *fuzz_mem(void)
{
	static struct vmm_mem m;
	static int ready;
	if (!ready) {
		struct ember_error err = {0};
		if (vmm_mem_create(&m, FUZZ_MEM_SIZE, X86_MMIO_HOLE_START, X86_MMIO_HOLE_END,
				   EMBER_MEM_ANON, false, &err) < 0) {
			fprintf(stderr, "fuzz: vmm_mem_create: %s\n", err.msg);
			abort();
		}
		ready = 1;
	}
	return &m;
}

/* The E820 map the VMM would pass for FUZZ_MEM_SIZE. */
static const struct vmm_e820 fuzz_e820[] = {
    {0, X86_EBDA_START, VMM_E820_RAM},
    {X86_HIMEM_START, FUZZ_MEM_SIZE - X86_HIMEM_START, VMM_E820_RAM},
};

/* Crashes (so that libFuzzer saves the input) when an invariant is broken. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz: %s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * After a successful bzImage boot load: the zero page holds the setup
 * header, and the initrd it names (initrd_size bytes, 0: none) lies in RAM
 * below the hole, above the kernel's whole footprint (vmm_bzimage_end) and
 * within initrd_addr_max. Returns the initrd's address.
 */
static inline uint64_t fuzz_check_zero_page(const struct vmm_mem *mem, const struct vmm_bzimage *bz,
					    uint64_t initrd_size, unsigned e820_count)
{
	const uint8_t *zp = vmm_mem_ptr(mem, X86_ZERO_PAGE_ADDR, 4096);
	FUZZ_CHECK(zp && !memcmp(zp + 0x202, "HdrS", 4));
	FUZZ_CHECK(zp[0x1e8] == e820_count); /* e820_entries */
	uint64_t gpa = vmm_le32(zp + 0x218) | (uint64_t)vmm_le32(zp + 0x0c0) << 32;
	uint64_t size = vmm_le32(zp + 0x21c) | (uint64_t)vmm_le32(zp + 0x0c4) << 32;
	FUZZ_CHECK(size == initrd_size);
	if (size) {
		FUZZ_CHECK(gpa % 4096 == 0);
		FUZZ_CHECK(gpa >= vmm_bzimage_end(bz, X86_BZIMAGE_LOAD_ADDR));
		FUZZ_CHECK(gpa + size <= vmm_mem_low_end(mem));
		FUZZ_CHECK(gpa + size - 1 <= bz->initrd_addr_max);
	}
	return gpa;
}

/* The same for a PVH boot: start_info, its module list (the initrd above
 * kernel_end) and memory map. */
static inline uint64_t fuzz_check_start_info(const struct vmm_mem *mem, uint64_t kernel_end,
					     uint64_t initrd_size, unsigned e820_count)
{
	const uint8_t *si = vmm_mem_ptr(mem, X86_PVH_INFO_ADDR, 56);
	FUZZ_CHECK(si && vmm_le32(si) == 0x336ec578);
	FUZZ_CHECK(vmm_le32(si + 12) == (initrd_size ? 1 : 0)); /* nr_modules */
	FUZZ_CHECK(vmm_le32(si + 48) == e820_count);		/* memmap_entries */
	if (!initrd_size)
		return 0;
	const uint8_t *mod = vmm_mem_ptr(mem, vmm_le64(si + 16), 32);
	FUZZ_CHECK(mod);
	uint64_t gpa = vmm_le64(mod), size = vmm_le64(mod + 8);
	FUZZ_CHECK(size == initrd_size);
	FUZZ_CHECK(gpa % 4096 == 0 && gpa >= kernel_end);
	FUZZ_CHECK(gpa + size <= vmm_mem_low_end(mem));
	return gpa;
}

#endif /* EMBER_FUZZ_COMMON_H */
