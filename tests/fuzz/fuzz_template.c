/*
 * The Mustache engine (plugin/mustache) through its exported descriptor,
 * aftercall_template_engine: compile, render (JSON text), and the ABI 1.1
 * trio context_parse / render_ctx / context_free, in all three escape
 * modes, with partials looked up in a small fixed set (recursive ones,
 * parents and blocks, dynamic names, a broken one, set delimiters).
 *
 * Input: the template source, a NUL byte, the JSON context. Without a NUL
 * the whole input is the template and the context is a fixed one.
 *
 * Invariants: a failed compile or parse says why in a terminated err; a
 * context render_ctx and render agree (same status, same bytes: the ABI
 * says so) in every mode; outputs are NUL-terminated at out_len; an
 * unknown escape mode is an error.
 *
 * Templates and contexts that are both fuzzed can ask for exponential
 * output ({{#a}}{{#a}}... over a long list), which no fixed limit in the
 * engine stops: that is a property of Mustache, not a bug, and would only
 * make libFuzzer report timeouts and OOMs. So each input is first rendered
 * once through the engine core (mustache_render) over a wrapper of the
 * engine's own data adapter that stops answering once the output passes
 * BUDGET bytes; only inputs that stay within it go through the descriptor,
 * and there the HTML output must equal the probe's.
 */
#include "fuzz.h"

#include <aftercall/template.h>

#include "context_json.h"
#include "escape.h"
#include "mustache.h"

extern const ac_template_engine aftercall_template_engine;
static const ac_template_engine *E = &aftercall_template_engine;

#define BUDGET (256 * 1024)

static const char default_ctx[] =
    "{\"caller\":{\"name\":\"Ada <Lovelace>\",\"email\":\"ada@example.com\"},"
    "\"summary\":\"line one\\nline *two*\\r\\n  [link](http://x)\","
    "\"data\":{\"next_steps\":[\"a\",\"b & c\",\"\"],\"n\":12,\"r\":1.5,\"t\":true,\"f\":false,"
    "\"z\":null},\"items\":[1,2,3],\"down\":{\"down\":{\"name\":\"deep\"}},\"name\":\"p\","
    "\"x\":\"<x>\",\"list\":[{\"x\":1},{\"x\":\"two\"}],\"nul\":\"a\\u0000b\"}";

static const char *const partials[][2] = {
    {"p", "{{x}} and {{{x}}} and {{&x}}\n"},
    {"list", "{{#items}}- {{.}}\n{{/items}}{{^items}}none{{/items}}"},
    {"rec", "{{#down}}{{>rec}}{{/down}}{{name}}"},
    {"self", "{{>self}}"},
    {"parent", "<{{$title}}default{{/title}}|{{$body}}{{/body}}>"},
    {"grand", "{{<parent}}{{$title}}grand{{/title}}{{/parent}}"},
    {"dyn", "{{>*name}}"},
    {"broken", "{{#open}}"},
    {"indent", "  {{x}}\n  line\n"},
    {"delims", "{{=<% %>=}}<% x %><%={{ }}=%>{{x}}"},
    {"empty", ""},
    /* the stock partials (templates/greeting.md, templates/signature.md) */
    {"greeting", "{{#caller.name}}Hi {{caller.name}},{{/caller.name}}{{^caller.name}}Hello,"
		 "{{/caller.name}}\n"},
    {"signature", "Kind regards,\\\n{{#sender.name}}{{sender.name}}{{/sender.name}}"
		  "{{^sender.name}}The team{{/sender.name}}{{#sender.company}}, "
		  "{{sender.company}}{{/sender.company}}\n"},
};

static const char *lookup_partial(void *ctx, const char *name, size_t *len)
{
	(void)ctx;
	for (size_t i = 0; i < sizeof partials / sizeof *partials; i++)
		if (!strcmp(name, partials[i][0])) {
			*len = strlen(partials[i][1]);
			return partials[i][1];
		}
	return NULL;
}

/* ---- the budgeted probe --------------------------------------------------- */

static const struct mustache_buf *probe_out;
static int tripped;

static int over(void)
{
	if (!tripped && probe_out && probe_out->len > BUDGET)
		tripped = 1;
	return tripped;
}

static const void *b_get(void *u, const void *obj, const char *key, size_t len)
{
	return over() ? NULL : context_json_ops.get(u, obj, key, len);
}

static int b_is_falsey(void *u, const void *val)
{
	return over() ? 1 : context_json_ops.is_falsey(u, val);
}

static int b_is_list(void *u, const void *val, size_t *n)
{
	if (over()) {
		*n = 0;
		return 0;
	}
	return context_json_ops.is_list(u, val, n);
}

static const void *b_list_item(void *u, const void *list, size_t i)
{
	return context_json_ops.list_item(u, list, i);
}

static void b_to_text(void *u, const void *val, char *scratch, size_t n, const char **s,
		      size_t *len)
{
	if (over()) {
		*s = "";
		*len = 0;
		return;
	}
	context_json_ops.to_text(u, val, scratch, n, s, len);
}

static const struct mustache_data_ops budget_ops = {
    .get = b_get,
    .is_falsey = b_is_falsey,
    .is_list = b_is_list,
    .list_item = b_list_item,
    .to_text = b_to_text,
};

/* ---- the target ----------------------------------------------------------- */

static void check_err(const char *err, size_t errlen)
{
	FZ_CHECK(memchr(err, '\0', errlen) != NULL, "err not terminated");
	FZ_CHECK(err[0] != '\0', "failure without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *a, *b;
	size_t alen, blen;
	fz_split(data, size, '\0', &a, &alen, &b, &blen);
	/* Exactly-sized copies: neither input is NUL-terminated. */
	char *src = malloc(alen ? alen : 1);
	if (alen)
		memcpy(src, a, alen);
	const char *jtext = b ? (const char *)b : default_ctx;
	size_t jlen = b ? blen : sizeof default_ctx - 1;
	char *json = malloc(jlen ? jlen : 1);
	if (jlen)
		memcpy(json, jtext, jlen);
	char err[256];

	memset(err, 'x', sizeof err);
	void *t = E->compile("fuzz", src, alen, err, sizeof err);
	if (!t) {
		check_err(err, sizeof err);
		goto out;
	}
	memset(err, 'x', sizeof err);
	void *ctx = E->context_parse(json, jlen, err, sizeof err);
	if (!ctx) {
		check_err(err, sizeof err);
		char err2[256], *o = NULL;
		size_t ol = 0;
		int rc = E->render(t, json, jlen, lookup_partial, NULL, AC_ESCAPE_HTML, &o, &ol,
				   err2, sizeof err2);
		FZ_CHECK(rc == -1 && !strcmp(err, err2), "render and context_parse differ: %s / %s",
			 err, err2);
		E->free_template(t);
		goto out;
	}

	/* The probe. */
	struct mustache_buf pb = {0};
	struct mustache_render_args args = {
	    .ops = &budget_ops,
	    .root = cj_root(ctx),
	    .escape = escape_html,
	    .partials = lookup_partial,
	};
	probe_out = &pb;
	tripped = 0;
	int prc = mustache_render(t, &args, &pb, err, sizeof err);
	probe_out = NULL;
	if (!tripped) {
		static const ac_escape modes[] = {AC_ESCAPE_HTML, AC_ESCAPE_MARKDOWN,
						  AC_ESCAPE_TEXT};
		for (size_t m = 0; m < 3; m++) {
			char e1[256], e2[256], *o1 = NULL, *o2 = NULL;
			size_t l1 = 0, l2 = 0;
			int r1 = E->render(t, json, jlen, lookup_partial, NULL, modes[m], &o1, &l1,
					   e1, sizeof e1);
			int r2 = E->render_ctx(t, ctx, lookup_partial, NULL, modes[m], &o2, &l2, e2,
					       sizeof e2);
			FZ_CHECK(r1 == r2, "mode %d: render %d, render_ctx %d", (int)modes[m], r1,
				 r2);
			if (r1 == 0) {
				FZ_CHECK(o1 && o2 && o1[l1] == '\0' && o2[l2] == '\0',
					 "output not terminated");
				FZ_CHECK(l1 == l2 && !memcmp(o1, o2, l1),
					 "mode %d: render and render_ctx differ", (int)modes[m]);
				if (modes[m] == AC_ESCAPE_HTML)
					FZ_CHECK(prc == 0 && l1 == pb.len &&
						     (!l1 || !memcmp(o1, pb.data, l1)),
						 "the probe and render differ");
				E->free_output(o1);
				free(o2); /* render_ctx: the C library's malloc */
			} else {
				check_err(e1, sizeof e1);
				FZ_CHECK(!strcmp(e1, e2), "errors differ: %s / %s", e1, e2);
				if (modes[m] == AC_ESCAPE_HTML)
					FZ_CHECK(prc != 0, "the probe passed, render failed: %s",
						 e1);
			}
		}
		/* An unknown mode is an error, not a crash. */
		char *o = NULL;
		size_t ol = 0;
		FZ_CHECK(
		    E->render_ctx(t, ctx, NULL, NULL, (ac_escape)3, &o, &ol, err, sizeof err) == -1,
		    "escape mode 3 accepted");
	}
	mustache_buf_release(&pb);
	E->context_free(ctx);
	E->free_template(t);
out:
	free(json);
	free(src);
	return 0;
}
