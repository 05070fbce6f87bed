#!/bin/sh
# tests/e2e/mkinitramfs.sh - builds the end-to-end test initramfs: static busybox + tests/e2e/init.sh.
# usage: tests/e2e/mkinitramfs.sh OUT.cpio [BUSYBOX [KERNEL_RELEASE]]   (an uncompressed newc archive)
# With KERNEL_RELEASE, the pvpanic modules of /lib/modules/KERNEL_RELEASE go in
# lib/modules/ (init.sh loads them), so a guest panic reaches Ember's pvpanic.
set -eu
out=$1
busybox=${2:-/bin/busybox}
release=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$busybox" ] || {
	echo "mkinitramfs: no $busybox (install busybox-static)" >&2
	exit 1
}
command -v cpio >/dev/null || {
	echo "mkinitramfs: no cpio (install cpio)" >&2
	exit 1
}
root=$(mktemp -d "${TMPDIR:-/tmp}/ember-e2e-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 "$here/init.sh" "$root/init"
pv=/lib/modules/$release/kernel/drivers/misc/pvpanic
if [ "$release" ] && [ -r "$pv/pvpanic.ko" ] && [ -r "$pv/pvpanic-mmio.ko" ]; then
	mkdir -p "$root/lib/modules"
	cp "$pv/pvpanic.ko" "$root/lib/modules/0-pvpanic.ko"
	cp "$pv/pvpanic-mmio.ko" "$root/lib/modules/1-pvpanic-mmio.ko"
fi
# and the virtio transport and devices, in dependency order
k=/lib/modules/$release/kernel
i=2
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio \
	drivers/block/virtio_blk drivers/char/hw_random/virtio-rng drivers/virtio/virtio_balloon \
	drivers/char/virtio_console; do
	if [ "$release" ] && [ -r "$k/$m.ko" ]; then
		mkdir -p "$root/lib/modules"
		cp "$k/$m.ko" "$root/lib/modules/$i-$(basename "$m").ko"
		i=$((i + 1))
	fi
done
# vsock: the guest's transport modules (after the virtio core) and the test
# peer, tests/e2e/vsock-tool.c (E2E_VSOCK_TOOL, built static by e2e.mk).
# Named v0-, v1-, v2-: init.sh loads lib/modules/*.ko in glob order, where
# these sort after every numbered one (a "10-" would sort before "2-").
j=0
for m in net/vmw_vsock/vsock net/vmw_vsock/vmw_vsock_virtio_transport_common \
	net/vmw_vsock/vmw_vsock_virtio_transport; do
	if [ "$release" ] && [ -r "$k/$m.ko" ]; then
		mkdir -p "$root/lib/modules"
		cp "$k/$m.ko" "$root/lib/modules/v$j-$(basename "$m").ko"
		j=$((j + 1))
	fi
done
if [ "${E2E_VSOCK_TOOL:-}" ] && [ -x "$E2E_VSOCK_TOOL" ]; then
	cp "$E2E_VSOCK_TOOL" "$root/bin/vsock-tool"
fi
# virtio-net and what it needs (modprobe --show-depends virtio_net), after the
# virtio core above: names 9-net-N sort after the single-digit ones
j=0
for m in net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
	if [ "$release" ] && [ -r "$k/$m.ko" ]; then
		mkdir -p "$root/lib/modules"
		cp "$k/$m.ko" "$root/lib/modules/9-net-$j-$(basename "$m").ko"
		j=$((j + 1))
	fi
done
# the ACPI button driver and evdev (tests/e2e/ctlacpi.c: the power and sleep
# buttons as input events); no dependencies, any order
for m in drivers/acpi/button drivers/input/evdev; do
	if [ "$release" ] && [ -r "$k/$m.ko" ]; then
		mkdir -p "$root/lib/modules"
		cp "$k/$m.ko" "$root/lib/modules/acpi-$(basename "$m").ko"
	fi
done
# The kernel opens /dev/console for init; as root we can make the node,
# otherwise init reopens its console after mounting devtmpfs.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | sort | cpio -o -H newc --quiet -R 0:0) >"$out.tmp"
mv "$out.tmp" "$out"
