/* tests/e2e/snapshot.c - snapshots of a running Linux guest on real KVM: restored it counts on, two clones at once (on disks of their own too), an incremental over its base, corrupt ones refused, restore time against a cold boot. */
#include "../lib/test.h"

#include <ember/ctl.h>
#include <ember/vmm.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_vm.h"

/*
 * The guest is the e2e one (tests/e2e/e2e_vm.h): init.sh's "count" action
 * prints "E2E count I" for I = 0, 1, ... from a counter in the guest's
 * shell, so the count a restored guest prints says where it continued.
 */

static char *tmp_dir(const char *what)
{
	static char dirs[8][256];
	static unsigned n;
	char *d = dirs[n++ % 8];
	const char *t = getenv("TMPDIR");
	snprintf(d, 256, "%s/ember-e2e-%s-XXXXXX", t && *t ? t : "/tmp", what);
	if (!mkdtemp(d))
		TEST_FAIL("mkdtemp: %s", strerror(errno));
	return d;
}

static void rm_rf(const char *dir)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		test_log("could not remove %s", dir);
}

static struct ember_vm *restore_flags(const char *dir, int out_fd, unsigned flags,
				      struct ember_error *err)
{
	struct ember_restore_opts o = {.flags = flags, .console_in = -1, .console_out = out_fd};
	struct ember_vm *vm = NULL;
	if (ember_vm_restore(dir, &o, &vm, err) < 0)
		return NULL;
	return vm;
}

static struct ember_vm *restore(const char *dir, int out_fd, struct ember_error *err)
{
	return restore_flags(dir, out_fd, 0, err);
}

/* The number of the first whole line "PREFIX N" of text, -1 if none. */
static long first_num(const char *text, const char *prefix)
{
	size_t k = strlen(prefix);
	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		if (!eol)
			break;
		if (!strncmp(p, prefix, k))
			return strtol(p + k, NULL, 10);
		p = eol + 1;
	}
	return -1;
}

/* The number of the last whole line "PREFIX N" of text, -1 if none. */
static long last_num(const char *text, const char *prefix)
{
	size_t k = strlen(prefix);
	long last = -1;
	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		if (!eol)
			break;
		if (!strncmp(p, prefix, k))
			last = strtol(p + k, NULL, 10);
		p = eol + 1;
	}
	return last;
}

/* The first "PREFIX N" a restored guest printed, with a line the snapshot
 * cut joined: the original's output after its last newline, then the
 * restored one's. -1 if none. */
static long joined_first_num(const char *orig, const char *restored, const char *prefix)
{
	const char *nl = orig ? strrchr(orig, '\n') : NULL;
	const char *tail = nl ? nl + 1 : "";
	size_t n = strlen(tail) + strlen(restored ? restored : "") + 1;
	char *j = malloc(n);
	if (!j)
		return -1;
	snprintf(j, n, "%s%s", tail, restored ? restored : "");
	long f = first_num(j, prefix);
	free(j);
	return f;
}

static long first_count(const char *text)
{
	return first_num(text, "E2E count ");
}
static long last_count(const char *text)
{
	return last_num(text, "E2E count ");
}
static long joined_first_count(const char *orig, const char *restored)
{
	return joined_first_num(orig, restored, "E2E count ");
}

/* The count lines from the first whole one on go up by one each. */
static bool counts_on(const char *text, long from, long *last)
{
	long expect = from;
	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		if (!eol)
			break;
		if (!strncmp(p, "E2E count ", 10)) {
			long v = strtol(p + 10, NULL, 10);
			if (v != expect) {
				test_log("count broken: %ld where %ld was due", v, expect);
				return false;
			}
			expect++;
		}
		p = eol + 1;
	}
	*last = expect - 1;
	return true;
}

/* Boots the guest with init action `action` ("count" or "clone") and lets
 * its counter reach `upto`. */
static struct ember_vm *action_guest(const char *action, struct capture *c, int p[2], unsigned cpus,
				     long upto)
{
	capture_pipe(c, p, false);
	struct ember_vm *vm = guest_vm(action, cpus, NULL, p[1]);
	REQUIRE_OK(ember_vm_start(vm));
	char want[64];
	snprintf(want, sizeof(want), "E2E count %ld\n", upto);
	if (!read_until(c, want, 400000))
		TEST_FAIL("the guest's counter did not reach %ld (%zu bytes of output)", upto,
			  c->len);
	return vm;
}

static struct ember_vm *counting_guest(struct capture *c, int p[2], unsigned cpus, long upto)
{
	return action_guest("count", c, p, cpus, upto);
}

/* The value of the first "E2E KEY VALUE" line of text into out ("" if none). */
static void e2e_value(const char *text, const char *key, char *out, size_t cap)
{
	char pre[64];
	snprintf(pre, sizeof(pre), "E2E %s ", key);
	out[0] = 0;
	const char *p = text ? strstr(text, pre) : NULL;
	if (!p)
		return;
	p += strlen(pre);
	size_t n = strcspn(p, "\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

static void take(struct ember_vm *vm, const char *dir, unsigned flags, const char *base)
{
	struct ember_error err = {0};
	struct ember_snapshot_opts o = {.flags = flags, .base_dir = base};
	uint64_t t0 = now_ms();
	if (ember_vm_snapshot(vm, dir, &o, &err) < 0)
		TEST_FAIL("snapshot %s: %s", dir, err.msg);
	TEST_LOG("snapshot %s taken in %" PRIu64 " ms", dir, now_ms() - t0);
}

static uint64_t disk_bytes(const char *dir, const char *part)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, part);
	struct stat st;
	if (stat(p, &st) < 0)
		TEST_FAIL("stat %s: %s", p, strerror(errno));
	return (uint64_t)st.st_blocks * 512;
}

/* ------------------------------------------------------------ restore */

/* Whether this process maps the file path (a line of /proc/self/maps). */
static bool maps_file(const char *path)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4600];
	bool found = false;
	size_t n = strlen(path);
	while (f && fgets(line, sizeof(line), f)) {
		size_t k = strcspn(line, "\n");
		if (k >= n && !strncmp(line + k - n, path, n) && line[k - n - 1] == ' ')
			found = true;
	}
	if (f)
		fclose(f);
	return found;
}

/* Starts a restored guest, reads its console until it counted 10 past
 * printed; its first count (printed + 1, or + 2 after a line the snapshot
 * cut) returned, the last in *last. */
static long counts_on_after(struct ember_vm *vm, struct capture *r, long printed, const char *what,
			    long *last)
{
	REQUIRE_OK(ember_vm_start(vm));
	char want[64];
	snprintf(want, sizeof(want), "E2E count %ld\n", printed + 10);
	if (!read_until(r, want, 300000))
		TEST_FAIL("the %s guest did not count to %ld (output: '%.200s')", what,
			  printed + 10, r->buf ? r->buf : "");
	long first = first_count(r->buf);
	CHECK(first == printed + 1 || first == printed + 2);
	CHECK(counts_on(r->buf, first, last));
	return first;
}

/* Stops and destroys a restored VM; its console capture freed, pipe closed. */
static void end_restored(struct ember_vm *vm, struct capture *r, int q[2])
{
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_stop(vm));
	REQUIRE_OK(ember_vm_wait(vm, 0, &res));
	ember_vm_destroy(vm);
	free(r->buf);
	close(q[0]);
	close(q[1]);
}

/* Snapshotted while it counts, the guest restored in a new VM (the first
 * one gone) goes on from the count it had reached, not from 0, and keeps
 * counting. */
KVM_TEST_T(snapshot_restored_guest_continues_its_count, 900)
{
	struct capture c;
	int p[2];
	struct ember_vm *vm = counting_guest(&c, p, 2, 40);
	char *d = tmp_dir("snap");
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/s", d);
	take(vm, dir, 0, NULL);
	CHECK_EQ(state_of(vm), EMBER_VM_PAUSED);
	usleep(300000);
	slurp(&c);
	long printed = last_count(c.buf);
	REQUIRE(printed >= 40);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);

	struct capture r;
	int q[2];
	capture_pipe(&r, q, false);
	struct ember_error err = {0};
	uint64_t t0 = now_ms();
	struct ember_vm *vm2 = restore(dir, q[1], &err);
	if (!vm2)
		TEST_FAIL("restore: %s", err.msg);
	uint64_t t1 = now_ms();
	CHECK_EQ(state_of(vm2), EMBER_VM_CREATED);
	char memfile[320];
	snprintf(memfile, sizeof(memfile), "%s/memory", dir);
	CHECK(maps_file(memfile)); /* guest memory mapped from the file */
	REQUIRE_OK(ember_vm_start(vm2));
	char want[64];
	snprintf(want, sizeof(want), "E2E count %ld\n", printed + 30);
	if (!read_until(&r, want, 300000))
		TEST_FAIL("the restored guest did not count to %ld (output: '%.200s')",
			  printed + 30, r.buf ? r.buf : "");
	/* it continues with the next count (a line the snapshot cut ends in
	 * the restored output) */
	long first = joined_first_count(c.buf, r.buf), last = 0;
	free(c.buf);
	if (first != printed + 1)
		TEST_FAIL("restored, the guest printed %ld first; it had printed %ld", first,
			  printed);
	CHECK(counts_on(r.buf, first_count(r.buf), &last));
	CHECK(last >= printed + 30);
	TEST_LOG("snapshot at count %ld; restored in %" PRIu64 " ms, went on from %ld to %ld",
		 printed, t1 - t0, first, last);
	end_restored(vm2, &r, q);

	/* the same snapshot restored through the userfaultfd page server
	 * (EMBER_RESTORE_UFFD) continues the same way, its pages served */
	capture_pipe(&r, q, false);
	t0 = now_ms();
	vm2 = restore_flags(dir, q[1], EMBER_RESTORE_UFFD, &err);
	if (!vm2)
		TEST_FAIL("restore through userfaultfd: %s", err.msg);
	t1 = now_ms();
	long ufirst = counts_on_after(vm2, &r, printed, "uffd-restored", &last);
	struct ember_swap_status st;
	REQUIRE_OK(ember_vm_swap(vm2, EMBER_SWAP_STATUS, NULL, &st, &err));
	TEST_LOG("uffd restore in %" PRIu64 " ms, went on from %ld to %ld; %" PRIu64
		 " faults served, %" PRIu64 " KiB copied, %" PRIu64 " zero pages",
		 t1 - t0, ufirst, last, st.faults, st.bytes_in >> 10, st.zero_pages);
	CHECK(st.faults > 0 && st.bytes_in > 0);
	CHECK_EQ(st.errors, 0);
	end_restored(vm2, &r, q);

	/* and read whole into fresh memory (EMBER_RESTORE_COPY): the file is
	 * not mapped and can go, the guest goes on all the same; the page
	 * server and a copy at once are refused, no VM made */
	vm2 = restore_flags(dir, -1, EMBER_RESTORE_UFFD | EMBER_RESTORE_COPY, &err);
	CHECK(vm2 == NULL);
	CHECK(strstr(err.msg, "not both") != NULL);
	capture_pipe(&r, q, false);
	t0 = now_ms();
	vm2 = restore_flags(dir, q[1], EMBER_RESTORE_COPY, &err);
	if (!vm2)
		TEST_FAIL("restore with a copy of memory: %s", err.msg);
	t1 = now_ms();
	CHECK(!maps_file(memfile));
	CHECK_OK(unlink(memfile));
	long cfirst = counts_on_after(vm2, &r, printed, "copy-restored", &last);
	TEST_LOG("copy restore in %" PRIu64 " ms, went on from %ld to %ld", t1 - t0, cfirst, last);
	end_restored(vm2, &r, q);
	rm_rf(d);
}

/* One snapshot restored twice at once: both clones run on from it, each
 * with a VM Generation ID of its own (and not the original's); in each the
 * kernel logs the VM fork (its vmgenid driver was notified and reseeded
 * the RNG) while the boot id stays the original's; whether it marked its
 * TSC unstable is logged (until 2026-12-06 every restore did: the clock and
 * the TSCs came back up to tens of ms apart). */
KVM_TEST_T(snapshot_two_clones_run_with_their_own_generation_ids, 900)
{
	struct capture c;
	int p[2];
	struct ember_vm *vm = action_guest("clone", &c, p, 1, 20);
	char boot_id[64];
	e2e_value(c.buf, "boot_id", boot_id, sizeof(boot_id));
	REQUIRE(strlen(boot_id) == 36);
	CHECK(strstr(c.buf, "E2E vmfork") == NULL); /* not at a cold boot */
	char *d = tmp_dir("clones");
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/s", d);
	take(vm, dir, EMBER_SNAPSHOT_RESUME, NULL);
	CHECK_EQ(state_of(vm), EMBER_VM_RUNNING); /* resumed after saving */
	uint8_t g0[16];
	REQUIRE_OK(ember_vm_generation_id(vm, g0));
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
	free(c.buf);

	struct capture r[2];
	int q[2][2];
	struct ember_vm *cl[2];
	uint8_t g[2][16];
	struct ember_error err = {0};
	for (int i = 0; i < 2; i++) {
		capture_pipe(&r[i], q[i], false);
		cl[i] = restore(dir, q[i][1], &err);
		if (!cl[i])
			TEST_FAIL("clone %d: %s", i, err.msg);
		REQUIRE_OK(ember_vm_generation_id(cl[i], g[i]));
	}
	CHECK(memcmp(g[0], g[1], 16) != 0);
	CHECK(memcmp(g[0], g0, 16) != 0 && memcmp(g[1], g0, 16) != 0);
	for (int i = 0; i < 2; i++)
		REQUIRE_OK(ember_vm_start(cl[i]));
	for (int i = 0; i < 2; i++) {
		if (!read_until(&r[i], "E2E vmfork ", 300000))
			TEST_FAIL("clone %d: the kernel logged no VM fork ('%.300s')", i,
				  r[i].buf ? r[i].buf : "");
		/* the vmfork line may come before the first whole count line */
		uint64_t end = now_ms() + 120000;
		while (first_count(r[i].buf) < 0 && now_ms() < end) {
			usleep(10000);
			slurp(&r[i]);
		}
		long first = first_count(r[i].buf);
		if (first < 0)
			TEST_FAIL("clone %d printed no count ('%.300s')", i, r[i].buf);
		char want[64];
		snprintf(want, sizeof(want), "E2E count %ld\n", first + 20);
		if (!read_until(&r[i], want, 300000))
			TEST_FAIL("clone %d did not count on to %ld", i, first + 20);
		char id[64];
		e2e_value(r[i].buf, "vmfork", id, sizeof(id));
		CHECK_STR(id, boot_id); /* the same boot, forked */
		/* the clock and the TSC came back together: the kernel's
		 * clocksource watchdog found them within its 0.5 ms. Logged,
		 * not asserted: every restore failed it before 2026-12-06; since,
		 * one clone of about a dozen did, under CI's load (two sandboxes
		 * on two CPUs), cause not found; the KVM test
		 * hv_snap_clock_and_tscs_agree_after_a_slow_save_and_restore
		 * checks the restore's own skew */
		if (!read_until(&r[i], "E2E tsc unstable ", 120000))
			TEST_FAIL("clone %d: no clocksource report ('%.300s')", i, r[i].buf);
		uint64_t end2 = now_ms() + 10000;
		while (!strchr(strstr(r[i].buf, "E2E tsc unstable "), '\n') && now_ms() < end2) {
			usleep(10000);
			slurp(&r[i]);
		}
		char un[16];
		e2e_value(r[i].buf, "tsc unstable", un, sizeof(un));
		TEST_LOG("clone %d: kernel lines marking the TSC unstable: %s", i, un);
		long last;
		CHECK(first >= 20);
		CHECK(counts_on(r[i].buf, first, &last));
		TEST_LOG("clone %d went on from %ld; the kernel logged the VM fork", i, first);
	}
	for (int i = 0; i < 2; i++) {
		REQUIRE_OK(ember_vm_stop(cl[i]));
		ember_vm_destroy(cl[i]);
	}
	rm_rf(d);
}

/* Snapshotted while it writes and flushes its disk, the guest restored
 * writes on: its next write is the next in its sequence and none fails
 * (the virtqueue went on where it stopped; no request was in flight). */
/* A guest writing its disk (d/disk.img, 4 MiB) snapshotted into d/s after
 * its fifth write and left paused (its image locked); *done: its last write. */
static struct ember_vm *disk_writer_snapshotted(const char *d, char img[300], char dir[300],
						struct capture *c, int p[2], long *done)
{
	snprintf(img, 300, "%s/disk.img", d);
	snprintf(dir, 300, "%s/s", d);
	int fd = open(img, O_RDWR | O_CREAT, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, 4 << 20) == 0);
	close(fd);
	capture_pipe(c, p, false);
	struct ember_vm *vm = guest_vm_disk("diskio", 1, NULL, p[1], img);
	REQUIRE_OK(ember_vm_start(vm));
	if (!read_until(c, "E2E disk 5\n", 400000))
		TEST_FAIL("the guest's disk writes did not start (%zu bytes of output)", c->len);
	take(vm, dir, 0, NULL);
	usleep(300000);
	slurp(c);
	*done = last_num(c->buf, "E2E disk ");
	REQUIRE(*done >= 5);
	return vm;
}

KVM_TEST_T(snapshot_restored_guest_writes_on_to_its_disk, 900)
{
	char *d = tmp_dir("disk");
	char img[300], dir[300];
	int p[2];
	struct capture c;
	long done;
	struct ember_vm *vm = disk_writer_snapshotted(d, img, dir, &c, p, &done);
	ember_vm_destroy(vm); /* frees the image's lock */
	close(p[0]);
	close(p[1]);

	struct capture r;
	int q[2];
	capture_pipe(&r, q, false);
	struct ember_error err = {0};
	struct ember_vm *vm2 = restore(dir, q[1], &err);
	if (!vm2)
		TEST_FAIL("restore: %s", err.msg);
	REQUIRE_OK(ember_vm_start(vm2));
	char want[64];
	snprintf(want, sizeof(want), "E2E disk %ld\n", done + 10);
	if (!read_until(&r, want, 300000))
		TEST_FAIL("the restored guest did not write on to %ld ('%.300s')", done + 10,
			  r.buf ? r.buf : "");
	CHECK(strstr(r.buf, "E2E-FAIL") == NULL);
	/* the next write in the sequence (a line the snapshot cut joined) */
	long n = joined_first_num(c.buf, r.buf, "E2E disk ");
	free(c.buf);
	if (n != done + 1)
		TEST_FAIL("restored, the guest wrote %ld first; it had written %ld", n, done);
	TEST_LOG("snapshot after write %ld; restored, the guest wrote %ld..%ld", done, n,
		 last_num(r.buf, "E2E disk "));
	REQUIRE_OK(ember_vm_stop(vm2));
	ember_vm_destroy(vm2);
	rm_rf(d);
}

/* Copies file from to to (a clone's disk: the image as the snapshot left it). */
static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	REQUIRE(in >= 0 && out >= 0);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		REQUIRE(write(out, buf, (size_t)n) == n);
	REQUIRE(n == 0);
	close(in);
	REQUIRE(close(out) == 0);
}

/* The text of the disk image's 512-byte sector s ("" past its end). */
static void read_sector(const char *img, long s, char out[513])
{
	int fd = open(img, O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	ssize_t n = pread(fd, out, 512, (off_t)s * 512);
	close(fd);
	out[n > 0 ? n : 0] = 0;
	out[strcspn(out, "\n")] = 0;
}

/* Clones of a guest that writes its disk run beside each other and beside
 * the original, each on its own copy of the image (--restore-disk): each
 * writes on from where the snapshot stopped into its copy, the original's
 * image is not written; without its own copy a clone is refused (the image
 * is the running original's) and nothing is left of it. */
KVM_TEST_T(snapshot_clones_write_disks_of_their_own, 900)
{
	char *d = tmp_dir("diskclones");
	char img[300], dir[300], cimg[2][320];
	int p[2];
	struct capture c;
	long done; /* the original stays paused, its image locked */
	struct ember_vm *vm = disk_writer_snapshotted(d, img, dir, &c, p, &done);
	for (int i = 0; i < 2; i++) {
		snprintf(cimg[i], sizeof(cimg[i]), "%s/clone%d.img", d, i);
		copy_file(img, cimg[i]);
	}

	/* the saved image is the original's: a clone without its own is refused */
	struct ember_error err = {0};
	struct capture r[2];
	int q[2][2];
	capture_pipe(&r[0], q[0], false);
	struct ember_vm *none = restore(dir, q[0][1], &err);
	CHECK(none == NULL);
	CHECK_EQ(err.code, -EBUSY);
	CHECK(strstr(err.msg, "a clone needs a disk image copy, tap or socket of its own "
			      "(--restore-disk") != NULL);
	TEST_LOG("a clone on the original's image: %s", err.msg);
	/* a change to what the guest saw is refused before anything is built */
	struct ember_restore_device bad = {.kind = "disk", .index = 0, .spec = "serial=x"};
	struct ember_restore_opts bo = {
	    .console_in = -1, .console_out = q[0][1], .devices = &bad, .ndevices = 1};
	CHECK_EQ(ember_vm_restore(dir, &bo, &none, &err), -EINVAL);
	CHECK(none == NULL);
	close(q[0][0]);
	close(q[0][1]);

	struct ember_vm *cl[2];
	for (int i = 0; i < 2; i++) {
		capture_pipe(&r[i], q[i], false);
		struct ember_restore_device own = {.kind = "disk", .index = 0, .spec = NULL};
		char spec[700];
		snprintf(spec, sizeof(spec), "path=%s", cimg[i]);
		own.spec = spec;
		struct ember_restore_opts o = {
		    .console_in = -1, .console_out = q[i][1], .devices = &own, .ndevices = 1};
		if (ember_vm_restore(dir, &o, &cl[i], &err) < 0)
			TEST_FAIL("clone %d on %s: %s", i, cimg[i], err.msg);
	}
	for (int i = 0; i < 2; i++)
		REQUIRE_OK(ember_vm_start(cl[i]));
	for (int i = 0; i < 2; i++) {
		char want[64];
		snprintf(want, sizeof(want), "E2E disk %ld\n", done + 10);
		if (!read_until(&r[i], want, 300000))
			TEST_FAIL("clone %d did not write on to %ld ('%.300s')", i, done + 10,
				  r[i].buf ? r[i].buf : "");
		CHECK(strstr(r[i].buf, "E2E-FAIL") == NULL);
		long n = joined_first_num(c.buf, r[i].buf, "E2E disk ");
		CHECK_EQ(n, done + 1);
	}
	for (int i = 0; i < 2; i++) {
		REQUIRE_OK(ember_vm_stop(cl[i]));
		ember_vm_destroy(cl[i]);
	}
	/* write done + 5 went into each clone's copy, not the original's image */
	long k = done + 5;
	char want[64], got[513];
	snprintf(want, sizeof(want), "E2E-ITER %ld", k);
	for (int i = 0; i < 2; i++) {
		read_sector(cimg[i], k % 64, got);
		CHECK_STR(got, want);
	}
	read_sector(img, k % 64, got);
	CHECK(strcmp(got, want) != 0);
	TEST_LOG("snapshot after write %ld; two clones wrote on to %ld, each into its own "
		 "image; the original's sector %ld: '%s'",
		 done, done + 10, k % 64, got);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
	free(c.buf);
	for (int i = 0; i < 2; i++) {
		close(q[i][0]);
		close(q[i][1]);
		free(r[i].buf);
	}
	rm_rf(d);
}

/* An e2e artifact next to the initrd (E2E_INITRD's folder), or env's value. */
static const char *e2e_artifact(const char *env, const char *name, char *buf, size_t cap)
{
	const char *v = getenv(env);
	if (v && *v)
		return v;
	const char *i = env_or("E2E_INITRD", "o/e2e/initramfs.cpio");
	const char *sl = strrchr(i, '/');
	snprintf(buf, cap, "%.*s%s", sl ? (int)(sl - i + 1) : 0, i, name);
	return buf;
}

/* Runs argv in a child (in directory cwd, or this one if NULL), its output
 * into log (an absolute path when cwd is given). */
static pid_t spawn_in(const char *cwd, char *const argv[], const char *log)
{
	pid_t pid = fork();
	if (pid < 0)
		TEST_FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int null = open("/dev/null", O_RDONLY);
		if (fd < 0 || null < 0 || (cwd && chdir(cwd) < 0))
			_exit(126);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static pid_t spawn(char *const argv[], const char *log)
{
	return spawn_in(NULL, argv, log);
}

/* The child's exit status, -1 if it did not end within ms (then killed). */
static int reap(pid_t pid, int ms)
{
	int st = 0;
	for (int t = 0; t < ms; t += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static void show_file(const char *what, const char *path)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "sed 's/^/     %s: /' '%s' 2>/dev/null | tail -n 5", what, path);
	if (system(cmd) != 0)
		test_log("cannot show %s", path);
}

/* The guest, on a NIC (a tap in a network namespace of this test's own,
 * 10.0.4.1/24), a vsock (socket in a temporary folder, the host's echo
 * server on its port 6000) and an ext4 disk, is snapshotted while it writes
 * files to the disk with a vsock connection open; the restored VM (the
 * first one gone) is given a host side of its own, as a clone would be
 * (ember_restore_opts.devices): a new tap, embsnap1 (embsnap0 deleted), a
 * copy of the disk image and a vsock socket at a new path, with an echo
 * server of its own (the old path is left unbound). After the
 * restore: a console line typed is echoed, the files
 * read back, the unmounted disk passes e2fsck, the guest pings the tap, the
 * connection open at the snapshot was reset (transport reset event), a new
 * guest-to-host connection and a host-to-guest one carry data both ways. */
KVM_TEST_T(snapshot_restored_guest_has_net_vsock_console_and_a_clean_disk, 600)
{
	if (unshare(CLONE_NEWNET) < 0)
		TEST_FAIL("unshare(CLONE_NEWNET): %s", strerror(errno));
	if (system("{ [ -c /dev/net/tun ] || modprobe tun; } && ip link set lo up && "
		   "ip tuntap add dev embsnap0 mode tap && ip addr add 10.0.4.1/24 dev embsnap0 && "
		   "ip link set embsnap0 up") != 0)
		TEST_FAIL("cannot make the tap embsnap0 in a new network namespace");
	char *d = tmp_dir("net");
	char img[300], dir[300], sock[300], echo_sock[320], echo_log[300], conn_log[300], cmd[700];
	char sock2[300], echo2_sock[320], echo2_log[300];
	snprintf(img, sizeof(img), "%s/fs.img", d);
	snprintf(dir, sizeof(dir), "%s/s", d);
	snprintf(sock, sizeof(sock), "%s/v.sock", d);
	snprintf(echo_sock, sizeof(echo_sock), "%s_6000", sock);
	snprintf(echo_log, sizeof(echo_log), "%s/echo.log", d);
	snprintf(sock2, sizeof(sock2), "%s/v2.sock", d);
	snprintf(echo2_sock, sizeof(echo2_sock), "%s_6000", sock2);
	snprintf(echo2_log, sizeof(echo2_log), "%s/echo2.log", d);
	snprintf(conn_log, sizeof(conn_log), "%s/connect.log", d);
	snprintf(cmd, sizeof(cmd), "truncate -s 16M '%s' && mke2fs -q -t ext4 -F '%s'", img, img);
	REQUIRE(system(cmd) == 0);
	char tool_buf[300], initrd_buf[300];
	const char *tool = e2e_artifact("E2E_VSOCK_TOOL", "vsock-tool", tool_buf, sizeof(tool_buf));
	const char *initrd =
	    e2e_artifact("E2E_INITRD_FS", "initramfs-fs.cpio", initrd_buf, sizeof(initrd_buf));
	/* the host's echo server of the first VM: the connection held over the
	 * snapshot (it ends when the first VM goes) */
	char *echo_argv[] = {(char *)tool, "host-echo", echo_sock, "1", NULL};
	pid_t echo_pid = spawn(echo_argv, echo_log);
	for (int t = 0; t < 500 && access(echo_sock, F_OK) < 0; t++)
		usleep(10000);
	REQUIRE(access(echo_sock, F_OK) == 0);
	char vsock[400], disk[320];
	snprintf(vsock, sizeof(vsock), "cid=3,socket=%s", sock);
	snprintf(disk, sizeof(disk), "path=%s", img);
	const char *sets[] = {"initrd", initrd, "disk",
			      disk,	"net",	"tap=embsnap0,mac=52:54:00:e2:e0:04",
			      "vsock",	vsock,	NULL};
	struct capture c;
	int p[2];
	capture_pipe(&c, p, false);
	uint64_t t0 = now_ms();
	struct ember_vm *vm = guest_vm_with("snapnet", 1, NULL, p[1], sets);
	REQUIRE_OK(ember_vm_start(vm));
	if (!read_until(&c, "E2E fs 3\n", 400000))
		TEST_FAIL("the guest did not write its files ('%.600s')", c.buf ? c.buf : "");
	uint64_t t1 = now_ms();
	take(vm, dir, 0, NULL);
	usleep(300000);
	slurp(&c);
	const char *f = strstr(c.buf, "E2E-FAIL");
	if (f)
		TEST_FAIL("before the snapshot: %.80s", f);
	long done = last_num(c.buf, "E2E fs ");
	ember_vm_destroy(vm); /* the tap, the vsock socket, the disk's lock go */
	close(p[0]);
	close(p[1]);
	/* the new tap as the old was, its MAC too (the guest's ARP cache holds it) */
	if (system("m=$(ip -o link show embsnap0 | sed -n 's|.*link/ether "
		   "\\([0-9a-f:]*\\).*|\\1|p') && "
		   "[ -n \"$m\" ] && ip link del embsnap0 && "
		   "ip tuntap add dev embsnap1 mode tap && ip link set embsnap1 address \"$m\" && "
		   "ip addr add 10.0.4.1/24 dev embsnap1 && ip link set embsnap1 up") != 0)
		TEST_FAIL("cannot replace the tap embsnap0 by embsnap1");
	char img2[320], disk2[340];
	snprintf(img2, sizeof(img2), "%s/fs-restored.img", d);
	copy_file(img, img2);
	snprintf(disk2, sizeof(disk2), "path=%s", img2);
	/* the restored guest's echo server, on its own socket's port 6000 */
	char *echo2_argv[] = {(char *)tool, "host-echo", echo2_sock, "1", NULL};
	pid_t echo2_pid = spawn(echo2_argv, echo2_log);
	for (int t = 0; t < 500 && access(echo2_sock, F_OK) < 0; t++)
		usleep(10000);
	REQUIRE(access(echo2_sock, F_OK) == 0);
	char vsock2[320];
	snprintf(vsock2, sizeof(vsock2), "socket=%s", sock2);
	const struct ember_restore_device own[] = {
	    {.kind = "disk", .index = 0, .spec = disk2},
	    {.kind = "net", .index = 0, .spec = "tap=embsnap1"},
	    {.kind = "vsock", .index = 0, .spec = vsock2}};

	struct capture r;
	int q[2], in[2];
	capture_pipe(&r, q, false);
	REQUIRE(pipe2(in, O_CLOEXEC) == 0);
	struct ember_restore_opts o = {
	    .console_in = in[0], .console_out = q[1], .devices = own, .ndevices = 3};
	struct ember_error err = {0};
	uint64_t t2 = now_ms();
	struct ember_vm *vm2 = NULL;
	if (ember_vm_restore(dir, &o, &vm2, &err) < 0)
		TEST_FAIL("restore: %s", err.msg);
	REQUIRE_OK(ember_vm_start(vm2));
	/* the clone listens at its own path, not at the saved one */
	CHECK(access(sock2, F_OK) == 0);
	CHECK(access(sock, F_OK) < 0);
	char *conn_argv[] = {(char *)tool, "host-connect", sock2, "5000", "1", "65536", NULL};
	pid_t conn_pid = spawn(conn_argv, conn_log);
	static const char line[] = "e2e-line restored-4242\n";
	REQUIRE(write(in[1], line, sizeof(line) - 1) == (ssize_t)(sizeof(line) - 1));
	bool ended = read_until(&r, "E2E snapnet done", 120000);
	for (int t = 0; ended && t < 1000 && !strchr(strstr(r.buf, "E2E snapnet done"), '\n');
	     t++) {
		usleep(10000); /* the rest of the line */
		slurp(&r);
	}
	uint64_t t3 = now_ms();
	int conn_rc = reap(conn_pid, 30000), echo_rc = reap(echo_pid, 10000);
	int echo2_rc = reap(echo2_pid, 10000);
	if (!ended || conn_rc || echo_rc || echo2_rc) {
		show_file("host-connect", conn_log);
		show_file("host-echo", echo_log);
		show_file("host-echo (restored)", echo2_log);
	}
	if (!ended)
		TEST_FAIL("the restored guest did not finish its checks ('%.900s')",
			  r.buf ? r.buf : "");
	const char *fail = strstr(r.buf, "E2E-FAIL");
	if (fail) {
		const char *from = strstr(r.buf, "E2E ok snap_ping");
		printf("     the restored guest's output from its ping on:\n%s\n",
		       from ? from : r.buf);
	}
	CHECK(fail == NULL);
	CHECK(strstr(r.buf, "E2E echo restored-4242\n") != NULL); /* the console */
	static const char *const oks[] = {"snap_files_read_back",
					  "snap_umount",
					  "snap_fsck",
					  "snap_ping",
					  "snap_vsock_held_reset",
					  "snap_vsock_guest_to_host",
					  "snap_vsock_host_to_guest"};
	for (unsigned i = 0; i < sizeof(oks) / sizeof(oks[0]); i++) {
		char want[80];
		snprintf(want, sizeof(want), "E2E ok %s\n", oks[i]);
		if (!strstr(r.buf, want))
			TEST_FAIL("after the restore, no '%s' ('%.900s')", oks[i], r.buf);
	}
	CHECK(strstr(r.buf, "E2E snapnet done checks=7 failures=0") != NULL);
	/* the connection open at the snapshot ended by the transport reset
	 * (Linux: ENOTCONN on a read once the reset closed it) */
	CHECK(strstr(r.buf, "E2E vsock held: vsock-tool: ended: Transport endpoint is not "
			    "connected\n") != NULL ||
	      strstr(r.buf, "E2E vsock held: vsock-tool: ended: Connection reset by peer\n") !=
		  NULL);
	CHECK_EQ(conn_rc, 0);  /* host-to-guest, on the new path: every byte echoed */
	CHECK_EQ(echo_rc, 0);  /* the held one, to its end */
	CHECK_EQ(echo2_rc, 0); /* guest-to-host, to the new path's port 6000 */
	/* the writes went on from the saved one (a line the snapshot cut
	 * joined), or none came before the console line stopped them */
	long n = joined_first_num(c.buf, r.buf, "E2E fs ");
	free(c.buf);
	if (n != done + 1 && n != -1)
		TEST_FAIL("restored, the guest wrote file %ld first; it had written %ld", n, done);
	char fsck[200];
	e2e_value(r.buf, "fsck /dev/vda:", fsck, sizeof(fsck));
	TEST_LOG("booted and writing in %" PRIu64 " ms; snapshot after write %ld; restored, "
		 "went on at %ld; the checks took %" PRIu64 " ms; fsck: %s",
		 t1 - t0, done, n, t3 - t2, fsck);
	REQUIRE_OK(ember_vm_stop(vm2));
	ember_vm_destroy(vm2);
	close(q[0]);
	close(q[1]);
	close(in[0]);
	close(in[1]);
	free(r.buf);
	rm_rf(d);
}

/* The counting guest (one vCPU, to 10) snapshotted into *d/s (*d: a new
 * temporary directory for what; dir: 300 bytes) and destroyed: its console
 * output in c (c->buf the caller's), the last count it printed. */
static long counted_into(const char *what, char **d, char *dir, struct capture *c)
{
	*d = tmp_dir(what);
	snprintf(dir, 300, "%s/s", *d);
	int p[2];
	struct ember_vm *vm = counting_guest(c, p, 1, 10);
	take(vm, dir, 0, NULL);
	usleep(300000);
	slurp(c);
	long printed = last_count(c->buf);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
	return printed;
}

/* `ember run --restore DIR`: the binary continues the guest on its
 * console (stdout) from the saved count, and ends on SIGTERM. */
KVM_TEST_T(snapshot_ember_run_restore_continues_on_the_console, 900)
{
	struct capture c;
	char *d, dir[300];
	long printed = counted_into("cli", &d, dir, &c);

	struct capture r;
	int q[2];
	capture_pipe(&r, q, false);
	const char *ember = env_or("EMBER_BIN", "o/release/ember");
	char sock[320], again[320];
	snprintf(sock, sizeof(sock), "%s/ctl.sock", d);
	snprintf(again, sizeof(again), "%s/again", d);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(q[1], 1);
		dup2(q[1], 2);
		execl(ember, ember, "run", "--restore", dir, "--socket", sock, (char *)NULL);
		_exit(127);
	}
	close(q[1]);
	char want[64];
	snprintf(want, sizeof(want), "E2E count %ld\n", printed + 20);
	bool ok = read_until(&r, want, 300000);
	/* the restored VM answers on its own control socket (its control
	 * thread under the default kill filter): status, a snapshot of its
	 * own, then exit */
	struct ember_ctl *ctl = NULL;
	struct ember_error err = {0};
	int cr = ok ? ember_ctl_connect(sock, 20000, &ctl, &err) : -1;
	struct ember_ctl_status st = {0};
	int sr = cr == 0 ? ember_ctl_status(ctl, &st, &err) : -1;
	int snr =
	    sr == 0 ? ember_ctl_snapshot(ctl, again, EMBER_CTL_SNAPSHOT_RESUME, NULL, &err) : -1;
	int er = cr == 0 ? ember_ctl_exit(ctl, &err) : -1;
	ember_ctl_close(ctl);
	if (er != 0)
		kill(pid, SIGTERM);
	int status = 0;
	waitpid(pid, &status, 0);
	if (!ok)
		TEST_FAIL("ember run --restore did not count on to %ld ('%.300s')", printed + 20,
			  r.buf ? r.buf : "");
	long first = joined_first_count(c.buf, r.buf), last;
	free(c.buf);
	CHECK_EQ(first, printed + 1);
	CHECK(counts_on(r.buf, first_count(r.buf), &last));
	TEST_LOG("--socket: connect %d, status %d (state %d, %u vCPUs, pid %d), snapshot %d, "
		 "exit %d: %s",
		 cr, sr, (int)st.state, st.vcpus, (int)st.pid, snr, er, err.msg);
	CHECK_EQ(cr, 0);
	CHECK_EQ(sr, 0);
	CHECK_EQ(st.pid, pid);
	CHECK_EQ(st.vcpus, 1);
	CHECK_EQ(snr, 0);
	char man[400];
	snprintf(man, sizeof(man), "%s/manifest", again);
	CHECK(access(man, F_OK) == 0);
	CHECK_EQ(er, 0);
	/* stopped by the exit request: its documented status 34 */
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 34);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 34) {
		slurp(&r);
		size_t n = r.len > 600 ? r.len - 600 : 0;
		TEST_LOG("ember run --restore ended with wait status %#x; its last output: %s",
			 status, r.buf ? r.buf + n : "");
	}
	TEST_LOG("ember run --restore went on from %ld to %ld, exit status %d", first, last,
		 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	/* a snapshot that is not one: a clear error, exit status 1 */
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(ember, ember, "run", "--restore", d, (char *)NULL); /* no manifest */
		_exit(127);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	/* a clone's disk for a snapshot without one: refused (status 1); a
	 * --restore-net without its value: a usage error (status 2) */
	static const char *const bad[][2] = {{"--restore-disk", "path=/nonexistent.img"},
					     {"--restore-net", NULL}};
	for (int i = 0; i < 2; i++) {
		pid = fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 2);
			execl(ember, ember, "run", "--restore", dir, bad[i][0], bad[i][1],
			      (char *)NULL);
			_exit(127);
		}
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1 + i);
	}
	close(q[0]);
	rm_rf(d);
}

/* Connects to sock, retrying while the VMM starts (up to ms). */
static struct ember_ctl *connect_retry(const char *sock, int ms, struct ember_error *err)
{
	struct ember_ctl *c = NULL;
	for (int t = 0; t < ms; t += 50) {
		if (ember_ctl_connect(sock, 20000, &c, err) == 0)
			return c;
		usleep(50000);
	}
	return NULL;
}

/* `ember run --restore-on-request --socket S`: a VMM started ahead of its
 * snapshot serves S with no VM (status waiting, other requests no-vm); a
 * restore request for a directory that is no snapshot is refused and it
 * waits on; `ember restore DIR S --memory uffd` (the CLI) then brings the
 * snapshot's guest in, which counts on on the VMM's console; a second restore is
 * refused (has-vm); exit ends it with status 34. A second VMM started so
 * ends on the exit request before any restore, a third on SIGTERM, each
 * with status 34 and its socket removed; without --socket it is a usage
 * error. */
KVM_TEST_T(snapshot_restore_on_request_in_a_vmm_started_ahead, 900)
{
	struct capture c;
	char *d, dir[300];
	long printed = counted_into("ahead", &d, dir, &c);

	struct capture r;
	int q[2];
	capture_pipe(&r, q, false);
	const char *ember = env_or("EMBER_BIN", "o/release/ember");
	char sock[320], elog[320];
	snprintf(sock, sizeof(sock), "%s/ctl.sock", d);
	snprintf(elog, sizeof(elog), "%s/ahead.err", d);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) { /* the console on the pipe, its messages in elog */
		int null = open("/dev/null", O_RDONLY);
		int e = open(elog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(null, 0);
		dup2(q[1], 1);
		dup2(e, 2);
		execl(ember, ember, "run", "--restore-on-request", "--socket", sock, "-v",
		      (char *)NULL);
		_exit(127);
	}
	close(q[1]);
	struct ember_error err = {0};
	struct ember_ctl *ctl = connect_retry(sock, 60000, &err);
	if (!ctl) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		TEST_FAIL("no control socket from ember run --restore-on-request: %s", err.msg);
	}
	struct ember_ctl_status st = {0};
	CHECK_EQ(ember_ctl_status(ctl, &st, &err), 0);
	CHECK(st.waiting);
	CHECK_EQ(st.pid, pid);
	CHECK_ERR(ember_ctl_suspend_vm(ctl, &err), -ENXIO);
	CHECK(!strcmp(ember_ctl_error_code(ctl), "no-vm"));
	/* no snapshot there: refused, the VMM waits on */
	CHECK_ERR(ember_ctl_restore(ctl, d, NULL, 0, NULL, NULL, NULL, NULL, &err), -ENOENT);
	TEST_LOG("a restore of a directory without a snapshot: %s", err.msg);
	CHECK_EQ(ember_ctl_status(ctl, &st, &err), 0);
	CHECK(st.waiting);
	/* the CLI's request, from the snapshot's parent with a relative path
	 * (the CLI makes it absolute: the VMM has another directory), memory
	 * served by the page server (its thread made by the control thread
	 * before that takes its seccomp filter) */
	char log[320];
	snprintf(log, sizeof(log), "%s/restore.out", d);
	char ebin[PATH_MAX];
	REQUIRE(realpath(ember, ebin) != NULL);
	char *const rargv[] = {ebin, "restore", "s", "--memory", "uffd", sock, "--json", NULL};
	int rs = reap(spawn_in(d, rargv, log), 120000);
	CHECK_EQ(rs, 0);
	show_file("ember restore", log);
	char want[64];
	snprintf(want, sizeof(want), "E2E count %ld\n", printed + 20);
	bool ok = rs == 0 && read_until(&r, want, 300000);
	if (!ok) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		TEST_FAIL("the restored guest did not count on to %ld ('%.300s')", printed + 20,
			  r.buf ? r.buf : "");
	}
	long first = joined_first_count(c.buf, r.buf), last;
	free(c.buf);
	CHECK_EQ(first, printed + 1);
	CHECK(counts_on(r.buf, first_count(r.buf), &last));
	CHECK_EQ(ember_ctl_status(ctl, &st, &err), 0);
	CHECK(!st.waiting);
	CHECK_EQ(st.state, EMBER_VM_RUNNING);
	CHECK_EQ(st.vcpus, 1);
	CHECK_ERR(ember_ctl_restore(ctl, dir, NULL, 0, NULL, NULL, NULL, NULL, &err), -EEXIST);
	CHECK(!strcmp(ember_ctl_error_code(ctl), "has-vm"));
	CHECK_EQ(ember_ctl_exit(ctl, &err), 0);
	ember_ctl_close(ctl);
	int status = reap(pid, 60000);
	CHECK_EQ(status, 34);
	FILE *ef = fopen(elog, "r");
	char line[1024];
	bool said = false;
	while (ef && fgets(line, sizeof(line), ef))
		said |= strstr(line, "waiting for a restore request on") != NULL;
	if (ef)
		fclose(ef);
	CHECK(said);
	show_file("ember run --restore-on-request", elog);
	TEST_LOG("restored on request: counted on from %ld to %ld, exit status %d", first, last,
		 status);
	free(r.buf);
	close(q[0]);

	/* ended while waiting: by the exit request, by SIGTERM */
	for (int how = 0; how < 2; how++) {
		snprintf(log, sizeof(log), "%s/wait%d.out", d, how);
		char *const wargv[] = {(char *)ember, "run", "--restore-on-request",
				       "--socket",    sock,  NULL};
		pid = spawn(wargv, log);
		ctl = connect_retry(sock, 60000, &err);
		CHECK(ctl != NULL);
		if (how == 0 && ctl)
			CHECK_EQ(ember_ctl_exit(ctl, &err), 0);
		else
			kill(pid, SIGTERM);
		ember_ctl_close(ctl);
		status = reap(pid, 60000);
		CHECK_EQ(status, 34);
		CHECK(access(sock, F_OK) < 0); /* the socket went with it */
		show_file(how ? "SIGTERM" : "exit", log);
	}
	snprintf(log, sizeof(log), "%s/usage.out", d);
	char *const uargv[] = {(char *)ember, "run", "--restore-on-request", NULL};
	CHECK_EQ(reap(spawn(uargv, log), 60000), 2);
	show_file("no --socket", log);
	rm_rf(d);
}

/* ------------------------------------------------------------ incremental */

/* Reads page i of the memory file of dir. */
static void read_page(int fd, uint64_t i, uint8_t *page)
{
	if (pread(fd, page, 4096, (off_t)(i * 4096)) != 4096)
		TEST_FAIL("short read of page %" PRIu64, i);
}

static uint8_t *read_bitmap(const char *dir, size_t *len)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/pages", dir);
	int fd = open(p, O_RDONLY);
	REQUIRE(fd >= 0);
	struct stat st;
	REQUIRE(fstat(fd, &st) == 0);
	uint8_t *bm = malloc((size_t)st.st_size);
	REQUIRE(bm && read(fd, bm, (size_t)st.st_size) == st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return bm;
}

static int open_memory(const char *dir)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/memory", dir);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		TEST_FAIL("%s: %s", p, strerror(errno));
	return fd;
}

/* A full snapshot, the guest counts on, then at one paused moment an
 * incremental over the full one and a second full snapshot: the increment
 * is much smaller, and base + increment give every page of guest memory as
 * the second full snapshot has it; the increment restores and counts on. */
KVM_TEST_T(snapshot_incremental_is_smaller_and_layers_to_the_full_memory, 900)
{
	struct capture c;
	int p[2];
	struct ember_vm *vm = counting_guest(&c, p, 1, 20);
	char *d = tmp_dir("incr");
	char base[300], inc[300], full[300];
	snprintf(base, sizeof(base), "%s/base", d);
	snprintf(inc, sizeof(inc), "%s/inc", d);
	snprintf(full, sizeof(full), "%s/full", d);
	take(vm, base, EMBER_SNAPSHOT_RESUME, NULL);
	char want[64];
	snprintf(want, sizeof(want), "E2E count %ld\n", last_count(c.buf) + 40);
	if (!read_until(&c, want, 300000))
		TEST_FAIL("the guest did not count on after the base snapshot");
	take(vm, inc, EMBER_SNAPSHOT_INCREMENTAL, base);
	take(vm, full, 0, NULL); /* the same moment: still paused */
	uint64_t b_base = disk_bytes(base, "memory"), b_inc = disk_bytes(inc, "memory"),
		 b_full = disk_bytes(full, "memory");
	TEST_LOG("memory on disk: base %" PRIu64 " KiB, incremental %" PRIu64 " KiB, full %" PRIu64
		 " KiB",
		 b_base >> 10, b_inc >> 10, b_full >> 10);
	CHECK(b_inc * 4 < b_full); /* about the untouched memory smaller */

	size_t nb, ni, nf;
	uint8_t *bb = read_bitmap(base, &nb), *bi = read_bitmap(inc, &ni),
		*bf = read_bitmap(full, &nf);
	REQUIRE(nb == ni && ni == nf);
	int fb = open_memory(base), fi = open_memory(inc), ff = open_memory(full);
	uint8_t pg[4096], want_pg[4096];
	uint64_t differ = 0, layered = 0;
	for (uint64_t i = 0; i < nb * 8; i++) {
		bool in_inc = bi[i / 8] >> (i % 8) & 1;
		read_page(in_inc ? fi : fb, i, pg);
		read_page(ff, i, want_pg);
		layered += in_inc;
		if (memcmp(pg, want_pg, 4096)) {
			if (differ++ < 5)
				test_log(
				    "page %" PRIu64 " differs (in the increment: %d, full: %d, "
				    "base: %d)",
				    i, in_inc, bf[i / 8] >> (i % 8) & 1, bb[i / 8] >> (i % 8) & 1);
		}
	}
	CHECK_EQ(differ, 0);
	TEST_LOG("%" PRIu64 " pages in the increment, every page equal to the full snapshot's",
		 layered);
	close(fb);
	close(fi);
	close(ff);
	free(bb);
	free(bi);
	free(bf);
	usleep(300000); /* paused: what the guest wrote before drains */
	slurp(&c);
	long printed = last_count(c.buf);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);

	/* and the increment, over its base, runs on */
	struct capture r;
	int q[2];
	capture_pipe(&r, q, false);
	struct ember_error err = {0};
	struct ember_vm *vm2 = restore(inc, q[1], &err);
	if (!vm2)
		TEST_FAIL("restore of the increment: %s", err.msg);
	REQUIRE_OK(ember_vm_start(vm2));
	snprintf(want, sizeof(want), "E2E count %ld\n", printed + 20);
	if (!read_until(&r, want, 300000))
		TEST_FAIL("the restored increment did not count to %ld", printed + 20);
	long first = joined_first_count(c.buf, r.buf), last;
	free(c.buf);
	CHECK_EQ(first, printed + 1);
	CHECK(counts_on(r.buf, first_count(r.buf), &last));
	REQUIRE_OK(ember_vm_stop(vm2));
	ember_vm_destroy(vm2);
	rm_rf(d);
}

/* ------------------------------------------------------------ refused */

/* On real KVM too: a corrupt vCPU state and a disk that changed size are
 * refused before any VM is built, with an error naming them. */
KVM_TEST_T(snapshot_corrupt_or_stale_snapshot_is_refused_on_kvm, 600)
{
	char *d = tmp_dir("bad");
	char disk[300], dir[300], cmd[1200];
	snprintf(disk, sizeof(disk), "%s/disk.img", d);
	snprintf(dir, sizeof(dir), "%s/s", d);
	int fd = open(disk, O_RDWR | O_CREAT, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, 8 << 20) == 0);
	close(fd);
	char spec[320];
	snprintf(spec, sizeof(spec), "path=%s", disk);
	int p[2];
	struct capture c;
	capture_pipe(&c, p, false);
	struct ember_vm *vm = guest_vm_disk("count", 1, NULL, p[1], spec);
	REQUIRE_OK(ember_vm_start(vm));
	if (!read_until(&c, "E2E count 5\n", 400000))
		TEST_FAIL("the guest did not count");
	take(vm, dir, 0, NULL);
	ember_vm_destroy(vm); /* frees the disk's lock */

	struct ember_error err = {0};
	char bad[300];
	snprintf(bad, sizeof(bad), "%s/bad", d);
	snprintf(cmd, sizeof(cmd),
		 "cp -a '%s' '%s' && printf 'X' | dd of='%s/vcpu0.state' bs=1 seek=100 "
		 "conv=notrunc 2>/dev/null",
		 dir, bad, bad);
	REQUIRE(system(cmd) == 0);
	CHECK(restore(bad, -1, &err) == NULL);
	CHECK_EQ(err.code, -EINVAL);
	CHECK(strstr(err.msg, "vcpu0.state is corrupt") != NULL);
	TEST_LOG("corrupt: %s", err.msg);

	REQUIRE(truncate(disk, 16 << 20) == 0);
	CHECK(restore(dir, -1, &err) == NULL);
	CHECK_EQ(err.code, -ESTALE);
	CHECK(strstr(err.msg, "disk 0") != NULL);
	TEST_LOG("stale disk: %s", err.msg);
	REQUIRE(truncate(disk, 8 << 20) == 0);
	struct ember_vm *ok = restore(dir, -1, &err);
	if (!ok)
		TEST_FAIL("the intact snapshot: %s", err.msg);
	ember_vm_destroy(ok);
	close(p[0]);
	close(p[1]);
	free(c.buf);
	rm_rf(d);
}

/* ------------------------------------------------------------ timing */

/* Restore against a cold boot of the same 256 MiB guest: to its first
 * instruction (ember_vm_start returned: the vCPUs entered KVM_RUN) and to
 * its console answering (the first count line). Three of each; the first
 * boot also takes a full snapshot and, 40 counts later, an incremental.
 * Prints BENCH lines for make bench (tools/bench.sh). */
KVM_TEST_T(snapshot_restore_time_against_cold_boot, 1200)
{
	double boot[3], first_boot[3], rest[3], first_rest[3], take_full = 0, take_inc = 0;
	char *d = tmp_dir("bench");
	char dir[300], inc[300];
	snprintf(dir, sizeof(dir), "%s/s", d);
	snprintf(inc, sizeof(inc), "%s/inc", d);
	for (int i = 0; i < 3; i++) {
		struct capture c;
		int p[2];
		capture_pipe(&c, p, false);
		uint64_t t0 = now_ms();
		struct ember_vm *vm = guest_vm("count", 1, NULL, p[1]);
		REQUIRE_OK(ember_vm_start(vm));
		uint64_t t1 = now_ms();
		if (!read_until(&c, "E2E count 0\n", 400000))
			TEST_FAIL("cold boot %d: no count", i);
		uint64_t t2 = now_ms();
		boot[i] = (double)(t2 - t0);
		first_boot[i] = (double)(t1 - t0);
		if (i == 0) {
			/* a full snapshot, 40 counts more, an incremental over it */
			uint64_t s0 = now_ms();
			take(vm, dir, EMBER_SNAPSHOT_RESUME, NULL);
			take_full = (double)(now_ms() - s0);
			char want[64];
			slurp(&c);
			snprintf(want, sizeof(want), "E2E count %ld\n", last_count(c.buf) + 40);
			if (!read_until(&c, want, 300000))
				TEST_FAIL("no count after the snapshot");
			s0 = now_ms();
			take(vm, inc, EMBER_SNAPSHOT_INCREMENTAL, dir);
			take_inc = (double)(now_ms() - s0);
		}
		ember_vm_destroy(vm);
		close(p[0]);
		close(p[1]);
		free(c.buf);
	}
	for (int i = 0; i < 3; i++) {
		struct capture c;
		int p[2];
		capture_pipe(&c, p, false);
		struct ember_error err = {0};
		uint64_t t0 = now_ms();
		struct ember_vm *vm = restore(dir, p[1], &err);
		if (!vm)
			TEST_FAIL("restore %d: %s", i, err.msg);
		REQUIRE_OK(ember_vm_start(vm));
		uint64_t t1 = now_ms();
		/* the first whole count line after the restore */
		uint64_t end = t0 + 300000;
		while (now_ms() < end) {
			slurp(&c);
			if (c.buf && first_count(c.buf) >= 0)
				break;
			usleep(1000);
		}
		uint64_t t2 = now_ms();
		if (!c.buf || first_count(c.buf) < 0)
			TEST_FAIL("restore %d: no count line", i);
		rest[i] = (double)(t2 - t0);
		first_rest[i] = (double)(t1 - t0);
		ember_vm_destroy(vm);
		close(p[0]);
		close(p[1]);
		free(c.buf);
	}
	for (int i = 0; i < 3; i++)
		TEST_LOG("run %d: cold boot %.0f ms to running, %.0f ms to the console; restore "
			 "%.1f ms to running, %.1f ms to the console",
			 i, first_boot[i], boot[i], first_rest[i], rest[i]);
	double sb = 0, sr = 0, sbf = 0, srf = 0;
	for (int i = 0; i < 3; i++)
		sb += boot[i], sr += rest[i], sbf += first_boot[i], srf += first_rest[i];
	uint64_t full_kib = disk_bytes(dir, "memory") >> 10,
		 inc_kib = disk_bytes(inc, "memory") >> 10;
	TEST_LOG("mean: restore/boot to the console %.3f, to running %.3f (memory file %" PRIu64
		 " KiB on disk; incremental %" PRIu64 " KiB)",
		 sr / sb, srf / sbf, full_kib, inc_kib);
	/* for make bench (tools/bench.sh): "BENCH name value unit" */
	printf("BENCH snapshot.boot.to_console %.0f ms\n", sb / 3);
	printf("BENCH snapshot.restore.to_console %.1f ms\n", sr / 3);
	printf("BENCH snapshot.restore_vs_boot.console_ratio %.3f x\n", sr / sb);
	printf("BENCH snapshot.boot.to_running %.0f ms\n", sbf / 3);
	printf("BENCH snapshot.restore.to_running %.1f ms\n", srf / 3);
	printf("BENCH snapshot.restore_vs_boot.running_ratio %.3f x\n", srf / sbf);
	printf("BENCH snapshot.take.full %.0f ms\n", take_full);
	printf("BENCH snapshot.take.incremental %.0f ms\n", take_inc);
	printf("BENCH snapshot.memory.full %" PRIu64 " KiB\n", full_kib);
	printf("BENCH snapshot.memory.incremental %" PRIu64 " KiB\n", inc_kib);
	printf("BENCH snapshot.memory.incremental_vs_full_ratio %.4f x\n",
	       full_kib ? (double)inc_kib / (double)full_kib : 0.0);
	fflush(stdout);
	CHECK(sr < sb); /* the least a restore must do */
	CHECK(inc_kib < full_kib);
	rm_rf(d);
}
