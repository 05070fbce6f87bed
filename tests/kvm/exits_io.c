/* tests/kvm/exits_io.c - decoded PIO, string PIO, MMIO, HLT and INTR exits against real KVM. */
#include "../lib/kvm_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Runs to the next exit and requires it to be `kind` of `size` bytes at port. */
static const struct ekvm_exit *expect_pio(struct kvmu_vcpu *v, enum ekvm_exit_kind kind,
					  uint16_t port, uint8_t size)
{
	const struct ekvm_exit *e = kvmu_run(v);
	if (e->kind != kind || e->u.io.port != port || e->u.io.size != size || e->u.io.count != 1) {
		char what[96];
		snprintf(what, sizeof(what), "expected %s of %u byte(s) at port 0x%x",
			 ekvm_exit_kind_name(kind), size, port);
		kvmu_fail_exit(v, what);
	}
	REQUIRE(e->u.io.data != NULL);
	REQUIRE_EQ(e->u.io.len, size);
	CHECK_EQ(e->raw_reason, KVM_EXIT_IO);
	return e;
}

static uint32_t io_value(const struct ekvm_exit *e)
{
	uint32_t v = 0;
	memcpy(&v, e->u.io.data, e->u.io.len);
	return v;
}

static void io_answer(const struct ekvm_exit *e, uint32_t v)
{
	memcpy(e->u.io.data, &v, e->u.io.len);
}

/* OUT and IN of each width in real mode; the guest checks the IN values
 * (and that IN leaves the rest of EAX alone). */
KVM_TEST(exits_pio_widths)
{
	struct kvmu_guest g = KVMU_GUEST(rm16_pio);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(2, &g, &v);
	const struct ekvm_exit *e;

	e = expect_pio(v, EKVM_EXIT_IO_OUT, 0x10, 1);
	CHECK_EQ(io_value(e), 0xa5);
	e = expect_pio(v, EKVM_EXIT_IO_OUT, 0x12, 2);
	CHECK_EQ(io_value(e), 0xbeef);
	e = expect_pio(v, EKVM_EXIT_IO_OUT, 0x14, 4);
	CHECK_EQ(io_value(e), 0xdeadbeef);
	e = expect_pio(v, EKVM_EXIT_IO_OUT, 0x1234, 2);
	CHECK_EQ(io_value(e), 0x5a6b);

	io_answer(expect_pio(v, EKVM_EXIT_IO_IN, 0x10, 1), 0x3c);
	io_answer(expect_pio(v, EKVM_EXIT_IO_IN, 0x12, 2), 0xcafe);
	io_answer(expect_pio(v, EKVM_EXIT_IO_IN, 0x14, 4), 0x89abcdef);
	io_answer(expect_pio(v, EKVM_EXIT_IO_IN, 0x1234, 1), 0x7e);
	kvmu_expect_done(v);
	kvmu_vm_destroy(vm);
}

/*
 * String I/O. KVM emulates OUTS one element per exit to user space, so
 * `rep outsb` with RCX = 5 gives exits whose counts add up to 5 (each
 * count == 1 on the kernels we know); INS reads ahead, so `rep insw` with
 * RCX = 4 into one page is ONE exit with count 4 and 8 bytes of data for
 * the host to fill. The guest checks RCX/RSI/RDI afterwards and the words
 * it received.
 */
KVM_TEST(exits_string_pio)
{
	struct kvmu_guest g = KVMU_GUEST(pm32_strio);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(4, &g, &v);
	const struct ekvm_exit *e;
	char out[8] = {0};
	unsigned got = 0, exits = 0;

	while (got < 5) {
		e = kvmu_run(v);
		if (e->kind != EKVM_EXIT_IO_OUT || e->u.io.port != 0x500 || e->u.io.size != 1)
			kvmu_fail_exit(v, "rep outsb: expected IoOut of bytes at 0x500");
		REQUIRE(e->u.io.count >= 1 && e->u.io.count <= 5 - got);
		REQUIRE_EQ(e->u.io.len, e->u.io.count);
		memcpy(out + got, e->u.io.data, e->u.io.count);
		got += e->u.io.count;
		exits++;
	}
	CHECK_STR(out, "hello");
	TEST_LOG("rep outsb of 5 bytes: %u exit(s)", exits);

	e = kvmu_run(v);
	if (e->kind != EKVM_EXIT_IO_IN || e->u.io.port != 0x502)
		kvmu_fail_exit(v, "rep insw: expected IoIn at 0x502");
	CHECK_EQ(e->u.io.size, 2);
	CHECK_EQ(e->u.io.count, 4);
	REQUIRE_EQ(e->u.io.len, 8);
	const uint16_t words[4] = {0x1111, 0x2222, 0x3333, 0x4444};
	memcpy(e->u.io.data, words, sizeof(words));

	uint8_t dw[12];
	got = 0;
	while (got < sizeof(dw)) {
		e = kvmu_run(v);
		if (e->kind != EKVM_EXIT_IO_OUT || e->u.io.port != 0x504 || e->u.io.size != 4)
			kvmu_fail_exit(v, "rep outsl: expected IoOut of dwords at 0x504");
		REQUIRE(e->u.io.len >= 4 && e->u.io.len <= sizeof(dw) - got);
		REQUIRE_EQ(e->u.io.len, 4 * e->u.io.count);
		memcpy(dw + got, e->u.io.data, e->u.io.len);
		got += e->u.io.len;
	}
	for (unsigned i = 0; i < sizeof(dw); i++)
		CHECK_EQ(dw[i], i);
	kvmu_expect_done(v);
	kvmu_vm_destroy(vm);
}

/* Runs to the next exit and requires an MMIO exit of kind at addr, len. */
static const struct ekvm_exit *expect_mmio(struct kvmu_vcpu *v, enum ekvm_exit_kind kind,
					   uint64_t addr, uint32_t len)
{
	const struct ekvm_exit *e = kvmu_run(v);
	if (e->kind != kind || e->u.mmio.addr != addr || e->u.mmio.len != len) {
		char what[96];
		snprintf(what, sizeof(what), "expected %s of %u byte(s) at 0x%llx",
			 ekvm_exit_kind_name(kind), len, (unsigned long long)addr);
		kvmu_fail_exit(v, what);
	}
	CHECK_EQ(e->raw_reason, KVM_EXIT_MMIO);
	return e;
}

static uint64_t mmio_value(const struct ekvm_exit *e)
{
	uint64_t v = 0;
	memcpy(&v, e->u.mmio.data, e->u.mmio.len);
	return v;
}

static void mmio_answer(const struct ekvm_exit *e, uint64_t v)
{
	memcpy(e->u.mmio.data, &v, e->u.mmio.len);
}

/* MMIO writes and reads of 1, 2, 4 and 8 bytes (64-bit guest; the 8-byte
 * ones prove a single 64-bit access), then HLT. */
KVM_TEST(exits_mmio_widths_and_hlt)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_mmio);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	const uint64_t m = KVMU_MMIO_GPA;
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, m);
	const struct ekvm_exit *e;

	e = expect_mmio(v, EKVM_EXIT_MMIO_WRITE, m + 0x00, 1);
	CHECK_EQ(mmio_value(e), 0x11);
	e = expect_mmio(v, EKVM_EXIT_MMIO_WRITE, m + 0x10, 2);
	CHECK_EQ(mmio_value(e), 0x2233);
	e = expect_mmio(v, EKVM_EXIT_MMIO_WRITE, m + 0x20, 4);
	CHECK_EQ(mmio_value(e), 0x44556677);
	e = expect_mmio(v, EKVM_EXIT_MMIO_WRITE, m + 0x30, 8);
	CHECK_EQ(mmio_value(e), 0x8899aabbccddeeffull);

	mmio_answer(expect_mmio(v, EKVM_EXIT_MMIO_READ, m + 0x01, 1), 0x5a);
	mmio_answer(expect_mmio(v, EKVM_EXIT_MMIO_READ, m + 0x12, 2), 0x1234);
	mmio_answer(expect_mmio(v, EKVM_EXIT_MMIO_READ, m + 0x24, 4), 0x89abcdef);
	mmio_answer(expect_mmio(v, EKVM_EXIT_MMIO_READ, m + 0x38, 8), 0x0123456789abcdefull);

	e = kvmu_run(v);
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_HLT);
	CHECK_EQ(e->raw_reason, KVM_EXIT_HLT);
	/* running again resumes after the hlt */
	struct kvmu_ucall uc;
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.args[0], 0x4c54);
	kvmu_expect_done(v);
	kvmu_vm_destroy(vm);
}

/* immediate_exit set before KVM_RUN: an Intr exit at once, the guest has not
 * run (RIP unchanged); cleared, the guest runs to its first ucall. */
KVM_TEST(exits_intr_immediate_exit)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_hello);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(4, &g, &v);
	struct kvm_regs regs;

	ekvm_vcpu_set_immediate_exit(v->vcpu, true);
	CHECK_EQ(v->run->immediate_exit, 1);
	kvmu_run(v);
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_INTR);
	CHECK_EQ(v->exit.raw_reason, KVM_EXIT_INTR);
	kvmu_get_regs(v, &regs);
	CHECK_EQ(regs.rip, g.base);
	/* again: still set, still Intr */
	kvmu_run(v);
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_INTR);

	ekvm_vcpu_set_immediate_exit(v->vcpu, false);
	kvmu_expect_sync(v, NULL);
	kvmu_vm_destroy(vm);
}

/* A signal to the vCPU thread whose handler sets immediate_exit kicks a
 * guest that never exits on its own out of KVM_RUN with an Intr exit. */
static struct kvmu_vcpu *kick_vcpu;
static volatile sig_atomic_t kicks;

static void kick_handler(int sig)
{
	(void)sig;
	kicks++;
	ekvm_vcpu_set_immediate_exit(kick_vcpu->vcpu, true);
}

struct kicker {
	pthread_t target;
	volatile int stop;
};

static void *kicker_main(void *arg)
{
	struct kicker *k = arg;
	while (!k->stop) {
		usleep(20000);
		pthread_kill(k->target, SIGUSR1);
	}
	return NULL;
}

KVM_TEST(exits_intr_signal_kick)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_spin);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(4, &g, &v);
	struct kvmu_ucall uc;
	struct sigaction sa = {.sa_handler = kick_handler};
	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
	kick_vcpu = v;

	kvmu_expect_sync(v, &uc); /* the guest is about to spin forever */
	struct kicker k = {.target = pthread_self()};
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, kicker_main, &k) == 0);
	kvmu_run(v);
	k.stop = 1;
	pthread_join(t, NULL);
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_INTR);
	CHECK(kicks >= 1);
	/* the guest made progress before it was kicked out */
	struct kvm_regs regs;
	kvmu_get_regs(v, &regs);
	CHECK(regs.rax > 0);
	kvmu_vm_destroy(vm);
}
