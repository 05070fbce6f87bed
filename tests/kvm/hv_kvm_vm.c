/* tests/kvm/hv_kvm_vm.c - the VM-level operations of the vCPU layer on real KVM: platform, state round trips, irqfd, ioeventfd, SIPI. */
#include "hv_kvm_env.h"

#include <ember/kvm.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static void hvk_plain_open(struct hvk_env *env, bool platform, unsigned flags)
{
	hvk_env_open_with(env, hvk_start, (size_t)(hvk_end - hvk_start));
	if (platform)
		REQUIRE_OK(
		    ehv_vm_setup_platform(env->vm, &(struct ehv_platform_config){.flags = flags}));
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

KVM_TEST(hv_kvm_platform_once)
{
	struct hvk_env env;
	hvk_plain_open(&env, false, 0);
	CHECK_ERR(ehv_vm_set_irq_line(env.vm, 4, true), -ENXIO);
	REQUIRE_OK(ehv_vm_setup_platform(
	    env.vm, &(struct ehv_platform_config){.flags = EHV_PLATFORM_PIT |
							   EHV_PLATFORM_PIT_SPEAKER_DUMMY}));
	CHECK_ERR(ehv_vm_setup_platform(env.vm, NULL), -EEXIST);
	/* the in-kernel devices exist: KVM refuses to create them again */
	struct ekvm_vm *k = ehv_vm_backend_handle(env.vm);
	REQUIRE(k);
	CHECK_ERR(ekvm_vm_create_irqchip(k), -EEXIST);
	CHECK_ERR(ekvm_vm_create_pit2(k, 0), -EEXIST);
	/* lines: level and pulse go through to KVM_IRQ_LINE */
	CHECK_OK(ehv_vm_set_irq_line(env.vm, 4, true));
	CHECK_OK(ehv_vm_set_irq_line(env.vm, 4, false));
	CHECK_OK(ehv_vm_pulse_irq(env.vm, 8));
	CHECK_ERR(ehv_vm_set_irq_line(env.vm, EHV_MAX_GSI, true), -EINVAL);
	hvk_env_close(&env);

	/* after a vCPU exists the platform step is refused */
	hvk_plain_open(&env, false, 0);
	struct ehv_vcpu *v;
	REQUIRE_OK(ehv_vcpu_create(env.vm, 0, &v));
	CHECK_ERR(ehv_vm_setup_platform(env.vm, NULL), -EBUSY);
	ehv_vcpu_destroy(v);
	hvk_env_close(&env);
}

KVM_TEST(hv_kvm_irqchip_state_round_trip)
{
	struct hvk_env env;
	hvk_plain_open(&env, true, 0);
	struct ehv_state_blob b;
	CHECK_ERR(ehv_vm_get_pit(env.vm, &b), -ENXIO); /* no PIT asked for */
	for (int chip = EHV_IRQCHIP_PIC_MASTER; chip <= EHV_IRQCHIP_PIC_SLAVE; chip++) {
		REQUIRE_OK(ehv_vm_get_irqchip(env.vm, chip, &b));
		CHECK_EQ(b.backend, EHV_BACKEND_KVM);
		REQUIRE_EQ(b.size, sizeof(struct kvm_pic_state));
		struct kvm_pic_state *p = (struct kvm_pic_state *)b.data;
		p->irq_base = (uint8_t)(0x30 + 8 * chip);
		p->imr = (uint8_t)(0x5a ^ chip);
		p->irr = p->isr = 0;
		CHECK_OK(ehv_vm_set_irqchip(env.vm, chip, &b));
		struct ehv_state_blob back;
		REQUIRE_OK(ehv_vm_get_irqchip(env.vm, chip, &back));
		CHECK_EQ(back.size, b.size);
		CHECK(memcmp(back.data, b.data, b.size) == 0);
		CHECK_EQ(((struct kvm_pic_state *)back.data)->imr, 0x5a ^ chip);
	}
	REQUIRE_OK(ehv_vm_get_irqchip(env.vm, EHV_IRQCHIP_IOAPIC, &b));
	REQUIRE_EQ(b.size, sizeof(struct kvm_ioapic_state));
	struct kvm_ioapic_state *io = (struct kvm_ioapic_state *)b.data;
	io->redirtbl[3].bits = 0x10031ull; /* masked, vector 0x31 */
	io->redirtbl[17].bits = 0x0300000000018042ull;
	CHECK_OK(ehv_vm_set_irqchip(env.vm, EHV_IRQCHIP_IOAPIC, &b));
	struct ehv_state_blob back;
	REQUIRE_OK(ehv_vm_get_irqchip(env.vm, EHV_IRQCHIP_IOAPIC, &back));
	io = (struct kvm_ioapic_state *)back.data;
	CHECK_EQ(io->redirtbl[3].bits, 0x10031ull);
	CHECK_EQ(io->redirtbl[17].bits, 0x0300000000018042ull);
	/* blobs of the wrong size or backend are refused before KVM */
	back.size -= 4;
	CHECK_ERR(ehv_vm_set_irqchip(env.vm, EHV_IRQCHIP_IOAPIC, &back), -EINVAL);
	back.size += 4;
	back.backend = EHV_BACKEND_MOCK;
	CHECK_ERR(ehv_vm_set_irqchip(env.vm, EHV_IRQCHIP_IOAPIC, &back), -EINVAL);
	hvk_env_close(&env);
}

KVM_TEST(hv_kvm_pit_state_round_trip)
{
	struct hvk_env env;
	hvk_plain_open(&env, true, EHV_PLATFORM_PIT | EHV_PLATFORM_PIT_SPEAKER_DUMMY);
	struct ehv_state_blob b;
	REQUIRE_OK(ehv_vm_get_pit(env.vm, &b));
	REQUIRE_EQ(b.size, sizeof(struct kvm_pit_state2));
	struct kvm_pit_state2 *p = (struct kvm_pit_state2 *)b.data;
	CHECK_EQ(p->channels[0].count, 0x10000); /* reset: 0 means 0x10000 */
	static const uint32_t count[3] = {0x4000, 0x1234, 0x2345};
	for (int i = 0; i < 3; i++) {
		p->channels[i].count = count[i];
		p->channels[i].mode = 2;
		p->channels[i].rw_mode = 3;
		p->channels[i].gate = 1;
		p->channels[i].read_state = p->channels[i].write_state = 3;
		p->channels[i].count_latched = p->channels[i].status_latched = 0;
	}
	p->flags = 0;
	CHECK_OK(ehv_vm_set_pit(env.vm, &b));
	struct ehv_state_blob back;
	REQUIRE_OK(ehv_vm_get_pit(env.vm, &back));
	p = (struct kvm_pit_state2 *)back.data;
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(p->channels[i].count, count[i]);
		CHECK_EQ(p->channels[i].mode, 2);
	}
	hvk_env_close(&env);
}

KVM_TEST(hv_kvm_clock_round_trip)
{
	struct hvk_env env;
	hvk_plain_open(&env, false, 0);
	const uint64_t t = 1000ull * 1000000000ull; /* 1000 s */
	CHECK_OK(ehv_vm_set_clock(env.vm, &(struct ehv_clock){.ns = t}));
	struct ehv_clock c;
	REQUIRE_OK(ehv_vm_get_clock(env.vm, &c));
	CHECK(c.ns >= t);
	CHECK(c.ns < t + 30ull * 1000000000ull); /* runs on from the set value */
	struct ehv_clock d;
	REQUIRE_OK(ehv_vm_get_clock(env.vm, &d));
	CHECK(d.ns >= c.ns);
	TEST_LOG("clock %llu ns after set, flags %#x", (unsigned long long)(c.ns - t), c.flags);
	hvk_env_close(&env);
}

KVM_TEST(hv_kvm_msrs_mp_state_lapic_round_trip)
{
	struct hvk_env env;
	hvk_plain_open(&env, true, 0);
	struct ehv_vcpu *v0, *v1;
	REQUIRE_OK(ehv_vcpu_create(env.vm, 0, &v0));
	REQUIRE_OK(ehv_vcpu_create(env.vm, 1, &v1));

	struct ehv_msr set[3] = {{0x174, 0x10}, {0x175, 0x7000}, {0xc0000102, 0x123456789000ull}};
	CHECK_EQ(ehv_vcpu_set_msrs(v0, set, 3), 3);
	struct ehv_msr get[3] = {{0xc0000102, 0}, {0x174, 0}, {0x175, 0}};
	CHECK_EQ(ehv_vcpu_get_msrs(v0, get, 3), 3);
	CHECK_EQ(get[0].value, 0x123456789000ull);
	CHECK_EQ(get[1].value, 0x10);
	CHECK_EQ(get[2].value, 0x7000);
	/* per vCPU */
	CHECK_EQ(ehv_vcpu_get_msrs(v1, get, 3), 3);
	CHECK_EQ(get[1].value, 0);
	/* KVM stops at an MSR it does not know */
	struct ehv_msr bad[2] = {{0x174, 0}, {0x4b564dff, 0}};
	CHECK_EQ(ehv_vcpu_get_msrs(v0, bad, 2), 1);
	CHECK_EQ(bad[0].value, 0x10);

	/* MP state: BSP runnable, AP waiting for INIT/SIPI, and a round trip */
	enum ehv_mp_state mp;
	CHECK_OK(ehv_vcpu_get_mp_state(v0, &mp));
	CHECK_EQ(mp, EHV_MP_RUNNABLE);
	CHECK_OK(ehv_vcpu_get_mp_state(v1, &mp));
	CHECK_EQ(mp, EHV_MP_UNINITIALIZED);
	CHECK_OK(ehv_vcpu_set_mp_state(v1, EHV_MP_INIT_RECEIVED));
	CHECK_OK(ehv_vcpu_get_mp_state(v1, &mp));
	CHECK_EQ(mp, EHV_MP_INIT_RECEIVED);
	CHECK_OK(ehv_vcpu_set_mp_state(v0, EHV_MP_HALTED));
	CHECK_OK(ehv_vcpu_get_mp_state(v0, &mp));
	CHECK_EQ(mp, EHV_MP_HALTED);

	/* LAPIC: the xAPIC ID is the vCPU id; TPR survives a round trip */
	struct ehv_lapic_state l;
	REQUIRE_OK(ehv_vcpu_get_lapic(v1, &l));
	CHECK_EQ(l.regs[0x23], 1);
	l.regs[0x80] = 0x20;
	CHECK_OK(ehv_vcpu_set_lapic(v1, &l));
	struct ehv_lapic_state l2;
	REQUIRE_OK(ehv_vcpu_get_lapic(v1, &l2));
	CHECK_EQ(l2.regs[0x80], 0x20);
	CHECK_EQ(l2.regs[0x23], 1);
	REQUIRE_OK(ehv_vcpu_get_lapic(v0, &l2));
	CHECK_EQ(l2.regs[0x23], 0);
	ehv_vcpu_destroy(v1);
	ehv_vcpu_destroy(v0);
	hvk_env_close(&env);
}

KVM_TEST(hv_kvm_supported_cpuid_and_msr_lists)
{
	struct ehv_hypervisor *hyp;
	REQUIRE_OK(ehv_hypervisor_open(NULL, &hyp));
	int n = ehv_hypervisor_supported_cpuid(hyp, NULL, 0);
	REQUIRE(n > 0 && n <= EHV_CPUID_MAX_ENTRIES);
	struct ehv_x86_cpuid_entry e[EHV_CPUID_MAX_ENTRIES];
	CHECK_EQ(ehv_hypervisor_supported_cpuid(hyp, e, EHV_CPUID_MAX_ENTRIES), n);
	CHECK_EQ(e[0].function, 0); /* leaf 0 first, max basic leaf in EAX */
	CHECK(e[0].eax >= 1);
	bool leaf1 = false, sig = false;
	for (int i = 0; i < n; i++) {
		leaf1 |= e[i].function == 1;
		sig |= e[i].function == 0x40000000 && e[i].ebx == 0x4b4d564b; /* "KVMK" */
	}
	CHECK(leaf1);
	CHECK(sig);

	static uint32_t l[EHV_MSR_LIST_MAX];
	int m = ehv_hypervisor_msr_index_list(hyp, NULL, 0);
	REQUIRE(m > 0 && m <= EHV_MSR_LIST_MAX);
	CHECK_EQ(ehv_hypervisor_msr_index_list(hyp, l, EHV_MSR_LIST_MAX), m);
	bool sysenter = false;
	for (int i = 0; i < m; i++)
		sysenter |= l[i] == 0x174;
	CHECK(sysenter);
	int f = ehv_hypervisor_feature_msr_index_list(hyp, l, EHV_MSR_LIST_MAX);
	CHECK(f > 0 || f == -EOPNOTSUPP);
	TEST_LOG("%d CPUID entries, %d MSRs, %d feature MSRs", n, m, f);
	ehv_hypervisor_close(hyp);
}

/* The PIC master's IRR (struct kvm_pic_state.irr) through the neutral call. */
static uint8_t pic_irr(struct ehv_vm *vm)
{
	struct ehv_state_blob b;
	REQUIRE_OK(ehv_vm_get_irqchip(vm, EHV_IRQCHIP_PIC_MASTER, &b));
	return ((struct kvm_pic_state *)b.data)->irr;
}

KVM_TEST(hv_kvm_irqfd_injects)
{
	struct hvk_env env;
	hvk_plain_open(&env, true, 0);
	int fd = eventfd(0, EFD_CLOEXEC), rfd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(fd >= 0 && rfd >= 0);
	CHECK_EQ(pic_irr(env.vm) & (1u << 5), 0);
	REQUIRE_OK(ehv_vm_irqfd(env.vm, fd, 5, -1));
	CHECK_ERR(ehv_vm_irqfd(env.vm, fd, 6, -1), -EEXIST);
	uint64_t one = 1;
	REQUIRE(write(fd, &one, sizeof(one)) == sizeof(one));
	/* the injection runs from a kernel work item: wait for IRR bit 5 */
	bool seen = false;
	for (int i = 0; i < 2000 && !seen; i++) {
		seen = (pic_irr(env.vm) & (1u << 5)) != 0;
		if (!seen)
			sleep_ms(1);
	}
	CHECK(seen);
	CHECK_OK(ehv_vm_irqfd_remove(env.vm, fd, 5));
	/* deassigned: a write no longer reaches IRQ 7's line */
	REQUIRE_OK(ehv_vm_irqfd(env.vm, rfd, 7, -1));
	CHECK_OK(ehv_vm_irqfd_remove(env.vm, rfd, 7));
	REQUIRE(write(rfd, &one, sizeof(one)) == sizeof(one));
	sleep_ms(50);
	CHECK_EQ(pic_irr(env.vm) & (1u << 7), 0);
	/* a level-triggered irqfd with a resample fd */
	int lfd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(lfd >= 0);
	CHECK_OK(ehv_vm_irqfd(env.vm, lfd, 9, rfd));
	CHECK_OK(ehv_vm_irqfd_remove(env.vm, lfd, 9));
	/* not an eventfd: KVM refuses */
	CHECK(ehv_vm_irqfd(env.vm, 0, 10, -1) < 0);
	close(lfd);
	close(fd);
	close(rfd);
	hvk_env_close(&env);
}

/* Runs v until Halt, counting IoWrite and MmioWrite exits (answered). */
static int ignore_io(void *opaque, struct ehv_io_access *a)
{
	(void)opaque;
	(void)a;
	return 0;
}

static void run_to_halt(struct ehv_vcpu *v, unsigned *io, unsigned *mmio)
{
	struct ehv_exit ex;
	*io = *mmio = 0;
	for (int i = 0; i < 1000; i++) {
		int r = ehv_vcpu_run(v, &ex);
		REQUIRE(r >= 0);
		if (r == EHV_EXIT_HALT)
			return;
		if (r == EHV_EXIT_IO_WRITE) {
			(*io)++;
			REQUIRE_OK(ehv_vcpu_handle_io(v, ignore_io, NULL));
		} else if (r == EHV_EXIT_MMIO_WRITE) {
			(*mmio)++;
			REQUIRE_OK(ehv_vcpu_handle_mmio(v, ignore_io, NULL));
		} else {
			TEST_FAIL("unexpected exit %s", ehv_exit_reason_name(ex.reason));
		}
	}
	TEST_FAIL("no Halt");
}

static uint64_t efd_read(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

KVM_TEST(hv_kvm_ioeventfd_fires_on_guest_writes)
{
	struct hvk_env env;
	hvk_plain_open(&env, false, 0); /* no irqchip: HLT exits */
	int pfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
	    mfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	REQUIRE(pfd >= 0 && mfd >= 0);
	struct ehv_ioeventfd pio = {.addr = 0x10, .len = 1, .flags = EHV_IOEVENT_PIO, .fd = pfd};
	struct ehv_ioeventfd mm = {.addr = 0x10000, .len = 1, .flags = 0, .fd = mfd};
	REQUIRE_OK(ehv_vm_ioeventfd(env.vm, &pio));
	REQUIRE_OK(ehv_vm_ioeventfd(env.vm, &mm));
	CHECK_ERR(ehv_vm_ioeventfd(env.vm, &pio), -EEXIST);
	/* KVM's collision rule, as documented: another eventfd on the same
	 * port collides too */
	struct ehv_ioeventfd pio_other = pio;
	pio_other.fd = mfd;
	CHECK_ERR(ehv_vm_ioeventfd(env.vm, &pio_other), -EEXIST);

	/* 5 OUTs to port 0x10, 3 byte writes at 0x10000, then HLT: none exits */
	struct ehv_vcpu *v = hvk_vcpu_at(&env, 0, HVK_GPA(hvk_counted));
	struct ehv_x86_regs regs;
	REQUIRE_OK(ehv_vcpu_get_regs(v, &regs));
	regs.rcx = 5;
	regs.rsi = 3;
	REQUIRE_OK(ehv_vcpu_set_regs(v, &regs));
	unsigned io, mmio;
	run_to_halt(v, &io, &mmio);
	CHECK_EQ(io, 0);
	CHECK_EQ(mmio, 0);
	CHECK_EQ(efd_read(pfd), 5);
	CHECK_EQ(efd_read(mfd), 3);
	ehv_vcpu_destroy(v);

	/* with a datamatch only the matching value signals; the rest exit */
	CHECK_OK(ehv_vm_ioeventfd_remove(env.vm, &pio));
	CHECK_OK(ehv_vm_ioeventfd_remove(env.vm, &mm));
	CHECK_ERR(ehv_vm_ioeventfd_remove(env.vm, &mm), -ENOENT);
	struct ehv_ioeventfd dm = {.addr = 0x10,
				   .len = 1,
				   .flags = EHV_IOEVENT_PIO | EHV_IOEVENT_DATAMATCH,
				   .datamatch = 3,
				   .fd = pfd};
	REQUIRE_OK(ehv_vm_ioeventfd(env.vm, &dm));
	v = hvk_vcpu_at(&env, 1, HVK_GPA(hvk_counted));
	REQUIRE_OK(ehv_vcpu_get_regs(v, &regs));
	regs.rcx = 5; /* values 0..4: only 3 matches */
	regs.rsi = 2;
	REQUIRE_OK(ehv_vcpu_set_regs(v, &regs));
	run_to_halt(v, &io, &mmio);
	CHECK_EQ(io, 4);
	CHECK_EQ(mmio, 2); /* the MMIO ioeventfd is gone: its writes exit again */
	CHECK_EQ(efd_read(pfd), 1);
	CHECK_EQ(efd_read(mfd), 0);
	CHECK_OK(ehv_vm_ioeventfd_remove(env.vm, &dm));
	ehv_vcpu_destroy(v);
	close(pfd);
	close(mfd);
	hvk_env_close(&env);
}

/*
 * INIT/SIPI: the BSP moves its LAPIC to 0x20000 (reachable from real mode;
 * the host sets IA32_APIC_BASE), sends INIT then SIPI (vector 0x0a: the AP
 * starts at 0xa000) to APIC ID 1, reports on port 0x12 and spins. The AP
 * writes 0x77 to port 0x13. The AP is created UNINITIALIZED: KVM's run
 * returns EAGAIN when the SIPI wakes it, which the layer must absorb.
 */
__asm__(".pushsection .rodata\n"
	".code16\n"
	"sipi_bsp:\n"
	"  mov $0x2000, %ax\n"
	"  mov %ax, %es\n"
	"  movl $0x000001ff, %es:0xf0\n"  /* SVR: APIC software-enabled, as an OS does */
	"  movl $0x01000000, %es:0x310\n" /* ICR high: destination APIC ID 1 */
	"  movl $0x00004500, %es:0x300\n" /* INIT, assert */
	"  movl $0x01000000, %es:0x310\n"
	"  movl $0x0000460a, %es:0x300\n" /* SIPI, vector 0x0a */
	"  mov $0x12, %dx\n"
	"  outb %al, %dx\n"
	"1:jmp 1b\n"
	"sipi_bsp_end:\n"
	"sipi_ap:\n"
	"  mov $0x77, %al\n"
	"  mov $0x13, %dx\n"
	"  outb %al, %dx\n"
	"2:jmp 2b\n"
	"sipi_ap_end:\n"
	".code64\n"
	".popsection\n");
HVK_SYM(sipi_bsp);
HVK_SYM(sipi_bsp_end);
HVK_SYM(sipi_ap);
HVK_SYM(sipi_ap_end);

struct ap_run {
	struct ehv_vcpu *v;
	int r;
	struct ehv_exit ex;
	int done;
};

static void *ap_thread(void *arg)
{
	struct ap_run *a = arg;
	a->r = ehv_vcpu_run(a->v, &a->ex);
	__atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

KVM_TEST(hv_kvm_ap_wakes_on_sipi_in_one_run)
{
	struct hvk_env env;
	hvk_plain_open(&env, true, 0);
	memcpy(env.mem + 0x4000, sipi_bsp, (size_t)(sipi_bsp_end - sipi_bsp));
	memcpy(env.mem + 0xa000, sipi_ap, (size_t)(sipi_ap_end - sipi_ap));
	struct ehv_vcpu *bsp, *ap;
	REQUIRE_OK(ehv_vcpu_create(env.vm, 0, &bsp));
	REQUIRE_OK(ehv_vcpu_create(env.vm, 1, &ap));
	REQUIRE_OK(ehv_vcpu_set_real_mode(bsp, 0x4000, 0x7000));
	struct ehv_msr base = {.index = 0x1b, .value = 0x20000 | 0x900}; /* enabled, BSP */
	REQUIRE_EQ(ehv_vcpu_set_msrs(bsp, &base, 1), 1);
	enum ehv_mp_state mp;
	REQUIRE_OK(ehv_vcpu_get_mp_state(ap, &mp));
	CHECK_EQ(mp, EHV_MP_UNINITIALIZED);

	struct ap_run a = {.v = ap};
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, ap_thread, &a) == 0);
	struct ehv_exit ex;
	int r = ehv_vcpu_run(bsp, &ex);
	CHECK_EQ(r, EHV_EXIT_IO_WRITE);
	CHECK_EQ(ex.u.io_write.port, 0x12);
	for (int i = 0; i < 5000 && !__atomic_load_n(&a.done, __ATOMIC_SEQ_CST); i++)
		sleep_ms(1);
	if (!__atomic_load_n(&a.done, __ATOMIC_SEQ_CST))
		ehv_vcpu_kick(ap); /* the SIPI never came: end the AP's run */
	pthread_join(t, NULL);
	struct ehv_lapic_state l;
	if (ehv_vcpu_get_lapic(bsp, &l) == 0) {
		uint32_t icr, icr2, svr;
		memcpy(&icr, l.regs + 0x300, 4);
		memcpy(&icr2, l.regs + 0x310, 4);
		memcpy(&svr, l.regs + 0xf0, 4);
		TEST_LOG("BSP LAPIC: ICR %#x ICR2 %#x SVR %#x", icr, icr2, svr);
	}
	/* one ehv_vcpu_run took the AP from the SIPI to its first exit */
	CHECK_EQ(a.r, EHV_EXIT_IO_WRITE);
	CHECK_EQ(a.ex.u.io_write.port, 0x13);
	CHECK_EQ(a.ex.u.io_write.data, 0x77);
	CHECK_OK(ehv_vcpu_get_mp_state(ap, &mp));
	CHECK_EQ(mp, EHV_MP_RUNNABLE);
	ehv_vcpu_destroy(ap);
	ehv_vcpu_destroy(bsp);
	hvk_env_close(&env);
}

/*
 * An irqfd interrupt the guest sees: the guest programs the in-kernel PIC
 * (vectors 0x20-0x27, only IRQ 5 unmasked), reports on port 0x12, enables
 * interrupts and halts (in the kernel: the irqchip is there). The host then
 * signals the irqfd for GSI 5; the guest's handler for vector 0x25 writes
 * 0x25 to port 0x14, EOIs and returns.
 */
__asm__(".pushsection .rodata\n"
	".code16\n"
	"irq_guest:\n"
	"  cli\n"
	"  mov $0x11, %al\n" /* ICW1: edge, cascade, ICW4 */
	"  out %al, $0x20\n"
	"  mov $0x20, %al\n" /* ICW2: vector base 0x20 */
	"  out %al, $0x21\n"
	"  mov $0x04, %al\n" /* ICW3: slave on IRQ 2 */
	"  out %al, $0x21\n"
	"  mov $0x01, %al\n" /* ICW4: 8086 mode */
	"  out %al, $0x21\n"
	"  mov $0xdf, %al\n" /* OCW1: only IRQ 5 */
	"  out %al, $0x21\n"
	"  mov $0x12, %dx\n"
	"  out %al, %dx\n"
	"  sti\n"
	"1:hlt\n"
	"  jmp 1b\n"
	"irq_handler:\n"
	"  mov $0x25, %al\n"
	"  mov $0x14, %dx\n"
	"  out %al, %dx\n"
	"  mov $0x20, %al\n" /* non-specific EOI */
	"  out %al, $0x20\n"
	"  iret\n"
	"irq_guest_end:\n"
	".code64\n"
	".popsection\n");
HVK_SYM(irq_guest);
HVK_SYM(irq_handler);
HVK_SYM(irq_guest_end);

struct watchdog {
	struct ehv_vcpu *v;
	int done;
};

/* Kicks the vCPU after 10 s unless done: a lost interrupt fails the test
 * instead of hanging it. */
static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;
	for (int i = 0; i < 10000 && !__atomic_load_n(&w->done, __ATOMIC_SEQ_CST); i++)
		sleep_ms(1);
	if (!__atomic_load_n(&w->done, __ATOMIC_SEQ_CST))
		ehv_vcpu_kick(w->v);
	return NULL;
}

KVM_TEST(hv_kvm_irqfd_interrupt_reaches_the_guest)
{
	struct hvk_env env;
	hvk_plain_open(&env, true, 0);
	const uint16_t code = 0x5000;
	memcpy(env.mem + code, irq_guest, (size_t)(irq_guest_end - irq_guest));
	const uint16_t handler = (uint16_t)(code + (irq_handler - irq_guest));
	/* the real-mode IVT entry of vector 0x25: offset, then segment 0 */
	memcpy(env.mem + 0x25 * 4, &handler, 2);
	memset(env.mem + 0x25 * 4 + 2, 0, 2);
	int fd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE_OK(ehv_vm_irqfd(env.vm, fd, 5, -1));
	struct ehv_vcpu *v = hvk_vcpu_at(&env, 0, code);

	struct ehv_exit ex;
	int r = ehv_vcpu_run(v, &ex);
	REQUIRE_EQ(r, EHV_EXIT_IO_WRITE);
	REQUIRE_EQ(ex.u.io_write.port, 0x12); /* the PIC is programmed */
	REQUIRE_OK(ehv_vcpu_handle_io(v, ignore_io, NULL));
	uint64_t one = 1;
	REQUIRE(write(fd, &one, sizeof(one)) == sizeof(one));

	struct watchdog w = {.v = v};
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, watchdog_thread, &w) == 0);
	r = ehv_vcpu_run(v, &ex); /* sti; hlt: only the interrupt ends it */
	__atomic_store_n(&w.done, 1, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);
	CHECK_EQ(r, EHV_EXIT_IO_WRITE);
	CHECK_EQ(ex.u.io_write.port, 0x14);
	CHECK_EQ(ex.u.io_write.data, 0x25);
	CHECK_OK(ehv_vm_irqfd_remove(env.vm, fd, 5));
	ehv_vcpu_destroy(v);
	close(fd);
	hvk_env_close(&env);
}
