/*
 * The SQLite backend of the store.
 *
 * WAL mode: readers (the command line) never block the dispatcher, and a
 * commit is one append to the log. With sync "full" (the default) every
 * commit is fsynced before the dispatcher answers anyone, so a 2xx survives
 * power loss; "normal" survives a crash of the process but not of the
 * machine. Group commit in the dispatcher makes one fsync serve a batch.
 * A serving store checkpoints in the background (see "checkpoints").
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <pthread.h>
#include <sqlite3.h>

#include "log.h"
#include "store.h"

/* Step N takes a store from schema N-1 to N; step 1 creates it. */
static const char *const steps[STORE_SCHEMA_VERSION + 1] = {
	[1] = "CREATE TABLE IF NOT EXISTS journal("
	      " seq INTEGER PRIMARY KEY,"
	      " route TEXT NOT NULL,"
	      " dedupe TEXT NOT NULL,"
	      " type TEXT NOT NULL,"
	      " body BLOB NOT NULL,"
	      " received_ms INTEGER NOT NULL,"
	      " request_id TEXT,"
	      " UNIQUE(route, dedupe));"
	      "CREATE TABLE IF NOT EXISTS kv("
	      " ns TEXT NOT NULL,"
	      " key TEXT NOT NULL,"
	      " value BLOB NOT NULL,"
	      " due_ms INTEGER NOT NULL DEFAULT 0,"
	      " PRIMARY KEY(ns, key)) WITHOUT ROWID;"
	      "CREATE INDEX IF NOT EXISTS kv_due ON kv(due_ms) WHERE due_ms > 0;"
	      "CREATE TABLE IF NOT EXISTS audit("
	      " seq INTEGER PRIMARY KEY,"
	      " ts_ms INTEGER NOT NULL,"
	      " actor TEXT NOT NULL,"
	      " kind TEXT NOT NULL,"
	      " subject TEXT,"
	      " request_id TEXT,"
	      " detail TEXT,"
	      " prev TEXT NOT NULL,"
	      " hash TEXT NOT NULL);"
	      "CREATE TABLE IF NOT EXISTS outbox("
	      " id INTEGER PRIMARY KEY,"
	      " plugin TEXT NOT NULL,"
	      " tag TEXT,"
	      " method TEXT NOT NULL,"
	      " url TEXT NOT NULL,"
	      " headers TEXT NOT NULL,"
	      " body BLOB NOT NULL,"
	      " idem_key TEXT NOT NULL,"
	      " state TEXT NOT NULL,"
	      " attempts INTEGER NOT NULL DEFAULT 0,"
	      " max_attempts INTEGER NOT NULL,"
	      " max_age_ms INTEGER NOT NULL,"
	      " created_ms INTEGER NOT NULL,"
	      " next_ms INTEGER NOT NULL,"
	      " last_status INTEGER NOT NULL DEFAULT 0,"
	      " last_error TEXT,"
	      " last_body BLOB,"
	      " notify INTEGER NOT NULL DEFAULT 0,"
	      " UNIQUE(plugin, idem_key));"
	      "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_ms) WHERE state = 'pending';"
	      "CREATE INDEX IF NOT EXISTS outbox_notify ON outbox(id) WHERE notify = 1;"
	      "CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state, id);",
	[2] = "ALTER TABLE outbox ADD COLUMN request_id TEXT;"
	      "ALTER TABLE kv ADD COLUMN request_id TEXT;",
	/* PostgreSQL's claim columns: a SQLite file has one host. */
	[3] = "",
};

#define OUTBOX_COLS                                                                                \
	"SELECT id, plugin, tag, method, url, headers, body, idem_key, state, attempts,"           \
	" max_attempts, max_age_ms, created_ms, next_ms, last_status, last_error, last_body,"      \
	" notify, request_id FROM outbox"

enum {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_SAVEPOINT,
	Q_RELEASE,
	Q_ROLLBACK_TO,
	Q_JOURNAL_ADD,
	Q_JOURNAL_FIND,
	Q_JOURNAL_RANGE,
	Q_KV_PUT,
	Q_KV_GET,
	Q_KV_DEL,
	Q_TIMER_NEXT,
	Q_TIMERS_DUE,
	Q_AUDIT_HEAD,
	Q_AUDIT_ADD,
	Q_PROBE,
	Q_OUTBOX_ADD,
	Q_OUTBOX_DUE,
	Q_OUTBOX_MARK,
	Q_OUTBOX_UPDATE,
	Q_OUTBOX_NEXT,
	Q_OUTBOX_REQUEUE,
	Q_OUTBOX_NOTIFY,
	Q_OUTBOX_LIST,
	Q_OUTBOX_LIST_STATE,
	Q_OUTBOX_GET,
	Q_OUTBOX_COUNTS,
	Q_OUTBOX_NOTIFIED,
	Q_OUTBOX_RETRY,
	Q_OUTBOX_CANCEL,
	Q_COUNT
};

/* The timer queries' filter on namespaces (store.h): a JSON array of names,
 * or NULL for all. */
#define NS_IN(param) " AND (" param " IS NULL OR ns IN (SELECT value FROM json_each(" param ")))"

static const char *const sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_SAVEPOINT] = "SAVEPOINT ev",
	[Q_RELEASE] = "RELEASE ev",
	[Q_ROLLBACK_TO] = "ROLLBACK TO ev",
	[Q_JOURNAL_ADD] = "INSERT INTO journal(route, dedupe, type, body, received_ms, request_id)"
			  " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
	[Q_JOURNAL_FIND] = "SELECT seq, dedupe, route, type, body, received_ms FROM journal"
			   " WHERE dedupe = ?1 ORDER BY seq",
	[Q_JOURNAL_RANGE] = "SELECT seq, dedupe, route, type, body, received_ms FROM journal"
			    " WHERE seq > ?1 AND received_ms >= ?2 AND received_ms < ?3"
			    " ORDER BY seq LIMIT ?4",
	[Q_KV_PUT] = "INSERT INTO kv(ns, key, value, due_ms, request_id) VALUES(?1, ?2, ?3, ?4, ?5)"
		     " ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value,"
		     " due_ms = excluded.due_ms, request_id = excluded.request_id",
	[Q_KV_GET] = "SELECT value FROM kv WHERE ns = ?1 AND key = ?2",
	[Q_KV_DEL] = "DELETE FROM kv WHERE ns = ?1 AND key = ?2",
	[Q_TIMER_NEXT] = "SELECT due_ms FROM kv INDEXED BY kv_due WHERE due_ms > 0" NS_IN("?1")
			 " ORDER BY due_ms LIMIT 1",
	[Q_TIMERS_DUE] = "SELECT ns, key, value, due_ms, request_id FROM kv INDEXED BY kv_due"
			 " WHERE due_ms > 0 AND due_ms <= ?1" NS_IN("?3") " ORDER BY due_ms LIMIT ?2",
	[Q_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	[Q_AUDIT_ADD] = "INSERT INTO audit(seq, ts_ms, actor, kind, subject, request_id, detail,"
			" prev, hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[Q_PROBE] = "UPDATE meta SET v = v WHERE k = 'schema'",
	[Q_OUTBOX_ADD] = "INSERT INTO outbox(plugin, tag, method, url, headers, body, idem_key, state,"
			 " max_attempts, max_age_ms, created_ms, next_ms, request_id)"
			 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10, ?10, ?11)"
			 " ON CONFLICT DO NOTHING",
	/* INDEXED BY: without ANALYZE the planner takes outbox_state and sorts
	 * every pending row on each pass, which grows with the backlog. */
	[Q_OUTBOX_DUE] = OUTBOX_COLS " INDEXED BY outbox_due WHERE state = 'pending' AND next_ms <= ?1"
				     " ORDER BY next_ms LIMIT ?2",
	[Q_OUTBOX_MARK] = "UPDATE outbox SET state = 'inflight' WHERE id = ?1",
	[Q_OUTBOX_UPDATE] = "UPDATE outbox SET state = ?2, attempts = ?3, next_ms = ?4,"
			    " last_status = ?5, last_error = ?6, last_body = ?7, notify = ?8"
			    " WHERE id = ?1 AND state = 'inflight'",
	[Q_OUTBOX_NEXT] = "SELECT min(next_ms) FROM outbox INDEXED BY outbox_due"
			  " WHERE state = 'pending'",
	[Q_OUTBOX_REQUEUE] = "UPDATE outbox SET state = 'pending' WHERE state = 'inflight'",
	[Q_OUTBOX_NOTIFY] = OUTBOX_COLS " WHERE notify = 1 AND id > ?2 ORDER BY id LIMIT ?1",
	[Q_OUTBOX_LIST] = OUTBOX_COLS " WHERE id > ?1 ORDER BY id LIMIT ?2",
	[Q_OUTBOX_LIST_STATE] = OUTBOX_COLS " WHERE state = ?3 AND id > ?1 ORDER BY id LIMIT ?2",
	[Q_OUTBOX_GET] = OUTBOX_COLS " WHERE id = ?1",
	[Q_OUTBOX_COUNTS] = "SELECT state, count(*) FROM outbox GROUP BY state",
	[Q_OUTBOX_NOTIFIED] = "UPDATE outbox SET notify = 0 WHERE id = ?1",
	[Q_OUTBOX_RETRY] = "UPDATE outbox SET state = 'pending', attempts = 0, next_ms = ?2,"
			   " created_ms = ?2, notify = 0 WHERE id = ?1 AND state = 'dead'",
	[Q_OUTBOX_CANCEL] = "UPDATE outbox SET state = 'dead', last_error = 'cancelled by operator',"
			    " notify = 1 WHERE id = ?1 AND state = 'pending'",
};

/* The background checkpointer of a serving store (see ckpt_decide). */
struct ckpt {
	char *path;
	int sync_full;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* wakes the thread */
	pthread_cond_t idle; /* a pass has ended */
	int started, want, stop;
	int busy;   /* a pass was asked for and has not ended */
	int done;   /* frames the last pass left checkpointed */
	int failed; /* no second connection: the writer checkpoints */
};

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *q[Q_COUNT];
	int lock_fd;
	struct ckpt *ck; /* serving stores only */
	const char *refusal; /* the store's own last error, until the next call */
};

/* ---- checkpoints ---------------------------------------------------------
 *
 * A checkpoint copies the pages the WAL holds into the database file and
 * syncs both; SQLite runs one inside the commit that takes the WAL past
 * 1,000 pages, so the dispatcher (and every request waiting on it) stood
 * still for a 4 MiB write and two more fsyncs. A serving store instead
 * hands that copy to a thread with a connection of its own (a PASSIVE
 * checkpoint, which never blocks the writer), and the writer finishes the
 * short remainder itself, so that its next transaction can start the WAL
 * over from the beginning; at CKPT_FORCE_PAGES (the background falling
 * behind) it waits for the pass in progress and checkpoints the rest
 * itself, which bounds the WAL. */

int ckpt_decide(int pages, int busy, int done)
{
	if (pages < CKPT_PAGES)
		return CKPT_NONE;
	if (pages >= CKPT_FORCE_PAGES)
		return CKPT_HERE;
	if (busy)
		return CKPT_NONE;
	return pages - done < CKPT_REMAINDER ? CKPT_HERE : CKPT_BACKGROUND;
}

static void *ckpt_main(void *arg)
{
	struct ckpt *ck = arg;
	sqlite3 *db = NULL;
	for (;;) {
		pthread_mutex_lock(&ck->mu);
		while (!ck->want && !ck->stop)
			pthread_cond_wait(&ck->cv, &ck->mu);
		int stop = ck->stop;
		ck->want = 0;
		pthread_mutex_unlock(&ck->mu);
		if (stop)
			break;
		int failed = 0, log = 0, done = 0;
		if (!db) {
			if (sqlite3_open_v2(ck->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
					    NULL) != SQLITE_OK ||
			    sqlite3_exec(db,
					 ck->sync_full ? "PRAGMA synchronous=FULL; PRAGMA cache_size=16"
						       : "PRAGMA synchronous=NORMAL; PRAGMA cache_size=16",
					 NULL, NULL, NULL) != SQLITE_OK) {
				log_fields(AC_LOG_WARN,
					   "store: no connection for background checkpoints; "
					   "checkpointing on commit",
					   "error", db ? sqlite3_errmsg(db) : "out of memory", LOG_END);
				sqlite3_close(db);
				db = NULL;
				failed = 1;
			}
		}
		if (db && sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, &log,
						    &done) != SQLITE_OK)
			done = 0;
		pthread_mutex_lock(&ck->mu);
		ck->busy = 0;
		ck->done = done;
		ck->failed = failed;
		pthread_cond_broadcast(&ck->idle);
		pthread_mutex_unlock(&ck->mu);
		if (failed)
			break;
	}
	sqlite3_close(db);
	return NULL;
}

/* Called by SQLite after each commit, on the writer's thread. */
static int ckpt_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct ckpt *ck = arg;
	if (pages < CKPT_PAGES)
		return SQLITE_OK;
	pthread_mutex_lock(&ck->mu);
	int act = ck->failed ? CKPT_HERE : ckpt_decide(pages, ck->busy, ck->done);
	if (act == CKPT_BACKGROUND) {
		if (!ck->started && pthread_create(&ck->thread, NULL, ckpt_main, ck) == 0)
			ck->started = 1;
		if (ck->started) {
			ck->want = ck->busy = 1;
			pthread_cond_signal(&ck->cv);
		} else {
			act = CKPT_HERE;
		}
	}
	/* At the bound, wait for a pass in progress to end: a checkpoint
	 * cannot run beside another, and the WAL must not grow on. */
	while (act == CKPT_HERE && ck->busy)
		pthread_cond_wait(&ck->idle, &ck->mu);
	pthread_mutex_unlock(&ck->mu);
	if (act == CKPT_HERE &&
	    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) == SQLITE_OK) {
		pthread_mutex_lock(&ck->mu);
		ck->done = 0;
		pthread_mutex_unlock(&ck->mu);
	}
	return SQLITE_OK;
}

static struct ckpt *ckpt_new(sqlite3 *db, const char *path, int sync_full)
{
	struct ckpt *ck = calloc(1, sizeof *ck);
	if (!ck || !(ck->path = strdup(path))) {
		free(ck);
		return NULL;
	}
	ck->sync_full = sync_full;
	pthread_mutex_init(&ck->mu, NULL);
	pthread_cond_init(&ck->cv, NULL);
	pthread_cond_init(&ck->idle, NULL);
	sqlite3_wal_hook(db, ckpt_hook, ck); /* replaces SQLite's own checkpoints */
	return ck;
}

static void ckpt_free(struct ckpt *ck)
{
	if (!ck)
		return;
	if (ck->started) {
		pthread_mutex_lock(&ck->mu);
		ck->stop = 1;
		pthread_cond_signal(&ck->cv);
		pthread_mutex_unlock(&ck->mu);
		pthread_join(ck->thread, NULL);
	}
	pthread_mutex_destroy(&ck->mu);
	pthread_cond_destroy(&ck->cv);
	pthread_cond_destroy(&ck->idle);
	free(ck->path);
	free(ck);
}

#define DB(s) (((struct sqlite_store *)(s))->db)

static sqlite3_stmt *stmt(struct store *s, int which)
{
	struct sqlite_store *ss = (struct sqlite_store *)s;
	ss->refusal = NULL;
	sqlite3_stmt *st = ss->q[which];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Runs a statement that returns no rows. */
static int exec1(struct store *s, int which)
{
	sqlite3_stmt *st = stmt(s, which);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void sq_close(struct store *s)
{
	struct sqlite_store *ss = (struct sqlite_store *)s;
	ckpt_free(ss->ck);
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(ss->q[i]);
	sqlite3_close(ss->db);
	if (ss->lock_fd >= 0)
		close(ss->lock_fd);
	free(ss);
}

static int sq_begin(struct store *s)
{
	return exec1(s, Q_BEGIN);
}

static int sq_commit(struct store *s)
{
	if (exec1(s, Q_COMMIT) == 0)
		return 0;
	/* A failed COMMIT (disk full, I/O error) may leave the transaction
	 * open; end it so the next batch starts clean. */
	if (!sqlite3_get_autocommit(DB(s)))
		exec1(s, Q_ROLLBACK);
	return -1;
}

static void sq_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(DB(s)))
		exec1(s, Q_ROLLBACK);
}

/* Savepoints and claims live inside the batch's transaction. SQLite may
 * roll that back whole on its own (SQLITE_FULL, IOERR, NOMEM); a SAVEPOINT
 * then would start a transaction of its own, and its RELEASE commit it: an
 * event's effects committed apart from the batch, which fails. */
static int no_transaction(struct store *s)
{
	if (!sqlite3_get_autocommit(DB(s)))
		return 0;
	((struct sqlite_store *)s)->refusal = "no transaction open (SQLite rolled back the batch's)";
	return 1;
}

static int sq_savepoint(struct store *s)
{
	return no_transaction(s) ? -1 : exec1(s, Q_SAVEPOINT);
}

static int sq_release(struct store *s)
{
	return exec1(s, Q_RELEASE);
}

static void sq_rollback_to(struct store *s)
{
	exec1(s, Q_ROLLBACK_TO);
	exec1(s, Q_RELEASE);
}

static int sq_journal_add(struct store *s, const char *dedupe, const char *route, const char *type,
			  const char *body, size_t len, int64_t received_ms, const char *request_id)
{
	sqlite3_stmt *st = stmt(s, Q_JOURNAL_ADD);
	sqlite3_bind_text(st, 1, route, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dedupe, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 4, body, len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, received_ms);
	sqlite3_bind_text(st, 6, request_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	return sqlite3_changes(DB(s)) > 0 ? 1 : 0;
}

static int journal_rows(sqlite3_stmt *st, int (*cb)(void *ctx, const struct journal_row *r),
			void *ctx)
{
	int rc, n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct journal_row r = {
			.seq = sqlite3_column_int64(st, 0),
			.dedupe = (const char *)sqlite3_column_text(st, 1),
			.route = (const char *)sqlite3_column_text(st, 2),
			.type = (const char *)sqlite3_column_text(st, 3),
			.body = sqlite3_column_blob(st, 4),
			.len = (size_t)sqlite3_column_bytes(st, 4),
			.received_ms = sqlite3_column_int64(st, 5),
		};
		n++;
		if (cb && cb(ctx, &r))
			break;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

static int sq_journal_find(struct store *s, const char *dedupe,
			   int (*cb)(void *ctx, const struct journal_row *r), void *ctx)
{
	sqlite3_stmt *st = stmt(s, Q_JOURNAL_FIND);
	sqlite3_bind_text(st, 1, dedupe, -1, SQLITE_STATIC);
	return journal_rows(st, cb, ctx);
}

static int sq_journal_range(struct store *s, int64_t from_ms, int64_t until_ms, int64_t after,
			    int limit, int (*cb)(void *ctx, const struct journal_row *r),
			    void *ctx)
{
	sqlite3_stmt *st = stmt(s, Q_JOURNAL_RANGE);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, from_ms);
	sqlite3_bind_int64(st, 3, until_ms);
	sqlite3_bind_int(st, 4, limit);
	return journal_rows(st, cb, ctx);
}

static int sq_kv_put(struct store *s, const char *ns, const char *key, const void *val, size_t len,
		     int64_t due_ms, const char *request_id)
{
	sqlite3_stmt *st = stmt(s, Q_KV_PUT);
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 3, len ? val : "", len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, due_ms > 0 ? due_ms : 0);
	sqlite3_bind_text(st, 5, due_ms > 0 ? request_id : NULL, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int sq_kv_get(struct store *s, const char *ns, const char *key, char **val, size_t *len)
{
	sqlite3_stmt *st = stmt(s, Q_KV_GET);
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), found = 0;
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		char *p = malloc(n + 1);
		if (p) {
			if (n)
				memcpy(p, sqlite3_column_blob(st, 0), n);
			p[n] = '\0';
			*val = p;
			*len = n;
			found = 1;
		} else {
			rc = SQLITE_NOMEM;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	return found;
}

static int sq_kv_del(struct store *s, const char *ns, const char *key)
{
	sqlite3_stmt *st = stmt(s, Q_KV_DEL);
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static long long sq_timer_count(struct store *s, const char *ns)
{
	sqlite3_stmt *st;
	long long n = -1;
	if (sqlite3_prepare_v2(DB(s),
			       "SELECT count(*) FROM kv INDEXED BY kv_due WHERE due_ms > 0" NS_IN("?1"),
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int sq_timer_next(struct store *s, const char *ns, int64_t *due_ms)
{
	sqlite3_stmt *st = stmt(s, Q_TIMER_NEXT);
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), found = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*due_ms = sqlite3_column_int64(st, 0);
		found = 1;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}

struct due_copy {
	char *ns, *key, *value, *request_id;
	size_t len;
	int64_t due_ms;
};

/* Due rows are copied out before any callback runs: the callbacks write to
 * the same table, which must not change under an open cursor. */
static int sq_timers_due(struct store *s, int64_t now_ms, int limit, const char *ns,
			 int (*cb)(void *ctx, const struct timer_row *t), void *ctx)
{
	struct due_copy *rows = calloc((size_t)limit, sizeof *rows);
	if (!rows)
		return -1;
	sqlite3_stmt *st = stmt(s, Q_TIMERS_DUE);
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int(st, 2, limit);
	sqlite3_bind_text(st, 3, ns, -1, SQLITE_STATIC);
	int n = 0;
	while (n < limit && sqlite3_step(st) == SQLITE_ROW) {
		struct due_copy *r = &rows[n++];
		r->ns = strdup((const char *)sqlite3_column_text(st, 0));
		r->key = strdup((const char *)sqlite3_column_text(st, 1));
		r->len = (size_t)sqlite3_column_bytes(st, 2);
		r->value = malloc(r->len + 1);
		if (r->value) {
			if (r->len)
				memcpy(r->value, sqlite3_column_blob(st, 2), r->len);
			r->value[r->len] = '\0';
		}
		r->due_ms = sqlite3_column_int64(st, 3);
		if (sqlite3_column_type(st, 4) != SQLITE_NULL)
			r->request_id = strdup((const char *)sqlite3_column_text(st, 4));
	}
	sqlite3_reset(st);
	int ret = 0;
	for (int i = 0; i < n; i++) {
		struct due_copy *r = &rows[i];
		if (!ret && r->ns && r->key && r->value) {
			struct timer_row t = {r->ns, r->key, r->value, r->len, r->due_ms,
					      r->request_id};
			if (cb(ctx, &t) < 0)
				ret = -1;
		}
		free(r->ns);
		free(r->key);
		free(r->value);
		free(r->request_id);
	}
	free(rows);
	return ret < 0 ? -1 : n;
}

static int sq_audit_append(struct store *s, const struct audit_rec *r)
{
	unsigned char prev[SHA256_LEN] = {0}, hash[SHA256_LEN];
	char prev_hex[2 * SHA256_LEN + 1], hash_hex[2 * SHA256_LEN + 1];
	int64_t seq = 1;

	/* The head is read inside the transaction, so a rolled-back append
	 * never leaves a stale head behind. */
	sqlite3_stmt *st = stmt(s, Q_AUDIT_HEAD);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0) + 1;
		const char *h = (const char *)sqlite3_column_text(st, 1);
		if (!h || hex_decode(h, strlen(h), prev) != SHA256_LEN)
			rc = SQLITE_CORRUPT;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;

	audit_hash(prev, seq, r, hash);
	hex_encode(prev, SHA256_LEN, prev_hex);
	hex_encode(hash, SHA256_LEN, hash_hex);
	st = stmt(s, Q_AUDIT_ADD);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, r->ts_ms);
	sqlite3_bind_text(st, 3, r->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->detail, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, prev_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, hash_hex, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int sq_audit_list(struct store *s, const char *subject, const char *contact,
			 int (*cb)(void *ctx, int64_t seq, const struct audit_rec *r), void *ctx)
{
	sqlite3_stmt *st;
	/* Records of a room, and records of the same sessions that carry the
	 * room only in their detail, are matched alike. */
	if (sqlite3_prepare_v2(DB(s),
			       "SELECT seq, ts_ms, actor, kind, subject, request_id, detail FROM audit"
			       " WHERE (?1 IS NULL OR subject = ?1 OR json_extract(detail, '$.room') = ?1)"
			       " AND (?2 IS NULL OR json_extract(detail, '$.contact') = ?2)"
			       " ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, contact, -1, SQLITE_STATIC);
	int rc, n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct audit_rec r = {
			.ts_ms = sqlite3_column_int64(st, 1),
			.actor = (const char *)sqlite3_column_text(st, 2),
			.kind = (const char *)sqlite3_column_text(st, 3),
			.subject = (const char *)sqlite3_column_text(st, 4),
			.request_id = (const char *)sqlite3_column_text(st, 5),
			.detail = (const char *)sqlite3_column_text(st, 6),
		};
		n++;
		if (cb(ctx, sqlite3_column_int64(st, 0), &r))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

static int sq_audit_verify(struct store *s, struct audit_walk *w, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(DB(s),
			       "SELECT seq, ts_ms, actor, kind, subject, request_id, detail, prev, hash"
			       " FROM audit ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(DB(s)));
		return -1;
	}
	int rc, bad = 0;
	while (!bad && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct audit_rec r = {
			.ts_ms = sqlite3_column_int64(st, 1),
			.actor = (const char *)sqlite3_column_text(st, 2),
			.kind = (const char *)sqlite3_column_text(st, 3),
			.subject = (const char *)sqlite3_column_text(st, 4),
			.request_id = (const char *)sqlite3_column_text(st, 5),
			.detail = (const char *)sqlite3_column_text(st, 6),
		};
		bad = audit_walk_step(w, sqlite3_column_int64(st, 0), &r,
				      (const char *)sqlite3_column_text(st, 7),
				      (const char *)sqlite3_column_text(st, 8), err, errlen) != 0;
	}
	if (!bad && rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(DB(s)));
		bad = 1;
	}
	sqlite3_finalize(st);
	return bad ? -1 : 0;
}

/* ---- outbox ------------------------------------------------------------- */

static int sq_outbox_add(struct store *s, const struct outbox_row *r)
{
	sqlite3_stmt *st = stmt(s, Q_OUTBOX_ADD);
	sqlite3_bind_text(st, 1, r->plugin, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->tag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->headers, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 6, r->body_len ? r->body : "", r->body_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->idem_key, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, r->max_attempts);
	sqlite3_bind_int64(st, 9, r->max_age_ms);
	sqlite3_bind_int64(st, 10, r->created_ms);
	sqlite3_bind_text(st, 11, r->request_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	return sqlite3_changes(DB(s)) > 0 ? 1 : 0;
}

static void row_from(sqlite3_stmt *st, struct outbox_row *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->plugin = (const char *)sqlite3_column_text(st, 1);
	r->tag = (const char *)sqlite3_column_text(st, 2);
	r->method = (const char *)sqlite3_column_text(st, 3);
	r->url = (const char *)sqlite3_column_text(st, 4);
	r->headers = (const char *)sqlite3_column_text(st, 5);
	r->body = sqlite3_column_blob(st, 6);
	r->body_len = (size_t)sqlite3_column_bytes(st, 6);
	r->idem_key = (const char *)sqlite3_column_text(st, 7);
	r->state = (const char *)sqlite3_column_text(st, 8);
	r->attempts = sqlite3_column_int(st, 9);
	r->max_attempts = sqlite3_column_int(st, 10);
	r->max_age_ms = sqlite3_column_int64(st, 11);
	r->created_ms = sqlite3_column_int64(st, 12);
	r->next_ms = sqlite3_column_int64(st, 13);
	r->last_status = sqlite3_column_int(st, 14);
	r->last_error = (const char *)sqlite3_column_text(st, 15);
	r->last_body = sqlite3_column_blob(st, 16);
	r->last_body_len = (size_t)sqlite3_column_bytes(st, 16);
	r->notify = sqlite3_column_int(st, 17);
	r->request_id = (const char *)sqlite3_column_text(st, 18);
}

/* Steps a prepared row query, handing each row to cb. Returns the count,
 * or -1. The callback must not write to the outbox (the cursor is open). */
static int each_row(sqlite3_stmt *st, outbox_cb cb, void *ctx)
{
	int rc, n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct outbox_row r;
		row_from(st, &r);
		n++;
		if (cb && cb(ctx, &r))
			break;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

struct claim_ctx {
	outbox_cb cb;
	void *ctx;
	int64_t ids[256];
	int n;
};

static int claim_one(void *c, const struct outbox_row *r)
{
	struct claim_ctx *cc = c;
	cc->ids[cc->n++] = r->id;
	return cc->cb(cc->ctx, r);
}

static int sq_outbox_claim(struct store *s, int64_t now_ms, int limit, outbox_cb cb, void *ctx)
{
	struct claim_ctx cc = {.cb = cb, .ctx = ctx};
	/* Rows marked in flight outside the batch would stay so, committed
	 * on their own, with no request behind them. */
	if (no_transaction(s))
		return -1;
	if (limit > 256)
		limit = 256;
	sqlite3_stmt *st = stmt(s, Q_OUTBOX_DUE);
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int(st, 2, limit);
	int n = each_row(st, claim_one, &cc);
	if (n < 0)
		return -1;
	for (int i = 0; i < cc.n; i++) {
		st = stmt(s, Q_OUTBOX_MARK);
		sqlite3_bind_int64(st, 1, cc.ids[i]);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return cc.n;
}

static int sq_outbox_update(struct store *s, const struct outbox_update *u)
{
	sqlite3_stmt *st = stmt(s, Q_OUTBOX_UPDATE);
	sqlite3_bind_int64(st, 1, u->id);
	sqlite3_bind_text(st, 2, u->state, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, u->attempts);
	sqlite3_bind_int64(st, 4, u->next_ms);
	sqlite3_bind_int(st, 5, u->last_status);
	sqlite3_bind_text(st, 6, u->last_error, -1, SQLITE_STATIC);
	if (u->last_body)
		sqlite3_bind_blob64(st, 7, u->last_body, u->last_body_len, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, u->notify);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	return sqlite3_changes(DB(s)) == 0;
}

static int sq_outbox_next_due(struct store *s, int64_t *due_ms)
{
	sqlite3_stmt *st = stmt(s, Q_OUTBOX_NEXT);
	int rc = sqlite3_step(st), found = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*due_ms = sqlite3_column_int64(st, 0);
		found = 1;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}

static int sq_outbox_requeue_inflight(struct store *s)
{
	return exec1(s, Q_OUTBOX_REQUEUE);
}

static int sq_outbox_notify_due(struct store *s, int64_t after_id, int limit, outbox_cb cb,
				void *ctx)
{
	sqlite3_stmt *st = stmt(s, Q_OUTBOX_NOTIFY);
	sqlite3_bind_int(st, 1, limit);
	sqlite3_bind_int64(st, 2, after_id);
	return each_row(st, cb, ctx);
}

static int sq_outbox_list(struct store *s, const char *state, int64_t after_id, int limit,
			  outbox_cb cb, void *ctx)
{
	sqlite3_stmt *st = stmt(s, state ? Q_OUTBOX_LIST_STATE : Q_OUTBOX_LIST);
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int(st, 2, limit);
	if (state)
		sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	return each_row(st, cb, ctx);
}

static int sq_outbox_get(struct store *s, int64_t id, outbox_cb cb, void *ctx)
{
	sqlite3_stmt *st = stmt(s, Q_OUTBOX_GET);
	sqlite3_bind_int64(st, 1, id);
	return each_row(st, cb, ctx);
}

static int sq_outbox_counts(struct store *s, int64_t counts[4])
{
	static const char *const names[] = {"pending", "inflight", "done", "dead"};
	memset(counts, 0, 4 * sizeof *counts);
	sqlite3_stmt *st = stmt(s, Q_OUTBOX_COUNTS);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 0);
		for (int i = 0; i < 4; i++)
			if (state && !strcmp(state, names[i]))
				counts[i] = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int change1(struct store *s, int which, int64_t id, int64_t arg)
{
	sqlite3_stmt *st = stmt(s, which);
	sqlite3_bind_int64(st, 1, id);
	if (which == Q_OUTBOX_RETRY)
		sqlite3_bind_int64(st, 2, arg);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	return sqlite3_changes(DB(s)) > 0 ? 1 : 0;
}

static int sq_outbox_notified(struct store *s, int64_t id)
{
	return change1(s, Q_OUTBOX_NOTIFIED, id, 0) < 0 ? -1 : 0;
}

static int sq_outbox_retry(struct store *s, int64_t id, int64_t now_ms)
{
	return change1(s, Q_OUTBOX_RETRY, id, now_ms);
}

static int sq_outbox_cancel(struct store *s, int64_t id)
{
	return change1(s, Q_OUTBOX_CANCEL, id, 0);
}

/* The version in meta; 0 for an empty file, -1 when it cannot be read. */
static int sq_schema_version(struct store *s)
{
	sqlite3_stmt *st;
	int v = -1;
	if (sqlite3_prepare_v2(DB(s), "SELECT count(*) FROM sqlite_master WHERE name = 'meta'", -1,
			       &st, NULL) != SQLITE_OK)
		return -1;
	int has = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (has <= 0)
		return has;
	if (sqlite3_prepare_v2(DB(s), "SELECT v FROM meta WHERE k = 'schema'", -1, &st, NULL) ==
	    SQLITE_OK) {
		int rc = sqlite3_step(st);
		v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : rc == SQLITE_DONE ? 0 : -1;
		sqlite3_finalize(st);
	}
	return v;
}

static int sq_migrate(struct store *s, int target, void (*say)(void *ctx, int version),
		      void *ctx, char *err, size_t errlen)
{
	int from = sq_schema_version(s), n = 0;
	if (from < 0) {
		snprintf(err, errlen, "cannot read the schema version: %s", sqlite3_errmsg(DB(s)));
		return -1;
	}
	if (target > STORE_SCHEMA_VERSION)
		target = STORE_SCHEMA_VERSION;
	for (int v = from + 1; v >= 1 && v <= target; v++, n++) {
		char *msg = NULL, set[96];
		snprintf(set, sizeof set, "INSERT OR REPLACE INTO meta(k, v) VALUES('schema', '%d');", v);
		if (sqlite3_exec(DB(s),
				 "BEGIN IMMEDIATE;"
				 "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);",
				 NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(DB(s), steps[v], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(DB(s), set, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(DB(s), "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errlen, "schema %d (%s): %s", v, store_migration_what(v),
				 msg ? msg : sqlite3_errmsg(DB(s)));
			sqlite3_free(msg);
			if (!sqlite3_get_autocommit(DB(s)))
				sqlite3_exec(DB(s), "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		if (say)
			say(ctx, v);
	}
	return n;
}

static int sq_probe(struct store *s)
{
	if (sq_begin(s))
		return -1;
	if (exec1(s, Q_PROBE)) {
		sq_rollback(s);
		return -1;
	}
	return sq_commit(s);
}

static const char *sq_errmsg(struct store *s)
{
	if (((struct sqlite_store *)s)->refusal)
		return ((struct sqlite_store *)s)->refusal;
	return sqlite3_errmsg(DB(s));
}

static const struct store_ops sqlite_ops = {
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.savepoint = sq_savepoint,
	.release = sq_release,
	.rollback_to = sq_rollback_to,
	.journal_add = sq_journal_add,
	.journal_find = sq_journal_find,
	.journal_range = sq_journal_range,
	.kv_put = sq_kv_put,
	.kv_get = sq_kv_get,
	.kv_del = sq_kv_del,
	.timer_count = sq_timer_count,
	.timer_next = sq_timer_next,
	.timers_due = sq_timers_due,
	.audit_append = sq_audit_append,
	.audit_list = sq_audit_list,
	.audit_verify = sq_audit_verify,
	.outbox_add = sq_outbox_add,
	.outbox_claim = sq_outbox_claim,
	.outbox_update = sq_outbox_update,
	.outbox_next_due = sq_outbox_next_due,
	.outbox_requeue_inflight = sq_outbox_requeue_inflight,
	.outbox_notify_due = sq_outbox_notify_due,
	.outbox_list = sq_outbox_list,
	.outbox_get = sq_outbox_get,
	.outbox_counts = sq_outbox_counts,
	.outbox_notified = sq_outbox_notified,
	.outbox_retry = sq_outbox_retry,
	.outbox_cancel = sq_outbox_cancel,
	.schema_version = sq_schema_version,
	.migrate = sq_migrate,
	.probe = sq_probe,
	.errmsg = sq_errmsg,
};

/* One serving process per file: two dispatchers would each think they own
 * the timers and the audit head. */
static int take_lock(const char *path, char *err, size_t errlen)
{
	char lock[4096];
	snprintf(lock, sizeof lock, "%s.lock", path);
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", lock, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "%s is in use by another aftercall serve process", path);
		close(fd);
		return -1;
	}
	return fd;
}

struct store *store_sqlite_open(const char *path, int sync_full, int flags, char *err,
				size_t errlen)
{
	struct sqlite_store *ss = calloc(1, sizeof *ss);
	if (!ss) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ss->base.ops = &sqlite_ops;
	ss->lock_fd = -1;
	if ((flags & STORE_EXISTING) && access(path, F_OK) != 0) {
		snprintf(err, errlen, "%s: %s (%s)", path, strerror(errno), STORE_MADE_BY);
		free(ss);
		return NULL;
	}
	if ((flags & STORE_SERVE) && (ss->lock_fd = take_lock(path, err, errlen)) < 0) {
		free(ss);
		return NULL;
	}
	int rc = sqlite3_open_v2(path, &ss->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
					 (flags & STORE_EXISTING ? 0 : SQLITE_OPEN_CREATE),
				 NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 ss->db ? sqlite3_errmsg(ss->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(ss->db, 5000);
	int ver = sq_schema_version(&ss->base);
	if (ver < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(ss->db));
		goto fail;
	}
	if (ver > STORE_SCHEMA_VERSION || (ver > 0 && ver < STORE_SCHEMA_VERSION &&
					   !(flags & STORE_MIGRATE))) {
		store_version_error(path, ver, err, errlen);
		goto fail;
	}
	/* Before the pragmas: setting WAL mode writes the file's header. */
	if (ver == 0 && (flags & STORE_EXISTING)) {
		if (flags & STORE_MIGRATE) /* migrate --status: schema 0 */
			return &ss->base;
		snprintf(err, errlen, "%s: no aftercall store in this file (%s)", path,
			 STORE_MADE_BY);
		goto fail;
	}
	char pragmas[256];
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;",
		 sync_full ? "FULL" : "NORMAL");
	char *msg = NULL;
	if (sqlite3_exec(ss->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "cannot set up %s: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		goto fail;
	}
	if (flags & STORE_MIGRATE)
		return &ss->base;
	if (ver == 0 &&
	    sq_migrate(&ss->base, STORE_SCHEMA_VERSION, NULL, NULL, err, errlen) < 0)
		goto fail;
	/* Without a second connection the writer checkpoints as SQLite would. */
	if (flags & STORE_SERVE)
		ss->ck = ckpt_new(ss->db, path, sync_full);
	for (int i = 0; i < Q_COUNT; i++) {
		if (sqlite3_prepare_v3(ss->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ss->q[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "cannot prepare statement: %s", sqlite3_errmsg(ss->db));
			goto fail;
		}
	}
	return &ss->base;
fail:
	sq_close(&ss->base);
	return NULL;
}
