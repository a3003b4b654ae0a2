/*
 * LiveKit webhook verification (src/verify_livekit.c), as the HTTP layer
 * calls it: lk_verify(keys, Authorization value, raw body, now, leeway).
 *
 * Input: the Authorization value, a newline, then the raw body (the header
 * can hold neither a newline nor a NUL, so the value is cut at the first
 * NUL as MHD would give it). Without a newline the whole input is the value
 * and the body is the Node SDK's test vector (tests/data/livekit/
 * room_started.sdk-vector.json), so tokens alone can be fuzzed against it.
 *
 * Beyond "no crash, no leak": the issuer copy always fits its buffer, a
 * verdict does not depend on the size of that buffer, and any body signed
 * with lk_sign() by a configured key (chosen by the input's length) verifies (bare and after
 * "Bearer "), expires past exp + leeway, and fails against another body.
 */
#include "fuzz.h"

#include "crypto.h"
#include "verify_livekit.h"

#define NOW 1700000000
#define LEEWAY 60

/* tests/test_verify_livekit.c's keys; abcdefg/abababa are the Node SDK's. */
static struct lk_key keys[] = {
    {"APIone", "secret-one-0123456789"},
    {"abcdefg", "abababa"},
    {"APIexamplekey", "example-secret-0123456789abcdef"},
};
#define NKEYS (sizeof keys / sizeof *keys)

/* The body of the Node SDK's webhook test (room_started), byte for byte. */
static const char sdk_vector[] =
    "{\"event\":\"room_started\", "
    "\"room\":{\"sid\":\"RM_TkVjUvAqgzKz\", "
    "\"name\":\"mytestroom\", "
    "\"emptyTimeout\":300, "
    "\"creationTime\":\"1628545903\", "
    "\"turnPassword\":\"ICkSr2rEeslkN6e9bXL4Ji5zzMD5Z7zzr6ulOaxMj6N\", "
    "\"enabledCodecs\":[{\"mime\":\"audio/opus\"}, "
    "{\"mime\":\"video/VP8\"}]}}";

static void round_trip(const char *body, size_t len, size_t k)
{
	{
		char *tok = lk_sign(keys[k].key, keys[k].secret, body, len, NOW, 600);
		FZ_CHECK(tok != NULL, "lk_sign failed");
		char iss[128];
		enum lk_result r =
		    lk_verify(keys, NKEYS, tok, body, len, NOW, LEEWAY, iss, sizeof iss);
		FZ_CHECK(r == LK_OK, "own token refused: %s", lk_reason(r));
		FZ_CHECK(!strcmp(iss, keys[k].key), "iss %s", iss);
		size_t tl = strlen(tok);
		char *bearer = malloc(tl + 8);
		memcpy(bearer, "bEaReR ", 7);
		memcpy(bearer + 7, tok, tl + 1);
		r = lk_verify(keys, NKEYS, bearer, body, len, NOW, LEEWAY, NULL, 0);
		FZ_CHECK(r == LK_OK, "Bearer form refused: %s", lk_reason(r));
		r = lk_verify(keys, NKEYS, tok, body, len, NOW + 600 + LEEWAY + 1, LEEWAY, NULL, 0);
		FZ_CHECK(r == LK_EXPIRED, "expired token: %s", lk_reason(r));
		r = lk_verify(keys, NKEYS, tok, body, len, NOW - LEEWAY - 1, LEEWAY, NULL, 0);
		FZ_CHECK(r == LK_NOT_YET_VALID, "early token: %s", lk_reason(r));
		/* One byte more of body is another hash. */
		char *more = fz_dupz(body, len);
		r = lk_verify(keys, NKEYS, tok, more, len + 1, NOW, LEEWAY, NULL, 0);
		FZ_CHECK(r == LK_BODY_MISMATCH, "longer body: %s", lk_reason(r));
		free(more);
		free(bearer);
		free(tok);
	}
}

/* The vector is the SDK's byte for byte: its SHA-256 is the one in the
 * SDK's test (and in tests/test_verify_livekit.c). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char d[SHA256_LEN];
	char b64[64];
	sha256(sdk_vector, sizeof sdk_vector - 1, d);
	b64_encode(d, SHA256_LEN, b64);
	FZ_CHECK(!strcmp(b64, "CoEQz1chqJ9bnZRcORddjplkvpjmPujmLTR42DbefYI="), "vector hash %s",
		 b64);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *a, *b;
	size_t alen, blen;
	fz_split(data, size, '\n', &a, &alen, &b, &blen);
	char *auth = fz_dupz(a, alen); /* cut at a NUL, as a C string header is */
	const char *body = b ? (const char *)b : sdk_vector;
	size_t len = b ? blen : sizeof sdk_vector - 1;
	/* The body as received: exactly len bytes, no terminator to lean on. */
	char *raw = malloc(len ? len : 1);
	if (len)
		memcpy(raw, body, len);

	char iss[128], small[4];
	memset(iss, 'x', sizeof iss);
	enum lk_result r = lk_verify(keys, NKEYS, auth, raw, len, NOW, LEEWAY, iss, sizeof iss);
	FZ_CHECK(memchr(iss, '\0', sizeof iss) != NULL, "iss not terminated");
	FZ_CHECK(r >= LK_OK && r <= LK_BODY_MISMATCH, "result %d", (int)r);
	FZ_CHECK(strcmp(lk_reason(r), "unknown") != 0, "no reason for %d", (int)r);
	enum lk_result r2 =
	    lk_verify(keys, NKEYS, auth, raw, len, NOW, LEEWAY, small, sizeof small);
	FZ_CHECK(r2 == r, "verdict changed with the iss buffer: %d then %d", (int)r, (int)r2);
	FZ_CHECK(memchr(small, '\0', sizeof small) != NULL, "small iss not terminated");
	r2 = lk_verify(keys, NKEYS, auth, raw, len, NOW, LEEWAY, NULL, 0);
	FZ_CHECK(r2 == r, "verdict changed without an iss buffer");
	/* No key configured: nothing can pass. */
	r2 = lk_verify(keys, 0, auth, raw, len, NOW, LEEWAY, NULL, 0);
	FZ_CHECK(r2 != LK_OK, "accepted with no keys");
	/* Extreme clocks must not trip UBSan in the time arithmetic. */
	lk_verify(keys, NKEYS, auth, raw, len, INT64_MAX, LEEWAY, NULL, 0);
	lk_verify(keys, NKEYS, auth, raw, len, INT64_MIN, 3600, NULL, 0);

	round_trip(raw, len, size % NKEYS);

	free(raw);
	free(auth);
	return 0;
}
