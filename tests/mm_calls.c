/*
 * Every MultiMail call the client knows, made for real against the double
 * (through prism when the URL points at it): send, the idempotent repeat,
 * list emails, get email, get thread, reply, cancel, oversight pending and
 * decide, and the error answers explained.
 *
 * Usage: mm_calls API_URL KEY MAILBOX_ID   (prints ok/FAIL lines and
 * "N passed, N failed")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"

static int passed, failed;

static void check(const char *name, int cond, const char *detail)
{
	if (cond) {
		passed++;
		printf("ok   %s\n", name);
	} else {
		failed++;
		printf("FAIL %s%s%s\n", name, detail ? ": " : "", detail ? detail : "");
	}
}

static json_t *call(const struct mm_client *c, const char *method, const char *path,
		    const char *body, int want, const char *name)
{
	struct mm_answer a;
	char err[512];
	if (mm_call(c, method, path, body, &a, err, sizeof err)) {
		check(name, 0, err);
		return NULL;
	}
	char detail[600];
	snprintf(detail, sizeof detail, "status %d: %.400s", a.status, a.body ? a.body : "");
	check(name, a.status == want, detail);
	json_t *j = a.body ? json_loads(a.body, 0, NULL) : NULL;
	mm_answer_free(&a);
	return j;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s API_URL KEY MAILBOX_ID\n", argv[0]);
		return 2;
	}
	struct mm_client c = {.api_url = argv[1], .key = argv[2], .timeout = 10};
	const char *mbx = argv[3];
	char err[256], *path, *body;
	const char *to[] = {"lena@example.com"};

	body = mm_send_body((struct mm_addrs){to, 1}, (struct mm_addrs){0}, (struct mm_addrs){0},
			    "Your visit", "Thanks for *calling*.", "calls-key-1", err, sizeof err);
	path = mm_path(MM_PATH_SEND, mbx, NULL);
	json_t *sent = call(&c, "POST", path, body, 202, "send answers 202");
	const char *id = json_string_value(json_object_get(sent, "id"));
	const char *thread = json_string_value(json_object_get(sent, "thread_id"));
	check("send gives an id and a thread", id && thread, NULL);
	json_t *again = call(&c, "POST", path, body, 200, "the same idempotency_key answers 200");
	check("... already_sent, same id",
	      again && !strcmp(json_string_value(json_object_get(again, "status")), "already_sent") &&
		      id && !strcmp(json_string_value(json_object_get(again, "id")), id),
	      NULL);
	free(body);
	free(path);

	path = mm_list_emails_path(mbx, 10, NULL, err, sizeof err);
	json_t *list = call(&c, "GET", path, NULL, 200, "list emails");
	check("the list holds the email", json_array_size(json_object_get(list, "emails")) >= 1, NULL);
	free(path);
	check("a limit of 0 is refused before any call",
	      mm_list_emails_path(mbx, 0, NULL, err, sizeof err) == NULL, NULL);
	check("a limit of 101 too", mm_list_emails_path(mbx, 101, NULL, err, sizeof err) == NULL,
	      NULL);

	path = mm_path(MM_PATH_EMAIL, mbx, id ? id : "x");
	json_t *one = call(&c, "GET", path, NULL, 200, "get email");
	check("... with its markdown",
	      one && !strcmp(json_string_value(json_object_get(one, "markdown")) ?: "",
			     "Thanks for *calling*."),
	      NULL);
	free(path);

	path = mm_path(MM_PATH_THREAD, mbx, thread ? thread : "x");
	json_t *thr = call(&c, "GET", path, NULL, 200, "get thread");
	check("... with its message count", json_integer_value(json_object_get(thr, "message_count")) >= 1,
	      NULL);
	free(path);

	json_t *pending = call(&c, "GET", MM_PATH_PENDING, NULL, 200, "oversight pending");
	check("... lists the held email", json_array_size(json_object_get(pending, "emails")) >= 1,
	      NULL);

	path = mm_path(MM_PATH_CANCEL, mbx, id ? id : "x");
	json_t *cancelled = call(&c, "POST", path, NULL, 200, "cancel (no body)");
	check("... cancelled",
	      cancelled && !strcmp(json_string_value(json_object_get(cancelled, "status")) ?: "",
				   "cancelled"),
	      NULL);
	free(path);

	/* A second email, rejected by a human; then a reply to it. */
	body = mm_send_body((struct mm_addrs){to, 1}, (struct mm_addrs){0}, (struct mm_addrs){0},
			    "Second", "Second body.", "calls-key-2", err, sizeof err);
	path = mm_path(MM_PATH_SEND, mbx, NULL);
	json_t *second = call(&c, "POST", path, body, 202, "a second send");
	free(body);
	free(path);
	const char *id2 = json_string_value(json_object_get(second, "id"));
	body = mm_decide_body(id2 ? id2 : "x", "reject", "wrong recipient", err, sizeof err);
	json_t *decided = call(&c, "POST", MM_PATH_DECIDE, body, 200, "decide: reject");
	check("... rejected",
	      decided && !strcmp(json_string_value(json_object_get(decided, "status")) ?: "",
				 "rejected"),
	      NULL);
	free(body);
	body = mm_reply_body("A reply.", "calls-reply-1", err, sizeof err);
	path = mm_path(MM_PATH_REPLY, mbx, id2 ? id2 : "x");
	json_decref(call(&c, "POST", path, body, 202, "reply"));
	free(body);
	free(path);

	/* Errors, explained by status. */
	struct mm_answer a;
	path = mm_path(MM_PATH_EMAIL, mbx, "em_does_not_exist");
	if (mm_call(&c, "GET", path, NULL, &a, err, sizeof err) == 0) {
		char why[512];
		mm_explain(a.status, a.body, a.retry_after, why, sizeof why);
		check("an unknown email is explained as 404",
		      a.status == 404 && strstr(why, "no such mailbox or email (404)"), why);
		mm_answer_free(&a);
	}
	free(path);

	json_decref(sent);
	json_decref(again);
	json_decref(list);
	json_decref(one);
	json_decref(thr);
	json_decref(pending);
	json_decref(cancelled);
	json_decref(second);
	json_decref(decided);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
