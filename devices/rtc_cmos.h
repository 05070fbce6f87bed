/* devices/rtc_cmos.h - the MC146818 CMOS real-time clock and its 128 bytes of CMOS memory. */
#ifndef EMBER_DEVICES_RTC_CMOS_H
#define EMBER_DEVICES_RTC_CMOS_H

/*
 * Window: offset 0 = index (port 0x70; bit 7 masks NMIs, bits 0-6 select a
 * register; reads 0xff, it is write-only), offset 1 = data (port 0x71).
 * 1-byte accesses only. Its interrupt is IRQ 8.
 *
 * Registers:
 *   0x00 seconds 0x02 minutes 0x04 hours 0x06 day of week (1 = Sunday)
 *   0x07 day of month 0x08 month 0x09 year (00-99) 0x32 century:
 *        the clock, read from the host's time (UTC) plus an offset the guest
 *        sets by writing them; BCD or binary (B.DM), 12 or 24 hours (B.24H,
 *        bit 7 of the hour = PM in 12-hour mode).
 *   0x01 0x03 0x05 alarm seconds/minutes/hours (0xc0-0xff: any).
 *   0x0a A: UIP (bit 7, read-only; set during the last 244 us of each
 *        second), divider (bits 6-4) and rate (bits 3-0). Reset 0x26.
 *   0x0b B: SET (freezes the clock for writing; setting it clears UIE),
 *        PIE, AIE, UIE, SQWE, DM, 24H, DSE. Reset 0x02 (24 h, BCD).
 *   0x0c C: IRQF, PF, AF, UF; reading clears them and lowers the line.
 *   0x0d D: VRT (bit 7) always set: the battery is fine.
 *   other: CMOS memory, plain bytes (0 at creation).
 * The clock is frozen while B.SET is set or the divider (A bits 6-5 = 11) is
 * held in reset, the way Linux's mc146818_set_time writes it; it resumes
 * from the written time when both are released.
 *
 * Interrupt flags are computed when register C is read or rtc_cmos_poll()
 * runs: UF when a second boundary passed since the last look, AF when a
 * second that passed matched the alarm, PF when a period of the rate
 * (register A bits 3-0: 65536 >> rate Hz, so 6 is 1024 Hz and 15 is 2 Hz;
 * 1 and 2 are 256 and 128 Hz as on the MC146818's 32.768 kHz time base;
 * 0 none) passed. The line (set_irq, IRQ 8) is IRQF = (PF & PIE) |
 * (AF & AIE) | (UF & UIE); reading C clears the flags and lowers it.
 *
 * The device has no thread: the VMM drives it with a timer. It calls
 * rtc_cmos_poll() when timer_changed() says so (the guest wrote the clock,
 * an alarm, A or B; a reset) and again after the delay each poll returns,
 * and stops when a poll returns -1 (no interrupt enabled). The board does
 * it with a timer of the VM's event loop (vmm/arch/x86/board.c). An
 * enabled event whose flag is already up needs no timer until the guest
 * reads register C (which calls timer_changed()), so a guest that never
 * acknowledges costs no wake-ups.
 *
 * A machine reset (dev_reset) keeps the time and the CMOS memory (they are
 * battery-backed) and clears PIE, AIE, UIE, SQWE and the flags.
 *
 * Thread-safety: any thread; a per-device mutex. now_ns() and set_irq() run
 * with it held and must not call into this device; timer_changed() runs
 * after the lock is dropped.
 */

#include "device.h"

#include <stdbool.h>
#include <stdint.h>

#define RTC_CMOS_WINDOW	 2
#define RTC_CMOS_CENTURY 0x32 /* the register ACPI's FADT.century names */

struct rtc_cmos_config {
	/* The host's wall-clock time: nanoseconds since the Unix epoch, UTC.
	 * NULL: CLOCK_REALTIME. */
	int64_t (*now_ns)(void *opaque);
	/* The interrupt line changed to level. NULL: none. */
	void (*set_irq)(void *opaque, bool level);
	/* When the next interrupt can come may have changed: call
	 * rtc_cmos_poll() soon (from any thread but this call's: it runs on
	 * the thread of the guest's access, without the device's lock, and
	 * must not block). NULL: the VMM polls on its own. */
	void (*timer_changed)(void *opaque);
	void *opaque;
};

struct rtc_cmos;

/* Creates the RTC showing the host's time; cfg is copied. Returns 0 and
 * *out, or -EINVAL (NULL cfg or out), -ENOMEM. Free with dev_destroy. */
int rtc_cmos_create(const struct rtc_cmos_config *cfg, struct rtc_cmos **out);

struct dev *rtc_cmos_dev(struct rtc_cmos *rtc);

/* Sets / reads a byte of CMOS memory from the host (e.g. memory sizes for a
 * firmware). index 0x0e-0x7f except RTC_CMOS_CENTURY. Returns 0 (get:
 * the byte), or -EINVAL for another index. */
int rtc_cmos_set_ram(struct rtc_cmos *rtc, unsigned index, uint8_t value);
int rtc_cmos_get_ram(struct rtc_cmos *rtc, unsigned index);

/* Whether the guest's last index write masked NMIs (bit 7 of port 0x70). */
bool rtc_cmos_nmi_masked(struct rtc_cmos *rtc);

/*
 * Updates the interrupt flags to the current time and the line with them.
 * Returns nanoseconds until the next moment a flag with its interrupt
 * enabled can be set (when to call again), or -1 when none can: no
 * interrupt enabled, or the flags of all enabled ones up already (reading
 * register C then calls timer_changed()).
 */
int64_t rtc_cmos_poll(struct rtc_cmos *rtc);

/*
 * An alarm and update-ended event now, on the host's demand (the control
 * plane's "Rtc"): sets AF and UF in register C as if the alarm second had
 * come (whatever the alarm registers hold) and updates the line. Returns
 * true when IRQ 8 is up (the guest enabled AIE or UIE), false when the
 * flags only wait in register C.
 */
bool rtc_cmos_force_alarm(struct rtc_cmos *rtc);

#endif /* EMBER_DEVICES_RTC_CMOS_H */
