/* ctl/proto.h - the control protocol's messages: decoding and checking against the command table, encoding, error codes. */
#ifndef EMBER_CTL_PROTO_H
#define EMBER_CTL_PROTO_H

#include <ember/ctl.h>

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this is refused by the decoder. */
#define CTL_MAX_DEPTH 16

enum ctl_msg_kind { CTL_MSG_HELLO, CTL_MSG_REQUEST };

/* A decoded client message. root owns everything; args points into it. */
struct ctl_msg {
	enum ctl_msg_kind kind;
	struct json_object *root;
	int64_t id;  /* request: its id (0..2^53) */
	bool has_id; /* the id was readable (an error response can name it) */
	const struct ember_ctl_command *cmd;
	struct json_object *args; /* request: an object (empty when absent) */
	int64_t protocol;	  /* hello: the version asked for */
};

/*
 * Decodes one datagram: JSON (json-c, depth-limited, the whole buffer one
 * value), then the message's shape: a hello {"hello":{"protocol":N,...}}
 * or a request {"id":N,"request":NAME,"args":{...}} whose NAME is in the
 * table and whose args match its schema (no unknown key, each of its type
 * and bound, every required one). On failure returns a negative errno,
 * *code the protocol's error code ("bad-json", "bad-message",
 * "unknown-request", "bad-args") and why one line; m->id/has_id are set
 * when the id could be read. m must be released with ctl_msg_fini (also
 * after a failure).
 */
int ctl_decode(const char *buf, size_t len, struct ctl_msg *m, const char **code, char *why,
	       size_t whylen);
void ctl_msg_fini(struct ctl_msg *m);

/* Checks args (an object) against cmd's schema; 0 or -EINVAL with why. */
int ctl_args_check(const struct ember_ctl_command *cmd, struct json_object *args, char *why,
		   size_t whylen);

/* The protocol error code for a negative errno ("no-device" for -ENODEV,
 * ... "failed" for the rest), and the errno of a code (-EPROTO unknown). */
const char *ctl_errno_code(int err);
int ctl_code_errno(const char *code);

/* Serialises obj (compact) into a malloc'd string; *len its length.
 * NULL on -ENOMEM or when it would exceed EMBER_CTL_MAX_MESSAGE. */
char *ctl_encode(struct json_object *obj, size_t *len);

/* The responses: {"id":id,"ok":true,"result":result} (takes result, NULL:
 * {}) and {"id":id,"ok":false,"error":{"code","message","errno"}} (id < 0:
 * "id":null). Return a new object, NULL on -ENOMEM. */
struct json_object *ctl_response_ok(int64_t id, struct json_object *result);
struct json_object *ctl_response_error(int64_t id, const char *code, const char *message, int err);
/* The hello of side ("server" or "client"). */
struct json_object *ctl_hello(const char *side);

/* The JSON names of the balloon's guest statistics (enum
 * ember_balloon_guest_stat order). */
extern const char *const ctl_balloon_guest_names[EMBER_BALLOON_GUEST_STATS];

/* The request section of docs/PROTOCOL.md, generated from the table
 * (markdown), snprintf style. */
int ctl_format_requests_md(char *buf, size_t len);

#endif /* EMBER_CTL_PROTO_H */
