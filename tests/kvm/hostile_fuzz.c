/* tests/kvm/hostile_fuzz.c - a bare guest makes random accesses to every port, MMIO window and virtqueue of the board; the VMM must survive. */
#include "../lib/test.h"
#include "pvh_vm.h"

#include <ember/ctl.h>
#include <ember/vmm.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The guest is tests/guests/pvh32_fuzz.c in a real Ember VM (the board's
 * legacy devices, a disk, an entropy source, a balloon and a vsock, served
 * by the I/O thread), with the seccomp filters in kill mode: a vCPU thread
 * that tried to open, create, rename or remove a file, any VMM thread that
 * tried to start a program, create a thread or open a socket other than
 * AF_UNIX, would end this whole test process with SIGSYS (the I/O thread's
 * filter allows file calls for a machine reset: docs/SECURITY.md). Under
 * the asan build (o/asan/test-kvm) a sanitizer report ends it too. The VM
 * serves its control socket (a control thread of this process, as under
 * `ember run --socket`), asked for its status every second while the guest
 * attacks. The test asserts that the guest got to its end and powered off
 * by itself (the VMM served every access), reports the number of accesses,
 * that every status request was answered (and one more after the end),
 * that the VM's directory holds only its disk image (same size), vsock
 * socket and control socket afterwards, and that the VM still answers
 * queries.
 */

/* The names in dir, sorted, as one string "a b c". */
static void list_dir(const char *dir, char *out, size_t len)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort);
	size_t used = 0;
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		const char *s = ents[i]->d_name;
		if (strcmp(s, ".") && strcmp(s, "..") && used < len)
			used +=
			    (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", s);
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
}

KVM_TEST_T(hostile_fuzz_every_port_window_and_queue, 900)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/ember-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	REQUIRE(mkdtemp(dir) != NULL);
	char disk[4200], sock[4200], ctlsock[4200], diskopt[4300], vsockopt[4300];
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	snprintf(sock, sizeof(sock), "%s/vsock", dir);
	snprintf(ctlsock, sizeof(ctlsock), "%s/ctl", dir);
	FILE *f = fopen(disk, "w");
	REQUIRE(f != NULL);
	static unsigned char img[1 << 20]; /* 1 MiB: 2048 sectors */
	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (unsigned char)(i * 7);
	REQUIRE(fwrite(img, 1, sizeof(img), f) == sizeof(img));
	fclose(f);
	snprintf(diskopt, sizeof(diskopt), "path=%s,serial=fuzz", disk);
	snprintf(vsockopt, sizeof(vsockopt), "cid=3,socket=%s", sock);
	const char *const keys[] = {"disk",  diskopt,  "rng",	  "",	  "balloon", "",
				    "vsock", vsockopt, "seccomp", "kill", NULL};
	int cfd;
	struct ember_vm *vm = pvh_vm_create(PVH_GUEST(fuzz), "", 1, keys, &cfd);
	char before[1024];
	list_dir(dir, before, sizeof(before));
	struct ember_error err = {0};
	struct ember_ctl_server *srv = NULL;
	if (ember_ctl_server_start(vm, ctlsock, NULL, &srv, &err) < 0)
		TEST_FAIL("ember_ctl_server_start: %s", err.msg);
	struct ember_ctl *ctl = NULL;
	if (ember_ctl_connect(ctlsock, 20000, &ctl, &err) < 0)
		TEST_FAIL("ember_ctl_connect: %s", err.msg);
	REQUIRE_OK(ember_vm_start(vm));
	struct ember_run_result res;
	int r;
	unsigned asked = 0, answered = 0;
	for (int s = 0; s < 840; s++) {
		r = ember_vm_wait(vm, 1000, &res);
		if (r != -ETIMEDOUT)
			break;
		struct ember_ctl_status cs;
		asked++;
		if (ember_ctl_status(ctl, &cs, &err) == 0 && cs.state == EMBER_VM_RUNNING)
			answered++;
		else
			TEST_LOG("status request %u: %s", asked, err.msg);
	}
	if (r == -ETIMEDOUT) {
		ember_vm_stop(vm);
		ember_vm_wait(vm, -1, &res);
	}
	/* and at the end, the VM stopped, the socket still answers */
	struct ember_ctl_status last = {0};
	int lr = ember_ctl_status(ctl, &last, &err);
	TEST_LOG("control socket: %u of %u status requests answered while the guest ran; "
		 "after its end: %d (state %s)",
		 answered, asked, lr, lr == 0 ? ember_vm_state_name(last.state) : err.msg);
	CHECK_EQ(answered, asked);
	CHECK_OK(lr);
	CHECK_EQ(last.state, EMBER_VM_STOPPED);
	ember_ctl_close(ctl);
	ember_ctl_server_stop(srv);
	char *out = pvh_vm_console(cfd);
	const char *done = strstr(out, "fuzz: done ");
	TEST_LOG("guest console (last lines): %s", done ? done : out);
	CHECK_EQ(r, 0);
	CHECK_EQ(res.reason, EMBER_STOP_POWEROFF);
	if (res.reason != EMBER_STOP_POWEROFF)
		TEST_LOG("stop: %s (%s)", ember_stop_reason_name(res.reason), res.detail);
	REQUIRE(done != NULL);
	unsigned pio = 0, mmio = 0, vq = 0, notify = 0, devs = 0;
	CHECK_EQ(sscanf(done, "fuzz: done pio %u mmio %u vq %u notify %u devices %u", &pio, &mmio,
			&vq, &notify, &devs),
		 5);
	TEST_LOG("accesses: %u port, %u MMIO, %u virtqueue register (%u notifies) on %u "
		 "virtio devices: %u in all",
		 pio, mmio, vq, notify, devs, pio + mmio + vq);
	CHECK(pio >= 40000);
	CHECK(mmio >= 40000);
	CHECK_EQ(devs, 4); /* disk, rng, balloon, vsock */
	CHECK(notify >= 4 * 60 * 4);
	/* the VM still answers */
	struct ember_vm_info info;
	CHECK_OK(ember_vm_query(vm, &info));
	CHECK_EQ(info.state, EMBER_VM_STOPPED);
	ember_vm_destroy(vm);
	/* nothing made, removed or resized in the VM's directory */
	char after[1024];
	list_dir(dir, after, sizeof(after));
	TEST_LOG("the VM's directory before: %s; after: %s", before, after);
	CHECK_STR(before, "disk.img vsock");
	/* the control socket file is gone with ember_ctl_server_stop */
	CHECK(!strcmp(after, "disk.img") || !strcmp(after, "disk.img vsock"));
	struct stat st;
	CHECK_OK(stat(disk, &st));
	CHECK_EQ((long long)st.st_size, (long long)sizeof(img));
	free(out);
	close(cfd);
	unlink(disk);
	unlink(sock);
	rmdir(dir);
}
