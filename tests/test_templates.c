#include <check.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "templates.h"
#include "testutil.h"

static char *dir;
static struct engine eng;

static void setup(void)
{
	char err[512], so[4200];
	const char *b = getenv("PLUGIN_BUILDDIR");
	snprintf(so, sizeof so, "%s/mustache/.libs/mustache.so", b ? b : "plugin");
	ck_assert_msg(engine_load(&eng, so, "/", err, sizeof err) == 0, "%s", err);
	dir = tu_tmpdir();
}

static void teardown(void)
{
	engine_unload(&eng);
	tu_rmrf(dir);
	free(dir);
}

static void put(const char *name, const char *text)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	tu_write(p, text);
}

START_TEST(front_matter_partials_and_render)
{
	put("welcome.md", "---\n"
			  "subject: \"Hello {{name}}\"\n"
			  "cc: [a@example.com, \"{{boss}}\"]\n"
			  "---\n"
			  "Dear {{name}},\n"
			  "{{>footer}}");
	put("footer.md", "-- {{team}}\n");
	struct strbuf errs;
	sb_init(&errs);
	struct template_set *set = templates_load(&eng, dir, &errs);
	ck_assert_msg(set != NULL, "%s", errs.data);
	ck_assert_uint_eq(set->n, 2);
	const struct tfile *t = templates_find(set, "welcome");
	ck_assert_ptr_nonnull(t);
	ck_assert(t->has_front);
	ck_assert_int_eq(t->body_line, 5);
	ck_assert(!templates_find(set, "footer")->has_front);
	const char ctx[] = "{\"name\":\"*Ada*\\nL\",\"boss\":\"b@example.com\",\"team\":\"Acme\"}";
	struct rendered r;
	char err[256];
	ck_assert_int_eq(templates_render(set, t, ctx, strlen(ctx), AC_ESCAPE_MARKDOWN, &r, err,
					  sizeof err),
			 0);
	ck_assert_str_eq(r.subject, "Hello *Ada* L"); /* text mode: no escaping, one line */
	ck_assert_str_eq(r.cc, "a@example.com, b@example.com");
	ck_assert_ptr_null(r.bcc);
	ck_assert_str_eq(r.body, "Dear \\*Ada\\*\\\nL,\n-- Acme\n");
	rendered_free(&r);
	templates_free(set);
	sb_free(&errs);
}
END_TEST

/* Subject, cc and bcc are header lines whatever makes them: a value in
 * triple braces, a partial of several lines, a YAML block of the template's
 * own. No line break gets through. */
START_TEST(header_fields_are_one_line)
{
	put("raw.md", "---\n"
		      "subject: \"Hi {{{name}}} {{> two}}\"\n"
		      "bcc: |\n  a@example.com\n  X-Injected: yes\n"
		      "---\n"
		      "Body\n");
	put("two.md", "line one\r\n\nBcc: evil@example.com\n");
	struct strbuf errs;
	sb_init(&errs);
	struct template_set *set = templates_load(&eng, dir, &errs);
	ck_assert_msg(set != NULL, "%s", errs.data);
	const char ctx[] = "{\"name\":\"a\\r\\nBcc: evil@example.com\"}";
	struct rendered r;
	char err[256];
	ck_assert_int_eq(templates_render(set, templates_find(set, "raw"), ctx, strlen(ctx),
					  AC_ESCAPE_MARKDOWN, &r, err, sizeof err),
			 0);
	ck_assert_str_eq(r.subject, "Hi a Bcc: evil@example.com line one Bcc: evil@example.com ");
	ck_assert_str_eq(r.bcc, "a@example.com X-Injected: yes ");
	rendered_free(&r);
	templates_free(set);
	sb_free(&errs);
}
END_TEST

START_TEST(errors_name_file_line_and_column)
{
	put("broken.md", "---\n"
			 "subject: Hi\n"
			 "---\n"
			 "line one\n"
			 "line two {{#open}}\n");
	put("nosubject.md", "---\ncc: x@example.com\n---\nbody\n");
	put("badkey.md", "---\nsubject: s\nfrom: me\n---\nbody\n");
	put("unclosed.md", "---\nsubject: s\nbody\n");
	put("badsubject.md", "---\nsubject: Hi {{/x}}\n---\nbody\n");
	struct strbuf errs;
	sb_init(&errs);
	ck_assert_ptr_null(templates_load(&eng, dir, &errs));
	char want[5][4400];
	snprintf(want[0], sizeof want[0], "%s/broken.md:5:10:", dir);
	snprintf(want[1], sizeof want[1], "%s/nosubject.md:2:1: front matter: subject is required",
		 dir);
	snprintf(want[2], sizeof want[2], "%s/badkey.md:3:1: front matter: unknown key from", dir);
	snprintf(want[3], sizeof want[3], "%s/unclosed.md:1:1: front matter has no closing --- line",
		 dir);
	snprintf(want[4], sizeof want[4], "%s/badsubject.md:2:13:", dir);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(strstr(errs.data, want[i]) != NULL, "missing '%s' in:\n%s", want[i],
			      errs.data);
	sb_free(&errs);
}
END_TEST

START_TEST(file_without_front_matter_is_byte_for_byte)
{
	put("plain.md", "a {{x}}\n\nb");
	struct strbuf errs;
	sb_init(&errs);
	char path[4200];
	snprintf(path, sizeof path, "%s/plain.md", dir);
	struct template_set *set = templates_load_file(&eng, path, dir, &errs);
	ck_assert_msg(set != NULL, "%s", errs.data);
	const struct tfile *t = templates_find_path(set, path);
	struct rendered r;
	char err[256];
	ck_assert_int_eq(templates_render(set, t, "{\"x\":\"<y>\"}", 11, AC_ESCAPE_HTML, &r, err,
					  sizeof err),
			 0);
	ck_assert_ptr_null(r.subject);
	ck_assert_uint_eq(r.body_len, 14);
	ck_assert_str_eq(r.body, "a &lt;y&gt;\n\nb");
	rendered_free(&r);
	templates_free(set);
	sb_free(&errs);
}
END_TEST

/* The size of a descriptor built against the 1.0 header. */
#define ABI_1_0_SIZE (offsetof(ac_template_engine, free_output) + sizeof(void (*)(char *)))

START_TEST(engine_abi_checked)
{
	ac_template_engine e = *eng.e;
	char err[512];
	ck_assert_uint_eq(e.abi_minor, 1);
	e.abi_major = AC_TEMPLATE_ABI_MAJOR + 1;
	e.abi_minor = 0;
	ck_assert_int_eq(engine_check_abi(&e, "x.so", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "x.so: template engine ABI 2.0 is not compatible"));
	e = *eng.e;
	e.abi_minor = AC_TEMPLATE_ABI_MINOR + 1;
	ck_assert_int_eq(engine_check_abi(&e, "x.so", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "x.so: template engine ABI 1.2 is newer"));
	e = *eng.e;
	e.render = NULL;
	ck_assert_int_eq(engine_check_abi(&e, "x.so", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "lacks the required field render"));
	/* 1.1: the three context callbacks go together */
	e = *eng.e;
	e.render_ctx = NULL;
	ck_assert_int_eq(engine_check_abi(&e, "x.so", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "only some of context_parse"));
	e.context_parse = NULL;
	e.context_free = NULL;
	ck_assert_int_eq(engine_check_abi(&e, "x.so", err, sizeof err), 0);
	/* a 1.0 engine: what lies past its struct_size is not looked at */
	e = *eng.e;
	e.abi_minor = 0;
	e.struct_size = ABI_1_0_SIZE;
	e.render_ctx = NULL;
	ck_assert_int_eq(engine_check_abi(&e, "x.so", err, sizeof err), 0);
	e.struct_size = ABI_1_0_SIZE - 1;
	ck_assert_int_eq(engine_check_abi(&e, "x.so", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "descriptor too small"));
}
END_TEST

static void put_summary(void)
{
	put("mail.md", "---\n"
		       "subject: \"Hi {{who.name}}{{#n}} #{{n}}{{/n}}\"\n"
		       "bcc: \"{{who.mail}}\"\n"
		       "---\n"
		       "{{>head}}\n"
		       "{{#items}}\n"
		       "  - {{.}}\n"
		       "{{/items}}\n"
		       "{{^items}}none{{/items}}\n");
	put("head.md", "Dear {{who.name}},\n");
}

/* What a 1.0 engine renders (JSON text for every part, output copied) is
 * what the 1.1 path renders (the context parsed once, buffers taken). */
START_TEST(old_engine_renders_the_same)
{
	put_summary();
	struct strbuf errs;
	sb_init(&errs);
	struct template_set *set = templates_load(&eng, dir, &errs);
	ck_assert_msg(set != NULL, "%s", errs.data);
	ac_template_engine old = *eng.e;
	old.abi_minor = 0;
	old.struct_size = ABI_1_0_SIZE;
	old.context_parse = NULL; /* past struct_size: must not be called */
	old.render_ctx = NULL;
	old.context_free = NULL;
	struct engine oeng = eng;
	oeng.e = &old;
	struct template_set oset = *set;
	oset.eng = &oeng;
	const struct tfile *t = templates_find(set, "mail");
	static const char *const ctxs[] = {
		"{\"who\":{\"name\":\"*Ada*\",\"mail\":\"a@x\\n\"},\"n\":3,"
		"\"items\":[\"one\",\"two [x](y)\"]}",
		"{\"items\":[]}",
		"[]",
	};
	char err[256];
	for (size_t i = 0; i < 3; i++) {
		struct rendered a, b;
		ck_assert_int_eq(templates_render(set, t, ctxs[i], strlen(ctxs[i]),
						  AC_ESCAPE_MARKDOWN, &a, err, sizeof err),
				 0);
		ck_assert_int_eq(templates_render(&oset, t, ctxs[i], strlen(ctxs[i]),
						  AC_ESCAPE_MARKDOWN, &b, err, sizeof err),
				 0);
		ck_assert_uint_eq(a.body_len, b.body_len);
		ck_assert_str_eq(a.body, b.body);
		ck_assert_str_eq(a.subject, b.subject);
		ck_assert_str_eq(a.bcc, b.bcc);
		ck_assert_ptr_null(a.cc);
		ck_assert_ptr_null(b.cc);
		if (i == 0) {
			ck_assert_str_eq(a.subject, "Hi *Ada* #3");
			ck_assert_str_eq(a.bcc, "a@x ");
			ck_assert_str_eq(a.body, "Dear \\*Ada\\*,\n  - one\n  - two \\[x\\]\\(y\\)\n\n");
		}
		rendered_free(&a);
		rendered_free(&b);
	}
	/* invalid JSON: the same kind of error both ways */
	struct rendered r;
	ck_assert_int_eq(templates_render(set, t, "{\"a\":", 5, AC_ESCAPE_MARKDOWN, &r, err,
					  sizeof err),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "not valid JSON"));
	ck_assert_ptr_null(r.body);
	ck_assert_int_eq(templates_render(&oset, t, "{\"a\":", 5, AC_ESCAPE_MARKDOWN, &r, err,
					  sizeof err),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "not valid JSON"));
	templates_free(set);
	sb_free(&errs);
}
END_TEST

/* One parsed context, several renders: each equals templates_render. */
START_TEST(context_parsed_once)
{
	put_summary();
	struct strbuf errs;
	sb_init(&errs);
	struct template_set *set = templates_load(&eng, dir, &errs);
	ck_assert_msg(set != NULL, "%s", errs.data);
	const struct tfile *t = templates_find(set, "mail");
	const char ctx[] = "{\"who\":{\"name\":\"B\"},\"items\":[\"x\"]}";
	char err[256];
	struct rendered want, r;
	ck_assert_int_eq(templates_render(set, t, ctx, strlen(ctx), AC_ESCAPE_HTML, &want, err,
					  sizeof err),
			 0);
	struct tcontext c;
	ck_assert_int_eq(templates_context_parse(set, &c, ctx, strlen(ctx), err, sizeof err), 0);
	ck_assert_ptr_nonnull(c.parsed);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(templates_render_ctx(set, t, &c, AC_ESCAPE_HTML, &r, err, sizeof err),
				 0);
		ck_assert_str_eq(r.body, want.body);
		ck_assert_str_eq(r.subject, want.subject);
		ck_assert_str_eq(r.bcc, want.bcc);
		rendered_free(&r);
	}
	templates_context_free(set, &c);
	ck_assert_ptr_null(c.parsed);
	ck_assert_int_eq(templates_context_parse(set, &c, "nope", 4, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "not valid JSON"));
	rendered_free(&want);
	templates_free(set);
	sb_free(&errs);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("templates");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, front_matter_partials_and_render);
	tcase_add_test(tc, header_fields_are_one_line);
	tcase_add_test(tc, errors_name_file_line_and_column);
	tcase_add_test(tc, file_without_front_matter_is_byte_for_byte);
	tcase_add_test(tc, engine_abi_checked);
	tcase_add_test(tc, old_engine_renders_the_same);
	tcase_add_test(tc, context_parsed_once);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
