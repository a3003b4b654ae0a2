#!/usr/bin/env bash
# Crash test: a stream of signed LiveKit webhooks and transcripts for many
# sessions, senders retrying as LiveKit does, while the host is killed with
# SIGKILL at random moments and restarted. Afterwards every request that got
# a 2xx is in the journal, every session got exactly one send at the
# MultiMail double, and the audit chain verifies.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url c) || { not_ok "create the store"; finish; }

SESSIONS=${CRASH_SESSIONS:-30}
KILLS=${CRASH_KILLS:-22}
start_double || finish
K=APIcrash S=crash-secret-0123456789
MMKEY=mm_live_crash_key
MBX=$(curl -s -X POST -H "Authorization: Bearer $MMKEY" -H 'Content-Type: application/json' \
	--data '{"address_local":"crash"}' "http://127.0.0.1:$PRISM/v1/mailboxes" |
	sed -n 's/.*"id":"\(mbx_[^"]*\)".*/\1/p')
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/c.yaml" <<YAML
listen: 127.0.0.1:$PORT
store: $STORE
template_engine: $PLUGIN_BUILDDIR/mustache/.libs/mustache.so
templates: $TEMPLATES
livekit:
  keys:
    $K: $S
outbox:
  retry_base_ms: 100
  retry_cap_ms: 1000
routes:
  - path: /webhooks/livekit
    verify: livekit
    plugins: [multimail]
  - path: /v1/transcripts
    verify: [livekit, {bearer: crash-bearer-token-0123}]
    event_type: transcript
    plugins: [multimail]
plugins:
  - name: multimail
    path: $PLUGIN_BUILDDIR/multimail/.libs/multimail.so
    config: {api_url: "http://127.0.0.1:$PRISM", api_key: $MMKEY, mailbox_id: $MBX}
YAML

up() { # starts the host in the background; its pid goes to $WORK/pid
	"$AFTERCALL" serve -c "$WORK/c.yaml" 2>>"$WORK/host.log" &
	echo $! >"$WORK/pid"
	disown $! 2>/dev/null || true
}
up

# The killer: SIGKILL at random moments, restart at once.
(
	for k in $(seq 1 "$KILLS"); do
		sleep "0.$((RANDOM % 7 + 3))"
		kill -KILL "$(cat "$WORK/pid")" 2>/dev/null
		wait "$(cat "$WORK/pid")" 2>/dev/null
		echo "$k" >"$WORK/kills"
		up
	done
) &
KILLER=$!

# post_retry PATH FILE AUTH: retries until a 2xx (LiveKit: five attempts with
# backoff; here as many as it takes), records the request's id when it lands.
post_retry() {
	for _ in $(seq 1 200); do
		st=$(curl -s -o "$WORK/r" -w '%{http_code}' --max-time 5 -X POST \
			-H 'Content-Type: application/json' -H "Authorization: $3" \
			--data-binary "@$2" "http://127.0.0.1:$PORT$1")
		case "$st" in 2*) { sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$WORK/r"; echo; } >>"$WORK/acked"; return 0;; esac
		sleep 0.1
	done
	echo "gave up on $2"
	return 1
}
for i in $(seq 1 "$SESSIONS"); do
	printf '{"room":"crash-%d","room_sid":"RM_crash%d","participant":"c%d","to":["c%d@example.com"],"summary":"Session %d."}' \
		"$i" "$i" "$i" "$i" "$i" >"$WORK/t$i.json"
	printf '{"event":"room_finished","room":{"sid":"RM_crash%d","name":"crash-%d"},"id":"EV_crash_%d"}' \
		"$i" "$i" "$i" >"$WORK/e$i.json"
	# Half the sessions send the transcript first, half the room's end.
	if [ $((i % 2)) -eq 0 ]; then
		post_retry /v1/transcripts "$WORK/t$i.json" "Bearer crash-bearer-token-0123"
		post_retry /webhooks/livekit "$WORK/e$i.json" "$("$AFTERCALL" sign --key $K --secret $S "$WORK/e$i.json")"
	else
		post_retry /webhooks/livekit "$WORK/e$i.json" "$("$AFTERCALL" sign --key $K --secret $S "$WORK/e$i.json")"
		post_retry /v1/transcripts "$WORK/t$i.json" "Bearer crash-bearer-token-0123"
	fi
	# LiveKit may deliver the same event twice.
	post_retry /webhooks/livekit "$WORK/e$i.json" "$("$AFTERCALL" sign --key $K --secret $S "$WORK/e$i.json")"
done
wait "$KILLER"
kills=$(cat "$WORK/kills")
echo "kills survived: $kills"
if [ "$kills" -ge 20 ]; then ok "at least 20 SIGKILLs ($kills)"; else not_ok "at least 20 SIGKILLs ($kills)"; fi

# Let the last incarnation drain the outbox.
for _ in $(seq 1 300); do
	n=$(store_sql "$STORE" "select count(*) from outbox where state = 'done'" 2>/dev/null)
	[ "${n:-0}" -ge "$SESSIONS" ] && break
	sleep 0.1
done
pid=$(cat "$WORK/pid")
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null && not_ok "the host stops on SIGTERM" || ok "the host stops on SIGTERM"

missing=0
grep . "$WORK/acked" | sort -u >"$WORK/acked.u"
while read -r id; do
	[ "$(store_sql "$STORE" "select count(*) from journal where dedupe = '$id'")" = 1 ] || missing=$((missing + 1))
done <"$WORK/acked.u"
check "every acknowledged request is in the journal ($(wc -l <"$WORK/acked.u") ids)" 0 "$missing"
control state >"$WORK/state.json"
node -e '
const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const n = Number(process.argv[2]);
let bad = [];
for (let i = 1; i <= n; i++) {
  const c = s.emails.filter((e) => e.direction === "outbound" && (e.to || []).includes(`c${i}@example.com`)).length;
  if (c !== 1) bad.push(`c${i}: ${c}`);
}
console.log(bad.length ? bad.join(" ") : "all one");' "$WORK/state.json" "$SESSIONS" >"$WORK/sends"
check "every session got exactly one send at the double" "all one" "$(cat "$WORK/sends")"
"$AFTERCALL" audit -c "$WORK/c.yaml" --verify >"$WORK/verify" 2>&1
check "the audit chain verifies" 0 $?
cat "$WORK/verify"
finish
