/* tests/guests/rm16_assert.S - real-mode guest whose RM_ASSERT_EQ fails (on line 9). */
#include "rm16.inc"

	.section .text.entry, "ax"
	.code16
	.globl _start
_start:
	movl $0x1233, %ecx
	RM_ASSERT_EQ(%ecx, $0x1234)
	RM_DONE

	.section .note.GNU-stack, "", @progbits
