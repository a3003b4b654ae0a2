/*
 * Runs the official Mustache spec files through the exported
 * aftercall_template_engine descriptor (compile + render, html escaping).
 *
 * The spec directory is $MUSTACHE_SPEC_DIR, else MUSTACHE_SPEC_DIR_DEFAULT
 * (a compile-time string), else ../shared/mustache-spec next to the source
 * tree that holds this file. Every test of every file runs as it is: nothing
 * is skipped or special-cased. Lambdas are not part of these files.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include <aftercall/template.h>

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
