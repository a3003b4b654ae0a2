#include <check.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "log.h"
#include "outbox.h"
#define TU_PG
#include "testutil.h"

static char *dir;
static char url[4300], rec1[4200], rec2[4200], so[4200], pgdb[64];

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

static void on_done(struct job *j)
{
	struct waiter *w = j->ctx;
	pthread_mutex_lock(&w->mu);
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* A job submitted and not waited for yet. */
struct pending {
	struct waiter w;
	struct job j;
};

static void submit_async(struct pending *p, struct dispatcher *d, const struct route *r,
			 const char *type, const char *id)
{
	*p = (struct pending){.w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}};
	p->j = (struct job){.route = r, .body = "{}", .len = 2, .done = on_done, .ctx = &p->w};
	snprintf(p->j.type, sizeof p->j.type, "%s", type);
	snprintf(p->j.dedupe, sizeof p->j.dedupe, "%s", id);
	snprintf(p->j.request_id, sizeof p->j.request_id, "t-%s", id);
	dispatcher_submit(d, &p->j);
}

static int wait_for(struct pending *p)
{
	pthread_mutex_lock(&p->w.mu);
	while (!p->w.done)
		pthread_cond_wait(&p->w.cv, &p->w.mu);
	pthread_mutex_unlock(&p->w.mu);
	return p->j.status;
}

static int submit(struct dispatcher *d, const struct route *r, const char *type, const char *id)
{
	struct pending p;
	submit_async(&p, d, r, type, id);
	return wait_for(&p);
}

/* A host with one or two counter plugins on one route. */
struct rig {
	struct config cfg;
	struct plugin_conf pcs[2];
	struct route route;
	size_t chain[2];
	struct plugin *plugins;
	struct store *store;
	struct dispatcher *d;
};

static void rig_up(struct rig *g, const char *json1, const char *json2)
{
	memset(g, 0, sizeof *g);
	char err[1024];
	g->pcs[0] = (struct plugin_conf){.name = "c1", .path = so, .config_json = (char *)json1};
	g->pcs[1] = (struct plugin_conf){.name = "c2", .path = so, .config_json = (char *)json2};
	g->cfg.nplugins = json2 ? 2 : 1;
	g->cfg.plugins = g->pcs;
	g->chain[0] = 0;
	g->chain[1] = 1;
	g->route = (struct route){.path = "/webhooks/livekit", .chain = g->chain,
				  .nchain = g->cfg.nplugins};
	g->plugins = calloc(2, sizeof *g->plugins);
	for (size_t i = 0; i < g->cfg.nplugins; i++)
		ck_assert_msg(plugin_load(&g->plugins[i], &g->pcs[i], "/", err, sizeof err) == 0,
			      "%s", err);
	g->store = store_open(url, 0, 1, err, sizeof err);
	ck_assert_msg(g->store != NULL, "%s", err);
	g->d = dispatcher_new(&g->cfg, g->store, NULL, g->plugins, g->cfg.nplugins, err, sizeof err);
	ck_assert_msg(g->d != NULL, "%s", err);
	ck_assert_int_eq(dispatcher_start(g->d), 0);
}

static void rig_down(struct rig *g)
{
	dispatcher_free(g->d);
	free(g->plugins);
	store_close(g->store);
}

static int count_lines(const char *path, const char *prefix)
{
	char *text = tu_read(path, NULL);
	int n = 0;
	for (char *p = text; p && (p = strstr(p, prefix)); p++)
		if (p == text || p[-1] == '\n')
			n++;
	free(text);
	return n;
}

static void setup(void)
{
	dir = tu_tmpdir();
	snprintf(url, sizeof url, "sqlite:%s/d.db", dir);
	snprintf(rec1, sizeof rec1, "%s/c1.txt", dir);
	snprintf(rec2, sizeof rec2, "%s/c2.txt", dir);
	const char *p = getenv("TEST_PLUGINS");
	snprintf(so, sizeof so, "%s/counter.so", p ? p : "tests/plugins/.libs");
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
}

static void pg_setup(void)
{
	setup();
	tu_pg_create("t_dispatch", pgdb, sizeof pgdb, url, sizeof url);
}

static void pg_teardown(void)
{
	tu_pg_drop(pgdb);
	teardown();
}

/* How many journal rows the store holds for id, once the rig is down. */
static int journaled(const char *id)
{
	char err[256];
	struct store *s = store_open(url, 0, 0, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	int n = store_journal_find(s, id, NULL, NULL);
	store_close(s);
	return n;
}

START_TEST(duplicates_run_once)
{
	struct rig g;
	char cfg[4400];
	snprintf(cfg, sizeof cfg, "{\"file\":\"%s\"}", rec1);
	rig_up(&g, cfg, NULL);
	ck_assert_int_eq(submit(g.d, &g.route, "room_finished", "EV_a"), 200);
	ck_assert_int_eq(submit(g.d, &g.route, "room_finished", "EV_a"), 200);
	ck_assert_int_eq(submit(g.d, &g.route, "room_finished", "EV_b"), 200);
	ck_assert_int_eq(count_lines(rec1, "event room_finished EV_a"), 1);
	ck_assert_int_eq(count_lines(rec1, "event "), 2);
	rig_down(&g);
}
END_TEST

START_TEST(failure_rolls_back_the_event)
{
	struct rig g;
	char cfg[4400];
	snprintf(cfg, sizeof cfg, "{\"file\":\"%s\",\"fail_type\":\"bad\"}", rec1);
	rig_up(&g, cfg, NULL);
	ck_assert_int_eq(submit(g.d, &g.route, "bad", "EV_x"), 500);
	ck_assert_int_eq(submit(g.d, &g.route, "good", "EV_y"), 200);
	rig_down(&g);
	ck_assert_int_eq(journaled("EV_x"), 0);
	ck_assert_int_eq(journaled("EV_y"), 1);
}
END_TEST

/* Waits, up to 5 s, for the plugin to record a line. */
static void wait_line(const char *path, const char *prefix)
{
	for (int i = 0; i < 500 && count_lines(path, prefix) == 0; i++)
		usleep(10 * 1000);
	ck_assert_int_eq(count_lines(path, prefix), 1);
}

/* Holds the dispatcher with a "slow" event, which the plugin (sleep_type:
 * slow) records, then sleeps 300 ms on: what is submitted once this returns
 * waits, and is taken as one batch. */
static void hold(struct rig *g, struct pending *p, const char *id)
{
	submit_async(p, g->d, &g->route, "slow", id);
	char line[64];
	snprintf(line, sizeof line, "event slow %s", id);
	wait_line(rec1, line);
}

/* Events that wait together make one batch, which PostgreSQL journals in
 * one round trip. An event whose plugin fails takes its row back, and a
 * later event of the batch with the same id is then journaled and run, not
 * answered as a duplicate of it. */
START_TEST(one_batch_with_a_failure_and_its_retry)
{
	struct rig g;
	char cfg[4400];
	snprintf(cfg, sizeof cfg, "{\"file\":\"%s\",\"fail_type\":\"bad\",\"sleep_type\":\"slow\"}",
		 rec1);
	rig_up(&g, cfg, NULL);
	struct pending p[5];
	hold(&g, &p[0], "EV_s");
	submit_async(&p[1], g.d, &g.route, "bad", "EV_x");
	submit_async(&p[2], g.d, &g.route, "good", "EV_x");
	submit_async(&p[3], g.d, &g.route, "good", "EV_x");
	submit_async(&p[4], g.d, &g.route, "good", "EV_y");
	ck_assert_int_eq(wait_for(&p[0]), 200);
	ck_assert_int_eq(wait_for(&p[1]), 500);
	ck_assert_int_eq(wait_for(&p[2]), 200);
	ck_assert_str_eq(p[2].j.result, "accepted");
	ck_assert_int_eq(wait_for(&p[3]), 200);
	ck_assert_str_eq(p[3].j.result, "duplicate");
	ck_assert_int_eq(wait_for(&p[4]), 200);
	ck_assert_str_eq(p[4].j.result, "accepted");
	if (strncmp(url, "sqlite:", 7))
		ck_assert_int_eq(p[4].j.pre, 1); /* journaled with the batch */
	rig_down(&g);
	ck_assert_int_eq(count_lines(rec1, "event good EV_x"), 1);
	ck_assert_int_eq(count_lines(rec1, "event good EV_y"), 1);
	ck_assert_int_eq(journaled("EV_x"), 1);
	ck_assert_int_eq(journaled("EV_y"), 1);
}
END_TEST

/* A batch PostgreSQL cannot journal in one go (an id it refuses: not
 * UTF-8) is journaled one event at a time: only that event fails. */
START_TEST(a_batch_that_fails_goes_one_at_a_time)
{
	struct rig g;
	char cfg[4400];
	snprintf(cfg, sizeof cfg, "{\"file\":\"%s\",\"sleep_type\":\"slow\"}", rec1);
	rig_up(&g, cfg, NULL);
	struct pending p[4];
	hold(&g, &p[0], "EV_s");
	submit_async(&p[1], g.d, &g.route, "good", "EV_1");
	submit_async(&p[2], g.d, &g.route, "good", "EV_\xff");
	submit_async(&p[3], g.d, &g.route, "good", "EV_3");
	ck_assert_int_eq(wait_for(&p[0]), 200);
	ck_assert_int_eq(wait_for(&p[1]), 200);
	ck_assert_int_eq(wait_for(&p[2]), strncmp(url, "sqlite:", 7) ? 503 : 200);
	ck_assert_int_eq(wait_for(&p[3]), 200);
	rig_down(&g);
	ck_assert_int_eq(count_lines(rec1, "event good EV_1"), 1);
	ck_assert_int_eq(count_lines(rec1, "event good EV_3"), 1);
}
END_TEST

/* A query (a GET route) between events of one batch: it is not journaled,
 * and the events around it keep their own answers. */
START_TEST(a_query_between_events_in_one_batch)
{
	struct rig g;
	char cfg[4400];
	snprintf(cfg, sizeof cfg, "{\"file\":\"%s\",\"sleep_type\":\"slow\"}", rec1);
	rig_up(&g, cfg, NULL);
	struct route q = {.path = "/calls/{id}", .is_get = 1, .chain = g.chain, .nchain = 1};
	struct pending p[5];
	hold(&g, &p[0], "EV_s");
	submit_async(&p[1], g.d, &g.route, "good", "EV_a");
	p[2] = (struct pending){.w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}};
	p[2].j = (struct job){.route = &q, .is_query = 1, .body = "", .done = on_done,
			      .ctx = &p[2].w};
	snprintf(p[2].j.param, sizeof p[2].j.param, "EV_a");
	snprintf(p[2].j.request_id, sizeof p[2].j.request_id, "t-query");
	dispatcher_submit(g.d, &p[2].j);
	submit_async(&p[3], g.d, &g.route, "good", "EV_s"); /* journaled by the batch before */
	submit_async(&p[4], g.d, &g.route, "good", "EV_c");
	ck_assert_int_eq(wait_for(&p[0]), 200);
	ck_assert_int_eq(wait_for(&p[1]), 200);
	ck_assert_str_eq(p[1].j.result, "accepted");
	ck_assert_int_eq(wait_for(&p[2]), 404); /* no plugin here answers queries */
	ck_assert_int_eq(p[2].j.pre, -1);
	ck_assert_int_eq(wait_for(&p[3]), 200);
	ck_assert_str_eq(p[3].j.result, "duplicate");
	ck_assert_int_eq(wait_for(&p[4]), 200);
	ck_assert_str_eq(p[4].j.result, "accepted");
	if (strncmp(url, "sqlite:", 7)) {
		ck_assert_int_eq(p[1].j.pre, 1);
		ck_assert_int_eq(p[3].j.pre, 0);
		ck_assert_int_eq(p[4].j.pre, 1);
	}
	rig_down(&g);
	ck_assert_int_eq(count_lines(rec1, "event good EV_a"), 1);
	ck_assert_int_eq(count_lines(rec1, "event good EV_c"), 1);
	ck_assert_int_eq(count_lines(rec1, "event good EV_s"), 0);
	ck_assert_int_eq(journaled(""), 0);
}
END_TEST

/* The connection to PostgreSQL is lost while a batch journaled at once runs
 * its plugins: no event of it is answered 200 or left journaled, and the
 * next batch runs on a new connection. */
START_TEST(pg_connection_lost_in_a_journaled_batch)
{
	struct rig g;
	char cfg[4400];
	snprintf(cfg, sizeof cfg,
		 "{\"file\":\"%s\",\"sleep_type\":\"slow\",\"timer_ms\":60000}", rec1);
	rig_up(&g, cfg, NULL);
	struct pending p[5];
	hold(&g, &p[0], "EV_0");
	submit_async(&p[1], g.d, &g.route, "slow", "EV_1");
	submit_async(&p[2], g.d, &g.route, "good", "EV_2");
	submit_async(&p[3], g.d, &g.route, "good", "EV_3");
	ck_assert_int_eq(wait_for(&p[0]), 200);
	wait_line(rec1, "event slow EV_1"); /* its plugin sleeps, then sets a timer */
	ck_assert_int_eq(tu_pg_kill(pgdb), 1);
	ck_assert_int_eq(wait_for(&p[1]), 500); /* the timer could not be set */
	ck_assert_int_eq(p[1].j.pre, -1);
	ck_assert_int_eq(wait_for(&p[2]), 503);
	ck_assert_int_eq(wait_for(&p[3]), 503);
	ck_assert_int_eq(count_lines(rec1, "event good"), 0);
	ck_assert_int_eq(submit(g.d, &g.route, "good", "EV_4"), 200);
	rig_down(&g);
	ck_assert_int_eq(journaled("EV_0"), 1);
	ck_assert_int_eq(journaled("EV_1"), 0);
	ck_assert_int_eq(journaled("EV_2"), 0);
	ck_assert_int_eq(journaled("EV_3"), 0);
	ck_assert_int_eq(journaled("EV_4"), 1);
}
END_TEST

START_TEST(derived_events_reach_later_plugins_only)
{
	struct rig g;
	char c1[4400], c2[4400];
	snprintf(c1, sizeof c1, "{\"file\":\"%s\",\"emit\":\"aftercall.test\"}", rec1);
	snprintf(c2, sizeof c2, "{\"file\":\"%s\"}", rec2);
	rig_up(&g, c1, c2);
	ck_assert_int_eq(submit(g.d, &g.route, "room_finished", "EV_d"), 200);
	ck_assert_int_eq(count_lines(rec1, "event "), 1);
	ck_assert_int_eq(count_lines(rec2, "event room_finished EV_d"), 1);
	ck_assert_int_eq(count_lines(rec2, "event aftercall.test EV_d"), 1);
	rig_down(&g);
}
END_TEST

START_TEST(timers_survive_a_restart)
{
	struct rig g;
	char cfg[4400];
	snprintf(cfg, sizeof cfg, "{\"file\":\"%s\",\"timer_ms\":400}", rec1);
	rig_up(&g, cfg, NULL);
	ck_assert_int_eq(submit(g.d, &g.route, "room_finished", "EV_t"), 200);
	rig_down(&g); /* stopped before the timer fell due */
	ck_assert_int_eq(count_lines(rec1, "timer "), 0);

	rig_up(&g, cfg, NULL);
	for (int i = 0; i < 100 && count_lines(rec1, "timer ") == 0; i++)
		usleep(50 * 1000);
	ck_assert_int_eq(count_lines(rec1, "timer EV_t room_finished"), 1);
	rig_down(&g);
	/* Fired once, then deleted: a restart does not fire it again. */
	rig_up(&g, cfg, NULL);
	usleep(300 * 1000);
	rig_down(&g);
	ck_assert_int_eq(count_lines(rec1, "timer "), 1);
}
END_TEST

START_TEST(services_refused_outside_callbacks)
{
	struct rig g;
	char cfg[4400];
	snprintf(cfg, sizeof cfg, "{\"file\":\"%s\"}", rec1);
	rig_up(&g, cfg, NULL);
	ck_assert_int_eq(host_services.kv_put(g.plugins[0].host, "k", "v", 1, 0), -1);
	ck_assert_int_eq(host_services.audit(g.plugins[0].host, "x", NULL, NULL), -1);
	rig_down(&g);
}
END_TEST

START_TEST(log_enabled_follows_the_level)
{
	ck_assert_uint_ge(host_services.struct_size,
			  offsetof(ac_host_services, log_enabled) + sizeof host_services.log_enabled);
	log_set_level(AC_LOG_WARN);
	ck_assert_int_eq(host_services.log_enabled(NULL, AC_LOG_INFO), 0);
	ck_assert_int_eq(host_services.log_enabled(NULL, AC_LOG_WARN), 1);
	ck_assert_int_eq(host_services.log_enabled(NULL, AC_LOG_ERROR), 1);
	log_set_level(AC_LOG_DEBUG);
	ck_assert_int_eq(host_services.log_enabled(NULL, AC_LOG_DEBUG), 1);
	log_set_level(AC_LOG_INFO);
	ck_assert_int_eq(host_services.log_enabled(NULL, AC_LOG_DEBUG), 0);
}
END_TEST

/* The header lines a plugin's on_attempt gives replace the stored lines of
 * their names, whatever the case, or are added; a malformed one changes
 * nothing. */
START_TEST(attempt_headers_replace_by_name)
{
	char err[200];
	struct send_req *r = send_req_new(
		1, "POST", "http://127.0.0.1:9/x",
		"[\"Content-Type: application/json\",\"webhook-timestamp: 1\",\"X-A: 1\","
		"\"X-A: 2\",\"webhook-signature: v1,old\"]",
		"key-1", "{}", 2, err, sizeof err);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(send_req_set_headers(r, "", err, sizeof err), 0);
	ck_assert_int_eq(send_req_set_headers(r, "X-A: 3\nno colon\n", err, sizeof err), -1);
	ck_assert_str_eq(err, "not a header line: \"no colon\"");
	ck_assert_int_eq(send_req_set_headers(r, "X-B:\tvalue\x01\n", err, sizeof err), -1);
	ck_assert_int_eq(send_req_set_headers(r, ": no name\n", err, sizeof err), -1);
	ck_assert_int_eq(send_req_set_headers(r, "X A: 1\n", err, sizeof err), -1);
	ck_assert_int_eq(send_req_set_headers(r,
					      "Webhook-Timestamp: 600\n"
					      "webhook-signature: v1,new\nx-a: 9\nX-New: yes",
					      err, sizeof err),
			 0);
	const char *want[] = {"Content-Type: application/json",
			      "Idempotency-Key: key-1",
			      "Expect:",
			      "Webhook-Timestamp: 600",
			      "webhook-signature: v1,new",
			      "x-a: 9",
			      "X-New: yes",
			      NULL};
	for (size_t i = 0; want[i] || r->headers[i]; i++) {
		ck_assert_ptr_nonnull(want[i]);
		ck_assert_ptr_nonnull(r->headers[i]);
		ck_assert_str_eq(r->headers[i], want[i]);
	}
	send_req_free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dispatch");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, duplicates_run_once);
	tcase_add_test(tc, failure_rolls_back_the_event);
	tcase_add_test(tc, derived_events_reach_later_plugins_only);
	tcase_add_test(tc, timers_survive_a_restart);
	tcase_add_test(tc, services_refused_outside_callbacks);
	tcase_add_test(tc, log_enabled_follows_the_level);
	tcase_add_test(tc, one_batch_with_a_failure_and_its_retry);
	tcase_add_test(tc, a_batch_that_fails_goes_one_at_a_time);
	tcase_add_test(tc, a_query_between_events_in_one_batch);
	tcase_add_test(tc, attempt_headers_replace_by_name);
	suite_add_tcase(s, tc);
	if ((tc = tu_pg_tcase(s, "dispatch", pg_setup, pg_teardown))) {
		tcase_add_test(tc, duplicates_run_once);
		tcase_add_test(tc, failure_rolls_back_the_event);
		tcase_add_test(tc, one_batch_with_a_failure_and_its_retry);
		tcase_add_test(tc, a_batch_that_fails_goes_one_at_a_time);
		tcase_add_test(tc, a_query_between_events_in_one_batch);
		tcase_add_test(tc, pg_connection_lost_in_a_journaled_batch);
	}
	return tu_run(s);
}
