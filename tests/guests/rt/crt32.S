/* tests/guests/rt/crt32.S - entry point of the 32-bit protected-mode test guests. */

/*
 * The host enters _start in flat 32-bit protected mode (paging off) with
 * ESP = the vCPU's stack, EDI = the vCPU id and ESI = the test's argument.
 */
	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	andl $-16, %esp
	subl $8, %esp
	pushl %esi
	pushl %edi
	call guest_main
	addl $16, %esp
	call guest_rt_done
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
