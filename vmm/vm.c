/* vmm/vm.c - the VM's life: build it from a configuration, run its vCPUs, serve the console, stop it. */
#include "vm.h"

#include "../lib/base/deadline.h"
#include "internal.h"

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

void vmm_vm_request_stop(struct ember_vm *vm, enum ember_stop_reason reason, int vcpu, int error,
			 const char *detail)
{
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
	(void)exit;
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
	r = ehv_vm_create(vm->hyp, &vm->hv);
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
	r = vmm_board_load(vm, err);
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
	r = ehv_runner_create(&rc, &vm->runner);
	if (r < 0)
		return vmm_errf(err, r, "cannot start the vCPU threads: %s", strerror(-r));
	return 0;
}

static int vmm_vm_create(const struct ember_config *cfg, struct ehv_hypervisor *hyp,
			 struct ember_vm **out, struct ember_error *err);

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
	return vmm_vm_create(cfg, NULL, out, err);
}

int ember_vm_create_on(const struct ember_config *cfg, struct ehv_hypervisor *hyp,
		       struct ember_vm **out, struct ember_error *err)
{
	if (!hyp) {
		if (out)
			*out = NULL;
		return vmm_errf(err, -EINVAL, "no hypervisor");
	}
	return vmm_vm_create(cfg, hyp, out, err);
}

static int vmm_vm_create(const struct ember_config *cfg, struct ehv_hypervisor *hyp,
			 struct ember_vm **out, struct ember_error *err)
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
	uint64_t t_begin = vmm_now_ns();
	struct ember_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return vmm_errf(err, -ENOMEM, "out of memory");
	if (vmm_config_copy(&vm->cfg, cfg) < 0) {
		free(vm);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	vm->hyp = hyp;
	vm->ncpus = cfg->cpus;
	vm->mem.fd = -1;
	vm->start_ns = cfg->start_ns ? cfg->start_ns : vmm_now_ns();
	atomic_init(&vm->stop_reason, -1);
	atomic_init(&vm->stop_vcpu, -1);
	atomic_init(&vm->state, EMBER_VM_CREATED);
	pthread_mutex_init(&vm->life_lock, NULL);
	pthread_mutex_init(&vm->dev_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* ember_vm_wait's deadline */
	pthread_cond_init(&vm->life_cond, &ca);
	pthread_condattr_destroy(&ca);
	int r = create_io(vm, err);
	if (r == 0)
		r = create(vm, err);
	if (r == 0) {
		vm->tids = calloc(vm->ncpus, sizeof(vm->tids[0]));
		if (!vm->tids)
			r = vmm_errf(err, -ENOMEM, "out of memory");
		for (unsigned i = 0; r == 0 && i < vm->ncpus; i++)
			(void)ehv_runner_call(vm->runner, (int)i, get_tid, &vm->tids[i]);
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
	for (unsigned i = 0; vm->vcpus && i < vm->ncpus; i++)
		ehv_vcpu_destroy(vm->vcpus[i]);
	ehv_vm_destroy(vm->hv);
	if (vm->own_hyp)
		ehv_hypervisor_close(vm->hyp);
	vmm_mem_destroy(&vm->mem);
	ember_loop_destroy(vm->loop);
	vmm_conout_fini(&vm->out);
	pthread_mutex_destroy(&vm->life_lock);
	pthread_mutex_destroy(&vm->dev_lock);
	pthread_cond_destroy(&vm->life_cond);
	free(vm->tids);
	free(vm->vcpus);
	free(vm->dumps);
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

/* Records the result and makes the VM STOPPED; life_lock held. */
static void set_stopped(struct ember_vm *vm)
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
	atomic_store(&vm->state, EMBER_VM_STOPPED);
	pthread_cond_broadcast(&vm->life_cond);
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
	pthread_mutex_lock(&vm->life_lock);
	set_stopped(vm);
	pthread_mutex_unlock(&vm->life_lock);
	ember_loop_quit(vm->loop);
}

static void on_stop_wake(void *opaque, uint64_t n)
{
	struct ember_vm *vm = opaque;
	(void)n;
	if (atomic_load(&vm->stop_reason) < 0)
		check_vcpus(vm);
	if (atomic_load(&vm->stop_reason) >= 0 && atomic_load(&vm->state) != EMBER_VM_STOPPED)
		finish(vm);
}

static void *io_thread(void *arg)
{
	struct ember_vm *vm = arg;
	pthread_setname_np(pthread_self(), "ember-io");
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
	return 0;
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
		} else {
			/* a vCPU stopped meanwhile: the VM is stopping */
			ehv_runner_resume(vm->runner, EHV_ALL_VCPUS);
			r = -ESRCH;
		}
	}
	pthread_mutex_unlock(&vm->life_lock);
	return r;
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
		r = ehv_runner_resume(vm->runner, EHV_ALL_VCPUS);
		r = r < 0 ? -ESRCH : 0;
	}
	pthread_mutex_unlock(&vm->life_lock);
	return r;
}

int ember_vm_stop(struct ember_vm *vm)
{
	if (!vm)
		return -EINVAL;
	vmm_vm_request_stop(vm, EMBER_STOP_REQUESTED, -1, 0, NULL);
	pthread_mutex_lock(&vm->life_lock);
	if (atomic_load(&vm->state) == EMBER_VM_CREATED)
		set_stopped(vm); /* never started: no thread to ask */
	pthread_mutex_unlock(&vm->life_lock);
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
