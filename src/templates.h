/* Template engines (plugins of their own kind) and the template files they
 * compile: NAME.md with a front-matter block (subject, cc, bcc), then the
 * Markdown body. */
#ifndef AC_TEMPLATES_H
#define AC_TEMPLATES_H

#include <pthread.h>
#include <stddef.h>

#include <aftercall/template.h>

#include "strbuf.h"

struct engine {
	void *dl;
	const ac_template_engine *e;
	char *file;
};

/* Loads an engine: `name` is a file path when it holds a '/', else
 * DIR/NAME.so. 0, or -1 with a message naming the file. */
int engine_load(struct engine *eng, const char *name, const char *plugin_dir, char *err,
		size_t errlen);
void engine_unload(struct engine *eng);
int engine_check_abi(const ac_template_engine *e, const char *file, char *err, size_t errlen);

struct tfile {
	char *name; /* base name without .md */
	char *path;
	char *src;  /* the whole file as read */
	char *body; /* the source after the front matter (points into src) */
	size_t body_len;
	int body_line; /* line of the file where the body starts (1-based) */
	int has_front;
	void *subject, *cc, *bcc, *tbody; /* compiled; NULL when absent */
};

struct template_set {
	const struct engine *eng;
	char *dir;
	struct tfile *files;
	size_t n;
};

/* Reads and compiles every *.md in dir. Returns the set, or NULL with one
 * "FILE:LINE:COL: message" line per error in errs. */
struct template_set *templates_load(const struct engine *eng, const char *dir, struct strbuf *errs);
/* Reads and compiles one file (the command line's render), with partials
 * from dir. */
struct template_set *templates_load_file(const struct engine *eng, const char *file,
					 const char *partials_dir, struct strbuf *errs);
void templates_free(struct template_set *set);
const struct tfile *templates_find(const struct template_set *set, const char *name);
const struct tfile *templates_find_path(const struct template_set *set, const char *path);

struct rendered {
	char *subject; /* NULL for a file without front matter */
	char *cc, *bcc;
	char *body;
	size_t body_len;
};

/* Renders file t of the set against the JSON context: the body with
 * `escape`, the subject, cc and bcc as text. The context is parsed once for
 * all the parts when the engine can (ABI 1.1). 0, or -1 with err. */
int templates_render(const struct template_set *set, const struct tfile *t, const char *ctx,
		     size_t ctx_len, ac_escape escape, struct rendered *out, char *err,
		     size_t errlen);
void rendered_free(struct rendered *r);

/* A context prepared for several renders: the engine's parsed form (ABI 1.1
 * engines), else the JSON text itself, borrowed (it must outlive the
 * tcontext). */
struct tcontext {
	void *parsed; /* NULL: render from json */
	const char *json;
	size_t len;
};

/* Prepares c from the JSON context; 0, or -1 with err (invalid JSON). */
int templates_context_parse(const struct template_set *set, struct tcontext *c, const char *ctx,
			    size_t ctx_len, char *err, size_t errlen);
void templates_context_free(const struct template_set *set, struct tcontext *c);
/* templates_render against a prepared context; any thread, and several
 * renders may share one tcontext. */
int templates_render_ctx(const struct template_set *set, const struct tfile *t,
			 const struct tcontext *c, ac_escape escape, struct rendered *out, char *err,
			 size_t errlen);

/* The live set, swapped whole on reload while renders go on, and the
 * templates plugins said they render (ABI 1.7 template_require), which a
 * new set must have. */
struct template_ref {
	pthread_rwlock_t lock;
	struct template_set *set;
	struct required {
		char *name, *plugin;
	} *required;
	size_t nrequired;
};

/* Records that `plugin` renders `name`: 0, or -1 with err when the live
 * set has no such template (or no memory is left). */
int template_require(struct template_ref *ref, const char *name, const char *plugin, char *err,
		     size_t errlen);
/* 0 when `set` has every required template, else -1 with why. */
int template_check_required(const struct template_ref *ref, const struct template_set *set,
			    char *why, size_t whylen);
void template_ref_free(struct template_ref *ref);

#endif
