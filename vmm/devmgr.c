/* vmm/devmgr.c - the device manager: allocation of MMIO windows and GSIs, bus attachment, irq wiring, --dry-run lines. */
#include "devmgr.h"
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void vmm_devmgr_init(struct vmm_devmgr *m, const struct vmm_devmgr_layout *layout)
{
	memset(m, 0, sizeof(*m));
	m->layout = *layout;
	if (!m->layout.mmio_align)
		m->layout.mmio_align = 4096;
	m->next_mmio = m->layout.mmio_base;
	m->next_gsi = m->layout.gsi_first;
}

struct vmm_dev_desc *vmm_devmgr_find(struct vmm_devmgr *m, const char *name)
{
	for (unsigned i = 0; i < m->n; i++)
		if (!strcmp(m->devs[i].name, name))
			return &m->devs[i];
	return NULL;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Checks the descriptor's own fields and its PIO ranges against the list. */
static int check_desc(struct vmm_devmgr *m, const struct vmm_dev_desc *d, struct ember_error *err)
{
	if (!d->name[0] || memchr(d->name, 0, sizeof(d->name)) == NULL)
		return vmm_errf(err, -EINVAL, "device manager: a device without a valid name");
	if (vmm_devmgr_find(m, d->name))
		return vmm_errf(err, -EINVAL, "device manager: two devices named %s", d->name);
	if (d->npio > VMM_DEV_MAX_PIO || d->nioeventfds > VMM_DEV_MAX_IOEVENTFDS)
		return vmm_errf(err, -EINVAL, "device %s: too many PIO ranges or ioeventfds",
				d->name);
	if (d->acpi_name[0] && (strlen(d->acpi_name) != 4 || !d->acpi_hid))
		return vmm_errf(err, -EINVAL, "device %s: ACPI name '%s' or _HID is invalid",
				d->name, d->acpi_name);
	if (d->nioeventfds && !d->mmio_size)
		return vmm_errf(err, -EINVAL, "device %s: ioeventfds without an MMIO window",
				d->name);
	if (d->irqfd && !d->has_irq)
		return vmm_errf(err, -EINVAL, "device %s: an irqfd without an interrupt", d->name);
	for (unsigned k = 0; k < d->nioeventfds; k++) {
		const struct vmm_dev_ioeventfd *e = &d->ioeventfds[k];
		if ((e->len != 0 && e->len != 1 && e->len != 2 && e->len != 4 && e->len != 8) ||
		    vmm_range_exceeds(e->offset, e->len ? e->len : 1, d->mmio_size))
			return vmm_errf(err, -EINVAL,
					"device %s: ioeventfd %u at offset %#" PRIx64
					" is outside its window",
					d->name, k, e->offset);
	}
	for (unsigned k = 0; k < d->npio; k++) {
		const struct vmm_dev_pio *p = &d->pio[k];
		if (!p->len || (uint32_t)p->base + p->len > 0x10000)
			return vmm_errf(err, -EINVAL, "device %s: bad PIO range %#x+%u", d->name,
					p->base, p->len);
		for (unsigned i = 0; i < m->n; i++)
			for (unsigned j = 0; j < m->devs[i].npio; j++)
				if (ranges_overlap(p->base, p->len, m->devs[i].pio[j].base,
						   m->devs[i].pio[j].len))
					return vmm_errf(err, -EEXIST,
							"device %s: ports %#x-%#x overlap %s's",
							d->name, p->base, p->base + p->len - 1,
							m->devs[i].name);
	}
	return 0;
}

static int place_window(struct vmm_devmgr *m, struct vmm_dev_desc *d, struct ember_error *err)
{
	if (!d->mmio_size)
		return 0;
	uint64_t size = vmm_align_up(d->mmio_size, m->layout.mmio_align);
	if (size < d->mmio_size)
		return vmm_errf(err, -EINVAL, "device %s: MMIO window too large", d->name);
	if (!d->mmio_base) {
		if (vmm_range_exceeds(m->next_mmio, size, m->layout.mmio_end))
			return vmm_errf(err, -ENOSPC,
					"device %s: no room for a %" PRIu64
					" KiB window in the MMIO region %#" PRIx64 "-%#" PRIx64,
					d->name, size >> 10, m->layout.mmio_base,
					m->layout.mmio_end - 1);
		d->mmio_base = m->next_mmio;
		d->mmio_size = size; /* the whole granule is the device's */
		m->next_mmio += size;
		return 0;
	}
	if (vmm_range_exceeds(d->mmio_base, d->mmio_size, UINT64_MAX))
		return vmm_errf(err, -EINVAL, "device %s: window wraps", d->name);
	for (unsigned i = 0; i < m->n; i++)
		if (m->devs[i].mmio_size &&
		    ranges_overlap(d->mmio_base, d->mmio_size, m->devs[i].mmio_base,
				   m->devs[i].mmio_size))
			return vmm_errf(err, -EEXIST,
					"device %s: window %#" PRIx64 " overlaps %s's", d->name,
					d->mmio_base, m->devs[i].name);
	return 0;
}

static int place_irq(struct vmm_devmgr *m, struct vmm_dev_desc *d, struct ember_error *err)
{
	if (!d->has_irq)
		return 0;
	if (!d->gsi_fixed) {
		if (m->next_gsi > m->layout.gsi_last || m->next_gsi < m->layout.gsi_first)
			return vmm_errf(err, -ENOSPC,
					"device %s: no interrupt left (GSIs %u..%u are all used)",
					d->name, m->layout.gsi_first, m->layout.gsi_last);
		d->gsi = m->next_gsi++;
		return 0;
	}
	/* Legacy devices may share nothing either: one owner per GSI. */
	for (unsigned i = 0; i < m->n; i++)
		if (m->devs[i].has_irq && m->devs[i].gsi == d->gsi)
			return vmm_errf(err, -EEXIST, "device %s: GSI %u is %s's", d->name, d->gsi,
					m->devs[i].name);
	return 0;
}

int vmm_devmgr_add(struct vmm_devmgr *m, const struct vmm_dev_desc *d, struct vmm_dev_desc **out,
		   struct ember_error *err)
{
	if (m->n >= VMM_DEVMGR_MAX)
		return vmm_errf(err, -E2BIG, "device manager: more than %d devices",
				VMM_DEVMGR_MAX);
	int r = check_desc(m, d, err);
	if (r < 0)
		return r;
	struct vmm_dev_desc e = *d;
	uint64_t next_mmio = m->next_mmio;
	r = place_window(m, &e, err);
	if (r == 0)
		r = place_irq(m, &e, err);
	if (r < 0) {
		m->next_mmio = next_mmio; /* nothing half-done */
		return r;
	}
	e.irqfd_fd = -1;
	for (unsigned k = 0; k < e.nioeventfds; k++)
		e.ioeventfds[k].fd = -1;
	e.mgr = m;
	m->devs[m->n] = e;
	if (out)
		*out = &m->devs[m->n];
	m->n++;
	return 0;
}

void vmm_dev_set_irq(void *desc, bool level)
{
	const struct vmm_dev_desc *d = desc;
	const struct vmm_devmgr *m = d->mgr;
	if (m && m->hooks.set_irq && d->has_irq)
		m->hooks.set_irq(m->hooks.opaque, d->gsi, level);
}

static int attach_one(struct vmm_devmgr *m, struct vmm_dev_desc *d, struct bus *pio,
		      struct bus *mmio, struct ember_error *err)
{
	int r;
	for (unsigned k = 0; k < d->npio; k++) {
		r = bus_register_at(pio, d->pio[k].base, d->pio[k].len, d->ops, d->opaque,
				    d->pio[k].dev_offset);
		if (r < 0)
			return vmm_errf(err, r, "device %s: cannot take ports %#x-%#x: %s", d->name,
					d->pio[k].base, d->pio[k].base + d->pio[k].len - 1,
					strerror(-r));
	}
	if (d->mmio_size) {
		r = bus_register(mmio, d->mmio_base, d->mmio_size, d->ops, d->opaque);
		if (r < 0)
			return vmm_errf(err, r, "device %s: cannot take window %#" PRIx64 ": %s",
					d->name, d->mmio_base, strerror(-r));
	}
	for (unsigned k = 0; k < d->nioeventfds; k++) {
		struct vmm_dev_ioeventfd *e = &d->ioeventfds[k];
		if (!m->hooks.add_ioeventfd)
			return vmm_errf(err, -EOPNOTSUPP, "device %s: ioeventfds are not available",
					d->name);
		r = m->hooks.add_ioeventfd(m->hooks.opaque, d->mmio_base + e->offset, e->len,
					   e->datamatch, e->data, &e->fd);
		if (r < 0)
			return vmm_errf(err, r, "device %s: ioeventfd at %#" PRIx64 ": %s", d->name,
					d->mmio_base + e->offset, strerror(-r));
	}
	if (d->irqfd) {
		if (!m->hooks.add_irqfd)
			return vmm_errf(err, -EOPNOTSUPP, "device %s: irqfds are not available",
					d->name);
		r = m->hooks.add_irqfd(m->hooks.opaque, d->gsi, d->level, &d->irqfd_fd);
		if (r < 0)
			return vmm_errf(err, r, "device %s: irqfd for GSI %u: %s", d->name, d->gsi,
					strerror(-r));
	}
	return 0;
}

int vmm_devmgr_attach(struct vmm_devmgr *m, struct bus *pio, struct bus *mmio,
		      struct ember_error *err)
{
	for (unsigned i = 0; i < m->n; i++) {
		struct vmm_dev_desc *d = &m->devs[i];
		if (d->pending || d->kind == VMM_DEV_IN_KERNEL || !d->ops)
			continue;
		int r = attach_one(m, d, pio, mmio, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------ --dry-run */

struct out {
	char *buf;
	size_t len, used;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->used < o->len ? o->buf + o->used : NULL,
			  o->used < o->len ? o->len - o->used : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

int vmm_devmgr_format(const struct vmm_devmgr *m, char *buf, size_t len)
{
	struct out o = {buf, len, 0};
	if (len)
		buf[0] = 0;
	for (unsigned i = 0; i < m->n; i++) {
		const struct vmm_dev_desc *d = &m->devs[i];
		put(&o, "device %s: %s", d->name, d->what ? d->what : "?");
		if (d->detail)
			put(&o, " %s", d->detail);
		if (d->kind == VMM_DEV_IN_KERNEL)
			put(&o, " (in the hypervisor)");
		for (unsigned k = 0; k < d->npio; k++) {
			if (d->pio[k].len == 1)
				put(&o, "; pio %#x", d->pio[k].base);
			else
				put(&o, "; pio %#x-%#x", d->pio[k].base,
				    d->pio[k].base + d->pio[k].len - 1);
		}
		if (d->mmio_size)
			put(&o, "; mmio %#" PRIx64 "-%#" PRIx64, d->mmio_base,
			    d->mmio_base + d->mmio_size - 1);
		if (d->has_irq)
			put(&o, "; irq %u%s", d->gsi, d->level ? " level" : "");
		if (d->nioeventfds)
			put(&o, "; %u ioeventfd%s", d->nioeventfds, d->nioeventfds > 1 ? "s" : "");
		if (d->irqfd)
			put(&o, "; irqfd");
		if (d->acpi_name[0] && !d->pending)
			put(&o, "; acpi %s %s", d->acpi_name, d->acpi_hid);
		if (d->pending)
			put(&o, "; NOT ATTACHED: %s", d->pending);
		put(&o, "\n");
	}
	return o.used > INT32_MAX ? -EOVERFLOW : (int)o.used;
}
