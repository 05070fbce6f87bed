/* cli/ctl.c - the `ember` control subcommands (stop, suspend, balloon, vcpus, events, list, ...), parsed from the command table of <ember/ctl.h>, and `ember run --socket`'s path. */
#include "ctl.h"

#include <ember/ctl.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_WORDS 16

/* ------------------------------------------------------------ usage */

/* Each form of a command's cli string (split by " | "), one per call. */
static const char *next_form(const char *f, char *buf, size_t len)
{
	if (!f || !*f)
		return NULL;
	const char *bar = strstr(f, " | ");
	size_t l = bar ? (size_t)(bar - f) : strlen(f);
	snprintf(buf, len, "%.*s", (int)l, f);
	return bar ? bar + 3 : f + l;
}

void cli_ctl_usage(FILE *f)
{
	size_t n;
	const struct ember_ctl_command *t = ember_ctl_commands(&n);
	fprintf(f, "control a running VM (`ember run --socket PATH|NAME`; docs/PROTOCOL.md):\n");
	for (size_t i = 0; i < n; i++) {
		char form[128];
		for (const char *p = t[i].cli; (p = next_form(p, form, sizeof(form)));) {
			char line[160];
			snprintf(line, sizeof(line), "%s SOCKET", form);
			fprintf(f, "  ember %-46s %s\n", line, t[i].name);
		}
	}
	fprintf(f, "  ember %-46s %s\n", "list [--json]", "the VMs of this user and their state");
	fprintf(f,
		"SOCKET: the last argument or --socket PATH; a bare NAME is a socket in the\n"
		"per-user directory. Options: --json (print the result as one JSON line),\n"
		"--timeout MS (default 5000). A relative PATH or DIR is made absolute (the\n"
		"VMM resolves paths in its own directory). Exit status: 0 done, 1 refused by\n"
		"the VM (the error's code and message on stderr), 2 usage, 3 no VM at SOCKET.\n");
}

/* ------------------------------------------------------------ socket paths */

int cli_socket_path(const char *arg, bool create, char *buf, size_t len)
{
	if (strchr(arg, '/')) {
		int n = snprintf(buf, len, "%s", arg);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	int n = ember_ctl_name_path(arg, create, buf, len);
	return n < 0 ? n : (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ------------------------------------------------------------ parsing */

struct opt {
	const char *name; /* without the dashes */
	const char *value;
	bool used;
};

struct parsed {
	const char *words[MAX_WORDS];
	unsigned nwords;
	struct opt opts[MAX_WORDS];
	unsigned nopts;
	const char *socket;
	bool json;
	int timeout_ms;
	bool help;
};

static const struct ember_ctl_arg *find_arg(const struct ember_ctl_command *c, const char *name)
{
	for (unsigned i = 0; i < EMBER_CTL_MAX_ARGS && c->args[i].name; i++)
		if (!strcmp(c->args[i].name, name))
			return &c->args[i];
	return NULL;
}

/* Sets args[name] from the text s, typed by the schema; -1 on a bad value. */
static int set_arg(struct json_object *args, const struct ember_ctl_arg *a, const char *s)
{
	switch (a->type) {
	case EMBER_CTL_ARG_UINT: {
		uint64_t v;
		if (!strcmp(a->name, "bytes")) {
			if (ember_parse_size(s, 1, &v) < 0)
				return -1;
		} else {
			char *end;
			errno = 0;
			v = strtoull(s, &end, 0);
			if (!*s || *end || errno || *s == '-')
				return -1;
		}
		json_object_object_add(args, a->name, json_object_new_uint64(v));
		return 0;
	}
	case EMBER_CTL_ARG_BOOL:
		json_object_object_add(args, a->name, json_object_new_boolean(1));
		return 0;
	case EMBER_CTL_ARG_STRINGS: {
		struct json_object *l = json_object_new_array();
		char *copy = strdup(s), *save = NULL;
		for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
		     t = strtok_r(NULL, ",", &save))
			json_object_array_add(l, json_object_new_string(t));
		free(copy);
		json_object_object_add(args, a->name, l);
		return 0;
	}
	case EMBER_CTL_ARG_STRING:
	case EMBER_CTL_ARG_ENUM: {
		char cwd[4096], abs[8192];
		if (a->type == EMBER_CTL_ARG_STRING &&
		    (!strcmp(a->name, "path") || !strcmp(a->name, "base")) && *s && *s != '/') {
			/* the VMM resolves a path in its own directory: a relative
			 * one is made this directory's */
			if (!getcwd(cwd, sizeof(cwd)))
				return -1;
			snprintf(abs, sizeof(abs), "%s/%s", cwd, s);
			s = abs;
		}
		json_object_object_add(args, a->name, json_object_new_string(s));
		return 0;
	}
	}
	return -1;
}

/* Does form match the words? On a match, args gets what the words and
 * the options say. Returns 1 match, 0 no match (msg: a bad value, if that
 * was why). */
static int match_form(const struct ember_ctl_command *c, const char *form, struct parsed *p,
		      unsigned nwords, struct json_object *args, char *msg, size_t mlen)
{
	char copy[128];
	snprintf(copy, sizeof(copy), "%s", form);
	char *tok[MAX_WORDS], *save = NULL;
	unsigned nt = 0;
	for (char *t = strtok_r(copy, " ", &save); t && nt < MAX_WORDS;
	     t = strtok_r(NULL, " ", &save))
		tok[nt++] = t;
	unsigned w = 0;
	bool flag_ok[MAX_WORDS] = {0};
	for (unsigned i = 0; i < nt; i++) {
		char *t = tok[i];
		if (t[0] == '[') { /* [--name] or [--name VALUE]: optional options */
			char *name = t + 1 + (t[1] == '-' ? 2 : 0);
			bool closed = strchr(t, ']') != NULL; /* before the ']' is cut off */
			name[strcspn(name, "]")] = 0;
			for (unsigned k = 0; k < p->nopts; k++)
				if (!strcmp(p->opts[k].name, name))
					flag_ok[k] = true;
			if (!closed && i + 1 < nt)
				i++; /* its VALUE] */
			continue;
		}
		if (t[0] == '-' && t[1] == '-') { /* a literal flag: required */
			bool have = false;
			for (unsigned k = 0; k < p->nopts; k++)
				if (!strcmp(p->opts[k].name, t + 2) && !p->opts[k].value) {
					flag_ok[k] = true;
					have = true;
				}
			if (!have)
				return 0;
			continue;
		}
		if (w >= nwords)
			return 0;
		if (t[0] >= 'A' && t[0] <= 'Z') { /* a placeholder: the arg of its name */
			char name[32];
			size_t l = strlen(t);
			if (l >= sizeof(name))
				return 0;
			for (size_t k = 0; k <= l; k++)
				name[k] =
				    (char)(t[k] >= 'A' && t[k] <= 'Z' ? t[k] - 'A' + 'a' : t[k]);
			const struct ember_ctl_arg *a = find_arg(c, name);
			if (!a)
				return 0;
			if (set_arg(args, a, p->words[w]) < 0) {
				snprintf(msg, mlen, "%s: bad %s '%s'", c->name, t, p->words[w]);
				return 0; /* another form may take it */
			}
			w++;
			continue;
		}
		if (strcmp(t, p->words[w]))
			return 0;
		/* a literal word that is a value of an enum argument sets it */
		for (unsigned k = 0; k < EMBER_CTL_MAX_ARGS && c->args[k].name; k++)
			if (c->args[k].type == EMBER_CTL_ARG_ENUM &&
			    ember_ctl_value_allowed(c->args[k].values, t))
				json_object_object_add(args, c->args[k].name,
						       json_object_new_string(t));
		w++;
	}
	if (w != nwords)
		return 0;
	for (unsigned k = 0; k < p->nopts; k++) {
		if (flag_ok[k] && !find_arg(c, p->opts[k].name) && !p->opts[k].value)
			continue; /* a literal flag such as --full */
		const struct ember_ctl_arg *a = flag_ok[k] ? find_arg(c, p->opts[k].name) : NULL;
		if (!a)
			return 0;
		if ((a->type == EMBER_CTL_ARG_BOOL) != !p->opts[k].value ||
		    set_arg(args, a, p->opts[k].value ? p->opts[k].value : "") < 0) {
			snprintf(msg, mlen, "%s: bad --%s", c->name, p->opts[k].name);
			return 0;
		}
	}
	return 1;
}

/* Finds the command and builds its args; NULL when nothing matches. */
static const struct ember_ctl_command *resolve(struct parsed *p, unsigned nwords,
					       struct json_object **args, char *msg, size_t mlen)
{
	size_t n;
	const struct ember_ctl_command *t = ember_ctl_commands(&n);
	for (size_t i = 0; i < n; i++) {
		char form[128];
		for (const char *f = t[i].cli; (f = next_form(f, form, sizeof(form)));) {
			struct json_object *a = json_object_new_object();
			int r = match_form(&t[i], form, p, nwords, a, msg, mlen);
			if (r == 1) {
				*args = a;
				return &t[i];
			}
			json_object_put(a);
		}
	}
	return NULL;
}

/* Value-taking options: those of any command's non-boolean args, and the
 * global --socket/--timeout. */
static bool takes_value(const char *name)
{
	if (!strcmp(name, "socket") || !strcmp(name, "timeout"))
		return true;
	size_t n;
	const struct ember_ctl_command *t = ember_ctl_commands(&n);
	for (size_t i = 0; i < n; i++) {
		const struct ember_ctl_arg *a = find_arg(&t[i], name);
		if (a && a->type != EMBER_CTL_ARG_BOOL)
			return true;
	}
	return false;
}

static int parse(int argc, char **argv, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	p->timeout_ms = 5000;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (a[0] != '-' || a[1] != '-' || !a[2]) {
			if (p->nwords >= MAX_WORDS)
				return -1;
			p->words[p->nwords++] = a;
			continue;
		}
		char *name = a + 2, *eq = strchr(name, '=');
		const char *value = NULL;
		char nbuf[64];
		if (eq) {
			snprintf(nbuf, sizeof(nbuf), "%.*s", (int)(eq - name), name);
			value = eq + 1;
		} else {
			snprintf(nbuf, sizeof(nbuf), "%s", name);
			if (takes_value(nbuf)) {
				if (i + 1 >= argc)
					return -1;
				value = argv[++i];
			}
		}
		if (!strcmp(nbuf, "json"))
			p->json = true;
		else if (!strcmp(nbuf, "help"))
			p->help = true;
		else if (!strcmp(nbuf, "socket"))
			p->socket = value;
		else if (!strcmp(nbuf, "timeout"))
			p->timeout_ms = atoi(value);
		else {
			if (p->nopts >= MAX_WORDS)
				return -1;
			p->opts[p->nopts].name = strdup(nbuf);
			p->opts[p->nopts++].value = value;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ running */

static int connect_to(const char *sock, int timeout_ms, struct ember_ctl **c)
{
	char path[256];
	struct ember_error err = {0};
	int r = cli_socket_path(sock, false, path, sizeof(path));
	if (r < 0) {
		fprintf(stderr, "ember: %s: not a socket path or a VM name\n", sock);
		return CLI_EXIT_USAGE;
	}
	if (ember_ctl_connect(path, timeout_ms, c, &err) < 0) {
		fprintf(stderr, "ember: %s\n", err.msg);
		return CLI_EXIT_NOVM;
	}
	return 0;
}

static void print_result(const char *res, bool json)
{
	if (json) {
		printf("%s\n", res);
		return;
	}
	if (!strcmp(res, "{}"))
		return;
	struct json_object *o = json_tokener_parse(res);
	printf("%s\n", o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_SPACED)
			 : res);
	json_object_put(o);
}

/* `ember events`: registers, then prints each event as it comes, one JSON
 * line each, until the VM's server closes. */
static int run_events(struct ember_ctl *c, const char *args)
{
	struct ember_error err = {0};
	char *res = NULL;
	if (ember_ctl_call(c, "register-listener", args, &res, &err) < 0) {
		fprintf(stderr, "ember: %s\n", err.msg);
		return CLI_EXIT_REFUSED;
	}
	free(res);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		struct ember_ctl_event ev;
		int r = ember_ctl_next_event(c, -1, &ev, &err);
		if (r == -EPIPE)
			return 0; /* the VM ended */
		if (r < 0) {
			fprintf(stderr, "ember: %s\n", err.msg);
			return CLI_EXIT_REFUSED;
		}
		printf("%s\n", ev.json);
	}
}

/* `ember list`: each socket of the per-user directory, with its VM's state. */
static int run_list(bool json)
{
	char dir[256];
	if (ember_ctl_socket_dir(dir, sizeof(dir)) < 0)
		return CLI_EXIT_USAGE;
	DIR *d = opendir(dir);
	if (json)
		printf("[");
	unsigned n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".sock"))
			continue;
		char path[512], name[256];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(name, sizeof(name), "%.*s", (int)(l - 5), e->d_name);
		struct ember_ctl *c;
		struct ember_ctl_status s;
		struct ember_error err = {0};
		bool up = ember_ctl_connect(path, 1000, &c, &err) == 0;
		if (up) {
			up = ember_ctl_status(c, &s, &err) == 0;
			ember_ctl_close(c);
		}
		if (json)
			printf("%s{\"name\":\"%s\",\"socket\":\"%s\",\"state\":\"%s\"",
			       n ? "," : "", name, path,
			       up ? ember_vm_state_name(s.state) : "unreachable");
		else
			printf("%-20s %-12s", name,
			       up ? ember_vm_state_name(s.state) : "unreachable");
		if (up && json)
			printf(",\"pid\":%d,\"vcpus\":%u,\"mem_size\":%" PRIu64 "}", (int)s.pid,
			       s.vcpus, s.mem_size);
		else if (json)
			printf("}");
		else if (up)
			printf(" pid %-8d %u vCPU %" PRIu64 " MiB  %s\n", (int)s.pid, s.vcpus,
			       s.mem_size >> 20, path);
		else
			printf(" %s\n", path);
		n++;
	}
	if (d)
		closedir(d);
	if (json)
		printf("]\n");
	return 0;
}

bool cli_ctl_is_command(const char *word)
{
	if (!strcmp(word, "list"))
		return true;
	size_t n;
	const struct ember_ctl_command *t = ember_ctl_commands(&n);
	for (size_t i = 0; i < n; i++) {
		char form[128];
		for (const char *f = t[i].cli; (f = next_form(f, form, sizeof(form)));) {
			size_t l = strcspn(form, " ");
			if (strlen(word) == l && !strncmp(form, word, l))
				return true;
		}
	}
	return false;
}

int cli_ctl_main(int argc, char **argv)
{
	struct parsed p;
	if (parse(argc, argv, &p) < 0) {
		fprintf(stderr, "ember: bad arguments (ember help)\n");
		return CLI_EXIT_USAGE;
	}
	if (p.help) {
		cli_ctl_usage(stdout);
		return 0;
	}
	if (p.nwords && !strcmp(p.words[0], "list"))
		return run_list(p.json);
	/* the socket: --socket, else the last word */
	unsigned nwords = p.nwords;
	if (!p.socket) {
		if (nwords < 2) {
			fprintf(stderr,
				"ember: %s: which VM? (a SOCKET argument or --socket PATH)\n",
				p.nwords ? p.words[0] : "");
			return CLI_EXIT_USAGE;
		}
		p.socket = p.words[--nwords];
	}
	char msg[256] = "";
	struct json_object *args = NULL;
	const struct ember_ctl_command *cmd = resolve(&p, nwords, &args, msg, sizeof(msg));
	if (!cmd) {
		fprintf(stderr, "ember: %s\n", msg[0] ? msg : "no such command or wrong arguments");
		cli_ctl_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *args_json = json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN);
	struct ember_ctl *c;
	int r = connect_to(p.socket, p.timeout_ms, &c);
	if (r) {
		json_object_put(args);
		return r;
	}
	if (!strcmp(cmd->name, "register-listener")) {
		r = run_events(c, args_json);
	} else {
		char *res = NULL;
		struct ember_error err = {0};
		if (ember_ctl_call(c, cmd->name, args_json, &res, &err) < 0) {
			fprintf(stderr, "ember: %s\n", err.msg);
			r = err.code == -ETIMEDOUT || err.code == -EPIPE ? CLI_EXIT_NOVM
									 : CLI_EXIT_REFUSED;
		} else {
			print_result(res, p.json);
		}
		free(res);
	}
	ember_ctl_close(c);
	json_object_put(args);
	for (unsigned k = 0; k < p.nopts; k++)
		free((char *)p.opts[k].name);
	return r;
}
