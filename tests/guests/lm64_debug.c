/* tests/guests/lm64_debug.c - 64-bit guest for guest-debug exits: single-step, hw/sw breakpoints. */
#include "guest.h"

extern const char ss_start[], ss_1[], ss_2[], ss_3[], hw_bp[], sw_bp[];
static volatile uint32_t watched, probe_var;
static volatile uint64_t db_count;

static void on_db(struct guest_frame *f)
{
	db_count++;
	__asm__ __volatile__("mov %0, %%dr7" : : "r"(0ull));
}

void guest_main(unsigned long cpu, unsigned long arg)
{
	uint64_t rax;

	/* 1. single-step: the host steps until ss_1, then checks each step */
	GUEST_SYNC((uintptr_t)ss_start, (uintptr_t)ss_1, (uintptr_t)ss_2, (uintptr_t)ss_3);
	__asm__ __volatile__(".globl ss_start, ss_1, ss_2, ss_3\n"
			     "ss_start: nop\n"
			     "ss_1: movabs $0x1122334455667788, %%rax\n"
			     "ss_2: inc %%rax\n"
			     "ss_3: nop\n"
			     : "=a"(rax));
	GUEST_ASSERT_EQ(rax, 0x1122334455667789ull);

	/* 2. hardware execution breakpoint, a few instructions after the
	 * ucall (one on the instruction KVM resumes at after the exit did not
	 * fire on a nested VMX host) */
	GUEST_SYNC((uintptr_t)hw_bp);
	__asm__ __volatile__("nop; nop\n.globl hw_bp\nhw_bp: nop");

	/* 3. can this CPU do data breakpoints at all? a guest-owned one */
	guest_set_handler(1, on_db);
	__asm__ __volatile__("mov %0, %%dr0; mov %1, %%dr7"
			     :
			     : "r"((uint64_t)(uintptr_t)&probe_var), "r"(0xd0401ull));
	probe_var = 1;
	__asm__ __volatile__("mov %0, %%dr7" : : "r"(0ull));
	guest_set_handler(1, 0);
	GUEST_SYNC(db_count);

	/* 4. write watchpoint on `watched` (set by the host) */
	GUEST_SYNC((uintptr_t)&watched);
	watched = 0x600d;
	GUEST_SYNC(watched);

	/* 5. software breakpoint: with KVM_GUESTDBG_USE_SW_BP, int3 exits to
	 * the host (else it is a #BP in this guest: an unexpected exception) */
	GUEST_SYNC((uintptr_t)sw_bp);
	__asm__ __volatile__(".globl sw_bp\nsw_bp: int3\nnop");
	GUEST_SYNC(2);
}
