#!/usr/bin/env bash
# A write of a plugin that fails fails its event, even when the plugin goes
# on as if it had not: the event is answered 503, nothing of it is kept,
# and the sender's retry is taken once the store is well again. The failure
# is made by a trigger on the audit table, on SQLite and on PostgreSQL. And
# a delivery's result the store cannot take is kept and recorded later.
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

# fail_when NAME OP TABLE CONDITION: OP (INSERT, UPDATE) on TABLE fails
# while CONDITION holds of the NEW row; unfail NAME TABLE ends that.
fail_when() {
	if on_postgres; then
		store_sql "$STORE" "CREATE FUNCTION $1() RETURNS trigger LANGUAGE plpgsql AS
\$\$BEGIN IF $4 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END\$\$;
CREATE TRIGGER $1 BEFORE $2 ON $3 FOR EACH ROW EXECUTE FUNCTION $1()"
	else
		store_sql "$STORE" "CREATE TRIGGER $1 BEFORE $2 ON $3 WHEN $4
BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
	fi
}
unfail() { store_sql "$STORE" "DROP TRIGGER $1$(on_postgres && echo " ON $2")"; }
fail_when fail_boom INSERT audit "NEW.subject = 'EV_boom'"
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
unfail fail_boom audit
check "the sender's retry, the store well again, is 200" 200 "$(send EV_boom)"
check "as a new event, not a duplicate" accepted "$(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' "$WORK/resp")"
check "journaled once" 1 "$(rows journal dedupe)"
check "audited once" 1 "$(rows audit subject)"
"$AFTERCALL" audit -c "$WORK/w.yaml" --verify >/dev/null
check "the audit chain verifies" 0 $?
stop_host

# The result of a delivery that cannot be recorded is tried again a second
# later, not dropped: the row stays in flight meanwhile (nothing is sent
# again), and its outcome reaches the plugin once the store takes it.
node -e 'const s = require("node:http").createServer((q, r) => {
	q.resume(); q.on("end", () => { require("node:fs").appendFileSync(process.argv[1], q.headers["idempotency-key"] + "\n");
	r.writeHead(202, {"Content-Type": "application/json"}); r.end("{}"); }); });
s.listen(0, "127.0.0.1", () => console.log(s.address().port));' "$WORK/sink.keys" >"$WORK/sink.port" &
SINK_PID=$!
for _ in $(seq 50); do [ -s "$WORK/sink.port" ] && break; sleep 0.1; done
sed "s|config: {file: $RECORD, audit: 1}|config: {file: $RECORD, send_url: \"http://127.0.0.1:$(cat "$WORK/sink.port")/send\", send_key: k}|" \
	"$WORK/w.yaml" >"$WORK/w2.yaml"
fail_when fail_done UPDATE outbox "NEW.state = 'done'"
start_host "$WORK/w2.yaml" || finish
state() { store_sql "$STORE" "SELECT state FROM outbox WHERE idem_key = 'EV_send'"; }
check "an event that queues a send is 200" 200 "$(send EV_send)"
sent() { grep -c '^EV_send$' "$WORK/sink.keys"; }
for _ in $(seq 50); do [ -s "$WORK/sink.keys" ] && break; sleep 0.1; done
sleep 1.5
check "the receiver took it" 1 "$(sent)"
check "its result cannot be recorded: the row stays in flight" inflight "$(state)"
check_grep "the log says so" 'cannot record a delivery; trying again.*injected failure' "$WORK/host.log"
check "an event meanwhile is not held back" 200 "$(send EV_meanwhile)"
unfail fail_done outbox
for _ in $(seq 50); do [ "$(state)" = done ] && break; sleep 0.1; done
check "the store well again, the result is recorded" done "$(state)"
check "as one attempt" 1 "$(store_sql "$STORE" "SELECT attempts FROM outbox WHERE idem_key = 'EV_send'")"
check "the plugin hears the outcome once" 1 "$(grep -c '^delivery EV_send done 202 1$' "$RECORD")"
check "and nothing was sent twice" 1 "$(sent)"
kill "$SINK_PID" 2>/dev/null
finish
