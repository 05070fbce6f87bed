/* tests/unit/ctl_proto.c - the control protocol's decoder and encoder (ctl/proto.c), the command table, and docs/PROTOCOL.md checked against it. */
#include "../lib/test.h"

#include "../../ctl/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef EMBER_TEST_SRCDIR
#define EMBER_TEST_SRCDIR "."
#endif

/* Decodes s; returns the errno and the code in *code. */
static int dec(const char *s, struct ctl_msg *m, const char **code)
{
	char why[256];
	int r = ctl_decode(s, strlen(s), m, code, why, sizeof(why));
	if (r < 0)
		TEST_LOG("%s -> %s: %s", s, *code, why);
	return r;
}

TEST(ctl_proto_decodes_hello_and_requests)
{
	struct ctl_msg m;
	const char *code;
	REQUIRE_OK(dec("{\"hello\":{\"protocol\":1,\"client\":\"x\"}}", &m, &code));
	CHECK_EQ(m.kind, CTL_MSG_HELLO);
	CHECK_EQ(m.protocol, 1);
	ctl_msg_fini(&m);

	REQUIRE_OK(dec("{\"id\":7,\"request\":\"gpe\",\"args\":{\"n\":3}}", &m, &code));
	CHECK_EQ(m.kind, CTL_MSG_REQUEST);
	CHECK_EQ(m.id, 7);
	REQUIRE(m.cmd != NULL);
	CHECK(!strcmp(m.cmd->name, "gpe"));
	struct json_object *v;
	REQUIRE(json_object_object_get_ex(m.args, "n", &v));
	CHECK_EQ(json_object_get_int(v), 3);
	ctl_msg_fini(&m);

	/* crosvm's name works too; args may be absent (then {}) */
	REQUIRE_OK(dec(" {\"id\":0,\"request\":\"SuspendVcpus\"}\n", &m, &code));
	CHECK(!strcmp(m.cmd->name, "suspend-vcpus"));
	CHECK(json_object_is_type(m.args, json_type_object));
	ctl_msg_fini(&m);
}

TEST(ctl_proto_refuses_malformed_messages_with_their_codes)
{
	static const struct {
		const char *msg, *code;
		int err;
		bool has_id;
	} cases[] = {
	    {"garbage", "bad-json", -EBADMSG, false},
	    {"{\"id\":1,\"request\":\"status\"", "bad-json", -EBADMSG, false}, /* truncated */
	    {"{\"id\":1} {}", "bad-json", -EBADMSG, false},		       /* two values */
	    {"[1,2]", "bad-message", -EPROTO, false},
	    {"{\"request\":\"status\"}", "bad-message", -EPROTO, false},
	    {"{\"id\":-1,\"request\":\"status\"}", "bad-message", -EPROTO, false},
	    {"{\"id\":1.5,\"request\":\"status\"}", "bad-message", -EPROTO, false},
	    {"{\"id\":\"1\",\"request\":\"status\"}", "bad-message", -EPROTO, false},
	    {"{\"id\":9007199254740992,\"request\":\"status\"}", "bad-message", -EPROTO, false},
	    {"{\"id\":1,\"request\":5}", "bad-message", -EPROTO, true},
	    {"{\"id\":1,\"request\":\"status\",\"extra\":1}", "bad-message", -EPROTO, true},
	    {"{\"id\":1,\"request\":\"no-such\"}", "unknown-request", -EOPNOTSUPP, true},
	    {"{\"id\":1,\"request\":\"sta\\u0000tus\"}", "unknown-request", -EOPNOTSUPP, true},
	    {"{\"id\":2,\"request\":\"gpe\"}", "bad-args", -EINVAL, true},
	    {"{\"id\":2,\"request\":\"gpe\",\"args\":{\"n\":\"3\"}}", "bad-args", -EINVAL, true},
	    {"{\"id\":2,\"request\":\"gpe\",\"args\":{\"n\":-3}}", "bad-args", -EINVAL, true},
	    {"{\"id\":2,\"request\":\"gpe\",\"args\":{\"n\":256}}", "bad-args", -EINVAL, true},
	    {"{\"id\":2,\"request\":\"gpe\",\"args\":{\"n\":3,\"m\":1}}", "bad-args", -EINVAL,
	     true},
	    {"{\"id\":2,\"request\":\"gpe\",\"args\":[3]}", "bad-args", -EINVAL, true},
	    {"{\"id\":2,\"request\":\"swap\",\"args\":{\"command\":\"fly\"}}", "bad-args", -EINVAL,
	     true},
	    {"{\"id\":2,\"request\":\"register-listener\",\"args\":{\"events\":[\"state\",1]}}",
	     "bad-args", -EINVAL, true},
	    {"{\"id\":2,\"request\":\"snapshot\",\"args\":{\"command\":\"take\",\"path\":1}}",
	     "bad-args", -EINVAL, true},
	    {"{\"id\":2,\"request\":\"snapshot\",\"args\":{\"command\":\"take\",\"path\":"
	     "\"a\\u0000b\"}}",
	     "bad-args", -EINVAL, true},
	    {"{\"hello\":{\"protocol\":\"1\"}}", "bad-message", -EPROTO, false},
	    {"{\"hello\":{\"protocol\":1},\"id\":1}", "bad-message", -EPROTO, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ctl_msg m;
		const char *code = NULL;
		int r = dec(cases[i].msg, &m, &code);
		if (r != cases[i].err || strcmp(code, cases[i].code) || m.has_id != cases[i].has_id)
			test_fail_at(__FILE__, __LINE__, false, "%s: %d %s (has_id %d), want %d %s",
				     cases[i].msg, r, code, m.has_id, cases[i].err, cases[i].code);
		ctl_msg_fini(&m);
	}
}

TEST(ctl_proto_bounds_depth_size_and_nul)
{
	struct ctl_msg m;
	const char *code;
	char why[128];
	/* 17 levels of nesting: refused (the decoder's depth limit is 16) */
	char deep[128] = "{\"id\":1,\"request\":\"status\",\"args\":";
	size_t n = strlen(deep);
	for (int i = 0; i < 17; i++)
		deep[n++] = '[';
	for (int i = 0; i < 17; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = 0;
	CHECK_ERR(ctl_decode(deep, n, &m, &code, why, sizeof(why)), -EBADMSG);
	ctl_msg_fini(&m);
	/* a NUL byte inside the datagram */
	const char nul[] = "{\"id\":1,\0\"request\":\"status\"}";
	CHECK_ERR(ctl_decode(nul, sizeof(nul) - 1, &m, &code, why, sizeof(why)), -EBADMSG);
	ctl_msg_fini(&m);
	/* over the maximum */
	size_t big = EMBER_CTL_MAX_MESSAGE + 1;
	char *b = malloc(big);
	REQUIRE(b);
	memset(b, ' ', big);
	CHECK_ERR(ctl_decode(b, big, &m, &code, why, sizeof(why)), -EMSGSIZE);
	CHECK(!strcmp(code, "too-large"));
	ctl_msg_fini(&m);
	free(b);
}

TEST(ctl_proto_encodes_responses)
{
	struct json_object *res = json_object_new_object();
	json_object_object_add(res, "x", json_object_new_int(5));
	struct json_object *o = ctl_response_ok(42, res);
	size_t len;
	char *s = ctl_encode(o, &len);
	json_object_put(o);
	REQUIRE(s);
	CHECK(!strcmp(s, "{\"id\":42,\"ok\":true,\"result\":{\"x\":5}}"));
	CHECK_EQ(len, strlen(s));
	free(s);
	o = ctl_response_error(-1, "bad-json", "not \"JSON\"", -EBADMSG);
	s = ctl_encode(o, &len);
	json_object_put(o);
	REQUIRE(s);
	char want[160];
	snprintf(want, sizeof(want),
		 "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad-json\",\"message\":\"not "
		 "\\\"JSON\\\"\",\"errno\":%d}}",
		 -EBADMSG);
	CHECK(!strcmp(s, want));
	free(s);
	/* errno <-> code */
	CHECK(!strcmp(ctl_errno_code(-ENODEV), "no-device"));
	CHECK(!strcmp(ctl_errno_code(-ENOSYS), "not-implemented"));
	CHECK(!strcmp(ctl_errno_code(-EIO), "failed"));
	CHECK_EQ(ctl_code_errno("no-device"), -ENODEV);
	CHECK_EQ(ctl_code_errno("permission"), -EPERM);
	CHECK_EQ(ctl_code_errno("what"), -EPROTO);
}

bool ctl_server_has_handler(const char *name); /* ctl/server.c */

TEST(ctl_table_names_every_crosvm_request_and_each_has_a_handler)
{
	static const char *const crosvm[] = {
	    "Exit",	  "Powerbtn",	       "Sleepbtn",	   "Rtc",
	    "Gpe",	  "SuspendVcpus",      "ResumeVcpus",	   "SuspendVm",
	    "ResumeVm",	  "BalloonCommand",    "DiskCommand",	   "Snapshot",
	    "Swap",	  "HotPlugNetCommand", "RegisterListener", "UnregisterListener",
	    "Unregister", "VcpuPidTid",	       "MakeRT",	   "PciPme",
	    "UsbCommand", "GpuCommand",	       "BatCommand",	   "HotPlugVfioCommand",
	};
	CHECK_EQ(sizeof(crosvm) / sizeof(crosvm[0]), 24);
	for (size_t i = 0; i < sizeof(crosvm) / sizeof(crosvm[0]); i++)
		if (!ember_ctl_command_find(crosvm[i]))
			TEST_FAIL("crosvm's %s is not in the table", crosvm[i]);
	size_t n;
	const struct ember_ctl_command *t = ember_ctl_commands(&n);
	CHECK_EQ(n, 26); /* the 24, status and restore */
	for (size_t i = 0; i < n; i++) {
		if (!ctl_server_has_handler(t[i].name))
			TEST_FAIL("%s has no handler in ctl/server.c", t[i].name);
		CHECK(t[i].doc && t[i].example && t[i].result);
		/* every example is a valid request of its command */
		char msg[512];
		snprintf(msg, sizeof(msg), "{\"id\":1,\"request\":\"%s\",\"args\":%s}", t[i].name,
			 t[i].example);
		struct ctl_msg m;
		const char *code;
		if (dec(msg, &m, &code) < 0)
			TEST_FAIL("the example of %s is refused (%s)", t[i].name, code);
		ctl_msg_fini(&m);
		for (size_t k = 0; k < i; k++)
			CHECK(strcmp(t[i].name, t[k].name));
	}
	/* the codes named in the table exist */
	size_t nc;
	const struct ember_ctl_error_code *codes = ember_ctl_error_codes(&nc);
	CHECK(nc >= 20);
	for (size_t i = 0; i < nc; i++)
		CHECK(codes[i].err < 0 && codes[i].doc);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	if (b)
		b[n] = 0;
	fclose(f);
	return b;
}

#define BEGIN_MARK "<!-- requests: generated from ctl/proto.c's table (make protocol-doc) -->\n"
#define END_MARK   "<!-- end of requests -->\n"

TEST(ctl_protocol_md_matches_the_table)
{
	char *doc = slurp(EMBER_TEST_SRCDIR "/docs/PROTOCOL.md");
	REQUIRE(doc != NULL);
	char *b = strstr(doc, BEGIN_MARK), *e = b ? strstr(b, END_MARK) : NULL;
	REQUIRE(b && e);
	b += strlen(BEGIN_MARK);
	int n = ctl_format_requests_md(NULL, 0);
	REQUIRE(n > 0);
	char *want = malloc((size_t)n + 1);
	REQUIRE(want);
	ctl_format_requests_md(want, (size_t)n + 1);
	if ((size_t)(e - b) != (size_t)n || memcmp(b, want, (size_t)n))
		TEST_FAIL("docs/PROTOCOL.md's request section differs from the table: run "
			  "`make protocol-doc`");
	free(want);
	free(doc);
}
