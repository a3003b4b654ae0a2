/*
 * The multimail plugin: LiveKit session ends and agent transcripts in,
 * gated follow-up emails through MultiMail out, MultiMail's webhooks back.
 *
 * Every callback runs on the host's dispatcher thread inside its batch
 * transaction, so the plugin keeps all of its state in the host's
 * key-value store and needs no locks: a crash at any point leaves either
 * the whole step or none of it.
 *
 * Keys:  s:<session>  the session (room sid, or name:<room> until the sid
 *                     is known): participants, transcript, ended, done
 *        n:<room>     the latest room sid seen under a room name
 *        w:/g:<sess>  timers: transcript_wait, finish_grace
 *        e:<hash>     one email (session, recipient, template)
 *        m:<email id> and t:<thread id>  -> the e: key
 *        c:<contact>  the contact's thread ids, most recent first
 *        d:<thread>   MultiMail's thread detail, as last fetched
 */
/* SHA256_Init() and friends: deprecated by OpenSSL 3 in favour of EVP, but
 * they need no allocation that could fail, nor the provider machinery. */
#define OPENSSL_API_COMPAT 0x10100000L

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "api.h"
#include "mm.h"

/* ---- state helpers ------------------------------------------------------ */

json_t *mm_load(struct mm *m, const char *key)
{
	char *v = NULL;
	size_t n = 0;
	if (m->svc->kv_get(m->host, key, &v, &n) != 1)
		return NULL;
	json_t *j = json_loadb(v, n, 0, NULL);
	m->svc->host_free(v);
	return j;
}

int mm_save(struct mm *m, const char *key, json_t *v, int64_t due_ms)
{
	char *s = json_dumps(v, JSON_COMPACT);
	if (!s)
		return -1;
	int rc = m->svc->kv_put(m->host, key, s, strlen(s), due_ms);
	free(s);
	return rc;
}

int mm_del(struct mm *m, const char *key)
{
	return m->svc->kv_del(m->host, key);
}

void mm_hash_key(char *out, size_t outlen, const char *prefix, const char *a, const char *b,
		 const char *c)
{
	SHA256_CTX ctx;
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256_Init(&ctx);
	const char *parts[] = {a, b, c};
	for (int i = 0; i < 3; i++) {
		if (i)
			SHA256_Update(&ctx, "|", 1);
		if (parts[i])
			SHA256_Update(&ctx, parts[i], strlen(parts[i]));
	}
	SHA256_Final(d, &ctx);
	size_t p = (size_t)snprintf(out, outlen, "%s", prefix);
	for (int i = 0; i < 16 && p + 2 < outlen; i++, p += 2)
		snprintf(out + p, outlen - p, "%02x", d[i]);
}

void mm_audit(struct mm *m, const char *kind, const char *room, json_t *detail)
{
	json_t *d = detail ? detail : json_object();
	if (room && !json_object_get(d, "room"))
		json_object_set_new(d, "room", json_string(room));
	char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s || m->svc->audit(m->host, kind, room, s))
		m->svc->log(m->host, AC_LOG_ERROR, "audit of %s failed", kind);
	free(s);
	json_decref(d);
}

void mm_count(struct mm *m, const char *state)
{
	if (m->svc->struct_size >= offsetof(ac_host_services, counter_add) +
					   sizeof(m->svc->counter_add) &&
	    m->svc->counter_add)
		m->svc->counter_add(m->host, "emails", "state", state, 1);
}

/* ---- config ------------------------------------------------------------- */

static char *cfg_str(json_t *cfg, const char *key, const char *def, char *err, size_t errlen,
		     int *bad)
{
	json_t *v = json_object_get(cfg, key);
	if (!v && !def)
		return NULL;
	if (v && (!json_is_string(v) || !*json_string_value(v))) {
		snprintf(err, errlen, "%s: expected a non-empty string", key);
		*bad = 1;
		return NULL;
	}
	char *s = strdup(v ? json_string_value(v) : def);
	if (!s) {
		snprintf(err, errlen, "%s: out of memory", key);
		*bad = 1;
	}
	return s;
}

static int cfg_seconds(json_t *cfg, const char *key, int64_t def, int64_t *out, char *err,
		       size_t errlen)
{
	json_t *v = json_object_get(cfg, key);
	if (!v) {
		*out = def * 1000;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 86400 * 7) {
		snprintf(err, errlen, "%s: expected whole seconds from 1 to 604800", key);
		return -1;
	}
	*out = json_integer_value(v) * 1000;
	return 0;
}

static int template_name_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return 0;
	return 1;
}

int mm_template_exists(struct mm *m, const char *name, char *why, size_t whylen)
{
	/* The ABI has no lookup: an empty context renders any template there
	 * is (missing values are empty), so a failure means none. */
	ac_rendered r;
	if (m->svc->render(m->host, name, "{}", 2, &r, why, whylen))
		return 0;
	m->svc->render_free(m->host, &r);
	return 1;
}

/* The routes offered when the config has none (ABI 1.7): the agent's
 * summaries and history queries, signed as LiveKit signs or with
 * transcript_token; MultiMail's webhooks when webhook_secret is given. */
static char *default_routes(const struct mm *m, const char *token, const char *webhook_secret)
{
	json_t *verify = json_pack("[s]", "livekit");
	if (token)
		json_array_append_new(verify, json_pack("{ss}", "bearer", token));
	json_t *routes = json_pack("[{sssssO}{ssssso}]", "path", "/v1/transcripts", "event_type",
				   m->transcript_type, "verify", verify, "path",
				   "/v1/contacts/{email}/history", "method", "GET", "verify", verify);
	if (routes && webhook_secret)
		json_array_append_new(
			routes, json_pack("{ss s{s{ssssssss}}}", "path", "/webhooks/multimail",
					  "verify", "hmac", "header", "X-MultiMail-Signature",
					  "prefix", "sha256=", "encoding", "hex", "secret",
					  webhook_secret));
	char *text = routes ? json_dumps(routes, JSON_COMPACT) : NULL;
	json_decref(routes);
	return text;
}

static void mm_free(struct mm *m)
{
	if (!m)
		return;
	free(m->api_url);
	free(m->api_key);
	free(m->mailbox_id);
	free(m->missing_template);
	free(m->default_template);
	free(m->transcript_type);
	free(m->routes);
	json_decref(m->sender);
	free(m);
}

static int init(const ac_host_services *svc, ac_host *host, const char *config_json, void **out,
		char *err, size_t errlen)
{
	if (svc->struct_size < offsetof(ac_host_services, outbox_enqueue) +
				       sizeof(svc->outbox_enqueue)) {
		snprintf(err, errlen, "this host is too old: it has no outbox (ABI 1.2 needed)");
		return -1;
	}
	json_error_t jerr;
	json_t *cfg = json_loads(config_json, 0, &jerr);
	struct mm *m = calloc(1, sizeof *m);
	int bad = 0;
	if (!json_is_object(cfg) || !m) {
		snprintf(err, errlen, "config is not a JSON object");
		json_decref(cfg);
		free(m);
		return -1;
	}
	static const char *const known[] = {
		"api_url",	    "api_key",		"mailbox_id",	    "trigger",
		"transcript_wait", "finish_grace",	"on_missing_transcript",
		"missing_template", "default_template", "sender",	    "transcript_type",
		"history_max",	    "history_ttl",	"webhook_secret",   "transcript_token",
		NULL};
	const char *k;
	json_t *v;
	json_object_foreach(cfg, k, v)
	{
		int found = 0;
		for (int i = 0; known[i]; i++)
			found |= !strcmp(k, known[i]);
		if (!found && !bad) {
			snprintf(err, errlen, "%s: unknown key", k);
			bad = 1;
		}
	}
	m->svc = svc;
	m->host = host;
	if (!bad)
		m->api_url = cfg_str(cfg, "api_url", MM_DEFAULT_API_URL, err, errlen, &bad);
	if (!bad && !(m->api_key = cfg_str(cfg, "api_key", NULL, err, errlen, &bad)) && !bad) {
		snprintf(err, errlen, "api_key: required (a MultiMail key with the send scope)");
		bad = 1;
	}
	if (!bad &&
	    !(m->mailbox_id = cfg_str(cfg, "mailbox_id", NULL, err, errlen, &bad)) && !bad) {
		snprintf(err, errlen, "mailbox_id: required (see aftercall mailbox create)");
		bad = 1;
	}
	if (!bad && strncmp(m->api_url, "https://", 8) && strncmp(m->api_url, "http://", 7)) {
		snprintf(err, errlen, "api_url: must be an http(s) URL");
		bad = 1;
	}
	for (size_t n = m->api_url ? strlen(m->api_url) : 0; n && m->api_url[n - 1] == '/';)
		m->api_url[--n] = '\0';
	char *trigger = bad ? NULL : cfg_str(cfg, "trigger", "room_finished", err, errlen, &bad);
	if (trigger && !strcmp(trigger, "participant_left"))
		m->trigger = TRIGGER_PARTICIPANT_LEFT;
	else if (trigger && strcmp(trigger, "room_finished")) {
		snprintf(err, errlen, "trigger: room_finished or participant_left");
		bad = 1;
	}
	free(trigger);
	if (!bad && (cfg_seconds(cfg, "transcript_wait", 120, &m->transcript_wait_ms, err, errlen) ||
		     cfg_seconds(cfg, "finish_grace", 600, &m->finish_grace_ms, err, errlen)))
		bad = 1;
	char *missing =
		bad ? NULL : cfg_str(cfg, "on_missing_transcript", "skip", err, errlen, &bad);
	if (missing && !strcmp(missing, "send"))
		m->send_without_transcript = 1;
	else if (missing && strcmp(missing, "skip")) {
		snprintf(err, errlen, "on_missing_transcript: skip or send");
		bad = 1;
	}
	free(missing);
	if (!bad)
		m->default_template = cfg_str(cfg, "default_template", "summary", err, errlen, &bad);
	if (!bad)
		m->missing_template =
			cfg_str(cfg, "missing_template", m->default_template, err, errlen, &bad);
	const char *tkeys[] = {"default_template", "missing_template"};
	const char *tnames[] = {m->default_template, m->missing_template};
	for (int i = 0; i < 2 && !bad; i++) {
		char why[300];
		if (!template_name_ok(tnames[i])) {
			snprintf(err, errlen,
				 "%s: a template name (letters, digits, _ and -, at most 64), not "
				 "\"%.64s\"",
				 tkeys[i], tnames[i] ? tnames[i] : "");
			bad = 1;
		} else if (!mm_template_exists(m, tnames[i], why, sizeof why)) {
			snprintf(err, errlen, "%s: %s", tkeys[i], why);
			bad = 1;
		} else if (svc->struct_size >= offsetof(ac_host_services, template_require) +
							sizeof svc->template_require &&
			   svc->template_require &&
			   svc->template_require(host, tnames[i], why, sizeof why)) {
			/* A reload of the folder must not take it away (ABI 1.7). */
			snprintf(err, errlen, "%s: %s", tkeys[i], why);
			bad = 1;
		}
	}
	if (!bad)
		m->transcript_type = cfg_str(cfg, "transcript_type", "transcript", err, errlen, &bad);
	int64_t hmax = 10;
	json_t *hm = json_object_get(cfg, "history_max");
	if (bad) {
		/* keep the first error */
	} else if (hm && (!json_is_integer(hm) || json_integer_value(hm) < 1 ||
		   json_integer_value(hm) > 50)) {
		snprintf(err, errlen, "history_max: expected 1 to 50 threads");
		bad = 1;
	} else if (hm) {
		hmax = json_integer_value(hm);
	}
	m->history_max = (int)hmax;
	if (!bad && cfg_seconds(cfg, "history_ttl", 60, &m->history_ttl_ms, err, errlen))
		bad = 1;
	json_t *sender = json_object_get(cfg, "sender");
	if (!bad && sender && !json_is_object(sender)) {
		snprintf(err, errlen, "sender: expected a mapping (name, company, phone)");
		bad = 1;
	}
	m->sender = sender ? json_incref(sender) : json_object();
	char *token = bad ? NULL : cfg_str(cfg, "transcript_token", NULL, err, errlen, &bad);
	if (token && strlen(token) < 16) {
		snprintf(err, errlen, "transcript_token: at least 16 characters");
		bad = 1;
	}
	char *hook = bad ? NULL : cfg_str(cfg, "webhook_secret", NULL, err, errlen, &bad);
	if (!bad && !(m->routes = default_routes(m, token, hook))) {
		snprintf(err, errlen, "out of memory");
		bad = 1;
	}
	free(token);
	free(hook);
	json_decref(cfg);
	if (bad) {
		mm_free(m);
		return -1;
	}
	*out = m;
	return 0;
}

/* ---- callbacks ---------------------------------------------------------- */

static ac_verdict on_event(void *state, const ac_event *ev, char *err, size_t errlen)
{
	struct mm *m = state;
	if (!strncmp(ev->type, "aftercall.", 10))
		return AC_CONTINUE; /* derived events: for the plugins after us */
	json_error_t jerr;
	json_t *body = json_loadb(ev->body, ev->body_len, 0, &jerr);
	if (!json_is_object(body)) {
		json_decref(body);
		snprintf(err, errlen, "body is not a JSON object");
		return AC_REJECT;
	}
	ac_verdict v = AC_CONTINUE;
	if (!strcmp(ev->type, m->transcript_type))
		v = mm_on_transcript(m, ev, body, err, errlen);
	else if (!strncmp(ev->type, "room_", 5) || !strncmp(ev->type, "participant_", 12))
		v = mm_on_livekit(m, ev, body, err, errlen);
	else if (!strncmp(ev->type, "oversight.", 10) || !strncmp(ev->type, "message.", 8) ||
		 !strncmp(ev->type, "email.", 6))
		v = mm_on_webhook(m, ev, body, err, errlen);
	json_decref(body);
	return v;
}

static int on_timer(void *state, const char *key, const char *value, size_t len)
{
	return mm_on_session_timer(state, key);
}

static int on_delivery(void *state, const ac_delivery *d)
{
	struct mm *m = state;
	if (d->tag && !strncmp(d->tag, "send:", 5))
		return mm_on_send_outcome(m, d->tag + 5, d);
	if (d->tag && !strncmp(d->tag, "thread:", 7))
		return mm_on_thread_outcome(m, d->tag + 7, d);
	return 0;
}

static int on_query(void *state, const ac_query *q, ac_response *resp)
{
	return mm_on_query(state, q, resp);
}

static const char *routes(void *state)
{
	return ((struct mm *)state)->routes;
}

static void destroy(void *state)
{
	mm_free(state);
}

AC_PLUGIN_EXPORT const ac_plugin aftercall_plugin = {
	AC_PLUGIN_HEADER,
	.name = "multimail",
	.version = "0.1.0",
	.init = init,
	.on_event = on_event,
	.on_timer = on_timer,
	.on_delivery = on_delivery,
	.destroy = destroy,
	.on_query = on_query,
	.routes = routes,
};
