/* tests/kvm/vcpu_state_more.c - nested state, signal mask, MCE, vCPU attributes, Hyper-V CPUID, stats fd. */
#include "vm_realmode.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

KVM_TEST(vcpu_more_nested_state)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	int max = ekvm_vcpu_nested_state_size(t.vcpu);
	TEST_LOG("KVM_CAP_NESTED_STATE = %d", max);
	REQUIRE(max >= (int)sizeof(struct kvm_nested_state));
	struct kvm_nested_state *st = calloc(1, (size_t)max);
	REQUIRE(st != NULL);
	st->size = (uint32_t)max;
	REQUIRE_OK(ekvm_vcpu_get_nested_state(t.vcpu, st));
	TEST_LOG("nested state: format %u, flags 0x%x, size %u", st->format, st->flags, st->size);
	/* not in guest mode: the header alone */
	CHECK_EQ(st->size, sizeof(struct kvm_nested_state));
	CHECK(!(st->flags & KVM_STATE_NESTED_GUEST_MODE));
	/* a buffer too small: -E2BIG and the size needed */
	struct kvm_nested_state small;
	memset(&small, 0, sizeof(small));
	small.size = 16;
	CHECK_ERR(ekvm_vcpu_get_nested_state(t.vcpu, &small), -E2BIG);
	CHECK_EQ(small.size, sizeof(struct kvm_nested_state));
	/* what we read, we can write back */
	CHECK_OK(ekvm_vcpu_set_nested_state(t.vcpu, st));
	/* the other vendor's format: -EINVAL */
	struct kvm_nested_state bad = *st;
	bad.format = st->format == KVM_STATE_NESTED_FORMAT_SVM ? KVM_STATE_NESTED_FORMAT_VMX
							       : KVM_STATE_NESTED_FORMAT_SVM;
	CHECK_ERR(ekvm_vcpu_set_nested_state(t.vcpu, &bad), -EINVAL);
	/* flags KVM does not know: -EINVAL */
	bad = *st;
	bad.flags = 0x4000;
	CHECK_ERR(ekvm_vcpu_set_nested_state(t.vcpu, &bad), -EINVAL);
	if (st->format == KVM_STATE_NESTED_FORMAT_SVM) {
		/* SVM: with EFER.SVME clear only "GIF set, not in guest mode" is valid */
		CHECK(st->flags & KVM_STATE_NESTED_GIF_SET);
		bad = *st;
		bad.flags = 0;
		CHECK_ERR(ekvm_vcpu_set_nested_state(t.vcpu, &bad), -EINVAL);
		bad.flags = KVM_STATE_NESTED_GIF_SET | KVM_STATE_NESTED_GUEST_MODE;
		CHECK_ERR(ekvm_vcpu_set_nested_state(t.vcpu, &bad), -EINVAL);
	}
	free(st);
	rm_close(&t);
}

/* OUT to port 0x10 forever. */
RM_GUEST(out_loop_guest, "1:\n"
			 "out %al, $0x10\n"
			 "jmp 1b\n");

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen++;
}

static bool usr1_pending(void)
{
	sigset_t p;
	sigemptyset(&p);
	REQUIRE(sigpending(&p) == 0);
	return sigismember(&p, SIGUSR1) == 1;
}

/* Consumes a pending SIGUSR1 (it stays blocked in this thread). */
static void usr1_eat(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	struct timespec zero = {0, 0};
	CHECK_EQ(sigtimedwait(&s, NULL, &zero), SIGUSR1);
}

/*
 * SIGUSR1 blocked in the thread and pending. Without a KVM signal mask
 * KVM_RUN runs the guest (an OUT exit). With a mask that unblocks SIGUSR1
 * inside KVM_RUN, the pending signal interrupts it at once (an Intr exit);
 * KVM restores the thread's mask on the way out, so the signal is still
 * pending (blocked) afterwards. A mask that blocks it runs the guest again.
 */
KVM_TEST(vcpu_more_signal_mask)
{
	struct rm_vm t;
	rm_setup(&t, out_loop_guest, out_loop_guest_end);
	struct sigaction sa, old_sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGUSR1, &sa, &old_sa) == 0);
	sigset_t usr1, old_mask;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	REQUIRE(pthread_sigmask(SIG_BLOCK, &usr1, &old_mask) == 0);
	usr1_seen = 0;
	REQUIRE(raise(SIGUSR1) == 0);
	REQUIRE(usr1_pending());

	struct ekvm_exit ex;
	rm_run(&t, &ex);
	CHECK_EQ(ex.kind, EKVM_EXIT_IO_OUT);

	sigset_t empty;
	sigemptyset(&empty);
	REQUIRE_OK(ekvm_vcpu_set_signal_mask(t.vcpu, &empty));
	rm_run(&t, &ex);
	CHECK_EQ(ex.kind, EKVM_EXIT_INTR);
	CHECK(usr1_pending());
	CHECK_EQ(usr1_seen, 0);

	/* a mask that blocks SIGUSR1: the guest runs */
	REQUIRE_OK(ekvm_vcpu_set_signal_mask(t.vcpu, &usr1));
	rm_run(&t, &ex);
	CHECK_EQ(ex.kind, EKVM_EXIT_IO_OUT);
	/* no mask: the thread's own (blocking) mask, the guest runs */
	REQUIRE_OK(ekvm_vcpu_set_signal_mask(t.vcpu, NULL));
	rm_run(&t, &ex);
	CHECK_EQ(ex.kind, EKVM_EXIT_IO_OUT);
	/* the raw ioctl with a wrong sigset length: -EINVAL (the wrapper
	 * always passes the kernel's 8 bytes) */
	struct {
		struct kvm_signal_mask hdr;
		uint8_t set[16];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.len = 16;
	CHECK_ERR(EKVM_IOCTL(ekvm_vcpu_ioctl_raw, t.vcpu, KVM_SET_SIGNAL_MASK, &m.hdr), -EINVAL);

	usr1_eat();
	CHECK(!usr1_pending());
	REQUIRE(pthread_sigmask(SIG_SETMASK, &old_mask, NULL) == 0);
	REQUIRE(sigaction(SIGUSR1, &old_sa, NULL) == 0);
	rm_close(&t);
}

#define MSR_IA32_MCG_CAP    0x179
#define MSR_IA32_MC0_STATUS 0x401
#define MCI_STATUS_VAL	    (1ull << 63)
#define MCI_STATUS_UC	    (1ull << 61)
#define MCI_STATUS_ADDRV    (1ull << 58)
#define MCI_STATUS_MISCV    (1ull << 59)

KVM_TEST(vcpu_more_mce)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_MCE));
	uint64_t sup = 0;
	REQUIRE_OK(ekvm_sys_get_mce_cap_supported(t.sys, &sup));
	TEST_LOG("KVM_X86_GET_MCE_CAP_SUPPORTED = 0x%llx", (unsigned long long)sup);
	/* feature bits only: the bank count (bits 0-7) is the caller's choice */
	CHECK_EQ(sup & 0xff, 0);
	/* bank counts out of 1..32, MCG_CAP bits KVM cannot emulate: -EINVAL */
	CHECK_ERR(ekvm_vcpu_setup_mce(t.vcpu, 0), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_mce(t.vcpu, 33), -EINVAL);
	REQUIRE((sup & (1ull << 40)) == 0);
	CHECK_ERR(ekvm_vcpu_setup_mce(t.vcpu, (1ull << 40) | 4), -EINVAL);
	REQUIRE_OK(ekvm_vcpu_setup_mce(t.vcpu, 4));
	uint64_t cap = 0;
	REQUIRE_OK(ekvm_vcpu_get_msr(t.vcpu, MSR_IA32_MCG_CAP, &cap));
	CHECK_EQ(cap & 0xff, 4);

	/* a corrected error in bank 1: it lands in MC1_STATUS/ADDR/MISC */
	struct kvm_x86_mce mce;
	memset(&mce, 0, sizeof(mce));
	mce.bank = 1;
	mce.status = MCI_STATUS_VAL | MCI_STATUS_ADDRV | MCI_STATUS_MISCV | 0x0151;
	mce.addr = 0x12345000;
	mce.misc = 0x86;
	REQUIRE_OK(ekvm_vcpu_set_mce(t.vcpu, &mce));
	uint64_t st = 0, addr = 0, misc = 0;
	REQUIRE_OK(ekvm_vcpu_get_msr(t.vcpu, MSR_IA32_MC0_STATUS + 4, &st));
	REQUIRE_OK(ekvm_vcpu_get_msr(t.vcpu, MSR_IA32_MC0_STATUS + 5, &addr));
	REQUIRE_OK(ekvm_vcpu_get_msr(t.vcpu, MSR_IA32_MC0_STATUS + 6, &misc));
	CHECK_EQ(st, mce.status);
	CHECK_EQ(addr, mce.addr);
	CHECK_EQ(misc, mce.misc);
	/* bank 0 untouched */
	REQUIRE_OK(ekvm_vcpu_get_msr(t.vcpu, MSR_IA32_MC0_STATUS, &st));
	CHECK_EQ(st, 0);
	/* a bank beyond the count, a status without VAL: -EINVAL */
	mce.bank = 4;
	CHECK_ERR(ekvm_vcpu_set_mce(t.vcpu, &mce), -EINVAL);
	mce.bank = 0;
	mce.status = 0x0151;
	CHECK_ERR(ekvm_vcpu_set_mce(t.vcpu, &mce), -EINVAL);
	rm_close(&t);
}

KVM_TEST(vcpu_more_device_attr_tsc_offset)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	int cap = ekvm_vm_check_extension(t.vm, KVM_CAP_VCPU_ATTRIBUTES);
	TEST_LOG("KVM_CAP_VCPU_ATTRIBUTES = %d", cap);
	REQUIRE(cap > 0);
	uint64_t off = 0;
	struct kvm_device_attr a = {.group = KVM_VCPU_TSC_CTRL,
				    .attr = KVM_VCPU_TSC_OFFSET,
				    .addr = (uint64_t)(uintptr_t)&off};
	REQUIRE_OK(ekvm_vcpu_has_device_attr(t.vcpu, &a));
	REQUIRE_OK(ekvm_vcpu_get_device_attr(t.vcpu, &a));
	TEST_LOG("TSC offset = %lld", (long long)off);
	uint64_t want = off + 1000000000ull;
	off = want;
	REQUIRE_OK(ekvm_vcpu_set_device_attr(t.vcpu, &a));
	off = 0;
	REQUIRE_OK(ekvm_vcpu_get_device_attr(t.vcpu, &a));
	CHECK_EQ(off, want);
	/* unknown group or attribute: -ENXIO; a value pointer KVM cannot
	 * reach: -EFAULT */
	struct kvm_device_attr bad = a;
	bad.group = 0x77;
	CHECK_ERR(ekvm_vcpu_has_device_attr(t.vcpu, &bad), -ENXIO);
	CHECK_ERR(ekvm_vcpu_get_device_attr(t.vcpu, &bad), -ENXIO);
	bad = a;
	bad.attr = 0x77;
	CHECK_ERR(ekvm_vcpu_has_device_attr(t.vcpu, &bad), -ENXIO);
	bad = a;
	bad.addr = 16;
	CHECK_ERR(ekvm_vcpu_get_device_attr(t.vcpu, &bad), -EFAULT);
	CHECK_ERR(ekvm_vcpu_set_device_attr(t.vcpu, &bad), -EFAULT);
	rm_close(&t);
}

/* The Hyper-V leaves start with 0x40000000 whose EBX:ECX:EDX spell KVM's
 * Hyper-V vendor signature. */
static void check_hv_leaves(const struct kvm_cpuid2 *c)
{
	bool vendor = false;
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		CHECK(e->function >= 0x40000000 && e->function < 0x40000100);
		if (e->function == 0x40000000) {
			char sig[13];
			memcpy(sig, &e->ebx, 4);
			memcpy(sig + 4, &e->ecx, 4);
			memcpy(sig + 8, &e->edx, 4);
			sig[12] = '\0';
			TEST_LOG("0x40000000: eax 0x%x, \"%s\"", e->eax, sig);
			CHECK_STR(sig, "Linux KVM Hv");
			vendor = true;
		}
	}
	CHECK(vendor);
}

KVM_TEST(vcpu_more_supported_hv_cpuid)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_HYPERV_CPUID));
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_SYS_HYPERV_CPUID));
	struct kvm_cpuid2 *sys = NULL;
	REQUIRE_OK(ekvm_sys_supported_hv_cpuid(t.sys, &sys));
	TEST_LOG("%u Hyper-V leaves (system)", sys->nent);
	CHECK(sys->nent >= 5);
	check_hv_leaves(sys);

	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 64 * sizeof(c->entries[0]));
	REQUIRE(c != NULL);
	c->nent = 64;
	REQUIRE_OK(ekvm_vcpu_get_supported_hv_cpuid(t.vcpu, c));
	CHECK_EQ(c->nent, sys->nent);
	check_hv_leaves(c);
	/* too small: -E2BIG, for both */
	c->nent = 1;
	CHECK_ERR(ekvm_vcpu_get_supported_hv_cpuid(t.vcpu, c), -E2BIG);
	c->nent = 1;
	CHECK_ERR(ekvm_sys_get_supported_hv_cpuid(t.sys, c), -E2BIG);
	free(c);
	free(sys);
	rm_close(&t);
}

/* 5 OUTs, then HLT. */
RM_GUEST(five_outs_guest, "out %al, $0x10\n"
			  "out %al, $0x10\n"
			  "out %al, $0x10\n"
			  "out %al, $0x10\n"
			  "out %al, $0x10\n"
			  "hlt\n");

KVM_TEST(vcpu_more_stats_fd)
{
	struct rm_vm t;
	rm_setup(&t, five_outs_guest, five_outs_guest_end);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_BINARY_STATS_FD));
	int fd = ekvm_vcpu_stats_fd(t.vcpu);
	REQUIRE(fd >= 0);
	struct kvm_stats_header h;
	REQUIRE_OK(ekvm_stats_read_header(fd, &h));
	TEST_LOG("vCPU stats: %u descriptors", h.num_desc);
	CHECK(h.num_desc > 0);
	uint64_t io0 = 0, io1 = 0, halt0 = 0, halt1 = 0;
	REQUIRE_OK(ekvm_stats_read_by_name(fd, "io_exits", &io0));
	REQUIRE_OK(ekvm_stats_read_by_name(fd, "halt_exits", &halt0));
	for (int i = 0; i < 5; i++)
		rm_expect_kind(&t, EKVM_EXIT_IO_OUT);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	REQUIRE_OK(ekvm_stats_read_by_name(fd, "io_exits", &io1));
	REQUIRE_OK(ekvm_stats_read_by_name(fd, "halt_exits", &halt1));
	TEST_LOG("io_exits %llu -> %llu, halt_exits %llu -> %llu", (unsigned long long)io0,
		 (unsigned long long)io1, (unsigned long long)halt0, (unsigned long long)halt1);
	CHECK_EQ(io1 - io0, 5);
	CHECK_EQ(halt1 - halt0, 1);
	close(fd);
	rm_close(&t);
}

KVM_TEST(vcpu_more_sregs2)
{
	struct rm_vm t;
	rm_setup(&t, NULL, NULL);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_SREGS2));
	struct kvm_sregs s;
	struct kvm_sregs2 s2;
	REQUIRE_OK(ekvm_vcpu_get_sregs(t.vcpu, &s));
	REQUIRE_OK(ekvm_vcpu_get_sregs2(t.vcpu, &s2));
	/* the same state through both */
	CHECK_EQ(s2.cr0, s.cr0);
	CHECK_EQ(s2.cr4, s.cr4);
	CHECK_EQ(s2.efer, s.efer);
	CHECK_EQ(s2.cs.base, s.cs.base);
	CHECK_EQ(s2.cs.selector, s.cs.selector);
	CHECK_EQ(s2.apic_base, s.apic_base);
	/* real mode, no PAE paging: no PDPTRs */
	CHECK_EQ(s2.flags & KVM_SREGS2_FLAGS_PDPTRS_VALID, 0);
	/* a change through sregs2 shows in sregs */
	s2.cr3 = 0x5000;
	s2.ds.base = 0x1230;
	REQUIRE_OK(ekvm_vcpu_set_sregs2(t.vcpu, &s2));
	REQUIRE_OK(ekvm_vcpu_get_sregs(t.vcpu, &s));
	CHECK_EQ(s.cr3, 0x5000);
	CHECK_EQ(s.ds.base, 0x1230);
	/* flags KVM does not know: -EINVAL; PDPTRs without PAE paging: -EINVAL */
	struct kvm_sregs2 bad = s2;
	bad.flags = 1u << 5;
	CHECK_ERR(ekvm_vcpu_set_sregs2(t.vcpu, &bad), -EINVAL);
	bad.flags = KVM_SREGS2_FLAGS_PDPTRS_VALID;
	CHECK_ERR(ekvm_vcpu_set_sregs2(t.vcpu, &bad), -EINVAL);
	rm_close(&t);
}

/* One OUT, then spin on OUTs. */
RM_GUEST(vapic_guest, "1:\n"
		      "out %al, $0x10\n"
		      "jmp 1b\n");

#define VAPIC_GPA 0x8000u

KVM_TEST(vcpu_more_vapic_addr)
{
	struct rm_vm t;
	/* without the in-kernel LAPIC: -EINVAL */
	rm_setup(&t, NULL, NULL);
	CHECK_ERR(ekvm_vcpu_set_vapic_addr(t.vcpu, VAPIC_GPA), -EINVAL);
	rm_close(&t);

	rm_open(&t);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_VAPIC));
	REQUIRE_OK(ekvm_vm_create_irqchip(t.vm));
	rm_add_ram(&t);
	rm_add_vcpu(&t);
	rm_load(&t, vapic_guest, vapic_guest_end);
	/* an address in no memory slot: -EINVAL; 0 turns it off */
	CHECK_ERR(ekvm_vcpu_set_vapic_addr(t.vcpu, 0xf0000000u), -EINVAL);
	CHECK_OK(ekvm_vcpu_set_vapic_addr(t.vcpu, 0));
	/* software-enable the LAPIC and set TPR = 0x20: on the next entry KVM
	 * writes the TPR into the vAPIC page */
	struct kvm_lapic_state l;
	REQUIRE_OK(ekvm_vcpu_get_lapic(t.vcpu, &l));
	uint32_t svr, tpr = 0x20;
	memcpy(&svr, &l.regs[0xf0], 4);
	svr |= 0x1ff;
	memcpy(&l.regs[0xf0], &svr, 4);
	memcpy(&l.regs[0x80], &tpr, 4);
	REQUIRE_OK(ekvm_vcpu_set_lapic(t.vcpu, &l));
	uint32_t marker = 0xdeadbeef;
	memcpy(t.mem + VAPIC_GPA, &marker, 4);
	REQUIRE_OK(ekvm_vcpu_set_vapic_addr(t.vcpu, VAPIC_GPA));
	rm_expect_kind(&t, EKVM_EXIT_IO_OUT);
	uint32_t got;
	memcpy(&got, t.mem + VAPIC_GPA, 4);
	TEST_LOG("vAPIC page word after one entry: 0x%08x", got);
	CHECK_EQ(got & 0xff, 0x20);
	rm_close(&t);
}

struct restart_kick {
	struct ekvm_vcpu *vcpu;
	pthread_t target;
	volatile int returned; /* set by the vCPU thread once KVM_RUN is back */
	bool needed_backup;
};

static void *restart_kicker(void *arg)
{
	struct restart_kick *k = arg;
	struct timespec ts = {0, 20 * 1000000L};
	/* the signal alone, no immediate_exit, every 20 ms (one sent before the
	 * vCPU thread reached KVM_RUN is simply handled there) for 3 s */
	for (int i = 0; i < 150 && !__atomic_load_n(&k->returned, __ATOMIC_ACQUIRE); i++) {
		pthread_kill(k->target, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	/* a backup kick, so a KVM_RUN that kept being restarted cannot hang */
	if (!__atomic_load_n(&k->returned, __ATOMIC_ACQUIRE)) {
		k->needed_backup = true;
		ekvm_vcpu_set_immediate_exit(k->vcpu, true);
		pthread_kill(k->target, SIGUSR1);
	}
	return NULL;
}

/*
 * A signal whose handler was installed WITH SA_RESTART still ends a KVM_RUN
 * that is spinning in the guest: KVM returns EINTR (not a restartable
 * -ERESTARTSYS), which the kernel never restarts. What a kick needs is a
 * handler (not SIG_IGN) and the signal unblocked inside KVM_RUN.
 */
KVM_TEST(vcpu_more_kick_with_sa_restart)
{
	struct rm_vm t;
	rm_setup(&t, out_loop_guest, out_loop_guest_end);
	/* spin without exits: a jmp to itself right at the start */
	static const uint8_t spin[] = {0xeb, 0xfe};
	memcpy(t.mem + RM_CODE, spin, sizeof(spin));
	struct sigaction sa, old_sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGUSR1, &sa, &old_sa) == 0);
	sigset_t usr1, old_mask;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	REQUIRE(pthread_sigmask(SIG_UNBLOCK, &usr1, &old_mask) == 0);
	usr1_seen = 0;
	struct restart_kick k = {.vcpu = t.vcpu, .target = pthread_self()};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, restart_kicker, &k) == 0);
	struct ekvm_exit ex;
	int r = ekvm_vcpu_run(t.vcpu, &ex);
	__atomic_store_n(&k.returned, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK_EQ(r, 0);
	CHECK_EQ(ex.kind, EKVM_EXIT_INTR);
	CHECK(usr1_seen >= 1);
	CHECK(!k.needed_backup);
	REQUIRE(pthread_sigmask(SIG_SETMASK, &old_mask, NULL) == 0);
	REQUIRE(sigaction(SIGUSR1, &old_sa, NULL) == 0);
	rm_close(&t);
}
