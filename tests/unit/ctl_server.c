/* tests/unit/ctl_server.c - the control socket (ctl/server.c) and the client library (ctl/client.c) against a VM on the mock hypervisor: every request, events, bad input, many clients, the socket file. */
#include "../lib/test.h"

#include "vmm_fixtures.h"

#include "../../vmm/vm.h"

#include <ember/ctl.h>
#include <ember/hv.h>

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <stdio.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct mock_vm {
	char kernel[40];
	char sock[64];
	struct ember_config *cfg;
	struct ehv_hypervisor *hyp;
	struct ember_vm *vm;
	struct ember_ctl_server *srv;
};

/* A one-vCPU VM on the mock (its vCPU runs until stopped), started, with
 * its control socket served. */
static void mock_vm_up_s(struct mock_vm *m, const struct ember_ctl_server_opts *o, bool balloon,
			 const struct ehv_mock_step *steps, size_t nsteps)
{
	size_t len;
	uint8_t *bz = fx_bzimage(65536, &len);
	REQUIRE(bz);
	snprintf(m->kernel, sizeof(m->kernel), "/tmp/ember-unit-ctl-XXXXXX");
	int fd = mkstemp(m->kernel);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, bz, len) == (ssize_t)len);
	close(fd);
	free(bz);
	snprintf(m->sock, sizeof(m->sock), "/tmp/ember-unit-ctl-%d.sock", (int)getpid());
	unlink(m->sock);
	struct ember_error err = {0};
	REQUIRE_OK(ember_config_new(&m->cfg));
	REQUIRE_OK(ember_config_set_console(m->cfg, -1, -1));
	REQUIRE_OK(ember_config_set(m->cfg, "kernel", m->kernel, NULL));
	REQUIRE_OK(ember_config_set(m->cfg, "initrd", m->kernel, NULL));
	if (balloon)
		REQUIRE_OK(ember_config_set(m->cfg, "balloon", "", NULL));
	if (ember_config_resolve(m->cfg, &err) < 0)
		TEST_FAIL("resolve: %s", err.msg);
	struct ehv_hypervisor_options ho = {.backend = EHV_BACKEND_MOCK};
	REQUIRE_OK(ehv_hypervisor_open(&ho, &m->hyp));
	if (ember_vm_create_on(m->cfg, m->hyp, &m->vm, &err) < 0)
		TEST_FAIL("create on the mock: %s", err.msg);
	if (steps) /* scripted: the test starts it when it is ready */
		REQUIRE_OK(ehv_mock_vcpu_script(m->vm->vcpus[0], steps, nsteps));
	else
		REQUIRE_OK(ember_vm_start(m->vm));
	if (ember_ctl_server_start(m->vm, m->sock, o, &m->srv, &err) < 0)
		TEST_FAIL("server: %s", err.msg);
}

static void mock_vm_up(struct mock_vm *m, const struct ember_ctl_server_opts *o)
{
	mock_vm_up_s(m, o, false, NULL, 0);
}

static void mock_vm_down(struct mock_vm *m)
{
	ember_ctl_server_stop(m->srv);
	struct stat st;
	CHECK(lstat(m->sock, &st) < 0); /* the socket file went with the server */
	ember_vm_destroy(m->vm);
	ehv_hypervisor_close(m->hyp);
	ember_config_free(m->cfg);
	unlink(m->kernel);
}

static struct ember_ctl *conn(struct mock_vm *m)
{
	struct ember_ctl *c;
	struct ember_error err = {0};
	if (ember_ctl_connect(m->sock, 3000, &c, &err) < 0)
		TEST_FAIL("connect: %s", err.msg);
	return c;
}

static enum ember_vm_state vm_state(struct mock_vm *m)
{
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(m->vm, &info));
	return info.state;
}

TEST(ctl_server_serves_the_lifecycle_requests)
{
	struct mock_vm m;
	mock_vm_up(&m, NULL);
	struct stat st;
	REQUIRE(lstat(m.sock, &st) == 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600);

	struct ember_ctl *c = conn(&m);
	struct ember_error err = {0};
	struct ember_ctl_status s;
	REQUIRE_OK(ember_ctl_status(c, &s, &err));
	CHECK_EQ(s.state, EMBER_VM_RUNNING);
	CHECK_EQ(s.vcpus, 1);
	CHECK_EQ(s.mem_size, EMBER_DEFAULT_MEM);
	CHECK_EQ(s.pid, getpid());

	/* vCPUs only: the library says so, the state stays running */
	REQUIRE_OK(ember_ctl_suspend_vcpus(c, &err));
	CHECK(ember_vm_vcpus_paused(m.vm));
	CHECK_EQ(vm_state(&m), EMBER_VM_RUNNING);
	REQUIRE_OK(ember_ctl_status(c, &s, &err));
	CHECK(s.vcpus_paused);
	REQUIRE_OK(ember_ctl_resume_vcpus(c, &err));
	CHECK(!ember_vm_vcpus_paused(m.vm));

	/* the whole VM */
	REQUIRE_OK(ember_ctl_suspend_vm(c, &err));
	CHECK_EQ(vm_state(&m), EMBER_VM_PAUSED);
	/* resume-vcpus on a suspended VM: bad-state, nothing changes */
	CHECK_ERR(ember_ctl_resume_vcpus(c, &err), -EBUSY);
	CHECK(!strcmp(ember_ctl_error_code(c), "bad-state"));
	CHECK_EQ(vm_state(&m), EMBER_VM_PAUSED);
	REQUIRE_OK(ember_ctl_resume_vm(c, &err));
	CHECK_EQ(vm_state(&m), EMBER_VM_RUNNING);

	/* VcpuPidTid: this process, the vCPU thread's real tid */
	pid_t pid = 0, tids[4] = {0};
	unsigned n = 0;
	REQUIRE_OK(ember_ctl_vcpu_pid_tid(c, &pid, tids, 4, &n, &err));
	CHECK_EQ(pid, getpid());
	CHECK_EQ(n, 1);
	pid_t want;
	REQUIRE_OK(ember_vm_vcpu_tid(m.vm, 0, &want));
	CHECK_EQ(tids[0], want);
	CHECK(tids[0] != getpid());
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tids[0]);
	CHECK(access(path, F_OK) == 0);

	/* Exit: the VM stops by request */
	REQUIRE_OK(ember_ctl_exit(c, &err));
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_wait(m.vm, 5000, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	CHECK_EQ(ember_stop_reason_exit_status(res.reason), EMBER_EXIT_STOPPED);
	/* after the stop: lifecycle requests say stopped */
	CHECK_ERR(ember_ctl_suspend_vm(c, &err), -ESRCH);
	CHECK(!strcmp(ember_ctl_error_code(c), "stopped"));
	ember_ctl_close(c);
	mock_vm_down(&m);
}

TEST(ctl_server_answers_every_other_request)
{
	struct mock_vm m;
	mock_vm_up(&m, NULL);
	struct ember_ctl *c = conn(&m);
	struct ember_error err = {0};

	/* hardware Ember has not: their own codes */
	CHECK_ERR(ember_ctl_pci_pme(c, 0, &err), -ENODEV);
	CHECK(!strcmp(ember_ctl_error_code(c), "no-pci"));
	CHECK(strstr(err.msg, "no such device on this VM") != NULL);
	CHECK_ERR(ember_ctl_usb(c, "list", &err), -ENODEV);
	CHECK(!strcmp(ember_ctl_error_code(c), "no-usb"));
	CHECK_ERR(ember_ctl_gpu(c, "x", &err), -ENODEV);
	CHECK(!strcmp(ember_ctl_error_code(c), "no-gpu"));
	CHECK_ERR(ember_ctl_bat(c, "x", &err), -ENODEV);
	CHECK(!strcmp(ember_ctl_error_code(c), "no-battery"));
	CHECK_ERR(ember_ctl_hotplug_vfio(c, "add", &err), -ENODEV);
	CHECK(!strcmp(ember_ctl_error_code(c), "no-vfio"));
	/* Swap: status, enable, out, disable as typed results; trim unsupported */
	char *st = NULL;
	CHECK_OK(ember_ctl_swap(c, "status", &st, &err));
	CHECK(st && strstr(st, "\"state\":\"disabled\"") != NULL);
	free(st);
	st = NULL;
	CHECK_ERR(ember_ctl_swap(c, "trim", &st, &err), -ENOTSUP);
	CHECK(!strcmp(ember_ctl_error_code(c), "unsupported"));
	CHECK(strstr(err.msg, "staging") != NULL);
	CHECK(st == NULL);
	CHECK_ERR(ember_ctl_swap(c, "out", &st, &err), -EINVAL); /* not enabled */
	CHECK(strstr(err.msg, "swap enable first") != NULL);
	CHECK_ERR(ember_ctl_swap(c, "fly", &st, &err), -EINVAL);
	int se = ember_ctl_swap(c, "enable", &st, &err);
	if (se == -EPERM) {
		TEST_LOG("swap enable refused here (no userfaultfd): %s", err.msg);
	} else {
		CHECK_OK(se);
		CHECK(st && strstr(st, "\"state\":\"ready\"") != NULL);
		free(st);
		st = NULL;
		CHECK_ERR(ember_ctl_swap(c, "enable", &st, &err), -EINVAL);
		CHECK_OK(ember_ctl_swap(c, "out", &st, &err));
		CHECK(st && strstr(st, "\"state\":\"swapped-out\"") != NULL);
		free(st);
		st = NULL;
		CHECK_OK(ember_ctl_swap(c, "disable", &st, &err));
		CHECK(st && strstr(st, "\"state\":\"disabled\"") != NULL &&
		      strstr(st, "\"swapped_pages\":0") != NULL);
		free(st);
		st = NULL;
	}
	/* no balloon on this VM */
	CHECK_ERR(ember_ctl_balloon_target(c, 1 << 20, &err), -ENODEV);
	CHECK(!strcmp(ember_ctl_error_code(c), "no-device"));
	struct ember_balloon_stats bs;
	CHECK_ERR(ember_ctl_balloon_stats(c, &bs, &err), -ENODEV);

	/* the ACPI and device requests: each done (the GED counts the buttons),
	 * or refused with its documented code; the VM runs on */
	struct ember_acpi_stats as0 = {0}, as1 = {0};
	REQUIRE_OK(ember_vm_acpi_stats(m.vm, &as0, &err));
	CHECK_OK(ember_ctl_powerbtn(c, &err));
	CHECK_OK(ember_ctl_sleepbtn(c, &err));
	REQUIRE_OK(ember_vm_acpi_stats(m.vm, &as1, &err));
	CHECK_EQ(as1.power_button, as0.power_button + 1);
	CHECK_EQ(as1.sleep_button, as0.sleep_button + 1);
	int rr = ember_ctl_rtc(c, &err);
	TEST_LOG("rtc: %d %s", rr, rr < 0 ? ember_ctl_error_code(c) : "");
	CHECK(rr >= 0);
	CHECK_ERR(ember_ctl_gpe(c, 200, &err), -ENOENT);
	CHECK_STR(ember_ctl_error_code(c), "not-found");
	CHECK_ERR(ember_ctl_disk_resize(c, 3, 1 << 20, &err), -ENODEV);
	CHECK_STR(ember_ctl_error_code(c), "no-device");
	CHECK_ERR(ember_ctl_net_remove(c, 9, &err), -ENODEV);
	CHECK_STR(ember_ctl_error_code(c), "no-device");
	int sr = ember_ctl_snapshot(c, "/nonexistent/dir/snap", 0, NULL, &err);
	TEST_LOG("snapshot to /nonexistent: %d %s: %s", sr, ember_ctl_error_code(c), err.msg);
	CHECK(sr < 0);
	CHECK_STR(ember_ctl_error_code(c), "failed"); /* the mock has no CPU identity to record */

	/* make-rt: done, or refused with the permission code (no CAP_SYS_NICE) */
	int r = ember_ctl_make_rt(c, 1, &err);
	if (r < 0) {
		CHECK_EQ(r, -EPERM);
		CHECK(!strcmp(ember_ctl_error_code(c), "permission"));
		CHECK(strstr(err.msg, "CAP_SYS_NICE") != NULL);
	} else {
		pid_t tid;
		REQUIRE_OK(ember_vm_vcpu_tid(m.vm, 0, &tid));
		CHECK_EQ(sched_getscheduler(tid), SCHED_FIFO);
	}

	/* the generic call: a result as JSON text */
	char *res = NULL;
	REQUIRE_OK(ember_ctl_call(c, "status", "{}", &res, &err));
	REQUIRE(res);
	CHECK(strstr(res, "\"state\":\"running\"") != NULL);
	free(res);
	CHECK_ERR(ember_ctl_call(c, "status", "[]", &res, &err), -EINVAL);
	CHECK_ERR(ember_ctl_call(c, "no-such", NULL, NULL, &err), -EOPNOTSUPP);
	CHECK(!strcmp(ember_ctl_error_code(c), "unknown-request"));
	CHECK_EQ(vm_state(&m), EMBER_VM_RUNNING);
	ember_ctl_close(c);
	mock_vm_down(&m);
}

TEST(ctl_server_events_reach_only_their_listeners)
{
	struct mock_vm m;
	mock_vm_up(&m, NULL);
	struct ember_ctl *states = conn(&m), *balloon = conn(&m), *quiet = conn(&m),
			 *ctl = conn(&m);
	struct ember_error err = {0};
	REQUIRE_OK(ember_ctl_register_listener(
	    states, (1u << EMBER_VM_EVENT_STATE) | (1u << EMBER_VM_EVENT_EXIT), &err));
	REQUIRE_OK(ember_ctl_register_listener(balloon, 1u << EMBER_VM_EVENT_BALLOON, &err));
	REQUIRE_OK(ember_ctl_register_listener(quiet, EMBER_CTL_EVENTS_ALL, &err));
	REQUIRE_OK(ember_ctl_unregister(quiet, &err));

	REQUIRE_OK(ember_ctl_suspend_vm(ctl, &err));
	struct ember_ctl_event ev;
	REQUIRE_OK(ember_ctl_next_event(states, 2000, &ev, &err));
	CHECK_EQ(ev.kind, EMBER_VM_EVENT_STATE);
	CHECK_EQ(ev.state, EMBER_VM_PAUSED);
	REQUIRE_OK(ember_ctl_resume_vm(ctl, &err));
	REQUIRE_OK(ember_ctl_next_event(states, 2000, &ev, &err));
	CHECK_EQ(ev.state, EMBER_VM_RUNNING);
	REQUIRE_OK(ember_ctl_suspend_vcpus(ctl, &err));
	REQUIRE_OK(ember_ctl_next_event(states, 2000, &ev, &err));
	CHECK_EQ(ev.state, EMBER_VM_RUNNING);
	CHECK(ev.vcpus_paused);
	/* unregister-listener of "state": exit still comes, state no more */
	REQUIRE_OK(ember_ctl_unregister_listener(states, 1u << EMBER_VM_EVENT_STATE, &err));
	REQUIRE_OK(ember_ctl_resume_vcpus(ctl, &err));
	REQUIRE_OK(ember_ctl_exit(ctl, &err));
	REQUIRE_OK(ember_vm_wait(m.vm, 5000, NULL));
	REQUIRE_OK(ember_ctl_next_event(states, 2000, &ev, &err));
	CHECK_EQ(ev.kind, EMBER_VM_EVENT_EXIT);
	CHECK(!strcmp(ev.reason, "stopped"));
	CHECK_EQ(ev.exit_status, EMBER_EXIT_STOPPED);
	CHECK_ERR(ember_ctl_next_event(states, 200, &ev, &err), -ETIMEDOUT);
	/* the others got nothing */
	CHECK_ERR(ember_ctl_next_event(balloon, 200, &ev, &err), -ETIMEDOUT);
	CHECK_ERR(ember_ctl_next_event(quiet, 0, &ev, &err), -ETIMEDOUT);
	CHECK_ERR(ember_ctl_next_event(ctl, 0, &ev, &err), -ETIMEDOUT);
	ember_ctl_close(states);
	ember_ctl_close(balloon);
	ember_ctl_close(quiet);
	ember_ctl_close(ctl);
	mock_vm_down(&m);
}

/* ------------------------------------------------------------ raw sockets */

static int raw_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The next datagram within ms (NUL-terminated), its length, 0 on close,
 * -1 on timeout. */
static long raw_recv(int fd, char *buf, size_t len, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) <= 0)
		return -1;
	ssize_t n = recv(fd, buf, len - 1, 0);
	if (n < 0)
		return 0;
	buf[n] = 0;
	return n;
}

static void raw_send(int fd, const char *s, size_t n)
{
	REQUIRE(send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n);
}

/* Connected and past the hello. */
static int raw_ready(struct mock_vm *m)
{
	int fd = raw_connect(m->sock);
	REQUIRE(fd >= 0);
	char buf[512];
	REQUIRE(raw_recv(fd, buf, sizeof(buf), 2000) > 0);
	REQUIRE(strstr(buf, "\"hello\"") && strstr(buf, "\"protocol\":1"));
	const char *h = "{\"hello\":{\"protocol\":1}}";
	raw_send(fd, h, strlen(h));
	return fd;
}

/* Sends msg, expects an error response with code (and the connection open). */
static void expect_error(int fd, const char *msg, size_t len, const char *code)
{
	raw_send(fd, msg, len);
	char buf[1024], want[64];
	long n = raw_recv(fd, buf, sizeof(buf), 2000);
	snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
	if (n <= 0 || !strstr(buf, want) || !strstr(buf, "\"ok\":false"))
		test_fail_at(__FILE__, __LINE__, false, "%.60s: got %s, want %s", msg,
			     n > 0 ? buf : "nothing", code);
}

TEST(ctl_server_survives_bad_input)
{
	struct mock_vm m;
	mock_vm_up(&m, NULL);
	int fd = raw_ready(&m);
	expect_error(fd, "garbage", 7, "bad-json");
	expect_error(fd, "{\"id\":1,\"requ", 13, "bad-json");
	expect_error(fd, "\xff\xfe\x00\x01", 4, "bad-json");
	expect_error(fd, "{\"id\":1,\"request\":\"gpe\",\"args\":{\"n\":\"x\"}}", 41, "bad-args");
	expect_error(fd, "{\"id\":1,\"request\":\"reboot-the-host\"}", 36, "unknown-request");
	expect_error(fd, "{\"id\":1,\"request\":[]}", 21, "bad-message");
	/* oversized: discarded whole, the connection goes on */
	size_t big = EMBER_CTL_MAX_MESSAGE + 100;
	char *b = malloc(big);
	REQUIRE(b);
	memset(b, '[', big);
	int sz = (int)big * 2 + 4096;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	expect_error(fd, b, big, "too-large");
	free(b);
	/* and a good request still gets its response, with its id */
	const char *ok = "{\"id\":99,\"request\":\"status\"}";
	raw_send(fd, ok, strlen(ok));
	char buf[1024];
	REQUIRE(raw_recv(fd, buf, sizeof(buf), 2000) > 0);
	CHECK(strstr(buf, "\"id\":99") && strstr(buf, "\"ok\":true"));
	close(fd);

	/* a request before the hello: an error, then the connection closes */
	fd = raw_connect(m.sock);
	REQUIRE(raw_recv(fd, buf, sizeof(buf), 2000) > 0);
	raw_send(fd, ok, strlen(ok));
	REQUIRE(raw_recv(fd, buf, sizeof(buf), 2000) > 0);
	CHECK(strstr(buf, "hello-required") != NULL);
	CHECK_EQ(raw_recv(fd, buf, sizeof(buf), 2000), 0);
	close(fd);
	/* another protocol version: refused and closed */
	fd = raw_connect(m.sock);
	REQUIRE(raw_recv(fd, buf, sizeof(buf), 2000) > 0);
	const char *h2 = "{\"hello\":{\"protocol\":2}}";
	raw_send(fd, h2, strlen(h2));
	REQUIRE(raw_recv(fd, buf, sizeof(buf), 2000) > 0);
	CHECK(strstr(buf, "protocol-version") != NULL);
	CHECK_EQ(raw_recv(fd, buf, sizeof(buf), 2000), 0);
	close(fd);
	/* a client that sends and never reads its responses: closed once its
	 * receive queue is full (the server never blocks on it) */
	fd = raw_ready(&m);
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	bool closed = false;
	for (int i = 0; i < 20000 && !closed; i++) {
		if (send(fd, ok, strlen(ok), MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			continue;
		closed = errno != EAGAIN;
		usleep(250); /* our queue is full: the server reads on, or has closed */
	}
	CHECK(closed);
	close(fd);
	struct ember_ctl *c = conn(&m);
	struct ember_ctl_status s;
	struct ember_error err = {0};
	REQUIRE_OK(ember_ctl_status(c, &s, &err));
	ember_ctl_close(c);
	CHECK_EQ(vm_state(&m), EMBER_VM_RUNNING);
	mock_vm_down(&m);
}

TEST(ctl_server_closes_silent_clients_and_bounds_their_number)
{
	struct mock_vm m;
	struct ember_ctl_server_opts o = {.max_clients = 64, .idle_ms = 400, .hello_ms = 300};
	mock_vm_up(&m, &o);
	char buf[512];
	/* connects and never sends: closed after the hello time */
	int silent = raw_connect(m.sock);
	REQUIRE(silent >= 0);
	REQUIRE(raw_recv(silent, buf, sizeof(buf), 2000) > 0); /* the hello */
	long n = raw_recv(silent, buf, sizeof(buf), 3000);
	CHECK(n > 0 && strstr(buf, "\"code\":\"idle\""));
	CHECK_EQ(raw_recv(silent, buf, sizeof(buf), 2000), 0);
	close(silent);
	/* a listener may stay silent */
	struct ember_ctl *l = conn(&m);
	struct ember_error err = {0};
	REQUIRE_OK(ember_ctl_register_listener(l, EMBER_CTL_EVENTS_ALL, &err));
	usleep(800 * 1000);
	struct ember_ctl_status s;
	REQUIRE_OK(ember_ctl_status(l, &s, &err));
	ember_ctl_close(l);

	/* 100 clients at once: 64 served, the rest told busy */
	int fds[100];
	unsigned hello = 0, busy = 0;
	for (int i = 0; i < 100; i++)
		fds[i] = raw_connect(m.sock);
	for (int i = 0; i < 100; i++) {
		REQUIRE(fds[i] >= 0);
		if (raw_recv(fds[i], buf, sizeof(buf), 3000) <= 0)
			continue;
		hello += strstr(buf, "\"hello\"") != NULL;
		busy += strstr(buf, "\"code\":\"busy\"") != NULL;
	}
	CHECK_EQ(hello, 64);
	CHECK_EQ(busy, 36);
	for (int i = 0; i < 100; i++)
		close(fds[i]);
	/* served again once they are gone */
	usleep(100 * 1000);
	struct ember_ctl *c = conn(&m);
	REQUIRE_OK(ember_ctl_status(c, &s, &err));
	CHECK_EQ(s.state, EMBER_VM_RUNNING);
	ember_ctl_close(c);
	mock_vm_down(&m);
}

TEST(ctl_server_socket_file_rules)
{
	struct mock_vm m;
	mock_vm_up(&m, NULL);
	struct ember_error err = {0};
	struct ember_ctl_server *s2;
	/* a live server's socket is not taken over */
	CHECK_ERR(ember_ctl_server_start(m.vm, m.sock, NULL, &s2, &err), -EADDRINUSE);
	/* a file that is not a socket is not replaced */
	char file[64];
	snprintf(file, sizeof(file), "/tmp/ember-unit-ctl-file-%d", (int)getpid());
	FILE *f = fopen(file, "w");
	REQUIRE(f);
	fputs("keep me", f);
	fclose(f);
	CHECK_ERR(ember_ctl_server_start(m.vm, file, NULL, &s2, &err), -EEXIST);
	struct stat st;
	CHECK(stat(file, &st) == 0 && st.st_size == 7);
	unlink(file);
	/* a stale socket (nobody listens) is replaced */
	char stale[64];
	snprintf(stale, sizeof(stale), "/tmp/ember-unit-ctl-stale-%d.sock", (int)getpid());
	unlink(stale);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", stale);
	REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	close(fd);
	REQUIRE_OK(ember_ctl_server_start(m.vm, stale, NULL, &s2, &err));
	struct ember_ctl *c;
	REQUIRE_OK(ember_ctl_connect(stale, 2000, &c, &err));
	ember_ctl_close(c);
	ember_ctl_server_stop(s2);
	CHECK(lstat(stale, &st) < 0);
	/* nobody there */
	CHECK_ERR(ember_ctl_connect(stale, 500, &c, &err), -ENOENT);
	mock_vm_down(&m);
}

TEST(ctl_name_paths)
{
	char p[256];
	setenv("XDG_RUNTIME_DIR", "/tmp", 1);
	REQUIRE(ember_ctl_name_path("vm-1.a_b", false, p, sizeof(p)) > 0);
	CHECK(!strcmp(p, "/tmp/ember/vm-1.a_b.sock"));
	CHECK_ERR(ember_ctl_name_path("a/b", false, p, sizeof(p)), -EINVAL);
	CHECK_ERR(ember_ctl_name_path("..", false, p, sizeof(p)), -EINVAL);
	CHECK_ERR(ember_ctl_name_path("", false, p, sizeof(p)), -EINVAL);
	unsetenv("XDG_RUNTIME_DIR");
	REQUIRE(ember_ctl_socket_dir(p, sizeof(p)) > 0);
	char want[64];
	snprintf(want, sizeof(want), "/tmp/ember-%u", (unsigned)getuid());
	CHECK(!strcmp(p, want));
}

/* ------------------------------------------------------------ the CLI */

#ifndef EMBER_TEST_BIN
#define EMBER_TEST_BIN "o/release/ember"
#endif

/* Runs `ember ARGS` (a shell line), returns its exit status; out gets stdout+stderr. */
static int ember_cli(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ember_cli(char *out, size_t len, const char *fmt, ...)
{
	char args[512], cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", EMBER_TEST_BIN, args);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	size_t n = fread(out, 1, len - 1, f);
	out[n] = 0;
	int st = pclose(f);
	TEST_LOG("ember %s -> %d: %s", args, WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(ctl_cli_subcommands_drive_the_vm)
{
	struct mock_vm m;
	mock_vm_up(&m, NULL);
	char out[4096];
	CHECK_EQ(ember_cli(out, sizeof(out), "status %s --json", m.sock), 0);
	CHECK(strstr(out, "\"state\":\"running\"") != NULL);
	CHECK_EQ(ember_cli(out, sizeof(out), "suspend --full --socket %s", m.sock), 0);
	CHECK_EQ(vm_state(&m), EMBER_VM_PAUSED);
	CHECK_EQ(ember_cli(out, sizeof(out), "resume --full %s", m.sock), 0);
	CHECK_EQ(vm_state(&m), EMBER_VM_RUNNING);
	CHECK_EQ(ember_cli(out, sizeof(out), "suspend %s", m.sock), 0);
	CHECK(ember_vm_vcpus_paused(m.vm));
	CHECK_EQ(ember_cli(out, sizeof(out), "resume %s", m.sock), 0);
	CHECK(!ember_vm_vcpus_paused(m.vm));
	pid_t tid;
	REQUIRE_OK(ember_vm_vcpu_tid(m.vm, 0, &tid));
	CHECK_EQ(ember_cli(out, sizeof(out), "vcpus %s --json", m.sock), 0);
	char want[64];
	snprintf(want, sizeof(want), "\"tid\":%d", (int)tid);
	CHECK(strstr(out, want) != NULL);
	/* refused: status 1 with the code */
	CHECK_EQ(ember_cli(out, sizeof(out), "pci-pme %s", m.sock), 1);
	CHECK(strstr(out, "no-pci") != NULL);
	CHECK_EQ(ember_cli(out, sizeof(out), "balloon 256M %s", m.sock), 1);
	CHECK(strstr(out, "no-device") != NULL);
	CHECK_EQ(ember_cli(out, sizeof(out), "balloon stats %s", m.sock), 1);
	CHECK_EQ(ember_cli(out, sizeof(out), "swap status %s", m.sock), 0);
	CHECK(strstr(out, "disabled") != NULL);
	CHECK_EQ(ember_cli(out, sizeof(out), "swap trim %s", m.sock), 1);
	CHECK(strstr(out, "unsupported") != NULL);
	/* a form with a [--flag] before a [--name VALUE]: parsed (the mock VM
	 * then refuses the snapshot: 1), not a usage error (2) */
	CHECK_EQ(ember_cli(out, sizeof(out), "snapshot take %s.snap %s", m.sock, m.sock), 1);
	CHECK(strstr(out, "no such command") == NULL);
	CHECK_EQ(ember_cli(out, sizeof(out), "snapshot take %s.snap --resume %s", m.sock, m.sock),
		 1);
	CHECK_EQ(ember_cli(out, sizeof(out), "snapshot take %s.snap --base %s.b %s", m.sock, m.sock,
			   m.sock),
		 1);
	/* usage: 2; nobody there: 3 */
	CHECK_EQ(ember_cli(out, sizeof(out), "gpe notanumber %s", m.sock), 2);
	CHECK_EQ(ember_cli(out, sizeof(out), "suspend"), 2);
	CHECK_EQ(ember_cli(out, sizeof(out), "stop /nonexistent/ember.sock"), 3);
	CHECK_EQ(ember_cli(out, sizeof(out), "--help"), 0);
	CHECK(strstr(out, "ember balloon target BYTES") != NULL);
	/* stop: the VM ends by request */
	CHECK_EQ(ember_cli(out, sizeof(out), "stop %s", m.sock), 0);
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_wait(m.vm, 5000, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	mock_vm_down(&m);
}

/* The virtio-mmio window of the first device with this device id (by its
 * registers: magic "virt", DeviceID at 0x8), 0 if none. */
static uint64_t find_virtio(struct ember_vm *vm, uint32_t id)
{
	for (uint64_t a = 0xd0000000ull; a < 0xd0100000ull; a += 0x200) {
		uint64_t magic = 0, dev = 0;
		bus_access_u64(vm->mmio, a, &magic, 4, false, 0);
		bus_access_u64(vm->mmio, a + 8, &dev, 4, false, 0);
		if (magic == 0x74726976 && dev == id)
			return a;
	}
	return 0;
}

TEST(ctl_server_balloon_moves_are_events)
{
	struct mock_vm m;
	mock_vm_up_s(&m, NULL, true, NULL, 0);
	struct ember_ctl *l = conn(&m), *c = conn(&m);
	struct ember_error err = {0};
	REQUIRE_OK(ember_ctl_register_listener(l, 1u << EMBER_VM_EVENT_BALLOON, &err));
	REQUIRE_OK(ember_ctl_balloon_target(c, 64 << 20, &err));
	uint64_t base = find_virtio(m.vm, 5);
	REQUIRE(base != 0);
	/* the driver says it holds 16384 pages (its config's "actual") */
	uint64_t pages = 16384;
	REQUIRE_OK(bus_access_u64(m.vm->mmio, base + 0x100 + 4, &pages, 4, true, 0));
	struct ember_ctl_event ev;
	REQUIRE_OK(ember_ctl_next_event(l, 3000, &ev, &err));
	CHECK_EQ(ev.kind, EMBER_VM_EVENT_BALLOON);
	CHECK_EQ(ev.balloon_actual_bytes, 64 << 20);
	CHECK_EQ(ev.balloon_target_bytes, 64 << 20);
	CHECK(strstr(ev.json, "\"oom\":false") != NULL);
	/* it gives pages back on its own (target unchanged): oom */
	pages = 8192;
	REQUIRE_OK(bus_access_u64(m.vm->mmio, base + 0x100 + 4, &pages, 4, true, 0));
	REQUIRE_OK(ember_ctl_next_event(l, 3000, &ev, &err));
	CHECK_EQ(ev.balloon_actual_bytes, 32 << 20);
	CHECK(strstr(ev.json, "\"oom\":true") != NULL);
	/* stats through the socket */
	struct ember_balloon_stats st;
	REQUIRE_OK(ember_ctl_balloon_stats(c, &st, &err));
	CHECK_EQ(st.target_bytes, 64 << 20);
	CHECK_EQ(st.actual_bytes, 32 << 20);
	/* no move, no event */
	CHECK_ERR(ember_ctl_next_event(l, 600, &ev, &err), -ETIMEDOUT);
	ember_ctl_close(l);
	ember_ctl_close(c);
	mock_vm_down(&m);
}

TEST(ctl_server_guest_power_off_is_a_power_event_then_exit)
{
	/* the guest powers off at once, started once the listeners are there */
	struct ehv_mock_step steps[1];
	memset(steps, 0, sizeof(steps));
	steps[0].kind = EHV_MOCK_EXIT;
	steps[0].exit.reason = EHV_EXIT_SYSTEM_DOWN;
	steps[0].exit.u.system_down.kind = EHV_SYSTEM_DOWN_POWEROFF;
	struct mock_vm m;
	mock_vm_up_s(&m, NULL, false, steps, 1);
	struct ember_ctl *l = conn(&m), *quiet = conn(&m);
	struct ember_error err = {0};
	REQUIRE_OK(ember_ctl_register_listener(
	    l, (1u << EMBER_VM_EVENT_POWER) | (1u << EMBER_VM_EVENT_EXIT), &err));
	REQUIRE_OK(ember_ctl_register_listener(quiet, 1u << EMBER_VM_EVENT_BALLOON, &err));
	REQUIRE_OK(ember_vm_start(m.vm));
	struct ember_ctl_event ev;
	int r = ember_ctl_next_event(l, 5000, &ev, &err);
	if (r < 0) {
		struct ember_run_result rr;
		int w = ember_vm_wait(m.vm, 0, &rr);
		TEST_FAIL("no event (%d); the VM: %d reason %d %s", r, w, rr.reason, rr.detail);
	}
	CHECK_EQ(ev.kind, EMBER_VM_EVENT_POWER);
	CHECK(!strcmp(ev.reason, "poweroff"));
	REQUIRE_OK(ember_ctl_next_event(l, 2000, &ev, &err));
	CHECK_EQ(ev.kind, EMBER_VM_EVENT_EXIT);
	CHECK(!strcmp(ev.reason, "poweroff"));
	CHECK_EQ(ev.exit_status, EMBER_EXIT_POWEROFF);
	CHECK_ERR(ember_ctl_next_event(quiet, 300, &ev, &err), -ETIMEDOUT);
	struct ember_run_result res;
	REQUIRE_OK(ember_vm_wait(m.vm, 0, &res));
	CHECK_EQ(res.reason, EMBER_STOP_POWEROFF);
	ember_ctl_close(l);
	ember_ctl_close(quiet);
	mock_vm_down(&m);
}

/* Drops CAP_SYS_NICE from this thread's effective set (the threads it
 * starts inherit that) and RLIMIT_RTPRIO to 0: no real-time scheduling. */
static bool drop_sys_nice(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	d[CAP_SYS_NICE / 32].effective &= ~(1u << (CAP_SYS_NICE % 32));
	if (syscall(SYS_capset, &h, d) < 0)
		return false;
	struct rlimit rl = {0, 0};
	return setrlimit(RLIMIT_RTPRIO, &rl) == 0;
}

TEST(ctl_server_make_rt_refused_without_cap_sys_nice)
{
	REQUIRE(drop_sys_nice());
	struct mock_vm m;
	mock_vm_up(&m, NULL);
	struct ember_ctl *c = conn(&m);
	struct ember_error err = {0};
	CHECK_ERR(ember_ctl_make_rt(c, 5, &err), -EPERM);
	CHECK(!strcmp(ember_ctl_error_code(c), "permission"));
	CHECK(strstr(err.msg, "CAP_SYS_NICE") != NULL);
	pid_t tid;
	REQUIRE_OK(ember_vm_vcpu_tid(m.vm, 0, &tid));
	CHECK_EQ(sched_getscheduler(tid), SCHED_OTHER); /* nothing changed */
	/* bounds: priority 0 and 100 are refused before anything */
	CHECK_ERR(ember_ctl_call(c, "make-rt", "{\"priority\":100}", NULL, &err), -EINVAL);
	CHECK(!strcmp(ember_ctl_error_code(c), "bad-args"));
	CHECK_ERR(ember_ctl_call(c, "make-rt", "{\"priority\":0}", NULL, &err), -EINVAL);
	ember_ctl_close(c);
	mock_vm_down(&m);
}

TEST(ctl_cli_list_finds_the_users_vms)
{
	char dir[] = "/tmp/ember-unit-xdg-XXXXXX";
	REQUIRE(mkdtemp(dir) != NULL);
	setenv("XDG_RUNTIME_DIR", dir, 1);
	struct mock_vm m;
	mock_vm_up(&m, NULL);
	char path[256];
	REQUIRE(ember_ctl_name_path("vm-one", true, path, sizeof(path)) > 0);
	struct stat st;
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/ember", dir);
	REQUIRE(stat(sub, &st) == 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	struct ember_ctl_server *s2;
	struct ember_error err = {0};
	REQUIRE_OK(ember_ctl_server_start(m.vm, path, NULL, &s2, &err));
	char out[4096];
	CHECK_EQ(ember_cli(out, sizeof(out), "list --json"), 0);
	CHECK(strstr(out, "\"name\":\"vm-one\"") && strstr(out, "\"state\":\"running\""));
	/* a name reaches the same VM */
	CHECK_EQ(ember_cli(out, sizeof(out), "status vm-one --json"), 0);
	CHECK(strstr(out, "\"state\":\"running\"") != NULL);
	ember_ctl_server_stop(s2);
	CHECK_EQ(ember_cli(out, sizeof(out), "list --json"), 0);
	CHECK(strstr(out, "vm-one") == NULL); /* its socket went with the server */
	mock_vm_down(&m);
	rmdir(sub);
	rmdir(dir);
	unsetenv("XDG_RUNTIME_DIR");
}
