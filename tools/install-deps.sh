#!/bin/bash
# tools/install-deps.sh - installs what Ember's build, tests and KVM sandbox need (Debian 12).
#
# Installs with apt-get (no recommends, non-interactive) only the packages
# that are missing; prints nothing and changes nothing when all are present.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
	# build: gcc brings libasan/libubsan for MODE=asan; the KVM UAPI headers
	# come from linux-libc-dev
	gcc make libc6-dev linux-libc-dev
	# libember decompresses bzImage payloads on the host (vmm/boot/decompress.c);
	# zlib's crc32 also checks snapshots (vmm/snapshot.c)
	liblzma-dev zlib1g-dev libzstd-dev liblz4-dev libbz2-dev
	# virtio-blk's io_uring engine (devices/virtio/blk.c)
	liburing-dev
	# the control socket's JSON protocol (ctl/)
	libjson-c-dev
	# the per-thread seccomp filters (vmm/seccomp.c)
	libseccomp-dev
	# make check-format; git ls-files lists the sources
	clang-format git
	# make fuzz (fuzz/): clang with -fsanitize=fuzzer
	clang libclang-rt-14-dev
	# the KVM sandbox (tools/kvm-sandbox): QEMU TCG, Debian's kernel and its
	# modules, a static busybox for the initramfs; perl for Time::HiRes
	qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils perl
	# the virtio-net e2e test: its own network namespace and tap (unshare,
	# nsenter; ip tuntap/addr/link)
	util-linux iproute2
	# tools/mkrootfs.sh: the Debian root filesystem image (the e2e rootfs test)
	mmdebstrap e2fsprogs
	# make bench (bench/io_bench.sh): the host's iperf3 server for virtio-net
	iperf3
)

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=()
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || {
		echo "install-deps: error: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
		exit 1
	}
	SUDO=(sudo)
fi
log=$(mktemp /tmp/install-deps.XXXXXX.log)
export DEBIAN_FRONTEND=noninteractive
if ! { "${SUDO[@]}" apt-get update -q &&
	"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	tail -n 30 "$log" >&2
	echo "install-deps: error: apt-get failed; full log: $log" >&2
	exit 1
fi
rm -f "$log"
still=()
for p in "${missing[@]}"; do
	installed "$p" || still+=("$p")
done
if [ ${#still[@]} -gt 0 ]; then
	echo "install-deps: error: still missing after apt-get: ${still[*]}" >&2
	exit 1
fi
echo "install-deps: done"
