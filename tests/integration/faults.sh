#!/usr/bin/env bash
# Delivery faults prism cannot carry (it turns them into its own answers),
# so the outbox talks to the MultiMail double directly: answers slower than
# the timeout, and connections reset in the middle of an answer. In both the
# double did the work before the answer was lost: the retry carries the same
# idempotency key, so nothing is lost and nothing is doubled.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url f) || { not_ok "create the store"; finish; }

start_double || finish
KEY=mm_live_faults_key
MBX=$(curl -s -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	--data '{"address_local":"faults"}' "http://127.0.0.1:$DOUBLE/v1/mailboxes" |
	sed -n 's/.*"id":"\(mbx_[^"]*\)".*/\1/p')
RECORD="$WORK/seen.txt"
cat >"$WORK/f.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APIf: faults-secret-0123456789
outbox: {timeout: 1, connect_timeout: 1, retry_base_ms: 100, retry_cap_ms: 500}
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config:
      file: $RECORD
      send_url: http://127.0.0.1:$DOUBLE/v1/mailboxes/$MBX/send
      send_key: $KEY
      max_attempts: 30
YAML
start_host "$WORK/f.yaml" || finish

post_events() { # post_events PREFIX N
	for i in $(seq 1 "$2"); do
		printf '{"event":"room_finished","id":"%s%03d"}' "$1" "$i" >"$WORK/ev.json"
		post /webhooks/livekit "$WORK/ev.json" \
			"$("$AFTERCALL" sign --key APIf --secret faults-secret-0123456789 "$WORK/ev.json")" >/dev/null
	done
}
done_rows() { store_sql "$STORE" "select count(*) from outbox where state = 'done' and idem_key like '$1%'"; }
wait_done() { for _ in $(seq 1 300); do [ "$(done_rows "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
per_key() { # per_key PREFIX: "emails keys doubled" at the double
	control state | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
const st=JSON.parse(s);const p=process.argv[1];
const keys=Object.entries(st.idempotency).filter(([k])=>k.startsWith(p));
const emails=st.emails.filter(e=>e.direction==="outbound"&&(e.subject||"").startsWith("Follow-up "+p)).length;
console.log(emails, keys.length, keys.filter(([,v])=>v.emails_created!==1).length)})' "$1"
}

# Answers slower than the 1 s timeout for a while.
control faults '{"slow_ms":1500}' >/dev/null
post_events S 10
sleep 2.5
slow_attempts=$(store_sql "$STORE" "select max(attempts) from outbox where idem_key like 'S%'")
if [ "${slow_attempts:-0}" -ge 1 ]; then ok "timed-out attempts are counted ($slow_attempts)"; else not_ok "timed-out attempts are counted"; fi
check "nothing is done while every answer is late" 0 "$(done_rows S)"
control faults '{}' >/dev/null
wait_done S 10
check "all 10 are done once answers are prompt" 10 "$(done_rows S)"
check "the double holds 10 emails under 10 keys, none doubled" "10 10 0" "$(per_key S)"

# Connections reset in the middle of every second answer.
log_count() { # log_count JS-FILTER: requests in the double's log
	control requests | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
const r=JSON.parse(s);const a=Array.isArray(r)?r:(r.requests||[]);
console.log(a.filter(x=>eval(process.argv[1])).length)})' "$1"
}
sends_seen() { log_count '(x.path||"").endsWith("/send")'; }
resets_seen() { log_count 'JSON.stringify(x).includes("reset")'; }
before=$(sends_seen)
control faults '{"reset_every":2}' >/dev/null
post_events R 20
wait_done R 20
check "all 20 are done through the resets" 20 "$(done_rows R)"
check "the double holds 20 emails under 20 keys, none doubled" "20 20 0" "$(per_key R)"
after=$(sends_seen)
echo "the double saw $((after - before)) send requests for 20 rows, $(resets_seen) of them reset"
if [ "$((after - before))" -gt 20 ] && [ "$(resets_seen)" -gt 0 ]; then
	ok "the reset requests were sent again (libcurl or the outbox)"
else
	not_ok "the reset requests were sent again"
fi
retried=$(store_sql "$STORE" "select count(*) from outbox where idem_key like 'R%' and attempts > 1")
if [ "$retried" -gt 0 ]; then ok "the outbox counts those attempts ($retried rows retried)"; else not_ok "the outbox counts those attempts"; fi
check "a reset answer is never taken for a success" 0 \
	"$(store_sql "$STORE" "select count(*) from outbox where idem_key like 'R%' and attempts > 1 and last_status = 202")"
control faults '{}' >/dev/null
check "each plugin heard one outcome per row" 30 "$(grep -c '^delivery [SR][0-9]* done' "$RECORD")"
finish
