/* tests/kvm/virtio_hostile.c - a bare guest booted by the VMM library drives its virtio devices with hostile rings. */
#include "../lib/test.h"
#include "pvh_vm.h"

#include <ember/vmm.h>

#include <errno.h>
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
	/* 128 sectors; sector s holds bytes s * 31 + i */
	char dpath[4200];
	int dfd = pvh_tmpfile("disk", dpath, sizeof(dpath));
	static unsigned char disk[128 * 512];
	for (unsigned s = 0; s < 128; s++)
		for (unsigned i = 0; i < 512; i++)
			disk[s * 512 + i] = (unsigned char)(s * 31 + i);
	pvh_write_all(dfd, disk, sizeof(disk));
	close(dfd);
	char diskopt[4300];
	snprintf(diskopt, sizeof(diskopt), "path=%s,serial=hostile", dpath);
	const char *const keys[] = {"disk", diskopt, "rng", "", NULL};
	int cfd;
	struct ember_vm *vm = pvh_vm_create(PVH_GUEST(virtio), "", 1, keys, &cfd);
	REQUIRE_OK(ember_vm_start(vm));
	struct ember_run_result res;
	int r = ember_vm_wait(vm, 540 * 1000, &res);
	if (r == -ETIMEDOUT) {
		ember_vm_stop(vm);
		ember_vm_wait(vm, -1, &res);
	}
	char *out = pvh_vm_console(cfd);
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
