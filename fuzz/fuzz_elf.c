/* fuzz/fuzz_elf.c - libFuzzer target: the ELF/PVH loader (parse, load, start_info) on arbitrary bytes. */
#include "../vmm/arch/x86/layout.h"
#include "../vmm/boot/boot.h"
#include "../vmm/mem.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmm_mem mem;
	static const uint8_t initrd[4096] = {1};
	static const struct vmm_e820 e820[] = {{0, 0x9fc00, VMM_E820_RAM},
					       {0x100000, (64 << 20) - 0x100000, VMM_E820_RAM}};
	if (!mem.host && vmm_mem_create(&mem, 64 << 20, X86_MMIO_HOLE_START, X86_MMIO_HOLE_END,
					EMBER_MEM_ANON, false, NULL) < 0)
		abort();
	struct vmm_elf elf;
	struct ember_error err;
	if (vmm_elf_parse(data, size, &elf, &err) == 0) {
		/* every accepted segment lies inside the file; the entry inside a segment */
		int inside = 0;
		for (unsigned i = 0; i < elf.nsegments; i++) {
			const struct vmm_elf_segment *s = &elf.segments[i];
			if (s->offset > size || s->filesz > size - s->offset ||
			    s->filesz > s->memsz)
				abort();
			inside |= elf.pvh_entry >= s->paddr && elf.pvh_entry - s->paddr < s->filesz;
		}
		if (!inside)
			abort();
	}
	struct vmm_boot_request req = {
	    .format = EMBER_KERNEL_ELF_PVH,
	    .kernel = data,
	    .kernel_size = size,
	    .initrd = initrd,
	    .initrd_size = sizeof(initrd),
	    .cmdline = "console=ttyS0",
	    .rsdp_gpa = 0xe0000,
	    .e820 = e820,
	    .e820_count = 2,
	};
	struct vmm_boot_entry entry;
	vmm_boot_load(&mem, &req, &entry, &err);
	return 0;
}
