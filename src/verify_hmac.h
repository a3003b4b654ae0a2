/* The generic verifiers routes can use: an HMAC-SHA256 signature of the raw
 * body in a header, and a bearer token. */
#ifndef AC_VERIFY_HMAC_H
#define AC_VERIFY_HMAC_H

#include <stddef.h>

#include "config.h"

/* 0 when `value` (the header, may be NULL) is the verifier's HMAC of body;
 * otherwise -1 with the reason in *why. */
int verify_hmac(const struct verifier *v, const char *value, const char *body, size_t len,
		const char **why);

/* 0 when `authorization` is "Bearer " and the configured token. */
int verify_bearer(const struct verifier *v, const char *authorization, const char **why);

#endif
