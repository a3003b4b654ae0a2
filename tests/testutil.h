/* Small helpers shared by the Check unit tests. */
#ifndef AC_TESTUTIL_H
#define AC_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh temporary directory per call; removed by the OS's tmp cleaning
 * or by the test's own teardown. */
static inline char *tu_tmpdir(void)
{
	char *d = strdup("/tmp/aftercall-unit.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

static inline void tu_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Reads a whole file; *len gets its size. */
static inline char *tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = '\0';
	fclose(f);
	if (len)
		*len = got;
	return buf;
}

/* A file under tests/data. */
static inline char *tu_data(const char *rel)
{
	const char *dir = getenv("TEST_DATA");
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/%s", dir ? dir : "tests/data", rel);
	return p;
}

static inline void tu_rmrf(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

#ifdef TU_PG
#include <libpq-fe.h>

/* Runs one statement on the maintenance database of AFTERCALL_TEST_PG. */
static inline void tu_pg_admin(const char *q)
{
	char admin[4200];
	snprintf(admin, sizeof admin, "%s/postgres", getenv("AFTERCALL_TEST_PG"));
	PGconn *c = PQconnectdb(admin);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	PGresult *r = PQexec(c, q);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", q, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

/* Ends every connection aftercall holds to database db, as a lost
 * connection would; returns how many there were. */
static inline long tu_pg_kill(const char *db)
{
	char admin[4200], q[300];
	snprintf(admin, sizeof admin, "%s/postgres", getenv("AFTERCALL_TEST_PG"));
	snprintf(q, sizeof q,
		 "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
		 " WHERE datname = '%s' AND application_name = 'aftercall'",
		 db);
	PGconn *c = PQconnectdb(admin);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	PGresult *r = PQexec(c, q);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", q, PQresultErrorMessage(r));
	long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return n;
}

/* A fresh database `name` (a prefix and a number of this process), its
 * URL in url; tu_pg_drop(name) drops it. */
static inline void tu_pg_create(const char *prefix, char *name, size_t namelen, char *url,
				size_t urllen)
{
	static int n;
	snprintf(name, namelen, "%s_%ld_%d", prefix, (long)getpid(), n++);
	char q[160];
	snprintf(q, sizeof q, "CREATE DATABASE %s", name);
	tu_pg_admin(q);
	snprintf(url, urllen, "%s/%s", getenv("AFTERCALL_TEST_PG"), name);
}

static inline void tu_pg_drop(const char *name)
{
	char q[160];
	snprintf(q, sizeof q, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	tu_pg_admin(q);
}

/* A "postgres" case of suite s (named `who`) with that fixture, for the
 * caller to add tests to; NULL, said on stdout, when AFTERCALL_TEST_PG is
 * not set. */
static inline TCase *tu_pg_tcase(Suite *s, const char *who, void (*setup)(void),
				 void (*teardown)(void))
{
	const char *pg = getenv("AFTERCALL_TEST_PG");
	if (!pg || !*pg) {
		printf("%s: AFTERCALL_TEST_PG is not set; the PostgreSQL cases are not run"
		       " (and not counted)\n",
		       who);
		return NULL;
	}
	TCase *tc = tcase_create("postgres");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(s, tc);
	return tc;
}
#endif

static inline int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
