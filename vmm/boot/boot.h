/* vmm/boot/boot.h - Linux x86-64 kernel loaders (bzImage, ELF/PVH), initrd placement, built-in initramfs. */
#ifndef EMBER_VMM_BOOT_H
#define EMBER_VMM_BOOT_H

#include <ember/vmm.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/io/mem.h"

/*
 * The loaders are split in two steps so that every check runs on a byte
 * buffer before anything touches guest memory (and so that a fuzzer can
 * drive them): *_parse() validates an image and extracts what the boot
 * needs; *_load() copies it into guest memory after checking every range
 * against it. All errors are -ENOEXEC (a malformed image) or -E2BIG (it does
 * not fit in guest memory), with a message in err.
 */

/* ------------------------------------------------------------ E820 map */
enum { VMM_E820_RAM = 1, VMM_E820_RESERVED = 2, VMM_E820_ACPI = 3 };
struct vmm_e820 {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};
#define VMM_E820_MAX 8

/* ------------------------------------------------------------ bzImage */
struct vmm_bzimage {
	uint16_t version;	/* boot protocol, e.g. 0x020f */
	unsigned setup_sects;	/* 512-byte sectors of real-mode setup (0 is refused) */
	uint64_t setup_size;	/* (setup_sects + 1) * 512: offset of the protected-mode code */
	uint64_t payload_size;	/* bytes of protected-mode code (rest of the file) */
	uint32_t syssize_bytes; /* what the header claims, 16 * syssize */
	uint8_t loadflags;
	uint16_t xloadflags;
	bool relocatable;
	uint32_t kernel_alignment;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t initrd_addr_max; /* highest address the initrd may occupy */
	uint32_t cmdline_size;	  /* longest command line, without the NUL */
	uint32_t header_end;	  /* end offset of the setup header in the image */
	/* The compressed kernel, from the start of the protected-mode code
	 * (protocol 2.08+; checked by vmm_bzimage_payload, not by parse). */
	uint32_t payload_offset;
	uint32_t payload_length;
};

/* Validates a bzImage (boot sector flag, "HdrS", protocol >= 2.12 with a
 * 64-bit entry, setup_sects 1..63, init_size at least the payload,
 * truncation) and fills *out. */
int vmm_bzimage_parse(const uint8_t *img, uint64_t len, struct vmm_bzimage *out,
		      struct ember_error *err);

/* Memory the kernel occupies from load_addr once it runs: the copied image
 * and the decompressor's [runtime address, + init_size) area. Returns the
 * end address (exclusive). */
uint64_t vmm_bzimage_end(const struct vmm_bzimage *bz, uint64_t load_addr);

/* Copies the protected-mode code to load_addr (read from fd, the file img
 * maps, when fd >= 0: see vmm_boot_copy);
 * -E2BIG if the kernel (up to vmm_bzimage_end) does not fit in RAM below
 * the hole. */
int vmm_bzimage_load(const struct vmm_mem *mem, const uint8_t *img, uint64_t len, int fd,
		     const struct vmm_bzimage *bz, uint64_t load_addr, struct ember_error *err);

/* What goes into the zero page besides the setup header. */
struct vmm_linux_boot {
	uint64_t cmdline_gpa;
	uint32_t cmdline_len; /* without the NUL */
	uint64_t initrd_gpa;  /* 0 and size 0: none */
	uint64_t initrd_size;
	uint64_t rsdp_gpa;
	const struct vmm_e820 *e820;
	unsigned e820_count;
};

/* Builds struct boot_params at zero_page_gpa: the image's setup header,
 * loader type, command line, initrd, E820 map and RSDP address. */
int vmm_bzimage_write_zero_page(const struct vmm_mem *mem, uint64_t zero_page_gpa,
				const uint8_t *img, uint64_t len, const struct vmm_bzimage *bz,
				const struct vmm_linux_boot *lb, struct ember_error *err);

/* ------------------------------------------------------------ bzImage payload (decompress.c) */

/* The compressions the x86 boot code can be built with (CONFIG_KERNEL_*),
 * told apart by their magic bytes. */
enum vmm_comp {
	VMM_COMP_UNKNOWN = 0,
	VMM_COMP_GZIP,
	VMM_COMP_BZIP2,
	VMM_COMP_LZMA,
	VMM_COMP_XZ,
	VMM_COMP_LZO, /* recognised, not decompressed (no liblzo2): boot protocol */
	VMM_COMP_LZ4, /* the lz4 legacy format (lz4 -l), as the kernel's build writes it */
	VMM_COMP_ZSTD,
};
/* "gzip", "xz", ...; "unknown". */
const char *vmm_comp_name(enum vmm_comp comp);
/* From the first bytes of a stream; VMM_COMP_UNKNOWN if none matches. */
enum vmm_comp vmm_comp_detect(const uint8_t *p, uint64_t n);
/* Whether vmm_decompress can decompress this format. */
bool vmm_comp_supported(enum vmm_comp comp);

/* Memory liblzma may use for an xz or lzma dictionary (the kernel's build
 * uses 32 MiB for xz, 64 MiB for lzma -9); a header asking for more is
 * refused as corrupt. */
#define VMM_DECOMP_MEMLIMIT (256ull << 20)

/*
 * Decompresses one stream of the given format from in[0, in_len) into
 * out[0, cap); *out_len receives the bytes written. Bytes after the end of
 * the stream are ignored. Errors: -ENOEXEC (corrupt or truncated data, a
 * failed integrity check, a dictionary above VMM_DECOMP_MEMLIMIT), -EFBIG
 * (the data decompresses to more than cap bytes; only cap bytes were
 * written), -ENOTSUP (a format vmm_comp_supported rejects), -ENOMEM; err
 * says which. Thread-safe (no shared state).
 */
int vmm_decompress(enum vmm_comp comp, const uint8_t *in, uint64_t in_len, uint8_t *out,
		   uint64_t cap, uint64_t *out_len, struct ember_error *err);

/* Where a bzImage's compressed kernel is and what it claims. */
struct vmm_bzpayload {
	uint64_t offset; /* in the image */
	uint64_t length; /* payload_length: the stream and its 4-byte size trailer */
	uint32_t size;	 /* the trailer: the size of the decompressed kernel */
	enum vmm_comp comp;
};
/* Locates the payload of a parsed bzImage (payload_offset/payload_length,
 * inside the protected-mode code, at least 8 bytes) and reads its format
 * and size trailer. A header that does not locate it inside the file gives
 * length 0 and VMM_COMP_UNKNOWN (the guest's decompressor does not need
 * those fields). -EINVAL only if bz does not match len. */
int vmm_bzimage_payload(const uint8_t *img, uint64_t len, const struct vmm_bzimage *bz,
			struct vmm_bzpayload *out, struct ember_error *err);

/*
 * Decompresses a bzImage's payload on the host into a new anonymous
 * mapping of exactly the size its trailer declares (*out, *out_len; free
 * with vmm_unmap_file). The output is bounded before anything is allocated:
 * the declared size must be at most the kernel's init_size (the kernel's
 * build guarantees it: the in-place decompression needs init_size bytes)
 * and at most limit (the caller's cap: guest RAM below 4 GiB); the
 * decompressor may not write past it. Errors: -ENOEXEC (a corrupt,
 * truncated or inconsistent payload: size above init_size, more or less
 * output than declared), -E2BIG (declared size above limit), -ENOTSUP (a
 * compression vmm_decompress does not read), -ENOMEM.
 */
int vmm_bzimage_unpack(const uint8_t *img, uint64_t len, const struct vmm_bzimage *bz,
		       uint64_t limit, uint8_t **out, uint64_t *out_len, struct ember_error *err);

/*
 * The boot path a bzImage takes for a requested one (auto, pvh, bzimage),
 * from what can be told without decompressing: EMBER_BOOT_PVH when the
 * payload's compression is one vmm_decompress reads, else
 * EMBER_BOOT_BZIMAGE (auto) or -ENOEXEC (pvh asked for). An ELF kernel
 * always takes PVH; bzimage asked for with an ELF is -EINVAL.
 */
int vmm_boot_choose(const uint8_t *img, uint64_t len, enum ember_kernel_format fmt,
		    enum ember_boot_path want, enum ember_boot_path *out, struct ember_error *err);
/* The same on a file (mapped, not read: only the header pages are touched). */
int vmm_boot_choose_file(const char *path, enum ember_kernel_format fmt, enum ember_boot_path want,
			 enum ember_boot_path *out, struct ember_error *err);

/* ------------------------------------------------------------ ELF / PVH */
#define VMM_ELF_MAX_SEGMENTS 16
struct vmm_elf_segment {
	uint64_t offset;
	uint64_t filesz;
	uint64_t paddr;
	uint64_t memsz;
	uint64_t vaddr;
};
/* File ranges of a segment that hold a zero-initialised (SHT_NOBITS)
 * section: the linker wrote zeros there (Linux's .bss and .brk sit in the
 * file because .init.scratch follows them); the loader leaves them to fresh,
 * already zero guest memory instead of copying or mapping 18 MiB of zeros. */
#define VMM_ELF_MAX_ZERO 8
struct vmm_elf_zero {
	uint64_t offset; /* page aligned */
	uint64_t len;	 /* a multiple of 4 KiB */
};
struct vmm_elf {
	uint32_t pvh_entry; /* XEN_ELFNOTE_PHYS32_ENTRY */
	unsigned nsegments;
	struct vmm_elf_segment segments[VMM_ELF_MAX_SEGMENTS];
	uint64_t low;  /* lowest p_paddr of a PT_LOAD */
	uint64_t high; /* end of the highest PT_LOAD (p_paddr + p_memsz) */
	unsigned nzero;
	struct vmm_elf_zero zero[VMM_ELF_MAX_ZERO];
	/* set when parse failed only for want of the PVH note (a valid ELF
	 * kernel built without CONFIG_PVH) */
	bool pvh_missing;
};

/* Validates an ELF64 x86-64 executable (header, program headers, PT_LOAD
 * ranges inside the file and not overlapping in physical memory, the PVH
 * note) and fills *out. */
int vmm_elf_parse(const uint8_t *img, uint64_t len, struct vmm_elf *out, struct ember_error *err);

/* Copies every PT_LOAD segment to its p_paddr (the zero-filled tail of a
 * segment is left as fresh memory already is); -E2BIG if a segment is
 * outside guest RAM, -ENOEXEC if one overlaps the low 1 MiB the VMM uses. */
int vmm_elf_load(const struct vmm_mem *mem, const uint8_t *img, uint64_t len, int fd,
		 const struct vmm_elf *elf, struct ember_error *err);

/* Builds the PVH struct hvm_start_info (version 1) at info_gpa with its
 * module list (the initrd) at modlist_gpa and memory map at memmap_gpa. */
int vmm_pvh_write_start_info(const struct vmm_mem *mem, uint64_t info_gpa, uint64_t modlist_gpa,
			     uint64_t memmap_gpa, const struct vmm_linux_boot *lb,
			     struct ember_error *err);

/* ------------------------------------------------------------ kernel cache (kcache.c) */

/*
 * Host-decompressed kernels are kept on disk so that a repeat boot of the
 * same bzImage decompresses nothing: one file per image, the vmlinux itself
 * (with the ELF's zero ranges as holes), loaded like any vmlinux. An entry
 * is named by a hash of the image's content and of its identity (st_dev,
 * st_ino, size, mtime in ns), so a replaced or modified file never meets an
 * entry of its old self. The directory and files are owner-only (0700,
 * 0600); an entry is written to a temporary file and renamed into place, and
 * is checked when used (a regular file of ours, of exactly the size the
 * payload declares, an ELF with a PVH note); one that fails is removed. The
 * VMM_KCACHE_KEEP most recently used entries are kept. No fsync: an entry
 * cut short by a host crash fails the size or ELF check.
 */
#define VMM_KCACHE_KEEP 4

/* ${XDG_CACHE_HOME}/ember/kernels, else ${HOME}/.cache/ember/kernels (each
 * only if an absolute path). -ENOENT (neither), -ENAMETOOLONG. */
int vmm_kcache_default_dir(char *out, size_t len);
/* A fast 64-bit non-cryptographic hash (not adversarial: it tells apart
 * kernels, it does not authenticate them). */
uint64_t vmm_kcache_hash(const uint8_t *p, uint64_t n);
/* The entry name for the image open at fd and mapped at img[0, len):
 * "<content hash>-<identity hash>.vmlinux". -EINVAL, -ESTALE (the file's
 * size is no longer len), -errno of fstat. */
int vmm_kcache_key(int fd, const uint8_t *img, uint64_t len, char *name, size_t cap);

struct vmm_kcache_hit {
	int fd;		     /* the entry, open read-only (-1: none) */
	const uint8_t *data; /* mapped read-only */
	uint64_t size;
	struct vmm_elf elf; /* parsed */
	char path[EMBER_PATH_MAX];
};
/* Looks dir/name up and checks it (above) against size, the payload's
 * declared size. 1: a hit, *hit filled (release it with
 * vmm_kcache_hit_release), its mtime renewed; 0: a miss (absent, or invalid
 * and then removed); why (may be NULL) says which, for a debug log line.
 * Never fails otherwise. */
int vmm_kcache_lookup(const char *dir, const char *name, uint64_t size, struct vmm_kcache_hit *hit,
		      struct ember_error *why);
void vmm_kcache_hit_release(struct vmm_kcache_hit *hit);
/* Stores the decompressed kernel buf[0, len) (elf: its parse) as dir/name:
 * creates dir (and parents) 0700 if missing, refuses one of another user,
 * writes a temporary file and renames it, then keeps the keep (0:
 * VMM_KCACHE_KEEP) most recently used entries. 0, with why saying what was
 * stored, or a negative errno with why saying why not (a cache that cannot
 * be written is no cache, not an error of the boot). Not safe against a
 * concurrent trim of the same directory removing a just-used entry (which
 * then only costs a decompression). */
int vmm_kcache_store(const char *dir, const char *name, const uint8_t *buf, uint64_t len,
		     const struct vmm_elf *elf, unsigned keep, struct ember_error *why);
/* Removes all but the keep most recently modified entries of dir (and
 * temporary files left for more than 10 minutes). Returns how many entries
 * were removed, or -errno of opendir, -ENOMEM. */
int vmm_kcache_trim(const char *dir, unsigned keep);

/* ------------------------------------------------------------ common */

/* Detects the format of an image from its first bytes: EMBER_KERNEL_BZIMAGE,
 * EMBER_KERNEL_ELF_PVH (any ELF; the PVH note is checked when loading), or
 * -ENOEXEC. */
int vmm_kernel_detect(const uint8_t *img, uint64_t len, enum ember_kernel_format *fmt,
		      struct ember_error *err);
int vmm_kernel_detect_file(const char *path, enum ember_kernel_format *fmt,
			   struct ember_error *err);

/* Puts img[offset, offset + len) at gpa: read from fd (the file img maps)
 * when fd >= 0, copied from img otherwise. 0 or -EFAULT (not inside guest
 * memory). (Mapping the file privately instead was measured slower: the
 * kernel then takes a copy-on-write fault for every text page it patches.) */
int vmm_boot_copy(const struct vmm_mem *mem, uint64_t gpa, const uint8_t *img, int fd,
		  uint64_t offset, uint64_t len);

/* Picks the initrd's address: page aligned, as high as possible with its end
 * <= min(top, max_end), not below floor. -E2BIG if it does not fit. */
int vmm_initrd_place(uint64_t size, uint64_t floor, uint64_t top, uint64_t max_end, uint64_t *gpa,
		     struct ember_error *err);

/* ------------------------------------------------------------ built-in initramfs */

/* Checks that path is a statically linked x86-64 ELF executable. */
int vmm_busybox_check(const char *path, struct ember_error *err);

/* A kernel module for the built-in initramfs: stored as lib/modules/NAME
 * (NAME a plain file name ending in ".ko"), loaded by /init with insmod in
 * the order given, before anything else runs. */
struct vmm_initramfs_module {
	const char *name;
	const uint8_t *data;
	uint64_t size;
};
#define VMM_INITRAMFS_MODULES_MAX 32

/* What the built-in /init does after loading the modules. */
enum vmm_init_kind {
	VMM_INIT_REPORT = 0, /* report what the guest sees, power off */
	VMM_INIT_SHELL = 1,  /* a busybox shell on the console */
	VMM_INIT_ROOT = 2,   /* mount root= (default /dev/vda) and switch_root to its init */
};

/*
 * Writes Ember's built-in initramfs (an uncompressed newc cpio archive: the
 * directories, /dev/console, /bin/busybox, the modules and an /init script
 * that loads them, then does what init_kind says: starts a shell, reports
 * what it sees and powers off, or mounts the root file system of the
 * command line's root= (rootfstype=, rootflags=, ro/rw; /dev/vda rw by
 * default) and switch_roots to init= (/sbin/init)) into buf, or, with buf
 * NULL, only computes its size. Returns the size in bytes, -E2BIG if cap is
 * too small, -EINVAL for no busybox, more than VMM_INITRAMFS_MODULES_MAX
 * modules, a bad module name or an unknown init_kind.
 */
int64_t vmm_initramfs_build(uint8_t *buf, uint64_t cap, const uint8_t *busybox,
			    uint64_t busybox_size, enum vmm_init_kind init_kind,
			    const struct vmm_initramfs_module *modules, unsigned nmodules);

/*
 * The kernel's release (`uname -r`, e.g. "6.1.0-57-amd64") read from its
 * image: a bzImage's kernel_version string, or an ELF vmlinux's
 * "Linux version " banner. Writes it NUL-terminated to out. Returns its
 * length, or -ENOENT (not found, or not a plausible release), -ENOSPC.
 */
int vmm_kernel_release(const uint8_t *kernel, uint64_t size, char *out, size_t len);

/* A release's module database: the text of modules.dep, modules.softdep and
 * modules.alias (NULL/0 for a file that is not there). */
struct vmm_moddb {
	const char *dep;
	size_t dep_len;
	const char *softdep;
	size_t softdep_len;
	const char *alias;
	size_t alias_len;
};
#define VMM_MODPATH_MAX 256

/*
 * The module files (paths as modules.dep writes them, relative to
 * /lib/modules/RELEASE) to insmod, in order, so that the modules names[]
 * load: each one after its hard dependencies (modules.dep) and its soft
 * "pre:" ones (modules.softdep, best effort), a name that is no module
 * looked up in modules.alias (every module with that alias, e.g. the
 * crypto-crc32c that ext4 wants), each file once. A name found nowhere is
 * skipped (built in, or not there: not an error). Writes them to out[0..max)
 * and returns their count, or -ENOENT (a hard dependency that modules.dep
 * does not list), -ELOOP (dependencies nested over 32 deep: a cycle),
 * -ENOSPC (more than max), -ENAMETOOLONG (a path of VMM_MODPATH_MAX or more),
 * -EINVAL. Reads only db; no allocation.
 */
int vmm_modules_resolve(const struct vmm_moddb *db, const char *const *names, unsigned nnames,
			char (*out)[VMM_MODPATH_MAX], unsigned max);

/*
 * The modules the built-in initramfs carries for a kernel release, when the
 * host has them in /lib/modules/RELEASE as plain .ko files, with their
 * dependencies (vmm_modules_resolve on that release's modules.dep,
 * .softdep and .alias): pvpanic-mmio (so a guest panic reaches the pvpanic
 * device), and with root, what mounting a root file system on virtio-blk
 * needs (virtio_mmio, virtio_blk, ext4 and their dependencies) and the other
 * virtio drivers (net, console, rng, balloon, vsock) and autofs4 and
 * binfmt_misc (systemd mounts them), since the root file system does not hold the host's modules. Maps each into mods[] (names
 * allocated; release both with vmm_initramfs_modules_free), stopping at the
 * first one it cannot map. Returns how many (0 when none: not an error).
 */
unsigned vmm_initramfs_modules(const char *release, bool root, struct vmm_initramfs_module *mods,
			       unsigned max);
/* The modules a virtio console (hvc0) needs, in load order, the same way:
 * virtio_mmio and virtio_console with their dependencies (virtio_ring,
 * virtio), all of them or none (0). */
unsigned vmm_initramfs_console_modules(const char *release, struct vmm_initramfs_module *mods,
				       unsigned max);
void vmm_initramfs_modules_free(struct vmm_initramfs_module *mods, unsigned n);

/* ------------------------------------------------------------ the whole boot */

/* Where and how vCPU 0 starts. */
enum vmm_entry_mode {
	VMM_ENTRY_LONG64, /* 64-bit boot protocol: paging on, rsi = boot_params */
	VMM_ENTRY_PVH32,  /* PVH: 32-bit protected mode, paging off, ebx = start_info */
};
struct vmm_boot_entry {
	enum vmm_entry_mode mode;
	uint64_t rip;
	uint64_t rsi;
	uint64_t rbx;
	uint64_t cr3; /* LONG64: the boot page tables */
	uint64_t gdt_base;
	uint16_t gdt_limit;
	/* For the log: what happened to a bzImage ("" if nothing to say): the
	 * host decompression and its time, or why it fell back to the boot
	 * protocol. */
	char note[200];
	/* For the log: what the kernel cache did (a hit, a store, why it was
	 * not used); "" if it was not consulted. */
	char cache_note[EMBER_ERROR_MAX];
};

struct vmm_boot_request {
	enum ember_kernel_format format;
	const char *kernel_name; /* for messages: "kernel NAME: ..." (NULL: "kernel") */
	const char *initrd_name; /* for messages: "initrd NAME: ..." (NULL: "initrd") */
	const uint8_t *kernel;
	uint64_t kernel_size;
	bool map_kernel; /* kernel_fd is the file kernel maps: read it from there */
	int kernel_fd;
	const uint8_t *initrd; /* NULL: none, unless builtin */
	uint64_t initrd_size;
	const uint8_t *busybox; /* builtin initramfs: the busybox to put in it */
	uint64_t busybox_size;
	bool builtin_initrd;
	bool interactive;
	bool root; /* builtin initramfs: mount root= and switch to it (VMM_INIT_ROOT) */
	const struct vmm_initramfs_module *modules; /* builtin initramfs: modules to load */
	unsigned nmodules;
	const char *cmdline;
	uint64_t rsdp_gpa; /* 0: none */
	const struct vmm_e820 *e820;
	unsigned e820_count;
	/* A bzImage's path (ignored for an ELF): EMBER_BOOT_AUTO (0) decompresses
	 * the payload on the host and enters through PVH when it can, and falls
	 * back to the boot protocol for a compression Ember does not read or a
	 * kernel without a PVH note; EMBER_BOOT_PVH fails instead of falling
	 * back; EMBER_BOOT_BZIMAGE always uses the boot protocol (the guest
	 * decompresses itself). */
	enum ember_boot_path boot;
	/* Cap on the host-decompressed kernel besides init_size and guest RAM
	 * (0: none); the fuzzers set it to stay fast. */
	uint64_t unpack_max;
	/* The kernel cache's directory for a bzImage decompressed on the host
	 * (NULL: no cache). Used only with map_kernel (the image's identity
	 * comes from kernel_fd). kcache_keep: entries kept (0: VMM_KCACHE_KEEP). */
	const char *kcache_dir;
	unsigned kcache_keep;
};

/* Linux's COMMAND_LINE_SIZE on x86 (2048, with the NUL): the PVH entry has
 * no header field for it, so it is the limit there. */
#define VMM_LINUX_CMDLINE_MAX 2047

/* What a boot needs, worked out from the image bytes, the initrd's size and
 * the RAM below the MMIO hole alone: no guest memory is touched. */
struct vmm_boot_plan {
	struct vmm_bzimage bz;	 /* EMBER_KERNEL_BZIMAGE */
	struct vmm_elf elf;	 /* EMBER_KERNEL_ELF_PVH */
	uint64_t kernel_end;	 /* end (exclusive) of the memory the kernel occupies */
	uint64_t cmdline_max;	 /* longest command line, without the NUL */
	uint64_t initrd_size;	 /* 0: no initrd */
	uint64_t initrd_max_end; /* the kernel's limit for the initrd's end */
	uint64_t initrd_gpa;	 /* where it goes (valid when initrd_size) */
	uint64_t min_low_ram;	 /* RAM the kernel and initrd need below the hole */
};

/*
 * Validates the request (image, command line length, initrd size) and
 * places the initrd as vmm_boot_load will, for low_end bytes of RAM below
 * the hole. Each message names its culprit: "kernel NAME: ..." or "initrd
 * NAME: ...". Errors: -ENOEXEC (malformed image, empty initrd, a kernel
 * that needs memory inside the MMIO hole), -E2BIG (the command line is too
 * long for the kernel, or the kernel or initrd do not fit in low_end: the
 * message gives the --mem they need), -EFBIG (the initrd does not fit under
 * the kernel's initrd_addr_max: more memory cannot help).
 */
int vmm_boot_plan(const struct vmm_boot_request *req, uint64_t low_end, struct vmm_boot_plan *plan,
		  struct ember_error *err);

/* The files a boot reads, by path (vmm_boot_open). */
struct vmm_boot_paths {
	enum ember_kernel_format format;
	const char *kernel;
	const char *initrd;  /* NULL or "": none (ignored with builtin_initrd) */
	const char *busybox; /* builtin_initrd: the busybox to put in it */
	bool builtin_initrd;
	bool console_modules; /* builtin_initrd: the virtio-console modules too (hvc0) */
	bool root;	      /* builtin_initrd: mount root= and switch to it (request.root) */
	bool interactive;
	const char *cmdline;
};

/* A boot's files mapped read-only, and the request made from them. */
struct vmm_boot_files {
	/* format, names, the kernel (mapped from kernel_fd: map_kernel), the
	 * initrd or the busybox and the host's modules for this kernel,
	 * builtin_initrd, interactive, cmdline. The caller adds what is not a
	 * file's (rsdp_gpa, e820, boot, kcache_dir, ...). */
	struct vmm_boot_request req;
	char release[128]; /* the kernel's release, when modules were looked up */
	struct vmm_initramfs_module mods[VMM_INITRAMFS_MODULES_MAX];
};

/*
 * Opens and maps the files of p for one boot and fills f->req from them:
 * the one place where both the check of a configuration (vmm_boot_plan in
 * ember_config_resolve) and the load (vmm_boot_load in the board) get their
 * request, so both see the same bytes the same way. With builtin_initrd,
 * the host's modules for the kernel's release are looked up
 * (vmm_initramfs_modules). Errors: -errno of open/fstat/mmap, -EISDIR,
 * each with a message naming the file ("kernel PATH: ...", "initrd PATH:
 * ...", "busybox PATH: ..."); on an error nothing stays open.
 */
int vmm_boot_open(const struct vmm_boot_paths *p, struct vmm_boot_files *f,
		  struct ember_error *err);
/* Unmaps and closes what vmm_boot_open opened; safe on a zeroed or closed
 * struct. */
void vmm_boot_close(struct vmm_boot_files *f);

/*
 * Loads a kernel (and initrd, command line, zero page or start_info, boot
 * GDT and page tables) into guest memory and fills *entry. Everything is
 * validated before it is written (vmm_boot_plan). Errors as vmm_boot_plan and
 * the loaders above.
 */
int vmm_boot_load(const struct vmm_mem *mem, const struct vmm_boot_request *req,
		  struct vmm_boot_entry *entry, struct ember_error *err);

#endif /* EMBER_VMM_BOOT_H */
