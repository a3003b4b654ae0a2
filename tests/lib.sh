# Shared helpers of the integration tests (sourced, not run).
# Each test counts its checks and ends with "N passed, N failed".

set -u
: "${AFTERCALL:?run through make check}"
PASSED=0
FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aftercall-test.XXXXXX")
HOST_PID=

ok() {
	PASSED=$((PASSED + 1))
	printf 'ok   %s\n' "$1"
}

not_ok() {
	FAILED=$((FAILED + 1))
	printf 'FAIL %s\n' "$1"
}

# check NAME EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}

# check_grep NAME PATTERN FILE
check_grep() {
	if grep -q -- "$2" "$3"; then ok "$1"; else not_ok "$1 ('$2' not in $3)"; sed 's/^/    /' "$3" | tail -5; fi
}

finish() {
	stop_host
	printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	rm -rf "$WORK"
	[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
	exit $?
}

# start_host CONFIG [BINARY]: starts serve, waits for "listening", sets PORT.
start_host() {
	local cfg=$1 bin=${2:-$AFTERCALL}
	: >"$WORK/host.log"
	"$bin" serve -c "$cfg" 2>>"$WORK/host.log" &
	HOST_PID=$!
	PORT=
	for _ in $(seq 1 100); do
		PORT=$(sed -n 's/.*"msg":"listening".*"port":"\([0-9]*\)".*/\1/p' "$WORK/host.log" | tail -1)
		[ -n "$PORT" ] && return 0
		kill -0 "$HOST_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "host did not start:"; cat "$WORK/host.log"
	HOST_PID=
	return 1
}

# stop_host: SIGTERM, and the host must exit 0 (under the sanitizers a leak
# or an error report makes it exit otherwise).
stop_host() {
	if [ -n "${HOST_PID:-}" ]; then
		kill -TERM "$HOST_PID" 2>/dev/null
		wait "$HOST_PID" 2>/dev/null
		local rc=$?
		HOST_PID=
		if [ "$rc" -ne 0 ]; then
			not_ok "host exited $rc after SIGTERM"
			grep -v '^{' "$WORK/host.log" | head -40
		fi
	fi
}

kill_host() {
	if [ -n "${HOST_PID:-}" ]; then
		kill -KILL "$HOST_PID" 2>/dev/null
		wait "$HOST_PID" 2>/dev/null
		HOST_PID=
	fi
}

# post PATH FILE [TOKEN]: prints the HTTP status; the body goes to $WORK/resp.
post() {
	local path=$1 file=$2 tok=${3:-}
	curl -s -o "$WORK/resp" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/webhook+json' \
		${tok:+-H "Authorization: $tok"} \
		--data-binary "@$file" "http://127.0.0.1:$PORT$path"
}
