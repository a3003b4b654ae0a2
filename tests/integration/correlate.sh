#!/usr/bin/env bash
# Correlation corner cases of the multimail plugin, against the double behind
# prism: the participant_left trigger (an agent leaving is no trigger), the
# recipient from participant metadata and from room metadata, no recipient at
# all, on_missing_transcript: send, finish_grace when the room's end never
# comes, a transcript that names only a room no event named yet, a room
# name reused by two sessions, templates that are not there, or that a
# reload would take away, and cc and bcc lists made by a template.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url c) || { not_ok "create the store"; finish; }

start_double || finish
K=APIcor S=correlate-secret-0123456789
MMKEY=mm_live_correlate_key
MBX=$(curl -s -X POST -H "Authorization: Bearer $MMKEY" -H 'Content-Type: application/json' \
	--data '{"address_local":"correlate"}' "http://127.0.0.1:$PRISM/v1/mailboxes" |
	sed -n 's/.*"id":"\(mbx_[^"]*\)".*/\1/p')
cat >"$WORK/c.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
template_engine: $PLUGIN_BUILDDIR/mustache/.libs/mustache.so
templates: $TEMPLATES
livekit:
  keys:
    $K: $S
outbox: {retry_base_ms: 100, retry_cap_ms: 1000}
routes:
  - path: /webhooks/livekit
    verify: livekit
    plugins: [multimail]
  - path: /v1/transcripts
    verify: {bearer: correlate-bearer-0123}
    event_type: transcript
    plugins: [multimail]
plugins:
  - name: multimail
    path: $PLUGIN_BUILDDIR/multimail/.libs/multimail.so
    config:
      api_url: "http://127.0.0.1:$PRISM"
      api_key: $MMKEY
      mailbox_id: $MBX
      trigger: participant_left
      transcript_wait: 3
      on_missing_transcript: send
      missing_template: summary
      finish_grace: 3
YAML
start_host "$WORK/c.yaml" || finish

lk() { # lk JSON: a LiveKit webhook
	printf '%s' "$1" >"$WORK/lk.json"
	post /webhooks/livekit "$WORK/lk.json" "$("$AFTERCALL" sign --key $K --secret $S "$WORK/lk.json")"
}
transcript() {
	printf '%s' "$1" >"$WORK/t.json"
	post /v1/transcripts "$WORK/t.json" "Bearer correlate-bearer-0123"
}
room() { # room SID NAME [METADATA] [CREATION_TIME]: LiveKit's creationTime, in seconds
	printf '{"sid":"%s","name":"%s","metadata":"%s"%s}' "$1" "$2" "${3:-}" \
		"${4:+,\"creationTime\":\"$4\"}"
}
part() { # part IDENTITY [ATTR_EMAIL] [METADATA] [KIND]
	local extra=""
	[ -n "${2:-}" ] && extra="$extra,\"attributes\":{\"email\":\"$2\"}"
	[ -n "${3:-}" ] && extra="$extra,\"metadata\":\"$3\""
	[ -n "${4:-}" ] && extra="$extra,\"kind\":\"$4\""
	printf '{"sid":"PA_%s","identity":"%s","name":"%s"%s}' "$1" "$1" "$1" "$extra"
}
event() { printf '{"event":"%s","room":%s,"participant":%s,"id":"%s"}' "$1" "$2" "$3" "$4"; }
sent_to() {
	control state | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
const st=JSON.parse(s);console.log(st.emails.filter(e=>e.direction==="outbound"&&(e.to||[]).includes(process.argv[1])).length)})' "$1"
}
body_of() {
	control state | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
const st=JSON.parse(s);const e=st.emails.find(e=>e.direction==="outbound"&&(e.to||[]).includes(process.argv[1]));
console.log(e?(e.markdown||""):"")})' "$1"
}
wait_sent() { for _ in $(seq 1 80); do [ "$(sent_to "$1")" -ge 1 ] && return 0; sleep 0.1; done; return 1; }

# 1. participant_left of the caller triggers; the agent leaving does not.
#    The recipient comes from the participant's metadata JSON.
R=$(room RM_P pat-room)
check "P: transcript" 200 "$(transcript '{"room":"pat-room","room_sid":"RM_P","participant":"pat","summary":"Pat asked about hours."}')"
check "P: pat joins" 200 "$(lk "$(event participant_joined "$R" "$(part pat '' '{\"email\":\"pat@example.com\"}')" EV_P1)")"
check "P: the agent leaves" 200 "$(lk "$(event participant_left "$R" "$(part bot bot@example.com '' AGENT)" EV_P2)")"
sleep 0.5
check "P: no send when the agent leaves" 0 "$(sent_to pat@example.com)"
check "P: pat leaves" 200 "$(lk "$(event participant_left "$R" "$(part pat '' '{\"email\":\"pat@example.com\"}')" EV_P3)")"
wait_sent pat@example.com
check "P: sent to the participant metadata's email" 1 "$(sent_to pat@example.com)"
check "P: never to the agent" 0 "$(sent_to bot@example.com)"

# 2. The recipient from the room's metadata.
R=$(room RM_R roomy '{\"email\":\"room@example.com\"}')
check "R: transcript" 200 "$(transcript '{"room":"roomy","room_sid":"RM_R","participant":"rex"}')"
check "R: rex leaves" 200 "$(lk "$(event participant_left "$R" "$(part rex)" EV_R1)")"
wait_sent room@example.com
check "R: sent to the room metadata's email" 1 "$(sent_to room@example.com)"

# 3. No recipient anywhere: nothing sent, and the audit trail says so.
R=$(room RM_N nobody-room)
check "N: transcript" 200 "$(transcript '{"room":"nobody-room","room_sid":"RM_N","participant":"nia"}')"
check "N: nia leaves" 200 "$(lk "$(event participant_left "$R" "$(part nia)" EV_N1)")"
sleep 0.5
"$AFTERCALL" audit -c "$WORK/c.yaml" --room nobody-room >"$WORK/n.audit"
check_grep "N: the audit says no recipient" 'email.skipped .*no recipient found' "$WORK/n.audit"

# 4. on_missing_transcript: send — after transcript_wait, with the template
#    that needs no summary.
R=$(room RM_M mia-room)
check "M: mia leaves, no transcript" 200 "$(lk "$(event participant_left "$R" "$(part mia mia@example.com)" EV_M1)")"
sleep 1
check "M: nothing before transcript_wait" 0 "$(sent_to mia@example.com)"
wait_sent mia@example.com
check "M: sent after transcript_wait" 1 "$(sent_to mia@example.com)"
if body_of mia@example.com | grep -q 'We did not keep a written summary'; then ok "M: the body says there is no summary"; else not_ok "M: the body says there is no summary"; fi

# 5. finish_grace: the transcript came, the room's end never does.
check "G: transcript with its own to" 200 "$(transcript '{"room":"grace-room","room_sid":"RM_G","to":["gil@example.com"],"summary":"Gil."}')"
sleep 1
check "G: nothing before finish_grace" 0 "$(sent_to gil@example.com)"
wait_sent gil@example.com
check "G: sent after finish_grace" 1 "$(sent_to gil@example.com)"
"$AFTERCALL" audit -c "$WORK/c.yaml" --room grace-room >"$WORK/g.audit"
check_grep "G: the audit says why" 'room end not seen within finish_grace' "$WORK/g.audit"

# 5b. A transcript that names only a room no event has named yet waits
# under the name. Sent after finish_grace, it is not sent again when the
# room's end comes late.
check "L: transcript by name, room unseen" 200 "$(transcript '{"room":"late-room","to":["lou@example.com"],"summary":"Lou."}')"
wait_sent lou@example.com
check "L: sent after finish_grace" 1 "$(sent_to lou@example.com)"
R=$(room RM_L late-room '' "$(($(date +%s) - 60))")
check "L: lou leaves, late" 200 "$(lk "$(event participant_left "$R" "$(part lou)" EV_L1)")"
sleep 4 # past transcript_wait, in case the session started over
check "L: no second email" 1 "$(sent_to lou@example.com)"
# An event that brings the sid but is no trigger keeps finish_grace running.
check "J: transcript by name, room unseen" 200 "$(transcript '{"room":"join-room","to":["jo@example.com"],"summary":"Jo."}')"
check "J: jo joins" 200 "$(lk "$(event participant_joined "$(room RM_J join-room)" "$(part jo)" EV_J1)")"
wait_sent jo@example.com
check "J: sent after finish_grace, under the sid" 1 "$(sent_to jo@example.com)"
# A room LiveKit created after such a transcript came is a later session
# under the same name: it takes nothing from it, and gets its own email.
check "A: transcript by name, room unseen" 200 "$(transcript '{"room":"again-room","to":["ann@example.com"],"summary":"Ann."}')"
wait_sent ann@example.com
R=$(room RM_A2 again-room '' "$(($(date +%s) + 1))")
check "A: abe leaves a new session" 200 "$(lk "$(event participant_left "$R" "$(part abe abe@example.com)" EV_A1)")"
wait_sent abe@example.com
check "A: the new session's email, after transcript_wait" 1 "$(sent_to abe@example.com)"
check "A: and no second one to ann" 1 "$(sent_to ann@example.com)"

# 6. One room name, two sessions (LiveKit reuses names): each gets its own email.
R1=$(room RM_U1 reused) R2=$(room RM_U2 reused)
check "U1: ulla joins" 200 "$(lk "$(event participant_joined "$R1" "$(part ulla ulla@example.com)" EV_U1)")"
check "U1: transcript by name" 200 "$(transcript '{"room":"reused","participant":"ulla","summary":"First."}')"
check "U1: ulla leaves" 200 "$(lk "$(event participant_left "$R1" "$(part ulla ulla@example.com)" EV_U2)")"
wait_sent ulla@example.com
check "U2: uwe joins the new session" 200 "$(lk "$(event participant_joined "$R2" "$(part uwe uwe@example.com)" EV_U3)")"
check "U2: transcript by name" 200 "$(transcript '{"room":"reused","participant":"uwe","summary":"Second."}')"
check "U2: uwe leaves" 200 "$(lk "$(event participant_left "$R2" "$(part uwe uwe@example.com)" EV_U4)")"
wait_sent uwe@example.com
check "U1: one email" 1 "$(sent_to ulla@example.com)"
check "U2: one email, its own" 1 "$(sent_to uwe@example.com)"
if body_of uwe@example.com | grep -q 'Second\\.'; then ok "U2: with its own summary"; else not_ok "U2: with its own summary"; fi

# 7. A template that is not there: a transcript naming one is refused when
# it comes, not accepted and then never sent; a config naming one does not
# pass check (a partial alone, without a subject, is no template either).
check "a transcript naming no template there gets 400" 400 \
	"$(transcript '{"room":"nt-room","to":["nt@example.com"],"template":"nosuch"}')"
check_grep "saying which" '"reason":"template: no template named nosuch"' "$WORK/host.log"
stop_host
for bad in "default_template: nosuch" "default_template: greeting" "missing_template: nosuch"; do
	sed "s/^      missing_template: summary\$/      $bad/" "$WORK/c.yaml" >"$WORK/nt.yaml"
	out=$("$AFTERCALL" check -c "$WORK/nt.yaml" 2>&1)
	check "check refuses $bad" 1 $?
	case "$out" in *"${bad%%:*}: no template named ${bad#*: } in $TEMPLATES"*) ok "naming the key and the template";; *) not_ok "naming the key and the template: $out";; esac
done
sed "s/^      missing_template: summary\$/      default_template: ..\/etc/" "$WORK/c.yaml" >"$WORK/nt.yaml"
out=$("$AFTERCALL" check -c "$WORK/nt.yaml" 2>&1)
case "$out" in *'default_template: a template name (letters, digits, _ and -, at most 64), not "../etc"'*) ok "a malformed template name is named with the rule";; *) not_ok "a malformed template name is named with the rule: $out";; esac
"$AFTERCALL" audit -c "$WORK/c.yaml" --verify >/dev/null
check "the audit chain verifies" 0 $?

# Nor can a SIGHUP take the template the config names away afterwards.
cp -r "$TEMPLATES" "$WORK/mt"
# (A template whose cc and bcc come from the summary's data, for 8.)
printf -- '---\nsubject: "Copies"\ncc: "{{data.cc}}"\nbcc: "{{data.bcc}}"\n---\nCopied.\n' >"$WORK/mt/copies.md"
sed "s#^templates: .*#templates: $WORK/mt#" "$WORK/c.yaml" >"$WORK/mt.yaml"
start_host "$WORK/mt.yaml" || finish
rm "$WORK/mt/summary.md"
kill -HUP "$HOST_PID"
for _ in $(seq 50); do grep -q 'templates not reloaded' "$WORK/host.log" && break; sleep 0.05; done
check_grep "a reload without the configured template is refused, naming it" \
	'"errors":"'"$WORK"'/mt/summary.md: missing or without front matter, and the multimail plugin renders it"' "$WORK/host.log"
check "a transcript naming it is still taken" 200 \
	"$(transcript '{"room":"kept-room","to":["kept@example.com"],"template":"summary"}')"

# 8. cc and bcc from a template: a comma-separated list goes out as a list;
# more than MultiMail's 50 is refused whole (audited, nothing sent), not cut
# down to the first 50.
copies() { # copies SID RECIPIENT CC BCC
	transcript "{\"room\":\"copies-$1\",\"room_sid\":\"$1\",\"to\":[\"$2\"],\"template\":\"copies\",\"data\":{\"cc\":\"$3\",\"bcc\":\"$4\"}}"
}
check "CC: transcript with two cc and one bcc" 200 "$(copies RM_CC1 cc1@example.com 'a@example.com, b@example.com' 'c@example.com')"
check "CC: the room ends" 200 "$(lk "{\"event\":\"room_finished\",\"room\":$(room RM_CC1 copies-RM_CC1),\"id\":\"EV_CC1\"}")"
wait_sent cc1@example.com
check "CC: cc and bcc as lists" '["a@example.com","b@example.com"] ["c@example.com"]' \
	"$(control state | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
const e=JSON.parse(s).emails.find(e=>e.direction==="outbound"&&e.to.includes("cc1@example.com"));
console.log(JSON.stringify(e.cc)+" "+JSON.stringify(e.bcc))})')"
many=$(seq 1 51 | sed 's/.*/m&@example.com/' | paste -sd, -)
check "CC: transcript with 51 bcc" 200 "$(copies RM_CC2 cc2@example.com '' "$many")"
check "CC: the room ends" 200 "$(lk "{\"event\":\"room_finished\",\"room\":$(room RM_CC2 copies-RM_CC2),\"id\":\"EV_CC2\"}")"
for _ in $(seq 50); do
	[ "$(store_sql "$STORE" "select count(*) from audit where kind = 'email.render_failed' and subject = 'copies-RM_CC2'")" -ge 1 ] && break
	sleep 0.1
done
check "CC: 51 bcc addresses are refused, saying so" 1 \
	"$(store_sql "$STORE" "select count(*) from audit where kind = 'email.render_failed' and subject = 'copies-RM_CC2' and detail like '%bcc: 51 addresses, at most 50 allowed%'")"
check "CC: and nothing is sent" 0 "$(sent_to cc2@example.com)"
stop_host

# Without a routes section, multimail offers its routes (ABI 1.7) after the
# LiveKit one: summaries and history queries signed as LiveKit signs or
# with transcript_token, MultiMail's webhooks with webhook_secret.
HOOK=whsec-correlate-0123456789
awk '/^routes:/ { skip = 1; next } skip && /^plugins:/ { skip = 0 } !skip' "$WORK/c.yaml" |
	sed "s/^      finish_grace: 3\$/      finish_grace: 3\n      transcript_token: correlate-bearer-0123\n      webhook_secret: $HOOK/" >"$WORK/d.yaml"
out=$("$AFTERCALL" check -c "$WORK/d.yaml" 2>&1)
check "check accepts a config without routes" 0 $?
check "and lists the routes multimail offers after the LiveKit one" "POST /webhooks/livekit verify=livekit plugins=multimail
POST /v1/transcripts verify=livekit|bearer event_type=transcript plugins=multimail
GET /v1/contacts/{email}/history verify=livekit|bearer plugins=multimail
POST /webhooks/multimail verify=hmac plugins=multimail" "$(sed -n 's/^  route   //p' <<<"$out" | tr -s ' ')"
start_host "$WORK/d.yaml" || finish
check "a summary on the offered route, with the token" 200 \
	"$(transcript '{"room":"d-room","to":["d@example.com"],"summary":"Default routes."}')"
check "a summary with a wrong token is 401" 401 "$(post /v1/transcripts "$WORK/t.json" "Bearer wrong-bearer-token-000")"
hist() { curl -s -o "$WORK/hist.out" -w '%{http_code}' -H "Authorization: Bearer $1" "http://127.0.0.1:$PORT/v1/contacts/nobody@example.com/history"; }
check "a history query on the offered route, with a wrong token, is 401" 401 "$(hist wrong-bearer-token-000)"
check "with the token, multimail answers: no such contact" 404 "$(hist correlate-bearer-0123)"
if grep -q 'no such route' "$WORK/hist.out"; then not_ok "not the host's 404: $(cat "$WORK/hist.out")"; else ok "not the host's 404"; fi
printf '{"event":"oversight.approved","timestamp":"2026-11-26T00:00:00.000Z","data":{"email_id":"em_unknown"}}' >"$WORK/mm.json"
sig=$(openssl dgst -sha256 -hmac "$HOOK" -hex <"$WORK/mm.json" | sed 's/.*= //')
hook() { curl -s -o /dev/null -w '%{http_code}' -H "X-MultiMail-Signature: sha256=$1" --data-binary @"$WORK/mm.json" "http://127.0.0.1:$PORT/webhooks/multimail"; }
check "a MultiMail webhook signed with webhook_secret" 200 "$(hook "$sig")"
check "one signed otherwise is 401" 401 "$(hook "${sig/a/b}")"
kill -HUP "$HOST_PID"
for _ in $(seq 50); do grep -q 'SIGHUP: config' "$WORK/host.log" && break; sleep 0.05; done
check_grep "a SIGHUP reloads such a config (the offered routes are offered again)" '"msg":"SIGHUP: config reloaded"' "$WORK/host.log"
check "and the routes still answer" 200 "$(hook "$sig")"
stop_host
# replay finds the offered routes too; a dry run, which starts no plugin,
# says it would run if the plugin still offers the route.
"$AFTERCALL" replay -c "$WORK/d.yaml" --dry-run --route /v1/transcripts --since 1h >"$WORK/dry.out" 2>&1
check "a dry replay on an offered route exits 0" 0 $?
check_grep "and says it depends on the plugin" ": would run, if a plugin still offers route /v1/transcripts$" "$WORK/dry.out"
"$AFTERCALL" replay -c "$WORK/d.yaml" --route /webhooks/multimail --since 1h >"$WORK/run.out" 2>&1
check "a replay on an offered route runs it" 1 "$(grep -c ': accepted (request replay-' "$WORK/run.out")"
sed 's/^      transcript_token: .*/      transcript_token: short/' "$WORK/d.yaml" >"$WORK/short.yaml"
out=$("$AFTERCALL" check -c "$WORK/short.yaml" 2>&1)
case "$out" in *"transcript_token: at least 16 characters"*) ok "a short transcript_token is refused";; *) not_ok "a short transcript_token is refused: $out";; esac
finish
