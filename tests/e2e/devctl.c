/* tests/e2e/devctl.c - device controls of the library on real KVM: the balloon (inflating lowers this process's RSS, deflating gives the memory back, statistics arrive), a rate limit changed while the guest runs, and swap (out lowers RSS, the guest reads its memory back through the page server). */
#include "../lib/test.h"

#include <ember/vmm.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "e2e_vm.h"

/*
 * The guest is the e2e one (tests/e2e/init.sh). Action "balloon": it fills
 * most of its free memory (a tmpfs file), deletes it, so those pages are
 * free in the guest but resident here, says "E2E balloon ready" and waits.
 * Free page reporting is off (--balloon reporting=off), or the guest would
 * give those pages back by itself before the test inflates. Action
 * "rngread": it reads 64 KiB from /dev/hwrng and says "E2E rngread done".
 */

#define GUEST_MEM (256ull << 20)
#define INFLATE	  (64ull << 20)
#define WANT_DROP (60ull << 20)
#define WAIT_MS	  60000

/* VmRSS of this process (the VMM: guest memory is mapped here), bytes. */
static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		TEST_FAIL("cannot open /proc/self/status");
	char line[256];
	uint64_t kb = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %" SCNu64 " kB", &kb) == 1)
			break;
	fclose(f);
	return kb << 10;
}

/* Console output so far (a pipe, non-blocking), appended to buf. */
static bool console_has(int fd, char *buf, size_t cap, size_t *len, const char *what)
{
	ssize_t r;
	while (*len + 1 < cap && (r = read(fd, buf + *len, cap - 1 - *len)) > 0)
		*len += (size_t)r;
	buf[*len] = 0;
	return strstr(buf, what) != NULL;
}

/* Polls the balloon's stats until done(stats) or WAIT_MS; false on timeout. */
static bool wait_stats(struct ember_vm *vm, struct ember_balloon_stats *s,
		       bool (*done)(const struct ember_balloon_stats *, const void *),
		       const void *arg)
{
	struct ember_error err = {0};
	uint64_t end = now_ms() + WAIT_MS;
	for (;;) {
		if (ember_vm_balloon_stats(vm, s, &err) < 0)
			TEST_FAIL("ember_vm_balloon_stats: %s", err.msg);
		if (done(s, arg))
			return true;
		if (now_ms() > end)
			return false;
		usleep(50000);
	}
}

static bool actual_is(const struct ember_balloon_stats *s, const void *arg)
{
	return s->actual_bytes == *(const uint64_t *)arg;
}
static bool updated_after(const struct ember_balloon_stats *s, const void *arg)
{
	return s->guest_updates > *(const uint64_t *)arg;
}
static bool has_memory_stats(const struct ember_balloon_stats *s, const void *arg)
{
	(void)arg;
	return (s->guest_valid & (1u << EMBER_BALLOON_FREE_MEMORY)) &&
	       (s->guest_valid & (1u << EMBER_BALLOON_TOTAL_MEMORY));
}

/* Fresh guest statistics: one more update than now. */
static void fresh_stats(struct ember_vm *vm, struct ember_balloon_stats *s)
{
	uint64_t seen = s->guest_updates;
	if (!wait_stats(vm, s, updated_after, &seen))
		TEST_FAIL("no fresh statistics from the guest (updates stay %" PRIu64 ")", seen);
}

static int console_in = -1; /* the guest's console input (start_guest), or -1 */

/* Builds and starts a VM booting the e2e guest with init action `action`
 * and one device option; console output into the pipe p (made here). */
static struct ember_vm *start_guest(const char *action, const char *dev, const char *subopts,
				    int p[2])
{
	REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	struct ember_config *cfg = NULL;
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&cfg));
	char cmdline[512];
	snprintf(cmdline, sizeof(cmdline),
		 "console=ttyS0 panic=-1 pci=noearly quiet i8042.noaux i8042.nomux i8042.dumbkbd "
		 "e2e.cpus=1 e2e.mem=%llu e2e.echo=0 e2e.action=%s",
		 (unsigned long long)GUEST_MEM, action);
	if (ember_config_set(cfg, "kernel", env_or("E2E_VMLINUX", "o/e2e/vmlinux"), &err) < 0 ||
	    ember_config_set(cfg, "initrd", env_or("E2E_INITRD", "o/e2e/initramfs.cpio"), &err) <
		0 ||
	    ember_config_set(cfg, "cmdline", cmdline, &err) < 0 ||
	    ember_config_set(cfg, "mem", "256M", &err) < 0 ||
	    ember_config_set(cfg, dev, subopts, &err) < 0 ||
	    ember_config_set(cfg, "log-level", "error", &err) < 0 ||
	    ember_config_set_console(cfg, console_in, p[1]) < 0 ||
	    ember_config_resolve(cfg, &err) < 0)
		TEST_FAIL("configuration: %s", err.msg);
	struct ember_vm *vm = NULL;
	int r = ember_vm_create(cfg, &vm, &err);
	ember_config_free(cfg);
	if (r < 0)
		TEST_FAIL("ember_vm_create: %s", err.msg);
	REQUIRE_OK(ember_vm_start(vm));
	return vm;
}

static char out[1 << 20];
static size_t out_len;

/* Waits up to timeout_ms for what on the console; false if it did not come. */
static bool wait_console(struct ember_vm *vm, int fd, const char *what, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (!console_has(fd, out, sizeof(out), &out_len, what)) {
		if (now_ms() > end || ember_vm_wait(vm, 0, NULL) == 0)
			return false;
		usleep(20000);
	}
	return true;
}

KVM_TEST_T(balloon_inflate_lowers_rss_deflate_gives_it_back, 300)
{
	int p[2];
	struct ember_error err = {0};
	struct ember_vm *vm = start_guest("balloon", "balloon", "reporting=off", p);
	if (!wait_console(vm, p[0], "E2E balloon ready", 120000))
		TEST_FAIL("the guest never got ready; console:\n%s", out);
	if (strstr(out, "E2E-FAIL"))
		TEST_FAIL("the guest's checks failed:\n%s", out);

	/* statistics arrive: the driver's first ones, then fresh ones on request */
	struct ember_balloon_stats s;
	if (!wait_stats(vm, &s, has_memory_stats, NULL))
		TEST_FAIL("no memory statistics from the guest (valid 0x%x)", s.guest_valid);
	fresh_stats(vm, &s);
	uint64_t free0 = s.guest[EMBER_BALLOON_FREE_MEMORY];
	uint64_t total = s.guest[EMBER_BALLOON_TOTAL_MEMORY];
	test_log("guest: total %" PRIu64 " MiB, free %" PRIu64 " MiB", total >> 20, free0 >> 20);
	CHECK(total > GUEST_MEM / 2 && total <= GUEST_MEM);
	CHECK(free0 > INFLATE && free0 < total);

	/* inflate by 64 MiB: the guest gives the pages, the host frees them */
	uint64_t rss0 = rss_bytes();
	REQUIRE_OK(ember_vm_balloon_set_target(vm, INFLATE, &err));
	uint64_t want = INFLATE;
	if (!wait_stats(vm, &s, actual_is, &want))
		TEST_FAIL("the balloon holds %" PRIu64 " MiB, not 64", s.actual_bytes >> 20);
	uint64_t rss1 = rss_bytes();
	test_log("inflated: RSS %" PRIu64 " -> %" PRIu64 " MiB (given back %" PRIu64 " MiB)",
		 rss0 >> 20, rss1 >> 20, s.given_back_bytes >> 20);
	CHECK_EQ(s.target_bytes, INFLATE);
	CHECK(s.inflated_bytes >= INFLATE);
	CHECK(s.given_back_bytes >= INFLATE);
	if (rss1 + WANT_DROP > rss0)
		TEST_FAIL("RSS fell by %" PRId64 " KiB, want at least 60 MiB",
			  ((int64_t)rss0 - (int64_t)rss1) / 1024);
	fresh_stats(vm, &s);
	uint64_t free1 = s.guest[EMBER_BALLOON_FREE_MEMORY];
	test_log("guest free while inflated: %" PRIu64 " MiB", free1 >> 20);
	CHECK(free1 + (56ull << 20) <= free0);

	/* deflate: the guest has its memory back */
	REQUIRE_OK(ember_vm_balloon_set_target(vm, 0, &err));
	want = 0;
	if (!wait_stats(vm, &s, actual_is, &want))
		TEST_FAIL("the balloon still holds %" PRIu64 " MiB", s.actual_bytes >> 20);
	CHECK(s.deflated_bytes >= INFLATE);
	fresh_stats(vm, &s);
	uint64_t free2 = s.guest[EMBER_BALLOON_FREE_MEMORY];
	test_log("deflated: guest free %" PRIu64 " MiB (before %" PRIu64 ")", free2 >> 20,
		 free0 >> 20);
	CHECK(free2 + (8ull << 20) >= free0);

	/* a target beyond guest RAM is refused, nothing changes */
	CHECK_ERR(ember_vm_balloon_set_target(vm, GUEST_MEM + 4096, &err), -EINVAL);
	REQUIRE_OK(ember_vm_balloon_stats(vm, &s, &err));
	CHECK_EQ(s.target_bytes, 0);

	ember_vm_stop(vm);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
}

/* A rate limit changed while the guest waits on it: the device goes on at once. */
KVM_TEST_T(rate_limit_changed_while_the_guest_runs, 300)
{
	int p[2];
	struct ember_error err = {0};
	/* 64 bytes/s: the guest's 64 KiB would take 17 minutes */
	struct ember_vm *vm = start_guest("rngread", "rng", "bw=64,bw-burst=64", p);
	struct ember_rate_limit l;
	REQUIRE_OK(ember_vm_get_rate_limit(vm, "rng0", &l, &err));
	CHECK_EQ(l.bytes_per_sec, 64);
	CHECK_EQ(l.bytes_burst, 64);
	if (!wait_console(vm, p[0], "E2E rngread start", 120000))
		TEST_FAIL("the guest never started reading; console:\n%s", out);
	/* 3 s later it is still reading (at most ~256 bytes came) */
	CHECK(!wait_console(vm, p[0], "E2E rngread done", 3000));
	uint64_t t0 = now_ms();
	struct ember_rate_limit fast = {0}; /* unlimited */
	REQUIRE_OK(ember_vm_set_rate_limit(vm, "rng0", &fast, &err));
	if (!wait_console(vm, p[0], "E2E rngread done 65536", 60000))
		TEST_FAIL("the 64 KiB read did not finish after the limit was lifted; console:\n%s",
			  out);
	test_log("64 KiB read %" PRIu64 " ms after the limit was lifted", now_ms() - t0);
	REQUIRE_OK(ember_vm_get_rate_limit(vm, "rng0", &l, &err));
	CHECK_EQ(l.bytes_per_sec, 0);
	ember_vm_stop(vm);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
}

/* The guest's sum of its pattern after the next console line; NULL if none came. */
static const char *guest_sum(struct ember_vm *vm, int fd, int in, unsigned nth)
{
	CHECK_EQ(write(in, "go\n", 3), 3);
	const char *at = out;
	for (unsigned k = 0; k < nth; k++) {
		char *n = strstr(at, "E2E swap sum ");
		if (!n)
			break;
		at = n + 1;
	}
	uint64_t end = now_ms() + WAIT_MS;
	for (;;) {
		console_has(fd, out, sizeof(out), &out_len, "");
		const char *n = strstr(at, "E2E swap sum ");
		if (n && strchr(n, '\n'))
			return n + strlen("E2E swap sum ");
		if (now_ms() > end || ember_vm_wait(vm, 0, NULL) == 0)
			return NULL;
		usleep(20000);
	}
}

/* Swap through the library on a running guest: out releases most of what
 * the guest touched (this process's RSS falls), the guest's pattern reads
 * back the same through the page server (faults counted), disable brings
 * the rest back and unregisters. */
KVM_TEST_T(swap_out_releases_rss_and_the_guest_reads_its_memory_back, 300)
{
	int p[2], in[2];
	struct ember_error err = {0};
	REQUIRE(pipe2(in, O_CLOEXEC) == 0);
	console_in = in[0];
	struct ember_vm *vm = start_guest("swap", "balloon", "reporting=off", p);
	console_in = -1;
	if (!wait_console(vm, p[0], "E2E swap ready ", 120000))
		TEST_FAIL("the guest never got ready; console:\n%s", out);
	const char *r0 = strstr(out, "E2E swap ready ");
	for (int k = 0; k < 100 && !strchr(r0, '\n'); k++) { /* the whole line */
		usleep(20000);
		console_has(p[0], out, sizeof(out), &out_len, "");
		r0 = strstr(out, "E2E swap ready ");
	}
	char sum0[33] = "";
	REQUIRE(r0 && sscanf(r0, "E2E swap ready %32s", sum0) == 1);

	struct ember_swap_status st;
	REQUIRE_OK(ember_vm_swap(vm, EMBER_SWAP_STATUS, NULL, &st, &err));
	CHECK_EQ(st.state, EMBER_SWAP_DISABLED);
	CHECK_ERR(ember_vm_swap(vm, EMBER_SWAP_OUT, NULL, &st, &err), -EINVAL);
	if (ember_vm_swap(vm, EMBER_SWAP_ENABLE, NULL, &st, &err) < 0)
		TEST_FAIL("swap enable: %s", err.msg);
	CHECK_EQ(st.state, EMBER_SWAP_READY);
	CHECK_ERR(ember_vm_swap(vm, EMBER_SWAP_TRIM, NULL, &st, &err), -ENOTSUP);

	uint64_t rss0 = rss_bytes(), t0 = now_ms();
	if (ember_vm_swap(vm, EMBER_SWAP_OUT, NULL, &st, &err) < 0)
		TEST_FAIL("swap out: %s", err.msg);
	uint64_t t_out = now_ms() - t0, rss1 = rss_bytes();
	uint64_t out_b = st.last_out_pages * 4096;
	test_log("swap out: %" PRIu64 " MiB in %" PRIu64 " ms, RSS %" PRIu64 " -> %" PRIu64 " MiB",
		 out_b >> 20, t_out, rss0 >> 20, rss1 >> 20);
	CHECK_EQ(st.state, EMBER_SWAP_SWAPPED_OUT);
	CHECK(out_b >= (32ull << 20)); /* the pattern at least */
	CHECK(st.swapped_pages > 0 && st.swapped_pages <= st.last_out_pages);
	if (rss1 + out_b / 10 * 8 > rss0)
		TEST_FAIL("RSS fell by %" PRId64 " KiB, want 80%% of the %" PRIu64 " KiB out",
			  ((int64_t)rss0 - (int64_t)rss1) / 1024, out_b >> 10);

	/* the guest reads its pattern back: the same sum, the pages served */
	const char *s1 = guest_sum(vm, p[0], in[1], 0);
	if (!s1)
		TEST_FAIL("no sum from the guest after swap out; console:\n%s", out);
	test_log("pattern sums: before %s, after swap out %.32s", sum0, s1 ? s1 : "-");
	CHECK(!strncmp(s1, sum0, 32));
	REQUIRE_OK(ember_vm_swap(vm, EMBER_SWAP_STATUS, NULL, &st, &err));
	test_log("after the guest's read: %" PRIu64 " faults, %" PRIu64 " KiB in, %" PRIu64
		 " zero pages, %" PRIu64 " pages still out",
		 st.faults, st.bytes_in >> 10, st.zero_pages, st.swapped_pages);
	CHECK(st.faults >= (32ull << 20) / 4096);
	CHECK(st.bytes_in >= (32ull << 20));
	CHECK_EQ(st.errors, 0);

	/* disable: the pages still out come back, unregistered, and still the same */
	CHECK(st.swapped_pages > (16ull << 20) / 4096); /* the guest's idle rest */
	t0 = now_ms();
	REQUIRE_OK(ember_vm_swap(vm, EMBER_SWAP_DISABLE, NULL, &st, &err));
	test_log("disable: %" PRIu64 " ms", now_ms() - t0);
	CHECK_EQ(st.state, EMBER_SWAP_DISABLED);
	CHECK_EQ(st.swapped_pages, 0);
	CHECK(rss_bytes() + (8ull << 20) >= rss1 + (32ull << 20));
	const char *s2 = guest_sum(vm, p[0], in[1], 1);
	if (!s2)
		TEST_FAIL("no sum from the guest after disable; console:\n%s", out);
	test_log("pattern sum after disable %.32s", s2 ? s2 : "-");
	CHECK(!strncmp(s2, sum0, 32));
	CHECK(ember_vm_wait(vm, 0, NULL) != 0); /* still running */

	ember_vm_stop(vm);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
	close(in[0]);
	close(in[1]);
}
