/*
 * The engine's JSON context: a strict JSON parser that builds a compact,
 * read-only tree in one arena, and the adapter of the engine's data
 * interface (struct mustache_data_ops) over that tree.
 *
 * Parsing accepts what jansson's json_loadb(JSON_DECODE_ANY |
 * JSON_ALLOW_NUL) accepts: any JSON value as the root; strict RFC 8259
 * syntax; the input must be well-formed UTF-8 (no overlong forms, no
 * surrogates); no raw control characters in strings; \u escapes with
 * surrogates only as valid pairs; \u0000 in string values but not in object
 * keys; integers within long long, reals that do not overflow a double; at
 * most CJ_MAX_DEPTH nested arrays and objects. A key given twice keeps its
 * last value.
 *
 * Values: falsey are null, false, "" and []; everything else (0 and {}
 * included) is truthy. Interpolation: strings as they are, integers in
 * decimal, reals in the shortest form that reads back exactly, true/false as
 * "true"/"false"; null, arrays and objects as "". A list's items are reached
 * by index too: {{#items.0}} is "the list has a first item".
 */
#ifndef AC_MUSTACHE_CONTEXT_JSON_H
#define AC_MUSTACHE_CONTEXT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "mustache.h"

/* Internal to the plugin: keep these out of its dynamic symbol table. */
#pragma GCC visibility push(hidden)

/* Nesting limit of arrays and objects (jansson's). */
#define CJ_MAX_DEPTH 2048

enum cj_type {
	CJ_NULL,
	CJ_FALSE,
	CJ_TRUE,
	CJ_INTEGER,
	CJ_REAL,
	CJ_STRING,
	CJ_ARRAY,
	CJ_OBJECT,
};

struct cj_member;

struct cj_value {
	enum cj_type type;
	size_t n;	/* string: bytes; array: items; object: members */
	union {
		const char *s;	/* NUL-terminated as well */
		const struct cj_value *items;
		const struct cj_member *members; /* in source order */
		long long i;
		double d;
	} u;
};

struct cj_member {
	const char *key;	/* NUL-terminated as well */
	size_t klen;
	uint64_t pre;		/* the key's first 8 bytes (cj_key_prefix) */
	struct cj_value val;
};

struct cj_doc;

/* Parses json (len bytes, not necessarily NUL-terminated; not kept).
 * Returns the document, or NULL with "context is not valid JSON: line L,
 * column C: message" (or an out-of-memory message) in err. */
struct cj_doc *cj_parse(const char *json, size_t len, char *err,
			size_t errlen);
const struct cj_value *cj_root(const struct cj_doc *doc);
void cj_free(struct cj_doc *doc);

/* Member key (len bytes) of object o, the last one of that key; NULL when
 * o is not an object or has no such member. */
const struct cj_value *cj_object_get(const struct cj_value *o,
				     const char *key, size_t len);

/* The data interface over cj_value pointers; udata is unused. */
extern const struct mustache_data_ops context_json_ops;

#pragma GCC visibility pop

#endif /* AC_MUSTACHE_CONTEXT_JSON_H */
