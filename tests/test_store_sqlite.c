#include <check.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "testutil.h"

static char *dir;
static char url[4200], file[4200];

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
	ck_assert_int_eq(store_timer_next(s, &due), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "late", "", 0, 3000, NULL), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "early", "", 0, 1000, NULL), 0);
	ck_assert_int_eq(store_kv_put(s, "p", "never", "", 0, 0, NULL), 0);
	ck_assert_int_eq(store_commit(s), 0);
	store_close(s);
	s = open_store(1); /* timers are durable */
	ck_assert_int_eq(store_timer_next(s, &due), 1);
	ck_assert_int_eq(due, 1000);
	struct seen seen = {0};
	ck_assert_int_eq(store_timers_due(s, 2000, 10, collect, &seen), 1);
	ck_assert_int_eq(seen.n, 1);
	ck_assert_str_eq(seen.keys[0], "early");
	seen.n = 0;
	ck_assert_int_eq(store_timers_due(s, 5000, 10, collect, &seen), 2);
	ck_assert_str_eq(seen.keys[0], "early");
	ck_assert_str_eq(seen.keys[1], "late");
	store_close(s);
}
END_TEST

static void append(struct store *s, const char *kind, const char *subject)
{
	struct audit_rec r = {1000, "host", kind, subject, "q", "{\"a\":1}"};
	ck_assert_int_eq(store_audit_append(s, &r), 0);
}

static void sql(const char *q)
{
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

START_TEST(audit_chain_detects_tampering)
{
	struct store *s = open_store(1);
	char err[256];
	int64_t n;
	ck_assert_int_eq(store_begin(s), 0);
	append(s, "event.received", "room-a");
	append(s, "email.queued", "room-a");
	append(s, "email.approved", "room-a");
	ck_assert_int_eq(store_savepoint(s), 0);
	append(s, "rolled.back", NULL);
	store_rollback_to(s);
	append(s, "email.delivered", "room-a");
	ck_assert_int_eq(store_commit(s), 0);
	ck_assert_int_eq(store_audit_verify(s, &n, err, sizeof err), 0);
	ck_assert_int_eq(n, 4);
	store_close(s);

	sql("UPDATE audit SET subject = 'room-b' WHERE seq = 2");
	s = open_store(0);
	ck_assert_int_eq(store_audit_verify(s, &n, err, sizeof err), -1);
	ck_assert_str_eq(err, "record 2: contents do not match its hash (edited)");
	store_close(s);

	sql("UPDATE audit SET subject = 'room-a' WHERE seq = 2");
	sql("DELETE FROM audit WHERE seq = 3");
	s = open_store(0);
	ck_assert_int_eq(store_audit_verify(s, &n, err, sizeof err), -1);
	ck_assert_str_eq(err, "record 4: expected record 3 here (removed or reordered)");
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

int main(void)
{
	Suite *s = suite_create("store_sqlite");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, journal_dedupes_and_persists);
	tcase_add_test(tc, rollback_leaves_nothing);
	tcase_add_test(tc, kv_namespaces);
	tcase_add_test(tc, timers_due_in_order);
	tcase_add_test(tc, audit_chain_detects_tampering);
	tcase_add_test(tc, second_server_refused);
	tcase_add_test(tc, bad_url);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
