/*
 * Returning callers: GET /v1/contacts/{email}/history answers the contact's
 * threads, most recent first, each with MultiMail's thread detail.
 *
 * The answer never waits on MultiMail: plugins must not block. Thread
 * details are fetched through the outbox whenever something happens in a
 * thread (sent, approved, delivered, replied) and when a query finds one
 * older than history_ttl; the query answers from what was fetched last.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "mm.h"

#define MAX_THREADS_KEPT 50

/* Queues a fetch of the thread. After an event the key is unique, so the
 * fetch sees that event; a query's refresh is bucketed, so that many
 * queries make one fetch per tenth of history_ttl. */
static void refresh(struct mm *m, const char *thread_id, int after_event)
{
	char *path = mm_path(MM_PATH_THREAD, m->mailbox_id, thread_id);
	size_t ulen = path ? strlen(m->api_url) + strlen(path) + 1 : 0;
	char *url = path ? malloc(ulen) : NULL;
	if (!url) {
		m->svc->log(m->host, AC_LOG_WARN, "cannot queue a thread refresh: out of memory");
		free(path);
		return;
	}
	snprintf(url, ulen, "%s%s", m->api_url, path);
	char auth[600], tag[300], key[300];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", m->api_key);
	snprintf(tag, sizeof tag, "thread:%s", thread_id);
	int64_t now = m->svc->now_ms(m->host);
	long long bucket = (long long)(now / (m->history_ttl_ms / 10 + 1));
	if (after_event)
		snprintf(key, sizeof key, "thread-%s-at-%lld", thread_id, (long long)now);
	else
		snprintf(key, sizeof key, "thread-%s-%lld", thread_id, bucket);
	const char *headers[] = {"Accept: application/json", auth, NULL};
	ac_request req = {
		.method = "GET",
		.url = url,
		.headers = headers,
		.idempotency_key = key,
		.tag = tag,
		.max_attempts = 3,
		.max_age_ms = 10 * 60 * 1000,
	};
	if (m->svc->outbox_enqueue(m->host, &req) < 0)
		m->svc->log(m->host, AC_LOG_WARN, "cannot queue a thread refresh");
	free(url);
	free(path);
}

/* The contact's key: "c:<address>", or for an address too long for the
 * host's 255-byte keys (a valid one may have 254 bytes), "c#<hash>". With
 * fold, the address in lower case: mail systems match addresses without
 * regard to case, and so does the history. */
static void contact_key(char *out, size_t outlen, const char *contact, int fold)
{
	char low[300];
	if (fold && strlen(contact) < sizeof low) {
		size_t i = 0;
		for (; contact[i]; i++)
			low[i] = (char)tolower((unsigned char)contact[i]);
		low[i] = '\0';
		contact = low;
	}
	if (strlen(contact) + 2 <= 255)
		snprintf(out, outlen, "c:%s", contact);
	else
		mm_hash_key(out, outlen, "c#", contact, NULL, NULL);
}

/* The contact's record, NULL when there is none; key gets the key it is
 * saved under. A record an earlier version kept under the address as
 * written is still found, and moves to the folded key at its next save. */
static json_t *load_contact(struct mm *m, const char *contact, char *key, size_t keylen)
{
	contact_key(key, keylen, contact, 1);
	json_t *c = mm_load(m, key);
	if (!c) {
		char exact[300];
		contact_key(exact, sizeof exact, contact, 0);
		if (strcmp(exact, key))
			c = mm_load(m, exact);
	}
	return c;
}

int mm_sender_thread(struct mm *m, const char *from, char *out, size_t outlen)
{
	/* "Name <address>" or the address alone. */
	char addr[300];
	const char *lt = from ? strrchr(from, '<') : NULL;
	if (lt) {
		const char *gt = strchr(lt, '>');
		if (!gt || (size_t)(gt - lt - 1) >= sizeof addr)
			return -1;
		memcpy(addr, lt + 1, (size_t)(gt - lt - 1));
		addr[gt - lt - 1] = '\0';
	} else if (from && strlen(from) < sizeof addr) {
		snprintf(addr, sizeof addr, "%s", from);
	} else {
		return -1;
	}
	if (!mm_valid_address(addr))
		return -1;
	char ckey[300];
	json_t *c = load_contact(m, addr, ckey, sizeof ckey);
	const char *t = json_string_value(json_array_get(json_object_get(c, "threads"), 0));
	int rc = t && strlen(t) < outlen ? 0 : -1;
	if (!rc)
		snprintf(out, outlen, "%s", t);
	json_decref(c);
	return rc;
}

int mm_touch_thread(struct mm *m, const char *contact, const char *thread_id)
{
	char ckey[300];
	json_t *c = load_contact(m, contact, ckey, sizeof ckey);
	json_t *list = json_array();
	json_array_append_new(list, json_string(thread_id));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(c, "threads"), i, v)
	{
		if (json_array_size(list) >= MAX_THREADS_KEPT)
			break;
		if (json_is_string(v) && strcmp(json_string_value(v), thread_id))
			json_array_append(list, v);
	}
	json_decref(c);
	c = json_pack("{s:o}", "threads", list);
	int rc = mm_save(m, ckey, c, 0);
	json_decref(c);
	refresh(m, thread_id, 1);
	return rc;
}

int mm_on_thread_outcome(struct mm *m, const char *thread_id, const ac_delivery *d)
{
	if (!d->ok)
		return 0; /* keep what we had; the next event or query fetches again */
	json_t *t = json_loadb(d->body, d->body_len, 0, NULL);
	if (!json_is_object(t)) {
		json_decref(t);
		return 0;
	}
	json_t *rec = json_pack("{s:I, s:o}", "fetched_ms", (json_int_t)m->svc->now_ms(m->host),
				"thread", t);
	char key[300];
	snprintf(key, sizeof key, "d:%s", thread_id);
	int rc = mm_save(m, key, rec, 0);
	json_decref(rec);
	return rc;
}

int mm_on_query(struct mm *m, const ac_query *q, ac_response *resp)
{
	char ckey[300];
	json_t *c = mm_valid_address(q->param) ? load_contact(m, q->param, ckey, sizeof ckey) : NULL;
	json_t *out;
	if (!c) {
		resp->status = mm_valid_address(q->param) ? 404 : 400;
		out = json_pack("{s:s}", "error",
				resp->status == 404 ? "unknown contact" : "not an email address");
	} else {
		int64_t now = m->svc->now_ms(m->host);
		json_t *threads = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(c, "threads"), i, v)
		{
			if ((int)i >= m->history_max)
				break;
			const char *id = json_string_value(v);
			char dkey[300];
			snprintf(dkey, sizeof dkey, "d:%s", id);
			json_t *d = mm_load(m, dkey);
			json_t *t = json_object_get(d, "thread");
			if (t)
				json_array_append(threads, t);
			else
				json_array_append_new(threads, json_pack("{s:s, s:b}", "thread_id", id,
									 "pending", 1));
			json_int_t at = json_integer_value(json_object_get(d, "fetched_ms"));
			if (!d || now - at > m->history_ttl_ms)
				refresh(m, id, 0);
			json_decref(d);
		}
		resp->status = 200;
		out = json_pack("{s:s, s:o}", "contact", q->param, "threads", threads);
		json_decref(c);
	}
	resp->body = json_dumps(out, JSON_COMPACT);
	resp->body_len = resp->body ? strlen(resp->body) : 0;
	json_decref(out);
	return resp->body ? 0 : -1;
}
