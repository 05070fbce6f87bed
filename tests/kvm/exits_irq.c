/* tests/kvm/exits_irq.c - IrqWindowOpen + KVM_INTERRUPT, in-kernel PIC/PIT ticks, two vCPUs at once. */
#include "../lib/kvm_util.h"

#include <pthread.h>

/*
 * No in-kernel irqchip: with request_interrupt_window set while the guest
 * runs with IF = 0, KVM exits IrqWindowOpen only once the guest can take an
 * interrupt (after its sti), with ready_for_interrupt_injection and if_flag
 * set. We inject vector 0x40 with KVM_INTERRUPT; the guest's handler records
 * it and the guest checks it got exactly that one.
 */
KVM_TEST(exits_irq_window_open)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_irq);
	struct kvmu_vcpu *v;
	struct kvmu_vm *vm = kvmu_vm_create_with_guest(4, &g, &v);
	struct kvmu_ucall uc;
	struct kvm_regs regs;

	kvmu_expect_sync(v, &uc); /* the guest has IF = 0 here */
	kvmu_get_regs(v, &regs);
	CHECK_EQ(regs.rflags & 0x200, 0);
	ekvm_vcpu_set_request_interrupt_window(v->vcpu, true);
	CHECK_EQ(v->run->request_interrupt_window, 1);
	kvmu_run(v);
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_IRQ_WINDOW_OPEN);
	CHECK_EQ(v->exit.raw_reason, KVM_EXIT_IRQ_WINDOW_OPEN);
	CHECK_EQ(v->run->ready_for_interrupt_injection, 1);
	CHECK_EQ(v->run->if_flag, 1);
	kvmu_get_regs(v, &regs);
	CHECK(regs.rflags & 0x200);
	ekvm_vcpu_set_request_interrupt_window(v->vcpu, false);
	REQUIRE_OK(ekvm_vcpu_interrupt(v->vcpu, 0x40));
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.args[0], 1);
	CHECK_EQ(uc.args[1], 0x40);
	kvmu_expect_done(v);
	kvmu_vm_destroy(vm);
}

/*
 * In-kernel irqchip + PIT (KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2): the guest
 * programs the PICs (IRQ0 -> vector 0x20) and PIT channel 0 at ~1 kHz and
 * waits in hlt (handled in the kernel) for 20 timer interrupts; any other
 * vector would be a guest assertion. PIT state read back matches what the
 * guest programmed; 20 ticks at 1 kHz take at least ~10 ms.
 */
KVM_TEST(exits_irqchip_pit_ticks)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_irq);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	struct kvmu_ucall uc;
	const unsigned want = 20;

	REQUIRE_OK(ekvm_vm_create_irqchip(vm->vm));
	REQUIRE_OK(ekvm_vm_create_pit2(vm->vm, 0));
	/* no catch-up bursts: with reinjection on, ticks missed while the host
	 * was busy (a loaded sandbox: 105 ticks arrived in one such run) are
	 * delivered back to back and overshoot the guest's count */
	REQUIRE_OK(ekvm_vm_reinject_control(vm->vm, false));
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, want);
	uint64_t t0 = kvmu_now_ns();
	kvmu_expect_sync(v, &uc);
	uint64_t ms = (kvmu_now_ns() - t0) / 1000000;
	TEST_LOG("%llu timer interrupts in %llu ms", (unsigned long long)uc.args[0],
		 (unsigned long long)ms);
	CHECK(uc.args[0] >= want && uc.args[0] <= want + 2);
	CHECK(ms >= 10);

	struct kvm_pit_state2 pit;
	REQUIRE_OK(ekvm_vm_get_pit2(vm->vm, &pit));
	CHECK_EQ(pit.channels[0].count, 1193);
	CHECK_EQ(pit.channels[0].mode, 2);
	CHECK_EQ(pit.channels[0].rw_mode, 3); /* lobyte/hibyte */
	struct kvm_irqchip pic = {.chip_id = KVM_IRQCHIP_PIC_MASTER};
	REQUIRE_OK(ekvm_vm_get_irqchip(vm->vm, &pic));
	CHECK_EQ(pic.chip.pic.irq_base, 0x20);
	CHECK_EQ(pic.chip.pic.imr, 0xff); /* masked again by the guest at the end */
	kvmu_expect_done(v);
	kvmu_vm_destroy(vm);
}

struct smp_vcpu {
	struct kvmu_vcpu *v;
	uint32_t n;
	unsigned outs;
	uint32_t last;
	bool ordered;
};

static void *smp_vcpu_main(void *arg)
{
	struct smp_vcpu *s = arg;
	struct kvmu_vcpu *v = s->v;
	s->ordered = true;
	for (;;) {
		const struct ekvm_exit *e = kvmu_run(v);
		if (kvmu_exit_is_ucall(e))
			break;
		if (e->kind != EKVM_EXIT_IO_OUT || e->u.io.port != 0x600 + v->id ||
		    e->u.io.size != 4)
			kvmu_fail_exit(v, "expected this vCPU's OUT to 0x600 + id");
		uint32_t val;
		memcpy(&val, e->u.io.data, 4);
		if (val >> 24 != v->id || (s->outs && (val & 0xffffff) <= (s->last & 0xffffff)))
			s->ordered = false;
		s->last = val;
		s->outs++;
	}
	struct kvmu_ucall uc;
	kvmu_decode_ucall(v, &uc);
	if (uc.cmd != UCALL_SYNC || uc.args[0] != v->id || uc.args[1] != 2ull * s->n)
		TEST_FAIL("vCPU %u: ucall %u from %s:%u (args %llu, %llu; want the id, %u)", v->id,
			  uc.cmd, uc.file, uc.line, (unsigned long long)uc.args[0],
			  (unsigned long long)uc.args[1], 2 * s->n);
	kvmu_expect_done(v);
	return NULL;
}

/*
 * Two vCPUs of one VM in two threads. Each guest vCPU waits until the other
 * is in the guest too (a rendezvous in shared memory that only concurrent
 * execution passes), then both `lock inc` one counter N times and each
 * reports progress on its own port. Both report the counter: exactly 2N.
 */
KVM_TEST(exits_two_vcpus_concurrently)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_smp);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	const unsigned n = 200000;
	struct smp_vcpu s[2] = {
	    {.v = kvmu_vcpu_add_guest(vm, 0, &g, n), .n = n},
	    {.v = kvmu_vcpu_add_guest(vm, 1, &g, n), .n = n},
	};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&t[i], NULL, smp_vcpu_main, &s[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(s[i].outs, 8);
		CHECK(s[i].ordered);
	}
	kvmu_vm_destroy(vm);
}
