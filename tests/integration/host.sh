#!/usr/bin/env bash
# The host end to end: the real binary on loopback, a real SQLite file, the
# LiveKit samples signed with `aftercall sign` and posted with curl.
. "${TOP_SRCDIR:-.}/tests/lib.sh"

K1=APIfirstkey K2=APIsecondkey
export S1='first-secret-0123456789abcdef' S2='second-secret-0123456789abcdef'
SAMPLES="$TEST_DATA/livekit"
RECORD="$WORK/seen.txt"
STORE=$(store_url aftercall) || { not_ok "create the store"; finish; }

write_config() { # write_config FILE PLUGIN_LINES...
	local f=$1; shift
	cat >"$f" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    $K1: \${S1}
    $K2: \${S2}
plugins:
$(printf '%s\n' "$@")
YAML
}

write_config "$WORK/ok.yaml" \
	"  - name: counter" "    path: $TEST_PLUGINS/counter.so" "    config: {file: $RECORD}"

out=$("$AFTERCALL" check -c "$WORK/ok.yaml" 2>&1)
check "check accepts a valid config" 0 $?
case "$out" in *"route   POST /webhooks/livekit  verify=livekit  plugins=counter"*) ok "check lists the default route";; *) not_ok "check lists the default route: $out";; esac
case "$out" in *"store   $STORE (created at first start)"*) ok "check says the store is new";; *) not_ok "check says the store is new: $out";; esac

start_host "$WORK/ok.yaml" || { not_ok "host starts"; finish; }
ok "host starts"

st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")
check "healthz answers 200" 200 "$st"
# Health checkers keep their connection: the second GET rides the first's.
check "healthz keeps the connection open" "200 1,200 0," \
	"$(curl -s -o /dev/null -o /dev/null -w '%{http_code} %{num_connects},' "http://127.0.0.1:$PORT/healthz" "http://127.0.0.1:$PORT/healthz")"

# Every sample, signed alternately with each key, is accepted; then again,
# as a duplicate, also 200.
i=0
for f in "$SAMPLES"/*.json; do
	name=$(basename "$f")
	if [ $((i % 2)) -eq 0 ]; then tok=$("$AFTERCALL" sign --key $K1 --secret "$S1" "$f")
	else tok=$("$AFTERCALL" sign --key $K2 --secret "$S2" "$f"); fi
	check "$name signed is accepted" 200 "$(post /webhooks/livekit "$f" "$tok")"
	check "$name answer says accepted" accepted "$(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' "$WORK/resp")"
	check "$name posted again is 200" 200 "$(post /webhooks/livekit "$f" "$tok")"
	check "$name again is a duplicate" duplicate "$(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' "$WORK/resp")"
	i=$((i + 1))
done
check "the chain saw each sample once" "$i" "$(grep -c '^event ' "$RECORD")"
check "room_finished seen with its id" 1 "$(grep -c '^event room_finished EV_eugWmGhovZmm$' "$RECORD")"
check "journal holds each sample once" "$i" "$(store_sql "$STORE" 'select count(*) from journal')"

# Refusals: each changes nothing.
f="$SAMPLES/room_finished.json"
tok=$("$AFTERCALL" sign --key $K1 --secret "$S1" "$f")
sed 's/demo-room/demo-roon/' "$f" >"$WORK/changed.json"
check "one changed body byte gives 401" 401 "$(post /webhooks/livekit "$WORK/changed.json" "$tok")"
check_grep "the log names the body hash mismatch" '"reason":"body hash mismatch"' "$WORK/host.log"

now=$(date +%s)
sed 's/EV_eugWmGhovZmm/EV_fresh000001/' "$f" >"$WORK/fresh.json"
tok=$("$AFTERCALL" sign --key $K1 --secret "$S1" --at $((now - 400)) --ttl 300 "$WORK/fresh.json")
check "token expired beyond the leeway gives 401" 401 "$(post /webhooks/livekit "$WORK/fresh.json" "$tok")"
check_grep "the log says expired" '"reason":"token expired"' "$WORK/host.log"
tok=$("$AFTERCALL" sign --key $K1 --secret "$S1" --at $((now - 330)) --ttl 300 "$WORK/fresh.json")
check "token expired within the leeway is accepted" 200 "$(post /webhooks/livekit "$WORK/fresh.json" "$tok")"
sed 's/EV_eugWmGhovZmm/EV_fresh000002/' "$f" >"$WORK/fresh2.json"
tok=$("$AFTERCALL" sign --key $K1 --secret "$S1" --at $((now + 300)) "$WORK/fresh2.json")
check "token not yet valid gives 401" 401 "$(post /webhooks/livekit "$WORK/fresh2.json" "$tok")"
check_grep "the log says not yet valid" '"reason":"token not yet valid"' "$WORK/host.log"
tok=$("$AFTERCALL" sign --key APIunknown --secret "$S1" "$WORK/fresh2.json")
check "unknown iss gives 401" 401 "$(post /webhooks/livekit "$WORK/fresh2.json" "$tok")"
check_grep "the log says unknown key" '"reason":"unknown API key","iss":"APIunknown"' "$WORK/host.log"
tok=$("$AFTERCALL" sign --key $K1 --secret wrong-secret "$WORK/fresh2.json")
check "wrong secret gives 401" 401 "$(post /webhooks/livekit "$WORK/fresh2.json" "$tok")"
check "no token gives 401" 401 "$(post /webhooks/livekit "$WORK/fresh2.json")"

head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$WORK/big.json"
tok=$("$AFTERCALL" sign --key $K1 --secret "$S1" "$WORK/big.json")
check "a 2 MiB body gives 413" 413 "$(post /webhooks/livekit "$WORK/big.json" "$tok")"
st=$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -H "Authorization: $tok" \
	--data-binary "@$WORK/big.json" "http://127.0.0.1:$PORT/webhooks/livekit")
case "$st" in 2*) not_ok "a chunked body over the limit is cut off (got $st)";; *) ok "a chunked body over the limit is cut off";; esac
check_grep "the log says why" '"reason":"body over the size limit (connection closed)"' "$WORK/host.log"
check "both count as 413 in the metrics" 2 \
	"$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^aftercall_http_requests_total\{.*status="413"\}/ { print $2 }')"
printf 'this is not json' >"$WORK/notjson"
tok=$("$AFTERCALL" sign --key $K1 --secret "$S1" "$WORK/notjson")
check "a signed non-JSON body gives 400" 400 "$(post /webhooks/livekit "$WORK/notjson" "$tok")"
printf '{"id":"EV_noevent","room":{}}' >"$WORK/noevent.json"
tok=$("$AFTERCALL" sign --key $K1 --secret "$S1" "$WORK/noevent.json")
check "a signed body with no event gives 400" 400 "$(post /webhooks/livekit "$WORK/noevent.json" "$tok")"
check "unknown path gives 404" 404 "$(post /webhooks/other "$WORK/noevent.json" "$tok")"
st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/webhooks/livekit")
check "GET on a webhook route gives 405" 405 "$st"
check "refusals changed nothing in the journal" $((i + 1)) \
	"$(store_sql "$STORE" 'select count(*) from journal')"
check "refusals reached no plugin" $((i + 1)) "$(grep -c '^event ' "$RECORD")"
if grep -q -e "$S1" -e "$S2" "$WORK/host.log"; then not_ok "secrets stay out of the log"; else ok "secrets stay out of the log"; fi

# SIGKILL right after a 200: the event is durable and not dispatched again.
sed 's/EV_eugWmGhovZmm/EV_killed00001/' "$f" >"$WORK/killed.json"
tok=$("$AFTERCALL" sign --key $K2 --secret "$S2" "$WORK/killed.json")
check "event before the kill is accepted" 200 "$(post /webhooks/livekit "$WORK/killed.json" "$tok")"
kill_host
check "after SIGKILL the event is in the journal" 1 \
	"$(store_sql "$STORE" "select count(*) from journal where dedupe = 'EV_killed00001'")"
start_host "$WORK/ok.yaml" || not_ok "host restarts"
check "the resent event is answered 200" 200 "$(post /webhooks/livekit "$WORK/killed.json" "$tok")"
check "and as a duplicate" duplicate "$(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' "$WORK/resp")"
check "the chain saw the killed event once" 1 "$(grep -c '^event room_finished EV_killed00001$' "$RECORD")"
stop_host

out=$("$AFTERCALL" check -c "$WORK/ok.yaml" 2>&1)
case "$out" in *"store   $STORE (schema 3)"*) ok "check names the store's schema";; *) not_ok "check names the store's schema: $out";; esac

# A second serve on the same SQLite file is refused; on PostgreSQL hosts
# share the store (tests/integration/multihost.sh).
if ! on_postgres; then
	start_host "$WORK/ok.yaml" || not_ok "host restarts"
	"$AFTERCALL" serve -c "$WORK/ok.yaml" 2>"$WORK/second.log"
	check "a second serve on the same store exits 1" 1 $?
	check_grep "it says the store is in use" "in use by another aftercall" "$WORK/second.log"
	stop_host
fi

# Usage errors of the small commands: each exits 2, saying why.
usage() { # usage NAME WORDS...: the command must exit 2
	local name=$1
	shift
	"$AFTERCALL" "$@" >"$WORK/usage.out" 2>&1
	check "$name is a usage error" 2 $?
}
printf '{}' >"$WORK/empty.json"
usage "sign --at past year 9999" sign --key K --secret S --at 253402300800 "$WORK/empty.json"
usage "version with an argument" version extra
usage "migrate --to 2^32 + 1 (not taken as 1)" migrate -c "$WORK/ok.yaml" --to 4294967297
usage "audit --room with --contact" audit -c "$WORK/ok.yaml" --room r --contact x@example.com
check_grep "saying to give one" "give --room or --contact, not both" "$WORK/usage.out"
usage "audit with nothing to show" audit -c "$WORK/ok.yaml"
check_grep "saying what it takes" "^aftercall audit: give --room, --contact or --verify$" "$WORK/usage.out"
usage "audit --verify with an argument" audit -c "$WORK/ok.yaml" --verify extra
check_grep "naming it" "^aftercall audit: unexpected argument 'extra'$" "$WORK/usage.out"
usage "mailbox with no action" mailbox
check_grep "naming the one it has" "^aftercall mailbox: the action is required: create$" "$WORK/usage.out"
usage "mailbox create with no name" mailbox create
check_grep "saying it is required" "^aftercall mailbox create: LOCAL or ADDRESS is required$" "$WORK/usage.out"
usage "mailbox with an unknown action" mailbox delete x
check_grep "naming it" "^aftercall mailbox: unknown action 'delete'$" "$WORK/usage.out"
usage "mailbox create with two names" mailbox create x y
check_grep "naming the second" "^aftercall mailbox create: unexpected argument 'y'$" "$WORK/usage.out"

# A plugin of another ABI major is refused at start and by check.
abi=$("$AFTERCALL" version | sed -n 's/.*plugin ABI \([0-9]*\.[0-9]*\).*/\1/p')
want="bad_major.so: plugin ABI $(( ${abi%.*} + 1 )).0 is not compatible with this host's ABI $abi"
write_config "$WORK/bad.yaml" "  - name: bad" "    path: $TEST_PLUGINS/bad_major.so"
"$AFTERCALL" serve -c "$WORK/bad.yaml" 2>"$WORK/bad.log"
check "serve refuses a plugin of another major" 1 $?
check_grep "serve names the file and both versions" "$want" "$WORK/bad.log"
"$AFTERCALL" check -c "$WORK/bad.yaml" 2>"$WORK/badcheck.log"
check "check refuses it too" 1 $?
check_grep "check says the same" "$want" "$WORK/badcheck.log"

# A missing environment variable is named.
sed 's/\${S2}/${AFTERCALL_UNSET_VAR}/' "$WORK/ok.yaml" >"$WORK/env.yaml"
"$AFTERCALL" check -c "$WORK/env.yaml" 2>"$WORK/env.log"
check "check fails on a missing variable" 1 $?
check_grep "and names it with line and key" "env.yaml:6: livekit.keys.$K2: environment variable AFTERCALL_UNSET_VAR is not set" "$WORK/env.log"

# A failing plugin: 500, and the event is rolled back so a retry can succeed.
write_config "$WORK/fail.yaml" \
	"  - name: counter" "    path: $TEST_PLUGINS/counter.so" "    config: {file: $RECORD, fail_type: room_finished}"
store_sql "$STORE" 'delete from journal' >/dev/null
start_host "$WORK/fail.yaml" || not_ok "host starts with the failing plugin"
tok=$("$AFTERCALL" sign --key $K1 --secret "$S1" "$f")
check "a plugin failure answers 500" 500 "$(post /webhooks/livekit "$f" "$tok")"
check "and journals nothing" 0 "$(store_sql "$STORE" 'select count(*) from journal')"
stop_host

# Command-line mistakes name the one that was made (exit 2).
out=$("$AFTERCALL" sign --secret "$S1" "$WORK/fresh2.json" 2>&1)
check "sign without --key exits 2" 2 $?
case "$out" in "aftercall sign: --key is required"*) ok "and says so";; *) not_ok "and says so: $out";; esac
out=$(env -u AFTERCALL_SIGN_SECRET "$AFTERCALL" sign --key $K1 "$WORK/fresh2.json" 2>&1)
check "sign without a secret exits 2" 2 $?
case "$out" in *"--secret, or AFTERCALL_SIGN_SECRET in the environment"*) ok "and names both ways to give it";; *) not_ok "and names both ways to give it: $out";; esac
out=$("$AFTERCALL" outbox show -c "$WORK/ok.yaml" abc 2>&1)
check "outbox show with a row ID that is not a number exits 2" 2 $?
check "and says so" "aftercall outbox show: a row ID is a number (as outbox list shows), not 'abc'" "$out"

finish
