/*
 * The store: the journal of accepted events, the plugins' key-value pairs
 * and durable timers, and the audit chain. One interface, one backend per
 * URL scheme (sqlite:, postgres:). Plugins never see it; they use host
 * services.
 *
 * All writes happen on the dispatcher thread between store_begin() and
 * store_commit(); the command line opens its own handle to read.
 */
#ifndef AC_STORE_H
#define AC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct store;

/* The schema this binary reads and writes. Each backend carries the steps
 * from 1 up to it; store_migration_what() describes each. */
#define STORE_SCHEMA_VERSION 3
const char *store_migration_what(int version);

/* store_open() flags. SERVE: this process runs the dispatcher (SQLite takes
 * the file for itself). MIGRATE: open a store of an older schema, to
 * migrate it; nothing else may be called then but migrate and close.
 * EXISTING: a SQLite file that is not there, or a file or database that
 * holds no store, is an error, not a new store (the command line reads
 * stores; a mistyped path must not read as empty). With MIGRATE it opens
 * an empty database, so that `migrate --status` can say schema 0. */
enum { STORE_SERVE = 1, STORE_MIGRATE = 2, STORE_EXISTING = 4 };
/* What a command given STORE_EXISTING says when there is no store yet. */
#define STORE_MADE_BY "serve creates the store at its first start"

/* One audit record as appended; the store adds seq, prev and hash. */
struct audit_rec {
	int64_t ts_ms;
	const char *actor;   /* plugin or "host" */
	const char *kind;    /* "event.received", ... */
	const char *subject; /* room, contact, or NULL */
	const char *request_id;
	const char *detail;  /* JSON object text, or NULL */
};

/* One due timer, handed to the callback of store_timers_due(). */
struct timer_row {
	const char *ns;
	const char *key;
	const char *value;
	size_t len;
	int64_t due_ms;
	const char *request_id; /* of the request that set the timer, or NULL */
};

/* One journal row, for tests and the command line. */
struct journal_row {
	int64_t seq;
	const char *dedupe;
	const char *route;
	const char *type;
	const char *body;
	size_t len;
	int64_t received_ms;
};

/* One event to journal with journal_add_all; `added` is set: 1 added, 0
 * the row was there already (also from an earlier item of the same call). */
struct journal_in {
	const char *dedupe, *route, *type, *body, *request_id;
	size_t len;
	int64_t received_ms;
	int added;
};

/* One outbox row. Strings are borrowed from the store for the callback. */
struct outbox_row {
	int64_t id;
	const char *plugin;
	const char *tag;
	const char *method;
	const char *url;
	const char *headers; /* JSON array of "Name: value" strings */
	const char *body;
	size_t body_len;
	const char *idem_key;
	const char *state; /* pending, inflight, done, dead */
	int attempts;
	int max_attempts;
	int64_t max_age_ms;
	int64_t created_ms;
	int64_t next_ms;
	int last_status;
	const char *last_error;
	const char *last_body;
	size_t last_body_len;
	int notify; /* the outcome still has to reach the plugin */
	const char *request_id; /* of the request that queued the row, or NULL */
};

/* How a delivery attempt ended, written back by the dispatcher. */
struct outbox_update {
	int64_t id;
	const char *state;
	int attempts;
	int64_t next_ms;
	int last_status;
	const char *last_error;
	const char *last_body;
	size_t last_body_len;
	int notify;
};

typedef int (*outbox_cb)(void *ctx, const struct outbox_row *r);

struct audit_walk;

struct store_ops {
	void (*close)(struct store *s);
	int (*begin)(struct store *s);
	int (*commit)(struct store *s);
	void (*rollback)(struct store *s);
	int (*savepoint)(struct store *s);
	int (*release)(struct store *s);
	void (*rollback_to)(struct store *s);
	/* 1 added, 0 duplicate, -1 error */
	int (*journal_add)(struct store *s, const char *dedupe, const char *route, const char *type,
			   const char *body, size_t len, int64_t received_ms, const char *request_id);
	int (*journal_find)(struct store *s, const char *dedupe,
			    int (*cb)(void *ctx, const struct journal_row *r), void *ctx);
	/* At most `limit` rows after seq `after` received in [from_ms,
	 * until_ms), in seq order: the number, or -1. */
	int (*journal_range)(struct store *s, int64_t from_ms, int64_t until_ms, int64_t after,
			     int limit, int (*cb)(void *ctx, const struct journal_row *r),
			     void *ctx);
	/* Where a statement costs a round trip (PostgreSQL), a batch's events
	 * journaled in one: 0, or -1 with the transaction unusable (roll it
	 * back). journal_forget takes back a row so added, for an event whose
	 * plugins failed. NULL both where one at a time costs no more. */
	int (*journal_add_all)(struct store *s, struct journal_in *in, size_t n);
	int (*journal_forget)(struct store *s, const char *route, const char *dedupe);
	int (*kv_put)(struct store *s, const char *ns, const char *key, const void *val,
		      size_t len, int64_t due_ms, const char *request_id);
	int (*kv_get)(struct store *s, const char *ns, const char *key, char **val, size_t *len);
	int (*kv_del)(struct store *s, const char *ns, const char *key);
	/* The timer calls take `ns`, a JSON array of the namespaces (plugins)
	 * to consider, as text: a host fires only its own plugins' timers and
	 * leaves the others to a host that loads them. NULL: all. */
	/* How many timers are pending; -1 on error. */
	long long (*timer_count)(struct store *s, const char *ns);
	/* The earliest due time of any timer: 1 and *due set, 0 none, -1 error. */
	int (*timer_next)(struct store *s, const char *ns, int64_t *due_ms);
	/* Calls cb for up to `limit` timers due at `now`, earliest first. */
	int (*timers_due)(struct store *s, int64_t now_ms, int limit, const char *ns,
			  int (*cb)(void *ctx, const struct timer_row *t), void *ctx);
	int (*audit_append)(struct store *s, const struct audit_rec *r);
	/* Audit records about a subject (a room) or a contact (detail's
	 * "contact"), oldest first; both NULL: all. cb gets each with its seq. */
	int (*audit_list)(struct store *s, const char *subject, const char *contact,
			  int (*cb)(void *ctx, int64_t seq, const struct audit_rec *r), void *ctx);
	/* Walks the chain from the start with w (audit_walk_init(), and a head
	 * to check if wanted), recomputing every hash. 0 when it holds;
	 * otherwise -1 with the first bad record named in err. */
	int (*audit_verify)(struct store *s, struct audit_walk *w, char *err, size_t errlen);
	/* Outbox. add: 1 added, 0 the plugin's key exists, -1 error. */
	int (*outbox_add)(struct store *s, const struct outbox_row *r);
	/* Marks up to `limit` due pending rows in flight and hands each to cb;
	 * inside a transaction only (the SQLite backend refuses otherwise). */
	int (*outbox_claim)(struct store *s, int64_t now_ms, int limit, outbox_cb cb, void *ctx);
	/* 0 recorded, -1 error, 1 nothing recorded: the row is no longer in
	 * flight (its result is on record already, or, on PostgreSQL, another
	 * host has claimed it since: this host's connection was gone). */
	int (*outbox_update)(struct store *s, const struct outbox_update *u);
	/* Earliest next_ms of a pending row: 1 and *due, 0 none, -1 error. */
	int (*outbox_next_due)(struct store *s, int64_t *due_ms);
	/* At start, after a crash: rows left in flight are due again now
	 * (PostgreSQL: the rows of any host whose connection is gone). */
	int (*outbox_requeue_inflight)(struct store *s);
	/* Rows whose outcome has not reached their plugin yet, by id, from
	 * the first after after_id. */
	int (*outbox_notify_due)(struct store *s, int64_t after_id, int limit, outbox_cb cb,
				 void *ctx);
	/* Pages through rows by id (state NULL: any), for the command line. */
	int (*outbox_list)(struct store *s, const char *state, int64_t after_id, int limit,
			   outbox_cb cb, void *ctx);
	int (*outbox_get)(struct store *s, int64_t id, outbox_cb cb, void *ctx);
	/* The row's outcome reached its plugin. */
	int (*outbox_notified)(struct store *s, int64_t id);
	/* Operator actions: 1 done, 0 the row is not in a state that allows it. */
	int (*outbox_retry)(struct store *s, int64_t id, int64_t now_ms);
	int (*outbox_cancel)(struct store *s, int64_t id);
	/* Counts rows per state: pending, inflight, done, dead. */
	int (*outbox_counts)(struct store *s, int64_t counts[4]);

	/* The schema version the store holds. */
	int (*schema_version)(struct store *s);
	/* Applies the steps after the store's version up to `target`, each in
	 * its own transaction, telling `say` of each. The count applied, or -1
	 * with err set. */
	int (*migrate)(struct store *s, int target, void (*say)(void *ctx, int version),
		       void *ctx, char *err, size_t errlen);
	/* A cheap write and commit, to tell whether the store is writable. */
	int (*probe)(struct store *s);
	const char *(*errmsg)(struct store *s);
};

struct store {
	const struct store_ops *ops;
};

/* Opens the store named by url ("sqlite:PATH" or "postgres://..."). An
 * empty store gets the current schema; an older one is refused unless
 * STORE_MIGRATE is given, a newer one always. */
struct store *store_open(const char *url, int sync_full, int flags, char *err, size_t errlen);

struct store *store_sqlite_open(const char *path, int sync_full, int flags, char *err,
				size_t errlen);
/* SQLite checkpoints of a serving store: what the commit that left `pages`
 * frames in the WAL does, while a background pass runs (busy) or after one
 * left `done` frames checkpointed. Exposed for the tests. */
enum { CKPT_PAGES = 1000, CKPT_FORCE_PAGES = 4000, CKPT_REMAINDER = 256 };
enum { CKPT_NONE, CKPT_BACKGROUND, CKPT_HERE };
int ckpt_decide(int pages, int busy, int done);
struct store *store_pg_open(const char *url, int sync_full, int flags, char *err, size_t errlen);

/* PostgreSQL: a claimed outbox row belongs to its host this long; after it,
 * any host may claim the row again. A host whose connection is gone loses
 * its rows at once (outbox_requeue_inflight, and every second in
 * outbox_next_due). */
#define STORE_PG_LEASE_MS 60000

/* The URL with any password hidden, for logs and messages. */
const char *store_display(const char *url);

/* The message for a store whose schema does not match this binary. */
void store_version_error(const char *name, int version, char *err, size_t errlen);

/* The audit hash: SHA-256 over the previous hash and the record's fields,
 * each length-prefixed so no two records can share an encoding. */
void audit_hash(const unsigned char prev[SHA256_LEN], int64_t seq, const struct audit_rec *r,
		unsigned char out[SHA256_LEN]);

/* Checking a chain record by record, from the first: each step checks one
 * record's place, its link to the one before and its hash. 0, or -1 with
 * what is wrong in err. */
struct audit_walk {
	unsigned char prev[SHA256_LEN]; /* the hash of the last record checked */
	int64_t expect; /* the next sequence number; expect - 1 checked so far */
	/* A head kept from an earlier walk (0: none): record head_seq must be
	 * there with this hash. Removing records from the end, or rewriting the
	 * chain with fresh hashes, cannot be seen from the store alone. */
	int64_t head_seq;
	unsigned char head[SHA256_LEN];
	int head_seen;
};
void audit_walk_init(struct audit_walk *w);
int audit_walk_step(struct audit_walk *w, int64_t seq, const struct audit_rec *r,
		    const char *prev_hex, const char *hash_hex, char *err, size_t errlen);

#define store_close(s) ((s)->ops->close(s))
#define store_begin(s) ((s)->ops->begin(s))
#define store_commit(s) ((s)->ops->commit(s))
#define store_rollback(s) ((s)->ops->rollback(s))
#define store_savepoint(s) ((s)->ops->savepoint(s))
#define store_release(s) ((s)->ops->release(s))
#define store_rollback_to(s) ((s)->ops->rollback_to(s))
#define store_journal_add(s, ...) ((s)->ops->journal_add((s), __VA_ARGS__))
#define store_journal_find(s, ...) ((s)->ops->journal_find((s), __VA_ARGS__))
#define store_journal_range(s, ...) ((s)->ops->journal_range((s), __VA_ARGS__))
#define store_journal_add_all(s, ...) ((s)->ops->journal_add_all((s), __VA_ARGS__))
#define store_journal_forget(s, ...) ((s)->ops->journal_forget((s), __VA_ARGS__))
#define store_kv_put(s, ...) ((s)->ops->kv_put((s), __VA_ARGS__))
#define store_kv_get(s, ...) ((s)->ops->kv_get((s), __VA_ARGS__))
#define store_kv_del(s, ...) ((s)->ops->kv_del((s), __VA_ARGS__))
#define store_timer_count(s, ns) ((s)->ops->timer_count((s), (ns)))
#define store_timer_next(s, ...) ((s)->ops->timer_next((s), __VA_ARGS__))
#define store_timers_due(s, ...) ((s)->ops->timers_due((s), __VA_ARGS__))
#define store_audit_append(s, ...) ((s)->ops->audit_append((s), __VA_ARGS__))
#define store_audit_list(s, ...) ((s)->ops->audit_list((s), __VA_ARGS__))
#define store_audit_verify(s, ...) ((s)->ops->audit_verify((s), __VA_ARGS__))
#define store_outbox_add(s, ...) ((s)->ops->outbox_add((s), __VA_ARGS__))
#define store_outbox_claim(s, ...) ((s)->ops->outbox_claim((s), __VA_ARGS__))
#define store_outbox_update(s, ...) ((s)->ops->outbox_update((s), __VA_ARGS__))
#define store_outbox_next_due(s, ...) ((s)->ops->outbox_next_due((s), __VA_ARGS__))
#define store_outbox_requeue_inflight(s) ((s)->ops->outbox_requeue_inflight(s))
#define store_outbox_notify_due(s, ...) ((s)->ops->outbox_notify_due((s), __VA_ARGS__))
#define store_outbox_list(s, ...) ((s)->ops->outbox_list((s), __VA_ARGS__))
#define store_outbox_get(s, ...) ((s)->ops->outbox_get((s), __VA_ARGS__))
#define store_outbox_notified(s, ...) ((s)->ops->outbox_notified((s), __VA_ARGS__))
#define store_outbox_retry(s, ...) ((s)->ops->outbox_retry((s), __VA_ARGS__))
#define store_outbox_cancel(s, ...) ((s)->ops->outbox_cancel((s), __VA_ARGS__))
#define store_outbox_counts(s, ...) ((s)->ops->outbox_counts((s), __VA_ARGS__))
#define store_probe(s) ((s)->ops->probe(s))
#define store_schema_version(s) ((s)->ops->schema_version(s))
#define store_migrate(s, ...) ((s)->ops->migrate((s), __VA_ARGS__))
#define store_errmsg(s) ((s)->ops->errmsg(s))

#endif
