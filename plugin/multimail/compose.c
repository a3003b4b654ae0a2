/*
 * Composing and sending: who the follow-up goes to, which template, the
 * rendering, the gated send through the outbox; then what MultiMail says
 * back, first in the send's answer, later in its webhooks.
 *
 * At most one email per (session, recipient, template): its e: key is a hash
 * of the three and is written in the same transaction as the outbox row,
 * and the outbox row's idempotency key is derived from the same hash, so
 * neither a duplicate webhook, nor a restart, nor MultiMail seeing a retry
 * can make a second one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "api.h"
#include "mm.h"

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* `email` from a metadata string holding JSON, if it does. */
static char *email_in_metadata(const char *meta)
{
	json_t *j = meta ? json_loads(meta, 0, NULL) : NULL;
	const char *e = str(j, "email");
	char *out = mm_valid_address(e) ? strdup(e) : NULL;
	json_decref(j);
	return out;
}

/* The caller: the transcript's participant, else the one non-agent seen. */
static json_t *caller_of(json_t *s, const char **identity)
{
	json_t *parts = json_object_get(s, "participants");
	const char *want = str(json_object_get(s, "transcript"), "participant");
	const char *k;
	json_t *p;
	*identity = want;
	if (want)
		return json_object_get(parts, want);
	json_object_foreach(parts, k, p)
	{
		if (!json_is_true(json_object_get(p, "agent"))) {
			*identity = k;
			return p;
		}
	}
	return NULL;
}

/* The recipients, in the order of precedence; an AGENT never is one. */
static json_t *recipients(json_t *s, const char **how)
{
	json_t *t = json_object_get(s, "transcript");
	json_t *to = json_object_get(t, "to");
	if (json_is_array(to) && json_array_size(to)) {
		*how = "transcript to";
		return json_incref(to);
	}
	const char *identity;
	json_t *caller = caller_of(s, &identity);
	if (caller && !json_is_true(json_object_get(caller, "agent"))) {
		const char *attr = str(caller, "email");
		if (mm_valid_address(attr)) {
			*how = "participant email attribute";
			return json_pack("[s]", attr);
		}
		char *e = email_in_metadata(str(caller, "metadata"));
		if (e) {
			*how = "participant metadata";
			json_t *r = json_pack("[s]", e);
			free(e);
			return r;
		}
	}
	char *e = email_in_metadata(str(s, "room_metadata"));
	if (e) {
		*how = "room metadata";
		json_t *r = json_pack("[s]", e);
		free(e);
		return r;
	}
	return NULL;
}

static json_t *context(struct mm *m, json_t *s, const char *recipient)
{
	json_t *t = json_object_get(s, "transcript");
	const char *identity;
	json_t *caller = caller_of(s, &identity);
	char date[64];
	time_t now = (time_t)(m->svc->now_ms(m->host) / 1000);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%-d %B %Y", &tm);
	json_t *c = json_pack("{s:{s:s?, s:s?, s:s}, s:{s:s, s:s}, s:O, s:{s:s}}", "caller",
			      "identity", identity, "name", str(caller, "name"), "email", recipient,
			      "room", "name", str(s, "room"), "sid", str(s, "sid"), "sender",
			      m->sender, "session", "date", date);
	if (t && str(t, "summary"))
		json_object_set(c, "summary", json_object_get(t, "summary"));
	json_object_set_new(c, "data", json_is_object(json_object_get(t, "data"))
					       ? json_incref(json_object_get(t, "data"))
					       : json_object());
	if (json_object_get(t, "transcript"))
		json_object_set(c, "transcript", json_object_get(t, "transcript"));
	return c;
}

static void body_hash(const char *body, size_t len, char out[65])
{
	unsigned char d[32];
	unsigned int n = 32;
	EVP_Digest(body, len, d, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Splits "a@x, b@y" (a rendered cc/bcc) into a list of at most max
 * addresses. Returns how many there are, which may be more than max: the
 * caller refuses that rather than send to only some. */
static size_t split_addrs(char *text, const char **out, size_t max)
{
	size_t n = 0;
	for (char *tok = strtok(text, ", "); tok; tok = strtok(NULL, ", "))
		if (n++ < max)
			out[n - 1] = tok;
	return n;
}

static int send_one(struct mm *m, json_t *s, const char *skey, const char *recipient,
		    const char *template)
{
	const char *room = str(s, "room");
	char ekey[64];
	mm_hash_key(ekey, sizeof ekey, "e:", skey, recipient, template);
	json_t *have = mm_load(m, ekey);
	if (have) {
		json_decref(have);
		return 0; /* already sent for this session, recipient and template */
	}
	json_t *ctx = context(m, s, recipient);
	char *ctxs = json_dumps(ctx, JSON_COMPACT);
	json_decref(ctx);
	ac_rendered r;
	char err[512];
	if (!ctxs || m->svc->render(m->host, template, ctxs, strlen(ctxs), &r, err, sizeof err)) {
		mm_audit(m, "email.render_failed", room,
			 json_pack("{s:s, s:s, s:s}", "template", template, "contact", recipient,
				   "error", ctxs ? err : "out of memory"));
		free(ctxs);
		return 0; /* a template error will not mend itself on a retry */
	}
	free(ctxs);
	const char *ccv[MM_MAX_RECIPIENTS], *bccv[MM_MAX_RECIPIENTS];
	size_t ncc = r.cc ? split_addrs(r.cc, ccv, MM_MAX_RECIPIENTS) : 0;
	size_t nbcc = r.bcc ? split_addrs(r.bcc, bccv, MM_MAX_RECIPIENTS) : 0;
	const char *tov[] = {recipient};
	char idem[64];
	mm_hash_key(idem, sizeof idem, "aftercall-", skey, recipient, template);
	char *body = NULL;
	if (ncc > MM_MAX_RECIPIENTS || nbcc > MM_MAX_RECIPIENTS)
		snprintf(err, sizeof err, "%s: %zu addresses, at most %d allowed",
			 ncc > MM_MAX_RECIPIENTS ? "cc" : "bcc",
			 ncc > MM_MAX_RECIPIENTS ? ncc : nbcc, MM_MAX_RECIPIENTS);
	else
		body = mm_send_body((struct mm_addrs){tov, 1}, (struct mm_addrs){ccv, ncc},
				    (struct mm_addrs){bccv, nbcc}, r.subject ? r.subject : "",
				    r.body, idem, err, sizeof err);
	char hash[65];
	body_hash(r.body, r.body_len, hash);
	json_t *rendered = json_pack("{s:s, s:s, s:s?, s:s}", "template", template, "contact",
				     recipient, "subject", r.subject, "body_sha256", hash);
	m->svc->render_free(m->host, &r);
	if (!body) {
		json_object_set_new(rendered, "error", json_string(err));
		mm_audit(m, "email.render_failed", room, rendered);
		return 0;
	}
	mm_audit(m, "email.rendered", room, rendered);

	char *path = mm_path(MM_PATH_SEND, m->mailbox_id, NULL);
	size_t ulen = path ? strlen(m->api_url) + strlen(path) + 1 : 0;
	char *url = path ? malloc(ulen) : NULL;
	if (!url) {
		free(path);
		free(body);
		return -1;
	}
	snprintf(url, ulen, "%s%s", m->api_url, path);
	char auth[600], tag[80];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", m->api_key);
	snprintf(tag, sizeof tag, "send:%s", ekey);
	const char *headers[] = {"Content-Type: application/json", "Accept: application/json", auth,
				 NULL};
	ac_request req = {
		.method = "POST",
		.url = url,
		.headers = headers,
		.body = body,
		.body_len = strlen(body),
		.idempotency_key = idem,
		.tag = tag,
	};
	int rc = m->svc->outbox_enqueue(m->host, &req) < 0 ? -1 : 0;
	free(body);
	free(url);
	free(path);
	if (rc)
		return -1;
	json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "room", room, "sid", str(s, "sid"),
			      "contact", recipient, "template", template, "state", "queued",
			      "idempotency_key", idem);
	rc = mm_save(m, ekey, e, 0);
	json_decref(e);
	mm_count(m, "queued");
	mm_audit(m, "email.queued", room,
		 json_pack("{s:s, s:s, s:s}", "contact", recipient, "template", template,
			   "idempotency_key", idem));
	return rc;
}

void mm_timer_key(char *out, size_t outlen, char kind, const char *skey)
{
	snprintf(out, outlen, "%c:%s", kind, skey + 2);
}

int mm_finish(struct mm *m, const char *skey, json_t *s)
{
	if (json_is_true(json_object_get(s, "done")))
		return 0;
	json_object_set_new(s, "done", json_true());
	/* Whichever timer still waits for this session has nothing left to do. */
	char tkey[320];
	mm_timer_key(tkey, sizeof tkey, 'w', skey);
	mm_del(m, tkey);
	mm_timer_key(tkey, sizeof tkey, 'g', skey);
	mm_del(m, tkey);
	const char *room = str(s, "room");
	json_t *t = json_object_get(s, "transcript");
	const char *template = str(t, "template");
	if (!template)
		template = t ? m->default_template : m->missing_template;
	const char *how = NULL;
	json_t *to = recipients(s, &how);
	if (!to) {
		mm_audit(m, "email.skipped", room,
			 json_pack("{s:s, s:s}", "reason", "no recipient found", "template",
				   template));
		return 0;
	}
	mm_audit(m, "recipient.chosen", room,
		 json_pack("{s:s, s:O}", "from", how, "to", to));
	size_t i;
	json_t *v;
	int rc = 0;
	json_array_foreach(to, i, v)
	{
		if (!rc)
			rc = send_one(m, s, skey, json_string_value(v), template);
	}
	json_decref(to);
	return rc;
}

/* ---- what MultiMail says back ------------------------------------------ */

int mm_on_send_outcome(struct mm *m, const char *ekey, const ac_delivery *d)
{
	json_t *e = mm_load(m, ekey);
	if (!e)
		return 0;
	const char *room = str(e, "room");
	int rc = 0;
	if (d->ok) {
		json_t *ans = json_loadb(d->body, d->body_len, 0, NULL);
		const char *id = str(ans, "id"), *thread = str(ans, "thread_id");
		const char *status = str(ans, "status");
		json_object_set_new(e, "state", json_string("accepted"));
		if (id) {
			json_object_set_new(e, "email_id", json_string(id));
			char key[300];
			snprintf(key, sizeof key, "m:%s", id);
			rc |= m->svc->kv_put(m->host, key, ekey, strlen(ekey), 0);
		}
		if (thread) {
			json_object_set_new(e, "thread_id", json_string(thread));
			char key[300];
			snprintf(key, sizeof key, "t:%s", thread);
			rc |= m->svc->kv_put(m->host, key, ekey, strlen(ekey), 0);
		}
		if (thread && str(e, "contact"))
			rc |= mm_touch_thread(m, str(e, "contact"), thread);
		mm_count(m, "accepted");
		mm_audit(m, "email.accepted", room,
			 json_pack("{s:s?, s:s?, s:s?, s:s?, s:i}", "contact", str(e, "contact"),
				   "email_id", id, "thread_id", thread, "status", status, "attempts",
				   d->attempts));
		json_decref(ans);
	} else {
		json_object_set_new(e, "state", json_string("failed"));
		mm_count(m, "failed");
		mm_audit(m, "email.failed", room,
			 json_pack("{s:s?, s:i, s:s, s:i}", "contact", str(e, "contact"), "status",
				   d->status, "error", d->error ? d->error : "", "attempts",
				   d->attempts));
	}
	rc |= mm_save(m, ekey, e, 0);
	json_decref(e);
	return rc ? -1 : 0;
}

/* MultiMail's event names, in both spellings seen in its documents. */
static const char *state_of(const char *type)
{
	static const char *const map[][2] = {
		{"oversight.approved", "approved"}, {"email.approved", "approved"},
		{"oversight.rejected", "rejected"}, {"email.rejected", "rejected"},
		{"message.delivered", "delivered"}, {"email.delivered", "delivered"},
		{"message.bounced", "bounced"},	    {"email.bounced", "bounced"},
		{"message.received", "replied"},    {"email.received", "replied"},
	};
	for (size_t i = 0; i < sizeof map / sizeof *map; i++)
		if (!strcmp(type, map[i][0]))
			return map[i][1];
	return NULL;
}

ac_verdict mm_on_webhook(struct mm *m, const ac_event *ev, json_t *body, char *err,
			 size_t errlen)
{
	const char *state = state_of(ev->type);
	if (!state)
		return AC_CONTINUE; /* message.sent, oversight.pending, ...: nothing to do */
	json_t *data = json_object_get(body, "data");
	const char *email_id = str(data, "email_id");
	if (!email_id)
		email_id = str(data, "message_id");
	const char *thread = str(data, "thread_id");
	/* A reply whose webhook names no thread (the payload MultiMail's site
	 * shows has none) goes with the sender's latest thread of ours. */
	char sender_thread[256];
	const char *matched_by = NULL;
	if (!strcmp(state, "replied") && !thread &&
	    mm_sender_thread(m, str(data, "from"), sender_thread, sizeof sender_thread) == 0) {
		thread = sender_thread;
		matched_by = "sender";
	}
	char key[300], ekey[128] = "";
	/* A reply is a new email in our thread; the others name our email. */
	if (!strcmp(state, "replied"))
		snprintf(key, sizeof key, "t:%s", thread ? thread : "");
	else
		snprintf(key, sizeof key, "m:%s", email_id ? email_id : "");
	char *v = NULL;
	size_t n = 0;
	if (m->svc->kv_get(m->host, key, &v, &n) == 1 && n < sizeof ekey) {
		memcpy(ekey, v, n);
		ekey[n] = '\0';
	}
	if (v)
		m->svc->host_free(v);
	json_t *e = *ekey ? mm_load(m, ekey) : NULL;
	if (!e) {
		mm_audit(m, "webhook.unmatched", NULL,
			 json_pack("{s:s, s:s?, s:s?}", "event", ev->type, "email_id", email_id,
				   "thread_id", thread));
		return AC_CONTINUE;
	}
	const char *room = str(e, "room");
	if (strcmp(state, "replied"))
		json_object_set_new(e, "state", json_string(state));
	json_t *out = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "room", room, "contact",
				str(e, "contact"), "template", str(e, "template"), "email_id",
				str(e, "email_id"), "thread_id", str(e, "thread_id"), "event",
				ev->type);
	if (!strcmp(state, "replied") && email_id)
		json_object_set_new(out, "reply_id", json_string(email_id));
	char kind[64], type[64];
	mm_count(m, state);
	snprintf(kind, sizeof kind, "email.%s", state);
	snprintf(type, sizeof type, "aftercall.email.%s", state);
	json_t *audited = json_deep_copy(out);
	if (matched_by)
		json_object_set_new(audited, "matched_by", json_string(matched_by));
	mm_audit(m, kind, room, audited);
	char *outs = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = outs ? m->svc->emit(m->host, type, outs, strlen(outs)) : -1;
	free(outs);
	json_decref(out);
	if (!rc && str(e, "thread_id") && str(e, "contact"))
		rc = mm_touch_thread(m, str(e, "contact"), str(e, "thread_id"));
	if (!rc)
		rc = mm_save(m, ekey, e, 0);
	json_decref(e);
	if (rc) {
		snprintf(err, errlen, "cannot record %s", ev->type);
		return AC_FAIL;
	}
	return AC_CONTINUE;
}
