/* lib/kvm/vcpu.c - vCPU ioctls, the kvm_run area, sync_regs and the coalesced MMIO ring. */
#include "internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int ekvm_vcpu_create(struct ekvm_vm *vm, unsigned long id, struct ekvm_vcpu **out)
{
	if (out)
		*out = NULL;
	/* KVM takes the id as a u32: a larger one would be truncated to
	 * another, valid-looking id (1UL << 32 | 3 would create vCPU 3). */
	if (!vm || !out || id > UINT32_MAX)
		return -EINVAL;
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
	if (vm->dirty_ring_bytes > 0) {
		void *ring = mmap(NULL, vm->dirty_ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
				  fd, (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));
		if (ring == MAP_FAILED) {
			int e = -errno;
			munmap(run, (size_t)vm->run_size);
			close(fd);
			free(v);
			return e;
		}
		v->dring = ring;
		v->dring_n = vm->dirty_ring_bytes / (uint32_t)sizeof(struct kvm_dirty_gfn);
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
	if (vcpu->dring)
		munmap(vcpu->dring, (size_t)vcpu->dring_n * sizeof(struct kvm_dirty_gfn));
	close(vcpu->fd);
	free(vcpu);
}

int ekvm_vcpu_fd(const struct ekvm_vcpu *vcpu)
{
	return vcpu ? vcpu->fd : -EINVAL;
}

unsigned long ekvm_vcpu_id(const struct ekvm_vcpu *vcpu)
{
	return vcpu ? vcpu->id : EKVM_VCPU_ID_NONE;
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
VCPU_GET(sregs2, KVM_GET_SREGS2, struct kvm_sregs2)
VCPU_SET(sregs2, KVM_SET_SREGS2, struct kvm_sregs2)
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

int ekvm_vcpu_pre_fault_memory(struct ekvm_vcpu *vcpu, uint64_t gpa, uint64_t size, uint64_t *left)
{
	if (left)
		*left = size;
	if (!vcpu || !size) /* an empty range would be no call at all */
		return -EINVAL;
	struct kvm_pre_fault_memory p = {.gpa = gpa, .size = size};
	int r = 0;
	/* each call maps at least one page, returns 0 and moves the range on;
	 * -EAGAIN: a race with the MMU before any progress, worth a retry */
	while (p.size) {
		r = EKVM_FD_IOCTL(vcpu->fd, KVM_PRE_FAULT_MEMORY, &p);
		if (r < 0 && r != -EAGAIN)
			break;
		r = 0;
	}
	if (left)
		*left = p.size;
	return r < 0 ? r : 0;
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

int ekvm_vcpu_set_vapic_addr(struct ekvm_vcpu *vcpu, uint64_t gpa)
{
	if (!vcpu)
		return -EINVAL;
	struct kvm_vapic_addr a = {.vapic_addr = gpa};
	return EKVM_FD_IOCTL(vcpu->fd, KVM_SET_VAPIC_ADDR, &a);
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

int ekvm_vcpu_nested_state_size(struct ekvm_vcpu *vcpu)
{
	if (!vcpu)
		return -EINVAL;
	return ekvm_ioctl_val(vcpu->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
}

/* The header (struct kvm_nested_state without data) is what the encoding
 * sizes; state->size tells KVM how much follows. */
int ekvm_vcpu_get_nested_state(struct ekvm_vcpu *vcpu, struct kvm_nested_state *state)
{
	if (!vcpu || !state)
		return -EINVAL;
	return EKVM_FD_IOCTL(vcpu->fd, KVM_GET_NESTED_STATE, state);
}

int ekvm_vcpu_set_nested_state(struct ekvm_vcpu *vcpu, const struct kvm_nested_state *state)
{
	if (!vcpu || !state)
		return -EINVAL;
	return EKVM_FD_IOCTL(vcpu->fd, KVM_SET_NESTED_STATE, state);
}

/* The kernel's sigset_t on x86-64: 64 signals, 8 bytes. */
#define KERNEL_SIGSET_BYTES 8

int ekvm_vcpu_set_signal_mask(struct ekvm_vcpu *vcpu, const sigset_t *mask)
{
	if (!vcpu)
		return -EINVAL;
	if (!mask) /* no argument: KVM drops the mask */
		return ekvm_ioctl_fd(vcpu->fd, KVM_SET_SIGNAL_MASK, NULL);
	struct {
		struct kvm_signal_mask hdr;
		uint8_t set[KERNEL_SIGSET_BYTES];
	} m;
	uint64_t bits = 0;
	for (int sig = 1; sig <= 64; sig++)
		if (sig < NSIG && sigismember(mask, sig) == 1)
			bits |= 1ull << (sig - 1);
	m.hdr.len = KERNEL_SIGSET_BYTES;
	memcpy(m.set, &bits, sizeof(bits));
	/* variable-size argument: the header part is what the encoding sizes */
	return EKVM_FD_IOCTL(vcpu->fd, KVM_SET_SIGNAL_MASK, &m.hdr);
}

int ekvm_vcpu_setup_mce(struct ekvm_vcpu *vcpu, uint64_t mcg_cap)
{
	if (!vcpu)
		return -EINVAL;
	__u64 cap = mcg_cap;
	return EKVM_FD_IOCTL(vcpu->fd, KVM_X86_SETUP_MCE, &cap);
}

int ekvm_vcpu_set_mce(struct ekvm_vcpu *vcpu, const struct kvm_x86_mce *mce)
{
	if (!vcpu || !mce)
		return -EINVAL;
	return EKVM_FD_IOCTL(vcpu->fd, KVM_X86_SET_MCE, mce);
}

int ekvm_vcpu_has_device_attr(struct ekvm_vcpu *vcpu, const struct kvm_device_attr *attr)
{
	return vcpu ? kvm_fd_device_attr(vcpu->fd, KVM_HAS_DEVICE_ATTR, attr) : -EINVAL;
}

int ekvm_vcpu_get_device_attr(struct ekvm_vcpu *vcpu, const struct kvm_device_attr *attr)
{
	return vcpu ? kvm_fd_device_attr(vcpu->fd, KVM_GET_DEVICE_ATTR, attr) : -EINVAL;
}

int ekvm_vcpu_set_device_attr(struct ekvm_vcpu *vcpu, const struct kvm_device_attr *attr)
{
	return vcpu ? kvm_fd_device_attr(vcpu->fd, KVM_SET_DEVICE_ATTR, attr) : -EINVAL;
}

int ekvm_vcpu_get_supported_hv_cpuid(struct ekvm_vcpu *vcpu, struct kvm_cpuid2 *cpuid)
{
	if (!vcpu || !cpuid)
		return -EINVAL;
	return EKVM_FD_IOCTL(vcpu->fd, KVM_GET_SUPPORTED_HV_CPUID, cpuid);
}

int ekvm_vcpu_stats_fd(struct ekvm_vcpu *vcpu)
{
	return vcpu_ioctl_val(vcpu, KVM_GET_STATS_FD, 0);
}

/*
 * Dirty ring protocol (KVM API doc, "KVM_CAP_DIRTY_LOG_RING"): KVM publishes
 * an entry by setting KVM_DIRTY_GFN_F_DIRTY last (release); user space reads
 * slot and offset after seeing that flag (acquire), then sets
 * KVM_DIRTY_GFN_F_RESET (release) so KVM_RESET_DIRTY_RINGS may recycle it.
 */
int ekvm_vcpu_dirty_ring_harvest(struct ekvm_vcpu *vcpu, struct kvm_dirty_gfn *out, size_t max)
{
	if (!vcpu || (!out && max > 0))
		return -EINVAL;
	if (!vcpu->dring)
		return -ENODEV;
	size_t got = 0;
	if (max > INT32_MAX)
		max = INT32_MAX;
	while (got < max) {
		struct kvm_dirty_gfn *e = &vcpu->dring[vcpu->dring_next & (vcpu->dring_n - 1)];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		if ((flags & KVM_DIRTY_GFN_F_MASK) != KVM_DIRTY_GFN_F_DIRTY)
			break; /* not published yet, or harvested and not reset */
		out[got].flags = flags;
		out[got].slot = e->slot;
		out[got].offset = e->offset;
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		vcpu->dring_next++;
		got++;
	}
	return (int)got;
}
