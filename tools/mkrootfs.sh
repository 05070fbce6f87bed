#!/bin/bash
# tools/mkrootfs.sh - builds a Debian 12 root filesystem image (ext4, raw) for `ember run --disk IMG --root`.
#
# usage: tools/mkrootfs.sh [-o OUT.img] [--size SIZE] [--rebuild] [-q]
#
# mmdebstrap (minbase variant, from the host's configured apt sources: no
# network beyond the Debian archive) builds the tree; `mke2fs -t ext4 -d`
# turns it into an image: no loop mount, no privileges beyond what
# mmdebstrap needs (root, or user namespaces for its unshare mode).
#
# The image has systemd as init, a getty on the console and root with an
# EMPTY password (log in as root with no password prompt): it is a test and
# benchmark guest, not a server; set a password (passwd) before exposing it.
# It carries fio and iperf3 for the benchmarks; e2fsprogs' e2scrub units are
# masked (about 10 s of a boot under the sandbox, for no use in a test guest).
#
# The result is cached as ${XDG_CACHE_HOME:-~/.cache}/ember/rootfs-HASH.img,
# HASH covering this script (its package list) and the size: a second call
# reuses it. Prints the cached image's path on stdout; with -o, also copies
# it (sparse) to OUT. Exit status 1 with a message naming the missing tool
# when mmdebstrap or mke2fs is absent (tools/install-deps.sh installs them).
set -euo pipefail

PACKAGES=systemd-sysv,udev,dbus,iproute2,fio,iperf3
SUITE=bookworm
SIZE=2G
OUT=""
REBUILD=0
QUIET=0
PROG=mkrootfs

say() { [ "$QUIET" = 1 ] || echo "$PROG: $*" >&2; }
die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
usage() { sed -n '2,20s/^# \{0,1\}//p' "$0"; }

while [ $# -gt 0 ]; do
	case "$1" in
	-o) [ $# -ge 2 ] || die "-o needs a path"; OUT=$2; shift 2 ;;
	--size) [ $# -ge 2 ] || die "--size needs a size (mke2fs syntax: 2G)"; SIZE=$2; shift 2 ;;
	--rebuild) REBUILD=1; shift ;;
	-q) QUIET=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
done
[[ "$SIZE" =~ ^[1-9][0-9]*[KMGT]?$ ]] || die "--size '$SIZE': want a number with K, M, G or T"

# A missing tool is an error, never a skip.
command -v mmdebstrap >/dev/null ||
	die "mmdebstrap not found (Debian package mmdebstrap; tools/install-deps.sh installs it)"
MKE2FS=$(command -v mke2fs || echo /sbin/mke2fs)
[ -x "$MKE2FS" ] || die "mke2fs not found (Debian package e2fsprogs)"

CACHE=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ember
hash=$(cat "$0" - <<<"$SIZE $SUITE" | sha256sum | cut -c1-16)
IMG=$CACHE/rootfs-$hash.img

if [ "$REBUILD" = 1 ] || [ ! -s "$IMG" ]; then
	mkdir -p "$CACHE"
	# apt's configured sources: the host's deb822 and one-line files
	sources=()
	[ -s /etc/apt/sources.list ] && sources+=(/etc/apt/sources.list)
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
		[ -s "$f" ] && sources+=("$f")
	done
	[ ${#sources[@]} -gt 0 ] || die "no apt sources configured (/etc/apt/sources.list{,.d/})"
	mode=root
	[ "$(id -u)" = 0 ] || mode=unshare
	tmp=$(mktemp "$CACHE/rootfs-$hash.XXXXXX.tmp")
	log=$(mktemp "${TMPDIR:-/tmp}/mkrootfs.XXXXXX.log")
	trap 'rm -f "$tmp"' EXIT
	say "building $IMG ($SUITE, $PACKAGES, $SIZE; log $log)"
	t0=$SECONDS
	# The last hook makes the image from the finished tree, inside
	# mmdebstrap's namespace (so files keep uid 0 in unshare mode too),
	# through a plain (non-recursive) bind mount of it: mke2fs sees the
	# tree without the /proc, /sys and /dev mounted on it. Inode tables and
	# journal are zeroed now, so the guest's ext4 does not do it in the
	# background at each first boot (slow, and noise in benchmarks).
	mkimg="set -e; v=\$(mktemp -d); mount --bind \"\$1\" \"\$v\";
		$MKE2FS -q -F -t ext4 -L ember-root -E lazy_itable_init=0,lazy_journal_init=0 -d \"\$v\" '$tmp' $SIZE || { umount \"\$v\"; exit 1; };
		umount \"\$v\"; rmdir \"\$v\""
	if ! mmdebstrap --mode="$mode" --variant=minbase --format=null \
		--aptopt='APT::Install-Recommends "false"' \
		--include="$PACKAGES" \
		--customize-hook='chroot "$1" passwd -q -d root' \
		--customize-hook='echo ember >"$1/etc/hostname"' \
		--customize-hook='chroot "$1" systemctl -q mask e2scrub_reap.service e2scrub_all.timer' \
		--customize-hook='printf "127.0.0.1 localhost\n127.0.1.1 ember\n" >"$1/etc/hosts"' \
		--customize-hook='printf "/dev/vda / ext4 rw,errors=remount-ro 0 1\n" >"$1/etc/fstab"' \
		--customize-hook='rm -f "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/*_Packages' \
		--customize-hook="$mkimg" \
		"$SUITE" /dev/null "${sources[@]}" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "mmdebstrap failed (full log: $log)"
	fi
	chmod 0644 "$tmp"
	mv "$tmp" "$IMG"
	trap - EXIT
	rm -f "$log"
	say "built in $((SECONDS - t0)) s: $(du -h --apparent-size "$IMG" | cut -f1) image," \
		"$(du -h "$IMG" | cut -f1) allocated"
	# older images of other script versions are stale
	find "$CACHE" -maxdepth 1 -name 'rootfs-*.img' ! -name "rootfs-$hash.img" -delete
else
	say "cached: $IMG"
fi
if [ "$OUT" ]; then
	cp --sparse=always "$IMG" "$OUT"
fi
echo "$IMG"
