/* vmm/arch/x86/x86.h - x86 board pieces: E820 map, CPUID filter, initial MSRs. */
#ifndef EMBER_VMM_X86_H
#define EMBER_VMM_X86_H

#include <ember/hv.h>

#include <stddef.h>
#include <stdint.h>

#include "../../boot/boot.h"
#include "../../../lib/io/mem.h"

/* The E820 map of guest memory: low RAM up to the EBDA, the reserved BIOS
 * area with the ACPI tables, RAM from 1 MiB to the hole, RAM above 4 GiB.
 * Returns the number of entries written to out (max >= VMM_E820_MAX). */
unsigned vmm_x86_e820(const struct vmm_mem *mem, struct vmm_e820 *out, unsigned max);

/* A CPUID table: nent entries (the layout of KVM's struct kvm_cpuid2 with
 * the neutral entries of <ember/hv.h>). Allocate with room for the entries. */
struct vmm_cpuid {
	uint32_t nent;
	struct ehv_x86_cpuid_entry entries[];
};

/*
 * CPUID for one vCPU, from what the hypervisor supports (KVM_GET_SUPPORTED_CPUID):
 *  - SVM and VMX are hidden (leaf 1 ECX.VMX, 0x80000001 ECX.SVM, leaf
 *    0x8000000A), so guests do not try nested virtualisation;
 *  - the hypervisor bit (leaf 1 ECX[31]) is set and KVM's paravirtual leaves
 *    0x40000000 ("KVMKVMKVM") and 0x40000001 (kvmclock and the other PV
 *    features KVM offers) are kept;
 *  - the topology is one package of ncpus cores, one thread each (more
 *    than 64 vCPUs: packages of 64 cores, as leaf 4 cannot count more):
 *    leaf 1 EBX (APIC ID, logical count), leaf 4 EAX core counts, leaves
 *    0xB and 0x1F (x2APIC topology), 0x80000008 ECX (core count) and
 *    0x8000001E agree with APIC ID = vcpu_index;
 *  - leaf 0xD lists only the XSAVE components whose features the guest
 *    sees (AVX, MPX, AVX-512, PKRU, AMX), with the maximum size to match.
 * host is not modified. On success *out is a new struct (free() it).
 * Returns 0, -EINVAL (vcpu_index >= ncpus, ncpus 0 or > 254, or host NULL)
 * or -ENOMEM.
 */
int vmm_x86_cpuid(const struct vmm_cpuid *host, unsigned vcpu_index, unsigned ncpus,
		  struct vmm_cpuid **out);

/* The host's physical address width (CPUID 0x80000008 EAX[7:0]; 36 when
 * the leaf is missing, as the SDM says). KVM refuses memory slots above it. */
unsigned vmm_x86_host_phys_bits(void);
/* The most guest RAM a host with phys_bits can map: the RAM plus the MMIO
 * hole below 4 GiB must end below 2^phys_bits, and KVM takes at most
 * 2^31 - 1 pages per memory slot; never more than EMBER_MAX_MEM. A
 * multiple of 2 MiB. */
uint64_t vmm_x86_max_guest_ram(unsigned phys_bits, uint64_t hole_size);

/*
 * The XCR0 a vCPU starts with: every user XSAVE component leaf 0xD of c
 * lists (c as vmm_x86_cpuid made it), or 0 when the guest has no XSAVE
 * (leaf 1 ECX.XSAVE clear) and XCR0 stays at its reset value. XCR0 has no
 * effect before the guest sets CR4.OSXSAVE, and an OS writes it before
 * using XSAVE; starting with the components the guest will enable makes
 * KVM's leaf 0xD.0 EBX (the XSAVE size for the current XCR0, which KVM only
 * recomputes when it sees an XSETBV exit) agree with the per-component
 * sizes even where XSETBV does not exit, as under nested SVM on QEMU TCG:
 * there Linux warned "XSAVE consistency problem: size 2696 != kernel_size
 * 576".
 */
uint64_t vmm_x86_initial_xcr0(const struct vmm_cpuid *c);

/* Finds an entry (NULL if absent); for tests and the board. */
const struct ehv_x86_cpuid_entry *vmm_x86_cpuid_find(const struct vmm_cpuid *c, uint32_t function,
						     uint32_t index);

/* The MSRs a booting kernel expects (SYSENTER/SYSCALL MSRs zeroed, TSC 0,
 * fast strings enabled, MTRRs enabled with write-back default). Fills up to
 * max entries (struct ehv_msr of <ember/hv.h>) and returns how many. */
unsigned vmm_x86_boot_msrs(struct ehv_msr *out, unsigned max);

#endif /* EMBER_VMM_X86_H */
