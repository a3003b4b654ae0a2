#!/usr/bin/env bash
# aftercall replay: journaled events run through their plugins again, with
# the body, type and time they came with; not journaled again, not taken as
# duplicates, each recorded in the audit trail. A dry run runs nothing; an id
# not in the journal, a route not in the config and a plugin that fails the
# event again each make it exit 1; with SQLite it waits for serve to stop.
# Runs on the store tests/lib.sh gives (SQLite, or PostgreSQL).
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url rp) || { not_ok "create the store"; finish; }
RECORD="$WORK/seen.txt"
config() { # config FILE [EXTRA COUNTER CONFIG]
	cat >"$1" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APIreplay: replay-secret-0123456789abcdef
routes:
  - path: /webhooks/livekit
    verify: livekit
  - path: /hooks/other
    verify: {bearer: replay-bearer-0123456789}
    event_type: other
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $RECORD${2:+, $2}}
YAML
}
config "$WORK/r.yaml" "received: 1"
count() { grep -c "^event $1\$" "$RECORD"; }
journal() { store_sql "$STORE" "select count(*) from journal"; }

start_host "$WORK/r.yaml" || finish
for id in EV_rp1 EV_rp2; do
	printf '{"event":"room_finished","id":"%s","room":{"name":"r-%s"},"createdAt":"1700000000"}' \
		"$id" "$id" >"$WORK/$id.json"
	tok=$("$AFTERCALL" sign --key APIreplay --secret replay-secret-0123456789abcdef "$WORK/$id.json")
	check "$id is accepted" 200 "$(post /webhooks/livekit "$WORK/$id.json" "$tok")"
done
printf '{"id":"EV_rp1","note":"the same id on another route"}' >"$WORK/other.json"
check "the same id on another route is accepted" 200 \
	"$(post /hooks/other "$WORK/other.json" "Bearer replay-bearer-0123456789")"
check "three journal rows" 3 "$(journal)"

# A dry run only reads: it may run beside serve, on either store.
"$AFTERCALL" replay -c "$WORK/r.yaml" --dry-run EV_rp1 >"$WORK/dry.out" 2>&1
check "a dry run exits 0, serve running" 0 $?
check "and lists both rows of the id" 2 "$(grep -c ': would run$' "$WORK/dry.out")"
check "and runs nothing" 1 "$(count "room_finished EV_rp1")"
check "not even the plugins' init" 0 "$(grep -c '"msg":"plugin loaded"' "$WORK/dry.out")"

# With SQLite a replay waits for serve to stop; with PostgreSQL the host
# keeps running through the replays below.
if ! on_postgres; then
	"$AFTERCALL" replay -c "$WORK/r.yaml" EV_rp2 >"$WORK/busy.out" 2>&1
	check "replay waits for serve to stop with SQLite" 1 $?
	check_grep "saying the store is in use" "in use by another aftercall serve process" "$WORK/busy.out"
	stop_host
fi

sleep 1 # so that a replay given the time now could not pass for one given the received time
"$AFTERCALL" replay -c "$WORK/r.yaml" --route /webhooks/livekit EV_rp1 EV_rp2 >"$WORK/run.out" 2>&1
check "replay of two events exits 0" 0 $?
check_grep "a line per event, with its type, route and time" \
	"^EV_rp1  room_finished  /webhooks/livekit  received [0-9T:-]*Z: accepted (request replay-" "$WORK/run.out"
check "EV_rp1 ran again" 2 "$(count "room_finished EV_rp1")"
check "EV_rp2 ran again" 2 "$(count "room_finished EV_rp2")"
check "the other route's row did not (--route)" 1 "$(count "other EV_rp1")"
received=$(store_sql "$STORE" "select received_ms from journal where dedupe = 'EV_rp2'")
check "the replay gave the plugins the time serve received it" "received EV_rp2 $received
received EV_rp2 $received" "$(grep "^received EV_rp2 " "$RECORD")"
check "nothing journaled again" 3 "$(journal)"
check "each replay is in the audit trail" 2 \
	"$(store_sql "$STORE" "select count(*) from audit where kind = 'event.replayed'")"
"$AFTERCALL" audit -c "$WORK/r.yaml" --verify >/dev/null 2>&1
check "and the chain holds" 0 $?

"$AFTERCALL" replay -c "$WORK/r.yaml" EV_nope >"$WORK/nope.out" 2>/dev/null
check "an id not in the journal exits 1" 1 $?
check "saying so" "EV_nope: not in the journal" "$(cat "$WORK/nope.out")"

# The plugin fails the event now: it is not accepted, and nothing of it stays.
config "$WORK/fail.yaml" "fail_type: room_finished"
"$AFTERCALL" replay -c "$WORK/fail.yaml" EV_rp2 >"$WORK/fail.out" 2>&1
check "an event the plugins fail again exits 1" 1 $?
check_grep "with the answer serve would give" "EV_rp2  room_finished  /webhooks/livekit  .*: 500 plugin failed" "$WORK/fail.out"
check "and no audit record for it" 2 \
	"$(store_sql "$STORE" "select count(*) from audit where kind = 'event.replayed'")"

# A route the config no longer has.
sed 's#^  - path: /hooks/other#  - path: /hooks/renamed#' "$WORK/r.yaml" >"$WORK/renamed.yaml"
"$AFTERCALL" replay -c "$WORK/renamed.yaml" --route /hooks/other EV_rp1 >"$WORK/gone.out" 2>&1
check "a row whose route is gone exits 1" 1 $?
check_grep "naming the route" "not replayed: the config has no route /hooks/other" "$WORK/gone.out"

# A route that now takes queries (GET) runs no event.
sed 's#^    event_type: other#    method: GET#' "$WORK/r.yaml" >"$WORK/get.yaml"
"$AFTERCALL" replay -c "$WORK/get.yaml" --route /hooks/other EV_rp1 >"$WORK/get.out" 2>&1
check "a row whose route now takes queries exits 1" 1 $?
check_grep "saying why" "not replayed: route /hooks/other now takes queries (GET), not events" "$WORK/get.out"
check "and its plugins saw nothing" 1 "$(count "other EV_rp1")"

# A send the replay makes is queued once: its idempotency key is the
# event's, and a second replay finds it in the outbox, whatever became of it.
config "$WORK/send.yaml" "send_url: http://127.0.0.1:9/v1/send, send_key: k, max_attempts: 1"
outbox() { store_sql "$STORE" "select count(*) from outbox where idem_key = 'EV_rp2'"; }
check "no send for EV_rp2 before" 0 "$(outbox)"
"$AFTERCALL" replay -c "$WORK/send.yaml" --route /webhooks/livekit EV_rp2 >/dev/null 2>&1
check "a replay with a plugin that sends exits 0" 0 $?
check "and queues the send" 1 "$(outbox)"
"$AFTERCALL" replay -c "$WORK/send.yaml" --route /webhooks/livekit EV_rp2 >/dev/null 2>&1
check "replayed again, it exits 0" 0 $?
check "and the send is not queued again" 1 "$(outbox)"
check "though the plugin ran" 4 "$(count "room_finished EV_rp2")"

# A span of time instead of ids.
"$AFTERCALL" replay -c "$WORK/r.yaml" --dry-run --since 1h >"$WORK/span.out" 2>&1
check "a dry run of the last hour exits 0" 0 $?
check "and lists every row of it" 3 "$(grep -c ': would run$' "$WORK/span.out")"
check "in journal order" "EV_rp1 /webhooks/livekit,EV_rp2 /webhooks/livekit,EV_rp1 /hooks/other," \
	"$(awk '{ printf "%s %s,", $1, $3 }' "$WORK/span.out")"
"$AFTERCALL" replay -c "$WORK/r.yaml" --since 1h --route /hooks/other >"$WORK/span.out" 2>&1
check "a replay of the last hour on one route exits 0" 0 $?
check "and runs that route's event" 2 "$(count "other EV_rp1")"
check "and no other" 4 "$(count "room_finished EV_rp2")"
"$AFTERCALL" replay -c "$WORK/r.yaml" --since 2020-01-01T00:00:00Z --until 2020-01-02T00:00:00Z >"$WORK/none.out" 2>/dev/null
check "a span with no events exits 1" 1 $?
check "saying so" "no events in the journal received from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z" "$(cat "$WORK/none.out")"
# Rows of two routes, many more than a page, in a span of their own.
values=
for i in $(seq 1 150); do
	route=/webhooks/livekit; [ $((i % 2)) = 0 ] && route=/hooks/other
	values+="${values:+,}('$route', 'EV_old$i', 'room_finished', '{}', $((1600000000000 + i * 1000)))"
done
store_sql "$STORE" "INSERT INTO journal(route, dedupe, type, body, received_ms) VALUES $values" >/dev/null
"$AFTERCALL" replay -c "$WORK/r.yaml" --dry-run --route /hooks/other \
	--since 2020-09-13T12:26:40Z --until 2020-09-13T12:29:11Z >"$WORK/old.out" 2>&1
check "a span over several pages, one route: every row of it" 75 "$(grep -c '^EV_old[0-9]*  room_finished  /hooks/other  .*: would run$' "$WORK/old.out")"
check "and only those" 75 "$(wc -l <"$WORK/old.out")"
check "from the first to the last" "EV_old2 EV_old150" "$(head -1 "$WORK/old.out" | cut -d' ' -f1) $(tail -1 "$WORK/old.out" | cut -d' ' -f1)"
"$AFTERCALL" replay -c "$WORK/r.yaml" --dry-run --since 2020-09-13T12:26:41Z --until 2020-09-13T12:26:45Z >"$WORK/old.out" 2>&1
check "--since is inclusive, --until not" "EV_old1 EV_old2 EV_old3 EV_old4 " "$(cut -d' ' -f1 "$WORK/old.out" | tr '\n' ' ')"
"$AFTERCALL" replay -c "$WORK/r.yaml" --dry-run --until 2020-09-13T12:26:43Z >"$WORK/old.out" 2>&1
check "--until alone: from the journal's first row" "EV_old1 EV_old2 " "$(cut -d' ' -f1 "$WORK/old.out" | tr '\n' ' ')"
"$AFTERCALL" replay -c "$WORK/r.yaml" --dry-run --since 2099-01-01T00:00:00Z >"$WORK/bad.out" 2>&1
check "a --since in the future is a usage error" 2 $?
check_grep "that says so" "since is in the future" "$WORK/bad.out"
for bad in "--since yesterday" "--since 2026-02-30T00:00:00Z" "--since -5m" "--since 36526d" "--since 1h --until 2h" "--since 1h EV_rp1"; do
	# shellcheck disable=SC2086 # the options' words
	"$AFTERCALL" replay -c "$WORK/r.yaml" --dry-run $bad >"$WORK/bad.out" 2>&1
	check "replay $bad is a usage error" 2 $?
done
check_grep "naming what it takes" "both" "$WORK/bad.out"

"$AFTERCALL" replay -c "$WORK/r.yaml" >/dev/null 2>&1
check "no id is a usage error" 2 $?
finish
