/*
 * The store, on both backends: the same cases run on a SQLite file and, when
 * AFTERCALL_TEST_PG names a PostgreSQL server (tools/test-all starts one),
 * on a fresh database of it. Cases of several hosts sharing one database
 * open two handles on it.
 */
#include <check.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#define TU_PG
#include "testutil.h"

static char *dir;
static char url[4300], file[4200], pgdb[64];

static void setup(void)
{
	dir = tu_tmpdir();
	snprintf(file, sizeof file, "%s/s.db", dir);
	snprintf(url, sizeof url, "sqlite:%s", file);
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
}

static void pg_setup(void)
{
	setup();
	tu_pg_create("t_unit", pgdb, sizeof pgdb, url, sizeof url);
}

static void pg_teardown(void)
{
	tu_pg_drop(pgdb);
	teardown();
}

static int on_pg(void)
{
	return strncmp(url, "sqlite:", 7) != 0;
}

static struct store *open_store(int exclusive)
{
	char err[512];
	struct store *s = store_open(url, 1, exclusive, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	return s;
}

START_TEST(journal_dedupes_and_persists)
{
	struct store *s = open_store(1);
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_journal_add(s, "EV_1", "/r", "room_finished", "{}", 2, 1, "q1"), 1);
	ck_assert_int_eq(store_journal_add(s, "EV_1", "/r", "room_finished", "{}", 2, 1, "q2"), 0);
	ck_assert_int_eq(store_journal_add(s, "EV_1", "/other", "x", "{}", 2, 1, "q3"), 1);
	ck_assert_int_eq(store_commit(s), 0);
	store_close(s);
	s = open_store(1);
	ck_assert_int_eq(store_journal_find(s, "EV_1", NULL, NULL), 2);
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_journal_add(s, "EV_1", "/r", "room_finished", "{}", 2, 1, "q4"), 0);
	ck_assert_int_eq(store_commit(s), 0);
	store_close(s);
}
END_TEST

START_TEST(rollback_leaves_nothing)
{
	struct store *s = open_store(1);
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_journal_add(s, "EV_9", "/r", "t", "{}", 2, 1, NULL), 1);
	ck_assert_int_eq(store_kv_put(s, "p", "k", "v", 1, 0, NULL), 0);
	store_rollback_to(s);
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_int_eq(store_journal_find(s, "EV_9", NULL, NULL), 0);
	char *v;
	size_t n;
	ck_assert_int_eq(store_kv_get(s, "p", "k", &v, &n), 0);
	store_close(s);
}
END_TEST

/* Journals id in a savepoint of its own, kept, as the dispatcher does. */
static void journal_in_savepoint(struct store *s, const char *id)
{
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_journal_add(s, id, "/r", "t", "{}", 2, 1, NULL), 1);
	ck_assert_int_eq(store_release(s), 0);
}

/* Savepoints nest; one undone or kept with nothing done inside is fine
 * (the PostgreSQL backend sends savepoints with the next statement). */
START_TEST(savepoints_nest)
{
	struct store *s = open_store(1);
	char *v;
	size_t n;
	ck_assert_int_eq(store_begin(s), 0);
	journal_in_savepoint(s, "EV_a");

	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_journal_add(s, "EV_b", "/r", "t", "{}", 2, 1, NULL), 1);
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "inner", "v", 1, 0, NULL), 0);
	store_rollback_to(s);
	ck_assert_int_eq(store_kv_get(s, "p", "inner", &v, &n), 0);
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "kept", "w", 1, 0, NULL), 0);
	ck_assert_int_eq(store_release(s), 0);
	ck_assert_int_eq(store_release(s), 0);

	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "x", "x", 1, 0, NULL), 0);
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "y", "y", 1, 0, NULL), 0);
	ck_assert_int_eq(store_release(s), 0);
	store_rollback_to(s);
	ck_assert_int_eq(store_kv_get(s, "p", "x", &v, &n), 0);
	ck_assert_int_eq(store_kv_get(s, "p", "y", &v, &n), 0);

	ck_assert_int_eq(store_savepoint(s), 0);
	store_rollback_to(s);
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_release(s), 0);
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_journal_add(s, "EV_c", "/r", "t", "{}", 2, 1, NULL), 1);
	store_rollback_to(s);
	ck_assert_int_eq(store_commit(s), 0);

	ck_assert_int_eq(store_journal_find(s, "EV_a", NULL, NULL), 1);
	ck_assert_int_eq(store_journal_find(s, "EV_b", NULL, NULL), 1);
	ck_assert_int_eq(store_journal_find(s, "EV_c", NULL, NULL), 0);
	ck_assert_int_eq(store_kv_get(s, "p", "inner", &v, &n), 0);
	ck_assert_int_eq(store_kv_get(s, "p", "kept", &v, &n), 1);
	free(v);
	store_close(s);
}
END_TEST

/* A statement that fails inside a savepoint is undone with it, and the
 * transaction goes on; on PostgreSQL, where the failure aborts the
 * transaction, keeping the savepoint or opening another is refused until
 * it is rolled back to. The failures come first in their savepoints, as
 * an event's journal row does (sent with the commands before it), and
 * after a statement that succeeded. */
START_TEST(failed_statement_undone)
{
	struct store *s = open_store(1);
	ck_assert_int_eq(store_begin(s), 0);
	journal_in_savepoint(s, "EV_1");
	for (int first = 1; first >= 0; first--) {
		ck_assert_int_eq(store_savepoint(s), 0);
		if (!first)
			ck_assert_int_eq(store_journal_add(s, "EV_2", "/r", "t", "{}", 2, 1, NULL), 1);
		ck_assert_int_eq(store_journal_add(s, "EV_3", NULL, "t", "{}", 2, 1, NULL), -1);
		ck_assert_str_ne(store_errmsg(s), "");
		if (on_pg()) {
			ck_assert_int_eq(store_release(s), -1);
			ck_assert_int_eq(store_savepoint(s), -1);
		}
		store_rollback_to(s);
	}
	journal_in_savepoint(s, "EV_4");
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_journal_add(s, "EV_5", NULL, "t", "{}", 2, 1, NULL), -1);
	store_rollback_to(s); /* then straight to the commit */
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_int_eq(store_journal_find(s, "EV_1", NULL, NULL), 1);
	ck_assert_int_eq(store_journal_find(s, "EV_2", NULL, NULL), 0);
	ck_assert_int_eq(store_journal_find(s, "EV_4", NULL, NULL), 1);
	store_close(s);
}
END_TEST

START_TEST(kv_namespaces)
{
	struct store *s = open_store(1);
	char *v;
	size_t n;
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_kv_put(s, "a", "k", "one", 3, 0, NULL), 0);
	ck_assert_int_eq(store_kv_put(s, "b", "k", "two", 3, 0, NULL), 0);
	ck_assert_int_eq(store_kv_get(s, "a", "k", &v, &n), 1);
	ck_assert_str_eq(v, "one");
	free(v);
	ck_assert_int_eq(store_kv_put(s, "a", "k", "uno", 3, 0, NULL), 0);
	ck_assert_int_eq(store_kv_get(s, "a", "k", &v, &n), 1);
	ck_assert_str_eq(v, "uno");
	free(v);
	ck_assert_int_eq(store_kv_del(s, "a", "k"), 0);
	ck_assert_int_eq(store_kv_get(s, "a", "k", &v, &n), 0);
	ck_assert_int_eq(store_kv_get(s, "b", "k", &v, &n), 1);
	ck_assert_str_eq(v, "two");
	free(v);
	ck_assert_int_eq(store_commit(s), 0);
	store_close(s);
}
END_TEST

struct seen {
	int n;
	char keys[8][16];
};

static int collect(void *ctx, const struct timer_row *t)
{
	struct seen *s = ctx;
	snprintf(s->keys[s->n++], 16, "%s", t->key);
	return 0;
}

START_TEST(timers_due_in_order)
{
	struct store *s = open_store(1);
	int64_t due;
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_timer_next(s, NULL, &due), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "late", "", 0, 3000, NULL), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "early", "", 0, 1000, NULL), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "never", "", 0, 0, NULL), 0);
	ck_assert_int_eq(store_commit(s), 0);
	store_close(s);
	s = open_store(1); /* timers are durable */
	ck_assert_int_eq(store_timer_next(s, NULL, &due), 1);
	ck_assert_int_eq(due, 1000);
	struct seen seen = {0};
	ck_assert_int_eq(store_timers_due(s, 2000, 10, NULL, collect, &seen), 1);
	ck_assert_int_eq(seen.n, 1);
	ck_assert_str_eq(seen.keys[0], "early");
	seen.n = 0;
	ck_assert_int_eq(store_timers_due(s, 5000, 10, NULL, collect, &seen), 2);
	ck_assert_str_eq(seen.keys[0], "early");
	ck_assert_str_eq(seen.keys[1], "late");
	store_close(s);
}
END_TEST

/* A host fires only the timers of the plugins it loads (the namespaces it
 * names); the others wait, untouched, for a host that loads theirs. */
START_TEST(timers_of_named_plugins_only)
{
	struct store *s = open_store(1);
	int64_t due;
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_kv_put(s, "ghost", "g1", "", 0, 500, NULL), 0);
	ck_assert_int_eq(store_kv_put(s, "ghost", "g2", "", 0, 600, NULL), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "p1", "", 0, 900, NULL), 0);
	ck_assert_int_eq(store_kv_put(s, "q", "q1", "", 0, 800, NULL), 0);
	ck_assert_int_eq(store_commit(s), 0);

	ck_assert_int_eq(store_timer_count(s, NULL), 4);
	ck_assert_int_eq(store_timer_count(s, "[\"p\",\"q\"]"), 2);
	ck_assert_int_eq(store_timer_count(s, "[]"), 0);
	ck_assert_int_eq(store_timer_next(s, NULL, &due), 1);
	ck_assert_int_eq(due, 500);
	ck_assert_int_eq(store_timer_next(s, "[\"p\",\"q\"]", &due), 1);
	ck_assert_int_eq(due, 800);
	ck_assert_int_eq(store_timer_next(s, "[\"nobody\"]", &due), 0);

	struct seen seen = {0};
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_timers_due(s, 1000, 10, "[\"p\",\"q\"]", collect, &seen), 2);
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_int_eq(seen.n, 2);
	ck_assert_str_eq(seen.keys[0], "q1");
	ck_assert_str_eq(seen.keys[1], "p1");
	seen.n = 0;
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_timers_due(s, 1000, 10, "[]", collect, &seen), 0);
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_int_eq(seen.n, 0);
	store_close(s);
}
END_TEST

static void append(struct store *s, const char *kind, const char *subject)
{
	struct audit_rec r = {1000, "host", kind, subject, "q", "{\"a\":1}"};
	ck_assert_int_eq(store_audit_append(s, &r), 0);
}

/* Runs SQL on the store behind aftercall's back. */
static void sql(const char *q)
{
	if (on_pg()) {
		PGconn *c = PQconnectdb(url);
		PGresult *r = PQexec(c, q);
		ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
		return;
	}
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Walks the chain with w (audit_walk_init() first, or a head set); the
 * number of records walked. */
static int64_t walk(struct store *s, struct audit_walk *w, int want, char *err, size_t errlen)
{
	ck_assert_int_eq(store_audit_verify(s, w, err, errlen), want);
	return w->expect - 1;
}

/* A chain edited, cut short inside, or cut at its end: the last shows only
 * against a head kept from before, and so does a head that was changed. */
START_TEST(audit_chain_detects_tampering)
{
	struct store *s = open_store(1);
	char err[256];
	struct audit_walk w;
	ck_assert_int_eq(store_begin(s), 0);
	append(s, "event.received", "room-a");
	append(s, "email.queued", "room-a");
	append(s, "email.approved", "room-a");
	ck_assert_int_eq(store_savepoint(s), 0);
	append(s, "rolled.back", NULL);
	store_rollback_to(s);
	append(s, "email.delivered", "room-a");
	ck_assert_int_eq(store_commit(s), 0);
	audit_walk_init(&w);
	ck_assert_int_eq(walk(s, &w, 0, err, sizeof err), 4);
	struct audit_walk kept = w; /* its head: record 4's hash */
	store_close(s);

	sql("UPDATE audit SET subject = 'room-b' WHERE seq = 2");
	s = open_store(0);
	audit_walk_init(&w);
	walk(s, &w, -1, err, sizeof err);
	ck_assert_str_eq(err, "record 2: contents do not match its hash (edited)");
	store_close(s);

	sql("UPDATE audit SET subject = 'room-a' WHERE seq = 2");
	sql("DELETE FROM audit WHERE seq = 4");
	s = open_store(0);
	audit_walk_init(&w);
	ck_assert_int_eq(walk(s, &w, 0, err, sizeof err), 3); /* holds without a head */
	audit_walk_init(&w);
	w.head_seq = 4;
	memcpy(w.head, kept.prev, sizeof w.head);
	ck_assert_int_eq(walk(s, &w, 0, err, sizeof err), 3);
	ck_assert_int_eq(w.head_seen, 0); /* the caller says record 4 is gone */
	audit_walk_init(&w);
	w.head_seq = 3;
	memcpy(w.head, kept.prev, sizeof w.head); /* not record 3's hash */
	walk(s, &w, -1, err, sizeof err);
	ck_assert_str_eq(err, "record 3: its hash is not the head given (the chain was rewritten)");
	store_close(s);

	sql("DELETE FROM audit WHERE seq = 2");
	s = open_store(0);
	audit_walk_init(&w);
	walk(s, &w, -1, err, sizeof err);
	ck_assert_str_eq(err, "record 3: expected record 2 here (removed or reordered)");
	store_close(s);
}
END_TEST

START_TEST(second_server_refused)
{
	struct store *s = open_store(1);
	char err[512];
	ck_assert_ptr_null(store_open(url, 1, 1, err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "in use by another aftercall serve process"));
	struct store *reader = open_store(0);
	store_close(reader);
	store_close(s);
	s = open_store(1);
	store_close(s);
}
END_TEST

START_TEST(bad_url)
{
	char err[512];
	ck_assert_ptr_null(store_open("redis://x", 1, 1, err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "unsupported store"));
}
END_TEST

/* Queues a small pending send, due at created_ms. */
static void add_row(struct store *s, const char *key, int64_t created_ms, const char *request_id)
{
	struct outbox_row r = {.plugin = "p", .method = "POST", .url = "http://x/", .headers = "[]",
			       .body = "{}", .body_len = 2, .idem_key = key, .max_attempts = 3,
			       .max_age_ms = 1000, .created_ms = created_ms, .request_id = request_id};
	ck_assert_int_eq(store_outbox_add(s, &r), 1);
}

static void say(void *ctx, int v)
{
	int *last = ctx;
	*last = v;
}

static int note_request(void *ctx, const struct outbox_row *r)
{
	snprintf(ctx, 32, "%s", r->request_id ? r->request_id : "(null)");
	return 0;
}

START_TEST(schema_steps_and_refusals)
{
	char err[512];
	/* A store at schema 1, as an older aftercall left it. */
	struct store *s = store_open(url, 1, STORE_MIGRATE, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_int_eq(store_schema_version(s), 0);
	int last = 0;
	ck_assert_int_eq(store_migrate(s, 1, say, &last, err, sizeof err), 1);
	ck_assert_int_eq(last, 1);
	store_close(s);
	ck_assert_ptr_null(store_open(url, 1, STORE_SERVE, err, sizeof err));
	ck_assert_msg(strstr(err, "has schema version 1; this aftercall needs 3") &&
			      strstr(err, "aftercall migrate"),
		      "%s", err);
	sql("INSERT INTO journal(route, dedupe, type, body, received_ms) VALUES('/r', 'EV_old', 't',"
	    " 'x', 1)");

	s = store_open(url, 1, STORE_MIGRATE, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_int_eq(store_migrate(s, STORE_SCHEMA_VERSION, say, &last, err, sizeof err),
			 STORE_SCHEMA_VERSION - 1);
	ck_assert_int_eq(last, 3);
	ck_assert_int_eq(store_migrate(s, STORE_SCHEMA_VERSION, say, &last, err, sizeof err), 0);
	store_close(s);

	/* Migrated: the old row is there and the new column works. */
	s = open_store(1);
	ck_assert_int_eq(store_schema_version(s), STORE_SCHEMA_VERSION);
	ck_assert_int_eq(store_journal_find(s, "EV_old", NULL, NULL), 1);
	ck_assert_int_eq(store_begin(s), 0);
	add_row(s, "k1", 5, "req-7");
	ck_assert_int_eq(store_commit(s), 0);
	char rid[32] = "";
	ck_assert_int_eq(store_begin(s), 0); /* claims are made in a batch */
	ck_assert_int_eq(store_outbox_claim(s, 10, 5, note_request, rid), 1);
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_str_eq(rid, "req-7");
	store_close(s);

	sql("UPDATE meta SET v = '99' WHERE k = 'schema'");
	ck_assert_ptr_null(store_open(url, 1, STORE_SERVE, err, sizeof err));
	ck_assert_msg(strstr(err, "has schema version 99, newer than this aftercall's 3"), "%s", err);
	ck_assert_ptr_null(store_open(url, 1, STORE_MIGRATE, err, sizeof err));
}
END_TEST

/* ---- several hosts on one PostgreSQL database --------------------------- */

START_TEST(pg_journal_once_across_hosts)
{
	struct store *a = open_store(1), *b = open_store(1);
	ck_assert_int_eq(store_begin(a), 0);
	ck_assert_int_eq(store_journal_add(a, "EV_x", "/r", "t", "{}", 2, 1, "qa"), 1);
	ck_assert_int_eq(store_commit(a), 0);
	ck_assert_int_eq(store_begin(b), 0);
	ck_assert_int_eq(store_journal_add(b, "EV_x", "/r", "t", "{}", 2, 1, "qb"), 0);
	ck_assert_int_eq(store_commit(b), 0);
	store_close(a);
	store_close(b);
}
END_TEST

struct keys {
	int n;
	char k[32][16];
	struct store *s; /* deletes each timer it is given, as the dispatcher does */
};

static int take(void *ctx, const struct timer_row *t)
{
	struct keys *k = ctx;
	snprintf(k->k[k->n++], 16, "%s", t->key);
	return store_kv_del(k->s, t->ns, t->key);
}

START_TEST(pg_timer_fires_on_one_host)
{
	struct store *a = open_store(1), *b = open_store(1);
	ck_assert_int_eq(store_begin(a), 0);
	for (int i = 0; i < 10; i++) {
		char key[8];
		snprintf(key, sizeof key, "t%d", i);
		ck_assert_int_eq(store_kv_put(a, "p", key, "", 0, 100 + i, NULL), 0);
	}
	ck_assert_int_eq(store_commit(a), 0);

	/* Both claim at once: each due timer goes to one of them. */
	struct keys ka = {.s = a}, kb = {.s = b};
	ck_assert_int_eq(store_begin(a), 0);
	ck_assert_int_eq(store_timers_due(a, 1000, 4, NULL, take, &ka), 4);
	ck_assert_int_eq(store_begin(b), 0);
	ck_assert_int_eq(store_timers_due(b, 1000, 32, NULL, take, &kb), 6);
	ck_assert_int_eq(ka.n, 4);
	ck_assert_int_eq(kb.n, 6);
	for (int i = 0; i < ka.n; i++)
		for (int j = 0; j < kb.n; j++)
			ck_assert_str_ne(ka.k[i], kb.k[j]);
	ck_assert_int_eq(store_commit(a), 0);
	ck_assert_int_eq(store_commit(b), 0);
	ck_assert_int_eq(store_timer_count(a, NULL), 0);

	/* A key another host is reading right now is left for later. */
	ck_assert_int_eq(store_begin(a), 0);
	ck_assert_int_eq(store_kv_put(a, "p", "busy", "", 0, 100, NULL), 0);
	ck_assert_int_eq(store_commit(a), 0);
	char *v;
	size_t n;
	ck_assert_int_eq(store_begin(a), 0);
	ck_assert_int_eq(store_kv_get(a, "p", "busy", &v, &n), 1);
	free(v);
	kb.n = 0;
	ck_assert_int_eq(store_begin(b), 0);
	ck_assert_int_eq(store_timers_due(b, 1000, 32, NULL, take, &kb), 0);
	ck_assert_int_eq(kb.n, 0);
	store_rollback(b);
	ck_assert_int_eq(store_commit(a), 0);
	ck_assert_int_eq(store_begin(b), 0);
	ck_assert_int_eq(store_timers_due(b, 1000, 32, NULL, take, &kb), 1);
	ck_assert_int_eq(kb.n, 1);
	ck_assert_int_eq(store_commit(b), 0);
	store_close(a);
	store_close(b);
}
END_TEST

static int count_rows(void *ctx, const struct outbox_row *r)
{
	(*(int *)ctx)++;
	return 0;
}

static int note_id(void *ctx, const struct outbox_row *r)
{
	*(int64_t *)ctx = r->id;
	return 0;
}

static int copy_row(void *ctx, const struct outbox_row *r)
{
	struct outbox_row *c = ctx;
	c->attempts = r->attempts;
	c->notify = r->notify;
	c->last_status = r->last_status;
	return 1;
}

/* SQLite may roll a transaction back whole on its own (a full disk, an
 * I/O error): a savepoint then would begin a transaction of its own, which
 * its release would commit apart from the batch, and a claim would mark
 * rows in flight for good. Both are refused. */
START_TEST(sqlite_savepoint_needs_a_transaction)
{
	struct store *s = open_store(1);
	ck_assert_int_eq(store_begin(s), 0);
	add_row(s, "due", 100, NULL);
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_int_eq(store_begin(s), 0);
	store_rollback(s); /* as SQLite does on its own */
	ck_assert_int_eq(store_savepoint(s), -1);
	ck_assert_str_eq(store_errmsg(s), "no transaction open (SQLite rolled back the batch's)");
	/* Nor is a row claimed: it would stay in flight with no request. */
	int n = 0;
	ck_assert_int_eq(store_outbox_claim(s, 1000, 4, count_rows, &n), -1);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(store_outbox_list(s, "pending", 0, 10, count_rows, &n), 1);
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(store_release(s), 0);
	ck_assert_int_eq(store_commit(s), 0);
	store_close(s);
}
END_TEST

/* A result is recorded for a row in flight only: the same result again
 * (a commit whose answer was lost, then retried) changes nothing, and the
 * plugin is not told of the outcome twice. */
START_TEST(outbox_result_recorded_once)
{
	struct store *s = open_store(1);
	int64_t id = 0;
	ck_assert_int_eq(store_begin(s), 0);
	add_row(s, "once", 100, NULL);
	ck_assert_int_eq(store_outbox_claim(s, 1000, 4, note_id, &id), 1);
	ck_assert_int_eq(store_commit(s), 0);
	struct outbox_update u = {.id = id, .state = "done", .attempts = 1, .last_status = 202,
				  .notify = 1};
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_outbox_update(s, &u), 0);
	ck_assert_int_eq(store_outbox_notified(s, id), 0);
	ck_assert_int_eq(store_commit(s), 0);
	u.attempts = 2;
	u.last_status = 500;
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_outbox_update(s, &u), 1);
	ck_assert_int_eq(store_commit(s), 0);
	struct outbox_row r = {0};
	ck_assert_int_ge(store_outbox_get(s, id, copy_row, &r), 0);
	ck_assert_int_eq(r.attempts, 1);
	ck_assert_int_eq(r.last_status, 202);
	ck_assert_int_eq(r.notify, 0);
	store_close(s);
}
END_TEST

START_TEST(pg_outbox_rows_claimed_once_and_leased)
{
	struct store *a = open_store(1), *b = open_store(1);
	ck_assert_int_eq(store_begin(a), 0);
	for (int i = 0; i < 10; i++) {
		char key[8];
		snprintf(key, sizeof key, "k%d", i);
		add_row(a, key, 100, NULL);
	}
	ck_assert_int_eq(store_commit(a), 0);
	int na = 0, nb = 0;
	ck_assert_int_eq(store_begin(a), 0);
	ck_assert_int_eq(store_outbox_claim(a, 1000, 4, count_rows, &na), 4);
	ck_assert_int_eq(store_begin(b), 0);
	ck_assert_int_eq(store_outbox_claim(b, 1000, 32, count_rows, &nb), 6);
	ck_assert_int_eq(store_commit(a), 0);
	ck_assert_int_eq(store_commit(b), 0);
	/* In flight: nobody claims them again until the lease ends. */
	nb = 0;
	ck_assert_int_eq(store_outbox_claim(b, 2000, 32, count_rows, &nb), 0);
	ck_assert_int_eq(store_outbox_claim(b, 1000 + STORE_PG_LEASE_MS + 1, 32, count_rows, &nb),
			 10);
	store_close(a);
	store_close(b);
}
END_TEST

/* The first value of a query on the test database, as a number. */
static long long pg_num(const char *q)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r = PQexec(c, q);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", q,
		      PQresultErrorMessage(r));
	long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return v;
}

/* A batch's rows in one call: new ones added, one there before and one
 * repeated in the batch found; a row taken back; more rows than one
 * pipeline takes; a failing row fails the call, and the transaction is
 * rolled back. */
START_TEST(pg_journal_batch)
{
	struct store *s = open_store(1);
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_journal_add(s, "EV_old", "/r", "t", "{}", 2, 1, NULL), 1);
	ck_assert_int_eq(store_commit(s), 0);

	struct journal_in in[300];
	const char *ids[] = {"EV_a", "EV_b", "EV_a", "EV_old"};
	char many[300][16];
	for (int i = 0; i < 300; i++) {
		snprintf(many[i], sizeof many[i], "EV_m%d", i);
		in[i] = (struct journal_in){.dedupe = i < 4 ? ids[i] : many[i], .route = "/r",
					    .type = "t", .body = "{}", .len = 2, .added = -1};
	}
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_journal_add_all(s, in, 300), 0);
	ck_assert_int_eq(in[0].added, 1);
	ck_assert_int_eq(in[1].added, 1);
	ck_assert_int_eq(in[2].added, 0);
	ck_assert_int_eq(in[3].added, 0);
	ck_assert_int_eq(in[299].added, 1);
	ck_assert_int_eq(store_journal_forget(s, "/r", "EV_b"), 0);
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_int_eq(store_journal_find(s, "EV_a", NULL, NULL), 1);
	ck_assert_int_eq(store_journal_find(s, "EV_b", NULL, NULL), 0);
	ck_assert_int_eq(pg_num("SELECT count(*) FROM journal"), 298);

	in[0] = (struct journal_in){.dedupe = "EV_c", .route = "/r", .type = "t", .body = "{}", .len = 2};
	in[1] = (struct journal_in){.dedupe = "EV_d", .route = NULL, .type = "t", .body = "{}", .len = 2};
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_journal_add_all(s, in, 2), -1);
	ck_assert_str_ne(store_errmsg(s), "");
	store_rollback(s);
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(store_journal_add(s, "EV_e", "/r", "t", "{}", 2, 1, NULL), 1);
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_int_eq(store_journal_find(s, "EV_c", NULL, NULL), 0);
	ck_assert_int_eq(store_journal_find(s, "EV_e", NULL, NULL), 1);
	store_close(s);
}
END_TEST

/* The connection is lost between an event's savepoint and its journal
 * row: nothing more is sent in that transaction, its commit fails with the
 * first error, and the next transaction runs on a new connection. */
START_TEST(pg_connection_lost_in_a_transaction)
{
	struct store *s = open_store(1);
	ck_assert_int_eq(store_begin(s), 0);
	journal_in_savepoint(s, "EV_1");
	ck_assert_int_eq(store_savepoint(s), 0);
	ck_assert_int_eq(tu_pg_kill(pgdb), 1);
	ck_assert_int_eq(store_journal_add(s, "EV_2", "/r", "t", "{}", 2, 1, NULL), -1);
	char first[512];
	snprintf(first, sizeof first, "%s", store_errmsg(s));
	ck_assert_str_ne(first, "");
	ck_assert_int_eq(store_release(s), -1);
	store_rollback_to(s);
	ck_assert_int_eq(store_kv_put(s, "p", "k", "v", 1, 0, NULL), -1);
	ck_assert_int_eq(store_commit(s), -1);
	ck_assert_str_eq(store_errmsg(s), first);

	ck_assert_int_eq(store_begin(s), 0);
	journal_in_savepoint(s, "EV_3");
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_int_eq(store_journal_find(s, "EV_1", NULL, NULL), 0);
	ck_assert_int_eq(store_journal_find(s, "EV_2", NULL, NULL), 0);
	ck_assert_int_eq(store_journal_find(s, "EV_3", NULL, NULL), 1);
	store_close(s);
}
END_TEST

/* Claims for b until it has `want` rows in all, for up to 5 s: a backend
 * that was told to go takes a moment to leave pg_stat_activity. Claims as
 * of `now` or the clock, whichever is later: the store makes orphans due
 * at the clock's time, which a slow run (valgrind) takes past `now`. */
static void claim_until(struct store *b, int64_t now, int *nb, int want)
{
	for (int i = 0; i < 100 && *nb < want; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t t = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		ck_assert_int_eq(store_begin(b), 0);
		ck_assert_int_eq(store_outbox_requeue_inflight(b), 0);
		ck_assert_int_ge(store_outbox_claim(b, t > now ? t : now, 32, count_rows, nb), 0);
		ck_assert_int_eq(store_commit(b), 0);
		if (*nb < want)
			usleep(50000);
	}
}

START_TEST(pg_outbox_rows_of_a_gone_host)
{
	struct store *a = open_store(1), *b = open_store(1);
	int64_t now = (int64_t)time(NULL) * 1000;
	ck_assert_int_eq(store_begin(a), 0);
	add_row(a, "k1", now, NULL);
	add_row(a, "k2", now, NULL);
	add_row(a, "k3", now, NULL);
	ck_assert_int_eq(store_commit(a), 0);
	int na = 0, nb = 0;
	ck_assert_int_eq(store_begin(a), 0);
	ck_assert_int_eq(store_outbox_claim(a, now, 1, count_rows, &na), 1);
	ck_assert_int_eq(store_commit(a), 0);
	long long k1 = pg_num("SELECT id FROM outbox WHERE state = 'inflight'");

	/* a is alive: its row stays its own. */
	claim_until(b, now, &nb, 2);
	ck_assert_int_eq(nb, 2);
	ck_assert_int_eq(store_begin(b), 0);
	ck_assert_int_eq(store_outbox_requeue_inflight(b), 0);
	ck_assert_int_eq(store_outbox_claim(b, now + 1000, 32, count_rows, &nb), 0);
	ck_assert_int_eq(store_commit(b), 0);

	/* a's connection is cut, as when its host dies: b takes the row over
	 * at once, well before the lease ends. */
	char q[160];
	snprintf(q, sizeof q, "SELECT pg_terminate_backend(claim_pid)::int FROM outbox WHERE id = %lld",
		 k1);
	ck_assert_int_eq(pg_num(q), 1);
	claim_until(b, now + 1000, &nb, 3);
	ck_assert_int_eq(nb, 3);

	/* a's late result is not recorded; b's is. */
	struct outbox_update u = {.id = k1, .state = "done", .attempts = 1, .last_status = 202};
	if (store_begin(a)) /* the first try finds the connection gone */
		ck_assert_int_eq(store_begin(a), 0);
	ck_assert_int_eq(store_outbox_update(a, &u), 1);
	ck_assert_int_eq(store_commit(a), 0);
	snprintf(q, sizeof q, "SELECT count(*) FROM outbox WHERE id = %lld AND state = 'inflight'",
		 k1);
	ck_assert_int_eq(pg_num(q), 1);
	ck_assert_int_eq(store_begin(b), 0);
	ck_assert_int_eq(store_outbox_update(b, &u), 0);
	ck_assert_int_eq(store_commit(b), 0);
	ck_assert_int_eq(pg_num(q), 0);

	/* Connected again, a keeps the rows it claims: its own look for
	 * orphans leaves them in flight. */
	ck_assert_int_eq(store_begin(a), 0);
	add_row(a, "k4", now, NULL);
	ck_assert_int_eq(store_outbox_claim(a, now, 32, count_rows, &na), 1);
	ck_assert_int_eq(store_commit(a), 0);
	ck_assert_int_eq(store_begin(a), 0);
	ck_assert_int_eq(store_outbox_requeue_inflight(a), 0);
	ck_assert_int_eq(store_outbox_claim(a, now + 1000, 32, count_rows, &na), 0);
	ck_assert_int_eq(store_commit(a), 0);
	store_close(a);
	store_close(b);
}
END_TEST

START_TEST(pg_audit_one_chain_from_two_hosts)
{
	struct store *a = open_store(1), *b = open_store(1);
	ck_assert_int_eq(store_begin(a), 0);
	append(a, "from.a", "room-a");
	ck_assert_int_eq(store_begin(b), 0);
	append(b, "from.b", "room-b");
	append(b, "from.b", "room-b");
	ck_assert_int_eq(store_commit(b), 0);
	append(a, "from.a", "room-a");
	ck_assert_int_eq(store_commit(a), 0);
	append(b, "outside.a.transaction", NULL);
	char err[256];
	struct audit_walk w;
	audit_walk_init(&w);
	ck_assert_int_eq(walk(a, &w, 0, err, sizeof err), 5);
	store_close(a);
	store_close(b);
}
END_TEST

START_TEST(pg_password_hidden)
{
	ck_assert_str_eq(store_display("postgres://u:s3cret@h:5/db"), "postgres://u:(hidden)@h:5/db");
	ck_assert_str_eq(store_display("postgres://h/db?password=s3cret&sslmode=require"),
			 "postgres://h/db?password=(hidden)&sslmode=require");
	ck_assert_str_eq(store_display("postgres://u@h/db"), "postgres://u@h/db");
	char err[512];
	ck_assert_ptr_null(store_open("postgres://u:s3cret@127.0.0.1:1/db", 1, 0, err, sizeof err));
	ck_assert_ptr_null(strstr(err, "s3cret"));
	ck_assert_ptr_nonnull(strstr(err, "cannot connect to postgres://u:(hidden)@127.0.0.1:1/db"));
}
END_TEST


START_TEST(checkpoint_policy)
{
	/* pages, busy, done -> what the committing writer does */
	static const int cases[][4] = {
		{CKPT_PAGES - 1, 0, 0, CKPT_NONE},
		{CKPT_PAGES, 0, 0, CKPT_BACKGROUND},
		{CKPT_PAGES + 500, 1, 0, CKPT_NONE},	  /* a pass is running */
		{CKPT_PAGES + 500, 0, CKPT_PAGES + 400, CKPT_HERE}, /* a short rest */
		{CKPT_PAGES + 500, 0, CKPT_PAGES, CKPT_BACKGROUND},
		{CKPT_FORCE_PAGES, 1, 0, CKPT_HERE}, /* the bound */
		{CKPT_FORCE_PAGES + 9, 0, 0, CKPT_HERE},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(ckpt_decide(cases[i][0], cases[i][1], cases[i][2]) == cases[i][3],
			      "case %zu: pages %d busy %d done %d", i, cases[i][0], cases[i][1],
			      cases[i][2]);
}
END_TEST

static int threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	ck_assert_ptr_nonnull(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* A serving SQLite store checkpoints on a thread of its own once the WAL
 * passes CKPT_PAGES, and the WAL stays bounded while the writer goes on. */
START_TEST(sqlite_checkpoints_in_background)
{
	struct store *s = open_store(STORE_SERVE);
	int before = threads_now();
	char wal[4300], body[3000], id[32];
	snprintf(wal, sizeof wal, "%s-wal", file);
	memset(body, 'x', sizeof body);
	const long long frame = 24 + 4096, bound = 32 + (CKPT_FORCE_PAGES + 200) * frame;
	long long most = 0;
	int n = 0, crossed = 0;
	for (int batch = 0; batch < 60; batch++) {
		ck_assert_int_eq(store_begin(s), 0);
		for (int i = 0; i < 100; i++, n++) {
			snprintf(id, sizeof id, "EV_%d", n);
			ck_assert_int_eq(store_journal_add(s, id, "/r", "t", body, sizeof body, 1, "q"),
					 1);
		}
		ck_assert_int_eq(store_commit(s), 0);
		long long size = file_size(wal);
		most = size > most ? size : most;
		ck_assert_msg(size <= bound, "WAL of %lld bytes after batch %d", size, batch);
		if (!crossed && size < (CKPT_PAGES - 200) * frame)
			ck_assert_int_eq(threads_now(), before); /* no checkpoint yet */
		crossed |= size >= CKPT_PAGES * frame;
	}
	ck_assert_msg(crossed, "the WAL never reached %d pages (%lld bytes)", CKPT_PAGES, most);
	ck_assert_int_eq(threads_now(), before + 1);
	ck_assert_int_eq(store_journal_find(s, "EV_0", NULL, NULL), 1);
	ck_assert_int_eq(store_journal_find(s, "EV_5999", NULL, NULL), 1);
	store_close(s);
	ck_assert_int_eq(threads_now(), before);
	/* Closed: everything is in the database file. */
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM journal", -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 6000);
	sqlite3_finalize(st);
	sqlite3_close(db);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("sqlite");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, journal_dedupes_and_persists);
	tcase_add_test(tc, rollback_leaves_nothing);
	tcase_add_test(tc, savepoints_nest);
	tcase_add_test(tc, failed_statement_undone);
	tcase_add_test(tc, kv_namespaces);
	tcase_add_test(tc, timers_due_in_order);
	tcase_add_test(tc, timers_of_named_plugins_only);
	tcase_add_test(tc, outbox_result_recorded_once);
	tcase_add_test(tc, audit_chain_detects_tampering);
	tcase_add_test(tc, schema_steps_and_refusals);
	tcase_add_test(tc, second_server_refused);
	tcase_add_test(tc, bad_url);
	tcase_add_test(tc, pg_password_hidden);
	tcase_add_test(tc, checkpoint_policy);
	tcase_add_test(tc, sqlite_checkpoints_in_background);
	tcase_add_test(tc, sqlite_savepoint_needs_a_transaction);
	suite_add_tcase(s, tc);
	if ((tc = tu_pg_tcase(s, "store", pg_setup, pg_teardown))) {
		tcase_add_test(tc, journal_dedupes_and_persists);
		tcase_add_test(tc, rollback_leaves_nothing);
		tcase_add_test(tc, savepoints_nest);
		tcase_add_test(tc, failed_statement_undone);
		tcase_add_test(tc, kv_namespaces);
		tcase_add_test(tc, timers_due_in_order);
		tcase_add_test(tc, timers_of_named_plugins_only);
	tcase_add_test(tc, outbox_result_recorded_once);
		tcase_add_test(tc, audit_chain_detects_tampering);
		tcase_add_test(tc, schema_steps_and_refusals);
		tcase_add_test(tc, pg_journal_once_across_hosts);
		tcase_add_test(tc, pg_timer_fires_on_one_host);
		tcase_add_test(tc, pg_outbox_rows_claimed_once_and_leased);
		tcase_add_test(tc, pg_outbox_rows_of_a_gone_host);
		tcase_add_test(tc, pg_connection_lost_in_a_transaction);
		tcase_add_test(tc, pg_journal_batch);
		tcase_add_test(tc, pg_audit_one_chain_from_two_hosts);
	}
	return tu_run(s);
}
