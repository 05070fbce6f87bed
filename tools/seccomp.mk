# tools/seccomp.mk - the seccomp programs, built at build time: tools/seccomp-gen
# (linked with a copy of vmm/seccomp.c compiled without them) writes every
# thread kind's BPF for the kill and log modes into a header, and the library's
# vmm/seccomp.o compiles them in (EMBER_SECCOMP_PREBUILT), so a process does
# not build them with libseccomp at every start. Per MODE: AddressSanitizer's
# builds allow more calls (vmm/seccomp.c, sys_sanitizer).
SECCOMP_GEN := $(O)/tools/seccomp-gen
SECCOMP_PREBUILT := $(O)/gen/seccomp_prebuilt.h

$(O)/gen/seccomp-nopre.o: vmm/seccomp.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(SECCOMP_GEN): $(O)/tools/seccomp-gen.o $(O)/gen/seccomp-nopre.o $(O)/lib/hv/kvm/ioctls.o
	$(CC) -o $@ $^ $(ALL_LDFLAGS)

$(SECCOMP_PREBUILT): $(SECCOMP_GEN)
	@mkdir -p $(dir $@)
	ASAN_OPTIONS=detect_leaks=0 $(SECCOMP_GEN) $@

$(O)/vmm/seccomp.o: vmm/seccomp.c $(SECCOMP_PREBUILT)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DEMBER_SECCOMP_PREBUILT -I$(O)/gen -c -o $@ $<
