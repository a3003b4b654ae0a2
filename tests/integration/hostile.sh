#!/usr/bin/env bash
# Hostile input: a table of bad requests, each with the status it must get,
# and after each a check that nothing changed (journal, plugin, outbox).
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url h) || { not_ok "create the store"; finish; }

K=APIhostile S=hostile-secret-0123456789
HOOK=whsec_hostile_0123456789
BEARER=hostile-bearer-token-0123
RECORD="$WORK/seen.txt"
: >"$RECORD"
cat >"$WORK/h.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
template_engine: $PLUGIN_BUILDDIR/mustache/.libs/mustache.so
templates: $TEMPLATES
livekit:
  keys:
    $K: $S
limits:
  body_size: 64KiB
  read_timeout: 2
  request_timeout: 4
  connections: 64
routes:
  - path: /webhooks/livekit
    verify: livekit
    plugins: [multimail, counter]
  - path: /v1/transcripts
    verify: [livekit, {bearer: $BEARER}]
    event_type: transcript
    plugins: [multimail, counter]
  - path: /webhooks/multimail
    verify:
      hmac: {header: X-MultiMail-Signature, prefix: "sha256=", encoding: hex, secret: $HOOK}
    plugins: [multimail, counter]
plugins:
  - name: multimail
    path: $PLUGIN_BUILDDIR/multimail/.libs/multimail.so
    config: {api_url: "http://127.0.0.1:9", api_key: mm_live_hostile_key, mailbox_id: mbx_h}
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $RECORD}
YAML
start_host "$WORK/h.yaml" || finish
URL="http://127.0.0.1:$PORT"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
sha_b64() { openssl dgst -sha256 -binary "$1" | openssl base64 -A; }
# jwt HEADER_JSON CLAIMS_JSON [SECRET]: an HS256-signed token from raw parts.
jwt() {
	local h c sig
	h=$(printf '%s' "$1" | b64url)
	c=$(printf '%s' "$2" | b64url)
	sig=$(printf '%s.%s' "$h" "$c" | openssl dgst -sha256 -hmac "${3:-$S}" -binary | b64url)
	printf '%s.%s.%s' "$h" "$c" "$sig"
}
now=$(date +%s)
claims() { # claims BODYFILE [ISS] [EXP] [NBF]
	printf '{"iss":"%s","exp":%s,"nbf":%s,"sha256":"%s"}' "${2:-$K}" "${3:-$((now + 300))}" \
		"${4:-$now}" "$(sha_b64 "$1")"
}
sign() { "$AFTERCALL" sign --key "$K" --secret "$S" "$1"; }

state() { # what must not change: journal rows, plugin calls, outbox rows
	printf '%s %s %s' "$(store_sql "$STORE" 'select count(*) from journal')" \
		"$(wc -l <"$RECORD")" "$(store_sql "$STORE" 'select count(*) from outbox')"
}

CASES=0
# try NAME EXPECTED curl-args...: sends, compares the status, checks nothing changed.
try() {
	local name=$1 want=$2
	shift 2
	local before after st
	before=$(state)
	st=$(curl -s -o "$WORK/resp" -w '%{http_code}' --max-time 10 "$@")
	after=$(state)
	CASES=$((CASES + 1))
	if [ "$st" = "$want" ] && [ "$before" = "$after" ]; then
		ok "$name: $st, nothing changed"
	else
		not_ok "$name: got $st (want $want), state $before -> $after"
		head -c 300 "$WORK/resp"; echo
	fi
}

ev='{"event":"room_finished","room":{"sid":"RM_h","name":"h"},"id":"EV_hostile_1"}'
printf '%s' "$ev" >"$WORK/ev.json"
post=(-X POST -H 'Content-Type: application/json')

# ---- tokens ----
try "alg none" 401 "${post[@]}" -H "Authorization: $(jwt '{"alg":"none","typ":"JWT"}' "$(claims "$WORK/ev.json")")" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "alg HS512" 401 "${post[@]}" -H "Authorization: $(jwt '{"alg":"HS512","typ":"JWT"}' "$(claims "$WORK/ev.json")")" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "alg RS256" 401 "${post[@]}" -H "Authorization: $(jwt '{"alg":"RS256","typ":"JWT"}' "$(claims "$WORK/ev.json")")" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
good=$(jwt '{"alg":"HS256","typ":"JWT"}' "$(claims "$WORK/ev.json")")
try "two segments" 401 "${post[@]}" -H "Authorization: ${good%.*}" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "four segments" 401 "${post[@]}" -H "Authorization: $good.AAAA" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "bad base64 in the header" 401 "${post[@]}" -H "Authorization: !!${good#*.}" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "bad base64 in the signature" 401 "${post[@]}" -H "Authorization: ${good%.*}.%%%%" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
big=$(head -c 100000 /dev/zero | tr '\0' 'A')
# Up to the longest token lk_verify reads (8 KiB) the header still fits the
# connection's 16 KiB buffer, and the token itself is judged.
try "an 8 KB Authorization header is read, then refused as a token" 401 "${post[@]}" -H "Authorization: ${big:0:8192}" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "a 100 KB Authorization header" 431 "${post[@]}" -H "Authorization: $big" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
# libmicrohttpd answers that one itself; the log has a warning all the same.
check_grep "  ... and logs it at warn" '"level":"warn","msg":"Error processing request (HTTP response code is 431' "$WORK/host.log"
try "wrong issuer" 401 "${post[@]}" -H "Authorization: $(jwt '{"alg":"HS256"}' "$(claims "$WORK/ev.json" APIother)")" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "another key's secret" 401 "${post[@]}" -H "Authorization: $(jwt '{"alg":"HS256"}' "$(claims "$WORK/ev.json")" other-secret)" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "expired beyond the leeway" 401 "${post[@]}" -H "Authorization: $(jwt '{"alg":"HS256"}' "$(claims "$WORK/ev.json" "$K" $((now - 100)))")" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "not yet valid" 401 "${post[@]}" -H "Authorization: $(jwt '{"alg":"HS256"}' "$(claims "$WORK/ev.json" "$K" $((now + 900)) $((now + 600)))")" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "no exp claim" 401 "${post[@]}" -H "Authorization: $(jwt '{"alg":"HS256"}' "{\"iss\":\"$K\",\"sha256\":\"$(sha_b64 "$WORK/ev.json")\"}")" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "empty token" 401 "${post[@]}" -H "Authorization:" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "Bearer and nothing" 401 "${post[@]}" -H "Authorization: Bearer " --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
printf '%s' "${ev/EV_hostile_1/EV_hostile_2}" >"$WORK/ev2.json"
try "a token for another body" 401 "${post[@]}" -H "Authorization: $(sign "$WORK/ev.json")" --data-binary @"$WORK/ev2.json" "$URL/webhooks/livekit"

# A request the headers already refuse is answered before its body is
# read: no 100 Continue, no upload.
head -c $((60 * 1024)) /dev/zero | tr '\0' ' ' >"$WORK/big-unsigned"
for hdr in "Authorization: $(sign "$WORK/big-unsigned" | sed 's/\.[^.]*$/.AAAA/')" "X-None: 1"; do
	out=$(curl -s -o "$WORK/resp" -w '%{http_code} %{size_upload}' --max-time 10 "${post[@]}" \
		-H 'Expect: 100-continue' --expect100-timeout 5 -H "$hdr" \
		--data-binary @"$WORK/big-unsigned" "$URL/webhooks/livekit")
	check "refused on its headers, no body sent (${hdr%%:*})" "401 0" "$out"
done
check "  ... saying why" '{"error":"bad signature"}' "$(curl -s --max-time 10 "${post[@]}" \
	-H "Authorization: $(sign "$WORK/big-unsigned" | sed 's/\.[^.]*$/.AAAA/')" \
	-H 'Expect: 100-continue' --data-binary @"$WORK/big-unsigned" "$URL/webhooks/livekit")"
# A client that sends its headers and holds its body back gets its 401
# at once, whatever its Content-Length says.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /webhooks/livekit HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n' >&3
line=$(timeout 3 head -n 1 <&3 | tr -d '\r')
exec 3<&- 3>&-
check "a body held back behind no token: 401 before it comes" "HTTP/1.1 401 Unauthorized" "$line"
# On the route that takes a token or a bearer, the bearer alone lets the
# body be read; a wrong bearer is refused on the headers.
out=$(curl -s -o /dev/null -w '%{http_code} %{size_upload}' --max-time 10 "${post[@]}" \
	-H 'Expect: 100-continue' -H "Authorization: Bearer wrong" \
	--data-binary @"$WORK/big-unsigned" "$URL/v1/transcripts")
check "a wrong bearer: refused on the headers" "401 0" "$out"
out=$(curl -s -o /dev/null -w '%{size_upload}' --max-time 10 "${post[@]}" \
	-H 'Expect: 100-continue' -H "Authorization: Bearer $BEARER" \
	--data-binary @"$WORK/big-unsigned" "$URL/v1/transcripts")
check "the right bearer: the body is read" "61440" "$out"
# HMAC needs the body; a request without its header needs nothing more.
out=$(curl -s -o "$WORK/resp" -w '%{http_code} %{size_upload}' --max-time 10 "${post[@]}" \
	-H 'Expect: 100-continue' --data-binary @"$WORK/big-unsigned" "$URL/webhooks/multimail")
check "no signature header: refused on the headers" "401 0" "$out"
out=$(curl -s -o "$WORK/resp" -w '%{http_code} %{size_upload}' --max-time 10 "${post[@]}" \
	-H 'Expect: 100-continue' -H 'X-MultiMail-Signature: sha256=00' \
	--data-binary @"$WORK/big-unsigned" "$URL/webhooks/multimail")
check "a signature header: the body is read, then refused" "401 61440" "$out"

# ---- bodies (correctly signed) ----
signed() { # signed NAME STATUS FILE
	try "$1" "$2" "${post[@]}" -H "Authorization: $(sign "$3")" --data-binary @"$3" "$URL/webhooks/livekit"
}
: >"$WORK/empty"; signed "empty body" 400 "$WORK/empty"
printf '{"event":"room_fin' >"$WORK/trunc"; signed "truncated JSON" 400 "$WORK/trunc"
{ head -c 10000 /dev/zero | tr '\0' '['; head -c 10000 /dev/zero | tr '\0' ']'; } >"$WORK/deep"; signed "10,000 levels deep" 400 "$WORK/deep"
printf '{"event":"room_finished","id":"\xff\xfe"}' >"$WORK/utf8"; signed "invalid UTF-8" 400 "$WORK/utf8"
printf '{"event":"room_finished","event":"room_started","id":"EV_dup"}' >"$WORK/dupkey"; signed "duplicate keys" 400 "$WORK/dupkey"
printf '{"event":"room_finished","id":"EV_n\\u0000ul"}' >"$WORK/nul"; signed "\\u0000 in a string" 400 "$WORK/nul"
resp=$(curl -s "${post[@]}" -H "Authorization: $(sign "$WORK/dupkey")" --data-binary @"$WORK/dupkey" "$URL/webhooks/livekit")
check "and its 400 says where and why" '{"error":"body is not valid JSON: line 1, column 26: duplicate object key"}' "$resp"
printf '{"event":"room_finished","id":"EV_num","n":1e999999}' >"$WORK/hugenum"; signed "a huge number" 400 "$WORK/hugenum"
printf '[{"event":"room_finished"}]' >"$WORK/array"; signed "an array, not an object" 400 "$WORK/array"
printf '{"event":42,"id":"EV_x"}' >"$WORK/evnum"; signed "event not a string" 400 "$WORK/evnum"
printf '{"event":"%s","id":"EV_x"}' "$(head -c 300 /dev/zero | tr '\0' 'e')" >"$WORK/evlong"; signed "event name of 300 bytes" 400 "$WORK/evlong"
printf '{"id":"EV_noevent"}' >"$WORK/noev"; signed "no event field" 400 "$WORK/noev"
head -c $((65 * 1024)) /dev/zero | tr '\0' ' ' >"$WORK/over"; signed "a body over the 64 KiB limit" 413 "$WORK/over"

# ---- methods and paths ----
try "GET on a webhook route" 405 "$URL/webhooks/livekit"
try "PUT on a webhook route" 405 -X PUT --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit"
try "DELETE on healthz" 405 -X DELETE "$URL/healthz"
try "an unknown path" 404 "${post[@]}" --data-binary @"$WORK/ev.json" "$URL/webhooks/other"
try "path trick /../" 404 --path-as-is "${post[@]}" -H "Authorization: $(sign "$WORK/ev.json")" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit/../x"
try "path trick %2e%2e" 404 --path-as-is "${post[@]}" -H "Authorization: $(sign "$WORK/ev.json")" --data-binary @"$WORK/ev.json" "$URL/webhooks/%2e%2e/webhooks/livekit"
try "a doubled slash" 404 "${post[@]}" -H "Authorization: $(sign "$WORK/ev.json")" --data-binary @"$WORK/ev.json" "$URL/webhooks//livekit"
try "a trailing slash" 404 "${post[@]}" -H "Authorization: $(sign "$WORK/ev.json")" --data-binary @"$WORK/ev.json" "$URL/webhooks/livekit/"
# A chunked body gives no length up front: one somewhat over the limit is
# read to its end and answered 413; one over twice the limit is cut off.
head -c $((100 * 1024)) /dev/zero >"$WORK/over-chunked"
try "a chunked body over the limit" 413 -X POST -H 'Transfer-Encoding: chunked' \
	-H "Authorization: $(sign "$WORK/over-chunked")" --data-binary @"$WORK/over-chunked" "$URL/webhooks/livekit"
check "  ... saying why" '{"error":"body over the size limit"}' "$(cat "$WORK/resp")"
st=$(head -c $((200 * 1024)) /dev/zero | curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
	-H 'Transfer-Encoding: chunked' -H "Authorization: $(sign "$WORK/ev.json")" --data-binary @- "$URL/webhooks/livekit")
CASES=$((CASES + 1))
case "$st" in 2*) not_ok "a chunked body over the limit: got $st";; *) ok "a chunked body over the limit is cut off ($st)";; esac

# ---- transcripts ----
tr_try() { # tr_try NAME STATUS JSON
	printf '%s' "$3" >"$WORK/t.json"
	try "transcript: $1" "$2" "${post[@]}" -H "Authorization: Bearer $BEARER" --data-binary @"$WORK/t.json" "$URL/v1/transcripts"
	[ "$2" = 400 ] && [ -n "${4:-}" ] && check_grep "  ... names $4" "$4" "$WORK/resp"
}
tr_try "no room" 400 '{"summary":"x"}' 'room: required'
tr_try "CRLF in the room" 400 '{"room":"a\r\nb"}' 'room: expected one line'
tr_try "CRLF in the participant" 400 '{"room":"a","participant":"x\r\nBcc: y"}' 'participant: expected one line'
tr_try "an overlong room" 400 "{\"room\":\"$(head -c 300 /dev/zero | tr '\0' r)\"}" 'room: expected one line of 1 to 248 bytes'
tr_try "an address that is not one" 400 '{"room":"a","to":["ada at example.com"]}' 'to\[0\]: not an email address'
tr_try "a display-name address" 400 '{"room":"a","to":["Ada <ada@example.com>"]}' 'to\[0\]: not an email address'
tr_try "to as a string" 400 '{"room":"a","to":"ada@example.com"}' 'to: expected a non-empty array'
many=$(for i in $(seq 51); do printf '"u%d@example.com",' "$i"; done)
tr_try "51 recipients" 400 "{\"room\":\"a\",\"to\":[${many%,}]}" 'to: 51 addresses, at most 50 allowed'
tr_try "a template path" 400 '{"room":"a","template":"../../etc/passwd"}' 'template: letters, digits'
tr_try "data not an object" 400 '{"room":"a","data":[1]}' 'data: expected an object'
tr_try "summary not a string" 400 '{"room":"a","summary":{"x":1}}' 'summary: expected a string'
tr_try "an unknown field" 400 '{"room":"a","bcc":["x@example.com"]}' 'bcc: unknown field'
printf '{"room":"a"}' >"$WORK/t.json"
try "transcript: no credentials" 401 "${post[@]}" --data-binary @"$WORK/t.json" "$URL/v1/transcripts"
try "transcript: a wrong bearer" 401 "${post[@]}" -H "Authorization: Bearer wrong-bearer-token-000" --data-binary @"$WORK/t.json" "$URL/v1/transcripts"

# ---- MultiMail webhooks ----
mm='{"event":"oversight.approved","timestamp":"2026-11-26T00:00:00.000Z","data":{"email_id":"em_unknown"}}'
printf '%s' "$mm" >"$WORK/mm.json"
msig=$(openssl dgst -sha256 -hmac "$HOOK" -hex <"$WORK/mm.json" | sed 's/.*= //')
try "multimail: unsigned" 401 "${post[@]}" --data-binary @"$WORK/mm.json" "$URL/webhooks/multimail"
try "multimail: mis-signed" 401 "${post[@]}" -H "X-MultiMail-Signature: sha256=${msig/a/b}" --data-binary @"$WORK/mm.json" "$URL/webhooks/multimail"
printf '%s ' "$mm" >"$WORK/mm2.json"
try "multimail: signed for another body" 401 "${post[@]}" -H "X-MultiMail-Signature: sha256=$msig" --data-binary @"$WORK/mm2.json" "$URL/webhooks/multimail"
st=$(curl -s -o /dev/null -w '%{http_code}' "${post[@]}" -H "X-MultiMail-Signature: sha256=$msig" --data-binary @"$WORK/mm.json" "$URL/webhooks/multimail")
check "multimail: a signed webhook is accepted" 200 "$st"
try "multimail: the same body replayed is not processed again" 200 "${post[@]}" -H "X-MultiMail-Signature: $msig" --data-binary @"$WORK/mm.json" "$URL/webhooks/multimail"
check_grep "  ... and says duplicate" '"status":"duplicate"' "$WORK/resp"

# ---- slow and many clients ----
# Slowloris: headers that never end are cut off after read_timeout (2 s).
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /webhooks/livekit HTTP/1.1\r\nHost: x\r\n' >&3
start=$(date +%s)
timeout 10 cat <&3 >/dev/null
took=$(( $(date +%s) - start ))
exec 3<&- 3>&-
CASES=$((CASES + 1))
if [ "$took" -le 5 ]; then ok "a slowloris client is cut off (${took}s)"; else not_ok "a slowloris client is cut off (${took}s)"; fi
# A client that sends a byte every half second never sits idle for
# read_timeout; its request, headers or body, is cut off after
# request_timeout (4 s) all the same.
trickle() { # trickle HEAD: HEAD at once, then a byte every 0.5 s for 15 s
	exec 3<>"/dev/tcp/127.0.0.1/$PORT"
	printf '%b' "$1" >&3
	(for _ in $(seq 30); do printf 'x' >&3 || exit 0; sleep 0.5; done) 2>/dev/null &
	local feeder=$! start
	start=$(date +%s)
	timeout 20 cat <&3 >/dev/null
	took=$(( $(date +%s) - start ))
	kill "$feeder" 2>/dev/null
	wait "$feeder" 2>/dev/null
	exec 3<&- 3>&-
	CASES=$((CASES + 1))
}
metric() { curl -s "$URL/metrics" | awk -v k="$1" 'index($0, k " ") == 1 { print $NF }'; }
cut_before=$(metric aftercall_http_cut_off_total)
trickle 'POST /webhooks/livekit HTTP/1.1\r\nHost: x\r\nX-Slow: '
if [ "$took" -ge 3 ] && [ "$took" -le 7 ]; then ok "headers trickled in are cut off after request_timeout (${took}s)"; else not_ok "headers trickled in are cut off after request_timeout (${took}s)"; fi
head -c 4000 /dev/zero | tr '\0' x >"$WORK/trickled"
trickle "POST /webhooks/livekit HTTP/1.1\r\nHost: x\r\nAuthorization: $(sign "$WORK/trickled")\r\nContent-Length: 4000\r\n\r\n"
if [ "$took" -ge 3 ] && [ "$took" -le 7 ]; then ok "a body trickled in is cut off after request_timeout (${took}s)"; else not_ok "a body trickled in is cut off after request_timeout (${took}s)"; fi
check_grep "the log says so" '"msg":"connection cut off: no whole request within limits.request_timeout","peer":"127.0.0.1","seconds":"4"' "$WORK/host.log"
check "and the metric counts both" $((cut_before + 2)) "$(metric aftercall_http_cut_off_total)"
# SIGHUP takes a new request_timeout: the sweeper reads the live config.
sed -i 's/^  request_timeout: 4$/  request_timeout: 7/' "$WORK/h.yaml"
kill -HUP "$HOST_PID"
for _ in $(seq 50); do grep -q '"msg":"SIGHUP: config reloaded"' "$WORK/host.log" && break; sleep 0.1; done
check_grep "SIGHUP takes request_timeout 7" '"msg":"SIGHUP: config reloaded"' "$WORK/host.log"
trickle 'POST /webhooks/livekit HTTP/1.1\r\nHost: x\r\nX-Slow: '
if [ "$took" -ge 6 ] && [ "$took" -le 11 ]; then ok "after it, a trickle is cut off after the new request_timeout (${took}s)"; else not_ok "after it, a trickle is cut off after the new request_timeout (${took}s)"; fi
check_grep "and the log gives the new limit" '"msg":"connection cut off: no whole request within limits.request_timeout","peer":"127.0.0.1","seconds":"7"' "$WORK/host.log"
# A kept-alive client that waits a little less than read_timeout between
# requests is never cut off, though its connection outlives request_timeout:
# each request's time starts at the answer before it.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
answered=0
for _ in 1 2 3 4; do
	printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&3 2>/dev/null || break
	IFS= read -r -t 3 status <&3 || break
	len=0
	while IFS= read -r -t 3 line <&3; do
		line=${line%$'\r'}
		[ -z "$line" ] && break
		case ${line,,} in content-length:*) len=${line#*: } ;; esac
	done
	[ "$len" -gt 0 ] && { IFS= read -r -N "$len" -t 3 _ <&3 || break; }
	case $status in *" 200 "*) answered=$((answered + 1)) ;; esac
	sleep 1.5
done
exec 3<&- 3>&-
check "a kept-alive client pausing 1.5 s between requests is not cut off" 4 "$answered"
# More connections than limits.connections (64): the host stays up and answers.
pids=()
for i in $(seq 100); do
	(exec 4<>"/dev/tcp/127.0.0.1/$PORT"; sleep 3) 2>/dev/null &
	pids+=($!)
done
sleep 0.5
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/healthz")
CASES=$((CASES + 1))
case "$st" in 200|000) ok "over the connection limit the host refuses or answers ($st)";; *) not_ok "over the connection limit: $st";; esac
wait "${pids[@]}" 2>/dev/null
check "after them all, healthz is 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/healthz")"
echo "hostile cases tried: $CASES"
if [ "$CASES" -ge 40 ]; then ok "at least 40 hostile cases ($CASES)"; else not_ok "at least 40 hostile cases ($CASES)"; fi
kill -0 "$HOST_PID" && ok "the host is still running" || not_ok "the host is still running"
stop_host
finish
