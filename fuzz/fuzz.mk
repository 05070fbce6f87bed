# fuzz/fuzz.mk - libFuzzer targets for the kernel image loaders (clang, from Debian).
#
#   make fuzz                 build o/fuzz/fuzz-bzimage and o/fuzz/fuzz-elf
#   make fuzz-run             run each for FUZZ_TIME seconds (default 60) from the seeds
#                             (synthetic images, plus the host's kernel header when present)
# Crashes leave reproducers in o/fuzz/ (crash-*) and fail the run.
FUZZ_CC ?= clang
FUZZ_O := o/fuzz
FUZZ_TIME ?= 60
FUZZ_LIB_SRCS := vmm/boot/bzimage.c vmm/boot/elf.c vmm/boot/linux.c vmm/boot/initramfs.c \
	vmm/mem.c vmm/util.c
FUZZ_FLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Iinclude -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS := $(FUZZ_O)/fuzz-bzimage $(FUZZ_O)/fuzz-elf

$(FUZZ_O)/fuzz-%: fuzz/fuzz_%.c $(FUZZ_LIB_SRCS) $(wildcard vmm/*.h vmm/boot/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIB_SRCS)

$(FUZZ_O)/mkseeds: fuzz/mkseeds.c tests/unit/vmm_fixtures.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -Wall -Wextra -o $@ $<

.PHONY: fuzz fuzz-run
fuzz: $(FUZZ_TARGETS)

fuzz-run: $(FUZZ_TARGETS) $(FUZZ_O)/mkseeds
	mkdir -p $(FUZZ_O)/seeds/bzimage $(FUZZ_O)/seeds/elf $(FUZZ_O)/corpus/bzimage $(FUZZ_O)/corpus/elf
	$(FUZZ_O)/mkseeds $(FUZZ_O)/seeds/bzimage $(FUZZ_O)/seeds/elf
	k=$$(ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n1); \
		[ -z "$$k" ] || head -c 65536 "$$k" > $(FUZZ_O)/seeds/bzimage/host-header
	for t in bzimage elf; do \
		$(FUZZ_O)/fuzz-$$t -max_total_time=$(FUZZ_TIME) -max_len=65536 -rss_limit_mb=1024 \
			-artifact_prefix=$(FUZZ_O)/ -print_final_stats=1 \
			$(FUZZ_O)/corpus/$$t $(FUZZ_O)/seeds/$$t || exit 1; \
	done
