/* fuzz/fuzz_virtqueue.c - libFuzzer target: the input is a guest's memory holding a split virtqueue; the device walks it. */
#include "fuzz_common.h"
#include "../devices/virtio/virtqueue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the queue size (1 << (b % 9): 1..256), byte 1 the
 * features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC), byte 2 whether the
 * device turns notifications off (bit 7) first; the rest is the first bytes of 64 KiB of guest RAM, which holds the
 * descriptor table at 0, the available ring at 0x1000 and the used ring at
 * 0x2000. Every chain vq_pop accepts must lie inside guest RAM, within the
 * caller's buffer array, readable buffers first, its sums right.
 */
#define MEM	  (64u << 10)
#define MAX_BUFS  64
#define AVAIL_GPA 0x1000
#define USED_GPA  0x2000

static struct vmm_mem *mem(void)
{
	static struct vmm_mem m;
	static int ready;
	if (!ready) {
		if (vmm_mem_create(&m, MEM, MEM, MEM, EMBER_MEM_ANON, false, NULL) < 0)
			abort();
		ready = 1;
	}
	return &m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	struct vmm_mem *m = mem();
	uint16_t qsize = (uint16_t)(1u << (data[0] % 9));
	bool event_idx = data[1] & 1, indirect = data[1] & 2;
	memset(m->host, 0, MEM);
	size_t n = size - 3 < MEM ? size - 3 : MEM;
	memcpy(m->host, data + 3, n);

	struct virtq q;
	FUZZ_CHECK(vq_enable(&q, m, qsize, 0, AVAIL_GPA, USED_GPA, event_idx, indirect) == 0);
	if (data[2] & 0x80) /* sometimes the device suppresses notifications */
		vq_set_notify(&q, false);
	struct vq_buf bufs[MAX_BUFS];
	struct vq_chain c = {.bufs = bufs, .max_bufs = MAX_BUFS};
	static uint8_t scratch[MEM];
	unsigned taken = 0;
	int r;
	/* a well-behaved device takes at most what is published: bounded */
	while ((r = vq_pop(&q, &c)) == 1) {
		FUZZ_CHECK(++taken <= qsize);
		FUZZ_CHECK(c.head < qsize);
		FUZZ_CHECK(c.nbufs <= MAX_BUFS && c.nreadable <= c.nbufs);
		uint64_t rd = 0, wr = 0;
		for (unsigned i = 0; i < c.nbufs; i++) {
			const struct vq_buf *b = &c.bufs[i];
			FUZZ_CHECK(b->len > 0 && b->len <= MEM);
			FUZZ_CHECK(b->host >= m->host && b->host + b->len <= m->host + MEM);
			FUZZ_CHECK(b->host == m->host + b->gpa);
			FUZZ_CHECK(b->device_writes == (i >= c.nreadable));
			if (b->device_writes)
				wr += b->len;
			else
				rd += b->len;
		}
		if (c.error == 0) {
			FUZZ_CHECK(rd == c.readable_len && wr == c.writable_len);
			uint64_t want = rd < MEM ? rd : MEM;
			FUZZ_CHECK(vq_chain_read(&c, 0, scratch, want) == want);
			want = wr < MEM ? wr : MEM;
			FUZZ_CHECK(vq_chain_write(&c, 0, scratch, want) == want);
		}
		FUZZ_CHECK(vq_push(&q, c.head, c.error ? 0 : (uint32_t)c.writable_len) == 0);
		(void)vq_need_interrupt(&q);
	}
	FUZZ_CHECK(r == 0 || r == -EIO);
	FUZZ_CHECK(q.popped == taken && q.pushed == taken);
	vq_set_notify(&q, true);
	(void)vq_has_work(&q);
	return 0;
}
