/* tests/unit/vmm_decompress.c - unit tests of host-side bzImage decompression and the PVH entry it leads to (each format, corrupt, truncated, bombs). */
#include "../lib/test.h"
#include "vmm_fixtures.h"

#include "../../vmm/arch/x86/layout.h"
#include "../../vmm/boot/boot.h"
#include "../../vmm/internal.h"
#include "../../lib/io/mem.h"

#include <bzlib.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* ------------------------------------------------------------ compressors (the libraries') */

/* Compresses src as the kernel's build does for CONFIG_KERNEL_<comp>: the
 * stream, then (not for gzip, whose trailer is the same) the 4-byte size.
 * Returns a malloc'd buffer, *n its length. */
static uint8_t *compress_as_kernel(enum vmm_comp comp, const uint8_t *src, size_t len, size_t *n)
{
	size_t cap = len * 2 + 4096;
	uint8_t *out = malloc(cap);
	size_t used = 0;
	if (!out)
		TEST_FAIL("malloc");
	switch (comp) {
	case VMM_COMP_XZ: {
		/* scripts/xz_wrap.sh: the x86 BCJ filter, LZMA2, CRC32 */
		lzma_options_lzma opt;
		lzma_lzma_preset(&opt, 6);
		lzma_filter f[] = {
		    {LZMA_FILTER_X86, NULL}, {LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, NULL}};
		if (lzma_stream_buffer_encode(f, LZMA_CHECK_CRC32, NULL, src, len, out, &used,
					      cap) != LZMA_OK)
			TEST_FAIL("xz encode");
		break;
	}
	case VMM_COMP_LZMA: {
		lzma_options_lzma opt;
		lzma_lzma_preset(&opt, 6);
		lzma_stream s = LZMA_STREAM_INIT;
		if (lzma_alone_encoder(&s, &opt) != LZMA_OK)
			TEST_FAIL("lzma encoder");
		s.next_in = src;
		s.avail_in = len;
		s.next_out = out;
		s.avail_out = cap;
		lzma_ret r;
		do
			r = lzma_code(&s, LZMA_FINISH);
		while (r == LZMA_OK);
		if (r != LZMA_STREAM_END)
			TEST_FAIL("lzma encode %d", r);
		used = cap - s.avail_out;
		lzma_end(&s);
		break;
	}
	case VMM_COMP_GZIP: {
		z_stream z;
		memset(&z, 0, sizeof(z));
		if (deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			TEST_FAIL("deflateInit2");
		z.next_in = (Bytef *)(uintptr_t)src;
		z.avail_in = (uInt)len;
		z.next_out = out;
		z.avail_out = (uInt)cap;
		if (deflate(&z, Z_FINISH) != Z_STREAM_END)
			TEST_FAIL("deflate");
		used = cap - z.avail_out;
		deflateEnd(&z);
		*n = used; /* gzip's trailer already ends with the size */
		return out;
	}
	case VMM_COMP_BZIP2: {
		unsigned dl = (unsigned)cap;
		if (BZ2_bzBuffToBuffCompress((char *)out, &dl, (char *)(uintptr_t)src,
					     (unsigned)len, 9, 0, 0) != BZ_OK)
			TEST_FAIL("bzip2 encode");
		used = dl;
		break;
	}
	case VMM_COMP_ZSTD: {
		/* the zstd tool's defaults: with a content checksum */
		ZSTD_CCtx *c = ZSTD_createCCtx();
		ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 19);
		ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
		used = ZSTD_compress2(c, out, cap, src, len);
		ZSTD_freeCCtx(c);
		if (ZSTD_isError(used))
			TEST_FAIL("zstd encode");
		break;
	}
	case VMM_COMP_LZ4: {
		/* lz4 -l: the legacy magic, then blocks of at most 8 MiB */
		vmm_put32(out, 0x184c2102);
		used = 4;
		for (size_t off = 0; off < len; off += 8u << 20) {
			size_t chunk = len - off < (8u << 20) ? len - off : (8u << 20);
			int c =
			    LZ4_compress_default((const char *)src + off, (char *)out + used + 4,
						 (int)chunk, (int)(cap - used - 4));
			if (c <= 0)
				TEST_FAIL("lz4 encode");
			vmm_put32(out + used, (uint32_t)c);
			used += 4 + (size_t)c;
		}
		break;
	}
	default:
		TEST_FAIL("no compressor for %d", comp);
	}
	vmm_put32(out + used, (uint32_t)len); /* size_append */
	*n = used + 4;
	return out;
}

/* A bzImage whose payload (at payload_offset 0x100, some bytes after it as
 * in a real image) is the given stream. */
#define PL_OFF 0x100
static uint8_t *bzimage_with(const uint8_t *payload, size_t plen, size_t *len)
{
	uint8_t *b = fx_bzimage((PL_OFF + plen + 0x40 + 15) & ~(size_t)15, len);
	memcpy(b + FX_BZ_SETUP_SIZE + PL_OFF, payload, plen);
	vmm_put32(b + 0x248, PL_OFF);
	vmm_put32(b + 0x24c, (uint32_t)plen);
	return b;
}

static struct vmm_mem mem_of(uint64_t size)
{
	struct vmm_mem m;
	struct ember_error err = {0};
	if (vmm_mem_create(&m, size, X86_MMIO_HOLE_START, X86_MMIO_HOLE_END, EMBER_MEM_ANON, false,
			   &err) < 0)
		TEST_FAIL("vmm_mem_create: %s", err.msg);
	return m;
}

static const struct vmm_e820 e820[] = {
    {0, 0x9fc00, VMM_E820_RAM},
    {0x100000, 0x3f00000, VMM_E820_RAM},
};
static const uint8_t initrd[6000] = {'0', '7', '0', '7', '0', '1', 42};
#define CMDLINE "console=ttyS0 e2e.token=abc123"

static struct vmm_boot_request request(const uint8_t *img, size_t len, enum ember_boot_path boot)
{
	return (struct vmm_boot_request){
	    .format = EMBER_KERNEL_BZIMAGE,
	    .kernel = img,
	    .kernel_size = len,
	    .kernel_fd = -1,
	    .initrd = initrd,
	    .initrd_size = sizeof(initrd),
	    .cmdline = CMDLINE,
	    .rsdp_gpa = 0xe0000,
	    .e820 = e820,
	    .e820_count = 2,
	    .boot = boot,
	};
}

static const enum vmm_comp all_formats[] = {VMM_COMP_XZ,    VMM_COMP_LZMA, VMM_COMP_GZIP,
					    VMM_COMP_BZIP2, VMM_COMP_ZSTD, VMM_COMP_LZ4};
#define NFORMATS (sizeof(all_formats) / sizeof(all_formats[0]))

#define CHECK_MSG(err, what)                                                         \
	do {                                                                         \
		if (!strstr((err).msg, (what)))                                      \
			TEST_FAIL("message \"%s\" lacks \"%s\"", (err).msg, (what)); \
	} while (0)

/* ------------------------------------------------------------ the decoders */

TEST(vmm_decompress_each_format)
{
	size_t elen;
	uint8_t *elf = fx_elf(&elen);
	for (size_t i = 0; i < NFORMATS; i++) {
		enum vmm_comp c = all_formats[i];
		size_t n;
		uint8_t *z = compress_as_kernel(c, elf, elen, &n);
		CHECK_EQ(vmm_comp_detect(z, n), c);
		CHECK(vmm_comp_supported(c));
		uint64_t in_len = c == VMM_COMP_GZIP ? n : n - 4;
		uint8_t *out = malloc(elen);
		uint64_t got = 0;
		struct ember_error err = {0};
		int r = vmm_decompress(c, z, in_len, out, elen, &got, &err);
		if (r < 0)
			TEST_FAIL("%s: %s", vmm_comp_name(c), err.msg);
		CHECK_EQ(got, elen);
		CHECK(!memcmp(out, elf, elen));
		/* one byte less room: the output is bounded, and said so */
		CHECK_ERR(vmm_decompress(c, z, in_len, out, elen - 1, &got, &err), -EFBIG);
		CHECK(got <= elen - 1);
		CHECK_MSG(err, "more than");
		/* truncated in the middle */
		CHECK_ERR(vmm_decompress(c, z, in_len / 2, out, elen, &got, &err), -ENOEXEC);
		free(out);
		free(z);
	}
	free(elf);
	/* lzo is recognised but not read */
	static const uint8_t lzo[16] = {0x89, 'L', 'Z', 'O', 0};
	uint8_t out[16];
	uint64_t got;
	CHECK_EQ(vmm_comp_detect(lzo, sizeof(lzo)), VMM_COMP_LZO);
	CHECK(!vmm_comp_supported(VMM_COMP_LZO));
	CHECK_ERR(vmm_decompress(VMM_COMP_LZO, lzo, sizeof(lzo), out, sizeof(out), &got, NULL),
		  -ENOTSUP);
	CHECK_EQ(vmm_comp_detect(lzo, 2), VMM_COMP_UNKNOWN);
}

/* A flipped byte in the middle: the formats with an integrity check
 * (xz CRC32, gzip CRC32, bzip2 CRC, zstd checksum) refuse it. */
TEST(vmm_decompress_corrupt_refused)
{
	size_t elen;
	uint8_t *elf = fx_elf(&elen);
	static const enum vmm_comp checked[] = {VMM_COMP_XZ, VMM_COMP_GZIP, VMM_COMP_BZIP2,
						VMM_COMP_ZSTD};
	for (size_t i = 0; i < sizeof(checked) / sizeof(checked[0]); i++) {
		size_t n;
		uint8_t *z = compress_as_kernel(checked[i], elf, elen, &n);
		z[n / 2] ^= 0x55;
		/* room to spare: the integrity check, not the bound, refuses it */
		uint8_t *out = malloc(elen * 4);
		uint64_t got;
		struct ember_error err = {0};
		CHECK_ERR(vmm_decompress(checked[i], z, n - 4, out, elen * 4, &got, &err),
			  -ENOEXEC);
		TEST_LOG("%s: %s", vmm_comp_name(checked[i]), err.msg);
		free(out);
		free(z);
	}
	/* lz4: a block size running past the data */
	size_t n;
	uint8_t *z = compress_as_kernel(VMM_COMP_LZ4, elf, elen, &n);
	vmm_put32(z + 4, 0x7fffff);
	uint8_t *out = malloc(elen);
	uint64_t got;
	struct ember_error err = {0};
	CHECK_ERR(vmm_decompress(VMM_COMP_LZ4, z, n - 4, out, elen, &got, &err), -ENOEXEC);
	CHECK_MSG(err, "runs past the end");
	/* an lzma header asking for a 4 GiB dictionary */
	free(z);
	z = compress_as_kernel(VMM_COMP_LZMA, elf, elen, &n);
	vmm_put32(z + 1, 0xffffffff);
	CHECK_ERR(vmm_decompress(VMM_COMP_LZMA, z, n - 4, out, elen, &got, &err), -ENOEXEC);
	free(z);
	free(out);
	free(elf);
}

/* ------------------------------------------------------------ the boot */

/* Every format: a bzImage boots through PVH with the ELF's segments, the
 * initrd and the command line in place. */
TEST(vmm_boot_bzimage_via_pvh_each_format)
{
	size_t elen;
	uint8_t *elf = fx_elf(&elen);
	for (size_t i = 0; i < NFORMATS; i++) {
		size_t n, len;
		uint8_t *z = compress_as_kernel(all_formats[i], elf, elen, &n);
		uint8_t *img = bzimage_with(z, n, &len);
		struct vmm_mem m = mem_of(64 << 20);
		struct vmm_boot_request req = request(img, len, EMBER_BOOT_AUTO);
		struct vmm_boot_entry entry;
		struct ember_error err = {0};
		enum ember_boot_path path;
		REQUIRE_OK(
		    vmm_boot_choose(img, len, EMBER_KERNEL_BZIMAGE, EMBER_BOOT_AUTO, &path, &err));
		CHECK_EQ(path, EMBER_BOOT_PVH);
		int r = vmm_boot_load(&m, &req, &entry, &err);
		if (r < 0)
			TEST_FAIL("%s: %s", vmm_comp_name(all_formats[i]), err.msg);
		CHECK_EQ(entry.mode, VMM_ENTRY_PVH32);
		CHECK_EQ(entry.rip, FX_ELF_ENTRY);
		CHECK_EQ(entry.rbx, X86_PVH_INFO_ADDR);
		CHECK(strstr(entry.note, vmm_comp_name(all_formats[i])) != NULL);
		CHECK(strstr(entry.note, "decompressed on the host") != NULL);
		CHECK(!memcmp(vmm_mem_ptr(&m, FX_ELF_TEXT_PADDR, FX_ELF_TEXT_SIZE),
			      elf + FX_ELF_TEXT_OFF, FX_ELF_TEXT_SIZE));
		CHECK(!memcmp(vmm_mem_ptr(&m, FX_ELF_DATA_PADDR, FX_ELF_DATA_SIZE),
			      elf + FX_ELF_DATA_OFF, FX_ELF_DATA_SIZE));
		/* what the boot protocol would have given: start_info has it */
		const uint8_t *si = vmm_mem_ptr(&m, X86_PVH_INFO_ADDR, 56);
		CHECK_EQ(vmm_le32(si), 0x336ec578);
		CHECK_EQ(vmm_le32(si + 12), 1); /* nr_modules: the initrd */
		CHECK_EQ(vmm_le64(si + 24), X86_CMDLINE_ADDR);
		CHECK_EQ(vmm_le64(si + 32), 0xe0000); /* rsdp */
		CHECK_EQ(vmm_le32(si + 48), 2);	      /* memmap entries */
		CHECK_STR((const char *)vmm_mem_ptr(&m, X86_CMDLINE_ADDR, sizeof(CMDLINE)),
			  CMDLINE);
		const uint8_t *mod = vmm_mem_ptr(&m, vmm_le64(si + 16), 32);
		CHECK_EQ(vmm_le64(mod + 8), sizeof(initrd));
		CHECK(!memcmp(vmm_mem_ptr(&m, vmm_le64(mod), sizeof(initrd)), initrd,
			      sizeof(initrd)));
		/* the bzImage header's own cmdline_size still bounds the line */
		char line[2100];
		memset(line, 'x', sizeof(line) - 1);
		line[sizeof(line) - 1] = 0;
		req.cmdline = line;
		CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -E2BIG);
		CHECK_MSG(err, "(2047)");
		vmm_mem_destroy(&m);
		free(img);
		free(z);
	}
	free(elf);
}

/* --boot bzimage keeps the boot protocol, and then a corrupt payload still
 * goes to the guest (its decompressor is what finds out). */
TEST(vmm_boot_bzimage_forced_boot_protocol)
{
	size_t elen, n, len;
	uint8_t *elf = fx_elf(&elen);
	uint8_t *z = compress_as_kernel(VMM_COMP_XZ, elf, elen, &n);
	uint8_t *img = bzimage_with(z, n, &len);
	struct vmm_mem m = mem_of(64 << 20);
	struct vmm_boot_request req = request(img, len, EMBER_BOOT_BZIMAGE);
	struct vmm_boot_entry entry;
	struct ember_error err = {0};
	REQUIRE_OK(vmm_boot_load(&m, &req, &entry, &err));
	CHECK_EQ(entry.mode, VMM_ENTRY_LONG64);
	CHECK_EQ(entry.rip, 0x100200);
	CHECK(!memcmp(vmm_mem_ptr(&m, 0x100000, len - FX_BZ_SETUP_SIZE), img + FX_BZ_SETUP_SIZE,
		      len - FX_BZ_SETUP_SIZE));
	img[FX_BZ_SETUP_SIZE + PL_OFF + n / 2] ^= 0x55;
	CHECK_OK(vmm_boot_load(&m, &req, &entry, &err));
	CHECK_EQ(entry.mode, VMM_ENTRY_LONG64);
	/* auto and pvh refuse it, before anything is loaded */
	vmm_mem_destroy(&m);
	m = mem_of(64 << 20);
	req.boot = EMBER_BOOT_AUTO;
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	CHECK_MSG(err, "xz payload");
	TEST_LOG("%s", err.msg);
	const uint8_t *p = vmm_mem_ptr(&m, FX_ELF_TEXT_PADDR, 4096);
	for (int i = 0; i < 4096; i++)
		if (p[i])
			TEST_FAIL("guest memory written before the refusal");
	req.boot = EMBER_BOOT_PVH;
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	vmm_mem_destroy(&m);
	free(img);
	free(z);
	free(elf);
}

/* The output is bounded by the declared size, init_size and guest RAM. */
TEST(vmm_boot_bzimage_bombs_bounded)
{
	struct ember_error err = {0};
	struct vmm_boot_entry entry;
	struct vmm_mem m = mem_of(64 << 20);
	size_t elen, n, len;
	uint8_t *elf = fx_elf(&elen);

	/* 32 MiB of zeros in ~32 KiB of gzip claiming to be 16 KiB: stops at 16 KiB */
	size_t big = 32u << 20;
	uint8_t *zeros = calloc(1, big);
	memcpy(zeros, elf, elen);
	uint8_t *z = compress_as_kernel(VMM_COMP_GZIP, zeros, big, &n);
	vmm_put32(z + n - 4, (uint32_t)elen);
	uint8_t *img = bzimage_with(z, n, &len);
	struct vmm_boot_request req = request(img, len, EMBER_BOOT_AUTO);
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	CHECK_MSG(err, "more than the");
	/* honest about its size, but above init_size (8 MiB) */
	vmm_put32(img + FX_BZ_SETUP_SIZE + PL_OFF + n - 4, (uint32_t)big);
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	CHECK_MSG(err, "init_size");
	/* within init_size but more than guest RAM: more --mem would help */
	vmm_put32(img + 0x260, 0x8000000);
	vmm_put32(img + FX_BZ_SETUP_SIZE + PL_OFF + n - 4, 100u << 20);
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -E2BIG);
	CHECK_MSG(err, "use more --mem");
	/* the caller's own cap (what the fuzzers use) */
	struct vmm_mem m2 = mem_of(256 << 20);
	req.unpack_max = 1 << 20;
	CHECK_ERR(vmm_boot_load(&m2, &req, &entry, &err), -E2BIG);
	vmm_mem_destroy(&m2);
	free(img);
	free(z);
	free(zeros);

	/* a trailer that claims more than the stream holds */
	z = compress_as_kernel(VMM_COMP_XZ, elf, elen, &n);
	vmm_put32(z + n - 4, (uint32_t)elen + 4096);
	img = bzimage_with(z, n, &len);
	req = request(img, len, EMBER_BOOT_AUTO);
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	CHECK_MSG(err, "not the");
	/* and a tiny one */
	vmm_put32(img + FX_BZ_SETUP_SIZE + PL_OFF + n - 4, 3);
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	free(img);
	/* truncated: payload_length cut short */
	img = bzimage_with(z, n, &len);
	vmm_put32(img + 0x24c, (uint32_t)n / 2);
	vmm_put32(img + FX_BZ_SETUP_SIZE + PL_OFF + n / 2 - 4, (uint32_t)elen);
	req = request(img, len, EMBER_BOOT_AUTO);
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	CHECK_MSG(err, "truncated");
	free(img);
	free(z);
	vmm_mem_destroy(&m);
	free(elf);
}

static void retype_note(uint8_t *elf)
{
	Elf64_Phdr ph;
	memcpy(&ph, elf + FX_ELF_PHDR(2), sizeof(ph));
	ph.p_type = PT_NULL;
	memcpy(elf + FX_ELF_PHDR(2), &ph, sizeof(ph));
}

/* What auto falls back from, and what pvh refuses. */
TEST(vmm_boot_bzimage_fallbacks)
{
	struct ember_error err = {0};
	struct vmm_boot_entry entry;
	struct vmm_mem m = mem_of(64 << 20);
	size_t elen, n, len;
	enum ember_boot_path path;

	/* a kernel without CONFIG_PVH */
	uint8_t *elf = fx_elf(&elen);
	retype_note(elf);
	uint8_t *z = compress_as_kernel(VMM_COMP_ZSTD, elf, elen, &n);
	uint8_t *img = bzimage_with(z, n, &len);
	struct vmm_boot_request req = request(img, len, EMBER_BOOT_AUTO);
	REQUIRE_OK(vmm_boot_load(&m, &req, &entry, &err));
	CHECK_EQ(entry.mode, VMM_ENTRY_LONG64);
	CHECK(strstr(entry.note, "no PVH entry note") != NULL);
	req.boot = EMBER_BOOT_PVH;
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	CHECK_MSG(err, "no PVH entry note");
	free(img);
	free(z);
	free(elf);

	/* a payload that decompresses to something not an ELF: refused */
	static const uint8_t text[4096] = "not an ELF at all";
	z = compress_as_kernel(VMM_COMP_GZIP, text, sizeof(text), &n);
	img = bzimage_with(z, n, &len);
	req = request(img, len, EMBER_BOOT_AUTO);
	CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
	CHECK_MSG(err, "decompressed payload");
	free(img);
	free(z);

	/* lzo, an unknown format, a header that does not locate the payload */
	static const uint8_t lzo[64] = {0x89, 'L', 'Z', 'O', 0, 0x0d, 0x0a, 0x1a};
	for (int k = 0; k < 3; k++) {
		img = bzimage_with(lzo, sizeof(lzo), &len);
		if (k == 1)
			img[FX_BZ_SETUP_SIZE + PL_OFF] = 0x42;
		if (k == 2)
			vmm_put32(img + 0x248, 0x7fffffff);
		req = request(img, len, EMBER_BOOT_AUTO);
		REQUIRE_OK(vmm_boot_load(&m, &req, &entry, &err));
		CHECK_EQ(entry.mode, VMM_ENTRY_LONG64);
		CHECK(strstr(entry.note, "boot protocol") != NULL);
		REQUIRE_OK(
		    vmm_boot_choose(img, len, EMBER_KERNEL_BZIMAGE, EMBER_BOOT_AUTO, &path, &err));
		CHECK_EQ(path, EMBER_BOOT_BZIMAGE);
		CHECK_ERR(
		    vmm_boot_choose(img, len, EMBER_KERNEL_BZIMAGE, EMBER_BOOT_PVH, &path, &err),
		    -ENOEXEC);
		CHECK_MSG(err, "boot pvh");
		req.boot = EMBER_BOOT_PVH;
		CHECK_ERR(vmm_boot_load(&m, &req, &entry, &err), -ENOEXEC);
		free(img);
	}
	/* an ELF kernel has no boot-protocol path */
	CHECK_ERR(vmm_boot_choose(NULL, 0, EMBER_KERNEL_ELF_PVH, EMBER_BOOT_BZIMAGE, &path, &err),
		  -EINVAL);
	REQUIRE_OK(vmm_boot_choose(NULL, 0, EMBER_KERNEL_ELF_PVH, EMBER_BOOT_AUTO, &path, &err));
	CHECK_EQ(path, EMBER_BOOT_PVH);
	vmm_mem_destroy(&m);
}

/* The config key and option, resolve's choice, --dry-run's line. */
TEST(vmm_config_boot_path)
{
	size_t elen, n, len;
	uint8_t *elf = fx_elf(&elen);
	uint8_t *z = compress_as_kernel(VMM_COMP_XZ, elf, elen, &n);
	uint8_t *img = bzimage_with(z, n, &len);
	char path[] = "/tmp/ember-unit-bootXXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, img, len) == (ssize_t)len);
	close(fd);

	struct ember_config *c;
	struct ember_error err = {0};
	char out[4096], v[32];
	REQUIRE_OK(ember_config_new(&c));
	REQUIRE_OK(ember_config_set_console(c, -1, 1));
	CHECK(ember_config_get(c, "boot", v, sizeof(v)) > 0);
	CHECK_STR(v, "auto");
	CHECK_ERR(ember_config_set(c, "boot", "fast", &err), -EINVAL);
	CHECK_MSG(err, "auto, pvh or bzimage");
	char *argv[] = {"--kernel", path, "--boot", "bzimage"};
	REQUIRE_OK(ember_config_parse_args(c, 4, argv, NULL, &err));
	CHECK(ember_config_get(c, "boot", v, sizeof(v)) > 0);
	CHECK_STR(v, "bzimage");
	REQUIRE_OK(ember_config_resolve(c, &err));
	ember_config_format(c, out, sizeof(out));
	CHECK(strstr(out, "\nboot: bzimage\n") != NULL);
	ember_config_free(c);

	REQUIRE_OK(ember_config_new(&c));
	REQUIRE_OK(ember_config_set_console(c, -1, 1));
	REQUIRE_OK(ember_config_set(c, "kernel", path, NULL));
	REQUIRE_OK(ember_config_resolve(c, &err));
	ember_config_format(c, out, sizeof(out));
	CHECK(strstr(out, "\nboot: pvh (auto: the payload is decompressed on the host)\n") != NULL);
	CHECK(ember_config_get(c, "boot-path", v, sizeof(v)) > 0);
	CHECK_STR(v, "pvh");
	ember_config_free(c);

	/* pvh asked for, a payload Ember cannot read: resolve says so */
	vmm_put32(img + 0x24c, 0);
	fd = open(path, O_WRONLY | O_TRUNC);
	REQUIRE(fd >= 0 && write(fd, img, len) == (ssize_t)len);
	close(fd);
	REQUIRE_OK(ember_config_new(&c));
	REQUIRE_OK(ember_config_set(c, "kernel", path, NULL));
	REQUIRE_OK(ember_config_set(c, "boot", "pvh", NULL));
	CHECK_ERR(ember_config_resolve(c, &err), -ENOEXEC);
	CHECK_MSG(err, path);
	CHECK_MSG(err, "boot pvh");
	/* and auto boots it through the boot protocol */
	REQUIRE_OK(ember_config_set(c, "boot", "auto", NULL));
	REQUIRE_OK(ember_config_resolve(c, &err));
	ember_config_format(c, out, sizeof(out));
	CHECK(strstr(out, "\nboot: bzimage (auto") != NULL);
	CHECK(ember_config_get(c, "boot-path", v, sizeof(v)) > 0);
	CHECK_STR(v, "bzimage");
	ember_config_free(c);
	unlink(path);
	free(img);
	free(z);
	free(elf);
}

/* ------------------------------------------------------------ the kernel cache */

struct kc_env {
	char root[64];	 /* a fresh directory */
	char image[128]; /* the bzImage file in it */
	char dir[128];	 /* the cache directory (not created) */
};

static void kc_setup(struct kc_env *e)
{
	snprintf(e->root, sizeof(e->root), "/tmp/ember-kcache-XXXXXX");
	if (!mkdtemp(e->root))
		TEST_FAIL("mkdtemp");
	snprintf(e->image, sizeof(e->image), "%s/bzImage", e->root);
	snprintf(e->dir, sizeof(e->dir), "%s/cache/ember/kernels", e->root);
}

static void kc_cleanup(struct kc_env *e)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->root);
	if (system(cmd) != 0)
		TEST_LOG("cannot remove %s", e->root);
}

/* An xz bzImage of the fixture ELF, its text's first byte set to v, written
 * to path (replacing it: a new inode). */
static void kc_write_image(const char *path, uint8_t v)
{
	size_t elen, n, len;
	uint8_t *elf = fx_elf(&elen);
	elf[FX_ELF_TEXT_OFF] = v;
	uint8_t *z = compress_as_kernel(VMM_COMP_XZ, elf, elen, &n);
	uint8_t *img = bzimage_with(z, n, &len);
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, img, len) != (ssize_t)len || close(fd) < 0 || rename(tmp, path) < 0)
		TEST_FAIL("cannot write %s", path);
	free(img);
	free(z);
	free(elf);
}

/* Boots path (auto) with the cache in dir (NULL: none) as the board does:
 * mapped from its fd. Checks the guest's text starts with v. */
static void kc_boot(const char *path, const char *dir, uint8_t v, struct vmm_boot_entry *entry)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	const uint8_t *img;
	uint64_t len;
	if (fd < 0 || vmm_map_fd(fd, &img, &len) < 0)
		TEST_FAIL("cannot map %s", path);
	struct vmm_mem m = mem_of(64 << 20);
	struct vmm_boot_request req = request(img, len, EMBER_BOOT_AUTO);
	req.map_kernel = true;
	req.kernel_fd = fd;
	req.kcache_dir = dir;
	struct ember_error err = {0};
	if (vmm_boot_load(&m, &req, entry, &err) < 0)
		TEST_FAIL("boot: %s", err.msg);
	CHECK_EQ(entry->mode, VMM_ENTRY_PVH32);
	CHECK_EQ(entry->rip, FX_ELF_ENTRY);
	const uint8_t *text = vmm_mem_ptr(&m, FX_ELF_TEXT_PADDR, FX_ELF_TEXT_SIZE);
	CHECK_EQ(text[0], v);
	TEST_LOG("%s | %s", entry->note, entry->cache_note);
	vmm_mem_destroy(&m);
	vmm_unmap_file(img, len);
	close(fd);
}

static unsigned kc_count(const char *dir)
{
	DIR *d = opendir(dir);
	unsigned n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += strstr(de->d_name, ".vmlinux") != NULL;
	if (d)
		closedir(d);
	return n;
}

/* The one entry's path in dir. */
static void kc_entry(const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	out[0] = 0;
	while (d && (de = readdir(d)))
		if (strstr(de->d_name, ".vmlinux"))
			snprintf(out, len, "%s/%s", dir, de->d_name);
	if (d)
		closedir(d);
	if (!out[0])
		TEST_FAIL("no entry in %s", dir);
}

#define DECOMPRESSED(e) (strstr((e).note, "decompressed on the host") != NULL)
#define FROM_CACHE(e)	(strstr((e).note, "kernel cache") != NULL)

/* The first boot fills the cache (owner-only), the second is a hit; a
 * replaced image, or the same image touched, misses. */
TEST(vmm_kcache_hit_and_miss)
{
	struct kc_env e;
	struct vmm_boot_entry entry;
	kc_setup(&e);
	kc_write_image(e.image, 0xa1);
	kc_boot(e.image, e.dir, 0xa1, &entry);
	CHECK(DECOMPRESSED(entry));
	CHECK(strstr(entry.cache_note, "stored") != NULL);
	CHECK_EQ(kc_count(e.dir), 1);
	struct stat st;
	char ent[512];
	REQUIRE(stat(e.dir, &st) == 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	kc_entry(e.dir, ent, sizeof(ent));
	REQUIRE(stat(ent, &st) == 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	/* the zero ranges are holes, the size is the ELF's */
	size_t elen;
	uint8_t *elf = fx_elf(&elen);
	CHECK_EQ(st.st_size, elen);
	free(elf);

	kc_boot(e.image, e.dir, 0xa1, &entry);
	CHECK(FROM_CACHE(entry));
	CHECK(strstr(entry.cache_note, "hit") != NULL);
	CHECK_EQ(kc_count(e.dir), 1);

	/* replaced by another kernel: a miss, and a second entry */
	kc_write_image(e.image, 0xb2);
	kc_boot(e.image, e.dir, 0xb2, &entry);
	CHECK(DECOMPRESSED(entry));
	CHECK_EQ(kc_count(e.dir), 2);
	kc_boot(e.image, e.dir, 0xb2, &entry);
	CHECK(FROM_CACHE(entry));
	/* the same content, touched: its identity changed */
	struct timespec ts[2] = {{.tv_nsec = UTIME_NOW}, {.tv_sec = 1000000000, .tv_nsec = 5}};
	REQUIRE(utimensat(AT_FDCWD, e.image, ts, 0) == 0);
	kc_boot(e.image, e.dir, 0xb2, &entry);
	CHECK(DECOMPRESSED(entry));
	CHECK_EQ(kc_count(e.dir), 3);
	kc_cleanup(&e);
}

/* A corrupt entry (cut short, or not an ELF) is not used: it is replaced,
 * and the boot still gets the right kernel. */
TEST(vmm_kcache_corrupt_entry_replaced)
{
	struct kc_env e;
	struct vmm_boot_entry entry;
	char ent[512];
	kc_setup(&e);
	kc_write_image(e.image, 0xc3);
	kc_boot(e.image, e.dir, 0xc3, &entry);
	kc_entry(e.dir, ent, sizeof(ent));
	struct stat st;
	REQUIRE(stat(ent, &st) == 0);
	/* cut short by one byte */
	REQUIRE(truncate(ent, st.st_size - 1) == 0);
	kc_boot(e.image, e.dir, 0xc3, &entry);
	CHECK(DECOMPRESSED(entry));
	CHECK(strstr(entry.cache_note, "invalid") != NULL);
	CHECK(strstr(entry.cache_note, "stored") != NULL); /* and replaced */
	kc_boot(e.image, e.dir, 0xc3, &entry);
	CHECK(FROM_CACHE(entry));
	/* the ELF magic overwritten, same size */
	int fd = open(ent, O_WRONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(pwrite(fd, "XXXX", 4, 0) == 4);
	close(fd);
	kc_boot(e.image, e.dir, 0xc3, &entry);
	CHECK(DECOMPRESSED(entry));
	kc_boot(e.image, e.dir, 0xc3, &entry);
	CHECK(FROM_CACHE(entry));
	/* an entry another user could write is not trusted */
	REQUIRE(chmod(ent, 0666) == 0);
	kc_boot(e.image, e.dir, 0xc3, &entry);
	CHECK(DECOMPRESSED(entry));
	REQUIRE(stat(ent, &st) == 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(kc_count(e.dir), 1);
	kc_cleanup(&e);
}

/* A cache that cannot be written is no cache: the boot succeeds and the
 * note says why. */
TEST(vmm_kcache_unwritable_dir)
{
	struct kc_env e;
	struct vmm_boot_entry entry;
	kc_setup(&e);
	kc_write_image(e.image, 0xd4);
	/* under a regular file: cannot be created */
	char dir[200];
	snprintf(dir, sizeof(dir), "%s/kernels", e.image);
	kc_boot(e.image, dir, 0xd4, &entry);
	CHECK(DECOMPRESSED(entry));
	CHECK(strstr(entry.cache_note, "cannot create") != NULL);
	/* a directory of another user (root: chown; else: no write permission) */
	char other[200];
	snprintf(other, sizeof(other), "%s/other", e.root);
	REQUIRE(mkdir(other, 0755) == 0);
	if (geteuid() == 0)
		REQUIRE(chown(other, 65534, 65534) == 0);
	else
		REQUIRE(chmod(other, 0500) == 0);
	kc_boot(e.image, other, 0xd4, &entry);
	CHECK(DECOMPRESSED(entry));
	CHECK(entry.cache_note[0] != 0);
	CHECK_EQ(kc_count(other), 0);
	kc_boot(e.image, other, 0xd4, &entry);
	CHECK(DECOMPRESSED(entry));
	chmod(other, 0700);
	/* a relative path is refused */
	kc_boot(e.image, "relative/dir", 0xd4, &entry);
	CHECK(strstr(entry.cache_note, "absolute") != NULL);
	kc_cleanup(&e);
}

/* No directory: no cache consulted, nothing written. */
TEST(vmm_kcache_off)
{
	struct kc_env e;
	struct vmm_boot_entry entry;
	kc_setup(&e);
	kc_write_image(e.image, 0xe5);
	kc_boot(e.image, NULL, 0xe5, &entry);
	CHECK(DECOMPRESSED(entry));
	CHECK_STR(entry.cache_note, "");
	kc_boot(e.image, NULL, 0xe5, &entry);
	CHECK(DECOMPRESSED(entry));
	struct stat st;
	CHECK(stat(e.dir, &st) < 0);
	kc_cleanup(&e);
}

/* Only the most recently used entries are kept; stale temporary files go. */
TEST(vmm_kcache_bounded)
{
	struct kc_env e;
	struct vmm_boot_entry entry;
	kc_setup(&e);
	char first[512];
	for (unsigned i = 0; i < VMM_KCACHE_KEEP + 2; i++) {
		kc_write_image(e.image, (uint8_t)(0x10 + i));
		kc_boot(e.image, e.dir, (uint8_t)(0x10 + i), &entry);
		CHECK(DECOMPRESSED(entry));
		if (i == 0)
			kc_entry(e.dir, first, sizeof(first));
		/* distinct mtimes even on a coarse clock */
		struct timespec ts[2] = {{.tv_sec = 1000 + i}, {.tv_sec = 1000 + i}};
		DIR *d = opendir(e.dir);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			struct stat st;
			char p[512];
			snprintf(p, sizeof(p), "%s/%s", e.dir, de->d_name);
			/* the entry just written is the only one newer than 1000 + i */
			if (strstr(de->d_name, ".vmlinux") && stat(p, &st) == 0 &&
			    st.st_mtim.tv_sec > 1000 + (time_t)i)
				utimensat(AT_FDCWD, p, ts, 0);
		}
		if (d)
			closedir(d);
	}
	CHECK_EQ(kc_count(e.dir), VMM_KCACHE_KEEP);
	struct stat st;
	CHECK(stat(first, &st) < 0); /* the oldest went */
	/* a temporary file from a writer that died long ago */
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s/.tmp-abcdef", e.dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0);
	close(fd);
	struct timespec old[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
	REQUIRE(utimensat(AT_FDCWD, tmp, old, 0) == 0);
	CHECK_EQ(vmm_kcache_trim(e.dir, 2), VMM_KCACHE_KEEP - 2);
	CHECK_EQ(kc_count(e.dir), 2);
	CHECK(stat(tmp, &st) < 0);
	kc_cleanup(&e);
}

/* The key follows content and identity; the hash is deterministic. */
TEST(vmm_kcache_key)
{
	uint8_t a[100] = {1}, b[100] = {1};
	CHECK_EQ(vmm_kcache_hash(a, sizeof(a)), vmm_kcache_hash(b, sizeof(b)));
	b[99] = 2;
	CHECK(vmm_kcache_hash(a, sizeof(a)) != vmm_kcache_hash(b, sizeof(b)));
	CHECK(vmm_kcache_hash(a, 99) != vmm_kcache_hash(a, 100));
	b[99] = 0;
	b[3] = 9;
	CHECK(vmm_kcache_hash(a, sizeof(a)) != vmm_kcache_hash(b, sizeof(b)));
	struct kc_env e;
	kc_setup(&e);
	kc_write_image(e.image, 1);
	int fd = open(e.image, O_RDONLY | O_CLOEXEC);
	const uint8_t *img;
	uint64_t len;
	REQUIRE(fd >= 0 && vmm_map_fd(fd, &img, &len) == 0);
	char k1[64], k2[64];
	REQUIRE_OK(vmm_kcache_key(fd, img, len, k1, sizeof(k1)));
	REQUIRE_OK(vmm_kcache_key(fd, img, len, k2, sizeof(k2)));
	CHECK_STR(k1, k2);
	CHECK_ERR(vmm_kcache_key(fd, img, len - 1, k2, sizeof(k2)), -ESTALE);
	CHECK_ERR(vmm_kcache_key(fd, img, len, k2, 10), -ENAMETOOLONG);
	vmm_unmap_file(img, len);
	close(fd);
	/* the default directory */
	char dir[256];
	setenv("XDG_CACHE_HOME", "/x/c", 1);
	REQUIRE_OK(vmm_kcache_default_dir(dir, sizeof(dir)));
	CHECK_STR(dir, "/x/c/ember/kernels");
	setenv("XDG_CACHE_HOME", "relative", 1);
	setenv("HOME", "/h", 1);
	REQUIRE_OK(vmm_kcache_default_dir(dir, sizeof(dir)));
	CHECK_STR(dir, "/h/.cache/ember/kernels");
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	CHECK_ERR(vmm_kcache_default_dir(dir, sizeof(dir)), -ENOENT);
	kc_cleanup(&e);
}

/* The keys kernel-cache and kernel-cache-dir, their options, and the
 * default directory resolve fills in (none without XDG_CACHE_HOME and HOME:
 * not an error). */
TEST(vmm_config_kernel_cache)
{
	struct kc_env e;
	kc_setup(&e);
	kc_write_image(e.image, 1);
	struct ember_config *c;
	struct ember_error err = {0};
	char out[4096], v[256];
	REQUIRE_OK(ember_config_new(&c));
	REQUIRE_OK(ember_config_set_console(c, -1, 1));
	CHECK(ember_config_get(c, "kernel-cache", v, sizeof(v)) > 0);
	CHECK_STR(v, "on");
	CHECK_ERR(ember_config_set(c, "kernel-cache", "maybe", &err), -EINVAL);
	CHECK_ERR(ember_config_set(c, "kernel-cache-dir", "rel/dir", &err), -EINVAL);
	CHECK_MSG(err, "absolute");
	setenv("XDG_CACHE_HOME", e.root, 1);
	REQUIRE_OK(ember_config_set(c, "kernel", e.image, NULL));
	REQUIRE_OK(ember_config_resolve(c, &err));
	CHECK(ember_config_get(c, "kernel-cache-dir", v, sizeof(v)) > 0);
	char want[256];
	snprintf(want, sizeof(want), "%s/ember/kernels", e.root);
	CHECK_STR(v, want);
	ember_config_format(c, out, sizeof(out));
	snprintf(want, sizeof(want), "\nkernel-cache: on (%s/ember/kernels)\n", e.root);
	CHECK(strstr(out, want) != NULL);
	ember_config_free(c);

	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	REQUIRE_OK(ember_config_new(&c));
	REQUIRE_OK(ember_config_set_console(c, -1, 1));
	REQUIRE_OK(ember_config_set(c, "kernel", e.image, NULL));
	REQUIRE_OK(ember_config_resolve(c, &err));
	CHECK_EQ(ember_config_get(c, "kernel-cache-dir", v, sizeof(v)), 0);
	ember_config_format(c, out, sizeof(out));
	CHECK(strstr(out, "kernel-cache: on (no directory") != NULL);
	ember_config_free(c);

	REQUIRE_OK(ember_config_new(&c));
	REQUIRE_OK(ember_config_set_console(c, -1, 1));
	char *argv[] = {"--kernel", e.image, "--kernel-cache", "off", "--kernel-cache-dir=/x/y"};
	REQUIRE_OK(ember_config_parse_args(c, 5, argv, NULL, &err));
	REQUIRE_OK(ember_config_resolve(c, &err));
	CHECK(ember_config_get(c, "kernel-cache", v, sizeof(v)) > 0);
	CHECK_STR(v, "off");
	CHECK(ember_config_get(c, "kernel-cache-dir", v, sizeof(v)) > 0);
	CHECK_STR(v, "/x/y");
	ember_config_format(c, out, sizeof(out));
	CHECK(strstr(out, "\nkernel-cache: off\n") != NULL);
	ember_config_free(c);
	kc_cleanup(&e);
}
