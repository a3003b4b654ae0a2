/*
 * The HTTP front: libmicrohttpd with a thread pool.
 *
 * Each request is matched to a route on its first callback, before any of
 * its body is read, so an unknown path, a wrong method or a declared length
 * over the limit is answered at once. The body is read into a bounded
 * buffer; then the route's verifier runs, the JSON is parsed, and the job
 * goes to the dispatcher. The connection is suspended meanwhile (no thread
 * waits) and resumed by the dispatcher after its commit.
 *
 * libmicrohttpd's connection timeout is an idle timer, which a client that
 * sends a byte now and then never trips. So every connection is watched:
 * a request not received whole within limits.request_timeout of the
 * connection's start, or of its previous answer, gets its connection shut
 * down by a sweeper thread, headers or body.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clock.h"
#include "crypto.h"
#include "event.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "random.h"
#include "strbuf.h"
#include "verify_hmac.h"
#include "verify_livekit.h"

/* One open connection, as the sweeper sees it. */
struct watch {
	struct watch *prev, *next;
	int fd;
	char peer[INET6_ADDRSTRLEN];
	/* When the request being received began: the connection's start or
	 * its previous answer (monotonic ms). */
	_Atomic int64_t since_ms;
	/* The request is whole: the time is aftercall's now, not the
	 * client's. */
	atomic_int whole;
	int cut; /* shut down by the sweeper (under the lock) */
};

struct http {
	/* Swapped whole by a SIGHUP reload; each request keeps the one it
	 * started with (old ones live until exit). */
	_Atomic(const struct config *) cfg;
	struct dispatcher *d;
	struct MHD_Daemon *mhd;
	unsigned port;
	atomic_ulong next_id;
	unsigned long id_base;
	/* Every open connection, for the sweeper. A watch leaves the list
	 * when libmicrohttpd says its connection is closed, which it says
	 * before it closes the socket: the sweeper never shuts down a
	 * descriptor that is already someone else's. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct watch *watched;
	int stopping;
	int sweeping;
	pthread_t sweeper;
};

/* Each connection's buffer for the request line, headers and reads (the
 * body goes to our own buffer as it arrives). libmicrohttpd zeroes it for
 * every request on a kept-alive connection, so its 32 KiB default cost a
 * memset of 32 KiB per webhook; 16 KiB takes a request line and headers
 * of nearly that much (LiveKit's are under 1 KiB); more is answered 431. */
#define HTTP_CONN_MEMORY (16 * 1024)

enum conn_state { READING, WAITING, DONE };

struct conn {
	struct http *h;
	const struct config *cfg;
	const struct route *route;
	struct strbuf body;
	int too_large;
	size_t dropped; /* body bytes read past the limit */
	enum conn_state state;
	struct MHD_Connection *mc;
	struct job job;
	/* The LiveKit token, checked on the headers: its verdict, the body
	 * hash it claims, and its issuer (for the log). */
	enum lk_result lk;
	unsigned char lk_hash[LK_HASH_LEN];
	char iss[128];
};

/* The methods a 405 answer lists: set just before refusing. */
static __thread const char *allow_header;
/* The route a request is counted under: its path when it matched one, so
 * that arbitrary URLs cannot grow the metrics. */
static __thread const char *route_label;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct watch *watch_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return i ? i->socket_context : NULL;
}

/* The request has come whole (or is answered): no deadline of the client's
 * runs until the answer has gone. */
static void request_whole(struct MHD_Connection *mc)
{
	struct watch *w = watch_of(mc);
	if (w)
		atomic_store(&w->whole, 1);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http *h = cls;
	struct watch *w = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *addr =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (!fd || !(w = calloc(1, sizeof *w)))
			return; /* unwatched: only the idle timeout applies */
		w->fd = fd->connect_fd;
		const struct sockaddr *sa = addr ? addr->client_addr : NULL;
		if (sa && sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, w->peer,
				  sizeof w->peer);
		else if (sa && sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, w->peer,
				  sizeof w->peer);
		atomic_store(&w->since_ms, mono_ms());
		pthread_mutex_lock(&h->lock);
		w->next = h->watched;
		if (w->next)
			w->next->prev = w;
		h->watched = w;
		pthread_mutex_unlock(&h->lock);
		*socket_context = w;
		return;
	}
	if (!w)
		return;
	pthread_mutex_lock(&h->lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		h->watched = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&h->lock);
	free(w);
	*socket_context = NULL;
}

/* Once a second: shuts down the connections whose request is overdue. The
 * connection's own thread then reads the end of the stream and closes it. */
static void *sweep(void *arg)
{
	struct http *h = arg;
	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&h->wake, &h->lock, &until);
		const struct config *cfg = atomic_load(&h->cfg);
		int64_t now = mono_ms(), limit = (int64_t)cfg->request_timeout * 1000;
		for (struct watch *w = h->watched; w && !h->stopping; w = w->next) {
			if (w->cut || atomic_load(&w->whole) ||
			    now - atomic_load(&w->since_ms) <= limit)
				continue;
			w->cut = 1;
			shutdown(w->fd, SHUT_RDWR);
			metrics_add("aftercall_http_cut_off_total", NULL, 1);
			char secs[16];
			snprintf(secs, sizeof secs, "%u", cfg->request_timeout);
			log_fields(AC_LOG_WARN,
				   "connection cut off: no whole request within limits.request_timeout",
				   "peer", w->peer[0] ? w->peer : NULL, "seconds", secs, LOG_END);
		}
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void count_request(unsigned status)
{
	char v[300];
	snprintf(v, sizeof v, "%s,%u", route_label ? route_label : "(none)", status);
	metrics_add("aftercall_http_requests_total", v, 1);
}

static enum MHD_Result reply(struct MHD_Connection *mc, unsigned status, const char *json)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (status == 405 && allow_header)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow_header);
	enum MHD_Result ret = MHD_queue_response(mc, status, r);
	MHD_destroy_response(r);
	count_request(status);
	return ret;
}

/* Answers {"error": why} and logs the refusal with its reason. */
static enum MHD_Result refuse(struct conn *c, struct MHD_Connection *mc, unsigned status,
			      const char *url, const char *why, const char *iss)
{
	struct strbuf b;
	sb_init(&b);
	sb_puts(&b, "{\"error\":");
	sb_json_str(&b, why, strlen(why));
	sb_putc(&b, '}');
	char st[8];
	snprintf(st, sizeof st, "%u", status);
	if (status == 401)
		metrics_add("aftercall_verify_refusals_total", why, 1);
	log_fields(status >= 500 ? AC_LOG_ERROR : AC_LOG_WARN, "request refused", "request_id",
		   c && c->job.request_id[0] ? c->job.request_id : NULL, "path", url, "status", st,
		   "reason", why, iss && *iss ? "iss" : NULL, iss, LOG_END);
	enum MHD_Result r = reply(mc, status, b.oom ? "{}" : b.data);
	sb_free(&b);
	return r;
}

/* Matches url against a route path, which may hold one {name} segment;
 * what stood for it goes to param. */
static int path_matches(const char *pattern, const char *url, char *param, size_t plen)
{
	const char *open = strchr(pattern, '{');
	if (!open)
		return !strcmp(pattern, url);
	size_t pre = (size_t)(open - pattern);
	const char *close = strchr(open, '}');
	const char *post = close + 1;
	size_t ulen = strlen(url), postlen = strlen(post);
	if (strncmp(url, pattern, pre) || ulen < pre + postlen + 1 ||
	    strcmp(url + ulen - postlen, post))
		return 0;
	size_t n = ulen - pre - postlen;
	if (n >= plen || memchr(url + pre, '/', n))
		return 0;
	memcpy(param, url + pre, n);
	param[n] = '\0';
	return 1;
}

static const struct route *find_route(const struct config *cfg, const char *url, char *param,
				      size_t plen)
{
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (path_matches(cfg->routes[i].path, url, param, plen))
			return &cfg->routes[i];
	return NULL;
}

/* Called by the dispatcher, on its thread, once the job is settled. */
static void job_done(struct job *j)
{
	struct conn *c = j->ctx;
	c->state = DONE;
	MHD_resume_connection(c->mc);
}

/* Runs one verifier. On the headers alone (whole is 0), 0 means the
 * request may yet be accepted once its body is read; there the LiveKit
 * token is checked, all but its body hash, and its verdict kept for the
 * whole request. 0, or 401 with *why set. */
static unsigned verify_one(struct conn *c, const struct verifier *v, struct MHD_Connection *mc,
			   int whole, const char **why)
{
	const char *auth = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
	switch (v->kind) {
	case VERIFY_LIVEKIT: {
		if (!whole)
			c->lk = lk_verify_token(c->cfg->keys, c->cfg->nkeys, auth, now_ms() / 1000,
						c->cfg->leeway, c->iss, sizeof c->iss, c->lk_hash);
		enum lk_result r = c->lk;
		if (whole && r == LK_OK)
			r = lk_verify_body(c->lk_hash, c->body.data, c->body.len);
		if (r == LK_OK)
			return 0;
		*why = lk_reason(r);
		return 401;
	}
	case VERIFY_HMAC: {
		const char *sig = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, v->header);
		if (!whole && sig && *sig)
			return 0;
		if (!whole)
			*why = "missing signature header";
		else if (verify_hmac(v, sig, c->body.data, c->body.len, why) == 0)
			return 0;
		return 401;
	}
	case VERIFY_BEARER:
		if (verify_bearer(v, auth, why) == 0)
			return 0;
		return 401;
	}
	*why = "no verifier";
	return 401;
}

/* Verifies a request with its route's verifiers: any one may accept it,
 * and a refusal gives the first one's reason. It runs twice: on the
 * headers, so that a request none can accept is refused before a byte of
 * its body is read (a sender without the key costs no more than its
 * headers), and on the whole request. */
static unsigned verify(struct conn *c, struct MHD_Connection *mc, int whole)
{
	const char *first = NULL;
	int accepted = 0;
	for (size_t i = 0; i < c->route->nverify && !(whole && accepted); i++) {
		/* On the headers every verifier runs: the token's verdict is
		 * needed later even when another verifier lets the body in. */
		const char *why = NULL;
		if (verify_one(c, &c->route->verify[i], mc, whole, &why) == 0)
			accepted = 1;
		else if (!first)
			first = why;
	}
	if (accepted)
		return 0;
	c->job.result = first ? first : "no verifier";
	return 401;
}

static enum MHD_Result finish_upload(struct conn *c, struct MHD_Connection *mc, const char *url)
{
	if (!c->body.data)
		sb_add(&c->body, "", 0);
	if (c->body.oom)
		return refuse(c, mc, 503, url, "out of memory", NULL);
	unsigned st = verify(c, mc, 1);
	if (st)
		return refuse(c, mc, st, url, c->job.result, c->iss);
	if (c->route->is_get) {
		c->job.is_query = 1;
		c->job.body = "";
	} else {
		char why[200];
		st = event_classify(&c->job, c->route->event_type, c->body.data, c->body.len,
				    why, sizeof why);
		if (st)
			return refuse(c, mc, st, url, why, c->iss);
		c->job.body = c->body.data;
		c->job.len = c->body.len;
	}
	c->job.route = c->route;
	c->job.received_ms = now_ms();
	c->job.done = job_done;
	c->job.ctx = c;
	c->state = WAITING;
	request_whole(mc);
	MHD_suspend_connection(mc);
	dispatcher_submit(c->h->d, &c->job);
	return MHD_YES;
}

static enum MHD_Result answer_job(struct conn *c, struct MHD_Connection *mc, const char *url)
{
	struct job *j = &c->job;
	if (j->is_query && j->answer) {
		char st[8];
		snprintf(st, sizeof st, "%d", j->status);
		log_fields(AC_LOG_INFO, "query", "request_id", j->request_id, "path", url, "status",
			   st, LOG_END);
		struct MHD_Response *r = MHD_create_response_from_buffer(
			j->answer_len, j->answer, MHD_RESPMEM_MUST_COPY);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
		enum MHD_Result ret = MHD_queue_response(mc, (unsigned)j->status, r);
		MHD_destroy_response(r);
		count_request((unsigned)j->status);
		return ret;
	}
	if (j->status != 200)
		return refuse(c, mc, (unsigned)j->status, url, j->result, NULL);
	struct strbuf b;
	sb_init(&b);
	sb_printf(&b, "{\"status\":\"%s\",\"id\":", j->result);
	sb_json_str(&b, j->dedupe, strlen(j->dedupe));
	sb_putc(&b, '}');
	log_fields(AC_LOG_INFO, "event", "request_id", j->request_id, "path", url, "status", "200",
		   "event", j->type, "id", j->dedupe, "result", j->result, LOG_END);
	enum MHD_Result r = reply(mc, 200, b.oom ? "{}" : b.data);
	sb_free(&b);
	return r;
}

/* GET /metrics: loopback only, unless the config names a bearer token. */
static enum MHD_Result serve_metrics(struct http *h, struct MHD_Connection *mc, const char *method)
{
	if (strcmp(method, "GET")) {
		allow_header = "GET";
		return refuse(NULL, mc, 405, "/metrics", "method not allowed", NULL);
	}
	const struct config *cfg = atomic_load(&h->cfg);
	if (cfg->metrics_bearer) {
		struct verifier v = {.kind = VERIFY_BEARER, .secret = cfg->metrics_bearer};
		const char *why;
		if (verify_bearer(&v, MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization"),
				  &why))
			return refuse(NULL, mc, 401, "/metrics", why, NULL);
	} else {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const struct sockaddr *sa = ci ? ci->client_addr : NULL;
		int local = 0;
		if (sa && sa->sa_family == AF_INET)
			local = (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
		else if (sa && sa->sa_family == AF_INET6)
			local = IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
		if (!local)
			return refuse(NULL, mc, 403, "/metrics", "metrics are served to loopback only",
				      NULL);
	}
	size_t len;
	char *text = metrics_render(&len);
	if (!text)
		return MHD_NO;
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
	enum MHD_Result ret = MHD_queue_response(mc, 200, r);
	MHD_destroy_response(r);
	count_request(200);
	return ret;
}

static enum MHD_Result serve_healthz(struct http *h, struct MHD_Connection *mc, const char *method)
{
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		allow_header = "GET, HEAD";
		return refuse(NULL, mc, 405, "/healthz", "method not allowed", NULL);
	}
	return dispatcher_healthy(h->d) ? reply(mc, 200, "{\"status\":\"ok\"}")
					: reply(mc, 503, "{\"status\":\"unavailable\"}");
}

/* The host's own two paths mark their connection with one of these until
 * the second call of the handler, when libmicrohttpd has read the whole
 * request: a response queued on the first call makes it close the
 * connection, and health checkers and scrapers keep theirs open. */
static char healthz_mark, metrics_mark;

static int own_path(const void *c)
{
	return c == &healthz_mark || c == &metrics_mark;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct http *h = cls;
	struct conn *c = *con_cls;

	if (own_path(c)) {
		int metrics = *con_cls == &metrics_mark;
		request_whole(mc);
		route_label = metrics ? "/metrics" : "/healthz";
		return metrics ? serve_metrics(h, mc, method) : serve_healthz(h, mc, method);
	}
	route_label = c ? c->route->path : NULL;
	if (!c) {
		int metrics = !strcmp(url, "/metrics");
		if (metrics || !strcmp(url, "/healthz")) {
			route_label = url;
			/* A request with a body is answered at once, which closes
			 * the connection, rather than reading a body nobody wants. */
			if (MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_CONTENT_LENGTH) ||
			    MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_TRANSFER_ENCODING))
				return metrics ? serve_metrics(h, mc, method)
					       : serve_healthz(h, mc, method);
			*con_cls = metrics ? &metrics_mark : &healthz_mark;
			return MHD_YES;
		}
		char param[256];
		const struct config *cfg = atomic_load(&h->cfg);
		const struct route *r = find_route(cfg, url, param, sizeof param);
		route_label = r ? r->path : NULL;
		if (!r)
			return refuse(NULL, mc, 404, url, "no such route", NULL);
		if (strcmp(method, r->is_get ? "GET" : "POST")) {
			allow_header = r->is_get ? "GET" : "POST";
			return refuse(NULL, mc, 405, url, "method not allowed", NULL);
		}
		const char *cl =
			MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > cfg->body_limit)
			return refuse(NULL, mc, 413, url, "body over the size limit", NULL);
		c = calloc(1, sizeof *c);
		if (!c)
			return MHD_NO;
		c->h = h;
		c->cfg = cfg;
		c->route = r;
		c->mc = mc;
		if (r->is_get)
			snprintf(c->job.param, sizeof c->job.param, "%s", param);
		sb_init(&c->body);
		snprintf(c->job.request_id, sizeof c->job.request_id, "%08lx-%lx", h->id_base,
			 atomic_fetch_add(&h->next_id, 1));
		*con_cls = c;
		c->lk = LK_MISSING; /* not LK_OK (0) until a token says so */
		if (verify(c, mc, 0))
			return refuse(c, mc, 401, url, c->job.result, c->iss);
		return MHD_YES;
	}

	if (c->state == DONE)
		return answer_job(c, mc, url);
	if (c->state == WAITING)
		return MHD_YES;

	if (*upload_size) {
		if (!c->too_large && c->body.len + *upload_size <= c->cfg->body_limit) {
			sb_add(&c->body, upload_data, *upload_size);
		} else {
			c->too_large = 1;
			c->dropped += *upload_size;
		}
		*upload_size = 0;
		/* A chunked body gave no length up front. Past the limit it is
		 * read on and dropped, so that the sender gets its 413 at the
		 * end; past the limit again, the connection is closed, the only
		 * way to stop a sender mid-body. */
		if (c->dropped > c->cfg->body_limit) {
			log_fields(AC_LOG_WARN, "request refused", "request_id", c->job.request_id,
				   "path", url, "status", "413",
				   "reason", "body over the size limit (connection closed)", LOG_END);
			count_request(413);
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (c->too_large)
		return refuse(c, mc, 413, url, "body over the size limit", NULL);
	return finish_upload(c, mc, url);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct watch *w = watch_of(mc);
	if (w) {
		/* The next request's time starts now. */
		atomic_store(&w->since_ms, mono_ms());
		atomic_store(&w->whole, 0);
	}
	struct conn *c = *con_cls;
	if (!c || own_path(c))
		return;
	sb_free(&c->body);
	free(c->job.answer);
	free(c);
	*con_cls = NULL;
}

/* What libmicrohttpd says: requests it refused itself (431, a malformed
 * request line or Content-Length), which never reach on_request, and
 * connections it dropped on an error. A warning, so that every refused
 * request leaves a line at the default level. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_fields(AC_LOG_WARN, msg, "component", "http", LOG_END);
}

struct http *http_start(const struct config *cfg, struct dispatcher *d, char *err, size_t errlen)
{
	struct http *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_store(&h->cfg, cfg);
	h->d = d;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->wake, &ca);
	pthread_condattr_destroy(&ca);
	/* Request ids are unique across restarts and across hosts sharing a
	 * store: 32 random bits, then a counter. */
	h->id_base = (uint32_t)random_bits();

	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char port[8];
	snprintf(port, sizeof port, "%u", cfg->listen_port);
	int gai = getaddrinfo(cfg->listen_host, port, &hints, &ai);
	if (gai) {
		snprintf(err, errlen, "listen %s:%u: %s", cfg->listen_host ? cfg->listen_host : "*",
			 cfg->listen_port, gai_strerror(gai));
		free(h);
		return NULL;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger first: messages about the options after it go to it. */
	h->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)cfg->read_timeout, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)cfg->max_connections, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!h->mhd) {
		snprintf(err, errlen, "cannot listen on %s:%u (address in use or not allowed?)",
			 cfg->listen_host ? cfg->listen_host : "*", cfg->listen_port);
		free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : cfg->listen_port;
	if (pthread_create(&h->sweeper, NULL, sweep, h)) {
		snprintf(err, errlen, "cannot start the connection sweeper thread");
		MHD_stop_daemon(h->mhd);
		free(h);
		return NULL;
	}
	h->sweeping = 1;
	return h;
}

void http_set_config(struct http *h, const struct config *cfg)
{
	atomic_store(&h->cfg, cfg);
}

unsigned http_port(struct http *h)
{
	return h->port;
}

void http_quiesce(struct http *h)
{
	MHD_quiesce_daemon(h->mhd);
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	if (h->sweeping) {
		pthread_mutex_lock(&h->lock);
		h->stopping = 1;
		pthread_cond_signal(&h->wake);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->sweeper, NULL);
	}
	MHD_stop_daemon(h->mhd);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
