/* vmm/vm.c - the VM's life: build it from a configuration, run its vCPUs, serve the console, stop it. */
#include "vm.h"

#include "../lib/base/deadline.h"
#include "internal.h"
#include "virtio.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------ stopping */

static bool request_reset(struct ember_vm *vm, const char *why);

void vmm_vm_request_stop(struct ember_vm *vm, enum ember_stop_reason reason, int vcpu, int error,
			 const char *detail)
{
	if (reason == EMBER_STOP_REBOOT && vm->cfg.reboot_restart) {
		(void)request_reset(vm, detail); /* --reboot restart: the machine resets */
		return;
	}
	int expected = -1;
	if (atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)reason)) {
		atomic_store(&vm->stop_vcpu, vcpu);
		vm->stop_error = error;
		if (detail) {
			size_t n = strlen(detail);
			if (n >= sizeof(vm->stop_detail))
				n = sizeof(vm->stop_detail) - 1;
			memcpy(vm->stop_detail, detail, n);
			vm->stop_detail[n] = 0;
		}
	}
	ember_loop_wake(vm->stop_src);
}

void vmm_vm_wake(struct ember_vm *vm)
{
	ember_loop_wake(vm->kick_src);
}

void ember_vm_request_stop(struct ember_vm *vm)
{
	if (vm)
		vmm_vm_request_stop(vm, EMBER_STOP_REQUESTED, -1, 0, NULL);
}

int ember_vm_console_resize(struct ember_vm *vm, unsigned cols, unsigned rows)
{
	if (!vm || !cols || !rows || cols > 0xffff || rows > 0xffff)
		return -EINVAL;
	__atomic_store_n(&vm->console_size, cols << 16 | rows, __ATOMIC_SEQ_CST);
	ember_loop_wake(vm->kick_src); /* on_kick passes it on */
	return 0;
}

size_t vmm_vm_console_write(struct ember_vm *vm, const uint8_t *buf, size_t len)
{
	bool was_empty = false;
	size_t n = vmm_conout_push(&vm->out, buf, len, &was_empty);
	if (was_empty && n && !vm->out.dead)
		ember_loop_wake(vm->kick_src); /* the I/O thread writes it out */
	return n;
}

bool vmm_vm_console_full(struct ember_vm *vm)
{
	return vmm_conout_full(&vm->out);
}

double vmm_vm_ms(const struct ember_vm *vm)
{
	return (double)(vmm_now_ns() - vm->start_ns) / 1e6;
}

/* ------------------------------------------------------------ exit handlers */

static int pio_access(void *opaque, struct ehv_io_access *a)
{
	struct ember_vm *vm = opaque;
	uint8_t data[8];
	for (unsigned i = 0; i < 8; i++)
		data[i] = (uint8_t)(a->value >> (8 * i));
	bus_access(vm->pio, a->addr, data, a->size, a->write, a->vcpu_id);
	if (!a->write) {
		uint64_t v = 0;
		for (unsigned i = 0; i < a->size && i < 8; i++)
			v |= (uint64_t)data[i] << (8 * i);
		a->value = v;
	}
	return 0; /* unclaimed ports read all-ones: a guest's probe, not an error */
}

static int mmio_access(void *opaque, struct ehv_io_access *a)
{
	struct ember_vm *vm = opaque;
	uint8_t data[8];
	for (unsigned i = 0; i < 8; i++)
		data[i] = (uint8_t)(a->value >> (8 * i));
	bus_access(vm->mmio, a->addr, data, a->size, a->write, a->vcpu_id);
	if (!a->write) {
		uint64_t v = 0;
		for (unsigned i = 0; i < a->size && i < 8; i++)
			v |= (uint64_t)data[i] << (8 * i);
		a->value = v;
	}
	return 0;
}

static int on_io(struct ehv_vcpu *vcpu, const struct ehv_exit *exit, void *opaque)
{
	(void)exit;
	ehv_vcpu_handle_io(vcpu, pio_access, opaque);
	return EHV_ACTION_CONTINUE;
}

static int on_mmio(struct ehv_vcpu *vcpu, const struct ehv_exit *exit, void *opaque)
{
	(void)exit;
	ehv_vcpu_handle_mmio(vcpu, mmio_access, opaque);
	return EHV_ACTION_CONTINUE;
}

/* vCPU thread, not in run: keep this vCPU's registers for the crash report. */
static int capture_regs(struct ehv_vcpu *vcpu, void *arg)
{
	struct ember_vm *vm = arg;
	uint32_t id = ehv_vcpu_id(vcpu);
	if (id >= vm->ncpus)
		return -EINVAL;
	struct vmm_vcpu_dump *d = &vm->dumps[id];
	if (ehv_vcpu_get_regs(vcpu, &d->regs) == 0 && ehv_vcpu_get_sregs(vcpu, &d->sregs) == 0)
		d->valid = true;
	return 0;
}

static int stop_here(struct ehv_vcpu *vcpu, struct ember_vm *vm, enum ember_stop_reason reason,
		     int error, const char *detail)
{
	if (reason == EMBER_STOP_CRASH || reason == EMBER_STOP_ERROR)
		capture_regs(vcpu, vm);
	vmm_vm_request_stop(vm, reason, (int)ehv_vcpu_id(vcpu), error, detail);
	return EHV_ACTION_STOP;
}

static int on_shutdown(struct ehv_vcpu *vcpu, const struct ehv_exit *exit, void *opaque)
{
	(void)exit;
	return stop_here(vcpu, opaque, EMBER_STOP_CRASH, 0,
			 "triple fault: the vCPU shut down (KVM_EXIT_SHUTDOWN)");
}

static int on_system_down(struct ehv_vcpu *vcpu, const struct ehv_exit *exit, void *opaque)
{
	if (exit->u.system_down.kind == EHV_SYSTEM_DOWN_POWEROFF)
		return stop_here(vcpu, opaque, EMBER_STOP_POWEROFF, 0, "system event: power off");
	return stop_here(vcpu, opaque, EMBER_STOP_CRASH, 0,
			 exit->u.system_down.kind == EHV_SYSTEM_DOWN_CRASH
			     ? "system event: the guest reported a crash"
			     : "system event: the platform terminated the guest");
}

static int on_system_reset(struct ehv_vcpu *vcpu, const struct ehv_exit *exit, void *opaque)
{
	struct ember_vm *vm = opaque;
	(void)exit;
	if (vm->cfg.reboot_restart) { /* this vCPU waits, paused, for the reset */
		(void)request_reset(vm, "system event: reset");
		return EHV_ACTION_PAUSE;
	}
	return stop_here(vcpu, opaque, EMBER_STOP_REBOOT, 0, "system event: reset");
}

static int on_fail_entry(struct ehv_vcpu *vcpu, const struct ehv_exit *exit, void *opaque)
{
	char d[128];
	snprintf(d, sizeof(d), "the CPU refused to enter the guest (hardware reason %#" PRIx64 ")",
		 exit->u.fail_entry.hardware_reason);
	return stop_here(vcpu, opaque, EMBER_STOP_CRASH, 0, d);
}

static int on_internal_error(struct ehv_vcpu *vcpu, const struct ehv_exit *exit, void *opaque)
{
	char d[128];
	snprintf(d, sizeof(d), "KVM internal error, suberror %u", exit->u.internal_error.suberror);
	return stop_here(vcpu, opaque, EMBER_STOP_CRASH, 0, d);
}

static int on_unexpected(struct ehv_vcpu *vcpu, const struct ehv_exit *exit, void *opaque)
{
	char d[128];
	snprintf(d, sizeof(d), "unexpected exit %s (raw reason %u)",
		 ehv_exit_reason_name(exit->reason), exit->raw_reason);
	return stop_here(vcpu, opaque, EMBER_STOP_ERROR, -ENOSYS, d);
}

/* vCPU thread, once stopped: the I/O thread finds out why (check_vcpus). */
static void on_vcpu_stop(void *opaque, int idx)
{
	struct ember_vm *vm = opaque;
	(void)idx;
	ember_loop_wake(vm->stop_src);
}

/* ------------------------------------------------------------ reset
 *
 * A machine reset in place (--reboot restart, ember_vm_reset): the I/O
 * thread pauses the vCPUs, drains and resets every device, puts the
 * in-kernel interrupt controllers and PIT and every vCPU back to what they
 * were before the first run (boot_state, saved by create), discards guest
 * RAM (it reads as zeros) and loads the kernel, initrd, boot parameters
 * and ACPI tables again (vmm_board_load), then lets the vCPUs run. The
 * VM's state stays RUNNING (or PAUSED); host resources stay open.
 */

/* MSRs a reset leaves alone: the time-stamp counter keeps counting. */
static bool msr_kept(uint32_t index)
{
	return index == 0x10 /* IA32_TSC */ || index == 0x3b /* IA32_TSC_ADJUST */;
}

struct vmm_vcpu_boot {
	struct ehv_x86_regs regs;
	struct ehv_x86_sregs sregs;
	struct ehv_lapic_state lapic;
	enum ehv_mp_state mp;
	uint64_t xcr0;	      /* 0: the hypervisor has none to give (no XSAVE) */
	struct ehv_msr *msrs; /* nmsrs: the ones the hypervisor let us read */
	unsigned nmsrs;
};

struct vmm_boot_state {
	struct ehv_state_blob chip[EHV_IRQCHIP_MAX];
	struct ehv_state_blob pit;
	uint32_t *msr_index; /* the hypervisor's saveable MSRs, minus msr_kept */
	unsigned nmsr_index;
	struct vmm_vcpu_boot *vcpu; /* ncpus */
};

static void boot_state_free(struct ember_vm *vm)
{
	struct vmm_boot_state *bs = vm->boot_state;
	if (!bs)
		return;
	for (unsigned i = 0; bs->vcpu && i < vm->ncpus; i++)
		free(bs->vcpu[i].msrs);
	free(bs->vcpu);
	free(bs->msr_index);
	free(bs);
	vm->boot_state = NULL;
}

/* Reads (set false) or writes (set true) msrs[0..n-1] in chunks, skipping
 * the ones the hypervisor refuses; a read keeps only those read (compacted
 * in place). Returns how many were done, or a negative errno. */
static int msrs_transfer(struct ehv_vcpu *vcpu, struct ehv_msr *msrs, unsigned n, bool set)
{
	unsigned done = 0, i = 0;
	while (i < n) {
		size_t chunk = n - i < EHV_MSRS_MAX ? n - i : EHV_MSRS_MAX;
		int r = set ? ehv_vcpu_set_msrs(vcpu, msrs + i, chunk)
			    : ehv_vcpu_get_msrs(vcpu, msrs + i, chunk);
		if (r < 0)
			return r;
		if (!set)
			memmove(msrs + done, msrs + i, (size_t)r * sizeof(*msrs));
		done += (unsigned)r;
		i += (unsigned)r + ((size_t)r < chunk); /* past the refused one */
	}
	return (int)done;
}

/* vCPU thread, not in run (or the creating thread before the runner). */
static int save_vcpu(struct ehv_vcpu *vcpu, void *arg)
{
	struct ember_vm *vm = arg;
	struct vmm_boot_state *bs = vm->boot_state;
	uint32_t id = ehv_vcpu_id(vcpu);
	if (id >= vm->ncpus)
		return -EINVAL;
	struct vmm_vcpu_boot *vb = &bs->vcpu[id];
	int r = ehv_vcpu_get_regs(vcpu, &vb->regs);
	if (r == 0)
		r = ehv_vcpu_get_sregs(vcpu, &vb->sregs);
	if (r == 0)
		r = ehv_vcpu_get_lapic(vcpu, &vb->lapic);
	if (r == 0)
		r = ehv_vcpu_get_mp_state(vcpu, &vb->mp);
	if (r < 0)
		return r;
	if (ehv_vcpu_get_xcr0(vcpu, &vb->xcr0) < 0)
		vb->xcr0 = 0;
	vb->msrs = calloc(bs->nmsr_index ? bs->nmsr_index : 1, sizeof(vb->msrs[0]));
	if (!vb->msrs)
		return -ENOMEM;
	for (unsigned k = 0; k < bs->nmsr_index; k++)
		vb->msrs[k].index = bs->msr_index[k];
	r = msrs_transfer(vcpu, vb->msrs, bs->nmsr_index, false);
	if (r < 0)
		return r;
	vb->nmsrs = (unsigned)r;
	return 0;
}

/* Creating thread, after vmm_board_load and before the runner: what a
 * reset goes back to. */
static int save_boot_state(struct ember_vm *vm, struct ember_error *err)
{
	struct vmm_boot_state *bs = calloc(1, sizeof(*bs));
	if (!bs || !(bs->vcpu = calloc(vm->ncpus, sizeof(bs->vcpu[0])))) {
		free(bs);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	vm->boot_state = bs;
	int r = 0;
	for (int c = 0; r == 0 && c < EHV_IRQCHIP_MAX; c++)
		r = ehv_vm_get_irqchip(vm->hv, (enum ehv_irqchip_id)c, &bs->chip[c]);
	if (r == 0)
		r = ehv_vm_get_pit(vm->hv, &bs->pit);
	if (r < 0)
		return vmm_errf(err, r, "cannot read the interrupt controllers' boot state: %s",
				strerror(-r));
	int n = ehv_hypervisor_msr_index_list(vm->hyp, NULL, 0);
	if (n > 0) {
		bs->msr_index = calloc((size_t)n, sizeof(bs->msr_index[0]));
		if (!bs->msr_index)
			return vmm_errf(err, -ENOMEM, "out of memory");
		n = ehv_hypervisor_msr_index_list(vm->hyp, bs->msr_index, (size_t)n);
	}
	if (n < 0)
		return vmm_errf(err, n, "cannot list the saveable MSRs: %s", strerror(-n));
	for (int k = 0; k < n; k++)
		if (!msr_kept(bs->msr_index[k]))
			bs->msr_index[bs->nmsr_index++] = bs->msr_index[k];
	for (unsigned i = 0; i < vm->ncpus; i++) {
		r = save_vcpu(vm->vcpus[i], vm);
		if (r < 0)
			return vmm_errf(err, r, "vCPU %u: cannot read its boot state: %s", i,
					strerror(-r));
	}
	return 0;
}

/* vCPU thread, paused (half-done I/O completed): back to its boot state.
 * The MSRs first (EFER and the APIC base follow from the sregs), the LAPIC
 * after the sregs (its register page in the APIC mode they set). */
static int restore_vcpu(struct ehv_vcpu *vcpu, void *arg)
{
	struct ember_vm *vm = arg;
	uint32_t id = ehv_vcpu_id(vcpu);
	if (id >= vm->ncpus)
		return -EINVAL;
	const struct vmm_vcpu_boot *vb = &vm->boot_state->vcpu[id];
	int r = msrs_transfer(vcpu, vb->msrs, vb->nmsrs, true);
	if (r >= 0 && (unsigned)r != vb->nmsrs)
		vmm_logf(&vm->cfg, EMBER_LOG_DEBUG, "reset: vCPU %u: %u of %u MSRs refused", id,
			 vb->nmsrs - (unsigned)r, vb->nmsrs);
	if (r >= 0)
		r = ehv_vcpu_set_sregs(vcpu, &vb->sregs);
	if (r == 0)
		r = ehv_vcpu_set_lapic(vcpu, &vb->lapic);
	if (r == 0)
		r = ehv_vcpu_set_regs(vcpu, &vb->regs);
	if (r == 0 && vb->xcr0)
		r = ehv_vcpu_set_xcr0(vcpu, vb->xcr0);
	if (r == 0)
		r = ehv_vcpu_set_mp_state(vcpu, vb->mp);
	if (r == 0)
		vm->dumps[id].valid = false;
	return r;
}

/* Any thread: a reset is wanted; false when the VM is stopping. */
static bool request_reset(struct ember_vm *vm, const char *why)
{
	if (atomic_load(&vm->stop_reason) >= 0)
		return false;
	bool expected = false;
	if (atomic_compare_exchange_strong(&vm->reset_pending, &expected, true) && why)
		vmm_logf(&vm->cfg, EMBER_LOG_INFO, "guest reboot (%s): the machine resets", why);
	ember_loop_wake(vm->stop_src);
	return true;
}

int ember_vm_reset(struct ember_vm *vm)
{
	if (!vm)
		return -EINVAL;
	int st = atomic_load(&vm->state);
	if (st == EMBER_VM_CREATED)
		return -EINVAL;
	if (st == EMBER_VM_STOPPED || !request_reset(vm, NULL))
		return -ESRCH;
	return 0;
}

/* Guest RAM reads as zeros again: its pages go back to the host where the
 * backing allows, else they are cleared. */
static void discard_ram(struct ember_vm *vm)
{
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct vmm_mem_region *reg = &vm->mem.regions[i];
		if (vmm_mem_discard(&vm->mem, reg->gpa, reg->size) < 0)
			(void)vmm_mem_zero(&vm->mem, reg->gpa, reg->size);
	}
}

/* The chips and vCPUs to their boot state, RAM and the boot files again;
 * vCPUs paused, devices reset. 0 or a negative errno with *err filled. */
static int reset_machine(struct ember_vm *vm, struct ember_error *err)
{
	struct vmm_boot_state *bs = vm->boot_state;
	int r = 0;
	for (int c = 0; r == 0 && c < EHV_IRQCHIP_MAX; c++)
		r = ehv_vm_set_irqchip(vm->hv, (enum ehv_irqchip_id)c, &bs->chip[c]);
	if (r == 0)
		r = ehv_vm_set_pit(vm->hv, &bs->pit);
	if (r < 0)
		return vmm_errf(err, r, "reset: cannot reset the interrupt controllers: %s",
				strerror(-r));
	for (unsigned i = 0; i < vm->ncpus; i++) {
		r = ehv_runner_call(vm->runner, (int)i, restore_vcpu, vm);
		if (r < 0)
			return vmm_errf(err, r, "reset: vCPU %u: cannot restore its boot state: %s",
					i, strerror(-r));
	}
	discard_ram(vm);
	vm->halt.looks = 0; /* the halt detector starts over */
	vm->halt.have_exits = false;
	return vmm_board_load(vm, err);
}

static void check_vcpus(struct ember_vm *vm);

/* I/O thread: a reset was requested and the VM is not stopping. */
static void do_reset(struct ember_vm *vm)
{
	uint64_t t0 = vmm_now_ns();
	pthread_mutex_lock(&vm->life_lock);
	int r = ehv_runner_pause(vm->runner, EHV_ALL_VCPUS);
	if (r < 0) { /* a vCPU stopped: the VM stops (check_vcpus) */
		pthread_mutex_unlock(&vm->life_lock);
		return;
	}
	/* every request so far is this reset's: the old guest runs no more */
	atomic_store(&vm->reset_pending, false);
	bool user_paused = atomic_load(&vm->state) == EMBER_VM_PAUSED;
	pthread_mutex_lock(&vm->dev_lock);
	vm->devs_paused = true;
	vmm_board_devices_quiesce(vm); /* in-flight disk I/O completes first */
	vmm_board_devices_reset(vm);
	pthread_mutex_unlock(&vm->dev_lock);
	struct ember_error err = {0};
	r = reset_machine(vm, &err);
	if (r < 0) {
		pthread_mutex_unlock(&vm->life_lock);
		vmm_vm_request_stop(vm, EMBER_STOP_ERROR, -1, r, err.msg);
		return;
	}
	unsigned n = atomic_fetch_add(&vm->resets, 1) + 1;
	if (!user_paused) {
		pthread_mutex_lock(&vm->dev_lock);
		vm->devs_paused = false;
		pthread_mutex_unlock(&vm->dev_lock);
		if (!atomic_load(&vm->vcpus_paused)) /* (ember_vm_resume_vcpus lets them go) */
			r = ehv_runner_resume(vm->runner, EHV_ALL_VCPUS);
	}
	pthread_mutex_unlock(&vm->life_lock);
	ember_loop_wake(vm->kick_src); /* the RTC re-timed, console input goes on */
	vmm_logf(&vm->cfg, EMBER_LOG_INFO, "machine reset %u done in %.1f ms: booting again", n,
		 (double)(vmm_now_ns() - t0) / 1e6);
	struct ember_vm_event pe = {.kind = EMBER_VM_EVENT_POWER, .power = "reset"};
	vmm_vm_emit_event(vm, &pe);
	if (r < 0)
		check_vcpus(vm);
}

/* vCPU thread, first thing: its seccomp filter (the runner's hook). */
static int on_vcpu_thread_start(void *opaque, int idx)
{
	struct ember_vm *vm = opaque;
	(void)idx;
	return vmm_seccomp_enter_mode(EMBER_THREAD_VCPU, vm->cfg.seccomp);
}

/* ------------------------------------------------------------ create */

static int create(struct ember_vm *vm, struct ember_error *err)
{
	struct ember_config *cfg = &vm->cfg;
	int r;
	uint64_t hole_start, hole_end;
	vmm_board_memory_hole(&hole_start, &hole_end);
	r = vmm_mem_create(&vm->mem, cfg->mem_size, hole_start, hole_end, cfg->mem_backing,
			   cfg->hugepages, err);
	if (r < 0)
		return r;
	if (vm->restoring && vm->restore_mem_fd >= 0) { /* a snapshot's memory, copy-on-write */
		r = vmm_mem_map_file(&vm->mem, vm->restore_mem_fd, err);
		if (r < 0)
			return r;
	}

	vmm_logf(cfg, EMBER_LOG_DEBUG, "guest memory mapped at %.1f ms (guest RAM at host %p-%p)",
		 vmm_vm_ms(vm), (void *)vm->mem.host, (void *)(vm->mem.host + vm->mem.size));
	if (!vm->hyp) { /* the one open of /dev/kvm for this VM */
		r = ehv_hypervisor_open(NULL, &vm->hyp);
		if (r < 0)
			return vmm_errf(err, r, "cannot open /dev/kvm: %s%s", strerror(-r),
					r == -ENOENT ? " (no KVM on this host: is the kvm_intel or "
						       "kvm_amd module loaded?)"
						     : "");
		vm->own_hyp = true;
	}
	r = vm->hv ? 0 : ehv_vm_create(vm->hyp, &vm->hv); /* a restore's may be made */
	if (r < 0)
		return vmm_errf(err, r, "cannot create the VM: %s", strerror(-r));
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct vmm_mem_region *reg = &vm->mem.regions[i];
		r = ehv_vm_set_memory(vm->hv, i, reg->gpa, reg->size, vm->mem.host + reg->offset,
				      0);
		if (r < 0)
			return vmm_errf(err, r, "cannot map guest memory at %#" PRIx64 ": %s",
					reg->gpa, strerror(-r));
	}
	r = bus_create("pio", BUS_PIO_LAST, &vm->pio);
	if (r == 0)
		r = bus_create("mmio", BUS_MMIO_LAST, &vm->mmio);
	if (r < 0)
		return vmm_errf(err, r, "cannot create the buses");
	vmm_logf(cfg, EMBER_LOG_DEBUG, "KVM VM created at %.1f ms", vmm_vm_ms(vm));
	r = vmm_board_create(vm, err);
	if (r < 0)
		return r;
	vmm_logf(cfg, EMBER_LOG_DEBUG, "board created at %.1f ms", vmm_vm_ms(vm));

	vm->vcpus = calloc(vm->ncpus, sizeof(vm->vcpus[0]));
	vm->dumps = calloc(vm->ncpus, sizeof(vm->dumps[0]));
	if (!vm->vcpus || !vm->dumps)
		return vmm_errf(err, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < vm->ncpus; i++) {
		r = ehv_vcpu_create(vm->hv, i, &vm->vcpus[i]);
		if (r < 0)
			return vmm_errf(err, r, "cannot create vCPU %u: %s", i, strerror(-r));
		r = vmm_board_setup_vcpu(vm, i, err);
		if (r < 0)
			return r;
	}
	vmm_logf(cfg, EMBER_LOG_DEBUG, "vCPUs created at %.1f ms", vmm_vm_ms(vm));
	/* a restored guest's memory holds its kernel and tables already */
	r = vm->restoring ? 0 : vmm_board_load(vm, err);
	if (r == 0)
		r = save_boot_state(vm, err); /* what a reset goes back to */
	if (r < 0)
		return r;

	struct ehv_runner_config rc = {
	    .vcpus = vm->vcpus,
	    .nr_vcpus = vm->ncpus,
	    .default_handler = on_unexpected,
	    .opaque = vm,
	};
	rc.handlers[EHV_EXIT_IO_READ] = on_io;
	rc.handlers[EHV_EXIT_IO_WRITE] = on_io;
	rc.handlers[EHV_EXIT_MMIO_READ] = on_mmio;
	rc.handlers[EHV_EXIT_MMIO_WRITE] = on_mmio;
	rc.handlers[EHV_EXIT_SHUTDOWN] = on_shutdown;
	rc.handlers[EHV_EXIT_SYSTEM_DOWN] = on_system_down;
	rc.handlers[EHV_EXIT_SYSTEM_RESET] = on_system_reset;
	rc.handlers[EHV_EXIT_FAIL_ENTRY] = on_fail_entry;
	rc.handlers[EHV_EXIT_INTERNAL_ERROR] = on_internal_error;
	rc.on_stop = on_vcpu_stop;
	rc.on_thread_start = on_vcpu_thread_start;
	r = ehv_runner_create(&rc, &vm->runner);
	if (r < 0)
		return vmm_errf(err, r, "cannot start the vCPU threads: %s", strerror(-r));
	return 0;
}

static int vmm_vm_create(const struct ember_config *cfg, struct ehv_hypervisor *hyp, int mem_fd,
			 struct ehv_vm *hv, struct ember_vm **out, struct ember_error *err);

static void on_stop_wake(void *opaque, uint64_t n);
static void on_kick(void *opaque, uint64_t n);
static void on_console_in(void *opaque, int fd, unsigned events);
static void on_eot(void *opaque, uint64_t n);
static void on_console_out(void *opaque, int fd, unsigned events);

static int get_tid(struct ehv_vcpu *vcpu, void *arg)
{
	(void)vcpu;
	*(int *)arg = (int)syscall(SYS_gettid);
	return 0;
}

/* The I/O side: the loop, its wake-ups and the console's fds. */
static int create_io(struct ember_vm *vm, struct ember_error *err)
{
	int r = vmm_conout_init(&vm->out, vm->cfg.console_out, 0);
	if (r < 0)
		return vmm_errf(err, r, "out of memory");
	r = ember_loop_create(&vm->loop);
	if (r == 0)
		r = ember_loop_add_wakeup(vm->loop, on_stop_wake, vm, &vm->stop_src);
	if (r == 0)
		r = ember_loop_add_wakeup(vm->loop, on_kick, vm, &vm->kick_src);
	if (r == 0)
		r = vmm_halt_watch_start(vm);
	if (r < 0)
		return vmm_errf(err, r, "cannot create the event loop: %s", strerror(-r));
	if (vm->cfg.console_in >= 0) {
		r = ember_loop_add_fd(vm->loop, vm->cfg.console_in, EMBER_LOOP_IN, on_console_in,
				      vm, &vm->in_src);
		if (r == -EPERM) /* a regular file: read it when the loop wakes */
			r = 0;
		if (r < 0)
			return vmm_errf(err, r, "cannot watch the console input (fd %d): %s",
					vm->cfg.console_in, strerror(-r));
	}
	if (vm->cfg.console_in >= 0 && vm->cfg.builtin_initrd && vm->cfg.interactive > 0 &&
	    !vm->cfg.root_fs) {
		r = ember_loop_add_timer(vm->loop, 1000000000ull, 1000000000ull, on_eot, vm,
					 &vm->eot_src);
		if (r < 0)
			return vmm_errf(err, r, "cannot create the console timer: %s",
					strerror(-r));
	}
	if (vm->out.pollable) {
		r = ember_loop_add_fd(vm->loop, vm->out.fd, 0, on_console_out, vm, &vm->out_src);
		if (r == -EPERM) { /* e.g. /dev/null: written when output comes */
			vm->out.pollable = false;
			r = 0;
		}
		if (r < 0)
			return vmm_errf(err, r, "cannot watch the console output (fd %d): %s",
					vm->cfg.console_out, strerror(-r));
	}
	return 0;
}

int ember_vm_create(const struct ember_config *cfg, struct ember_vm **out, struct ember_error *err)
{
	return vmm_vm_create(cfg, NULL, -2, NULL, out, err);
}

int ember_vm_create_on(const struct ember_config *cfg, struct ehv_hypervisor *hyp,
		       struct ember_vm **out, struct ember_error *err)
{
	if (!hyp) {
		if (out)
			*out = NULL;
		return vmm_errf(err, -EINVAL, "no hypervisor");
	}
	return vmm_vm_create(cfg, hyp, -2, NULL, out, err);
}

/* A restore (vmm/snapshot.c): see vm.h. */
int vmm_vm_create_restored(const struct ember_config *cfg, struct ehv_hypervisor *hyp, int mem_fd,
			   struct ehv_vm *hv, struct ember_vm **out, struct ember_error *err)
{
	return vmm_vm_create(cfg, hyp, mem_fd < 0 ? -1 : mem_fd, hv, out, err);
}

/* The checks and the allocation before a VM is built: the seccomp filters
 * prepared, *vmp a zeroed VM holding a copy of cfg. */
static int vm_alloc(const struct ember_config *cfg, struct ember_vm **out, struct ember_vm **vmp,
		    struct ember_error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = 0;
	}
	if (!cfg || !out)
		return vmm_errf(err, -EINVAL, "no configuration");
	if (!cfg->resolved)
		return vmm_errf(err, -EINVAL,
				"the configuration is not resolved (call ember_config_resolve)");
	*out = NULL;
	/* every thread's filter, built here before any VM thread starts */
	int sr = vmm_seccomp_prepare(cfg->seccomp);
	if (sr < 0)
		return vmm_errf(err, sr, "cannot build the seccomp filters: %s", strerror(-sr));
	struct ember_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return vmm_errf(err, -ENOMEM, "out of memory");
	if (vmm_config_copy(&vm->cfg, cfg) < 0) {
		free(vm);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	*vmp = vm;
	return 0;
}

/* mem_fd: -2 a boot; -1 a restore whose memory the caller fills; >= 0 a
 * restore mapping guest memory from that file. hv: a VM made on hyp, or
 * NULL (one is made); the VM's from here on. */
static int vmm_vm_create(const struct ember_config *cfg, struct ehv_hypervisor *hyp, int mem_fd,
			 struct ehv_vm *hv, struct ember_vm **out, struct ember_error *err)
{
	uint64_t t_begin = vmm_now_ns();
	struct ember_vm *vm = NULL;
	int ar = vm_alloc(cfg, out, &vm, err);
	if (ar < 0) {
		ehv_vm_destroy(hv);
		return ar;
	}
	vm->hyp = hyp;
	vm->hv = hv;
	vm->restoring = mem_fd != -2;
	vm->restore_mem_fd = mem_fd;
	vmm_seccomp_set_mode(cfg->seccomp); /* for threads that know no VM (control) */
	vm->ncpus = cfg->cpus;
	vm->mem.fd = -1;
	vm->start_ns = cfg->start_ns ? cfg->start_ns : vmm_now_ns();
	atomic_init(&vm->stop_reason, -1);
	atomic_init(&vm->stop_vcpu, -1);
	atomic_init(&vm->state, EMBER_VM_CREATED);
	atomic_init(&vm->reset_pending, false);
	atomic_init(&vm->resets, 0);
	pthread_mutex_init(&vm->life_lock, NULL);
	pthread_mutex_init(&vm->dev_lock, NULL);
	pthread_mutex_init(&vm->ev_lock, NULL);
	pthread_mutex_init(&vm->swap_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* ember_vm_wait's deadline */
	pthread_cond_init(&vm->life_cond, &ca);
	pthread_condattr_destroy(&ca);
	int r = create_io(vm, err);
	if (r == 0)
		r = create(vm, err);
	vm->restore_mem_fd = -1; /* the caller's: from now on one the VM owns, or none */
	if (r == 0) {
		vm->tids = calloc(vm->ncpus, sizeof(vm->tids[0]));
		if (!vm->tids)
			r = vmm_errf(err, -ENOMEM, "out of memory");
		for (unsigned i = 0; r == 0 && i < vm->ncpus; i++)
			(void)ehv_runner_call(vm->runner, (int)i, get_tid, &vm->tids[i]);
	}
	if (r == 0) {
		r = vmm_vm_balloon_watch_start(vm);
		if (r < 0)
			vmm_errf(err, r, "cannot create the balloon's timer: %s", strerror(-r));
	}
	if (r < 0) {
		ember_vm_destroy(vm);
		return r;
	}
	vm->created_ns = vmm_now_ns();
	vmm_logf(&vm->cfg, EMBER_LOG_DEBUG, "VM built in %.1f ms (%.1f ms since start)",
		 (double)(vm->created_ns - t_begin) / 1e6, vmm_vm_ms(vm));
	*out = vm;
	return 0;
}

void ember_vm_destroy(struct ember_vm *vm)
{
	if (!vm)
		return;
	if (vm->io_started) {
		ember_vm_request_stop(vm);
		pthread_join(vm->io_thread, NULL);
	}
	ehv_runner_destroy(vm->runner); /* stops and joins the vCPU threads */
	if (vm->pio)
		bus_destroy(vm->pio);
	if (vm->mmio)
		bus_destroy(vm->mmio);
	vmm_board_destroy(vm);
	vmm_swap_fini(vm);
	for (unsigned i = 0; vm->vcpus && i < vm->ncpus; i++)
		ehv_vcpu_destroy(vm->vcpus[i]);
	ehv_vm_destroy(vm->hv);
	if (vm->own_hyp)
		ehv_hypervisor_close(vm->hyp);
	vmm_mem_destroy(&vm->mem);
	if (vm->restore_mem_fd >= 0)
		close(vm->restore_mem_fd);
	ember_loop_destroy(vm->loop);
	vmm_conout_fini(&vm->out);
	pthread_mutex_destroy(&vm->life_lock);
	pthread_mutex_destroy(&vm->dev_lock);
	pthread_mutex_destroy(&vm->ev_lock);
	pthread_mutex_destroy(&vm->swap_lock);
	pthread_cond_destroy(&vm->life_cond);
	free(vm->tids);
	free(vm->vcpus);
	free(vm->dumps);
	boot_state_free(vm);
	free(vm->page_sums);
	vmm_config_fini(&vm->cfg);
	free(vm);
}

/* ------------------------------------------------------------ the I/O thread */

/* Console input waiting for the UART goes in, unless the devices are
 * paused; console input is read only while its bytes have somewhere to go. */
static void console_in_flush(struct ember_vm *vm)
{
	struct vmm_conin *ci = &vm->in;
	pthread_mutex_lock(&vm->dev_lock);
	if (!vm->devs_paused && ci->len)
		vmm_conin_consume(ci, vmm_board_console_input(vm, ci->buf, ci->len));
	pthread_mutex_unlock(&vm->dev_lock);
	if (vm->in_src)
		ember_loop_modify(vm->in_src,
				  !ci->eof && ci->len < sizeof(ci->buf) / 2 ? EMBER_LOOP_IN : 0);
}

static void console_in_read(struct ember_vm *vm, int fd)
{
	struct vmm_conin *ci = &vm->in;
	if (ci->eof || ci->len >= sizeof(ci->buf) / 2)
		return;
	uint8_t buf[1024];
	ssize_t r = read(fd, buf, sizeof(buf));
	if (r > 0) {
		if (vmm_conin_feed(ci, vm->cfg.console_escape, buf, (size_t)r))
			vmm_vm_request_stop(vm, EMBER_STOP_REQUESTED, -1, 0,
					    "Ctrl-A x on the console");
	} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
		ci->eof = true; /* keep running without console input */
	}
}

static void on_console_in(void *opaque, int fd, unsigned events)
{
	struct ember_vm *vm = opaque;
	(void)events;
	console_in_read(vm, fd);
	console_in_flush(vm);
}

/* The built-in shell after console input ended: Ctrl-D (EOF on the guest's
 * tty) once a second, so that `--interactive </dev/null` ends like a shell
 * reading /dev/null (a byte sent before the guest's UART driver is up is
 * lost, hence the repeat). */
static void on_eot(void *opaque, uint64_t n)
{
	struct ember_vm *vm = opaque;
	(void)n;
	struct vmm_conin *ci = &vm->in;
	if (ci->eof && !ci->len) {
		ci->buf[ci->len++] = 0x04;
		console_in_flush(vm);
	}
}

/* Writes what the console takes; lets the UART send what it held. */
static void console_out_flush(struct ember_vm *vm)
{
	vmm_conout_flush(&vm->out);
	if (vm->out_src)
		ember_loop_modify(vm->out_src, vmm_conout_pending(&vm->out) ? EMBER_LOOP_OUT : 0);
	/* also when nothing was written now: room made while the devices were
	 * paused is owed to the UART after resume */
	pthread_mutex_lock(&vm->dev_lock);
	if (!vm->devs_paused)
		vmm_board_console_ready(vm);
	pthread_mutex_unlock(&vm->dev_lock);
}

static void on_console_out(void *opaque, int fd, unsigned events)
{
	(void)fd;
	(void)events;
	console_out_flush(opaque);
}

static void on_kick(void *opaque, uint64_t n)
{
	struct ember_vm *vm = opaque;
	(void)n;
	console_out_flush(vm);
	console_in_flush(vm);
	vmm_board_devices_kick(vm); /* queue kicks held while paused */
	pthread_mutex_lock(&vm->dev_lock);
	uint32_t ws =
	    vm->devs_paused ? 0 : __atomic_exchange_n(&vm->console_size, 0, __ATOMIC_SEQ_CST);
	if (ws)
		vmm_board_console_resize(vm, (uint16_t)(ws >> 16), (uint16_t)ws);
	pthread_mutex_unlock(&vm->dev_lock);
	struct vmm_conin *ci = &vm->in;
	if (vm->cfg.console_in >= 0 && !vm->in_src && !ci->eof && ci->len < sizeof(ci->buf) / 2) {
		/* not pollable (a regular file, /dev/null): read on until EOF or
		 * until the UART is full (its rx_ready kicks again) */
		console_in_read(vm, vm->cfg.console_in);
		console_in_flush(vm);
		if (!ci->eof)
			ember_loop_wake(vm->kick_src);
	}
}

/* A vCPU that stopped on its own (a failed KVM_RUN) stops the VM. */
static void check_vcpus(struct ember_vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (ehv_runner_state(vm->runner, (int)i) != EHV_VCPU_STOPPED)
			continue;
		int e = ehv_runner_error(vm->runner, (int)i);
		char d[128];
		snprintf(d, sizeof(d), "vCPU %u stopped: %s", i, e ? strerror(-e) : "no reason");
		vmm_vm_request_stop(vm, e ? EMBER_STOP_ERROR : EMBER_STOP_CRASH, (int)i, e, d);
		return;
	}
}

/* Console output still buffered when the VM stops goes out while the reader
 * takes it; 250 ms without progress and the rest is dropped. */
#define DRAIN_STALL_MS 250

static void drain_console(struct ember_vm *vm)
{
	uint64_t last = vmm_now_ns();
	for (;;) {
		/* the UART may hold bytes the buffer had no room for */
		vmm_board_console_ready(vm);
		long w = vmm_conout_flush(&vm->out);
		if (w < 0 || !vmm_conout_pending(&vm->out))
			return;
		uint64_t now = vmm_now_ns();
		if (w > 0)
			last = now;
		else if (now - last >= DRAIN_STALL_MS * 1000000ull)
			return;
		if (vm->out.pollable) {
			struct pollfd p = {.fd = vm->out.fd, .events = POLLOUT};
			poll(&p, 1, 50);
		}
	}
}

static void log_stats(struct ember_vm *vm, int reason)
{
	struct bus_stats ps, ms;
	bus_get_stats(vm->pio, &ps);
	bus_get_stats(vm->mmio, &ms);
	vmm_logf(&vm->cfg, EMBER_LOG_DEBUG,
		 "stopped (%s: %s); unclaimed PIO reads %" PRIu64 " writes %" PRIu64
		 ", MMIO reads %" PRIu64 " writes %" PRIu64 ", rejected %" PRIu64,
		 ember_stop_reason_name((enum ember_stop_reason)reason), vm->stop_detail,
		 ps.unhandled_reads, ps.unhandled_writes, ms.unhandled_reads, ms.unhandled_writes,
		 ps.rejected + ms.rejected);
	if (vm->cfg.log_level < EMBER_LOG_DEBUG)
		return;
	vmm_board_devices_report(vm);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		uint64_t c[EHV_EXIT_REASON_MAX];
		char line[512];
		int n = 0;
		uint64_t total = ehv_vcpu_exit_counts(vm->vcpus[i], c);
		for (int k = 0; k < EHV_EXIT_REASON_MAX && n >= 0 && n < (int)sizeof(line); k++)
			if (c[k])
				n += snprintf(line + n, sizeof(line) - (size_t)n, " %s %" PRIu64,
					      ehv_exit_reason_name((enum ehv_exit_reason)k), c[k]);
		vmm_logf(&vm->cfg, EMBER_LOG_DEBUG, "vCPU %u: %" PRIu64 " exits:%s", i, total,
			 n > 0 ? line : "");
	}
}

/* Records the result (before the listeners are told, which is before the
 * VM is STOPPED: a waiter that then stops listening has missed nothing);
 * life_lock held. */
static void fill_result(struct ember_vm *vm)
{
	int reason = atomic_load(&vm->stop_reason);
	struct ember_run_result *res = &vm->result;
	memset(res, 0, sizeof(*res));
	res->reason = (enum ember_stop_reason)reason;
	res->error = vm->stop_error;
	res->vcpu = atomic_load(&vm->stop_vcpu);
	res->run_ns = vm->first_run_ns ? vmm_now_ns() - vm->first_run_ns : 0;
	snprintf(res->detail, sizeof(res->detail), "%s",
		 vm->stop_detail[0] ? vm->stop_detail : ember_stop_reason_name(res->reason));
}

/* Makes the VM STOPPED (the result filled); life_lock held. */
static void mark_stopped(struct ember_vm *vm)
{
	atomic_store(&vm->state, EMBER_VM_STOPPED);
	pthread_cond_broadcast(&vm->life_cond);
}

static void emit_state(struct ember_vm *vm)
{
	struct ember_vm_event ev = {.kind = EMBER_VM_EVENT_STATE,
				    .state = (enum ember_vm_state)atomic_load(&vm->state)};
	vmm_vm_emit_event(vm, &ev);
}

/* The VM ends: the result, the STATE event of STOPPED and EXIT with the
 * result, then STOPPED (which ember_vm_wait sees). */
static void stop_and_tell(struct ember_vm *vm)
{
	pthread_mutex_lock(&vm->life_lock);
	fill_result(vm);
	pthread_mutex_unlock(&vm->life_lock);
	/* the guest's own power state change, when that is why it stopped */
	if (vm->result.reason == EMBER_STOP_POWEROFF || vm->result.reason == EMBER_STOP_REBOOT) {
		struct ember_vm_event pe = {
		    .kind = EMBER_VM_EVENT_POWER,
		    .power = vm->result.reason == EMBER_STOP_POWEROFF ? "poweroff" : "reboot"};
		vmm_vm_emit_event(vm, &pe);
	}
	struct ember_vm_event ev = {.kind = EMBER_VM_EVENT_STATE, .state = EMBER_VM_STOPPED};
	vmm_vm_emit_event(vm, &ev);
	ev = (struct ember_vm_event){
	    .kind = EMBER_VM_EVENT_EXIT, .state = EMBER_VM_STOPPED, .result = &vm->result};
	vmm_vm_emit_event(vm, &ev);
	pthread_mutex_lock(&vm->life_lock);
	mark_stopped(vm);
	pthread_mutex_unlock(&vm->life_lock);
}

/* I/O thread: the VM is to stop. Captures the crash registers, stops the
 * vCPUs, drains the console, publishes the result. */
static void finish(struct ember_vm *vm)
{
	int reason = atomic_load(&vm->stop_reason);
	if (reason == EMBER_STOP_CRASH || reason == EMBER_STOP_ERROR)
		for (unsigned i = 0; i < vm->ncpus; i++)
			if (!vm->dumps[i].valid)
				ehv_runner_call(vm->runner, (int)i, capture_regs, vm);
	pthread_mutex_lock(&vm->life_lock);
	ehv_runner_stop(vm->runner, EHV_ALL_VCPUS);
	pthread_mutex_unlock(&vm->life_lock);
	drain_console(vm);
	log_stats(vm, reason);
	stop_and_tell(vm);
	ember_loop_quit(vm->loop);
}

static void on_stop_wake(void *opaque, uint64_t n)
{
	struct ember_vm *vm = opaque;
	(void)n;
	if (atomic_load(&vm->stop_reason) < 0)
		check_vcpus(vm);
	if (atomic_load(&vm->stop_reason) < 0 && atomic_load(&vm->reset_pending))
		do_reset(vm);
	if (atomic_load(&vm->stop_reason) >= 0 && atomic_load(&vm->state) != EMBER_VM_STOPPED)
		finish(vm);
}

static void *io_thread(void *arg)
{
	struct ember_vm *vm = arg;
	pthread_setname_np(pthread_self(), "ember-io");
	int e = vmm_seccomp_enter_mode(EMBER_THREAD_IO, vm->cfg.seccomp);
	if (e < 0)
		vmm_vm_request_stop(vm, EMBER_STOP_ERROR, -1, e,
				    "cannot load the I/O thread's seccomp filter");
	ember_loop_wake(vm->stop_src); /* a stop requested before the start */
	ember_loop_wake(vm->kick_src); /* console input that came early */
	while (atomic_load(&vm->state) != EMBER_VM_STOPPED) {
		int r = ember_loop_run(vm->loop);
		if (r < 0 && atomic_load(&vm->state) != EMBER_VM_STOPPED) {
			vmm_vm_request_stop(vm, EMBER_STOP_ERROR, -1, r, "the event loop failed");
			finish(vm);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

int ember_vm_start(struct ember_vm *vm)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->life_lock);
	if (atomic_load(&vm->state) != EMBER_VM_CREATED) {
		pthread_mutex_unlock(&vm->life_lock);
		return -EALREADY;
	}
	/* the thread starts with every signal blocked: none lands on it */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int r = -pthread_create(&vm->io_thread, NULL, io_thread, vm);
	if (r == 0)
		vmm_swap_start(vm); /* the page server's thread, idle until swap enable */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		pthread_mutex_unlock(&vm->life_lock);
		return r;
	}
	vm->io_started = true;
	vm->first_run_ns = vmm_now_ns();
	atomic_store(&vm->state, EMBER_VM_RUNNING);
	r = ehv_runner_start(vm->runner, EHV_ALL_VCPUS);
	pthread_mutex_unlock(&vm->life_lock);
	if (r < 0) {
		char d[128];
		snprintf(d, sizeof(d), "the vCPUs did not start: %s", strerror(-r));
		vmm_vm_request_stop(vm, EMBER_STOP_ERROR, -1, r, d);
		return r;
	}
	vmm_logf(&vm->cfg, EMBER_LOG_DEBUG, "vCPUs running at %.1f ms since start", vmm_vm_ms(vm));
	emit_state(vm);
	return 0;
}

/* The end of pause/resume: r > 0 means the state changed (the listeners
 * are told, outside the lock; returns 0), else r is the result. */
static int unlock_and_tell(struct ember_vm *vm, int r)
{
	pthread_mutex_unlock(&vm->life_lock);
	if (r > 0)
		emit_state(vm);
	return r > 0 ? 0 : r;
}

/* The error of pause/resume in a state they cannot leave; 1 to go on. */
static int pause_resume_check(struct ember_vm *vm)
{
	int st = atomic_load(&vm->state);
	if (st == EMBER_VM_CREATED)
		return -EINVAL;
	if (st == EMBER_VM_STOPPED || atomic_load(&vm->stop_reason) >= 0)
		return -ESRCH;
	return 1;
}

int ember_vm_pause(struct ember_vm *vm)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->life_lock);
	int r = pause_resume_check(vm);
	if (r > 0 && atomic_load(&vm->state) == EMBER_VM_PAUSED)
		r = 0;
	if (r > 0) {
		r = ehv_runner_pause(vm->runner, EHV_ALL_VCPUS);
		if (r == 0) {
			pthread_mutex_lock(&vm->dev_lock);
			vm->devs_paused = true;
			vmm_board_devices_quiesce(vm); /* no disk I/O in flight when paused */
			pthread_mutex_unlock(&vm->dev_lock);
			atomic_store(&vm->state, EMBER_VM_PAUSED);
			r = 1; /* changed: tell the listeners */
		} else {
			/* a vCPU stopped meanwhile: the VM is stopping */
			if (!vm->vcpus_paused)
				ehv_runner_resume(vm->runner, EHV_ALL_VCPUS);
			r = -ESRCH;
		}
	}
	return unlock_and_tell(vm, r);
}

int ember_vm_resume(struct ember_vm *vm)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->life_lock);
	int r = pause_resume_check(vm);
	if (r > 0 && atomic_load(&vm->state) == EMBER_VM_RUNNING)
		r = 0;
	if (r > 0) {
		pthread_mutex_lock(&vm->dev_lock);
		vm->devs_paused = false;
		pthread_mutex_unlock(&vm->dev_lock);
		ember_loop_wake(vm->kick_src); /* held console input and output */
		atomic_store(&vm->state, EMBER_VM_RUNNING);
		vm->vcpus_paused = false;
		r = ehv_runner_resume(vm->runner, EHV_ALL_VCPUS);
		r = r < 0 ? -ESRCH : 1;
	}
	return unlock_and_tell(vm, r);
}

/* vCPUs only: the state stays RUNNING, the devices go on. */
static int vcpus_pause_resume(struct ember_vm *vm, bool pause)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->life_lock);
	int r = pause_resume_check(vm);
	if (r > 0 && atomic_load(&vm->state) == EMBER_VM_PAUSED)
		r = -EBUSY;
	if (r > 0 && vm->vcpus_paused == pause)
		r = 0;
	if (r > 0) {
		int e = pause ? ehv_runner_pause(vm->runner, EHV_ALL_VCPUS)
			      : ehv_runner_resume(vm->runner, EHV_ALL_VCPUS);
		if (e == 0) {
			vm->vcpus_paused = pause;
		} else {
			if (pause) /* a vCPU stopped meanwhile: the VM is stopping */
				ehv_runner_resume(vm->runner, EHV_ALL_VCPUS);
			r = -ESRCH;
		}
	}
	return unlock_and_tell(vm, r);
}

int ember_vm_pause_vcpus(struct ember_vm *vm)
{
	return vcpus_pause_resume(vm, true);
}

int ember_vm_resume_vcpus(struct ember_vm *vm)
{
	return vcpus_pause_resume(vm, false);
}

bool ember_vm_vcpus_paused(struct ember_vm *vm)
{
	if (!vm)
		return false;
	pthread_mutex_lock(&vm->life_lock);
	bool p = vm->vcpus_paused;
	pthread_mutex_unlock(&vm->life_lock);
	return p;
}

int ember_vm_stop(struct ember_vm *vm)
{
	if (!vm)
		return -EINVAL;
	vmm_vm_request_stop(vm, EMBER_STOP_REQUESTED, -1, 0, NULL);
	pthread_mutex_lock(&vm->life_lock);
	bool now = atomic_load(&vm->state) == EMBER_VM_CREATED && !vm->stopping_now;
	vm->stopping_now |= now;
	pthread_mutex_unlock(&vm->life_lock);
	if (now)
		stop_and_tell(vm); /* never started: no thread to ask */
	return ember_vm_wait(vm, -1, NULL);
}

int ember_vm_wait(struct ember_vm *vm, int timeout_ms, struct ember_run_result *res)
{
	if (!vm)
		return -EINVAL;
	struct timespec deadline;
	if (timeout_ms > 0)
		base_deadline_after_ms(&deadline, timeout_ms);
	int r = 0;
	pthread_mutex_lock(&vm->life_lock);
	for (;;) {
		int st = atomic_load(&vm->state);
		if (st == EMBER_VM_STOPPED)
			break;
		if (st == EMBER_VM_CREATED) {
			r = -EINVAL;
			break;
		}
		if (timeout_ms == 0) {
			r = -ETIMEDOUT;
			break;
		}
		if (base_cond_wait_until(&vm->life_cond, &vm->life_lock,
					 timeout_ms < 0 ? NULL : &deadline) == ETIMEDOUT) {
			r = atomic_load(&vm->state) == EMBER_VM_STOPPED ? 0 : -ETIMEDOUT;
			break;
		}
	}
	if (r == 0 && res)
		*res = vm->result;
	pthread_mutex_unlock(&vm->life_lock);
	return r;
}

int ember_vm_query(struct ember_vm *vm, struct ember_vm_info *info)
{
	if (!vm || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->state = (enum ember_vm_state)atomic_load(&vm->state);
	info->vcpus = vm->ncpus;
	info->mem_size = vm->cfg.mem_size;
	info->resets = atomic_load(&vm->resets);
	pthread_mutex_lock(&vm->out.lock);
	info->console_bytes_out = vm->out.written;
	info->console_bytes_dropped = vm->out.dropped;
	info->console_bytes_pending = vm->out.len;
	pthread_mutex_unlock(&vm->out.lock);
	return 0;
}

_Static_assert(EHV_EXIT_REASON_MAX <= EMBER_VCPU_EXIT_KINDS, "EMBER_VCPU_EXIT_KINDS too small");

int ember_vm_query_vcpu(struct ember_vm *vm, unsigned idx, struct ember_vcpu_info *info)
{
	if (!vm || !info || idx >= vm->ncpus)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->tid = vm->tids[idx];
	info->exits_total = ehv_vcpu_exit_counts(vm->vcpus[idx], info->exits);
	return 0;
}

int ember_vm_vcpu_tid(struct ember_vm *vm, unsigned idx, pid_t *tid)
{
	if (!vm || !tid || idx >= vm->ncpus)
		return -EINVAL;
	*tid = (pid_t)vm->tids[idx];
	return 0;
}

/* ------------------------------------------------------------ events */

void vmm_vm_emit_event(struct ember_vm *vm, struct ember_vm_event *ev)
{
	pthread_mutex_lock(&vm->ev_lock);
	if (vm->nlisteners) {
		if (ev->kind != EMBER_VM_EVENT_STATE && ev->kind != EMBER_VM_EVENT_EXIT)
			ev->state = (enum ember_vm_state)atomic_load(&vm->state);
		if (ev->kind == EMBER_VM_EVENT_STATE)
			ev->vcpus_paused = atomic_load(&vm->vcpus_paused);
		for (unsigned i = 0; i < vm->nlisteners; i++)
			vm->listeners[i].fn(ev, vm->listeners[i].opaque);
	}
	pthread_mutex_unlock(&vm->ev_lock);
}

/* The balloon's watcher (I/O thread, a timer of the VM's loop): the size
 * the driver reports, compared with the last look; a move is an event
 * (oom: it shrank while the target did not ask for it). Only while
 * someone listens. */
#define BALLOON_WATCH_NS 250000000ull
static void on_balloon_watch(void *opaque, uint64_t n)
{
	struct ember_vm *vm = opaque;
	(void)n;
	uint64_t actual, target;
	if (!__atomic_load_n(&vm->nlisteners, __ATOMIC_RELAXED) ||
	    vmm_virtio_balloon_peek(vm, &actual, &target) < 0)
		return;
	if (actual != vm->balloon_seen) {
		struct ember_vm_event ev = {.kind = EMBER_VM_EVENT_BALLOON,
					    .balloon_actual_bytes = actual,
					    .balloon_target_bytes = target,
					    .balloon_oom = actual < vm->balloon_seen &&
							   target >= vm->balloon_seen};
		vm->balloon_seen = actual;
		vmm_vm_emit_event(vm, &ev);
	}
}

int vmm_vm_balloon_watch_start(struct ember_vm *vm)
{
	uint64_t actual, target;
	if (vmm_virtio_balloon_peek(vm, &actual, &target) < 0)
		return 0; /* no balloon */
	vm->balloon_seen = actual;
	return ember_loop_add_timer(vm->loop, BALLOON_WATCH_NS, BALLOON_WATCH_NS, on_balloon_watch,
				    vm, &vm->balloon_src);
}

int ember_vm_add_event_listener(struct ember_vm *vm, ember_vm_event_fn fn, void *opaque)
{
	if (!vm || !fn)
		return -EINVAL;
	int r = 0;
	pthread_mutex_lock(&vm->ev_lock);
	for (unsigned i = 0; i < vm->nlisteners; i++)
		if (vm->listeners[i].fn == fn && vm->listeners[i].opaque == opaque)
			r = -EEXIST;
	if (r == 0 && vm->nlisteners >= EMBER_VM_MAX_LISTENERS)
		r = -ENOSPC;
	if (r == 0) {
		vm->listeners[vm->nlisteners].fn = fn;
		vm->listeners[vm->nlisteners].opaque = opaque;
		__atomic_store_n(&vm->nlisteners, vm->nlisteners + 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&vm->ev_lock);
	return r;
}

int ember_vm_remove_event_listener(struct ember_vm *vm, ember_vm_event_fn fn, void *opaque)
{
	if (!vm || !fn)
		return -EINVAL;
	int r = -ENOENT;
	pthread_mutex_lock(&vm->ev_lock);
	for (unsigned i = 0; i < vm->nlisteners; i++) {
		if (vm->listeners[i].fn == fn && vm->listeners[i].opaque == opaque) {
			memmove(&vm->listeners[i], &vm->listeners[i + 1],
				(vm->nlisteners - i - 1) * sizeof(vm->listeners[0]));
			__atomic_store_n(&vm->nlisteners, vm->nlisteners - 1, __ATOMIC_RELAXED);
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&vm->ev_lock);
	return r;
}

const char *ember_vm_event_kind_name(enum ember_vm_event_kind kind)
{
	static const char *const names[EMBER_VM_EVENT_KINDS] = {"state", "exit", "balloon",
								"power"};
	return (unsigned)kind < EMBER_VM_EVENT_KINDS ? names[kind] : NULL;
}

const char *ember_vm_state_name(enum ember_vm_state state)
{
	switch (state) {
	case EMBER_VM_CREATED:
		return "created";
	case EMBER_VM_RUNNING:
		return "running";
	case EMBER_VM_PAUSED:
		return "paused";
	case EMBER_VM_STOPPED:
		return "stopped";
	}
	return "unknown";
}

const char *ember_vcpu_exit_name(unsigned kind)
{
	return kind < EHV_EXIT_REASON_MAX ? ehv_exit_reason_name((enum ehv_exit_reason)kind) : NULL;
}

struct ember_loop *ember_vm_loop(struct ember_vm *vm)
{
	return vm ? vm->loop : NULL;
}

static size_t format_dump(const struct vmm_vcpu_dump *d, unsigned idx, char *buf, size_t len)
{
	const struct ehv_x86_regs *r = &d->regs;
	const struct ehv_x86_sregs *s = &d->sregs;
	int n = snprintf(
	    buf, len,
	    "vCPU %u:\n"
	    "  rip %016" PRIx64 "  rsp %016" PRIx64 "  rflags %016" PRIx64 "\n"
	    "  rax %016" PRIx64 "  rbx %016" PRIx64 "  rcx %016" PRIx64 "  rdx %016" PRIx64 "\n"
	    "  rsi %016" PRIx64 "  rdi %016" PRIx64 "  rbp %016" PRIx64 "  r8  %016" PRIx64 "\n"
	    "  r9  %016" PRIx64 "  r10 %016" PRIx64 "  r11 %016" PRIx64 "  r12 %016" PRIx64 "\n"
	    "  r13 %016" PRIx64 "  r14 %016" PRIx64 "  r15 %016" PRIx64 "\n"
	    "  cr0 %016" PRIx64 "  cr2 %016" PRIx64 "  cr3 %016" PRIx64 "  cr4 %016" PRIx64 "\n"
	    "  efer %" PRIx64 "  cs %04x (base %" PRIx64 " l%u d%u)  ss %04x  ds %04x  tr %04x\n"
	    "  gdt %" PRIx64 "/%x  idt %" PRIx64 "/%x\n",
	    idx, r->rip, r->rsp, r->rflags, r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp,
	    r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, s->cr0, s->cr2, s->cr3,
	    s->cr4, s->efer, s->cs.selector, s->cs.base, s->cs.l, s->cs.db, s->ss.selector,
	    s->ds.selector, s->tr.selector, s->gdt.base, s->gdt.limit, s->idt.base, s->idt.limit);
	return n > 0 ? (size_t)n : 0;
}

int ember_vm_format_registers(const struct ember_vm *vm, char *buf, size_t len)
{
	size_t used = 0;
	if (len)
		buf[0] = 0;
	for (unsigned i = 0; vm && vm->dumps && i < vm->ncpus; i++) {
		if (!vm->dumps[i].valid)
			continue;
		char tmp[2048];
		size_t n = format_dump(&vm->dumps[i], i, tmp, sizeof(tmp));
		if (n >= sizeof(tmp))
			n = sizeof(tmp) - 1;
		if (used < len) {
			size_t room = len - used - 1;
			memcpy(buf + used, tmp, n < room ? n : room);
			buf[used + (n < room ? n : room)] = 0;
		}
		used += n;
	}
	return (int)used;
}

int ember_run(const struct ember_config *cfg, struct ember_run_result *res, struct ember_error *err)
{
	struct ember_vm *vm;
	int r = ember_vm_create(cfg, &vm, err);
	if (r < 0)
		return r;
	r = ember_vm_run(vm, res);
	if (r < 0)
		vmm_errf(err, r, "cannot run the VM: %s", strerror(-r));
	ember_vm_destroy(vm);
	return r;
}

int ember_vm_run(struct ember_vm *vm, struct ember_run_result *res)
{
	if (!vm || !res)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	res->vcpu = -1;
	int r = ember_vm_start(vm);
	if (r < 0 && r != -EALREADY)
		ember_vm_wait(vm, -1, NULL); /* the start failed: let the I/O thread finish */
	if (r < 0)
		return r;
	return ember_vm_wait(vm, -1, res);
}

/* ------------------------------------------------------------ seccomp */

int ember_vm_seccomp_confine_caller(struct ember_vm *vm, struct ember_error *err)
{
	if (!vm)
		return vmm_errf(err, -EINVAL, "no VM");
	if (atomic_load(&vm->state) == EMBER_VM_CREATED)
		return vmm_errf(err, -EINVAL,
				"the VM is not started (its threads would inherit "
				"the filter)");
	int r = vmm_seccomp_enter_mode(EMBER_THREAD_MAIN, vm->cfg.seccomp);
	if (r < 0)
		return vmm_errf(err, r, "cannot load the main thread's seccomp filter: %s",
				strerror(-r));
	return 0;
}
