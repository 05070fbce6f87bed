/* tests/unit/vmm_ratelimit_api.c - rate limits and the balloon through the library API, on a VM built on the mock hypervisor. */
#include "virtio_driver.h"
#include "../lib/test.h"
#include "../../devices/virtio/balloon.h"

#include "vmm_fixtures.h"

#include "../../vmm/config.h"
#include "../../vmm/vm.h"

#include <errno.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct ehv_x86_cpuid_entry cpuid[] = {
    {.function = 0, .eax = 0xd, .ebx = 0x756e6547, .edx = 0x49656e69, .ecx = 0x6c65746e},
    {.function = 1, .eax = 0x000906ea, .ebx = 0x00100800, .ecx = 0x7ffafbff, .edx = 0xbfebfbff},
    {.function = 0x80000000, .eax = 0x80000008},
};

/* Builds a VM on the mock with the given device options (key, value pairs). */
static struct ember_vm *mock_vm(struct ehv_hypervisor **hyp, char *kernel, const char *const *devs)
{
	REQUIRE_OK(fx_bzimage_file(kernel, 65536));
	struct ember_config *cfg;
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&cfg));
	REQUIRE_OK(ember_config_set_console(cfg, -1, -1));
	REQUIRE_OK(ember_config_set(cfg, "kernel", kernel, NULL));
	REQUIRE_OK(ember_config_set(cfg, "initrd", kernel, NULL));
	REQUIRE_OK(ember_config_set(cfg, "mem", "128M", NULL));
	for (unsigned i = 0; devs[i]; i += 2)
		if (ember_config_set(cfg, devs[i], devs[i + 1], &err) < 0)
			TEST_FAIL("set %s %s: %s", devs[i], devs[i + 1], err.msg);
	if (ember_config_resolve(cfg, &err) < 0)
		TEST_FAIL("resolve: %s", err.msg);
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, hyp));
	REQUIRE_OK(ehv_mock_set_supported_cpuid(*hyp, cpuid, sizeof(cpuid) / sizeof(cpuid[0])));
	struct ember_vm *vm;
	if (ember_vm_create_on(cfg, *hyp, &vm, &err) < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
	ember_config_free(cfg);
	return vm;
}

TEST(vmm_rate_limit_api_sets_and_reads_each_device)
{
	char kernel[] = "/tmp/ember-unit-rl-XXXXXX";
	char img[] = "/tmp/ember-unit-rl-img-XXXXXX";
	int fd = mkstemp(img);
	REQUIRE(fd >= 0);
	REQUIRE(ftruncate(fd, 1 << 20) == 0);
	close(fd);
	char disk[128];
	snprintf(disk, sizeof(disk), "path=%s,bw=10M/s,ops=500,ops-burst=50", img);
	const char *const devs[] = {"disk", disk, "rng", "bw=1K", "balloon", "", NULL};
	struct ehv_hypervisor *hyp;
	struct ember_vm *vm = mock_vm(&hyp, kernel, devs);
	struct ember_error err = {0};
	struct ember_rate_limit l;

	/* the command line's limits are in force, bursts resolved */
	REQUIRE_OK(ember_vm_get_rate_limit(vm, "disk0", &l, &err));
	CHECK_EQ(l.bytes_per_sec, 10ull << 20);
	CHECK_EQ(l.bytes_burst, 10ull << 20);
	CHECK_EQ(l.ops_per_sec, 500);
	CHECK_EQ(l.ops_burst, 50);
	REQUIRE_OK(ember_vm_get_rate_limit(vm, "rng0", &l, &err));
	CHECK_EQ(l.bytes_per_sec, 1024);
	CHECK_EQ(l.ops_per_sec, 0);

	/* changed at run time, read back */
	struct ember_rate_limit set = {.bytes_per_sec = 4096, .bytes_burst = 512};
	REQUIRE_OK(ember_vm_set_rate_limit(vm, "rng0", &set, &err));
	REQUIRE_OK(ember_vm_get_rate_limit(vm, "rng0", &l, &err));
	CHECK_EQ(l.bytes_per_sec, 4096);
	CHECK_EQ(l.bytes_burst, 512);
	set = (struct ember_rate_limit){0}; /* unlimited */
	REQUIRE_OK(ember_vm_set_rate_limit(vm, "disk0", &set, &err));
	REQUIRE_OK(ember_vm_get_rate_limit(vm, "disk0", &l, &err));
	CHECK_EQ(l.bytes_per_sec + l.bytes_burst + l.ops_per_sec + l.ops_burst, 0);

	/* errors name the device */
	CHECK_ERR(ember_vm_set_rate_limit(vm, "disk7", &set, &err), -ENODEV);
	CHECK(strstr(err.msg, "no device 'disk7'") != NULL);
	CHECK_ERR(ember_vm_set_rate_limit(vm, "balloon0", &set, &err), -EOPNOTSUPP);
	CHECK(strstr(err.msg, "balloon0 has no rate limiter") != NULL);
	CHECK_ERR(ember_vm_set_rate_limit(vm, "rng0.rx", &set, &err), -ENODEV);
	set = (struct ember_rate_limit){.ops_burst = 5};
	CHECK_ERR(ember_vm_set_rate_limit(vm, "rng0", &set, &err), -EINVAL);
	CHECK(strstr(err.msg, "a burst needs its rate") != NULL);
	CHECK_ERR(ember_vm_set_rate_limit(vm, NULL, &set, &err), -EINVAL);
	CHECK_ERR(ember_vm_set_rate_limit(vm, "rng0", NULL, &err), -EINVAL);
	CHECK_ERR(ember_vm_get_rate_limit(NULL, "rng0", &l, &err), -EINVAL);

	/* the balloon: the target reaches the device, in pages */
	struct ember_balloon_stats bs;
	REQUIRE_OK(ember_vm_balloon_set_target(vm, (64ull << 20) + 100, &err));
	REQUIRE_OK(ember_vm_balloon_stats(vm, &bs, &err));
	CHECK_EQ(bs.target_bytes, 64ull << 20);
	CHECK_EQ(bs.actual_bytes, 0); /* no driver */
	CHECK_EQ(bs.guest_valid, 0);
	CHECK_ERR(ember_vm_balloon_set_target(vm, 129ull << 20, &err), -EINVAL);
	CHECK(strstr(err.msg, "more than the guest's") != NULL);
	REQUIRE_OK(ember_vm_balloon_stats(vm, &bs, &err));
	CHECK_EQ(bs.target_bytes, 64ull << 20); /* unchanged by the refusal */
	CHECK_ERR(ember_vm_balloon_stats(vm, NULL, &err), -EINVAL);

	ember_vm_destroy(vm);
	ehv_hypervisor_close(hyp);
	unlink(kernel);

	/* a VM without a balloon or limits says so */
	char kernel2[] = "/tmp/ember-unit-rl-XXXXXX";
	const char *const none[] = {NULL};
	vm = mock_vm(&hyp, kernel2, none);
	CHECK_ERR(ember_vm_balloon_set_target(vm, 0, &err), -ENODEV);
	CHECK(strstr(err.msg, "no balloon") != NULL);
	CHECK_ERR(ember_vm_balloon_stats(vm, &bs, &err), -ENODEV);
	CHECK_ERR(ember_vm_get_rate_limit(vm, "rng0", &l, &err), -ENODEV);
	ember_vm_destroy(vm);
	ehv_hypervisor_close(hyp);
	unlink(kernel2);
	unlink(img);
}

/* --disk/--rng rate sub-options: sizes with suffixes and /s, checked when given. */
TEST(vmm_config_rate_limit_options)
{
	struct ember_config c;
	struct ember_error e = {0};
	vmm_config_init(&c);
	REQUIRE_OK(ember_config_set(&c, "rng", "bw=64K/s,bw-burst=4K,ops=100/s,ops-burst=10", &e));
	REQUIRE_OK(ember_config_set(&c, "disk", "path=/x.img,ops=1000", &e));
	REQUIRE_OK(ember_config_set(&c, "balloon", "reporting=off", &e));
	REQUIRE_EQ(c.ndevs, 3);
	CHECK_EQ(vmm_devopt_size(&c.devs[0], "bw", 0), 65536);
	CHECK_EQ(vmm_devopt_size(&c.devs[0], "bw-burst", 0), 4096);
	CHECK_EQ(vmm_devopt_size(&c.devs[0], "ops", 0), 100);
	CHECK_EQ(vmm_devopt_size(&c.devs[0], "ops-burst", 0), 10);
	CHECK_EQ(vmm_devopt_size(&c.devs[1], "ops", 0), 1000);
	CHECK_EQ(vmm_devopt_size(&c.devs[1], "bw", 7), 7);
	CHECK(!vmm_devopt_bool(&c.devs[2], "reporting", true));
	static const struct {
		const char *key, *spec, *msg;
	} bad[] = {
	    {"rng", "bw=fast", "--rng: key 'bw': 'fast' is not a rate (N[K|M|G|T][/s])"},
	    {"rng", "bw=1M/h", "--rng: key 'bw': '1M/h' is not a rate"},
	    {"rng", "bw=/s", "is not a rate"},
	    {"rng", "bw=1M,bw-burst=1M/s", "--rng: key 'bw-burst': '1M/s' is not a size"},
	    {"rng", "bw-burst=1M", "--rng: key 'bw-burst' needs key 'bw'"},
	    {"rng", "ops-burst=3", "--rng: key 'ops-burst' needs key 'ops'"},
	    {"rng", "bw=99999999999T", "--rng: key 'bw': '99999999999T' is too large"},
	    {"disk", "path=/x,ops=-1", "--disk: key 'ops': '-1' is not a rate"},
	    {"disk", "path=/x,iops=5", "--disk: unknown key 'iops'"},
	    {"balloon", "reporting=maybe", "--balloon: key 'reporting': 'maybe' is not on or off"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_ERR(ember_config_set(&c, bad[i].key, bad[i].spec, &e), -EINVAL);
		if (!strstr(e.msg, bad[i].msg))
			TEST_FAIL("--%s %s: \"%s\" lacks \"%s\"", bad[i].key, bad[i].spec, e.msg,
				  bad[i].msg);
	}
	CHECK_EQ(c.ndevs, 3);
	CHECK(strstr(ember_config_usage(), "bw=BYTES/s") != NULL);
	vmm_config_fini(&c);

	/* on the command line: "--rng bw=1M" and "--rng=bw=1M"; a bare --rng
	 * does not swallow the next option */
	vmm_config_init(&c);
	const char *argv[] = {"--rng",	   "bw=1M",	    "--rng=ops=5", "--rng",
			      "--balloon", "reporting=off", "--rng"};
	unsigned fl;
	REQUIRE_OK(ember_config_parse_args(&c, 7, (char *const *)argv, &fl, &e));
	REQUIRE_EQ(c.ndevs, 5);
	CHECK_EQ(vmm_devopt_size(&c.devs[0], "bw", 0), 1 << 20);
	CHECK_EQ(vmm_devopt_size(&c.devs[1], "ops", 0), 5);
	CHECK_EQ(c.devs[2].nkv, 0);
	CHECK_STR(c.devs[3].type->name, "balloon");
	CHECK(!vmm_devopt_bool(&c.devs[3], "reporting", true));
	CHECK_EQ(c.devs[4].nkv, 0);
	vmm_config_fini(&c);
}

/* --balloon reporting=off: VIRTIO_BALLOON_F_REPORTING is not offered. */
TEST(virtio_balloon_reporting_can_be_turned_off)
{
	struct vmm_mem mem;
	REQUIRE_OK(vmm_mem_create(&mem, 1 << 20, 1 << 20, 1 << 20, EMBER_MEM_ANON, false, NULL));
	struct bus *bus;
	REQUIRE_OK(bus_create("mmio", UINT64_MAX, &bus));
	struct virtio_balloon *b[2];
	struct virtio_mmio *t[2];
	for (int off = 0; off < 2; off++) {
		struct virtio_mmio_config cfg = {.mem = &mem};
		struct virtio_balloon_options o = {.no_reporting = off};
		REQUIRE_OK(virtio_balloon_create_opts(cfg, &o, &b[off], &t[off]));
		uint64_t base = 0xd0000000ull + 0x1000ull * (unsigned)off;
		REQUIRE_OK(dev_register(bus, base, VIRTIO_MMIO_WINDOW, virtio_mmio_dev(t[off])));
		struct tdrv_mmio m = {.bus = bus, .base = base};
		uint64_t offered = tdrv_probe(&m, VIRTIO_ID_BALLOON, 1ull << VIRTIO_F_VERSION_1);
		CHECK_EQ((offered >> VIRTIO_BALLOON_F_REPORTING) & 1, off ? 0 : 1);
		CHECK(offered & (1ull << VIRTIO_BALLOON_F_STATS_VQ));
		CHECK(offered & (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	}
	bus_destroy(bus);
	for (int i = 0; i < 2; i++) {
		dev_destroy(virtio_mmio_dev(t[i]));
		virtio_balloon_destroy(b[i]);
	}
	vmm_mem_destroy(&mem);
}
