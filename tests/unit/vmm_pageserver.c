/* tests/unit/vmm_pageserver.c - the userfaultfd page server on plain anonymous and memfd mappings (no KVM). */
#include "../lib/test.h"

#include "../../lib/io/mem.h"
#include "../../vmm/pageserver.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NPAGES 64
#define PG     4096

static size_t resident(void *p, size_t len)
{
	unsigned char vec[NPAGES];
	size_t n = 0;
	if (mincore(p, len, vec) == 0)
		for (size_t i = 0; i < len / PG; i++)
			n += vec[i] & 1;
	return n;
}

struct reader {
	volatile uint8_t *p;
	uint64_t sum;
};

/* Touches every page from a thread other than the server's. */
static void *read_all(void *arg)
{
	struct reader *r = arg;
	for (size_t i = 0; i < NPAGES; i++)
		r->sum += r->p[i * PG] + r->p[i * PG + PG - 1];
	return NULL;
}

static int tmp_file(void)
{
	char path[] = "/tmp/ember-ps-XXXXXX";
	int fd = mkstemp(path);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* A base file: even pages hold (page index + 1) in every byte, odd ones are holes. */
TEST(pageserver_serves_a_sparse_base_file_to_another_thread)
{
	struct ember_error err = {0};
	int fd = tmp_file();
	REQUIRE(fd >= 0);
	uint8_t page[PG];
	REQUIRE_OK(ftruncate(fd, 2 * PG + (off_t)NPAGES * PG));
	for (int i = 0; i < NPAGES; i += 2) {
		memset(page, i + 1, PG);
		REQUIRE_EQ(pwrite(fd, page, PG, 2 * PG + (off_t)i * PG), PG);
	}
	uint8_t *m =
	    mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(m != MAP_FAILED);
	struct vmm_pageserver *ps;
	int r = vmm_ps_create(&ps, m, NPAGES * PG, -1, false, &err);
	if (r == -EPERM)
		TEST_SKIP("userfaultfd refused here: %s", err.msg);
	REQUIRE_OK(r);
	REQUIRE_OK(vmm_ps_register(ps, &err));
	REQUIRE_OK(vmm_ps_set_base(ps, fd, 2 * PG, &err));
	close(fd); /* the server keeps its own copy */
	struct reader rd = {.p = m};
	pthread_t t;
	REQUIRE_OK(pthread_create(&t, NULL, read_all, &rd));
	pthread_join(t, NULL);
	for (int i = 0; i < NPAGES; i++)
		for (int k = 0; k < PG; k += 1021)
			REQUIRE_EQ(m[i * PG + k], i % 2 ? 0 : i + 1);
	struct vmm_ps_stats st;
	vmm_ps_stats(ps, &st);
	CHECK_EQ(st.faults, NPAGES);
	CHECK_EQ(st.bytes_copied, NPAGES / 2 * PG);
	CHECK_EQ(st.zero_pages, NPAGES / 2);
	CHECK_EQ(st.errors, 0);
	vmm_ps_destroy(ps);
	munmap(m, NPAGES * PG);
}

static void swap_round_trip(int memfd, uint8_t *m)
{
	struct ember_error err = {0};
	for (int i = 0; i < NPAGES; i++)
		if (i % 4)
			memset(m + i * PG, 0xa0 + i, PG); /* every 4th page stays untouched */
	struct vmm_pageserver *ps;
	int r = vmm_ps_create(&ps, m, NPAGES * PG, memfd, false, &err);
	if (r == -EPERM)
		TEST_SKIP("userfaultfd refused here: %s", err.msg);
	REQUIRE_OK(r);
	REQUIRE_OK(vmm_ps_register(ps, &err));
	CHECK_EQ(resident(m, NPAGES * PG), NPAGES / 4 * 3);
	int64_t out = vmm_ps_swap_out(ps, "/tmp", &err);
	CHECK_EQ(out, NPAGES / 4 * 3);
	CHECK_EQ(resident(m, NPAGES * PG), 0);
	struct vmm_ps_stats st;
	vmm_ps_stats(ps, &st);
	CHECK_EQ(st.swapped, NPAGES / 4 * 3);
	/* a discarded page reads zero, not its swapped contents */
	vmm_ps_discarded(ps, 1 * PG, PG);
	struct reader rd = {.p = m};
	pthread_t t;
	REQUIRE_OK(pthread_create(&t, NULL, read_all, &rd));
	pthread_join(t, NULL);
	for (int i = 0; i < NPAGES; i++)
		REQUIRE_EQ(m[i * PG + 7], i % 4 && i != 1 ? 0xa0 + i : 0);
	vmm_ps_stats(ps, &st);
	CHECK_EQ(st.faults, NPAGES);
	CHECK_EQ(st.bytes_copied, (NPAGES / 4 * 3 - 1) * PG);
	CHECK_EQ(st.swapped, 0);
	/* out again, then everything back at once with no fault */
	m[5 * PG] = 0x55;
	CHECK(vmm_ps_swap_out(ps, "/tmp", &err) > 0);
	REQUIRE_OK(vmm_ps_populate(ps, false, &err));
	vmm_ps_stats(ps, &st);
	CHECK_EQ(st.swapped, 0);
	uint64_t faults = st.faults;
	CHECK_EQ(m[5 * PG], 0x55);
	CHECK_EQ(m[6 * PG + 100], 0xa0 + 6);
	vmm_ps_stats(ps, &st);
	CHECK_EQ(st.faults, faults);
	vmm_ps_unregister(ps);
	CHECK(!vmm_ps_registered(ps));
	vmm_ps_destroy(ps);
	/* unregistered: memory is plain again */
	m[3 * PG] = 1;
	CHECK_EQ(m[3 * PG], 1);
}

TEST(pageserver_swap_out_and_back_anonymous)
{
	uint8_t *m =
	    mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(m != MAP_FAILED);
	madvise(m, NPAGES * PG, MADV_NOHUGEPAGE);
	swap_round_trip(-1, m);
	munmap(m, NPAGES * PG);
}

TEST(pageserver_swap_out_and_back_memfd)
{
	int fd = memfd_create("ps-test", MFD_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE_OK(ftruncate(fd, NPAGES * PG));
	uint8_t *m = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(m != MAP_FAILED);
	swap_round_trip(fd, m);
	munmap(m, NPAGES * PG);
	close(fd);
}

TEST(pageserver_refuses_bad_sources_and_ranges)
{
	struct ember_error err = {0};
	uint8_t *m =
	    mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(m != MAP_FAILED);
	struct vmm_pageserver *ps;
	CHECK_ERR(vmm_ps_create(&ps, m + 1, PG, -1, false, &err), -EINVAL);
	int r = vmm_ps_create(&ps, m, NPAGES * PG, -1, false, &err);
	if (r == -EPERM)
		TEST_SKIP("userfaultfd refused here: %s", err.msg);
	REQUIRE_OK(r);
	REQUIRE_OK(vmm_ps_register(ps, &err));
	int fd = tmp_file();
	REQUIRE(fd >= 0);
	REQUIRE_OK(ftruncate(fd, NPAGES * PG - 1)); /* one byte short */
	CHECK_ERR(vmm_ps_set_base(ps, fd, 0, &err), -EINVAL);
	CHECK(strstr(err.msg, "truncated") != NULL);
	REQUIRE_OK(ftruncate(fd, NPAGES * PG));
	CHECK_ERR(vmm_ps_set_base(ps, fd, PG, &err), -EINVAL);
	CHECK_ERR(vmm_ps_set_base(ps, -1, 0, &err), -EBADF);
	CHECK_OK(vmm_ps_set_base(ps, fd, 0, &err));
	CHECK(vmm_ps_has_base(ps));
	CHECK(vmm_ps_swap_out(ps, "/nonexistent-dir", &err) < 0);
	CHECK(strstr(err.msg, "/nonexistent-dir") != NULL);
	close(fd);
	vmm_ps_destroy(ps);
	/* a file mapping that is not shared memory does not register */
	fd = tmp_file();
	REQUIRE_OK(ftruncate(fd, PG));
	uint8_t *f = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
	REQUIRE(f != MAP_FAILED);
	REQUIRE_OK(vmm_ps_create(&ps, f, PG, -1, false, &err));
	CHECK_ERR(vmm_ps_register(ps, &err), -EOPNOTSUPP);
	CHECK(strstr(err.msg, "cannot register") != NULL);
	CHECK(!vmm_ps_registered(ps));
	vmm_ps_destroy(ps);
	munmap(f, PG);
	close(fd);
	munmap(m, NPAGES * PG);
}
