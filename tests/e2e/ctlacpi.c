/* tests/e2e/ctlacpi.c - guest-visible control actions through the control socket on real KVM (ember_ctl_server_start in this process, requests by the client library): ACPI power and sleep buttons and a GPE event through the GED, an RTC interrupt, a disk resize the guest sees, a NIC hot-added and removed (the Debian rootfs powering off on the power button is tests/e2e/run.sh's rootfs test). */
#include "../lib/test.h"

#include <ember/ctl.h>
#include <ember/vmm.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e_vm.h"

/*
 * The guest is the e2e one (tests/e2e/init.sh, action "ctl"): it finds the
 * buttons' input devices (button.ko, evdev.ko), arms an RTC alarm an hour
 * ahead (AIE on), says "E2E ctl ready", then reports what the host does:
 * the RTC interrupt ("E2E ctl rtc irq N"), vda's new size ("E2E ctl vda size
 * S", then it writes GUEST-WROTE-GROWN into the grown part), the sleep
 * button ("E2E ctl sleepbtn 1 142": EV_KEY, KEY_SLEEP) and the power button
 * ("E2E ctl powerbtn 1 116": EV_KEY, KEY_POWER), on which it powers off.
 */

#define DISK0_BYTES (1ull << 20)
#define DISK1_BYTES (4ull << 20)
#define WAIT_MS	    60000

static char out[1 << 20];
static size_t out_len;
static int console_in = -1; /* the guest's console input (start_vm), or -1 */

/* Waits up to timeout_ms for what in the console output (the pipe fd, read
 * into out); false if it did not come or the VM stopped first. */
static bool wait_console(struct ember_vm *vm, int fd, const char *what, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		ssize_t r;
		while (out_len + 1 < sizeof(out) &&
		       (r = read(fd, out + out_len, sizeof(out) - 1 - out_len)) > 0)
			out_len += (size_t)r;
		out[out_len] = 0;
		if (strstr(out, what))
			return true;
		if (now_ms() > end || ember_vm_wait(vm, 0, NULL) == 0)
			return false;
		usleep(20000);
	}
}

/* A VM of the e2e guest (kernel and initramfs from E2E_VMLINUX and
 * E2E_INITRD) with cmdline extra and the device options given as pairs
 * (key, value, ..., NULL); console into the pipe p (made here). */
static struct ember_vm *start_vm(const char *cmdline, const char *initrd, int p[2], ...)
{
	REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	struct ember_config *cfg = NULL;
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&cfg));
	if (ember_config_set(cfg, "kernel", env_or("E2E_VMLINUX", "o/e2e/vmlinux"), &err) < 0 ||
	    (initrd && ember_config_set(cfg, "initrd", initrd, &err) < 0) ||
	    (cmdline && ember_config_set(cfg, "cmdline", cmdline, &err) < 0) ||
	    ember_config_set(cfg, "mem", "256M", &err) < 0 ||
	    ember_config_set(cfg, "log-level", "error", &err) < 0)
		TEST_FAIL("configuration: %s", err.msg);
	va_list ap;
	va_start(ap, p);
	const char *k;
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);
		if (ember_config_set(cfg, k, v, &err) < 0)
			TEST_FAIL("configuration: %s %s: %s", k, v, err.msg);
	}
	va_end(ap);
	if (ember_config_set_console(cfg, console_in, p[1]) < 0 ||
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

/* The VM's control socket, served by a control thread of this process
 * (with its seccomp filter, as under `ember run --socket`), and a client
 * connected to it: what the tests send their requests through. */
static struct ember_ctl *serve(struct ember_vm *vm, struct ember_ctl_server **srv, char *path,
			       size_t len)
{
	struct ember_error err = {0};
	snprintf(path, len, "%s/ember-ctlacpi-%d.sock", env_or("TMPDIR", "/tmp"), (int)getpid());
	unlink(path);
	if (ember_ctl_server_start(vm, path, NULL, srv, &err) < 0)
		TEST_FAIL("ember_ctl_server_start: %s", err.msg);
	struct ember_ctl *c = NULL;
	if (ember_ctl_connect(path, 20000, &c, &err) < 0)
		TEST_FAIL("ember_ctl_connect %s: %s", path, err.msg);
	return c;
}

#define NEED(what, ms)                                                                    \
	do {                                                                              \
		if (!wait_console(vm, p[0], (what), (ms)))                                \
			TEST_FAIL("no \"%s\" from the guest; console:\n%s", (what), out); \
	} while (0)

KVM_TEST_T(ctl_acpi_rtc_and_disk_resize_reach_the_guest, 300)
{
	char img[4096];
	snprintf(img, sizeof(img), "%s/ember-ctlacpi-XXXXXX", env_or("TMPDIR", "/tmp"));
	int fd = mkstemp(img);
	REQUIRE(fd >= 0);
	REQUIRE_OK(ftruncate(fd, DISK0_BYTES));
	char cmdline[512];
	snprintf(cmdline, sizeof(cmdline),
		 "console=ttyS0 panic=-1 pci=noearly quiet i8042.noaux i8042.nomux i8042.dumbkbd "
		 "e2e.cpus=1 e2e.mem=%llu e2e.echo=0 e2e.action=ctl",
		 (unsigned long long)GUEST_MEM);
	int p[2];
	struct ember_error err = {0};
	struct ember_vm *vm =
	    start_vm(cmdline, env_or("E2E_INITRD", "o/e2e/initramfs.cpio"), p, "disk", img, NULL);
	NEED("E2E ctl ready", 120000);
	if (strstr(out, "E2E-FAIL"))
		TEST_FAIL("the guest's checks failed:\n%s", out);
	struct ember_ctl_server *srv = NULL;
	char sock[512];
	struct ember_ctl *ctl = serve(vm, &srv, sock, sizeof(sock));

	/* GPE 5: the guest's _EVT calls the DSDT's G005, which acknowledges it */
	CHECK_ERR(ember_ctl_gpe(ctl, EMBER_GPE_COUNT, &err), -ENOENT);
	CHECK_STR(ember_ctl_error_code(ctl), "not-found");
	REQUIRE_OK(ember_ctl_gpe(ctl, 5, &err));
	struct ember_acpi_stats as = {0};
	uint64_t end = now_ms() + WAIT_MS;
	for (;;) {
		REQUIRE_OK(ember_vm_acpi_stats(vm, &as, &err));
		if (as.gpe_handled[5] || now_ms() > end)
			break;
		usleep(20000);
	}
	test_log("GPE 5: injected %" PRIu64 ", handled by the guest's AML %" PRIu64
		 " (event register reads %" PRIu64 ")",
		 as.gpe[5], as.gpe_handled[5], as.evt_reads);
	CHECK_EQ(as.gpe_handled[5], 1);
	CHECK_EQ(as.gpe_handled[4], 0);

	/* the RTC: the guest armed an alarm (AIE), so IRQ 8 goes up */
	CHECK_OK(ember_ctl_rtc(ctl, &err));
	NEED("E2E ctl rtc irq", WAIT_MS);

	/* disk resize: refused shrink, then 1 MiB -> 4 MiB, seen without a reboot */
	CHECK_ERR(ember_ctl_disk_resize(ctl, 0, DISK0_BYTES / 2, &err), -EINVAL);
	CHECK_ERR(ember_ctl_disk_resize(ctl, 1, DISK1_BYTES, &err), -ENODEV);
	CHECK_STR(ember_ctl_error_code(ctl), "no-device");
	REQUIRE_OK(ember_ctl_disk_resize(ctl, 0, DISK1_BYTES, &err));
	char want[64];
	snprintf(want, sizeof(want), "E2E ctl vda size %llu",
		 (unsigned long long)(DISK1_BYTES / 512));
	NEED(want, WAIT_MS);
	NEED("E2E ctl vda grown write ok", WAIT_MS);
	char buf[32] = {0};
	CHECK_EQ(pread(fd, buf, 17, (off_t)(DISK1_BYTES - 8 * 512)), 17);
	CHECK(!memcmp(buf, "GUEST-WROTE-GROWN", 17));

	/* the buttons: KEY_SLEEP, then KEY_POWER, on which the guest powers off */
	REQUIRE_OK(ember_ctl_sleepbtn(ctl, &err));
	NEED("E2E ctl sleepbtn 1 142", WAIT_MS);
	REQUIRE_OK(ember_ctl_powerbtn(ctl, &err));
	NEED("E2E ctl powerbtn 1 116", WAIT_MS);
	struct ember_run_result res;
	if (ember_vm_wait(vm, 30000, &res) < 0)
		TEST_FAIL("the guest did not power off after the power button; console:\n%s", out);
	CHECK_EQ(res.reason, EMBER_STOP_POWEROFF);
	REQUIRE_OK(ember_vm_acpi_stats(vm, &as, &err));
	CHECK_EQ(as.power_button, 1);
	CHECK_EQ(as.sleep_button, 1);
	if (strstr(out, "E2E-FAIL"))
		TEST_FAIL("the guest's checks failed:\n%s", out);
	ember_ctl_close(ctl);
	ember_ctl_server_stop(srv);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
	close(fd);
	unlink(img);
}

/* A NIC hot-added to a running guest (hotplug-slots=1; the tap E2E_TAP,
 * 10.0.3.1/24, made by run.sh in this process's network namespace) appears
 * as eth0 and passes traffic (the guest pings the tap); removed, it goes
 * (the guest unbinds the card when its slot's _STA reads 0, see init.sh)
 * and the slot takes a new card. */
KVM_TEST_T(ctl_net_hotplug_add_use_remove, 300)
{
	const char *tap = getenv("E2E_TAP");
	if (!tap || !*tap)
		TEST_FAIL("no E2E_TAP (tests/e2e/run.sh makes the tap and names it)");
	char cmdline[512], spec[128];
	snprintf(cmdline, sizeof(cmdline),
		 "console=ttyS0 panic=-1 pci=noearly quiet i8042.noaux i8042.nomux i8042.dumbkbd "
		 "e2e.cpus=1 e2e.mem=%llu e2e.echo=0 e2e.action=hotplug",
		 (unsigned long long)GUEST_MEM);
	snprintf(spec, sizeof(spec), "tap=%s,mac=52:54:00:e2:e0:07", tap);
	int p[2];
	struct ember_error err = {0};
	struct ember_vm *vm = start_vm(cmdline, env_or("E2E_INITRD", "o/e2e/initramfs.cpio"), p,
				       "hotplug-slots", "1", NULL);
	NEED("E2E hp ready", 120000);
	struct ember_ctl_server *srv = NULL;
	char sock[512];
	struct ember_ctl *ctl = serve(vm, &srv, sock, sizeof(sock));
	unsigned slot = 99;
	uint64_t t0 = now_ms();
	if (ember_ctl_net_add(ctl, spec, &slot, &err) < 0)
		TEST_FAIL("net add through the socket: %s", err.msg);
	CHECK_EQ(slot, 0);
	CHECK_ERR(ember_ctl_net_add(ctl, spec, &slot, &err), -ENOSPC);
	NEED("E2E hp used", WAIT_MS);
	test_log("eth0 up and pinged %" PRIu64 " ms after the add", now_ms() - t0);
	CHECK(strstr(out, "E2E hp mac 52:54:00:e2:e0:07") != NULL);
	CHECK(strstr(out, "E2E ok hp_ping") != NULL);

	/* remove: the guest is told, lets go, the slot is free again */
	t0 = now_ms();
	int r;
	while ((r = ember_ctl_net_remove(ctl, 0, &err)) == -EBUSY && now_ms() < t0 + WAIT_MS)
		(void)wait_console(vm, p[0], "E2E hp gone", 20); /* the console meanwhile */
	if (r < 0)
		TEST_FAIL("net remove through the socket: %s; console:\n%s", err.msg, out);
	NEED("E2E hp gone", WAIT_MS);
	test_log("removed %" PRIu64 " ms after the request", now_ms() - t0);
	CHECK(strstr(out, "E2E ok hp_eth0_gone") != NULL);
	CHECK_ERR(ember_ctl_net_remove(ctl, 0, &err), -ENODEV);
	REQUIRE_OK(ember_ctl_net_add(ctl, spec, &slot, &err));
	CHECK_EQ(slot, 0);
	if (strstr(out, "E2E-FAIL"))
		TEST_FAIL("the guest's checks failed:\n%s", out);
	ember_ctl_close(ctl);
	ember_ctl_server_stop(srv);
	ember_vm_stop(vm);
	ember_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
}
