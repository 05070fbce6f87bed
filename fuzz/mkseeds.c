/* fuzz/mkseeds.c - writes the fuzz targets' seed inputs: synthetic bzImage and ELF/PVH kernels, boot parameters, a real bzImage's header. */
#include "../tests/unit/vmm_fixtures.h"

#include <errno.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "mkseeds: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The first `keep` bytes of a real bzImage with syssize cut to what is
 * left, so that the header checks pass and the loader copies it. */
static int real_bzimage(const char *dir, const char *path, size_t keep)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "mkseeds: %s: %s (skipped)\n", path, strerror(errno));
		return 0;
	}
	uint8_t *b = calloc(1, keep);
	size_t n = b ? fread(b, 1, keep, f) : 0;
	fclose(f);
	if (n < 0x400) {
		free(b);
		return 0;
	}
	unsigned sects = b[0x1f1] ? b[0x1f1] : 4;
	size_t setup = (size_t)(sects + 1) * 512;
	int r = 0;
	if (setup < n) {
		vmm_put32(b + 0x1f4, (uint32_t)((n - setup) / 16));
		r = write_file(dir, "real-bzimage", b, n);
		/* and the header alone, truncated right after the setup code */
		if (!r)
			r = write_file(dir, "real-bzimage-setup", b, setup + 16);
	}
	free(b);
	return r;
}

/* A bzImage whose payload is fx_elf compressed as the kernel's build does
 * (xz with the x86 filter, gzip, zstd), so that the fuzzer starts inside
 * the host-side decompressor and the PVH path. */
static int compressed_bzimage(const char *dir, const char *name, int kind)
{
	size_t elen, used = 0, cap = 1 << 16;
	uint8_t *elf = fx_elf(&elen);
	uint8_t *z = calloc(1, cap);
	int ok = 0;
	if (kind == 0) {
		lzma_options_lzma opt;
		lzma_lzma_preset(&opt, 6);
		lzma_filter f[] = {
		    {LZMA_FILTER_X86, NULL}, {LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, NULL}};
		ok = lzma_stream_buffer_encode(f, LZMA_CHECK_CRC32, NULL, elf, elen, z, &used,
					       cap - 4) == LZMA_OK;
	} else if (kind == 1) {
		z_stream s;
		memset(&s, 0, sizeof(s));
		ok = deflateInit2(&s, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK;
		s.next_in = elf;
		s.avail_in = (uInt)elen;
		s.next_out = z;
		s.avail_out = (uInt)cap;
		ok = ok && deflate(&s, Z_FINISH) == Z_STREAM_END;
		used = cap - s.avail_out;
		deflateEnd(&s);
	} else {
		used = ZSTD_compress(z, cap - 4, elf, elen, 19);
		ok = !ZSTD_isError(used);
	}
	if (kind != 1) { /* the build's size trailer (gzip's own ends with it) */
		vmm_put32(z + used, (uint32_t)elen);
		used += 4;
	}
	int r = -1;
	if (ok) {
		size_t n, pl = (0x40 + used + 15) & ~(size_t)15;
		uint8_t *b = fx_bzimage(pl, &n);
		memcpy(b + FX_BZ_SETUP_SIZE + 0x40, z, used);
		vmm_put32(b + 0x248, 0x40);
		vmm_put32(b + 0x24c, (uint32_t)used);
		r = write_file(dir, name, b, n);
		free(b);
	}
	free(z);
	free(elf);
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: mkseeds BZDIR ELFDIR BOOTDIR [REAL_BZIMAGE]\n");
		return 2;
	}
	int r = 0;
	size_t n;
	uint8_t *b = fx_bzimage(0x100, &n);
	r |= write_file(argv[1], "fx-bzimage", b, n);
	free(b);
	r |= compressed_bzimage(argv[1], "fx-bzimage-xz", 0);
	r |= compressed_bzimage(argv[1], "fx-bzimage-gzip", 1);
	r |= compressed_bzimage(argv[1], "fx-bzimage-zstd", 2);
	b = fx_elf(&n);
	r |= write_file(argv[2], "fx-elf", b, n);
	free(b);
	if (argc > 4 && argv[4][0])
		r |= real_bzimage(argv[1], argv[4], 32768);

	/* fuzz_boot: flags, memory size index, initrd size, E820 count, pad; cmdline; rest */
	static const struct {
		const char *name;
		uint8_t hdr[8];
		const char *cmdline;
	} boots[] = {
	    {"bz-initrd", {0x18, 5, 0x00, 0x10, 0, 0, 2, 0}, "console=ttyS0"},
	    {"elf-initrd", {0x19, 5, 0x00, 0x10, 0, 0, 2, 0}, "console=hvc0 quiet"},
	    {"bz-builtin", {0x06, 4, 0, 0, 0, 0, 1, 0}, "rdinit=/init"},
	    {"elf-builtin", {0x03, 6, 0, 0, 0, 0, 1, 0}, ""},
	    {"bz-tight", {0x08, 3, 0x00, 0x00, 0x10, 0, 0, 0}, "x"},
	};
	for (size_t i = 0; i < sizeof(boots) / sizeof(boots[0]); i++) {
		uint8_t buf[256] = {0};
		size_t cl = strlen(boots[i].cmdline);
		memcpy(buf, boots[i].hdr, 8);
		memcpy(buf + 8, boots[i].cmdline, cl + 1);
		size_t len = 8 + cl + 1;
		/* two E820 entries (or busybox bytes) */
		vmm_put64(buf + len, 0);
		vmm_put64(buf + len + 8, 0x9fc00);
		vmm_put32(buf + len + 16, 1);
		vmm_put64(buf + len + 20, 0x100000);
		vmm_put64(buf + len + 28, 0x1000000);
		vmm_put32(buf + len + 36, 1);
		len += 40;
		r |= write_file(argv[3], boots[i].name, buf, len);
	}
	return r ? 1 : 0;
}
