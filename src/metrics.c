/*
 * The metrics registry. One process-wide table behind one mutex: records are
 * a few per request and the lock is held for a lookup and an add, far below
 * what the HTTP threads and the dispatcher spend elsewhere.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "strbuf.h"

#define MAX_FAMILIES 64
#define MAX_SERIES 64 /* label values per family; the rest count as "other" */
#define NBUCKETS 12

struct series {
	char *value;
	double v;
	double buckets[NBUCKETS]; /* histograms: counts per upper bound */
	double sum;
};

struct family {
	char *name;
	enum metric_type type;
	char *label;
	char *help;
	const double *bounds; /* histograms */
	struct series s[MAX_SERIES];
	size_t n;
};

static const double batch_bounds[NBUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048};
static const double latency_bounds[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						0.05,	0.1,   0.25,   0.5,   1,	   5};

/* The host's own families, with their HELP text. */
static const struct builtin {
	const char *name;
	enum metric_type type;
	const char *label;
	const char *help;
	const double *bounds;
} builtins[] = {
	{"aftercall_http_requests_total", METRIC_COUNTER, "route,status",
	 "HTTP requests answered, by route and status.", NULL},
	{"aftercall_verify_refusals_total", METRIC_COUNTER, "reason",
	 "Requests refused by a verifier, by reason.", NULL},
	{"aftercall_http_cut_off_total", METRIC_COUNTER, NULL,
	 "Connections shut down because a request did not arrive whole within "
	 "limits.request_timeout.", NULL},
	{"aftercall_events_dispatched_total", METRIC_COUNTER, "type",
	 "New events run through a plugin chain, by type.", NULL},
	{"aftercall_duplicates_total", METRIC_COUNTER, NULL,
	 "Events answered as duplicates and not dispatched again.", NULL},
	{"aftercall_dispatch_batch_size", METRIC_HISTOGRAM, NULL,
	 "Requests committed together by one dispatcher batch.", batch_bounds},
	{"aftercall_commit_seconds", METRIC_HISTOGRAM, NULL,
	 "Time to commit one dispatcher batch.", latency_bounds},
	{"aftercall_outbox_rows", METRIC_GAUGE, "state", "Outbox rows, by state.", NULL},
	{"aftercall_delivery_attempts_total", METRIC_COUNTER, "outcome",
	 "Outbound delivery attempts, by outcome (done, retry, dead).", NULL},
	{"aftercall_delivery_seconds", METRIC_HISTOGRAM, NULL,
	 "Time from sending an outbound request to its answer.", latency_bounds},
	{"aftercall_pending_timers", METRIC_GAUGE, NULL,
	 "Durable timers of the plugins this host loads, not yet fired.", NULL},
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct family families[MAX_FAMILIES];
static size_t nfamilies;

/* Finds or makes a family; called with mu held. */
static struct family *family(const char *name, enum metric_type type, const char *label,
			     const char *help)
{
	for (size_t i = 0; i < nfamilies; i++)
		if (!strcmp(families[i].name, name))
			return &families[i];
	if (nfamilies == MAX_FAMILIES)
		return NULL;
	struct family *f = &families[nfamilies];
	const double *bounds = NULL;
	for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
		if (!strcmp(builtins[i].name, name)) {
			type = builtins[i].type;
			label = builtins[i].label;
			help = builtins[i].help;
			bounds = builtins[i].bounds;
		}
	}
	f->name = strdup(name);
	f->type = type;
	f->label = label ? strdup(label) : NULL;
	f->help = strdup(help ? help : name);
	f->bounds = bounds ? bounds : latency_bounds;
	nfamilies++;
	return f;
}

static struct series *series(struct family *f, const char *value)
{
	const char *v = f->label ? (value ? value : "") : "";
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->s[i].value, v))
			return &f->s[i];
	if (f->n == MAX_SERIES - 1 && strcmp(v, "other"))
		return series(f, "other");
	if (f->n == MAX_SERIES)
		return NULL;
	struct series *s = &f->s[f->n];
	memset(s, 0, sizeof *s);
	s->value = strdup(v);
	if (!s->value)
		return NULL;
	f->n++;
	return s;
}

int metrics_declare(const char *name, enum metric_type type, const char *label, const char *help)
{
	pthread_mutex_lock(&mu);
	struct family *f = family(name, type, label, help);
	pthread_mutex_unlock(&mu);
	return f ? 0 : -1;
}

static void update(const char *name, enum metric_type type, const char *value, double v, int set)
{
	pthread_mutex_lock(&mu);
	struct family *f = family(name, type, NULL, NULL);
	struct series *s = f ? series(f, value) : NULL;
	if (s) {
		if (f->type == METRIC_HISTOGRAM) {
			for (int i = 0; i < NBUCKETS; i++)
				if (v <= f->bounds[i])
					s->buckets[i] += 1;
			s->sum += v;
			s->v += 1;
		} else if (set) {
			s->v = v;
		} else {
			s->v += v;
		}
	}
	pthread_mutex_unlock(&mu);
}

void metrics_add(const char *name, const char *value, double delta)
{
	update(name, METRIC_COUNTER, value, delta, 0);
}

void metrics_set(const char *name, const char *value, double v)
{
	update(name, METRIC_GAUGE, value, v, 1);
}

void metrics_observe(const char *name, double v)
{
	update(name, METRIC_HISTOGRAM, NULL, v, 0);
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static void put_label(struct strbuf *b, const char *name, const char *value)
{
	sb_puts(b, name);
	sb_puts(b, "=\"");
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			sb_putc(b, '\\');
		if (*p == '\n') {
			sb_puts(b, "\\n");
			continue;
		}
		sb_putc(b, *p);
	}
	sb_putc(b, '"');
}

/* A family with two labels ("route,status") takes its values joined the
 * same way; the last value may hold commas. */
static void put_labels(struct strbuf *b, const char *names, const char *values)
{
	const char *comma = strchr(names, ',');
	if (!comma) {
		put_label(b, names, values);
		return;
	}
	char n1[64], v1[512];
	snprintf(n1, sizeof n1, "%.*s", (int)(comma - names), names);
	const char *vc = strchr(values, ',');
	snprintf(v1, sizeof v1, "%.*s", vc ? (int)(vc - values) : (int)strlen(values), values);
	put_label(b, n1, v1);
	sb_putc(b, ',');
	put_label(b, comma + 1, vc ? vc + 1 : "");
}

char *metrics_render(size_t *len)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	struct strbuf b;
	sb_init(&b);
	pthread_mutex_lock(&mu);
	/* Every built-in family is shown, even before its first sample. */
	for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
		family(builtins[i].name, builtins[i].type, NULL, NULL);
	for (size_t i = 0; i < nfamilies; i++) {
		struct family *f = &families[i];
		sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
			  types[f->type]);
		if (f->n == 0 && !f->label && f->type != METRIC_HISTOGRAM)
			sb_printf(&b, "%s 0\n", f->name);
		if (f->n == 0 && f->type == METRIC_HISTOGRAM) {
			for (int k = 0; k < NBUCKETS; k++)
				sb_printf(&b, "%s_bucket{le=\"%g\"} 0\n", f->name, f->bounds[k]);
			sb_printf(&b, "%s_bucket{le=\"+Inf\"} 0\n%s_sum 0\n%s_count 0\n", f->name,
				  f->name, f->name);
		}
		for (size_t j = 0; j < f->n; j++) {
			struct series *s = &f->s[j];
			if (f->type == METRIC_HISTOGRAM) {
				for (int k = 0; k < NBUCKETS; k++)
					sb_printf(&b, "%s_bucket{le=\"%g\"} %.17g\n", f->name,
						  f->bounds[k], s->buckets[k]);
				sb_printf(&b, "%s_bucket{le=\"+Inf\"} %.17g\n", f->name, s->v);
				sb_printf(&b, "%s_sum %.17g\n%s_count %.17g\n", f->name, s->sum,
					  f->name, s->v);
				continue;
			}
			sb_puts(&b, f->name);
			if (f->label) {
				sb_putc(&b, '{');
				put_labels(&b, f->label, s->value);
				sb_putc(&b, '}');
			}
			sb_printf(&b, " %.17g\n", s->v);
		}
	}
	pthread_mutex_unlock(&mu);
	*len = b.len;
	return sb_steal(&b);
}
