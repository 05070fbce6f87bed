#!/bin/busybox sh
# bench/io/init.sh - /init of the I/O benchmark's guest (bench/io/mkinitramfs.sh): the same
# initramfs for Ember and QEMU; it prints parseable lines on the console.
#
# Kernel command line (set by bench/io_bench.sh):
#   bench.mode=boot   print EMBER-BENCH-INIT at once, load the virtio drivers, wait for
#                     the devices named by bench.want= (vda,eth0,vsock, comma-separated;
#                     none: no wait) and print EMBER-BENCH-DEVS, sleep bench.sleep=S
#                     seconds (default 0), power off
#   bench.mode=io     the same, then mount the Debian root file system (the disk whose
#                     serial is not bench.scratch=ID) read-only, and in a chroot into it:
#                     fio on the scratch disk (the one with serial ID), then iperf3 to
#                     bench.host=IP (this guest is bench.ip=IP/24 on eth0); power off
#   bench.fio=SECS    fio's run time per job (default 5); bench.fiosize=MIB the span it
#                     works on (default 256); bench.iperf=SECS iperf3's time per direction
#                     (default 5); bench.tests=blk,net which of the two (default both)
# Output lines: "BENCHG name value unit" (results), "BENCHG-FAIL why" (a failure), then
# "BENCHG done failures=N".
export PATH=/bin
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -t 1 ] || exec </dev/console >/dev/console 2>&1
echo EMBER-BENCH-INIT
mount -t proc proc /proc
mount -t sysfs sysfs /sys

mode=boot want=none sleep=0 scratch=benchscratch fio=5 fiosize=256 iperf=5
tests=blk,net ip=10.0.3.2 host=10.0.3.1
for a in $(cat /proc/cmdline); do
	case "$a" in
	bench.mode=*) mode=${a#bench.mode=} ;;
	bench.want=*) want=${a#bench.want=} ;;
	bench.sleep=*) sleep=${a#bench.sleep=} ;;
	bench.scratch=*) scratch=${a#bench.scratch=} ;;
	bench.fio=*) fio=${a#bench.fio=} ;;
	bench.fiosize=*) fiosize=${a#bench.fiosize=} ;;
	bench.iperf=*) iperf=${a#bench.iperf=} ;;
	bench.tests=*) tests=${a#bench.tests=} ;;
	bench.ip=*) ip=${a#bench.ip=} ;;
	bench.host=*) host=${a#bench.host=} ;;
	esac
done
failures=0
fail() {
	echo "BENCHG-FAIL $*"
	failures=$((failures + 1))
}
finish() {
	echo "BENCHG done failures=$failures"
	poweroff -f
}

# the drivers, in dependency order (mkinitramfs.sh numbers them); a module
# the CPU cannot use (crc32c-intel) fails and its generic sibling serves
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done

# present NAME: the device has come (vda: a block device; eth0: a network
# card; vsock: the virtio transport bound a device)
present() {
	case "$1" in
	eth0) [ -e /sys/class/net/eth0 ] ;;
	vsock) ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport/ 2>/dev/null | grep -q virtio ;;
	*) [ -b "/dev/$1" ] || [ -c "/dev/$1" ] ;;
	esac
}
if [ "$want" != none ]; then
	for d in $(echo "$want" | tr , ' '); do
		n=0
		while ! present "$d" && [ $n -lt 1000 ]; do
			usleep 10000
			n=$((n + 1))
		done
		present "$d" || fail "device $d did not appear in 10 s"
	done
fi
echo EMBER-BENCH-DEVS
# the virtio console, when there is one: a line through it
[ -c /dev/hvc0 ] && echo "EMBER-BENCH-HVC" >/dev/hvc0
[ "$sleep" != 0 ] && sleep "$sleep"
[ "$mode" = io ] || finish

# --- the disks: the scratch one by its serial, the root file system the other
sdev="" rdev=""
n=0
while [ $n -lt 500 ]; do
	for b in /sys/block/vd*; do
		[ -e "$b" ] || continue
		if [ "$(cat "$b/serial" 2>/dev/null)" = "$scratch" ]; then
			sdev=/dev/${b##*/}
		else
			rdev=/dev/${b##*/}
		fi
	done
	[ "$sdev" ] && [ "$rdev" ] && break
	usleep 20000
	n=$((n + 1))
done
[ "$sdev" ] && [ "$rdev" ] || {
	fail "no scratch disk (serial $scratch) and root disk: $(ls /sys/block)"
	finish
}
mkdir -p /r
mount -t ext4 -o ro,noload "$rdev" /r || {
	fail "cannot mount $rdev (the root file system image) read-only"
	finish
}
mount -t proc proc /r/proc
mount -t sysfs sysfs /r/sys
mount -t devtmpfs devtmpfs /r/dev
mount -t tmpfs tmpfs /r/tmp
echo "BENCHG guest.disks scratch=$sdev root=$rdev"

# fio NAME RW BS DEPTH: one job, O_DIRECT, on the scratch disk; prints the
# bandwidth (MB/s, 10^6 bytes) or IOPS of its direction
runfio() {
	local name=$1 rw=$2 bs=$3 depth=$4 out
	out=$(chroot /r fio --name="$name" --filename="$sdev" --rw="$rw" --bs="$bs" \
		--iodepth="$depth" --ioengine=libaio --direct=1 --size="${fiosize}M" \
		--runtime="$fio" --time_based --ramp_time=1 --norandommap --randrepeat=0 \
		--minimal 2>&1) || {
		fail "fio $name: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
		return
	}
	# terse v3: field 7/8 read KiB/s and IOPS, 48/49 write KiB/s and IOPS
	echo "$out" | awk -F';' -v n="$name" -v rw="$rw" '
		$1 == 3 {
			w = (rw ~ /write/); bw = w ? $48 : $7; iops = w ? $49 : $8
			if (n ~ /^seq/) printf "BENCHG blk.%s %.1f MB/s\n", n, bw * 1024 / 1e6
			else printf "BENCHG blk.%s %.0f IOPS\n", n, iops
			found = 1
		}
		END { if (!found) print "BENCHG-FAIL fio " n ": no terse line" }'
}
case ",$tests," in
*,blk,*)
	runfio seqread read 1M 16
	runfio seqwrite write 1M 16
	runfio randread randread 4k 32
	runfio randwrite randwrite 4k 32
	;;
esac

# iperf3 DIR: to the host (guest->host) or from it (-R, host->guest); the
# receiver's figure in Mbit/s
runiperf() {
	local name=$1 out v
	shift
	out=$(chroot /r iperf3 -c "$host" -t "$iperf" -O 1 -f m "$@" 2>&1) || {
		fail "iperf3 $name: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
		return
	}
	v=$(echo "$out" | awk '/receiver$/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") v = $i } END { print v }')
	if [ "$v" ]; then
		echo "BENCHG net.$name $v Mbit/s"
	else
		fail "iperf3 $name: no receiver line: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}
case ",$tests," in
*,net,*)
	if ! present eth0; then
		fail "no eth0"
	else
		ip link set lo up
		ip addr add "$ip/24" dev eth0
		ip link set eth0 up
		n=0
		while ! ping -c 1 -W 1 "$host" >/dev/null 2>&1 && [ $n -lt 20 ]; do n=$((n + 1)); done
		runiperf guest_to_host
		runiperf host_to_guest -R
	fi
	;;
esac
umount /r/tmp /r/dev /r/sys /r/proc /r
finish
