/* tests/guests/rt/serial.h - text out of the VMM-booted test guests: COM1 (the board's 16550A, ttyS0). */
#ifndef EMBER_GUEST_SERIAL_H
#define EMBER_GUEST_SERIAL_H

#include "guest.h"

#define GUEST_COM1 0x3f8

/* One byte, after the transmitter is free (bounded wait: a busy UART whose
 * reader stopped reading does not hang the guest). */
static inline void serial_putc(char c)
{
	for (unsigned i = 0; i < 100000 && !(inb(GUEST_COM1 + 5) & 0x20); i++)
		pause();
	outb(GUEST_COM1, (uint8_t)c);
}

static inline void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

/* v in decimal. */
static inline void serial_putdec(uint32_t v)
{
	char b[12];
	int n = 11;
	b[n] = 0;
	do {
		b[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	serial_puts(b + n);
}

#endif /* EMBER_GUEST_SERIAL_H */
