/* tests/kvm/vcpu_state.c - vCPU state get/set round trips of the binding against real KVM. */
#include "vm_realmode.h"

#define MSR_SYSENTER_CS		0x174
#define MSR_SYSENTER_ESP	0x175
#define MSR_SYSENTER_EIP	0x176
#define MSR_STAR		0xc0000081
#define MSR_TSC			0x10
#define MSR_BOGUS		0xdeadbeef
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

RM_GUEST(hlt_guest, "hlt\n");

static void vcpu_open(struct rm_vm *t, bool irqchip)
{
	rm_open(t);
	if (irqchip)
		REQUIRE_OK(ekvm_vm_create_irqchip(t->vm));
	rm_add_ram(t);
	rm_add_vcpu(t);
}

KVM_TEST(vcpu_handle_basics)
{
	struct rm_vm t;
	rm_open(&t);
	struct ekvm_vcpu *v3;
	REQUIRE_OK(ekvm_vcpu_create(t.vm, 3, &v3));
	CHECK_EQ(ekvm_vcpu_id(v3), 3);
	CHECK(ekvm_vcpu_fd(v3) >= 0);
	CHECK(ekvm_vcpu_fd(v3) != ekvm_vm_fd(t.vm));
	CHECK(ekvm_vcpu_run_area(v3) != NULL);
	/* the raw tier reaches the same vCPU */
	struct kvm_regs a, b;
	REQUIRE_OK(ekvm_vcpu_get_regs(v3, &a));
	REQUIRE_OK(EKVM_IOCTL(ekvm_vcpu_ioctl_raw, v3, KVM_GET_REGS, &b));
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	/* after reset: RIP 0xfff0, RFLAGS 0x2 */
	CHECK_EQ(a.rip, 0xfff0);
	CHECK_EQ(a.rflags, 0x2);
	ekvm_vcpu_destroy(v3);
	rm_close(&t);
}

KVM_TEST(vcpu_regs_round_trip)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	struct kvm_regs r;
	uint64_t *w = (uint64_t *)&r;
	for (size_t i = 0; i < sizeof(r) / 8; i++)
		w[i] = (0x0101010101010101ull * (i + 1)) ^ 0x8000000000000000ull;
	r.rip = 0x1234;
	r.rflags = 0x2 | 0x1 | 0x40 | 0x800; /* CF ZF OF */
	REQUIRE_OK(ekvm_vcpu_set_regs(t.vcpu, &r));
	struct kvm_regs back;
	memset(&back, 0, sizeof(back));
	REQUIRE_OK(ekvm_vcpu_get_regs(t.vcpu, &back));
	CHECK(memcmp(&r, &back, sizeof(r)) == 0);
	CHECK_EQ(back.r15, r.r15);
	CHECK_EQ(back.rax, r.rax);
	CHECK_EQ(back.rflags, 0x843);
	rm_close(&t);
}

static void seg_set(struct kvm_segment *s, uint64_t base, uint16_t sel, uint8_t type)
{
	s->base = base;
	s->selector = sel;
	s->limit = 0xffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->dpl = 0;
	s->db = 0;
	s->l = 0;
	s->g = 0;
	s->avl = 0;
}

static void seg_check(const struct kvm_segment *got, const struct kvm_segment *want)
{
	CHECK_EQ(got->base, want->base);
	CHECK_EQ(got->selector, want->selector);
	CHECK_EQ(got->limit, want->limit);
	CHECK_EQ(got->type, want->type);
	CHECK_EQ(got->present, want->present);
	CHECK_EQ(got->s, want->s);
}

KVM_TEST(vcpu_sregs_round_trip)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	struct kvm_sregs s;
	REQUIRE_OK(ekvm_vcpu_get_sregs(t.vcpu, &s));
	/* reset state: real mode, CS 0xf000 at 0xffff0000 */
	CHECK_EQ(s.cs.selector, 0xf000);
	CHECK_EQ(s.cs.base, 0xffff0000);
	CHECK_EQ(s.cr0 & 1, 0);

	seg_set(&s.cs, 0x10000, 0x1000, 0xb);
	seg_set(&s.ds, 0x20000, 0x2000, 0x3);
	seg_set(&s.es, 0x30000, 0x3000, 0x3);
	seg_set(&s.fs, 0x40000, 0x4000, 0x3);
	s.cr2 = 0xdead000;
	s.cr3 = 0x5000;
	s.cr8 = 5;
	s.gdt.base = 0x500;
	s.gdt.limit = 0x27;
	s.idt.base = 0x800;
	s.idt.limit = 0x3ff;
	REQUIRE_OK(ekvm_vcpu_set_sregs(t.vcpu, &s));
	struct kvm_sregs back;
	memset(&back, 0, sizeof(back));
	REQUIRE_OK(ekvm_vcpu_get_sregs(t.vcpu, &back));
	seg_check(&back.cs, &s.cs);
	seg_check(&back.ds, &s.ds);
	seg_check(&back.es, &s.es);
	seg_check(&back.fs, &s.fs);
	CHECK_EQ(back.cr2, 0xdead000);
	CHECK_EQ(back.cr3, 0x5000);
	CHECK_EQ(back.cr8, 5);
	CHECK_EQ(back.gdt.base, 0x500);
	CHECK_EQ(back.gdt.limit, 0x27);
	CHECK_EQ(back.idt.base, 0x800);
	CHECK_EQ(back.idt.limit, 0x3ff);
	CHECK_EQ(back.efer, s.efer);

	/* invalid combinations: -EINVAL, state unchanged */
	struct kvm_sregs bad = back;
	bad.efer |= 1u << 10; /* LMA without LME and paging */
	CHECK_ERR(ekvm_vcpu_set_sregs(t.vcpu, &bad), -EINVAL);
	bad = back;
	bad.cr4 |= 1ull << 31; /* reserved CR4 bit */
	CHECK_ERR(ekvm_vcpu_set_sregs(t.vcpu, &bad), -EINVAL);
	REQUIRE_OK(ekvm_vcpu_get_sregs(t.vcpu, &s));
	CHECK_EQ(s.efer, back.efer);
	CHECK_EQ(s.cr4, back.cr4);
	rm_close(&t);
}

KVM_TEST(vcpu_fpu_round_trip)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	struct kvm_fpu f;
	REQUIRE_OK(ekvm_vcpu_get_fpu(t.vcpu, &f));
	/* reset state: FCW 0x37f. (KVM_GET_FPU and KVM_SET_FPU leave MXCSR out on
	 * x86: it reads 0 here and is not loaded; XSAVE carries it, see
	 * vcpu_xsave_round_trip.) */
	CHECK_EQ(f.fcw, 0x37f);
	memset(&f, 0, sizeof(f));
	f.fcw = 0x27a;
	f.fsw = 0x3800;
	f.ftwx = 0x81;
	f.last_opcode = 0x123;
	f.last_ip = 0x11223344;
	f.last_dp = 0x55667788;
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 10; j++)
			f.fpr[i][j] = (uint8_t)(i * 16 + j + 1);
	for (int i = 0; i < 16; i++)
		for (int j = 0; j < 16; j++)
			f.xmm[i][j] = (uint8_t)(0xa0 + i * 3 + j);
	f.mxcsr = 0x7f80; /* ignored by KVM_SET_FPU */
	REQUIRE_OK(ekvm_vcpu_set_fpu(t.vcpu, &f));
	struct kvm_fpu back;
	memset(&back, 0, sizeof(back));
	REQUIRE_OK(ekvm_vcpu_get_fpu(t.vcpu, &back));
	CHECK_EQ(back.fcw, 0x27a);
	CHECK_EQ(back.fsw, 0x3800);
	CHECK_EQ(back.ftwx, 0x81);
	CHECK_EQ(back.last_opcode, 0x123);
	CHECK_EQ(back.last_ip, 0x11223344);
	CHECK_EQ(back.last_dp, 0x55667788);
	for (int i = 0; i < 8; i++)
		CHECK(memcmp(back.fpr[i], f.fpr[i], 10) == 0);
	CHECK(memcmp(back.xmm, f.xmm, sizeof(f.xmm)) == 0);
	rm_close(&t);
}

static struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static struct kvm_cpuid2 *cpuid_buf(uint32_t nent)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
	REQUIRE(c != NULL);
	c->nent = nent;
	return c;
}

KVM_TEST(vcpu_cpuid2_set_get)
{
	struct rm_vm t;
	rm_setup(&t, hlt_guest, hlt_guest_end);
	struct kvm_cpuid2 *sup = NULL;
	REQUIRE_OK(ekvm_sys_supported_cpuid(t.sys, &sup));
	struct kvm_cpuid_entry2 *l1 = cpuid_entry(sup, 1, 0);
	REQUIRE(l1 != NULL);
	/* a family/model/stepping of our own: KVM keeps what user space sets */
	l1->eax = 0x00a50f21;
	REQUIRE_OK(ekvm_vcpu_set_cpuid2(t.vcpu, sup));

	/* the binding reports the count on success (KVM itself does so only
	 * since Linux 6.4); KVM keeps the entries user space gave (some kernels
	 * drop redundant ones: never more than given) */
	struct kvm_cpuid2 *got = cpuid_buf(sup->nent + 8);
	REQUIRE_OK(ekvm_vcpu_get_cpuid2(t.vcpu, got));
	uint32_t n = got->nent;
	if (n != sup->nent)
		TEST_LOG("KVM keeps %u of the %u CPUID entries set", n, sup->nent);
	CHECK(n >= 2 && n <= sup->nent);
	for (uint32_t i = 0; i < n && i < sup->nent + 8; i++)
		CHECK(cpuid_entry(sup, got->entries[i].function, got->entries[i].index) != NULL);
	struct kvm_cpuid2 *exact = cpuid_buf(n);
	REQUIRE_OK(ekvm_vcpu_get_cpuid2(t.vcpu, exact));
	CHECK_EQ(exact->nent, n);
	CHECK(memcmp(exact->entries, got->entries, n * sizeof(got->entries[0])) == 0);
	struct kvm_cpuid_entry2 *g1 = cpuid_entry(got, 1, 0);
	struct kvm_cpuid_entry2 *g0 = cpuid_entry(got, 0, 0);
	REQUIRE(g1 && g0);
	CHECK_EQ(g1->eax, 0x00a50f21);
	struct kvm_cpuid_entry2 *s0 = cpuid_entry(sup, 0, 0);
	CHECK(memcmp(&g0->eax, &s0->eax, 16) == 0); /* max leaf + vendor */

	/* too small a buffer: -E2BIG and the needed count (the binding finds it:
	 * KVM reports nothing on -E2BIG) */
	struct kvm_cpuid2 *tiny = cpuid_buf(1);
	CHECK_ERR(ekvm_vcpu_get_cpuid2(t.vcpu, tiny), -E2BIG);
	CHECK_EQ(tiny->nent, n);

	/* more entries than KVM takes: -E2BIG */
	struct kvm_cpuid2 *huge = cpuid_buf(4096);
	CHECK_ERR(ekvm_vcpu_set_cpuid2(t.vcpu, huge), -E2BIG);

	/* once the vCPU has run, CPUID may only be set again unchanged */
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	CHECK_OK(ekvm_vcpu_set_cpuid2(t.vcpu, got));
	cpuid_entry(got, 1, 0)->eax = 0x00a50f22;
	CHECK_ERR(ekvm_vcpu_set_cpuid2(t.vcpu, got), -EINVAL);
	REQUIRE_OK(ekvm_vcpu_get_cpuid2(t.vcpu, exact));
	CHECK_EQ(cpuid_entry(exact, 1, 0)->eax, 0x00a50f21);
	free(huge);
	free(tiny);
	free(exact);
	free(got);
	free(sup);
	rm_close(&t);
}

/* WRMSR to the kvmclock MSR; OUT 0x1e if it went through; the #GP handler
 * (RM_CODE + 0x100) does OUT 0x1d. */
RM_GUEST(pvmsr_guest, "mov $0x4b564d01, %ecx\n"
		      "xor %eax, %eax\n"
		      "xor %edx, %edx\n"
		      "wrmsr\n"
		      "mov $0x1e, %al\n"
		      "out %al, $0x1e\n"
		      "hlt\n"
		      ".org 0x100\n"
		      "mov $0x0d, %al\n"
		      "out %al, $0x1d\n"
		      "hlt\n");

/* Runs pvmsr_guest with KVM_CAP_ENFORCE_PV_FEATURE_CPUID set to `enforce`
 * (guest CPUID not set: no KVM PV feature offered) and returns the port the
 * guest reported on. */
static unsigned pvmsr_port(bool enforce)
{
	struct rm_vm t;
	rm_setup(&t, pvmsr_guest, pvmsr_guest_end);
	uint16_t gp[2] = {RM_CODE + 0x100, 0};
	memcpy(t.mem + 4 * 13, gp, 4);
	struct kvm_enable_cap cap = {.cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID, .args = {enforce}};
	REQUIRE_OK(ekvm_vcpu_enable_cap(t.vcpu, &cap));
	struct ekvm_exit ex;
	rm_run(&t, &ex);
	REQUIRE_EQ(ex.kind, EKVM_EXIT_IO_OUT);
	unsigned port = ex.u.io.port;
	rm_close(&t);
	return port;
}

KVM_TEST(vcpu_enable_cap)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	/* KVM_CAP_ENFORCE_PV_FEATURE_CPUID: with it on, a PV MSR the guest's
	 * CPUID does not offer faults (#GP); off, the write goes through */
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_ENFORCE_PV_FEATURE_CPUID));
	CHECK_EQ(pvmsr_port(false), 0x1e);
	CHECK_EQ(pvmsr_port(true), 0x1d);
	struct kvm_enable_cap cap = {.cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID, .args = {1}};

	/* flags must be 0; unknown capabilities: -EINVAL */
	cap.flags = 1;
	CHECK_ERR(ekvm_vcpu_enable_cap(t.vcpu, &cap), -EINVAL);
	struct kvm_enable_cap bogus = {.cap = 99999};
	CHECK_ERR(ekvm_vcpu_enable_cap(t.vcpu, &bogus), -EINVAL);
	/* Hyper-V SynIC needs the in-kernel irqchip */
	struct kvm_enable_cap synic = {.cap = KVM_CAP_HYPERV_SYNIC};
	CHECK_ERR(ekvm_vcpu_enable_cap(t.vcpu, &synic), -EINVAL);
	rm_close(&t);

	vcpu_open(&t, true);
	if (rm_has_cap(t.sys, KVM_CAP_HYPERV_SYNIC))
		CHECK_OK(ekvm_vcpu_enable_cap(t.vcpu, &synic));
	else
		TEST_LOG("KVM_CAP_HYPERV_SYNIC absent: SynIC enable not checked");
	rm_close(&t);
}

static uint32_t apic_get(const struct kvm_lapic_state *s, unsigned off)
{
	uint32_t v;
	memcpy(&v, &s->regs[off], 4);
	return v;
}

static void apic_put(struct kvm_lapic_state *s, unsigned off, uint32_t v)
{
	memcpy(&s->regs[off], &v, 4);
}

KVM_TEST(vcpu_lapic_round_trip)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	struct kvm_lapic_state s;
	/* no in-kernel LAPIC: -EINVAL */
	CHECK_ERR(ekvm_vcpu_get_lapic(t.vcpu, &s), -EINVAL);
	CHECK_ERR(ekvm_vcpu_set_lapic(t.vcpu, &s), -EINVAL);
	rm_close(&t);

	vcpu_open(&t, true);
	REQUIRE_OK(ekvm_vcpu_get_lapic(t.vcpu, &s));
	/* version register: an integrated APIC (version 0x1x), 6 LVT entries or more */
	CHECK_EQ(apic_get(&s, 0x30) & 0xf0, 0x10);
	CHECK_EQ(apic_get(&s, 0x20) >> 24, 0); /* APIC ID of vCPU 0 */
	apic_put(&s, 0x80, 0x20);	       /* TPR */
	apic_put(&s, 0xf0, 0x1ff);	       /* SVR: enabled, spurious 0xff */
	apic_put(&s, 0x320, 0x10030);	       /* LVT timer: masked, vector 0x30 */
	apic_put(&s, 0x350, 0x700);	       /* LINT0: ExtINT */
	apic_put(&s, 0x360, 0x400);	       /* LINT1: NMI */
	apic_put(&s, 0x3e0, 0xb);	       /* divide by 1 */
	REQUIRE_OK(ekvm_vcpu_set_lapic(t.vcpu, &s));
	struct kvm_lapic_state back;
	memset(&back, 0, sizeof(back));
	REQUIRE_OK(ekvm_vcpu_get_lapic(t.vcpu, &back));
	CHECK_EQ(apic_get(&back, 0x80), 0x20);
	CHECK_EQ(apic_get(&back, 0xf0), 0x1ff);
	CHECK_EQ(apic_get(&back, 0x320), 0x10030);
	CHECK_EQ(apic_get(&back, 0x350), 0x700);
	CHECK_EQ(apic_get(&back, 0x360), 0x400);
	CHECK_EQ(apic_get(&back, 0x3e0), 0xb);
	/* the TPR is CR8 seen from the other side */
	struct kvm_sregs sregs;
	REQUIRE_OK(ekvm_vcpu_get_sregs(t.vcpu, &sregs));
	CHECK_EQ(sregs.cr8, 2);
	rm_close(&t);
}

KVM_TEST(vcpu_msrs)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[4];
	} m;

	/* set three, read them back */
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 3;
	m.e[0] = (struct kvm_msr_entry){.index = MSR_SYSENTER_CS, .data = 0x10};
	m.e[1] = (struct kvm_msr_entry){.index = MSR_SYSENTER_ESP, .data = 0x1111};
	m.e[2] = (struct kvm_msr_entry){.index = MSR_STAR, .data = 0x0023001000000000ull};
	CHECK_EQ(ekvm_vcpu_set_msrs(t.vcpu, &m.hdr), 3);
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 3;
	m.e[0].index = MSR_SYSENTER_CS;
	m.e[1].index = MSR_SYSENTER_ESP;
	m.e[2].index = MSR_STAR;
	CHECK_EQ(ekvm_vcpu_get_msrs(t.vcpu, &m.hdr), 3);
	CHECK_EQ(m.e[0].data, 0x10);
	CHECK_EQ(m.e[1].data, 0x1111);
	CHECK_EQ(m.e[2].data, 0x0023001000000000ull);

	/* an MSR KVM does not know in the middle: it stops there */
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 4;
	m.e[0].index = MSR_SYSENTER_CS;
	m.e[1].index = MSR_SYSENTER_ESP;
	m.e[2].index = MSR_BOGUS;
	m.e[3].index = MSR_STAR;
	CHECK_EQ(ekvm_vcpu_get_msrs(t.vcpu, &m.hdr), 2);
	CHECK_EQ(m.e[1].data, 0x1111);
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 3;
	m.e[0] = (struct kvm_msr_entry){.index = MSR_SYSENTER_CS, .data = 0x20};
	m.e[1] = (struct kvm_msr_entry){.index = MSR_BOGUS, .data = 1};
	m.e[2] = (struct kvm_msr_entry){.index = MSR_SYSENTER_ESP, .data = 0x2222};
	CHECK_EQ(ekvm_vcpu_set_msrs(t.vcpu, &m.hdr), 1);
	uint64_t v = 0;
	REQUIRE_OK(ekvm_vcpu_get_msr(t.vcpu, MSR_SYSENTER_CS, &v));
	CHECK_EQ(v, 0x20);
	REQUIRE_OK(ekvm_vcpu_get_msr(t.vcpu, MSR_SYSENTER_ESP, &v));
	CHECK_EQ(v, 0x1111); /* not written: after the failing entry */

	/* convenience calls */
	REQUIRE_OK(ekvm_vcpu_set_msr(t.vcpu, MSR_SYSENTER_EIP, 0x12345678));
	REQUIRE_OK(ekvm_vcpu_get_msr(t.vcpu, MSR_SYSENTER_EIP, &v));
	CHECK_EQ(v, 0x12345678);
	CHECK_ERR(ekvm_vcpu_get_msr(t.vcpu, MSR_BOGUS, &v), -EIO);
	CHECK_ERR(ekvm_vcpu_set_msr(t.vcpu, MSR_BOGUS, 1), -EIO);
	/* the TSC: a value set is where it counts on from */
	REQUIRE_OK(ekvm_vcpu_set_msr(t.vcpu, MSR_TSC, 1000000000000ull));
	REQUIRE_OK(ekvm_vcpu_get_msr(t.vcpu, MSR_TSC, &v));
	if (v < 1000000000000ull || v >= 1000000000000ull + 100000000000ull)
		TEST_FAIL("IA32_TSC set to 1e12 reads back %llu", (unsigned long long)v);
	/* zero entries: nothing processed */
	m.hdr.nmsrs = 0;
	CHECK_EQ(ekvm_vcpu_get_msrs(t.vcpu, &m.hdr), 0);
	rm_close(&t);
}

KVM_TEST(vcpu_mp_state)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_MP_STATE));
	struct kvm_mp_state mp = {.mp_state = 99};
	REQUIRE_OK(ekvm_vcpu_get_mp_state(t.vcpu, &mp));
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	/* without an in-kernel LAPIC only RUNNABLE can be set */
	mp.mp_state = KVM_MP_STATE_HALTED;
	CHECK_ERR(ekvm_vcpu_set_mp_state(t.vcpu, &mp), -EINVAL);
	mp.mp_state = KVM_MP_STATE_RUNNABLE;
	CHECK_OK(ekvm_vcpu_set_mp_state(t.vcpu, &mp));
	rm_close(&t);

	vcpu_open(&t, true);
	mp.mp_state = KVM_MP_STATE_HALTED;
	REQUIRE_OK(ekvm_vcpu_set_mp_state(t.vcpu, &mp));
	mp.mp_state = 99;
	REQUIRE_OK(ekvm_vcpu_get_mp_state(t.vcpu, &mp));
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_HALTED);
	mp.mp_state = KVM_MP_STATE_RUNNABLE;
	REQUIRE_OK(ekvm_vcpu_set_mp_state(t.vcpu, &mp));
	REQUIRE_OK(ekvm_vcpu_get_mp_state(t.vcpu, &mp));
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	rm_close(&t);
}

#define XSAVE_XMM(i)	(160 + 16 * (i))
#define XSAVE_XSTATE_BV 512

static uint64_t xsave_bv(const void *x)
{
	uint64_t v;
	memcpy(&v, (const uint8_t *)x + XSAVE_XSTATE_BV, 8);
	return v;
}

static void xsave_set_bv(void *x, uint64_t v)
{
	memcpy((uint8_t *)x + XSAVE_XSTATE_BV, &v, 8);
}

/* A vCPU whose CPUID is KVM's supported one (so XCR0 may hold SSE etc.). */
static void vcpu_open_cpuid(struct rm_vm *t)
{
	vcpu_open(t, false);
	struct kvm_cpuid2 *sup = NULL;
	REQUIRE_OK(ekvm_sys_supported_cpuid(t->sys, &sup));
	REQUIRE_OK(ekvm_vcpu_set_cpuid2(t->vcpu, sup));
	free(sup);
}

KVM_TEST(vcpu_xsave_round_trip)
{
	struct rm_vm t;
	vcpu_open_cpuid(&t);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_XSAVE));
	struct kvm_xsave *x = calloc(1, sizeof(*x));
	REQUIRE(x != NULL);
	REQUIRE_OK(ekvm_vcpu_get_xsave(t.vcpu, x));

	uint8_t *b = (uint8_t *)x->region;
	for (int i = 0; i < 16; i++)
		b[XSAVE_XMM(0) + i] = (uint8_t)(0x11 * (i + 1));
	uint32_t mxcsr = 0x7f80; /* MXCSR (byte 24): round toward zero */
	memcpy(b + 24, &mxcsr, 4);
	xsave_set_bv(x, xsave_bv(x) | 3); /* x87 and SSE state present */
	REQUIRE_OK(ekvm_vcpu_set_xsave(t.vcpu, x));
	struct kvm_xsave *y = calloc(1, sizeof(*y));
	REQUIRE(y != NULL);
	REQUIRE_OK(ekvm_vcpu_get_xsave(t.vcpu, y));
	CHECK(memcmp((uint8_t *)y->region + XSAVE_XMM(0), b + XSAVE_XMM(0), 16) == 0);
	CHECK(xsave_bv(y) & 2);
	memcpy(&mxcsr, (uint8_t *)y->region + 24, 4);
	CHECK_EQ(mxcsr, 0x7f80);
	/* the same register through KVM_GET_FPU */
	struct kvm_fpu f;
	REQUIRE_OK(ekvm_vcpu_get_fpu(t.vcpu, &f));
	CHECK(memcmp(f.xmm[0], b + XSAVE_XMM(0), 16) == 0);

	/* a state component KVM does not support: -EINVAL */
	xsave_set_bv(x, xsave_bv(x) | 1ull << 62);
	CHECK_ERR(ekvm_vcpu_set_xsave(t.vcpu, x), -EINVAL);

	/* XSAVE2: the size KVM asks for, at least the legacy 4 KiB */
	int size = ekvm_vcpu_xsave_size(t.vcpu);
	TEST_LOG("xsave size %d (KVM_CAP_XSAVE2 = %d)", size,
		 ekvm_vm_check_extension(t.vm, KVM_CAP_XSAVE2));
	REQUIRE(size >= 4096);
	uint8_t *big = calloc(1, (size_t)size);
	REQUIRE(big != NULL);
	REQUIRE_OK(ekvm_vcpu_get_xsave2(t.vcpu, big, (size_t)size));
	CHECK(memcmp(big, y->region, 512 + 64) == 0); /* legacy area + header */
	CHECK_ERR(ekvm_vcpu_get_xsave2(t.vcpu, big, 1024), -E2BIG);
	for (int i = 0; i < 16; i++)
		big[XSAVE_XMM(1) + i] = (uint8_t)(0xf0 - i);
	REQUIRE_OK(ekvm_vcpu_set_xsave2(t.vcpu, big, (size_t)size));
	REQUIRE_OK(ekvm_vcpu_get_fpu(t.vcpu, &f));
	CHECK(memcmp(f.xmm[1], big + XSAVE_XMM(1), 16) == 0);
	CHECK(memcmp(f.xmm[0], b + XSAVE_XMM(0), 16) == 0);
	free(big);
	free(y);
	free(x);
	rm_close(&t);
}

KVM_TEST(vcpu_xcrs_round_trip)
{
	struct rm_vm t;
	vcpu_open_cpuid(&t);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_XCRS));
	struct kvm_xcrs x;
	memset(&x, 0, sizeof(x));
	REQUIRE_OK(ekvm_vcpu_get_xcrs(t.vcpu, &x));
	CHECK_EQ(x.nr_xcrs, 1);
	CHECK_EQ(x.xcrs[0].xcr, 0);
	CHECK_EQ(x.xcrs[0].value, 1); /* XCR0 after reset: x87 only */

	x.xcrs[0].value = 3; /* x87 | SSE */
	REQUIRE_OK(ekvm_vcpu_set_xcrs(t.vcpu, &x));
	memset(&x, 0, sizeof(x));
	REQUIRE_OK(ekvm_vcpu_get_xcrs(t.vcpu, &x));
	CHECK_EQ(x.xcrs[0].value, 3);
	/* XCR0 without x87: -EINVAL */
	x.xcrs[0].value = 2;
	CHECK_ERR(ekvm_vcpu_set_xcrs(t.vcpu, &x), -EINVAL);
	x.xcrs[0].value = 3;
	x.flags = 1;
	CHECK_ERR(ekvm_vcpu_set_xcrs(t.vcpu, &x), -EINVAL);
	REQUIRE_OK(ekvm_vcpu_get_xcrs(t.vcpu, &x));
	CHECK_EQ(x.xcrs[0].value, 3);
	rm_close(&t);
}

KVM_TEST(vcpu_debugregs_round_trip)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_DEBUGREGS));
	struct kvm_debugregs d;
	REQUIRE_OK(ekvm_vcpu_get_debugregs(t.vcpu, &d));
	CHECK_EQ(d.dr6, 0xffff0ff0);
	CHECK_EQ(d.dr7, 0x400);
	memset(&d, 0, sizeof(d));
	for (int i = 0; i < 4; i++)
		d.db[i] = 0x1000u * (i + 1) + (unsigned)i;
	d.dr6 = 0xffff0ff1; /* B0 */
	d.dr7 = 0x00f10403; /* L0, G0; RW0 = write, LEN0 = 4 bytes */
	REQUIRE_OK(ekvm_vcpu_set_debugregs(t.vcpu, &d));
	struct kvm_debugregs back;
	memset(&back, 0, sizeof(back));
	REQUIRE_OK(ekvm_vcpu_get_debugregs(t.vcpu, &back));
	for (int i = 0; i < 4; i++)
		CHECK_EQ(back.db[i], d.db[i]);
	CHECK_EQ(back.dr6, 0xffff0ff1);
	CHECK_EQ(back.dr7, 0x00f10403);
	/* high bits of DR6/DR7 and unknown flags: -EINVAL */
	struct kvm_debugregs bad = d;
	bad.dr7 |= 1ull << 32;
	CHECK_ERR(ekvm_vcpu_set_debugregs(t.vcpu, &bad), -EINVAL);
	bad = d;
	bad.dr6 |= 1ull << 40;
	CHECK_ERR(ekvm_vcpu_set_debugregs(t.vcpu, &bad), -EINVAL);
	bad = d;
	bad.flags = 1;
	CHECK_ERR(ekvm_vcpu_set_debugregs(t.vcpu, &bad), -EINVAL);
	rm_close(&t);
}

KVM_TEST(vcpu_events_round_trip)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_VCPU_EVENTS));
	struct kvm_vcpu_events ev;
	REQUIRE_OK(ekvm_vcpu_get_vcpu_events(t.vcpu, &ev));
	CHECK_EQ(ev.exception.injected, 0);
	CHECK_EQ(ev.nmi.pending, 0);
	CHECK_EQ(ev.interrupt.injected, 0);

	ev.exception.injected = 1;
	ev.exception.nr = 13; /* #GP */
	ev.exception.has_error_code = 1;
	ev.exception.error_code = 0x10;
	ev.nmi.pending = 1;
	ev.nmi.masked = 1;
	ev.interrupt.shadow = KVM_X86_SHADOW_INT_MOV_SS;
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
	REQUIRE_OK(ekvm_vcpu_set_vcpu_events(t.vcpu, &ev));
	struct kvm_vcpu_events back;
	memset(&back, 0, sizeof(back));
	REQUIRE_OK(ekvm_vcpu_get_vcpu_events(t.vcpu, &back));
	CHECK_EQ(back.exception.injected, 1);
	CHECK_EQ(back.exception.nr, 13);
	CHECK_EQ(back.exception.has_error_code, 1);
	CHECK_EQ(back.exception.error_code, 0x10);
	CHECK_EQ(back.nmi.pending, 1);
	CHECK_EQ(back.nmi.masked, 1);
	CHECK(back.interrupt.shadow != 0);
	CHECK(back.flags & KVM_VCPUEVENT_VALID_SHADOW);

	/* NMI (vector 2) as an exception, unknown flags: -EINVAL */
	struct kvm_vcpu_events bad = ev;
	bad.exception.nr = 2;
	CHECK_ERR(ekvm_vcpu_set_vcpu_events(t.vcpu, &bad), -EINVAL);
	bad = ev;
	bad.flags |= 1u << 20;
	CHECK_ERR(ekvm_vcpu_set_vcpu_events(t.vcpu, &bad), -EINVAL);
	rm_close(&t);
}

KVM_TEST(vcpu_guest_debug_set)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	struct kvm_guest_debug dbg;
	memset(&dbg, 0, sizeof(dbg));
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
	dbg.arch.debugreg[0] = 0x1000;
	dbg.arch.debugreg[7] = 0x1; /* L0: execute breakpoint */
	CHECK_OK(ekvm_vcpu_set_guest_debug(t.vcpu, &dbg));
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
	CHECK_OK(ekvm_vcpu_set_guest_debug(t.vcpu, &dbg));
	/* KVM_GUESTDBG_INJECT_DB queues a #DB for the guest: visible in the events */
	struct kvm_vcpu_events ev;
	REQUIRE_OK(ekvm_vcpu_get_vcpu_events(t.vcpu, &ev));
	CHECK(!ev.exception.injected && !ev.exception.pending);
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_INJECT_DB;
	REQUIRE_OK(ekvm_vcpu_set_guest_debug(t.vcpu, &dbg));
	REQUIRE_OK(ekvm_vcpu_get_vcpu_events(t.vcpu, &ev));
	CHECK(ev.exception.injected || ev.exception.pending);
	CHECK_EQ(ev.exception.nr, 1);
	/* with an exception already queued, another injection is refused: -EBUSY */
	CHECK_ERR(ekvm_vcpu_set_guest_debug(t.vcpu, &dbg), -EBUSY);
	memset(&dbg, 0, sizeof(dbg));
	CHECK_OK(ekvm_vcpu_set_guest_debug(t.vcpu, &dbg));
	rm_close(&t);
}

KVM_TEST(vcpu_kvmclock_ctrl)
{
	struct rm_vm t;
	rm_setup(&t, hlt_guest, hlt_guest_end);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_KVMCLOCK_CTRL));
	/* the guest has not enabled kvmclock: -EINVAL (KVM API) */
	CHECK_ERR(ekvm_vcpu_kvmclock_ctrl(t.vcpu), -EINVAL);
	/* enable kvmclock at 0x5000 on the guest's behalf */
	REQUIRE_OK(ekvm_vcpu_set_msr(t.vcpu, MSR_KVM_SYSTEM_TIME_NEW, 0x5000 | 1));
	CHECK_OK(ekvm_vcpu_kvmclock_ctrl(t.vcpu));
	/* on the next entry KVM writes the pvclock with PVCLOCK_GUEST_STOPPED */
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	uint32_t version;
	memcpy(&version, t.mem + 0x5000, 4);
	CHECK(version != 0 && version % 2 == 0);
	CHECK(t.mem[0x5000 + 29] & 2); /* pvclock_vcpu_time_info.flags */
	rm_close(&t);
}

KVM_TEST(vcpu_tsc_khz)
{
	struct rm_vm t;
	vcpu_open(&t, false);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_GET_TSC_KHZ));
	int khz = ekvm_vcpu_get_tsc_khz(t.vcpu);
	int scaling = ekvm_sys_check_extension(t.sys, KVM_CAP_TSC_CONTROL);
	TEST_LOG("TSC %d kHz, KVM_CAP_TSC_CONTROL = %d", khz, scaling);
	REQUIRE(khz > 0);
	/* the frequency it already has is always accepted */
	CHECK_OK(ekvm_vcpu_set_tsc_khz(t.vcpu, (uint32_t)khz));
	CHECK_EQ(ekvm_vcpu_get_tsc_khz(t.vcpu), khz);
	if (scaling > 0) {
		CHECK_OK(ekvm_vcpu_set_tsc_khz(t.vcpu, (uint32_t)khz / 2));
		CHECK_EQ(ekvm_vcpu_get_tsc_khz(t.vcpu), khz / 2);
	} else {
		/* without TSC scaling KVM cannot run a guest TSC slower than the
		 * host's: -EINVAL. (KVM records the refused frequency anyway:
		 * KVM_GET_TSC_KHZ then reports it; set the real one back.) */
		CHECK_ERR(ekvm_vcpu_set_tsc_khz(t.vcpu, (uint32_t)khz / 2), -EINVAL);
		TEST_LOG("after the refused set KVM_GET_TSC_KHZ says %d",
			 ekvm_vcpu_get_tsc_khz(t.vcpu));
		CHECK_OK(ekvm_vcpu_set_tsc_khz(t.vcpu, (uint32_t)khz));
		CHECK_EQ(ekvm_vcpu_get_tsc_khz(t.vcpu), khz);
	}
	rm_close(&t);
}

KVM_TEST(vcpu_tpr_access_reporting)
{
	struct rm_vm t;
	vcpu_open(&t, true);
	CHECK_OK(ekvm_vcpu_tpr_access_reporting(t.vcpu, true));
	CHECK_OK(ekvm_vcpu_tpr_access_reporting(t.vcpu, false));
	rm_close(&t);
}
