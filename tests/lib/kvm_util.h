/* tests/lib/kvm_util.h - KVM test helpers: VMs with guest memory, vCPU modes, guest images, ucalls. */
#ifndef EMBER_TEST_KVM_UTIL_H
#define EMBER_TEST_KVM_UTIL_H

/*
 * Every helper reports its errors through the test framework (REQUIRE /
 * TEST_FAIL): a helper that returns has succeeded. For use in KVM_TEST
 * bodies (and threads they start); not thread-safe per VM except where said.
 *
 * Guest-physical layout of a kvmu VM (one memory slot, slot 0, at GPA 0):
 *
 *   0x01000  GDT (KVMU_SEL_*), 0x01800 TSS           (PM32 / LM64 vCPUs)
 *   0x02000  page tables: PML4, PDPT, 4 PDs -> 4 GiB identity map with
 *            2 MiB pages (LM64 vCPUs)
 *            (the tables block of <ember/kvm_guest.h> at KVMU_GDT_GPA)
 *   0x08000  real-mode guest images (rm16_*, linked there)
 *   0x10000  vCPU stacks: vCPU i's stack ends at KVMU_STACK_TOP(i)
 *   0x90000  KVMU_SCRATCH_GPA: 64 KiB free for tests
 *   0x100000 32/64-bit guest images (pm32_* / lm64_*, linked there)
 *
 * GPAs at and above the memory size are not backed: guest accesses there
 * exit as MMIO (KVMU_MMIO_GPA is a convenient one, identity mapped too).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ember/kvm.h>
#include <ember/kvm_guest.h>

#include "test.h"
#include "ucall.h"

#define KVMU_MAX_VCPUS	  8
#define KVMU_GDT_GPA	  0x1000ull
#define KVMU_TSS_GPA	  0x1800ull
#define KVMU_PML4_GPA	  0x2000ull
#define KVMU_PDPT_GPA	  0x3000ull
#define KVMU_PD_GPA	  0x4000ull /* 4 pages */
#define KVMU_STACK_TOP(i) (0x90000ull - 0x10000ull * (i))
#define KVMU_SCRATCH_GPA  0x90000ull
#define KVMU_SCRATCH_SIZE 0x10000ull
#define KVMU_MMIO_GPA	  0xc0000000ull

/* GDT selectors (those of <ember/kvm_guest.h>) */
#define KVMU_SEL_CODE64 EKVM_GUEST_SEL_CODE64
#define KVMU_SEL_DATA	EKVM_GUEST_SEL_DATA
#define KVMU_SEL_CODE32 EKVM_GUEST_SEL_CODE32
#define KVMU_SEL_TSS	EKVM_GUEST_SEL_TSS

enum kvmu_mode {
	KVMU_MODE_REAL = 16,   /* CS = DS = ES = SS(base) = 0, IP = entry */
	KVMU_MODE_PROT32 = 32, /* flat 4 GiB segments, paging off */
	KVMU_MODE_LONG64 = 64, /* identity-mapped 4 GiB, CPL 0 */
};

/* A guest image built by tests/guests/guests.mk and linked into test-kvm. */
struct kvmu_guest {
	const char *name;
	const uint8_t *data;
	size_t size;
	uint64_t base; /* load GPA = entry point */
	enum kvmu_mode mode;
};
/* The layout of the generated ember_guest_NAME_info symbol. */
struct kvmu_guest_info {
	uint64_t base;
	uint32_t mode;
	uint32_t pad;
};
/* KVMU_GUEST(lm64_hello): the image of tests/guests/lm64_hello.c. */
#define KVMU_GUEST(g_)                                                                   \
	({                                                                               \
		extern const uint8_t ember_guest_##g_##_start[]                          \
		    __attribute__((visibility("hidden")));                               \
		extern const uint8_t ember_guest_##g_##_end[]                            \
		    __attribute__((visibility("hidden")));                               \
		extern const struct kvmu_guest_info ember_guest_##g_##_info              \
		    __attribute__((visibility("hidden")));                               \
		(struct kvmu_guest){                                                     \
		    .name = #g_,                                                         \
		    .data = ember_guest_##g_##_start,                                    \
		    .size = (size_t)(ember_guest_##g_##_end - ember_guest_##g_##_start), \
		    .base = ember_guest_##g_##_info.base,                                \
		    .mode = (enum kvmu_mode)ember_guest_##g_##_info.mode,                \
		};                                                                       \
	})

struct kvmu_vcpu;

struct kvmu_vm {
	struct ekvm_sys *sys;
	struct ekvm_vm *vm;
	struct ekvm_guest_mem *gmem; /* slot 0 */
	uint8_t *mem;		     /* host mapping of slot 0 */
	uint64_t mem_size;	     /* bytes, at GPA 0 */
	struct kvm_cpuid2 *cpuid;    /* KVM_GET_SUPPORTED_CPUID, for every vCPU */
	const uint8_t *loaded;	     /* image last loaded by kvmu_vcpu_add_guest */
	struct kvmu_vcpu *vcpus[KVMU_MAX_VCPUS];
};

struct kvmu_vcpu {
	struct kvmu_vm *vm;
	struct ekvm_vcpu *vcpu;
	struct kvm_run *run;
	unsigned id;
	enum kvmu_mode mode;
	struct ekvm_exit exit;	  /* the last exit, from kvmu_run */
	struct kvm_cpuid2 *cpuid; /* what KVM_SET_CPUID2 got */
	/* kvmu_run's watchdog: a KVM_RUN that has not returned after
	 * timeout_ms (default KVMU_RUN_TIMEOUT_MS) is kicked out (a signal,
	 * immediate_exit) and fails the test with the guest's RIP; with
	 * timeout_ok set it returns the Intr exit and sets timed_out instead. */
	unsigned timeout_ms;
	bool timeout_ok;
	bool timed_out;
};

#define KVMU_RUN_TIMEOUT_MS 30000

/* A decoded ucall (strings copied out of guest memory, NUL-terminated). */
struct kvmu_ucall {
	uint32_t cmd; /* UCALL_* */
	uint32_t line;
	uint32_t nargs;
	uint64_t args[UCALL_MAX_ARGS];
	char file[128];
	char text[192];
};

/* ---------------------------------------------------------------- VMs */

/* Opens /dev/kvm, creates a VM with mem_mib MiB of zeroed memory at GPA 0
 * (slot 0) and KVM_SET_TSS_ADDR. Free with kvmu_vm_destroy. */
struct kvmu_vm *kvmu_vm_create(unsigned mem_mib);
/* Destroys the vCPUs, the VM and the memory. NULL is allowed. */
void kvmu_vm_destroy(struct kvmu_vm *vm);

/* Host pointer to [gpa, gpa + len) of slot 0; fails the test if the range
 * is not all inside guest memory. */
void *kvmu_gpa(struct kvmu_vm *vm, uint64_t gpa, uint64_t len);
bool kvmu_gpa_ok(const struct kvmu_vm *vm, uint64_t gpa, uint64_t len);
void kvmu_read(struct kvmu_vm *vm, uint64_t gpa, void *buf, uint64_t len);
void kvmu_write(struct kvmu_vm *vm, uint64_t gpa, const void *buf, uint64_t len);
uint64_t kvmu_read64(struct kvmu_vm *vm, uint64_t gpa);
uint32_t kvmu_read32(struct kvmu_vm *vm, uint64_t gpa);
void kvmu_write64(struct kvmu_vm *vm, uint64_t gpa, uint64_t v);
void kvmu_write32(struct kvmu_vm *vm, uint64_t gpa, uint32_t v);

/* Copies a guest image to its base GPA. */
void kvmu_load_guest(struct kvmu_vm *vm, const struct kvmu_guest *g);

/* ---------------------------------------------------------------- vCPUs */

/* Creates vCPU id (< KVMU_MAX_VCPUS), gives it KVM's supported CPUID (with
 * its APIC id) and puts it in mode at entry with its stack, RDI = id and
 * RSI = arg (kvmu_vcpu_set_mode). Building the GDT/TSS/page tables first. */
struct kvmu_vcpu *kvmu_vcpu_add(struct kvmu_vm *vm, unsigned id, enum kvmu_mode mode,
				uint64_t entry, uint64_t arg);
/* kvmu_load_guest (unless this image is already loaded) + kvmu_vcpu_add at
 * the image's base in the image's mode. */
struct kvmu_vcpu *kvmu_vcpu_add_guest(struct kvmu_vm *vm, unsigned id, const struct kvmu_guest *g,
				      uint64_t arg);
/* kvmu_vm_create(mem_mib) + kvmu_vcpu_add_guest(vm, 0, g, 0). */
struct kvmu_vm *kvmu_vm_create_with_guest(unsigned mem_mib, const struct kvmu_guest *g,
					  struct kvmu_vcpu **vcpu0);
/* (Re)sets sregs and regs for mode (see enum kvmu_mode), entry, stack,
 * RDI = id, RSI = arg, RFLAGS = 0x2. */
void kvmu_vcpu_set_mode(struct kvmu_vcpu *v, enum kvmu_mode mode, uint64_t entry, uint64_t arg);

/* Adds or replaces CPUID leaf (entry->function, entry->index) of v and
 * hands KVM the new table (before the vCPU first runs). */
void kvmu_vcpu_set_cpuid_entry(struct kvmu_vcpu *v, const struct kvm_cpuid_entry2 *entry);

void kvmu_get_regs(struct kvmu_vcpu *v, struct kvm_regs *regs);
void kvmu_set_regs(struct kvmu_vcpu *v, const struct kvm_regs *regs);
void kvmu_get_sregs(struct kvmu_vcpu *v, struct kvm_sregs *sregs);
void kvmu_set_sregs(struct kvmu_vcpu *v, const struct kvm_sregs *sregs);

/* ---------------------------------------------------------------- running */

/* One KVM_RUN (failing the test if it returns an error, or on the
 * watchdog, see struct kvmu_vcpu); the decoded exit is kept in v->exit and
 * returned. Not async-signal-safe; one thread per vCPU at a time. */
const struct ekvm_exit *kvmu_run(struct kvmu_vcpu *v);

/* Whether exit is a ucall (a 4-byte OUT to UCALL_PORT). */
bool kvmu_exit_is_ucall(const struct ekvm_exit *exit);
/* Decodes the ucall in v->exit (which must be one) into *uc. */
void kvmu_decode_ucall(struct kvmu_vcpu *v, struct kvmu_ucall *uc);

/* Runs until the next exit, which must be a ucall (else the test fails,
 * describing the exit); returns its cmd. A guest UCALL_ASSERT_FAIL fails the
 * test with the guest's file:line, its text and values, unless raw. */
uint32_t kvmu_run_ucall_at(const char *file, int line, struct kvmu_vcpu *v, struct kvmu_ucall *uc,
			   bool raw);
#define kvmu_run_ucall(v, uc)	  kvmu_run_ucall_at(__FILE__, __LINE__, (v), (uc), false)
#define kvmu_run_ucall_raw(v, uc) kvmu_run_ucall_at(__FILE__, __LINE__, (v), (uc), true)
/* Runs to the next ucall, which must be UCALL_SYNC (fills *uc, may be NULL) */
void kvmu_expect_sync_at(const char *file, int line, struct kvmu_vcpu *v, struct kvmu_ucall *uc);
#define kvmu_expect_sync(v, uc) kvmu_expect_sync_at(__FILE__, __LINE__, (v), (uc))
/* Runs to the next ucall, which must be UCALL_DONE. */
void kvmu_expect_done_at(const char *file, int line, struct kvmu_vcpu *v);
#define kvmu_expect_done(v) kvmu_expect_done_at(__FILE__, __LINE__, (v))

/* Fails the test: "what: unexpected exit <description>" at file:line. */
void kvmu_fail_exit_at(const char *file, int line, struct kvmu_vcpu *v, const char *what)
    __attribute__((noreturn));
#define kvmu_fail_exit(v, what) kvmu_fail_exit_at(__FILE__, __LINE__, (v), (what))
/* Requires v->exit.kind == kind, else kvmu_fail_exit. */
#define KVMU_REQUIRE_EXIT(v, k)                                                     \
	do {                                                                        \
		if ((v)->exit.kind != (k))                                          \
			kvmu_fail_exit_at(__FILE__, __LINE__, (v), "expected " #k); \
	} while (0)
/* One line describing an exit (kind and its main fields) into buf. */
const char *kvmu_exit_str(const struct ekvm_exit *exit, char *buf, size_t size);

/* Whether KVM's supported CPUID says AMD (or Hygon): SVM rather than VMX. */
bool kvmu_host_is_amd(struct kvmu_vm *vm);

/* CLOCK_MONOTONIC in ns. */
uint64_t kvmu_now_ns(void);

#endif /* EMBER_TEST_KVM_UTIL_H */
