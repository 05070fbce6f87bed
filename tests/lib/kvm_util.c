/* tests/lib/kvm_util.c - KVM test helpers: VMs, guest memory, vCPU mode setup, ucall decoding. */
#include "kvm_util.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Live VMs stay reachable from here, so that a test ending early (a failed
 * REQUIRE exits the test process) is not reported as a leak by LSan. */
#define MAX_LIVE_VMS 16
static struct kvmu_vm *live_vms[MAX_LIVE_VMS];

static void track_vm(struct kvmu_vm *vm, bool add)
{
	for (int i = 0; i < MAX_LIVE_VMS; i++) {
		if (add ? live_vms[i] == NULL : live_vms[i] == vm) {
			live_vms[i] = add ? vm : NULL;
			return;
		}
	}
	if (add)
		TEST_FAIL("kvm_util: more than %d live VMs", MAX_LIVE_VMS);
}

uint64_t kvmu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- VMs */

struct kvmu_vm *kvmu_vm_create(unsigned mem_mib)
{
	REQUIRE(mem_mib >= 2 && mem_mib <= 4096);
	struct kvmu_vm *vm = calloc(1, sizeof(*vm));
	REQUIRE(vm != NULL);
	track_vm(vm, true);
	REQUIRE_OK(ekvm_sys_open(&vm->sys));
	REQUIRE_OK(ekvm_vm_create(vm->sys, 0, &vm->vm));
	vm->mem_size = (uint64_t)mem_mib << 20;
	/* Intel wants a TSS area below 4 GiB that no slot uses; harmless on AMD */
	REQUIRE_OK(ekvm_vm_set_tss_addr(vm->vm, 0xfffbd000));
	int r = ekvm_guest_mem_create(vm->vm, 0, 0, vm->mem_size, &vm->gmem);
	if (r < 0)
		TEST_FAIL("%u MiB of guest memory: %s", mem_mib, strerror(-r));
	vm->mem = ekvm_guest_mem_host(vm->gmem);
	return vm;
}

void kvmu_vm_destroy(struct kvmu_vm *vm)
{
	if (!vm)
		return;
	for (int i = 0; i < KVMU_MAX_VCPUS; i++) {
		if (vm->vcpus[i]) {
			ekvm_vcpu_destroy(vm->vcpus[i]->vcpu);
			free(vm->vcpus[i]->cpuid);
			free(vm->vcpus[i]);
			vm->vcpus[i] = NULL;
		}
	}
	ekvm_guest_mem_destroy(vm->gmem);
	ekvm_vm_destroy(vm->vm);
	ekvm_sys_close(vm->sys);
	free(vm->cpuid);
	track_vm(vm, false);
	free(vm);
}

bool kvmu_gpa_ok(const struct kvmu_vm *vm, uint64_t gpa, uint64_t len)
{
	return ekvm_guest_mem_ptr(vm->gmem, gpa, len) != NULL;
}

void *kvmu_gpa(struct kvmu_vm *vm, uint64_t gpa, uint64_t len)
{
	void *p = ekvm_guest_mem_ptr(vm->gmem, gpa, len);
	if (!p)
		TEST_FAIL("guest memory access [0x%" PRIx64 ", +0x%" PRIx64
			  ") outside the 0x%" PRIx64 " bytes of guest memory",
			  gpa, len, vm->mem_size);
	return p;
}

void kvmu_read(struct kvmu_vm *vm, uint64_t gpa, void *buf, uint64_t len)
{
	memcpy(buf, kvmu_gpa(vm, gpa, len), len);
}

void kvmu_write(struct kvmu_vm *vm, uint64_t gpa, const void *buf, uint64_t len)
{
	memcpy(kvmu_gpa(vm, gpa, len), buf, len);
}

uint64_t kvmu_read64(struct kvmu_vm *vm, uint64_t gpa)
{
	uint64_t v;
	kvmu_read(vm, gpa, &v, sizeof(v));
	return v;
}

uint32_t kvmu_read32(struct kvmu_vm *vm, uint64_t gpa)
{
	uint32_t v;
	kvmu_read(vm, gpa, &v, sizeof(v));
	return v;
}

void kvmu_write64(struct kvmu_vm *vm, uint64_t gpa, uint64_t v)
{
	kvmu_write(vm, gpa, &v, sizeof(v));
}

void kvmu_write32(struct kvmu_vm *vm, uint64_t gpa, uint32_t v)
{
	kvmu_write(vm, gpa, &v, sizeof(v));
}

void kvmu_load_guest(struct kvmu_vm *vm, const struct kvmu_guest *g)
{
	REQUIRE(g->size > 0);
	if (g->mode == KVMU_MODE_REAL && g->base + g->size > 0x10000)
		TEST_FAIL("real-mode guest %s does not fit below 64 KiB", g->name);
	kvmu_write(vm, g->base, g->data, g->size);
	vm->loaded = g->data;
}

/* ---------------------------------------------------------------- vCPUs */

void kvmu_get_regs(struct kvmu_vcpu *v, struct kvm_regs *regs)
{
	REQUIRE_OK(ekvm_vcpu_get_regs(v->vcpu, regs));
}

void kvmu_set_regs(struct kvmu_vcpu *v, const struct kvm_regs *regs)
{
	REQUIRE_OK(ekvm_vcpu_set_regs(v->vcpu, regs));
}

void kvmu_get_sregs(struct kvmu_vcpu *v, struct kvm_sregs *sregs)
{
	REQUIRE_OK(ekvm_vcpu_get_sregs(v->vcpu, sregs));
}

void kvmu_set_sregs(struct kvmu_vcpu *v, const struct kvm_sregs *sregs)
{
	REQUIRE_OK(ekvm_vcpu_set_sregs(v->vcpu, sregs));
}

/* The tables block of kvmu VMs: KVMU_GDT_GPA on, 4 GiB identity-mapped with
 * 2 MiB pages (so KVMU_MMIO_GPA is mapped). */
static const struct ekvm_guest_tables kvmu_tables = {
    .gpa = KVMU_GDT_GPA,
    .map_size = 4ull << 30,
    .page_size = EKVM_GUEST_PAGE_2M,
};

void kvmu_vcpu_set_mode(struct kvmu_vcpu *v, enum kvmu_mode mode, uint64_t entry, uint64_t arg)
{
	struct kvmu_vm *vm = v->vm;
	uint64_t stack_top = KVMU_STACK_TOP(v->id);
	switch (mode) {
	case KVMU_MODE_REAL:
		/* the stack segment covers the vCPU's 64 KiB stack area */
		REQUIRE(entry < 0x10000);
		REQUIRE_OK(ekvm_vcpu_setup_real(v->vcpu, 0, (uint16_t)entry,
						(uint16_t)((stack_top - 0x10000) >> 4), 0xfff0));
		break;
	case KVMU_MODE_PROT32:
		REQUIRE(kvmu_gpa_ok(vm, 0, 0x200000));
		REQUIRE(entry <= UINT32_MAX);
		REQUIRE_OK(ekvm_vcpu_setup_prot32(v->vcpu, vm->gmem, &kvmu_tables, (uint32_t)entry,
						  (uint32_t)stack_top));
		break;
	case KVMU_MODE_LONG64:
		REQUIRE(kvmu_gpa_ok(vm, 0, 0x200000));
		REQUIRE_OK(
		    ekvm_vcpu_setup_long64(v->vcpu, vm->gmem, &kvmu_tables, entry, stack_top));
		break;
	default:
		TEST_FAIL("kvm_util: bad mode %d", (int)mode);
	}
	struct kvm_regs regs;
	kvmu_get_regs(v, &regs);
	regs.rdi = v->id;
	regs.rsi = arg;
	kvmu_set_regs(v, &regs);
	v->mode = mode;
}

static void get_supported_cpuid(struct kvmu_vm *vm)
{
	if (!vm->cpuid)
		REQUIRE_OK(ekvm_sys_supported_cpuid(vm->sys, &vm->cpuid));
}

bool kvmu_host_is_amd(struct kvmu_vm *vm)
{
	get_supported_cpuid(vm);
	for (uint32_t i = 0; i < vm->cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &vm->cpuid->entries[i];
		if (e->function == 0)
			return e->ebx == 0x68747541 || e->ebx == 0x6f677948; /* "Auth", "Hygo" */
	}
	return false;
}

static size_t cpuid_size(uint32_t nent)
{
	return sizeof(struct kvm_cpuid2) + nent * sizeof(struct kvm_cpuid_entry2);
}

/* KVM's supported CPUID, with this vCPU's APIC id in leaves 1, 0xb, 0x1f. */
static void set_cpuid(struct kvmu_vcpu *v)
{
	struct kvmu_vm *vm = v->vm;
	get_supported_cpuid(vm);
	size_t size = cpuid_size(vm->cpuid->nent);
	struct kvm_cpuid2 *c = malloc(size);
	REQUIRE(c != NULL);
	memcpy(c, vm->cpuid, size);
	v->cpuid = c;
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | (v->id << 24);
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = v->id;
	}
	REQUIRE_OK(ekvm_vcpu_set_cpuid2(v->vcpu, c));
}

void kvmu_vcpu_set_cpuid_entry(struct kvmu_vcpu *v, const struct kvm_cpuid_entry2 *entry)
{
	struct kvm_cpuid2 *c = v->cpuid;
	uint32_t i;
	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function == entry->function &&
		    c->entries[i].index == entry->index)
			break;
	if (i == c->nent) {
		c = realloc(c, cpuid_size(c->nent + 1));
		REQUIRE(c != NULL);
		v->cpuid = c;
		c->nent++;
	}
	c->entries[i] = *entry;
	REQUIRE_OK(ekvm_vcpu_set_cpuid2(v->vcpu, c));
}

struct kvmu_vcpu *kvmu_vcpu_add(struct kvmu_vm *vm, unsigned id, enum kvmu_mode mode,
				uint64_t entry, uint64_t arg)
{
	REQUIRE(id < KVMU_MAX_VCPUS);
	REQUIRE(vm->vcpus[id] == NULL);
	struct kvmu_vcpu *v = calloc(1, sizeof(*v));
	REQUIRE(v != NULL);
	vm->vcpus[id] = v;
	v->vm = vm;
	v->id = id;
	v->timeout_ms = KVMU_RUN_TIMEOUT_MS;
	REQUIRE_OK(ekvm_vcpu_create(vm->vm, id, &v->vcpu));
	v->run = ekvm_vcpu_run_area(v->vcpu);
	REQUIRE(v->run != NULL);
	set_cpuid(v);
	kvmu_vcpu_set_mode(v, mode, entry, arg);
	return v;
}

struct kvmu_vcpu *kvmu_vcpu_add_guest(struct kvmu_vm *vm, unsigned id, const struct kvmu_guest *g,
				      uint64_t arg)
{
	if (vm->loaded != g->data)
		kvmu_load_guest(vm, g);
	return kvmu_vcpu_add(vm, id, g->mode, g->base, arg);
}

struct kvmu_vm *kvmu_vm_create_with_guest(unsigned mem_mib, const struct kvmu_guest *g,
					  struct kvmu_vcpu **vcpu0)
{
	struct kvmu_vm *vm = kvmu_vm_create(mem_mib);
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, g, 0);
	if (vcpu0)
		*vcpu0 = v;
	return vm;
}

/* ---------------------------------------------------------------- running */

/* The run watchdog: a per-thread POSIX timer signalling this thread; its
 * handler sets immediate_exit on the vCPU being run, so KVM_RUN returns
 * EINTR (an Intr exit). */
#define WATCHDOG_SIGNAL (SIGRTMIN + 3)
static __thread struct kvmu_vcpu *wd_vcpu;
static __thread volatile sig_atomic_t wd_fired;
static __thread timer_t wd_timer;
static __thread bool wd_have_timer;

static void wd_handler(int sig)
{
	(void)sig;
	struct kvmu_vcpu *v = wd_vcpu;
	wd_fired = 1;
	if (v)
		ekvm_vcpu_set_immediate_exit(v->vcpu, true);
}

static void wd_arm(struct kvmu_vcpu *v)
{
	if (!wd_have_timer) {
		struct sigaction sa = {.sa_handler = wd_handler};
		sigemptyset(&sa.sa_mask);
		REQUIRE(sigaction(WATCHDOG_SIGNAL, &sa, NULL) == 0);
		struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID,
				       .sigev_signo = WATCHDOG_SIGNAL};
		sev._sigev_un._tid = gettid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &wd_timer) != 0)
			TEST_FAIL("timer_create: %s", strerror(errno));
		wd_have_timer = true;
	}
	struct itimerspec its = {.it_value = {.tv_sec = v->timeout_ms / 1000,
					      .tv_nsec = (long)(v->timeout_ms % 1000) * 1000000}};
	wd_fired = 0;
	wd_vcpu = v;
	REQUIRE(timer_settime(wd_timer, 0, &its, NULL) == 0);
}

/* Returns whether the watchdog fired during the run. */
static bool wd_disarm(struct kvmu_vcpu *v)
{
	struct itimerspec off = {0};
	REQUIRE(timer_settime(wd_timer, 0, &off, NULL) == 0);
	wd_vcpu = NULL;
	if (!wd_fired)
		return false;
	ekvm_vcpu_set_immediate_exit(v->vcpu, false);
	return true;
}

const struct ekvm_exit *kvmu_run(struct kvmu_vcpu *v)
{
	bool fired = false;
	int r;
	v->timed_out = false;
	if (v->timeout_ms) {
		wd_arm(v);
		r = ekvm_vcpu_run(v->vcpu, &v->exit);
		fired = wd_disarm(v);
	} else {
		r = ekvm_vcpu_run(v->vcpu, &v->exit);
	}
	if (r < 0)
		TEST_FAIL("KVM_RUN of vCPU %u failed: %d (%s)", v->id, r, test_errno_name(r));
	if (fired && v->exit.kind == EKVM_EXIT_INTR) {
		v->timed_out = true;
		if (!v->timeout_ok) {
			struct kvm_regs regs = {0};
			ekvm_vcpu_get_regs(v->vcpu, &regs);
			TEST_FAIL("vCPU %u: no exit within %u ms (guest rip 0x%llx)", v->id,
				  v->timeout_ms, (unsigned long long)regs.rip);
		}
	}
	return &v->exit;
}

bool kvmu_exit_is_ucall(const struct ekvm_exit *exit)
{
	return exit->kind == EKVM_EXIT_IO_OUT && exit->u.io.port == UCALL_PORT;
}

/* Copies the NUL-terminated guest string at gpa into buf (truncated). */
static void read_guest_str(struct kvmu_vm *vm, uint64_t gpa, char *buf, size_t size)
{
	size_t i = 0;
	if (gpa)
		for (; i + 1 < size && kvmu_gpa_ok(vm, gpa + i, 1) && vm->mem[gpa + i]; i++)
			buf[i] = (char)vm->mem[gpa + i];
	buf[i] = '\0';
}

void kvmu_decode_ucall(struct kvmu_vcpu *v, struct kvmu_ucall *uc)
{
	const struct ekvm_exit *e = &v->exit;
	char desc[256];
	if (!kvmu_exit_is_ucall(e) || e->u.io.size != 4 || e->u.io.count != 1 || !e->u.io.data ||
	    e->u.io.len != 4)
		TEST_FAIL("vCPU %u: not a ucall: %s", v->id, kvmu_exit_str(e, desc, sizeof(desc)));
	uint32_t gpa;
	memcpy(&gpa, e->u.io.data, sizeof(gpa));
	if (!kvmu_gpa_ok(v->vm, gpa, sizeof(struct ucall_msg)))
		TEST_FAIL("vCPU %u: ucall message at GPA 0x%x outside guest memory", v->id, gpa);
	struct ucall_msg msg;
	kvmu_read(v->vm, gpa, &msg, sizeof(msg));
	if (msg.cmd < UCALL_SYNC || msg.cmd > UCALL_ASSERT_FAIL || msg.nargs > UCALL_MAX_ARGS)
		TEST_FAIL("vCPU %u: malformed ucall at GPA 0x%x: cmd %u, nargs %u", v->id, gpa,
			  msg.cmd, msg.nargs);
	memset(uc, 0, sizeof(*uc));
	uc->cmd = msg.cmd;
	uc->line = msg.line;
	uc->nargs = msg.nargs;
	memcpy(uc->args, msg.args, msg.nargs * sizeof(uint64_t));
	read_guest_str(v->vm, msg.file, uc->file, sizeof(uc->file));
	read_guest_str(v->vm, msg.text, uc->text, sizeof(uc->text));
}

static const char *ucall_name(uint32_t cmd)
{
	switch (cmd) {
	case UCALL_SYNC:
		return "SYNC";
	case UCALL_DONE:
		return "DONE";
	case UCALL_ASSERT_FAIL:
		return "ASSERT_FAIL";
	default:
		return "?";
	}
}

uint32_t kvmu_run_ucall_at(const char *file, int line, struct kvmu_vcpu *v, struct kvmu_ucall *uc,
			   bool raw)
{
	kvmu_run(v);
	if (!kvmu_exit_is_ucall(&v->exit))
		kvmu_fail_exit_at(file, line, v, "expected a ucall");
	kvmu_decode_ucall(v, uc);
	if (uc->cmd == UCALL_ASSERT_FAIL && !raw) {
		char vals[4 * 24] = "";
		size_t n = 0;
		for (uint32_t i = 0; i < uc->nargs; i++)
			n += (size_t)snprintf(vals + n, sizeof(vals) - n, "%s0x%" PRIx64,
					      i ? ", " : " (values: ", uc->args[i]);
		if (uc->nargs)
			snprintf(vals + n, sizeof(vals) - n, ")");
		test_fail_at(file, line, true, "guest assertion failed at %s:%u: %s%s", uc->file,
			     uc->line, uc->text[0] ? uc->text : "?", vals);
	}
	return uc->cmd;
}

void kvmu_expect_sync_at(const char *file, int line, struct kvmu_vcpu *v, struct kvmu_ucall *uc)
{
	struct kvmu_ucall tmp;
	if (!uc)
		uc = &tmp;
	uint32_t cmd = kvmu_run_ucall_at(file, line, v, uc, false);
	if (cmd != UCALL_SYNC)
		test_fail_at(file, line, true, "vCPU %u: expected a SYNC ucall, got %s from %s:%u",
			     v->id, ucall_name(cmd), uc->file, uc->line);
}

void kvmu_expect_done_at(const char *file, int line, struct kvmu_vcpu *v)
{
	struct kvmu_ucall uc;
	uint32_t cmd = kvmu_run_ucall_at(file, line, v, &uc, false);
	if (cmd != UCALL_DONE)
		test_fail_at(file, line, true, "vCPU %u: expected a DONE ucall, got %s from %s:%u",
			     v->id, ucall_name(cmd), uc.file, uc.line);
}

const char *kvmu_exit_str(const struct ekvm_exit *e, char *buf, size_t size)
{
	const char *name = ekvm_exit_kind_name(e->kind);
	switch (e->kind) {
	case EKVM_EXIT_IO_IN:
	case EKVM_EXIT_IO_OUT: {
		uint32_t first = 0;
		if (e->u.io.data && e->u.io.len)
			memcpy(&first, e->u.io.data, e->u.io.len < 4 ? e->u.io.len : 4);
		snprintf(buf, size, "%s port 0x%x size %u count %u data[0..3] 0x%x", name,
			 e->u.io.port, e->u.io.size, e->u.io.count, first);
		break;
	}
	case EKVM_EXIT_MMIO_READ:
	case EKVM_EXIT_MMIO_WRITE: {
		uint64_t d = 0;
		memcpy(&d, e->u.mmio.data, e->u.mmio.len <= 8 ? e->u.mmio.len : 8);
		snprintf(buf, size, "%s addr 0x%" PRIx64 " len %u data 0x%" PRIx64, name,
			 e->u.mmio.addr, e->u.mmio.len, d);
		break;
	}
	case EKVM_EXIT_INTERNAL_ERROR:
		snprintf(buf, size,
			 "%s suberror %u (%s) ndata %u data 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64,
			 name, e->u.internal.suberror,
			 ekvm_internal_error_name(e->u.internal.suberror)
			     ? ekvm_internal_error_name(e->u.internal.suberror)
			     : "?",
			 e->u.internal.ndata, e->u.internal.data[0], e->u.internal.data[1],
			 e->u.internal.data[2]);
		break;
	case EKVM_EXIT_FAIL_ENTRY:
		snprintf(buf, size, "%s hardware reason 0x%" PRIx64 " cpu %u", name,
			 e->u.fail_entry.hardware_entry_failure_reason, e->u.fail_entry.cpu);
		break;
	case EKVM_EXIT_DEBUG:
		snprintf(buf, size, "%s exception %u pc 0x%llx dr6 0x%llx dr7 0x%llx", name,
			 e->u.debug.exception, (unsigned long long)e->u.debug.pc,
			 (unsigned long long)e->u.debug.dr6, (unsigned long long)e->u.debug.dr7);
		break;
	case EKVM_EXIT_X86_RDMSR:
	case EKVM_EXIT_X86_WRMSR:
		snprintf(buf, size, "%s index 0x%x reason %u value 0x%" PRIx64, name,
			 e->u.msr.index, e->u.msr.reason, e->u.msr.value);
		break;
	case EKVM_EXIT_SYSTEM_EVENT:
		snprintf(buf, size, "%s type %u (%s) ndata %u", name, e->u.system_event.type,
			 ekvm_system_event_name(e->u.system_event.type)
			     ? ekvm_system_event_name(e->u.system_event.type)
			     : "?",
			 e->u.system_event.ndata);
		break;
	case EKVM_EXIT_HYPERCALL:
		snprintf(buf, size, "%s nr %" PRIu64 " args 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64,
			 name, e->u.hypercall.nr, e->u.hypercall.args[0], e->u.hypercall.args[1],
			 e->u.hypercall.args[2]);
		break;
	default:
		snprintf(buf, size, "%s (exit_reason %u)", name, e->raw_reason);
		break;
	}
	return buf;
}

void kvmu_fail_exit_at(const char *file, int line, struct kvmu_vcpu *v, const char *what)
{
	char desc[256], extra[400] = "";
	struct kvm_regs regs;
	kvmu_exit_str(&v->exit, desc, sizeof(desc));
	if (kvmu_exit_is_ucall(&v->exit) && v->exit.u.io.size == 4 && v->exit.u.io.data) {
		/* say which ucall it was: often a guest assertion */
		uint32_t gpa;
		struct ucall_msg msg;
		memcpy(&gpa, v->exit.u.io.data, sizeof(gpa));
		if (kvmu_gpa_ok(v->vm, gpa, sizeof(msg))) {
			struct kvmu_ucall uc = {0};
			kvmu_read(v->vm, gpa, &msg, sizeof(msg));
			read_guest_str(v->vm, msg.file, uc.file, sizeof(uc.file));
			read_guest_str(v->vm, msg.text, uc.text, sizeof(uc.text));
			snprintf(extra, sizeof(extra),
				 " = ucall %s from %s:%u %s (args 0x%" PRIx64 ", 0x%" PRIx64 ")",
				 ucall_name(msg.cmd), uc.file, msg.line, uc.text, msg.args[0],
				 msg.args[1]);
		}
	}
	if (ekvm_vcpu_get_regs(v->vcpu, &regs) == 0)
		test_fail_at(file, line, true, "vCPU %u: %s: unexpected exit %s%s (rip 0x%llx)",
			     v->id, what, desc, extra, (unsigned long long)regs.rip);
	test_fail_at(file, line, true, "vCPU %u: %s: unexpected exit %s%s", v->id, what, desc,
		     extra);
	__builtin_unreachable();
}
