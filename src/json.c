/*
 * The JSON parser (see json.h): recursive descent over a private copy of
 * the text, strings decoded in place in that copy (a decoded string is
 * never longer than its source), and every value in one arena that is
 * freed whole. Objects of more than HASH_MIN members get a hash index;
 * smaller ones are searched from the end (last key wins).
 */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_MIN 8
#define ALIGN 16

/* ------------------------------------------------------------------ */
/* Arena                                                               */

struct chunk {
	struct chunk *next;
	size_t cap, used;
	_Alignas(ALIGN) unsigned char data[];
};

struct cj_doc {
	struct cj_value root;
	struct chunk *chunks;	/* the first is allocated with the doc */
	char *text;		/* the copy of the input */
};

/* Hash index of a large object, stored just before its members. */
struct cj_index {
	const uint32_t *slot;	/* member index + 1; 0: empty */
	size_t mask;
};

static void *arena_alloc(struct cj_doc *d, size_t size)
{
	struct chunk *c = d->chunks;
	void *p;

	size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (c->cap - c->used < size) {
		size_t cap = c->cap * 2;

		if (cap < size)
			cap = size;
		if (cap > SIZE_MAX - sizeof(*c))
			return NULL;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = d->chunks;
		d->chunks = c;
	}
	p = c->data + c->used;
	c->used += size;
	return p;
}

void cj_free(struct cj_doc *d)
{
	struct chunk *c, *next;

	if (!d)
		return;
	/* the last chunk of the list is the first one: it holds d */
	for (c = d->chunks; c->next; c = next) {
		next = c->next;
		free(c);
	}
	free(c);
}

const struct cj_value *cj_root(const struct cj_doc *d)
{
	return &d->root;
}

/* A 64-bit digest of a key's first 8 bytes (all of them for a shorter key:
 * for a given length it is then one-to-one), so that with the length one
 * comparison tells most keys apart. Fixed-size loads only. */
static inline uint64_t key_prefix(const char *k, size_t len)
{
	uint64_t p;
	uint32_t a, b;

	if (len >= 8) {
		memcpy(&p, k, 8);
		return p;
	}
	if (len >= 4) {		/* two loads that cover every byte */
		memcpy(&a, k, 4);
		memcpy(&b, k + len - 4, 4);
		return (uint64_t)a << 32 | b;
	}
	if (len)		/* positions 0, len / 2, len - 1: all of them */
		return (uint64_t)(unsigned char)k[0] << 16 |
		       (uint64_t)(unsigned char)k[len / 2] << 8 |
		       (unsigned char)k[len - 1];
	return 0;
}

/* Keys of equal length and prefix: the rest. */
static inline int key_rest_eq(const char *a, const char *b, size_t n)
{
	return n <= 8 || !memcmp(a + 8, b + 8, n - 8);
}

static int is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

size_t cj_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];

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

/* ------------------------------------------------------------------ */
/* Parser                                                              */

struct parser {
	struct cj_doc *d;
	unsigned char *p, *end;	/* *end is a NUL sentinel */
	const char *msg;
	unsigned char *at;	/* where the error is */
	char msgbuf[64];
	int depth;
	int flags;	/* CJ_* */
	/* children of the open containers, innermost last */
	struct cj_value *vs;
	size_t vn, vcap;
	struct cj_member *ms;
	size_t mn, mcap;
	struct cj_value vlocal[64];
	struct cj_member mlocal[64];
};

static int perr(struct parser *P, unsigned char *at, const char *msg)
{
	if (!P->msg) {
		P->msg = msg;
		P->at = at;
	}
	return -1;
}

static int oom(struct parser *P)
{
	return perr(P, P->p, "out of memory");
}

/* Space, tab, CR, LF. */
static const unsigned char ws[256] = {
	[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

static void skip_ws(struct parser *P)
{
	while (ws[*P->p])
		P->p++;
}

/* String bytes that need attention: control characters, '"', '\\' and
 * 0x80-0xFF (checked as UTF-8); the NUL sentinel is one of them. */
static const unsigned char str_special[256] = {
#define R4(b) [b] = 1, [b + 1] = 1, [b + 2] = 1, [b + 3] = 1
#define R16(b) R4(b), R4(b + 4), R4(b + 8), R4(b + 12)
	R16(0x00), R16(0x10),
	['"'] = 1, ['\\'] = 1,
	R16(0x80), R16(0x90), R16(0xA0), R16(0xB0),
	R16(0xC0), R16(0xD0), R16(0xE0), R16(0xF0),
#undef R16
#undef R4
};

/* Eight string bytes at a time: nonzero when one of them is '"', '\\', a
 * control character or 0x80-0xFF (lane tricks as in escape.c). */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline int any_special(uint64_t x)
{
	uint64_t a = x & ~HIGHS;
	uint64_t q = a ^ 0x22 * ONES, b = a ^ 0x5C * ONES;
	uint64_t quote = ~((q + 0x7F * ONES) | q) & HIGHS;
	uint64_t bslash = ~((b + 0x7F * ONES) | b) & HIGHS;
	uint64_t ctl = ~(a + 0x60 * ONES) & HIGHS;	/* a < 0x20 */

	return ((quote | bslash | ctl) | (x & HIGHS)) != 0;
}

static unsigned char *put_utf8(unsigned char *w, unsigned long cp)
{
	if (cp < 0x80) {
		*w++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*w++ = (unsigned char)(0xC0 | cp >> 6);
		*w++ = (unsigned char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*w++ = (unsigned char)(0xE0 | cp >> 12);
		*w++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		*w++ = (unsigned char)(0x80 | (cp & 0x3F));
	} else {
		*w++ = (unsigned char)(0xF0 | cp >> 18);
		*w++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		*w++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		*w++ = (unsigned char)(0x80 | (cp & 0x3F));
	}
	return w;
}

/* Four hex digits at p. Stops at the first byte that is not one, so the
 * NUL sentinel at the end of the input is never passed. */
static int hex4(const unsigned char *p, unsigned long *out)
{
	unsigned long v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v << 4 | (unsigned long)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* The \u escape at q (on the 'u'); writes it at *w. */
static int unicode_escape(struct parser *P, unsigned char **q,
			  unsigned char **w)
{
	unsigned char *start = *q - 1;
	unsigned long cp, lo;

	if (hex4(*q + 1, &cp))
		return perr(P, start, "invalid escape");
	*q += 5;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return perr(P, start, "invalid Unicode: lone low surrogate");
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if ((*q)[0] != '\\' || (*q)[1] != 'u' || hex4(*q + 2, &lo) ||
		    lo < 0xDC00 || lo > 0xDFFF)
			return perr(P, start,
				    "invalid Unicode: high surrogate without a low one");
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		*q += 6;
	}
	if (cp == 0 && (P->flags & CJ_NO_NUL))
		return perr(P, start, "\\u0000 in a string");
	*w = put_utf8(*w, cp);
	return 0;
}

/* The string at P->p (on the opening quote), decoded in place. *esc is
 * set when it had escapes (only then can it hold a NUL). */
static int parse_string(struct parser *P, const char **s, size_t *n,
			int *esc)
{
	unsigned char *q = P->p + 1, *w = q, *run;
	size_t k;

	*s = (const char *)q;
	for (;;) {
		run = q;
		for (;;) {
			while (P->end - q >= 8) {
				uint64_t x;

				memcpy(&x, q, 8);
				if (any_special(x))
					break;
				q += 8;
			}
			while (!str_special[*q])
				q++;
			if (*q >= 0x80) {
				k = cj_utf8_len(q, (size_t)(P->end - q));
				if (!k)
					return perr(P, q, "invalid UTF-8");
				q += k;
				continue;
			}
			break;
		}
		if (w != run)
			memmove(w, run, (size_t)(q - run));
		w += q - run;
		if (q == P->end)
			return perr(P, q, "premature end of input in a string");
		if (*q == '"')
			break;
		if (*q < 0x20) {
			snprintf(P->msgbuf, sizeof(P->msgbuf),
				 "control character 0x%x in a string", *q);
			return perr(P, q, P->msgbuf);
		}
		/* a backslash */
		*esc = 1;
		q++;
		switch (*q) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/': *w++ = '/'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u':
			if (unicode_escape(P, &q, &w))
				return -1;
			continue;
		default:
			return perr(P, q - 1, "invalid escape");
		}
		q++;
	}
	*n = (size_t)(w - (unsigned char *)*s);
	*w = '\0';	/* at or before the closing quote */
	P->p = q + 1;
	return 0;
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int parse_real(struct parser *P, unsigned char *st, size_t len,
		      struct cj_value *v)
{
	char small[64], *buf = len < sizeof(small) ? small : malloc(len + 1);
	const char *point = localeconv()->decimal_point;
	char *dot;
	double d;

	if (!buf)
		return oom(P);
	memcpy(buf, st, len);
	buf[len] = '\0';
	/* strtod reads the locale's decimal point */
	if (point && point[0] != '.' && point[0] && !point[1] &&
	    (dot = strchr(buf, '.')))
		*dot = point[0];
	errno = 0;
	d = strtod(buf, NULL);
	if (buf != small)
		free(buf);
	if (errno == ERANGE && (d > 1.0 || d < -1.0))
		return perr(P, st, "real number overflow");
	v->type = CJ_REAL;
	v->u.d = d;
	return 0;
}

static int parse_number(struct parser *P, struct cj_value *v)
{
	unsigned char *st = P->p, *p = st;
	unsigned long long acc = 0, limit;
	int neg = 0, real = 0;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (*p == '0') {
		p++;
	} else if (is_digit(*p)) {
		while (is_digit(*p))
			p++;
	} else {
		return perr(P, st, "invalid token");
	}
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return perr(P, st, "invalid number");
		while (is_digit(*p))
			p++;
		real = 1;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!is_digit(*p))
			return perr(P, st, "invalid number");
		while (is_digit(*p))
			p++;
		real = 1;
	}
	P->p = p;
	if (real)
		return parse_real(P, st, (size_t)(p - st), v);
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (p = st + neg; p < P->p; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (acc > (limit - d) / 10)
			return perr(P, st, neg ? "too big negative integer" :
						 "too big integer");
		acc = acc * 10 + d;
	}
	v->type = CJ_INTEGER;
	v->u.i = neg ? (acc == (unsigned long long)LLONG_MAX + 1 ?
				LLONG_MIN : -(long long)acc) :
		       (long long)acc;
	return 0;
}

static int literal(struct parser *P, const char *word, size_t len,
		   enum cj_type type, struct cj_value *v)
{
	if ((size_t)(P->end - P->p) < len || memcmp(P->p, word, len))
		return perr(P, P->p, "invalid token");
	P->p += len;
	v->type = type;
	return 0;
}

static int grow(struct parser *P, void **stack, size_t *cap, size_t size,
		void *local)
{
	size_t ncap = *cap * 2;
	void *p;

	if (ncap > SIZE_MAX / size)
		return oom(P);
	if (*stack == local) {
		p = malloc(ncap * size);
		if (p)
			memcpy(p, *stack, *cap * size);
	} else {
		p = realloc(*stack, ncap * size);
	}
	if (!p)
		return oom(P);
	*stack = p;
	*cap = ncap;
	return 0;
}

static int parse_value(struct parser *P, struct cj_value *v);

static int parse_array(struct parser *P, struct cj_value *v)
{
	size_t base = P->vn, n;
	struct cj_value *items;

	P->p++;
	skip_ws(P);
	if (*P->p != ']') {
		for (;;) {
			struct cj_value item;

			/* nested containers use the stack above vn */
			if (parse_value(P, &item))
				return -1;
			if (P->vn == P->vcap &&
			    grow(P, (void **)&P->vs, &P->vcap, sizeof(*P->vs),
				 P->vlocal))
				return -1;
			P->vs[P->vn++] = item;
			skip_ws(P);
			if (*P->p == ']')
				break;
			if (*P->p != ',')
				return perr(P, P->p, "',' or ']' expected");
			P->p++;
			skip_ws(P);
		}
	}
	P->p++;
	n = P->vn - base;
	v->type = CJ_ARRAY;
	v->n = n;
	v->u.items = NULL;
	if (n) {
		items = arena_alloc(P->d, n * sizeof(*items));
		if (!items)
			return oom(P);
		memcpy(items, P->vs + base, n * sizeof(*items));
		v->u.items = items;
	}
	P->vn = base;
	return 0;
}

static uint32_t hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* The error for member m, a key the object had already. */
static int duplicate(struct parser *P, const struct cj_member *m)
{
	return perr(P, (unsigned char *)m->key - 1, "duplicate object key");
}

/* Copies the members [base, mn) into the arena as object v, refusing a
 * key given twice under CJ_NO_DUPLICATES. */
static int finish_object(struct parser *P, size_t base, struct cj_value *v)
{
	size_t n = P->mn - base, slots, i, head;
	struct cj_member *m;
	struct cj_index *ix;
	uint32_t *slot;
	unsigned char *p;

	v->type = CJ_OBJECT;
	v->n = n;
	v->u.members = NULL;
	if (!n)
		return 0;
	if (n <= HASH_MIN) {
		if (P->flags & CJ_NO_DUPLICATES)
			for (i = base + 1; i < P->mn; i++)
				for (size_t j = base; j < i; j++)
					if (P->ms[j].pre == P->ms[i].pre &&
					    P->ms[j].klen == P->ms[i].klen &&
					    key_rest_eq(P->ms[j].key, P->ms[i].key,
							P->ms[i].klen))
						return duplicate(P, &P->ms[i]);
		m = arena_alloc(P->d, n * sizeof(*m));
		if (!m)
			return oom(P);
		memcpy(m, P->ms + base, n * sizeof(*m));
		v->u.members = m;
		return 0;
	}
	if (n > UINT32_MAX / 4)
		return oom(P);
	for (slots = 16; slots < 2 * n; slots *= 2)
		;
	head = (sizeof(*ix) + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	p = arena_alloc(P->d, head + n * sizeof(*m) + slots * sizeof(*slot));
	if (!p)
		return oom(P);
	m = (struct cj_member *)(void *)(p + head);
	ix = (struct cj_index *)(void *)(p + head - sizeof(*ix));
	slot = (uint32_t *)(void *)(m + n);
	memcpy(m, P->ms + base, n * sizeof(*m));
	memset(slot, 0, slots * sizeof(*slot));
	for (i = 0; i < n; i++) {
		size_t h = hash(m[i].key, m[i].klen) & (slots - 1);

		/* a later duplicate takes the earlier one's slot */
		while (slot[h] &&
		       !(m[slot[h] - 1].klen == m[i].klen &&
			 !memcmp(m[slot[h] - 1].key, m[i].key, m[i].klen)))
			h = (h + 1) & (slots - 1);
		if (slot[h] && (P->flags & CJ_NO_DUPLICATES))
			return duplicate(P, &m[i]);
		slot[h] = (uint32_t)(i + 1);
	}
	ix->slot = slot;
	ix->mask = slots - 1;
	v->u.members = m;
	return 0;
}

static int parse_object(struct parser *P, struct cj_value *v)
{
	size_t base = P->mn;
	struct cj_member m;

	P->p++;
	skip_ws(P);
	if (*P->p != '}') {
		for (;;) {
			if (*P->p != '"')
				return perr(P, P->p, "string or '}' expected");
			int esc = 0;

			if (parse_string(P, &m.key, &m.klen, &esc))
				return -1;
			m.pre = key_prefix(m.key, m.klen);
			if (esc && memchr(m.key, '\0', m.klen))
				return perr(P, (unsigned char *)m.key,
					    "NUL byte in object key not supported");
			skip_ws(P);
			if (*P->p != ':')
				return perr(P, P->p, "':' expected");
			P->p++;
			skip_ws(P);
			/* nested containers use the stack above mn */
			if (parse_value(P, &m.val))
				return -1;
			if (P->mn == P->mcap &&
			    grow(P, (void **)&P->ms, &P->mcap, sizeof(*P->ms),
				 P->mlocal))
				return -1;
			P->ms[P->mn++] = m;
			skip_ws(P);
			if (*P->p == '}')
				break;
			if (*P->p != ',')
				return perr(P, P->p, "',' or '}' expected");
			P->p++;
			skip_ws(P);
		}
	}
	P->p++;
	if (finish_object(P, base, v))
		return -1;
	P->mn = base;
	return 0;
}

static int parse_value(struct parser *P, struct cj_value *v)
{
	int rc;

	v->n = 0;
	v->u.s = NULL;
	switch (*P->p) {
	case '"':
		v->type = CJ_STRING;
		return parse_string(P, &v->u.s, &v->n, &rc);
	case '{':
	case '[':
		if (++P->depth > CJ_MAX_DEPTH)
			return perr(P, P->p, "maximum parsing depth reached");
		rc = *P->p == '{' ? parse_object(P, v) : parse_array(P, v);
		P->depth--;
		return rc;
	case 't':
		return literal(P, "true", 4, CJ_TRUE, v);
	case 'f':
		return literal(P, "false", 5, CJ_FALSE, v);
	case 'n':
		return literal(P, "null", 4, CJ_NULL, v);
	default:
		if (*P->p == '-' || is_digit(*P->p))
			return parse_number(P, v);
		if (P->p == P->end)
			return perr(P, P->p, "premature end of input");
		return perr(P, P->p, "invalid token");
	}
}

static void error_at(const struct parser *P, const char *text,
		     const char *what, char *err, size_t errlen)
{
	const char *at = (const char *)P->at, *q;
	unsigned long line = 1, col = 1;

	if (!err || !errlen)
		return;
	if (!strcmp(P->msg, "out of memory")) {
		snprintf(err, errlen, "%s: out of memory", what);
		return;
	}
	for (q = text; q < at; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else if (((unsigned char)*q & 0xC0) != 0x80) {
			col++;
		}
	}
	snprintf(err, errlen, "%s is not valid JSON: line %lu, column %lu: %s",
		 what, line, col, P->msg);
}

struct cj_doc *cj_parse(const char *json, size_t len, int flags,
			const char *what, char *err, size_t errlen)
{
	struct parser P;
	struct chunk *c;
	struct cj_doc *d;
	size_t head, cap;
	int rc;

	if (!json && len)
		json = "";
	/* one block: chunk header, doc, the text, and room for values
	 * (typically well under twice the text) */
	head = (sizeof(*d) + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (len > (SIZE_MAX - sizeof(*c) - head - 1024) / 4)
		goto nomem;
	cap = head + ((len + 1 + ALIGN - 1) & ~(size_t)(ALIGN - 1)) +
	      2 * len + 512;
	c = malloc(sizeof(*c) + cap);
	if (!c)
		goto nomem;
	c->next = NULL;
	c->cap = cap;
	c->used = 0;
	d = (struct cj_doc *)(void *)c->data;
	d->chunks = c;
	c->used = head;
	d->text = arena_alloc(d, len + 1);
	if (len)
		memcpy(d->text, json, len);
	d->text[len] = '\0';

	P.d = d;
	P.p = (unsigned char *)d->text;
	P.end = P.p + len;
	P.msg = NULL;
	P.at = NULL;
	P.depth = 0;
	P.flags = flags;
	P.vs = P.vlocal;
	P.vn = 0;
	P.vcap = sizeof(P.vlocal) / sizeof(P.vlocal[0]);
	P.ms = P.mlocal;
	P.mn = 0;
	P.mcap = sizeof(P.mlocal) / sizeof(P.mlocal[0]);

	skip_ws(&P);
	if ((flags & CJ_CONTAINER) && *P.p != '{' && *P.p != '[')
		rc = perr(&P, P.p, "'[' or '{' expected");
	else
		rc = parse_value(&P, &d->root);
	if (!rc) {
		skip_ws(&P);
		if (P.p != P.end)
			rc = perr(&P, P.p, "end of file expected");
	}
	if (P.vs != P.vlocal)
		free(P.vs);
	if (P.ms != P.mlocal)
		free(P.ms);
	if (rc) {
		/* offsets in the copy are offsets in the input, but strings
		 * before the error may have been decoded in place */
		P.at = (unsigned char *)json + (P.at - (unsigned char *)d->text);
		error_at(&P, json, what, err, errlen);
		cj_free(d);
		return NULL;
	}
	return d;
nomem:
	if (err && errlen)
		snprintf(err, errlen, "%s: out of memory", what);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Lookup                                                              */

const struct cj_value *cj_object_get(const struct cj_value *o,
				     const char *key, size_t len)
{
	const struct cj_member *m;
	const struct cj_index *ix;
	size_t i, h;

	if (o->type != CJ_OBJECT)
		return NULL;
	m = o->u.members;
	if (o->n <= HASH_MIN) {
		uint64_t pre = key_prefix(key, len);

		for (i = o->n; i-- > 0;)
			if (m[i].pre == pre && m[i].klen == len &&
			    key_rest_eq(m[i].key, key, len))
				return &m[i].val;
		return NULL;
	}
	ix = (const struct cj_index *)(const void *)m - 1;
	for (h = hash(key, len) & ix->mask; ix->slot[h];
	     h = (h + 1) & ix->mask) {
		const struct cj_member *e = &m[ix->slot[h] - 1];

		if (e->klen == len && !memcmp(e->key, key, len))
			return &e->val;
	}
	return NULL;
}

const char *cj_get_string(const struct cj_value *o, const char *key,
			  size_t *len)
{
	const struct cj_value *v = cj_object_get(o, key, strlen(key));

	if (!v || v->type != CJ_STRING)
		return NULL;
	if (len)
		*len = v->n;
	return v->u.s;
}
