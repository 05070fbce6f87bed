# tests/unit/kvm.mk - gives the EKVM_IOCTL compile test (tests/unit/kvm_ioctl_check.c) the compiler and the source tree, and the layering check the tree.
$(O)/tests/unit/kvm_ioctl_check.o: ALL_CFLAGS += -DEMBER_TEST_CC='"$(CC)"' -DEMBER_TEST_SRCDIR='"$(CURDIR)"'
# and the layering check (tests/unit/vmm_layering.c) the source tree it scans.
$(O)/tests/unit/vmm_layering.o: ALL_CFLAGS += -DEMBER_TEST_SRCDIR='"$(CURDIR)"'
