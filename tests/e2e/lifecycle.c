/* tests/e2e/lifecycle.c - the VM lifecycle of include/ember/vmm.h on real KVM with a Linux guest: transitions, pause/resume, a full console pipe. */
#include "../lib/test.h"

#include <ember/vmm.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e_vm.h"

/* ------------------------------------------------------------ transitions */

KVM_TEST_T(lifecycle_bad_transitions_give_documented_errors, 300)
{
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	REQUIRE(devnull >= 0);
	struct ember_run_result res;
	/* NULL */
	CHECK_ERR(ember_vm_start(NULL), -EINVAL);
	CHECK_ERR(ember_vm_pause(NULL), -EINVAL);
	CHECK_ERR(ember_vm_resume(NULL), -EINVAL);
	CHECK_ERR(ember_vm_stop(NULL), -EINVAL);
	CHECK_ERR(ember_vm_wait(NULL, 0, &res), -EINVAL);
	CHECK_ERR(ember_vm_query(NULL, NULL), -EINVAL);

	struct ember_vm *vm = guest_vm("hang", 2, NULL, devnull);
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(vm, &info));
	CHECK_EQ(info.state, EMBER_VM_CREATED);
	CHECK_EQ(info.vcpus, 2);
	CHECK_EQ(info.mem_size, GUEST_MEM);
	struct ember_vcpu_info v0, v1;
	REQUIRE_OK(ember_vm_query_vcpu(vm, 0, &v0));
	REQUIRE_OK(ember_vm_query_vcpu(vm, 1, &v1));
	CHECK_ERR(ember_vm_query_vcpu(vm, 2, &v1), -EINVAL);
	CHECK(v0.tid > 0 && v1.tid > 0 && v0.tid != v1.tid && v0.tid != (int)getpid());
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d", v0.tid);
	struct stat st;
	CHECK_OK(stat(path, &st)); /* a thread of this process */
	CHECK_EQ(v0.exits_total, 0);
	CHECK(ember_vcpu_exit_name(0) != NULL);
	CHECK(ember_vcpu_exit_name(EMBER_VCPU_EXIT_KINDS) == NULL);

	/* CREATED */
	CHECK_ERR(ember_vm_pause(vm), -EINVAL);
	CHECK_ERR(ember_vm_resume(vm), -EINVAL);
	CHECK_ERR(ember_vm_wait(vm, 0, &res), -EINVAL);
	CHECK_ERR(ember_vm_wait(vm, 100, &res), -EINVAL);
	/* RUNNING */
	REQUIRE_OK(ember_vm_start(vm));
	CHECK_ERR(ember_vm_start(vm), -EALREADY);
	CHECK_EQ(state_of(vm), EMBER_VM_RUNNING);
	CHECK_OK(ember_vm_resume(vm)); /* already running: 0 */
	uint64_t t0 = now_ms();
	CHECK_ERR(ember_vm_wait(vm, 200, &res), -ETIMEDOUT);
	CHECK(now_ms() - t0 >= 190);
	CHECK_ERR(ember_vm_wait(vm, 0, &res), -ETIMEDOUT);
	/* PAUSED */
	REQUIRE_OK(ember_vm_pause(vm));
	CHECK_EQ(state_of(vm), EMBER_VM_PAUSED);
	CHECK_OK(ember_vm_pause(vm)); /* already paused: 0 */
	CHECK_ERR(ember_vm_start(vm), -EALREADY);
	REQUIRE_OK(ember_vm_resume(vm));
	CHECK_EQ(state_of(vm), EMBER_VM_RUNNING);
	REQUIRE_OK(ember_vm_query_vcpu(vm, 0, &v0));
	CHECK(v0.exits_total > 0);
	/* STOPPED from PAUSED */
	REQUIRE_OK(ember_vm_pause(vm));
	REQUIRE_OK(ember_vm_stop(vm));
	CHECK_EQ(state_of(vm), EMBER_VM_STOPPED);
	CHECK_ERR(ember_vm_pause(vm), -ESRCH);
	CHECK_ERR(ember_vm_resume(vm), -ESRCH);
	CHECK_ERR(ember_vm_start(vm), -EALREADY);
	CHECK_OK(ember_vm_stop(vm)); /* already stopped: 0 */
	memset(&res, 0xff, sizeof(res));
	REQUIRE_OK(ember_vm_wait(vm, 0, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	CHECK_EQ(res.vcpu, -1);
	CHECK_ERR(ember_vm_run(vm, &res), -EALREADY);
	ember_vm_destroy(vm);

	/* stopped before it ever started */
	vm = guest_vm("hang", 1, NULL, devnull);
	REQUIRE_OK(ember_vm_stop(vm));
	CHECK_EQ(state_of(vm), EMBER_VM_STOPPED);
	REQUIRE_OK(ember_vm_wait(vm, -1, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	CHECK_ERR(ember_vm_start(vm), -EALREADY);
	REQUIRE_OK(ember_vm_query_vcpu(vm, 0, &v0));
	CHECK_EQ(v0.exits_total, 0); /* no guest code ran */
	ember_vm_destroy(vm);

	/* a request before start: stops as soon as it starts */
	vm = guest_vm("hang", 1, NULL, devnull);
	ember_vm_request_stop(vm);
	REQUIRE_OK(ember_vm_run(vm, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	ember_vm_destroy(vm);

	/* destroy of a running VM */
	vm = guest_vm("hang", 1, NULL, devnull);
	REQUIRE_OK(ember_vm_start(vm));
	usleep(100000);
	t0 = now_ms();
	ember_vm_destroy(vm);
	CHECK(now_ms() - t0 < 1000);
	close(devnull);
}

/* ------------------------------------------------------------ reset */

/* Occurrences of needle in hay. */
static unsigned count_of(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Complete "E2E result ..." lines (a reset cuts off what the guest had not
 * written out yet, so the wait is for whole lines). */
static unsigned results_of(const char *buf)
{
	unsigned n = 0;
	for (const char *p = buf; p && (p = strstr(p, "E2E result checks=")); p++) {
		const char *nl = strchr(p, '\n'), *next = strstr(p + 1, "E2E ");
		n += nl && (!next || nl < next);
	}
	return n;
}

/* Waits up to timeout_ms until the console shows n guest results. */
static bool wait_results(struct capture *c, unsigned n, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		slurp(c);
		if (c->buf && results_of(c->buf) >= n)
			return true;
		if (now_ms() > end)
			return false;
		usleep(20000);
	}
}

/* ember_vm_reset on a running guest (2 vCPUs, a disk): the guest boots
 * again in the same VM, the application processor comes up again, the disk
 * works; a reset asked while paused happens, and the VM stays paused until
 * resumed; the VM never leaves RUNNING/PAUSED. */
KVM_TEST_T(lifecycle_reset_boots_the_guest_again_in_place, 290)
{
	char img[256];
	snprintf(img, sizeof(img), "%s/ember-lc-reset-XXXXXX", env_or("TMPDIR", "/tmp"));
	int fd = mkstemp(img);
	REQUIRE(fd >= 0);
	REQUIRE_OK(ftruncate(fd, 1 << 20));
	REQUIRE(pwrite(fd, "EMBER-E2E-DISK", 14, 0) == 14);
	close(fd);
	char disk[300];
	snprintf(disk, sizeof(disk), "path=%s,serial=e2e-serial", img);
	int p[2];
	struct capture c;
	capture_pipe(&c, p, false);
	struct ember_vm *vm = guest_vm_disk("hang", 2, "e2e.disks=1", p[1], disk);
	REQUIRE_OK(ember_vm_start(vm));
	if (!wait_results(&c, 1, 90000))
		TEST_FAIL("the first boot gave no result (%zu bytes of output)", c.len);
	REQUIRE_OK(ember_vm_reset(vm));
	if (!wait_results(&c, 2, 90000))
		TEST_FAIL("no second boot after ember_vm_reset (%zu bytes of output)", c.len);
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(vm, &info));
	CHECK_EQ(info.resets, 1);
	CHECK_EQ(info.state, EMBER_VM_RUNNING);
	/* paused: the reset happens, the guest waits for the resume */
	REQUIRE_OK(ember_vm_pause(vm));
	REQUIRE_OK(ember_vm_reset(vm));
	for (int i = 0; i < 500 && info.resets < 2; i++) {
		usleep(10000);
		REQUIRE_OK(ember_vm_query(vm, &info));
	}
	CHECK_EQ(info.resets, 2);
	CHECK_EQ(info.state, EMBER_VM_PAUSED);
	usleep(500000);
	slurp(&c);
	CHECK_EQ(count_of(c.buf, "E2E kernel "), 2); /* not booting while paused */
	REQUIRE_OK(ember_vm_resume(vm));
	if (!wait_results(&c, 3, 90000))
		TEST_FAIL("no third boot after the resume (%zu bytes of output)", c.len);
	/* what failed, if anything, for the log */
	for (const char *l = c.buf; l && (l = strstr(l, "E2E")); l++)
		if (!strncmp(l, "E2E-FAIL", 8) || !strncmp(l, "E2E klog", 8) ||
		    !strncmp(l, "E2E result", 10)) {
			const char *e = strchr(l, '\n');
			TEST_LOG("%.*s", (int)(e ? e - l : (long)strlen(l)), l);
		}
	/* each boot: both CPUs online, the disk read, every check passed */
	CHECK_EQ(count_of(c.buf, "E2E ok cpus_online"), 3);
	CHECK_EQ(count_of(c.buf, "E2E ok vda_reads"), 3);
	CHECK_EQ(results_of(c.buf), 3);
	CHECK_EQ(count_of(c.buf, "failures=0\n"), 3);
	CHECK_EQ(count_of(c.buf, "E2E-FAIL"), 0);
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_stop(vm));
	REQUIRE_OK(ember_vm_wait(vm, 0, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	CHECK_ERR(ember_vm_reset(vm), -ESRCH);
	ember_vm_destroy(vm);
	unlink(img);
	close(p[0]);
	close(p[1]);
	free(c.buf);
}

/* ------------------------------------------------------------ pause */

/* A counter in the guest's shell, printed line after line: while paused no
 * byte comes and no vCPU exits; after resume the count goes on from the
 * next value (not restarted, none skipped). */
KVM_TEST_T(lifecycle_pause_freezes_guest_counter_and_resume_continues, 600)
{
	int p[2];
	struct capture c;
	capture_pipe(&c, p, false);
	struct ember_vm *vm = guest_vm("count", 2, NULL, p[1]);
	REQUIRE_OK(ember_vm_start(vm));
	if (!read_until(&c, "E2E count 50\n", 400000))
		TEST_FAIL("the guest's counter did not reach 50 (%zu bytes of output)", c.len);
	for (int round = 0; round < 3; round++) {
		REQUIRE_OK(ember_vm_pause(vm));
		CHECK_EQ(state_of(vm), EMBER_VM_PAUSED);
		/* output written before the pause may still drain */
		usleep(300000);
		slurp(&c);
		size_t at_pause = c.len;
		uint64_t exits[2];
		for (unsigned i = 0; i < 2; i++) {
			struct ember_vcpu_info vi;
			REQUIRE_OK(ember_vm_query_vcpu(vm, i, &vi));
			exits[i] = vi.exits_total;
		}
		usleep(700000);
		CHECK_EQ(slurp(&c), 0); /* frozen: not one byte */
		for (unsigned i = 0; i < 2; i++) {
			struct ember_vcpu_info vi;
			REQUIRE_OK(ember_vm_query_vcpu(vm, i, &vi));
			CHECK_EQ(vi.exits_total, exits[i]); /* no vCPU ran */
		}
		/* the last value printed before the pause */
		long last = check_sequence(c.buf, "E2E count ");
		REQUIRE(last > 0);
		REQUIRE_OK(ember_vm_resume(vm));
		char want[64];
		snprintf(want, sizeof(want), "E2E count %ld\n", last + 20);
		if (!read_until(&c, want, 120000))
			TEST_FAIL("after resume the counter did not reach %ld", last + 20);
		CHECK(c.len > at_pause);
		TEST_LOG("round %d: paused after %ld, went on to %ld", round, last - 1, last + 20);
	}
	/* every value once, in order, across all pauses */
	CHECK(check_sequence(c.buf, "E2E count ") > 0);
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_stop(vm));
	REQUIRE_OK(ember_vm_wait(vm, 0, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
	free(c.buf);
}

/* s3-blk: pausing with disk I/O going on (the guest writes and flushes
 * /dev/vda in a loop, on the io_uring engine): a pause drains the requests
 * in flight, so while paused the image does not change; after each resume
 * the guest's writes go on (requests held on the rings are taken again)
 * and none fails. */
static uint64_t image_hash(int fd)
{
	uint64_t h = 1469598103934665603ull;
	uint8_t buf[65536];
	off_t off = 0;
	ssize_t r;
	while ((r = pread(fd, buf, sizeof(buf), off)) > 0) {
		for (ssize_t i = 0; i < r; i++)
			h = (h ^ buf[i]) * 1099511628211ull;
		off += r;
	}
	return h;
}

KVM_TEST_T(lifecycle_pause_with_disk_io_in_flight, 600)
{
	char img[256];
	snprintf(img, sizeof(img), "%s/ember-lc-disk-XXXXXX", env_or("TMPDIR", "/tmp"));
	int fd = mkstemp(img);
	REQUIRE(fd >= 0);
	REQUIRE_OK(ftruncate(fd, 4 << 20));
	int p[2];
	struct capture c;
	capture_pipe(&c, p, false);
	struct ember_vm *vm = guest_vm_disk("diskio", 2, NULL, p[1], img);
	REQUIRE_OK(ember_vm_start(vm));
	if (!read_until(&c, "E2E disk 3\n", 400000))
		TEST_FAIL("the guest's disk writes did not start (%zu bytes of output)", c.len);
	for (int round = 0; round < 10; round++) {
		REQUIRE_OK(ember_vm_pause(vm));
		uint64_t h0 = image_hash(fd);
		usleep(200000);
		CHECK_EQ(image_hash(fd), h0); /* no write landed while paused */
		slurp(&c);
		long last = -1;
		for (const char *s = c.buf; (s = strstr(s, "E2E disk ")); s++)
			last = strtol(s + 9, NULL, 10);
		REQUIRE_OK(ember_vm_resume(vm));
		char want[64];
		snprintf(want, sizeof(want), "E2E disk %ld\n", last + 2);
		if (!read_until(&c, want, 120000))
			TEST_FAIL("round %d: after resume the writes did not go on past %ld", round,
				  last);
	}
	CHECK(strstr(c.buf, "E2E-FAIL") == NULL);
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_stop(vm));
	REQUIRE_OK(ember_vm_wait(vm, 0, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	ember_vm_destroy(vm);
	/* the guest's writes reached the image */
	char head[16] = {0};
	REQUIRE_EQ(pread(fd, head, 9, 0), 9);
	CHECK(memcmp(head, "E2E-ITER ", 9) == 0);
	close(fd);
	unlink(img);
	close(p[0]);
	close(p[1]);
	free(c.buf);
}

/* 100 pause/resume cycles while Linux boots: the guest still reaches init,
 * its checks pass and it powers off. */
KVM_TEST_T(lifecycle_100_pause_resume_cycles_during_boot, 600)
{
	int p[2];
	struct capture c;
	capture_pipe(&c, p, false);
	struct ember_vm *vm = guest_vm("poweroff", 2, NULL, p[1]);
	REQUIRE_OK(ember_vm_start(vm));
	srand(12345);
	int cycles = 0;
	for (; cycles < 100; cycles++) {
		usleep(2000 + (unsigned)(rand() % 20000));
		int r = ember_vm_pause(vm);
		if (r == -ESRCH)
			break; /* the boot ended first */
		REQUIRE_OK(r);
		CHECK_EQ(state_of(vm), EMBER_VM_PAUSED);
		usleep(1000 + (unsigned)(rand() % 5000));
		REQUIRE_OK(ember_vm_resume(vm));
		slurp(&c);
	}
	CHECK_EQ(cycles, 100);
	TEST_LOG("%d cycles done after %zu bytes of console output", cycles, c.len);
	struct ember_run_result res;
	int r;
	while ((r = ember_vm_wait(vm, 100, &res)) == -ETIMEDOUT)
		slurp(&c);
	REQUIRE_OK(r);
	slurp(&c);
	CHECK_EQ(res.reason, EMBER_STOP_POWEROFF);
	CHECK(strstr(c.buf, "E2E kernel ") != NULL); /* init ran */
	if (!strstr(c.buf, "E2E result checks=") || strstr(c.buf, "E2E-FAIL") ||
	    !strstr(c.buf, " failures=0"))
		TEST_FAIL("the guest's checks did not pass:\n%s", c.buf);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
	free(c.buf);
}

/* ------------------------------------------------------------ a full console pipe */

/* Waits until the console buffer is full behind a pipe nobody reads. */
static void wait_console_full(struct ember_vm *vm)
{
	uint64_t end = now_ms() + 240000;
	struct ember_vm_info info;
	do {
		usleep(20000);
		if (ember_vm_query(vm, &info) < 0)
			TEST_FAIL("query");
		if (info.state == EMBER_VM_STOPPED)
			TEST_FAIL("the guest stopped before the console filled");
	} while (info.console_bytes_pending < (64u << 10) && now_ms() < end);
	if (info.console_bytes_pending < (64u << 10))
		TEST_FAIL("the console buffer did not fill (%" PRIu64 " pending)",
			  info.console_bytes_pending);
	TEST_LOG("console full: %" PRIu64 " written, %" PRIu64 " pending", info.console_bytes_out,
		 info.console_bytes_pending);
}

KVM_TEST_T(lifecycle_full_console_pipe_stop_and_destroy_within_a_second, 600)
{
	int p[2];
	struct capture c;
	capture_pipe(&c, p, true);
	struct ember_vm *vm = guest_vm("count", 1, NULL, p[1]);
	REQUIRE_OK(ember_vm_start(vm));
	wait_console_full(vm);
	usleep(500000);
	CHECK_EQ(state_of(vm), EMBER_VM_RUNNING);
	/* pause and resume still work with the guest stuck on its UART */
	uint64_t t0 = now_ms();
	REQUIRE_OK(ember_vm_pause(vm));
	REQUIRE_OK(ember_vm_resume(vm));
	CHECK(now_ms() - t0 < 1000);
	t0 = now_ms();
	REQUIRE_OK(ember_vm_stop(vm));
	uint64_t took = now_ms() - t0;
	TEST_LOG("ember_vm_stop took %" PRIu64 " ms", took);
	CHECK(took < 1000);
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_wait(vm, 0, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	ember_vm_destroy(vm);

	/* the same, ended by ember_vm_destroy alone */
	close(p[0]);
	close(p[1]);
	capture_pipe(&c, p, true);
	vm = guest_vm("count", 1, NULL, p[1]);
	REQUIRE_OK(ember_vm_start(vm));
	wait_console_full(vm);
	t0 = now_ms();
	ember_vm_destroy(vm);
	took = now_ms() - t0;
	TEST_LOG("ember_vm_destroy took %" PRIu64 " ms", took);
	CHECK(took < 1000);
	close(p[0]);
	close(p[1]);
	free(c.buf);
}

/* A reader that stops until the buffer is full, then drains: every line
 * the guest printed arrives, in order. */
KVM_TEST_T(lifecycle_full_console_pipe_loses_no_byte_once_drained, 600)
{
	int p[2];
	struct capture c;
	capture_pipe(&c, p, true);
	const long lines = 6000; /* ~80 KiB: more than the buffer and the pipe together */
	char extra[64];
	snprintf(extra, sizeof(extra), "e2e.lines=%ld", lines);
	struct ember_vm *vm = guest_vm("flood", 1, extra, p[1]);
	REQUIRE_OK(ember_vm_start(vm));
	wait_console_full(vm);
	usleep(1000000); /* the guest waits on its busy UART meanwhile */
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(vm, &info));
	CHECK_EQ(info.state, EMBER_VM_RUNNING);
	struct ember_run_result res;
	int r;
	while ((r = ember_vm_wait(vm, 10, &res)) == -ETIMEDOUT)
		slurp(&c);
	REQUIRE_OK(r);
	slurp(&c);
	CHECK_EQ(res.reason, EMBER_STOP_POWEROFF);
	long n = check_sequence(c.buf, "E2E seq ");
	CHECK_EQ(n, lines);
	CHECK(strstr(c.buf, "E2E flood done\n") != NULL);
	REQUIRE_OK(ember_vm_query(vm, &info));
	CHECK_EQ(info.console_bytes_dropped, 0);
	CHECK_EQ(info.console_bytes_out, c.raw);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
	free(c.buf);
}
