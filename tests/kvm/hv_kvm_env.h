/* tests/kvm/hv_kvm_env.h - the KVM backend's struct hvt_backend: the shared guests as real-mode code. */
#ifndef EMBER_TESTS_HV_KVM_ENV_H
#define EMBER_TESTS_HV_KVM_ENV_H

#include "../unit/hv_bodies.h"

#include <sys/mman.h>

/*
 * Guest memory: 64 KiB at GPA 0 (so HVT_MMIO_ADDR = 0x10000 is unbacked and
 * exits as MMIO). Code at HVK_CODE, stacks below 0x8000, scratch at 0x3000.
 * The guests run in 16-bit real mode with every segment at base 0.
 */
#define HVK_MEM_SIZE 0x10000
#define HVK_CODE     0x1000

/* The shared guests, assembled with the test (local symbols, one copy per
 * object that includes this header). */
__asm__(".pushsection .rodata\n"
	".code16\n"
	"hvk_start:\n"
	"hvk_spin:\n"
	"  jmp hvk_spin\n"
	/* endless IoWrite to port 0x10 */
	"hvk_out_loop:\n"
	"  mov $0x10, %dx\n"
	"  xor %ax, %ax\n"
	"1:outb %al, %dx\n"
	"  inc %ax\n"
	"  jmp 1b\n"
	/* ecx IoWrites to port 0x10 (value i), esi MmioWrites to 0x10000, hlt */
	"hvk_counted:\n"
	"  mov $0x10, %dx\n"
	"  xor %eax, %eax\n"
	"  test %ecx, %ecx\n"
	"  jz 2f\n"
	"1:outb %al, %dx\n"
	"  inc %eax\n"
	"  dec %ecx\n"
	"  jnz 1b\n"
	"2:mov %esi, %ecx\n"
	"  test %ecx, %ecx\n"
	"  jz 4f\n"
	"  mov $0x1000, %bx\n"
	"  mov %bx, %es\n"
	"  xor %eax, %eax\n"
	"3:movb %al, %es:0\n"
	"  inc %eax\n"
	"  dec %ecx\n"
	"  jnz 3b\n"
	"4:hlt\n"
	"  jmp 4b\n"
	/* MmioRead of 4 bytes at 0x10000 into eax, IoWrite of it to 0x11, hlt */
	"hvk_mmio_read:\n"
	"  mov $0x1000, %bx\n"
	"  mov %bx, %es\n"
	"  movl %es:0, %eax\n"
	"hvk_mmio_read_done:\n"
	"  mov $0x11, %dx\n"
	"  outl %eax, %dx\n"
	"5:hlt\n"
	"  jmp 5b\n"
	"hvk_end:\n"
	".code64\n"
	".popsection\n");

#define HVK_SYM(s) extern const uint8_t s[] __attribute__((visibility("hidden")))
HVK_SYM(hvk_start);
HVK_SYM(hvk_spin);
HVK_SYM(hvk_out_loop);
HVK_SYM(hvk_counted);
HVK_SYM(hvk_mmio_read);
HVK_SYM(hvk_mmio_read_done);
HVK_SYM(hvk_end);

/* the guest-physical address of a label of the blob */
#define HVK_GPA(sym) ((uint16_t)(HVK_CODE + (uintptr_t)((sym)-hvk_start)))

struct hvk_env {
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
	uint8_t *mem;
};

/* A KVM VM with 64 KiB of memory at GPA 0 holding code (size bytes at
 * HVK_CODE). */
static inline void hvk_env_open_with(struct hvk_env *env, const uint8_t *code, size_t size)
{
	memset(env, 0, sizeof(*env));
	int r = ehv_hypervisor_open(NULL, &env->hyp);
	if (r < 0)
		TEST_FAIL("ehv_hypervisor_open(KVM): %s", test_errno_name(r));
	REQUIRE_OK(ehv_vm_create(env->hyp, &env->vm));
	env->mem =
	    mmap(NULL, HVK_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(env->mem != MAP_FAILED);
	REQUIRE(size <= HVK_MEM_SIZE - HVK_CODE);
	memcpy(env->mem + HVK_CODE, code, size);
	REQUIRE_OK(ehv_vm_set_memory(env->vm, 0, 0, HVK_MEM_SIZE, env->mem, 0));
}

static inline void hvk_env_close(struct hvk_env *env)
{
	ehv_vm_destroy(env->vm);
	ehv_hypervisor_close(env->hyp);
	munmap(env->mem, HVK_MEM_SIZE);
}

/* vCPU id in real mode at ip, its own stack */
static inline struct ehv_vcpu *hvk_vcpu_at(struct hvk_env *env, uint32_t id, uint16_t ip)
{
	struct ehv_vcpu *v;
	REQUIRE_OK(ehv_vcpu_create(env->vm, id, &v));
	REQUIRE_OK(ehv_vcpu_set_real_mode(v, ip, (uint16_t)(0x8000 - 0x400 * (id % 16))));
	return v;
}

static void hvk_open(void **out)
{
	struct hvk_env *env = calloc(1, sizeof(*env));
	REQUIRE(env);
	hvk_env_open_with(env, hvk_start, (size_t)(hvk_end - hvk_start));
	*out = env;
}

static void hvk_close(void *p)
{
	hvk_env_close(p);
	free(p);
}

static void hvk_vcpu(void *p, uint32_t id, enum hvt_guest g, uint32_t n, uint32_t m,
		     struct ehv_vcpu **out)
{
	struct hvk_env *env = p;
	const uint8_t *entry = g == HVT_SPIN	   ? hvk_spin
			       : g == HVT_OUT_LOOP ? hvk_out_loop
			       : g == HVT_COUNTED  ? hvk_counted
						   : hvk_mmio_read;
	*out = hvk_vcpu_at(env, id, HVK_GPA(entry));
	if (g == HVT_COUNTED) {
		struct ehv_x86_regs regs;
		REQUIRE_OK(ehv_vcpu_get_regs(*out, &regs));
		regs.rcx = n;
		regs.rsi = m;
		REQUIRE_OK(ehv_vcpu_set_regs(*out, &regs));
	}
}

static const struct hvt_backend hvk_backend = {
    .name = "kvm",
    .open = hvk_open,
    .close = hvk_close,
    .vcpu = hvk_vcpu,
};

#endif
