/* vmm/config.c - the VMM's configuration: defaults, key/value settings, arguments, resolve, format. */
#include "config.h"
#include "devmgr.h"
#include "internal.h"
#include "tap.h"
#include "boot/boot.h"
#include "boot/layout.h"
#include "vsock_host.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

void vmm_config_init(struct ember_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = EMBER_DEFAULT_MEM;
	cfg->cpus = 1;
	cfg->mem_backing = EMBER_MEM_ANON;
	snprintf(cfg->busybox, sizeof(cfg->busybox), "/bin/busybox");
	cfg->interactive = -1;
	cfg->console_in = 0;
	cfg->console_out = 1;
	cfg->console_escape = true;
	cfg->log_level = EMBER_LOG_INFO;
	cfg->kernel_cache = true;
}

static void devopt_free(struct vmm_devopt *d)
{
	free(d->spec);
	free(d->buf);
	memset(d, 0, sizeof(*d));
}

void vmm_config_fini(struct ember_config *cfg)
{
	for (unsigned i = 0; i < cfg->ndevs; i++)
		devopt_free(&cfg->devs[i]);
	free(cfg->devs);
	cfg->devs = NULL;
	cfg->ndevs = 0;
}

int vmm_config_copy(struct ember_config *dst, const struct ember_config *src)
{
	*dst = *src;
	dst->devs = NULL;
	dst->ndevs = 0;
	for (unsigned i = 0; i < src->ndevs; i++) {
		int r = vmm_config_add_device(dst, src->devs[i].type, src->devs[i].spec, NULL);
		if (r < 0) {
			vmm_config_fini(dst);
			return r;
		}
	}
	return 0;
}

int ember_config_new(struct ember_config **out)
{
	if (!out)
		return -EINVAL;
	*out = malloc(sizeof(**out));
	if (!*out)
		return -ENOMEM;
	vmm_config_init(*out);
	return 0;
}

void ember_config_free(struct ember_config *cfg)
{
	if (!cfg)
		return;
	vmm_config_fini(cfg);
	free(cfg);
}

int ember_config_set_console(struct ember_config *cfg, int in_fd, int out_fd)
{
	if (!cfg || in_fd < -1 || out_fd < -1)
		return -EINVAL;
	cfg->console_in = in_fd;
	cfg->console_out = out_fd;
	cfg->resolved = false; /* interactive=auto depends on console_in */
	return 0;
}

void ember_config_set_log(struct ember_config *cfg, ember_log_fn log, void *opaque)
{
	cfg->log = log;
	cfg->log_opaque = opaque;
}

void ember_config_set_start_ns(struct ember_config *cfg, uint64_t start_ns)
{
	cfg->start_ns = start_ns;
}

uint64_t ember_config_mem_size(const struct ember_config *cfg)
{
	return cfg->mem_size;
}

unsigned ember_config_cpus(const struct ember_config *cfg)
{
	return cfg->cpus;
}

enum ember_log_level ember_config_log_level(const struct ember_config *cfg)
{
	return cfg->log_level;
}

int ember_parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	uint64_t v = 0;
	const char *p = s;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	uint64_t unit = default_unit;
	if (*p) {
		switch (tolower((unsigned char)*p)) {
		case 'b':
			unit = 1;
			break;
		case 'k':
			unit = 1ull << 10;
			break;
		case 'm':
			unit = 1ull << 20;
			break;
		case 'g':
			unit = 1ull << 30;
			break;
		case 't':
			unit = 1ull << 40;
			break;
		default:
			return -EINVAL;
		}
		p++;
		if (unit != 1) {
			if (strcasecmp(p, "ib") == 0)
				p += 2;
			else if (strcasecmp(p, "b") == 0)
				p += 1;
		}
		if (*p)
			return -EINVAL;
	}
	if (unit && v > UINT64_MAX / unit)
		return -ERANGE;
	*out = v * unit;
	return 0;
}

static int set_string(char *dst, size_t cap, const char *key, const char *value,
		      struct ember_error *err)
{
	size_t n = strlen(value);
	if (n >= cap)
		return vmm_errf(err, -ENAMETOOLONG,
				"%s: value is %zu bytes long, at most %zu allowed", key, n,
				cap - 1);
	memcpy(dst, value, n + 1);
	return 0;
}

static int parse_bool(const char *key, const char *value, bool *out, struct ember_error *err)
{
	if (!strcmp(value, "on") || !strcmp(value, "yes") || !strcmp(value, "true") ||
	    !strcmp(value, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(value, "off") || !strcmp(value, "no") || !strcmp(value, "false") ||
	    !strcmp(value, "0")) {
		*out = false;
		return 0;
	}
	return vmm_errf(err, -EINVAL, "%s: '%s' is not on or off", key, value);
}

/* ---------------------------------------------------------------- device options */

static int disk_resolve(const struct ember_config *cfg, const struct vmm_devopt *d,
			struct ember_error *err);
static int vsock_resolve(const struct ember_config *cfg, const struct vmm_devopt *d,
			 struct ember_error *err);
static int net_resolve(const struct ember_config *cfg, const struct vmm_devopt *d,
		       struct ember_error *err);

/* The device option table: one entry per kind (see config.h). */
static const struct vmm_devopt_type devopt_types[] = {
    {
	.name = "disk",
	.what = "virtio-blk disk",
	.keys = {{.name = "path", .type = VMM_DEVOPT_STRING, .required = true},
		 {.name = "ro", .type = VMM_DEVOPT_BOOL},
		 {.name = "serial", .type = VMM_DEVOPT_STRING, .max_len = 20},
		 /* s3-blk: cache=writeback|none (O_DIRECT), engine=io_uring|sync */
		 {.name = "cache", .type = VMM_DEVOPT_STRING, .max_len = 16},
		 {.name = "engine", .type = VMM_DEVOPT_STRING, .max_len = 16},
		 VMM_DEVOPT_RATE_KEYS},
	.implied_key = "path",
	.resolve = disk_resolve,
    },
    {
	.name = "rng",
	.what = "virtio-rng entropy source",
	.keys = {VMM_DEVOPT_RATE_KEYS},
	.value_optional = true,
    },
    {
	.name = "balloon",
	.what = "virtio-balloon",
	.keys = {{.name = "reporting", .type = VMM_DEVOPT_BOOL}},
	.value_optional = true,
    },
    /* virtio-vsock: host side on Unix sockets (Firecracker's hybrid vsock) */
    {
	.name = "vsock",
	.what = "virtio-vsock",
	.keys = {{.name = "cid", .type = VMM_DEVOPT_U64, .required = true},
		 {.name = "socket", .type = VMM_DEVOPT_STRING, .required = true, .max_len = 107}},
	.resolve = vsock_resolve,
    },
    {
	.name = "net",
	.what = "virtio-net network card",
	.keys = {{.name = "tap", .type = VMM_DEVOPT_STRING, .max_len = VMM_TAP_NAME_MAX},
		 {.name = "fd", .type = VMM_DEVOPT_U64},
		 {.name = "mac", .type = VMM_DEVOPT_STRING, .max_len = 17},
		 /* VIRTIO_NET_F_MTU: the guest's MTU (checked by net_resolve) */
		 {.name = "mtu", .type = VMM_DEVOPT_U64},
		 VMM_DEVOPT_RATE_KEYS},
	.implied_key = "tap",
	.resolve = net_resolve,
    },
};
#define NDEVOPT_TYPES (sizeof(devopt_types) / sizeof(devopt_types[0]))

const struct vmm_devopt_type *vmm_devopt_type_find(const char *name)
{
	for (size_t i = 0; name && i < NDEVOPT_TYPES; i++)
		if (!strcmp(devopt_types[i].name, name))
			return &devopt_types[i];
	return NULL;
}

static const struct vmm_devopt_key *devopt_key(const struct vmm_devopt_type *t, const char *k)
{
	for (size_t i = 0; i < VMM_DEVOPT_MAX_KEYS && t->keys[i].name; i++)
		if (!strcmp(t->keys[i].name, k))
			return &t->keys[i];
	return NULL;
}

const char *vmm_devopt_get(const struct vmm_devopt *d, const char *key)
{
	for (unsigned i = 0; i < d->nkv; i++)
		if (!strcmp(d->kv[i].key, key))
			return d->kv[i].value;
	return NULL;
}

static int bool_value(const char *v, bool *out)
{
	static const char *const on[] = {"on", "yes", "true", "1"};
	static const char *const off[] = {"off", "no", "false", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (!strcmp(v, on[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, off[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int u64_value(const char *v, uint64_t *out)
{
	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	uint64_t n = 0;
	for (; *v; v++) {
		if (!isdigit((unsigned char)*v))
			return -EINVAL;
		unsigned digit = (unsigned)(*v - '0');
		if (n > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		n = n * 10 + digit;
	}
	*out = n;
	return 0;
}

bool vmm_devopt_bool(const struct vmm_devopt *d, const char *key, bool dflt)
{
	const char *v = vmm_devopt_get(d, key);
	bool b;
	return v && bool_value(v, &b) == 0 ? b : dflt;
}

uint64_t vmm_devopt_u64(const struct vmm_devopt *d, const char *key, uint64_t dflt)
{
	const char *v = vmm_devopt_get(d, key);
	uint64_t n;
	return v && u64_value(v, &n) == 0 ? n : dflt;
}

/* A VMM_DEVOPT_SIZE/RATE value: a size, "/s" after it for a rate. */
static int size_value(const char *v, bool rate, uint64_t *out)
{
	char buf[64];
	size_t n = strlen(v);
	if (rate && n > 2 && !strcmp(v + n - 2, "/s"))
		n -= 2;
	if (n == 0 || n >= sizeof(buf) || !isdigit((unsigned char)*v))
		return -EINVAL;
	memcpy(buf, v, n);
	buf[n] = 0;
	return ember_parse_size(buf, 1, out);
}

uint64_t vmm_devopt_size(const struct vmm_devopt *d, const char *key, uint64_t dflt)
{
	const char *v = vmm_devopt_get(d, key);
	uint64_t n;
	return v && (size_value(v, true, &n) == 0) ? n : dflt;
}

/* Checks one key=value against the table entry. */
static int devopt_check_value(const struct vmm_devopt_type *t, const struct vmm_devopt_key *k,
			      const char *v, struct ember_error *err)
{
	bool b;
	uint64_t n;
	size_t max = k->max_len ? k->max_len : EMBER_PATH_MAX - 1;
	switch (k->type) {
	case VMM_DEVOPT_STRING:
		if (!*v)
			return vmm_errf(err, -EINVAL, "--%s: key '%s' has an empty value", t->name,
					k->name);
		if (strlen(v) > max)
			return vmm_errf(err, -ENAMETOOLONG,
					"--%s: the value of key '%s' is longer than %zu bytes",
					t->name, k->name, max);
		return 0;
	case VMM_DEVOPT_BOOL:
		if (bool_value(v, &b) < 0)
			return vmm_errf(err, -EINVAL, "--%s: key '%s': '%s' is not on or off",
					t->name, k->name, v);
		return 0;
	case VMM_DEVOPT_U64:
		if (u64_value(v, &n) < 0)
			return vmm_errf(err, -EINVAL, "--%s: key '%s': '%s' is not a number",
					t->name, k->name, v);
		return 0;
	case VMM_DEVOPT_SIZE:
	case VMM_DEVOPT_RATE: {
		int r = size_value(v, k->type == VMM_DEVOPT_RATE, &n);
		if (r < 0)
			return vmm_errf(err, -EINVAL,
					r == -ERANGE ? "--%s: key '%s': '%s' is too large"
					: k->type == VMM_DEVOPT_RATE
					    ? "--%s: key '%s': '%s' is not a rate (N[K|M|G|T][/s])"
					    : "--%s: key '%s': '%s' is not a size (N[K|M|G|T])",
					t->name, k->name, v);
		return 0;
	}
	}
	return vmm_errf(err, -EINVAL, "--%s: key '%s' has an invalid type", t->name, k->name);
}

/* Splits spec into d->kv and checks every sub-option. */
static int devopt_parse(const struct vmm_devopt_type *t, const char *spec, struct vmm_devopt *d,
			struct ember_error *err)
{
	d->type = t;
	if (!*spec) {
		if (t->value_optional)
			return 0;
		return vmm_errf(err, -EINVAL, "--%s: no sub-options given", t->name);
	}
	if (strlen(spec) >= EMBER_PATH_MAX + 256)
		return vmm_errf(err, -ENAMETOOLONG, "--%s: the sub-options are too long", t->name);
	if (!(d->spec = strdup(spec)) || !(d->buf = strdup(spec)))
		return vmm_errf(err, -ENOMEM, "out of memory");
	char *p = d->buf;
	for (unsigned tok = 0;; tok++) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = 0;
		if (!*p)
			return vmm_errf(err, -EINVAL, "--%s: empty sub-option in '%s'", t->name,
					spec);
		const char *key = p, *value;
		char *eq = strchr(p, '=');
		if (eq) {
			*eq = 0;
			value = eq + 1;
		} else if (tok == 0 && t->implied_key) {
			key = t->implied_key;
			value = p;
		} else {
			return vmm_errf(err, -EINVAL, "--%s: '%s' is not key=value", t->name, p);
		}
		const struct vmm_devopt_key *k = devopt_key(t, key);
		if (!k)
			return vmm_errf(err, -EINVAL, "--%s: unknown key '%s'", t->name, key);
		if (vmm_devopt_get(d, key))
			return vmm_errf(err, -EINVAL, "--%s: key '%s' given twice", t->name, key);
		if (d->nkv >= VMM_DEVOPT_MAX_KEYS)
			return vmm_errf(err, -EINVAL, "--%s: too many sub-options", t->name);
		int r = devopt_check_value(t, k, value, err);
		if (r < 0)
			return r;
		d->kv[d->nkv].key = k->name; /* static storage: the table's */
		d->kv[d->nkv].value = value;
		d->nkv++;
		if (!comma)
			break;
		p = comma + 1;
	}
	for (size_t i = 0; i < VMM_DEVOPT_MAX_KEYS && t->keys[i].name; i++)
		if (t->keys[i].required && !vmm_devopt_get(d, t->keys[i].name))
			return vmm_errf(err, -EINVAL, "--%s: missing key '%s'", t->name,
					t->keys[i].name);
	for (unsigned i = 0; i < d->nkv; i++) {
		const struct vmm_devopt_key *k = devopt_key(t, d->kv[i].key);
		if (k->needs && !vmm_devopt_get(d, k->needs))
			return vmm_errf(err, -EINVAL, "--%s: key '%s' needs key '%s'", t->name,
					k->name, k->needs);
	}
	return 0;
}

int vmm_config_add_device(struct ember_config *cfg, const struct vmm_devopt_type *type,
			  const char *spec, struct ember_error *err)
{
	if (cfg->ndevs >= VMM_CONFIG_MAX_DEVICES)
		return vmm_errf(err, -E2BIG, "--%s: more than %d devices", type->name,
				VMM_CONFIG_MAX_DEVICES);
	struct vmm_devopt d = {0};
	int r = devopt_parse(type, spec ? spec : "", &d, err);
	if (r < 0) {
		devopt_free(&d);
		return r;
	}
	struct vmm_devopt *n = realloc(cfg->devs, (cfg->ndevs + 1) * sizeof(*n));
	if (!n) {
		devopt_free(&d);
		return vmm_errf(err, -ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < cfg->ndevs; i++)
		if (n[i].type == type)
			d.index++;
	cfg->devs = n;
	cfg->devs[cfg->ndevs++] = d;
	return 0;
}

/* The sub-options a restore may give a device anew: its host side (what the
 * guest cannot see), NULL-ended; "tap" and "fd" replace each other. */
static const char *const *host_side_keys(const char *kind)
{
	static const char *const disk[] = {"path", NULL}, *const net[] = {"tap", "fd", NULL},
				 *const vsock[] = {"socket", NULL};
	if (!strcmp(kind, "disk"))
		return disk;
	if (!strcmp(kind, "net"))
		return net;
	if (!strcmp(kind, "vsock"))
		return vsock;
	return NULL;
}

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

struct vmm_devopt *vmm_config_device(const struct ember_config *cfg,
				     const struct vmm_devopt_type *t, unsigned index,
				     unsigned *count)
{
	struct vmm_devopt *d = NULL;
	unsigned n = 0;
	for (unsigned i = 0; i < cfg->ndevs; i++) {
		if (cfg->devs[i].type != t)
			continue;
		n++;
		if (cfg->devs[i].index == index)
			d = &cfg->devs[i];
	}
	if (count)
		*count = n;
	return d;
}

int vmm_config_override_device(struct ember_config *cfg, const char *kind, unsigned index,
			       const char *spec, struct ember_error *err)
{
	const char *const *host = kind ? host_side_keys(kind) : NULL;
	const struct vmm_devopt_type *t = kind ? vmm_devopt_type_find(kind) : NULL;
	if (!host || !t)
		return vmm_errf(err, -EINVAL,
				"restore: '%.40s' is not a device whose host side a restore can "
				"change (disk, net, vsock)",
				kind ? kind : "");
	unsigned have;
	struct vmm_devopt *d = vmm_config_device(cfg, t, index, &have);
	if (!d)
		return vmm_errf(err, -ENOENT, "restore: the snapshot has no --%s %u (it has %u)",
				kind, index, have);
	if (!spec || !*spec)
		return vmm_errf(err, -EINVAL, "restore: --%s %u: no sub-options given", kind,
				index);
	size_t cap = strlen(spec) + 1;
	for (unsigned i = 0; i < d->nkv; i++)
		cap += strlen(d->kv[i].key) + strlen(d->kv[i].value) + 2;
	if (cap > EMBER_PATH_MAX + 256)
		return vmm_errf(err, -ENAMETOOLONG,
				"restore: --%s %u: the sub-options are too long", kind, index);
	char *ov = strdup(spec), *merged = malloc(cap);
	struct vmm_devopt nd = {0};
	int r = ov && merged ? 0 : vmm_errf(err, -ENOMEM, "out of memory");
	if (merged)
		merged[0] = 0;
	/* the new keys first: each the host side's, key=value */
	for (char *p = ov, *next; r == 0 && p; p = next) {
		next = strchr(p, ',');
		if (next)
			*next++ = 0;
		char *eq = strchr(p, '=');
		if (!eq || eq == p || !eq[1]) {
			r = vmm_errf(err, -EINVAL, "restore: --%s %u: '%.60s' is not key=value",
				     kind, index, p);
			break;
		}
		*eq = 0;
		if (!in_list(host, p)) {
			r = vmm_errf(err, -EINVAL,
				     "restore: --%s %u: '%s' is what the guest saw; a restore can "
				     "change only the host side (%s%s%s)",
				     kind, index, p, host[0], host[1] ? ", " : "",
				     host[1] ? host[1] : "");
			break;
		}
		size_t n = strlen(merged);
		snprintf(merged + n, cap - n, "%s%s=%s", n ? "," : "", p, eq + 1);
	}
	/* then the saved ones but the host side, which the new keys (at least
	 * one) replace whole: a NIC's tap= replaces its fd= too, and fd= its tap= */
	for (unsigned i = 0; r == 0 && i < d->nkv; i++) {
		if (in_list(host, d->kv[i].key))
			continue;
		size_t n = strlen(merged);
		snprintf(merged + n, cap - n, ",%s=%s", d->kv[i].key, d->kv[i].value);
	}
	if (r == 0)
		r = devopt_parse(t, merged, &nd, err);
	free(ov);
	free(merged);
	if (r < 0) {
		devopt_free(&nd);
		return r;
	}
	nd.index = d->index;
	devopt_free(d);
	*d = nd;
	return 0;
}

/* A disk image exists, is a file or a block device, and opens read-write
 * (read-only with ro=on). */
static int disk_resolve(const struct ember_config *cfg, const struct vmm_devopt *d,
			struct ember_error *err)
{
	(void)cfg;
	const char *path = vmm_devopt_get(d, "path");
	bool ro = vmm_devopt_bool(d, "ro", false);
	const char *cache = vmm_devopt_get(d, "cache"), *engine = vmm_devopt_get(d, "engine");
	if (cache && strcmp(cache, "writeback") && strcmp(cache, "none"))
		return vmm_errf(err, -EINVAL, "--disk cache=%s: not writeback or none", cache);
	if (engine && strcmp(engine, "io_uring") && strcmp(engine, "sync"))
		return vmm_errf(err, -EINVAL, "--disk engine=%s: not io_uring or sync", engine);
	int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return vmm_errf(err, -errno, "--disk path=%s: %s%s", path, strerror(errno),
				!ro && (errno == EACCES || errno == EROFS)
				    ? " (opened read-write; add ro=on for a read-only disk)"
				    : "");
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return vmm_errf(err, r, "--disk path=%s: %s", path, strerror(-r));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return vmm_errf(err, -EINVAL, "--disk path=%s: not a regular file or block device",
				path);
	return 0;
}

/* The guest's cid is 3..2^32-2 (0-2 and -1 are reserved), one vsock per VM
 * (the guest's driver takes one), the socket path fits sun_path and is
 * free or a stale socket. */
static int vsock_resolve(const struct ember_config *cfg, const struct vmm_devopt *d,
			 struct ember_error *err)
{
	(void)cfg;
	uint64_t cid = vmm_devopt_u64(d, "cid", 0);
	if (cid < 3 || cid >= 0xffffffffu)
		return vmm_errf(err, -EINVAL,
				"--vsock cid=%" PRIu64 ": the guest's cid must be 3 to 4294967294",
				cid);
	if (d->index > 0)
		return vmm_errf(err, -EINVAL,
				"--vsock: one vsock device per VM (the guest's driver takes one)");
	char msg[256];
	const char *path = vmm_devopt_get(d, "socket");
	int r = vmm_vsock_host_check_path(path, msg, sizeof(msg));
	if (r < 0)
		return vmm_errf(err, r, "--vsock socket=%s: %s", path, msg);
	return 0;
}

/* A network card: a tap by name (it attaches now: the name is valid, the
 * caller may use it, nobody else has it, no other --net names it) or an
 * inherited tap fd (TUNGETIFF), and a valid unicast MAC if one is given. */
static int net_resolve(const struct ember_config *cfg, const struct vmm_devopt *d,
		       struct ember_error *err)
{
	const char *tap = vmm_devopt_get(d, "tap"), *fdv = vmm_devopt_get(d, "fd");
	const char *mac = vmm_devopt_get(d, "mac");
	uint8_t m[6];
	if (!tap == !fdv)
		return vmm_errf(err, -EINVAL, "--net %s: give one of tap=NAME and fd=N", d->spec);
	uint64_t mtu = vmm_devopt_u64(d, "mtu", 0);
	if (vmm_devopt_get(d, "mtu") && (mtu < VMM_NET_MTU_MIN || mtu > VMM_NET_MTU_MAX))
		return vmm_errf(err, -EINVAL, "--net mtu=%s: out of range %u..%u",
				vmm_devopt_get(d, "mtu"), VMM_NET_MTU_MIN, VMM_NET_MTU_MAX);
	if (mac && vmm_tap_parse_mac(mac, m) < 0)
		return vmm_errf(err, -EINVAL,
				"--net mac=%s: not a unicast MAC address (like 52:54:00:12:34:56)",
				mac);
	if (fdv) {
		uint64_t fd = vmm_devopt_u64(d, "fd", UINT64_MAX);
		if (fd > INT32_MAX)
			return vmm_errf(err, -EINVAL, "--net fd=%s: not a file descriptor", fdv);
		return vmm_tap_check_fd((int)fd, NULL, NULL, err);
	}
	for (unsigned i = 0; i < cfg->ndevs; i++) {
		const struct vmm_devopt *o = &cfg->devs[i];
		const char *t = o != d && o->type == d->type ? vmm_devopt_get(o, "tap") : NULL;
		if (t && !strcmp(t, tap))
			return vmm_errf(err, -EINVAL, "--net tap=%s: the tap is given twice", tap);
	}
	int fd;
	int r = vmm_tap_open(tap, &fd, err);
	if (r < 0)
		return r;
	close(fd);
	return 0;
}

static int check_mem(uint64_t mem, bool hugepages, struct ember_error *err)
{
	if (mem < EMBER_MIN_MEM)
		return vmm_errf(err, -EINVAL,
				"mem: %" PRIu64
				" KiB is less than the minimum 16 MiB (a kernel and "
				"its initrd need room)",
				mem >> 10);
	if (mem > EMBER_MAX_MEM)
		return vmm_errf(err, -EINVAL,
				"mem: %" PRIu64 " GiB is more than the maximum %llu GiB", mem >> 30,
				EMBER_MAX_MEM >> 30);
	if (mem & 4095)
		return vmm_errf(err, -EINVAL, "mem: %" PRIu64 " bytes is not a multiple of 4 KiB",
				mem);
	if (hugepages && (mem & ((2u << 20) - 1)))
		return vmm_errf(err, -EINVAL,
				"mem: %" PRIu64
				" bytes is not a multiple of 2 MiB (needed for hugepages)",
				mem);
	return 0;
}

/* ---------------------------------------------------------------- boot path */

static const char *const boot_names[] = {"auto", "pvh", "bzimage"};

static int set_boot_path(struct ember_config *cfg, const char *value, struct ember_error *err)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(value, boot_names[i])) {
			cfg->boot = (enum ember_boot_path)i;
			return 0;
		}
	return vmm_errf(err, -EINVAL, "boot: '%s' is not auto, pvh or bzimage", value);
}

/* For --dry-run: the path resolve chose, and why. */
static const char *boot_path_text(const struct ember_config *cfg)
{
	if (!cfg->resolved)
		return boot_names[(unsigned)cfg->boot % 3];
	if (cfg->kernel_format != EMBER_KERNEL_BZIMAGE)
		return cfg->boot == EMBER_BOOT_AUTO ? "pvh (auto)" : "pvh";
	if (cfg->boot_path == EMBER_BOOT_PVH)
		return cfg->boot == EMBER_BOOT_AUTO
			   ? "pvh (auto: the payload is decompressed on the host)"
			   : "pvh (the payload is decompressed on the host)";
	return cfg->boot == EMBER_BOOT_AUTO
		   ? "bzimage (auto: a payload Ember cannot decompress; the guest does)"
		   : "bzimage";
}

int ember_config_set(struct ember_config *cfg, const char *key, const char *value,
		     struct ember_error *err)
{
	if (!cfg || !key || !value)
		return vmm_errf(err, -EINVAL, "missing key or value");
	cfg->resolved = false;
	if (!strcmp(key, "kernel")) {
		if (!*value)
			return vmm_errf(err, -EINVAL, "kernel: empty path");
		return set_string(cfg->kernel, sizeof(cfg->kernel), key, value, err);
	}
	if (!strcmp(key, "initrd")) {
		if (!*value)
			return vmm_errf(err, -EINVAL, "initrd: empty path");
		if (!strcmp(value, "builtin")) {
			cfg->builtin_initrd = true;
			cfg->initrd[0] = 0;
			return 0;
		}
		cfg->builtin_initrd = false;
		return set_string(cfg->initrd, sizeof(cfg->initrd), key, value, err);
	}
	if (!strcmp(key, "cmdline"))
		return set_string(cfg->cmdline, sizeof(cfg->cmdline), key, value, err);
	if (!strcmp(key, "append")) {
		size_t have = strlen(cfg->cmdline_append), n = strlen(value);
		if (have + (have ? 1 : 0) + n >= sizeof(cfg->cmdline_append))
			return vmm_errf(err, -ENAMETOOLONG,
					"append: the appended command line is longer "
					"than %zu bytes",
					sizeof(cfg->cmdline_append) - 1);
		if (have)
			cfg->cmdline_append[have++] = ' ';
		memcpy(cfg->cmdline_append + have, value, n + 1);
		return 0;
	}
	if (!strcmp(key, "mem")) {
		uint64_t v;
		int r = ember_parse_size(value, 1ull << 20, &v);
		if (r == -ERANGE)
			return vmm_errf(err, -EINVAL, "mem: '%s' is too large", value);
		if (r < 0)
			return vmm_errf(err, -EINVAL,
					"mem: '%s' is not a size (examples: 256M, 1G, 512 for MiB)",
					value);
		r = check_mem(v, cfg->hugepages, err);
		if (r < 0)
			return r;
		cfg->mem_size = v;
		return 0;
	}
	if (!strcmp(key, "hotplug-slots")) {
		char *end;
		errno = 0;
		unsigned long v = isdigit((unsigned char)*value) ? strtoul(value, &end, 10) : ~0ul;
		if (v == ~0ul || *end || errno || v > VMM_HOTPLUG_MAX_SLOTS)
			return vmm_errf(err, -EINVAL, "hotplug-slots: '%s' is not a number 0..%d",
					value, VMM_HOTPLUG_MAX_SLOTS);
		cfg->hotplug_slots = (unsigned)v;
		return 0;
	}
	if (!strcmp(key, "cpus")) {
		char *end;
		errno = 0;
		if (!isdigit((unsigned char)*value))
			return vmm_errf(err, -EINVAL, "cpus: '%s' is not a number", value);
		unsigned long v = strtoul(value, &end, 10);
		if (*end || errno)
			return vmm_errf(err, -EINVAL, "cpus: '%s' is not a number", value);
		if (v < 1 || v > EMBER_MAX_CPUS)
			return vmm_errf(err, -EINVAL, "cpus: %s is out of range 1..%d", value,
					EMBER_MAX_CPUS);
		cfg->cpus = (unsigned)v;
		return 0;
	}
	if (!strcmp(key, "mem-backing")) {
		if (!strcmp(value, "anon"))
			cfg->mem_backing = EMBER_MEM_ANON;
		else if (!strcmp(value, "memfd"))
			cfg->mem_backing = EMBER_MEM_MEMFD;
		else
			return vmm_errf(err, -EINVAL, "mem-backing: '%s' is not anon or memfd",
					value);
		return 0;
	}
	if (!strcmp(key, "hugepages"))
		return parse_bool(key, value, &cfg->hugepages, err);
	if (!strcmp(key, "seccomp")) {
		if (vmm_seccomp_parse_mode(value, &cfg->seccomp) < 0)
			return vmm_errf(err, -EINVAL, "seccomp: '%s' is not kill, log or off",
					value);
		return 0;
	}
	if (!strcmp(key, "busybox")) {
		if (!*value)
			return vmm_errf(err, -EINVAL, "busybox: empty path");
		return set_string(cfg->busybox, sizeof(cfg->busybox), key, value, err);
	}
	if (!strcmp(key, "log-level")) {
		static const char *const names[] = {"error", "warn", "info", "debug"};
		for (int i = 0; i < 4; i++)
			if (!strcmp(value, names[i])) {
				cfg->log_level = (enum ember_log_level)i;
				return 0;
			}
		return vmm_errf(err, -EINVAL, "log-level: '%s' is not error, warn, info or debug",
				value);
	}
	if (!strcmp(key, "interactive")) {
		if (!strcmp(value, "auto")) {
			cfg->interactive = -1;
			return 0;
		}
		bool b;
		int r = parse_bool(key, value, &b, err);
		if (r == 0)
			cfg->interactive = b;
		else
			vmm_errf(err, -EINVAL, "interactive: '%s' is not on, off or auto", value);
		return r;
	}
	if (!strcmp(key, "console-escape"))
		return parse_bool(key, value, &cfg->console_escape, err);
	if (!strcmp(key, "console")) {
		if (!strcmp(value, "serial") || !strcmp(value, "ttyS0"))
			cfg->console_virtio = false;
		else if (!strcmp(value, "virtio") || !strcmp(value, "hvc0"))
			cfg->console_virtio = true;
		else
			return vmm_errf(err, -EINVAL, "console: '%s' is not serial or virtio",
					value);
		return 0;
	}
	if (!strcmp(key, "root"))
		return parse_bool(key, value, &cfg->root_fs, err);
	if (!strcmp(key, "reboot")) {
		if (!strcmp(value, "exit"))
			cfg->reboot_restart = false;
		else if (!strcmp(value, "restart"))
			cfg->reboot_restart = true;
		else
			return vmm_errf(err, -EINVAL, "reboot: '%s' is not exit or restart", value);
		return 0;
	}
	if (!strcmp(key, "boot"))
		return set_boot_path(cfg, value, err);
	if (!strcmp(key, "kernel-cache"))
		return parse_bool(key, value, &cfg->kernel_cache, err);
	if (!strcmp(key, "kernel-cache-dir")) {
		if (value[0] != '/')
			return vmm_errf(err, -EINVAL,
					"kernel-cache-dir: '%s' is not an absolute path", value);
		return set_string(cfg->kernel_cache_dir, sizeof(cfg->kernel_cache_dir), key, value,
				  err);
	}
	const struct vmm_devopt_type *t = vmm_devopt_type_find(key);
	if (t)
		return vmm_config_add_device(cfg, t, value, err);
	return vmm_errf(err, -ENOENT, "unknown configuration key '%s'", key);
}

/* ---------------------------------------------------------------- arguments */

struct opt {
	const char *lng;
	char shrt;
	const char *key;   /* config key, or NULL for a flag */
	unsigned flag;	   /* EMBER_ARGS_* or a special action */
	const char *fixed; /* value for a valueless option mapped to a key */
};

static const struct opt opts[] = {
    {"kernel", 'k', "kernel", 0, NULL},
    {"initrd", 'i', "initrd", 0, NULL},
    {"cmdline", 0, "cmdline", 0, NULL},
    {"append", 'p', "append", 0, NULL},
    {"params", 0, "append", 0, NULL},
    {"mem", 'm', "mem", 0, NULL},
    {"cpus", 'c', "cpus", 0, NULL},
    {"hotplug-slots", 0, "hotplug-slots", 0, NULL},
    {"mem-backing", 0, "mem-backing", 0, NULL},
    {"hugepages", 0, "hugepages", 0, "on"},
    {"seccomp", 0, "seccomp", 0, NULL},
    {"busybox", 0, "busybox", 0, NULL},
    {"interactive", 0, "interactive", 0, "on"},
    {"no-interactive", 0, "interactive", 0, "off"},
    {"root", 0, "root", 0, "on"},
    {"log-level", 0, "log-level", 0, NULL},
    {"console", 0, "console", 0, NULL},
    {"reboot", 0, "reboot", 0, NULL},
    {"boot", 0, "boot", 0, NULL},
    {"kernel-cache", 0, "kernel-cache", 0, NULL},
    {"kernel-cache-dir", 0, "kernel-cache-dir", 0, NULL},
    {"quiet", 'q', "log-level", 0, "warn"},
    {"verbose", 'v', "log-level", 0, "debug"},
    {"dry-run", 'n', NULL, EMBER_ARGS_DRY_RUN, NULL},
    {"help", 'h', NULL, EMBER_ARGS_HELP, NULL},
};

/* QEMU's spellings of what users type first, with Ember's equivalent. */
static const struct {
	const char *qemu;
	const char *ember;
} qemu_opts[] = {
    {"kernel", "--kernel PATH (-k PATH)"},
    {"initrd", "--initrd PATH (-i PATH)"},
    {"append", "--cmdline STR (replaces Ember's default command line) or --append STR (adds "
	       "to it)"},
    {"smp", "--cpus N (-c N)"},
    {"nographic", "nothing: the guest's console is always on stdin/stdout"},
    {"serial", "nothing (the guest's console is on stdin/stdout), or --console virtio for hvc0"},
    {"enable-kvm", "nothing: Ember always uses KVM"},
    {"accel", "nothing: Ember always uses KVM"},
    {"cpu", "nothing: the guest sees the host's CPU as KVM offers it"},
    {"no-reboot", "nothing: a guest reboot ends the run (exit status 32) unless --reboot "
		  "restart"},
    {"mem-path", "--mem-backing memfd or --hugepages"},
};

static int qemu_spelling(const char *a, struct ember_error *err)
{
	if (a[0] != '-' || !a[1] || a[1] == '-' || !a[2])
		return 0;
	for (size_t k = 0; k < sizeof(qemu_opts) / sizeof(qemu_opts[0]); k++)
		if (!strcmp(a + 1, qemu_opts[k].qemu))
			return vmm_errf(err, -EINVAL,
					"'%s' is QEMU's spelling; in Ember use %s (see --help)", a,
					qemu_opts[k].ember);
	return 0;
}

int ember_config_parse_args(struct ember_config *cfg, int argc, char *const argv[], unsigned *flags,
			    struct ember_error *err)
{
	unsigned fl = 0;
	/* mem is checked against hugepages after all options are seen */
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *o = NULL;
		const struct vmm_devopt_type *dt = NULL;
		const char *inline_val = NULL;
		if (a[0] == '-' && a[1] == '-' && a[2]) {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t n = eq ? (size_t)(eq - name) : strlen(name);
			for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
				if (strlen(opts[k].lng) == n && !strncmp(opts[k].lng, name, n))
					o = &opts[k];
			for (size_t k = 0; !o && k < NDEVOPT_TYPES; k++)
				if (strlen(devopt_types[k].name) == n &&
				    !strncmp(devopt_types[k].name, name, n))
					dt = &devopt_types[k];
			if (eq)
				inline_val = eq + 1;
		} else if (a[0] == '-' && a[1] && a[1] != '-') {
			int q = qemu_spelling(a, err); /* -kernel is not -k ernel */
			if (q < 0)
				return q;
			for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
				if (opts[k].shrt && opts[k].shrt == a[1])
					o = &opts[k];
			if (o && a[2])
				inline_val = a + 2;
		} else {
			return vmm_errf(
			    err, -EINVAL,
			    "unexpected argument '%s' (options start with --; see --help)", a);
		}
		if (dt) {
			/* a device option: --disk SUBOPTS or --disk=SUBOPTS; one
			 * whose value is optional takes the next argument only
			 * when it is key=value ("--rng bw=1M"; ember run has no
			 * positional arguments, so that is not ambiguous) */
			const char *val = inline_val;
			if (!val && !dt->value_optional) {
				if (i + 1 >= argc)
					return vmm_errf(err, -EINVAL, "option '%s' needs a value",
							a);
				val = argv[++i];
			} else if (!val && i + 1 < argc && argv[i + 1][0] != '-' &&
				   strchr(argv[i + 1], '=')) {
				val = argv[++i];
			}
			int r = vmm_config_add_device(cfg, dt, val ? val : "", err);
			if (r < 0)
				return r == -ENOMEM ? r : -EINVAL;
			continue;
		}
		if (!o)
			return vmm_errf(err, -EINVAL, "unknown option '%s' (see --help)", a);
		if (!o->key || o->fixed) {
			if (inline_val)
				return vmm_errf(err, -EINVAL, "option '%s' takes no value", a);
			if (!o->key) {
				fl |= o->flag;
				continue;
			}
			int r = ember_config_set(cfg, o->key, o->fixed, err);
			if (r < 0)
				return r;
			continue;
		}
		const char *val = inline_val;
		if (!val) {
			if (i + 1 >= argc)
				return vmm_errf(err, -EINVAL, "option '%s' needs a value", a);
			val = argv[++i];
		}
		int r = ember_config_set(cfg, o->key, val, err);
		if (r < 0)
			return r;
	}
	int r = check_mem(cfg->mem_size, cfg->hugepages, err);
	if (r < 0)
		return r;
	if (flags)
		*flags = fl;
	return 0;
}

const char *ember_config_usage(void)
{
	return "usage: ember run [OPTIONS]\n"
	       "\n"
	       "Boots a Linux guest and returns when it stops. With no --kernel, boots the\n"
	       "host's own kernel with a built-in busybox initramfs: a shell on the console\n"
	       "when stdin is a terminal, otherwise a report of what the guest sees.\n"
	       "\n"
	       "  -k, --kernel PATH       bzImage or ELF vmlinux (PVH note) to boot\n"
	       "                          (default: /boot/vmlinuz-$(uname -r), else newest)\n"
	       "  -i, --initrd PATH       initial ramdisk; 'builtin' for Ember's busybox one\n"
	       "                          (the default without root= on the command line)\n"
	       "      --cmdline STR       kernel command line (replaces the default)\n"
	       "  -p, --append STR        appended to the kernel command line (repeatable)\n"
	       "  -m, --mem SIZE          guest memory: 256M, 1G, 2048K, a bare number is MiB\n"
	       "                          (default 256M; at least what the kernel needs,\n"
	       "                          at most 1T or the host's physical address limit)\n"
	       "  -c, --cpus N            vCPUs, 1..254 (default 1)\n"
	       "      --hotplug-slots N   slots for virtio-net cards added at run time (0..4,\n"
	       "                          default 0; ember_vm_net_hotplug_add)\n"
	       "      --mem-backing KIND  anon (default) or memfd\n"
	       "      --hugepages         back guest memory with hugetlb pages\n"
	       "      --seccomp kill|log|off\n"
	       "                          the per-thread syscall filters: a syscall outside a\n"
	       "                          thread's list kills the VMM (default), is logged\n"
	       "                          (the kernel's audit log), or no filters\n"
	       "      --busybox PATH      static busybox for the built-in initramfs\n"
	       "                          (default /bin/busybox, from busybox-static)\n"
	       "      --interactive       built-in init: always start a shell\n"
	       "      --no-interactive    built-in init: report and power off\n"
	       "      --boot MODE         how a bzImage boots: auto (default: decompress it on\n"
	       "                          the host and enter through PVH when it can), pvh,\n"
	       "                          or bzimage (the boot protocol; the guest decompresses)\n"
	       "      --kernel-cache on|off\n"
	       "                          keep bzImages decompressed on the host for the next\n"
	       "                          boot of the same file (default on; the 4 most\n"
	       "                          recently used are kept)\n"
	       "      --kernel-cache-dir DIR\n"
	       "                          where (default "
	       "${XDG_CACHE_HOME:-~/.cache}/ember/kernels)\n"
	       "      --disk path=IMG[,ro=on][,serial=ID][,cache=writeback|none][,engine=E]\n"
	       "                          a raw disk image or block device on virtio-blk\n"
	       "                          (one queue per vCPU, up to 16; cache=none: O_DIRECT;\n"
	       "                          engine io_uring (default where available) or sync)\n"
	       "                          (repeatable; /dev/vda, vdb... in the guest);\n"
	       "                          [,RATE]: rate limits, as for --rng\n"
	       "      --console serial|virtio\n"
	       "                          the guest's console: its UART, ttyS0 (default), or a\n"
	       "                          virtio-console, hvc0 (console=hvc0 on the default\n"
	       "                          command line; early messages still on ttyS0)\n"
	       "      --root              boot the root file system on the first --disk\n"
	       "                          (systemd or another init on ext4: the built-in\n"
	       "                          initramfs loads the kernel's modules for it from\n"
	       "                          /lib/modules and mounts root=, default /dev/vda)\n"
	       "      --rng [RATE]        a virtio-rng entropy source (the host's getrandom)\n"
	       "                          RATE: rate limits, token buckets: bw=BYTES/s and\n"
	       "                          ops=N/s (K/M/G suffixes), bw-burst=BYTES and\n"
	       "                          ops-burst=N (bucket sizes; default one second)\n"
	       "      --balloon [reporting=off]\n"
	       "                          a virtio-balloon device (the target is set through\n"
	       "                          the library); reporting=off: no free page reporting\n"
	       "      --vsock cid=N,socket=PATH\n"
	       "                          virtio-vsock; host side on Unix sockets as "
	       "Firecracker's:\n"
	       "                          connect to PATH and send 'CONNECT <port>\\n'; guest\n"
	       "                          connections to host port P go to PATH_P\n"
	       "      --net tap=NAME|fd=N[,mac=MAC][,mtu=N]\n"
	       "                          a virtio-net card on tap NAME (attached, or created\n"
	       "                          with CAP_NET_ADMIN) or an open tap fd; mtu=68..65535:\n"
	       "                          the MTU the guest is told (VIRTIO_NET_F_MTU);\n"
	       "                          [,RATE]: rate limits, as for --rng, each direction\n"
	       "      --reboot exit|restart\n"
	       "                          a guest reboot ends the run with status 32 (exit,\n"
	       "                          the default) or resets the machine and boots the\n"
	       "                          kernel again in the same process (restart: disks,\n"
	       "                          taps and sockets stay open)\n"
	       "  -q, --quiet             only warnings and errors from Ember on stderr\n"
	       "  -v, --verbose           debug messages too (--log-level error|warn|info|debug)\n"
	       "  -n, --dry-run           print the resolved configuration and the device\n"
	       "                          list, and exit\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Console: the guest's ttyS0 (hvc0 with --console virtio) is on stdin/stdout;\n"
	       "on a terminal, Ctrl-A x stops the VM. SIGINT/SIGTERM stop it too.\n"
	       "\n"
	       "Exit status: 0 guest powered off, 32 guest rebooted (--reboot exit), 33 guest\n"
	       "crashed (triple fault; every vCPU's registers are printed), 34 stopped by a\n"
	       "signal or Ctrl-A x, 35 guest kernel panicked (pvpanic), 36 guest halted for\n"
	       "good (every vCPU in HLT with interrupts off, e.g. halt -f), 1 a file Ember\n"
	       "cannot use (missing, a directory, not a kernel, truncated, an empty initrd) or\n"
	       "a host error, 2 a bad option or value (--mem too small for the kernel or\n"
	       "vCPUs, a command line too long).\n";
}

/* ---------------------------------------------------------------- resolve */

static int vercmp_entry(const void *a, const void *b)
{
	return strverscmp(*(const char *const *)a, *(const char *const *)b);
}

/* The host's kernel: /boot/vmlinuz-$(uname -r), else the newest vmlinuz-*. */
static int find_host_kernel(char *out, size_t cap, struct ember_error *err)
{
	struct utsname u;
	struct stat st;
	if (uname(&u) == 0) {
		snprintf(out, cap, "/boot/vmlinuz-%s", u.release);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
			return 0;
	}
	DIR *d = opendir("/boot");
	if (!d)
		return vmm_errf(err, -ENOENT,
				"no kernel given and /boot is not readable; use --kernel PATH");
	char *names[256];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 256) {
		if (strncmp(e->d_name, "vmlinuz-", 8) != 0)
			continue;
		names[n] = strdup(e->d_name + 8);
		if (names[n])
			n++;
	}
	closedir(d);
	if (!n)
		return vmm_errf(
		    err, -ENOENT,
		    "no kernel given and none in /boot (install linux-image-amd64 or use "
		    "--kernel PATH)");
	qsort(names, n, sizeof(names[0]), vercmp_entry);
	snprintf(out, cap, "/boot/vmlinuz-%s", names[n - 1]);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return 0;
}

/* A file Ember reads: a missing, unreadable, non-regular or empty one is
 * refused here, named, with the errno (-EISDIR for a directory, -ENOEXEC
 * for another non-regular or an empty file). */
static int check_readable(const char *what, const char *path, bool may_be_empty,
			  struct ember_error *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return vmm_errf(err, -errno, "%s %s: %s", what, path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return vmm_errf(err, -EISDIR, "%s %s: is a directory, not a file", what, path);
	if (!S_ISREG(st.st_mode))
		return vmm_errf(err, -ENOEXEC, "%s %s: not a regular file", what, path);
	if (access(path, R_OK) < 0)
		return vmm_errf(err, -errno, "%s %s: %s", what, path, strerror(errno));
	if (!may_be_empty && st.st_size == 0)
		return vmm_errf(err, -ENOEXEC, "%s %s: the file is empty", what, path);
	return 0;
}

/* ember_config_resolve is a sequence of checks, one function each, run in
 * order; the first that fails stops it. A check may fill in a default. The
 * command line comes last: it folds the appended part in, which must
 * happen once and only when everything else passed (the checks before it
 * see the final line through compose_cmdline). */

/* Does the command line name a root file system (root=, nfsroot=)? */
static bool has_root(const char *line)
{
	for (const char *p = line; (p = strstr(p, "root=")); p += 5)
		if (p == line || p[-1] == ' ' || (p >= line + 3 && !strncmp(p - 3, "nfs", 3)))
			return true;
	return false;
}

/* The final command line (default or given, then the appended part) into
 * line; nothing in cfg changes. */
static int compose_cmdline(const struct ember_config *cfg, char *line, size_t cap,
			   struct ember_error *err)
{
	int n;
	if (!cfg->cmdline[0] && cfg->console_virtio)
		/* quiet before earlyprintk: the early console replays the log at
		 * the level in force when it registers */
		n = snprintf(line, cap, "%s%s", cfg->builtin_initrd ? "quiet " : "",
			     EMBER_DEFAULT_CMDLINE_HVC0);
	else if (!cfg->cmdline[0])
		n = snprintf(line, cap, "%s%s", EMBER_DEFAULT_CMDLINE,
			     cfg->builtin_initrd ? " quiet" : "");
	else
		n = snprintf(line, cap, "%s", cfg->cmdline);
	if (cfg->cmdline_append[0] && n >= 0 && (size_t)n < cap)
		n += snprintf(line + n, cap - (size_t)n, "%s%s", n ? " " : "", cfg->cmdline_append);
	/* --root: the first disk, unless the line names its own root */
	if (cfg->root_fs && n >= 0 && (size_t)n < cap && !has_root(line))
		n += snprintf(line + n, cap - (size_t)n, "%sroot=/dev/vda rw", n ? " " : "");
	if (n < 0 || (size_t)n >= cap)
		return vmm_errf(err, -E2BIG,
				"cmdline: the kernel command line is longer than %zu bytes",
				cap - 1);
	return 0;
}

static int resolve_limits(struct ember_config *cfg, struct ember_error *err)
{
	int r = check_mem(cfg->mem_size, cfg->hugepages, err);
	if (r < 0)
		return r;
	if (cfg->cpus < 1 || cfg->cpus > EMBER_MAX_CPUS)
		return vmm_errf(err, -EINVAL, "cpus: %u is out of range 1..%d", cfg->cpus,
				EMBER_MAX_CPUS);
	if (cfg->mem_backing != EMBER_MEM_ANON && cfg->mem_backing != EMBER_MEM_MEMFD)
		return vmm_errf(err, -EINVAL, "mem-backing: invalid value %d", cfg->mem_backing);
	return 0;
}

static int resolve_kernel(struct ember_config *cfg, struct ember_error *err)
{
	int r;
	if (!cfg->kernel[0]) {
		r = find_host_kernel(cfg->kernel, sizeof(cfg->kernel), err);
		if (r < 0)
			return r;
		if (!cfg->initrd[0])
			cfg->builtin_initrd = true;
	}
	r = check_readable("kernel", cfg->kernel, false, err);
	if (r < 0)
		return r;
	return vmm_kernel_detect_file(cfg->kernel, &cfg->kernel_format, err);
}

/* The boot path, from the kernel's header and payload format. */
static int resolve_boot_path(struct ember_config *cfg, struct ember_error *err)
{
	return vmm_boot_choose_file(cfg->kernel, cfg->kernel_format, cfg->boot, &cfg->boot_path,
				    err);
}

/* The kernel cache's default directory; none (no XDG_CACHE_HOME, no HOME)
 * only means no cache. */
static int resolve_kernel_cache(struct ember_config *cfg, struct ember_error *err)
{
	(void)err;
	if (cfg->kernel_cache && !cfg->kernel_cache_dir[0] &&
	    vmm_kcache_default_dir(cfg->kernel_cache_dir, sizeof(cfg->kernel_cache_dir)) < 0)
		cfg->kernel_cache_dir[0] = 0;
	return 0;
}

/* No initrd and no root file system named: the kernel would panic ("VFS:
 * Unable to mount root fs"); the built-in initramfs instead. */
static bool want_builtin_rootfs(const struct ember_config *cfg)
{
	char line[EMBER_CMDLINE_MAX];
	return !cfg->builtin_initrd && !cfg->initrd[0] &&
	       compose_cmdline(cfg, line, sizeof(line), NULL) == 0 && !has_root(line);
}

static int resolve_initrd(struct ember_config *cfg, struct ember_error *err)
{
	if (cfg->root_fs) {
		unsigned disks = 0;
		for (unsigned i = 0; i < cfg->ndevs; i++)
			disks += !strcmp(cfg->devs[i].type->name, "disk");
		if (!disks)
			return vmm_errf(err, -EINVAL,
					"--root: no --disk to boot from (give the root file "
					"system image: --disk path=root.img --root)");
		if (cfg->initrd[0])
			return vmm_errf(err, -EINVAL,
					"--root boots through Ember's built-in initramfs; it "
					"cannot be used with --initrd %s",
					cfg->initrd);
		cfg->builtin_initrd = true;
	}
	if (want_builtin_rootfs(cfg)) {
		int r = vmm_busybox_check(cfg->busybox, err);
		if (r < 0)
			return vmm_err_prefix(err, r,
					      "no --initrd and no root= on the command line, so "
					      "Ember would use its built-in initramfs, but");
		cfg->builtin_initrd = true;
		return 0;
	}
	if (cfg->builtin_initrd)
		return vmm_busybox_check(cfg->busybox, err);
	if (cfg->initrd[0])
		return check_readable("initrd", cfg->initrd, false, err);
	return 0;
}

static int resolve_console(struct ember_config *cfg, struct ember_error *err)
{
	(void)err;
	if (cfg->interactive < 0)
		cfg->interactive = cfg->console_in >= 0 && isatty(cfg->console_in);
	return 0;
}

/* Memory Linux needs at run time beyond the kernel and initrd the loader
 * places, measured with Debian's 6.1 kernel in the KVM sandbox: it boots
 * in 88 MiB with the e2e initrd (the loader's minimum is 82 MiB), and each
 * vCPU costs at least about 1 MiB (1.7 MiB of free memory per vCPU after
 * boot with 16 vCPUs; 254 vCPUs in 256 MiB stopped after about 194). */
#define RUNTIME_MIN	(4ull << 20)
#define RUNTIME_PER_CPU (1ull << 20)

int vmm_config_boot_open(const struct ember_config *cfg, const char *cmdline,
			 struct vmm_boot_files *f, struct ember_error *err)
{
	const struct vmm_boot_paths p = {
	    .format = cfg->kernel_format,
	    .kernel = cfg->kernel,
	    .initrd = cfg->initrd,
	    .busybox = cfg->busybox,
	    .builtin_initrd = cfg->builtin_initrd,
	    .console_modules = cfg->console_virtio,
	    .root = cfg->root_fs,
	    .interactive = cfg->interactive > 0,
	    .cmdline = cmdline,
	};
	return vmm_boot_open(&p, f, err);
}

/* Every check of the image, the initrd and their fit in --mem, on the
 * files alone (vmm_boot_plan, the loader's own checks), before any guest
 * memory or /dev/kvm exists. */
static int resolve_image(struct ember_config *cfg, struct ember_error *err)
{
	char line[EMBER_CMDLINE_MAX];
	int r = compose_cmdline(cfg, line, sizeof(line), err);
	if (r < 0)
		return r;
	struct vmm_boot_files f;
	r = vmm_config_boot_open(cfg, line, &f, err);
	if (r < 0)
		return r;
	struct vmm_boot_plan plan;
	const uint64_t hole_start = X86_MMIO_HOLE_START;
	r = vmm_boot_plan(&f.req, cfg->mem_size < hole_start ? cfg->mem_size : hole_start, &plan,
			  err);
	if (r < 0)
		goto out;
	uint64_t need =
	    vmm_align_up(plan.min_low_ram, 1 << 20) + RUNTIME_MIN + RUNTIME_PER_CPU * cfg->cpus;
	if (cfg->mem_size < need)
		r = vmm_errf(err, -E2BIG,
			     "mem: %" PRIu64 " MiB is too little for %u vCPU%s with kernel %s: "
			     "the kernel%s take%s %" PRIu64 " MiB and Linux needs about %" PRIu64
			     " MiB more to bring up its vCPUs; use --mem %" PRIu64 "M or more",
			     cfg->mem_size >> 20, cfg->cpus, cfg->cpus > 1 ? "s" : "", cfg->kernel,
			     plan.initrd_size ? " and initrd" : "", plan.initrd_size ? "" : "s",
			     (plan.min_low_ram + (1 << 20) - 1) >> 20,
			     (uint64_t)(RUNTIME_MIN + RUNTIME_PER_CPU * cfg->cpus) >> 20,
			     need >> 20);
out:
	vmm_boot_close(&f);
	return r;
}

/* Guest memory the host can map: its physical address width and KVM's slot
 * size, not only EMBER_MAX_MEM. After the image: a bad image is named even
 * with an impossible --mem. */
static int resolve_host_mem(struct ember_config *cfg, struct ember_error *err)
{
	uint64_t max, hole;
	unsigned bits;
	vmm_board_ram_limit(&max, &bits, &hole);
	if (cfg->mem_size > max)
		return vmm_errf(err, -EINVAL,
				"mem: %" PRIu64 " MiB is more than this host can give a guest: "
				"%" PRIu64 " MiB (the host's %u physical address bits, CPUID "
				"0x80000008, less the %" PRIu64 " MiB MMIO hole below 4 GiB)",
				cfg->mem_size >> 20, max >> 20, bits, hole >> 20);
	return 0;
}

/* Each device entry through its kind's check (the disk image opens). */
static int resolve_devices(struct ember_config *cfg, struct ember_error *err)
{
	for (unsigned i = 0; i < cfg->ndevs; i++) {
		const struct vmm_devopt *d = &cfg->devs[i];
		int r = d->type->resolve ? d->type->resolve(cfg, d, err) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

/* The final command line: default or given, then the appended part. */
static int resolve_cmdline(struct ember_config *cfg, struct ember_error *err)
{
	char line[EMBER_CMDLINE_MAX];
	int r = compose_cmdline(cfg, line, sizeof(line), err);
	if (r < 0)
		return r;
	memcpy(cfg->cmdline, line, strlen(line) + 1);
	cfg->cmdline_append[0] = 0;
	return 0;
}

/* The board's device list can be laid out (windows, GSIs) for these devices. */
static int resolve_board(struct ember_config *cfg, struct ember_error *err)
{
	struct vmm_devmgr *m = malloc(sizeof(*m));
	if (!m)
		return vmm_errf(err, -ENOMEM, "out of memory");
	int r = vmm_board_plan(cfg, m, err);
	free(m);
	return r;
}

static int (*const resolve_steps[])(struct ember_config *, struct ember_error *) = {
    resolve_limits,  resolve_kernel,  resolve_boot_path, resolve_kernel_cache,
    resolve_initrd,  resolve_console, resolve_image,	 resolve_host_mem,
    resolve_devices, resolve_board,   resolve_cmdline, /* last: see above */
};

int ember_config_resolve(struct ember_config *cfg, struct ember_error *err)
{
	if (!cfg)
		return vmm_errf(err, -EINVAL, "no configuration");
	if (cfg->resolved)
		return 0;
	for (size_t i = 0; i < sizeof(resolve_steps) / sizeof(resolve_steps[0]); i++) {
		int r = resolve_steps[i](cfg, err);
		if (r < 0)
			return r;
	}
	cfg->resolved = true;
	return 0;
}

/* A restored VM's configuration (vmm/snapshot.c): its kernel, initrd and
 * command line are in the saved memory, so only what the host must still
 * provide is checked again (limits, devices, the board's layout). */
int vmm_config_resolve_restored(struct ember_config *cfg, struct ember_error *err)
{
	static int (*const steps[])(struct ember_config *, struct ember_error *) = {
	    resolve_limits, resolve_console, resolve_host_mem, resolve_devices, resolve_board,
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int r = steps[i](cfg, err);
		if (r < 0)
			return r;
	}
	cfg->resolved = true;
	return 0;
}

/* ---------------------------------------------------------------- format */

static const char *format_name(enum ember_kernel_format f)
{
	switch (f) {
	case EMBER_KERNEL_BZIMAGE:
		return "bzImage";
	case EMBER_KERNEL_ELF_PVH:
		return "elf-pvh";
	default:
		return "unknown";
	}
}

static void size_str(uint64_t v, char *buf, size_t len)
{
	if (v && !(v & ((1ull << 30) - 1)))
		snprintf(buf, len, "%" PRIu64 "G", v >> 30);
	else if (v && !(v & ((1ull << 20) - 1)))
		snprintf(buf, len, "%" PRIu64 "M", v >> 20);
	else if (v && !(v & ((1ull << 10) - 1)))
		snprintf(buf, len, "%" PRIu64 "K", v >> 10);
	else
		snprintf(buf, len, "%" PRIu64 "B", v);
}

struct fmtbuf {
	char *buf;
	size_t len;
	size_t used;
};

static void fmt_add(struct fmtbuf *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fmt_add(struct fmtbuf *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *dst = f->used < f->len ? f->buf + f->used : NULL;
	size_t room = f->used < f->len ? f->len - f->used : 0;
	int n = vsnprintf(dst, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		f->used += (size_t)n;
}

int ember_config_format(const struct ember_config *cfg, char *buf, size_t len)
{
	struct fmtbuf f = {buf, len, 0};
	char sz[32];
	if (len)
		buf[0] = 0;
	fmt_add(&f, "kernel: %s\n", cfg->kernel[0] ? cfg->kernel : "(host kernel)");
	fmt_add(&f, "kernel-format: %s\n", format_name(cfg->kernel_format));
	fmt_add(&f, "boot: %s\n", boot_path_text(cfg));
	/* the cache matters only for a bzImage decompressed on the host */
	if (cfg->resolved && cfg->kernel_format == EMBER_KERNEL_BZIMAGE &&
	    cfg->boot_path == EMBER_BOOT_PVH) {
		if (!cfg->kernel_cache)
			fmt_add(&f, "kernel-cache: off\n");
		else if (cfg->kernel_cache_dir[0])
			fmt_add(&f, "kernel-cache: on (%s)\n", cfg->kernel_cache_dir);
		else
			fmt_add(&f, "kernel-cache: on (no directory: neither XDG_CACHE_HOME nor "
				    "HOME is set, so none)\n");
	}
	if (cfg->builtin_initrd)
		fmt_add(&f, "initrd: builtin\n");
	else
		fmt_add(&f, "initrd: %s\n", cfg->initrd[0] ? cfg->initrd : "none");
	if (cfg->builtin_initrd) {
		fmt_add(&f, "busybox: %s\n", cfg->busybox);
		if (cfg->root_fs)
			fmt_add(&f, "root: on (the built-in init mounts root= and switches to "
				    "it)\n");
		fmt_add(&f, "interactive: %s\n",
			cfg->interactive < 0 ? "auto"
			: cfg->interactive   ? "on"
					     : "off");
	}
	fmt_add(&f, "cmdline: %s\n", cfg->cmdline[0] ? cfg->cmdline : "(default)");
	if (cfg->cmdline_append[0])
		fmt_add(&f, "append: %s\n", cfg->cmdline_append);
	size_str(cfg->mem_size, sz, sizeof(sz));
	fmt_add(&f, "mem: %s (%" PRIu64 " bytes)\n", sz, cfg->mem_size);
	fmt_add(&f, "mem-backing: %s\n", cfg->mem_backing == EMBER_MEM_MEMFD ? "memfd" : "anon");
	fmt_add(&f, "hugepages: %s\n", cfg->hugepages ? "on" : "off");
	fmt_add(&f, "seccomp: %s\n", vmm_seccomp_mode_name(cfg->seccomp));
	fmt_add(&f, "cpus: %u\n", cfg->cpus);
	fmt_add(&f, "reboot: %s\n", cfg->reboot_restart ? "restart" : "exit");
	if (cfg->console_in >= 0 || cfg->console_out >= 0)
		fmt_add(&f, "console: %s in=fd%d out=fd%d escape=%s\n",
			cfg->console_virtio ? "hvc0 (virtio-console)" : "ttyS0", cfg->console_in,
			cfg->console_out, cfg->console_escape ? "ctrl-a" : "off");
	else
		fmt_add(&f, "console: none\n");
	/* the board's device list, the one ember_vm_create builds */
	struct vmm_devmgr *m = malloc(sizeof(*m));
	struct ember_error e = {0};
	if (!m)
		fmt_add(&f, "devices: (out of memory)\n");
	else if (vmm_board_plan(cfg, m, &e) < 0)
		fmt_add(&f, "devices: (%s)\n", e.msg);
	else {
		int n = vmm_devmgr_format(m, NULL, 0);
		char *dl = n > 0 ? malloc((size_t)n + 1) : NULL;
		if (dl) {
			vmm_devmgr_format(m, dl, (size_t)n + 1);
			fmt_add(&f, "%s", dl);
			free(dl);
		}
	}
	free(m);
	if (f.used > INT32_MAX)
		return -EOVERFLOW;
	return (int)f.used;
}

static const char *onoff(bool b)
{
	return b ? "on" : "off";
}

int ember_config_get(const struct ember_config *cfg, const char *key, char *buf, size_t len)
{
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	char tmp[32];
	const char *v = NULL;
	if (!cfg || !key)
		return -EINVAL;
	if (!strcmp(key, "kernel"))
		v = cfg->kernel;
	else if (!strcmp(key, "initrd"))
		v = cfg->builtin_initrd ? "builtin" : cfg->initrd;
	else if (!strcmp(key, "cmdline"))
		v = cfg->cmdline;
	else if (!strcmp(key, "append"))
		v = cfg->cmdline_append;
	else if (!strcmp(key, "busybox"))
		v = cfg->busybox;
	else if (!strcmp(key, "mem"))
		size_str(cfg->mem_size, tmp, sizeof(tmp)), v = tmp;
	else if (!strcmp(key, "cpus"))
		snprintf(tmp, sizeof(tmp), "%u", cfg->cpus), v = tmp;
	else if (!strcmp(key, "hotplug-slots"))
		snprintf(tmp, sizeof(tmp), "%u", cfg->hotplug_slots), v = tmp;
	else if (!strcmp(key, "disks")) {
		unsigned n = 0;
		for (unsigned i = 0; i < cfg->ndevs; i++)
			n += !strcmp(cfg->devs[i].type->name, "disk");
		snprintf(tmp, sizeof(tmp), "%u", n);
		v = tmp;
	} else if (!strcmp(key, "mem-backing"))
		v = cfg->mem_backing == EMBER_MEM_MEMFD ? "memfd" : "anon";
	else if (!strcmp(key, "hugepages"))
		v = onoff(cfg->hugepages);
	else if (!strcmp(key, "seccomp"))
		v = vmm_seccomp_mode_name(cfg->seccomp);
	else if (!strcmp(key, "console-escape"))
		v = onoff(cfg->console_escape);
	else if (!strcmp(key, "console"))
		v = cfg->console_virtio ? "virtio" : "serial";
	else if (!strcmp(key, "root"))
		v = onoff(cfg->root_fs);
	else if (!strcmp(key, "reboot"))
		v = cfg->reboot_restart ? "restart" : "exit";
	else if (!strcmp(key, "resolved"))
		v = onoff(cfg->resolved);
	else if (!strcmp(key, "interactive"))
		v = cfg->interactive < 0 ? "auto" : onoff(cfg->interactive > 0);
	else if (!strcmp(key, "log-level"))
		v = (unsigned)cfg->log_level < 4 ? levels[cfg->log_level] : "debug";
	else if (!strcmp(key, "boot"))
		v = boot_names[(unsigned)cfg->boot % 3];
	else if (!strcmp(key, "kernel-cache"))
		v = onoff(cfg->kernel_cache);
	else if (!strcmp(key, "kernel-cache-dir"))
		v = cfg->kernel_cache_dir;
	else if (!strcmp(key, "boot-path"))
		v = cfg->resolved ? boot_names[(unsigned)cfg->boot_path % 3] : "";
	else if (!strcmp(key, "kernel-format"))
		v = format_name(cfg->kernel_format);
	if (!v)
		return -ENOENT;
	return snprintf(buf, len, "%s", v);
}

/* ---------------------------------------------------------------- stop reasons */

const char *ember_stop_reason_name(enum ember_stop_reason reason)
{
	switch (reason) {
	case EMBER_STOP_POWEROFF:
		return "poweroff";
	case EMBER_STOP_REBOOT:
		return "reboot";
	case EMBER_STOP_CRASH:
		return "crash";
	case EMBER_STOP_REQUESTED:
		return "stopped";
	case EMBER_STOP_ERROR:
		return "error";
	case EMBER_STOP_PANIC:
		return "panic";
	case EMBER_STOP_HALTED:
		return "halted";
	}
	return "invalid";
}

int ember_stop_reason_exit_status(enum ember_stop_reason reason)
{
	switch (reason) {
	case EMBER_STOP_POWEROFF:
		return EMBER_EXIT_POWEROFF;
	case EMBER_STOP_REBOOT:
		return EMBER_EXIT_REBOOT;
	case EMBER_STOP_CRASH:
		return EMBER_EXIT_CRASH;
	case EMBER_STOP_REQUESTED:
		return EMBER_EXIT_STOPPED;
	case EMBER_STOP_ERROR:
		return EMBER_EXIT_ERROR;
	case EMBER_STOP_PANIC:
		return EMBER_EXIT_PANIC;
	case EMBER_STOP_HALTED:
		return EMBER_EXIT_HALTED;
	}
	return EMBER_EXIT_ERROR;
}
