/* tests/unit/vmm_boot.c - unit tests of the bzImage and ELF/PVH loaders, initrd placement and the built-in initramfs. */
#include "../lib/test.h"
#include "vmm_fixtures.h"

#include "../../vmm/arch/x86/layout.h"
#include "../../vmm/arch/x86/x86.h"
#include "../../vmm/boot/boot.h"
#include "../../lib/io/mem.h"

#include <asm/bootparam.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct vmm_mem mem_of(uint64_t size)
{
	struct vmm_mem m;
	struct ember_error err = {0};
	int r = vmm_mem_create(&m, size, X86_MMIO_HOLE_START, X86_MMIO_HOLE_END, EMBER_MEM_ANON,
			       false, &err);
	if (r < 0)
		TEST_FAIL("vmm_mem_create: %s", err.msg);
	return m;
}

/* Expects a parse failure with code and a message containing what. */
#define CHECK_BZ_BAD(img, len, what)                                              \
	do {                                                                      \
		struct vmm_bzimage bz_;                                           \
		struct ember_error e_ = {0};                                      \
		CHECK_ERR(vmm_bzimage_parse((img), (len), &bz_, &e_), -ENOEXEC);  \
		if (!strstr(e_.msg, (what)))                                      \
			TEST_FAIL("message \"%s\" lacks \"%s\"", e_.msg, (what)); \
	} while (0)

TEST(vmm_bzimage_parse_good)
{
	size_t len;
	uint8_t *img = fx_bzimage(100000, &len);
	struct vmm_bzimage bz;
	struct ember_error err = {0};
	REQUIRE_OK(vmm_bzimage_parse(img, len, &bz, &err));
	CHECK_EQ(bz.version, 0x020f);
	CHECK_EQ(bz.setup_sects, FX_BZ_SETUP_SECTS);
	CHECK_EQ(bz.setup_size, FX_BZ_SETUP_SIZE);
	CHECK_EQ(bz.payload_size, 100000);
	CHECK_EQ(bz.init_size, FX_BZ_INIT_SIZE);
	CHECK_EQ(bz.pref_address, FX_BZ_PREF);
	CHECK_EQ(bz.cmdline_size, 2047);
	CHECK_EQ(bz.initrd_addr_max, 0x7fffffff);
	CHECK(bz.relocatable);
	CHECK_EQ(bz.header_end, 0x26c);
	/* runtime address is pref_address (load at 1 MiB rounds up to 2 MiB) */
	CHECK_EQ(vmm_bzimage_end(&bz, 0x100000), FX_BZ_PREF + FX_BZ_INIT_SIZE);
	free(img);
}

/* setup_sects 0 (once "4") and an init_size smaller than the payload are
 * damaged headers: refused, not booted into a triple fault (issue 9) */
TEST(vmm_bzimage_parse_rejects_damaged_sizes)
{
	size_t len;
	uint8_t *img = fx_bzimage(4096, &len);
	img[0x1f1] = 0;
	CHECK_BZ_BAD(img, len, "setup_sects is 0");
	free(img);
	img = fx_bzimage(4096, &len);
	vmm_put32(img + 0x260, 1);
	CHECK_BZ_BAD(img, len, "init_size 0x1 is smaller");
	vmm_put32(img + 0x260, 4095);
	CHECK_BZ_BAD(img, len, "init_size");
	vmm_put32(img + 0x260, 4096);
	CHECK_OK(vmm_bzimage_parse(img, len, &(struct vmm_bzimage){0}, NULL));
	free(img);
}

TEST(vmm_bzimage_parse_rejects_malformed)
{
	size_t len;
	uint8_t *img = fx_bzimage(4096, &len);
	uint8_t *b = malloc(len);

	CHECK_BZ_BAD(img, 100, "too short");
	CHECK_BZ_BAD(NULL, 0, "too short");

	memcpy(b, img, len);
	b[0x1fe] = 0;
	CHECK_BZ_BAD(b, len, "0xaa55");

	memcpy(b, img, len);
	memcpy(b + 0x202, "HdrX", 4);
	CHECK_BZ_BAD(b, len, "HdrS");

	memcpy(b, img, len);
	vmm_put16(b + 0x206, 0x020b);
	CHECK_BZ_BAD(b, len, "2.11 is too old");

	memcpy(b, img, len);
	b[0x211] = 0;
	CHECK_BZ_BAD(b, len, "zImage");

	memcpy(b, img, len);
	vmm_put16(b + 0x236, 0);
	CHECK_BZ_BAD(b, len, "64-bit");

	memcpy(b, img, len);
	b[0x1f1] = 64;
	CHECK_BZ_BAD(b, len, "setup_sects 64");

	memcpy(b, img, len);
	b[0x1f1] = 60; /* setup larger than the file */
	CHECK_BZ_BAD(b, len, "truncated");

	/* the header promises more payload than the file has */
	CHECK_BZ_BAD(img, len - 100, "truncated");

	memcpy(b, img, len);
	vmm_put32(b + 0x1f4, 0);
	CHECK_BZ_BAD(b, len, "syssize is 0");

	memcpy(b, img, len);
	vmm_put32(b + 0x1f4, 0xffffffff);
	CHECK_BZ_BAD(b, len, "truncated");

	memcpy(b, img, len);
	vmm_put32(b + 0x230, 0x300000);
	CHECK_BZ_BAD(b, len, "kernel_alignment");

	memcpy(b, img, len);
	vmm_put32(b + 0x260, 0);
	CHECK_BZ_BAD(b, len, "init_size");

	memcpy(b, img, len);
	vmm_put64(b + 0x258, 0x1000);
	CHECK_BZ_BAD(b, len, "pref_address");

	memcpy(b, img, len);
	vmm_put32(b + 0x238, 0);
	CHECK_BZ_BAD(b, len, "cmdline_size");

	memcpy(b, img, len);
	vmm_put32(b + 0x22c, 0x1000);
	CHECK_BZ_BAD(b, len, "initrd_addr_max");

	memcpy(b, img, len);
	b[0x201] = 0x10; /* header ends before init_size */
	CHECK_BZ_BAD(b, len, "setup header ends");
	free(b);
	free(img);
}

static const struct vmm_e820 test_e820[] = {
    {0, 0x9fc00, VMM_E820_RAM},
    {0x100000, 0x7f00000, VMM_E820_RAM},
};

TEST(vmm_boot_load_bzimage)
{
	size_t len;
	uint8_t *img = fx_bzimage(200000, &len);
	static const uint8_t initrd[10000] = {1, 2, 3};
	struct vmm_mem m = mem_of(128 << 20);
	struct vmm_boot_request req = {
	    .format = EMBER_KERNEL_BZIMAGE,
	    .kernel = img,
	    .kernel_size = len,
	    .initrd = initrd,
	    .initrd_size = sizeof(initrd),
	    .cmdline = "console=ttyS0 quiet",
	    .rsdp_gpa = 0xe0000,
	    .e820 = test_e820,
	    .e820_count = 2,
	};
	struct vmm_boot_entry entry;
	struct ember_error err = {0};
	int r = vmm_boot_load(&m, &req, &entry, &err);
	if (r < 0)
		TEST_FAIL("vmm_boot_load: %s", err.msg);
	CHECK_EQ(entry.mode, VMM_ENTRY_LONG64);
	CHECK_EQ(entry.rip, 0x100200);
	CHECK_EQ(entry.rsi, X86_ZERO_PAGE_ADDR);
	CHECK_EQ(entry.cr3, X86_PML4_ADDR);
	CHECK_EQ(entry.gdt_base, X86_GDT_ADDR);

	/* the payload is at 1 MiB */
	CHECK(memcmp(vmm_mem_ptr(&m, 0x100000, 200000), img + FX_BZ_SETUP_SIZE, 200000) == 0);

	struct boot_params *bp = vmm_mem_ptr(&m, X86_ZERO_PAGE_ADDR, sizeof(*bp));
	REQUIRE(bp);
	CHECK_EQ(bp->hdr.boot_flag, 0xaa55);
	CHECK_EQ(bp->hdr.header, 0x53726448); /* "HdrS" */
	CHECK_EQ(bp->hdr.version, 0x020f);
	CHECK_EQ(bp->hdr.type_of_loader, 0xff);
	CHECK_EQ(bp->hdr.cmd_line_ptr, X86_CMDLINE_ADDR);
	CHECK_EQ(bp->hdr.init_size, FX_BZ_INIT_SIZE);
	CHECK_EQ(bp->acpi_rsdp_addr, 0xe0000);
	CHECK_EQ(bp->e820_entries, 2);
	CHECK_EQ(bp->e820_table[1].addr, 0x100000);
	CHECK_EQ(bp->e820_table[1].type, 1);
	CHECK_EQ(bp->sentinel, 0);
	CHECK_STR((const char *)vmm_mem_ptr(&m, X86_CMDLINE_ADDR, 20), "console=ttyS0 quiet");

	/* the initrd: page aligned, at the top of RAM, above the kernel */
	uint64_t ird = bp->hdr.ramdisk_image | (uint64_t)bp->ext_ramdisk_image << 32;
	CHECK_EQ(bp->hdr.ramdisk_size, sizeof(initrd));
	CHECK_EQ(ird & 4095, 0);
	CHECK(ird + sizeof(initrd) <= (128u << 20));
	CHECK(ird + sizeof(initrd) > (128u << 20) - 4096);
	CHECK(ird >= FX_BZ_PREF + FX_BZ_INIT_SIZE);
	CHECK(memcmp(vmm_mem_ptr(&m, ird, 3), initrd, 3) == 0);

	/* page tables: identity map with 2 MiB pages */
	uint64_t *pml4 = vmm_mem_ptr(&m, X86_PML4_ADDR, 4096);
	uint64_t *pdpt = vmm_mem_ptr(&m, X86_PDPT_ADDR, 4096);
	uint64_t *pd = vmm_mem_ptr(&m, X86_PD_ADDR, 4 * 4096);
	CHECK_EQ(pml4[0], X86_PDPT_ADDR | 3);
	CHECK_EQ(pdpt[3], (X86_PD_ADDR + 3 * 4096) | 3);
	CHECK_EQ(pd[1], (2u << 20) | 0x83);
	CHECK_EQ(pd[2047], (2047ull << 21) | 0x83);
	/* GDT: 64-bit code at 0x10, flat data at 0x18 */
	uint64_t *gdt = vmm_mem_ptr(&m, X86_GDT_ADDR, 48);
	CHECK_EQ(gdt[2], 0x00af9b000000ffffULL);
	CHECK_EQ(gdt[3], 0x00cf93000000ffffULL);
	vmm_mem_destroy(&m);
	free(img);
}

TEST(vmm_boot_load_bzimage_limits)
{
	size_t len;
	uint8_t *img = fx_bzimage(4096, &len);
	struct ember_error err = {0};
	struct vmm_boot_entry entry;
	struct vmm_boot_request req = {
	    .format = EMBER_KERNEL_BZIMAGE,
	    .kernel = img,
	    .kernel_size = len,
	    .cmdline = "x",
	    .e820 = test_e820,
	    .e820_count = 2,
	};
	/* 16 MiB + init_size does not fit in 20 MiB: the kernel is named, with
	 * the memory it needs, even when an initrd comes too */
	struct vmm_mem m = mem_of(20 << 20);
	static uint8_t small[1];
	req.initrd = small;
	req.initrd_size = 1;
	req.kernel_name = "K";
	req.initrd_name = "I";
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -E2BIG);
	if (!strstr(err.msg, "kernel K: needs guest RAM up to 24 MiB") ||
	    !strstr(err.msg, "--mem 25M") || strstr(err.msg, "initrd I"))
		TEST_FAIL("message: %s", err.msg);
	req.initrd = NULL;
	req.initrd_size = 0;
	vmm_mem_destroy(&m);

	/* command line longer than cmdline_size */
	m = mem_of(64 << 20);
	char *line = malloc(3000);
	memset(line, 'a', 2999);
	line[2999] = 0;
	req.cmdline = line;
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -E2BIG);
	CHECK(strstr(err.msg, "cmdline") != NULL);
	line[2047] = 0; /* exactly cmdline_size is fine */
	CHECK_OK(vmm_boot_load(&m, &req, &entry, &err));
	line[2048] = 0;
	line[2047] = 'a';
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -E2BIG);
	req.cmdline = "x";

	/* an initrd that does not fit above the kernel: named, with the --mem
	 * both need */
	static uint8_t big[1];
	req.initrd = big;
	req.initrd_size = 60 << 20;
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -E2BIG);
	if (!strstr(err.msg, "initrd I: 60 MiB does not fit") || !strstr(err.msg, "--mem 84M"))
		TEST_FAIL("message: %s", err.msg);
	/* an empty one is a bad initrd, named */
	req.initrd_size = 0;
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	CHECK(strstr(err.msg, "initrd I: the file is empty") != NULL);
	/* one above initrd_addr_max: more memory cannot help (-EFBIG) */
	struct vmm_boot_plan plan;
	req.initrd_size = 41 << 20;
	vmm_put32(img + 0x22c, 0x3ffffff); /* initrd must end by 64 MiB: 40 MiB room */
	CHECK_ERR(vmm_boot_plan(&req, 3ull << 30, &plan, &err), -EFBIG);
	if (!strstr(err.msg, "initrd I:") || !strstr(err.msg, "initrd_addr_max") ||
	    !strstr(err.msg, "more --mem cannot help"))
		TEST_FAIL("message: %s", err.msg);
	req.initrd_size = 40 << 20;
	CHECK_OK(vmm_boot_plan(&req, 3ull << 30, &plan, &err));
	CHECK_EQ(plan.initrd_gpa, 24u << 20);
	vmm_put32(img + 0x22c, 0x7fffffff);
	CHECK_OK(vmm_boot_plan(&req, 3ull << 30, &plan, &err));
	CHECK_EQ(plan.min_low_ram, (24u << 20) + (40u << 20));
	CHECK_EQ(plan.initrd_gpa, (2ull << 30) - (40u << 20)); /* below initrd_addr_max */
	/* and initrd_addr_max caps the placement */
	req.initrd_size = 1;
	vmm_put32(img + 0x22c, 0x1dfffff); /* initrd must end by 30 MiB */
	CHECK_OK(vmm_boot_load(&m, &req, &entry, &err));
	struct boot_params *bp = vmm_mem_ptr(&m, X86_ZERO_PAGE_ADDR, sizeof(*bp));
	CHECK(bp->hdr.ramdisk_image + 1 <= 0x1e00000);
	CHECK(bp->hdr.ramdisk_image >= 0x1e00000 - 4096);
	vmm_mem_destroy(&m);
	free(line);
	free(img);
}

#define CHECK_ELF_BAD(img, len, what)                                             \
	do {                                                                      \
		struct vmm_elf elf_;                                              \
		struct ember_error e_ = {0};                                      \
		CHECK_ERR(vmm_elf_parse((img), (len), &elf_, &e_), -ENOEXEC);     \
		if (!strstr(e_.msg, (what)))                                      \
			TEST_FAIL("message \"%s\" lacks \"%s\"", e_.msg, (what)); \
	} while (0)

TEST(vmm_elf_parse_good)
{
	size_t len;
	uint8_t *img = fx_elf(&len);
	struct vmm_elf elf;
	struct ember_error err = {0};
	int r = vmm_elf_parse(img, len, &elf, &err);
	if (r < 0)
		TEST_FAIL("%s", err.msg);
	CHECK_EQ(elf.pvh_entry, FX_ELF_ENTRY);
	CHECK_EQ(elf.nsegments, 2);
	CHECK_EQ(elf.low, FX_ELF_TEXT_PADDR);
	CHECK_EQ(elf.high, FX_ELF_DATA_PADDR + FX_ELF_DATA_MEMSZ);
	/* a 4-byte note value works too */
	uint8_t *note = img + FX_ELF_NOTE_OFF + 24;
	vmm_put32(note + 4, 4);
	Elf64_Phdr ph;
	memcpy(&ph, img + FX_ELF_PHDR(2), sizeof(ph));
	ph.p_filesz = ph.p_memsz = 44;
	memcpy(img + FX_ELF_PHDR(2), &ph, sizeof(ph));
	REQUIRE_OK(vmm_elf_parse(img, len, &elf, NULL));
	CHECK_EQ(elf.pvh_entry, FX_ELF_ENTRY);
	free(img);
}

static void set_phdr(uint8_t *img, int i, void (*fn)(Elf64_Phdr *))
{
	Elf64_Phdr ph;
	memcpy(&ph, img + FX_ELF_PHDR(i), sizeof(ph));
	fn(&ph);
	memcpy(img + FX_ELF_PHDR(i), &ph, sizeof(ph));
}
static void ph_offset_huge(Elf64_Phdr *p)
{
	p->p_offset = UINT64_MAX - 10;
}
static void ph_filesz_big(Elf64_Phdr *p)
{
	p->p_memsz = p->p_filesz - 1;
}
static void ph_paddr_huge(Elf64_Phdr *p)
{
	p->p_paddr = UINT64_MAX - 0x1000;
}
static void ph_not_note(Elf64_Phdr *p)
{
	p->p_type = PT_NULL;
}
static void ph_note_past_end(Elf64_Phdr *p)
{
	p->p_filesz = 1u << 20;
}
static void ph_paddr_low(Elf64_Phdr *p)
{
	p->p_paddr = 0x8000;
}
static void ph_paddr_in_text(Elf64_Phdr *p)
{
	p->p_paddr = FX_ELF_TEXT_PADDR + FX_ELF_TEXT_SIZE - 0x1000;
}
static void ph_paddr_high(Elf64_Phdr *p)
{
	p->p_paddr = 0x7000000;
}

TEST(vmm_elf_parse_rejects_malformed)
{
	size_t len;
	uint8_t *img = fx_elf(&len);
	uint8_t *b = malloc(len);
	Elf64_Ehdr eh;

	CHECK_ELF_BAD(img, 10, "too short");
	memcpy(b, img, len);
	b[1] = 'X';
	CHECK_ELF_BAD(b, len, "bad magic");
	memcpy(b, img, len);
	b[EI_CLASS] = ELFCLASS32;
	CHECK_ELF_BAD(b, len, "64-bit");
	memcpy(b, img, len);
	b[EI_DATA] = ELFDATA2MSB;
	CHECK_ELF_BAD(b, len, "little-endian");

#define EDIT_EH(stmt)                       \
	do {                                \
		memcpy(b, img, len);        \
		memcpy(&eh, b, sizeof(eh)); \
		stmt;                       \
		memcpy(b, &eh, sizeof(eh)); \
	} while (0)
	EDIT_EH(eh.e_machine = EM_386);
	CHECK_ELF_BAD(b, len, "x86-64");
	EDIT_EH(eh.e_type = ET_DYN);
	CHECK_ELF_BAD(b, len, "ET_EXEC");
	EDIT_EH(eh.e_phentsize = 32);
	CHECK_ELF_BAD(b, len, "program header size");
	EDIT_EH(eh.e_phnum = 0);
	CHECK_ELF_BAD(b, len, "program headers");
	EDIT_EH(eh.e_phnum = 1000);
	CHECK_ELF_BAD(b, len, "program headers");
	EDIT_EH(eh.e_phoff = len - 8);
	CHECK_ELF_BAD(b, len, "truncated");
	EDIT_EH(eh.e_phoff = UINT64_MAX - 8);
	CHECK_ELF_BAD(b, len, "truncated");

	/* a segment past the end of the file, in two ways */
	CHECK_ELF_BAD(img, len - 1, "truncated");
	memcpy(b, img, len);
	set_phdr(b, 0, ph_offset_huge);
	CHECK_ELF_BAD(b, len, "truncated");
	memcpy(b, img, len);
	set_phdr(b, 1, ph_filesz_big);
	CHECK_ELF_BAD(b, len, "more file bytes");
	memcpy(b, img, len);
	set_phdr(b, 0, ph_paddr_huge);
	CHECK_ELF_BAD(b, len, "beyond any guest memory");
	/* no PVH note */
	memcpy(b, img, len);
	set_phdr(b, 2, ph_not_note);
	CHECK_ELF_BAD(b, len, "no PVH entry note");
	memcpy(b, img, len);
	set_phdr(b, 2, ph_note_past_end);
	CHECK_ELF_BAD(b, len, "truncated");
	/* a note whose size runs past its segment */
	memcpy(b, img, len);
	vmm_put32(b + FX_ELF_NOTE_OFF + 4, 0x1000);
	CHECK_ELF_BAD(b, len, "past the end of its segment");
	/* two PT_LOADs over the same guest memory */
	memcpy(b, img, len);
	set_phdr(b, 1, ph_paddr_in_text);
	CHECK_ELF_BAD(b, len, "overlap");
	/* a PVH note of the wrong size, or pointing above 4 GiB or nowhere */
	memcpy(b, img, len);
	vmm_put32(b + FX_ELF_NOTE_OFF + 24 + 4, 2);
	CHECK_ELF_BAD(b, len, "2-byte value");
	memcpy(b, img, len);
	vmm_put64(b + FX_ELF_NOTE_OFF + 24 + 16, 0x100001000ull);
	CHECK_ELF_BAD(b, len, "above 4 GiB");
	memcpy(b, img, len);
	vmm_put64(b + FX_ELF_NOTE_OFF + 24 + 16, 0x2000000);
	CHECK_ELF_BAD(b, len, "not inside a loaded segment");
	free(b);
	free(img);
}

TEST(vmm_elf_load_and_start_info)
{
	size_t len;
	uint8_t *img = fx_elf(&len);
	static const uint8_t initrd[5000] = {9, 8, 7};
	struct vmm_mem m = mem_of(64 << 20);
	struct vmm_boot_request req = {
	    .format = EMBER_KERNEL_ELF_PVH,
	    .kernel = img,
	    .kernel_size = len,
	    .initrd = initrd,
	    .initrd_size = sizeof(initrd),
	    .cmdline = "console=ttyS0",
	    .rsdp_gpa = 0xe0000,
	    .e820 = test_e820,
	    .e820_count = 2,
	};
	struct vmm_boot_entry entry;
	struct ember_error err = {0};
	int r = vmm_boot_load(&m, &req, &entry, &err);
	if (r < 0)
		TEST_FAIL("%s", err.msg);
	CHECK_EQ(entry.mode, VMM_ENTRY_PVH32);
	CHECK_EQ(entry.rip, FX_ELF_ENTRY);
	CHECK_EQ(entry.rbx, X86_PVH_INFO_ADDR);
	CHECK(memcmp(vmm_mem_ptr(&m, FX_ELF_TEXT_PADDR, FX_ELF_TEXT_SIZE), img + FX_ELF_TEXT_OFF,
		     FX_ELF_TEXT_SIZE) == 0);
	CHECK(memcmp(vmm_mem_ptr(&m, FX_ELF_DATA_PADDR, FX_ELF_DATA_SIZE), img + FX_ELF_DATA_OFF,
		     FX_ELF_DATA_SIZE) == 0);
	/* the memory tail of the data segment reads as zero */
	const uint8_t *tail = vmm_mem_ptr(&m, FX_ELF_DATA_PADDR + FX_ELF_DATA_SIZE, 0x2000);
	for (int i = 0; i < 0x2000; i++)
		if (tail[i])
			TEST_FAIL("bss byte %d is %u", i, tail[i]);

	const uint8_t *si = vmm_mem_ptr(&m, X86_PVH_INFO_ADDR, 56);
	REQUIRE(si);
	uint32_t u32[4];
	uint64_t u64[4];
	memcpy(u32, si, 16);
	memcpy(u64, si + 16, 32);
	CHECK_EQ(u32[0], 0x336ec578); /* magic */
	CHECK_EQ(u32[1], 1);	      /* version */
	CHECK_EQ(u32[3], 1);	      /* nr_modules */
	CHECK_EQ(u64[0], X86_PVH_MODLIST_ADDR);
	CHECK_EQ(u64[1], X86_CMDLINE_ADDR);
	CHECK_EQ(u64[2], 0xe0000);
	CHECK_EQ(u64[3], X86_PVH_MEMMAP_ADDR);
	uint32_t entries;
	memcpy(&entries, si + 48, 4);
	CHECK_EQ(entries, 2);
	uint64_t mod[2];
	memcpy(mod, vmm_mem_ptr(&m, X86_PVH_MODLIST_ADDR, 16), 16);
	CHECK_EQ(mod[1], sizeof(initrd));
	CHECK(mod[0] >= FX_ELF_DATA_PADDR + FX_ELF_DATA_MEMSZ);
	CHECK_EQ(mod[0] & 4095, 0);
	CHECK(memcmp(vmm_mem_ptr(&m, mod[0], 3), initrd, 3) == 0);
	uint64_t mm[3];
	memcpy(mm, vmm_mem_ptr(&m, X86_PVH_MEMMAP_ADDR + 24, 24), 24);
	CHECK_EQ(mm[0], 0x100000);
	CHECK_EQ(mm[1], 0x7f00000);
	CHECK_EQ((uint32_t)mm[2], 1);
	vmm_mem_destroy(&m);
	free(img);
}

/* PVH has no cmdline_size: Linux's COMMAND_LINE_SIZE (2048 with the NUL)
 * is the limit, as for the boot protocol (issue 9: 2048 bytes hung) */
TEST(vmm_boot_plan_pvh_cmdline_limit)
{
	size_t len;
	uint8_t *img = fx_elf(&len);
	char line[2049];
	memset(line, 'a', sizeof(line) - 1);
	line[2047] = 0;
	struct vmm_boot_request req = {
	    .format = EMBER_KERNEL_ELF_PVH, .kernel = img, .kernel_size = len, .cmdline = line};
	struct vmm_boot_plan plan;
	struct ember_error err = {0};
	CHECK_OK(vmm_boot_plan(&req, 64 << 20, &plan, &err));
	CHECK_EQ(plan.cmdline_max, 2047);
	line[2047] = 'a';
	line[2048] = 0;
	CHECK_ERR(vmm_boot_plan(&req, 64 << 20, &plan, &err), -E2BIG);
	CHECK(strstr(err.msg, "2048 bytes is longer") != NULL);
	/* the kernel's own end sets the memory it needs */
	line[10] = 0;
	CHECK_ERR(vmm_boot_plan(&req, 16 << 20, &plan, &err), -E2BIG);
	CHECK(strstr(err.msg, "highest ELF segment") != NULL);
	free(img);
}

TEST(vmm_elf_load_rejects_bad_placement)
{
	size_t len;
	uint8_t *img = fx_elf(&len);
	struct ember_error err = {0};
	struct vmm_elf elf;
	struct vmm_mem m = mem_of(64 << 20);

	set_phdr(img, 0, ph_paddr_low);
	/* the entry is now outside every segment: parse says so first */
	CHECK_ERR(vmm_elf_parse(img, len, &elf, &err), -ENOEXEC);
	free(img);
	img = fx_elf(&len);
	set_phdr(img, 1, ph_paddr_low);
	REQUIRE_OK(vmm_elf_parse(img, len, &elf, &err));
	CHECK_ERR(vmm_elf_load(&m, img, len, -1, &elf, &err), -ENOEXEC);
	CHECK(strstr(err.msg, "low 1 MiB") != NULL);
	free(img);

	/* a segment beyond the end of RAM */
	img = fx_elf(&len);
	set_phdr(img, 1, ph_paddr_high);
	REQUIRE_OK(vmm_elf_parse(img, len, &elf, &err));
	CHECK_ERR(vmm_elf_load(&m, img, len, -1, &elf, &err), -E2BIG);
	CHECK(strstr(err.msg, "outside guest memory") != NULL);
	vmm_mem_destroy(&m);
	free(img);
}

TEST(vmm_kernel_detect_formats)
{
	size_t len;
	enum ember_kernel_format f;
	uint8_t *img = fx_bzimage(100, &len);
	CHECK_OK(vmm_kernel_detect(img, len, &f, NULL));
	CHECK_EQ(f, EMBER_KERNEL_BZIMAGE);
	free(img);
	img = fx_elf(&len);
	CHECK_OK(vmm_kernel_detect(img, len, &f, NULL));
	CHECK_EQ(f, EMBER_KERNEL_ELF_PVH);
	free(img);
	static const uint8_t junk[1024] = {1, 2, 3};
	struct ember_error err = {0};
	CHECK_ERR(vmm_kernel_detect(junk, sizeof(junk), &f, &err), -ENOEXEC);
	CHECK(strstr(err.msg, "not a Linux kernel") != NULL);
	CHECK_ERR(vmm_kernel_detect(junk, 2, &f, NULL), -ENOEXEC);
}

TEST(vmm_initrd_place_bounds)
{
	uint64_t gpa;
	CHECK_OK(vmm_initrd_place(100, 0x1000000, 0x8000000, UINT64_MAX, &gpa, NULL));
	CHECK_EQ(gpa, 0x8000000 - 4096);
	CHECK_OK(vmm_initrd_place(8192, 0x1000000, 0x8000000, 0x4000001, &gpa, NULL));
	CHECK_EQ(gpa, 0x4000000 - 8192);
	CHECK_ERR(vmm_initrd_place(0x7000001, 0x1000000, 0x8000000, UINT64_MAX, &gpa, NULL),
		  -E2BIG);
	CHECK_ERR(vmm_initrd_place(UINT64_MAX, 0, 0x8000000, UINT64_MAX, &gpa, NULL), -E2BIG);
	CHECK_ERR(vmm_initrd_place(0, 0, 0x8000000, UINT64_MAX, &gpa, NULL), -E2BIG);
}

/* Walks a newc archive; returns the number of entries or -1. */
static int cpio_walk(const uint8_t *p, size_t n, const char *want, size_t *want_size,
		     const uint8_t **want_data, unsigned *want_mode)
{
	size_t off = 0;
	int count = 0;
	while (off + 110 <= n) {
		if (memcmp(p + off, "070701", 6))
			return -1;
		char field[9] = {0};
		unsigned long v[13];
		for (int i = 0; i < 13; i++) {
			memcpy(field, p + off + 6 + 8 * i, 8);
			v[i] = strtoul(field, NULL, 16);
		}
		const char *name = (const char *)p + off + 110;
		size_t namesz = v[11], filesz = v[6];
		size_t data = (off + 110 + namesz + 3) & ~3ul;
		if (data + filesz > n)
			return -1;
		count++;
		if (!strcmp(name, "TRAILER!!!"))
			return off + 110 + namesz <= n ? count : -1;
		if (want && !strcmp(name, want)) {
			*want_size = filesz;
			*want_data = p + data;
			*want_mode = (unsigned)v[1];
		}
		off = (data + filesz + 3) & ~3ul;
	}
	return -1;
}

TEST(vmm_initramfs_builds_newc)
{
	static const uint8_t bb[1234] = {0x7f, 'E', 'L', 'F'};
	int64_t n = vmm_initramfs_build(NULL, 0, bb, sizeof(bb), false, NULL, 0);
	REQUIRE(n > 0);
	CHECK_EQ(n % 4, 0);
	uint8_t *buf = malloc((size_t)n);
	CHECK_ERR(vmm_initramfs_build(buf, (uint64_t)n - 1, bb, sizeof(bb), false, NULL, 0),
		  -E2BIG);
	CHECK_EQ(vmm_initramfs_build(buf, (uint64_t)n, bb, sizeof(bb), false, NULL, 0), n);
	size_t sz = 0;
	const uint8_t *data = NULL;
	unsigned mode = 0;
	CHECK(cpio_walk(buf, (size_t)n, "bin/busybox", &sz, &data, &mode) > 5);
	CHECK_EQ(sz, sizeof(bb));
	CHECK(data && memcmp(data, bb, sizeof(bb)) == 0);
	CHECK_EQ(mode, 0100755);
	CHECK(cpio_walk(buf, (size_t)n, "init", &sz, &data, &mode) > 0);
	CHECK(data && memmem(data, sz, "poweroff -f", 11) != NULL);
	CHECK(memmem(data, sz, "cttyhack", 8) == NULL);
	CHECK(cpio_walk(buf, (size_t)n, "dev/console", &sz, &data, &mode) > 0);
	CHECK_EQ(mode, 020600);
	free(buf);

	/* the interactive init starts a shell */
	n = vmm_initramfs_build(NULL, 0, bb, sizeof(bb), true, NULL, 0);
	buf = malloc((size_t)n);
	CHECK_EQ(vmm_initramfs_build(buf, (uint64_t)n, bb, sizeof(bb), true, NULL, 0), n);
	CHECK(cpio_walk(buf, (size_t)n, "init", &sz, &data, &mode) > 0);
	CHECK(data && memmem(data, sz, "cttyhack sh", 11) != NULL);
	free(buf);
	/* the root init mounts root= and switches to it */
	n = vmm_initramfs_build(NULL, 0, bb, sizeof(bb), VMM_INIT_ROOT, NULL, 0);
	buf = malloc((size_t)n);
	CHECK_EQ(vmm_initramfs_build(buf, (uint64_t)n, bb, sizeof(bb), VMM_INIT_ROOT, NULL, 0), n);
	CHECK(cpio_walk(buf, (size_t)n, "init", &sz, &data, &mode) > 0);
	CHECK(data && memmem(data, sz, "exec switch_root /newroot", 25) != NULL);
	CHECK(data && memmem(data, sz, "root=*) root=${a#root=}", 23) != NULL);
	CHECK(data && memmem(data, sz, "poweroff -f", 11) == NULL);
	free(buf);
	CHECK_ERR(vmm_initramfs_build(NULL, 0, bb, sizeof(bb), (enum vmm_init_kind)3, NULL, 0),
		  -EINVAL);
	CHECK_ERR(vmm_initramfs_build(NULL, 0, NULL, 0, false, NULL, 0), -EINVAL);
}

TEST(vmm_busybox_check_static)
{
	struct ember_error err = {0};
	CHECK_ERR(vmm_busybox_check("/nonexistent/busybox", &err), -ENOENT);
	CHECK(strstr(err.msg, "busybox-static") != NULL);
	/* a dynamically linked executable is refused */
	CHECK_ERR(vmm_busybox_check("/bin/true", &err), -ENOEXEC);
	CHECK(strstr(err.msg, "static") != NULL);
	CHECK_ERR(vmm_busybox_check("/etc/hostname", &err), -ENOEXEC);
	if (access("/bin/busybox", R_OK) == 0) {
		int r = vmm_busybox_check("/bin/busybox", &err);
		if (r < 0)
			TEST_LOG("/bin/busybox is not static: %s", err.msg);
	}
}

/* The real thing, where Debian's kernel is installed: its header parses. */
TEST(vmm_bzimage_parse_host_kernel)
{
	DIR *d = opendir("/boot");
	struct dirent *e;
	char path[512] = "";
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "vmlinuz-", 8))
			snprintf(path, sizeof(path), "/boot/%s", e->d_name);
	if (d)
		closedir(d);
	if (!path[0])
		TEST_SKIP("no /boot/vmlinuz-*");
	FILE *f = fopen(path, "rb");
	if (!f)
		TEST_SKIP("%s not readable", path);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *img = malloc((size_t)len);
	REQUIRE(fread(img, 1, (size_t)len, f) == (size_t)len);
	fclose(f);
	struct vmm_bzimage bz;
	struct ember_error err = {0};
	int r = vmm_bzimage_parse(img, (uint64_t)len, &bz, &err);
	if (r < 0)
		TEST_FAIL("%s: %s", path, err.msg);
	TEST_LOG("%s: protocol %x, setup_sects %u, init_size %u MiB, cmdline_size %u", path,
		 bz.version, bz.setup_sects, bz.init_size >> 20, bz.cmdline_size);
	CHECK(bz.xloadflags & XLF_KERNEL_64);
	free(img);
}

/* SHT_NOBITS sections inside a segment's file bytes are left to fresh memory. */
TEST(vmm_elf_nobits_ranges_not_loaded)
{
	size_t len;
	uint8_t *img = fx_elf(&len);
	/* append a section table: null, .bss (NOBITS, ALLOC) over the data segment's
	 * file page, and one malformed entry pointing nowhere */
	size_t shoff = len;
	Elf64_Shdr sh[3];
	memset(sh, 0, sizeof(sh));
	sh[1].sh_type = SHT_NOBITS;
	sh[1].sh_flags = SHF_ALLOC | SHF_WRITE;
	sh[1].sh_addr = 0xffffffff81400000ull; /* the data segment's vaddr */
	sh[1].sh_size = FX_ELF_DATA_MEMSZ;
	sh[2].sh_type = SHT_NOBITS;
	sh[2].sh_flags = SHF_ALLOC;
	sh[2].sh_addr = 0x1234;
	sh[2].sh_size = 0x1000;
	img = realloc(img, len + sizeof(sh));
	memcpy(img + shoff, sh, sizeof(sh));
	len += sizeof(sh);
	Elf64_Ehdr eh;
	memcpy(&eh, img, sizeof(eh));
	eh.e_shoff = shoff;
	eh.e_shentsize = sizeof(Elf64_Shdr);
	eh.e_shnum = 3;
	memcpy(img, &eh, sizeof(eh));

	struct vmm_elf elf;
	struct ember_error err = {0};
	REQUIRE_OK(vmm_elf_parse(img, len, &elf, &err));
	REQUIRE_EQ(elf.nzero, 1);
	CHECK_EQ(elf.zero[0].offset, FX_ELF_DATA_OFF);
	CHECK_EQ(elf.zero[0].len, FX_ELF_DATA_SIZE);
	struct vmm_mem m = mem_of(64 << 20);
	REQUIRE_OK(vmm_elf_load(&m, img, len, -1, &elf, &err));
	const uint8_t *d = vmm_mem_ptr(&m, FX_ELF_DATA_PADDR, FX_ELF_DATA_SIZE);
	for (int i = 0; i < FX_ELF_DATA_SIZE; i++)
		if (d[i])
			TEST_FAIL("NOBITS byte %d was loaded (%u)", i, d[i]);
	CHECK(!memcmp(vmm_mem_ptr(&m, FX_ELF_TEXT_PADDR, FX_ELF_TEXT_SIZE), img + FX_ELF_TEXT_OFF,
		      FX_ELF_TEXT_SIZE));
	/* a section table past the end of the file is ignored, not an error */
	eh.e_shoff = len;
	memcpy(img, &eh, sizeof(eh));
	REQUIRE_OK(vmm_elf_parse(img, len, &elf, &err));
	CHECK_EQ(elf.nzero, 0);
	vmm_mem_destroy(&m);
	free(img);
}

TEST(vmm_initramfs_carries_modules_in_order)
{
	static const uint8_t bb[64] = {0x7f, 'E', 'L', 'F'};
	static const uint8_t m0[10] = "module0", m1[20] = "module1";
	const struct vmm_initramfs_module mods[] = {
	    {.name = "pvpanic.ko", .data = m0, .size = 10},
	    {.name = "pvpanic-mmio.ko", .data = m1, .size = 20}};
	int64_t n = vmm_initramfs_build(NULL, 0, bb, sizeof(bb), false, mods, 2);
	REQUIRE(n > 0);
	uint8_t *buf = malloc((size_t)n);
	REQUIRE_EQ(vmm_initramfs_build(buf, (uint64_t)n, bb, sizeof(bb), false, mods, 2), n);
	size_t sz = 0;
	const uint8_t *data = NULL;
	unsigned mode = 0;
	/* the index prefix makes glob order the given order (pvpanic-mmio.ko
	 * sorts before pvpanic.ko by name, but needs it) */
	CHECK(cpio_walk(buf, (size_t)n, "lib/modules/00-pvpanic.ko", &sz, &data, &mode) > 0);
	CHECK_EQ(sz, 10);
	CHECK(data && memcmp(data, m0, 10) == 0);
	CHECK(cpio_walk(buf, (size_t)n, "lib/modules/01-pvpanic-mmio.ko", &sz, &data, &mode) > 0);
	CHECK_EQ(sz, 20);
	CHECK(cpio_walk(buf, (size_t)n, "init", &sz, &data, &mode) > 0);
	CHECK(data && memmem(data, sz, "insmod", 6) != NULL);
	free(buf);
	/* bad names and counts */
	const struct vmm_initramfs_module bad[] = {{.name = "../x.ko", .data = m0, .size = 1}};
	CHECK_ERR(vmm_initramfs_build(NULL, 0, bb, sizeof(bb), false, bad, 1), -EINVAL);
	const struct vmm_initramfs_module noko[] = {{.name = "pvpanic", .data = m0, .size = 1}};
	CHECK_ERR(vmm_initramfs_build(NULL, 0, bb, sizeof(bb), false, noko, 1), -EINVAL);
	CHECK_ERR(vmm_initramfs_build(NULL, 0, bb, sizeof(bb), false, NULL, 1), -EINVAL);
	CHECK_ERR(vmm_initramfs_build(NULL, 0, bb, sizeof(bb), false, mods,
				      VMM_INITRAMFS_MODULES_MAX + 1),
		  -EINVAL);
}

TEST(vmm_kernel_release_from_bzimage_and_elf)
{
	char rel[64];
	/* bzImage: "HdrS" at 0x202, kernel_version (offset from 0x200) at 0x20e */
	uint8_t *bz = calloc(1, 0x1000);
	REQUIRE(bz);
	memcpy(bz + 0x202, "HdrS", 4);
	bz[0x20e] = 0x00;
	bz[0x20f] = 0x04; /* string at 0x600 */
	strcpy((char *)bz + 0x600, "6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP");
	CHECK_EQ(vmm_kernel_release(bz, 0x1000, rel, sizeof(rel)), 14);
	CHECK_STR(rel, "6.1.0-57-amd64");
	CHECK_ERR(vmm_kernel_release(bz, 0x1000, rel, 8), -ENOSPC);
	/* a pointer past the image, or not a release */
	bz[0x20f] = 0x10;
	CHECK_ERR(vmm_kernel_release(bz, 0x1000, rel, sizeof(rel)), -ENOENT);
	bz[0x20f] = 0x04;
	strcpy((char *)bz + 0x600, "garbage");
	CHECK_ERR(vmm_kernel_release(bz, 0x1000, rel, sizeof(rel)), -ENOENT);
	free(bz);
	/* ELF vmlinux: the banner */
	uint8_t elf[256] = {0x7f, 'E', 'L', 'F'};
	strcpy((char *)elf + 100, "Linux version 6.1.99-cloud-amd64 (x@y) #1");
	CHECK_EQ(vmm_kernel_release(elf, sizeof(elf), rel, sizeof(rel)), 18);
	CHECK_STR(rel, "6.1.99-cloud-amd64");
	memset(elf + 100, 0, 50);
	CHECK_ERR(vmm_kernel_release(elf, sizeof(elf), rel, sizeof(rel)), -ENOENT);
	/* a release with a slash never names a module directory */
	struct vmm_initramfs_module mods[VMM_INITRAMFS_MODULES_MAX];
	CHECK_EQ(vmm_initramfs_modules("../../etc", true, mods, VMM_INITRAMFS_MODULES_MAX), 0);
	CHECK_EQ(vmm_initramfs_modules("no-such-release", false, mods, VMM_INITRAMFS_MODULES_MAX),
		 0);
}

static int mod_index(char (*list)[VMM_MODPATH_MAX], int n, const char *path)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i], path))
			return i;
	return -1;
}

/* Dependencies first, soft "pre:" ones through an alias, each file once. */
TEST(vmm_modules_resolve_orders_dependencies)
{
	static const char dep[] =
	    "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko "
	    "kernel/fs/jbd2/jbd2.ko\n"
	    "kernel/lib/crc16.ko:\n"
	    "kernel/fs/mbcache.ko:\n"
	    "kernel/fs/jbd2/jbd2.ko:\n"
	    "kernel/crypto/crc32c_generic.ko:\n"
	    "kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko "
	    "kernel/drivers/virtio/virtio_ring.ko\n"
	    "kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko\n"
	    "kernel/drivers/virtio/virtio.ko:\n"
	    "kernel/drivers/misc/pvpanic/pvpanic-mmio.ko: "
	    "kernel/drivers/misc/pvpanic/pvpanic.ko\n"
	    "kernel/drivers/misc/pvpanic/pvpanic.ko:\n"
	    "kernel/x/loop-a.ko: kernel/x/loop-b.ko\n"
	    "kernel/x/loop-b.ko: kernel/x/loop-a.ko\n"
	    "kernel/x/broken.ko: kernel/x/missing.ko\n";
	static const char softdep[] = "# Soft dependencies\n"
				      "softdep ext4 pre: crypto-crc32c\n"
				      "softdep jbd2 pre: crypto-crc32c post: nothing\n";
	static const char alias[] = "alias crypto-crc32c crc32c_generic\n"
				    "alias crypto-crc32c crc32c_absent\n";
	const struct vmm_moddb db = {dep,   sizeof(dep) - 1,  softdep, sizeof(softdep) - 1,
				     alias, sizeof(alias) - 1};
	char out[16][VMM_MODPATH_MAX];
	const char *const names[] = {"pvpanic_mmio", "virtio-mmio", "ext4", "not_a_module"};
	int n = vmm_modules_resolve(&db, names, 4, out, 16);
	REQUIRE_EQ(n, 10);
	int pv = mod_index(out, n, "kernel/drivers/misc/pvpanic/pvpanic.ko");
	int pvm = mod_index(out, n, "kernel/drivers/misc/pvpanic/pvpanic-mmio.ko");
	int v = mod_index(out, n, "kernel/drivers/virtio/virtio.ko");
	int vr = mod_index(out, n, "kernel/drivers/virtio/virtio_ring.ko");
	int vm = mod_index(out, n, "kernel/drivers/virtio/virtio_mmio.ko");
	int crc = mod_index(out, n, "kernel/crypto/crc32c_generic.ko");
	int jbd = mod_index(out, n, "kernel/fs/jbd2/jbd2.ko");
	int e4 = mod_index(out, n, "kernel/fs/ext4/ext4.ko");
	CHECK(pv >= 0 && pv < pvm);
	CHECK(v >= 0 && v < vr && vr < vm);
	CHECK(crc >= 0 && crc < jbd && jbd < e4);
	CHECK(mod_index(out, n, "kernel/lib/crc16.ko") < e4);
	CHECK(mod_index(out, n, "kernel/fs/mbcache.ko") < e4);
	/* too small a list, a cycle, a hard dependency that is not there */
	CHECK_ERR(vmm_modules_resolve(&db, names, 4, out, 3), -ENOSPC);
	const char *const loop[] = {"loop_a"};
	CHECK_ERR(vmm_modules_resolve(&db, loop, 1, out, 16), -ELOOP);
	const char *const broken[] = {"broken"};
	CHECK_ERR(vmm_modules_resolve(&db, broken, 1, out, 16), -ENOENT);
	/* no database at all: nothing, not an error */
	const struct vmm_moddb none = {0};
	CHECK_EQ(vmm_modules_resolve(&none, names, 4, out, 16), 0);
	CHECK_ERR(vmm_modules_resolve(NULL, names, 4, out, 16), -EINVAL);
}

/* The host's own release, where Debian's kernel is installed: --root's modules
 * include ext4 after jbd2 and a crc32c, virtio_blk after virtio_ring. */
TEST(vmm_initramfs_modules_for_root_host_kernel)
{
	char rel[256] = "";
	DIR *d = opendir("/lib/modules");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char p[400];
		snprintf(p, sizeof(p), "/lib/modules/%s/kernel/fs/ext4/ext4.ko", e->d_name);
		if (access(p, R_OK) == 0)
			snprintf(rel, sizeof(rel), "%s", e->d_name);
	}
	if (d)
		closedir(d);
	if (!rel[0])
		TEST_SKIP(
		    "no /lib/modules/*/kernel/fs/ext4/ext4.ko (Debian's kernel not installed)");
	struct vmm_initramfs_module mods[VMM_INITRAMFS_MODULES_MAX];
	unsigned n = vmm_initramfs_modules(rel, true, mods, VMM_INITRAMFS_MODULES_MAX);
	int ext4 = -1, jbd2 = -1, crc = -1, blk = -1, ring = -1, mmio = -1, pv = -1;
	for (unsigned i = 0; i < n; i++) {
		const char *m = mods[i].name;
		if (!strcmp(m, "ext4.ko"))
			ext4 = (int)i;
		else if (!strcmp(m, "jbd2.ko"))
			jbd2 = (int)i;
		else if (!strncmp(m, "crc32c", 6) && crc < 0)
			crc = (int)i;
		else if (!strcmp(m, "virtio_blk.ko"))
			blk = (int)i;
		else if (!strcmp(m, "virtio_ring.ko"))
			ring = (int)i;
		else if (!strcmp(m, "virtio_mmio.ko"))
			mmio = (int)i;
		else if (!strcmp(m, "pvpanic-mmio.ko"))
			pv = (int)i;
	}
	TEST_LOG("%s: %u modules for --root", rel, n);
	CHECK(pv >= 0);
	CHECK(ring >= 0 && ring < mmio && ring < blk);
	CHECK(crc >= 0 && crc < jbd2 && jbd2 < ext4);
	vmm_initramfs_modules_free(mods, n);
	/* without root: pvpanic only */
	n = vmm_initramfs_modules(rel, false, mods, VMM_INITRAMFS_MODULES_MAX);
	CHECK_EQ(n, 2);
	vmm_initramfs_modules_free(mods, n);
}
