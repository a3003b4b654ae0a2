/* The multimail plugin's internals, shared by its files. */
#ifndef AC_MM_H
#define AC_MM_H

#include <stdint.h>

#include <jansson.h>

#include <aftercall/plugin.h>

#pragma GCC visibility push(hidden)

enum mm_trigger { TRIGGER_ROOM_FINISHED, TRIGGER_PARTICIPANT_LEFT };

struct mm {
	const ac_host_services *svc;
	ac_host *host;
	char *api_url; /* no trailing slash */
	char *api_key;
	char *mailbox_id;
	enum mm_trigger trigger;
	int64_t transcript_wait_ms;
	int64_t finish_grace_ms;
	int send_without_transcript; /* on_missing_transcript: send */
	char *missing_template;
	char *default_template;
	json_t *sender; /* the `sender` object templates see */
	char *transcript_type;
	int history_max;	/* threads in a contact's history */
	int64_t history_ttl_ms; /* how long a fetched thread counts as fresh */
	char *routes;		/* what routes() offers, as JSON */
};

/* ---- state in the host's key-value store (JSON values) ---- */
json_t *mm_load(struct mm *m, const char *key);
int mm_save(struct mm *m, const char *key, json_t *v, int64_t due_ms);
int mm_del(struct mm *m, const char *key);
/* "name" + hex SHA-256 of the parts joined by '|', cut to 32 hex digits. */
void mm_hash_key(char *out, size_t outlen, const char *prefix, const char *a, const char *b,
		 const char *c);
void mm_audit(struct mm *m, const char *kind, const char *room, json_t *detail);
/* Counts an email reaching `state` (aftercall_multimail_emails_total). */
void mm_count(struct mm *m, const char *state);
/* 1 when the host has a template of that name (one with front matter, not
 * a partial alone); the host's reason in why when not. */
int mm_template_exists(struct mm *m, const char *name, char *why, size_t whylen);

/* ---- correlate.c: sessions ---- */
ac_verdict mm_on_livekit(struct mm *m, const ac_event *ev, json_t *body, char *err,
			 size_t errlen);
ac_verdict mm_on_transcript(struct mm *m, const ac_event *ev, json_t *body, char *err,
			    size_t errlen);
int mm_on_session_timer(struct mm *m, const char *key);

/* ---- compose.c: recipient, render, send ---- */
/* Sends the session's follow-up(s) unless done already; marks it done. */
int mm_finish(struct mm *m, const char *skey, json_t *session);
/* The key of a session's timer: kind 'w' (transcript_wait) or 'g'
 * (finish_grace), for the session key skey ("s:..."). */
void mm_timer_key(char *out, size_t outlen, char kind, const char *skey);
int mm_on_send_outcome(struct mm *m, const char *ekey, const ac_delivery *d);
ac_verdict mm_on_webhook(struct mm *m, const ac_event *ev, json_t *body, char *err,
			 size_t errlen);

/* ---- history.c: returning callers ---- */
/* The contact's thread moved to the front of their history; fetched anew. */
int mm_touch_thread(struct mm *m, const char *contact, const char *thread_id);
/* The thread of ours the sender's address last had, for a reply whose
 * webhook names no thread: 0 and the id in out, or -1. */
int mm_sender_thread(struct mm *m, const char *from, char *out, size_t outlen);
int mm_on_thread_outcome(struct mm *m, const char *thread_id, const ac_delivery *d);
int mm_on_query(struct mm *m, const ac_query *q, ac_response *resp);

#pragma GCC visibility pop

#endif
