/* vmm/tap.h - the host side of --net: a tap device opened by name or an inherited tap fd checked, set up for virtio-net, and the card's MAC address. */
#ifndef EMBER_VMM_TAP_H
#define EMBER_VMM_TAP_H

/*
 * A tap for virtio-net (devices/virtio/net.h) carries Ethernet frames with
 * a 12-byte virtio_net_hdr_v1 in front: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR
 * and TUNSETVNETHDRSZ 12. Errors are negative errno with a message in err
 * that names the option and key ("--net tap=NAME: ..."). No state; any
 * thread.
 */

#include <ember/vmm.h>

#include <stdint.h>

#define VMM_TAP_NAME_MAX 15 /* IFNAMSIZ - 1 */
/* --net mtu=N: the range accepted (IPv4's minimum; the mtu field's 16 bits) */
#define VMM_NET_MTU_MIN 68u
#define VMM_NET_MTU_MAX 65535u

/* A valid interface name: 1..15 bytes, no '/', ':', whitespace, not "." or
 * "..". Returns 0 or -EINVAL. */
int vmm_tap_check_name(const char *name);

/* Opens /dev/net/tun and attaches tap NAME (creating it if it does not
 * exist and the caller may), close-on-exec, with the virtio header.
 * *fd is the caller's. Errors: -errno of open or TUNSETIFF (-EPERM: no
 * CAP_NET_ADMIN and not the tap's owner; -EBUSY: another process has it;
 * -EINVAL: NAME is not a tap, e.g. a tun), with a message. */
int vmm_tap_open(const char *name, int *fd, struct ember_error *err);

/* Checks that fd (inherited: --net fd=N) is a tap attached with IFF_TAP,
 * IFF_NO_PI and IFF_VNET_HDR (TUNGETIFF), copies its interface name into
 * name (VMM_TAP_NAME_MAX + 1 bytes) and, with dup_out, returns in *dup_out
 * a close-on-exec duplicate with the header size set (the caller's).
 * Errors: -EBADF (not open), -ENOTTY (not a tun/tap fd), -EINVAL (a tun, or
 * without NO_PI/VNET_HDR), with a message. */
int vmm_tap_check_fd(int fd, char *name, int *dup_out, struct ember_error *err);

/* "52:54:00:12:34:56" (hex digits, either case, ':' or '-'); a unicast
 * address (bit 0 of the first byte clear), not all zeros. Returns 0 or
 * -EINVAL. */
int vmm_tap_parse_mac(const char *s, uint8_t mac[6]);
/* A stable MAC for an interface name when none is given: a hash of the
 * name, locally administered (bit 1 of the first byte set), unicast. */
void vmm_tap_default_mac(const char *name, uint8_t mac[6]);
/* "xx:xx:xx:xx:xx:xx" into buf (at least 18 bytes). */
void vmm_tap_format_mac(const uint8_t mac[6], char *buf);

#endif /* EMBER_VMM_TAP_H */
