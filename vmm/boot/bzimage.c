/* vmm/boot/bzimage.c - the x86 boot protocol: bzImage header checks, loading, the zero page. */
#include "boot.h"
#include "../../lib/io/util.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

/* Offsets in the image (Documentation/arch/x86/boot.rst, "The real-mode
 * kernel header"); the setup header starts at 0x1f1. */
#define OFF_SETUP_SECTS	     0x1f1
#define OFF_SYSSIZE	     0x1f4
#define OFF_BOOT_FLAG	     0x1fe
#define OFF_JUMP	     0x200
#define OFF_HEADER	     0x202
#define OFF_VERSION	     0x206
#define OFF_LOADFLAGS	     0x211
#define OFF_CODE32_START     0x214
#define OFF_INITRD_ADDR_MAX  0x22c
#define OFF_KERNEL_ALIGNMENT 0x230
#define OFF_RELOCATABLE	     0x234
#define OFF_XLOADFLAGS	     0x236
#define OFF_CMDLINE_SIZE     0x238
#define OFF_PAYLOAD_OFFSET   0x248
#define OFF_PAYLOAD_LENGTH   0x24c
#define OFF_PREF_ADDRESS     0x258
#define OFF_INIT_SIZE	     0x260
#define SETUP_HEADER_START   0x1f1
#define SETUP_HEADER_MAX_END (SETUP_HEADER_START + sizeof(struct setup_header))

/* Protocol 2.12 (Linux 3.8) added xloadflags and with them XLF_KERNEL_64,
 * the flag for the 64-bit entry point Ember uses. */
#define MIN_VERSION 0x020c
/* The real-mode part (boot sector + setup) is at most 32 KiB. */
#define MAX_SETUP_SECTS 63

_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is one page");
_Static_assert(offsetof(struct boot_params, hdr) == SETUP_HEADER_START, "setup header offset");

int vmm_bzimage_parse(const uint8_t *img, uint64_t len, struct vmm_bzimage *out,
		      struct ember_error *err)
{
	memset(out, 0, sizeof(*out));
	if (!img || len < SETUP_HEADER_MAX_END)
		return vmm_errf(
		    err, -ENOEXEC,
		    "bzImage: file is %llu bytes, too short for a boot sector and setup "
		    "header",
		    (unsigned long long)len);
	if (vmm_le16(img + OFF_BOOT_FLAG) != 0xaa55)
		return vmm_errf(err, -ENOEXEC,
				"bzImage: no boot sector signature 0xaa55 at offset 0x1fe");
	if (memcmp(img + OFF_HEADER, "HdrS", 4) != 0)
		return vmm_errf(err, -ENOEXEC,
				"bzImage: no \"HdrS\" setup header magic at offset 0x202 (not a "
				"bzImage)");
	out->version = vmm_le16(img + OFF_VERSION);
	if (out->version < MIN_VERSION)
		return vmm_errf(
		    err, -ENOEXEC,
		    "bzImage: boot protocol %u.%02u is too old (Ember needs 2.12 or later "
		    "for the 64-bit entry point)",
		    out->version >> 8, out->version & 0xff);
	out->loadflags = img[OFF_LOADFLAGS];
	if (!(out->loadflags & LOADED_HIGH))
		return vmm_errf(err, -ENOEXEC,
				"bzImage: a zImage (kernel loaded below 1 MiB) is not supported");
	out->xloadflags = vmm_le16(img + OFF_XLOADFLAGS);
	if (!(out->xloadflags & XLF_KERNEL_64))
		return vmm_errf(err, -ENOEXEC,
				"bzImage: no 64-bit entry point (XLF_KERNEL_64 not set; a 32-bit "
				"kernel?)");

	unsigned sects = img[OFF_SETUP_SECTS];
	/* 0 meant 4 for kernels older than the 64-bit entry; the kernel's own
	 * build writes at least 5, so a 0 here is a damaged header */
	if (sects == 0)
		return vmm_errf(err, -ENOEXEC,
				"bzImage: setup_sects is 0 (a damaged header: no kernel with the "
				"64-bit entry point has fewer than 5 setup sectors)");
	if (sects > MAX_SETUP_SECTS)
		return vmm_errf(
		    err, -ENOEXEC,
		    "bzImage: setup_sects %u is out of range (at most %u: the real-mode "
		    "part is at most 32 KiB)",
		    sects, MAX_SETUP_SECTS);
	out->setup_sects = sects;
	out->setup_size = (uint64_t)(sects + 1) * 512;
	if (out->setup_size >= len)
		return vmm_errf(
		    err, -ENOEXEC,
		    "bzImage: truncated: the setup code needs %llu bytes but the file has "
		    "%llu",
		    (unsigned long long)out->setup_size, (unsigned long long)len);
	out->payload_size = len - out->setup_size;
	uint32_t syssize = vmm_le32(img + OFF_SYSSIZE);
	if (syssize == 0)
		return vmm_errf(err, -ENOEXEC, "bzImage: syssize is 0 (no protected-mode kernel)");
	if (syssize > UINT32_MAX / 16 || (uint64_t)syssize * 16 > out->payload_size)
		return vmm_errf(err, -ENOEXEC,
				"bzImage: truncated: the header says the kernel is %llu bytes but "
				"only %llu follow the setup code",
				(unsigned long long)syssize * 16,
				(unsigned long long)out->payload_size);
	out->syssize_bytes = syssize * 16;

	out->initrd_addr_max = vmm_le32(img + OFF_INITRD_ADDR_MAX);
	out->kernel_alignment = vmm_le32(img + OFF_KERNEL_ALIGNMENT);
	out->relocatable = img[OFF_RELOCATABLE] != 0;
	out->cmdline_size = vmm_le32(img + OFF_CMDLINE_SIZE);
	out->pref_address = vmm_le64(img + OFF_PREF_ADDRESS);
	out->payload_offset = vmm_le32(img + OFF_PAYLOAD_OFFSET);
	out->payload_length = vmm_le32(img + OFF_PAYLOAD_LENGTH);
	out->init_size = vmm_le32(img + OFF_INIT_SIZE);
	if (out->initrd_addr_max < 0x100000)
		return vmm_errf(err, -ENOEXEC, "bzImage: initrd_addr_max %#x is below 1 MiB",
				out->initrd_addr_max);
	if (out->relocatable &&
	    (out->kernel_alignment == 0 || (out->kernel_alignment & (out->kernel_alignment - 1)) ||
	     out->kernel_alignment > (1u << 30)))
		return vmm_errf(err, -ENOEXEC,
				"bzImage: kernel_alignment %#x is not a power of two up to 1 GiB",
				out->kernel_alignment);
	/* init_size covers the decompressed kernel and the compressed payload
	 * the decompressor moves to its end: never less than the payload */
	if (out->init_size < out->syssize_bytes)
		return vmm_errf(err, -ENOEXEC,
				"bzImage: init_size %#x is smaller than the protected-mode code "
				"(%u bytes) it must hold (a damaged header)",
				out->init_size, out->syssize_bytes);
	if (out->pref_address & 0xfff || out->pref_address < 0x100000 ||
	    out->pref_address >= (1ull << 46))
		return vmm_errf(err, -ENOEXEC,
				"bzImage: pref_address %#llx is not a page-aligned "
				"address above 1 MiB",
				(unsigned long long)out->pref_address);
	if (out->cmdline_size == 0)
		return vmm_errf(err, -ENOEXEC, "bzImage: cmdline_size is 0");

	uint32_t end = OFF_JUMP + 2 + img[OFF_JUMP + 1];
	if (end > SETUP_HEADER_MAX_END)
		end = SETUP_HEADER_MAX_END; /* fields newer than ours stay zero */
	if (end < OFF_INIT_SIZE + 4)
		return vmm_errf(err, -ENOEXEC,
				"bzImage: the setup header ends at %#x, before init_size (%#x)",
				end, OFF_INIT_SIZE + 4);
	out->header_end = end;
	return 0;
}

uint64_t vmm_bzimage_end(const struct vmm_bzimage *bz, uint64_t load_addr)
{
	/* The decompressor runs the kernel at its load address rounded up to
	 * kernel_alignment, never below pref_address (LOAD_PHYSICAL_ADDR), and
	 * needs init_size bytes from there. */
	uint64_t runtime = bz->pref_address;
	if (bz->relocatable) {
		uint64_t a = vmm_align_up(load_addr, bz->kernel_alignment);
		if (a > runtime)
			runtime = a;
	}
	uint64_t end = runtime + bz->init_size;
	uint64_t copied = load_addr + bz->payload_size;
	return copied > end ? copied : end;
}

int vmm_bzimage_load(const struct vmm_mem *mem, const uint8_t *img, uint64_t len, int fd,
		     const struct vmm_bzimage *bz, uint64_t load_addr, struct ember_error *err)
{
	if (bz->setup_size + bz->payload_size != len)
		return vmm_errf(err, -EINVAL, "bzImage: image length changed since it was parsed");
	uint64_t end = vmm_bzimage_end(bz, load_addr);
	uint64_t low = vmm_mem_low_end(mem);
	if (end > low)
		return vmm_errf(
		    err, -E2BIG,
		    "bzImage: the kernel needs guest memory up to %llu MiB (load address, "
		    "init_size %llu MiB) but RAM below 4 GiB ends at %llu MiB; use more "
		    "--mem",
		    (unsigned long long)(end + (1 << 20) - 1) >> 20,
		    (unsigned long long)bz->init_size >> 20, (unsigned long long)low >> 20);
	int r = vmm_boot_copy(mem, load_addr, img, fd, bz->setup_size, bz->payload_size);
	if (r < 0)
		return vmm_errf(err, -E2BIG,
				"bzImage: kernel at %#llx does not fit in guest memory",
				(unsigned long long)load_addr);
	return 0;
}

int vmm_bzimage_write_zero_page(const struct vmm_mem *mem, uint64_t zero_page_gpa,
				const uint8_t *img, uint64_t len, const struct vmm_bzimage *bz,
				const struct vmm_linux_boot *lb, struct ember_error *err)
{
	struct boot_params *bp = vmm_mem_ptr(mem, zero_page_gpa, sizeof(*bp));
	if (!bp)
		return vmm_errf(err, -E2BIG, "zero page at %#llx is outside guest memory",
				(unsigned long long)zero_page_gpa);
	if (len < bz->header_end)
		return vmm_errf(err, -EINVAL, "bzImage: shorter than its setup header");
	if (lb->e820_count > E820_MAX_ENTRIES_ZEROPAGE)
		return vmm_errf(err, -EINVAL, "too many E820 entries (%u)", lb->e820_count);
	if (lb->cmdline_len > bz->cmdline_size)
		return vmm_errf(err, -E2BIG,
				"cmdline: %u bytes is longer than this kernel accepts (%u)",
				lb->cmdline_len, bz->cmdline_size);
	if (lb->initrd_size &&
	    (lb->initrd_gpa > bz->initrd_addr_max ||
	     lb->initrd_size - 1 > (uint64_t)bz->initrd_addr_max - lb->initrd_gpa))
		return vmm_errf(err, -E2BIG, "initrd at %#llx+%#llx is above initrd_addr_max %#x",
				(unsigned long long)lb->initrd_gpa,
				(unsigned long long)lb->initrd_size, bz->initrd_addr_max);

	memset(bp, 0, sizeof(*bp));
	memcpy((uint8_t *)bp + SETUP_HEADER_START, img + SETUP_HEADER_START,
	       bz->header_end - SETUP_HEADER_START);
	struct setup_header *h = &bp->hdr;
	h->type_of_loader = 0xff; /* undefined loader */
	h->vid_mode = 0xffff;	  /* "normal" */
	/* 64-bit entry: no real-mode heap; LOADED_HIGH stays, KEEP_SEGMENTS and
	 * CAN_USE_HEAP do not apply. */
	h->loadflags = (uint8_t)(h->loadflags & ~(CAN_USE_HEAP | QUIET_FLAG));
	h->cmd_line_ptr = (uint32_t)lb->cmdline_gpa;
	bp->ext_cmd_line_ptr = (uint32_t)(lb->cmdline_gpa >> 32);
	h->ramdisk_image = (uint32_t)lb->initrd_gpa;
	h->ramdisk_size = (uint32_t)lb->initrd_size;
	bp->ext_ramdisk_image = (uint32_t)(lb->initrd_gpa >> 32);
	bp->ext_ramdisk_size = (uint32_t)(lb->initrd_size >> 32);
	h->setup_data = 0;
	bp->acpi_rsdp_addr = lb->rsdp_gpa;
	for (unsigned i = 0; i < lb->e820_count; i++) {
		bp->e820_table[i].addr = lb->e820[i].addr;
		bp->e820_table[i].size = lb->e820[i].size;
		bp->e820_table[i].type = lb->e820[i].type;
	}
	bp->e820_entries = (uint8_t)lb->e820_count;
	return 0;
}
