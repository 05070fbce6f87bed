/* lib/io/mem.h - guest memory: one host mapping, up to two RAM regions, bounds-checked accessors. */
#ifndef EMBER_IO_MEM_H
#define EMBER_IO_MEM_H

#include <ember/vmm.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Guest RAM is one host mapping of `size` bytes, seen by the guest as up to
 * two regions: [0, min(size, hole_start)) and, for the rest, from hole_end
 * up (the hole below 4 GiB is for MMIO: IOAPIC, LAPIC, later virtio-mmio).
 * The mapping is never touched by this module: no zeroing, no prefaulting;
 * fresh anonymous or memfd memory reads as zero, and only the pages the boot
 * code writes get faulted in.
 *
 * Guest physical addresses (gpa) are plain uint64_t values that are never
 * dereferenced: every access goes through vmm_mem_ptr() or the read/write
 * helpers below, which check the whole [gpa, gpa + len) range with
 * overflow-safe arithmetic and fail for any range not inside one region.
 */

#define VMM_MEM_MAX_REGIONS 2

struct vmm_mem_region {
	uint64_t gpa;	 /* guest physical start */
	uint64_t size;	 /* bytes */
	uint64_t offset; /* offset into the host mapping */
};

struct vmm_mem {
	uint8_t *host; /* the host mapping (size bytes) */
	uint64_t size; /* total RAM bytes */
	int fd;	       /* the memfd backing it, or -1 */
	bool hugepages;
	bool anon; /* private anonymous memory */
	/* mapped privately from a snapshot's memory file (vmm_mem_map_file):
	 * a discard maps fresh anonymous pages over the range */
	bool file_private;
	/* told of every discard (offset into the mapping, length) once done:
	 * the page server's vmm_ps_discarded, or NULL */
	void (*on_discard)(void *opaque, uint64_t off, uint64_t len);
	void *on_discard_opaque;
	unsigned nregions;
	struct vmm_mem_region regions[VMM_MEM_MAX_REGIONS];
};

/*
 * Maps size bytes of guest RAM (size a multiple of 4 KiB, of 2 MiB with
 * hugepages) laid out around the hole [hole_start, hole_end) (hole_start <=
 * hole_end, both 4 KiB aligned; hole_start == hole_end means no hole).
 * backing: EMBER_MEM_ANON (private anonymous) or EMBER_MEM_MEMFD (a memfd,
 * shared mapping). hugepages asks for hugetlb pages (MAP_HUGETLB /
 * MFD_HUGETLB) and fails if the host has none reserved.
 * Returns 0 or -EINVAL, -ENOMEM, or the errno of memfd_create/mmap; err says
 * which.
 */
int vmm_mem_create(struct vmm_mem *m, uint64_t size, uint64_t hole_start, uint64_t hole_end,
		   enum ember_mem_backing backing, bool hugepages, struct ember_error *err);
/* Unmaps and closes; safe on a zeroed or already destroyed struct. */
void vmm_mem_destroy(struct vmm_mem *m);

/* Host pointer for [gpa, gpa + len) if the whole range lies inside one RAM
 * region, else NULL. len 0 is checked as len 1 (the address must be RAM). */
void *vmm_mem_ptr(const struct vmm_mem *m, uint64_t gpa, uint64_t len);
/* True if [gpa, gpa + len) lies inside one RAM region. */
bool vmm_mem_contains(const struct vmm_mem *m, uint64_t gpa, uint64_t len);
/* Copy in or out of guest memory; -EFAULT if the range is not RAM. */
int vmm_mem_write(const struct vmm_mem *m, uint64_t gpa, const void *src, uint64_t len);
int vmm_mem_read(const struct vmm_mem *m, uint64_t gpa, void *dst, uint64_t len);
/* Sets [gpa, gpa + len) to zero (only where the loader must; fresh memory is
 * already zero); -EFAULT if not RAM. */
int vmm_mem_zero(const struct vmm_mem *m, uint64_t gpa, uint64_t len);
/* Gives [gpa, gpa + len) back to the host: the pages read as zero at the
 * guest's next touch (the balloon, free page reporting). gpa and len must be
 * page aligned (4 KiB, 2 MiB with hugepages) and inside one RAM region.
 * Returns 0, -EFAULT (not RAM, or len 0), -EINVAL (alignment), or the errno
 * of madvise(MADV_DONTNEED) / fallocate(PUNCH_HOLE) on a memfd. */
int vmm_mem_discard(const struct vmm_mem *m, uint64_t gpa, uint64_t len);

/*
 * Replaces the contents of anonymous guest memory with a file of m->size
 * bytes (a snapshot's memory, holes reading as zero), mapped privately over
 * the same host range: nothing is read until the guest touches a page, and
 * its writes stay in this process (copy-on-write). The fd may be closed
 * afterwards. Only for EMBER_MEM_ANON without hugepages (-EOPNOTSUPP
 * otherwise); -EINVAL when the file is smaller than m->size; the errno of
 * fstat/mmap. err says which.
 */
int vmm_mem_map_file(struct vmm_mem *m, int fd, struct ember_error *err);

/* End (exclusive) of the first region: the top of RAM below the hole. */
uint64_t vmm_mem_low_end(const struct vmm_mem *m);

#endif /* EMBER_IO_MEM_H */
