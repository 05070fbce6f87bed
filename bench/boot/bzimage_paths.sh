#!/bin/sh
# bench/boot/bzimage_paths.sh - ember's ways to boot the same Debian kernel, interleaved: the bzImage decompressed on the host and entered through PVH without the kernel cache, the same with the cache (its first boot, which fills it, and a repeat boot, which hits it), the extracted vmlinux through PVH, the bzImage through the boot protocol (--boot bzimage).
#
# usage (needs /dev/kvm): tools/kvm-sandbox/run.sh -- bench/boot/bzimage_paths.sh [ROUNDS]
# Files are copied to /dev/shm first (9p reads would dominate), and the
# kernel cache lives there too (XDG_CACHE_HOME). Prints one
# "RES path init_ms=... unpack_ms=..." line per boot (init_ms: ember's own
# "guest boot marker 0x7b" time, written by the test initramfs's /init;
# unpack_ms: ember's "decompressed on the host ... in X ms", or for a cache
# hit its "looked up in X ms"), then medians.
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
EMBER=${EMBER:-o/release/ember}
K=${KERNEL:-$(ls -1v /boot/vmlinuz-* | tail -n1)}
W=${TMPDIR:-/dev/shm}
[ -d /dev/shm ] && W=/dev/shm
cp "$K" "$W/bz.$$"
cp o/e2e/vmlinux "$W/vml.$$"
cp o/e2e/initramfs.cpio "$W/ird.$$"
export XDG_CACHE_HOME="$W/kc.$$"
CL="console=ttyS0 panic=-1 pci=noearly quiet i8042.noaux i8042.nomux i8042.dumbkbd e2e.cpus=1 e2e.mem=268435456"
one() {
	tag=$1
	shift
	"$EMBER" run -v "$@" -i "$W/ird.$$" --cmdline "$CL" </dev/null >"$W/log.$$" 2>&1 || true
	m=$(grep -a 'guest boot marker 0x7b' "$W/log.$$" | sed 's/.* at \([0-9.]*\) ms/\1/')
	d=$(grep -a 'decompressed on the host\|found decompressed in the kernel cache' "$W/log.$$" |
		sed 's/.* in \([0-9.]*\) ms.*/\1/')
	echo "RES $tag init_ms=${m:-none} unpack_ms=${d:-0}" | tee -a "$W/res.$$"
}
: >"$W/res.$$"
for i in $(seq 1 "$ROUNDS"); do
	one bzimage_nocache -k "$W/bz.$$" --kernel-cache off
	rm -rf "$XDG_CACHE_HOME"
	one bzimage_cache_first -k "$W/bz.$$"
	one bzimage_cache_repeat -k "$W/bz.$$"
	one vmlinux_pvh -k "$W/vml.$$"
	one bzimage_bootproto -k "$W/bz.$$" --boot bzimage
done
med() { # med TAG FIELD
	grep " $1 " "$W/res.$$" | sed "s/.*$2=\([0-9.]*\).*/\1/" | sort -n |
		awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
for t in bzimage_nocache bzimage_cache_first bzimage_cache_repeat vmlinux_pvh bzimage_bootproto; do
	echo "MEDIAN $t init_ms=$(med $t init_ms) unpack_ms=$(med $t unpack_ms)"
done
rm -rf "$W"/*.$$
