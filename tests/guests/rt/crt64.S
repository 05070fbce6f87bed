/* tests/guests/rt/crt64.S - entry point and interrupt stubs of the 64-bit test guests. */
#include "ucall.h"

/*
 * The host enters _start in 64-bit mode with RSP = the vCPU's stack, RDI = the
 * vCPU id and RSI = the test's argument (tests/lib/kvm_util.c).
 */
	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	andq $-16, %rsp
	pushq %rdi
	pushq %rsi
	call guest_rt_init
	popq %rsi
	popq %rdi
	call guest_main
	call guest_rt_done
1:	cli
	hlt
	jmp 1b

/*
 * 256 interrupt stubs, 16 bytes apart (guest_isr_stubs + 16 * vector): each
 * pushes a dummy error code when the CPU pushes none, then the vector.
 */
	.text
	.balign 16
	.globl guest_isr_stubs
guest_isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	.if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp guest_isr_common
	.set vec, vec + 1
	.endr

/* Saves the registers as struct guest_frame (guest.h), calls guest_isr(frame). */
guest_isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movq %rsp, %rdi
	call guest_isr
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq

	.section .note.GNU-stack, "", @progbits
