/*
 * A second, tiny template engine, to prove the engine ABI is pluggable:
 * ${name} is replaced by the top-level member `name` of the context (a
 * string or a number; anything else, or a missing member, gives ""). "$$"
 * is a literal "$". Escaping follows the mode asked for: html entities,
 * a backslash before Markdown punctuation, or white space folded for text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <aftercall/template.h>

struct piece {
	int is_var;
	char *text;
};

struct tmpl {
	struct piece *p;
	size_t n;
};

static void free_template(void *t)
{
	struct tmpl *tp = t;
	for (size_t i = 0; tp && i < tp->n; i++)
		free(tp->p[i].text);
	if (tp)
		free(tp->p);
	free(tp);
}

static int add(struct tmpl *t, int is_var, const char *s, size_t n)
{
	struct piece *p = realloc(t->p, (t->n + 1) * sizeof *p);
	if (!p)
		return -1;
	t->p = p;
	t->p[t->n].is_var = is_var;
	t->p[t->n].text = strndup(s, n);
	return t->p[t->n++].text ? 0 : -1;
}

static void *compile(const char *name, const char *src, size_t len, char *err, size_t errlen)
{
	struct tmpl *t = calloc(1, sizeof *t);
	size_t start = 0, line = 1, col = 1;
	for (size_t i = 0; t && i < len; i++) {
		if (src[i] == '$' && i + 1 < len && src[i + 1] == '$') {
			add(t, 0, src + start, i + 1 - start);
			start = i + 2;
			i++;
			col += 2;
			continue;
		}
		if (src[i] == '$' && i + 1 < len && src[i + 1] == '{') {
			const char *close = memchr(src + i + 2, '}', len - i - 2);
			if (!close) {
				snprintf(err, errlen, "%s:%zu:%zu: unterminated ${", name, line, col);
				free_template(t);
				return NULL;
			}
			add(t, 0, src + start, i - start);
			add(t, 1, src + i + 2, (size_t)(close - src - i - 2));
			col += (size_t)(close - src) + 1 - i;
			i = (size_t)(close - src);
			start = i + 1;
			continue;
		}
		if (src[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	if (t)
		add(t, 0, src + start, len - start);
	return t;
}

static void put_escaped(FILE *f, const char *s, ac_escape esc)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (esc == AC_ESCAPE_HTML && strchr("&<>\"", c))
			fprintf(f, "&#%d;", c);
		else if (esc == AC_ESCAPE_MARKDOWN && c < 128 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c))
			fprintf(f, "\\%c", c);
		else if (esc == AC_ESCAPE_TEXT && (c == '\n' || c == '\r' || c == '\t'))
			fputc(' ', f);
		else
			fputc(c, f);
	}
}

static int render(const void *tp, const char *ctx, size_t ctx_len, ac_partial_fn partials,
		  void *pctx, ac_escape escape, char **out, size_t *out_len, char *err,
		  size_t errlen)
{
	const struct tmpl *t = tp;
	json_error_t jerr;
	json_t *root = json_loadb(ctx, ctx_len, 0, &jerr);
	if (!root) {
		snprintf(err, errlen, "context is not valid JSON: %s", jerr.text);
		return -1;
	}
	FILE *f = open_memstream(out, out_len);
	for (size_t i = 0; f && i < t->n; i++) {
		if (!t->p[i].is_var) {
			fputs(t->p[i].text, f);
			continue;
		}
		json_t *v = json_object_get(root, t->p[i].text);
		char num[64];
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		if (json_is_integer(v)) {
			snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
			s = num;
		}
		put_escaped(f, s, escape);
	}
	json_decref(root);
	if (!f || fclose(f)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void free_output(char *out)
{
	free(out);
}

__attribute__((visibility("default"))) const ac_template_engine aftercall_template_engine = {
	.abi_major = AC_TEMPLATE_ABI_MAJOR,
	.abi_minor = AC_TEMPLATE_ABI_MINOR,
	.struct_size = sizeof(ac_template_engine),
	.name = "subst",
	.version = "1.0.0",
	.compile = compile,
	.render = render,
	.free_template = free_template,
	.free_output = free_output,
};
