/*
 * The pure parts of the `forward` plugin: event type patterns, the Standard
 * Webhooks signature, the stable message id and the message body. Kept out
 * of forward.c so the unit test can call them without a host. They use
 * OpenSSL's libcrypto and jansson only, never the host's own helpers: a
 * plugin must not depend on symbols of the binary that loads it.
 */
#ifndef AC_FORWARD_SIGN_H
#define AC_FORWARD_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* "msg_" + 64 hex digits. */
#define FWD_MSG_ID_LEN (4 + 64)
/* "v1," + base64 of a 32-byte HMAC (44 characters). */
#define FWD_SIG_LEN (3 + 44)
/* "2024-01-31T12:34:56.789Z" */
#define FWD_ISO_LEN 24

/* Checks one `events` entry: a non-empty type, or a prefix followed by a
 * single trailing '*'. Returns 0, or -1 with *why set to a static message. */
int fwd_pattern_check(const char *pat, const char **why);

/* 1 when `type` matches `pat`: equal, or for "PREFIX*" starts with PREFIX and
 * has at least one more character ("*" alone matches any non-empty type). */
int fwd_pattern_match(const char *pat, const char *type);

/*
 * Turns a configured secret into the HMAC key: "whsec_<base64>" is the
 * Standard Webhooks form and the key is the decoded rest; any other string
 * is the key itself, byte for byte. Returns 0 with *key (malloc'd) and
 * *keylen, or -1 with *why set to a static message that never quotes the
 * secret.
 */
int fwd_secret_key(const char *secret, unsigned char **key, size_t *keylen, const char **why);

/* Strict standard base64 (with padding) decoding. Returns the decoded
 * length, or -1. out needs 3 * (n / 4) bytes. */
long fwd_b64_decode(const char *in, size_t n, unsigned char *out);

/*
 * The webhook id of one event sent to one target: "msg_" + hex SHA-256 of
 * route, event id, event type and target index. The same event (a repeat
 * post, or a replay after a crash) always gives the same id, so the outbox
 * drops the second copy and a receiver that deduplicates on webhook-id does
 * too; a derived event carries its parent's id but another type, so it
 * gets an id of its own.
 */
void fwd_msg_id(const char *route, const char *event_id, const char *type, unsigned target,
		char out[FWD_MSG_ID_LEN + 1]);

/* The webhook-signature value "v1,<base64 HMAC-SHA256 over
 * "<msg_id>.<timestamp>.<body>">". Returns 0 or -1. */
int fwd_sign(const unsigned char *key, size_t keylen, const char *msg_id, int64_t timestamp,
	     const char *body, size_t len, char out[FWD_SIG_LEN + 1]);

/* ms since the epoch as ISO 8601 UTC with milliseconds. */
void fwd_iso8601(int64_t ms, char out[FWD_ISO_LEN + 1]);

/*
 * The message body {"type":..,"timestamp":..,"data":..}. A body that is
 * valid JSON goes in as it is, byte for byte (a round trip through a parser
 * could change numbers); any other body goes in as a JSON string, invalid
 * UTF-8 replaced by U+FFFD. Returns a malloc'd NUL-terminated string and
 * its length in *outlen, or NULL when out of memory.
 */
char *fwd_body(const char *type, int64_t received_ms, const char *body, size_t len, size_t *outlen);

/* Writes url without its user info, query and fragment (which may carry
 * credentials) to out, for logs and audit records. */
void fwd_url_redact(const char *url, char *out, size_t outlen);

#endif
