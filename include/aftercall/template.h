/*
 * aftercall template-engine ABI.
 *
 * A template engine is a plugin of its own kind: a shared object that exports
 * one descriptor, `aftercall_template_engine`, of type ac_template_engine.
 * The host picks the engine named by `template_engine` in the config
 * (default "mustache"), compiles every template file with it at start and on
 * SIGHUP, and renders on behalf of filter plugins.
 *
 * Versioning works as for filter plugins (see plugin.h): the three fields at
 * the top protect the rest. The host refuses an engine whose major differs
 * from AC_TEMPLATE_ABI_MAJOR or whose minor is newer than the host's, and
 * treats fields past struct_size as absent. Fields are only ever appended.
 *
 * The engine never sees where its context came from: it receives the context
 * as JSON text and parses it in whatever way it likes.
 *
 * Threads: compile and free_template are called from the main thread (start,
 * SIGHUP reload) or the command line; render may be called from any thread,
 * and concurrently on the same template, so it must not mutate the template.
 */
#ifndef AFTERCALL_TEMPLATE_H
#define AFTERCALL_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AC_TEMPLATE_ABI_MAJOR 1
#define AC_TEMPLATE_ABI_MINOR 0

/* The name of the symbol the host looks up with dlsym(). */
#define AC_TEMPLATE_SYMBOL "aftercall_template_engine"

/* How interpolated values ({{x}}) are escaped. Unescaped forms ({{{x}}},
 * {{&x}}) bypass escaping in every mode. */
typedef enum ac_escape {
	/* &, <, >, " as HTML entities: the Mustache spec's own rule. */
	AC_ESCAPE_HTML = 0,
	/* Markdown: the value reads as its literal text once a CommonMark
	 * renderer has turned the result into HTML; it can never become a
	 * link, image, emphasis, heading, list, code, table or raw HTML. */
	AC_ESCAPE_MARKDOWN = 1,
	/* Plain text for one-line fields (subjects): CR and LF removed, runs of
	 * white space folded to one space. */
	AC_ESCAPE_TEXT = 2,
} ac_escape;

/*
 * Looks a partial up by name. Returns its source (borrowed: it must stay
 * valid until render returns) and sets *len, or returns NULL when there is
 * no such partial, which renders as the empty string.
 */
typedef const char *(*ac_partial_fn)(void *ctx, const char *name, size_t *len);

typedef struct ac_template_engine {
	/* Required. AC_TEMPLATE_ABI_MAJOR and AC_TEMPLATE_ABI_MINOR at build
	 * time, and sizeof(ac_template_engine). */
	uint32_t abi_major;
	uint32_t abi_minor;
	uint32_t struct_size;

	/* Required. Short name ("mustache") and version string. */
	const char *name;
	const char *version;

	/*
	 * Required. Compiles `src` (len bytes, not necessarily NUL-terminated).
	 * `name` names the source in error messages. Returns an opaque handle,
	 * or NULL with "NAME:LINE:COL: message" written into err (NUL-terminated,
	 * at most errlen bytes).
	 */
	void *(*compile)(const char *name, const char *src, size_t len,
			 char *err, size_t errlen);

	/*
	 * Required. Renders a compiled template against `context_json` (JSON
	 * text, ctx_len bytes). Partials are looked up through `partials`
	 * (may be NULL: no partials), called with `pctx`. On success returns 0
	 * and sets *out to a NUL-terminated buffer of *out_len bytes that the
	 * caller releases with free_output. On failure returns -1 with a
	 * message in err.
	 */
	int (*render)(const void *tmpl, const char *context_json, size_t ctx_len,
		      ac_partial_fn partials, void *pctx, ac_escape escape,
		      char **out, size_t *out_len, char *err, size_t errlen);

	/* Required. Releases a handle returned by compile. */
	void (*free_template)(void *tmpl);

	/* Required. Releases a buffer returned by render. */
	void (*free_output)(char *out);
} ac_template_engine;

#ifdef __cplusplus
}
#endif

#endif /* AFTERCALL_TEMPLATE_H */
