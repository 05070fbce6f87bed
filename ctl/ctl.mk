# ctl/ctl.mk - the control plane (ctl/, linked into libember by the Makefile's LIB_SRCS): docs/PROTOCOL.md's generated request section, and the unit test that checks it.
#
#   make protocol-doc    rewrites the request section of docs/PROTOCOL.md from the
#                        command table (ctl/proto.c) with o/MODE/protocol-doc
PROTOCOL_DOC := $(O)/protocol-doc
EXTRA_ALL += $(PROTOCOL_DOC)

$(PROTOCOL_DOC): $(O)/tools/protocol-doc.o $(LIBA_INTERNAL)
	$(CC) -o $@ $< $(LIBA_INTERNAL) $(ALL_LDFLAGS)

.PHONY: protocol-doc
protocol-doc: $(PROTOCOL_DOC)
	$(PROTOCOL_DOC) docs/PROTOCOL.md

$(O)/tests/unit/ctl_proto.o: ALL_CFLAGS += -DEMBER_TEST_SRCDIR='"$(CURDIR)"'
$(O)/tests/unit/ctl_server.o: ALL_CFLAGS += -DEMBER_TEST_BIN='"$(CURDIR)/$(O)/ember"'
# the CLI test runs the ember binary
$(TEST_UNIT): | $(O)/ember
