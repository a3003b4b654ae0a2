#!/usr/bin/env bash
# The outbox against the MultiMail double, every request and answer checked
# by prism against MultiMail's openapi.json: retries through 500s and 429s,
# SIGKILL with deliveries in flight, the double down, a final 400, and a
# long backlog in flat memory.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url ob) || { not_ok "create the store"; finish; }

start_double || finish
KEY=mm_live_outbox_test_key
MBX=$(curl -s -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	--data '{"address_local":"followups"}' "http://127.0.0.1:$PRISM/v1/mailboxes" |
	sed -n 's/.*"id":"\(mbx_[^"]*\)".*/\1/p')
[ -n "$MBX" ] && ok "a mailbox is created through prism" || not_ok "a mailbox is created through prism"

RECORD="$WORK/seen.txt"
cat >"$WORK/ob.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APIob: outbox-secret-0123456789
outbox:
  concurrency: 16
  timeout: 2
  connect_timeout: 1
  retry_base_ms: 100
  retry_cap_ms: 2000
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config:
      file: $RECORD
      send_url: http://127.0.0.1:$PRISM/v1/mailboxes/$MBX/send
      send_key: $KEY
      max_attempts: 30
      refuse_key: R
YAML

# post_events PREFIX FROM TO: one signed event per id, each must get 200.
post_events() {
	local bad=0
	for i in $(seq "$2" "$3"); do
		printf '{"event":"room_finished","id":"%s%04d","room":{"name":"r%d"}}' "$1" "$i" "$i" >"$WORK/ev.json"
		tok=$("$AFTERCALL" sign --key APIob --secret outbox-secret-0123456789 "$WORK/ev.json")
		[ "$(post /webhooks/livekit "$WORK/ev.json" "$tok")" = 200 ] || bad=$((bad + 1))
	done
	echo "$bad"
}

outbox_count() { # outbox_count STATE
	"$AFTERCALL" outbox list -c "$WORK/ob.yaml" --state "$1" | tail -n +2 | wc -l
}

wait_done() { # wait_done N SECONDS
	for _ in $(seq 1 $(($2 * 5))); do
		[ "$(outbox_count done)" -ge "$1" ] && return 0
		sleep 0.2
	done
	return 1
}

# state_count JQ-LIKE: counts from the double's state with node.
state() {
	control state >"$WORK/state.json"
	node -e '
const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const prefix = process.argv[2];
const emails = s.emails.filter((e) => e.direction === "outbound" && (e.subject || "").startsWith("Follow-up " + prefix));
const keys = Object.entries(s.idempotency).filter(([k]) => k.startsWith(prefix));
const doubled = keys.filter(([, v]) => v.emails_created !== 1).length;
console.log(emails.length, keys.length, doubled);' "$WORK/state.json" "$1"
}

start_host "$WORK/ob.yaml" || finish

# 0. libcurl is opened at the first send, not at start; libpq only for a
#    PostgreSQL store (src/libcurl.h, src/libpq.h).
curl_maps() { grep -c '/libcurl\.so' "/proc/$HOST_PID/maps"; }
check "libcurl is not loaded before the first send" 0 "$(curl_maps)"
pq_maps=$(grep -c '/libpq\.so' "/proc/$HOST_PID/maps")
if on_postgres; then
	[ "$pq_maps" -gt 0 ] && ok "libpq is loaded for a PostgreSQL store" || not_ok "libpq is loaded for a PostgreSQL store"
else
	check "libpq is not loaded for a SQLite store" 0 "$pq_maps"
fi

# 1. 200 sends; the double answers 500 to every third call and 429 with
#    Retry-After: 1 to every seventh.
control faults '{"fail_every":3,"rate_limit":{"every":7,"retry_after":1}}' >/dev/null
check "200 events accepted" 0 "$(post_events A 1 200)"
wait_done 200 120
check "all 200 rows are done" 200 "$(outbox_count done)"
if [ "$(curl_maps)" -gt 0 ]; then ok "libcurl is loaded once there was something to send"; else not_ok "libcurl is loaded once there was something to send"; fi
read -r emails keys doubled <<<"$(state A)"
check "the double holds 200 emails" 200 "$emails"
check "under 200 idempotency keys" 200 "$keys"
check "no key made more than one email" 0 "$doubled"
retried=$("$AFTERCALL" outbox list -c "$WORK/ob.yaml" --state done | awk 'NR > 1 && $3 > 1' | wc -l)
if [ "$retried" -gt 0 ]; then ok "outbox list shows retried rows ($retried with attempts > 1)"; else not_ok "outbox list shows retried rows"; fi
check "each plugin heard its outcome once" 200 "$(grep -c '^delivery A[0-9]* done 20[02] ' "$RECORD")"
control faults '{}' >/dev/null

# 2. SIGKILL with deliveries in flight, then a restart: nothing lost, nothing doubled.
control faults '{"slow_ms":1500}' >/dev/null
check "20 events accepted" 0 "$(post_events K 1 20)"
for _ in $(seq 50); do [ "$(outbox_count inflight)" -gt 0 ] && break; sleep 0.1; done
inflight=$(outbox_count inflight)
if [ "$inflight" -gt 0 ]; then ok "rows are in flight at the kill ($inflight)"; else not_ok "rows are in flight at the kill"; fi
kill_host
control faults '{}' >/dev/null
start_host "$WORK/ob.yaml" || finish
wait_done 220 60
check "after the restart all 220 rows are done" 220 "$(outbox_count done)"
read -r emails keys doubled <<<"$(state K)"
check "the double holds 20 emails of the killed batch" 20 "$emails"
check "and none doubled" 0 "$doubled"

# 3. The double down for a while: rows wait, retry, and go out when it returns.
#    (prism reports each dropped connection as a FetchError: expected here.)
down_from=$(wc -l <"$WORK/prism.log")
control faults '{"down":true}' >/dev/null
check "10 events accepted while the double is down" 0 "$(post_events D 1 10)"
sleep 3
check "no row is done while the double is down" 220 "$(outbox_count done)"
waiting=$("$AFTERCALL" outbox list -c "$WORK/ob.yaml" --state pending | awk 'NR > 1 && $3 >= 1' | wc -l)
if [ "$waiting" -gt 0 ]; then ok "rows wait with attempts counted ($waiting)"; else not_ok "rows wait with attempts counted"; fi
control faults '{}' >/dev/null
down_to=$(wc -l <"$WORK/prism.log")
wait_done 230 60
check "they go out once it is back" 230 "$(outbox_count done)"

# 4. A 400 is final: the row is dead with the double's own error text.
control faults '{"status_for_send":400}' >/dev/null
check "an event is accepted" 0 "$(post_events B 1 1)"
for _ in $(seq 50); do [ "$(outbox_count dead)" -ge 1 ] && break; sleep 0.1; done
check "the row is dead after one attempt" "1" "$("$AFTERCALL" outbox list -c "$WORK/ob.yaml" --state dead | awk 'NR > 1 { print $3 }')"
id=$("$AFTERCALL" outbox list -c "$WORK/ob.yaml" --state dead | awk 'NR == 2 { print $1 }')
"$AFTERCALL" outbox show -c "$WORK/ob.yaml" "$id" >"$WORK/show.txt"
check_grep "show gives the double's error text" '^last error:   HTTP 400: ' "$WORK/show.txt"
check_grep "show hides the bearer key" '^  Authorization: (hidden)$' "$WORK/show.txt"
if grep -q "$KEY" "$WORK/show.txt" "$WORK/host.log"; then not_ok "the key is in no output"; else ok "the key is in no output"; fi
check "the plugin heard it is dead" 1 "$(grep -c '^delivery B0001 dead 400 1$' "$RECORD")"
control faults '{}' >/dev/null
"$AFTERCALL" outbox retry -c "$WORK/ob.yaml" "$id" >/dev/null
check "retry makes it pending again" 0 $?
wait_done 231 30
check "and it goes out" 231 "$(outbox_count done)"
"$AFTERCALL" outbox retry -c "$WORK/ob.yaml" "$id" 2>"$WORK/retry.err"
check "retry of a done row is refused" 1 $?
check_grep "saying what it is" "row $id is done, not dead" "$WORK/retry.err"
"$AFTERCALL" outbox cancel -c "$WORK/ob.yaml" 999999 2>"$WORK/retry.err"
check "cancel of a row that is not there is refused" 1 $?
check_grep "saying so" "no row 999999" "$WORK/retry.err"
"$AFTERCALL" outbox list -c "$WORK/ob.yaml" extra 2>"$WORK/retry.err"
check "outbox list with a stray argument is a usage error" 2 $?
# Every attempt carries the key in an Idempotency-Key header, so a key with
# a control character in it is refused when it is queued.
printf '{"event":"room_finished","id":"C\\u0007bell","room":{"name":"c"}}' >"$WORK/ctl.json"
tok=$("$AFTERCALL" sign --key APIob --secret outbox-secret-0123456789 "$WORK/ctl.json")
check "a key with a control character fails the event" 500 "$(post /webhooks/livekit "$WORK/ctl.json" "$tok")"
check_grep "saying why" 'outbox_enqueue refused: idempotency_key .*no control characters' "$WORK/host.log"
check "and queues nothing" 231 "$("$AFTERCALL" outbox list -c "$WORK/ob.yaml" | tail -n +2 | wc -l)"
# The plugin has its say before each attempt (on_attempt): counter refuses
# the first attempt at an R key and gives a malformed header for the second.
# Each counts as a failed attempt that never reached the double; the third
# goes out.
check "an event is accepted" 0 "$(post_events R 1 1)"
wait_done 232 30
check "its row is done" 232 "$(outbox_count done)"
check "after three attempts, two of them failed by the plugin" 3 \
	"$("$AFTERCALL" outbox list -c "$WORK/ob.yaml" --state done | awk '$6 == "R0001" { print $3 }')"
check "the plugin saw each attempt, numbered" "1 2 3" "$(sed -n 's/^attempt R0001 //p' "$RECORD" | xargs)"
check_grep "the log says the plugin refused the first" 'plugin counter refused the attempt: counter refuses attempt 1' "$WORK/host.log"
check_grep "and why the second was not made" 'plugin counter gave a bad header: not a header line: \\"X-Counter-Attempt 2\\"' "$WORK/host.log"
read -r emails keys doubled <<<"$(state R)"
check "the double got one email for it" 1 "$emails"
stop_host

# 5. prism saw no contract violation, apart from the statuses the faults
#    made on purpose (500 is in no operation of the spec).
awk -v a="$down_from" -v b="$down_to" 'NR <= a || NR > b + 5 || !/FetchError/' "$WORK/prism.log" |
	grep -i 'violation\|✖' | grep -v 'Unable to match the returned status code' >"$WORK/violations" || true
check "prism reports no violation" 0 "$(wc -l <"$WORK/violations")"
head -5 "$WORK/violations"

# 6. A backlog of 100,000 pending rows with the double down: memory stays flat.
control faults '{"down":true}' >/dev/null
now_ms=$(($(date +%s) * 1000))
store_sql "$STORE" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO outbox(plugin, tag, method, url, headers, body, idem_key, state, max_attempts,
  max_age_ms, created_ms, next_ms)
SELECT 'counter', 'backlog', 'POST', 'http://127.0.0.1:$PRISM/v1/mailboxes/$MBX/send',
  '[\"Content-Type: application/json\"]', '{}', 'backlog-' || i, 'pending', 10, 86400000,
  $now_ms, $now_ms FROM n;"
check "100,000 pending rows" 100000 "$(outbox_count pending)"
start_host "$WORK/ob.yaml" || finish
sleep 8
rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$HOST_PID/status")
echo "peak RSS with 100,000 pending rows and the double down: $rss KiB"
/usr/bin/time -f '%M' -o "$WORK/list.rss" "$AFTERCALL" outbox list -c "$WORK/ob.yaml" >"$WORK/list.txt"
lrss=$(cat "$WORK/list.rss")
echo "peak RSS of outbox list over 100,232 rows: $lrss KiB"
check "outbox list printed every row" 100233 "$(wc -l <"$WORK/list.txt")"
# AddressSanitizer's shadow memory and quarantine make RSS meaningless:
# the limits are checked on the plain build only (and said so here).
if nm "$(dirname "$AFTERCALL")/.libs/aftercall" "$AFTERCALL" 2>/dev/null | grep -q __asan_init; then
	echo "note: sanitizer build: RSS limits not checked in this pass"
else
	if [ "$rss" -lt $((64 * 1024)) ]; then ok "peak RSS under 64 MiB ($rss KiB)"; else not_ok "peak RSS under 64 MiB ($rss KiB)"; fi
	if [ "$lrss" -lt $((32 * 1024)) ]; then ok "outbox list stays small ($lrss KiB)"; else not_ok "outbox list stays small ($lrss KiB)"; fi
fi
stop_host
finish
