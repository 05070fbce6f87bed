/* tests/unit/virtio_driver.h - a driver's side of a split virtqueue in test guest memory (descriptors, available ring, used ring). */
#ifndef EMBER_TESTS_VIRTIO_DRIVER_H
#define EMBER_TESTS_VIRTIO_DRIVER_H

#include "../lib/test.h"
#include "../../devices/virtio/mmio.h"
#include "../../lib/io/mem.h"
#include "virtio_mmio_access.h"

#include <linux/virtio_config.h>

#include <string.h>

/* A driver's queue: where its parts are in guest memory, its next index. */
struct tdrv_queue {
	const struct vmm_mem *mem;
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx;
};

static inline void tdrv_desc(const struct tdrv_queue *q, uint64_t table, unsigned i, uint64_t addr,
			     uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t raw[16];
	memcpy(raw, &addr, 8);
	memcpy(raw + 8, &len, 4);
	memcpy(raw + 12, &flags, 2);
	memcpy(raw + 14, &next, 2);
	REQUIRE_OK(vmm_mem_write(q->mem, table + 16ull * i, raw, 16));
}

/* Puts head in the next available slot and publishes it. */
static inline void tdrv_publish(struct tdrv_queue *q, uint16_t head)
{
	uint16_t slot = (uint16_t)(q->avail_idx % q->size);
	REQUIRE_OK(vmm_mem_write(q->mem, q->avail + 4 + 2ull * slot, &head, 2));
	q->avail_idx++;
	REQUIRE_OK(vmm_mem_write(q->mem, q->avail + 2, &q->avail_idx, 2));
}

static inline uint16_t tdrv_rd16(const struct vmm_mem *mem, uint64_t gpa)
{
	uint16_t v = 0;
	vmm_mem_read(mem, gpa, &v, 2);
	return v;
}
static inline uint32_t tdrv_rd32(const struct vmm_mem *mem, uint64_t gpa)
{
	uint32_t v = 0;
	vmm_mem_read(mem, gpa, &v, 4);
	return v;
}

#define TDRV_DRIVER_ALL                                                                       \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | \
	 VIRTIO_CONFIG_S_DRIVER_OK)

/* virtio_mmio's probe and the virtio core's negotiation: reset,
 * ACKNOWLEDGE, DRIVER, read the offered features, write features, set
 * FEATURES_OK. Returns the offered features. */
static inline uint64_t tdrv_probe(const struct tdrv_mmio *m, uint32_t device_id, uint64_t features)
{
	CHECK_EQ(tdrv_rd(m, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	CHECK_EQ(tdrv_rd(m, VIRTIO_MMIO_VERSION), 2);
	CHECK_EQ(tdrv_rd(m, VIRTIO_MMIO_DEVICE_ID), device_id);
	tdrv_wr(m, VIRTIO_MMIO_STATUS, 0);
	tdrv_wr(m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	tdrv_wr(m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	tdrv_wr(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t offered = (uint64_t)tdrv_rd(m, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	tdrv_wr(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	offered |= tdrv_rd(m, VIRTIO_MMIO_DEVICE_FEATURES);
	tdrv_accept(m, features);
	return offered;
}

/* vm_setup_vq: queue index, size, the three addresses, ready. */
static inline void tdrv_setup_queue(const struct tdrv_mmio *m, unsigned index,
				    const struct tdrv_queue *q)
{
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_SEL, index);
	CHECK_EQ(tdrv_rd(m, VIRTIO_MMIO_QUEUE_READY), 0);
	CHECK(tdrv_rd(m, VIRTIO_MMIO_QUEUE_NUM_MAX) >= q->size);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_NUM, q->size);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(q->desc >> 32));
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)q->avail);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(q->avail >> 32));
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)q->used);
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(q->used >> 32));
	tdrv_wr(m, VIRTIO_MMIO_QUEUE_READY, 1);
}

#endif /* EMBER_TESTS_VIRTIO_DRIVER_H */
