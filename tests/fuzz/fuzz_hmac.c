/*
 * The generic verifiers (src/verify_hmac.c) in the form MultiMail's webhooks
 * use (examples/mission.yaml): X-MultiMail-Signature: sha256=<hex
 * HMAC-SHA256(raw body, secret)>; also the base64 form without a prefix and
 * the bearer verifier.
 *
 * Input: the header value, a newline, the raw body. Without a newline the
 * whole input is the value and the body is a fixed MultiMail webhook.
 *
 * Invariants: a refusal always says why; the value is accepted by the hex
 * verifier only if it is (after an optional "sha256=") the hex HMAC of the
 * body; and the true signature of the fuzzed body, in each form, passes,
 * while a one-bit change of it does not.
 */
#include "fuzz.h"

#include <strings.h>

#include "crypto.h"
#include "verify_hmac.h"

#define SECRET "whsec_double_default_secret"

static const char webhook[] =
    "{\"event\":\"message.delivered\",\"timestamp\":\"2026-03-09T14:22:00.000Z\","
    "\"data\":{\"email_id\":\"em_1\",\"mailbox_id\":\"mbx_1\",\"thread_id\":\"thr_1\"}}";

static struct verifier mm_hex = {VERIFY_HMAC, "X-MultiMail-Signature", "sha256=", ENC_HEX, SECRET};
static struct verifier b64 = {VERIFY_HMAC, "X-Signature", "", ENC_BASE64, SECRET};
static struct verifier bearer = {VERIFY_BEARER, NULL, NULL, ENC_HEX, "token-0123456789abcdef"};

static void expect(const struct verifier *v, const char *value, const char *body, size_t len,
		   int want)
{
	const char *why = NULL;
	int rc = verify_hmac(v, value, body, len, &why);
	FZ_CHECK(rc == want, "%s for %s", rc ? why : "accepted", value);
	FZ_CHECK(rc == 0 || why, "no reason");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *a, *b;
	size_t alen, blen;
	fz_split(data, size, '\n', &a, &alen, &b, &blen);
	char *value = fz_dupz(a, alen);
	size_t len = b ? blen : sizeof webhook - 1;
	char *body = malloc(len ? len : 1);
	if (len)
		memcpy(body, b ? (const void *)b : webhook, len);

	const char *why = NULL;
	int rc = verify_hmac(&mm_hex, value, body, len, &why);
	FZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	FZ_CHECK(rc == 0 || why, "no reason");
	unsigned char mac[SHA256_LEN];
	hmac_sha256(SECRET, strlen(SECRET), body, len, mac);
	char hex[2 * SHA256_LEN + 1], sig64[64], hdr[128];
	hex_encode(mac, SHA256_LEN, hex);
	if (rc == 0) {
		const char *v = strncmp(value, "sha256=", 7) ? value : value + 7;
		FZ_CHECK(!strcasecmp(v, hex), "accepted %s, want %s", value, hex);
	}
	why = NULL;
	rc = verify_hmac(&b64, value, body, len, &why);
	FZ_CHECK(rc == 0 || why, "no reason (base64)");
	why = NULL;
	rc = verify_bearer(&bearer, value, &why);
	FZ_CHECK(rc == 0 || why, "no reason (bearer)");
	FZ_CHECK(rc != 0 || !strcmp(value + 7, bearer.secret), "bearer accepted %s", value);
	/* A NULL header and an empty one are refusals, not crashes. */
	expect(&mm_hex, NULL, body, len, -1);
	expect(&mm_hex, "", body, len, -1);

	/* The true signature of this body passes in every form. */
	snprintf(hdr, sizeof hdr, "sha256=%s", hex);
	expect(&mm_hex, hdr, body, len, 0);
	expect(&mm_hex, hex, body, len, 0);
	b64_encode(mac, SHA256_LEN, sig64);
	expect(&b64, sig64, body, len, 0);
	/* ...and a one-bit change of it does not. */
	hdr[7 + (size % 64)] ^= 1; /* '0'..'9' <-> ... stays a hex digit or breaks it */
	expect(&mm_hex, hdr, body, len, -1);

	free(body);
	free(value);
	return 0;
}
