/*
 * Patterns, Standard Webhooks signatures, message ids and bodies for the
 * `forward` plugin (see sign.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "sign.h"

#define WHSEC "whsec_"

int fwd_pattern_check(const char *pat, const char **why)
{
	const char *star = strchr(pat, '*');
	if (!*pat)
		*why = "must not be empty";
	else if (star && star[1])
		*why = "'*' may only end a pattern (\"aftercall.email.*\", \"*\")";
	else if (strpbrk(pat, " \t\r\n"))
		*why = "must not contain white space";
	else
		return 0;
	return -1;
}

int fwd_pattern_match(const char *pat, const char *type)
{
	size_t n = strlen(pat);
	if (n && pat[n - 1] == '*')
		return strlen(type) > n - 1 && !strncmp(pat, type, n - 1);
	return !strcmp(pat, type);
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* OpenSSL's EVP_DecodeBlock skips white space and ignores padding when it
 * counts, so it would accept a mangled secret: decode by hand instead. */
long fwd_b64_decode(const char *in, size_t n, unsigned char *out)
{
	if (n % 4)
		return -1;
	size_t pad = 0;
	if (n && in[n - 1] == '=')
		pad = (n >= 2 && in[n - 2] == '=') ? 2 : 1;
	long o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			if (i + (size_t)k >= n - pad)
				v[k] = 0;
			else if ((v[k] = b64_value((unsigned char)in[i + k])) < 0)
				return -1;
		}
		unsigned long w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
				  (unsigned long)v[2] << 6 | (unsigned long)v[3];
		size_t keep = (i + 4 == n) ? 3 - pad : 3;
		for (size_t k = 0; k < keep; k++)
			out[o++] = (unsigned char)(w >> (16 - 8 * k));
		/* Bits past the last byte must be zero: one encoding per key. */
		if (keep < 3 && (w & (0xffffffUL >> (8 * keep))))
			return -1;
	}
	return o;
}

int fwd_secret_key(const char *secret, unsigned char **key, size_t *keylen, const char **why)
{
	*key = NULL;
	*keylen = 0;
	if (!*secret) {
		*why = "must not be empty";
		return -1;
	}
	if (strncmp(secret, WHSEC, strlen(WHSEC))) {
		size_t n = strlen(secret);
		if (!(*key = malloc(n))) {
			*why = "out of memory";
			return -1;
		}
		memcpy(*key, secret, n);
		*keylen = n;
		return 0;
	}
	const char *b = secret + strlen(WHSEC);
	size_t n = strlen(b);
	unsigned char *k = malloc(3 * (n / 4) + 3);
	if (!k) {
		*why = "out of memory";
		return -1;
	}
	long len = fwd_b64_decode(b, n, k);
	if (len <= 0) {
		/* Wipe even a failed decode: it holds part of the secret. */
		OPENSSL_cleanse(k, 3 * (n / 4) + 3);
		free(k);
		*why = len < 0 ? "the part after whsec_ is not valid base64"
			       : "the part after whsec_ is empty";
		return -1;
	}
	*key = k;
	*keylen = (size_t)len;
	return 0;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void fwd_msg_id(const char *route, const char *event_id, const char *type, unsigned target,
		char out[FWD_MSG_ID_LEN + 1])
{
	/* Each field with its NUL: none can contain one, so no two different
	 * tuples hash the same bytes. */
	char idx[16];
	int idxlen = snprintf(idx, sizeof idx, "%u", target);
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(c, route, strlen(route) + 1) &&
		 EVP_DigestUpdate(c, event_id, strlen(event_id) + 1) &&
		 EVP_DigestUpdate(c, type, strlen(type) + 1) &&
		 EVP_DigestUpdate(c, idx, (size_t)idxlen + 1) && EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	if (!ok || mdlen != sizeof md)
		memset(md, 0, sizeof md); /* only when libcrypto is broken */
	memcpy(out, "msg_", 4);
	hex(md, sizeof md, out + 4);
}

int fwd_sign(const unsigned char *key, size_t keylen, const char *msg_id, int64_t timestamp,
	     const char *body, size_t len, char out[FWD_SIG_LEN + 1])
{
	char ts[24];
	int tslen = snprintf(ts, sizeof ts, ".%lld.", (long long)timestamp);
	unsigned char mac[32];
	size_t maclen = 0;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
	/* Fed in pieces: the body is never copied next to the key. */
	int ok = c && EVP_MAC_init(c, key, keylen, params) &&
		 EVP_MAC_update(c, (const unsigned char *)msg_id, strlen(msg_id)) &&
		 EVP_MAC_update(c, (const unsigned char *)ts, (size_t)tslen) &&
		 (!len || EVP_MAC_update(c, (const unsigned char *)body, len)) &&
		 EVP_MAC_final(c, mac, &maclen, sizeof mac) && maclen == sizeof mac;
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	if (!ok)
		return -1;
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)sizeof mac);
	return 0;
}

void fwd_iso8601(int64_t ms, char out[FWD_ISO_LEN + 1])
{
	int64_t s = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		s--;
	}
	time_t t = (time_t)s;
	struct tm tm;
	char date[32];
	if (!gmtime_r(&t, &tm) || !strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm))
		strcpy(date, "1970-01-01T00:00:00");
	snprintf(out, FWD_ISO_LEN + 1, "%.19s.%03dZ", date, (int)frac);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80)
		return 1;
	size_t len;
	unsigned cp;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* body as a JSON string value, each invalid byte replaced by U+FFFD. */
static char *json_string_of(const char *body, size_t len)
{
	char *clean = malloc(3 * len + 1);
	if (!clean)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq((const unsigned char *)body + i, len - i);
		if (k) {
			memcpy(clean + o, body + i, k);
			o += k;
			i += k;
		} else {
			memcpy(clean + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	json_t *s = json_stringn(clean, o);
	free(clean);
	char *out = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	json_decref(s);
	return out;
}

char *fwd_body(const char *type, int64_t received_ms, const char *body, size_t len, size_t *outlen)
{
	char iso[FWD_ISO_LEN + 1];
	fwd_iso8601(received_ms, iso);
	/* jansson refuses some valid JSON (integers past 64 bits): such a
	 * body travels as a string, which loses nothing. */
	json_t *parsed = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	int valid = parsed != NULL;
	json_decref(parsed);
	char *qtype = json_string_of(type, strlen(type));
	char *qdata = valid ? NULL : json_string_of(body, len);
	char *out = NULL;
	if (qtype && (valid || qdata)) {
		const char *data = valid ? body : qdata;
		size_t dlen = valid ? len : strlen(qdata);
		size_t cap = strlen(qtype) + dlen + 64;
		if ((out = malloc(cap))) {
			int n = snprintf(out, cap,
					 "{\"type\":%s,\"timestamp\":\"%s\",\"data\":", qtype, iso);
			memcpy(out + n, data, dlen);
			memcpy(out + n + dlen, "}", 2);
			*outlen = (size_t)n + dlen + 1;
		}
	}
	free(qtype);
	free(qdata);
	return out;
}

void fwd_url_redact(const char *url, char *out, size_t outlen)
{
	const char *scheme = strstr(url, "://");
	const char *auth = scheme ? scheme + 3 : url;
	size_t authlen = strcspn(auth, "/?#");
	const char *at = memchr(auth, '@', authlen);
	const char *host = at ? at + 1 : auth;
	size_t pathlen = strcspn(host, "?#");
	snprintf(out, outlen, "%.*s%.*s", (int)(auth - url), url, (int)pathlen, host);
}
