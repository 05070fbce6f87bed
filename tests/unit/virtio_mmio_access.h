/* tests/unit/virtio_mmio_access.h - 32-bit register access to a virtio-mmio window on a bus, for the unit tests' driver and the fuzz targets. */
#ifndef EMBER_TESTS_VIRTIO_MMIO_ACCESS_H
#define EMBER_TESTS_VIRTIO_MMIO_ACCESS_H

#include "../../devices/virtio/mmio.h"
#include "../../lib/io/bus.h"

#include <linux/virtio_config.h>

#include <stdint.h>

/* A virtio-mmio window on a test bus, driven as Linux's virtio_mmio does. */
struct tdrv_mmio {
	struct bus *bus;
	uint64_t base;
};

static inline uint32_t tdrv_rd(const struct tdrv_mmio *m, uint64_t off)
{
	uint64_t v = 0;
	bus_access_u64(m->bus, m->base + off, &v, 4, false, 0);
	return (uint32_t)v;
}
static inline void tdrv_wr(const struct tdrv_mmio *m, uint64_t off, uint32_t v)
{
	uint64_t x = v;
	bus_access_u64(m->bus, m->base + off, &x, 4, true, 0);
}

/* The driver writes the features it accepts and sets FEATURES_OK (after
 * ACKNOWLEDGE | DRIVER), as Linux's virtio_mmio finalize_features does. */
static inline void tdrv_accept(const struct tdrv_mmio *m, uint64_t features)
{
	tdrv_wr(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	tdrv_wr(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	tdrv_wr(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	tdrv_wr(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	tdrv_wr(m, VIRTIO_MMIO_STATUS,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
}

#endif /* EMBER_TESTS_VIRTIO_MMIO_ACCESS_H */
