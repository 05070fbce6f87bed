/* examples/longmode.c - a 64-bit long-mode guest in a few lines, with the convenience tier (<ember/kvm_guest.h>). */
#include <ember/kvm.h>
#include <ember/kvm_guest.h>

#include <stdio.h>
#include <string.h>

#define MEM_SIZE  (2u << 20) /* 2 MiB at GPA 0, identity-mapped with one 2 MiB page */
#define CODE_GPA  0x10000
#define STACK_TOP 0x80000
#define PORT	  0xe9

/* 64-bit code: rax = 6 * 7 computed with 64-bit registers, pushed and popped
 * through the stack, sent to PORT as 4 bytes, then halt. */
static const uint8_t guest_code[] = {
    0x48, 0xc7, 0xc0, 0x06, 0x00, 0x00, 0x00, /* mov rax, 6 */
    0x48, 0x6b, 0xc0, 0x07,		      /* imul rax, rax, 7 */
    0x50,				      /* push rax */
    0x5b,				      /* pop rbx */
    0x89, 0xd8,				      /* mov eax, ebx */
    0x66, 0xba, PORT, 0x00,		      /* mov dx, PORT */
    0xef,				      /* out dx, eax */
    0xf4,				      /* hlt */
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "longmode: %s: %s\n", what, strerror(-err));
	return 1;
}

int main(void)
{
	struct ekvm_sys *sys;
	struct ekvm_vm *vm;
	struct ekvm_guest_mem *mem;
	struct ekvm_vcpu *vcpu;
	struct ekvm_exit exit;
	int r;

	if ((r = ekvm_sys_open(&sys)) < 0)
		return fail("open /dev/kvm", r);
	if ((r = ekvm_vm_create(sys, 0, &vm)) < 0)
		return fail("create VM", r);
	if ((r = ekvm_guest_mem_create(vm, 0, 0, MEM_SIZE, &mem)) < 0)
		return fail("guest memory", r);
	if ((r = ekvm_guest_mem_write(mem, CODE_GPA, guest_code, sizeof(guest_code))) < 0)
		return fail("load the code", r);
	if ((r = ekvm_vcpu_create(vm, 0, &vcpu)) < 0)
		return fail("create vCPU", r);
	/* GDT, TSS and page tables at EKVM_GUEST_TABLES_GPA; RIP, RSP */
	if ((r = ekvm_vcpu_setup_long64(vcpu, mem, NULL, CODE_GPA, STACK_TOP)) < 0)
		return fail("long mode", r);

	if ((r = ekvm_vcpu_run(vcpu, &exit)) < 0)
		return fail("KVM_RUN", r);
	if (exit.kind != EKVM_EXIT_IO_OUT || exit.u.io.port != PORT || exit.u.io.len != 4) {
		fprintf(stderr, "longmode: unexpected exit %s\n", ekvm_exit_kind_name(exit.kind));
		return 1;
	}
	uint32_t value;
	memcpy(&value, exit.u.io.data, sizeof(value));
	if ((r = ekvm_vcpu_run(vcpu, &exit)) < 0)
		return fail("KVM_RUN", r);
	if (exit.kind != EKVM_EXIT_HLT) {
		fprintf(stderr, "longmode: unexpected exit %s\n", ekvm_exit_kind_name(exit.kind));
		return 1;
	}
	struct kvm_sregs sregs;
	if ((r = ekvm_vcpu_get_sregs(vcpu, &sregs)) < 0)
		return fail("get sregs", r);
	printf("longmode: the 64-bit guest (EFER 0x%llx, CS.L %u) computed %u and halted\n",
	       (unsigned long long)sregs.efer, sregs.cs.l, value);
	ekvm_vcpu_destroy(vcpu);
	ekvm_guest_mem_destroy(mem);
	ekvm_vm_destroy(vm);
	ekvm_sys_close(sys);
	return value == 42 ? 0 : 1;
}
