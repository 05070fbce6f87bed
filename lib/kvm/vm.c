/* lib/kvm/vm.c - VM ioctls: memory, irqchip, PIT, irqfd/ioeventfd, clock, caps. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

void ekvm_vm_destroy(struct ekvm_vm *vm)
{
	if (!vm)
		return;
	close(vm->fd);
	free(vm);
}

int ekvm_vm_fd(const struct ekvm_vm *vm)
{
	return vm ? vm->fd : -EINVAL;
}

int ekvm_vm_ioctl_raw(struct ekvm_vm *vm, unsigned long req, void *arg)
{
	if (!vm)
		return -EINVAL;
	return ekvm_ioctl_fd(vm->fd, req, arg);
}

int ekvm_vm_check_extension(struct ekvm_vm *vm, long cap)
{
	if (!vm)
		return -EINVAL;
	return ekvm_ioctl_val(vm->fd, KVM_CHECK_EXTENSION, (unsigned long)cap);
}

int ekvm_vm_enable_cap(struct ekvm_vm *vm, const struct kvm_enable_cap *cap)
{
	if (!vm || !cap)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_ENABLE_CAP, cap);
}

int ekvm_vm_set_user_memory_region(struct ekvm_vm *vm, const struct kvm_userspace_memory_region *r)
{
	if (!vm || !r)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_SET_USER_MEMORY_REGION, r);
}

int ekvm_vm_set_memory(struct ekvm_vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		       uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
	    .slot = slot,
	    .flags = flags,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	return ekvm_vm_set_user_memory_region(vm, &r);
}

int ekvm_vm_remove_memory(struct ekvm_vm *vm, uint32_t slot)
{
	return ekvm_vm_set_memory(vm, slot, 0, 0, 0, NULL);
}

int ekvm_vm_get_dirty_log(struct ekvm_vm *vm, uint32_t slot, void *bitmap)
{
	if (!vm || !bitmap)
		return -EINVAL;
	struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = bitmap};
	return EKVM_FD_IOCTL(vm->fd, KVM_GET_DIRTY_LOG, &log);
}

int ekvm_vm_clear_dirty_log(struct ekvm_vm *vm, uint32_t slot, uint64_t first_page,
			    uint32_t num_pages, void *bitmap)
{
	if (!vm || !bitmap)
		return -EINVAL;
	struct kvm_clear_dirty_log c = {
	    .slot = slot,
	    .num_pages = num_pages,
	    .first_page = first_page,
	    .dirty_bitmap = bitmap,
	};
	return EKVM_FD_IOCTL(vm->fd, KVM_CLEAR_DIRTY_LOG, &c);
}

int ekvm_vm_set_tss_addr(struct ekvm_vm *vm, uint64_t addr)
{
	if (!vm)
		return -EINVAL;
	return ekvm_ioctl_val(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)addr);
}

int ekvm_vm_set_identity_map_addr(struct ekvm_vm *vm, uint64_t addr)
{
	if (!vm)
		return -EINVAL;
	__u64 a = addr;
	return EKVM_FD_IOCTL(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &a);
}

int ekvm_vm_create_irqchip(struct ekvm_vm *vm)
{
	if (!vm)
		return -EINVAL;
	return ekvm_ioctl_val(vm->fd, KVM_CREATE_IRQCHIP, 0);
}

int ekvm_vm_get_irqchip(struct ekvm_vm *vm, struct kvm_irqchip *chip)
{
	if (!vm || !chip)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_GET_IRQCHIP, chip);
}

int ekvm_vm_set_irqchip(struct ekvm_vm *vm, const struct kvm_irqchip *chip)
{
	if (!vm || !chip)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_SET_IRQCHIP, chip);
}

int ekvm_vm_irq_line(struct ekvm_vm *vm, uint32_t irq, uint32_t level)
{
	if (!vm)
		return -EINVAL;
	struct kvm_irq_level l = {.irq = irq, .level = level};
	return EKVM_FD_IOCTL(vm->fd, KVM_IRQ_LINE, &l);
}

int ekvm_vm_irq_line_status(struct ekvm_vm *vm, uint32_t irq, uint32_t level, int32_t *status)
{
	if (!vm)
		return -EINVAL;
	struct kvm_irq_level l = {.irq = irq, .level = level};
	int r = EKVM_FD_IOCTL(vm->fd, KVM_IRQ_LINE_STATUS, &l);
	if (r == 0 && status)
		*status = l.status;
	return r;
}

int ekvm_vm_set_gsi_routing(struct ekvm_vm *vm, const struct kvm_irq_routing *routing)
{
	if (!vm || !routing)
		return -EINVAL;
	/* variable-size argument: the header part is what the encoding sizes */
	return EKVM_FD_IOCTL(vm->fd, KVM_SET_GSI_ROUTING, routing);
}

int ekvm_vm_signal_msi(struct ekvm_vm *vm, const struct kvm_msi *msi)
{
	if (!vm || !msi)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_SIGNAL_MSI, msi);
}

int ekvm_vm_create_pit2(struct ekvm_vm *vm, uint32_t flags)
{
	if (!vm)
		return -EINVAL;
	struct kvm_pit_config c = {.flags = flags};
	return EKVM_FD_IOCTL(vm->fd, KVM_CREATE_PIT2, &c);
}

int ekvm_vm_get_pit2(struct ekvm_vm *vm, struct kvm_pit_state2 *state)
{
	if (!vm || !state)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_GET_PIT2, state);
}

int ekvm_vm_set_pit2(struct ekvm_vm *vm, const struct kvm_pit_state2 *state)
{
	if (!vm || !state)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_SET_PIT2, state);
}

int ekvm_vm_irqfd(struct ekvm_vm *vm, int fd, uint32_t gsi, int resamplefd)
{
	if (!vm || fd < 0)
		return -EINVAL;
	struct kvm_irqfd i = {.fd = (uint32_t)fd, .gsi = gsi};
	if (resamplefd >= 0) {
		i.flags = KVM_IRQFD_FLAG_RESAMPLE;
		i.resamplefd = (uint32_t)resamplefd;
	}
	return EKVM_FD_IOCTL(vm->fd, KVM_IRQFD, &i);
}

int ekvm_vm_irqfd_remove(struct ekvm_vm *vm, int fd, uint32_t gsi)
{
	if (!vm || fd < 0)
		return -EINVAL;
	struct kvm_irqfd i = {.fd = (uint32_t)fd, .gsi = gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN};
	return EKVM_FD_IOCTL(vm->fd, KVM_IRQFD, &i);
}

static int ioeventfd(struct ekvm_vm *vm, const struct ekvm_ioeventfd *ev, bool remove)
{
	if (!vm || !ev || ev->fd < 0)
		return -EINVAL;
	if (ev->len != 0 && ev->len != 1 && ev->len != 2 && ev->len != 4 && ev->len != 8)
		return -EINVAL;
	struct kvm_ioeventfd k = {
	    .datamatch = ev->datamatch,
	    .addr = ev->addr,
	    .len = ev->len,
	    .fd = ev->fd,
	};
	if (ev->pio)
		k.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (ev->has_datamatch)
		k.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (remove)
		k.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	return EKVM_FD_IOCTL(vm->fd, KVM_IOEVENTFD, &k);
}

int ekvm_vm_ioeventfd(struct ekvm_vm *vm, const struct ekvm_ioeventfd *ev)
{
	return ioeventfd(vm, ev, false);
}

int ekvm_vm_ioeventfd_remove(struct ekvm_vm *vm, const struct ekvm_ioeventfd *ev)
{
	return ioeventfd(vm, ev, true);
}

static int coalesced(struct ekvm_vm *vm, uint64_t addr, uint32_t size, bool pio, bool reg)
{
	if (!vm)
		return -EINVAL;
	struct kvm_coalesced_mmio_zone z = {.addr = addr, .size = size, .pio = pio ? 1 : 0};
	if (reg)
		return EKVM_FD_IOCTL(vm->fd, KVM_REGISTER_COALESCED_MMIO, &z);
	return EKVM_FD_IOCTL(vm->fd, KVM_UNREGISTER_COALESCED_MMIO, &z);
}

int ekvm_vm_register_coalesced(struct ekvm_vm *vm, uint64_t addr, uint32_t size, bool pio)
{
	return coalesced(vm, addr, size, pio, true);
}

int ekvm_vm_unregister_coalesced(struct ekvm_vm *vm, uint64_t addr, uint32_t size, bool pio)
{
	return coalesced(vm, addr, size, pio, false);
}

int ekvm_vm_get_clock(struct ekvm_vm *vm, struct kvm_clock_data *clock)
{
	if (!vm || !clock)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_GET_CLOCK, clock);
}

int ekvm_vm_set_clock(struct ekvm_vm *vm, const struct kvm_clock_data *clock)
{
	if (!vm || !clock)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_SET_CLOCK, clock);
}

/* Copies len bytes from a caller's pointer that may be invalid: -EFAULT
 * (as the kernel would say) instead of a crash. Where a seccomp policy
 * forbids process_vm_readv (ENOSYS, EPERM) the pointer is trusted and
 * copied directly, as the ioctl would have read it. */
static int copy_user_bytes(void *dst, const void *src, size_t len)
{
	struct iovec local = {.iov_base = dst, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)src, .iov_len = len};
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
		memcpy(dst, src, len);
		return 0;
	}
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/*
 * KVM copies BITS_TO_LONGS(nmsrs) * sizeof(long) bytes of each range's
 * bitmap, more than the (nmsrs + 7) / 8 bytes that hold its bits: a caller's
 * bitmap sized in bytes would be over-read (or fault at the end of a
 * mapping). Each bitmap is copied into a zeroed buffer of whole 64-bit words
 * first, so the caller only provides the bytes the bits need.
 */
int ekvm_vm_set_msr_filter(struct ekvm_vm *vm, const struct kvm_msr_filter *filter)
{
	if (!vm || !filter)
		return -EINVAL;
	struct kvm_msr_filter f = *filter;
	int r = 0;
	for (size_t i = 0; i < KVM_MSR_FILTER_MAX_RANGES; i++)
		f.ranges[i].bitmap = NULL;
	for (size_t i = 0; i < KVM_MSR_FILTER_MAX_RANGES; i++) {
		const struct kvm_msr_filter_range *in = &filter->ranges[i];
		if (in->nmsrs == 0)
			continue; /* KVM ignores an empty range and its bitmap */
		if (in->nmsrs > EKVM_MSR_FILTER_MAX_NMSRS) {
			r = -EINVAL;
			goto out;
		}
		uint64_t *words = calloc(EKVM_MSR_BITMAP_BYTES(in->nmsrs), 1);
		if (!words) {
			r = -ENOMEM;
			goto out;
		}
		f.ranges[i].bitmap = (__u8 *)words;
		r = copy_user_bytes(words, in->bitmap, ((size_t)in->nmsrs + 7) / 8);
		if (r < 0)
			goto out;
	}
	r = EKVM_FD_IOCTL(vm->fd, KVM_X86_SET_MSR_FILTER, &f);
out:
	for (size_t i = 0; i < KVM_MSR_FILTER_MAX_RANGES; i++)
		free(f.ranges[i].bitmap);
	return r;
}

int ekvm_vm_enable_user_space_msr(struct ekvm_vm *vm, uint32_t reason_mask)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR, .args = {reason_mask}};
	return ekvm_vm_enable_cap(vm, &cap);
}

int ekvm_vm_enable_hypercall_exit(struct ekvm_vm *vm, uint64_t nr_mask)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_EXIT_HYPERCALL, .args = {nr_mask}};
	return ekvm_vm_enable_cap(vm, &cap);
}

int ekvm_vm_create_device(struct ekvm_vm *vm, struct kvm_create_device *dev)
{
	if (!vm || !dev)
		return -EINVAL;
	return EKVM_FD_IOCTL(vm->fd, KVM_CREATE_DEVICE, dev);
}

/* KVM_{HAS,GET,SET}_DEVICE_ATTR on any KVM fd (VM, vCPU, device). */
int kvm_fd_device_attr(int fd, unsigned long req, const struct kvm_device_attr *attr)
{
	if (fd < 0 || !attr)
		return -EINVAL;
	switch (req) {
	case KVM_HAS_DEVICE_ATTR:
		return EKVM_FD_IOCTL(fd, KVM_HAS_DEVICE_ATTR, attr);
	case KVM_GET_DEVICE_ATTR:
		return EKVM_FD_IOCTL(fd, KVM_GET_DEVICE_ATTR, attr);
	case KVM_SET_DEVICE_ATTR:
		return EKVM_FD_IOCTL(fd, KVM_SET_DEVICE_ATTR, attr);
	}
	return -EINVAL;
}

int ekvm_vm_has_device_attr(struct ekvm_vm *vm, const struct kvm_device_attr *attr)
{
	return vm ? kvm_fd_device_attr(vm->fd, KVM_HAS_DEVICE_ATTR, attr) : -EINVAL;
}

int ekvm_vm_get_device_attr(struct ekvm_vm *vm, const struct kvm_device_attr *attr)
{
	return vm ? kvm_fd_device_attr(vm->fd, KVM_GET_DEVICE_ATTR, attr) : -EINVAL;
}

int ekvm_vm_set_device_attr(struct ekvm_vm *vm, const struct kvm_device_attr *attr)
{
	return vm ? kvm_fd_device_attr(vm->fd, KVM_SET_DEVICE_ATTR, attr) : -EINVAL;
}

int ekvm_device_has_attr(int dev_fd, const struct kvm_device_attr *attr)
{
	return kvm_fd_device_attr(dev_fd, KVM_HAS_DEVICE_ATTR, attr);
}

int ekvm_device_get_attr(int dev_fd, const struct kvm_device_attr *attr)
{
	return kvm_fd_device_attr(dev_fd, KVM_GET_DEVICE_ATTR, attr);
}

int ekvm_device_set_attr(int dev_fd, const struct kvm_device_attr *attr)
{
	return kvm_fd_device_attr(dev_fd, KVM_SET_DEVICE_ATTR, attr);
}

int ekvm_vm_set_boot_cpu_id(struct ekvm_vm *vm, unsigned long id)
{
	/* KVM stores the id in a u32 (Linux 6.1 checks no range) */
	if (!vm || id > UINT32_MAX)
		return -EINVAL;
	return ekvm_ioctl_val(vm->fd, KVM_SET_BOOT_CPU_ID, id);
}

int ekvm_vm_reinject_control(struct ekvm_vm *vm, bool reinject)
{
	if (!vm)
		return -EINVAL;
	struct kvm_reinject_control c;
	memset(&c, 0, sizeof(c));
	c.pit_reinject = reinject ? 1 : 0;
	return EKVM_FD_IOCTL_UNSIZED(vm->fd, KVM_REINJECT_CONTROL, &c);
}

int ekvm_vm_set_pmu_event_filter(struct ekvm_vm *vm, const struct kvm_pmu_event_filter *filter)
{
	if (!vm || !filter)
		return -EINVAL;
	/* variable-size argument: the header part is what the encoding sizes */
	return EKVM_FD_IOCTL(vm->fd, KVM_SET_PMU_EVENT_FILTER, filter);
}

int ekvm_vm_stats_fd(struct ekvm_vm *vm)
{
	if (!vm)
		return -EINVAL;
	return ekvm_ioctl_val(vm->fd, KVM_GET_STATS_FD, 0);
}

int ekvm_vm_enable_dirty_ring(struct ekvm_vm *vm, uint32_t bytes)
{
	if (!vm)
		return -EINVAL;
	struct kvm_enable_cap cap = {.cap = KVM_CAP_DIRTY_LOG_RING, .args = {bytes}};
	int r = ekvm_vm_enable_cap(vm, &cap);
	if (r == 0)
		vm->dirty_ring_bytes = bytes;
	return r;
}

int ekvm_vm_reset_dirty_rings(struct ekvm_vm *vm)
{
	if (!vm)
		return -EINVAL;
	return ekvm_ioctl_val(vm->fd, KVM_RESET_DIRTY_RINGS, 0);
}
