#!/bin/bash
# tools/kvm-sandbox/run.sh - run a command against a real /dev/kvm: natively
# where hardware KVM works, otherwise inside one QEMU (TCG, nested AMD SVM) boot.
#
# usage: tools/kvm-sandbox/run.sh [options] -- CMD [ARGS...]
# See tools/kvm-sandbox/README.md. Exit status: CMD's, or 125 when the
# harness itself failed (after one retry of the boot).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=kvm-sandbox
HARNESS_FAILURE=125

usage() {
	cat <<EOF
usage: $0 [options] -- CMD [ARGS...]

Runs CMD with a working /dev/kvm: natively if /dev/kvm opens read-write and
is hardware KVM (kvm_intel/kvm_amd), otherwise in one L1 guest booted under
QEMU TCG (-cpu max: nested AMD SVM) that sees the host's / read-only,
chrooted, in the same working directory.

options:
  --timeout SECS     kill the run after SECS seconds (default $TIMEOUT)
  --stall SECS       end a boot whose L1 guest stopped (no heartbeat for SECS
                     seconds, default $STALL; 0: never) and retry it
  --mem SIZE         L1 guest RAM, QEMU -m syntax (default $MEM)
  --smp N            L1 guest vCPUs (default $SMP); one host thread runs them all
  --mttcg            with --smp N: a host thread per vCPU (multi-threaded TCG),
                     so N commands in the guest run at once on N host cores
  --modules "M ..."  extra kernel modules to load in the L1 guest
  --rw DIR           share host DIR writable at the same path (repeatable)
  --env NAME[=VAL]   pass NAME (from the caller's environment, or VAL) to CMD
  --native-only      never boot a guest; use any usable /dev/kvm, else fail (125)
  --force-sandbox    boot a guest even when /dev/kvm works natively
  --kernel-root DIR  the L1 kernel from DIR/boot and DIR/lib/modules instead of
                     the host's /boot (a Debian linux-image package unpacked
                     with dpkg -x, e.g. linux-image-6.12 for KVM_PRE_FAULT_MEMORY)
  --cache-dir DIR    cache for the vmlinux, initramfs and logs
                     (default \${XDG_CACHE_HOME:-~/.cache}/ember-sandbox)
  -v, --verbose      show the whole serial log (on stderr) and timings
  -h, --help         this text

exit status: CMD's exit status; 125 if the harness failed (a boot that hung,
stalled or timed out, a kernel panic, no /dev/kvm, no exit status from CMD), after
one retry of the boot (two after a stall).
EOF
}

# ------------------------------------------------------------------ options
TIMEOUT=900
STALL=${EMBER_SANDBOX_STALL:-120}
MEM=1024M
SMP=1
MTTCG=0
EXTRA_MODULES=""
KROOT=${EMBER_SANDBOX_KERNEL_ROOT:-}
RW_DIRS=()
ENV_VARS=()
MODE=${EMBER_KVM_SANDBOX:-auto} # auto | native | sandbox (the options win)
VERBOSE=0
CACHE=${EMBER_SANDBOX_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ember-sandbox}

say() { echo "$PROG: $*" >&2; }
die() {
	say "error: $*"
	exit "$HARNESS_FAILURE"
}
need_arg() { [ "$2" -ge 2 ] || die "option $1 needs an argument (see --help)"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) need_arg "$1" $#; TIMEOUT=$2; shift 2 ;;
	--stall) need_arg "$1" $#; STALL=$2; shift 2 ;;
	--mem) need_arg "$1" $#; MEM=$2; shift 2 ;;
	--smp) need_arg "$1" $#; SMP=$2; shift 2 ;;
	--mttcg) MTTCG=1; shift ;;
	--modules) need_arg "$1" $#; EXTRA_MODULES="$EXTRA_MODULES $2"; shift 2 ;;
	--rw) need_arg "$1" $#; RW_DIRS+=("$2"); shift 2 ;;
	--env) need_arg "$1" $#; ENV_VARS+=("$2"); shift 2 ;;
	--native-only) MODE=native; shift ;;
	--force-sandbox) MODE=sandbox; shift ;;
	--kernel-root) need_arg "$1" $#; KROOT=$2; shift 2 ;;
	--cache-dir) need_arg "$1" $#; CACHE=$2; shift 2 ;;
	-v | --verbose) VERBOSE=1; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	*) usage >&2; die "unknown option '$1' (the command goes after --)" ;;
	esac
done
[ $# -gt 0 ] || { usage >&2; die "no command given"; }
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout wants a positive number of seconds"
[[ "$SMP" =~ ^[1-9][0-9]*$ ]] || die "--smp wants a positive number"
[[ "$STALL" =~ ^(0|[1-9][0-9]*)$ ]] || die "--stall wants a number of seconds (0: never)"
case "$MODE" in auto | native | sandbox) ;; *) die "EMBER_KVM_SANDBOX must be auto, native or sandbox" ;; esac

# ------------------------------------------------------------ native run
kvm_usable() {
	[ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null
}

# Hardware KVM has kvm_intel or kvm_amd loaded. Another provider (the build
# VMs offer kvm_pvm, a software hypervisor that behaves differently) is used
# only when asked for (--native-only, EMBER_KVM_SANDBOX=native).
kvm_hardware() {
	[ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]
}

if [ "$MODE" = auto ] && kvm_usable && ! kvm_hardware; then
	say "/dev/kvm here is not hardware KVM ($(cd /sys/module && echo kvm_*)):" \
		"using the sandbox (EMBER_KVM_SANDBOX=native or --native-only to use it)"
	MODE=sandbox
fi
if [ "$MODE" != sandbox ] && kvm_usable; then
	[ "$VERBOSE" = 0 ] || say "/dev/kvm is usable here: running natively"
	rc=0
	timeout --kill-after=10 "$TIMEOUT" "$@" || rc=$?
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		say "harness failure: the command timed out after $TIMEOUT s (native run)"
		exit "$HARNESS_FAILURE"
	fi
	exit "$rc"
fi
[ "$MODE" != native ] || die "--native-only: no usable /dev/kvm on this machine"

# -------------------------------------------------------- sandbox: set up
for tool in qemu-system-x86_64 modprobe cpio gzip xz perl flock timeout; do
	command -v "$tool" >/dev/null ||
		die "'$tool' is missing; run tools/install-deps.sh (or apt-get install qemu-system-x86 busybox-static cpio kmod xz-utils perl)"
done
BUSYBOX=/bin/busybox
if [ ! -x "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
	die "$BUSYBOX is missing or not static; apt-get install busybox-static"
fi
mkdir -p "$CACHE" || die "cannot create the cache dir $CACHE"
CACHE=$(cd "$CACHE" && pwd)

# The kernel: the newest /boot/vmlinuz-* that has kvm_amd among its modules
# (under --kernel-root's DIR if given: modprobe -d DIR finds its modules).
MODPROBE=(modprobe)
if [ -n "$KROOT" ]; then
	[ -d "$KROOT/boot" ] && [ -d "$KROOT/lib/modules" ] ||
		die "--kernel-root $KROOT: no boot/ and lib/modules/ in it (dpkg -x a linux-image .deb DIR)"
	KROOT=$(cd "$KROOT" && pwd)
	MODPROBE=(modprobe -d "$KROOT")
fi
KVER=""
while read -r k; do
	if "${MODPROBE[@]}" -S "$k" --show-depends kvm_amd >/dev/null 2>&1; then
		KVER=$k
		break
	fi
done < <(find "$KROOT/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V -r)
[ -n "$KVER" ] || die "no $KROOT/boot/vmlinuz-* with a kvm_amd module; apt-get install linux-image-amd64"
BZIMAGE=$KROOT/boot/vmlinuz-$KVER
[ -r "$BZIMAGE" ] || die "cannot read $BZIMAGE (run as root, or make it readable)"

# Everything built goes into the cache, under a lock (concurrent runs share it).
exec 9>"$CACHE/.lock"
flock 9

# Boot the uncompressed vmlinux through its PVH entry (Debian: CONFIG_PVH=y):
# that skips the decompression which costs seconds under TCG. The bzImage's
# payload is one XZ stream starting with FD 37 7A 58 5A 00 (Debian's 6.1) or
# one zstd frame starting with 28 B5 2F FD (Debian's 6.12).
VMLINUX=$CACHE/vmlinux-$KVER-$(stat -c '%s-%Y' "$BZIMAGE")
if [ ! -s "$VMLINUX" ]; then
	say "extracting the vmlinux of $KVER into $CACHE (once)"
	off=$(perl -0777 -ne 'print index($_, "\xfd7zXZ\x00")' "$BZIMAGE")
	unpack=(xz -dc --single-stream)
	if [ "$off" -lt 0 ]; then
		off=$(perl -0777 -ne 'print index($_, "\x28\xb5\x2f\xfd")' "$BZIMAGE")
		unpack=(zstd -qdc)
	fi
	[ "$off" -ge 0 ] || die "no XZ or zstd payload in $BZIMAGE"
	# the decompressor stops after the stream (zstd warns of the trailing
	# bytes); tail may then die of SIGPIPE: check the result.
	tail -c "+$((off + 1))" "$BZIMAGE" | "${unpack[@]}" >"$VMLINUX.tmp" 2>/dev/null || true
	[ "$(head -c 4 "$VMLINUX.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
		die "could not extract an ELF vmlinux from $BZIMAGE"
	mv "$VMLINUX.tmp" "$VMLINUX"
fi

# Modules in load order (dependencies first), as modprobe would load them.
read -r -a extra <<<"$EXTRA_MODULES"
MODULE_NAMES=(kvm_amd virtio_pci 9pnet_virtio 9p "${extra[@]+"${extra[@]}"}")
MODULE_PATHS=()
for m in "${MODULE_NAMES[@]}"; do
	deps=$("${MODPROBE[@]}" -S "$KVER" --show-depends "$m" 2>&1) ||
		die "kernel $KVER has no module '$m': $deps"
	while read -r cmd path _; do
		[ "$cmd" = insmod ] || continue # "builtin NAME": nothing to load
		case " ${MODULE_PATHS[*]} " in *" $path "*) continue ;; esac
		MODULE_PATHS+=("$path")
	done <<<"$deps"
done

# The initramfs is keyed by everything that goes into it.
key=$({
	echo "$KVER"
	printf '%s\n' "${MODULE_PATHS[@]}"
	stat -c '%s %Y' "$BUSYBOX" "${MODULE_PATHS[@]}"
	cat "$HERE/init.sh"
} | sha256sum | cut -c1-16)
INITRD=$CACHE/initramfs-$KVER-$key.cpio.gz
if [ ! -s "$INITRD" ]; then
	say "building the initramfs ($KVER, modules: ${MODULE_NAMES[*]})"
	root=$(mktemp -d "$CACHE/root.XXXXXX")
	mkdir -p "$root"/{bin,dev,proc,sys,modules}
	cp "$BUSYBOX" "$root/bin/busybox"
	install -m 0755 "$HERE/init.sh" "$root/init"
	for path in "${MODULE_PATHS[@]}"; do
		name=$(basename "$path")
		case "$name" in
		*.ko.xz) xz -dc "$path" >"$root/modules/${name%.xz}" ;;
		*.ko.zst) zstd -qdc "$path" >"$root/modules/${name%.zst}" ;;
		*.ko.gz) gzip -dc "$path" >"$root/modules/${name%.gz}" ;;
		*) cp "$path" "$root/modules/$name" ;;
		esac
		echo "${name%.ko*}.ko" >>"$root/modules/order"
	done
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp"
	rm -rf "$root"
	mv "$INITRD.tmp" "$INITRD"
fi
touch "$INITRD" "$VMLINUX"
# Forget builds unused for a week and runs left behind by killed harnesses.
find "$CACHE" -maxdepth 1 \( -name 'initramfs-*' -o -name 'vmlinux-*' \) -mtime +7 -delete
find "$CACHE/runs" -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
exec 9>&-

# ------------------------------------------------------ sandbox: one run
# RUN holds the serial log and the FIFOs (host only) and share/, the folder
# the guest writes CMD's output and exit status into, seen by CMD at the same
# path: HOME and TMPDIR live there.
mkdir -p "$CACHE/runs" "$CACHE/logs"
RUN=$(mktemp -d "$CACHE/runs/run.XXXXXX")
SHARE=$RUN/share
QEMU_PID=""
FILTER_PID=""
RELAY_PID=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	[ -z "$QEMU_PID" ] || kill "$QEMU_PID" 2>/dev/null || true
	[ -z "$FILTER_PID" ] || kill "$FILTER_PID" 2>/dev/null || true
	[ -z "$RELAY_PID" ] || kill "$RELAY_PID" 2>/dev/null || true
	rm -rf "$RUN"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM HUP

CWD=$(pwd -P)
NONCE=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
BEGIN_MARK="@@kvm-sandbox-begin-$NONCE@@"
END_MARK="@@kvm-sandbox-end-$NONCE@@"

# The L1 kernel never halts (idle=poll): under TCG with nested SVM the L1
# guest at times stops for 71 s to 20 min or for good, waiting for a timer
# interrupt that does not come (docs/ARCHITECTURE.md, Known problems); a
# polling idle loop and, in boot(), a serial byte a second keep it going.
# EMBER_SANDBOX_APPEND: more L1 kernel parameters, for such experiments.
# Two serial ports: ttyS0, the L1 console, on QEMU's stdout; ttyS1, the
# command's output, into fd 3 (QEMU opens /dev/fd/3, a FIFO boot() sets up).
# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
QEMU=(qemu-system-x86_64 -M pc,i8042=off -cpu max -m "$MEM" -smp "$SMP"
	-nodefaults -no-user-config -display none -monitor none -no-reboot
	-serial stdio -chardev file,id=cmdout,path=/dev/fd/3 -serial chardev:cmdout
	-kernel "$VMLINUX" -initrd "$INITRD"
	-append "console=ttyS0 panic=-1 quiet i8042.noaux i8042.nokbd i8042.nopnp idle=poll ${EMBER_SANDBOX_APPEND:-}"
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
	-virtfs "local,path=$SHARE,mount_tag=emberrun,security_model=none")
# Multi-threaded TCG hung once in 7 boots when first tried (2026-11-23):
# one host thread for all vCPUs unless --mttcg asks for one per vCPU.
if [ "$SMP" -gt 1 ] && [ "$MTTCG" != 1 ]; then
	# shellcheck disable=SC2054
	QEMU+=(-accel tcg,thread=single)
else
	QEMU+=(-accel tcg)
fi
# EMBER_SANDBOX_GDB=1: QEMU's gdb stub on a socket in the run's folder (its
# path on stderr), to look at a stalled L1 guest: gdb -ex 'target remote PATH'
if [ -n "${EMBER_SANDBOX_GDB:-}" ]; then
	QEMU+=(-gdb "unix:$RUN/gdb.sock,server=on,wait=off")
	say "gdb stub: $RUN/gdb.sock"
fi
rw_list=""
for i in "${!RW_DIRS[@]}"; do
	d=$(cd "${RW_DIRS[$i]}" 2>/dev/null && pwd -P) || die "--rw ${RW_DIRS[$i]}: no such folder"
	[[ "$d" != *$'\n'* && "$d" != *,* ]] || die "--rw $d: the path may not hold a comma or newline"
	QEMU+=(-virtfs "local,path=$d,mount_tag=emberrw$i,security_model=none")
	rw_list+="emberrw$i $d"$'\n'
done
[[ "$SHARE" != *,* ]] || die "the cache path $CACHE may not hold a comma"

# cmd.sh runs inside the chroot under the host's bash, with a clean env.
write_cmd_script() {
	local v name
	{
		echo "# generated by tools/kvm-sandbox/run.sh"
		printf 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
		printf 'export HOME=%q TMPDIR=%q LANG=C.UTF-8 TERM=dumb USER=root\n' \
			"$SHARE/home" "$SHARE/tmp"
		printf 'export EMBER_SANDBOX=1\n'
		# sanitizer settings and EMBER_*/TEST_* variables follow the command
		while read -r name; do
			printf 'export %s=%q\n' "$name" "${!name}"
		done < <(compgen -e | grep -E '^(ASAN_OPTIONS|UBSAN_OPTIONS|LSAN_OPTIONS|EMBER_.*|TEST_.*)$' |
			grep -v -E '^EMBER_SANDBOX')
		for v in "${ENV_VARS[@]+"${ENV_VARS[@]}"}"; do
			if [[ "$v" == *=* ]]; then
				printf 'export %s=%q\n' "${v%%=*}" "${v#*=}"
			else
				printf 'export %s=%q\n' "$v" "${!v-}"
			fi
		done
		printf 'share=%q\n' "$SHARE"
		# shellcheck disable=SC2016 # $share is expanded in the guest
		printf 'cd %q || { echo "cannot cd to %q in the guest" >"$share/harness-error"; exit 1; }\n' \
			"$CWD" "$CWD"
		printf 'cmd=('
		printf '%q ' "$@"
		printf ')\n'
		printf 'begin=%q end=%q\n' "$BEGIN_MARK" "$END_MARK"
		# shellcheck disable=SC2016 # expanded in the guest
		cat <<'EOF'
printf '%s\n' "$begin" >/dev/console
"${cmd[@]}" </dev/null 2>&1 | tee "$share/output" >/dev/ttyS1
rc=${PIPESTATUS[0]}
echo "$rc" >"$share/status.tmp" && mv "$share/status.tmp" "$share/status"
printf '%s\n' "$end" >/dev/console
echo "kvm-sandbox-guest: command exited with status $rc" >/dev/console
EOF
	} >"$SHARE/cmd.sh"
}

# The serial console (ttyS0) goes through this filter: every line into the
# log with a host timestamp; with -v every line to stderr; without, the lines
# between the markers (L1 kernel messages that come while the command runs,
# e.g. KVM's "Unhandled WRMSR" notes) to stderr, prefixed.
# shellcheck disable=SC2016 # perl code
FILTER='
use strict; use warnings; use Time::HiRes qw(time);
$SIG{PIPE} = "IGNORE"; # a reader that went away must not stop the log
my ($log, $begin, $end, $verbose) = @ARGV;
my $t0 = time;
open(my $lf, ">", $log) or die "$log: $!";
$lf->autoflush(1); STDERR->autoflush(1);
my $in = 0;
while (my $line = <STDIN>) {
	printf $lf "[%8.3f] %s", time - $t0, $line;
	(my $l = $line) =~ s/\r//g;
	$l .= "\n" unless $l =~ /\n\z/;
	if (index($line, $begin) >= 0) { $in = 1; next; }
	if (index($line, $end) >= 0) { $in = 0; next; }
	if ($verbose) { print STDERR $l; }
	elsif ($in) { print STDERR "kvm-sandbox: L1 kernel: $l"; }
}
'

# The command's channel (ttyS1) goes to stdout unchanged, as it comes; if
# the reader goes away, the rest is read and dropped so the guest goes on.
# shellcheck disable=SC2016 # perl code
RELAY='
$SIG{PIPE} = "IGNORE";
my ($buf, $ok) = ("", 1);
while (1) {
	my $n = sysread(STDIN, $buf, 65536);
	last unless $n;
	my $off = 0;
	while ($ok && $off < $n) {
		my $w = syswrite(STDOUT, $buf, $n - $off, $off);
		if (!defined $w) { $ok = 0 unless $!{EINTR}; next; }
		$off += $w;
	}
}
'

# watch_heartbeat PID: ends QEMU (PID, its timeout process) when the L1
# guest's heartbeat (init.sh writes $SHARE/heartbeat every 5 s) is older
# than STALL seconds by the host's clock; says why in $RUN/stalled. The
# stall this catches (docs/ARCHITECTURE.md, Known problems) stops the whole
# L1 guest, its timeouts included, for minutes or for good; no command's
# own watchdog would end it.
watch_heartbeat() {
	local m age
	while kill -0 "$1" 2>/dev/null; do
		sleep 5
		m=$(stat -c %Y "$SHARE/heartbeat" 2>/dev/null) || continue
		age=$(($(date +%s) - m))
		if [ "$age" -gt "$STALL" ]; then
			echo "no heartbeat for $age s (L1 uptime $(cat "$SHARE/heartbeat" 2>/dev/null) s at the last)" \
				>"$RUN/stalled"
			say "the L1 guest stalled (no heartbeat for $age s): ending this boot"
			kill "$1" 2>/dev/null
			return
		fi
	done
}

# boot ATTEMPT: one boot; sets REASON (empty on success) and CMD_RC.
boot() {
	local attempt=$1 log=$RUN/serial-$1.log qrc=0
	shift
	rm -rf "$SHARE"
	mkdir -p "$SHARE/home" "$SHARE/tmp"
	printf '%s\n' "$SHARE" >"$SHARE/rundir"
	printf '%s' "$rw_list" >"$SHARE/rw"
	write_cmd_script "$@"
	rm -f "$RUN/serial.fifo" "$RUN/output.fifo" "$RUN/input.fifo"
	mkfifo "$RUN/serial.fifo" "$RUN/output.fifo" "$RUN/input.fifo"
	perl -e "$FILTER" "$log" "$BEGIN_MARK" "$END_MARK" "$VERBOSE" <"$RUN/serial.fifo" &
	FILTER_PID=$!
	perl -e "$RELAY" <"$RUN/output.fifo" &
	RELAY_PID=$!
	local t0=$SECONDS
	# The shell opens both FIFOs for QEMU, so the readers see EOF once it is gone.
	# Its console's input is a FIFO a ticker writes a byte into every
	# second: a serial interrupt a second for the L1 guest. When the L1
	# guest stalls (docs/ARCHITECTURE.md, Known problems) it waits, with
	# interrupts on, for a timer interrupt that does not come; any later
	# interrupt brings the pending one along. (init.sh turns echo off.)
	timeout --kill-after=10 "$TIMEOUT" "${QEMU[@]}" <>"$RUN/input.fifo" >"$RUN/serial.fifo" 3>"$RUN/output.fifo" \
		2>"$RUN/qemu.err" &
	QEMU_PID=$!
	(
		while kill -0 "$QEMU_PID" 2>/dev/null; do
			printf .
			sleep 1
		done
	) >"$RUN/input.fifo" 2>/dev/null &
	local tick_pid=$!
	rm -f "$RUN/stalled"
	local watch_pid=""
	if [ "$STALL" != 0 ]; then
		watch_heartbeat "$QEMU_PID" &
		watch_pid=$!
	fi
	wait "$QEMU_PID" || qrc=$?
	QEMU_PID=""
	[ -z "$watch_pid" ] || { kill "$watch_pid" 2>/dev/null; wait "$watch_pid" 2>/dev/null; } || true
	{ kill "$tick_pid" 2>/dev/null; wait "$tick_pid" 2>/dev/null; } || true
	wait "$FILTER_PID" || true
	FILTER_PID=""
	wait "$RELAY_PID" || true
	RELAY_PID=""
	sed 's/^/[host] qemu: /' "$RUN/qemu.err" >>"$log"
	echo "[host] qemu exit status $qrc after $((SECONDS - t0)) s (attempt $attempt)" >>"$log"
	cp "$log" "$CACHE/logs/last-boot.log.tmp" && mv "$CACHE/logs/last-boot.log.tmp" "$CACHE/logs/last-boot.log"

	REASON=""
	CMD_RC=""
	if [ -s "$SHARE/status" ]; then
		CMD_RC=$(cat "$SHARE/status")
		[[ "$CMD_RC" =~ ^[0-9]+$ ]] || REASON="bad exit-status file: '$CMD_RC'"
		if [ -z "$REASON" ] && [ "$qrc" != 0 ]; then
			say "warning: qemu exited with status $qrc after the command finished"
		fi
	elif [ -s "$RUN/stalled" ]; then
		REASON="the L1 guest stalled: $(cat "$RUN/stalled")"
	elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		if grep -q -F "$BEGIN_MARK" "$log"; then
			REASON="timed out after $TIMEOUT s while the command ran"
		else
			REASON="timed out after $TIMEOUT s before the command started (boot hung)"
		fi
	elif [ -s "$SHARE/harness-error" ]; then
		REASON="in the guest: $(head -n 3 "$SHARE/harness-error" | tr '\n' ' ')"
	elif grep -q 'kvm-sandbox-guest: FATAL:' "$log"; then
		REASON="in the guest: $(grep -m1 'kvm-sandbox-guest: FATAL:' "$log" | sed 's/.*FATAL: //' | tr -d '\r')"
	elif grep -q 'Kernel panic' "$log"; then
		REASON="L1 kernel panic: $(grep -m1 'Kernel panic' "$log" | sed 's/^\[[ 0-9.]*\] //' | tr -d '\r')"
	elif [ "$qrc" != 0 ]; then
		REASON="qemu exited with status $qrc: $(tail -n 1 "$RUN/qemu.err")"
	else
		REASON="no exit-status file from the command (the guest stopped early)"
	fi
	if [ -n "$REASON" ]; then
		local keep
		keep=$CACHE/logs/failed-$(date +%Y%m%d-%H%M%S)-$$-$attempt.log
		cp "$log" "$keep"
		# keep the 10 newest failure logs
		find "$CACHE/logs" -name 'failed-*.log' -printf '%T@ %p\n' | sort -rn | tail -n +11 |
			cut -d' ' -f2- | xargs -r rm -f
		say "harness failure: $REASON"
		say "serial log: $keep; its last lines:"
		grep -v -F -e "$BEGIN_MARK" "$log" | tail -n 15 | sed 's/^/    /' | tr -d '\r' >&2
	elif [ "$VERBOSE" = 1 ]; then
		local kvm_at cmd_at end_at
		kvm_at=$(sed -n 's/^\[ *\([0-9.]*\)\] kvm-sandbox-guest: kvm ready.*/\1/p' "$log" | head -n 1)
		cmd_at=$(grep -F "$BEGIN_MARK" "$log" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p' | head -n 1)
		end_at=$(grep -F "$END_MARK" "$log" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p' | head -n 1)
		say "timings (host clock from qemu start): /dev/kvm ready at ${kvm_at:-?} s," \
			"command started at ${cmd_at:-?} s, ended at ${end_at:-?} s; qemu ran $((SECONDS - t0)) s"
	fi
}

# One retry; a boot whose L1 guest stalled gets one more (the stall is
# TCG's, at random, not the command's).
attempts=2
for ((attempt = 1; attempt <= attempts; attempt++)); do
	boot "$attempt" "$@"
	if [ -z "$REASON" ]; then
		exit "$CMD_RC"
	fi
	[ ! -s "$RUN/stalled" ] || attempts=3
	[ "$attempt" -ge "$attempts" ] || say "retrying the boot (attempt $((attempt + 1)) of $attempts)"
done
say "harness failure: giving up after $attempts boots; exit status $HARNESS_FAILURE"
exit "$HARNESS_FAILURE"
