/*
 * The engine's data interface (struct mustache_data_ops) over the JSON
 * parser's values (src/json.h).
 */
#include "context_json.h"
#include "escape.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Data interface                                                      */
static const void *cj_get(void *udata, const void *obj, const char *key,
			  size_t len)
{
	const struct cj_value *o = obj;

	(void)udata;
	if (o->type == CJ_ARRAY && len > 0 && len < 10) {
		size_t i = 0, k;

		for (k = 0; k < len; k++) {
			if (key[k] < '0' || key[k] > '9')
				return NULL;
			i = i * 10 + (size_t)(key[k] - '0');
		}
		return i < o->n ? &o->u.items[i] : NULL;
	}
	return cj_object_get(o, key, len);
}

static int cj_is_falsey(void *udata, const void *val)
{
	const struct cj_value *v = val;

	(void)udata;
	switch (v->type) {
	case CJ_NULL:
	case CJ_FALSE:
		return 1;
	case CJ_STRING:
	case CJ_ARRAY:
		return v->n == 0;
	default:
		return 0;
	}
}

static int cj_is_list(void *udata, const void *val, size_t *n)
{
	const struct cj_value *v = val;

	(void)udata;
	if (v->type != CJ_ARRAY)
		return 0;
	*n = v->n;
	return 1;
}

static const void *cj_list_item(void *udata, const void *list, size_t i)
{
	const struct cj_value *v = list;

	(void)udata;
	return i < v->n ? &v->u.items[i] : NULL;
}

/* Shortest %g form that reads back as the same double. */
static size_t format_real(double d, char *buf, size_t len)
{
	int prec, n = 0;

	for (prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, len, "%.*g", prec, d);
		if (n < 0 || (size_t)n >= len)
			return 0;
		if (strtod(buf, NULL) == d)
			break;
	}
	return (size_t)n;
}

/* Decimal form of i at the end of buf (at least 21 bytes). */
static size_t format_int(long long i, char *buf, size_t len, const char **s)
{
	unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i :
				       (unsigned long long)i;
	char *p = buf + len;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (i < 0)
		*--p = '-';
	*s = p;
	return (size_t)(buf + len - p);
}

static void cj_to_text(void *udata, const void *val, char *scratch,
		       size_t slen, const char **s, size_t *len)
{
	const struct cj_value *v = val;

	(void)udata;
	*s = "";
	*len = 0;
	switch (v->type) {
	case CJ_STRING:
		*s = v->u.s;
		*len = v->n;
		break;
	case CJ_INTEGER:
		if (slen >= 21)
			*len = format_int(v->u.i, scratch, slen, s);
		break;
	case CJ_REAL:
		*len = format_real(v->u.d, scratch, slen);
		if (*len)
			*s = scratch;
		break;
	case CJ_TRUE:
		*s = "true";
		*len = 4;
		break;
	case CJ_FALSE:
		*s = "false";
		*len = 5;
		break;
	default:
		break;
	}
}

const struct mustache_data_ops context_json_ops = {
	.get = cj_get,
	.is_falsey = cj_is_falsey,
	.is_list = cj_is_list,
	.list_item = cj_list_item,
	.to_text = cj_to_text,
};
