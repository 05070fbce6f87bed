/* tests/e2e/e2e_vm.h - the e2e guest built as a library VM, and its console read back: shared by the C drivers (lifecycle.c, snapshot.c). */
#ifndef EMBER_TESTS_E2E_VM_H
#define EMBER_TESTS_E2E_VM_H

#include "../lib/test.h"

#include <ember/vmm.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The guest is Debian's kernel (the PVH vmlinux cut out of it) with the
 * e2e initramfs (tests/e2e/init.sh), both built by tests/e2e/e2e.mk into
 * o/e2e/ (E2E_VMLINUX, E2E_INITRD override). init.sh's actions give the
 * evidence: "count" prints a counter kept in the guest's shell, "flood"
 * prints numbered lines, then powers off.
 */

static inline uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}

#define GUEST_MEM (256ull << 20)

/* Builds a VM booting the e2e guest with init action `action`; console
 * output to out_fd, no console input; then each configuration key and value
 * of sets (pairs, NULL-ended; NULL: none), which may override the initrd
 * and add devices. */
static inline struct ember_vm *guest_vm_with(const char *action, unsigned cpus, const char *extra,
					     int out_fd, const char *const *sets)
{
	struct ember_config *cfg = NULL;
	struct ember_error err = {0};
	if (ember_config_new(&cfg) < 0)
		TEST_FAIL("ember_config_new");
	char cmdline[1024];
	snprintf(cmdline, sizeof(cmdline),
		 "console=ttyS0 panic=-1 pci=noearly quiet i8042.noaux i8042.nomux i8042.dumbkbd "
		 "e2e.cpus=%u e2e.mem=%llu e2e.echo=0 e2e.action=%s %s",
		 cpus, (unsigned long long)GUEST_MEM, action, extra ? extra : "");
	char ncpus[16];
	snprintf(ncpus, sizeof(ncpus), "%u", cpus);
	if (ember_config_set(cfg, "kernel", env_or("E2E_VMLINUX", "o/e2e/vmlinux"), &err) < 0 ||
	    ember_config_set(cfg, "initrd", env_or("E2E_INITRD", "o/e2e/initramfs.cpio"), &err) <
		0 ||
	    ember_config_set(cfg, "cmdline", cmdline, &err) < 0 ||
	    ember_config_set(cfg, "mem", "256M", &err) < 0 ||
	    ember_config_set(cfg, "cpus", ncpus, &err) < 0)
		TEST_FAIL("configuration: %s", err.msg);
	for (unsigned i = 0; sets && sets[i]; i += 2)
		if (ember_config_set(cfg, sets[i], sets[i + 1], &err) < 0)
			TEST_FAIL("configuration %s=%s: %s", sets[i], sets[i + 1], err.msg);
	if (ember_config_set_console(cfg, -1, out_fd) < 0 ||
	    ember_config_set(cfg, "log-level", "error", &err) < 0)
		TEST_FAIL("configuration: %s", err.msg);
	if (ember_config_resolve(cfg, &err) < 0)
		TEST_FAIL("ember_config_resolve: %s", err.msg);
	struct ember_vm *vm = NULL;
	int r = ember_vm_create(cfg, &vm, &err);
	ember_config_free(cfg); /* the VM keeps its own copy */
	if (r < 0)
		TEST_FAIL("ember_vm_create: %s", err.msg);
	return vm;
}

/* The same with a --disk image (disk NULL: none). */
static inline struct ember_vm *guest_vm_disk(const char *action, unsigned cpus, const char *extra,
					     int out_fd, const char *disk)
{
	const char *sets[] = {"disk", disk, NULL};
	return guest_vm_with(action, cpus, extra, out_fd, disk ? sets : NULL);
}

static inline struct ember_vm *guest_vm(const char *action, unsigned cpus, const char *extra,
					int out_fd)
{
	return guest_vm_disk(action, cpus, extra, out_fd, NULL);
}

static inline enum ember_vm_state state_of(struct ember_vm *vm)
{
	struct ember_vm_info info;
	if (ember_vm_query(vm, &info) < 0)
		TEST_FAIL("ember_vm_query");
	return info.state;
}

/* A growing buffer of console output read from a pipe, without the '\r'
 * of the guest tty's "\r\n" (raw counts the bytes as read). */
struct capture {
	int fd; /* read end, non-blocking */
	char *buf;
	size_t len, cap, raw;
};

static inline void capture_pipe(struct capture *c, int p[2], bool small)
{
	memset(c, 0, sizeof(*c));
	if (pipe2(p, O_CLOEXEC) < 0)
		TEST_FAIL("pipe2");
	if (small && fcntl(p[1], F_SETPIPE_SZ, 4096) < 0)
		TEST_FAIL("F_SETPIPE_SZ");
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	c->fd = p[0];
}

/* Reads what is there now; returns the bytes read. */
static inline size_t slurp(struct capture *c)
{
	size_t got = 0;
	for (;;) {
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 1 << 20;
			c->buf = realloc(c->buf, c->cap + 1);
			if (!c->buf)
				TEST_FAIL("out of memory");
		}
		ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (r <= 0)
			break;
		c->raw += (size_t)r;
		got += (size_t)r;
		char *in = c->buf + c->len;
		size_t kept = 0;
		for (size_t i = 0; i < (size_t)r; i++)
			if (in[i] != '\r')
				in[kept++] = in[i];
		c->len += kept;
	}
	c->buf[c->len] = 0;
	return got;
}

/* Reads until pattern shows up, at most timeout_ms; true if it did. */
static inline bool read_until(struct capture *c, const char *pattern, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		slurp(c);
		if (c->buf && strstr(c->buf, pattern))
			return true;
		if (now_ms() > end)
			return false;
		usleep(5000);
	}
}

/* Checks that the "PREFIX N" lines of text count 0, 1, 2, ... without a gap
 * or a repeat; returns how many there were, -1 (with a message) if not. */
static inline long check_sequence(const char *text, const char *prefix)
{
	long expect = 0;
	size_t plen = strlen(prefix);
	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		if (!strncmp(p, prefix, plen) && eol) {
			long v = strtol(p + plen, NULL, 10);
			if (v != expect) {
				test_log("sequence broken: '%.*s' where %ld was due",
					 (int)(eol - p), p, expect);
				return -1;
			}
			expect++;
		}
		p = eol ? eol + 1 : NULL;
	}
	return expect;
}

#endif /* EMBER_TESTS_E2E_VM_H */
