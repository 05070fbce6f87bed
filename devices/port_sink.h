/* devices/port_sink.h - an "ignore" device for ports a guest pokes that need no emulation. */
#ifndef EMBER_DEVICES_PORT_SINK_H
#define EMBER_DEVICES_PORT_SINK_H

/*
 * Claims a window so that accesses there are neither logged nor counted as
 * unhandled by the bus: writes are dropped, reads return the fill byte in
 * every byte. Any width (1, 2, 4, 8). One instance can back several
 * windows (register it once per window).
 *
 * Candidates on a PC board (only where nothing else sits): 0x80 (POST
 * codes and Linux's I/O delay, if the boot marker is not there), 0xed
 * (io_delay=0xed), 0x2e/0x2f and 0x4e/0x4f (Super I/O probes: reads of
 * 0xff there mean "no chip"). The PIC, PIT and speaker port 0x61 are in
 * KVM's kernel and never reach the bus.
 *
 * Thread-safety: any thread; no lock.
 */

#include "device.h"

#include <stdint.h>

struct port_sink;

/* Creates a sink whose reads return fill (0xff: "nothing here"). Returns 0
 * and *out, or -EINVAL (NULL out), -ENOMEM. */
int port_sink_create(uint8_t fill, struct port_sink **out);

struct dev *port_sink_dev(struct port_sink *ps);

/* Accesses absorbed since creation (reads + writes; reset does not clear). */
uint64_t port_sink_count(struct port_sink *ps);

#endif /* EMBER_DEVICES_PORT_SINK_H */
