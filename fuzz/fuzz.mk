# fuzz/fuzz.mk - `make fuzz`: libFuzzer targets for the kernel loaders, the config parser, the virtqueue walker, virtio-blk, virtio-vsock, virtio-net, virtio-balloon, virtio-console, virtio-rng, the device state reader, the control protocol's decoder and the vCPU layer's saved state (clang only; not part of `make`).
#
# Each target links its harness with just the library sources it needs,
# compiled with -fsanitize=fuzzer-no-link,address,undefined into o/fuzz/obj.
# Run them with fuzz/run.sh [SECONDS] or `make fuzz-run FUZZ_TIME=N` (N s per
# target, default 60); `make check` runs fuzz/run.sh 20.

FUZZ_CC ?= clang
FUZZ_O := o/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer $(WARN) -D_GNU_SOURCE -Iinclude \
	-fno-strict-aliasing -pthread -MMD -MP $(FUZZ_SAN)
FUZZ_TARGETS := bzimage elf boot config virtqueue virtio_blk virtio_vsock virtio_net \
	virtio_balloon virtio_console virtio_rng devstate ctl
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_O)/fuzz_%) $(FUZZ_O)/mkseeds

# What the loaders pull in; the config parser adds vmm/config.c and the device list
# (vmm/devmgr.c, vmm/arch/x86/devices.c) that --dry-run prints.
FUZZ_BOOT_SRCS := vmm/boot/bzimage.c vmm/boot/decompress.c vmm/boot/elf.c vmm/boot/linux.c \
	vmm/boot/initramfs.c vmm/boot/kcache.c lib/io/mem.c lib/io/util.c
FUZZ_BOOT_OBJS := $(FUZZ_BOOT_SRCS:%.c=$(FUZZ_O)/obj/%.o)
FUZZ_CONFIG_OBJS := $(FUZZ_BOOT_OBJS) $(FUZZ_O)/obj/vmm/config.o $(FUZZ_O)/obj/vmm/devmgr.o \
	$(FUZZ_O)/obj/lib/io/bus.o $(FUZZ_O)/obj/vmm/util.o $(FUZZ_O)/obj/vmm/tap.o \
	$(FUZZ_O)/obj/vmm/arch/x86/devices.o $(FUZZ_O)/obj/vmm/arch/x86/cpuid.o
# --vsock's path check lives in the muxer (vmm/vsock_host.c), which needs the
# loop and the device
FUZZ_CONFIG_OBJS += $(addprefix $(FUZZ_O)/obj/,vmm/vsock_host.o vmm/loop.o \
	devices/virtio/vsock.o devices/virtio/virtqueue.o devices/virtio/mmio.o lib/io/state.o)
# --seccomp's values are vmm/seccomp.c's (its filters name the KVM ioctls)
FUZZ_CONFIG_OBJS += $(addprefix $(FUZZ_O)/obj/,vmm/seccomp.o lib/hv/kvm/ioctls.o)

FUZZ_TIME ?= 60

.PHONY: fuzz fuzz-run
fuzz: $(FUZZ_BINS)
fuzz-run:
	fuzz/run.sh $(FUZZ_TIME)

$(FUZZ_O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_O)/fuzz_bzimage: $(FUZZ_O)/obj/fuzz/fuzz_bzimage.o $(FUZZ_BOOT_OBJS)
$(FUZZ_O)/fuzz_elf: $(FUZZ_O)/obj/fuzz/fuzz_elf.o $(FUZZ_BOOT_OBJS)
$(FUZZ_O)/fuzz_boot: $(FUZZ_O)/obj/fuzz/fuzz_boot.o $(FUZZ_BOOT_OBJS)
$(FUZZ_O)/fuzz_config: $(FUZZ_O)/obj/fuzz/fuzz_config.o $(FUZZ_CONFIG_OBJS)
FUZZ_VIRTIO_OBJS := $(addprefix $(FUZZ_O)/obj/,devices/virtio/virtqueue.o devices/virtio/mmio.o \
	devices/virtio/blk.o devices/virtio/ratelimit.o devices/virtio/net.o lib/io/bus.o \
	lib/io/state.o) $(FUZZ_BOOT_OBJS)
$(FUZZ_O)/fuzz_virtqueue: $(FUZZ_O)/obj/fuzz/fuzz_virtqueue.o $(FUZZ_VIRTIO_OBJS)
$(FUZZ_O)/fuzz_virtio_blk: $(FUZZ_O)/obj/fuzz/fuzz_virtio_blk.o $(FUZZ_VIRTIO_OBJS)
$(FUZZ_O)/fuzz_virtio_vsock: $(FUZZ_O)/obj/fuzz/fuzz_virtio_vsock.o $(FUZZ_VIRTIO_OBJS) \
	$(FUZZ_O)/obj/devices/virtio/vsock.o
$(FUZZ_O)/fuzz_virtio_net: $(FUZZ_O)/obj/fuzz/fuzz_virtio_net.o $(FUZZ_VIRTIO_OBJS)
# balloon, console, rng: the device's vq_pop and vq_push go through
# fuzz/fuzz_vq.h's checks first (the balloon's vmm_mem_discard too)
$(FUZZ_O)/fuzz_virtio_balloon: $(FUZZ_O)/obj/fuzz/fuzz_virtio_balloon.o $(FUZZ_VIRTIO_OBJS) \
	$(FUZZ_O)/obj/devices/virtio/balloon.o
$(FUZZ_O)/fuzz_virtio_console: $(FUZZ_O)/obj/fuzz/fuzz_virtio_console.o $(FUZZ_VIRTIO_OBJS) \
	$(FUZZ_O)/obj/devices/virtio/console.o
$(FUZZ_O)/fuzz_virtio_rng: $(FUZZ_O)/obj/fuzz/fuzz_virtio_rng.o $(FUZZ_VIRTIO_OBJS) \
	$(FUZZ_O)/obj/devices/virtio/rng.o
FUZZ_VQ_WRAP := -Wl,--wrap=vq_pop,--wrap=vq_push
$(FUZZ_O)/fuzz_virtio_console $(FUZZ_O)/fuzz_virtio_rng: FUZZ_LDFLAGS = $(FUZZ_VQ_WRAP)
$(FUZZ_O)/fuzz_virtio_balloon: FUZZ_LDFLAGS = $(FUZZ_VQ_WRAP),--wrap=vmm_mem_discard
# the device state reader behind every device's load
FUZZ_DEVSTATE_OBJS := $(addprefix $(FUZZ_O)/obj/,devices/serial8250.o devices/i8042.o \
	devices/rtc_cmos.o devices/bootmarker.o devices/pvpanic.o devices/reset_cf9.o \
	devices/pci_host.o devices/virtio/rng.o devices/virtio/console.o devices/virtio/balloon.o \
	devices/virtio/vsock.o) $(FUZZ_VIRTIO_OBJS)
$(FUZZ_O)/fuzz_devstate: $(FUZZ_O)/obj/fuzz/fuzz_devstate.o $(FUZZ_DEVSTATE_OBJS)
# the control protocol's decoder (ctl/proto.c on json-c)
$(FUZZ_O)/fuzz_ctl: $(FUZZ_O)/obj/fuzz/fuzz_ctl.o $(FUZZ_O)/obj/ctl/proto.o
$(FUZZ_TARGETS:%=$(FUZZ_O)/fuzz_%):
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -pthread $(FUZZ_LDFLAGS) -o $@ $^ $(DECOMP_LIBS) \
		$(URING_LIBS) $(JSON_LIBS) $(SECCOMP_LIBS)

# the seed generator: a plain host program (no fuzzer runtime)
$(FUZZ_O)/mkseeds: fuzz/mkseeds.c tests/unit/vmm_fixtures.h lib/io/util.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 -g -O1 $(WARN) -D_GNU_SOURCE -Iinclude -o $@ fuzz/mkseeds.c $(DECOMP_LIBS)

# snaphv: the vCPU layer's saved-state blobs (fuzz_hv_state.c) on the mock
# backend; the KVM backend and the binding are linked (core.c refers to them)
# but not used.
FUZZ_HV_OBJS := $(addprefix $(FUZZ_O)/obj/,$(patsubst %.c,%.o,$(sort $(wildcard lib/hv/*.c \
	lib/hv/*/*.c lib/kvm/*.c))))
# the binding's ioctl buffers put a flexible-array header first (a GNU C
# extension gcc accepts silently)
$(filter $(FUZZ_O)/obj/lib/kvm/%,$(FUZZ_HV_OBJS)): FUZZ_CFLAGS += -Wno-gnu-variable-sized-type-not-at-end
fuzz: $(FUZZ_O)/fuzz_hv_state
$(FUZZ_O)/fuzz_hv_state: $(FUZZ_O)/obj/fuzz/fuzz_hv_state.o $(FUZZ_HV_OBJS)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -pthread -o $@ $^
