# tests/unit/kvm.mk - gives the EKVM_IOCTL compile test (tests/unit/kvm_ioctl_check.c) the compiler and the source tree, and the ioctl coverage test (kvm_coverage.c) and the layering check (vmm_layering.c) the source tree they scan.
$(O)/tests/unit/kvm_ioctl_check.o: ALL_CFLAGS += -DEMBER_TEST_CC='"$(CC)"' -DEMBER_TEST_SRCDIR='"$(CURDIR)"'
$(O)/tests/unit/kvm_coverage.o: ALL_CFLAGS += -DEMBER_TEST_SRCDIR='"$(CURDIR)"'
$(O)/tests/unit/vmm_layering.o: ALL_CFLAGS += -DEMBER_TEST_SRCDIR='"$(CURDIR)"'
