#!/usr/bin/env bash
# The store made read-only under a running host, on PostgreSQL: the host's
# connection is cut and its database now takes no writes (as when the
# primary fails over and the address leads to a read-only server). The
# host answers 503, acknowledges nothing, /healthz says 503, and once the
# database takes writes again it recovers by itself: the refused events are
# accepted when sent again, each journaled once. (SQLite's own store fault,
# a full disk, is storefail.sh.)
. "${TOP_SRCDIR:-.}/tests/lib.sh"
[ -n "${AFTERCALL_TEST_PG:-}" ] || { not_ok "readonly needs AFTERCALL_TEST_PG (tools/pg start DIR)"; finish; }
export AFTERCALL_TEST_STORE=postgres
STORE=$(store_url ro) || { not_ok "create the store"; finish; }
DB=${STORE##*/}
admin() { psql "$AFTERCALL_TEST_PG/postgres" -qAtX -c "$1"; }
export S1='readonly-secret-0123456789abcdef'
cat >"$WORK/ro.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APIro: \${S1}
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $WORK/seen.txt}
YAML
start_host "$WORK/ro.yaml" || finish
post() { # post ID: a signed room_finished with that id; prints the status
	printf '{"event":"room_finished","room":{"sid":"RM_ro","name":"ro"},"id":"%s"}' "$1" >"$WORK/$1.json"
	curl -s -o "$WORK/resp" -w '%{http_code}' -H 'Content-Type: application/webhook+json' \
		-H "Authorization: $("$AFTERCALL" sign --key APIro --secret "$S1" "$WORK/$1.json")" \
		--data-binary @"$WORK/$1.json" "http://127.0.0.1:$PORT/webhooks/livekit"
}
health() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz"; }
journal() { store_sql "$STORE" "select count(*) from journal"; }

check "an event before the fault is accepted" 200 "$(post EV_ro_before)"

# The fault: new sessions of this database are read-only, and the host's
# session is cut.
admin "ALTER DATABASE $DB SET default_transaction_read_only = on" >/dev/null
admin "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB' AND application_name = 'aftercall'" >/dev/null
refused=0
for i in 1 2 3 4 5; do
	st=$(post "EV_ro_$i")
	[ "$st" = 503 ] && refused=$((refused + 1))
done
check "events while the store is read-only get 503" 5 "$refused"
check_grep "the log says why" 'read-only transaction' "$WORK/host.log"
for _ in $(seq 1 40); do [ "$(health)" = 503 ] && break; sleep 0.1; done
check "/healthz says 503" 503 "$(health)"
check "nothing was journaled meanwhile" 1 "$(journal)"
check "and no plugin saw the refused events" 1 "$(grep -c '^event ' "$WORK/seen.txt")"

# The database takes writes again; the host finds out by itself.
admin "ALTER DATABASE $DB RESET default_transaction_read_only" >/dev/null
for _ in $(seq 1 60); do [ "$(health)" = 200 ] && break; sleep 0.1; done
check "/healthz recovers to 200" 200 "$(health)"
check_grep "the log says the store is writable again" '"msg":"store: writable again"' "$WORK/host.log"
ok=0
for i in 1 2 3 4 5; do [ "$(post "EV_ro_$i")" = 200 ] && ok=$((ok + 1)); done
check "the refused events are accepted when sent again" 5 "$ok"
check "each is journaled once" 6 "$(journal)"
check "and reached the plugin once" 6 "$(grep -c '^event ' "$WORK/seen.txt")"
finish
