/* tests/guests/lm64_irq.c - 64-bit guest: interrupt window + injected IRQ (arg 0), PIT timer ticks (arg 1). */
#include "guest.h"

static volatile uint64_t last_vector, nvectors, ticks;

static void on_irq(struct guest_frame *f)
{
	last_vector = f->vector;
	nvectors++;
}

static void on_tick(struct guest_frame *f)
{
	ticks++;
	outb(0x20, 0x20); /* EOI to the master PIC */
}

static void irq_window(void)
{
	guest_set_handler(0x40, on_irq);
	cli();
	GUEST_SYNC(0); /* the host asks for an interrupt window now */
	/* the window opens after sti (and its one-instruction shadow); the
	 * host injects when it exits; wait a little for the handler */
	sti();
	for (unsigned long i = 0; i < 1000000 && !nvectors; i++)
		pause();
	cli();
	GUEST_ASSERT_EQ(nvectors, 1);
	GUEST_ASSERT_EQ(last_vector, 0x40);
	GUEST_SYNC(nvectors, last_vector);
}

static void pit_ticks(unsigned want)
{
	guest_set_handler(0x20, on_tick);
	/* PICs: master vectors 0x20.., slave 0x28.., cascade on IRQ2 */
	outb(0x20, 0x11);
	outb(0x21, 0x20);
	outb(0x21, 0x04);
	outb(0x21, 0x01);
	outb(0xa0, 0x11);
	outb(0xa1, 0x28);
	outb(0xa1, 0x02);
	outb(0xa1, 0x01);
	outb(0x21, 0xfe); /* only IRQ0 */
	outb(0xa1, 0xff);
	/* PIT channel 0, lobyte/hibyte, mode 2, divisor 1193: ~1 kHz */
	outb(0x43, 0x34);
	outb(0x40, 1193 & 0xff);
	outb(0x40, 1193 >> 8);
	while (ticks < want)
		sti_hlt();
	cli();
	outb(0x21, 0xff);
	GUEST_SYNC(ticks);
}

void guest_main(unsigned long cpu, unsigned long arg)
{
	if (arg == 0)
		irq_window();
	else
		pit_ticks((unsigned)arg);
}
