/* devices/bootmarker.h - a boot-time marker port: guest writes become timestamped callbacks. */
#ifndef EMBER_DEVICES_BOOTMARKER_H
#define EMBER_DEVICES_BOOTMARKER_H

/*
 * Like Cloud Hypervisor's debug port (0x80) or Firecracker's boot timer: a
 * guest (its init, or a test program) writes a byte to mark a point of the
 * boot; the device calls mark(value, ns since cfg.start_ns), and the VMM
 * logs e.g. "guest boot marker 0x7b at 412.3 ms".
 *
 * mark() runs for the first write of each value only (since creation or a
 * reset): a guest that writes the port in a loop cannot flood the log.
 *
 * Window: 1 byte; 1-, 2- and 4-byte writes are accepted and the low byte
 * is the value. Reads return all-ones.
 *
 * Note for port 0x80: Linux writes 0 there for I/O delays (outb_p) unless
 * the guest sees KVM_FEATURE_NOP_IO_DELAY in CPUID, so either advertise it,
 * set cfg.match_value to mark only one value, or use another port.
 *
 * Thread-safety: any thread; no lock (the device has no mutable state but
 * atomics). mark() may run on several vCPU threads at once.
 */

#include "device.h"

#include <stdbool.h>
#include <stdint.h>

struct bootmarker_config {
	/* A marker write. value: the byte; ns: now_ns() - start_ns. */
	void (*mark)(void *opaque, uint8_t value, uint64_t ns);
	void *opaque;
	uint64_t start_ns;		  /* on the now_ns() clock */
	uint64_t (*now_ns)(void *opaque); /* NULL: CLOCK_MONOTONIC */
	bool match_value;		  /* true: only writes of value are marks */
	uint8_t value;
};

struct bootmarker;

/* Returns 0 and *out, or -EINVAL (NULL cfg or out), -ENOMEM. */
int bootmarker_create(const struct bootmarker_config *cfg, struct bootmarker **out);

struct dev *bootmarker_dev(struct bootmarker *bm);

/* How many marker writes there were since creation or reset (repeats too). */
uint64_t bootmarker_count(struct bootmarker *bm);

#endif /* EMBER_DEVICES_BOOTMARKER_H */
