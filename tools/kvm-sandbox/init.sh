#!/bin/busybox sh
# shellcheck shell=dash
# tools/kvm-sandbox/init.sh - /init of the sandbox's L1 initramfs (busybox ash).
#
# Loads the modules listed in /modules/order (kvm, kvm_amd, the 9p share and
# any extras), checks that /dev/kvm opens, mounts the host's / read-only
# (9p tag "hostroot") at /host and the run's writable share (tag "emberrun")
# over its own host path inside /host, plus any --rw shares, then chroots into
# /host and runs the command script run.sh wrote into the share. Powers off.
#
# Two serial ports: ttyS0 is the console (kernel messages, these
# "kvm-sandbox-guest:" lines, run.sh's markers), which run.sh logs;
# "kvm-sandbox-guest: FATAL:" marks a harness failure. ttyS1 carries the
# command's output only (raw: bytes pass unchanged), streamed to run.sh's
# stdout.
export PATH=/bin
/bin/busybox --install -s /bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# no echo: run.sh types a byte a second on the console (its interrupt
# keeps a stalled L1 guest going)
stty -F /dev/console -onlcr -echo 2>/dev/null

say() { echo "kvm-sandbox-guest: $*"; }
uptime_s() {
	read -r up _ </proc/uptime
	echo "$up"
}
fatal() {
	say "FATAL: $*"
	dmesg | tail -n 40 | sed 's/^/kvm-sandbox-guest: dmesg: /'
	if [ -d /share ] && [ ! -s /share/harness-error ]; then
		echo "$*" >/share/harness-error 2>/dev/null
	fi
	sync
	poweroff -f
	sleep 30
}

say "init at uptime $(uptime_s) s"

# The command's channel: no output processing (no \n -> \r\n), no echo.
# Serial ports keep their settings between opens.
[ -c /dev/ttyS1 ] || fatal "no /dev/ttyS1 (the command's output channel)"
stty -F /dev/ttyS1 115200 raw -echo -opost || fatal "cannot set /dev/ttyS1 raw"

while read -r mod; do
	[ -n "$mod" ] || continue
	name=$(echo "${mod%.ko}" | tr - _)
	[ -d "/sys/module/$name" ] && continue
	err=$(insmod "/modules/$mod" 2>&1) || fatal "insmod $mod failed: $err"
done </modules/order
say "modules loaded at uptime $(uptime_s) s"

[ -c /dev/kvm ] || fatal "/dev/kvm did not appear after loading kvm_amd" \
	"($(dmesg | grep -i -E 'kvm|svm' | tail -n 3 | tr '\n' ' '))"
exec 3<>/dev/kvm || fatal "/dev/kvm exists but does not open read-write"
exec 3>&-
say "kvm ready at uptime $(uptime_s) s"

opts=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /host /share
mount -t 9p -o "ro,$opts,cache=loose" hostroot /host || fatal "cannot mount the host's / (9p)"
mount -t 9p -o "$opts" emberrun /share || fatal "cannot mount the run's share (9p)"
read -r rundir </share/rundir || fatal "no /share/rundir"
mount -o bind /share "/host$rundir" || fatal "cannot bind the share at $rundir"
# TMPDIR: a tmpfs, since 9p cannot hold unix sockets (bind fails with ENXIO).
mount -t tmpfs -o mode=1777 tmpfs "/host$rundir/tmp" || fatal "cannot mount the tmpfs TMPDIR"
# /share/rw: "TAG PATH" lines, host folders shared writable at the same path.
if [ -s /share/rw ]; then
	while read -r tag path; do
		mount -t 9p -o "$opts" "$tag" "/host$path" || fatal "cannot mount $path (9p $tag)"
	done </share/rw
fi
mount -t proc proc /host/proc || fatal "cannot mount /proc in the chroot"
mount -t sysfs sysfs /host/sys || fatal "cannot mount /sys in the chroot"
# cgroup v2, writable, where the chrooted tests look for it (the jailer's
# --jail-cgroup): a mount only, no controller is enabled here.
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup || fatal "cannot mount cgroup2 at /sys/fs/cgroup"
mount -t devtmpfs devtmpfs /host/dev || fatal "cannot mount /dev in the chroot"
mkdir -p /host/dev/shm /host/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
mount -t devpts devpts /host/dev/pts
say "shares mounted at uptime $(uptime_s) s"

# A heartbeat: the L1 uptime into the share every 5 s. run.sh on the host
# watches its mtime (the host's clock): when it stops for --stall seconds
# the L1 guest has stalled (docs/ARCHITECTURE.md, Known problems) and run.sh
# ends this boot and retries it.
(
	while :; do
		uptime_s >/share/heartbeat.tmp && mv /share/heartbeat.tmp /share/heartbeat
		sleep 5
	done
) </dev/null >/dev/null 2>&1 &

# cmd.sh (written by run.sh) sets the environment, cds, runs the command and
# writes its output and exit status into the share.
chroot /host /usr/bin/env -i /bin/bash --noprofile --norc "$rundir/cmd.sh"
say "command script exited with $? at uptime $(uptime_s) s"
[ -s /share/status ] || fatal "the command script wrote no exit status"

# Wait until ttyS1 has sent everything (stty sets with TCSADRAIN), in case
# something the command left behind still holds it open.
stty -F /dev/ttyS1 raw 2>/dev/null
sync
umount /host/dev/pts /host/dev/shm /host/dev /host/sys/fs/cgroup /host/sys /host/proc 2>/dev/null
poweroff -f
sleep 30
