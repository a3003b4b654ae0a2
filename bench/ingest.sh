#!/usr/bin/env bash
# Ingest: signed LiveKit webhooks per second, posted by wrk over keep-alive
# connections on 127.0.0.1, each with an event id of its own (a pre-signed
# pool, bench/lk_pool.cjs + bench/ingest.lua), to:
#   aftercall    examples/aftercall.yaml with the `log` plugin, log level
#                warn; the SQLite store at sync full (the default), then
#                again at sync normal; every 200 is a journaled commit;
#   bare         bench/bare: libmicrohttpd with the host's daemon flags,
#                reading the body and answering 200 (the HTTP ceiling);
#   node         bench/node_receiver.cjs: livekit-server-sdk's
#                WebhookReceiver in a node:http server (verifies, parses,
#                stores nothing);
#   pg1, pg3     aftercall on PostgreSQL (sync full: synchronous_commit on),
#                one host, then three hosts on one database, each of the
#                three with its own wrk (a third of the connections, one
#                thread) and its own third of the pool, run at once;
#                requests/s summed, the worst p50/p99, the largest RSS. The
#                server is BENCH_PG (a base URL such as
#                postgres://postgres@127.0.0.1:5432), or one tools/pg starts.
# Same wrk threads, connections and duration for each, after a warm-up of
# WARMUP seconds with ids of their own. Prints requests/s, p50 and p99
# latency, peak RSS (VmHWM) and the ratios; then aftercall's RSS when idle
# after start and its start-up time (exec to the first 200 of /healthz).
#
# Usage: bench/ingest.sh [-t THREADS] [-c CONNECTIONS] [-d SECONDS]
#        (defaults 2, 64, 10; the environment may say THREADS, CONNECTIONS,
#        DURATION too). Also: WARMUP (2), STARTUP_RUNS (9), POOL_RATE (the
#        pool holds DURATION x POOL_RATE requests; default 80000), ROUNDS
#        (1: each server is measured ROUNDS times, interleaved, and the
#        round with the median requests/s is reported), ONLY (a
#        space-separated subset of "full normal bare node pg1 pg3"), IDLE
#        (0: this many more keep-alive clients stay connected through each
#        server's run, each asking GET /healthz every 4 s; bench/idle.cjs).
# Binaries: AFTERCALL (./aftercall), BARE_BIN (bench/bare, built if
# missing), PLUGIN_DIR (plugin/log/.libs), MUSTACHE_SO.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2} CONNECTIONS=${CONNECTIONS:-64} DURATION=${DURATION:-10}
while getopts t:c:d: o; do
	case $o in
	t) THREADS=$OPTARG ;;
	c) CONNECTIONS=$OPTARG ;;
	d) DURATION=${OPTARG%s} ;;
	*) sed -n 's/^# \{0,1\}//; /^Usage/,/^Binaries/p' "$0" >&2; exit 2 ;;
	esac
done
WARMUP=${WARMUP:-2} STARTUP_RUNS=${STARTUP_RUNS:-9} POOL_RATE=${POOL_RATE:-80000}
ROUNDS=${ROUNDS:-1} IDLE=${IDLE:-0}
ONLY=${ONLY:-full normal bare node pg1 pg3}
AFTERCALL=${AFTERCALL:-./aftercall}
PLUGIN_DIR=${PLUGIN_DIR:-$PWD/plugin/log/.libs}
MUSTACHE_SO=${MUSTACHE_SO:-$PWD/plugin/mustache/.libs/mustache.so}
. bench/lib.sh
need wrk node sqlite3
if [ -z "${BARE_BIN:-}" ]; then
	[ -x bench/bare ] || make -s bench/bare
	BARE_BIN=bench/bare
fi
[ -d bench/node_modules/livekit-server-sdk ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)

KEY=APIexamplekey # the key examples/aftercall.yaml names
SECRET=bench-secret-$RANDOM$RANDOM
export LIVEKIT_API_SECRET=$SECRET
SAMPLE=tests/data/livekit/room_finished.json
POOL_SIZE=$((DURATION * POOL_RATE))
node bench/lk_pool.cjs "$POOL_SIZE" "$KEY" "$SECRET" "$SAMPLE" "EV_bench_$$" "$WORK/pool.txt"
node bench/lk_pool.cjs $((WARMUP * 60000 + 1000)) "$KEY" "$SECRET" "$SAMPLE" "EV_warm_$$" "$WORK/warm.txt"
# Thirds of the pools, for the three hosts of pg3.
for p in pool warm; do
	awk -v w="$WORK" -v p="$p" '{ print > (w "/" p "." (NR % 3) ".txt") }' "$WORK/$p.txt" 2>/dev/null || true
done
# Several hundred MB were just written: have them on disk before timing, so
# that their writeback does not compete with the stores' fsyncs.
sync

# bench_wrk NAME PORT POOL SECONDS [THREADS CONNECTIONS]: one wrk run; its
# output goes to $WORK/NAME.wrk, its RESULT line to stdout.
bench_wrk() {
	local t=${5:-$THREADS} c=${6:-$CONNECTIONS}
	POOL=$3 WRK_THREADS=$t wrk -t"$t" -c"$c" -d"$4"s --latency \
		-s bench/ingest.lua "http://127.0.0.1:$2/webhooks/livekit" >"$WORK/$1.wrk" 2>&1 || true
	grep '^RESULT ' "$WORK/$1.wrk" || { echo "bench: wrk failed:" >&2; cat "$WORK/$1.wrk" >&2; exit 1; }
}

# measure NAME PID PORT: warm-up, the timed run, then peak RSS; sets
# R[NAME] ("requests rps p50 p99 hwm non2xx errors wrapped cpu_us") and
# appends it to ALL[NAME], one line a round. cpu_us: the server's CPU time
# (user + system) per request during the timed run, in microseconds; on a
# shared or busy machine it varies much less than requests/s.
declare -A R ALL
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
measure() {
	local name=$1 pid=$2 port=$3 res c0 c1 cpu idle=
	if [ "$IDLE" -gt 0 ]; then
		node bench/idle.cjs "$port" "$IDLE" >"$WORK/idle.out" 2>"$WORK/idle.err" &
		idle=$!
		for _ in $(seq 1 200); do
			grep -q '^idle' "$WORK/idle.out" && break
			kill -0 "$idle" 2>/dev/null || { echo "bench: idle connections failed: $(cat "$WORK/idle.err")" >&2; exit 1; }
			sleep 0.05
		done
	fi
	[ "$WARMUP" -gt 0 ] && bench_wrk "$name.warm" "$port" "$WORK/warm.txt" "$WARMUP" >/dev/null
	c0=$(cpu_ticks "$pid")
	res=$(bench_wrk "$name" "$port" "$WORK/pool.txt" "$DURATION")
	c1=$(cpu_ticks "$pid")
	if [ -n "$idle" ]; then
		kill -0 "$idle" 2>/dev/null || { echo "bench: $name closed idle connections: $(cat "$WORK/idle.err")" >&2; exit 1; }
		kill "$idle"
		wait "$idle" 2>/dev/null || true
	fi
	cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$(field requests "$res")" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
	R[$name]="$(field requests "$res") $(field rps "$res") $(field p50_us "$res") $(field p99_us "$res") $(kib "$pid" VmHWM) $(field non2xx "$res") $(field errors "$res") $(field wrapped "$res") $cpu"
	ALL[$name]+="${R[$name]}"$'\n'
}

# PostgreSQL: BENCH_PG, or a server of our own.
PG=
if [[ " $ONLY " == *" pg"* ]]; then
	need psql
	if [ -n "${BENCH_PG:-}" ]; then
		PG=$BENCH_PG
	else
		PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/aftercall-bench-pg.XXXXXX")
		trap 'tools/pg stop "$PGDIR"; rm -rf "$PGDIR"; cleanup' EXIT
		PG=$(tools/pg start "$PGDIR") || { echo "bench: PostgreSQL did not start" >&2; exit 1; }
	fi
fi
# new_pg_db NAME: a fresh database; prints its URL.
new_pg_db() {
	psql "$PG/postgres" -qAtX -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
	echo "$PG/$1"
}

# run_pg HOSTS ROUND: HOSTS aftercall hosts on one new database.
run_pg() {
	local n=$1 round=$2 name=pg$1 url h pids=() ports=() res c0=0 c1=0 reqs=0 rps=0 p50=0 p99=0 hwm=0
	local non2xx=0 errors=0 wrapped=0 v cpu
	url=$(new_pg_db "bench_${name}_$round")
	for ((h = 0; h < n; h++)); do
		ports[h]=$(free_port)
		aftercall_config "${ports[h]}" "$url" full warn "$WORK/ingest-$name-$h.yaml"
		"$AFTERCALL" serve -c "$WORK/ingest-$name-$h.yaml" 2>"$WORK/aftercall-$name-$h.log" &
		pids[h]=$!
		PIDS+=("${pids[h]}")
		wait_healthy "${ports[h]}" "${pids[h]}"
	done
	if [ "$n" = 1 ]; then
		measure "$name" "${pids[0]}" "${ports[0]}"
	else
		local wrks=()
		for ((h = 0; h < n && WARMUP > 0; h++)); do
			bench_wrk "$name.$h.warm" "${ports[h]}" "$WORK/warm.$h.txt" "$WARMUP" 1 $((CONNECTIONS / n)) >/dev/null &
			wrks+=($!)
		done
		wait "${wrks[@]}"
		for ((h = 0; h < n; h++)); do c0=$((c0 + $(cpu_ticks "${pids[h]}"))); done
		wrks=()
		for ((h = 0; h < n; h++)); do
			bench_wrk "$name.$h" "${ports[h]}" "$WORK/pool.$h.txt" "$DURATION" 1 $((CONNECTIONS / n)) >"$WORK/$name.$h.res" &
			wrks+=($!)
		done
		wait "${wrks[@]}"
		for ((h = 0; h < n; h++)); do c1=$((c1 + $(cpu_ticks "${pids[h]}"))); done
		for ((h = 0; h < n; h++)); do
			res=$(cat "$WORK/$name.$h.res")
			reqs=$((reqs + $(field requests "$res")))
			rps=$(awk -v a="$rps" -v b="$(field rps "$res")" 'BEGIN { print a + b }')
			for v in p50 p99; do
				[ "$(field ${v}_us "$res")" -gt "${!v}" ] && printf -v "$v" '%s' "$(field ${v}_us "$res")"
			done
			non2xx=$((non2xx + $(field non2xx "$res"))); errors=$((errors + $(field errors "$res")))
			wrapped=$((wrapped + $(field wrapped "$res")))
			v=$(kib "${pids[h]}" VmHWM); [ "$v" -gt "$hwm" ] && hwm=$v
		done
		cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
		R[$name]="$reqs $rps $p50 $p99 $hwm $non2xx $errors $wrapped $cpu"
		ALL[$name]+="${R[$name]}"$'\n'
	fi
	for ((h = 0; h < n; h++)); do stop "${pids[h]}"; done
	R[$name]+=" $(psql "$url" -qAtX -c "SELECT count(*) FROM journal WHERE dedupe LIKE 'EV_bench_%'")"
	ALL[$name]=${ALL[$name]%$'\n'*}" ${R[$name]##* }"$'\n'
	psql "$PG/postgres" -qAtX -c "DROP DATABASE IF EXISTS bench_${name}_$round WITH (FORCE)" >/dev/null
}

IDLE_RSS= IDLE_HWM=
run_aftercall() {
	local sync=$1 round=$2 port db cfg pid
	port=$(free_port)
	db=$WORK/ingest-$sync-$round.db
	cfg=$WORK/ingest-$sync.yaml
	aftercall_config "$port" "$db" "$sync" warn "$cfg"
	"$AFTERCALL" serve -c "$cfg" 2>"$WORK/aftercall-$sync.log" &
	pid=$!
	PIDS+=("$pid")
	wait_healthy "$port" "$pid"
	if [ "$sync" = full ] && [ "$round" = 1 ]; then
		sleep 1
		IDLE_RSS=$(kib "$pid" VmRSS)
		IDLE_HWM=$(kib "$pid" VmHWM)
	fi
	measure "$sync" "$pid" "$port"
	stop "$pid"
	# Every 200 was a new row: more 200s than rows would mean duplicates.
	R[$sync]+=" $(sqlite3 "$db" "SELECT count(*) FROM journal WHERE dedupe LIKE 'EV_bench_%'")"
	ALL[$sync]=${ALL[$sync]%$'\n'*}" ${R[$sync]##* }"$'\n'
	rm -f "$db" "$db-wal" "$db-shm"
	if grep -q '"level":"error"' "$WORK/aftercall-$sync.log"; then
		echo "bench: aftercall logged errors:" >&2
		grep '"level":"error"' "$WORK/aftercall-$sync.log" | head -5 >&2
	fi
}

run_bare() {
	local pid port
	"$BARE_BIN" >"$WORK/bare.out" 2>"$WORK/bare.log" &
	pid=$!
	PIDS+=("$pid")
	port=$(wait_line "$WORK/bare.out" "$pid")
	measure bare "$pid" "$port"
	stop "$pid"
}

run_node() {
	local pid port
	node bench/node_receiver.cjs "$KEY" "$SECRET" >"$WORK/node.out" 2>"$WORK/node.log" &
	pid=$!
	PIDS+=("$pid")
	port=$(wait_line "$WORK/node.out" "$pid")
	measure node "$pid" "$port"
	stop "$pid"
}

# startup_once DB: ms from exec to the first 200 of /healthz, stock config
# (examples/aftercall.yaml: log level info, the `log` plugin, sync full).
startup_once() {
	local port cfg pid t0 t1 k ok=
	port=$(free_port)
	cfg=$WORK/startup.yaml
	aftercall_config "$port" "$1" full info "$cfg"
	t0=$EPOCHREALTIME
	"$AFTERCALL" serve -c "$cfg" 2>>"$WORK/startup.log" &
	pid=$!
	PIDS+=("$pid")
	for ((k = 0; k < 200000; k++)); do
		http_status "$port" /healthz
		if [ "$STATUS" = 200 ]; then
			ok=1
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
	done
	t1=$EPOCHREALTIME
	stop "$pid"
	[ -n "$ok" ] || { echo "bench: aftercall did not start:" >&2; tail -5 "$WORK/startup.log" >&2; exit 1; }
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'
}

for round in $(seq 1 "$ROUNDS"); do
	for what in $ONLY; do
		case $what in
		full | normal) run_aftercall "$what" "$round" ;;
		bare) run_bare ;;
		node) run_node ;;
		pg1) run_pg 1 "$round" ;;
		pg3) run_pg 3 "$round" ;;
		esac
	done
done
# The round with the median requests/s of each server.
for what in $ONLY; do
	R[$what]=$(printf '%s' "${ALL[$what]:-}" | sort -k2,2g | sed -n "$(((ROUNDS + 1) / 2))p")
done

fresh=() again=()
for i in $(seq 1 "$STARTUP_RUNS"); do
	fresh+=("$(startup_once "$WORK/startup-$i.db")")
done
for i in $(seq 1 "$STARTUP_RUNS"); do
	again+=("$(startup_once "$WORK/startup-1.db")")
done

# ---- the report ------------------------------------------------------------
machine
echo "wrk $(wrk -v 2>&1 | head -1 | awk '{ print $2 }'): -t$THREADS -c$CONNECTIONS -d${DURATION}s (after ${WARMUP}s of warm-up), $ROUNDS round(s), body: $SAMPLE ($(stat -c %s "$SAMPLE") bytes) with a unique id per request"
echo "aftercall: examples/aftercall.yaml, log plugin, log level warn, $(nproc) HTTP threads; node $(node --version), livekit-server-sdk $(node -p "require('./bench/node_modules/livekit-server-sdk/package.json').version")"
echo
printf '%-44s %10s %8s %8s %9s %10s %8s\n' "" "requests/s" "p50 ms" "p99 ms" "peak MiB" "CPU us/req" "non-2xx"
row() {
	[ -n "${R[$1]:-}" ] || return 0
	read -r n rps p50 p99 hwm non2xx errors wrapped cpu journaled <<<"${R[$1]}"
	printf '%-44s %10s %8.2f %8.2f %9s %10s %8s' "$2" "$rps" "$(awk -v v="$p50" 'BEGIN { print v / 1000 }')" \
		"$(awk -v v="$p99" 'BEGIN { print v / 1000 }')" "$(mib "$hwm")" "$cpu" "$non2xx"
	[ "$errors" = 0 ] || printf '  (%s socket errors)' "$errors"
	# Repeated ids matter only where they are journaled (bare and node
	# store nothing, so for them the pool may wrap).
	[ "$wrapped" = 0 ] || [ -z "${journaled:-}" ] || printf '  (POOL WRAPPED: ids repeated; raise POOL_RATE)'
	[ -z "${journaled:-}" ] || printf '  (%s journaled / %s answered)' "$journaled" "$n"
	[ "$ROUNDS" = 1 ] || printf '  rounds: %s' "$(printf '%s' "${ALL[$1]}" | awk '{ print $2 }' | paste -sd' ')"
	echo
}
row full "aftercall, SQLite sync full (default)"
row normal "aftercall, SQLite sync normal"
row bare "bare libmicrohttpd (bench/bare.c)"
row node "node:http + WebhookReceiver (livekit-server-sdk)"
row pg1 "aftercall, PostgreSQL, one host"
row pg3 "aftercall, PostgreSQL, three hosts, one database"
echo
get() { read -r -a a <<<"${R[$1]}"; echo "${a[$2]}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
for s in full normal; do
	[ -n "${R[$s]:-}" ] || continue
	[ -n "${R[node]:-}" ] && echo "aftercall ($s) / node requests/s: $(ratio "$(get "$s" 1)" "$(get node 1)")x   (target >= 5x); CPU per request: $(ratio "$(get node 8)" "$(get "$s" 8)")x less"
	if [ -n "${R[bare]:-}" ]; then
		echo "aftercall ($s) / bare requests/s: $(ratio "$(get "$s" 1)" "$(get bare 1)")x   (target >= 0.60x); CPU per request: $(ratio "$(get "$s" 8)" "$(get bare 8)")x bare's"
		echo "aftercall ($s) p99 / bare p99:    $(ratio "$(get "$s" 3)" "$(get bare 3)")x   (target <= 2x)"
	fi
	echo "aftercall ($s) peak RSS under ingest: $(mib "$(get "$s" 4)") MiB   (target <= 64 MiB)"
done
[ -n "${R[pg1]:-}" ] && [ -n "${R[pg3]:-}" ] && echo "PostgreSQL: three hosts / one host requests/s: $(ratio "$(get pg3 1)" "$(get pg1 1)")x (all on this machine's $(nproc) cores, with the database and wrk)"
[ -n "${R[pg1]:-}" ] && [ -n "${R[full]:-}" ] && echo "PostgreSQL one host / SQLite (full) requests/s: $(ratio "$(get pg1 1)" "$(get full 1)")x"
[ -n "$IDLE_RSS" ] && echo "aftercall idle RSS 1 s after start: $(mib "$IDLE_RSS") MiB (VmHWM $(mib "$IDLE_HWM") MiB)   (target <= 10 MiB)"
echo "start-up, exec to first 200 of /healthz, stock config, median of $STARTUP_RUNS:" \
	"$(printf '%s\n' "${fresh[@]}" | median) ms with a new store, $(printf '%s\n' "${again[@]}" | median) ms with an existing one   (target < 100 ms)"
echo "  runs, new store:      ${fresh[*]}"
echo "  runs, existing store: ${again[*]}"
