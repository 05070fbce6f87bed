/* vmm/config.h - the configuration's private layout (public callers see struct ember_config as opaque) and device options. */
#ifndef EMBER_VMM_CONFIG_H
#define EMBER_VMM_CONFIG_H

#include <ember/vmm.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seccomp.h"

/*
 * Device options
 * --------------
 * A device option is repeatable (`--disk path=a.img --disk path=b.img,ro=on`)
 * and takes a list of key=value sub-options separated by commas. Each kind
 * is one entry of a table in config.c (struct vmm_devopt_type: its option
 * name, its keys with their types, which keys are required, and a resolve
 * check); adding --net or --vsock is adding an entry. Sub-options are parsed
 * and their keys and values checked when the option is set (an unknown key,
 * a bad on/off, a missing required key: "--disk: unknown key 'rw'"); what
 * needs the file system (the disk image exists and opens with the mode
 * asked) is checked by ember_config_resolve(), before anything is built.
 */
enum vmm_devopt_val {
	VMM_DEVOPT_STRING, /* any non-empty string */
	VMM_DEVOPT_BOOL,   /* on|off (also yes/no, true/false, 1/0) */
	VMM_DEVOPT_U64,	   /* a decimal number */
	/* rate limits (ratelimit keys): a number with an optional K/M/G/T suffix
	 * (powers of 1024, as ember_parse_size) */
	VMM_DEVOPT_SIZE, /* such a number */
	VMM_DEVOPT_RATE, /* such a number, optionally followed by "/s" */
};

struct vmm_devopt_key {
	const char *name;
	enum vmm_devopt_val type;
	bool required;
	size_t max_len;	   /* VMM_DEVOPT_STRING: longest value accepted (0: EMBER_PATH_MAX - 1) */
	const char *needs; /* another key that must be given with this one, or NULL */
};

/*
 * The rate limit sub-options of a device with a token-bucket limiter
 * (devices/virtio/ratelimit.h): --disk, --rng, and --net. Put
 * VMM_DEVOPT_RATE_KEYS in the kind's keys; vmm_virtio_rate_config() reads
 * them. bw=BYTES[/s] and ops=N[/s] are the refill rates (0 or absent:
 * unlimited), bw-burst=BYTES and ops-burst=N the bucket sizes (default: one
 * second's worth); a burst needs its rate.
 */
/* clang-format off */
#define VMM_DEVOPT_RATE_KEYS                                                   \
	{.name = "bw", .type = VMM_DEVOPT_RATE},                               \
	{.name = "bw-burst", .type = VMM_DEVOPT_SIZE, .needs = "bw"},          \
	{.name = "ops", .type = VMM_DEVOPT_RATE},                              \
	{.name = "ops-burst", .type = VMM_DEVOPT_SIZE, .needs = "ops"}
/* clang-format on */

struct vmm_devopt;
struct ember_config;

#define VMM_DEVOPT_MAX_KEYS 16
struct vmm_devopt_type {
	const char *name; /* the option without "--" and the ember_config_set key */
	const char *what; /* for messages and --dry-run: "virtio-blk disk" */
	/* the keys this kind accepts, NULL-terminated by name */
	const struct vmm_devopt_key keys[VMM_DEVOPT_MAX_KEYS];
	/* a bare value (no '=') is this key's value, e.g. "--disk IMG"; NULL: none */
	const char *implied_key;
	/* the option may be given with no value at all (--rng) */
	bool value_optional;
	/* ember_config_resolve's check of one entry (NULL: nothing to check) */
	int (*resolve)(const struct ember_config *cfg, const struct vmm_devopt *d,
		       struct ember_error *err);
};

/* One entry of a device option, as given. */
struct vmm_devopt {
	const struct vmm_devopt_type *type;
	unsigned index; /* among the entries of its type: 0 for the first --disk */
	char *spec;	/* the sub-option string as given (owned) */
	char *buf;	/* spec split in place; keys and values point into it (owned) */
	unsigned nkv;
	struct {
		const char *key;
		const char *value;
	} kv[VMM_DEVOPT_MAX_KEYS];
};

/* A sub-option's value, or NULL if it was not given. */
const char *vmm_devopt_get(const struct vmm_devopt *d, const char *key);
/* A VMM_DEVOPT_BOOL sub-option's value, or dflt if not given. */
bool vmm_devopt_bool(const struct vmm_devopt *d, const char *key, bool dflt);
/* A VMM_DEVOPT_U64 sub-option's value, or dflt if not given. */
uint64_t vmm_devopt_u64(const struct vmm_devopt *d, const char *key, uint64_t dflt);
/* A VMM_DEVOPT_SIZE or VMM_DEVOPT_RATE sub-option's value, or dflt. */
uint64_t vmm_devopt_size(const struct vmm_devopt *d, const char *key, uint64_t dflt);
/* The table entry for an option name ("disk"), or NULL. */
const struct vmm_devopt_type *vmm_devopt_type_find(const char *name);

#define VMM_CONFIG_MAX_DEVICES 64
#define VMM_HOTPLUG_MAX_SLOTS  4

/* The configuration. Only vmm/ sees these fields; the public API reaches
 * them through ember_config_set/get and the typed accessors. */
struct ember_config {
	/* Kernel image: a bzImage or an ELF vmlinux with a PVH note. "" means
	 * the host's own kernel (/boot/vmlinuz-$(uname -r), else the newest in
	 * /boot) with the built-in initramfs. */
	char kernel[EMBER_PATH_MAX];
	/* Initial ramdisk (any format the kernel reads). "" means none, or the
	 * built-in initramfs when the kernel is the default one. */
	char initrd[EMBER_PATH_MAX];
	/* Kernel command line: "" means Ember's default (EMBER_DEFAULT_CMDLINE
	 * plus what the built-in init needs); cmdline_append is added after. */
	char cmdline[EMBER_CMDLINE_MAX];
	char cmdline_append[EMBER_CMDLINE_MAX];
	/* How a bzImage boots (key "boot"): auto (default), pvh or bzimage.
	 * PVH skips the guest's own decompressor (and with it KASLR). */
	enum ember_boot_path boot;
	/* The kernel cache (key "kernel-cache", default on): a bzImage
	 * decompressed on the host is kept in kernel_cache_dir (key
	 * "kernel-cache-dir"; "" is the default, which ember_config_resolve
	 * fills in from XDG_CACHE_HOME or HOME, and leaves "" when neither is
	 * set: then no cache) for the next boot of the same image. */
	bool kernel_cache;
	char kernel_cache_dir[EMBER_PATH_MAX];
	uint64_t mem_size; /* bytes, multiple of 4 KiB (2 MiB with hugepages) */
	unsigned cpus;	   /* 1..EMBER_MAX_CPUS */
	enum ember_mem_backing mem_backing;
	bool hugepages; /* back guest memory with hugetlb pages */
	/* Key "seccomp": kill (default), log or off: the filters of the VM's
	 * threads (vmm/seccomp.h). */
	enum vmm_seccomp_mode seccomp;

	/* The built-in initramfs (a busybox shell or a report-and-power-off
	 * init), built by Ember in guest memory. Set by ember_config_resolve()
	 * when kernel and initrd are both left to their defaults, or explicitly
	 * with the key "initrd" = "builtin". */
	bool builtin_initrd;
	char busybox[EMBER_PATH_MAX]; /* static busybox to put in it (/bin/busybox) */
	/* Built-in init: 1 drops the user at a shell on the console, 0 reports
	 * what the guest sees (kernel, CPUs, memory) and powers off, -1 (the
	 * default) picks 1 when console_in is a terminal. Resolved to 0 or 1. */
	int interactive;
	/* --root: boot the root file system on the first --disk (/dev/vda, or
	 * the command line's root=) through the built-in initramfs, which loads
	 * the guest kernel's modules for it (virtio_mmio, virtio_blk, ext4...)
	 * from the host's /lib/modules/RELEASE and switch_roots to its init.
	 * Adds "root=/dev/vda rw" to the command line unless it has a root=. */
	bool root_fs;
	/* --reboot restart: a guest reboot resets the machine in place (vm.c's
	 * reset path) instead of ending the run with EMBER_STOP_REBOOT */
	bool reboot_restart;

	/* Console (the 8250 UART on ttyS0). -1 for none. The library reads and
	 * writes these fds; it never changes terminal modes (the caller does). */
	int console_in;
	int console_out;
	/* The guest's console device: false the UART (ttyS0), true a
	 * virtio-console (hvc0; the UART stays for early messages). Key
	 * "console", serial|virtio. */
	bool console_virtio;
	/* Typed on console_in, Ctrl-A then 'x' stops the VM (as in QEMU); Ctrl-A
	 * Ctrl-A sends one Ctrl-A. Default on. */
	bool console_escape;

	/* CLOCK_MONOTONIC nanoseconds when the run started, for boot-time
	 * marks (0: the time of ember_vm_create). */
	uint64_t start_ns;
	ember_log_fn log;
	void *log_opaque;
	enum ember_log_level log_level; /* messages above this level are dropped */

	/* Hotplug slots for virtio-net (ember_vm_net_hotplug_add): windows and
	 * GSIs reserved, DSDT devices whose _STA the VMM controls. Key
	 * "hotplug-slots", 0..VMM_HOTPLUG_MAX_SLOTS (default 0). */
	unsigned hotplug_slots;

	/* Device options in the order given (owned: vmm_config_fini frees). */
	struct vmm_devopt *devs;
	unsigned ndevs;

	/* Filled by ember_config_resolve() */
	bool resolved;
	enum ember_kernel_format kernel_format;
	/* The path chosen for boot from the image's header (EMBER_BOOT_PVH or
	 * EMBER_BOOT_BZIMAGE). With boot auto, a bzImage resolved to PVH can
	 * still fall back to the boot protocol when the VM is built, if its
	 * decompressed kernel has no PVH note. */
	enum ember_boot_path boot_path;
};

/* Fills *cfg with the defaults (what ember_config_new returns). Owns
 * nothing until a device option is added. */
void vmm_config_init(struct ember_config *cfg);
/* Frees what *cfg owns (its device list) and leaves it empty; the struct
 * itself is the caller's. A zeroed struct is fine. */
void vmm_config_fini(struct ember_config *cfg);
/* Deep copy of src into *dst (uninitialised): -ENOMEM. */
int vmm_config_copy(struct ember_config *dst, const struct ember_config *src);
/* Appends one device option entry ("disk", "path=x,ro=on"): parses and
 * checks its sub-options. Errors: -EINVAL (syntax, unknown key, bad value,
 * missing key), -ENAMETOOLONG, -E2BIG (too many devices), -ENOMEM. */
int vmm_config_add_device(struct ember_config *cfg, const struct vmm_devopt_type *type,
			  const char *spec, struct ember_error *err);

/* cfg's device of type t numbered index among that type's (0: the first), or
 * NULL if it has none; *count (if not NULL): how many of type t it has. */
struct vmm_devopt *vmm_config_device(const struct ember_config *cfg,
				     const struct vmm_devopt_type *t, unsigned index,
				     unsigned *count);

/*
 * A restore's change to one device of a saved configuration: the host side
 * of device `index` (0: the first) of kind `kind` ("disk", "net", "vsock")
 * takes the sub-options in spec ("key=value,..."), the device's other
 * sub-options stay as saved. Only what the guest cannot see may change: a
 * disk's path, a NIC's tap (or fd: one replaces the other), a vsock's
 * socket. Errors (err says which): -EINVAL (an unknown kind, a key that is
 * not the host side's or not key=value, a bad value), -ENOENT (the
 * configuration has no such device), -ENAMETOOLONG, -ENOMEM. On error the
 * configuration is unchanged.
 */
int vmm_config_override_device(struct ember_config *cfg, const char *kind, unsigned index,
			       const char *spec, struct ember_error *err);

/* ember_config_resolve for a configuration a snapshot saved (vmm/snapshot.c):
 * the checks that do not involve the kernel, initrd or command line (they
 * are in the saved guest memory); marks it resolved. Errors as resolve. */
int vmm_config_resolve_restored(struct ember_config *cfg, struct ember_error *err);

struct vmm_boot_files;
/* vmm_boot_open (vmm/boot/boot.h) on cfg's kernel, initrd or built-in
 * initramfs, with cmdline: the one request ember_config_resolve plans and
 * the board loads. Errors as vmm_boot_open. */
int vmm_config_boot_open(const struct ember_config *cfg, const char *cmdline,
			 struct vmm_boot_files *f, struct ember_error *err);

#endif /* EMBER_VMM_CONFIG_H */
