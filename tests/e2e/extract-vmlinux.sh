#!/bin/sh
# tests/e2e/extract-vmlinux.sh - cuts the ELF vmlinux out of a bzImage (Debian's: one XZ stream), for the PVH tests.
# usage: tests/e2e/extract-vmlinux.sh BZIMAGE OUT
set -eu
in=$1
out=$2
command -v xz >/dev/null || {
	echo "extract-vmlinux: no xz (install xz-utils)" >&2
	exit 1
}
# the payload starts at the XZ magic FD 37 7A 58 5A 00
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$in" | head -n1 | cut -d: -f1)
[ -n "$off" ] || {
	echo "extract-vmlinux: no XZ payload in $in" >&2
	exit 1
}
mkdir -p "$(dirname "$out")"
# xz stops after the stream; the trailing bytes make it complain: ignore
tail -c +$((off + 1)) "$in" | xz -dc --single-stream >"$out.tmp" 2>/dev/null || true
[ "$(head -c 4 "$out.tmp" | od -An -c | tr -d ' ')" = '177ELF' ] || {
	echo "extract-vmlinux: the payload of $in is not an ELF" >&2
	rm -f "$out.tmp"
	exit 1
}
mv "$out.tmp" "$out"
