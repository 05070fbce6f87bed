/* lib/io/bus.h - the PIO and MMIO buses: sorted, overlap-free range tables with lock-free dispatch. */
#ifndef EMBER_IO_BUS_H
#define EMBER_IO_BUS_H

/*
 * A bus maps address ranges to device handlers. The VMM makes two: one for
 * port I/O (last address 0xffff) and one for MMIO (last address
 * UINT64_MAX). Each range is [base, base + len - 1]; ranges never overlap and
 * never wrap around the end of the address space.
 *
 * One access signature serves PIO and MMIO (struct bus_ops.access):
 *
 *   access(opaque, offset, addr, vcpu, data, len, is_write)
 *
 * opaque is what was registered with the range; offset is the address within
 * the device (addr - base + dev_offset, see bus_register_at); addr the
 * absolute bus address; vcpu the index of the vCPU making the access; data
 * the len bytes of the access in guest (little-endian) byte order: filled by
 * the handler on a read (the bus pre-fills them with 0xff, so bytes a handler
 * leaves alone read as all-ones), consumed on a write. The bus calls a handler
 * only with a len its ops declare valid and only for an access wholly inside
 * the range, so handlers never see impossible widths or offsets past their
 * window. A handler cannot fail: guest mistakes are the device's to absorb.
 *
 * Rules for dispatch (bus_access), from any number of vCPU threads at once:
 *  - it takes no lock, allocates nothing and makes no syscall; it reads an
 *    immutable table published with an atomic release store;
 *  - a read of an address no range covers returns all-ones and a write there
 *    is dropped; both are counted (bus_get_stats) and reported as -ENOENT;
 *  - a width the device does not accept, a len that is not 1, 2, 4 or 8, an
 *    access straddling the end of a range, or one whose addr + len wraps is
 *    treated the same way (all-ones / dropped), counted as rejected and
 *    reported as -EINVAL. Nothing a guest does can crash the bus.
 *
 * Rules for registration (bus_register*): calls are serialised by a mutex
 * and may run while vCPUs dispatch (each change publishes a new table;
 * replaced tables are kept until bus_destroy, so a vCPU still reading one
 * stays safe). A range stays until bus_destroy: there is no unregistering
 * (no device is unplugged while its VM lives), so the order is: create the
 * buses, register every device, start the vCPUs; stop the vCPUs, destroy
 * the buses, then the devices.
 *
 * A PIO string instruction (KVM's io.count > 1) is count separate accesses:
 * the caller loops over bus_access.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Access widths. A device's valid widths are an OR of these, and the value of
 * each bit is the width in bytes: "1|2|4" is BUS_W1 | BUS_W2 | BUS_W4. */
#define BUS_W1	  1u
#define BUS_W2	  2u
#define BUS_W4	  4u
#define BUS_W8	  8u
#define BUS_W_ALL (BUS_W1 | BUS_W2 | BUS_W4 | BUS_W8)

/* The last address of each kind of bus. */
#define BUS_PIO_LAST  0xffffull
#define BUS_MMIO_LAST UINT64_MAX

typedef void (*bus_access_fn)(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu,
			      uint8_t *data, unsigned len, bool is_write);

/* What the bus needs of a device: usually the first member of its const
 * struct dev_ops (devices/device.h). Must outlive every range using it. */
struct bus_ops {
	const char *name;     /* for diagnostics */
	unsigned sizes;	      /* valid widths, an OR of BUS_W*; not 0 */
	bus_access_fn access; /* not NULL */
};

struct bus;

/* Dispatch counters; all monotonic since bus_create. */
struct bus_stats {
	uint64_t unhandled_reads;  /* reads of addresses no range covers */
	uint64_t unhandled_writes; /* writes to addresses no range covers */
	uint64_t rejected;	   /* bad width, straddling or wrapping accesses */
};

/*
 * Creates an empty bus named name (copied; at most 15 characters are kept)
 * covering addresses 0..last (BUS_PIO_LAST or BUS_MMIO_LAST).
 * Returns 0 and *out, or -EINVAL (NULL out), -ENOMEM.
 */
int bus_create(const char *name, uint64_t last, struct bus **out);

/* Frees the bus and every table it published. No vCPU may dispatch on it
 * any more. The devices registered on it are not touched. NULL is a no-op. */
void bus_destroy(struct bus *bus);

/* The name given to bus_create (never NULL for a live bus). */
const char *bus_name(const struct bus *bus);

/*
 * Registers [base, base + len - 1] to ops/opaque; the handler sees offsets
 * from 0. Errors: -EINVAL (NULL bus or ops, NULL ops->access, ops->sizes 0
 * or with bits other than BUS_W*, len 0, base + len - 1 wraps or passes the
 * bus's last address), -EEXIST (overlaps a registered range), -ENOMEM.
 */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque) __attribute__((warn_unused_result));

/*
 * As bus_register, but the handler sees offsets from dev_offset: an access
 * at base + k arrives with offset dev_offset + k. This lets one device own
 * a sparse window, e.g. the i8042 at 0x60 (offset 0) and 0x64 (offset 4)
 * without also claiming 0x61-0x63. Also -EINVAL if dev_offset + len - 1
 * wraps.
 */
int bus_register_at(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		    void *opaque, uint64_t dev_offset) __attribute__((warn_unused_result));

/*
 * Dispatches one access of len bytes at addr from vCPU vcpu (see the rules
 * at the top). data holds len bytes. Returns 0 when a device handled it,
 * -ENOENT when no range covers it, -EINVAL when it was rejected (width,
 * straddle, wrap). On a read that returns an error, data holds len bytes of
 * 0xff (nothing is written for len 0).
 */
int bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned len, bool is_write,
	       unsigned vcpu);

/*
 * bus_access with the data as an integer, for exit structures that carry
 * one (struct ehv_io_access.value): on a write the low len bytes of *value
 * are the data (little-endian); on a read *value receives them, zero
 * extended (all-ones in those len bytes when the access failed). Returns
 * as bus_access; a len of 0 or above 8 is -EINVAL (counted as rejected).
 */
int bus_access_u64(struct bus *bus, uint64_t addr, uint64_t *value, unsigned len, bool is_write,
		   unsigned vcpu);

/* Copies the counters (relaxed atomic reads). */
void bus_get_stats(const struct bus *bus, struct bus_stats *out);

#endif /* EMBER_IO_BUS_H */
