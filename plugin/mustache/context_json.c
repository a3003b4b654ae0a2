/*
 * jansson adapter: the engine core sees json_t values only through these
 * callbacks. No state: udata is unused.
 */
#include "context_json.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

static const void *cj_get(void *udata, const void *obj, const char *key,
			  size_t len)
{
	const json_t *o = obj;

	(void)udata;
	/* A list's items are reached by index, as in JavaScript's Mustache:
	 * {{#items.0}} is "the list has a first item". */
	if (json_is_array(o) && len > 0 && len < 10) {
		size_t i = 0;
		for (size_t k = 0; k < len; k++) {
			if (key[k] < '0' || key[k] > '9')
				return NULL;
			i = i * 10 + (size_t)(key[k] - '0');
		}
		return json_array_get(o, i);
	}
	if (!json_is_object(o))
		return NULL;
	return json_object_getn(o, key, len);
}

static int cj_is_falsey(void *udata, const void *val)
{
	const json_t *v = val;

	(void)udata;
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_FALSE:
		return 1;
	case JSON_STRING:
		return json_string_length(v) == 0;
	case JSON_ARRAY:
		return json_array_size(v) == 0;
	default:
		return 0;
	}
}

static int cj_is_list(void *udata, const void *val, size_t *n)
{
	const json_t *v = val;

	(void)udata;
	if (!json_is_array(v))
		return 0;
	*n = json_array_size(v);
	return 1;
}

static const void *cj_list_item(void *udata, const void *list, size_t i)
{
	(void)udata;
	return json_array_get(list, i);
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

static void cj_to_text(void *udata, const void *val, char *scratch,
		       size_t slen, const char **s, size_t *len)
{
	const json_t *v = val;
	int n;

	(void)udata;
	*s = "";
	*len = 0;
	switch (json_typeof(v)) {
	case JSON_STRING:
		*s = json_string_value(v);
		*len = json_string_length(v);
		break;
	case JSON_INTEGER:
		n = snprintf(scratch, slen, "%" JSON_INTEGER_FORMAT,
			     json_integer_value(v));
		if (n > 0 && (size_t)n < slen) {
			*s = scratch;
			*len = (size_t)n;
		}
		break;
	case JSON_REAL:
		*len = format_real(json_real_value(v), scratch, slen);
		if (*len)
			*s = scratch;
		break;
	case JSON_TRUE:
		*s = "true";
		*len = 4;
		break;
	case JSON_FALSE:
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
