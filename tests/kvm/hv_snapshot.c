/* tests/kvm/hv_snapshot.c - whole vCPU and VM state on KVM: a counting guest with a LAPIC timer saved, restored into a new VM, and continuing; refusals; dirty log; CPU identity. */
#include "../lib/kvm_util.h"
#include "../lib/test.h"
#include "../unit/hv_state_blob.h"

#include <ember/hv.h>
#include <ember/kvm_guest.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SNAP_SHARED	 0x400000ull  /* slot 1 (tests/guests/lm64_snap.c) */
#define SNAP_SHARED_SIZE 0x10000ull   /* 16 pages, dirty-logged */
#define SNAP_MEM	 (4ull << 20) /* slot 0 */

struct snapvm {
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
	struct ehv_vcpu *vcpu;
	struct ekvm_guest_mem *gmem; /* slot 0, through the binding (for the setup helpers) */
	uint8_t *mem;
	uint8_t *shared;     /* slot 1, through the vCPU layer */
	bool avx;	     /* the host offers AVX: the guest gets XCR0 = 7 */
	struct ehv_vcpu *ap; /* vCPU 1 with snap_open_smp: waits for INIT/SIPI */
};

static void snap_open(struct snapvm *s)
{
	memset(s, 0, sizeof(*s));
	int r = ehv_hypervisor_open(NULL, &s->hyp);
	if (r < 0)
		TEST_FAIL("ehv_hypervisor_open(KVM): %s", test_errno_name(r));
	REQUIRE_OK(ehv_vm_create(s->hyp, &s->vm));
	REQUIRE_OK(ehv_vm_setup_platform(s->vm, &(struct ehv_platform_config){EHV_PLATFORM_PIT}));
	REQUIRE_OK(ekvm_guest_mem_create(ehv_vm_backend_handle(s->vm), 0, 0, SNAP_MEM, &s->gmem));
	s->mem = ekvm_guest_mem_host(s->gmem);
	s->shared = aligned_alloc(4096, SNAP_SHARED_SIZE);
	REQUIRE(s->shared);
	memset(s->shared, 0, SNAP_SHARED_SIZE);
	REQUIRE_OK(ehv_vm_set_memory(s->vm, 1, SNAP_SHARED, SNAP_SHARED_SIZE, s->shared,
				     EHV_MEM_LOG_DIRTY));
	REQUIRE_OK(ehv_vcpu_create(s->vm, 0, &s->vcpu));
}

/* The same with vCPU 1, an AP that never gets its SIPI. */
static void snap_open_smp(struct snapvm *s)
{
	snap_open(s);
	REQUIRE_OK(ehv_vcpu_create(s->vm, 1, &s->ap));
}

static void snap_close(struct snapvm *s)
{
	ehv_vcpu_destroy(s->ap);
	ehv_vcpu_destroy(s->vcpu);
	ekvm_guest_mem_destroy(s->gmem);
	ehv_vm_destroy(s->vm);
	ehv_hypervisor_close(s->hyp);
	free(s->shared);
}

/* The host's CPUID (with APIC id 0) and the guest in long mode at its entry. */
static void snap_boot(struct snapvm *s)
{
	struct ehv_x86_cpuid_entry *c = calloc(EHV_CPUID_MAX_ENTRIES, sizeof(*c));
	REQUIRE(c);
	int n = ehv_hypervisor_supported_cpuid(s->hyp, c, EHV_CPUID_MAX_ENTRIES);
	REQUIRE(n > 0);
	bool avx = false, xcr0_avx = false;
	for (int i = 0; i < n; i++) {
		if (c[i].function == 1) {
			c[i].ebx &= 0x00ffffffu;
			avx = ((c[i].ecx >> 26) & 1) && ((c[i].ecx >> 28) & 1);
		}
		if (c[i].function == 0xd && c[i].index == 0)
			xcr0_avx = (c[i].eax & 0x7) == 0x7;
	}
	s->avx = avx && xcr0_avx;
	REQUIRE_OK(ehv_vcpu_set_cpuid(s->vcpu, c, (size_t)n));
	if (s->ap) {
		for (int i = 0; i < n; i++)
			if (c[i].function == 1)
				c[i].ebx |= 1u << 24;
		REQUIRE_OK(ehv_vcpu_set_cpuid(s->ap, c, (size_t)n));
	}
	free(c);
	struct kvmu_guest g = KVMU_GUEST(lm64_snap);
	REQUIRE_OK(ekvm_guest_mem_write(s->gmem, g.base, g.data, g.size));
	const struct ekvm_guest_tables t = {
	    .gpa = KVMU_GDT_GPA, .map_size = 4ull << 30, .page_size = EKVM_GUEST_PAGE_2M};
	REQUIRE_OK(ekvm_vcpu_setup_long64(ehv_vcpu_backend_handle(s->vcpu), s->gmem, &t, g.base,
					  KVMU_STACK_TOP(0)));
	/* AVX: CR4.OSXSAVE and XCR0 = x87 | SSE | AVX set by the host. The
	 * guest's own XSETBV would do on hardware, but under the sandbox's
	 * nested SVM (QEMU TCG) it is not intercepted: KVM never sees the new
	 * XCR0 and loads its old one (x87 only) on the next entry. */
	if (s->avx) {
		struct ehv_x86_sregs sr;
		REQUIRE_OK(ehv_vcpu_get_sregs(s->vcpu, &sr));
		sr.cr4 |= 1ull << 18;
		REQUIRE_OK(ehv_vcpu_set_sregs(s->vcpu, &sr));
		REQUIRE_OK(ehv_vcpu_set_xcr0(s->vcpu, 0x7));
	}
}

/* ucall handling: the message the guest's OUT to UCALL_PORT points at */
struct snap_io {
	struct snapvm *s;
	struct ucall_msg msg;
	bool got;
};

static int snap_io_fn(void *opaque, struct ehv_io_access *a)
{
	struct snap_io *io = opaque;
	if (a->addr != UCALL_PORT || !a->write || a->size != 4)
		return -EINVAL;
	if (ekvm_guest_mem_read(io->s->gmem, a->value, &io->msg, sizeof(io->msg)) < 0)
		return -EFAULT;
	io->got = true;
	return 0;
}

/* Runs until a ucall (returned in *msg, answered) or another exit (its
 * reason returned). */
static int snap_run(struct snapvm *s, struct ucall_msg *msg)
{
	struct ehv_exit e;
	for (;;) {
		int r = ehv_vcpu_run(s->vcpu, &e);
		if (r < 0)
			return r;
		if (r != EHV_EXIT_IO_WRITE)
			return r;
		struct snap_io io = {.s = s};
		int h = ehv_vcpu_handle_io(s->vcpu, snap_io_fn, &io);
		if (h < 0 || !io.got) {
			TEST_FAIL("unexpected I/O exit to port 0x%x", e.u.io_write.port);
			return -EIO;
		}
		*msg = io.msg;
		if (msg->cmd == UCALL_ASSERT_FAIL) {
			char text[96] = "";
			if (msg->text)
				ekvm_guest_mem_read(s->gmem, msg->text, text, sizeof(text) - 1);
			uint64_t xcr0 = 0;
			struct ehv_x86_sregs sr;
			memset(&sr, 0, sizeof(sr));
			ehv_vcpu_get_xcr0(s->vcpu, &xcr0);
			ehv_vcpu_get_sregs(s->vcpu, &sr);
			TEST_FAIL(
			    "guest assertion at line %u: %s (0x%llx, 0x%llx, 0x%llx); XCR0 0x%llx "
			    "CR4 0x%llx",
			    msg->line, text, (unsigned long long)msg->args[0],
			    (unsigned long long)msg->args[1], (unsigned long long)msg->args[2],
			    (unsigned long long)xcr0, (unsigned long long)sr.cr4);
		}
		return EHV_EXIT_IO_WRITE;
	}
}

/* After ms, kicks the vCPU (a pause) or, with stop set, sets that flag in
 * guest memory (the guest leaves its counting loop). */
struct kicker {
	struct ehv_vcpu *vcpu;
	unsigned ms;
	uint8_t *stop;
};

static void *kick_after(void *p)
{
	struct kicker *k = p;
	struct timespec ts = {.tv_sec = k->ms / 1000, .tv_nsec = (long)(k->ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
	if (k->stop)
		__atomic_store_n((uint64_t *)k->stop, 1, __ATOMIC_SEQ_CST);
	else
		ehv_vcpu_kick(k->vcpu);
	return NULL;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static uint64_t read_tsc(struct ehv_vcpu *v)
{
	struct ehv_msr m = {.index = 0x10};
	REQUIRE_EQ(ehv_vcpu_get_msrs(v, &m, 1), 1);
	return m.value;
}

/* What the first VM saved. */
struct saved {
	void *vcpu, *vm;
	size_t vcpu_len, vm_len;
	uint64_t r15, counter, tsc_mem, tsc_msr, ticks;
	bool avx;
	struct ehv_state_blob ioapic;
	struct ehv_clock clock;
};

/* Boots the counting guest, lets it count with the timer armed, kicks it
 * out (pause), saves everything. The VM stays (paused) in *s. */
static void run_and_save_with(struct snapvm *s, struct saved *sv, bool smp)
{
	memset(sv, 0, sizeof(*sv));
	if (smp)
		snap_open_smp(s);
	else
		snap_open(s);
	snap_boot(s);
	struct ucall_msg msg;
	REQUIRE_EQ(snap_run(s, &msg), EHV_EXIT_IO_WRITE);
	REQUIRE_EQ(msg.cmd, UCALL_SYNC);
	sv->avx = msg.args[0] != 0;
	CHECK_EQ(sv->avx, s->avx);
	if (!sv->avx)
		TEST_LOG("the host offers no AVX: only XMM is checked");
	uint64_t xcr0;
	REQUIRE_OK(ehv_vcpu_get_xcr0(s->vcpu, &xcr0));
	CHECK_EQ(xcr0, sv->avx ? 0x7ull : 0x1ull);
	/* the SYNC's OUT is completed by the next run; count for a while */
	pthread_t t;
	struct kicker k = {s->vcpu, 300, NULL};
	REQUIRE(pthread_create(&t, NULL, kick_after, &k) == 0);
	int r = snap_run(s, &msg);
	pthread_join(t, NULL);
	REQUIRE_EQ(r, EHV_EXIT_CANCELED);
	CHECK(!ehv_vcpu_has_pending_completion(s->vcpu));
	REQUIRE_OK(ehv_vcpu_on_suspend(s->vcpu)); /* as the runner does on a pause */

	struct ehv_x86_regs regs;
	REQUIRE_OK(ehv_vcpu_get_regs(s->vcpu, &regs));
	sv->r15 = regs.r15;
	sv->counter = rd64(s->shared);
	sv->tsc_mem = rd64(s->shared + 16);
	sv->ticks = rd64(s->shared + 24);
	sv->tsc_msr = read_tsc(s->vcpu);
	TEST_LOG("saved at r15 %llu, counter %llu, %llu timer ticks", (unsigned long long)sv->r15,
		 (unsigned long long)sv->counter, (unsigned long long)sv->ticks);
	CHECK(sv->r15 > 1000);
	/* the loop stores R15 right after incrementing it */
	CHECK(sv->counter == sv->r15 || sv->counter + 1 == sv->r15);
	CHECK(sv->ticks > 0); /* the timer fired before the save */

	uint64_t t0 = kvmu_now_ns();
	REQUIRE_OK(ehv_vcpu_save_state(s->vcpu, &sv->vcpu, &sv->vcpu_len));
	uint64_t t1 = kvmu_now_ns();
	REQUIRE_OK(ehv_vm_save_state(s->vm, &sv->vm, &sv->vm_len));
	TEST_LOG("vCPU state: %zu bytes in %llu us (VM: %zu bytes in %llu us); %s", sv->vcpu_len,
		 (unsigned long long)(t1 - t0) / 1000, sv->vm_len,
		 (unsigned long long)(kvmu_now_ns() - t1) / 1000, ehv_vcpu_state_detail(s->vcpu));
	REQUIRE_OK(ehv_vm_get_irqchip(s->vm, EHV_IRQCHIP_IOAPIC, &sv->ioapic));
	/* the clock as the blob holds it (a later reading would be ahead) */
	struct tblob vb;
	tb_parse(&vb, sv->vm, sv->vm_len);
	const struct tsec *ck = tb_find(&vb, "CLCK");
	REQUIRE(ck && ck->version == 2 && ck->len == 24);
	sv->clock.ns = rd64(ck->data);
	sv->clock.flags = rd32(ck->data + 8);
	tb_free(&vb);
}

static void run_and_save(struct snapvm *s, struct saved *sv)
{
	run_and_save_with(s, sv, false);
}

/* A new VM with the same memory contents (slot 0 and the shared slot). */
static void clone_memory(struct snapvm *dst, const struct snapvm *src)
{
	snap_open(dst);
	memcpy(dst->mem, src->mem, SNAP_MEM);
	memcpy(dst->shared, src->shared, SNAP_SHARED_SIZE);
}

static const struct tsec *blob_sec(struct tblob *b, const char *tag)
{
	struct tsec *s = tb_find(b, tag);
	if (!s)
		TEST_FAIL("the blob has no %s section", tag);
	return s;
}

TEST(hv_snap_counting_guest_continues_in_a_new_vm)
{
	struct snapvm a, b;
	struct saved sv;
	run_and_save(&a, &sv);
	clone_memory(&b, &a);

	/* the new vCPU differs before the restore */
	struct ehv_x86_regs regs;
	REQUIRE_OK(ehv_vcpu_get_regs(b.vcpu, &regs));
	CHECK(regs.r15 != sv.r15);
	uint64_t t0 = kvmu_now_ns();
	int r = ehv_vcpu_restore_state(b.vcpu, sv.vcpu, sv.vcpu_len);
	if (r < 0)
		TEST_FAIL("restore: %s: %s", test_errno_name(r), ehv_vcpu_state_detail(b.vcpu));
	uint64_t t1 = kvmu_now_ns();
	r = ehv_vm_restore_state(b.vm, sv.vm, sv.vm_len);
	if (r < 0)
		TEST_FAIL("VM restore: %s: %s", test_errno_name(r), ehv_vm_state_detail(b.vm));
	TEST_LOG("restore took %llu us (vCPU) + %llu us (VM), sandbox time",
		 (unsigned long long)(t1 - t0) / 1000,
		 (unsigned long long)(kvmu_now_ns() - t1) / 1000);

	/* the registers, the TSC, the IOAPIC and the clock are back */
	REQUIRE_OK(ehv_vcpu_get_regs(b.vcpu, &regs));
	CHECK_EQ(regs.r15, sv.r15);
	uint64_t tsc = read_tsc(b.vcpu);
	CHECK(tsc >= sv.tsc_msr); /* the TSC does not go back */
	CHECK(tsc >= sv.tsc_mem);
	struct ehv_state_blob io;
	REQUIRE_OK(ehv_vm_get_irqchip(b.vm, EHV_IRQCHIP_IOAPIC, &io));
	CHECK(io.size == sv.ioapic.size && !memcmp(io.data, sv.ioapic.data, io.size));
	struct ehv_clock clk;
	REQUIRE_OK(ehv_vm_get_clock(b.vm, &clk));
	CHECK(clk.ns >= sv.clock.ns);
	TEST_LOG("clock: saved %llu ns, restored %llu ns (stable: %d)",
		 (unsigned long long)sv.clock.ns, (unsigned long long)clk.ns,
		 (sv.clock.flags & EHV_CLOCK_STABLE) != 0);

	/* saving the restored vCPU gives the same state, but for what runs
	 * with time (the TSC, the LAPIC's current count) */
	void *again;
	size_t again_len;
	REQUIRE_OK(ehv_vcpu_save_state(b.vcpu, &again, &again_len));
	struct tblob x, y;
	tb_parse(&x, sv.vcpu, sv.vcpu_len);
	tb_parse(&y, again, again_len);
	CHECK_EQ(x.n, y.n);
	static const char *const same[] = {"VCID", "CPID", "REGS", "SREG", "XCRS",
					   "MPST", "EVNT", "DBGR", "XSAV"};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		struct tsec *p = tb_find(&x, same[i]), *q = tb_find(&y, same[i]);
		if (!p && !q)
			continue;
		if (!p || !q || p->len != q->len || memcmp(p->data, q->data, p->len))
			TEST_FAIL("section %s differs after the restore", same[i]);
	}
	const struct tsec *ma = blob_sec(&x, "MSRS"), *mb = blob_sec(&y, "MSRS");
	CHECK_EQ(ma->len, mb->len);
	unsigned nmsr = rd32(ma->data), differ = 0;
	for (unsigned i = 0; i < nmsr && ma->len == mb->len; i++) {
		uint32_t idx = rd32(ma->data + 4 + 16 * i);
		uint64_t va = rd64(ma->data + 4 + 16 * i + 8), vb = rd64(mb->data + 4 + 16 * i + 8);
		CHECK_EQ(idx, rd32(mb->data + 4 + 16 * i));
		/* what runs with time: the TSC, Hyper-V's VP runtime and reference
		 * counter */
		if (idx == 0x10 || idx == 0x40000010 || idx == 0x40000020 || va == vb)
			continue;
		differ++;
		TEST_FAIL("MSR 0x%x: saved 0x%llx, restored 0x%llx", idx, (unsigned long long)va,
			  (unsigned long long)vb);
	}
	TEST_LOG("%u MSRs saved, %u differ after the restore (the TSC excluded)", nmsr, differ);
	CHECK(nmsr > 10);
	tb_free(&x);
	tb_free(&y);
	free(again);

	/* it runs on, counting for 300 ms more; then it stops its loop,
	 * checks and reports */
	pthread_t t;
	struct kicker k = {b.vcpu, 300, b.shared + 8};
	REQUIRE(pthread_create(&t, NULL, kick_after, &k) == 0);
	struct ucall_msg msg;
	r = snap_run(&b, &msg);
	pthread_join(t, NULL);
	REQUIRE_EQ(r, EHV_EXIT_IO_WRITE);
	REQUIRE_EQ(msg.cmd, UCALL_SYNC);
	uint64_t r15 = msg.args[0], ticks = msg.args[1], gtsc = msg.args[2], vec = msg.args[3];
	TEST_LOG("after the restore: r15 %llu, %llu more ticks, vectors 0x%llx",
		 (unsigned long long)r15, (unsigned long long)ticks, (unsigned long long)vec);
	/* it continued from the saved count (and counted on: 300 ms more at
	 * about the rate it counted before the save, not from 0 or anywhere
	 * else; the guest checked that memory and R15 agree) */
	CHECK(r15 > sv.r15 + 1000);
	CHECK(r15 - sv.r15 < sv.r15 * 100);
	CHECK_EQ(rd64(b.shared), r15);
	CHECK(ticks >= 3);	   /* the LAPIC timer still fires */
	CHECK(gtsc >= sv.tsc_mem); /* the guest's TSC did not go back */
	CHECK(vec & 1);		   /* XMM7 survived */
	if (sv.avx)
		CHECK(vec & 2); /* YMM8 (AVX) survived */

	snap_close(&b);
	snap_close(&a);
	free(sv.vcpu);
	free(sv.vm);
}

/* Restore of blob into a fresh vCPU of a fresh VM must fail with want (its
 * detail naming words), without changing the vCPU's registers. */
static void kvm_expect_refused(const void *blob, size_t len, int want, const char *words)
{
	struct snapvm c;
	snap_open(&c);
	struct ehv_x86_regs before, after;
	REQUIRE_OK(ehv_vcpu_get_regs(c.vcpu, &before));
	int r = ehv_vcpu_restore_state(c.vcpu, blob, len);
	const char *d = ehv_vcpu_state_detail(c.vcpu);
	if (r != want)
		TEST_FAIL("restore gave %s (%s), expected %s", test_errno_name(r), d,
			  test_errno_name(want));
	else if (words && !strstr(d, words))
		TEST_FAIL("detail \"%s\" does not say \"%s\"", d, words);
	REQUIRE_OK(ehv_vcpu_get_regs(c.vcpu, &after));
	CHECK(!memcmp(&before, &after, sizeof(before)));
	snap_close(&c);
}

TEST(hv_snap_refuses_what_the_host_lacks_and_malformed_blobs)
{
	struct snapvm a;
	struct saved sv;
	run_and_save(&a, &sv);
	struct tblob b;
	uint8_t *p;
	size_t n;

	/* an MSR the host does not list */
	tb_parse(&b, sv.vcpu, sv.vcpu_len);
	struct tsec *m = tb_find(&b, "MSRS");
	REQUIRE(m && rd32(m->data) > 2);
	wr32(m->data + 4 + 16 * 1, 0x4b564dffu);
	p = tb_build(&b, &n);
	kvm_expect_refused(p, n, -ENOTSUP, "MSR 0x4b564dff");
	free(p);
	tb_free(&b);

	/* an XSAVE area larger than the host's */
	tb_parse(&b, sv.vcpu, sv.vcpu_len);
	struct tsec *x = tb_find(&b, "XSAV");
	REQUIRE(x);
	x->data = realloc(x->data, x->len + 4096);
	memset(x->data + x->len, 0, 4096);
	x->len += 4096;
	p = tb_build(&b, &n);
	kvm_expect_refused(p, n, -ENOTSUP, "XSAVE area");
	free(p);
	tb_free(&b);

	/* XSAVE components (XSTATE_BV) outside the host's XCR0 mask */
	tb_parse(&b, sv.vcpu, sv.vcpu_len);
	x = tb_find(&b, "XSAV");
	x->data[512 + 7] |= 0x40; /* bit 62 */
	p = tb_build(&b, &n);
	kvm_expect_refused(p, n, -ENOTSUP, "XSAVE components");
	free(p);
	tb_free(&b);

	/* a CPUID feature bit the host does not offer: the first clear bit of
	 * the host's leaf 7 EBX */
	struct ehv_x86_cpuid_entry *sup = calloc(EHV_CPUID_MAX_ENTRIES, sizeof(*sup));
	REQUIRE(sup);
	int ns = ehv_hypervisor_supported_cpuid(a.hyp, sup, EHV_CPUID_MAX_ENTRIES);
	uint32_t l7 = 0;
	for (int i = 0; i < ns; i++)
		if (sup[i].function == 7 && sup[i].index == 0)
			l7 = sup[i].ebx;
	free(sup);
	uint32_t bit = 0;
	while (bit < 32 && (l7 >> bit) & 1)
		bit++;
	REQUIRE(bit < 32);
	tb_parse(&b, sv.vcpu, sv.vcpu_len);
	struct tsec *c = tb_find(&b, "CPID");
	bool patched = false;
	for (uint32_t off = 0; off + sizeof(struct kvm_cpuid_entry2) <= c->len;
	     off += sizeof(struct kvm_cpuid_entry2)) {
		struct kvm_cpuid_entry2 e;
		memcpy(&e, c->data + off, sizeof(e));
		if (e.function == 7 && e.index == 0) {
			e.ebx |= 1u << bit;
			memcpy(c->data + off, &e, sizeof(e));
			patched = true;
		}
	}
	REQUIRE(patched);
	p = tb_build(&b, &n);
	kvm_expect_refused(p, n, -ENOTSUP, "CPUID 0x7.0 ebx");
	free(p);
	tb_free(&b);

	/* a TSC saved at another rate: fine within KVM's 250 ppm, else it
	 * needs TSC scaling */
	{
		struct ehv_hypervisor *h;
		REQUIRE_OK(ehv_hypervisor_open(NULL, &h));
		int scaling = ehv_hypervisor_check_raw_capability(h, KVM_CAP_TSC_CONTROL);
		ehv_hypervisor_close(h);
		tb_parse(&b, sv.vcpu, sv.vcpu_len);
		struct tsec *k = tb_find(&b, "TSCK");
		REQUIRE(k);
		uint32_t khz = rd32(k->data);
		wr32(k->data, khz * 2);
		p = tb_build(&b, &n);
		if (scaling <= 0) {
			kvm_expect_refused(p, n, -ENOTSUP, "cannot scale");
		} else {
			struct snapvm t;
			snap_open(&t);
			int r = ehv_vcpu_restore_state(t.vcpu, p, n);
			TEST_LOG("with TSC scaling: restore at %u kHz: %d (%s)", khz * 2, r,
				 ehv_vcpu_state_detail(t.vcpu));
			CHECK_EQ(ekvm_vcpu_get_tsc_khz(ehv_vcpu_backend_handle(t.vcpu)),
				 (int)(khz * 2));
			snap_close(&t);
		}
		free(p);
		wr32(k->data, khz + khz / 10000); /* 100 ppm */
		p = tb_build(&b, &n);
		struct snapvm t;
		snap_open(&t);
		int r = ehv_vcpu_restore_state(t.vcpu, p, n);
		if (r < 0)
			TEST_FAIL("a TSC 100 ppm off: %s: %s", test_errno_name(r),
				  ehv_vcpu_state_detail(t.vcpu));
		snap_close(&t);
		free(p);
		tb_free(&b);
		TEST_LOG("TSC %u kHz; scaling %d", khz, scaling);
	}

	/* malformed: truncated, corrupted, a kernel structure of another size,
	 * a missing section, a LAPIC for a VM without a platform */
	kvm_expect_refused(sv.vcpu, sv.vcpu_len - 8, -EINVAL, "truncated");
	p = malloc(sv.vcpu_len);
	memcpy(p, sv.vcpu, sv.vcpu_len);
	p[sv.vcpu_len / 2] ^= 0x10;
	kvm_expect_refused(p, sv.vcpu_len, -EINVAL, "CRC");
	free(p);
	tb_parse(&b, sv.vcpu, sv.vcpu_len);
	tb_find(&b, "SREG")->len -= 8;
	p = tb_build(&b, &n);
	kvm_expect_refused(p, n, -EINVAL, "SREG");
	free(p);
	tb_free(&b);
	tb_parse(&b, sv.vcpu, sv.vcpu_len);
	tb_drop(&b, "EVNT");
	p = tb_build(&b, &n);
	kvm_expect_refused(p, n, -EINVAL, "EVNT");
	free(p);
	tb_free(&b);
	/* the mock's blob on KVM */
	{
		struct ehv_hypervisor *mh;
		struct ehv_vm *mvm;
		struct ehv_vcpu *mv;
		struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
		REQUIRE_OK(ehv_hypervisor_open(&o, &mh));
		REQUIRE_OK(ehv_vm_create(mh, &mvm));
		REQUIRE_OK(ehv_vcpu_create(mvm, 0, &mv));
		void *mb;
		size_t ml;
		REQUIRE_OK(ehv_vcpu_save_state(mv, &mb, &ml));
		kvm_expect_refused(mb, ml, -EINVAL, "mock");
		free(mb);
		ehv_vcpu_destroy(mv);
		ehv_vm_destroy(mvm);
		ehv_hypervisor_close(mh);
	}
	/* the VM blob into a VM without the PIT */
	{
		struct ehv_hypervisor *h;
		struct ehv_vm *vm;
		REQUIRE_OK(ehv_hypervisor_open(NULL, &h));
		REQUIRE_OK(ehv_vm_create(h, &vm));
		REQUIRE_OK(ehv_vm_setup_platform(vm, NULL));
		CHECK_ERR(ehv_vm_restore_state(vm, sv.vm, sv.vm_len), -EINVAL);
		CHECK(strstr(ehv_vm_state_detail(vm), "PIT2") != NULL);
		ehv_vm_destroy(vm);
		ehv_hypervisor_close(h);
	}
	snap_close(&a);
	free(sv.vcpu);
	free(sv.vm);
}

TEST(hv_snap_dirty_log_sees_the_guest_writes)
{
	struct snapvm a;
	struct saved sv;
	run_and_save(&a, &sv); /* the guest wrote its shared page (page 0 of slot 1) */
	uint64_t bm[1];
	CHECK_ERR(ehv_vm_get_dirty_log(a.vm, 0, bm, sizeof(bm)), -ENOENT); /* not via the layer */
	CHECK_ERR(ehv_vm_get_dirty_log(a.vm, 1, bm, 0), -EINVAL);
	CHECK_OK(ehv_vm_get_dirty_log(a.vm, 1, bm, sizeof(bm)));
	CHECK_EQ(bm[0], 1ull); /* page 0 only: the counter, the TSC, the ticks */
	/* nothing ran since: clear */
	CHECK_OK(ehv_vm_get_dirty_log(a.vm, 1, bm, sizeof(bm)));
	CHECK_EQ(bm[0], 0ull);
	/* host writes are not logged */
	a.shared[5 * 4096] = 1;
	CHECK_OK(ehv_vm_get_dirty_log(a.vm, 1, bm, sizeof(bm)));
	CHECK_EQ(bm[0], 0ull);
	/* logging turned off and on again on the live slot (a flags-only
	 * update, as a VMM does before an incremental snapshot) */
	REQUIRE_OK(ehv_vm_set_memory(a.vm, 1, SNAP_SHARED, SNAP_SHARED_SIZE, a.shared, 0));
	CHECK_ERR(ehv_vm_get_dirty_log(a.vm, 1, bm, sizeof(bm)), -EINVAL);
	REQUIRE_OK(
	    ehv_vm_set_memory(a.vm, 1, SNAP_SHARED, SNAP_SHARED_SIZE, a.shared, EHV_MEM_LOG_DIRTY));
	CHECK_OK(ehv_vm_get_dirty_log(a.vm, 1, bm, sizeof(bm)));
	CHECK_EQ(bm[0], 0ull);
	/* the guest runs again (stopping its loop and reporting): page 0 again */
	uint64_t one = 1;
	memcpy(a.shared + 8, &one, 8);
	struct ucall_msg msg;
	REQUIRE_EQ(snap_run(&a, &msg), EHV_EXIT_IO_WRITE);
	CHECK_OK(ehv_vm_get_dirty_log(a.vm, 1, bm, sizeof(bm)));
	CHECK_EQ(bm[0], 1ull);
	snap_close(&a);
	free(sv.vcpu);
	free(sv.vm);
}

TEST(hv_snap_two_vcpus_keep_their_mp_states_and_one_tsc)
{
	struct snapvm a, b;
	struct saved sv;
	run_and_save_with(&a, &sv, true);
	enum ehv_mp_state mp;
	REQUIRE_OK(ehv_vcpu_get_mp_state(a.ap, &mp));
	CHECK_EQ(mp, EHV_MP_UNINITIALIZED);
	void *ap_blob;
	size_t ap_len;
	REQUIRE_OK(ehv_vcpu_save_state(a.ap, &ap_blob, &ap_len));
	/* a vCPU's blob does not fit another vCPU */
	{
		struct snapvm c;
		snap_open_smp(&c);
		CHECK_ERR(ehv_vcpu_restore_state(c.vcpu, ap_blob, ap_len), -EINVAL);
		CHECK(strstr(ehv_vcpu_state_detail(c.vcpu), "vCPU 1") != NULL);
		snap_close(&c);
	}
	snap_open_smp(&b);
	memcpy(b.mem, a.mem, SNAP_MEM);
	memcpy(b.shared, a.shared, SNAP_SHARED_SIZE);
	/* the AP first: the order must not matter */
	int r = ehv_vcpu_restore_state(b.ap, ap_blob, ap_len);
	if (r < 0)
		TEST_FAIL("AP restore: %s: %s", test_errno_name(r), ehv_vcpu_state_detail(b.ap));
	r = ehv_vcpu_restore_state(b.vcpu, sv.vcpu, sv.vcpu_len);
	if (r < 0)
		TEST_FAIL("BSP restore: %s: %s", test_errno_name(r), ehv_vcpu_state_detail(b.vcpu));
	REQUIRE_OK(ehv_vm_restore_state(b.vm, sv.vm, sv.vm_len));
	REQUIRE_OK(ehv_vcpu_get_mp_state(b.ap, &mp));
	CHECK_EQ(mp, EHV_MP_UNINITIALIZED);
	REQUIRE_OK(ehv_vcpu_get_mp_state(b.vcpu, &mp));
	CHECK_EQ(mp, EHV_MP_RUNNABLE);
	/* both TSCs continue from the saved values, and agree with each other
	 * (KVM kept them in one synchronisation generation) */
	uint64_t t0 = read_tsc(b.vcpu), t1 = read_tsc(b.ap), t0b = read_tsc(b.vcpu);
	CHECK(t0 >= sv.tsc_msr);
	TEST_LOG("TSCs after the restore: %llu, %llu, %llu", (unsigned long long)t0,
		 (unsigned long long)t1, (unsigned long long)t0b);
	CHECK(t1 >= t0 && t1 <= t0b);
	struct ehv_x86_regs regs;
	REQUIRE_OK(ehv_vcpu_get_regs(b.vcpu, &regs));
	CHECK_EQ(regs.r15, sv.r15);
	free(ap_blob);
	snap_close(&b);
	snap_close(&a);
	free(sv.vcpu);
	free(sv.vm);
}

/* The guest's clock minus its TSC, in ns: what Linux's clocksource
 * watchdog compares (kvm-clock against the TSC). */
static int64_t clock_minus_tsc(struct ehv_vm *vm, struct ehv_vcpu *v, int khz)
{
	/* the clock between two TSC readings, the closest of 8 tries: a
	 * preemption between the reads (a loaded host) is not a skew */
	int64_t best = 0;
	uint64_t gap = UINT64_MAX;
	for (int i = 0; i < 8; i++) {
		uint64_t t1 = read_tsc(v);
		struct ehv_clock c;
		REQUIRE_OK(ehv_vm_get_clock(vm, &c));
		uint64_t t2 = read_tsc(v);
		if (t2 - t1 < gap) {
			gap = t2 - t1;
			best = (int64_t)c.ns -
			       (int64_t)((t1 + (t2 - t1) / 2) * 1000000 / (uint64_t)khz);
		}
	}
	return best;
}

/* The VM's clock and the vCPUs' TSCs come back together, however long the
 * save and the restore take between the VM's blob and each vCPU's: after
 * the restore the clock has moved as far as each TSC since the save. A
 * guest's clocksource watchdog marks the TSC unstable beyond a skew of
 * 0.5 ms (Linux 6.1's uncertainty margins of kvm-clock and the TSC), and a
 * snapshot saves the VM first and restores it last. The sleeps stand for a
 * slow save and restore: without the reading times in the blobs the skew
 * would be about 350 ms. */
TEST(hv_snap_clock_and_tscs_agree_after_a_slow_save_and_restore)
{
	struct snapvm a, b;
	snap_open_smp(&a);
	snap_boot(&a);
	int khz = ekvm_vcpu_get_tsc_khz(ehv_vcpu_backend_handle(a.vcpu));
	REQUIRE(khz > 0);
	int64_t before = clock_minus_tsc(a.vm, a.vcpu, khz);
	struct ehv_clock c0;
	REQUIRE_OK(ehv_vm_get_clock(a.vm, &c0));
	void *vmb, *bsp, *ap;
	size_t vml, bspl, apl;
	REQUIRE_OK(ehv_vm_save_state(a.vm, &vmb, &vml));
	usleep(100000);
	REQUIRE_OK(ehv_vcpu_save_state(a.vcpu, &bsp, &bspl));
	usleep(50000);
	REQUIRE_OK(ehv_vcpu_save_state(a.ap, &ap, &apl));

	snap_open_smp(&b);
	memcpy(b.mem, a.mem, SNAP_MEM);
	int r = ehv_vcpu_restore_state(b.ap, ap, apl);
	if (r < 0)
		TEST_FAIL("AP restore: %s: %s", test_errno_name(r), ehv_vcpu_state_detail(b.ap));
	usleep(50000);
	r = ehv_vcpu_restore_state(b.vcpu, bsp, bspl);
	if (r < 0)
		TEST_FAIL("BSP restore: %s: %s", test_errno_name(r), ehv_vcpu_state_detail(b.vcpu));
	usleep(150000);
	REQUIRE_OK(ehv_vm_restore_state(b.vm, vmb, vml));
	int64_t after = clock_minus_tsc(b.vm, b.vcpu, khz);
	int64_t after_ap = clock_minus_tsc(b.vm, b.ap, khz);
	/* without KVM's master clock restore moves the clock 1 ms ahead (hv.h) */
	int64_t margin = 500000 + ((c0.flags & EHV_CLOCK_STABLE) ? 0 : 1000000);
	TEST_LOG("clock - TSC: %lld ns saved, %lld (BSP) and %lld (AP) restored: skew %lld, "
		 "%lld ns (bound %lld; clock stable: %d)",
		 (long long)before, (long long)after, (long long)after_ap,
		 (long long)(after - before), (long long)(after_ap - before), (long long)margin,
		 (c0.flags & EHV_CLOCK_STABLE) != 0);
	CHECK(llabs(after - before) < margin);
	CHECK(llabs(after_ap - before) < margin);
	free(vmb);
	free(bsp);
	free(ap);
	snap_close(&b);
	snap_close(&a);
}

TEST(hv_snap_cpu_identity_of_this_host)
{
	struct ehv_hypervisor *h;
	REQUIRE_OK(ehv_hypervisor_open(NULL, &h));
	char a[EHV_CPU_IDENTITY_MAX], b[EHV_CPU_IDENTITY_MAX];
	int n = ehv_hypervisor_cpu_identity(h, a, sizeof(a));
	REQUIRE(n > 0);
	TEST_LOG("%s", a);
	CHECK(!strncmp(a, "AuthenticAMD ", 13) || !strncmp(a, "GenuineIntel ", 13));
	CHECK(strstr(a, " family ") && strstr(a, " cpuid "));
	REQUIRE_EQ(ehv_hypervisor_cpu_identity(h, b, sizeof(b)), n);
	CHECK_STR(a, b);
	/* the same on every CPU of this host: KVM fills some leaves from the
	 * CPU the call runs on (the APIC and x2APIC ids), and a snapshot must
	 * restore whichever CPU either process ran on */
	cpu_set_t all, one;
	REQUIRE(sched_getaffinity(0, sizeof(all), &all) == 0);
	unsigned cpus = 0;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &all))
			continue;
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		REQUIRE(sched_setaffinity(0, sizeof(one), &one) == 0);
		REQUIRE_EQ(ehv_hypervisor_cpu_identity(h, b, sizeof(b)), n);
		if (strcmp(a, b))
			TEST_FAIL("CPU %d: identity \"%s\", CPU of the first call: \"%s\"", c, b,
				  a);
		cpus++;
	}
	REQUIRE(sched_setaffinity(0, sizeof(all), &all) == 0);
	TEST_LOG("the same identity on each of %u CPUs", cpus);
	ehv_hypervisor_close(h);
}
