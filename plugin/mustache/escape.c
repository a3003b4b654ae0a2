/*
 * Escapers for {{x}}: html, markdown and text. See escape.h for the rules.
 *
 * Each escaper classifies bytes through a 256-entry table, copies runs of
 * bytes that need nothing with one memcpy, and writes straight into the
 * output buffer after reserving room (values are mostly plain text, so the
 * common case is one table scan and one copy).
 */
#include "escape.h"
#include "json.h"

#include <stdint.h>
#include <string.h>

#define U_FFFD "\xEF\xBF\xBD"
#define U_ZWSP "\xE2\x80\x8B" /* U+200B ZERO WIDTH SPACE */

/* Writes go straight into the buffer once room is reserved. */
static inline int need(struct mustache_buf *b, size_t k)
{
	return mustache_buf_reserve(b, k);
}

static inline void raw_put(struct mustache_buf *b, const void *s, size_t n)
{
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static inline void raw_putc(struct mustache_buf *b, char c)
{
	b->data[b->len++] = c;
}

/* Ends a write sequence: the buffer stays NUL-terminated. */
static inline int done(struct mustache_buf *b)
{
	if (b->failed)
		return -1;
	if (b->data)
		b->data[b->len] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* HTML                                                                */

/* Nonzero for & < > " and NUL (which would end the output early for
 * whoever reads it as a C string: U+FFFD). */
static const unsigned char html_special[256] = {
	[0] = 1, ['&'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1,
};

int escape_html(struct mustache_buf *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t j = i;
		const char *ent;
		size_t elen;

		while (j < n && !html_special[u[j]])
			j++;
		if (j > i) {
			if (need(out, j - i))
				return -1;
			raw_put(out, s + i, j - i);
		}
		if (j == n)
			break;
		switch (u[j]) {
		case '&': ent = "&amp;"; elen = 5; break;
		case '<': ent = "&lt;"; elen = 4; break;
		case '>': ent = "&gt;"; elen = 4; break;
		case 0: ent = U_FFFD; elen = 3; break;
		default: ent = "&quot;"; elen = 6; break;
		}
		if (need(out, elen))
			return -1;
		raw_put(out, ent, elen);
		i = j + 1;
	}
	return done(out);
}

/* ------------------------------------------------------------------ */
/* Text                                                                */

/* 1: white space, folded; 2: NUL, which becomes U+FFFD. */
static const unsigned char text_ws[256] = {
	[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\v'] = 1, ['\f'] = 1, [0] = 2,
};

int escape_text(struct mustache_buf *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	/* at most three output bytes per input byte (U+FFFD for NUL) */
	if (n && need(out, 3 * n))
		return -1;
	while (i < n) {
		size_t j = i;

		while (j < n && !text_ws[u[j]])
			j++;
		raw_put(out, s + i, j - i);
		if (j == n)
			break;
		if (text_ws[u[j]] == 2) {
			raw_put(out, U_FFFD, 3);
			i = j + 1;
			continue;
		}
		raw_putc(out, ' ');
		while (j < n && text_ws[u[j]] == 1)
			j++;
		i = j;
	}
	return done(out);
}

/* ------------------------------------------------------------------ */
/* Markdown                                                            */

/* Bytes the Markdown escaper stops at: ASCII punctuation (1), CR and LF
 * (2), NUL (3), 0x80-0xFF (4, checked as UTF-8). Everything else, blanks
 * included, is copied as it is; blanks at either end of a line are turned
 * into entities apart from this table. */
enum { MD_PLAIN, MD_PUNCT, MD_EOL, MD_NUL, MD_HIGH };

#define P MD_PUNCT
static const unsigned char md_class[256] = {
	[0] = MD_NUL,
	['\n'] = MD_EOL, ['\r'] = MD_EOL,
	['!'] = P, ['"'] = P, ['#'] = P, ['$'] = P, ['%'] = P, ['&'] = P,
	['\''] = P, ['('] = P, [')'] = P, ['*'] = P, ['+'] = P, [','] = P,
	['-'] = P, ['.'] = P, ['/'] = P, [':'] = P, [';'] = P, ['<'] = P,
	['='] = P, ['>'] = P, ['?'] = P, ['@'] = P, ['['] = P, ['\\'] = P,
	[']'] = P, ['^'] = P, ['_'] = P, ['`'] = P, ['{'] = P, ['|'] = P,
	['}'] = P, ['~'] = P,
#define H4(b) [b] = MD_HIGH, [b + 1] = MD_HIGH, [b + 2] = MD_HIGH, [b + 3] = MD_HIGH
#define H16(b) H4(b), H4(b + 4), H4(b + 8), H4(b + 12)
	H16(0x80), H16(0x90), H16(0xA0), H16(0xB0),
	H16(0xC0), H16(0xD0), H16(0xE0), H16(0xF0),
#undef H16
#undef H4
};
#undef P

/*
 * Eight bytes at a time: nonzero when all eight are ASCII letters, digits or
 * spaces, which the escaper copies as they are. Each lane's high bit
 * answers for its byte; lanes never carry into each other (every sum stays
 * below 0x100 once the high bits are cleared).
 */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t lanes_ge(uint64_t a, unsigned char lo)
{
	return (a + (0x80 - lo) * ONES) & HIGHS;
}

static inline uint64_t lanes_le(uint64_t a, unsigned char hi)
{
	return ~(a + (0x7F - hi) * ONES) & HIGHS;
}

static inline int all_alnum_space(uint64_t x)
{
	uint64_t a = x & ~HIGHS, l = a | 0x20 * ONES;
	uint64_t letter = lanes_ge(l, 'a') & lanes_le(l, 'z');
	uint64_t digit = lanes_ge(a, '0') & lanes_le(a, '9');
	uint64_t t = a ^ 0x20 * ONES;
	uint64_t space = ~((t + 0x7F * ONES) | t) & HIGHS;

	return ((letter | digit | space) & ~x & HIGHS) == HIGHS;
}

static int is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Output bytes per input byte at most: "\@" and a zero-width space. */
#define MD_MAX 5

/* Appends blanks s[i, j) as entities; *o is the write position, and room
 * for MD_MAX bytes per input byte from `rest` on is kept. */
static int blank_entities(struct mustache_buf *out, char **o, const char *s,
			  size_t i, size_t j, size_t rest)
{
	out->len = (size_t)(*o - out->data);
	if (need(out, 5 * (j - i) + MD_MAX * rest))
		return -1;
	*o = out->data + out->len;
	for (; i < j; i++) {
		if (s[i] == '\t') {
			memcpy(*o, "&#9;", 4);
			*o += 4;
		} else {
			memcpy(*o, "&#32;", 5);
			*o += 5;
		}
	}
	return 0;
}

/*
 * One pass over the value, writing straight into the buffer: room for
 * MD_MAX output bytes per input byte is reserved first (punctuation takes
 * two, '@' five, U+FFFD three, a line break two for one or two). Plain bytes, blanks
 * included, are copied in a tight loop; blanks that start a line become
 * entities before it, and blanks that end one were copied and are taken
 * back and written as entities when the line ends.
 */
int escape_markdown(struct mustache_buf *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, lead, j, k;
	char *o;

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	if (n > (SIZE_MAX - 16) / 8)
		return mustache_buf_grow(out, SIZE_MAX);	/* fails */
	if (need(out, MD_MAX * n))
		return -1;
	o = out->data + out->len;
	for (;;) {
		/* a line starts at i: its leading blanks */
		for (j = i; j < n && is_blank(u[j]); j++)
			;
		if (j > i && blank_entities(out, &o, s, i, j, n - j))
			return -1;
		i = lead = j;
		for (;;) {
			unsigned char c;

			while (n - i >= 8) {
				uint64_t x;

				memcpy(&x, s + i, 8);
				if (!all_alnum_space(x))
					break;
				memcpy(o, &x, 8);
				o += 8;
				i += 8;
			}
			while (i < n && md_class[u[i]] == MD_PLAIN)
				*o++ = (char)u[i++];
			if (i == n)
				break;
			c = u[i];
			if (md_class[c] == MD_PUNCT) {
				o[0] = '\\';
				o[1] = (char)c;
				o += 2;
				i++;
				/* GFM links email addresses after the escapes are
				 * gone: a zero-width space after '@' leaves no
				 * domain to link. */
				if (c == '@') {
					memcpy(o, U_ZWSP, 3);
					o += 3;
				}
			} else if (md_class[c] == MD_HIGH &&
				   (k = cj_utf8_len(u + i, n - i)) != 0) {
				memcpy(o, s + i, k);
				o += k;
				i += k;
			} else if (md_class[c] == MD_EOL) {
				break;
			} else {	/* NUL, ill-formed UTF-8 */
				memcpy(o, U_FFFD, 3);
				o += 3;
				i++;
			}
		}
		/* the line's trailing blanks were copied: make them entities */
		for (k = i; k > lead && is_blank(u[k - 1]); k--)
			;
		if (k < i) {
			o -= i - k;
			if (blank_entities(out, &o, s, k, i, n - i))
				return -1;
		}
		if (i == n)
			break;
		memcpy(o, "\\\n", 2);
		o += 2;
		if (u[i] == '\r' && i + 1 < n && u[i + 1] == '\n')
			i++;
		i++;
	}
	out->len = (size_t)(o - out->data);
	return done(out);
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
