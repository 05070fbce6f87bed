/* tests/unit/kvm_guest.c - the convenience tier's contract without /dev/kvm: NULL handles, table sizes. */
#include <ember/kvm_guest.h>

#include <errno.h>

#include "../lib/test.h"

TEST(kvm_guest_null_handles)
{
	struct ekvm_guest_mem *m = (struct ekvm_guest_mem *)1;
	CHECK_ERR(ekvm_guest_mem_create(NULL, 0, 0, 0x1000, &m), -EINVAL);
	CHECK(m == NULL);
	CHECK(ekvm_guest_mem_vm(NULL) == NULL);
	CHECK_EQ(ekvm_guest_mem_slot(NULL), 0);
	CHECK_EQ(ekvm_guest_mem_gpa(NULL), 0);
	CHECK_EQ(ekvm_guest_mem_size(NULL), 0);
	CHECK(ekvm_guest_mem_host(NULL) == NULL);
	CHECK(ekvm_guest_mem_ptr(NULL, 0, 0) == NULL);
	char b[4];
	CHECK_ERR(ekvm_guest_mem_read(NULL, 0, b, sizeof(b)), -EINVAL);
	CHECK_ERR(ekvm_guest_mem_write(NULL, 0, b, sizeof(b)), -EINVAL);
	ekvm_guest_mem_destroy(NULL);
	CHECK_ERR(ekvm_vcpu_setup_real(NULL, 0, 0x7c00, 0, 0x7000), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_prot32(NULL, NULL, NULL, 0x100000, 0x80000), -EINVAL);
	CHECK_ERR(ekvm_vcpu_setup_long64(NULL, NULL, NULL, 0x100000, 0x80000), -EINVAL);
}

TEST(kvm_guest_tables_size)
{
	/* 0x3000 (PML4, PDPT, GDT page) + one PD per GiB with 2 MiB pages */
	CHECK_EQ(ekvm_guest_tables_size(2u << 20, EKVM_GUEST_PAGE_2M), 0x4000);
	CHECK_EQ(ekvm_guest_tables_size(1ull << 30, EKVM_GUEST_PAGE_2M), 0x4000);
	CHECK_EQ(ekvm_guest_tables_size((1ull << 30) + 1, EKVM_GUEST_PAGE_2M), 0x5000);
	CHECK_EQ(ekvm_guest_tables_size(4ull << 30, EKVM_GUEST_PAGE_2M), 0x7000);
	CHECK_EQ(ekvm_guest_tables_size(EKVM_GUEST_MAP_MAX, EKVM_GUEST_PAGE_2M),
		 0x3000 + 512 * 0x1000);
	CHECK_EQ(ekvm_guest_tables_size(EKVM_GUEST_MAP_MAX, EKVM_GUEST_PAGE_1G), 0x3000);
	CHECK_EQ(ekvm_guest_tables_size(EKVM_GUEST_MAP_MAX + 1, EKVM_GUEST_PAGE_2M), 0);
	CHECK_EQ(ekvm_guest_tables_size(0, EKVM_GUEST_PAGE_2M), 0);
	CHECK_EQ(ekvm_guest_tables_size(1u << 20, 4096), 0);
	CHECK_EQ(ekvm_guest_tables_size(1u << 20, 0), 0);
}
