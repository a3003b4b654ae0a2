/*
 * Event JSON as the HTTP layer handles it (src/http.c): finish_upload()
 * parses the verified body with json_loadb(JSON_REJECT_DUPLICATES), a
 * parse error becomes the 400 text "body is not valid JSON: <jansson's
 * text>", and classify() takes the type (the route's event_type, or the
 * body's `event`, `type` or `event_type`) and the dedupe id (`id`, or
 * "sha256:" and the hex SHA-256 of the raw body) into struct job; the
 * answers are built with sb_json_str.
 *
 * classify() is static in http.c and tied to struct conn, so the few lines
 * are replicated below (classify_copy) with the same buffers (struct job
 * from dispatch.h) and the same checks. Keep them in step with http.c, or
 * better, move classify into a function of its own in src/ and call it
 * from here (see README).
 *
 * Each input is classified twice: as on a LiveKit route (type from the
 * body) and as on a route with `event_type: transcript`. Invariants: the
 * strings written into the job are terminated and fit; the dedupe id is
 * the body's `id` or a 71-byte "sha256:" hash; every answer and refusal
 * body the layer would send is valid JSON.
 */
#include "fuzz.h"

#include <jansson.h>

#include "crypto.h"
#include "dispatch.h"
#include "strbuf.h"

/* http.c's classify(), with c->job and c->route->event_type as arguments
 * and c->body as body/len. 0, or 400 with job->result set. */
static unsigned classify_copy(struct job *job, const char *route_type, const char *body, size_t len,
			      json_t *root)
{
	if (!json_is_object(root)) {
		job->result = "body is not a JSON object";
		return 400;
	}
	const char *type = route_type;
	if (!type) {
		json_t *t = json_object_get(root, "event");
		if (!t)
			t = json_object_get(root, "type");
		if (!t)
			t = json_object_get(root, "event_type");
		type = json_string_value(t);
	}
	if (!type || !*type || strlen(type) >= sizeof job->type) {
		job->result = "no event field";
		return 400;
	}
	strcpy(job->type, type);
	const char *id = json_string_value(json_object_get(root, "id"));
	if (id && *id && strlen(id) < sizeof job->dedupe) {
		strcpy(job->dedupe, id);
	} else {
		unsigned char h[SHA256_LEN];
		sha256(body, len, h);
		memcpy(job->dedupe, "sha256:", 7);
		hex_encode(h, SHA256_LEN, job->dedupe + 7);
	}
	return 0;
}

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

static void one_route(const char *route_type, const char *body, size_t len, json_t *root)
{
	struct job job;
	memset(&job, 0xA5, sizeof job); /* no help from zeroed memory */
	job.result = NULL;
	unsigned st = classify_copy(&job, route_type, body, len, root);
	if (st) {
		FZ_CHECK(st == 400 && job.result, "status %u", st);
		refusal(job.result);
		return;
	}
	FZ_CHECK(memchr(job.type, '\0', sizeof job.type), "type not terminated");
	FZ_CHECK(memchr(job.dedupe, '\0', sizeof job.dedupe), "dedupe not terminated");
	FZ_CHECK(job.type[0], "empty type");
	if (route_type)
		FZ_CHECK(!strcmp(job.type, route_type), "type %s", job.type);
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
	json_error_t jerr;
	json_t *root = json_loadb(body, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		char why[200];
		snprintf(why, sizeof why, "body is not valid JSON: %s", jerr.text);
		refusal(why);
	} else {
		one_route(NULL, body, size, root);
		one_route("transcript", body, size, root);
		json_decref(root);
	}
	free(body);
	return 0;
}
