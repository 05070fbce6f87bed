/* tests/guests/rt/pvh32.S - PVH entry of the guests the VMM itself boots (tests/guests/pvh.mk). */

/*
 * The VMM enters pvh_start as the PVH boot ABI says: flat 32-bit protected
 * mode, paging off, interrupts off, EBX = the hvm_start_info, no stack.
 * This sets a stack and enters the pm32 runtime (crt32.S) with cpu 0 and
 * arg = the start_info address.
 */
	.section .text, "ax"
	.code32
	.globl pvh_start
pvh_start:
	movl $pvh_stack_top, %esp
	xorl %edi, %edi
	movl %ebx, %esi
	jmp _start

	.section .bss
	.balign 16
pvh_stack:
	.skip 16384
pvh_stack_top:

/* The PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY = 18): name "Xen", a 4-byte entry. */
	.section .note.Xen, "a"
	.balign 4
	.long 4, 4, 18
	.asciz "Xen"
	.balign 4
	.long pvh_start

	.section .note.GNU-stack, "", @progbits
