#!/bin/bash
# bench/boot_bench.sh - Linux boot time and VMM memory: ember run vs QEMU -accel kvm
# (-M microvm and -M pc), side by side in one sandbox boot (run by tools/bench.sh
# inside tools/kvm-sandbox/run.sh; needs a working /dev/kvm).
#
# Same guest for all three VMMs: the host's Debian kernel (/boot/vmlinuz-$(uname -r)),
# booted as the bzImage (figures boot.<vmm>.*; ember by default decompresses it
# on the host and enters through PVH, and once more per round with --boot
# bzimage: boot.ember_bootproto.*) and, unless BOOT_BENCH_PVH=0, as
# the extracted ELF vmlinux through its PVH entry (boot.pvh.<vmm>.*); the same
# tiny initramfs (bench/boot/mkinitramfs.pl: static busybox, an /init that
# writes EMBER-BENCH-INIT to ttyS0 and powers off); 256 MiB, 1 vCPU; the same
# command line (ember's default one).
#
# Measured on the host clock (CLOCK_MONOTONIC, bench/boot/run1.pl) from just
# before the VMM process is forked:
#   init_ms  until the marker line is read from the VMM's stdout (the serial)
#   exit_ms  until the VMM process has exited (guest powered off)
# Runs are interleaved (ember, microvm, pc, ember, ...), BOOT_BENCH_RUNS
# rounds (default 3); the figures are medians. Ratios: ember / the faster QEMU.
#
# Memory: one more boot per VMM (bzImage) with benchsleep=1 on the command
# line, so init sleeps 1 s after the marker; /proc/PID/smaps is read when the
# marker appears. rss_total_kib sums every mapping's Rss; rss_excl_guest_kib
# leaves out the guest RAM range (see run1.pl for how it is found; for ember
# it includes the pages of the kernel file mapped into guest RAM). Rss counts
# shared file pages (libc, the binary) in full, as ps does.
#
# first_insn_ms: ember's own debug log line "vCPUs running at X ms since
# start": the time from ember's main() to the vCPU threads having been started
# (ehv_runner_start returned; the first KVM_RUN follows within the threads'
# wake-up); median over ember's timing runs (bzImage). It does not include
# exec/dynamic loading before main() (a few ms at most).
#
# Only "BENCH name value unit" lines go to stdout; diagnostics to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${BOOT_BENCH_RUNS:-3}
PVH=${BOOT_BENCH_PVH:-1}
TIMEOUT=${BOOT_BENCH_TIMEOUT:-180}
MEM_MIB=256
EMBER=${EMBER:-$ROOT/o/release/ember}
QEMU=${QEMU:-qemu-system-x86_64}
MARKER=EMBER-BENCH-INIT
CMDLINE="console=ttyS0 panic=-1 pci=noearly i8042.noaux i8042.nomux i8042.dumbkbd quiet"

log() { echo "boot-bench: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[ -x "$EMBER" ] || die "$EMBER not built (make)"
command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install qemu-system-x86)"
command -v perl >/dev/null || die "perl not found"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || die "no usable /dev/kvm (run under tools/kvm-sandbox/run.sh)"

KVER=$(uname -r)
BZIMAGE=/boot/vmlinuz-$KVER
[ -r "$BZIMAGE" ] || BZIMAGE=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1)
[ -r "$BZIMAGE" ] || die "no kernel in /boot"
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/boot-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
INITRD=$WORK/initramfs.cpio
perl bench/boot/mkinitramfs.pl "$INITRD" "$BUSYBOX"

# The ELF vmlinux for PVH: the sandbox harness's cached copy if visible, else
# cut out of the bzImage (one XZ stream after FD 37 7A 58 5A 00).
VMLINUX=
find_vmlinux() {
	local d f
	for d in ${EMBER_SANDBOX_CACHE:-} ${XDG_CACHE_HOME:+$XDG_CACHE_HOME/ember-sandbox} \
		${HOME:+$HOME/.cache/ember-sandbox} /root/.cache/ember-sandbox; do
		for f in "$d"/vmlinux-"$(basename "$BZIMAGE" | sed 's/^vmlinuz-//')"-*; do
			[ -r "$f" ] && [ "$(head -c4 "$f" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] &&
				{ VMLINUX=$f; return 0; }
		done
	done
	local off
	off=$(perl -e 'local $/; open(F, "<:raw", $ARGV[0]) or die; my $d = <F>;
		my $i = index($d, "\xfd7zXZ\x00"); print $i' "$BZIMAGE")
	[ "$off" -ge 0 ] || return 1
	tail -c +$((off + 1)) "$BZIMAGE" | xz -dc --single-stream > "$WORK/vmlinux" 2>/dev/null || return 1
	VMLINUX=$WORK/vmlinux
}
if [ "$PVH" = 1 ]; then
	find_vmlinux || die "cannot extract an ELF vmlinux from $BZIMAGE (BOOT_BENCH_PVH=0 skips PVH)"
	log "PVH kernel: $VMLINUX"
fi
log "kernel $BZIMAGE, initramfs $INITRD ($(stat -c %s "$INITRD") bytes), ${MEM_MIB}M, 1 vCPU, $RUNS rounds"

VMMS="ember qemu_microvm qemu_pc"
# vmm_cmd VMM KERNEL CMDLINE: the command line into the array CMD
vmm_cmd() {
	local vmm=$1 kernel=$2 cmdline=$3
	# each peer in its fastest configuration: QEMU's boards are given pci=off
	# (microvm has no PCI; Ember has a host bridge and uses pci=noearly)
	local qemu=("$QEMU" -accel kvm -cpu host -m "${MEM_MIB}M" -smp 1 -nodefaults -no-user-config
		-display none -serial stdio -monitor none -no-reboot
		-kernel "$kernel" -initrd "$INITRD" -append "${cmdline/pci=noearly/pci=off}")
	case $vmm in
	ember) CMD=("$EMBER" run -v --kernel "$kernel" --initrd "$INITRD" --cmdline "$cmdline"
		--mem "${MEM_MIB}M" --cpus 1 ${EMBER_BOOT:+--boot "$EMBER_BOOT"}) ;;
	qemu_microvm) CMD=("${qemu[@]}" -M microvm,pit=on,pic=on,rtc=on) ;;
	qemu_pc) CMD=("${qemu[@]}" -M pc) ;;
	esac
}

# one_run VMM KERNEL CMDLINE GUEST_KIB TAG: prints run1.pl's result line
# (init_ms exit_ms status rss_total rss_excl guest_span stdout_bytes) and logs
# it on stderr
one_run() {
	local vmm=$1 kernel=$2 cmdline=$3 gkib=$4 tag=$5 res status
	vmm_cmd "$vmm" "$kernel" "$cmdline"
	local err=$WORK/$tag.err
	if ! res=$(perl bench/boot/run1.pl "$TIMEOUT" "$MARKER" "$gkib" "$err" "$(readlink -f "$kernel")" \
		-- "${CMD[@]}"); then
		log "$vmm ($tag) failed: ${CMD[*]}"
		sed 's/^/  | /' "$err" | tail -n 20 >&2
		exit 1
	fi
	status=$(echo "$res" | cut -d' ' -f3)
	if [ "$status" != 0 ]; then
		log "$vmm ($tag) exited with status $status: ${CMD[*]}"
		sed 's/^/  | /' "$err" | tail -n 20 >&2
		exit 1
	fi
	log "$tag: $res"
	echo "$res"
}

median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

FORMATS="bzimage"
[ "$PVH" = 1 ] && FORMATS="bzimage pvh"
for round in $(seq 1 "$RUNS"); do
	for fmt in $FORMATS; do
		kernel=$BZIMAGE
		[ "$fmt" = pvh ] && kernel=$VMLINUX
		for vmm in $VMMS; do
			tag=$fmt.$vmm.$round
			one_run "$vmm" "$kernel" "$CMDLINE" 0 "$tag" > "$WORK/$tag.res"
		done
	done
	# ember's bzImage through the boot protocol (the guest decompresses)
	EMBER_BOOT=bzimage one_run ember "$BZIMAGE" "$CMDLINE" 0 "bzproto.ember.$round" \
		> "$WORK/bzproto.ember.$round.res"
done

# Memory: sampled at the marker while init sleeps.
for vmm in $VMMS; do
	one_run "$vmm" "$BZIMAGE" "$CMDLINE benchsleep=1" $((MEM_MIB * 1024)) "rss.$vmm" > "$WORK/rss.$vmm.res"
done

for fmt in $FORMATS; do
	prefix=boot
	[ "$fmt" = pvh ] && prefix=boot.pvh
	declare -A INIT EXIT
	for vmm in $VMMS; do
		INIT[$vmm]=$(cat "$WORK"/"$fmt.$vmm".*.res | cut -d' ' -f1 | median)
		EXIT[$vmm]=$(cat "$WORK"/"$fmt.$vmm".*.res | cut -d' ' -f2 | median)
		echo "BENCH $prefix.$vmm.init_ms ${INIT[$vmm]} ms"
		echo "BENCH $prefix.$vmm.exit_ms ${EXIT[$vmm]} ms"
	done
	awk -v e="${INIT[ember]}" -v a="${INIT[qemu_microvm]}" -v b="${INIT[qemu_pc]}" -v p="$prefix" \
		'BEGIN {q = a < b ? a : b; printf "BENCH %s.ember_vs_fastest_qemu.init_ratio %.3f ratio\n", p, e / q}'
	awk -v e="${EXIT[ember]}" -v a="${EXIT[qemu_microvm]}" -v b="${EXIT[qemu_pc]}" -v p="$prefix" \
		'BEGIN {q = a < b ? a : b; printf "BENCH %s.ember_vs_fastest_qemu.exit_ratio %.3f ratio\n", p, e / q}'
	unset INIT EXIT
done

# ember's bzImage (host decompression, then PVH) against its PVH boot of the
# extracted vmlinux, and the boot-protocol path (--boot bzimage)
bz_init=$(cat "$WORK"/bzimage.ember.*.res | cut -d' ' -f1 | median)
proto_init=$(cat "$WORK"/bzproto.ember.*.res | cut -d' ' -f1 | median)
echo "BENCH boot.ember_bootproto.init_ms $proto_init ms"
if [ "$PVH" = 1 ]; then
	pvh_init=$(cat "$WORK"/pvh.ember.*.res | cut -d' ' -f1 | median)
	awk -v b="$bz_init" -v p="$pvh_init" \
		'BEGIN {printf "BENCH boot.ember.bzimage_vs_pvh.init_ratio %.3f ratio\n", b / p}'
	awk -v b="$proto_init" -v p="$pvh_init" \
		'BEGIN {printf "BENCH boot.ember_bootproto_vs_pvh.init_ratio %.3f ratio\n", b / p}'
fi
for f in "$WORK"/bzimage.ember.*.err; do
	sed -n 's/.*payload decompressed on the host .* in \([0-9.]*\) ms.*/\1/p' "$f" | head -n1
done > "$WORK/unpack"
[ -s "$WORK/unpack" ] && echo "BENCH boot.ember.host_decompress_ms $(median < "$WORK/unpack") ms"

# first guest instruction (ember's log, bzImage runs)
for f in "$WORK"/bzimage.ember.*.err; do
	sed -n 's/.*vCPUs running at \([0-9.]*\) ms since start.*/\1/p' "$f" | head -n1
done > "$WORK/first_insn"
[ -s "$WORK/first_insn" ] || die "ember -v did not log 'vCPUs running at ... ms since start'"
echo "BENCH boot.ember.first_insn_ms $(median < "$WORK/first_insn") ms"

read -r _ _ _ etot eexcl espan _ < "$WORK/rss.ember.res"
[ "$eexcl" != - ] || die "ember: /proc/PID/smaps could not be read"
[ "$espan" = $((MEM_MIB * 1024)) ] ||
	die "ember: the guest RAM range found in smaps spans ${espan} KiB, not $((MEM_MIB * 1024)) (see run1.pl)"
echo "BENCH boot.ember.rss_excl_guest_kib $eexcl KiB"
echo "BENCH boot.ember.rss_total_kib $etot KiB"
for vmm in qemu_microvm qemu_pc; do
	read -r _ _ _ tot excl span _ < "$WORK/rss.$vmm.res"
	echo "BENCH boot.$vmm.rss_total_kib $tot KiB"
	echo "BENCH boot.$vmm.rss_excl_guest_kib $excl KiB"
done
