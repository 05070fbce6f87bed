# Ember - GNU make build. Output goes to o/$(MODE)/ (out of tree).
#
#   make                 build the library, tools and test binaries (MODE=release)
#   make MODE=asan       the same with AddressSanitizer + UBSan (LeakSanitizer on)
#   make check           the whole test suite (tools/check.sh): unit tests natively in
#                        both modes, KVM tests on /dev/kvm or inside the KVM sandbox
#   make check-unit      unit tests only, this MODE
#   make check-kvm       KVM tests only (natively or in the sandbox), both modes
#   make bench           benchmarks (in the sandbox), writes docs/PERFORMANCE.md
#   make format / check-format / headers / symbols / install (PREFIX, DESTDIR)
#                        (symbols: libember.a and .so export only ekvm_/ehv_/ember_)
#
# Per-directory fragments (*.mk) add sources and rules; this file holds the
# common part. Every directory's sources are picked up by wildcard.

MODE ?= release
O := o/$(MODE)
CC ?= gcc
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man

EMBER_SOVERSION := 0
EMBER_VERSION := 0.1.0

WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wmissing-prototypes \
	-Wstrict-prototypes -Wvla -Wformat=2
BASE_CFLAGS := -std=gnu11 -g $(WARN) -D_GNU_SOURCE -Iinclude -fPIC -fno-strict-aliasing \
	-pthread -MMD -MP
ifeq ($(MODE),asan)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  SAN_LDFLAGS := -fsanitize=address,undefined
else ifeq ($(MODE),release)
  OPT := -O2
  SAN_LDFLAGS :=
else
  $(error MODE must be release or asan)
endif
ALL_CFLAGS := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
# Host-side decompression of bzImage payloads (vmm/boot/decompress.c):
# liblzma (xz, lzma), zlib (gzip), libzstd, liblz4, libbz2.
DECOMP_LIBS := -llzma -lz -lzstd -llz4 -lbz2
# virtio-blk's io_uring engine (devices/virtio/blk.c; Debian's liburing-dev)
URING_LIBS := -luring
# the control protocol's JSON (ctl/; Debian's libjson-c-dev)
JSON_LIBS := -ljson-c
# per-thread seccomp filters (vmm/seccomp.c; Debian's libseccomp-dev)
SECCOMP_LIBS := -lseccomp
ALL_LDFLAGS := -pthread $(SAN_LDFLAGS) $(LDFLAGS) $(DECOMP_LIBS) $(URING_LIBS) $(JSON_LIBS) $(SECCOMP_LIBS)

# ---------------------------------------------------------------- sources
# The library: layer 1 (lib/kvm), layer 2 (lib/hv), layer 3 (vmm, devices).
LIB_SRCS := $(sort $(wildcard lib/kvm/*.c lib/hv/*.c lib/io/*.c lib/hv/*/*.c vmm/*.c vmm/*/*.c \
	vmm/*/*/*.c devices/*.c devices/*/*.c ctl/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
TESTLIB_SRCS := $(wildcard tests/lib/*.c)
TESTLIB_OBJS := $(TESTLIB_SRCS:%.c=$(O)/%.o)
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(O)/%.o)
KVM_SRCS := $(wildcard tests/kvm/*.c)
KVM_OBJS := $(KVM_SRCS:%.c=$(O)/%.o)
PUBLIC_HEADERS := $(wildcard include/ember/*.h)

# Fragments may add: GUEST_OBJS (linked into test-kvm), BINS, EXTRA_ALL,
# UNIT_EXTRA_OBJS, KVM_EXTRA_OBJS, rules.
GUEST_OBJS :=
BINS :=
MAN1 :=
EXTRA_ALL :=
UNIT_EXTRA_OBJS :=
KVM_EXTRA_OBJS :=

LIBA := $(O)/libember.a
# Every object with every symbol global: what the tests link (they reach
# private code such as the bus and the devices); never installed.
LIBA_INTERNAL := $(O)/libember-internal.a
LIBSO := $(O)/libember.so.$(EMBER_SOVERSION)
TEST_UNIT := $(O)/test-unit
TEST_KVM := $(O)/test-kvm

.DEFAULT_GOAL := all
include $(sort $(wildcard */*.mk */*/*.mk))

.PHONY: all check check-unit check-kvm bench format check-format headers symbols install clean \
	lib tests
all: lib tests headers symbols $(EXTRA_ALL)
lib: $(LIBA) $(LIBSO)
tests: $(TEST_UNIT) $(TEST_KVM)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# libember.a exports what libember.so exports: the objects are linked into
# one relocatable object (ld -r), then every defined global symbol but those
# the version script lib/libember.map makes global is made local (objcopy
# --keep-global-symbol, with the map's wildcards). Private code (bus_*,
# aml_*, the devices, ...) is then invisible to a program linking the archive.
LD ?= ld
OBJCOPY ?= objcopy
EXPORT_PATTERNS := $(shell sed -n '/global:/,/local:/s/^[[:space:]]*\([A-Za-z0-9_*]*\);.*/\1/p' \
	lib/libember.map)
$(O)/libember.o: $(LIB_OBJS) lib/libember.map
	@mkdir -p $(dir $@)
	$(LD) -r -o $@.tmp $(LIB_OBJS)
	$(OBJCOPY) -w $(EXPORT_PATTERNS:%=--keep-global-symbol='%') $@.tmp $@
	rm -f $@.tmp

$(LIBA): $(O)/libember.o
	rm -f $@
	ar rcs $@ $^

$(LIBA_INTERNAL): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(LIBSO): $(LIB_OBJS) lib/libember.map
	$(CC) -shared -Wl,-soname,libember.so.$(EMBER_SOVERSION) \
		-Wl,--version-script=lib/libember.map -Wl,-z,defs -o $@ $(LIB_OBJS) $(ALL_LDFLAGS)

$(TEST_UNIT): $(UNIT_OBJS) $(UNIT_EXTRA_OBJS) $(TESTLIB_OBJS) $(LIBA_INTERNAL)
	$(CC) -o $@ $(UNIT_OBJS) $(UNIT_EXTRA_OBJS) $(TESTLIB_OBJS) $(LIBA_INTERNAL) \
		$(ALL_LDFLAGS)

$(TEST_KVM): $(KVM_OBJS) $(KVM_EXTRA_OBJS) $(GUEST_OBJS) $(TESTLIB_OBJS) $(LIBA_INTERNAL)
	$(CC) -o $@ $(KVM_OBJS) $(KVM_EXTRA_OBJS) $(GUEST_OBJS) $(TESTLIB_OBJS) \
		$(LIBA_INTERNAL) $(ALL_LDFLAGS)

# Every public header compiles on its own (C and C++ not required).
HEADER_OKS := $(PUBLIC_HEADERS:include/%.h=$(O)/hdrcheck/%.ok)
headers: $(HEADER_OKS)
$(O)/hdrcheck/%.ok: include/%.h
	@mkdir -p $(dir $@)
	echo '#include <$*.h>' | $(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) -Wno-missing-prototypes -x c -c -o /dev/null -
	@touch $@

# Both libraries export only the public prefixes (the symbol check is
# independent of lib/libember.map: it lists what the archive and the shared
# object really define as global).
symbols: $(O)/symbols.ok
$(O)/symbols.ok: $(LIBA) $(LIBSO)
	@{ nm -g --defined-only $(LIBA) | awk 'NF == 3 { print $$3 }'; \
	   nm -D --defined-only $(LIBSO) | awk 'NF == 3 && $$2 != "A" { print $$3 }' | sed 's/@.*//'; } | \
		grep -vE '^(ekvm_|ehv_|ember_)' | sort -u >$@.bad || true
	@if [ -s $@.bad ]; then \
		echo "symbols: libember exports symbols outside ekvm_/ehv_/ember_:"; \
		cat $@.bad; rm -f $@.bad; exit 1; fi
	@rm -f $@.bad
	@touch $@

check-unit: $(TEST_UNIT)
	$(TEST_UNIT)

check:
	tools/check.sh

check-kvm:
	tools/check.sh --kvm-only

bench:
	tools/bench.sh

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRCS)
check-format:
	clang-format --dry-run -Werror $(FORMAT_SRCS)

# ---------------------------------------------------------------- install
install: lib
	@mkdir -p $(O)
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(EMBER_VERSION)|' \
		ember.pc.in > $(O)/ember.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/ember
	install -m 0644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/ember/
	install -m 0644 $(LIBA) $(DESTDIR)$(LIBDIR)/
	install -m 0755 $(LIBSO) $(DESTDIR)$(LIBDIR)/
	ln -sf libember.so.$(EMBER_SOVERSION) $(DESTDIR)$(LIBDIR)/libember.so
	install -m 0644 $(O)/ember.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	$(foreach b,$(BINS),install -D -m 0755 $(b) $(DESTDIR)$(PREFIX)/bin/$(notdir $(b));)
	$(foreach m,$(MAN1),install -D -m 0644 $(m) $(DESTDIR)$(MANDIR)/man1/$(notdir $(m));)

clean:
	rm -rf o

-include $(shell find o -name '*.d' 2>/dev/null)
