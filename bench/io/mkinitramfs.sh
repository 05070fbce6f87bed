#!/bin/sh
# bench/io/mkinitramfs.sh - the I/O benchmark's initramfs: static busybox, bench/io/init.sh
# and the guest drivers (virtio-mmio, blk, net, vsock, console, rng, balloon, ext4) of
# kernel RELEASE with what they need, in load order (modprobe --show-depends).
# usage: bench/io/mkinitramfs.sh OUT.cpio RELEASE [BUSYBOX]   (an uncompressed newc archive)
set -eu
out=$1
release=$2
busybox=${3:-/bin/busybox}
here=$(cd "$(dirname "$0")" && pwd)
die() {
	echo "io-bench mkinitramfs: $*" >&2
	exit 1
}
[ -x "$busybox" ] || die "no $busybox (install busybox-static)"
command -v cpio >/dev/null || die "no cpio (install cpio)"
command -v modprobe >/dev/null || die "no modprobe (install kmod)"
root=$(mktemp -d "${TMPDIR:-/tmp}/io-bench-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/lib/modules"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 "$here/init.sh" "$root/init"
i=100 # 3-digit prefixes keep the glob order the load order
seen=" "
for m in virtio_mmio virtio_blk virtio_net vmw_vsock_virtio_transport virtio_console \
	virtio_rng virtio_balloon ext4; do
	deps=$(modprobe -S "$release" --show-depends "$m" 2>&1) || die "module $m of $release: $deps"
	for path in $(echo "$deps" | sed -n 's/^insmod \([^ ]*\).*/\1/p'); do
		case "$seen" in *" $path "*) continue ;; esac
		seen="$seen$path "
		name=$(basename "$path")
		case "$name" in
		*.ko.xz) xz -dc "$path" >"$root/lib/modules/$i-${name%.xz}" ;;
		*.ko.zst) zstd -qdc "$path" >"$root/lib/modules/$i-${name%.zst}" ;;
		*.ko.gz) gzip -dc "$path" >"$root/lib/modules/$i-${name%.gz}" ;;
		*) cp "$path" "$root/lib/modules/$i-$name" ;;
		esac
		i=$((i + 1))
	done
done
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | sort | cpio -o -H newc --quiet -R 0:0) >"$out.tmp"
mv "$out.tmp" "$out"
