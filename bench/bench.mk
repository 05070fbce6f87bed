# bench/bench.mk - benchmark programs (run by tools/bench.sh, never by the test suite).
BENCH_BINS := $(O)/kvm-bench
EXTRA_ALL += $(BENCH_BINS)

$(O)/kvm-bench: $(O)/bench/kvm_bench.o $(LIBA)
	$(CC) -o $@ $< $(LIBA) $(ALL_LDFLAGS)
