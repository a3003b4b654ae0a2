/*
 * Escaping tests for the Mustache engine.
 *
 * Markdown: each hostile value is rendered through the exported engine in
 * markdown mode inside three templates (mid-sentence, alone as the whole
 * document, alone on a line inside a paragraph), the result is piped through
 * Debian's `cmark --unsafe` and `cmark-gfm` with the GFM extensions (both
 * required), and the HTML must
 *   - contain exactly one <p> and no tag but <p>, </p> and <br />, and none
 *     of <a <img <script <em> <strong> <h1-6 <li> <code> <pre> <table>
 *     <blockquote> <del> <hr;
 *   - show as visible text (tags stripped, entities decoded) exactly the
 *     template's text with the value inserted, after the documented
 *     transformation: CR LF / CR / LF inside the value become line breaks
 *     (<br />), line breaks at the end of the value are dropped, NUL and
 *     ill-formed UTF-8 bytes become U+FFFD, and each '@' is followed by a
 *     zero-width space (so that GFM links no e-mail address).
 * A missing cmark or cmark-gfm is a failure.
 *
 * Text mode: white-space runs (CR and LF included) fold to one space.
 * {{{x}}} and {{&x}} bypass escaping in every mode.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include <aftercall/template.h>

#include "escape.h"

extern const ac_template_engine aftercall_template_engine;

#define FFFD "\xEF\xBF\xBD"

struct hostile {
	const char *name;
	const char *val;
	size_t len;
	const char *expect;	/* visible text of the value; NULL: = val */
	size_t elen;
};

#define V(n, s) { n, s, sizeof(s) - 1, NULL, 0 }
#define VX(n, s, e) { n, s, sizeof(s) - 1, e, sizeof(e) - 1 }

static const struct hostile hostile[] = {
	V("link", "[x](http://evil.example)"),
	V("javascript link", "[x](javascript:alert(1))"),
	V("image", "![i](http://x/i.png)"),
	V("script", "<script>alert(1)</script>"),
	V("raw img", "<img src=x onerror=alert(1)>"),
	V("autolink", "<http://x>"),
	V("email autolink", "<foo@evil.example>"),
	V("bare email address (GFM links it)", "billing@evil.example"),
	V("mailto: and xmpp: (GFM links them)", "mailto:pay@evil.example or xmpp:pay@evil.example"),
	V("strong", "**b**"),
	V("strong underscores", "__b__"),
	V("em underscore", "_i_"),
	V("em star", "*i*"),
	V("heading", "# h"),
	V("heading after newline", "a\n###### h"),
	V("bullet after newline", "a\n- item"),
	V("plus bullet after newline", "a\n+ item"),
	V("star bullet after newline", "a\n* item"),
	V("ordered after newline", "a\n1. item"),
	V("ordered paren after newline", "a\n1) item"),
	V("task list", "- [ ] task"),
	V("code span", "`code`"),
	V("double backticks", "``a ` b``"),
	V("fence", "```\ncode\n```"),
	V("tilde fence", "~~~ js\ncode\n~~~"),
	V("table", "|a|b|\n|-|-|\n|c|d|"),
	V("table no pipes", "a | b\n--- | ---\nc | d"),
	V("entity amp", "&amp;"),
	V("entity hex", "&#x41;"),
	V("entity named", "&copy; &nbsp;"),
	V("html comment", "<!-- c -->"),
	V("html block", "<div>\n*x*\n</div>"),
	VX("nul", "a\0b", "a" FFFD "b"),
	V("quote", "> quote"),
	V("quote after newline", "a\n> quote"),
	V("setext dashes after newline", "a\n---"),
	V("setext equals after newline", "a\n==="),
	V("thematic break", "***"),
	V("thematic break spaced", "a\n- - -"),
	V("indented code", "    indented code"),
	V("indented code after newline", "a\n    indented code"),
	V("tab indented code", "\tcode"),
	V("bare www", "www.evil.example"),
	V("bare https", "https://evil.example/path?q=1"),
	V("backslashes", "\\ \\\\ \\*"),
	V("trailing backslash", "a\\\nb\\"),
	V("reference definition", "[ref]: http://x"),
	V("reference use", "[foo]\n\n[foo]: http://x"),
	V("footnote", "[^1]"),
	V("strike", "~~strike~~"),
	V("hard break spaces", "a  \nb"),
	V("blank lines", "a\n\n\nb"),
	VX("crlf and cr", "a\r\nb\rc", "a\nb\nc"),
	VX("trailing newlines", "abc\r\n\n", "abc"),
	VX("leading newline", "\nabc", "\nabc"),
	V("surrounding blanks", "   x \t "),
	V("blanks only", "    "),
	V("unicode", "\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xae"),
	V("all ascii punctuation", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
};

#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

/* Templates: text before and after {{v}}. */
static const char *const tpl_pre[] = { "Hello ", "", "Intro\n" };
static const char *const tpl_post[] = { ", bye", "", "\nOutro" };

#define NTPL 3

/* ------------------------------------------------------------------ */
/* Engine                                                              */

/* Renders tpl with context {"v": val}; returns malloc'd output or NULL. */
static char *render(const char *tpl, const char *val, size_t len,
		    ac_escape mode, size_t *out_len, char *err, size_t errlen)
{
	const ac_template_engine *e = &aftercall_template_engine;
	json_t *ctx = json_pack("{s:s%}", "v", val, len);
	char *js, *out = NULL, *copy = NULL;
	void *h;

	ck_assert_ptr_nonnull(ctx);
	js = json_dumps(ctx, JSON_COMPACT);
	json_decref(ctx);
	ck_assert_ptr_nonnull(js);
	h = e->compile("test", tpl, strlen(tpl), err, errlen);
	ck_assert_msg(h != NULL, "compile: %s", err);
	if (e->render(h, js, strlen(js), NULL, NULL, mode, &out, out_len, err,
		      errlen) == 0) {
		copy = malloc(*out_len + 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, out, *out_len + 1);
		e->free_output(out);
	}
	e->free_template(h);
	free(js);
	return copy;
}

/* ------------------------------------------------------------------ */
/* cmark                                                               */

static int have_cmd(const char *cmd)
{
	char line[256];
	int rc;

	snprintf(line, sizeof(line), "%s --version >/dev/null 2>&1", cmd);
	rc = system(line);
	return rc == 0;
}

/* Pipes md through `cmd`; returns malloc'd HTML. */
static char *markdown_to_html(const char *cmd, const char *md, size_t len)
{
	char path[] = "/tmp/test_mustache_escape.XXXXXX";
	char line[512];
	char *html = NULL;
	size_t hlen = 0, cap = 0, n;
	FILE *f, *p;
	int fd, status;

	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp failed");
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(md, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);

	snprintf(line, sizeof(line), "%s '%s'", cmd, path);
	p = popen(line, "r");
	ck_assert_msg(p != NULL, "cannot run %s", cmd);
	do {
		if (cap - hlen < 4096) {
			cap = cap ? cap * 2 : 65536;
			html = realloc(html, cap + 1);
			ck_assert_ptr_nonnull(html);
		}
		n = fread(html + hlen, 1, cap - hlen, p);
		hlen += n;
	} while (n > 0);
	html[hlen] = '\0';
	status = pclose(p);
	unlink(path);
	ck_assert_msg(status == 0, "`%s` failed (status %d): is it installed?",
		      cmd, status);
	return html;
}

/* Appends code point cp as UTF-8. */
static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Visible text of HTML: tags stripped, entities decoded, trailing LFs
 * dropped. Returns malloc'd text, its length in *len. */
static char *visible(const char *html, size_t *len)
{
	static const struct { const char *e; char c; } named[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' },
	};
	char *o = malloc(strlen(html) + 1);
	size_t n = 0, k;
	const char *s = html;

	ck_assert_ptr_nonnull(o);
	while (*s) {
		if (*s == '<') {
			s = strchr(s, '>');
			ck_assert_ptr_nonnull(s);
			s++;
			continue;
		}
		if (*s == '&' && s[1] == '#') {
			char *end;
			unsigned long cp = s[2] == 'x' || s[2] == 'X' ?
					   strtoul(s + 3, &end, 16) :
					   strtoul(s + 2, &end, 10);

			ck_assert_msg(*end == ';', "bad entity in %s", html);
			n += put_utf8(o + n, cp);
			s = end + 1;
			continue;
		}
		for (k = 0; *s == '&' && k < 4; k++)
			if (!strncmp(s, named[k].e, strlen(named[k].e)))
				break;
		if (*s == '&') {
			ck_assert_msg(k < 4, "unknown entity in %s", s);
			o[n++] = named[k].c;
			s += strlen(named[k].e);
			continue;
		}
		o[n++] = *s++;
	}
	while (n && o[n - 1] == '\n')
		n--;
	o[n] = '\0';
	*len = n;
	return o;
}

/* Only <p>, </p> and <br />, exactly one paragraph: no link of any kind,
 * GFM's links of e-mail addresses in plain text included. */
static void check_tags(const char *html, const char *what)
{
	static const char *const forbidden[] = {
		"<a",
		"<img", "<script", "<em>", "<strong>", "<h1", "<h2",
		"<h3", "<h4", "<h5", "<h6", "<li>", "<code>", "<pre>",
		"<table>", "<blockquote>", "<del>", "<hr",
	};
	const char *s = html;
	size_t i;
	int paragraphs = 0;

	for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		ck_assert_msg(!strstr(html, forbidden[i]),
			      "%s: HTML has %s:\n%.2000s", what, forbidden[i],
			      html);
	while ((s = strchr(s, '<'))) {
		if (!strncmp(s, "<p>", 3))
			paragraphs++;
		else
			ck_assert_msg(!strncmp(s, "</p>", 4) ||
				      !strncmp(s, "<br />", 6),
				      "%s: unexpected tag %.20s in:\n%.2000s",
				      what, s, html);
		s++;
	}
	ck_assert_msg(paragraphs == 1, "%s: %d paragraphs in:\n%.2000s", what,
		      paragraphs, html);
}

/* Expected visible text: pre + value + post, trailing LFs dropped; each
 * '@' of the value is followed by the escaper's zero-width space. */
static char *expected_text(const char *pre, const char *v, size_t vlen,
			   const char *post, size_t *len)
{
	size_t a = strlen(pre), c = strlen(post), n = a, k;
	char *o = malloc(a + 4 * vlen + c + 1);

	ck_assert_ptr_nonnull(o);
	memcpy(o, pre, a);
	for (k = 0; k < vlen; k++) {
		o[n++] = v[k];
		if (v[k] == '@') {
			memcpy(o + n, "\xE2\x80\x8B", 3);
			n += 3;
		}
	}
	memcpy(o + n, post, c);
	n += c;
	while (n && o[n - 1] == '\n')
		n--;
	o[n] = '\0';
	*len = n;
	return o;
}

/* Markdown md must show as exactly pre + expect + post. */
static void check_markdown(const char *cmd, const char *what, const char *md,
			   size_t md_len, const char *pre, const char *expect,
			   size_t elen, const char *post)
{
	char *html = markdown_to_html(cmd, md, md_len);
	char *vis, *exp;
	size_t vlen, xlen;

	check_tags(html, what);
	vis = visible(html, &vlen);
	exp = expected_text(pre, expect, elen, post, &xlen);
	ck_assert_msg(vlen == xlen && !memcmp(vis, exp, vlen),
		      "%s (%s): visible text differs\n markdown: %.500s\n html: %.500s\n want: %.500s\n got:  %.500s",
		      what, cmd, md, html, exp, vis);
	free(exp);
	free(vis);
	free(html);
}

static const char *gfm_cmd(void)
{
	return "cmark-gfm --unsafe -e autolink -e table -e strikethrough"
	       " -e tasklist";
}

/* Renders value v through the engine in markdown mode in every template
 * and checks the CommonMark (and GFM, when present) result. */
static void check_value(const char *name, const char *v, size_t vlen,
			const char *expect, size_t elen)
{
	char tpl[64], what[128], err[256];
	int i;

	ck_assert_msg(have_cmd("cmark"),
		      "the `cmark` command is required (apt-get install cmark)");
	ck_assert_msg(have_cmd("cmark-gfm"),
		      "the `cmark-gfm` command is required (apt-get install cmark-gfm)");
	for (i = 0; i < NTPL; i++) {
		size_t md_len;
		char *md;

		snprintf(tpl, sizeof(tpl), "%s{{v}}%s", tpl_pre[i],
			 tpl_post[i]);
		snprintf(what, sizeof(what), "%s, template %d", name, i);
		md = render(tpl, v, vlen, AC_ESCAPE_MARKDOWN, &md_len, err,
			    sizeof(err));
		ck_assert_msg(md != NULL, "%s: render: %s", what, err);
		check_markdown("cmark --unsafe", what, md, md_len, tpl_pre[i],
			       expect, elen, tpl_post[i]);
		ck_assert_msg(!strstr(md, "www.") && !strstr(md, "://"),
			      "%s: GFM autolink trigger left in %s", what, md);
		check_markdown(gfm_cmd(), what, md, md_len, tpl_pre[i], expect,
			       elen, tpl_post[i]);
		free(md);
	}
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

START_TEST(test_markdown_hostile)
{
	const struct hostile *h = &hostile[_i];

	check_value(h->name, h->val, h->len, h->expect ? h->expect : h->val,
		    h->expect ? h->elen : h->len);
}
END_TEST

/* Builds a value of about 100 KB by repeating unit. */
static char *repeat(const char *unit, size_t *len)
{
	size_t u = strlen(unit), n = 0;
	char *s = malloc(100 * 1024 + u + 1);

	ck_assert_ptr_nonnull(s);
	while (n < 100 * 1024) {
		memcpy(s + n, unit, u);
		n += u;
	}
	s[n] = '\0';
	*len = n;
	return s;
}

START_TEST(test_markdown_long)
{
	static const char *const units[] = {
		"**b** [x](http://e.x) <i> _u_ `c` ~~s~~ | &amp; ",
		"- a\n1. b\n> c\n# d\n    e\n",
	};
	size_t len, elen;
	char *v = repeat(units[_i], &len);

	elen = len;
	while (elen && v[elen - 1] == '\n')
		elen--;		/* trailing line breaks are dropped */
	check_value(_i ? "long, many lines" : "long, one line", v, len, v,
		    elen);
	free(v);
}
END_TEST

/* Ill-formed UTF-8 cannot come through JSON: test the escaper directly. */
START_TEST(test_markdown_invalid_utf8)
{
	static const struct hostile bad[] = {
		VX("lone 0xFF", "\xff", FFFD),
		VX("bad continuation", "a\xc3(b", "a" FFFD "(b"),
		VX("truncated 3-byte", "\xe2\x82", FFFD FFFD),
		VX("surrogate", "\xed\xa0\x80", FFFD FFFD FFFD),
		VX("overlong", "\xc0\xaf", FFFD FFFD),
		VX("above U+10FFFF", "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD),
		VX("truncated 4-byte", "x\xf0\x9f\x98", "x" FFFD FFFD FFFD),
		VX("valid", "\xc3\xa9\xf0\x9f\x98\x80",
		   "\xc3\xa9\xf0\x9f\x98\x80"),
	};
	const struct hostile *h = &bad[_i];
	struct mustache_buf b = { 0 };
	char err[256];
	size_t out_len;
	char *out;

	ck_assert_msg(have_cmd("cmark"), "the `cmark` command is required");
	ck_assert_int_eq(mustache_buf_put(&b, "Hello ", 6), 0);
	ck_assert_int_eq(escape_markdown(&b, h->val, h->len), 0);
	ck_assert_int_eq(mustache_buf_put(&b, ", bye", 5), 0);
	check_markdown("cmark --unsafe", h->name, b.data, b.len, "Hello ",
		       h->expect, h->elen, ", bye");
	mustache_buf_release(&b);

	/* and the engine refuses such bytes in its JSON context */
	if (_i < 7) {
		char js[64];
		const ac_template_engine *e = &aftercall_template_engine;
		void *t = e->compile("t", "{{v}}", 5, err, sizeof(err));

		ck_assert_ptr_nonnull(t);
		snprintf(js, sizeof(js), "{\"v\":\"%.*s\"}", (int)h->len,
			 h->val);
		ck_assert_int_eq(e->render(t, js, strlen(js), NULL, NULL,
					   AC_ESCAPE_MARKDOWN, &out, &out_len,
					   err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, "not valid JSON") != NULL, "%s", err);
		e->free_template(t);
	}
}
END_TEST

/* Renders tpl with {"v": val} and checks the exact output. */
static void check_render(const char *tpl, const char *val, size_t vlen,
			 ac_escape mode, const char *want, size_t wlen)
{
	char err[256];
	size_t len;
	char *out = render(tpl, val, vlen, mode, &len, err, sizeof(err));

	ck_assert_msg(out != NULL, "render: %s", err);
	ck_assert_msg(len == wlen && !memcmp(out, want, len),
		      "mode %d, %s: got [%s], want [%s]", (int)mode, tpl, out,
		      want);
	free(out);
}

#define CR(tpl, val, mode, want) \
	check_render(tpl, val, sizeof(val) - 1, mode, want, sizeof(want) - 1)

START_TEST(test_text_mode)
{
	CR("Subject: {{v}}!", "a\r\nb", AC_ESCAPE_TEXT, "Subject: a b!");
	CR("Subject: {{v}}!", "a \t\r\n\t b", AC_ESCAPE_TEXT, "Subject: a b!");
	CR("[{{v}}]", "\n\nline1\nline2\r\n", AC_ESCAPE_TEXT,
	   "[ line1 line2 ]");
	CR("[{{v}}]", "a\rb\vc\fd", AC_ESCAPE_TEXT, "[a b c d]");
	CR("[{{v}}]", "  x   y  ", AC_ESCAPE_TEXT, "[ x y ]");
	CR("[{{v}}]", "<b>&amp; *x* [l](u)", AC_ESCAPE_TEXT,
	   "[<b>&amp; *x* [l](u)]");
	CR("[{{v}}]", "", AC_ESCAPE_TEXT, "[]");
	CR("Subject: {{v}} on Monday", "Bob\0 ignore", AC_ESCAPE_TEXT,
	   "Subject: Bob" FFFD " ignore on Monday");
}
END_TEST

START_TEST(test_html_mode)
{
	CR("<p>{{v}}</p>", "& \" < > '", AC_ESCAPE_HTML,
	   "<p>&amp; &quot; &lt; &gt; '</p>");
	CR("{{v}}", "a\nb *c*", AC_ESCAPE_HTML, "a\nb *c*");
	CR("<p>{{v}}</p>", "a\0b", AC_ESCAPE_HTML, "<p>a" FFFD "b</p>");
}
END_TEST

START_TEST(test_markdown_mode_exact)
{
	CR("{{v}}", "a*b", AC_ESCAPE_MARKDOWN, "a\\*b");
	CR("{{v}}", "  x ", AC_ESCAPE_MARKDOWN, "&#32;&#32;x&#32;");
	CR("{{v}}", "\tx", AC_ESCAPE_MARKDOWN, "&#9;x");
	CR("{{v}}", "a\r\nb\n", AC_ESCAPE_MARKDOWN, "a\\\nb");
	CR("{{v}}", "1. x", AC_ESCAPE_MARKDOWN, "1\\. x");
	CR("{{v}}", "a\0b", AC_ESCAPE_MARKDOWN, "a" FFFD "b");
}
END_TEST

/* {{{v}}} and {{&v}} copy the value verbatim in every mode. */
START_TEST(test_unescaped_opt_out)
{
	static const char val[] = "a\r\n  *<b>&amp;</b>*\t[x](y)\n";
	static const ac_escape modes[] = {
		AC_ESCAPE_HTML, AC_ESCAPE_MARKDOWN, AC_ESCAPE_TEXT,
	};
	size_t i;

	for (i = 0; i < 3; i++) {
		CR("{{{v}}}", val, modes[i], val);
		CR("{{&v}}", val, modes[i], val);
		CR("{{= <% %> =}}<%{v}%>|<%& v %>", val, modes[i],
		   "a\r\n  *<b>&amp;</b>*\t[x](y)\n|"
		   "a\r\n  *<b>&amp;</b>*\t[x](y)\n");
	}
}
END_TEST

START_TEST(test_unknown_mode)
{
	const ac_template_engine *e = &aftercall_template_engine;
	char err[256] = "";
	char *out = NULL;
	size_t len;
	void *t = e->compile("t", "x", 1, err, sizeof(err));

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(e->render(t, "{}", 2, NULL, NULL, (ac_escape)42,
				   &out, &len, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "escape") != NULL, "%s", err);
	e->free_template(t);
}
END_TEST

static Suite *escape_suite(void)
{
	Suite *s = suite_create("mustache-escape");
	TCase *md = tcase_create("markdown");
	TCase *other = tcase_create("modes");

	tcase_set_timeout(md, 300);
	tcase_add_loop_test(md, test_markdown_hostile, 0, (int)NHOSTILE);
	tcase_add_loop_test(md, test_markdown_long, 0, 2);
	tcase_add_loop_test(md, test_markdown_invalid_utf8, 0, 8);
	suite_add_tcase(s, md);

	tcase_add_test(other, test_text_mode);
	tcase_add_test(other, test_html_mode);
	tcase_add_test(other, test_markdown_mode_exact);
	tcase_add_test(other, test_unescaped_opt_out);
	tcase_add_test(other, test_unknown_mode);
	suite_add_tcase(s, other);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(escape_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
