#!/bin/sh
# tests/e2e/mkinitramfs-fs.sh - the e2e initramfs with a filesystem kit appended: ext4 and its modules, the host's e2fsck with its libraries.
# usage: tests/e2e/mkinitramfs-fs.sh OUT.cpio BASE.cpio KERNEL_RELEASE
# OUT is BASE followed by a second newc archive (the kernel unpacks both):
# lib/modules/fs/N-NAME.ko in load order (init.sh's snapnet action loads them)
# and /usr/sbin/e2fsck with the shared libraries ldd names. Only the tests
# that check a filesystem boot it (tests/e2e/snapshot.c), so the other
# boots do not unpack the kit.
set -eu
out=$1
base=$2
release=$3
k=/lib/modules/$release/kernel
e2fsck=$(command -v e2fsck || echo /usr/sbin/e2fsck)
[ -x "$e2fsck" ] || {
	echo "mkinitramfs-fs: no e2fsck (install e2fsprogs)" >&2
	exit 1
}
root=$(mktemp -d "${TMPDIR:-/tmp}/ember-e2e-fs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/lib/modules/fs" "$root/usr/sbin" "$root/etc"
i=0
for m in lib/crc16 crypto/crc32c_generic fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4; do
	[ -r "$k/$m.ko" ] || {
		echo "mkinitramfs-fs: no $k/$m.ko" >&2
		exit 1
	}
	cp "$k/$m.ko" "$root/lib/modules/fs/$i-$(basename "$m").ko"
	i=$((i + 1))
done
cp "$e2fsck" "$root/usr/sbin/e2fsck"
for lib in $(ldd "$e2fsck" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
ln -s /proc/mounts "$root/etc/mtab"
(cd "$root" && find . -mindepth 1 | sort | cpio -o -H newc --quiet -R 0:0) >"$out.kit"
cat "$base" "$out.kit" >"$out.tmp"
rm -f "$out.kit"
mv "$out.tmp" "$out"
