/* fuzz/mkseeds.c - writes the fuzzers' seed corpora: the unit tests' synthetic bzImage and ELF. */
#include "../tests/unit/vmm_fixtures.h"

#include <stdio.h>

static int put(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: mkseeds BZIMAGE-DIR ELF-DIR\n");
		return 2;
	}
	char path[4096];
	size_t len;
	uint8_t *b = fx_bzimage(8192, &len);
	snprintf(path, sizeof(path), "%s/synthetic", argv[1]);
	int r = put(path, b, len);
	free(b);
	b = fx_elf(&len);
	snprintf(path, sizeof(path), "%s/synthetic", argv[2]);
	r |= put(path, b, len);
	free(b);
	return r;
}
