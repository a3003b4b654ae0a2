#!/usr/bin/env bash
# A write of a plugin that fails fails its event, even when the plugin goes
# on as if it had not: the event is answered 503, nothing of it is kept,
# and the sender's retry is taken once the store is well again. The failure
# is made by a trigger on the audit table, on SQLite and on PostgreSQL.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url w) || { not_ok "create the store"; finish; }
RECORD="$WORK/seen.txt"
cat >"$WORK/w.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APIw: failed-write-secret-0123456789
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $RECORD, audit: 1}
YAML
"$AFTERCALL" migrate -c "$WORK/w.yaml" >/dev/null
check "migrate creates the store" 0 $?
if on_postgres; then
	store_sql "$STORE" "CREATE FUNCTION fail_boom() RETURNS trigger LANGUAGE plpgsql AS
\$\$BEGIN IF NEW.subject = 'EV_boom' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END\$\$;
CREATE TRIGGER fail_boom BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION fail_boom()"
else
	store_sql "$STORE" "CREATE TRIGGER fail_boom BEFORE INSERT ON audit WHEN NEW.subject = 'EV_boom'
BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
fi
start_host "$WORK/w.yaml" || finish

send() { # send ID: the HTTP status of a signed room_finished with that id
	printf '{"event":"room_finished","id":"%s","room":{"name":"w"}}' "$1" >"$WORK/ev.json"
	post /webhooks/livekit "$WORK/ev.json" \
		"$("$AFTERCALL" sign --key APIw --secret failed-write-secret-0123456789 "$WORK/ev.json")"
}
rows() { store_sql "$STORE" "SELECT count(*) FROM $1 WHERE $2 = 'EV_boom'"; }

check "an event whose writes succeed is 200" 200 "$(send EV_fine)"
check "one whose audit write fails is 503" 503 "$(send EV_boom)"
check "though the plugin went on" 1 "$(grep -c '^event room_finished EV_boom$' "$RECORD")"
check "the event is not journaled" 0 "$(rows journal dedupe)"
check "nor audited" 0 "$(rows audit subject)"
check_grep "the log says why" 'a write of the callback failed.*injected failure\|commit failed.*injected failure' "$WORK/host.log"
check "and the next event is taken" 200 "$(send EV_after)"
store_sql "$STORE" "DROP TRIGGER fail_boom$(on_postgres && echo ' ON audit')"
check "the sender's retry, the store well again, is 200" 200 "$(send EV_boom)"
check "as a new event, not a duplicate" accepted "$(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' "$WORK/resp")"
check "journaled once" 1 "$(rows journal dedupe)"
check "audited once" 1 "$(rows audit subject)"
"$AFTERCALL" audit -c "$WORK/w.yaml" --verify >/dev/null
check "the audit chain verifies" 0 $?
finish
