#!/bin/bash
# tools/check.sh - Ember's whole test suite (`make check`).
#
# usage: tools/check.sh [--unit-only | --kvm-only]
#
# Builds o/release and o/asan, runs the unit suites natively, runs every KVM
# suite in ONE run of tools/kvm-sandbox/run.sh (natively on hardware KVM,
# else one QEMU TCG boot with nested KVM), then check-format, headers and
# the exported-symbol check (make symbols). Prints one summary line per
# suite and ends with the plain total "N passed, N failed" (", N skipped"
# when some were). Exit status 0 only if
# every suite ran, printed its summary and had no failure, and the harness
# worked. Logs: o/check/<suite>.log.
#   --unit-only   builds, unit suites, check-format, headers, symbols (no /dev/kvm needed)
#   --kvm-only    builds, KVM suites
# Environment: EMBER_CHECK_SUITE_TIMEOUT (s per KVM suite, default 900),
# EMBER_KVM_SANDBOX=auto|native|sandbox (see tools/kvm-sandbox/README.md).
set -euo pipefail

# Suites run natively, in order: "NAME COMMAND" (COMMAND: bash, from the repo root).
NATIVE_SUITES=(
	"unit-release o/release/test-unit"
	"unit-asan o/asan/test-unit"
	# libFuzzer targets (fuzz/), 20 s each: clang builds them (make fuzz)
	"fuzz fuzz/run.sh 20"
)
# Suites run in one sandbox boot, in order, after the kvm-probe smoke test.
# Each must end its output with the runner's "N passed, N failed" line.
SANDBOX_SUITES=(
	"kvm-release o/release/test-kvm"
	"kvm-asan o/asan/test-kvm"
	# end to end: ember run boots Debian's kernel (tests/e2e/run.sh; artifacts in o/e2e)
	"e2e env EMBER_BIN=o/release/ember tests/e2e/run.sh"
)
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
SUITE_TIMEOUT=${EMBER_CHECK_SUITE_TIMEOUT:-900}
SUMMARY_RE='^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$'
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# ------------------------------------------------- inside the sandbox boot
# tools/check.sh --inner OUTDIR: runs the probe and SANDBOX_SUITES, writing
# OUTDIR/NAME.log and OUTDIR/NAME.status; exits 0 if all passed.
if [ "${1:-}" = --inner ]; then
	out=$2
	echo "check: KVM suites on $(uname -r)$([ "${EMBER_SANDBOX:-}" = 1 ] &&
		echo ' (in the KVM sandbox)' || echo ' (native /dev/kvm)')"
	rc=0
	for entry in "kvm-probe $PROBE" "${SANDBOX_SUITES[@]}"; do
		name=${entry%% *}
		cmd=${entry#* }
		echo "=== $name: $cmd"
		s=0
		t0=$SECONDS
		timeout --kill-after=10 "$SUITE_TIMEOUT" bash -c "$cmd" </dev/null 2>&1 |
			tee "$out/$name.log" || s=${PIPESTATUS[0]}
		[ "$s" != 124 ] || echo "check: $name timed out after $SUITE_TIMEOUT s" | tee -a "$out/$name.log"
		echo $((SECONDS - t0)) >"$out/$name.time"
		echo "$s" >"$out/$name.status"
		[ "$s" = 0 ] || rc=1
		if [ "$name" = kvm-probe ] && [ "$s" != 0 ]; then
			echo "check: kvm-probe failed: /dev/kvm does not work; not running the KVM suites"
			break
		fi
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
for m in "${BUILD_MODES[@]}"; do
	phase "build $m"
	if make -j2 MODE="$m" all >"$OUT/build-$m.log" 2>&1; then
		BUILT[$m]=1
		echo "ok"
	else
		BUILT[$m]=0
		tail -n 40 "$OUT/build-$m.log"
		fail_step "build-$m" "make MODE=$m all failed; see $OUT/build-$m.log"
	fi
done
built() { # the suite's binary's mode was built
	local mode
	mode=$(echo "$1" | sed -n 's|.*o/\([a-z]*\)/.*|\1|p')
	[ -z "$mode" ] || [ "${BUILT[$mode]:-0}" = 1 ]
}

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

# ----------------------------- the Debian root filesystem image (e2e rootfs test)
# Built once per machine and cached (~/.cache/ember); a missing mmdebstrap or
# mke2fs fails here, by name, and the rootfs test then fails too (no skip).
if [ "$MODE" != unit ]; then
	phase "rootfs: tools/mkrootfs.sh -o $ROOTFS_DIR/root.img"
	mkdir -p "$ROOTFS_DIR"
	rm -f "$ROOTFS_DIR/root.img"
	t0=$SECONDS
	if tools/mkrootfs.sh -o "$ROOTFS_DIR/root.img" >"$OUT/rootfs.log" 2>&1; then
		echo $((SECONDS - t0)) >"$OUT/rootfs.time"
		result rootfs "ok ($(tail -n 1 "$OUT/rootfs.log"))"
	else
		tail -n 20 "$OUT/rootfs.log"
		fail_step rootfs "tools/mkrootfs.sh failed; see $OUT/rootfs.log"
	fi
fi

# ------------------------------------------ KVM suites: one sandbox boot
if [ "$MODE" != unit ]; then
	phase "KVM suites (one tools/kvm-sandbox/run.sh run): kvm-probe ${SANDBOX_SUITES[*]%% *}"
	n=$((${#SANDBOX_SUITES[@]} + 1))
	hrc=0
	if ! built "$PROBE"; then
		hrc=skip
	else
		tools/kvm-sandbox/run.sh --rw "$OUT" --timeout $((120 + n * (SUITE_TIMEOUT + 10))) \
			"${SANDBOX_OPTS[@]+"${SANDBOX_OPTS[@]}"}" -- tools/check.sh --inner "$OUT" || hrc=$?
	fi
	if [ "$hrc" = skip ]; then
		fail_step "kvm" "not run: the release build failed"
	elif [ "$hrc" = 125 ]; then
		echo "check: kvm-sandbox: harness failure: the KVM suites did not run (see above)"
		fail_step "kvm-sandbox" "harness failure: the KVM suites did not run"
	elif [ "$(cat "$OUT/kvm-probe.status" 2>/dev/null)" != 0 ]; then
		fail_step "kvm-probe" "/dev/kvm does not work (status $(cat "$OUT/kvm-probe.status" 2>/dev/null ||
			echo none)); see $OUT/kvm-probe.log"
	else
		result "kvm-probe" "ok"
		for entry in "${SANDBOX_SUITES[@]}"; do
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

phase "summary"
printf '%s\n' "${SUMMARY[@]}"
if [ "$SKIPPED" -gt 0 ]; then
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
	echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" = 0 ]
