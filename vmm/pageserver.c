/* vmm/pageserver.c - the userfaultfd page server: MISSING faults served from a base file, a swap file or zeros. */
#include "pageserver.h"
#include "seccomp.h"
#include "../lib/io/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#define PS_PAGE 4096ull

enum { SRC_BASE = 0, SRC_SWAP = 1, SRC_ZERO = 2 };

struct vmm_pageserver {
	int uffd, stop_fd, memfd;
	uint8_t *host;
	uint64_t size, npages;
	uint8_t *src; /* per page: SRC_* (atomic bytes) */
	int base_fd;  /* -1: the base is zeros */
	uint64_t base_off;
	atomic_int swap_fd; /* -1 until the first swap out */
	bool seccomp;
	pthread_t thread;
	bool started;
	bool registered;
	atomic_uint_fast64_t faults, bytes, zeros, errors, out_pages, out_total, swapped, in_pages;
};

static uint8_t get_src(const struct vmm_pageserver *ps, uint64_t i)
{
	return __atomic_load_n(&ps->src[i], __ATOMIC_ACQUIRE);
}

static void set_src(struct vmm_pageserver *ps, uint64_t i, uint8_t v)
{
	uint8_t old = __atomic_exchange_n(&ps->src[i], v, __ATOMIC_ACQ_REL);
	if (old == SRC_SWAP && v != SRC_SWAP)
		atomic_fetch_sub(&ps->swapped, 1);
	else if (old != SRC_SWAP && v == SRC_SWAP)
		atomic_fetch_add(&ps->swapped, 1);
}

static bool all_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	for (size_t i = 0; i < PS_PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

/* Reads page i's contents from its source into buf; false: all zero. */
static bool read_page(struct vmm_pageserver *ps, uint64_t i, uint8_t *buf)
{
	uint8_t s = get_src(ps, i);
	int fd = s == SRC_SWAP ? atomic_load(&ps->swap_fd) : s == SRC_BASE ? ps->base_fd : -1;
	if (fd < 0)
		return false;
	off_t at = (off_t)((s == SRC_BASE ? ps->base_off : 0) + i * PS_PAGE);
	size_t got = 0;
	while (got < PS_PAGE) {
		ssize_t n = pread(fd, buf + got, PS_PAGE - got, at + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < PS_PAGE) {
		/* a swap or base file ends short only after an I/O error or a
		 * truncation by someone else: counted, served as zeros */
		atomic_fetch_add(&ps->errors, 1);
		return false;
	}
	return !all_zero(buf);
}

/* Puts page i in place. 0 (also when it was there already) or -errno. The
 * counters move before the ioctl that wakes the faulting thread (and back if
 * it fails), so whoever the fault blocked sees them already counted. */
static int serve(struct vmm_pageserver *ps, uint64_t i, uint8_t *buf, bool count_fault)
{
	uint64_t addr = (uint64_t)(uintptr_t)ps->host + i * PS_PAGE;
	bool from_swap = get_src(ps, i) == SRC_SWAP;
	bool data = read_page(ps, i, buf);
	atomic_uint_fast64_t *counter = data ? &ps->bytes : &ps->zeros;
	uint64_t inc = data ? PS_PAGE : 1;
	atomic_fetch_add(counter, inc);
	if (count_fault)
		atomic_fetch_add(&ps->faults, 1);
	if (from_swap) /* back: the swap file's copy is no longer needed */
		set_src(ps, i, SRC_BASE);
	int r;
	if (data) {
		struct uffdio_copy c = {
		    .dst = addr, .src = (uint64_t)(uintptr_t)buf, .len = PS_PAGE};
		r = ioctl(ps->uffd, UFFDIO_COPY, &c);
	} else {
		struct uffdio_zeropage z = {.range = {.start = addr, .len = PS_PAGE}};
		r = ioctl(ps->uffd, UFFDIO_ZEROPAGE, &z);
	}
	if (r == 0)
		return 0;
	int e = errno;
	atomic_fetch_sub(counter, inc); /* nothing was copied by this call */
	if (e == EEXIST) {
		/* another thread put it in place first: wake who waits */
		struct uffdio_range w = {.start = addr, .len = PS_PAGE};
		ioctl(ps->uffd, UFFDIO_WAKE, &w);
		return 0;
	}
	if (count_fault)
		atomic_fetch_sub(&ps->faults, 1);
	if (from_swap)
		set_src(ps, i, SRC_SWAP);
	return -e;
}

static void *ps_thread(void *arg)
{
	struct vmm_pageserver *ps = arg;
	pthread_setname_np(pthread_self(), "ember-pagesrv");
	if (ps->seccomp && vmm_seccomp_enter(EMBER_THREAD_PAGESERVER) < 0)
		return NULL; /* faults stay unserved until destroy unregisters */
	static _Thread_local uint8_t buf[PS_PAGE] __attribute__((aligned(4096)));
	struct pollfd pf[2] = {{.fd = ps->uffd, .events = POLLIN},
			       {.fd = ps->stop_fd, .events = POLLIN}};
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		struct uffd_msg msg[16];
		ssize_t n = read(ps->uffd, msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		for (ssize_t k = 0; k < n / (ssize_t)sizeof(msg[0]); k++) {
			if (msg[k].event != UFFD_EVENT_PAGEFAULT)
				continue;
			uint64_t a = msg[k].arg.pagefault.address & ~(PS_PAGE - 1);
			uint64_t base = (uint64_t)(uintptr_t)ps->host;
			if (a < base || a - base >= ps->size)
				continue;
			if (serve(ps, (a - base) / PS_PAGE, buf, true) < 0)
				atomic_fetch_add(&ps->errors, 1);
		}
	}
	return NULL;
}

static int open_uffd(struct ember_error *err)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	int e = errno;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		e = errno;
		close(dev);
		if (fd >= 0)
			return fd;
	}
	/* an unprivileged process would get only user-mode faults, and KVM's
	 * and the kernel's own accesses to guest memory must be served too */
	return vmm_errf(err, -e,
			"userfaultfd: %s (the VMM needs CAP_SYS_PTRACE, "
			"vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)",
			strerror(e));
}

int vmm_ps_create(struct vmm_pageserver **out, uint8_t *host, uint64_t size, int memfd,
		  bool seccomp, struct ember_error *err)
{
	*out = NULL;
	if (!host || !size || ((uintptr_t)host | size) & (PS_PAGE - 1))
		return vmm_errf(err, -EINVAL, "page server: range %p+%#llx not 4 KiB aligned",
				(void *)host, (unsigned long long)size);
	struct vmm_pageserver *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return vmm_errf(err, -ENOMEM, "page server: out of memory");
	ps->uffd = ps->stop_fd = -1;
	ps->base_fd = -1;
	atomic_init(&ps->swap_fd, -1);
	ps->memfd = memfd;
	ps->host = host;
	ps->size = size;
	ps->npages = size / PS_PAGE;
	ps->seccomp = seccomp;
	int r = 0;
	ps->src = calloc(ps->npages, 1);
	if (!ps->src) {
		r = vmm_errf(err, -ENOMEM, "page server: out of memory");
		goto fail;
	}
	ps->uffd = r = open_uffd(err);
	if (r < 0)
		goto fail;
	struct uffdio_api api = {.api = UFFD_API,
				 .features = memfd >= 0 ? UFFD_FEATURE_MISSING_SHMEM : 0};
	if (ioctl(ps->uffd, UFFDIO_API, &api) < 0) {
		r = vmm_errf(err, errno == EINVAL ? -EOPNOTSUPP : -errno,
			     "userfaultfd: UFFDIO_API%s: %s",
			     memfd >= 0 ? " (shared memory faults)" : "", strerror(errno));
		goto fail;
	}
	ps->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ps->stop_fd < 0) {
		r = vmm_errf(err, -errno, "page server: eventfd: %s", strerror(errno));
		goto fail;
	}
	r = pthread_create(&ps->thread, NULL, ps_thread, ps);
	if (r) {
		r = vmm_errf(err, -r, "page server: pthread_create: %s", strerror(r));
		goto fail;
	}
	ps->started = true;
	*out = ps;
	return 0;
fail:
	vmm_ps_destroy(ps);
	return r;
}

int vmm_ps_register(struct vmm_pageserver *ps, struct ember_error *err)
{
	if (ps->registered)
		return vmm_errf(err, -EINVAL, "page server: guest memory is registered already");
	struct uffdio_register reg = {
	    .range = {.start = (uint64_t)(uintptr_t)ps->host, .len = ps->size},
	    .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(ps->uffd, UFFDIO_REGISTER, &reg) < 0)
		return vmm_errf(err, errno == EINVAL ? -EOPNOTSUPP : -errno,
				"userfaultfd: cannot register guest memory (%llu MiB): %s",
				(unsigned long long)ps->size >> 20, strerror(errno));
	uint64_t need =
	    (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_ZEROPAGE) | (1ull << _UFFDIO_WAKE);
	if ((reg.ioctls & need) != need) {
		vmm_ps_unregister(ps);
		return vmm_errf(err, -EOPNOTSUPP,
				"userfaultfd: this memory has no UFFDIO_COPY/ZEROPAGE");
	}
	ps->registered = true;
	return 0;
}

void vmm_ps_unregister(struct vmm_pageserver *ps)
{
	struct uffdio_range rg = {.start = (uint64_t)(uintptr_t)ps->host, .len = ps->size};
	ioctl(ps->uffd, UFFDIO_UNREGISTER, &rg);
	ps->registered = false;
	for (uint64_t i = 0; i < ps->npages; i++)
		set_src(ps, i, SRC_BASE);
}

bool vmm_ps_registered(struct vmm_pageserver *ps)
{
	return ps && ps->registered;
}

void vmm_ps_destroy(struct vmm_pageserver *ps)
{
	if (!ps)
		return;
	if (ps->started) {
		uint64_t one = 1;
		if (write(ps->stop_fd, &one, sizeof(one)) < 0) {
			/* an eventfd's counter cannot overflow from one write */
		}
		pthread_join(ps->thread, NULL);
	}
	if (ps->stop_fd >= 0)
		close(ps->stop_fd);
	if (ps->uffd >= 0)
		close(ps->uffd);
	if (ps->base_fd >= 0)
		close(ps->base_fd);
	int sfd = atomic_load(&ps->swap_fd);
	if (sfd >= 0)
		close(sfd);
	free(ps->src);
	free(ps);
}

int vmm_ps_set_base(struct vmm_pageserver *ps, int fd, uint64_t base_off, struct ember_error *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return vmm_errf(err, -errno, "page server: source file: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return vmm_errf(err, -EINVAL, "page server: the source is not a regular file");
	if (vmm_range_exceeds(base_off, ps->size, (uint64_t)st.st_size))
		return vmm_errf(err, -EINVAL,
				"page server: source file of %lld bytes holds no %llu bytes at "
				"offset %llu (truncated)",
				(long long)st.st_size, (unsigned long long)ps->size,
				(unsigned long long)base_off);
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (d < 0)
		return vmm_errf(err, -errno, "page server: dup: %s", strerror(errno));
	if (ps->base_fd >= 0)
		close(ps->base_fd);
	ps->base_off = base_off;
	ps->base_fd = d;
	return 0;
}

bool vmm_ps_has_base(struct vmm_pageserver *ps)
{
	return ps && ps->base_fd >= 0;
}

static int open_swap_file(const char *dir, struct ember_error *err)
{
	int fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC | O_EXCL, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return vmm_errf(err, -errno, "swap file in %s: %s", dir, strerror(errno));
	/* a file system without O_TMPFILE: a named file, unlinked at once */
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/ember-swap-XXXXXX", dir) >= (int)sizeof(path))
		return vmm_errf(err, -ENAMETOOLONG, "swap directory %s: name too long", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return vmm_errf(err, -errno, "swap file in %s: %s", dir, strerror(errno));
	unlink(path);
	return fd;
}

static int release(struct vmm_pageserver *ps, uint64_t first, uint64_t n)
{
	uint64_t off = first * PS_PAGE, len = n * PS_PAGE;
	if (ps->memfd >= 0)
		return fallocate(ps->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				 (off_t)len) < 0
			   ? -errno
			   : 0;
	return madvise(ps->host + off, (size_t)len, MADV_DONTNEED) < 0 ? -errno : 0;
}

int64_t vmm_ps_swap_out(struct vmm_pageserver *ps, const char *dir, struct ember_error *err)
{
	int fd = atomic_load(&ps->swap_fd);
	if (fd < 0) {
		fd = open_swap_file(dir, err);
		if (fd < 0)
			return fd;
		atomic_store(&ps->swap_fd, fd);
	}
	/* resident pages, one chunk of the range at a time: mincore sees both
	 * anonymous pages and a memfd's page cache; a page the kernel swapped
	 * out itself is not resident and stays where it is */
	enum { CHUNK = 1 << 15 }; /* pages (128 MiB) */
	unsigned char *vec = malloc(CHUNK);
	if (!vec)
		return vmm_errf(err, -ENOMEM, "swap out: out of memory");
	int64_t done = 0;
	int r = 0;
	for (uint64_t c = 0; c < ps->npages && r == 0; c += CHUNK) {
		uint64_t n = ps->npages - c < CHUNK ? ps->npages - c : CHUNK;
		if (mincore(ps->host + c * PS_PAGE, (size_t)(n * PS_PAGE), vec) < 0) {
			r = vmm_errf(err, -errno, "swap out: mincore: %s", strerror(errno));
			break;
		}
		uint64_t run = 0, run_start = 0;
		for (uint64_t k = 0; k <= n && r == 0; k++) {
			bool res = k < n && (vec[k] & 1);
			if (res) {
				uint64_t i = c + k;
				const uint8_t *p = ps->host + i * PS_PAGE;
				if (!all_zero(p)) {
					ssize_t w = pwrite(fd, p, PS_PAGE, (off_t)(i * PS_PAGE));
					if (w != (ssize_t)PS_PAGE) {
						r = vmm_errf(err, w < 0 ? -errno : -ENOSPC,
							     "swap out: writing the swap file: %s",
							     w < 0 ? strerror(errno)
								   : "short write");
						break;
					}
				} else if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						     (off_t)(i * PS_PAGE), (off_t)PS_PAGE) < 0 &&
					   errno != EOPNOTSUPP) {
					/* an older out's data there must not come back */
					r = vmm_errf(err, -errno,
						     "swap out: punching the swap file: %s",
						     strerror(errno));
					break;
				}
				if (!run)
					run_start = i;
				run++;
				continue;
			}
			if (!run)
				continue;
			/* the run is in the file: its source changes before it goes */
			for (uint64_t j = run_start; j < run_start + run; j++)
				set_src(ps, j, SRC_SWAP);
			int e = release(ps, run_start, run);
			if (e < 0) {
				r = vmm_errf(err, e, "swap out: releasing guest memory: %s",
					     strerror(-e));
				break;
			}
			done += (int64_t)run;
			run = 0;
		}
	}
	free(vec);
	if (r < 0)
		return r;
	atomic_store(&ps->out_pages, (uint64_t)done);
	atomic_fetch_add(&ps->out_total, (uint64_t)done);
	return done;
}

int vmm_ps_populate(struct vmm_pageserver *ps, bool all_pages, struct ember_error *err)
{
	uint8_t *buf = aligned_alloc(PS_PAGE, PS_PAGE);
	if (!buf)
		return vmm_errf(err, -ENOMEM, "page server: out of memory");
	unsigned char v[1];
	int r = 0;
	for (uint64_t i = 0; i < ps->npages; i++) {
		if (!all_pages && get_src(ps, i) != SRC_SWAP)
			continue;
		if (all_pages && mincore(ps->host + i * PS_PAGE, PS_PAGE, v) == 0 && (v[0] & 1))
			continue;
		r = serve(ps, i, buf, false);
		if (r < 0) {
			r = vmm_errf(err, r, "page server: bringing a page back: %s", strerror(-r));
			break;
		}
		atomic_fetch_add(&ps->in_pages, 1);
	}
	free(buf);
	return r;
}

void vmm_ps_discarded(void *opaque, uint64_t off, uint64_t len)
{
	struct vmm_pageserver *ps = opaque;
	if (!ps || off >= ps->size)
		return;
	if (len > ps->size - off)
		len = ps->size - off;
	for (uint64_t i = off / PS_PAGE; i < (off + len + PS_PAGE - 1) / PS_PAGE; i++)
		set_src(ps, i, SRC_ZERO);
}

void vmm_ps_stats(struct vmm_pageserver *ps, struct vmm_ps_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!ps)
		return;
	st->faults = atomic_load(&ps->faults);
	st->bytes_copied = atomic_load(&ps->bytes);
	st->zero_pages = atomic_load(&ps->zeros);
	st->errors = atomic_load(&ps->errors);
	st->out_pages = atomic_load(&ps->out_pages);
	st->out_total = atomic_load(&ps->out_total);
	st->swapped = atomic_load(&ps->swapped);
	st->in_pages = atomic_load(&ps->in_pages);
}
