#!/bin/bash
# tools/check.sh - Ember's whole test suite (`make check`).
#
# usage: tools/check.sh [--unit-only | --kvm-only]
#
# Builds o/release, starts the KVM suites in the background in two runs of
# tools/kvm-sandbox/run.sh at once (natively on hardware KVM, else two QEMU
# TCG boots with nested KVM, a host core each): boot A the whole KVM suite and
# half of the e2e tests, boot B the other half; meanwhile builds o/asan and
# the e2e rootfs image (the suites that need them wait for them) and runs the
# unit and fuzz suites natively, check-format, headers and the
# exported-symbol check (make symbols), then shows the KVM suites' output. Prints one summary
# line per suite and ends with the plain total "N passed, N failed" (", N
# skipped" when some were). Exit status 0 only if
# every suite ran, printed its summary and had no failure, and the harness
# worked. Logs: o/check/<suite>.log, o/check/sandbox-<boot>.log.
#   --unit-only   builds, unit suites, check-format, headers, symbols (no /dev/kvm needed)
#   --kvm-only    builds, KVM suites
# Environment: EMBER_CHECK_SUITE_TIMEOUT (s per KVM suite, default 1500: the CI budget of .ci/run caps the whole run anyway),
# EMBER_KVM_SANDBOX=auto|native|sandbox (see tools/kvm-sandbox/README.md).
set -euo pipefail

# Suites run natively, in order: "NAME COMMAND" (COMMAND: bash, from the repo root).
NATIVE_SUITES=(
	"unit-release o/release/test-unit"
	"unit-asan o/asan/test-unit"
	# libFuzzer targets (fuzz/), 10 s each: clang builds them (make fuzz)
	"fuzz fuzz/run.sh 10"
)
# Suites run in the sandbox after the kvm-probe smoke test: "BOOT NAME
# COMMAND". Boot A runs the whole KVM suite (release and ASan) and half of the
# e2e tests; boot B, at the same time on the other host core, the other half
# (each boot's TCG runs on one host thread: multi-threaded TCG stalled the
# L1 kernel, soft lockups on both vCPUs, 2026-12-02). In each boot the suites
# run in order; each must end its output with the runner's "N passed, N
# failed" line.
SANDBOX_SUITES=(
	"A kvm-release o/release/test-kvm"
	"A kvm-asan o/asan/test-kvm"
	# end to end: ember run boots Debian's kernel (tests/e2e/run.sh; artifacts
	# in o/e2e), in two shards (every other test)
	"A e2e-1 env E2E_SHARD=1/2 EMBER_BIN=o/release/ember tests/e2e/run.sh"
	"B e2e-2 env E2E_SHARD=2/2 EMBER_BIN=o/release/ember tests/e2e/run.sh"
)
SANDBOX_BOOTS=(A B)
# What a suite waits for: the sandbox boots right after the release build,
# while the host builds the rest (its OUT/NAME.ready says "ok" or why not).
declare -A SANDBOX_NEEDS=([kvm-asan]=asan [e2e-1]=rootfs [e2e-2]=rootfs)
# Extra tools/kvm-sandbox/run.sh options for that boot (e.g. --modules "tun").
# The e2e guests (up to 512M) take their RAM out of the sandbox's.
SANDBOX_OPTS=(--mem 1536M)
# The e2e rootfs test's image: a fresh copy of tools/mkrootfs.sh's cached one,
# in a folder the sandbox shares writable (the host's / is read-only there).
ROOTFS_DIR=o/e2e/rootfs
SANDBOX_OPTS+=(--rw "$ROOTFS_DIR")
BUILD_MODES=(release asan)
PROBE=o/release/kvm-probe

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SUITE_TIMEOUT=${EMBER_CHECK_SUITE_TIMEOUT:-1500}
SUMMARY_RE='^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$'
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# ------------------------------------------------- inside the sandbox boot
# tools/check.sh --inner OUTDIR BOOT: runs the probe and BOOT's SANDBOX_SUITES,
# writing OUTDIR/NAME.log and OUTDIR/NAME.status; exits 0 if all passed.
if [ "${1:-}" = --inner ]; then
	out=$2
	boot=$3
	# a fifo no one writes: a read on it that times out is a sleep without a
	# process (each fork and exec costs 0.1-0.2 s of the sandbox's one CPU)
	snooze_fifo=$(mktemp -u "${TMPDIR:-/tmp}/check-wait.XXXXXX")
	mkfifo "$snooze_fifo"
	echo "check: KVM suites on $(uname -r)$([ "${EMBER_SANDBOX:-}" = 1 ] &&
		echo ' (in the KVM sandbox)' || echo ' (native /dev/kvm)')"
	# run_suite NAME COMMAND: OUT/NAME.log, .time, .status (0: passed)
	run_suite() {
		local name=$1 cmd=$2 need s=0 t0
		# a retried boot (tools/kvm-sandbox/run.sh ends a boot whose L1
		# guest stalled and boots again) goes on where the first stopped:
		# what finished stays, what was under way runs again from its start
		if [ -s "$out/$name.status" ]; then
			s=$(cat "$out/$name.status")
			echo "check: $name: done in an earlier boot (status $s)"
			[ "$s" = 0 ]
			return
		fi
		if [ -e "$out/$name.log" ]; then
			mv "$out/$name.log" "$out/$name.stalled.log"
			echo "check: $name: under way when an earlier boot stalled: again from its start" \
				"(that run's output: $out/$name.stalled.log)"
		fi
		# what the suite needs and the host makes meanwhile (the asan build,
		# the rootfs image): the host writes OUT/NAME.ready ("ok" or why not)
		need=${SANDBOX_NEEDS[$name]:-}
		if [ -n "$need" ]; then
			t0=$SECONDS
			while [ ! -s "$out/$need.ready" ] && [ $((SECONDS - t0)) -lt 1800 ]; do
				read -r -t 1 _ <>"$snooze_fifo" || true
			done
			echo "check: $name: $need $(cat "$out/$need.ready" 2>/dev/null || echo 'never came') after $((SECONDS - t0)) s"
		fi
		echo "=== $name: $cmd"
		t0=$SECONDS
		timeout --kill-after=10 "$SUITE_TIMEOUT" bash -c "$cmd" </dev/null 2>&1 |
			tee "$out/$name.log" || s=${PIPESTATUS[0]}
		[ "$s" != 124 ] || echo "check: $name timed out after $SUITE_TIMEOUT s" | tee -a "$out/$name.log"
		echo $((SECONDS - t0)) >"$out/$name.time"
		echo "$s" >"$out/$name.status"
		[ "$s" = 0 ]
	}
	rc=0
	probe=kvm-probe
	[ "$boot" = "${SANDBOX_BOOTS[0]}" ] || probe=kvm-probe-$boot
	if ! run_suite "$probe" "$PROBE"; then
		echo "check: $probe failed: /dev/kvm does not work; not running the KVM suites"
		exit 1
	fi
	for entry in "${SANDBOX_SUITES[@]}"; do
		[ "${entry%% *}" = "$boot" ] || continue
		entry=${entry#* }
		run_suite "${entry%% *}" "${entry#* }" || rc=1
	done
	exit "$rc"
fi

MODE=all
case "${1:-}" in
"") ;;
--unit-only) MODE=unit ;;
--kvm-only) MODE=kvm ;;
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "check: unknown option '$1' (--unit-only, --kvm-only)" >&2
	exit 2
	;;
esac

START=$SECONDS
OUT=$ROOT/o/check
rm -rf "$OUT"
mkdir -p "$OUT"

PASSED=0
FAILED=0
SKIPPED=0
SUMMARY=()
phase() { printf '\n=== %s (at %d s)\n' "$*" $((SECONDS - START)); }
result() { # NAME TEXT: one summary line (with the suite's time when known)
	local t=""
	[ ! -s "$OUT/$1.time" ] || t=" ($(cat "$OUT/$1.time") s)"
	SUMMARY+=("$(printf '%-14s %s%s' "$1" "$2" "$t")")
}
fail_step() { # NAME WHY: a check that is not a test runner failed
	FAILED=$((FAILED + 1))
	result "$1" "FAILED: $2"
}

# account NAME LOG STATUS: parse a runner's summary line and add it up.
account() {
	local name=$1 log=$2 status=$3 line p f s
	line=$(grep -E "$SUMMARY_RE" "$log" 2>/dev/null | tail -n 1 || true)
	if [ -z "$line" ] && [ "$status" = 124 ]; then
		fail_step "$name" "timed out, no summary line; see $log"
		return
	elif [ -z "$line" ]; then
		fail_step "$name" "no summary line (exit status ${status:-none}); see $log"
		return
	fi
	[[ "$line" =~ $SUMMARY_RE ]]
	p=${BASH_REMATCH[1]}
	f=${BASH_REMATCH[2]}
	s=${BASH_REMATCH[4]:-0}
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	SKIPPED=$((SKIPPED + s))
	if [ "$status" != 0 ] && [ "$f" = 0 ]; then
		# e.g. a leak report at exit, or a crash after the summary
		FAILED=$((FAILED + 1))
		result "$name" "$line, but exit status $status (counted as 1 failure); see $log"
	else
		result "$name" "$line"
	fi
}

# ------------------------------------------------------------------ build
declare -A BUILT
build() { # build MODE: make MODE=MODE all, its result in BUILT[MODE]
	phase "build $1"
	if make -j2 MODE="$1" all >"$OUT/build-$1.log" 2>&1; then
		BUILT[$1]=1
		echo "ok"
	else
		BUILT[$1]=0
		tail -n 40 "$OUT/build-$1.log"
		fail_step "build-$1" "make MODE=$1 all failed; see $OUT/build-$1.log"
	fi
}
built() { # the suite's binary's mode was built
	local mode
	mode=$(echo "$1" | sed -n 's|.*o/\([a-z]*\)/.*|\1|p')
	[ -z "$mode" ] || [ "${BUILT[$mode]:-0}" = 1 ]
}
ready() { # ready NAME WHAT: tell the sandbox's suites that NAME is there ("ok") or not
	echo "$2" >"$OUT/$1.ready.tmp" && mv "$OUT/$1.ready.tmp" "$OUT/$1.ready"
}
build "${BUILD_MODES[0]}"

# ------------------------------- KVM suites: one sandbox boot, in the background
# The sandbox's TCG runs on one host core: it boots as soon as the release
# build is there, and the rest of the builds, the rootfs image, the native
# suites, the format and the symbol checks run meanwhile on the other core
# (a suite that needs what is still being made waits for it: SANDBOX_NEEDS);
# its output (in $OUT/sandbox.log) is shown when they are done.
declare -A SANDBOX_PID
stop_sandbox() { for p in "${SANDBOX_PID[@]}"; do kill -- "$p" 2>/dev/null || true; done; }
trap stop_sandbox EXIT
trap 'stop_sandbox; exit 143' TERM INT
# start_boot BOOT: one tools/kvm-sandbox/run.sh run of BOOT's suites, in the
# background, its output in $OUT/sandbox-BOOT.log
start_boot() {
	local n
	n=$(printf '%s\n' "${SANDBOX_SUITES[@]}" | grep -c "^$1 ")
	tools/kvm-sandbox/run.sh --rw "$OUT" --timeout $((120 + (n + 1) * (SUITE_TIMEOUT + 10))) \
		"${SANDBOX_OPTS[@]+"${SANDBOX_OPTS[@]}"}" -- tools/check.sh --inner "$OUT" "$1" \
		</dev/null >"$OUT/sandbox-$1.log" 2>&1 &
	SANDBOX_PID[$1]=$!
	echo "boot $1 started (pid ${SANDBOX_PID[$1]}, log $OUT/sandbox-$1.log)"
}
if [ "$MODE" != unit ]; then
	suites=("${SANDBOX_SUITES[@]#* }")
	phase "KVM suites (${#SANDBOX_BOOTS[@]} tools/kvm-sandbox/run.sh runs at once, in the background): kvm-probe ${suites[*]%% *}"
	if built "$PROBE"; then
		mkdir -p "$ROOTFS_DIR"
		rm -f "$ROOTFS_DIR/root.img"
		start_boot "${SANDBOX_BOOTS[0]}"
		# the other boots once the first is up (it fills the sandbox's cache
		# on a new machine: its L1 kernel and initramfs)
		t0=$SECONDS
		until grep -q '^check: KVM suites on' "$OUT/sandbox-${SANDBOX_BOOTS[0]}.log" 2>/dev/null ||
			! kill -0 "${SANDBOX_PID[${SANDBOX_BOOTS[0]}]}" 2>/dev/null || [ $((SECONDS - t0)) -gt 300 ]; do
			sleep 1
		done
		for b in "${SANDBOX_BOOTS[@]:1}"; do start_boot "$b"; done
	fi
fi

for m in "${BUILD_MODES[@]:1}"; do
	build "$m"
	if [ "${BUILT[$m]}" = 1 ]; then ready "$m" ok; else ready "$m" "failed to build"; fi
done

# ----------------------------- the Debian root filesystem image (e2e rootfs test)
# Built once per machine and cached (~/.cache/ember); a missing mmdebstrap or
# mke2fs fails here, by name, and the rootfs test then fails too (no skip).
if [ "$MODE" != unit ]; then
	phase "rootfs: tools/mkrootfs.sh -o $ROOTFS_DIR/root.img"
	mkdir -p "$ROOTFS_DIR"
	t0=$SECONDS
	if tools/mkrootfs.sh -o "$ROOTFS_DIR/root.img" >"$OUT/rootfs.log" 2>&1; then
		echo $((SECONDS - t0)) >"$OUT/rootfs.time"
		result rootfs "ok ($(tail -n 1 "$OUT/rootfs.log"))"
		ready rootfs ok
	else
		tail -n 20 "$OUT/rootfs.log"
		fail_step rootfs "tools/mkrootfs.sh failed; see $OUT/rootfs.log"
		ready rootfs "failed: see $OUT/rootfs.log"
	fi
fi

# ------------------------------------------------------- native suites
if [ "$MODE" != kvm ]; then
	for entry in "${NATIVE_SUITES[@]}"; do
		name=${entry%% *}
		cmd=${entry#* }
		phase "$name: $cmd"
		if ! built "$cmd"; then
			fail_step "$name" "not run: its build failed"
			continue
		fi
		s=0
		t0=$SECONDS
		timeout --kill-after=10 900 bash -c "$cmd" </dev/null 2>&1 | tee "$OUT/$name.log" ||
			s=${PIPESTATUS[0]}
		echo $((SECONDS - t0)) >"$OUT/$name.time"
		account "$name" "$OUT/$name.log" "$s"
	done
fi

# ------------------------------------------------------ format, headers
if [ "$MODE" != kvm ]; then
	phase "check-format"
	if make -s check-format >"$OUT/check-format.log" 2>&1; then
		result check-format ok
	else
		head -n 40 "$OUT/check-format.log"
		fail_step check-format "make check-format: see $OUT/check-format.log (make format fixes it)"
	fi
	phase "headers"
	if make -s -j2 headers >"$OUT/headers.log" 2>&1; then
		result headers ok
	else
		head -n 40 "$OUT/headers.log"
		fail_step headers "make headers: see $OUT/headers.log"
	fi
	phase "symbols"
	if make -s -j2 MODE=release symbols >"$OUT/symbols.log" 2>&1 &&
		make -s -j2 MODE=asan symbols >>"$OUT/symbols.log" 2>&1; then
		result symbols ok
	else
		head -n 40 "$OUT/symbols.log"
		fail_step symbols "make symbols: libember exports private symbols; see $OUT/symbols.log"
	fi
fi

# ------------------------------------------ KVM suites: the sandbox boot's results
if [ "$MODE" != unit ]; then
	phase "KVM suites: the sandbox's output"
	if [ ${#SANDBOX_PID[@]} = 0 ]; then
		fail_step "kvm" "not run: the release build failed"
	else
		# every boot's output as it comes (tail names the file at each switch)
		logs=()
		for b in "${SANDBOX_BOOTS[@]}"; do logs+=("$OUT/sandbox-$b.log"); done
		tail -n +1 -f "${logs[@]}" &
		tailpid=$!
		declare -A HRC
		for b in "${SANDBOX_BOOTS[@]}"; do
			HRC[$b]=0
			wait "${SANDBOX_PID[$b]}" || HRC[$b]=$?
		done
		SANDBOX_PID=()
		sleep 1
		kill "$tailpid" 2>/dev/null || true
		wait "$tailpid" 2>/dev/null || true
		echo
		for b in "${SANDBOX_BOOTS[@]}"; do
			probe=kvm-probe
			[ "$b" = "${SANDBOX_BOOTS[0]}" ] || probe=kvm-probe-$b
			if [ "${HRC[$b]}" = 125 ]; then
				echo "check: kvm-sandbox: harness failure in boot $b: its suites did not run (see $OUT/sandbox-$b.log)"
				fail_step "kvm-sandbox-$b" "harness failure: boot $b's suites did not run"
			elif [ "$(cat "$OUT/$probe.status" 2>/dev/null)" != 0 ]; then
				fail_step "$probe" "/dev/kvm does not work (status $(cat "$OUT/$probe.status" 2>/dev/null ||
					echo none)); see $OUT/$probe.log"
			else
				result "$probe" "ok"
			fi
			# a stalled L1 guest is the sandbox's (TCG's), not a test's:
			# its boot was retried; said here so that it is seen
			n=$(grep -c 'the L1 guest stalled (no heartbeat' "$OUT/sandbox-$b.log" || true)
			[ "$n" = 0 ] || result "kvm-sandbox-$b" "the L1 guest stalled $n time(s) (no heartbeat); the boot was retried and went on where it stopped (see $OUT/sandbox-$b.log)"
		done
		for entry in "${SANDBOX_SUITES[@]#* }"; do
			name=${entry%% *}
			cmd=${entry#* }
			if [ ! -s "$OUT/$name.status" ]; then
				fail_step "$name" "did not run or did not finish"
			elif ! built "$cmd" && [ "$(cat "$OUT/$name.status")" != 0 ]; then
				fail_step "$name" "not run: its build failed"
			else
				account "$name" "$OUT/$name.log" "$(cat "$OUT/$name.status")"
			fi
		done
	fi
fi

phase "summary"
printf '%s\n' "${SUMMARY[@]}"
if [ "$SKIPPED" -gt 0 ]; then
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
	echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" = 0 ]
