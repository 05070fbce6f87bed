# bench/bench.mk - benchmark programs (run by tools/bench.sh, never by the test suite).
BENCH_BINS := $(O)/kvm-bench
EXTRA_ALL += $(BENCH_BINS)

$(O)/kvm-bench: $(O)/bench/kvm_bench.o $(LIBA)
	$(CC) -o $@ $< $(LIBA) $(ALL_LDFLAGS)

# The vCPU layer's benchmark (bench/hv_bench.c): neutral layer vs raw binding, kick latency.
ifneq ($(wildcard bench/hv_bench.c),)
BENCH_BINS += $(O)/hv-bench
EXTRA_ALL += $(O)/hv-bench
$(O)/hv-bench: $(O)/bench/hv_bench.o $(LIBA)
	$(CC) -o $@ $< $(LIBA) $(ALL_LDFLAGS)
endif

# The control socket's latencies (bench/ctl_bench.c): ctl-bench SOCKET [N] against a
# VM run with --socket.
BENCH_BINS += $(O)/ctl-bench
EXTRA_ALL += $(O)/ctl-bench
$(O)/ctl-bench: $(O)/bench/ctl_bench.o $(LIBA)
	$(CC) -o $@ $< $(LIBA) $(ALL_LDFLAGS)
