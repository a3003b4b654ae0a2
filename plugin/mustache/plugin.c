/*
 * aftercall template-engine descriptor for the Mustache engine.
 *
 * compile: the core compiler. render: parse the JSON context with jansson
 * (any JSON value may be the root), then run the core renderer with the
 * jansson adapter and the escaper of the requested mode. Each render owns
 * its JSON tree and partial cache, so concurrent renders of one template
 * are safe.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include <aftercall/template.h>

#include "context_json.h"
#include "escape.h"
#include "mustache.h"

#define ENGINE_VERSION "1.0.0"

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void *mt_compile(const char *name, const char *src, size_t len,
			char *err, size_t errlen)
{
	return mustache_compile(name, src, len, NULL, err, errlen);
}

static int mt_render(const void *tmpl, const char *context_json,
		     size_t ctx_len, ac_partial_fn partials, void *pctx,
		     ac_escape escape, char **out, size_t *out_len, char *err,
		     size_t errlen)
{
	struct mustache_render_args args = {
		.ops = &context_json_ops,
		.partials = partials,
		.pctx = pctx,
	};
	struct mustache_buf buf = { 0 };
	json_error_t jerr;
	json_t *root;
	int rc;

	if (!tmpl || !out || !out_len || (!context_json && ctx_len)) {
		fail(err, errlen, "render: invalid arguments");
		return -1;
	}
	args.escape = escape_for_mode(escape);
	if (!args.escape) {
		fail(err, errlen, "render: unknown escape mode %d",
		     (int)escape);
		return -1;
	}
	root = json_loadb(context_json ? context_json : "", ctx_len,
			  JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!root) {
		snprintf(err, errlen,
			 "context is not valid JSON: line %d, column %d: %s",
			 jerr.line, jerr.column, jerr.text);
		return -1;
	}
	args.root = root;
	rc = mustache_render(tmpl, &args, &buf, err, errlen);
	json_decref(root);
	if (rc) {
		mustache_buf_release(&buf);
		return -1;
	}
	if (!buf.data && !(buf.data = calloc(1, 1))) {
		fail(err, errlen, "render: out of memory");
		return -1;
	}
	*out = buf.data;
	*out_len = buf.len;
	return 0;
}

static void mt_free_template(void *tmpl)
{
	mustache_free(tmpl);
}

static void mt_free_output(char *out)
{
	free(out);
}

__attribute__((visibility("default")))
const ac_template_engine aftercall_template_engine = {
	.abi_major = AC_TEMPLATE_ABI_MAJOR,
	.abi_minor = AC_TEMPLATE_ABI_MINOR,
	.struct_size = sizeof(ac_template_engine),
	.name = "mustache",
	.version = ENGINE_VERSION,
	.compile = mt_compile,
	.render = mt_render,
	.free_template = mt_free_template,
	.free_output = mt_free_output,
};
