#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "testutil.h"

START_TEST(hmac_rfc4231_case2)
{
	unsigned char mac[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
	hex_encode(mac, SHA256_LEN, hex);
	ck_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
END_TEST

START_TEST(base64_round_trip)
{
	unsigned char in[256], out[400];
	char enc[400];
	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n < 40; n++) {
		size_t len = b64_encode(in, n, enc);
		ck_assert_uint_eq(len % 4, 0);
		ck_assert_int_eq(b64_decode(enc, len, out), (long)n);
		ck_assert(memcmp(in, out, n) == 0);
		len = b64url_encode(in, n, enc);
		ck_assert_ptr_null(strchr(enc, '='));
		ck_assert_int_eq(b64url_decode(enc, len, out), (long)n);
		ck_assert(memcmp(in, out, n) == 0);
	}
}
END_TEST

START_TEST(base64_known)
{
	char enc[16];
	b64_encode((const unsigned char *)"foob", 4, enc);
	ck_assert_str_eq(enc, "Zm9vYg==");
	b64url_encode((const unsigned char *)"\xfb\xff", 2, enc);
	ck_assert_str_eq(enc, "-_8");
}
END_TEST

START_TEST(base64_strict)
{
	unsigned char out[32];
	ck_assert_int_eq(b64_decode("Zm9vYg=", 7, out), -1);	 /* bad length */
	ck_assert_int_eq(b64_decode("Zm9v*g==", 8, out), -1); /* bad char */
	ck_assert_int_eq(b64_decode("Zm9vYh==", 8, out), -1); /* stray bits */
	ck_assert_int_eq(b64_decode("Z===", 4, out), -1);
	ck_assert_int_eq(b64url_decode("Zm9vYg==", 8, out), -1); /* no padding in url form */
	ck_assert_int_eq(b64url_decode("a+b/", 4, out), -1);
	ck_assert_int_eq(b64url_decode("Z", 1, out), -1);
}
END_TEST

START_TEST(hex)
{
	unsigned char out[4];
	char enc[9];
	ck_assert_int_eq(hex_decode("00fFa1", 6, out), 3);
	hex_encode(out, 3, enc);
	ck_assert_str_eq(enc, "00ffa1");
	ck_assert_int_eq(hex_decode("0g", 2, out), -1);
	ck_assert_int_eq(hex_decode("abc", 3, out), -1);
}
END_TEST

START_TEST(constant_time_equal)
{
	ck_assert(ct_equal("abc", "abc", 3));
	ck_assert(!ct_equal("abc", "abd", 3));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, hmac_rfc4231_case2);
	tcase_add_test(tc, base64_round_trip);
	tcase_add_test(tc, base64_known);
	tcase_add_test(tc, base64_strict);
	tcase_add_test(tc, hex);
	tcase_add_test(tc, constant_time_equal);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
