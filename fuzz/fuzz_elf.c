/* fuzz/fuzz_elf.c - libFuzzer target: the input is an ELF vmlinux; parse it (PVH note), then boot-load it. */
#include "fuzz_common.h"

#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t initrd[4096] = {'0', '7', '0', '7', '0', '1'};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct vmm_mem *mem = fuzz_mem();
	struct ember_error err = {0};
	enum ember_kernel_format fmt;
	(void)vmm_kernel_detect(data, size, &fmt, &err);

	/* the parser alone: every segment it returns lies inside the file */
	struct vmm_elf elf;
	int r = vmm_elf_parse(data, size, &elf, &err);
	if (r == 0) {
		FUZZ_CHECK(elf.nsegments >= 1 && elf.nsegments <= VMM_ELF_MAX_SEGMENTS);
		bool entry_inside = false;
		for (unsigned i = 0; i < elf.nsegments; i++) {
			const struct vmm_elf_segment *s = &elf.segments[i];
			FUZZ_CHECK(s->offset <= size && s->filesz <= size - s->offset);
			FUZZ_CHECK(s->filesz <= s->memsz);
			FUZZ_CHECK(s->paddr >= elf.low && s->paddr + s->memsz <= elf.high);
			if (elf.pvh_entry >= s->paddr && elf.pvh_entry - s->paddr < s->filesz)
				entry_inside = true;
		}
		FUZZ_CHECK(entry_inside);
	} else {
		FUZZ_CHECK(r == -ENOEXEC);
	}

	struct vmm_boot_request req = {
	    .format = EMBER_KERNEL_ELF_PVH,
	    .kernel = data,
	    .kernel_size = size,
	    .kernel_fd = -1,
	    .initrd = initrd,
	    .initrd_size = sizeof(initrd),
	    .cmdline = "console=ttyS0 reboot=k panic=-1",
	    .rsdp_gpa = X86_ACPI_ADDR,
	    .e820 = fuzz_e820,
	    .e820_count = 2,
	};
	struct vmm_boot_entry entry;
	int b = vmm_boot_load(mem, &req, &entry, &err);
	FUZZ_CHECK(b == 0 || b == -ENOEXEC || b == -E2BIG || b == -EFBIG);
	FUZZ_CHECK((b == 0) <= (r == 0));
	if (b == 0) {
		FUZZ_CHECK(entry.mode == VMM_ENTRY_PVH32);
		FUZZ_CHECK(entry.rip == elf.pvh_entry);
		/* the entry point's byte was copied from the file */
		uint8_t byte;
		FUZZ_CHECK(vmm_mem_read(mem, entry.rip, &byte, 1) == 0);
		fuzz_check_start_info(mem, elf.high, sizeof(initrd), 2);
	}
	return 0;
}
