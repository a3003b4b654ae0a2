/*
 * Transcript intake through the multimail plugin (plugin/multimail), by its
 * exported descriptor `aftercall_plugin` and nothing else: the plugin's
 * sources are linked in, init() gets a fake host (below), and the input is
 * the body of an event of type "transcript", as the /v1/transcripts route
 * hands it over (validate() in correlate.c is static: it is reached only
 * through on_event, as in production).
 *
 * The fake host keeps the key-value store in memory and holds the plugin to
 * the host's own contracts (src/dispatch.c): keys of 1 to 255 bytes, audit
 * details that are JSON objects, derived types under 128 bytes, outbox
 * requests with an http(s) URL, a 1..255-byte idempotency key, an upper-case
 * method and header lines without CR/LF. The real host refuses such a call
 * with -1; here it is a finding (FZ_CHECK), because it turns a request the
 * plugin accepted into a 500 or a redelivery that can never succeed.
 *
 * Each input is played in both orders of the flow:
 *   A. transcript; participant_joined (the transcript's participant) and
 *      room_finished for its room; then the send's delivery, MultiMail's
 *      approval webhook, the thread fetch, a history query, the timers;
 *   B. participant_joined and room_finished first, then the transcript, then
 *      the same follow-ups.
 * A transcript may be rejected (AC_REJECT, with a reason) or accepted
 * (AC_CONTINUE); AC_FAIL (or AC_STOP) is a finding, as is any callback
 * failing against a host that never fails, a crash or a leak.
 */
#include "fuzz.h"

#include <stdarg.h>

#include <jansson.h>

#include <aftercall/plugin.h>

extern const ac_plugin aftercall_plugin;
static const ac_plugin *P = &aftercall_plugin;

#define NOW_MS 1700000000000LL

/* ---- the fake host ---------------------------------------------------- */

struct kv {
	char *key, *val;
	size_t len;
	int64_t due;
};

struct req {
	char *tag, *idem;
};

struct ac_host {
	struct kv kv[512];
	size_t nkv;
	struct req *req; /* grows: one input may queue many sends */
	size_t nreq, capreq;
	int in_callback;
};

static struct ac_host H;
static void *state;

/* A broken host contract: the real host would answer -1. */
#define CONTRACT(cond, ...) FZ_CHECK(cond, "host contract: " __VA_ARGS__)

static int key_ok(const char *key)
{
	return key && *key && strlen(key) <= 255;
}

static struct kv *kv_find(const char *key)
{
	for (size_t i = 0; i < H.nkv; i++)
		if (!strcmp(H.kv[i].key, key))
			return &H.kv[i];
	return NULL;
}

static void f_log(ac_host *h, ac_log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	(void)h;
	(void)level;
}

static int64_t f_now(ac_host *h)
{
	return NOW_MS;
}

static int f_kv_put(ac_host *h, const char *key, const void *value, size_t len, int64_t due)
{
	CONTRACT(h->in_callback, "kv_put outside a callback");
	CONTRACT(key_ok(key), "kv_put key of %zu bytes: %.40s...", key ? strlen(key) : 0, key);
	CONTRACT(!len || value, "kv_put: len without value");
	struct kv *e = kv_find(key);
	if (!e) {
		FZ_CHECK(H.nkv < sizeof H.kv / sizeof *H.kv, "too many keys");
		e = &H.kv[H.nkv++];
		e->key = strdup(key);
	} else {
		free(e->val);
	}
	e->val = fz_dupz(value, len);
	e->len = len;
	e->due = due;
	return 0;
}

static int f_kv_get(ac_host *h, const char *key, char **value, size_t *len)
{
	CONTRACT(h->in_callback, "kv_get outside a callback");
	CONTRACT(key_ok(key), "kv_get key of %zu bytes: %.40s...", key ? strlen(key) : 0, key);
	struct kv *e = kv_find(key);
	if (!e)
		return 0;
	*value = fz_dupz(e->val, e->len);
	*len = e->len;
	return 1;
}

static int f_kv_del(ac_host *h, const char *key)
{
	CONTRACT(h->in_callback, "kv_del outside a callback");
	CONTRACT(key_ok(key), "kv_del key of %zu bytes: %.40s...", key ? strlen(key) : 0, key);
	struct kv *e = kv_find(key);
	if (e) {
		free(e->key);
		free(e->val);
		*e = H.kv[--H.nkv];
	}
	return 0;
}

static void is_object(const char *json, size_t len, const char *what)
{
	json_error_t err;
	json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
	CONTRACT(json_is_object(j), "%s is not a JSON object: %s", what, err.text);
	json_decref(j);
}

static int f_audit(ac_host *h, const char *kind, const char *subject, const char *detail)
{
	CONTRACT(h->in_callback, "audit outside a callback");
	CONTRACT(kind && *kind, "audit without a kind");
	if (detail)
		is_object(detail, strlen(detail), "audit detail");
	return 0;
}

static int f_emit(ac_host *h, const char *type, const char *json, size_t len)
{
	CONTRACT(h->in_callback, "emit outside a callback");
	CONTRACT(type && *type && strlen(type) < 128, "emit type");
	is_object(json, len, "emitted body");
	return 0;
}

/* The host renders NAME.md with the Markdown escaper; this one only checks
 * the context and gives back its parts: the subject from caller.name (any
 * text), cc and bcc from data.cc and data.bcc (fuzzed address lists), the
 * context as the body. Template "missing" does not exist. */
static int f_render(ac_host *h, const char *name, const char *ctx, size_t len, ac_rendered *out,
		    char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	CONTRACT(name && ctx, "render arguments");
	json_t *c = json_loadb(ctx, len, JSON_REJECT_DUPLICATES, NULL);
	CONTRACT(json_is_object(c), "render context is not a JSON object");
	if (!strcmp(name, "missing")) {
		json_decref(c);
		snprintf(err, errlen, "no template named %s in /templates", name);
		return -1;
	}
	const char *who = json_string_value(json_object_get(json_object_get(c, "caller"), "name"));
	const char *cc = json_string_value(json_object_get(json_object_get(c, "data"), "cc"));
	const char *bcc = json_string_value(json_object_get(json_object_get(c, "data"), "bcc"));
	size_t n = strlen(who ? who : "") + 16;
	out->subject = malloc(n);
	snprintf(out->subject, n, "Follow-up: %s", who ? who : "");
	out->cc = cc ? strdup(cc) : NULL;
	out->bcc = bcc ? strdup(bcc) : NULL;
	out->body = fz_dupz(ctx, len);
	out->body_len = len;
	json_decref(c);
	return 0;
}

static void f_render_free(ac_host *h, ac_rendered *out)
{
	free(out->subject);
	free(out->cc);
	free(out->bcc);
	free(out->body);
}

static int f_enqueue(ac_host *h, const ac_request *r)
{
	CONTRACT(h->in_callback, "outbox_enqueue outside a callback");
	const char *method = r->method ? r->method : "POST";
	CONTRACT(r->url && (!strncmp(r->url, "http://", 7) || !strncmp(r->url, "https://", 8)),
		 "outbox url %s", r->url);
	CONTRACT(r->idempotency_key && *r->idempotency_key && strlen(r->idempotency_key) <= 255,
		 "idempotency key");
	CONTRACT(*method && strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(method),
		 "method %s", method);
	CONTRACT(!r->body_len || r->body, "body_len without body");
	for (const char *const *p = r->headers; p && *p; p++)
		CONTRACT(strchr(*p, ':') && !strpbrk(*p, "\r\n"), "header line %s", *p);
	if (r->body_len)
		is_object(r->body, r->body_len, "request body");
	for (size_t i = 0; i < H.nreq; i++)
		if (!strcmp(H.req[i].idem, r->idempotency_key))
			return 0;
	if (H.nreq == H.capreq) {
		size_t cap = H.capreq ? 2 * H.capreq : 64;
		struct req *g = realloc(H.req, cap * sizeof *g);
		FZ_CHECK(g != NULL, "out of memory");
		H.req = g;
		H.capreq = cap;
	}
	H.req[H.nreq].tag = strdup(r->tag ? r->tag : "");
	H.req[H.nreq].idem = strdup(r->idempotency_key);
	H.nreq++;
	return 1;
}

static int f_template_require(ac_host *h, const char *name, char *err, size_t errlen)
{
	CONTRACT(!h->in_callback, "template_require outside init()");
	CONTRACT(name && *name, "template_require without a name");
	return 0;
}

static const ac_host_services svc = {
    .abi_major = AC_PLUGIN_ABI_MAJOR,
    .abi_minor = AC_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(ac_host_services),
    .log = f_log,
    .now_ms = f_now,
    .kv_put = f_kv_put,
    .kv_get = f_kv_get,
    .kv_del = f_kv_del,
    .audit = f_audit,
    .emit = f_emit,
    .host_free = free,
    .render = f_render,
    .render_free = f_render_free,
    .outbox_enqueue = f_enqueue,
    .template_require = f_template_require,
};

static void reset(void)
{
	for (size_t i = 0; i < H.nkv; i++) {
		free(H.kv[i].key);
		free(H.kv[i].val);
	}
	for (size_t i = 0; i < H.nreq; i++) {
		free(H.req[i].tag);
		free(H.req[i].idem);
	}
	free(H.req);
	memset(&H, 0, sizeof H);
}

static void cleanup(void) __attribute__((destructor));
static void cleanup(void)
{
	if (state)
		P->destroy(state);
	state = NULL;
	reset();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256] = "";
	const char *config =
	    "{\"api_key\":\"mm_live_x\",\"mailbox_id\":\"mbx_1\","
	    "\"api_url\":\"http://127.0.0.1:9/\",\"on_missing_transcript\":\"send\","
	    "\"sender\":{\"name\":\"Grace\",\"company\":\"Acme Dental\"}}";
	FZ_CHECK(P->init(&svc, &H, config, &state, err, sizeof err) == 0, "init: %s", err);
	return 0;
}

/* ---- playing the flow ----------------------------------------------- */

static ac_verdict event(const char *type, const char *body, size_t len)
{
	ac_event ev = {
	    .route = "/fuzz",
	    .type = type,
	    .id = "EV_fuzz",
	    .body = body,
	    .body_len = len,
	    .received_ms = NOW_MS,
	    .request_id = "req-fuzz",
	};
	char err[256];
	memset(err, 0, sizeof err);
	H.in_callback = 1;
	ac_verdict v = P->on_event(state, &ev, err, sizeof err);
	H.in_callback = 0;
	FZ_CHECK(v == AC_CONTINUE || v == AC_REJECT, "%s: verdict %d: %.*s", type, (int)v,
		 (int)sizeof err, err);
	if (v == AC_REJECT)
		FZ_CHECK(memchr(err, '\0', sizeof err) && err[0],
			 "%s: a rejection without a reason", type);
	return v;
}

static void event_json(const char *type, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return;
	ac_verdict v = event(type, s, strlen(s));
	FZ_CHECK(v == AC_CONTINUE, "%s rejected", type);
	free(s);
}

/* LiveKit's events for the transcript's room and participant. */
static void livekit(json_t *t)
{
	const char *room = json_string_value(json_object_get(t, "room"));
	const char *sid = json_string_value(json_object_get(t, "room_sid"));
	const char *who = json_string_value(json_object_get(t, "participant"));
	if (!room)
		return;
	if (!sid)
		sid = "RM_fuzz";
	if (who)
		event_json("participant_joined",
			   json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s, s:{s:s}}}", "event",
				     "participant_joined", "room", "sid", sid, "name", room,
				     "participant", "identity", who, "name", who, "attributes",
				     "email", "caller@example.com"));
	event_json("room_finished",
		   json_pack("{s:s, s:{s:s, s:s, s:s}}", "event", "room_finished", "room", "sid",
			     sid, "name", room, "metadata", "{\"email\":\"room@example.com\"}"));
}

/* What comes back: the sends' answers, MultiMail's webhooks, the thread
 * fetches, a history query per recipient, the timers. */
static void follow_ups(void)
{
	for (size_t i = 0; i < H.nreq; i++) {
		if (strncmp(H.req[i].tag, "send:", 5))
			continue;
		char body[128];
		snprintf(body, sizeof body,
			 "{\"id\":\"em_%zu\",\"thread_id\":\"thr_%zu\",\"status\":\"pending\"}", i,
			 i);
		ac_delivery d = {.tag = H.req[i].tag,
				 .idempotency_key = H.req[i].idem,
				 .status = 200,
				 .body = body,
				 .body_len = strlen(body),
				 .attempts = 1,
				 .ok = 1,
				 .error = ""};
		H.in_callback = 1;
		int rc = P->on_delivery(state, &d);
		H.in_callback = 0;
		FZ_CHECK(rc == 0, "on_delivery %s failed", H.req[i].tag);
		snprintf(body, sizeof body,
			 "{\"event\":\"oversight.approved\",\"data\":{\"email_id\":\"em_%zu\","
			 "\"thread_id\":\"thr_%zu\"}}",
			 i, i);
		event("oversight.approved", body, strlen(body));
	}
	for (size_t i = 0; i < H.nreq; i++) {
		if (strncmp(H.req[i].tag, "thread:", 7))
			continue;
		static const char thread[] = "{\"id\":\"thr\",\"subject\":\"s\",\"messages\":[]}";
		ac_delivery d = {.tag = H.req[i].tag,
				 .idempotency_key = H.req[i].idem,
				 .status = 200,
				 .body = thread,
				 .body_len = sizeof thread - 1,
				 .attempts = 1,
				 .ok = 1,
				 .error = ""};
		H.in_callback = 1;
		int rc = P->on_delivery(state, &d);
		H.in_callback = 0;
		FZ_CHECK(rc == 0, "on_delivery %s failed", H.req[i].tag);
	}
	/* The history of every contact the plugin knows. */
	for (size_t i = 0; i < H.nkv; i++) {
		if (strncmp(H.kv[i].key, "c:", 2))
			continue;
		ac_query q = {.route = "/v1/contacts/{email}/history",
			      .param = H.kv[i].key + 2,
			      .request_id = "req-q"};
		ac_response resp = {0};
		H.in_callback = 1;
		int rc = P->on_query(state, &q, &resp);
		H.in_callback = 0;
		FZ_CHECK(rc == 0 && resp.status == 200, "history of %s: %d %d", q.param, rc,
			 resp.status);
		free(resp.body);
	}
	/* Every timer falls due, as the dispatcher fires them: the key is
	 * deleted after the call unless the callback put it again. Three
	 * passes over the timers set at the start of each. */
	for (int pass = 0; pass < 3; pass++) {
		char *due[64];
		size_t n = 0;
		for (size_t i = 0; i < H.nkv && n < 64; i++)
			if (H.kv[i].due > 0)
				due[n++] = strdup(H.kv[i].key);
		for (size_t k = 0; k < n; k++) {
			struct kv *e = kv_find(due[k]);
			if (e && e->due > 0) {
				char *val = fz_dupz(e->val, e->len);
				size_t len = e->len;
				int64_t when = e->due;
				H.in_callback = 1;
				int rc = P->on_timer(state, due[k], val, len);
				FZ_CHECK(rc == 0, "on_timer %s failed", due[k]);
				e = kv_find(due[k]);
				if (e && e->due == when)
					f_kv_del(&H, due[k]);
				H.in_callback = 0;
				free(val);
			}
			free(due[k]);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* ev->body: exactly the bytes received, not terminated. */
	char *body = malloc(size ? size : 1);
	if (size)
		memcpy(body, data, size);
	json_t *t = json_loadb(body, size, 0, NULL);

	/* A: the transcript first. */
	reset();
	ac_verdict v = event("transcript", body, size);
	if (v == AC_CONTINUE) {
		FZ_CHECK(json_is_object(t), "a transcript that is not an object was accepted");
		livekit(t);
		follow_ups();
	}

	/* B: the room's end first. */
	if (v == AC_CONTINUE) {
		reset();
		livekit(t);
		event("transcript", body, size);
		follow_ups();
	}
	reset();
	json_decref(t);
	free(body);
	return 0;
}
