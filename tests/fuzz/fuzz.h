/*
 * Helpers shared by the libFuzzer targets in this folder (see README).
 * Header-only: each target is one translation unit plus the project
 * sources it exercises, compiled by run.sh.
 */
#ifndef AC_FUZZ_H
#define AC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated malloc'd copy of n bytes (never NULL: aborts on OOM,
 * which libFuzzer reports with the input). */
static inline char *fz_dupz(const void *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		abort();
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Splits data at the first `sep`: [0, i) and (i, size). Without a sep the
 * whole input is the first part and *b is NULL. */
static inline void fz_split(const uint8_t *data, size_t size, uint8_t sep, const uint8_t **a,
			    size_t *alen, const uint8_t **b, size_t *blen)
{
	const uint8_t *p = size ? memchr(data, sep, size) : NULL;
	*a = data;
	if (!p) {
		*alen = size;
		*b = NULL;
		*blen = 0;
		return;
	}
	*alen = (size_t)(p - data);
	*b = p + 1;
	*blen = size - *alen - 1;
}

/* A broken invariant: say which and abort, so libFuzzer keeps the input. */
#define FZ_CHECK(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__,          \
				__LINE__, #cond);                                                  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
