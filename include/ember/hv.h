/* ember/hv.h - layer 2: the hypervisor-neutral vCPU layer (backends: KVM, mock) and vCPU runner. */
#ifndef EMBER_HV_H
#define EMBER_HV_H

/*
 * Overview
 * --------
 * What a VMM (or anyone embedding Ember) programs against to run vCPUs,
 * without touching KVM structures. Modelled on crosvm's hypervisor::Vcpu and
 * ArceOS's axvcpu: opaque handles backed by an ops table per backend.
 *
 *   struct ehv_hypervisor  an open hypervisor (KVM: /dev/kvm; mock: scripted)
 *   struct ehv_vm          a VM: guest memory slots, the in-kernel platform
 *                          (irqchip, PIT), IRQ lines, irqfd/ioeventfd, the
 *                          clock and device state (no user-space devices)
 *   struct ehv_vcpu        a vCPU: run, exits, kick, registers, counters
 *   struct ehv_runner      one thread per vCPU with a state machine and an
 *                          exit-handler table (below, "The vCPU runner")
 *
 * The direct loop:
 *
 *	struct ehv_exit exit;
 *	for (;;) {
 *		int r = ehv_vcpu_run(vcpu, &exit);     // reason, or -errno
 *		if (r < 0) break;
 *		switch (r) {
 *		case EHV_EXIT_IO_READ: case EHV_EXIT_IO_WRITE:
 *			ehv_vcpu_handle_io(vcpu, my_pio, bus); break;
 *		case EHV_EXIT_MMIO_READ: case EHV_EXIT_MMIO_WRITE:
 *			ehv_vcpu_handle_mmio(vcpu, my_mmio, bus); break;
 *		...
 *		}
 *	}
 *
 * Error contract (every function unless it says otherwise)
 * --------------------------------------------------------
 *  - Returns 0 or a documented non-negative value on success, a negative
 *    errno on failure. -EINVAL: a NULL handle or a bad argument; other values
 *    come from the backend (for KVM: the kernel's errno for the ioctl).
 *  - The library never prints, exits or aborts on a caller's or a guest's
 *    mistake; a callback's failure is returned, not acted on.
 *  - Functions that allocate say so; everything they allocate is released by
 *    the matching _destroy/_close.
 *
 * Thread-safety
 * -------------
 *  - ehv_hypervisor and ehv_vm calls may come from any thread; the caller
 *    serialises creation and destruction against other uses.
 *  - A vCPU is driven by one thread at a time (the "vCPU thread": whoever
 *    calls ehv_vcpu_run). ehv_vcpu_run and ehv_vcpu_handle_* are called from
 *    it, the register calls from it while the vCPU is not in run (other
 *    threads work but are slower with KVM and must not race with run).
 *  - From any thread, and from a signal handler: ehv_vcpu_kick(),
 *    ehv_vcpu_set_immediate_exit(), ehv_vcpu_id(), ehv_vcpu_exit_count(),
 *    ehv_vcpu_exit_counts() (the counters are read without stopping the vCPU).
 *  - Fork: handles are not usable in a child after fork().
 *
 * Kicks
 * -----
 * ehv_vcpu_kick() makes the vCPU's current ehv_vcpu_run() return
 * EHV_EXIT_CANCELED at once, or, when the vCPU is not in run, the next one.
 * It is never lost: the kicker sets the vCPU's immediate_exit flag, then sends
 * the kick signal (ehv_kick_signal(), a real-time signal) to the thread inside
 * run; that thread's signal handler sets immediate_exit again for the vCPU it
 * is running (as crosvm and QEMU do), and the kernel (or the mock) checks the
 * flag on every entry. Kicks that arrive before the Canceled exit is returned
 * may be merged into it; a request a thread posts before kicking is therefore
 * visible to the vCPU thread once run returns Canceled.
 *
 * The kick signal's handler is installed when the first vCPU is created
 * (sigaction, replacing any handler the application had for that signal),
 * and ehv_vcpu_run() unblocks it in the calling thread (once per thread).
 *
 * Completion rule (KVM API: "the corresponding operations are complete only
 * after userspace has re-entered the kernel with KVM_RUN")
 * --------------------------------------------------------------------------
 * After an Io*, Mmio*, SysReg* or Hypercall exit the guest instruction is not
 * finished until the next ehv_vcpu_run(). Before saving a vCPU's state, call
 * ehv_vcpu_complete_pending(), which re-enters run once with immediate_exit set
 * so the instruction completes without any further guest instruction
 * executing. The runner does it before acknowledging a pause.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* API version of this header (bumped on incompatible change). */
#define EMBER_HV_API_MAJOR   0
#define EMBER_HV_API_MINOR   3
#define EMBER_HV_API_VERSION ((EMBER_HV_API_MAJOR << 16) | EMBER_HV_API_MINOR)

/* Returns EMBER_HV_API_VERSION of the library actually linked. */
unsigned ehv_library_version(void);

#if defined(__GNUC__)
#define EHV_MUST_CHECK __attribute__((warn_unused_result))
#else
#define EHV_MUST_CHECK
#endif

struct ehv_hypervisor;
struct ehv_vm;
struct ehv_vcpu;
struct ehv_runner;
struct ehv_x86_cpuid_entry;

/* ------------------------------------------------------------------------
 * Exit reasons
 * ------------------------------------------------------------------------ */

/*
 * The neutral exit reasons: every reason of axvcpu's AxVCpuExitReason, then
 * what a KVM VMM needs on top. The values are stable within an API major.
 */
enum ehv_exit_reason {
	EHV_EXIT_NOTHING = 0,	     /* nothing to do; run again */
	EHV_EXIT_HYPERCALL,	     /* u.hypercall; answer with ehv_vcpu_handle_hypercall */
	EHV_EXIT_MMIO_READ,	     /* u.mmio_read; answer with ehv_vcpu_handle_mmio */
	EHV_EXIT_MMIO_WRITE,	     /* u.mmio_write; ehv_vcpu_handle_mmio */
	EHV_EXIT_SYSREG_READ,	     /* u.sysreg_read (x86: RDMSR); ehv_vcpu_handle_sysreg */
	EHV_EXIT_SYSREG_WRITE,	     /* u.sysreg_write (x86: WRMSR); ehv_vcpu_handle_sysreg */
	EHV_EXIT_IO_READ,	     /* u.io_read (x86 IN/INS); answer with ehv_vcpu_handle_io */
	EHV_EXIT_IO_WRITE,	     /* u.io_write (x86 OUT/OUTS); ehv_vcpu_handle_io */
	EHV_EXIT_EXTERNAL_INTERRUPT, /* u.external_interrupt */
	EHV_EXIT_NESTED_PAGE_FAULT,  /* u.nested_page_fault */
	EHV_EXIT_HALT,		     /* the guest halted (no in-kernel irqchip) */
	EHV_EXIT_CPU_UP,	     /* u.cpu_up: the guest starts another vCPU */
	EHV_EXIT_CPU_DOWN,	     /* u.cpu_down: this vCPU went offline */
	EHV_EXIT_SYSTEM_DOWN,	     /* u.system_down: the guest powered off (or crashed) */
	EHV_EXIT_FAIL_ENTRY,	     /* u.fail_entry: the hardware refused to enter the guest */
	EHV_EXIT_SEND_IPI,	     /* u.send_ipi */
	EHV_EXIT_SHUTDOWN,	     /* x86 triple fault (the CPU shut down) */
	EHV_EXIT_SYSTEM_RESET,	     /* u.system_reset: the guest asked for a reset */
	EHV_EXIT_DEBUG,		     /* u.debug: single step or breakpoint */
	EHV_EXIT_INTERNAL_ERROR,     /* u.internal_error: the hypervisor could not go on */
	EHV_EXIT_IOAPIC_EOI,	     /* u.ioapic_eoi: EOI of a level vector (split irqchip) */
	EHV_EXIT_IRQ_WINDOW_OPEN,    /* the guest can take an interrupt now */
	EHV_EXIT_CANCELED,	     /* kicked, or immediate_exit was set */
	EHV_EXIT_UNSUPPORTED,	     /* u.unsupported: a backend exit with no neutral meaning */
	EHV_EXIT_REASON_MAX
};

/*
 * KVM (x86-64) -> neutral reasons. Every KVM_EXIT_* and where it goes:
 *
 *   KVM_EXIT_UNKNOWN (0)          Unsupported (hardware_exit_reason in data[0])
 *   KVM_EXIT_EXCEPTION (1)        Unsupported (exception, error code in data[0..1])
 *   KVM_EXIT_IO (2)               IoRead / IoWrite (by direction)
 *   KVM_EXIT_HYPERCALL (3)        Hypercall (ehv_vm_trap_hypercalls)
 *   KVM_EXIT_DEBUG (4)            Debug
 *   KVM_EXIT_HLT (5)              Halt
 *   KVM_EXIT_MMIO (6)             MmioRead / MmioWrite (by direction)
 *   KVM_EXIT_IRQ_WINDOW_OPEN (7)  IrqWindowOpen
 *   KVM_EXIT_SHUTDOWN (8)         Shutdown
 *   KVM_EXIT_FAIL_ENTRY (9)       FailEntry
 *   KVM_EXIT_INTR (10)            Canceled
 *   KVM_EXIT_SET_TPR (11)         Unsupported (defined, never raised by KVM)
 *   KVM_EXIT_TPR_ACCESS (12)      Unsupported (rip, is_write in data[0..1])
 *   KVM_EXIT_S390_* (13,14,20,22,23), DCR (15), OSI (18), PAPR_HCALL (19),
 *   WATCHDOG (21), EPR (23), ARM_NISV (28), RISCV_SBI/CSR (35,36),
 *   LOONGARCH_IOCSR (38)          Unsupported (other architectures)
 *   KVM_EXIT_NMI (16)             Unsupported (defined, never raised by KVM)
 *   KVM_EXIT_INTERNAL_ERROR (17)  InternalError
 *   KVM_EXIT_SYSTEM_EVENT (24)    SHUTDOWN -> SystemDown{POWEROFF},
 *                                 CRASH -> SystemDown{CRASH},
 *                                 SEV_TERM -> SystemDown{TERMINATE},
 *                                 RESET -> SystemReset,
 *                                 WAKEUP, SUSPEND (arm64) -> Unsupported
 *   KVM_EXIT_IOAPIC_EOI (26)      IoapicEoi
 *   KVM_EXIT_HYPERV (27)          Unsupported (type in data[0])
 *   KVM_EXIT_X86_RDMSR (29)       SysRegRead (ehv_vm_trap_sysregs)
 *   KVM_EXIT_X86_WRMSR (30)       SysRegWrite
 *   KVM_EXIT_DIRTY_RING_FULL (31) Unsupported (harvest the ring, run again)
 *   KVM_EXIT_AP_RESET_HOLD (32)   CpuDown{state = EHV_CPU_DOWN_RESET_HOLD} (SEV-ES)
 *   KVM_EXIT_X86_BUS_LOCK (33)    Unsupported
 *   KVM_EXIT_XEN (34)             Unsupported (type in data[0])
 *   KVM_EXIT_NOTIFY (37)          Unsupported (flags in data[0])
 *   KVM_EXIT_MEMORY_FAULT (39)    NestedPageFault (Linux >= 6.8)
 *   KVM_EXIT_TDX (40)             Unsupported
 *   any other number              Unsupported
 *
 * Neutral reasons KVM never produces on x86, and why:
 *   Nothing            KVM always names a reason (the mock backend uses it).
 *   ExternalInterrupt  host interrupts are handled inside the kernel; a
 *                      pending signal surfaces as Canceled.
 *   CpuUp, SendIPI     INIT/SIPI and IPIs are delivered by the in-kernel LAPIC
 *                      (KVM has no user-space LAPIC on x86).
 *   CpuDown            only for SEV-ES AP reset hold; no other x86 path.
 *   NestedPageFault    only from KVM_EXIT_MEMORY_FAULT (Linux 6.8+, guest_memfd
 *                      and private memory); plain NPT faults on unbacked
 *                      memory become MMIO exits. KVM does not say the access
 *                      direction (access = EHV_NPF_UNKNOWN_ACCESS).
 *   SystemDown/Reset   on x86 only from Hyper-V enlightenments (crash and
 *                      reset MSRs), SEV-ES termination or Xen; a plain x86
 *                      guest resets through the VMM's devices (port 0xcf9,
 *                      i8042) or triple-faults (Shutdown).
 */

/* Marks a register field the backend does not report (it completes the
 * register itself, as KVM does for MMIO reads and RDMSR). */
#define EHV_REG_UNKNOWN 0xffu

/* u.system_down.kind */
enum ehv_system_down_kind {
	EHV_SYSTEM_DOWN_POWEROFF = 0,
	EHV_SYSTEM_DOWN_CRASH,	   /* the guest reported a crash (e.g. Hyper-V crash MSR) */
	EHV_SYSTEM_DOWN_TERMINATE, /* the platform terminated the guest (SEV-ES) */
};

/* u.nested_page_fault.access */
#define EHV_NPF_READ	       (1u << 0)
#define EHV_NPF_WRITE	       (1u << 1)
#define EHV_NPF_EXEC	       (1u << 2)
#define EHV_NPF_PRIVATE	       (1u << 3) /* the fault was on private (guest_memfd) memory */
#define EHV_NPF_UNKNOWN_ACCESS (1u << 7) /* the backend did not say read/write/exec */

/* u.cpu_down.state */
#define EHV_CPU_DOWN_RESET_HOLD 1 /* SEV-ES AP reset hold: wakes on INIT-SIPI */

/*
 * A decoded exit. Plain data: it points into nothing and may be copied and
 * kept. The answer to an exit (data for a read, a hypercall's return value)
 * goes through ehv_vcpu_handle_*, never through this structure.
 */
struct ehv_exit {
	enum ehv_exit_reason reason;
	uint32_t raw_reason; /* the backend's own number (KVM: exit_reason) */
	union {
		struct {
			uint64_t nr;
			uint64_t args[6];
		} hypercall;
		/* MmioRead: width in bytes (1..8); reg/reg_width/signed_ext
		 * describe the destination register where the backend decodes
		 * it, else reg = EHV_REG_UNKNOWN, reg_width = 0 (KVM). */
		struct {
			uint64_t addr;
			uint8_t width;
			uint8_t reg;
			uint8_t reg_width;
			bool signed_ext;
		} mmio_read;
		struct {
			uint64_t addr;
			uint8_t width;
			uint64_t data; /* little-endian value of width bytes */
		} mmio_write;
		/* SysRegRead: addr is the x86 MSR index; reg = EHV_REG_UNKNOWN
		 * when the backend fills the register(s) itself (KVM: EDX:EAX). */
		struct {
			uint32_t addr;
			uint8_t reg;
		} sysreg_read;
		struct {
			uint32_t addr;
			uint64_t value;
		} sysreg_write;
		/* Io: count > 1 for string I/O (INS/OUTS with REP); data is the
		 * first element written. ehv_vcpu_handle_io visits every one. */
		struct {
			uint16_t port;
			uint8_t width;
			uint32_t count;
		} io_read;
		struct {
			uint16_t port;
			uint8_t width;
			uint32_t count;
			uint64_t data;
		} io_write;
		struct {
			uint64_t vector;
		} external_interrupt;
		struct {
			uint64_t addr;
			uint64_t size;	 /* 0 if unknown */
			uint32_t access; /* EHV_NPF_* */
		} nested_page_fault;
		struct {
			uint64_t target_cpu;
			uint64_t entry_point;
			uint64_t arg;
		} cpu_up;
		struct {
			uint64_t state; /* EHV_CPU_DOWN_* or backend-specific */
		} cpu_down;
		struct {
			enum ehv_system_down_kind kind;
			uint32_t ndata;
			uint64_t data[4]; /* backend detail (KVM: system_event data) */
		} system_down;
		struct {
			uint32_t ndata;
			uint64_t data[4];
		} system_reset;
		struct {
			uint64_t hardware_reason; /* KVM: hardware_entry_failure_reason */
			uint32_t cpu;		  /* host CPU, where known */
		} fail_entry;
		struct {
			uint64_t target_cpu;
			uint64_t aux;
			bool to_all;
			bool to_self;
			uint64_t vector;
		} send_ipi;
		struct {
			uint32_t exception; /* x86: 1 = #DB, 3 = #BP */
			uint64_t pc;	    /* linear address of the next instruction */
			uint64_t dr6, dr7;
		} debug;
		struct {
			uint32_t suberror; /* KVM_INTERNAL_ERROR_* for KVM */
			uint32_t ndata;
			uint64_t data[16];
		} internal_error;
		struct {
			uint32_t vector;
		} ioapic_eoi;
		struct {
			uint32_t ndata;
			uint64_t data[4];
		} unsupported;
	} u;
};

/* Name of a reason ("IoRead", "Canceled", ...), "Invalid" when out of range.
 * Never NULL; static storage. */
const char *ehv_exit_reason_name(enum ehv_exit_reason reason);

/* ------------------------------------------------------------------------
 * Hypervisor
 * ------------------------------------------------------------------------ */

enum ehv_backend {
	EHV_BACKEND_KVM = 0, /* Linux KVM (x86-64); the default */
	EHV_BACKEND_MOCK,    /* scripted exits, no guest (tests; see "Mock backend") */
	EHV_BACKEND_MAX
};

struct ehv_hypervisor_options {
	enum ehv_backend backend;
	const char *device; /* KVM: the device path; NULL = /dev/kvm */
};

/* Opens a hypervisor; opts NULL = KVM on /dev/kvm. Allocates; *out is
 * released with ehv_hypervisor_close(). Errors: -EINVAL (bad backend),
 * -ENOMEM, and for KVM those of ekvm_sys_open (-ENOENT no /dev/kvm, -EACCES,
 * -EPROTO). */
EHV_MUST_CHECK int ehv_hypervisor_open(const struct ehv_hypervisor_options *opts,
				       struct ehv_hypervisor **out);
/* Closes it. VMs created from it stay valid. NULL is allowed. */
void ehv_hypervisor_close(struct ehv_hypervisor *hyp);
/* The backend, or -EINVAL for NULL. */
int ehv_hypervisor_backend(const struct ehv_hypervisor *hyp);
/* "kvm" or "mock"; "invalid" for NULL. Static storage. */
const char *ehv_backend_name(enum ehv_backend backend);
/* Backend capability query (KVM: KVM_CHECK_EXTENSION cap): 0 = absent,
 * > 0 = present with a capability-specific value; -errno. Mock: 0 except
 * for numbers set with ehv_mock_set_capability(). */
int ehv_hypervisor_check_raw_capability(struct ehv_hypervisor *hyp, long cap);

/* What the hypervisor can offer a guest's CPUID (KVM:
 * KVM_GET_SUPPORTED_CPUID on the hypervisor's /dev/kvm fd). Copies up to
 * max entries into out (may be NULL with max 0) and returns how many exist
 * (call again with a larger array when the result exceeds max; at most
 * EHV_CPUID_MAX_ENTRIES). Mock: the table set with
 * ehv_mock_set_supported_cpuid(), empty by default. Any thread. Errors:
 * -EINVAL (NULL hyp, out NULL with max > 0), -ENOMEM, the backend's. */
#define EHV_CPUID_MAX_ENTRIES 256
int ehv_hypervisor_supported_cpuid(struct ehv_hypervisor *hyp, struct ehv_x86_cpuid_entry *out,
				   size_t max);
/* The MSR indices the hypervisor saves and restores for a vCPU (KVM:
 * KVM_GET_MSR_INDEX_LIST), and the feature MSRs it reports (KVM: the
 * KVM_GET_MSR_FEATURE_INDEX_LIST, -EOPNOTSUPP without
 * KVM_CAP_GET_MSR_FEATURES). Same contract as ehv_hypervisor_supported_cpuid
 * (at most EHV_MSR_LIST_MAX). Mock: the lists of ehv_mock_set_msr_lists(). */
#define EHV_MSR_LIST_MAX 4096
int ehv_hypervisor_msr_index_list(struct ehv_hypervisor *hyp, uint32_t *out, size_t max);
int ehv_hypervisor_feature_msr_index_list(struct ehv_hypervisor *hyp, uint32_t *out, size_t max);

/* A stable text identity of the host CPU as the hypervisor offers it, for a
 * snapshot's manifest: one line "VENDOR family F model M stepping S cpuid
 * HASH" where VENDOR is CPUID leaf 0's vendor string, F/M/S come from leaf 1
 * (display family and model: base + extended), and HASH is 16 hex digits of
 * an FNV-1a 64 hash over the supported-CPUID table (ehv_hypervisor_supported_
 * cpuid, in the hypervisor's order, fields function, index, flags, eax, ebx,
 * ecx, edx as little-endian u32; what varies per host CPU is left out as
 * zero: leaf 1 EBX's APIC-id byte, leaves 0xB and 0x1F EDX (the x2APIC id),
 * leaf 0x8000001E EAX, EBX and ECX (AMD's extended APIC, core and node ids)). Two hosts with the same identity offer guests the
 * same CPUID. Writes a NUL-terminated string and returns its length (without
 * the NUL). Any thread. Errors: -EINVAL (NULL hyp or buf), -ERANGE (len too
 * small: 128 bytes always suffice, EHV_CPU_IDENTITY_MAX), -ENODATA (the
 * table has no leaf 0 or 1: a mock without ehv_mock_set_supported_cpuid),
 * those of ehv_hypervisor_supported_cpuid. */
#define EHV_CPU_IDENTITY_MAX 128
int ehv_hypervisor_cpu_identity(struct ehv_hypervisor *hyp, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * VM
 * ------------------------------------------------------------------------ */

/* Creates a VM (KVM: KVM_CREATE_VM with machine type 0). Allocates; release
 * with ehv_vm_destroy(). The VM keeps no reference to hyp. Errors: -EINVAL,
 * -ENOMEM, the backend's (KVM: -EMFILE, -ENOMEM, ...). */
EHV_MUST_CHECK int ehv_vm_create(struct ehv_hypervisor *hyp, struct ehv_vm **out);
/* Drops the caller's reference. The VM is freed (KVM: its fd closed) when
 * its last vCPU is destroyed too, so destroying a VM before its vCPUs is safe.
 * NULL is allowed. Guest memory is the caller's and is not unmapped. */
void ehv_vm_destroy(struct ehv_vm *vm);
/* The backend's own handle, for code that knows the backend and needs a
 * call this layer does not offer (tests, tools; Ember's VMM uses none):
 * KVM: a struct ekvm_vm * (<ember/kvm.h>), owned by the VM; mock: NULL.
 * Calls on it bypass the layer's bookkeeping (e.g. the platform step). */
void *ehv_vm_backend_handle(struct ehv_vm *vm);
/* The backend of this VM (enum ehv_backend), or -EINVAL for NULL. */
int ehv_vm_backend(const struct ehv_vm *vm);

/* ehv_vm_set_memory flags */
#define EHV_MEM_READONLY  (1u << 0) /* guest writes become MMIO exits */
#define EHV_MEM_LOG_DIRTY (1u << 1) /* track dirty pages */

/* Maps size bytes at hva (the caller's memory, which must stay mapped until
 * the slot is removed or the VM is destroyed) at guest-physical gpa, in slot
 * (0..EHV_MAX_MEM_SLOTS-1). gpa, size and hva must be page aligned; size 0
 * removes the slot. Thread-safe against running vCPUs (KVM updates slots
 * atomically). Errors: -EINVAL (alignment, flags, slot), -EEXIST (overlaps
 * another slot), the backend's. */
#define EHV_MAX_MEM_SLOTS 32
int ehv_vm_set_memory(struct ehv_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
		      unsigned flags);
/* A used slot set again with the same gpa, size and hva changes only its
 * EHV_MEM_LOG_DIRTY flag (KVM: a flags-only update, the guest keeps
 * running; KVM refuses to toggle EHV_MEM_READONLY that way): e.g. dirty
 * logging turned on before a base snapshot, for incremental ones. */
/* Removes a slot (same as size 0). */
int ehv_vm_remove_memory(struct ehv_vm *vm, uint32_t slot);

/* The dirty log of a slot created with EHV_MEM_LOG_DIRTY (KVM:
 * KVM_GET_DIRTY_LOG): one bit per 4 KiB page of the slot (bit i of
 * bitmap[i / 64] is page i, counted from the slot's gpa), set when the guest
 * wrote the page since the slot was created or since the previous call; the
 * call clears the log (and, with KVM, write-protects the pages again).
 * bytes must hold ceil(pages / 64) * 8 bytes; those are written (bits past
 * the slot's last page as 0), the rest of the buffer is left alone. Pages written by the host through the slot's hva are not
 * logged (only guest writes are). Thread-safe against running vCPUs (a write
 * racing with the call is in this log or the next, never lost). Errors:
 * -EINVAL (NULL, slot out of range, bytes too small, the slot was not
 * created with EHV_MEM_LOG_DIRTY), -ENOENT (no such slot), the backend's.
 * Mock: pages are marked with ehv_mock_vm_mark_dirty(). */
int ehv_vm_get_dirty_log(struct ehv_vm *vm, uint32_t slot, uint64_t *bitmap, size_t bytes);

/* Enables a backend capability on the VM (KVM: KVM_ENABLE_CAP on the VM fd,
 * args[0..3] as the KVM API documents; e.g. KVM_CAP_SPLIT_IRQCHIP). args may
 * be NULL for all zero. Errors: the backend's (-EINVAL unknown cap). */
int ehv_vm_enable_raw_capability(struct ehv_vm *vm, uint32_t cap, const uint64_t args[4]);
/* VM-level capability query (KVM: KVM_CHECK_EXTENSION on the VM fd). */
int ehv_vm_check_raw_capability(struct ehv_vm *vm, long cap);

/* System-register (x86: MSR) traps. Accesses to the listed registers exit
 * to the caller as SysRegRead/SysRegWrite (KVM: KVM_CAP_X86_USER_SPACE_MSR
 * with the FILTER reason + KVM_X86_SET_MSR_FILTER denying the ranges; at
 * most 16 ranges of at most 12288 registers). Replaces any previous set;
 * n = 0 removes them. */
#define EHV_TRAP_READ  (1u << 0)
#define EHV_TRAP_WRITE (1u << 1)
struct ehv_sysreg_trap {
	uint32_t first;	 /* first register index */
	uint32_t count;	 /* registers in the range, >= 1 */
	unsigned access; /* EHV_TRAP_READ | EHV_TRAP_WRITE */
};
/* flags for ehv_vm_trap_sysregs: also exit on registers the hypervisor does
 * not implement (KVM: KVM_MSR_EXIT_REASON_UNKNOWN) instead of injecting #GP. */
#define EHV_TRAP_UNKNOWN_SYSREGS (1u << 0)
/* Errors: -EINVAL (too many or empty ranges, no access bits), -EOPNOTSUPP
 * (the hypervisor lacks MSR exits or filters), the backend's. Allocates
 * nothing that outlives the call. */
int ehv_vm_trap_sysregs(struct ehv_vm *vm, const struct ehv_sysreg_trap *traps, size_t n,
			unsigned flags);

/* Hypercall traps: hypercalls whose number has its bit set in nr_mask exit to
 * the caller as Hypercall (KVM: KVM_CAP_EXIT_HYPERCALL; KVM accepts only
 * bit 12, KVM_HC_MAP_GPA_RANGE, and says -EINVAL otherwise). */
int ehv_vm_trap_hypercalls(struct ehv_vm *vm, uint64_t nr_mask);

/* ------------------------------------------------------------------------
 * VM platform: interrupt controllers, timer, IRQ lines, eventfds, clock
 * ------------------------------------------------------------------------
 * What a VMM needs of the VM beyond memory, in the manner of crosvm's Vm and
 * IrqChip traits. Thread-safety: any thread (the backends serialise inside:
 * KVM in the kernel, the mock under its VM lock), including vCPU threads in
 * a device callback, unless a function says otherwise.
 *
 * x86 reserved pages: a KVM VM on Intel without unrestricted guest needs an
 * identity-mapped page table page and a three-page TSS in guest-physical
 * space for real mode. The layer owns them: ehv_vm_create() places them once
 * at EHV_X86_IDENTITY_MAP_GPA and EHV_X86_TSS_GPA (KVM_SET_IDENTITY_MAP_ADDR,
 * KVM_SET_TSS_ADDR); nobody else issues those ioctls. Keep RAM and devices
 * out of [EHV_X86_RESERVED_GPA, EHV_X86_RESERVED_GPA + EHV_X86_RESERVED_SIZE).
 */
#define EHV_X86_IDENTITY_MAP_GPA 0xfffbc000ull /* one page */
#define EHV_X86_TSS_GPA		 0xfffbd000ull /* three pages */
#define EHV_X86_RESERVED_GPA	 EHV_X86_IDENTITY_MAP_GPA
#define EHV_X86_RESERVED_SIZE	 0x4000ull

/* ehv_platform_config.flags */
#define EHV_PLATFORM_PIT (1u << 0) /* an in-kernel i8254 PIT (ports 0x40-0x43) */
#define EHV_PLATFORM_PIT_SPEAKER_DUMMY \
	(1u << 1) /* with a dummy port 0x61 (KVM_PIT_SPEAKER_DUMMY) */

struct ehv_platform_config {
	unsigned flags; /* EHV_PLATFORM_* */
};

/*
 * The platform step: creates the in-kernel interrupt controllers (x86: the
 * two i8259 PICs, the IOAPIC with 24 pins, a LAPIC per vCPU; KVM:
 * KVM_CREATE_IRQCHIP) and, with EHV_PLATFORM_PIT, the PIT (KVM:
 * KVM_CREATE_PIT2). Once per VM, before the first vCPU is created.
 * cfg NULL = irqchip only. Errors: -EINVAL (NULL vm, unknown flags),
 * -EEXIST (already done), -EBUSY (a vCPU exists), the backend's; on failure
 * after the irqchip was created the VM is unusable for another attempt
 * (KVM cannot remove an irqchip): destroy it.
 */
int ehv_vm_setup_platform(struct ehv_vm *vm, const struct ehv_platform_config *cfg);

/*
 * Drives interrupt line gsi of the in-kernel irqchip (x86: GSI 0-15 go to
 * both the PIC and the IOAPIC, 16-23 to the IOAPIC; KVM: KVM_IRQ_LINE).
 * set_irq_line sets the level (true = asserted); pulse_irq raises then
 * lowers it (an edge for an edge-triggered pin). No allocation; one ioctl
 * (two for pulse) with KVM. Errors: -EINVAL (NULL, gsi >= EHV_MAX_GSI),
 * -ENXIO (no platform yet), the backend's.
 */
#define EHV_MAX_GSI 1024
int ehv_vm_set_irq_line(struct ehv_vm *vm, uint32_t gsi, bool level);
int ehv_vm_pulse_irq(struct ehv_vm *vm, uint32_t gsi);

/*
 * irqfd: a write to eventfd fd injects gsi (KVM: KVM_IRQFD). With
 * resample_fd >= 0 the line is level-triggered: it stays asserted until the
 * guest EOIs it, then resample_fd is signalled (KVM_IRQFD_FLAG_RESAMPLE);
 * -1 = edge. The fds stay the caller's (the backend keeps a reference
 * while assigned). Errors: -EINVAL (NULL, fd < 0, gsi >= EHV_MAX_GSI),
 * -ENXIO (no platform yet), -EEXIST (fd already assigned), the backend's
 * (KVM: -EBADF not an eventfd).
 * ehv_vm_irqfd_remove: deassigns fd from gsi; KVM answers 0 also for a pair
 * never assigned, the mock -ENOENT.
 */
int ehv_vm_irqfd(struct ehv_vm *vm, int fd, uint32_t gsi, int resample_fd);
int ehv_vm_irqfd_remove(struct ehv_vm *vm, int fd, uint32_t gsi);

/* ioeventfd: a guest write of len bytes at addr (a port with
 * EHV_IOEVENT_PIO, else a guest-physical MMIO address) signals fd instead
 * of exiting, optionally only when the value equals datamatch (KVM:
 * KVM_IOEVENTFD). */
#define EHV_IOEVENT_PIO	      (1u << 0)
#define EHV_IOEVENT_DATAMATCH (1u << 1)
struct ehv_ioeventfd {
	uint64_t addr;
	uint32_t len; /* 1, 2, 4 or 8; 0 = any length (MMIO only) */
	unsigned flags;
	uint64_t datamatch; /* with EHV_IOEVENT_DATAMATCH */
	int fd;		    /* an eventfd, the caller's */
};
/* Errors: -EINVAL (NULL, fd < 0, bad len or flags, addr + len overflows, a
 * port above 0xffff, a datamatch with len 0), -EEXIST (one already covers
 * the same address space, addr and len, with a datamatch that can match the
 * same writes, whatever its fd: KVM's rule), the backend's.
 * ehv_vm_ioeventfd_remove takes the description it was assigned with (fd
 * included) and returns -ENOENT when nothing matches. */
int ehv_vm_ioeventfd(struct ehv_vm *vm, const struct ehv_ioeventfd *ev);
int ehv_vm_ioeventfd_remove(struct ehv_vm *vm, const struct ehv_ioeventfd *ev);

/* The guest's paravirtual clock (KVM: KVM_GET_CLOCK / KVM_SET_CLOCK, the
 * kvmclock base): ns is the guest's clock in nanoseconds. get sets flags
 * (EHV_CLOCK_STABLE: the host clock is stable, so the value is the same on
 * every vCPU); set ignores them. Errors: -EINVAL (NULL), the backend's. */
#define EHV_CLOCK_STABLE (1u << 0)
struct ehv_clock {
	uint64_t ns;
	unsigned flags;
};
int ehv_vm_get_clock(struct ehv_vm *vm, struct ehv_clock *clock);
int ehv_vm_set_clock(struct ehv_vm *vm, const struct ehv_clock *clock);

/*
 * Saved state of the in-kernel devices, for snapshots: opaque blobs.
 * The layouts of a PIC, IOAPIC or PIT state are the backend's (KVM: struct
 * kvm_pic_state, struct kvm_ioapic_state, struct kvm_pit_state2), so a blob
 * is tagged with the backend and its size; it can be stored and given back
 * to a VM of the same backend (and, for KVM, the same kernel ABI), and set
 * rejects any other with -EINVAL. Callers must not interpret data. The
 * mock's blobs are EHV_MOCK_STATE_SIZE bytes, zero at creation. (Neutral
 * structures would need a conversion per backend for no user today; the
 * LAPIC, whose layout is architectural, is not opaque: see
 * struct ehv_lapic_state.)
 */
enum ehv_irqchip_id {
	EHV_IRQCHIP_PIC_MASTER = 0,
	EHV_IRQCHIP_PIC_SLAVE,
	EHV_IRQCHIP_IOAPIC,
	EHV_IRQCHIP_MAX
};
#define EHV_STATE_BLOB_MAX  512
#define EHV_MOCK_STATE_SIZE 64
struct ehv_state_blob {
	uint32_t backend; /* enum ehv_backend that produced it */
	uint32_t size;	  /* bytes of data used */
	uint8_t data[EHV_STATE_BLOB_MAX];
};
/* Get/set one chip's state (KVM: KVM_GET_IRQCHIP / KVM_SET_IRQCHIP).
 * Errors: -EINVAL (NULL, bad chip, a blob of another backend or size),
 * -ENXIO (no platform), the backend's. Pause the vCPUs around a set. */
int ehv_vm_get_irqchip(struct ehv_vm *vm, enum ehv_irqchip_id chip, struct ehv_state_blob *st);
int ehv_vm_set_irqchip(struct ehv_vm *vm, enum ehv_irqchip_id chip,
		       const struct ehv_state_blob *st);
/* The PIT's state (KVM: KVM_GET_PIT2 / KVM_SET_PIT2). -ENXIO without a
 * PIT; otherwise as the irqchip calls. */
int ehv_vm_get_pit(struct ehv_vm *vm, struct ehv_state_blob *st);
int ehv_vm_set_pit(struct ehv_vm *vm, const struct ehv_state_blob *st);

/* ------------------------------------------------------------------------
 * vCPU
 * ------------------------------------------------------------------------ */

/* Creates vCPU id (KVM: KVM_CREATE_VCPU + the run area). Allocates; release
 * with ehv_vcpu_destroy(). Installs the kick signal's handler the first
 * time. Errors: -EINVAL, -EEXIST (duplicate id), -ENOMEM, the backend's. */
EHV_MUST_CHECK int ehv_vcpu_create(struct ehv_vm *vm, uint32_t id, struct ehv_vcpu **out);
/* Destroys it (KVM: unmaps the run area, closes the fd). The vCPU must not
 * be in run. A vCPU still attached to a runner is left alone (the call does
 * nothing; destroy the runner first). NULL is allowed. */
void ehv_vcpu_destroy(struct ehv_vcpu *vcpu);
/* The id given at creation. Any thread. 0 for NULL. */
uint32_t ehv_vcpu_id(const struct ehv_vcpu *vcpu);
/* KVM: a struct ekvm_vcpu * owned by the vCPU; mock: NULL. */
void *ehv_vcpu_backend_handle(struct ehv_vcpu *vcpu);

/*
 * Runs the vCPU until it exits; fills *exit (may be NULL) and returns the
 * exit reason (>= 0), or -errno.
 *  - Canceled: a kick or immediate_exit; the layer consumes the kick.
 *  - After IoRead, MmioRead, SysRegRead and Hypercall exits the caller must
 *    answer with the matching ehv_vcpu_handle_*() before the next run;
 *    otherwise run returns -EBUSY and does not enter the guest.
 *  - Counts the exit in the vCPU's counters.
 *  - A vCPU waiting for INIT/SIPI (EHV_MP_UNINITIALIZED) stays in run until
 *    the guest starts it, then runs it: the re-entry KVM asks for (EAGAIN)
 *    happens inside, and a kick meanwhile still returns Canceled.
 * Errors: -EINVAL, -EBUSY (unanswered exit, or the vCPU is attached to a
 * runner and this is not the runner's thread), -EBADFD (vCPU broken by an earlier
 * failure: the backend could not complete), the backend's (KVM: KVM_RUN's
 * errno except EINTR, e.g. -EFAULT). On the exit path it allocates nothing,
 * takes no lock and makes no syscall besides the backend's run (KVM_RUN).
 * Binds the calling thread: the first run on a thread costs a gettid() and
 * a pthread_sigmask() to unblock the kick signal.
 */
int ehv_vcpu_run(struct ehv_vcpu *vcpu, struct ehv_exit *exit);

/* Kicks the vCPU out of run (see "Kicks"). Any thread; async-signal-safe
 * (an atomic add, two stores and tgkill). A kick to a vCPU that is not in run
 * makes its next run return Canceled. Errors: -EINVAL for NULL. */
int ehv_vcpu_kick(struct ehv_vcpu *vcpu);
/* Sets or clears immediate_exit: when set, the next run returns Canceled at
 * once (KVM semantics). Clearing leaves a pending kick in place. Any thread;
 * async-signal-safe. */
int ehv_vcpu_set_immediate_exit(struct ehv_vcpu *vcpu, bool on);
/* The kick signal (default SIGRTMIN + 1). */
int ehv_kick_signal(void);
/* Chooses the kick signal; only before the first vCPU is created (-EBUSY
 * after). -EINVAL for a signal outside SIGRTMIN..SIGRTMAX or SIGUSR1/2. */
int ehv_set_kick_signal(int signo);

/* True when the last exit left a guest instruction that only the next run
 * finishes (Io*, Mmio*, SysReg*, Hypercall; see "Completion rule"). */
bool ehv_vcpu_has_pending_completion(const struct ehv_vcpu *vcpu);
/*
 * Finishes the guest instruction of the last exit without running further:
 * re-enters run once with immediate_exit set. Returns EHV_EXIT_CANCELED
 * when done (or when nothing was pending), or another exit reason (>= 0) when
 * finishing it produced a new exit (KVM: the next fragment of a split MMIO
 * access); handle that one and call again. -errno as ehv_vcpu_run (-EBUSY if
 * the last exit was not answered). vCPU thread only.
 */
int ehv_vcpu_complete_pending(struct ehv_vcpu *vcpu, struct ehv_exit *exit);

/* Tells the hypervisor the vCPU is paused (KVM: KVM_KVMCLOCK_CTRL, so the
 * guest's soft-lockup watchdog does not fire). Returns 0 also when the guest
 * has no paravirtual clock (nothing to tell). vCPU thread, not in run. */
int ehv_vcpu_on_suspend(struct ehv_vcpu *vcpu);
/* Maps the guest-physical range [gpa, gpa + size) (page-aligned, size > 0,
 * inside memory given with ehv_vm_set_memory) in the hypervisor's stage-2
 * page tables ahead of the guest's first access, so that access takes no
 * exit (KVM: KVM_PRE_FAULT_MEMORY, Linux 6.10+; a read mapping: a private
 * file mapping's page stays the file's until the guest writes it). Returns 0,
 * -EOPNOTSUPP when the hypervisor cannot (KVM before 6.10: nothing done), or
 * -errno (-ENOENT: part of the range is in no memory; -EINTR: a signal came
 * first). Not while the vCPU runs: before its first run, or paused. */
int ehv_vcpu_pre_fault_memory(struct ehv_vcpu *vcpu, uint64_t gpa, uint64_t size);
/* Enables a backend capability on the vCPU (KVM: KVM_ENABLE_CAP on the vCPU
 * fd). args may be NULL for all zero. Errors: the backend's. */
int ehv_vcpu_enable_raw_capability(struct ehv_vcpu *vcpu, uint32_t cap, const uint64_t args[4]);

/* ---- answering exits (vCPU thread, after the exit, before the next run) */

/* One I/O or MMIO access. For a read the callback sets value; for a write
 * value holds what the guest wrote (little-endian, size bytes). */
struct ehv_io_access {
	uint64_t addr;	  /* port (I/O) or guest-physical address (MMIO) */
	uint32_t size;	  /* bytes: 1, 2, 4 (I/O); 1..8 (MMIO) */
	bool write;	  /* true: the guest writes */
	uint64_t value;	  /* data */
	uint32_t vcpu_id; /* the accessing vCPU */
};
/* Returns >= 0 on success or -errno. On failure of a read, the guest gets
 * all ones (an unassigned bus). */
typedef int (*ehv_io_fn)(void *opaque, struct ehv_io_access *access);

/*
 * Hands the pending IoRead/IoWrite exit's access(es) to fn, one call per
 * element for string I/O, and completes the exit so that the next run
 * resumes the guest. Returns 0, or fn's first negative result (the
 * remaining elements of a failed read get all ones; the exit is completed
 * either way). Errors: -EINVAL (NULL, or the last exit was not an I/O exit
 * or was already handled). No allocation, no lock.
 */
int ehv_vcpu_handle_io(struct ehv_vcpu *vcpu, ehv_io_fn fn, void *opaque);
/* The same for a pending MmioRead/MmioWrite exit (one access). */
int ehv_vcpu_handle_mmio(struct ehv_vcpu *vcpu, ehv_io_fn fn, void *opaque);

/* A hypercall: nr and args as the guest passed them (x86 KVM ABI: RAX;
 * RBX, RCX, RDX, RSI, ...); the callback sets ret (the guest's RAX; KVM
 * truncates it to 32 bits outside 64-bit mode). */
struct ehv_hypercall {
	uint64_t nr;
	uint64_t args[6];
	uint64_t ret;
	uint32_t vcpu_id;
};
typedef int (*ehv_hypercall_fn)(void *opaque, struct ehv_hypercall *call);
/* Hands the pending Hypercall exit to fn and completes it with call->ret.
 * If fn fails, ret is -1000 (KVM's -KVM_ENOSYS) and fn's error is returned.
 * -EINVAL as ehv_vcpu_handle_io. */
int ehv_vcpu_handle_hypercall(struct ehv_vcpu *vcpu, ehv_hypercall_fn fn, void *opaque);

/* A system-register access. Read: the callback sets value; write: value is
 * what the guest wrote. fault = true makes the guest's access fault
 * (x86: #GP). */
struct ehv_sysreg_access {
	uint32_t addr;
	bool write;
	uint64_t value;
	bool fault;
	uint32_t vcpu_id;
};
typedef int (*ehv_sysreg_fn)(void *opaque, struct ehv_sysreg_access *access);
/* Hands the pending SysRegRead/SysRegWrite exit to fn and completes it. If fn
 * fails the access faults and fn's error is returned. */
int ehv_vcpu_handle_sysreg(struct ehv_vcpu *vcpu, ehv_sysreg_fn fn, void *opaque);

/* ---- observability */

/* Exits of this reason since creation (Canceled included). Any thread,
 * without stopping the vCPU; 0 for NULL or an out-of-range reason. */
uint64_t ehv_vcpu_exit_count(const struct ehv_vcpu *vcpu, enum ehv_exit_reason reason);
/* Copies all EHV_EXIT_REASON_MAX counters into out; returns the total. */
uint64_t ehv_vcpu_exit_counts(const struct ehv_vcpu *vcpu, uint64_t out[EHV_EXIT_REASON_MAX]);

/* ---- x86 state (neutral structures; the backend converts) */

struct ehv_x86_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};
struct ehv_x86_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};
struct ehv_x86_dtable {
	uint64_t base;
	uint16_t limit;
};
struct ehv_x86_sregs {
	struct ehv_x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct ehv_x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};
/* Get/set registers (KVM: KVM_GET/SET_REGS, KVM_GET/SET_SREGS; set_sregs
 * keeps the pending-interrupt bitmap). vCPU thread, not in run. */
int ehv_vcpu_get_regs(struct ehv_vcpu *vcpu, struct ehv_x86_regs *regs);
int ehv_vcpu_set_regs(struct ehv_vcpu *vcpu, const struct ehv_x86_regs *regs);
int ehv_vcpu_get_sregs(struct ehv_vcpu *vcpu, struct ehv_x86_sregs *sregs);
int ehv_vcpu_set_sregs(struct ehv_vcpu *vcpu, const struct ehv_x86_sregs *sregs);
/* Convenience: 16-bit real mode with every segment at base 0 (selector 0,
 * limit 0xffff), rip = ip, rsp = sp, rflags = 2. */
int ehv_vcpu_set_real_mode(struct ehv_vcpu *vcpu, uint16_t ip, uint16_t sp);

struct ehv_x86_cpuid_entry {
	uint32_t function, index;
	uint32_t flags; /* EHV_CPUID_SIGNIFICANT_INDEX */
	uint32_t eax, ebx, ecx, edx;
};
#define EHV_CPUID_SIGNIFICANT_INDEX (1u << 0)
/* Sets the guest's CPUID table (KVM: KVM_SET_CPUID2; before the first run).
 * At most 256 entries. Allocates nothing that outlives the call. */
int ehv_vcpu_set_cpuid(struct ehv_vcpu *vcpu, const struct ehv_x86_cpuid_entry *entries, size_t n);

/* Model-specific registers (KVM: KVM_GET_MSRS / KVM_SET_MSRS). Processes
 * msrs[0..n-1] in order and returns how many were done: n on success,
 * fewer when the hypervisor refused msrs[result] (the rest are untouched).
 * At most EHV_MSRS_MAX per call. vCPU thread, not in run. Errors: -EINVAL
 * (NULL, n > EHV_MSRS_MAX, msrs NULL with n > 0), -ENOMEM, the backend's.
 * Mock: every index is accepted except those given to
 * ehv_mock_vcpu_refuse_msr(); a get of an index never set reads 0. */
#define EHV_MSRS_MAX 256
struct ehv_msr {
	uint32_t index;
	uint64_t value;
};
int ehv_vcpu_get_msrs(struct ehv_vcpu *vcpu, struct ehv_msr *msrs, size_t n);
int ehv_vcpu_set_msrs(struct ehv_vcpu *vcpu, const struct ehv_msr *msrs, size_t n);

/* The vCPU's XCR0, the XSAVE feature mask (KVM: KVM_GET/SET_XCRS, XCR 0).
 * vCPU thread, not in run. Set after ehv_vcpu_set_cpuid: the value must be
 * one the guest's CPUID allows (x87 always; leaf 0xD components). Errors:
 * -EINVAL (NULL; a value the hypervisor refuses), the backend's. Mock:
 * any value with bit 0 set is kept and read back. */
int ehv_vcpu_get_xcr0(struct ehv_vcpu *vcpu, uint64_t *xcr0);
int ehv_vcpu_set_xcr0(struct ehv_vcpu *vcpu, uint64_t xcr0);

/* The vCPU's multiprocessing state (KVM: KVM_GET/SET_MP_STATE; the values
 * are KVM's on x86). With an in-kernel irqchip KVM creates vCPU 0 RUNNABLE
 * and the others UNINITIALIZED (waiting for INIT/SIPI); the mock does the
 * same. An UNINITIALIZED vCPU woken by a SIPI needs a second KVM_RUN (the
 * kernel returns EAGAIN): ehv_vcpu_run() re-enters by itself, callers never
 * see it. vCPU thread, not in run. Errors: -EINVAL (NULL, unknown state),
 * -ERANGE (get: a backend state with no neutral value, e.g. KVM's SEV-ES
 * AP reset hold), the backend's. */
enum ehv_mp_state {
	EHV_MP_RUNNABLE = 0,
	EHV_MP_UNINITIALIZED = 1,
	EHV_MP_INIT_RECEIVED = 2,
	EHV_MP_HALTED = 3,
	EHV_MP_SIPI_RECEIVED = 4,
	EHV_MP_MAX
};
int ehv_vcpu_get_mp_state(struct ehv_vcpu *vcpu, enum ehv_mp_state *state);
int ehv_vcpu_set_mp_state(struct ehv_vcpu *vcpu, enum ehv_mp_state state);

/* The vCPU's LAPIC register page, as the architecture lays it out (1 KiB:
 * byte offset = the register's MMIO offset, e.g. 0x20 the ID, 0x80 the TPR;
 * KVM: KVM_GET_LAPIC / KVM_SET_LAPIC, whose x2APIC mode keeps the ID in the
 * x2APIC format). Needs the platform (-ENXIO before
 * ehv_vm_setup_platform). vCPU thread, not in run. */
#define EHV_LAPIC_SIZE 1024
struct ehv_lapic_state {
	uint8_t regs[EHV_LAPIC_SIZE];
};
int ehv_vcpu_get_lapic(struct ehv_vcpu *vcpu, struct ehv_lapic_state *lapic);
int ehv_vcpu_set_lapic(struct ehv_vcpu *vcpu, const struct ehv_lapic_state *lapic);

/* Guest debugging (KVM: KVM_SET_GUEST_DEBUG). 0 turns it off. */
#define EHV_DEBUG_SINGLESTEP (1u << 0) /* Debug exit after every instruction */
#define EHV_DEBUG_SW_BP	     (1u << 1) /* INT3 exits as Debug{exception = 3} */
int ehv_vcpu_set_debug(struct ehv_vcpu *vcpu, unsigned flags);

/* Without an in-kernel interrupt controller: ask for an IrqWindowOpen exit
 * as soon as the guest can take an interrupt, and inject one (KVM:
 * request_interrupt_window, KVM_INTERRUPT). vCPU thread, not in run. */
int ehv_vcpu_request_interrupt_window(struct ehv_vcpu *vcpu, bool on);
int ehv_vcpu_inject_interrupt(struct ehv_vcpu *vcpu, uint32_t vector);

/* ------------------------------------------------------------------------
 * Whole saved state (snapshots)
 * ------------------------------------------------------------------------
 * ehv_vcpu_save_state and ehv_vm_save_state produce self-describing,
 * versioned blobs that the matching restore takes back on a NEW VM of the
 * same backend, built the same way (same memory layout, same platform
 * flags, same vCPU ids), before its vCPUs first run. A blob is opaque to
 * callers; it can be stored in a file and read back on another process or
 * host. Layout (little-endian), for the curious and for tools:
 *
 *   header  u32 magic EHV_STATE_MAGIC, u16 format version
 *           (EHV_STATE_VERSION), u16 kind (1 = vCPU, 2 = VM), u32 backend
 *           (enum ehv_backend), u32 section count, u64 total length,
 *           u32 CRC-32 (IEEE) of everything after the header, u32 zero
 *   section u32 tag (four ASCII characters), u32 section version, u32
 *           length, u32 zero, then length bytes, padded with zeros to a
 *           multiple of 8
 *
 * The sections of a KVM vCPU blob, in restore order:
 *   "CPID" the vCPU's CPUID table (KVM_GET_CPUID2; set first, since what
 *          the MSRs and XSAVE accept depends on it)
 *   "TSCK" the TSC frequency in kHz (KVM_GET_TSC_KHZ; restored with
 *          KVM_SET_TSC_KHZ when it differs from the new vCPU's; more than
 *          250 ppm away from the host's rate needs TSC scaling)
 *   "REGS" struct kvm_regs            "SREG" struct kvm_sregs (with the
 *          interrupt_bitmap: the pending external interrupt)
 *   "XSAV" the XSAVE area (KVM_GET_XSAVE2, KVM_CAP_XSAVE2 bytes; 4 KiB
 *          KVM_GET_XSAVE without it), or "FPU " (struct kvm_fpu) on a
 *          host without KVM_CAP_XSAVE
 *   "XCRS" struct kvm_xcrs (with KVM_CAP_XCRS)
 *   "MSRS" u32 count, then (u32 index, u32 zero, u64 value) per MSR:
 *          every MSR of KVM_GET_MSR_INDEX_LIST that KVM_GET_MSRS reads
 *          back on this vCPU, IA32_TSC first; IA32_TSC_DEADLINE is written
 *          after the LAPIC (KVM ignores it unless the LAPIC timer is in
 *          TSC-deadline mode, as QEMU also knows). Skipped: indices KVM
 *          lists but refuses to read for this guest's CPUID (e.g. PMU,
 *          Intel PT or LBR MSRs of features the guest lacks, AMD-only MSRs
 *          on Intel): they hold no state for this guest. After a save,
 *          ehv_vcpu_state_detail() says how many were skipped.
 *   "TSCT" the TSC read alone, and when: i64 host CLOCK_MONOTONIC ns (the
 *          middle of the read), u64 IA32_TSC; restore writes this TSC
 *          (below). Optional: a blob without it (before 2026-12-06) has
 *          its TSC restored from "MSRS", untimed.
 *   "MPST" struct kvm_mp_state        "LAPC" struct kvm_lapic_state (with
 *          an in-kernel irqchip; KVM_SET_LAPIC restarts the LAPIC timer
 *          from its initial count)
 *   "EVNT" struct kvm_vcpu_events (pending exception, NMI, SIPI vector,
 *          interrupt shadow, SMM; restored with the NMI and SIPI fields
 *          marked valid)
 *   "DBGR" struct kvm_debugregs
 * Not saved: KVM's nested-virtualisation state (KVM_GET_NESTED_STATE), so a
 * guest that runs VMs of its own is not restored with them (Ember's CPUID
 * hides VMX and SVM from its guests); Hyper-V's SynIC and timers beyond
 * their MSRs; the dirty ring. The host's MSR list and CPUID are read once
 * per VM (the first save or restore) and kept with it.
 * The TSC: the saved IA32_TSC is written back first, so the guest's TSC
 * continues from the saved value (it does not go back, and does not jump
 * over the time the VM spent saved). KVM before Linux 6.6 takes a host TSC
 * write close (within a second) to what it expects as a vCPU
 * synchronisation and keeps its own value, which in a new VM is near 0: the
 * first vCPU restored in a VM therefore writes a value 4 s ahead, then the
 * saved one; the others write theirs once and KVM keeps them in sync.
 * The clock and the TSCs together: Linux's clocksource watchdog compares
 * kvm-clock with the TSC every 0.5 s and marks the TSC unstable at a skew
 * of more than about 0.5 ms (for good: sched_clock and the TSC clocksource
 * are lost), yet a snapshot reads them at different times (the VM's clock
 * first, each vCPU's TSC later) and a restore writes them at different
 * times (the TSCs first, the clock last). So each reading is timed ("TSCT",
 * the VM blob's "CLCK" version 2), and a restore ties everything to one
 * instant: the first vCPU restored with a "TSCT" has its TSC read time as
 * the saved reference and its write time as the restore reference; every
 * vCPU's TSC is written as it was at the saved reference, plus the time
 * since the restore reference, and the VM's clock likewise (in
 * ehv_vm_restore_state). The guest then sees its clock and TSCs as one
 * paused instant, the ioctls' latency apart (tens of microseconds). Times
 * more than EHVI's 60 s apart are not one snapshot's: the values are then
 * written as saved. kvmclock: the runner tells KVM about a
 * pause (KVM_KVMCLOCK_CTRL, ehv_vcpu_on_suspend) so the guest's watchdogs
 * do not fire; the VM blob holds the kvmclock base (below), and the
 * per-vCPU kvmclock MSRs (MSR_KVM_SYSTEM_TIME_NEW, ...) are in "MSRS".
 *
 * The mock's vCPU blob: "CPID", "REGS", "SREG" (the neutral structures),
 * "XCR0", "MSRS" (every MSR ever set), "MPST", "LAPC" (with the platform).
 *
 * Restore validates the whole blob before it changes anything (so a refused
 * blob leaves the vCPU or VM as it was); a failure while applying a valid
 * blob (the hypervisor refuses a value) leaves it partly restored: destroy
 * it. Errors of both restores:
 *   -EINVAL  NULL, len too short for the header, a wrong magic, an unknown
 *            format version, a blob of the other kind or of another backend,
 *            a total length that is not len (truncated or trailing bytes),
 *            a CRC mismatch (corrupted), a section running past the end, a
 *            duplicate or missing required section, a section whose size
 *            is not the backend's structure size (another kernel ABI), a
 *            blob with a LAPIC or PIT for a VM without one (or without one
 *            for a VM that has it)
 *   -ENOTSUP the host lacks something the blob needs: an XSAVE area larger
 *            than the host's (KVM_CAP_XSAVE2), XSAVE components (XSTATE_BV)
 *            or an XCR0 outside the host's supported XCR0 (CPUID 0xD), a
 *            CPUID feature bit (leaves 1, 7, 0xD, 0x80000001) the host
 *            cannot offer, an MSR index not in the host's MSR index list,
 *            an MSR value KVM refuses, a TSC frequency the host cannot
 *            scale to (no KVM_CAP_TSC_CONTROL)
 *   others   the backend's errors while reading the current state
 * After an error, ehv_vcpu_state_detail() / ehv_vm_state_detail() say which
 * check failed, in words (e.g. "MSR 0xc0000103 not supported by the host").
 *
 * Thread-safety: the vCPU calls are vCPU-thread calls, not in run (with a
 * runner: from ehv_runner_call, or while every vCPU is paused); different
 * vCPUs of a VM may be saved or restored at the same time, in any order.
 * The VM calls want every vCPU paused (not in run). Allocation: save allocates *buf
 * (release with free()); restore allocates only temporaries.
 */
#define EHV_STATE_MAGIC	  0x53564845u /* "EHVS" */
#define EHV_STATE_VERSION 1
/* Saves the vCPU's whole state. On success *buf (malloc'd, the caller
 * frees) holds *len bytes; on failure *buf is NULL. Call it after the
 * vCPU's last exit was completed (ehv_vcpu_complete_pending; the runner does
 * it before a pause or a call): -EBUSY otherwise. Errors: -EINVAL (NULL),
 * -EBUSY, -ENOMEM, the backend's (KVM: an ioctl's errno). */
int ehv_vcpu_save_state(struct ehv_vcpu *vcpu, void **buf, size_t *len);
/* Restores a vCPU blob (errors above). The vCPU must have the same id as the
 * one saved (-EINVAL otherwise). */
int ehv_vcpu_restore_state(struct ehv_vcpu *vcpu, const void *buf, size_t len);
/* Words about the last save or restore of this vCPU: why it was refused, or
 * after a successful save, how many listed MSRs were skipped. Never NULL
 * (an empty string when there is nothing to say); the buffer belongs to the
 * vCPU and is overwritten by the next save/restore. Same thread rules as
 * the calls. */
const char *ehv_vcpu_state_detail(const struct ehv_vcpu *vcpu);

/* The VM's in-kernel platform state and clock as one blob: sections "PICM",
 * "PICS", "IOAP" (the ehv_vm_get_irqchip blobs; with the platform), "PIT2"
 * (ehv_vm_get_pit; with EHV_PLATFORM_PIT) and "CLCK" (version 2: u64 ns,
 * u32 flags of the ehv_clock, u32 zero, i64 the host CLOCK_MONOTONIC ns of
 * the reading; restore also takes version 1, 16 bytes without the time).
 * Every vCPU paused. With version 2 and vCPUs restored with timed TSCs
 * (the whole-state comment above) the clock is restored as it was at their
 * reference instant, plus the time since it. Restore: into a VM with the same platform
 * flags, AFTER every vCPU's ehv_vcpu_restore_state, so that the clock is
 * set last (KVM then recomputes each vCPU's kvmclock from the restored
 * TSCs; with EHV_CLOCK_STABLE, KVM's master clock, the saved value is the
 * time every vCPU saw, so the guest's clock continues from it and does not
 * go back. Without EHV_CLOCK_STABLE each vCPU's kvmclock drifts a little
 * from the VM's, so a vCPU may have read more than the saved value: restore
 * then adds EHV_CLOCK_UNSTABLE_MARGIN_NS, a forward step that guards
 * against that drift, as the smaller evil than a clock going back). Errors:
 * as above; a platform mismatch is -EINVAL, not -ENXIO. */
#define EHV_CLOCK_UNSTABLE_MARGIN_NS 1000000ull /* 1 ms */
int ehv_vm_save_state(struct ehv_vm *vm, void **buf, size_t *len);
int ehv_vm_restore_state(struct ehv_vm *vm, const void *buf, size_t len);
/* As ehv_vcpu_state_detail, for the VM calls. */
const char *ehv_vm_state_detail(const struct ehv_vm *vm);

/* ------------------------------------------------------------------------
 * The KVM backend's ioctl requests, for a caller's syscall filter
 * ------------------------------------------------------------------------
 * Which ioctl request numbers the KVM backend's calls issue, by group, so
 * that a seccomp filter above this layer can allow exactly those without
 * knowing the binding:
 *   VCPU_RUN    ehv_vcpu_run and what it needs (KVM_RUN, injections); its
 *               first entry is the run request itself, made on every exit
 *   VCPU_STATE  the vCPU state getters and setters (registers, MSRs,
 *               LAPIC, events, MP state, XSAVE, debug registers, kvmclock)
 *   VM_IRQ      the VM-level calls a device makes while the guest runs
 *               (IRQ lines, MSIs, irqfds, ioeventfds, GSI routing)
 *   VM_STATE    the VM's saved state (irqchip, PIT, clock), its dirty log
 *               (and the memory-slot update that switches it on) and the
 *               capability queries
 * Returns the number of requests and sets *reqs to a static array of them
 * (the low 32 bits are the kernel's request). Any thread; -EINVAL for an
 * unknown group. The mock backend makes no ioctls.
 */
enum ehv_ioctl_group {
	EHV_IOCTLS_VCPU_RUN = 0,
	EHV_IOCTLS_VCPU_STATE,
	EHV_IOCTLS_VM_IRQ,
	EHV_IOCTLS_VM_STATE,
};
int ehv_kvm_ioctls(enum ehv_ioctl_group group, const unsigned long **reqs);

/* ------------------------------------------------------------------------
 * The vCPU runner
 * ------------------------------------------------------------------------
 * One thread per vCPU, named "ember-vcpu-N" (N = vCPU id), and per vCPU a
 * state machine driven by requests from other threads:
 *
 *   CREATED --start--> RUNNING <--pause/resume--> PAUSED
 *      any state --stop, a handler's STOP, an error--> STOPPED
 *
 * While RUNNING the thread loops: run, then dispatch the exit to
 * handlers[reason] (or default_handler). Canceled and Nothing are consumed
 * by the runner. The loop allocates nothing, takes no lock and makes no
 * syscall beyond the backend's run; it checks one atomic word for requests
 * after each exit. A request sets that word and kicks the vCPU.
 *
 * Before a pause is acknowledged (and before a function runs on the vCPU
 * thread), the runner finishes any half-done I/O, MMIO, MSR or hypercall
 * (ehv_vcpu_complete_pending: one run with immediate_exit set), so a
 * paused vCPU's state can be saved; then it calls ehv_vcpu_on_suspend().
 *
 * The vCPUs stay the caller's: the runner borrows them until
 * ehv_runner_destroy(), and a vCPU can be attached to one runner at a time.
 */

enum ehv_vcpu_state {
	EHV_VCPU_CREATED = 0,
	EHV_VCPU_RUNNING,
	EHV_VCPU_PAUSED,
	EHV_VCPU_STOPPED,
};
/* "created", "running", "paused", "stopped"; "invalid" otherwise. */
const char *ehv_vcpu_state_name(enum ehv_vcpu_state state);

/* What an exit handler returns (or a negative errno, which stops the vCPU
 * with that error). */
enum ehv_action {
	EHV_ACTION_CONTINUE = 0, /* run again */
	EHV_ACTION_PAUSE,	 /* pause this vCPU (resume from another thread) */
	EHV_ACTION_STOP,	 /* stop this vCPU */
	EHV_ACTION_STOP_ALL,	 /* stop every vCPU of the runner */
};

/* An exit handler: runs on the vCPU thread; answers the exit with
 * ehv_vcpu_handle_*() where needed. opaque is the config's. Blocking runner
 * requests from it return -EDEADLK. */
typedef int (*ehv_exit_handler_fn)(struct ehv_vcpu *vcpu, const struct ehv_exit *exit,
				   void *opaque);
/* A function run on a vCPU thread by ehv_runner_call(). */
typedef int (*ehv_vcpu_fn)(struct ehv_vcpu *vcpu, void *arg);

#define EHV_RUNNER_MAX_VCPUS 256
#define EHV_ALL_VCPUS	     (-1) /* index meaning "every vCPU of the runner" */

struct ehv_runner_config {
	struct ehv_vcpu *const *vcpus; /* nr_vcpus vCPUs; copied */
	unsigned nr_vcpus;	       /* 1..EHV_RUNNER_MAX_VCPUS */
	/* per-reason handlers; NULL entries fall back to default_handler */
	ehv_exit_handler_fn handlers[EHV_EXIT_REASON_MAX];
	/* NULL: the vCPU stops with -ENOSYS on an exit nobody handles */
	ehv_exit_handler_fn default_handler;
	void *opaque; /* passed to every handler */
	/* NULL, or called on vCPU idx's thread when it has become STOPPED (for
	 * any reason), after ehv_runner_wait's waiters were told; must not block
	 * nor make a blocking runner request (e.g. it writes an eventfd). */
	void (*on_stop)(void *opaque, int idx);
	/* NULL, or called first on vCPU idx's thread, before the vCPU runs
	 * and before any ehv_runner_call function (e.g. to confine the thread:
	 * the VMM loads its seccomp filter here). A negative errno stops that
	 * vCPU with it (ehv_runner_error; a later start returns -ESRCH). */
	int (*on_thread_start)(void *opaque, int idx);
};

/*
 * Creates the runner and its threads, every vCPU in CREATED (its thread
 * waits). Allocates; release with ehv_runner_destroy(). Thread-safe against
 * nothing: one creator. Errors: -EINVAL (bad config, NULL or duplicate vCPU),
 * -EBUSY (a vCPU is attached to another runner), -ENOMEM, -EAGAIN (no
 * thread); on failure nothing is left behind.
 */
EHV_MUST_CHECK int ehv_runner_create(const struct ehv_runner_config *cfg, struct ehv_runner **out);
/*
 * Stops every vCPU (as ehv_runner_stop), joins the threads and frees the
 * runner; the vCPUs are detached and stay the caller's. NULL is allowed.
 * Must not be called from a vCPU thread of this runner (it would wait for
 * itself: then it does nothing). The pointer is invalid afterwards.
 */
void ehv_runner_destroy(struct ehv_runner *runner);

/*
 * Requests, for vCPU index idx (0..nr_vcpus-1, the order of cfg->vcpus) or
 * EHV_ALL_VCPUS. Each waits until every addressed vCPU has acknowledged.
 * Any thread but the runner's own vCPU threads (-EDEADLK: a handler could
 * wait for itself, or two vCPUs for each other; handlers return an
 * EHV_ACTION_* instead, and may use ehv_runner_kick).
 * Errors: -EINVAL (NULL, bad index), -ESRCH (a vCPU is stopped: for
 * EHV_ALL_VCPUS the request still goes to the others), -EDEADLK.
 *
 *   start   CREATED -> RUNNING; 0 and no change when paused or running.
 *   pause   RUNNING or CREATED -> PAUSED (half-done I/O completed first);
 *           0 if already paused.
 *   resume  PAUSED -> RUNNING; 0 and no change when created or running.
 *   stop    any -> STOPPED; 0 if already stopped (never -ESRCH).
 */
int ehv_runner_start(struct ehv_runner *runner, int idx);
int ehv_runner_pause(struct ehv_runner *runner, int idx);
int ehv_runner_resume(struct ehv_runner *runner, int idx);
int ehv_runner_stop(struct ehv_runner *runner, int idx);
/* Runs fn(vcpu, arg) on vCPU idx's thread (between two runs when RUNNING,
 * half-done I/O completed first) and returns its result. -ESRCH when the
 * vCPU is stopped, -EDEADLK from a vCPU thread of the runner. */
int ehv_runner_call(struct ehv_runner *runner, int idx, ehv_vcpu_fn fn, void *arg);
/* Kicks vCPU idx out of run without a request (its handlers then see
 * nothing: the runner consumes Canceled). -ESRCH when stopped. Any thread. */
int ehv_runner_kick(struct ehv_runner *runner, int idx);
/* Waits until every vCPU is STOPPED (handlers returned STOP, errors, or
 * stop requests), at most timeout_ms (< 0: forever) measured on
 * CLOCK_MONOTONIC (a change of the wall clock does not shorten or stretch
 * it). 0, or -ETIMEDOUT. */
int ehv_runner_wait(struct ehv_runner *runner, int timeout_ms);
/* State of vCPU idx (enum ehv_vcpu_state), or -EINVAL. Any thread. */
int ehv_runner_state(struct ehv_runner *runner, int idx);
/* Why vCPU idx stopped: 0 (requested or a handler's STOP), the negative
 * errno of a failed run or handler; 0 while not stopped. -EINVAL bad idx. */
int ehv_runner_error(struct ehv_runner *runner, int idx);
/* The vCPU at idx, or NULL. */
struct ehv_vcpu *ehv_runner_vcpu(struct ehv_runner *runner, int idx);

/* ------------------------------------------------------------------------
 * Mock backend
 * ------------------------------------------------------------------------
 * A vCPU of a mock VM runs a script: each ehv_vcpu_run() first consumes the
 * answer to the previous exit (as KVM does on re-entry), then honours
 * immediate_exit (returns Canceled), then produces the next step. When the
 * script is exhausted the vCPU behaves like an idle guest: it stays "in the
 * guest" until kicked (as EHV_MOCK_SPIN).
 */

enum ehv_mock_step_kind {
	EHV_MOCK_EXIT = 0, /* return .exit (repeat times) */
	EHV_MOCK_SPIN,	   /* stay in the guest until kicked, then Canceled */
	EHV_MOCK_FAIL,	   /* run returns .error (a negative errno) */
};

/* step flags */
/* The answer to this exit is a fragment: consuming it (even with
 * immediate_exit set) goes straight on to the next step, as KVM does for
 * an MMIO access split in several exits. */
#define EHV_MOCK_F_SPLIT (1u << 0)

struct ehv_mock_step {
	enum ehv_mock_step_kind kind;
	struct ehv_exit exit;
	uint32_t repeat;   /* EXIT: times to produce it; 0 means 1 */
	int error;	   /* FAIL: the -errno run returns */
	unsigned flags;	   /* EHV_MOCK_F_* */
	uint64_t delay_us; /* EXIT: time "in the guest" before the exit (a kick ends it early) */
};

/* Replaces vCPU's script (copied; allocates). Not while the vCPU is in run.
 * Errors: -EINVAL (not a mock vCPU, bad step: an I/O exit wider than 8 bytes
 * or count * width > 64, an MMIO width 0 or > 8), -ENOMEM. */
int ehv_mock_vcpu_script(struct ehv_vcpu *vcpu, const struct ehv_mock_step *steps, size_t n);

/* What the mock saw of one consumed exit (every Io*, Mmio*, SysReg* and
 * Hypercall exit, answered or not), in order. A scripted IoWrite with
 * count > 1 carries data + i as element i. */
struct ehv_mock_record {
	uint32_t step;		     /* script index */
	enum ehv_exit_reason reason; /* of the answered exit */
	uint64_t value;		     /* read: the answer (first element); hypercall: ret;
				       sysreg read: the value */
	bool fault;		     /* sysreg: the access was made to fault */
	bool immediate;		     /* consumed by a run with immediate_exit set */
	bool handled;		     /* the caller called ehv_vcpu_handle_* for it */
	uint32_t count;		     /* I/O elements answered */
	uint64_t values[8];	     /* I/O read: the first 8 elements */
};
struct ehv_mock_stats {
	uint64_t runs;	       /* ehv_vcpu_run calls that reached the mock */
	uint64_t canceled;     /* runs that returned Canceled */
	uint64_t completions;  /* answered exits consumed */
	uint64_t steps_done;   /* exits produced */
	uint64_t suspends;     /* ehv_vcpu_on_suspend calls */
	uint64_t caps_enabled; /* ehv_vcpu_enable_raw_capability successes */
	uint32_t last_cap;
	uint64_t last_cap_args[4];
	bool script_done; /* every step produced */
};
/* Copies up to max records into out (may be NULL with max 0); returns how
 * many exist (at most 4096 are kept). Call while the vCPU is not in run. */
int ehv_mock_vcpu_records(struct ehv_vcpu *vcpu, struct ehv_mock_record *out, size_t max);
int ehv_mock_vcpu_stats(struct ehv_vcpu *vcpu, struct ehv_mock_stats *out);
/* Makes ehv_*_check_raw_capability(cap) answer value, and
 * ehv_*_enable_raw_capability(cap) succeed when value > 0 (else -EINVAL),
 * for this mock hypervisor and the VMs (and their vCPUs) created from it
 * afterwards (they copy the table). At most 16 capabilities: -ENOSPC. */
int ehv_mock_set_capability(struct ehv_hypervisor *hyp, long cap, int value);

/* ---- mock: hypervisor tables and what the VM layer saw */

/* The table ehv_hypervisor_supported_cpuid() answers (copied; at most
 * EHV_CPUID_MAX_ENTRIES: -E2BIG), and the two MSR lists (at most
 * EHV_MSR_LIST_MAX each; feature NULL with nfeature 0 makes the feature
 * query answer -EOPNOTSUPP as KVM does without the capability). Not
 * concurrently with the queries. -EINVAL when hyp is not a mock. */
int ehv_mock_set_supported_cpuid(struct ehv_hypervisor *hyp,
				 const struct ehv_x86_cpuid_entry *entries, size_t n);
int ehv_mock_set_msr_lists(struct ehv_hypervisor *hyp, const uint32_t *index, size_t nindex,
			   const uint32_t *feature, size_t nfeature);

#define EHV_MOCK_MAX_EVENTFDS 64
/* A snapshot of a mock VM's state: slots, platform, lines, eventfds. */
struct ehv_mock_vm_state {
	struct {
		bool used;
		uint64_t gpa, size;
		void *hva;
		unsigned flags;
	} slots[EHV_MAX_MEM_SLOTS];
	bool platform; /* ehv_vm_setup_platform succeeded */
	unsigned platform_flags;
	uint64_t irq_line_calls; /* set_irq_line calls (pulses count two) */
	uint32_t last_gsi;
	bool last_level;
	uint8_t levels[64];  /* level of GSI 0..63 after the last call */
	uint32_t rising[64]; /* rising edges per GSI 0..63 (a pulse is one) */
	unsigned nirqfds;
	struct {
		int fd, resample_fd;
		uint32_t gsi;
	} irqfds[EHV_MOCK_MAX_EVENTFDS];
	unsigned nioeventfds;
	struct ehv_ioeventfd ioeventfds[EHV_MOCK_MAX_EVENTFDS];
	struct ehv_clock clock; /* as last set (flags: EHV_CLOCK_STABLE) */
	uint64_t vcpus_created;
};
/* Copies the VM's state. -EINVAL when vm is not a mock VM. Any thread. */
int ehv_mock_vm_state(struct ehv_vm *vm, struct ehv_mock_vm_state *out);
/* The CPUID table last set on the vCPU: copies up to max entries, returns
 * how many were set (0 before any set). -EINVAL when not a mock vCPU. */
int ehv_mock_vcpu_cpuid(struct ehv_vcpu *vcpu, struct ehv_x86_cpuid_entry *out, size_t max);
/* Makes ehv_vcpu_get_msrs/set_msrs stop at MSR index (as KVM does for an
 * MSR it does not know). At most 8 per vCPU: -ENOSPC. */
int ehv_mock_vcpu_refuse_msr(struct ehv_vcpu *vcpu, uint32_t index);
/* Marks the pages of [gpa, gpa + len) dirty in the log of the slot that
 * holds them (a slot with EHV_MEM_LOG_DIRTY), as a guest write would.
 * -EINVAL when vm is not a mock VM or len is 0, -ENOENT when no dirty-logged
 * slot holds the whole range. Any thread. */
int ehv_mock_vm_mark_dirty(struct ehv_vm *vm, uint64_t gpa, uint64_t len);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_HV_H */
