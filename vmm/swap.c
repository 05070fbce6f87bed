/* vmm/swap.c - ember_vm_swap: guest memory swapped out to a file and served back through the page server. */
#include "pageserver.h"
#include "internal.h"
#include "vm.h"
#include "../lib/io/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill_status(struct ember_vm *vm, struct ember_swap_status *st)
{
	if (!st)
		return;
	struct vmm_ps_stats s;
	vmm_ps_stats(vm->ps, &s);
	memset(st, 0, sizeof(*st));
	st->state = !vmm_ps_registered(vm->ps) ? EMBER_SWAP_DISABLED
		    : vm->swapped_out	       ? EMBER_SWAP_SWAPPED_OUT
					       : EMBER_SWAP_READY;
	st->faults = s.faults;
	st->bytes_in = s.bytes_copied + s.in_pages * 4096;
	st->zero_pages = s.zero_pages;
	st->errors = s.errors;
	st->last_out_pages = s.out_pages;
	st->out_pages = s.out_total;
	st->swapped_pages = s.swapped;
	st->page_size = 4096;
}

static int backing_check(struct ember_vm *vm, struct ember_error *err)
{
	if (vm->mem.hugepages)
		return vmm_errf(err, -EOPNOTSUPP,
				"swap: guest memory on hugepages cannot be swapped "
				"(the page server serves 4 KiB pages)");
	if (vm->mem.file_private)
		return vmm_errf(err, -EOPNOTSUPP,
				"swap: guest memory is mapped from a snapshot file "
				"(restore with --restore-memory=uffd to swap it)");
	if (!vm->mem.host || (!vm->mem.anon && vm->mem.fd < 0))
		return vmm_errf(err, -EOPNOTSUPP, "swap: unsupported guest memory backing");
	return 0;
}

void vmm_swap_start(struct ember_vm *vm)
{
	struct ember_error e = {0};
	if (vm->ps || backing_check(vm, &e) < 0 ||
	    vmm_ps_create(&vm->ps, vm->mem.host, vm->mem.size, vm->mem.anon ? -1 : vm->mem.fd, true,
			  &e) < 0) {
		if (!vm->ps)
			snprintf(vm->ps_error, sizeof(vm->ps_error), "%s", e.msg);
		return;
	}
	vm->mem.on_discard_opaque = vm->ps;
	__atomic_store_n(&vm->mem.on_discard, vmm_ps_discarded, __ATOMIC_RELEASE);
}

int vmm_swap_restore_from(struct ember_vm *vm, int fd, struct ember_error *err)
{
	int r = backing_check(vm, err);
	if (r < 0)
		return r;
	r = vmm_ps_create(&vm->ps, vm->mem.host, vm->mem.size, vm->mem.anon ? -1 : vm->mem.fd, true,
			  err);
	if (r == 0)
		r = vmm_ps_set_base(vm->ps, fd, 0, err);
	if (r == 0)
		r = vmm_ps_register(vm->ps, err);
	if (r < 0)
		return r; /* ember_vm_destroy ends a page server made here */
	vm->mem.on_discard_opaque = vm->ps;
	__atomic_store_n(&vm->mem.on_discard, vmm_ps_discarded, __ATOMIC_RELEASE);
	return 0;
}

static int enable(struct ember_vm *vm, struct ember_error *err)
{
	int r = backing_check(vm, err);
	if (r < 0)
		return r;
	if (!vm->ps)
		return vmm_errf(err, strstr(vm->ps_error, "userfaultfd:") ? -EPERM : -EOPNOTSUPP,
				"swap enable: no page server: %s", vm->ps_error);
	if (vmm_ps_registered(vm->ps))
		return vmm_errf(err, -EINVAL, "swap enable: swap is enabled already");
	r = vmm_ps_register(vm->ps, err);
	if (r < 0)
		return r;
	vm->swapped_out = false;
	return 0;
}

static int swap_out(struct ember_vm *vm, const char *dir, struct ember_error *err)
{
	if (!vmm_ps_registered(vm->ps))
		return vmm_errf(err, -EINVAL, "swap out: swap is not enabled (swap enable first)");
	if (!dir || !*dir)
		dir = getenv("XDG_RUNTIME_DIR");
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	int st0 = atomic_load(&vm->state);
	bool was_running = st0 == EMBER_VM_RUNNING;
	int r = ember_vm_pause(vm); /* vCPUs and devices: nothing writes guest memory */
	if (r < 0)
		return vmm_errf(err, r, "swap out: cannot pause the VM: %s", strerror(-r));
	uint64_t t0 = vmm_now_ns();
	int64_t n = vmm_ps_swap_out(vm->ps, dir, err);
	if (n >= 0) {
		vm->swapped_out = true;
		vmm_logf(&vm->cfg, EMBER_LOG_DEBUG, "swap out: %lld pages to %s in %.1f ms",
			 (long long)n, dir, (double)(vmm_now_ns() - t0) / 1e6);
	}
	if (was_running) {
		int rr = ember_vm_resume(vm);
		if (n >= 0 && rr < 0)
			return vmm_errf(err, rr, "swap out: done, but the VM did not resume: %s",
					strerror(-rr));
	}
	return n < 0 ? (int)n : 0;
}

static int disable(struct ember_vm *vm, struct ember_error *err)
{
	if (!vmm_ps_registered(vm->ps))
		return vmm_errf(err, -EINVAL, "swap disable: swap is not enabled");
	int r = vmm_ps_populate(vm->ps, vmm_ps_has_base(vm->ps), err);
	if (r < 0)
		return r;
	vm->swapped_out = false;
	if (!vmm_ps_has_base(vm->ps)) /* a uffd restore's memory stays served */
		vmm_ps_unregister(vm->ps);
	return 0;
}

int ember_vm_swap(struct ember_vm *vm, enum ember_swap_command cmd, const char *dir,
		  struct ember_swap_status *st, struct ember_error *err)
{
	if (!vm)
		return vmm_errf(err, -EINVAL, "swap: no VM");
	int state = atomic_load(&vm->state);
	if (cmd != EMBER_SWAP_STATUS && (state == EMBER_VM_CREATED || state == EMBER_VM_STOPPED ||
					 atomic_load(&vm->stop_reason) >= 0))
		return vmm_errf(err, -EINVAL, "swap: the VM is not running or paused");
	pthread_mutex_lock(&vm->swap_lock);
	int r;
	switch (cmd) {
	case EMBER_SWAP_ENABLE:
		r = enable(vm, err);
		break;
	case EMBER_SWAP_OUT:
		r = swap_out(vm, dir, err);
		break;
	case EMBER_SWAP_DISABLE:
		r = disable(vm, err);
		break;
	case EMBER_SWAP_TRIM:
		r = vmm_errf(err, -ENOTSUP,
			     "swap trim: Ember has no staging memory to trim (swap out writes "
			     "pages straight to the swap file)");
		break;
	case EMBER_SWAP_STATUS:
		r = 0;
		break;
	default:
		r = vmm_errf(err, -EINVAL, "swap: unknown command %d", (int)cmd);
	}
	fill_status(vm, st);
	pthread_mutex_unlock(&vm->swap_lock);
	return r;
}

int vmm_swap_populate_all(struct ember_vm *vm, struct ember_error *err)
{
	if (!vmm_ps_registered(vm->ps))
		return 0;
	return vmm_ps_populate(vm->ps, vmm_ps_has_base(vm->ps), err);
}

void vmm_swap_fini(struct ember_vm *vm)
{
	vm->mem.on_discard = NULL;
	vmm_ps_destroy(vm->ps);
	vm->ps = NULL;
}
