/* vmm/control.c - guest-visible control actions of the library: ACPI buttons and GPE events, the RTC interrupt. */
#include "internal.h"
#include "vm.h"

#include <errno.h>

static int acpi_event(struct ember_vm *vm, enum vmm_acpi_event ev, unsigned n,
		      struct ember_error *err)
{
	if (!vm)
		return vmm_errf(err, -EINVAL, "no VM");
	return vmm_board_acpi_event(vm, ev, n, err);
}

int ember_vm_power_button(struct ember_vm *vm, struct ember_error *err)
{
	return acpi_event(vm, VMM_ACPI_POWER_BUTTON, 0, err);
}

int ember_vm_sleep_button(struct ember_vm *vm, struct ember_error *err)
{
	return acpi_event(vm, VMM_ACPI_SLEEP_BUTTON, 0, err);
}

int ember_vm_inject_gpe(struct ember_vm *vm, unsigned n, struct ember_error *err)
{
	return acpi_event(vm, VMM_ACPI_GPE, n, err);
}

int ember_vm_acpi_stats(struct ember_vm *vm, struct ember_acpi_stats *out, struct ember_error *err)
{
	if (!vm || !out)
		return vmm_errf(err, -EINVAL, "no VM or no result buffer");
	return vmm_board_acpi_stats(vm, out, err);
}

int ember_vm_rtc_interrupt(struct ember_vm *vm, struct ember_error *err)
{
	if (!vm)
		return vmm_errf(err, -EINVAL, "no VM");
	return vmm_board_rtc_event(vm, err);
}

int ember_vm_net_hotplug_add(struct ember_vm *vm, const char *spec, unsigned *slot,
			     struct ember_error *err)
{
	if (!vm || !spec || !slot)
		return vmm_errf(err, -EINVAL, "net hotplug: no VM, spec or slot");
	return vmm_board_hotplug_add(vm, spec, slot, err);
}

int ember_vm_net_hotplug_remove(struct ember_vm *vm, unsigned slot, struct ember_error *err)
{
	if (!vm)
		return vmm_errf(err, -EINVAL, "no VM");
	return vmm_board_hotplug_remove(vm, slot, err);
}
