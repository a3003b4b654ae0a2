/*
 * The dispatcher.
 *
 * HTTP threads verify and parse in parallel; this one thread decides. It takes
 * the queued jobs in batches and, per batch, opens one transaction: each job
 * is journaled (a duplicate id stops there; where a statement costs a round
 * trip, the whole batch's rows go in one, first), its route's plugin chain
 * runs inside a savepoint so a failing event is rolled back alone, due timers
 * fire, and then one commit makes the whole batch durable. Only after that
 * commit is anyone answered. Group commit is what lets one fsync serve many
 * senders; running every plugin callback here is what lets plugins go
 * without locks.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "clock.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "strbuf.h"

#define BATCH_MAX 512
#define TIMERS_PER_PASS 256
#define MAX_DEPTH 8
/* A timer whose callback failed is offered again after this long. */
#define TIMER_RETRY_MS 5000
/* Outcomes offered to plugins per pass. */
#define NOTIFY_PER_PASS 64
/* A Retry-After longer than this is taken as this. */
#define RETRY_AFTER_MAX_S 3600
#define DEFAULT_MAX_ATTEMPTS 10
#define DEFAULT_MAX_AGE_MS (24LL * 3600 * 1000)
/* Due timers or rows that another host held: looked at again after this. */
#define SKIPPED_RETRY_MS 200
/* On stop, how long requests in flight may take to finish. */
#define OUTBOX_GRACE_MS 5000

/* A plugin's handle on the host: which plugin, in which dispatcher. */
struct ac_host {
	struct dispatcher *d; /* NULL for check's handles */
	struct plugin *p;
	size_t index;
	struct template_ref *templates; /* what render uses */
};

/* A derived event waiting for the plugins after its emitter. */
struct derived {
	char *type;
	char *body;
	size_t len;
	struct derived *next;
};

struct dispatcher {
	const struct config *cfg;
	struct store *store;
	struct plugin *plugins;
	size_t nplugins;
	struct ac_host *hosts;
	struct template_ref *templates;
	/* The plugins whose timers this host fires, as a JSON array (store.h);
	 * a timer of another plugin waits for a host that loads it. */
	char *timer_ns;

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	int running, started;

	/* Read by /healthz from HTTP threads. */
	volatile int store_ok;
	volatile int64_t heartbeat_ms;

	/* The callback in progress; touched only on the dispatcher thread. */
	int in_callback;
	const char *cur_request_id;
	const char *cur_route;
	const char *cur_id;
	int cur_depth;
	struct derived *emitted, **emitted_tail;
	int64_t next_due_ms; /* 0: no timer pending */

	/* The outbox. Results arrive from the delivery thread under mu. */
	struct outbox *outbox;
	struct outbox_conf oconf;
	struct send_res *results, **results_tail;
	/* Results the store could not take, tried again from parked_until
	 * (dispatcher thread only): not at once, so that a store that keeps
	 * failing does not spin the loop. */
	struct send_res *parked;
	int64_t parked_until;
	unsigned inflight;	/* claimed and not yet answered */
	int64_t next_send_ms;	/* 0: no pending row */
	int notify_pending;	/* outcomes may be waiting for their plugins */
	int64_t notify_after;	/* where the next page of outcomes starts */
	/* A host service's store call failed since the savepoint: the
	 * callback's changes are incomplete, whatever the plugin made of it. */
	int store_failed;
	char store_err[256];
	int no_claims;		/* stopping: send nothing new */
	int64_t gauges_ms;	/* when the row-count gauges were last set */
	unsigned rand_state;
};

/* ---- host services ------------------------------------------------------ */

/* What a service's store call returned; a failure (< 0) fails the callback
 * even if the plugin goes on: on SQLite the transaction survives a failed
 * statement, and a 200 would commit the callback without that write. */
static int stored(struct dispatcher *d, int rc)
{
	if (rc < 0 && !d->store_failed) {
		d->store_failed = 1;
		snprintf(d->store_err, sizeof d->store_err, "%s", store_errmsg(d->store));
	}
	return rc;
}

/* A callback's savepoint, and its release: refused when one of its writes
 * failed. */
static int savepoint(struct dispatcher *d)
{
	d->store_failed = 0;
	d->store_err[0] = '\0';
	return store_savepoint(d->store);
}

static int release(struct dispatcher *d)
{
	if (d->store_failed) {
		log_fields(AC_LOG_ERROR, "store: a write of the callback failed; undoing it", "error",
			   d->store_err, LOG_END);
		d->store_failed = 0;
		return -1;
	}
	return store_release(d->store);
}

/* Services that write must run inside a callback: that is the transaction. */
static int in_txn(ac_host *h, const char *what)
{
	if (h && h->d && h->d->in_callback && pthread_equal(pthread_self(), h->d->thread))
		return 1;
	log_fields(AC_LOG_ERROR, "host service called outside a callback", "plugin",
		   h && h->p ? h->p->name : "?", "service", what, LOG_END);
	return 0;
}

static void svc_log(ac_host *h, ac_log_level level, const char *fmt, ...)
{
	if (level < log_get_level())
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const char *rid = NULL;
	if (h && h->d && h->d->in_callback && pthread_equal(pthread_self(), h->d->thread))
		rid = h->d->cur_request_id;
	if (rid)
		log_fields(level, msg, "plugin", h->p->name, "request_id", rid, LOG_END);
	else
		log_fields(level, msg, "plugin", h && h->p ? h->p->name : "?", LOG_END);
}

static int64_t svc_now_ms(ac_host *h)
{
	return now_ms();
}

static int key_ok(const char *key)
{
	return key && *key && strlen(key) <= 255;
}

static int svc_kv_put(ac_host *h, const char *key, const void *value, size_t len, int64_t due_ms)
{
	if (!in_txn(h, "kv_put") || !key_ok(key) || (len && !value))
		return -1;
	if (due_ms > 0 && !PLUGIN_HAS(h->p->d, on_timer)) {
		svc_log(h, AC_LOG_ERROR, "kv_put with a due time, but the plugin has no on_timer");
		return -1;
	}
	if (stored(h->d, store_kv_put(h->d->store, h->p->name, key, value, len, due_ms,
				      h->d->cur_request_id)))
		return -1;
	if (due_ms > 0 && (h->d->next_due_ms == 0 || due_ms < h->d->next_due_ms))
		h->d->next_due_ms = due_ms;
	return 0;
}

static int svc_kv_get(ac_host *h, const char *key, char **value, size_t *len)
{
	if (!in_txn(h, "kv_get") || !key_ok(key) || !value || !len)
		return -1;
	return stored(h->d, store_kv_get(h->d->store, h->p->name, key, value, len));
}

static int svc_kv_del(ac_host *h, const char *key)
{
	if (!in_txn(h, "kv_del") || !key_ok(key))
		return -1;
	return stored(h->d, store_kv_del(h->d->store, h->p->name, key));
}

static int svc_audit(ac_host *h, const char *kind, const char *subject, const char *detail_json)
{
	if (!in_txn(h, "audit") || !kind || !*kind)
		return -1;
	if (detail_json) {
		json_t *j = json_loads(detail_json, JSON_REJECT_DUPLICATES, NULL);
		int ok = json_is_object(j);
		json_decref(j);
		if (!ok) {
			svc_log(h, AC_LOG_ERROR, "audit detail for %s is not a JSON object", kind);
			return -1;
		}
	}
	struct audit_rec r = {
		.ts_ms = now_ms(),
		.actor = h->p->name,
		.kind = kind,
		.subject = subject,
		.request_id = h->d->cur_request_id,
		.detail = detail_json,
	};
	return stored(h->d, store_audit_append(h->d->store, &r));
}

static int svc_emit(ac_host *h, const char *type, const char *json, size_t len)
{
	if (!in_txn(h, "emit") || !type || !*type || strlen(type) >= sizeof(((struct job *)0)->type))
		return -1;
	if (h->d->cur_depth + 1 > MAX_DEPTH) {
		svc_log(h, AC_LOG_ERROR, "emit of %s refused: derived events nested too deeply", type);
		return -1;
	}
	struct derived *e = calloc(1, sizeof *e);
	if (!e)
		return -1;
	e->type = strdup(type);
	e->body = malloc(len + 1);
	if (!e->type || !e->body) {
		free(e->type);
		free(e->body);
		free(e);
		return -1;
	}
	memcpy(e->body, json, len);
	e->body[len] = '\0';
	e->len = len;
	*h->d->emitted_tail = e;
	h->d->emitted_tail = &e->next;
	return 0;
}

static void svc_free(void *p)
{
	free(p);
}

static int metric_name_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

static int svc_log_enabled(ac_host *h, ac_log_level level)
{
	(void)h;
	return level >= log_get_level();
}

static void svc_counter_add(ac_host *h, const char *name, const char *label, const char *value,
			    double delta)
{
	if (!h || !h->p || !metric_name_ok(name) || (label && !metric_name_ok(label)) ||
	    delta < 0)
		return;
	char family[200], plugin[80], help[200];
	size_t k = 0;
	for (const char *p = h->p->name; *p && k + 1 < sizeof plugin; p++)
		plugin[k++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_';
	plugin[k] = '\0';
	snprintf(family, sizeof family, "aftercall_%s_%s_total", plugin, name);
	snprintf(help, sizeof help, "The %s plugin's %s counter.", h->p->name, name);
	metrics_declare(family, METRIC_COUNTER, label, help);
	metrics_add(family, label ? (value ? value : "") : NULL, delta);
}

static int svc_outbox_enqueue(ac_host *h, const ac_request *req)
{
	if (!in_txn(h, "outbox_enqueue") || !req)
		return -1;
	const char *method = req->method ? req->method : "POST";
	const char *why = NULL;
	static const char ctl[] = "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e"
				  "\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c"
				  "\x1d\x1e\x1f\x7f";
	if (!req->url || (strncmp(req->url, "http://", 7) && strncmp(req->url, "https://", 8)))
		why = "url must start with http:// or https://";
	else if (!req->idempotency_key || !*req->idempotency_key ||
		 strlen(req->idempotency_key) > 255 || strpbrk(req->idempotency_key, ctl))
		why = "idempotency_key is required (1 to 255 bytes, no control characters)";
	else if (!*method || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method))
		why = "method must be an upper-case HTTP method";
	else if (req->body_len && !req->body)
		why = "body_len without body";
	if (why) {
		svc_log(h, AC_LOG_ERROR, "outbox_enqueue refused: %s", why);
		return -1;
	}
	json_t *hdrs = json_array();
	for (const char *const *p = req->headers; p && *p; p++) {
		if (!strchr(*p, ':') || strpbrk(*p, "\r\n")) {
			svc_log(h, AC_LOG_ERROR, "outbox_enqueue refused: bad header line");
			json_decref(hdrs);
			return -1;
		}
		json_array_append_new(hdrs, json_string(*p));
	}
	char *hjson = json_dumps(hdrs, JSON_COMPACT);
	json_decref(hdrs);
	int64_t now = now_ms();
	struct outbox_row r = {
		.plugin = h->p->name,
		.tag = req->tag,
		.method = method,
		.url = req->url,
		.headers = hjson,
		.body = req->body,
		.body_len = req->body_len,
		.idem_key = req->idempotency_key,
		.max_attempts = req->max_attempts > 0 ? req->max_attempts : DEFAULT_MAX_ATTEMPTS,
		.max_age_ms = req->max_age_ms > 0 ? req->max_age_ms : DEFAULT_MAX_AGE_MS,
		.created_ms = now,
		.request_id = h->d->cur_request_id,
	};
	int rc = hjson ? stored(h->d, store_outbox_add(h->d->store, &r)) : -1;
	free(hjson);
	if (rc == 1)
		log_fields(AC_LOG_INFO, "outbox: queued", "plugin", h->p->name, "tag", req->tag,
			   "request_id", r.request_id, LOG_END);
	if (rc == 1 && (h->d->next_send_ms == 0 || now < h->d->next_send_ms))
		h->d->next_send_ms = now;
	return rc;
}

int render_with(struct template_ref *ref, const char *name, const char *ctx, size_t len,
		ac_rendered *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!ref) {
		snprintf(err, errlen, "no templates are loaded");
		return -1;
	}
	/* A reader lock: a SIGHUP reload swaps the set under the write lock
	 * and frees the old one only once no render holds it. */
	pthread_rwlock_rdlock(&ref->lock);
	int rc = -1;
	const struct tfile *t = ref->set ? templates_find(ref->set, name) : NULL;
	if (!ref->set)
		snprintf(err, errlen, "no templates are loaded");
	else if (!t || !t->has_front)
		snprintf(err, errlen, "no template named %s in %s", name, ref->set->dir);
	else {
		struct rendered r;
		rc = templates_render(ref->set, t, ctx, len, AC_ESCAPE_MARKDOWN, &r, err, errlen);
		if (!rc) {
			out->subject = r.subject;
			out->cc = r.cc;
			out->bcc = r.bcc;
			out->body = r.body;
			out->body_len = r.body_len;
		}
	}
	pthread_rwlock_unlock(&ref->lock);
	return rc;
}

static int svc_render(ac_host *h, const char *name, const char *ctx, size_t len, ac_rendered *out,
		      char *err, size_t errlen)
{
	if (!name || !ctx || !out) {
		snprintf(err, errlen, "render: missing argument");
		return -1;
	}
	return render_with(h ? h->templates : NULL, name, ctx, len, out, err, errlen);
}

static int svc_template_require(ac_host *h, const char *name, char *err, size_t errlen)
{
	if (!h || !name) {
		snprintf(err, errlen, "template_require: missing argument");
		return -1;
	}
	/* Only while init() runs, on the main thread: the list is then never
	 * written while serve runs, and a reload reads it without a lock. */
	if (h->p->inited) {
		snprintf(err, errlen, "template_require: only from init()");
		return -1;
	}
	if (!h->templates) {
		snprintf(err, errlen, "no templates are loaded");
		return -1;
	}
	return template_require(h->templates, name, h->p->name, err, errlen);
}

static void svc_render_free(ac_host *h, ac_rendered *out)
{
	if (!out)
		return;
	free(out->subject);
	free(out->cc);
	free(out->bcc);
	free(out->body);
	memset(out, 0, sizeof *out);
}

const ac_host_services host_services = {
	.abi_major = AC_PLUGIN_ABI_MAJOR,
	.abi_minor = AC_PLUGIN_ABI_MINOR,
	.struct_size = sizeof(ac_host_services),
	.log = svc_log,
	.now_ms = svc_now_ms,
	.kv_put = svc_kv_put,
	.kv_get = svc_kv_get,
	.kv_del = svc_kv_del,
	.audit = svc_audit,
	.emit = svc_emit,
	.host_free = svc_free,
	.render = svc_render,
	.render_free = svc_render_free,
	.outbox_enqueue = svc_outbox_enqueue,
	.counter_add = svc_counter_add,
	.log_enabled = svc_log_enabled,
	.template_require = svc_template_require,
};

/* ---- running the chain -------------------------------------------------- */

static void free_derived(struct derived *e)
{
	while (e) {
		struct derived *next = e->next;
		free(e->type);
		free(e->body);
		free(e);
		e = next;
	}
}

/* Takes the events emitted during the callback that just returned. */
static struct derived *take_emitted(struct dispatcher *d)
{
	struct derived *e = d->emitted;
	d->emitted = NULL;
	d->emitted_tail = &d->emitted;
	return e;
}

static int run_derived(struct dispatcher *d, const size_t *chain, size_t n, size_t from,
		       const ac_event *parent, struct derived *list, char *err, size_t errlen);

/* Runs chain[from..n) on ev. 0; -1 with the failing plugin's reason; -2
 * when a plugin rejected the event as malformed (err: its reason). */
static int run_chain(struct dispatcher *d, const size_t *chain, size_t n, size_t from,
		     const ac_event *ev, char *err, size_t errlen)
{
	for (size_t i = from; i < n; i++) {
		struct plugin *p = &d->plugins[chain[i]];
		char perr[512] = "";
		d->in_callback = 1;
		d->cur_depth = ev->depth;
		ac_verdict v = p->d->on_event(p->state, ev, perr, sizeof perr);
		d->in_callback = 0;
		struct derived *out = take_emitted(d);
		if (v == AC_FAIL) {
			free_derived(out);
			perr[sizeof perr - 1] = '\0';
			snprintf(err, errlen, "plugin %s failed on %s: %s", p->name, ev->type,
				 *perr ? perr : "(no message)");
			return -1;
		}
		if (v == AC_REJECT) {
			free_derived(out);
			perr[sizeof perr - 1] = '\0';
			snprintf(err, errlen, "%s", *perr ? perr : "rejected");
			return -2;
		}
		int rc = run_derived(d, chain, n, i + 1, ev, out, err, errlen);
		if (rc)
			return rc;
		if (v == AC_STOP)
			break;
	}
	return 0;
}

static int run_derived(struct dispatcher *d, const size_t *chain, size_t n, size_t from,
		       const ac_event *parent, struct derived *list, char *err, size_t errlen)
{
	int rc = 0;
	for (struct derived *e = list; e && !rc; e = e->next) {
		ac_event ev = *parent;
		ev.type = e->type;
		ev.body = e->body;
		ev.body_len = e->len;
		ev.depth = parent->depth + 1;
		rc = run_chain(d, chain, n, from, &ev, err, errlen);
	}
	free_derived(list);
	return rc;
}

/* A query: the first plugin of the chain with on_query answers it. */
static void process_query(struct dispatcher *d, struct job *j)
{
	j->status = 404;
	j->result = "nothing answers this route";
	for (size_t i = 0; i < j->route->nchain; i++) {
		struct plugin *p = &d->plugins[j->route->chain[i]];
		if (!PLUGIN_HAS(p->d, on_query))
			continue;
		if (savepoint(d)) {
			j->status = 503;
			j->result = "store unavailable";
			return;
		}
		ac_query q = {.route = j->route->path, .param = j->param,
			      .request_id = j->request_id};
		ac_response resp = {0};
		d->in_callback = 1;
		d->cur_depth = 0;
		d->cur_request_id = j->request_id;
		int rc = p->d->on_query(p->state, &q, &resp);
		d->in_callback = 0;
		d->cur_request_id = NULL;
		free_derived(take_emitted(d));
		if (rc || resp.status < 100 || resp.status > 599) {
			store_rollback_to(d->store);
			free(resp.body);
			j->status = 500;
			j->result = "plugin failed";
			return;
		}
		if (release(d)) {
			store_rollback_to(d->store);
			free(resp.body);
			j->status = 503;
			j->result = "store unavailable";
			return;
		}
		j->status = resp.status;
		j->answer = resp.body;
		j->answer_len = resp.body ? (resp.body_len ? resp.body_len : strlen(resp.body)) : 0;
		j->result = "answered";
		return;
	}
}

/* Takes back the journal row journal_add_all made for a job that is not
 * answered 200 after all. A later job of the batch with the same id, which
 * found that row, is journaled again on its own turn. */
static void unjournal(struct dispatcher *d, struct job *j)
{
	if (j->pre != 1)
		return;
	j->pre = -1;
	if (store_journal_forget(d->store, j->route->path, j->dedupe))
		log_fields(AC_LOG_ERROR, "store: cannot take back the journal row", "request_id",
			   j->request_id, "error", store_errmsg(d->store), LOG_END);
	for (struct job *k = j->next; k; k = k->next)
		if (k->pre == 0 && !strcmp(k->dedupe, j->dedupe) &&
		    !strcmp(k->route->path, j->route->path))
			k->pre = -1;
}

static void undo(struct dispatcher *d, struct job *j, int status, const char *result)
{
	store_rollback_to(d->store);
	unjournal(d, j);
	j->status = status;
	j->result = result;
}

static void duplicate(struct job *j)
{
	j->status = 200;
	j->result = "duplicate";
	metrics_add("aftercall_duplicates_total", NULL, 1);
}

static void process_job(struct dispatcher *d, struct job *j)
{
	if (j->is_query) {
		process_query(d, j);
		return;
	}
	if (j->pre == 0) {
		duplicate(j);
		return;
	}
	if (savepoint(d)) {
		unjournal(d, j);
		j->status = 503;
		j->result = "store unavailable";
		return;
	}
	int added = j->pre == 1 || j->replay
			    ? 1
			    : store_journal_add(d->store, j->dedupe, j->route->path, j->type, j->body,
						j->len, j->received_ms, j->request_id);
	if (added < 0) {
		log_fields(AC_LOG_ERROR, "store: cannot journal the event; answering 503", "request_id",
			   j->request_id, "error", store_errmsg(d->store), LOG_END);
		undo(d, j, 503, "store unavailable");
		return;
	}
	if (added == 0) {
		release(d);
		duplicate(j);
		return;
	}
	ac_event ev = {
		.route = j->route->path,
		.type = j->type,
		.id = j->dedupe,
		.body = j->body,
		.body_len = j->len,
		.received_ms = j->received_ms,
		.request_id = j->request_id,
	};
	char err[768];
	d->cur_request_id = j->request_id;
	int rc = run_chain(d, j->route->chain, j->route->nchain, 0, &ev, err, sizeof err);
	d->cur_request_id = NULL;
	if (rc == -2) {
		snprintf(j->reason, sizeof j->reason, "%.200s", err);
		undo(d, j, 400, j->reason);
		return;
	}
	if (rc) {
		log_fields(AC_LOG_ERROR, err, "request_id", j->request_id, LOG_END);
		undo(d, j, 500, "plugin failed");
		return;
	}
	if (release(d)) {
		undo(d, j, 503, "store unavailable");
		return;
	}
	j->status = 200;
	j->result = "accepted";
	metrics_add("aftercall_events_dispatched_total", j->type, 1);
}

struct keyed {
	struct job *j;
	size_t seq;
};

/* By key, and in batch order within one key. */
static int by_key(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->j->route->path, y->j->route->path);
	if (!c)
		c = strcmp(x->j->dedupe, y->j->dedupe);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Journals the batch's events in one call where the store has one (on
 * PostgreSQL one round trip for all instead of one each); a job's `pre`
 * then says 1 (its row added) or 0 (there already). -1 leaves a job to
 * journal itself: all of them, here, where the store has no such call,
 * and after a failure, which leaves the transaction to be begun again.
 * Rows go in key order, so that hosts sharing a database take the keys'
 * locks in one order and two batches cannot deadlock on them. */
static int prejournal(struct dispatcher *d, struct job *jobs)
{
	size_t n = 0;
	for (struct job *j = jobs; j; j = j->next) {
		j->pre = -1;
		n += !j->is_query;
	}
	if (!d->store->ops->journal_add_all || n < 2)
		return 0;
	struct keyed *k = calloc(n, sizeof *k);
	struct journal_in *in = calloc(n, sizeof *in);
	int rc = 0;
	if (k && in) {
		size_t i = 0;
		for (struct job *j = jobs; j; j = j->next)
			if (!j->is_query) {
				k[i].j = j;
				k[i].seq = i;
				i++;
			}
		qsort(k, n, sizeof *k, by_key);
		for (i = 0; i < n; i++) {
			struct job *j = k[i].j;
			in[i] = (struct journal_in){.dedupe = j->dedupe, .route = j->route->path,
						    .type = j->type, .body = j->body,
						    .request_id = j->request_id, .len = j->len,
						    .received_ms = j->received_ms};
		}
		rc = store_journal_add_all(d->store, in, n);
		for (i = 0; rc == 0 && i < n; i++)
			k[i].j->pre = in[i].added;
		if (rc)
			log_fields(AC_LOG_WARN,
				   "store: cannot journal the batch at once; one event at a time",
				   "error", store_errmsg(d->store), LOG_END);
	}
	free(k);
	free(in);
	return rc;
}

/* The plugin-wide chain used for events derived from timers: every plugin
 * after the emitter, in config order. */
static size_t *all_chain(struct dispatcher *d)
{
	size_t *c = calloc(d->nplugins ? d->nplugins : 1, sizeof *c);
	for (size_t i = 0; c && i < d->nplugins; i++)
		c[i] = i;
	return c;
}

/* The events a timer or delivery callback of plugin idx emitted go to the
 * plugins after it, in config order. */
static int run_emitted_after(struct dispatcher *d, size_t idx, const char *why, const char *id,
			     char *err, size_t errlen)
{
	struct derived *out = take_emitted(d);
	size_t *chain = all_chain(d);
	if (!chain) {
		free_derived(out);
		return -1;
	}
	ac_event parent = {.route = "", .type = why, .id = id, .received_ms = now_ms(),
			   .request_id = d->cur_request_id ? d->cur_request_id : ""};
	int rc = run_derived(d, chain, d->nplugins, idx + 1, &parent, out, err, errlen);
	free(chain);
	return rc;
}

static int fire_timer(void *ctx, const struct timer_row *t)
{
	struct dispatcher *d = ctx;
	size_t idx = d->nplugins;
	for (size_t i = 0; i < d->nplugins; i++)
		if (!strcmp(d->plugins[i].name, t->ns))
			idx = i;
	if (idx == d->nplugins || !PLUGIN_HAS(d->plugins[idx].d, on_timer)) {
		/* The store passes over other plugins' timers (set_timer_ns);
		 * should one come anyway, keep it for when its plugin is here. */
		log_fields(AC_LOG_WARN, "timer of a plugin that is not loaded; kept for an hour",
			   "plugin", t->ns, "key", t->key, LOG_END);
		return store_kv_put(d->store, t->ns, t->key, t->value, t->len,
				    now_ms() + 3600 * 1000, t->request_id);
	}
	if (savepoint(d))
		return -1;
	/* Delete first: if the callback puts the key again, that stays. */
	if (store_kv_del(d->store, t->ns, t->key)) {
		store_rollback_to(d->store);
		return -1;
	}
	struct plugin *p = &d->plugins[idx];
	d->in_callback = 1;
	d->cur_depth = 0;
	d->cur_request_id = t->request_id;
	int rc = p->d->on_timer(p->state, t->key, t->value, t->len);
	d->in_callback = 0;
	char err[768] = "";
	if (rc == 0)
		rc = run_emitted_after(d, idx, "timer", t->key, err, sizeof err);
	else
		free_derived(take_emitted(d));
	d->cur_request_id = NULL;
	/* A release can fail too (on PostgreSQL, after a statement of the
	 * callback failed): that is the callback failing. */
	if (rc == 0 && release(d) == 0)
		return 0;
	if (!rc)
		snprintf(err, sizeof err, "the store refused the callback's changes: %s",
			 d->store_err[0] ? d->store_err : store_errmsg(d->store));
	store_rollback_to(d->store);
	log_fields(AC_LOG_ERROR, "timer callback failed; retrying later", "plugin", p->name, "key",
		   t->key, "request_id", t->request_id, "error", *err ? err : NULL, LOG_END);
	/* Push it back so one bad timer cannot spin the dispatcher. */
	if (savepoint(d) == 0) {
		if (store_kv_put(d->store, t->ns, t->key, t->value, t->len, now_ms() + TIMER_RETRY_MS,
				 t->request_id) == 0)
			release(d);
		else
			store_rollback_to(d->store);
	}
	return 0;
}

/* The next timer and the next pending outbox row, read from the store: cheap
 * (both are index lookups) and it also sees what the command line changed. */
static void refresh_due(struct dispatcher *d)
{
	int64_t due;
	d->next_due_ms = store_timer_next(d->store, d->timer_ns, &due) == 1 ? due : 0;
	d->next_send_ms = store_outbox_next_due(d->store, &due) == 1 ? due : 0;
	/* The gauges count rows: once a second is enough. */
	int64_t now = now_ms();
	if (now - d->gauges_ms >= 1000) {
		static const char *const states[] = {"pending", "inflight", "done", "dead"};
		int64_t counts[4];
		if (store_outbox_counts(d->store, counts) == 0)
			for (int i = 0; i < 4; i++)
				metrics_set("aftercall_outbox_rows", states[i], (double)counts[i]);
		long long timers = store_timer_count(d->store, d->timer_ns);
		if (timers >= 0)
			metrics_set("aftercall_pending_timers", NULL, (double)timers);
		d->gauges_ms = now;
	}
}

/* ---- the outbox, seen from the dispatcher ------------------------------- */

/* Called on the delivery thread. */
static void on_send_result(void *ctx, struct send_res *r)
{
	struct dispatcher *d = ctx;
	r->next = NULL;
	pthread_mutex_lock(&d->mu);
	*d->results_tail = r;
	d->results_tail = &r->next;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static unsigned next_rand(struct dispatcher *d)
{
	d->rand_state = d->rand_state * 1103515245u + 12345u;
	return d->rand_state >> 8;
}

struct row_copy {
	int attempts, max_attempts;
	int64_t created_ms, max_age_ms;
	char plugin[256];
	char request_id[48];
	int found;
};

static int copy_policy(void *ctx, const struct outbox_row *r)
{
	struct row_copy *c = ctx;
	c->attempts = r->attempts;
	c->max_attempts = r->max_attempts;
	c->created_ms = r->created_ms;
	c->max_age_ms = r->max_age_ms;
	snprintf(c->plugin, sizeof c->plugin, "%s", r->plugin);
	snprintf(c->request_id, sizeof c->request_id, "%s", r->request_id ? r->request_id : "");
	c->found = 1;
	return 1;
}

/* Decides what one attempt means: done, again later, or dead. 408, 429,
 * 5xx and network errors are worth another try; any other answer is the
 * receiver's final word. */
static int apply_result(struct dispatcher *d, const struct send_res *res, int64_t now)
{
	struct row_copy c = {0};
	if (store_outbox_get(d->store, res->id, copy_policy, &c) < 0)
		return -1;
	if (!c.found)
		return 0; /* cancelled and gone: nothing to record */
	struct outbox_update u = {
		.id = res->id,
		.attempts = c.attempts + 1,
		.last_status = res->status,
		.last_error = res->error[0] ? res->error : NULL,
		.last_body = res->body,
		.last_body_len = res->body_len,
	};
	int ok = res->status >= 200 && res->status < 300;
	int again = res->status == 0 || res->status == 408 || res->status == 429 ||
		    res->status >= 500;
	int64_t delay = 0;
	if (!ok && again) {
		/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
		int shift = u.attempts - 1 < 20 ? u.attempts - 1 : 20;
		int64_t ceiling = (int64_t)d->cfg->outbox_retry_base_ms << shift;
		if (ceiling > (int64_t)d->cfg->outbox_retry_cap_ms)
			ceiling = d->cfg->outbox_retry_cap_ms;
		delay = (int64_t)(next_rand(d) % (unsigned)(ceiling + 1));
		if (res->retry_after >= 0) {
			long ra = res->retry_after < RETRY_AFTER_MAX_S ? res->retry_after
								       : RETRY_AFTER_MAX_S;
			delay = (int64_t)ra * 1000;
		}
		if (u.attempts >= c.max_attempts || now + delay - c.created_ms >= c.max_age_ms)
			again = 0;
	}
	char err[300];
	/* An outcome behind the page deliver_outcomes is on: go back for it. */
	if ((ok || !again) && res->id <= d->notify_after)
		d->notify_after = res->id - 1;
	if (ok) {
		u.state = "done";
		u.notify = 1;
	} else if (again) {
		u.state = "pending";
		u.next_ms = now + delay;
		if (d->next_send_ms == 0 || u.next_ms < d->next_send_ms)
			d->next_send_ms = u.next_ms;
	} else {
		u.state = "dead";
		u.notify = 1;
		if (!u.last_error) {
			/* Keep the receiver's own words when it gave {"error": ...}. */
			json_t *j = res->body ? json_loads(res->body, 0, NULL) : NULL;
			const char *why = json_string_value(json_object_get(j, "error"));
			if (why)
				snprintf(err, sizeof err, "HTTP %d: %s", res->status, why);
			else
				snprintf(err, sizeof err, "HTTP %d", res->status);
			json_decref(j);
			u.last_error = err;
		}
	}
	char id[24], st[8], at[8];
	snprintf(id, sizeof id, "%lld", (long long)res->id);
	int rc = store_outbox_update(d->store, &u);
	if (rc == 1) {
		/* The row is no longer in flight. Its result is on record
		 * already (a commit whose answer was lost, then retried), or
		 * this host's connection was gone long enough for another host
		 * to take the row over, and that host's attempt (with the same
		 * idempotency key) is the one on record. */
		log_fields(AC_LOG_WARN,
			   "outbox: result not recorded, the row is no longer in flight",
			   "outbox_id", id, "plugin", c.plugin, "request_id",
			   c.request_id[0] ? c.request_id : NULL, LOG_END);
		return 0;
	}
	if (rc)
		return -1;
	snprintf(st, sizeof st, "%d", res->status);
	snprintf(at, sizeof at, "%d", u.attempts);
	log_fields(ok ? AC_LOG_INFO : AC_LOG_WARN, "outbox: delivery attempt", "outbox_id", id,
		   "plugin", c.plugin, "request_id", c.request_id[0] ? c.request_id : NULL, "status",
		   st, "attempt", at, "result", u.state, "error", res->error[0] ? res->error : NULL,
		   LOG_END);
	if (u.notify)
		d->notify_pending = 1;
	metrics_add("aftercall_delivery_attempts_total", ok ? "done" : again ? "retry" : "dead", 1);
	if (res->status)
		metrics_observe("aftercall_delivery_seconds", res->seconds);
	return 0;
}

struct outcome {
	int64_t id;
	char *plugin, *tag, *idem, *error, *body, *request_id;
	size_t body_len;
	int status, attempts, ok;
};

struct outcomes {
	struct outcome o[NOTIFY_PER_PASS];
	int n;
};

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static int copy_outcome(void *ctx, const struct outbox_row *r)
{
	struct outcomes *oc = ctx;
	struct outcome *o = &oc->o[oc->n++];
	o->id = r->id;
	o->plugin = dup_or_empty(r->plugin);
	o->tag = dup_or_empty(r->tag);
	o->idem = dup_or_empty(r->idem_key);
	o->error = dup_or_empty(r->last_error);
	o->request_id = r->request_id ? strdup(r->request_id) : NULL;
	o->body = malloc(r->last_body_len + 1);
	if (o->body) {
		if (r->last_body_len)
			memcpy(o->body, r->last_body, r->last_body_len);
		o->body[r->last_body_len] = '\0';
	}
	o->body_len = r->last_body_len;
	o->status = r->last_status;
	o->attempts = r->attempts;
	o->ok = !strcmp(r->state, "done");
	return oc->n == NOTIFY_PER_PASS;
}

/* Hands settled rows to the plugins that enqueued them, each inside a
 * savepoint with the clearing of its notify flag. */
static void deliver_outcomes(struct dispatcher *d)
{
	struct outcomes oc;
	oc.n = 0;
	/* A page at a time, on from the last: rows that stay (their plugin
	 * is not loaded here, or its on_delivery failed) do not hide those
	 * after them. After a short page the next pass starts over, when
	 * another outcome comes or at the next idle second. */
	int n = store_outbox_notify_due(d->store, d->notify_after, NOTIFY_PER_PASS, copy_outcome,
					&oc);
	d->notify_pending = n >= 0 && oc.n == NOTIFY_PER_PASS;
	if (n >= 0)
		d->notify_after = d->notify_pending ? oc.o[oc.n - 1].id : 0;
	for (int i = 0; i < oc.n; i++) {
		struct outcome *o = &oc.o[i];
		size_t idx = d->nplugins;
		for (size_t k = 0; k < d->nplugins; k++)
			if (!strcmp(d->plugins[k].name, o->plugin))
				idx = k;
		if (idx == d->nplugins || !o->body)
			goto next; /* not loaded now: keep it for when it is */
		struct plugin *p = &d->plugins[idx];
		if (!PLUGIN_HAS(p->d, on_delivery)) {
			store_outbox_notified(d->store, o->id);
			goto next;
		}
		if (savepoint(d))
			goto next;
		ac_delivery del = {
			.tag = o->tag,
			.idempotency_key = o->idem,
			.status = o->status,
			.body = o->body,
			.body_len = o->body_len,
			.attempts = o->attempts,
			.ok = o->ok,
			.error = o->error,
		};
		d->in_callback = 1;
		d->cur_depth = 0;
		d->cur_request_id = o->request_id;
		int rc = p->d->on_delivery(p->state, &del);
		d->in_callback = 0;
		char err[768] = "";
		if (rc == 0)
			rc = run_emitted_after(d, idx, "delivery", o->idem, err, sizeof err);
		else
			free_derived(take_emitted(d));
		d->cur_request_id = NULL;
		if (rc == 0 && store_outbox_notified(d->store, o->id) == 0 &&
		    release(d) == 0) {
			/* settled */
		} else {
			store_rollback_to(d->store);
			log_fields(AC_LOG_ERROR, "delivery outcome refused by the plugin; offered again later",
				   "plugin", p->name, "key", o->idem, "request_id", o->request_id,
				   "error", *err ? err : NULL, LOG_END);
		}
	next:
		free(o->plugin);
		free(o->tag);
		free(o->idem);
		free(o->error);
		free(o->body);
		free(o->request_id);
	}
}

struct claim {
	struct dispatcher *d;
	struct send_req *head, **tail;
	int n;
	/* Rows claimed that cannot be turned into a request: their attempt
	 * fails at once, recorded like any other. */
	struct send_res *unsendable;
};

/* Gives the plugin that queued row r, when it is loaded and has on_attempt,
 * its say on this attempt's headers. 0, or -1 with err set. */
static int fresh_headers(struct dispatcher *d, const struct outbox_row *r, struct send_req *req,
			 char *err, size_t errlen)
{
	struct plugin *p = NULL;
	for (size_t k = 0; k < d->nplugins && !p; k++)
		if (!strcmp(d->plugins[k].name, r->plugin))
			p = &d->plugins[k];
	if (!p || !PLUGIN_HAS(p->d, on_attempt))
		return 0;
	json_t *h = json_loads(r->headers ? r->headers : "[]", 0, NULL);
	const char **lines = calloc(json_array_size(h) + 1, sizeof *lines);
	if (!lines) {
		json_decref(h);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t i, n = 0;
	json_t *v;
	json_array_foreach(h, i, v)
	{
		if (json_is_string(v))
			lines[n++] = json_string_value(v);
	}
	ac_request stored_req = {
		.method = r->method,
		.url = r->url,
		.headers = lines,
		.body = r->body,
		.body_len = r->body_len,
		.idempotency_key = r->idem_key,
		.tag = r->tag,
		.max_attempts = r->max_attempts,
		.max_age_ms = r->max_age_ms,
	};
	char buf[4096] = "";
	int rc = p->d->on_attempt(p->state, &stored_req, (unsigned)r->attempts + 1, buf, sizeof buf);
	buf[sizeof buf - 1] = '\0';
	free(lines);
	json_decref(h);
	if (rc) {
		snprintf(err, errlen, "plugin %s refused the attempt: %s", p->name,
			 *buf ? buf : "no reason given");
		rc = -1;
	} else if (send_req_set_headers(req, buf, err, errlen)) {
		char why[160];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "plugin %s gave a bad header: %s", p->name, why);
		rc = -1;
	}
	OPENSSL_cleanse(buf, sizeof buf); /* it may hold a signature */
	return rc;
}

static int claim_row(void *ctx, const struct outbox_row *r)
{
	struct claim *c = ctx;
	char err[200];
	struct send_req *req =
		send_req_new(r->id, r->method, r->url, r->headers, r->idem_key, r->body,
			     r->body_len, err, sizeof err);
	if (req && fresh_headers(c->d, r, req, err, sizeof err)) {
		send_req_free(req);
		req = NULL;
	}
	if (!req) {
		log_fields(AC_LOG_ERROR, "outbox row cannot be sent", "request_id", r->request_id,
			   "error", err, LOG_END);
		struct send_res *res = calloc(1, sizeof *res);
		if (res) {
			res->id = r->id;
			res->retry_after = -1;
			snprintf(res->error, sizeof res->error, "cannot build the request: %s", err);
			res->next = c->unsendable;
			c->unsendable = res;
		}
		return 0;
	}
	*c->tail = req;
	c->tail = &req->next;
	c->n++;
	return 0;
}

static void free_reqs(struct send_req *r)
{
	while (r) {
		struct send_req *next = r->next;
		send_req_free(r);
		r = next;
	}
}

static void free_results(struct send_res *r)
{
	while (r) {
		struct send_res *next = r->next;
		send_res_free(r);
		r = next;
	}
}

#define PARK_RETRY_MS 1000

/* Keeps results that were not recorded, to try again a second later. */
static void park_results(struct dispatcher *d, struct send_res *r)
{
	if (!r)
		return;
	struct send_res *last = r;
	while (last->next)
		last = last->next;
	last->next = d->parked;
	d->parked = r;
	d->parked_until = now_ms() + PARK_RETRY_MS;
}

/* Records one result in a savepoint of its own: one that fails (on
 * PostgreSQL it would abort the transaction) takes nothing else with it. */
static int record_result(struct dispatcher *d, const struct send_res *r, int64_t now)
{
	if (savepoint(d) == 0) {
		if (apply_result(d, r, now) == 0 && release(d) == 0)
			return 0;
		log_fields(AC_LOG_ERROR, "store: cannot record a delivery; trying again", "error",
			   store_errmsg(d->store), LOG_END);
		store_rollback_to(d->store);
	}
	return -1;
}

static void run_batch(struct dispatcher *d, struct job *jobs, struct send_res *results)
{
	int64_t now = now_ms();
	int want_timers = d->next_due_ms && d->next_due_ms <= now;
	int want_send = !d->no_claims && d->next_send_ms && d->next_send_ms <= now &&
			d->inflight < d->oconf.concurrency;
	if (!jobs && !results && !want_timers && !want_send && !d->notify_pending && d->store_ok)
		return;

	int no_txn = store_begin(d->store);
	if (!no_txn && prejournal(d, jobs)) {
		store_rollback(d->store);
		no_txn = store_begin(d->store);
	}
	if (no_txn) {
		log_fields(AC_LOG_ERROR, "store: cannot begin a transaction", "error",
			   store_errmsg(d->store), LOG_END);
		d->store_ok = 0;
		for (struct job *j = jobs; j; j = j->next) {
			j->status = 503;
			j->result = "store unavailable";
		}
		park_results(d, results);
		return;
	}
	for (struct job *j = jobs; j; j = j->next)
		process_job(d, j);
	/* Results recorded, and those to try again (the row stays in flight
	 * meanwhile, and nothing is sent twice). */
	int answered = 0;
	struct send_res *recorded = NULL, **rtail = &recorded, *unrecorded = NULL, **utail = &unrecorded;
	for (struct send_res *r = results, *next; r; r = next) {
		next = r->next;
		r->next = NULL;
		if (record_result(d, r, now) == 0) {
			*rtail = r;
			rtail = &r->next;
			answered++;
		} else {
			*utail = r;
			utail = &r->next;
		}
	}
	results = recorded;
	if (d->notify_pending)
		deliver_outcomes(d);
	int fired = 0;
	if (want_timers &&
	    (fired = store_timers_due(d->store, now, TIMERS_PER_PASS, d->timer_ns, fire_timer,
				      d)) < 0)
		log_fields(AC_LOG_ERROR, "store: timers failed", "error", store_errmsg(d->store),
			   LOG_END);
	struct claim claim = {d, NULL, &claim.head, 0, NULL};
	unsigned room = d->oconf.concurrency - (d->inflight - (unsigned)answered);
	int claimed = !d->no_claims && d->next_send_ms && d->next_send_ms <= now && room > 0;
	if (claimed && store_outbox_claim(d->store, now, (int)room, claim_row, &claim) < 0)
		log_fields(AC_LOG_ERROR, "store: cannot claim outbox rows", "error",
			   store_errmsg(d->store), LOG_END);
	for (struct send_res *r = claim.unsendable; r; r = r->next)
		record_result(d, r, now); /* if that fails, the row waits for a restart */
	free_results(claim.unsendable);
	struct timespec c0, c1;
	clock_gettime(CLOCK_MONOTONIC, &c0);
	int failed = store_commit(d->store);
	clock_gettime(CLOCK_MONOTONIC, &c1);
	if (!failed) {
		size_t njobs = 0;
		for (struct job *j = jobs; j; j = j->next)
			njobs++;
		if (njobs)
			metrics_observe("aftercall_dispatch_batch_size", (double)njobs);
		metrics_observe("aftercall_commit_seconds",
				(double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9);
	}
	if (failed) {
		free_reqs(claim.head);
		park_results(d, results);
		park_results(d, unrecorded);
		log_fields(AC_LOG_ERROR, "store: commit failed; answering 503", "error",
			   store_errmsg(d->store), LOG_END);
		d->store_ok = 0;
		for (struct job *j = jobs; j; j = j->next) {
			if (j->status < 300) {
				j->status = 503;
				j->result = "store unavailable";
			}
		}
		return;
	}
	d->store_ok = 1;
	free_results(results);
	park_results(d, unrecorded);
	d->inflight = d->inflight - (unsigned)answered + (unsigned)claim.n;
	/* dispatcher_stop() may have taken the delivery thread away meanwhile;
	 * rows claimed too late stay in flight and go out after a restart. */
	pthread_mutex_lock(&d->mu);
	for (struct send_req *r = claim.head; r;) {
		struct send_req *next = r->next;
		if (d->outbox)
			outbox_submit(d->outbox, r);
		else
			send_req_free(r);
		r = next;
	}
	pthread_mutex_unlock(&d->mu);
	refresh_due(d);
	/* Due rows another host holds at this moment (PostgreSQL skips them)
	 * still look due: look again a little later, not at once. */
	if (want_timers && fired == 0 && d->next_due_ms && d->next_due_ms < now + SKIPPED_RETRY_MS)
		d->next_due_ms = now + SKIPPED_RETRY_MS;
	if (claimed && claim.n == 0 && d->next_send_ms && d->next_send_ms < now + SKIPPED_RETRY_MS)
		d->next_send_ms = now + SKIPPED_RETRY_MS;
}

static void *dispatch_main(void *arg)
{
	struct dispatcher *d = arg;
	for (;;) {
		pthread_mutex_lock(&d->mu);
		int idle = 0;
		for (;;) {
			if (d->head || d->results || !d->running)
				break;
			int64_t now = now_ms();
			int64_t until = now + 1000;
			if (d->next_due_ms && d->next_due_ms < until)
				until = d->next_due_ms;
			if (d->next_send_ms && d->inflight < d->oconf.concurrency && !d->no_claims &&
			    d->next_send_ms < until)
				until = d->next_send_ms;
			if (d->parked && d->parked_until < until)
				until = d->parked_until;
			if (until <= now)
				break;
			/* Wake at least once a second: the heartbeat /healthz
			 * reads, a retry of the store after a failure, and rows
			 * the command line made due. */
			struct timespec ts = {.tv_sec = until / 1000,
					      .tv_nsec = (long)(until % 1000) * 1000000};
			if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT) {
				idle = !d->head && !d->results;
				break;
			}
		}
		struct job *batch = d->head, *last = NULL;
		size_t n = 0;
		for (struct job *j = d->head; j && n < BATCH_MAX; j = j->next, n++)
			last = j;
		if (last) {
			d->head = last->next;
			if (!d->head)
				d->tail = NULL;
			last->next = NULL;
		} else {
			batch = NULL;
		}
		struct send_res *results = d->results;
		d->results = NULL;
		d->results_tail = &d->results;
		int stop = !d->running && !d->head && !d->results;
		pthread_mutex_unlock(&d->mu);
		if (d->parked && now_ms() >= d->parked_until) {
			struct send_res **t = &d->parked;
			while (*t)
				t = &(*t)->next;
			*t = results;
			results = d->parked;
			d->parked = NULL;
		}

		d->heartbeat_ms = now_ms();
		if (!d->store_ok && !batch) {
			if (store_probe(d->store) == 0) {
				d->store_ok = 1;
				log_fields(AC_LOG_INFO, "store: writable again", LOG_END);
			}
		}
		if (idle && d->store_ok) {
			refresh_due(d);
			d->notify_pending = 1;
		}
		run_batch(d, batch, results);
		for (struct job *j = batch; j;) {
			struct job *next = j->next;
			j->next = NULL;
			j->done(j);
			j = next;
		}
		if (stop)
			break;
	}
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

void dispatcher_replay(struct dispatcher *d, struct job *j)
{
	d->thread = pthread_self(); /* the services check they run on it */
	j->pre = -1;
	if (store_begin(d->store)) {
		j->status = 503;
		j->result = "store unavailable";
		return;
	}
	process_job(d, j);
	if (j->status == 200) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "id", j->dedupe, "route", j->route->path,
				      "type", j->type);
		char *detail = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		struct audit_rec r = {.ts_ms = now_ms(), .actor = "host", .kind = "event.replayed",
				      .request_id = j->request_id, .detail = detail};
		int bad = !detail || store_audit_append(d->store, &r);
		free(detail);
		if (bad) {
			store_rollback(d->store);
			j->status = 503;
			j->result = "store unavailable";
			return;
		}
	}
	if (store_commit(d->store)) {
		store_rollback(d->store);
		if (j->status < 300) {
			j->status = 503;
			j->result = "store unavailable";
		}
	}
}

struct ac_host *dispatcher_check_host(struct plugin *p, struct template_ref *templates)
{
	struct ac_host *h = calloc(1, sizeof *h);
	if (h)
		*h = (struct ac_host){NULL, p, 0, templates};
	return h;
}

/* Names the plugins with an on_timer callback, and says when the store
 * holds timers of others: they stay for a host that loads their plugin. */
static int set_timer_ns(struct dispatcher *d)
{
	json_t *names = json_array();
	for (size_t i = 0; names && i < d->nplugins; i++) {
		if (!PLUGIN_HAS(d->plugins[i].d, on_timer))
			continue;
		if (json_array_append_new(names, json_string(d->plugins[i].name))) {
			json_decref(names);
			names = NULL;
		}
	}
	d->timer_ns = names ? json_dumps(names, JSON_COMPACT) : NULL;
	json_decref(names);
	if (!d->timer_ns)
		return -1;
	long long all = store_timer_count(d->store, NULL);
	long long ours = store_timer_count(d->store, d->timer_ns);
	if (all >= 0 && ours >= 0 && all > ours) {
		char n[24];
		snprintf(n, sizeof n, "%lld", all - ours);
		log_fields(AC_LOG_WARN,
			   "timers of plugins this host does not load are left for a host that does",
			   "timers", n, LOG_END);
	}
	return 0;
}

struct dispatcher *dispatcher_new(const struct config *cfg, struct store *store,
				  struct template_ref *templates, struct plugin *plugins,
				  size_t nplugins, char *err, size_t errlen)
{
	struct dispatcher *d = calloc(1, sizeof *d);
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->cfg = cfg;
	d->store = store;
	d->templates = templates;
	d->plugins = plugins;
	d->nplugins = nplugins;
	d->store_ok = 1;
	d->emitted_tail = &d->emitted;
	d->results_tail = &d->results;
	d->oconf = (struct outbox_conf){cfg->outbox_concurrency, cfg->outbox_connect_timeout,
					cfg->outbox_timeout};
	d->rand_state = (unsigned)now_ms() ^ (unsigned)(uintptr_t)d;
	d->notify_pending = 1;
	/* Rows in flight when the last process died go out again, with the
	 * same idempotency key, so the receiver can drop a repeat. */
	if (store_begin(store) == 0) {
		if (store_outbox_requeue_inflight(store) || store_commit(store))
			store_rollback(store);
	}
	d->hosts = calloc(nplugins ? nplugins : 1, sizeof *d->hosts);
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < nplugins; i++) {
		d->hosts[i] = (struct ac_host){d, &plugins[i], i, templates};
		if (plugin_init(&plugins[i], &host_services, &d->hosts[i],
				cfg->plugins[i].config_json, err, errlen)) {
			dispatcher_free(d);
			return NULL;
		}
		log_fields(AC_LOG_INFO, "plugin loaded", "plugin", plugins[i].name, "version",
			   plugins[i].d->version ? plugins[i].d->version : "", "file",
			   plugins[i].file, LOG_END);
	}
	if (set_timer_ns(d)) {
		snprintf(err, errlen, "out of memory");
		dispatcher_free(d);
		return NULL;
	}
	refresh_due(d);
	return d;
}

int dispatcher_start(struct dispatcher *d)
{
	char err[256];
	d->outbox = outbox_start(&d->oconf, on_send_result, d, err, sizeof err);
	if (!d->outbox) {
		log_fields(AC_LOG_ERROR, "cannot start the delivery thread", "error", err, LOG_END);
		return -1;
	}
	d->running = 1;
	d->heartbeat_ms = now_ms();
	if (pthread_create(&d->thread, NULL, dispatch_main, d)) {
		d->running = 0;
		outbox_stop(d->outbox, 0);
		d->outbox = NULL;
		return -1;
	}
	d->started = 1;
	return 0;
}

void dispatcher_submit(struct dispatcher *d, struct job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&d->mu);
	if (!d->running) {
		pthread_mutex_unlock(&d->mu);
		j->status = 503;
		j->result = "shutting down";
		j->done(j);
		return;
	}
	if (d->tail)
		d->tail->next = j;
	else
		d->head = j;
	d->tail = j;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void dispatcher_stop(struct dispatcher *d)
{
	if (d->started) {
		/* Claim nothing new; give the requests in flight a moment to
		 * finish so their results are recorded; the dispatcher then
		 * commits what it holds. */
		pthread_mutex_lock(&d->mu);
		d->no_claims = 1;
		struct outbox *o = d->outbox;
		d->outbox = NULL;
		pthread_mutex_unlock(&d->mu);
		outbox_stop(o, OUTBOX_GRACE_MS);
		pthread_mutex_lock(&d->mu);
		d->running = 0;
		pthread_cond_signal(&d->cv);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->thread, NULL);
		d->started = 0;
	}
}

void dispatcher_free(struct dispatcher *d)
{
	if (!d)
		return;
	dispatcher_stop(d);
	for (size_t i = 0; i < d->nplugins; i++)
		plugin_unload(&d->plugins[i]);
	free_derived(d->emitted);
	free_results(d->results);
	free_results(d->parked);
	free(d->hosts);
	free(d->timer_ns);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
}

int dispatcher_healthy(struct dispatcher *d)
{
	return d->started && d->store_ok && now_ms() - d->heartbeat_ms < 5000;
}
