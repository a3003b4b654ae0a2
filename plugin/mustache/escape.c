/*
 * Escapers for {{x}}: html, markdown and text. See escape.h for the rules.
 */
#include "escape.h"

#include <string.h>

#define U_FFFD "\xEF\xBF\xBD"

/* Appends s[from, to) when not empty. */
static int flush(struct mustache_buf *out, const char *s, size_t from,
		 size_t to)
{
	return to > from ? mustache_buf_put(out, s + from, to - from) : 0;
}

int escape_html(struct mustache_buf *out, const char *s, size_t n)
{
	size_t i, done = 0;

	for (i = 0; i < n; i++) {
		const char *ent;

		switch (s[i]) {
		case '&': ent = "&amp;"; break;
		case '<': ent = "&lt;"; break;
		case '>': ent = "&gt;"; break;
		case '"': ent = "&quot;"; break;
		default: continue;
		}
		if (flush(out, s, done, i) ||
		    mustache_buf_put(out, ent, strlen(ent)))
			return -1;
		done = i + 1;
	}
	return flush(out, s, done, n);
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	       c == '\v' || c == '\f';
}

int escape_text(struct mustache_buf *out, const char *s, size_t n)
{
	size_t i = 0, done = 0;

	while (i < n) {
		if (!is_ws(s[i])) {
			i++;
			continue;
		}
		if (flush(out, s, done, i) || mustache_buf_putc(out, ' '))
			return -1;
		while (i < n && is_ws(s[i]))
			i++;
		done = i;
	}
	return flush(out, s, done, n);
}

/* ------------------------------------------------------------------ */
/* Markdown                                                            */

/* Every ASCII punctuation character may be backslash-escaped in CommonMark. */
static int is_md_punct(unsigned char c)
{
	return c && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c);
}

static int is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* Length of the well-formed UTF-8 sequence at p, or 0 if there is none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];

	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4)
		return 0;	/* continuation byte, overlong, > U+10FFFF */
	if (c < 0xE0)
		return n >= 2 && is_cont(p[1]) ? 2 : 0;
	if (c < 0xF0) {
		if (n < 3 || !is_cont(p[1]) || !is_cont(p[2]))
			return 0;
		if ((c == 0xE0 && p[1] < 0xA0) ||	/* overlong */
		    (c == 0xED && p[1] >= 0xA0))	/* surrogate */
			return 0;
		return 3;
	}
	if (n < 4 || !is_cont(p[1]) || !is_cont(p[2]) || !is_cont(p[3]))
		return 0;
	if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
		return 0;
	return 4;
}

static int put_blank_entity(struct mustache_buf *out, char c)
{
	return c == '\t' ? mustache_buf_put(out, "&#9;", 4) :
			   mustache_buf_put(out, "&#32;", 5);
}

/* Escapes the inside of one line (no blanks at either end, no CR/LF). */
static int md_inline(struct mustache_buf *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, done = 0, k;

	while (i < n) {
		if (is_md_punct(u[i])) {
			if (flush(out, s, done, i) ||
			    mustache_buf_putc(out, '\\'))
				return -1;
			done = i++;	/* the character itself follows */
			continue;
		}
		k = u[i] ? utf8_len(u + i, n - i) : 0;
		if (k) {
			i += k;
			continue;
		}
		if (flush(out, s, done, i) ||
		    mustache_buf_put(out, U_FFFD, 3))
			return -1;
		done = ++i;
	}
	return flush(out, s, done, n);
}

static int md_line(struct mustache_buf *out, const char *s, size_t n)
{
	size_t lead = 0, trail = 0, i;

	while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
		lead++;
	while (trail < n - lead &&
	       (s[n - 1 - trail] == ' ' || s[n - 1 - trail] == '\t'))
		trail++;
	for (i = 0; i < lead; i++)
		if (put_blank_entity(out, s[i]))
			return -1;
	if (md_inline(out, s + lead, n - lead - trail))
		return -1;
	for (i = n - trail; i < n; i++)
		if (put_blank_entity(out, s[i]))
			return -1;
	return 0;
}

int escape_markdown(struct mustache_buf *out, const char *s, size_t n)
{
	size_t i = 0, j;

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	for (;;) {
		for (j = i; j < n && s[j] != '\n' && s[j] != '\r'; j++)
			;
		if (md_line(out, s + i, j - i))
			return -1;
		if (j >= n)
			break;
		if (mustache_buf_put(out, "\\\n", 2))
			return -1;
		i = j + 1;
		if (s[j] == '\r' && i < n && s[i] == '\n')
			i++;
	}
	return out->failed ? -1 : 0;
}

mustache_escape_fn escape_for_mode(ac_escape mode)
{
	switch (mode) {
	case AC_ESCAPE_HTML: return escape_html;
	case AC_ESCAPE_MARKDOWN: return escape_markdown;
	case AC_ESCAPE_TEXT: return escape_text;
	}
	return NULL;
}
