/* vmm/console.h - the console's host side: a bounded output buffer drained without blocking, and the input escape. */
#ifndef EMBER_VMM_CONSOLE_H
#define EMBER_VMM_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Output: the UART (on a vCPU thread) pushes bytes into a ring of fixed
 * size; the VM's I/O thread writes them to the console fd without ever
 * blocking. The producer never waits for the consumer's write(): the
 * consumer copies out under the lock and writes outside it. When the ring
 * is empty and the fd is non-blocking (and not a socket: a vCPU thread's
 * syscall filter has write, not send), the producer writes the bytes
 * itself, under the lock, and rings only what the fd did not take: the
 * same one syscall as waking the I/O thread, without the wake-up (on a
 * busy host CPU, two context switches per burst of output). Bytes in the
 * ring go first, so nothing is reordered.
 *
 * The fd is written non-blocking without changing the caller's file: a
 * pipe, FIFO or terminal that is not already O_NONBLOCK is reopened through
 * /proc/self/fd (a new open file description of the same pipe or tty), a
 * socket is written with MSG_DONTWAIT; a regular file is written directly
 * (writes to it do not wait for a reader). If the fd fails (EPIPE, EIO...),
 * the console is gone and later output is dropped.
 */
#define VMM_CONOUT_SIZE (64u << 10)

struct vmm_conout {
	pthread_mutex_t lock;
	uint8_t *buf;
	size_t cap, head, len; /* under lock */
	int fd;		       /* what the consumer writes to, -1: none */
	bool own_fd;	       /* fd was reopened here: closed by fini */
	bool is_socket;
	bool pollable; /* fd works with epoll */
	bool direct;   /* the producer may write fd itself (see above) */
	bool dead;     /* no console or it failed: output dropped */
	uint64_t written, dropped;
};

/* fd < 0: no console (output dropped). cap 0: VMM_CONOUT_SIZE. 0 or -ENOMEM. */
int vmm_conout_init(struct vmm_conout *c, int fd, size_t cap);
void vmm_conout_fini(struct vmm_conout *c);
/* Producer: writes or copies up to n bytes; returns how many it took (all
 * of them when the console is gone); *was_empty tells whether the buffer
 * was empty before and holds bytes now (then the consumer needs a
 * wake-up). */
size_t vmm_conout_push(struct vmm_conout *c, const uint8_t *p, size_t n, bool *was_empty);
/* True when not one more byte fits (never for a dead console). */
bool vmm_conout_full(struct vmm_conout *c);
/* Bytes waiting. */
size_t vmm_conout_pending(struct vmm_conout *c);
/* Consumer (one thread): writes what it can without blocking. Returns the
 * bytes written (0 when the fd takes none now), or -EPIPE when the console
 * failed (the buffer is then discarded and later pushes are dropped). */
long vmm_conout_flush(struct vmm_conout *c);

/*
 * Input: bytes read from the console on their way to the UART, with the
 * escape Ctrl-A x (stop; reported by vmm_conin_feed's return) and Ctrl-A
 * Ctrl-A (one Ctrl-A).
 */
struct vmm_conin {
	uint8_t buf[4096];
	size_t len;  /* bytes waiting for room in the UART */
	bool escape; /* the last byte was Ctrl-A */
	bool eof;
};
/* Appends p (escape processing when escape_on); returns true when Ctrl-A x
 * was typed (the bytes after it are dropped). */
bool vmm_conin_feed(struct vmm_conin *ci, bool escape_on, const uint8_t *p, size_t n);
/* Removes the first n bytes (taken by the UART). */
void vmm_conin_consume(struct vmm_conin *ci, size_t n);

#endif /* EMBER_VMM_CONSOLE_H */
