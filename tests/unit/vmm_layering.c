/* tests/unit/vmm_layering.c - the layering rules: no KVM binding in vmm/ or devices/, one owner of KVM_SET_TSS_ADDR, directories that include only downwards. */
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

/*
 * The directories of the library and the binary, lowest first. A file may
 * include quoted headers of its own directory and of directories earlier in
 * this list, never of a later one: so no two directories include each other
 * (no cycle), and the bus and guest memory (lib/io) sit below the devices,
 * the loaders (vmm/boot) below the board (vmm/arch/x86). A new directory
 * must be placed here.
 */
static const char *const dir_order[] = {
    "lib/base",	      "lib/kvm",  "lib/hv", "lib/hv/kvm",   "lib/hv/mock", "lib/io", "devices",
    "devices/virtio", "vmm/boot", "vmm",    "vmm/arch/x86", "ctl",	   "cli",
};
#define NDIRS (sizeof(dir_order) / sizeof(dir_order[0]))

static int dir_rank(const char *dir)
{
	for (unsigned i = 0; i < NDIRS; i++)
		if (!strcmp(dir_order[i], dir))
			return (int)i;
	return -1;
}

/* Collapses "a/b/../c" to "a/c" and drops "./" in place. */
static void normalize(char *path, size_t size)
{
	char *parts[64];
	unsigned n = 0;
	char *save = NULL;
	char copy[1100];
	snprintf(copy, sizeof(copy), "%s", path);
	for (char *t = strtok_r(copy, "/", &save); t && n < 64; t = strtok_r(NULL, "/", &save)) {
		if (!strcmp(t, "."))
			continue;
		if (!strcmp(t, "..") && n && strcmp(parts[n - 1], ".."))
			n--;
		else
			parts[n++] = t;
	}
	size_t len = 0;
	path[0] = 0;
	for (unsigned i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(path + len, size - len, "%s%s", i ? "/" : "", parts[i]);
}

struct order_scan {
	unsigned files, includes;
	unsigned bad;
	char first[2200];
};

/* Checks every quoted #include of one file (rel: its path from the source
 * tree, dir: its directory) against dir_order. */
static void check_includes(const char *rel, const char *dir, const char *text, struct order_scan *o)
{
	int from = dir_rank(dir);
	o->files++;
	for (const char *p = text; (p = strstr(p, "#include \"")); p++) {
		const char *q = p + strlen("#include \"");
		const char *end = strchr(q, '"');
		if (!end || end - q > 512)
			continue;
		char target[1100];
		snprintf(target, sizeof(target), "%s/%.*s", dir, (int)(end - q), q);
		normalize(target, sizeof(target));
		char *slash = strrchr(target, '/');
		if (!slash)
			continue;
		*slash = 0;
		int to = dir_rank(target);
		o->includes++;
		if (from < 0 || to < 0 || to > from) {
			if (!o->bad++)
				snprintf(o->first, sizeof(o->first), "%s includes %.*s (%s)", rel,
					 (int)(end - q), q,
					 from < 0 || to < 0 ? "a directory not in dir_order"
							    : "a higher directory");
		}
	}
}

static void scan_order(const char *rel, struct order_scan *o)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", EMBER_TEST_SRCDIR, rel);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char sub[1024], full[1100];
		snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name);
		snprintf(full, sizeof(full), "%s/%s", EMBER_TEST_SRCDIR, sub);
		struct stat st;
		if (stat(full, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			scan_order(sub, o);
			continue;
		}
		size_t l = strlen(e->d_name);
		if (l < 3 || (strcmp(e->d_name + l - 2, ".c") && strcmp(e->d_name + l - 2, ".h")))
			continue;
		char *text = slurp(full);
		if (!text)
			continue;
		check_includes(sub, rel, text, o);
		free(text);
	}
	closedir(d);
}

TEST(vmm_layering_directories_include_only_downwards)
{
	static const char *const roots[] = {"lib", "devices", "vmm", "ctl", "cli"};
	struct order_scan o = {0};
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		scan_order(roots[i], &o);
	CHECK(o.files > 50); /* the tree was found */
	CHECK(o.includes > 100);
	if (o.bad)
		TEST_FAIL("%u include(s) against the directory order, e.g. %s", o.bad, o.first);
}

/* The check itself: an include upwards, sideways into an unknown directory,
 * or from devices/ into vmm/ (the cycle this order removed) is caught. */
TEST(vmm_layering_the_order_check_catches_a_cycle)
{
	struct order_scan o = {0};
	check_includes("devices/device.h", "devices", "#include \"../vmm/bus.h\"\n", &o);
	CHECK_EQ(o.bad, 1u);
	CHECK(strstr(o.first, "higher") != NULL);
	o = (struct order_scan){0};
	check_includes("vmm/boot/linux.c", "vmm/boot", "#include \"../arch/x86/layout.h\"\n", &o);
	CHECK_EQ(o.bad, 1u);
	o = (struct order_scan){0};
	check_includes("vmm/arch/x86/board.c", "vmm/arch/x86",
		       "#include \"../../boot/boot.h\"\n#include \"../../../lib/io/bus.h\"\n"
		       "#include \"layout.h\"\n",
		       &o);
	CHECK_EQ(o.includes, 3u);
	CHECK_EQ(o.bad, 0u);
	o = (struct order_scan){0};
	check_includes("devices/x.c", "devices", "#include \"../rpc/rpc.h\"\n", &o);
	CHECK_EQ(o.bad, 1u);
	CHECK(strstr(o.first, "not in dir_order") != NULL);
}
