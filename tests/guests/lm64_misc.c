/* tests/guests/lm64_misc.c - 64-bit guest: one exit scenario per arg (hypercall, triple fault, ...). */
#include "guest.h"

#define KVM_HC_MAP_GPA_RANGE	  12
#define KVM_ENOSYS		  1000
#define KVM_EINVAL		  22
#define HV_X64_MSR_CRASH_P0	  0x40000100u
#define HV_X64_MSR_CRASH_CTL	  0x40000105u
#define HV_CRASH_CTL_CRASH_NOTIFY (1ull << 63)

enum { MISC_HYPERCALL = 1, MISC_TRIPLE_FAULT, MISC_EMUL_FAIL, MISC_HV_CRASH, MISC_EXEC_MMIO };

static void hypercall(void)
{
	/* refused in the kernel, no exit: unknown number, bad arguments */
	GUEST_ASSERT_EQ(kvm_hypercall(0x7fff, 0, 0, 0, 0), (uint64_t)-KVM_ENOSYS);
	GUEST_ASSERT_EQ(kvm_hypercall(KVM_HC_MAP_GPA_RANGE, 0x200001, 1, 0, 0),
			(uint64_t)-KVM_EINVAL);
	GUEST_ASSERT_EQ(kvm_hypercall(KVM_HC_MAP_GPA_RANGE, 0x200000, 0, 0, 0),
			(uint64_t)-KVM_EINVAL);
	/* goes to the host, which answers in RAX */
	GUEST_ASSERT_EQ(kvm_hypercall(KVM_HC_MAP_GPA_RANGE, 0x200000, 3, 0x10, 0), 0);
	GUEST_ASSERT_EQ(kvm_hypercall(KVM_HC_MAP_GPA_RANGE, 0x400000, 1, 0, 0), (uint64_t)-5);
}

void guest_main(unsigned long cpu, unsigned long arg)
{
	switch (arg >> 32) {
	case MISC_HYPERCALL:
		hypercall();
		break;
	case MISC_TRIPLE_FAULT: {
		struct {
			uint16_t limit;
			uint64_t base;
		} __attribute__((packed)) idtr = {0, 0};
		GUEST_SYNC(0);
		/* no IDT: #UD -> #GP -> #DF -> triple fault */
		__asm__ __volatile__("lidt %0; ud2" : : "m"(idtr));
		break;
	}
	case MISC_EMUL_FAIL: {
		/* x87 load from MMIO: KVM's emulator has no FLD */
		uint64_t mmio = arg & 0xffffffffu;
		GUEST_SYNC(0);
		__asm__ __volatile__("flds (%0)" : : "r"(mmio) : "memory");
		GUEST_SYNC(1);
		break;
	}
	case MISC_HV_CRASH:
		wrmsr(HV_X64_MSR_CRASH_P0, 0xc0ffee);
		wrmsr(HV_X64_MSR_CRASH_CTL, HV_CRASH_CTL_CRASH_NOTIFY);
		GUEST_SYNC(1);
		break;
	case MISC_EXEC_MMIO: {
		uint64_t mmio = arg & 0xffffffffu;
		GUEST_SYNC(0);
		((void (*)(void))(uintptr_t)mmio)();
		GUEST_SYNC(1);
		break;
	}
	default:
		GUEST_FAIL("unknown scenario", arg);
	}
}
