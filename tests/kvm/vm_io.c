/* tests/kvm/vm_io.c - ioeventfd and coalesced MMIO/PIO zones of the binding against real KVM. */
#include "vm_realmode.h"

#include <sys/eventfd.h>

/*
 * A: OUT word 0x1234 to port 0x600         (ioeventfd, any value)
 * B: OUT byte 0x42 to port 0x602           (ioeventfd, datamatch 0x42)
 *    OUT byte 0x43 to port 0x602           (does not match: exits)
 * C: MOV dword 0x11223344 to 0xd0000       (ioeventfd, any value)
 * D: MOV dword 0xcafe to 0xd0010           (ioeventfd, datamatch 0xcafe)
 *    MOV dword 0xbeef to 0xd0010           (does not match: exits)
 */
RM_GUEST(ioev_guest, "mov $0x1234, %ax\n"
		     "mov $0x600, %dx\n"
		     "out %ax, %dx\n"
		     "mov $0x42, %al\n"
		     "mov $0x602, %dx\n"
		     "out %al, %dx\n"
		     "mov $0x43, %al\n"
		     "out %al, %dx\n"
		     "mov $0xd000, %ax\n"
		     "mov %ax, %ds\n"
		     "movl $0x11223344, 0x0\n"
		     "movl $0xcafe, 0x10\n"
		     "movl $0xbeef, 0x10\n"
		     "hlt\n");

/* Reads an eventfd's counter without blocking (0 if it was not signalled). */
static uint64_t efd_take(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != sizeof(v)) {
		REQUIRE(errno == EAGAIN);
		return 0;
	}
	return v;
}

KVM_TEST(vm_ioeventfd)
{
	struct rm_vm t;
	rm_setup(&t, ioev_guest, ioev_guest_end);
	int fd[4];
	for (int i = 0; i < 4; i++) {
		fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		REQUIRE(fd[i] >= 0);
	}
	struct ekvm_ioeventfd a = {.addr = 0x600, .len = 2, .fd = fd[0], .pio = true};
	struct ekvm_ioeventfd b = {.addr = 0x602,
				   .len = 1,
				   .fd = fd[1],
				   .pio = true,
				   .has_datamatch = true,
				   .datamatch = 0x42};
	struct ekvm_ioeventfd c = {.addr = 0xd0000, .len = 4, .fd = fd[2]};
	struct ekvm_ioeventfd d = {
	    .addr = 0xd0010, .len = 4, .fd = fd[3], .has_datamatch = true, .datamatch = 0xcafe};
	REQUIRE_OK(ekvm_vm_ioeventfd(t.vm, &a));
	REQUIRE_OK(ekvm_vm_ioeventfd(t.vm, &b));
	REQUIRE_OK(ekvm_vm_ioeventfd(t.vm, &c));
	REQUIRE_OK(ekvm_vm_ioeventfd(t.vm, &d));

	/* duplicates: -EEXIST (also a datamatch one over a wildcard one) */
	CHECK_ERR(ekvm_vm_ioeventfd(t.vm, &a), -EEXIST);
	CHECK_ERR(ekvm_vm_ioeventfd(t.vm, &d), -EEXIST);
	struct ekvm_ioeventfd a2 = a;
	a2.has_datamatch = true;
	a2.datamatch = 0x99;
	CHECK_ERR(ekvm_vm_ioeventfd(t.vm, &a2), -EEXIST);
	/* a length that is not 0, 1, 2, 4 or 8: -EINVAL */
	struct ekvm_ioeventfd bad = {.addr = 0x610, .len = 3, .fd = fd[0], .pio = true};
	CHECK_ERR(ekvm_vm_ioeventfd(t.vm, &bad), -EINVAL);
	/* not an eventfd */
	bad.len = 1;
	bad.fd = -1;
	CHECK(ekvm_vm_ioeventfd(t.vm, &bad) < 0);

	/* A and B signal their eventfds without exiting: the first exit is the
	 * non-matching OUT */
	rm_expect_out(&t, 0x602, 1, 0x43);
	CHECK_EQ(efd_take(fd[0]), 1);
	CHECK_EQ(efd_take(fd[1]), 1);
	CHECK_EQ(efd_take(fd[2]), 0);
	/* C and D likewise; the non-matching store exits as MMIO */
	rm_expect_mmio_write(&t, 0xd0010, 4, 0xbeef);
	CHECK_EQ(efd_take(fd[2]), 1);
	CHECK_EQ(efd_take(fd[3]), 1);
	CHECK_EQ(efd_take(fd[0]), 0);
	rm_expect_kind(&t, EKVM_EXIT_HLT);

	/* remove A and D, run the same code again: those writes exit now */
	REQUIRE_OK(ekvm_vm_ioeventfd_remove(t.vm, &a));
	REQUIRE_OK(ekvm_vm_ioeventfd_remove(t.vm, &d));
	/* removing what is not registered: -ENOENT */
	CHECK_ERR(ekvm_vm_ioeventfd_remove(t.vm, &a), -ENOENT);
	rm_reset_regs(&t, RM_CODE);
	rm_expect_out(&t, 0x600, 2, 0x1234);
	rm_expect_out(&t, 0x602, 1, 0x43);
	rm_expect_mmio_write(&t, 0xd0010, 4, 0xcafe);
	rm_expect_mmio_write(&t, 0xd0010, 4, 0xbeef);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	CHECK_EQ(efd_take(fd[0]), 0);
	CHECK_EQ(efd_take(fd[1]), 1);
	CHECK_EQ(efd_take(fd[2]), 1);
	CHECK_EQ(efd_take(fd[3]), 0);

	REQUIRE_OK(ekvm_vm_ioeventfd_remove(t.vm, &b));
	REQUIRE_OK(ekvm_vm_ioeventfd_remove(t.vm, &c));
	for (int i = 0; i < 4; i++)
		close(fd[i]);
	rm_close(&t);
}

/* Three stores into the MMIO zone at 0xe0000 and an OUT to the PIO zone at
 * 0x700 (all coalesced), an OUT to 0x10 (exits), then a store that exits once
 * the zone is gone. */
RM_GUEST(coal_guest, "mov $0xe000, %ax\n"
		     "mov %ax, %ds\n"
		     "movb $0x11, 0x0\n"
		     "movw $0x2233, 0x4\n"
		     "movl $0x44556677, 0x8\n"
		     "mov $0x88, %al\n"
		     "mov $0x700, %dx\n"
		     "out %al, %dx\n"
		     "mov $0x99, %al\n"
		     "out %al, $0x10\n"
		     "movb $0x55, 0x0\n"
		     "hlt\n");

static void expect_entry(struct rm_vm *t, uint64_t addr, uint32_t len, uint64_t value, bool pio)
{
	struct kvm_coalesced_mmio e;
	memset(&e, 0xa5, sizeof(e));
	REQUIRE_EQ(ekvm_vcpu_coalesced_mmio_pop(t->vcpu, &e), 1);
	CHECK_EQ(e.phys_addr, addr);
	CHECK_EQ(e.len, len);
	CHECK_EQ(rm_le(e.data, len), value);
	CHECK_EQ(e.pio, pio);
}

KVM_TEST(vm_coalesced_mmio_and_pio)
{
	struct rm_vm t;
	rm_setup(&t, coal_guest, coal_guest_end);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_COALESCED_MMIO));
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_COALESCED_PIO));
	struct kvm_coalesced_mmio e;
	CHECK_EQ(ekvm_vcpu_coalesced_mmio_pop(t.vcpu, &e), 0); /* empty */
	REQUIRE_OK(ekvm_vm_register_coalesced(t.vm, 0xe0000, 0x1000, false));
	REQUIRE_OK(ekvm_vm_register_coalesced(t.vm, 0x700, 4, true));

	/* the four writes were batched: the first exit is the OUT to 0x10 */
	rm_expect_out(&t, 0x10, 1, 0x99);
	expect_entry(&t, 0xe0000, 1, 0x11, false);
	expect_entry(&t, 0xe0004, 2, 0x2233, false);
	expect_entry(&t, 0xe0008, 4, 0x44556677, false);
	expect_entry(&t, 0x700, 1, 0x88, true);
	CHECK_EQ(ekvm_vcpu_coalesced_mmio_pop(t.vcpu, &e), 0);

	/* zone removed: the next store exits */
	REQUIRE_OK(ekvm_vm_unregister_coalesced(t.vm, 0xe0000, 0x1000, false));
	rm_expect_mmio_write(&t, 0xe0000, 1, 0x55);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	CHECK_EQ(ekvm_vcpu_coalesced_mmio_pop(t.vcpu, &e), 0);
	REQUIRE_OK(ekvm_vm_unregister_coalesced(t.vm, 0x700, 4, true));
	rm_close(&t);
}

/* Fills the ring: 2000 coalesced stores, more than the ring holds, then HLT.
 * KVM exits to user space when the ring is full, without losing a write. */
RM_GUEST(coal_fill_guest, "mov $0xe000, %ax\n"
			  "mov %ax, %ds\n"
			  "mov $2000, %cx\n"
			  "xor %bx, %bx\n"
			  "1: mov %bx, 0x0\n"
			  "inc %bx\n"
			  "loop 1b\n"
			  "hlt\n");

KVM_TEST(vm_coalesced_mmio_ring_full)
{
	struct rm_vm t;
	rm_setup(&t, coal_fill_guest, coal_fill_guest_end);
	REQUIRE_OK(ekvm_vm_register_coalesced(t.vm, 0xe0000, 0x1000, false));
	unsigned next = 0, exits = 0;
	for (;;) {
		struct ekvm_exit ex;
		rm_run(&t, &ex);
		exits++;
		struct kvm_coalesced_mmio e;
		int r;
		while ((r = ekvm_vcpu_coalesced_mmio_pop(t.vcpu, &e)) == 1) {
			if (e.phys_addr != 0xe0000 || e.len != 2 || rm_le(e.data, 2) != next)
				TEST_FAIL("entry %u: addr 0x%llx len %u value %llu", next,
					  (unsigned long long)e.phys_addr, e.len,
					  (unsigned long long)rm_le(e.data, 2));
			next++;
		}
		REQUIRE_EQ(r, 0);
		if (ex.kind == EKVM_EXIT_HLT)
			break;
		/* a full ring ends KVM_RUN with the store done as a plain MMIO exit */
		REQUIRE_EQ(ex.kind, EKVM_EXIT_MMIO_WRITE);
		REQUIRE_EQ(ex.u.mmio.addr, 0xe0000);
		CHECK_EQ(rm_le(ex.u.mmio.data, 2), next);
		next++;
		REQUIRE(exits < 100);
	}
	TEST_LOG("%u entries in %u exits", next, exits);
	CHECK_EQ(next, 2000);
	CHECK(exits >= 2);
	rm_close(&t);
}
