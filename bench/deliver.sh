#!/usr/bin/env bash
# Delivery: outbox rows drained per second. ROWS pending rows (10,000) are
# put in a new store's outbox with sqlite3 (the INSERT of
# tests/integration/outbox.sh, a MultiMail-shaped send of ~125 bytes with
# two headers), owned by the `log` plugin (which has no on_delivery, so an
# outcome only clears its notify flag). Then aftercall starts with
# examples/aftercall.yaml (outbox concurrency 32, log level warn) and sends
# them to bench/bare --status 202 on 127.0.0.1, which answers at once. The
# clock runs from exec until `SELECT count(*) ... state = 'done'` (what
# `aftercall outbox list --state done` counts) reaches ROWS, polled every
# 20 ms. Prints sends per second (from exec, and from the first to the last
# row done), aftercall's peak RSS (VmHWM) and the sink's count of requests,
# at sync full (the default) and at sync normal.
#
# Usage: bench/deliver.sh [ROWS]   (default 10000; ROUNDS=N repeats each
# setting N times and reports the median). Binaries as for bench/ingest.sh:
# AFTERCALL, BARE_BIN, PLUGIN_DIR, MUSTACHE_SO.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-${ROWS:-10000}}
ROUNDS=${ROUNDS:-1}
AFTERCALL=${AFTERCALL:-./aftercall}
PLUGIN_DIR=${PLUGIN_DIR:-$PWD/plugin/log/.libs}
MUSTACHE_SO=${MUSTACHE_SO:-$PWD/plugin/mustache/.libs/mustache.so}
. bench/lib.sh
need node sqlite3
if [ -z "${BARE_BIN:-}" ]; then
	[ -x bench/bare ] || make -s bench/bare
	BARE_BIN=bench/bare
fi
export LIVEKIT_API_SECRET=bench-secret-$RANDOM

"$BARE_BIN" --status 202 >"$WORK/sink.out" 2>"$WORK/sink.log" &
SINK_PID=$!
PIDS+=("$SINK_PID")
SINK=$(wait_line "$WORK/sink.out" "$SINK_PID")

done_count() {
	sqlite3 "$1" "SELECT count(*) FROM outbox WHERE state = 'done'" 2>/dev/null || echo 0
}

# drain SYNC ROUND: prints "SECONDS_FROM_EXEC SECONDS_FIRST_TO_LAST HWM_KIB".
drain() {
	local sync=$1 db=$WORK/deliver-$1-$2.db cfg=$WORK/deliver-$1.yaml port pid t0 t1 tfirst= n
	port=$(free_port)
	aftercall_config "$port" "$db" "$sync" warn "$cfg"
	# The schema, as the host makes it (migrate creates a new store; the
	# commands that only read refuse one that is not there); then the rows.
	"$AFTERCALL" migrate -c "$cfg" >/dev/null
	sqlite3 "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO outbox(plugin, tag, method, url, headers, body, idem_key, state, max_attempts,
  max_age_ms, created_ms, next_ms)
SELECT 'log', 'bench', 'POST', 'http://127.0.0.1:$SINK/v1/mailboxes/mbx_bench/send',
  '[\"Content-Type: application/json\",\"Authorization: Bearer mm_live_bench\"]',
  '{\"to\":[\"caller@example.com\"],\"subject\":\"Follow-up ' || i || '\",\"markdown\":\"Thank you for your call.\",\"idempotency_key\":\"bench-' || i || '\"}',
  'bench-' || i, 'pending', 10, 86400000,
  CAST(strftime('%s','now') AS INTEGER) * 1000, CAST(strftime('%s','now') AS INTEGER) * 1000 FROM n;"
	t0=$EPOCHREALTIME
	"$AFTERCALL" serve -c "$cfg" 2>"$WORK/deliver-$sync.log" &
	pid=$!
	PIDS+=("$pid")
	for _ in $(seq 1 6000); do
		n=$(done_count "$db")
		[ -z "$tfirst" ] && [ "$n" -gt 0 ] && tfirst=$EPOCHREALTIME
		[ "$n" -ge "$ROWS" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	t1=$EPOCHREALTIME
	local hwm
	hwm=$(kib "$pid" VmHWM)
	stop "$pid"
	if [ "$(done_count "$db")" -lt "$ROWS" ]; then
		echo "bench: only $(done_count "$db") of $ROWS rows done in 120 s:" >&2
		sqlite3 "$db" "SELECT state, count(*) FROM outbox GROUP BY state" >&2
		tail -5 "$WORK/deliver-$sync.log" >&2
		exit 1
	fi
	rm -f "$db" "$db-wal" "$db-shm"
	awk -v a="$t0" -v f="$tfirst" -v b="$t1" -v h="$hwm" 'BEGIN { printf "%.3f %.3f %s\n", b - a, b - f, h }'
}

declare -A RES
for round in $(seq 1 "$ROUNDS"); do
	for sync in full normal; do
		RES[$sync]+="$(drain "$sync" "$round")"$'\n'
	done
done
stop "$SINK_PID"
sent=$(sed -n 's/^requests //p' "$WORK/sink.out")

machine
echo "$ROWS outbox rows, concurrency 32 (examples/aftercall.yaml), sink: bench/bare --status 202 on 127.0.0.1, $ROUNDS round(s)"
printf '%-40s %12s %16s %10s\n' "" "sends/s" "sends/s (1st" "peak MiB"
printf '%-40s %12s %16s %10s\n' "" "from exec" "to last done)" ""
for sync in full normal; do
	read -r secs span hwm <<<"$(printf '%s' "${RES[$sync]}" | sort -g | sed -n "$(((ROUNDS + 1) / 2))p")"
	printf '%-40s %12.0f %16.0f %10s' "aftercall, SQLite sync $sync" \
		"$(awk -v n="$ROWS" -v s="$secs" 'BEGIN { print n / s }')" \
		"$(awk -v n="$ROWS" -v s="$span" 'BEGIN { print n / s }')" "$(mib "$hwm")"
	[ "$ROUNDS" = 1 ] || printf '  rounds (s): %s' "$(printf '%s' "${RES[$sync]}" | awk '{ print $1 }' | paste -sd' ')"
	echo
done
echo "requests the sink answered: $sent (expected $((ROWS * ROUNDS * 2)))"
echo "target: >= 5000 sends/s"
