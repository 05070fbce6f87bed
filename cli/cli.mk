# cli/cli.mk - the `ember` binary (a thin front on libember's VMM) and its man page.
EMBER_BIN := $(O)/ember
BINS += $(EMBER_BIN)
MAN1 += cli/ember.1
EXTRA_ALL += $(EMBER_BIN)

$(EMBER_BIN): $(O)/cli/main.o $(LIBA)
	$(CC) -o $@ $(O)/cli/main.o $(LIBA) $(ALL_LDFLAGS)
