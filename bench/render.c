/*
 * Render benchmark: the stock summary template (with its partials) against
 * a typical context, rendered through the engine as the host does it (the
 * context arrives as JSON text and is parsed per render).
 *
 * Usage: render ENGINE.so TEMPLATES_DIR CONTEXT.json SECONDS
 * Prints: renders_per_second N
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
	if (!f)
		return 1;
	char ctx[65536];
	size_t len = fread(ctx, 1, sizeof ctx, f);
	fclose(f);
	const struct tfile *t = templates_find(set, "summary");
	double secs = atof(argv[4]), start = now(), end = start + secs;
	long n = 0;
	size_t bytes = 0;
	while (now() < end) {
		for (int i = 0; i < 1000; i++) {
			struct rendered r;
			if (templates_render(set, t, ctx, len, AC_ESCAPE_MARKDOWN, &r, err, sizeof err)) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
			bytes += r.body_len + strlen(r.subject);
			rendered_free(&r);
		}
		n += 1000;
	}
	double took = now() - start;
	printf("renders_per_second %.0f\n", (double)n / took);
	printf("bytes_per_render %zu\n", bytes / (size_t)n);
	templates_free(set);
	engine_unload(&eng);
	sb_free(&errs);
	return 0;
}
