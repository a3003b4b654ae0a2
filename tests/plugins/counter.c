/*
 * A test plugin that records what it sees: one line per event
 * ("event TYPE ID") and per timer ("timer KEY VALUE") appended to the file
 * named by config.file. With config.timer_ms it also sets a durable timer
 * per event, keyed on the event id, due that many ms later. With
 * config.fail_type it fails events of that type, to test rollback; with
 * config.sleep_type it records events of that type, then sleeps 300 ms. With
 * config.emit it emits a derived event of that type for each received one.
 * With config.render it renders that template with the event body as the
 * context and records "rendered SUBJECT"; with config.require as well, it
 * declares at init that it renders that template, and with
 * config.require_late it tries again in each event and records
 * "late RC MESSAGE". With config.send_url it puts a
 * MultiMail-shaped send in the outbox per event (idempotency key: the event
 * id; bearer: config.send_key) and records each outcome as
 * "delivery KEY done|dead STATUS ATTEMPTS". With config.received it also
 * records "received ID MS", the event's received_ms. With config.audit it
 * appends an audit record "counter.seen" per event, subject the event id,
 * and goes on whatever that returns, as a careless plugin would. With
 * config.refuse_key, its on_attempt records "attempt KEY N" for every
 * attempt at a request whose key starts with that, refuses the first, gives
 * a malformed header line for the second and "X-Counter-Attempt: N" after.
 *
 * It uses only the installed headers, so the out-of-tree build test
 * compiles this very file against `pkg-config --cflags aftercall-plugin`.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep, under -std=c11 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <aftercall/plugin.h>

struct state {
	const ac_host_services *svc;
	ac_host *host;
	char file[1024];
	char fail_type[128];
	char sleep_type[128];
	char emit[128];
	char render[128];
	char send_url[512];
	char send_key[128];
	char refuse_key[64];
	int max_attempts;
	long timer_ms;
	int received;
	int require_late;
	int audit;
};

/* The config is tiny: pick out "key":"string" or "key":number by hand so
 * the plugin needs nothing but the ABI header. */
static int get_field(const char *json, const char *key, char *out, size_t outlen)
{
	char pat[160];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(json, pat);
	if (!p)
		return 0;
	p += strlen(pat);
	size_t n = 0;
	if (*p == '"') {
		p++;
		while (*p && *p != '"' && n + 1 < outlen)
			out[n++] = *p++;
	} else {
		while (*p && *p != ',' && *p != '}' && n + 1 < outlen)
			out[n++] = *p++;
	}
	out[n] = '\0';
	return 1;
}

static void record(struct state *s, const char *kind, const char *a, const char *b, size_t blen)
{
	char line[2048];
	int n = snprintf(line, sizeof line, "%s %s %.*s\n", kind, a, (int)blen, b);
	int fd = open(s->file, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) < 0)
			s->svc->log(s->host, AC_LOG_ERROR, "cannot write the record file");
		close(fd);
	}
}

static int init(const ac_host_services *svc, ac_host *host, const char *config_json, void **out,
		char *err, size_t errlen)
{
	struct state *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	s->svc = svc;
	s->host = host;
	if (!get_field(config_json, "file", s->file, sizeof s->file)) {
		snprintf(err, errlen, "config.file is required");
		free(s);
		return -1;
	}
	char num[32];
	if (get_field(config_json, "timer_ms", num, sizeof num))
		s->timer_ms = atol(num);
	get_field(config_json, "fail_type", s->fail_type, sizeof s->fail_type);
	get_field(config_json, "sleep_type", s->sleep_type, sizeof s->sleep_type);
	get_field(config_json, "emit", s->emit, sizeof s->emit);
	get_field(config_json, "render", s->render, sizeof s->render);
	get_field(config_json, "send_url", s->send_url, sizeof s->send_url);
	get_field(config_json, "send_key", s->send_key, sizeof s->send_key);
	get_field(config_json, "refuse_key", s->refuse_key, sizeof s->refuse_key);
	if (get_field(config_json, "max_attempts", num, sizeof num))
		s->max_attempts = atoi(num);
	if (get_field(config_json, "received", num, sizeof num))
		s->received = atoi(num);
	if (get_field(config_json, "require_late", num, sizeof num))
		s->require_late = atoi(num);
	if (get_field(config_json, "audit", num, sizeof num))
		s->audit = atoi(num);
	if (s->render[0] && get_field(config_json, "require", num, sizeof num) && atoi(num) &&
	    svc->template_require(host, s->render, err, errlen)) {
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

static ac_verdict on_event(void *state, const ac_event *ev, char *err, size_t errlen)
{
	struct state *s = state;
	if (s->fail_type[0] && !strcmp(ev->type, s->fail_type)) {
		snprintf(err, errlen, "configured to fail %s", ev->type);
		return AC_FAIL;
	}
	record(s, "event", ev->type, ev->id, strlen(ev->id));
	if (s->received) {
		char ms[32];
		snprintf(ms, sizeof ms, "%lld", (long long)ev->received_ms);
		record(s, "received", ev->id, ms, strlen(ms));
	}
	if (s->audit)
		(void)s->svc->audit(s->host, "counter.seen", ev->id, NULL);
	if (s->sleep_type[0] && !strcmp(ev->type, s->sleep_type)) {
		/* Recorded first: the events sent once it is wait in one batch. */
		struct timespec t = {0, 300 * 1000 * 1000};
		nanosleep(&t, NULL);
	}
	if (s->timer_ms > 0 &&
	    s->svc->kv_put(s->host, ev->id, ev->type, strlen(ev->type),
			   s->svc->now_ms(s->host) + s->timer_ms)) {
		snprintf(err, errlen, "kv_put failed");
		return AC_FAIL;
	}
	if (s->render[0]) {
		ac_rendered r;
		char rerr[512];
		if (s->svc->render(s->host, s->render, ev->body, ev->body_len, &r, rerr, sizeof rerr)) {
			snprintf(err, errlen, "render: %s", rerr);
			return AC_FAIL;
		}
		record(s, "rendered", r.subject ? r.subject : "", "", 0);
		s->svc->render_free(s->host, &r);
		if (s->require_late) {
			char why[256] = "";
			int rc = s->svc->template_require(s->host, s->render, why, sizeof why);
			record(s, "late", rc ? "-1" : "0", why, strlen(why));
		}
	}
	if (s->send_url[0] && ev->depth == 0) {
		char body[1024], auth[200];
		snprintf(body, sizeof body,
			 "{\"to\":[\"caller@example.com\"],\"subject\":\"Follow-up %s\","
			 "\"markdown\":\"Thank you for your call.\",\"idempotency_key\":\"%s\"}",
			 ev->id, ev->id);
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->send_key);
		const char *headers[] = {"Content-Type: application/json", auth, NULL};
		ac_request req = {
			.url = s->send_url,
			.headers = headers,
			.body = body,
			.body_len = strlen(body),
			.idempotency_key = ev->id,
			.tag = ev->type,
			.max_attempts = s->max_attempts,
		};
		if (s->svc->outbox_enqueue(s->host, &req) < 0) {
			snprintf(err, errlen, "outbox_enqueue failed");
			return AC_FAIL;
		}
	}
	if (s->emit[0] && ev->depth == 0 && s->svc->emit(s->host, s->emit, "{}", 2)) {
		snprintf(err, errlen, "emit failed");
		return AC_FAIL;
	}
	return AC_CONTINUE;
}

static int on_timer(void *state, const char *key, const char *value, size_t len)
{
	struct state *s = state;
	record(s, "timer", key, value, len);
	return 0;
}

static int on_delivery(void *state, const ac_delivery *d)
{
	struct state *s = state;
	char what[64];
	snprintf(what, sizeof what, "%s %d %d", d->ok ? "done" : "dead", d->status, d->attempts);
	record(s, "delivery", d->idempotency_key, what, strlen(what));
	return 0;
}

static int on_attempt(void *state, const ac_request *req, unsigned attempt, char *headers,
		      size_t size)
{
	struct state *s = state;
	if (!s->refuse_key[0] ||
	    strncmp(req->idempotency_key, s->refuse_key, strlen(s->refuse_key)))
		return 0;
	char n[16];
	snprintf(n, sizeof n, "%u", attempt);
	record(s, "attempt", req->idempotency_key, n, strlen(n));
	if (attempt == 1) {
		snprintf(headers, size, "counter refuses attempt %u", attempt);
		return -1;
	}
	if (attempt == 2)
		snprintf(headers, size, "X-Counter-Attempt %u\n", attempt);
	else
		snprintf(headers, size, "X-Counter-Attempt: %u\n", attempt);
	return 0;
}

static void destroy(void *state)
{
	free(state);
}

AC_PLUGIN_EXPORT const ac_plugin aftercall_plugin = {
	AC_PLUGIN_HEADER,
	.name = "counter",
	.version = "1.0.0",
	.init = init,
	.on_event = on_event,
	.on_timer = on_timer,
	.on_delivery = on_delivery,
	.destroy = destroy,
	.on_attempt = on_attempt,
};
