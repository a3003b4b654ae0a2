#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testutil.h"

static char *dir;
static char path[4200];

static void setup(void)
{
	dir = tu_tmpdir();
	snprintf(path, sizeof path, "%s/aftercall.yaml", dir);
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
}

/* Loads text; returns the config or NULL, with errors in *errs. */
static struct config *load(const char *text, struct strbuf *errs)
{
	tu_write(path, text);
	sb_init(errs);
	return config_load(path, errs);
}

static const char minimal[] = "listen: 127.0.0.1:8080\n"
			      "store: sqlite:/tmp/x.db\n"
			      "livekit:\n"
			      "  keys:\n"
			      "    APIa: secret-a\n"
			      "    APIb: ${AC_TEST_SECRET}\n"
			      "plugins:\n"
			      "  - name: log\n";

/* ABI 1.7: routes a plugin offers, added after the LiveKit one when the
 * file has no routes section. */
START_TEST(plugin_routes_are_added)
{
	struct strbuf errs;
	struct config *c = load("listen: 127.0.0.1:8080\n"
				"store: sqlite:/tmp/x.db\n"
				"livekit: {keys: {APIa: secret-a}}\n"
				"plugins:\n  - name: first\n  - name: mm\n  - name: last\n",
				&errs);
	ck_assert_msg(c != NULL, "%s", errs.data);
	ck_assert_int_eq(c->routes_given, 0);
	ck_assert_int_eq(config_add_routes(c, "plugin mm",
					   "[{\"path\":\"/v1/t\",\"event_type\":\"transcript\","
					   "\"verify\":[\"livekit\",{\"bearer\":\"${NOT_A_VAR}-0123456789\"}]},"
					   "{\"path\":\"/v1/h/{email}\",\"method\":\"GET\","
					   "\"verify\":\"livekit\"}]",
					   1, &errs),
			 0);
	ck_assert_uint_eq(c->nroutes, 3);
	const struct route *t = &c->routes[1], *h = &c->routes[2];
	ck_assert_str_eq(t->path, "/v1/t");
	ck_assert_str_eq(t->event_type, "transcript");
	ck_assert_uint_eq(t->nverify, 2);
	ck_assert_int_eq(t->verify[1].kind, VERIFY_BEARER);
	/* The plugin's text is taken as it is: no ${VAR} expansion. */
	ck_assert_str_eq(t->verify[1].secret, "${NOT_A_VAR}-0123456789");
	/* Through the plugin and those after it, not those before. */
	ck_assert_uint_eq(t->nchain, 2);
	ck_assert_uint_eq(t->chain[0], 1);
	ck_assert_uint_eq(t->chain[1], 2);
	ck_assert_int_eq(h->is_get, 1);
	ck_assert_uint_eq(h->nchain, 2);
	ck_assert_uint_eq(c->routes[0].nchain, 3);

	/* A path taken already, a plugins key, a bad verifier and bad JSON are
	 * each refused, naming the plugin. */
	static const char *const bad[][2] = {
		{"[{\"path\":\"/v1/t\",\"verify\":\"livekit\"}]", "route /v1/t is defined twice"},
		{"[{\"path\":\"/x\",\"verify\":\"livekit\",\"plugins\":[\"first\"]}]",
		 "routes[0].plugins: unknown key"},
		{"[{\"path\":\"/y\",\"verify\":\"nope\"}]", "routes[0].verify: expected livekit"},
		{"[{\"path\":", "plugin mm: routes: not JSON"},
		{"{\"path\":\"/z\"}", "routes: expected a list"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sb_free(&errs);
		ck_assert_int_eq(config_add_routes(c, "plugin mm", bad[i][0], 1, &errs), -1);
		ck_assert_msg(errs.data && strstr(errs.data, bad[i][1]) &&
				      !strncmp(errs.data, "plugin mm", 9),
			      "case %zu: %s", i, errs.data ? errs.data : "(none)");
	}
	config_free(c);
	sb_free(&errs);

	c = load("listen: 127.0.0.1:8080\nstore: sqlite:/tmp/x.db\n"
		 "livekit: {keys: {APIa: secret-a}}\nplugins: [{name: log}]\n"
		 "routes: [{path: /a, verify: livekit}]\n",
		 &errs);
	ck_assert_msg(c != NULL, "%s", errs.data);
	ck_assert_int_eq(c->routes_given, 1);
	config_free(c);
	sb_free(&errs);
}
END_TEST

START_TEST(minimal_with_defaults)
{
	setenv("AC_TEST_SECRET", "from-env", 1);
	struct strbuf errs;
	struct config *c = load(minimal, &errs);
	ck_assert_msg(c != NULL, "%s", errs.data);
	ck_assert_str_eq(c->listen_host, "127.0.0.1");
	ck_assert_uint_eq(c->listen_port, 8080);
	ck_assert_str_eq(c->store, "sqlite:/tmp/x.db");
	ck_assert_uint_eq(c->nkeys, 2);
	ck_assert_str_eq(c->keys[0].key, "APIa");
	ck_assert_str_eq(c->keys[1].secret, "from-env");
	ck_assert_uint_eq(c->body_limit, 1024 * 1024);
	ck_assert_int_eq(c->leeway, 60);
	ck_assert_uint_eq(c->read_timeout, 10);
	ck_assert_uint_eq(c->request_timeout, 30);
	ck_assert_uint_eq(c->nplugins, 1);
	ck_assert_str_eq(c->plugins[0].config_json, "{}");
	ck_assert_ptr_null(c->plugins[0].path);
	/* No routes section: POST /webhooks/livekit verified as LiveKit,
	 * through every plugin. */
	ck_assert_uint_eq(c->nroutes, 1);
	ck_assert_str_eq(c->routes[0].path, "/webhooks/livekit");
	ck_assert_uint_eq(c->routes[0].nverify, 1);
	ck_assert_int_eq(c->routes[0].verify[0].kind, VERIFY_LIVEKIT);
	ck_assert_uint_eq(c->routes[0].nchain, 1);
	config_free(c);
	sb_free(&errs);
}
END_TEST

/* A whole request's time counts from the previous answer on a kept-alive
 * connection, which may have waited read_timeout: so it is three times
 * read_timeout by default, and a value given must be more. */
START_TEST(request_timeout_after_read_timeout)
{
	static const char head[] = "listen: 127.0.0.1:8080\nstore: sqlite:/tmp/x.db\n"
				   "livekit: {keys: {APIa: secret-a}}\nplugins: [{name: log}]\n";
	static const struct {
		const char *limits;
		unsigned want;
		const char *error;
	} cases[] = {
		{"limits: {read_timeout: 60}\n", 180, NULL},
		{"limits: {request_timeout: 11}\n", 11, NULL},
		{"limits: {read_timeout: 20, request_timeout: 20}\n", 0,
		 ":5: limits.request_timeout: must be more than limits.read_timeout (20), got 20"},
		{"limits: {request_timeout: 1}\n", 0,
		 ":5: limits.request_timeout: expected a whole number from 2 to 10800"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char text[512];
		snprintf(text, sizeof text, "%s%s", head, cases[i].limits);
		struct strbuf errs;
		struct config *c = load(text, &errs);
		if (cases[i].error) {
			ck_assert_ptr_null(c);
			ck_assert_msg(strstr(errs.data, cases[i].error) != NULL, "case %zu: %s", i,
				      errs.data);
		} else {
			ck_assert_msg(c != NULL, "case %zu: %s", i, errs.data);
			ck_assert_uint_eq(c->request_timeout, cases[i].want);
			config_free(c);
		}
		sb_free(&errs);
	}
}
END_TEST

/* SIGHUP: which limits a reload takes, and which need a restart. */
START_TEST(limits_a_reload_takes)
{
	static const char head[] = "listen: 127.0.0.1:8080\nstore: sqlite:/tmp/x.db\n"
				   "livekit: {keys: {APIa: secret-a}}\nplugins: [{name: log}]\n";
	static const struct {
		const char *limits;
		const char *restart; /* NULL: taken by a reload */
	} cases[] = {
		{"limits: {body_size: 1000}\n", NULL},
		{"limits: {request_timeout: 99}\n", NULL},
		{"limits: {read_timeout: 20}\n", "limits (read_timeout, connections or threads)"},
		{"limits: {connections: 7}\n", "limits (read_timeout, connections or threads)"},
		{"limits: {threads: 3}\n", "limits (read_timeout, connections or threads)"},
	};
	struct strbuf errs;
	struct config *was = load(head, &errs);
	ck_assert_msg(was != NULL, "%s", errs.data);
	sb_free(&errs);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char text[512];
		snprintf(text, sizeof text, "%s%s", head, cases[i].limits);
		struct config *now = load(text, &errs);
		ck_assert_msg(now != NULL, "case %zu: %s", i, errs.data);
		const char *why = config_restart_needed(was, now);
		if (cases[i].restart)
			ck_assert_msg(why && !strcmp(why, cases[i].restart), "case %zu: %s", i,
				      why ? why : "(taken)");
		else
			ck_assert_msg(why == NULL, "case %zu: needs a restart: %s", i, why);
		config_free(now);
		sb_free(&errs);
	}
	config_free(was);
}
END_TEST

START_TEST(missing_variable_is_named)
{
	unsetenv("AC_TEST_SECRET");
	struct strbuf errs;
	struct config *c = load(minimal, &errs);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(errs.data, "aftercall.yaml:6: livekit.keys.APIb: "
						"environment variable AC_TEST_SECRET is not set"));
	sb_free(&errs);
}
END_TEST

START_TEST(every_error_has_line_and_key)
{
	struct strbuf errs;
	struct config *c = load("listen: 127.0.0.1:99999\n"	      /* 1 */
				"store: mysql://x\n"		      /* 2 */
				"livekit:\n"			      /* 3 */
				"  keys: {}\n"			      /* 4 */
				"limits:\n"			      /* 5 */
				"  body_size: lots\n"		      /* 6 */
				"  read_timeout: 0\n"		      /* 7 */
				"plugins:\n"			      /* 8 */
				"  - name: log\n"		      /* 9 */
				"  - path: /x.so\n"		      /* 10 */
				"colour: blue\n"		      /* 11 */
				"routes:\n"			      /* 12 */
				"  - path: /hook\n"		      /* 13 */
				"    verify: {hmac: {header: X-S}}\n" /* 14 */
				"    plugins: [nope]\n",	      /* 15 */
				&errs);
	ck_assert_ptr_null(c);
	const char *want[] = {
		":1: listen: bad port \"99999\"",
		":2: store: expected sqlite:PATH",
		":4: livekit.keys: needs at least one key",
		":6: limits.body_size: expected a size such as 1MiB, got \"lots\"",
		":7: limits.read_timeout: expected a whole number from 1 to 3600",
		":10: plugins[1].name: required",
		":11: colour: unknown key",
		":14: routes[0].verify.hmac.secret: required",
		":15: routes[0].plugins: no plugin named \"nope\" in plugins",
	};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++)
		ck_assert_msg(strstr(errs.data, want[i]) != NULL, "missing '%s' in:\n%s", want[i],
			      errs.data);
	sb_free(&errs);
}
END_TEST

START_TEST(required_names)
{
	struct strbuf errs;
	struct config *c = load("limits: {}\n", &errs);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(errs.data, "listen: required"));
	ck_assert_ptr_nonnull(strstr(errs.data, "store: required"));
	ck_assert_ptr_nonnull(strstr(errs.data, "livekit.keys: required"));
	ck_assert_ptr_nonnull(strstr(errs.data, "plugins: required"));
	sb_free(&errs);
}
END_TEST

START_TEST(yaml_syntax_error_has_line)
{
	struct strbuf errs;
	struct config *c = load("listen: 1\nstore: [unclosed\n", &errs);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(errs.data, "YAML error"));
	sb_free(&errs);
}
END_TEST

/* A key given twice is an error at the second, in every mapping: the top
 * level, the LiveKit keys, a plugin's config. */
START_TEST(a_key_given_twice)
{
	setenv("AC_TEST_SECRET", "s", 1);
	struct strbuf errs;
	char text[1024];
	snprintf(text, sizeof text,
		 "%s"			       /* lines 1-8 */
		 "    config: {level: info, level: warn}\n" /* 9 */
		 "listen: 127.0.0.1:9090\n",		       /* 10 */
		 minimal);
	/* APIa again, on line 6 (in place of APIb) */
	char *b = strstr(text, "APIb: ${AC_TEST_SECRET}");
	memcpy(b, "APIa", 4);
	struct config *c = load(text, &errs);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(errs.data, "aftercall.yaml:10: listen: given twice (first on line 1)"),
		      "%s", errs.data);
	ck_assert_msg(strstr(errs.data, "aftercall.yaml:6: APIa: given twice (first on line 5)"),
		      "%s", errs.data);
	ck_assert_msg(strstr(errs.data, "aftercall.yaml:9: level: given twice (first on line 9)"),
		      "%s", errs.data);
	sb_free(&errs);
}
END_TEST

START_TEST(plugin_config_becomes_json)
{
	setenv("AC_TEST_SECRET", "s", 1);
	setenv("AC_TEST_TOKEN", "tok-from-env", 1);
	struct strbuf errs;
	char text[2048];
	snprintf(text, sizeof text,
		 "%s"
		 "    path: /opt/log.so\n"
		 "    config:\n"
		 "      n: 3\n"
		 "      r: 1.5\n"
		 "      b: true\n"
		 "      q: \"3\"\n"
		 "      z: ~\n"
		 "      token: ${AC_TEST_TOKEN}\n"
		 "      list: [a, 2]\n"
		 "      nested: {k: v}\n"
		 "limits: {body_size: 64KiB, connections: 10, threads: 3}\n"
		 "routes:\n"
		 "  - path: /webhooks/livekit\n"
		 "    verify: livekit\n"
		 "  - path: /hooks/mm\n"
		 "    verify:\n"
		 "      hmac: {header: X-MultiMail-Signature, prefix: 'sha256=', encoding: hex, "
		 "secret: whsec_abc}\n"
		 "    plugins: [log]\n"
		 "  - path: /v1/transcripts\n"
		 "    verify: [livekit, {bearer: bearer-token-0123456789}]\n"
		 "    event_type: transcript\n"
		 "    plugins: []\n",
		 minimal);
	struct config *c = load(text, &errs);
	ck_assert_msg(c != NULL, "%s", errs.data);
	ck_assert_str_eq(c->plugins[0].path, "/opt/log.so");
	json_t *j = json_loads(c->plugins[0].config_json, 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "n")), 3);
	ck_assert(json_real_value(json_object_get(j, "r")) == 1.5);
	ck_assert(json_is_true(json_object_get(j, "b")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "q")), "3");
	ck_assert(json_is_null(json_object_get(j, "z")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "token")), "tok-from-env");
	ck_assert_uint_eq(json_array_size(json_object_get(j, "list")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "nested"), "k")), "v");
	json_decref(j);
	ck_assert_uint_eq(c->body_limit, 64 * 1024);
	ck_assert_uint_eq(c->max_connections, 10);
	ck_assert_uint_eq(c->threads, 3);
	ck_assert_uint_eq(c->nroutes, 3);
	ck_assert_int_eq(c->routes[1].verify[0].kind, VERIFY_HMAC);
	ck_assert_str_eq(c->routes[1].verify[0].header, "X-MultiMail-Signature");
	ck_assert_str_eq(c->routes[1].verify[0].prefix, "sha256=");
	ck_assert_str_eq(c->routes[1].verify[0].secret, "whsec_abc");
	ck_assert_uint_eq(c->routes[2].nverify, 2);
	ck_assert_int_eq(c->routes[2].verify[0].kind, VERIFY_LIVEKIT);
	ck_assert_int_eq(c->routes[2].verify[1].kind, VERIFY_BEARER);
	ck_assert_str_eq(c->routes[2].event_type, "transcript");
	ck_assert_uint_eq(c->routes[2].nchain, 0);
	config_free(c);
	sb_free(&errs);
}
END_TEST

START_TEST(alias_bombs_are_refused)
{
	struct strbuf errs;
	char text[4096];
	snprintf(text, sizeof text,
		 "%s"
		 "    config:\n"
		 "      a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		 "      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		 "      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		 "      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		 "      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		 "      f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
		 minimal);
	setenv("AC_TEST_SECRET", "s", 1);
	struct config *c = load(text, &errs);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(errs.data, "more than 100000 values (aliases expanding?)"));
	sb_free(&errs);
}
END_TEST

START_TEST(sizes)
{
	size_t v;
	ck_assert_int_eq(config_parse_size("1MiB", &v), 0);
	ck_assert_uint_eq(v, 1048576);
	ck_assert_int_eq(config_parse_size("512", &v), 0);
	ck_assert_uint_eq(v, 512);
	ck_assert_int_eq(config_parse_size("2 KiB", &v), 0);
	ck_assert_uint_eq(v, 2048);
	ck_assert_int_eq(config_parse_size("1TB", &v), -1);
	ck_assert_int_eq(config_parse_size("-1", &v), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, minimal_with_defaults);
	tcase_add_test(tc, request_timeout_after_read_timeout);
	tcase_add_test(tc, missing_variable_is_named);
	tcase_add_test(tc, every_error_has_line_and_key);
	tcase_add_test(tc, required_names);
	tcase_add_test(tc, yaml_syntax_error_has_line);
	tcase_add_test(tc, a_key_given_twice);
	tcase_add_test(tc, plugin_config_becomes_json);
	tcase_add_test(tc, alias_bombs_are_refused);
	tcase_add_test(tc, sizes);
	tcase_add_test(tc, plugin_routes_are_added);
	tcase_add_test(tc, limits_a_reload_takes);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
