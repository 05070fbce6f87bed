/* vmm/boot/linux.c - boots Linux on x86-64: picks the loader, places cmdline and initrd, builds GDT and page tables. */
#include "boot.h"
#include "../../lib/io/util.h"
#include "layout.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int vmm_kernel_detect(const uint8_t *img, uint64_t len, enum ember_kernel_format *fmt,
		      struct ember_error *err)
{
	if (img && len >= SELFMAG && !memcmp(img, ELFMAG, SELFMAG)) {
		*fmt = EMBER_KERNEL_ELF_PVH;
		return 0;
	}
	if (img && len >= 0x206 && vmm_le16(img + 0x1fe) == 0xaa55 &&
	    !memcmp(img + 0x202, "HdrS", 4)) {
		*fmt = EMBER_KERNEL_BZIMAGE;
		return 0;
	}
	*fmt = EMBER_KERNEL_UNKNOWN;
	return vmm_errf(err, -ENOEXEC,
			"not a Linux kernel: neither a bzImage (boot sector and "
			"\"HdrS\" header) nor an ELF vmlinux");
}

int vmm_kernel_detect_file(const char *path, enum ember_kernel_format *fmt, struct ember_error *err)
{
	uint8_t buf[0x400];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmm_errf(err, -errno, "kernel %s: %s", path, strerror(errno));
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	int e = errno;
	close(fd);
	if (n < 0)
		return vmm_errf(err, -e, "kernel %s: %s", path, strerror(e));
	int r = vmm_kernel_detect(buf, (uint64_t)n, fmt, err);
	if (r < 0)
		return vmm_err_prefix(err, r, "kernel %s", path);
	return 0;
}

int vmm_boot_copy(const struct vmm_mem *mem, uint64_t gpa, const uint8_t *img, int fd,
		  uint64_t offset, uint64_t len)
{
	uint8_t *dst = vmm_mem_ptr(mem, gpa, len);
	if (!dst)
		return -EFAULT;
	/* read(): the kernel copies straight from the page cache, without
	 * faulting the source mapping in page by page first */
	uint64_t done = 0;
	while (fd >= 0 && done < len) {
		size_t chunk = (size_t)(len - done < (1u << 30) ? len - done : (1u << 30));
		ssize_t n = pread(fd, dst + done, chunk, (off_t)(offset + done));
		if (n <= 0)
			break; /* finish from the mapping */
		done += (uint64_t)n;
	}
	if (done < len)
		memcpy(dst + done, img + offset + done, (size_t)(len - done));
	return 0;
}

int vmm_initrd_place(uint64_t size, uint64_t floor, uint64_t top, uint64_t max_end, uint64_t *gpa,
		     struct ember_error *err)
{
	uint64_t end = top < max_end ? top : max_end;
	end = vmm_align_down(end, 4096);
	if (size == 0 || size > end || vmm_align_down(end - size, 4096) < floor)
		return vmm_errf(err, -E2BIG,
				"initrd: %llu KiB does not fit between the kernel's end (%llu MiB) "
				"and %llu MiB; use more --mem or a smaller initrd",
				(unsigned long long)size >> 10, (unsigned long long)floor >> 20,
				(unsigned long long)end >> 20);
	*gpa = vmm_align_down(end - size, 4096);
	return 0;
}

/* The boot GDT: flat segments for both entry modes. */
static int write_gdt(const struct vmm_mem *mem)
{
	uint64_t gdt[X86_GDT_ENTRIES] = {
	    [0] = 0,
	    [1] = 0,
	    [X86_SEL_CODE64 / 8] = 0x00af9b000000ffffULL, /* 64-bit code, present, DPL 0 */
	    [X86_SEL_DATA / 8] = 0x00cf93000000ffffULL,	  /* 4 GiB flat data, read/write */
	    [X86_SEL_CODE32 / 8] = 0x00cf9b000000ffffULL, /* 4 GiB flat 32-bit code */
	    [X86_SEL_TSS / 8] = 0x00008b0000000067ULL,	  /* 32-bit busy TSS, base 0 */
	};
	uint8_t raw[sizeof(gdt)];
	for (unsigned i = 0; i < X86_GDT_ENTRIES; i++)
		vmm_put64(raw + 8 * i, gdt[i]);
	return vmm_mem_write(mem, X86_GDT_ADDR, raw, sizeof(raw));
}

/* Identity map of 0..4 GiB with 2 MiB pages: PML4[0] -> PDPT, PDPT[0..3] -> PDs. */
static int write_page_tables(const struct vmm_mem *mem)
{
	uint8_t *pml4 = vmm_mem_ptr(mem, X86_PML4_ADDR, 4096);
	uint8_t *pdpt = vmm_mem_ptr(mem, X86_PDPT_ADDR, 4096);
	uint8_t *pd = vmm_mem_ptr(mem, X86_PD_ADDR, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	vmm_put64(pml4, X86_PDPT_ADDR | 0x3); /* present, writable */
	for (unsigned i = 0; i < 4; i++)
		vmm_put64(pdpt + 8 * i, (X86_PD_ADDR + 4096ULL * i) | 0x3);
	for (uint64_t i = 0; i < 4 * 512; i++)
		vmm_put64(pd + 8 * i, (i << 21) | 0x83); /* present, writable, 2 MiB page */
	return 0;
}

static uint64_t mib_up(uint64_t v)
{
	return (v + (1 << 20) - 1) >> 20;
}

/* The kernel's and the initrd's sizes against the RAM below the hole; the
 * messages name the one that does not fit and the --mem both need. */
static int plan_fit(const struct vmm_boot_request *req, uint64_t low_end, struct vmm_boot_plan *p,
		    struct ember_error *err)
{
	const char *kn = req->kernel_name ? req->kernel_name : "";
	const char *in = req->initrd_name ? req->initrd_name : "";
	const char *ksep = *kn ? " " : "", *isep = *in ? " " : "";
	uint64_t floor = vmm_align_up(p->kernel_end, 4096);
	uint64_t isize = vmm_align_up(p->initrd_size, 4096);
	p->min_low_ram = floor + isize;
	if (p->kernel_end > X86_MMIO_HOLE_START)
		return vmm_errf(err, -ENOEXEC,
				"kernel%s%s: needs guest memory up to %llu MiB, inside the MMIO "
				"hole at %llu MiB (more --mem cannot help)",
				ksep, kn, (unsigned long long)mib_up(p->kernel_end),
				(unsigned long long)X86_MMIO_HOLE_START >> 20);
	if (p->kernel_end > low_end)
		return vmm_errf(
		    err, -E2BIG,
		    "kernel%s%s: needs guest RAM up to %llu MiB (%s) but --mem gives %llu MiB; "
		    "this kernel%s --mem %lluM at the very least",
		    ksep, kn, (unsigned long long)mib_up(p->kernel_end),
		    req->format == EMBER_KERNEL_BZIMAGE ? "its decompression area, init_size"
							: "its highest ELF segment",
		    (unsigned long long)low_end >> 20,
		    p->initrd_size ? " and initrd need" : " needs",
		    (unsigned long long)mib_up(p->min_low_ram));
	if (!p->initrd_size)
		return 0;
	if (p->initrd_max_end <= floor || p->initrd_max_end - floor < isize)
		return vmm_errf(err, -EFBIG,
				"initrd%s%s: %llu MiB does not fit between the kernel's end "
				"(%llu MiB) and the highest address this kernel accepts for an "
				"initrd (initrd_addr_max, %llu MiB); more --mem cannot help: use "
				"a smaller initrd",
				isep, in, (unsigned long long)mib_up(p->initrd_size),
				(unsigned long long)mib_up(floor),
				(unsigned long long)p->initrd_max_end >> 20);
	if (vmm_initrd_place(p->initrd_size, floor, low_end, p->initrd_max_end, &p->initrd_gpa,
			     NULL) < 0)
		return vmm_errf(err, -E2BIG,
				"initrd%s%s: %llu MiB does not fit between the kernel's end "
				"(%llu MiB) and the end of RAM (%llu MiB); the kernel and initrd "
				"need --mem %lluM at the very least",
				isep, in, (unsigned long long)mib_up(p->initrd_size),
				(unsigned long long)mib_up(floor),
				(unsigned long long)low_end >> 20,
				(unsigned long long)mib_up(p->min_low_ram));
	return 0;
}

static enum vmm_init_kind init_kind(const struct vmm_boot_request *req)
{
	return req->root ? VMM_INIT_ROOT : req->interactive ? VMM_INIT_SHELL : VMM_INIT_REPORT;
}

int vmm_boot_plan(const struct vmm_boot_request *req, uint64_t low_end, struct vmm_boot_plan *p,
		  struct ember_error *err)
{
	int r;
	memset(p, 0, sizeof(*p));
	p->initrd_max_end = UINT64_MAX;
	const char *kn = req->kernel_name ? req->kernel_name : "";
	const char *ksep = *kn ? " " : "";
	switch (req->format) {
	case EMBER_KERNEL_BZIMAGE:
		r = vmm_bzimage_parse(req->kernel, req->kernel_size, &p->bz, err);
		if (r < 0)
			return req->kernel_name ? vmm_err_prefix(err, r, "kernel %s", kn) : r;
		p->kernel_end = vmm_bzimage_end(&p->bz, X86_BZIMAGE_LOAD_ADDR);
		p->cmdline_max = p->bz.cmdline_size;
		p->initrd_max_end = (uint64_t)p->bz.initrd_addr_max + 1;
		break;
	case EMBER_KERNEL_ELF_PVH:
		r = vmm_elf_parse(req->kernel, req->kernel_size, &p->elf, err);
		if (r < 0)
			return req->kernel_name ? vmm_err_prefix(err, r, "kernel %s", kn) : r;
		p->kernel_end = p->elf.high;
		p->cmdline_max = VMM_LINUX_CMDLINE_MAX;
		break;
	default:
		return vmm_errf(err, -EINVAL, "unknown kernel format %d", req->format);
	}
	if (p->cmdline_max >= X86_CMDLINE_MAX)
		p->cmdline_max = X86_CMDLINE_MAX - 1;
	size_t cmdline_len = req->cmdline ? strlen(req->cmdline) : 0;
	if (cmdline_len > p->cmdline_max)
		return vmm_errf(err, -E2BIG,
				"cmdline: %zu bytes is longer than kernel%s%s accepts (%llu, its "
				"%s)",
				cmdline_len, ksep, kn, (unsigned long long)p->cmdline_max,
				req->format == EMBER_KERNEL_BZIMAGE
				    ? "header's cmdline_size"
				    : "COMMAND_LINE_SIZE less the NUL");
	if (req->e820_count > VMM_E820_MAX || req->e820_count > X86_PVH_MEMMAP_MAX)
		return vmm_errf(err, -EINVAL, "too many E820 entries");

	if (req->builtin_initrd) {
		int64_t n = vmm_initramfs_build(NULL, 0, req->busybox, req->busybox_size,
						init_kind(req), req->modules, req->nmodules);
		if (n < 0)
			return vmm_errf(err, (int)n, "built-in initramfs: cannot size it");
		p->initrd_size = (uint64_t)n;
	} else if (req->initrd) {
		p->initrd_size = req->initrd_size;
		if (!p->initrd_size)
			return vmm_errf(err, -ENOEXEC, "initrd%s%s: the file is empty",
					req->initrd_name ? " " : "",
					req->initrd_name ? req->initrd_name : "");
	}
	return plan_fit(req, low_end, p, err);
}

static int load_image(const struct vmm_mem *mem, const struct vmm_boot_request *req,
		      struct vmm_boot_entry *entry, struct ember_error *err)
{
	int r;
	/* 1. validate the image and place the initrd, before anything is written */
	struct vmm_boot_plan plan;
	r = vmm_boot_plan(req, vmm_mem_low_end(mem), &plan, err);
	if (r < 0)
		return r;
	const struct vmm_bzimage bz = plan.bz;
	const struct vmm_elf elf = plan.elf;
	uint64_t initrd_size = plan.initrd_size, initrd_gpa = plan.initrd_gpa;
	size_t cmdline_len = req->cmdline ? strlen(req->cmdline) : 0;

	/* 2. load the kernel */
	int kfd = req->map_kernel ? req->kernel_fd : -1;
	if (req->format == EMBER_KERNEL_BZIMAGE)
		r = vmm_bzimage_load(mem, req->kernel, req->kernel_size, kfd, &bz,
				     X86_BZIMAGE_LOAD_ADDR, err);
	else
		r = vmm_elf_load(mem, req->kernel, req->kernel_size, kfd, &elf, err);
	if (r < 0)
		return r;

	/* 3. initrd, command line, GDT */
	if (req->builtin_initrd) {
		uint8_t *dst = vmm_mem_ptr(mem, initrd_gpa, initrd_size);
		if (!dst)
			return vmm_errf(err, -E2BIG, "initrd outside guest memory");
		int64_t n = vmm_initramfs_build(dst, initrd_size, req->busybox, req->busybox_size,
						init_kind(req), req->modules, req->nmodules);
		if (n < 0 || (uint64_t)n != initrd_size)
			return vmm_errf(err, -EIO,
					"built-in initramfs: size changed while writing");
	} else if (initrd_size) {
		if (vmm_mem_write(mem, initrd_gpa, req->initrd, initrd_size) < 0)
			return vmm_errf(err, -E2BIG, "initrd outside guest memory");
	}
	if (vmm_mem_write(mem, X86_CMDLINE_ADDR, req->cmdline ? req->cmdline : "",
			  cmdline_len + 1) < 0 ||
	    write_gdt(mem) < 0)
		return vmm_errf(err, -E2BIG, "guest memory too small for the boot structures");

	struct vmm_linux_boot lb = {
	    .cmdline_gpa = X86_CMDLINE_ADDR,
	    .cmdline_len = (uint32_t)cmdline_len,
	    .initrd_gpa = initrd_gpa,
	    .initrd_size = initrd_size,
	    .rsdp_gpa = req->rsdp_gpa,
	    .e820 = req->e820,
	    .e820_count = req->e820_count,
	};
	entry->gdt_base = X86_GDT_ADDR;
	entry->gdt_limit = X86_GDT_ENTRIES * 8 - 1;

	/* 4. the entry state */
	if (req->format == EMBER_KERNEL_BZIMAGE) {
		r = vmm_bzimage_write_zero_page(mem, X86_ZERO_PAGE_ADDR, req->kernel,
						req->kernel_size, &bz, &lb, err);
		if (r < 0)
			return r;
		if (write_page_tables(mem) < 0)
			return vmm_errf(err, -E2BIG, "guest memory too small for page tables");
		entry->mode = VMM_ENTRY_LONG64;
		entry->rip = X86_BZIMAGE_LOAD_ADDR + 0x200; /* startup_64 */
		entry->rsi = X86_ZERO_PAGE_ADDR;
		entry->cr3 = X86_PML4_ADDR;
	} else {
		r = vmm_pvh_write_start_info(mem, X86_PVH_INFO_ADDR, X86_PVH_MODLIST_ADDR,
					     X86_PVH_MEMMAP_ADDR, &lb, err);
		if (r < 0)
			return r;
		entry->mode = VMM_ENTRY_PVH32;
		entry->rip = elf.pvh_entry;
		entry->rbx = X86_PVH_INFO_ADDR;
	}
	return 0;
}

/* The ELF to boot, described as a request of its own. */
static void elf_request(struct vmm_boot_request *pvh_req, const struct vmm_boot_request *req,
			const uint8_t *kernel, uint64_t size, int fd)
{
	*pvh_req = *req;
	pvh_req->format = EMBER_KERNEL_ELF_PVH;
	pvh_req->kernel = kernel;
	pvh_req->kernel_size = size;
	pvh_req->map_kernel = fd >= 0;
	pvh_req->kernel_fd = fd;
}

/* A cached decompressed kernel for this image, if there is a valid one
 * (1, *hit and *pvh_req filled) or 0; entry->cache_note says which. The
 * entry's name goes to key for a store after a miss ("" if none). */
static int cache_lookup(const struct vmm_boot_request *req, const struct vmm_bzimage *bz,
			struct vmm_boot_request *pvh_req, struct vmm_kcache_hit *hit, char *key,
			size_t keylen, struct vmm_boot_entry *entry)
{
	struct vmm_bzpayload pl;
	struct ember_error why = {0};
	key[0] = 0;
	if (!req->kcache_dir || !req->map_kernel || req->kernel_fd < 0 ||
	    vmm_bzimage_payload(req->kernel, req->kernel_size, bz, &pl, NULL) < 0 ||
	    !vmm_comp_supported(pl.comp))
		return 0;
	uint64_t t0 = vmm_now_ns();
	int r = vmm_kcache_key(req->kernel_fd, req->kernel, req->kernel_size, key, keylen);
	if (r < 0) {
		key[0] = 0;
		snprintf(entry->cache_note, sizeof(entry->cache_note),
			 "kernel cache: not used (no key for the image: %s)", strerror(-r));
		return 0;
	}
	r = vmm_kcache_lookup(req->kcache_dir, key, pl.size, hit, &why);
	snprintf(entry->cache_note, sizeof(entry->cache_note), "%s", why.msg);
	if (r != 1)
		return 0;
	elf_request(pvh_req, req, hit->data, hit->size, hit->fd);
	snprintf(entry->note, sizeof(entry->note),
		 "bzImage: %s payload found decompressed in the kernel cache (%llu bytes, "
		 "looked up in %.1f ms); entering through PVH",
		 vmm_comp_name(pl.comp), (unsigned long long)hit->size,
		 (double)(vmm_now_ns() - t0) / 1e6);
	snprintf(entry->cache_note, sizeof(entry->cache_note), "kernel cache: hit %.400s",
		 hit->path);
	return 1;
}

/*
 * A bzImage not forced onto the boot protocol: decompress its payload on
 * the host (or take it from the kernel cache) and, if that is an ELF
 * vmlinux with a PVH note, describe it as the ELF to boot. Returns 1 (use
 * *pvh_req, whose kernel is *buf or the cache hit's), 0 (fall back to the
 * boot protocol: auto and a payload Ember cannot read or without a PVH
 * note; entry->note says why) or a negative errno.
 */
static int unpack_for_pvh(const struct vmm_mem *mem, const struct vmm_boot_request *req,
			  struct vmm_boot_request *pvh_req, uint8_t **buf, uint64_t *buf_len,
			  struct vmm_kcache_hit *hit, struct vmm_boot_entry *entry,
			  struct ember_error *err)
{
	struct vmm_bzimage bz;
	int r = vmm_bzimage_parse(req->kernel, req->kernel_size, &bz, err);
	if (r < 0)
		return r;
	bool forced = req->boot == EMBER_BOOT_PVH;
	/* the kernel's own limit still holds when it is entered through PVH */
	size_t cmdline_len = req->cmdline ? strlen(req->cmdline) : 0;
	if (cmdline_len > bz.cmdline_size)
		return vmm_errf(err, -E2BIG,
				"cmdline: %zu bytes is longer than this kernel accepts (%u)",
				cmdline_len, bz.cmdline_size);
	char key[64];
	if (cache_lookup(req, &bz, pvh_req, hit, key, sizeof(key), entry))
		return 1;
	uint64_t limit = vmm_mem_low_end(mem);
	if (req->unpack_max && req->unpack_max < limit)
		limit = req->unpack_max;
	uint64_t t0 = vmm_now_ns();
	r = vmm_bzimage_unpack(req->kernel, req->kernel_size, &bz, limit, buf, buf_len, err);
	uint64_t t1 = vmm_now_ns();
	if (r == -ENOTSUP && !forced) {
		snprintf(entry->note, sizeof(entry->note),
			 "%.120s; booting it through the boot protocol (the guest decompresses it)",
			 err ? err->msg : "bzImage: a payload Ember cannot decompress");
		if (err)
			*err = (struct ember_error){0};
		return 0;
	}
	if (r == -ENOTSUP) {
		if (err)
			err->code = -ENOEXEC;
		return vmm_err_prefix(err, -ENOEXEC, "boot pvh");
	}
	if (r < 0)
		return r;
	struct vmm_elf elf;
	struct ember_error eerr = {0};
	r = vmm_elf_parse(*buf, *buf_len, &elf, &eerr);
	if (r < 0 && elf.pvh_missing && !forced) {
		vmm_unmap_file(*buf, *buf_len);
		*buf = NULL;
		snprintf(entry->note, sizeof(entry->note),
			 "bzImage: the decompressed kernel has no PVH entry note; booting it "
			 "through the boot protocol");
		return 0;
	}
	if (r < 0)
		return vmm_errf(err, r, "bzImage: the decompressed payload: %s", eerr.msg);
	elf_request(pvh_req, req, *buf, *buf_len, -1);
	struct vmm_bzpayload pl;
	(void)vmm_bzimage_payload(req->kernel, req->kernel_size, &bz, &pl, NULL);
	snprintf(entry->note, sizeof(entry->note),
		 "bzImage: %s payload decompressed on the host (%llu -> %llu bytes) in %.1f ms; "
		 "entering through PVH",
		 vmm_comp_name(pl.comp), (unsigned long long)pl.length,
		 (unsigned long long)*buf_len, (double)(t1 - t0) / 1e6);
	if (key[0]) {
		struct ember_error why = {0};
		(void)vmm_kcache_store(req->kcache_dir, key, *buf, *buf_len, &elf, req->kcache_keep,
				       &why);
		/* an invalid entry it replaces is worth saying too */
		char before[sizeof(entry->cache_note)];
		memcpy(before, entry->cache_note, sizeof(before));
		snprintf(entry->cache_note, sizeof(entry->cache_note), "%.240s%s%.250s",
			 strstr(before, "invalid") ? before : "",
			 strstr(before, "invalid") ? "; " : "", why.msg);
	}
	return 1;
}

int vmm_boot_load(const struct vmm_mem *mem, const struct vmm_boot_request *req,
		  struct vmm_boot_entry *entry, struct ember_error *err)
{
	memset(entry, 0, sizeof(*entry));
	if (req->format != EMBER_KERNEL_BZIMAGE || req->boot == EMBER_BOOT_BZIMAGE)
		return load_image(mem, req, entry, err);
	if (req->boot != EMBER_BOOT_AUTO && req->boot != EMBER_BOOT_PVH)
		return vmm_errf(err, -EINVAL, "boot: invalid value %d", req->boot);
	struct vmm_boot_request pvh_req;
	uint8_t *buf = NULL;
	uint64_t buf_len = 0;
	struct vmm_kcache_hit hit = {.fd = -1};
	int r = unpack_for_pvh(mem, req, &pvh_req, &buf, &buf_len, &hit, entry, err);
	if (r >= 0) {
		char note[sizeof(entry->note)], cache_note[sizeof(entry->cache_note)];
		memcpy(note, entry->note, sizeof(note));
		memcpy(cache_note, entry->cache_note, sizeof(cache_note));
		r = load_image(mem, r == 1 ? &pvh_req : req, entry, err);
		memcpy(entry->note, note, sizeof(note));
		memcpy(entry->cache_note, cache_note, sizeof(cache_note));
	}
	if (buf)
		vmm_unmap_file(buf, buf_len);
	vmm_kcache_hit_release(&hit);
	return r;
}

int vmm_boot_open(const struct vmm_boot_paths *p, struct vmm_boot_files *f, struct ember_error *err)
{
	memset(f, 0, sizeof(*f));
	struct vmm_boot_request *req = &f->req;
	*req = (struct vmm_boot_request){
	    .format = p->format,
	    .kernel_name = p->kernel,
	    .initrd_name = p->initrd,
	    .kernel_fd = -1,
	    .builtin_initrd = p->builtin_initrd,
	    .interactive = p->interactive,
	    .root = p->root,
	    .modules = f->mods,
	    .cmdline = p->cmdline,
	};
	/* the kernel stays open: vmm_boot_copy reads it from its file, the
	 * kernel cache knows it by its file's identity */
	int fd = open(p->kernel, O_RDONLY | O_CLOEXEC);
	int r = fd < 0 ? -errno : vmm_map_fd(fd, &req->kernel, &req->kernel_size);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		req->kernel = NULL;
		return vmm_errf(err, r, "kernel %s: %s", p->kernel, strerror(-r));
	}
	req->kernel_fd = fd;
	req->map_kernel = true;
	const char *what = NULL, *path = NULL;
	if (p->builtin_initrd) {
		what = "busybox";
		path = p->busybox;
		r = vmm_map_file(path, &req->busybox, &req->busybox_size);
		/* the host's modules for this kernel, when it has them (pvpanic) */
		if (r == 0 && vmm_kernel_release(req->kernel, req->kernel_size, f->release,
						 sizeof(f->release)) > 0) {
			req->nmodules = vmm_initramfs_modules(f->release, p->root, f->mods,
							      VMM_INITRAMFS_MODULES_MAX);
			/* hvc0 exists only once these are loaded (a root's list has them) */
			if (p->console_modules && !p->root)
				req->nmodules += vmm_initramfs_console_modules(
				    f->release, f->mods + req->nmodules,
				    VMM_INITRAMFS_MODULES_MAX - req->nmodules);
		}
	} else if (p->initrd && p->initrd[0]) {
		what = "initrd";
		path = p->initrd;
		r = vmm_map_file(path, &req->initrd, &req->initrd_size);
	}
	if (r < 0) {
		req->busybox = req->initrd = NULL;
		vmm_boot_close(f);
		return vmm_errf(err, r, "%s %s: %s", what, path, strerror(-r));
	}
	return 0;
}

void vmm_boot_close(struct vmm_boot_files *f)
{
	struct vmm_boot_request *req = &f->req;
	vmm_unmap_file(req->kernel, req->kernel_size);
	vmm_unmap_file(req->initrd, req->initrd_size);
	vmm_unmap_file(req->busybox, req->busybox_size);
	vmm_initramfs_modules_free(f->mods, req->nmodules);
	if (req->map_kernel && req->kernel_fd >= 0)
		close(req->kernel_fd);
	memset(f, 0, sizeof(*f));
}
