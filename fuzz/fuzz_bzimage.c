/* fuzz/fuzz_bzimage.c - libFuzzer target: the bzImage loader (parse, load, zero page) on arbitrary bytes. */
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
	struct vmm_bzimage bz;
	struct ember_error err;
	if (vmm_bzimage_parse(data, size, &bz, &err) == 0) {
		/* what parse accepted must be self-consistent */
		if (bz.setup_size + bz.payload_size != size || bz.syssize_bytes > bz.payload_size)
			abort();
	}
	struct vmm_boot_request req = {
	    .format = EMBER_KERNEL_BZIMAGE,
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
	if (vmm_boot_load(&mem, &req, &entry, &err) == 0 && entry.rip != 0x100200)
		abort();
	return 0;
}
