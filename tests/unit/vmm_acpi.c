/* tests/unit/vmm_acpi.c - unit tests of the AML encoder and the ACPI tables: checksums, lengths, pointers, what a guest parses. */
#include "../lib/test.h"

#include "../../vmm/arch/x86/acpi.h"
#include "../../vmm/arch/x86/aml.h"
#include "../../vmm/arch/x86/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aml_walk.h"

/* ---------------------------------------------------------------- AML encoder */

TEST(vmm_aml_integers_and_names)
{
	struct aml a;
	aml_init(&a);
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 0x7f);
	aml_integer(&a, 0x1234);
	aml_integer(&a, 0xfec00000);
	aml_integer(&a, 0x100000000ull);
	aml_integer(&a, UINT64_MAX);
	static const uint8_t want[] = {0x00, 0x01, 0x0a, 0x7f, 0x0b, 0x34, 0x12, 0x0c,
				       0x00, 0x00, 0xc0, 0xfe, 0x0e, 0,	   0,	 0,
				       0,    1,	   0,	 0,    0,    0xff};
	REQUIRE(aml_ok(&a));
	REQUIRE_EQ(a.len, sizeof(want));
	CHECK(!memcmp(a.buf, want, sizeof(want)));
	aml_free(&a);

	aml_init(&a);
	aml_namestring(&a, "\\_SB_.COM1");
	aml_namestring(&a, "_HID");
	aml_namestring(&a, "C0");
	aml_namestring(&a, "\\A.B.C");
	static const uint8_t names[] = {'\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O',  'M',	 '1', '_',
					'H',  'I',  'D', 'C', '0', '_', '_', '\\', 0x2f, 3,   'A',
					'_',  '_',  '_', 'B', '_', '_', '_', 'C',  '_',	 '_', '_'};
	REQUIRE(aml_ok(&a));
	REQUIRE_EQ(a.len, sizeof(names));
	CHECK(!memcmp(a.buf, names, sizeof(names)));
	aml_free(&a);

	const char *bad[] = {"com1", "ABCDE", "1ABC", "A..B", "\\_SB_.", "A-B"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&a);
		aml_namestring(&a, bad[i]);
		if (aml_ok(&a))
			TEST_FAIL("name \"%s\" accepted", bad[i]);
		aml_free(&a);
	}
}

TEST(vmm_aml_eisaid)
{
	struct aml a;
	aml_init(&a);
	aml_eisaid(&a, "PNP0A03");
	aml_eisaid(&a, "PNP0501");
	REQUIRE(aml_ok(&a));
	REQUIRE_EQ(a.len, 10);
	CHECK_EQ(a.buf[0], 0x0c);
	CHECK_EQ(le32(a.buf + 1), 0x030ad041); /* iasl's EISAID("PNP0A03") */
	CHECK_EQ(le32(a.buf + 6), 0x0105d041);
	aml_free(&a);
	CHECK(aml_is_eisaid("PNP0B00"));
	CHECK(!aml_is_eisaid("LNRO0005"));
	CHECK(!aml_is_eisaid("pnp0501"));
	CHECK(!aml_is_eisaid("PNP050G"));
	aml_init(&a);
	aml_eisaid(&a, "ACPI0007");
	CHECK(!aml_ok(&a));
	aml_free(&a);
}

/* PkgLength around bodies of every encoding size. */
TEST(vmm_aml_pkglength_sizes)
{
	size_t sizes[] = {0, 1, 60, 61, 62, 63, 64, 300, 4090, 4093, 4094, 5000, 70000};
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct aml a;
		aml_init(&a);
		size_t m = aml_package_begin(&a, 0);
		uint8_t *body = calloc(1, sizes[s] ? sizes[s] : 1);
		aml_bytes(&a, body, sizes[s]);
		free(body);
		aml_end(&a, m);
		REQUIRE(aml_ok(&a));
		size_t lb = 0;
		size_t len = pkglen(a.buf + 1, a.len - 1, &lb);
		/* PkgLength covers itself and everything after it */
		CHECK_EQ(len, a.len - 1);
		CHECK_EQ(len, lb + 1 + sizes[s]);
		if (lb > 1)
			CHECK_EQ(a.buf[1] & 0x30, 0); /* reserved bits */
		aml_free(&a);
	}
}

TEST(vmm_aml_resources)
{
	struct aml r;
	aml_init(&r);
	aml_res_io(&r, 0x3f8, 8);
	aml_res_mem32(&r, 0xd0000000, 0x200, true);
	aml_res_irq(&r, 5, false, false);
	aml_res_end(&r);
	static const uint8_t want[] = {
	    0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,			    /* IO */
	    0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x02, 0x00, 0x00, /* Mem32 */
	    0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00,		    /* Interrupt */
	    0x79, 0x00};
	REQUIRE(aml_ok(&r));
	REQUIRE_EQ(r.len, sizeof(want));
	CHECK(!memcmp(r.buf, want, sizeof(want)));
	aml_free(&r);
}

/* ---------------------------------------------------------------- tables */

static const struct vmm_acpi_device devices[] = {
    {.name = "COM1",
     .hid = "PNP0501",
     .uid = 1,
     .nres = 2,
     .res = {{VMM_ACPI_RES_IO, 0x3f8, 8, false, false}, {VMM_ACPI_RES_IRQ, 4, 0, false, false}}},
    {.name = "V000",
     .hid = "LNRO0005",
     .uid = 0,
     .nres = 2,
     .res = {{VMM_ACPI_RES_MEM32, 0xd0000000, 0x200, false, false},
	     {VMM_ACPI_RES_IRQ, 5, 0, false, false}}},
};

static struct vmm_acpi_config config(unsigned ncpus)
{
	return (struct vmm_acpi_config){
	    .ncpus = ncpus,
	    .lapic_addr = X86_LAPIC_ADDR,
	    .ioapic_addr = X86_IOAPIC_ADDR,
	    .sleep_control_port = X86_PORT_ACPI_SLEEP_CTL,
	    .sleep_status_port = X86_PORT_ACPI_SLEEP_STS,
	    .reset_port = X86_PORT_ACPI_RESET,
	    .reset_value = X86_ACPI_RESET_VALUE,
	    .s5_sleep_type = X86_ACPI_S5_SLP_TYP,
	    .iapc_boot_arch = 0x1f,
	    .rtc_century = 0x32,
	    .devices = devices,
	    .ndevices = 2,
	};
}

static void check_table(const uint8_t *buf, size_t off, const char *sig, size_t *len)
{
	const uint8_t *t = buf + off;
	if (memcmp(t, sig, 4))
		TEST_FAIL("table at %zu is \"%.4s\", want %s", off, (const char *)t, sig);
	*len = le32(t + 4);
	CHECK(*len >= 36);
	CHECK_EQ(vmm_acpi_checksum(t, *len), 0);
	CHECK(!memcmp(t + 10, "EMBER ", 6));
}

TEST(vmm_acpi_tables_consistent)
{
	unsigned counts[] = {1, 2, 4, 254};
	for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++) {
		unsigned ncpus = counts[ci];
		struct vmm_acpi_config cfg = config(ncpus);
		uint8_t *buf = malloc(X86_ACPI_SIZE);
		memset(buf, 0xcc, X86_ACPI_SIZE);
		struct vmm_acpi_layout lay;
		struct ember_error err = {0};
		int r = vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err);
		if (r < 0)
			TEST_FAIL("%u cpus: %s", ncpus, err.msg);
		const uint64_t base = X86_ACPI_ADDR;

		/* RSDP: signature, both checksums, revision 2, XSDT pointer */
		const uint8_t *rsdp = buf + lay.rsdp;
		CHECK(!memcmp(rsdp, "RSD PTR ", 8));
		CHECK_EQ(vmm_acpi_checksum(rsdp, 20), 0);
		CHECK_EQ(vmm_acpi_checksum(rsdp, 36), 0);
		CHECK_EQ(rsdp[15], 2);
		CHECK_EQ(le32(rsdp + 20), 36);
		CHECK_EQ(le64(rsdp + 24), base + lay.xsdt);
		CHECK_EQ((base + lay.rsdp) % 16, 0);

		size_t len;
		check_table(buf, lay.xsdt, "XSDT", &len);
		CHECK_EQ(len, 36 + 16);
		CHECK_EQ(le64(buf + lay.xsdt + 36), base + lay.fadt);
		CHECK_EQ(le64(buf + lay.xsdt + 44), base + lay.madt);

		check_table(buf, lay.fadt, "FACP", &len);
		const uint8_t *f = buf + lay.fadt;
		CHECK_EQ(len, 276);
		CHECK_EQ(f[8], 6);   /* revision */
		CHECK_EQ(f[131], 5); /* minor */
		uint32_t flags = le32(f + 112);
		CHECK(flags & (1u << 20)); /* HW_REDUCED_ACPI */
		CHECK(flags & (1u << 4));  /* PWR_BUTTON */
		CHECK(flags & (1u << 5));  /* SLP_BUTTON */
		CHECK(flags & (1u << 10)); /* RESET_REG_SUP */
		CHECK_EQ(le32(f + 40), base + lay.dsdt);
		CHECK_EQ(le64(f + 140), base + lay.dsdt);
		/* reset register: I/O, 8 bits at the reset port, value */
		CHECK_EQ(f[116], 1);
		CHECK_EQ(f[117], 8);
		CHECK_EQ(le64(f + 120), X86_PORT_ACPI_RESET);
		CHECK_EQ(f[128], X86_ACPI_RESET_VALUE);
		/* sleep control/status registers */
		CHECK_EQ(f[244], 1);
		CHECK_EQ(le64(f + 248), X86_PORT_ACPI_SLEEP_CTL);
		CHECK_EQ(f[256], 1);
		CHECK_EQ(le64(f + 260), X86_PORT_ACPI_SLEEP_STS);
		CHECK_EQ(f[108], 0x32);
		CHECK_EQ(f[109] | f[110] << 8, 0x1f);
		CHECK(!memcmp(f + 268, "EMBERVMM", 8));

		/* MADT: every vCPU, the IOAPIC, the IRQ0 override */
		check_table(buf, lay.madt, "APIC", &len);
		const uint8_t *m = buf + lay.madt;
		CHECK_EQ(le32(m + 36), X86_LAPIC_ADDR);
		unsigned lapics = 0, ioapics = 0, isos = 0;
		for (size_t off = 44; off < len;) {
			const uint8_t *e = m + off;
			REQUIRE(e[1] >= 2 && off + e[1] <= len);
			if (e[0] == 0) {
				CHECK_EQ(e[1], 8);
				CHECK_EQ(e[2], lapics); /* UID */
				CHECK_EQ(e[3], lapics); /* APIC ID */
				CHECK_EQ(le32(e + 4) & 1, 1);
				lapics++;
			} else if (e[0] == 1) {
				CHECK_EQ(le32(e + 4), X86_IOAPIC_ADDR);
				CHECK_EQ(le32(e + 8), 0);
				ioapics++;
			} else if (e[0] == 2) {
				CHECK_EQ(e[3], 0);
				CHECK_EQ(le32(e + 4), 2);
				isos++;
			}
			off += e[1];
		}
		CHECK_EQ(lapics, ncpus);
		CHECK_EQ(ioapics, 1);
		CHECK_EQ(isos, 1);

		/* DSDT: what a guest's AML interpreter sees */
		check_table(buf, lay.dsdt, "DSDT", &len);
		struct walk *w = calloc(1, sizeof(*w));
		walk_terms(w, buf + lay.dsdt + 36, len - 36, "", NULL);
		CHECK(!w->bad);
		CHECK_EQ(w->ndevs, (int)ncpus + 2);
		for (unsigned i = 0; i < ncpus; i++) {
			char path[32];
			snprintf(path, sizeof(path), "\\_SB_.C%03X", i);
			struct found_dev *d = find_dev(w, path);
			if (!d) {
				TEST_FAIL("no %s", path);
				continue;
			}
			CHECK_STR(d->hid_str, "ACPI0007");
			CHECK_EQ(d->uid, i);
		}
		struct found_dev *com = find_dev(w, "\\_SB_.COM1");
		REQUIRE(com);
		CHECK_EQ(com->hid_int, 0x0105d041);
		CHECK_EQ(com->uid, 1);
		REQUIRE_EQ(com->crs_len, 8 + 9 + 2);
		CHECK_EQ(com->crs[0], 0x47);
		CHECK_EQ(com->crs[2] | com->crs[3] << 8, 0x3f8);
		CHECK_EQ(com->crs[8], 0x89);
		CHECK_EQ(le32(com->crs + 8 + 5), 4);
		struct found_dev *v = find_dev(w, "\\_SB_.V000");
		REQUIRE(v);
		CHECK_STR(v->hid_str, "LNRO0005");
		CHECK_EQ(v->crs[0], 0x86);
		CHECK_EQ(le32(v->crs + 4), 0xd0000000);
		CHECK_EQ(w->s5_count, 4);
		CHECK_EQ(w->s5_first, X86_ACPI_S5_SLP_TYP);
		free(w);

		/* tables do not overlap and fit */
		CHECK(lay.xsdt >= 36 && lay.fadt >= lay.xsdt + 52 && lay.madt >= lay.fadt + 276 &&
		      lay.dsdt >= lay.madt + 44);
		CHECK(lay.size <= X86_ACPI_SIZE);
		CHECK_EQ(buf[lay.size], 0xcc); /* nothing written past the end */
		free(buf);
	}
}

TEST(vmm_acpi_rejects_bad_config)
{
	uint8_t *buf = malloc(X86_ACPI_SIZE);
	struct vmm_acpi_layout lay;
	struct ember_error err = {0};
	struct vmm_acpi_config cfg = config(2);
	CHECK_ERR(vmm_acpi_build(&cfg, buf, 200, X86_ACPI_ADDR, &lay, &err), -E2BIG);
	CHECK(strstr(err.msg, "need") != NULL);
	CHECK_ERR(vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR + 4, &lay, &err), -EINVAL);
	cfg.ncpus = 0;
	CHECK_ERR(vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err), -EINVAL);
	cfg = config(1);
	struct vmm_acpi_device bad = devices[0];
	memcpy(bad.name, "com1", 5);
	cfg.devices = &bad;
	cfg.ndevices = 1;
	CHECK_ERR(vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err), -EINVAL);
	CHECK(strstr(err.msg, "com1") != NULL);
	bad = devices[0];
	bad.res[0].len = 0;
	cfg.devices = &bad;
	CHECK_ERR(vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err), -EINVAL);
	bad = devices[0];
	bad.hid = "pnp\xff";
	CHECK_ERR(vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err), -EINVAL);
	free(buf);
}

/* ---------------------------------------------------------------- sleep/reset registers */

#include "../../vmm/arch/x86/acpi_pm.h"

static int pm_off, pm_reset, pm_sleep_type = -1;
static void on_off(void *o)
{
	(void)o;
	pm_off++;
}
static void on_reset(void *o)
{
	(void)o;
	pm_reset++;
}
static int pm_sleeps;
static void on_sleep(void *o, unsigned t)
{
	(void)o;
	pm_sleep_type = (int)t;
	pm_sleeps++;
}

TEST(vmm_acpi_pm_registers)
{
	struct acpi_pm pm = {.poweroff = on_off,
			     .reset = on_reset,
			     .sleep = on_sleep,
			     .s5_sleep_type = X86_ACPI_S5_SLP_TYP,
			     .reset_value = X86_ACPI_RESET_VALUE};
	uint8_t b;
	/* Linux's S5 entry (hardware-reduced): WAK_STS to status, then
	 * SLP_TYP << 2 | SLP_EN to control */
	b = 0x80;
	acpi_pm_ops.access(&pm, 1, X86_PORT_ACPI_SLEEP_STS, 0, &b, 1, true);
	CHECK_EQ(pm_off, 0);
	b = (uint8_t)(X86_ACPI_S5_SLP_TYP << 2); /* no SLP_EN: nothing */
	acpi_pm_ops.access(&pm, 0, X86_PORT_ACPI_SLEEP_CTL, 0, &b, 1, true);
	CHECK_EQ(pm_off, 0);
	b = (uint8_t)(X86_ACPI_S5_SLP_TYP << 2 | 0x20);
	acpi_pm_ops.access(&pm, 0, X86_PORT_ACPI_SLEEP_CTL, 0, &b, 1, true);
	CHECK_EQ(pm_off, 1);
	b = (uint8_t)(3 << 2 | 0x20); /* S3: reported, not a power-off */
	acpi_pm_ops.access(&pm, 0, X86_PORT_ACPI_SLEEP_CTL, 0, &b, 1, true);
	CHECK_EQ(pm_off, 1);
	CHECK_EQ(pm_sleep_type, 3);
	/* reported once per sleep type, however often the guest writes it */
	for (int i = 0; i < 1000; i++)
		acpi_pm_ops.access(&pm, 0, X86_PORT_ACPI_SLEEP_CTL, 0, &b, 1, true);
	CHECK_EQ(pm_sleeps, 1);
	b = (uint8_t)(1 << 2 | 0x20); /* S1: a new type, reported */
	acpi_pm_ops.access(&pm, 0, X86_PORT_ACPI_SLEEP_CTL, 0, &b, 1, true);
	CHECK_EQ(pm_sleeps, 2);
	CHECK_EQ(pm_sleep_type, 1);
	/* reset: only the FADT's reset value */
	b = 0x02;
	acpi_pm_ops.access(&pm, 2, X86_PORT_ACPI_RESET, 0, &b, 1, true);
	CHECK_EQ(pm_reset, 0);
	b = X86_ACPI_RESET_VALUE;
	acpi_pm_ops.access(&pm, 2, X86_PORT_ACPI_RESET, 0, &b, 1, true);
	CHECK_EQ(pm_reset, 1);
	/* reads: WAK_STS in status, 0 elsewhere */
	b = 0xff;
	acpi_pm_ops.access(&pm, 1, X86_PORT_ACPI_SLEEP_STS, 0, &b, 1, false);
	CHECK_EQ(b, 0x80);
	b = 0xff;
	acpi_pm_ops.access(&pm, 0, X86_PORT_ACPI_SLEEP_CTL, 0, &b, 1, false);
	CHECK_EQ(b, 0);
	CHECK_EQ(acpi_pm_ops.sizes, 1);
}

/* The Generic Event Device block: the buttons and GED_ devices, the
 * GED's level interrupt, the register region, _EVT reading the event
 * register once and notifying the buttons, one handler per GPE-style event
 * (writing its number to the acknowledge register), and the MADT override
 * that makes a legacy GSI level-triggered. */
TEST(vmm_acpi_ged_in_the_dsdt)
{
	struct vmm_acpi_config cfg = config(2);
	struct vmm_acpi_ged ged = {.mmio_base = X86_GED_ADDR, .gsi = X86_IRQ_GED, .ngpe = 8};
	cfg.ged = &ged;
	uint8_t *buf = calloc(1, X86_ACPI_SIZE);
	REQUIRE(buf);
	struct vmm_acpi_layout lay;
	struct ember_error err = {0};
	if (vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err) < 0)
		TEST_FAIL("%s", err.msg);
	size_t len;
	check_table(buf, lay.dsdt, "DSDT", &len);
	struct walk *w = calloc(1, sizeof(*w));
	walk_terms(w, buf + lay.dsdt + 36, len - 36, "", NULL);
	CHECK(!w->bad);
	struct found_dev *pwr = find_dev(w, "\\_SB_.PWRB"), *slp = find_dev(w, "\\_SB_.SLPB"),
			 *g = find_dev(w, "\\_SB_.GED_");
	REQUIRE(pwr && slp && g);
	CHECK_EQ(pwr->hid_int, 0x0c0cd041); /* EisaId("PNP0C0C") */
	CHECK_EQ(slp->hid_int, 0x0e0cd041); /* EisaId("PNP0C0E") */
	CHECK_STR(g->hid_str, "ACPI0013");
	REQUIRE_EQ(g->crs_len, 9 + 2);
	CHECK_EQ(g->crs[0], 0x89);
	CHECK_EQ(g->crs[3], 0x01); /* consumer, level, active high, exclusive */
	CHECK_EQ(le32(g->crs + 5), X86_IRQ_GED);
	REQUIRE_EQ(w->nregions, 1);
	CHECK_STR(w->regions[0].path, "\\_SB_.GED_.GDRG");
	CHECK_EQ(w->regions[0].space, 0);
	CHECK_EQ(w->regions[0].offset, X86_GED_ADDR);
	CHECK_EQ(w->regions[0].len, 16);
	/* _INI reads the acknowledge register (0, no effect): the guest maps
	 * the window at boot, not at its first event */
	int ini = find_method(w, "\\_SB_.GED_._INI");
	REQUIRE(ini >= 0);
	CHECK_EQ(w->methods[ini].nargs, 0);
	static const uint8_t ack[] = {0x70, 'G', 'A', 'C', 'K', 0x60};
	CHECK_EQ(w->methods[ini].len, sizeof(ack));
	CHECK(!memcmp(w->methods[ini].body, ack, sizeof(ack)));
	int evt = find_method(w, "\\_SB_.GED_._EVT");
	REQUIRE(evt >= 0);
	CHECK_EQ(w->methods[evt].nargs, 1);
	const uint8_t *b = w->methods[evt].body;
	size_t bl = w->methods[evt].len;
	static const uint8_t store[] = {0x70, 'G', 'E', 'V', 'T', 0x60};
	CHECK(bl > sizeof(store) && !memcmp(b, store, sizeof(store)));
	static const uint8_t pwrb[] = {0x86, '\\', 0x2e, '_', 'S',  'B', '_',
				       'P',  'W',  'R',	 'B', 0x0a, 0x80};
	static const uint8_t slpb[] = {0x86, '\\', 0x2e, '_', 'S',  'B', '_',
				       'S',  'L',  'P',	 'B', 0x0a, 0x80};
	CHECK(memmem(b, bl, pwrb, sizeof(pwrb)) != NULL);
	CHECK(memmem(b, bl, slpb, sizeof(slpb)) != NULL);
	for (unsigned n = 0; n < 8; n++) {
		char path[32], call[5];
		snprintf(path, sizeof(path), "\\_SB_.GED_.G%03X", n);
		snprintf(call, sizeof(call), "G%03X", n);
		int m = find_method(w, path);
		if (m < 0) {
			TEST_FAIL("no %s", path);
			continue;
		}
		/* Store (n, GACK) */
		uint8_t want[7] = {0x70, 0, 'G', 'A', 'C', 'K'};
		size_t wl = 6;
		if (n > 1) {
			want[1] = 0x0a;
			want[2] = (uint8_t)n;
			memcpy(want + 3, "GACK", 4);
			wl = 7;
		} else {
			want[1] = (uint8_t)n; /* ZeroOp, OneOp */
		}
		CHECK_EQ(w->methods[m].len, wl);
		CHECK(!memcmp(w->methods[m].body, want, wl));
		CHECK(memmem(b, bl, call, 4) != NULL); /* _EVT calls it */
	}
	CHECK_EQ(find_method(w, "\\_SB_.GED_.G008"), -1);
	free(w);

	/* hotplug slots: a container of LNRO0005 devices whose _STA reads the
	 * GED's slot register; the hotplug event is a bus check on it */
	ged.nslots = 2;
	ged.slots[0].mmio_base = 0xd0003000;
	ged.slots[0].mmio_size = 0x1000;
	ged.slots[0].gsi = 19;
	ged.slots[1].mmio_base = 0xd0004000;
	ged.slots[1].mmio_size = 0x1000;
	ged.slots[1].gsi = 20;
	if (vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err) < 0)
		TEST_FAIL("%s", err.msg);
	check_table(buf, lay.dsdt, "DSDT", &len);
	w = calloc(1, sizeof(*w));
	walk_terms(w, buf + lay.dsdt + 36, len - 36, "", NULL);
	CHECK(!w->bad);
	struct found_dev *hpb = find_dev(w, "\\_SB_.HPB_"), *s1 = find_dev(w, "\\_SB_.HPB_.S001");
	REQUIRE(hpb && s1);
	CHECK_STR(hpb->hid_str, "ACPI0004");
	CHECK_STR(s1->hid_str, "LNRO0005");
	REQUIRE_EQ(s1->crs_len, 12 + 9 + 2);
	CHECK_EQ(le32(s1->crs + 4), 0xd0004000);
	CHECK_EQ(le32(s1->crs + 12 + 5), 20);
	int sta = find_method(w, "\\_SB_.HPB_.S001._STA");
	REQUIRE(sta >= 0);
	static const char gslt[] = "GED_GSLT";
	CHECK(memmem(w->methods[sta].body, w->methods[sta].len, gslt, 8) != NULL);
	evt = find_method(w, "\\_SB_.GED_._EVT");
	REQUIRE(evt >= 0);
	static const uint8_t buscheck[] = {0x86, '\\', 0x2e, '_', 'S', 'B',
					   '_',	 'H',  'P',  'B', '_', 0x00};
	CHECK(memmem(w->methods[evt].body, w->methods[evt].len, buscheck, sizeof(buscheck)) !=
	      NULL);
	free(w);

	/* MADT: the IRQ 0 override and the GED's, level and active high */
	check_table(buf, lay.madt, "APIC", &len);
	unsigned isos = 0;
	for (size_t off = 44; off < len;) {
		const uint8_t *e = buf + lay.madt + off;
		REQUIRE(e[1] >= 2 && off + e[1] <= len);
		if (e[0] == 2 && e[3] == X86_IRQ_GED) {
			CHECK_EQ(le32(e + 4), X86_IRQ_GED);
			CHECK_EQ(e[8] | e[9] << 8, 0xd);
		}
		isos += e[0] == 2;
		off += e[1];
	}
	CHECK_EQ(isos, 2);

	ged.ngpe = 25;
	CHECK_ERR(vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err), -EINVAL);
	free(buf);
}

/* The VM Generation ID: \_SB.VGEN with the ids Linux's vmgenid driver
 * matches and ADDR (low, high) of the 16 bytes; the GED's _EVT notifies it
 * on GED_EV_VMGENID. */
TEST(vmm_acpi_vmgenid_device_and_its_notify)
{
	struct vmm_acpi_config cfg = config(1);
	struct vmm_acpi_ged ged = {
	    .mmio_base = X86_GED_ADDR, .gsi = X86_IRQ_GED, .ngpe = 2, .vmgenid = true};
	cfg.ged = &ged;
	cfg.vmgenid_addr = 0x1234567000ull;
	uint8_t *buf = calloc(1, X86_ACPI_SIZE);
	REQUIRE(buf);
	struct vmm_acpi_layout lay;
	struct ember_error err = {0};
	if (vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err) < 0)
		TEST_FAIL("%s", err.msg);
	size_t len;
	check_table(buf, lay.dsdt, "DSDT", &len);
	struct walk *w = calloc(1, sizeof(*w));
	walk_terms(w, buf + lay.dsdt + 36, len - 36, "", NULL);
	CHECK(!w->bad);
	struct found_dev *v = find_dev(w, "\\_SB_.VGEN");
	REQUIRE(v);
	CHECK_STR(v->hid_str, "VMGENCTR");
	const uint8_t *d = buf + lay.dsdt;
	CHECK(memmem(d, len, "VM_GEN_COUNTER", 15) != NULL); /* the _CID, NUL included */
	/* Name (ADDR, Package (2) { 0x34567000, 0x12 }) */
	static const uint8_t addr[] = {0x08, 'A',  'D',	 'D',  'R',  0x12, 0x09, 0x02,
				       0x0c, 0x00, 0x70, 0x56, 0x34, 0x0a, 0x12};
	CHECK(memmem(d, len, addr, sizeof(addr)) != NULL);
	int evt = find_method(w, "\\_SB_.GED_._EVT");
	REQUIRE(evt >= 0);
	/* If (And (Local0, 8)) { Notify (\_SB.VGEN, 0x80) } */
	static const uint8_t notify[] = {0x86, '\\', 0x2e, '_', 'S',  'B', '_',
					 'V',  'G',  'E',  'N', 0x0a, 0x80};
	CHECK(memmem(w->methods[evt].body, w->methods[evt].len, notify, sizeof(notify)) != NULL);
	/* first, right after the read: If (LEqual (Local0, 8)) { Notify (\_SB.VGEN,
	 * 0x80); Return (Zero) }, a lone VMGENID event tests no other bit */
	static const uint8_t fast[] = {0xa0, 0x14, 0x93, 0x60, 0x0a, 0x08, 0x86,
				       '\\', 0x2e, '_',	 'S',  'B',  '_',  'V',
				       'G',  'E',  'N',	 0x0a, 0x80, 0xa4, 0x00};
	REQUIRE(w->methods[evt].len > 6 + sizeof(fast));
	CHECK(!memcmp(w->methods[evt].body + 6, fast, sizeof(fast)));
	/* without the device nothing names it */
	cfg.vmgenid_addr = 0;
	ged.vmgenid = false;
	if (vmm_acpi_build(&cfg, buf, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, &err) < 0)
		TEST_FAIL("%s", err.msg);
	check_table(buf, lay.dsdt, "DSDT", &len);
	CHECK(memmem(buf + lay.dsdt, len, "VGEN", 4) == NULL);
	free(w);
	free(buf);
}
