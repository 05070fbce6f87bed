#!/bin/bash
# bench/seccomp_bench.sh - the cost of the seccomp filters: ember's boot time and its
# port-I/O exit round trip with --seccomp=kill (the default) vs --seccomp=off.
#
# usage (needs /dev/kvm: run it through the sandbox):
#   tools/kvm-sandbox/run.sh -- bench/seccomp_bench.sh
# Environment: EMBER_BIN (o/release/ember), ROUNDS (7), E2E_DIR (o/e2e).
# Rounds are interleaved (kill, off, kill, off...). Per round and mode:
#   boot_ms  wall time of `ember run` booting Debian's kernel (the e2e vmlinux
#            through PVH) with the e2e initramfs to its power-off
#   exit_cyc the guest's own TSC cycles per port-I/O exit round trip
#            (tests/guests/pvh32_exits.c: the best of 5 x 20000 exits)
# Prints every run, then the medians and the kill/off ratios.
set -uo pipefail
cd "$(dirname "$0")/.."
EMBER=${EMBER_BIN:-o/release/ember}
ROUNDS=${ROUNDS:-7}
E2E_DIR=${E2E_DIR:-o/e2e}
GUEST=o/release/guests/pvh32_exits.elf
CMDLINE="console=ttyS0 panic=-1 pci=noearly quiet i8042.noaux i8042.nomux i8042.dumbkbd \
e2e.cpus=1 e2e.mem=268435456 e2e.echo=0 e2e.action=poweroff"
for f in "$EMBER" "$E2E_DIR/vmlinux" "$E2E_DIR/initramfs.cpio" "$GUEST"; do
	[ -r "$f" ] || { echo "seccomp_bench: missing $f (run make)"; exit 1; }
done
declare -A boots exits
for r in $(seq "$ROUNDS"); do
	for mode in kill off; do
		t0=$(date +%s%N)
		"$EMBER" run -k "$E2E_DIR/vmlinux" -i "$E2E_DIR/initramfs.cpio" -m 256M \
			--cmdline "$CMDLINE" --seccomp=$mode </dev/null >/dev/null 2>&1
		st=$?
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		c=$("$EMBER" run -k "$GUEST" --cmdline "root=/dev/none" -m 64M --seccomp=$mode \
			</dev/null 2>/dev/null | tr -d '\r' | sed -n 's/^exits: best cycles_per_exit //p')
		echo "round $r $mode: boot_ms $ms (status $st) exit_cyc ${c:-?}"
		boots[$mode]+="$ms "
		exits[$mode]+="${c:-0} "
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bk=$(echo "${boots[kill]}" | median) bo=$(echo "${boots[off]}" | median)
ek=$(echo "${exits[kill]}" | median) eo=$(echo "${exits[off]}" | median)
echo "median boot_ms: kill $bk off $bo ratio $(awk -v a="$bk" -v b="$bo" 'BEGIN {printf "%.3f", a / b}')"
echo "median exit_cyc: kill $ek off $eo ratio $(awk -v a="$ek" -v b="$eo" 'BEGIN {printf "%.3f", a / b}')"
