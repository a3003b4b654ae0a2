/* A growable byte buffer. Allocation failure is sticky (oom) so callers can
 * append freely and check once at the end. */
#ifndef AC_STRBUF_H
#define AC_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *data; /* always NUL-terminated when not NULL */
	size_t len;
	size_t cap;
	int oom;
};

void sb_init(struct strbuf *b);
void sb_free(struct strbuf *b);
void sb_reset(struct strbuf *b);
int sb_grow(struct strbuf *b, size_t extra);
void sb_add(struct strbuf *b, const void *p, size_t n);
void sb_puts(struct strbuf *b, const char *s);
void sb_putc(struct strbuf *b, char c);
void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a quoted JSON string; bytes that are not valid UTF-8 are
 * written as U+FFFD so the line stays valid JSON. */
void sb_json_str(struct strbuf *b, const char *s, size_t n);
/* Hands the buffer over: returns data (never NULL unless oom) and resets b. */
char *sb_steal(struct strbuf *b);

#endif
