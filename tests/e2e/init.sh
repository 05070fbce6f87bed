#!/bin/busybox sh
# tests/e2e/init.sh - /init of the end-to-end test initramfs: checks what the guest sees, then powers off (or reboots, or triple-faults).
#
# Kernel command line parameters (set by tests/e2e/run.sh):
#   e2e.cpus=N       vCPUs the VMM was given
#   e2e.mem=BYTES    guest memory the VMM was given
#   e2e.echo=0|1     1: print "E2E ready", read one line "e2e-line TOKEN EPOCH" from the
#                    console, print "E2E echo TOKEN", check the RTC against EPOCH
#   e2e.reload=1     unload and reload virtio_blk, virtio_rng and virtio_balloon (with
#                    e2e.disks/rng/balloon) and use each device again; e2e.hvc=1 also
#                    virtio_console (hvc0 there, not the console), written before and after
#   e2e.action=A     poweroff (default) | reboot | hang (wait for the host to stop the VM) |
#                    panic (sysrq-c: the kernel panics; pvpanic tells the VMM) |
#                    flood (print e2e.lines=N lines "E2E seq I", then power off) |
#                    count (print "E2E count I" for I = 0, 1, ... until the host stops the VM) |
#                    clone (count, with the boot id and "E2E vmfork ID" once a restore reseeded,
#                    2 s later "E2E tsc unstable N": N kernel lines that marked the TSC unstable) |
#                    diskio (write and flush /dev/vda, print "E2E disk I", until stopped) |
#                    snapnet (tests/e2e/snapshot.c, with initramfs-fs.cpio: eth0, a vsock
#                    server and a held vsock connection, files written to ext4 on vda
#                    until a console line comes after the restore; then the checks) |
#                    balloon (fill most free memory, free it, print "E2E balloon ready",
#                    wait for the host to stop the VM: tests/e2e/devctl.c) |
#                    oom (deflate-on-OOM, run.sh's balloon_deflate_on_oom: print the
#                    free memory, at the host's console line write 32 MiB more
#                    than is free into a tmpfs, print "E2E oom done ...", wait) |
#                    rngread (read 64 KiB from /dev/hwrng, print "E2E rngread done N", wait) |
#                    swap (32 MiB of a random pattern in a tmpfs, "E2E swap ready MD5", then
#                    "E2E swap sum MD5" for each console line: tests/e2e/devctl.c) |
#                    halt (halt -f: every CPU stops in HLT with interrupts off) |
#                    ctl (tests/e2e/ctlacpi.c: arm an RTC alarm, print "E2E ctl ready", then
#                    report the RTC interrupt, vda's new size, the sleep button; power off
#                    on the power button) |
#                    hotplug (tests/e2e/ctlacpi.c: print "E2E hp ready", wait for a hot-added
#                    eth0, ping 10.0.3.1 from 10.0.3.15, then drop the card when the host
#                    removes it)
#   e2e.rngrate=B/s  with e2e.rng=1 and e2e.rngburst=B: read 4 s worth from /dev/hwrng,
#                    check it came at about B/s
#   e2e.vdarate=B/s  the same from /dev/vda (an image of at least 4 s worth), burst
#                    e2e.vdaburst=B
#   e2e.rtcirq=1     set an RTC alarm 2 s ahead and check IRQ 8 (rtc0) fired
#   e2e.rebootdisk=1 with e2e.disks=1 and `ember run --reboot restart`: boot 1 writes data
#                    to vda and reboots, boot 2 ("E2E boot 2") reads it back and powers off
# Output: "E2E <key> <value>" lines, "E2E-FAIL <why>" for each failed check, and finally
# "E2E result checks=N failures=M" before the action.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -t 1 ] || exec </dev/console >/dev/console 2>&1
# boot-time marker for the VMM (port 0x80): init reached
printf '\173' | dd of=/dev/port bs=1 seek=128 count=1 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# pvpanic (lib/modules/N-NAME.ko, in load order, when mkinitramfs.sh found them)
for m in /lib/modules/*.ko; do [ -e "$m" ] && insmod "$m"; done

checks=0
failures=0
check() { # check NAME CONDITION-COMMAND...
	name=$1
	shift
	checks=$((checks + 1))
	if "$@"; then
		echo "E2E ok $name"
	else
		failures=$((failures + 1))
		echo "E2E-FAIL $name"
	fi
}

cpus=1 mem=0 echo=0 action=poweroff lines=100 disks=0 rng=0 balloon=0 blkio=0
vsock=0
rngrate=0 rngburst=0 vdarate=0 vdaburst=0
rtcirq=0
for a in $(cat /proc/cmdline); do
	case "$a" in
	e2e.cpus=*) cpus=${a#e2e.cpus=} ;;
	e2e.mem=*) mem=${a#e2e.mem=} ;;
	e2e.echo=*) echo=${a#e2e.echo=} ;;
	e2e.action=*) action=${a#e2e.action=} ;;
	e2e.lines=*) lines=${a#e2e.lines=} ;;
	e2e.disks=*) disks=${a#e2e.disks=} ;;
	e2e.rng=*) rng=${a#e2e.rng=} ;;
	e2e.balloon=*) balloon=${a#e2e.balloon=} ;;
	e2e.blkio=*) blkio=${a#e2e.blkio=} ;;
	e2e.vsock=*) vsock=${a#e2e.vsock=} ;;
	e2e.rngrate=*) rngrate=${a#e2e.rngrate=} ;;
	e2e.rngburst=*) rngburst=${a#e2e.rngburst=} ;;
	e2e.vdarate=*) vdarate=${a#e2e.vdarate=} ;;
	e2e.vdaburst=*) vdaburst=${a#e2e.vdaburst=} ;;
	e2e.reload=*) reload=${a#e2e.reload=} ;;
	e2e.hvc=*) hvc=${a#e2e.hvc=} ;;
	e2e.rtcirq=*) rtcirq=${a#e2e.rtcirq=} ;;
	e2e.rebootdisk=*) rebootdisk=${a#e2e.rebootdisk=} ;;
	esac
done
echo "E2E kernel $(uname -r)"
read up _ </proc/uptime
echo "E2E uptime_at_init $up"

# CPUs: every vCPU the VMM made, brought up by the guest (INIT/SIPI)
seen=$(grep -c '^processor' /proc/cpuinfo)
online=$(cat /sys/devices/system/cpu/online)
echo "E2E cpus $seen online $online"
want_online=0
[ "$cpus" -gt 1 ] && want_online="0-$((cpus - 1))"
check cpus [ "$seen" = "$cpus" ]
check cpus_online [ "$online" = "$want_online" ]

# Memory: the E820 map the kernel got adds up to --mem minus the legacy hole
# (0x9fc00-0x100000), and MemTotal is plausible.
ram=0
for r in $(dmesg | sed -n 's/.*BIOS-e820: \[mem \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\)\] usable.*/\1:\2/p'); do
	ram=$((ram + ${r#*:} - ${r%:*} + 1))
done
total_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
echo "E2E memory e820_usable $ram memtotal_kb $total_kb"
echo "E2E meminfo $(grep -E '^(MemTotal|MemFree|Percpu):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
check e820_ram [ "$ram" = "$((mem - 0x60400))" ]
check memtotal [ "$((total_kb * 1024))" -le "$mem" -a "$((total_kb * 1024 * 10))" -ge "$((mem * 6))" ]

# ACPI: the tables the VMM built were found and parsed
check acpi_tables [ -d /sys/firmware/acpi/tables ] && [ -e /sys/firmware/acpi/tables/DSDT ]
check rtc_device [ -e /sys/class/rtc/rtc0/since_epoch ]
check ttyS0_16550A sh -c "dmesg | grep -q 'ttyS0 at I/O 0x3f8.*16550A'"
# the DSDT's devices (made from the VMM's device list) as the guest enumerated them
check dsdt_devices sh -c "ls /sys/bus/acpi/devices | grep -q '^PNP0501:' &&
	ls /sys/bus/acpi/devices | grep -q '^PNP0303:' && ls /sys/bus/acpi/devices | grep -q '^PNP0B00:'"

# virtio devices (e2e.disks=N: vda is writable and starts with EMBER-E2E-DISK,
# the rest read-only; e2e.rng=1; e2e.balloon=1)
if [ "$disks" -gt 0 ]; then
	check virtio_mmio_acpi sh -c "ls /sys/bus/acpi/devices | grep -q '^LNRO0005:'"
	check vda_present [ -b /dev/vda ]
	check vda_reads sh -c "dd if=/dev/vda bs=512 count=1 2>/dev/null | grep -q EMBER-E2E-DISK"
	check vda_writes sh -c "echo GUEST-WROTE-IT | dd of=/dev/vda bs=512 seek=1 conv=sync,fsync 2>/dev/null"
	check vda_serial sh -c "grep -q e2e-serial /sys/block/vda/serial"
	check vda_size [ "$(cat /sys/block/vda/size)" = 2048 ]
	if [ "$disks" -gt 1 ]; then
		check vdb_ro [ "$(cat /sys/block/vdb/ro)" = 1 ]
		check vdb_refuses_writes sh -c "! echo x | dd of=/dev/vdb bs=512 conv=sync,fsync 2>/dev/null"
	fi
fi
# a guest reboot with a disk attached (e2e.rebootdisk=1, the VMM resets the machine in
# place): boot 1 writes 256 KiB of random data at 512 KiB on vda and, in sector 4, its
# md5; it reboots. Boot 2 finds the md5, reads the data back, writes sector 5 and
# powers off. Each boot says which it is ("E2E boot N"; the host counts them).
if [ "${rebootdisk:-0}" = 1 ]; then
	rb_sum=$(dd if=/dev/vda bs=512 skip=4 count=1 2>/dev/null | sed -n 's/^E2E-REBOOT-MD5 \([0-9a-f]*\).*/\1/p')
	if [ -n "$rb_sum" ]; then
		echo "E2E boot 2"
		rb_got=$(dd if=/dev/vda bs=4096 skip=128 count=64 2>/dev/null | md5sum | cut -d' ' -f1)
		echo "E2E reboot_data md5 $rb_got (boot 1 wrote $rb_sum)"
		check reboot_data_read_back [ "$rb_got" = "$rb_sum" ]
		check reboot_write_after sh -c "echo WRITTEN-AFTER-REBOOT | dd of=/dev/vda bs=512 seek=5 conv=sync,fsync 2>/dev/null"
		action=poweroff
	else
		echo "E2E boot 1"
		dd if=/dev/urandom of=/tmp/rb-data bs=4096 count=64 2>/dev/null
		check reboot_data_write dd if=/tmp/rb-data of=/dev/vda bs=4096 seek=128 conv=fsync 2>/dev/null
		check reboot_sum_write sh -c "echo E2E-REBOOT-MD5 \$(md5sum </tmp/rb-data | cut -d' ' -f1) | dd of=/dev/vda bs=512 seek=4 conv=sync,fsync 2>/dev/null"
		action=reboot
	fi
fi
# virtio-blk I/O (e2e.blkio=1): vda (4 MiB, writable) and vdb (1 MiB + 100
# bytes, writable): one queue per vCPU, writes with a flush, a discard that
# reads back as zeros (the host checks the image's blocks went away)
if [ "$blkio" = 1 ]; then
	nq=$(ls /sys/block/vda/mq 2>/dev/null | wc -l)
	echo "E2E vda queues $nq"
	check vda_one_queue_per_cpu [ "$nq" = "$cpus" ]
	check vda_write_flush sh -c "echo GUEST-WROTE-VDA | dd of=/dev/vda bs=512 seek=1 conv=sync,fsync 2>/dev/null"
	check vdb_write_flush sh -c "echo GUEST-WROTE-VDB | dd of=/dev/vdb bs=512 seek=2 conv=sync,fsync 2>/dev/null"
	check vdb_size_rounds_down [ "$(cat /sys/block/vdb/size)" = 2048 ]
	check vda_discard_supported [ "$(cat /sys/block/vda/queue/discard_max_bytes)" -gt 0 ]
	check vda_discard blkdiscard -o 1048576 -l 2097152 /dev/vda
	check vda_discarded_reads_zero sh -c "[ \$(dd if=/dev/vda bs=1048576 skip=1 count=2 2>/dev/null | tr -d '\\000' | wc -c) = 0 ]"
	check vda_parallel_readers sh -c "for i in 0 1 2 3; do dd if=/dev/vda of=/dev/null bs=4096 skip=\$((i * 64)) count=64 2>/dev/null & done; wait"
	sync
fi
if [ "$rng" = 1 ]; then
	check virtio_rng_current sh -c "grep -q virtio_rng /sys/class/misc/hw_random/rng_current"
	check virtio_rng_reads sh -c "[ \$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c) = 64 ]"
fi
# rate limits: the VMM limits a device to RATE bytes/s with a bucket of BURST
# bytes; 4 s worth read from DEV take about (4 s worth - BURST) / RATE (coarse
# bounds on (bytes - BURST) / time: 0.5x..1.1x the limit)
rate_check() { # rate_check NAME DEV RATE BURST
	want=$(($3 * 4))
	read t0 _ </proc/uptime
	got=$(head -c $want "$2" | wc -c)
	read t1 _ </proc/uptime
	cs=$(awk "BEGIN { print int(($t1 - $t0) * 100) }")
	[ "$cs" -gt 0 ] || cs=1
	rate=$(((got - $4) * 100 / cs))
	echo "E2E ${1}_rate $rate bytes/s ($got bytes in $cs cs, limit $3, burst $4)"
	check ${1}_rate_read_all [ "$got" = "$want" ]
	check ${1}_rate_limited [ "$rate" -le $(($3 * 11 / 10)) -a "$rate" -ge $(($3 / 2)) ]
}
[ "$rng" = 1 ] && [ "$rngrate" -gt 0 ] && rate_check rng /dev/hwrng "$rngrate" "$rngburst"
[ "$vdarate" -gt 0 ] && rate_check vda /dev/vda "$vdarate" "$vdaburst"
if [ "$balloon" = 1 ]; then
	check virtio_balloon_bound sh -c "ls /sys/bus/virtio/drivers/virtio_balloon | grep -q virtio"
fi

# vsock_both_ways PREFIX N: N connections at once to the host's echo server
# on port 6000, then the guest's server ($vpid: vsock-tool serve, for the
# host's connections) waited for; checks PREFIXguest_to_host and
# PREFIXhost_to_guest
vsock_both_ways() {
	check "${1}guest_to_host" sh -c "vsock-tool connect 2 6000 $2 65536 >/tmp/vconn.log 2>&1"
	grep -v 'bytes both ways' /tmp/vconn.log | sed 's/^/E2E vsock guest-to-host: /'
	t=0
	while kill -0 $vpid 2>/dev/null && [ $t -lt 600 ]; do sleep 0.1; t=$((t + 1)); done
	kill $vpid 2>/dev/null
	wait $vpid
	vrc=$?
	grep -v listening /tmp/vserve.log | sed 's/^/E2E vsock host-to-guest: /'
	check "${1}host_to_guest" [ "$vrc" = 0 ]
}

# virtio-vsock (e2e.vsock=1, cid 3): an echo server on port 5000 for the
# host's 32 connections, and 32 connections at once to the host's echo
# server on port 6000 (tests/e2e/vsock-tool.c checks every byte of each),
# then one more after the driver was reloaded
if [ "$vsock" = 1 ]; then
	check vsock_bound sh -c "ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport | grep -q virtio"
	check vsock_cid [ "$(vsock-tool cid)" = 3 ]
	vsock-tool serve 5000 32 >/tmp/vserve.log 2>&1 &
	vpid=$!
	t=0
	while ! grep -q listening /tmp/vserve.log && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
	echo "E2E vsock-ready"
	vsock_both_ways vsock_ 32
	# the driver goes and comes back (a device reset, a new probe): the
	# host's echo server takes a 33rd connection
	# (closed sockets may hold the module for a moment)
	t=0
	while ! rmmod vmw_vsock_virtio_transport 2>/dev/null && [ $t -lt 50 ]; do
		sleep 0.1
		t=$((t + 1))
	done
	check vsock_reload sh -c "insmod /lib/modules/v2-vmw_vsock_virtio_transport.ko &&
		vsock-tool connect 2 6000 1 65536 >/tmp/vreload.log 2>&1"
	grep -v 'bytes both ways' /tmp/vreload.log | sed 's/^/E2E vsock after reload: /'
fi

# virtio-net (e2e.net=1, e2e.net_mac=MAC, e2e.net_rx_md5=SUM): the card has the
# MAC the VMM was given; 10.0.2.15/24 pings the host's tap (10.0.2.1); 3 MiB go
# to the host's port 5001 (their md5 printed for the host to compare) and the
# host's 3 MiB come from its port 5002 with the md5 the host gave; after the
# module is unloaded and loaded again, the card still pings
net=0 net_mac="" net_rx_md5=""
for a in $(cat /proc/cmdline); do
	case "$a" in
	e2e.net=*) net=${a#e2e.net=} ;;
	e2e.net_mac=*) net_mac=${a#e2e.net_mac=} ;;
	e2e.net_rx_md5=*) net_rx_md5=${a#e2e.net_rx_md5=} ;;
	esac
done
net_t() { read -r up _ </proc/uptime && net_times="$net_times $1=$up"; }
if [ "$net" = 1 ]; then
	net_times=""
	net_t start
	n=0
	while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	check net_eth0 [ -e /sys/class/net/eth0 ]
	echo "E2E net_mac $(cat /sys/class/net/eth0/address 2>/dev/null)"
	check net_mac [ "$(cat /sys/class/net/eth0/address 2>/dev/null)" = "$net_mac" ]
	ip link set lo up
	ip link set eth0 up
	ip addr add 10.0.2.15/24 dev eth0
	check net_carrier [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ]
	check net_ping ping -c 3 -W 10 10.0.2.1
	net_t ping
	dd if=/dev/urandom of=/tmp/net-tx bs=1M count=3 2>/dev/null
	echo "E2E net_tx_md5 $(md5sum </tmp/net-tx | cut -d' ' -f1)"
	net_t data
	# in 64 KiB writes (busybox nc writes 1 KiB at a time, which TCP sends
	# as TSO frames only when ACKs lag): the host checks that TSO was used
	check net_tcp_to_host vsock-tool tcp-send 10.0.2.1 5001 </tmp/net-tx
	net_t to_host
	# hold nc's input open (busybox nc ends at its input's EOF) until the host ends
	mkfifo /tmp/net-hold
	nc 10.0.2.1 5002 </tmp/net-hold >/tmp/net-rx &
	ncpid=$!
	exec 9>/tmp/net-hold
	wait $ncpid
	exec 9>&-
	net_t from_host
	echo "E2E net_rx_bytes $(wc -c </tmp/net-rx)"
	check net_tcp_from_host [ "$(md5sum </tmp/net-rx | cut -d' ' -f1)" = "$net_rx_md5" ]
	echo "E2E net_stats $(tr -s ' ' </proc/net/dev | grep eth0:)"
	# the driver resets the device and sets it up again: the card still works
	check net_module_reload sh -c "rmmod virtio_net && insmod /lib/modules/9-net-2-virtio_net.ko"
	n=0
	while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	ip link set eth0 up
	ip addr add 10.0.2.15/24 dev eth0
	check net_ping_after_reload ping -c 2 -W 10 10.0.2.1
	net_t reload
	echo "E2E net_times$net_times"
fi

# driver reset and re-initialisation (e2e.reload=1): each virtio driver is
# unloaded (its remove resets the device: Status 0) and loaded again (a new
# negotiation and new queues), then its device is used again
if [ "${reload:-0}" = 1 ]; then
	ko() { ls /lib/modules/*-"$1".ko | head -n 1; }
	waitfor() { # waitfor COMMAND...: up to 5 s
		n=0
		until "$@"; do
			n=$((n + 1))
			[ $n -gt 50 ] && return 1
			sleep 0.1
		done
	}
	if [ "$disks" -gt 0 ]; then
		check reload_blk_unloaded sh -c "rmmod virtio_blk && [ ! -b /dev/vda ]"
		check reload_blk_loaded insmod "$(ko virtio_blk)"
		check reload_blk_vda waitfor [ -b /dev/vda ]
		# a new disk (no page cache): what the host put and what the guest wrote before
		check reload_blk_reads sh -c "dd if=/dev/vda bs=512 count=1 2>/dev/null | grep -q EMBER-E2E-DISK"
		check reload_blk_reads_earlier_write sh -c "dd if=/dev/vda bs=512 skip=1 count=1 2>/dev/null | grep -q GUEST-WROTE-IT"
		check reload_blk_writes sh -c "echo WRITTEN-AFTER-RELOAD | dd of=/dev/vda bs=512 seek=2 conv=sync,fsync 2>/dev/null"
	fi
	if [ "$rng" = 1 ]; then
		check reload_rng_unloaded sh -c "rmmod virtio_rng && ! grep -q virtio_rng /sys/class/misc/hw_random/rng_current"
		check reload_rng_loaded insmod "$(ko virtio-rng)"
		check reload_rng_current waitfor grep -q virtio_rng /sys/class/misc/hw_random/rng_current
		check reload_rng_reads sh -c "[ \$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c) = 64 ]"
	fi
	if [ "$balloon" = 1 ]; then
		check reload_balloon_unloaded sh -c "rmmod virtio_balloon && [ ! -e /sys/bus/virtio/drivers/virtio_balloon ]"
		check reload_balloon_loaded insmod "$(ko virtio_balloon)"
		check reload_balloon_bound waitfor sh -c "ls /sys/bus/virtio/drivers/virtio_balloon | grep -q virtio"
	fi
	if [ "${hvc:-0}" = 1 ]; then
		check reload_hvc0_writes_before sh -c "[ -c /dev/hvc0 ] && echo 'E2E hvc0 before reload' >/dev/hvc0"
		# (the hvc driver is built in: /dev/hvc0 stays, the driver goes)
		check reload_console_unloaded sh -c "rmmod virtio_console && [ ! -e /sys/bus/virtio/drivers/virtio_console ]"
		check reload_console_loaded insmod "$(ko virtio_console)"
		check reload_console_bound waitfor sh -c "ls /sys/bus/virtio/drivers/virtio_console | grep -q virtio"
		check reload_hvc0_writes_after sh -c "echo 'E2E hvc0 after reload' >/dev/hvc0"
	fi
	# every device is set up again: ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, no NEEDS_RESET
	for d in /sys/bus/virtio/devices/*; do
		echo "E2E virtio_status ${d##*/} $(cat "$d/status")"
		check "reload_status_${d##*/}" [ "$(cat "$d/status")" = 0x0000000f ]
	done
fi

# e2e.rtcirq=1: the RTC's alarm interrupt reaches the guest (IRQ 8, rtc0 in
# /proc/interrupts), and the kernel sees the alarm expire
if [ "$rtcirq" = 1 ]; then
	rtc_irqs() { awk '$NF == "rtc0" { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }' /proc/interrupts; }
	n0=$(rtc_irqs)
	echo +2 >/sys/class/rtc/rtc0/wakealarm
	sleep 4
	n1=$(rtc_irqs)
	echo "E2E rtc_irq before ${n0:-none} after ${n1:-none} wakealarm '$(cat /sys/class/rtc/rtc0/wakealarm)'"
	check rtc_alarm_interrupt [ "${n1:-0}" -gt "${n0:-0}" ]
	check rtc_alarm_expired [ -z "$(cat /sys/class/rtc/rtc0/wakealarm)" ]
fi

# the guest kernel's log: no warning, bug, "Fatal" or taint (issue 9). Nothing
# is let through: "PCI: Fatal: No config space access function found" (what
# pci=off, or a board without config mechanism #1, gives) fails it too.
dmesg | grep -E 'WARNING|BUG|Fatal|Call Trace' >/tmp/klog.bad
# the board's PCI host bridge: Linux found config mechanism #1 (0xcf8)
check pci_config_type1 sh -c "dmesg | grep -q 'PCI: Using configuration type 1 for base access'"
while read -r l; do echo "E2E klog $l"; done </tmp/klog.bad
check kernel_log_clean [ ! -s /tmp/klog.bad ]
check kernel_not_tainted [ "$(cat /proc/sys/kernel/tainted)" = 0 ]

if [ "$echo" = 1 ]; then
	echo "E2E ready"
	line=""
	read -t 120 line tok hostnow
	echo "E2E echo $tok"
	check echo [ "$line" = e2e-line ]
	rtc=$(cat /sys/class/rtc/rtc0/since_epoch 2>/dev/null || echo 0)
	echo "E2E rtc $rtc host $hostnow diff $((rtc - hostnow))"
	check rtc_vs_host [ "$((rtc - hostnow))" -ge -3 -a "$((rtc - hostnow))" -le 5 ]
fi

echo "E2E result checks=$checks failures=$failures"
case "$action" in
flood) # e2e.lines=N numbered lines as fast as the console takes them, then power off
	seq 0 $((lines - 1)) | sed 's/^/E2E seq /'
	echo "E2E flood done"
	poweroff -f
	;;
clone) # snapshots (tests/e2e/snapshot.c): the boot id, the counter of "count", and once
	# the kernel logged a VM fork (the vmgenid driver reseeded after a restore)
	# "E2E vmfork BOOT_ID"
	echo "E2E boot_id $(cat /proc/sys/kernel/random/boot_id)"
	i=0
	seen=0
	while :; do
		echo "E2E count $i"
		if [ $seen = 0 ] && dmesg | grep -q 'virtual machine fork'; then
			seen=1
			echo "E2E vmfork $(cat /proc/sys/kernel/random/boot_id)"
			read -r up _ </proc/uptime
			forked=${up%.*}
		fi
		# 2 s later (the clocksource watchdog checks every 0.5 s): did it
		# find the restored TSC and kvm-clock apart?
		if [ $seen = 1 ]; then
			read -r up _ </proc/uptime
			if [ "${up%.*}" -ge $((forked + 2)) ]; then
				seen=2
				echo "E2E tsc unstable $(dmesg | grep -c "clocksource 'tsc' as unstable")"
			fi
		fi
		i=$((i + 1))
	done
	;;
count) # a counter kept in this shell, printed until the host stops the VM
	i=0
	while :; do
		echo "E2E count $i"
		i=$((i + 1))
	done
	;;
diskio) # s3-blk: writes with flushes to /dev/vda, "E2E disk I" after each (for pause tests)
	i=0
	while :; do
		if echo "E2E-ITER $i" | dd of=/dev/vda bs=512 seek=$((i % 64)) conv=sync,fsync 2>/dev/null &&
			dd if=/dev/urandom of=/dev/vda bs=65536 count=4 seek=$((16 + i % 32)) conv=fsync 2>/dev/null; then
			echo "E2E disk $i"
		else
			echo "E2E-FAIL disk write $i"
		fi
		i=$((i + 1))
	done
	;;
snapnet) # snapshots (tests/e2e/snapshot.c): set up before the snapshot, checked after
	# the restore. Before: eth0 10.0.4.15/24, vda's ext4 on /mnt, a vsock echo
	# server on port 5000 and a connection held to the host's port 6000; then
	# files written and fsynced on /mnt ("E2E fs I") until a console line
	# "e2e-line TOKEN" comes (the host types it after the restore). After:
	# "E2E echo TOKEN", the files read back, /mnt unmounted and e2fsck'd, a
	# ping of 10.0.4.1, the held connection reset (the transport reset event),
	# a new connection to the host and the host's one to port 5000 served.
	for m in /lib/modules/fs/*.ko; do insmod "$m"; done
	ip link set lo up
	ip link set eth0 up
	ip addr add 10.0.4.15/24 dev eth0
	mkdir -p /mnt
	check snap_mount mount -t ext4 /dev/vda /mnt
	check snap_ping_before ping -c 1 -W 10 10.0.4.1
	vsock-tool serve 5000 1 >/tmp/vserve.log 2>&1 &
	vpid=$!
	vsock-tool hold 2 6000 120 >/tmp/vhold.log 2>&1 &
	hpid=$!
	t=0
	while ! { grep -q listening /tmp/vserve.log && grep -q held /tmp/vhold.log; } && [ $t -lt 100 ]; do
		sleep 0.1
		t=$((t + 1))
	done
	check snap_vsock_held grep -q held /tmp/vhold.log
	# the console line, read in the background (through fd 8: an
	# asynchronous command's stdin is /dev/null before its redirections)
	exec 8<&0
	(read -r l tok && [ "$l" = e2e-line ] && echo "$tok" >/tmp/go.tmp && mv /tmp/go.tmp /tmp/go) <&8 &
	echo "E2E snapnet ready"
	i=0
	while [ ! -e /tmp/go ]; do
		f=/mnt/f$((i % 8))
		if dd if=/dev/urandom of=$f bs=4096 count=16 conv=fsync 2>/dev/null &&
			echo "$(md5sum <$f | cut -d' ' -f1) f$((i % 8))" >/mnt/sum$((i % 8)) && sync; then
			echo "E2E fs $i"
		else
			echo "E2E-FAIL fs write $i"
		fi
		i=$((i + 1))
	done
	echo "E2E echo $(cat /tmp/go)"
	checks=0
	failures=0
	check snap_files_read_back sh -c 'for s in /mnt/sum*; do read -r m f <$s && [ "$(md5sum </mnt/$f | cut -d" " -f1)" = "$m" ] || exit 1; done'
	check snap_umount umount /mnt
	/usr/sbin/e2fsck -f -n /dev/vda >/tmp/fsck.log 2>&1
	frc=$?
	while read -r l; do echo "E2E fsck $l"; done </tmp/fsck.log
	check snap_fsck [ "$frc" = 0 ]
	check snap_ping ping -c 2 -W 10 10.0.4.1
	wait $hpid
	hrc=$?
	echo "E2E vsock held: $(tail -n 1 /tmp/vhold.log)"
	check snap_vsock_held_reset [ "$hrc" = 0 ]
	vsock_both_ways snap_vsock_ 1
	echo "E2E snapnet done checks=$checks failures=$failures"
	while :; do sleep 1000; done
	;;
reboot) reboot -f ;;
panic) sleep 1 && echo c >/proc/sysrq-trigger ;; # let the result line drain first
hang) while :; do sleep 1000; done ;;
rngread) # 64 KiB from /dev/hwrng (tests/e2e/devctl.c lifts its rate limit meanwhile)
	echo "E2E rngread start"
	echo "E2E rngread done $(head -c 65536 /dev/hwrng | wc -c)"
	while :; do sleep 1000; done
	;;
balloon) # touch most free memory (resident on the host), free it, let the host inflate
	mkdir -p /fill && mount -t tmpfs -o size=100% tmpfs /fill
	free_mb=$(($(sed -n 's/^MemFree: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024))
	dd if=/dev/zero of=/fill/f bs=1M count=$((free_mb - 12)) 2>/dev/null
	rm -f /fill/f
	echo "E2E balloon ready (filled $((free_mb - 12)) MiB)"
	while :; do sleep 1000; done
	;;
oom) # deflate-on-OOM (run.sh balloon_deflate_on_oom): the balloon's features as the
	# driver negotiated them, "E2E oom ready free_kb N", then, at the host's console
	# line (sent once the balloon holds most of that memory), 32 MiB more than is
	# free written into a tmpfs. No swap, no page cache to speak of (the initramfs
	# is not reclaimable): the allocations reach the OOM path, where the balloon
	# driver's notifier (deflate-on-OOM) takes pages back from the balloon, 1 MiB a
	# call, and the write goes on; without the feature a process is OOM-killed
	checks=0
	failures=0
	oom_free() { sed -n 's/^MemFree: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
	bdev=$(ls -d /sys/bus/virtio/drivers/virtio_balloon/virtio* 2>/dev/null | head -n 1)
	feat=$(cat "$bdev/features" 2>/dev/null)
	# one character per feature bit, bit 0 first: bit 2 is DEFLATE_ON_OOM
	echo "E2E oom features $feat"
	mkdir -p /fill && mount -t tmpfs -o size=100% tmpfs /fill
	echo "E2E oom ready free_kb $(oom_free)"
	read -r -t 300 l _
	free_mb=$(($(oom_free) / 1024))
	want=$((free_mb + 32))
	dd if=/dev/zero of=/fill/f bs=1M count=$want 2>/tmp/oom.dd
	rc=$?
	got=$(($(wc -c </fill/f) / 1048576))
	echo "E2E oom wrote $got MiB of $want, free before $free_mb MiB, after $(($(oom_free) / 1024)) MiB, dd status $rc"
	check oom_console_line [ "$l" = e2e-line ]
	check oom_write_whole [ "$rc" = 0 -a "$got" = "$want" ]
	dmesg | grep -E 'oom-kill|Out of memory|Killed process|allocation failure|Call Trace' >/tmp/oom.klog
	while read -r k; do echo "E2E oom klog $k"; done </tmp/oom.klog
	check oom_nothing_killed [ ! -s /tmp/oom.klog ]
	check oom_deflate_on_oom_negotiated [ "$(echo "$feat" | cut -c3)" = 1 ]
	echo "E2E oom done checks=$checks failures=$failures"
	while :; do sleep 1000; done
	;;
swap) # a pattern in memory (tests/e2e/devctl.c), its sum again for each console line
	mkdir -p /fill && mount -t tmpfs -o size=100% tmpfs /fill
	dd if=/dev/urandom of=/fill/seed bs=64k count=16 2>/dev/null
	i=0
	while [ $i -lt 32 ]; do cat /fill/seed; i=$((i + 1)); done >/fill/f
	echo "E2E swap ready $(md5sum </fill/f | cut -d' ' -f1)"
	while read -t 600 _; do echo "E2E swap sum $(md5sum </fill/f | cut -d' ' -f1)"; done
	;;
ctl) # the host's control actions (tests/e2e/ctlacpi.c), each seen from here
	ctl_irqs() { awk '$NF == "rtc0" { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }' /proc/interrupts; }
	# the buttons' input devices (button.ko, evdev.ko)
	pwr="" slp=""
	for d in /sys/class/input/event*; do
		case "$(cat "$d/device/name" 2>/dev/null)" in
		"Power Button") pwr=/dev/input/${d##*/} ;;
		"Sleep Button") slp=/dev/input/${d##*/} ;;
		esac
	done
	check ctl_ged_device sh -c "ls /sys/bus/acpi/devices | grep -q '^ACPI0013:'"
	# bound to Linux's evged driver (drivers/acpi/evged.c, "acpi-ged")
	echo "E2E ctl ged driver $(ls -d /sys/bus/platform/drivers/*/ACPI0013:* 2>/dev/null)"
	check ctl_ged_bound sh -c "ls -d /sys/bus/platform/drivers/acpi-ged/ACPI0013:* >/dev/null 2>&1"
	check ctl_power_button [ -c "$pwr" ]
	check ctl_sleep_button [ -c "$slp" ]
	# one input event (struct input_event, 24 bytes): its type and code
	ctl_key() { dd if="$1" bs=24 count=1 2>/dev/null | od -An -tu2 -j16 -N4 | tr -s ' '; }
	(k=$(ctl_key "$slp") && echo "E2E ctl sleepbtn$k") &
	(k=$(ctl_key "$pwr") && echo "E2E ctl powerbtn$k" && sleep 0.5 && poweroff -f) &
	# an alarm an hour ahead: AIE on, it will not ring by itself
	echo +3600 >/sys/class/rtc/rtc0/wakealarm
	n0=$(ctl_irqs)
	s0=$(cat /sys/block/vda/size 2>/dev/null)
	echo "E2E ctl ready rtc $n0 vda $s0"
	t=0
	while [ "$(ctl_irqs)" = "$n0" ] && [ $t -lt 600 ]; do sleep 0.1; t=$((t + 1)); done
	echo "E2E ctl rtc irq $(ctl_irqs)"
	t=0
	while [ "$(cat /sys/block/vda/size 2>/dev/null)" = "$s0" ] && [ $t -lt 600 ]; do sleep 0.1; t=$((t + 1)); done
	s1=$(cat /sys/block/vda/size 2>/dev/null)
	echo "E2E ctl vda size $s1"
	# the grown part is usable: the host finds this in its image
	echo GUEST-WROTE-GROWN | dd of=/dev/vda bs=512 seek=$((s1 - 8)) conv=sync,fsync 2>/dev/null &&
		echo "E2E ctl vda grown write ok"
	while :; do sleep 1000; done
	;;
hotplug) # a NIC hot-added by the host (tests/e2e/ctlacpi.c), used, then removed
	echo "E2E hp ready"
	t=0
	while [ ! -e /sys/class/net/eth0 ] && [ $t -lt 600 ]; do sleep 0.1; t=$((t + 1)); done
	check hp_eth0_appeared [ -e /sys/class/net/eth0 ]
	echo "E2E hp mac $(cat /sys/class/net/eth0/address 2>/dev/null)"
	ip link set lo up
	ip link set eth0 up
	ip addr add 10.0.3.15/24 dev eth0
	check hp_ping ping -c 3 -W 10 10.0.3.1
	# the card's platform device (virtio-mmio) and its ACPI slot
	pdev=$(basename "$(readlink -f /sys/class/net/eth0/device/..)")
	echo "E2E hp used $pdev"
	# the host's removal clears the slot: its _STA reads 0 after the bus
	# check. Linux 6.1 keeps a platform device the ACPI scan made (a bus
	# check only detaches ACPI-level drivers), so the guest lets go of it
	# the way a udev rule would: unbinding virtio-mmio, which resets the card
	st=/sys/bus/platform/devices/$pdev/firmware_node/status
	t=0
	while [ "$(cat "$st" 2>/dev/null)" != 0 ] && [ $t -lt 1200 ]; do sleep 0.1; t=$((t + 1)); done
	echo "E2E hp slot status $(cat "$st" 2>/dev/null)"
	echo "$pdev" >/sys/bus/platform/drivers/virtio-mmio/unbind
	t=0
	while [ -e /sys/class/net/eth0 ] && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
	check hp_eth0_gone [ ! -e /sys/class/net/eth0 ]
	echo "E2E hp gone"
	while :; do sleep 1000; done
	;;
halt) sleep 1 && halt -f ;; # let the result line drain first
*) poweroff -f ;;
esac
sleep 30
echo "E2E-FAIL $action did not end the VM"
