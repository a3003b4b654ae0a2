/*
 * Logging. Every line is one JSON object: time, level, message, then the
 * caller's string fields. Callers never pass secrets; nothing here can tell
 * a secret from a key, so the rule lives at the call sites.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "strbuf.h"

static volatile ac_log_level min_level = AC_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(ac_log_level level)
{
	min_level = level;
}

ac_log_level log_get_level(void)
{
	return min_level;
}

int log_level_parse(const char *s, ac_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (ac_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = AC_LOG_WARN;
		return 0;
	}
	return -1;
}

void log_fieldsv(ac_log_level level, const char *msg, va_list ap)
{
	if (level < min_level)
		return;
	struct timespec ts;
	struct tm tm;
	char when[96];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

	struct strbuf b;
	sb_init(&b);
	sb_puts(&b, "{\"ts\":\"");
	sb_puts(&b, when);
	sb_puts(&b, "\",\"level\":\"");
	sb_puts(&b, level_names[level]);
	sb_puts(&b, "\",\"msg\":");
	sb_json_str(&b, msg, strlen(msg));
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		sb_putc(&b, ',');
		sb_json_str(&b, k, strlen(k));
		sb_putc(&b, ':');
		if (v)
			sb_json_str(&b, v, strlen(v));
		else
			sb_puts(&b, "null");
	}
	sb_puts(&b, "}\n");
	if (!b.oom) {
		ssize_t n = write(STDERR_FILENO, b.data, b.len);
		(void)n;
	}
	sb_free(&b);
}

void log_fields(ac_log_level level, const char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	log_fieldsv(level, msg, ap);
	va_end(ap);
}

void log_msg(ac_log_level level, const char *fmt, ...)
{
	if (level < min_level)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_fields(level, msg, LOG_END);
}
