/* vmm/vm.c - the VM's life: build it from a configuration, run its vCPUs, serve the console, stop it. */
#include "vm.h"
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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
	vmm_vm_wake(vm);
}

void vmm_vm_wake(struct ember_vm *vm)
{
	uint64_t one = 1;
	if (vm->wake_fd >= 0) {
		ssize_t r = write(vm->wake_fd, &one, sizeof(one));
		(void)r; /* a full counter already wakes the loop */
	}
}

void ember_vm_request_stop(struct ember_vm *vm)
{
	if (vm)
		vmm_vm_request_stop(vm, EMBER_STOP_REQUESTED, -1, 0, NULL);
}

void vmm_vm_console_write(struct ember_vm *vm, const uint8_t *buf, size_t len)
{
	int fd = vm->cfg.console_out;
	while (fd >= 0 && len) {
		ssize_t n = write(fd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, 100);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			return; /* the console went away: drop output */
		}
	}
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
			return vmm_errf(
			    err, r, "cannot open /dev/kvm: %s%s", strerror(-r),
			    r == -ENOENT ? " (no KVM here: run in tools/kvm-sandbox/run.sh)" : "");
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
	r = ehv_runner_create(&rc, &vm->runner);
	if (r < 0)
		return vmm_errf(err, r, "cannot start the vCPU threads: %s", strerror(-r));
	return 0;
}

static int vmm_vm_create(const struct ember_config *cfg, struct ehv_hypervisor *hyp,
			 struct ember_vm **out, struct ember_error *err);

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
	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int r = vm->wake_fd < 0 ? vmm_errf(err, -errno, "eventfd: %s", strerror(errno))
				: create(vm, err);
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
	if (vm->wake_fd >= 0)
		close(vm->wake_fd);
	free(vm->vcpus);
	free(vm->dumps);
	vmm_config_fini(&vm->cfg);
	free(vm);
}

/* ------------------------------------------------------------ run */

/* The console escape: Ctrl-A x stops the VM, Ctrl-A Ctrl-A sends Ctrl-A. */
struct console_in {
	uint8_t buf[4096];
	size_t len;  /* bytes waiting for room in the UART */
	bool escape; /* the last byte was Ctrl-A */
	bool eof;
};

static void console_feed(struct ember_vm *vm, struct console_in *ci, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && ci->len < sizeof(ci->buf); i++) {
		uint8_t c = p[i];
		if (vm->cfg.console_escape) {
			if (ci->escape) {
				ci->escape = false;
				if (c == 'x' || c == 'X') {
					vmm_vm_request_stop(vm, EMBER_STOP_REQUESTED, -1, 0,
							    "Ctrl-A x on the console");
					return;
				}
				if (c != 0x01 && ci->len + 1 < sizeof(ci->buf))
					ci->buf[ci->len++] = 0x01;
			} else if (c == 0x01) {
				ci->escape = true;
				continue;
			}
		}
		ci->buf[ci->len++] = c;
	}
}

static void console_flush(struct ember_vm *vm, struct console_in *ci)
{
	if (!ci->len)
		return;
	size_t n = vmm_board_console_input(vm, ci->buf, ci->len);
	if (n) {
		memmove(ci->buf, ci->buf + n, ci->len - n);
		ci->len -= n;
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

static void main_loop(struct ember_vm *vm)
{
	struct console_in ci = {0};
	int in = vm->cfg.console_in;
	while (atomic_load(&vm->stop_reason) < 0) {
		struct pollfd p[2] = {{.fd = vm->wake_fd, .events = POLLIN}, {.fd = -1}};
		/* read the console only when its bytes have somewhere to go */
		if (in >= 0 && !ci.eof && ci.len < sizeof(ci.buf) / 2)
			p[1] = (struct pollfd){.fd = in, .events = POLLIN};
		int n = poll(p, 2, 200);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && (p[0].revents & POLLIN)) {
			uint64_t v;
			ssize_t r = read(vm->wake_fd, &v, sizeof(v));
			(void)r;
		}
		if (n > 0 && p[1].fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			uint8_t buf[1024];
			ssize_t r = read(in, buf, sizeof(buf));
			if (r > 0)
				console_feed(vm, &ci, buf, (size_t)r);
			else if (r == 0 || (errno != EAGAIN && errno != EINTR))
				ci.eof = true; /* keep running without console input */
		}
		console_flush(vm, &ci);
		check_vcpus(vm);
	}
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
	if (vm->ran)
		return -EALREADY;
	memset(res, 0, sizeof(*res));
	res->vcpu = -1;
	vm->ran = true;
	uint64_t t0 = vmm_now_ns();
	vm->first_run_ns = t0;
	int r = ehv_runner_start(vm->runner, EHV_ALL_VCPUS);
	if (r < 0) {
		ehv_runner_stop(vm->runner, EHV_ALL_VCPUS);
		return r;
	}
	vmm_logf(&vm->cfg, EMBER_LOG_DEBUG, "vCPUs running at %.1f ms since start", vmm_vm_ms(vm));

	main_loop(vm);

	int reason = atomic_load(&vm->stop_reason);
	if (reason < 0) /* the loop broke on a poll error */
		vmm_vm_request_stop(vm, EMBER_STOP_ERROR, -1, -EIO, "the main loop failed");
	reason = atomic_load(&vm->stop_reason);
	if (reason == EMBER_STOP_CRASH || reason == EMBER_STOP_ERROR)
		for (unsigned i = 0; i < vm->ncpus; i++)
			if (!vm->dumps[i].valid)
				ehv_runner_call(vm->runner, (int)i, capture_regs, vm);
	ehv_runner_stop(vm->runner, EHV_ALL_VCPUS);

	struct bus_stats ps, ms;
	bus_get_stats(vm->pio, &ps);
	bus_get_stats(vm->mmio, &ms);
	vmm_logf(&vm->cfg, EMBER_LOG_DEBUG,
		 "stopped (%s: %s); unclaimed PIO reads %" PRIu64 " writes %" PRIu64
		 ", MMIO reads %" PRIu64 " writes %" PRIu64 ", rejected %" PRIu64,
		 ember_stop_reason_name((enum ember_stop_reason)reason), vm->stop_detail,
		 ps.unhandled_reads, ps.unhandled_writes, ms.unhandled_reads, ms.unhandled_writes,
		 ps.rejected + ms.rejected);
	if (vm->cfg.log_level >= EMBER_LOG_DEBUG) {
		for (unsigned i = 0; i < vm->ncpus; i++) {
			uint64_t c[EHV_EXIT_REASON_MAX];
			char line[512];
			int n = 0;
			uint64_t total = ehv_vcpu_exit_counts(vm->vcpus[i], c);
			for (int k = 0; k < EHV_EXIT_REASON_MAX && n >= 0 && n < (int)sizeof(line);
			     k++)
				if (c[k])
					n += snprintf(
					    line + n, sizeof(line) - (size_t)n, " %s %" PRIu64,
					    ehv_exit_reason_name((enum ehv_exit_reason)k), c[k]);
			vmm_logf(&vm->cfg, EMBER_LOG_DEBUG, "vCPU %u: %" PRIu64 " exits:%s", i,
				 total, n > 0 ? line : "");
		}
	}
	res->reason = (enum ember_stop_reason)reason;
	res->error = vm->stop_error;
	res->vcpu = atomic_load(&vm->stop_vcpu);
	res->run_ns = vmm_now_ns() - t0;
	snprintf(res->detail, sizeof(res->detail), "%s",
		 vm->stop_detail[0] ? vm->stop_detail : ember_stop_reason_name(res->reason));
	return 0;
}
