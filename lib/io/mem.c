/* lib/io/mem.c - guest memory mapping and its bounds-checked accessors. */
#include "mem.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

/*
 * A PROT_NONE reservation of size bytes starting at a multiple of align,
 * or NULL. Half an alignment of it stays PROT_NONE below the returned
 * address (a guard, never freed: address space only): whatever the process
 * maps next below (a thread's stack, mapped top-down) then ends off the
 * 2 MiB grid, so its touched top pages do not become a 2 MiB transparent
 * huge page of the VMM's own memory.
 */
#define GUARD_BELOW(align) ((align) / 2)
static void *reserve_aligned(uint64_t size, uint64_t align)
{
	size_t len = (size_t)(size + 2 * align);
	uint8_t *r = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	uint8_t *a = (uint8_t *)vmm_align_up((uintptr_t)r + align, align);
	uint8_t *keep = a - GUARD_BELOW(align);
	if (keep > r)
		munmap(r, (size_t)(keep - r));
	uint8_t *end = r + len, *aend = a + size;
	if (end > aend)
		munmap(aend, (size_t)(end - aend));
	return a;
}

static void unreserve(void *at, uint64_t size)
{
	munmap((uint8_t *)at - GUARD_BELOW(2u << 20), (size_t)size + GUARD_BELOW(2u << 20));
}

int vmm_mem_create(struct vmm_mem *m, uint64_t size, uint64_t hole_start, uint64_t hole_end,
		   enum ember_mem_backing backing, bool hugepages, struct ember_error *err)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	uint64_t align = hugepages ? (2u << 20) : 4096;
	if (!size || size & (align - 1))
		return vmm_errf(err, -EINVAL,
				"guest memory size %#llx is not a multiple of %llu KiB",
				(unsigned long long)size, (unsigned long long)align >> 10);
	if (hole_start > hole_end || (hole_start | hole_end) & 4095 ||
	    (hole_end > hole_start && hole_start == 0))
		return vmm_errf(err, -EINVAL, "bad memory hole [%#llx, %#llx)",
				(unsigned long long)hole_start, (unsigned long long)hole_end);
	if (size > (uint64_t)SIZE_MAX || vmm_range_exceeds(hole_end, size, UINT64_MAX - 1))
		return vmm_errf(err, -EINVAL, "guest memory size %#llx is too large",
				(unsigned long long)size);

	/* Guest RAM starts 2 MiB aligned in the host too: KVM maps a 2 MiB
	 * guest page with one large nested page only when the host address has
	 * the same offset within 2 MiB as the guest one (and transparent huge
	 * pages only fill aligned 2 MiB ranges). mmap alone gives 4 KiB
	 * alignment, so reserve a larger range and place the mapping in it. */
	void *at = reserve_aligned(size, 2u << 20);
	if (!at)
		return vmm_errf(err, -ENOMEM,
				"cannot reserve %llu MiB of address space for guest memory",
				(unsigned long long)size >> 20);
	void *p;
	/* hugetlb pages are reserved at mmap time (no MAP_NORESERVE): a host
	 * without enough of them fails here, not with SIGBUS when the guest
	 * touches its memory */
	int flags = MAP_FIXED | (hugepages ? 0 : MAP_NORESERVE);
	if (backing == EMBER_MEM_MEMFD) {
		m->fd =
		    memfd_create("ember-guest-ram", MFD_CLOEXEC | (hugepages ? MFD_HUGETLB : 0));
		if (m->fd < 0) {
			int e = -errno;
			unreserve(at, size);
			return vmm_errf(err, e, "memfd_create%s: %s", hugepages ? " (hugetlb)" : "",
					strerror(-e));
		}
		if (ftruncate(m->fd, (off_t)size) < 0) {
			int e = -errno;
			unreserve(at, size);
			vmm_mem_destroy(m);
			return vmm_errf(err, e,
					"ftruncate of the guest memory memfd to %llu bytes: %s",
					(unsigned long long)size, strerror(-e));
		}
		p = mmap(at, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED | flags, m->fd, 0);
	} else if (backing == EMBER_MEM_ANON) {
		flags |= MAP_PRIVATE | MAP_ANONYMOUS | (hugepages ? MAP_HUGETLB : 0);
		p = mmap(at, (size_t)size, PROT_READ | PROT_WRITE, flags, -1, 0);
	} else {
		unreserve(at, size);
		return vmm_errf(err, -EINVAL, "unknown memory backing %d", backing);
	}
	if (p == MAP_FAILED) {
		int e = -errno;
		unreserve(at, size); /* the reservation, if MAP_FIXED left it */
		vmm_mem_destroy(m);
		if (hugepages)
			return vmm_errf(
			    err, e,
			    "cannot map %llu MiB of hugetlb memory: %s (reserve pages in "
			    "/proc/sys/vm/nr_hugepages)",
			    (unsigned long long)size >> 20, strerror(-e));
		return vmm_errf(err, e, "cannot map %llu MiB of guest memory: %s",
				(unsigned long long)size >> 20, strerror(-e));
	}
	m->host = p;
	m->size = size;
	m->hugepages = hugepages;
	m->anon = backing == EMBER_MEM_ANON;
	/* Transparent huge pages help the guest's TLB and the kernel's page
	 * tables without touching anything now. */
	if (!hugepages)
		madvise(p, (size_t)size, MADV_HUGEPAGE);
	/* Guest RAM is not for core dumps or fork()ed children. */
	madvise(p, (size_t)size, MADV_DONTDUMP);
	madvise(p, (size_t)size, MADV_DONTFORK);

	uint64_t low = size;
	if (hole_end > hole_start && size > hole_start)
		low = hole_start;
	m->regions[0] = (struct vmm_mem_region){.gpa = 0, .size = low, .offset = 0};
	m->nregions = 1;
	if (low < size) {
		m->regions[1] =
		    (struct vmm_mem_region){.gpa = hole_end, .size = size - low, .offset = low};
		m->nregions = 2;
	}
	return 0;
}

void vmm_mem_destroy(struct vmm_mem *m)
{
	if (!m)
		return;
	if (m->host && m->size)
		munmap(m->host - GUARD_BELOW(2u << 20), (size_t)m->size + GUARD_BELOW(2u << 20));
	if (m->fd >= 0)
		close(m->fd);
	m->host = NULL;
	m->size = 0;
	m->fd = -1;
	m->nregions = 0;
}

static const struct vmm_mem_region *find(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
	if (!m || !m->host)
		return NULL;
	if (len == 0)
		len = 1;
	for (unsigned i = 0; i < m->nregions && i < VMM_MEM_MAX_REGIONS; i++) {
		const struct vmm_mem_region *r = &m->regions[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		if (off >= r->size || len > r->size - off)
			continue;
		return r;
	}
	return NULL;
}

void *vmm_mem_ptr(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
	const struct vmm_mem_region *r = find(m, gpa, len);
	if (!r)
		return NULL;
	return m->host + r->offset + (gpa - r->gpa);
}

bool vmm_mem_contains(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
	return find(m, gpa, len) != NULL;
}

int vmm_mem_write(const struct vmm_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = vmm_mem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	if (len)
		memcpy(p, src, (size_t)len);
	return 0;
}

int vmm_mem_read(const struct vmm_mem *m, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = vmm_mem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	if (len)
		memcpy(dst, p, (size_t)len);
	return 0;
}

int vmm_mem_zero(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
	void *p = vmm_mem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	if (len)
		memset(p, 0, (size_t)len);
	return 0;
}

static int discard(const struct vmm_mem *m, uint64_t off, uint64_t len);

int vmm_mem_discard(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
	const struct vmm_mem_region *r = find(m, gpa, len);
	if (!r || !len)
		return -EFAULT;
	uint64_t page = m->hugepages ? 2ull << 20 : 4096;
	if ((gpa | len) & (page - 1))
		return -EINVAL;
	uint64_t off = r->offset + (gpa - r->gpa);
	int e = discard(m, off, len);
	if (e == 0 && m->on_discard)
		m->on_discard(m->on_discard_opaque, off, len);
	return e;
}

static int discard(const struct vmm_mem *m, uint64_t off, uint64_t len)
{
	if (m->file_private) /* MADV_DONTNEED would bring the file's page back */
		return mmap(m->host + off, (size_t)len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
			    0) == MAP_FAILED
			   ? -errno
			   : 0;
	if (m->fd >= 0) /* shared memfd: free the file's pages, not only this mapping's */
		return fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				 (off_t)len) < 0
			   ? -errno
			   : 0;
	return madvise(m->host + off, (size_t)len, MADV_DONTNEED) < 0 ? -errno : 0;
}

int vmm_mem_map_file(struct vmm_mem *m, int fd, struct ember_error *err)
{
	if (!m || !m->host || !m->anon || m->hugepages)
		return vmm_errf(err, -EOPNOTSUPP,
				"a snapshot's memory maps only over anonymous memory without "
				"hugepages");
	struct stat st;
	if (fstat(fd, &st) < 0)
		return vmm_errf(err, -errno, "memory file: %s", strerror(errno));
	if (st.st_size < 0 || (uint64_t)st.st_size < m->size)
		return vmm_errf(err, -EINVAL,
				"memory file: %lld bytes, the guest has %llu (truncated)",
				(long long)st.st_size, (unsigned long long)m->size);
	void *p = mmap(m->host, (size_t)m->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		return vmm_errf(err, -errno, "cannot map the memory file: %s", strerror(errno));
	m->file_private = true;
	madvise(p, (size_t)m->size, MADV_DONTDUMP);
	madvise(p, (size_t)m->size, MADV_DONTFORK);
	return 0;
}

uint64_t vmm_mem_low_end(const struct vmm_mem *m)
{
	return m && m->nregions ? m->regions[0].gpa + m->regions[0].size : 0;
}
