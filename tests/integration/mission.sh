#!/usr/bin/env bash
# The mission end to end: the real host with the multimail plugin, the
# MultiMail double behind prism (MultiMail's openapi.json), LiveKit webhooks
# signed by livekit-server-sdk, transcripts posted by examples/post_summary.cjs.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url e2e) || { not_ok "create the store"; finish; }

NM=${AFTERCALL_NODE_MODULES:-$TOP_SRCDIR/tests/interop/node_modules}
export NODE_PATH="$NM"
start_double || finish
KEY=APIe2e SECRET=e2e-livekit-secret-0123456789
MMKEY=mm_live_e2e_sender_key
MBX=$(curl -s -X POST -H "Authorization: Bearer $MMKEY" -H 'Content-Type: application/json' \
	--data '{"address_local":"followups","display_name":"Acme Dental"}' \
	"http://127.0.0.1:$PRISM/v1/mailboxes" | sed -n 's/.*"id":"\(mbx_[^"]*\)".*/\1/p')
[ -n "$MBX" ] && ok "the agent's mailbox exists" || not_ok "the agent's mailbox exists"
RECORD="$WORK/derived.txt"
HOOK_SECRET=whsec_e2e_multimail_secret

# The CRM that hangs off the approvals: it verifies every message with the
# Standard Webhooks reference library.
CRM_DIR=${AFTERCALL_CRM_DIR:-$TOP_SRCDIR/tests/integration}
export CRM_WEBHOOK_SECRET="whsec_$(printf 'mission-crm-key-0123456789abcdef' | base64 -w0)"
CRM_SECRET=$CRM_WEBHOOK_SECRET node "$CRM_DIR/crm.cjs" --record "$WORK/crm.json" \
	>"$WORK/crm.out" 2>"$WORK/crm.log" &
CRM_PID=$!
before_finish() { kill "$CRM_PID" 2>/dev/null; wait "$CRM_PID" 2>/dev/null; }
CRM=$(wait_listening "$WORK/crm.out" "$CRM_PID") || { not_ok "the CRM starts"; finish; }

cat >"$WORK/e2e.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
template_engine: $PLUGIN_BUILDDIR/mustache/.libs/mustache.so
templates: $TEMPLATES
livekit:
  keys:
    $KEY: $SECRET
outbox:
  retry_base_ms: 100
  retry_cap_ms: 1000
routes:
  - path: /webhooks/livekit
    verify: livekit
    plugins: [multimail]
  - path: /v1/transcripts
    verify: [livekit, {bearer: e2e-transcript-token-0123}]
    event_type: transcript
    plugins: [multimail]
  - path: /v1/contacts/{email}/history
    method: GET
    verify: [livekit, {bearer: e2e-transcript-token-0123}]
    plugins: [multimail]
  - path: /webhooks/multimail
    verify:
      hmac: {header: X-MultiMail-Signature, prefix: "sha256=", encoding: hex, secret: $HOOK_SECRET}
    plugins: [multimail, forward, counter]
plugins:
  - name: multimail
    path: $PLUGIN_BUILDDIR/multimail/.libs/multimail.so
    config:
      api_url: http://127.0.0.1:$PRISM
      api_key: $MMKEY
      mailbox_id: $MBX
      transcript_wait: 20
      finish_grace: 600
      sender: {name: Grace, company: Acme Dental}
      history_ttl: 1
  - name: forward
    path: $PLUGIN_BUILDDIR/forward/.libs/forward.so
    config:
      targets:
        - url: http://127.0.0.1:$CRM/hooks/aftercall
          events: ["aftercall.email.*"]
          secret: "\${CRM_WEBHOOK_SECRET}"
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $RECORD}
YAML
"$AFTERCALL" check -c "$WORK/e2e.yaml" >"$WORK/check.out" 2>&1
check "check accepts the mission config" 0 $?
start_host "$WORK/e2e.yaml" || finish
control webhook "{\"url\":\"http://127.0.0.1:$PORT/webhooks/multimail\",\"secret\":\"$HOOK_SECRET\"}" >/dev/null

lk() { # lk FILE: a LiveKit webhook signed by livekit-server-sdk
	node "$TOP_SRCDIR/tests/integration/lk_webhook.cjs" "http://127.0.0.1:$PORT/webhooks/livekit" \
		"$KEY" "$SECRET" "$1"
}
summary() { # summary FILE: the example agent script posts a transcript
	AFTERCALL_URL="http://127.0.0.1:$PORT" LIVEKIT_API_KEY=$KEY LIVEKIT_API_SECRET=$SECRET \
		node "$TOP_SRCDIR/examples/post_summary.cjs" "$1" | cut -c1-3
}
ev() { # ev FILE EVENT ID SID ROOM [PARTICIPANT_JSON]
	printf '{"event":"%s","room":{"sid":"%s","name":"%s","metadata":""},%s"id":"%s","createdAt":"1692627460"}' \
		"$2" "$4" "$5" "${6:+\"participant\":$6,}" "$3" >"$1"
}
caller() { # caller IDENTITY EMAIL NAME
	printf '{"sid":"PA_%s","identity":"%s","name":"%s","state":"DISCONNECTED","attributes":{"email":"%s"}}' \
		"$1" "$1" "$3" "$2"
}
agent='{"sid":"PA_agent","identity":"agent-1","name":"Agent","kind":"AGENT","attributes":{"email":"agent@example.com"}}'
sent_to() { # sent_to ADDRESS: how many emails the double holds for it
	control state | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
const st=JSON.parse(s);const a=process.argv[1];
console.log(st.emails.filter(e=>e.direction==="outbound"&&(e.to||[]).includes(a)).length)})' "$1"
}
subject_to() {
	control state | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
const st=JSON.parse(s);const e=st.emails.find(e=>e.direction==="outbound"&&(e.to||[]).includes(process.argv[1]));
console.log(e?e.subject:"")})' "$1"
}
body_of() {
	control state | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
const st=JSON.parse(s);const e=st.emails.find(e=>e.direction==="outbound"&&(e.to||[]).includes(process.argv[1]));
console.log(e?(e.markdown||e.body_markdown||""):"")})' "$1"
}
wait_sent() { # wait_sent ADDRESS N
	for _ in $(seq 1 100); do [ "$(sent_to "$1")" -ge "$2" ] && return 0; sleep 0.1; done
	return 1
}

# Session A, confirmation: transcript first; the room's end comes twice.
printf '{"room":"dental-a","room_sid":"RM_A","participant":"ada","template":"confirmation","summary":"You booked a cleaning.","data":{"appointment":"Tuesday 1 December, 10:00","location":"12 High Street"}}' >"$WORK/ta.json"
check "A: transcript accepted (signed by the example script)" 200 "$(summary "$WORK/ta.json")"
ev "$WORK/a1.json" participant_joined EV_A1 RM_A dental-a "$(caller ada ada@example.com 'Ada Lovelace')"
ev "$WORK/a2.json" participant_joined EV_A2 RM_A dental-a "$agent"
ev "$WORK/a3.json" room_finished EV_A3 RM_A dental-a
for f in a1 a2 a3 a3; do check "A: $f accepted" 200 "$(lk "$WORK/$f.json")"; done

# Session B, summary: the room ends first, the host restarts, then the transcript.
ev "$WORK/b1.json" participant_joined EV_B1 RM_B support-b "$(caller bob bob@example.com 'Bob Stone')"
ev "$WORK/b2.json" room_finished EV_B2 RM_B support-b
for f in b1 b2 b2; do check "B: $f accepted" 200 "$(lk "$WORK/$f.json")"; done

# Session C, sales follow-up: transcript first with its own `to`.
printf '{"room":"sales-c","participant":"cy","to":["cy@example.com"],"template":"sales_followup","summary":"Interested in the Pro plan.","data":{"product":"the Pro plan"}}' >"$WORK/tc.json"
check "C: transcript accepted" 200 "$(summary "$WORK/tc.json")"

# The other order for each template: E confirmation (transcript last), F
# summary (transcript first), G sales follow-up (transcript last).
ev "$WORK/e1.json" participant_joined EV_E1 RM_E dental-e "$(caller eve eve@example.com 'Eve Moss')"
ev "$WORK/e2.json" room_finished EV_E2 RM_E dental-e
for f in e1 e2 e2; do check "E: $f accepted" 200 "$(lk "$WORK/$f.json")"; done
printf '{"room":"support-f","room_sid":"RM_F","participant":"fay","template":"summary","summary":"Your refund is on its way."}' >"$WORK/tf.json"
check "F: transcript accepted" 200 "$(summary "$WORK/tf.json")"
ev "$WORK/f1.json" participant_joined EV_F1 RM_F support-f "$(caller fay fay@example.com 'Fay Lund')"
for f in f1 f1; do check "F: $f accepted" 200 "$(lk "$WORK/$f.json")"; done
ev "$WORK/g1.json" participant_joined EV_G1 RM_G sales-g "$(caller gus gus@example.com 'Gus Reed')"
ev "$WORK/g2.json" room_finished EV_G2 RM_G sales-g
for f in g1 g2; do check "G: $f accepted" 200 "$(lk "$WORK/$f.json")"; done

# Session D: no transcript ever; on_missing_transcript is skip.
ev "$WORK/d1.json" participant_joined EV_D1 RM_D quiet-d "$(caller dee dee@example.com Dee)"
ev "$WORK/d2.json" room_finished EV_D2 RM_D quiet-d
for f in d1 d2; do check "D: $f accepted" 200 "$(lk "$WORK/$f.json")"; done
d_ended=$(date +%s%N)

cp "$WORK/host.log" "$WORK/host.first.log"
stop_host
start_host "$WORK/e2e.yaml" || finish
control webhook "{\"url\":\"http://127.0.0.1:$PORT/webhooks/multimail\",\"secret\":\"$HOOK_SECRET\"}" >/dev/null

printf '{"room":"support-b","participant":"bob","summary":"Your router was reset.","data":{"next_steps":["We call you on Friday"]}}' >"$WORK/tb.json"
check "B: transcript after the restart accepted" 200 "$(summary "$WORK/tb.json")"
check "B: the same transcript again is a duplicate, 200" 200 "$(summary "$WORK/tb.json")"
ev "$WORK/c1.json" room_finished EV_C1 RM_C sales-c
for f in c1 c1; do check "C: $f accepted" 200 "$(lk "$WORK/$f.json")"; done
printf '{"room":"dental-e","participant":"eve","template":"confirmation","data":{"appointment":"Friday 4 December, 15:30"}}' >"$WORK/te.json"
check "E: transcript after the restart accepted" 200 "$(summary "$WORK/te.json")"
ev "$WORK/f2.json" room_finished EV_F2 RM_F support-f
for f in f2 f2; do check "F: $f accepted after the restart" 200 "$(lk "$WORK/$f.json")"; done
printf '{"room":"sales-g","room_sid":"RM_G","participant":"gus","template":"sales_followup","data":{"product":"the Team plan","offer":"two months free"}}' >"$WORK/tg.json"
check "G: transcript after the restart accepted" 200 "$(summary "$WORK/tg.json")"
check "G: the same transcript again is 200" 200 "$(summary "$WORK/tg.json")"

for a in ada bob cy eve fay gus; do wait_sent "$a@example.com" 1; done
check "A: one gated send to the caller's email attribute" 1 "$(sent_to ada@example.com)"
check "A: confirmation subject" "Confirmed: Tuesday 1 December, 10:00 with Acme Dental" "$(subject_to ada@example.com)"
check "B: one gated send" 1 "$(sent_to bob@example.com)"
check "B: summary subject" "Summary of your call with Acme Dental on $(date -u '+%-d %B %Y')" "$(subject_to bob@example.com)"
check "C: one gated send to the transcript's to" 1 "$(sent_to cy@example.com)"
check "C: sales subject" "Following up on the Pro plan | Acme Dental" "$(subject_to cy@example.com)"
check "E: one gated send" 1 "$(sent_to eve@example.com)"
check "E: confirmation subject" "Confirmed: Friday 4 December, 15:30 with Acme Dental" "$(subject_to eve@example.com)"
check "F: one gated send" 1 "$(sent_to fay@example.com)"
check "F: summary subject" "Summary of your call with Acme Dental on $(date -u '+%-d %B %Y')" "$(subject_to fay@example.com)"
check "G: one gated send" 1 "$(sent_to gus@example.com)"
check "G: sales subject" "Following up on the Team plan | Acme Dental" "$(subject_to gus@example.com)"
# The bodies: each template's own words, the caller's values escaped.
body_has() { # body_has NAME ADDRESS TEXT
	if body_of "$2" | grep -qF -- "$3"; then ok "$1"; else not_ok "$1 ('$3' not in the body)"; body_of "$2" | head -5; fi
}
body_has "A: body greets Ada" ada@example.com "Hi Ada Lovelace,"
body_has "A: body lists the appointment, escaped" ada@example.com "- **When:** Tuesday 1 December\, 10\:00"
body_has "B: body carries the summary" bob@example.com "Your router was reset\."
body_has "B: body lists the next step" bob@example.com "- We call you on Friday"
body_has "C: body names the product" cy@example.com "about the Pro plan"
body_has "E: body greets Eve" eve@example.com "Hi Eve Moss,"
body_has "F: body carries the summary" fay@example.com "Your refund is on its way\."
body_has "G: body states the offer" gus@example.com "we can offer you two months free"
body_has "every body is signed" gus@example.com "Grace, Acme Dental"
check "the agent is never a recipient" 0 "$(sent_to agent@example.com)"
control state >"$WORK/state.json"
check_grep "A: the body greets the caller" 'Hi Ada Lovelace' "$WORK/state.json"
check_grep "sends wait for approval" '"status":"pending_send_approval"' "$WORK/state.json"
# Past D's transcript_wait (20 s after its room ended).
left=$(( (20500000000 - ($(date +%s%N) - d_ended)) / 1000000 ))
[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
check "D: nothing sent" 0 "$(sent_to dee@example.com)"
"$AFTERCALL" audit -c "$WORK/e2e.yaml" --room quiet-d >"$WORK/d.audit"
check_grep "D: the audit says it was skipped" 'email.skipped .*no transcript within transcript_wait' "$WORK/d.audit"

# Approval and rejection go through the double's oversight API (via prism);
# its webhooks come back signed and drive the derived events.
email_for() {
	control state | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
const st=JSON.parse(s);const e=st.emails.find(e=>e.direction==="outbound"&&(e.to||[]).includes(process.argv[1]));
console.log(e?e.id:"")})' "$1"
}
decide() {
	curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $MMKEY" \
		-H 'Content-Type: application/json' --data "{\"email_id\":\"$1\",\"action\":\"$2\"}" \
		"http://127.0.0.1:$PRISM/v1/oversight/decide"
}
EA=$(email_for ada@example.com) EB=$(email_for bob@example.com)
check "A: approved by a human" 200 "$(decide "$EA" approve)"
check "B: rejected by a human" 200 "$(decide "$EB" reject)"
for _ in $(seq 50); do grep -q 'aftercall.email.rejected' "$RECORD" 2>/dev/null && grep -q 'aftercall.email.delivered' "$RECORD" && break; sleep 0.1; done
check "approval emits aftercall.email.approved" 1 "$(grep -c '^event aftercall.email.approved ' "$RECORD")"
check "delivery emits aftercall.email.delivered" 1 "$(grep -c '^event aftercall.email.delivered ' "$RECORD")"
check "rejection emits aftercall.email.rejected" 1 "$(grep -c '^event aftercall.email.rejected ' "$RECORD")"

# A reply through the double.
control inbound "{\"email_id\":\"$EA\",\"from\":\"ada@example.com\",\"subject\":\"Re: see you Tuesday\",\"markdown\":\"Thanks!\"}" >/dev/null
for _ in $(seq 50); do grep -q 'aftercall.email.replied' "$RECORD" && break; sleep 0.1; done
check "a reply emits aftercall.email.replied" 1 "$(grep -c '^event aftercall.email.replied ' "$RECORD")"

# The returning caller's history shows the reply (fetched from MultiMail
# through the outbox after the webhook; the query never waits on MultiMail).
history() {
	curl -s -o "$WORK/hist.json" -w '%{http_code}' -H 'Authorization: Bearer e2e-transcript-token-0123' \
		"http://127.0.0.1:$PORT/v1/contacts/$1/history"
}
for _ in $(seq 50); do
	[ "$(history ada@example.com)" = 200 ] && grep -q 'Re: see you Tuesday' "$WORK/hist.json" && break
	sleep 0.1
done
check "history of a known contact is 200" 200 "$(history ada@example.com)"
check_grep "it holds MultiMail's thread detail" '"message_count":2' "$WORK/hist.json"
check_grep "with the reply in it" 'Re: see you Tuesday' "$WORK/hist.json"
check "the history matches the address whatever its case" 200 "$(history ADA@Example.COM)"
check_grep "  ... the same history" 'Re: see you Tuesday' "$WORK/hist.json"
# A contact an earlier version kept under its address as written (before
# addresses were folded to lower case) is still found, here and by the
# reply below that names no thread.
check "one contact record, under the folded address" 1 \
	"$(store_sql "$STORE" "select count(*) from kv where ns = 'multimail' and key = 'c:ada@example.com'")"
store_sql "$STORE" "update kv set key = 'c:Ada@Example.com' where ns = 'multimail' and key = 'c:ada@example.com'"
check "a record under the address as written is still found" 200 "$(history Ada@Example.com)"
check_grep "  ... with its history" 'Re: see you Tuesday' "$WORK/hist.json"
check "an unknown contact is 404" 404 "$(history nobody@example.com)"
check_grep "with a JSON error" '{"error":"unknown contact"}' "$WORK/hist.json"
st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/contacts/ada@example.com/history")
check "history without credentials is 401" 401 "$st"
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer e2e-transcript-token-0123' \
	"http://127.0.0.1:$PORT/v1/contacts/ada@example.com/history")
check "POST on the history route is 405" 405 "$st"

# forward took each derived event to the CRM, whose Standard Webhooks check passed.
crm_types() {
	node -e 'const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(s.refused + " " + s.delivered.map((d) => (typeof d.body === "string" ? JSON.parse(d.body) : d.body).type).sort().join(","))' "$WORK/crm.json"
}
for _ in $(seq 50); do
	[ "$(crm_types 2>/dev/null)" = "0 aftercall.email.approved,aftercall.email.delivered,aftercall.email.rejected,aftercall.email.replied" ] && break
	sleep 0.1
done
check "the CRM verified approved, delivered, rejected and replied, refused none" \
	"0 aftercall.email.approved,aftercall.email.delivered,aftercall.email.rejected,aftercall.email.replied" "$(crm_types)"
node -e 'const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const a = s.delivered.map((d) => (typeof d.body === "string" ? JSON.parse(d.body) : d.body)).find((b) => b.type === "aftercall.email.approved");
console.log([a.data.room, a.data.contact, a.data.template].join(" "))' "$WORK/crm.json" >"$WORK/crm.approved"
check "the approval carries room, contact and template" "dental-a ada@example.com confirmation" "$(cat "$WORK/crm.approved")"

# A reply whose webhook names no thread, as the payload on MultiMail's site
# has none, goes with the sender's latest thread of ours (the address
# matched without regard to case).
printf '{"event":"message.received","timestamp":"2026-03-09T14:22:00.000Z","data":{"email_id":"em_nothread_1","from":"Ada <Ada@Example.com>","to":["%s"],"subject":"Re: one more thing","direction":"inbound","has_attachments":false}}' \
	"$MBX@example.com" >"$WORK/nothread.json"
sig=$(openssl dgst -sha256 -hmac "$HOOK_SECRET" -hex <"$WORK/nothread.json" | sed 's/.*= //')
st=$(curl -s -o /dev/null -w '%{http_code}' -H "X-MultiMail-Signature: sha256=$sig" \
	--data-binary @"$WORK/nothread.json" "http://127.0.0.1:$PORT/webhooks/multimail")
check "a reply without thread_id is accepted" 200 "$st"
for _ in $(seq 50); do [ "$(grep -c '^event aftercall.email.replied ' "$RECORD")" -ge 2 ] && break; sleep 0.1; done
check "and emits aftercall.email.replied, matched by its sender" 2 "$(grep -c '^event aftercall.email.replied ' "$RECORD")"

# A bad transcript is a 400 that names the field, and changes nothing.
printf '{"room":"x","to":["not an address"]}' >"$WORK/bad.json"
st=$(curl -s -o "$WORK/bad.out" -w '%{http_code}' -X POST -H 'Authorization: Bearer e2e-transcript-token-0123' \
	--data-binary "@$WORK/bad.json" "http://127.0.0.1:$PORT/v1/transcripts")
check "a bad transcript gets 400" 400 "$st"
check_grep "naming the field" 'to\[0\]: not an email address' "$WORK/bad.out"
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer wrong-token-000000000' \
	--data-binary "@$WORK/ta.json" "http://127.0.0.1:$PORT/v1/transcripts")
check "a transcript with a wrong token gets 401" 401 "$st"

# A scrape after the whole flow: valid Prometheus text, emails by state.
sleep 1.1
curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt"
if promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.out" 2>&1; then
	ok "promtool check metrics passes on the scrape after the flow"
else
	not_ok "promtool check metrics"; cat "$WORK/promtool.out"
fi
for st in queued accepted approved rejected delivered; do
	check_grep "emails counted as $st" "^aftercall_multimail_emails_total{state=\"$st\"} [1-9]" "$WORK/metrics.txt"
done
stop_host

# The audit trail tells each session's story and verifies; an edit breaks it.
"$AFTERCALL" audit -c "$WORK/e2e.yaml" --room dental-a >"$WORK/a.audit"
echo "timeline of dental-a:"; cut -c1-220 "$WORK/a.audit" | sed "s/^/    /"
for step in event.received transcript.received session.correlated recipient.chosen email.rendered \
	email.queued email.accepted email.approved email.delivered email.replied; do
	check_grep "A's timeline has $step" " $step " "$WORK/a.audit"
done
check_grep "the reply without a thread says how it was matched" ' email.replied .*"matched_by":"sender"' "$WORK/a.audit"
# One grep of a request id tells its part of the story: the event that
# completed session A, the send it queued, the delivery attempt, the audit.
rid=$(sed -n 's/.* email\.queued .*  req=\([0-9a-f]*-[0-9a-f]*\) .*/\1/p' "$WORK/a.audit" | head -1)
if [ -n "$rid" ]; then ok "A's email.queued record names its request ($rid)"; else not_ok "A's email.queued record names its request"; fi
cat "$WORK/host.first.log" "$WORK/host.log" | grep -F "\"request_id\":\"${rid:-none}\"" >"$WORK/story.log"
check_grep "the request's log line is the event that ended A" '"msg":"event".*"id":"EV_A3".*"result":"accepted"' "$WORK/story.log"
check_grep "the outbox's queued line carries it" '"msg":"outbox: queued","plugin":"multimail","tag":"send:' "$WORK/story.log"
check_grep "and so does the delivery attempt" '"msg":"outbox: delivery attempt".*"status":"202"' "$WORK/story.log"
check "its audit records are A's steps from the event to MultiMail's answer" "email.accepted email.queued email.rendered event.received recipient.chosen session.correlated" \
	"$(grep -F "req=${rid:-none} " "$WORK/a.audit" | awk '{ print $5 }' | sort -u | tr '\n' ' ' | sed 's/ $//')"
"$AFTERCALL" audit -c "$WORK/e2e.yaml" --contact bob@example.com >"$WORK/b.audit"
check_grep "Bob's timeline shows the rejection" ' email.rejected ' "$WORK/b.audit"
"$AFTERCALL" audit -c "$WORK/e2e.yaml" --verify >"$WORK/verify.out" 2>&1
check "audit --verify passes" 0 $?
head=$(sed -n 's/^audit chain OK: [0-9]* records; head \([0-9]*:[0-9a-f]\{64\}\)$/\1/p' "$WORK/verify.out")
if [ -n "$head" ]; then ok "and prints the head ($head)"; else not_ok "and prints the head: $(cat "$WORK/verify.out")"; fi
# Records removed from the end leave a shorter chain that holds: only the
# head kept from before shows it.
store_sql "$STORE" "DELETE FROM audit WHERE seq = ${head%%:*}"
"$AFTERCALL" audit -c "$WORK/e2e.yaml" --verify >/dev/null 2>&1
check "a chain cut at its end still holds alone" 0 $?
"$AFTERCALL" audit -c "$WORK/e2e.yaml" --verify --head "$head" >"$WORK/verify3.out" 2>&1
check "but not against the head kept" 1 $?
check_grep "which says records were removed from its end" "the chain is broken at record ${head%%:*}: not there, the chain ends at record $((${head%%:*} - 1)) (records removed from its end)" "$WORK/verify3.out"
"$AFTERCALL" audit -c "$WORK/e2e.yaml" --head "${head%%:*}:xyz" >"$WORK/verify4.out" 2>&1
check "a malformed --head is a usage error" 2 $?
check_grep "saying what it wants" "\-\-head wants N:HASH as --verify prints it" "$WORK/verify4.out"
store_sql "$STORE" "UPDATE audit SET detail = replace(detail, 'ada@', 'eve@') WHERE seq = (SELECT min(seq) FROM audit WHERE detail LIKE '%ada@%')"
"$AFTERCALL" audit -c "$WORK/e2e.yaml" --verify >"$WORK/verify2.out" 2>&1
check "audit --verify fails after one row is edited" 1 $?
check_grep "naming the record" 'the chain is broken at record [0-9]*: contents do not match its hash' "$WORK/verify2.out"

grep -i 'violation\|✖' "$WORK/prism.log" | grep -v 'Unable to match the returned status code' >"$WORK/violations" || true
check "prism reports no violation" 0 "$(wc -l <"$WORK/violations")"
head -3 "$WORK/violations"
if grep -q -e "$MMKEY" -e "$SECRET" -e "$HOOK_SECRET" "$WORK/host.log"; then not_ok "no secret in the log"; else ok "no secret in the log"; fi
finish
