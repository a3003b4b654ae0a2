/*
 * The `forward` plugin: sends chosen events (LiveKit's, or ones derived by
 * earlier plugins) to other URLs through the outbox, signed in the Standard
 * Webhooks format, so that a CRM or any receiver using one of the
 * standard's libraries can verify them.
 *
 * Config:
 *
 *	targets:
 *	  - url: https://crm.example.com/hooks/aftercall	# http(s), required
 *	    events: ["aftercall.email.*", "room_finished"]	# required
 *	    secret: ${CRM_WEBHOOK_SECRET}			# required
 *	    headers: ["X-Extra: 1"]				# optional
 *
 * `events` holds exact types and prefix patterns ending in '*'. `secret` is
 * "whsec_<base64>" (the key is the decoded rest) or any other string, used
 * as the key byte for byte.
 *
 * Each matching event becomes one outbox row per target: a POST of
 * {"type","timestamp","data"} with webhook-id, webhook-timestamp and
 * webhook-signature headers. The webhook id is derived from the event and
 * the target index and doubles as the idempotency key, so a repeated event
 * never makes a second message. Forwarding never stops the chain.
 *
 * webhook-timestamp and webhook-signature are made again for each attempt
 * (on_attempt), with the key configured then: receivers commonly refuse a
 * timestamp older than five minutes, and a retry may come hours after the
 * event. The row also keeps those made at enqueue, which go out as they are
 * should the row's target be gone from the config by then.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include <aftercall/plugin.h>

#include "sign.h"

/* The headers forward sets itself: a target may not set them again. */
static const char *const own_headers[] = {"content-type", "webhook-id", "webhook-timestamp",
					  "webhook-signature", NULL};

struct target {
	char *url;
	char shown[512]; /* url without credentials, for logs and audit */
	char **events;
	size_t nevents;
	unsigned char *key;
	size_t keylen;
	/* Content-Type, webhook-id, -timestamp, -signature, the extra
	 * lines, NULL: slots 1 to 3 are filled per message. */
	const char **headers;
	char **extra;
	size_t nextra;
};

struct state {
	const ac_host_services *svc;
	ac_host *host;
	struct target *t;
	size_t n;
};

static void state_free(struct state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct target *t = &s->t[i];
		free(t->url);
		for (size_t k = 0; k < t->nevents; k++)
			free(t->events[k]);
		free(t->events);
		if (t->key)
			OPENSSL_cleanse(t->key, t->keylen);
		free(t->key);
		for (size_t k = 0; k < t->nextra; k++)
			free(t->extra[k]);
		free(t->extra);
		free(t->headers);
	}
	free(s->t);
	free(s);
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Only the keys we know: a misspelt "evnets" must not silently forward
 * nothing. */
static int check_keys(json_t *obj, const char *const *known, const char *where, char *err,
		      size_t errlen)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		int found = 0;
		for (size_t i = 0; known[i]; i++)
			found |= !strcmp(k, known[i]);
		if (!found)
			return fail(err, errlen, "%s%s: unknown key", where, k);
	}
	return 0;
}

static int check_url(const char *url)
{
	const char *rest;
	if (!strncmp(url, "http://", 7))
		rest = url + 7;
	else if (!strncmp(url, "https://", 8))
		rest = url + 8;
	else
		return -1;
	/* A host, then nothing libcurl would take apart differently. */
	if (!*rest || strchr("/?#:@", *rest) || strlen(url) > 2048)
		return -1;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return -1;
	return 0;
}

/* A header line "Name: value": a token for the name, no line breaks. */
static const char *check_header(const char *line)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	size_t n = strspn(line, tchar);
	if (!n || line[n] != ':')
		return "must be a \"Name: value\" line";
	if (strpbrk(line, "\r\n"))
		return "must not contain a line break";
	for (size_t i = 0; own_headers[i]; i++)
		if (strlen(own_headers[i]) == n && !strncasecmp(line, own_headers[i], n))
			return "is set by forward itself";
	return NULL;
}

static int parse_target(struct target *t, size_t i, json_t *o, char *err, size_t errlen)
{
	static const char *const known[] = {"url", "events", "secret", "headers", NULL};
	char where[48];
	snprintf(where, sizeof where, "targets[%zu].", i);
	if (!json_is_object(o))
		return fail(err, errlen, "targets[%zu]: must be a mapping (url, events, secret)",
			    i);
	if (check_keys(o, known, where, err, errlen))
		return -1;

	json_t *url = json_object_get(o, "url");
	if (!url)
		return fail(err, errlen, "%surl: is required", where);
	if (!json_is_string(url) || check_url(json_string_value(url)))
		return fail(err, errlen, "%surl: must be an http(s) URL", where);
	if (!(t->url = strdup(json_string_value(url))))
		return fail(err, errlen, "out of memory");
	fwd_url_redact(t->url, t->shown, sizeof t->shown);

	json_t *ev = json_object_get(o, "events");
	if (!ev)
		return fail(err, errlen, "%sevents: is required", where);
	if (!json_is_array(ev) || !json_array_size(ev))
		return fail(err, errlen, "%sevents: must be a non-empty list of event types",
			    where);
	if (!(t->events = calloc(json_array_size(ev), sizeof *t->events)))
		return fail(err, errlen, "out of memory");
	size_t k;
	json_t *v;
	json_array_foreach(ev, k, v)
	{
		const char *why;
		if (!json_is_string(v))
			return fail(err, errlen, "%sevents[%zu]: must be a string", where, k);
		if (fwd_pattern_check(json_string_value(v), &why))
			return fail(err, errlen, "%sevents[%zu]: %s", where, k, why);
		if (!(t->events[k] = strdup(json_string_value(v))))
			return fail(err, errlen, "out of memory");
		t->nevents = k + 1;
	}

	/* Never quote the secret in a message: it ends up in the terminal
	 * and in logs. */
	json_t *sec = json_object_get(o, "secret");
	const char *why;
	if (!sec || json_is_null(sec))
		return fail(err, errlen, "%ssecret: is required", where);
	if (!json_is_string(sec))
		return fail(err, errlen, "%ssecret: must be a string (quote it in the YAML file)",
			    where);
	if (fwd_secret_key(json_string_value(sec), &t->key, &t->keylen, &why))
		return fail(err, errlen, "%ssecret: %s", where, why);

	json_t *hd = json_object_get(o, "headers");
	size_t nh = hd ? json_array_size(hd) : 0;
	if (hd && !json_is_array(hd))
		return fail(err, errlen, "%sheaders: must be a list of \"Name: value\" lines",
			    where);
	t->extra = calloc(nh + 1, sizeof *t->extra);
	t->headers = calloc(nh + 5, sizeof *t->headers);
	if (!t->extra || !t->headers)
		return fail(err, errlen, "out of memory");
	json_array_foreach(hd, k, v)
	{
		if (!json_is_string(v))
			return fail(err, errlen, "%sheaders[%zu]: must be a string", where, k);
		if ((why = check_header(json_string_value(v))))
			return fail(err, errlen, "%sheaders[%zu]: %s", where, k, why);
		if (!(t->extra[k] = strdup(json_string_value(v))))
			return fail(err, errlen, "out of memory");
		t->nextra = k + 1;
	}
	t->headers[0] = "Content-Type: application/json";
	for (k = 0; k < nh; k++)
		t->headers[4 + k] = t->extra[k];
	return 0;
}

static int init(const ac_host_services *svc, ac_host *host, const char *config_json, void **out,
		char *err, size_t errlen)
{
	static const char *const known[] = {"targets", NULL};
	json_t *cfg = json_loads(config_json, 0, NULL);
	struct state *s = NULL;
	int rc = -1;
	/* The host refuses a plugin newer than itself, so this only guards
	 * against a host that lies about its table. */
	if (svc->struct_size < offsetof(ac_host_services, outbox_enqueue) + sizeof(void *) ||
	    !svc->outbox_enqueue) {
		fail(err, errlen, "the host has no outbox (plugin ABI 1.2 or later is required)");
		goto out;
	}
	if (!json_is_object(cfg)) {
		fail(err, errlen, "config is not a JSON object");
		goto out;
	}
	if (check_keys(cfg, known, "", err, errlen))
		goto out;
	json_t *targets = json_object_get(cfg, "targets");
	if (!json_is_array(targets) || !json_array_size(targets)) {
		fail(err, errlen, "targets: must be a non-empty list of {url, events, secret}");
		goto out;
	}
	s = calloc(1, sizeof *s);
	if (!s || !(s->t = calloc(json_array_size(targets), sizeof *s->t))) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	s->svc = svc;
	s->host = host;
	size_t i;
	json_t *v;
	json_array_foreach(targets, i, v)
	{
		/* Counted before parsing: state_free releases a half-parsed one. */
		s->n = i + 1;
		if (parse_target(&s->t[i], i, v, err, errlen))
			goto out;
	}
	for (i = 0; i < s->n; i++)
		svc->log(host, AC_LOG_INFO, "target %zu: %s (%zu event patterns)", i, s->t[i].shown,
			 s->t[i].nevents);
	*out = s;
	s = NULL;
	rc = 0;
out:
	state_free(s);
	json_decref(cfg);
	return rc;
}

static int matches(const struct target *t, const char *type)
{
	for (size_t k = 0; k < t->nevents; k++)
		if (fwd_pattern_match(t->events[k], type))
			return 1;
	return 0;
}

/* Puts one signed message for target i in the outbox. Returns 1 queued,
 * 0 already queued, -1 failed (with err set). */
static int enqueue(struct state *s, size_t i, const ac_event *ev, const char *body, size_t blen,
		   char *err, size_t errlen)
{
	struct target *t = &s->t[i];
	char id[FWD_MSG_ID_LEN + 1], sig[FWD_SIG_LEN + 1];
	char h_id[16 + sizeof id], h_ts[48], h_sig[24 + sizeof sig];
	int64_t ts = s->svc->now_ms(s->host) / 1000;
	fwd_msg_id(ev->route ? ev->route : "", ev->id, ev->type, (unsigned)i, id);
	if (fwd_sign(t->key, t->keylen, id, ts, body, blen, sig))
		return fail(err, errlen, "forward: signing failed");
	snprintf(h_id, sizeof h_id, "webhook-id: %s", id);
	snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", (long long)ts);
	snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
	t->headers[1] = h_id;
	t->headers[2] = h_ts;
	t->headers[3] = h_sig;

	/* The tag brings the target and the event back in on_delivery. */
	size_t taglen = strlen(ev->id) + 24;
	char *tag = malloc(taglen);
	if (!tag)
		return fail(err, errlen, "forward: out of memory");
	snprintf(tag, taglen, "%zu:%s", i, ev->id);
	ac_request req = {
		.method = "POST",
		.url = t->url,
		.headers = t->headers,
		.body = body,
		.body_len = blen,
		.idempotency_key = id,
		.tag = tag,
	};
	int rc = s->svc->outbox_enqueue(s->host, &req);
	free(tag);
	t->headers[1] = t->headers[2] = t->headers[3] = NULL;
	OPENSSL_cleanse(sig, sizeof sig);
	OPENSSL_cleanse(h_sig, sizeof h_sig);
	if (rc < 0)
		return fail(err, errlen, "forward: outbox_enqueue failed for target %zu", i);
	if (rc == 0)
		s->svc->log(s->host, AC_LOG_DEBUG, "%s %s already queued for target %zu as %s",
			    ev->type, ev->id, i, id);
	else
		s->svc->log(s->host, AC_LOG_INFO, "%s %s queued for target %zu (%s) as %s",
			    ev->type, ev->id, i, t->shown, id);
	return rc;
}

static ac_verdict on_event(void *state, const ac_event *ev, char *err, size_t errlen)
{
	struct state *s = state;
	char *body = NULL;
	size_t blen = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (!matches(&s->t[i], ev->type))
			continue;
		if (!body &&
		    !(body = fwd_body(ev->type, ev->received_ms, ev->body, ev->body_len, &blen))) {
			fail(err, errlen, "forward: out of memory");
			return AC_FAIL;
		}
		/* A failed enqueue is a store failure: failing rolls the event
		 * back and the sender retries, instead of committing it without
		 * its message. */
		if (enqueue(s, i, ev, body, blen, err, errlen) < 0) {
			free(body);
			return AC_FAIL;
		}
	}
	free(body);
	return AC_CONTINUE;
}

static int on_delivery(void *state, const ac_delivery *d)
{
	struct state *s = state;
	char *end = NULL;
	const char *tag = d->tag ? d->tag : "";
	unsigned long i = strtoul(tag, &end, 10);
	const char *event_id = (end != tag && *end == ':') ? end + 1 : NULL;
	/* The target as configured now: after a restart with the targets
	 * reordered the index may name another one, so the URL is only a hint
	 * next to the index. */
	const char *shown = (event_id && i < s->n) ? s->t[i].shown : "";
	const char *error = d->error && *d->error ? d->error : NULL;
	json_t *detail = json_pack("{s:s, s:i, s:i}", "webhook_id", d->idempotency_key, "status",
				   d->status, "attempts", d->attempts);
	if (!detail)
		return -1;
	if (event_id)
		json_object_set_new(detail, "target", json_integer((json_int_t)i));
	if (*shown)
		json_object_set_new(detail, "url", json_string(shown));
	if (!d->ok && error)
		json_object_set_new(detail, "error", json_string(error));
	if (d->ok)
		s->svc->log(s->host, AC_LOG_INFO,
			    "event %s delivered to target %ld (%s) as %s: status %d after %d "
			    "attempt(s)",
			    event_id ? event_id : "?", event_id ? (long)i : -1L, shown,
			    d->idempotency_key, d->status, d->attempts);
	else
		s->svc->log(s->host, AC_LOG_WARN,
			    "event %s not delivered to target %ld (%s) as %s: status %d after %d "
			    "attempt(s): %s",
			    event_id ? event_id : "?", event_id ? (long)i : -1L, shown,
			    d->idempotency_key, d->status, d->attempts, error ? error : "given up");
	char *dj = json_dumps(detail, JSON_COMPACT);
	json_decref(detail);
	if (!dj)
		return -1;
	int rc = s->svc->audit(s->host, d->ok ? "forward.delivered" : "forward.failed",
			       event_id ? event_id : (*shown ? shown : NULL), dj);
	free(dj);
	return rc ? -1 : 0;
}

/* The target a row was queued for: the one its tag names if that still
 * has the row's URL, else the first with that URL, else none. */
static const struct target *target_of(const struct state *s, const ac_request *req)
{
	const char *tag = req->tag ? req->tag : "";
	char *end = NULL;
	unsigned long i = strtoul(tag, &end, 10);
	if (end != tag && *end == ':' && i < s->n && !strcmp(s->t[i].url, req->url))
		return &s->t[i];
	for (size_t k = 0; k < s->n; k++)
		if (!strcmp(s->t[k].url, req->url))
			return &s->t[k];
	return NULL;
}

static int on_attempt(void *state, const ac_request *req, unsigned attempt, char *headers,
		      size_t size)
{
	struct state *s = state;
	const struct target *t = target_of(s, req);
	(void)attempt;
	if (!t)
		return 0; /* gone from the config: as signed at enqueue */
	char sig[FWD_SIG_LEN + 1];
	int64_t ts = s->svc->now_ms(s->host) / 1000;
	if (fwd_sign(t->key, t->keylen, req->idempotency_key, ts, req->body, req->body_len, sig)) {
		snprintf(headers, size, "signing failed");
		return -1;
	}
	int n = snprintf(headers, size, "webhook-timestamp: %lld\nwebhook-signature: %s\n",
			 (long long)ts, sig);
	OPENSSL_cleanse(sig, sizeof sig);
	if (n < 0 || (size_t)n >= size) {
		snprintf(headers, size, "no room for the headers");
		return -1;
	}
	return 0;
}

static void destroy(void *state)
{
	state_free(state);
}

AC_PLUGIN_EXPORT const ac_plugin aftercall_plugin = {
	AC_PLUGIN_HEADER,
	.name = "forward",
	.version = "1.1.0",
	.init = init,
	.on_event = on_event,
	.on_delivery = on_delivery,
	.destroy = destroy,
	.on_attempt = on_attempt,
};
