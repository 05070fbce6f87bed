/* tests/kvm/hostile_fuzz.c - a bare guest makes random accesses to every port, MMIO window and virtqueue of the board; the VMM must survive. */
#include "../lib/test.h"
#include "pvh_vm.h"

#include <ember/ctl.h>
#include <ember/vmm.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * The guest is tests/guests/pvh32_fuzz.c in a real Ember VM (the board's
 * legacy devices, a disk, an entropy source, a balloon, a vsock, a NIC on a
 * tap in a network namespace of the test's own and the virtio console, all
 * served by the I/O thread), with the seccomp filters in kill mode: a vCPU thread
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
 * queries, and that the NIC, set up by the guest as a driver would after
 * the attack, took frames. While the guest runs, the test sends frames
 * into the tap (an AF_PACKET socket on it: they arrive on the NIC's
 * receive queue, whose random descriptors they meet) and the guest's
 * random transmit chains go out on it; the NIC's and the console's
 * counters (the VM's device report at its stop) show that both directions
 * and the console's queues were driven.
 */

/* The VM's device report lines for the NIC and the console (any VM thread
 * logs: under the kill filter, nothing here but a lock and copies). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char net_line[512], con_line[512];
static void fuzz_log(void *opaque, enum ember_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	char *dst = strstr(msg, ": tap ") && strstr(msg, "; rx ")		? net_line
		    : strstr(msg, " bytes out, ") && strstr(msg, " waits for ") ? con_line
										: NULL;
	if (!dst)
		return;
	pthread_mutex_lock(&log_lock);
	snprintf(dst, sizeof(net_line), "%s", msg);
	pthread_mutex_unlock(&log_lock);
}

/* The tap up, with an address (frames both ways then pass its queue). */
static void link_up(const char *name)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	REQUIRE(s >= 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(0x0a0b0001); /* 10.11.0.1 */
	REQUIRE_OK(ioctl(s, SIOCSIFADDR, &ifr));
	REQUIRE_OK(ioctl(s, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP;
	REQUIRE_OK(ioctl(s, SIOCSIFFLAGS, &ifr));
	close(s);
}

/* Frames of random sizes (14..1514 bytes), broadcast, sent into the tap
 * every 2 ms until stop is set; their count in sent. */
struct sender {
	int fd;
	atomic_bool stop;
	unsigned long sent;
};
static void *send_frames(void *arg)
{
	struct sender *s = arg;
	unsigned char f[1514];
	uint32_t x = 12345;
	while (!atomic_load(&s->stop)) {
		x = x * 1103515245u + 12345u;
		size_t n = 14 + (x >> 8) % (sizeof(f) - 13);
		memset(f, 0xff, 6);				       /* to everyone */
		memcpy(f + 6, (unsigned char[]){2, 0, 0, 0, 0, 1}, 6); /* from a local MAC */
		f[12] = 0x88, f[13] = 0xb5; /* a local experimental type */
		for (size_t i = 14; i < n; i++)
			f[i] = (unsigned char)(x >> (i & 15));
		if (send(s->fd, f, n, 0) == (ssize_t)n)
			s->sent++;
		nanosleep(&(struct timespec){0, 2000000}, NULL);
	}
	return NULL;
}

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
	/* the NIC's tap in a network namespace of this test's own (the
	 * runner forked this process for the test) */
	REQUIRE_OK(unshare(CLONE_NEWNET));
	if (access("/dev/net/tun", F_OK) < 0 && system("modprobe tun") != 0)
		TEST_FAIL("no /dev/net/tun, and modprobe tun failed");
	const char *const keys[] = {"disk",    diskopt,	 "rng",	      "",      "balloon",
				    "",	       "vsock",	 vsockopt,    "net",   "tap=fuzz0",
				    "console", "virtio", "log-level", "debug", "seccomp",
				    "kill",    NULL};
	int cfd;
	struct ember_vm *vm = pvh_vm_create_log(PVH_GUEST(fuzz), "", 1, keys, &cfd, fuzz_log, NULL);
	link_up("fuzz0");
	struct sender snd = {.fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))};
	REQUIRE(snd.fd >= 0);
	struct sockaddr_ll ll = {.sll_family = AF_PACKET,
				 .sll_protocol = htons(ETH_P_ALL),
				 .sll_ifindex = (int)if_nametoindex("fuzz0")};
	REQUIRE(ll.sll_ifindex > 0);
	REQUIRE_OK(bind(snd.fd, (struct sockaddr *)&ll, sizeof(ll)));
	pthread_t sender;
	REQUIRE(pthread_create(&sender, NULL, send_frames, &snd) == 0);
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
	atomic_store(&snd.stop, true);
	pthread_join(sender, NULL);
	close(snd.fd);
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
	TEST_LOG("console output: %lld bytes", (long long)lseek(cfd, 0, SEEK_END));
	char *out = pvh_vm_console(cfd);
	const char *done = strstr(out, "fuzz: done ");
	TEST_LOG("guest console (last lines): %s", done ? done : out);
	CHECK_EQ(r, 0);
	CHECK_EQ(res.reason, EMBER_STOP_POWEROFF);
	if (res.reason != EMBER_STOP_POWEROFF)
		TEST_LOG("stop: %s (%s)", ember_stop_reason_name(res.reason), res.detail);
	REQUIRE(done != NULL);
	unsigned pio = 0, mmio = 0, vq = 0, notify = 0, devs = 0, grx = 0;
	char ids[64] = "";
	CHECK_EQ(sscanf(done, "fuzz: done pio %u mmio %u vq %u notify %u devices %u ids %63s rx %u",
			&pio, &mmio, &vq, &notify, &devs, ids, &grx),
		 7);
	TEST_LOG("accesses: %u port, %u MMIO, %u virtqueue register (%u notifies) on %u "
		 "virtio devices (ids %s): %u in all",
		 pio, mmio, vq, notify, devs, ids, pio + mmio + vq);
	CHECK(pio >= 40000);
	CHECK(mmio >= 40000);
	/* blk 2, rng 4, balloon 5, vsock 19, net 1, console 3, in the
	 * options' order (the console after them) */
	CHECK_EQ(devs, 6);
	CHECK_STR(ids, "2,4,5,19,1,3");
	CHECK(notify >= 6 * 60 * 4);
	/* the NIC and the console were driven: frames the test sent met
	 * the guest's receive queue (taken or dropped), the guest's chains
	 * reached the transmit side (sent, dropped or refused) */
	pthread_mutex_lock(&log_lock);
	TEST_LOG("%lu frames sent into the tap; %s", snd.sent, net_line);
	TEST_LOG("%s", con_line);
	unsigned long long rxp = 0, rxb = 0, rxg = 0, rxd = 0, txp = 0, txb = 0, txg = 0, txd = 0,
			   txf = 0, bad = 0, badh = 0;
	const char *rx = strstr(net_line, "; rx ");
	CHECK(rx != NULL);
	if (rx)
		CHECK_EQ(sscanf(rx,
				"; rx %llu frames %llu B gso %llu drop %llu; tx %llu frames %llu B "
				"gso %llu drop %llu full %llu; bad %llu+%llu",
				&rxp, &rxb, &rxg, &rxd, &txp, &txb, &txg, &txd, &txf, &bad, &badh),
			 11);
	unsigned long long cout = 0, cin = 0, cwait = 0, cbad = 0;
	const char *c = strstr(con_line, ": ");
	CHECK(c != NULL);
	if (c)
		CHECK_EQ(sscanf(c,
				": %llu bytes out, %llu bytes in, %llu waits for the console, bad "
				"requests %llu",
				&cout, &cin, &cwait, &cbad),
			 4);
	pthread_mutex_unlock(&log_lock);
	CHECK(snd.sent > 100);
	/* the card still works after the attack: set up again by the guest
	 * as a driver would, it took frames the test sent */
	CHECK(grx >= 1);
	CHECK(rxp >= 1);
	CHECK(txp + txd + bad + badh > 0); /* the transmit side met chains */
	CHECK(cout + cbad > 0);		   /* so did the console's */
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
