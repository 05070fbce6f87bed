/* vmm/arch/x86/e820.c - the guest's E820 memory map and the MSRs a booting kernel expects. */
#include "x86.h"
#include "layout.h"

unsigned vmm_x86_e820(const struct vmm_mem *mem, struct vmm_e820 *out, unsigned max)
{
	unsigned n = 0;
	uint64_t low_end = vmm_mem_low_end(mem);
#define ADD(a, s, t)                                                 \
	do {                                                         \
		if (n < max && (s) > 0)                              \
			out[n++] = (struct vmm_e820){(a), (s), (t)}; \
	} while (0)
	ADD(0, X86_EBDA_START, VMM_E820_RAM);
	/* The BIOS area holds the ACPI tables; the kernel reserves 640K..1M
	 * anyway, so listing it as reserved only makes that explicit. */
	ADD(X86_ACPI_ADDR, X86_HIMEM_START - X86_ACPI_ADDR, VMM_E820_RESERVED);
	if (low_end > X86_HIMEM_START)
		ADD(X86_HIMEM_START, low_end - X86_HIMEM_START, VMM_E820_RAM);
	for (unsigned i = 1; i < mem->nregions && i < VMM_MEM_MAX_REGIONS; i++)
		ADD(mem->regions[i].gpa, mem->regions[i].size, VMM_E820_RAM);
#undef ADD
	return n;
}

/* MSR numbers (Intel SDM vol. 4; AMD APM vol. 2 for the SYSCALL ones) */
#define MSR_IA32_TSC	      0x10
#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR	      0xc0000081
#define MSR_LSTAR	      0xc0000082
#define MSR_CSTAR	      0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

unsigned vmm_x86_boot_msrs(struct ehv_msr *out, unsigned max)
{
	static const struct ehv_msr msrs[] = {
	    {MSR_IA32_SYSENTER_CS, 0},
	    {MSR_IA32_SYSENTER_ESP, 0},
	    {MSR_IA32_SYSENTER_EIP, 0},
	    {MSR_STAR, 0},
	    {MSR_CSTAR, 0},
	    {MSR_KERNEL_GS_BASE, 0},
	    {MSR_SYSCALL_MASK, 0},
	    {MSR_LSTAR, 0},
	    {MSR_IA32_TSC, 0},
	    {MSR_IA32_MISC_ENABLE, 1},		 /* fast string operations */
	    {MSR_MTRR_DEF_TYPE, (1u << 11) | 6}, /* MTRRs on, default write-back */
	};
	unsigned n = 0;
	for (; n < max && n < sizeof(msrs) / sizeof(msrs[0]); n++)
		out[n] = msrs[n];
	return n;
}
