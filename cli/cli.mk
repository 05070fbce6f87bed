# cli/cli.mk - the `ember` binary (a thin front on libember's VMM) and its man page.
EMBER_BIN := $(O)/ember
BINS += $(EMBER_BIN)
MAN1 += cli/ember.1
EXTRA_ALL += $(EMBER_BIN)

EMBER_CLI_OBJS := $(O)/cli/main.o $(O)/cli/ctl.o $(O)/cli/jail.o
# The binary takes the libraries' archives (Debian's -dev packages ship them):
# only the code it calls, and no dynamic loading of eight more shared objects,
# whose relocated data, symbol tables and init code were ~550 KiB of the VMM's
# resident memory (docs/PERFORMANCE.md, issue 10's RSS goal). The release
# binary is a static PIE, libc included (still placed at random): no dynamic
# loader at each start, 14 ms of every exec in the KVM sandbox (32 against
# 18 ms for `ember --version`), which a restore pays before anything else.
# AddressSanitizer's runtime needs the dynamic loader: MODE=asan links libc
# shared.
EMBER_STATIC_LIBS := -Wl,-Bstatic $(DECOMP_LIBS) $(URING_LIBS) $(JSON_LIBS) $(SECCOMP_LIBS) -Wl,-Bdynamic
ifeq ($(MODE),release)
  EMBER_STATIC_LIBS := -static-pie $(DECOMP_LIBS) $(URING_LIBS) $(JSON_LIBS) $(SECCOMP_LIBS)
endif
$(EMBER_BIN): $(EMBER_CLI_OBJS) $(LIBA)
	$(CC) -o $@ $(EMBER_CLI_OBJS) $(LIBA) -pthread $(SAN_LDFLAGS) $(LDFLAGS) $(EMBER_STATIC_LIBS)
