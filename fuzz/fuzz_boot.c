/* fuzz/fuzz_boot.c - libFuzzer target: a valid kernel with fuzzed memory size, initrd, E820 map, command line and busybox. */
#include "fuzz_common.h"
#include "../tests/unit/vmm_fixtures.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input layout: 8 bytes of parameters, then the command line up to the
 * first NUL, then the rest: E820 entries (20 bytes each, as many as the
 * count byte asks for, the rest of the map zero) or, with the builtin flag,
 * busybox's bytes.
 *   [0] flags: bit 0 ELF (else bzImage), bit 1 built-in initramfs,
 *       bit 2 interactive, bit 3 an initrd file, bit 4 an RSDP
 *   [1] guest memory size: one of mem_sizes[]
 *   [2..5] initrd size (little endian, modulo INITRD_MAX + 1)
 *   [6] E820 entry count (up to 255: the limit check)
 *   [7] unused
 */
#define INITRD_MAX (48u << 20)
static const uint64_t mem_sizes[] = {2u << 20,	16u << 20, 24u << 20, 25u << 20,
				     32u << 20, 64u << 20, 128u << 20};
#define NSIZES (sizeof(mem_sizes) / sizeof(mem_sizes[0]))

static const struct vmm_mem *mem_of(unsigned i)
{
	static struct vmm_mem m[NSIZES];
	static int ready[NSIZES];
	if (!ready[i]) {
		struct ember_error err = {0};
		if (vmm_mem_create(&m[i], mem_sizes[i], X86_MMIO_HOLE_START, X86_MMIO_HOLE_END,
				   EMBER_MEM_ANON, false, &err) < 0) {
			fprintf(stderr, "fuzz: vmm_mem_create: %s\n", err.msg);
			abort();
		}
		ready[i] = 1;
	}
	return &m[i];
}

static const uint8_t *initrd_bytes(void)
{
	static const uint8_t *p;
	if (!p) {
		/* zero pages: reading them costs no memory */
		void *q = mmap(NULL, INITRD_MAX, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (q == MAP_FAILED)
			abort();
		p = q;
	}
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *bz, *elf;
	static size_t bz_len, elf_len;
	if (!bz) {
		bz = fx_bzimage(0x3000, &bz_len);
		elf = fx_elf(&elf_len);
		if (!bz || !elf)
			abort();
	}
	if (size < 8)
		return 0;
	uint8_t flags = data[0];
	const struct vmm_mem *mem = mem_of(data[1] % NSIZES);
	uint32_t initrd_size = vmm_le32(data + 2) % (INITRD_MAX + 1);
	unsigned e820_count = data[6];
	data += 8;
	size -= 8;

	const uint8_t *nul = memchr(data, 0, size);
	size_t cmd_len = nul ? (size_t)(nul - data) : size;
	char *cmdline = malloc(cmd_len + 1);
	if (!cmdline)
		abort();
	memcpy(cmdline, data, cmd_len);
	cmdline[cmd_len] = 0;
	size_t used = nul ? cmd_len + 1 : cmd_len;
	data += used;
	size -= used;

	struct vmm_e820 e820[255];
	memset(e820, 0, sizeof(e820));
	for (unsigned i = 0; i < e820_count && (size_t)(i + 1) * 20 <= size; i++) {
		e820[i].addr = vmm_le64(data + 20 * i);
		e820[i].size = vmm_le64(data + 20 * i + 8);
		e820[i].type = vmm_le32(data + 20 * i + 16);
	}

	struct vmm_boot_request req = {
	    .format = flags & 1 ? EMBER_KERNEL_ELF_PVH : EMBER_KERNEL_BZIMAGE,
	    .kernel = flags & 1 ? elf : bz,
	    .kernel_size = flags & 1 ? elf_len : bz_len,
	    .kernel_fd = -1,
	    .initrd = flags & 8 ? initrd_bytes() : NULL,
	    .initrd_size = flags & 8 ? initrd_size : 0,
	    .busybox = data,
	    .busybox_size = size,
	    .builtin_initrd = flags & 2,
	    .interactive = flags & 4,
	    .cmdline = cmdline,
	    .rsdp_gpa = flags & 16 ? X86_ACPI_ADDR : 0,
	    .e820 = e820,
	    .e820_count = e820_count,
	};
	struct ember_error err = {0};
	struct vmm_boot_entry entry;
	int r = vmm_boot_load(mem, &req, &entry, &err);
	/* -ENOEXEC: an empty initrd; -EFBIG: one above initrd_addr_max */
	FUZZ_CHECK(r == 0 || r == -E2BIG || r == -EINVAL || r == -ENOEXEC || r == -EFBIG);
	if (r == 0) {
		/* the command line is in guest memory, NUL-terminated */
		const char *g = vmm_mem_ptr(mem, X86_CMDLINE_ADDR, cmd_len + 1);
		FUZZ_CHECK(g && !memcmp(g, cmdline, cmd_len + 1));
		uint64_t isize = req.initrd_size, gpa;
		if (req.builtin_initrd) {
			int64_t n = vmm_initramfs_build(NULL, 0, req.busybox, req.busybox_size,
							req.interactive, NULL, 0);
			FUZZ_CHECK(n > 0);
			isize = (uint64_t)n;
		}
		if (flags & 1) {
			gpa = fuzz_check_start_info(mem, FX_ELF_DATA_PADDR + FX_ELF_DATA_MEMSZ,
						    isize, e820_count);
		} else {
			struct vmm_bzimage bzh;
			FUZZ_CHECK(vmm_bzimage_parse(bz, bz_len, &bzh, &err) == 0);
			gpa = fuzz_check_zero_page(mem, &bzh, isize, e820_count);
		}
		if (req.builtin_initrd) /* a newc cpio archive */
			FUZZ_CHECK(!memcmp(vmm_mem_ptr(mem, gpa, 6), "070701", 6));
	}
	free(cmdline);
	return 0;
}
