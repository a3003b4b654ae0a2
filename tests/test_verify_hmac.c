#include <check.h>
#include <string.h>

#include "crypto.h"
#include "testutil.h"
#include "verify_hmac.h"

static const char body[] = "{\"type\":\"x\"}";

static void sig_of(const char *secret, int base64, char *out)
{
	unsigned char mac[SHA256_LEN];
	hmac_sha256(secret, strlen(secret), body, strlen(body), mac);
	if (base64)
		b64_encode(mac, SHA256_LEN, out);
	else
		hex_encode(mac, SHA256_LEN, out);
}

START_TEST(hex_with_prefix)
{
	struct verifier v = {VERIFY_HMAC, "X-Sig", "sha256=", ENC_HEX, "whsec"};
	char sig[80], hdr[100];
	const char *why;
	sig_of("whsec", 0, sig);
	snprintf(hdr, sizeof hdr, "sha256=%s", sig);
	ck_assert_int_eq(verify_hmac(&v, hdr, body, strlen(body), &why), 0);
	/* The bare signature, without its prefix, is accepted too. */
	ck_assert_int_eq(verify_hmac(&v, sig, body, strlen(body), &why), 0);
	ck_assert_int_eq(verify_hmac(&v, "sha256=zz", body, strlen(body), &why), -1);
	ck_assert_str_eq(why, "malformed signature");
	ck_assert_int_eq(verify_hmac(&v, hdr, "{}", 2, &why), -1);
	ck_assert_str_eq(why, "bad signature");
	ck_assert_int_eq(verify_hmac(&v, NULL, body, strlen(body), &why), -1);
	ck_assert_str_eq(why, "missing signature header");
	sig_of("other", 0, sig);
	snprintf(hdr, sizeof hdr, "sha256=%s", sig);
	ck_assert_int_eq(verify_hmac(&v, hdr, body, strlen(body), &why), -1);
}
END_TEST

START_TEST(base64_no_prefix)
{
	struct verifier v = {VERIFY_HMAC, "X-Sig", "", ENC_BASE64, "k"};
	char sig[80];
	const char *why;
	sig_of("k", 1, sig);
	ck_assert_int_eq(verify_hmac(&v, sig, body, strlen(body), &why), 0);
	sig_of("k", 0, sig);
	ck_assert_int_eq(verify_hmac(&v, sig, body, strlen(body), &why), -1);
}
END_TEST

START_TEST(bearer)
{
	struct verifier v = {VERIFY_BEARER, NULL, NULL, ENC_HEX, "token-0123456789abcdef"};
	const char *why;
	ck_assert_int_eq(verify_bearer(&v, "Bearer token-0123456789abcdef", &why), 0);
	ck_assert_int_eq(verify_bearer(&v, "Bearer token-0123456789abcdeg", &why), -1);
	ck_assert_str_eq(why, "bad bearer token");
	ck_assert_int_eq(verify_bearer(&v, "token-0123456789abcdef", &why), -1);
	ck_assert_str_eq(why, "missing bearer token");
	ck_assert_int_eq(verify_bearer(&v, NULL, &why), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("verify_hmac");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, hex_with_prefix);
	tcase_add_test(tc, base64_no_prefix);
	tcase_add_test(tc, bearer);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
