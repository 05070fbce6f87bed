/* tests/kvm/vm_memory.c - memory slots and dirty logging of the binding against real KVM. */
#include "vm_realmode.h"

#define PAGE 4096u

/* Reads the word at 0x20000 three times (the host changes the memory, then
 * removes the slot between the reads), reports each on port 0x10. */
RM_GUEST(mem_read_guest, "mov $0x2000, %ax\n"
			 "mov %ax, %ds\n"
			 "mov 0x0, %ax\n"
			 "out %ax, $0x10\n"
			 "mov 0x0, %ax\n"
			 "out %ax, $0x10\n"
			 "mov 0x0, %ax\n"
			 "out %ax, $0x10\n"
			 "hlt\n");

KVM_TEST(vm_memory_region_set_read_remove)
{
	struct rm_vm t;
	struct ekvm_exit ex;
	rm_setup(&t, mem_read_guest, mem_read_guest_end);
	uint8_t *ram1 = rm_alloc(0x10000);
	ram1[0] = 0x34;
	ram1[1] = 0x12;
	struct kvm_userspace_memory_region r = {
	    .slot = 1,
	    .flags = 0,
	    .guest_phys_addr = 0x20000,
	    .memory_size = 0x10000,
	    .userspace_addr = (uintptr_t)ram1,
	};
	REQUIRE_OK(ekvm_vm_set_user_memory_region(t.vm, &r));

	/* the guest sees what the host put there */
	rm_expect_out(&t, 0x10, 2, 0x1234);
	/* the slot maps the host memory itself: a host write is seen at once */
	ram1[0] = 0x78;
	ram1[1] = 0x56;
	rm_expect_out(&t, 0x10, 2, 0x5678);

	/* removed: the same read is now an MMIO read that user space answers */
	REQUIRE_OK(ekvm_vm_remove_memory(t.vm, 1));
	rm_run(&t, &ex);
	REQUIRE_EQ(ex.kind, EKVM_EXIT_MMIO_READ);
	CHECK_EQ(ex.u.mmio.addr, 0x20000);
	REQUIRE_EQ(ex.u.mmio.len, 2);
	ex.u.mmio.data[0] = 0xcd;
	ex.u.mmio.data[1] = 0xab;
	rm_expect_out(&t, 0x10, 2, 0xabcd);
	rm_expect_kind(&t, EKVM_EXIT_HLT);

	/* removing it again, or a slot never set: -EINVAL, slot 0 unharmed */
	CHECK_ERR(ekvm_vm_remove_memory(t.vm, 1), -EINVAL);
	CHECK_ERR(ekvm_vm_remove_memory(t.vm, 7), -EINVAL);
	CHECK_OK(ekvm_vm_set_memory(t.vm, 1, 0, 0x20000, 0x10000, ram1));
	CHECK_ERR(ekvm_vm_set_memory(t.vm, 2, 0, 0, RM_MEM_SIZE, t.mem), -EEXIST);

	munmap(ram1, 0x10000);
	rm_close(&t);
}

/* Reads 0x30000, writes it, reads it again; results on port 0x11. */
RM_GUEST(mem_ro_guest, "mov $0x3000, %ax\n"
		       "mov %ax, %ds\n"
		       "mov 0x0, %ax\n"
		       "out %ax, $0x11\n"
		       "movw $0x9999, 0x0\n"
		       "mov 0x0, %ax\n"
		       "out %ax, $0x11\n"
		       "hlt\n");

KVM_TEST(vm_memory_readonly_slot)
{
	struct rm_vm t;
	rm_setup(&t, mem_ro_guest, mem_ro_guest_end);
	REQUIRE(rm_has_cap(t.sys, KVM_CAP_READONLY_MEM));
	uint8_t *rom = rm_alloc(PAGE);
	rom[0] = 0x42;
	rom[1] = 0x42;
	REQUIRE_OK(ekvm_vm_set_memory(t.vm, 2, KVM_MEM_READONLY, 0x30000, PAGE, rom));

	rm_expect_out(&t, 0x11, 2, 0x4242);
	/* a guest write to a read-only slot exits as an MMIO write */
	rm_expect_mmio_write(&t, 0x30000, 2, 0x9999);
	/* and did not reach the memory */
	rm_expect_out(&t, 0x11, 2, 0x4242);
	CHECK_EQ(rom[0], 0x42);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	munmap(rom, PAGE);
	rm_close(&t);
}

KVM_TEST(vm_memory_region_errors)
{
	struct rm_vm t;
	rm_open(&t);
	uint8_t *ram = rm_alloc(0x10000);
	REQUIRE_OK(ekvm_vm_set_memory(t.vm, 1, 0, 0x20000, 0x10000, ram));

	/* overlapping another slot: -EEXIST (inside, straddling the start, the end) */
	CHECK_ERR(ekvm_vm_set_memory(t.vm, 2, 0, 0x20000, PAGE, ram), -EEXIST);
	CHECK_ERR(ekvm_vm_set_memory(t.vm, 2, 0, 0x1f000, 2 * PAGE, ram), -EEXIST);
	CHECK_ERR(ekvm_vm_set_memory(t.vm, 2, 0, 0x2f000, 2 * PAGE, ram), -EEXIST);
	/* misaligned guest address, size or host address: -EINVAL */
	CHECK_ERR(ekvm_vm_set_memory(t.vm, 2, 0, 0x40100, PAGE, ram), -EINVAL);
	CHECK_ERR(ekvm_vm_set_memory(t.vm, 2, 0, 0x40000, PAGE + 1, ram), -EINVAL);
	CHECK_ERR(ekvm_vm_set_memory(t.vm, 2, 0, 0x40000, PAGE, ram + 1), -EINVAL);
	/* unknown flags: -EINVAL */
	CHECK_ERR(ekvm_vm_set_memory(t.vm, 2, 1u << 20, 0x40000, PAGE, ram), -EINVAL);
	/* a slot number beyond KVM_CAP_NR_MEMSLOTS: -EINVAL */
	int nslots = ekvm_vm_check_extension(t.vm, KVM_CAP_NR_MEMSLOTS);
	REQUIRE(nslots > 0);
	CHECK_ERR(ekvm_vm_set_memory(t.vm, (uint32_t)nslots, 0, 0x40000, PAGE, ram), -EINVAL);
	/* the adjacent range is free */
	CHECK_OK(ekvm_vm_set_memory(t.vm, 2, 0, 0x30000, PAGE, ram));
	/* after removal the range can be reused by another slot */
	REQUIRE_OK(ekvm_vm_remove_memory(t.vm, 1));
	CHECK_OK(ekvm_vm_set_memory(t.vm, 3, 0, 0x20000, PAGE, ram));
	rm_close(&t);
	munmap(ram, 0x10000);
}

/* Dirties pages 0, 3 and 5 of the slot at 0x20000, syncs (OUT 0x10),
 * dirties pages 3 and 9, syncs, halts. */
RM_GUEST(dirty_guest, "mov $0x2000, %ax\n"
		      "mov %ax, %ds\n"
		      "movb $1, 0x0000\n"
		      "movb $1, 0x3000\n"
		      "movb $1, 0x5000\n"
		      "out %al, $0x10\n"
		      "movb $2, 0x3004\n"
		      "movb $2, 0x9000\n"
		      "out %al, $0x10\n"
		      "hlt\n");

#define DIRTY_PAGES 16u

static uint64_t bits(int a, int b, int c)
{
	uint64_t v = 0;
	if (a >= 0)
		v |= 1ull << a;
	if (b >= 0)
		v |= 1ull << b;
	if (c >= 0)
		v |= 1ull << c;
	return v;
}

static uint64_t dirty_log(struct rm_vm *t)
{
	uint64_t bitmap[2] = {~0ull, ~0ull}; /* one bit per page, rounded up to 64 */
	REQUIRE_OK(ekvm_vm_get_dirty_log(t->vm, 1, bitmap));
	CHECK_EQ(bitmap[1], ~0ull); /* KVM wrote only one 64-bit word */
	return bitmap[0];
}

static uint8_t *dirty_setup(struct rm_vm *t)
{
	rm_setup(t, dirty_guest, dirty_guest_end);
	uint8_t *ram = rm_alloc(DIRTY_PAGES * PAGE);
	REQUIRE_OK(ekvm_vm_set_memory(t->vm, 1, KVM_MEM_LOG_DIRTY_PAGES, 0x20000,
				      DIRTY_PAGES * PAGE, ram));
	return ram;
}

KVM_TEST(vm_dirty_log)
{
	struct rm_vm t;
	uint8_t *ram = dirty_setup(&t);
	CHECK_EQ(dirty_log(&t), 0);
	rm_expect_out(&t, 0x10, 1, 0);
	CHECK_EQ(dirty_log(&t), bits(0, 3, 5));
	CHECK_EQ(ram[0x3000], 1);
	/* KVM_GET_DIRTY_LOG cleared the log and re-armed tracking */
	CHECK_EQ(dirty_log(&t), 0);
	rm_expect_out(&t, 0x10, 1, 0);
	CHECK_EQ(dirty_log(&t), bits(3, 9, -1));
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	/* a slot without KVM_MEM_LOG_DIRTY_PAGES has no log */
	uint64_t bitmap[2];
	CHECK_ERR(ekvm_vm_get_dirty_log(t.vm, 0, bitmap), -ENOENT);
	rm_close(&t);
	munmap(ram, DIRTY_PAGES * PAGE);
}

KVM_TEST(vm_dirty_log_manual_clear)
{
	struct rm_vm t;
	uint8_t *ram = dirty_setup(&t);
	int caps = ekvm_vm_check_extension(t.vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	TEST_LOG("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = %d", caps);
	if (caps <= 0) {
		rm_close(&t);
		munmap(ram, DIRTY_PAGES * PAGE);
		TEST_SKIP("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is absent (Linux < 5.3)");
	}
	REQUIRE(caps & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
	uint64_t bitmap;
	struct kvm_enable_cap cap = {
	    .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
	    .args = {1ull << 40},
	};
	/* an option KVM does not know: -EINVAL */
	CHECK_ERR(ekvm_vm_enable_cap(t.vm, &cap), -EINVAL);
	cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
	REQUIRE_OK(ekvm_vm_enable_cap(t.vm, &cap));

	rm_expect_out(&t, 0x10, 1, 0);
	CHECK_EQ(dirty_log(&t), bits(0, 3, 5));
	/* with manual protection, reading the log does not clear it */
	CHECK_EQ(dirty_log(&t), bits(0, 3, 5));
	/* clear pages 0 and 3 only */
	bitmap = bits(0, 3, -1);
	REQUIRE_OK(ekvm_vm_clear_dirty_log(t.vm, 1, 0, DIRTY_PAGES, &bitmap));
	CHECK_EQ(dirty_log(&t), bits(5, -1, -1));
	/* clearing re-armed tracking of page 3: the guest's next write shows */
	rm_expect_out(&t, 0x10, 1, 0);
	CHECK_EQ(dirty_log(&t), bits(3, 5, 9));
	bitmap = ~0ull >> (64 - DIRTY_PAGES);
	REQUIRE_OK(ekvm_vm_clear_dirty_log(t.vm, 1, 0, DIRTY_PAGES, &bitmap));
	CHECK_EQ(dirty_log(&t), 0);
	/* first_page must be a multiple of 64 */
	CHECK_ERR(ekvm_vm_clear_dirty_log(t.vm, 1, 1, DIRTY_PAGES - 1, &bitmap), -EINVAL);
	/* a range past the end of the slot */
	CHECK_ERR(ekvm_vm_clear_dirty_log(t.vm, 1, 0, DIRTY_PAGES + 64, &bitmap), -EINVAL);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	rm_close(&t);
	munmap(ram, DIRTY_PAGES * PAGE);
}

/* Reads one byte of each of the 16 pages at 0x20000, OUT 0x10, then of the
 * 16 at 0x30000, OUT 0x10, halts. */
RM_GUEST(prefault_guest, "mov $0x2000, %ax\n"
			 "1:\n"
			 "mov %ax, %ds\n"
			 "mov 0x0, %bl\n"
			 "add $0x100, %ax\n"
			 "cmp $0x3000, %ax\n"
			 "jne 2f\n"
			 "out %al, $0x10\n"
			 "2:\n"
			 "cmp $0x4000, %ax\n"
			 "jne 1b\n"
			 "out %al, $0x10\n"
			 "hlt\n");

KVM_TEST(vm_memory_pre_fault)
{
	struct rm_vm t;
	rm_setup(&t, prefault_guest, prefault_guest_end);
	uint8_t *ram1 = rm_alloc(2 * DIRTY_PAGES * PAGE);
	memset(ram1, 0x5a, 2 * DIRTY_PAGES * PAGE); /* present in the host */
	REQUIRE_OK(ekvm_vm_set_memory(t.vm, 1, 0, 0x20000, 2 * DIRTY_PAGES * PAGE, ram1));
	uint64_t left = 0;
	if (!rm_has_cap(t.sys, KVM_CAP_PRE_FAULT_MEMORY)) {
		/* an older kernel refuses the ioctl and says nothing was mapped */
		int r = ekvm_vcpu_pre_fault_memory(t.vcpu, 0x20000, PAGE, &left);
		TEST_LOG("no KVM_CAP_PRE_FAULT_MEMORY (Linux < 6.10): %s", strerror(-r));
		CHECK(r < 0);
		CHECK_EQ(left, PAGE);
		munmap(ram1, 2 * DIRTY_PAGES * PAGE);
		rm_close(&t);
		return;
	}
	/* the code page first, so that only the data pages remain to fault */
	int vfd = ekvm_vcpu_stats_fd(t.vcpu);
	REQUIRE(vfd >= 0);
	REQUIRE_OK(ekvm_vcpu_pre_fault_memory(t.vcpu, 0, RM_MEM_SIZE, &left));
	CHECK_EQ(left, 0);
	/* slot 1's first 16 pages mapped ahead: the guest's reads of them take
	 * no page fault */
	REQUIRE_OK(ekvm_vcpu_pre_fault_memory(t.vcpu, 0x20000, DIRTY_PAGES * PAGE, &left));
	CHECK_EQ(left, 0);
	uint64_t pf0 = 0, pf1 = 0, pf2 = 0;
	REQUIRE_OK(ekvm_stats_read_by_name(vfd, "pf_taken", &pf0));
	rm_expect_kind(&t, EKVM_EXIT_IO_OUT);
	REQUIRE_OK(ekvm_stats_read_by_name(vfd, "pf_taken", &pf1));
	/* the next 16 pages, not pre-faulted, fault as the guest reads them */
	rm_expect_kind(&t, EKVM_EXIT_IO_OUT);
	REQUIRE_OK(ekvm_stats_read_by_name(vfd, "pf_taken", &pf2));
	TEST_LOG("pf_taken %llu -> %llu over 16 pre-faulted pages, -> %llu over 16 others",
		 (unsigned long long)pf0, (unsigned long long)pf1, (unsigned long long)pf2);
	CHECK_EQ(pf1 - pf0, 0);
	CHECK(pf2 - pf1 >= 1);
	rm_expect_kind(&t, EKVM_EXIT_HLT);
	/* errors: unaligned or empty (-EINVAL), outside every slot (-ENOENT,
	 * nothing mapped) */
	CHECK_ERR(ekvm_vcpu_pre_fault_memory(t.vcpu, 0x20001, PAGE, &left), -EINVAL);
	CHECK_ERR(ekvm_vcpu_pre_fault_memory(t.vcpu, 0x20000, 0, &left), -EINVAL);
	CHECK_ERR(ekvm_vcpu_pre_fault_memory(t.vcpu, 0x40000000, PAGE, &left), -ENOENT);
	CHECK_EQ(left, PAGE);
	close(vfd);
	munmap(ram1, 2 * DIRTY_PAGES * PAGE);
	rm_close(&t);
}
