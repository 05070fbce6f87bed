/* tools/kvm-sandbox/kvm-probe.c - proves /dev/kvm works: runs a tiny real-mode guest. */
/*
 * Opens /dev/kvm, checks KVM_GET_API_VERSION == 12, creates a VM with 64 KiB
 * of memory and one vCPU, and runs a real-mode guest that writes 'K' to port
 * 0x3f8 and halts. Expects KVM_EXIT_IO with that byte, then KVM_EXIT_HLT.
 * Prints one "kvm-probe: ok ..." line and exits 0, or a "kvm-probe: FAIL"
 * line and exits 1. Uses the raw ioctl ABI only, so it checks the sandbox
 * independently of the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE  0x10000
#define CODE_ADDR 0x1000

static int fail(const char *what)
{
	printf("kvm-probe: FAIL: %s: %s\n", what, errno ? strerror(errno) : "unexpected");
	return 1;
}

int main(void)
{
	/* mov dx, 0x3f8; mov al, 'K'; out dx, al; hlt */
	static const uint8_t code[] = {0xba, 0xf8, 0x03, 0xb0, 'K', 0xee, 0xf4};

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("open /dev/kvm");
	int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		printf("kvm-probe: FAIL: KVM_GET_API_VERSION is %d, want %d\n", api,
		       KVM_API_VERSION);
		return 1;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	uint8_t *mem =
	    mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap guest memory");
	memcpy(mem + CODE_ADDR, code, sizeof(code));
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .guest_phys_addr = 0,
	    .memory_size = MEM_SIZE,
	    .userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run))
		return fail("KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return fail("mmap kvm_run");

	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return fail("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return fail("KVM_SET_SREGS");
	struct kvm_regs regs = {.rip = CODE_ADDR, .rflags = 0x2};
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return fail("KVM_SET_REGS");

	errno = 0;
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return fail("KVM_RUN (1)");
	if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT ||
	    run->io.port != 0x3f8 || run->io.size != 1 ||
	    *((uint8_t *)run + run->io.data_offset) != 'K') {
		printf(
		    "kvm-probe: FAIL: first exit is reason %u, want KVM_EXIT_IO out 'K' to 0x3f8\n",
		    run->exit_reason);
		return 1;
	}
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return fail("KVM_RUN (2)");
	if (run->exit_reason != KVM_EXIT_HLT) {
		printf("kvm-probe: FAIL: second exit is reason %u, want KVM_EXIT_HLT\n",
		       run->exit_reason);
		return 1;
	}
	printf("kvm-probe: ok: API version %d, VM + vCPU created, real-mode guest did PIO 'K' to "
	       "0x3f8 then HLT\n",
	       api);
	munmap(run, run_size);
	munmap(mem, MEM_SIZE);
	close(vcpu);
	close(vm);
	close(kvm);
	return 0;
}
