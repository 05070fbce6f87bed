/* tests/unit/hv_state.c - whole saved state on the mock: vCPU and VM round trips, every malformed blob, -ENOTSUP, the dirty log, the CPU identity. */
#include "hv_state_blob.h"

#include <ember/hv.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixtures */

struct env {
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
	struct ehv_vcpu *vcpu;
};

static void env_open(struct env *e, struct ehv_hypervisor *hyp, bool platform, unsigned pflags)
{
	memset(e, 0, sizeof(*e));
	if (hyp) {
		e->hyp = NULL;
	} else {
		struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
		REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
		e->hyp = hyp;
	}
	REQUIRE_OK(ehv_vm_create(hyp, &e->vm));
	if (platform)
		REQUIRE_OK(ehv_vm_setup_platform(e->vm, &(struct ehv_platform_config){pflags}));
	REQUIRE_OK(ehv_vcpu_create(e->vm, 0, &e->vcpu));
}

static void env_close(struct env *e)
{
	ehv_vcpu_destroy(e->vcpu);
	ehv_vm_destroy(e->vm);
	ehv_hypervisor_close(e->hyp);
}

static const struct ehv_msr test_msrs[] = {
    {0x10, 123456789}, {0x174, 0x10}, {0xc0000080, 0xd01}, {0xc0000103, 7}, {0x6e0, 999},
};
#define NMSRS (sizeof(test_msrs) / sizeof(test_msrs[0]))

/* Gives the vCPU a distinctive state. */
static void fill_vcpu(struct ehv_vcpu *v)
{
	struct ehv_x86_regs r;
	memset(&r, 0, sizeof(r));
	r.rax = 0x1111;
	r.rbx = 0x2222;
	r.r15 = 0xfeedface;
	r.rip = 0x100234;
	r.rflags = 0x246;
	REQUIRE_OK(ehv_vcpu_set_regs(v, &r));
	struct ehv_x86_sregs s;
	REQUIRE_OK(ehv_vcpu_get_sregs(v, &s));
	s.cr0 = 0x80050033;
	s.cr3 = 0x1000;
	s.cr4 = 0x6f0;
	s.efer = 0xd01;
	s.cs.selector = 0x10;
	s.cs.l = 1;
	REQUIRE_OK(ehv_vcpu_set_sregs(v, &s));
	struct ehv_x86_cpuid_entry c[2] = {{.function = 0, .eax = 0xd},
					   {.function = 1, .eax = 0x506e3, .ecx = 1u << 31}};
	REQUIRE_OK(ehv_vcpu_set_cpuid(v, c, 2));
	REQUIRE_OK(ehv_vcpu_set_xcr0(v, 0x7));
	REQUIRE_EQ(ehv_vcpu_set_msrs(v, test_msrs, NMSRS), (int)NMSRS);
	REQUIRE_OK(ehv_vcpu_set_mp_state(v, EHV_MP_HALTED));
	struct ehv_lapic_state l;
	if (ehv_vcpu_get_lapic(v, &l) == 0) {
		l.regs[0x80] = 0x20;  /* TPR */
		l.regs[0x320] = 0xec; /* LVT timer vector */
		l.regs[0x380] = 0x55; /* initial count */
		REQUIRE_OK(ehv_vcpu_set_lapic(v, &l));
	}
}

static void check_same_vcpu(struct ehv_vcpu *a, struct ehv_vcpu *b)
{
	struct ehv_x86_regs ra, rb;
	struct ehv_x86_sregs sa, sb;
	REQUIRE_OK(ehv_vcpu_get_regs(a, &ra));
	REQUIRE_OK(ehv_vcpu_get_regs(b, &rb));
	CHECK(!memcmp(&ra, &rb, sizeof(ra)));
	REQUIRE_OK(ehv_vcpu_get_sregs(a, &sa));
	REQUIRE_OK(ehv_vcpu_get_sregs(b, &sb));
	CHECK_EQ(sa.cr0, sb.cr0);
	CHECK_EQ(sa.cr3, sb.cr3);
	CHECK_EQ(sa.efer, sb.efer);
	CHECK_EQ(sa.cs.selector, sb.cs.selector);
	CHECK_EQ(sa.cs.l, sb.cs.l);
	uint64_t xa, xb;
	REQUIRE_OK(ehv_vcpu_get_xcr0(a, &xa));
	REQUIRE_OK(ehv_vcpu_get_xcr0(b, &xb));
	CHECK_EQ(xa, xb);
	struct ehv_msr m[NMSRS];
	for (size_t i = 0; i < NMSRS; i++)
		m[i].index = test_msrs[i].index;
	REQUIRE_EQ(ehv_vcpu_get_msrs(b, m, NMSRS), (int)NMSRS);
	for (size_t i = 0; i < NMSRS; i++)
		CHECK_EQ(m[i].value, test_msrs[i].value);
	enum ehv_mp_state pa, pb;
	REQUIRE_OK(ehv_vcpu_get_mp_state(a, &pa));
	REQUIRE_OK(ehv_vcpu_get_mp_state(b, &pb));
	CHECK_EQ(pa, pb);
	struct ehv_x86_cpuid_entry ca[4], cb[4];
	int na = ehv_mock_vcpu_cpuid(a, ca, 4), nb = ehv_mock_vcpu_cpuid(b, cb, 4);
	CHECK_EQ(na, nb);
	CHECK(na == 2 && !memcmp(ca, cb, 2 * sizeof(ca[0])));
	struct ehv_lapic_state la, lb;
	if (ehv_vcpu_get_lapic(a, &la) == 0) {
		REQUIRE_OK(ehv_vcpu_get_lapic(b, &lb));
		CHECK(!memcmp(&la, &lb, sizeof(la)));
	}
}

TEST(hv_state_vcpu_round_trip_on_a_new_vm)
{
	struct env a, b;
	env_open(&a, NULL, true, 0);
	fill_vcpu(a.vcpu);
	void *buf;
	size_t len;
	CHECK_ERR(ehv_vcpu_save_state(NULL, &buf, &len), -EINVAL);
	CHECK_ERR(ehv_vcpu_save_state(a.vcpu, NULL, &len), -EINVAL);
	CHECK_ERR(ehv_vcpu_save_state(a.vcpu, &buf, NULL), -EINVAL);
	CHECK(buf == NULL);
	REQUIRE_OK(ehv_vcpu_save_state(a.vcpu, &buf, &len));
	REQUIRE(buf && len > 32);
	CHECK_EQ(rd32(buf), EHV_STATE_MAGIC);

	env_open(&b, NULL, true, 0);
	/* a different state beforehand: the restore must replace all of it */
	struct ehv_x86_regs r;
	REQUIRE_OK(ehv_vcpu_get_regs(b.vcpu, &r));
	CHECK(r.rax != 0x1111);
	CHECK_OK(ehv_vcpu_restore_state(b.vcpu, buf, len));
	CHECK_STR(ehv_vcpu_state_detail(b.vcpu), "");
	check_same_vcpu(a.vcpu, b.vcpu);

	/* restoring the same blob twice gives the same state again */
	CHECK_OK(ehv_vcpu_restore_state(b.vcpu, buf, len));
	check_same_vcpu(a.vcpu, b.vcpu);
	free(buf);
	env_close(&a);
	env_close(&b);
}

TEST(hv_state_vcpu_save_wants_the_last_exit_completed)
{
	struct env e;
	env_open(&e, NULL, false, 0);
	struct ehv_mock_step st;
	memset(&st, 0, sizeof(st));
	st.kind = EHV_MOCK_EXIT;
	st.exit.reason = EHV_EXIT_IO_WRITE;
	st.exit.u.io_write.port = 0x80;
	st.exit.u.io_write.width = 1;
	st.exit.u.io_write.count = 1;
	REQUIRE_OK(ehv_mock_vcpu_script(e.vcpu, &st, 1));
	REQUIRE_EQ(ehv_vcpu_run(e.vcpu, NULL), EHV_EXIT_IO_WRITE);
	void *buf = (void *)1;
	size_t len;
	CHECK_ERR(ehv_vcpu_save_state(e.vcpu, &buf, &len), -EBUSY);
	CHECK(buf == NULL);
	CHECK(strstr(ehv_vcpu_state_detail(e.vcpu), "complete") != NULL);
	REQUIRE_EQ(ehv_vcpu_complete_pending(e.vcpu, NULL), EHV_EXIT_CANCELED);
	CHECK_OK(ehv_vcpu_save_state(e.vcpu, &buf, &len));
	free(buf);
	env_close(&e);
}

/* Restore of blob (len) into a fresh vCPU must fail with want, leave the
 * vCPU's registers untouched, and say something. */
static void expect_refused(const void *blob, size_t len, int want, const char *words)
{
	struct env e;
	env_open(&e, NULL, true, 0);
	struct ehv_x86_regs before, after;
	REQUIRE_OK(ehv_vcpu_get_regs(e.vcpu, &before));
	int r = ehv_vcpu_restore_state(e.vcpu, blob, len);
	CHECK_EQ(r, want);
	REQUIRE_OK(ehv_vcpu_get_regs(e.vcpu, &after));
	CHECK(!memcmp(&before, &after, sizeof(before)));
	const char *d = ehv_vcpu_state_detail(e.vcpu);
	CHECK(d[0] != 0);
	if (words && !strstr(d, words))
		TEST_FAIL("detail \"%s\" does not say \"%s\"", d, words);
	env_close(&e);
}

TEST(hv_state_vcpu_every_malformed_blob_is_refused)
{
	struct env a;
	env_open(&a, NULL, true, 0);
	fill_vcpu(a.vcpu);
	uint8_t *good;
	size_t len;
	REQUIRE_OK(ehv_vcpu_save_state(a.vcpu, (void **)&good, &len));
	uint8_t *bad = malloc(len + 16);
	REQUIRE(bad);

	CHECK_ERR(ehv_vcpu_restore_state(NULL, good, len), -EINVAL);
	CHECK_ERR(ehv_vcpu_restore_state(a.vcpu, NULL, len), -EINVAL);
	expect_refused(good, 0, -EINVAL, "truncated");
	expect_refused(good, 31, -EINVAL, "truncated");
	/* truncated anywhere after the header */
	expect_refused(good, len - 1, -EINVAL, "truncated");
	expect_refused(good, len - 8, -EINVAL, "truncated");
	expect_refused(good, 32, -EINVAL, "truncated");
	/* trailing bytes */
	memcpy(bad, good, len);
	memset(bad + len, 0, 8);
	expect_refused(bad, len + 8, -EINVAL, "trailing");
	/* bad magic */
	memcpy(bad, good, len);
	bad[0] ^= 1;
	expect_refused(bad, len, -EINVAL, "magic");
	/* a corrupted byte in every part of the payload */
	for (size_t off = 32; off < len; off += 97) {
		memcpy(bad, good, len);
		bad[off] ^= 0x40;
		expect_refused(bad, len, -EINVAL, "CRC");
	}
	/* a CRC that itself was damaged */
	memcpy(bad, good, len);
	bad[24] ^= 1;
	expect_refused(bad, len, -EINVAL, "CRC");

	/* now blobs that are well-formed containers but wrong in one way */
	struct tblob b;
	uint8_t *p;
	size_t n;
#define REBUILD_REFUSED(want, words)               \
	do {                                       \
		p = tb_build(&b, &n);              \
		expect_refused(p, n, want, words); \
		free(p);                           \
		tb_free(&b);                       \
	} while (0)

	/* the builder itself gives back an accepted blob */
	tb_parse(&b, good, len);
	p = tb_build(&b, &n);
	CHECK_EQ(n, len);
	CHECK(!memcmp(p, good, len));
	free(p);
	tb_free(&b);

	tb_parse(&b, good, len);
	b.version = EHV_STATE_VERSION + 1;
	REBUILD_REFUSED(-EINVAL, "version");
	tb_parse(&b, good, len);
	b.kind = 2; /* a VM blob */
	REBUILD_REFUSED(-EINVAL, "VM");
	tb_parse(&b, good, len);
	b.backend = EHV_BACKEND_KVM;
	REBUILD_REFUSED(-EINVAL, "kvm");
	/* a section whose length runs past the end: patch the first one's */
	memcpy(bad, good, len);
	wr32(bad + 32 + 8, 0x10000);
	wr32(bad + 24, crc(bad + 32, len - 32));
	expect_refused(bad, len, -EINVAL, "past the end");
	/* a section count larger than what is there */
	memcpy(bad, good, len);
	wr32(bad + 12, rd32(bad + 12) + 1);
	expect_refused(bad, len, -EINVAL, "past the end");
	/* fewer sections than there are bytes for */
	memcpy(bad, good, len);
	wr32(bad + 12, rd32(bad + 12) - 1);
	expect_refused(bad, len, -EINVAL, "after the last section");
	/* a duplicate section */
	tb_parse(&b, good, len);
	b.s[b.n] = b.s[1];
	b.s[b.n].data = malloc(b.s[1].len);
	memcpy(b.s[b.n].data, b.s[1].data, b.s[1].len);
	b.n++;
	REBUILD_REFUSED(-EINVAL, "duplicate");
	/* each required section missing */
	static const char *const required[] = {"VCID", "CPID", "REGS", "SREG",
					       "XCR0", "MSRS", "MPST"};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		tb_parse(&b, good, len);
		tb_drop(&b, required[i]);
		REBUILD_REFUSED(-EINVAL, NULL);
	}
	/* a section of the wrong size, and of an unknown version */
	tb_parse(&b, good, len);
	tb_find(&b, "REGS")->len -= 8;
	REBUILD_REFUSED(-EINVAL, "REGS");
	tb_parse(&b, good, len);
	tb_find(&b, "SREG")->version = 2;
	REBUILD_REFUSED(-EINVAL, "SREG");
	tb_parse(&b, good, len);
	tb_find(&b, "MSRS")->len -= 4;
	REBUILD_REFUSED(-EINVAL, "MSRS");
	tb_parse(&b, good, len);
	wr32(tb_find(&b, "MSRS")->data, 1000000); /* a count that is not there */
	REBUILD_REFUSED(-EINVAL, "MSRS");
	/* an unknown section */
	tb_parse(&b, good, len);
	memcpy(tb_find(&b, "LAPC")->tag, "LAPX", 4);
	REBUILD_REFUSED(-EINVAL, NULL);
	/* another vCPU's blob */
	tb_parse(&b, good, len);
	wr32(tb_find(&b, "VCID")->data, 3);
	REBUILD_REFUSED(-EINVAL, "vCPU 3");
	/* a bad MP state */
	tb_parse(&b, good, len);
	wr32(tb_find(&b, "MPST")->data, 77);
	REBUILD_REFUSED(-EINVAL, "MP state");
	/* a blob with a LAPIC into a VM without a platform */
	{
		struct env e;
		env_open(&e, NULL, false, 0);
		CHECK_ERR(ehv_vcpu_restore_state(e.vcpu, good, len), -EINVAL);
		CHECK(strstr(ehv_vcpu_state_detail(e.vcpu), "LAPIC") != NULL);
		env_close(&e);
	}
#undef REBUILD_REFUSED
	free(bad);
	free(good);
	env_close(&a);
}

TEST(hv_state_vcpu_host_lacks_a_feature_enotsup)
{
	struct env a;
	env_open(&a, NULL, true, 0);
	fill_vcpu(a.vcpu);
	void *blob;
	size_t len;
	REQUIRE_OK(ehv_vcpu_save_state(a.vcpu, &blob, &len));

	/* a host whose MSR list lacks one of the saved MSRs */
	struct ehv_hypervisor *hyp;
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	const uint32_t list[] = {0x10, 0x174, 0xc0000080, 0x6e0}; /* no 0xc0000103 */
	REQUIRE_OK(ehv_mock_set_msr_lists(hyp, list, 4, NULL, 0));
	struct env e;
	env_open(&e, hyp, true, 0);
	struct ehv_x86_regs before, after;
	REQUIRE_OK(ehv_vcpu_get_regs(e.vcpu, &before));
	CHECK_ERR(ehv_vcpu_restore_state(e.vcpu, blob, len), -ENOTSUP);
	CHECK(strstr(ehv_vcpu_state_detail(e.vcpu), "0xc0000103") != NULL);
	REQUIRE_OK(ehv_vcpu_get_regs(e.vcpu, &after));
	CHECK(!memcmp(&before, &after, sizeof(before)));
	env_close(&e);

	/* with the MSR listed it goes through */
	const uint32_t list2[] = {0x10, 0x174, 0xc0000080, 0x6e0, 0xc0000103};
	REQUIRE_OK(ehv_mock_set_msr_lists(hyp, list2, 5, NULL, 0));
	env_open(&e, hyp, true, 0);
	CHECK_OK(ehv_vcpu_restore_state(e.vcpu, blob, len));
	env_close(&e);

	/* a vCPU that refuses one of them (as KVM does for an MSR it does not know) */
	env_open(&e, hyp, true, 0);
	REQUIRE_OK(ehv_mock_vcpu_refuse_msr(e.vcpu, 0x174));
	CHECK_ERR(ehv_vcpu_restore_state(e.vcpu, blob, len), -ENOTSUP);
	CHECK(strstr(ehv_vcpu_state_detail(e.vcpu), "0x174") != NULL);
	env_close(&e);

	/* a host whose XSAVE features (CPUID 0xD) lack AVX (bit 2) */
	const struct ehv_x86_cpuid_entry sup[] = {{.function = 0xd, .index = 0, .eax = 0x3}};
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, sup, 1));
	env_open(&e, hyp, true, 0);
	CHECK_ERR(ehv_vcpu_restore_state(e.vcpu, blob, len), -ENOTSUP);
	CHECK(strstr(ehv_vcpu_state_detail(e.vcpu), "XCR0") != NULL);
	env_close(&e);
	ehv_hypervisor_close(hyp);
	free(blob);
	env_close(&a);
}

/* ---- VM */

static void fill_vm(struct ehv_vm *vm, bool pit)
{
	struct ehv_state_blob st;
	for (unsigned chip = 0; chip < EHV_IRQCHIP_MAX; chip++) {
		REQUIRE_OK(ehv_vm_get_irqchip(vm, chip, &st));
		for (unsigned i = 0; i < st.size; i++)
			st.data[i] = (uint8_t)(chip * 31 + i);
		REQUIRE_OK(ehv_vm_set_irqchip(vm, chip, &st));
	}
	if (pit) {
		REQUIRE_OK(ehv_vm_get_pit(vm, &st));
		for (unsigned i = 0; i < st.size; i++)
			st.data[i] = (uint8_t)(0xa0 ^ i);
		REQUIRE_OK(ehv_vm_set_pit(vm, &st));
	}
	REQUIRE_OK(ehv_vm_set_clock(vm, &(struct ehv_clock){.ns = 5000000000ull}));
}

TEST(hv_state_vm_round_trip_and_refusals)
{
	struct env a, b;
	env_open(&a, NULL, true, EHV_PLATFORM_PIT);
	fill_vm(a.vm, true);
	void *blob;
	size_t len;
	CHECK_ERR(ehv_vm_save_state(NULL, &blob, &len), -EINVAL);
	REQUIRE_OK(ehv_vm_save_state(a.vm, &blob, &len));
	struct ehv_clock saved;
	REQUIRE_OK(ehv_vm_get_clock(a.vm, &saved));

	env_open(&b, NULL, true, EHV_PLATFORM_PIT);
	CHECK_OK(ehv_vm_restore_state(b.vm, blob, len));
	struct ehv_state_blob x, y;
	for (unsigned chip = 0; chip < EHV_IRQCHIP_MAX; chip++) {
		REQUIRE_OK(ehv_vm_get_irqchip(a.vm, chip, &x));
		REQUIRE_OK(ehv_vm_get_irqchip(b.vm, chip, &y));
		CHECK(x.size == y.size && !memcmp(x.data, y.data, x.size));
	}
	REQUIRE_OK(ehv_vm_get_pit(a.vm, &x));
	REQUIRE_OK(ehv_vm_get_pit(b.vm, &y));
	CHECK(x.size == y.size && !memcmp(x.data, y.data, x.size));
	/* the clock continues from the saved value: not back, and not from 0 */
	struct ehv_clock c;
	REQUIRE_OK(ehv_vm_get_clock(b.vm, &c));
	CHECK(c.ns >= 5000000000ull);
	CHECK(c.ns < saved.ns + 1000000000ull);
	env_close(&b);

	/* a VM without the PIT, or without any platform, refuses it */
	env_open(&b, NULL, true, 0);
	CHECK_ERR(ehv_vm_restore_state(b.vm, blob, len), -EINVAL);
	CHECK(strstr(ehv_vm_state_detail(b.vm), "PIT2") != NULL);
	env_close(&b);
	env_open(&b, NULL, false, 0);
	CHECK_ERR(ehv_vm_restore_state(b.vm, blob, len), -EINVAL);
	env_close(&b);

	/* malformed: a vCPU blob, truncation, corruption, a chip of the wrong size */
	env_open(&b, NULL, true, EHV_PLATFORM_PIT);
	void *vblob;
	size_t vlen;
	REQUIRE_OK(ehv_vcpu_save_state(a.vcpu, &vblob, &vlen));
	CHECK_ERR(ehv_vm_restore_state(b.vm, vblob, vlen), -EINVAL);
	CHECK_ERR(ehv_vcpu_restore_state(b.vcpu, blob, len), -EINVAL);
	free(vblob);
	CHECK_ERR(ehv_vm_restore_state(b.vm, blob, len - 1), -EINVAL);
	uint8_t *bad = malloc(len);
	memcpy(bad, blob, len);
	bad[len / 2] ^= 1;
	CHECK_ERR(ehv_vm_restore_state(b.vm, bad, len), -EINVAL);
	free(bad);
	struct tblob tb;
	size_t n;
	uint8_t *p;
	tb_parse(&tb, blob, len);
	tb_find(&tb, "IOAP")->len -= 8;
	p = tb_build(&tb, &n);
	CHECK_ERR(ehv_vm_restore_state(b.vm, p, n), -EINVAL);
	CHECK(strstr(ehv_vm_state_detail(b.vm), "IOAP") != NULL);
	free(p);
	tb_free(&tb);
	tb_parse(&tb, blob, len);
	tb_drop(&tb, "CLCK");
	p = tb_build(&tb, &n);
	CHECK_ERR(ehv_vm_restore_state(b.vm, p, n), -EINVAL);
	free(p);
	tb_free(&tb);
	/* the clock section: version 2 holds the time of the reading (24
	 * bytes); version 1 (16 bytes, without it) is still taken; any other
	 * size or version is refused */
	tb_parse(&tb, blob, len);
	CHECK_EQ(tb_find(&tb, "CLCK")->version, 2u);
	CHECK_EQ(tb_find(&tb, "CLCK")->len, 24u);
	tb_find(&tb, "CLCK")->len = 16;
	p = tb_build(&tb, &n);
	CHECK_ERR(ehv_vm_restore_state(b.vm, p, n), -EINVAL); /* version 2, 16 bytes */
	free(p);
	tb_find(&tb, "CLCK")->version = 3;
	tb_find(&tb, "CLCK")->len = 24;
	p = tb_build(&tb, &n);
	CHECK_ERR(ehv_vm_restore_state(b.vm, p, n), -EINVAL);
	CHECK(strstr(ehv_vm_state_detail(b.vm), "clock") != NULL);
	free(p);
	tb_find(&tb, "CLCK")->version = 1;
	tb_find(&tb, "CLCK")->len = 16;
	p = tb_build(&tb, &n);
	{
		struct env v1;
		env_open(&v1, NULL, true, EHV_PLATFORM_PIT);
		CHECK_OK(ehv_vm_restore_state(v1.vm, p, n));
		REQUIRE_OK(ehv_vm_get_clock(v1.vm, &c));
		CHECK(c.ns >= saved.ns - 1000000000ull && c.ns < saved.ns + 1000000000ull);
		env_close(&v1);
	}
	free(p);
	tb_free(&tb);
	/* none of the refusals changed the VM: its chips are still zero */
	REQUIRE_OK(ehv_vm_get_irqchip(b.vm, EHV_IRQCHIP_PIC_SLAVE, &y));
	for (unsigned i = 0; i < y.size; i++)
		if (y.data[i]) {
			TEST_FAIL("byte %u of the slave PIC changed", i);
			break;
		}
	env_close(&b);
	free(blob);
	env_close(&a);
}

/* ---- dirty log */

TEST(hv_state_dirty_log_reports_and_clears)
{
	struct env e;
	env_open(&e, NULL, false, 0);
	const size_t size = 200 * 4096;
	void *mem = aligned_alloc(4096, size);
	REQUIRE(mem);
	REQUIRE_OK(ehv_vm_set_memory(e.vm, 1, 0x100000, size, mem, EHV_MEM_LOG_DIRTY));
	REQUIRE_OK(ehv_vm_set_memory(e.vm, 2, 0x1000000, 4096, mem, 0));
	uint64_t bm[4];
	CHECK_ERR(ehv_vm_get_dirty_log(NULL, 1, bm, sizeof(bm)), -EINVAL);
	CHECK_ERR(ehv_vm_get_dirty_log(e.vm, 1, NULL, sizeof(bm)), -EINVAL);
	CHECK_ERR(ehv_vm_get_dirty_log(e.vm, EHV_MAX_MEM_SLOTS, bm, sizeof(bm)), -EINVAL);
	CHECK_ERR(ehv_vm_get_dirty_log(e.vm, 1, bm, 24), -EINVAL); /* 200 pages need 32 bytes */
	CHECK_ERR(ehv_vm_get_dirty_log(e.vm, 2, bm, sizeof(bm)), -EINVAL); /* not logged */
	CHECK_ERR(ehv_vm_get_dirty_log(e.vm, 3, bm, sizeof(bm)), -ENOENT);
	memset(bm, 0xff, sizeof(bm));
	CHECK_OK(ehv_vm_get_dirty_log(e.vm, 1, bm, sizeof(bm)));
	CHECK(bm[0] == 0 && bm[1] == 0 && bm[2] == 0 && bm[3] == 0);
	/* pages 0, 65 and 66 (a write across the boundary), 199 */
	CHECK_OK(ehv_mock_vm_mark_dirty(e.vm, 0x100000, 1));
	CHECK_OK(ehv_mock_vm_mark_dirty(e.vm, 0x100000 + 65 * 4096 + 4090, 10));
	CHECK_OK(ehv_mock_vm_mark_dirty(e.vm, 0x100000 + 199 * 4096, 4096));
	CHECK_ERR(ehv_mock_vm_mark_dirty(e.vm, 0x100000 + 199 * 4096, 4097), -ENOENT);
	CHECK_ERR(ehv_mock_vm_mark_dirty(e.vm, 0x1000000, 8), -ENOENT); /* not logged */
	CHECK_OK(ehv_vm_get_dirty_log(e.vm, 1, bm, sizeof(bm)));
	CHECK_EQ(bm[0], 1ull);
	CHECK_EQ(bm[1], 3ull << 1);
	CHECK_EQ(bm[2], 0ull);
	CHECK_EQ(bm[3], 1ull << (199 - 192));
	/* read again: cleared */
	CHECK_OK(ehv_vm_get_dirty_log(e.vm, 1, bm, sizeof(bm)));
	CHECK(bm[0] == 0 && bm[1] == 0 && bm[2] == 0 && bm[3] == 0);
	/* a removed slot has no log */
	REQUIRE_OK(ehv_vm_remove_memory(e.vm, 1));
	CHECK_ERR(ehv_vm_get_dirty_log(e.vm, 1, bm, sizeof(bm)), -ENOENT);
	env_close(&e);
	free(mem);
}

/* ---- CPU identity */

TEST(hv_state_cpu_identity_is_stable_and_tracks_the_cpuid)
{
	struct ehv_hypervisor *hyp;
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	char a[EHV_CPU_IDENTITY_MAX], b[EHV_CPU_IDENTITY_MAX];
	CHECK_ERR(ehv_hypervisor_cpu_identity(NULL, a, sizeof(a)), -EINVAL);
	CHECK_ERR(ehv_hypervisor_cpu_identity(hyp, NULL, sizeof(a)), -EINVAL);
	CHECK_ERR(ehv_hypervisor_cpu_identity(hyp, a, sizeof(a)), -ENODATA);
	struct ehv_x86_cpuid_entry t[6] = {
	    /* "GenuineIntel" in EBX, EDX, ECX */
	    {.function = 0, .eax = 0x16, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69},
	    {.function = 1, .eax = 0x000506e3, .ebx = 0x01100800, .ecx = 0x7ffafbff},
	    {.function = 7, .flags = EHV_CPUID_SIGNIFICANT_INDEX, .ebx = 0x029c67af},
	    {.function = 0xb, .flags = EHV_CPUID_SIGNIFICANT_INDEX, .ecx = 0x100, .edx = 0},
	    {.function = 0x1f, .flags = EHV_CPUID_SIGNIFICANT_INDEX, .ecx = 0x100, .edx = 0},
	    {.function = 0x8000001e, .eax = 0, .ebx = 0x100, .ecx = 0},
	};
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, t, 6));
	int n = ehv_hypervisor_cpu_identity(hyp, a, sizeof(a));
	REQUIRE(n > 0);
	CHECK_EQ((size_t)n, strlen(a));
	if (strncmp(a, "GenuineIntel family 6 model 94 stepping 3 cpuid ", 48) != 0)
		TEST_FAIL("identity \"%s\"", a);
	CHECK_EQ(strlen(a), 48u + 16u);
	/* the same table gives the same text; too small a buffer is -ERANGE */
	REQUIRE_EQ(ehv_hypervisor_cpu_identity(hyp, b, sizeof(b)), n);
	CHECK_STR(a, b);
	CHECK_ERR(ehv_hypervisor_cpu_identity(hyp, b, (size_t)n), -ERANGE);
	/* another host CPU of the same host (the call ran there): another
	 * APIC id (leaf 1 EBX[31:24]), x2APIC id (leaves 0xB and 0x1F EDX),
	 * extended APIC, core and node ids (0x8000001E) is the same CPU */
	t[1].ebx = 0x07100800;
	t[3].edx = t[4].edx = 7;
	t[5].eax = 7, t[5].ebx = 0x103, t[5].ecx = 1;
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, t, 6));
	REQUIRE_EQ(ehv_hypervisor_cpu_identity(hyp, b, sizeof(b)), n);
	CHECK_STR(a, b);
	/* another topology is not (leaf 0xB ECX: the level's type and number) */
	t[3].ecx = 0x201;
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, t, 6));
	REQUIRE_EQ(ehv_hypervisor_cpu_identity(hyp, b, sizeof(b)), n);
	CHECK(strcmp(a, b) != 0);
	t[3].ecx = 0x100;
	/* one feature bit less is not */
	t[2].ebx &= ~(1u << 5);
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, t, 6));
	REQUIRE_EQ(ehv_hypervisor_cpu_identity(hyp, b, sizeof(b)), n);
	CHECK(strcmp(a, b) != 0);
	CHECK(!strncmp(a, b, 48));
	/* AMD family 0x19: base 0xf + extended 0xa */
	t[0].ebx = 0x68747541; /* "AuthenticAMD" */
	t[0].edx = 0x69746e65;
	t[0].ecx = 0x444d4163;
	t[1].eax = 0x00a20f10;
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, t, 6));
	REQUIRE(ehv_hypervisor_cpu_identity(hyp, b, sizeof(b)) > 0);
	if (strncmp(b, "AuthenticAMD family 25 model 33 stepping 0 cpuid ", 49) != 0)
		TEST_FAIL("identity \"%s\"", b);
	ehv_hypervisor_close(hyp);
}

/* ---- through the runner, as a VMM saves: pause, then a call on the vCPU
 * thread; an I/O exit the pause interrupted is completed first */

struct save_arg {
	void *buf;
	size_t len;
	const void *restore;
	size_t restore_len;
};

static int call_save(struct ehv_vcpu *v, void *p)
{
	struct save_arg *a = p;
	return ehv_vcpu_save_state(v, &a->buf, &a->len);
}

static int call_restore(struct ehv_vcpu *v, void *p)
{
	struct save_arg *a = p;
	return ehv_vcpu_restore_state(v, a->restore, a->restore_len);
}

static int io_ignore(void *opaque, struct ehv_io_access *a)
{
	(void)opaque;
	(void)a;
	return 0;
}

static int h_io_pause_fn(struct ehv_vcpu *v, const struct ehv_exit *x, void *opaque)
{
	(void)x;
	(void)opaque;
	return ehv_vcpu_handle_io(v, io_ignore, NULL) == 0 ? EHV_ACTION_PAUSE : -EIO;
}

TEST(hv_state_save_and_restore_through_the_runner)
{
	struct env a, b;
	env_open(&a, NULL, true, 0);
	fill_vcpu(a.vcpu);
	struct ehv_mock_step st;
	memset(&st, 0, sizeof(st));
	st.kind = EHV_MOCK_EXIT;
	st.exit.reason = EHV_EXIT_IO_WRITE;
	st.exit.u.io_write.port = 0x80;
	st.exit.u.io_write.width = 1;
	st.exit.u.io_write.count = 1;
	REQUIRE_OK(ehv_mock_vcpu_script(a.vcpu, &st, 1));
	struct ehv_runner_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.vcpus = &a.vcpu;
	cfg.nr_vcpus = 1;
	cfg.handlers[EHV_EXIT_IO_WRITE] = h_io_pause_fn;
	struct ehv_runner *r;
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	REQUIRE_OK(ehv_runner_start(r, 0));
	/* the handler pauses the vCPU on its I/O exit */
	for (int i = 0; i < 2000 && ehv_runner_state(r, 0) != EHV_VCPU_PAUSED; i++)
		usleep(1000);
	REQUIRE_EQ(ehv_runner_state(r, 0), EHV_VCPU_PAUSED);
	struct save_arg sa = {0};
	CHECK_OK(ehv_runner_call(r, 0, call_save, &sa));
	REQUIRE(sa.buf != NULL);
	/* the exit was completed (consumed) before the save */
	struct ehv_mock_record rec;
	REQUIRE_EQ(ehv_mock_vcpu_records(a.vcpu, &rec, 1), 1);
	CHECK(rec.handled);
	ehv_runner_destroy(r);

	/* restore into a new VM's vCPU on its runner before it starts */
	env_open(&b, NULL, true, 0);
	cfg.vcpus = &b.vcpu;
	REQUIRE_OK(ehv_runner_create(&cfg, &r));
	sa.restore = sa.buf;
	sa.restore_len = sa.len;
	CHECK_OK(ehv_runner_call(r, 0, call_restore, &sa));
	CHECK_EQ(ehv_runner_state(r, 0), EHV_VCPU_CREATED);
	ehv_runner_destroy(r);
	check_same_vcpu(a.vcpu, b.vcpu);
	free(sa.buf);
	env_close(&a);
	env_close(&b);
}
