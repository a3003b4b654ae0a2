/*
 * Mustache engine core: compiler and renderer.
 *
 * The core knows nothing about where its data comes from: the renderer walks
 * the context through struct mustache_data_ops, a handful of callbacks over
 * opaque value pointers (see context_json.c for the jansson adapter). It
 * knows nothing about escaping either: {{x}} goes through a caller-supplied
 * mustache_escape_fn, {{{x}}} and {{&x}} are copied verbatim.
 *
 * Supported: the whole Mustache spec (interpolation, sections, inverted
 * sections, comments, partials, set delimiters) plus the optional
 * inheritance (parents {{<p}} and blocks {{$b}}) and dynamic names
 * ({{>*name}}, {{<*name}}) modules. Lambdas are not supported.
 *
 * mustache_render() may run concurrently on the same template from several
 * threads: a compiled template changes only by gaining cached partials,
 * under its own mutex. There is no global mutable state.
 */
#ifndef AC_MUSTACHE_H
#define AC_MUSTACHE_H

#include <stddef.h>
#include <string.h>

/* Internal to the plugin: keep these out of its dynamic symbol table. */
#pragma GCC visibility push(hidden)

/* Limit on nested sections/blocks/parents in one template, and on nested
 * sections + partials + parents + blocks while rendering. */
#define MUSTACHE_MAX_DEPTH 100

enum mustache_status {
	MUSTACHE_OK = 0,
	MUSTACHE_ERR_NOMEM = -1,	/* out of memory */
	MUSTACHE_ERR_SYNTAX = -2,	/* a template or partial is malformed */
	MUSTACHE_ERR_DEPTH = -3,	/* nesting limit hit while rendering */
	MUSTACHE_ERR_DATA = -4,		/* bad context data (for adapters) */
	MUSTACHE_ERR_INVAL = -5,	/* bad arguments */
};

/* Growable output buffer; data is NUL-terminated whenever len > 0. */
struct mustache_buf {
	char *data;
	size_t len;
	size_t cap;
	int failed;		/* set once an allocation failed */
};

/* Makes room for extra more bytes plus the NUL (slow path of
 * mustache_buf_reserve); 0, or -1 with b->failed set. */
int mustache_buf_grow(struct mustache_buf *b, size_t extra);
void mustache_buf_release(struct mustache_buf *b);

/* Room for extra more bytes and a NUL after them: 0, or -1 once an
 * allocation failed. Callers may then write up to extra bytes at
 * data + len themselves. */
static inline int mustache_buf_reserve(struct mustache_buf *b, size_t extra)
{
	if (!b->failed && b->cap - b->len > extra)
		return 0;
	return mustache_buf_grow(b, extra);
}

static inline int mustache_buf_put(struct mustache_buf *b, const char *s,
				   size_t n)
{
	if (n == 0)
		return b->failed ? -1 : 0;
	if (mustache_buf_reserve(b, n))
		return -1;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static inline int mustache_buf_putc(struct mustache_buf *b, char c)
{
	return mustache_buf_put(b, &c, 1);
}

/* Appends the escaped form of s (n bytes) to out; 0, or -1 when out of
 * memory. */
typedef int (*mustache_escape_fn)(struct mustache_buf *out, const char *s,
				  size_t n);

/*
 * The data interface. Values are opaque pointers owned by the adapter; the
 * core never frees them. The core keeps the context stack itself and asks
 * the adapter only about single values.
 */
struct mustache_data_ops {
	/* Member `key` (len bytes, not NUL-terminated) of obj, or NULL when
	 * obj is not an object or has no such member. */
	const void *(*get)(void *udata, const void *obj, const char *key,
			   size_t len);
	/* Nonzero when val is falsey: sections skip it, inverted sections
	 * render. */
	int (*is_falsey)(void *udata, const void *val);
	/* Nonzero when val is a list; its length goes to *n. */
	int (*is_list)(void *udata, const void *val, size_t *n);
	/* Element i of a list (i < length). */
	const void *(*list_item)(void *udata, const void *list, size_t i);
	/* Text form of a value for interpolation: either points *s into
	 * storage that lives as long as val, or formats into scratch
	 * (scratch_len bytes) and points *s there. */
	void (*to_text)(void *udata, const void *val, char *scratch,
			size_t scratch_len, const char **s, size_t *len);
};

/* Same contract as ac_partial_fn in aftercall/template.h. */
typedef const char *(*mustache_partial_fn)(void *ctx, const char *name,
					   size_t *len);

struct mustache_render_args {
	const struct mustache_data_ops *ops;
	void *udata;			/* passed to every ops callback */
	const void *root;		/* bottom of the context stack */
	mustache_escape_fn escape;	/* for {{x}}; required */
	mustache_partial_fn partials;	/* may be NULL: no partials */
	void *pctx;
};

struct mustache_tmpl;

/*
 * Compiles src (len bytes, not necessarily NUL-terminated). Returns NULL on
 * failure with *status set (if status is not NULL) and "NAME:LINE:COL:
 * message" in err (NUL-terminated, at most errlen bytes).
 */
struct mustache_tmpl *mustache_compile(const char *name, const char *src,
				       size_t len, int *status, char *err,
				       size_t errlen);

/*
 * Renders t, appending to out (an empty out gets room for the output size
 * the template suggests). Returns MUSTACHE_OK or a negative
 * enum mustache_status with a message in err. Partials are compiled on
 * first use and cached inside t, keyed by their source text (a mutex guards
 * the cache; what is cached is never changed or freed until t is), so
 * concurrent renders of t share them.
 */
int mustache_render(const struct mustache_tmpl *t,
		    const struct mustache_render_args *args,
		    struct mustache_buf *out, char *err, size_t errlen);

void mustache_free(struct mustache_tmpl *t);

#pragma GCC visibility pop

#endif /* AC_MUSTACHE_H */
