/*
 * The MultiMail REST client: request bodies built to openapi.json's names
 * and limits, answers turned into clear messages, and a blocking call for
 * the command line. The multimail plugin sends through the host's outbox
 * instead, with the same bodies.
 */
#ifndef AC_MULTIMAIL_API_H
#define AC_MULTIMAIL_API_H

#include <stddef.h>

#define MM_DEFAULT_API_URL "https://api.multimail.dev"
#define MM_MAX_RECIPIENTS 50
#define MM_MAX_SUBJECT 998
#define MM_MAX_MARKDOWN 262144
#define MM_MAX_IDEMPOTENCY_KEY 255

/* A list of addresses. */
struct mm_addrs {
	const char *const *v;
	size_t n;
};

/* 1 when s looks like a bare email address (what the API's format: email
 * takes): one @, a dot in the domain, no spaces, no display name. */
int mm_valid_address(const char *s);

/* Bodies. Each returns malloc'd compact JSON, or NULL with err. */
char *mm_send_body(struct mm_addrs to, struct mm_addrs cc, struct mm_addrs bcc,
		   const char *subject, const char *markdown, const char *idempotency_key,
		   char *err, size_t errlen);
char *mm_reply_body(const char *markdown, const char *idempotency_key, char *err, size_t errlen);
char *mm_mailbox_body(const char *address_local, const char *display_name,
		      const char *webhook_url, const char *approval_code, char *err, size_t errlen);
char *mm_decide_body(const char *email_id, const char *action, const char *reason, char *err,
		     size_t errlen);

/* Paths (malloc'd), the ids percent-encoded. */
char *mm_path(const char *fmt, const char *a, const char *b);

#define MM_PATH_MAILBOXES "/v1/mailboxes"
#define MM_PATH_SEND "/v1/mailboxes/%s/send"
#define MM_PATH_REPLY "/v1/mailboxes/%s/reply/%s"
#define MM_PATH_EMAIL "/v1/mailboxes/%s/emails/%s"
#define MM_PATH_CANCEL "/v1/mailboxes/%s/emails/%s/cancel"
#define MM_PATH_THREAD "/v1/mailboxes/%s/threads/%s"
#define MM_PATH_PENDING "/v1/oversight/pending"
#define MM_PATH_DECIDE "/v1/oversight/decide"

/* The list-emails path with its query: limit 1..100, cursor optional.
 * NULL with err on a bad limit. */
char *mm_list_emails_path(const char *mailbox_id, int limit, const char *cursor, char *err,
			  size_t errlen);

/* What an error answer means, in words: by status, with the API's own
 * {"error": ...} text and, for 429, the wait. */
void mm_explain(int status, const char *body, long retry_after, char *out, size_t outlen);

struct mm_client {
	const char *api_url; /* no trailing slash */
	const char *key;     /* Bearer key; never logged */
	long timeout;	     /* seconds */
};

struct mm_answer {
	int status; /* 0: no answer (err says why) */
	char *body;
	size_t len;
	long retry_after; /* seconds, or -1 */
};

/* A blocking call (command line; call.c, which the plugin leaves out, so
 * that it never loads libcurl). body NULL: none. 0 when an answer came
 * back (any status), -1 with err when none did. */
int mm_call(const struct mm_client *c, const char *method, const char *path, const char *body,
	    struct mm_answer *ans, char *err, size_t errlen);
void mm_answer_free(struct mm_answer *a);

#endif
