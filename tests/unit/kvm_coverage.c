/* tests/unit/kvm_coverage.c - every KVM ioctl of the installed <linux/kvm.h> is wrapped or listed as raw-tier in kvm.h. */
#include <ember/kvm.h>

#include <ctype.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/test.h"

/* Set by tests/unit/kvm.mk: the source tree. */
#ifndef EMBER_TEST_SRCDIR
#define EMBER_TEST_SRCDIR "."
#endif

/* Appends a whole file to *buf (REQUIREs that it reads). */
static void slurp(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		TEST_FAIL("cannot open %s", path);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		char *p = realloc(*buf, *len + n + 1);
		REQUIRE(p != NULL);
		*buf = p;
		memcpy(*buf + *len, chunk, n);
		*len += n;
		(*buf)[*len] = '\0';
	}
	fclose(f);
}

static bool ident_char(char c)
{
	return isupper((unsigned char)c) || isdigit((unsigned char)c) || c == '_';
}

/* Whether text holds name as a whole identifier. */
static bool has_word(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = strstr(text, name); p; p = strstr(p + 1, name))
		if ((p == text || !ident_char(p[-1])) && !ident_char(p[n]))
			return true;
	return false;
}

/* Whether text lists a "PREFIX*" that name starts with. */
static bool has_prefix_star(const char *text, const char *name)
{
	for (const char *p = strchr(text, '*'); p; p = strchr(p + 1, '*')) {
		const char *s = p;
		while (s > text && ident_char(s[-1]))
			s--;
		size_t n = (size_t)(p - s);
		if (n >= 4 && strncmp(s, "KVM_", 4) == 0 && strncmp(name, s, n) == 0)
			return true;
	}
	return false;
}

TEST(kvm_every_ioctl_wrapped_or_listed)
{
	char *uapi = NULL, *src = NULL, *hdr = NULL;
	size_t ul = 0, sl = 0, hl = 0;
	slurp("/usr/include/linux/kvm.h", &uapi, &ul);
	slurp("/usr/include/x86_64-linux-gnu/asm/kvm.h", &uapi, &ul);
	glob_t g;
	REQUIRE(glob(EMBER_TEST_SRCDIR "/lib/kvm/*.c", 0, NULL, &g) == 0);
	for (size_t i = 0; i < g.gl_pathc; i++)
		slurp(g.gl_pathv[i], &src, &sl);
	globfree(&g);
	slurp(EMBER_TEST_SRCDIR "/include/ember/kvm.h", &hdr, &hl);

	unsigned total = 0, wrapped = 0, listed = 0;
	for (char *line = uapi; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char name[128];
		char rest[64];
		if (sscanf(line, "#define %127[A-Z0-9_] %63s", name, rest) != 2)
			continue;
		if (strncmp(name, "KVM_", 4) != 0 || strncmp(rest, "_IO", 3) != 0)
			continue;
		const char *eol = strchr(line, '\n');
		const char *kvmio = strstr(line, "KVMIO");
		if (!kvmio || (eol && kvmio > eol))
			continue;
		total++;
		if (has_word(src, name))
			wrapped++;
		else if (has_word(hdr, name) || has_prefix_star(hdr, name))
			listed++;
		else
			CHECK_STR(name, "(wrapped in lib/kvm or listed in kvm.h's raw tier)");
	}
	TEST_LOG("%u KVM ioctls: %u wrapped, %u listed as raw tier", total, wrapped, listed);
	CHECK(total > 100);
	CHECK(wrapped > 70);
	/* the checks bite: a name neither wrapped nor listed is found missing */
	CHECK(!has_word(src, "KVM_SET_CPUID"));
	CHECK(has_word(hdr, "KVM_SET_CPUID"));
	CHECK(has_prefix_star(hdr, "KVM_S390_MEM_OP"));
	CHECK(!has_prefix_star(hdr, "KVM_RUN"));
	free(uapi);
	free(src);
	free(hdr);
}
