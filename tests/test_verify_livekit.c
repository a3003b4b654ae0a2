#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "strbuf.h"
#include "testutil.h"
#include "verify_livekit.h"

static struct lk_key keys[] = {
	{"APIone", "secret-one-0123456789"},
	{"abcdefg", "abababa"},
};
#define NKEYS 2
#define NOW 1700000000

static const char body[] = "{\"event\":\"room_finished\",\"id\":\"EV_1\"}";

static enum lk_result verify(const char *tok, const char *b)
{
	char iss[64];
	return lk_verify(keys, NKEYS, tok, b, strlen(b), NOW, 60, iss, sizeof iss);
}

/* Builds a token from raw header and claims JSON, signed with secret. */
static char *make_token(const char *header, const char *claims, const char *secret)
{
	char h[512], c[1024], sig[64];
	unsigned char mac[SHA256_LEN];
	b64url_encode((const unsigned char *)header, strlen(header), h);
	b64url_encode((const unsigned char *)claims, strlen(claims), c);
	struct strbuf b;
	sb_init(&b);
	sb_printf(&b, "%s.%s", h, c);
	hmac_sha256(secret, strlen(secret), b.data, b.len, mac);
	b64url_encode(mac, SHA256_LEN, sig);
	sb_printf(&b, ".%s", sig);
	return sb_steal(&b);
}

static char *body_hash(const char *b)
{
	unsigned char d[SHA256_LEN];
	char *out = malloc(64);
	sha256(b, strlen(b), d);
	b64_encode(d, SHA256_LEN, out);
	return out;
}

START_TEST(sign_then_verify_each_key)
{
	for (int i = 0; i < NKEYS; i++) {
		char *tok = lk_sign(keys[i].key, keys[i].secret, body, strlen(body), NOW, 300);
		char iss[64];
		ck_assert_int_eq(lk_verify(keys, NKEYS, tok, body, strlen(body), NOW, 60, iss,
					   sizeof iss),
				 LK_OK);
		ck_assert_str_eq(iss, keys[i].key);
		free(tok);
	}
}
END_TEST

START_TEST(signed_token_matches_livekit_server_format)
{
	char *tok = lk_sign("APIone", "s", body, strlen(body), NOW, 300);
	char *dot = strchr(tok, '.');
	unsigned char out[512];
	long n = b64url_decode(tok, (size_t)(dot - tok), out);
	out[n] = '\0';
	ck_assert_str_eq((char *)out, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
	char *dot2 = strchr(dot + 1, '.');
	n = b64url_decode(dot + 1, (size_t)(dot2 - dot - 1), out);
	out[n] = '\0';
	char *h = body_hash(body);
	char want[512];
	snprintf(want, sizeof want,
		 "{\"iss\":\"APIone\",\"exp\":%d,\"nbf\":%d,\"iat\":%d,\"sha256\":\"%s\"}", NOW + 300,
		 NOW, NOW, h);
	ck_assert_str_eq((char *)out, want);
	free(h);
	free(tok);
}
END_TEST

START_TEST(sdk_vector_hash)
{
	char *path = tu_data("livekit/room_started.sdk-vector.json");
	size_t len;
	char *vec = tu_read(path, &len);
	ck_assert_ptr_nonnull(vec);
	unsigned char d[SHA256_LEN];
	char b64[64];
	sha256(vec, len, d);
	b64_encode(d, SHA256_LEN, b64);
	ck_assert_str_eq(b64, "CoEQz1chqJ9bnZRcORddjplkvpjmPujmLTR42DbefYI=");
	char *tok = lk_sign("abcdefg", "abababa", vec, len, NOW, 300);
	ck_assert_int_eq(lk_verify(keys, NKEYS, tok, vec, len, NOW, 60, NULL, 0), LK_OK);
	free(tok);
	free(vec);
	free(path);
}
END_TEST

START_TEST(node_sdk_token_form)
{
	/* The Node SDK: header without typ, claims in its own order, no iat. */
	char *h = body_hash(body), claims[512];
	snprintf(claims, sizeof claims,
		 "{\"sha256\":\"%s\",\"iss\":\"abcdefg\",\"nbf\":%d,\"exp\":%d}", h, NOW - 5,
		 NOW + 600);
	char *tok = make_token("{\"alg\":\"HS256\"}", claims, "abababa");
	ck_assert_int_eq(verify(tok, body), LK_OK);
	free(tok);
	free(h);
}
END_TEST

START_TEST(bearer_prefix_accepted)
{
	char *tok = lk_sign("APIone", keys[0].secret, body, strlen(body), NOW, 300);
	char with[1024];
	snprintf(with, sizeof with, "Bearer %s", tok);
	ck_assert_int_eq(verify(with, body), LK_OK);
	free(tok);
}
END_TEST

START_TEST(refusals)
{
	char *tok = lk_sign("APIone", keys[0].secret, body, strlen(body), NOW, 300);
	char changed[] = "{\"event\":\"room_finished\",\"id\":\"EV_2\"}";
	ck_assert_int_eq(verify(tok, changed), LK_BODY_MISMATCH);
	ck_assert_int_eq(verify(NULL, body), LK_MISSING);
	ck_assert_int_eq(verify("", body), LK_MISSING);
	free(tok);

	tok = lk_sign("APInobody", keys[0].secret, body, strlen(body), NOW, 300);
	ck_assert_int_eq(verify(tok, body), LK_UNKNOWN_KEY);
	free(tok);
	tok = lk_sign("APIone", "wrong", body, strlen(body), NOW, 300);
	ck_assert_int_eq(verify(tok, body), LK_BAD_SIGNATURE);
	free(tok);
	/* exp = NOW - 61: past the 60 s leeway; NOW - 59 is within it. */
	tok = lk_sign("APIone", keys[0].secret, body, strlen(body), NOW - 361, 300);
	ck_assert_int_eq(verify(tok, body), LK_EXPIRED);
	free(tok);
	tok = lk_sign("APIone", keys[0].secret, body, strlen(body), NOW - 359, 300);
	ck_assert_int_eq(verify(tok, body), LK_OK);
	free(tok);
	tok = lk_sign("APIone", keys[0].secret, body, strlen(body), NOW + 61, 300);
	ck_assert_int_eq(verify(tok, body), LK_NOT_YET_VALID);
	free(tok);
	tok = lk_sign("APIone", keys[0].secret, body, strlen(body), NOW + 59, 300);
	ck_assert_int_eq(verify(tok, body), LK_OK);
	free(tok);
}
END_TEST

START_TEST(malformed_tokens)
{
	char *h = body_hash(body), claims[512];
	snprintf(claims, sizeof claims, "{\"iss\":\"APIone\",\"exp\":%d,\"sha256\":\"%s\"}",
		 NOW + 100, h);
	const char *s = keys[0].secret;
	char *good = make_token("{\"alg\":\"HS256\"}", claims, s);
	ck_assert_int_eq(verify(good, body), LK_OK);

	const char *headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"HS512\"}", "{\"alg\":\"RS256\"}",
				 "{\"typ\":\"JWT\"}", "[1]", "{\"alg\":\"HS256\",\"alg\":\"none\"}"};
	for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
		char *t = make_token(headers[i], claims, s);
		ck_assert_int_eq(verify(t, body), LK_MALFORMED);
		free(t);
	}
	char noexp[512], strexp[512];
	snprintf(noexp, sizeof noexp, "{\"iss\":\"APIone\",\"sha256\":\"%s\"}", h);
	snprintf(strexp, sizeof strexp, "{\"iss\":\"APIone\",\"exp\":\"%d\",\"sha256\":\"%s\"}",
		 NOW + 100, h);
	const char *bad_claims[] = {noexp, strexp, "{\"iss\":\"APIone\",\"exp\":1}", "not json"};
	for (size_t i = 0; i < sizeof bad_claims / sizeof *bad_claims; i++) {
		char *t = make_token("{\"alg\":\"HS256\"}", bad_claims[i], s);
		ck_assert_int_eq(verify(t, body), LK_MALFORMED);
		free(t);
	}
	/* iat: optional, a number when given, and not ahead beyond the leeway
	 * (Go's receiver refuses a token issued in the future; both
	 * receivers refuse an iat that is not a number). */
	char iat[512];
	static const struct {
		int quoted;
		int at;
		enum lk_result want;
	} iats[] = {
		{0, NOW + 61, LK_ISSUED_LATER},
		{0, NOW + 59, LK_OK},
		{1, NOW, LK_MALFORMED},
	};
	for (size_t i = 0; i < sizeof iats / sizeof *iats; i++) {
		char at[32];
		snprintf(at, sizeof at, iats[i].quoted ? "\"%d\"" : "%d", iats[i].at);
		snprintf(iat, sizeof iat,
			 "{\"iss\":\"APIone\",\"exp\":%d,\"iat\":%s,\"sha256\":\"%s\"}", NOW + 300,
			 at, h);
		char *t = make_token("{\"alg\":\"HS256\"}", iat, s);
		ck_assert_msg(verify(t, body) == iats[i].want, "iat case %zu", i);
		free(t);
	}
	/* Segments: too few, too many, bad base64. */
	char buf[2048];
	char *last = strrchr(good, '.');
	snprintf(buf, sizeof buf, "%.*s", (int)(last - good), good);
	ck_assert_int_eq(verify(buf, body), LK_MALFORMED);
	snprintf(buf, sizeof buf, "%s.abc", good);
	ck_assert_int_eq(verify(buf, body), LK_MALFORMED);
	snprintf(buf, sizeof buf, "*%s", good);
	ck_assert_int_eq(verify(buf, body), LK_MALFORMED);
	snprintf(buf, sizeof buf, "%s!", good);
	ck_assert_int_eq(verify(buf, body), LK_BAD_SIGNATURE);
	ck_assert_int_eq(verify("..", body), LK_MALFORMED);
	free(good);
	free(h);
}
END_TEST

/* The two steps a server takes before and after reading the body. */
START_TEST(token_then_body)
{
	char *tok = lk_sign("APIone", "secret-one-0123456789", body, strlen(body), NOW, 300);
	unsigned char claimed[LK_HASH_LEN], digest[SHA256_LEN];
	char iss[64];
	ck_assert_int_eq(lk_verify_token(keys, NKEYS, tok, NOW, 60, iss, sizeof iss, claimed), LK_OK);
	ck_assert_str_eq(iss, "APIone");
	sha256(body, strlen(body), digest);
	ck_assert_mem_eq(claimed, digest, SHA256_LEN);
	ck_assert_int_eq(lk_verify_body(claimed, body, strlen(body)), LK_OK);
	ck_assert_int_eq(lk_verify_body(claimed, body, strlen(body) - 1), LK_BODY_MISMATCH);
	/* The token's own refusals come before any body. */
	ck_assert_int_eq(lk_verify_token(keys, NKEYS, tok, NOW + 400, 60, NULL, 0, claimed),
			 LK_EXPIRED);
	ck_assert_int_eq(lk_verify_token(keys, 1, tok, NOW, 60, NULL, 0, claimed), LK_OK);
	ck_assert_int_eq(lk_verify_token(keys + 1, 1, tok, NOW, 60, NULL, 0, claimed),
			 LK_UNKNOWN_KEY);
	free(tok);
	/* A claim that is no SHA-256 refuses any body, the same as lk_verify. */
	tok = make_token("{\"alg\":\"HS256\"}",
			 "{\"iss\":\"APIone\",\"exp\":1700000300,\"sha256\":\"c2hvcnQ=\"}",
			 "secret-one-0123456789");
	ck_assert_int_eq(lk_verify_token(keys, NKEYS, tok, NOW, 60, NULL, 0, claimed),
			 LK_BODY_MISMATCH);
	ck_assert_int_eq(verify(tok, body), LK_BODY_MISMATCH);
	free(tok);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("verify_livekit");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, sign_then_verify_each_key);
	tcase_add_test(tc, signed_token_matches_livekit_server_format);
	tcase_add_test(tc, sdk_vector_hash);
	tcase_add_test(tc, node_sdk_token_form);
	tcase_add_test(tc, bearer_prefix_accepted);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, malformed_tokens);
	tcase_add_test(tc, token_then_body);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
