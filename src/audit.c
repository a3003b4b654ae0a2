/*
 * The audit chain. Each record's hash covers the previous record's hash, its
 * own sequence number and every field, so editing, removing or reordering a
 * record breaks every hash after it (removing the last records, or rewriting
 * the whole chain, shows only against a head kept elsewhere: audit_walk).
 * Fields are length-prefixed (NULL has its own marker) so that no two
 * different records hash the same bytes.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "store.h"

static void put_u64(struct sha256_ctx *ctx, uint64_t v)
{
	unsigned char b[8];
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (unsigned char)v;
	sha256_update(ctx, b, 8);
}

static void put_field(struct sha256_ctx *ctx, const char *s)
{
	if (!s) {
		put_u64(ctx, UINT64_MAX);
		return;
	}
	size_t n = strlen(s);
	put_u64(ctx, n);
	sha256_update(ctx, s, n);
}

void audit_hash(const unsigned char prev[SHA256_LEN], int64_t seq, const struct audit_rec *r,
		unsigned char out[SHA256_LEN])
{
	struct sha256_ctx ctx;
	sha256_init(&ctx);
	sha256_update(&ctx, prev, SHA256_LEN);
	put_u64(&ctx, (uint64_t)seq);
	put_u64(&ctx, (uint64_t)r->ts_ms);
	put_field(&ctx, r->actor);
	put_field(&ctx, r->kind);
	put_field(&ctx, r->subject);
	put_field(&ctx, r->request_id);
	put_field(&ctx, r->detail);
	sha256_final(&ctx, out);
}

void audit_walk_init(struct audit_walk *w)
{
	memset(w, 0, sizeof *w);
	w->expect = 1;
}

int audit_walk_step(struct audit_walk *w, int64_t seq, const struct audit_rec *r,
		    const char *prev_hex, const char *hash_hex, char *err, size_t errlen)
{
	char hex[2 * SHA256_LEN + 1];
	unsigned char hash[SHA256_LEN];
	hex_encode(w->prev, SHA256_LEN, hex);
	if (seq != w->expect) {
		snprintf(err, errlen, "record %lld: expected record %lld here (removed or reordered)",
			 (long long)seq, (long long)w->expect);
		return -1;
	}
	if (!prev_hex || strcmp(prev_hex, hex)) {
		snprintf(err, errlen, "record %lld: does not chain to record %lld", (long long)seq,
			 (long long)seq - 1);
		return -1;
	}
	audit_hash(w->prev, seq, r, hash);
	hex_encode(hash, SHA256_LEN, hex);
	if (!hash_hex || strcmp(hash_hex, hex)) {
		snprintf(err, errlen, "record %lld: contents do not match its hash (edited)",
			 (long long)seq);
		return -1;
	}
	if (seq == w->head_seq) {
		if (memcmp(hash, w->head, SHA256_LEN)) {
			snprintf(err, errlen,
				 "record %lld: its hash is not the head given (the chain was "
				 "rewritten)",
				 (long long)seq);
			return -1;
		}
		w->head_seen = 1;
	}
	memcpy(w->prev, hash, SHA256_LEN);
	w->expect++;
	return 0;
}
