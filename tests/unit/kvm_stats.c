/* tests/unit/kvm_stats.c - the binary statistics reader on a synthetic stats file (no KVM). */
#include <ember/kvm.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/test.h"

#define NAME_SIZE 16u

/* A stats file laid out as KVM lays it out: header, id, descriptors, data. */
static int make_stats_file(uint32_t name_size, uint32_t num_desc, bool truncate_data)
{
	int fd = memfd_create("ember-stats", MFD_CLOEXEC);
	REQUIRE(fd >= 0);
	struct kvm_stats_header h = {
	    .name_size = name_size,
	    .num_desc = num_desc,
	    .id_offset = sizeof(struct kvm_stats_header),
	    .desc_offset = sizeof(struct kvm_stats_header) + 16,
	};
	size_t stride = sizeof(struct kvm_stats_desc) + NAME_SIZE;
	h.data_offset = h.desc_offset + 2 * (uint32_t)stride;
	REQUIRE(pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h));
	REQUIRE(pwrite(fd, "kvm-1/vcpu0\0\0\0\0\0", 16, h.id_offset) == 16);
	char d[2][sizeof(struct kvm_stats_desc) + NAME_SIZE];
	memset(d, 0, sizeof(d));
	struct kvm_stats_desc *a = (struct kvm_stats_desc *)d[0];
	struct kvm_stats_desc *b = (struct kvm_stats_desc *)d[1];
	a->flags = KVM_STATS_TYPE_CUMULATIVE;
	a->size = 1;
	a->offset = 0;
	strcpy(a->name, "io_exits");
	b->flags = KVM_STATS_TYPE_LINEAR_HIST;
	b->size = 3;
	b->offset = 8;
	/* a name that fills its field without a NUL: the reader ends it */
	memset(b->name, 'x', NAME_SIZE);
	REQUIRE(pwrite(fd, d, sizeof(d), h.desc_offset) == (ssize_t)sizeof(d));
	uint64_t data[4] = {42, 7, 8, 9};
	size_t n = truncate_data ? 2 * sizeof(uint64_t) : sizeof(data);
	REQUIRE(pwrite(fd, data, n, h.data_offset) == (ssize_t)n);
	return fd;
}

TEST(kvm_stats_reader)
{
	int fd = make_stats_file(NAME_SIZE, 2, false);
	struct kvm_stats_header h;
	REQUIRE_OK(ekvm_stats_read_header(fd, &h));
	CHECK_EQ(h.num_desc, 2);
	CHECK_EQ(ekvm_stats_desc_size(&h), sizeof(struct kvm_stats_desc) + NAME_SIZE);
	struct kvm_stats_desc *descs = NULL;
	REQUIRE_OK(ekvm_stats_read_descriptors(fd, &h, &descs));
	const struct kvm_stats_desc *b =
	    (const struct kvm_stats_desc *)((const char *)descs + ekvm_stats_desc_size(&h));
	CHECK_STR(descs[0].name, "io_exits");
	CHECK_EQ(strlen(b->name), NAME_SIZE - 1);
	uint64_t v[4] = {0};
	CHECK_EQ(ekvm_stats_read_values(fd, &h, b, v, 4), 3); /* bounded by desc->size */
	CHECK_EQ(v[0], 7);
	CHECK_EQ(v[2], 9);
	CHECK_EQ(v[3], 0);
	CHECK_EQ(ekvm_stats_read_values(fd, &h, b, v, 1), 1);
	free(descs);
	uint64_t val = 0;
	REQUIRE_OK(ekvm_stats_read_by_name(fd, "io_exits", &val));
	CHECK_EQ(val, 42);
	CHECK_ERR(ekvm_stats_read_by_name(fd, "no_such_stat", &val), -ENOENT);
	CHECK_ERR(ekvm_stats_read_by_name(fd, NULL, &val), -EINVAL);
	CHECK_ERR(ekvm_stats_read_header(-1, &h), -EINVAL);
	CHECK_ERR(ekvm_stats_read_header(fd, NULL), -EINVAL);
	descs = (struct kvm_stats_desc *)1;
	CHECK_ERR(ekvm_stats_read_descriptors(-1, &h, &descs), -EINVAL);
	CHECK(descs == NULL);
	close(fd);
}

TEST(kvm_stats_reader_bad_files)
{
	struct kvm_stats_header h;
	/* a header the reader refuses: no name size, absurd sizes */
	int fd = make_stats_file(0, 2, false);
	CHECK_ERR(ekvm_stats_read_header(fd, &h), -EPROTO);
	close(fd);
	fd = make_stats_file(1u << 20, 2, false);
	CHECK_ERR(ekvm_stats_read_header(fd, &h), -EPROTO);
	close(fd);
	fd = make_stats_file(NAME_SIZE, 1u << 30, false);
	CHECK_ERR(ekvm_stats_read_header(fd, &h), -EPROTO);
	close(fd);
	/* descriptors promised but the file ends first */
	fd = make_stats_file(NAME_SIZE, 200, false);
	REQUIRE_OK(ekvm_stats_read_header(fd, &h));
	struct kvm_stats_desc *descs = (struct kvm_stats_desc *)1;
	CHECK_ERR(ekvm_stats_read_descriptors(fd, &h, &descs), -EPROTO);
	CHECK(descs == NULL);
	close(fd);
	/* values cut short */
	fd = make_stats_file(NAME_SIZE, 2, true);
	REQUIRE_OK(ekvm_stats_read_header(fd, &h));
	REQUIRE_OK(ekvm_stats_read_descriptors(fd, &h, &descs));
	const struct kvm_stats_desc *b =
	    (const struct kvm_stats_desc *)((const char *)descs + ekvm_stats_desc_size(&h));
	uint64_t v[3];
	CHECK_ERR(ekvm_stats_read_values(fd, &h, b, v, 3), -EPROTO);
	free(descs);
	close(fd);
	/* an empty file, a pipe */
	fd = memfd_create("ember-empty", MFD_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_ERR(ekvm_stats_read_header(fd, &h), -EPROTO);
	close(fd);
	int p[2];
	REQUIRE(pipe(p) == 0);
	CHECK_ERR(ekvm_stats_read_header(p[0], &h), -ESPIPE);
	close(p[0]);
	close(p[1]);
}
