/* lib/kvm/internal.h - private definitions of the KVM binding (layer 1). */
#ifndef EMBER_LIB_KVM_INTERNAL_H
#define EMBER_LIB_KVM_INTERNAL_H

#include <ember/kvm.h>

#include <errno.h>
#include <sys/ioctl.h>

struct ekvm_sys {
	int fd;
};

struct ekvm_vm {
	int fd;
	int run_size;		   /* KVM_GET_VCPU_MMAP_SIZE, cached at creation */
	int coalesced_page;	   /* KVM_CAP_COALESCED_MMIO page offset, 0 = none */
	uint32_t dirty_ring_bytes; /* per-vCPU dirty ring size, 0 = no ring */
};

struct ekvm_vcpu {
	int fd;
	unsigned long id;
	struct kvm_run *run;
	size_t run_size;
	struct kvm_coalesced_mmio_ring *ring; /* NULL when KVM has none */
	uint32_t ring_max;		      /* entries in the ring */
	struct kvm_dirty_gfn *dring;	      /* dirty ring, NULL when none */
	uint32_t dring_n;		      /* its entries (a power of two) */
	uint32_t dring_next;		      /* next entry to harvest */
	struct ekvm_vm *vm;
};

/* ioctl -> result or -errno, errno captured right after the call. */
static inline int ekvm_ioctl_fd(int fd, unsigned long req, void *arg)
{
	int r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

/* Checked ioctl on an fd: the argument size must match the encoding. */
#define EKVM_FD_IOCTL(fd, req, argp)                                                     \
	({                                                                               \
		_Static_assert(sizeof(*(argp)) == _IOC_SIZE(req),                        \
			       "argument size does not match the ioctl's encoded size"); \
		ekvm_ioctl_fd((fd), (req), (void *)(argp));                              \
	})

/* For _IO ioctls that nevertheless take a pointer to a structure (KVM's
 * encoding says size 0, e.g. KVM_REINJECT_CONTROL): checks at compile time
 * that the number really encodes no size, so a sized ioctl cannot slip
 * through unchecked. */
#define EKVM_FD_IOCTL_UNSIZED(fd, req, argp)                              \
	({                                                                \
		_Static_assert(_IOC_SIZE(req) == 0, "use EKVM_FD_IOCTL"); \
		ekvm_ioctl_fd((fd), (req), (void *)(argp));               \
	})

/* For ioctls whose argument is a value, not a pointer (_IO with an int). */
static inline int ekvm_ioctl_val(int fd, unsigned long req, unsigned long val)
{
	int r = ioctl(fd, req, val);
	return r < 0 ? -errno : r;
}

/* KVM_{HAS,GET,SET}_DEVICE_ATTR (req) on any KVM fd; -EINVAL for fd < 0. */
__attribute__((visibility("hidden"))) int kvm_fd_device_attr(int fd, unsigned long req,
							     const struct kvm_device_attr *attr);

#endif
