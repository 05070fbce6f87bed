/* vmm/snapshot.c - a VM saved whole into a directory (manifest, configuration, states, sparse memory) and restored from it. */
#include "vm.h"

#include "../lib/io/state.h"
#include "config.h"
#include "devstate.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/*
 * The directory
 * -------------
 *   manifest       text, one "key value" per line (see write_manifest), its
 *                  last line "end CRC" the CRC-32 of every byte before it
 *   config         text: the configuration's fields and device options
 *   vm.state       ehv_vm_save_state's blob (PIC, IOAPIC, PIT, clock)
 *   vcpuN.state    ehv_vcpu_save_state's blob of vCPU N
 *   devices.state  vmm_devices_save's stream (lib/io/state.h)
 *   memory         guest RAM in host-mapping order (region 0, then 1), as
 *                  large as RAM, sparse: only the pages this layer holds
 *   pages          a bitmap (bit i: page i of memory is in this layer)
 * Each part's size and CRC-32 are in the manifest; the memory's CRC covers
 * the pages the bitmap names, in order (holes read as zeros).
 */

/* Version 2 (2026-12-06): the vCPU and VM states time their TSC and clock
 * readings (hv.h: "TSCT", "CLCK" version 2), which an Ember reading version
 * 1 only refuses as malformed; version 1 snapshots still restore (untimed). */
#define FORMAT_VERSION	   2
#define FORMAT_VERSION_MIN 1
#define PAGE		   4096u
#define MAX_PARTS	   (4 + EMBER_MAX_CPUS)
#define MAX_DISKS	   VMM_CONFIG_MAX_DEVICES
#define MAX_LAYERS	   16	       /* an incremental's chain of bases */
#define MAX_SMALL_PART	   (64u << 20) /* a state or configuration part */
#define MANIFEST_MAX	   (64u << 10)

struct snap_part {
	char name[24];
	uint64_t size;
	uint32_t crc;
};

struct snap_disk {
	unsigned index;
	char path[EMBER_PATH_MAX];
	uint64_t size;
};

struct snap_manifest {
	unsigned version;
	char id[33];
	char cpu[256];
	uint64_t mem;
	unsigned vcpus;
	bool incremental;
	char base[EMBER_PATH_MAX];
	char base_id[33];
	uint64_t pages; /* pages this layer holds */
	uint32_t mem_crc;
	unsigned nparts;
	struct snap_part parts[MAX_PARTS];
	unsigned ndisks;
	struct snap_disk disks[MAX_DISKS];
};

/* ------------------------------------------------------------ small helpers */

static uint32_t crc_of(const void *p, size_t n)
{
	return (uint32_t)crc32_z(crc32_z(0, Z_NULL, 0), p, n);
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
		if (off >= 0)
			off += w;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = pread(fd, p, len, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EINVAL; /* shorter than the manifest says: truncated */
		p += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

/* Writes a whole small file in dirfd and records it as a part. */
static int put_part(int dirfd, struct snap_manifest *m, const char *name, const void *buf,
		    size_t len, struct ember_error *err)
{
	if (m->nparts >= MAX_PARTS)
		return vmm_errf(err, -E2BIG, "snapshot: too many parts");
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return vmm_errf(err, -errno, "snapshot: cannot create %s: %s", name,
				strerror(errno));
	int r = write_all(fd, buf, len, -1);
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		return vmm_errf(err, r, "snapshot: cannot write %s: %s", name, strerror(-r));
	struct snap_part *p = &m->parts[m->nparts++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->size = len;
	p->crc = crc_of(buf, len);
	return 0;
}

static const struct snap_part *find_part(const struct snap_manifest *m, const char *name)
{
	for (unsigned i = 0; i < m->nparts; i++)
		if (!strcmp(m->parts[i].name, name))
			return &m->parts[i];
	return NULL;
}

/* Reads a small part whole and checks its size and CRC: *buf malloc'd. */
static int get_part(int dirfd, const struct snap_manifest *m, const char *name, void **buf,
		    size_t *len, struct ember_error *err)
{
	*buf = NULL;
	*len = 0;
	const struct snap_part *p = find_part(m, name);
	if (!p)
		return vmm_errf(err, -ENOENT, "snapshot: the manifest lists no part %s", name);
	if (p->size > MAX_SMALL_PART)
		return vmm_errf(err, -EINVAL, "snapshot: %s: %" PRIu64 " bytes is too large", name,
				p->size);
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmm_errf(err, errno == ENOENT ? -ENOENT : -errno, "snapshot: %s: %s", name,
				strerror(errno));
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	if (r == 0 && (uint64_t)st.st_size != p->size)
		r = vmm_errf(err, -EINVAL,
			     "snapshot: %s is %lld bytes, the manifest says %" PRIu64
			     " (truncated or changed)",
			     name, (long long)st.st_size, p->size);
	uint8_t *b = NULL;
	if (r == 0 && !(b = malloc(p->size ? p->size : 1)))
		r = vmm_errf(err, -ENOMEM, "out of memory");
	if (r == 0 && (r = read_all(fd, b, p->size, 0)) < 0)
		vmm_errf(err, r, "snapshot: cannot read %s: %s", name, strerror(-r));
	close(fd);
	if (r == 0 && crc_of(b, p->size) != p->crc)
		r = vmm_errf(err, -EINVAL, "snapshot: %s is corrupt (its CRC-32 does not match)",
			     name);
	if (r < 0) {
		free(b);
		return r;
	}
	*buf = b;
	*len = p->size;
	return 0;
}

static void new_id(char out[33])
{
	uint8_t b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		uint64_t t = vmm_now_ns();
		for (unsigned i = 0; i < 16; i++)
			b[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)(i * 37);
	}
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* ------------------------------------------------------------ manifest */

struct text {
	char *buf;
	size_t len, cap;
	bool error;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
	if (t->error)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0,
				  fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->error = true;
			return;
		}
		if (t->buf && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
		char *nb = realloc(t->buf, cap);
		if (!nb) {
			t->error = true;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
}

static int write_manifest(int dirfd, const struct snap_manifest *m, struct ember_error *err)
{
	struct text t = {0};
	text_add(&t, "ember-snapshot %u\n", m->version);
	text_add(&t, "id %s\n", m->id);
	text_add(&t, "cpu %s\n", m->cpu);
	text_add(&t, "mem %" PRIu64 "\n", m->mem);
	text_add(&t, "vcpus %u\n", m->vcpus);
	text_add(&t, "kind %s\n", m->incremental ? "incremental" : "full");
	if (m->incremental)
		text_add(&t, "base %s %s\n", m->base_id, m->base);
	text_add(&t, "pages %" PRIu64 " %08" PRIx32 "\n", m->pages, m->mem_crc);
	for (unsigned i = 0; i < m->nparts; i++)
		text_add(&t, "part %s %" PRIu64 " %08" PRIx32 "\n", m->parts[i].name,
			 m->parts[i].size, m->parts[i].crc);
	for (unsigned i = 0; i < m->ndisks; i++)
		text_add(&t, "disk %u %" PRIu64 " %s\n", m->disks[i].index, m->disks[i].size,
			 m->disks[i].path);
	if (t.error) {
		free(t.buf);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	text_add(&t, "end %08" PRIx32 "\n", crc_of(t.buf, t.len));
	int fd = openat(dirfd, "manifest", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = fd < 0 ? -errno : write_all(fd, t.buf, t.len, -1);
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(t.buf);
	if (r < 0)
		return vmm_errf(err, r, "snapshot: cannot write the manifest: %s", strerror(-r));
	return 0;
}

/* A hex id of 32 digits. */
static bool is_id(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");
	return n == 32 && !s[n];
}

static int parse_u64(const char *s, uint64_t *out)
{
	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_crc(const char *s, uint32_t *out)
{
	if (strlen(s) != 8 || strspn(s, "0123456789abcdef") != 8)
		return -EINVAL;
	*out = (uint32_t)strtoul(s, NULL, 16);
	return 0;
}

/* Splits "a b rest..." in place: up to n fields, the last taking the rest. */
static unsigned split(char *line, char **f, unsigned n)
{
	unsigned k = 0;
	while (*line && k < n) {
		f[k++] = line;
		if (k == n)
			break;
		char *sp = strchr(line, ' ');
		if (!sp)
			break;
		*sp = 0;
		line = sp + 1;
	}
	return k;
}

static int manifest_line(struct snap_manifest *m, char *line, bool *seen_end)
{
	char *f[4];
	unsigned n = split(line, f, 4);
	uint64_t v;
	if (n == 2 && !strcmp(f[0], "id") && is_id(f[1])) {
		memcpy(m->id, f[1], 33);
	} else if (n >= 2 && !strcmp(f[0], "cpu")) {
		/* the identity may hold spaces: rejoin */
		char *s = f[1];
		for (unsigned i = 2; i < n; i++)
			s[strlen(s)] = ' ';
		if (strlen(s) >= sizeof(m->cpu))
			return -EINVAL;
		snprintf(m->cpu, sizeof(m->cpu), "%s", s);
	} else if (n == 2 && !strcmp(f[0], "mem") && !parse_u64(f[1], &m->mem)) {
	} else if (n == 2 && !strcmp(f[0], "vcpus") && !parse_u64(f[1], &v) && v >= 1 &&
		   v <= EMBER_MAX_CPUS) {
		m->vcpus = (unsigned)v;
	} else if (n == 2 && !strcmp(f[0], "kind") &&
		   (!strcmp(f[1], "full") || !strcmp(f[1], "incremental"))) {
		m->incremental = !strcmp(f[1], "incremental");
	} else if (n == 3 && !strcmp(f[0], "base") && is_id(f[1]) &&
		   strlen(f[2]) < sizeof(m->base)) {
		memcpy(m->base_id, f[1], 33);
		snprintf(m->base, sizeof(m->base), "%s", f[2]);
	} else if (n == 3 && !strcmp(f[0], "pages") && !parse_u64(f[1], &m->pages) &&
		   !parse_crc(f[2], &m->mem_crc)) {
	} else if (n == 4 && !strcmp(f[0], "part") && m->nparts < MAX_PARTS &&
		   strlen(f[1]) < sizeof(m->parts[0].name) &&
		   strspn(f[1], "abcdefghijklmnopqrstuvwxyz0123456789.") == strlen(f[1])) {
		struct snap_part *p = &m->parts[m->nparts];
		if (parse_u64(f[2], &p->size) || parse_crc(f[3], &p->crc) || find_part(m, f[1]))
			return -EINVAL;
		snprintf(p->name, sizeof(p->name), "%s", f[1]);
		m->nparts++;
	} else if (n == 4 && !strcmp(f[0], "disk") && m->ndisks < MAX_DISKS &&
		   !parse_u64(f[1], &v) && v < MAX_DISKS && strlen(f[3]) < EMBER_PATH_MAX) {
		struct snap_disk *d = &m->disks[m->ndisks];
		if (parse_u64(f[2], &d->size))
			return -EINVAL;
		d->index = (unsigned)v;
		snprintf(d->path, sizeof(d->path), "%s", f[3]);
		m->ndisks++;
	} else if (n == 2 && !strcmp(f[0], "end")) {
		*seen_end = true;
	} else {
		return -EINVAL;
	}
	return 0;
}

static int read_manifest(int dirfd, struct snap_manifest *m, struct ember_error *err)
{
	/* the fixed fields only: the part and disk tables (about 260 KiB, room
	 * for every device a configuration can have) are read no further than
	 * their counts, and clearing them would fault in every page of them */
	_Static_assert(offsetof(struct snap_manifest, nparts) <
			   offsetof(struct snap_manifest, parts),
		       "the part count is among the fields cleared");
	memset(m, 0, offsetof(struct snap_manifest, parts));
	m->ndisks = 0;
	int fd = openat(dirfd, "manifest", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmm_errf(err, errno == ENOENT ? -ENOENT : -errno,
				"snapshot: no manifest: %s", strerror(errno));
	char *buf = malloc(MANIFEST_MAX + 1);
	if (!buf) {
		close(fd);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, MANIFEST_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len > MANIFEST_MAX)
			break;
	}
	close(fd);
	int r = 0;
	buf[len < MANIFEST_MAX ? len : MANIFEST_MAX] = 0;
	if (len > MANIFEST_MAX) {
		r = vmm_errf(err, -EINVAL, "snapshot: the manifest is larger than %u KiB",
			     MANIFEST_MAX >> 10);
		goto out;
	}
	/* the first line says the format and its version */
	unsigned version = 0;
	if (sscanf(buf, "ember-snapshot %u\n", &version) != 1) {
		r = vmm_errf(err, -EINVAL, "snapshot: not an Ember snapshot manifest");
		goto out;
	}
	if (version < FORMAT_VERSION_MIN || version > FORMAT_VERSION) {
		r = vmm_errf(err, -EPROTO,
			     "snapshot: format version %u, this Ember reads versions %u to %u",
			     version, FORMAT_VERSION_MIN, FORMAT_VERSION);
		goto out;
	}
	/* the last line is "end CRC" over everything before it */
	char *end = len >= 13 && buf[len - 1] == '\n' ? buf + len - 13 : NULL;
	uint32_t want;
	if (!end || strncmp(end, "end ", 4) || (end != buf && end[-1] != '\n')) {
		r = vmm_errf(err, -EINVAL, "snapshot: the manifest is truncated (no end line)");
		goto out;
	}
	end[12] = 0;
	if (parse_crc(end + 4, &want) || crc_of(buf, (size_t)(end - buf)) != want) {
		r = vmm_errf(err, -EINVAL, "snapshot: the manifest is corrupt (CRC-32 mismatch)");
		goto out;
	}
	end[12] = '\n';
	m->version = version;
	bool seen_end = false;
	char *line = strchr(buf, '\n') + 1;
	while (*line && !seen_end) {
		char *nl = strchr(line, '\n');
		*nl = 0;
		if (manifest_line(m, line, &seen_end) < 0) {
			r = vmm_errf(err, -EINVAL, "snapshot: bad manifest line '%.80s'", line);
			goto out;
		}
		line = nl + 1;
	}
	if (!m->id[0] || !m->mem || !m->vcpus || (m->incremental && !m->base_id[0]))
		r = vmm_errf(err, -EINVAL,
			     "snapshot: the manifest lacks its id, mem, vcpus or base");
out:
	free(buf);
	return r;
}

/* ------------------------------------------------------------ configuration */

static int config_text(const struct ember_config *c, struct text *t, struct ember_error *err)
{
	const char *const strs[][2] = {
	    {"kernel", c->kernel},
	    {"initrd", c->initrd},
	    {"cmdline", c->cmdline},
	    {"busybox", c->busybox},
	};
	for (unsigned i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (strchr(strs[i][1], '\n'))
			return vmm_errf(err, -EINVAL, "snapshot: the %s holds a newline",
					strs[i][0]);
		text_add(t, "%s %s\n", strs[i][0], strs[i][1]);
	}
	text_add(t, "mem %" PRIu64 "\ncpus %u\nmem-backing %d\nhugepages %d\n", c->mem_size,
		 c->cpus, (int)c->mem_backing, c->hugepages);
	text_add(t, "builtin-initrd %d\ninteractive %d\nroot %d\nconsole-virtio %d\n",
		 c->builtin_initrd, c->interactive > 0, c->root_fs, c->console_virtio);
	text_add(t, "console-escape %d\nlog-level %d\nboot %d\nboot-path %d\nkernel-format %d\n",
		 c->console_escape, (int)c->log_level, (int)c->boot, (int)c->boot_path,
		 (int)c->kernel_format);
	for (unsigned i = 0; i < c->ndevs; i++) {
		if (strchr(c->devs[i].spec, '\n'))
			return vmm_errf(err, -EINVAL, "snapshot: --%s holds a newline",
					c->devs[i].type->name);
		text_add(t, "device %s %s\n", c->devs[i].type->name, c->devs[i].spec);
	}
	return t->error ? vmm_errf(err, -ENOMEM, "out of memory") : 0;
}

static int set_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);
	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(dst, v, n + 1);
	return 0;
}

static int config_int(const char *v, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return -EINVAL;
	*out = (int)x;
	return 0;
}

/* One "key value" line of the config part into c. */
static int config_line(struct ember_config *c, char *line, struct ember_error *err)
{
	char *f[2] = {line, NULL};
	unsigned n = split(line, f, 2);
	const char *k = f[0], *v = n == 2 ? f[1] : "";
	int x = 0, r = -EINVAL;
	uint64_t u;
	if (!strcmp(k, "device")) {
		char *g[2];
		if (n == 2 && split(f[1], g, 2) == 2) {
			const struct vmm_devopt_type *type = vmm_devopt_type_find(g[0]);
			if (type)
				return vmm_config_add_device(c, type, g[1], err);
		}
		return vmm_errf(err, -EINVAL, "snapshot: config: a bad device line");
	}
	if (!strcmp(k, "kernel"))
		r = set_str(c->kernel, sizeof(c->kernel), v);
	else if (!strcmp(k, "initrd"))
		r = set_str(c->initrd, sizeof(c->initrd), v);
	else if (!strcmp(k, "cmdline"))
		r = set_str(c->cmdline, sizeof(c->cmdline), v);
	else if (!strcmp(k, "busybox"))
		r = set_str(c->busybox, sizeof(c->busybox), v);
	else if (!strcmp(k, "mem") && !parse_u64(v, &u))
		c->mem_size = u, r = 0;
	else if (!strcmp(k, "cpus") && !config_int(v, 1, EMBER_MAX_CPUS, &x))
		c->cpus = (unsigned)x, r = 0;
	else if (!strcmp(k, "mem-backing") && !config_int(v, 0, EMBER_MEM_MEMFD, &x))
		c->mem_backing = (enum ember_mem_backing)x, r = 0;
	else if (!config_int(v, 0, 1, &x) && !strcmp(k, "hugepages"))
		c->hugepages = x, r = 0;
	else if (!config_int(v, 0, 1, &x) && !strcmp(k, "builtin-initrd"))
		c->builtin_initrd = x, r = 0;
	else if (!config_int(v, 0, 1, &x) && !strcmp(k, "interactive"))
		c->interactive = x, r = 0;
	else if (!config_int(v, 0, 1, &x) && !strcmp(k, "root"))
		c->root_fs = x, r = 0;
	else if (!config_int(v, 0, 1, &x) && !strcmp(k, "console-virtio"))
		c->console_virtio = x, r = 0;
	else if (!config_int(v, 0, 1, &x) && !strcmp(k, "console-escape"))
		c->console_escape = x, r = 0;
	else if (!strcmp(k, "log-level") && !config_int(v, 0, EMBER_LOG_DEBUG, &x))
		r = 0; /* the restorer's level counts, not the saver's */
	else if (!strcmp(k, "boot") && !config_int(v, 0, 2, &x))
		c->boot = (enum ember_boot_path)x, r = 0;
	else if (!strcmp(k, "boot-path") && !config_int(v, 0, 2, &x))
		c->boot_path = (enum ember_boot_path)x, r = 0;
	else if (!strcmp(k, "kernel-format") && !config_int(v, 0, 16, &x))
		c->kernel_format = (enum ember_kernel_format)x, r = 0;
	if (r < 0)
		return vmm_errf(err, r, "snapshot: config: bad line for '%.40s'", k);
	return 0;
}

static int config_parse(struct ember_config *c, char *buf, size_t len, struct ember_error *err)
{
	if (memchr(buf, 0, len) || (len && buf[len - 1] != '\n'))
		return vmm_errf(err, -EINVAL, "snapshot: config: not text lines");
	for (char *line = buf; line < buf + len;) {
		char *nl = memchr(line, '\n', (size_t)(buf + len - line));
		*nl = 0;
		int r = config_line(c, line, err);
		if (r < 0)
			return r;
		line = nl + 1;
	}
	return 0;
}

/* ------------------------------------------------------------ memory */

/* The host-mapping page index of each RAM page, region by region. */
static uint64_t mem_pages(const struct vmm_mem *m)
{
	return m->size / PAGE;
}

static void bit_set(uint8_t *bm, uint64_t i)
{
	bm[i / 8] |= (uint8_t)(1u << (i % 8));
}

static bool bit_get(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] >> (i % 8) & 1;
}

static bool page_zero(const uint8_t *p)
{
	static const uint8_t zero[64];
	for (unsigned i = 0; i < PAGE; i += 64)
		if (memcmp(p + i, zero, 64))
			return false;
	return true;
}

/* Sets in bm the pages of the first size bytes of fd that hold data
 * (SEEK_DATA/SEEK_HOLE). 0 or -errno. */
static int file_data_pages(int fd, uint64_t size, uint8_t *bm)
{
	uint64_t n = size / PAGE;
	off_t off = 0;
	while ((uint64_t)off < size) {
		off_t d = lseek(fd, off, SEEK_DATA);
		if (d < 0)
			return errno == ENXIO ? 0 : -errno; /* ENXIO: no data past off */
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			h = (off_t)size;
		for (uint64_t p = (uint64_t)d / PAGE; p < n && p * PAGE < (uint64_t)h; p++)
			bit_set(bm, p);
		off = h;
	}
	return 0;
}

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

/*
 * Sets in bm the pages of guest memory that may hold data: for anonymous
 * memory the pages /proc/self/pagemap shows present or swapped (never
 * touched: neither), for a memfd those SEEK_DATA finds, and for memory
 * mapped from a snapshot also the data of that file.
 */
static int touched_pages(struct ember_vm *vm, uint8_t *bm, struct ember_error *err)
{
	const struct vmm_mem *m = &vm->mem;
	uint64_t n = mem_pages(m);
	if (m->fd >= 0) {
		int r = file_data_pages(m->fd, m->size, bm);
		return r < 0 ? vmm_errf(err, r, "snapshot: SEEK_DATA: %s", strerror(-r)) : 0;
	}
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == EACCES || errno == EPERM)) {
		/* no /proc (a jail: cli/jail.c mounts none): every page may hold
		 * data; the writer leaves the all-zero ones out, so the file is as
		 * sparse, only slower to write (untouched pages read as the zero
		 * page: no memory taken) */
		vmm_logf(&vm->cfg, EMBER_LOG_DEBUG,
			 "snapshot: no /proc/self/pagemap (%s): every page of guest memory read",
			 strerror(errno));
		for (uint64_t p = 0; p < n; p++)
			bit_set(bm, p);
		return 0;
	}
	if (fd < 0)
		return vmm_errf(err, -errno, "snapshot: /proc/self/pagemap: %s", strerror(errno));
	uint64_t ent[4096];
	uint64_t first = (uint64_t)(uintptr_t)m->host / PAGE;
	int r = 0;
	for (uint64_t p = 0; p < n && r == 0;) {
		uint64_t k = n - p < 4096 ? n - p : 4096;
		r = read_all(fd, ent, (size_t)k * 8, (off_t)((first + p) * 8));
		for (uint64_t i = 0; r == 0 && i < k; i++)
			if (ent[i] & (PM_PRESENT | PM_SWAPPED))
				bit_set(bm, p + i);
		p += k;
	}
	close(fd);
	if (r < 0)
		return vmm_errf(err, r, "snapshot: reading /proc/self/pagemap: %s", strerror(-r));
	if (m->file_private && vm->restore_mem_fd >= 0) {
		/* pages never touched since the restore still come from its file */
		r = file_data_pages(vm->restore_mem_fd, m->size, bm);
		if (r < 0)
			return vmm_errf(err, r, "snapshot: SEEK_DATA: %s", strerror(-r));
	}
	return 0;
}

/* A page's fingerprint: its CRC-32. */
static uint32_t page_sum(const uint8_t *p)
{
	return (uint32_t)crc32_z(crc32_z(0, Z_NULL, 0), p, PAGE);
}

static uint32_t zero_sum(void)
{
	static const uint8_t zero[PAGE];
	return page_sum(zero);
}

/*
 * Which pages changed since the last snapshot, into incl: those KVM's dirty
 * log names (the guest's writes), and those whose fingerprint differs from
 * the one kept at the last snapshot (the VMM's own writes, which no dirty
 * log sees: virtio's used rings and the buffers a device fills; a page the
 * balloon gave back). Updates the fingerprints. touched: touched_pages.
 */
static void changed_pages(struct ember_vm *vm, const uint8_t *touched, uint8_t *incl)
{
	uint64_t n = mem_pages(&vm->mem);
	uint32_t zs = zero_sum();
	for (uint64_t p = 0; p < n; p++) {
		uint32_t cur = bit_get(touched, p) ? page_sum(vm->mem.host + p * PAGE) : zs;
		if (cur != vm->page_sums[p])
			bit_set(incl, p);
		vm->page_sums[p] = cur;
	}
}

/* Adds to bm the pages KVM's dirty log reports for each RAM slot (and
 * clears the log). */
static int dirty_pages(struct ember_vm *vm, uint8_t *bm, struct ember_error *err)
{
	const struct vmm_mem *m = &vm->mem;
	for (unsigned s = 0; s < m->nregions; s++) {
		const struct vmm_mem_region *reg = &m->regions[s];
		uint64_t np = reg->size / PAGE;
		size_t bytes = (size_t)((np + 63) / 64 * 8);
		uint64_t *log = calloc(1, bytes);
		if (!log)
			return vmm_errf(err, -ENOMEM, "out of memory");
		int r = ehv_vm_get_dirty_log(vm->hv, s, log, bytes);
		if (r < 0) {
			free(log);
			return vmm_errf(err, r, "snapshot: the dirty log of slot %u: %s", s,
					strerror(-r));
		}
		uint64_t base = reg->offset / PAGE;
		for (uint64_t i = 0; i < np; i++)
			if (log[i / 64] >> (i % 64) & 1)
				bit_set(bm, base + i);
		free(log);
	}
	return 0;
}

/*
 * After a snapshot: tracks the guest's writes for the next incremental with
 * KVM's dirty log on every RAM slot, turned on at the first snapshot and
 * cleared (read) at a full one (an incremental read it already). The
 * fingerprints (vm->page_sums) are the snapshot's own work.
 */
static int track_writes(struct ember_vm *vm, bool clear, struct ember_error *err)
{
	const struct vmm_mem *m = &vm->mem;
	uint64_t n = mem_pages(m);
	if (!vm->dirty_log) {
		for (unsigned s = 0; s < m->nregions; s++) {
			const struct vmm_mem_region *reg = &m->regions[s];
			int r = ehv_vm_set_memory(vm->hv, s, reg->gpa, reg->size,
						  m->host + reg->offset, EHV_MEM_LOG_DIRTY);
			if (r < 0)
				return vmm_errf(err, r, "snapshot: cannot log dirty pages: %s",
						strerror(-r));
		}
		vm->dirty_log = true;
		return 0;
	}
	uint8_t *bm = calloc(1, (size_t)(n + 7) / 8);
	if (!bm)
		return vmm_errf(err, -ENOMEM, "out of memory");
	int r = clear ? dirty_pages(vm, bm, err) : 0; /* reads and clears */
	free(bm);
	return r;
}

/*
 * Writes the pages of bm into the sparse memory file: each page, unless
 * zero_holes and it is all zero (then its bit is cleared and it stays a
 * hole). Runs of pages go out in one pwrite. Counts and checksums what
 * the layer holds.
 */
static int write_memory(int dirfd, struct ember_vm *vm, uint8_t *bm, bool zero_holes,
			uint32_t *sums, struct snap_manifest *man, struct ember_error *err)
{
	const struct vmm_mem *m = &vm->mem;
	uint64_t n = mem_pages(m);
	int fd = openat(dirfd, "memory", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return vmm_errf(err, -errno, "snapshot: cannot create memory: %s", strerror(errno));
	int r = ftruncate(fd, (off_t)m->size) < 0 ? -errno : 0;
	uLong crc = crc32_z(0, Z_NULL, 0);
	uint64_t pages = 0;
	for (uint64_t p = 0; p < n && r == 0;) {
		if (!bit_get(bm, p) || (zero_holes && page_zero(m->host + p * PAGE))) {
			bm[p / 8] &= (uint8_t) ~(1u << (p % 8));
			p++;
			continue;
		}
		/* a run of pages to write (an incremental's zero page: a hole,
		 * but in the layer); each page's CRC is its fingerprint too */
		uint64_t q = p;
		bool hole = !zero_holes && page_zero(m->host + p * PAGE);
		do {
			uint32_t pc = page_sum(m->host + q * PAGE);
			if (sums)
				sums[q] = pc;
			crc = crc32_combine(crc, pc, PAGE);
			q++;
		} while (!hole && q < n && bit_get(bm, q) && !page_zero(m->host + q * PAGE));
		pages += q - p;
		if (!hole)
			r = write_all(fd, m->host + p * PAGE, (size_t)((q - p) * PAGE),
				      (off_t)(p * PAGE));
		p = q;
	}
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		return vmm_errf(err, r, "snapshot: cannot write memory: %s", strerror(-r));
	man->pages = pages;
	man->mem_crc = (uint32_t)crc;
	if (man->nparts >= MAX_PARTS)
		return vmm_errf(err, -E2BIG, "snapshot: too many parts");
	struct snap_part *part = &man->parts[man->nparts++];
	snprintf(part->name, sizeof(part->name), "memory");
	part->size = m->size;
	part->crc = (uint32_t)crc;
	return put_part(dirfd, man, "pages", bm, (size_t)(n + 7) / 8, err);
}

/* ------------------------------------------------------------ taking */

struct vcpu_blob {
	void *buf;
	size_t len;
	int r;
};

static int save_vcpu(struct ehv_vcpu *vcpu, void *arg)
{
	struct vcpu_blob *b = arg;
	b->r = ehv_vcpu_save_state(vcpu, &b->buf, &b->len);
	return b->r;
}

static int save_parts(struct ember_vm *vm, int dirfd, struct snap_manifest *man,
		      struct ember_error *err)
{
	struct text t = {0};
	int r = config_text(&vm->cfg, &t, err);
	if (r == 0)
		r = put_part(dirfd, man, "config", t.buf, t.len, err);
	free(t.buf);
	if (r < 0)
		return r;

	void *buf = NULL;
	size_t len = 0;
	r = ehv_vm_save_state(vm->hv, &buf, &len);
	if (r < 0)
		return vmm_errf(err, r, "snapshot: the VM's state (irqchip, PIT, clock): %s (%s)",
				strerror(-r), ehv_vm_state_detail(vm->hv));
	r = put_part(dirfd, man, "vm.state", buf, len, err);
	free(buf);
	if (r < 0)
		return r;

	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu_blob b = {0};
		int c = ehv_runner_call(vm->runner, (int)i, save_vcpu, &b);
		if (c < 0 || b.r < 0) {
			free(b.buf);
			r = c < 0 ? c : b.r;
			return vmm_errf(err, r, "snapshot: vCPU %u's state: %s (%s)", i,
					strerror(-r), ehv_vcpu_state_detail(vm->vcpus[i]));
		}
		char name[24];
		snprintf(name, sizeof(name), "vcpu%u.state", i);
		r = put_part(dirfd, man, name, b.buf, b.len, err);
		free(b.buf);
		if (r < 0)
			return r;
	}

	struct vmm_state_w w;
	vmm_sw_init(&w);
	r = vmm_devices_save(vm, &w);
	if (r == 0)
		r = vmm_sw_take(&w, &buf, &len);
	vmm_sw_free(&w);
	if (r < 0)
		return vmm_errf(err, r, "snapshot: the devices' state: %s", strerror(-r));
	r = put_part(dirfd, man, "devices.state", buf, len, err);
	free(buf);
	return r;
}

static int record_disks(struct ember_vm *vm, struct snap_manifest *man, struct ember_error *err)
{
	const struct ember_config *c = &vm->cfg;
	for (unsigned i = 0; i < c->ndevs && man->ndisks < MAX_DISKS; i++) {
		const struct vmm_devopt *d = &c->devs[i];
		const char *path = vmm_devopt_get(d, "path");
		if (strcmp(d->type->name, "disk") || !path)
			continue;
		struct stat st;
		if (stat(path, &st) < 0)
			return vmm_errf(err, -errno, "snapshot: disk %u (%s): %s", d->index, path,
					strerror(errno));
		if (strchr(path, '\n'))
			return vmm_errf(err, -EINVAL, "snapshot: disk %u's path holds a newline",
					d->index);
		struct snap_disk *sd = &man->disks[man->ndisks++];
		sd->index = d->index;
		sd->size = (uint64_t)st.st_size;
		snprintf(sd->path, sizeof(sd->path), "%s", path);
	}
	return 0;
}

/* Removes a temporary snapshot directory (its plain files, then itself). */
static void remove_dir(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(path);
}

/* The manifest of the snapshot at dir (for an incremental's base). */
static int base_manifest(const char *dir, struct snap_manifest *m, struct ember_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vmm_errf(err, -errno, "snapshot: base %s: %s", dir, strerror(errno));
	int r = read_manifest(fd, m, err);
	close(fd);
	return r;
}

static int take(struct ember_vm *vm, const char *dir, const char *tmp, bool incremental,
		const char *base_dir, struct ember_error *err)
{
	struct snap_manifest *man = calloc(1, sizeof(*man));
	size_t bm_bytes = (size_t)(mem_pages(&vm->mem) + 7) / 8;
	uint8_t *bm = calloc(1, bm_bytes), *touched = calloc(1, bm_bytes);
	int dirfd = -1, r = 0;
	if (!man || !bm || !touched) {
		r = vmm_errf(err, -ENOMEM, "out of memory");
		goto out;
	}
	man->version = FORMAT_VERSION;
	new_id(man->id);
	man->mem = vm->mem.size;
	man->vcpus = vm->ncpus;
	r = ehv_hypervisor_cpu_identity(vm->hyp, man->cpu, sizeof(man->cpu));
	if (r < 0) {
		r = vmm_errf(err, r, "snapshot: the host CPU's identity: %s", strerror(-r));
		goto out;
	}
	if (strchr(man->cpu, '\n'))
		man->cpu[strcspn(man->cpu, "\n")] = 0;
	if (incremental) {
		struct snap_manifest *base = calloc(1, sizeof(*base));
		if (!base) {
			r = vmm_errf(err, -ENOMEM, "out of memory");
			goto out;
		}
		r = base_manifest(base_dir, base, err);
		if (r == 0 && strcmp(base->id, vm->snap_id))
			r = vmm_errf(err, -EINVAL,
				     "snapshot: %s is not this VM's last snapshot: an incremental "
				     "needs it as its base",
				     base_dir);
		free(base);
		if (r == 0 && (!vm->dirty_log || !vm->page_sums))
			r = vmm_errf(err, -EINVAL, "snapshot: no write tracking since the base");
		if (r < 0)
			goto out;
		man->incremental = true;
		memcpy(man->base_id, vm->snap_id, 33);
		/* the base as an absolute path, so the increment may move */
		if (!realpath(base_dir, man->base)) {
			r = vmm_errf(err, -errno, "snapshot: base %s: %s", base_dir,
				     strerror(errno));
			goto out;
		}
	}
	if (mkdir(tmp, 0700) < 0) {
		r = vmm_errf(err, -errno, "snapshot: cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		r = vmm_errf(err, -errno, "snapshot: %s: %s", tmp, strerror(errno));
		goto out;
	}
	r = record_disks(vm, man, err);
	if (r == 0)
		r = save_parts(vm, dirfd, man, err);
	if (r == 0)
		r = touched_pages(vm, touched, err);
	if (r == 0 && incremental) {
		r = dirty_pages(vm, bm, err); /* the guest's writes; clears the log */
		if (r == 0)
			changed_pages(vm, touched, bm); /* and the VMM's */
	} else if (r == 0) {
		memcpy(bm, touched, bm_bytes);
		uint64_t n = mem_pages(&vm->mem);
		if (!vm->page_sums && !(vm->page_sums = malloc((size_t)n * sizeof(uint32_t))))
			r = vmm_errf(err, -ENOMEM, "out of memory");
		uint32_t zs = zero_sum();
		for (uint64_t p = 0; r == 0 && p < n; p++)
			vm->page_sums[p] = zs; /* write_memory sets the written pages' */
	}
	if (r == 0)
		r = write_memory(dirfd, vm, bm, !incremental, incremental ? NULL : vm->page_sums,
				 man, err);
	if (r == 0)
		r = write_manifest(dirfd, man, err);
	if (r == 0 && fsync(dirfd) < 0)
		r = vmm_errf(err, -errno, "snapshot: fsync: %s", strerror(errno));
	if (r == 0 && rename(tmp, dir) < 0)
		r = vmm_errf(err, -errno, "snapshot: cannot rename %s to %s: %s", tmp, dir,
			     strerror(errno));
	if (r == 0)
		r = track_writes(vm, !incremental, err);
	if (r == 0)
		memcpy(vm->snap_id, man->id, 33);
out:
	if (dirfd >= 0)
		close(dirfd);
	if (r < 0)
		remove_dir(tmp);
	free(touched);
	free(bm);
	free(man);
	return r;
}

int ember_vm_snapshot(struct ember_vm *vm, const char *dir, const struct ember_snapshot_opts *opts,
		      struct ember_error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = 0;
	}
	if (!vm || !dir || !*dir)
		return vmm_errf(err, -EINVAL, "snapshot: no VM or no directory");
	unsigned flags = opts ? opts->flags : 0;
	if (flags & ~(EMBER_SNAPSHOT_RESUME | EMBER_SNAPSHOT_INCREMENTAL))
		return vmm_errf(err, -EINVAL, "snapshot: unknown flags %#x", flags);
	bool incremental = flags & EMBER_SNAPSHOT_INCREMENTAL;
	if (incremental && (!opts->base_dir || !*opts->base_dir))
		return vmm_errf(err, -EINVAL, "snapshot: an incremental needs its base directory");
	struct stat st;
	if (lstat(dir, &st) == 0)
		return vmm_errf(err, -EEXIST, "snapshot: %s exists", dir);
	size_t n = strlen(dir);
	if (n + 16 >= PATH_MAX)
		return vmm_errf(err, -ENAMETOOLONG, "snapshot: %s: the name is too long", dir);
	char tmp[PATH_MAX];
	char id[33];
	new_id(id);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	snprintf(tmp, sizeof(tmp), "%.*s.tmp-%.8s", (int)n, dir, id);

	int st0 = atomic_load(&vm->state);
	if (st0 == EMBER_VM_CREATED)
		return vmm_errf(err, -EINVAL, "snapshot: the VM has not started");
	bool was_running = st0 == EMBER_VM_RUNNING;
	/* no swap command meanwhile (swap_lock before life_lock, as swap takes them) */
	pthread_mutex_lock(&vm->swap_lock);
	int r = ember_vm_pause(vm);
	if (r < 0) {
		pthread_mutex_unlock(&vm->swap_lock);
		return vmm_errf(err, r, "snapshot: cannot pause the VM: %s", strerror(-r));
	}
	/* pages swapped out (or not yet read by a uffd restore) are put back first */
	r = vmm_swap_populate_all(vm, err);
	uint64_t t0 = vmm_now_ns();
	/* no resume (another thread's, a control client's) while saving */
	pthread_mutex_lock(&vm->life_lock);
	if (atomic_load(&vm->state) != EMBER_VM_PAUSED || atomic_load(&vm->stop_reason) >= 0)
		r = vmm_errf(err, -ESRCH, "snapshot: the VM stopped");
	else if (r == 0)
		r = take(vm, dir, tmp, incremental, incremental ? opts->base_dir : NULL, err);
	pthread_mutex_unlock(&vm->life_lock);
	pthread_mutex_unlock(&vm->swap_lock);
	vmm_logf(&vm->cfg, EMBER_LOG_DEBUG, "snapshot %s %s in %.1f ms", dir,
		 r == 0 ? "taken" : "failed", (double)(vmm_now_ns() - t0) / 1e6);
	/* a failed snapshot leaves the VM as it found it */
	if (was_running && (r < 0 || (flags & EMBER_SNAPSHOT_RESUME))) {
		int rr = ember_vm_resume(vm);
		if (r == 0 && rr < 0)
			r = vmm_errf(err, rr, "snapshot: taken, but the VM did not resume: %s",
				     strerror(-rr));
	}
	return r;
}

/* ------------------------------------------------------------ restoring */

/* The manifest of dir and each of its bases, newest first; every small
 * part and, when asked, every memory page verified. */
struct layer {
	int dirfd;
	int memfd;
	uint8_t *bm; /* its pages bitmap */
	/* every small part, read and checked once by open_layer and kept for
	 * the restore's later steps (layer_part), by the manifest's index */
	void *part[MAX_PARTS];
	size_t part_len[MAX_PARTS];
	struct snap_manifest man;
};

/* A small part open_layer read and checked: the layer's buffer (freed with
 * it; the caller may change its bytes). */
static int layer_part(const struct layer *l, const char *name, void **buf, size_t *len,
		      struct ember_error *err)
{
	const struct snap_part *p = find_part(&l->man, name);
	if (!p || !l->part[p - l->man.parts])
		return vmm_errf(err, -ENOENT, "snapshot: the manifest lists no part %s", name);
	*buf = l->part[p - l->man.parts];
	*len = l->part_len[p - l->man.parts];
	return 0;
}

static int verify_memory(struct layer *l, uint64_t npages, struct ember_error *err)
{
	uint8_t *page = malloc(PAGE * 64);
	if (!page)
		return vmm_errf(err, -ENOMEM, "out of memory");
	uLong crc = crc32_z(0, Z_NULL, 0);
	uint64_t count = 0;
	int r = 0;
	for (uint64_t p = 0; p < npages && r == 0;) {
		if (!bit_get(l->bm, p)) {
			p++;
			continue;
		}
		uint64_t q = p;
		while (q < npages && q - p < 64 && bit_get(l->bm, q))
			q++;
		r = read_all(l->memfd, page, (size_t)((q - p) * PAGE), (off_t)(p * PAGE));
		if (r == 0)
			crc = crc32_z(crc, page, (size_t)((q - p) * PAGE));
		count += q - p;
		p = q;
	}
	free(page);
	if (r < 0)
		return vmm_errf(err, r, "snapshot: reading memory: %s", strerror(-r));
	if (count != l->man.pages || (uint32_t)crc != l->man.mem_crc)
		return vmm_errf(err, -EINVAL,
				"snapshot: memory is corrupt (its CRC-32 does not match)");
	return 0;
}

static int open_layer(const char *dir, struct layer *l, unsigned flags, struct ember_error *err)
{
	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	l->memfd = -1;
	if (l->dirfd < 0)
		return vmm_errf(err, errno == ENOENT ? -ENOENT : -errno,
				"no snapshot directory: %s", strerror(errno)); /* after "dir: " */
	int r = read_manifest(l->dirfd, &l->man, err);
	if (r < 0)
		return r;
	/* every small part, read and checked once, kept */
	for (unsigned i = 0; i < l->man.nparts; i++) {
		if (!strcmp(l->man.parts[i].name, "memory"))
			continue;
		r = get_part(l->dirfd, &l->man, l->man.parts[i].name, &l->part[i], &l->part_len[i],
			     err);
		if (r < 0)
			return r;
		if (!strcmp(l->man.parts[i].name, "pages")) {
			if (l->part_len[i] != (l->man.mem / PAGE + 7) / 8)
				return vmm_errf(err, -EINVAL, "snapshot: pages: wrong size");
			l->bm = l->part[i];
		}
	}
	const struct snap_part *mp = find_part(&l->man, "memory");
	if (!mp || !l->bm || mp->size != l->man.mem)
		return vmm_errf(err, -EINVAL, "snapshot: the manifest lacks its memory or pages");
	l->memfd = openat(l->dirfd, "memory", O_RDONLY | O_CLOEXEC);
	if (l->memfd < 0)
		return vmm_errf(err, -errno, "snapshot: memory: %s", strerror(errno));
	struct stat st;
	if (fstat(l->memfd, &st) < 0 || (uint64_t)st.st_size != l->man.mem)
		return vmm_errf(err, -EINVAL,
				"snapshot: memory is %lld bytes, the guest has %" PRIu64
				" (truncated)",
				(long long)st.st_size, l->man.mem);
	if (flags & EMBER_RESTORE_VERIFY_MEMORY)
		return verify_memory(l, l->man.mem / PAGE, err);
	return 0;
}

/* One layer at a time: a layer is about 280 KiB (its manifest's disk paths),
 * and an array of MAX_LAYERS of them would be a 4 MiB allocation that
 * transparent huge pages (Debian's default: always) fill 2 MiB at a time as
 * soon as its first bytes are written. */
static struct layer *new_layer(void)
{
	struct layer *l = calloc(1, sizeof(*l));
	if (l)
		l->dirfd = l->memfd = -1;
	return l;
}

static void close_layer(struct layer *l)
{
	if (!l)
		return;
	if (l->dirfd >= 0)
		close(l->dirfd);
	if (l->memfd >= 0)
		close(l->memfd);
	for (unsigned i = 0; i < MAX_PARTS; i++)
		free(l->part[i]); /* the pages bitmap (bm) among them */
	free(l);
}

static int check_host(const struct snap_manifest *m, struct ehv_hypervisor *hyp,
		      struct ember_error *err)
{
	char cpu[256];
	int r = ehv_hypervisor_cpu_identity(hyp, cpu, sizeof(cpu));
	if (r < 0)
		return vmm_errf(err, r, "snapshot: the host CPU's identity: %s", strerror(-r));
	cpu[strcspn(cpu, "\n")] = 0;
	if (strcmp(cpu, m->cpu))
		return vmm_errf(err, -ENOTSUP,
				"snapshot: taken on CPU '%s', this host's is '%s' (its features "
				"may be missing here)",
				m->cpu, cpu);
	return 0;
}

/* Every disk the snapshot recorded has its recorded size, at its path in
 * cfg (the saved one, or a clone's own copy given at restore). */
static int check_disks(const struct snap_manifest *m, const struct ember_config *cfg,
		       struct ember_error *err)
{
	const struct vmm_devopt_type *disk = vmm_devopt_type_find("disk");
	for (unsigned i = 0; i < m->ndisks; i++) {
		const struct vmm_devopt *d = vmm_config_device(cfg, disk, m->disks[i].index, NULL);
		const char *path =
		    d && vmm_devopt_get(d, "path") ? vmm_devopt_get(d, "path") : m->disks[i].path;
		struct stat st;
		if (stat(path, &st) < 0)
			return vmm_errf(err, -errno, "snapshot: disk %u (%s): %s",
					m->disks[i].index, path, strerror(errno));
		if ((uint64_t)st.st_size != m->disks[i].size)
			return vmm_errf(err, -ESTALE,
					"snapshot: disk %u (%s) is %lld bytes, it was %" PRIu64
					" when the snapshot was taken",
					m->disks[i].index, path, (long long)st.st_size,
					m->disks[i].size);
	}
	return 0;
}

/* Copies the pages of layer l into guest memory (an incremental over its
 * base, or every layer for a memfd). */
static int copy_layer(struct ember_vm *vm, const struct layer *l, struct ember_error *err)
{
	uint64_t n = mem_pages(&vm->mem);
	for (uint64_t p = 0; p < n;) {
		if (!bit_get(l->bm, p)) {
			p++;
			continue;
		}
		uint64_t q = p;
		while (q < n && bit_get(l->bm, q))
			q++;
		int r = read_all(l->memfd, vm->mem.host + p * PAGE, (size_t)((q - p) * PAGE),
				 (off_t)(p * PAGE));
		if (r < 0)
			return vmm_errf(err, r, "snapshot: reading memory: %s", strerror(-r));
		p = q;
	}
	return 0;
}

static int restore_vcpu(struct ehv_vcpu *vcpu, void *arg)
{
	struct vcpu_blob *b = arg;
	b->r = ehv_vcpu_restore_state(vcpu, b->buf, b->len);
	return b->r;
}

static int load_states(struct ember_vm *vm, const struct layer *l, struct ember_error *err)
{
	void *buf;
	size_t len;
	int r = 0;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		char name[24];
		snprintf(name, sizeof(name), "vcpu%u.state", i);
		struct vcpu_blob b = {0};
		r = layer_part(l, name, &b.buf, &b.len, err);
		if (r < 0)
			return r;
		int c = ehv_runner_call(vm->runner, (int)i, restore_vcpu, &b);
		if (c < 0 || b.r < 0) {
			r = c < 0 ? c : b.r;
			return vmm_errf(err, r, "snapshot: %s: %s (%s)", name, strerror(-r),
					ehv_vcpu_state_detail(vm->vcpus[i]));
		}
	}
	/* the VM's last: its clock after the vCPUs' TSCs */
	r = layer_part(l, "vm.state", &buf, &len, err);
	if (r < 0)
		return r;
	r = ehv_vm_restore_state(vm->hv, buf, len);
	if (r < 0)
		return vmm_errf(err, r, "snapshot: vm.state: %s (%s)", strerror(-r),
				ehv_vm_state_detail(vm->hv));
	/* the devices after the interrupt controllers (the LAPICs in the
	 * vCPUs' states, the IOAPIC and PIC in the VM's): the interrupts
	 * their load raises (virtio-vsock's transport reset event, a pending
	 * one) would be lost under a LAPIC or IOAPIC state set after them,
	 * and the guest would see the reset only at its next vsock interrupt */
	r = layer_part(l, "devices.state", &buf, &len, err);
	if (r < 0)
		return r;
	struct vmm_state_r rd;
	vmm_sr_init(&rd, buf, len);
	return vmm_devices_load(vm, &rd, err);
}

/* KVM_CREATE_VM waits: Linux (6.1) starts the VM's NX huge page recovery
 * thread in it and moves that thread into the caller's cgroups, which waits
 * for an RCU grace period (percpu_down_write of cgroup_threadgroup_rwsem).
 * In the KVM sandbox that is about 9 of its 15 ms, with the CPU idle. A
 * restore makes its VM in a thread of this kind while it reads and checks
 * the snapshot, and takes it when it builds the VM. */
struct vm_maker {
	struct ehv_hypervisor *hyp;
	struct ehv_vm *hv;
	int r;
	bool running;
	pthread_t thread;
};

static void *make_vm(void *arg)
{
	struct vm_maker *m = arg;
	m->r = ehv_vm_create(m->hyp, &m->hv);
	return NULL;
}

static void vm_maker_start(struct vm_maker *m, struct ehv_hypervisor *hyp)
{
	m->hyp = hyp;
	m->hv = NULL;
	m->r = 0;
	/* if no thread can be had, the VM is made in its turn as in a boot */
	m->running = hyp && pthread_create(&m->thread, NULL, make_vm, m) == 0;
}

/* The VM made (NULL if none was, or its making failed: the build makes one
 * then, and says why it cannot). */
static struct ehv_vm *vm_maker_take(struct vm_maker *m)
{
	if (m->running) {
		pthread_join(m->thread, NULL);
		m->running = false;
	}
	struct ehv_vm *hv = m->r == 0 ? m->hv : NULL;
	m->hv = NULL;
	return hv;
}

int ember_restore_device_parse(const char *kind, const char *text, struct ember_restore_device *out)
{
	if (!kind || !text || !out)
		return -EINVAL;
	unsigned long n = 0;
	if (*text >= '0' && *text <= '9') { /* N, first */
		char *end;
		errno = 0;
		n = strtoul(text, &end, 10);
		if (errno || *end != ',' || n > 1000)
			return -EINVAL;
		text = end + 1;
	}
	*out = (struct ember_restore_device){.kind = kind, .index = (unsigned)n, .spec = text};
	return 0;
}

struct ember_vm_ahead {
	struct ehv_hypervisor *hyp;
	bool own_hyp;
	struct ehv_vm *hv;
};

int ember_vm_ahead_make(struct ehv_hypervisor *hyp, struct ember_vm_ahead **out,
			struct ember_error *err)
{
	if (!out)
		return vmm_errf(err, -EINVAL, "no result pointer");
	*out = NULL;
	struct ember_vm_ahead *a = calloc(1, sizeof(*a));
	if (!a)
		return vmm_errf(err, -ENOMEM, "out of memory");
	a->hyp = hyp;
	int r = 0;
	if (!hyp) {
		r = ehv_hypervisor_open(NULL, &a->hyp);
		if (r < 0) {
			free(a);
			return vmm_errf(err, r, "cannot open /dev/kvm: %s", strerror(-r));
		}
		a->own_hyp = true;
	}
	r = ehv_vm_create(a->hyp, &a->hv);
	if (r < 0) {
		ember_vm_ahead_free(a);
		return vmm_errf(err, r, "cannot create the hypervisor's VM: %s", strerror(-r));
	}
	*out = a;
	return 0;
}

void ember_vm_ahead_free(struct ember_vm_ahead *a)
{
	if (!a)
		return;
	ehv_vm_destroy(a->hv); /* before the hypervisor it was made on */
	if (a->own_hyp)
		ehv_hypervisor_close(a->hyp);
	free(a);
}

int ember_vm_restore(const char *dir, const struct ember_restore_opts *opts, struct ember_vm **out,
		     struct ember_error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = 0;
	}
	if (out)
		*out = NULL;
	struct ember_vm_ahead *ahead = opts ? opts->ahead : NULL;
	if (!dir || !out || (ahead && opts->hyp)) {
		ember_vm_ahead_free(ahead); /* taken whatever the result */
		return vmm_errf(err, -EINVAL,
				!dir || !out ? "restore: no directory or no result pointer"
					     : "restore: a VM made ahead and a hypervisor");
	}
	unsigned flags = opts ? opts->flags : 0;
	uint64_t t0 = vmm_now_ns();
	struct layer *ls[MAX_LAYERS] = {0};
	struct ember_config *cfg = calloc(1, sizeof(*cfg));
	struct ehv_hypervisor *hyp = opts ? opts->hyp : NULL;
	bool own_hyp = false;
	struct ember_vm *vm = NULL;
	struct vm_maker maker = {0};
	unsigned nl = 0;
	int r = 0;
	if (!cfg) {
		ember_vm_ahead_free(ahead);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	vmm_config_init(cfg);
	/* the hypervisor first, for the VM made while the snapshot is read (if
	 * /dev/kvm cannot be opened, step 2 says so after the snapshot's checks),
	 * unless both were made ahead */
	int hyp_r = 0;
	if (ahead) {
		hyp = ahead->hyp;
		own_hyp = ahead->own_hyp;
		maker.hyp = hyp;
		maker.hv = ahead->hv; /* taken at the build, as the thread's would be */
		free(ahead);
	} else {
		if (!hyp) {
			hyp_r = ehv_hypervisor_open(NULL, &hyp);
			own_hyp = hyp_r == 0;
		}
		vm_maker_start(&maker, hyp);
	}

	/* 1. every layer's manifest and parts, newest first */
	const char *d = dir;
	for (;;) {
		if (nl == MAX_LAYERS) {
			r = vmm_errf(err, -EINVAL, "restore: more than %u layers", MAX_LAYERS);
			goto fail;
		}
		struct layer *l = ls[nl++] = new_layer();
		if (!l) {
			r = vmm_errf(err, -ENOMEM, "out of memory");
			goto fail;
		}
		r = open_layer(d, l, flags, err);
		if (r < 0) {
			vmm_err_prefix(err, r, "%s", d);
			goto fail;
		}
		if (nl > 1 && (strcmp(l->man.id, ls[nl - 2]->man.base_id) ||
			       l->man.mem != ls[0]->man.mem || l->man.vcpus != ls[0]->man.vcpus)) {
			r = vmm_errf(err, -EINVAL,
				     "restore: %s is not the base %s was taken on (id %s, want %s)",
				     d, nl > 1 ? "the increment" : "", l->man.id,
				     ls[nl - 2]->man.base_id);
			goto fail;
		}
		if (!l->man.incremental)
			break;
		d = l->man.base;
	}
	const struct layer *top = ls[0];
	uint64_t t_parts = vmm_now_ns();

	/* 2. the host: its CPU (the disks after the configuration) */
	if (hyp_r < 0) {
		r = vmm_errf(err, hyp_r, "cannot open /dev/kvm: %s", strerror(-hyp_r));
		goto fail;
	}
	r = check_host(&top->man, hyp, err);
	if (r < 0)
		goto fail;
	uint64_t t_host = vmm_now_ns();

	/* 3. the configuration, as saved */
	void *cbuf;
	size_t clen;
	r = layer_part(top, "config", &cbuf, &clen, err);
	if (r < 0)
		goto fail;
	r = config_parse(cfg, cbuf, clen, err); /* in place: its last use */
	if (r == 0 && (cfg->mem_size != top->man.mem || cfg->cpus != top->man.vcpus))
		r = vmm_errf(err, -EINVAL, "restore: config and manifest disagree on mem or vcpus");
	/* a clone's own host side: its disk copies, taps, sockets */
	for (unsigned i = 0; r == 0 && opts && i < opts->ndevices; i++) {
		const struct ember_restore_device *o = &opts->devices[i];
		r = vmm_config_override_device(cfg, o->kind, o->index, o->spec, err);
	}
	if (r == 0)
		r = check_disks(&top->man, cfg, err);
	if (r < 0)
		goto fail;
	cfg->console_in = opts ? opts->console_in : -1;
	cfg->console_out = opts ? opts->console_out : -1;
	if (opts && opts->log) { /* every message, the callback filters (vmm.h) */
		ember_config_set_log(cfg, opts->log, opts->log_opaque);
		cfg->log_level = EMBER_LOG_DEBUG;
	}
	r = vmm_config_resolve_restored(cfg, err);
	if (r < 0)
		goto fail;

	/* 4. the VM, its memory from the oldest layer's file, the newer layers
	 * copied over it */
	uint64_t t_cfg = vmm_now_ns();
	const struct layer *bottom = ls[nl - 1];
	bool uffd = opts && (opts->flags & EMBER_RESTORE_UFFD);
	bool copy = opts && (opts->flags & EMBER_RESTORE_COPY);
	if (uffd && copy) {
		r = vmm_errf(err, -EINVAL,
			     "restore: guest memory can be served by the page server or copied, "
			     "not both");
		goto fail;
	}
	bool mapped = !uffd && !copy && cfg->mem_backing == EMBER_MEM_ANON && !cfg->hugepages;
	r = vmm_vm_create_restored(cfg, hyp, mapped ? bottom->memfd : -1, vm_maker_take(&maker),
				   &vm, err);
	if (r == -EBUSY && err) { /* a disk image's lock, a tap another VM has */
		size_t n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n,
			 "; a clone needs a disk image copy, tap or socket of its own "
			 "(--restore-disk|net|vsock, ember_restore_opts.devices)");
	}
	if (r < 0)
		goto fail;
	vm->own_hyp = own_hyp;
	own_hyp = false;
	if (mapped) {
		vm->restore_mem_fd = dup(bottom->memfd); /* a later snapshot's unread pages */
	}
	/* or served by the page server from the oldest layer's file, the newer
	 * layers' pages copied over it (their writes fault in the base first) */
	if (uffd)
		r = vmm_swap_restore_from(vm, bottom->memfd, err);
	for (unsigned i = mapped || uffd ? nl - 1 : nl; i-- > 0 && r == 0;)
		r = copy_layer(vm, ls[i], err);
	if (r < 0)
		goto fail;
	uint64_t t1 = vmm_now_ns();

	/* 5. devices, VM, vCPUs */
	r = load_states(vm, top, err);
	if (r < 0)
		goto fail;
	uint64_t t_states = vmm_now_ns();
	r = vmm_board_restored(vm, err);
	if (r < 0)
		goto fail;
	uint64_t t_end = vmm_now_ns();
#define MS(a, b) ((double)((b) - (a)) / 1e6)
	vmm_logf(&vm->cfg, EMBER_LOG_DEBUG,
		 "restored %s (%u layer%s) in %.1f ms: manifest and parts read and checked %.1f, "
		 "host checks %.1f, config %.1f, VM and vCPUs built and memory mapped %.1f, "
		 "device/vCPU/VM states loaded %.1f, board %.1f ms",
		 dir, nl, nl > 1 ? "s" : "", MS(t0, t_end), MS(t0, t_parts), MS(t_parts, t_host),
		 MS(t_host, t_cfg), MS(t_cfg, t1), MS(t1, t_states), MS(t_states, t_end));
#undef MS
	for (unsigned i = 0; i < nl; i++)
		close_layer(ls[i]);
	vmm_config_fini(cfg);
	free(cfg);
	*out = vm;
	return 0;

fail:
	ehv_vm_destroy(vm_maker_take(&maker)); /* before the hypervisor it was made on */
	if (vm)
		ember_vm_destroy(vm); /* closes its hypervisor if it owns it */
	if (own_hyp)
		ehv_hypervisor_close(hyp);
	for (unsigned i = 0; i < nl; i++)
		close_layer(ls[i]);
	vmm_config_fini(cfg);
	free(cfg);
	return r;
}

int ember_vm_generation_id(struct ember_vm *vm, uint8_t id[16])
{
	if (!vm || !id)
		return -EINVAL;
	return vmm_board_generation_id(vm, id) < 0 ? -EINVAL : 0;
}
