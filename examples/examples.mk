# examples/examples.mk - example programs built against libember.
EXAMPLES := $(O)/hello $(O)/longmode
EXTRA_ALL += $(EXAMPLES)

$(O)/hello: $(O)/examples/hello.o $(LIBA)
	$(CC) -o $@ $< $(LIBA) $(ALL_LDFLAGS)

$(O)/longmode: $(O)/examples/longmode.o $(LIBA)
	$(CC) -o $@ $< $(LIBA) $(ALL_LDFLAGS)
