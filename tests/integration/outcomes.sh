#!/usr/bin/env bash
# Settled outbox rows go back to their plugins a page at a time, on from
# the last: rows that stay (their plugin is not loaded on this host, or its
# on_delivery keeps failing) do not hide the outcomes after them. A row that
# cannot be made into a request fails its attempt, and is not left in flight.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url o) || { not_ok "create the store"; finish; }
RECORD="$WORK/seen.txt"
cat >"$WORK/o.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APIo: outcomes-secret-0123456789
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $RECORD}
YAML
"$AFTERCALL" migrate -c "$WORK/o.yaml" >/dev/null
check "migrate creates the store" 0 $?

# 100 settled rows of a plugin this host does not load (more than one page
# of 64), then one of the counter plugin's.
now=$(($(date +%s) * 1000))
row() { # row PLUGIN KEY: the values of one settled row
	printf "('%s', 'room_finished', 'POST', 'http://127.0.0.1:9/', '[]', '{}', '%s', 'done', 1, 10, 86400000, %s, %s, 202, '{}', 1)" \
		"$1" "$2" "$now" "$now"
}
values=
for i in $(seq 1 100); do values+="${values:+,}$(row elsewhere "gone-$i")"; done
values+=",$(row counter mine)"
store_sql "$STORE" "INSERT INTO outbox(plugin, tag, method, url, headers, body, idem_key, state,
  attempts, max_attempts, max_age_ms, created_ms, next_ms, last_status, last_body, notify)
  VALUES $values" >/dev/null
check "101 outcomes wait" 101 "$(store_sql "$STORE" "SELECT count(*) FROM outbox WHERE notify = 1")"
store_sql "$STORE" "INSERT INTO outbox(plugin, tag, method, url, headers, body, idem_key, state,
  max_attempts, max_age_ms, created_ms, next_ms)
  VALUES ('counter', 'room_finished', 'POST', 'http://127.0.0.1:9/', 'not json', '{}', 'bad-headers',
  'pending', 1, 86400000, $now, $now)" >/dev/null

start_host "$WORK/o.yaml" || finish
for _ in $(seq 50); do grep -q '^delivery mine ' "$RECORD" 2>/dev/null && break; sleep 0.1; done
check "the loaded plugin hears its outcome, after 100 of a plugin not loaded" 1 \
	"$(grep -c '^delivery mine done 202 1$' "$RECORD" 2>/dev/null)"
check "and that row is settled" 0 "$(store_sql "$STORE" "SELECT notify FROM outbox WHERE idem_key = 'mine'")"
check "the other plugin's rows wait for a host that loads it" 100 \
	"$(store_sql "$STORE" "SELECT count(*) FROM outbox WHERE notify = 1 AND plugin = 'elsewhere'")"
bad() { store_sql "$STORE" "SELECT state || ' ' || attempts || ' ' || last_error FROM outbox WHERE idem_key = 'bad-headers'"; }
for _ in $(seq 30); do [ "$(bad | cut -d' ' -f1)" = dead ] && break; sleep 0.1; done
check "a row whose headers are not JSON fails its one attempt" \
	"dead 1 cannot build the request: headers are not a JSON array" "$(bad)"
for _ in $(seq 30); do grep -q '^delivery bad-headers ' "$RECORD" && break; sleep 0.1; done
check "and its plugin hears so" 1 "$(grep -c '^delivery bad-headers dead 0 1$' "$RECORD")"
sleep 1.5
check "the host does not offer the outcome again" 1 "$(grep -c '^delivery mine ' "$RECORD")"
kill -0 "$HOST_PID" && ok "the host runs on" || not_ok "the host runs on"
finish
