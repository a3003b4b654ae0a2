/* JSON-lines logging on stderr. One line per call, written with one write(2)
 * so lines from different threads never interleave. */
#ifndef AC_LOG_H
#define AC_LOG_H

#include <aftercall/plugin.h>

void log_set_level(ac_log_level level);
ac_log_level log_get_level(void);
int log_level_parse(const char *s, ac_log_level *out);

/* Closes the field list of log_fields(): a typed null pointer, as a
 * variadic argument must be. */
#define LOG_END ((const char *)0)

/* Logs `msg` with optional string fields given as key, value pairs and
 * closed by LOG_END: log_fields(AC_LOG_INFO, "started", "listen", addr, LOG_END). */
void log_fields(ac_log_level level, const char *msg, ...);
void log_fieldsv(ac_log_level level, const char *msg, va_list ap);

/* printf-style message with no extra fields. */
void log_msg(ac_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
