/* tests/unit/vsock_nop.h - a virtio-vsock host side that refuses every connection and has nothing to read (the device state tests and fuzz_devstate). */
#ifndef EMBER_TESTS_UNIT_VSOCK_NOP_H
#define EMBER_TESTS_UNIT_VSOCK_NOP_H

#include "../../devices/virtio/vsock.h"

#include <errno.h>
#include <sys/types.h>

static inline int vsock_nop_connect(void *host, uint32_t port, virtio_vsock_handle h, void **stream)
{
	(void)host, (void)port, (void)h, (void)stream;
	return -ECONNREFUSED;
}
static inline void vsock_nop_accepted(void *host, void *stream, uint32_t local_port)
{
	(void)host, (void)stream, (void)local_port;
}
static inline ssize_t vsock_nop_io(void *host, void *stream, const struct iovec *iov, int n)
{
	(void)host, (void)stream, (void)iov, (void)n;
	return -EAGAIN;
}
static inline void vsock_nop_watch(void *host, void *stream, bool readable, bool writable)
{
	(void)host, (void)stream, (void)readable, (void)writable;
}
static inline void vsock_nop_stream(void *host, void *stream)
{
	(void)host, (void)stream;
}
static const struct virtio_vsock_host_ops vsock_nop_ops = {.connect = vsock_nop_connect,
							   .accepted = vsock_nop_accepted,
							   .readv = vsock_nop_io,
							   .writev = vsock_nop_io,
							   .watch = vsock_nop_watch,
							   .shutdown = vsock_nop_stream,
							   .close = vsock_nop_stream};

#endif /* EMBER_TESTS_UNIT_VSOCK_NOP_H */
