/*
 * Template files and the engines that compile them.
 *
 * A template is one file: an optional front-matter block between two `---`
 * lines (subject required there; cc and bcc optional), then the Markdown
 * body. Every file of the folder is also a partial, by its base name. All
 * of them compile when the set is loaded, so a broken template is found at
 * start (or by `aftercall check`, or on SIGHUP, which keeps the old set), not
 * when a customer's email is due.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "templates.h"

/* ---- engines ------------------------------------------------------------ */

/* The descriptor size up to the last ABI 1.1 field. */
#define CTX_API_SIZE (offsetof(ac_template_engine, context_free) + sizeof(void (*)(void *)))

int engine_check_abi(const ac_template_engine *e, const char *file, char *err, size_t errlen)
{
	if (e->abi_major != AC_TEMPLATE_ABI_MAJOR) {
		snprintf(err, errlen,
			 "%s: template engine ABI %u.%u is not compatible with this host's ABI %u.%u"
			 " (major versions differ)",
			 file, e->abi_major, e->abi_minor, AC_TEMPLATE_ABI_MAJOR,
			 AC_TEMPLATE_ABI_MINOR);
		return -1;
	}
	if (e->abi_minor > AC_TEMPLATE_ABI_MINOR) {
		snprintf(err, errlen,
			 "%s: template engine ABI %u.%u is newer than this host's ABI %u.%u", file,
			 e->abi_major, e->abi_minor, AC_TEMPLATE_ABI_MAJOR, AC_TEMPLATE_ABI_MINOR);
		return -1;
	}
	size_t min = offsetof(ac_template_engine, free_output) + sizeof(e->free_output);
	const char *missing = e->struct_size < min ? "(descriptor too small)"
			      : !e->name	    ? "name"
			      : !e->compile	    ? "compile"
			      : !e->render	    ? "render"
			      : !e->free_template   ? "free_template"
			      : !e->free_output	    ? "free_output"
						    : NULL;
	if (missing) {
		snprintf(err, errlen, "%s: template engine lacks the required field %s", file,
			 missing);
		return -1;
	}
	/* ABI 1.1: context_parse, render_ctx and context_free go together. */
	if (e->struct_size >= CTX_API_SIZE) {
		int n = !!e->context_parse + !!e->render_ctx + !!e->context_free;
		if (n != 0 && n != 3) {
			snprintf(err, errlen,
				 "%s: template engine sets only some of context_parse, render_ctx"
				 " and context_free (all three or none)",
				 file);
			return -1;
		}
	}
	return 0;
}

/* Whether the engine parses a context once for several renders (ABI 1.1):
 * the fields are within its descriptor and set. */
static int has_ctx_api(const ac_template_engine *e)
{
	return e->struct_size >= CTX_API_SIZE && e->context_parse && e->render_ctx &&
	       e->context_free;
}

int engine_load(struct engine *eng, const char *name, const char *plugin_dir, char *err,
		size_t errlen)
{
	memset(eng, 0, sizeof *eng);
	struct strbuf b;
	sb_init(&b);
	if (strchr(name, '/'))
		sb_puts(&b, name);
	else
		sb_printf(&b, "%s/%s.so", plugin_dir, name);
	eng->file = sb_steal(&b);
	if (!eng->file) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	eng->dl = dlopen(eng->file, RTLD_NOW | RTLD_LOCAL);
	if (!eng->dl) {
		snprintf(err, errlen, "template engine %s: cannot load: %s", name, dlerror());
		return -1;
	}
	eng->e = dlsym(eng->dl, AC_TEMPLATE_SYMBOL);
	if (!eng->e) {
		snprintf(err, errlen, "%s: no %s symbol: not an aftercall template engine",
			 eng->file, AC_TEMPLATE_SYMBOL);
		return -1;
	}
	return engine_check_abi(eng->e, eng->file, err, errlen);
}

void engine_unload(struct engine *eng)
{
	if (eng->dl)
		dlclose(eng->dl);
	free(eng->file);
	memset(eng, 0, sizeof *eng);
}

/* ---- reading files ------------------------------------------------------ */

static char *slurp(const char *path, size_t *len, struct strbuf *errs)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		sb_printf(errs, "%s: cannot open: %s\n", path, strerror(errno));
		return NULL;
	}
	struct strbuf b;
	sb_init(&b);
	char buf[16384];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		sb_add(&b, buf, n);
	int bad = ferror(f);
	fclose(f);
	if (bad || b.oom) {
		sb_printf(errs, "%s: cannot read\n", path);
		sb_free(&b);
		return NULL;
	}
	if (!b.data)
		sb_add(&b, "", 0);
	*len = b.len;
	return sb_steal(&b);
}

/* Rewrites an engine error "NAME:LINE:COL: msg" so LINE counts from the top
 * of the file rather than from the start of the compiled text. */
static void add_error(struct strbuf *errs, const char *path, const char *engine_err,
		      int line_offset, int col_offset)
{
	size_t plen = strlen(path);
	if (!strncmp(engine_err, path, plen) && engine_err[plen] == ':') {
		char *end;
		const char *p = engine_err + plen + 1;
		unsigned long line = strtoul(p, &end, 10);
		if (end != p && *end == ':') {
			p = end + 1;
			unsigned long col = strtoul(p, &end, 10);
			if (end != p && *end == ':') {
				sb_printf(errs, "%s:%lu:%lu:%.600s\n", path,
					  line + (unsigned long)line_offset,
					  col + (unsigned long)col_offset, end + 1);
				return;
			}
		}
	}
	sb_printf(errs, "%s:%d: %s\n", path, line_offset + 1, engine_err);
}

static void *compile(const struct engine *eng, const char *path, const char *src, size_t len,
		     int line_offset, int col_offset, struct strbuf *errs)
{
	char err[768] = "";
	void *t = eng->e->compile(path, src, len, err, sizeof err);
	if (!t) {
		err[sizeof err - 1] = '\0';
		add_error(errs, path, *err ? err : "compile failed", line_offset, col_offset);
	}
	return t;
}

/* The scalar or list of scalars at n, as one comma-separated string. */
static char *front_value(yaml_document_t *doc, yaml_node_t *n)
{
	if (n->type == YAML_SCALAR_NODE)
		return strdup((const char *)n->data.scalar.value);
	if (n->type != YAML_SEQUENCE_NODE)
		return NULL;
	struct strbuf b;
	sb_init(&b);
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *v = yaml_document_get_node(doc, *it);
		if (!v || v->type != YAML_SCALAR_NODE) {
			sb_free(&b);
			return NULL;
		}
		if (b.len)
			sb_puts(&b, ", ");
		sb_puts(&b, (const char *)v->data.scalar.value);
	}
	if (!b.data)
		sb_add(&b, "", 0);
	return sb_steal(&b);
}

/* Splits off and compiles the front matter; compiles the body. */
static int load_file(const struct engine *eng, struct tfile *t, char *src, size_t len,
		     struct strbuf *errs)
{
	size_t before = errs->len;
	t->body = src;
	t->body_len = len;
	t->body_line = 1;
	int is_front = len >= 4 && !strncmp(src, "---", 3) && (src[3] == '\n' || src[3] == '\r');
	if (is_front) {
		/* Find the closing --- line. */
		char *end = NULL;
		int line = 2;
		for (char *p = strchr(src, '\n') + 1; p && p < src + len; line++) {
			if (!strncmp(p, "---", 3) && (p[3] == '\n' || p[3] == '\r' || p[3] == '\0')) {
				end = p;
				break;
			}
			char *nl = memchr(p, '\n', (size_t)(src + len - p));
			p = nl ? nl + 1 : NULL;
		}
		if (!end) {
			sb_printf(errs, "%s:1:1: front matter has no closing --- line\n", t->path);
			return -1;
		}
		t->has_front = 1;
		char *fm_start = strchr(src, '\n') + 1;
		char *after = strchr(end, '\n');
		after = after ? after + 1 : src + len;
		t->body_line = line + 1;
		t->body = after;
		t->body_len = (size_t)(src + len - after);

		yaml_parser_t parser;
		yaml_document_t doc;
		yaml_parser_initialize(&parser);
		yaml_parser_set_input_string(&parser, (const unsigned char *)fm_start,
					     (size_t)(end - fm_start));
		if (!yaml_parser_load(&parser, &doc)) {
			sb_printf(errs, "%s:%lu:1: front matter: %s\n", t->path,
				  (unsigned long)parser.problem_mark.line + 2,
				  parser.problem ? parser.problem : "YAML error");
			yaml_parser_delete(&parser);
			return -1;
		}
		yaml_parser_delete(&parser);
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root || root->type != YAML_MAPPING_NODE) {
			sb_printf(errs, "%s:2:1: front matter: expected subject: and optional cc:, bcc:\n",
				  t->path);
			yaml_document_delete(&doc);
			return -1;
		}
		for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
		     p < root->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(&doc, p->key);
			yaml_node_t *v = yaml_document_get_node(&doc, p->value);
			const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value
								      : "?";
			int kl = (int)k->start_mark.line + 2;
			void **slot = !strcmp(key, "subject") ? &t->subject
				      : !strcmp(key, "cc")    ? &t->cc
				      : !strcmp(key, "bcc")   ? &t->bcc
							      : NULL;
			if (!slot) {
				sb_printf(errs, "%s:%d:1: front matter: unknown key %s\n", t->path, kl, key);
				continue;
			}
			char *text = front_value(&doc, v);
			if (!text) {
				sb_printf(errs, "%s:%d:1: front matter: %s must be text\n", t->path, kl,
					  key);
				continue;
			}
			/* Where the text starts in the file, so that errors name the
			 * file's column: known for a value on one line, plain or
			 * quoted without escapes (its text is then its span less the
			 * quotes). */
			int col = 0;
			if (v->type == YAML_SCALAR_NODE && v->start_mark.line == v->end_mark.line) {
				yaml_scalar_style_t st = v->data.scalar.style;
				size_t span = v->end_mark.column - v->start_mark.column;
				if (st == YAML_PLAIN_SCALAR_STYLE)
					col = (int)v->start_mark.column;
				else if ((st == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
					  st == YAML_DOUBLE_QUOTED_SCALAR_STYLE) &&
					 span == strlen(text) + 2)
					col = (int)v->start_mark.column + 1;
			}
			*slot = compile(eng, t->path, text, strlen(text), (int)v->start_mark.line + 1,
					col, errs);
			free(text);
		}
		if (!t->subject && errs->len == before)
			sb_printf(errs, "%s:2:1: front matter: subject is required\n", t->path);
		yaml_document_delete(&doc);
	}
	t->tbody = compile(eng, t->path, t->body, t->body_len, t->body_line - 1, 0, errs);
	return errs->len == before ? 0 : -1;
}

static void free_file(const struct engine *eng, struct tfile *t)
{
	void *all[] = {t->subject, t->cc, t->bcc, t->tbody};
	for (size_t i = 0; i < 4; i++)
		if (all[i])
			eng->e->free_template(all[i]);
	free(t->src);
	free(t->name);
	free(t->path);
}

static int ends_with_md(const char *s)
{
	size_t n = strlen(s);
	return n > 3 && !strcmp(s + n - 3, ".md");
}

static struct tfile *new_file(struct template_set *set, const char *path, const char *name,
			      char *src, struct strbuf *errs)
{
	struct tfile *nf = realloc(set->files, (set->n + 1) * sizeof *nf);
	if (!nf) {
		free(src);
		sb_printf(errs, "%s: out of memory\n", path);
		return NULL;
	}
	set->files = nf;
	struct tfile *t = &set->files[set->n++];
	memset(t, 0, sizeof *t);
	t->src = src;
	t->path = strdup(path);
	t->name = ends_with_md(name) ? strndup(name, strlen(name) - 3) : strdup(name);
	return t;
}

static int add_path(struct template_set *set, const char *path, const char *base,
		    struct strbuf *errs)
{
	size_t len;
	char *src = slurp(path, &len, errs);
	if (!src)
		return -1;
	struct tfile *t = new_file(set, path, base, src, errs);
	return t ? load_file(set->eng, t, src, len, errs) : -1;
}

static int cmp_files(const void *a, const void *b)
{
	return strcmp(((const struct tfile *)a)->name, ((const struct tfile *)b)->name);
}

static struct template_set *load_dir(struct template_set *set, const char *dir, const char *only,
				     struct strbuf *errs)
{
	size_t before = errs->len;
	DIR *d = opendir(dir);
	if (!d) {
		sb_printf(errs, "%s: cannot open the template folder: %s\n", dir, strerror(errno));
	} else {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' || !ends_with_md(de->d_name))
				continue;
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			if (only && !strcmp(path, only))
				continue;
			add_path(set, path, de->d_name, errs);
		}
		closedir(d);
	}
	if (errs->len != before) {
		templates_free(set);
		return NULL;
	}
	if (set->n > 1)
		qsort(set->files, set->n, sizeof *set->files, cmp_files);
	return set;
}

static struct template_set *new_set(const struct engine *eng, const char *dir)
{
	struct template_set *set = calloc(1, sizeof *set);
	if (!set)
		return NULL;
	set->eng = eng;
	set->dir = strdup(dir);
	return set;
}

struct template_set *templates_load(const struct engine *eng, const char *dir, struct strbuf *errs)
{
	struct template_set *set = new_set(eng, dir);
	return set ? load_dir(set, dir, NULL, errs) : NULL;
}

struct template_set *templates_load_file(const struct engine *eng, const char *file,
					 const char *partials_dir, struct strbuf *errs)
{
	struct template_set *set = new_set(eng, partials_dir);
	if (!set)
		return NULL;
	const char *base = strrchr(file, '/');
	size_t before = errs->len, len;
	char *src = slurp(file, &len, errs);
	struct tfile *t = src ? new_file(set, file, base ? base + 1 : file, src, errs) : NULL;
	if (t)
		load_file(eng, t, src, len, errs);
	if (errs->len != before) {
		templates_free(set);
		return NULL;
	}
	/* The folder's other files are its partials (the file itself is
	 * skipped there: it is loaded already). Find it again by path. */
	return load_dir(set, partials_dir, file, errs);
}

void templates_free(struct template_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		free_file(set->eng, &set->files[i]);
	free(set->files);
	free(set->dir);
	free(set);
}

const struct tfile *templates_find_path(const struct template_set *set, const char *path)
{
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->files[i].path, path))
			return &set->files[i];
	return NULL;
}

const struct tfile *templates_find(const struct template_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->files[i].name, name))
			return &set->files[i];
	return NULL;
}

static int has_template(const struct template_set *set, const char *name)
{
	const struct tfile *t = set ? templates_find(set, name) : NULL;
	return t && t->has_front;
}

int template_require(struct template_ref *ref, const char *name, const char *plugin, char *err,
		     size_t errlen)
{
	pthread_rwlock_wrlock(&ref->lock);
	int rc = -1;
	struct required *more = NULL;
	if (!has_template(ref->set, name)) {
		if (ref->set)
			snprintf(err, errlen, "no template named %s in %s", name, ref->set->dir);
		else
			snprintf(err, errlen, "no templates are loaded");
	} else if (!(more = realloc(ref->required, (ref->nrequired + 1) * sizeof *more))) {
		snprintf(err, errlen, "out of memory");
	} else {
		ref->required = more;
		struct required *r = &more[ref->nrequired];
		r->name = strdup(name);
		r->plugin = strdup(plugin);
		if (r->name && r->plugin) {
			ref->nrequired++;
			rc = 0;
		} else {
			free(r->name);
			free(r->plugin);
			snprintf(err, errlen, "out of memory");
		}
	}
	pthread_rwlock_unlock(&ref->lock);
	return rc;
}

int template_check_required(const struct template_ref *ref, const struct template_set *set,
			    char *why, size_t whylen)
{
	for (size_t i = 0; i < ref->nrequired; i++) {
		const struct required *r = &ref->required[i];
		if (!has_template(set, r->name)) {
			snprintf(why, whylen, "%s/%s.md: missing or without front matter, and the %s plugin renders it",
				 set->dir, r->name, r->plugin);
			return -1;
		}
	}
	return 0;
}

void template_ref_free(struct template_ref *ref)
{
	for (size_t i = 0; i < ref->nrequired; i++) {
		free(ref->required[i].name);
		free(ref->required[i].plugin);
	}
	free(ref->required);
	ref->required = NULL;
	ref->nrequired = 0;
	templates_free(ref->set);
	ref->set = NULL;
	pthread_rwlock_destroy(&ref->lock);
}

/* ---- rendering ---------------------------------------------------------- */

static const char *resolve_partial(void *ctx, const char *name, size_t *len)
{
	const struct tfile *t = templates_find(ctx, name);
	if (!t)
		return NULL;
	*len = t->body_len;
	return t->body;
}

/* Renders one part. From a parsed context (ABI 1.1) the engine's buffer is
 * a malloc() one that the caller owns: it is taken as it is. From JSON text
 * (1.0 engines) the buffer belongs to the engine and is copied. */
static int render_one(const struct template_set *set, const void *tmpl, const struct tcontext *c,
		      ac_escape esc, char **out, size_t *out_len, char *err, size_t errlen)
{
	const ac_template_engine *e = set->eng->e;
	char *buf = NULL;
	size_t n = 0;
	if (c->parsed) {
		if (e->render_ctx(tmpl, c->parsed, resolve_partial, (void *)set, esc, &buf, &n, err,
				  errlen))
			return -1;
		*out = buf;
	} else {
		if (e->render(tmpl, c->json, c->len, resolve_partial, (void *)set, esc, &buf, &n, err,
			      errlen))
			return -1;
		*out = malloc(n + 1);
		if (*out) {
			memcpy(*out, buf, n);
			(*out)[n] = '\0';
		}
		e->free_output(buf);
		if (!*out) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (out_len)
		*out_len = n;
	return 0;
}

int templates_context_parse(const struct template_set *set, struct tcontext *c, const char *ctx,
			    size_t ctx_len, char *err, size_t errlen)
{
	const ac_template_engine *e = set->eng->e;
	c->parsed = NULL;
	c->json = ctx;
	c->len = ctx_len;
	if (!has_ctx_api(e))
		return 0;
	if (err && errlen)
		err[0] = '\0';
	c->parsed = e->context_parse(ctx, ctx_len, err, errlen);
	if (!c->parsed) {
		if (err && errlen && !err[0])
			snprintf(err, errlen, "context: cannot parse");
		return -1;
	}
	return 0;
}

void templates_context_free(const struct template_set *set, struct tcontext *c)
{
	if (c->parsed)
		set->eng->e->context_free(c->parsed);
	c->parsed = NULL;
}

/* Subject, cc and bcc are header fields: one line whatever made them (a
 * value in triple braces, a partial, the template's own text). Each run of
 * control characters, CR and LF among them, becomes one space. */
static void one_line(char *s)
{
	char *o = s;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		if (*p < 0x20 || *p == 0x7f) {
			while (*p && (*p < 0x20 || *p == 0x7f))
				p++;
			*o++ = ' ';
		} else {
			*o++ = (char)*p++;
		}
	}
	*o = '\0';
}

int templates_render_ctx(const struct template_set *set, const struct tfile *t,
			 const struct tcontext *c, ac_escape escape, struct rendered *out, char *err,
			 size_t errlen)
{
	memset(out, 0, sizeof *out);
	int rc = render_one(set, t->tbody, c, escape, &out->body, &out->body_len, err, errlen);
	if (!rc && t->subject)
		rc = render_one(set, t->subject, c, AC_ESCAPE_TEXT, &out->subject, NULL, err,
				errlen);
	if (!rc && t->cc)
		rc = render_one(set, t->cc, c, AC_ESCAPE_TEXT, &out->cc, NULL, err, errlen);
	if (!rc && t->bcc)
		rc = render_one(set, t->bcc, c, AC_ESCAPE_TEXT, &out->bcc, NULL, err, errlen);
	if (rc) {
		rendered_free(out);
		return rc;
	}
	char *fields[] = {out->subject, out->cc, out->bcc};
	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
		if (fields[i])
			one_line(fields[i]);
	return 0;
}

int templates_render(const struct template_set *set, const struct tfile *t, const char *ctx,
		     size_t ctx_len, ac_escape escape, struct rendered *out, char *err,
		     size_t errlen)
{
	struct tcontext c;
	memset(out, 0, sizeof *out);
	if (templates_context_parse(set, &c, ctx, ctx_len, err, errlen))
		return -1;
	int rc = templates_render_ctx(set, t, &c, escape, out, err, errlen);
	templates_context_free(set, &c);
	return rc;
}

void rendered_free(struct rendered *r)
{
	free(r->subject);
	free(r->cc);
	free(r->bcc);
	free(r->body);
	memset(r, 0, sizeof *r);
}
