/* tests/unit/vmm_layering.c - the VMM talks to the hypervisor only through <ember/hv.h>: no KVM binding in vmm/ or devices/, one owner of KVM_SET_TSS_ADDR. */
#include "../lib/test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Set by tests/unit/kvm.mk: the source tree. */
#ifndef EMBER_TEST_SRCDIR
#define EMBER_TEST_SRCDIR "."
#endif

struct scan {
	const char *needle;
	unsigned files; /* .c/.h files read */
	unsigned hits;	/* files containing needle */
	char first[1100];
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	char chunk[4096];
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			char *b = realloc(buf, cap);
			if (!b) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
		}
		memcpy(buf + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (buf)
		buf[len] = 0;
	return buf;
}

static void scan_dir(const char *dir, struct scan *s)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			scan_dir(path, s);
			continue;
		}
		size_t l = strlen(e->d_name);
		if (l < 3 || (strcmp(e->d_name + l - 2, ".c") && strcmp(e->d_name + l - 2, ".h")))
			continue;
		char *text = slurp(path);
		if (!text)
			continue;
		s->files++;
		if (strstr(text, s->needle)) {
			if (!s->hits++)
				snprintf(s->first, sizeof(s->first), "%s", path);
		}
		free(text);
	}
	closedir(d);
}

static struct scan scan(const char *needle, const char *const *dirs)
{
	struct scan s = {.needle = needle};
	for (; *dirs; dirs++) {
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", EMBER_TEST_SRCDIR, *dirs);
		scan_dir(path, &s);
	}
	return s;
}

TEST(vmm_layering_no_kvm_binding_above_the_hv_layer)
{
	static const char *const vmm[] = {"vmm", "devices", NULL};
	static const char *const needles[] = {
	    "<ember/kvm.h>", "<linux/kvm.h>", "backend_handle", "ekvm_", "KVM_SET_", "kvm_run",
	};
	for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++) {
		struct scan s = scan(needles[i], vmm);
		CHECK(s.files > 10); /* the tree was found */
		if (s.hits)
			TEST_FAIL("%s appears in %u file(s) of vmm/ or devices/, e.g. %s",
				  needles[i], s.hits, s.first);
	}
}

TEST(vmm_layering_one_owner_of_the_tss)
{
	/* KVM_SET_TSS_ADDR twice fails with -EEXIST on VMX without
	 * unrestricted guest: only the KVM backend of the layer issues it */
	static const char *const all[] = {"vmm", "devices", "lib/hv", "cli", NULL};
	struct scan s = scan("ekvm_vm_set_tss_addr(", all);
	CHECK_EQ(s.hits, 1);
	CHECK(strstr(s.first, "lib/hv/kvm/kvm.c") != NULL);
	s = scan("ekvm_vm_set_identity_map_addr(", all);
	CHECK_EQ(s.hits, 1);
	CHECK(strstr(s.first, "lib/hv/kvm/kvm.c") != NULL);
}
