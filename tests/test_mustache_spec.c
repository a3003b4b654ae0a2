/*
 * Runs the official Mustache spec files through the exported
 * aftercall_template_engine descriptor (compile + render, html escaping).
 *
 * The spec directory is $MUSTACHE_SPEC_DIR, else MUSTACHE_SPEC_DIR_DEFAULT
 * (a compile-time string), else ../shared/mustache-spec next to the source
 * tree that holds this file. Every test of every file runs as it is: nothing
 * is skipped or special-cased. Lambdas are not part of these files. Each
 * test runs twice: through render (JSON text) and through the ABI 1.1 pair
 * context_parse + render_ctx.
 *
 * Also here: the engine's JSON parser against jansson (same inputs accepted,
 * same values), and the partial cache (keyed by source text, shared by
 * concurrent renders).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include <aftercall/template.h>

#include "context_json.h"

extern const ac_template_engine aftercall_template_engine;

static const char *const spec_files[] = {
	"comments.json",
	"delimiters.json",
	"interpolation.json",
	"inverted.json",
	"partials.json",
	"sections.json",
	"~dynamic-names.json",
	"~inheritance.json",
};

#define NFILES (sizeof(spec_files) / sizeof(spec_files[0]))

/* The source tree's parent, from this file's path: <root>/tests/x.c. */
static void default_dir(char *buf, size_t len)
{
#ifdef MUSTACHE_SPEC_DIR_DEFAULT
	snprintf(buf, len, "%s", MUSTACHE_SPEC_DIR_DEFAULT);
#else
	const char *f = __FILE__;
	const char *slash = strrchr(f, '/');
	size_t n = slash ? (size_t)(slash - f) : 0;

	/* strip "tests" to get the source root, then go one level up */
	if (n)
		snprintf(buf, len, "%.*s/../../shared/mustache-spec", (int)n, f);
	else
		snprintf(buf, len, "../../shared/mustache-spec");
#endif
}

static void spec_path(const char *file, char *buf, size_t len)
{
	const char *dir = getenv("MUSTACHE_SPEC_DIR");
	char def[4096];

	if (!dir || !*dir) {
		default_dir(def, sizeof(def));
		dir = def;
	}
	snprintf(buf, len, "%s/%s", dir, file);
}

static const char *partial_cb(void *ctx, const char *name, size_t *len)
{
	json_t *p = json_object_get(ctx, name);

	if (!json_is_string(p))
		return NULL;
	*len = json_string_length(p);
	return json_string_value(p);
}

/* Prints s (n bytes) as a C-like string literal. */
static void print_quoted(const char *label, const char *s, size_t n)
{
	size_t i;

	printf("    %s \"", label);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			printf("\\n");
		else if (c == '\r')
			printf("\\r");
		else if (c == '\t')
			printf("\\t");
		else if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("\"\n");
}

/* Line diff of expected vs got: lines that differ, by line number. */
static void print_diff(const char *exp, size_t elen, const char *got,
		       size_t glen)
{
	size_t i = 0, j = 0, line = 1, off = 0;

	while (off < elen && off < glen && exp[off] == got[off])
		off++;
	printf("    first difference at byte %zu\n", off);
	while (i < elen || j < glen) {
		size_t ie = i, je = j;

		while (ie < elen && exp[ie] != '\n')
			ie++;
		while (je < glen && got[je] != '\n')
			je++;
		if (ie - i != je - j || memcmp(exp + i, got + j, ie - i)) {
			printf("    line %zu:\n", line);
			if (i < elen)
				print_quoted("-", exp + i, ie - i);
			if (j < glen)
				print_quoted("+", got + j, je - j);
		}
		i = ie < elen ? ie + 1 : ie;
		j = je < glen ? je + 1 : je;
		line++;
	}
}

/* Runs one spec test; returns 1 when it passes. */
static int run_one(const char *file, json_t *t)
{
	const ac_template_engine *e = &aftercall_template_engine;
	const char *name = json_string_value(json_object_get(t, "name"));
	const char *desc = json_string_value(json_object_get(t, "desc"));
	json_t *tpl = json_object_get(t, "template");
	json_t *exp = json_object_get(t, "expected");
	json_t *partials = json_object_get(t, "partials");
	char err[512] = "";
	char *ctx, *out = NULL;
	size_t out_len = 0;
	void *h;
	int ok = 0;

	ctx = json_dumps(json_object_get(t, "data"),
			 JSON_ENCODE_ANY | JSON_COMPACT);
	ck_assert_ptr_nonnull(ctx);
	h = e->compile(file, json_string_value(tpl), json_string_length(tpl),
		       err, sizeof(err));
	if (h && e->render(h, ctx, strlen(ctx), partials ? partial_cb : NULL,
			   partials, AC_ESCAPE_HTML, &out, &out_len, err,
			   sizeof(err)) == 0) {
		ok = out_len == json_string_length(exp) &&
		     !memcmp(out, json_string_value(exp), out_len);
		if (!ok) {
			printf("FAIL %s: %s\n    %s\n", file, name, desc);
			print_diff(json_string_value(exp),
				   json_string_length(exp), out, out_len);
		}
		e->free_output(out);
	} else {
		printf("FAIL %s: %s\n    %s\n    error: %s\n", file, name, desc,
		       err);
	}
	/* the same through a context parsed once; the output is free()d */
	if (h && ok) {
		void *c = e->context_parse(ctx, strlen(ctx), err, sizeof(err));

		ok = 0;
		if (c && e->render_ctx(h, c, partials ? partial_cb : NULL,
				       partials, AC_ESCAPE_HTML, &out, &out_len,
				       err, sizeof(err)) == 0) {
			ok = out_len == json_string_length(exp) &&
			     !memcmp(out, json_string_value(exp), out_len) &&
			     out[out_len] == '\0';
			free(out);
		}
		if (!ok)
			printf("FAIL %s: %s (context_parse + render_ctx): %s\n",
			       file, name, err);
		if (c)
			e->context_free(c);
	}
	if (h)
		e->free_template(h);
	free(ctx);
	return ok;
}

START_TEST(test_spec_file)
{
	const char *file = spec_files[_i];
	char path[4200];
	json_error_t jerr;
	json_t *root, *tests, *t;
	size_t i, passed = 0, total;

	spec_path(file, path, sizeof(path));
	root = json_load_file(path, 0, &jerr);
	ck_assert_msg(root != NULL, "cannot load %s: %s (set MUSTACHE_SPEC_DIR)",
		      path, jerr.text);
	tests = json_object_get(root, "tests");
	ck_assert_msg(json_is_array(tests), "%s: no \"tests\" array", path);
	total = json_array_size(tests);
	json_array_foreach(tests, i, t)
		passed += run_one(file, t);
	printf("spec %s: %zu/%zu passed\n", file, passed, total);
	fflush(stdout);
	json_decref(root);
	ck_assert_msg(total > 0 && passed == total,
		      "spec %s: %zu of %zu tests failed", file, total - passed,
		      total);
}
END_TEST

START_TEST(test_descriptor)
{
	const ac_template_engine *e = &aftercall_template_engine;

	ck_assert_uint_eq(e->abi_major, AC_TEMPLATE_ABI_MAJOR);
	ck_assert_uint_eq(e->abi_minor, AC_TEMPLATE_ABI_MINOR);
	ck_assert_uint_eq(e->struct_size, sizeof(ac_template_engine));
	ck_assert_str_eq(e->name, "mustache");
	ck_assert_ptr_nonnull(e->version);
	ck_assert_ptr_nonnull(e->compile);
	ck_assert_ptr_nonnull(e->render);
	ck_assert_ptr_nonnull(e->free_template);
	ck_assert_ptr_nonnull(e->free_output);
	ck_assert_ptr_nonnull(e->context_parse);
	ck_assert_ptr_nonnull(e->render_ctx);
	ck_assert_ptr_nonnull(e->context_free);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The JSON parser against jansson                                     */

/* Same value: same type and content; objects with the same distinct keys
 * (the parser keeps duplicates and finds the last, as jansson keeps it). */
static int same_value(const struct cj_value *v, json_t *j)
{
	size_t i, distinct = 0;

	switch (v->type) {
	case CJ_NULL: return json_is_null(j);
	case CJ_TRUE: return json_is_true(j);
	case CJ_FALSE: return json_is_false(j);
	case CJ_INTEGER:
		return json_is_integer(j) && json_integer_value(j) == v->u.i;
	case CJ_REAL:
		return json_is_real(j) && json_real_value(j) == v->u.d;
	case CJ_STRING:
		return json_is_string(j) && json_string_length(j) == v->n &&
		       !memcmp(json_string_value(j), v->u.s, v->n) &&
		       v->u.s[v->n] == '\0';
	case CJ_ARRAY:
		if (!json_is_array(j) || json_array_size(j) != v->n)
			return 0;
		for (i = 0; i < v->n; i++)
			if (!same_value(&v->u.items[i], json_array_get(j, i)))
				return 0;
		return 1;
	case CJ_OBJECT:
		if (!json_is_object(j))
			return 0;
		for (i = 0; i < v->n; i++) {
			const struct cj_member *m = &v->u.members[i];
			const struct cj_value *last =
				cj_object_get(v, m->key, m->klen);
			json_t *jv = json_object_getn(j, m->key, m->klen);

			if (!last || !jv || !same_value(last, jv))
				return 0;
			distinct += last == &m->val;
		}
		return distinct == json_object_size(j);
	}
	return 0;
}

/* 1 when the parser under flags and jansson under jflags agree on s. */
static int agrees_as(const char *s, size_t n, int flags, size_t jflags)
{
	char err[256] = "";
	json_error_t jerr;
	json_t *j = json_loadb(s, n, jflags, &jerr);
	struct cj_doc *d = cj_parse(s, n, flags, "context", err, sizeof(err));
	int ok;

	if (!j || !d) {
		ok = !j && !d && strstr(err, "not valid JSON") != NULL;
		if (!ok)
			printf("JSON disagreement (flags %d) on [%.*s]: jansson %s, parser %s\n",
			       flags, (int)n, s, j ? "accepts" : jerr.text,
			       d ? "accepts" : err);
	} else {
		ok = same_value(cj_root(d), j);
		if (!ok)
			printf("JSON values differ on [%.*s]\n", (int)n, s);
	}
	json_decref(j);
	cj_free(d);
	return ok;
}

/* 1 when the parser agrees with jansson on s (n bytes) both ways: as the
 * engine reads contexts (any root, NUL allowed, last duplicate wins) and
 * as the host reads bodies and tokens (CJ_STRICT: jansson's defaults plus
 * JSON_REJECT_DUPLICATES). */
static int agrees(const char *s, size_t n)
{
	return agrees_as(s, n, 0, JSON_DECODE_ANY | JSON_ALLOW_NUL) &
	       agrees_as(s, n, CJ_STRICT, JSON_REJECT_DUPLICATES);
}

static const char *const json_cases[] = {
	"{}", "[]", "null", "true", "false", "0", "-0", "1", "-1", "12345",
	"9223372036854775807", "-9223372036854775808", "9223372036854775808",
	"-9223372036854775809", "1.5", "-1.5e3", "1E-2", "1e+2", "1e400",
	"-1e400", "1e-400", "0.1", "01", "-", "1.", ".5", "1e", "1e+", "+1",
	"\"\"", "\"abc\"", "\"a\\\"b\"", "\"\\/\\b\\f\\n\\r\\t\"",
	"\"\\u0041\\u00e9\\u20AC\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"",
	"\"\\ude00\"", "\"\\ud83dx\"", "\"\\ud83d\\u0041\"", "\"\\u0000\"",
	"\"\\u00\"", "\"\\x\"", "\"\\\"", "\"abc", "\"a\tb\"", "\"a\x01\"",
	"\"\xc3\xa9\"", "\"\xc3\"", "\"\xff\"", "\"\xed\xa0\x80\"",
	"\"\xf0\x9f\x98\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xc0\xaf\"",
	"\"\x7f\"", "{\"a\":1}", "{\"a\":1,\"a\":2}", "{\"a\":1,}", "[1,]", "[,1]",
	"{\"a\" 1}", "{a:1}", "{\"a\":}", "{\"\\u0000\":1}", "{\"\":1}",
	"[1 2]", "[1,[2,[3,{\"x\":[]}]]]", " \t\r\n[ 1 , 2 ] \n", "[1] x",
	"[1]]", "", " ", "nul", "truex", "tru", "[true,false,null]", "\xef\xbb\xbf{}",
	"{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,"
	"\"k8\":8,\"k9\":9,\"k10\":10,\"k1\":11,\"k12\":[{\"z\":\"\"}]}",
	"[\"a long string that crosses several eight-byte words\","
	"\"with an \\\"escape\\\" in the middle of it, and more text\"]",
	"\"\x01\"", "[\"\\u12\"]", "{\"a\":1 \"b\":2}", "[1,2", "{\"a\":[1,2}",
	"[\"a\\u0000b\"]", "{\"a\":{\"b\":1,\"b\":2}}", "[{\"x\":1},{\"x\":1}]",
	"{\"a\":1,\"\\u0061\":2}",
};

START_TEST(test_json_cases)
{
	size_t i, bad = 0;

	for (i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++)
		bad += !agrees(json_cases[i], strlen(json_cases[i]));
	/* a NUL byte inside the text, outside and inside a string */
	bad += !agrees("[1]\0", 4);
	bad += !agrees("\"a\0b\"", 5);
	ck_assert_msg(bad == 0, "%zu JSON inputs judged differently", bad);
}
END_TEST

/* Random edits of valid documents: the parser must judge each one as
 * jansson does. Deterministic (fixed seed). */
START_TEST(test_json_mutations)
{
	static const char *const seeds[] = {
		"{\"caller\":{\"name\":\"Ada \\u00e9\\n\",\"n\":-12.5e-1},"
		"\"list\":[1,true,null,\"x\\ud83d\\ude00\"],\"e\":{}}",
		"[{\"a\":[[],{}]},\"\xc3\xa9\xe2\x82\xac\",0,-0.0,1E5,\"\\\\\\/\"]",
	};
	static const char bytes[] = "{}[],:\"\\ \n0123456789.-+eEtrufalsn\x80\xc3\xff\x01u";
	unsigned long long x = 88172645463325252ULL;
	size_t k, bad = 0;
	char buf[256];

	for (k = 0; k < 60000; k++) {
		const char *seed = seeds[k % 2];
		size_t n = strlen(seed), edits, e;

		memcpy(buf, seed, n);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		edits = 1 + x % 3;
		for (e = 0; e < edits; e++) {
			size_t at;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			at = x % (n + 1);
			switch ((x >> 20) % 3) {
			case 0:	/* replace */
				if (at < n)
					buf[at] = bytes[(x >> 32) % (sizeof(bytes) - 1)];
				break;
			case 1:	/* delete */
				if (at < n) {
					memmove(buf + at, buf + at + 1, n - at - 1);
					n--;
				}
				break;
			default: /* insert */
				if (n + 1 < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, n - at);
					buf[at] = bytes[(x >> 32) % (sizeof(bytes) - 1)];
					n++;
				}
				break;
			}
		}
		bad += !agrees(buf, n);
		if (bad > 10)
			break;
	}
	ck_assert_msg(bad == 0, "%zu mutated JSON inputs judged differently",
		      bad);
}
END_TEST

START_TEST(test_json_depth)
{
	size_t n = CJ_MAX_DEPTH + 1, i;
	char *s = malloc(2 * n + 1);

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < n; i++) {
		s[i] = '[';
		s[2 * n - 1 - i] = ']';
	}
	ck_assert(agrees(s, 2 * n));		/* too deep for both */
	ck_assert(agrees(s + 1, 2 * n - 2));	/* at the limit: fine */
	free(s);
}
END_TEST

/* Large objects (hash index), last duplicate wins. */
START_TEST(test_json_large_object)
{
	char *s = malloc(100000), err[256];
	size_t n = 0, i;
	struct cj_doc *d;

	ck_assert_ptr_nonnull(s);
	s[n++] = '{';
	for (i = 0; i < 3000; i++)
		n += (size_t)sprintf(s + n, "%s\"key%zu\":%zu", i ? "," : "",
				     i % 2000, i);
	s[n++] = '}';
	ck_assert(agrees(s, n));
	d = cj_parse(s, n, 0, "context", err, sizeof(err));
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(cj_object_get(cj_root(d), "key5", 4)->u.i, 2005);
	ck_assert_int_eq(cj_object_get(cj_root(d), "key1999", 7)->u.i, 1999);
	ck_assert_ptr_null(cj_object_get(cj_root(d), "key2000", 7));
	cj_free(d);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Partial cache                                                       */

/* The partial's source lives in one buffer whose text changes between
 * renders: the cache must follow the text, not the pointer. */
static const char *changing_cb(void *ctx, const char *name, size_t *len)
{
	(void)name;
	*len = strlen(ctx);
	return ctx;
}

static char *render_ctx_str(void *h, void *c, ac_partial_fn cb, void *pctx)
{
	const ac_template_engine *e = &aftercall_template_engine;
	char err[256] = "", *out = NULL;
	size_t len = 0;

	ck_assert_msg(e->render_ctx(h, c, cb, pctx, AC_ESCAPE_HTML, &out, &len,
				    err, sizeof(err)) == 0, "%s", err);
	return out;
}

START_TEST(test_partial_cache_follows_the_text)
{
	const ac_template_engine *e = &aftercall_template_engine;
	char err[256] = "", src[64];
	void *h = e->compile("t", "[{{>p}}]", 8, err, sizeof(err));
	void *c = e->context_parse("{\"a\":\"A\",\"b\":\"B\"}", 17, err,
				   sizeof(err));
	char *out;
	int i;

	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(c);
	/* more distinct texts than the cache keeps per tag */
	for (i = 0; i < 20; i++) {
		char want[64];

		snprintf(src, sizeof(src), "%d{{%s}}", i, i % 2 ? "a" : "b");
		snprintf(want, sizeof(want), "[%d%s]", i, i % 2 ? "A" : "B");
		out = render_ctx_str(h, c, changing_cb, src);
		ck_assert_str_eq(out, want);
		free(out);
	}
	/* a broken partial is an error every time, not cached */
	snprintf(src, sizeof(src), "{{#x}}");
	for (i = 0; i < 2; i++) {
		char *o = NULL;
		size_t len;

		ck_assert_int_eq(e->render_ctx(h, c, changing_cb, src,
					       AC_ESCAPE_HTML, &o, &len, err,
					       sizeof(err)), -1);
	}
	e->context_free(c);
	e->free_template(h);
}
END_TEST

struct conc {
	void *h, *c;
	int ok;
};

static const char *named_cb(void *ctx, const char *name, size_t *len)
{
	static const char *const src[][2] = {
		{ "row", "<{{name}}:{{>cell}}>" },
		{ "cell", "{{#tags}}{{.}},{{/tags}}" },
	};
	size_t i;

	(void)ctx;
	for (i = 0; i < 2; i++)
		if (!strcmp(name, src[i][0])) {
			*len = strlen(src[i][1]);
			return src[i][1];
		}
	return NULL;
}

static void *conc_thread(void *arg)
{
	const ac_template_engine *e = &aftercall_template_engine;
	struct conc *cc = arg;
	char err[256], *out;
	size_t len;
	int i;

	cc->ok = 1;
	for (i = 0; i < 300 && cc->ok; i++) {
		if (e->render_ctx(cc->h, cc->c, named_cb, NULL, AC_ESCAPE_HTML,
				  &out, &len, err, sizeof(err))) {
			cc->ok = 0;
			break;
		}
		cc->ok = !strcmp(out, "<x&amp;y:a,b,>|<x&amp;y:a,b,>");
		free(out);
	}
	return NULL;
}

/* Several threads render one template against one context at once, all
 * compiling and sharing its partials (run under helgrind too). */
START_TEST(test_concurrent_renders)
{
	const ac_template_engine *e = &aftercall_template_engine;
	char err[256] = "";
	struct conc cc[4];
	pthread_t th[4];
	void *h = e->compile("t", "{{>row}}|{{>row}}", 17, err, sizeof(err));
	static const char js[] = "{\"name\":\"x&y\",\"tags\":[\"a\",\"b\"]}";
	void *c = e->context_parse(js, sizeof(js) - 1, err, sizeof(err));
	int i;

	ck_assert_msg(h && c, "%s", err);
	for (i = 0; i < 4; i++) {
		cc[i].h = h;
		cc[i].c = c;
		ck_assert_int_eq(pthread_create(&th[i], NULL, conc_thread, &cc[i]),
				 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(cc[i].ok, "thread %d rendered wrong text", i);
	}
	e->context_free(c);
	e->free_template(h);
}
END_TEST

static Suite *spec_suite(void)
{
	Suite *s = suite_create("mustache-spec");
	TCase *tc = tcase_create("spec");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_descriptor);
	tcase_add_loop_test(tc, test_spec_file, 0, (int)NFILES);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_json_cases);
	tcase_add_test(tc, test_json_mutations);
	tcase_add_test(tc, test_json_depth);
	tcase_add_test(tc, test_json_large_object);
	suite_add_tcase(s, tc);

	tc = tcase_create("partials");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_partial_cache_follows_the_text);
	tcase_add_test(tc, test_concurrent_renders);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(spec_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
