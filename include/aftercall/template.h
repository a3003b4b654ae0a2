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
 * as JSON text and parses it in whatever way it likes. Since ABI 1.1 an
 * engine may also offer to parse a context once (context_parse) and render
 * several templates against the parsed form (render_ctx): the host renders
 * an email's body, subject, cc and bcc that way. A host built for 1.1 still
 * runs a 1.0 engine (it renders each part from the JSON text), and a 1.1
 * engine still works with a 1.0 host (which never looks past render).
 *
 * Threads: compile and free_template are called from the main thread (start,
 * SIGHUP reload) or the command line; render may be called from any thread,
 * and concurrently on the same template, so it must not change the template
 * in a way another render could see (an engine may keep a cache inside it if
 * it synchronises the cache itself).
 */
#ifndef AFTERCALL_TEMPLATE_H
#define AFTERCALL_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AC_TEMPLATE_ABI_MAJOR 1u
#define AC_TEMPLATE_ABI_MINOR 1u

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

	/* ---- ABI 1.1 ---- */

	/*
	 * Optional, with render_ctx and context_free: all three or none (the
	 * host refuses an engine that sets only some of them). Parses the
	 * JSON context `context_json` (ctx_len bytes, not necessarily
	 * NUL-terminated; the host may free it once this returns) into the
	 * engine's own form. Returns an opaque handle, or NULL with a message
	 * in err ("context is not valid JSON: ..."), the same error render
	 * would have given. Any thread.
	 */
	void *(*context_parse)(const char *context_json, size_t ctx_len,
			       char *err, size_t errlen);

	/*
	 * Optional (see context_parse). Renders a compiled template against
	 * a context returned by context_parse, with the same result as render
	 * against the JSON text it was parsed from. Any thread, concurrently
	 * on the same template and on the same context: the context is only
	 * read. On success returns 0 and sets *out to a NUL-terminated buffer
	 * of *out_len bytes allocated with the C library's malloc(): the
	 * caller owns it and releases it with free() (no copy is needed).
	 * On failure returns -1 with a message in err.
	 */
	int (*render_ctx)(const void *tmpl, const void *ctx,
			  ac_partial_fn partials, void *pctx, ac_escape escape,
			  char **out, size_t *out_len, char *err,
			  size_t errlen);

	/* Optional (see context_parse). Releases a context returned by
	 * context_parse, once no render_ctx uses it. Any thread. */
	void (*context_free)(void *ctx);
} ac_template_engine;

#ifdef __cplusplus
}
#endif

#endif /* AFTERCALL_TEMPLATE_H */
