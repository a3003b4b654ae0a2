/*
 * The `forward` plugin: Standard Webhooks signatures against the standard's
 * own test vector, secrets, patterns, the stable webhook id and the body;
 * then the plugin itself (forward.c is compiled in) against a fake host:
 * config errors, what on_event puts in the outbox, what on_delivery audits.
 */
#include <check.h>
#include <stdarg.h>
#include <string.h>

#include <jansson.h>

#include <aftercall/plugin.h>

#include "sign.h"
#include "testutil.h"

/*
 * The reference vector of the Standard Webhooks JavaScript library's own
 * test "sign function works" (libraries/javascript/src/webhook.test.ts in
 * the standard-webhooks/standard-webhooks repository); the npm package
 * standardwebhooks 1.1.1 signs the same.
 */
#define REF_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define REF_MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define REF_TS 1614265330
#define REF_PAYLOAD "{\"test\": 2432232314}"
#define REF_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

START_TEST(reference_vector)
{
	unsigned char *key;
	size_t keylen;
	const char *why;
	char sig[FWD_SIG_LEN + 1];
	ck_assert_int_eq(fwd_secret_key(REF_SECRET, &key, &keylen, &why), 0);
	ck_assert_uint_eq(keylen, 24);
	ck_assert_int_eq(fwd_sign(key, keylen, REF_MSG_ID, REF_TS, REF_PAYLOAD, strlen(REF_PAYLOAD),
				  sig),
			 0);
	ck_assert_str_eq(sig, REF_SIG);
	/* One byte more of body, a second later, another id: all differ. */
	fwd_sign(key, keylen, REF_MSG_ID, REF_TS, REF_PAYLOAD " ", strlen(REF_PAYLOAD) + 1, sig);
	ck_assert_str_ne(sig, REF_SIG);
	fwd_sign(key, keylen, REF_MSG_ID, REF_TS + 1, REF_PAYLOAD, strlen(REF_PAYLOAD), sig);
	ck_assert_str_ne(sig, REF_SIG);
	fwd_sign(key, keylen, "msg_p5jXN8AQM9LWM0D4loKWxJeK", REF_TS, REF_PAYLOAD,
		 strlen(REF_PAYLOAD), sig);
	ck_assert_str_ne(sig, REF_SIG);
	free(key);
}
END_TEST

/* A secret without the prefix is the key itself; the expected value is what
 * standardwebhooks 1.1.1 gives with new Webhook(secret, {format: "raw"}). */
START_TEST(raw_secret)
{
	unsigned char *key;
	size_t keylen;
	const char *why;
	char sig[FWD_SIG_LEN + 1];
	ck_assert_int_eq(fwd_secret_key(REF_SECRET + 6, &key, &keylen, &why), 0);
	ck_assert_uint_eq(keylen, 32);
	ck_assert_int_eq(memcmp(key, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 32), 0);
	fwd_sign(key, keylen, REF_MSG_ID, REF_TS, REF_PAYLOAD, strlen(REF_PAYLOAD), sig);
	ck_assert_str_eq(sig, "v1,ELhqG0Ku1gwOc1f4jyKdp3SFGFLAOdJ9bvpWLciCakI=");
	free(key);
}
END_TEST

START_TEST(secret_forms)
{
	static const struct {
		const char *secret, *why;
	} bad[] = {
		{"", "must not be empty"},
		{"whsec_", "the part after whsec_ is empty"},
		{"whsec_abc", "the part after whsec_ is not valid base64"},
		{"whsec_QQ=", "the part after whsec_ is not valid base64"},
		{"whsec_QR==", "the part after whsec_ is not valid base64"}, /* stray bits */
		{"whsec_QQ==QQ==", "the part after whsec_ is not valid base64"},
		{"whsec_QUJD RA==", "the part after whsec_ is not valid base64"},
		{"whsec_QUJD-A==", "the part after whsec_ is not valid base64"},
	};
	unsigned char *key;
	size_t keylen;
	const char *why;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_msg(fwd_secret_key(bad[i].secret, &key, &keylen, &why) == -1, "%zu", i);
		ck_assert_ptr_null(key);
		ck_assert_str_eq(why, bad[i].why);
	}
	ck_assert_int_eq(fwd_secret_key("whsec_QQ==", &key, &keylen, &why), 0);
	ck_assert_uint_eq(keylen, 1);
	ck_assert_int_eq(key[0], 'A');
	free(key);
	ck_assert_int_eq(fwd_secret_key("whsec_QUI=", &key, &keylen, &why), 0);
	ck_assert_uint_eq(keylen, 2);
	ck_assert_int_eq(memcmp(key, "AB", 2), 0);
	free(key);
	/* Only the exact prefix counts: "WHSEC_" is a raw secret. */
	ck_assert_int_eq(fwd_secret_key("WHSEC_QQ==", &key, &keylen, &why), 0);
	ck_assert_uint_eq(keylen, 10);
	free(key);
}
END_TEST

START_TEST(patterns)
{
	static const struct {
		const char *pat, *type;
		int match;
	} cases[] = {
		{"room_finished", "room_finished", 1},
		{"room_finished", "room_finished2", 0},
		{"room_finished", "room_started", 0},
		{"room_finished", "", 0},
		{"aftercall.email.*", "aftercall.email.approved", 1},
		{"aftercall.email.*", "aftercall.email.rejected.late", 1},
		{"aftercall.email.*", "aftercall.email.", 0},
		{"aftercall.email.*", "aftercall.email", 0},
		{"aftercall.email.*", "aftercall.emails.x", 0},
		{"aftercall.email.*", "room_finished", 0},
		{"room_*", "room_started", 1},
		{"room_*", "participant_joined", 0},
		{"*", "room_finished", 1},
		{"*", "a", 1},
		{"*", "", 0},
		{"a.b", "a.B", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		ck_assert_msg(fwd_pattern_match(cases[i].pat, cases[i].type) == cases[i].match,
			      "%s ~ %s", cases[i].pat, cases[i].type);

	const char *why = NULL;
	ck_assert_int_eq(fwd_pattern_check("aftercall.email.*", &why), 0);
	ck_assert_int_eq(fwd_pattern_check("*", &why), 0);
	ck_assert_int_eq(fwd_pattern_check("room_finished", &why), 0);
	ck_assert_int_eq(fwd_pattern_check("", &why), -1);
	ck_assert_str_eq(why, "must not be empty");
	ck_assert_int_eq(fwd_pattern_check("aftercall.*.approved", &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "'*' may only end a pattern"));
	ck_assert_int_eq(fwd_pattern_check("**", &why), -1);
	ck_assert_int_eq(fwd_pattern_check("room finished", &why), -1);
	ck_assert_str_eq(why, "must not contain white space");
}
END_TEST

START_TEST(stable_id)
{
	char a[FWD_MSG_ID_LEN + 1], b[FWD_MSG_ID_LEN + 1];
	fwd_msg_id("/webhooks/livekit", "EV_eugWmGhovZmm", "room_finished", 0, a);
	/* SHA-256 of "/webhooks/livekit\0EV_eugWmGhovZmm\0room_finished\0" "0\0"
	 * (Python's hashlib): the id never changes between versions. */
	ck_assert_str_eq(a, "msg_2541ed9879b95a1b4a936bbb0599946453b51cc280639eacb00a723af1f7cc22");
	ck_assert_uint_eq(strlen(a), FWD_MSG_ID_LEN);
	fwd_msg_id("/webhooks/livekit", "EV_eugWmGhovZmm", "room_finished", 0, b);
	ck_assert_str_eq(a, b);
	/* Each part of the tuple counts. */
	fwd_msg_id("/webhooks/livekit", "EV_eugWmGhovZmm", "room_finished", 1, b);
	ck_assert_str_ne(a, b);
	fwd_msg_id("/webhooks/livekit", "EV_eugWmGhovZmm", "aftercall.email.approved", 0, b);
	ck_assert_str_ne(a, b);
	fwd_msg_id("/webhooks/livekit", "EV_other", "room_finished", 0, b);
	ck_assert_str_ne(a, b);
	fwd_msg_id("/webhooks/other", "EV_eugWmGhovZmm", "room_finished", 0, b);
	ck_assert_str_ne(a, b);
	/* Fields are delimited: moving a character across a boundary is
	 * another id. */
	fwd_msg_id("r", "ab", "c", 0, a);
	fwd_msg_id("r", "a", "bc", 0, b);
	ck_assert_str_ne(a, b);
	fwd_msg_id("r", "a", "b1", 0, a);
	fwd_msg_id("r", "a", "b", 10, b);
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(timestamps)
{
	char iso[FWD_ISO_LEN + 1];
	fwd_iso8601(0, iso);
	ck_assert_str_eq(iso, "1970-01-01T00:00:00.000Z");
	fwd_iso8601(1614265330123LL, iso);
	ck_assert_str_eq(iso, "2021-02-25T15:02:10.123Z");
	fwd_iso8601(1614265330007LL, iso);
	ck_assert_str_eq(iso, "2021-02-25T15:02:10.007Z");
}
END_TEST

/* Parses a built body and checks type and timestamp; returns its data. */
static json_t *body_data(const char *out, size_t len, const char *type)
{
	ck_assert_uint_eq(strlen(out), len);
	json_error_t e;
	json_t *j = json_loadb(out, len, JSON_ALLOW_NUL, &e);
	ck_assert_msg(j != NULL, "%s: %s", out, e.text);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), type);
	ck_assert_str_eq(json_string_value(json_object_get(j, "timestamp")),
			 "2021-02-25T15:02:10.123Z");
	ck_assert_uint_eq(json_object_size(j), 3);
	json_t *d = json_incref(json_object_get(j, "data"));
	json_decref(j);
	return d;
}

START_TEST(bodies)
{
	size_t len;
	/* Valid JSON goes in byte for byte: spacing and number spelling kept. */
	const char ev[] =
		"{\"event\": \"room_finished\", \"n\": 1.50, \"room\": {\"name\": \"r\"}}\n";
	char *out = fwd_body("room_finished", 1614265330123LL, ev, strlen(ev), &len);
	ck_assert_str_eq(out, "{\"type\":\"room_finished\","
			      "\"timestamp\":\"2021-02-25T15:02:10.123Z\","
			      "\"data\":{\"event\": \"room_finished\", \"n\": 1.50, "
			      "\"room\": {\"name\": \"r\"}}\n}");
	json_decref(body_data(out, len, "room_finished"));
	free(out);

	/* Any JSON value, not only objects. */
	out = fwd_body("t", 1614265330123LL, "[1,2]", 5, &len);
	json_t *d = body_data(out, len, "t");
	ck_assert(json_is_array(d));
	json_decref(d);
	free(out);

	/* Not JSON: a string. */
	out = fwd_body("t", 1614265330123LL, "not json", 8, &len);
	d = body_data(out, len, "t");
	ck_assert_str_eq(json_string_value(d), "not json");
	json_decref(d);
	free(out);

	/* Trailing garbage, a NUL, bad UTF-8: still a string, still valid. */
	out = fwd_body("t", 1614265330123LL, "{} x", 4, &len);
	d = body_data(out, len, "t");
	ck_assert_str_eq(json_string_value(d), "{} x");
	json_decref(d);
	free(out);
	out = fwd_body("t", 1614265330123LL, "a\0b\xff\xc0\x80\xed\xa0\x80z", 10, &len);
	d = body_data(out, len, "t");
	/* Each byte that starts no valid sequence becomes one U+FFFD. */
	ck_assert_uint_eq(json_string_length(d), 3 + 6 * 3 + 1);
	ck_assert_int_eq(memcmp(json_string_value(d), "a\0b\xef\xbf\xbd", 6), 0);
	json_decref(d);
	free(out);

	/* A type that needs escaping, and an empty body. */
	out = fwd_body("a\"b\\c", 1614265330123LL, "", 0, &len);
	d = body_data(out, len, "a\"b\\c");
	ck_assert_str_eq(json_string_value(d), "");
	json_decref(d);
	free(out);
}
END_TEST

START_TEST(url_redaction)
{
	char out[128];
	fwd_url_redact("https://user:pw@crm.example.com:8443/hooks/a?token=x#f", out, sizeof out);
	ck_assert_str_eq(out, "https://crm.example.com:8443/hooks/a");
	fwd_url_redact("http://127.0.0.1:9/x", out, sizeof out);
	ck_assert_str_eq(out, "http://127.0.0.1:9/x");
	fwd_url_redact("http://h?k=@v", out, sizeof out);
	ck_assert_str_eq(out, "http://h");
	fwd_url_redact("https://h/p@q", out, sizeof out);
	ck_assert_str_eq(out, "https://h/p@q");
}
END_TEST

/* ---- the plugin against a fake host ------------------------------------ */

extern const ac_plugin aftercall_plugin;

struct ac_host {
	int enqueued, duplicates, audits;
	ac_request req[4];
	char *bodies[4], *headers[4][16], *keys[4], *tags[4], *urls[4];
	char audit_kind[64], audit_subject[128], audit_detail[512];
	char logs[8192];
	int refuse;
};

static struct ac_host fake;

static void fake_log(ac_host *h, ac_log_level level, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(h->logs);
	va_start(ap, fmt);
	vsnprintf(h->logs + n, sizeof h->logs - n, fmt, ap);
	va_end(ap);
	n = strlen(h->logs);
	if (n + 1 < sizeof h->logs)
		strcat(h->logs, "\n");
}

static int64_t fake_clock_ms = 1614265330500LL;

static int64_t fake_now(ac_host *h)
{
	(void)h;
	return fake_clock_ms;
}

static int fake_audit(ac_host *h, const char *kind, const char *subject, const char *detail)
{
	h->audits++;
	snprintf(h->audit_kind, sizeof h->audit_kind, "%s", kind);
	snprintf(h->audit_subject, sizeof h->audit_subject, "%s", subject ? subject : "(null)");
	snprintf(h->audit_detail, sizeof h->audit_detail, "%s", detail ? detail : "");
	return 0;
}

/* Copies what it is given (the request is borrowed) and, like the outbox,
 * answers 0 to a key it has already seen. */
static int fake_enqueue(ac_host *h, const ac_request *r)
{
	if (h->refuse)
		return -1;
	for (int i = 0; i < h->enqueued; i++)
		if (!strcmp(h->keys[i], r->idempotency_key)) {
			h->duplicates++;
			return 0;
		}
	ck_assert_int_lt(h->enqueued, 4);
	int i = h->enqueued++;
	h->req[i] = *r;
	h->bodies[i] = strndup(r->body, r->body_len);
	h->keys[i] = strdup(r->idempotency_key);
	h->tags[i] = strdup(r->tag);
	h->urls[i] = strdup(r->url);
	int k = 0;
	for (; r->headers[k]; k++) {
		ck_assert_int_lt(k, 15);
		h->headers[i][k] = strdup(r->headers[k]);
	}
	h->headers[i][k] = NULL;
	return 1;
}

static void fake_reset(void)
{
	for (int i = 0; i < fake.enqueued; i++) {
		free(fake.bodies[i]);
		free(fake.keys[i]);
		free(fake.tags[i]);
		free(fake.urls[i]);
		for (int k = 0; fake.headers[i][k]; k++)
			free(fake.headers[i][k]);
	}
	memset(&fake, 0, sizeof fake);
}

static const ac_host_services fake_svc = {
	.abi_major = AC_PLUGIN_ABI_MAJOR,
	.abi_minor = AC_PLUGIN_ABI_MINOR,
	.struct_size = sizeof(ac_host_services),
	.log = fake_log,
	.now_ms = fake_now,
	.audit = fake_audit,
	.outbox_enqueue = fake_enqueue,
};

static const char *header(int i, const char *name)
{
	size_t n = strlen(name);
	for (int k = 0; fake.headers[i][k]; k++)
		if (!strncmp(fake.headers[i][k], name, n) && fake.headers[i][k][n] == ':')
			return fake.headers[i][k] + n + 2;
	return NULL;
}

START_TEST(config_errors)
{
	static const struct {
		const char *config, *err;
	} cases[] = {
		{"[]", "config is not a JSON object"},
		{"{}", "targets: must be a non-empty list of {url, events, secret}"},
		{"{\"targets\":[]}", "targets: must be a non-empty list of {url, events, secret}"},
		{"{\"targets\":[],\"extra\":1}", "extra: unknown key"},
		{"{\"targets\":[1]}", "targets[0]: must be a mapping (url, events, secret)"},
		{"{\"targets\":[{\"events\":[\"*\"],\"secret\":\"s\"}]}",
		 "targets[0].url: is required"},
		{"{\"targets\":[{\"url\":\"ftp://h/\",\"events\":[\"*\"],\"secret\":\"s\"}]}",
		 "targets[0].url: must be an http(s) URL"},
		{"{\"targets\":[{\"url\":\"https://\",\"events\":[\"*\"],\"secret\":\"s\"}]}",
		 "targets[0].url: must be an http(s) URL"},
		{"{\"targets\":[{\"url\":\"https://h/a b\",\"events\":[\"*\"],\"secret\":\"s\"}]}",
		 "targets[0].url: must be an http(s) URL"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"],\"secret\":\"s\"},"
		 "{\"url\":\"mailto:x\",\"events\":[\"*\"],\"secret\":\"s\"}]}",
		 "targets[1].url: must be an http(s) URL"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"secret\":\"s\"}]}",
		 "targets[0].events: is required"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[],\"secret\":\"s\"}]}",
		 "targets[0].events: must be a non-empty list of event types"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"a\",\"b.*.c\"],"
		 "\"secret\":\"s\"}]}",
		 "targets[0].events[1]: '*' may only end a pattern (\"aftercall.email.*\", \"*\")"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[3],\"secret\":\"s\"}]}",
		 "targets[0].events[0]: must be a string"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"]}]}",
		 "targets[0].secret: is required"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"],\"secret\":12345}]}",
		 "targets[0].secret: must be a string (quote it in the YAML file)"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"],\"secret\":\"\"}]}",
		 "targets[0].secret: must not be empty"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"],"
		 "\"secret\":\"whsec_s3cr3t!\"}]}",
		 "targets[0].secret: the part after whsec_ is not valid base64"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"],\"secret\":\"s\","
		 "\"headers\":\"X: 1\"}]}",
		 "targets[0].headers: must be a list of \"Name: value\" lines"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"],\"secret\":\"s\","
		 "\"headers\":[\"X: 1\",\"no colon\"]}]}",
		 "targets[0].headers[1]: must be a \"Name: value\" line"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"],\"secret\":\"s\","
		 "\"headers\":[\"X: 1\\r\\nY: 2\"]}]}",
		 "targets[0].headers[0]: must not contain a line break"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"],\"secret\":\"s\","
		 "\"headers\":[\"Webhook-Signature: v1,x\"]}]}",
		 "targets[0].headers[0]: is set by forward itself"},
		{"{\"targets\":[{\"url\":\"http://h/\",\"events\":[\"*\"],\"secret\":\"s\","
		 "\"evnets\":[\"x\"]}]}",
		 "targets[0].evnets: unknown key"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char err[256] = "";
		void *st = NULL;
		fake_reset();
		ck_assert_msg(aftercall_plugin.init(&fake_svc, &fake, cases[i].config, &st, err,
						    sizeof err) == -1,
			      "%zu accepted", i);
		ck_assert_str_eq(err, cases[i].err);
		/* The message never quotes the secret. */
		ck_assert_ptr_null(strstr(err, "s3cr3t"));
	}
}
END_TEST

#define GOOD_CONFIG                                                                                \
	"{\"targets\":[{\"url\":\"https://u:pw@crm.example.com/hooks?k=1\",\"events\":"            \
	"[\"aftercall.email.*\",\"room_finished\"],\"secret\":\"" REF_SECRET "\","                 \
	"\"headers\":[\"X-Extra: 1\"]},"                                                           \
	"{\"url\":\"http://127.0.0.1:9/b\",\"events\":[\"room_*\"],\"secret\":\"raw-s3cr3t\"}]}"

START_TEST(events_and_deliveries)
{
	char err[256] = "";
	void *st = NULL;
	fake_reset();
	ck_assert_int_eq(aftercall_plugin.init(&fake_svc, &fake, GOOD_CONFIG, &st, err, sizeof err),
			 0);
	const char body[] = "{\"event\":\"room_finished\",\"id\":\"EV_1\"}";
	ac_event ev = {
		.route = "/webhooks/livekit",
		.type = "room_finished",
		.id = "EV_1",
		.body = body,
		.body_len = strlen(body),
		.received_ms = 1614265330123LL,
		.request_id = "req",
	};
	ck_assert_int_eq(aftercall_plugin.on_event(st, &ev, err, sizeof err), AC_CONTINUE);
	/* Both targets match room_finished; each gets its own message. */
	ck_assert_int_eq(fake.enqueued, 2);
	ck_assert_str_eq(fake.urls[0], "https://u:pw@crm.example.com/hooks?k=1");
	ck_assert_str_eq(fake.urls[1], "http://127.0.0.1:9/b");
	ck_assert_str_eq(fake.tags[0], "0:EV_1");
	ck_assert_str_eq(fake.tags[1], "1:EV_1");
	ck_assert_str_eq(fake.req[0].method, "POST");
	char id[FWD_MSG_ID_LEN + 1], sig[FWD_SIG_LEN + 1];
	fwd_msg_id("/webhooks/livekit", "EV_1", "room_finished", 0, id);
	ck_assert_str_eq(fake.keys[0], id);
	ck_assert_str_eq(header(0, "webhook-id"), id);
	ck_assert_str_ne(fake.keys[1], id);
	ck_assert_str_eq(header(0, "webhook-timestamp"), "1614265330");
	ck_assert_str_eq(header(0, "Content-Type"), "application/json");
	ck_assert_str_eq(header(0, "X-Extra"), "1");
	ck_assert_ptr_null(header(1, "X-Extra"));
	ck_assert_str_eq(fake.bodies[0],
			 "{\"type\":\"room_finished\",\"timestamp\":\"2021-02-25T15:02:10.123Z\","
			 "\"data\":{\"event\":\"room_finished\",\"id\":\"EV_1\"}}");
	ck_assert_str_eq(fake.bodies[0], fake.bodies[1]);
	/* The signature is the one the reference key gives over id.ts.body. */
	unsigned char *key;
	size_t keylen;
	const char *why;
	ck_assert_int_eq(fwd_secret_key(REF_SECRET, &key, &keylen, &why), 0);
	fwd_sign(key, keylen, id, 1614265330, fake.bodies[0], strlen(fake.bodies[0]), sig);
	free(key);
	ck_assert_str_eq(header(0, "webhook-signature"), sig);
	ck_assert_int_eq(fwd_secret_key("raw-s3cr3t", &key, &keylen, &why), 0);
	fwd_sign(key, keylen, fake.keys[1], 1614265330, fake.bodies[1], strlen(fake.bodies[1]),
		 sig);
	free(key);
	ck_assert_str_eq(header(1, "webhook-signature"), sig);

	/* The same event again: same ids, nothing new queued. */
	ck_assert_int_eq(aftercall_plugin.on_event(st, &ev, err, sizeof err), AC_CONTINUE);
	ck_assert_int_eq(fake.enqueued, 2);
	ck_assert_int_eq(fake.duplicates, 2);

	/* A derived event of the same id: only the first target, a new id. */
	ac_event der = ev;
	der.type = "aftercall.email.approved";
	der.body = "{}";
	der.body_len = 2;
	der.depth = 1;
	ck_assert_int_eq(aftercall_plugin.on_event(st, &der, err, sizeof err), AC_CONTINUE);
	ck_assert_int_eq(fake.enqueued, 3);
	ck_assert_str_eq(fake.tags[2], "0:EV_1");
	ck_assert_str_ne(fake.keys[2], fake.keys[0]);

	/* Types no target wants. */
	der.type = "participant_joined";
	ck_assert_int_eq(aftercall_plugin.on_event(st, &der, err, sizeof err), AC_CONTINUE);
	der.type = "aftercall.emails";
	ck_assert_int_eq(aftercall_plugin.on_event(st, &der, err, sizeof err), AC_CONTINUE);
	ck_assert_int_eq(fake.enqueued, 3);

	/* The outbox refusing is a failure: the event is rolled back. */
	fake.refuse = 1;
	der.type = "room_started";
	ck_assert_int_eq(aftercall_plugin.on_event(st, &der, err, sizeof err), AC_FAIL);
	ck_assert_str_eq(err, "forward: outbox_enqueue failed for target 1");
	fake.refuse = 0;

	/* Outcomes: audited with the event as subject, the URL without its
	 * credentials. */
	ac_delivery d = {.tag = "0:EV_1", .idempotency_key = id, .status = 204, .attempts = 2,
			 .ok = 1, .body = "", .error = ""};
	ck_assert_int_eq(aftercall_plugin.on_delivery(st, &d), 0);
	ck_assert_str_eq(fake.audit_kind, "forward.delivered");
	ck_assert_str_eq(fake.audit_subject, "EV_1");
	json_t *dj = json_loads(fake.audit_detail, 0, NULL);
	ck_assert_ptr_nonnull(dj);
	ck_assert_str_eq(json_string_value(json_object_get(dj, "webhook_id")), id);
	ck_assert_str_eq(json_string_value(json_object_get(dj, "url")),
			 "https://crm.example.com/hooks");
	ck_assert_int_eq(json_integer_value(json_object_get(dj, "target")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(dj, "status")), 204);
	ck_assert_int_eq(json_integer_value(json_object_get(dj, "attempts")), 2);
	json_decref(dj);
	d = (ac_delivery){.tag = "1:EV_1", .idempotency_key = fake.keys[1], .status = 500,
			  .attempts = 10, .ok = 0, .body = "", .error = "HTTP 500"};
	ck_assert_int_eq(aftercall_plugin.on_delivery(st, &d), 0);
	ck_assert_str_eq(fake.audit_kind, "forward.failed");
	ck_assert_ptr_nonnull(strstr(fake.audit_detail, "\"error\":\"HTTP 500\""));
	/* A tag from elsewhere: audited all the same, without a subject. */
	d.tag = "junk";
	ck_assert_int_eq(aftercall_plugin.on_delivery(st, &d), 0);
	ck_assert_str_eq(fake.audit_subject, "(null)");
	ck_assert_int_eq(fake.audits, 3);

	/* No secret, no credential of a URL in any log line. */
	ck_assert_ptr_nonnull(strstr(fake.logs, "https://crm.example.com/hooks"));
	ck_assert_ptr_null(strstr(fake.logs, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
	ck_assert_ptr_null(strstr(fake.logs, "s3cr3t"));
	ck_assert_ptr_null(strstr(fake.logs, "pw@"));
	ck_assert_ptr_null(strstr(fake.logs, "k=1"));
	aftercall_plugin.destroy(st);
	fake_reset();
}
END_TEST

/* Each attempt is signed again at the time of the attempt (on_attempt),
 * with the key of the target the row was queued for. */
START_TEST(attempts_signed_anew)
{
	char err[256] = "";
	void *st = NULL;
	fake_reset();
	fake_clock_ms = 1614265330500LL;
	ck_assert_int_eq(aftercall_plugin.init(&fake_svc, &fake, GOOD_CONFIG, &st, err, sizeof err),
			 0);
	const char body[] = "{\"event\":\"room_finished\",\"id\":\"EV_2\"}";
	ac_event ev = {.route = "/webhooks/livekit", .type = "room_finished", .id = "EV_2",
		       .body = body, .body_len = strlen(body), .received_ms = 1614265330123LL};
	ck_assert_int_eq(aftercall_plugin.on_event(st, &ev, err, sizeof err), AC_CONTINUE);
	ck_assert_int_eq(fake.enqueued, 2);
	ac_request req = {.url = fake.urls[0], .body = fake.bodies[0],
			  .body_len = strlen(fake.bodies[0]), .idempotency_key = fake.keys[0],
			  .tag = fake.tags[0]};
	/* Ten minutes on: a timestamp of then, and a signature over it. */
	fake_clock_ms += 600 * 1000;
	char out[512], want[512], sig[FWD_SIG_LEN + 1];
	unsigned char *key;
	size_t keylen;
	const char *why;
	ck_assert_int_eq(fwd_secret_key(REF_SECRET, &key, &keylen, &why), 0);
	fwd_sign(key, keylen, fake.keys[0], 1614265930, fake.bodies[0], strlen(fake.bodies[0]),
		 sig);
	free(key);
	snprintf(want, sizeof want, "webhook-timestamp: 1614265930\nwebhook-signature: %s\n", sig);
	ck_assert_int_eq(aftercall_plugin.on_attempt(st, &req, 2, out, sizeof out), 0);
	ck_assert_str_eq(out, want);
	ck_assert_str_ne(sig, header(0, "webhook-signature"));
	/* A tag naming another target, the URL this one's: the URL decides. */
	req.tag = "1:EV_2";
	ck_assert_int_eq(aftercall_plugin.on_attempt(st, &req, 3, out, sizeof out), 0);
	ck_assert_str_eq(out, want);
	/* The second target signs with its own key. */
	req = (ac_request){.url = fake.urls[1], .body = fake.bodies[1],
			   .body_len = strlen(fake.bodies[1]), .idempotency_key = fake.keys[1],
			   .tag = fake.tags[1]};
	ck_assert_int_eq(fwd_secret_key("raw-s3cr3t", &key, &keylen, &why), 0);
	fwd_sign(key, keylen, fake.keys[1], 1614265930, fake.bodies[1], strlen(fake.bodies[1]),
		 sig);
	free(key);
	ck_assert_int_eq(aftercall_plugin.on_attempt(st, &req, 2, out, sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, sig));
	/* A target gone from the config: nothing written, sent as stored. */
	req.url = "https://elsewhere.example.com/";
	out[0] = '\0';
	ck_assert_int_eq(aftercall_plugin.on_attempt(st, &req, 2, out, sizeof out), 0);
	ck_assert_str_eq(out, "");
	/* No room for the lines: refused, saying so. */
	req.url = fake.urls[1];
	ck_assert_int_eq(aftercall_plugin.on_attempt(st, &req, 2, out, 40), -1);
	ck_assert_str_eq(out, "no room for the headers");
	aftercall_plugin.destroy(st);
	fake_reset();
	fake_clock_ms = 1614265330500LL;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("forward");
	TCase *tc = tcase_create("sign");
	tcase_add_test(tc, reference_vector);
	tcase_add_test(tc, raw_secret);
	tcase_add_test(tc, secret_forms);
	tcase_add_test(tc, patterns);
	tcase_add_test(tc, stable_id);
	tcase_add_test(tc, timestamps);
	tcase_add_test(tc, bodies);
	tcase_add_test(tc, url_redaction);
	suite_add_tcase(s, tc);
	tc = tcase_create("plugin");
	tcase_add_test(tc, config_errors);
	tcase_add_test(tc, events_and_deliveries);
	tcase_add_test(tc, attempts_signed_anew);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
