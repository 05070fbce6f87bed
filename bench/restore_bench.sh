#!/bin/bash
# bench/restore_bench.sh - snapshot restore against a cold boot (Ember), and
# Ember's restore against QEMU's `-incoming` from a file of `migrate`, side by
# side in one sandbox boot (run by tools/bench.sh inside tools/kvm-sandbox/run.sh;
# needs a working /dev/kvm). Issue 11's benchmarks.
#
# The guest, the same for both VMMs: the e2e suite's Debian 6.1 vmlinux
# (o/e2e/vmlinux, entered through PVH by both) or RESTORE_BENCH_KERNEL; an
# initramfs of a static busybox whose /init (bench/restore/init.sh) prints
# RESTORE-BENCH-READY and runs an interactive shell on ttyS0; 256 MiB, 1 vCPU;
# boot_bench.sh's command line. Kernel and initramfs are copied to a tmpfs first.
# QEMU 7.2 in its fastest configuration (docs/notes: peers.md):
# -accel kvm -cpu host -M microvm,pit=on,pic=on,rtc=on, -serial stdio, a QMP socket.
#
# Each run is timed by bench/restore/run1.py on the host clock from just before
# the VMM process is forked:
#   console_ms  until the guest's shell answered a line typed on the console
#               (`echo RB$((6*7))`, until RB42 comes back; a restore types
#               `echo RS$((6*7))` and waits for RS42, so that no answer to a
#               probe from before the snapshot counts). A cold boot: typed
#               every 20 ms from the READY marker on (/init prints it before the
#               shell reads its tty; a slower retype would only lengthen the cold
#               boot). A restore: typed once at the start, as a user would, and
#               again every second without an answer (the count is logged; a
#               restore that copies memory first takes longer than that): the
#               snapshot holds the shell at its prompt, reading. Until
#               2026-12-04 it was typed every 20 ms from the start there too,
#               and the guest answered only after echoing the 8-10 lines queued
#               while the VMM started: 435 port I/O exits, 143 with one line.
#               The harness answers the shell's cursor position requests as a
#               terminal does (from 2026-12-06; busybox sleeps 20 ms after a
#               line read while one is unanswered) and no longer polls.
#   running_ms  (Ember) until ember -v logged "vCPUs running": the vCPU threads
#               started, the first KVM_RUN follows (a cold boot: the first guest
#               instruction, the kernel's PVH entry; a restore: the first
#               instruction after the saved one)
# Round 1's cold boots end with a snapshot, taken once the console has been quiet
# for a second (the probes typed before the answer are answered too; until
# 2026-12-04 evening it was taken at once, while the shell still had them to
# answer): the request snapshot (take) on Ember's
# control socket (the guest idle at its prompt), QMP `migrate "exec:cat > FILE"`
# for QEMU; every round then restores it: `ember run --restore DIR -v` from a
# fresh copy of the snapshot (restore), that copy once more (restore_again),
# another fresh copy by a VMM started ahead (`ember run --restore-on-request`),
# timed from its restore request on the control socket, as Firecracker times
# its snapshot load (restore_ahead),
# the snapshot with --restore-memory=copy (restore_copy), and QEMU with the
# same arguments plus `-incoming "exec:cat FILE"`.
# Why a fresh copy: the sandbox's QEMU (TCG) translates the L2 guest's code
# once per physical page and keeps the translation while the page is not
# written. A privately mapped snapshot file's pages are the same page-cache
# pages at every restore, so a second restore of the same file runs the
# guest's kernel from translations made at the first (80-100 ms faster to the
# console here, 2026-12-04), while every cold boot copies the kernel into new
# memory and QEMU's -incoming reads into new memory, both translated afresh.
# A copy's pages are new, as the snapshot's were just after it was taken. On
# hardware there is no such difference; restore_again shows its size. Rounds are
# interleaved (ember cold, ember restore, qemu cold, qemu restore; the order
# reversed every other round), RESTORE_BENCH_RUNS of them (default 3); figures
# are medians. Snapshot sizes: bytes allocated on disk (du), Ember's whole
# directory (its memory file is sparse) against QEMU's migration file.
#
# Only "BENCH name value unit" lines go to stdout; diagnostics to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RESTORE_BENCH_RUNS:-3}
TIMEOUT=${RESTORE_BENCH_TIMEOUT:-240}
MEM_MIB=256
EMBER=${EMBER:-$ROOT/o/release/ember}
QEMU=${QEMU:-qemu-system-x86_64}
CMDLINE="console=ttyS0 panic=-1 pci=noearly i8042.noaux i8042.nomux i8042.dumbkbd quiet"

log() { echo "restore-bench: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[ -x "$EMBER" ] || die "$EMBER not built (make)"
command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install qemu-system-x86)"
command -v python3 >/dev/null || die "python3 not found"
command -v perl >/dev/null || die "perl not found"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || die "no usable /dev/kvm (run under tools/kvm-sandbox/run.sh)"
KERNEL_SRC=${RESTORE_BENCH_KERNEL:-$ROOT/o/e2e/vmlinux}
[ -r "$KERNEL_SRC" ] || die "$KERNEL_SRC not found (the e2e guest: tools/check.sh builds it)"
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/restore-bench.XXXXXX")
cleanup() {
	# RESTORE_BENCH_LOG=FILE keeps the VMMs' stderr (ember -v's phase lines)
	[ -n "${RESTORE_BENCH_LOG:-}" ] && cp "$WORK/stderr.log" "$RESTORE_BENCH_LOG" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
# the files on a tmpfs (reading over 9p would hide the VMMs' own costs)
if ! mountpoint -q "$WORK" && [ "$(stat -f -c %T "$WORK")" != tmpfs ]; then
	mount -t tmpfs -o size=1200M tmpfs "$WORK" 2>/dev/null || log "note: $WORK is not a tmpfs"
fi
KERNEL=$WORK/vmlinux
cp "$KERNEL_SRC" "$KERNEL"
INITRD=$WORK/initramfs.cpio
perl bench/boot/mkinitramfs.pl "$INITRD" "$BUSYBOX" bench/restore/init.sh
ESNAP=$WORK/ember.snap
QSNAP=$WORK/qemu.migration
ESOCK=$WORK/ember.sock
QMP=$WORK/qmp.sock
RUN1=(python3 bench/restore/run1.py --timeout "$TIMEOUT" --stderr-log "$WORK/stderr.log")

EMBER_COLD=("$EMBER" run -v --kernel "$KERNEL" --initrd "$INITRD" --cmdline "$CMDLINE"
	--mem "${MEM_MIB}M" --cpus 1 --socket "$ESOCK")
EFRESH=$WORK/ember.fresh
EMBER_RESTORE=("$EMBER" run --restore "$EFRESH" -v)
EMBER_RESTORE_COPY=("$EMBER" run --restore "$ESNAP" --restore-memory=copy -v)
EASOCK=$WORK/ember-ahead.sock
EMBER_AHEAD=("$EMBER" run --restore-on-request --socket "$EASOCK" -v)
QEMU_COLD=("$QEMU" -accel kvm -cpu host -M microvm,pit=on,pic=on,rtc=on -m "${MEM_MIB}M"
	-smp 1 -nodefaults -no-user-config -display none -serial stdio -monitor none
	-qmp "unix:$QMP,server=on,wait=off" -no-reboot
	-kernel "$KERNEL" -initrd "$INITRD" -append "${CMDLINE/pci=noearly/pci=off}")
QEMU_RESTORE=("${QEMU_COLD[@]}" -incoming "exec:cat $QSNAP")
log "kernel $KERNEL_SRC, initramfs $(stat -c %s "$INITRD") bytes, ${MEM_MIB}M, 1 vCPU, $RUNS rounds"

# RESTORE_BENCH_TRACE=1: KVM exits counted per run with tracefs hist triggers
# (kvm_exit by reason: 1024 is a nested page fault; kvm_userspace_exit by
# reason), logged on stderr; RESTORE_BENCH_VMMS="ember" leaves QEMU out
TRACE=${RESTORE_BENCH_TRACE:-0}
VMMS=${RESTORE_BENCH_VMMS:-ember qemu}
# shellcheck source=bench/trace.sh
. bench/trace.sh

# run1 NAME ARGS... : one run; its "console running take typed" into the file $WORK/NAME.txt
# (after RESTORE_BENCH_SETTLE seconds, default 2, for the sandbox's one CPU to
# finish the last VMM's teardown: without it the run after a cold boot paid
# for it, e.g. 757 ms in a restore's first phase instead of 35-50)
SETTLE=${RESTORE_BENCH_SETTLE:-2}
run1() {
	local name=$1
	shift
	local line
	sleep "$SETTLE"
	trace_on
	line=$("${RUN1[@]}" "$@") || die "$name failed (see above; last stderr: $(tail -n 3 "$WORK/stderr.log" | tr '\n' ' '))"
	trace_off "$name"
	log "$name: console_ms running_ms take_ms typed = $line"
	echo "$line" >>"$WORK/$name.txt"
}
# cold VMM ROUND: a cold boot (round 1 ends it with the snapshot); restore VMM
cold() {
	local snap=()
	if [ "$2" = 1 ]; then
		case $1 in
		ember) rm -rf "$ESNAP" && snap=(--ember-snapshot "$ESNAP" "$ESOCK") ;;
		qemu) rm -f "$QSNAP" && snap=(--qemu-migrate "$QMP" "$QSNAP") ;;
		esac
	fi
	local -n cmd=${1^^}_COLD
	run1 "$1_cold" --ready RESTORE-BENCH-READY "${snap[@]}" -- "${cmd[@]}"
}
restore() {
	local -n cmd=${1^^}_RESTORE
	if [ "$1" = ember ]; then # from a fresh copy (see the top), then that copy again
		rm -rf "$EFRESH" && cp -r --sparse=always "$ESNAP" "$EFRESH"
		run1 ember_restore --every 1000 --tag RS -- "${cmd[@]}"
		run1 ember_restore_again --every 1000 --tag RS -- "${cmd[@]}"
		# a VMM started ahead, timed from its restore request, of a fresh copy
		rm -rf "$EFRESH" && cp -r --sparse=always "$ESNAP" "$EFRESH"
		run1 ember_restore_ahead --every 1000 --tag RS --ahead "$EASOCK" "$EFRESH" -- "${EMBER_AHEAD[@]}"
		rm -rf "$EFRESH"
		# Ember's other way: memory read whole before the guest runs
		run1 ember_restore_copy --every 1000 --tag RS -- "${EMBER_RESTORE_COPY[@]}"
		return 0
	fi
	run1 "$1_restore" --every 1000 --tag RS -- "${cmd[@]}"
}

for r in $(seq 1 "$RUNS"); do
	order=$VMMS
	[ $((r % 2)) = 1 ] || order=$(echo "$VMMS" | tr ' ' '\n' | tac | tr '\n' ' ')
	for vmm in $order; do
		cold "$vmm" "$r"
		restore "$vmm"
	done
done

# median FILE FIELD: the median of column FIELD (1-based) of FILE's lines
median() {
	cut -d' ' -f"$2" "$1" | { grep -v '^-$' || :; } | sort -g | awk '{v[NR]=$1} END {
		if (NR == 0) { print "-"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }

# a VMM left out (RESTORE_BENCH_VMMS): its figures are "-"
for f in ember_cold ember_restore ember_restore_again ember_restore_ahead ember_restore_copy \
	qemu_cold qemu_restore; do
	[ -s "$WORK/$f.txt" ] || echo "- - -" >"$WORK/$f.txt"
done
ec=$(median "$WORK/ember_cold.txt" 1)
er=$(median "$WORK/ember_restore.txt" 1)
ecr=$(median "$WORK/ember_cold.txt" 2)
err=$(median "$WORK/ember_restore.txt" 2)
qc=$(median "$WORK/qemu_cold.txt" 1)
qr=$(median "$WORK/qemu_restore.txt" 1)
etake=$(head -n1 "$WORK/ember_cold.txt" | cut -d' ' -f3)
qtake=$(head -n1 "$WORK/qemu_cold.txt" | cut -d' ' -f3)
esize=$( (du -s -B1 "$ESNAP" 2>/dev/null || echo 0) | cut -f1)
qsize=$( (du -s -B1 "$QSNAP" 2>/dev/null || echo 0) | cut -f1)
for f in ember_cold ember_restore ember_restore_again ember_restore_ahead ember_restore_copy \
	qemu_cold qemu_restore; do
	log "$f per round (console_ms running_ms take_ms typed): $(tr '\n' ';' <"$WORK/$f.txt")"
done
echo "BENCH restore.rounds $RUNS n"
echo "BENCH restore.ember.cold.to_console $ec ms"
echo "BENCH restore.ember.restore.to_console $er ms"
echo "BENCH restore.ember.restore_vs_cold.console_ratio $(ratio "$er" "$ec") x"
echo "BENCH restore.ember.cold.to_running $ecr ms"
echo "BENCH restore.ember.restore.to_running $err ms"
echo "BENCH restore.ember.restore_vs_cold.running_ratio $(ratio "$err" "$ecr") x"
# rows KIND: the BENCH lines of Ember's restore KIND (its file ember_KIND.txt),
# to the console and to running, each with its ratio to the cold boot
rows() {
	local c r
	c=$(median "$WORK/ember_$1.txt" 1)
	r=$(median "$WORK/ember_$1.txt" 2)
	echo "BENCH restore.ember.$1.to_console $c ms"
	echo "BENCH restore.ember.$1_vs_cold.console_ratio $(ratio "$c" "$ec") x"
	echo "BENCH restore.ember.$1.to_running $r ms"
	echo "BENCH restore.ember.$1_vs_cold.running_ratio $(ratio "$r" "$ecr") x"
}
rows restore_again
rows restore_ahead
rows restore_copy
echo "BENCH restore.qemu.cold.to_console $qc ms"
echo "BENCH restore.qemu.restore.to_console $qr ms"
echo "BENCH restore.qemu.restore_vs_cold.console_ratio $(ratio "$qr" "$qc") x"
echo "BENCH restore.ember_vs_qemu.restore_console_ratio $(ratio "$er" "$qr") x"
echo "BENCH restore.ember.take $etake ms"
echo "BENCH restore.qemu.migrate $qtake ms"
echo "BENCH restore.ember.snapshot_size $((esize >> 10)) KiB"
echo "BENCH restore.qemu.migration_size $((qsize >> 10)) KiB"
echo "BENCH restore.ember_vs_qemu.size_ratio $(ratio "$esize" "$qsize") x"
