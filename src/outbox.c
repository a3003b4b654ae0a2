/*
 * The delivery thread.
 *
 * One libcurl multi handle keeps connections alive between requests to the
 * same host and runs at most `concurrency` transfers at once. The thread
 * sleeps in curl_multi_poll(); outbox_submit() wakes it. Results go back
 * through a callback; the dispatcher decides what they mean (done, retry
 * later, dead), because it owns the store.
 *
 * libcurl is loaded and the multi handle made for the first request, not
 * at start (src/libcurl.h says why). Until then the thread waits on a
 * condition variable. The dispatcher's side (send_req_new, outbox_submit)
 * never calls libcurl.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "libcurl.h"
#include "log.h"
#include "outbox.h"

struct transfer {
	struct send_req *req;
	struct send_res *res;
	CURL *easy;
	struct curl_slist *headers;
	struct transfer *next; /* the list of active transfers */
};

struct outbox {
	struct outbox_conf conf;
	void (*on_result)(void *ctx, struct send_res *r);
	void *ctx;
	CURLM *multi; /* NULL until the first request; set under mu */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* wakes the thread while multi is NULL */
	struct send_req *inbox, **inbox_tail;
	int stopping;
	int64_t stop_deadline_ms;
	unsigned running;
	struct transfer *active;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- requests and results ---------------------------------------------- */

void send_req_free(struct send_req *r)
{
	if (!r)
		return;
	free(r->method);
	free(r->url);
	if (r->headers)
		for (char **h = r->headers; *h; h++)
			free(*h);
	free(r->headers);
	free(r->body);
	free(r);
}

void send_res_free(struct send_res *r)
{
	if (!r)
		return;
	free(r->body);
	free(r);
}

/* A key that can go on the wire as a header value: no control character. */
static int header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

struct send_req *send_req_new(int64_t id, const char *method, const char *url,
			      const char *headers_json, const char *idem_key, const char *body,
			      size_t len, char *err, size_t errlen)
{
	struct send_req *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->id = id;
	r->method = strdup(method ? method : "POST");
	r->url = strdup(url);
	r->body = malloc(len + 1);
	if (!r->method || !r->url || !r->body) {
		snprintf(err, errlen, "out of memory");
		send_req_free(r);
		return NULL;
	}
	if (len)
		memcpy(r->body, body, len);
	r->body[len] = '\0';
	r->body_len = len;
	json_t *h = json_loads(headers_json ? headers_json : "[]", 0, NULL);
	if (!json_is_array(h)) {
		snprintf(err, errlen, "headers are not a JSON array");
		json_decref(h);
		send_req_free(r);
		return NULL;
	}
	/* The strings, then Idempotency-Key (every attempt carries the key
	 * the row was queued with), then "Expect:" (no 100-continue round trip
	 * before a body), then NULL. */
	size_t n = 0, i;
	json_t *v;
	static const char idem_name[] = "Idempotency-Key:";
	int has_idem = !idem_key || !*idem_key || !header_safe(idem_key);
	r->headers = calloc(json_array_size(h) + 3, sizeof *r->headers);
	if (!r->headers)
		goto oom;
	json_array_foreach(h, i, v)
	{
		const char *line = json_string_value(v);
		if (!line)
			continue;
		has_idem |= !strncasecmp(line, idem_name, sizeof idem_name - 1);
		if (!(r->headers[n++] = strdup(line)))
			goto oom;
	}
	if (!has_idem) {
		size_t len_h = sizeof idem_name + 1 + strlen(idem_key);
		if (!(r->headers[n] = malloc(len_h)))
			goto oom;
		snprintf(r->headers[n++], len_h, "%s %s", idem_name, idem_key);
	}
	if (!(r->headers[n] = strdup("Expect:")))
		goto oom;
	json_decref(h);
	return r;
oom:
	snprintf(err, errlen, "out of memory");
	json_decref(h);
	send_req_free(r);
	return NULL;
}

/* The length of the name of header line s ("Name: value"), or 0 when s is
 * not one: a name of visible characters other than ':', then ':', then a
 * value without control characters but tab. */
static size_t header_name_len(const char *s, size_t n)
{
	size_t k = 0;
	while (k < n && s[k] != ':' && s[k] > ' ' && s[k] != 0x7f)
		k++;
	if (k == 0 || k == n || s[k] != ':')
		return 0;
	for (size_t i = k + 1; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return 0;
	return k;
}

int send_req_set_headers(struct send_req *r, const char *lines, char *err, size_t errlen)
{
	size_t have = 0, add = 0;
	while (r->headers[have])
		have++;
	for (const char *p = lines; *p;) {
		size_t n = strcspn(p, "\n");
		if (!header_name_len(p, n)) {
			snprintf(err, errlen, "not a header line: \"%.*s\"", (int)(n < 60 ? n : 60), p);
			return -1;
		}
		add++;
		p += n + (p[n] == '\n');
	}
	if (!add)
		return 0;
	char **h = calloc(have + add + 1, sizeof *h);
	char **fresh = calloc(add, sizeof *fresh);
	if (!h || !fresh)
		goto oom;
	const char *p = lines;
	for (size_t k = 0; k < add; k++) {
		size_t n = strcspn(p, "\n");
		if (!(fresh[k] = strndup(p, n)))
			goto oom;
		p += n + (p[n] == '\n');
	}
	/* The stored lines no new line names, then the new ones; the lines
	 * dropped are freed only once nothing can fail. */
	size_t m = 0;
	for (size_t i = 0; i < have; i++) {
		size_t ni = header_name_len(r->headers[i], strlen(r->headers[i]));
		int replaced = 0;
		for (size_t j = 0; j < add && ni; j++)
			replaced |= header_name_len(fresh[j], strlen(fresh[j])) == ni &&
				    !strncasecmp(fresh[j], r->headers[i], ni);
		if (!replaced)
			h[m++] = r->headers[i];
	}
	for (size_t j = 0; j < add; j++)
		h[m++] = fresh[j];
	for (size_t i = 0; i < have; i++) {
		int kept = 0;
		for (size_t j = 0; j < m && !kept; j++)
			kept = h[j] == r->headers[i];
		if (!kept)
			free(r->headers[i]);
	}
	free(r->headers);
	free(fresh);
	r->headers = h;
	return 0;
oom:
	if (fresh)
		for (size_t j = 0; j < add; j++)
			free(fresh[j]);
	free(fresh);
	free(h);
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* ---- curl callbacks ----------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct send_res *res = ud;
	size_t len = size * n, room = OUTBOX_BODY_MAX - res->body_len;
	size_t take = len < room ? len : room;
	if (take) {
		char *b = realloc(res->body, res->body_len + take + 1);
		if (!b)
			return 0;
		memcpy(b + res->body_len, p, take);
		res->body = b;
		res->body_len += take;
		b[res->body_len] = '\0';
	}
	return len; /* beyond the cap: read and drop */
}

/* Retry-After: delta-seconds or an HTTP date. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct send_res *res = ud;
	size_t len = size * n;
	static const char name[] = "retry-after:";
	if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n'))
		res->headers_done = 1;
	if (len > sizeof name - 1 && !strncasecmp(p, name, sizeof name - 1)) {
		char v[128];
		size_t vl = len - (sizeof name - 1);
		if (vl >= sizeof v)
			vl = sizeof v - 1;
		memcpy(v, p + sizeof name - 1, vl);
		v[vl] = '\0';
		char *s = v;
		while (*s == ' ' || *s == '\t')
			s++;
		for (char *e = s + strlen(s); e > s && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		if (*s >= '0' && *s <= '9') {
			res->retry_after = strtol(s, NULL, 10);
		} else {
			time_t when = libcurl.getdate(s, NULL);
			if (when > 0) {
				long d = (long)(when - time(NULL));
				res->retry_after = d > 0 ? d : 0;
			}
		}
	}
	return len;
}

/* ---- the thread --------------------------------------------------------- */

/* Reports an attempt that could not start as a network error (retried
 * like one) and frees the request; res may be NULL. */
static void give_up(struct outbox *o, struct send_req *req, struct send_res *res, const char *why)
{
	if (!res)
		res = calloc(1, sizeof *res);
	if (res) {
		res->id = req->id;
		res->retry_after = -1;
		snprintf(res->error, sizeof res->error, "%s", why);
		o->on_result(o->ctx, res);
	}
	send_req_free(req);
}

static void free_transfer(struct transfer *t)
{
	libcurl.easy_cleanup(t->easy);
	libcurl.slist_free_all(t->headers);
	send_req_free(t->req);
	free(t);
}

static void start_transfer(struct outbox *o, struct send_req *req)
{
	struct transfer *t = calloc(1, sizeof *t);
	struct send_res *res = calloc(1, sizeof *res);
	CURL *e = libcurl.easy_init();
	if (!t || !res || !e || libcurl_headers((const char *const *)req->headers, &t->headers)) {
		free(t);
		libcurl.easy_cleanup(e);
		give_up(o, req, res, "out of memory");
		return;
	}
	res->id = req->id;
	res->retry_after = -1;
	t->req = req;
	t->res = res;
	t->easy = e;
	libcurl.easy_setopt(e, CURLOPT_URL, req->url);
	libcurl.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	libcurl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	libcurl.easy_setopt(e, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	libcurl.easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	libcurl.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->conf.connect_timeout * 1000);
	libcurl.easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->conf.timeout * 1000);
	libcurl.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	libcurl.easy_setopt(e, CURLOPT_WRITEDATA, res);
	libcurl.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	libcurl.easy_setopt(e, CURLOPT_HEADERDATA, res);
	libcurl.easy_setopt(e, CURLOPT_PRIVATE, t);
	if (strcmp(req->method, "GET") != 0 || req->body_len) {
		libcurl.easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
		libcurl.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	if (strcmp(req->method, "POST") != 0)
		libcurl.easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	libcurl.multi_add_handle(o->multi, e);
	t->next = o->active;
	o->active = t;
	o->running++;
}

static void finish_transfer(struct outbox *o, CURLMsg *m)
{
	char *priv = NULL;
	libcurl.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
	struct transfer *t = (struct transfer *)priv;
	struct send_res *res = t->res;
	libcurl.easy_getinfo(m->easy_handle, CURLINFO_TOTAL_TIME, &res->seconds);
	if (m->data.result == CURLE_OK && !res->headers_done) {
		/* libcurl can report success for an answer whose connection died
		 * in the middle of its headers. The receiver may well have acted
		 * on it, but its answer is lost: send again (same key). */
		res->status = 0;
		snprintf(res->error, sizeof res->error,
			 "connection closed in the middle of the answer");
	} else if (m->data.result == CURLE_OK) {
		long code = 0;
		libcurl.easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		res->status = (int)code;
	} else {
		res->status = 0;
		snprintf(res->error, sizeof res->error, "%s",
			 libcurl.easy_strerror(m->data.result));
	}
	libcurl.multi_remove_handle(o->multi, t->easy);
	for (struct transfer **pp = &o->active; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	free_transfer(t);
	o->running--;
	o->on_result(o->ctx, res);
}

/* Loads libcurl and makes the multi handle, on the delivery thread. On
 * failure the requests come back as network errors, to be retried like any
 * other (and the next request tries again). */
static int make_multi(struct outbox *o, struct send_req *todo)
{
	char why[256] = "cannot set up libcurl";
	CURLM *m = libcurl_load(why, sizeof why) ? NULL : libcurl.multi_init();
	if (m) {
		libcurl.multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o->conf.concurrency);
		pthread_mutex_lock(&o->mu);
		o->multi = m;
		pthread_mutex_unlock(&o->mu);
		return 0;
	}
	log_fields(AC_LOG_ERROR, "outbox: cannot send", "error", why, LOG_END);
	while (todo) {
		struct send_req *next = todo->next;
		give_up(o, todo, NULL, why);
		todo = next;
	}
	return -1;
}

static void *outbox_main(void *arg)
{
	struct outbox *o = arg;
	for (;;) {
		pthread_mutex_lock(&o->mu);
		while (!o->multi && !o->inbox && !o->stopping)
			pthread_cond_wait(&o->cv, &o->mu);
		struct send_req *todo = o->inbox;
		o->inbox = NULL;
		o->inbox_tail = &o->inbox;
		int stopping = o->stopping;
		int64_t deadline = o->stop_deadline_ms;
		pthread_mutex_unlock(&o->mu);
		if (!o->multi) {
			if (stopping && !todo)
				break;
			if (make_multi(o, todo))
				continue;
		}
		while (todo) {
			struct send_req *next = todo->next;
			todo->next = NULL;
			start_transfer(o, todo);
			todo = next;
		}
		if (stopping && (o->running == 0 || mono_ms() >= deadline))
			break;
		int still = 0;
		libcurl.multi_perform(o->multi, &still);
		CURLMsg *m;
		int left;
		while ((m = libcurl.multi_info_read(o->multi, &left)))
			if (m->msg == CURLMSG_DONE)
				finish_transfer(o, m);
		libcurl.multi_poll(o->multi, NULL, 0, stopping ? 50 : 1000, NULL);
	}
	return NULL;
}

struct outbox *outbox_start(const struct outbox_conf *c,
			    void (*on_result)(void *ctx, struct send_res *r), void *ctx, char *err,
			    size_t errlen)
{
	struct outbox *o = calloc(1, sizeof *o);
	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->conf = *c;
	o->on_result = on_result;
	o->ctx = ctx;
	o->inbox_tail = &o->inbox;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	if (pthread_create(&o->thread, NULL, outbox_main, o)) {
		snprintf(err, errlen, "cannot start the delivery thread");
		pthread_cond_destroy(&o->cv);
		pthread_mutex_destroy(&o->mu);
		free(o);
		return NULL;
	}
	return o;
}

/* Wakes the thread, wherever it sleeps. Called with mu held. */
static void wake_locked(struct outbox *o)
{
	if (o->multi)
		libcurl.multi_wakeup(o->multi);
	else
		pthread_cond_signal(&o->cv);
}

void outbox_submit(struct outbox *o, struct send_req *r)
{
	r->next = NULL;
	pthread_mutex_lock(&o->mu);
	*o->inbox_tail = r;
	o->inbox_tail = &r->next;
	wake_locked(o);
	pthread_mutex_unlock(&o->mu);
}

void outbox_stop(struct outbox *o, int grace_ms)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->stopping = 1;
	o->stop_deadline_ms = mono_ms() + grace_ms;
	wake_locked(o);
	pthread_mutex_unlock(&o->mu);
	pthread_join(o->thread, NULL);
	/* Abandoned transfers: their rows stay in flight until a restart. */
	for (struct transfer *t = o->active; t;) {
		struct transfer *next = t->next;
		libcurl.multi_remove_handle(o->multi, t->easy);
		send_res_free(t->res);
		free_transfer(t);
		t = next;
	}
	for (struct send_req *r = o->inbox; r;) {
		struct send_req *next = r->next;
		send_req_free(r);
		r = next;
	}
	if (o->multi)
		libcurl.multi_cleanup(o->multi);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
}
