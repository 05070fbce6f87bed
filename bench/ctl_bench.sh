#!/bin/bash
# bench/ctl_bench.sh - the control socket's latencies on a real guest (run on /dev/kvm, e.g.
# tools/kvm-sandbox/run.sh -- bench/ctl_bench.sh): boots the e2e guest idle with --socket,
# runs o/MODE/ctl-bench against it, stops it with `ember stop` (status 34 expected).
set -uo pipefail
cd "$(dirname "$0")/.."
O=${O:-o/release}
T=$(mktemp -d "${TMPDIR:-/tmp}/ember-ctl-bench.XXXXXX")
sock=$T/ctl.sock
"$O/ember" run -k o/e2e/vmlinux -i o/e2e/initramfs.cpio -c "${CPUS:-2}" -m 256M --socket "$sock" \
	--cmdline "console=ttyS0 panic=-1 pci=noearly quiet e2e.action=hang" </dev/null >"$T/log" 2>&1 &
pid=$!
for _ in $(seq 600); do
	grep -q '^E2E result' "$T/log" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.2
done
"$O/ctl-bench" "$sock" "${N:-2000}"
s=$?
"$O/ember" stop "$sock"
wait "$pid"
st=$?
echo "ember run exit status $st (34: stopped by request)"
rm -rf "$T"
[ "$s" = 0 ] && [ "$st" = 34 ]
