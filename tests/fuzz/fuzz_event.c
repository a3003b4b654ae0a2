/*
 * Event JSON as the HTTP layer handles it (src/http.c): finish_upload()
 * hands the verified body to event_classify() (src/event.c), which parses
 * it with the host's strict JSON parser (src/json.c, CJ_STRICT) and takes
 * the type (the route's event_type, or the body's `event`, `type` or
 * `event_type`) and the dedupe id (`id`, or "sha256:" and the hex SHA-256
 * of the raw body) into struct job; a refusal is 400 with its reason, and
 * the answers are built with sb_json_str.
 *
 * Each input is classified twice: as on a LiveKit route (type from the
 * body) and as on a route with `event_type: transcript`. Invariants: the
 * parser accepts exactly what jansson's json_loadb(JSON_REJECT_DUPLICATES)
 * accepts, and finds the same type and id in it; the strings written into
 * the job are terminated and fit; the dedupe id is the body's `id` or a
 * 71-byte "sha256:" hash; every answer and refusal body the layer would
 * send is valid JSON.
 */
#include "fuzz.h"

#include <jansson.h>

#include "crypto.h"
#include "dispatch.h"
#include "event.h"
#include "strbuf.h"

/* A body the layer sends must parse back. */
static void check_json(const struct strbuf *b, const char *what)
{
	FZ_CHECK(!b->oom && b->data, "%s: out of memory", what);
	json_error_t e;
	json_t *j = json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &e);
	FZ_CHECK(json_is_object(j), "%s is not a JSON object: %s: %s", what, e.text, b->data);
	json_decref(j);
}

/* refuse(): {"error": why}. */
static void refusal(const char *why)
{
	struct strbuf b;
	sb_init(&b);
	sb_puts(&b, "{\"error\":");
	sb_json_str(&b, why, strlen(why));
	sb_putc(&b, '}');
	check_json(&b, "refusal");
	sb_free(&b);
}

/* What jansson finds as the type, as classify reads it; NULL for none. */
static const char *jansson_type(json_t *root, const char *route_type)
{
	if (route_type)
		return route_type;
	json_t *t = json_object_get(root, "event");
	if (!t)
		t = json_object_get(root, "type");
	if (!t)
		t = json_object_get(root, "event_type");
	return json_string_value(t);
}

static void one_route(const char *route_type, const char *body, size_t len, json_t *root)
{
	struct job job;
	memset(&job, 0xA5, sizeof job); /* no help from zeroed memory */
	char why[200];
	unsigned st = event_classify(&job, route_type, body, len, why, sizeof why);
	if (st) {
		FZ_CHECK(st == 400, "status %u", st);
		FZ_CHECK(memchr(why, '\0', sizeof why), "reason not terminated");
		refusal(why);
		/* Refused: jansson refuses it too, or finds no usable type. Not
		 * compared: a raw NUL byte between tokens, which jansson 2.14
		 * passes over ({"a":1<NUL>} parses) and RFC 8259 does not allow. */
		const char *t = root ? jansson_type(root, route_type) : NULL;
		FZ_CHECK(!root || !json_is_object(root) || !t || !*t ||
				 strlen(t) >= sizeof job.type || memchr(body, '\0', len),
			 "refused what jansson accepts (%s): %.*s", why, (int)len, body);
		return;
	}
	FZ_CHECK(root, "accepted what jansson refuses: %.*s", (int)len, body);
	FZ_CHECK(memchr(job.type, '\0', sizeof job.type), "type not terminated");
	FZ_CHECK(memchr(job.dedupe, '\0', sizeof job.dedupe), "dedupe not terminated");
	FZ_CHECK(job.type[0], "empty type");
	FZ_CHECK(!strcmp(job.type, jansson_type(root, route_type)), "type %s", job.type);
	const char *id = json_string_value(json_object_get(root, "id"));
	if (!id || !*id || strlen(id) >= sizeof job.dedupe)
		FZ_CHECK(strlen(job.dedupe) == 7 + 2 * SHA256_LEN &&
			     !strncmp(job.dedupe, "sha256:", 7),
			 "hash id %s", job.dedupe);
	else
		FZ_CHECK(!strcmp(job.dedupe, id), "id %s", job.dedupe);
	/* answer_job(): {"status":"accepted","id":<dedupe>}. */
	struct strbuf b;
	sb_init(&b);
	sb_printf(&b, "{\"status\":\"%s\",\"id\":", "accepted");
	sb_json_str(&b, job.dedupe, strlen(job.dedupe));
	sb_putc(&b, '}');
	check_json(&b, "answer");
	sb_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* c->body: exactly the bytes received, in a buffer of their size. */
	char *body = malloc(size ? size : 1);
	if (size)
		memcpy(body, data, size);
	json_t *root = json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL);
	one_route(NULL, body, size, root);
	one_route("transcript", body, size, root);
	json_decref(root);
	free(body);
	return 0;
}
