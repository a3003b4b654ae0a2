#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "testutil.h"

static const char *one[] = {"ada@example.com"};
#define ADDRS(a) ((struct mm_addrs){(a), sizeof(a) / sizeof *(a)})
#define NONE ((struct mm_addrs){NULL, 0})

START_TEST(send_body_uses_the_spec_names)
{
	char err[256];
	const char *cc[] = {"boss@example.com"};
	char *b = mm_send_body(ADDRS(one), ADDRS(cc), NONE, "Hello", "**Hi**", "k-1", err, sizeof err);
	ck_assert_msg(b != NULL, "%s", err);
	json_t *j = json_loads(b, 0, NULL);
	ck_assert(json_is_array(json_object_get(j, "to")));
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "to"), 0)),
			 "ada@example.com");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "cc"), 0)),
			 "boss@example.com");
	ck_assert_ptr_null(json_object_get(j, "bcc"));
	ck_assert_str_eq(json_string_value(json_object_get(j, "markdown")), "**Hi**");
	ck_assert_ptr_null(json_object_get(j, "body"));
	ck_assert_str_eq(json_string_value(json_object_get(j, "idempotency_key")), "k-1");
	ck_assert_uint_eq(json_object_size(j), 5);
	json_decref(j);
	free(b);
}
END_TEST

START_TEST(send_body_limits)
{
	char err[256];
	const char *many[51];
	for (int i = 0; i < 51; i++)
		many[i] = "x@example.com";
	ck_assert_ptr_null(mm_send_body(ADDRS(many), NONE, NONE, "s", "m", "k", err, sizeof err));
	ck_assert_str_eq(err, "to: 51 addresses, at most 50 allowed");
	struct mm_addrs fifty = {many, 50};
	char *ok = mm_send_body(fifty, NONE, NONE, "s", "m", "k", err, sizeof err);
	ck_assert_ptr_nonnull(ok);
	free(ok);

	char subject[1000];
	memset(subject, 'a', 999);
	subject[999] = '\0';
	ck_assert_ptr_null(mm_send_body(ADDRS(one), NONE, NONE, subject, "m", "k", err, sizeof err));
	subject[998] = '\0';
	ok = mm_send_body(ADDRS(one), NONE, NONE, subject, "m", "k", err, sizeof err);
	ck_assert_ptr_nonnull(ok);
	free(ok);
	/* 998 characters of two bytes each are still 998 characters. */
	char wide[2 * 998 + 1];
	for (int i = 0; i < 998; i++)
		memcpy(wide + 2 * i, "\xc3\xa9", 2);
	wide[2 * 998] = '\0';
	ok = mm_send_body(ADDRS(one), NONE, NONE, wide, "m", "k", err, sizeof err);
	ck_assert_ptr_nonnull(ok);
	free(ok);

	ck_assert_ptr_null(mm_send_body(ADDRS(one), NONE, NONE, "a\r\nBcc: x", "m", "k", err,
					sizeof err));
	ck_assert_str_eq(err, "subject: must be one line");
	ck_assert_ptr_null(mm_send_body(ADDRS(one), NONE, NONE, "s", "", "k", err, sizeof err));
	ck_assert_ptr_null(mm_send_body(ADDRS(one), NONE, NONE, "s", "m", NULL, err, sizeof err));
	ck_assert_ptr_null(mm_send_body(NONE, NONE, NONE, "s", "m", "k", err, sizeof err));
	const char *named[] = {"Ada <ada@example.com>"};
	ck_assert_ptr_null(mm_send_body(ADDRS(named), NONE, NONE, "s", "m", "k", err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "is not an email address"));
}
END_TEST

START_TEST(addresses)
{
	ck_assert(mm_valid_address("a.b+c@example.co.uk"));
	ck_assert(!mm_valid_address("example.com"));
	ck_assert(!mm_valid_address("a@b"));
	ck_assert(!mm_valid_address("a@@b.c"));
	ck_assert(!mm_valid_address("a b@c.d"));
	ck_assert(!mm_valid_address("a@b.c\r\nBcc: x@y.z"));
	ck_assert(!mm_valid_address(""));
}
END_TEST

START_TEST(other_bodies)
{
	char err[256];
	char *b = mm_reply_body("thanks", "r-1", err, sizeof err);
	ck_assert_str_eq(b, "{\"markdown\":\"thanks\",\"idempotency_key\":\"r-1\"}");
	free(b);
	b = mm_decide_body("em_1", "approve", NULL, err, sizeof err);
	ck_assert_str_eq(b, "{\"email_id\":\"em_1\",\"action\":\"approve\"}");
	free(b);
	ck_assert_ptr_null(mm_decide_body("em_1", "maybe", NULL, err, sizeof err));
	b = mm_mailbox_body("agent", "Acme", NULL, NULL, err, sizeof err);
	ck_assert_str_eq(b, "{\"address_local\":\"agent\",\"display_name\":\"Acme\"}");
	free(b);
	ck_assert_ptr_null(mm_mailbox_body("a b", NULL, NULL, NULL, err, sizeof err));
	/* A whole address, on the tenant's own domain. */
	b = mm_mailbox_body("inbox@custom.example", NULL, NULL, NULL, err, sizeof err);
	ck_assert_str_eq(b, "{\"address_local\":\"inbox@custom.example\"}");
	free(b);
	ck_assert_ptr_null(mm_mailbox_body("inbox@", NULL, NULL, NULL, err, sizeof err));
	ck_assert_str_eq(err, "address_local: \"inbox@\" is not an email address");
	ck_assert_ptr_null(mm_mailbox_body("a@b@c.example", NULL, NULL, NULL, err, sizeof err));
}
END_TEST

START_TEST(paths_and_messages)
{
	char *p = mm_path("/v1/mailboxes/%s/reply/%s", "mbx_1", "em/../x");
	ck_assert_str_eq(p, "/v1/mailboxes/mbx_1/reply/em%2F..%2Fx");
	free(p);
	char m[512];
	mm_explain(401, "{\"error\":\"Invalid API key\"}", -1, m, sizeof m);
	ck_assert_str_eq(m, "MultiMail refused the API key (401): check the key: Invalid API key");
	/* A 403: MultiMail's own words when it gave some, the usual causes when
	 * it did not. */
	mm_explain(403, "{\"error\":\"Invalid approval code\"}", -1, m, sizeof m);
	ck_assert_str_eq(m, "MultiMail refused (403): Invalid approval code");
	mm_explain(403, NULL, -1, m, sizeof m);
	ck_assert_str_eq(m, "MultiMail refused (403): the key lacks the scope for this call, or the "
			    "mailbox is read_only");
	mm_explain(429, "{\"error\":\"Rate limit\"}", 12, m, sizeof m);
	ck_assert_str_eq(m, "MultiMail is rate limiting (429): retry in 12 s: Rate limit");
	mm_explain(404, "not json", -1, m, sizeof m);
	ck_assert_str_eq(m, "MultiMail has no such mailbox or email (404)");
	mm_explain(503, NULL, -1, m, sizeof m);
	ck_assert_str_eq(m, "MultiMail failed (503): try again later");
	mm_explain(409, "{\"error\":\"Duplicate\"}", -1, m, sizeof m);
	ck_assert_str_eq(m, "MultiMail reports a conflict (409): Duplicate");
}
END_TEST

/* A server for one request that promises 100 bytes of body, sends 12 and
 * hangs up. */
static void *cut_short(void *arg)
{
	int lfd = *(int *)arg;
	int fd = accept(lfd, NULL, NULL);
	if (fd >= 0) {
		char buf[4096];
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		(void)n;
		static const char ans[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
					  "Content-Length: 100\r\n\r\n{\"emails\": [";
		ssize_t w = send(fd, ans, sizeof ans - 1, MSG_NOSIGNAL);
		(void)w;
		close(fd);
	}
	return NULL;
}

/* An answer cut off mid-body is no answer: mm_call fails and keeps none of
 * it (its callers free an answer only on success). */
START_TEST(call_cut_short_keeps_nothing)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, cut_short, &lfd), 0);

	char url[64], err[300];
	snprintf(url, sizeof url, "http://127.0.0.1:%u", ntohs(sa.sin_port));
	struct mm_client c = {.api_url = url, .key = "mm_live_test", .timeout = 10};
	struct mm_answer a;
	ck_assert_int_eq(mm_call(&c, "GET", "/v1/mailboxes", NULL, &a, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "cannot reach MultiMail at http://127.0.0.1:") != NULL, "%s", err);
	ck_assert_ptr_null(a.body);
	ck_assert_uint_eq(a.len, 0);
	pthread_join(t, NULL);
	close(lfd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("multimail_api");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, send_body_uses_the_spec_names);
	tcase_add_test(tc, send_body_limits);
	tcase_add_test(tc, addresses);
	tcase_add_test(tc, other_bodies);
	tcase_add_test(tc, paths_and_messages);
	tcase_add_test(tc, call_cut_short_keeps_nothing);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
