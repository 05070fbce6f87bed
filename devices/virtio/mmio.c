/* devices/virtio/mmio.c - the virtio-mmio transport (version 2): registers, negotiation, status, queues. */
#include "mmio.h"

#include "../../lib/io/util.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>

#define RING_FEATURES                                                       \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) | \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC))

/* What the driver wrote for one queue, before it sets QueueReady. */
struct queue_cfg {
	uint16_t num;
	uint64_t desc, avail, used;
	bool ready;
};

struct virtio_mmio {
	struct dev dev;
	struct virtio_mmio_config cfg;
	pthread_mutex_t lock;
	uint64_t offered; /* device features | ring features */
	uint64_t driver_features;
	uint32_t dev_features_sel, drv_features_sel, queue_sel;
	uint8_t status;		   /* relaxed atomic for readers without the lock */
	uint32_t interrupt_status; /* atomic: set by signal, cleared by ACK */
	uint32_t config_generation;
	uint64_t negotiated; /* relaxed atomic: driver_features once FEATURES_OK */
	struct queue_cfg qcfg[VIRTIO_MMIO_MAX_QUEUES];
	struct virtq vq[VIRTIO_MMIO_MAX_QUEUES];
};

_Static_assert(offsetof(struct virtio_mmio, dev) == 0, "struct dev must come first");
_Static_assert(VIRTIO_MMIO_MAX_QUEUES <= 32, "a queue mask is 32 bits");

void virtio_mmio_lock(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
}
void virtio_mmio_unlock(struct virtio_mmio *t)
{
	pthread_mutex_unlock(&t->lock);
}

uint8_t virtio_mmio_status(struct virtio_mmio *t)
{
	return __atomic_load_n(&t->status, __ATOMIC_RELAXED);
}
uint64_t virtio_mmio_features(struct virtio_mmio *t)
{
	return __atomic_load_n(&t->negotiated, __ATOMIC_RELAXED);
}

static void set_status(struct virtio_mmio *t, uint8_t s)
{
	__atomic_store_n(&t->status, s, __ATOMIC_RELAXED);
}

static void raise(struct virtio_mmio *t, uint32_t why)
{
	__atomic_fetch_or(&t->interrupt_status, why, __ATOMIC_SEQ_CST);
	if (t->cfg.interrupt)
		t->cfg.interrupt(t->cfg.opaque);
}

void virtio_mmio_needs_reset(struct virtio_mmio *t)
{
	uint8_t s = virtio_mmio_status(t);
	if (s & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	set_status(t, s | VIRTIO_CONFIG_S_NEEDS_RESET);
	if (s & VIRTIO_CONFIG_S_DRIVER_OK)
		raise(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio_refuse_chain(struct virtio_mmio *t, unsigned q, uint16_t head)
{
	virtio_mmio_needs_reset(t); /* visible before the used entry */
	if (q < t->cfg.ops->nqueues)
		vq_push(&t->vq[q], head, 0);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	t->config_generation++;
	if (virtio_mmio_status(t) & VIRTIO_CONFIG_S_DRIVER_OK)
		raise(t, VIRTIO_MMIO_INT_CONFIG);
}

struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned q)
{
	return q < t->cfg.ops->nqueues ? &t->vq[q] : NULL;
}

void virtio_mmio_signal(struct virtio_mmio *t, unsigned q)
{
	if (q < t->cfg.ops->nqueues && vq_need_interrupt(&t->vq[q]))
		raise(t, VIRTIO_MMIO_INT_VRING);
}

static bool running(const struct virtio_mmio *t)
{
	uint8_t s = t->status;
	return (s & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(s & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED));
}

bool virtio_mmio_queue_live(struct virtio_mmio *t, unsigned q)
{
	return q < t->cfg.ops->nqueues && running(t) && t->vq[q].enabled;
}

void virtio_mmio_process(struct virtio_mmio *t, unsigned q)
{
	virtio_mmio_lock(t);
	if (virtio_mmio_queue_live(t, q) && t->cfg.ops->process)
		t->cfg.ops->process(t->cfg.dev, t, q);
	virtio_mmio_unlock(t);
}

/* Lock held. */
static void reset(struct virtio_mmio *t)
{
	if (t->cfg.ops->reset)
		t->cfg.ops->reset(t->cfg.dev);
	t->driver_features = 0;
	t->dev_features_sel = t->drv_features_sel = t->queue_sel = 0;
	__atomic_store_n(&t->interrupt_status, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->negotiated, 0, __ATOMIC_RELAXED);
	memset(t->qcfg, 0, sizeof(t->qcfg));
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		vq_reset(&t->vq[i]);
		t->qcfg[i].num = t->cfg.ops->queue_max;
	}
	set_status(t, 0);
}

/* Lock held: the driver wrote Status. */
static bool write_status(struct virtio_mmio *t, uint8_t v)
{
	uint8_t old = t->status;
	if (v == 0) {
		reset(t);
		return false;
	}
	/* the device's own bit stays; the driver only adds bits (4.2.3.1) */
	v = (uint8_t)((v & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (old & VIRTIO_CONFIG_S_NEEDS_RESET));
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		uint64_t f = t->driver_features;
		bool ok = (f & ~t->offered) == 0 && (f & (1ull << VIRTIO_F_VERSION_1));
		if (!ok)
			v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK; /* the driver reads it back */
		else
			__atomic_store_n(&t->negotiated, f, __ATOMIC_RELAXED);
	}
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		if (!(v & VIRTIO_CONFIG_S_FEATURES_OK)) {
			v |= VIRTIO_CONFIG_S_NEEDS_RESET; /* DRIVER_OK without features */
		} else if (t->cfg.ops->activate &&
			   t->cfg.ops->activate(t->cfg.dev, t->negotiated) < 0) {
			v |= VIRTIO_CONFIG_S_NEEDS_RESET;
		}
	}
	set_status(t, v);
	/* the driver may publish buffers and kick before DRIVER_OK (Linux's
	 * balloon queues its first statistics buffer so): the caller has every
	 * ready queue looked at once the device runs */
	return !(old & VIRTIO_CONFIG_S_DRIVER_OK) && running(t);
}

/* Lock held: QueueReady written. */
static void queue_ready(struct virtio_mmio *t, struct queue_cfg *qc, unsigned q, bool ready)
{
	if (!ready) {
		vq_reset(&t->vq[q]);
		qc->ready = false;
		return;
	}
	if (qc->ready)
		return;
	uint64_t f = t->driver_features;
	int r = vq_enable(&t->vq[q], t->cfg.mem, qc->num, qc->desc, qc->avail, qc->used,
			  f & (1ull << VIRTIO_RING_F_EVENT_IDX),
			  f & (1ull << VIRTIO_RING_F_INDIRECT_DESC));
	if (r < 0) {
		virtio_mmio_needs_reset(t); /* the driver gave a queue we cannot use */
		return;
	}
	qc->ready = true;
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
	const struct virtio_dev_ops *ops = t->cfg.ops;
	struct queue_cfg *qc = t->queue_sel < ops->nqueues ? &t->qcfg[t->queue_sel] : NULL;
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return t->dev_features_sel < 2
			   ? (uint32_t)(t->offered >> (32 * t->dev_features_sel))
			   : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return qc ? ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return qc ? qc->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return __atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST);
	case VIRTIO_MMIO_STATUS:
		return t->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffffu; /* no shared memory regions */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_generation;
	}
	return 0;
}

static void set_half(uint64_t *v, bool high, uint32_t x)
{
	*v = high ? (*v & 0xffffffffull) | ((uint64_t)x << 32) : (*v & ~0xffffffffull) | x;
}

/* Lock held. *kick gets the queues (a bit each) the device must now look at. */
static void write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v, uint32_t *kick)
{
	const struct virtio_dev_ops *ops = t->cfg.ops;
	struct queue_cfg *qc = t->queue_sel < ops->nqueues ? &t->qcfg[t->queue_sel] : NULL;
	/* a ready queue's configuration is frozen until it is reset */
	bool qwritable = qc && !qc->ready && (t->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
			 !(t->status & VIRTIO_CONFIG_S_DRIVER_OK);
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		/* only before FEATURES_OK (afterwards the set is fixed) */
		if (t->drv_features_sel < 2 && !(t->status & VIRTIO_CONFIG_S_FEATURES_OK))
			set_half(&t->driver_features, t->drv_features_sel == 1, v);
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (qwritable && v && v <= ops->queue_max && !(v & (v - 1)))
			qc->num = (uint16_t)v;
		else if (qwritable)
			virtio_mmio_needs_reset(t);
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (qc && (t->status & VIRTIO_CONFIG_S_FEATURES_OK))
			queue_ready(t, qc, t->queue_sel, v & 1);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		if (v < ops->nqueues)
			*kick = 1u << v;
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		__atomic_fetch_and(&t->interrupt_status, ~v, __ATOMIC_SEQ_CST);
		break;
	case VIRTIO_MMIO_STATUS:
		if (write_status(t, (uint8_t)v))
			for (unsigned q = 0; q < ops->nqueues; q++)
				if (t->vq[q].enabled)
					*kick |= 1u << q;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if (qwritable)
			set_half(&qc->desc, off == VIRTIO_MMIO_QUEUE_DESC_HIGH, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		if (qwritable)
			set_half(&qc->avail, off == VIRTIO_MMIO_QUEUE_AVAIL_HIGH, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		if (qwritable)
			set_half(&qc->used, off == VIRTIO_MMIO_QUEUE_USED_HIGH, v);
		break;
	default:
		break; /* read-only or reserved: ignored */
	}
}

static void mmio_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
			unsigned len, bool is_write)
{
	(void)addr;
	(void)vcpu;
	struct virtio_mmio *t = opaque;
	const struct virtio_dev_ops *ops = t->cfg.ops;
	if (offset >= VIRTIO_MMIO_CONFIG) {
		uint64_t off = offset - VIRTIO_MMIO_CONFIG;
		if (off >= ops->config_size || len > ops->config_size - off) {
			if (!is_write)
				memset(data, 0, len);
			return;
		}
		virtio_mmio_lock(t);
		if (!is_write)
			ops->config_read(t->cfg.dev, (uint32_t)off, data, len);
		else if (ops->config_write)
			ops->config_write(t->cfg.dev, (uint32_t)off, data, len);
		virtio_mmio_unlock(t);
		return;
	}
	if (len != 4 || (offset & 3)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	uint32_t kick = 0;
	virtio_mmio_lock(t);
	if (is_write) {
		uint32_t v;
		memcpy(&v, data, 4);
		write_reg(t, offset, v, &kick);
	} else {
		uint32_t v = read_reg(t, offset);
		memcpy(data, &v, 4);
	}
	virtio_mmio_unlock(t);
	for (unsigned q = 0; kick; q++, kick >>= 1) {
		if (!(kick & 1))
			continue;
		if (t->cfg.notify)
			t->cfg.notify(t->cfg.opaque, q);
		else
			virtio_mmio_process(t, q);
	}
}

static void mmio_reset(struct dev *dev)
{
	struct virtio_mmio *t = (struct virtio_mmio *)dev;
	virtio_mmio_lock(t);
	reset(t);
	t->config_generation = 0;
	virtio_mmio_unlock(t);
}

static void mmio_destroy(struct dev *dev)
{
	struct virtio_mmio *t = (struct virtio_mmio *)dev;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* ---------------------------------------------------------------- state */

#define MMIO_STATE_VERSION 1
#define STATUS_BITS                                                                         \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK | \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)

/* The n chains a device holds are the last n the available ring gave it,
 * in order: the ring's entries before last_avail name heads[0..n). */
static bool held_in_order(const struct virtq *q, const uint16_t *heads, unsigned n)
{
	if (n > q->size || n > (uint16_t)(q->last_avail - q->used_idx))
		return false;
	for (unsigned i = 0; i < n; i++) {
		uint16_t pos = (uint16_t)(q->last_avail - n + i);
		const uint8_t *e = q->avail + 4 + 2u * (pos & (q->size - 1u));
		if (vmm_le16(e) != heads[i])
			return false;
	}
	return true;
}

int virtio_mmio_save(struct virtio_mmio *t, struct vmm_state_w *w)
{
	const struct virtio_dev_ops *ops = t->cfg.ops;
	int rc = 0;
	uint16_t *heads = ops->held ? calloc(VQ_MAX_SIZE, sizeof(*heads)) : NULL;
	if (ops->held && !heads)
		return -ENOMEM;
	virtio_mmio_lock(t);
	vmm_sw_begin(w, "virtio-mmio", MMIO_STATE_VERSION);
	vmm_sw_u32(w, ops->device_id);
	vmm_sw_u8(w, (uint8_t)ops->nqueues);
	vmm_sw_u16(w, ops->queue_max);
	vmm_sw_u8(w, t->status);
	vmm_sw_u64(w, t->driver_features);
	vmm_sw_u64(w, t->negotiated);
	vmm_sw_u32(w, t->dev_features_sel);
	vmm_sw_u32(w, t->drv_features_sel);
	vmm_sw_u32(w, t->queue_sel);
	vmm_sw_u32(w, __atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST));
	vmm_sw_u32(w, t->config_generation);
	for (unsigned i = 0; i < ops->nqueues; i++) {
		const struct queue_cfg *qc = &t->qcfg[i];
		const struct virtq *q = &t->vq[i];
		vmm_sw_u16(w, qc->num);
		vmm_sw_u64(w, qc->desc);
		vmm_sw_u64(w, qc->avail);
		vmm_sw_u64(w, qc->used);
		vmm_sw_bool(w, qc->ready);
		if (!qc->ready)
			continue;
		unsigned held = 0;
		if (ops->held && q->enabled) {
			held = ops->held(t->cfg.dev, i, heads, q->size);
			if (!held_in_order(q, heads, held) && !rc)
				rc = -EBUSY; /* cannot be given back to the ring */
		}
		uint16_t in_flight = (uint16_t)(q->last_avail - q->used_idx);
		if (in_flight != held && !rc)
			rc = -EBUSY; /* a request still in flight: not quiesced */
		vmm_sw_u16(w, (uint16_t)(q->last_avail - held));
		vmm_sw_u16(w, q->used_idx);
		vmm_sw_u16(w, q->signalled);
		vmm_sw_bool(w, q->signalled_valid);
		vmm_sw_bool(w, q->notify);
		vmm_sw_bool(w, q->broken);
	}
	if (!rc && ops->save)
		rc = ops->save(t->cfg.dev, w);
	vmm_sw_end(w);
	virtio_mmio_unlock(t);
	free(heads);
	return rc ? rc : vmm_sw_error(w);
}

/* Lock held: reads and checks the transport's part into n (a copy of t's). */
static int load_transport(struct virtio_mmio *t, struct vmm_state_r *r, struct virtio_mmio *n)
{
	const struct virtio_dev_ops *ops = t->cfg.ops;
	uint32_t id = vmm_sr_u32(r);
	unsigned nq = vmm_sr_u8(r);
	unsigned qmax = vmm_sr_u16(r);
	if (vmm_sr_error(r))
		return vmm_sr_error(r);
	if (id != ops->device_id || nq != ops->nqueues || qmax != ops->queue_max)
		return vmm_sr_fail(r, -EINVAL,
				   "saved for device %u with %u queues of %u, this is %s (%u, "
				   "%u queues of %u)",
				   id, nq, qmax, ops->name, ops->device_id, ops->nqueues,
				   ops->queue_max);
	n->status = vmm_sr_u8(r);
	n->driver_features = vmm_sr_u64(r);
	n->negotiated = vmm_sr_u64(r);
	n->dev_features_sel = vmm_sr_u32(r);
	n->drv_features_sel = vmm_sr_u32(r);
	n->queue_sel = vmm_sr_u32(r);
	n->interrupt_status = vmm_sr_u32(r);
	n->config_generation = vmm_sr_u32(r);
	if (vmm_sr_error(r))
		return vmm_sr_error(r);
	bool fok = n->status & VIRTIO_CONFIG_S_FEATURES_OK;
	if (n->status & ~STATUS_BITS)
		return vmm_sr_fail(r, -EINVAL, "device status %#x", n->status);
	if (n->driver_features & ~t->offered)
		return vmm_sr_fail(r, -EINVAL, "driver features %#llx not offered (%#llx)",
				   (unsigned long long)n->driver_features,
				   (unsigned long long)t->offered);
	if (fok ? n->negotiated != n->driver_features ||
		      !(n->negotiated & (1ull << VIRTIO_F_VERSION_1))
		: n->negotiated != 0)
		return vmm_sr_fail(r, -EINVAL, "negotiated features %#llx do not match",
				   (unsigned long long)n->negotiated);
	if (n->interrupt_status & ~(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG))
		return vmm_sr_fail(r, -EINVAL, "interrupt status %#x", n->interrupt_status);
	for (unsigned i = 0; i < ops->nqueues; i++) {
		struct queue_cfg *qc = &n->qcfg[i];
		struct virtq *q = &n->vq[i];
		qc->num = vmm_sr_u16(r);
		qc->desc = vmm_sr_u64(r);
		qc->avail = vmm_sr_u64(r);
		qc->used = vmm_sr_u64(r);
		qc->ready = vmm_sr_bool(r);
		memset(q, 0, sizeof(*q));
		if (vmm_sr_error(r))
			return vmm_sr_error(r);
		if (!qc->num || qc->num > ops->queue_max || (qc->num & (qc->num - 1)))
			return vmm_sr_fail(r, -EINVAL,
					   "queue %u: size %u (a power of two up to %u)", i,
					   qc->num, ops->queue_max);
		if (!qc->ready)
			continue;
		if (!fok)
			return vmm_sr_fail(r, -EINVAL, "queue %u ready before FEATURES_OK", i);
		uint16_t last_avail = vmm_sr_u16(r);
		uint16_t used_idx = vmm_sr_u16(r);
		uint16_t signalled = vmm_sr_u16(r);
		bool signalled_valid = vmm_sr_bool(r);
		bool notify = vmm_sr_bool(r);
		bool broken = vmm_sr_bool(r);
		if (vmm_sr_error(r))
			return vmm_sr_error(r);
		if (last_avail != used_idx)
			return vmm_sr_fail(r, -EINVAL,
					   "queue %u: %u chains in flight (available index %u, "
					   "used %u of %u)",
					   i, (uint16_t)(last_avail - used_idx), last_avail,
					   used_idx, qc->num);
		int e = vq_enable(q, t->cfg.mem, qc->num, qc->desc, qc->avail, qc->used,
				  n->negotiated & (1ull << VIRTIO_RING_F_EVENT_IDX),
				  n->negotiated & (1ull << VIRTIO_RING_F_INDIRECT_DESC));
		if (e < 0)
			return vmm_sr_fail(
			    r, -EINVAL, "queue %u: rings at %#llx/%#llx/%#llx of size %u %s", i,
			    (unsigned long long)qc->desc, (unsigned long long)qc->avail,
			    (unsigned long long)qc->used, qc->num,
			    e == -EFAULT ? "outside guest memory" : "misaligned");
		q->last_avail = last_avail;
		q->used_idx = used_idx;
		q->signalled = signalled;
		q->signalled_valid = signalled_valid;
		q->notify = notify;
		q->broken = broken;
	}
	return 0;
}

static void finish_load_locked(struct virtio_mmio *t)
{
	const struct virtio_dev_ops *ops = t->cfg.ops;
	if (running(t) && ops->restored)
		ops->restored(t->cfg.dev, t);
	if (__atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST) && t->cfg.interrupt)
		t->cfg.interrupt(t->cfg.opaque);
}

void virtio_mmio_finish_load(struct virtio_mmio *t)
{
	virtio_mmio_lock(t);
	finish_load_locked(t);
	virtio_mmio_unlock(t);
}

int virtio_mmio_load(struct virtio_mmio *t, struct vmm_state_r *r)
{
	int rc = virtio_mmio_load_deferred(t, r);
	if (rc == 0)
		virtio_mmio_finish_load(t);
	return rc;
}

int virtio_mmio_load_deferred(struct virtio_mmio *t, struct vmm_state_r *r)
{
	const struct virtio_dev_ops *ops = t->cfg.ops;
	uint32_t version = MMIO_STATE_VERSION;
	if (vmm_sr_begin(r, "virtio-mmio", &version))
		return vmm_sr_error(r);
	struct virtio_mmio *n = malloc(sizeof(*n));
	if (!n)
		return vmm_sr_fail(r, -ENOMEM, "out of memory");
	virtio_mmio_lock(t);
	int rc = load_transport(t, r, n);
	/* the device's own part, which applies itself only when it is whole;
	 * read ahead first that it is the last thing in this section */
	if (!rc && ops->load) {
		struct vmm_state_r look = *r;
		if (vmm_sr_skip(&look) || vmm_sr_end(&look)) {
			*r = look;
			rc = vmm_sr_error(r);
		}
	}
	if (!rc && ops->load)
		rc = ops->load(t->cfg.dev, r, n->negotiated);
	if (!rc)
		rc = vmm_sr_end(r);
	if (rc) {
		virtio_mmio_unlock(t);
		free(n);
		return rc;
	}
	t->status = n->status;
	t->driver_features = n->driver_features;
	__atomic_store_n(&t->negotiated, n->negotiated, __ATOMIC_RELAXED);
	t->dev_features_sel = n->dev_features_sel;
	t->drv_features_sel = n->drv_features_sel;
	t->queue_sel = n->queue_sel;
	__atomic_store_n(&t->interrupt_status, n->interrupt_status, __ATOMIC_SEQ_CST);
	t->config_generation = n->config_generation;
	for (unsigned i = 0; i < ops->nqueues; i++) {
		t->qcfg[i] = n->qcfg[i];
		t->vq[i] = n->vq[i];
	}
	free(n);
	if ((t->status & VIRTIO_CONFIG_S_DRIVER_OK) && (t->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    ops->activate && ops->activate(t->cfg.dev, t->negotiated) < 0)
		set_status(t, t->status | VIRTIO_CONFIG_S_NEEDS_RESET);
	virtio_mmio_unlock(t);
	return 0;
}

static int mmio_save(struct dev *dev, struct vmm_state_w *w)
{
	return virtio_mmio_save((struct virtio_mmio *)dev, w);
}

static int mmio_load(struct dev *dev, struct vmm_state_r *r)
{
	return virtio_mmio_load((struct virtio_mmio *)dev, r);
}

static const struct dev_ops virtio_mmio_ops = {
    .bus = {.name = "virtio-mmio",
	    .sizes = BUS_W1 | BUS_W2 | BUS_W4 | BUS_W8,
	    .access = mmio_access},
    .reset = mmio_reset,
    .destroy = mmio_destroy,
    .save = mmio_save,
    .load = mmio_load,
};

int virtio_mmio_create(const struct virtio_mmio_config *cfg, struct virtio_mmio **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	const struct virtio_dev_ops *ops = cfg->ops;
	if (!ops || !cfg->mem || !ops->config_read || ops->nqueues == 0 ||
	    ops->nqueues > VIRTIO_MMIO_MAX_QUEUES || ops->queue_max == 0 ||
	    ops->queue_max > VQ_MAX_SIZE || (ops->queue_max & (ops->queue_max - 1)) ||
	    ops->config_size > VIRTIO_MMIO_WINDOW - VIRTIO_MMIO_CONFIG)
		return -EINVAL;
	struct virtio_mmio *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->dev.ops = &virtio_mmio_ops;
	t->cfg = *cfg;
	t->offered = ops->features | RING_FEATURES;
	pthread_mutex_init(&t->lock, NULL);
	reset(t);
	*out = t;
	return 0;
}

struct dev *virtio_mmio_dev(struct virtio_mmio *t)
{
	return &t->dev;
}
