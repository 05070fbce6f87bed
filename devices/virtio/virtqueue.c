/* devices/virtio/virtqueue.c - split virtqueue, device side: checked chain walks, used ring, notification suppression. */
#include "virtqueue.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>
#include <sys/uio.h>

#define DESC_SIZE 16u

/* A descriptor, copied out of guest memory once (the guest may change it). */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static inline uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v; /* little-endian host (x86): VIRTIO_F_VERSION_1 rings are LE */
}
static inline void st16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
static inline void st32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
/* Indices the other side publishes or reads concurrently: 2-byte aligned
 * (vq_enable checked the ring alignment), so single atomic accesses. */
static inline uint16_t ld16_acquire(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE);
}
static inline uint16_t ld16_relaxed(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED);
}
static inline void st16_release(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELEASE);
}

uint64_t vq_desc_bytes(uint16_t size)
{
	return (uint64_t)DESC_SIZE * size;
}
uint64_t vq_avail_bytes(uint16_t size)
{
	return 6 + 2 * (uint64_t)size;
}
uint64_t vq_used_bytes(uint16_t size)
{
	return 6 + 8 * (uint64_t)size;
}

void vq_reset(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

int vq_enable(struct virtq *q, const struct vmm_mem *mem, uint16_t size, uint64_t desc_gpa,
	      uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect)
{
	vq_reset(q);
	if (!mem || size == 0 || (size & (size - 1)) != 0)
		return -EINVAL;
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3))
		return -EINVAL;
	uint8_t *d = vmm_mem_ptr(mem, desc_gpa, vq_desc_bytes(size));
	uint8_t *a = vmm_mem_ptr(mem, avail_gpa, vq_avail_bytes(size));
	uint8_t *u = vmm_mem_ptr(mem, used_gpa, vq_used_bytes(size));
	if (!d || !a || !u)
		return -EFAULT;
	*q = (struct virtq){.mem = mem,
			    .size = size,
			    .event_idx = event_idx,
			    .indirect = indirect,
			    .enabled = true,
			    .desc = d,
			    .avail = a,
			    .used = u};
	q->notify = true; /* indices start at 0: a fresh queue */
	return 0;
}

bool vq_has_work(const struct virtq *q)
{
	return q->enabled && !q->broken && ld16_acquire(q->avail + 2) != q->last_avail;
}

static void read_desc(const uint8_t *table, uint32_t i, struct desc *d)
{
	const uint8_t *p = table + (uint64_t)i * DESC_SIZE;
	memcpy(&d->addr, p, 8);
	memcpy(&d->len, p + 8, 4);
	memcpy(&d->flags, p + 12, 2);
	memcpy(&d->next, p + 14, 2);
}

/* Walks the chain at head into c; returns 0 or the chain's error. */
static int walk(const struct virtq *q, struct vq_chain *c, uint16_t head)
{
	const uint8_t *table = q->desc;
	uint32_t table_n = q->size;
	uint32_t budget = q->size; /* descriptors left before it must be a loop */
	bool in_indirect = false, seen_writable = false;
	uint32_t i = head;
	for (;;) {
		if (budget == 0)
			return -ELOOP;
		budget--;
		if (i >= table_n)
			return -EINVAL;
		struct desc d;
		read_desc(table, i, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!q->indirect || in_indirect || (d.flags & VRING_DESC_F_NEXT))
				return -EINVAL;
			if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > VQ_MAX_SIZE)
				return -EINVAL;
			const uint8_t *t = vmm_mem_ptr(q->mem, d.addr, d.len);
			if (!t)
				return -EFAULT;
			table = t;
			table_n = d.len / DESC_SIZE;
			budget = table_n;
			in_indirect = true;
			i = 0;
			continue;
		}
		bool w = (d.flags & VRING_DESC_F_WRITE) != 0;
		if (!w && seen_writable)
			return -EINVAL; /* readable after device-writable */
		seen_writable |= w;
		if (d.len) {
			uint8_t *host = vmm_mem_ptr(q->mem, d.addr, d.len);
			if (!host)
				return -EFAULT;
			if (c->nbufs >= c->max_bufs)
				return -E2BIG;
			uint64_t *sum = w ? &c->writable_len : &c->readable_len;
			if (*sum + d.len > UINT32_MAX)
				return -EOVERFLOW;
			*sum += d.len;
			c->bufs[c->nbufs++] = (struct vq_buf){
			    .gpa = d.addr, .host = host, .len = d.len, .device_writes = w};
			if (!w)
				c->nreadable++;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int vq_pop(struct virtq *q, struct vq_chain *c)
{
	if (!q->enabled || !c || (c->max_bufs && !c->bufs))
		return -EINVAL;
	if (q->broken)
		return -EIO;
	uint16_t avail_idx = ld16_acquire(q->avail + 2);
	uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size) {
		q->broken = true;
		return -EIO;
	}
	uint16_t head = ld16(q->avail + 4 + 2 * (uint32_t)(q->last_avail & (q->size - 1)));
	if (head >= q->size) {
		q->broken = true;
		return -EIO;
	}
	q->last_avail++;
	q->popped++;
	if (q->event_idx && q->notify) { /* keep asking for the next one */
		st16(q->used + 4 + 8 * (uint32_t)q->size, q->last_avail);
		/* the new avail_event must be visible before the next look at
		 * avail->idx (store-load order): otherwise a driver that
		 * publishes now reads the old avail_event, does not notify, and
		 * this device, having read the old idx, waits for a kick that
		 * never comes */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	c->head = head;
	c->nbufs = c->nreadable = 0;
	c->readable_len = c->writable_len = 0;
	c->error = walk(q, c, head);
	if (c->error)
		q->bad_chains++;
	return 1;
}

int vq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	if (!q->enabled || head >= q->size)
		return -EINVAL;
	uint8_t *e = q->used + 4 + 8 * (uint32_t)(q->used_idx & (q->size - 1));
	st32(e, head);
	st32(e + 4, written);
	q->used_idx++;
	st16_release(q->used + 2, q->used_idx);
	q->pushed++;
	return 0;
}

bool vq_need_interrupt(struct virtq *q)
{
	if (!q->enabled)
		return false;
	/* the used index must be visible before the driver's flags are read */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t now = q->used_idx, old = q->signalled;
	bool valid = q->signalled_valid;
	q->signalled = now;
	q->signalled_valid = true;
	if (valid && now == old)
		return false; /* nothing new since the last interrupt */
	if (!q->event_idx)
		return !(ld16_relaxed(q->avail) & VRING_AVAIL_F_NO_INTERRUPT);
	uint16_t used_event = ld16_relaxed(q->avail + 4 + 2 * (uint32_t)q->size);
	return !valid || (uint16_t)(now - used_event - 1) < (uint16_t)(now - old);
}

void vq_set_notify(struct virtq *q, bool enable)
{
	if (!q->enabled)
		return;
	q->notify = enable;
	if (q->event_idx) {
		/* avail_event: notify when the driver publishes past last_avail */
		if (enable)
			st16(q->used + 4 + 8 * (uint32_t)q->size, q->last_avail);
	} else {
		uint16_t f = ld16_relaxed(q->used);
		f = enable ? (uint16_t)(f & ~VRING_USED_F_NO_NOTIFY)
			   : (uint16_t)(f | VRING_USED_F_NO_NOTIFY);
		st16(q->used, f);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

uint16_t vq_notify_at_next(struct virtq *q)
{
	if (!q->enabled)
		return 0;
	q->notify = true;
	if (q->event_idx)
		st16(q->used + 4 + 8 * (uint32_t)q->size, ld16_acquire(q->avail + 2));
	else
		st16(q->used, (uint16_t)(ld16_relaxed(q->used) & ~VRING_USED_F_NO_NOTIFY));
	/* avail_event visible before avail->idx is read again (vq_pop's
	 * store-load order) */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return ld16_acquire(q->avail + 2);
}

uint16_t vq_avail_idx(const struct virtq *q)
{
	return q->enabled ? ld16_acquire(q->avail + 2) : 0;
}

static uint64_t copy_chain(const struct vq_chain *c, bool writable, uint64_t off, uint8_t *flat,
			   uint64_t len, bool to_guest)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < c->nbufs && done < len; i++) {
		const struct vq_buf *b = &c->bufs[i];
		if (b->device_writes != writable)
			continue;
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		uint64_t n = b->len - off;
		if (n > len - done)
			n = len - done;
		if (to_guest)
			memcpy(b->host + off, flat + done, n);
		else
			memcpy(flat + done, b->host + off, n);
		done += n;
		off = 0;
	}
	return done;
}

uint64_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, uint64_t len)
{
	return copy_chain(c, false, off, dst, len, false);
}

uint64_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, uint64_t len)
{
	return copy_chain(c, true, off, (uint8_t *)(uintptr_t)src, len, true);
}

int vq_chain_iov(const struct vq_chain *c, bool writable, uint64_t off, uint64_t len,
		 struct iovec *iov, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < c->nbufs && len; i++) {
		const struct vq_buf *b = &c->bufs[i];
		if (b->device_writes != writable)
			continue;
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		if (n == max)
			return -E2BIG;
		uint64_t take = b->len - off;
		if (take > len)
			take = len;
		iov[n++] = (struct iovec){.iov_base = b->host + off, .iov_len = (size_t)take};
		len -= take;
		off = 0;
	}
	return len ? -ERANGE : (int)n;
}
