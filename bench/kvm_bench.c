/* bench/kvm_bench.c - exit round trips and VM lifecycle: the binding against a raw ioctl loop. */
/*
 * Each figure is measured for the binding (ekvm_*) and for a loop written
 * with bare ioctls and no library, interleaved round by round in the same
 * process, and reported as medians and a ratio (binding / raw, the median of
 * the per-round ratios). Output lines:
 *   BENCH <name> <value> <unit>
 * Usage: kvm-bench [exits-per-round] [rounds] [vm-cycles]
 */
#include "bench.h"
#include <ember/kvm.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE   0x10000
#define CODE_GPA   0x1000
#define MMIO_SEG   0x2000 /* DS segment: base 0x20000, outside the memory slot */
#define BENCH_PORT 0x10

/* 16-bit guests: an endless loop of one exiting instruction. */
static const uint8_t pio_loop[] = {
    0xe6, BENCH_PORT, /* 1: out 0x10, al */
    0xeb, 0xfc,	      /* jmp 1b */
};
static const uint8_t mmio_loop[] = {
    0x88, 0x07, /* 1: mov [bx], al  (DS:BX = 0x20000) */
    0xeb, 0xfc, /* jmp 1b */
};
static const uint8_t hlt_code[] = {0xf4};

static void die(const char *what, int err)
{
	fprintf(stderr, "kvm-bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* ------------------------------------------------------------------ raw */
struct raw {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
};

static void raw_setup(struct raw *r, const uint8_t *code, size_t len)
{
	r->vm = ioctl(r->kvm, KVM_CREATE_VM, 0);
	if (r->vm < 0)
		die("raw KVM_CREATE_VM", errno);
	r->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->mem == MAP_FAILED)
		die("mmap", errno);
	memcpy(r->mem + CODE_GPA, code, len);
	struct kvm_userspace_memory_region region = {.memory_size = MEM_SIZE,
						     .userspace_addr = (uint64_t)(uintptr_t)r->mem};
	if (ioctl(r->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("raw KVM_SET_USER_MEMORY_REGION", errno);
	r->vcpu = ioctl(r->vm, KVM_CREATE_VCPU, 0);
	if (r->vcpu < 0)
		die("raw KVM_CREATE_VCPU", errno);
	r->run_size = (size_t)ioctl(r->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	r->run = mmap(NULL, r->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->vcpu, 0);
	if (r->run == MAP_FAILED)
		die("raw mmap kvm_run", errno);
	struct kvm_sregs s;
	if (ioctl(r->vcpu, KVM_GET_SREGS, &s) < 0)
		die("raw KVM_GET_SREGS", errno);
	s.cs.base = 0;
	s.cs.selector = 0;
	s.ds.base = (uint64_t)MMIO_SEG << 4;
	s.ds.selector = MMIO_SEG;
	if (ioctl(r->vcpu, KVM_SET_SREGS, &s) < 0)
		die("raw KVM_SET_SREGS", errno);
	struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2};
	if (ioctl(r->vcpu, KVM_SET_REGS, &regs) < 0)
		die("raw KVM_SET_REGS", errno);
}

static void raw_teardown(struct raw *r)
{
	munmap(r->run, r->run_size);
	close(r->vcpu);
	close(r->vm);
	munmap(r->mem, MEM_SIZE);
}

/* n exits of the expected reason; returns microseconds per exit */
static double raw_loop(struct raw *r, int n, uint32_t want)
{
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		if (ioctl(r->vcpu, KVM_RUN, 0) < 0)
			die("raw KVM_RUN", errno);
		if (r->run->exit_reason != want)
			die("raw: unexpected exit", EPROTO);
	}
	return (now_us() - t0) / n;
}

/* -------------------------------------------------------------- binding */
struct bind {
	struct ekvm_sys *sys;
	struct ekvm_vm *vm;
	struct ekvm_vcpu *vcpu;
	uint8_t *mem;
};

static void bind_setup(struct bind *b, const uint8_t *code, size_t len)
{
	int e;
	if ((e = ekvm_vm_create(b->sys, 0, &b->vm)) < 0)
		die("ekvm_vm_create", e);
	b->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->mem == MAP_FAILED)
		die("mmap", errno);
	memcpy(b->mem + CODE_GPA, code, len);
	if ((e = ekvm_vm_set_memory(b->vm, 0, 0, 0, MEM_SIZE, b->mem)) < 0)
		die("ekvm_vm_set_memory", e);
	if ((e = ekvm_vcpu_create(b->vm, 0, &b->vcpu)) < 0)
		die("ekvm_vcpu_create", e);
	struct kvm_sregs s;
	if ((e = ekvm_vcpu_get_sregs(b->vcpu, &s)) < 0)
		die("get sregs", e);
	s.cs.base = 0;
	s.cs.selector = 0;
	s.ds.base = (uint64_t)MMIO_SEG << 4;
	s.ds.selector = MMIO_SEG;
	if ((e = ekvm_vcpu_set_sregs(b->vcpu, &s)) < 0)
		die("set sregs", e);
	struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2};
	if ((e = ekvm_vcpu_set_regs(b->vcpu, &regs)) < 0)
		die("set regs", e);
}

static void bind_teardown(struct bind *b)
{
	ekvm_vcpu_destroy(b->vcpu);
	ekvm_vm_destroy(b->vm);
	munmap(b->mem, MEM_SIZE);
}

static double bind_loop(struct bind *b, int n, enum ekvm_exit_kind want)
{
	struct ekvm_exit exit;
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		int e = ekvm_vcpu_run(b->vcpu, &exit);
		if (e < 0)
			die("ekvm_vcpu_run", e);
		if (exit.kind != want)
			die("binding: unexpected exit", EPROTO);
	}
	return (now_us() - t0) / n;
}

/* ------------------------------------------------------------ lifecycle */
static double raw_cycle(int kvm)
{
	double t0 = now_us();
	struct raw r = {.kvm = kvm};
	raw_setup(&r, hlt_code, sizeof(hlt_code));
	if (ioctl(r.vcpu, KVM_RUN, 0) < 0 || r.run->exit_reason != KVM_EXIT_HLT)
		die("raw lifecycle run", EPROTO);
	raw_teardown(&r);
	return (now_us() - t0) / 1000;
}

static double bind_cycle(struct ekvm_sys *sys)
{
	double t0 = now_us();
	struct bind b = {.sys = sys};
	struct ekvm_exit exit;
	bind_setup(&b, hlt_code, sizeof(hlt_code));
	if (ekvm_vcpu_run(b.vcpu, &exit) < 0 || exit.kind != EKVM_EXIT_HLT)
		die("binding lifecycle run", EPROTO);
	bind_teardown(&b);
	return (now_us() - t0) / 1000;
}

static void exit_bench(const char *name, const uint8_t *code, size_t len, uint32_t raw_want,
		       enum ekvm_exit_kind want, struct ekvm_sys *sys, int kvm, int n, int rounds)
{
	double raw_us[64], bind_us[64];
	struct raw r = {.kvm = kvm};
	struct bind b = {.sys = sys};
	raw_setup(&r, code, len);
	bind_setup(&b, code, len);
	/* warm up both (TCG translation, page faults) */
	raw_loop(&r, n / 10 + 1, raw_want);
	bind_loop(&b, n / 10 + 1, want);
	for (int i = 0; i < rounds; i++) {
		if (i % 2) {
			bind_us[i] = bind_loop(&b, n, want);
			raw_us[i] = raw_loop(&r, n, raw_want);
		} else {
			raw_us[i] = raw_loop(&r, n, raw_want);
			bind_us[i] = bind_loop(&b, n, want);
		}
	}
	raw_teardown(&r);
	bind_teardown(&b);
	double ratio = paired_ratio(bind_us, raw_us, rounds);
	double mr = median(raw_us, rounds), mb = median(bind_us, rounds);
	printf("BENCH kvm.%s.raw %.3f us/exit\n", name, mr);
	printf("BENCH kvm.%s.binding %.3f us/exit\n", name, mb);
	printf("BENCH kvm.%s.ratio %.4f binding/raw\n", name, ratio);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	int rounds = argc > 2 ? atoi(argv[2]) : 7;
	int cycles = argc > 3 ? atoi(argv[3]) : 21;
	if (n <= 0 || rounds <= 0 || rounds > 64 || cycles <= 0 || cycles > 64) {
		fprintf(stderr, "usage: kvm-bench [exits 1..] [rounds 1..64] [vm-cycles 1..64]\n");
		return 2;
	}
	struct ekvm_sys *sys;
	int e = ekvm_sys_open(&sys);
	if (e < 0)
		die("open /dev/kvm", e);
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("raw open /dev/kvm", errno);
	printf("BENCH kvm.config %d exits x %d rounds, %d VM cycles\n", n, rounds, cycles);
	exit_bench("pio", pio_loop, sizeof(pio_loop), KVM_EXIT_IO, EKVM_EXIT_IO_OUT, sys, kvm, n,
		   rounds);
	exit_bench("mmio", mmio_loop, sizeof(mmio_loop), KVM_EXIT_MMIO, EKVM_EXIT_MMIO_WRITE, sys,
		   kvm, n, rounds);
	double raw_ms[64], bind_ms[64];
	raw_cycle(kvm); /* warm up */
	bind_cycle(sys);
	for (int i = 0; i < cycles; i++) {
		if (i % 2) {
			bind_ms[i] = bind_cycle(sys);
			raw_ms[i] = raw_cycle(kvm);
		} else {
			raw_ms[i] = raw_cycle(kvm);
			bind_ms[i] = bind_cycle(sys);
		}
	}
	double ratio = paired_ratio(bind_ms, raw_ms, cycles);
	double mr = median(raw_ms, cycles), mb = median(bind_ms, cycles);
	printf("BENCH kvm.vm_lifecycle.raw %.3f ms\n", mr);
	printf("BENCH kvm.vm_lifecycle.binding %.3f ms\n", mb);
	printf("BENCH kvm.vm_lifecycle.ratio %.4f binding/raw\n", ratio);
	close(kvm);
	ekvm_sys_close(sys);
	return 0;
}
