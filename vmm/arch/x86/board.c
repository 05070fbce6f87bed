/* vmm/arch/x86/board.c - the x86 machine, wired explicitly: interrupt controllers, legacy devices, ACPI, boot. */
#include "acpi.h"
#include "acpi_pm.h"
#include "devices.h"
#include "layout.h"
#include "x86.h"

#include "../../boot/boot.h"
#include "../../internal.h"
#include "../../vm.h"
#include "../../virtio.h"
#include "../../config.h"

#include "../../../devices/bootmarker.h"
#include "../../../devices/ged.h"
#include "../../../devices/i8042.h"
#include "../../../devices/pci_host.h"
#include "../../../devices/pvpanic.h"
#include "../../../devices/reset_cf9.h"
#include "../../../devices/rtc_cmos.h"
#include "../../../devices/serial8250.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

/*
 * The board, as a datasheet
 * -------------------------
 *   in the hypervisor (ehv_vm_setup_platform): PIC (master/slave), IOAPIC at 0xfec00000 (24 pins, GSI = pin,
 *            except ISA IRQ 0 -> pin 2), one LAPIC per vCPU at 0xfee00000,
 *            PIT (ports 0x40-0x43, 0x61 speaker dummy). TSS/identity-map pages
 *            at 0xfffbc000-0xfffbffff (inside the MMIO hole).
 *   PIO bus: 0x060/0x064 i8042 (IRQ 1)        0x070-0x071 CMOS RTC (IRQ 8)
 *            0x080      boot-time marker       0x3f8-0x3ff 16550A, ttyS0 (IRQ 4)
 *            0x505      pvpanic (QEMU0001)
 *            0xcf8-0xcff PCI config mechanism #1, host bridge at 00:00.0
 *                       (pci_host); its byte 0xcf9 is the reset control register
 *            0x600-0x602 ACPI sleep control, sleep status, reset registers
 *   MMIO bus: device windows from 0xd0000000 (devices.h); the ACPI Generic
 *            Event Device's registers at 0xfeb00000 (GSI 9, level: power and
 *            sleep buttons, GPE-style events; devices/ged.h)
 *   ACPI:    RSDP/XSDT/FADT (hardware-reduced)/MADT/DSDT at 0xe0000; the DSDT
 *            lists the CPUs and every device of the device list with an ACPI
 *            name (COM1, the PS/2 keyboard, the RTC, pvpanic; virtio-mmio later).
 * Where each device sits and which GSI it raises is in one place, the device
 * list of devices.c (vmm_board_plan); it also feeds the DSDT and --dry-run.
 * Reset comes from the ACPI reset register, the i8042 (port 0x64, 0xfe) or
 * port 0xcf9; power-off from the ACPI sleep control register (S5); a guest
 * kernel panic from the pvpanic port.
 */

_Static_assert(EHV_X86_RESERVED_GPA >= X86_MMIO_HOLE_START &&
		   EHV_X86_RESERVED_GPA + EHV_X86_RESERVED_SIZE <= X86_MMIO_HOLE_END,
	       "the hypervisor's TSS/identity-map pages lie in the MMIO hole");

/* A hotplug slot: its window on the MMIO bus is this proxy for good (the
 * bus has no unregistering); the card it holds, if any, behind it. */
struct hp_slot {
	struct vmm_dev_desc *d;
	pthread_rwlock_t lock; /* the target, against a vCPU's access */
	struct dev *target;    /* the card's transport, or NULL (reads 0) */
	struct vmm_virtio *v;  /* changed under the VM's dev_lock and hp_lock */
	bool removing;	       /* the guest was told; waiting for it to let go */
};

struct vmm_board {
	struct ember_vm *vm;
	struct vmm_cpuid *supported;
	struct serial8250 *uart;
	struct i8042 *kbd;
	struct rtc_cmos *rtc;
	/* the RTC's interrupts: its timer, and the wake-up a guest's write to
	 * its clock, alarm, A or B fires so the I/O thread re-times it */
	struct ember_loop_source *rtc_timer, *rtc_wake;
	bool rtc_owed; /* a re-time skipped while paused (I/O thread only) */
	struct bootmarker *marker;
	struct pvpanic *pvpanic;
	struct reset_cf9 *cf9;
	struct pci_host *pci; /* owns 0xcf8-0xcff; forwards 0xcf9 to cf9 */
	struct acpi_pm pm;
	struct dev pm_state; /* pm's saved state (vmm_board_state_device) */
	struct ged *ged;     /* the ACPI Generic Event Device (buttons, GPE events) */
	struct hp_slot slots[VMM_HOTPLUG_MAX_SLOTS];
	unsigned nslots;
	uint32_t present;	 /* slots holding a card, as the GED tells the guest */
	pthread_mutex_t hp_lock; /* one hotplug change at a time */
	bool registered;
	/* virtio devices (one per --disk/--rng/--balloon) and the eventfds the
	 * device manager's hooks made for them (closed at destroy) */
	struct vmm_virtio *virtio[VMM_DEVMGR_MAX];
	unsigned nvirtio;
	struct vmm_virtio *vcon; /* --console virtio: one of virtio[], else NULL */
	int fds[VMM_DEVMGR_MAX * (VMM_DEV_MAX_IOEVENTFDS + 1)];
	unsigned nfds;
	/* The device list (vmm/devmgr.h): where each device sits, its GSI. */
	struct vmm_devmgr *dm;
	struct vmm_dev_desc *d_com1, *d_kbd, *d_rtc, *d_ged;
};

void vmm_board_memory_hole(uint64_t *start, uint64_t *end)
{
	*start = X86_MMIO_HOLE_START;
	*end = X86_MMIO_HOLE_END;
}

/* ------------------------------------------------------------ callbacks */

static void irq_line(struct vmm_board *b, uint32_t gsi, bool level)
{
	(void)ehv_vm_set_irq_line(b->vm->hv, gsi, level); /* fails only for a bad gsi */
}

static void uart_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct vmm_board *b = opaque;
	(void)vmm_vm_console_write(b->vm, buf, len); /* tx_full said there is room */
}
static bool uart_tx_full(void *opaque)
{
	struct vmm_board *b = opaque;
	return vmm_vm_console_full(b->vm);
}
/* The device manager's IRQ hook: a device's GSI, from its descriptor. */
static void dm_irq(void *opaque, uint32_t gsi, bool level)
{
	irq_line(opaque, gsi, level);
}
static int new_eventfd(struct vmm_board *b)
{
	if (b->nfds >= sizeof(b->fds) / sizeof(b->fds[0]))
		return -EMFILE;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	b->fds[b->nfds++] = fd;
	return fd;
}
static int dm_ioeventfd(void *opaque, uint64_t addr, unsigned len, bool datamatch, uint64_t data,
			int *out)
{
	struct vmm_board *b = opaque;
	int fd = new_eventfd(b);
	if (fd < 0)
		return fd;
	struct ehv_ioeventfd ev = {.addr = addr,
				   .len = len,
				   .flags = datamatch ? EHV_IOEVENT_DATAMATCH : 0,
				   .datamatch = data,
				   .fd = fd};
	int r = ehv_vm_ioeventfd(b->vm->hv, &ev);
	if (r == 0)
		*out = fd;
	return r;
}
static int dm_irqfd(void *opaque, uint32_t gsi, bool level, int *out)
{
	struct vmm_board *b = opaque;
	if (level)
		return -EOPNOTSUPP; /* the board's virtio interrupts are edge-triggered */
	int fd = new_eventfd(b);
	if (fd < 0)
		return fd;
	int r = ehv_vm_irqfd(b->vm->hv, fd, gsi, -1);
	if (r == 0)
		*out = fd;
	return r;
}
static void uart_irq(void *opaque, bool level)
{
	struct vmm_board *b = opaque;
	vmm_dev_set_irq(b->d_com1, level);
}
static void uart_rx_ready(void *opaque)
{
	struct vmm_board *b = opaque;
	vmm_vm_wake(b->vm);
}
static void kbd_irq(void *opaque, bool level)
{
	struct vmm_board *b = opaque;
	vmm_dev_set_irq(b->d_kbd, level);
}
static void kbd_reset(void *opaque)
{
	struct vmm_board *b = opaque;
	vmm_vm_request_stop(b->vm, EMBER_STOP_REBOOT, -1, 0, "reset through the i8042 (port 0x64)");
}
static void rtc_irq(void *opaque, bool level)
{
	struct vmm_board *b = opaque;
	vmm_dev_set_irq(b->d_rtc, level);
}
/* vCPU thread (a write to the RTC): the I/O thread re-times the RTC. */
static void rtc_timer_changed(void *opaque)
{
	struct vmm_board *b = opaque;
	if (b->rtc_wake)
		ember_loop_wake(b->rtc_wake);
}
/* I/O thread: brings the RTC's flags (and IRQ 8) up to date and arms the
 * timer for its next interrupt, or disarms it when none is enabled. Not
 * while the VM is paused: the kick after resume re-times it
 * (vmm_board_devices_kick). */
static void rtc_retime(struct vmm_board *b)
{
	struct ember_vm *vm = b->vm;
	pthread_mutex_lock(&vm->dev_lock);
	b->rtc_owed = vm->devs_paused;
	if (!vm->devs_paused && b->rtc && b->rtc_timer) {
		int64_t next = rtc_cmos_poll(b->rtc);
		(void)ember_loop_timer_set(b->rtc_timer,
					   next < 0 ? 0
					   : next   ? (uint64_t)next
						    : 1,
					   0);
	}
	pthread_mutex_unlock(&vm->dev_lock);
}
static void rtc_tick(void *opaque, uint64_t n)
{
	(void)n;
	rtc_retime(opaque);
}
static void ged_irq(void *opaque, bool level)
{
	struct vmm_board *b = opaque;
	vmm_dev_set_irq(b->d_ged, level);
}
/* A vCPU's access to a hotplug slot's window: to its card, if any. */
static void slot_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
			unsigned len, bool is_write)
{
	struct hp_slot *s = opaque;
	pthread_rwlock_rdlock(&s->lock);
	struct dev *t = s->target;
	if (t && (t->ops->bus.sizes & len))
		t->ops->bus.access(t, offset, addr, vcpu, data, len, is_write);
	else if (!is_write)
		memset(data, 0, len);
	pthread_rwlock_unlock(&s->lock);
}
static const struct bus_ops slot_ops = {
    .name = "hotplug-slot", .sizes = BUS_W_ALL, .access = slot_access};

static void marker(void *opaque, uint8_t value, uint64_t ns)
{
	struct vmm_board *b = opaque;
	vmm_logf(&b->vm->cfg, EMBER_LOG_INFO, "guest boot marker %#04x at %.1f ms", value,
		 (double)ns / 1e6);
}
static void on_pvpanic(void *opaque, unsigned events)
{
	struct vmm_board *b = opaque;
	if (events & PVPANIC_PANICKED)
		vmm_vm_request_stop(b->vm, EMBER_STOP_PANIC, -1, 0,
				    "the guest kernel panicked (pvpanic)");
	else
		vmm_logf(&b->vm->cfg, EMBER_LOG_INFO, "pvpanic: the guest loaded a crash kernel");
}
static void cf9_reset(void *opaque, bool hard)
{
	struct vmm_board *b = opaque;
	vmm_vm_request_stop(b->vm, EMBER_STOP_REBOOT, -1, 0,
			    hard ? "reset through port 0xcf9 (hard)" : "reset through port 0xcf9");
}
static void pm_poweroff(void *opaque)
{
	struct vmm_board *b = opaque;
	vmm_vm_request_stop(b->vm, EMBER_STOP_POWEROFF, -1, 0, "ACPI S5 (power off)");
}
static void pm_reset(void *opaque)
{
	struct vmm_board *b = opaque;
	vmm_vm_request_stop(b->vm, EMBER_STOP_REBOOT, -1, 0, "ACPI reset register");
}
static void pm_sleep(void *opaque, unsigned type)
{
	struct vmm_board *b = opaque;
	vmm_logf(&b->vm->cfg, EMBER_LOG_WARN, "guest asked for sleep type %u: not supported", type);
}

/* ------------------------------------------------------------ create */

int vmm_board_create(struct ember_vm *vm, struct ember_error *err)
{
	int r;
	struct vmm_board *b = calloc(1, sizeof(*b));
	if (!b)
		return vmm_errf(err, -ENOMEM, "out of memory");
	vm->board = b;
	b->vm = vm;
	/* What the hypervisor can offer the guest's CPUID (through the
	 * hypervisor handle: /dev/kvm is opened once per VM). */
	b->supported = calloc(1, sizeof(*b->supported) +
				     EHV_CPUID_MAX_ENTRIES * sizeof(b->supported->entries[0]));
	if (!b->supported)
		return vmm_errf(err, -ENOMEM, "out of memory");
	r = ehv_hypervisor_supported_cpuid(vm->hyp, b->supported->entries, EHV_CPUID_MAX_ENTRIES);
	if (r < 0)
		return vmm_errf(err, r, "cannot read the supported CPUID: %s", strerror(-r));
	b->supported->nent = (uint32_t)(r < EHV_CPUID_MAX_ENTRIES ? r : EHV_CPUID_MAX_ENTRIES);

	/* In-kernel interrupt controllers and timer, before any vCPU (the
	 * layer places the TSS and identity map when the VM is created). */
	r = ehv_vm_setup_platform(vm->hv,
				  &(struct ehv_platform_config){
				      .flags = EHV_PLATFORM_PIT | EHV_PLATFORM_PIT_SPEAKER_DUMMY});
	if (r < 0)
		return vmm_errf(err, r, "cannot create the interrupt controllers and the PIT: %s",
				strerror(-r));

	/* The device list, planned from the configuration as --dry-run shows it. */
	if (!(b->dm = calloc(1, sizeof(*b->dm))))
		return vmm_errf(err, -ENOMEM, "out of memory");
	r = vmm_board_plan(&vm->cfg, b->dm, err);
	if (r < 0)
		return r;
	b->dm->hooks = (struct vmm_devmgr_hooks){
	    .set_irq = dm_irq, .add_ioeventfd = dm_ioeventfd, .add_irqfd = dm_irqfd, .opaque = b};
	/* the entries whose GSIs the devices' IRQ callbacks raise */
	b->d_com1 = vmm_devmgr_find(b->dm, "com1");
	b->d_kbd = vmm_devmgr_find(b->dm, "i8042");
	b->d_rtc = vmm_devmgr_find(b->dm, "rtc");
	b->d_ged = vmm_devmgr_find(b->dm, X86_GED_NAME);
	if (!b->d_com1 || !b->d_kbd || !b->d_rtc || !b->d_ged)
		return vmm_errf(err, -EINVAL, "the board's device list lacks a legacy device");

	/* The legacy devices. */
	r = serial8250_create(&(struct serial8250_config){.tx = uart_tx,
							  .tx_full = uart_tx_full,
							  .set_irq = uart_irq,
							  .rx_ready = uart_rx_ready,
							  .opaque = b},
			      &b->uart);
	if (r == 0)
		r = i8042_create(
		    &(struct i8042_config){.reset = kbd_reset, .set_irq = kbd_irq, .opaque = b},
		    &b->kbd);
	if (r == 0 && vm->loop) {
		r = ember_loop_add_timer(vm->loop, 0, 0, rtc_tick, b, &b->rtc_timer);
		if (r == 0)
			r = ember_loop_add_wakeup(vm->loop, rtc_tick, b, &b->rtc_wake);
	}
	if (r == 0)
		r = rtc_cmos_create(&(struct rtc_cmos_config){.set_irq = rtc_irq,
							      .timer_changed = rtc_timer_changed,
							      .opaque = b},
				    &b->rtc);
	if (r == 0)
		r = bootmarker_create(&(struct bootmarker_config){.mark = marker,
								  .opaque = b,
								  .start_ns = vm->start_ns},
				      &b->marker);
	if (r == 0)
		r = pvpanic_create(&(struct pvpanic_config){.event = on_pvpanic, .opaque = b},
				   &b->pvpanic);
	if (r == 0)
		r = reset_cf9_create(&(struct reset_cf9_config){.reset = cf9_reset, .opaque = b},
				     &b->cf9);
	if (r == 0)
		r = pci_host_create(
		    &(struct pci_host_config){.cf9_ops = &reset_cf9_dev(b->cf9)->ops->bus,
					      .cf9_opaque = reset_cf9_dev(b->cf9)},
		    &b->pci);
	if (r == 0)
		r = ged_create(&(struct ged_config){.set_irq = ged_irq, .opaque = b}, &b->ged);
	if (r < 0)
		return vmm_errf(err, r, "cannot create the legacy devices: %s", strerror(-r));
	b->pm = (struct acpi_pm){
	    .poweroff = pm_poweroff,
	    .reset = pm_reset,
	    .sleep = pm_sleep,
	    .opaque = b,
	    .s5_sleep_type = X86_ACPI_S5_SLP_TYP,
	    .reset_value = X86_ACPI_RESET_VALUE,
	};

	/* each instance to its entry in the list, which attach puts on the buses */
	const struct {
		const char *name;
		const struct bus_ops *ops;
		void *opaque;
	} inst[] = {
	    {"com1", &serial8250_dev(b->uart)->ops->bus, serial8250_dev(b->uart)},
	    {"i8042", &i8042_dev(b->kbd)->ops->bus, i8042_dev(b->kbd)},
	    {"rtc", &rtc_cmos_dev(b->rtc)->ops->bus, rtc_cmos_dev(b->rtc)},
	    {"bootmarker", &bootmarker_dev(b->marker)->ops->bus, bootmarker_dev(b->marker)},
	    {"pvpanic", &pvpanic_dev(b->pvpanic)->ops->bus, pvpanic_dev(b->pvpanic)},
	    {"pci-host", &pci_host_dev(b->pci)->ops->bus, pci_host_dev(b->pci)},
	    {"acpi-pm", &acpi_pm_ops, &b->pm},
	    {X86_GED_NAME, &ged_dev(b->ged)->ops->bus, ged_dev(b->ged)},
	};
	for (size_t i = 0; i < sizeof(inst) / sizeof(inst[0]); i++) {
		struct vmm_dev_desc *d = vmm_devmgr_find(b->dm, inst[i].name);
		if (!d)
			return vmm_errf(err, -EINVAL, "the board's device list has no %s",
					inst[i].name);
		d->ops = inst[i].ops;
		d->opaque = inst[i].opaque;
	}

	/* hotplug slots: the proxy on the bus, empty */
	pthread_mutex_init(&b->hp_lock, NULL);
	for (unsigned i = 0; i < vm->cfg.hotplug_slots && i < VMM_HOTPLUG_MAX_SLOTS; i++) {
		char name[16];
		snprintf(name, sizeof(name), X86_HOTPLUG_NAME "%u", i & 0xffu);
		struct hp_slot *s = &b->slots[b->nslots];
		if (!(s->d = vmm_devmgr_find(b->dm, name)))
			return vmm_errf(err, -EINVAL, "the board's device list has no %s", name);
		pthread_rwlock_init(&s->lock, NULL);
		s->d->ops = &slot_ops;
		s->d->opaque = s;
		b->nslots++;
	}

	/* the virtio devices, one per device option, in the list's order */
	for (unsigned i = 0; i < vm->cfg.ndevs; i++) {
		const struct vmm_devopt *o = &vm->cfg.devs[i];
		char name[24];
		snprintf(name, sizeof(name), "%s%u", o->type->name, o->index);
		struct vmm_dev_desc *d = vmm_devmgr_find(b->dm, name);
		if (!d || d->pending)
			continue;
		r = vmm_virtio_create(vm, d, o, &b->virtio[b->nvirtio], err);
		if (r < 0)
			return r;
		b->nvirtio++;
	}
	/* --console virtio: hvc0 takes the console's input */
	if (vm->cfg.console_virtio) {
		struct vmm_dev_desc *d = vmm_devmgr_find(b->dm, X86_VIRTIO_CONSOLE_NAME);
		if (!d || d->pending)
			return vmm_errf(err, -ENOSPC, "--console virtio: %s",
					d && d->pending ? d->pending : "not in the device list");
		r = vmm_virtio_create_console(vm, d, &b->virtio[b->nvirtio], err);
		if (r < 0)
			return r;
		b->vcon = b->virtio[b->nvirtio++];
		if (!strstr(vm->cfg.cmdline, "console=hvc0"))
			vmm_logf(&vm->cfg, EMBER_LOG_WARN,
				 "--console virtio: the kernel command line has no console=hvc0; "
				 "console input goes to hvc0 all the same");
	}

	b->registered = true;
	r = vmm_devmgr_attach(b->dm, vm->pio, vm->mmio, err);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < b->nvirtio; i++) {
		r = vmm_virtio_start(b->virtio[i], err);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < b->dm->n; i++)
		if (b->dm->devs[i].pending)
			vmm_logf(&vm->cfg, EMBER_LOG_WARN, "%s (%s): not attached: %s",
				 b->dm->devs[i].name,
				 b->dm->devs[i].detail ? b->dm->devs[i].detail : "",
				 b->dm->devs[i].pending);
	return 0;
}

void vmm_board_destroy(struct ember_vm *vm)
{
	struct vmm_board *b = vm->board;
	if (!b)
		return;
	/* the buses are destroyed first (vm.c) or never dispatch again */
	if (b->rtc_wake)
		ember_loop_remove(b->rtc_wake);
	if (b->rtc_timer)
		ember_loop_remove(b->rtc_timer);
	if (b->uart)
		dev_destroy(serial8250_dev(b->uart));
	if (b->kbd)
		dev_destroy(i8042_dev(b->kbd));
	if (b->rtc)
		dev_destroy(rtc_cmos_dev(b->rtc));
	if (b->marker)
		dev_destroy(bootmarker_dev(b->marker));
	if (b->pvpanic)
		dev_destroy(pvpanic_dev(b->pvpanic));
	if (b->pci)
		dev_destroy(pci_host_dev(b->pci));
	if (b->cf9)
		dev_destroy(reset_cf9_dev(b->cf9));
	if (b->ged)
		dev_destroy(ged_dev(b->ged));
	for (unsigned i = 0; i < b->nvirtio; i++)
		vmm_virtio_destroy(b->virtio[i]);
	for (unsigned i = 0; i < b->nslots; i++) {
		vmm_virtio_destroy(b->slots[i].v);
		pthread_rwlock_destroy(&b->slots[i].lock);
	}
	pthread_mutex_destroy(&b->hp_lock);
	for (unsigned i = 0; i < b->nfds; i++)
		close(b->fds[i]);
	free(b->supported);
	free(b->dm);
	free(b);
	vm->board = NULL;
}

/* ------------------------------------------------------------ vCPUs */

int vmm_board_setup_vcpu(struct ember_vm *vm, unsigned idx, struct ember_error *err)
{
	struct vmm_board *b = vm->board;
	struct ehv_vcpu *vcpu = vm->vcpus[idx];
	struct vmm_cpuid *c;
	int r = vmm_x86_cpuid(b->supported, idx, vm->ncpus, &c);
	if (r < 0)
		return vmm_errf(err, r, "vCPU %u: cannot build its CPUID", idx);
	r = ehv_vcpu_set_cpuid(vcpu, c->entries, c->nent);
	uint64_t xcr0 = vmm_x86_initial_xcr0(c);
	free(c);
	if (r < 0)
		return vmm_errf(err, r, "vCPU %u: cannot set its CPUID: %s", idx, strerror(-r));
	if (xcr0) { /* see vmm_x86_initial_xcr0 */
		r = ehv_vcpu_set_xcr0(vcpu, xcr0);
		if (r < 0)
			return vmm_errf(err, r, "vCPU %u: cannot set XCR0 to %#llx: %s", idx,
					(unsigned long long)xcr0, strerror(-r));
	}

	/* (The application processors wait for INIT/SIPI in the state the
	 * hypervisor creates them in; the layer handles their wake-up.) */
	struct ehv_msr msrs[16];
	unsigned n = vmm_x86_boot_msrs(msrs, 16);
	r = ehv_vcpu_set_msrs(vcpu, msrs, n);
	if (r < 0)
		return vmm_errf(err, r, "vCPU %u: cannot set its MSRs: %s", idx, strerror(-r));
	if ((unsigned)r != n)
		return vmm_errf(err, -EIO, "vCPU %u: the hypervisor refused MSR %#x", idx,
				msrs[r].index);
	return 0;
}

static struct ehv_x86_segment seg(uint16_t sel, uint8_t type, bool code64)
{
	return (struct ehv_x86_segment){
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .dpl = 0,
	    .db = code64 ? 0 : 1,
	    .s = 1,
	    .l = code64 ? 1 : 0,
	    .g = 1,
	};
}

static int set_entry_state(struct ehv_vcpu *vcpu, const struct vmm_boot_entry *entry)
{
	struct ehv_x86_sregs s;
	int r = ehv_vcpu_get_sregs(vcpu, &s);
	if (r < 0)
		return r;
	bool lm = entry->mode == VMM_ENTRY_LONG64;
	struct ehv_x86_segment data = seg(X86_SEL_DATA, 0x3, false);
	s.cs = lm ? seg(X86_SEL_CODE64, 0xb, true) : seg(X86_SEL_CODE32, 0xb, false);
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = (struct ehv_x86_segment){
	    .base = 0, .limit = 0x67, .selector = X86_SEL_TSS, .type = 0xb, .present = 1};
	s.ldt = (struct ehv_x86_segment){.selector = 0, .type = 0x2, .present = 1, .unusable = 1};
	s.gdt = (struct ehv_x86_dtable){.base = entry->gdt_base, .limit = entry->gdt_limit};
	s.idt = (struct ehv_x86_dtable){.base = 0, .limit = 0};
	if (lm) {
		s.cr0 = 0x80050033; /* PG WP NE ET MP PE */
		s.cr3 = entry->cr3;
		s.cr4 = 0x20;	/* PAE */
		s.efer = 0x500; /* LMA LME */
	} else {
		s.cr0 = 0x11; /* ET PE: PVH enters in 32-bit protected mode, paging off */
		s.cr3 = 0;
		s.cr4 = 0;
		s.efer = 0;
	}
	r = ehv_vcpu_set_sregs(vcpu, &s);
	if (r < 0)
		return r;
	struct ehv_x86_regs regs = {
	    .rip = entry->rip,
	    .rsi = entry->rsi,
	    .rbx = entry->rbx,
	    .rflags = 0x2,
	};
	return ehv_vcpu_set_regs(vcpu, &regs);
}

/* ------------------------------------------------------------ boot */

/* ------------------------------------------------------------ VM Generation ID */

/* A fresh random 128-bit ID (an RFC 4122 version 4 UUID) at X86_VMGENID_ADDR. */
static int new_generation_id(struct ember_vm *vm, struct ember_error *err)
{
	uint8_t id[16];
	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
		return vmm_errf(err, -errno, "VM Generation ID: getrandom: %s", strerror(errno));
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
	if (vmm_mem_write(&vm->mem, X86_VMGENID_ADDR, id, sizeof(id)) < 0)
		return vmm_errf(err, -E2BIG, "guest memory too small for the VM Generation ID");
	return 0;
}

int vmm_board_generation_id(struct ember_vm *vm, uint8_t id[16])
{
	return vmm_mem_read(&vm->mem, X86_VMGENID_ADDR, id, 16);
}

int vmm_board_restored(struct ember_vm *vm, struct ember_error *err)
{
	/* a clone must not repeat its origin's randomness: the guest's driver
	 * reseeds from the new ID when told (the GED's event, whose _EVT does
	 * Notify (\_SB.VGEN, 0x80)); the line is up when the vCPUs start */
	int r = new_generation_id(vm, err);
	if (r == 0 && vm->board->ged && (r = ged_raise(vm->board->ged, GED_EV_VMGENID)) < 0)
		vmm_errf(err, r, "VM Generation ID: cannot tell the guest: %s", strerror(-r));
	return r;
}

int vmm_board_load(struct ember_vm *vm, struct ember_error *err)
{
	const struct ember_config *cfg = &vm->cfg;
	struct vmm_board *b = vm->board;
	int r;

	/* the DSDT's devices, from the device list */
	struct vmm_acpi_device adevs[VMM_DEVMGR_MAX];
	int nadevs = vmm_x86_acpi_devices(b->dm, adevs, VMM_DEVMGR_MAX);
	if (nadevs < 0)
		return vmm_errf(err, nadevs, "ACPI: the device list does not fit the DSDT: %s",
				strerror(-nadevs));

	/* the Generic Event Device, where the device list put it */
	struct vmm_acpi_ged ged = {.mmio_base = (uint32_t)b->d_ged->mmio_base,
				   .gsi = b->d_ged->gsi,
				   .ngpe = EMBER_GPE_COUNT,
				   .nslots = b->nslots,
				   .vmgenid = true};
	for (unsigned i = 0; i < b->nslots; i++) {
		const struct vmm_dev_desc *d = b->slots[i].d;
		ged.slots[i].mmio_base = (uint32_t)d->mmio_base;
		ged.slots[i].mmio_size = (uint32_t)d->mmio_size;
		ged.slots[i].gsi = d->gsi;
	}
	/* ACPI, written straight into guest memory */
	struct vmm_acpi_config acfg = {
	    .ncpus = vm->ncpus,
	    .lapic_addr = (uint32_t)X86_LAPIC_ADDR,
	    .ioapic_addr = (uint32_t)X86_IOAPIC_ADDR,
	    .ioapic_id = 0,
	    .sleep_control_port = X86_PORT_ACPI_SLEEP_CTL,
	    .sleep_status_port = X86_PORT_ACPI_SLEEP_STS,
	    .reset_port = X86_PORT_ACPI_RESET,
	    .reset_value = X86_ACPI_RESET_VALUE,
	    .s5_sleep_type = X86_ACPI_S5_SLP_TYP,
	    .iapc_boot_arch = VMM_ACPI_IAPC_LEGACY_DEVICES | VMM_ACPI_IAPC_8042 |
			      VMM_ACPI_IAPC_VGA_NOT_PRESENT | VMM_ACPI_IAPC_MSI_NOT_SUPPORTED |
			      VMM_ACPI_IAPC_PCIE_ASPM_CONTROLS,
	    .rtc_century = RTC_CMOS_CENTURY,
	    .devices = adevs,
	    .ndevices = (unsigned)nadevs,
	    .vmgenid_addr = X86_VMGENID_ADDR,
	    .ged = &ged,
	};
	uint8_t *acpi = vmm_mem_ptr(&vm->mem, X86_ACPI_ADDR, X86_ACPI_SIZE);
	struct vmm_acpi_layout lay;
	if (!acpi)
		return vmm_errf(err, -E2BIG, "guest memory too small for the ACPI tables");
	r = vmm_acpi_build(&acfg, acpi, X86_ACPI_SIZE, X86_ACPI_ADDR, &lay, err);
	if (r < 0)
		return r;

	/* No firmware: at the reset vector (where Linux jumps for a BIOS reboot,
	 * its choice with hardware-reduced ACPI and no EFI) a stub writes the
	 * ACPI reset register: mov al, 1; mov dx, 0x602; out dx, al; hlt; jmp $-1 */
	static const uint8_t reset_stub[] = {0xb0,
					     X86_ACPI_RESET_VALUE,
					     0xba,
					     X86_PORT_ACPI_RESET & 0xff,
					     X86_PORT_ACPI_RESET >> 8,
					     0xee,
					     0xf4,
					     0xeb,
					     0xfd};
	if (vmm_mem_write(&vm->mem, X86_RESET_VECTOR, reset_stub, sizeof(reset_stub)) < 0)
		return vmm_errf(err, -E2BIG, "guest memory too small for the reset vector");
	r = new_generation_id(vm, err);
	if (r < 0)
		return r;

	struct vmm_e820 e820[VMM_E820_MAX];
	unsigned ne820 = vmm_x86_e820(&vm->mem, e820, VMM_E820_MAX);

	/* the kernel, initrd and busybox, mapped read-only for the copy: the
	 * request ember_config_resolve planned, made the same way */
	struct vmm_boot_files f;
	r = vmm_config_boot_open(cfg, cfg->cmdline, &f, err);
	if (r < 0)
		return r;
	if (cfg->builtin_initrd)
		vmm_logf(cfg, EMBER_LOG_DEBUG, "built-in initramfs: %u module(s) for %s",
			 f.req.nmodules, f.req.nmodules ? f.release : "this kernel");
	struct vmm_boot_request *req = &f.req;
	req->rsdp_gpa = X86_ACPI_ADDR + lay.rsdp;
	req->e820 = e820;
	req->e820_count = ne820;
	req->boot = cfg->boot;
	req->kcache_dir =
	    cfg->kernel_cache && cfg->kernel_cache_dir[0] ? cfg->kernel_cache_dir : NULL;
	struct vmm_boot_entry entry;
	uint64_t t0 = vmm_now_ns();
	r = vmm_boot_load(&vm->mem, req, &entry, err);
	vmm_logf(cfg, EMBER_LOG_DEBUG, "kernel, initrd and boot structures loaded in %.1f ms",
		 (double)(vmm_now_ns() - t0) / 1e6);
	if (r < 0) {
		/* name the kernel, unless the message names its culprit already
		 * (the kernel or the initrd: vmm_boot_plan's messages) */
		if (err && !strstr(err->msg, cfg->kernel) &&
		    !(cfg->initrd[0] && strstr(err->msg, cfg->initrd)))
			vmm_err_prefix(err, r, "%s", cfg->kernel);
		goto out;
	}
	if (entry.note[0])
		vmm_logf(cfg, EMBER_LOG_DEBUG, "%s", entry.note);
	if (entry.cache_note[0])
		vmm_logf(cfg, EMBER_LOG_DEBUG, "%s", entry.cache_note);
	else if (cfg->kernel_format == EMBER_KERNEL_BZIMAGE && cfg->kernel_cache &&
		 !cfg->kernel_cache_dir[0] && entry.mode == VMM_ENTRY_PVH32)
		vmm_logf(cfg, EMBER_LOG_DEBUG,
			 "kernel cache: not used (neither XDG_CACHE_HOME nor HOME is set)");
	r = set_entry_state(vm->vcpus[0], &entry);
	if (r < 0)
		r = vmm_errf(err, r, "vCPU 0: cannot set the entry registers: %s", strerror(-r));
	else
		vmm_logf(cfg, EMBER_LOG_DEBUG, "%s entry at %#" PRIx64 " (%s)",
			 entry.mode == VMM_ENTRY_LONG64 ? "64-bit boot protocol" : "PVH", entry.rip,
			 cfg->kernel);
out:
	vmm_boot_close(&f);
	return r;
}

size_t vmm_board_console_input(struct ember_vm *vm, const uint8_t *buf, size_t len)
{
	struct vmm_board *b = vm->board;
	if (b && b->vcon)
		return vmm_virtio_console_input(b->vcon, buf, len);
	return b && b->uart ? serial8250_rx_push(b->uart, buf, len) : 0;
}

void vmm_board_console_ready(struct ember_vm *vm)
{
	struct vmm_board *b = vm->board;
	if (b && b->uart)
		serial8250_tx_ready(b->uart);
	if (b && b->vcon)
		vmm_virtio_console_ready(b->vcon);
}

void vmm_board_console_resize(struct ember_vm *vm, uint16_t cols, uint16_t rows)
{
	struct vmm_board *b = vm->board;
	if (b && b->vcon)
		vmm_virtio_console_resize(b->vcon, cols, rows);
}

void vmm_board_devices_kick(struct ember_vm *vm)
{
	struct vmm_board *b = vm->board;
	if (!b)
		return;
	if (b->rtc_owed)
		rtc_retime(b); /* its timer fired while paused */
	if (!b->nvirtio && !b->nslots)
		return;
	pthread_mutex_lock(&vm->dev_lock);
	if (!vm->devs_paused) {
		for (unsigned i = 0; i < b->nvirtio; i++)
			vmm_virtio_kick(b->virtio[i]);
		for (unsigned i = 0; i < b->nslots; i++)
			vmm_virtio_kick(b->slots[i].v); /* NULL: an empty slot */
	}
	pthread_mutex_unlock(&vm->dev_lock);
}

void vmm_board_devices_quiesce(struct ember_vm *vm)
{
	struct vmm_board *b = vm->board;
	for (unsigned i = 0; b && i < b->nvirtio; i++)
		vmm_virtio_quiesce(b->virtio[i]);
}

void vmm_board_devices_reset(struct ember_vm *vm)
{
	struct vmm_board *b = vm->board;
	if (!b)
		return;
	struct dev *legacy[] = {
	    b->uart ? serial8250_dev(b->uart) : NULL,
	    b->kbd ? i8042_dev(b->kbd) : NULL,
	    b->rtc ? rtc_cmos_dev(b->rtc) : NULL,
	    b->marker ? bootmarker_dev(b->marker) : NULL,
	    b->pvpanic ? pvpanic_dev(b->pvpanic) : NULL,
	    b->cf9 ? reset_cf9_dev(b->cf9) : NULL,
	    b->pci ? pci_host_dev(b->pci) : NULL,
	};
	for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
		if (legacy[i])
			dev_reset(legacy[i]);
	for (unsigned i = 0; i < b->nvirtio; i++)
		vmm_virtio_reset(b->virtio[i]);
	b->rtc_owed = true; /* its timer follows the reset registers at the next kick */
}

struct vmm_virtio *vmm_board_virtio(struct ember_vm *vm, unsigned i)
{
	struct vmm_board *b = vm->board;
	return b && i < b->nvirtio ? b->virtio[i] : NULL;
}

void vmm_board_devices_report(struct ember_vm *vm)
{
	struct vmm_board *b = vm->board;
	for (unsigned i = 0; b && i < b->nvirtio; i++) {
		char line[384]; /* a NIC's line and its rate limits */
		vmm_virtio_format(b->virtio[i], line, sizeof(line));
		vmm_logf(&vm->cfg, EMBER_LOG_DEBUG, "%s", line);
	}
}

/* ------------------------------------------------------------ saved state */

/* The ACPI registers keep one thing: the sleep types already reported. */
static int pm_save(struct dev *dev, struct vmm_state_w *w)
{
	struct vmm_board *b =
	    (struct vmm_board *)((char *)dev - offsetof(struct vmm_board, pm_state));
	vmm_sw_begin(w, "acpi-pm", 1);
	vmm_sw_u8(w, __atomic_load_n(&b->pm.sleep_reported, __ATOMIC_RELAXED));
	vmm_sw_end(w);
	return vmm_sw_error(w);
}

static int pm_load(struct dev *dev, struct vmm_state_r *r)
{
	struct vmm_board *b =
	    (struct vmm_board *)((char *)dev - offsetof(struct vmm_board, pm_state));
	uint32_t version = 1;
	vmm_sr_begin(r, "acpi-pm", &version);
	uint8_t v = vmm_sr_u8(r);
	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	__atomic_store_n(&b->pm.sleep_reported, v, __ATOMIC_RELAXED);
	return 0;
}

static const struct dev_ops pm_state_ops = {
    .bus = {.name = "acpi-pm"}, /* never on a bus: its registers are acpi_pm_ops */
    .save = pm_save,
    .load = pm_load,
};

bool vmm_board_state_device(struct ember_vm *vm, unsigned i, struct vmm_board_state_dev *out)
{
	struct vmm_board *b = vm->board;
	if (!b || !b->uart || !b->kbd || !b->rtc || !b->marker || !b->pvpanic || !b->pci ||
	    !b->cf9 || !b->ged)
		return false;
	b->pm_state.ops = &pm_state_ops;
	struct vmm_board_state_dev legacy[] = {
	    {.name = "com1", .dev = serial8250_dev(b->uart)},
	    {.name = "i8042", .dev = i8042_dev(b->kbd)},
	    {.name = "rtc", .dev = rtc_cmos_dev(b->rtc)},
	    {.name = "bootmarker", .dev = bootmarker_dev(b->marker)},
	    {.name = "pvpanic", .dev = pvpanic_dev(b->pvpanic)},
	    {.name = "pci-host", .dev = pci_host_dev(b->pci)},
	    {.name = "reset-cf9", .dev = reset_cf9_dev(b->cf9)},
	    {.name = "acpi-pm", .dev = &b->pm_state},
	    {.name = X86_GED_NAME, .dev = ged_dev(b->ged)},
	};
	const unsigned nlegacy = sizeof(legacy) / sizeof(legacy[0]);
	if (i < nlegacy) {
		*out = legacy[i];
		return true;
	}
	if (i - nlegacy >= b->nvirtio)
		return false;
	struct vmm_virtio *v = b->virtio[i - nlegacy];
	const struct vmm_dev_desc *d = vmm_virtio_desc(v);
	*out = (struct vmm_board_state_dev){.name = d->name, .detail = d->detail, .virtio = v};
	return true;
}

/* ------------------------------------------------------------ guest-visible events */

int vmm_board_acpi_event(struct ember_vm *vm, enum vmm_acpi_event ev, unsigned n,
			 struct ember_error *err)
{
	struct vmm_board *b = vm->board;
	if (!b || !b->ged)
		return vmm_errf(err, -ENODEV, "no such device on this VM (no ACPI GED)");
	uint32_t bits;
	switch (ev) {
	case VMM_ACPI_POWER_BUTTON:
		bits = GED_EV_POWER;
		break;
	case VMM_ACPI_SLEEP_BUTTON:
		bits = GED_EV_SLEEP;
		break;
	case VMM_ACPI_GPE:
		/* the DSDT has handlers G000..G007 (vmm_board_load's ngpe) */
		if (n >= EMBER_GPE_COUNT)
			return vmm_errf(err, -ENOENT,
					"GPE %u: the DSDT has no handler for it (0..%u have one)",
					n, EMBER_GPE_COUNT - 1);
		bits = GED_EV_GPE(n);
		break;
	default:
		return vmm_errf(err, -EINVAL, "unknown ACPI event %d", (int)ev);
	}
	int r = ged_raise(b->ged, bits);
	return r < 0 ? vmm_errf(err, r, "ACPI GED: cannot raise the event") : 0;
}

int vmm_board_acpi_stats(struct ember_vm *vm, struct ember_acpi_stats *out, struct ember_error *err)
{
	struct vmm_board *b = vm->board;
	if (!b || !b->ged)
		return vmm_errf(err, -ENODEV, "no such device on this VM (no ACPI GED)");
	struct ged_stats s;
	ged_get_stats(b->ged, &s);
	*out = (struct ember_acpi_stats){
	    .power_button = s.raised[0], .sleep_button = s.raised[1], .evt_reads = s.reads};
	for (unsigned n = 0; n < EMBER_GPE_COUNT; n++) {
		out->gpe[n] = s.gpe_raised[n];
		out->gpe_handled[n] = s.gpe_handled[n];
	}
	return 0;
}

int vmm_board_rtc_event(struct ember_vm *vm, struct ember_error *err)
{
	struct vmm_board *b = vm->board;
	if (!b || !b->rtc)
		return vmm_errf(err, -ENODEV, "no such device on this VM (no RTC)");
	return rtc_cmos_force_alarm(b->rtc) ? 1 : 0;
}

/* ------------------------------------------------------------ hotplug */

/* hp_lock held: tells the guest the slots changed (a bus check). */
static void slots_changed(struct vmm_board *b)
{
	ged_set_slots(b->ged, b->present);
	(void)ged_raise(b->ged, GED_EV_HOTPLUG);
}

int vmm_board_hotplug_add(struct ember_vm *vm, const char *spec, unsigned *slot,
			  struct ember_error *err)
{
	struct vmm_board *b = vm->board;
	if (!b || !b->nslots || !b->ged)
		return vmm_errf(err, -ENODEV,
				"no such device on this VM (no hotplug slots: hotplug-slots=N)");
	pthread_mutex_lock(&b->hp_lock);
	unsigned i = 0;
	while (i < b->nslots && (b->slots[i].v || b->slots[i].removing))
		i++;
	if (i == b->nslots) {
		pthread_mutex_unlock(&b->hp_lock);
		return vmm_errf(err, -ENOSPC, "net hotplug: all %u slots are taken", b->nslots);
	}
	struct hp_slot *s = &b->slots[i];
	struct vmm_virtio *v;
	int r = vmm_virtio_hotplug_net(vm, s->d, spec, &v, err);
	if (r < 0) {
		pthread_mutex_unlock(&b->hp_lock);
		return r;
	}
	pthread_rwlock_wrlock(&s->lock);
	s->target = vmm_virtio_bus_dev(v);
	pthread_rwlock_unlock(&s->lock);
	pthread_mutex_lock(&vm->dev_lock);
	s->v = v;
	pthread_mutex_unlock(&vm->dev_lock);
	b->present |= 1u << i;
	slots_changed(b);
	pthread_mutex_unlock(&b->hp_lock);
	vmm_logf(&vm->cfg, EMBER_LOG_INFO, "hotplug slot %u: virtio-net %s added", i, spec);
	*slot = i;
	return 0;
}

#define HOTPLUG_REMOVE_WAIT_MS 10000

int vmm_board_hotplug_remove(struct ember_vm *vm, unsigned slot, struct ember_error *err)
{
	struct vmm_board *b = vm->board;
	if (!b || !b->nslots || !b->ged)
		return vmm_errf(err, -ENODEV,
				"no such device on this VM (no hotplug slots: hotplug-slots=N)");
	pthread_mutex_lock(&b->hp_lock);
	struct hp_slot *s = slot < b->nslots ? &b->slots[slot] : NULL;
	if (!s || !s->v) {
		pthread_mutex_unlock(&b->hp_lock);
		return vmm_errf(err, -ENODEV, "no such device on this VM (hotplug slot %u is %s)",
				slot, s ? "empty" : "not there");
	}
	if (!s->removing) {
		s->removing = true;
		b->present &= ~(1u << slot);
		slots_changed(b);
	}
	/* the guest lets go of the card: its driver resets it (status 0) */
	for (unsigned ms = 0; vmm_virtio_status(s->v) && ms < HOTPLUG_REMOVE_WAIT_MS; ms += 10)
		usleep(10000);
	if (vmm_virtio_status(s->v)) {
		pthread_mutex_unlock(&b->hp_lock);
		return vmm_errf(err, -EBUSY,
				"hotplug slot %u: the guest still drives the card after %u s (it "
				"was told; call again to wait more)",
				slot, HOTPLUG_REMOVE_WAIT_MS / 1000);
	}
	pthread_rwlock_wrlock(&s->lock);
	s->target = NULL;
	pthread_rwlock_unlock(&s->lock);
	pthread_mutex_lock(&vm->dev_lock);
	struct vmm_virtio *v = s->v;
	s->v = NULL;
	pthread_mutex_unlock(&vm->dev_lock);
	s->removing = false;
	pthread_mutex_unlock(&b->hp_lock);
	vmm_virtio_destroy(v); /* not under dev_lock: it waits for the loop's callbacks */
	vmm_logf(&vm->cfg, EMBER_LOG_INFO, "hotplug slot %u: card removed", slot);
	return 0;
}
