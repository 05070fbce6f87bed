/* fuzz/fuzz_ctl.c - libFuzzer target: the input is one control-socket datagram, decoded and checked as the server does (ctl/proto.c), then its response encoded. */
#include "../ctl/proto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool known_code(const char *code)
{
	size_t n;
	const struct ember_ctl_error_code *c = ember_ctl_error_codes(&n);
	for (size_t i = 0; code && i < n; i++)
		if (!strcmp(c[i].name, code))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_msg m;
	const char *code = NULL;
	char why[256];
	int r = ctl_decode((const char *)data, size, &m, &code, why, sizeof(why));
	/* the decoder's contract: an error has a code the protocol documents
	 * and a one-line reason; a success has a command and object args */
	if (r < 0) {
		if (!known_code(code) || strchr(why, '\n'))
			abort();
	} else if (m.kind == CTL_MSG_REQUEST) {
		if (!m.cmd || !json_object_is_type(m.args, json_type_object))
			abort();
		if (ctl_args_check(m.cmd, m.args, why, sizeof(why)) != 0)
			abort(); /* checked once, checked again: the same answer */
	}
	struct json_object *resp = r < 0 ? ctl_response_error(m.has_id ? m.id : -1, code, why, r)
					 : ctl_response_ok(m.has_id ? m.id : -1, NULL);
	size_t len;
	char *s = resp ? ctl_encode(resp, &len) : NULL;
	json_object_put(resp);
	if (resp && (!s || len > EMBER_CTL_MAX_MESSAGE))
		abort(); /* every response fits in a datagram */
	free(s);
	ctl_msg_fini(&m);
	return 0;
}
