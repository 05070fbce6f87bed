/* vmm/tap.c - --net's host side: tap devices attached by name or checked from an inherited fd, with the virtio header; MAC addresses. */
#include "tap.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define VNET_HDR_SZ 12 /* struct virtio_net_hdr_v1 */

int vmm_tap_check_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > VMM_TAP_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (name[i] == '/' || name[i] == ':' || isspace((unsigned char)name[i]) ||
		    !isprint((unsigned char)name[i]))
			return -EINVAL;
	return 0;
}

static int set_hdr_size(int fd)
{
	int sz = VNET_HDR_SZ;
	return ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0 ? -errno : 0;
}

int vmm_tap_open(const char *name, int *fd, struct ember_error *err)
{
	*fd = -1;
	if (vmm_tap_check_name(name) < 0)
		return vmm_errf(err, -EINVAL,
				"--net tap=%s: not an interface name (1 to %d bytes, "
				"no '/', ':' or spaces)",
				name ? name : "", VMM_TAP_NAME_MAX);
	int f = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (f < 0)
		return vmm_errf(err, -errno, "--net tap=%s: cannot open /dev/net/tun: %s%s", name,
				strerror(errno),
				errno == ENOENT ? " (load the tun module: modprobe tun)" : "");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(f, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(f);
		const char *why = e == EPERM
				      ? " (needs CAP_NET_ADMIN, or a persistent tap this user "
					"owns: ip tuntap add NAME mode tap user USER)"
				  : e == EBUSY	? " (another process has it open)"
				  : e == EINVAL ? " (an interface of that name that is not a tap?)"
						: "";
		return vmm_errf(err, -e, "--net tap=%s: cannot attach the tap: %s%s", name,
				strerror(e), why);
	}
	int r = set_hdr_size(f);
	if (r < 0) {
		close(f);
		return vmm_errf(err, r, "--net tap=%s: TUNSETVNETHDRSZ: %s", name, strerror(-r));
	}
	*fd = f;
	return 0;
}

int vmm_tap_check_fd(int fd, char *name, int *dup_out, struct ember_error *err)
{
	if (dup_out)
		*dup_out = -1;
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return vmm_errf(err, -EBADF, "--net fd=%d: not an open file descriptor", fd);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		int e = errno;
		return vmm_errf(err, e == EBADFD || e == ENOTTY || e == EINVAL ? -ENOTTY : -e,
				"--net fd=%d: not an attached tap (TUNGETIFF: %s)", fd,
				strerror(e));
	}
	unsigned want = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if ((ifr.ifr_flags & want) != want)
		return vmm_errf(err, -EINVAL,
				"--net fd=%d: %.*s is %s; it must be attached with IFF_TAP, "
				"IFF_NO_PI and IFF_VNET_HDR",
				fd, IFNAMSIZ, ifr.ifr_name,
				!(ifr.ifr_flags & IFF_TAP)	  ? "a tun, not a tap"
				: !(ifr.ifr_flags & IFF_VNET_HDR) ? "without IFF_VNET_HDR"
								  : "without IFF_NO_PI");
	if (name) {
		memcpy(name, ifr.ifr_name, VMM_TAP_NAME_MAX);
		name[VMM_TAP_NAME_MAX] = 0;
	}
	if (!dup_out)
		return 0;
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (d < 0)
		return vmm_errf(err, -errno, "--net fd=%d: dup: %s", fd, strerror(errno));
	int r = set_hdr_size(d);
	if (r < 0) {
		close(d);
		return vmm_errf(err, r, "--net fd=%d: TUNSETVNETHDRSZ: %s", fd, strerror(-r));
	}
	*dup_out = d;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int vmm_tap_parse_mac(const char *s, uint8_t mac[6])
{
	if (!s || strlen(s) != 17)
		return -EINVAL;
	uint8_t m[6];
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		int hi = hexval(p[0]), lo = hexval(p[1]);
		if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':' && p[2] != '-') ||
		    (i > 0 && p[-1] != s[2]))
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	if (m[0] & 1)
		return -EINVAL; /* multicast */
	if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}

void vmm_tap_default_mac(const char *name, uint8_t mac[6])
{
	/* FNV-1a 64 over "ember-net:" NAME: the same name, the same address */
	uint64_t h = 0xcbf29ce484222325ull;
	const char *pre = "ember-net:";
	for (const char *p = pre; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	for (const char *p = name ? name : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02); /* locally administered, unicast */
}

void vmm_tap_format_mac(const uint8_t mac[6], char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}
