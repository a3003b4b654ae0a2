#!/usr/bin/env bash
# Lifecycle: SIGHUP reloads the config (a new LiveKit key, the log level),
# keeping the running one when the new file is broken or changes what needs
# a restart; SIGTERM stops taking requests, lets deliveries in flight finish
# and exits 0; a second serve on the same store, or the same address, is
# refused.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url l) || { not_ok "create the store"; finish; }

start_double || finish
MMKEY=mm_live_lifecycle_key
MBX=$(curl -s -X POST -H "Authorization: Bearer $MMKEY" -H 'Content-Type: application/json' \
	--data '{"address_local":"life"}' "http://127.0.0.1:$PRISM/v1/mailboxes" |
	sed -n 's/.*"id":"\(mbx_[^"]*\)".*/\1/p')
RECORD="$WORK/seen.txt"
config() { # config KEYS_YAML LISTEN
	cat >"$WORK/l.yaml" <<YAML
listen: ${2:-127.0.0.1:0}
store: $STORE
log: {level: ${3:-info}}
livekit:
  keys:
$1
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $RECORD, send_url: "http://127.0.0.1:$PRISM/v1/mailboxes/$MBX/send", send_key: $MMKEY}
YAML
}
config "    APIone: one-secret-0123456789"
start_host "$WORK/l.yaml" || finish
sent() { # sent KEY SECRET ID: a signed event; prints the status
	printf '{"event":"room_finished","id":"%s"}' "$3" >"$WORK/ev.json"
	post /webhooks/livekit "$WORK/ev.json" "$("$AFTERCALL" sign --key "$1" --secret "$2" "$WORK/ev.json")"
}
wait_log() { for _ in $(seq 1 50); do grep -q "$1" "$WORK/host.log" && return 0; sleep 0.05; done; return 1; }

check "key one works" 200 "$(sent APIone one-secret-0123456789 EV_l1)"
check "key two is unknown" 401 "$(sent APItwo two-secret-0123456789 EV_l2)"

# A new key and a new log level, by SIGHUP.
config "    APIone: one-secret-0123456789
    APItwo: two-secret-0123456789" "127.0.0.1:0" debug
kill -HUP "$HOST_PID"
wait_log '"msg":"SIGHUP: config reloaded"'
check_grep "SIGHUP reloads the config" '"msg":"SIGHUP: config reloaded","livekit_keys":"2"' "$WORK/host.log"
check "after the reload key two works" 200 "$(sent APItwo two-secret-0123456789 EV_l3)"
check "and key one still does" 200 "$(sent APIone one-secret-0123456789 EV_l4)"

# A broken file: the running config stays.
printf 'listen: [broken\n' >"$WORK/l.yaml"
kill -HUP "$HOST_PID"
wait_log 'SIGHUP: config not reloaded; keeping the running one'
check_grep "a broken file is refused" 'SIGHUP: config not reloaded; keeping the running one' "$WORK/host.log"
check "key two still works" 200 "$(sent APItwo two-secret-0123456789 EV_l5)"

# A change that needs a restart: refused, and named.
config "    APIone: one-secret-0123456789" "127.0.0.1:1"
kill -HUP "$HOST_PID"
wait_log 'this change needs a restart'
check_grep "a new listen address needs a restart" '"changed":"listen"' "$WORK/host.log"
check "and key two still works" 200 "$(sent APItwo two-secret-0123456789 EV_l6)"

# SIGTERM with deliveries in flight: they finish, then exit 0.
config "    APIone: one-secret-0123456789
    APItwo: two-secret-0123456789"
control faults '{"slow_ms":1500}' >/dev/null
check "an event with a send" 200 "$(sent APIone one-secret-0123456789 EV_l7)"
for _ in $(seq 1 40); do
	[ "$(store_sql "$STORE" "select count(*) from outbox where state = 'inflight'")" -ge 1 ] && break
	sleep 0.05
done
start=$(date +%s%N)
kill -TERM "$HOST_PID"
wait "$HOST_PID"
rc=$?
HOST_PID=
took=$(( ($(date +%s%N) - start) / 1000000 ))
check "SIGTERM exits 0" 0 "$rc"
echo "stopped in $took ms"
check "the delivery in flight finished before the exit" 0 \
	"$(store_sql "$STORE" "select count(*) from outbox where state in ('pending', 'inflight')")"
check_grep "the plugin heard its outcome" '^delivery EV_l7 done' "$RECORD"
control faults '{}' >/dev/null

# A timer of a plugin this host does not load (another host's, on a shared
# store) is left alone, not claimed and pushed back, and start-up says so.
due=$(($(date +%s%3N) - 1000))
store_sql "$STORE" "insert into kv(ns, key, value, due_ms) values('ghost', 'g1', 'x', $due)" >/dev/null
start_host "$WORK/l.yaml" || finish
wait_log '"msg":"timers of plugins this host does not load are left for a host that does"'
check_grep "start-up names the timers left for another host" \
	'"msg":"timers of plugins this host does not load are left for a host that does","timers":"1"' \
	"$WORK/host.log"
sleep 1.5 # the dispatcher looks for due timers at least once a second
check "the other plugin's timer is untouched" "$due" \
	"$(store_sql "$STORE" "select due_ms from kv where ns = 'ghost' and key = 'g1'")"
if grep -q 'timer of a plugin that is not loaded' "$WORK/host.log"; then
	not_ok "and was never claimed"
else
	ok "and was never claimed"
fi
check "nor counted among this host's pending timers" \
	"$(store_sql "$STORE" "select count(*) from kv where due_ms > 0 and ns <> 'ghost'")" \
	"$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 == "aftercall_pending_timers" { print $2 }')"
stop_host
store_sql "$STORE" "delete from kv where ns = 'ghost'" >/dev/null

# A second serve on the same SQLite file is refused while the first runs
# (on PostgreSQL, hosts share the store: multihost.sh).
if ! on_postgres; then
	start_host "$WORK/l.yaml" || finish
	"$AFTERCALL" serve -c "$WORK/l.yaml" 2>"$WORK/second.log"
	check "a second serve on the same store exits 1" 1 $?
	check_grep "saying the store is in use" 'is in use by another aftercall serve process' "$WORK/second.log"
fi

# A second serve on the address the first listens on is refused, even with
# a store of its own: two processes must not split the webhooks between
# them (libmicrohttpd's SO_REUSEPORT would let it in).
if on_postgres; then start_host "$WORK/l.yaml" || finish; fi
sed "s#^listen: .*#listen: 127.0.0.1:$PORT#; s#^store: .*#store: sqlite:$WORK/other.db#" \
	"$WORK/l.yaml" >"$WORK/other.yaml"
timeout 10 "$AFTERCALL" serve -c "$WORK/other.yaml" 2>"$WORK/third.log"
check "a second serve on the same address exits 1" 1 $?
check_grep "saying it cannot listen there" "cannot listen on 127.0.0.1:$PORT" "$WORK/third.log"
finish
