/*
 * A strict JSON parser that builds a compact, read-only tree in one arena:
 * the host reads webhook bodies and token segments with it, and the
 * mustache engine its contexts.
 *
 * Parsing accepts what jansson's json_loadb(JSON_DECODE_ANY |
 * JSON_ALLOW_NUL) accepts: any JSON value as the root; strict RFC 8259
 * syntax; the input must be well-formed UTF-8 (no overlong forms, no
 * surrogates); no raw control characters in strings; \u escapes with
 * surrogates only as valid pairs; \u0000 in string values but not in object
 * keys; integers within long long, reals that do not overflow a double; at
 * most CJ_MAX_DEPTH nested arrays and objects. A key given twice keeps its
 * last value. The flags narrow this to what json_loadb() takes without
 * those two flags and with JSON_REJECT_DUPLICATES.
 */
#ifndef AC_JSON_H
#define AC_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Internal: keep these out of a plugin's dynamic symbol table. */
#pragma GCC visibility push(hidden)

/* Nesting limit of arrays and objects (jansson's). */
#define CJ_MAX_DEPTH 2048

enum {
	CJ_CONTAINER = 1,	/* the root is an object or an array */
	CJ_NO_NUL = 2,		/* no \u0000 in strings */
	CJ_NO_DUPLICATES = 4,	/* no key twice in one object */
	CJ_STRICT = CJ_CONTAINER | CJ_NO_NUL | CJ_NO_DUPLICATES,
};

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

/* Parses json (len bytes, not necessarily NUL-terminated; not kept) under
 * flags (CJ_*). Returns the document, or NULL with "WHAT is not valid
 * JSON: line L, column C: message" (or "WHAT: out of memory") in err. */
struct cj_doc *cj_parse(const char *json, size_t len, int flags,
			const char *what, char *err, size_t errlen);
const struct cj_value *cj_root(const struct cj_doc *doc);
void cj_free(struct cj_doc *doc);

/* Member key (len bytes) of object o, the last one of that key; NULL when
 * o is not an object or has no such member. */
const struct cj_value *cj_object_get(const struct cj_value *o,
				     const char *key, size_t len);

/* The string value of o's member key (a C string), or NULL when there is
 * none or it is not a string. */
const char *cj_get_string(const struct cj_value *o, const char *key,
			  size_t *len);

/* Length of the well-formed UTF-8 sequence at p (p[0] >= 0x80, n bytes
 * available), or 0 if there is none. */
size_t cj_utf8_len(const unsigned char *p, size_t n);

#pragma GCC visibility pop

#endif /* AC_JSON_H */
