/*
 * Render benchmark: the stock summary template (with its partials) against
 * a typical context, rendered through the engine as the host does it, two
 * ways:
 *   per email:           templates_render() per email: the context is
 *                        parsed from JSON once, then subject and body are
 *                        rendered against it (what the host does for each
 *                        email);
 *   context parsed once: the context is parsed before the loop and each
 *                        iteration renders subject and body against it
 *                        (templates_render_ctx()): the same work as npm's
 *                        mustache in render.cjs, whose view is parsed once.
 * Each way runs for SECONDS; both produce the same text (checked).
 *
 * Usage: render ENGINE.so TEMPLATES_DIR CONTEXT.json SECONDS
 * Prints: per_email_renders_per_second N
 *         parsed_once_renders_per_second N
 *         bytes_per_render N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "templates.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct run {
	const struct template_set *set;
	const struct tfile *t;
	const char *json;
	size_t len;
	double secs;
};

static int fail(const char *what, const char *err)
{
	fprintf(stderr, "%s: %s\n", what, err);
	return -1;
}

/* Renders per second the way the host does it for each email. */
static int per_email(const struct run *ru, double *rate, size_t *bytes_per)
{
	char err[1024];
	double start = now(), end = start + ru->secs;
	long n = 0;
	size_t bytes = 0;
	while (now() < end) {
		for (int i = 0; i < 1000; i++) {
			struct rendered r;
			if (templates_render(ru->set, ru->t, ru->json, ru->len, AC_ESCAPE_MARKDOWN, &r,
					     err, sizeof err))
				return fail("per email", err);
			bytes += r.body_len + strlen(r.subject);
			rendered_free(&r);
		}
		n += 1000;
	}
	*rate = (double)n / (now() - start);
	*bytes_per = bytes / (size_t)n;
	return 0;
}

/* Renders per second against a context parsed once, before the loop. */
static int parsed_once(const struct run *ru, double *rate, size_t *bytes_per)
{
	char err[1024];
	struct tcontext c;
	if (templates_context_parse(ru->set, &c, ru->json, ru->len, err, sizeof err))
		return fail("parse", err);
	double start = now(), end = start + ru->secs;
	long n = 0;
	size_t bytes = 0;
	while (now() < end) {
		for (int i = 0; i < 1000; i++) {
			struct rendered r;
			if (templates_render_ctx(ru->set, ru->t, &c, AC_ESCAPE_MARKDOWN, &r, err,
						 sizeof err)) {
				templates_context_free(ru->set, &c);
				return fail("parsed once", err);
			}
			bytes += r.body_len + strlen(r.subject);
			rendered_free(&r);
		}
		n += 1000;
	}
	*rate = (double)n / (now() - start);
	*bytes_per = bytes / (size_t)n;
	templates_context_free(ru->set, &c);
	return 0;
}

/* Both ways give the same subject and body. */
static int same_output(const struct run *ru)
{
	char err[1024];
	struct rendered a, b;
	struct tcontext c;
	if (templates_render(ru->set, ru->t, ru->json, ru->len, AC_ESCAPE_MARKDOWN, &a, err,
			     sizeof err))
		return fail("render", err);
	if (templates_context_parse(ru->set, &c, ru->json, ru->len, err, sizeof err)) {
		rendered_free(&a);
		return fail("parse", err);
	}
	int rc = templates_render_ctx(ru->set, ru->t, &c, AC_ESCAPE_MARKDOWN, &b, err, sizeof err);
	templates_context_free(ru->set, &c);
	if (rc) {
		rendered_free(&a);
		return fail("render", err);
	}
	rc = a.body_len == b.body_len && !memcmp(a.body, b.body, a.body_len) &&
			     !strcmp(a.subject, b.subject)
		     ? 0
		     : fail("check", "the two ways render different text");
	rendered_free(&a);
	rendered_free(&b);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s ENGINE.so TEMPLATES_DIR CONTEXT.json SECONDS\n", argv[0]);
		return 2;
	}
	char err[1024];
	struct engine eng;
	if (engine_load(&eng, argv[1], "/", err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		engine_unload(&eng);
		return 1;
	}
	struct strbuf errs;
	sb_init(&errs);
	struct template_set *set = templates_load(&eng, argv[2], &errs);
	if (!set) {
		fputs(errs.data, stderr);
		return 1;
	}
	FILE *f = fopen(argv[3], "rb");
	if (!f) {
		perror(argv[3]);
		return 1;
	}
	static char ctx[1 << 20];
	size_t len = fread(ctx, 1, sizeof ctx, f);
	fclose(f);
	const struct tfile *t = templates_find(set, "summary");
	if (!t || !t->subject) {
		fprintf(stderr, "%s: no summary.md with a subject\n", argv[2]);
		return 1;
	}
	struct run ru = {set, t, ctx, len, atof(argv[4])};
	double r1, r2;
	size_t b1, b2;
	if (same_output(&ru) || per_email(&ru, &r1, &b1) || parsed_once(&ru, &r2, &b2))
		return 1;
	printf("engine %s %s (ABI %u.%u)%s\n", eng.e->name, eng.e->version ? eng.e->version : "",
	       eng.e->abi_major, eng.e->abi_minor,
	       eng.e->struct_size > offsetof(ac_template_engine, context_parse) &&
			       eng.e->context_parse
		       ? ", context parsed once per email"
		       : ", context parsed per part");
	printf("per_email_renders_per_second %.0f\n", r1);
	printf("parsed_once_renders_per_second %.0f\n", r2);
	printf("bytes_per_render %zu\n", b1);
	templates_free(set);
	engine_unload(&eng);
	sb_free(&errs);
	return 0;
}
