/* examples/hello.c - the smallest Ember program: a VM whose guest prints a greeting via port I/O. */
#include <ember/kvm.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define MEM_SIZE    0x10000
#define CODE_GPA    0x1000
#define TEXT_GPA    0x1100
#define SERIAL_PORT 0x3f8

/* 16-bit real-mode guest: print the NUL-terminated string at TEXT_GPA to
 * SERIAL_PORT one byte at a time, then halt. */
static const uint8_t guest_code[] = {
    0xbe, 0x00, 0x11, /* mov si, 0x1100 */
    0xba, 0xf8, 0x03, /* mov dx, 0x3f8 */
    0xac,	      /* 1: lodsb */
    0x84, 0xc0,	      /* test al, al */
    0x74, 0x03,	      /* jz 2f */
    0xee,	      /* out dx, al */
    0xeb, 0xf8,	      /* jmp 1b */
    0xf4,	      /* 2: hlt */
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "hello: %s: %s\n", what, strerror(-err));
	return 1;
}

int main(void)
{
	static const char text[] = "Hello from an Ember guest, through port I/O on KVM!\n";
	struct ekvm_sys *sys;
	struct ekvm_vm *vm;
	struct ekvm_vcpu *vcpu;
	int r;

	if ((r = ekvm_sys_open(&sys)) < 0)
		return fail("open /dev/kvm", r);
	if ((r = ekvm_vm_create(sys, 0, &vm)) < 0)
		return fail("create VM", r);
	uint8_t *mem =
	    mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap guest memory", -ENOMEM);
	memcpy(mem + CODE_GPA, guest_code, sizeof(guest_code));
	memcpy(mem + TEXT_GPA, text, sizeof(text));
	if ((r = ekvm_vm_set_memory(vm, 0, 0, 0, MEM_SIZE, mem)) < 0)
		return fail("set memory", r);
	if ((r = ekvm_vcpu_create(vm, 0, &vcpu)) < 0)
		return fail("create vCPU", r);

	struct kvm_sregs sregs;
	if ((r = ekvm_vcpu_get_sregs(vcpu, &sregs)) < 0)
		return fail("get sregs", r);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if ((r = ekvm_vcpu_set_sregs(vcpu, &sregs)) < 0)
		return fail("set sregs", r);
	struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 0x2};
	if ((r = ekvm_vcpu_set_regs(vcpu, &regs)) < 0)
		return fail("set regs", r);

	unsigned exits = 0;
	for (;;) {
		struct ekvm_exit exit;
		if ((r = ekvm_vcpu_run(vcpu, &exit)) < 0)
			return fail("KVM_RUN", r);
		exits++;
		if (exit.kind == EKVM_EXIT_IO_OUT && exit.u.io.port == SERIAL_PORT) {
			fwrite(exit.u.io.data, 1, exit.u.io.len, stdout);
			continue;
		}
		if (exit.kind == EKVM_EXIT_HLT)
			break;
		fprintf(stderr, "hello: unexpected exit %s\n", ekvm_exit_kind_name(exit.kind));
		return 1;
	}
	printf("hello: guest halted after %u exits (API version %d)\n", exits,
	       ekvm_sys_api_version(sys));
	ekvm_vcpu_destroy(vcpu);
	ekvm_vm_destroy(vm);
	ekvm_sys_close(sys);
	munmap(mem, MEM_SIZE);
	return 0;
}
