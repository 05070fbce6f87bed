/* vmm/halt.c - the halt detector: a guest whose every vCPU sits in HLT with interrupts off ends the run. */
#include "vm.h"
#include "internal.h"

#include <stdio.h>

/*
 * A vCPU in HLT with RFLAGS.IF clear wakes only for an NMI, SMI or INIT,
 * which only another running vCPU could send it; an AP still waiting for
 * its start-up IPI (UNINITIALIZED) needs one too. When every vCPU is in one
 * of these states and at least one is halted, nothing in the guest can run
 * again (Linux's halt -f: "System halted."): the VM stops with
 * EMBER_STOP_HALTED instead of idling forever.
 *
 * With the in-kernel irqchip KVM handles HLT itself (no exit reaches the
 * VMM), so the states are asked for: a timer on the VM's loop (the I/O
 * thread) looks once a second. It first compares the vCPUs' exit counters
 * (atomic reads, no vCPU disturbed): any exit since the last look means the
 * guest is alive and nothing more is done. Only a guest that made no exit
 * for a whole period is probed, through ehv_runner_call on each vCPU (its
 * MP state and RFLAGS, between two runs); two probes in a row, a period
 * apart and with no exit in between, must agree before the VM is stopped.
 * A guest idling in HLT with interrupts enabled is probed once a second at
 * most (one kick per vCPU) and never stopped. The exit path is untouched.
 */

#define HALT_PERIOD_NS (1000000000ull)
#define HALT_LOOKS     2 /* probes in a row that must find the guest halted */
#define RFLAGS_IF      (1ull << 9)

struct halt_probe {
	enum ehv_mp_state mp;
	uint64_t rflags;
};

/* vCPU thread (ehv_runner_call). */
static int probe(struct ehv_vcpu *vcpu, void *arg)
{
	struct halt_probe *p = arg;
	struct ehv_x86_regs regs;
	int r = ehv_vcpu_get_mp_state(vcpu, &p->mp);
	if (r == 0)
		r = ehv_vcpu_get_regs(vcpu, &regs);
	if (r == 0)
		p->rflags = regs.rflags;
	return r;
}

/* True when no vCPU can run again by itself (see above). */
static bool halted_for_good(struct ember_vm *vm, unsigned *nhalted)
{
	*nhalted = 0;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct halt_probe p;
		if (ehv_runner_call(vm->runner, (int)i, probe, &p) < 0)
			return false; /* stopped or stopping: not this detector's business */
		if (p.mp == EHV_MP_HALTED && !(p.rflags & RFLAGS_IF))
			(*nhalted)++;
		else if (p.mp != EHV_MP_UNINITIALIZED)
			return false;
	}
	return *nhalted > 0;
}

static uint64_t exits_now(struct ember_vm *vm)
{
	uint64_t sum = 0, c[EHV_EXIT_REASON_MAX];
	for (unsigned i = 0; i < vm->ncpus; i++)
		sum += ehv_vcpu_exit_counts(vm->vcpus[i], c);
	return sum;
}

static void on_tick(void *opaque, uint64_t n)
{
	struct ember_vm *vm = opaque;
	struct vmm_halt_watch *h = &vm->halt;
	(void)n;
	if (atomic_load(&vm->state) != EMBER_VM_RUNNING || atomic_load(&vm->stop_reason) >= 0) {
		h->looks = 0;
		h->have_exits = false;
		return;
	}
	uint64_t exits = exits_now(vm);
	unsigned nhalted = 0;
	if (!h->have_exits || exits != h->exits)
		h->looks = 0; /* the guest exited since the last look: alive */
	else if (halted_for_good(vm, &nhalted))
		h->looks++;
	else
		h->looks = 0;
	/* after the probes: their kicks may count as exits */
	h->exits = exits_now(vm);
	h->have_exits = true;
	if (h->looks < HALT_LOOKS)
		return;
	char d[128];
	snprintf(d, sizeof(d),
		 "every vCPU halted with interrupts off (%u halted, %u waiting for a start-up "
		 "IPI)",
		 nhalted, vm->ncpus - nhalted);
	vmm_vm_request_stop(vm, EMBER_STOP_HALTED, -1, 0, d);
}

int vmm_halt_watch_start(struct ember_vm *vm)
{
	vm->halt = (struct vmm_halt_watch){0};
	return ember_loop_add_timer(vm->loop, HALT_PERIOD_NS, HALT_PERIOD_NS, on_tick, vm,
				    &vm->halt.src);
}
