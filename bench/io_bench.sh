#!/bin/bash
# bench/io_bench.sh - virtio I/O against QEMU, and what devices cost Ember at boot and in
# memory; run by tools/bench.sh inside tools/kvm-sandbox/run.sh (needs /dev/kvm, root).
#
# Every guest boots the same kernel (the ELF vmlinux of the host's Debian kernel, through
# PVH) and the same initramfs (bench/io/mkinitramfs.sh: busybox, bench/io/init.sh and the
# virtio and ext4 drivers), 1 vCPU. Files are copied to the sandbox's tmpfs first.
#
# 1. virtio-blk (io.blk.*) and virtio-net (io.net.*), Ember against QEMU 7.2 -M microvm
#    (virtio-blk-device and virtio-net-device on virtio-mmio), one guest boot per VMM per
#    round doing both, rounds interleaved in ABBA order (ember, qemu, qemu, ember, ...),
#    IO_BENCH_RUNS
#    rounds (default 3), medians; ratio = Ember / QEMU (higher is better).
#    Disks: /dev/vd? the Debian root file system image of tools/mkrootfs.sh, read-only
#    (IO_BENCH_ROOTFS; fio and iperf3 come from it, run in a chroot) and a 256 MiB raw
#    scratch image on tmpfs (serial benchscratch) that fio works on: one job each, O_DIRECT,
#    libaio, a 1 s ramp then IO_BENCH_FIO seconds (default 4): sequential 1 MiB read and
#    write (queue depth 16, MB/s), random 4 KiB read and write (queue depth 32, IOPS).
#    Cache mode: the host page cache for both (Ember's default cache=writeback; QEMU
#    cache=writeback). QEMU in its fastest configuration here: microvm with pit, pic and
#    rtc on (see /work/shared/notes/peers.md), the scratch disk on an iothread with
#    aio=io_uring (Ember: its I/O thread with io_uring, the default).
#    Net: a tap (btap0, 10.0.3.1/24) in a network namespace of this script's own, an
#    iperf3 server on it; the guest (10.0.3.2) runs iperf3 -c for IO_BENCH_IPERF seconds
#    (default 4, the first second omitted) each way: guest->host, and host->guest (-R).
#    QEMU's net: -netdev tap (user space virtio-net, as Ember's; no vhost-net).
# 2. Boot time to init (io.boot.*), Ember alone, IO_BENCH_BOOT_RUNS rounds (default 9),
#    interleaved (ABBA): no virtio device vs a disk (the scratch image), a NIC (the tap) and a
#    vsock; init_ms to the line init prints first (the drivers are modules, loaded by init
#    after it), devs_ms to the line it prints once /dev/vda, eth0 and the vsock transport
#    are there (the drivers loaded in both cases, so devs_ms compares the probes);
#    first_insn_ms: ember -v's "vCPUs running at X ms" (the VMM's own setup, the
#    devices' included, until the first KVM_RUN). Ratios of the medians, and the
#    median of the per-round ratios (each round's two boots back to back: the
#    sandbox's speed drifts by tens of percent between boots).
# 3. VMM memory without guest RAM (io.rss.*): Ember with all six virtio devices (blk, net,
#    vsock, console, rng, balloon) and with none, sampled from /proc/PID/smaps once the
#    guest's drivers have bound every device (bench/boot/run1.pl: the sum of Rss over all
#    mappings minus the guest RAM mapping's Rss, which includes the kernel file's pages
#    ember maps into guest RAM); Rss counts shared file pages (libc, the binary) in full.
#
# IO_BENCH_PARTS (default "io boot rss") and IO_BENCH_TESTS (default blk,net) select
# what runs, for profiling one part. Ember runs with -v: its devices' summary lines
# (frames, GSO frames, requests) go to stderr after each boot.
# Only "BENCH name value unit" lines go to stdout; diagnostics to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${IO_BENCH_RUNS:-3}
BOOT_RUNS=${IO_BENCH_BOOT_RUNS:-9}
FIO_SECS=${IO_BENCH_FIO:-4}
IPERF_SECS=${IO_BENCH_IPERF:-4}
TIMEOUT=${IO_BENCH_TIMEOUT:-240}
PARTS=${IO_BENCH_PARTS:-io boot rss} # which of 1 (io), 2 (boot), 3 (rss) to run
TESTS=${IO_BENCH_TESTS:-blk,net}     # in part 1: blk, net or both
EMBER=${EMBER:-$ROOT/o/release/ember}
QEMU=${QEMU:-qemu-system-x86_64}
ROOTFS=${IO_BENCH_ROOTFS:-}
HOST_IP=10.0.3.1
GUEST_IP=10.0.3.2
TAP=btap0
MAC=52:54:00:be:9c:01
CMDLINE="console=ttyS0 panic=-1 quiet i8042.noaux i8042.nomux i8042.dumbkbd"

log() { echo "io-bench: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# A network namespace of our own for the tap and iperf3's server: the script
# runs itself again under unshare (the sandbox's /run is read-only: no ip netns)
if [ "${IO_BENCH_NETNS:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || die "needs root (a tap in a network namespace of its own)"
	exec env IO_BENCH_NETNS=1 unshare --net "$0" "$@"
fi

[ -x "$EMBER" ] || die "$EMBER not built (make)"
command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install qemu-system-x86)"
command -v iperf3 >/dev/null || die "iperf3 not found on the host (apt-get install iperf3)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || die "no usable /dev/kvm (run under tools/kvm-sandbox/run.sh)"
[ -n "$ROOTFS" ] && [ -r "$ROOTFS" ] ||
	die "IO_BENCH_ROOTFS: no root file system image '${ROOTFS}' (tools/mkrootfs.sh prints its path)"

KVER=$(uname -r)
[ -d "/lib/modules/$KVER" ] || KVER=$(ls -1 /lib/modules | sort -V | tail -n1)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/io-bench.XXXXXX")
IPERF_PID=""
cleanup() {
	[ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
VMLINUX=${E2E_DIR:-o/e2e}/vmlinux
if ! [ -r "$VMLINUX" ]; then
	tests/e2e/extract-vmlinux.sh "/boot/vmlinuz-$KVER" "$WORK/vmlinux" || die "cannot extract the vmlinux"
	VMLINUX=$WORK/vmlinux
fi
cp "$VMLINUX" "$WORK/vmlinux"
KERNEL=$WORK/vmlinux
INITRD=$WORK/initramfs.cpio
bench/io/mkinitramfs.sh "$INITRD" "$KVER"
SCRATCH=$WORK/scratch.img
head -c 256M /dev/zero >"$SCRATCH" # real pages on the tmpfs, not a hole

# the tap and the host's iperf3 server
[ -c /dev/net/tun ] || modprobe tun 2>/dev/null || :
[ -c /dev/net/tun ] || die "no /dev/net/tun (modprobe tun)"
ip link set lo up
ip tuntap add dev "$TAP" mode tap
ip addr add "$HOST_IP/24" dev "$TAP"
ip link set "$TAP" up
iperf3 -s -B "$HOST_IP" >"$WORK/iperf3-server.log" 2>&1 &
IPERF_PID=$!
log "kernel $KERNEL ($KVER), initramfs $(stat -c %s "$INITRD") bytes, rootfs $ROOTFS, $RUNS I/O rounds, $BOOT_RUNS boot rounds"

# IO_BENCH_TRACE=1: KVM exits counted per boot with tracefs hist triggers
# (kvm_exit by reason, kvm_userspace_exit by reason), logged on stderr
TRACE=${IO_BENCH_TRACE:-0}
# shellcheck source=bench/trace.sh
. bench/trace.sh

# IO_BENCH_PERF=1: in part 1, each VMM under perf record (cpu-clock, call
# graphs); the top of perf report per boot on stderr
PERF=()
if [ "${IO_BENCH_PERF:-0}" = 1 ]; then
	command -v perf >/dev/null || die "IO_BENCH_PERF=1: no perf (apt-get install linux-perf)"
	PERF=(perf record -q -e cpu-clock -F 2000 -g -o)
fi
perf_report() {
	[ ${#PERF[@]} != 0 ] || return 0
	log "$1: perf report (self time, top entries):"
	perf report -i "$WORK/$1.perf" --stdio --no-children --sort comm,dso,sym 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -n 40 | sed 's/^/  | /' >&2 || :
}

# first_insn TAG: ember -v's "vCPUs running at X ms since start" of that boot
first_insn() { sed -n 's/.*vCPUs running at \([0-9.]*\) ms since start.*/\1/p' "$WORK/$1.err" | head -n1; }
# run1 TAG GUEST_KIB CMD...: one boot through bench/boot/run1.pl (marker
# EMBER-BENCH-INIT, then EMBER-BENCH-DEVS), stdout kept in $WORK/TAG.out;
# its result line in $WORK/TAG.res
run1() {
	local tag=$1 gkib=$2 res status
	shift 2
	trace_on
	if ! res=$(RUN1_MARK2=EMBER-BENCH-DEVS RUN1_STDOUT=$WORK/$tag.out perl bench/boot/run1.pl \
		"$TIMEOUT" EMBER-BENCH-INIT "$gkib" "$WORK/$tag.err" "$(readlink -f "$KERNEL")" -- "$@"); then
		log "$tag failed: $*"
		tail -n 20 "$WORK/$tag.err" "$WORK/$tag.out" 2>/dev/null | sed 's/^/  | /' >&2
		exit 1
	fi
	trace_off "$tag"
	status=$(echo "$res" | cut -d' ' -f3)
	if [ "$status" != 0 ] || grep -q '^BENCHG-FAIL' "$WORK/$tag.out" ||
		! grep -q '^BENCHG done failures=0' "$WORK/$tag.out"; then
		log "$tag: exit status $status; $(grep '^BENCHG-FAIL' "$WORK/$tag.out" | tr '\n' ' '): $*"
		tail -n 20 "$WORK/$tag.err" "$WORK/$tag.out" 2>/dev/null | sed 's/^/  | /' >&2
		exit 1
	fi
	log "$tag: $res; vCPUs running at $(first_insn "$tag" | grep . || echo '?') ms"
	echo "$res" >"$WORK/$tag.res"
}

QEMU_BASE=("$QEMU" -accel kvm -cpu host -M microvm,pit=on,pic=on,rtc=on -smp 1 -nodefaults
	-no-user-config -display none -serial stdio -monitor none -no-reboot
	-kernel "$KERNEL" -initrd "$INITRD")

# --- 1. virtio-blk and virtio-net, Ember against QEMU
IO_ARGS="bench.mode=io bench.want=vda,vdb,eth0 bench.fio=$FIO_SECS bench.iperf=$IPERF_SECS"
IO_ARGS="$IO_ARGS bench.ip=$GUEST_IP bench.host=$HOST_IP bench.scratch=benchscratch"
IO_ARGS="$IO_ARGS bench.tests=$TESTS"
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
has_part io || RUNS=0
io_ember() {
	local round=$1
	run1 "io.ember.$round" 0 ${PERF[@]+"${PERF[@]}" "$WORK/io.ember.$round.perf" --} "$EMBER" run -v -k "$KERNEL" -i "$INITRD" -m 512M --cpus 1 \
		--cmdline "$CMDLINE pci=noearly $IO_ARGS" \
		--disk "path=$ROOTFS,ro=on" --disk "path=$SCRATCH,serial=benchscratch" \
		--net "tap=$TAP,mac=$MAC"
}
io_qemu() {
	local round=$1
	run1 "io.qemu.$round" 0 ${PERF[@]+"${PERF[@]}" "$WORK/io.qemu.$round.perf" --} "${QEMU_BASE[@]}" -m 512M -append "$CMDLINE pci=off $IO_ARGS" \
		-object iothread,id=io0 \
		-drive "id=root,file=$ROOTFS,format=raw,if=none,readonly=on,cache=writeback,aio=io_uring" \
		-device virtio-blk-device,drive=root \
		-drive "id=scratch,file=$SCRATCH,format=raw,if=none,cache=writeback,aio=io_uring" \
		-device virtio-blk-device,drive=scratch,serial=benchscratch,iothread=io0 \
		-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" \
		-device "virtio-net-device,netdev=n0,mac=$MAC"
}
# rounds in ABBA order (odd rounds Ember first, even rounds QEMU first): a
# cost that falls on whichever boot comes first in a round (or second) does
# not favour one VMM
for round in $(seq 1 "$RUNS"); do
	if [ $((round % 2)) = 1 ]; then
		io_ember "$round"
		io_qemu "$round"
	else
		io_qemu "$round"
		io_ember "$round"
	fi
	grep -E 'disk[0-9]+:|net[0-9]+:' "$WORK/io.ember.$round.err" | sed 's/^/io-bench: ember: /' >&2 || :
	perf_report "io.ember.$round"
	perf_report "io.qemu.$round"
done

median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# figure VMM NAME: the median of the guest's "BENCHG NAME value unit" lines
figure() { cat "$WORK"/io."$1".*.out | awk -v n="$2" '$1 == "BENCHG" && $2 == n {print $3}' | median; }
for t in blk.seqread:MB/s blk.seqwrite:MB/s blk.randread:IOPS blk.randwrite:IOPS \
	net.guest_to_host:Mbit/s net.host_to_guest:Mbit/s; do
	name=${t%:*} unit=${t#*:}
	[ "$RUNS" != 0 ] && [[ ",$TESTS," == *",${name%%.*},"* ]] || continue
	e=$(figure ember "$name")
	q=$(figure qemu "$name")
	[ -n "$e" ] && [ -n "$q" ] || die "no $name figure from the guests"
	echo "BENCH io.$name.ember $e $unit"
	echo "BENCH io.$name.qemu_microvm $q $unit"
	awk -v e="$e" -v q="$q" -v n="$name" 'BEGIN {printf "BENCH io.%s.ratio %.3f ember/qemu\n", n, e / q}'
	# each round's pair, to show the spread under the machine's load
	pairs=""
	for round in $(seq 1 "$RUNS"); do
		pe=$(awk -v n="$name" '$1 == "BENCHG" && $2 == n {print $3}' "$WORK/io.ember.$round.out")
		pq=$(awk -v n="$name" '$1 == "BENCHG" && $2 == n {print $3}' "$WORK/io.qemu.$round.out")
		pairs="$pairs${pairs:+,}$pe/$pq"
	done
	echo "BENCH io.$name.rounds $pairs ember/qemu,per-round"
done

# --- 2. boot time to init with a disk, a NIC and a vsock vs without
BOOT_ARGS="bench.mode=boot"
has_part boot || BOOT_RUNS=0
boot_plain() {
	run1 "boot.plain.$1" 0 "$EMBER" run -v -k "$KERNEL" -i "$INITRD" -m 256M --cpus 1 \
		--cmdline "$CMDLINE pci=noearly $BOOT_ARGS bench.want=none"
}
boot_devs() {
	rm -f "$WORK/vsock.sock"
	run1 "boot.devs.$1" 0 "$EMBER" run -v -k "$KERNEL" -i "$INITRD" -m 256M --cpus 1 \
		--cmdline "$CMDLINE pci=noearly $BOOT_ARGS bench.want=vda,eth0,vsock" \
		--disk "path=$SCRATCH,serial=benchscratch" --net "tap=$TAP,mac=$MAC" \
		--vsock "cid=3,socket=$WORK/vsock.sock"
}
for round in $(seq 1 "$BOOT_RUNS"); do # ABBA, as above
	if [ $((round % 2)) = 1 ]; then
		boot_plain "$round"
		boot_devs "$round"
	else
		boot_devs "$round"
		boot_plain "$round"
	fi
done
for k in plain devs; do
	[ "$BOOT_RUNS" != 0 ] || break
	init=$(cat "$WORK"/boot."$k".*.res | cut -d' ' -f1 | median)
	devs=$(cat "$WORK"/boot."$k".*.res | cut -d' ' -f8 | median)
	fi_ms=$(for r in $(seq 1 "$BOOT_RUNS"); do first_insn "boot.$k.$r"; done | median)
	echo "BENCH io.boot.$k.init_ms $init ms"
	echo "BENCH io.boot.$k.devs_ms $devs ms"
	echo "BENCH io.boot.$k.first_insn_ms $fi_ms ms"
	eval "init_$k=$init devs_$k=$devs fi_$k=$fi_ms"
done
if [ "$BOOT_RUNS" != 0 ]; then
	awk -v a="$init_devs" -v b="$init_plain" 'BEGIN {printf "BENCH io.boot.devs_vs_plain.init_ratio %.3f ratio\n", a / b}'
	awk -v a="$devs_devs" -v b="$devs_plain" 'BEGIN {printf "BENCH io.boot.devs_vs_plain.devs_ratio %.3f ratio\n", a / b}'
	awk -v a="$fi_devs" -v b="$fi_plain" 'BEGIN {printf "BENCH io.boot.devs_vs_plain.first_insn_ratio %.3f ratio\n", a / b}'
	# each round's devs/plain to init, and their median
	pr=$(for r in $(seq 1 "$BOOT_RUNS"); do
		paste -d' ' "$WORK/boot.devs.$r.res" "$WORK/boot.plain.$r.res" | awk '{printf "%.3f\n", $1 / $9}'
	done)
	echo "BENCH io.boot.devs_vs_plain.init_ratio_paired $(echo "$pr" | sort -n | awk '{v[NR] = $1} END {printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}') ratio"
	echo "BENCH io.boot.devs_vs_plain.init_ratio_rounds $(echo "$pr" | tr '\n' ',' | sed 's/,$//') devs/plain,per-round"
fi
has_part rss || exit 0

# --- 3. memory without guest RAM: all six virtio devices, and none
rm -f "$WORK/vsock.sock"
run1 rss.all6 $((256 * 1024)) "$EMBER" run -k "$KERNEL" -i "$INITRD" -m 256M --cpus 1 \
	--cmdline "$CMDLINE pci=noearly $BOOT_ARGS bench.want=vda,eth0,vsock,hvc0 bench.sleep=1" \
	--disk "path=$SCRATCH,serial=benchscratch" --net "tap=$TAP,mac=$MAC" \
	--vsock "cid=3,socket=$WORK/vsock.sock" --console virtio --rng --balloon
run1 rss.none $((256 * 1024)) "$EMBER" run -k "$KERNEL" -i "$INITRD" -m 256M --cpus 1 \
	--cmdline "$CMDLINE pci=noearly $BOOT_ARGS bench.want=none bench.sleep=1"
for k in all6 none; do
	read -r _ _ _ tot excl span _ <"$WORK/rss.$k.res"
	[ "$excl" != - ] || die "rss.$k: /proc/PID/smaps could not be read"
	[ "$span" = $((256 * 1024)) ] ||
		die "rss.$k: the guest RAM range found in smaps spans $span KiB, not $((256 * 1024))"
	echo "BENCH io.rss.ember_$k.excl_guest_kib $excl KiB"
	echo "BENCH io.rss.ember_$k.total_kib $tot KiB"
done
