/* devices/i8042.h - the i8042 PS/2 controller: enough for Linux's probe and for reset. */
#ifndef EMBER_DEVICES_I8042_H
#define EMBER_DEVICES_I8042_H

/*
 * Window: offset 0 = data port (0x60 on a PC), offset 4 = status (read) /
 * command (write) port (0x64). Register it either as two 1-byte ranges,
 *     dev_register_at(pio, 0x60, 1, dev, 0);
 *     dev_register_at(pio, 0x64, 1, dev, 4);
 * which leaves 0x61 (the speaker port, KVM's in-kernel PIT) free, or as one
 * I8042_WINDOW-byte range at 0x60 (offsets 1-3 then read 0xff). 1-byte
 * accesses only. The keyboard interrupt is IRQ 1.
 *
 * Model:
 *  - An output buffer queue (16 bytes) feeds the data port; status bit 0
 *    (OBF) says it is not empty. The input buffer is never full (IBF = 0),
 *    the system flag follows the command byte, the keylock bit reads "not
 *    inhibited". Every controller command Linux sends that expects an answer
 *    gets one at once, so no probe waits for a timeout:
 *      0x20-0x3f read RAM (0x20: command byte), 0x60-0x7f write RAM,
 *      0xa7/0xa8 AUX disable/enable, 0xad/0xae keyboard disable/enable (the
 *      command byte's disable bits), 0xaa self-test -> 0x55, 0xab keyboard
 *      interface test -> 0x00, 0xa9 AUX interface test -> 0x01 (see below),
 *      0xa4 -> 0xf1 (no password), 0xc0 input port, 0xd0/0xd1 read/write
 *      output port, 0xd2 write keyboard output buffer, 0xd3 AUX loopback,
 *      0xd4 write to AUX (dropped: no device), 0xe0 test inputs -> 0x00,
 *      0xf0-0xff pulse output lines.
 *  - Reset: 0xfe (and any 0xf0-0xff pulse with bit 0 clear), or 0xd1 with
 *    bit 0 clear, calls reset() once per command. Linux's reboot=k writes
 *    0xfe to port 0x64.
 *  - No AUX (mouse) device: 0xd3 answers the inverted byte and 0xa9 answers
 *    "clock line stuck low", which Linux's i8042_check_aux reads as "no AUX
 *    port" at once; with i8042.noaux it never asks.
 *  - A minimal PS/2 keyboard answers bytes written to the data port (with
 *    no controller command pending) as Linux's atkbd expects: ACK (0xfa)
 *    to commands and parameters, 0xf2 GET ID -> fa ab 83 (ab 41 when the
 *    controller translates), 0xff reset -> fa aa, 0xee echo -> ee, unknown
 *    -> fe (resend). It never sends key codes. With i8042.dumbkbd Linux
 *    does not talk to it.
 *  - The keyboard interrupt line (set_irq) is high while the output buffer
 *    holds a keyboard or controller byte (not an AUX one) and the command
 *    byte enables the keyboard interrupt (bit 0); after each data port read
 *    that leaves more bytes it is lowered and raised again, so an
 *    edge-triggered IRQ 1 sees every byte.
 *
 * Thread-safety: any thread; a per-device mutex. set_irq() runs with it
 * held (must not call into this device); reset() runs after it is released
 * (it may do anything but destroy the device; a VMM usually only records
 * the request and reboots from its main loop).
 */

#include "device.h"

#include <stdbool.h>

#define I8042_WINDOW  5 /* offsets 0 (data) .. 4 (command/status) */
#define I8042_DATA    0
#define I8042_COMMAND 4

struct i8042_config {
	/* The guest pulsed the CPU reset line. NULL: ignored. */
	void (*reset)(void *opaque);
	/* The keyboard interrupt line changed to level. NULL: none. */
	void (*set_irq)(void *opaque, bool level);
	void *opaque;
};

struct i8042;

/* Creates a controller in its reset state; cfg is copied. Returns 0 and
 * *out, or -EINVAL (NULL cfg or out), -ENOMEM. Free with dev_destroy. */
int i8042_create(const struct i8042_config *cfg, struct i8042 **out);

struct dev *i8042_dev(struct i8042 *k);

#endif /* EMBER_DEVICES_I8042_H */
