/* tests/kvm/guest_modes.c - the convenience tier (<ember/kvm_guest.h>) on real KVM: guest memory, real/32-bit/64-bit vCPU setup. */
#include <ember/kvm.h>
#include <ember/kvm_guest.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/test.h"

/* GUEST_CODE(name, ".code64", "asm"): machine code between name[] and name_end[]. */
#define GUEST_CODE(name, mode, body)                                                          \
	__asm__(".pushsection .rodata." #name ",\"a\",@progbits\n" #name ":\n" mode "\n" body \
		"\n.code64\n" #name "_end:\n"                                                 \
		".popsection\n");                                                             \
	extern const uint8_t name[] __attribute__((visibility("hidden")));                    \
	extern const uint8_t name##_end[] __attribute__((visibility("hidden")))

#define MEM_SIZE  (4u << 20)
#define CODE_GPA  0x100000u
#define STACK_TOP 0x80000u
#define PORT	  0x80

/* 64-bit only: a 64-bit immediate through the stack, its high half out. */
GUEST_CODE(lm_code, ".code64",
	   "movabs $0x1122334455667788, %rax\n"
	   "push %rax\n"
	   "pop %rbx\n"
	   "mov %rbx, 0x3ffff8\n" /* the last 8 bytes of the 4 MiB, second 2 MiB page */
	   "shr $32, %rax\n"
	   "mov $0x80, %dx\n"
	   "out %eax, %dx\n"
	   "hlt\n");

/* Stores 0xabcd at the address in RSI (64-bit). */
GUEST_CODE(lm_touch, ".code64",
	   "movl $0xabcd, (%rsi)\n"
	   "hlt\n");

/* 32-bit: a 32-bit immediate through the stack, a store above 1 MiB, a 4-byte OUT. */
GUEST_CODE(pm_code, ".code32",
	   "mov $0x12345678, %eax\n"
	   "push %eax\n"
	   "pop %ebx\n"
	   "mov %ebx, 0x200000\n"
	   "mov $0x80, %dx\n"
	   "out %eax, %dx\n"
	   "hlt\n");

/* 16-bit: a 2-byte OUT of an immediate, the stack, then CS itself. */
GUEST_CODE(rm_code, ".code16",
	   "mov $0x1234, %ax\n"
	   "push %ax\n"
	   "pop %bx\n"
	   "mov %bx, 0x20\n"
	   "mov $0x80, %dx\n"
	   "out %ax, %dx\n"
	   "mov %cs, %ax\n"
	   "out %ax, %dx\n"
	   "hlt\n");

struct fix {
	struct ekvm_sys *sys;
	struct ekvm_vm *vm;
	struct ekvm_guest_mem *mem;
	struct ekvm_vcpu *vcpu;
};

static void fix_open(struct fix *f, uint64_t mem_size)
{
	memset(f, 0, sizeof(*f));
	REQUIRE_OK(ekvm_sys_open(&f->sys));
	REQUIRE_OK(ekvm_vm_create(f->sys, 0, &f->vm));
	REQUIRE_OK(ekvm_vm_set_tss_addr(f->vm, 0xfffbd000));
	REQUIRE_OK(ekvm_guest_mem_create(f->vm, 0, 0, mem_size, &f->mem));
	REQUIRE_OK(ekvm_vcpu_create(f->vm, 0, &f->vcpu));
}

static void fix_close(struct fix *f)
{
	ekvm_vcpu_destroy(f->vcpu);
	ekvm_guest_mem_destroy(f->mem);
	ekvm_vm_destroy(f->vm);
	ekvm_sys_close(f->sys);
}

static void load(struct fix *f, uint64_t gpa, const uint8_t *code, const uint8_t *end)
{
	REQUIRE_OK(ekvm_guest_mem_write(f->mem, gpa, code, (size_t)(end - code)));
}

static void run(struct fix *f, struct ekvm_exit *ex, enum ekvm_exit_kind want)
{
	memset(ex, 0, sizeof(*ex));
	REQUIRE_OK(ekvm_vcpu_run(f->vcpu, ex));
	if (ex->kind != want)
		TEST_FAIL("want exit %s, got %s (raw %u)", ekvm_exit_kind_name(want),
			  ekvm_exit_kind_name(ex->kind), ex->raw_reason);
}

/* Runs to an OUT of size bytes of value to PORT. */
static void expect_out(struct fix *f, unsigned size, uint64_t value)
{
	struct ekvm_exit ex;
	uint64_t v = 0;
	run(f, &ex, EKVM_EXIT_IO_OUT);
	REQUIRE_EQ(ex.u.io.port, PORT);
	REQUIRE_EQ(ex.u.io.count, 1);
	REQUIRE_EQ(ex.u.io.size, size);
	REQUIRE(ex.u.io.data != NULL && ex.u.io.len == size);
	memcpy(&v, ex.u.io.data, size);
	CHECK_EQ(v, value);
}

KVM_TEST(guest_mem_create_map_access)
{
	struct fix f;
	fix_open(&f, MEM_SIZE);
	CHECK(ekvm_guest_mem_vm(f.mem) == f.vm);
	CHECK_EQ(ekvm_guest_mem_slot(f.mem), 0);
	CHECK_EQ(ekvm_guest_mem_gpa(f.mem), 0);
	CHECK_EQ(ekvm_guest_mem_size(f.mem), MEM_SIZE);
	uint8_t *host = ekvm_guest_mem_host(f.mem);
	REQUIRE(host != NULL);
	CHECK_EQ((uintptr_t)host % 4096, 0);
	CHECK(host[0] == 0 && host[MEM_SIZE - 1] == 0); /* zeroed */
	CHECK(ekvm_guest_mem_ptr(f.mem, 0x1234, 16) == host + 0x1234);
	CHECK(ekvm_guest_mem_ptr(f.mem, MEM_SIZE - 8, 8) == host + MEM_SIZE - 8);
	CHECK(ekvm_guest_mem_ptr(f.mem, MEM_SIZE, 0) == host + MEM_SIZE);
	CHECK(ekvm_guest_mem_ptr(f.mem, MEM_SIZE - 8, 9) == NULL);
	CHECK(ekvm_guest_mem_ptr(f.mem, MEM_SIZE, 1) == NULL);
	CHECK(ekvm_guest_mem_ptr(f.mem, 8, UINT64_MAX) == NULL); /* no wrap */
	CHECK(ekvm_guest_mem_ptr(f.mem, UINT64_MAX, 2) == NULL);

	uint64_t v = 0x0123456789abcdefull, back = 0;
	CHECK_OK(ekvm_guest_mem_write(f.mem, 0x2000, &v, sizeof(v)));
	CHECK_OK(ekvm_guest_mem_read(f.mem, 0x2000, &back, sizeof(back)));
	CHECK_EQ(back, v);
	CHECK(memcmp(host + 0x2000, &v, sizeof(v)) == 0);
	CHECK_ERR(ekvm_guest_mem_write(f.mem, MEM_SIZE - 4, &v, sizeof(v)), -EFAULT);
	CHECK_ERR(ekvm_guest_mem_read(f.mem, MEM_SIZE - 4, &back, sizeof(back)), -EFAULT);
	CHECK_EQ(host[MEM_SIZE - 4], 0); /* nothing half-copied */
	CHECK_ERR(ekvm_guest_mem_read(f.mem, 0, NULL, 1), -EINVAL);
	CHECK_OK(ekvm_guest_mem_read(f.mem, MEM_SIZE, NULL, 0));

	/* the guest sees the same memory: a real-mode store read back by the host */
	load(&f, 0x1000, rm_code, rm_code_end);
	REQUIRE_OK(ekvm_vcpu_setup_real(f.vcpu, 0, 0x1000, 0, 0x8000));
	expect_out(&f, 2, 0x1234);
	uint16_t stored = 0;
	CHECK_OK(ekvm_guest_mem_read(f.mem, 0x20, &stored, sizeof(stored)));
	CHECK_EQ(stored, 0x1234);

	/* a second memory at a GPA other than 0: bounds are relative to it */
	struct ekvm_guest_mem *hi = NULL;
	REQUIRE_OK(ekvm_guest_mem_create(f.vm, 1, 1ull << 32, 0x10000, &hi));
	CHECK_EQ(ekvm_guest_mem_gpa(hi), 1ull << 32);
	CHECK(ekvm_guest_mem_ptr(hi, (1ull << 32) - 1, 1) == NULL);
	CHECK(ekvm_guest_mem_ptr(hi, 1ull << 32, 0x10000) == ekvm_guest_mem_host(hi));
	CHECK(ekvm_guest_mem_ptr(hi, 0, 1) == NULL);
	CHECK_ERR(ekvm_guest_mem_read(hi, 0x100, &back, sizeof(back)), -EFAULT);
	ekvm_guest_mem_destroy(hi);
	/* destroy removed the slot: the range can be mapped again */
	REQUIRE_OK(ekvm_guest_mem_create(f.vm, 1, 1ull << 32, 0x10000, &hi));
	ekvm_guest_mem_destroy(hi);
	fix_close(&f);
}

KVM_TEST(guest_mem_create_bad_arguments)
{
	struct fix f;
	fix_open(&f, MEM_SIZE);
	struct ekvm_guest_mem *m = (struct ekvm_guest_mem *)&f; /* must become NULL */
	CHECK_ERR(ekvm_guest_mem_create(NULL, 1, 0x1000000, 0x1000, &m), -EINVAL);
	CHECK(m == NULL);
	CHECK_ERR(ekvm_guest_mem_create(f.vm, 1, 0x1000000, 0x1000, NULL), -EINVAL);
	CHECK_ERR(ekvm_guest_mem_create(f.vm, 1, 0x1000000, 0, &m), -EINVAL);
	CHECK_ERR(ekvm_guest_mem_create(f.vm, 1, 0x1000000, 0x1800, &m), -EINVAL);
	CHECK_ERR(ekvm_guest_mem_create(f.vm, 1, 0x1000800, 0x1000, &m), -EINVAL);
	CHECK_ERR(ekvm_guest_mem_create(f.vm, 1, UINT64_MAX - 0xfff, 0x2000, &m), -EINVAL);
	/* the kernel's refusal: overlapping slot 0 */
	m = (struct ekvm_guest_mem *)&f;
	CHECK_ERR(ekvm_guest_mem_create(f.vm, 1, 0x100000, 0x1000, &m), -EEXIST);
	CHECK(m == NULL);
	/* and nothing stayed mapped: the same range in a free place works */
	REQUIRE_OK(ekvm_guest_mem_create(f.vm, 1, 0x1000000, 0x1000, &m));
	ekvm_guest_mem_destroy(m);
	ekvm_guest_mem_destroy(NULL);
	fix_close(&f);
}

KVM_TEST(guest_vcpu_real_mode)
{
	struct fix f;
	fix_open(&f, MEM_SIZE);
	/* CS:IP = 0x100:0x10 -> 0x1010; SS:SP = 0x800:0x1000 -> stack below 0x9000 */
	load(&f, 0x1010, rm_code, rm_code_end);
	REQUIRE_OK(ekvm_vcpu_setup_real(f.vcpu, 0x100, 0x10, 0x800, 0x1000));
	expect_out(&f, 2, 0x1234); /* `out %ax` is 16-bit only in a 16-bit code segment */
	expect_out(&f, 2, 0x100);  /* the guest's own CS */
	struct ekvm_exit ex;
	run(&f, &ex, EKVM_EXIT_HLT);
	uint16_t w = 0;
	CHECK_OK(ekvm_guest_mem_read(f.mem, 0x20, &w, sizeof(w))); /* DS base 0 */
	CHECK_EQ(w, 0x1234);
	CHECK_OK(ekvm_guest_mem_read(f.mem, 0x8ffe, &w, sizeof(w))); /* SS base 0x8000 */
	CHECK_EQ(w, 0x1234);
	struct kvm_sregs s;
	REQUIRE_OK(ekvm_vcpu_get_sregs(f.vcpu, &s));
	CHECK_EQ(s.cr0 & 1, 0); /* PE off */
	CHECK_EQ(s.efer & (1u << 10), 0);
	CHECK_EQ(s.cs.base, 0x1000);
	CHECK_EQ(s.ss.base, 0x8000);
	struct kvm_regs r;
	REQUIRE_OK(ekvm_vcpu_get_regs(f.vcpu, &r));
	CHECK_EQ(r.rsp & 0xffff, 0x1000);
	fix_close(&f);
}

KVM_TEST(guest_vcpu_prot32_mode)
{
	struct fix f;
	fix_open(&f, MEM_SIZE);
	load(&f, CODE_GPA, pm_code, pm_code_end);
	REQUIRE_OK(ekvm_vcpu_setup_prot32(f.vcpu, f.mem, NULL, CODE_GPA, STACK_TOP));
	expect_out(&f, 4, 0x12345678); /* the bytes of `mov $imm32, %eax`: 32-bit code */
	struct ekvm_exit ex;
	run(&f, &ex, EKVM_EXIT_HLT);
	uint32_t v = 0;
	CHECK_OK(ekvm_guest_mem_read(f.mem, 0x200000, &v, sizeof(v))); /* above 1 MiB, flat */
	CHECK_EQ(v, 0x12345678);
	CHECK_OK(ekvm_guest_mem_read(f.mem, STACK_TOP - 4, &v, sizeof(v)));
	CHECK_EQ(v, 0x12345678);
	struct kvm_sregs s;
	REQUIRE_OK(ekvm_vcpu_get_sregs(f.vcpu, &s));
	CHECK_EQ(s.cr0 & 0x80000001ull, 1); /* PE on, PG off */
	CHECK_EQ(s.efer & (1u << 10), 0);   /* not LMA */
	CHECK_EQ(s.cs.selector, EKVM_GUEST_SEL_CODE32);
	CHECK_EQ(s.cs.db, 1);
	CHECK_EQ(s.cs.l, 0);
	CHECK_EQ(s.ss.selector, EKVM_GUEST_SEL_DATA);
	CHECK_EQ(s.gdt.base, EKVM_GUEST_TABLES_GPA);
	/* the GDT is where the header says, with the code32 descriptor in it */
	uint64_t desc = 0;
	CHECK_OK(ekvm_guest_mem_read(f.mem, EKVM_GUEST_TABLES_GPA + EKVM_GUEST_SEL_CODE32, &desc,
				     sizeof(desc)));
	CHECK_EQ((desc >> 47) & 1, 1);	  /* present */
	CHECK_EQ((desc >> 54) & 1, 1);	  /* D/B: 32-bit */
	CHECK_EQ((desc >> 40) & 0xf, 11); /* code, read, accessed */
	fix_close(&f);
}

KVM_TEST(guest_vcpu_long64_mode)
{
	struct fix f;
	fix_open(&f, MEM_SIZE);
	load(&f, CODE_GPA, lm_code, lm_code_end);
	REQUIRE_OK(ekvm_vcpu_setup_long64(f.vcpu, f.mem, NULL, CODE_GPA, STACK_TOP));
	expect_out(&f, 4, 0x11223344); /* the high half of a 64-bit register */
	struct ekvm_exit ex;
	run(&f, &ex, EKVM_EXIT_HLT);
	struct kvm_regs r;
	REQUIRE_OK(ekvm_vcpu_get_regs(f.vcpu, &r));
	CHECK_EQ(r.rbx, 0x1122334455667788ull);
	CHECK_EQ(r.rsp, STACK_TOP);
	uint64_t q = 0;
	CHECK_OK(ekvm_guest_mem_read(f.mem, 0x3ffff8, &q, sizeof(q))); /* through the map */
	CHECK_EQ(q, 0x1122334455667788ull);
	CHECK_OK(ekvm_guest_mem_read(f.mem, STACK_TOP - 8, &q, sizeof(q)));
	CHECK_EQ(q, 0x1122334455667788ull);
	struct kvm_sregs s;
	REQUIRE_OK(ekvm_vcpu_get_sregs(f.vcpu, &s));
	CHECK_EQ(s.efer & 0x500, 0x500); /* LME, LMA */
	CHECK_EQ(s.cr0 & 0x80000001ull, 0x80000001ull);
	CHECK_EQ(s.cr4 & 0x20, 0x20); /* PAE */
	CHECK_EQ(s.cs.l, 1);
	CHECK_EQ(s.cs.selector, EKVM_GUEST_SEL_CODE64);
	CHECK_EQ(s.cr3, EKVM_GUEST_TABLES_GPA + 0x1000);
	CHECK_EQ(s.tr.selector, EKVM_GUEST_SEL_TSS);
	fix_close(&f);
}

/* Runs lm_touch with RSI = addr under the given tables; returns the exit. */
static void touch(const struct ekvm_guest_tables *t, uint64_t addr, struct ekvm_exit *ex,
		  enum ekvm_exit_kind want, bool cpuid)
{
	struct fix f;
	fix_open(&f, MEM_SIZE);
	if (cpuid) {
		struct kvm_cpuid2 *c = NULL;
		REQUIRE_OK(ekvm_sys_supported_cpuid(f.sys, &c));
		int r = ekvm_vcpu_set_cpuid2(f.vcpu, c);
		free(c);
		REQUIRE_OK(r);
	}
	load(&f, CODE_GPA, lm_touch, lm_touch_end);
	REQUIRE_OK(ekvm_vcpu_setup_long64(f.vcpu, f.mem, t, CODE_GPA, STACK_TOP));
	struct kvm_regs r;
	REQUIRE_OK(ekvm_vcpu_get_regs(f.vcpu, &r));
	CHECK_EQ(r.rip, CODE_GPA);
	CHECK_EQ(r.rflags, 0x2);
	CHECK_EQ(r.rax | r.rsi | r.rdi, 0);
	r.rsi = addr;
	REQUIRE_OK(ekvm_vcpu_set_regs(f.vcpu, &r));
	run(&f, ex, want);
	if (want == EKVM_EXIT_MMIO_WRITE) {
		CHECK_EQ(ex->u.mmio.addr, addr);
		CHECK_EQ(ex->u.mmio.len, 4);
		uint32_t d;
		memcpy(&d, ex->u.mmio.data, sizeof(d));
		CHECK_EQ(d, 0xabcd);
		run(&f, ex, EKVM_EXIT_HLT);
	}
	fix_close(&f);
}

static bool host_has_1g_pages(void)
{
	struct ekvm_sys *sys;
	struct kvm_cpuid2 *c = NULL;
	bool yes = false;
	REQUIRE_OK(ekvm_sys_open(&sys));
	REQUIRE_OK(ekvm_sys_supported_cpuid(sys, &c));
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0x80000001)
			yes = (c->entries[i].edx >> 26) & 1;
	free(c);
	ekvm_sys_close(sys);
	return yes;
}

KVM_TEST(guest_vcpu_long64_identity_map)
{
	struct ekvm_exit ex;
	/* default map: up to the end of the 4 MiB; beyond, a page fault with no
	 * IDT: a triple fault */
	touch(NULL, MEM_SIZE, &ex, EKVM_EXIT_SHUTDOWN, false);
	/* inside the memory: a plain store, then HLT */
	touch(NULL, MEM_SIZE - 4, &ex, EKVM_EXIT_HLT, false);
	/* a larger map reaches unbacked GPAs: MMIO exits at the identity address */
	struct ekvm_guest_tables t = {.gpa = 0x8000, .map_size = 4ull << 30};
	touch(&t, 0xc0000000, &ex, EKVM_EXIT_MMIO_WRITE, false);
	t.map_size = 8u << 20;
	touch(&t, MEM_SIZE, &ex, EKVM_EXIT_MMIO_WRITE, false);
	touch(&t, 8u << 20, &ex, EKVM_EXIT_SHUTDOWN, false);
	/* a map size that is not a page multiple is rounded up */
	t.map_size = (4u << 20) + 1;
	touch(&t, (6u << 20) - 4, &ex, EKVM_EXIT_MMIO_WRITE, false);
	touch(&t, 6u << 20, &ex, EKVM_EXIT_SHUTDOWN, false);

	/* 1 GiB pages: the default map rounds the 4 MiB up to 1 GiB */
	if (!host_has_1g_pages())
		TEST_SKIP("KVM's supported CPUID has no pdpe1gb (1 GiB pages)");
	t = (struct ekvm_guest_tables){.page_size = EKVM_GUEST_PAGE_1G, .gpa = 0x1000};
	touch(&t, MEM_SIZE, &ex, EKVM_EXIT_MMIO_WRITE, true);
	touch(&t, (1u << 30) - 4, &ex, EKVM_EXIT_MMIO_WRITE, true);
	touch(&t, 1u << 30, &ex, EKVM_EXIT_SHUTDOWN, true);
	t.map_size = 4ull << 30;
	touch(&t, 0xfffffffc, &ex, EKVM_EXIT_MMIO_WRITE, true);
	/* with 1 GiB pages the block is 3 pages: no PDs */
	CHECK_EQ(ekvm_guest_tables_size(4ull << 30, EKVM_GUEST_PAGE_1G), 0x3000);
}

KVM_TEST(guest_vcpu_setup_bad_arguments)
{
	struct fix f, g;
	fix_open(&f, MEM_SIZE);
	fix_open(&g, MEM_SIZE);
	struct kvm_sregs before, after;
	REQUIRE_OK(ekvm_vcpu_get_sregs(f.vcpu, &before));
	const struct ekvm_guest_tables bad[] = {
	    {.gpa = 0x1800},			      /* not page-aligned */
	    {.gpa = MEM_SIZE - 0x1000},		      /* the block runs past the memory */
	    {.gpa = MEM_SIZE},			      /* outside */
	    {.gpa = 0x1000, .page_size = 4096},	      /* bad page size */
	    {.gpa = 0x1000, .page_size = 3ull << 20}, /* bad page size */
	    {.gpa = 0x1000, .map_size = EKVM_GUEST_MAP_MAX + 1}, /* too large */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = ekvm_vcpu_setup_long64(f.vcpu, f.mem, &bad[i], CODE_GPA, STACK_TOP);
		if (r != -EINVAL)
			test_fail_at(__FILE__, __LINE__, false, "long64 case %zu: got %d", i, r);
	}
	CHECK_ERR(ekvm_vcpu_setup_prot32(f.vcpu, f.mem, &bad[0], CODE_GPA, STACK_TOP), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_prot32(f.vcpu, f.mem, &bad[2], CODE_GPA, STACK_TOP), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_long64(NULL, f.mem, NULL, CODE_GPA, STACK_TOP), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_long64(f.vcpu, NULL, NULL, CODE_GPA, STACK_TOP), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_prot32(NULL, f.mem, NULL, CODE_GPA, STACK_TOP), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_prot32(f.vcpu, NULL, NULL, CODE_GPA, STACK_TOP), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_real(NULL, 0, 0, 0, 0), -EINVAL);
	/* memory of another VM */
	CHECK_ERR(ekvm_vcpu_setup_long64(f.vcpu, g.mem, NULL, CODE_GPA, STACK_TOP), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_prot32(f.vcpu, g.mem, NULL, CODE_GPA, STACK_TOP), -EINVAL);
	/* nothing done: the vCPU's state and the memory are untouched */
	REQUIRE_OK(ekvm_vcpu_get_sregs(f.vcpu, &after));
	CHECK(memcmp(&before, &after, sizeof(before)) == 0);
	const uint8_t *host = ekvm_guest_mem_host(f.mem), *ghost = ekvm_guest_mem_host(g.mem);
	for (size_t i = 0; i < MEM_SIZE; i++)
		if (host[i] || ghost[i])
			TEST_FAIL("guest memory written at 0x%zx", i);

	/* 32-bit protected mode needs its tables below 4 GiB; long mode does not */
	struct ekvm_guest_mem *hi;
	REQUIRE_OK(ekvm_guest_mem_create(f.vm, 1, 1ull << 32, 0x10000, &hi));
	struct ekvm_guest_tables t = {.gpa = 1ull << 32};
	CHECK_ERR(ekvm_vcpu_setup_prot32(f.vcpu, hi, &t, CODE_GPA, STACK_TOP), -EINVAL);
	CHECK_OK(ekvm_vcpu_setup_long64(f.vcpu, hi, &t, CODE_GPA, STACK_TOP));
	REQUIRE_OK(ekvm_vcpu_get_sregs(f.vcpu, &after));
	CHECK_EQ(after.cr3, (1ull << 32) + 0x1000);
	CHECK_EQ(after.gdt.base, 1ull << 32);
	CHECK_EQ(after.tr.base, (1ull << 32) + 0x800);
	ekvm_guest_mem_destroy(hi);
	fix_close(&g);
	fix_close(&f);
}
