# Helpers shared by bench/ingest.sh and bench/deliver.sh (sourced, not run).
# Every server they start listens on 127.0.0.1 and is stopped on exit.

need() {
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "bench: $t is missing (bash tools/setup installs it)" >&2; exit 1; }
	done
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aftercall-bench.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

# stop PID: SIGTERM and wait; forgets the PID.
stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

# free_port: a port nothing listens on now, on 127.0.0.1.
free_port() {
	node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_line FILE PID: the port of the first "listening PORT" line in FILE.
wait_line() {
	local p
	for _ in $(seq 1 200); do
		p=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$1" | head -1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench: server $2 did not start" >&2
	return 1
}

# http_status PORT PATH: sets STATUS to the status of GET PATH on
# 127.0.0.1:PORT (empty if nothing answered), with bash's /dev/tcp and no
# subshell: no process is started, so it can be called in a tight loop.
http_status() {
	local line=
	STATUS=
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
	read -r line <&3 || true
	exec 3<&-
	line=${line#HTTP/1.? }
	STATUS=${line%% *}
}

# wait_healthy PORT PID: waits for GET /healthz 200 (10 s at most).
wait_healthy() {
	for _ in $(seq 1 1000); do
		http_status "$1" /healthz
		[ "$STATUS" = 200 ] && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.01
	done
	echo "bench: aftercall did not become healthy" >&2
	return 1
}

# kib PID FIELD: VmHWM or VmRSS of PID in KiB.
kib() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

mib() {
	awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

# median: of the numbers on stdin, one a line.
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# aftercall_config PORT DB SYNC LEVEL OUT: examples/aftercall.yaml pointed
# at this build's plugins and templates (as tools/run does), on PORT, with
# the store DB (a SQLite path or a postgres:// URL) at durability SYNC (full|normal) and the host's log level
# LEVEL. The `log` plugin keeps its stock config (it logs each event at
# info), so at LEVEL warn its lines are dropped, as in a quiet production
# setup.
aftercall_config() {
	local url=$2
	case $url in postgres://*) ;; *) url=sqlite:$url ;; esac
	sed -e "s#^listen: .*#listen: 127.0.0.1:$1#" \
		-e "s#^store: sqlite:aftercall.db#store:\n  url: $url\n  sync: $3#" \
		-e "s#^  level: info#  level: $4#" \
		-e "s#^plugins:#plugin_dir: $PLUGIN_DIR\ntemplates: $PWD/templates\ntemplate_engine: $MUSTACHE_SO\nplugins:#" \
		examples/aftercall.yaml >"$5"
}

machine() {
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
}
