/* tests/kvm/virtio_hostile.c - a bare guest booted by the VMM library drives its virtio devices with hostile rings. */
#include "../lib/test.h"

#include <ember/vmm.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The guest is tests/guests/pvh32_virtio.c, a PVH "kernel" of a real Ember
 * VM (ember_vm_create, the board's devices, the I/O thread serving the
 * queues through ioeventfds): a disk and an entropy source. It reports one
 * line per check on ttyS0 and powers off. The test asserts that the VMM
 * survived (the guest powered off, nothing crashed: ASan in the asan
 * build), and that every case ran and passed.
 */

extern const unsigned char ember_pvh_virtio_start[], ember_pvh_virtio_end[];

/* The cases the guest must report "ok" for (each at least once). */
static const char *const cases[] = {
    "found",
    "init",
    "blk-read",
    "blk-read-indirect",
    "rng-read",
    "desc-loop",
    "desc-self-loop",
    "next-past-queue",
    "head-past-queue",
    "avail-index-past-queue",
    "len-4g",
    "len-sum-4g",
    "addr-past-memory",
    "addr-straddles-end",
    "addr-wraps",
    "addr-mmio",
    "indirect-nested",
    "indirect-len-4g",
    "indirect-past-memory",
    "no-status-byte",
    "ring-past-memory",
    "sector-past-end",
    "short-header",
    "rng-desc-loop",
    "rng-addr-past-memory",
};

static int tmpfile_with(const char *tmpl_name, char *path, size_t len)
{
	const char *dir = getenv("TMPDIR");
	snprintf(path, len, "%s/ember-hostile-%s-XXXXXX", dir && *dir ? dir : "/tmp", tmpl_name);
	int fd = mkstemp(path);
	if (fd < 0)
		TEST_FAIL("mkstemp: %s", strerror(errno));
	return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n) {
		ssize_t r = write(fd, b, n);
		if (r <= 0)
			TEST_FAIL("write: %s", strerror(errno));
		b += r;
		n -= (size_t)r;
	}
}

/* Reads the whole console file (NUL-terminated, without '\r'). */
static char *read_console(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0 || end > (1 << 20))
		TEST_FAIL("console output: %lld bytes", (long long)end);
	char *buf = calloc(1, (size_t)end + 1);
	if (!buf || pread(fd, buf, (size_t)end, 0) != end)
		TEST_FAIL("reading the console output");
	size_t k = 0;
	for (off_t i = 0; i < end; i++)
		if (buf[i] != '\r')
			buf[k++] = buf[i];
	buf[k] = 0;
	return buf;
}

static bool has_line(const char *out, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = out; (p = strstr(p, line)); p += n)
		if ((p == out || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
			return true;
	return false;
}

KVM_TEST_T(virtio_hostile_rings, 600)
{
	char kpath[4200], dpath[4200], cpath[4200];
	int kfd = tmpfile_with("kernel", kpath, sizeof(kpath));
	write_all(kfd, ember_pvh_virtio_start,
		  (size_t)(ember_pvh_virtio_end - ember_pvh_virtio_start));
	close(kfd);
	/* 128 sectors; sector s holds bytes s * 31 + i */
	int dfd = tmpfile_with("disk", dpath, sizeof(dpath));
	static unsigned char disk[128 * 512];
	for (unsigned s = 0; s < 128; s++)
		for (unsigned i = 0; i < 512; i++)
			disk[s * 512 + i] = (unsigned char)(s * 31 + i);
	write_all(dfd, disk, sizeof(disk));
	close(dfd);
	int cfd = tmpfile_with("console", cpath, sizeof(cpath));
	unlink(cpath);

	struct ember_config *cfg = NULL;
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&cfg));
	char diskopt[4300];
	snprintf(diskopt, sizeof(diskopt), "path=%s,serial=hostile", dpath);
	if (ember_config_set(cfg, "kernel", kpath, &err) < 0 ||
	    ember_config_set(cfg, "cmdline", "root=/dev/none", &err) < 0 ||
	    ember_config_set(cfg, "mem", "64M", &err) < 0 ||
	    ember_config_set(cfg, "disk", diskopt, &err) < 0 ||
	    ember_config_set(cfg, "rng", "", &err) < 0 ||
	    ember_config_set(cfg, "log-level", "error", &err) < 0)
		TEST_FAIL("configuration: %s", err.msg);
	REQUIRE_OK(ember_config_set_console(cfg, -1, cfd));
	if (ember_config_resolve(cfg, &err) < 0)
		TEST_FAIL("ember_config_resolve: %s", err.msg);
	char fmt[64];
	CHECK(ember_config_get(cfg, "kernel-format", fmt, sizeof(fmt)) > 0);
	CHECK_STR(fmt, "elf-pvh");
	struct ember_vm *vm = NULL;
	int r = ember_vm_create(cfg, &vm, &err);
	ember_config_free(cfg);
	unlink(kpath);
	if (r < 0)
		TEST_FAIL("ember_vm_create: %s", err.msg);
	REQUIRE_OK(ember_vm_start(vm));
	struct ember_run_result res;
	r = ember_vm_wait(vm, 540 * 1000, &res);
	if (r == -ETIMEDOUT) {
		ember_vm_stop(vm);
		ember_vm_wait(vm, -1, &res);
	}
	char *out = read_console(cfd);
	TEST_LOG("guest console:\n%s", out);
	CHECK_EQ(r, 0);
	/* the VMM survived it all and the guest ended by itself */
	CHECK_EQ(res.reason, EMBER_STOP_POWEROFF);
	if (res.reason != EMBER_STOP_POWEROFF)
		TEST_LOG("stop: %s (%s)", ember_stop_reason_name(res.reason), res.detail);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "ok %s", cases[i]);
		if (!has_line(out, line))
			TEST_FAIL("the guest did not report \"%s\"", line);
	}
	CHECK(strstr(out, "\nFAIL ") == NULL);
	unsigned ncases = 0, nfailed = 1;
	const char *d = strstr(out, "hostile: done ");
	REQUIRE(d != NULL);
	CHECK_EQ(sscanf(d, "hostile: done %u failed %u", &ncases, &nfailed), 2);
	CHECK_EQ(nfailed, 0);
	CHECK(ncases >= sizeof(cases) / sizeof(cases[0]));
	free(out);
	ember_vm_destroy(vm);
	close(cfd);
	unlink(dpath);
}
