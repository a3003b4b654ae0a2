/*
 * MultiMail's API as openapi.json describes it. Names and limits are the
 * spec's: `to` is an array of at most 50 addresses, the body is `markdown`,
 * the subject at most 998 characters, and every send and reply carries an
 * idempotency_key so a retry can never send twice.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"

int mm_valid_address(const char *s)
{
	if (!s || !*s || strlen(s) > 254)
		return 0;
	const char *at = strchr(s, '@');
	if (!at || at == s || strchr(at + 1, '@') || !at[1])
		return 0;
	const char *dot = strrchr(at + 1, '.');
	if (!dot || dot == at + 1 || !dot[1])
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("<>()[]\\,;:\"", *p))
			return 0;
	return 1;
}

/* Characters, not bytes: the spec's maxLength counts code points. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static json_t *addr_array(struct mm_addrs a, const char *field, char *err, size_t errlen)
{
	if (a.n > MM_MAX_RECIPIENTS) {
		snprintf(err, errlen, "%s: %zu addresses, at most %d allowed", field, a.n,
			 MM_MAX_RECIPIENTS);
		return NULL;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < a.n; i++) {
		if (!mm_valid_address(a.v[i])) {
			snprintf(err, errlen, "%s: \"%.80s\" is not an email address", field, a.v[i]);
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, json_string(a.v[i]));
	}
	return arr;
}

static int check_key(const char *key, char *err, size_t errlen)
{
	if (!key || !*key || strlen(key) > MM_MAX_IDEMPOTENCY_KEY) {
		snprintf(err, errlen, "idempotency_key is required (1 to %d bytes)",
			 MM_MAX_IDEMPOTENCY_KEY);
		return -1;
	}
	return 0;
}

static char *dump(json_t *j, char *err, size_t errlen)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s && err[0] == '\0')
		snprintf(err, errlen, "cannot build the request (invalid UTF-8?)");
	return s;
}

char *mm_send_body(struct mm_addrs to, struct mm_addrs cc, struct mm_addrs bcc,
		   const char *subject, const char *markdown, const char *idempotency_key,
		   char *err, size_t errlen)
{
	err[0] = '\0';
	if (to.n == 0) {
		snprintf(err, errlen, "to: at least one address is required");
		return NULL;
	}
	if (!subject || !*subject || utf8_chars(subject) > MM_MAX_SUBJECT) {
		snprintf(err, errlen, "subject: required, at most %d characters", MM_MAX_SUBJECT);
		return NULL;
	}
	if (strpbrk(subject, "\r\n")) {
		snprintf(err, errlen, "subject: must be one line");
		return NULL;
	}
	if (!markdown || !*markdown || utf8_chars(markdown) > MM_MAX_MARKDOWN) {
		snprintf(err, errlen, "markdown: required, at most %d characters", MM_MAX_MARKDOWN);
		return NULL;
	}
	if (check_key(idempotency_key, err, errlen))
		return NULL;
	json_t *o = json_object();
	json_t *t = addr_array(to, "to", err, errlen);
	json_t *c = cc.n ? addr_array(cc, "cc", err, errlen) : NULL;
	json_t *b = bcc.n ? addr_array(bcc, "bcc", err, errlen) : NULL;
	if (!t || (cc.n && !c) || (bcc.n && !b)) {
		json_decref(t);
		json_decref(c);
		json_decref(b);
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "to", t);
	if (c)
		json_object_set_new(o, "cc", c);
	if (b)
		json_object_set_new(o, "bcc", b);
	json_object_set_new(o, "subject", json_string(subject));
	json_object_set_new(o, "markdown", json_string(markdown));
	json_object_set_new(o, "idempotency_key", json_string(idempotency_key));
	return dump(o, err, errlen);
}

char *mm_reply_body(const char *markdown, const char *idempotency_key, char *err, size_t errlen)
{
	err[0] = '\0';
	if (!markdown || !*markdown || utf8_chars(markdown) > MM_MAX_MARKDOWN) {
		snprintf(err, errlen, "markdown: required, at most %d characters", MM_MAX_MARKDOWN);
		return NULL;
	}
	if (check_key(idempotency_key, err, errlen))
		return NULL;
	json_t *o = json_object();
	json_object_set_new(o, "markdown", json_string(markdown));
	json_object_set_new(o, "idempotency_key", json_string(idempotency_key));
	return dump(o, err, errlen);
}

char *mm_mailbox_body(const char *address_local, const char *display_name,
		      const char *webhook_url, const char *approval_code, char *err, size_t errlen)
{
	err[0] = '\0';
	if (!address_local || !*address_local) {
		snprintf(err, errlen, "address_local: required");
		return NULL;
	}
	/* A local part on MultiMail's domain, or a whole address on the
	 * tenant's own domain. */
	if (strchr(address_local, '@')) {
		if (!mm_valid_address(address_local)) {
			snprintf(err, errlen, "address_local: \"%.300s\" is not an email address",
				 address_local);
			return NULL;
		}
	} else if (strlen(address_local) > 64) {
		snprintf(err, errlen, "address_local: at most 64 characters, not %zu",
			 strlen(address_local));
		return NULL;
	}
	for (const char *p = strchr(address_local, '@') ? "" : address_local; *p; p++) {
		if (!isalnum((unsigned char)*p) && !strchr("._-+", *p)) {
			snprintf(err, errlen,
				 "address_local: \"%s\" may hold only letters, digits and . _ - +",
				 address_local);
			return NULL;
		}
	}
	if (webhook_url && strncmp(webhook_url, "https://", 8) && strncmp(webhook_url, "http://", 7)) {
		snprintf(err, errlen, "webhook_url: must be an http(s) URL");
		return NULL;
	}
	json_t *o = json_object();
	json_object_set_new(o, "address_local", json_string(address_local));
	if (display_name)
		json_object_set_new(o, "display_name", json_string(display_name));
	if (webhook_url)
		json_object_set_new(o, "webhook_url", json_string(webhook_url));
	if (approval_code)
		json_object_set_new(o, "approval_code", json_string(approval_code));
	return dump(o, err, errlen);
}

char *mm_decide_body(const char *email_id, const char *action, const char *reason, char *err,
		     size_t errlen)
{
	err[0] = '\0';
	if (!email_id || !*email_id) {
		snprintf(err, errlen, "email_id is required");
		return NULL;
	}
	if (!action || (strcmp(action, "approve") && strcmp(action, "reject"))) {
		snprintf(err, errlen, "action: approve or reject");
		return NULL;
	}
	json_t *o = json_object();
	json_object_set_new(o, "email_id", json_string(email_id));
	json_object_set_new(o, "action", json_string(action));
	if (reason)
		json_object_set_new(o, "reason", json_string(reason));
	return dump(o, err, errlen);
}

static void put_escaped(char **w, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr("-._~", c)) {
			*(*w)++ = (char)c;
		} else {
			*(*w)++ = '%';
			*(*w)++ = hex[c >> 4];
			*(*w)++ = hex[c & 15];
		}
	}
}

char *mm_path(const char *fmt, const char *a, const char *b)
{
	size_t n = strlen(fmt) + 3 * (a ? strlen(a) : 0) + 3 * (b ? strlen(b) : 0) + 1;
	char *out = malloc(n), *w = out;
	if (!out)
		return NULL;
	int which = 0;
	for (const char *p = fmt; *p; p++) {
		if (p[0] == '%' && p[1] == 's') {
			put_escaped(&w, which++ == 0 ? a : b);
			p++;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
	return out;
}

char *mm_list_emails_path(const char *mailbox_id, int limit, const char *cursor, char *err,
			  size_t errlen)
{
	if (limit < 1 || limit > 100) {
		snprintf(err, errlen, "limit: 1 to 100, got %d", limit);
		return NULL;
	}
	char *base = mm_path("/v1/mailboxes/%s/emails", mailbox_id, NULL);
	char *c = cursor ? mm_path("%s", cursor, NULL) : NULL;
	size_t n = strlen(base) + 32 + (c ? strlen(c) + 8 : 0);
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s?limit=%d%s%s", base, limit, c ? "&cursor=" : "", c ? c : "");
	free(base);
	free(c);
	return out;
}

void mm_explain(int status, const char *body, long retry_after, char *out, size_t outlen)
{
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	const char *api = json_string_value(json_object_get(j, "error"));
	char said[400] = "";
	if (api)
		snprintf(said, sizeof said, ": %s", api);
	switch (status) {
	case 0:
		snprintf(out, outlen, "MultiMail could not be reached");
		break;
	case 400:
		snprintf(out, outlen, "MultiMail refused the request as invalid (400)%s", said);
		break;
	case 401:
		snprintf(out, outlen, "MultiMail refused the API key (401): check the key%s", said);
		break;
	case 403:
		/* MultiMail's own words first: they say which (a wrong approval
		 * code, a missing scope); the usual causes when it gave none. */
		if (api)
			snprintf(out, outlen, "MultiMail refused (403)%s", said);
		else
			snprintf(out, outlen,
				 "MultiMail refused (403): the key lacks the scope for this call, or "
				 "the mailbox is read_only");
		break;
	case 404:
		snprintf(out, outlen, "MultiMail has no such mailbox or email (404)%s", said);
		break;
	case 409:
		snprintf(out, outlen, "MultiMail reports a conflict (409)%s", said);
		break;
	case 429:
		if (retry_after >= 0)
			snprintf(out, outlen, "MultiMail is rate limiting (429): retry in %ld s%s",
				 retry_after, said);
		else
			snprintf(out, outlen, "MultiMail is rate limiting (429)%s", said);
		break;
	default:
		if (status >= 500)
			snprintf(out, outlen, "MultiMail failed (%d): try again later%s", status, said);
		else
			snprintf(out, outlen, "MultiMail answered %d%s", status, said);
	}
	json_decref(j);
}
