/* fuzz/fuzz_bzimage.c - libFuzzer target: the input is a bzImage; parse it, then boot-load it into guest memory. */
#include "fuzz_common.h"

#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t initrd[8192] = {'0', '7', '0', '7', '0', '1'};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct vmm_mem *mem = fuzz_mem();
	struct ember_error err = {0};
	enum ember_kernel_format fmt;
	(void)vmm_kernel_detect(data, size, &fmt, &err);

	/* the parser alone: what it returns must be consistent with the file */
	struct vmm_bzimage bz;
	int r = vmm_bzimage_parse(data, size, &bz, &err);
	if (r == 0) {
		FUZZ_CHECK(bz.setup_size + bz.payload_size == size);
		FUZZ_CHECK(bz.syssize_bytes <= bz.payload_size);
		FUZZ_CHECK(bz.header_end <= size);
		FUZZ_CHECK(bz.cmdline_size > 0 && bz.init_size > 0);
		FUZZ_CHECK(vmm_bzimage_end(&bz, X86_BZIMAGE_LOAD_ADDR) >=
			   X86_BZIMAGE_LOAD_ADDR + bz.payload_size);
	} else {
		FUZZ_CHECK(r == -ENOEXEC);
	}

	/* the whole boot, first through the boot protocol: kernel, initrd,
	 * command line, zero page, page tables */
	struct vmm_boot_request req = {
	    .format = EMBER_KERNEL_BZIMAGE,
	    .kernel = data,
	    .kernel_size = size,
	    .kernel_fd = -1,
	    .initrd = initrd,
	    .initrd_size = sizeof(initrd),
	    .cmdline = "console=ttyS0 reboot=k panic=-1",
	    .rsdp_gpa = X86_ACPI_ADDR,
	    .e820 = fuzz_e820,
	    .e820_count = 2,
	    .boot = EMBER_BOOT_BZIMAGE,
	};
	struct vmm_boot_entry entry;
	int b = vmm_boot_load(mem, &req, &entry, &err);
	FUZZ_CHECK(b == 0 || b == -ENOEXEC || b == -E2BIG || b == -EFBIG);
	FUZZ_CHECK((b == 0) <= (r == 0)); /* loads only what parses */
	if (b == 0) {
		FUZZ_CHECK(entry.mode == VMM_ENTRY_LONG64);
		FUZZ_CHECK(entry.rip == X86_BZIMAGE_LOAD_ADDR + 0x200);
		fuzz_check_zero_page(mem, &bz, sizeof(initrd), 2);
	}

	/* then auto: the payload decompressed on the host (bounded to 16 MiB
	 * here to stay fast) and entered through PVH, or the boot protocol */
	req.boot = EMBER_BOOT_AUTO;
	req.unpack_max = 16u << 20;
	int a = vmm_boot_load(mem, &req, &entry, &err);
	FUZZ_CHECK(a == 0 || a == -ENOEXEC || a == -E2BIG || a == -EFBIG || a == -ENOMEM);
	FUZZ_CHECK((a == 0) <= (r == 0));
	if (a == 0 && entry.mode == VMM_ENTRY_PVH32) {
		FUZZ_CHECK(strstr(entry.note, "decompressed on the host") != NULL);
		const uint8_t *si = vmm_mem_ptr(mem, X86_PVH_INFO_ADDR, 56);
		FUZZ_CHECK(si && vmm_le32(si + 12) == 1);
	} else if (a == 0) {
		FUZZ_CHECK(entry.mode == VMM_ENTRY_LONG64);
		fuzz_check_zero_page(mem, &bz, sizeof(initrd), 2);
	}
	return 0;
}
