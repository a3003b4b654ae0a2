/*
 * Mustache engine core.
 *
 * Compilation runs in three passes over the source:
 *   1. lex: split the source into text and tag tokens, honouring set
 *      delimiter tags; text is cut after every newline so a token never
 *      spans two lines;
 *   2. match and standalone: pair closing tags with their openers, then
 *      drop the surrounding white space of tags that stand alone on a line;
 *   3. build: turn the token list into a tree, then re-indent the bodies of
 *      standalone blocks (inheritance spec).
 *
 * Rendering walks the tree. Indentation of standalone partials, parents and
 * blocks is applied at render time: the renderer keeps the current
 * indentation and writes it before the first output of every line that
 * starts in template text, so interpolated newlines are never indented.
 */
#include "mustache.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELIM_MAX 32		/* longest delimiter accepted by {{=a b=}} */
#define NO_INDENT SIZE_MAX

/* ------------------------------------------------------------------ */
/* Output buffer                                                       */

int mustache_buf_grow(struct mustache_buf *b, size_t extra)
{
	size_t want, cap;
	char *p;

	if (b->failed)
		return -1;
	if (extra > SIZE_MAX - b->len - 1)
		goto fail;
	want = b->len + extra + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		goto fail;
	b->data = p;
	b->cap = cap;
	return 0;
fail:
	b->failed = 1;
	return -1;
}

void mustache_buf_release(struct mustache_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	       c == '\v' || c == '\f';
}

/* First occurrence of needle in hay[from, len), or len when absent. */
static size_t find(const char *hay, size_t from, size_t len,
		   const char *needle, size_t nlen)
{
	size_t i;

	if (nlen == 0 || len < nlen)
		return len;
	for (i = from; i + nlen <= len; i++)
		if (hay[i] == needle[0] && !memcmp(hay + i, needle, nlen))
			return i;
	return len;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Tokens                                                              */

enum tok_kind {
	T_TEXT,
	T_VAR,		/* {{x}} */
	T_RAW,		/* {{{x}}}, {{&x}} */
	T_SECTION,	/* {{#x}} */
	T_INVERTED,	/* {{^x}} */
	T_CLOSE,	/* {{/x}} */
	T_PARTIAL,	/* {{>x}} */
	T_PARENT,	/* {{<x}} */
	T_BLOCK,	/* {{$x}} */
	T_COMMENT,	/* {{!x}} */
	T_DELIM,	/* {{=a b=}} */
};

struct tok {
	enum tok_kind kind;
	size_t start, end;	/* source range (whole tag for tags) */
	size_t name, nlen;	/* effective name */
	size_t raw, rlen;	/* trimmed tag content, to match closing tags */
	size_t line_start;	/* start of the token's logical line */
	size_t match;		/* opener <-> closing tag */
	size_t before, blen;	/* indentation dropped from a standalone line */
	size_t body_from;	/* openers: where the body starts */
	unsigned dynamic:1;	/* {{>*x}}, {{<*x}} */
	unsigned bol:1;		/* first token of its logical line */
	unsigned removed:1;	/* white space dropped by the standalone rule */
	unsigned standalone:1;
};

struct compiler {
	const char *name;
	const char *src;
	size_t len;
	struct tok *tok;
	size_t ntok, cap;
	char *err;
	size_t errlen;
	int status;
};

static int is_opener(enum tok_kind k)
{
	return k == T_SECTION || k == T_INVERTED || k == T_PARENT ||
	       k == T_BLOCK;
}

/* Tags that may stand alone on a line (everything but interpolation). */
static int standalonable(enum tok_kind k)
{
	return k != T_TEXT && k != T_VAR && k != T_RAW;
}

static void line_col(const char *src, size_t off, size_t *line, size_t *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off; i++) {
		if (src[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int cerr(struct compiler *c, size_t off, const char *fmt, ...)
{
	char msg[256];
	size_t line, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	line_col(c->src, off, &line, &col);
	set_err(c->err, c->errlen, "%s:%zu:%zu: %s", c->name, line, col, msg);
	c->status = MUSTACHE_ERR_SYNTAX;
	return -1;
}

static int oom(struct compiler *c)
{
	set_err(c->err, c->errlen, "%s: out of memory", c->name);
	c->status = MUSTACHE_ERR_NOMEM;
	return -1;
}

static struct tok *tok_new(struct compiler *c, enum tok_kind kind,
			   size_t start, size_t end)
{
	struct tok *t;

	if (c->ntok == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;

		t = realloc(c->tok, cap * sizeof(*t));
		if (!t) {
			oom(c);
			return NULL;
		}
		c->tok = t;
		c->cap = cap;
	}
	t = &c->tok[c->ntok++];
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->start = start;
	t->end = end;
	return t;
}

/* ------------------------------------------------------------------ */
/* Pass 1: lexer                                                       */

struct lexer {
	char otag[DELIM_MAX + 1], ctag[DELIM_MAX + 1];
	size_t olen, clen;
	size_t line_start;	/* start of the current logical line */
	int bol;		/* next token starts a logical line */
};

/* Emits text [from, to) cut after each newline. */
static int lex_text(struct compiler *c, struct lexer *lx, size_t from,
		    size_t to)
{
	while (from < to) {
		size_t nl = find(c->src, from, to, "\n", 1);
		size_t end = nl < to ? nl + 1 : to;
		struct tok *t = tok_new(c, T_TEXT, from, end);

		if (!t)
			return -1;
		t->line_start = lx->line_start;
		t->bol = lx->bol;
		lx->bol = 0;
		if (nl < to) {
			lx->line_start = end;
			lx->bol = 1;
		}
		from = end;
	}
	return 0;
}

static void trim(const char *s, size_t *from, size_t *to)
{
	while (*from < *to && is_space(s[*from]))
		(*from)++;
	while (*to > *from && is_space(s[*to - 1]))
		(*to)--;
}

/* Parses the content of {{=open close=}}, i.e. "open close". */
static int lex_delims(struct compiler *c, struct lexer *lx, size_t tag,
		      size_t from, size_t to)
{
	const char *s = c->src;
	size_t a, b, d, e;

	trim(s, &from, &to);
	for (a = from; a < to && !is_space(s[a]); a++)
		;
	for (d = a; d < to && is_space(s[d]); d++)
		;
	b = to;
	e = d;
	while (e < to && !is_space(s[e]))
		e++;
	if (a == from || d == a || e != b || a - from > DELIM_MAX ||
	    b - d > DELIM_MAX)
		return cerr(c, tag, "bad set-delimiter tag");
	if (memchr(s + from, '=', a - from) || memchr(s + d, '=', b - d))
		return cerr(c, tag, "bad set-delimiter tag: '=' in delimiter");
	memcpy(lx->otag, s + from, a - from);
	lx->olen = a - from;
	memcpy(lx->ctag, s + d, b - d);
	lx->clen = b - d;
	return 0;
}

static enum tok_kind sigil_kind(char ch)
{
	switch (ch) {
	case '&': return T_RAW;
	case '#': return T_SECTION;
	case '^': return T_INVERTED;
	case '/': return T_CLOSE;
	case '>': return T_PARTIAL;
	case '<': return T_PARENT;
	case '$': return T_BLOCK;
	case '!': return T_COMMENT;
	case '=': return T_DELIM;
	default: return T_VAR;
	}
}

/* Checks and stores the name of tag t, content in [from, to). */
static int lex_name(struct compiler *c, struct tok *t, size_t from, size_t to)
{
	size_t i;

	trim(c->src, &from, &to);
	t->raw = from;
	t->rlen = to - from;
	if ((t->kind == T_PARTIAL || t->kind == T_PARENT) && from < to &&
	    c->src[from] == '*') {
		t->dynamic = 1;
		from++;
		trim(c->src, &from, &to);
	}
	if (from == to)
		return cerr(c, t->start, "empty tag name");
	for (i = from; i < to; i++)
		if (is_space(c->src[i]))
			return cerr(c, t->start,
				    "white space in tag name '%.*s'",
				    (int)(to - from), c->src + from);
	t->name = from;
	t->nlen = to - from;
	return 0;
}

/* Lexes the tag starting at p (on the opening delimiter); returns its end. */
static int lex_tag(struct compiler *c, struct lexer *lx, size_t p,
		   size_t *next)
{
	const char *s = c->src;
	size_t q = p + lx->olen, from, close, end;
	char term[DELIM_MAX + 2];
	size_t tlen;
	enum tok_kind kind;
	struct tok *t;

	if (q >= c->len)
		return cerr(c, p, "unclosed tag");
	kind = s[q] == '{' ? T_RAW : sigil_kind(s[q]);
	from = kind == T_VAR ? q : q + 1;
	tlen = 0;
	if (s[q] == '{' || kind == T_DELIM)
		term[tlen++] = s[q] == '{' ? '}' : '=';
	memcpy(term + tlen, lx->ctag, lx->clen);
	tlen += lx->clen;
	close = find(s, from, c->len, term, tlen);
	if (close == c->len)
		return cerr(c, p, "unclosed tag (no '%.*s')", (int)tlen, term);
	end = close + tlen;

	t = tok_new(c, kind, p, end);
	if (!t)
		return -1;
	t->line_start = lx->line_start;
	t->bol = lx->bol;
	lx->bol = 0;
	*next = end;
	if (kind == T_COMMENT)
		return 0;
	if (kind == T_DELIM)
		return lex_delims(c, lx, p, from, close);
	return lex_name(c, t, from, close);
}

static int lex(struct compiler *c)
{
	struct lexer lx = { .otag = "{{", .ctag = "}}", .olen = 2, .clen = 2,
			    .line_start = 0, .bol = 1 };
	size_t pos = 0;

	while (pos < c->len) {
		size_t p = find(c->src, pos, c->len, lx.otag, lx.olen);

		if (lex_text(c, &lx, pos, p))
			return -1;
		if (p == c->len)
			break;
		if (lex_tag(c, &lx, p, &pos))
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Pass 2: closing tags and standalone lines                           */

static int same_raw(const struct compiler *c, const struct tok *a,
		    const struct tok *b)
{
	return a->rlen == b->rlen &&
	       !memcmp(c->src + a->raw, c->src + b->raw, a->rlen);
}

static int match_tags(struct compiler *c)
{
	size_t stack[MUSTACHE_MAX_DEPTH];
	size_t depth = 0, i;

	for (i = 0; i < c->ntok; i++) {
		struct tok *t = &c->tok[i];

		if (is_opener(t->kind)) {
			if (depth == MUSTACHE_MAX_DEPTH)
				return cerr(c, t->start,
					    "sections nested too deeply (limit %d)",
					    MUSTACHE_MAX_DEPTH);
			stack[depth++] = i;
		} else if (t->kind == T_CLOSE) {
			struct tok *o;

			if (!depth)
				return cerr(c, t->start,
					    "closing tag '%.*s' without an open section",
					    (int)t->rlen, c->src + t->raw);
			o = &c->tok[stack[depth - 1]];
			if (!same_raw(c, o, t)) {
				size_t line, col;

				line_col(c->src, o->start, &line, &col);
				return cerr(c, t->start,
					    "mismatched closing tag '%.*s' (open section is '%.*s' at %zu:%zu)",
					    (int)t->rlen, c->src + t->raw,
					    (int)o->rlen, c->src + o->raw,
					    line, col);
			}
			t->match = stack[--depth];
			o->match = i;
		}
	}
	if (depth) {
		struct tok *o = &c->tok[stack[depth - 1]];

		return cerr(c, o->start, "unclosed section '%.*s'",
			    (int)o->rlen, c->src + o->raw);
	}
	return 0;
}

static int text_is_blank(const struct compiler *c, const struct tok *t)
{
	size_t i;

	for (i = t->start; i < t->end; i++)
		if (!is_blank(c->src[i]))
			return 0;
	return 1;
}

/* Blanks then an optional CR LF / LF: the rest of a standalone line. */
static int text_is_line_end(const struct compiler *c, const struct tok *t)
{
	size_t i = t->start;

	while (i < t->end && is_blank(c->src[i]))
		i++;
	if (i < t->end && c->src[i] == '\r')
		i++;
	if (i < t->end && c->src[i] == '\n')
		i++;
	return i == t->end;
}

/*
 * Two tags may share a standalone line (inheritance spec): a parent with its
 * closing tag or its first block, a last block's closing tag with the
 * parent's, and a block with its own closing tag. The last pair keeps the
 * line's newline. Returns 0 (no pair), 1 (pair), 2 (pair, keep newline).
 */
static int tag_pair(const struct compiler *c, size_t i)
{
	const struct tok *a = &c->tok[i], *b = &c->tok[i + 1];

	if (a->kind == T_PARENT && b->kind == T_CLOSE && a->match == i + 1)
		return 1;
	if (a->kind == T_PARENT && b->kind == T_BLOCK)
		return 1;
	if (a->kind == T_CLOSE && b->kind == T_CLOSE &&
	    c->tok[a->match].kind == T_BLOCK &&
	    c->tok[b->match].kind == T_PARENT)
		return 1;
	if (a->kind == T_BLOCK && b->kind == T_CLOSE && a->match == i + 1)
		return 2;
	return 0;
}

/* Applies the standalone rule to the logical line of tokens [i, j). */
static void standalone_line(struct compiler *c, size_t i, size_t j)
{
	size_t k = i, ntags, m, lead = SIZE_MAX, trail = SIZE_MAX;
	int keep_nl = 0;

	if (c->tok[k].kind == T_TEXT) {
		if (!text_is_blank(c, &c->tok[k]))
			return;
		lead = k++;
	}
	for (m = k; m < j && c->tok[m].kind != T_TEXT; m++)
		if (!standalonable(c->tok[m].kind))
			return;
	ntags = m - k;
	if (m < j) {
		/* text after the tags must end the line */
		if (m + 1 != j || !text_is_line_end(c, &c->tok[m]))
			return;
		trail = m;
	}
	if (ntags == 2) {
		int pair = tag_pair(c, k);

		if (!pair)
			return;
		keep_nl = pair == 2;
	} else if (ntags != 1) {
		return;
	}

	for (m = k; m < k + ntags; m++) {
		struct tok *t = &c->tok[m];

		t->standalone = 1;
		if (lead != SIZE_MAX) {
			t->before = c->tok[lead].start;
			t->blen = c->tok[lead].end - c->tok[lead].start;
		}
	}
	if (lead != SIZE_MAX)
		c->tok[lead].removed = 1;
	if (trail != SIZE_MAX && !keep_nl)
		c->tok[trail].removed = 1;
	/* a body opened on this line starts on the next one */
	if (!keep_nl)
		for (m = k; m < k + ntags; m++)
			if (is_opener(c->tok[m].kind))
				c->tok[m].body_from = trail != SIZE_MAX ?
						      c->tok[trail].end :
						      c->len;
}

static void standalone(struct compiler *c)
{
	size_t i = 0, j;

	for (j = 0; j < c->ntok; j++)
		c->tok[j].body_from = c->tok[j].end;
	while (i < c->ntok) {
		/* a logical line ends after a text token ending in LF */
		for (j = i; j < c->ntok; j++) {
			const struct tok *t = &c->tok[j];

			if (t->kind == T_TEXT && c->src[t->end - 1] == '\n') {
				j++;
				break;
			}
		}
		standalone_line(c, i, j);
		i = j;
	}
}

/* ------------------------------------------------------------------ */
/* Pass 3: tree                                                        */

enum node_type {
	N_TEXT,
	N_VAR,
	N_SECTION,
	N_INVERTED,
	N_PARTIAL,
	N_PARENT,
	N_BLOCK,
};

struct mnode {
	enum node_type type;
	const char *str;	/* text, or name */
	size_t len;
	/* N_PARTIAL, N_PARENT, N_BLOCK: indentation of a standalone tag */
	const char *indent;
	size_t ilen;
	/* N_BLOCK: leading white-space width of the body (NO_INDENT when the
	 * body has no non-blank line), and where its first such line starts */
	size_t body_indent;
	const char *body_line;
	unsigned raw:1;		/* N_VAR: no escaping */
	unsigned bol:1;		/* N_TEXT: starts a source line */
	unsigned dynamic:1;	/* N_PARTIAL, N_PARENT: {{>*name}} */
	unsigned standalone:1;
	struct mnode *kids;	/* body; for N_PARENT only its N_BLOCK args */
	struct mnode *next;
	/* N_PARTIAL, N_PARENT: the name NUL-terminated (static names), the
	 * template the node belongs to (its mutex guards pcache), and the
	 * partials compiled for this tag so far */
	char *pname;
	struct mustache_tmpl *owner;
	struct pentry *pcache;
	/* names looked up in the context: the dot-separated parts (none for
	 * the implicit iterator ".") */
	struct npart *parts;
	size_t nparts;
};

struct npart {
	const char *s;
	size_t len;
};

/* A compiled partial, keyed by its source text (t->src is a copy). */
struct pentry {
	size_t len;
	struct mustache_tmpl *t;
	struct pentry *next;
};

/* Compiled partials kept per tag; past this, a tag whose lookups keep
 * returning new sources compiles them per render. */
#define PCACHE_MAX 8

struct mustache_tmpl {
	char *src;
	struct mnode *root;
	size_t hint;		/* initial output buffer size */
	pthread_mutex_t mu;	/* guards the pcache lists of root's nodes */
};

static void pentries_free(struct pentry *e)
{
	while (e) {
		struct pentry *next = e->next;

		mustache_free(e->t);
		free(e);
		e = next;
	}
}

static void nodes_free(struct mnode *n)
{
	while (n) {
		struct mnode *next = n->next;

		nodes_free(n->kids);
		pentries_free(n->pcache);
		free(n->pname);
		free(n->parts);
		free(n);
		n = next;
	}
}

/* Smallest indentation of the non-blank lines of src[from, to). */
static void body_indent(const char *src, size_t from, size_t to,
			size_t *width, const char **first)
{
	size_t pos = from;

	*width = NO_INDENT;
	*first = NULL;
	while (pos < to) {
		size_t w = 0, eol = find(src, pos, to, "\n", 1);

		while (pos + w < eol && is_blank(src[pos + w]))
			w++;
		if (pos + w < eol &&
		    !(src[pos + w] == '\r' && pos + w + 1 == eol)) {
			if (!*first)
				*first = src + pos;
			if (w < *width)
				*width = w;
		}
		pos = eol + 1;
	}
}

struct frame {
	struct mnode *node;
	struct mnode **tail;
};

static enum node_type node_type_of(enum tok_kind k)
{
	switch (k) {
	case T_TEXT: return N_TEXT;
	case T_SECTION: return N_SECTION;
	case T_INVERTED: return N_INVERTED;
	case T_PARTIAL: return N_PARTIAL;
	case T_PARENT: return N_PARENT;
	case T_BLOCK: return N_BLOCK;
	default: return N_VAR;
	}
}

/* Splits the name of a node that looks it up in the context at its dots
 * ("a.b" is a then b; "." alone is the top of the context stack). */
static int split_name(struct mnode *n)
{
	size_t i, k = 0, from = 0;

	if (n->type == N_BLOCK ||
	    ((n->type == N_PARTIAL || n->type == N_PARENT) && !n->dynamic))
		return 0;
	if (n->len == 1 && n->str[0] == '.')
		return 0;
	n->nparts = 1;
	for (i = 0; i < n->len; i++)
		n->nparts += n->str[i] == '.';
	n->parts = malloc(n->nparts * sizeof(*n->parts));
	if (!n->parts)
		return -1;
	for (i = 0; i <= n->len; i++) {
		if (i == n->len || n->str[i] == '.') {
			n->parts[k].s = n->str + from;
			n->parts[k].len = i - from;
			k++;
			from = i + 1;
		}
	}
	return 0;
}

static struct mnode *node_from_tok(struct compiler *c,
				   struct mustache_tmpl *tm,
				   const struct tok *t)
{
	const char *src = tm->src;
	struct mnode *n = calloc(1, sizeof(*n));

	if (!n) {
		oom(c);
		return NULL;
	}
	n->type = node_type_of(t->kind);
	if (t->kind == T_TEXT) {
		n->str = src + t->start;
		n->len = t->end - t->start;
		n->bol = t->bol;
		return n;
	}
	n->str = src + t->name;
	n->len = t->nlen;
	n->raw = t->kind == T_RAW;
	n->dynamic = t->dynamic;
	n->standalone = t->standalone;
	n->indent = src + t->before;
	n->ilen = t->blen;
	n->body_indent = NO_INDENT;
	if (split_name(n)) {
		free(n);
		oom(c);
		return NULL;
	}
	if (n->type == N_PARTIAL || n->type == N_PARENT) {
		n->owner = tm;
		if (!n->dynamic) {
			n->pname = malloc(n->len + 1);
			if (!n->pname) {
				free(n);
				oom(c);
				return NULL;
			}
			memcpy(n->pname, n->str, n->len);
			n->pname[n->len] = '\0';
		}
	}
	return n;
}

/* A parent keeps only its blocks: other content inside it is ignored. */
static void parent_filter(struct mnode *p)
{
	struct mnode **pp = &p->kids;

	while (*pp) {
		struct mnode *n = *pp;

		if (n->type == N_BLOCK) {
			pp = &n->next;
			continue;
		}
		*pp = n->next;
		n->next = NULL;
		nodes_free(n);
	}
}

static void close_node(const char *src, const struct tok *open,
		       const struct tok *close, struct mnode *n)
{
	if (n->type == N_PARENT)
		parent_filter(n);
	if (n->type == N_BLOCK && n->standalone) {
		size_t to = close->standalone ? close->line_start :
						close->start;

		if (to > open->body_from)
			body_indent(src, open->body_from, to, &n->body_indent,
				    &n->body_line);
	}
}

static int build(struct compiler *c, struct mustache_tmpl *tm,
		 struct mnode **root)
{
	const char *src = tm->src;
	struct frame st[MUSTACHE_MAX_DEPTH + 1];
	size_t depth = 0, i;

	*root = NULL;
	st[0].node = NULL;
	st[0].tail = root;
	for (i = 0; i < c->ntok; i++) {
		const struct tok *t = &c->tok[i];
		struct mnode *n;

		if (t->removed || t->kind == T_COMMENT || t->kind == T_DELIM)
			continue;
		if (t->kind == T_TEXT && !t->removed)
			tm->hint += t->end - t->start;
		if (t->kind == T_CLOSE) {
			/* The matcher pairs every close with an open; never pop
			 * past the root whatever it missed. */
			if (depth == 0)
				return -1;
			close_node(src, &c->tok[t->match], t, st[depth].node);
			depth--;
			continue;
		}
		n = node_from_tok(c, tm, t);
		if (!n)
			return -1;
		*st[depth].tail = n;
		st[depth].tail = &n->next;
		if (is_opener(t->kind)) {
			depth++;
			st[depth].node = n;
			st[depth].tail = &n->kids;
		}
	}
	return 0;
}

/* Number of leading blanks of s[0, len), at most max. */
static size_t lead_blanks(const char *s, size_t len, size_t max)
{
	size_t i = 0;

	while (i < len && i < max && is_blank(s[i]))
		i++;
	return i;
}

/*
 * Inheritance spec: the body of a standalone block loses its own
 * indentation here, and gets the indentation of the place where it is
 * expanded at render time. `base` is the indentation already removed by the
 * enclosing blocks, in source columns.
 */
static void reindent(struct mnode *n, size_t base)
{
	for (; n; n = n->next) {
		size_t k;

		switch (n->type) {
		case N_TEXT:
			if (!n->bol)
				break;
			k = lead_blanks(n->str, n->len, base);
			n->str += k;
			n->len -= k;
			break;
		case N_PARTIAL:
		case N_PARENT:
			k = lead_blanks(n->indent, n->ilen, base);
			n->indent += k;
			n->ilen -= k;
			reindent(n->kids, base);
			break;
		case N_BLOCK:
			if (!n->standalone) {
				reindent(n->kids, base);
				break;
			}
			if (n->body_indent == NO_INDENT) {
				k = lead_blanks(n->indent, n->ilen, base);
				n->indent += k;
				n->ilen -= k;
				reindent(n->kids, base);
				break;
			}
			/* expanded at the body's own indentation */
			k = n->body_indent > base ? n->body_indent - base : 0;
			n->indent = n->body_line + (n->body_indent - k);
			n->ilen = k;
			reindent(n->kids, n->body_indent);
			break;
		default:
			reindent(n->kids, base);
			break;
		}
	}
}

/*
 * Joins sibling text nodes that are contiguous in the source (the lexer cuts
 * text after every newline, and reindent may have trimmed some lines: those
 * are no longer contiguous and stay apart), so a run of template lines goes
 * out in one copy. emit_text splits it again where indentation is due.
 */
static void merge_text(struct mnode *n)
{
	while (n) {
		struct mnode *next = n->next;

		if (n->type == N_TEXT && next && next->type == N_TEXT &&
		    n->str + n->len == next->str) {
			n->len += next->len;
			n->next = next->next;
			free(next);
			continue;
		}
		merge_text(n->kids);
		n = next;
	}
}

struct mustache_tmpl *mustache_compile(const char *name, const char *src,
				       size_t len, int *status, char *err,
				       size_t errlen)
{
	struct compiler c = { .name = name ? name : "template", .len = len,
			      .err = err, .errlen = errlen };
	struct mustache_tmpl *t = NULL;

	if (err && errlen)
		err[0] = '\0';
	if (!src && len) {
		set_err(err, errlen, "%s: no source", c.name);
		c.status = MUSTACHE_ERR_INVAL;
		goto out;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		oom(&c);
		goto out;
	}
	if (pthread_mutex_init(&t->mu, NULL)) {
		free(t);
		t = NULL;
		oom(&c);
		goto out;
	}
	if (!(t->src = malloc(len + 1))) {
		oom(&c);
		goto fail;
	}
	if (len)
		memcpy(t->src, src, len);
	t->src[len] = '\0';
	c.src = t->src;
	if (lex(&c) || match_tags(&c))
		goto fail;
	standalone(&c);
	if (build(&c, t, &t->root))
		goto fail;
	reindent(t->root, 0);
	merge_text(t->root);
	/* room for the text, values and partials of a typical render */
	t->hint = t->hint + t->hint / 2 + 256;
	if (t->hint > 65536)
		t->hint = 65536;
	goto out;
fail:
	mustache_free(t);
	t = NULL;
out:
	free(c.tok);
	if (status)
		*status = c.status;
	return t;
}

void mustache_free(struct mustache_tmpl *t)
{
	if (!t)
		return;
	nodes_free(t->root);
	pthread_mutex_destroy(&t->mu);
	free(t->src);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Renderer                                                            */

struct ctx_frame {
	const void *val;
	const struct ctx_frame *up;
};

/* Block arguments of the parents being expanded, innermost first. */
struct ovr_frame {
	const struct mnode *args;
	const struct ovr_frame *up;
};

struct render {
	const struct mustache_render_args *a;
	struct mustache_buf *out;
	struct mustache_buf indent;	/* current indentation */
	int need_indent;		/* at the start of a template line */
	int depth;
	struct pentry *extra;		/* partials compiled for this render only */
	char *err;
	size_t errlen;
};

static int rerr(struct render *r, int status, const char *fmt, ...)
{
	va_list ap;

	if (r->err && r->errlen) {
		va_start(ap, fmt);
		vsnprintf(r->err, r->errlen, fmt, ap);
		va_end(ap);
	}
	return status;
}

static inline int put(struct render *r, const char *s, size_t n)
{
	struct mustache_buf *b = r->out;

	if (n == 0 || mustache_buf_reserve(b, n))
		return n == 0 && !b->failed ? 0 :
		       rerr(r, MUSTACHE_ERR_NOMEM, "out of memory");
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* Writes pending indentation before the first output of a line. */
static int start_line(struct render *r)
{
	if (!r->need_indent)
		return 0;
	r->need_indent = 0;
	return put(r, r->indent.data, r->indent.len);
}

/* One line of template text (it ends at its first LF, if any). */
static int emit_line(struct render *r, const char *s, size_t n)
{
	int rc;

	if (s[0] == '\n' || (s[0] == '\r' && n > 1 && s[1] == '\n'))
		r->need_indent = 0;	/* blank lines stay blank */
	rc = start_line(r);
	if (!rc)
		rc = put(r, s, n);
	if (s[n - 1] == '\n')
		r->need_indent = 1;
	return rc;
}

/* Template text, which may span lines (merge_text): each line gets the
 * current indentation; without one the text goes out whole. */
static int emit_text(struct render *r, const char *s, size_t n)
{
	int rc = 0;

	if (n == 0)
		return 0;
	if (r->indent.len == 0) {
		r->need_indent = s[n - 1] == '\n';
		return put(r, s, n);
	}
	while (n && !rc) {
		const char *nl = memchr(s, '\n', n);
		size_t k = nl ? (size_t)(nl - s) + 1 : n;

		rc = emit_line(r, s, k);
		s += k;
		n -= k;
	}
	return rc;
}

/* Looks a (dotted) name up: the first part in the context stack, the
 * rest inside what was found. The parts were split at compile time. */
static const void *lookup(const struct render *r, const struct ctx_frame *ctx,
			  const struct mnode *n)
{
	const void *(*get)(void *, const void *, const char *, size_t) =
		r->a->ops->get;
	void *ud = r->a->udata;
	const struct npart *p = n->parts;
	const void *v = NULL;
	size_t k;

	if (!ctx)
		return NULL;
	if (n->nparts == 0)	/* {{.}} */
		return ctx->val;
	for (; ctx && !v; ctx = ctx->up)
		v = get(ud, ctx->val, p[0].s, p[0].len);
	for (k = 1; v && k < n->nparts; k++)
		v = get(ud, v, p[k].s, p[k].len);
	return v;
}

static void value_text(const struct render *r, const void *v, char *scratch,
		       size_t slen, const char **s, size_t *n)
{
	*s = "";
	*n = 0;
	r->a->ops->to_text(r->a->udata, v, scratch, slen, s, n);
}

static int emit_var(struct render *r, const struct mnode *n,
		    const struct ctx_frame *ctx)
{
	const void *v = lookup(r, ctx, n);
	char scratch[64];
	const char *s;
	size_t len;
	int rc;

	if (!v)
		return 0;
	value_text(r, v, scratch, sizeof(scratch), &s, &len);
	if (len == 0)
		return 0;
	rc = start_line(r);
	if (rc)
		return rc;
	if (n->raw)
		return put(r, s, len);
	if (r->a->escape(r->out, s, len))
		return rerr(r, MUSTACHE_ERR_NOMEM, "out of memory");
	return 0;
}

/* The cached partial of entries [e, stop) whose source is src[0, len). */
static struct mustache_tmpl *pentry_find(const struct pentry *e,
					 const struct pentry *stop,
					 const char *src, size_t len)
{
	for (; e != stop; e = e->next)
		if (e->len == len && !memcmp(e->t->src, src, len))
			return e->t;
	return NULL;
}

/*
 * Finds partial `name` for tag n, compiling it on first use; *t is NULL if
 * there is no such partial. The source comes from the lookup every time
 * (it may differ between renders); its compiled form is cached in the tag,
 * keyed by the source text. The list only grows, and an entry is complete
 * before it is linked under the owner's mutex, so it is walked unlocked
 * once its head has been read under the mutex.
 */
static int get_partial(struct render *r, const struct mnode *cn,
		       const char *name, const struct mustache_tmpl **t)
{
	/* the tag's cache is the one part of a template that renders change */
	struct mnode *n = (struct mnode *)cn;
	pthread_mutex_t *mu = &n->owner->mu;
	struct pentry *head, *e, *p;
	struct mustache_tmpl *nt, *found;
	const char *src;
	size_t slen = 0, count = 0;
	int status;

	*t = NULL;
	if (!r->a->partials)
		return 0;
	src = r->a->partials(r->a->pctx, name, &slen);
	if (!src)
		return 0;
	pthread_mutex_lock(mu);
	head = n->pcache;
	pthread_mutex_unlock(mu);
	if ((*t = pentry_find(head, NULL, src, slen)) ||
	    (*t = pentry_find(r->extra, NULL, src, slen)))
		return 0;

	nt = mustache_compile(name, src, slen, &status, r->err, r->errlen);
	if (!nt)
		return status;
	e = malloc(sizeof(*e));
	if (!e) {
		mustache_free(nt);
		return rerr(r, MUSTACHE_ERR_NOMEM, "out of memory");
	}
	e->len = slen;
	e->t = nt;
	e->next = NULL;
	pthread_mutex_lock(mu);
	/* another render may have compiled it meanwhile */
	found = pentry_find(n->pcache, head, src, slen);
	if (!found) {
		for (p = n->pcache; p; p = p->next)
			count++;
		if (count < PCACHE_MAX) {
			e->next = n->pcache;
			n->pcache = e;
			e = NULL;
		}
	}
	pthread_mutex_unlock(mu);
	if (found) {
		pentries_free(e);
		*t = found;
		return 0;
	}
	if (e) {	/* the tag's cache is full: keep it for this render */
		e->next = r->extra;
		r->extra = e;
	}
	*t = nt;
	return 0;
}

/* The partial a {{>x}} or {{<x}} tag names, resolving dynamic names. */
static int tag_partial(struct render *r, const struct mnode *n,
		       const struct ctx_frame *ctx,
		       const struct mustache_tmpl **t)
{
	char scratch[64], small[256];
	const char *s;
	char *name;
	size_t len;
	const void *v;
	int rc;

	*t = NULL;
	if (!n->dynamic)
		return get_partial(r, n, n->pname, t);
	v = lookup(r, ctx, n);
	if (!v)
		return 0;
	value_text(r, v, scratch, sizeof(scratch), &s, &len);
	if (len == 0)
		return 0;
	name = len < sizeof(small) ? small : malloc(len + 1);
	if (!name)
		return rerr(r, MUSTACHE_ERR_NOMEM, "out of memory");
	memcpy(name, s, len);
	name[len] = '\0';
	rc = get_partial(r, n, name, t);
	if (name != small)
		free(name);
	return rc;
}

/* The override of block `name`: the outermost parent's argument wins. */
static const struct mnode *find_override(const struct ovr_frame *ovr,
					 const struct mnode *block)
{
	const struct mnode *found = NULL, *a;

	for (; ovr; ovr = ovr->up)
		for (a = ovr->args; a; a = a->next)
			if (a->len == block->len &&
			    !memcmp(a->str, block->str, a->len))
				found = a;
	return found;
}

static int render_nodes(struct render *r, const struct mnode *n,
			const struct ctx_frame *ctx,
			const struct ovr_frame *ovr);

/* Renders nodes one level deeper, indented by ind when standalone. */
static int render_nested(struct render *r, const struct mnode *n,
			 const struct ctx_frame *ctx,
			 const struct ovr_frame *ovr, const struct mnode *ind)
{
	size_t saved = r->indent.len;
	int rc;

	if (r->depth >= MUSTACHE_MAX_DEPTH)
		return rerr(r, MUSTACHE_ERR_DEPTH,
			    "nesting deeper than %d levels (recursive partial?)",
			    MUSTACHE_MAX_DEPTH);
	if (ind && ind->standalone) {
		if (mustache_buf_put(&r->indent, ind->indent, ind->ilen))
			return rerr(r, MUSTACHE_ERR_NOMEM, "out of memory");
		r->need_indent = 1;
	}
	r->depth++;
	rc = render_nodes(r, n, ctx, ovr);
	r->depth--;
	r->indent.len = saved;
	return rc;
}

static int render_section(struct render *r, const struct mnode *n,
			  const struct ctx_frame *ctx,
			  const struct ovr_frame *ovr)
{
	const struct mustache_data_ops *ops = r->a->ops;
	void *ud = r->a->udata;
	const void *v = lookup(r, ctx, n);
	struct ctx_frame f = { .up = ctx };
	size_t i, count;
	int rc = 0;

	if (n->type == N_INVERTED) {
		if (v && !ops->is_falsey(ud, v))
			return 0;
		return render_nested(r, n->kids, ctx, ovr, NULL);
	}
	if (!v || ops->is_falsey(ud, v))
		return 0;
	if (!ops->is_list(ud, v, &count)) {
		f.val = v;
		return render_nested(r, n->kids, &f, ovr, NULL);
	}
	for (i = 0; i < count && !rc; i++) {
		f.val = ops->list_item(ud, v, i);
		rc = render_nested(r, n->kids, &f, ovr, NULL);
	}
	return rc;
}

static int render_node(struct render *r, const struct mnode *n,
		       const struct ctx_frame *ctx,
		       const struct ovr_frame *ovr)
{
	const struct mustache_tmpl *t;
	const struct mnode *o;
	struct ovr_frame f;
	int rc;

	switch (n->type) {
	case N_TEXT:
		return emit_text(r, n->str, n->len);
	case N_VAR:
		return emit_var(r, n, ctx);
	case N_SECTION:
	case N_INVERTED:
		return render_section(r, n, ctx, ovr);
	case N_PARTIAL:
	case N_PARENT:
		rc = tag_partial(r, n, ctx, &t);
		if (rc || !t)
			return rc;
		f.args = n->kids;
		f.up = ovr;
		return render_nested(r, t->root, ctx,
				     n->type == N_PARENT ? &f : ovr, n);
	case N_BLOCK:
		o = find_override(ovr, n);
		return render_nested(r, o ? o->kids : n->kids, ctx, ovr, n);
	}
	return 0;
}

static int render_nodes(struct render *r, const struct mnode *n,
			const struct ctx_frame *ctx,
			const struct ovr_frame *ovr)
{
	int rc = 0;

	for (; n && !rc; n = n->next)
		rc = render_node(r, n, ctx, ovr);
	return rc;
}

int mustache_render(const struct mustache_tmpl *t,
		    const struct mustache_render_args *args,
		    struct mustache_buf *out, char *err, size_t errlen)
{
	struct render r = { .a = args, .out = out, .need_indent = 1,
			    .err = err, .errlen = errlen };
	struct ctx_frame root;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!t || !args || !args->ops || !args->escape || !out)
		return rerr(&r, MUSTACHE_ERR_INVAL, "invalid arguments");
	root.val = args->root;
	root.up = NULL;
	if (!out->cap) {
		if (mustache_buf_reserve(out, t->hint))
			return rerr(&r, MUSTACHE_ERR_NOMEM, "out of memory");
		out->data[out->len] = '\0';
	}
	rc = render_nodes(&r, t->root, args->root ? &root : NULL, NULL);
	pentries_free(r.extra);
	mustache_buf_release(&r.indent);
	if (!rc && out->failed)
		rc = rerr(&r, MUSTACHE_ERR_NOMEM, "out of memory");
	return rc;
}
