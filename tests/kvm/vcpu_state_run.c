/* tests/kvm/vcpu_state_run.c - vCPU operations around KVM_RUN: translate, sync_regs, events. */
#include "vm_realmode.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

RM_GUEST(hlt_only, "hlt\n");

KVM_TEST(vcpu_translate_paging_off)
{
	struct rm_vm t;
	rm_setup(&t, hlt_only, hlt_only_end);
	struct kvm_translation tr = {.linear_address = 0x12345};
	REQUIRE_OK(ekvm_vcpu_translate(t.vcpu, &tr));
	CHECK_EQ(tr.valid, 1);
	CHECK_EQ(tr.physical_address, 0x12345);
	/* an address beyond any memory slot still translates 1:1 */
	tr = (struct kvm_translation){.linear_address = 0x7654321};
	REQUIRE_OK(ekvm_vcpu_translate(t.vcpu, &tr));
	CHECK_EQ(tr.valid, 1);
	CHECK_EQ(tr.physical_address, 0x7654321);
	rm_close(&t);
}

KVM_TEST(vcpu_translate_with_page_table)
{
	struct rm_vm t;
	rm_setup(&t, hlt_only, hlt_only_end);
	/* 32-bit paging: page directory at 0x2000, one page table at 0x3000 */
	uint32_t *pd = (uint32_t *)(t.mem + 0x2000);
	uint32_t *pt = (uint32_t *)(t.mem + 0x3000);
	memset(pd, 0, 4096);
	memset(pt, 0, 4096);
	pd[1] = 0x3000 | 3;    /* 0x400000..0x7fffff: present, writable */
	pt[0] = 0x5000 | 3;    /* 0x400000 -> 0x5000 */
	pt[2] = 0x7000 | 1;    /* 0x402000 -> 0x7000, read-only */
	pt[3] = 0x1234000 | 3; /* 0x403000 -> 0x1234000 (no memory there) */
	struct kvm_sregs s;
	REQUIRE_OK(ekvm_vcpu_get_sregs(t.vcpu, &s));
	s.cr3 = 0x2000;
	s.cr4 = 0;
	s.cr0 = 0x80000011; /* PG | ET | PE */
	REQUIRE_OK(ekvm_vcpu_set_sregs(t.vcpu, &s));

	static const struct {
		uint64_t la, pa;
		uint8_t valid;
	} cases[] = {
	    {0x400123, 0x5123, 1}, {0x402abc, 0x7abc, 1}, {0x403008, 0x1234008, 1},
	    {0x401000, 0, 0},	   {0x800000, 0, 0},	  {0x12345, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kvm_translation tr = {.linear_address = cases[i].la};
		REQUIRE_OK(ekvm_vcpu_translate(t.vcpu, &tr));
		if (tr.valid != cases[i].valid ||
		    (cases[i].valid && tr.physical_address != cases[i].pa))
			test_fail_at(
			    __FILE__, __LINE__, false,
			    "translate 0x%llx: valid %u pa 0x%llx, want valid %u pa 0x%llx",
			    (unsigned long long)cases[i].la, tr.valid,
			    (unsigned long long)tr.physical_address, cases[i].valid,
			    (unsigned long long)cases[i].pa);
	}
	rm_close(&t);
}

/* OUT 0x10 = 0x1234; then OUT 0x11 = BX (the host changed it through
 * sync_regs); OUT 0x12 = BX again (a change not marked dirty); HLT. */
RM_GUEST(sync_guest, "mov $0x1234, %ax\n"
		     "out %ax, $0x10\n"
		     "mov %bx, %ax\n"
		     "out %ax, $0x11\n"
		     "mov %bx, %ax\n"
		     "out %ax, $0x12\n"
		     "hlt\n");

KVM_TEST(vcpu_sync_regs)
{
	struct rm_vm t;
	rm_setup(&t, sync_guest, sync_guest_end);
	int caps = ekvm_sys_check_extension(t.sys, KVM_CAP_SYNC_REGS);
	REQUIRE(caps > 0);
	const uint64_t all = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
	REQUIRE_EQ(caps & all, all);
	struct kvm_sync_regs *s = ekvm_vcpu_sync_regs(t.vcpu);
	REQUIRE(s != NULL);
	CHECK(s == &t.run->s.regs);

	ekvm_vcpu_set_sync_valid(t.vcpu, all);
	CHECK_EQ(t.run->kvm_valid_regs, all);
	rm_expect_out(&t, 0x10, 2, 0x1234);
	/* KVM copied the registers out on the exit */
	CHECK_EQ(s->regs.rax & 0xffff, 0x1234);
	struct kvm_regs r;
	struct kvm_sregs sr;
	REQUIRE_OK(ekvm_vcpu_get_regs(t.vcpu, &r));
	REQUIRE_OK(ekvm_vcpu_get_sregs(t.vcpu, &sr));
	CHECK_EQ(s->regs.rip, r.rip);
	CHECK_EQ(s->regs.rsp, RM_STACK);
	CHECK_EQ(s->sregs.cr0, sr.cr0);
	CHECK_EQ(s->sregs.cs.selector, 0);
	CHECK_EQ(s->events.nmi.pending, 0);

	/* a change marked dirty is loaded on the next run */
	s->regs.rbx = 0xbeef;
	ekvm_vcpu_set_sync_dirty(t.vcpu, KVM_SYNC_X86_REGS);
	CHECK_EQ(t.run->kvm_dirty_regs, KVM_SYNC_X86_REGS);
	rm_expect_out(&t, 0x11, 2, 0xbeef);
	CHECK_EQ(t.run->kvm_dirty_regs, 0); /* KVM consumed it */
	CHECK_EQ(s->regs.rax & 0xffff, 0xbeef);
	/* a change not marked dirty is not */
	s->regs.rbx = 0x1111;
	rm_expect_out(&t, 0x12, 2, 0xbeef);
	CHECK_EQ(s->regs.rbx & 0xffff, 0xbeef); /* overwritten by the copy-out */
	rm_expect_kind(&t, EKVM_EXIT_HLT);

	/* a set KVM does not know: KVM_RUN fails with -EINVAL */
	ekvm_vcpu_set_sync_valid(t.vcpu, 1u << 10);
	struct ekvm_exit ex;
	CHECK_ERR(ekvm_vcpu_run(t.vcpu, &ex), -EINVAL);
	ekvm_vcpu_set_sync_valid(t.vcpu, 0);
	rm_close(&t);
}

RM_GUEST(out_once, "out %al, $0x10\n"
		   "hlt\n");

KVM_TEST(vcpu_immediate_exit)
{
	struct rm_vm t;
	rm_setup(&t, out_once, out_once_end);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_IMMEDIATE_EXIT));
	ekvm_vcpu_set_immediate_exit(t.vcpu, true);
	CHECK_EQ(t.run->immediate_exit, 1);
	struct ekvm_exit ex;
	memset(&ex, 0xff, sizeof(ex));
	CHECK_EQ(ekvm_vcpu_run(t.vcpu, &ex), 0);
	CHECK_EQ(ex.kind, EKVM_EXIT_INTR);
	CHECK_EQ(ex.raw_reason, KVM_EXIT_INTR);
	/* the guest did not run */
	struct kvm_regs r;
	REQUIRE_OK(ekvm_vcpu_get_regs(t.vcpu, &r));
	CHECK_EQ(r.rip, RM_CODE);
	/* it stays set until cleared */
	CHECK_EQ(ekvm_vcpu_run(t.vcpu, &ex), 0);
	CHECK_EQ(ex.kind, EKVM_EXIT_INTR);
	ekvm_vcpu_set_immediate_exit(t.vcpu, false);
	CHECK_EQ(t.run->immediate_exit, 0);
	rm_expect_out(&t, 0x10, 1, 0);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	rm_close(&t);
}

struct kicker {
	struct ekvm_vcpu *vcpu;
	pthread_t target;
};

static void on_sigusr1(int sig)
{
	(void)sig;
}

static void *kick_thread(void *arg)
{
	struct kicker *k = arg;
	struct timespec ts = {0, 50 * 1000000L};
	nanosleep(&ts, NULL);
	ekvm_vcpu_set_immediate_exit(k->vcpu, true);
	pthread_kill(k->target, SIGUSR1);
	return NULL;
}

RM_GUEST(spin_guest, "1: jmp 1b\n");

KVM_TEST(vcpu_immediate_exit_from_another_thread)
{
	struct rm_vm t;
	rm_setup(&t, spin_guest, spin_guest_end);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
	struct kicker k = {.vcpu = t.vcpu, .target = pthread_self()};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, kick_thread, &k) == 0);
	/* the guest spins forever; the signal ends KVM_RUN with an Intr exit */
	struct ekvm_exit ex;
	CHECK_EQ(ekvm_vcpu_run(t.vcpu, &ex), 0);
	CHECK_EQ(ex.kind, EKVM_EXIT_INTR);
	pthread_join(th, NULL);
	rm_close(&t);
}

/* With IF clear: OUT 0x11; then STI and a NOP open the interrupt window; the
 * handler for vector 0x30 (at RM_CODE + 0x100) reports on port 0x10. */
RM_GUEST(irqwin_guest, "cli\n"
		       "out %al, $0x11\n"
		       "sti\n"
		       "nop\n"
		       "1: hlt\n"
		       "jmp 1b\n"
		       ".org 0x100\n"
		       "mov $0x30, %al\n"
		       "out %al, $0x10\n"
		       "iret\n");

static void ivt_set(struct rm_vm *t, unsigned vector, uint16_t ip)
{
	uint16_t e[2] = {ip, 0};
	memcpy(t->mem + 4 * vector, e, 4);
}

KVM_TEST(vcpu_interrupt_window_and_interrupt)
{
	struct rm_vm t;
	rm_setup(&t, irqwin_guest, irqwin_guest_end);
	ivt_set(&t, 0x30, RM_CODE + 0x100);
	ekvm_vcpu_set_request_interrupt_window(t.vcpu, true);
	CHECK_EQ(t.run->request_interrupt_window, 1);
	/* IF is clear: no window yet, the OUT comes first */
	rm_expect_out(&t, 0x11, 1, 0);
	CHECK_EQ(t.run->if_flag, 0);
	/* after STI the window opens */
	rm_expect_kind(&t, EKVM_EXIT_IRQ_WINDOW_OPEN);
	CHECK_EQ(t.run->if_flag, 1);
	CHECK_EQ(t.run->ready_for_interrupt_injection, 1);
	ekvm_vcpu_set_request_interrupt_window(t.vcpu, false);
	CHECK_EQ(t.run->request_interrupt_window, 0);

	/* KVM_INTERRUPT (no in-kernel irqchip): the guest takes vector 0x30 */
	CHECK_ERR(ekvm_vcpu_interrupt(t.vcpu, 256), -EINVAL);
	REQUIRE_OK(ekvm_vcpu_interrupt(t.vcpu, 0x30));
	struct kvm_vcpu_events ev;
	REQUIRE_OK(ekvm_vcpu_get_vcpu_events(t.vcpu, &ev));
	CHECK_EQ(ev.interrupt.injected, 1);
	CHECK_EQ(ev.interrupt.nr, 0x30);
	rm_expect_out(&t, 0x10, 1, 0x30);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	rm_close(&t);
}

KVM_TEST(vcpu_interrupt_with_irqchip)
{
	struct rm_vm t;
	rm_open(&t);
	REQUIRE_OK(ekvm_vm_create_irqchip(t.vm));
	rm_add_ram(&t);
	rm_add_vcpu(&t);
	/* with the in-kernel PIC, KVM_INTERRUPT is refused: -ENXIO */
	CHECK_ERR(ekvm_vcpu_interrupt(t.vcpu, 0x30), -ENXIO);
	rm_close(&t);
}

/* HLT; the NMI handler (RM_CODE + 0x100) reports on port 0x13. */
RM_GUEST(nmi_guest, "1: hlt\n"
		    "jmp 1b\n"
		    ".org 0x100\n"
		    "mov $0x02, %al\n"
		    "out %al, $0x13\n"
		    "iret\n");

KVM_TEST(vcpu_nmi)
{
	struct rm_vm t;
	rm_setup(&t, nmi_guest, nmi_guest_end);
	ivt_set(&t, 2, RM_CODE + 0x100);
	REQUIRE_OK(ekvm_vcpu_nmi(t.vcpu));
	struct kvm_vcpu_events ev;
	REQUIRE_OK(ekvm_vcpu_get_vcpu_events(t.vcpu, &ev));
	CHECK_EQ(ev.nmi.pending, 1);
	/* delivered on entry: the handler runs before the HLT */
	rm_expect_out(&t, 0x13, 1, 2);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	REQUIRE_OK(ekvm_vcpu_get_vcpu_events(t.vcpu, &ev));
	CHECK_EQ(ev.nmi.pending, 0);
	rm_close(&t);
}

KVM_TEST(vcpu_smi)
{
	struct rm_vm t;
	rm_setup(&t, hlt_only, hlt_only_end);
	int smm = ekvm_sys_check_extension(t.sys, KVM_CAP_X86_SMM);
	TEST_LOG("KVM_CAP_X86_SMM = %d", smm);
	int r = ekvm_vcpu_smi(t.vcpu);
	if (smm <= 0) {
		/* KVM without SMM support ignores it (6.1), refuses it (-EINVAL) or has
		 * no KVM_SMI at all (-ENOTTY, CONFIG_KVM_SMM=n) */
		CHECK(r == 0 || r == -EINVAL || r == -ENOTTY);
		rm_close(&t);
		TEST_SKIP("KVM_CAP_X86_SMM absent: KVM_SMI gave %d (checked)", r);
	}
	REQUIRE_OK(r);
	struct kvm_vcpu_events ev;
	REQUIRE_OK(ekvm_vcpu_get_vcpu_events(t.vcpu, &ev));
	CHECK(ev.flags & KVM_VCPUEVENT_VALID_SMM);
	CHECK_EQ(ev.smi.pending, 1);
	CHECK_EQ(ev.smi.smm, 0);
	rm_close(&t);
}

KVM_TEST(vcpu_single_step)
{
	struct rm_vm t;
	rm_setup(&t, out_once, out_once_end);
	struct kvm_guest_debug dbg;
	memset(&dbg, 0, sizeof(dbg));
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
	REQUIRE_OK(ekvm_vcpu_set_guest_debug(t.vcpu, &dbg));
	/* the OUT exits to user space first; the step then ends at the HLT */
	rm_expect_out(&t, 0x10, 1, 0);
	struct ekvm_exit ex;
	rm_run(&t, &ex);
	REQUIRE_EQ(ex.kind, EKVM_EXIT_DEBUG);
	CHECK_EQ(ex.u.debug.exception, 1); /* #DB */
	CHECK_EQ(ex.u.debug.pc, RM_CODE + 2);
	memset(&dbg, 0, sizeof(dbg));
	REQUIRE_OK(ekvm_vcpu_set_guest_debug(t.vcpu, &dbg));
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	rm_close(&t);
}

KVM_TEST(vcpu_run_area)
{
	struct rm_vm t;
	rm_setup(&t, out_once, out_once_end);
	int mmap_size = ekvm_sys_vcpu_mmap_size(t.sys);
	REQUIRE(mmap_size > 0);
	struct ekvm_exit ex;
	rm_run(&t, &ex);
	REQUIRE_EQ(ex.kind, EKVM_EXIT_IO_OUT);
	/* the raw run area tells the same story as the decoded exit */
	struct kvm_run *run = ekvm_vcpu_run_area(t.vcpu);
	REQUIRE(run == t.run);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(ex.raw_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.direction, KVM_EXIT_IO_OUT);
	CHECK_EQ(run->io.port, 0x10);
	CHECK_EQ(run->io.size, 1);
	CHECK_EQ(run->io.count, 1);
	CHECK(run->io.data_offset + 1 <= (uint64_t)mmap_size);
	/* the decoded data points into the run area */
	CHECK(ex.u.io.data == (uint8_t *)run + run->io.data_offset);
	/* decoding again without running gives the same exit */
	struct ekvm_exit again;
	memset(&again, 0, sizeof(again));
	ekvm_vcpu_decode_exit(t.vcpu, &again);
	CHECK_EQ(again.kind, EKVM_EXIT_IO_OUT);
	CHECK_EQ(again.u.io.port, 0x10);
	CHECK(again.u.io.data == ex.u.io.data);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	CHECK_EQ(run->exit_reason, KVM_EXIT_HLT);
	rm_close(&t);
}
