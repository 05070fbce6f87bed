/* tests/kvm/vm_realmode.h - tiny real-mode guests for the binding's system/VM/vCPU tests. */
#ifndef EMBER_TESTS_VM_REALMODE_H
#define EMBER_TESTS_VM_REALMODE_H

/*
 * Helpers shared by tests/kvm/{system,vm,vcpu_state,errors}_*.c (static
 * inline: each test file takes what it uses). A guest is a few lines of
 * 16-bit assembly (RM_GUEST) copied to guest physical RM_CODE and run in real
 * mode with CS = DS = SS = 0, so a guest address is a physical address below
 * 64 KiB (above that the code loads a segment register). The code must be
 * position independent (relative jumps only); `.org N` places a label at
 * RM_CODE + N.
 */
#include <ember/kvm.h>
#include <ember/kvm_guest.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/test.h"

/* RM_GUEST(name, "asm"): 16-bit code in .rodata between name[] and name_end[]. */
#define RM_GUEST(name, body)                                                   \
	__asm__(".pushsection .rodata." #name ",\"a\",@progbits\n" #name ":\n" \
		".code16\n" body "\n.code64\n" #name "_end:\n"                 \
		".popsection\n");                                              \
	extern const uint8_t name[] __attribute__((visibility("hidden")));     \
	extern const uint8_t name##_end[] __attribute__((visibility("hidden")))

#define RM_MEM_SIZE 0x10000u /* slot 0: guest physical 0 .. 64 KiB */
#define RM_CODE	    0x1000u  /* where the guest code is loaded and starts */
#define RM_STACK    0xf000u  /* initial SP */

struct rm_vm {
	struct ekvm_sys *sys;
	struct ekvm_vm *vm;
	struct ekvm_vcpu *vcpu;
	struct kvm_run *run;
	uint8_t *mem; /* slot 0, RM_MEM_SIZE bytes at guest physical 0 */
};

/* Anonymous, page-aligned host memory for a memory slot (REQUIREs success). */
static inline void *rm_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		TEST_FAIL("mmap %zu bytes: %s", size, strerror(errno));
	return p;
}

/* /dev/kvm and an empty VM. */
static inline void rm_open(struct rm_vm *t)
{
	memset(t, 0, sizeof(*t));
	REQUIRE_OK(ekvm_sys_open(&t->sys));
	REQUIRE_OK(ekvm_vm_create(t->sys, 0, &t->vm));
}

/* Slot 0 (RM_MEM_SIZE bytes at guest physical 0). */
static inline void rm_add_ram(struct rm_vm *t)
{
	t->mem = (uint8_t *)rm_alloc(RM_MEM_SIZE);
	REQUIRE_OK(ekvm_vm_set_memory(t->vm, 0, 0, 0, RM_MEM_SIZE, t->mem));
}

static inline void rm_add_vcpu(struct rm_vm *t)
{
	REQUIRE_OK(ekvm_vcpu_create(t->vm, 0, &t->vcpu));
	t->run = ekvm_vcpu_run_area(t->vcpu);
	REQUIRE(t->run != NULL);
}

/* Real mode, every segment base 0, IP = start, SP = RM_STACK, IF = 0
 * (the convenience tier's ekvm_vcpu_setup_real). */
static inline void rm_reset_regs(struct rm_vm *t, uint64_t start)
{
	REQUIRE(start < 0x10000);
	REQUIRE_OK(ekvm_vcpu_setup_real(t->vcpu, 0, (uint16_t)start, 0, RM_STACK));
}

/* Copies code to RM_CODE and points the vCPU at it. */
static inline void rm_load(struct rm_vm *t, const uint8_t *code, const uint8_t *code_end)
{
	size_t len = (size_t)(code_end - code);
	REQUIRE(len > 0 && RM_CODE + len <= RM_MEM_SIZE);
	memcpy(t->mem + RM_CODE, code, len);
	rm_reset_regs(t, RM_CODE);
}

/* VM + 64 KiB of RAM + vCPU 0 ready to run code (NULL code: nothing loaded). */
static inline void rm_setup(struct rm_vm *t, const uint8_t *code, const uint8_t *code_end)
{
	rm_open(t);
	rm_add_ram(t);
	rm_add_vcpu(t);
	if (code)
		rm_load(t, code, code_end);
}

static inline void rm_close(struct rm_vm *t)
{
	ekvm_vcpu_destroy(t->vcpu);
	ekvm_vm_destroy(t->vm);
	ekvm_sys_close(t->sys);
	if (t->mem)
		munmap(t->mem, RM_MEM_SIZE);
	memset(t, 0, sizeof(*t));
}

/* One KVM_RUN (REQUIREs that it succeeds). */
static inline void rm_run(struct rm_vm *t, struct ekvm_exit *ex)
{
	memset(ex, 0, sizeof(*ex));
	REQUIRE_OK(ekvm_vcpu_run(t->vcpu, ex));
}

static inline uint64_t rm_le(const uint8_t *p, unsigned len)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < len && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Runs and REQUIREs an OUT of `size` bytes of `value` to `port`. */
#define rm_expect_out(t_, port_, size_, value_)                                     \
	do {                                                                        \
		struct ekvm_exit ex_;                                               \
		rm_run((t_), &ex_);                                                 \
		if (ex_.kind != EKVM_EXIT_IO_OUT)                                   \
			TEST_FAIL("want an OUT to port 0x%x, got exit %s (raw %u)", \
				  (unsigned)(port_), ekvm_exit_kind_name(ex_.kind), \
				  ex_.raw_reason);                                  \
		REQUIRE_EQ(ex_.u.io.port, (port_));                                 \
		REQUIRE_EQ(ex_.u.io.size, (size_));                                 \
		REQUIRE_EQ(ex_.u.io.count, 1);                                      \
		REQUIRE_EQ(rm_le(ex_.u.io.data, ex_.u.io.size), (value_));          \
	} while (0)

/* Runs and REQUIREs an MMIO write of `len` bytes of `value` to `addr`. */
#define rm_expect_mmio_write(t_, addr_, len_, value_)                                         \
	do {                                                                                  \
		struct ekvm_exit ex_;                                                         \
		rm_run((t_), &ex_);                                                           \
		if (ex_.kind != EKVM_EXIT_MMIO_WRITE)                                         \
			TEST_FAIL("want an MMIO write to 0x%llx, got exit %s (raw %u)",       \
				  (unsigned long long)(addr_), ekvm_exit_kind_name(ex_.kind), \
				  ex_.raw_reason);                                            \
		REQUIRE_EQ(ex_.u.mmio.addr, (addr_));                                         \
		REQUIRE_EQ(ex_.u.mmio.len, (len_));                                           \
		REQUIRE_EQ(rm_le(ex_.u.mmio.data, ex_.u.mmio.len), (value_));                 \
	} while (0)

/* Runs and REQUIREs a given exit kind. */
#define rm_expect_kind(t_, want_)                                                              \
	do {                                                                                   \
		struct ekvm_exit ex_;                                                          \
		rm_run((t_), &ex_);                                                            \
		if (ex_.kind != (want_))                                                       \
			TEST_FAIL("want exit %s, got %s (raw %u)", ekvm_exit_kind_name(want_), \
				  ekvm_exit_kind_name(ex_.kind), ex_.raw_reason);              \
	} while (0)

/* Whether the kernel reports a capability on /dev/kvm (> 0). */
static inline bool rm_has_cap(struct ekvm_sys *sys, long cap)
{
	return ekvm_sys_check_extension(sys, cap) > 0;
}

#endif /* EMBER_TESTS_VM_REALMODE_H */
