/* tests/e2e/vsock-tool.c - the e2e vsock peer, static: echo servers and checking clients on AF_VSOCK (guest) and on Ember's hybrid-vsock Unix sockets (host); a TCP sender in large writes. */
/*
 * usage:
 *   vsock-tool cid                          guest: the local cid (/dev/vsock)
 *   vsock-tool serve PORT N                 guest: AF_VSOCK listen on PORT, echo N connections
 *   vsock-tool connect CID PORT N BYTES     guest: N connections to CID:PORT at once
 *   vsock-tool hold CID PORT SECS           guest: one connection to CID:PORT, "held" once
 *                                           open, then wait (at most SECS) for the
 *                                           connection to end (a transport reset) and say how
 *   vsock-tool host-echo PATH N             host: listen on the Unix socket PATH, echo N
 *   vsock-tool host-connect PATH PORT N BYTES
 *                                           host: N connections through Ember's PATH with
 *                                           "CONNECT PORT\n" / "OK <port>\n"
 *   vsock-tool tap-exec NAME FD CMD...       host: attaches tap NAME (IFF_TAP, IFF_NO_PI,
 *                                           IFF_VNET_HDR) as fd FD and runs CMD with it
 *   vsock-tool tcp-send ADDR PORT            guest: stdin to TCP ADDR:PORT (IPv4) in
 *                                           64 KiB writes (a TCP stack with TSO then
 *                                           sends segments larger than the MTU), to EOF
 * A client connection sends BYTES of a pattern of its own while it reads the
 * echo, shuts its write side, reads to the end and checks that the echo is
 * the same bytes (count, every byte, and an FNV-1a checksum, printed). All N
 * connections are open before any sends a byte (a barrier), so N run at once.
 * A server serves each connection in a child and exits 0 when N were echoed
 * to their end. Exit status 0: everything checked out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/if_tun.h>
#include <linux/vm_sockets.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int die(const char *what)
{
	fprintf(stderr, "vsock-tool: %s: %s\n", what, strerror(errno));
	return -1;
}

static uint8_t pattern(unsigned conn, uint64_t off)
{
	uint64_t x = (off / 8 + 1) * 0x9e3779b97f4a7c15ull ^ (conn + 1) * 0xbf58476d1ce4e5b9ull;
	x ^= x >> 31;
	return (uint8_t)(x >> (8 * (off % 8)));
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Echoes fd to its end. */
static int echo(int fd)
{
	static uint8_t buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return die("read");
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return die("write");
			off += w;
		}
	}
	shutdown(fd, SHUT_WR);
	close(fd);
	return 0;
}

static int serve(int lfd, unsigned n)
{
	unsigned ok = 0;
	for (unsigned i = 0; i < n; i++) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			return die("accept");
		pid_t p = fork();
		if (p == 0)
			_exit(echo(c) ? 1 : 0);
		close(c);
	}
	int st;
	while (wait(&st) > 0)
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	printf("vsock-tool: served %u connections, %u echoed to the end\n", n, ok);
	return ok == n ? 0 : 1;
}

/* One client connection on fd: send while reading the echo, then check. */
static int client(int fd, unsigned conn, uint64_t bytes)
{
	static uint8_t out[16384], in[65536];
	uint64_t sent = 0, got = 0, hs = 0xcbf29ce484222325ull, hr = hs;
	bool wr_open = true;
	while (got < bytes || wr_open) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (wr_open ? POLLOUT : 0)};
		if (poll(&p, 1, 30000) <= 0) {
			fprintf(stderr, "vsock-tool: conn %u: stuck at sent %llu got %llu\n", conn,
				(unsigned long long)sent, (unsigned long long)got);
			return -1;
		}
		if (wr_open && (p.revents & POLLOUT)) {
			size_t n = sizeof(out);
			if (n > bytes - sent)
				n = (size_t)(bytes - sent);
			for (size_t i = 0; i < n; i++)
				out[i] = pattern(conn, sent + i);
			ssize_t w = n ? write(fd, out, n) : 0;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				return die("write");
			if (w > 0) {
				hs = fnv(hs, out, (size_t)w);
				sent += (uint64_t)w;
			}
			if (sent == bytes) {
				shutdown(fd, SHUT_WR);
				wr_open = false;
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(fd, in, sizeof(in));
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r < 0)
				return die("read");
			if (r == 0)
				break;
			for (ssize_t i = 0; i < r; i++)
				if (in[i] != pattern(conn, got + (uint64_t)i)) {
					fprintf(stderr, "vsock-tool: conn %u: byte %llu differs\n",
						conn, (unsigned long long)(got + (uint64_t)i));
					return -1;
				}
			hr = fnv(hr, in, (size_t)r);
			got += (uint64_t)r;
		}
	}
	/* the echo ends where the data did */
	char extra;
	if (got != bytes || read(fd, &extra, 1) != 0 || hs != hr) {
		fprintf(stderr, "vsock-tool: conn %u: sent %llu got %llu\n", conn,
			(unsigned long long)sent, (unsigned long long)got);
		return -1;
	}
	printf("vsock-tool: conn %u: %llu bytes both ways, fnv %016llx\n", conn,
	       (unsigned long long)got, (unsigned long long)hr);
	return 0;
}

/* "OK <port>\n", a byte at a time. */
static int read_ok(int fd)
{
	char line[32];
	unsigned n = 0;
	while (n + 1 < sizeof(line)) {
		ssize_t r = read(fd, line + n, 1);
		if (r <= 0)
			return -1; /* refused: Ember closed it */
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	unsigned long port;
	return sscanf(line, "OK %lu", &port) == 1 ? 0 : -1;
}

static int open_conn(int argc, char **argv, int host)
{
	int fd;
	if (host) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[2]);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			return die("connect"), -1;
		char req[32];
		int l = snprintf(req, sizeof(req), "CONNECT %s\n", argv[3]);
		if (write(fd, req, (size_t)l) != l || read_ok(fd) < 0) {
			fprintf(stderr, "vsock-tool: CONNECT %s: no OK\n", argv[3]);
			return -1;
		}
	} else {
		struct sockaddr_vm a = {.svm_family = AF_VSOCK,
					.svm_cid = (unsigned)strtoul(argv[2], NULL, 0),
					.svm_port = (unsigned)strtoul(argv[3], NULL, 0)};
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		/* Linux gives up a vsock connect after 2 s; the e2e guest runs
		 * under nested virtualisation on an emulated CPU (the KVM
		 * sandbox), where 32 handshakes at once can take longer */
		struct timeval tmo = {.tv_sec = 30};
		if (fd >= 0)
			setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tmo, sizeof(tmo));
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			return die("connect"), -1;
	}
	(void)argc;
	return fd;
}

static int clients(int argc, char **argv, int host)
{
	unsigned n = (unsigned)strtoul(argv[4], NULL, 0);
	uint64_t bytes = strtoull(argv[5], NULL, 0);
	int ready[2], go[2];
	if (pipe(ready) < 0 || pipe(go) < 0)
		return die("pipe");
	for (unsigned i = 0; i < n; i++) {
		pid_t p = fork();
		if (p < 0)
			return die("fork");
		if (p == 0) {
			close(go[1]);
			int fd = open_conn(argc, argv, host);
			char b = fd >= 0 ? 'y' : 'n';
			if (write(ready[1], &b, 1) != 1 || fd < 0)
				_exit(1);
			if (read(go[0], &b, 1) != 0) /* the barrier: EOF when all are open */
				_exit(1);
			_exit(client(fd, i, bytes) ? 1 : 0);
		}
	}
	close(ready[1]);
	close(go[0]);
	unsigned open = 0;
	for (unsigned i = 0; i < n; i++) {
		char b;
		if (read(ready[0], &b, 1) != 1)
			break;
		open += b == 'y';
	}
	close(go[1]); /* go */
	unsigned ok = 0;
	int st;
	while (wait(&st) > 0)
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	printf("vsock-tool: %u connections open at once, %u of %u checked out\n", open, ok, n);
	return ok == n && open == n ? 0 : 1;
}

/* One connection held open until the other side or the transport ends it:
 * 0 if it ended (the reason printed), 1 if it was still open after secs. */
static int hold(int argc, char **argv)
{
	int fd = open_conn(argc, argv, 0);
	if (fd < 0)
		return 1;
	printf("vsock-tool: held\n");
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, (int)strtoul(argv[4], NULL, 0) * 1000);
	if (r <= 0) {
		printf("vsock-tool: still open\n");
		return 1;
	}
	char b;
	ssize_t n = read(fd, &b, 1);
	printf("vsock-tool: ended: %s\n", n < 0 ? strerror(errno) : n == 0 ? "EOF" : "data");
	return n > 0;
}

/* tap-exec: the tap as fd FD of CMD (a VMM given --net fd=FD). */
static int tap_exec(char **argv)
{
	int fd = open("/dev/net/tun", O_RDWR);
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[2]);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0)
		return die("tap attach"), 1;
	int want = (int)strtol(argv[3], NULL, 0);
	if (fd != want && (dup2(fd, want) < 0 || close(fd) < 0))
		return die("dup2"), 1;
	execvp(argv[4], argv + 4);
	return die(argv[4]), 127;
}

/* tcp-send: stdin to ADDR:PORT in writes of 64 KiB, then a clean close. */
static int tcp_send(const char *addr, const char *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)strtoul(port, NULL, 0))};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return die("tcp connect"), 1;
	static char buf[65536];
	for (;;) {
		size_t n = 0;
		while (n < sizeof(buf)) { /* whole 64 KiB writes, but for the last */
			ssize_t r = read(0, buf + n, sizeof(buf) - n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return die("read stdin"), 1;
			if (r == 0)
				break;
			n += (size_t)r;
		}
		if (n == 0)
			break;
		for (size_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return die("tcp write"), 1;
			off += (size_t)w;
		}
		if (n < sizeof(buf))
			break;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		return die("tcp shutdown"), 1;
	char c;
	while (read(fd, &c, 1) > 0) /* the peer's close */
		;
	return close(fd) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "serve")) {
		int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		struct sockaddr_vm a = {.svm_family = AF_VSOCK,
					.svm_cid = VMADDR_CID_ANY,
					.svm_port = (unsigned)strtoul(argv[2], NULL, 0)};
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0)
			return die("vsock listen"), 1;
		printf("vsock-tool: listening on port %s\n", argv[2]);
		return serve(fd, (unsigned)strtoul(argv[3], NULL, 0));
	}
	if (argc == 4 && !strcmp(argv[1], "host-echo")) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[2]);
		unlink(argv[2]);
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0)
			return die("unix listen"), 1;
		printf("vsock-tool: listening on %s\n", argv[2]);
		return serve(fd, (unsigned)strtoul(argv[3], NULL, 0));
	}
	if (argc == 2 && !strcmp(argv[1], "cid")) {
		unsigned cid = 0;
		int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
			return die("/dev/vsock"), 1;
		printf("%u\n", cid);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "hold"))
		return hold(argc, argv);
	if (argc == 6 && !strcmp(argv[1], "connect"))
		return clients(argc, argv, 0);
	if (argc == 6 && !strcmp(argv[1], "host-connect"))
		return clients(argc, argv, 1);
	if (argc >= 5 && !strcmp(argv[1], "tap-exec"))
		return tap_exec(argv);
	if (argc == 4 && !strcmp(argv[1], "tcp-send"))
		return tcp_send(argv[2], argv[3]);
	fprintf(stderr,
		"usage: vsock-tool cid | serve PORT N | connect CID PORT N BYTES |\n"
		"       hold CID PORT SECS | host-echo PATH N | host-connect PATH PORT N BYTES |\n"
		"       tap-exec NAME FD CMD... | tcp-send ADDR PORT\n");
	return 2;
}
