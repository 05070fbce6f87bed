# tools/kvm-sandbox/sandbox.mk - builds kvm-probe, the /dev/kvm smoke test that
# tools/check.sh runs first in the sandbox (a failing probe means a broken harness).
KVM_PROBE := $(O)/kvm-probe
EXTRA_ALL += $(KVM_PROBE)

$(KVM_PROBE): $(O)/tools/kvm-sandbox/kvm-probe.o
	$(CC) -o $@ $^ $(ALL_LDFLAGS)
