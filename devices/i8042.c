/* devices/i8042.c - i8042 controller commands, output queue, a minimal PS/2 keyboard, reset. */
#include "i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* status register (port 0x64 read) */
#define STR_OBF	    0x01
#define STR_SYS	    0x04
#define STR_CMD	    0x08 /* the last write went to the command port */
#define STR_KEYLOCK 0x10 /* 1: keyboard not inhibited */
#define STR_AUXDATA 0x20

/* command byte (controller RAM byte 0) */
#define CTR_KBDINT  0x01
#define CTR_AUXINT  0x02
#define CTR_SYS	    0x04
#define CTR_KBDDIS  0x10
#define CTR_AUXDIS  0x20
#define CTR_XLATE   0x40
#define CTR_DEFAULT (CTR_XLATE | CTR_AUXDIS | CTR_SYS | CTR_KBDINT)

#define OUTPORT_RESET	0x01 /* 0 holds the CPU in reset */
#define OUTPORT_A20	0x02
#define OUTPORT_DEFAULT (OUTPORT_RESET | OUTPORT_A20)

/* keyboard replies */
#define KBD_ACK	   0xfa
#define KBD_RESEND 0xfe
#define KBD_BAT_OK 0xaa
#define KBD_ECHO   0xee

#define QUEUE_SIZE 16

enum source { SRC_CTL, SRC_KBD, SRC_AUX };

struct i8042 {
	struct dev dev;
	pthread_mutex_t lock;
	struct i8042_config cfg;
	uint8_t ram[32]; /* ram[0] is the command byte */
	uint8_t outport;
	bool cmd_last;	     /* STR_CMD */
	uint8_t pending_cmd; /* controller command waiting for its data byte, or 0 */
	uint8_t kbd_pending; /* keyboard command waiting for its parameter, or 0 */
	uint8_t kbd_set;     /* scan code set 1-3 */
	bool kbd_scanning;
	bool irq_level;
	uint8_t last; /* the data port when the queue is empty */
	struct {
		uint8_t byte;
		uint8_t src;
	} q[QUEUE_SIZE];
	unsigned q_head, q_count;
};

_Static_assert(offsetof(struct i8042, dev) == 0, "struct dev must come first");

static void queue(struct i8042 *k, uint8_t byte, enum source src)
{
	if (k->q_count >= QUEUE_SIZE)
		return; /* a real controller would lose it too */
	unsigned i = (k->q_head + k->q_count) % QUEUE_SIZE;
	k->q[i].byte = byte;
	k->q[i].src = (uint8_t)src;
	k->q_count++;
}

/* The keyboard line: a non-AUX byte waiting and the keyboard interrupt on.
 * edge: lower and raise again if it stays high (one edge per byte). */
static void update_irq(struct i8042 *k, bool edge)
{
	bool level = k->q_count && k->q[k->q_head].src != SRC_AUX && (k->ram[0] & CTR_KBDINT);
	if (!k->cfg.set_irq) {
		k->irq_level = level;
		return;
	}
	if (edge && level && k->irq_level)
		k->cfg.set_irq(k->cfg.opaque, false);
	else if (level == k->irq_level)
		return;
	k->irq_level = level;
	k->cfg.set_irq(k->cfg.opaque, level);
}

static uint8_t read_status(const struct i8042 *k)
{
	uint8_t st = STR_KEYLOCK | (k->ram[0] & CTR_SYS);
	if (k->cmd_last)
		st |= STR_CMD;
	if (k->q_count) {
		st |= STR_OBF;
		if (k->q[k->q_head].src == SRC_AUX)
			st |= STR_AUXDATA;
	}
	return st;
}

static uint8_t read_data(struct i8042 *k)
{
	if (k->q_count) {
		k->last = k->q[k->q_head].byte;
		k->q_head = (k->q_head + 1) % QUEUE_SIZE;
		k->q_count--;
	}
	return k->last;
}

static void kbd_defaults(struct i8042 *k)
{
	k->kbd_set = 2;
	k->kbd_pending = 0;
}

/* A byte for the keyboard itself. */
static void kbd_write(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->kbd_pending;
	if (cmd) {
		k->kbd_pending = 0;
		queue(k, KBD_ACK, SRC_KBD);
		if (cmd == 0xf0) { /* scan code set: 0 asks, 1-3 selects */
			if (val == 0) {
				static const uint8_t xlated[4] = {0, 0x43, 0x41, 0x3f};
				uint8_t set = k->kbd_set;
				queue(k, (k->ram[0] & CTR_XLATE) ? xlated[set] : set, SRC_KBD);
			} else if (val <= 3) {
				k->kbd_set = val;
			}
		}
		return; /* 0xed LEDs, 0xf3 typematic: nothing to keep */
	}
	switch (val) {
	case 0xed: /* set LEDs */
	case 0xf0: /* scan code set */
	case 0xf3: /* typematic rate */
		queue(k, KBD_ACK, SRC_KBD);
		k->kbd_pending = val;
		break;
	case 0xee:
		queue(k, KBD_ECHO, SRC_KBD);
		break;
	case 0xf2: /* identify: an MF2 keyboard */
		queue(k, KBD_ACK, SRC_KBD);
		queue(k, 0xab, SRC_KBD);
		queue(k, (k->ram[0] & CTR_XLATE) ? 0x41 : 0x83, SRC_KBD);
		break;
	case 0xf4: /* enable scanning */
		k->kbd_scanning = true;
		queue(k, KBD_ACK, SRC_KBD);
		break;
	case 0xf5: /* disable scanning, defaults */
		kbd_defaults(k);
		k->kbd_scanning = false;
		queue(k, KBD_ACK, SRC_KBD);
		break;
	case 0xf6: /* defaults */
		kbd_defaults(k);
		queue(k, KBD_ACK, SRC_KBD);
		break;
	case 0xf7:
	case 0xf8:
	case 0xf9:
	case 0xfa:
	case 0xfb:
	case 0xfc:
	case 0xfd:
	case 0xfe:
		queue(k, KBD_ACK, SRC_KBD);
		break;
	case 0xff: /* reset and self-test */
		kbd_defaults(k);
		k->kbd_scanning = true;
		queue(k, KBD_ACK, SRC_KBD);
		queue(k, KBD_BAT_OK, SRC_KBD);
		break;
	default:
		queue(k, KBD_RESEND, SRC_KBD);
		break;
	}
}

/* Returns true when the command asks for a CPU reset. */
static bool write_command(struct i8042 *k, uint8_t cmd)
{
	k->cmd_last = true;
	k->pending_cmd = 0;
	if (cmd >= 0x20 && cmd <= 0x3f) {
		queue(k, k->ram[cmd & 0x1f], SRC_CTL);
		return false;
	}
	if (cmd >= 0x60 && cmd <= 0x7f) {
		k->pending_cmd = cmd;
		return false;
	}
	if (cmd >= 0xf0) /* pulse the output lines whose bit is 0; line 0 is reset */
		return !(cmd & 0x01);
	switch (cmd) {
	case 0xa4: /* password installed? */
		queue(k, 0xf1, SRC_CTL);
		break;
	case 0xa7:
		k->ram[0] |= CTR_AUXDIS;
		break;
	case 0xa8:
		k->ram[0] &= (uint8_t)~CTR_AUXDIS;
		break;
	case 0xa9: /* AUX interface test: no device, "clock line stuck low" */
		queue(k, 0x01, SRC_CTL);
		break;
	case 0xaa: /* self-test */
		k->ram[0] |= CTR_SYS;
		queue(k, 0x55, SRC_CTL);
		break;
	case 0xab: /* keyboard interface test */
		queue(k, 0x00, SRC_CTL);
		break;
	case 0xad:
		k->ram[0] |= CTR_KBDDIS;
		break;
	case 0xae:
		k->ram[0] &= (uint8_t)~CTR_KBDDIS;
		break;
	case 0xc0: /* input port */
		queue(k, 0x00, SRC_CTL);
		break;
	case 0xd0:
		queue(k, k->outport, SRC_CTL);
		break;
	case 0xd1: /* write output port */
	case 0xd2: /* write keyboard output buffer */
	case 0xd3: /* write AUX output buffer (loopback) */
	case 0xd4: /* write to the AUX device */
		k->pending_cmd = cmd;
		break;
	case 0xe0: /* test inputs */
		queue(k, 0x00, SRC_CTL);
		break;
	default: /* unknown, MUX (0x90-0x93), 0xa1 version: no answer */
		break;
	}
	return false;
}

/* Returns true when the byte asks for a CPU reset. */
static bool write_data(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->pending_cmd;
	k->cmd_last = false;
	k->pending_cmd = 0;
	if (cmd >= 0x60 && cmd <= 0x7f) {
		k->ram[cmd & 0x1f] = val;
		return false;
	}
	switch (cmd) {
	case 0xd1:
		k->outport = val;
		return !(val & OUTPORT_RESET);
	case 0xd2:
		queue(k, val, SRC_KBD);
		return false;
	case 0xd3:
		/* no AUX port: a loopback that does not loop, so Linux's
		 * i8042_check_aux moves on to the interface test and gives up */
		queue(k, (uint8_t)~val, SRC_AUX);
		return false;
	case 0xd4: /* no AUX device to receive it */
		return false;
	default:
		/* for the keyboard; sending to it re-enables its interface */
		k->ram[0] &= (uint8_t)~CTR_KBDDIS;
		kbd_write(k, val);
		return false;
	}
}

static void i8042_access(void *opaque, uint64_t offset, uint64_t addr, unsigned vcpu, uint8_t *data,
			 unsigned len, bool is_write)
{
	struct i8042 *k = opaque;
	if (offset != I8042_DATA && offset != I8042_COMMAND)
		return; /* all-ones / dropped */
	bool reset = false, edge = false;
	pthread_mutex_lock(&k->lock);
	if (!is_write && offset == I8042_DATA) {
		data[0] = read_data(k);
		edge = true;
	} else if (!is_write) {
		data[0] = read_status(k);
	} else if (offset == I8042_DATA) {
		reset = write_data(k, data[0]);
	} else {
		reset = write_command(k, data[0]);
	}
	update_irq(k, edge);
	pthread_mutex_unlock(&k->lock);
	if (reset && k->cfg.reset)
		k->cfg.reset(k->cfg.opaque);
}

static void reset_locked(struct i8042 *k)
{
	for (unsigned i = 0; i < sizeof(k->ram); i++)
		k->ram[i] = 0;
	k->ram[0] = CTR_DEFAULT;
	k->outport = OUTPORT_DEFAULT;
	k->cmd_last = false;
	k->pending_cmd = 0;
	kbd_defaults(k);
	k->kbd_scanning = true;
	k->last = 0;
	k->q_head = k->q_count = 0;
	update_irq(k, false);
}

static void i8042_reset(struct dev *dev)
{
	struct i8042 *k = (struct i8042 *)dev;
	pthread_mutex_lock(&k->lock);
	reset_locked(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_destroy(struct dev *dev)
{
	struct i8042 *k = (struct i8042 *)dev;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* The saved state: controller RAM, output port, the command and keyboard
 * parameters in progress, the keyboard's settings, the output queue in
 * order (byte and source). */
#define I8042_STATE_VERSION 1

static int i8042_save(struct dev *dev, struct vmm_state_w *w)
{
	struct i8042 *k = (struct i8042 *)dev;
	pthread_mutex_lock(&k->lock);
	vmm_sw_begin(w, "i8042", I8042_STATE_VERSION);
	vmm_sw_bytes(w, k->ram, sizeof(k->ram));
	const uint8_t regs[] = {k->outport, k->pending_cmd, k->kbd_pending, k->kbd_set, k->last};
	vmm_sw_bytes(w, regs, sizeof(regs));
	vmm_sw_bool(w, k->cmd_last);
	vmm_sw_bool(w, k->kbd_scanning);
	vmm_sw_u8(w, (uint8_t)k->q_count);
	for (unsigned i = 0; i < k->q_count; i++) {
		vmm_sw_u8(w, k->q[(k->q_head + i) % QUEUE_SIZE].byte);
		vmm_sw_u8(w, k->q[(k->q_head + i) % QUEUE_SIZE].src);
	}
	vmm_sw_end(w);
	pthread_mutex_unlock(&k->lock);
	return vmm_sw_error(w);
}

static int i8042_load(struct dev *dev, struct vmm_state_r *r)
{
	struct i8042 *k = (struct i8042 *)dev;
	struct i8042 n;
	uint32_t version = I8042_STATE_VERSION;
	if (vmm_sr_begin(r, "i8042", &version))
		return vmm_sr_error(r);
	vmm_sr_bytes(r, n.ram, sizeof(n.ram));
	uint8_t regs[5];
	vmm_sr_bytes(r, regs, sizeof(regs));
	n.outport = regs[0], n.pending_cmd = regs[1], n.kbd_pending = regs[2];
	n.kbd_set = regs[3], n.last = regs[4];
	n.cmd_last = vmm_sr_bool(r);
	n.kbd_scanning = vmm_sr_bool(r);
	n.q_count = vmm_sr_u8(r);
	if (n.q_count > QUEUE_SIZE)
		return vmm_sr_fail(r, -EINVAL, "%u bytes in the output queue (at most %u)",
				   n.q_count, QUEUE_SIZE);
	for (unsigned i = 0; i < n.q_count; i++) {
		n.q[i].byte = vmm_sr_u8(r);
		n.q[i].src = vmm_sr_u8(r);
		if (n.q[i].src > SRC_AUX)
			return vmm_sr_fail(r, -EINVAL, "output queue byte from source %u",
					   n.q[i].src);
	}
	if (n.kbd_set < 1 || n.kbd_set > 3)
		return vmm_sr_fail(r, -EINVAL, "scan code set %u", n.kbd_set);

	if (vmm_sr_end(r))
		return vmm_sr_error(r);
	pthread_mutex_lock(&k->lock);
	memcpy(k->ram, n.ram, sizeof(k->ram));
	k->outport = n.outport, k->pending_cmd = n.pending_cmd, k->kbd_pending = n.kbd_pending;
	k->kbd_set = n.kbd_set, k->last = n.last;
	k->cmd_last = n.cmd_last, k->kbd_scanning = n.kbd_scanning;
	memcpy(k->q, n.q, sizeof(k->q));
	k->q_head = 0, k->q_count = n.q_count;
	update_irq(k, false);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static const struct dev_ops i8042_ops = {
    .bus = {.name = "i8042", .sizes = BUS_W1, .access = i8042_access},
    .reset = i8042_reset,
    .destroy = i8042_destroy,
    .save = i8042_save,
    .load = i8042_load,
};

int i8042_create(const struct i8042_config *cfg, struct i8042 **out)
{
	if (!cfg || !out)
		return -EINVAL;
	*out = NULL;
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->dev.ops = &i8042_ops;
	k->cfg = *cfg;
	pthread_mutex_init(&k->lock, NULL);
	reset_locked(k);
	*out = k;
	return 0;
}

struct dev *i8042_dev(struct i8042 *k)
{
	return &k->dev;
}
