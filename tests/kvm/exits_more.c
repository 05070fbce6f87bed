/* tests/kvm/exits_more.c - TprAccess, IoapicEoi, Hyperv (SynIC), Xen and DirtyRingFull exits. */
#include "../lib/kvm_util.h"

#include <stdlib.h>
#include <sys/mman.h>

enum { MORE_TPR = 1, MORE_EOI, MORE_SYNIC, MORE_XEN, MORE_DIRTY };
#define MORE_ARG(scenario, low) (((uint64_t)(scenario) << 32) | (uint32_t)(low))

/* Gives v Hyper-V's CPUID leaves (KVM opens its Hyper-V MSRs to the guest
 * only when leaf 0x40000001 says "Hv#1"). */
static void set_hyperv_cpuid(struct kvmu_vcpu *v)
{
	struct kvm_cpuid_entry2 vendor = {
	    .function = 0x40000000,
	    .eax = 0x40000005,
	    .ebx = 0x7263694d, /* "Microsoft Hv" */
	    .ecx = 0x666f736f,
	    .edx = 0x76482074,
	};
	struct kvm_cpuid_entry2 interface = {.function = 0x40000001, .eax = 0x31237648};
	kvmu_vcpu_set_cpuid_entry(v, &vendor);
	kvmu_vcpu_set_cpuid_entry(v, &interface);
}

/*
 * KVM_TPR_ACCESS_REPORTING with the in-kernel LAPIC: a guest MMIO read and
 * then write of the xAPIC TPR each give a TprAccess exit with the RIP of
 * the accessing instruction and is_write; the access itself completes in
 * the kernel (the guest reads back what it wrote). With APIC virtualization
 * (APICv, AVIC) the CPU serves TPR accesses without KVM: no exits to see.
 */
KVM_TEST(exits_tpr_access)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_more);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	REQUIRE_OK(ekvm_vm_create_irqchip(vm->vm));
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, MORE_ARG(MORE_TPR, 0));
	struct kvmu_ucall uc;
	const struct ekvm_exit *e;

	REQUIRE_OK(ekvm_vcpu_tpr_access_reporting(v->vcpu, true));
	kvmu_expect_sync(v, &uc);
	uint64_t rd = uc.args[0], wr = uc.args[1];
	e = kvmu_run(v);
	if (kvmu_exit_is_ucall(e))
		TEST_SKIP("no TPR access exit: APIC virtualization serves the TPR in hardware");
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_TPR_ACCESS);
	CHECK_EQ(e->raw_reason, KVM_EXIT_TPR_ACCESS);
	CHECK_EQ(e->u.tpr_access.is_write, 0);
	CHECK_EQ(e->u.tpr_access.rip, rd);
	e = kvmu_run(v);
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_TPR_ACCESS);
	CHECK_EQ(e->u.tpr_access.is_write, 1);
	CHECK_EQ(e->u.tpr_access.rip, wr);
	REQUIRE_OK(ekvm_vcpu_tpr_access_reporting(v->vcpu, false));
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.args[0], 0);    /* TPR at reset */
	CHECK_EQ(uc.args[1], 0x20); /* what the guest wrote */
	kvmu_vm_destroy(vm);
}

/*
 * Split irqchip (KVM_CAP_SPLIT_IRQCHIP: LAPIC in the kernel, IOAPIC in user
 * space). A GSI routed as a level-triggered MSI to vector 0x50 makes KVM
 * report the guest's EOI of that vector to user space (KVM computes those
 * vectors from the routes, for a LAPIC the route targets): we send the MSI
 * (KVM_SIGNAL_MSI), the guest's handler writes the LAPIC EOI register, and
 * KVM exits IoapicEoi with vector 0x50.
 */
KVM_TEST(exits_ioapic_eoi_split_irqchip)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_more);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	if (ekvm_vm_check_extension(vm->vm, KVM_CAP_SPLIT_IRQCHIP) <= 0)
		TEST_SKIP("no KVM_CAP_SPLIT_IRQCHIP");
	struct kvm_enable_cap cap = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {24}};
	REQUIRE_OK(ekvm_vm_enable_cap(vm->vm, &cap));
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, MORE_ARG(MORE_EOI, 0));
	struct kvmu_ucall uc;

	kvmu_expect_sync(v, &uc); /* APIC on, IF = 1 */
	/* routes set now make KVM rescan them for the (enabled) LAPIC */
	const uint32_t data = 0x50 | (1u << 14) | (1u << 15); /* fixed, assert, level */
	struct {
		struct kvm_irq_routing r;
		struct kvm_irq_routing_entry e[1];
	} routing = {
	    .r = {.nr = 1},
	    .e = {{.gsi = 5,
		   .type = KVM_IRQ_ROUTING_MSI,
		   .u.msi = {.address_lo = 0xfee00000, .address_hi = 0, .data = data}}},
	};
	REQUIRE_OK(ekvm_vm_set_gsi_routing(vm->vm, &routing.r));
	struct kvm_msi msi = {.address_lo = 0xfee00000, .data = data};
	int r = ekvm_vm_signal_msi(vm->vm, &msi);
	CHECK(r > 0);
	const struct ekvm_exit *e = kvmu_run(v);
	if (kvmu_exit_is_ucall(e) && !kvmu_host_is_amd(vm)) {
		kvmu_decode_ucall(v, &uc);
		if (uc.cmd == UCALL_SYNC && uc.args[0] == 1 && uc.args[1] == 0x50)
			TEST_SKIP("the guest took the MSI and EOIed it without an IoapicEoi exit: "
				  "seen on a nested VMX host (APIC virtualization)");
	}
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_IOAPIC_EOI);
	CHECK_EQ(e->raw_reason, KVM_EXIT_IOAPIC_EOI);
	CHECK_EQ(e->u.eoi.vector, 0x50);
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.args[0], 1);
	CHECK_EQ(uc.args[1], 0x50);
	kvmu_vm_destroy(vm);
}

/*
 * Hyper-V SynIC (KVM_CAP_HYPERV_SYNIC on the vCPU, in-kernel irqchip): the
 * guest's write of HV_X64_MSR_SCONTROL exits Hyperv/SYNIC with the MSR and
 * the new control value; the write took effect (the guest reads it back).
 */
KVM_TEST(exits_hyperv_synic)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_more);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	if (ekvm_vm_check_extension(vm->vm, KVM_CAP_HYPERV_SYNIC) <= 0)
		TEST_SKIP("KVM without Hyper-V SynIC emulation (KVM_CAP_HYPERV_SYNIC)");
	REQUIRE_OK(ekvm_vm_create_irqchip(vm->vm));
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, MORE_ARG(MORE_SYNIC, 0));
	set_hyperv_cpuid(v);
	struct kvm_enable_cap cap = {.cap = KVM_CAP_HYPERV_SYNIC};
	REQUIRE_OK(ekvm_vcpu_enable_cap(v->vcpu, &cap));
	struct kvmu_ucall uc;

	const struct ekvm_exit *e = kvmu_run(v);
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_HYPERV);
	CHECK_EQ(e->raw_reason, KVM_EXIT_HYPERV);
	REQUIRE(e->u.hyperv != NULL);
	CHECK_EQ(e->u.hyperv->type, KVM_EXIT_HYPERV_SYNIC);
	CHECK_EQ(e->u.hyperv->u.synic.msr, 0x40000080);
	CHECK_EQ(e->u.hyperv->u.synic.control, 1);
	kvmu_expect_sync(v, &uc);
	CHECK_EQ(uc.args[0], 1);
	kvmu_vm_destroy(vm);
}

/*
 * Xen HVM emulation with KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL: the guest's
 * hypercall (RAX = 18, console_io, which KVM does not handle itself) exits
 * Xen/HCALL with the number, long mode, CPL 0 and the six arguments; the
 * host's result comes back in the guest's RAX (the guest checks it).
 */
KVM_TEST(exits_xen_hypercall)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_more);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	int xen = ekvm_vm_check_extension(vm->vm, KVM_CAP_XEN_HVM);
	if (xen <= 0 || !(xen & KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL))
		TEST_SKIP("KVM without Xen hypercall interception (KVM_CAP_XEN_HVM 0x%x)", xen);
	/* with a hypercall page MSR: KVM turns its Xen emulation on only for a
	 * VM that names one (with msr 0 the VMCALL is KVM's own: -KVM_ENOSYS);
	 * 0x40000200, in the synthetic range newer kernels require */
	struct kvm_xen_hvm_config cfg = {.flags = KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL,
					 .msr = 0x40000200};
	REQUIRE_OK(EKVM_IOCTL(ekvm_vm_ioctl_raw, vm->vm, KVM_XEN_HVM_CONFIG, &cfg));
	struct kvmu_vcpu *v = kvmu_vcpu_add_guest(vm, 0, &g, MORE_ARG(MORE_XEN, 0));

	v->timeout_ms = 2000;
	v->timeout_ok = true;
	const struct ekvm_exit *e = kvmu_run(v);
	if (v->timed_out && !kvmu_host_is_amd(vm))
		TEST_SKIP("the guest's VMCALL never reaches KVM on this host (nested VMX; "
			  "see exits_hypercall_map_gpa_range)");
	KVMU_REQUIRE_EXIT(v, EKVM_EXIT_XEN);
	CHECK_EQ(e->raw_reason, KVM_EXIT_XEN);
	REQUIRE(e->u.xen != NULL);
	CHECK_EQ(e->u.xen->type, KVM_EXIT_XEN_HCALL);
	CHECK_EQ(e->u.xen->u.hcall.input, 18);
	CHECK_EQ(e->u.xen->u.hcall.longmode, 1);
	CHECK_EQ(e->u.xen->u.hcall.cpl, 0);
	CHECK_EQ(e->u.xen->u.hcall.params[0], 0xa0);
	CHECK_EQ(e->u.xen->u.hcall.params[1], 0xa1);
	CHECK_EQ(e->u.xen->u.hcall.params[2], 0xa2);
	CHECK_EQ(e->u.xen->u.hcall.params[3], 0x1010);
	CHECK_EQ(e->u.xen->u.hcall.params[4], 0x1008);
	CHECK_EQ(e->u.xen->u.hcall.params[5], 0x1009);
	e->u.xen->u.hcall.result = 0x5e5e;
	v->timeout_ok = false;
	kvmu_expect_done(v);
	kvmu_vm_destroy(vm);
}

#define DIRTY_GPA   0x40000000ull
#define DIRTY_PAGES 4096u
/* 2048 entries: KVM stops the vCPU at 2048 - 64 - (the CPU's dirty log
 * buffer: 512 with Intel PML, else 0) entries, so the ring never overflows
 * (a full ring would drop entries) */
#define DIRTY_RING_BYTES 32768u

/* Collects the ring's dirty entries (slot 1 offsets into seen[]) through
 * the binding, then resets; returns how many it took. */
static unsigned harvest(struct kvmu_vm *vm, struct kvmu_vcpu *v, bool *seen, unsigned *bad)
{
	struct kvm_dirty_gfn g[256];
	unsigned got = 0;
	int n;
	while ((n = ekvm_vcpu_dirty_ring_harvest(v->vcpu, g, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			if (g[i].slot == 1 && g[i].offset < DIRTY_PAGES)
				seen[g[i].offset] = true;
			else
				(*bad)++;
		}
		got += (unsigned)n;
	}
	REQUIRE_OK(n);
	/* KVM resets exactly the entries we marked */
	CHECK_EQ(ekvm_vm_reset_dirty_rings(vm->vm), (int)got);
	return got;
}

/*
 * Dirty ring (KVM_CAP_DIRTY_LOG_RING, 2048 entries): the guest writes one
 * byte to each of 4096 pages of a dirty-logged slot. Before the ring
 * overflows KVM stops with DirtyRingFull; we harvest and reset, and so on
 * until the guest is done. Every page shows up, from slot 1 only.
 */
KVM_TEST(exits_dirty_ring_full)
{
	struct kvmu_guest g = KVMU_GUEST(lm64_more);
	struct kvmu_vm *vm = kvmu_vm_create(4);
	int max = ekvm_vm_check_extension(vm->vm, KVM_CAP_DIRTY_LOG_RING);
	if (max < (int)DIRTY_RING_BYTES)
		TEST_SKIP("KVM_CAP_DIRTY_LOG_RING: %d", max);
	REQUIRE_OK(ekvm_vm_enable_dirty_ring(vm->vm, DIRTY_RING_BYTES));
	size_t slot_size = (size_t)DIRTY_PAGES * 4096;
	void *mem = mmap(NULL, slot_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	REQUIRE(mem != MAP_FAILED);
	REQUIRE_OK(
	    ekvm_vm_set_memory(vm->vm, 1, KVM_MEM_LOG_DIRTY_PAGES, DIRTY_GPA, slot_size, mem));
	struct kvmu_vcpu *v =
	    kvmu_vcpu_add_guest(vm, 0, &g, MORE_ARG(MORE_DIRTY, DIRTY_GPA | DIRTY_PAGES));
	bool *seen = calloc(DIRTY_PAGES, sizeof(bool));
	REQUIRE(seen != NULL);
	unsigned fulls = 0, bad = 0, total = 0;

	for (;;) {
		const struct ekvm_exit *e = kvmu_run(v);
		if (kvmu_exit_is_ucall(e))
			break;
		KVMU_REQUIRE_EXIT(v, EKVM_EXIT_DIRTY_RING_FULL);
		CHECK_EQ(e->raw_reason, KVM_EXIT_DIRTY_RING_FULL);
		fulls++;
		REQUIRE(fulls < 64);
		unsigned got = harvest(vm, v, seen, &bad);
		if (fulls == 1 && got == DIRTY_RING_BYTES / sizeof(struct kvm_dirty_gfn) &&
		    !kvmu_host_is_amd(vm))
			TEST_SKIP("KVM filled the whole ring before stopping the vCPU (entries are "
				  "lost): seen on a nested VMX host whose dirty logging overruns "
				  "the ring's soft limit");
		CHECK(got > 0);
		total += got;
	}
	struct kvmu_ucall uc;
	kvmu_decode_ucall(v, &uc);
	REQUIRE_EQ(uc.cmd, UCALL_SYNC);
	CHECK_EQ(uc.args[0], DIRTY_PAGES);
	total += harvest(vm, v, seen, &bad);
	unsigned missing = 0;
	for (unsigned i = 0; i < DIRTY_PAGES; i++)
		missing += !seen[i];
	TEST_LOG("%u DirtyRingFull exits, %u entries harvested", fulls, total);
	CHECK(fulls >= 1);
	CHECK_EQ(bad, 0);
	if (missing && !kvmu_host_is_amd(vm))
		TEST_SKIP("%u of %u dirty pages never reached the ring: seen on a nested VMX "
			  "host whose dirty logging (PML) loses entries",
			  missing, DIRTY_PAGES);
	CHECK_EQ(missing, 0);
	CHECK_EQ(((uint8_t *)mem)[5 * 4096], 6);
	free(seen);
	kvmu_vm_destroy(vm);
	munmap(mem, slot_size);
}
