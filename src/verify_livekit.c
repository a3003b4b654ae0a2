/*
 * LiveKit webhook verification.
 *
 * The rules come from LiveKit's receivers (protocol/webhook, the Node, Go and
 * Python SDKs): the token is an HS256 JWT whose issuer names the API key;
 * the secret is looked up by that issuer; exp is required and nbf honoured,
 * both with a leeway; and the `sha256` claim must equal the SHA-256 of the
 * raw body. The raw body, never a re-encoding of its JSON: LiveKit's Go
 * encoder puts spaces where a re-encoder would not, so re-encoding breaks
 * the hash.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "json.h"
#include "strbuf.h"
#include "verify_livekit.h"

/* Longer tokens are refused before any decoding: LiveKit's are ~300 bytes. */
#define MAX_TOKEN 8192

const char *lk_reason(enum lk_result r)
{
	switch (r) {
	case LK_OK:
		return "ok";
	case LK_MISSING:
		return "missing Authorization header";
	case LK_MALFORMED:
		return "malformed token";
	case LK_UNKNOWN_KEY:
		return "unknown API key";
	case LK_BAD_SIGNATURE:
		return "bad signature";
	case LK_EXPIRED:
		return "token expired";
	case LK_NOT_YET_VALID:
		return "token not yet valid";
	case LK_BODY_MISMATCH:
		return "body hash mismatch";
	case LK_ISSUED_LATER:
		return "token issued in the future";
	}
	return "unknown";
}

/* Decodes one base64url segment as a JSON object, strictly (no key twice).
 * The object, or NULL; *doc holds it, for cj_free. */
static const struct cj_value *segment_json(const char *s, size_t n, struct cj_doc **doc)
{
	unsigned char buf[MAX_TOKEN];
	long len = b64url_decode(s, n, buf);
	*doc = len > 0 ? cj_parse((const char *)buf, (size_t)len, CJ_STRICT, "token", NULL, 0)
		       : NULL;
	const struct cj_value *o = *doc ? cj_root(*doc) : NULL;
	return o && o->type == CJ_OBJECT ? o : NULL;
}

/* A NumericDate claim: a JSON number, integral or not. */
static int claim_time(const struct cj_value *claims, const char *name, double *out)
{
	const struct cj_value *v = cj_object_get(claims, name, strlen(name));
	if (!v)
		return 0;
	if (v->type == CJ_INTEGER)
		*out = (double)v->u.i;
	else if (v->type == CJ_REAL)
		*out = v->u.d;
	else
		return -1;
	return 1;
}

enum lk_result lk_verify_token(const struct lk_key *keys, size_t nkeys, const char *auth,
			       int64_t now, int leeway, char *iss, size_t isslen,
			       unsigned char claimed[LK_HASH_LEN])
{
	if (isslen)
		iss[0] = '\0';
	if (!auth || !*auth)
		return LK_MISSING;
	if (strncasecmp(auth, "Bearer ", 7) == 0)
		auth += 7;
	size_t toklen = strlen(auth);
	if (toklen > MAX_TOKEN)
		return LK_MALFORMED;

	const char *dot1 = memchr(auth, '.', toklen);
	const char *dot2 = dot1 ? memchr(dot1 + 1, '.', toklen - (size_t)(dot1 + 1 - auth)) : NULL;
	if (!dot1 || !dot2 || memchr(dot2 + 1, '.', toklen - (size_t)(dot2 + 1 - auth)))
		return LK_MALFORMED;
	size_t hlen = (size_t)(dot1 - auth), plen = (size_t)(dot2 - dot1 - 1);
	size_t slen = toklen - (size_t)(dot2 + 1 - auth);

	enum lk_result res = LK_MALFORMED;
	struct cj_doc *hdoc, *cdoc = NULL;
	const struct cj_value *hdr = segment_json(auth, hlen, &hdoc);
	const struct cj_value *claims = hdr ? segment_json(dot1 + 1, plen, &cdoc) : NULL;
	if (!hdr || !claims)
		goto out;
	const char *alg = cj_get_string(hdr, "alg", NULL);
	if (!alg || strcmp(alg, "HS256") != 0)
		goto out;

	const char *issuer = cj_get_string(claims, "iss", NULL);
	const char *hash = cj_get_string(claims, "sha256", NULL);
	double exp = 0, nbf = 0, iat = 0;
	int has_exp = claim_time(claims, "exp", &exp);
	int has_nbf = claim_time(claims, "nbf", &nbf);
	/* iat is optional (the Node SDK's own tokens have none), but a number
	 * when given, as both official receivers require. */
	int has_iat = claim_time(claims, "iat", &iat);
	if (!issuer || !hash || has_exp != 1 || has_nbf < 0 || has_iat < 0)
		goto out;
	if (isslen) {
		strncpy(iss, issuer, isslen - 1);
		iss[isslen - 1] = '\0';
	}

	const char *secret = NULL;
	for (size_t i = 0; i < nkeys; i++) {
		if (strcmp(keys[i].key, issuer) == 0) {
			secret = keys[i].secret;
			break;
		}
	}
	if (!secret) {
		res = LK_UNKNOWN_KEY;
		goto out;
	}

	unsigned char mac[SHA256_LEN], sig[SHA256_LEN + 4];
	hmac_sha256(secret, strlen(secret), auth, (size_t)(dot2 - auth), mac);
	if (slen > 44 || b64url_decode(dot2 + 1, slen, sig) != SHA256_LEN ||
	    !ct_equal(mac, sig, SHA256_LEN)) {
		res = LK_BAD_SIGNATURE;
		goto out;
	}

	if ((double)now > exp + leeway) {
		res = LK_EXPIRED;
		goto out;
	}
	if (has_nbf && (double)now + leeway < nbf) {
		res = LK_NOT_YET_VALID;
		goto out;
	}
	if (has_iat && (double)now + leeway < iat) {
		res = LK_ISSUED_LATER;
		goto out;
	}

	/* A claim that is no SHA-256 matches no body. */
	unsigned char decoded[SHA256_LEN + 4];
	size_t hashlen = strlen(hash);
	if (hashlen > 44 || b64_decode(hash, hashlen, decoded) != SHA256_LEN) {
		res = LK_BODY_MISMATCH;
		goto out;
	}
	memcpy(claimed, decoded, SHA256_LEN);
	res = LK_OK;
out:
	cj_free(hdoc);
	cj_free(cdoc);
	return res;
}

enum lk_result lk_verify_body(const unsigned char claimed[LK_HASH_LEN], const char *body,
			      size_t len)
{
	unsigned char digest[SHA256_LEN];
	sha256(body, len, digest);
	return ct_equal(digest, claimed, SHA256_LEN) ? LK_OK : LK_BODY_MISMATCH;
}

enum lk_result lk_verify(const struct lk_key *keys, size_t nkeys, const char *auth,
			 const char *body, size_t len, int64_t now, int leeway, char *iss,
			 size_t isslen)
{
	unsigned char claimed[LK_HASH_LEN];
	enum lk_result r = lk_verify_token(keys, nkeys, auth, now, leeway, iss, isslen, claimed);
	return r == LK_OK ? lk_verify_body(claimed, body, len) : r;
}

char *lk_sign(const char *key, const char *secret, const char *body, size_t len, int64_t now,
	      int ttl)
{
	unsigned char digest[SHA256_LEN], mac[SHA256_LEN];
	char hash[64], sig[64];
	sha256(body, len, digest);
	b64_encode(digest, SHA256_LEN, hash);

	struct strbuf claims, tok;
	sb_init(&claims);
	sb_init(&tok);
	sb_puts(&claims, "{\"iss\":");
	sb_json_str(&claims, key, strlen(key));
	sb_printf(&claims, ",\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld,\"sha256\":\"%s\"}",
		  (long long)now + ttl, (long long)now, (long long)now, hash);
	if (claims.oom || sb_grow(&tok, 64 + claims.len * 2)) {
		sb_free(&claims);
		sb_free(&tok);
		return NULL;
	}
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	tok.len = b64url_encode((const unsigned char *)header, sizeof header - 1, tok.data);
	tok.data[tok.len++] = '.';
	tok.len += b64url_encode((const unsigned char *)claims.data, claims.len, tok.data + tok.len);
	hmac_sha256(secret, strlen(secret), tok.data, tok.len, mac);
	b64url_encode(mac, SHA256_LEN, sig);
	sb_putc(&tok, '.');
	sb_puts(&tok, sig);
	sb_free(&claims);
	return sb_steal(&tok);
}
