/*
 * The PostgreSQL backend of the store, for several hosts sharing one
 * database.
 *
 * What makes sharing safe, operation by operation:
 * - journal: a unique (route, dedupe) key. A second host inserting the same
 *   event waits for the first one's transaction and then finds it there.
 * - key-value pairs: each read, write or delete first takes a transaction
 *   advisory lock on the key, so two hosts handling events of one session
 *   take turns, and the second reads what the first committed.
 * - timers and outbox rows: claimed with FOR UPDATE SKIP LOCKED, so a due
 *   row goes to exactly one host. A claimed outbox row carries a lease in
 *   next_ms, its host's token and the server pid of its host's connection.
 *   When that connection is gone (the host died), any host claims the row
 *   again at once; otherwise when the lease ends. The request carries its
 *   idempotency key, so the receiver sees one, and a result is recorded only
 *   by the host whose token the row carries.
 * - the audit chain: records are kept in memory until commit, then
 *   appended under one advisory lock, so the chain stays a single chain
 *   and the lock is held only for the length of a commit.
 *
 * store.sync: normal maps to synchronous_commit = off for this session.
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "clock.h"
#include "libpq.h"
#include "random.h"
#include "store.h"

/* Advisory lock keys, as SQL arguments: the two-int space, which does not
 * overlap the bigint space the key-value locks use. 1633904756 is "aftc". */
#define LOCK_AUDIT "1633904756, 1"
#define LOCK_MIGRATE "1633904756, 2"

/* The timer queries' filter on namespaces (store.h): a JSON array of names,
 * or NULL for all. */
#define NS_IN(param)                                                                       \
	" AND (" param "::json IS NULL OR ns IN (SELECT json_array_elements_text(" param   \
	"::json)))"

static const char *const steps[STORE_SCHEMA_VERSION + 1] = {
	[1] = "CREATE TABLE IF NOT EXISTS journal("
	      " seq bigserial PRIMARY KEY,"
	      " route text NOT NULL,"
	      " dedupe text NOT NULL,"
	      " type text NOT NULL,"
	      " body bytea NOT NULL,"
	      " received_ms bigint NOT NULL,"
	      " request_id text,"
	      " UNIQUE(route, dedupe));"
	      "CREATE TABLE IF NOT EXISTS kv("
	      " ns text NOT NULL,"
	      " key text NOT NULL,"
	      " value bytea NOT NULL,"
	      " due_ms bigint NOT NULL DEFAULT 0,"
	      " PRIMARY KEY(ns, key));"
	      "CREATE INDEX IF NOT EXISTS kv_due ON kv(due_ms) WHERE due_ms > 0;"
	      "CREATE TABLE IF NOT EXISTS audit("
	      " seq bigint PRIMARY KEY,"
	      " ts_ms bigint NOT NULL,"
	      " actor text NOT NULL,"
	      " kind text NOT NULL,"
	      " subject text,"
	      " request_id text,"
	      " detail text,"
	      " prev text NOT NULL,"
	      " hash text NOT NULL);"
	      "CREATE TABLE IF NOT EXISTS outbox("
	      " id bigserial PRIMARY KEY,"
	      " plugin text NOT NULL,"
	      " tag text,"
	      " method text NOT NULL,"
	      " url text NOT NULL,"
	      " headers text NOT NULL,"
	      " body bytea NOT NULL,"
	      " idem_key text NOT NULL,"
	      " state text NOT NULL,"
	      " attempts integer NOT NULL DEFAULT 0,"
	      " max_attempts integer NOT NULL,"
	      " max_age_ms bigint NOT NULL,"
	      " created_ms bigint NOT NULL,"
	      " next_ms bigint NOT NULL,"
	      " last_status integer NOT NULL DEFAULT 0,"
	      " last_error text,"
	      " last_body bytea,"
	      " notify integer NOT NULL DEFAULT 0,"
	      " UNIQUE(plugin, idem_key));"
	      "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_ms)"
	      " WHERE state IN ('pending', 'inflight');"
	      "CREATE INDEX IF NOT EXISTS outbox_notify ON outbox(id) WHERE notify = 1;"
	      "CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state, id);",
	[2] = "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS request_id text;"
	      "ALTER TABLE kv ADD COLUMN IF NOT EXISTS request_id text;",
	[3] = "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claim_token bigint,"
	      " ADD COLUMN IF NOT EXISTS claim_pid integer;",
};

#define OUTBOX_COLS                                                                                \
	"id, plugin, tag, method, url, headers, body, idem_key, state, attempts,"                  \
	" max_attempts, max_age_ms, created_ms, next_ms, last_status, last_error, last_body,"      \
	" notify, request_id"

enum {
	Q_JOURNAL_ADD,
	Q_JOURNAL_FIND,
	Q_JOURNAL_RANGE,
	Q_JOURNAL_FORGET,
	Q_KV_LOCK,
	Q_KV_TRYLOCK,
	Q_KV_PUT,
	Q_KV_GET,
	Q_KV_DEL,
	Q_TIMER_COUNT,
	Q_TIMER_NEXT,
	Q_TIMERS_DUE,
	Q_AUDIT_LOCK,
	Q_AUDIT_HEAD,
	Q_AUDIT_ADD,
	Q_AUDIT_LIST,
	Q_AUDIT_ALL,
	Q_PROBE,
	Q_OUTBOX_ADD,
	Q_OUTBOX_CLAIM,
	Q_OUTBOX_UPDATE,
	Q_OUTBOX_NEXT,
	Q_OUTBOX_ORPHANS,
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

#define KEY_HASH "hashtextextended($1 || chr(1) || $2, 0)"

static const char *const sql[Q_COUNT] = {
	[Q_JOURNAL_ADD] = "INSERT INTO journal(route, dedupe, type, body, received_ms, request_id)"
			  " VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
	[Q_JOURNAL_FIND] = "SELECT seq, dedupe, route, type, body, received_ms FROM journal"
			   " WHERE dedupe = $1 ORDER BY seq",
	[Q_JOURNAL_RANGE] = "SELECT seq, dedupe, route, type, body, received_ms FROM journal"
			    " WHERE seq > $1 AND received_ms >= $2 AND received_ms < $3"
			    " ORDER BY seq LIMIT $4",
	[Q_JOURNAL_FORGET] = "DELETE FROM journal WHERE route = $1 AND dedupe = $2",
	[Q_KV_LOCK] = "SELECT pg_advisory_xact_lock(" KEY_HASH ")",
	[Q_KV_TRYLOCK] = "SELECT pg_try_advisory_xact_lock(" KEY_HASH ")",
	[Q_KV_PUT] = "INSERT INTO kv(ns, key, value, due_ms, request_id) VALUES($1, $2, $3, $4, $5)"
		     " ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value,"
		     " due_ms = excluded.due_ms, request_id = excluded.request_id",
	[Q_KV_GET] = "SELECT value FROM kv WHERE ns = $1 AND key = $2",
	[Q_KV_DEL] = "DELETE FROM kv WHERE ns = $1 AND key = $2",
	[Q_TIMER_COUNT] = "SELECT count(*) FROM kv WHERE due_ms > 0" NS_IN("$1"),
	[Q_TIMER_NEXT] = "SELECT min(due_ms) FROM kv WHERE due_ms > 0" NS_IN("$1"),
	[Q_TIMERS_DUE] = "SELECT ns, key, value, due_ms, request_id FROM kv"
			 " WHERE due_ms > 0 AND due_ms <= $1" NS_IN("$3")
			 " ORDER BY due_ms LIMIT $2 FOR UPDATE SKIP LOCKED",
	[Q_AUDIT_LOCK] = "SELECT pg_advisory_xact_lock(" LOCK_AUDIT ")",
	[Q_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	[Q_AUDIT_ADD] = "INSERT INTO audit(seq, ts_ms, actor, kind, subject, request_id, detail,"
			" prev, hash) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)",
	/* Records of a room, and records of the same sessions that carry the
	 * room only in their detail, are matched alike. */
	[Q_AUDIT_LIST] = "SELECT seq, ts_ms, actor, kind, subject, request_id, detail FROM audit"
			 " WHERE ($1::text IS NULL OR subject = $1 OR detail::jsonb ->> 'room' = $1)"
			 " AND ($2::text IS NULL OR detail::jsonb ->> 'contact' = $2)"
			 " ORDER BY seq",
	[Q_AUDIT_ALL] = "SELECT seq, ts_ms, actor, kind, subject, request_id, detail, prev, hash"
			" FROM audit ORDER BY seq",
	/* A write: it fails on a read-only server. */
	[Q_PROBE] = "UPDATE meta SET v = v WHERE k = 'schema'",
	[Q_OUTBOX_ADD] = "INSERT INTO outbox(plugin, tag, method, url, headers, body, idem_key, state,"
			 " max_attempts, max_age_ms, created_ms, next_ms, request_id)"
			 " VALUES($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $10, $11)"
			 " ON CONFLICT DO NOTHING",
	[Q_OUTBOX_CLAIM] = "UPDATE outbox SET state = 'inflight', next_ms = $3, claim_token = $4,"
			   " claim_pid = pg_backend_pid() WHERE id IN"
			   " (SELECT id FROM outbox WHERE state IN ('pending', 'inflight')"
			   " AND next_ms <= $1 ORDER BY next_ms LIMIT $2 FOR UPDATE SKIP LOCKED)"
			   " RETURNING " OUTBOX_COLS,
	[Q_OUTBOX_UPDATE] = "UPDATE outbox SET state = $2, attempts = $3, next_ms = $4,"
			    " last_status = $5, last_error = $6, last_body = $7, notify = $8"
			    " WHERE id = $1 AND claim_token = $9 AND state = 'inflight'",
	[Q_OUTBOX_NEXT] = "SELECT min(next_ms) FROM outbox WHERE state IN ('pending', 'inflight')",
	/* Rows in flight on a connection the server no longer has: due now.
	 * Not this host's own (after a reconnect its deliveries go on), and
	 * not rows claimed before schema 3 (no pid: the lease decides). */
	[Q_OUTBOX_ORPHANS] = "UPDATE outbox SET next_ms = $1 WHERE id IN (SELECT id FROM outbox"
			     " WHERE state = 'inflight' AND next_ms > $1 AND claim_pid IS NOT NULL"
			     " AND claim_token <> $2 AND claim_pid NOT IN"
			     " (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)"
			     " FOR UPDATE SKIP LOCKED)",
	[Q_OUTBOX_NOTIFY] = "SELECT " OUTBOX_COLS " FROM outbox WHERE notify = 1 AND id > $2"
			    " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
	[Q_OUTBOX_LIST] = "SELECT " OUTBOX_COLS " FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
	[Q_OUTBOX_LIST_STATE] = "SELECT " OUTBOX_COLS " FROM outbox WHERE state = $3 AND id > $1"
				" ORDER BY id LIMIT $2",
	[Q_OUTBOX_GET] = "SELECT " OUTBOX_COLS " FROM outbox WHERE id = $1",
	[Q_OUTBOX_COUNTS] = "SELECT state, count(*) FROM outbox GROUP BY state",
	[Q_OUTBOX_NOTIFIED] = "UPDATE outbox SET notify = 0 WHERE id = $1",
	[Q_OUTBOX_RETRY] = "UPDATE outbox SET state = 'pending', attempts = 0, next_ms = $2,"
			   " created_ms = $2, notify = 0 WHERE id = $1 AND state = 'dead'",
	[Q_OUTBOX_CANCEL] = "UPDATE outbox SET state = 'dead', last_error = 'cancelled by operator',"
			    " notify = 1 WHERE id = $1 AND state = 'pending'",
};

#define MAX_SAVEPOINTS 8

struct pg_store {
	struct store base;
	PGconn *conn;
	char *url;
	int sync_full;
	int prepared;
	int reconnect; /* an error a new connection may cure was seen */
	int in_txn;
	int64_t token; /* this host's, on the rows it claims */
	int64_t orphans_ms; /* when outbox_next_due last looked for orphans */
	struct audit_rec *held; /* held until commit, their strings owned */
	size_t nheld, capheld;
	size_t marks[MAX_SAVEPOINTS];
	int depth;
	/* Commands whose answer nothing waits for (SAVEPOINT, RELEASE,
	 * ROLLBACK TO) wait here and go out with the next statement, in one
	 * round trip: an event costs one instead of three. */
	const char *deferred[2 * MAX_SAVEPOINTS + 4];
	int ndeferred;
	int aborted; /* a statement failed since the last savepoint was undone */
	int broken;  /* a deferred command failed: this transaction cannot commit */
	char sql[1024]; /* those commands (at most 20 of 16 bytes), then one more */
	char err[512];
};

#define PS(s) ((struct pg_store *)(s))

/* ---- parameters and results ---------------------------------------------- */

struct params {
	int n;
	const char *v[12];
	int len[12];
	int fmt[12];
	char num[12][24];
};

static void p_text(struct params *p, const char *s)
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void p_int(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, v);
	p_text(p, p->num[p->n]);
}

static void p_bin(struct params *p, const void *data, size_t len)
{
	p->v[p->n] = data ? data : "";
	p->len[p->n] = (int)len;
	p->fmt[p->n++] = 1;
}

/* Errors that a new connection may cure: the connection itself (08, or
 * none at all), the server shutting down or failing over (57), a server
 * that is read-only now (25006, as a primary turned standby is). */
static int cured_by_reconnect(const char *state)
{
	return !state || !strncmp(state, "08", 2) || !strncmp(state, "57", 2) ||
	       !strcmp(state, "25006");
}

static void set_err(struct pg_store *ps, const PGresult *r)
{
	if (cured_by_reconnect(r ? libpq.resultErrorField(r, PG_DIAG_SQLSTATE) : NULL))
		ps->reconnect = 1;
	const char *m = r ? libpq.resultErrorMessage(r) : "";
	if (!m || !*m)
		m = libpq.errorMessage(ps->conn);
	snprintf(ps->err, sizeof ps->err, "%s", m && *m ? m : "PostgreSQL error");
	size_t n = strlen(ps->err);
	while (n && (ps->err[n - 1] == '\n' || ps->err[n - 1] == ' '))
		ps->err[--n] = '\0';
}

/* A statement failed: so, for PostgreSQL, did the transaction, until the
 * savepoint is rolled back to. One a failed deferred command kept from
 * running keeps that command's message. */
static void failed(struct pg_store *ps, const PGresult *r)
{
	if (!ps->broken || libpq.resultStatus(r) != PGRES_PIPELINE_ABORTED)
		set_err(ps, r);
	if (ps->in_txn)
		ps->aborted = 1;
}

static void defer(struct pg_store *ps, const char *cmd);

/* Once the connection failed, or was left in a state this cannot tell,
 * nothing more is sent in the transaction (a new connection would run it
 * outside one): it fails, keeping the first error, and the next begin
 * makes a new connection, whose server has rolled the old one back. */
static int gone(struct pg_store *ps)
{
	if (!ps->in_txn || !ps->reconnect)
		return 0;
	ps->aborted = 1;
	return 1;
}

/* The results of one statement of a pipeline, up to the NULL that ends
 * them: the last one, or NULL when the connection failed. */
static PGresult *take(PGconn *c)
{
	PGresult *last = NULL, *r;
	while ((r = libpq.getResult(c))) {
		libpq.clear(last);
		last = r;
		if (libpq.resultStatus(r) == PGRES_PIPELINE_SYNC)
			break;
	}
	return last;
}

/* Ends a pipeline whose statements' results were taken: its sync, then
 * out of pipeline mode. -1 (the transaction broken, the connection to be
 * made again) if the connection is not where that leaves it. */
static int pipe_close(struct pg_store *ps)
{
	PGresult *sync = libpq.getResult(ps->conn);
	int ok = libpq.resultStatus(sync) == PGRES_PIPELINE_SYNC && libpq.exitPipelineMode(ps->conn);
	libpq.clear(sync);
	if (!ok) {
		if (!ps->broken)
			set_err(ps, NULL);
		ps->broken = ps->reconnect = 1;
	}
	return ok ? 0 : -1;
}

/* Opens a pipeline with the deferred commands at its head: how many, or
 * -1 if sending failed. */
static int pipe_open(struct pg_store *ps)
{
	int n = ps->ndeferred, ok = libpq.enterPipelineMode(ps->conn);
	ps->ndeferred = 0;
	for (int i = 0; ok && i < n; i++)
		ok = libpq.sendQueryParams(ps->conn, ps->deferred[i], 0, NULL, NULL, NULL, NULL, 0);
	return ok ? n : -1;
}

/* Sending into a pipeline failed: the connection is in a state this cannot
 * tell, so the transaction is over and the connection is made again. */
static void pipe_lost(struct pg_store *ps)
{
	set_err(ps, NULL);
	ps->aborted = ps->broken = ps->reconnect = 1;
}

/* The results of the n deferred commands at a pipeline's head: one that
 * failed breaks the transaction (what follows it is not run). */
static void take_deferred(struct pg_store *ps, int n)
{
	for (int i = 0; i < n; i++) {
		PGresult *r = take(ps->conn);
		if (libpq.resultStatus(r) != PGRES_COMMAND_OK && !ps->broken) {
			set_err(ps, r);
			ps->broken = 1;
		}
		libpq.clear(r);
	}
}

/* The deferred commands, then prepared statement `name`, as one pipeline:
 * one round trip. Its result, whatever its status, or NULL. */
static PGresult *run_piped(struct pg_store *ps, const char *name, const struct params *p)
{
	int n = pipe_open(ps);
	if (n < 0 ||
	    !libpq.sendQueryPrepared(ps->conn, name, p ? p->n : 0, p ? p->v : NULL,
				     p ? p->len : NULL, p ? p->fmt : NULL, 0) ||
	    !libpq.pipelineSync(ps->conn)) {
		pipe_lost(ps);
		return NULL;
	}
	take_deferred(ps, n);
	PGresult *r = take(ps->conn);
	pipe_close(ps);
	return r;
}

/* Runs prepared statement `which`; NULL (and err set) unless it succeeded. */
static PGresult *run(struct pg_store *ps, int which, const struct params *p)
{
	char name[8];
	snprintf(name, sizeof name, "q%d", which);
	if (gone(ps))
		return NULL;
	PGresult *r = ps->ndeferred ? run_piped(ps, name, p)
				: libpq.execPrepared(ps->conn, name, p ? p->n : 0, p ? p->v : NULL,
						     p ? p->len : NULL, p ? p->fmt : NULL, 0);
	ExecStatusType st = libpq.resultStatus(r);
	if (r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK))
		return r;
	failed(ps, r);
	libpq.clear(r);
	return NULL;
}

/* Runs a statement for its effect: 0, or -1. */
static int run0(struct pg_store *ps, int which, const struct params *p)
{
	PGresult *r = run(ps, which, p);
	libpq.clear(r);
	return r ? 0 : -1;
}

/* Rows changed: >= 0, or -1. */
static int run_changes(struct pg_store *ps, int which, const struct params *p)
{
	PGresult *r = run(ps, which, p);
	if (!r)
		return -1;
	int n = (int)strtol(libpq.cmdTuples(r), NULL, 10);
	libpq.clear(r);
	return n;
}

/* Runs q after the deferred commands, as one simple query: the result is
 * the last command's, or the first error. */
static PGresult *exec_after(struct pg_store *ps, const char *q)
{
	if (!ps->ndeferred)
		return libpq.exec(ps->conn, q);
	char *buf = ps->sql;
	size_t len = 0, qlen = strlen(q);
	for (int i = 0; i < ps->ndeferred; i++)
		len += (size_t)snprintf(buf + len, sizeof ps->sql - len, "%s; ", ps->deferred[i]);
	if (qlen >= sizeof ps->sql - len) {
		PGresult *r = exec_after(ps, "SELECT 1");
		if (libpq.resultStatus(r) != PGRES_TUPLES_OK)
			return r;
		libpq.clear(r);
		return libpq.exec(ps->conn, q);
	}
	memcpy(buf + len, q, qlen + 1);
	ps->ndeferred = 0;
	return libpq.exec(ps->conn, buf);
}

static int exec_simple(struct pg_store *ps, const char *q)
{
	if (gone(ps))
		return -1;
	int deferred = ps->ndeferred > 0;
	PGresult *r = exec_after(ps, q);
	int ok = libpq.resultStatus(r) == PGRES_COMMAND_OK || libpq.resultStatus(r) == PGRES_TUPLES_OK;
	if (!ok) {
		failed(ps, r);
		ps->broken |= deferred;
	}
	libpq.clear(r);
	return ok ? 0 : -1;
}

static const char SAVEPOINT[] = "SAVEPOINT ev", RELEASE[] = "RELEASE ev",
		  ROLLBACK_TO[] = "ROLLBACK TO ev";

/* Defers cmd to the next statement; with the list full, sends it all now. */
static void defer(struct pg_store *ps, const char *cmd)
{
	if (ps->ndeferred == (int)(sizeof ps->deferred / sizeof *ps->deferred))
		exec_simple(ps, "SELECT 1");
	ps->deferred[ps->ndeferred++] = cmd;
}

static const char *val(const PGresult *r, int row, int col)
{
	return libpq.getisnull(r, row, col) ? NULL : libpq.getvalue(r, row, col);
}

static int64_t num(const PGresult *r, int row, int col)
{
	return libpq.getisnull(r, row, col) ? 0 : strtoll(libpq.getvalue(r, row, col), NULL, 10);
}

/* A bytea column, decoded into malloc'd memory with a NUL after it. */
static char *bytes(const PGresult *r, int row, int col, size_t *len)
{
	*len = 0;
	if (libpq.getisnull(r, row, col))
		return NULL;
	size_t n = 0;
	unsigned char *raw = libpq.unescapeBytea((const unsigned char *)libpq.getvalue(r, row, col), &n);
	if (!raw)
		return NULL;
	char *out = malloc(n + 1);
	if (out) {
		memcpy(out, raw, n);
		out[n] = '\0';
		*len = n;
	}
	libpq.freemem(raw);
	return out;
}

/* ---- connection ------------------------------------------------------------ */

static int prepare_all(struct pg_store *ps)
{
	for (int i = 0; i < Q_COUNT; i++) {
		char name[8];
		snprintf(name, sizeof name, "q%d", i);
		PGresult *r = libpq.prepare(ps->conn, name, sql[i], 0, NULL);
		if (libpq.resultStatus(r) != PGRES_COMMAND_OK) {
			set_err(ps, r);
			libpq.clear(r);
			return -1;
		}
		libpq.clear(r);
	}
	ps->prepared = 1;
	return 0;
}

static int session_setup(struct pg_store *ps)
{
	char q[160];
	snprintf(q, sizeof q,
		 "SET application_name = 'aftercall'; SET synchronous_commit = %s;"
		 " SET lock_timeout = '30s'; SET client_min_messages = warning",
		 ps->sync_full ? "on" : "off");
	return exec_simple(ps, q);
}

/* Before a transaction: a connection that was lost, or whose server
 * turned read-only, is made again (after a failover, to the new primary). */
static int ensure_conn(struct pg_store *ps)
{
	if (libpq.status(ps->conn) == CONNECTION_OK && !ps->reconnect)
		return 0;
	ps->reconnect = 0;
	libpq.reset(ps->conn);
	if (libpq.status(ps->conn) != CONNECTION_OK) {
		set_err(ps, NULL);
		return -1;
	}
	if (session_setup(ps) || (ps->prepared && prepare_all(ps))) {
		ps->reconnect = 1;
		return -1;
	}
	return 0;
}

/* ---- transactions ---------------------------------------------------------- */

static void held_free(struct pg_store *ps, size_t from)
{
	for (size_t i = from; i < ps->nheld; i++) {
		struct audit_rec *r = &ps->held[i];
		free((char *)r->actor);
		free((char *)r->kind);
		free((char *)r->subject);
		free((char *)r->request_id);
		free((char *)r->detail);
	}
	ps->nheld = from;
}

static void pg_close(struct store *s)
{
	struct pg_store *ps = PS(s);
	held_free(ps, 0);
	free(ps->held);
	libpq.finish(ps->conn);
	free(ps->url);
	free(ps);
}

static int pg_begin(struct store *s)
{
	struct pg_store *ps = PS(s);
	/* Read committed, whatever the server's default: each statement sees
	 * what other hosts committed before it, which the key locks and the
	 * audit head rely on. */
	ps->ndeferred = ps->aborted = ps->broken = 0;
	if (ensure_conn(ps) || exec_simple(ps, "BEGIN ISOLATION LEVEL READ COMMITTED"))
		return -1;
	held_free(ps, 0);
	ps->depth = 0;
	ps->in_txn = 1;
	return 0;
}

/* Appends the held records at the head of the chain: the lock makes the
 * read of the head and the inserts one step for all hosts. */
static int flush_audit(struct pg_store *ps)
{
	if (!ps->nheld)
		return 0;
	if (run0(ps, Q_AUDIT_LOCK, NULL))
		return -1;
	PGresult *h = run(ps, Q_AUDIT_HEAD, NULL);
	if (!h)
		return -1;
	unsigned char prev[SHA256_LEN] = {0}, hash[SHA256_LEN];
	int64_t seq = 1;
	if (libpq.ntuples(h) == 1) {
		seq = num(h, 0, 0) + 1;
		const char *hx = val(h, 0, 1);
		if (!hx || hex_decode(hx, strlen(hx), prev) != SHA256_LEN) {
			snprintf(ps->err, sizeof ps->err, "audit record %lld has a bad hash",
				 (long long)seq - 1);
			libpq.clear(h);
			return -1;
		}
	}
	libpq.clear(h);
	for (size_t i = 0; i < ps->nheld; i++, seq++) {
		const struct audit_rec *r = &ps->held[i];
		char prev_hex[2 * SHA256_LEN + 1], hash_hex[2 * SHA256_LEN + 1];
		audit_hash(prev, seq, r, hash);
		hex_encode(prev, SHA256_LEN, prev_hex);
		hex_encode(hash, SHA256_LEN, hash_hex);
		struct params p = {0};
		p_int(&p, seq);
		p_int(&p, r->ts_ms);
		p_text(&p, r->actor);
		p_text(&p, r->kind);
		p_text(&p, r->subject);
		p_text(&p, r->request_id);
		p_text(&p, r->detail);
		p_text(&p, prev_hex);
		p_text(&p, hash_hex);
		if (run0(ps, Q_AUDIT_ADD, &p))
			return -1;
		memcpy(prev, hash, SHA256_LEN);
	}
	held_free(ps, 0);
	return 0;
}

static void pg_rollback(struct store *s)
{
	struct pg_store *ps = PS(s);
	held_free(ps, 0);
	ps->in_txn = ps->ndeferred = ps->aborted = ps->broken = 0;
	if (!ps->reconnect && libpq.transactionStatus(ps->conn) != PQTRANS_IDLE)
		exec_simple(ps, "ROLLBACK");
}

static int pg_commit(struct store *s)
{
	struct pg_store *ps = PS(s);
	if (ps->broken || gone(ps) || flush_audit(ps)) {
		pg_rollback(s);
		return -1;
	}
	PGresult *r = exec_after(ps, "COMMIT");
	/* COMMIT of a transaction that failed earlier answers ROLLBACK. */
	int ok = libpq.resultStatus(r) == PGRES_COMMAND_OK && !strcmp(libpq.cmdStatus(r), "COMMIT");
	if (!ok) {
		if (libpq.resultStatus(r) != PGRES_COMMAND_OK)
			set_err(ps, r);
		else
			snprintf(ps->err, sizeof ps->err, "the transaction failed and was rolled back");
	}
	libpq.clear(r);
	ps->in_txn = ps->aborted = 0;
	held_free(ps, 0);
	if (!ok && libpq.transactionStatus(ps->conn) != PQTRANS_IDLE)
		exec_simple(ps, "ROLLBACK");
	return ok ? 0 : -1;
}

/* Savepoints are deferred to the next statement (defer), and one that no
 * statement followed is never sent. After an error only a rollback to the
 * savepoint is possible, as in PostgreSQL, which would refuse the rest. */
static int pg_savepoint(struct store *s)
{
	struct pg_store *ps = PS(s);
	if (ps->depth >= MAX_SAVEPOINTS) {
		snprintf(ps->err, sizeof ps->err, "savepoints nested deeper than %d", MAX_SAVEPOINTS);
		return -1;
	}
	if (ps->aborted) /* ps->err says why */
		return -1;
	defer(ps, SAVEPOINT);
	ps->marks[ps->depth++] = ps->nheld;
	return 0;
}

static int unsent_savepoint(struct pg_store *ps)
{
	if (!ps->ndeferred || ps->deferred[ps->ndeferred - 1] != SAVEPOINT)
		return 0;
	ps->ndeferred--;
	return 1;
}

static int pg_release(struct store *s)
{
	struct pg_store *ps = PS(s);
	if (ps->aborted)
		return -1;
	if (!unsent_savepoint(ps))
		defer(ps, RELEASE);
	if (ps->depth)
		ps->depth--;
	return 0;
}

static void pg_rollback_to(struct store *s)
{
	struct pg_store *ps = PS(s);
	if (!unsent_savepoint(ps)) {
		defer(ps, ROLLBACK_TO);
		defer(ps, RELEASE);
	}
	ps->aborted = 0;
	if (ps->depth)
		held_free(ps, ps->marks[--ps->depth]);
}

/* ---- journal ----------------------------------------------------------------- */

static void journal_params(struct params *p, const struct journal_in *in)
{
	p_text(p, in->route);
	p_text(p, in->dedupe);
	p_text(p, in->type);
	p_bin(p, in->body, in->len);
	p_int(p, in->received_ms);
	p_text(p, in->request_id);
}

static int pg_journal_add(struct store *s, const char *dedupe, const char *route, const char *type,
			  const char *body, size_t len, int64_t received_ms, const char *request_id)
{
	struct journal_in in = {.dedupe = dedupe, .route = route, .type = type, .body = body,
				.request_id = request_id, .len = len, .received_ms = received_ms};
	struct params p = {0};
	journal_params(&p, &in);
	int n = run_changes(PS(s), Q_JOURNAL_ADD, &p);
	return n < 0 ? -1 : n > 0;
}

/* The rows, up to 256 to a pipeline (one round trip each). */
static int pg_journal_add_all(struct store *s, struct journal_in *in, size_t n)
{
	struct pg_store *ps = PS(s);
	if (gone(ps))
		return -1;
	char name[8];
	snprintf(name, sizeof name, "q%d", Q_JOURNAL_ADD);
	for (size_t from = 0; from < n; from += 256) {
		size_t to = n - from > 256 ? from + 256 : n;
		int nd = pipe_open(ps), sent = nd >= 0;
		for (size_t i = from; sent && i < to; i++) {
			struct params p = {0};
			journal_params(&p, &in[i]);
			sent = libpq.sendQueryPrepared(ps->conn, name, p.n, p.v, p.len, p.fmt, 0);
		}
		if (!sent || !libpq.pipelineSync(ps->conn)) {
			pipe_lost(ps);
			return -1;
		}
		take_deferred(ps, nd);
		int bad = 0;
		for (size_t i = from; i < to; i++) {
			PGresult *r = take(ps->conn);
			if (libpq.resultStatus(r) == PGRES_COMMAND_OK)
				in[i].added = strtol(libpq.cmdTuples(r), NULL, 10) > 0;
			else if (!bad++)
				failed(ps, r);
			libpq.clear(r);
		}
		if (pipe_close(ps) || bad)
			return -1;
	}
	return 0;
}

static int pg_journal_forget(struct store *s, const char *route, const char *dedupe)
{
	struct params p = {0};
	p_text(&p, route);
	p_text(&p, dedupe);
	return run0(PS(s), Q_JOURNAL_FORGET, &p);
}

static int journal_rows(PGresult *r, int (*cb)(void *ctx, const struct journal_row *row),
			void *ctx)
{
	if (!r)
		return -1;
	int n = libpq.ntuples(r), i;
	for (i = 0; i < n; i++) {
		struct journal_row row = {
			.seq = num(r, i, 0),
			.dedupe = val(r, i, 1),
			.route = val(r, i, 2),
			.type = val(r, i, 3),
			.received_ms = num(r, i, 5),
		};
		char *body = bytes(r, i, 4, &row.len);
		row.body = body;
		int stop = cb && cb(ctx, &row);
		free(body);
		if (stop) {
			i++;
			break;
		}
	}
	libpq.clear(r);
	return i;
}

static int pg_journal_find(struct store *s, const char *dedupe,
			   int (*cb)(void *ctx, const struct journal_row *r), void *ctx)
{
	struct params p = {0};
	p_text(&p, dedupe);
	return journal_rows(run(PS(s), Q_JOURNAL_FIND, &p), cb, ctx);
}

static int pg_journal_range(struct store *s, int64_t from_ms, int64_t until_ms, int64_t after,
			    int limit, int (*cb)(void *ctx, const struct journal_row *r),
			    void *ctx)
{
	struct params p = {0};
	p_int(&p, after);
	p_int(&p, from_ms);
	p_int(&p, until_ms);
	p_int(&p, limit);
	return journal_rows(run(PS(s), Q_JOURNAL_RANGE, &p), cb, ctx);
}

/* ---- key-value pairs and timers ---------------------------------------------- */

static int kv_lock(struct pg_store *ps, const char *ns, const char *key)
{
	struct params p = {0};
	p_text(&p, ns);
	p_text(&p, key);
	return run0(ps, Q_KV_LOCK, &p);
}

static int pg_kv_put(struct store *s, const char *ns, const char *key, const void *v, size_t len,
		     int64_t due_ms, const char *request_id)
{
	struct pg_store *ps = PS(s);
	if (kv_lock(ps, ns, key))
		return -1;
	struct params p = {0};
	p_text(&p, ns);
	p_text(&p, key);
	p_bin(&p, v, len);
	p_int(&p, due_ms > 0 ? due_ms : 0);
	p_text(&p, due_ms > 0 ? request_id : NULL);
	return run0(ps, Q_KV_PUT, &p);
}

static int pg_kv_get(struct store *s, const char *ns, const char *key, char **v, size_t *len)
{
	struct pg_store *ps = PS(s);
	if (kv_lock(ps, ns, key))
		return -1;
	struct params p = {0};
	p_text(&p, ns);
	p_text(&p, key);
	PGresult *r = run(ps, Q_KV_GET, &p);
	if (!r)
		return -1;
	int found = 0;
	if (libpq.ntuples(r) == 1) {
		*v = bytes(r, 0, 0, len);
		found = *v ? 1 : -1;
	}
	libpq.clear(r);
	return found;
}

static int pg_kv_del(struct store *s, const char *ns, const char *key)
{
	struct pg_store *ps = PS(s);
	if (kv_lock(ps, ns, key))
		return -1;
	struct params p = {0};
	p_text(&p, ns);
	p_text(&p, key);
	return run0(ps, Q_KV_DEL, &p);
}

/* One number from a one-row query: 1 and *out, 0 when NULL, -1 error. */
static int one_num(struct pg_store *ps, int which, const struct params *p, int64_t *out)
{
	PGresult *r = run(ps, which, p);
	if (!r)
		return -1;
	int found = libpq.ntuples(r) == 1 && !libpq.getisnull(r, 0, 0);
	if (found)
		*out = num(r, 0, 0);
	libpq.clear(r);
	return found;
}

static long long pg_timer_count(struct store *s, const char *ns)
{
	struct params p = {0};
	p_text(&p, ns);
	int64_t n = 0;
	return one_num(PS(s), Q_TIMER_COUNT, &p, &n) < 0 ? -1 : (long long)n;
}

static int pg_timer_next(struct store *s, const char *ns, int64_t *due_ms)
{
	struct params p = {0};
	p_text(&p, ns);
	return one_num(PS(s), Q_TIMER_NEXT, &p, due_ms);
}

/* Due timers are claimed with their rows locked (SKIP LOCKED: another
 * host's claim is passed over) and, one by one, the key's advisory lock:
 * a key another host is reading or writing right now waits for next time. */
static int pg_timers_due(struct store *s, int64_t now_ms, int limit, const char *ns,
			 int (*cb)(void *ctx, const struct timer_row *t), void *ctx)
{
	struct pg_store *ps = PS(s);
	struct params p = {0};
	p_int(&p, now_ms);
	p_int(&p, limit);
	p_text(&p, ns);
	PGresult *r = run(ps, Q_TIMERS_DUE, &p);
	if (!r)
		return -1;
	int n = libpq.ntuples(r), ret = 0, given = 0;
	for (int i = 0; i < n && ret == 0; i++) {
		struct params k = {0};
		p_text(&k, val(r, i, 0));
		p_text(&k, val(r, i, 1));
		PGresult *l = run(ps, Q_KV_TRYLOCK, &k);
		if (!l) {
			ret = -1;
			break;
		}
		int got = libpq.ntuples(l) == 1 && !strcmp(libpq.getvalue(l, 0, 0), "t");
		libpq.clear(l);
		if (!got)
			continue;
		struct timer_row t = {
			.ns = val(r, i, 0),
			.key = val(r, i, 1),
			.due_ms = num(r, i, 3),
			.request_id = val(r, i, 4),
		};
		char *value = bytes(r, i, 2, &t.len);
		if (!value) {
			ret = -1;
			break;
		}
		t.value = value;
		given++;
		if (cb(ctx, &t) < 0)
			ret = -1;
		free(value);
	}
	libpq.clear(r);
	return ret < 0 ? -1 : given;
}

/* ---- audit ---------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Held until commit (see flush_audit); outside a transaction, appended at
 * once in one of its own. */
static int pg_audit_append(struct store *s, const struct audit_rec *r)
{
	struct pg_store *ps = PS(s);
	if (ps->nheld == ps->capheld) {
		size_t cap = ps->capheld ? 2 * ps->capheld : 16;
		struct audit_rec *h = realloc(ps->held, cap * sizeof *h);
		if (!h)
			return -1;
		ps->held = h;
		ps->capheld = cap;
	}
	struct audit_rec *c = &ps->held[ps->nheld];
	*c = (struct audit_rec){
		.ts_ms = r->ts_ms,
		.actor = dup_or_null(r->actor),
		.kind = dup_or_null(r->kind),
		.subject = dup_or_null(r->subject),
		.request_id = dup_or_null(r->request_id),
		.detail = dup_or_null(r->detail),
	};
	ps->nheld++;
	if (!c->actor || !c->kind) {
		held_free(ps, ps->nheld - 1);
		return -1;
	}
	if (ps->in_txn)
		return 0;
	if (ensure_conn(ps) || exec_simple(ps, "BEGIN ISOLATION LEVEL READ COMMITTED"))
		return -1;
	ps->in_txn = 1;
	return pg_commit(s);
}

/* Streams a query's rows one at a time (the chain can be long). */
static int each_streamed(struct pg_store *ps, int which, const struct params *p,
			 int (*row)(void *ctx, const PGresult *r), void *ctx)
{
	char name[8];
	snprintf(name, sizeof name, "q%d", which);
	if (gone(ps) || (ps->ndeferred && exec_simple(ps, "SELECT 1")))
		return -1;
	if (!libpq.sendQueryPrepared(ps->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
				 p ? p->fmt : NULL, 0)) {
		set_err(ps, NULL);
		return -1;
	}
	if (!libpq.setSingleRowMode(ps->conn)) {
		set_err(ps, NULL);
		PGresult *r;
		while ((r = libpq.getResult(ps->conn)))
			libpq.clear(r);
		return -1;
	}
	int n = 0, stop = 0, bad = 0;
	PGresult *r;
	while ((r = libpq.getResult(ps->conn))) {
		ExecStatusType st = libpq.resultStatus(r);
		if (st == PGRES_SINGLE_TUPLE && !stop) {
			n++;
			stop = row(ctx, r);
		} else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK) {
			set_err(ps, r);
			bad = 1;
		}
		libpq.clear(r);
	}
	return bad ? -1 : n;
}

static void rec_from(const PGresult *r, struct audit_rec *a)
{
	*a = (struct audit_rec){
		.ts_ms = num(r, 0, 1),
		.actor = val(r, 0, 2),
		.kind = val(r, 0, 3),
		.subject = val(r, 0, 4),
		.request_id = val(r, 0, 5),
		.detail = val(r, 0, 6),
	};
}

struct list_ctx {
	int (*cb)(void *ctx, int64_t seq, const struct audit_rec *r);
	void *ctx;
};

static int list_row(void *c, const PGresult *r)
{
	struct list_ctx *lc = c;
	struct audit_rec a;
	rec_from(r, &a);
	return lc->cb(lc->ctx, num(r, 0, 0), &a);
}

static int pg_audit_list(struct store *s, const char *subject, const char *contact,
			 int (*cb)(void *ctx, int64_t seq, const struct audit_rec *r), void *ctx)
{
	struct params p = {0};
	p_text(&p, subject);
	p_text(&p, contact);
	struct list_ctx lc = {cb, ctx};
	return each_streamed(PS(s), Q_AUDIT_LIST, &p, list_row, &lc);
}

struct verify_ctx {
	struct audit_walk *walk;
	char *err;
	size_t errlen;
	int bad;
};

static int verify_row(void *c, const PGresult *r)
{
	struct verify_ctx *v = c;
	struct audit_rec a;
	rec_from(r, &a);
	if (audit_walk_step(v->walk, num(r, 0, 0), &a, val(r, 0, 7), val(r, 0, 8), v->err,
			    v->errlen))
		v->bad = 1;
	return v->bad;
}

static int pg_audit_verify(struct store *s, struct audit_walk *w, char *err, size_t errlen)
{
	struct verify_ctx v = {.walk = w, .err = err, .errlen = errlen};
	int n = each_streamed(PS(s), Q_AUDIT_ALL, NULL, verify_row, &v);
	if (n < 0 && !v.bad)
		snprintf(err, errlen, "%s", PS(s)->err);
	return n < 0 || v.bad ? -1 : 0;
}

/* ---- outbox ---------------------------------------------------------------------- */

static int pg_outbox_add(struct store *s, const struct outbox_row *r)
{
	struct params p = {0};
	p_text(&p, r->plugin);
	p_text(&p, r->tag);
	p_text(&p, r->method);
	p_text(&p, r->url);
	p_text(&p, r->headers);
	p_bin(&p, r->body, r->body_len);
	p_text(&p, r->idem_key);
	p_int(&p, r->max_attempts);
	p_int(&p, r->max_age_ms);
	p_int(&p, r->created_ms);
	p_text(&p, r->request_id);
	int n = run_changes(PS(s), Q_OUTBOX_ADD, &p);
	return n < 0 ? -1 : n > 0;
}

/* Hands each row of r to cb; the two bytea columns are decoded for it. */
static int each_row(PGresult *r, outbox_cb cb, void *ctx)
{
	int n = libpq.ntuples(r), i;
	for (i = 0; i < n; i++) {
		struct outbox_row o = {
			.id = num(r, i, 0),
			.plugin = val(r, i, 1),
			.tag = val(r, i, 2),
			.method = val(r, i, 3),
			.url = val(r, i, 4),
			.headers = val(r, i, 5),
			.idem_key = val(r, i, 7),
			.state = val(r, i, 8),
			.attempts = (int)num(r, i, 9),
			.max_attempts = (int)num(r, i, 10),
			.max_age_ms = num(r, i, 11),
			.created_ms = num(r, i, 12),
			.next_ms = num(r, i, 13),
			.last_status = (int)num(r, i, 14),
			.last_error = val(r, i, 15),
			.notify = (int)num(r, i, 17),
			.request_id = val(r, i, 18),
		};
		char *body = bytes(r, i, 6, &o.body_len);
		char *last = bytes(r, i, 16, &o.last_body_len);
		o.body = body ? body : "";
		o.last_body = last;
		int stop = cb && cb(ctx, &o);
		free(body);
		free(last);
		if (stop) {
			i++;
			break;
		}
	}
	libpq.clear(r);
	return i;
}

static int pg_outbox_claim(struct store *s, int64_t now_ms, int limit, outbox_cb cb, void *ctx)
{
	struct params p = {0};
	p_int(&p, now_ms);
	p_int(&p, limit);
	p_int(&p, now_ms + STORE_PG_LEASE_MS);
	p_int(&p, PS(s)->token);
	PGresult *r = run(PS(s), Q_OUTBOX_CLAIM, &p);
	if (!r)
		return -1;
	/* Every claimed row goes to cb: a stop would leave rows in flight. */
	int n = libpq.ntuples(r);
	each_row(r, cb, ctx);
	return n;
}

static int pg_outbox_update(struct store *s, const struct outbox_update *u)
{
	struct params p = {0};
	p_int(&p, u->id);
	p_text(&p, u->state);
	p_int(&p, u->attempts);
	p_int(&p, u->next_ms);
	p_int(&p, u->last_status);
	p_text(&p, u->last_error);
	if (u->last_body)
		p_bin(&p, u->last_body, u->last_body_len);
	else
		p_text(&p, NULL);
	p_int(&p, u->notify);
	p_int(&p, PS(s)->token);
	int n = run_changes(PS(s), Q_OUTBOX_UPDATE, &p);
	return n < 0 ? -1 : n == 0;
}

/* The rows of hosts whose connection is gone, due now. */
static int pg_outbox_requeue_inflight(struct store *s)
{
	struct params p = {0};
	p_int(&p, now_ms());
	p_int(&p, PS(s)->token);
	return run_changes(PS(s), Q_OUTBOX_ORPHANS, &p) < 0 ? -1 : 0;
}

/* Looks for orphans first, once a second, outside transactions (it is a
 * write of its own, and a failure must not abort the caller's). */
static int pg_outbox_next_due(struct store *s, int64_t *due_ms)
{
	struct pg_store *ps = PS(s);
	int64_t now = now_ms();
	if (!ps->in_txn && now - ps->orphans_ms >= 1000) {
		ps->orphans_ms = now;
		pg_outbox_requeue_inflight(s);
	}
	return one_num(ps, Q_OUTBOX_NEXT, NULL, due_ms);
}

static int pg_outbox_notify_due(struct store *s, int64_t after_id, int limit, outbox_cb cb,
				void *ctx)
{
	struct params p = {0};
	p_int(&p, limit);
	p_int(&p, after_id);
	PGresult *r = run(PS(s), Q_OUTBOX_NOTIFY, &p);
	return r ? each_row(r, cb, ctx) : -1;
}

static int pg_outbox_list(struct store *s, const char *state, int64_t after_id, int limit,
			  outbox_cb cb, void *ctx)
{
	struct params p = {0};
	p_int(&p, after_id);
	p_int(&p, limit);
	if (state)
		p_text(&p, state);
	PGresult *r = run(PS(s), state ? Q_OUTBOX_LIST_STATE : Q_OUTBOX_LIST, &p);
	return r ? each_row(r, cb, ctx) : -1;
}

static int pg_outbox_get(struct store *s, int64_t id, outbox_cb cb, void *ctx)
{
	struct params p = {0};
	p_int(&p, id);
	PGresult *r = run(PS(s), Q_OUTBOX_GET, &p);
	return r ? each_row(r, cb, ctx) : -1;
}

static int pg_outbox_counts(struct store *s, int64_t counts[4])
{
	static const char *const names[] = {"pending", "inflight", "done", "dead"};
	memset(counts, 0, 4 * sizeof *counts);
	PGresult *r = run(PS(s), Q_OUTBOX_COUNTS, NULL);
	if (!r)
		return -1;
	for (int i = 0; i < libpq.ntuples(r); i++)
		for (int k = 0; k < 4; k++)
			if (!strcmp(libpq.getvalue(r, i, 0), names[k]))
				counts[k] = num(r, i, 1);
	libpq.clear(r);
	return 0;
}

static int change1(struct store *s, int which, int64_t id, int64_t arg)
{
	struct params p = {0};
	p_int(&p, id);
	if (which == Q_OUTBOX_RETRY)
		p_int(&p, arg);
	int n = run_changes(PS(s), which, &p);
	return n < 0 ? -1 : n > 0;
}

static int pg_outbox_notified(struct store *s, int64_t id)
{
	return change1(s, Q_OUTBOX_NOTIFIED, id, 0) < 0 ? -1 : 0;
}

static int pg_outbox_retry(struct store *s, int64_t id, int64_t now_ms)
{
	return change1(s, Q_OUTBOX_RETRY, id, now_ms);
}

static int pg_outbox_cancel(struct store *s, int64_t id)
{
	return change1(s, Q_OUTBOX_CANCEL, id, 0);
}

/* ---- schema ------------------------------------------------------------------------ */

/* The version in meta; 0 for an empty database, -1 when it cannot be read. */
static int pg_schema_version(struct store *s)
{
	struct pg_store *ps = PS(s);
	PGresult *r = libpq.exec(ps->conn, "SELECT to_regclass('meta') IS NOT NULL");
	int v = -1;
	if (libpq.resultStatus(r) == PGRES_TUPLES_OK && libpq.ntuples(r) == 1 &&
	    !strcmp(libpq.getvalue(r, 0, 0), "f")) {
		v = 0;
	} else if (libpq.resultStatus(r) == PGRES_TUPLES_OK) {
		libpq.clear(r);
		r = libpq.exec(ps->conn, "SELECT v FROM meta WHERE k = 'schema'");
		if (libpq.resultStatus(r) == PGRES_TUPLES_OK)
			v = libpq.ntuples(r) == 1 ? (int)strtol(libpq.getvalue(r, 0, 0), NULL, 10) : 0;
	}
	if (v < 0)
		set_err(ps, r);
	libpq.clear(r);
	return v;
}

/* Under a session advisory lock: two hosts starting on an empty database,
 * or two operators, migrate one after the other. */
static int pg_migrate(struct store *s, int target, void (*say)(void *ctx, int version),
		      void *ctx, char *err, size_t errlen)
{
	struct pg_store *ps = PS(s);
	if (exec_simple(ps, "SELECT pg_advisory_lock(" LOCK_MIGRATE ")")) {
		snprintf(err, errlen, "%s", ps->err);
		return -1;
	}
	int from = pg_schema_version(s), n = 0, rc = 0;
	if (from < 0) {
		snprintf(err, errlen, "cannot read the schema version: %s", ps->err);
		rc = -1;
	}
	if (target > STORE_SCHEMA_VERSION)
		target = STORE_SCHEMA_VERSION;
	for (int v = from + 1; rc == 0 && v >= 1 && v <= target; v++, n++) {
		char set[160];
		snprintf(set, sizeof set,
			 "INSERT INTO meta(k, v) VALUES('schema', '%d')"
			 " ON CONFLICT(k) DO UPDATE SET v = excluded.v",
			 v);
		if (exec_simple(ps, "BEGIN") ||
		    exec_simple(ps, "CREATE TABLE IF NOT EXISTS meta(k text PRIMARY KEY,"
				    " v text NOT NULL)") ||
		    exec_simple(ps, steps[v]) || exec_simple(ps, set) || exec_simple(ps, "COMMIT")) {
			snprintf(err, errlen, "schema %d (%s): %s", v, store_migration_what(v), ps->err);
			exec_simple(ps, "ROLLBACK");
			rc = -1;
			break;
		}
		if (say)
			say(ctx, v);
	}
	exec_simple(ps, "SELECT pg_advisory_unlock(" LOCK_MIGRATE ")");
	return rc ? -1 : n;
}

static int pg_probe(struct store *s)
{
	struct pg_store *ps = PS(s);
	if (pg_begin(s))
		return -1;
	if (run0(ps, Q_PROBE, NULL)) {
		pg_rollback(s);
		return -1;
	}
	return pg_commit(s);
}

static const char *pg_errmsg(struct store *s)
{
	return PS(s)->err;
}

static const struct store_ops pg_ops = {
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.savepoint = pg_savepoint,
	.release = pg_release,
	.rollback_to = pg_rollback_to,
	.journal_add = pg_journal_add,
	.journal_add_all = pg_journal_add_all,
	.journal_forget = pg_journal_forget,
	.journal_find = pg_journal_find,
	.journal_range = pg_journal_range,
	.kv_put = pg_kv_put,
	.kv_get = pg_kv_get,
	.kv_del = pg_kv_del,
	.timer_count = pg_timer_count,
	.timer_next = pg_timer_next,
	.timers_due = pg_timers_due,
	.audit_append = pg_audit_append,
	.audit_list = pg_audit_list,
	.audit_verify = pg_audit_verify,
	.outbox_add = pg_outbox_add,
	.outbox_claim = pg_outbox_claim,
	.outbox_update = pg_outbox_update,
	.outbox_next_due = pg_outbox_next_due,
	.outbox_requeue_inflight = pg_outbox_requeue_inflight,
	.outbox_notify_due = pg_outbox_notify_due,
	.outbox_list = pg_outbox_list,
	.outbox_get = pg_outbox_get,
	.outbox_counts = pg_outbox_counts,
	.outbox_notified = pg_outbox_notified,
	.outbox_retry = pg_outbox_retry,
	.outbox_cancel = pg_outbox_cancel,
	.schema_version = pg_schema_version,
	.migrate = pg_migrate,
	.probe = pg_probe,
	.errmsg = pg_errmsg,
};

struct store *store_pg_open(const char *url, int sync_full, int flags, char *err, size_t errlen)
{
	if (libpq_load(err, errlen))
		return NULL;
	struct pg_store *ps = calloc(1, sizeof *ps);
	if (!ps) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ps->base.ops = &pg_ops;
	ps->sync_full = sync_full;
	ps->token = (int64_t)(random_bits() >> 1);
	/* Our defaults first: the URL's own settings, expanded from dbname,
	 * come after them and win. Keepalives find a dead server or a broken
	 * network path in about a minute instead of the system's two hours. */
	static const char *const keys[] = {"connect_timeout", "keepalives_idle",
					   "keepalives_interval", "keepalives_count", "dbname", NULL};
	const char *const vals[] = {"10", "30", "10", "3", url, NULL};
	ps->conn = libpq.connectdbParams(keys, vals, 1);
	if (libpq.status(ps->conn) != CONNECTION_OK) {
		set_err(ps, NULL);
		snprintf(err, errlen, "cannot connect to %s: %s", store_display(url), ps->err);
		goto fail;
	}
	if (session_setup(ps)) {
		snprintf(err, errlen, "%s: %s", store_display(url), ps->err);
		goto fail;
	}
	int ver = pg_schema_version(&ps->base);
	if (ver < 0) {
		snprintf(err, errlen, "%s: cannot read the schema version: %s", store_display(url),
			 ps->err);
		goto fail;
	}
	if (ver > STORE_SCHEMA_VERSION || (ver > 0 && ver < STORE_SCHEMA_VERSION &&
					   !(flags & STORE_MIGRATE))) {
		store_version_error(store_display(url), ver, err, errlen);
		goto fail;
	}
	if (flags & STORE_MIGRATE)
		return &ps->base;
	if (ver == 0 && (flags & STORE_EXISTING)) {
		snprintf(err, errlen, "%s: no aftercall store in this database (%s)",
			 store_display(url), STORE_MADE_BY);
		goto fail;
	}
	if (ver == 0 && pg_migrate(&ps->base, STORE_SCHEMA_VERSION, NULL, NULL, err, errlen) < 0)
		goto fail;
	if (prepare_all(ps)) {
		snprintf(err, errlen, "%s: cannot prepare statements: %s", store_display(url), ps->err);
		goto fail;
	}
	return &ps->base;
fail:
	pg_close(&ps->base);
	return NULL;
}
