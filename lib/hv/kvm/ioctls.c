/* lib/hv/kvm/ioctls.c - the KVM backend's ioctl request numbers by group, for seccomp filters above. */
#include <ember/hv.h>

#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>

static const unsigned long vcpu_run[] = {KVM_RUN, KVM_INTERRUPT, KVM_NMI, KVM_SMI};

static const unsigned long vcpu_state[] = {
    /* the host's lists a first save or restore reads (ehv_vcpu_save_state) */
    KVM_GET_MSR_INDEX_LIST,
    KVM_GET_MSR_FEATURE_INDEX_LIST,
    KVM_GET_SUPPORTED_CPUID,
    KVM_CHECK_EXTENSION,
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_GET_FPU,
    KVM_SET_FPU,
    KVM_GET_XSAVE,
    KVM_SET_XSAVE,
    KVM_GET_XSAVE2,
    KVM_GET_XCRS,
    KVM_SET_XCRS,
    KVM_GET_MSRS,
    KVM_SET_MSRS,
    KVM_GET_LAPIC,
    KVM_SET_LAPIC,
    KVM_GET_VCPU_EVENTS,
    KVM_SET_VCPU_EVENTS,
    KVM_GET_MP_STATE,
    KVM_SET_MP_STATE,
    KVM_GET_DEBUGREGS,
    KVM_SET_DEBUGREGS,
    KVM_GET_CPUID2,
    KVM_SET_CPUID2,
    KVM_GET_TSC_KHZ,
    KVM_SET_TSC_KHZ,
    KVM_KVMCLOCK_CTRL,
    KVM_GET_NESTED_STATE,
    KVM_SET_NESTED_STATE,
    KVM_SET_GUEST_DEBUG,
    KVM_TRANSLATE,
    KVM_GET_SREGS2,
    KVM_SET_SREGS2,
};

static const unsigned long vm_irq[] = {KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS, KVM_SIGNAL_MSI,
				       KVM_IRQFD,    KVM_IOEVENTFD,	  KVM_SET_GSI_ROUTING};

static const unsigned long vm_state[] = {
    KVM_GET_IRQCHIP,
    KVM_SET_IRQCHIP,
    KVM_GET_PIT2,
    KVM_SET_PIT2,
    KVM_GET_CLOCK,
    KVM_SET_CLOCK,
    KVM_GET_DIRTY_LOG,
    KVM_CLEAR_DIRTY_LOG,
    KVM_RESET_DIRTY_RINGS,
    KVM_SET_USER_MEMORY_REGION, /* dirty logging switched on for a first snapshot */
    KVM_CHECK_EXTENSION,
    KVM_GET_MSR_INDEX_LIST,
    KVM_GET_MSR_FEATURE_INDEX_LIST,
    KVM_GET_SUPPORTED_CPUID, /* the host CPU's identity a snapshot records */
};

#define LIST(a)                                           \
	do {                                              \
		*reqs = (a);                              \
		return (int)(sizeof(a) / sizeof((a)[0])); \
	} while (0)

int ehv_kvm_ioctls(enum ehv_ioctl_group group, const unsigned long **reqs)
{
	if (!reqs)
		return -EINVAL;
	switch (group) {
	case EHV_IOCTLS_VCPU_RUN:
		LIST(vcpu_run);
	case EHV_IOCTLS_VCPU_STATE:
		LIST(vcpu_state);
	case EHV_IOCTLS_VM_IRQ:
		LIST(vm_irq);
	case EHV_IOCTLS_VM_STATE:
		LIST(vm_state);
	}
	return -EINVAL;
}
