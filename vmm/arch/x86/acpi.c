/* vmm/arch/x86/acpi.c - lays out RSDP, XSDT, a hardware-reduced FADT, MADT and a DSDT of the board's devices. */
#include "acpi.h"
#include "aml.h"
#include "../../internal.h"

#include "../../../devices/ged.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define OEM_ID	    "EMBER "
#define CREATOR_ID  "EMBR"
#define CREATOR_REV 1
#define HDR_LEN	    36

/* FADT (ACPI 6.5 table 5.9): revision 6, minor 5, 276 bytes */
#define FADT_LEN		276
#define FADT_REV		6
#define FADT_MINOR		5
#define FADT_OFF_DSDT		40
#define FADT_OFF_IAPC_BOOT_ARCH 109
#define FADT_OFF_CENTURY	108
#define FADT_OFF_FLAGS		112
#define FADT_OFF_RESET_REG	116
#define FADT_OFF_RESET_VALUE	128
#define FADT_OFF_MINOR		131
#define FADT_OFF_X_DSDT		140
#define FADT_OFF_SLEEP_CONTROL	244
#define FADT_OFF_SLEEP_STATUS	256
#define FADT_OFF_HYPERVISOR_ID	268
#define FADT_F_WBINVD		(1u << 0)
#define FADT_F_PWR_BUTTON	(1u << 4)
#define FADT_F_SLP_BUTTON	(1u << 5)
#define FADT_F_RESET_REG_SUP	(1u << 10)
#define FADT_F_HW_REDUCED_ACPI	(1u << 20)

/* MADT (ACPI 6.5 5.2.12) */
#define MADT_REV	 5
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC	 0
#define MADT_IOAPIC	 1
#define MADT_ISO	 2
#define MADT_LAPIC_NMI	 4

uint8_t vmm_acpi_checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev, const char *table_id)
{
	memcpy(t, sig, 4);
	vmm_put32(t + 4, len);
	t[8] = rev;
	t[9] = 0; /* checksum, set last */
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, table_id, 8);
	vmm_put32(t + 24, 1); /* OEM revision */
	memcpy(t + 28, CREATOR_ID, 4);
	vmm_put32(t + 32, CREATOR_REV);
}

static void finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = (uint8_t)(0 - vmm_acpi_checksum(t, len));
}

/* Generic Address Structure: one byte-wide I/O port. */
static void gas_io8(uint8_t *g, uint16_t port)
{
	g[0] = 1; /* SystemIO */
	g[1] = 8; /* bit width */
	g[2] = 0; /* bit offset */
	g[3] = 1; /* byte access */
	vmm_put64(g + 4, port);
}

/* A named device with an EISA _HID and _UID 0 (the buttons). */
static void button(struct aml *a, const char *name, const char *hid)
{
	size_t d = aml_device_begin(a, name);
	aml_name(a, "_HID");
	aml_eisaid(a, hid);
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_end(a, d);
}

/* If (And (Local0, bit)) { ...: the caller appends the body and aml_end. */
static size_t if_event(struct aml *a, uint32_t bit)
{
	size_t m = aml_if_begin(a);
	aml_op(a, AML_AND);
	aml_op(a, AML_LOCAL0);
	aml_integer(a, bit);
	aml_op(a, AML_NULL_NAME);
	return m;
}

static void notify(struct aml *a, const char *path, uint8_t value)
{
	aml_op(a, AML_NOTIFY);
	aml_namestring(a, path);
	aml_integer(a, value);
}

/* GPE-style event n's handler: Method (Gnnn) { Store (n, GACK) } */
static void gpe_name(char out[5], unsigned n)
{
	static const char hex[] = "0123456789ABCDEF";
	out[0] = 'G';
	out[1] = hex[(n >> 8) & 15];
	out[2] = hex[(n >> 4) & 15];
	out[3] = hex[n & 15];
	out[4] = 0;
}

/* Name (_CRS, the resource template r), r ended here and freed. */
static void name_crs(struct aml *a, struct aml *r)
{
	aml_res_end(r);
	if (!aml_ok(r))
		a->error = true;
	aml_name(a, "_CRS");
	aml_buffer(a, r->buf, r->len);
	aml_free(r);
}

/* Inside \_SB: the buttons and the Generic Event Device (acpi.h). The
 * register offsets and event bits are devices/ged.h's. */
static void build_ged(const struct vmm_acpi_ged *g, struct aml *a)
{
	button(a, "PWRB", "PNP0C0C");
	button(a, "SLPB", "PNP0C0E");
	size_t d = aml_device_begin(a, "GED_");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0013");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	struct aml r;
	aml_init(&r);
	aml_res_irq(&r, g->gsi, true, false);
	name_crs(a, &r);
	aml_opregion(a, "GDRG", AML_SPACE_MEMORY, g->mmio_base, GED_WINDOW);
	size_t f = aml_field_begin(a, "GDRG", AML_FIELD_DWORD);
	aml_field_unit(a, "GEVT", 32);
	aml_field_unit(a, "GACK", 32);
	aml_field_unit(a, "GSLT", 32);
	aml_field_unit(a, "GEJC", 32);
	aml_end(a, f);
	/* _INI (run at boot): one read of the acknowledge register, which reads
	 * 0 and does nothing, so that the guest maps the register window then
	 * and keeps the mapping (Linux: ACPICA's memory handler). Its first
	 * event is often a restore's VM Generation ID: without it, that
	 * event's handler maps the window first (ioremap: a page-table update
	 * and a memtype check, milliseconds under nested TCG) while the guest's
	 * RNG waits for its reseed. */
	size_t ini = aml_method_begin(a, "_INI", 0);
	aml_op(a, AML_STORE);
	aml_namestring(a, "GACK");
	aml_op(a, AML_LOCAL0);
	aml_end(a, ini);
	for (unsigned n = 0; n < g->ngpe; n++) {
		char name[5];
		gpe_name(name, n);
		size_t m = aml_method_begin(a, name, 0);
		aml_op(a, AML_STORE);
		aml_integer(a, n);
		aml_namestring(a, "GACK");
		aml_end(a, m);
	}
	/* _EVT(GSI): one read of the event register (it clears it), then
	 * every event it holds */
	size_t m = aml_method_begin(a, "_EVT", 1);
	aml_op(a, AML_STORE);
	aml_namestring(a, "GEVT");
	aml_op(a, AML_LOCAL0);
	if (g->vmgenid) {
		/* a restore's event, usually alone: notify and return, without
		 * testing every other bit (the guest's RNG waits for the reseed) */
		size_t only = aml_if_begin(a);
		aml_op(a, AML_LEQUAL);
		aml_op(a, AML_LOCAL0);
		aml_integer(a, GED_EV_VMGENID);
		notify(a, "\\_SB_.VGEN", 0x80);
		aml_return(a);
		aml_integer(a, 0);
		aml_end(a, only);
	}
	size_t i = if_event(a, GED_EV_POWER);
	notify(a, "\\_SB_.PWRB", 0x80);
	aml_end(a, i);
	i = if_event(a, GED_EV_SLEEP);
	notify(a, "\\_SB_.SLPB", 0x80);
	aml_end(a, i);
	if (g->vmgenid) { /* a restore changed the ID: the guest's driver reseeds */
		i = if_event(a, GED_EV_VMGENID);
		notify(a, "\\_SB_.VGEN", 0x80);
		aml_end(a, i);
	}
	for (unsigned n = 0; n < g->ngpe; n++) {
		char name[5];
		gpe_name(name, n);
		i = if_event(a, GED_EV_GPE(n));
		aml_namestring(a, name); /* a method call with no arguments */
		aml_end(a, i);
	}
	if (g->nslots) {
		i = if_event(a, GED_EV_HOTPLUG);
		notify(a, "\\_SB_.HPB_", 0); /* bus check */
		aml_end(a, i);
	}
	aml_end(a, m);
	aml_end(a, d);
	if (!g->nslots)
		return;
	d = aml_device_begin(a, "HPB_");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0004");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	for (unsigned s = 0; s < g->nslots; s++) {
		static const char hex[] = "0123456789ABCDEF";
		char name[5] = {'S', '0', hex[(s >> 4) & 15], hex[s & 15], 0};
		size_t sd = aml_device_begin(a, name);
		aml_name(a, "_HID");
		aml_string(a, "LNRO0005");
		aml_name(a, "_UID");
		aml_integer(a, 0x100 + s);
		aml_init(&r);
		aml_res_mem32(&r, g->slots[s].mmio_base, g->slots[s].mmio_size, true);
		aml_res_irq(&r, g->slots[s].gsi, false, false);
		name_crs(a, &r);
		/* Method (_STA) { If (And (GSLT, 1 << s)) { Return (0x0f) } Return (0) } */
		size_t sm = aml_method_begin(a, "_STA", 0);
		size_t si = aml_if_begin(a);
		aml_op(a, AML_AND);
		aml_namestring(a, "\\_SB_.GED_.GSLT");
		aml_integer(a, 1u << s);
		aml_op(a, AML_NULL_NAME);
		aml_return(a);
		aml_integer(a, 0x0f);
		aml_end(a, si);
		aml_return(a);
		aml_integer(a, 0);
		aml_end(a, sm);
		aml_end(a, sd);
	}
	aml_end(a, d);
}

static int build_dsdt(const struct vmm_acpi_config *cfg, struct aml *a, struct ember_error *err)
{
	size_t sb = aml_scope_begin(a, "\\_SB_");
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		static const char hex[] = "0123456789ABCDEF";
		char name[5] = {'C', hex[(i >> 8) & 15], hex[(i >> 4) & 15], hex[i & 15], 0};
		size_t d = aml_device_begin(a, name);
		aml_name(a, "_HID");
		aml_string(a, "ACPI0007");
		aml_name(a, "_UID");
		aml_integer(a, i);
		aml_end(a, d);
	}
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		const struct vmm_acpi_device *dev = &cfg->devices[i];
		if (!dev->hid || dev->nres > VMM_ACPI_MAX_RES)
			return vmm_errf(err, -EINVAL,
					"ACPI: device %u has no _HID or too many "
					"resources",
					i);
		size_t d = aml_device_begin(a, dev->name);
		aml_name(a, "_HID");
		if (aml_is_eisaid(dev->hid))
			aml_eisaid(a, dev->hid);
		else
			aml_string(a, dev->hid);
		aml_name(a, "_UID");
		aml_integer(a, dev->uid);
		if (dev->nres) {
			struct aml r;
			aml_init(&r);
			for (unsigned k = 0; k < dev->nres; k++) {
				const struct vmm_acpi_res *res = &dev->res[k];
				switch (res->kind) {
				case VMM_ACPI_RES_IO:
					if (res->base > 0xffff || res->len == 0 || res->len > 0xff)
						r.error = true;
					aml_res_io(&r, (uint16_t)res->base, (uint8_t)res->len);
					break;
				case VMM_ACPI_RES_MEM32:
					aml_res_mem32(&r, res->base, res->len, true);
					break;
				case VMM_ACPI_RES_IRQ:
					aml_res_irq(&r, res->base, res->level, res->active_low);
					break;
				default:
					r.error = true;
				}
			}
			aml_res_end(&r);
			bool ok = aml_ok(&r);
			aml_name(a, "_CRS");
			aml_buffer(a, r.buf, r.len);
			aml_free(&r);
			if (!ok)
				return vmm_errf(err, -EINVAL,
						"ACPI: device %.4s has a bad resource", dev->name);
		}
		aml_end(a, d);
		if (!aml_ok(a))
			return vmm_errf(err, -EINVAL,
					"ACPI: device %u (name \"%.4s\", _HID \"%s\") "
					"cannot be encoded",
					i, dev->name, dev->hid);
	}
	if (cfg->vmgenid_addr) {
		/* The VM Generation ID (Microsoft's "Virtual Machine Generation ID"
		 * paper; Linux drivers/virt/vmgenid.c matches the _HID or the
		 * _CID and reads ADDR: a package of the 16-byte ID's guest
		 * physical address, low and high 32 bits). */
		size_t d = aml_device_begin(a, "VGEN");
		aml_name(a, "_HID");
		aml_string(a, "VMGENCTR");
		aml_name(a, "_CID");
		aml_string(a, "VM_GEN_COUNTER");
		aml_name(a, "_DDN");
		aml_string(a, "VM_Gen_Counter");
		aml_name(a, "ADDR");
		size_t pk = aml_package_begin(a, 2);
		aml_integer(a, cfg->vmgenid_addr & 0xffffffffu);
		aml_integer(a, cfg->vmgenid_addr >> 32);
		aml_end(a, pk);
		aml_end(a, d);
	}
	if (cfg->ged)
		build_ged(cfg->ged, a);
	aml_end(a, sb);
	/* \_S5: soft-off, entered by writing SLP_TYP to the sleep control
	 * register (hardware-reduced ACPI). */
	aml_name(a, "\\_S5_");
	size_t p = aml_package_begin(a, 4);
	aml_integer(a, cfg->s5_sleep_type);
	aml_integer(a, cfg->s5_sleep_type);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, p);
	if (!aml_ok(a))
		return vmm_errf(err, -ENOMEM, "ACPI: cannot encode the DSDT");
	return 0;
}

int vmm_acpi_build(const struct vmm_acpi_config *cfg, uint8_t *buf, size_t cap, uint64_t base_gpa,
		   struct vmm_acpi_layout *layout, struct ember_error *err)
{
	if (!cfg || !buf || !layout || cfg->ncpus == 0 || cfg->ncpus > EMBER_MAX_CPUS ||
	    (cfg->ndevices && !cfg->devices))
		return vmm_errf(err, -EINVAL, "ACPI: bad configuration");
	if (cfg->ged && (cfg->ged->ngpe > GED_MAX_GPE || cfg->ged->gsi > 0xff ||
			 cfg->ged->nslots > VMM_ACPI_MAX_SLOTS))
		return vmm_errf(err, -EINVAL, "ACPI: bad Generic Event Device");
	if (base_gpa & 15 || base_gpa + cap > (1ull << 32))
		return vmm_errf(err, -EINVAL,
				"ACPI: tables at %#llx must be 16-byte aligned below 4 GiB",
				(unsigned long long)base_gpa);
	memset(layout, 0, sizeof(*layout));

	struct aml dsdt;
	aml_init(&dsdt);
	int r = build_dsdt(cfg, &dsdt, err);
	if (r < 0) {
		aml_free(&dsdt);
		return r;
	}

	size_t xsdt_len = HDR_LEN + 2 * 8;
	bool ged_iso = cfg->ged && cfg->ged->gsi < 16;
	size_t madt_len = HDR_LEN + 8 + 8 * (size_t)cfg->ncpus + 12 + 10 + (ged_iso ? 10 : 0) + 6;
	size_t dsdt_len = HDR_LEN + dsdt.len;
	size_t off = 0;
	layout->rsdp = off;
	off = vmm_align_up(off + 36, 16);
	layout->xsdt = off;
	off = vmm_align_up(off + xsdt_len, 16);
	layout->fadt = off;
	off = vmm_align_up(off + FADT_LEN, 16);
	layout->madt = off;
	off = vmm_align_up(off + madt_len, 16);
	layout->dsdt = off;
	off += dsdt_len;
	layout->size = off;
	if (off > cap || dsdt_len > UINT32_MAX) {
		aml_free(&dsdt);
		return vmm_errf(err, -E2BIG, "ACPI: the tables need %zu bytes, %zu available", off,
				cap);
	}
	memset(buf, 0, off);

	/* DSDT */
	uint8_t *t = buf + layout->dsdt;
	header(t, "DSDT", (uint32_t)dsdt_len, 2, "EMBRDSDT");
	memcpy(t + HDR_LEN, dsdt.buf, dsdt.len);
	finish(t, (uint32_t)dsdt_len);
	aml_free(&dsdt);

	/* MADT */
	t = buf + layout->madt;
	header(t, "APIC", (uint32_t)madt_len, MADT_REV, "EMBRMADT");
	vmm_put32(t + 36, cfg->lapic_addr);
	vmm_put32(t + 40, MADT_PCAT_COMPAT);
	uint8_t *e = t + 44;
	for (unsigned i = 0; i < cfg->ncpus; i++, e += 8) {
		e[0] = MADT_LAPIC;
		e[1] = 8;
		e[2] = (uint8_t)i;   /* ACPI processor UID */
		e[3] = (uint8_t)i;   /* APIC ID */
		vmm_put32(e + 4, 1); /* enabled */
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = cfg->ioapic_id;
	vmm_put32(e + 4, cfg->ioapic_addr);
	vmm_put32(e + 8, 0); /* GSI base */
	e += 12;
	/* ISA IRQ 0 (the PIT) is wired to IOAPIC pin 2, as on a PC and in KVM */
	e[0] = MADT_ISO;
	e[1] = 10;
	e[2] = 0; /* ISA bus */
	e[3] = 0; /* IRQ 0 */
	vmm_put32(e + 4, 2);
	vmm_put16(e + 8, 0); /* conforms to the bus */
	e += 10;
	if (ged_iso) {
		/* the GED's legacy GSI is level-triggered, active high (an ISA
		 * IRQ is edge by default) */
		e[0] = MADT_ISO;
		e[1] = 10;
		e[2] = 0;
		e[3] = (uint8_t)cfg->ged->gsi;
		vmm_put32(e + 4, cfg->ged->gsi);
		vmm_put16(e + 8, 0x1 | 0x3 << 2); /* active high, level */
		e += 10;
	}
	/* LINT1 of every processor is NMI */
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = 0xff;
	vmm_put16(e + 3, 0x5); /* active high, edge */
	e[5] = 1;
	finish(t, (uint32_t)madt_len);

	/* FADT: hardware-reduced, buttons as control-method devices, reset
	 * and sleep registers as I/O ports */
	t = buf + layout->fadt;
	header(t, "FACP", FADT_LEN, FADT_REV, "EMBRFADT");
	uint64_t dsdt_gpa = base_gpa + layout->dsdt;
	vmm_put32(t + FADT_OFF_DSDT, (uint32_t)dsdt_gpa);
	t[FADT_OFF_CENTURY] = cfg->rtc_century;
	vmm_put16(t + FADT_OFF_IAPC_BOOT_ARCH, cfg->iapc_boot_arch);
	vmm_put32(t + FADT_OFF_FLAGS, FADT_F_WBINVD | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
					  FADT_F_HW_REDUCED_ACPI |
					  (cfg->reset_port ? FADT_F_RESET_REG_SUP : 0));
	if (cfg->reset_port) {
		gas_io8(t + FADT_OFF_RESET_REG, cfg->reset_port);
		t[FADT_OFF_RESET_VALUE] = cfg->reset_value;
	}
	t[FADT_OFF_MINOR] = FADT_MINOR;
	vmm_put64(t + FADT_OFF_X_DSDT, dsdt_gpa);
	if (cfg->sleep_control_port && cfg->sleep_status_port) {
		gas_io8(t + FADT_OFF_SLEEP_CONTROL, cfg->sleep_control_port);
		gas_io8(t + FADT_OFF_SLEEP_STATUS, cfg->sleep_status_port);
	}
	memcpy(t + FADT_OFF_HYPERVISOR_ID, "EMBERVMM", 8);
	finish(t, FADT_LEN);

	/* XSDT */
	t = buf + layout->xsdt;
	header(t, "XSDT", (uint32_t)xsdt_len, 1, "EMBRXSDT");
	vmm_put64(t + HDR_LEN, base_gpa + layout->fadt);
	vmm_put64(t + HDR_LEN + 8, base_gpa + layout->madt);
	finish(t, (uint32_t)xsdt_len);

	/* RSDP (ACPI 2.0+, 36 bytes) */
	t = buf + layout->rsdp;
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, OEM_ID, 6);
	t[15] = 2;	       /* revision */
	vmm_put32(t + 16, 0);  /* no RSDT */
	vmm_put32(t + 20, 36); /* length */
	vmm_put64(t + 24, base_gpa + layout->xsdt);
	t[8] = (uint8_t)(0 - vmm_acpi_checksum(t, 20));
	t[32] = (uint8_t)(0 - vmm_acpi_checksum(t, 36));
	return 0;
}
