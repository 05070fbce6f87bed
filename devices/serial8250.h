/* devices/serial8250.h - a 16550A-compatible UART (what Linux's 8250 driver calls a 16550A). */
#ifndef EMBER_DEVICES_SERIAL8250_H
#define EMBER_DEVICES_SERIAL8250_H

/*
 * Window: 8 byte-wide registers, offsets 0-7 (ttyS0 is at port 0x3f8, IRQ 4):
 *
 *   0  RBR (read) / THR (write); DLL when LCR.DLAB = 1
 *   1  IER (bits 0-3);           DLM when LCR.DLAB = 1
 *   2  IIR (read; bits 7:6 = 11 while the FIFOs are on) / FCR (write)
 *   3  LCR    4  MCR (bits 0-4)    5  LSR    6  MSR    7  SCR
 *
 * Only 1-byte accesses are valid (the bus rejects the rest).
 *
 * Model:
 *  - Transmission: a THR write hands the byte to tx() at once (or, in
 *    loopback, to the RX FIFO) while the host has room, and THR and the
 *    transmitter read empty (LSR.THRE and LSR.TEMT 1). When cfg.tx_full()
 *    says the host cannot take a byte, the byte waits in a TX FIFO (16
 *    bytes with FCR.0, the THR alone without) and LSR.THRE/TEMT read 0, so
 *    a driver that waits for THRE (or for the THRE interrupt) waits there:
 *    the vCPU never blocks on the host. serial8250_tx_ready() sends the
 *    waiting bytes when the host has room again; when the FIFO empties,
 *    THRE re-asserts with its interrupt. A byte written while the TX FIFO
 *    is full is lost (counted by serial8250_tx_dropped), as on hardware;
 *    FCR.2 and a reset discard the waiting bytes.
 *  - The RX FIFO holds 16 bytes with FCR.0 set, 1 byte (the RBR) without.
 *    The host feeds it with serial8250_rx_push; rx_ready() says when the
 *    guest has emptied it. In loopback (MCR.LOOP) host input is refused and
 *    THR bytes go to the RX FIFO instead (LSR.OE when it is full).
 *  - Interrupts, highest priority first, as IIR reports them:
 *      0x06 receiver line status (LSR.OE/PE/FE/BI with IER.ELSI), cleared by
 *           reading LSR;
 *      0x04 received data at or above the FCR trigger level, or 0x0c
 *           (character timeout) below it, with IER.ERBFI: while the RX FIFO
 *           is not empty (no timer: the timeout is immediate);
 *      0x02 THR empty with IER.ETBEI: set when ETBEI goes from 0 to 1 and
 *           after every THR write, cleared by an IIR read that reports it;
 *      0x00 modem status (MSR delta bits with IER.EDSSI), cleared by
 *           reading MSR.
 *    The interrupt line (set_irq) is the OR of those, gated as on a PC by
 *    MCR.OUT2 and off in loopback, unless cfg.ungated_irq. set_irq() is
 *    called only when the level changes: map it to a level on the guest's
 *    IRQ (KVM_IRQ_LINE 1/0); an edge-triggered pin gets a rising edge for
 *    every new interrupt because Linux's handler reads IIR until no
 *    interrupt is pending, which lowers the line.
 *  - MSR: outside loopback the modem lines read DCD, DSR and CTS asserted,
 *    RI off; in loopback they follow MCR (RTS->CTS, DTR->DSR, OUT1->RI,
 *    OUT2->DCD), with delta bits.
 *  - Linux's autoconfig (IER test, loopback test with MCR 0x1a reading MSR
 *    0x90, IIR FIFO bits, no EFR, no 16750 64-byte FIFO bit, no XScale UUE
 *    bit, a 16-byte loopback FIFO in size_fifo) identifies it as a 16550A.
 *
 * Thread-safety: every function, the bus handler included, may be called
 * from any thread; a per-device mutex serialises them. tx() and set_irq()
 * run with that mutex held (so bytes and line levels are reported in order)
 * and must not call into this UART; rx_ready() runs after it is released.
 */

#include "device.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL8250_WINDOW    8 /* bytes of address space */
#define SERIAL8250_FIFO_SIZE 16

struct serial8250_config {
	/* Bytes the guest transmitted (len >= 1), in order. NULL: dropped. */
	void (*tx)(void *opaque, const uint8_t *buf, size_t len);
	/* The interrupt line changed to level. NULL: no interrupts. */
	void (*set_irq)(void *opaque, bool level);
	/* true when the host cannot take one more byte now (a full output
	 * buffer); the UART then holds bytes until serial8250_tx_ready().
	 * NULL: the host always takes them. Called with the UART's mutex held,
	 * like tx(). */
	bool (*tx_full)(void *opaque);
	/* The guest emptied the RX FIFO: there is room for
	 * serial8250_rx_push again. NULL: not told. */
	void (*rx_ready)(void *opaque);
	void *opaque;
	/* true: the line follows the pending interrupts whatever MCR.OUT2 and
	 * MCR.LOOP say (boards without the PC's OUT2 gate). */
	bool ungated_irq;
};

struct serial8250;

/* Creates a UART in its reset state; cfg is copied. Returns 0 and *out, or
 * -EINVAL (NULL cfg or out), -ENOMEM. Free with dev_destroy. */
int serial8250_create(const struct serial8250_config *cfg, struct serial8250 **out);

/* The generic device of s (for dev_register, dev_reset, dev_destroy). */
struct dev *serial8250_dev(struct serial8250 *s);

/*
 * Host input: appends up to len bytes of buf to the RX FIFO and updates the
 * interrupt. Returns how many were taken (0 when the FIFO is full, when the
 * UART is in loopback, or for len 0); keep the rest and push it after
 * rx_ready(). Never blocks.
 */
size_t serial8250_rx_push(struct serial8250 *s, const uint8_t *buf, size_t len);

/* The host has room again: hands the bytes waiting in the TX FIFO to tx()
 * while tx_full() allows, and raises THRE (and its interrupt) once the FIFO
 * is empty. Never blocks; any thread. */
void serial8250_tx_ready(struct serial8250 *s);

/* Bytes the guest wrote while the TX FIFO was full (lost). */
uint64_t serial8250_tx_dropped(struct serial8250 *s);

#endif /* EMBER_DEVICES_SERIAL8250_H */
