#!/usr/bin/env bash
# Several hosts on one PostgreSQL database, as behind a load balancer: three
# hosts on three ports share one store. For each session the room's end, the
# voice agent's transcript and a duplicate of the webhook land on three
# different hosts at the same moment; one host is killed with SIGKILL in the
# middle of the run and started again, and senders whose host is down try the
# next one. Afterwards: every acknowledged event is journaled once, every
# session got exactly one send at the MultiMail double, and the audit trail
# is one chain that verifies.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
[ -n "${AFTERCALL_TEST_PG:-}" ] || { not_ok "multihost needs AFTERCALL_TEST_PG (tools/pg start DIR)"; finish; }
export AFTERCALL_TEST_STORE=postgres
STORE=$(store_url mh) || { not_ok "create the store"; finish; }

SESSIONS=${MULTIHOST_SESSIONS:-30}
start_double || finish
K=APImulti S=multi-secret-0123456789
MMKEY=mm_live_multi_key
MBX=$(curl -s -X POST -H "Authorization: Bearer $MMKEY" -H 'Content-Type: application/json' \
	--data '{"address_local":"multi"}' "http://127.0.0.1:$PRISM/v1/mailboxes" |
	sed -n 's/.*"id":"\(mbx_[^"]*\)".*/\1/p')
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORTS=()
for h in 0 1 2; do
	PORTS[h]=$(free_port)
	cat >"$WORK/h$h.yaml" <<YAML
listen: 127.0.0.1:${PORTS[h]}
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
    verify: [livekit, {bearer: multi-bearer-token-0123}]
    event_type: transcript
    plugins: [multimail]
plugins:
  - name: multimail
    path: $PLUGIN_BUILDDIR/multimail/.libs/multimail.so
    config: {api_url: "http://127.0.0.1:$PRISM", api_key: $MMKEY, mailbox_id: $MBX}
YAML
done

up() { # up H: starts host H; its pid goes to $WORK/pid.H
	"$AFTERCALL" serve -c "$WORK/h$1.yaml" 2>>"$WORK/host$1.log" &
	echo $! >"$WORK/pid.$1"
	disown $! 2>/dev/null || true
	for _ in $(seq 1 100); do
		curl -s -o /dev/null "http://127.0.0.1:${PORTS[$1]}/healthz" && return 0
		sleep 0.05
	done
	echo "host $1 did not start"; tail -5 "$WORK/host$1.log"
	return 1
}
for h in 0 1 2; do up $h || { not_ok "host $h starts"; finish; }; done
ok "three hosts start on one database"

# post H PATH FILE AUTH: to host H; while it is down, on to the next one, as
# a load balancer does. Records the request's id when it is acknowledged.
post() {
	# A file of its own: the posts of a session run at once, in subshells
	# that share $$ and may draw the same $RANDOM.
	local h=$1 out
	out=$(mktemp "$WORK/r.XXXXXX")
	for _ in $(seq 1 300); do
		st=$(curl -s -o "$out" -w '%{http_code}' --max-time 5 -X POST \
			-H 'Content-Type: application/json' -H "Authorization: $4" \
			--data-binary "@$3" "http://127.0.0.1:${PORTS[$h]}$2")
		case "$st" in 2*)
			# One write per line: the posts of a session run at once.
			printf '%s\n' "$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$out")" >>"$WORK/acked"
			printf '%s\n' "$(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' "$out")" >>"$WORK/statuses.$h"
			rm -f "$out"; return 0;;
		esac
		h=$(((h + 1) % 3))
		sleep 0.05
	done
	echo "gave up on $3"
	return 1
}

KILLED=1
for i in $(seq 1 "$SESSIONS"); do
	printf '{"room":"multi-%d","room_sid":"RM_multi%d","participant":"m%d","to":["m%d@example.com"],"summary":"Session %d."}' \
		"$i" "$i" "$i" "$i" "$i" >"$WORK/t$i.json"
	printf '{"event":"room_finished","room":{"sid":"RM_multi%d","name":"multi-%d"},"id":"EV_multi_%d"}' \
		"$i" "$i" "$i" >"$WORK/e$i.json"
	tok=$("$AFTERCALL" sign --key $K --secret $S "$WORK/e$i.json")
	# The three parts of a session, on three hosts, at once.
	post $((i % 3)) /webhooks/livekit "$WORK/e$i.json" "$tok" &
	p1=$!
	post $(((i + 1) % 3)) /v1/transcripts "$WORK/t$i.json" "Bearer multi-bearer-token-0123" &
	p2=$!
	post $(((i + 2) % 3)) /webhooks/livekit "$WORK/e$i.json" "$tok" &
	p3=$!
	# Mid-run, host 1 dies with requests in flight, and comes back later.
	if [ "$i" -eq $((SESSIONS / 2)) ]; then
		kill -KILL "$(cat "$WORK/pid.1")"
		echo "killed host 1 after session $i"
	fi
	if [ "$i" -eq $((SESSIONS / 2 + 5)) ]; then
		up 1 || not_ok "host 1 restarts"
	fi
	wait "$p1" "$p2" "$p3"
done
ok "all $((SESSIONS * 3)) requests acknowledged"

# The hosts drain the outbox between them.
for _ in $(seq 1 600); do
	n=$(store_sql "$STORE" "select count(*) from outbox where state = 'done'")
	[ "${n:-0}" -ge "$SESSIONS" ] && break
	sleep 0.1
done
sleep 1 # a second send, were there one, would show now
for h in 0 1 2; do
	pid=$(cat "$WORK/pid.$h")
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$pid" 2>/dev/null && not_ok "host $h stops on SIGTERM" || ok "host $h stops on SIGTERM"
done
for h in 0 1 2; do
	n=$(grep -c '"msg":"event"' "$WORK/host$h.log")
	[ "$n" -gt 0 ] && ok "host $h took events ($n)" || not_ok "host $h took events ($n)"
done
dups=$(cat "$WORK"/statuses.* | grep -c '^duplicate$')
check "every second copy of a webhook was answered duplicate" "$SESSIONS" "$dups"

check "the journal holds each event once" "$((SESSIONS * 2))" \
	"$(store_sql "$STORE" "select count(distinct (route, dedupe)) || '/' || count(*) from journal" | sed 's|/.*||')"
check "and no event twice" 0 \
	"$(store_sql "$STORE" "select count(*) from (select route, dedupe from journal group by 1, 2 having count(*) > 1) d")"
missing=0
grep . "$WORK/acked" | sort -u >"$WORK/acked.u"
while read -r id; do
	[ "$(store_sql "$STORE" "select count(*) from journal where dedupe = '$id'")" -ge 1 ] || missing=$((missing + 1))
done <"$WORK/acked.u"
check "every acknowledged request is in the journal ($(wc -l <"$WORK/acked.u") ids)" 0 "$missing"
control state >"$WORK/state.json"
node -e '
const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const n = Number(process.argv[2]);
let bad = [];
for (let i = 1; i <= n; i++) {
  const c = s.emails.filter((e) => e.direction === "outbound" && (e.to || []).includes(`m${i}@example.com`)).length;
  if (c !== 1) bad.push(`m${i}: ${c}`);
}
console.log(bad.length ? bad.join(" ") : "all one");' "$WORK/state.json" "$SESSIONS" >"$WORK/sends"
check "every session got exactly one send at the double" "all one" "$(cat "$WORK/sends")"
check "one send in the outbox per session" "$SESSIONS" \
	"$(store_sql "$STORE" "select count(*) from outbox where tag like 'send:%'")"
"$AFTERCALL" audit -c "$WORK/h0.yaml" --verify >"$WORK/verify" 2>&1
check "the audit trail is one chain that verifies" 0 $?
cat "$WORK/verify"
check "its records run 1..N without a gap" "$(store_sql "$STORE" "select count(*) from audit")" \
	"$(store_sql "$STORE" "select max(seq) from audit")"
finish
