/* devices/serial8250.c - 16550A UART: registers, RX and TX FIFOs, interrupt priorities, loopback. */
#include "serial8250.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Register offsets */
enum {
	REG_RBR_THR = 0, /* DLL with DLAB */
	REG_IER = 1,	 /* DLM with DLAB */
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0f

#define IIR_NO_INT  0x01
#define IIR_MSI	    0x00
#define IIR_THRI    0x02
#define IIR_RDI	    0x04
#define IIR_RLSI    0x06
#define IIR_CTI	    0x0c
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_DMA	     0x08
#define FCR_TRIGGER  0xc0

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	   0x01
#define LSR_OE	   0x02
#define LSR_PE	   0x04
#define LSR_FE	   0x08
#define LSR_BI	   0x10
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS	   0x10
#define MSR_DSR	   0x20
#define MSR_RI	   0x40
#define MSR_DCD	   0x80
/* the host side of the cable: carrier, data set ready, clear to send */
#define MSR_LINES_CONNECTED (MSR_DCD | MSR_DSR | MSR_CTS)

struct serial8250 {
	struct dev dev;
	pthread_mutex_t lock;
	struct serial8250_config cfg;
	uint8_t ier, lcr, mcr, fcr, scr, dll, dlm;
	uint8_t lsr_errors; /* OE/PE/FE/BI latched until LSR is read */
	uint8_t msr;	    /* lines (bits 4-7) and deltas (bits 0-3) */
	bool thre_int;	    /* THR-empty interrupt latched */
	bool irq_level;	    /* what set_irq() was last told */
	uint8_t rbr;	    /* last byte read (RBR when the FIFO is empty) */
	uint8_t rx[SERIAL8250_FIFO_SIZE];
	unsigned rx_head, rx_count;
	/* bytes the host could not take yet (cfg.tx_full said so) */
	uint8_t tx[SERIAL8250_FIFO_SIZE];
	unsigned tx_head, tx_count;
	uint64_t tx_dropped;
};

_Static_assert(offsetof(struct serial8250, dev) == 0, "struct dev must come first");

static unsigned rx_capacity(const struct serial8250 *s)
{
	return (s->fcr & FCR_ENABLE) ? SERIAL8250_FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct serial8250 *s)
{
	static const unsigned levels[4] = {1, 4, 8, 14};
	return (s->fcr & FCR_ENABLE) ? levels[s->fcr >> 6] : 1;
}

static void rx_clear(struct serial8250 *s)
{
	s->rx_head = s->rx_count = 0;
}

/* Appends one byte; on a full FIFO flags an overrun (a 16450 overwrites its
 * holding register, a 16550 in FIFO mode loses the new byte). */
static void rx_put(struct serial8250 *s, uint8_t byte)
{
	unsigned cap = rx_capacity(s);
	if (s->rx_count >= cap) {
		s->lsr_errors |= LSR_OE;
		if (cap == 1)
			s->rx[s->rx_head] = byte;
		return;
	}
	s->rx[(s->rx_head + s->rx_count) % SERIAL8250_FIFO_SIZE] = byte;
	s->rx_count++;
}

/* The modem input lines as the MSR shows them (bits 4-7). */
static uint8_t modem_lines(const struct serial8250 *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_LINES_CONNECTED;
	uint8_t m = 0;
	if (s->mcr & MCR_RTS)
		m |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		m |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		m |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

/* Recomputes the MSR lines and accumulates their deltas. */
static void update_msr(struct serial8250 *s)
{
	uint8_t old = s->msr & 0xf0, now = modem_lines(s);
	uint8_t changed = old ^ now, delta = 0;
	if (changed & MSR_CTS)
		delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI)) /* trailing edge only */
		delta |= MSR_TERI;
	if (changed & MSR_DCD)
		delta |= MSR_DDCD;
	s->msr = (uint8_t)(now | ((s->msr | delta) & MSR_DELTAS));
}

/* The interrupt IIR reports now (bits 0-3), IIR_NO_INT if none. */
static uint8_t pending_int(const struct serial8250 *s)
{
	if ((s->ier & IER_ELSI) && (s->lsr_errors & LSR_ERRORS))
		return IIR_RLSI;
	if ((s->ier & IER_ERBFI) && s->rx_count)
		return s->rx_count >= rx_trigger(s) ? IIR_RDI : IIR_CTI;
	if ((s->ier & IER_ETBEI) && s->thre_int)
		return IIR_THRI;
	if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NO_INT;
}

static void update_irq(struct serial8250 *s)
{
	bool level = pending_int(s) != IIR_NO_INT;
	if (!s->cfg.ungated_irq && (!(s->mcr & MCR_OUT2) || (s->mcr & MCR_LOOP)))
		level = false;
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->cfg.set_irq)
			s->cfg.set_irq(s->cfg.opaque, level);
	}
}

static bool host_full(const struct serial8250 *s)
{
	return s->cfg.tx_full && s->cfg.tx_full(s->cfg.opaque);
}

/* Hands queued bytes to the host while it takes them; true when that
 * emptied a non-empty TX FIFO. */
static bool tx_flush(struct serial8250 *s)
{
	if (!s->tx_count)
		return false;
	while (s->tx_count && !host_full(s)) {
		if (s->cfg.tx)
			s->cfg.tx(s->cfg.opaque, &s->tx[s->tx_head], 1);
		s->tx_head = (s->tx_head + 1) % SERIAL8250_FIFO_SIZE;
		s->tx_count--;
	}
	return s->tx_count == 0;
}

static void write_thr(struct serial8250 *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP) {
		rx_put(s, byte);
		s->thre_int = true;
		return;
	}
	tx_flush(s); /* the host may have room again before tx_ready() */
	if (!s->tx_count && !host_full(s)) {
		if (s->cfg.tx)
			s->cfg.tx(s->cfg.opaque, &byte, 1);
		/* sent at once: THR is empty again and THRE re-asserts */
		s->thre_int = true;
		return;
	}
	/* the host is busy: the byte waits in the TX FIFO (THR alone without
	 * FIFOs), THRE and TEMT read 0 until serial8250_tx_ready() drains it */
	s->thre_int = false;
	if (s->tx_count < rx_capacity(s)) {
		s->tx[(s->tx_head + s->tx_count) % SERIAL8250_FIFO_SIZE] = byte;
		s->tx_count++;
	} else {
		s->tx_dropped++; /* written while THRE was 0: lost, as on hardware */
	}
}

/* Returns true when this emptied a non-empty RX FIFO. */
static bool write_fcr(struct serial8250 *s, uint8_t val)
{
	bool had = s->rx_count != 0;
	if (!(val & FCR_ENABLE)) {
		/* FIFOs off: resetting FCR.0 clears both; other bits are not
		 * programmed without FCR.0 */
		if (s->fcr & FCR_ENABLE)
			rx_clear(s);
		s->fcr = 0;
	} else {
		if (!(s->fcr & FCR_ENABLE) || (val & FCR_CLEAR_RX))
			rx_clear(s);
		if ((val & FCR_CLEAR_TX) && s->tx_count) {
			s->tx_head = s->tx_count = 0;
			s->thre_int = true;
		}
		s->fcr = val & (FCR_ENABLE | FCR_DMA | FCR_TRIGGER);
	}
	return had && !s->rx_count;
}

/* Pops the RX FIFO; *drained = true when that emptied it. */
static uint8_t read_rbr(struct serial8250 *s, bool *drained)
{
	if (s->rx_count) {
		s->rbr = s->rx[s->rx_head];
		s->rx_head = (s->rx_head + 1) % SERIAL8250_FIFO_SIZE;
		s->rx_count--;
		*drained = s->rx_count == 0;
	}
	return s->rbr;
}

static uint8_t reg_read(struct serial8250 *s, unsigned reg, bool *drained)
{
	uint8_t v;
	switch (reg) {
	case REG_RBR_THR:
		return (s->lcr & LCR_DLAB) ? s->dll : read_rbr(s, drained);
	case REG_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case REG_IIR_FCR:
		v = pending_int(s);
		if (v == IIR_THRI)
			s->thre_int = false; /* reading IIR clears a THRE source */
		return (uint8_t)(v | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0));
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		v = (uint8_t)((s->tx_count ? 0 : LSR_THRE | LSR_TEMT) | s->lsr_errors |
			      (s->rx_count ? LSR_DR : 0));
		s->lsr_errors = 0;
		return v;
	case REG_MSR:
		v = s->msr;
		s->msr &= (uint8_t)~MSR_DELTAS;
		return v;
	default: /* REG_SCR */
		return s->scr;
	}
}

static bool reg_write(struct serial8250 *s, unsigned reg, uint8_t val)
{
	switch (reg) {
	case REG_RBR_THR:
		if (s->lcr & LCR_DLAB)
			s->dll = val;
		else
			write_thr(s, val);
		break;
	case REG_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = val;
		} else {
			uint8_t old = s->ier;
			s->ier = val & IER_MASK;
			/* enabling ETBEI with THR empty raises THRE */
			if ((s->ier & IER_ETBEI) && !(old & IER_ETBEI) && !s->tx_count)
				s->thre_int = true;
		}
		break;
	case REG_IIR_FCR:
		return write_fcr(s, val);
	case REG_LCR:
		s->lcr = val;
		break;
	case REG_MCR:
		s->mcr = val & MCR_MASK;
		update_msr(s);
		break;
	case REG_SCR:
		s->scr = val;
		break;
	default: /* LSR, MSR: read-only (factory test writes ignored) */
		break;
	}
	return false;
}

static void serial_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu,
			  uint8_t *data, unsigned len, bool is_write)
{
	struct serial8250 *s = opaque;
	if (offset >= SERIAL8250_WINDOW)
		return; /* a window registered too large: all-ones / dropped */
	bool drained = false;
	pthread_mutex_lock(&s->lock);
	if (is_write)
		drained = reg_write(s, (unsigned)offset, data[0]);
	else
		data[0] = reg_read(s, (unsigned)offset, &drained);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	if (drained && s->cfg.rx_ready)
		s->cfg.rx_ready(s->cfg.opaque);
}

static void reset_locked(struct serial8250 *s)
{
	s->ier = 0;
	s->lcr = 0;
	s->mcr = 0;
	s->fcr = 0;
	s->scr = 0;
	s->dll = 0x0c; /* 9600 baud with the PC's 1.8432 MHz clock */
	s->dlm = 0;
	s->lsr_errors = 0;
	s->msr = modem_lines(s);
	s->thre_int = false;
	s->rbr = 0;
	rx_clear(s);
	s->tx_head = s->tx_count = 0;
	update_irq(s);
}

static void serial_reset(struct dev *dev)
{
	struct serial8250 *s = (struct serial8250 *)dev;
	pthread_mutex_lock(&s->lock);
	bool had = s->rx_count != 0;
	reset_locked(s);
	pthread_mutex_unlock(&s->lock);
	if (had && s->cfg.rx_ready)
		s->cfg.rx_ready(s->cfg.opaque);
}

static void serial_destroy(struct dev *dev)
{
	struct serial8250 *s = (struct serial8250 *)dev;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The saved state: the registers, the latched flags, both FIFOs in order
 * (oldest first). The IRQ line is recomputed on load. */
#define SERIAL_STATE_VERSION 1

static int serial_save(struct dev *dev, struct vmm_state_w *w)
{
	struct serial8250 *s = (struct serial8250 *)dev;
	pthread_mutex_lock(&s->lock);
	vmm_sw_begin(w, "serial8250", SERIAL_STATE_VERSION);
	const uint8_t regs[] = {s->ier, s->lcr, s->mcr,	       s->fcr, s->scr,
				s->dll, s->dlm, s->lsr_errors, s->msr, s->rbr};
	vmm_sw_bytes(w, regs, sizeof(regs));
	vmm_sw_bool(w, s->thre_int);
	vmm_sw_u8(w, (uint8_t)s->rx_count);
	for (unsigned i = 0; i < s->rx_count; i++)
		vmm_sw_u8(w, s->rx[(s->rx_head + i) % SERIAL8250_FIFO_SIZE]);
	vmm_sw_u8(w, (uint8_t)s->tx_count);
	for (unsigned i = 0; i < s->tx_count; i++)
		vmm_sw_u8(w, s->tx[(s->tx_head + i) % SERIAL8250_FIFO_SIZE]);
	vmm_sw_end(w);
	pthread_mutex_unlock(&s->lock);
	return vmm_sw_error(w);
}

static int serial_load(struct dev *dev, struct vmm_state_r *r)
{
	struct serial8250 *s = (struct serial8250 *)dev;
	struct serial8250 n; /* the registers read, applied only when all check out */
	uint32_t version = SERIAL_STATE_VERSION;
	if (vmm_sr_begin(r, "serial8250", &version))
		return vmm_sr_error(r);
	uint8_t regs[10];
	vmm_sr_bytes(r, regs, sizeof(regs));
	n.ier = regs[0], n.lcr = regs[1], n.mcr = regs[2], n.fcr = regs[3], n.scr = regs[4];
	n.dll = regs[5], n.dlm = regs[6], n.lsr_errors = regs[7], n.msr = regs[8], n.rbr = regs[9];
	n.thre_int = vmm_sr_bool(r);
	n.rx_head = n.tx_head = 0;
	n.rx_count = vmm_sr_u8(r);
	if (n.rx_count > SERIAL8250_FIFO_SIZE)
		return vmm_sr_fail(r, -EINVAL, "%u bytes in the receive FIFO", n.rx_count);
	vmm_sr_bytes(r, n.rx, n.rx_count);
	n.tx_count = vmm_sr_u8(r);
	if (n.tx_count > SERIAL8250_FIFO_SIZE)
		return vmm_sr_fail(r, -EINVAL, "%u bytes in the transmit FIFO", n.tx_count);
	vmm_sr_bytes(r, n.tx, n.tx_count);
	if ((n.ier & ~IER_MASK) || (n.mcr & ~MCR_MASK) ||
	    (n.fcr & ~(FCR_ENABLE | FCR_DMA | FCR_TRIGGER)) || (n.lsr_errors & ~LSR_ERRORS))
		return vmm_sr_fail(r, -EINVAL, "a register holds bits the UART has not");
	if (n.rx_count > rx_capacity(&n) || n.tx_count > rx_capacity(&n))
		return vmm_sr_fail(r, -EINVAL, "FIFO contents past the FIFO's size");

	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	pthread_mutex_lock(&s->lock);
	s->ier = n.ier, s->lcr = n.lcr, s->mcr = n.mcr, s->fcr = n.fcr, s->scr = n.scr;
	s->dll = n.dll, s->dlm = n.dlm, s->lsr_errors = n.lsr_errors, s->rbr = n.rbr;
	s->msr = n.msr;
	s->thre_int = n.thre_int;
	memcpy(s->rx, n.rx, n.rx_count);
	s->rx_head = 0, s->rx_count = n.rx_count;
	memcpy(s->tx, n.tx, n.tx_count);
	s->tx_head = 0, s->tx_count = n.tx_count;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static const struct dev_ops serial8250_ops = {
    .bus = {.name = "serial8250", .sizes = BUS_W1, .access = serial_access},
    .reset = serial_reset,
    .destroy = serial_destroy,
    .save = serial_save,
    .load = serial_load,
};

int serial8250_create(const struct serial8250_config *cfg, struct serial8250 **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	struct serial8250 *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->dev.ops = &serial8250_ops;
	s->cfg = *cfg;
	pthread_mutex_init(&s->lock, NULL);
	reset_locked(s);
	*out = s;
	return 0;
}

struct dev *serial8250_dev(struct serial8250 *s)
{
	return &s->dev;
}

size_t serial8250_rx_push(struct serial8250 *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	if (!(s->mcr & MCR_LOOP)) {
		unsigned cap = rx_capacity(s);
		for (; n < len && s->rx_count < cap; n++)
			rx_put(s, buf[n]);
		update_irq(s);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial8250_tx_ready(struct serial8250 *s)
{
	pthread_mutex_lock(&s->lock);
	if (tx_flush(s)) {
		s->thre_int = true;
		update_irq(s);
	}
	pthread_mutex_unlock(&s->lock);
}

uint64_t serial8250_tx_dropped(struct serial8250 *s)
{
	pthread_mutex_lock(&s->lock);
	uint64_t n = s->tx_dropped;
	pthread_mutex_unlock(&s->lock);
	return n;
}
