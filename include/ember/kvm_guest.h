/* ember/kvm_guest.h - layer 1 convenience tier: guest memory in one call, vCPUs put in real, 32-bit or 64-bit mode. */
#ifndef EMBER_KVM_GUEST_H
#define EMBER_KVM_GUEST_H

/*
 * For a program that runs a small piece of code in a micro-VM (the way
 * Hyperlight or Solo5 use KVM) and does not want to write descriptor tables
 * and page tables itself. Built only on the binding (<ember/kvm.h>): it
 * knows no threads and keeps no global state.
 *
 *   struct ekvm_guest_mem *mem;
 *   ekvm_guest_mem_create(vm, 0, 0, 2 << 20, &mem);         // 2 MiB at GPA 0
 *   ekvm_guest_mem_write(mem, 0x100000, code, sizeof(code));
 *   ekvm_vcpu_create(vm, 0, &vcpu);
 *   ekvm_vcpu_setup_long64(vcpu, mem, NULL, 0x100000, 0x80000); // RIP, RSP
 *   ekvm_vcpu_run(vcpu, &exit);
 *
 * Error contract: as <ember/kvm.h> (0 or a negative errno, never prints,
 * never exits); -EINVAL for a NULL handle or a bad argument, and then
 * nothing is changed. When a vCPU ioctl itself fails (rare: a dead VM, an
 * invalid state) the tables may already be written and the special
 * registers set; the vCPU is then to be set up again.
 *
 * Thread-safety: none of its own. A guest memory handle may be read and
 * written from any thread; the accessors copy bytes without ordering
 * against a running guest (as a DMA engine would), so the caller
 * synchronises with the guest where it needs to. The ekvm_vcpu_setup_*
 * calls follow the vCPU's rules (the caller serialises uses of one vCPU).
 */

#include <stddef.h>
#include <stdint.h>

#include <ember/kvm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Guest memory
 * ------------------------------------------------------------------------ */

/* Host memory mapped into one memory slot of a VM. */
struct ekvm_guest_mem;

/* Allocates size bytes of zeroed, page-aligned anonymous host memory (mmap,
 * MAP_NORESERVE: pages are taken when first touched) and maps it at guest
 * physical address gpa in memory slot `slot` of vm. gpa and size must be
 * multiples of 4 KiB, size > 0 and gpa + size must not wrap. The slot must
 * be unused: KVM takes a used slot of the same size as a move of that slot
 * (the binding cannot tell). *out owns the mapping; free it with
 * ekvm_guest_mem_destroy() before destroying the VM. On failure *out is NULL
 * (when out is not NULL) and nothing stays mapped. Errors: -EINVAL (NULL vm
 * or out, bad alignment, size 0, wrap), -ENOMEM (no host memory), or the
 * kernel's error for the slot (-EEXIST: the range overlaps another slot;
 * -EINVAL: slot number out of range, or a used slot of another size). */
EKVM_MUST_CHECK int ekvm_guest_mem_create(struct ekvm_vm *vm, uint32_t slot, uint64_t gpa,
					  uint64_t size, struct ekvm_guest_mem **out);
/* Removes the slot from the VM and unmaps the host memory. Must be called
 * while the VM handle is still alive (before ekvm_vm_destroy); vCPUs may
 * still exist but must not be running. NULL is allowed. */
void ekvm_guest_mem_destroy(struct ekvm_guest_mem *mem);

/* The VM, slot, first guest physical address, size in bytes and the host
 * address of the first byte (0 / NULL for a NULL handle). */
struct ekvm_vm *ekvm_guest_mem_vm(const struct ekvm_guest_mem *mem);
uint32_t ekvm_guest_mem_slot(const struct ekvm_guest_mem *mem);
uint64_t ekvm_guest_mem_gpa(const struct ekvm_guest_mem *mem);
uint64_t ekvm_guest_mem_size(const struct ekvm_guest_mem *mem);
void *ekvm_guest_mem_host(const struct ekvm_guest_mem *mem);

/* The host address of guest physical [gpa, gpa + len), or NULL when any
 * byte of that range is outside the memory (or mem is NULL). len 0 asks
 * for a valid position: gpa may then equal the end of the memory. The
 * pointer stays valid until ekvm_guest_mem_destroy. */
void *ekvm_guest_mem_ptr(const struct ekvm_guest_mem *mem, uint64_t gpa, uint64_t len);
/* Copy len bytes between guest physical gpa and buf. -EFAULT when any byte
 * of [gpa, gpa + len) is outside the memory (nothing is copied), -EINVAL
 * for a NULL mem (or a NULL buf with len > 0). */
int ekvm_guest_mem_read(const struct ekvm_guest_mem *mem, uint64_t gpa, void *buf, size_t len);
int ekvm_guest_mem_write(struct ekvm_guest_mem *mem, uint64_t gpa, const void *buf, size_t len);

/* ------------------------------------------------------------------------
 * vCPU modes
 * ------------------------------------------------------------------------
 *
 * Each call sets the vCPU's special registers (segments, descriptor tables,
 * CR0/CR3/CR4/EFER) and its general registers: RIP = entry, RSP = stack,
 * RFLAGS = 0x2 (interrupts off), every other general register 0. Call it
 * before the vCPU first runs (or to restart it). It does not touch CPUID:
 * a 64-bit guest runs with KVM's default CPUID unless the caller sets one
 * (ekvm_sys_supported_cpuid + ekvm_vcpu_set_cpuid2).
 *
 * Protected and long mode need tables in guest memory. They go in one
 * page-aligned block at tables->gpa (EKVM_GUEST_TABLES_GPA by default),
 * laid out as
 *
 *   +0x0000  GDT: null, EKVM_GUEST_SEL_CODE64, _DATA, _CODE32, _TSS (16 bytes)
 *   +0x0800  a 104-byte TSS with no I/O bitmap (TR points at it)
 *   +0x1000  PML4 (long mode), one entry
 *   +0x2000  PDPT (long mode): 1 GiB pages, or pointers to the PDs
 *   +0x3000  with 2 MiB pages, one PD per GiB mapped
 *
 * which is ekvm_guest_tables_size() bytes; it must lie inside mem. The
 * guest may use the selectors below (e.g. to reload segments). Writing the
 * tables again for a second vCPU with the same arguments writes the same
 * bytes, so vCPUs can share one block.
 *
 * Long mode maps guest physical [0, map_size) identity (virtual = physical)
 * with 2 MiB or 1 GiB pages, present, writable, supervisor, executable, at
 * CPL 0. 1 GiB pages need CPUID 0x80000001 EDX bit 26 (pdpe1gb) in the
 * guest's CPUID; without it the guest's first access faults (a triple
 * fault: no IDT is loaded). An address beyond the memory slots but inside
 * map_size reaches the host as an MMIO exit.
 */

/* GDT selectors of the tables block. */
#define EKVM_GUEST_SEL_CODE64 0x08 /* 64-bit code, DPL 0 */
#define EKVM_GUEST_SEL_DATA   0x10 /* flat 4 GiB read/write data */
#define EKVM_GUEST_SEL_CODE32 0x18 /* flat 4 GiB 32-bit code */
#define EKVM_GUEST_SEL_TSS    0x20 /* 64-bit/32-bit busy TSS */

/* Where the tables go when the caller passes NULL tables (GPA 4 KiB, so
 * the real-mode IVT page stays free). */
#define EKVM_GUEST_TABLES_GPA 0x1000ull

#define EKVM_GUEST_PAGE_2M (2ull << 20)
#define EKVM_GUEST_PAGE_1G (1ull << 30)
/* Largest map_size: one PML4 entry. */
#define EKVM_GUEST_MAP_MAX (512ull << 30)

struct ekvm_guest_tables {
	/* Page-aligned GPA of the tables block, inside mem (and below 4 GiB
	 * for 32-bit protected mode). */
	uint64_t gpa;
	/* Long mode: bytes identity-mapped from GPA 0, rounded up to
	 * page_size; 0 = up to the end of mem. At most EKVM_GUEST_MAP_MAX. */
	uint64_t map_size;
	/* Long mode: EKVM_GUEST_PAGE_2M or EKVM_GUEST_PAGE_1G; 0 = 2 MiB. */
	uint64_t page_size;
};

/* Bytes of the tables block for long mode with this map (map_size already
 * resolved, not 0) and page size: 0x3000, plus 4 KiB per GiB with 2 MiB
 * pages. 0 for an invalid page size or a map_size of 0 or above
 * EKVM_GUEST_MAP_MAX. Protected mode uses the first 0x1000 bytes only. */
uint64_t ekvm_guest_tables_size(uint64_t map_size, uint64_t page_size);

/* Real mode (CR0.PE = 0): CS = cs, IP = ip, SS = ss, SP = sp, DS = ES =
 * FS = GS = 0, each segment's base its selector * 16, 64 KiB limits. Needs
 * no guest memory. -EINVAL for a NULL vcpu, or the ioctl's error. */
int ekvm_vcpu_setup_real(struct ekvm_vcpu *vcpu, uint16_t cs, uint16_t ip, uint16_t ss,
			 uint16_t sp);

/* 32-bit protected mode, paging off: CS = EKVM_GUEST_SEL_CODE32, the data
 * and stack segments EKVM_GUEST_SEL_DATA, flat 4 GiB; CR0 = PE | ET | NE;
 * EIP = entry, ESP = stack. Writes the GDT and TSS (tables: NULL for the
 * defaults; map_size and page_size are ignored). -EINVAL for a NULL vcpu or
 * mem, a tables block that is not page-aligned, not inside mem, or not
 * below 4 GiB, mem of another VM than the vCPU's; or the ioctl's error. */
int ekvm_vcpu_setup_prot32(struct ekvm_vcpu *vcpu, struct ekvm_guest_mem *mem,
			   const struct ekvm_guest_tables *tables, uint32_t entry, uint32_t stack);

/* 64-bit long mode, CPL 0: CS = EKVM_GUEST_SEL_CODE64 (L = 1), data and
 * stack EKVM_GUEST_SEL_DATA; CR0 = PE | MP | ET | NE | WP | PG, CR4 = PAE |
 * OSFXSR | OSXMMEXCPT (SSE usable), EFER = LME | LMA, CR3 = the PML4;
 * identity map as described above. RIP = entry, RSP = stack. Writes the
 * GDT, TSS and page tables (tables: NULL for the defaults: the block at
 * EKVM_GUEST_TABLES_GPA, 2 MiB pages up to the end of mem). A vCPU with no
 * CPUID yet gets one that has long mode and nothing else (leaves 0x80000000
 * and 0x80000001.EDX.LM: newer KVMs refuse EFER.LME without it; every other
 * leaf reads 0, as before any CPUID is set); set a fuller one first with
 * ekvm_vcpu_set_cpuid2 (it is kept, and must have LM). -EINVAL for a
 * NULL vcpu or mem, a bad page size, a map_size above EKVM_GUEST_MAP_MAX,
 * a tables block not page-aligned or not inside mem, mem of another VM than
 * the vCPU's; or the ioctl's error. */
int ekvm_vcpu_setup_long64(struct ekvm_vcpu *vcpu, struct ekvm_guest_mem *mem,
			   const struct ekvm_guest_tables *tables, uint64_t entry, uint64_t stack);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_KVM_GUEST_H */
