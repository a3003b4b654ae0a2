/*
 * The blocking MultiMail call the command line makes (`aftercall mailbox`).
 * It is not part of the multimail plugin, which sends through the host's
 * outbox: the plugin never loads libcurl.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "libcurl.h"

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct mm_answer *a = ud;
	size_t len = size * n;
	if (a->len + len > 4 * 1024 * 1024)
		return 0;
	char *b = realloc(a->body, a->len + len + 1);
	if (!b)
		return 0;
	memcpy(b + a->len, p, len);
	a->body = b;
	a->len += len;
	b[a->len] = '\0';
	return len;
}

static size_t on_hdr(char *p, size_t size, size_t n, void *ud)
{
	struct mm_answer *a = ud;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(p, "retry-after:", 12))
		a->retry_after = strtol(p + 12, NULL, 10);
	return len;
}

int mm_call(const struct mm_client *c, const char *method, const char *path, const char *body,
	    struct mm_answer *ans, char *err, size_t errlen)
{
	memset(ans, 0, sizeof *ans);
	ans->retry_after = -1;
	if (libcurl_load(err, errlen))
		return -1;
	CURL *e = libcurl.easy_init();
	if (!e) {
		snprintf(err, errlen, "cannot set up libcurl");
		return -1;
	}
	size_t ulen = strlen(c->api_url) + strlen(path) + 1;
	char *url = malloc(ulen);
	char auth[600];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
	const char *const lines[] = {auth, "Accept: application/json",
				     body ? "Content-Type: application/json" : NULL, NULL};
	struct curl_slist *h = NULL;
	if (!url || libcurl_headers(lines, &h)) {
		snprintf(err, errlen, "out of memory");
		libcurl.easy_cleanup(e);
		free(url);
		return -1;
	}
	snprintf(url, ulen, "%s%s", c->api_url, path);
	libcurl.easy_setopt(e, CURLOPT_URL, url);
	libcurl.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	libcurl.easy_setopt(e, CURLOPT_HTTPHEADER, h);
	libcurl.easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		libcurl.easy_setopt(e, CURLOPT_POSTFIELDS, body);
	else if (!strcmp(method, "POST"))
		libcurl.easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
	libcurl.easy_setopt(e, CURLOPT_TIMEOUT, c->timeout > 0 ? c->timeout : 30L);
	libcurl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	libcurl.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	libcurl.easy_setopt(e, CURLOPT_WRITEDATA, ans);
	libcurl.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_hdr);
	libcurl.easy_setopt(e, CURLOPT_HEADERDATA, ans);
	CURLcode rc = libcurl.easy_perform(e);
	int ret = 0;
	if (rc != CURLE_OK) {
		/* Not the URL's user information, if it has any. */
		const char *host = strstr(c->api_url, "://");
		const char *at = host ? strchr(host, '@') : NULL;
		const char *slash = host ? strchr(host + 3, '/') : NULL;
		if (at && (!slash || at < slash))
			snprintf(err, errlen, "cannot reach MultiMail at %.*s(hidden)@%s: %s",
				 (int)(host + 3 - c->api_url), c->api_url, at + 1,
				 libcurl.easy_strerror(rc));
		else
			snprintf(err, errlen, "cannot reach MultiMail at %s: %s", c->api_url,
				 libcurl.easy_strerror(rc));
		/* No answer then: not a part of one either (the caller frees
		 * an answer only when there is one). */
		free(ans->body);
		ans->body = NULL;
		ans->len = 0;
		ret = -1;
	} else {
		long code = 0;
		libcurl.easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		ans->status = (int)code;
	}
	libcurl.slist_free_all(h);
	libcurl.easy_cleanup(e);
	free(url);
	return ret;
}

void mm_answer_free(struct mm_answer *a)
{
	free(a->body);
	memset(a, 0, sizeof *a);
}
