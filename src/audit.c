/*
 * The audit chain. Each record's hash covers the previous record's hash, its
 * own sequence number and every field, so editing, removing or reordering a
 * record breaks every hash after it. Fields are length-prefixed (NULL has
 * its own marker) so that no two different records hash the same bytes.
 */
#include "autoconfig.h"

#include <string.h>

#include <openssl/evp.h>

#include "store.h"

static void put_u64(EVP_MD_CTX *ctx, uint64_t v)
{
	unsigned char b[8];
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (unsigned char)v;
	EVP_DigestUpdate(ctx, b, 8);
}

static void put_field(EVP_MD_CTX *ctx, const char *s)
{
	if (!s) {
		put_u64(ctx, UINT64_MAX);
		return;
	}
	size_t n = strlen(s);
	put_u64(ctx, n);
	EVP_DigestUpdate(ctx, s, n);
}

void audit_hash(const unsigned char prev[SHA256_LEN], int64_t seq, const struct audit_rec *r,
		unsigned char out[SHA256_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = SHA256_LEN;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, prev, SHA256_LEN);
	put_u64(ctx, (uint64_t)seq);
	put_u64(ctx, (uint64_t)r->ts_ms);
	put_field(ctx, r->actor);
	put_field(ctx, r->kind);
	put_field(ctx, r->subject);
	put_field(ctx, r->request_id);
	put_field(ctx, r->detail);
	EVP_DigestFinal_ex(ctx, out, &len);
	EVP_MD_CTX_free(ctx);
}
