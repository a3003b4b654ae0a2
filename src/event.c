/*
 * The event's type and dedupe id, read from a verified body with the
 * host's JSON parser (src/json.h): one parse into one arena, no tree of
 * separately allocated values.
 */
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "event.h"
#include "json.h"

unsigned event_classify(struct job *job, const char *route_type, const char *body, size_t len,
			char *err, size_t errlen)
{
	struct cj_doc *doc = cj_parse(body, len, CJ_STRICT, "body", err, errlen);
	if (!doc)
		return 400;
	const struct cj_value *root = cj_root(doc);
	unsigned st = 400;
	if (root->type != CJ_OBJECT) {
		snprintf(err, errlen, "body is not a JSON object");
		goto out;
	}
	const char *type = route_type;
	size_t n = type ? strlen(type) : 0;
	if (!type) {
		/* LiveKit says `event`; other senders `type` or `event_type`. */
		const struct cj_value *t = cj_object_get(root, "event", 5);
		if (!t)
			t = cj_object_get(root, "type", 4);
		if (!t)
			t = cj_object_get(root, "event_type", 10);
		if (t && t->type == CJ_STRING) {
			type = t->u.s;
			n = t->n;
		}
	}
	if (!type || !n || n >= sizeof job->type) {
		snprintf(err, errlen, "no event field");
		goto out;
	}
	memcpy(job->type, type, n + 1);
	/* Deduplicate on the sender's id; a body without one is its own id. */
	const char *id = cj_get_string(root, "id", &n);
	if (id && n && n < sizeof job->dedupe) {
		memcpy(job->dedupe, id, n + 1);
	} else {
		unsigned char h[SHA256_LEN];
		sha256(body, len, h);
		memcpy(job->dedupe, "sha256:", 7);
		hex_encode(h, SHA256_LEN, job->dedupe + 7);
	}
	st = 0;
out:
	cj_free(doc);
	return st;
}
