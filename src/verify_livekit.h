/* LiveKit webhook tokens: verification exactly as LiveKit's own receivers do
 * it, and signing exactly as LiveKit server does. */
#ifndef AC_VERIFY_LIVEKIT_H
#define AC_VERIFY_LIVEKIT_H

#include <stddef.h>
#include <stdint.h>

struct lk_key {
	char *key;
	char *secret;
};

enum lk_result {
	LK_OK = 0,
	LK_MISSING,	   /* no Authorization header */
	LK_MALFORMED,	   /* not three base64url segments of JSON, wrong alg, bad claims */
	LK_UNKNOWN_KEY,	   /* iss names no configured key */
	LK_BAD_SIGNATURE,  /* HMAC does not match */
	LK_EXPIRED,	   /* exp is past, beyond the leeway */
	LK_NOT_YET_VALID,  /* nbf is ahead, beyond the leeway */
	LK_BODY_MISMATCH,  /* the sha256 claim is not the body's hash */
	LK_ISSUED_LATER,   /* iat is ahead, beyond the leeway (Go's receiver refuses it) */
};

const char *lk_reason(enum lk_result r);

/*
 * Verifies the Authorization value `auth` (the bare token, or "Bearer "
 * and the token) for `body`. `now` is in seconds; `leeway` in seconds.
 * On LK_OK and on every refusal after the issuer was read, the issuer is
 * copied into iss (API keys are not secret; it is useful in logs).
 */
enum lk_result lk_verify(const struct lk_key *keys, size_t nkeys, const char *auth,
			 const char *body, size_t len, int64_t now, int leeway, char *iss,
			 size_t isslen);

/* lk_verify in two steps, so that a request can be refused on its headers
 * before its body is read. lk_verify_token checks everything but the body
 * and, on LK_OK, gives the SHA-256 the token claims; lk_verify_body checks
 * a body against it. */
#define LK_HASH_LEN 32
enum lk_result lk_verify_token(const struct lk_key *keys, size_t nkeys, const char *auth,
			       int64_t now, int leeway, char *iss, size_t isslen,
			       unsigned char claimed[LK_HASH_LEN]);
enum lk_result lk_verify_body(const unsigned char claimed[LK_HASH_LEN], const char *body,
			      size_t len);

/* Makes a token for `body` as LiveKit server does: header
 * {"alg":"HS256","typ":"JWT"}, claims iss, exp (now + ttl), nbf, iat, sha256
 * in that order. Returns a malloc'd string, or NULL. */
char *lk_sign(const char *key, const char *secret, const char *body, size_t len, int64_t now,
	      int ttl);

#endif
