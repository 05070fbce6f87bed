/* tests/unit/vmm_snapshot_mock.c - ember_vm_snapshot/ember_vm_restore on the mock hypervisor: the directory, a round trip, incremental layers, every corrupt snapshot refused, a VM made ahead, and the control server that waits for its restore request. */
#include "../lib/test.h"

#include "vmm_fixtures.h"

#include "../../vmm/arch/x86/layout.h"
#include "../../vmm/vm.h"

#include <ember/ctl.h>

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* A small supported-CPUID table (leaves 0 and 1 make the CPU identity). */
static const struct ehv_x86_cpuid_entry host_cpuid[] = {
    {.function = 0, .eax = 0xd, .ebx = 0x756e6547, .edx = 0x49656e69, .ecx = 0x6c65746e},
    {.function = 1, .eax = 0x000906ea, .ebx = 0x00100800, .ecx = 0x7ffafbff, .edx = 0xbfebfbff},
    {.function = 0x80000000, .eax = 0x80000008},
};

struct snap_fx {
	char tmp[64];	 /* a directory of the test's own */
	char kernel[96]; /* the synthetic bzImage */
	char disk[96];	 /* a disk image */
	struct ember_config *cfg;
	struct ehv_hypervisor *hyp;
	struct ember_vm *vm;
};

static struct ehv_hypervisor *mock_hyp(uint32_t leaf1_eax)
{
	struct ehv_hypervisor *hyp;
	struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&o, &hyp));
	struct ehv_x86_cpuid_entry t[3];
	memcpy(t, host_cpuid, sizeof(t));
	t[1].eax = leaf1_eax;
	REQUIRE_OK(ehv_mock_set_supported_cpuid(hyp, t, 3));
	return hyp;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, buf, len) == (ssize_t)len);
	close(fd);
}

static void fx_create(struct snap_fx *f, bool with_disk)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->tmp, sizeof(f->tmp), "/tmp/ember-unit-snap-XXXXXX");
	REQUIRE(mkdtemp(f->tmp));
	snprintf(f->kernel, sizeof(f->kernel), "%s/bzImage", f->tmp);
	size_t len;
	uint8_t *bz = fx_bzimage(65536, &len);
	REQUIRE(bz);
	write_file(f->kernel, bz, len);
	free(bz);
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&f->cfg));
	REQUIRE_OK(ember_config_set_console(f->cfg, -1, -1));
	REQUIRE_OK(ember_config_set(f->cfg, "kernel", f->kernel, NULL));
	REQUIRE_OK(ember_config_set(f->cfg, "initrd", f->kernel, NULL));
	REQUIRE_OK(ember_config_set(f->cfg, "cpus", "2", NULL));
	REQUIRE_OK(ember_config_set(f->cfg, "mem", "64M", NULL));
	if (with_disk) {
		snprintf(f->disk, sizeof(f->disk), "%s/disk.img", f->tmp);
		int fd = open(f->disk, O_RDWR | O_CREAT, 0600);
		REQUIRE(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
		close(fd);
		char spec[128];
		snprintf(spec, sizeof(spec), "path=%s", f->disk);
		if (ember_config_set(f->cfg, "disk", spec, &err) < 0)
			TEST_FAIL("disk: %s", err.msg);
	}
	if (ember_config_resolve(f->cfg, &err) < 0)
		TEST_FAIL("resolve: %s", err.msg);
	f->hyp = mock_hyp(0x000906ea);
	if (ember_vm_create_on(f->cfg, f->hyp, &f->vm, &err) < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
}

static void fx_destroy(struct snap_fx *f)
{
	ember_vm_destroy(f->vm);
	ehv_hypervisor_close(f->hyp);
	ember_config_free(f->cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->tmp);
	CHECK_EQ(system(cmd), 0);
}

/* The guest's state that a restore must bring back: a mark in memory, a
 * register of each vCPU (set before the start: the mock's vCPUs then idle). */
#define MARK_GPA 0x300000ull
static const char mark[] = "EMBER-SNAPSHOT-MARK";

static void fx_start(struct snap_fx *f)
{
	for (unsigned i = 0; i < 2; i++) {
		struct ehv_x86_regs regs;
		REQUIRE_OK(ehv_vcpu_get_regs(f->vm->vcpus[i], &regs));
		regs.rbx = 0x5eed0000 + i;
		REQUIRE_OK(ehv_vcpu_set_regs(f->vm->vcpus[i], &regs));
	}
	REQUIRE_OK(vmm_mem_write(&f->vm->mem, MARK_GPA, mark, sizeof(mark)));
	REQUIRE_OK(ember_vm_start(f->vm));
}

/* CRC-32 of the whole of RAM but the VM Generation ID (new at a restore). */
static uint32_t mem_crc(const struct ember_vm *vm)
{
	const uint8_t *h = vm->mem.host;
	uLong c = crc32_z(0, h, X86_VMGENID_ADDR);
	return (uint32_t)crc32_z(c, h + X86_VMGENID_ADDR + 16,
				 (size_t)(vm->mem.size - X86_VMGENID_ADDR - 16));
}

static struct ember_vm *restore_on(const char *dir, struct ehv_hypervisor *hyp, unsigned flags,
				   struct ember_error *err)
{
	struct ember_restore_opts o = {
	    .flags = flags, .console_in = -1, .console_out = -1, .hyp = hyp};
	struct ember_vm *vm = (struct ember_vm *)1;
	int r = ember_vm_restore(dir, &o, &vm, err);
	if (r < 0) {
		CHECK(vm == NULL); /* nothing left behind */
		CHECK_EQ(err->code, r);
		return NULL;
	}
	return vm;
}

TEST(vmm_snapshot_round_trip_on_the_mock)
{
	struct snap_fx f;
	fx_create(&f, false);
	fx_start(&f);
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/snap", f.tmp);
	struct ember_error err = {0};
	int r = ember_vm_snapshot(f.vm, dir, NULL, &err);
	if (r < 0)
		TEST_FAIL("snapshot: %s", err.msg);
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(f.vm, &info));
	CHECK_EQ(info.state, EMBER_VM_PAUSED); /* default: stays paused */
	/* a second snapshot into the same directory is refused */
	CHECK_ERR(ember_vm_snapshot(f.vm, dir, NULL, &err), -EEXIST);

	/* the parts are there; memory is sparse: fewer blocks than RAM */
	const char *parts[] = {"manifest",    "config",	       "vm.state", "vcpu0.state",
			       "vcpu1.state", "devices.state", "memory",   "pages"};
	for (unsigned i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char p[192];
		snprintf(p, sizeof(p), "%s/%s", dir, parts[i]);
		struct stat st;
		if (stat(p, &st) < 0)
			TEST_FAIL("missing part %s", parts[i]);
		if (!strcmp(parts[i], "memory")) {
			CHECK_EQ((uint64_t)st.st_size, 64ull << 20);
			CHECK((uint64_t)st.st_blocks * 512 < (16ull << 20));
		}
	}

	/* restored on another mock with the same CPU: memory, registers */
	struct ehv_hypervisor *hyp2 = mock_hyp(0x000906ea);
	struct ember_vm *vm2 = restore_on(dir, hyp2, EMBER_RESTORE_VERIFY_MEMORY, &err);
	if (!vm2)
		TEST_FAIL("restore: %s", err.msg);
	REQUIRE_OK(ember_vm_query(vm2, &info));
	CHECK_EQ(info.state, EMBER_VM_CREATED);
	CHECK_EQ(info.vcpus, 2);
	CHECK_EQ(info.mem_size, 64ull << 20);
	const char *m = vmm_mem_ptr(&vm2->mem, MARK_GPA, sizeof(mark));
	REQUIRE(m);
	CHECK(!memcmp(m, mark, sizeof(mark)));
	CHECK_EQ(mem_crc(vm2) == mem_crc(f.vm), true); /* the whole of RAM */
	for (unsigned i = 0; i < 2; i++) {
		struct ehv_x86_regs regs;
		REQUIRE_OK(ehv_vcpu_get_regs(vm2->vcpus[i], &regs));
		CHECK_EQ(regs.rbx, 0x5eed0000 + i);
	}
	/* a new VM Generation ID, and the clone's own */
	uint8_t g1[16], g2[16];
	REQUIRE_OK(ember_vm_generation_id(f.vm, g1));
	REQUIRE_OK(ember_vm_generation_id(vm2, g2));
	CHECK(memcmp(g1, g2, 16) != 0);
	/* copy-on-write: the restored guest's writes stay its own */
	REQUIRE_OK(vmm_mem_write(&vm2->mem, MARK_GPA, "X", 1));
	CHECK_EQ(((const char *)vmm_mem_ptr(&f.vm->mem, MARK_GPA, 1))[0], 'E');
	REQUIRE_OK(ember_vm_start(vm2));
	REQUIRE_OK(ember_vm_pause(vm2));
	ember_vm_destroy(vm2);
	ehv_hypervisor_close(hyp2);
	fx_destroy(&f);
}

TEST(vmm_snapshot_resume_flag_keeps_the_vm_running)
{
	struct snap_fx f;
	fx_create(&f, false);
	fx_start(&f);
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/snap", f.tmp);
	struct ember_error err = {0};
	struct ember_snapshot_opts o = {.flags = EMBER_SNAPSHOT_RESUME};
	if (ember_vm_snapshot(f.vm, dir, &o, &err) < 0)
		TEST_FAIL("snapshot: %s", err.msg);
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(f.vm, &info));
	CHECK_EQ(info.state, EMBER_VM_RUNNING);
	/* a snapshot that fails (no such parent) leaves a running VM running */
	CHECK(ember_vm_snapshot(f.vm, "/nonexistent-ember/dir/snap", NULL, &err) < 0);
	REQUIRE_OK(ember_vm_query(f.vm, &info));
	CHECK_EQ(info.state, EMBER_VM_RUNNING);
	/* a VM never started has nothing to save */
	struct snap_fx g;
	fx_create(&g, false);
	snprintf(dir, sizeof(dir), "%s/snap", g.tmp);
	CHECK_ERR(ember_vm_snapshot(g.vm, dir, NULL, &err), -EINVAL);
	fx_destroy(&g);
	fx_destroy(&f);
}

/* Incremental: only the pages written since the base; base + increment
 * equal the memory at the increment's moment. */
TEST(vmm_snapshot_incremental_layers_over_its_base)
{
	struct snap_fx f;
	fx_create(&f, false);
	fx_start(&f);
	char base[128], inc[128], inc2[128];
	snprintf(base, sizeof(base), "%s/base", f.tmp);
	snprintf(inc, sizeof(inc), "%s/inc", f.tmp);
	snprintf(inc2, sizeof(inc2), "%s/inc2", f.tmp);
	struct ember_error err = {0};
	/* an incremental needs this VM's last snapshot as its base */
	struct ember_snapshot_opts io = {.flags = EMBER_SNAPSHOT_INCREMENTAL, .base_dir = base};
	CHECK(ember_vm_snapshot(f.vm, inc, &io, &err) < 0);
	if (ember_vm_snapshot(f.vm, base, NULL, &err) < 0)
		TEST_FAIL("base: %s", err.msg);
	/* fill 8 MiB so that the base is large, then a full snapshot again */
	REQUIRE_OK(ember_vm_resume(f.vm));
	REQUIRE_OK(ember_vm_pause(f.vm));
	uint8_t *big = malloc(8 << 20);
	REQUIRE(big);
	memset(big, 0xa5, 8 << 20);
	REQUIRE_OK(vmm_mem_write(&f.vm->mem, 16 << 20, big, 8 << 20));
	free(big);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	REQUIRE(system(cmd) == 0);
	if (ember_vm_snapshot(f.vm, base, NULL, &err) < 0)
		TEST_FAIL("base: %s", err.msg);
	/* the guest writes two pages (the host's writes are seen by
	 * soft-dirty; the mock's dirty log marks the guest's) */
	REQUIRE_OK(vmm_mem_write(&f.vm->mem, MARK_GPA, "incremental", 12));
	REQUIRE_OK(vmm_mem_write(&f.vm->mem, 40 << 20, "far away", 9));
	REQUIRE_OK(ehv_mock_vm_mark_dirty(f.vm->hv, 40 << 20, 4096));
	if (ember_vm_snapshot(f.vm, inc, &io, &err) < 0)
		TEST_FAIL("incremental: %s", err.msg);
	/* another increment on this one's base is refused (not the last) */
	CHECK_ERR(ember_vm_snapshot(f.vm, inc2, &io, &err), -EINVAL);

	char p[192];
	struct stat sb, si;
	snprintf(p, sizeof(p), "%s/memory", base);
	REQUIRE(stat(p, &sb) == 0);
	snprintf(p, sizeof(p), "%s/memory", inc);
	REQUIRE(stat(p, &si) == 0);
	CHECK(si.st_blocks < sb.st_blocks);	/* smaller on disk */
	CHECK(sb.st_blocks * 512 >= (8 << 20)); /* the base has the 8 MiB */

	struct ehv_hypervisor *hyp2 = mock_hyp(0x000906ea);
	struct ember_vm *vm2 = restore_on(inc, hyp2, EMBER_RESTORE_VERIFY_MEMORY, &err);
	if (!vm2)
		TEST_FAIL("restore of the incremental: %s", err.msg);
	CHECK_EQ(mem_crc(vm2) == mem_crc(f.vm), true);
	CHECK(!memcmp(vmm_mem_ptr(&vm2->mem, MARK_GPA, 12), "incremental", 12));
	ember_vm_destroy(vm2);
	/* the base alone is the earlier memory */
	vm2 = restore_on(base, hyp2, 0, &err);
	if (!vm2)
		TEST_FAIL("restore of the base: %s", err.msg);
	CHECK(!memcmp(vmm_mem_ptr(&vm2->mem, MARK_GPA, sizeof(mark)), mark, sizeof(mark)));
	ember_vm_destroy(vm2);
	ehv_hypervisor_close(hyp2);
	fx_destroy(&f);
}

/* ------------------------------------------------------------ corrupt snapshots */

static void copy_dir(const char *from, const char *to)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
	REQUIRE(system(cmd) == 0);
}

static void flip_byte(const char *dir, const char *part, off_t off)
{
	char p[192];
	snprintf(p, sizeof(p), "%s/%s", dir, part);
	int fd = open(p, O_RDWR);
	REQUIRE(fd >= 0);
	uint8_t b;
	REQUIRE(pread(fd, &b, 1, off) == 1);
	b ^= 0x40;
	REQUIRE(pwrite(fd, &b, 1, off) == 1);
	close(fd);
}

static void truncate_part(const char *dir, const char *part, off_t by)
{
	char p[192];
	snprintf(p, sizeof(p), "%s/%s", dir, part);
	struct stat st;
	REQUIRE(stat(p, &st) == 0);
	REQUIRE(truncate(p, st.st_size - by) == 0);
}

/* Restore must fail with want and an error naming what. */
static void refused(const char *dir, struct ehv_hypervisor *hyp, unsigned flags, int want,
		    const char *what)
{
	struct ember_error err = {0};
	struct ember_vm *vm = restore_on(dir, hyp, flags, &err);
	if (vm) {
		ember_vm_destroy(vm);
		TEST_FAIL("restored a snapshot with %s", what);
	}
	if (err.code != want || !strstr(err.msg, what))
		TEST_FAIL("%s: error %d '%s', want %d naming '%s'", what, err.code, err.msg, want,
			  what);
}

TEST(vmm_snapshot_every_corrupt_snapshot_is_refused)
{
	struct snap_fx f;
	fx_create(&f, true);
	fx_start(&f);
	char dir[128], bad[128];
	snprintf(dir, sizeof(dir), "%s/snap", f.tmp);
	snprintf(bad, sizeof(bad), "%s/bad", f.tmp);
	struct ember_error err = {0};
	if (ember_vm_snapshot(f.vm, dir, NULL, &err) < 0)
		TEST_FAIL("snapshot: %s", err.msg);
	struct ehv_hypervisor *hyp2 = mock_hyp(0x000906ea);

	/* each damage to a copy of the snapshot, and the error it must give */
	static const struct {
		const char *part;
		char how; /* 't'runcate by n, 'f'lip the byte at n, 'v'ersion 7, 'u'nlink */
		off_t n;
		unsigned flags;
		int want;
		const char *what;
	} bad_cases[] = {
	    {"manifest", 't', 5, 0, -EINVAL, "manifest is truncated"},
	    {"manifest", 'f', 40, 0, -EINVAL, "manifest is corrupt"},
	    {"manifest", 'f', 15, 0, -EINVAL, "manifest"}, /* the version digit */
	    {"manifest", 'v', 0, 0, -EPROTO, "format version 7"},
	    {"vcpu1.state", 'f', 20, 0, -EINVAL, "vcpu1.state is corrupt"},
	    {"vm.state", 't', 8, 0, -EINVAL, "vm.state is"},
	    {"config", 'f', 3, 0, -EINVAL, "config is corrupt"},
	    {"devices.state", 'f', 2, 0, -EINVAL, "devices.state is corrupt"},
	    {"memory", 't', 4096, 0, -EINVAL, "truncated"},
	    {"memory", 'f', MARK_GPA + 3, EMBER_RESTORE_VERIFY_MEMORY, -EINVAL,
	     "memory is corrupt"},
	    {"pages", 'u', 0, 0, -ENOENT, "pages"},
	};
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		copy_dir(dir, bad);
		char p[192];
		snprintf(p, sizeof(p), "%s/%s", bad, bad_cases[i].part);
		if (bad_cases[i].how == 't') {
			truncate_part(bad, bad_cases[i].part, bad_cases[i].n);
		} else if (bad_cases[i].how == 'f') {
			flip_byte(bad, bad_cases[i].part, bad_cases[i].n);
		} else if (bad_cases[i].how == 'u') {
			REQUIRE(unlink(p) == 0);
		} else {
			int fd = open(p, O_RDWR);
			REQUIRE(fd >= 0);
			REQUIRE(pwrite(fd, "ember-snapshot 7", 16, 0) == 16);
			close(fd);
		}
		refused(bad, hyp2, bad_cases[i].flags, bad_cases[i].want, bad_cases[i].what);
	}

	/* another CPU: its identity differs */
	struct ehv_hypervisor *other = mock_hyp(0x000a0671);
	refused(dir, other, 0, -ENOTSUP, "taken on CPU");
	ehv_hypervisor_close(other);

	/* the disk image changed size */
	REQUIRE(truncate(f.disk, 2 << 20) == 0);
	refused(dir, hyp2, 0, -ESTALE, "disk 0");
	REQUIRE(truncate(f.disk, 1 << 20) == 0);

	/* and the intact one still restores (once the disk is free) */
	ember_vm_destroy(f.vm);
	f.vm = NULL;
	struct ember_vm *vm2 = restore_on(dir, hyp2, 0, &err);
	if (!vm2)
		TEST_FAIL("restore: %s", err.msg);
	ember_vm_destroy(vm2);
	ehv_hypervisor_close(hyp2);
	fx_destroy(&f);
}

/* The fixture's VM (no disk) started and snapshotted into dir (128 bytes:
 * TMP/snap); sock (NULL, or 128 bytes) receives TMP/ctl.sock. */
static void fx_snapshotted(struct snap_fx *f, char *dir, char *sock)
{
	fx_create(f, false);
	fx_start(f);
	snprintf(dir, 128, "%s/snap", f->tmp);
	if (sock)
		snprintf(sock, 128, "%s/ctl.sock", f->tmp);
	struct ember_error err = {0};
	if (ember_vm_snapshot(f->vm, dir, NULL, &err) < 0)
		TEST_FAIL("snapshot: %s", err.msg);
}

/* A VM made ahead (ember_vm_ahead_make) is the one the restore builds on,
 * and is taken whatever the restore returns. */
TEST(vmm_snapshot_restore_takes_a_vm_made_ahead)
{
	struct snap_fx f;
	char dir[128];
	fx_snapshotted(&f, dir, NULL);
	struct ember_error err = {0};
	uint32_t want = mem_crc(f.vm);
	struct ember_vm_ahead *a;
	REQUIRE_OK(ember_vm_ahead_make(f.hyp, &a, &err));
	struct ember_restore_opts o = {.console_in = -1, .console_out = -1, .ahead = a};
	struct ember_vm *vm;
	if (ember_vm_restore(dir, &o, &vm, &err) < 0)
		TEST_FAIL("restore with a VM made ahead: %s", err.msg);
	CHECK_EQ(mem_crc(vm), want);
	CHECK(vm->hyp == f.hyp); /* the ahead's hypervisor, borrowed */
	CHECK(!vm->own_hyp);
	REQUIRE_OK(ember_vm_start(vm));
	ember_vm_destroy(vm);
	/* taken by failures too (the leak checker sees one that is not): a
	 * missing snapshot, and an ahead given with a hypervisor */
	REQUIRE_OK(ember_vm_ahead_make(f.hyp, &a, &err));
	o.ahead = a;
	CHECK_ERR(ember_vm_restore("/nonexistent-ember-snap", &o, &vm, &err), -ENOENT);
	CHECK(vm == NULL);
	REQUIRE_OK(ember_vm_ahead_make(f.hyp, &a, &err));
	o.ahead = a;
	o.hyp = f.hyp;
	CHECK_ERR(ember_vm_restore(dir, &o, &vm, &err), -EINVAL);
	CHECK(strstr(err.msg, "made ahead") != NULL);
	CHECK_ERR(ember_vm_ahead_make(f.hyp, NULL, &err), -EINVAL);
	ember_vm_ahead_free(NULL);
	fx_destroy(&f);
}

static struct ember_ctl *waiting_conn(const char *sock)
{
	struct ember_ctl *c;
	struct ember_error err = {0};
	if (ember_ctl_connect(sock, 5000, &c, &err) < 0)
		TEST_FAIL("connect: %s", err.msg);
	return c;
}

/* A VMM started waiting (ember_ctl_server_start_waiting): no VM until a
 * restore request brings one in; a failed restore leaves it waiting; the
 * restored VM is the snapshot's, handed to ember_ctl_server_wait_vm, and
 * the server is then that VM's. */
TEST(ctl_server_waiting_restores_on_request)
{
	struct snap_fx f;
	char dir[128], sock[128];
	fx_snapshotted(&f, dir, sock);
	struct ember_error err = {0};
	uint32_t want = mem_crc(f.vm);
	struct ember_restore_opts base = {.console_in = -1, .console_out = -1, .hyp = f.hyp};
	struct ember_ctl_server *srv;
	if (ember_ctl_server_start_waiting(sock, NULL, &base, &srv, &err) < 0)
		TEST_FAIL("waiting server: %s", err.msg);
	struct ember_vm *vm = (struct ember_vm *)1;
	CHECK_ERR(ember_ctl_server_wait_vm(srv, 0, &vm), -ETIMEDOUT);
	CHECK(vm == NULL);

	struct ember_ctl *c = waiting_conn(sock), *l = waiting_conn(sock);
	struct ember_ctl_status st;
	REQUIRE_OK(ember_ctl_status(c, &st, &err));
	CHECK(st.waiting);
	CHECK_EQ(st.vcpus, 0);
	CHECK_EQ(st.pid, getpid());
	/* what needs a VM answers no-vm */
	CHECK_ERR(ember_ctl_suspend_vcpus(c, &err), -ENXIO);
	CHECK(!strcmp(ember_ctl_error_code(c), "no-vm"));
	CHECK(strstr(err.msg, "waits for a restore") != NULL);
	CHECK_ERR(ember_ctl_balloon_target(c, 1 << 20, &err), -ENXIO);
	/* a listener registered now gets the VM's events once it is there */
	REQUIRE_OK(ember_ctl_register_listener(l, EMBER_CTL_EVENTS_ALL, &err));
	/* bad requests: refused, the server waits on */
	CHECK_ERR(
	    ember_ctl_restore(c, "/nonexistent-ember-snap", NULL, 0, NULL, NULL, NULL, NULL, &err),
	    -ENOENT);
	CHECK(!strcmp(ember_ctl_error_code(c), "not-found"));
	CHECK_ERR(ember_ctl_call(c, "restore", "{\"path\":\"x\",\"memory\":\"disk\"}", NULL, &err),
		  -EINVAL);
	CHECK(!strcmp(ember_ctl_error_code(c), "bad-args"));
	CHECK_ERR(ember_ctl_restore(c, dir, NULL, 0, NULL, NULL, "1x,socket=/tmp/v", NULL, &err),
		  -EINVAL);
	CHECK(strstr(err.msg, "[N,]KEY=VALUE") != NULL);
	CHECK_ERR(ember_ctl_restore(c, dir, NULL, 0, NULL, NULL, "socket=/tmp/v", NULL, &err),
		  -ENOENT); /* the snapshot has no vsock */
	CHECK_ERR(ember_ctl_server_wait_vm(srv, 0, &vm), -ETIMEDOUT);
	REQUIRE_OK(ember_ctl_status(c, &st, &err));
	CHECK(st.waiting);

	/* the restore: the snapshot's memory, two vCPUs */
	uint64_t us = 0;
	if (ember_ctl_restore(c, dir, "map", EMBER_CTL_RESTORE_VERIFY, NULL, NULL, NULL, &us,
			      &err) < 0)
		TEST_FAIL("restore request: %s", err.msg);
	CHECK(us > 0);
	REQUIRE_OK(ember_ctl_server_wait_vm(srv, 5000, &vm));
	REQUIRE(vm != NULL);
	CHECK_EQ(mem_crc(vm), want);
	struct ember_vm *again;
	CHECK_ERR(ember_ctl_server_wait_vm(srv, 0, &again), -EINVAL); /* taken */
	REQUIRE_OK(ember_vm_start(vm));
	struct ember_ctl_event ev;
	REQUIRE_OK(ember_ctl_next_event(l, 5000, &ev, &err));
	CHECK_EQ(ev.kind, EMBER_VM_EVENT_STATE);
	CHECK_EQ(ev.state, EMBER_VM_RUNNING);
	REQUIRE_OK(ember_ctl_status(c, &st, &err));
	CHECK(!st.waiting);
	CHECK_EQ(st.state, EMBER_VM_RUNNING);
	CHECK_EQ(st.vcpus, 2);
	/* the server is the VM's now */
	REQUIRE_OK(ember_ctl_suspend_vcpus(c, &err));
	REQUIRE_OK(ember_ctl_resume_vcpus(c, &err));
	CHECK_ERR(ember_ctl_restore(c, dir, NULL, 0, NULL, NULL, NULL, NULL, &err), -EEXIST);
	CHECK(!strcmp(ember_ctl_error_code(c), "has-vm"));
	ember_ctl_close(c);
	ember_ctl_close(l);
	ember_ctl_server_stop(srv);
	ember_vm_destroy(vm);
	fx_destroy(&f);
}

/* exit on a waiting server: no VM will come; and a server stopped with a
 * restored VM nobody took destroys it (the leak checker sees it). */
TEST(ctl_server_waiting_exit_and_stop)
{
	struct snap_fx f;
	char dir[128], sock[128];
	fx_snapshotted(&f, dir, sock);
	struct ember_error err = {0};
	struct ember_restore_opts base = {.console_in = -1, .console_out = -1, .hyp = f.hyp};
	struct ember_ctl_server *srv;
	REQUIRE_OK(ember_ctl_server_start_waiting(sock, NULL, &base, &srv, &err));
	struct ember_ctl *c = waiting_conn(sock);
	REQUIRE_OK(ember_ctl_exit(c, &err));
	struct ember_vm *vm;
	CHECK_ERR(ember_ctl_server_wait_vm(srv, 5000, &vm), -ECANCELED);
	CHECK_ERR(ember_ctl_restore(c, dir, NULL, 0, NULL, NULL, NULL, NULL, &err), -ESRCH);
	CHECK(!strcmp(ember_ctl_error_code(c), "stopped"));
	ember_ctl_close(c);
	ember_ctl_server_stop(srv);
	struct stat sb;
	CHECK(lstat(sock, &sb) < 0); /* the socket file went with it */

	REQUIRE_OK(ember_ctl_server_start_waiting(sock, NULL, &base, &srv, &err));
	c = waiting_conn(sock);
	REQUIRE_OK(ember_ctl_restore(c, dir, NULL, 0, NULL, NULL, NULL, NULL, &err));
	ember_ctl_close(c);
	ember_ctl_server_stop(srv); /* the restored VM, never taken, with it */
	/* misuse */
	CHECK_ERR(ember_ctl_server_wait_vm(NULL, 0, &vm), -EINVAL);
	struct ember_vm_ahead *a;
	REQUIRE_OK(ember_vm_ahead_make(f.hyp, &a, &err));
	base.ahead = a;
	CHECK_ERR(ember_ctl_server_start_waiting(sock, NULL, &base, &srv, &err), -EINVAL);
	ember_vm_ahead_free(a);
	fx_destroy(&f);
}

/* Bytes the file part of dir takes on disk. */
static uint64_t disk_bytes(const char *dir, const char *part)
{
	char p[192];
	snprintf(p, sizeof(p), "%s/%s", dir, part);
	struct stat st;
	REQUIRE(stat(p, &st) == 0);
	return (uint64_t)st.st_blocks * 512;
}

/* A snapshot where /proc/self/pagemap cannot be read (a jail mounts no
 * /proc): every page is read, the all-zero ones left out, so the memory
 * file is as sparse and the restore the same. The test hides /proc in a
 * mount namespace of its own (needs CAP_SYS_ADMIN) and puts it back. */
TEST(vmm_snapshot_without_proc_reads_every_page)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		TEST_SKIP("no mount namespace of its own: %s", strerror(errno));
	struct snap_fx f;
	char dir[128], nodir[160];
	fx_snapshotted(&f, dir, NULL); /* with /proc: the pagemap's pages */
	uint32_t want = mem_crc(f.vm);
	REQUIRE_OK(ember_vm_resume(f.vm));
	snprintf(nodir, sizeof(nodir), "%s/noproc", f.tmp);
	REQUIRE(mount("none", "/proc", "tmpfs", 0, NULL) == 0);
	bool hidden = access("/proc/self/pagemap", F_OK) < 0;
	struct ember_error err = {0};
	int r = ember_vm_snapshot(f.vm, nodir, NULL, &err);
	REQUIRE(umount("/proc") == 0);
	CHECK(hidden);
	if (r < 0)
		TEST_FAIL("snapshot without /proc: %s", err.msg);
	/* as sparse as the pagemap's (the guest ran on between the two: its
	 * vCPUs idle on the mock, its mark and registers unchanged) */
	uint64_t with = disk_bytes(dir, "memory"), without = disk_bytes(nodir, "memory");
	TEST_LOG("memory file: %" PRIu64 " bytes allocated with the pagemap, %" PRIu64 " without",
		 with, without);
	CHECK(without <= with);
	CHECK(without < f.vm->mem.size / 4);
	struct ember_vm *vm = restore_on(nodir, f.hyp, 0, &err);
	if (!vm)
		TEST_FAIL("restore: %s", err.msg);
	CHECK_EQ(mem_crc(vm), want);
	ember_vm_destroy(vm);
	fx_destroy(&f);
}

/* A clone's device change as the CLI and the restore request take it. */
TEST(vmm_restore_device_parse_takes_an_index_first)
{
	struct ember_restore_device d;
	REQUIRE_OK(ember_restore_device_parse("vsock", "socket=/tmp/v.sock", &d));
	CHECK(!strcmp(d.kind, "vsock") && d.index == 0 && !strcmp(d.spec, "socket=/tmp/v.sock"));
	REQUIRE_OK(ember_restore_device_parse("disk", "2,path=/b.img", &d));
	CHECK(d.index == 2 && !strcmp(d.spec, "path=/b.img"));
	REQUIRE_OK(ember_restore_device_parse("net", "1000,tap=t0", &d));
	CHECK_EQ(d.index, 1000);
	CHECK_ERR(ember_restore_device_parse("net", "1001,tap=t0", &d), -EINVAL);
	CHECK_ERR(ember_restore_device_parse("net", "1x,tap=t0", &d), -EINVAL);
	CHECK_ERR(ember_restore_device_parse("net", "99999999999999999999,tap=t0", &d), -EINVAL);
	CHECK_ERR(ember_restore_device_parse("net", NULL, &d), -EINVAL);
}
