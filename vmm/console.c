/* vmm/console.c - the console's host side: bounded output ring written non-blocking, input with the Ctrl-A escape. */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int vmm_conout_init(struct vmm_conout *c, int fd, size_t cap)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->cap = cap ? cap : VMM_CONOUT_SIZE;
	c->buf = malloc(c->cap);
	if (!c->buf)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		c->dead = true;
		return 0;
	}
	c->fd = fd;
	c->pollable = !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISBLK(st.st_mode);
	c->is_socket = S_ISSOCK(st.st_mode);
	int fl = fcntl(fd, F_GETFL);
	if ((S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) && fl >= 0 && !(fl & O_NONBLOCK)) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		int nfd =
		    open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (fl & O_APPEND));
		if (nfd >= 0) {
			c->fd = nfd;
			c->own_fd = true;
		}
		/* else: written as it is (a POLLOUT first keeps most writes
		 * from waiting) */
	}
	/* writes that cannot wait: a non-blocking pipe or tty, a regular file */
	c->direct =
	    !c->is_socket &&
	    (c->own_fd || S_ISREG(st.st_mode) ||
	     (fl >= 0 && (fl & O_NONBLOCK) && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))));
	return 0;
}

void vmm_conout_fini(struct vmm_conout *c)
{
	if (!c->buf)
		return;
	if (c->own_fd)
		close(c->fd);
	pthread_mutex_destroy(&c->lock);
	free(c->buf);
	c->buf = NULL;
}

size_t vmm_conout_push(struct vmm_conout *c, const uint8_t *p, size_t n, bool *was_empty)
{
	pthread_mutex_lock(&c->lock);
	if (was_empty)
		*was_empty = false;
	size_t done = 0;
	if (!c->dead && c->direct && c->len == 0 && n) {
		ssize_t w;
		do
			w = write(c->fd, p, n);
		while (w < 0 && errno == EINTR);
		if (w > 0) {
			c->written += (uint64_t)w;
			done = (size_t)w;
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			c->dead = true; /* the console failed, as in flush */
		}
		if (n == 0) {
			pthread_mutex_unlock(&c->lock);
			return done;
		}
	}
	if (c->dead) {
		c->dropped += n;
		pthread_mutex_unlock(&c->lock);
		return done + n;
	}
	if (was_empty)
		*was_empty = c->len == 0;
	size_t room = c->cap - c->len, take = n < room ? n : room;
	size_t tail = (c->head + c->len) % c->cap;
	size_t first = take < c->cap - tail ? take : c->cap - tail;
	memcpy(c->buf + tail, p, first);
	memcpy(c->buf, p + first, take - first);
	c->len += take;
	if (was_empty && take == 0)
		*was_empty = false;
	pthread_mutex_unlock(&c->lock);
	return done + take;
}

bool vmm_conout_full(struct vmm_conout *c)
{
	pthread_mutex_lock(&c->lock);
	bool full = !c->dead && c->len == c->cap;
	pthread_mutex_unlock(&c->lock);
	return full;
}

size_t vmm_conout_pending(struct vmm_conout *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = c->len;
	pthread_mutex_unlock(&c->lock);
	return n;
}

long vmm_conout_flush(struct vmm_conout *c)
{
	long total = 0;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		size_t head = c->head, len = c->len;
		bool dead = c->dead;
		pthread_mutex_unlock(&c->lock);
		if (dead)
			return total ? total : -EPIPE;
		size_t chunk = len < c->cap - head ? len : c->cap - head;
		if (!chunk)
			return total;
		/* only this thread moves head: [head, head + chunk) stays put */
		ssize_t w = c->is_socket
				? send(c->fd, c->buf + head, chunk, MSG_DONTWAIT | MSG_NOSIGNAL)
				: write(c->fd, c->buf + head, chunk);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return total;
		pthread_mutex_lock(&c->lock);
		if (w <= 0) { /* the console failed: drop everything from now on */
			c->dead = true;
			c->dropped += c->len;
			c->len = 0;
			pthread_mutex_unlock(&c->lock);
			return total ? total : -EPIPE;
		}
		c->head = (c->head + (size_t)w) % c->cap;
		c->len -= (size_t)w;
		c->written += (uint64_t)w;
		pthread_mutex_unlock(&c->lock);
		total += w;
		if ((size_t)w < chunk)
			return total; /* the fd is full */
	}
}

bool vmm_conin_feed(struct vmm_conin *ci, bool escape_on, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && ci->len < sizeof(ci->buf); i++) {
		uint8_t ch = p[i];
		if (escape_on) {
			if (ci->escape) {
				ci->escape = false;
				if (ch == 'x' || ch == 'X')
					return true;
				if (ch != 0x01 && ci->len + 1 < sizeof(ci->buf))
					ci->buf[ci->len++] = 0x01;
			} else if (ch == 0x01) {
				ci->escape = true;
				continue;
			}
		}
		ci->buf[ci->len++] = ch;
	}
	return false;
}

void vmm_conin_consume(struct vmm_conin *ci, size_t n)
{
	if (n > ci->len)
		n = ci->len;
	memmove(ci->buf, ci->buf + n, ci->len - n);
	ci->len -= n;
}
