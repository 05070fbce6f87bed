/* tests/unit/virtio_driver.h - a driver's side of a split virtqueue in test guest memory (descriptors, available ring, used ring). */
#ifndef EMBER_TESTS_VIRTIO_DRIVER_H
#define EMBER_TESTS_VIRTIO_DRIVER_H

#include "../lib/test.h"
#include "../../vmm/mem.h"

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

#endif /* EMBER_TESTS_VIRTIO_DRIVER_H */
