#!/bin/bash
# tools/bench.sh - run Ember's benchmarks on real KVM (natively or in one sandbox boot)
# and write docs/PERFORMANCE.md. Benchmarks are never part of the test suite.
#
# Every benchmark program prints lines "BENCH <name> <value> <unit>"; each
# comparison is made side by side in the same run and reported as a ratio.
# Usage: tools/bench.sh [--no-write]   (make bench)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WRITE=1
[ "${1:-}" = --no-write ] && WRITE=0

make -j2 MODE=release all >/dev/null
# the Debian root file system image for bench/io_bench.sh's fio and iperf3
# (tools/mkrootfs.sh builds it once and caches it; resolved here, on the
# host: the sandbox has another HOME)
ROOTFS=$(tools/mkrootfs.sh -q) || { echo "bench: tools/mkrootfs.sh failed" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "bench: iperf3 not found (tools/install-deps.sh)" >&2; exit 1; }
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	echo "bench: note: the working tree has uncommitted changes; the figures are of them" >&2
	DIRTY=" (plus uncommitted changes)"
else
	DIRTY=""
fi

OUT=$(mktemp -d /tmp/ember-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# The programs run inside one sandbox boot, in this order. A program that
# is not built (a later layer) is left out.
INNER=$OUT/inner.sh
cat > "$INNER" <<EOS
#!/bin/sh
cd "$ROOT"
echo "BENCHENV kernel \$(uname -r)"
echo "BENCHENV cpu \$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "BENCHENV cpus \$(nproc)"
if [ "\${EMBER_SANDBOX:-0}" = 1 ]; then
	echo "BENCHENV where sandbox: a QEMU TCG guest with nested AMD SVM (kvm_amd)"
else
	echo "BENCHENV where native: \$(cd /sys/module && echo kvm_*)"
fi
rc=0
# program and arguments: exits per round, rounds (paired, interleaved), then
# VM cycles (kvm-bench) or kicks (hv-bench)
for p in "o/release/kvm-bench 5000 15 21" "o/release/hv-bench 3000 15 200"; do
	[ -x "\${p%% *}" ] || continue
	echo "BENCHRUN \$p"
	\$p || rc=1
done
if [ -x bench/boot_bench.sh ]; then
	echo "BENCHRUN bench/boot_bench.sh"
	bench/boot_bench.sh || rc=1
fi
# snapshots (tests/e2e/snapshot.c): restore vs a cold boot of the same guest,
# snapshot take time and size, incremental vs full
if [ -x o/release/test-snapshot ] && [ -f o/e2e/vmlinux ]; then
	echo "BENCHRUN o/release/test-snapshot snapshot_restore_time_against_cold_boot"
	o/release/test-snapshot snapshot_restore_time_against_cold_boot || rc=1
fi
# restore against a cold boot to the first instruction and to a shell that
# answers on the console, and against QEMU's -incoming (bench/restore_bench.sh)
if [ -x bench/restore_bench.sh ] && [ -f o/e2e/vmlinux ]; then
	echo "BENCHRUN bench/restore_bench.sh"
	bench/restore_bench.sh || rc=1
fi
if [ -x bench/io_bench.sh ]; then
	echo "BENCHRUN IO_BENCH_ROOTFS=ROOTFS.img bench/io_bench.sh"
	IO_BENCH_ROOTFS=$ROOTFS bench/io_bench.sh || rc=1
fi
exit \$rc
EOS
chmod +x "$INNER"

CMD=(tools/kvm-sandbox/run.sh --mem 2048M --timeout 2700 -- "$INNER")
echo "bench: ${CMD[*]}" >&2
"${CMD[@]}" | tee "$OUT/log"
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || { echo "bench: a benchmark failed (status $status)" >&2; exit 1; }
[ "$WRITE" = 1 ] || exit 0

host_cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
# what follows the marker line in the old file (figures measured by hand, the
# previous run's table) is kept below the new table
MARK='<!-- measured by hand below this line: kept by make bench -->'
KEEP=$OUT/kept.md
sed -n "/^$MARK\$/,\$p" docs/PERFORMANCE.md >"$KEEP" 2>/dev/null || :
{
	echo "# Ember performance"
	echo
	echo "Written by \`make bench\` (tools/bench.sh) on $(date -u +%Y-%m-%d) at commit"
	echo "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$DIRTY. Do not edit by hand; rerun it."
	echo
	echo "- Machine: $host_cpu, $(nproc) cores, $(uname -r)"
	grep '^BENCHENV ' "$OUT/log" | sed 's/^BENCHENV \([a-z]*\) /- KVM host \1: /; s/^- KVM host where: /- KVM: /'
	echo "- Commands: \`tools/kvm-sandbox/run.sh --mem 2048M -- <each program>\`:"
	grep '^BENCHRUN ' "$OUT/log" | sed 's/^BENCHRUN /  `/; s/$/`/'
	echo
	echo "Absolute times inside the sandbox are not hardware figures (an exit costs"
	echo "tens of microseconds under nested TCG). Each comparison runs side by side in"
	echo "the same process and boot, interleaved; the ratio is the figure."
	echo
	echo "| benchmark | value | unit | goal |"
	echo "|---|---|---|---|"
	grep '^BENCH ' "$OUT/log" | while read -r _ name value unit; do
		goal=""
		case "$name" in
		kvm.pio.ratio | kvm.mmio.ratio) goal="≤ 1.02" ;;
		kvm.vm_lifecycle.ratio) goal="≤ 1.05" ;;
		hv.*.ratio) goal="≤ 1.05" ;;
		boot.ember.bzimage_vs_pvh.init_ratio) goal="≤ 1.05" ;;
		boot.ember_bootproto_vs_pvh.init_ratio) goal="" ;;
		boot.*ratio*) goal="≤ 0.5" ;;
		boot.*rss*) goal="" ;;
		snapshot.restore_vs_boot.*) goal="≤ 0.05" ;;
		restore.ember.restore_vs_cold.* | restore.ember.restore_ahead_vs_cold.*) goal="≤ 0.05" ;;
		io.blk.*.ratio | io.net.*.ratio) goal="≥ 1.0" ;;
		io.boot.devs_vs_plain.init_ratio) goal="≤ 1.05" ;;
		io.rss.ember_all6.excl_guest_kib) goal="≤ 3072" ;;
		esac
		echo "| $name | $value | $unit | $goal |"
	done
	if [ -s "$KEEP" ]; then
		echo
		cat "$KEEP"
	else
		echo
		echo "$MARK"
	fi
} > docs/PERFORMANCE.md.new
mv docs/PERFORMANCE.md.new docs/PERFORMANCE.md
echo "bench: wrote docs/PERFORMANCE.md" >&2
