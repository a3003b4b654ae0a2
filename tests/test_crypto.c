#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

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

START_TEST(hmac_rfc4231_case6_long_key)
{
	unsigned char key[131], mac[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	memset(key, 0xaa, sizeof key);
	const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
	hmac_sha256(key, sizeof key, msg, strlen(msg), mac);
	hex_encode(mac, SHA256_LEN, hex);
	ck_assert_str_eq(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}
END_TEST

/* Our SHA-256 and HMAC against OpenSSL's one-shot functions, across the
 * block boundaries of key and message. */
START_TEST(hashes_match_openssl)
{
	static const size_t keys[] = {0, 1, 31, 63, 64, 65, 131, 200};
	static const size_t msgs[] = {0, 1, 55, 56, 63, 64, 65, 119, 120, 1000};
	unsigned char key[200], msg[1000], a[SHA256_LEN], b[SHA256_LEN];
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (unsigned char)(i * 31 + 7);
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (unsigned char)(i * 17 + 1);
	for (size_t m = 0; m < sizeof msgs / sizeof *msgs; m++) {
		sha256(msg, msgs[m], a);
		SHA256(msg, msgs[m], b);
		ck_assert_msg(!memcmp(a, b, SHA256_LEN), "sha256 of %zu bytes", msgs[m]);
		for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
			unsigned len = SHA256_LEN;
			hmac_sha256(key, keys[k], msg, msgs[m], a);
			HMAC(EVP_sha256(), key, (int)keys[k], msg, msgs[m], b, &len);
			ck_assert_msg(!memcmp(a, b, SHA256_LEN), "hmac, key %zu, message %zu bytes",
				      keys[k], msgs[m]);
		}
	}
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

/* Strictness, against a plain oracle: a text of 1 to 3 characters decodes
 * exactly when all are in the URL alphabet, it is not 1 long, and the bits
 * past the last whole byte are zero; and what it decodes to encodes back to
 * it. Every last character, after every first one (1 and 2 long) or a few
 * (3 long), from the alphabet and a few strangers. */
START_TEST(base64_canonical)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.\x80";
	static const char some[] = "AQgw_-9+=\x80";
	char in[4], enc[8];
	unsigned char out[8];
	size_t tried = 0;
	for (size_t len = 1; len <= 3; len++) {
		const char *head = len < 3 ? chars : some;
		size_t nh = strlen(head), nc = strlen(chars), total = nc;
		for (size_t i = 1; i < len; i++)
			total *= nh;
		for (size_t x = 0; x < total; x++) {
			size_t y = x;
			int valid = len > 1;
			unsigned last = 0;
			for (size_t i = 0; i < len; i++) {
				const char *set = i + 1 == len ? chars : head;
				size_t n = i + 1 == len ? nc : nh;
				in[i] = set[y % n];
				y /= n;
				const char *p = strchr(alpha, in[i]);
				if (!p)
					valid = 0;
				else
					last = (unsigned)(p - alpha);
			}
			if (len == 2 && (last & 0xF))
				valid = 0;
			if (len == 3 && (last & 0x3))
				valid = 0;
			long n = b64url_decode(in, len, out);
			ck_assert_msg(valid ? n == (long)(len * 3 / 4) : n == -1, "[%.*s]: %ld", (int)len,
				      in, n);
			if (n >= 0) {
				ck_assert_uint_eq(b64url_encode(out, (size_t)n, enc), len);
				ck_assert(!memcmp(enc, in, len));
			}
			tried++;
		}
	}
	ck_assert_uint_gt(tried, 8000);
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
	tcase_add_test(tc, hmac_rfc4231_case6_long_key);
	tcase_add_test(tc, hashes_match_openssl);
	tcase_add_test(tc, base64_canonical);
	tcase_add_test(tc, base64_round_trip);
	tcase_add_test(tc, base64_known);
	tcase_add_test(tc, base64_strict);
	tcase_add_test(tc, hex);
	tcase_add_test(tc, constant_time_equal);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
