#include "autoconfig.h"

/* SHA256_Init() and friends: deprecated by OpenSSL 3 in favour of EVP, but
 * still there, and they hash without the provider machinery. */
#define OPENSSL_API_COMPAT 0x10100000L

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "crypto.h"

/* SHA-256 through OpenSSL's low-level functions, not EVP: the same
 * assembly, but no lookup or context allocation per call, and no provider
 * to load. Loading OpenSSL 3's default provider (what the first EVP call
 * does) costs a process about 2 MiB of memory; a host that only verifies
 * webhooks never needs it. */
_Static_assert(sizeof(SHA256_CTX) <= sizeof(struct sha256_ctx), "sha256_ctx is too small");
_Static_assert(_Alignof(SHA256_CTX) <= _Alignof(struct sha256_ctx), "sha256_ctx is misaligned");

void sha256_init(struct sha256_ctx *c)
{
	SHA256_Init((SHA256_CTX *)c);
}

void sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
	SHA256_Update((SHA256_CTX *)c, data, len);
}

void sha256_final(struct sha256_ctx *c, unsigned char out[SHA256_LEN])
{
	SHA256_Final(out, (SHA256_CTX *)c);
}

void sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, data, len);
	SHA256_Final(out, &c);
}

/* HMAC (RFC 2104): H(K ^ opad, H(K ^ ipad, msg)), with a key longer than
 * the 64-byte block hashed first. */
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
		 unsigned char out[SHA256_LEN])
{
	enum { BLOCK = 64 };
	unsigned char k[BLOCK] = {0}, pad[BLOCK], inner[SHA256_LEN];
	if (keylen > BLOCK)
		sha256(key, keylen, k);
	else if (keylen)
		memcpy(k, key, keylen);
	SHA256_CTX c;
	for (int i = 0; i < BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	SHA256_Init(&c);
	SHA256_Update(&c, pad, BLOCK);
	SHA256_Update(&c, msg, msglen);
	SHA256_Final(inner, &c);
	for (int i = 0; i < BLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	SHA256_Init(&c);
	SHA256_Update(&c, pad, BLOCK);
	SHA256_Update(&c, inner, SHA256_LEN);
	SHA256_Final(out, &c);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(pad, sizeof pad);
	OPENSSL_cleanse(&c, sizeof c);
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
