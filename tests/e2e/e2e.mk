# tests/e2e/e2e.mk - artifacts of the end-to-end tests, built on the host: the test initramfs and the PVH vmlinux.
#
#   make check-e2e    runs tests/e2e/run.sh on /dev/kvm (natively or in the KVM sandbox)
#
# The artifacts do not depend on MODE and live in o/e2e/. They are part of
# `make` when the host has a Debian kernel in /boot and a static busybox.
E2E_DIR := o/e2e
E2E_KERNEL ?= $(shell ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n1)
E2E_ARTIFACTS := $(E2E_DIR)/initramfs.cpio $(E2E_DIR)/initramfs-fs.cpio $(E2E_DIR)/vmlinux
ifneq ($(E2E_KERNEL),)
ifneq ($(wildcard /bin/busybox),)
EXTRA_ALL += $(E2E_ARTIFACTS)
endif
endif

# the kernel's release, for its pvpanic modules (/boot/vmlinuz-RELEASE)
E2E_RELEASE := $(patsubst vmlinuz-%,%,$(notdir $(E2E_KERNEL)))
$(E2E_DIR)/initramfs.cpio: tests/e2e/init.sh tests/e2e/mkinitramfs.sh $(E2E_KERNEL) \
		$(E2E_DIR)/vsock-tool
	E2E_VSOCK_TOOL=$(E2E_DIR)/vsock-tool tests/e2e/mkinitramfs.sh $@ /bin/busybox $(E2E_RELEASE)

# the same with a filesystem kit appended (ext4's modules, e2fsck): for the
# snapshot test that checks its disk's filesystem after a restore
$(E2E_DIR)/initramfs-fs.cpio: $(E2E_DIR)/initramfs.cpio tests/e2e/mkinitramfs-fs.sh
	tests/e2e/mkinitramfs-fs.sh $@ $(E2E_DIR)/initramfs.cpio $(E2E_RELEASE)

# the vsock peer, static (libc6-dev's libc.a): in the guest for AF_VSOCK, on
# the host for the Unix-socket side
$(E2E_DIR)/vsock-tool: tests/e2e/vsock-tool.c
	@mkdir -p $(dir $@)
	$(CC) -static -std=gnu11 -O2 $(WARN) -D_GNU_SOURCE -o $@ $<

$(E2E_DIR)/vmlinux: $(E2E_KERNEL) tests/e2e/extract-vmlinux.sh
	tests/e2e/extract-vmlinux.sh $(E2E_KERNEL) $@

# A fresh, writable copy of the Debian root filesystem image for the rootfs test
# (tools/mkrootfs.sh builds it once and caches it in ~/.cache/ember), in a
# folder of its own that the sandbox shares writable.
E2E_ROOTFS_DIR := $(E2E_DIR)/rootfs
.PHONY: e2e-rootfs
e2e-rootfs:
	@mkdir -p $(E2E_ROOTFS_DIR)
	tools/mkrootfs.sh -o $(E2E_ROOTFS_DIR)/root.img

.PHONY: check-e2e
check-e2e: $(O)/ember $(E2E_ARTIFACTS) e2e-rootfs
	EMBER_BIN=$(O)/ember tools/kvm-sandbox/run.sh --mem 1536M --timeout 1200 \
		--rw $(E2E_ROOTFS_DIR) -- tests/e2e/run.sh

# The library's VM lifecycle on real KVM with the e2e guest (tests/e2e/lifecycle.c),
# run by tests/e2e/run.sh next to the ember binary.
TEST_LIFECYCLE := $(O)/test-lifecycle
EXTRA_ALL += $(TEST_LIFECYCLE)
$(TEST_LIFECYCLE): $(O)/tests/e2e/lifecycle.o $(TESTLIB_OBJS) $(LIBA)
	$(CC) -o $@ $(O)/tests/e2e/lifecycle.o $(TESTLIB_OBJS) $(LIBA) $(ALL_LDFLAGS)

# Device controls through the library on real KVM (tests/e2e/devctl.c: the
# balloon lowers this process's RSS and gives the memory back; a rate limit
# changed at run time), run by run.sh.
TEST_DEVCTL := $(O)/test-devctl
EXTRA_ALL += $(TEST_DEVCTL)
$(TEST_DEVCTL): $(O)/tests/e2e/devctl.o $(TESTLIB_OBJS) $(LIBA)
	$(CC) -o $@ $(O)/tests/e2e/devctl.o $(TESTLIB_OBJS) $(LIBA) $(ALL_LDFLAGS)

# Guest-visible control actions through the library on real KVM
# (tests/e2e/ctlacpi.c: ACPI buttons and a GPE event, an RTC interrupt, a disk
# resize, a Debian rootfs powering off on the power button), run by run.sh.
TEST_CTLACPI := $(O)/test-ctlacpi
EXTRA_ALL += $(TEST_CTLACPI)
$(TEST_CTLACPI): $(O)/tests/e2e/ctlacpi.o $(TESTLIB_OBJS) $(LIBA)
	$(CC) -o $@ $(O)/tests/e2e/ctlacpi.o $(TESTLIB_OBJS) $(LIBA) $(ALL_LDFLAGS)
# Snapshots on real KVM (tests/e2e/snapshot.c: a restored guest counts on, two
# clones, an incremental, corrupt snapshots refused, restore vs cold boot),
# run by run.sh.
TEST_SNAPSHOT := $(O)/test-snapshot
EXTRA_ALL += $(TEST_SNAPSHOT)
$(TEST_SNAPSHOT): $(O)/tests/e2e/snapshot.o $(TESTLIB_OBJS) $(LIBA)
	$(CC) -o $@ $(O)/tests/e2e/snapshot.o $(TESTLIB_OBJS) $(LIBA) $(ALL_LDFLAGS)
