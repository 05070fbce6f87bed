/* lib/hv/state.c - whole saved state: the blob container, the VM's platform state, the dirty log, the CPU identity. */
#include "hv_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ container */

#define HDR_SIZE  32
#define SEC_HDR	  16
#define KIND_VCPU 1
#define KIND_VM	  2
/* A blob bigger than this is refused (the largest real one, a vCPU with a
 * 12 KiB XSAVE area and a few hundred MSRs, is under 32 KiB). */
#define BLOB_MAX (16u << 20)

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	static uint32_t table[256];
	static bool ready;
	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
	}
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

static uint32_t tag_of(const char tag[4])
{
	return get_u32((const uint8_t *)tag);
}

static bool sw_reserve(struct ehvi_sw *w, size_t more)
{
	if (w->err)
		return false;
	if (more > BLOB_MAX || w->len + more > BLOB_MAX) {
		w->err = -E2BIG;
		return false;
	}
	if (w->len + more <= w->cap)
		return true;
	size_t cap = w->cap ? w->cap : 4096;
	while (cap < w->len + more)
		cap *= 2;
	uint8_t *b = realloc(w->buf, cap);
	if (!b) {
		w->err = -ENOMEM;
		return false;
	}
	w->buf = b;
	w->cap = cap;
	return true;
}

void ehvi_sw_section(struct ehvi_sw *w, const char tag[4], uint32_t version, const void *data,
		     size_t len)
{
	size_t padded = (len + 7) & ~(size_t)7;
	if (w->nsections >= EHVI_MAX_SECTIONS) {
		if (!w->err)
			w->err = -E2BIG;
		return;
	}
	if (!sw_reserve(w, SEC_HDR + padded))
		return;
	uint8_t *p = w->buf + w->len;
	memset(p, 0, SEC_HDR + padded);
	put_u32(p, tag_of(tag));
	put_u32(p + 4, version);
	put_u32(p + 8, (uint32_t)len);
	if (len)
		memcpy(p + SEC_HDR, data, len);
	w->len += SEC_HDR + padded;
	w->nsections++;
}

static void sw_begin(struct ehvi_sw *w)
{
	memset(w, 0, sizeof(*w));
	if (sw_reserve(w, HDR_SIZE)) {
		memset(w->buf, 0, HDR_SIZE);
		w->len = HDR_SIZE;
	}
}

/* Fills the header and hands the buffer over (or frees it on error). */
static int sw_finish(struct ehvi_sw *w, unsigned kind, enum ehv_backend backend, void **buf,
		     size_t *len)
{
	if (w->err) {
		free(w->buf);
		return w->err;
	}
	uint8_t *h = w->buf;
	put_u32(h, EHV_STATE_MAGIC);
	put_u16(h + 4, EHV_STATE_VERSION);
	put_u16(h + 6, (uint16_t)kind);
	put_u32(h + 8, (uint32_t)backend);
	put_u32(h + 12, w->nsections);
	put_u64(h + 16, w->len);
	put_u32(h + 24, crc32_ieee(h + HDR_SIZE, w->len - HDR_SIZE));
	put_u32(h + 28, 0);
	*buf = w->buf;
	*len = w->len;
	return 0;
}

const struct ehvi_section *ehvi_find(const struct ehvi_sections *secs, const char tag[4])
{
	uint32_t t = tag_of(tag);
	for (unsigned i = 0; i < secs->n; i++)
		if (secs->s[i].tag == t)
			return &secs->s[i];
	return NULL;
}

int ehvi_refuse(const struct ehvi_sections *secs, int err, const char *fmt, ...)
{
	if (secs->detail) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(secs->detail, EHVI_DETAIL_MAX, fmt, ap);
		va_end(ap);
	}
	return err;
}

static void tag_text(uint32_t tag, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(tag >> (8 * i));
		out[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	out[4] = 0;
}

/* Checks the header and splits the sections; -EINVAL with a detail. */
static int parse(const void *buf, size_t len, unsigned kind, enum ehv_backend backend,
		 struct ehvi_sections *secs)
{
	const uint8_t *p = buf;
	secs->n = 0;
	if (len < HDR_SIZE)
		return ehvi_refuse(secs, -EINVAL, "truncated: %zu bytes, no room for the header",
				   len);
	if (get_u32(p) != EHV_STATE_MAGIC)
		return ehvi_refuse(secs, -EINVAL, "not a saved state (bad magic 0x%08x)",
				   get_u32(p));
	if (get_u16(p + 4) != EHV_STATE_VERSION)
		return ehvi_refuse(secs, -EINVAL, "format version %u, this library reads %u",
				   get_u16(p + 4), EHV_STATE_VERSION);
	if (get_u16(p + 6) != kind)
		return ehvi_refuse(secs, -EINVAL, "a %s blob where a %s blob was expected",
				   get_u16(p + 6) == KIND_VM ? "VM" : "vCPU (or unknown)",
				   kind == KIND_VM ? "VM" : "vCPU");
	if (get_u32(p + 8) != (uint32_t)backend)
		return ehvi_refuse(secs, -EINVAL, "saved by the %s backend, restored on %s",
				   ehv_backend_name((enum ehv_backend)get_u32(p + 8)),
				   ehv_backend_name(backend));
	uint64_t total = get_u64(p + 16);
	if (total != len)
		return ehvi_refuse(secs, -EINVAL, "%s: the header says %llu bytes, got %zu",
				   total > len ? "truncated" : "trailing bytes",
				   (unsigned long long)total, len);
	if (get_u32(p + 24) != crc32_ieee(p + HDR_SIZE, len - HDR_SIZE))
		return ehvi_refuse(secs, -EINVAL, "corrupted: CRC-32 mismatch");
	uint32_t n = get_u32(p + 12);
	if (n > EHVI_MAX_SECTIONS)
		return ehvi_refuse(secs, -EINVAL, "%u sections, at most %u", n, EHVI_MAX_SECTIONS);
	size_t off = HDR_SIZE;
	for (uint32_t i = 0; i < n; i++) {
		if (len - off < SEC_HDR)
			return ehvi_refuse(secs, -EINVAL, "section %u runs past the end", i);
		const uint8_t *s = p + off;
		uint32_t slen = get_u32(s + 8);
		size_t padded = ((size_t)slen + 7) & ~(size_t)7;
		if (padded > len - off - SEC_HDR)
			return ehvi_refuse(secs, -EINVAL, "section %u runs past the end", i);
		struct ehvi_section sec = {get_u32(s), get_u32(s + 4), slen, s + SEC_HDR};
		char t[5];
		tag_text(sec.tag, t);
		for (unsigned j = 0; j < secs->n; j++)
			if (secs->s[j].tag == sec.tag)
				return ehvi_refuse(secs, -EINVAL, "duplicate section \"%s\"", t);
		secs->s[secs->n++] = sec;
		off += SEC_HDR + padded;
	}
	if (off != len)
		return ehvi_refuse(secs, -EINVAL, "%zu bytes after the last section", len - off);
	return 0;
}

/* ------------------------------------------------------------- vCPU */

int ehv_vcpu_save_state(struct ehv_vcpu *vcpu, void **buf, size_t *len)
{
	if (buf)
		*buf = NULL;
	if (!vcpu || !buf || !len)
		return -EINVAL;
	vcpu->detail[0] = 0;
	if (ehv_vcpu_has_pending_completion(vcpu)) {
		snprintf(vcpu->detail, sizeof(vcpu->detail),
			 "the last exit is not completed (ehv_vcpu_complete_pending)");
		return -EBUSY;
	}
	struct ehvi_sw w;
	sw_begin(&w);
	uint32_t id = vcpu->id;
	ehvi_sw_section(&w, "VCID", 1, &id, sizeof(id));
	int r = vcpu->ops->vcpu_save_state(vcpu, &w);
	if (r < 0) {
		free(w.buf);
		return r;
	}
	return sw_finish(&w, KIND_VCPU, vcpu->vm->backend, buf, len);
}

int ehv_vcpu_restore_state(struct ehv_vcpu *vcpu, const void *buf, size_t len)
{
	if (!vcpu || !buf)
		return -EINVAL;
	struct ehvi_sections *secs = calloc(1, sizeof(*secs));
	if (!secs)
		return -ENOMEM;
	secs->detail = vcpu->detail;
	vcpu->detail[0] = 0;
	int r = parse(buf, len, KIND_VCPU, vcpu->vm->backend, secs);
	const struct ehvi_section *id = r == 0 ? ehvi_find(secs, "VCID") : NULL;
	if (r == 0 && (!id || id->version != 1 || id->len != 4))
		r = ehvi_refuse(secs, -EINVAL, "the vCPU id section is missing or malformed");
	if (r == 0 && get_u32(id->data) != vcpu->id)
		r = ehvi_refuse(secs, -EINVAL, "saved from vCPU %u, restored into vCPU %u",
				get_u32(id->data), vcpu->id);
	if (r == 0)
		r = vcpu->ops->vcpu_restore_state(vcpu, secs);
	free(secs);
	return r;
}

const char *ehv_vcpu_state_detail(const struct ehv_vcpu *vcpu)
{
	return vcpu ? vcpu->detail : "";
}

/* --------------------------------------------------------------- VM */

/* "CLCK": version 1 without mono (16 bytes), version 2 with it: the host
 * time (ehvi_mono_ns) of the reading */
struct clock_sec {
	uint64_t ns;
	uint32_t flags, zero;
	int64_t mono;
};
#define CLOCK_SEC_V1 16u

int64_t ehvi_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ehvi_tsc_ref(struct ehv_vm *vm, struct ehvi_tsc_ref *ref)
{
	pthread_mutex_lock(&vm->plat_lock);
	if (!vm->has_tsc_ref) {
		vm->tsc_ref = *ref;
		vm->has_tsc_ref = true;
	}
	*ref = vm->tsc_ref;
	pthread_mutex_unlock(&vm->plat_lock);
}

bool ehvi_tsc_ref_get(struct ehv_vm *vm, struct ehvi_tsc_ref *ref)
{
	pthread_mutex_lock(&vm->plat_lock);
	bool has = vm->has_tsc_ref;
	if (has)
		*ref = vm->tsc_ref;
	pthread_mutex_unlock(&vm->plat_lock);
	return has;
}

static const char *const chip_tags[EHV_IRQCHIP_MAX + 1] = {"PICM", "PICS", "IOAP", "PIT2"};

/* Chips this VM has: the irqchips with the platform, the PIT with its flag. */
static bool vm_has_chip(struct ehv_vm *vm, unsigned chip)
{
	if (!atomic_load(&vm->platform))
		return false;
	return chip < EHV_IRQCHIP_MAX || (vm->platform_flags & EHV_PLATFORM_PIT);
}

int ehv_vm_save_state(struct ehv_vm *vm, void **buf, size_t *len)
{
	if (buf)
		*buf = NULL;
	if (!vm || !buf || !len)
		return -EINVAL;
	vm->detail[0] = 0;
	struct ehvi_sw w;
	sw_begin(&w);
	struct ehv_state_blob *st = malloc(sizeof(*st));
	if (!st) {
		free(w.buf);
		return -ENOMEM;
	}
	int r = 0;
	for (unsigned chip = 0; chip <= EHV_IRQCHIP_MAX && r == 0; chip++) {
		if (!vm_has_chip(vm, chip))
			continue;
		r = chip < EHV_IRQCHIP_MAX ? ehv_vm_get_irqchip(vm, chip, st)
					   : ehv_vm_get_pit(vm, st);
		if (r == 0)
			ehvi_sw_section(&w, chip_tags[chip], 1, st->data, st->size);
	}
	free(st);
	struct ehv_clock clk;
	int64_t t0 = ehvi_mono_ns();
	if (r == 0)
		r = ehv_vm_get_clock(vm, &clk);
	if (r < 0) {
		free(w.buf);
		return r;
	}
	/* when it was read: the middle of the call */
	struct clock_sec cs = {clk.ns, clk.flags, 0, t0 + (ehvi_mono_ns() - t0) / 2};
	ehvi_sw_section(&w, "CLCK", 2, &cs, sizeof(cs));
	return sw_finish(&w, KIND_VM, vm->backend, buf, len);
}

int ehv_vm_restore_state(struct ehv_vm *vm, const void *buf, size_t len)
{
	if (!vm || !buf)
		return -EINVAL;
	struct ehvi_sections *secs = calloc(1, sizeof(*secs));
	struct ehv_state_blob *st = calloc(EHV_IRQCHIP_MAX + 1, sizeof(*st));
	int r = -ENOMEM;
	if (!secs || !st)
		goto out;
	secs->detail = vm->detail;
	vm->detail[0] = 0;
	r = parse(buf, len, KIND_VM, vm->backend, secs);
	if (r < 0)
		goto out;
	/* check everything first: the chips the VM has and their sizes */
	for (unsigned chip = 0; chip <= EHV_IRQCHIP_MAX; chip++) {
		const struct ehvi_section *s = ehvi_find(secs, chip_tags[chip]);
		bool has = vm_has_chip(vm, chip);
		if (!s && !has)
			continue;
		if (!s || !has) {
			r = ehvi_refuse(secs, -EINVAL, "the saved VM %s a %s, this VM %s",
					s ? "has" : "has no", chip_tags[chip],
					has ? "has" : "has not");
			goto out;
		}
		/* the current state gives the size this VM's backend expects */
		r = chip < EHV_IRQCHIP_MAX ? ehv_vm_get_irqchip(vm, chip, &st[chip])
					   : ehv_vm_get_pit(vm, &st[chip]);
		if (r < 0)
			goto out;
		if (s->version != 1 || s->len != st[chip].size) {
			r = ehvi_refuse(
			    secs, -EINVAL,
			    "section %s: version %u, %u bytes; this host's is version 1, "
			    "%u bytes",
			    chip_tags[chip], s->version, s->len, st[chip].size);
			goto out;
		}
		memcpy(st[chip].data, s->data, s->len);
	}
	const struct ehvi_section *c = ehvi_find(secs, "CLCK");
	if (!c || !((c->version == 1 && c->len == CLOCK_SEC_V1) ||
		    (c->version == 2 && c->len == sizeof(struct clock_sec)))) {
		r = ehvi_refuse(secs, -EINVAL, "the clock section is missing or malformed");
		goto out;
	}
	if (secs->n != 1 + (unsigned)vm_has_chip(vm, 0) * 3 + (unsigned)vm_has_chip(vm, 3)) {
		r = ehvi_refuse(secs, -EINVAL, "unknown sections in a VM blob");
		goto out;
	}
	struct clock_sec cs = {0};
	memcpy(&cs, c->data, c->len);
	/* apply: the chips, then the clock */
	for (unsigned chip = 0; chip <= EHV_IRQCHIP_MAX && r == 0; chip++)
		if (vm_has_chip(vm, chip))
			r = chip < EHV_IRQCHIP_MAX ? ehv_vm_set_irqchip(vm, chip, &st[chip])
						   : ehv_vm_set_pit(vm, &st[chip]);
	if (r == 0) {
		struct ehv_clock clk = {cs.ns, 0};
		if (!(cs.flags & EHV_CLOCK_STABLE))
			clk.ns += EHV_CLOCK_UNSTABLE_MARGIN_NS;
		/* the clock as it was when the reference TSC was read, and as it
		 * is now that it runs again from there (hv.h) */
		struct ehvi_tsc_ref ref;
		if (c->version == 2 && ehvi_tsc_ref_get(vm, &ref) &&
		    llabs(ref.saved - cs.mono) <= EHVI_TSC_REF_MAX_NS) {
			int64_t d = ref.saved - cs.mono + (ehvi_mono_ns() - ref.restored);
			if (d >= 0 || (uint64_t)-d < clk.ns)
				clk.ns += (uint64_t)d;
		}
		r = ehv_vm_set_clock(vm, &clk);
	}
	if (r < 0 && !vm->detail[0])
		snprintf(vm->detail, sizeof(vm->detail),
			 "the hypervisor refused the saved state (%d): the VM is partly restored",
			 r);
out:
	free(secs);
	free(st);
	return r;
}

const char *ehv_vm_state_detail(const struct ehv_vm *vm)
{
	return vm ? vm->detail : "";
}

/* ------------------------------------------------------------ dirty log */

int ehv_vm_get_dirty_log(struct ehv_vm *vm, uint32_t slot, uint64_t *bitmap, size_t bytes)
{
	if (!vm || !bitmap || slot >= EHV_MAX_MEM_SLOTS)
		return -EINVAL;
	uint64_t size = vm->slots[slot].size;
	if (!size)
		return -ENOENT;
	if (!(vm->slots[slot].flags & EHV_MEM_LOG_DIRTY))
		return -EINVAL;
	uint64_t pages = size / 4096;
	if (bytes / 8 < (pages + 63) / 64)
		return -EINVAL;
	return vm->ops->vm_get_dirty_log(vm, slot, bitmap, pages);
}

/* ---------------------------------------------------------- CPU identity */

static uint64_t fnv1a(uint64_t h, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		h ^= (uint8_t)(v >> (8 * i));
		h *= 0x100000001b3ull;
	}
	return h;
}

int ehv_hypervisor_cpu_identity(struct ehv_hypervisor *hyp, char *buf, size_t len)
{
	if (!hyp || !buf)
		return -EINVAL;
	struct ehv_x86_cpuid_entry *e = calloc(EHV_CPUID_MAX_ENTRIES, sizeof(*e));
	if (!e)
		return -ENOMEM;
	int n = ehv_hypervisor_supported_cpuid(hyp, e, EHV_CPUID_MAX_ENTRIES);
	if (n < 0) {
		free(e);
		return n;
	}
	const struct ehv_x86_cpuid_entry *l0 = NULL, *l1 = NULL;
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < n; i++) {
		if (e[i].function == 0 && !l0)
			l0 = &e[i];
		if (e[i].function == 1 && !l1)
			l1 = &e[i];
		/* what names the host CPU the call ran on, not what it offers:
		 * leaf 1 EBX's initial APIC id (bits 31-24), leaves 0xB and 0x1F
		 * EDX's x2APIC id (KVM passes the caller's CPU's through: two
		 * CPUs of one host differed there in the sandbox), leaf
		 * 0x8000001E's extended APIC, core and node ids (AMD; zero in
		 * KVM's table since Linux 6.0) */
		uint32_t f = e[i].function, eax = e[i].eax, ebx = e[i].ebx, ecx = e[i].ecx,
			 edx = e[i].edx;
		if (f == 1)
			ebx &= 0x00ffffffu;
		if (f == 0xb || f == 0x1f)
			edx = 0;
		if (f == 0x8000001eu)
			eax = ebx = ecx = 0;
		h = fnv1a(h, f);
		h = fnv1a(h, e[i].index);
		h = fnv1a(h, e[i].flags);
		h = fnv1a(h, eax);
		h = fnv1a(h, ebx);
		h = fnv1a(h, ecx);
		h = fnv1a(h, edx);
	}
	int r = -ENODATA;
	if (l0 && l1) {
		char vendor[13];
		memcpy(vendor, &l0->ebx, 4);
		memcpy(vendor + 4, &l0->edx, 4);
		memcpy(vendor + 8, &l0->ecx, 4);
		vendor[12] = 0;
		for (int i = 0; i < 12; i++)
			if (vendor[i] < 0x20 || vendor[i] >= 0x7f)
				vendor[i] = '?';
		uint32_t a = l1->eax, base_fam = (a >> 8) & 0xf, fam = base_fam;
		uint32_t model = (a >> 4) & 0xf;
		if (base_fam == 0xf)
			fam += (a >> 20) & 0xff;
		if (base_fam == 0x6 || base_fam == 0xf)
			model |= ((a >> 16) & 0xf) << 4;
		int w = snprintf(buf, len, "%s family %u model %u stepping %u cpuid %016llx",
				 vendor, fam, model, a & 0xf, (unsigned long long)h);
		r = (w < 0 || (size_t)w >= len) ? -ERANGE : w;
	}
	free(e);
	return r;
}
