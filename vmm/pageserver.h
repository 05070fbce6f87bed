/* vmm/pageserver.h - the userfaultfd page server: guest memory served on demand from files, on a thread of its own. */
#ifndef EMBER_VMM_PAGESERVER_H
#define EMBER_VMM_PAGESERVER_H

#include <ember/vmm.h>

#include <stdbool.h>
#include <stdint.h>

/*
 * A page server owns one userfaultfd on which one host range (guest RAM's
 * mapping, 4 KiB pages) is registered in MISSING mode, and a thread of its
 * own that answers each fault: a page the guest, a device (the I/O
 * thread's copies) or KVM itself (its get_user_pages on a vCPU's access)
 * touches while it is absent blocks until the thread has put it in place
 * with UFFDIO_COPY, or UFFDIO_ZEROPAGE when the source holds zeros (a
 * sparse file's hole). Not the I/O thread: the I/O thread faults on guest
 * memory itself (virtqueues), and a thread that must serve its own fault
 * waits forever.
 *
 * Each page's source is one of: the base (a file given to
 * vmm_ps_set_base, page at offset base_off + page offset; none: zeros),
 * the swap file (written by vmm_ps_swap_out) or zero (discarded by the
 * guest: vmm_ps_discarded). Supported memory: private anonymous and a
 * shared memfd (shmem), without hugepages; nothing else registers
 * (-EOPNOTSUPP).
 */

struct vmm_pageserver;

struct vmm_ps_stats {
	uint64_t faults;       /* faults served */
	uint64_t bytes_copied; /* bytes put in place with UFFDIO_COPY */
	uint64_t zero_pages;   /* faults answered with UFFDIO_ZEROPAGE */
	uint64_t errors;       /* faults whose source could not be read (served zero) */
	uint64_t out_pages;    /* pages written out and released by the last vmm_ps_swap_out */
	uint64_t out_total;    /* pages released by every vmm_ps_swap_out */
	uint64_t swapped;      /* pages whose source is now the swap file and not yet back */
	uint64_t in_pages;     /* pages vmm_ps_populate brought back */
};

/*
 * Opens the userfaultfd for [host, host + size) (4 KiB aligned) and starts
 * the serving thread; nothing is registered yet (vmm_ps_register). The
 * thread is made once, by the VM's start (the threads that register later,
 * the control thread, may not create threads). memfd: the shmem file the range maps (MAP_SHARED, offset 0), or
 * -1 for private anonymous memory. seccomp: load the page server's filter
 * on its thread. userfaultfd comes from the syscall, else /dev/userfaultfd.
 * 0, or -EINVAL, -EOPNOTSUPP (the kernel lacks a feature), the errno of
 * userfaultfd / ioctl / pthread_create; err says which.
 */
int vmm_ps_create(struct vmm_pageserver **out, uint8_t *host, uint64_t size, int memfd,
		  bool seccomp, struct ember_error *err);
/* Stops the thread and closes the userfaultfd (which unregisters: every
 * blocked faulter then sees plain memory). NULL is fine. Not while another
 * thread calls into ps. */
void vmm_ps_destroy(struct vmm_pageserver *ps);
/* Registers the range in MISSING mode: absent pages are served from now
 * on. 0, -EINVAL (registered already), -EOPNOTSUPP (this memory cannot be:
 * a private file mapping, hugetlb), the ioctl's errno; err says which. */
int vmm_ps_register(struct vmm_pageserver *ps, struct ember_error *err);
/* Unregisters; every page's source is the base again. Pages still absent
 * then read as the kernel gives them (zero, or the memfd's hole). */
void vmm_ps_unregister(struct vmm_pageserver *ps);
bool vmm_ps_registered(struct vmm_pageserver *ps);

/* Makes fd (dup'ed) the base source: page at offset o of the range comes
 * from fd at base_off + o. The file must hold the whole range (-EINVAL
 * otherwise), and the range's pages must not be present yet. */
int vmm_ps_set_base(struct vmm_pageserver *ps, int fd, uint64_t base_off, struct ember_error *err);

/* Writes every resident page of the range to the swap file (created in dir,
 * unlinked, owner-only; all-zero pages left as holes), then releases them
 * (MADV_DONTNEED, or a hole punched in the memfd): their next touch is
 * served from the swap file. The caller keeps every other writer of the
 * memory stopped meanwhile (vCPUs and devices paused). Returns the pages
 * released, or -errno; err says which. */
int64_t vmm_ps_swap_out(struct vmm_pageserver *ps, const char *dir, struct ember_error *err);
/* Puts every page whose source is the swap file (all_pages: every absent
 * page) in place now. 0 or -errno. Any thread. */
int vmm_ps_populate(struct vmm_pageserver *ps, bool all_pages, struct ember_error *err);
/* [off, off + len) of the range was discarded (balloon, reset): it reads as
 * zero from now on. Any thread, never blocks. */
void vmm_ps_discarded(void *ps, uint64_t off, uint64_t len);
/* The counters. Any thread. */
void vmm_ps_stats(struct vmm_pageserver *ps, struct vmm_ps_stats *st);
/* True while a base source is set (a uffd restore): disabling swap keeps the server. */
bool vmm_ps_has_base(struct vmm_pageserver *ps);

#endif /* EMBER_VMM_PAGESERVER_H */
