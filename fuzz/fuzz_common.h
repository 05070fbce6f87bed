/* fuzz/fuzz_common.h - shared by the fuzz targets: one lazily created guest memory and a boot request. */
#ifndef EMBER_FUZZ_COMMON_H
#define EMBER_FUZZ_COMMON_H

#include "../vmm/arch/x86/layout.h"
#include "../vmm/internal.h"
#include "../vmm/boot/boot.h"
#include "../vmm/mem.h"

#include <stdio.h>
#include <stdlib.h>

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

#endif /* EMBER_FUZZ_COMMON_H */
