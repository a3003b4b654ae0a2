#!/usr/bin/env bash
# GET /metrics: the Prometheus text format (checked by promtool), counters
# that move with the traffic, and access: loopback only, or a bearer token.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url m) || { not_ok "create the store"; finish; }

K=APIm S=metrics-secret-0123456789
cat >"$WORK/m.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    $K: $S
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $WORK/seen.txt, timer_ms: 60000}
YAML
start_host "$WORK/m.yaml" || finish
scrape() { curl -s "http://127.0.0.1:$PORT/metrics" "$@"; }
metric() { scrape | awk -v k="$1" 'index($0, k " ") == 1 { print $NF }'; }

for i in 1 2 3; do
	printf '{"event":"room_finished","id":"EV_m%d"}' "$i" >"$WORK/ev.json"
	post /webhooks/livekit "$WORK/ev.json" "$("$AFTERCALL" sign --key $K --secret $S "$WORK/ev.json")" >/dev/null
done
post /webhooks/livekit "$WORK/ev.json" "$("$AFTERCALL" sign --key $K --secret $S "$WORK/ev.json")" >/dev/null
post /webhooks/livekit "$WORK/ev.json" "$("$AFTERCALL" sign --key $K --secret wrong "$WORK/ev.json")" >/dev/null
curl -s -o /dev/null "http://127.0.0.1:$PORT/no/such/path"
sleep 1.2 # the row-count gauges are refreshed once a second

scrape >"$WORK/metrics.txt"
check "4 answered 200 (3 new, 1 duplicate)" 4 "$(metric 'aftercall_http_requests_total{route="/webhooks/livekit",status="200"}')"
check "the refusal counted by reason" 1 "$(metric 'aftercall_verify_refusals_total{reason="bad signature"}')"
check "the 401 counted under its route" 1 "$(metric 'aftercall_http_requests_total{route="/webhooks/livekit",status="401"}')"
check "an unknown path is counted without its URL" 1 "$(metric 'aftercall_http_requests_total{route="(none)",status="404"}')"
check "events dispatched by type" 3 "$(metric 'aftercall_events_dispatched_total{type="room_finished"}')"
check "duplicates" 1 "$(metric aftercall_duplicates_total)"
check "pending timers" 3 "$(metric aftercall_pending_timers)"
commits=$(metric aftercall_commit_seconds_count)
if [ "${commits:-0}" -ge 4 ]; then ok "commits observed ($commits)"; else not_ok "commits observed ($commits)"; fi
check_grep "a batch-size histogram" '^aftercall_dispatch_batch_size_bucket{le="1"}' "$WORK/metrics.txt"
check_grep "outbox rows by state" '^aftercall_outbox_rows{state="pending"} 0' "$WORK/metrics.txt"
if promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.out" 2>&1; then
	ok "promtool check metrics passes"
else
	not_ok "promtool check metrics passes"; cat "$WORK/promtool.out"
fi
check "a scraper keeps its connection" "200 1,200 0," \
	"$(scrape -o /dev/null -o /dev/null -w '%{http_code} %{num_connects},' "http://127.0.0.1:$PORT/metrics")"
check "POST on /metrics is 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/metrics")"
stop_host

# With a bearer token configured, a scrape needs it.
printf 'metrics:\n  bearer: metrics-bearer-token-0123\n' >>"$WORK/m.yaml"
start_host "$WORK/m.yaml" || finish
check "without the token: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")"
check "with it: 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer metrics-bearer-token-0123' "http://127.0.0.1:$PORT/metrics")"
finish
