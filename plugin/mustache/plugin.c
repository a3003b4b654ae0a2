/*
 * aftercall template-engine descriptor for the Mustache engine.
 *
 * compile: the core compiler. context_parse: the engine's own JSON parser
 * (context_json.c; any JSON value may be the root) into a read-only tree.
 * render_ctx: the core renderer over that tree with the escaper of the
 * requested mode; its output is a malloc() buffer (free_output is free).
 * render: context_parse, render_ctx, context_free. A parsed context is only
 * read and a template changes only by caching partials under its mutex, so
 * concurrent renders of one template, against one context, are safe.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <aftercall/template.h>

#include "context_json.h"
#include "escape.h"
#include "mustache.h"

#define ENGINE_VERSION "1.1.0"

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

static void *mt_context_parse(const char *context_json, size_t ctx_len,
			      char *err, size_t errlen)
{
	if (!context_json && ctx_len) {
		fail(err, errlen, "context_parse: invalid arguments");
		return NULL;
	}
	return cj_parse(context_json, ctx_len, 0, "context", err, errlen);
}

static void mt_context_free(void *ctx)
{
	cj_free(ctx);
}

/* The output buffer is a malloc() one, handed over as it is. */
static int mt_render_ctx(const void *tmpl, const void *ctx,
			 ac_partial_fn partials, void *pctx, ac_escape escape,
			 char **out, size_t *out_len, char *err, size_t errlen)
{
	struct mustache_render_args args = {
		.ops = &context_json_ops,
		.partials = partials,
		.pctx = pctx,
	};
	struct mustache_buf buf = { 0 };

	if (!tmpl || !ctx || !out || !out_len) {
		fail(err, errlen, "render: invalid arguments");
		return -1;
	}
	args.escape = escape_for_mode(escape);
	if (!args.escape) {
		fail(err, errlen, "render: unknown escape mode %d",
		     (int)escape);
		return -1;
	}
	args.root = cj_root(ctx);
	if (mustache_render(tmpl, &args, &buf, err, errlen)) {
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

static int mt_render(const void *tmpl, const char *context_json,
		     size_t ctx_len, ac_partial_fn partials, void *pctx,
		     ac_escape escape, char **out, size_t *out_len, char *err,
		     size_t errlen)
{
	struct cj_doc *ctx;
	int rc;

	if (!tmpl || !out || !out_len || (!context_json && ctx_len)) {
		fail(err, errlen, "render: invalid arguments");
		return -1;
	}
	if (!escape_for_mode(escape)) {
		fail(err, errlen, "render: unknown escape mode %d",
		     (int)escape);
		return -1;
	}
	ctx = cj_parse(context_json, ctx_len, 0, "context", err, errlen);
	if (!ctx)
		return -1;
	rc = mt_render_ctx(tmpl, ctx, partials, pctx, escape, out, out_len,
			   err, errlen);
	cj_free(ctx);
	return rc;
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
	.context_parse = mt_context_parse,
	.render_ctx = mt_render_ctx,
	.context_free = mt_context_free,
};
