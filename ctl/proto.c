/* ctl/proto.c - the command table (every request, its arguments, its doc and example), the error codes, and the protocol's decoder and encoder on json-c. */
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the table */

#define NO_ARGS           \
	{                 \
		{         \
			0 \
		}         \
	}
#define ARG_U(n, req, mx, d)                                                                \
	{                                                                                   \
		.name = n, .type = EMBER_CTL_ARG_UINT, .required = req, .max = mx, .doc = d \
	}
#define ARG_S(n, req, mx, d)                                                                  \
	{                                                                                     \
		.name = n, .type = EMBER_CTL_ARG_STRING, .required = req, .max = mx, .doc = d \
	}
#define ARG_B(n, d)                                             \
	{                                                       \
		.name = n, .type = EMBER_CTL_ARG_BOOL, .doc = d \
	}
#define ARG_E(n, req, vals, d)                                                                   \
	{                                                                                        \
		.name = n, .type = EMBER_CTL_ARG_ENUM, .required = req, .values = vals, .doc = d \
	}
#define ARG_L(n, req, vals, d)                                                             \
	{                                                                                  \
		.name = n, .type = EMBER_CTL_ARG_STRINGS, .required = req, .values = vals, \
		.doc = d                                                                   \
	}
#define BYTES_MAX (1ull << 50)

static const struct ember_ctl_command commands[] = {
    {.name = "exit",
     .crosvm = "Exit",
     .cli = "stop",
     .doc = "Stops the VM (ember_vm_request_stop): `ember run` exits with status 34 "
	    "(stopped by request); the response comes before the VM has stopped.",
     .example = "{}",
     .result = "{}",
     .args = NO_ARGS},
    {.name = "powerbtn",
     .crosvm = "Powerbtn",
     .cli = "powerbtn",
     .doc = "Presses the ACPI power button (the Generic Event Device): a guest that "
	    "handles it shuts down.",
     .example = "{}",
     .result = "{}",
     .errors = "no-device",
     .args = NO_ARGS},
    {.name = "sleepbtn",
     .crosvm = "Sleepbtn",
     .cli = "sleepbtn",
     .doc = "Presses the ACPI sleep button.",
     .example = "{}",
     .result = "{}",
     .errors = "no-device",
     .args = NO_ARGS},
    {.name = "rtc",
     .crosvm = "Rtc",
     .cli = "rtc",
     .doc = "Raises an RTC interrupt in the guest (the CMOS RTC's alarm flag).",
     .example = "{}",
     .result = "{}",
     .errors = "no-device",
     .args = NO_ARGS},
    {.name = "gpe",
     .crosvm = "Gpe",
     .cli = "gpe N",
     .doc = "Delivers general-purpose event N to the guest's ACPI.",
     .example = "{\"n\":3}",
     .result = "{}",
     .errors = "not-found (the DSDT has no handler for N), no-device",
     .args = {ARG_U("n", true, 255, "the GPE number")}},
    {.name = "suspend-vcpus",
     .crosvm = "SuspendVcpus",
     .cli = "suspend",
     .doc = "Pauses the vCPUs only (ember_vm_pause_vcpus); the devices go on.",
     .example = "{}",
     .result = "{\"state\":\"running\",\"vcpus_paused\":true}",
     .errors = "bad-state (not started, or the whole VM is suspended), stopped",
     .args = NO_ARGS},
    {.name = "resume-vcpus",
     .crosvm = "ResumeVcpus",
     .cli = "resume",
     .doc = "Resumes vCPUs paused by suspend-vcpus.",
     .example = "{}",
     .result = "{\"state\":\"running\",\"vcpus_paused\":false}",
     .errors = "bad-state, stopped",
     .args = NO_ARGS},
    {.name = "suspend-vm",
     .crosvm = "SuspendVm",
     .cli = "suspend --full",
     .doc = "Pauses the whole VM (ember_vm_pause): vCPUs and devices, no disk or network "
	    "I/O until resume-vm.",
     .example = "{}",
     .result = "{\"state\":\"paused\",\"vcpus_paused\":false}",
     .errors = "bad-state, stopped",
     .args = NO_ARGS},
    {.name = "resume-vm",
     .crosvm = "ResumeVm",
     .cli = "resume --full",
     .doc = "Resumes a suspended VM (ember_vm_resume), vCPUs and devices.",
     .example = "{}",
     .result = "{\"state\":\"running\",\"vcpus_paused\":false}",
     .errors = "bad-state, stopped",
     .args = NO_ARGS},
    {.name = "balloon",
     .crosvm = "BalloonCommand",
     .cli = "balloon BYTES | balloon target BYTES | balloon stats",
     .doc = "Sets the balloon's target (bytes the guest gives back) or reads its "
	    "statistics; without command: target when bytes is given, else stats.",
     .example = "{\"command\":\"target\",\"bytes\":268435456}",
     .result = "target: {\"target_bytes\":N}; stats: {\"target_bytes\",\"actual_bytes\","
	       "\"inflated_bytes\",\"deflated_bytes\",\"reported_bytes\",\"given_back_bytes\","
	       "\"guest_updates\",\"guest\":{\"free_memory\":N,...}}",
     .errors = "no-device (no --balloon), invalid (more than the guest's memory)",
     .args = {ARG_E("command", false, "target|stats", "what to do"),
	      ARG_U("bytes", false, BYTES_MAX, "target: the size in bytes (4 KiB pages)")}},
    {.name = "disk",
     .crosvm = "DiskCommand",
     .cli = "disk resize INDEX BYTES",
     .doc = "Resizes disk INDEX (the --disk options in order) to BYTES; the guest sees "
	    "the new capacity.",
     .example = "{\"index\":0,\"command\":\"resize\",\"bytes\":1073741824}",
     .result = "{}",
     .errors = "no-device (no such disk), invalid",
     .args = {ARG_U("index", true, 255, "the disk"), ARG_E("command", true, "resize", "what to do"),
	      ARG_U("bytes", true, BYTES_MAX, "the new size")}},
    {.name = "snapshot",
     .crosvm = "Snapshot",
     .cli = "snapshot take PATH [--resume] [--base DIR]",
     .doc = "Takes a snapshot of the VM into directory PATH (`ember run --restore PATH` "
	    "brings it back); the VM stays paused after it unless resume is true.",
     .example = "{\"command\":\"take\",\"path\":\"/tmp/snap\",\"resume\":true}",
     .result = "{}",
     .errors = "invalid",
     .args = {ARG_E("command", true, "take", "what to do"),
	      ARG_S("path", true, 4095, "the snapshot's directory"),
	      ARG_B("resume", "resume the VM after saving"),
	      ARG_S("base", false, 4095, "an incremental snapshot's base directory")}},
    {.name = "restore",
     .crosvm = NULL,
     .cli = "restore PATH [--memory MODE] [--verify] [--disk SPEC] [--net SPEC] [--vsock SPEC]",
     .doc = "Only on a VMM started waiting (`ember run --restore-on-request`): restores "
	    "the snapshot in directory PATH as its VM, which then runs (as `ember run "
	    "--restore PATH`); memory map (default), uffd or copy as --restore-memory; "
	    "verify checks every saved page's checksum; disk, net, vsock give a clone its "
	    "own host side, as --restore-disk|net|vsock ([N,]KEY=VALUE, several separated "
	    "by ';'). A failed restore leaves the VMM waiting for another.",
     .example = "{\"path\":\"/tmp/snap\",\"vsock\":\"socket=/tmp/v2.sock\"}",
     .result = "{\"vcpus\":N,\"mem_size\":N,\"restore_us\":N}",
     .errors = "has-vm, stopped, invalid, not-found, unsupported",
     .args = {ARG_S("path", true, 4095, "the snapshot's directory"),
	      ARG_E("memory", false, "map|uffd|copy", "how guest memory comes back"),
	      ARG_B("verify", "check every saved page's CRC-32 first"),
	      ARG_S("disk", false, 4095, "disk image copies: [N,]path=IMAGE;..."),
	      ARG_S("net", false, 4095, "taps: [N,]tap=NAME;..."),
	      ARG_S("vsock", false, 4095, "vsock sockets: [N,]socket=PATH;...")}},
    {.name = "swap",
     .crosvm = "Swap",
     .cli = "swap COMMAND",
     .doc =
	 "Swaps guest memory out to a file and serves it back on demand through a "
	 "userfaultfd page server (crosvm's SwapCommand): enable registers guest memory "
	 "with the page server; out pauses the VM, writes its resident pages to an "
	 "unlinked swap file ($XDG_RUNTIME_DIR, $TMPDIR or /tmp), releases them from host RAM and "
	 "resumes it, the guest's next touch of a page reading it back; disable brings "
	 "every page back and unregisters; status reports. trim answers unsupported "
	 "(Ember has no staging memory). Every command answers the status after it: "
	 "state disabled|ready|swapped-out, faults served, bytes_in, zero_pages, errors, "
	 "last_out_pages, out_pages, swapped_pages (still only in the file), page_size.",
     .example = "{\"command\":\"out\"}",
     .result = "{\"state\":\"swapped-out\",\"faults\":12,\"bytes_in\":49152,"
	       "\"zero_pages\":0,\"errors\":0,\"last_out_pages\":16384,\"out_pages\":16384,"
	       "\"swapped_pages\":16372,\"page_size\":4096}",
     .errors = "invalid, unsupported, permission",
     .args = {ARG_E("command", true, "enable|trim|out|disable|status", "what to do")}},
    {.name = "hotplug-net",
     .crosvm = "HotPlugNetCommand",
     .cli = "net add SPEC | net remove SLOT",
     .doc = "Adds a virtio-net device (SPEC as --net's sub-options) to the running guest "
	    "in a free hotplug slot, or removes the one in SLOT.",
     .example = "{\"command\":\"add\",\"spec\":\"tap=tap1\"}",
     .result = "add: {\"slot\":N}; remove: {}",
     .errors = "no-device, invalid",
     .args = {ARG_E("command", true, "add|remove", "what to do"),
	      ARG_S("spec", false, 1024, "add: the device, as --net takes it"),
	      ARG_U("slot", false, 255, "remove: the slot add answered")}},
    {.name = "register-listener",
     .crosvm = "RegisterListener",
     .cli = "events [--events LIST]",
     .doc = "Makes this connection a listener: it gets {\"event\":...} messages of the "
	    "kinds asked for (default all) from now on, between responses.",
     .example = "{\"events\":[\"state\",\"exit\"]}",
     .result = "{\"events\":[\"state\",\"exit\"]}",
     .args = {ARG_L("events", false, "state|exit|balloon|power|all", "the kinds (default all)")}},
    {.name = "unregister-listener",
     .crosvm = "UnregisterListener",
     .cli = NULL,
     .doc = "Stops the events of the kinds given (default all) on this connection.",
     .example = "{\"events\":[\"balloon\"]}",
     .result = "{\"events\":[...the kinds still registered]}",
     .args = {ARG_L("events", false, "state|exit|balloon|power|all", "the kinds (default all)")}},
    {.name = "unregister",
     .crosvm = "Unregister",
     .cli = NULL,
     .doc = "Stops every event on this connection.",
     .example = "{}",
     .result = "{\"events\":[]}",
     .args = NO_ARGS},
    {.name = "vcpu-pid-tid",
     .crosvm = "VcpuPidTid",
     .cli = "vcpus",
     .doc = "The VMM's process id and each vCPU thread's id (/proc/PID/task/TID).",
     .example = "{}",
     .result = "{\"pid\":N,\"vcpus\":[{\"index\":0,\"tid\":N},...]}",
     .args = NO_ARGS},
    {.name = "make-rt",
     .crosvm = "MakeRT",
     .cli = "make-rt [--priority N]",
     .doc = "Gives every vCPU thread real-time scheduling (SCHED_FIFO at priority, "
	    "default 1).",
     .example = "{\"priority\":1}",
     .result = "{\"policy\":\"fifo\",\"priority\":1,\"threads\":N}",
     .errors = "permission (no CAP_SYS_NICE or RLIMIT_RTPRIO)",
     .args = {ARG_U("priority", false, 99, "SCHED_FIFO priority, 1..99")}},
    {.name = "pci-pme",
     .crosvm = "PciPme",
     .cli = "pci-pme [--requester N]",
     .doc = "A PCI power-management event; Ember has no PCI devices.",
     .example = "{\"requester\":0}",
     .result = "-",
     .errors = "no-pci (always)",
     .args = {ARG_U("requester", false, 65535, "the requester id")}},
    {.name = "usb",
     .crosvm = "UsbCommand",
     .cli = "usb COMMAND",
     .doc = "USB device control; Ember has no USB controller.",
     .example = "{\"command\":\"list\"}",
     .result = "-",
     .errors = "no-usb (always)",
     .args = {ARG_S("command", false, 256, "crosvm's usb command")}},
    {.name = "gpu",
     .crosvm = "GpuCommand",
     .cli = "gpu COMMAND",
     .doc = "GPU display control; Ember has no GPU.",
     .example = "{\"command\":\"list-displays\"}",
     .result = "-",
     .errors = "no-gpu (always)",
     .args = {ARG_S("command", false, 256, "crosvm's gpu command")}},
    {.name = "bat",
     .crosvm = "BatCommand",
     .cli = "battery COMMAND",
     .doc = "Battery control; Ember has no battery device.",
     .example = "{\"command\":\"status\"}",
     .result = "-",
     .errors = "no-battery (always)",
     .args = {ARG_S("command", false, 256, "crosvm's battery command")}},
    {.name = "hotplug-vfio",
     .crosvm = "HotPlugVfioCommand",
     .cli = "vfio COMMAND",
     .doc = "VFIO device hotplug; Ember has no VFIO (no PCI).",
     .example = "{\"command\":\"add\"}",
     .result = "-",
     .errors = "no-vfio (always)",
     .args = {ARG_S("command", false, 256, "add or remove"),
	      ARG_S("path", false, 4095, "the device's sysfs path")}},
    {.name = "status",
     .crosvm = NULL,
     .cli = "status",
     .doc = "The no-op query: the VM's state and size.",
     .example = "{}",
     .result = "{\"state\":\"running\",\"vcpus_paused\":false,\"vcpus\":N,\"mem_size\":N,"
	       "\"pid\":N}",
     .args = NO_ARGS},
};

const struct ember_ctl_command *ember_ctl_commands(size_t *n)
{
	if (n)
		*n = sizeof(commands) / sizeof(commands[0]);
	return commands;
}

const struct ember_ctl_command *ember_ctl_command_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name) ||
		    (commands[i].crosvm && !strcmp(commands[i].crosvm, name)))
			return &commands[i];
	return NULL;
}

/* ------------------------------------------------------------ error codes */

static const struct ember_ctl_error_code codes[] = {
    {"bad-json", -EBADMSG, "the message is not one JSON value (or nests deeper than 16)"},
    {"bad-message", -EPROTO, "valid JSON that is not a hello or a request"},
    {"too-large", -EMSGSIZE, "a message over 65536 bytes (it is discarded)"},
    {"hello-required", -EPROTO, "a request before the client's hello (the server disconnects)"},
    {"protocol-version", -EPROTONOSUPPORT,
     "the hello asks for a protocol this server does not speak (it disconnects)"},
    {"unknown-request", -EOPNOTSUPP, "no request of that name"},
    {"bad-args", -EINVAL, "an unknown argument, a missing one, a wrong type or out of bounds"},
    {"busy", -EBUSY, "the server has too many clients (sent on connect, then closed)"},
    {"idle", -ETIMEDOUT, "the connection sent nothing for too long (sent, then closed)"},
    {"invalid", -EINVAL, "the request cannot be done with these values"},
    {"bad-state", -EBADFD, "the VM is not in a state where this applies"},
    {"stopped", -ESRCH, "the VM has stopped or is stopping"},
    {"no-device", -ENODEV, "no such device on this VM"},
    {"no-vm", -ENXIO,
     "the VMM waits for a restore request (`ember run --restore-on-request`) and has no VM "
     "yet"},
    {"has-vm", -EEXIST, "restore: the VMM has its VM already"},
    {"not-found", -ENOENT, "no such thing (e.g. a GPE without a handler)"},
    {"not-implemented", -ENOSYS, "this Ember has no implementation of it yet"},
    {"unsupported", -ENOTSUP,
     "this Ember does not support it (swap trim; swap on hugepages or a map restore's memory)"},
    {"permission", -EPERM, "the host refused (e.g. real-time scheduling without CAP_SYS_NICE)"},
    {"no-pci", -ENODEV, "PciPme: Ember has no PCI devices"},
    {"no-usb", -ENODEV, "UsbCommand: Ember has no USB controller"},
    {"no-gpu", -ENODEV, "GpuCommand: Ember has no GPU"},
    {"no-battery", -ENODEV, "BatCommand: Ember has no battery"},
    {"no-vfio", -ENODEV, "HotPlugVfioCommand: Ember has no VFIO"},
    {"failed", -EIO, "any other failure: the message and errno say which"},
};

const struct ember_ctl_error_code *ember_ctl_error_codes(size_t *n)
{
	if (n)
		*n = sizeof(codes) / sizeof(codes[0]);
	return codes;
}

const char *ctl_errno_code(int err)
{
	switch (err) {
	case -EINVAL:
		return "invalid";
	case -EBADFD:
	case -EBUSY:
		return "bad-state";
	case -ESRCH:
		return "stopped";
	case -ENODEV:
		return "no-device";
	case -ENOENT:
		return "not-found";
	case -ENOSYS:
		return "not-implemented";
	case -ENOTSUP:
		return "unsupported";
	case -EPERM:
	case -EACCES:
		return "permission";
	}
	return "failed";
}

int ctl_code_errno(const char *code)
{
	for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(codes[i].name, code))
			return codes[i].err;
	return -EPROTO;
}

/* ------------------------------------------------------------ decoding */

static int why_f(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why_f(char *why, size_t len, const char *fmt, ...)
{
	if (len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A client's text quoted in an error message: at most 64 bytes, control
 * characters made '?', so the message stays one line. */
static const char *quote(const char *s, char out[68])
{
	size_t n = 0;
	for (; s[n] && n < 64; n++)
		out[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
	out[n] = 0;
	return out;
}

const char *const ctl_balloon_guest_names[EMBER_BALLOON_GUEST_STATS] = {
    "swap_in",	    "swap_out",		"major_faults", "minor_faults",	       "free_memory",
    "total_memory", "available_memory", "disk_caches",	"hugetlb_allocations", "hugetlb_failures"};

bool ember_ctl_value_allowed(const char *values, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	for (const char *p = values; s && p && *p;) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);
		if (l == n && !memcmp(p, s, n))
			return true;
		p = bar ? bar + 1 : NULL;
	}
	return false;
}

static int check_one(const struct ember_ctl_arg *a, struct json_object *v, char *why, size_t wl)
{
	switch (a->type) {
	case EMBER_CTL_ARG_UINT: {
		if (!json_object_is_type(v, json_type_int))
			return why_f(why, wl, "argument '%s' must be an integer", a->name);
		errno = 0;
		int64_t x = json_object_get_int64(v);
		/* json-c clamps what overflows int64 (and keeps uint64 apart) */
		uint64_t u = json_object_get_uint64(v);
		if (x < 0)
			return why_f(why, wl, "argument '%s' must not be negative", a->name);
		if (a->max && u > a->max)
			return why_f(why, wl, "argument '%s' is above its bound %" PRIu64, a->name,
				     a->max);
		return 0;
	}
	case EMBER_CTL_ARG_STRING:
		if (!json_object_is_type(v, json_type_string))
			return why_f(why, wl, "argument '%s' must be a string", a->name);
		if (a->max && (uint64_t)json_object_get_string_len(v) > a->max)
			return why_f(why, wl, "argument '%s' is longer than %" PRIu64 " bytes",
				     a->name, a->max);
		if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
			return why_f(why, wl, "argument '%s' contains a NUL byte", a->name);
		return 0;
	case EMBER_CTL_ARG_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return why_f(why, wl, "argument '%s' must be true or false", a->name);
		return 0;
	case EMBER_CTL_ARG_ENUM:
		if (!json_object_is_type(v, json_type_string) ||
		    !ember_ctl_value_allowed(a->values, json_object_get_string(v)))
			return why_f(why, wl, "argument '%s' must be one of %s", a->name,
				     a->values);
		return 0;
	case EMBER_CTL_ARG_STRINGS: {
		if (!json_object_is_type(v, json_type_array))
			return why_f(why, wl, "argument '%s' must be an array of strings", a->name);
		size_t n = json_object_array_length(v);
		if (n > 16)
			return why_f(why, wl, "argument '%s' has more than 16 elements", a->name);
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			if (!json_object_is_type(e, json_type_string) ||
			    !ember_ctl_value_allowed(a->values, json_object_get_string(e)))
				return why_f(why, wl, "argument '%s': each element one of %s",
					     a->name, a->values);
		}
		return 0;
	}
	}
	return why_f(why, wl, "argument '%s' has an unknown type", a->name);
}

int ctl_args_check(const struct ember_ctl_command *cmd, struct json_object *args, char *why,
		   size_t whylen)
{
	if (!json_object_is_type(args, json_type_object))
		return why_f(why, whylen, "args must be an object");
	json_object_object_foreach(args, key, val)
	{
		const struct ember_ctl_arg *a = NULL;
		for (unsigned i = 0; i < EMBER_CTL_MAX_ARGS && cmd->args[i].name; i++)
			if (!strcmp(cmd->args[i].name, key))
				a = &cmd->args[i];
		if (!a) {
			char q[68];
			return why_f(why, whylen, "%s has no argument '%s'", cmd->name,
				     quote(key, q));
		}
		int r = check_one(a, val, why, whylen);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < EMBER_CTL_MAX_ARGS && cmd->args[i].name; i++)
		if (cmd->args[i].required &&
		    !json_object_object_get_ex(args, cmd->args[i].name, NULL))
			return why_f(why, whylen, "%s needs argument '%s'", cmd->name,
				     cmd->args[i].name);
	return 0;
}

void ctl_msg_fini(struct ctl_msg *m)
{
	if (m && m->root) {
		json_object_put(m->root);
		m->root = NULL;
	}
}

#define ID_MAX ((1ll << 53) - 1) /* exact in every JSON implementation */

int ctl_decode(const char *buf, size_t len, struct ctl_msg *m, const char **code, char *why,
	       size_t whylen)
{
	memset(m, 0, sizeof(*m));
	*code = "bad-json";
	if (whylen)
		why[0] = 0;
	if (len > EMBER_CTL_MAX_MESSAGE) {
		*code = "too-large";
		why_f(why, whylen, "a message of %zu bytes (at most %d)", len,
		      EMBER_CTL_MAX_MESSAGE);
		return -EMSGSIZE;
	}
	if (memchr(buf, 0, len)) {
		why_f(why, whylen, "a NUL byte in the message");
		return -EBADMSG;
	}
	struct json_tokener *tok = json_tokener_new_ex(CTL_MAX_DEPTH);
	if (!tok) {
		*code = "failed";
		why_f(why, whylen, "out of memory");
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *root = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error je = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!root || je != json_tokener_success) {
		if (root)
			json_object_put(root);
		why_f(why, whylen, "not JSON: %s",
		      je == json_tokener_continue ? "truncated" : json_tokener_error_desc(je));
		return -EBADMSG;
	}
	m->root = root;
	for (; used < len; used++) /* only white space may follow the value */
		if (buf[used] != ' ' && buf[used] != '\n' && buf[used] != '\t' &&
		    buf[used] != '\r') {
			why_f(why, whylen, "data after the JSON value");
			return -EBADMSG;
		}
	*code = "bad-message";
	if (!json_object_is_type(root, json_type_object)) {
		why_f(why, whylen, "a message must be a JSON object");
		return -EPROTO;
	}
	struct json_object *v;
	if (json_object_object_get_ex(root, "hello", &v)) {
		struct json_object *p;
		if (json_object_object_length(root) != 1 ||
		    !json_object_is_type(v, json_type_object) ||
		    !json_object_object_get_ex(v, "protocol", &p) ||
		    !json_object_is_type(p, json_type_int)) {
			why_f(why, whylen, "a hello is {\"hello\":{\"protocol\":N,...}} alone");
			return -EPROTO;
		}
		m->kind = CTL_MSG_HELLO;
		m->protocol = json_object_get_int64(p);
		return 0;
	}
	m->kind = CTL_MSG_REQUEST;
	if (json_object_object_get_ex(root, "id", &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) >= 0 && json_object_get_int64(v) <= ID_MAX) {
		m->id = json_object_get_int64(v);
		m->has_id = true;
	} else {
		why_f(why, whylen, "a request needs \"id\": an integer 0..2^53-1");
		return -EPROTO;
	}
	json_object_object_foreach(root, key, val)
	{
		(void)val;
		if (strcmp(key, "id") && strcmp(key, "request") && strcmp(key, "args")) {
			char q[68];
			why_f(why, whylen, "a request has no field '%s'", quote(key, q));
			return -EPROTO;
		}
	}
	if (!json_object_object_get_ex(root, "request", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		why_f(why, whylen, "a request needs \"request\": a string");
		return -EPROTO;
	}
	const char *name = json_object_get_string(v);
	m->cmd = strlen(name) == (size_t)json_object_get_string_len(v)
		     ? ember_ctl_command_find(name)
		     : NULL;
	if (!m->cmd) {
		*code = "unknown-request";
		char q[68];
		why_f(why, whylen, "no request '%s'", quote(name, q));
		return -EOPNOTSUPP;
	}
	if (!json_object_object_get_ex(root, "args", &m->args)) {
		m->args = json_object_new_object();
		if (!m->args) {
			*code = "failed";
			return -ENOMEM;
		}
		json_object_object_add(root, "args", m->args);
	}
	*code = "bad-args";
	return ctl_args_check(m->cmd, m->args, why, whylen);
}

/* ------------------------------------------------------------ encoding */

char *ctl_encode(struct json_object *obj, size_t *len)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &n);
	if (!s || n > EMBER_CTL_MAX_MESSAGE)
		return NULL;
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	memcpy(out, s, n + 1);
	*len = n;
	return out;
}

static struct json_object *response(int64_t id, bool ok)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "id", id < 0 ? NULL : json_object_new_int64(id));
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	return o;
}

struct json_object *ctl_response_ok(int64_t id, struct json_object *result)
{
	struct json_object *o = response(id, true);
	if (!o) {
		json_object_put(result);
		return NULL;
	}
	json_object_object_add(o, "result", result ? result : json_object_new_object());
	return o;
}

struct json_object *ctl_response_error(int64_t id, const char *code, const char *message, int err)
{
	struct json_object *o = response(id, false);
	struct json_object *e = json_object_new_object();
	if (!o || !e) {
		json_object_put(o);
		json_object_put(e);
		return NULL;
	}
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(message ? message : ""));
	json_object_object_add(e, "errno", json_object_new_int(err));
	json_object_object_add(o, "error", e);
	return o;
}

struct json_object *ctl_hello(const char *side)
{
	struct json_object *o = json_object_new_object(), *h = json_object_new_object();
	if (!o || !h) {
		json_object_put(o);
		json_object_put(h);
		return NULL;
	}
	json_object_object_add(h, "protocol", json_object_new_int(EMBER_CTL_PROTOCOL));
	json_object_object_add(h, side, json_object_new_string("ember"));
	json_object_object_add(h, "max_message", json_object_new_int(EMBER_CTL_MAX_MESSAGE));
	json_object_object_add(o, "hello", h);
	return o;
}

/* ------------------------------------------------------------ the document */

static const char *type_name(const struct ember_ctl_arg *a)
{
	switch (a->type) {
	case EMBER_CTL_ARG_UINT:
		return "integer";
	case EMBER_CTL_ARG_STRING:
		return "string";
	case EMBER_CTL_ARG_BOOL:
		return "boolean";
	case EMBER_CTL_ARG_ENUM:
		return "string";
	case EMBER_CTL_ARG_STRINGS:
		return "array of strings";
	}
	return "?";
}

struct md {
	char *buf;
	size_t len, used;
};

static void md_f(struct md *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void md_f(struct md *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(m->used < m->len ? m->buf + m->used : NULL,
			  m->used < m->len ? m->len - m->used : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		m->used += (size_t)n;
}

int ctl_format_requests_md(char *buf, size_t len)
{
	struct md m = {.buf = buf, .len = len};
	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct ember_ctl_command *c = &commands[i];
		md_f(&m, "### `%s`%s%s%s\n\n%s\n\n", c->name, c->crosvm ? " (crosvm `" : "",
		     c->crosvm ? c->crosvm : "", c->crosvm ? "`)" : " (Ember's own)", c->doc);
		if (c->cli) {
			md_f(&m, "- CLI:");
			for (const char *f = c->cli; f;) { /* forms are split by " | " */
				const char *bar = strstr(f, " | ");
				int l = bar ? (int)(bar - f) : (int)strlen(f);
				md_f(&m, "%s `ember %.*s SOCKET`", f == c->cli ? "" : ",", l, f);
				f = bar ? bar + 3 : NULL;
			}
			md_f(&m, "\n");
		} else
			md_f(&m, "- CLI: none (it acts on the connection that sends it)\n");
		if (!c->args[0].name)
			md_f(&m, "- args: none\n");
		for (unsigned k = 0; k < EMBER_CTL_MAX_ARGS && c->args[k].name; k++) {
			const struct ember_ctl_arg *a = &c->args[k];
			md_f(&m, "- args.`%s`: %s%s", a->name, type_name(a),
			     a->required ? ", required" : ", optional");
			if (a->values)
				md_f(&m, ", one of `%s`", a->values);
			if (a->max && a->type == EMBER_CTL_ARG_UINT)
				md_f(&m, ", at most %" PRIu64, a->max);
			if (a->max && a->type == EMBER_CTL_ARG_STRING)
				md_f(&m, ", at most %" PRIu64 " bytes", a->max);
			md_f(&m, ": %s\n", a->doc);
		}
		md_f(&m, "- result: `%s`\n", c->result);
		if (c->errors)
			md_f(&m, "- errors: %s\n", c->errors);
		md_f(&m, "- example: `{\"id\":1,\"request\":\"%s\",\"args\":%s}`\n\n", c->name,
		     c->example);
	}
	md_f(&m, "### Error codes\n\n| code | errno | meaning |\n|---|---|---|\n");
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		md_f(&m, "| `%s` | %d | %s |\n", codes[i].name, codes[i].err, codes[i].doc);
	return (int)m.used;
}
