/* fuzz/fuzz_config.c - libFuzzer target: the input is an `ember run` argument list (NUL or newline separated). */
#include "../vmm/config.h"
#include "../vmm/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = 0;
	char *argv[MAX_ARGS];
	int argc = 0;
	char *p = buf;
	while (argc < MAX_ARGS && p < buf + size) {
		argv[argc++] = p;
		size_t n = strcspn(p, "\n");
		p[n] = 0;
		p += n + 1;
	}

	struct ember_config *cfg;
	if (ember_config_new(&cfg) < 0)
		abort();
	struct ember_error err = {0};
	unsigned flags = 0;
	int r = ember_config_parse_args(cfg, argc, argv, &flags, &err);
	if (r < 0 && !err.msg[0]) {
		fprintf(stderr, "fuzz: ember_config_parse_args returned %d with no message\n", r);
		abort();
	}
	/* whatever was accepted formats, copies and frees cleanly */
	char out[256];
	if (ember_config_format(cfg, out, sizeof(out)) < 0)
		abort();
	char val[64];
	(void)ember_config_get(cfg, "disks", val, sizeof(val));
	struct ember_config copy;
	if (vmm_config_copy(&copy, cfg) == 0) {
		if (copy.ndevs != cfg->ndevs)
			abort();
		vmm_config_fini(&copy);
	}
	ember_config_free(cfg);
	/* every argument as a size too */
	for (int i = 0; i < argc; i++) {
		uint64_t v;
		(void)ember_parse_size(argv[i], 1ull << 20, &v);
	}
	free(buf);
	return 0;
}
