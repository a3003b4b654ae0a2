/* The delivery thread: sends claimed outbox rows with libcurl's multi
 * interface and reports each attempt's result. It never touches the store:
 * the dispatcher claims rows and writes results, so the store keeps one
 * writer. */
#ifndef AC_OUTBOX_H
#define AC_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct outbox_conf {
	unsigned concurrency;	  /* requests in flight at most */
	unsigned connect_timeout; /* seconds */
	unsigned timeout;	  /* seconds, whole request */
};

/* One attempt to send, built from a claimed row. */
struct send_req {
	int64_t id;
	char *method;
	char *url;
	char **headers; /* "Name: value" strings, NULL-terminated */
	char *body;
	size_t body_len;
	struct send_req *next;
};

/* What an attempt came to. status 0: no HTTP answer (error says why). */
struct send_res {
	int64_t id;
	int status;
	char error[256];
	char *body; /* NUL-terminated, at most OUTBOX_BODY_MAX bytes kept */
	size_t body_len;
	long retry_after; /* seconds, or -1 */
	int headers_done; /* the blank line that ends the headers was seen */
	double seconds;	  /* from the start of the transfer to its end */
	struct send_res *next;
};

#define OUTBOX_BODY_MAX 65536

struct outbox;

/* Builds a request from a row's fields; headers_json is a JSON array of
 * "Name: value" strings. idem_key, unless NULL or the headers name one, goes
 * out as "Idempotency-Key". NULL on a bad row (err says why). */
struct send_req *send_req_new(int64_t id, const char *method, const char *url,
			      const char *headers_json, const char *idem_key, const char *body,
			      size_t len, char *err, size_t errlen);
/* Sets header lines, "Name: value" each ended by '\n' (the last may lack
 * it), as a plugin's on_attempt writes them: each replaces every line of its
 * name, or is added. 0, or -1 with err set and r unchanged on a malformed
 * line or no memory. */
int send_req_set_headers(struct send_req *r, const char *lines, char *err, size_t errlen);
void send_req_free(struct send_req *r);
void send_res_free(struct send_res *r);

/* Starts the thread. on_result is called on the delivery thread for each
 * finished attempt and takes ownership of the result. */
struct outbox *outbox_start(const struct outbox_conf *c,
			    void (*on_result)(void *ctx, struct send_res *r), void *ctx,
			    char *err, size_t errlen);
/* Hands a request to the thread (which takes ownership). */
void outbox_submit(struct outbox *o, struct send_req *r);
/* Stops: requests still in flight after `grace_ms` are abandoned; their
 * rows stay in flight in the store and are sent again after a restart. */
void outbox_stop(struct outbox *o, int grace_ms);

#endif
