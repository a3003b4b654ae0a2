#include "autoconfig.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto.h"

/* SHA-256, fetched from the provider once: OpenSSL 3's one-shot SHA256()
 * and HMAC() look the algorithm up again on every call, which cost more
 * than hashing a webhook's few hundred bytes. */
static EVP_MD *md_fetched;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch(void)
{
	md_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *md(void)
{
	pthread_once(&md_once, md_fetch);
	return md_fetched ? md_fetched : EVP_sha256();
}

void sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
	if (!EVP_Digest(data, len, out, NULL, md(), NULL))
		memset(out, 0, SHA256_LEN); /* out of memory: matches nothing real */
}

/* HMAC (RFC 2104) over the fetched digest: H(K ^ opad, H(K ^ ipad, msg)),
 * with a key longer than the 64-byte block hashed first. */
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
		 unsigned char out[SHA256_LEN])
{
	enum { BLOCK = 64 };
	unsigned char k[BLOCK] = {0}, pad[BLOCK], inner[SHA256_LEN];
	if (keylen > BLOCK)
		sha256(key, keylen, k);
	else if (keylen)
		memcpy(k, key, keylen);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c != NULL;
	for (int i = 0; i < BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	ok = ok && EVP_DigestInit_ex2(c, md(), NULL) && EVP_DigestUpdate(c, pad, BLOCK) &&
	     EVP_DigestUpdate(c, msg, msglen) && EVP_DigestFinal_ex(c, inner, NULL);
	for (int i = 0; i < BLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	ok = ok && EVP_DigestInit_ex2(c, md(), NULL) && EVP_DigestUpdate(c, pad, BLOCK) &&
	     EVP_DigestUpdate(c, inner, SHA256_LEN) && EVP_DigestFinal_ex(c, out, NULL);
	EVP_MD_CTX_free(c);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(pad, sizeof pad);
	if (!ok)
		memset(out, 0, SHA256_LEN);
}

int ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t encode(const char *alpha, int pad, const unsigned char *in, size_t n, char *out)
{
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = alpha[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = alpha[v >> 6 & 63];
		else if (pad)
			out[o++] = '=';
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
	return encode(b64std, 1, in, n, out);
}

size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
	return encode(b64url, 0, in, n, out);
}

/* Each alphabet's value of a character, plus one; 0: not in it. */
#define B64_COMMON()                                                                               \
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,    \
	['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,         \
	['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,        \
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,        \
	['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,        \
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,        \
	['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,        \
	['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,        \
	['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62
static const unsigned char dec_std[256] = {B64_COMMON(), ['+'] = 63, ['/'] = 64};
static const unsigned char dec_url[256] = {B64_COMMON(), ['-'] = 63, ['_'] = 64};

/* Decodes n characters with no padding in them, four at a time. Trailing
 * bits that do not make a whole byte must be zero, so every byte string
 * has one encoding. */
static long decode(const char *in, size_t n, unsigned char *out, int url)
{
	if (n % 4 == 1)
		return -1;
	const unsigned char *t = url ? dec_url : dec_std;
	const unsigned char *u = (const unsigned char *)in;
	size_t o = 0, i = 0;
	for (; i + 4 <= n; i += 4) {
		unsigned a = t[u[i]], b = t[u[i + 1]], c = t[u[i + 2]], d = t[u[i + 3]];
		if (!a || !b || !c || !d)
			return -1;
		unsigned v = (a - 1) << 18 | (b - 1) << 12 | (c - 1) << 6 | (d - 1);
		out[o++] = (unsigned char)(v >> 16);
		out[o++] = (unsigned char)(v >> 8);
		out[o++] = (unsigned char)v;
	}
	if (i == n)
		return (long)o;
	/* Two or three characters left: one or two bytes. */
	unsigned a = t[u[i]], b = t[u[i + 1]], c = n - i == 3 ? t[u[i + 2]] : 1;
	if (!a || !b || !c)
		return -1;
	unsigned v = (a - 1) << 18 | (b - 1) << 12 | (c - 1) << 6;
	if (n - i == 2) {
		if (v & 0xFFFF)
			return -1;
		out[o++] = (unsigned char)(v >> 16);
	} else {
		if (v & 0xFF)
			return -1;
		out[o++] = (unsigned char)(v >> 16);
		out[o++] = (unsigned char)(v >> 8);
	}
	return (long)o;
}

long b64_decode(const char *in, size_t n, unsigned char *out)
{
	if (n % 4 != 0)
		return -1;
	size_t pad = 0;
	while (pad < 2 && n > pad && in[n - 1 - pad] == '=')
		pad++;
	return decode(in, n - pad, out, 0);
}

long b64url_decode(const char *in, size_t n, unsigned char *out)
{
	return decode(in, n, out, 1);
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long hex_decode(const char *in, size_t n, unsigned char *out)
{
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(in[i]), lo = hexval(in[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return (long)(n / 2);
}
