#!/usr/bin/env bash
# The forward plugin end to end: the real host, counter emitting a derived
# event, forward sending both kinds through the outbox to a stand-in CRM that
# verifies each request with the Standard Webhooks reference library (npm
# standardwebhooks). Retries through 500s, a LiveKit event posted twice, a
# type no target wants, a CRM with the wrong secret, the audit trail and the
# log.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url fw) || { not_ok "create the store"; finish; }

# The CRM runs from the source checkout, where npm put its node_modules
# (make distcheck's copy of the tree has none).
CRM_DIR=${AFTERCALL_CRM_DIR:-$TOP_SRCDIR/tests/integration}
FORWARD="$PLUGIN_BUILDDIR/forward/.libs/forward.so"
CRM_PID=

stop_crm() {
	[ -n "${CRM_PID:-}" ] && kill "$CRM_PID" 2>/dev/null && wait "$CRM_PID" 2>/dev/null
	CRM_PID=
}
# finish() calls stop_double when it exists: stop the CRM there too.
stop_double() { stop_crm; }

if [ ! -d "$CRM_DIR/node_modules/standardwebhooks" ]; then
	not_ok "the test CRM needs npm ci in $CRM_DIR"
	finish
fi

# 33 key bytes, in the standard's "whsec_<base64>" form.
export CRM_WEBHOOK_SECRET="whsec_$(printf 'forward-test-key-0123456789abcdef' | base64 -w0)"
KEY_B64=${CRM_WEBHOOK_SECRET#whsec_}
LK_SECRET=forward-livekit-secret-0123456789
CRM_STATE="$WORK/crm.json"
RECORD="$WORK/seen.txt"

CRM_SECRET=$CRM_WEBHOOK_SECRET node "$CRM_DIR/crm.cjs" --record "$CRM_STATE" --fail-first 2 \
	>"$WORK/crm.out" 2>"$WORK/crm.log" &
CRM_PID=$!
CRM=$(wait_listening "$WORK/crm.out" "$CRM_PID") || { not_ok "the CRM starts"; cat "$WORK/crm.log"; finish; }
ok "the CRM starts"

cat >"$WORK/fw.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APIfw: $LK_SECRET
outbox:
  timeout: 2
  connect_timeout: 1
  retry_base_ms: 100
  retry_cap_ms: 500
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config:
      file: $RECORD
      emit: aftercall.email.approved
  - name: forward
    path: $FORWARD
    config:
      targets:
        - url: http://127.0.0.1:$CRM/hooks/aftercall
          events: ["aftercall.email.*", "room_finished"]
          secret: \${CRM_WEBHOOK_SECRET}
          headers: ["X-Extra: 1"]
YAML

# crm QUERY: evaluates a JavaScript expression over the CRM's record file
# (s), printing the result.
crm() {
	node -e '
const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const out = (function (s) { return eval(process.argv[2]); })(s);
console.log(typeof out === "object" ? JSON.stringify(out) : out);' "$CRM_STATE" "$1"
}

# post_event TYPE ID: a signed LiveKit event; prints the HTTP status.
post_event() {
	printf '{"event":"%s","id":"%s","room":{"name":"forward-room"},"createdAt":"1700000000"}' \
		"$1" "$2" >"$WORK/ev-$2-$1.json"
	local tok
	tok=$("$AFTERCALL" sign --key APIfw --secret "$LK_SECRET" "$WORK/ev-$2-$1.json")
	post /webhooks/livekit "$WORK/ev-$2-$1.json" "$tok"
}

outbox_count() { # outbox_count STATE
	"$AFTERCALL" outbox list -c "$WORK/fw.yaml" --state "$1" | tail -n +2 | wc -l
}

wait_rows() { # wait_rows STATE N SECONDS
	for _ in $(seq 1 $(($3 * 10))); do
		[ "$(outbox_count "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# A bad config is refused with the target and key named, and no secret.
sed 's|url: http://127.0.0.1:[0-9]*/hooks/aftercall|url: ftp://127.0.0.1/x|' "$WORK/fw.yaml" >"$WORK/bad.yaml"
out=$("$AFTERCALL" check -c "$WORK/bad.yaml" 2>&1)
case "$out" in *"targets[0].url: must be an http(s) URL"*) ok "a bad url is refused by name";;
*) not_ok "a bad url is refused by name: $out";; esac
# check runs init as serve does: its log lines carry the plugin's name.
out=$("$AFTERCALL" check -c "$WORK/fw.yaml" 2>&1)
case "$out" in *'"msg":"target 0: '*'"plugin":"forward"'*) ok "check's init log lines name the plugin";;
*) not_ok "check's init log lines name the plugin: $out";; esac

start_host "$WORK/fw.yaml" || { not_ok "host starts"; finish; }
ok "host starts with counter and forward"

# 1. room_finished (forwarded, and its derived aftercall.email.approved too)
#    posted twice; participant_joined (only its derived event forwarded).
#    The CRM answers 500 to the first two requests.
check "room_finished accepted" 200 "$(post_event room_finished EV_fw_0001)"
check "the same event posted again is 200" 200 "$(post_event room_finished EV_fw_0001)"
check "it is a duplicate" duplicate "$(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' "$WORK/resp")"
check "participant_joined accepted" 200 "$(post_event participant_joined EV_fw_0002)"
wait_rows done 3 30
sleep 1 # room for a stray extra request to show up
check "three rows are done" 3 "$(outbox_count done)"
check "and none dead" 0 "$(outbox_count dead)"
check "the CRM took three messages" 3 "$(crm 's.delivered.length')"
check "each webhook-id exactly once" 3 "$(crm 'new Set(s.delivered.map((d) => d.id)).size')"
check "the host sends each row's idempotency key (here the webhook-id)" true \
	"$(crm 's.delivered.every((d) => d.idempotency_key === d.id)')"
check "room_finished arrived once" 1 "$(crm 's.delivered.filter((d) => d.body.type === "room_finished").length')"
check "the derived event arrived once per LiveKit event" 2 \
	"$(crm 's.delivered.filter((d) => d.body.type === "aftercall.email.approved").length')"
check "participant_joined was not forwarded" 0 "$(crm 's.delivered.filter((d) => d.body.type === "participant_joined").length')"
check "the CRM failed two on purpose" 2 "$(crm 's.failed_on_purpose')"
check "every request verified, none refused" "5 0" "$(crm 's.verified + " " + s.refused')"
check "the data is the LiveKit body" "EV_fw_0001 forward-room" \
	"$(crm 'const d = s.delivered.find((d) => d.body.type === "room_finished").body.data; d.id + " " + d.room.name')"
check "timestamp is ISO 8601 UTC" true \
	"$(crm 's.delivered.every((d) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(d.body.timestamp))')"
check "content type and the extra header came along" "application/json 1" \
	"$(crm 'const d = s.delivered[0]; d.content_type + " " + d.extra')"
retried=$("$AFTERCALL" outbox list -c "$WORK/fw.yaml" --state done | awk 'NR > 1 && $3 > 1' | wc -l)
if [ "$retried" -gt 0 ]; then ok "the 500s were retried ($retried rows with attempts > 1)"; else not_ok "the 500s were retried"; fi
check "counter saw each LiveKit event once" 2 "$(grep -c '^event [rp][a-z_]* EV_fw_' "$RECORD")"

# The outbox keeps the headers, but shows no signature.
row=$("$AFTERCALL" outbox list -c "$WORK/fw.yaml" --state done | awk 'NR == 2 { print $1 }')
"$AFTERCALL" outbox show -c "$WORK/fw.yaml" "$row" >"$WORK/show.txt"
check_grep "outbox show names webhook-signature" '^  webhook-signature: (hidden)$' "$WORK/show.txt"
if grep -q 'v1,' "$WORK/show.txt"; then not_ok "outbox show hides the signature"; else ok "outbox show hides the signature"; fi

# 2. Negative control: the CRM now expects another secret. Verification
#    fails, the CRM answers 401, the rows are dead and audited as failed.
curl -s -X POST --data "{\"secret\":\"whsec_$(printf 'some-other-key-0123456789abcdefgh' | base64 -w0)\"}" \
	"http://127.0.0.1:$CRM/__control" >/dev/null
check "room_finished accepted" 200 "$(post_event room_finished EV_fw_0003)"
wait_rows dead 2 30
check "with the wrong secret both rows are dead" 2 "$(outbox_count dead)"
check "the CRM refused two" 2 "$(crm 's.refused')"
check "for the signature" "No matching signature found" "$(crm 's.refusals[0]')"
check "and took nothing more" 3 "$(crm 's.delivered.length')"

# 3. The audit trail.
# jx FIELD: a field of the audit detail, in the store's own SQL.
jx() { if on_postgres; then echo "(detail::jsonb ->> '$1')"; else echo "json_extract(detail, '\$.$1')"; fi; }
check "forward.delivered audited per message" 3 \
	"$(store_sql "$STORE" "select count(*) from audit where actor = 'forward' and kind = 'forward.delivered'")"
check "the room_finished event's two messages name it" 2 \
	"$(store_sql "$STORE" "select count(*) from audit where kind = 'forward.delivered' and subject = 'EV_fw_0001'")"
check "forward.failed audited for the refused ones" 2 \
	"$(store_sql "$STORE" "select count(*) from audit where kind = 'forward.failed' and subject = 'EV_fw_0003'")"
check "the failure detail has the status" 401 \
	"$(store_sql "$STORE" "select $(jx status) from audit where kind = 'forward.failed' limit 1")"
check "the detail names the target" "0 http://127.0.0.1:$CRM/hooks/aftercall" \
	"$(store_sql "$STORE" "select $(jx target) || ' ' || $(jx url) from audit where kind = 'forward.delivered' limit 1")"

# 4. Each attempt is signed anew. The CRM takes the right secret again but
#    refuses a webhook-timestamp over a second old, and answers the first
#    request 503 with Retry-After: 2: the retry two seconds later must carry
#    a new timestamp and a signature over it.
curl -s -X POST --data "{\"secret\":\"$CRM_WEBHOOK_SECRET\",\"fail_first\":1,\"retry_after\":2,\"max_age\":1}" \
	"http://127.0.0.1:$CRM/__control" >/dev/null
check "room_finished accepted" 200 "$(post_event room_finished EV_fw_0004)"
wait_rows done 5 30
check "both rows are done after the retry" 5 "$(outbox_count done)"
check "none more dead" 2 "$(outbox_count dead)"
check "the retried message was refused nowhere" 2 "$(crm 's.refused')"
check "the retry went out with a timestamp at least 2 s after the first attempt's" true \
	"$(crm 'const a = s.attempts.slice(-3), f = a.find((x) => a.filter((y) => y.id === x.id).length === 2), t = a.filter((y) => y.id === f.id).map((y) => Number(y.timestamp)); t[1] - t[0] >= 2')"

stop_host
check_grep "the log tells of the deliveries" '"msg":"event EV_fw_0001 delivered to target 0' "$WORK/host.log"
check_grep "and of the failures" '"msg":"event EV_fw_0003 not delivered to target 0' "$WORK/host.log"
if grep -qF -e "$KEY_B64" -e "forward-test-key" "$WORK/host.log"; then
	not_ok "no secret in the host log"
else
	ok "no secret in the host log"
fi
if store_sql "$STORE" "select detail from audit" | grep -qF -e "$KEY_B64" -e "forward-test-key"; then
	not_ok "no secret in the audit trail"
else
	ok "no secret in the audit trail"
fi
finish
