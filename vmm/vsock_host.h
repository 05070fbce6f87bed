/* vmm/vsock_host.h - the host end of virtio-vsock: Firecracker's hybrid vsock on Unix sockets, on the VM's event loop. */
#ifndef EMBER_VMM_VSOCK_HOST_H
#define EMBER_VMM_VSOCK_HOST_H

/*
 * The protocol (Firecracker's "hybrid vsock", so tools written for it work
 * unchanged):
 *   host-initiated: Ember listens on the Unix socket PATH. A client
 *     connects and writes "CONNECT <port>\n" (decimal guest port, at most
 *     VMM_VSOCK_LINE_MAX bytes with the newline); Ember asks the guest, and
 *     when the guest accepts writes "OK <hostport>\n" (the host end's port)
 *     and the connection carries the stream from then on. A bad line, a
 *     refusal (RST), a full table or a deadline missed (the line, then the
 *     guest's answer, VMM_VSOCK_CONNECT_TIMEOUT_MS each) closes the
 *     client's connection.
 *   guest-initiated: a guest connection to host port P is a connection to
 *     the Unix socket "PATH_P"; nothing listening there is a refusal (RST).
 * Every socket is nonblocking and served on the loop given at creation (the
 * VM's I/O thread); the device (devices/virtio/vsock.h) does the protocol
 * and calls back through vmm_vsock_host_ops. While the VM is paused
 * (*paused, under *dev_lock) no socket is served; vmm_vsock_host_resume
 * re-arms them.
 *
 * PATH: at most sizeof(sun_path) - 1 bytes; an existing file there must be
 * a socket nobody listens on (a stale one from an earlier run, replaced), a
 * live socket or any other file is refused. The socket file is removed on
 * destroy.
 *
 * Lock order: dev_lock, then the device's transport lock, then the muxer's
 * own mutex (the ops run under the transport lock).
 */

#include "../devices/virtio/vsock.h"

#include <ember/loop.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define VMM_VSOCK_LINE_MAX    32u /* "CONNECT 4294967295\n" and some slack */
#define VMM_VSOCK_MAX_UNNAMED 64u /* host clients that have not sent their CONNECT line */
/* A host client has this long to send its CONNECT line, and the guest as
 * long again to accept or refuse; then the client's connection is closed
 * (and the guest told RST). */
#define VMM_VSOCK_CONNECT_TIMEOUT_MS 5000u

struct vmm_vsock_host;

extern const struct virtio_vsock_host_ops vmm_vsock_host_ops;

/* Checks PATH as above without changing anything: 0, -ENAMETOOLONG,
 * -EEXIST (not a socket, or a live one), -errno of lstat. msg says why. */
int vmm_vsock_host_check_path(const char *path, char *msg, size_t msglen);

/* Binds and listens on path (replacing a stale socket). dev_lock/paused
 * may be NULL (no pause). Returns 0, or -errno with msg. */
int vmm_vsock_host_create(struct ember_loop *loop, const char *path, pthread_mutex_t *dev_lock,
			  const bool *paused, struct vmm_vsock_host **out, char *msg,
			  size_t msglen);
/* The device the muxer serves (before start). */
void vmm_vsock_host_bind(struct vmm_vsock_host *h, struct virtio_vsock *dev);
/* Starts accepting on the loop. 0 or -errno. */
int vmm_vsock_host_start(struct vmm_vsock_host *h);
/* Changes VMM_VSOCK_CONNECT_TIMEOUT_MS (tests). Any thread. */
void vmm_vsock_host_set_timeout(struct vmm_vsock_host *h, unsigned ms);
/* After a pause: serve every socket again. dev_lock held or not needed. */
void vmm_vsock_host_resume(struct vmm_vsock_host *h);
/* Frees every stream (after the device was destroyed), closes the
 * listener and removes the socket file. NULL is allowed. */
void vmm_vsock_host_destroy(struct vmm_vsock_host *h);

#endif /* EMBER_VMM_VSOCK_HOST_H */
