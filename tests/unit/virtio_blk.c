/* tests/unit/virtio_blk.c - virtio-blk on a temporary image, driven through virtio-mmio like Linux's virtio_blk, on both engines. */
#include "virtio_driver.h"
#include "../../devices/virtio/blk.h"
#include "state_util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MEM_SIZE  (1u << 20)
#define BASE	  0xd0000000ull
#define QSZ	  16
#define DESC_GPA  0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA  0x3000
#define HDR_GPA	  0x8000
#define STS_GPA	  0x8100
#define SEG_GPA	  0x8200
#define DATA_GPA  0x10000
#define IMG_SIZE  ((1u << 20) + 100) /* not a whole number of sectors */

/* The same request test on both engines: NAME_sync and NAME_io_uring. */
#define TEST_BOTH_ENGINES(name, fn)             \
	TEST(name##_sync)                       \
	{                                       \
		fn(VIRTIO_BLK_ENGINE_SYNC);     \
	}                                       \
	TEST(name##_io_uring)                   \
	{                                       \
		fn(VIRTIO_BLK_ENGINE_IO_URING); \
	}

struct rig {
	struct vmm_mem mem;
	struct bus *bus;
	struct virtio_blk *blk;
	struct virtio_mmio *t;
	struct tdrv_queue q;
	struct tdrv_mmio m;
	char path[64];
	uint16_t next_used;
	enum virtio_blk_engine engine;
	unsigned depth; /* 0: the default */
	bool direct;
};

static void make_image(char *path, size_t len)
{
	snprintf(path, len, "/tmp/ember-blk-XXXXXX");
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	uint8_t *buf = malloc(IMG_SIZE);
	REQUIRE(buf);
	for (unsigned i = 0; i < IMG_SIZE; i++)
		buf[i] = (uint8_t)(i / 512 + i);
	REQUIRE_EQ(write(fd, buf, IMG_SIZE), IMG_SIZE);
	free(buf);
	close(fd);
}

static int open_disk(struct rig *r, bool ro, const char *serial, char *err, size_t errlen)
{
	struct virtio_mmio_config cfg = {.mem = &r->mem};
	struct virtio_blk_options o = {.path = r->path,
				       .read_only = ro,
				       .serial = serial,
				       .queues = 2,
				       .engine = r->engine,
				       .depth = r->depth,
				       .direct = r->direct};
	return virtio_blk_create(cfg, &o, &r->blk, &r->t, err, errlen);
}

/* rig_init_with: *r's engine, depth and direct set by the caller. */
static void rig_init_with(struct rig *r, bool ro)
{
	make_image(r->path, sizeof(r->path));
	REQUIRE_OK(
	    vmm_mem_create(&r->mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	char err[256];
	REQUIRE_OK(open_disk(r, ro, "ember-disk-0", err, sizeof(err)));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->m = (struct tdrv_mmio){.bus = r->bus, .base = BASE};
	r->q = (struct tdrv_queue){
	    .mem = &r->mem, .size = QSZ, .desc = DESC_GPA, .avail = AVAIL_GPA, .used = USED_GPA};
	uint64_t offered = tdrv_probe(&r->m, VIRTIO_ID_BLOCK, 1ull << VIRTIO_F_VERSION_1);
	CHECK(offered & (1ull << VIRTIO_BLK_F_FLUSH));
	CHECK(offered & (1ull << VIRTIO_BLK_F_DISCARD));
	CHECK(offered & (1ull << VIRTIO_BLK_F_MQ));
	CHECK_EQ((offered >> VIRTIO_BLK_F_RO) & 1, ro);
	tdrv_setup_queue(&r->m, 0, &r->q);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
	CHECK_EQ(tdrv_rd(&r->m, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
	if (r->engine != VIRTIO_BLK_ENGINE_AUTO) {
		CHECK_STR(virtio_blk_engine_name(r->blk),
			  r->engine == VIRTIO_BLK_ENGINE_SYNC ? "sync" : "io_uring");
		CHECK_EQ(virtio_blk_event_fd(r->blk) >= 0, r->engine != VIRTIO_BLK_ENGINE_SYNC);
	}
}

static void rig_init(struct rig *r, bool ro, enum virtio_blk_engine engine)
{
	memset(r, 0, sizeof(*r));
	r->engine = engine;
	rig_init_with(r, ro);
}

/* What the VMM's loop does: waits for the ring's eventfd, then completes;
 * until used.idx reaches want (sync: it must already). */
static void wait_used(struct rig *r, uint16_t want)
{
	for (int i = 0; i < 200 && tdrv_rd16(&r->mem, USED_GPA + 2) != want; i++) {
		int efd = virtio_blk_event_fd(r->blk);
		REQUIRE(efd >= 0); /* the sync engine completes in the kick */
		struct pollfd p = {.fd = efd, .events = POLLIN};
		poll(&p, 1, 50);
		uint64_t n;
		ssize_t rr = read(efd, &n, sizeof(n));
		(void)rr;
		virtio_blk_poll(r->blk, true);
	}
	CHECK_EQ(tdrv_rd16(&r->mem, USED_GPA + 2), want);
}

static void rig_fini(struct rig *r)
{
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_blk_destroy(r->blk);
	vmm_mem_destroy(&r->mem);
	unlink(r->path);
}

/* Sends one request: header, optional data (out or in), status; returns
 * the status byte and *used_len. */
static uint8_t req(struct rig *r, uint32_t type, uint64_t sector, uint32_t data_len, bool data_in,
		   uint32_t *used_len)
{
	uint8_t hdr[16] = {0};
	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	REQUIRE_OK(vmm_mem_write(&r->mem, HDR_GPA, hdr, 16));
	uint8_t ff = 0xff;
	REQUIRE_OK(vmm_mem_write(&r->mem, STS_GPA, &ff, 1));
	unsigned n = 0;
	tdrv_desc(&r->q, DESC_GPA, n, HDR_GPA, 16, VRING_DESC_F_NEXT, (uint16_t)(n + 1));
	n++;
	if (data_len) {
		uint64_t addr = type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES
				    ? SEG_GPA
				    : DATA_GPA;
		tdrv_desc(&r->q, DESC_GPA, n, addr, data_len,
			  VRING_DESC_F_NEXT | (data_in ? VRING_DESC_F_WRITE : 0),
			  (uint16_t)(n + 1));
		n++;
	}
	tdrv_desc(&r->q, DESC_GPA, n, STS_GPA, 1, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r->q, 0);
	tdrv_wr(&r->m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	uint16_t slot = r->next_used % QSZ;
	r->next_used++;
	wait_used(r, r->next_used);
	*used_len = tdrv_rd32(&r->mem, USED_GPA + 8 + 8ull * slot);
	uint8_t st = 0xee;
	vmm_mem_read(&r->mem, STS_GPA, &st, 1);
	return st;
}

static void read_write_flush_id(enum virtio_blk_engine engine)
{
	struct rig r;
	rig_init(&r, false, engine);
	CHECK_EQ(virtio_blk_capacity(r.blk), 2048); /* 1 MiB + 100 bytes: 2048 whole sectors */
	/* configuration space: capacity, seg_max, num_queues */
	uint64_t cap = 0;
	bus_access_u64(r.bus, BASE + VIRTIO_MMIO_CONFIG, &cap, 8, false, 0);
	CHECK_EQ(cap, 2048);
	uint64_t nq = 0;
	bus_access_u64(r.bus,
		       BASE + VIRTIO_MMIO_CONFIG + offsetof(struct virtio_blk_config, num_queues),
		       &nq, 2, false, 0);
	CHECK_EQ(nq, 2);

	uint32_t used;
	/* read sectors 3-4 */
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 3, 1024, true, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 1025);
	uint8_t got[1024];
	REQUIRE_OK(vmm_mem_read(&r.mem, DATA_GPA, got, sizeof(got)));
	CHECK_EQ(got[0], (uint8_t)(3 + 3 * 512));
	CHECK_EQ(got[1023], (uint8_t)(4 + 3 * 512 + 1023));
	/* write sector 10, read it back through the file */
	uint8_t pat[512];
	memset(pat, 0x5a, sizeof(pat));
	REQUIRE_OK(vmm_mem_write(&r.mem, DATA_GPA, pat, sizeof(pat)));
	CHECK_EQ(req(&r, VIRTIO_BLK_T_OUT, 10, 512, false, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 1);
	int fd = open(r.path, O_RDONLY);
	REQUIRE(fd >= 0);
	uint8_t file[512];
	REQUIRE_EQ(pread(fd, file, 512, 10 * 512), 512);
	CHECK(memcmp(file, pat, 512) == 0);
	CHECK_EQ(req(&r, VIRTIO_BLK_T_FLUSH, 0, 0, false, &used), VIRTIO_BLK_S_OK);
	/* get-id: the serial, zero padded */
	CHECK_EQ(req(&r, VIRTIO_BLK_T_GET_ID, 0, 20, true, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 21);
	char id[21] = {0};
	REQUIRE_OK(vmm_mem_read(&r.mem, DATA_GPA, id, 20));
	CHECK_STR(id, "ember-disk-0");
	/* past the end: the last whole sector reads, the partial one does not */
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 2047, 512, true, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 2048, 512, true, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(used, 1);
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, UINT64_MAX, 512, true, &used), VIRTIO_BLK_S_IOERR);
	/* not whole sectors; an unknown type */
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 0, 100, true, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(req(&r, 77, 0, 0, false, &used), VIRTIO_BLK_S_UNSUPP);

	/* discard punches a hole; write-zeroes zeroes */
	uint8_t seg[16] = {0};
	uint64_t s0 = 16;
	uint32_t num = 8, flags = 0;
	memcpy(seg, &s0, 8);
	memcpy(seg + 8, &num, 4);
	memcpy(seg + 12, &flags, 4);
	REQUIRE_OK(vmm_mem_write(&r.mem, SEG_GPA, seg, 16));
	CHECK_EQ(req(&r, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false, &used), VIRTIO_BLK_S_OK);
	REQUIRE_EQ(pread(fd, file, 512, 16 * 512), 512);
	uint8_t zero[512] = {0};
	CHECK(memcmp(file, zero, 512) == 0);
	s0 = 2040; /* 2040 + 8 = 2048: the last whole sectors */
	memcpy(seg, &s0, 8);
	REQUIRE_OK(vmm_mem_write(&r.mem, SEG_GPA, seg, 16));
	CHECK_EQ(req(&r, VIRTIO_BLK_T_DISCARD, 0, 16, false, &used), VIRTIO_BLK_S_OK);
	REQUIRE_EQ(pread(fd, file, 512, 2047 * 512), 512);
	CHECK(memcmp(file, zero, 512) == 0);
	s0 = 2041; /* one past */
	memcpy(seg, &s0, 8);
	REQUIRE_OK(vmm_mem_write(&r.mem, SEG_GPA, seg, 16));
	CHECK_EQ(req(&r, VIRTIO_BLK_T_DISCARD, 0, 16, false, &used), VIRTIO_BLK_S_IOERR);
	/* the partial tail sector was never touched */
	struct stat sb;
	REQUIRE_OK(fstat(fd, &sb));
	CHECK_EQ(sb.st_size, IMG_SIZE);
	close(fd);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(r.blk, &st);
	CHECK_EQ(st.writes, 1);
	CHECK_EQ(st.flushes, 1);
	CHECK_EQ(st.synced, 1); /* the fdatasync (or io_uring's) returned 0 */
	CHECK_EQ(st.unsupported, 1);
	CHECK_EQ(st.errors, 4);
	rig_fini(&r);
}
TEST_BOTH_ENGINES(virtio_blk_read_write_flush_id, read_write_flush_id)

static void read_only_refuses_writes_and_locks(enum virtio_blk_engine engine)
{
	struct rig r;
	rig_init(&r, true, engine);
	uint32_t used;
	CHECK_EQ(req(&r, VIRTIO_BLK_T_OUT, 0, 512, false, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 0, 512, true, &used), VIRTIO_BLK_S_OK);
	/* a second opener for writing is refused while this one reads; another
	 * reader is fine */
	struct rig r2 = r;
	char err[256];
	CHECK_ERR(open_disk(&r2, false, NULL, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "locked") != NULL);
	/* OFD locks are per open file description: test from a child process
	 * too, as another VM would be */
	pid_t pid = fork();
	if (pid == 0) {
		struct rig r3 = r;
		int rc = open_disk(&r3, false, NULL, err, sizeof(err));
		_exit(rc == -EBUSY ? 0 : 1);
	}
	int ws;
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	REQUIRE_OK(open_disk(&r2, true, NULL, err, sizeof(err)));
	dev_destroy(virtio_mmio_dev(r2.t));
	virtio_blk_destroy(r2.blk);
	/* bad options and files */
	struct virtio_mmio_config cfg = {.mem = &r.mem};
	struct virtio_blk_options o = {.path = "/nonexistent/disk.img", .queues = 1};
	CHECK_ERR(virtio_blk_create(cfg, &o, &r2.blk, &r2.t, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/nonexistent/disk.img") != NULL);
	o.path = "/tmp";
	CHECK(virtio_blk_create(cfg, &o, &r2.blk, &r2.t, err, sizeof(err)) < 0);
	o.path = r.path;
	o.queues = 0;
	CHECK_ERR(virtio_blk_create(cfg, &o, &r2.blk, &r2.t, err, sizeof(err)), -EINVAL);
	o.queues = 1;
	o.serial = "a-serial-longer-than-twenty-bytes";
	CHECK_ERR(virtio_blk_create(cfg, &o, &r2.blk, &r2.t, err, sizeof(err)), -EINVAL);
	o.serial = NULL;
	o.engine = (enum virtio_blk_engine)7;
	CHECK_ERR(virtio_blk_create(cfg, &o, &r2.blk, &r2.t, err, sizeof(err)), -EINVAL);
	rig_fini(&r);
}
TEST_BOTH_ENGINES(virtio_blk_read_only_refuses_writes_and_locks, read_only_refuses_writes_and_locks)

static void bad_requests_keep_the_device_running(enum virtio_blk_engine engine)
{
	struct rig r;
	rig_init(&r, false, engine);
	/* a header shorter than 16 bytes: IOERR in the status byte */
	tdrv_desc(&r.q, DESC_GPA, 0, HDR_GPA, 8, VRING_DESC_F_NEXT, 1);
	tdrv_desc(&r.q, DESC_GPA, 1, STS_GPA, 1, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.q, 0);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	uint8_t st = 0;
	vmm_mem_read(&r.mem, STS_GPA, &st, 1);
	CHECK_EQ(st, VIRTIO_BLK_S_IOERR);
	r.next_used++;
	/* a sector past the end: IOERR too */
	uint32_t used;
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 1ull << 40, 512, true, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(used, 1);
	/* and a good request still works */
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 0, 512, true, &used), VIRTIO_BLK_S_OK);
	struct virtio_blk_stats s;
	virtio_blk_get_stats(r.blk, &s);
	CHECK_EQ(s.bad_chains, 1);
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
	rig_fini(&r);
}
TEST_BOTH_ENGINES(virtio_blk_bad_requests_keep_the_device_running,
		  bad_requests_keep_the_device_running)

/* Brings the rig's device back after a reset (as the driver does). */
static void rig_reinit(struct rig *r)
{
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(tdrv_rd(&r->m, VIRTIO_MMIO_STATUS), 0);
	static const uint8_t zeros[8 + 8 * QSZ];
	REQUIRE_OK(vmm_mem_write(&r->mem, USED_GPA, zeros, sizeof(zeros)));
	REQUIRE_OK(
	    vmm_mem_write(&r->mem, AVAIL_GPA, zeros, sizeof(zeros))); /* a new driver's rings */
	r->q.avail_idx = 0;
	r->next_used = 0;
	tdrv_probe(&r->m, VIRTIO_ID_BLOCK, 1ull << VIRTIO_F_VERSION_1);
	tdrv_setup_queue(&r->m, 0, &r->q);
	tdrv_wr(&r->m, VIRTIO_MMIO_STATUS, TDRV_DRIVER_ALL);
	CHECK_EQ(tdrv_rd(&r->m, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
}

/* A chain with no status byte the device could write (none at all, or a
 * chain the virtqueue refused) cannot be answered inside the request:
 * returned with 0 bytes, the status byte untouched, and DEVICE_NEEDS_RESET;
 * nothing more is served until the driver's reset, then the device works
 * again. */
static void unanswerable_chains_need_a_reset(enum virtio_blk_engine engine)
{
	struct rig r;
	rig_init(&r, false, engine);
	for (int k = 0; k < 2; k++) {
		uint8_t ff = 0xff;
		REQUIRE_OK(vmm_mem_write(&r.mem, STS_GPA, &ff, 1));
		if (k == 0) {
			/* no status byte at all */
			tdrv_desc(&r.q, DESC_GPA, 0, HDR_GPA, 16, 0, 0);
		} else {
			/* a data buffer past guest memory */
			tdrv_desc(&r.q, DESC_GPA, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
			tdrv_desc(&r.q, DESC_GPA, 1, MEM_SIZE - 256, 4096,
				  VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
			tdrv_desc(&r.q, DESC_GPA, 2, STS_GPA, 1, VRING_DESC_F_WRITE, 0);
		}
		tdrv_publish(&r.q, 0);
		tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), r.next_used + 1);
		CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 8 + 8ull * (r.next_used % QSZ)), 0);
		r.next_used++;
		uint8_t st = 0;
		vmm_mem_read(&r.mem, STS_GPA, &st, 1);
		CHECK_EQ(st, 0xff);
		CHECK(tdrv_rd(&r.m, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
		CHECK(tdrv_rd(&r.m, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
		uint16_t before = tdrv_rd16(&r.mem, USED_GPA + 2);
		tdrv_publish(&r.q, 0);
		tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), before);
		rig_reinit(&r);
		uint32_t used;
		CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 0, 512, true, &used), VIRTIO_BLK_S_OK);
		CHECK_EQ(used, 513);
	}
	struct virtio_blk_stats s;
	virtio_blk_get_stats(r.blk, &s);
	CHECK_EQ(s.bad_chains, 2);
	rig_fini(&r);
}
TEST_BOTH_ENGINES(virtio_blk_unanswerable_chains_need_a_reset, unanswerable_chains_need_a_reset)

/* Chain i of a batch: header at HDR_GPA + 32 i, data (len, device-written
 * for reads) at DATA_GPA + 4096 i, status at STS_GPA + i; descriptors
 * 3i..3i+2 (2 without data). Published, not kicked. */
static void batch_req(struct rig *r, unsigned i, uint32_t type, uint64_t sector, uint32_t len)
{
	uint8_t hdr[16] = {0};
	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	REQUIRE_OK(vmm_mem_write(&r->mem, HDR_GPA + 32 * i, hdr, 16));
	uint8_t ff = 0xff;
	REQUIRE_OK(vmm_mem_write(&r->mem, STS_GPA + i, &ff, 1));
	unsigned d = 3 * i;
	tdrv_desc(&r->q, DESC_GPA, d, HDR_GPA + 32 * i, 16, VRING_DESC_F_NEXT, (uint16_t)(d + 1));
	if (len) {
		uint16_t w =
		    type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID ? VRING_DESC_F_WRITE : 0;
		tdrv_desc(&r->q, DESC_GPA, d + 1, DATA_GPA + 4096ull * i, len,
			  VRING_DESC_F_NEXT | w, (uint16_t)(d + 2));
		d++;
	}
	tdrv_desc(&r->q, DESC_GPA, d + 1, STS_GPA + i, 1, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r->q, (uint16_t)(3 * i));
}

static uint8_t batch_status(struct rig *r, unsigned i)
{
	uint8_t st = 0xee;
	vmm_mem_read(&r->mem, STS_GPA + i, &st, 1);
	return st;
}

/* io_uring: a read goes to the ring, a get-id behind it completes at once:
 * the used ring holds the get-id first (out of order), the read after the
 * ring's completion is polled. The sync engine keeps the order. */
static void out_of_order(enum virtio_blk_engine engine)
{
	struct rig r;
	rig_init(&r, false, engine);
	batch_req(&r, 0, VIRTIO_BLK_T_IN, 8, 4096);
	batch_req(&r, 1, VIRTIO_BLK_T_GET_ID, 0, 20);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	if (engine == VIRTIO_BLK_ENGINE_IO_URING) {
		/* before any poll: only the get-id is back */
		CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 1);
		CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + 4), 3); /* head of chain 1 */
		CHECK_EQ(virtio_blk_inflight(r.blk), 1);
		CHECK_EQ(batch_status(&r, 0), 0xff);
	}
	wait_used(&r, 2);
	uint32_t first = tdrv_rd32(&r.mem, USED_GPA + 4), second = tdrv_rd32(&r.mem, USED_GPA + 12);
	if (engine == VIRTIO_BLK_ENGINE_IO_URING) {
		CHECK_EQ(first, 3);
		CHECK_EQ(second, 0);
	} else {
		CHECK_EQ(first, 0);
		CHECK_EQ(second, 3);
	}
	CHECK_EQ(tdrv_rd32(&r.mem, USED_GPA + (first == 0 ? 8 : 16)), 4097); /* the read's length */
	CHECK_EQ(batch_status(&r, 0), VIRTIO_BLK_S_OK);
	CHECK_EQ(batch_status(&r, 1), VIRTIO_BLK_S_OK);
	uint8_t got[4096];
	REQUIRE_OK(vmm_mem_read(&r.mem, DATA_GPA, got, sizeof(got)));
	for (unsigned i = 0; i < sizeof(got); i += 512)
		CHECK_EQ(got[i], (uint8_t)(8 + i / 512 + 8 * 512 + i));
	CHECK_EQ(virtio_blk_inflight(r.blk), 0);
	rig_fini(&r);
}
TEST_BOTH_ENGINES(virtio_blk_completion_order, out_of_order)

/* depth 2: five reads in one kick leave three on the available ring until
 * completions make room; never more than two in flight. */
TEST(virtio_blk_in_flight_limit_io_uring)
{
	struct rig r;
	memset(&r, 0, sizeof(r));
	r.engine = VIRTIO_BLK_ENGINE_IO_URING;
	r.depth = 2;
	rig_init_with(&r, false);
	for (unsigned i = 0; i < 5; i++)
		batch_req(&r, i, i == 4 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, 8 * i, 4096);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(virtio_blk_inflight(r.blk), 2);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 0);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(r.blk, &st);
	CHECK_EQ(st.reads, 2); /* the rest not even taken yet */
	wait_used(&r, 5);
	virtio_blk_get_stats(r.blk, &st);
	CHECK_EQ(st.reads, 4);
	CHECK_EQ(st.writes, 1);
	CHECK_EQ(st.inflight_max, 2);
	for (unsigned i = 0; i < 5; i++)
		CHECK_EQ(batch_status(&r, i), VIRTIO_BLK_S_OK);
	/* and the drain a pause does: two in flight, both completed by it */
	for (unsigned i = 0; i < 2; i++)
		batch_req(&r, i, VIRTIO_BLK_T_IN, 100 + 8 * i, 4096);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(virtio_blk_drain(r.blk), 2);
	CHECK_EQ(virtio_blk_inflight(r.blk), 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 7);
	rig_fini(&r);
}

/* A driver reset with requests in flight waits for them and drops them:
 * nothing reaches the used ring after the reset. */
TEST(virtio_blk_reset_with_requests_in_flight_io_uring)
{
	struct rig r;
	rig_init(&r, false, VIRTIO_BLK_ENGINE_IO_URING);
	for (unsigned i = 0; i < 3; i++)
		batch_req(&r, i, VIRTIO_BLK_T_IN, 8 * i, 4096);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(virtio_blk_inflight(r.blk), 3);
	tdrv_wr(&r.m, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(virtio_blk_inflight(r.blk), 0);
	virtio_blk_poll(r.blk, true);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 0);
	rig_fini(&r);
}

/* cache=none: aligned requests go to the O_DIRECT fd, a request whose
 * buffer is not aligned is served on the buffered fd; both read the right
 * bytes and write through to the file. */
static void direct(enum virtio_blk_engine engine)
{
	struct rig r;
	memset(&r, 0, sizeof(r));
	r.engine = engine;
	r.direct = true;
	rig_init_with(&r, false);
	uint32_t used;
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 8, 4096, true, &used), VIRTIO_BLK_S_OK); /* aligned */
	struct virtio_blk_stats st;
	virtio_blk_get_stats(r.blk, &st);
	CHECK_EQ(st.bounced, 0);
	uint8_t got[4096];
	REQUIRE_OK(vmm_mem_read(&r.mem, DATA_GPA, got, sizeof(got)));
	CHECK_EQ(got[0], (uint8_t)(8 + 8 * 512));
	CHECK_EQ(got[4095], (uint8_t)(15 + 8 * 512 + 4095));
	/* 512 bytes at sector 3 into a buffer at an odd address */
	batch_req(&r, 0, VIRTIO_BLK_T_IN, 3, 512);
	tdrv_desc(&r.q, DESC_GPA, 1, DATA_GPA + 1, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	r.next_used++;
	wait_used(&r, r.next_used);
	CHECK_EQ(batch_status(&r, 0), VIRTIO_BLK_S_OK);
	REQUIRE_OK(vmm_mem_read(&r.mem, DATA_GPA + 1, got, 512));
	CHECK_EQ(got[0], (uint8_t)(3 + 3 * 512));
	CHECK_EQ(got[511], (uint8_t)(3 + 3 * 512 + 511));
	/* and an unaligned write lands in the file */
	uint8_t pat[512];
	memset(pat, 0xa5, sizeof(pat));
	REQUIRE_OK(vmm_mem_write(&r.mem, DATA_GPA + 1, pat, sizeof(pat)));
	batch_req(&r, 0, VIRTIO_BLK_T_OUT, 5, 512);
	tdrv_desc(&r.q, DESC_GPA, 1, DATA_GPA + 1, 512, VRING_DESC_F_NEXT, 2);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	r.next_used++;
	wait_used(&r, r.next_used);
	CHECK_EQ(batch_status(&r, 0), VIRTIO_BLK_S_OK);
	int fd = open(r.path, O_RDONLY);
	REQUIRE(fd >= 0);
	uint8_t file[512];
	REQUIRE_EQ(pread(fd, file, 512, 5 * 512), 512);
	CHECK(memcmp(file, pat, 512) == 0);
	close(fd);
	virtio_blk_get_stats(r.blk, &st);
	CHECK_EQ(st.bounced, 2);
	CHECK_EQ(st.errors, 0);
	rig_fini(&r);
}
TEST_BOTH_ENGINES(virtio_blk_cache_none, direct)

/* io_uring unavailable (a seccomp filter makes io_uring_setup fail with
 * EPERM, as a container's policy would): the default engine falls back to
 * sync and works; engine=io_uring is refused with the reason. In a child,
 * since the filter cannot be removed. */
TEST(virtio_blk_falls_back_to_sync_without_io_uring)
{
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct sock_filter f[] = {
		    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
			_exit(10);
		struct rig r;
		memset(&r, 0, sizeof(r));
		make_image(r.path, sizeof(r.path));
		REQUIRE_OK(vmm_mem_create(&r.mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON,
					  false, NULL));
		char err[256];
		r.engine = VIRTIO_BLK_ENGINE_IO_URING;
		int rc = open_disk(&r, false, NULL, err, sizeof(err));
		if (rc != -EPERM || !strstr(err, "io_uring unavailable"))
			_exit(11);
		unlink(r.path);
		memset(&r, 0, sizeof(r));
		r.engine = VIRTIO_BLK_ENGINE_AUTO;
		rig_init_with(&r, false);
		if (strcmp(virtio_blk_engine_name(r.blk), "sync") ||
		    virtio_blk_event_fd(r.blk) >= 0)
			_exit(12);
		uint32_t used;
		if (req(&r, VIRTIO_BLK_T_IN, 3, 1024, true, &used) != VIRTIO_BLK_S_OK ||
		    used != 1025)
			_exit(13);
		rig_fini(&r);
		test_end_now(); /* status 1 if a check failed */
	}
	int ws;
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECK(WIFEXITED(ws));
	CHECK_EQ(WEXITSTATUS(ws), 0); /* 1: a check; 10-13: the step that failed */
}

/* Without a choice the engine is io_uring where it works (here). */
TEST(virtio_blk_default_engine_is_io_uring)
{
	struct rig r;
	rig_init(&r, false, VIRTIO_BLK_ENGINE_IO_URING);
	rig_fini(&r);
	memset(&r, 0, sizeof(r));
	r.engine = VIRTIO_BLK_ENGINE_AUTO;
	make_image(r.path, sizeof(r.path));
	REQUIRE_OK(
	    vmm_mem_create(&r.mem, MEM_SIZE, MEM_SIZE, MEM_SIZE, EMBER_MEM_ANON, false, NULL));
	char err[256];
	REQUIRE_OK(open_disk(&r, false, NULL, err, sizeof(err)));
	CHECK_STR(virtio_blk_engine_name(r.blk), "io_uring");
	dev_destroy(virtio_mmio_dev(r.t));
	virtio_blk_destroy(r.blk);
	vmm_mem_destroy(&r.mem);
	unlink(r.path);
}

/* The image shrinks under the disk (another process truncates it): a read
 * that ends past the new end gets a short transfer, is continued, meets the
 * end and fails with IOERR; one wholly before it still works. */
static void image_shrinks(enum virtio_blk_engine engine)
{
	struct rig r;
	rig_init(&r, false, engine);
	REQUIRE_OK(truncate(r.path, 8 * 512 + 256));
	uint32_t used;
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 7, 2048, true, &used), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(used, 1);
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 0, 4096, true, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 4097);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(r.blk, &st);
	CHECK_EQ(st.errors, 1);
	CHECK_EQ(virtio_blk_inflight(r.blk), 0);
	rig_fini(&r);
}
TEST_BOTH_ENGINES(virtio_blk_image_shrinks, image_shrinks)

/* ------------------------------------------------------------ saved state */

/* Replaces the rig's device by a fresh one on the same image and guest
 * memory, as a restored VM builds it from the same configuration. */
static void rig_fresh_device(struct rig *r)
{
	char err[256];
	bus_destroy(r->bus);
	dev_destroy(virtio_mmio_dev(r->t));
	virtio_blk_destroy(r->blk);
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &r->bus));
	REQUIRE_OK(open_disk(r, false, "ember-disk-0", err, sizeof(err)));
	REQUIRE_OK(dev_register(r->bus, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(r->t)));
	r->m.bus = r->bus;
	CHECK_EQ(tdrv_rd(&r->m, VIRTIO_MMIO_STATUS), 0);
}

/* Offsets in the saved "virtio-mmio" section (see virtio_mmio_save). */
#define ST_FEATURES  28
#define ST_Q0_NUM    64
#define ST_Q0_DESC   66
#define ST_Q0_LAST   91
#define ST_INTSTATUS 56

static void state_round_trip(enum virtio_blk_engine engine)
{
	struct rig r;
	rig_init(&r, false, engine);
	uint32_t used;
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 1, 512, true, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 2, 512, true, &used), VIRTIO_BLK_S_OK);
	size_t len;
	uint8_t *buf = state_take(state_dev_save, virtio_mmio_dev(r.t), &len);

	rig_fresh_device(&r);
	char detail[VMM_STATE_DETAIL];
	int rc = state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, detail, sizeof(detail));
	if (rc)
		TEST_FAIL("load: %d: %s", rc, detail);
	/* the driver's view: running, negotiated, queue 0 ready where it was */
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_STATUS), TDRV_DRIVER_ALL);
	CHECK_EQ(virtio_mmio_features(r.t), 1ull << VIRTIO_F_VERSION_1);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_QUEUE_READY), 1);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_SEL, 1);
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_QUEUE_READY), 0);
	/* a request posted after the load completes in the next used slot */
	CHECK_EQ(req(&r, VIRTIO_BLK_T_IN, 3, 512, true, &used), VIRTIO_BLK_S_OK);
	CHECK_EQ(used, 513);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 3);
	uint8_t data[4];
	vmm_mem_read(&r.mem, DATA_GPA, data, sizeof(data));
	CHECK_EQ(data[0], (uint8_t)(3 + 3 * 512)); /* the image's pattern of sector 3 */

	/* every malformed variant refused by a fresh device, which stays fresh */
	rig_fresh_device(&r);
	struct dev *d = virtio_mmio_dev(r.t);
	state_check_refusals(state_dev_save, state_dev_load, d, buf, len);
	CHECK_EQ(buf[ST_Q0_NUM], QSZ);
	state_check_patched(state_dev_load, d, buf, len, ST_Q0_NUM, 3, "size 3");
	state_check_patched(state_dev_load, d, buf, len, ST_Q0_NUM + 1, 1, "size 272");
	state_check_patched(state_dev_load, d, buf, len, ST_Q0_LAST, (uint8_t)(buf[ST_Q0_LAST] + 1),
			    "in flight");
	state_check_patched(state_dev_load, d, buf, len, ST_Q0_DESC + 3, 0x7f,
			    "outside guest memory");
	state_check_patched(state_dev_load, d, buf, len, ST_Q0_DESC, 0x01, "misaligned");
	state_check_patched(state_dev_load, d, buf, len, ST_FEATURES + 7, 0x80, "not offered");
	state_check_patched(state_dev_load, d, buf, len, ST_INTSTATUS, 0x04, "interrupt status");
	state_check_patched(state_dev_load, d, buf, len, 20, VIRTIO_ID_NET, "this is virtio-blk");
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_STATUS), 0);

	/* the image changed size since the save */
	REQUIRE_OK(truncate(r.path, IMG_SIZE + 4096));
	rig_fresh_device(&r);
	CHECK_ERR(
	    state_load(state_dev_load, virtio_mmio_dev(r.t), buf, len, detail, sizeof(detail)),
	    -EINVAL);
	CHECK(strstr(detail, "virtio-mmio/virtio-blk: the disk image changed size") != NULL);
	CHECK(strstr(detail, "1048676 bytes when saved, 1052772 now") != NULL);
	CHECK_EQ(tdrv_rd(&r.m, VIRTIO_MMIO_STATUS), 0);
	free(buf);
	rig_fini(&r);
}
TEST_BOTH_ENGINES(virtio_blk_state_round_trip, state_round_trip)

/* A request the io_uring engine has not completed yet (completions are
 * reaped only by virtio_blk_poll): the device is not quiesced, a save is
 * -EBUSY; once drained (what a pause does) it saves. */
TEST(virtio_blk_state_save_refused_with_requests_in_flight_io_uring)
{
	struct rig r;
	rig_init(&r, false, VIRTIO_BLK_ENGINE_IO_URING);
	uint8_t hdr[16] = {0};
	uint32_t type = VIRTIO_BLK_T_IN;
	memcpy(hdr, &type, 4);
	REQUIRE_OK(vmm_mem_write(&r.mem, HDR_GPA, hdr, 16));
	tdrv_desc(&r.q, DESC_GPA, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	tdrv_desc(&r.q, DESC_GPA, 1, DATA_GPA, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	tdrv_desc(&r.q, DESC_GPA, 2, STS_GPA, 1, VRING_DESC_F_WRITE, 0);
	tdrv_publish(&r.q, 0);
	tdrv_wr(&r.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK_EQ(virtio_blk_inflight(r.blk), 1);
	struct vmm_state_w w;
	vmm_sw_init(&w);
	CHECK_ERR(dev_save(virtio_mmio_dev(r.t), &w), -EBUSY);
	vmm_sw_free(&w);
	virtio_blk_drain(r.blk);
	CHECK_EQ(virtio_blk_inflight(r.blk), 0);
	CHECK_EQ(tdrv_rd16(&r.mem, USED_GPA + 2), 1);
	size_t len;
	free(state_take(state_dev_save, virtio_mmio_dev(r.t), &len));
	rig_fini(&r);
}
