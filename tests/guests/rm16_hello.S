/* tests/guests/rm16_hello.S - real-mode guest: reports CR0 and a 32-bit sum, asserts, then DONE. */
#include "rm16.inc"

	.section .text.entry, "ax"
	.code16
	.globl _start
_start:
	movl %cr0, %ebx
	RM_SYNC2(%ebx, $0x1600)
	movl $0x12345678, %ecx
	addl $0x11111111, %ecx
	RM_ASSERT_EQ(%ecx, $0x23456789)
	RM_DONE

	.section .note.GNU-stack, "", @progbits
