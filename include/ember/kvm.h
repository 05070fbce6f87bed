/* ember/kvm.h - layer 1: a C binding of the Linux KVM ioctl API (x86-64). */
#ifndef EMBER_KVM_H
#define EMBER_KVM_H

/*
 * Overview
 * --------
 * Three opaque handles: struct ekvm_sys (an open /dev/kvm), struct ekvm_vm
 * (a VM file descriptor) and struct ekvm_vcpu (a vCPU file descriptor plus its
 * mmap'ed struct kvm_run). The kernel's own UAPI structures (struct kvm_regs,
 * struct kvm_sregs, ...) are used as they are; they come from Debian's
 * linux-libc-dev (<linux/kvm.h>). Names the installed headers lack but the
 * documented ABI defines are given below under "Newer ABI".
 *
 * Error contract (every function unless it says otherwise)
 * --------------------------------------------------------
 *  - Returns 0 (or a documented non-negative value) on success and a negative
 *    errno value on failure: -EINVAL for a bad argument detected by the
 *    library, or the errno the kernel gave for the ioctl. errno itself is
 *    left as the kernel set it but callers should use the return value.
 *  - The library never prints, never exits, never aborts on a caller's
 *    mistake. Functions that return an out-pointer (**out) set *out to NULL
 *    on every failure, including a bad argument.
 *  - Functions that allocate say so; the caller frees with free() or with
 *    the matching _destroy/_close call.
 *
 * NULL handles (every function, checked by the library, no ioctl issued)
 * ----------------------------------------------------------------------
 *  - A function returning int returns -EINVAL; the fd accessors
 *    (ekvm_sys_fd, ekvm_vm_fd, ekvm_vcpu_fd) return -EINVAL too.
 *  - ekvm_vcpu_id(NULL) returns EKVM_VCPU_ID_NONE (~0UL), which is never the
 *    id of a vCPU (ids above UINT32_MAX are refused at creation).
 *  - ekvm_vcpu_run_area(NULL) and ekvm_vcpu_sync_regs(NULL) return NULL.
 *  - The kvm_run setters (ekvm_vcpu_set_sync_valid/_dirty,
 *    ekvm_vcpu_set_immediate_exit, ekvm_vcpu_set_request_interrupt_window)
 *    and the _close/_destroy calls do nothing.
 *  - ekvm_vcpu_decode_exit(NULL, exit) gives kind EKVM_EXIT_UNSUPPORTED with
 *    raw_reason KVM_EXIT_UNKNOWN; a NULL exit pointer is ignored.
 *
 * Bad file descriptors: who rejects what
 * --------------------------------------
 * The library rejects a negative fd with -EINVAL before any ioctl
 * (ekvm_sys_from_fd, ekvm_vm_irqfd/_remove, struct ekvm_ioeventfd.fd,
 * ekvm_stats_*; resamplefd < 0 means "none", not an error). Any other fd goes
 * to the kernel: a closed fd gives -EBADF (also for a handle whose fd was
 * closed behind its back), a file that is not /dev/kvm -ENOTTY at
 * ekvm_sys_from_fd, an fd that is not an eventfd -EINVAL at irqfd/ioeventfd.
 *
 * Two tiers
 * ---------
 *  - Raw: ekvm_{sys,vm,vcpu}_ioctl_raw() issue any ioctl and return its
 *    non-negative result or -errno. The EKVM_IOCTL() macro checks at compile
 *    time that the argument's size equals the size encoded in the ioctl
 *    number; every typed wrapper in the library goes through it (or
 *    through an integer-argument call for ioctls that take no structure),
 *    except: KVM_REINJECT_CONTROL, whose number encodes no size although it
 *    takes a structure (checked at compile time to encode none);
 *    KVM_GET_XSAVE2 / KVM_SET_XSAVE with a buffer sized by KVM_CAP_XSAVE2
 *    (checked at run time); KVM_SET_SIGNAL_MASK with no mask (NULL).
 *  - Typed wrappers (ekvm_vcpu_get_regs, ...), same -errno contract, for
 *    every KVM ioctl that <linux/kvm.h> (Linux 6.1) defines for x86, except
 *    the ones listed here, which go through the raw tier (a name ending in
 *    '*' stands for every ioctl with that prefix; tests/unit/kvm_coverage.c
 *    checks that each ioctl of the installed header is wrapped or listed):
 *      . other architectures: KVM_ARM_*, KVM_PPC_*, KVM_S390_*,
 *        KVM_ALLOCATE_RMA, KVM_CREATE_SPAPR_TCE*, KVM_DIRTY_TLB,
 *        KVM_GET_ONE_REG, KVM_SET_ONE_REG, KVM_GET_REG_LIST;
 *      . removed from the kernel or replaced by a wrapped successor:
 *        KVM_ASSIGN_*, KVM_DEASSIGN_*, KVM_SET_MEMORY_ALIAS,
 *        KVM_SET_MEMORY_REGION (use USER_MEMORY_REGION), KVM_SET_CPUID (use
 *        CPUID2), KVM_CREATE_PIT, KVM_GET_PIT, KVM_SET_PIT (use the PIT2
 *        ones), KVM_SET_NR_MMU_PAGES, KVM_GET_NR_MMU_PAGES (deprecated);
 *      . Xen and Hyper-V emulation: KVM_XEN_* (Debian's kernel has no
 *        CONFIG_KVM_XEN), KVM_HYPERV_EVENTFD;
 *      . confidential guests (SEV): KVM_MEMORY_ENCRYPT_*;
 *      . ioctls newer than 6.1's headers (KVM_SET_USER_MEMORY_REGION2,
 *        KVM_SET_MEMORY_ATTRIBUTES, KVM_CREATE_GUEST_MEMFD, ...), but for
 *        KVM_PRE_FAULT_MEMORY (6.10), wrapped, defined below where the
 *        headers lack it ("Newer ABI").
 *    The attribute ioctls of an in-kernel device fd (from KVM_CREATE_DEVICE)
 *    are wrapped by ekvm_device_{has,get,set}_attr.
 *  - Convenience calls on top (ekvm_sys_supported_cpuid allocates the right
 *    size, ekvm_vcpu_get_msr reads one MSR, ...).
 *
 * Thread-safety
 * -------------
 * The binding holds no locks and knows no threads. A handle may be used from
 * any thread, but KVM expects vCPU ioctls from the thread that created the
 * vCPU (others work, slower), and the caller serialises uses of one vCPU
 * handle, except ekvm_vcpu_set_immediate_exit(), which is async-signal-safe
 * and may be called from any thread or a signal handler. VM ioctls may be
 * issued concurrently from several threads (KVM serialises them).
 *
 * Fork: handles are not usable in a child after fork() (KVM refuses VM
 * ioctls from another address space).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <linux/kvm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* API version of this header (bumped on incompatible change of the
 * library's own interface, not of KVM's). */
#define EMBER_KVM_API_MAJOR   0
#define EMBER_KVM_API_MINOR   2
#define EMBER_KVM_API_VERSION ((EMBER_KVM_API_MAJOR << 16) | EMBER_KVM_API_MINOR)

/* Returns EMBER_KVM_API_VERSION of the library actually linked. */
unsigned ekvm_library_version(void);

#if defined(__GNUC__)
#define EKVM_MUST_CHECK __attribute__((warn_unused_result))
#else
#define EKVM_MUST_CHECK
#endif

/* ------------------------------------------------------------------------
 * Newer ABI: exits and capabilities that Debian 12's linux-libc-dev (6.1)
 * lacks, taken from the KVM API documentation (Documentation/virt/kvm/api.rst).
 * ------------------------------------------------------------------------ */
#ifndef KVM_EXIT_LOONGARCH_IOCSR
#define KVM_EXIT_LOONGARCH_IOCSR 38 /* Linux 6.7; LoongArch only */
#endif
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39 /* Linux 6.8: guest_memfd / private memory fault */
#endif
#ifndef KVM_EXIT_TDX
#define KVM_EXIT_TDX 40 /* Linux 6.16: Intel TDX TDVMCALL */
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232 /* Linux 6.8 */
#endif
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236 /* Linux 6.10 */
#endif
#ifndef KVM_PRE_FAULT_MEMORY /* Linux 6.10 */
struct kvm_pre_fault_memory {
	__u64 gpa;
	__u64 size;
	__u64 flags;
	__u64 padding[5];
};
#define KVM_PRE_FAULT_MEMORY _IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory)
#endif

/* ------------------------------------------------------------------------
 * Compile-time checked ioctl
 * ------------------------------------------------------------------------ */

/*
 * EKVM_IOCTL(call, handle, req, argp): calls call(handle, req, argp) (one of
 * the *_ioctl_raw functions) after a compile-time check that *argp has the
 * size encoded in req. For ioctls that take no structure use the _raw
 * function directly with an integer argument.
 */
#define EKVM_IOCTL(call, handle, req, argp)                                              \
	({                                                                               \
		_Static_assert(sizeof(*(argp)) == _IOC_SIZE(req),                        \
			       "argument size does not match the ioctl's encoded size"); \
		call((handle), (req), (void *)(argp));                                   \
	})

/* ------------------------------------------------------------------------
 * System: /dev/kvm
 * ------------------------------------------------------------------------ */
struct ekvm_sys;
struct ekvm_vm;
struct ekvm_vcpu;

/* Opens /dev/kvm (O_RDWR|O_CLOEXEC) and checks KVM_GET_API_VERSION == 12.
 * On success *out owns the fd; release with ekvm_sys_close(). On failure
 * *out is NULL and no fd is left open.
 * Errors: -EINVAL (out is NULL), the errno of open(2) (-ENOENT: no
 * /dev/kvm, -EACCES, -EISDIR for a directory, ...), -ENOTTY for a file
 * that is not KVM (its driver does not know KVM_GET_API_VERSION; some
 * drivers answer -EINVAL instead), -EPROTO (API version is not 12),
 * -ENOMEM. */
EKVM_MUST_CHECK int ekvm_sys_open(struct ekvm_sys **out);
/* Same with an explicit device path (-EINVAL for a NULL path). */
EKVM_MUST_CHECK int ekvm_sys_open_path(const char *path, struct ekvm_sys **out);
/* Wraps an already open /dev/kvm fd; on success the handle owns fd, on
 * failure fd stays the caller's (not closed) and *out is NULL.
 * Errors: -EINVAL for a negative fd or a NULL out (no ioctl issued),
 * -EBADF for a closed fd, -ENOTTY for an fd that is not /dev/kvm (a pipe, a
 * regular file, /dev/null), -EPROTO, -ENOMEM. */
EKVM_MUST_CHECK int ekvm_sys_from_fd(int fd, struct ekvm_sys **out);
/* Closes the handle. NULL is allowed. VMs created from it stay valid. */
void ekvm_sys_close(struct ekvm_sys *sys);
/* The underlying fd (owned by the handle), or -EINVAL for NULL. */
int ekvm_sys_fd(const struct ekvm_sys *sys);

/* Raw tier: ioctl(sys fd, req, arg) -> result (>= 0) or -errno. */
int ekvm_sys_ioctl_raw(struct ekvm_sys *sys, unsigned long req, void *arg);

/* KVM_GET_API_VERSION: 12 on every supported kernel, or -errno. */
int ekvm_sys_api_version(struct ekvm_sys *sys);
/* KVM_CHECK_EXTENSION on /dev/kvm: 0 = absent, > 0 = present (value is
 * capability specific), or -errno. */
int ekvm_sys_check_extension(struct ekvm_sys *sys, long cap);
/* KVM_GET_VCPU_MMAP_SIZE: size of the per-vCPU mmap area, or -errno. */
int ekvm_sys_vcpu_mmap_size(struct ekvm_sys *sys);

/* KVM_GET_SUPPORTED_CPUID / KVM_GET_EMULATED_CPUID into a caller buffer.
 * cpuid->nent must hold the capacity; on success it holds the count. -E2BIG
 * if the buffer is too small (KVM then does not say how big it must be). */
int ekvm_sys_get_supported_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 *cpuid);
int ekvm_sys_get_emulated_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 *cpuid);
/* Convenience: allocates a struct kvm_cpuid2 big enough (growing on -E2BIG)
 * and fills it. *out is freed by the caller with free(). */
EKVM_MUST_CHECK int ekvm_sys_supported_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 **out);
/* The entry of leaf fn (and subleaf index, for entries flagged
 * KVM_CPUID_FLAG_SIGNIFCANT_INDEX) in a CPUID table, or NULL (also for a
 * NULL table). No ioctl; the pointer points into c. */
const struct kvm_cpuid_entry2 *ekvm_cpuid_find(const struct kvm_cpuid2 *c, uint32_t fn,
					       uint32_t index);
EKVM_MUST_CHECK int ekvm_sys_emulated_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 **out);

/* KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST into a caller
 * buffer (list->nmsrs = capacity on entry, count on return; -E2BIG with
 * list->nmsrs set to the needed count if too small). */
int ekvm_sys_get_msr_index_list(struct ekvm_sys *sys, struct kvm_msr_list *list);
int ekvm_sys_get_msr_feature_index_list(struct ekvm_sys *sys, struct kvm_msr_list *list);
/* Convenience: allocate and fill; *out freed by the caller with free(). */
EKVM_MUST_CHECK int ekvm_sys_msr_index_list(struct ekvm_sys *sys, struct kvm_msr_list **out);
EKVM_MUST_CHECK int ekvm_sys_msr_feature_index_list(struct ekvm_sys *sys,
						    struct kvm_msr_list **out);
/* KVM_GET_MSRS on /dev/kvm (feature MSRs). Returns the number of entries
 * KVM processed (may be < msrs->nmsrs) or -errno. */
int ekvm_sys_get_feature_msrs(struct ekvm_sys *sys, struct kvm_msrs *msrs);
/* KVM_X86_GET_MCE_CAP_SUPPORTED: the MCG_CAP feature bits KVM can emulate
 * (MCG_CTL_P, MCG_SER_P, ...); the bank count field (bits 0-7) is 0 there,
 * the caller picks 1..32 for ekvm_vcpu_setup_mce. Needs KVM_CAP_MCE. */
int ekvm_sys_get_mce_cap_supported(struct ekvm_sys *sys, uint64_t *mce_cap);
/* KVM_GET_SUPPORTED_HV_CPUID on /dev/kvm (KVM_CAP_SYS_HYPERV_CPUID): the
 * Hyper-V CPUID leaves (0x40000000...) KVM can emulate, into a caller buffer
 * (nent = capacity on entry, count on return; -E2BIG if too small). The
 * allocating form grows the buffer like ekvm_sys_supported_cpuid. */
int ekvm_sys_get_supported_hv_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 *cpuid);
EKVM_MUST_CHECK int ekvm_sys_supported_hv_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 **out);
/* KVM_HAS_DEVICE_ATTR / KVM_GET_DEVICE_ATTR on /dev/kvm (x86: group
 * KVM_X86_GRP_SYSTEM = 0, attr KVM_X86_XCOMP_GUEST_SUPP, a u64 at
 * attr->addr). -ENXIO for an attribute KVM does not have. There is no
 * system-level SET. */
int ekvm_sys_has_device_attr(struct ekvm_sys *sys, const struct kvm_device_attr *attr);
int ekvm_sys_get_device_attr(struct ekvm_sys *sys, const struct kvm_device_attr *attr);

/* KVM_CREATE_VM with a machine type (0 = default). *out owns the VM fd;
 * destroy with ekvm_vm_destroy(). The VM keeps no reference to sys. */
EKVM_MUST_CHECK int ekvm_vm_create(struct ekvm_sys *sys, unsigned long type, struct ekvm_vm **out);

/* ------------------------------------------------------------------------
 * VM
 * ------------------------------------------------------------------------ */

/* Closes the VM fd and frees the handle. vCPUs must be destroyed first
 * (a vCPU keeps the kernel VM alive, but its handle points to this one).
 * NULL is allowed. */
void ekvm_vm_destroy(struct ekvm_vm *vm);
int ekvm_vm_fd(const struct ekvm_vm *vm);
/* Raw tier for VM ioctls. */
int ekvm_vm_ioctl_raw(struct ekvm_vm *vm, unsigned long req, void *arg);
/* KVM_CHECK_EXTENSION on the VM fd (VM-specific answers). */
int ekvm_vm_check_extension(struct ekvm_vm *vm, long cap);
/* KVM_ENABLE_CAP on the VM. */
int ekvm_vm_enable_cap(struct ekvm_vm *vm, const struct kvm_enable_cap *cap);

/* Memory slots: KVM_SET_USER_MEMORY_REGION. flags: KVM_MEM_LOG_DIRTY_PAGES,
 * KVM_MEM_READONLY. -EEXIST when the range overlaps another slot; -EINVAL for
 * misaligned addresses or sizes. A size of 0 deletes the slot. */
int ekvm_vm_set_user_memory_region(struct ekvm_vm *vm, const struct kvm_userspace_memory_region *r);
/* Convenience: fill and set one region. */
int ekvm_vm_set_memory(struct ekvm_vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		       uint64_t size, void *hva);
/* Convenience: delete slot (size 0). -EINVAL for a slot that was never set
 * (or is already deleted): KVM's answer, nothing changes. */
int ekvm_vm_remove_memory(struct ekvm_vm *vm, uint32_t slot);
/* KVM_GET_DIRTY_LOG: bitmap must hold one bit per page of the slot, rounded
 * up to 64 bits. */
int ekvm_vm_get_dirty_log(struct ekvm_vm *vm, uint32_t slot, void *bitmap);
/* KVM_CLEAR_DIRTY_LOG (needs KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled). */
int ekvm_vm_clear_dirty_log(struct ekvm_vm *vm, uint32_t slot, uint64_t first_page,
			    uint32_t num_pages, void *bitmap);

/* KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR (Intel needs these below 4G). */
int ekvm_vm_set_tss_addr(struct ekvm_vm *vm, uint64_t addr);
int ekvm_vm_set_identity_map_addr(struct ekvm_vm *vm, uint64_t addr);

/* In-kernel irqchip: KVM_CREATE_IRQCHIP (PIC + IOAPIC + LAPICs),
 * KVM_GET_IRQCHIP/KVM_SET_IRQCHIP (chip->chip_id selects PIC master/slave or
 * IOAPIC), KVM_IRQ_LINE (level 1/0), KVM_IRQ_LINE_STATUS. */
int ekvm_vm_create_irqchip(struct ekvm_vm *vm);
int ekvm_vm_get_irqchip(struct ekvm_vm *vm, struct kvm_irqchip *chip);
int ekvm_vm_set_irqchip(struct ekvm_vm *vm, const struct kvm_irqchip *chip);
int ekvm_vm_irq_line(struct ekvm_vm *vm, uint32_t irq, uint32_t level);
/* KVM_IRQ_LINE_STATUS: returns 0 or -errno; on success *status (if not
 * NULL) holds KVM's verdict: > 0 delivered, 0 coalesced, < 0 masked. */
int ekvm_vm_irq_line_status(struct ekvm_vm *vm, uint32_t irq, uint32_t level, int32_t *status);
/* KVM_SET_GSI_ROUTING: the caller builds struct kvm_irq_routing with nr
 * entries following it; size is computed from nr. */
int ekvm_vm_set_gsi_routing(struct ekvm_vm *vm, const struct kvm_irq_routing *routing);
/* KVM_SIGNAL_MSI: returns > 0 delivered, 0 blocked, or -errno. */
int ekvm_vm_signal_msi(struct ekvm_vm *vm, const struct kvm_msi *msi);

/* PIT: KVM_CREATE_PIT2 (flags: KVM_PIT_SPEAKER_DUMMY), KVM_GET_PIT2,
 * KVM_SET_PIT2. */
int ekvm_vm_create_pit2(struct ekvm_vm *vm, uint32_t flags);
int ekvm_vm_get_pit2(struct ekvm_vm *vm, struct kvm_pit_state2 *state);
int ekvm_vm_set_pit2(struct ekvm_vm *vm, const struct kvm_pit_state2 *state);

/* irqfd: KVM_IRQFD. ekvm_vm_irqfd registers eventfd fd for gsi;
 * resamplefd >= 0 makes it a level-triggered resample irqfd (-1 = none).
 * ekvm_vm_irqfd_remove deassigns it. */
int ekvm_vm_irqfd(struct ekvm_vm *vm, int fd, uint32_t gsi, int resamplefd);
int ekvm_vm_irqfd_remove(struct ekvm_vm *vm, int fd, uint32_t gsi);

/* ioeventfd: KVM_IOEVENTFD. A guest write of len bytes (0 = any length, 1,
 * 2, 4 or 8) to addr (PIO when pio is true, else MMIO) signals eventfd fd;
 * with has_datamatch only when the value written equals datamatch.
 * Remove with the same arguments. -EEXIST for a duplicate registration. */
struct ekvm_ioeventfd {
	uint64_t addr;
	uint32_t len;
	int fd;
	bool pio;
	bool has_datamatch;
	uint64_t datamatch;
};
int ekvm_vm_ioeventfd(struct ekvm_vm *vm, const struct ekvm_ioeventfd *ev);
int ekvm_vm_ioeventfd_remove(struct ekvm_vm *vm, const struct ekvm_ioeventfd *ev);

/* Coalesced MMIO/PIO zones: KVM_(UN)REGISTER_COALESCED_MMIO. pio=true sets
 * KVM_COALESCED_PIO zones (needs KVM_CAP_COALESCED_PIO). */
int ekvm_vm_register_coalesced(struct ekvm_vm *vm, uint64_t addr, uint32_t size, bool pio);
int ekvm_vm_unregister_coalesced(struct ekvm_vm *vm, uint64_t addr, uint32_t size, bool pio);

/* kvmclock: KVM_GET_CLOCK / KVM_SET_CLOCK. */
int ekvm_vm_get_clock(struct ekvm_vm *vm, struct kvm_clock_data *clock);
int ekvm_vm_set_clock(struct ekvm_vm *vm, const struct kvm_clock_data *clock);

/* MSR filter (KVM_X86_SET_MSR_FILTER) and user-space MSR exits
 * (KVM_CAP_X86_USER_SPACE_MSR with a mask of KVM_MSR_EXIT_REASON_*).
 * Each range with nmsrs > 0 needs a bitmap of (nmsrs + 7) / 8 readable
 * bytes: KVM itself reads whole longs (EKVM_MSR_BITMAP_BYTES(nmsrs) bytes,
 * past the end of a byte-sized buffer), so the library copies each bitmap
 * into a buffer of that size first (allocates; -ENOMEM possible). An
 * unreadable bitmap pointer gives -EFAULT (read with process_vm_readv; a
 * seccomp policy that forbids it makes the copy a plain read), nmsrs above
 * EKVM_MSR_FILTER_MAX_NMSRS -EINVAL; both before any ioctl. A range with
 * nmsrs = 0 is ignored, as KVM does. */
#define EKVM_MSR_BITMAP_BYTES(nmsrs) ((((size_t)(nmsrs) + 63) / 64) * 8)
#define EKVM_MSR_FILTER_MAX_NMSRS    (KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8)
int ekvm_vm_set_msr_filter(struct ekvm_vm *vm, const struct kvm_msr_filter *filter);
int ekvm_vm_enable_user_space_msr(struct ekvm_vm *vm, uint32_t reason_mask);
/* Hypercall exits: KVM_CAP_EXIT_HYPERCALL with a bitmap of hypercall numbers
 * (bit KVM_HC_MAP_GPA_RANGE is the only one KVM 6.1 allows). */
int ekvm_vm_enable_hypercall_exit(struct ekvm_vm *vm, uint64_t nr_mask);

/* KVM_CREATE_DEVICE (in-kernel device; on success dev->fd is a new fd the
 * caller owns). With KVM_CREATE_DEVICE_TEST in dev->flags only checks that
 * the type exists (0, or -ENODEV). */
int ekvm_vm_create_device(struct ekvm_vm *vm, struct kvm_create_device *dev);

/* Device attributes: KVM_HAS_DEVICE_ATTR (0 = present, -ENXIO = absent),
 * KVM_GET_DEVICE_ATTR (KVM writes the value at attr->addr, whose size the
 * attribute defines), KVM_SET_DEVICE_ATTR (KVM reads it from attr->addr).
 * On a VM fd (x86 Linux 6.1 has no VM-level attributes: -ENOTTY there), a
 * vCPU fd (x86: group KVM_VCPU_TSC_CTRL, attr KVM_VCPU_TSC_OFFSET, a u64)
 * or an in-kernel device fd from ekvm_vm_create_device (-EINVAL for a
 * negative fd). */
int ekvm_vm_has_device_attr(struct ekvm_vm *vm, const struct kvm_device_attr *attr);
int ekvm_vm_get_device_attr(struct ekvm_vm *vm, const struct kvm_device_attr *attr);
int ekvm_vm_set_device_attr(struct ekvm_vm *vm, const struct kvm_device_attr *attr);
int ekvm_device_has_attr(int dev_fd, const struct kvm_device_attr *attr);
int ekvm_device_get_attr(int dev_fd, const struct kvm_device_attr *attr);
int ekvm_device_set_attr(int dev_fd, const struct kvm_device_attr *attr);

/* KVM_SET_BOOT_CPU_ID: the vCPU id that starts runnable (the BSP) when the
 * in-kernel LAPIC is used; the others start in KVM_MP_STATE_UNINITIALIZED
 * waiting for INIT/SIPI. Needs KVM_CAP_SET_BOOT_CPU_ID. -EINVAL for an id
 * above UINT32_MAX (library check: KVM would truncate it), -EBUSY once a vCPU
 * exists. */
int ekvm_vm_set_boot_cpu_id(struct ekvm_vm *vm, unsigned long id);
/* KVM_REINJECT_CONTROL: whether the in-kernel PIT re-injects ticks the
 * guest missed (true, KVM's default) or drops them. -ENXIO without a PIT
 * (ekvm_vm_create_pit2). Needs KVM_CAP_REINJECT_CONTROL. */
int ekvm_vm_reinject_control(struct ekvm_vm *vm, bool reinject);
/* KVM_SET_PMU_EVENT_FILTER: the caller builds struct kvm_pmu_event_filter
 * with nevents event codes following it (action KVM_PMU_EVENT_ALLOW or
 * _DENY). -EINVAL for an unknown action or flags, -E2BIG above
 * KVM_PMU_EVENT_FILTER_MAX_EVENTS (300) events. Needs
 * KVM_CAP_PMU_EVENT_FILTER. */
int ekvm_vm_set_pmu_event_filter(struct ekvm_vm *vm, const struct kvm_pmu_event_filter *filter);

/* KVM_GET_STATS_FD of the VM (see "Binary statistics" below): a new
 * read-only fd (O_CLOEXEC) the caller owns and closes, or -errno. Needs
 * KVM_CAP_BINARY_STATS_FD. */
int ekvm_vm_stats_fd(struct ekvm_vm *vm);

/* Dirty ring (KVM_CAP_DIRTY_LOG_RING): ekvm_vm_enable_dirty_ring asks for a
 * per-vCPU ring of `bytes` bytes (a power of two, at least one page, at most
 * KVM_CHECK_EXTENSION(KVM_CAP_DIRTY_LOG_RING), else -E2BIG); only before
 * the first vCPU and only once (-EINVAL after, and for a bad size). vCPUs created afterwards map their
 * ring (the vCPU mmap at KVM_DIRTY_LOG_PAGE_OFFSET pages); pages written in a
 * KVM_MEM_LOG_DIRTY_PAGES slot are then reported there instead of in
 * KVM_GET_DIRTY_LOG (which fails with -ENXIO). Harvest each vCPU with
 * ekvm_vcpu_dirty_ring_harvest, then ekvm_vm_reset_dirty_rings
 * (KVM_RESET_DIRTY_RINGS: re-protects the harvested pages and frees their
 * entries; returns how many, >= 0; -EINVAL for a VM without a ring). A vCPU
 * whose ring is full exits with EKVM_EXIT_DIRTY_RING_FULL. A running vCPU's
 * ring may be harvested from another thread (KVM publishes an entry with
 * release semantics, the library reads it with acquire). */
int ekvm_vm_enable_dirty_ring(struct ekvm_vm *vm, uint32_t bytes);
int ekvm_vm_reset_dirty_rings(struct ekvm_vm *vm);

/* Creates vCPU id: KVM_CREATE_VCPU and mmap of its kvm_run area (and the
 * coalesced MMIO ring page after it when KVM has one, and the dirty ring
 * when ekvm_vm_enable_dirty_ring was called). *out owns them all.
 * -EINVAL for an id out of range: above UINT32_MAX (checked by the library
 * before any ioctl, since KVM would truncate the id to 32 bits and create
 * another vCPU) or at or above KVM_CAP_MAX_VCPU_ID (KVM's check);
 * -EEXIST for a duplicate id. */
EKVM_MUST_CHECK int ekvm_vcpu_create(struct ekvm_vm *vm, unsigned long id, struct ekvm_vcpu **out);

/* ------------------------------------------------------------------------
 * vCPU
 * ------------------------------------------------------------------------ */

/* Unmaps kvm_run and closes the vCPU fd. NULL is allowed. */
void ekvm_vcpu_destroy(struct ekvm_vcpu *vcpu);
int ekvm_vcpu_fd(const struct ekvm_vcpu *vcpu);
/* The id given at creation (0 .. UINT32_MAX), EKVM_VCPU_ID_NONE for NULL. */
#define EKVM_VCPU_ID_NONE (~0UL)
unsigned long ekvm_vcpu_id(const struct ekvm_vcpu *vcpu);
/* The mmap'ed struct kvm_run (valid until ekvm_vcpu_destroy). */
struct kvm_run *ekvm_vcpu_run_area(struct ekvm_vcpu *vcpu);
/* Raw tier for vCPU ioctls. */
int ekvm_vcpu_ioctl_raw(struct ekvm_vcpu *vcpu, unsigned long req, void *arg);

int ekvm_vcpu_get_regs(struct ekvm_vcpu *vcpu, struct kvm_regs *regs);
int ekvm_vcpu_set_regs(struct ekvm_vcpu *vcpu, const struct kvm_regs *regs);
int ekvm_vcpu_get_sregs(struct ekvm_vcpu *vcpu, struct kvm_sregs *sregs);
int ekvm_vcpu_set_sregs(struct ekvm_vcpu *vcpu, const struct kvm_sregs *sregs);
/* KVM_GET_SREGS2 / KVM_SET_SREGS2 (KVM_CAP_SREGS2): the sregs plus the PAE
 * PDPTRs (valid when flags has KVM_SREGS2_FLAGS_PDPTRS_VALID) and without
 * the interrupt bitmap. Set: -EINVAL for flags KVM does not know. */
int ekvm_vcpu_get_sregs2(struct ekvm_vcpu *vcpu, struct kvm_sregs2 *sregs2);
int ekvm_vcpu_set_sregs2(struct ekvm_vcpu *vcpu, const struct kvm_sregs2 *sregs2);
/* KVM_GET_FPU / KVM_SET_FPU: x87 and SSE registers. x86 KVM ignores the
 * mxcsr field here; XSAVE (ekvm_vcpu_get_xsave) carries MXCSR. */
int ekvm_vcpu_get_fpu(struct ekvm_vcpu *vcpu, struct kvm_fpu *fpu);
int ekvm_vcpu_set_fpu(struct ekvm_vcpu *vcpu, const struct kvm_fpu *fpu);
/* KVM_SET_CPUID2 / KVM_GET_CPUID2 (get: nent = capacity on entry; -E2BIG
 * with nent set to the needed count if too small). On -E2BIG the library
 * finds the count with a temporary buffer it allocates and frees, so get
 * may also fail with -ENOMEM. */
int ekvm_vcpu_set_cpuid2(struct ekvm_vcpu *vcpu, const struct kvm_cpuid2 *cpuid);
int ekvm_vcpu_get_cpuid2(struct ekvm_vcpu *vcpu, struct kvm_cpuid2 *cpuid);
int ekvm_vcpu_enable_cap(struct ekvm_vcpu *vcpu, const struct kvm_enable_cap *cap);
int ekvm_vcpu_get_lapic(struct ekvm_vcpu *vcpu, struct kvm_lapic_state *lapic);
int ekvm_vcpu_set_lapic(struct ekvm_vcpu *vcpu, const struct kvm_lapic_state *lapic);
/* KVM_GET_MSRS / KVM_SET_MSRS: return the number of entries KVM processed
 * (it stops at the first MSR it cannot read or write), or -errno. */
int ekvm_vcpu_get_msrs(struct ekvm_vcpu *vcpu, struct kvm_msrs *msrs);
int ekvm_vcpu_set_msrs(struct ekvm_vcpu *vcpu, const struct kvm_msrs *msrs);
/* Convenience: one MSR. -EIO if KVM refused it (processed 0 entries). */
int ekvm_vcpu_get_msr(struct ekvm_vcpu *vcpu, uint32_t index, uint64_t *value);
int ekvm_vcpu_set_msr(struct ekvm_vcpu *vcpu, uint32_t index, uint64_t value);
int ekvm_vcpu_get_mp_state(struct ekvm_vcpu *vcpu, struct kvm_mp_state *mp);
int ekvm_vcpu_set_mp_state(struct ekvm_vcpu *vcpu, const struct kvm_mp_state *mp);
/* KVM_GET_XSAVE / KVM_SET_XSAVE with the legacy 4 KiB struct kvm_xsave. */
int ekvm_vcpu_get_xsave(struct ekvm_vcpu *vcpu, struct kvm_xsave *xsave);
int ekvm_vcpu_set_xsave(struct ekvm_vcpu *vcpu, const struct kvm_xsave *xsave);
/* KVM_GET_XSAVE2: buf of size bytes, size >= KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2)
 * (else -E2BIG); ekvm_vcpu_xsave_size gives that size (>= 4096). To restore
 * a buffer larger than 4096 bytes use ekvm_vcpu_set_xsave2. */
int ekvm_vcpu_xsave_size(struct ekvm_vcpu *vcpu);
int ekvm_vcpu_get_xsave2(struct ekvm_vcpu *vcpu, void *buf, size_t size);
int ekvm_vcpu_set_xsave2(struct ekvm_vcpu *vcpu, const void *buf, size_t size);
int ekvm_vcpu_get_xcrs(struct ekvm_vcpu *vcpu, struct kvm_xcrs *xcrs);
int ekvm_vcpu_set_xcrs(struct ekvm_vcpu *vcpu, const struct kvm_xcrs *xcrs);
int ekvm_vcpu_get_debugregs(struct ekvm_vcpu *vcpu, struct kvm_debugregs *dregs);
int ekvm_vcpu_set_debugregs(struct ekvm_vcpu *vcpu, const struct kvm_debugregs *dregs);
int ekvm_vcpu_get_vcpu_events(struct ekvm_vcpu *vcpu, struct kvm_vcpu_events *ev);
int ekvm_vcpu_set_vcpu_events(struct ekvm_vcpu *vcpu, const struct kvm_vcpu_events *ev);
/* KVM_SET_GUEST_DEBUG (control: KVM_GUESTDBG_ENABLE | _SINGLESTEP |
 * _USE_HW_BP | _USE_SW_BP ...; arch.debugreg[0..3] addresses, [7] DR7). */
int ekvm_vcpu_set_guest_debug(struct ekvm_vcpu *vcpu, const struct kvm_guest_debug *dbg);
/* KVM_KVMCLOCK_CTRL: tell the guest it was paused (-EINVAL if the guest has
 * not enabled kvmclock). */
int ekvm_vcpu_kvmclock_ctrl(struct ekvm_vcpu *vcpu);
/* KVM_GET_TSC_KHZ returns the frequency (> 0) or -errno; KVM_SET_TSC_KHZ. */
int ekvm_vcpu_get_tsc_khz(struct ekvm_vcpu *vcpu);
int ekvm_vcpu_set_tsc_khz(struct ekvm_vcpu *vcpu, uint32_t khz);
/* KVM_TRANSLATE: tr->linear_address in, physical_address/valid/... out. */
int ekvm_vcpu_translate(struct ekvm_vcpu *vcpu, struct kvm_translation *tr);
/* KVM_PRE_FAULT_MEMORY (Linux 6.10+, KVM_CAP_PRE_FAULT_MEMORY): maps the
 * guest-physical range [gpa, gpa + size) in KVM's stage-2 (NPT/EPT) page
 * tables as this vCPU would on a fault, without running the guest (a read
 * access: a copy-on-write page stays unwritten). Both page-aligned, size > 0.
 * Loops until the whole range is mapped; returns 0, or -errno with *left (if
 * not NULL) the bytes not mapped: -ENOENT a page in no memory slot, -EINTR
 * a signal came first, -EINVAL an unaligned or empty range, and also from
 * a kernel before 6.10 (x86 KVM's answer to an unknown vCPU ioctl: check
 * KVM_CAP_PRE_FAULT_MEMORY first). vCPU not in run. */
int ekvm_vcpu_pre_fault_memory(struct ekvm_vcpu *vcpu, uint64_t gpa, uint64_t size, uint64_t *left);
/* KVM_SMI, KVM_NMI, KVM_INTERRUPT (only without an in-kernel irqchip). */
int ekvm_vcpu_smi(struct ekvm_vcpu *vcpu);
int ekvm_vcpu_nmi(struct ekvm_vcpu *vcpu);
int ekvm_vcpu_interrupt(struct ekvm_vcpu *vcpu, uint32_t irq);
/* KVM_SET_VAPIC_ADDR: guest physical address of the virtual APIC page KVM
 * keeps the TPR in (0 turns it off). Needs the in-kernel LAPIC (-EINVAL
 * without); -EINVAL for an address in no memory slot. */
int ekvm_vcpu_set_vapic_addr(struct ekvm_vcpu *vcpu, uint64_t gpa);
/* KVM_TPR_ACCESS_REPORTING: report guest TPR accesses as TprAccess exits
 * (needs the in-kernel LAPIC; KVM_CAP_VAPIC). */
int ekvm_vcpu_tpr_access_reporting(struct ekvm_vcpu *vcpu, bool enabled);

/* sync_regs (KVM_CAP_SYNC_REGS): registers exchanged through kvm_run instead
 * of ioctls. valid: the KVM_SYNC_X86_* sets KVM copies out on every exit.
 * After changing kvm_run->s.regs mark them dirty; KVM loads them on the
 * next run. Both are plain stores into kvm_run (no syscall). */
void ekvm_vcpu_set_sync_valid(struct ekvm_vcpu *vcpu, uint64_t valid_mask);
void ekvm_vcpu_set_sync_dirty(struct ekvm_vcpu *vcpu, uint64_t dirty_mask);
/* Pointer to kvm_run->s.regs (struct kvm_sync_regs). */
struct kvm_sync_regs *ekvm_vcpu_sync_regs(struct ekvm_vcpu *vcpu);

/* immediate_exit: when set, the next KVM_RUN returns at once with an Intr
 * exit, and so does every KVM_RUN after it until the caller clears it
 * (ekvm_vcpu_set_immediate_exit(vcpu, false)); KVM never clears it.
 * Async-signal-safe; callable from any thread. It only affects a KVM_RUN
 * that has not yet entered the guest: to kick a vCPU already inside KVM_RUN
 * set it, then send the vCPU's thread a signal that has a handler (not
 * SIG_IGN, not a default action) and is not blocked while in KVM_RUN (see
 * ekvm_vcpu_set_signal_mask); KVM_RUN then returns EINTR, reported as an
 * Intr exit. SA_RESTART on that handler makes no difference: KVM_RUN
 * fails with a plain EINTR, which the kernel never restarts (tested). The
 * set-then-signal order closes the race with a vCPU that is just entering
 * KVM_RUN. */
void ekvm_vcpu_set_immediate_exit(struct ekvm_vcpu *vcpu, bool on);
/* request_interrupt_window: ask for an IrqWindowOpen exit when the guest can
 * take an interrupt (only meaningful without an in-kernel irqchip). */
void ekvm_vcpu_set_request_interrupt_window(struct ekvm_vcpu *vcpu, bool on);

/* KVM_GET_NESTED_STATE / KVM_SET_NESTED_STATE (KVM_CAP_NESTED_STATE, whose
 * value is the largest state size): the state of a guest hypervisor's
 * guest. state->size holds the buffer's size on entry (header included);
 * -E2BIG with state->size set to the needed size if too small. Set: state
 * ->format must match the host (KVM_STATE_NESTED_FORMAT_SVM or _VMX), else
 * -EINVAL; flags KVM refuses in the vCPU's state (e.g. no GIF_SET while
 * EFER.SVME is clear) also give -EINVAL. ekvm_vcpu_nested_state_size gives
 * KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE) (0: not supported). */
int ekvm_vcpu_nested_state_size(struct ekvm_vcpu *vcpu);
int ekvm_vcpu_get_nested_state(struct ekvm_vcpu *vcpu, struct kvm_nested_state *state);
int ekvm_vcpu_set_nested_state(struct ekvm_vcpu *vcpu, const struct kvm_nested_state *state);

/* KVM_SET_SIGNAL_MASK: the thread's signal mask while it is inside KVM_RUN
 * (signals 1..64 of *mask; KVM restores the thread's own mask on return).
 * NULL removes it (KVM_RUN runs with the thread's mask). Lets a thread keep
 * a kick signal blocked outside KVM_RUN and take it only inside, where it
 * interrupts the guest (an Intr exit). */
int ekvm_vcpu_set_signal_mask(struct ekvm_vcpu *vcpu, const sigset_t *mask);

/* Machine check: KVM_X86_SETUP_MCE with an MCG_CAP value (bank count in
 * bits 0-7, 1..32, other bits within ekvm_sys_get_mce_cap_supported; else
 * -EINVAL), then KVM_X86_SET_MCE injects an error into a bank (-EINVAL for
 * a bank beyond the count or a status without MCI_STATUS_VAL, bit 63). A
 * corrected error (MCI_STATUS_UC clear) only lands in the bank's MSRs
 * (MSR_IA32_MC0_STATUS + 4 * bank, ...); an uncorrected one also raises #MC
 * in the guest when its MCG_STATUS/CR4.MCE allow, else shuts it down. */
int ekvm_vcpu_setup_mce(struct ekvm_vcpu *vcpu, uint64_t mcg_cap);
int ekvm_vcpu_set_mce(struct ekvm_vcpu *vcpu, const struct kvm_x86_mce *mce);

/* vCPU device attributes: see ekvm_vm_has_device_attr. */
int ekvm_vcpu_has_device_attr(struct ekvm_vcpu *vcpu, const struct kvm_device_attr *attr);
int ekvm_vcpu_get_device_attr(struct ekvm_vcpu *vcpu, const struct kvm_device_attr *attr);
int ekvm_vcpu_set_device_attr(struct ekvm_vcpu *vcpu, const struct kvm_device_attr *attr);

/* KVM_GET_SUPPORTED_HV_CPUID on the vCPU (KVM_CAP_HYPERV_CPUID): as
 * ekvm_sys_get_supported_hv_cpuid, with the leaves this vCPU's
 * configuration allows. */
int ekvm_vcpu_get_supported_hv_cpuid(struct ekvm_vcpu *vcpu, struct kvm_cpuid2 *cpuid);

/* KVM_GET_STATS_FD of the vCPU: as ekvm_vm_stats_fd. */
int ekvm_vcpu_stats_fd(struct ekvm_vcpu *vcpu);

/* Harvests up to max entries of the vCPU's dirty ring into out (each: slot,
 * offset = page index within the slot, flags), marking each for
 * ekvm_vm_reset_dirty_rings. Returns the count (0 = nothing new), -ENODEV if
 * the VM has no dirty ring (ekvm_vm_enable_dirty_ring was not called before
 * this vCPU was created), -EINVAL for a NULL out with max > 0. Caller
 * serialises harvesters of one vCPU. No allocation, no syscall. */
int ekvm_vcpu_dirty_ring_harvest(struct ekvm_vcpu *vcpu, struct kvm_dirty_gfn *out, size_t max);

/* Coalesced MMIO ring (KVM_CAP_COALESCED_MMIO; the page at
 * KVM_COALESCED_MMIO_PAGE_OFFSET of the vCPU mmap). Pops the oldest entry
 * into *entry: returns 1 if one was read, 0 if the ring is empty, -ENODEV
 * if KVM has no ring. Caller serialises readers of one VM's ring. */
int ekvm_vcpu_coalesced_mmio_pop(struct ekvm_vcpu *vcpu, struct kvm_coalesced_mmio *entry);

/* ------------------------------------------------------------------------
 * Exits
 * ------------------------------------------------------------------------ */

/* The decoded exit kinds: the value of every KVM_EXIT_* exit_reason it
 * mirrors, plus EKVM_EXIT_IO_IN / EKVM_EXIT_IO_OUT / EKVM_EXIT_MMIO_READ /
 * EKVM_EXIT_MMIO_WRITE split by direction (kvm-ioctls' VcpuExit) and
 * EKVM_EXIT_UNSUPPORTED for a number the library does not know. */
enum ekvm_exit_kind {
	EKVM_EXIT_UNKNOWN = KVM_EXIT_UNKNOWN,
	EKVM_EXIT_EXCEPTION = KVM_EXIT_EXCEPTION,
	EKVM_EXIT_HYPERCALL = KVM_EXIT_HYPERCALL,
	EKVM_EXIT_DEBUG = KVM_EXIT_DEBUG,
	EKVM_EXIT_HLT = KVM_EXIT_HLT,
	EKVM_EXIT_IRQ_WINDOW_OPEN = KVM_EXIT_IRQ_WINDOW_OPEN,
	EKVM_EXIT_SHUTDOWN = KVM_EXIT_SHUTDOWN,
	EKVM_EXIT_FAIL_ENTRY = KVM_EXIT_FAIL_ENTRY,
	EKVM_EXIT_INTR = KVM_EXIT_INTR,
	EKVM_EXIT_SET_TPR = KVM_EXIT_SET_TPR,
	EKVM_EXIT_TPR_ACCESS = KVM_EXIT_TPR_ACCESS,
	EKVM_EXIT_S390_SIEIC = KVM_EXIT_S390_SIEIC,
	EKVM_EXIT_S390_RESET = KVM_EXIT_S390_RESET,
	EKVM_EXIT_DCR = KVM_EXIT_DCR,
	EKVM_EXIT_NMI = KVM_EXIT_NMI,
	EKVM_EXIT_INTERNAL_ERROR = KVM_EXIT_INTERNAL_ERROR,
	EKVM_EXIT_OSI = KVM_EXIT_OSI,
	EKVM_EXIT_PAPR_HCALL = KVM_EXIT_PAPR_HCALL,
	EKVM_EXIT_S390_UCONTROL = KVM_EXIT_S390_UCONTROL,
	EKVM_EXIT_WATCHDOG = KVM_EXIT_WATCHDOG,
	EKVM_EXIT_S390_TSCH = KVM_EXIT_S390_TSCH,
	EKVM_EXIT_EPR = KVM_EXIT_EPR,
	EKVM_EXIT_SYSTEM_EVENT = KVM_EXIT_SYSTEM_EVENT,
	EKVM_EXIT_S390_STSI = KVM_EXIT_S390_STSI,
	EKVM_EXIT_IOAPIC_EOI = KVM_EXIT_IOAPIC_EOI,
	EKVM_EXIT_HYPERV = KVM_EXIT_HYPERV,
	EKVM_EXIT_ARM_NISV = KVM_EXIT_ARM_NISV,
	EKVM_EXIT_X86_RDMSR = KVM_EXIT_X86_RDMSR,
	EKVM_EXIT_X86_WRMSR = KVM_EXIT_X86_WRMSR,
	EKVM_EXIT_DIRTY_RING_FULL = KVM_EXIT_DIRTY_RING_FULL,
	EKVM_EXIT_AP_RESET_HOLD = KVM_EXIT_AP_RESET_HOLD,
	EKVM_EXIT_X86_BUS_LOCK = KVM_EXIT_X86_BUS_LOCK,
	EKVM_EXIT_XEN = KVM_EXIT_XEN,
	EKVM_EXIT_RISCV_SBI = KVM_EXIT_RISCV_SBI,
	EKVM_EXIT_RISCV_CSR = KVM_EXIT_RISCV_CSR,
	EKVM_EXIT_NOTIFY = KVM_EXIT_NOTIFY,
	EKVM_EXIT_LOONGARCH_IOCSR = KVM_EXIT_LOONGARCH_IOCSR,
	EKVM_EXIT_MEMORY_FAULT = KVM_EXIT_MEMORY_FAULT,
	EKVM_EXIT_TDX = KVM_EXIT_TDX,
	/* direction-split IO and MMIO (KVM_EXIT_IO = 2, KVM_EXIT_MMIO = 6 are
	 * never reported as such) */
	EKVM_EXIT_IO_IN = 100,
	EKVM_EXIT_IO_OUT,
	EKVM_EXIT_MMIO_READ,
	EKVM_EXIT_MMIO_WRITE,
	/* exit_reason holds a number this library does not know */
	EKVM_EXIT_UNSUPPORTED,
	EKVM_EXIT_KIND_MAX
};

/*
 * A decoded exit. Pointers point into the vCPU's kvm_run area: they are
 * valid until the next ekvm_vcpu_run() or ekvm_vcpu_destroy(). Where the
 * caller must answer the exit (IoIn, MmioRead, X86Rdmsr/Wrmsr, Hypercall),
 * it writes through the pointer before the next run.
 */
struct ekvm_exit {
	enum ekvm_exit_kind kind;
	uint32_t raw_reason; /* kvm_run->exit_reason as KVM gave it */
	union {
		/* IO_IN / IO_OUT: `count` accesses of `size` bytes each at
		 * `port` (count > 1 for string I/O: rep ins/outs). data holds
		 * size * count bytes: for IO_OUT what the guest wrote, for
		 * IO_IN the buffer the caller fills. data is never NULL and
		 * len never 0 for these kinds: a kvm_run I/O exit with a
		 * direction other than in/out, a size other than 1, 2 or 4, a
		 * count of 0 or a data_offset/length outside the vCPU mapping
		 * decodes to EKVM_EXIT_UNSUPPORTED with port, size and count
		 * set, data NULL and len 0. */
		struct {
			uint16_t port;
			uint8_t size;
			uint32_t count;
			uint8_t *data;
			uint32_t len; /* size * count, bounded by the run area */
		} io;
		/* MMIO_READ / MMIO_WRITE: len is 1..8. For MMIO_READ fill data.
		 * A kvm_run MMIO exit with a len of 0 or above 8 decodes to
		 * EKVM_EXIT_UNSUPPORTED with addr set, data NULL, len 0. */
		struct {
			uint64_t addr;
			uint8_t *data;
			uint32_t len;
		} mmio;
		/* EXCEPTION */
		struct {
			uint32_t exception;
			uint32_t error_code;
		} ex;
		/* HYPERCALL: the caller may set *ret (RAX on return). */
		struct {
			uint64_t nr;
			uint64_t args[6];
			uint64_t *ret;
			uint32_t longmode;
			uint64_t flags;
		} hypercall;
		/* DEBUG */
		struct kvm_debug_exit_arch debug;
		/* FAIL_ENTRY */
		struct {
			uint64_t hardware_entry_failure_reason;
			uint32_t cpu;
		} fail_entry;
		/* INTERNAL_ERROR: ndata bounded by 16 */
		struct {
			uint32_t suberror;
			uint32_t ndata;
			uint64_t data[16];
		} internal;
		/* SYSTEM_EVENT: type is KVM_SYSTEM_EVENT_*; ndata bounded by 16 */
		struct {
			uint32_t type;
			uint32_t ndata;
			uint64_t data[16];
		} system_event;
		/* X86_RDMSR / X86_WRMSR: reason is KVM_MSR_EXIT_REASON_*. For
		 * RDMSR set *data (and *error = 0), or *error = 1 to inject #GP.
		 * For WRMSR value holds what the guest wrote; set *error = 1 to
		 * inject #GP. */
		struct {
			uint32_t index;
			uint32_t reason;
			uint64_t value;
			uint64_t *data;
			uint8_t *error;
		} msr;
		/* IOAPIC_EOI */
		struct {
			uint8_t vector;
		} eoi;
		/* TPR_ACCESS */
		struct {
			uint64_t rip;
			uint32_t is_write;
		} tpr_access;
		/* HYPERV / XEN: pointers to the kernel structures in kvm_run */
		struct kvm_hyperv_exit *hyperv;
		struct kvm_xen_exit *xen;
		/* MEMORY_FAULT */
		struct {
			uint64_t flags;
			uint64_t gpa;
			uint64_t size;
		} memory_fault;
		/* NOTIFY */
		struct {
			uint32_t flags;
		} notify;
		/* EPR: the caller sets *epr */
		struct {
			uint32_t *epr;
		} epr;
		/* OSI / PAPR / S390 / RISC-V / LoongArch / DCR / ARM / TDX:
		 * kinds that x86 never produces; decoded to the kind only, the
		 * raw union is at ekvm_vcpu_run_area(vcpu). */
	} u;
};

/*
 * KVM_RUN, then decode kvm_run into *exit. Returns 0 with *exit filled, or
 * -errno for a failed KVM_RUN other than EINTR. KVM_RUN failing with EINTR
 * (a signal, or immediate_exit set) is reported as an EKVM_EXIT_INTR exit
 * with a 0 return, as KVM itself sets exit_reason = KVM_EXIT_INTR then.
 * No allocation, no syscall besides the ioctl.
 */
int ekvm_vcpu_run(struct ekvm_vcpu *vcpu, struct ekvm_exit *exit);
/* Decodes the current kvm_run exit without running (e.g. after a raw
 * KVM_RUN). Same contract for pointers as ekvm_vcpu_run. */
void ekvm_vcpu_decode_exit(struct ekvm_vcpu *vcpu, struct ekvm_exit *exit);

/* Name of a decoded kind ("IoIn", "Hlt", ...); "Invalid" for an out of range
 * value. Never NULL; static storage. */
const char *ekvm_exit_kind_name(enum ekvm_exit_kind kind);
/* Name of a raw KVM_EXIT_* number ("KVM_EXIT_HLT"), or NULL if unknown. */
const char *ekvm_exit_reason_name(uint32_t reason);
/* Name of a KVM_SYSTEM_EVENT_* type, or NULL. */
const char *ekvm_system_event_name(uint32_t type);
/* Name of a KVM_INTERNAL_ERROR_* suberror, or NULL. */
const char *ekvm_internal_error_name(uint32_t suberror);

/* ------------------------------------------------------------------------
 * Binary statistics (the fd of ekvm_vm_stats_fd / ekvm_vcpu_stats_fd)
 * ------------------------------------------------------------------------ */

/* Reads the struct kvm_stats_header at offset 0. -EPROTO for a short read
 * or a header the library refuses to trust (name_size 0 or above 4096,
 * more than 65536 descriptors); -EINVAL for a negative fd. */
int ekvm_stats_read_header(int stats_fd, struct kvm_stats_header *hdr);
/* Size of one descriptor (struct kvm_stats_desc + name_size bytes). */
size_t ekvm_stats_desc_size(const struct kvm_stats_header *hdr);
/* Reads all hdr->num_desc descriptors into a buffer the caller frees with
 * free(); descriptor i is at (char *)*out + i * ekvm_stats_desc_size(hdr).
 * Each name is NUL-terminated by the library (the last byte of its field).
 * -EPROTO for a short read, -ENOMEM. */
EKVM_MUST_CHECK int ekvm_stats_read_descriptors(int stats_fd, const struct kvm_stats_header *hdr,
						struct kvm_stats_desc **out);
/* Reads the value(s) of one descriptor: up to n of its desc->size u64s
 * (n < desc->size reads the first n). Returns the count read or -errno. */
int ekvm_stats_read_values(int stats_fd, const struct kvm_stats_header *hdr,
			   const struct kvm_stats_desc *desc, uint64_t *values, size_t n);
/* Convenience: the first value of the statistic called name (header and
 * descriptors read, allocated and freed inside). -ENOENT for no such name. */
int ekvm_stats_read_by_name(int stats_fd, const char *name, uint64_t *value);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_KVM_H */
