/* Hashes, MACs and the encodings that carry them, on top of OpenSSL. */
#ifndef AC_CRYPTO_H
#define AC_CRYPTO_H

#include <stddef.h>

#define SHA256_LEN 32

void sha256(const void *data, size_t len, unsigned char out[SHA256_LEN]);
/* The same in parts. The state is OpenSSL's SHA256_CTX, kept opaque here. */
struct sha256_ctx {
	unsigned long long opaque[14];
};
void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, unsigned char out[SHA256_LEN]);
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
		 unsigned char out[SHA256_LEN]);
/* Constant-time comparison: 1 when equal. */
int ct_equal(const void *a, const void *b, size_t len);

/* Standard base64 with padding. out needs 4*((n+2)/3)+1 bytes. */
size_t b64_encode(const unsigned char *in, size_t n, char *out);
/* URL-safe base64 without padding (JWT). out needs 4*((n+2)/3)+1 bytes. */
size_t b64url_encode(const unsigned char *in, size_t n, char *out);
/* Strict decoders: return the decoded length, or -1 on any bad character,
 * bad length or bad padding. out needs 3*(n/4)+3 bytes. */
long b64_decode(const char *in, size_t n, unsigned char *out);
long b64url_decode(const char *in, size_t n, unsigned char *out);

void hex_encode(const unsigned char *in, size_t n, char *out); /* 2n+1 bytes */
long hex_decode(const char *in, size_t n, unsigned char *out); /* n/2 bytes */

#endif
