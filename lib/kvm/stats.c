/* lib/kvm/stats.c - reading KVM's binary statistics (the fd of KVM_GET_STATS_FD). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATS_MAX_NAME 4096u  /* the kernel's is 48 */
#define STATS_MAX_DESC 65536u /* the kernel has about 50 */

/* pread of exactly len bytes: 0, -errno, or -EPROTO for a short read. */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPROTO;
		done += (size_t)n;
	}
	return 0;
}

int ekvm_stats_read_header(int stats_fd, struct kvm_stats_header *hdr)
{
	if (stats_fd < 0 || !hdr)
		return -EINVAL;
	int r = pread_all(stats_fd, hdr, sizeof(*hdr), 0);
	if (r < 0)
		return r;
	if (hdr->name_size == 0 || hdr->name_size > STATS_MAX_NAME ||
	    hdr->num_desc > STATS_MAX_DESC)
		return -EPROTO;
	return 0;
}

size_t ekvm_stats_desc_size(const struct kvm_stats_header *hdr)
{
	return hdr ? sizeof(struct kvm_stats_desc) + hdr->name_size : 0;
}

int ekvm_stats_read_descriptors(int stats_fd, const struct kvm_stats_header *hdr,
				struct kvm_stats_desc **out)
{
	if (out)
		*out = NULL;
	if (stats_fd < 0 || !hdr || !out)
		return -EINVAL;
	if (hdr->name_size == 0 || hdr->name_size > STATS_MAX_NAME ||
	    hdr->num_desc > STATS_MAX_DESC)
		return -EINVAL;
	size_t stride = ekvm_stats_desc_size(hdr);
	size_t len = stride * hdr->num_desc;
	char *buf = calloc(1, len ? len : 1);
	if (!buf)
		return -ENOMEM;
	int r = pread_all(stats_fd, buf, len, hdr->desc_offset);
	if (r < 0) {
		free(buf);
		return r;
	}
	for (size_t i = 0; i < hdr->num_desc; i++)
		buf[i * stride + stride - 1] = '\0';
	*out = (struct kvm_stats_desc *)buf;
	return 0;
}

int ekvm_stats_read_values(int stats_fd, const struct kvm_stats_header *hdr,
			   const struct kvm_stats_desc *desc, uint64_t *values, size_t n)
{
	if (stats_fd < 0 || !hdr || !desc || (!values && n > 0))
		return -EINVAL;
	if (n > desc->size)
		n = desc->size;
	int r = pread_all(stats_fd, values, n * sizeof(uint64_t),
			  (uint64_t)hdr->data_offset + desc->offset);
	return r < 0 ? r : (int)n;
}

int ekvm_stats_read_by_name(int stats_fd, const char *name, uint64_t *value)
{
	if (stats_fd < 0 || !name || !value)
		return -EINVAL;
	struct kvm_stats_header hdr;
	int r = ekvm_stats_read_header(stats_fd, &hdr);
	if (r < 0)
		return r;
	struct kvm_stats_desc *descs;
	r = ekvm_stats_read_descriptors(stats_fd, &hdr, &descs);
	if (r < 0)
		return r;
	size_t stride = ekvm_stats_desc_size(&hdr);
	r = -ENOENT;
	for (size_t i = 0; i < hdr.num_desc; i++) {
		const struct kvm_stats_desc *d =
		    (const struct kvm_stats_desc *)((const char *)descs + i * stride);
		if (strcmp(d->name, name) != 0)
			continue;
		r = ekvm_stats_read_values(stats_fd, &hdr, d, value, 1);
		r = r < 0 ? r : (r == 1 ? 0 : -EPROTO);
		break;
	}
	free(descs);
	return r;
}
