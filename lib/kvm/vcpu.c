/* lib/kvm/vcpu.c - vCPU ioctls, the kvm_run area, sync_regs and the coalesced MMIO ring. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int ekvm_vcpu_create(struct ekvm_vm *vm, unsigned long id, struct ekvm_vcpu **out)
{
	if (!vm || !out)
		return -EINVAL;
	*out = NULL;
	struct ekvm_vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	int fd = ekvm_ioctl_val(vm->fd, KVM_CREATE_VCPU, id);
	if (fd < 0) {
		free(v);
		return fd;
	}
	void *run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (run == MAP_FAILED) {
		int e = -errno;
		close(fd);
		free(v);
		return e;
	}
	v->fd = fd;
	v->id = id;
	v->run = run;
	v->run_size = (size_t)vm->run_size;
	v->vm = vm;
	long page = sysconf(_SC_PAGESIZE);
	size_t ring_off = (size_t)vm->coalesced_page * (size_t)page;
	if (vm->coalesced_page > 0 && ring_off + (size_t)page <= v->run_size) {
		v->ring = (struct kvm_coalesced_mmio_ring *)((char *)run + ring_off);
		v->ring_max = (uint32_t)(((size_t)page - sizeof(*v->ring)) /
					 sizeof(struct kvm_coalesced_mmio));
	}
	*out = v;
	return 0;
}

void ekvm_vcpu_destroy(struct ekvm_vcpu *vcpu)
{
	if (!vcpu)
		return;
	munmap(vcpu->run, vcpu->run_size);
	close(vcpu->fd);
	free(vcpu);
}

int ekvm_vcpu_fd(const struct ekvm_vcpu *vcpu)
{
	return vcpu ? vcpu->fd : -EINVAL;
}

unsigned long ekvm_vcpu_id(const struct ekvm_vcpu *vcpu)
{
	return vcpu ? vcpu->id : 0;
}

struct kvm_run *ekvm_vcpu_run_area(struct ekvm_vcpu *vcpu)
{
	return vcpu ? vcpu->run : NULL;
}

int ekvm_vcpu_ioctl_raw(struct ekvm_vcpu *vcpu, unsigned long req, void *arg)
{
	if (!vcpu)
		return -EINVAL;
	return ekvm_ioctl_fd(vcpu->fd, req, arg);
}

/* Typed get/set pairs: one line each, all through the size-checked macro. */
#define VCPU_GET(name, req, type)                                   \
	int ekvm_vcpu_get_##name(struct ekvm_vcpu *vcpu, type *arg) \
	{                                                           \
		if (!vcpu || !arg)                                  \
			return -EINVAL;                             \
		return EKVM_FD_IOCTL(vcpu->fd, req, arg);           \
	}
#define VCPU_SET(name, req, type)                                         \
	int ekvm_vcpu_set_##name(struct ekvm_vcpu *vcpu, const type *arg) \
	{                                                                 \
		if (!vcpu || !arg)                                        \
			return -EINVAL;                                   \
		return EKVM_FD_IOCTL(vcpu->fd, req, arg);                 \
	}

VCPU_GET(regs, KVM_GET_REGS, struct kvm_regs)
VCPU_SET(regs, KVM_SET_REGS, struct kvm_regs)
VCPU_GET(sregs, KVM_GET_SREGS, struct kvm_sregs)
VCPU_SET(sregs, KVM_SET_SREGS, struct kvm_sregs)
VCPU_GET(fpu, KVM_GET_FPU, struct kvm_fpu)
VCPU_SET(fpu, KVM_SET_FPU, struct kvm_fpu)
VCPU_SET(cpuid2, KVM_SET_CPUID2, struct kvm_cpuid2)
VCPU_GET(lapic, KVM_GET_LAPIC, struct kvm_lapic_state)
VCPU_SET(lapic, KVM_SET_LAPIC, struct kvm_lapic_state)
VCPU_GET(msrs, KVM_GET_MSRS, struct kvm_msrs)
VCPU_SET(msrs, KVM_SET_MSRS, struct kvm_msrs)
VCPU_GET(mp_state, KVM_GET_MP_STATE, struct kvm_mp_state)
VCPU_SET(mp_state, KVM_SET_MP_STATE, struct kvm_mp_state)
VCPU_GET(xsave, KVM_GET_XSAVE, struct kvm_xsave)
VCPU_SET(xsave, KVM_SET_XSAVE, struct kvm_xsave)
VCPU_GET(xcrs, KVM_GET_XCRS, struct kvm_xcrs)
VCPU_SET(xcrs, KVM_SET_XCRS, struct kvm_xcrs)
VCPU_GET(debugregs, KVM_GET_DEBUGREGS, struct kvm_debugregs)
VCPU_SET(debugregs, KVM_SET_DEBUGREGS, struct kvm_debugregs)
VCPU_GET(vcpu_events, KVM_GET_VCPU_EVENTS, struct kvm_vcpu_events)
VCPU_SET(vcpu_events, KVM_SET_VCPU_EVENTS, struct kvm_vcpu_events)
VCPU_SET(guest_debug, KVM_SET_GUEST_DEBUG, struct kvm_guest_debug)

/* Entries KVM_GET_CPUID2 did not write keep this pattern (every byte 0xff:
 * no real entry has it, its padding is 0). */
static void cpuid_mark(struct kvm_cpuid2 *c, uint32_t n)
{
	memset(c->entries, 0xff, (size_t)n * sizeof(c->entries[0]));
}

static uint32_t cpuid_count(const struct kvm_cpuid2 *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p = (const uint8_t *)&c->entries[i];
		size_t j = 0;
		while (j < sizeof(c->entries[i]) && p[j] == 0xff)
			j++;
		if (j == sizeof(c->entries[i]))
			return i;
	}
	return n;
}

/*
 * KVM_GET_CPUID2 reports the count in nent only on success and only since
 * Linux 6.4; on -E2BIG it reports nothing. The header promises the count on
 * success and the needed count on -E2BIG on every kernel: count the entries
 * KVM wrote, and on -E2BIG find the count with a temporary buffer.
 */
int ekvm_vcpu_get_cpuid2(struct ekvm_vcpu *vcpu, struct kvm_cpuid2 *cpuid)
{
	if (!vcpu || !cpuid)
		return -EINVAL;
	uint32_t cap = cpuid->nent;
	cpuid_mark(cpuid, cap);
	int r = EKVM_FD_IOCTL(vcpu->fd, KVM_GET_CPUID2, cpuid);
	if (r == 0) {
		if (cpuid->nent == cap) /* not updated by this kernel */
			cpuid->nent = cpuid_count(cpuid, cap);
		return 0;
	}
	if (r != -E2BIG)
		return r;
	for (uint32_t n = 256; n <= 65536; n *= 2) {
		if (n <= cap)
			continue;
		struct kvm_cpuid2 *tmp =
		    calloc(1, sizeof(*tmp) + (size_t)n * sizeof(tmp->entries[0]));
		if (!tmp)
			return -ENOMEM;
		tmp->nent = n;
		cpuid_mark(tmp, n);
		int rr = EKVM_FD_IOCTL(vcpu->fd, KVM_GET_CPUID2, tmp);
		if (rr == 0) {
			cpuid->nent = tmp->nent < n ? tmp->nent : cpuid_count(tmp, n);
			free(tmp);
			return -E2BIG;
		}
		free(tmp);
		if (rr != -E2BIG)
			return r;
	}
	return r;
}

int ekvm_vcpu_enable_cap(struct ekvm_vcpu *vcpu, const struct kvm_enable_cap *cap)
{
	if (!vcpu || !cap)
		return -EINVAL;
	return EKVM_FD_IOCTL(vcpu->fd, KVM_ENABLE_CAP, cap);
}

/* struct kvm_msrs with room for one entry */
struct one_msr {
	struct kvm_msrs hdr;
	struct kvm_msr_entry entry;
};

int ekvm_vcpu_get_msr(struct ekvm_vcpu *vcpu, uint32_t index, uint64_t *value)
{
	if (!vcpu || !value)
		return -EINVAL;
	struct one_msr m = {.hdr.nmsrs = 1, .entry.index = index};
	int r = ekvm_vcpu_get_msrs(vcpu, &m.hdr);
	if (r < 0)
		return r;
	if (r != 1)
		return -EIO;
	*value = m.entry.data;
	return 0;
}

int ekvm_vcpu_set_msr(struct ekvm_vcpu *vcpu, uint32_t index, uint64_t value)
{
	if (!vcpu)
		return -EINVAL;
	struct one_msr m = {.hdr.nmsrs = 1, .entry = {.index = index, .data = value}};
	int r = ekvm_vcpu_set_msrs(vcpu, &m.hdr);
	if (r < 0)
		return r;
	return r == 1 ? 0 : -EIO;
}

int ekvm_vcpu_xsave_size(struct ekvm_vcpu *vcpu)
{
	if (!vcpu)
		return -EINVAL;
	int r = ekvm_ioctl_val(vcpu->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (r < 0)
		return r;
	return r > (int)sizeof(struct kvm_xsave) ? r : (int)sizeof(struct kvm_xsave);
}

int ekvm_vcpu_get_xsave2(struct ekvm_vcpu *vcpu, void *buf, size_t size)
{
	if (!vcpu || !buf)
		return -EINVAL;
	int need = ekvm_vcpu_xsave_size(vcpu);
	if (need < 0)
		return need;
	if (size < (size_t)need)
		return -E2BIG;
	/* KVM_GET_XSAVE2 writes KVM_CAP_XSAVE2 bytes; its encoded size is the
	 * 4 KiB legacy struct, which the size check above covers. */
	if (ekvm_ioctl_val(vcpu->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2) <= 0)
		return ekvm_ioctl_fd(vcpu->fd, KVM_GET_XSAVE, buf);
	return ekvm_ioctl_fd(vcpu->fd, KVM_GET_XSAVE2, buf);
}

int ekvm_vcpu_set_xsave2(struct ekvm_vcpu *vcpu, const void *buf, size_t size)
{
	if (!vcpu || !buf)
		return -EINVAL;
	int need = ekvm_vcpu_xsave_size(vcpu);
	if (need < 0)
		return need;
	if (size < (size_t)need)
		return -E2BIG;
	return ekvm_ioctl_fd(vcpu->fd, KVM_SET_XSAVE, (void *)buf);
}

/* An ioctl whose argument is a value, not a structure (KVM_SMI, KVM_NMI, ...). */
static int vcpu_ioctl_val(struct ekvm_vcpu *vcpu, unsigned long req, unsigned long val)
{
	if (!vcpu)
		return -EINVAL;
	return ekvm_ioctl_val(vcpu->fd, req, val);
}

int ekvm_vcpu_kvmclock_ctrl(struct ekvm_vcpu *vcpu)
{
	return vcpu_ioctl_val(vcpu, KVM_KVMCLOCK_CTRL, 0);
}

int ekvm_vcpu_get_tsc_khz(struct ekvm_vcpu *vcpu)
{
	return vcpu_ioctl_val(vcpu, KVM_GET_TSC_KHZ, 0);
}

int ekvm_vcpu_set_tsc_khz(struct ekvm_vcpu *vcpu, uint32_t khz)
{
	return vcpu_ioctl_val(vcpu, KVM_SET_TSC_KHZ, khz);
}

int ekvm_vcpu_translate(struct ekvm_vcpu *vcpu, struct kvm_translation *tr)
{
	if (!vcpu || !tr)
		return -EINVAL;
	return EKVM_FD_IOCTL(vcpu->fd, KVM_TRANSLATE, tr);
}

int ekvm_vcpu_smi(struct ekvm_vcpu *vcpu)
{
	return vcpu_ioctl_val(vcpu, KVM_SMI, 0);
}

int ekvm_vcpu_nmi(struct ekvm_vcpu *vcpu)
{
	return vcpu_ioctl_val(vcpu, KVM_NMI, 0);
}

int ekvm_vcpu_interrupt(struct ekvm_vcpu *vcpu, uint32_t irq)
{
	if (!vcpu)
		return -EINVAL;
	struct kvm_interrupt i = {.irq = irq};
	return EKVM_FD_IOCTL(vcpu->fd, KVM_INTERRUPT, &i);
}

int ekvm_vcpu_tpr_access_reporting(struct ekvm_vcpu *vcpu, bool enabled)
{
	if (!vcpu)
		return -EINVAL;
	struct kvm_tpr_access_ctl c = {.enabled = enabled ? 1 : 0};
	return EKVM_FD_IOCTL(vcpu->fd, KVM_TPR_ACCESS_REPORTING, &c);
}

void ekvm_vcpu_set_sync_valid(struct ekvm_vcpu *vcpu, uint64_t valid_mask)
{
	if (vcpu)
		vcpu->run->kvm_valid_regs = valid_mask;
}

void ekvm_vcpu_set_sync_dirty(struct ekvm_vcpu *vcpu, uint64_t dirty_mask)
{
	if (vcpu)
		vcpu->run->kvm_dirty_regs = dirty_mask;
}

struct kvm_sync_regs *ekvm_vcpu_sync_regs(struct ekvm_vcpu *vcpu)
{
	return vcpu ? &vcpu->run->s.regs : NULL;
}

void ekvm_vcpu_set_immediate_exit(struct ekvm_vcpu *vcpu, bool on)
{
	if (vcpu)
		__atomic_store_n(&vcpu->run->immediate_exit, on ? 1 : 0, __ATOMIC_SEQ_CST);
}

void ekvm_vcpu_set_request_interrupt_window(struct ekvm_vcpu *vcpu, bool on)
{
	if (vcpu)
		vcpu->run->request_interrupt_window = on ? 1 : 0;
}

int ekvm_vcpu_coalesced_mmio_pop(struct ekvm_vcpu *vcpu, struct kvm_coalesced_mmio *entry)
{
	if (!vcpu || !entry)
		return -EINVAL;
	struct kvm_coalesced_mmio_ring *ring = vcpu->ring;
	if (!ring)
		return -ENODEV;
	uint32_t max = vcpu->ring_max;
	uint32_t first = ring->first;
	uint32_t last = __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
	if (first == last)
		return 0;
	if (first >= max)
		return -EPROTO; /* the shared page holds garbage */
	*entry = ring->coalesced_mmio[first];
	__atomic_store_n(&ring->first, (first + 1) % max, __ATOMIC_RELEASE);
	return 1;
}
