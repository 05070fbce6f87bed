/* fuzz/fuzz_devstate.c - libFuzzer target: the state reader behind every device's load (lib/io/state.h), on saved states the input edits or replaces. */
#include "fuzz_common.h"
#include "../devices/bootmarker.h"
#include "../devices/i8042.h"
#include "../devices/pci_host.h"
#include "../devices/pvpanic.h"
#include "../devices/reset_cf9.h"
#include "../devices/rtc_cmos.h"
#include "../devices/serial8250.h"
#include "../devices/virtio/balloon.h"
#include "../devices/virtio/console.h"
#include "../devices/virtio/net.h"
#include "../devices/virtio/rng.h"
#include "../devices/virtio/vsock.h"
#include "../lib/io/state.h"
#include "../tests/unit/vsock_nop.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the device (modulo the number of them) and the mode:
 * bit 7 clear, the rest of the input is a list of edits (offset u16, byte)
 * applied to the device's own saved state (taken from a device the target
 * drove through a driver's setup, so loads get past the headers); bit 7
 * set, the rest is the state itself. The state is loaded into the device.
 * Invariants: a load returns 0 or -errno; a refused load leaves the
 * device's saved state byte for byte as it was; a successful one saves
 * again (nothing in flight after a load), and that state loads back and
 * saves the same (a round trip is exact). After a successful load of a
 * virtio device every queue is run once over the 64 KiB of guest memory
 * (whose first bytes the input's tail also fills).
 */
#define MEM (64u << 10)

static size_t con_tx(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque, (void)buf;
	return len / 2; /* a host that is often full */
}

#define NDEV 12

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct dev *dev[NDEV];
	struct virtio_mmio *t[NDEV]; /* the virtio ones */
	uint8_t *good[NDEV];	     /* each device's driven state */
	size_t good_len[NDEV];
};

static void wr(struct rig *r, uint64_t base, uint64_t off, uint32_t v)
{
	uint64_t x = v;
	bus_access_u64(r->bus, base + off, &x, 4, true, 0);
}

/* A driver's setup: features, every queue at its own place, DRIVER_OK. */
static void drive(struct rig *r, uint64_t base, unsigned nq)
{
	wr(r, base, VIRTIO_MMIO_STATUS, 0);
	wr(r, base, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(r, base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(r, base, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	wr(r, base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(r, base, VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffffu); /* masked to the offer: refused */
	wr(r, base, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 29);    /* EVENT_IDX */
	wr(r, base, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	for (unsigned q = 0; q < nq; q++) {
		uint32_t at = 0x1000u * q;
		wr(r, base, VIRTIO_MMIO_QUEUE_SEL, q);
		wr(r, base, VIRTIO_MMIO_QUEUE_NUM, 8);
		wr(r, base, VIRTIO_MMIO_QUEUE_DESC_LOW, at);
		wr(r, base, VIRTIO_MMIO_QUEUE_AVAIL_LOW, at + 0x400);
		wr(r, base, VIRTIO_MMIO_QUEUE_USED_LOW, at + 0x800);
		wr(r, base, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(r, base, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
	       VIRTIO_CONFIG_S_DRIVER_OK);
}

static uint8_t *save(struct dev *d, size_t *len)
{
	struct vmm_state_w w;
	void *buf = NULL;
	vmm_sw_init(&w);
	int rc = dev_save(d, &w);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(vmm_sw_take(&w, &buf, len) == 0);
	return buf;
}

static int load(struct dev *d, const uint8_t *buf, size_t len)
{
	struct vmm_state_r r;
	vmm_sr_init(&r, buf, len);
	int rc = dev_load(d, &r);
	FUZZ_CHECK(rc <= 0);
	FUZZ_CHECK((rc == 0) == (vmm_sr_error(&r) == 0));
	FUZZ_CHECK(rc == 0 || vmm_sr_detail(&r)[0]);
	return rc;
}

static struct rig *rig(void)
{
	static struct rig r;
	static int ready;
	if (ready)
		return &r;
	if (vmm_mem_create(&r.mem, MEM, MEM, MEM, EMBER_MEM_ANON, false, NULL) < 0 ||
	    bus_create("mmio", UINT64_MAX, &r.bus) < 0)
		abort();
	struct serial8250 *uart;
	struct i8042 *kbd;
	struct rtc_cmos *rtc;
	struct bootmarker *bm;
	struct pvpanic *pv;
	struct reset_cf9 *cf9;
	struct pci_host *pci;
	if (serial8250_create(&(struct serial8250_config){0}, &uart) ||
	    i8042_create(&(struct i8042_config){0}, &kbd) ||
	    rtc_cmos_create(&(struct rtc_cmos_config){0}, &rtc) ||
	    bootmarker_create(&(struct bootmarker_config){0}, &bm) ||
	    pvpanic_create(&(struct pvpanic_config){0}, &pv) ||
	    reset_cf9_create(&(struct reset_cf9_config){0}, &cf9) ||
	    pci_host_create(&(struct pci_host_config){0}, &pci))
		abort();
	r.dev[0] = serial8250_dev(uart);
	r.dev[1] = i8042_dev(kbd);
	r.dev[2] = rtc_cmos_dev(rtc);
	r.dev[3] = bootmarker_dev(bm);
	r.dev[4] = pvpanic_dev(pv);
	r.dev[5] = reset_cf9_dev(cf9);
	r.dev[6] = pci_host_dev(pci);
	struct virtio_mmio_config cfg = {.mem = &r.mem};
	struct virtio_rng *rng;
	struct virtio_console *con;
	struct virtio_balloon *bal;
	struct virtio_vsock *vs;
	struct virtio_net *net;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	struct virtio_console_host ch = {.tx = con_tx, .cols = 80, .rows = 25};
	struct virtio_vsock_options vo = {.guest_cid = 3, .host_ops = &vsock_nop_ops};
	struct virtio_net_options no = {.fd = sv[0], .mac = {0x52, 0x54, 0, 1, 2, 3}};
	if (virtio_rng_create(cfg, &rng, &r.t[7]) ||
	    virtio_console_create(cfg, &ch, &con, &r.t[8]) ||
	    virtio_balloon_create(cfg, &bal, &r.t[9]) ||
	    virtio_vsock_create(cfg, &vo, &vs, &r.t[10]) ||
	    virtio_net_create(cfg, &no, &net, &r.t[11]))
		abort();
	for (unsigned i = 7; i < NDEV; i++) {
		r.dev[i] = virtio_mmio_dev(r.t[i]);
		uint64_t base = 0x10000000ull * i;
		if (dev_register(r.bus, base, VIRTIO_MMIO_WINDOW, r.dev[i]) < 0)
			abort();
		drive(&r, base, i == 9 ? 4 : i == 10 ? 3 : 2);
	}
	for (unsigned i = 0; i < NDEV; i++)
		r.good[i] = save(r.dev[i], &r.good_len[i]);
	ready = 1;
	return &r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct rig *r = rig();
	unsigned which = (data[0] & 0x7f) % NDEV;
	struct dev *d = r->dev[which];
	uint8_t *state;
	size_t len;
	if (data[0] & 0x80) {
		len = size - 1;
		state = malloc(len ? len : 1);
		FUZZ_CHECK(state != NULL);
		memcpy(state, data + 1, len);
	} else {
		len = r->good_len[which];
		state = malloc(len);
		FUZZ_CHECK(state != NULL);
		memcpy(state, r->good[which], len);
		size_t i = 1;
		for (; i + 3 <= size && i < 1 + 3 * 16; i += 3) {
			size_t off = (size_t)(data[i] | data[i + 1] << 8);
			if (off == 0xffff) /* a cut */
				len = data[i + 2] < len ? data[i + 2] : len;
			else if (off < len)
				state[off] = data[i + 2];
		}
		/* the rest: guest memory, where the loaded queues point */
		size_t n = size - i < MEM ? size - i : MEM;
		memcpy(r->mem.host, data + i, n);
	}
	size_t before_len;
	uint8_t *before = save(d, &before_len);
	int rc = load(d, state, len);
	size_t after_len;
	uint8_t *after = save(d, &after_len);
	if (rc) {
		/* the RTC's flags follow the clock: compare the rest */
		if (which == 2) {
			before[before_len - 1] = after[after_len - 1] = 0;
		}
		FUZZ_CHECK(after_len == before_len && !memcmp(after, before, before_len));
	} else {
		FUZZ_CHECK(load(d, after, after_len) == 0);
		size_t again_len;
		uint8_t *again = save(d, &again_len);
		if (which == 2)
			again[again_len - 1] = after[after_len - 1] = 0;
		FUZZ_CHECK(again_len == after_len && !memcmp(again, after, after_len));
		free(again);
		if (which >= 7)
			for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
				virtio_mmio_process(r->t[which], q);
	}
	free(before);
	free(after);
	free(state);
	return 0;
}
