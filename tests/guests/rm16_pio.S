/* tests/guests/rm16_pio.S - real-mode guest: OUT and IN of 1, 2 and 4 bytes; checks what IN read. */
#include "rm16.inc"

	.section .text.entry, "ax"
	.code16
	.globl _start
_start:
	/* OUT, immediate port: byte, word, dword */
	movb $0xa5, %al
	outb %al, $0x10
	movw $0xbeef, %ax
	outw %ax, $0x12
	movl $0xdeadbeef, %eax
	outl %eax, $0x14
	/* OUT, port in DX (above 0xff) */
	movw $0x1234, %dx
	movw $0x5a6b, %ax
	outw %ax, %dx

	/* IN: the host answers; the upper bits must stay as they were */
	movl $0x11223300, %eax
	inb $0x10, %al
	RM_ASSERT_EQ(%eax, $0x1122333c)
	movl $0x11220000, %eax
	inw $0x12, %ax
	RM_ASSERT_EQ(%eax, $0x1122cafe)
	xorl %eax, %eax
	inl $0x14, %eax
	RM_ASSERT_EQ(%eax, $0x89abcdef)
	movw $0x1234, %dx
	xorl %eax, %eax
	inb %dx, %al
	RM_ASSERT_EQ(%eax, $0x7e)
	RM_DONE

	.section .note.GNU-stack, "", @progbits
