#!/bin/bash
# tools/kvm-sandbox/selftest.sh - checks the sandbox harness itself (about 2 minutes).
#
# Boots the sandbox (--force-sandbox) a dozen times: kvm-probe (plain and
# ASan), exit-status propagation, byte-exact output streaming (text that looks
# like kernel messages, all 256 byte values), L1 kernel messages on stderr
# only, quoting, cwd,
# environment, read-only root and --rw, and the harness-failure paths (a
# timeout, a stalled guest, a guest that powers off early, a kernel panic, a
# bad module) that must end in 125 after one retry (two after a stall).
# Prints "N passed, N failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN=$HERE/run.sh
T=$(mktemp -d /tmp/kvm-sandbox-selftest.XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0
failed=0

ok() {
	echo "PASS $1"
	passed=$((passed + 1))
}
bad() {
	echo "FAIL $1: $2"
	failed=$((failed + 1))
}
# expect NAME WANT_RC [WANT_STDOUT_FILE] -- run.sh ARGS...: run, compare
expect() {
	local name=$1 want=$2 wantout="" rc=0
	shift 2
	if [ "$1" != -- ]; then
		wantout=$1
		shift
	fi
	shift
	"$RUN" "$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" != "$want" ]; then
		bad "$name" "exit status $rc, want $want; stderr: $(tail -n 5 "$T/err")"
	elif [ -n "$wantout" ] && ! cmp -s "$wantout" "$T/out"; then
		bad "$name" "stdout differs: $(diff "$wantout" "$T/out" | head -n 10)"
	else
		ok "$name"
	fi
}

gcc -O2 -Wall -o "$T/kvm-probe" "$HERE/kvm-probe.c"
gcc -O1 -g -fsanitize=address,undefined -o "$T/kvm-probe-asan" "$HERE/kvm-probe.c"

# native path: taken only where /dev/kvm works
if [ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null; then
	expect native-probe 0 -- --native-only -- "$T/kvm-probe"
else
	expect native-only-without-kvm 125 -- --native-only -- "$T/kvm-probe"
fi

expect sandbox-probe 0 -- --force-sandbox -- "$T/kvm-probe"
grep -q '^kvm-probe: ok' "$T/out" || bad sandbox-probe-output "no 'kvm-probe: ok' line on stdout"
expect sandbox-probe-asan 0 -- --force-sandbox -- "$T/kvm-probe-asan"
expect exit-status 7 -- --force-sandbox -- sh -c 'exit 7'

# stdout and stderr merged, byte for byte, including a last line without \n;
# an L1 kernel message that comes in the middle of a line goes to stderr only
printf 'line one\n\ttab and  spaces\nerr line\nhalf and half\nno newline at end' >"$T/want"
expect exact-output 0 "$T/want" -- --force-sandbox -- \
	sh -c 'printf "line one\n\ttab and  spaces\n"; echo "err line" >&2; printf "half"
		echo "<3>selftest kernel line" >/dev/kmsg; sleep 0.2; echo " and half"
		printf "no newline at end"'
grep -q 'L1 kernel: .*selftest kernel line' "$T/err" || bad kernel-line "not on stderr"

# output that looks like kernel messages (an L2 guest's console, copied by a
# VMM) is the command's: on stdout, unchanged, not on stderr
printf '[    1.234567] looks like a kernel line\r\n[    2.000001] another\r\nplain\n' >"$T/want"
expect kernel-like-output 0 "$T/want" -- --force-sandbox -- \
	printf '[    1.234567] looks like a kernel line\r\n[    2.000001] another\r\nplain\n'
if grep -q 'looks like a kernel line' "$T/err"; then
	bad kernel-like-output-stderr "the line is on stderr too"
fi

# every byte value passes unchanged (no \n -> \r\n, no echo, no mangling)
perl -e 'print map { chr } 0 .. 255' >"$T/bytes"
cat "$T/bytes" "$T/bytes" >"$T/want"
expect binary-output 0 "$T/want" -- --force-sandbox -- cat "$T/bytes" "$T/bytes"

# a reader that goes away early changes neither the exit status nor the run
set +e
"$RUN" --force-sandbox -- sh -c 'seq 200000; exit 3' 2>"$T/err" | head -n 1 >"$T/out"
st=("${PIPESTATUS[@]}")
set -e
if [ "${st[0]}" = 3 ] && [ "$(cat "$T/out")" = 1 ]; then
	ok reader-goes-away
else
	bad reader-goes-away "exit status ${st[0]}, want 3; stdout '$(cat "$T/out")'"
fi

# quoting, cwd with a space, environment, read-only /, writable --rw
mkdir -p "$T/a dir" "$T/rw"
printf '%s\n' "/x  'y\" \$z|" "$T/a dir" "FOO=a b" "EMBER_SANDBOX=1" ro ok >"$T/want"
cd "$T/a dir"
# shellcheck disable=SC2016 # expanded by the inner bash
EMBER_SELFTEST_VAR='a b' expect args-cwd-env 0 "$T/want" -- --force-sandbox --rw "$T/rw" -- \
	bash -c 'printf "%s\n" "$1" "$PWD" "FOO=$EMBER_SELFTEST_VAR" "EMBER_SANDBOX=$EMBER_SANDBOX"
		touch /ro-test 2>/dev/null && echo rw || echo ro
		echo hello >"$2/file" && echo ok' _ "/x  'y\" \$z|" "$T/rw"
cd /
if [ "$(cat "$T/rw/file" 2>/dev/null)" = hello ]; then ok rw-share; else bad rw-share "no $T/rw/file"; fi

if command -v python3 >/dev/null; then
	expect unix-socket-in-tmpdir 0 -- --force-sandbox -- python3 -c '
import os, socket, tempfile
p = os.path.join(tempfile.mkdtemp(), "s")
s = socket.socket(socket.AF_UNIX); s.bind(p); s.listen(1)
socket.socket(socket.AF_UNIX).connect(p)'
fi
expect extra-module 0 -- --force-sandbox --modules tun -- test -d /sys/module/tun
# shellcheck disable=SC2016 # expanded in the guest
expect smp2 0 -- --force-sandbox --smp 2 -- sh -c '[ "$(nproc)" = 2 ] && "$0"' "$T/kvm-probe"

# harness failures: 125, after one retry
expect timeout 125 -- --force-sandbox --timeout 10 -- sleep 60
grep -q 'retrying the boot (attempt 2 of 2)' "$T/err" || bad timeout-retry "no retry message"
expect guest-powers-off 125 -- --force-sandbox -- sh -c 'echo o >/proc/sysrq-trigger; sleep 10'
grep -q 'harness failure: no exit-status file' "$T/err" || bad guest-powers-off-reason "$(grep -m1 'harness failure' "$T/err")"
expect kernel-panic 125 -- --force-sandbox -- sh -c 'echo c >/proc/sysrq-trigger; sleep 10'
grep -q 'harness failure: L1 kernel panic' "$T/err" || bad kernel-panic-reason "$(grep -m1 'harness failure' "$T/err")"
expect bad-module 125 -- --force-sandbox --modules no_such_module -- true
# a stalled L1 guest, as the watcher sees it: the heartbeat stops (its
# temporary file made a folder, so init.sh's writes fail)
expect stall 125 -- --force-sandbox --stall 10 -- sh -c 'mkdir "$TMPDIR/../heartbeat.tmp"; sleep 60'
grep -q 'harness failure: the L1 guest stalled: no heartbeat' "$T/err" || bad stall-reason "$(grep -m1 'harness failure' "$T/err")"
expect no-command 125 -- --force-sandbox --

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
