/* lib/kvm/system.c - the /dev/kvm handle: system ioctls and VM creation. */
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned ekvm_library_version(void)
{
	return EMBER_KVM_API_VERSION;
}

int ekvm_sys_from_fd(int fd, struct ekvm_sys **out)
{
	if (out)
		*out = NULL;
	if (!out || fd < 0)
		return -EINVAL;
	int v = ekvm_ioctl_val(fd, KVM_GET_API_VERSION, 0);
	if (v < 0)
		return v;
	if (v != KVM_API_VERSION)
		return -EPROTO;
	struct ekvm_sys *sys = calloc(1, sizeof(*sys));
	if (!sys)
		return -ENOMEM;
	sys->fd = fd;
	*out = sys;
	return 0;
}

int ekvm_sys_open_path(const char *path, struct ekvm_sys **out)
{
	if (out)
		*out = NULL;
	if (!path || !out)
		return -EINVAL;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ekvm_sys_from_fd(fd, out);
	if (r < 0)
		close(fd);
	return r;
}

int ekvm_sys_open(struct ekvm_sys **out)
{
	return ekvm_sys_open_path("/dev/kvm", out);
}

void ekvm_sys_close(struct ekvm_sys *sys)
{
	if (!sys)
		return;
	close(sys->fd);
	free(sys);
}

int ekvm_sys_fd(const struct ekvm_sys *sys)
{
	return sys ? sys->fd : -EINVAL;
}

int ekvm_sys_ioctl_raw(struct ekvm_sys *sys, unsigned long req, void *arg)
{
	if (!sys)
		return -EINVAL;
	return ekvm_ioctl_fd(sys->fd, req, arg);
}

int ekvm_sys_api_version(struct ekvm_sys *sys)
{
	if (!sys)
		return -EINVAL;
	return ekvm_ioctl_val(sys->fd, KVM_GET_API_VERSION, 0);
}

int ekvm_sys_check_extension(struct ekvm_sys *sys, long cap)
{
	if (!sys)
		return -EINVAL;
	return ekvm_ioctl_val(sys->fd, KVM_CHECK_EXTENSION, (unsigned long)cap);
}

int ekvm_sys_vcpu_mmap_size(struct ekvm_sys *sys)
{
	if (!sys)
		return -EINVAL;
	return ekvm_ioctl_val(sys->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
}

int ekvm_sys_get_supported_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 *cpuid)
{
	if (!sys || !cpuid)
		return -EINVAL;
	return EKVM_FD_IOCTL(sys->fd, KVM_GET_SUPPORTED_CPUID, cpuid);
}

int ekvm_sys_get_emulated_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 *cpuid)
{
	if (!sys || !cpuid)
		return -EINVAL;
	return EKVM_FD_IOCTL(sys->fd, KVM_GET_EMULATED_CPUID, cpuid);
}

/* Grows a kvm_cpuid2 until KVM stops answering -E2BIG. */
static int cpuid_alloc(struct ekvm_sys *sys, struct kvm_cpuid2 **out,
		       int (*get)(struct ekvm_sys *, struct kvm_cpuid2 *))
{
	if (out)
		*out = NULL;
	if (!sys || !out)
		return -EINVAL;
	for (uint32_t n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c =
		    calloc(1, sizeof(*c) + (size_t)n * sizeof(struct kvm_cpuid_entry2));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		int r = get(sys, c);
		if (r == 0) {
			*out = c;
			return 0;
		}
		free(c);
		if (r != -E2BIG)
			return r;
	}
	return -E2BIG;
}

int ekvm_sys_supported_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 **out)
{
	return cpuid_alloc(sys, out, ekvm_sys_get_supported_cpuid);
}

const struct kvm_cpuid_entry2 *ekvm_cpuid_find(const struct kvm_cpuid2 *c, uint32_t fn,
					       uint32_t index)
{
	for (uint32_t i = 0; c && i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
		     c->entries[i].index == index))
			return &c->entries[i];
	return NULL;
}

int ekvm_sys_emulated_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 **out)
{
	return cpuid_alloc(sys, out, ekvm_sys_get_emulated_cpuid);
}

int ekvm_sys_get_msr_index_list(struct ekvm_sys *sys, struct kvm_msr_list *list)
{
	if (!sys || !list)
		return -EINVAL;
	return EKVM_FD_IOCTL(sys->fd, KVM_GET_MSR_INDEX_LIST, list);
}

int ekvm_sys_get_msr_feature_index_list(struct ekvm_sys *sys, struct kvm_msr_list *list)
{
	if (!sys || !list)
		return -EINVAL;
	return EKVM_FD_IOCTL(sys->fd, KVM_GET_MSR_FEATURE_INDEX_LIST, list);
}

/* Asks for the count with an empty list (KVM answers -E2BIG and the count),
 * then fetches. */
static int msr_list_alloc(struct ekvm_sys *sys, struct kvm_msr_list **out,
			  int (*get)(struct ekvm_sys *, struct kvm_msr_list *))
{
	if (out)
		*out = NULL;
	if (!sys || !out)
		return -EINVAL;
	struct kvm_msr_list probe = {.nmsrs = 0};
	int r = get(sys, &probe);
	if (r < 0 && r != -E2BIG)
		return r;
	for (int tries = 0; tries < 4; tries++) {
		uint32_t n = probe.nmsrs;
		struct kvm_msr_list *l = calloc(1, sizeof(*l) + (size_t)n * sizeof(uint32_t));
		if (!l)
			return -ENOMEM;
		l->nmsrs = n;
		r = get(sys, l);
		if (r == 0) {
			*out = l;
			return 0;
		}
		probe.nmsrs = l->nmsrs;
		free(l);
		if (r != -E2BIG)
			return r;
	}
	return -E2BIG;
}

int ekvm_sys_msr_index_list(struct ekvm_sys *sys, struct kvm_msr_list **out)
{
	return msr_list_alloc(sys, out, ekvm_sys_get_msr_index_list);
}

int ekvm_sys_msr_feature_index_list(struct ekvm_sys *sys, struct kvm_msr_list **out)
{
	return msr_list_alloc(sys, out, ekvm_sys_get_msr_feature_index_list);
}

int ekvm_sys_get_feature_msrs(struct ekvm_sys *sys, struct kvm_msrs *msrs)
{
	if (!sys || !msrs)
		return -EINVAL;
	return EKVM_FD_IOCTL(sys->fd, KVM_GET_MSRS, msrs);
}

int ekvm_sys_get_mce_cap_supported(struct ekvm_sys *sys, uint64_t *mce_cap)
{
	if (!sys || !mce_cap)
		return -EINVAL;
	__u64 v = 0;
	int r = EKVM_FD_IOCTL(sys->fd, KVM_X86_GET_MCE_CAP_SUPPORTED, &v);
	if (r == 0)
		*mce_cap = v;
	return r;
}

int ekvm_vm_create(struct ekvm_sys *sys, unsigned long type, struct ekvm_vm **out)
{
	if (out)
		*out = NULL;
	if (!sys || !out)
		return -EINVAL;
	int run_size = ekvm_sys_vcpu_mmap_size(sys);
	if (run_size < 0)
		return run_size;
	if ((size_t)run_size < sizeof(struct kvm_run))
		return -EPROTO;
	int coalesced = ekvm_sys_check_extension(sys, KVM_CAP_COALESCED_MMIO);
	struct ekvm_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	int fd;
	do {
		/* KVM_CREATE_VM can fail with EINTR on a busy host; retry. */
		fd = ekvm_ioctl_val(sys->fd, KVM_CREATE_VM, type);
	} while (fd == -EINTR);
	if (fd < 0) {
		free(vm);
		return fd;
	}
	vm->fd = fd;
	vm->run_size = run_size;
	vm->coalesced_page = coalesced > 0 ? coalesced : 0;
	*out = vm;
	return 0;
}

int ekvm_sys_get_supported_hv_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 *cpuid)
{
	if (!sys || !cpuid)
		return -EINVAL;
	return EKVM_FD_IOCTL(sys->fd, KVM_GET_SUPPORTED_HV_CPUID, cpuid);
}

int ekvm_sys_supported_hv_cpuid(struct ekvm_sys *sys, struct kvm_cpuid2 **out)
{
	return cpuid_alloc(sys, out, ekvm_sys_get_supported_hv_cpuid);
}

int ekvm_sys_has_device_attr(struct ekvm_sys *sys, const struct kvm_device_attr *attr)
{
	if (!sys || !attr)
		return -EINVAL;
	return EKVM_FD_IOCTL(sys->fd, KVM_HAS_DEVICE_ATTR, attr);
}

int ekvm_sys_get_device_attr(struct ekvm_sys *sys, const struct kvm_device_attr *attr)
{
	if (!sys || !attr)
		return -EINVAL;
	return EKVM_FD_IOCTL(sys->fd, KVM_GET_DEVICE_ATTR, attr);
}
