/* vmm/boot/kcache.c - a cache of host-decompressed kernels: the vmlinux of a bzImage, kept on disk so that a repeat boot decompresses nothing. */
#include "boot.h"
#include "../../lib/io/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KCACHE_SUFFIX ".vmlinux"
#define KCACHE_TMP    ".tmp-"
/* a temporary file older than this was left by a writer that died */
#define KCACHE_TMP_STALE_S 600

int vmm_kcache_default_dir(char *out, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;
	/* the XDG spec: a relative path is invalid and is ignored */
	if (xdg && xdg[0] == '/')
		n = snprintf(out, len, "%s/ember/kernels", xdg);
	else if (home && home[0] == '/')
		n = snprintf(out, len, "%s/.cache/ember/kernels", home);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* ------------------------------------------------------------ the key */

#define H_P1 0x9e3779b185ebca87ull
#define H_P2 0xc2b2ae3d27d4eb4full

static uint64_t rotl64(uint64_t v, unsigned r)
{
	return v << r | v >> (64 - r);
}

static uint64_t mix64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	v *= 0xc4ceb9fe1a85ec53ull;
	v ^= v >> 33;
	return v;
}

uint64_t vmm_kcache_hash(const uint8_t *p, uint64_t n)
{
	/* four independent lanes of multiply-rotate over 32-byte blocks (the
	 * CPU runs them in parallel), folded and finalised with the length */
	uint64_t lane[4] = {H_P1 + H_P2, H_P2, 0, (uint64_t)0 - H_P1};
	uint64_t i = 0;
	for (; i + 32 <= n; i += 32)
		for (unsigned k = 0; k < 4; k++)
			lane[k] = rotl64(lane[k] + vmm_le64(p + i + 8 * k) * H_P2, 31) * H_P1;
	uint64_t h = n * H_P1;
	for (unsigned k = 0; k < 4; k++)
		h = rotl64(h ^ mix64(lane[k]), 27) * H_P1 + H_P2;
	for (; i < n; i++)
		h = rotl64(h ^ (p[i] * H_P1), 11) * H_P2;
	return mix64(h);
}

int vmm_kcache_key(int fd, const uint8_t *img, uint64_t len, char *name, size_t cap)
{
	struct stat st;
	if (fd < 0 || !img)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size != len)
		return -ESTALE; /* the file changed since it was mapped */
	uint64_t content = vmm_kcache_hash(img, len);
	uint8_t id[48];
	vmm_put64(id, (uint64_t)st.st_dev);
	vmm_put64(id + 8, (uint64_t)st.st_ino);
	vmm_put64(id + 16, (uint64_t)st.st_size);
	vmm_put64(id + 24, (uint64_t)st.st_mtim.tv_sec);
	vmm_put64(id + 32, (uint64_t)st.st_mtim.tv_nsec);
	vmm_put64(id + 40, content);
	int n = snprintf(name, cap, "%016llx-%016llx" KCACHE_SUFFIX, (unsigned long long)content,
			 (unsigned long long)vmm_kcache_hash(id, sizeof(id)));
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ------------------------------------------------------------ the directory */

static int entry_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Creates dir and its missing parents (0700), then checks it is a directory
 * of ours that only we can use (tightening its mode if it is ours). */
static int prepare_dir(const char *dir, struct ember_error *why)
{
	char p[EMBER_PATH_MAX];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof(p) || dir[0] != '/')
		return vmm_errf(why, -EINVAL, "kernel cache: '%s' is not an absolute path", dir);
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != 0)
			continue;
		char c = p[i];
		p[i] = 0;
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return vmm_errf(why, -errno, "kernel cache: cannot create %s: %s", p,
					strerror(errno));
		p[i] = c;
	}
	struct stat st;
	if (lstat(dir, &st) < 0)
		return vmm_errf(why, -errno, "kernel cache: %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return vmm_errf(why, -ENOTDIR, "kernel cache: %s is not a directory", dir);
	if (st.st_uid != geteuid())
		return vmm_errf(why, -EPERM, "kernel cache: %s belongs to another user", dir);
	if ((st.st_mode & 077) && chmod(dir, 0700) < 0)
		return vmm_errf(why, -errno, "kernel cache: cannot make %s owner-only: %s", dir,
				strerror(errno));
	if (access(dir, W_OK | X_OK) < 0)
		return vmm_errf(why, -errno, "kernel cache: %s: %s", dir, strerror(errno));
	return 0;
}

/* ------------------------------------------------------------ lookup */

int vmm_kcache_lookup(const char *dir, const char *name, uint64_t size, struct vmm_kcache_hit *hit,
		      struct ember_error *why)
{
	char path[EMBER_PATH_MAX];
	memset(hit, 0, sizeof(*hit));
	hit->fd = -1;
	if (entry_path(path, sizeof(path), dir, name) < 0)
		return vmm_errf(why, 0, "kernel cache: the entry's path is too long");
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return vmm_errf(why, 0, "kernel cache: miss (%s: %s)", path, strerror(errno));
	struct stat st;
	const char *bad = NULL;
	struct ember_error eerr = {0};
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		bad = "not a regular file";
	else if (st.st_uid != geteuid() || (st.st_mode & 077))
		bad = "not owner-only";
	else if ((uint64_t)st.st_size != size)
		bad = "its size is not the payload's declared size";
	else if (vmm_map_fd(fd, &hit->data, &hit->size) < 0)
		bad = "cannot map it";
	else if (vmm_elf_parse(hit->data, hit->size, &hit->elf, &eerr) < 0)
		bad = eerr.msg;
	if (bad) {
		vmm_errf(why, 0, "kernel cache: %s is invalid (%.200s); replacing it", path, bad);
		if (hit->data)
			vmm_unmap_file(hit->data, hit->size);
		memset(hit, 0, sizeof(*hit));
		hit->fd = -1;
		close(fd);
		unlink(path);
		return 0;
	}
	/* the most recently used entries are the ones kept */
	(void)futimens(fd, NULL);
	hit->fd = fd;
	snprintf(hit->path, sizeof(hit->path), "%s", path);
	return 1;
}

void vmm_kcache_hit_release(struct vmm_kcache_hit *hit)
{
	if (hit->data)
		vmm_unmap_file(hit->data, hit->size);
	if (hit->fd >= 0)
		close(hit->fd);
	memset(hit, 0, sizeof(*hit));
	hit->fd = -1;
}

/* ------------------------------------------------------------ store */

static int write_all(int fd, const uint8_t *p, uint64_t off, uint64_t len)
{
	while (len) {
		ssize_t n =
		    pwrite(fd, p + off, len < (1u << 30) ? (size_t)len : (1u << 30), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct vmm_elf_zero *x = a, *y = b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Writes buf to fd, leaving the ELF's zero ranges as holes (the loader
 * leaves them to fresh guest memory whatever the file holds there). */
static int write_sparse(int fd, const uint8_t *buf, uint64_t len, const struct vmm_elf *elf)
{
	struct vmm_elf_zero z[VMM_ELF_MAX_ZERO];
	unsigned nz = elf->nzero < VMM_ELF_MAX_ZERO ? elf->nzero : VMM_ELF_MAX_ZERO;
	memcpy(z, elf->zero, nz * sizeof(z[0]));
	qsort(z, nz, sizeof(z[0]), by_offset);
	if (ftruncate(fd, (off_t)len) < 0)
		return -errno;
	uint64_t pos = 0;
	for (unsigned i = 0; i <= nz; i++) {
		uint64_t start = i < nz ? z[i].offset : len;
		uint64_t end = i < nz ? start + z[i].len : len;
		if (start > len || end > len || end < start)
			return -EINVAL;
		if (start > pos) {
			int r = write_all(fd, buf, pos, start - pos);
			if (r < 0)
				return r;
		}
		if (end > pos)
			pos = end;
	}
	return 0;
}

struct kentry {
	char name[64];
	struct timespec mtime;
};

static int newest_first(const void *a, const void *b)
{
	const struct kentry *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
	return strcmp(x->name, y->name);
}

int vmm_kcache_trim(const char *dir, unsigned keep)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct kentry *e = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	time_t now = time(NULL);
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		size_t len = strlen(de->d_name);
		if (!strncmp(de->d_name, KCACHE_TMP, strlen(KCACHE_TMP))) {
			if (now - st.st_mtim.tv_sec > KCACHE_TMP_STALE_S)
				(void)unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (len < strlen(KCACHE_SUFFIX) || len >= sizeof(e->name) ||
		    strcmp(de->d_name + len - strlen(KCACHE_SUFFIX), KCACHE_SUFFIX))
			continue;
		if (n == cap) {
			struct kentry *ne = realloc(e, (cap = cap ? 2 * cap : 16) * sizeof(*e));
			if (!ne) {
				r = -ENOMEM;
				break;
			}
			e = ne;
		}
		memcpy(e[n].name, de->d_name, len + 1);
		e[n].mtime = st.st_mtim;
		n++;
	}
	if (r == 0 && n > keep) {
		qsort(e, n, sizeof(*e), newest_first);
		for (size_t i = keep; i < n; i++)
			if (unlinkat(dirfd(d), e[i].name, 0) == 0)
				r++;
	}
	closedir(d);
	free(e);
	return r;
}

int vmm_kcache_store(const char *dir, const char *name, const uint8_t *buf, uint64_t len,
		     const struct vmm_elf *elf, unsigned keep, struct ember_error *why)
{
	int r = prepare_dir(dir, why);
	if (r < 0)
		return r;
	char tmp[EMBER_PATH_MAX], path[EMBER_PATH_MAX];
	if (entry_path(path, sizeof(path), dir, name) < 0 ||
	    snprintf(tmp, sizeof(tmp), "%s/" KCACHE_TMP "XXXXXX", dir) >= (int)sizeof(tmp))
		return vmm_errf(why, -ENAMETOOLONG, "kernel cache: %s: path too long", dir);
	int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return vmm_errf(why, -errno, "kernel cache: cannot create a file in %s: %s", dir,
				strerror(errno));
	r = write_sparse(fd, buf, len, elf);
	if (r == 0 && fchmod(fd, 0600) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	/* rename: a reader sees the old entry, none, or the whole new one */
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return vmm_errf(why, r, "kernel cache: cannot write %s: %s", path, strerror(-r));
	}
	int gone = vmm_kcache_trim(dir, keep ? keep : VMM_KCACHE_KEEP);
	vmm_errf(why, 0, "kernel cache: stored %s (%llu bytes)%s", path, (unsigned long long)len,
		 gone > 0 ? "; older entries removed" : "");
	return 0;
}
