/* fuzz/mkseeds.c - writes the fuzz targets' seed inputs: synthetic bzImage and ELF/PVH kernels, boot parameters, a real bzImage's header. */
#include "../tests/unit/vmm_fixtures.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		fx_put32(b + 0x1f4, (uint32_t)((n - setup) / 16));
		r = write_file(dir, "real-bzimage", b, n);
		/* and the header alone, truncated right after the setup code */
		if (!r)
			r = write_file(dir, "real-bzimage-setup", b, setup + 16);
	}
	free(b);
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
		fx_put64(buf + len, 0);
		fx_put64(buf + len + 8, 0x9fc00);
		fx_put32(buf + len + 16, 1);
		fx_put64(buf + len + 20, 0x100000);
		fx_put64(buf + len + 28, 0x1000000);
		fx_put32(buf + len + 36, 1);
		len += 40;
		r |= write_file(argv[3], boots[i].name, buf, len);
	}
	return r ? 1 : 0;
}
