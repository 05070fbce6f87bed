/* tests/unit/vmm_config.c - unit tests of the configuration: sizes, keys, `ember run` arguments, resolve, --dry-run output. */
#include "../lib/test.h"
#include "vmm_fixtures.h"

#include "../../vmm/boot/boot.h"
#include "../../vmm/config.h"

#include <ember/vmm.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(vmm_parse_size_suffixes)
{
	uint64_t v;
	CHECK_OK(ember_parse_size("256M", 1 << 20, &v));
	CHECK_EQ(v, 256ull << 20);
	CHECK_OK(ember_parse_size("1G", 1 << 20, &v));
	CHECK_EQ(v, 1ull << 30);
	CHECK_OK(ember_parse_size("2g", 1 << 20, &v));
	CHECK_EQ(v, 2ull << 30);
	CHECK_OK(ember_parse_size("1024K", 1 << 20, &v));
	CHECK_EQ(v, 1ull << 20);
	CHECK_OK(ember_parse_size("512", 1 << 20, &v));
	CHECK_EQ(v, 512ull << 20);
	CHECK_OK(ember_parse_size("4096B", 1 << 20, &v));
	CHECK_EQ(v, 4096);
	CHECK_OK(ember_parse_size("16MiB", 1 << 20, &v));
	CHECK_EQ(v, 16ull << 20);
	CHECK_OK(ember_parse_size("16MB", 1 << 20, &v));
	CHECK_EQ(v, 16ull << 20);
	CHECK_OK(ember_parse_size("1T", 1 << 20, &v));
	CHECK_EQ(v, 1ull << 40);
	CHECK_OK(ember_parse_size("0", 1, &v));
	CHECK_EQ(v, 0);
	const char *bad[] = {"",       "M",	"-1", "1.5G", "10X", "10 M",
			     "10MiBs", "0x100", " 1", "1Bi",  NULL};
	for (int i = 0; bad[i]; i++)
		if (ember_parse_size(bad[i], 1 << 20, &v) != -EINVAL)
			TEST_FAIL("\"%s\" accepted as a size", bad[i]);
	CHECK_ERR(ember_parse_size(NULL, 1, &v), -EINVAL);
	CHECK_ERR(ember_parse_size("99999999999999999999", 1, &v), -ERANGE);
	CHECK_ERR(ember_parse_size("17179869184G", 1, &v), -ERANGE);
	CHECK_ERR(ember_parse_size("18446744073709551615", 2, &v), -ERANGE);
}

TEST(vmm_config_defaults)
{
	struct ember_config c;
	vmm_config_init(&c);
	CHECK_EQ(c.mem_size, 256ull << 20);
	CHECK_EQ(c.cpus, 1);
	CHECK_EQ(c.mem_backing, EMBER_MEM_ANON);
	CHECK(!c.hugepages);
	CHECK_STR(c.busybox, "/bin/busybox");
	CHECK_EQ(c.interactive, -1);
	CHECK_EQ(c.console_in, 0);
	CHECK_EQ(c.console_out, 1);
	CHECK(c.console_escape);
	CHECK_STR(c.kernel, "");
	CHECK(!c.resolved);
}

#define CHECK_SET_BAD(c, key, val, want, what)                                                \
	do {                                                                                  \
		struct ember_error e_ = {0};                                                  \
		CHECK_ERR(ember_config_set((c), (key), (val), &e_), (want));                  \
		if (!strstr(e_.msg, (what)))                                                  \
			TEST_FAIL("%s=%s: message \"%s\" lacks \"%s\"", (key), (val), e_.msg, \
				  (what));                                                    \
		CHECK_EQ(e_.code, (want));                                                    \
	} while (0)

TEST(vmm_config_set_values)
{
	struct ember_config c;
	vmm_config_init(&c);
	CHECK_OK(ember_config_set(&c, "mem", "1G", NULL));
	CHECK_EQ(c.mem_size, 1ull << 30);
	CHECK_OK(ember_config_set(&c, "mem", "64", NULL));
	CHECK_EQ(c.mem_size, 64ull << 20);
	CHECK_OK(ember_config_set(&c, "cpus", "4", NULL));
	CHECK_EQ(c.cpus, 4);
	CHECK_OK(ember_config_set(&c, "cpus", "254", NULL));
	CHECK_OK(ember_config_set(&c, "kernel", "/k", NULL));
	CHECK_STR(c.kernel, "/k");
	CHECK_OK(ember_config_set(&c, "initrd", "builtin", NULL));
	CHECK(c.builtin_initrd);
	CHECK_OK(ember_config_set(&c, "initrd", "/i", NULL));
	CHECK(!c.builtin_initrd);
	CHECK_STR(c.initrd, "/i");
	CHECK_OK(ember_config_set(&c, "append", "a=1", NULL));
	CHECK_OK(ember_config_set(&c, "append", "b=2", NULL));
	CHECK_STR(c.cmdline_append, "a=1 b=2");
	CHECK_OK(ember_config_set(&c, "mem-backing", "memfd", NULL));
	CHECK_EQ(c.mem_backing, EMBER_MEM_MEMFD);
	CHECK_OK(ember_config_set(&c, "hugepages", "on", NULL));
	CHECK(c.hugepages);
	CHECK_OK(ember_config_set(&c, "interactive", "off", NULL));
	CHECK_EQ(c.interactive, 0);
	CHECK_OK(ember_config_set(&c, "interactive", "auto", NULL));
	CHECK_EQ(c.interactive, -1);

	CHECK_SET_BAD(&c, "mem", "lots", -EINVAL, "not a size");
	CHECK_SET_BAD(&c, "mem", "1M", -EINVAL, "less than the minimum 16 MiB");
	CHECK_SET_BAD(&c, "mem", "2T", -EINVAL, "more than the maximum");
	CHECK_SET_BAD(&c, "mem", "99999999999999999999", -EINVAL, "too large");
	CHECK_SET_BAD(&c, "mem", "33M1", -EINVAL, "not a size");
	CHECK_SET_BAD(&c, "mem", "16388K", -EINVAL, "2 MiB"); /* hugepages is on */
	CHECK_OK(ember_config_set(&c, "hugepages", "off", NULL));
	CHECK_SET_BAD(&c, "mem", "16387K", -EINVAL, "4 KiB");
	CHECK_SET_BAD(&c, "cpus", "0", -EINVAL, "out of range 1..254");
	CHECK_SET_BAD(&c, "cpus", "255", -EINVAL, "out of range");
	CHECK_SET_BAD(&c, "cpus", "two", -EINVAL, "not a number");
	CHECK_SET_BAD(&c, "cpus", "2x", -EINVAL, "not a number");
	CHECK_SET_BAD(&c, "cpus", "-1", -EINVAL, "not a number");
	CHECK_SET_BAD(&c, "cpus", "99999999999999999999999", -EINVAL, "not a number");
	CHECK_SET_BAD(&c, "mem-backing", "file", -EINVAL, "anon or memfd");
	CHECK_SET_BAD(&c, "hugepages", "maybe", -EINVAL, "on or off");
	CHECK_SET_BAD(&c, "interactive", "sometimes", -EINVAL, "on, off or auto");
	CHECK_SET_BAD(&c, "kernel", "", -EINVAL, "empty");
	CHECK_SET_BAD(&c, "colour", "blue", -ENOENT, "unknown configuration key 'colour'");
	char *longv = malloc(5000);
	memset(longv, 'x', 4999);
	longv[4999] = 0;
	CHECK_SET_BAD(&c, "cmdline", longv, -ENAMETOOLONG, "at most 4095");
	CHECK_SET_BAD(&c, "kernel", longv, -ENAMETOOLONG, "kernel");
	longv[3000] = 0;
	CHECK_OK(ember_config_set(&c, "append", longv, NULL));
	CHECK_SET_BAD(&c, "append", longv, -ENAMETOOLONG, "append");
	free(longv);
	/* values that failed left the old ones */
	CHECK_EQ(c.cpus, 254);
	CHECK_EQ(c.mem_size, 64ull << 20);
}

static int parse(struct ember_config *c, unsigned *flags, struct ember_error *err, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	va_start(ap, err);
	for (char *a; argc < 32 && (a = va_arg(ap, char *));)
		argv[argc++] = a;
	va_end(ap);
	return ember_config_parse_args(c, argc, argv, flags, err);
}

TEST(vmm_config_parse_args)
{
	struct ember_config c;
	unsigned fl = 99;
	struct ember_error err = {0};
	vmm_config_init(&c);
	REQUIRE_OK(parse(&c, &fl, &err, "--kernel", "/boot/k", "-i", "/tmp/i", "--cmdline=a b",
			 "-p", "x=1", "--append=y=2", "-m", "512M", "--cpus=4", "--mem-backing",
			 "memfd", "--dry-run", "--no-interactive", NULL));
	CHECK_EQ(fl, EMBER_ARGS_DRY_RUN);
	CHECK_STR(c.kernel, "/boot/k");
	CHECK_STR(c.initrd, "/tmp/i");
	CHECK_STR(c.cmdline, "a b");
	CHECK_STR(c.cmdline_append, "x=1 y=2");
	CHECK_EQ(c.mem_size, 512ull << 20);
	CHECK_EQ(c.cpus, 4);
	CHECK_EQ(c.mem_backing, EMBER_MEM_MEMFD);
	CHECK_EQ(c.interactive, 0);

	vmm_config_init(&c);
	REQUIRE_OK(parse(&c, &fl, &err, "-h", NULL));
	CHECK_EQ(fl, EMBER_ARGS_HELP);
	REQUIRE_OK(parse(&c, &fl, &err, "-kvmlinux", "-c2", "-m1G", "--hugepages", "-n", NULL));
	CHECK_STR(c.kernel, "vmlinux");
	CHECK_EQ(c.cpus, 2);
	CHECK_EQ(c.mem_size, 1ull << 30);
	CHECK(c.hugepages);
	CHECK_EQ(fl, EMBER_ARGS_DRY_RUN);
	REQUIRE_OK(parse(&c, &fl, &err, NULL));
	CHECK_EQ(fl, 0);

#define CHECK_ARGS_BAD(what, ...)                                                 \
	do {                                                                      \
		struct ember_config c_;                                           \
		struct ember_error e_ = {0};                                      \
		vmm_config_init(&c_);                                             \
		CHECK_ERR(parse(&c_, NULL, &e_, __VA_ARGS__, NULL), -EINVAL);     \
		if (!strstr(e_.msg, (what)))                                      \
			TEST_FAIL("message \"%s\" lacks \"%s\"", e_.msg, (what)); \
	} while (0)
	CHECK_ARGS_BAD("unknown option '--frobnicate'", "--frobnicate");
	CHECK_ARGS_BAD("unknown option '-z'", "-z");
	CHECK_ARGS_BAD("unknown option '--kern'", "--kern", "x");
	CHECK_ARGS_BAD("needs a value", "--kernel");
	CHECK_ARGS_BAD("needs a value", "-m");
	CHECK_ARGS_BAD("unexpected argument 'vmlinuz'", "vmlinuz");
	CHECK_ARGS_BAD("takes no value", "--dry-run=yes");
	CHECK_ARGS_BAD("takes no value", "--hugepages=1");
	CHECK_ARGS_BAD("not a size", "--mem", "big");
	CHECK_ARGS_BAD("out of range", "--cpus", "0");
	CHECK_ARGS_BAD("not a number", "-c", "");
	CHECK_ARGS_BAD("2 MiB", "--mem", "17M", "--hugepages");
	CHECK_ARGS_BAD("2 MiB", "--hugepages", "--mem", "17M");
	/* QEMU's spellings: recognised, with Ember's option (issue 9) */
	CHECK_ARGS_BAD("'-kernel' is QEMU's spelling; in Ember use --kernel", "-kernel", "bzImage");
	CHECK_ARGS_BAD("use --initrd", "-initrd", "x");
	CHECK_ARGS_BAD("--cmdline STR", "-append", "console=ttyS0");
	CHECK_ARGS_BAD("use --cpus", "-smp", "4");
	CHECK_ARGS_BAD("always on stdin/stdout", "-nographic");
	CHECK_ARGS_BAD("always uses KVM", "-enable-kvm");
	/* QEMU's -m is Ember's -m */
	vmm_config_init(&c);
	REQUIRE_OK(parse(&c, &fl, &err, "-m", "512", NULL));
	CHECK_EQ(c.mem_size, 512ull << 20);
	CHECK(strstr(ember_config_usage(), "--kernel") != NULL);
	CHECK(strstr(ember_config_usage(), "Exit status") != NULL);
}

static char *tmpfile_with(const void *data, size_t len)
{
	static char names[4][64];
	static int next;
	char *name = names[next++ % 4];
	snprintf(name, 64, "/tmp/ember-unit-XXXXXX");
	int fd = mkstemp(name);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		TEST_FAIL("temp file");
	close(fd);
	return name;
}

TEST(vmm_config_resolve_and_format)
{
	size_t len;
	uint8_t *bz = fx_bzimage(4096, &len);
	char *kernel = tmpfile_with(bz, len);
	char *initrd = tmpfile_with("initrd", 6);
	char *junk = tmpfile_with("junk junk junk", 14);
	struct ember_config c;
	struct ember_error err = {0};

	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "initrd", initrd, NULL));
	REQUIRE_OK(ember_config_set(&c, "append", "foo=bar", NULL));
	REQUIRE_OK(ember_config_set(&c, "cpus", "2", NULL));
	int r = ember_config_resolve(&c, &err);
	if (r < 0)
		TEST_FAIL("%s", err.msg);
	CHECK(c.resolved);
	CHECK_EQ(c.kernel_format, EMBER_KERNEL_BZIMAGE);
	CHECK(!c.builtin_initrd);
	CHECK_STR(c.cmdline, EMBER_DEFAULT_CMDLINE " foo=bar");
	CHECK_STR(c.cmdline_append, "");
	CHECK_EQ(c.interactive, 0);		  /* no console input */
	CHECK_OK(ember_config_resolve(&c, &err)); /* idempotent */
	CHECK_STR(c.cmdline, EMBER_DEFAULT_CMDLINE " foo=bar");

	char out[4096];
	int n = ember_config_format(&c, out, sizeof(out));
	CHECK_EQ(n, (int)strlen(out));
	char want[4096];
	snprintf(want, sizeof(want),
		 "kernel: %s\n"
		 "kernel-format: bzImage\n"
		 "boot: bzimage (auto: a payload Ember cannot decompress; the guest does)\n"
		 "initrd: %s\n"
		 "cmdline: " EMBER_DEFAULT_CMDLINE " foo=bar\n"
		 "mem: 256M (268435456 bytes)\n"
		 "mem-backing: anon\n"
		 "hugepages: off\n"
		 "seccomp: kill\n"
		 "cpus: 2\n"
		 "reboot: exit\n"
		 "console: ttyS0 in=fd-1 out=fd1 escape=ctrl-a\n",
		 kernel, initrd);
	/* the configuration, then the board's device list */
	if (strncmp(out, want, strlen(want)))
		TEST_FAIL("--dry-run output:\n%s\nwanted first:\n%s", out, want);
	CHECK(strstr(out + strlen(want),
		     "device com1: 16550A UART (ttyS0); pio 0x3f8-0x3ff; irq 4; acpi COM1 "
		     "PNP0501\n") != NULL);
	/* snprintf contract: short buffers are cut and NUL-terminated */
	char small[10];
	CHECK_EQ(ember_config_format(&c, small, sizeof(small)), n);
	CHECK_EQ(strlen(small), 9);
	CHECK_EQ(ember_config_format(&c, NULL, 0), n);

	/* a given cmdline replaces the default; append still appends */
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "cmdline", "console=ttyS0", NULL));
	REQUIRE_OK(ember_config_set(&c, "append", "x", NULL));
	REQUIRE_OK(ember_config_resolve(&c, &err));
	CHECK_STR(c.cmdline, "console=ttyS0 x");

	/* errors name the file and the reason */
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", "/nonexistent/vmlinuz", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -ENOENT);
	CHECK(strstr(err.msg, "/nonexistent/vmlinuz") != NULL);
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", junk, NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -ENOEXEC);
	CHECK(strstr(err.msg, "not a Linux kernel") != NULL);
	CHECK(strstr(err.msg, junk) != NULL);
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", "/tmp", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -EISDIR);
	CHECK(strstr(err.msg, "kernel /tmp: is a directory") != NULL);
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", "/dev/null", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -ENOEXEC);
	CHECK(strstr(err.msg, "not a regular file") != NULL);
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "initrd", "/nonexistent/initrd", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -ENOENT);
	CHECK(strstr(err.msg, "initrd /nonexistent/initrd") != NULL);
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "initrd", "builtin", NULL));
	REQUIRE_OK(ember_config_set(&c, "busybox", "/bin/true", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -ENOEXEC);
	CHECK(strstr(err.msg, "static") != NULL);
	/* a command line that grows too long with the appended part */
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	char *longv = malloc(4000);
	memset(longv, 'x', 3999);
	longv[3999] = 0;
	REQUIRE_OK(ember_config_set(&c, "cmdline", longv, NULL));
	REQUIRE_OK(ember_config_set(&c, "append", longv, NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -E2BIG);
	free(longv);
	/* bad values set directly in the struct are caught */
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	c.cpus = 0;
	CHECK_ERR(ember_config_resolve(&c, &err), -EINVAL);
	c.cpus = 1;
	c.mem_size = 12345;
	CHECK_ERR(ember_config_resolve(&c, &err), -EINVAL);
	unlink(kernel);
	unlink(initrd);
	unlink(junk);
	free(bz);
}

/* Every image check runs in resolve, before guest memory or /dev/kvm, and
 * names its culprit (issue 9 section 3). */
TEST(vmm_config_resolve_checks_the_image)
{
	size_t len;
	uint8_t *bz = fx_bzimage(4096, &len);
	char *kernel = tmpfile_with(bz, len);
	char *trunc = tmpfile_with(bz, len - 100);
	char *initrd = tmpfile_with("initrd", 6);
	char *empty = tmpfile_with("", 0);
	struct ember_config c;
	struct ember_error err = {0};
#define RESOLVE_BAD(want, what, ...)                                                  \
	do {                                                                          \
		vmm_config_init(&c);                                                  \
		c.console_in = -1;                                                    \
		const char *kv_[] = {__VA_ARGS__, NULL};                              \
		for (int i_ = 0; kv_[i_]; i_ += 2)                                    \
			REQUIRE_OK(ember_config_set(&c, kv_[i_], kv_[i_ + 1], NULL)); \
		CHECK_ERR(ember_config_resolve(&c, &err), (want));                    \
		if (!strstr(err.msg, (what)))                                         \
			TEST_FAIL("message \"%s\" lacks \"%s\"", err.msg, (what));    \
		CHECK(!c.resolved);                                                   \
	} while (0)
	/* a truncated bzImage fails resolve (so --dry-run), also with an
	 * impossible --mem: the image is the culprit named */
	RESOLVE_BAD(-ENOEXEC, "truncated", "kernel", trunc, "initrd", initrd);
	CHECK(strstr(err.msg, trunc) != NULL);
	RESOLVE_BAD(-ENOEXEC, "truncated", "kernel", trunc, "initrd", initrd, "mem", "1T");
	/* the kernel does not fit: named, with the memory it needs */
	RESOLVE_BAD(-E2BIG, "needs guest RAM up to 24 MiB", "kernel", kernel, "initrd", initrd,
		    "mem", "20M");
	CHECK(strstr(err.msg, kernel) != NULL);
	CHECK(strstr(err.msg, "--mem 25M") != NULL);
	CHECK(strstr(err.msg, initrd) == NULL);
	/* an empty initrd is a bad initrd, named */
	RESOLVE_BAD(-ENOEXEC, "the file is empty", "kernel", kernel, "initrd", empty);
	CHECK(strstr(err.msg, empty) != NULL);
	RESOLVE_BAD(-EISDIR, "initrd /tmp: is a directory", "kernel", kernel, "initrd", "/tmp");
	/* too many vCPUs for the memory: refused with the number needed
	 * (24 MiB of kernel, 4 MiB, 1 MiB per vCPU) */
	RESOLVE_BAD(-E2BIG, "use --mem 283M", "kernel", kernel, "initrd", initrd, "cpus", "254");
	CHECK(strstr(err.msg, "254 vCPUs") != NULL);
	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "initrd", initrd, NULL));
	REQUIRE_OK(ember_config_set(&c, "cpus", "254", NULL));
	REQUIRE_OK(ember_config_set(&c, "mem", "283M", NULL));
	CHECK_OK(ember_config_resolve(&c, &err));
	/* a command line the kernel cannot take (its cmdline_size is 2047) */
	char line[2100];
	memset(line, 'a', sizeof(line) - 1);
	line[2048] = 0;
	RESOLVE_BAD(-E2BIG, "2048 bytes is longer than kernel", "kernel", kernel, "initrd", initrd,
		    "cmdline", line);
	/* the failed resolves left the configuration as it was */
	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "initrd", initrd, NULL));
	REQUIRE_OK(ember_config_set(&c, "append", "x=1", NULL));
	REQUIRE_OK(ember_config_set(&c, "mem", "20M", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -E2BIG);
	CHECK_STR(c.cmdline_append, "x=1");
	CHECK_STR(c.cmdline, "");
	unlink(kernel);
	unlink(trunc);
	unlink(initrd);
	unlink(empty);
	free(bz);
}

/* `-k KERNEL` with neither --initrd nor root=: the built-in initramfs, as
 * plain `ember run` has, instead of a panic for lack of a root fs. */
TEST(vmm_config_resolve_no_initrd_no_root_uses_builtin)
{
	if (access("/bin/busybox", R_OK) != 0)
		TEST_SKIP("no /bin/busybox (busybox-static) here");
	size_t len;
	uint8_t *bz = fx_bzimage(4096, &len);
	char *kernel = tmpfile_with(bz, len);
	struct ember_config c;
	struct ember_error err = {0};
	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	if (ember_config_resolve(&c, &err) < 0)
		TEST_FAIL("%s", err.msg);
	CHECK(c.builtin_initrd);
	CHECK(strstr(c.cmdline, " quiet") != NULL); /* as for every built-in initramfs */
	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "append", "root=/dev/vda", NULL));
	REQUIRE_OK(ember_config_resolve(&c, &err));
	CHECK(!c.builtin_initrd);
	/* without a usable busybox the message says why one was wanted */
	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "busybox", "/nonexistent/busybox", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -ENOENT);
	CHECK(strstr(err.msg, "no --initrd and no root=") != NULL);
	unlink(kernel);
	free(bz);
}

/* With no kernel, the host's own kernel and the built-in initramfs. */
TEST(vmm_config_resolve_default_kernel)
{
	struct ember_config c;
	struct ember_error err = {0};
	vmm_config_init(&c);
	c.console_in = -1;
	int r = ember_config_resolve(&c, &err);
	if (r == -ENOENT || r == -EACCES)
		TEST_SKIP("no host kernel or busybox here: %s", err.msg);
	if (r < 0)
		TEST_FAIL("%s", err.msg);
	CHECK(!strncmp(c.kernel, "/boot/vmlinuz-", 14));
	CHECK(c.builtin_initrd);
	CHECK_EQ(c.interactive, 0);
	CHECK(strstr(c.cmdline, "quiet") != NULL);
	char out[8192];
	ember_config_format(&c, out, sizeof(out));
	CHECK(strstr(out, "initrd: builtin\n") != NULL);
	CHECK(strstr(out, "interactive: off\n") != NULL);
}

/* The public, opaque API: new/free, typed setters and getters, get. */
TEST(vmm_config_opaque_api)
{
	struct ember_config *c = NULL;
	char v[64];
	CHECK_ERR(ember_config_new(NULL), -EINVAL);
	REQUIRE_OK(ember_config_new(&c));
	CHECK_EQ(ember_config_mem_size(c), 256ull << 20);
	CHECK_EQ(ember_config_cpus(c), 1);
	CHECK_EQ(ember_config_log_level(c), EMBER_LOG_INFO);
	CHECK_EQ(ember_config_get(c, "mem", v, sizeof(v)), 4);
	CHECK_STR(v, "256M");
	CHECK_OK(ember_config_set(c, "cpus", "3", NULL));
	CHECK_OK(ember_config_set(c, "log-level", "debug", NULL));
	CHECK_OK(ember_config_set(c, "console-escape", "off", NULL));
	CHECK_EQ(ember_config_cpus(c), 3);
	CHECK_EQ(ember_config_log_level(c), EMBER_LOG_DEBUG);
	CHECK_EQ(ember_config_get(c, "cpus", v, sizeof(v)), 1);
	CHECK_STR(v, "3");
	CHECK(ember_config_get(c, "console-escape", v, sizeof(v)) > 0);
	CHECK_STR(v, "off");
	CHECK(ember_config_get(c, "interactive", v, sizeof(v)) > 0);
	CHECK_STR(v, "auto");
	CHECK(ember_config_get(c, "resolved", v, sizeof(v)) > 0);
	CHECK_STR(v, "off");
	CHECK_OK(ember_config_set(c, "initrd", "builtin", NULL));
	CHECK(ember_config_get(c, "initrd", v, sizeof(v)) > 0);
	CHECK_STR(v, "builtin");
	/* snprintf contract, unknown keys */
	CHECK_EQ(ember_config_get(c, "busybox", NULL, 0), (int)strlen("/bin/busybox"));
	CHECK_ERR(ember_config_get(c, "colour", v, sizeof(v)), -ENOENT);
	CHECK_ERR(ember_config_get(NULL, "cpus", v, sizeof(v)), -EINVAL);
	/* the typed setters reach the fields the VMM uses */
	CHECK_OK(ember_config_set_console(c, -1, 7));
	CHECK_ERR(ember_config_set_console(c, -2, 1), -EINVAL);
	ember_config_set_start_ns(c, 1234);
	ember_config_set_log(c, NULL, c);
	CHECK_EQ(c->console_in, -1);
	CHECK_EQ(c->console_out, 7);
	CHECK_EQ(c->start_ns, 1234);
	CHECK(c->log_opaque == c);
	CHECK_OK(ember_config_set(c, "disk", "path=/a.img", NULL));
	CHECK_OK(ember_config_set(c, "disk", "/b.img,ro=on", NULL));
	CHECK_EQ(ember_config_get(c, "disks", v, sizeof(v)), 1);
	CHECK_STR(v, "2");
	ember_config_free(c); /* frees the disk list too (ASan checks) */
	ember_config_free(NULL);
}

#define CHECK_DISK_BAD(spec, want, what)                                                           \
	do {                                                                                       \
		struct ember_config c_;                                                            \
		struct ember_error e_ = {0};                                                       \
		vmm_config_init(&c_);                                                              \
		CHECK_ERR(ember_config_set(&c_, "disk", (spec), &e_), (want));                     \
		if (!strstr(e_.msg, (what)))                                                       \
			TEST_FAIL("disk %s: message \"%s\" lacks \"%s\"", (spec), e_.msg, (what)); \
		CHECK_EQ(c_.ndevs, 0);                                                             \
		vmm_config_fini(&c_);                                                              \
	} while (0)

/* --disk: sub-options parsed and checked when given, entries appended. */
TEST(vmm_config_disk_options)
{
	struct ember_config c;
	struct ember_error err = {0};
	unsigned fl;
	vmm_config_init(&c);
	REQUIRE_OK(parse(&c, &fl, &err, "--disk", "path=/x.img,ro=on,serial=abc", "--disk=/y.img",
			 "--disk", "ro=off,path=/z.img", NULL));
	REQUIRE_EQ(c.ndevs, 3);
	CHECK_STR(c.devs[0].type->name, "disk");
	CHECK_STR(vmm_devopt_get(&c.devs[0], "path"), "/x.img");
	CHECK(vmm_devopt_bool(&c.devs[0], "ro", false));
	CHECK_STR(vmm_devopt_get(&c.devs[0], "serial"), "abc");
	CHECK_STR(vmm_devopt_get(&c.devs[1], "path"), "/y.img"); /* a bare value is the path */
	CHECK(!vmm_devopt_bool(&c.devs[1], "ro", false));
	CHECK(vmm_devopt_get(&c.devs[1], "serial") == NULL);
	CHECK(!vmm_devopt_bool(&c.devs[2], "ro", true));
	CHECK_EQ(c.devs[0].index, 0);
	CHECK_EQ(c.devs[2].index, 2);
	/* a deep copy owns its own strings */
	struct ember_config copy;
	REQUIRE_OK(vmm_config_copy(&copy, &c));
	vmm_config_fini(&c);
	REQUIRE_EQ(copy.ndevs, 3);
	CHECK_STR(vmm_devopt_get(&copy.devs[2], "path"), "/z.img");
	CHECK_STR(copy.devs[0].spec, "path=/x.img,ro=on,serial=abc");
	vmm_config_fini(&copy);
	CHECK_EQ(copy.ndevs, 0);

	CHECK_DISK_BAD("path=/x,rw=on", -EINVAL, "--disk: unknown key 'rw'");
	CHECK_DISK_BAD("path=/x,ro=maybe", -EINVAL, "--disk: key 'ro': 'maybe' is not on or off");
	CHECK_DISK_BAD("ro=on", -EINVAL, "--disk: missing key 'path'");
	CHECK_DISK_BAD("", -EINVAL, "--disk: no sub-options");
	CHECK_DISK_BAD("path=", -EINVAL, "key 'path' has an empty value");
	CHECK_DISK_BAD("path=/x,,ro=on", -EINVAL, "empty sub-option");
	CHECK_DISK_BAD("path=/x,", -EINVAL, "empty sub-option");
	CHECK_DISK_BAD("path=/x,ro", -EINVAL, "'ro' is not key=value");
	CHECK_DISK_BAD("path=/x,path=/y", -EINVAL, "key 'path' given twice");
	CHECK_DISK_BAD("path=/x,serial=123456789012345678901", -ENAMETOOLONG,
		       "'serial' is longer than 20 bytes");
	CHECK_ARGS_BAD("--disk: unknown key 'rw'", "--disk", "path=/x,rw=on");
	CHECK_ARGS_BAD("option '--disk' needs a value", "--disk");
	CHECK_ARGS_BAD("--disk: missing key 'path'", "--disk=ro=on");
	CHECK(strstr(ember_config_usage(), "--disk path=IMG") != NULL);
}

/* The parser is generic: a kind is a table entry (here a test one with a
 * number, an optional value and no implied key, as --vsock or --rng will be). */
TEST(vmm_config_devopt_generic)
{
	static const struct vmm_devopt_type t = {
	    .name = "thing",
	    .what = "test device",
	    .keys = {{.name = "cid", .type = VMM_DEVOPT_U64},
		     {.name = "on", .type = VMM_DEVOPT_BOOL}},
	    .value_optional = true,
	};
	struct ember_config c;
	struct ember_error err = {0};
	vmm_config_init(&c);
	REQUIRE_OK(vmm_config_add_device(&c, &t, "", &err)); /* --thing alone */
	REQUIRE_OK(vmm_config_add_device(&c, &t, "cid=42,on=yes", &err));
	REQUIRE_EQ(c.ndevs, 2);
	CHECK_EQ(c.devs[0].nkv, 0);
	CHECK_EQ(vmm_devopt_u64(&c.devs[0], "cid", 7), 7);
	CHECK_EQ(vmm_devopt_u64(&c.devs[1], "cid", 7), 42);
	CHECK(vmm_devopt_bool(&c.devs[1], "on", false));
	CHECK_EQ(c.devs[1].index, 1);
	CHECK_ERR(vmm_config_add_device(&c, &t, "cid=4x", &err), -EINVAL);
	CHECK(strstr(err.msg, "--thing: key 'cid': '4x' is not a number") != NULL);
	CHECK_ERR(vmm_config_add_device(&c, &t, "99999999999999999999", &err), -EINVAL);
	CHECK(strstr(err.msg, "not key=value") != NULL); /* no implied key */
	CHECK_ERR(vmm_config_add_device(&c, &t, "cid=99999999999999999999", &err), -EINVAL);
	CHECK_EQ(c.ndevs, 2);
	vmm_config_fini(&c);
}

/* resolve: each disk image must open with the mode asked; --dry-run lists them. */
TEST(vmm_config_disk_resolve)
{
	size_t len;
	uint8_t *bz = fx_bzimage(4096, &len);
	char *kernel = tmpfile_with(bz, len);
	char *img = tmpfile_with("disk image", 10);
	struct ember_config c;
	struct ember_error err = {0};
	char spec[256];

	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	snprintf(spec, sizeof(spec), "path=%s,serial=s1", img);
	REQUIRE_OK(ember_config_set(&c, "disk", spec, NULL));
	snprintf(spec, sizeof(spec), "%s,ro=on", img);
	REQUIRE_OK(ember_config_set(&c, "disk", spec, NULL));
	int r = ember_config_resolve(&c, &err);
	if (r < 0)
		TEST_FAIL("%s", err.msg);
	char out[8192], want[1024];
	ember_config_format(&c, out, sizeof(out));
	snprintf(want, sizeof(want),
		 "device disk0: virtio-blk disk path=%s,serial=s1; mmio 0xd0000000-0xd0000fff; "
		 "irq 16",
		 img);
	if (!strstr(out, want))
		TEST_FAIL("--dry-run output lacks disk0:\n%s", out);
	snprintf(want, sizeof(want),
		 "device disk1: virtio-blk disk %s,ro=on; mmio 0xd0001000-0xd0001fff; irq 17", img);
	if (!strstr(out, want))
		TEST_FAIL("--dry-run output lacks the disks:\n%s", out);
	vmm_config_fini(&c);

	/* s3-blk: cache= and engine= take only their values */
	const char *bad_vals[][2] = {
	    {"cache=sometimes", "--disk cache=sometimes: not writeback or none"},
	    {"engine=aio", "--disk engine=aio: not io_uring or sync"}};
	for (unsigned i = 0; i < 2; i++) {
		vmm_config_init(&c);
		REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
		snprintf(spec, sizeof(spec), "path=%s,%s", img, bad_vals[i][0]);
		REQUIRE_OK(ember_config_set(&c, "disk", spec, NULL));
		CHECK_ERR(ember_config_resolve(&c, &err), -EINVAL);
		CHECK(strstr(err.msg, bad_vals[i][1]) != NULL);
		vmm_config_fini(&c);
	}
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	snprintf(spec, sizeof(spec), "path=%s,cache=none,engine=sync", img);
	REQUIRE_OK(ember_config_set(&c, "disk", spec, NULL));
	CHECK_OK(ember_config_resolve(&c, &err));
	vmm_config_fini(&c);

	/* a missing image names the option and the path */
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "disk", "path=/nonexistent/disk.img", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -ENOENT);
	CHECK(strstr(err.msg, "--disk path=/nonexistent/disk.img") != NULL);
	CHECK(!c.resolved);
	vmm_config_fini(&c);
	/* a directory: read-write open fails; read-only opens but is no disk */
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "disk", "path=/tmp", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -EISDIR);
	CHECK(strstr(err.msg, "--disk path=/tmp") != NULL);
	vmm_config_fini(&c);
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "disk", "path=/tmp,ro=on", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -EINVAL);
	CHECK(strstr(err.msg, "not a regular file or block device") != NULL);
	vmm_config_fini(&c);
	unlink(kernel);
	unlink(img);
	free(bz);
}

/* --root: the first disk as the root file system, through the built-in initramfs. */
TEST(vmm_config_root)
{
	size_t len;
	uint8_t *bz = fx_bzimage(4096, &len);
	char *kernel = tmpfile_with(bz, len);
	char *img = tmpfile_with("disk image", 10);
	struct ember_config c;
	struct ember_error err = {0};
	unsigned fl;
	char v[64];

	vmm_config_init(&c);
	REQUIRE_OK(parse(&c, &fl, &err, "--root", NULL));
	CHECK(c.root_fs);
	CHECK_EQ(ember_config_get(&c, "root", v, sizeof(v)), 2);
	CHECK_STR(v, "on");
	vmm_config_fini(&c);
	CHECK_ARGS_BAD("option '--root=on' takes no value", "--root=on");
	CHECK(strstr(ember_config_usage(), "--root") != NULL);

	/* no disk to boot from; an initrd file besides */
	vmm_config_init(&c);
	c.console_in = -1;
	REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(&c, "root", "on", NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -EINVAL);
	CHECK(strstr(err.msg, "--root: no --disk to boot from") != NULL);
	REQUIRE_OK(ember_config_set(&c, "disk", img, NULL));
	REQUIRE_OK(ember_config_set(&c, "initrd", img, NULL));
	CHECK_ERR(ember_config_resolve(&c, &err), -EINVAL);
	CHECK(strstr(err.msg, "cannot be used with --initrd") != NULL);
	vmm_config_fini(&c);

	/* resolved: the built-in initramfs, root=/dev/vda added unless a root= is given */
	if (vmm_busybox_check("/bin/busybox", NULL) == 0) {
		vmm_config_init(&c);
		c.console_in = -1;
		REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
		REQUIRE_OK(ember_config_set(&c, "disk", img, NULL));
		REQUIRE_OK(ember_config_set(&c, "root", "on", NULL));
		int r = ember_config_resolve(&c, &err);
		if (r < 0)
			TEST_FAIL("%s", err.msg);
		CHECK(c.builtin_initrd);
		CHECK(strstr(c.cmdline, " root=/dev/vda rw") != NULL);
		vmm_config_fini(&c);
		vmm_config_init(&c);
		c.console_in = -1;
		REQUIRE_OK(ember_config_set(&c, "kernel", kernel, NULL));
		REQUIRE_OK(ember_config_set(&c, "disk", img, NULL));
		REQUIRE_OK(ember_config_set(&c, "disk", img, NULL));
		REQUIRE_OK(ember_config_set(&c, "root", "on", NULL));
		REQUIRE_OK(ember_config_set(&c, "append", "root=/dev/vdb ro", NULL));
		r = ember_config_resolve(&c, &err);
		if (r < 0)
			TEST_FAIL("%s", err.msg);
		CHECK(strstr(c.cmdline, "root=/dev/vda") == NULL);
		CHECK(strstr(c.cmdline, "root=/dev/vdb ro") != NULL);
		vmm_config_fini(&c);
	} else {
		TEST_LOG("no static /bin/busybox: the resolved half not checked");
	}
	unlink(kernel);
	unlink(img);
	free(bz);
}

TEST(vmm_stop_reasons)
{
	CHECK_STR(ember_stop_reason_name(EMBER_STOP_POWEROFF), "poweroff");
	CHECK_STR(ember_stop_reason_name(EMBER_STOP_REBOOT), "reboot");
	CHECK_STR(ember_stop_reason_name(EMBER_STOP_CRASH), "crash");
	CHECK_STR(ember_stop_reason_name((enum ember_stop_reason)99), "invalid");
	CHECK_EQ(ember_stop_reason_exit_status(EMBER_STOP_POWEROFF), 0);
	CHECK_EQ(ember_stop_reason_exit_status(EMBER_STOP_REBOOT), 32);
	CHECK_EQ(ember_stop_reason_exit_status(EMBER_STOP_CRASH), 33);
	CHECK_EQ(ember_stop_reason_exit_status(EMBER_STOP_REQUESTED), 34);
	CHECK_EQ(ember_stop_reason_exit_status(EMBER_STOP_ERROR), 1);
	CHECK_STR(ember_stop_reason_name(EMBER_STOP_PANIC), "panic");
	CHECK_EQ(ember_stop_reason_exit_status(EMBER_STOP_PANIC), 35);
	CHECK_STR(ember_stop_reason_name(EMBER_STOP_HALTED), "halted");
	CHECK_EQ(ember_stop_reason_exit_status(EMBER_STOP_HALTED), 36);
	CHECK_EQ(ember_library_version(), EMBER_VMM_API_VERSION);
}

TEST(vmm_vm_create_needs_resolved_config)
{
	struct ember_config c;
	struct ember_error err = {0};
	struct ember_vm *vm = (struct ember_vm *)1;
	vmm_config_init(&c);
	CHECK_ERR(ember_vm_create(&c, &vm, &err), -EINVAL);
	CHECK(strstr(err.msg, "not resolved") != NULL);
	CHECK(vm == (struct ember_vm *)1 || vm == NULL);
	CHECK_ERR(ember_vm_create(NULL, &vm, &err), -EINVAL);
	struct ember_run_result res;
	CHECK_ERR(ember_run(&c, &res, &err), -EINVAL);
	CHECK_ERR(ember_vm_run(NULL, &res), -EINVAL);
	ember_vm_destroy(NULL);
	ember_vm_request_stop(NULL);
	char buf[8];
	CHECK_EQ(ember_vm_format_registers(NULL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "");
}

static void add(struct ember_config *c, const char *kind, const char *spec)
{
	struct ember_error err = {0};
	REQUIRE(vmm_config_add_device(c, vmm_devopt_type_find(kind), spec, &err) == 0);
}

/* A restore gives a clone's devices their own host side: only that, each
 * device keeping its place, its index and what the guest saw. */
TEST(vmm_config_override_device_changes_only_the_host_side)
{
	struct ember_config c;
	struct ember_error err = {0};
	vmm_config_init(&c);
	add(&c, "disk", "/a.img,serial=first");
	add(&c, "net", "tap=tap0,mac=52:54:00:12:34:56");
	add(&c, "disk", "path=/b.img,ro=on");
	add(&c, "vsock", "cid=7,socket=/run/v.sock");

	REQUIRE_OK(vmm_config_override_device(&c, "disk", 1, "path=/b2.img", &err));
	CHECK_STR(vmm_devopt_get(&c.devs[2], "path"), "/b2.img");
	CHECK(vmm_devopt_bool(&c.devs[2], "ro", false));
	CHECK_EQ(c.devs[2].index, 1);
	CHECK_STR(vmm_devopt_get(&c.devs[0], "path"), "/a.img"); /* disk 0 untouched */

	REQUIRE_OK(vmm_config_override_device(&c, "disk", 0, "path=/a2.img", &err));
	CHECK_STR(vmm_devopt_get(&c.devs[0], "path"), "/a2.img");
	CHECK_STR(vmm_devopt_get(&c.devs[0], "serial"), "first");
	CHECK_EQ(c.devs[0].index, 0);

	/* fd replaces tap (and tap fd); the MAC stays */
	REQUIRE_OK(vmm_config_override_device(&c, "net", 0, "fd=5", &err));
	CHECK(vmm_devopt_get(&c.devs[1], "tap") == NULL);
	CHECK_EQ(vmm_devopt_u64(&c.devs[1], "fd", 0), 5);
	CHECK_STR(vmm_devopt_get(&c.devs[1], "mac"), "52:54:00:12:34:56");
	REQUIRE_OK(vmm_config_override_device(&c, "net", 0, "tap=clone1", &err));
	CHECK_STR(vmm_devopt_get(&c.devs[1], "tap"), "clone1");
	CHECK(vmm_devopt_get(&c.devs[1], "fd") == NULL);

	REQUIRE_OK(vmm_config_override_device(&c, "vsock", 0, "socket=/run/v2.sock", &err));
	CHECK_STR(vmm_devopt_get(&c.devs[3], "socket"), "/run/v2.sock");
	CHECK_EQ(vmm_devopt_u64(&c.devs[3], "cid", 0), 7);
	CHECK_EQ(c.ndevs, 4);

	/* what the guest saw, refused, the configuration unchanged */
	CHECK_EQ(vmm_config_override_device(&c, "disk", 0, "serial=other", &err), -EINVAL);
	CHECK(strstr(err.msg, "'serial' is what the guest saw") != NULL);
	CHECK_EQ(vmm_config_override_device(&c, "disk", 0, "path=/x.img,ro=on", &err), -EINVAL);
	CHECK_EQ(vmm_config_override_device(&c, "net", 0, "mac=52:54:00:00:00:01", &err), -EINVAL);
	CHECK_EQ(vmm_config_override_device(&c, "vsock", 0, "cid=8", &err), -EINVAL);
	CHECK_STR(vmm_devopt_get(&c.devs[0], "path"), "/a2.img");
	CHECK(!vmm_devopt_bool(&c.devs[0], "ro", false));
	/* not key=value, empty, no such device, not a device with a host side */
	CHECK_EQ(vmm_config_override_device(&c, "disk", 0, "/y.img", &err), -EINVAL);
	CHECK_EQ(vmm_config_override_device(&c, "disk", 0, "path=", &err), -EINVAL);
	CHECK_EQ(vmm_config_override_device(&c, "disk", 0, "", &err), -EINVAL);
	CHECK_EQ(vmm_config_override_device(&c, "disk", 2, "path=/c.img", &err), -ENOENT);
	CHECK(strstr(err.msg, "has no --disk 2 (it has 2)") != NULL);
	CHECK_EQ(vmm_config_override_device(&c, "vsock", 1, "socket=/s", &err), -ENOENT);
	CHECK_EQ(vmm_config_override_device(&c, "rng", 0, "x=1", &err), -EINVAL);
	CHECK_EQ(vmm_config_override_device(&c, NULL, 0, "path=/x", &err), -EINVAL);
	/* a path too long for the sub-options */
	char *big = malloc(EMBER_PATH_MAX + 300);
	REQUIRE(big);
	memset(big, 'a', EMBER_PATH_MAX + 299);
	memcpy(big, "path=/", 6);
	big[EMBER_PATH_MAX + 299] = 0;
	CHECK_EQ(vmm_config_override_device(&c, "disk", 0, big, &err), -ENAMETOOLONG);
	free(big);
	CHECK_STR(vmm_devopt_get(&c.devs[0], "path"), "/a2.img");
	vmm_config_fini(&c);
}
