/* lib/io/util.c - error messages, the monotonic clock and file mapping (lib/io/util.h). */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int vmm_errf(struct ember_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return code;
}

int vmm_err_prefix(struct ember_error *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	char prefix[EMBER_ERROR_MAX], old[EMBER_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = 0;
	if (!err->code)
		err->code = code;
	const char *rest = old[0] ? old : strerror(-err->code);
	int n = snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, rest);
	if (n < 0)
		err->msg[0] = 0;
	return err->code;
}

uint64_t vmm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int vmm_map_fd(int fd, const uint8_t **data, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		/* empty or not a regular file: nothing to map */
		static const uint8_t empty[1];
		*data = empty;
		*size = 0;
		return S_ISREG(st.st_mode) ? 0 : -EINVAL;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*data = p;
	*size = (uint64_t)st.st_size;
	return 0;
}

int vmm_map_file(const char *path, const uint8_t **data, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = vmm_map_fd(fd, data, size);
	close(fd);
	return r;
}

void vmm_unmap_file(const uint8_t *data, uint64_t size)
{
	if (data && size)
		munmap((void *)data, (size_t)size);
}
