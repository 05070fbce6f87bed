/* vmm/arch/x86/acpi_pm.c - ACPI sleep and reset registers: power-off and reboot requests from the guest. */
#include "acpi_pm.h"

#define SLP_EN	      (1u << 5)
#define SLP_TYP_SHIFT 2
#define SLP_TYP_MASK  7u
#define WAK_STS	      (1u << 7)

static void access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
		   unsigned len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	(void)addr;
	(void)vcpu;
	if (len != 1)
		return;
	if (!is_write) {
		data[0] = offset == 1 ? WAK_STS : 0;
		return;
	}
	uint8_t v = data[0];
	switch (offset) {
	case 0:
		if (!(v & SLP_EN))
			break;
		if (((v >> SLP_TYP_SHIFT) & SLP_TYP_MASK) == pm->s5_sleep_type) {
			if (pm->poweroff)
				pm->poweroff(pm->opaque);
		} else if (pm->sleep) {
			unsigned type = (v >> SLP_TYP_SHIFT) & SLP_TYP_MASK;
			uint8_t bit = (uint8_t)(1u << type);
			if (!(__atomic_fetch_or(&pm->sleep_reported, bit, __ATOMIC_RELAXED) & bit))
				pm->sleep(pm->opaque, type);
		}
		break;
	case 2:
		if (v == pm->reset_value && pm->reset)
			pm->reset(pm->opaque);
		break;
	default:
		break;
	}
}

const struct bus_ops acpi_pm_ops = {
    .name = "acpi-pm",
    .sizes = BUS_W1,
    .access = access,
};
