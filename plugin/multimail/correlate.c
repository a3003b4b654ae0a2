/*
 * Correlation: joining the end of a LiveKit session with the transcript
 * the agent posts, in whichever order they come.
 *
 * Sessions are keyed on the room sid, because LiveKit reuses room names:
 * "support" today and "support" tomorrow are two sessions. A transcript
 * that names only the room joins the latest sid seen under that name, or,
 * if none was seen yet, waits under name:<room> until an event brings the
 * sid and merges it, unless LiveKit created that room after the transcript
 * came (a later session under the same name).
 *
 * Trigger first: wait transcript_wait for the transcript (a durable timer),
 * then skip, or send with a template that needs no summary.
 * Transcript first: send when the trigger comes, or after finish_grace if
 * it never does (LiveKit drops webhooks when its queue backs up).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "mm.h"

/* The longest key a room name goes into, "g:name:<room>" (also "s:name:",
 * "w:name:"), must fit the host's 255-byte key limit. */
#define MAX_ROOM (255 - 7)
#define MAX_IDENTITY 256
#define MAX_SUMMARY (64 * 1024)

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void session_key(char *out, size_t n, const char *sid, const char *room)
{
	if (sid && *sid)
		snprintf(out, n, "s:%s", sid);
	else
		snprintf(out, n, "s:name:%s", room);
}

static json_t *new_session(struct mm *m, const char *sid, const char *room)
{
	return json_pack("{s:s, s:s, s:{}, s:b, s:b, s:I}", "sid", sid ? sid : "", "room", room,
			 "participants", "ended", 0, "done", 0, "at",
			 (json_int_t)m->svc->now_ms(m->host));
}

/* When LiveKit created the room, in ms: creationTimeMs, else creationTime
 * (seconds); protobuf's JSON writes both as strings. 0 when neither is. */
static int64_t room_created_ms(json_t *room)
{
	static const struct {
		const char *key;
		int64_t scale;
	} fields[] = {{"creationTimeMs", 1}, {"creationTime", 1000}};
	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
		json_t *v = json_object_get(room, fields[i].key);
		long long n = 0;
		if (json_is_integer(v)) {
			n = json_integer_value(v);
		} else if (json_is_string(v)) {
			char *end;
			n = strtoll(json_string_value(v), &end, 10);
			if (*end)
				n = 0;
		}
		if (n > 0 && n < INT64_MAX / 1000)
			return n * fields[i].scale;
	}
	return 0;
}

enum merged { MERGED_NOTHING, MERGED_TRANSCRIPT, MERGED_DONE };

/* Moves what a name-keyed session (a transcript that came before any event
 * of its room) gathered into the sid-keyed one. A room LiveKit created
 * after that transcript came is a later session under the same name, and
 * takes nothing. If the name-keyed session was already finished (its room's
 * end never came within finish_grace), this session is that one: it is
 * done too, or a late event would send its email a second time. */
static enum merged merge_named(struct mm *m, json_t *s, const char *room, int64_t created_ms)
{
	char nkey[300];
	session_key(nkey, sizeof nkey, NULL, room);
	json_t *named = mm_load(m, nkey);
	if (!named)
		return MERGED_NOTHING;
	int done = json_is_true(json_object_get(named, "done"));
	json_int_t at = json_integer_value(json_object_get(named, "at"));
	if (created_ms && at && created_ms > at) {
		if (done)
			mm_del(m, nkey); /* nobody will claim it now */
		json_decref(named);
		return MERGED_NOTHING;
	}
	enum merged what = MERGED_NOTHING;
	if (done) {
		json_object_set_new(s, "done", json_true());
		what = MERGED_DONE;
	} else if (json_object_get(named, "transcript") && !json_object_get(s, "transcript")) {
		json_object_set(s, "transcript", json_object_get(named, "transcript"));
		what = MERGED_TRANSCRIPT;
	}
	mm_del(m, nkey);
	char tkey[320];
	mm_timer_key(tkey, sizeof tkey, 'g', nkey);
	mm_del(m, tkey);
	json_decref(named);
	return what;
}

/* Starts the session's timer of that kind, due `after_ms` from now. */
static int start_timer(struct mm *m, char kind, const char *skey, int64_t after_ms)
{
	char key[320];
	mm_timer_key(key, sizeof key, kind, skey);
	return m->svc->kv_put(m->host, key, "", 0, m->svc->now_ms(m->host) + after_ms);
}

/* Stores the session (unless rc says a step already failed) and answers:
 * a failure rolls the event back so the sender retries. */
static ac_verdict save_session(struct mm *m, const char *skey, json_t *s, int rc, char *err,
			       size_t errlen)
{
	if (!rc)
		rc = mm_save(m, skey, s, 0);
	json_decref(s);
	if (rc) {
		snprintf(err, errlen, "cannot store the session");
		return AC_FAIL;
	}
	return AC_CONTINUE;
}

static int is_caller(json_t *s, const char *identity, int agent)
{
	if (agent)
		return 0;
	const char *caller = str(json_object_get(s, "transcript"), "participant");
	return !caller || !identity || !strcmp(caller, identity);
}

ac_verdict mm_on_livekit(struct mm *m, const ac_event *ev, json_t *body, char *err,
			 size_t errlen)
{
	json_t *room = json_object_get(body, "room");
	const char *sid = str(room, "sid"), *name = str(room, "name");
	if (!sid || !*sid || !name || !*name || strlen(sid) > MAX_ROOM || strlen(name) > MAX_ROOM)
		return AC_CONTINUE; /* not about a session we can key */
	char skey[300];
	session_key(skey, sizeof skey, sid, name);
	json_t *s = mm_load(m, skey);
	if (!s)
		s = new_session(m, sid, name);
	if (json_is_true(json_object_get(s, "done"))) {
		json_decref(s);
		return AC_CONTINUE;
	}
	enum merged merged = merge_named(m, s, name, room_created_ms(room));
	char nkey[300];
	snprintf(nkey, sizeof nkey, "n:%s", name);
	m->svc->kv_put(m->host, nkey, sid, strlen(sid), 0);
	if (str(room, "metadata"))
		json_object_set_new(s, "room_metadata", json_string(str(room, "metadata")));

	/* What each participant told us: the email attribute, the metadata. */
	json_t *p = json_object_get(body, "participant");
	const char *identity = str(p, "identity");
	int agent = 0;
	if (identity && *identity) {
		json_t *parts = json_object_get(s, "participants");
		json_t *rec = json_object_get(parts, identity);
		if (!rec) {
			rec = json_object();
			json_object_set_new(parts, identity, rec);
		}
		const char *kind = str(p, "kind");
		agent = kind && !strcmp(kind, "AGENT");
		json_object_set_new(rec, "agent", json_boolean(agent));
		if (str(p, "name"))
			json_object_set_new(rec, "name", json_string(str(p, "name")));
		if (str(p, "metadata"))
			json_object_set_new(rec, "metadata", json_string(str(p, "metadata")));
		const char *email = str(json_object_get(p, "attributes"), "email");
		if (email)
			json_object_set_new(rec, "email", json_string(email));
	}

	int trigger = m->trigger == TRIGGER_ROOM_FINISHED
			      ? !strcmp(ev->type, "room_finished")
			      : (!strcmp(ev->type, "participant_left") ||
				 !strcmp(ev->type, "participant_connection_aborted")) &&
					is_caller(s, identity, agent);
	if (!strcmp(ev->type, "room_finished") || !strncmp(ev->type, "participant_", 12))
		mm_audit(m, "event.received", name,
			 json_pack("{s:s, s:s, s:s?}", "event", ev->type, "id", ev->id,
				   "participant", identity));
	int rc = 0;
	if (merged == MERGED_DONE) {
		mm_audit(m, "session.correlated", name,
			 json_pack("{s:s, s:s}", "sid", sid, "order",
				   "room end not seen within finish_grace; email already queued"));
	} else if (trigger && !json_is_true(json_object_get(s, "ended"))) {
		json_object_set_new(s, "ended", json_true());
		if (json_object_get(s, "transcript")) {
			mm_audit(m, "session.correlated", name,
				 json_pack("{s:s, s:s}", "sid", sid, "order", "transcript first"));
			rc = mm_finish(m, skey, s);
		} else {
			rc = start_timer(m, 'w', skey, m->transcript_wait_ms);
		}
	} else if (merged == MERGED_TRANSCRIPT) {
		/* The name-keyed session's finish_grace goes on under the sid. */
		rc = start_timer(m, 'g', skey, m->finish_grace_ms);
	}
	return save_session(m, skey, s, rc, err, errlen);
}

/* ---- transcripts --------------------------------------------------------- */

/* A short single-line string field, or absent. */
static int check_line(json_t *body, const char *key, size_t max, int required, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(body, key);
	if (!v || json_is_null(v)) {
		if (required)
			snprintf(err, errlen, "%s: required", key);
		return required ? -1 : 0;
	}
	const char *s = json_string_value(v);
	if (!s) {
		snprintf(err, errlen, "%s: expected a string", key);
		return -1;
	}
	if (!*s || strlen(s) > max || strpbrk(s, "\r\n")) {
		snprintf(err, errlen, "%s: expected one line of 1 to %zu bytes", key, max);
		return -1;
	}
	return 0;
}

static int validate(json_t *body, char *err, size_t errlen)
{
	static const char *const known[] = {"room",    "room_sid", "participant", "to",
					    "template", "summary",  "data",	  "transcript",
					    NULL};
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		int found = 0;
		for (int i = 0; known[i]; i++)
			found |= !strcmp(k, known[i]);
		if (!found) {
			snprintf(err, errlen, "%.60s: unknown field", k);
			return -1;
		}
	}
	if (check_line(body, "room", MAX_ROOM, 1, err, errlen) ||
	    check_line(body, "room_sid", MAX_ROOM, 0, err, errlen) ||
	    check_line(body, "participant", MAX_IDENTITY, 0, err, errlen) ||
	    check_line(body, "template", 64, 0, err, errlen))
		return -1;
	const char *t = str(body, "template");
	for (const char *p = t; p && *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
			snprintf(err, errlen, "template: letters, digits, _ and - only");
			return -1;
		}
	}
	json_t *to = json_object_get(body, "to");
	if (to) {
		if (!json_is_array(to) || json_array_size(to) == 0) {
			snprintf(err, errlen, "to: expected a non-empty array of addresses");
			return -1;
		}
		if (json_array_size(to) > MM_MAX_RECIPIENTS) {
			snprintf(err, errlen, "to: %zu addresses, at most %d allowed",
				 json_array_size(to), MM_MAX_RECIPIENTS);
			return -1;
		}
		size_t i;
		json_array_foreach(to, i, v)
		{
			if (!mm_valid_address(json_string_value(v))) {
				snprintf(err, errlen, "to[%zu]: not an email address", i);
				return -1;
			}
		}
	}
	v = json_object_get(body, "summary");
	if (v && !json_is_null(v) &&
	    (!json_is_string(v) || json_string_length(v) > MAX_SUMMARY)) {
		snprintf(err, errlen, "summary: expected a string of at most %d bytes", MAX_SUMMARY);
		return -1;
	}
	v = json_object_get(body, "data");
	if (v && !json_is_null(v) && !json_is_object(v)) {
		snprintf(err, errlen, "data: expected an object");
		return -1;
	}
	v = json_object_get(body, "transcript");
	if (v && !json_is_null(v) && !json_is_array(v) && !json_is_object(v)) {
		snprintf(err, errlen, "transcript: expected the agent's session.history items");
		return -1;
	}
	return 0;
}

ac_verdict mm_on_transcript(struct mm *m, const ac_event *ev, json_t *body, char *err,
			    size_t errlen)
{
	if (validate(body, err, errlen))
		return AC_REJECT;
	char why[300];
	const char *tname = str(body, "template");
	if (tname && !mm_template_exists(m, tname, why, sizeof why)) {
		/* Not the host's words when they name its folder: the caller
		 * need not learn the server's paths. */
		if (!strncmp(why, "no template named ", 18))
			snprintf(err, errlen, "template: no template named %s", tname);
		else
			snprintf(err, errlen, "template: %s does not render: %.200s", tname, why);
		return AC_REJECT;
	}
	const char *room = str(body, "room");
	const char *sid = str(body, "room_sid");
	char nkey[300], known[MAX_ROOM + 1] = "";
	if (!sid) {
		/* The latest sid seen under this name, if any. */
		snprintf(nkey, sizeof nkey, "n:%s", room);
		char *v = NULL;
		size_t n = 0;
		if (m->svc->kv_get(m->host, nkey, &v, &n) == 1 && n < sizeof known) {
			memcpy(known, v, n);
			known[n] = '\0';
			sid = known;
		}
		if (v)
			m->svc->host_free(v);
	}
	char skey[300];
	session_key(skey, sizeof skey, sid, room);
	json_t *s = mm_load(m, skey);
	if (!s)
		s = new_session(m, sid, room);
	if (json_is_true(json_object_get(s, "done")) || json_object_get(s, "transcript")) {
		/* One transcript per session: a second one is recorded, not sent. */
		mm_audit(m, "transcript.ignored", room,
			 json_pack("{s:s, s:s}", "id", ev->id, "reason",
				   json_is_true(json_object_get(s, "done")) ? "session done"
									    : "already have one"));
		json_decref(s);
		return AC_CONTINUE;
	}
	json_t *t = json_object();
	const char *keys[] = {"participant", "to", "template", "summary", "data", "transcript"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		if (json_object_get(body, keys[i]))
			json_object_set(t, keys[i], json_object_get(body, keys[i]));
	json_object_set_new(s, "transcript", t);
	mm_audit(m, "transcript.received", room,
		 json_pack("{s:s, s:s?, s:s?, s:b}", "id", ev->id, "participant",
			   str(body, "participant"), "template", str(body, "template"), "summary",
			   str(body, "summary") != NULL));
	int rc;
	if (json_is_true(json_object_get(s, "ended"))) {
		mm_audit(m, "session.correlated", room,
			 json_pack("{s:s, s:s}", "sid", sid ? sid : "", "order", "room end first"));
		rc = mm_finish(m, skey, s); /* also ends the transcript_wait timer */
	} else {
		rc = start_timer(m, 'g', skey, m->finish_grace_ms);
	}
	return save_session(m, skey, s, rc, err, errlen);
}

int mm_on_session_timer(struct mm *m, const char *key)
{
	int wait = !strncmp(key, "w:", 2), grace = !strncmp(key, "g:", 2);
	if (!wait && !grace)
		return 0;
	char skey[320];
	snprintf(skey, sizeof skey, "s:%s", key + 2);
	json_t *s = mm_load(m, skey);
	if (!s || json_is_true(json_object_get(s, "done"))) {
		json_decref(s);
		return 0;
	}
	const char *room = str(s, "room");
	int rc = 0;
	if (wait && !json_object_get(s, "transcript")) {
		if (m->send_without_transcript) {
			mm_audit(m, "session.correlated", room,
				 json_pack("{s:s}", "order", "no transcript within transcript_wait"));
			rc = mm_finish(m, skey, s);
		} else {
			mm_audit(m, "email.skipped", room,
				 json_pack("{s:s}", "reason",
					   "no transcript within transcript_wait (on_missing_transcript: skip)"));
			json_object_set_new(s, "done", json_true());
		}
	} else if (grace && json_object_get(s, "transcript")) {
		mm_audit(m, "session.correlated", room,
			 json_pack("{s:s}", "order", "room end not seen within finish_grace"));
		rc = mm_finish(m, skey, s);
	}
	if (!rc)
		rc = mm_save(m, skey, s, 0);
	json_decref(s);
	return rc;
}
