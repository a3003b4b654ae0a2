# Shared helpers of the integration tests (sourced, not run).
# Each test counts its checks and ends with "N passed, N failed".

set -u
: "${AFTERCALL:?run through make check}"
PASSED=0
FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aftercall-test.XXXXXX")
HOST_PID=

# store_url NAME: this test's store. A SQLite file in WORK; with
# AFTERCALL_TEST_STORE=postgres, a new database on the server whose base URL
# is AFTERCALL_TEST_PG (tools/pg start prints one), dropped by finish.
store_url() {
	if on_postgres; then
		: "${AFTERCALL_TEST_PG:?AFTERCALL_TEST_STORE=postgres needs AFTERCALL_TEST_PG}"
		local db
		db=$(printf 't_%s_%s_%s' "$(basename "$0" .sh)" "$1" "$$" | tr -c 'a-zA-Z0-9_\n' _)
		psql "$AFTERCALL_TEST_PG/postgres" -qAtX -c "CREATE DATABASE $db" >/dev/null || return 1
		echo "$db" >>"$WORK/pg_dbs"
		echo "$AFTERCALL_TEST_PG/$db"
	else
		echo "sqlite:$WORK/$1.db"
	fi
}

# store_sql URL SQL: runs SQL on the store, rows printed as a|b.
store_sql() {
	case $1 in
	sqlite:*) sqlite3 -cmd '.timeout 5000' "${1#sqlite:}" "$2";;
	*) psql "$1" -qAtX -F'|' -c "$2";;
	esac
}

on_postgres() { [ "${AFTERCALL_TEST_STORE:-sqlite}" = postgres ]; }

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
	type stop_double >/dev/null 2>&1 && stop_double
	type before_finish >/dev/null 2>&1 && before_finish
	printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	local db
	for db in $(cat "$WORK/pg_dbs" 2>/dev/null); do
		psql "$AFTERCALL_TEST_PG/postgres" -qAtX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
			>/dev/null 2>&1
	done
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

# ---- the MultiMail double, behind the validating proxy -------------------
MM_DIR=${AFTERCALL_MULTIMAIL_DIR:-$TOP_SRCDIR/tests/multimail}
export MULTIMAIL_OPENAPI=${MULTIMAIL_OPENAPI:-$TOP_SRCDIR/../shared/multimail/openapi.json}
DOUBLE_PID= PRISM_PID=

# wait_listening LOGFILE PID: prints the port of a "listening PORT" line.
wait_listening() {
	for _ in $(seq 1 300); do
		local p
		p=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$1" | head -1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}

# start_double: the double (DOUBLE) and prism in front of it (PRISM), both on
# loopback. Prism's log goes to $WORK/prism.log.
start_double() {
	if [ ! -d "$MM_DIR/node_modules/@stoplight/prism-cli" ] || [ ! -f "$MULTIMAIL_OPENAPI" ]; then
		not_ok "the MultiMail double needs npm ci in $MM_DIR and $MULTIMAIL_OPENAPI"
		return 1
	fi
	node "$MM_DIR/double.cjs" --port 0 >"$WORK/double.out" 2>"$WORK/double.log" &
	DOUBLE_PID=$!
	DOUBLE=$(wait_listening "$WORK/double.out" "$DOUBLE_PID") || { not_ok "double starts"; return 1; }
	node "$MM_DIR/prism.cjs" --upstream-port "$DOUBLE" --port 0 >"$WORK/prism.out" 2>"$WORK/prism.log" &
	PRISM_PID=$!
	PRISM=$(wait_listening "$WORK/prism.out" "$PRISM_PID") || { not_ok "prism starts"; cat "$WORK/prism.log"; return 1; }
}

stop_double() {
	[ -n "${PRISM_PID:-}" ] && kill "$PRISM_PID" 2>/dev/null && wait "$PRISM_PID" 2>/dev/null
	[ -n "${DOUBLE_PID:-}" ] && kill "$DOUBLE_PID" 2>/dev/null && wait "$DOUBLE_PID" 2>/dev/null
	PRISM_PID= DOUBLE_PID=
}

# control PATH [JSON]: the double's control API (never through prism).
control() {
	if [ $# -gt 1 ]; then
		curl -s -X POST -H 'Content-Type: application/json' --data "$2" "http://127.0.0.1:$DOUBLE/__control/$1"
	else
		curl -s "http://127.0.0.1:$DOUBLE/__control/$1"
	fi
}
