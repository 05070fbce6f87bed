/* vmm/boot/decompress.c - a bzImage's compressed kernel, decompressed on the host (liblzma, zlib, libzstd, liblz4, libbz2). */
#include "boot.h"
#include "../../lib/io/util.h"

#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* The lz4 legacy format (lib/decompress_unlz4.c): a magic, then blocks of a
 * 4-byte compressed size and the block, each decompressing to at most 8 MiB
 * (the magic may repeat between blocks). */
#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20)

const char *vmm_comp_name(enum vmm_comp comp)
{
	switch (comp) {
	case VMM_COMP_GZIP:
		return "gzip";
	case VMM_COMP_BZIP2:
		return "bzip2";
	case VMM_COMP_LZMA:
		return "lzma";
	case VMM_COMP_XZ:
		return "xz";
	case VMM_COMP_LZO:
		return "lzo";
	case VMM_COMP_LZ4:
		return "lz4";
	case VMM_COMP_ZSTD:
		return "zstd";
	case VMM_COMP_UNKNOWN:
		break;
	}
	return "unknown";
}

enum vmm_comp vmm_comp_detect(const uint8_t *p, uint64_t n)
{
	static const struct {
		enum vmm_comp comp;
		uint8_t len;
		uint8_t magic[6];
	} magics[] = {
	    {VMM_COMP_GZIP, 2, {0x1f, 0x8b}},
	    {VMM_COMP_BZIP2, 3, {'B', 'Z', 'h'}},
	    /* lzma -9's header: lc=3 lp=0 pb=2 (0x5d), then a dictionary size
	     * whose low bytes are zero for every power of two >= 64 KiB */
	    {VMM_COMP_LZMA, 3, {0x5d, 0x00, 0x00}},
	    {VMM_COMP_XZ, 6, {0xfd, '7', 'z', 'X', 'Z', 0x00}},
	    {VMM_COMP_LZO, 4, {0x89, 'L', 'Z', 'O'}},
	    {VMM_COMP_LZ4, 4, {0x02, 0x21, 0x4c, 0x18}},
	    {VMM_COMP_ZSTD, 4, {0x28, 0xb5, 0x2f, 0xfd}},
	};
	for (size_t i = 0; p && i < sizeof(magics) / sizeof(magics[0]); i++)
		if (n >= magics[i].len && !memcmp(p, magics[i].magic, magics[i].len))
			return magics[i].comp;
	return VMM_COMP_UNKNOWN;
}

bool vmm_comp_supported(enum vmm_comp comp)
{
	return comp != VMM_COMP_UNKNOWN && comp != VMM_COMP_LZO;
}

/* Each decoder: 0 at the end of the stream with *done bytes written, or a
 * negative errno with err filled. */
#define TOO_BIG(err, name, cap)                                                          \
	vmm_errf(err, -EFBIG, "%s: the data decompresses to more than %llu bytes", name, \
		 (unsigned long long)(cap))

static int unxz(bool alone, const uint8_t *in, uint64_t in_len, uint8_t *out, uint64_t cap,
		uint64_t *done, struct ember_error *err)
{
	const char *name = alone ? "lzma" : "xz";
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret ret = alone ? lzma_alone_decoder(&s, VMM_DECOMP_MEMLIMIT)
			     : lzma_stream_decoder(&s, VMM_DECOMP_MEMLIMIT, 0);
	if (ret != LZMA_OK)
		return vmm_errf(err, -ENOMEM, "%s: cannot start the decoder (liblzma error %d)",
				name, ret);
	s.next_in = in;
	s.avail_in = (size_t)in_len;
	s.next_out = out;
	s.avail_out = (size_t)cap;
	do
		ret = lzma_code(&s, LZMA_FINISH);
	while (ret == LZMA_OK);
	*done = cap - s.avail_out;
	bool out_full = s.avail_out == 0;
	lzma_end(&s);
	switch (ret) {
	case LZMA_STREAM_END:
		return 0;
	case LZMA_BUF_ERROR:
		if (out_full)
			return TOO_BIG(err, name, cap);
		return vmm_errf(err, -ENOEXEC, "%s: truncated: the data ends inside the stream",
				name);
	case LZMA_MEMLIMIT_ERROR:
	case LZMA_MEM_ERROR:
		return vmm_errf(err, -ENOEXEC,
				"%s: the stream asks for more than %llu MiB to decode", name,
				VMM_DECOMP_MEMLIMIT >> 20);
	case LZMA_FORMAT_ERROR:
		return vmm_errf(err, -ENOEXEC, "%s: not an %s stream", name, name);
	default:
		return vmm_errf(err, -ENOEXEC,
				"%s: corrupt data after %llu decompressed bytes (liblzma error %d)",
				name, (unsigned long long)*done, ret);
	}
}

static int gunzip(const uint8_t *in, uint64_t in_len, uint8_t *out, uint64_t cap, uint64_t *done,
		  struct ember_error *err)
{
	if (in_len > UINT32_MAX || cap > UINT32_MAX)
		return vmm_errf(err, -ENOEXEC, "gzip: stream of 4 GiB or more");
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) /* gzip header and trailer */
		return vmm_errf(err, -ENOMEM, "gzip: cannot start the decoder");
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)in_len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	int ret;
	do
		ret = inflate(&z, Z_FINISH);
	while (ret == Z_OK);
	*done = cap - z.avail_out;
	bool out_full = z.avail_out == 0;
	const char *msg = z.msg;
	char why[96];
	snprintf(why, sizeof(why), "%s", msg ? msg : "");
	inflateEnd(&z);
	if (ret == Z_STREAM_END)
		return 0;
	if (ret == Z_BUF_ERROR && out_full)
		return TOO_BIG(err, "gzip", cap);
	if (ret == Z_BUF_ERROR)
		return vmm_errf(err, -ENOEXEC, "gzip: truncated: the data ends inside the stream");
	return vmm_errf(err, -ENOEXEC, "gzip: corrupt data after %llu decompressed bytes (%s)",
			(unsigned long long)*done, why[0] ? why : "zlib error");
}

static int bunzip2(const uint8_t *in, uint64_t in_len, uint8_t *out, uint64_t cap, uint64_t *done,
		   struct ember_error *err)
{
	if (in_len > UINT32_MAX || cap > UINT32_MAX)
		return vmm_errf(err, -ENOEXEC, "bzip2: stream of 4 GiB or more");
	bz_stream s;
	memset(&s, 0, sizeof(s));
	if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK)
		return vmm_errf(err, -ENOMEM, "bzip2: cannot start the decoder");
	s.next_in = (char *)(uintptr_t)in;
	s.avail_in = (unsigned)in_len;
	s.next_out = (char *)out;
	s.avail_out = (unsigned)cap;
	int ret;
	for (;;) {
		unsigned before_in = s.avail_in, before_out = s.avail_out;
		ret = BZ2_bzDecompress(&s);
		if (ret != BZ_OK || s.avail_out == 0 ||
		    (s.avail_in == before_in && s.avail_out == before_out))
			break;
	}
	*done = cap - s.avail_out;
	bool out_full = s.avail_out == 0;
	BZ2_bzDecompressEnd(&s);
	if (ret == BZ_STREAM_END)
		return 0;
	if (ret == BZ_OK && out_full)
		return TOO_BIG(err, "bzip2", cap);
	if (ret == BZ_OK)
		return vmm_errf(err, -ENOEXEC, "bzip2: truncated: the data ends inside the stream");
	return vmm_errf(err, -ENOEXEC,
			"bzip2: corrupt data after %llu decompressed bytes (libbz2 error %d)",
			(unsigned long long)*done, ret);
}

static int unzstd(const uint8_t *in, uint64_t in_len, uint8_t *out, uint64_t cap, uint64_t *done,
		  struct ember_error *err)
{
	*done = 0;
	/* one frame, decompressed in one call: no window buffer is allocated */
	size_t frame = ZSTD_findFrameCompressedSize(in, (size_t)in_len);
	if (ZSTD_isError(frame))
		return vmm_errf(err, -ENOEXEC, "zstd: %s", ZSTD_getErrorName(frame));
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	if (!dctx)
		return vmm_errf(err, -ENOMEM, "zstd: cannot start the decoder");
	size_t n = ZSTD_decompressDCtx(dctx, out, (size_t)cap, in, frame);
	ZSTD_freeDCtx(dctx);
	if (ZSTD_isError(n)) {
		if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall)
			return TOO_BIG(err, "zstd", cap);
		return vmm_errf(err, -ENOEXEC, "zstd: corrupt data (%s)", ZSTD_getErrorName(n));
	}
	*done = n;
	return 0;
}

static int unlz4(const uint8_t *in, uint64_t in_len, uint8_t *out, uint64_t cap, uint64_t *done,
		 struct ember_error *err)
{
	*done = 0;
	if (in_len < 4 || vmm_le32(in) != LZ4_LEGACY_MAGIC)
		return vmm_errf(err, -ENOEXEC, "lz4: no legacy-format magic");
	uint64_t off = 4, pos = 0;
	unsigned block = 0;
	while (off < in_len) {
		if (in_len - off < 4)
			return vmm_errf(err, -ENOEXEC, "lz4: truncated: a block size is cut off");
		uint32_t n = vmm_le32(in + off);
		off += 4;
		if (n == LZ4_LEGACY_MAGIC)
			continue;
		if (n > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK) || n > in_len - off)
			return vmm_errf(err, -ENOEXEC,
					"lz4: block %u of %u bytes runs past the end of the data",
					block, n);
		if (pos == cap)
			return TOO_BIG(err, "lz4", cap);
		uint64_t room = cap - pos < LZ4_LEGACY_BLOCK ? cap - pos : LZ4_LEGACY_BLOCK;
		int got = LZ4_decompress_safe((const char *)in + off, (char *)out + pos, (int)n,
					      (int)room);
		if (got < 0 && room < LZ4_LEGACY_BLOCK) {
			/* too little room, or corrupt: decode the block aside to tell */
			char *tmp = malloc(LZ4_LEGACY_BLOCK);
			if (!tmp)
				return vmm_errf(err, -ENOMEM, "lz4: no memory for a block");
			int all = LZ4_decompress_safe((const char *)in + off, tmp, (int)n,
						      (int)LZ4_LEGACY_BLOCK);
			free(tmp);
			if (all >= 0)
				return TOO_BIG(err, "lz4", cap);
		}
		if (got < 0)
			return vmm_errf(err, -ENOEXEC, "lz4: block %u is corrupt", block);
		pos += (uint64_t)got;
		off += n;
		block++;
		*done = pos;
	}
	return 0;
}

int vmm_decompress(enum vmm_comp comp, const uint8_t *in, uint64_t in_len, uint8_t *out,
		   uint64_t cap, uint64_t *out_len, struct ember_error *err)
{
	uint64_t done = 0;
	int r;
	if (!in || !out || !out_len)
		return vmm_errf(err, -EINVAL, "decompress: no buffer");
	if (in_len > SIZE_MAX || cap > SIZE_MAX)
		return vmm_errf(err, -EINVAL, "decompress: buffer too large");
	switch (comp) {
	case VMM_COMP_XZ:
	case VMM_COMP_LZMA:
		r = unxz(comp == VMM_COMP_LZMA, in, in_len, out, cap, &done, err);
		break;
	case VMM_COMP_GZIP:
		r = gunzip(in, in_len, out, cap, &done, err);
		break;
	case VMM_COMP_BZIP2:
		r = bunzip2(in, in_len, out, cap, &done, err);
		break;
	case VMM_COMP_ZSTD:
		r = unzstd(in, in_len, out, cap, &done, err);
		break;
	case VMM_COMP_LZ4:
		r = unlz4(in, in_len, out, cap, &done, err);
		break;
	default:
		return vmm_errf(err, -ENOTSUP, "%s: Ember cannot decompress this format",
				vmm_comp_name(comp));
	}
	*out_len = done;
	return r;
}

int vmm_bzimage_payload(const uint8_t *img, uint64_t len, const struct vmm_bzimage *bz,
			struct vmm_bzpayload *out, struct ember_error *err)
{
	memset(out, 0, sizeof(*out));
	if (bz->setup_size + bz->payload_size != len)
		return vmm_errf(err, -EINVAL, "bzImage: image length changed since it was parsed");
	/* not located inside the file: left to the guest's decompressor */
	if (bz->payload_length < 8 ||
	    vmm_range_exceeds(bz->payload_offset, bz->payload_length, bz->payload_size))
		return 0;
	out->offset = bz->setup_size + bz->payload_offset;
	out->length = bz->payload_length;
	out->comp = vmm_comp_detect(img + out->offset, out->length);
	/* the build appends the decompressed size (gzip's own trailer ends with it) */
	out->size = vmm_le32(img + out->offset + out->length - 4);
	return 0;
}

int vmm_bzimage_unpack(const uint8_t *img, uint64_t len, const struct vmm_bzimage *bz,
		       uint64_t limit, uint8_t **out, uint64_t *out_len, struct ember_error *err)
{
	struct vmm_bzpayload pl;
	*out = NULL;
	*out_len = 0;
	int r = vmm_bzimage_payload(img, len, bz, &pl, err);
	if (r < 0)
		return r;
	const char *name = vmm_comp_name(pl.comp);
	if (!pl.length)
		return vmm_errf(err, -ENOTSUP,
				"bzImage: payload_offset %#x and payload_length %u do not locate a "
				"compressed kernel inside the file",
				bz->payload_offset, bz->payload_length);
	if (!vmm_comp_supported(pl.comp))
		return vmm_errf(err, -ENOTSUP,
				"bzImage: the compressed kernel is %s, which Ember cannot "
				"decompress",
				pl.comp == VMM_COMP_UNKNOWN ? "in an unknown format" : name);
	if (pl.size < 64)
		return vmm_errf(err, -ENOEXEC,
				"bzImage: the %s payload declares %u decompressed bytes (corrupt)",
				name, pl.size);
	if (pl.size > bz->init_size)
		return vmm_errf(err, -ENOEXEC,
				"bzImage: the %s payload declares %u decompressed bytes, more than "
				"the kernel's init_size (%u): corrupt",
				name, pl.size, bz->init_size);
	if (pl.size > limit)
		return vmm_errf(err, -E2BIG,
				"bzImage: the %s payload declares %u MiB decompressed, more than "
				"%llu MiB of guest RAM; use more --mem",
				name, pl.size >> 20, (unsigned long long)limit >> 20);
	uint64_t map_len = vmm_align_up(pl.size, 4096);
	/* populated at once: cheaper than a fault per page while decompressing */
	void *buf = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED)
		return vmm_errf(err, -ENOMEM,
				"bzImage: no memory for the %u-byte decompressed kernel", pl.size);
	/* gzip's stream includes the size trailer; the others' stops before it */
	uint64_t in_len = pl.comp == VMM_COMP_GZIP ? pl.length : pl.length - 4;
	uint64_t done = 0;
	r = vmm_decompress(pl.comp, img + pl.offset, in_len, buf, pl.size, &done, err);
	if (r == -EFBIG)
		r = vmm_errf(err, -ENOEXEC,
			     "bzImage: the %s payload decompresses to more than the %u bytes it "
			     "declares: corrupt",
			     name, pl.size);
	else if (r < 0)
		r = vmm_err_prefix(err, r, "bzImage: %s payload", name);
	else if (done != pl.size)
		r = vmm_errf(err, -ENOEXEC,
			     "bzImage: the %s payload decompresses to %llu bytes, not the %u it "
			     "declares: corrupt",
			     name, (unsigned long long)done, pl.size);
	if (r < 0) {
		munmap(buf, map_len);
		return r;
	}
	*out = buf;
	*out_len = pl.size;
	return 0;
}

int vmm_boot_choose(const uint8_t *img, uint64_t len, enum ember_kernel_format fmt,
		    enum ember_boot_path want, enum ember_boot_path *out, struct ember_error *err)
{
	if (want != EMBER_BOOT_AUTO && want != EMBER_BOOT_PVH && want != EMBER_BOOT_BZIMAGE)
		return vmm_errf(err, -EINVAL, "boot: invalid value %d", want);
	if (fmt == EMBER_KERNEL_ELF_PVH) {
		if (want == EMBER_BOOT_BZIMAGE)
			return vmm_errf(
			    err, -EINVAL,
			    "boot bzimage: the kernel is an ELF vmlinux, which has no "
			    "boot-protocol header (use a bzImage, or boot auto or pvh)");
		*out = EMBER_BOOT_PVH;
		return 0;
	}
	if (fmt != EMBER_KERNEL_BZIMAGE)
		return vmm_errf(err, -EINVAL, "unknown kernel format %d", fmt);
	if (want == EMBER_BOOT_BZIMAGE) {
		*out = EMBER_BOOT_BZIMAGE;
		return 0;
	}
	struct vmm_bzimage bz;
	struct vmm_bzpayload pl;
	int r = vmm_bzimage_parse(img, len, &bz, err);
	if (r == 0)
		r = vmm_bzimage_payload(img, len, &bz, &pl, err);
	if (r < 0)
		return r;
	if (vmm_comp_supported(pl.comp)) {
		*out = EMBER_BOOT_PVH;
		return 0;
	}
	if (want == EMBER_BOOT_PVH)
		return vmm_errf(err, -ENOEXEC,
				"boot pvh: the bzImage's compressed kernel is %s, which Ember "
				"cannot decompress (boot auto or bzimage lets the guest do it)",
				!pl.length		      ? "not located by its header"
				: pl.comp == VMM_COMP_UNKNOWN ? "in an unknown format"
							      : vmm_comp_name(pl.comp));
	*out = EMBER_BOOT_BZIMAGE;
	return 0;
}

int vmm_boot_choose_file(const char *path, enum ember_kernel_format fmt, enum ember_boot_path want,
			 enum ember_boot_path *out, struct ember_error *err)
{
	if (fmt == EMBER_KERNEL_ELF_PVH || want == EMBER_BOOT_BZIMAGE)
		return vmm_boot_choose(NULL, 0, fmt, want, out, err);
	const uint8_t *img;
	uint64_t len;
	int r = vmm_map_file(path, &img, &len);
	if (r < 0)
		return vmm_errf(err, r, "kernel %s: %s", path, strerror(-r));
	r = vmm_boot_choose(img, len, fmt, want, out, err);
	vmm_unmap_file(img, len);
	if (r < 0)
		return vmm_err_prefix(err, r, "kernel %s", path);
	return 0;
}
