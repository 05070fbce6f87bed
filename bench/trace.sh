# bench/trace.sh - sourced by the bench scripts: KVM exits counted per run with
# tracefs hist triggers (kvm_exit by exit_reason: on AMD 1024 is a nested page
# fault, 123 an I/O port exit; kvm_userspace_exit by reason), logged with the
# script's own log function on stderr. TRACE=1 turns it on; trace_on before a
# run, trace_off NAME after it.
TR=/sys/kernel/tracing
trace_on() {
	[ "${TRACE:-0}" = 1 ] || return 0
	[ -e $TR/events/kvm ] || mount -t tracefs nodev $TR 2>/dev/null || :
	echo 'hist:keys=exit_reason' >$TR/events/kvm/kvm_exit/trigger
	echo 'hist:keys=reason' >$TR/events/kvm/kvm_userspace_exit/trigger
	THP0=$(thp_faults)
}
trace_off() {
	[ "${TRACE:-0}" = 1 ] || return 0
	local ev
	for ev in kvm_exit:exit_reason kvm_userspace_exit:reason; do
		log "$1: ${ev%%:*}: $(grep -E '^\{|^Totals|Hits:' $TR/events/kvm/${ev%%:*}/hist |
			sed 's/hitcount://; s/  */ /g' | tr '\n' ' ')"
		echo "!hist:keys=${ev#*:}" >$TR/events/kvm/${ev%%:*}/trigger
	done
	log "$1: huge pages faulted in: $(($(thp_faults) - THP0))"
}
# thp_faults: transparent huge pages the kernel handed out on a fault so far
# (each one a 2 MiB page cleared: about 100 ms of the sandbox's L1 under TCG)
thp_faults() { awk '$1 == "thp_fault_alloc" { print $2 }' /proc/vmstat 2>/dev/null || echo 0; }
