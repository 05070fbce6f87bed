/* tests/kvm/pvh_vm.c - real Ember VMs whose kernel is a bare PVH test guest: build one, read its console. */
#include "pvh_vm.h"
#include "../lib/test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pvh_tmpfile(const char *what, char *path, size_t len)
{
	const char *dir = getenv("TMPDIR"); /* the KVM sandbox's /tmp is read-only */
	snprintf(path, len, "%s/ember-pvh-%s-XXXXXX", dir && *dir ? dir : "/tmp", what);
	int fd = mkstemp(path);
	if (fd < 0)
		TEST_FAIL("mkstemp %s: %s", path, strerror(errno));
	return fd;
}

void pvh_write_all(int fd, const void *p, size_t n)
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

struct ember_vm *pvh_vm_create(struct pvh_image img, const char *cmdline, unsigned cpus,
			       const char *const *keys, int *console_fd)
{
	return pvh_vm_create_log(img, cmdline, cpus, keys, console_fd, NULL, NULL);
}

struct ember_vm *pvh_vm_create_log(struct pvh_image img, const char *cmdline, unsigned cpus,
				   const char *const *keys, int *console_fd, ember_log_fn log,
				   void *opaque)
{
	char kpath[4200], cpath[4200];
	int kfd = pvh_tmpfile("kernel", kpath, sizeof(kpath));
	pvh_write_all(kfd, img.data, img.size);
	close(kfd);
	*console_fd = pvh_tmpfile("console", cpath, sizeof(cpath));
	unlink(cpath);

	struct ember_config *cfg = NULL;
	struct ember_error err = {0};
	if (ember_config_new(&cfg) < 0)
		TEST_FAIL("ember_config_new");
	char ncpus[16];
	snprintf(ncpus, sizeof(ncpus), "%u", cpus);
	/* root= on the command line: no initramfs is wanted */
	char line[1024];
	snprintf(line, sizeof(line), "root=/dev/none %s", cmdline);
	if (ember_config_set(cfg, "kernel", kpath, &err) < 0 ||
	    ember_config_set(cfg, "cmdline", line, &err) < 0 ||
	    ember_config_set(cfg, "mem", "64M", &err) < 0 ||
	    ember_config_set(cfg, "cpus", ncpus, &err) < 0 ||
	    ember_config_set(cfg, "log-level", "error", &err) < 0)
		TEST_FAIL("configuration: %s", err.msg);
	for (size_t i = 0; keys && keys[i]; i += 2)
		if (ember_config_set(cfg, keys[i], keys[i + 1], &err) < 0)
			TEST_FAIL("configuration: %s", err.msg);
	if (ember_config_set_console(cfg, -1, *console_fd) < 0)
		TEST_FAIL("ember_config_set_console");
	if (log)
		ember_config_set_log(cfg, log, opaque);
	if (ember_config_resolve(cfg, &err) < 0)
		TEST_FAIL("ember_config_resolve: %s", err.msg);
	char fmt[64];
	if (ember_config_get(cfg, "kernel-format", fmt, sizeof(fmt)) < 0 || strcmp(fmt, "elf-pvh"))
		TEST_FAIL("the guest image is not taken as an ELF PVH kernel (%s)", fmt);
	struct ember_vm *vm = NULL;
	int r = ember_vm_create(cfg, &vm, &err);
	ember_config_free(cfg);
	unlink(kpath);
	if (r < 0)
		TEST_FAIL("ember_vm_create: %s", err.msg);
	return vm;
}

char *pvh_vm_console(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0 || end > (16 << 20))
		TEST_FAIL("console output: %lld bytes", (long long)end);
	char *buf = calloc(1, (size_t)end + 1);
	if (!buf || pread(fd, buf, (size_t)end, 0) != end)
		TEST_FAIL("reading the console output");
	size_t k = 0;
	for (off_t i = 0; i < end; i++)
		if (buf[i] != '\r')
			buf[k++] = buf[i] ? buf[i] : '?';
	buf[k] = 0;
	return buf;
}
