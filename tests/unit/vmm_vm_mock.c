/* tests/unit/vmm_vm_mock.c - a whole VM (memory, platform, devices, ACPI, a loaded kernel) built on the mock hypervisor, no KVM. */
#include "../lib/test.h"

#include "vmm_fixtures.h"
#include "virtio_driver.h"

#include "../../vmm/arch/x86/layout.h"
#include "../../vmm/arch/x86/x86.h"
#include "../../lib/io/util.h"
#include "../../vmm/vm.h"
#include "../../vmm/devstate.h"
#include "../../vmm/virtio.h"

#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A small supported-CPUID table, shaped like KVM's answer on Intel. */
static const struct ehv_x86_cpuid_entry host_cpuid[] = {
    {.function = 0, .eax = 0xd, .ebx = 0x756e6547, .edx = 0x49656e69, .ecx = 0x6c65746e},
    {.function = 1,
     .eax = 0x000906ea,
     .ebx = 0x00100800,
     .ecx = 0x7ffafbff | (1u << 5),
     .edx = 0xbfebfbff},
    {.function = 7, .index = 0, .flags = EHV_CPUID_SIGNIFICANT_INDEX, .ebx = 0x029c6fbf},
    {.function = 0xb, .index = 0, .flags = EHV_CPUID_SIGNIFICANT_INDEX, .eax = 1, .ebx = 2},
    {.function = 0x80000000, .eax = 0x80000008},
    {.function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800},
};

static const struct ehv_x86_cpuid_entry *find(const struct ehv_x86_cpuid_entry *t, int n,
					      uint32_t f)
{
	for (int i = 0; i < n; i++)
		if (t[i].function == f)
			return &t[i];
	return NULL;
}

TEST(vmm_vm_builds_on_the_mock_hypervisor)
{
	/* the kernel, as a file */
	char kernel[] = "/tmp/ember-unit-vm-XXXXXX";
	REQUIRE_OK(fx_bzimage_file(kernel, 65536));

	struct ember_config *cfg;
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&cfg));
	REQUIRE_OK(ember_config_set_console(cfg, -1, -1));
	REQUIRE_OK(ember_config_set(cfg, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(cfg, "initrd", kernel, NULL)); /* any file */
	REQUIRE_OK(ember_config_set(cfg, "cpus", "2", NULL));
	REQUIRE_OK(ember_config_set(cfg, "mem", "128M", NULL));
	int r = ember_config_resolve(cfg, &err);
	if (r < 0)
		TEST_FAIL("resolve: %s", err.msg);

	struct ehv_hypervisor *hyp;
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, host_cpuid,
						sizeof(host_cpuid) / sizeof(host_cpuid[0])));

	struct ember_vm *vm = (struct ember_vm *)1;
	CHECK_ERR(ember_vm_create_on(cfg, NULL, &vm, &err), -EINVAL);
	CHECK(vm == NULL);
	r = ember_vm_create_on(cfg, hyp, &vm, &err);
	if (r < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
	REQUIRE(vm->hyp == hyp && vm->hv && vm->ncpus == 2);
	CHECK_EQ(ehv_vm_backend(vm->hv), EHV_BACKEND_MOCK);

	/* memory: every region of guest RAM reached a slot of the mock */
	struct ehv_mock_vm_state st;
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	REQUIRE(vm->mem.nregions >= 1);
	uint64_t mapped = 0;
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct vmm_mem_region *reg = &vm->mem.regions[i];
		CHECK(st.slots[i].used);
		CHECK_EQ(st.slots[i].gpa, reg->gpa);
		CHECK_EQ(st.slots[i].size, reg->size);
		CHECK(st.slots[i].hva == vm->mem.host + reg->offset);
		mapped += st.slots[i].size;
	}
	CHECK_EQ(mapped, 128ull << 20);

	/* the platform step: irqchip and PIT with the dummy speaker port */
	CHECK(st.platform);
	CHECK_EQ(st.platform_flags, EHV_PLATFORM_PIT | EHV_PLATFORM_PIT_SPEAKER_DUMMY);
	CHECK_EQ(st.vcpus_created, 2);

	/* CPUID per vCPU: filtered from the hypervisor's table, APIC ID = index */
	for (unsigned i = 0; i < 2; i++) {
		struct ehv_x86_cpuid_entry c[EHV_CPUID_MAX_ENTRIES];
		int n = ehv_mock_vcpu_cpuid(vm->vcpus[i], c, EHV_CPUID_MAX_ENTRIES);
		REQUIRE(n > 0 && n <= EHV_CPUID_MAX_ENTRIES);
		const struct ehv_x86_cpuid_entry *l1 = find(c, n, 1);
		REQUIRE(l1);
		CHECK_EQ(l1->ebx >> 24, i);		  /* initial APIC ID */
		CHECK(l1->ecx & (1u << 31));		  /* hypervisor bit */
		CHECK(!(l1->ecx & (1u << 5)));		  /* VMX hidden */
		CHECK(find(c, n, 0x40000000) != NULL);	  /* KVM signature leaf added */
		CHECK_EQ(find(c, n, 0)->ebx, 0x756e6547); /* vendor kept */
	}

	/* MSRs: the boot set reached each vCPU */
	struct ehv_msr want[16], got[16];
	unsigned nm = vmm_x86_boot_msrs(want, 16);
	REQUIRE(nm > 0);
	bool nonzero = false;
	for (unsigned i = 0; i < 2; i++) {
		for (unsigned k = 0; k < nm; k++)
			got[k] = (struct ehv_msr){.index = want[k].index, .value = ~0ull};
		REQUIRE_EQ(ehv_vcpu_get_msrs(vm->vcpus[i], got, nm), nm);
		for (unsigned k = 0; k < nm; k++) {
			CHECK_EQ(got[k].value, want[k].value);
			nonzero |= want[k].value != 0;
		}
	}
	CHECK(nonzero); /* so a vCPU that got nothing (reads 0) would fail */

	/* the APs stay as the hypervisor makes them: waiting for INIT/SIPI */
	enum ehv_mp_state mp;
	CHECK_OK(ehv_vcpu_get_mp_state(vm->vcpus[0], &mp));
	CHECK_EQ(mp, EHV_MP_RUNNABLE);
	CHECK_OK(ehv_vcpu_get_mp_state(vm->vcpus[1], &mp));
	CHECK_EQ(mp, EHV_MP_UNINITIALIZED);

	/* the entry registers: vCPU 0 at the 64-bit entry of the loaded bzImage */
	struct ehv_x86_regs regs;
	struct ehv_x86_sregs sregs;
	REQUIRE_OK(ehv_vcpu_get_regs(vm->vcpus[0], &regs));
	REQUIRE_OK(ehv_vcpu_get_sregs(vm->vcpus[0], &sregs));
	CHECK_EQ(regs.rip, 0x100200);
	CHECK_EQ(regs.rsi, X86_ZERO_PAGE_ADDR);
	CHECK_EQ(sregs.cr3, X86_PML4_ADDR);
	CHECK_EQ(sregs.efer, 0x500);
	CHECK_EQ(sregs.cs.l, 1);
	CHECK_EQ(sregs.cs.selector, X86_SEL_CODE64);
	REQUIRE_OK(ehv_vcpu_get_regs(vm->vcpus[1], &regs));
	CHECK_EQ(regs.rip, 0xfff0); /* the AP keeps its reset state */

	/* the kernel's protected-mode code is in guest memory at 1 MiB */
	const uint8_t *k = vmm_mem_ptr(&vm->mem, 0x100000, 16);
	REQUIRE(k);
	for (unsigned i = 0; i < 16; i++)
		CHECK_EQ(k[i], (uint8_t)(i * 7 + 1));
	/* ACPI: the RSDP signature in the BIOS area */
	const uint8_t *acpi = vmm_mem_ptr(&vm->mem, X86_ACPI_ADDR, X86_ACPI_SIZE);
	REQUIRE(acpi);
	CHECK(memmem(acpi, X86_ACPI_SIZE, "RSD PTR ", 8) != NULL);

	/* a device on the PIO bus drives its IRQ line into the mock's irqchip:
	 * the UART with OUT2 set and the THR-empty interrupt enabled raises
	 * IRQ 4 */
	CHECK_EQ(st.levels[X86_IRQ_COM1], 0);
	uint64_t v = 0;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_COM1 + 5, &v, 1, false, 0)); /* LSR */
	CHECK_EQ(v & 0x60, 0x60);
	v = 0x08;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_COM1 + 4, &v, 1, true, 0)); /* MCR: OUT2 */
	v = 0x02;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_COM1 + 1, &v, 1, true, 0)); /* IER: THRI */
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	CHECK_EQ(st.levels[X86_IRQ_COM1], 1);
	CHECK(st.rising[X86_IRQ_COM1] >= 1);

	ember_vm_destroy(vm);
	/* the hypervisor was borrowed: still usable */
	CHECK_EQ(ehv_hypervisor_supported_cpuid(hyp, NULL, 0),
		 (int)(sizeof(host_cpuid) / sizeof(host_cpuid[0])));
	ehv_hypervisor_close(hyp);
	ember_config_free(cfg);
	unlink(kernel);
}

static void rtc_out(struct ember_vm *vm, uint8_t reg, uint8_t val)
{
	uint64_t v = reg;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_RTC, &v, 1, true, 0));
	v = val;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_RTC + 1, &v, 1, true, 0));
}

static uint8_t rtc_in(struct ember_vm *vm, uint8_t reg)
{
	uint64_t v = reg;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_RTC, &v, 1, true, 0));
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_RTC + 1, &v, 1, false, 0));
	return (uint8_t)v;
}

/* Runs the VM's loop for ms milliseconds as its I/O thread would, reading
 * register C whenever IRQ 8 is high (the guest's handler). Returns the
 * rising edges of IRQ 8 the mock's irqchip saw meanwhile. */
static uint32_t rtc_run(struct ember_vm *vm, int ms)
{
	struct ehv_mock_vm_state st;
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	uint32_t before = st.rising[X86_IRQ_RTC];
	uint64_t end = vmm_now_ns() + (uint64_t)ms * 1000000;
	while (vmm_now_ns() < end) {
		CHECK(ember_loop_run_once(ember_vm_loop(vm), 5) >= 0);
		REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
		if (st.levels[X86_IRQ_RTC])
			CHECK(rtc_in(vm, 0x0c) & 0x80); /* IRQF, cleared by the read */
	}
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	return st.rising[X86_IRQ_RTC] - before;
}

/* A VM on the mock hypervisor with a small bzImage (written to kernel, a
 * mkstemp template) and, if disk is not NULL, that image as --disk. */
static struct ember_vm *mock_vm(char *kernel, const char *disk, struct ehv_hypervisor **hyp,
				struct ember_config **cfg)
{
	REQUIRE_OK(fx_bzimage_file(kernel, 65536));
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(cfg));
	REQUIRE_OK(ember_config_set_console(*cfg, -1, -1));
	REQUIRE_OK(ember_config_set(*cfg, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(*cfg, "initrd", kernel, NULL));
	REQUIRE_OK(ember_config_set(*cfg, "mem", "128M", NULL));
	if (disk)
		REQUIRE_OK(ember_config_set(*cfg, "disk", disk, NULL));
	if (ember_config_resolve(*cfg, &err) < 0)
		TEST_FAIL("resolve: %s", err.msg);
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, hyp));
	REQUIRE_OK(ehv_mock_set_supported_cpuid(*hyp, host_cpuid,
						sizeof(host_cpuid) / sizeof(host_cpuid[0])));
	struct ember_vm *vm;
	if (ember_vm_create_on(*cfg, *hyp, &vm, &err) < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
	return vm;
}

/* The board drives the RTC's interrupts with a timer of the VM's loop:
 * enabling the periodic interrupt (register B.PIE) at rate 6 of register A
 * makes IRQ 8 rise about 1024 times a second, a slower rate fewer times,
 * and clearing PIE stops it. */
TEST(vmm_vm_rtc_interrupts_come_from_the_boards_timer)
{
	char kernel[] = "/tmp/ember-unit-vm-XXXXXX";
	struct ehv_hypervisor *hyp;
	struct ember_config *cfg;
	struct ember_vm *vm = mock_vm(kernel, NULL, &hyp, &cfg);

	/* nothing enabled: no interrupt */
	CHECK_EQ(rtc_run(vm, 100), 0);
	/* PIE at 1024 Hz (A = 0x26, the reset value) */
	rtc_out(vm, 0x0a, 0x26);
	rtc_out(vm, 0x0b, 0x42);
	uint32_t fast = rtc_run(vm, 200);
	TEST_LOG("IRQ 8 at 1024 Hz: %u rising edges in 200 ms", fast);
	CHECK(fast >= 20);  /* a loaded host's loop still runs the timer */
	CHECK(fast <= 207); /* never more than the rate allows */
	/* 8 Hz (rate 13) */
	rtc_out(vm, 0x0a, 0x2d);
	uint32_t slow = rtc_run(vm, 500);
	TEST_LOG("IRQ 8 at 8 Hz: %u rising edges in 500 ms", slow);
	CHECK(slow >= 2 && slow <= 6);
	/* PIE cleared: the timer stops */
	rtc_out(vm, 0x0b, 0x02);
	rtc_in(vm, 0x0c);
	CHECK_EQ(rtc_run(vm, 200), 0);
	/* devices paused (what ember_vm_pause sets): the guest's enable is
	 * seen only at the kick after resume, then it ticks again */
	pthread_mutex_lock(&vm->dev_lock);
	vm->devs_paused = true;
	pthread_mutex_unlock(&vm->dev_lock);
	rtc_out(vm, 0x0a, 0x26);
	rtc_out(vm, 0x0b, 0x42);
	rtc_in(vm, 0x0c);
	CHECK_EQ(rtc_run(vm, 200), 0);
	pthread_mutex_lock(&vm->dev_lock);
	vm->devs_paused = false;
	pthread_mutex_unlock(&vm->dev_lock);
	vmm_board_devices_kick(vm);
	uint32_t resumed = rtc_run(vm, 200);
	TEST_LOG("IRQ 8 at 1024 Hz after resume: %u rising edges in 200 ms", resumed);
	CHECK(resumed >= 20);

	ember_vm_destroy(vm);
	ehv_hypervisor_close(hyp);
	ember_config_free(cfg);
	unlink(kernel);
}

/* ------------------------------------------------------------ device state */

/* A VM on the mock from kernel, with a disk of img (NULL: none) and an rng. */
static struct ember_vm *devstate_vm(struct ehv_hypervisor *hyp, const char *kernel, const char *img,
				    struct ember_config **cfg)
{
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(cfg));
	REQUIRE_OK(ember_config_set_console(*cfg, -1, -1));
	REQUIRE_OK(ember_config_set(*cfg, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(*cfg, "initrd", kernel, NULL));
	REQUIRE_OK(ember_config_set(*cfg, "mem", "64M", NULL));
	if (img)
		REQUIRE_OK(ember_config_set(*cfg, "disk", img, NULL));
	REQUIRE_OK(ember_config_set(*cfg, "rng", "", NULL));
	if (ember_config_resolve(*cfg, &err) < 0)
		TEST_FAIL("resolve: %s", err.msg);
	struct ember_vm *vm;
	if (ember_vm_create_on(*cfg, hyp, &vm, &err) < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
	return vm;
}

/* Zeroes the RTC's interrupt flags (the last byte of its section) in a
 * saved state. */
static void rtc_flags_clear(uint8_t *buf, size_t len)
{
	uint8_t *p = memmem(buf, len, "\x08rtc_cmos", 9);
	REQUIRE(p != NULL && p + 17 <= buf + len);
	uint32_t plen = vmm_le32(p + 13);
	REQUIRE(p + 17 + plen <= buf + len);
	p[17 + plen - 1] = 0;
}

static uint8_t *devstate_save(struct ember_vm *vm, size_t *len)
{
	struct vmm_state_w w;
	void *buf = NULL;
	vmm_sw_init(&w);
	REQUIRE_OK(vmm_devices_save(vm, &w));
	REQUIRE_OK(vmm_sw_take(&w, &buf, len));
	return buf;
}

static int devstate_load(struct ember_vm *vm, const void *buf, size_t len, struct ember_error *err)
{
	struct vmm_state_r r;
	vmm_sr_init(&r, buf, len);
	int rc = vmm_devices_load(vm, &r, err);
	if (rc == 0 && !vmm_sr_done(&r))
		TEST_FAIL("vmm_devices_load left %zu bytes", vmm_sr_remaining(&r));
	return rc;
}

static uint64_t pio_in(struct ember_vm *vm, uint64_t port)
{
	uint64_t v = 0;
	CHECK_OK(bus_access_u64(vm->pio, port, &v, 1, false, 0));
	return v;
}

/* A kernel file, a 1 MiB disk image (names from the templates) and the mock
 * hypervisor. */
static struct ehv_hypervisor *devstate_setup(char *kernel, char *img)
{
	REQUIRE_OK(fx_bzimage_file(kernel, 65536));
	int fd = mkstemp(img);
	REQUIRE(fd >= 0);
	REQUIRE_OK(ftruncate(fd, 1 << 20));
	close(fd);
	struct ehv_hypervisor *hyp;
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, host_cpuid,
						sizeof(host_cpuid) / sizeof(host_cpuid[0])));
	return hyp;
}

/* Every device of the board saved and loaded into a VM built from the same
 * configuration; a VM of another configuration, or whose disk changed size,
 * refuses the state with nothing changed. */
TEST(vmm_devices_save_load_whole_board)
{
	char kernel[] = "/tmp/ember-unit-vm-XXXXXX", img[] = "/tmp/ember-unit-disk-XXXXXX";
	struct ehv_hypervisor *hyp = devstate_setup(kernel, img);

	struct ember_config *cfg;
	struct ember_vm *vm = devstate_vm(hyp, kernel, img, &cfg);
	uint64_t v = 0x5a;
	CHECK_OK(bus_access_u64(vm->pio, X86_PORT_COM1 + 7, &v, 1, true, 0)); /* scratch */
	rtc_out(vm, 0x40, 0x77);					      /* CMOS memory */
	size_t len;
	uint8_t *buf = devstate_save(vm, &len);
	ember_vm_destroy(vm); /* the disk's lock goes with it */
	ember_config_free(cfg);

	/* the same configuration: loads, and the registers read the same */
	vm = devstate_vm(hyp, kernel, img, &cfg);
	CHECK_EQ(pio_in(vm, X86_PORT_COM1 + 7), 0);
	struct ember_error err = {0};
	int rc = devstate_load(vm, buf, len, &err);
	if (rc)
		TEST_FAIL("load: %s", err.msg);
	CHECK_EQ(pio_in(vm, X86_PORT_COM1 + 7), 0x5a);
	CHECK_EQ(rtc_in(vm, 0x40), 0x77);
	size_t len2;
	uint8_t *again = devstate_save(vm, &len2);
	CHECK(len2 == len);
	free(again);
	ember_vm_destroy(vm);
	ember_config_free(cfg);

	/* another configuration (no disk): the device lists differ */
	vm = devstate_vm(hyp, kernel, NULL, &cfg);
	CHECK_ERR(devstate_load(vm, buf, len, &err), -EINVAL);
	/* (index 9: com1 .. acpi-pm, acpi-ged, then the virtio devices) */
	CHECK(strstr(err.msg, "device 9 is disk0 in the snapshot but rng0 in this VM") != NULL);
	CHECK_EQ(pio_in(vm, X86_PORT_COM1 + 7), 0);
	ember_vm_destroy(vm);
	ember_config_free(cfg);

	/* the disk changed size: which disk, and nothing changed (the UART's
	 * state, loaded before the disk's, was put back) */
	REQUIRE_OK(truncate(img, 2 << 20));
	vm = devstate_vm(hyp, kernel, img, &cfg);
	size_t flen;
	uint8_t *fresh = devstate_save(vm, &flen);
	CHECK_ERR(devstate_load(vm, buf, len, &err), -EINVAL);
	CHECK(strstr(err.msg, "disk0 (") != NULL);
	CHECK(strstr(err.msg, img) != NULL);
	CHECK(strstr(err.msg,
		     "): virtio-mmio/virtio-blk: the disk image changed size: 1048576 bytes "
		     "when saved, 2097152 now") != NULL);
	uint8_t *after = devstate_save(vm, &len2);
	/* (but for the RTC's flags, which the clock sets as time passes) */
	rtc_flags_clear(after, len2);
	rtc_flags_clear(fresh, flen);
	CHECK(len2 == flen && !memcmp(after, fresh, flen));
	free(after);
	free(fresh);
	CHECK_EQ(pio_in(vm, X86_PORT_COM1 + 7), 0);
	CHECK_EQ(rtc_in(vm, 0x40), 0);
	/* a truncated state, too */
	CHECK_ERR(devstate_load(vm, buf, len / 2, &err), -EINVAL);
	CHECK_EQ(pio_in(vm, X86_PORT_COM1 + 7), 0);
	ember_vm_destroy(vm);
	ember_config_free(cfg);

	free(buf);
	ehv_hypervisor_close(hyp);
	unlink(img);
	unlink(kernel);
}

/* One read request on disk0's queue 0 (descriptor head 0); runs the VM's
 * loop as its I/O thread would until the used index reaches want. */
#define DQ_GPA 0x2000000ull
static void disk_read(struct ember_vm *vm, const struct tdrv_mmio *m, struct tdrv_queue *q,
		      uint16_t want)
{
	uint8_t hdr[16] = {0}; /* VIRTIO_BLK_T_IN, sector 0 */
	REQUIRE_OK(vmm_mem_write(&vm->mem, DQ_GPA + 0x3000, hdr, 16));
	uint8_t ff = 0xff;
	REQUIRE_OK(vmm_mem_write(&vm->mem, DQ_GPA + 0x5000, &ff, 1));
	tdrv_desc(q, q->desc, 0, DQ_GPA + 0x3000, 16, VRING_DESC_F_NEXT, 1);
	tdrv_desc(q, q->desc, 1, DQ_GPA + 0x4000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	tdrv_desc(q, q->desc, 2, DQ_GPA + 0x5000, 1, VRING_DESC_F_WRITE, 0);
	tdrv_publish(q, 0);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 200 && tdrv_rd16(&vm->mem, q->used + 2) != want; i++)
		CHECK(ember_loop_run_once(ember_vm_loop(vm), 10) >= 0);
	CHECK_EQ(tdrv_rd16(&vm->mem, q->used + 2), want);
	uint8_t st = 0xee;
	vmm_mem_read(&vm->mem, DQ_GPA + 0x5000, &st, 1);
	CHECK_EQ(st, 0); /* VIRTIO_BLK_S_OK */
}

/* The VMM's path with a driver running: a disk set up and used by its
 * driver, saved, loaded into a VM built from the same configuration (the
 * guest memory carried over by hand, as a snapshot's would be): the next
 * request completes in the next used slot, served by the new VM's loop. */
TEST(vmm_devices_load_a_running_disk_continues)
{
	char kernel[] = "/tmp/ember-unit-vm-XXXXXX", img[] = "/tmp/ember-unit-disk-XXXXXX";
	struct ehv_hypervisor *hyp = devstate_setup(kernel, img);
	struct ember_config *cfg;
	struct ember_vm *vm = devstate_vm(hyp, kernel, img, &cfg);
	struct tdrv_mmio m = {.bus = vm->mmio,
			      .base = vmm_virtio_desc(vmm_board_virtio(vm, 0))->mmio_base};
	struct tdrv_queue q = {.mem = &vm->mem,
			       .size = 8,
			       .desc = DQ_GPA,
			       .avail = DQ_GPA + 0x1000,
			       .used = DQ_GPA + 0x2000};
	tdrv_probe(&m, VIRTIO_ID_BLOCK, 1ull << VIRTIO_F_VERSION_1);
	tdrv_setup_queue(&m, 0, &q);
	tdrv_wr(&m, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
	disk_read(vm, &m, &q, 1);
	size_t len;
	uint8_t *buf = devstate_save(vm, &len);
	uint8_t *ram = malloc(0x10000);
	REQUIRE(ram != NULL);
	REQUIRE_OK(vmm_mem_read(&vm->mem, DQ_GPA, ram, 0x10000));
	ember_vm_destroy(vm);
	ember_config_free(cfg);

	vm = devstate_vm(hyp, kernel, img, &cfg);
	REQUIRE_OK(vmm_mem_write(&vm->mem, DQ_GPA, ram, 0x10000));
	q.mem = &vm->mem;
	m.bus = vm->mmio;
	struct ember_error err = {0};
	if (devstate_load(vm, buf, len, &err))
		TEST_FAIL("load: %s", err.msg);
	CHECK_EQ(tdrv_rd(&m, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
	vmm_board_devices_kick(vm); /* what the start does */
	disk_read(vm, &m, &q, 2);
	CHECK_EQ(tdrv_rd32(&vm->mem, q.used + 4 + 8), 0);   /* head 0 again */
	CHECK_EQ(tdrv_rd32(&vm->mem, q.used + 8 + 8), 513); /* data and status */
	free(ram);
	free(buf);
	ember_vm_destroy(vm);
	ember_config_free(cfg);
	ehv_hypervisor_close(hyp);
	unlink(img);
}

/* ------------------------------------------------------------ guest-visible control actions */

static uint32_t ged_read(struct ember_vm *vm, uint64_t off)
{
	uint64_t v = 0;
	CHECK_OK(bus_access_u64(vm->mmio, X86_GED_ADDR + off, &v, 4, false, 0));
	return (uint32_t)v;
}

static void ged_write(struct ember_vm *vm, uint64_t off, uint32_t val)
{
	uint64_t v = val;
	CHECK_OK(bus_access_u64(vm->mmio, X86_GED_ADDR + off, &v, 4, true, 0));
}

/* The power and sleep buttons and GPE events raise the GED's GSI (level)
 * until the guest's _EVT reads the event register; a GPE handler's
 * acknowledgement is counted; an n without a handler is refused; the RTC
 * event raises IRQ 8 only when the guest enabled the alarm or update
 * interrupt; a disk grows (its image file too) and refuses to shrink. */
TEST(vmm_vm_control_actions_on_the_mock)
{
	char kernel[] = "/tmp/ember-unit-vm-XXXXXX";
	char disk[] = "/tmp/ember-unit-disk-XXXXXX";
	int dfd = mkstemp(disk);
	REQUIRE(dfd >= 0);
	REQUIRE_OK(ftruncate(dfd, 1 << 20));
	struct ehv_hypervisor *hyp;
	struct ember_config *cfg;
	struct ember_vm *vm = mock_vm(kernel, disk, &hyp, &cfg);
	struct ember_error err = {0};
	struct ehv_mock_vm_state st;

	/* power button: GSI 9 high until the event register is read */
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	CHECK_EQ(st.levels[X86_IRQ_GED], 0);
	CHECK_OK(ember_vm_power_button(vm, &err));
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	CHECK_EQ(st.levels[X86_IRQ_GED], 1);
	CHECK_EQ(ged_read(vm, 0), 1u); /* GED_EV_POWER */
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	CHECK_EQ(st.levels[X86_IRQ_GED], 0);
	CHECK_EQ(ged_read(vm, 0), 0u); /* the read cleared it */
	/* sleep button and GPE 3 together: one read sees both */
	CHECK_OK(ember_vm_sleep_button(vm, &err));
	CHECK_OK(ember_vm_inject_gpe(vm, 3, &err));
	CHECK_EQ(ged_read(vm, 0), 2u | 1u << (8 + 3));
	ged_write(vm, 4, 3); /* what the DSDT's G003 does */
	CHECK_ERR(ember_vm_inject_gpe(vm, EMBER_GPE_COUNT, &err), -ENOENT);
	CHECK(strstr(err.msg, "no handler") != NULL);
	struct ember_acpi_stats as;
	CHECK_OK(ember_vm_acpi_stats(vm, &as, &err));
	CHECK_EQ(as.power_button, 1);
	CHECK_EQ(as.sleep_button, 1);
	CHECK_EQ(as.gpe[3], 1);
	CHECK_EQ(as.gpe_handled[3], 1);
	CHECK_EQ(as.gpe_handled[2], 0);
	CHECK_EQ(as.evt_reads, 2);
	CHECK_ERR(ember_vm_power_button(NULL, &err), -EINVAL);

	/* RTC: nothing enabled, the flags wait; AIE enabled, IRQ 8 rises */
	rtc_in(vm, 0x0c);
	CHECK_EQ(ember_vm_rtc_interrupt(vm, &err), 0);
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	CHECK_EQ(st.levels[X86_IRQ_RTC], 0);
	CHECK_EQ(rtc_in(vm, 0x0c) & 0x30, 0x30); /* AF UF, no IRQF */
	rtc_out(vm, 0x0b, 0x22);		 /* AIE, 24 h */
	uint32_t before = st.rising[X86_IRQ_RTC];
	CHECK_EQ(ember_vm_rtc_interrupt(vm, &err), 1);
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	CHECK_EQ(st.levels[X86_IRQ_RTC], 1);
	CHECK_EQ(st.rising[X86_IRQ_RTC], before + 1);
	CHECK_EQ(rtc_in(vm, 0x0c) & 0xa0, 0xa0); /* IRQF AF */
	REQUIRE_OK(ehv_mock_vm_state(vm->hv, &st));
	CHECK_EQ(st.levels[X86_IRQ_RTC], 0);

	/* disk resize: grows the file, refuses a shrink, odd sizes, no disk 1 */
	struct stat sb;
	uint64_t cap = 0, gen0 = 0, gen1 = 0;
	CHECK_OK(bus_access_u64(vm->mmio, X86_VIRTIO_MMIO_BASE + 0xfc, &gen0, 4, false, 0));
	CHECK_OK(bus_access_u64(vm->mmio, X86_VIRTIO_MMIO_BASE + 0x100, &cap, 8, false, 0));
	CHECK_EQ(cap, (1 << 20) / 512);
	CHECK_OK(ember_vm_disk_resize(vm, 0, 4 << 20, &err));
	REQUIRE_OK(fstat(dfd, &sb));
	CHECK_EQ(sb.st_size, 4 << 20);
	/* the device's configuration: the new capacity, the next generation */
	CHECK_OK(bus_access_u64(vm->mmio, X86_VIRTIO_MMIO_BASE + 0x100, &cap, 8, false, 0));
	CHECK_EQ(cap, (4 << 20) / 512);
	CHECK_OK(bus_access_u64(vm->mmio, X86_VIRTIO_MMIO_BASE + 0xfc, &gen1, 4, false, 0));
	CHECK_EQ(gen1, gen0 + 1);
	CHECK_OK(ember_vm_disk_resize(vm, 0, 4 << 20, &err)); /* the same size */
	CHECK_ERR(ember_vm_disk_resize(vm, 0, 2 << 20, &err), -EINVAL);
	CHECK(strstr(err.msg, "shrinking") != NULL);
	CHECK_ERR(ember_vm_disk_resize(vm, 0, (4 << 20) + 100, &err), -EINVAL);
	CHECK_ERR(ember_vm_disk_resize(vm, 1, 8 << 20, &err), -ENODEV);
	CHECK(strstr(err.msg, "no such device on this VM") != NULL);
	REQUIRE_OK(fstat(dfd, &sb));
	CHECK_EQ(sb.st_size, 4 << 20); /* nothing changed by the refusals */

	/* no hotplug slots configured */
	unsigned slot;
	CHECK_ERR(ember_vm_net_hotplug_add(vm, "tap=x", &slot, &err), -ENODEV);
	CHECK_ERR(ember_vm_net_hotplug_remove(vm, 0, &err), -ENODEV);

	ember_vm_destroy(vm);
	ehv_hypervisor_close(hyp);
	ember_config_free(cfg);
	close(dfd);
	unlink(disk);
	unlink(kernel);
}

/* Hotplug slots (hotplug-slots=2) on the mock, with taps in a private
 * network namespace: the DSDT has the slots' container; a card added goes
 * into the first free slot (its window answers as virtio-net, the GED says
 * which slots hold one and raises its hotplug event); a full board refuses
 * a third; a card no driver holds is removed at once and its window goes
 * quiet; bad specs and empty slots are refused. */
TEST(vmm_vm_net_hotplug_slots_on_the_mock)
{
	if (unshare(CLONE_NEWNET) < 0)
		TEST_SKIP("unshare(CLONE_NEWNET): %s (needs root / CAP_SYS_ADMIN)",
			  strerror(errno));
	if (access("/dev/net/tun", R_OK | W_OK) < 0)
		TEST_SKIP("/dev/net/tun: %s (no tun module)", strerror(errno));
	char kernel[] = "/tmp/ember-unit-vm-XXXXXX";
	struct ehv_hypervisor *hyp;
	struct ember_config *cfg;
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&cfg));
	REQUIRE_OK(ember_config_set(cfg, "hotplug-slots", "2", NULL));
	CHECK_ERR(ember_config_set(cfg, "hotplug-slots", "5", &err), -EINVAL);
	ember_config_free(cfg);
	struct ember_vm *vm = mock_vm(kernel, NULL, &hyp, &cfg);
	/* mock_vm's configuration has no slots: hotplug answers -ENODEV */
	unsigned slot = 99;
	CHECK_ERR(ember_vm_net_hotplug_add(vm, "tap=hp0", &slot, &err), -ENODEV);
	ember_vm_destroy(vm);
	ehv_hypervisor_close(hyp);
	ember_config_set(cfg, "hotplug-slots", "2", NULL);
	REQUIRE_OK(ember_config_resolve(cfg, &err));
	REQUIRE_OK(ehv_hypervisor_open(
	    &(struct ehv_hypervisor_options){.backend = EHV_BACKEND_MOCK}, &hyp));
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, host_cpuid,
						sizeof(host_cpuid) / sizeof(host_cpuid[0])));
	if (ember_vm_create_on(cfg, hyp, &vm, &err) < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
	const uint8_t *acpi = vmm_mem_ptr(&vm->mem, X86_ACPI_ADDR, X86_ACPI_SIZE);
	REQUIRE(acpi);
	CHECK(memmem(acpi, X86_ACPI_SIZE, "HPB_", 4) != NULL);
	CHECK(memmem(acpi, X86_ACPI_SIZE, "S001", 4) != NULL);
	const uint64_t w0 = X86_VIRTIO_MMIO_BASE, w1 = w0 + 0x1000;
	uint64_t v = 0;
	CHECK_OK(bus_access_u64(vm->mmio, w0, &v, 4, false, 0));
	CHECK_EQ(v, 0); /* an empty slot: no virtio magic */
	CHECK_EQ(ged_read(vm, 8), 0u);

	CHECK_ERR(ember_vm_net_hotplug_add(vm, "bogus=1", &slot, &err), -EINVAL);
	CHECK_ERR(ember_vm_net_hotplug_add(vm, "tap=hp0,fd=3", &slot, &err), -EINVAL);
	CHECK_EQ(ged_read(vm, 0), 0u); /* nothing raised by a refusal */
	REQUIRE_OK(ember_vm_net_hotplug_add(vm, "tap=hp0", &slot, &err));
	CHECK_EQ(slot, 0);
	CHECK_EQ(ged_read(vm, 0), 4u); /* GED_EV_HOTPLUG */
	CHECK_EQ(ged_read(vm, 8), 1u);
	CHECK_OK(bus_access_u64(vm->mmio, w0, &v, 4, false, 0));
	CHECK_EQ(v, 0x74726976); /* "virt" */
	CHECK_OK(bus_access_u64(vm->mmio, w0 + 8, &v, 4, false, 0));
	CHECK_EQ(v, 1); /* VIRTIO_ID_NET */
	REQUIRE_OK(ember_vm_net_hotplug_add(vm, "tap=hp1,mac=52:54:00:00:00:42", &slot, &err));
	CHECK_EQ(slot, 1);
	CHECK_EQ(ged_read(vm, 8), 3u);
	CHECK_OK(bus_access_u64(vm->mmio, w1 + 0x100, &v, 1, false, 0));
	CHECK_EQ(v, 0x52); /* the MAC in the card's configuration */
	CHECK_ERR(ember_vm_net_hotplug_add(vm, "tap=hp2", &slot, &err), -ENOSPC);

	/* no driver holds card 0 (status 0): it goes at once */
	REQUIRE_OK(ember_vm_net_hotplug_remove(vm, 0, &err));
	CHECK_EQ(ged_read(vm, 8), 2u);
	CHECK_EQ(ged_read(vm, 0), 4u);
	CHECK_OK(bus_access_u64(vm->mmio, w0, &v, 4, false, 0));
	CHECK_EQ(v, 0);
	CHECK_ERR(ember_vm_net_hotplug_remove(vm, 0, &err), -ENODEV);
	CHECK_ERR(ember_vm_net_hotplug_remove(vm, 7, &err), -ENODEV);
	/* the freed slot takes a new card */
	REQUIRE_OK(ember_vm_net_hotplug_add(vm, "tap=hp2", &slot, &err));
	CHECK_EQ(slot, 0);

	ember_vm_destroy(vm);
	ehv_hypervisor_close(hyp);
	ember_config_free(cfg);
	unlink(kernel);
}
