#include "autoconfig.h"

#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "verify_hmac.h"

int verify_hmac(const struct verifier *v, const char *value, const char *body, size_t len,
		const char **why)
{
	if (!value || !*value) {
		*why = "missing signature header";
		return -1;
	}
	/* The prefix ("sha256=") is taken when present; some senders send the
	 * bare signature. */
	size_t plen = strlen(v->prefix);
	if (plen && strncmp(value, v->prefix, plen) == 0)
		value += plen;
	size_t n = strlen(value);
	unsigned char sig[SHA256_LEN + 4], mac[SHA256_LEN];
	long got = -1;
	if (v->encoding == ENC_HEX && n == 2 * SHA256_LEN)
		got = hex_decode(value, n, sig);
	else if (v->encoding == ENC_BASE64 && n == 44)
		got = b64_decode(value, n, sig);
	if (got != SHA256_LEN) {
		*why = "malformed signature";
		return -1;
	}
	hmac_sha256(v->secret, strlen(v->secret), body, len, mac);
	if (!ct_equal(mac, sig, SHA256_LEN)) {
		*why = "bad signature";
		return -1;
	}
	return 0;
}

int verify_bearer(const struct verifier *v, const char *authorization, const char **why)
{
	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
		*why = "missing bearer token";
		return -1;
	}
	/* Compare hashes so that neither the length nor the contents of the
	 * token leak through timing. */
	unsigned char a[SHA256_LEN], b[SHA256_LEN];
	const char *tok = authorization + 7;
	sha256(tok, strlen(tok), a);
	sha256(v->secret, strlen(v->secret), b);
	if (!ct_equal(a, b, SHA256_LEN)) {
		*why = "bad bearer token";
		return -1;
	}
	return 0;
}
