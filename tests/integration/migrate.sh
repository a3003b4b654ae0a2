#!/usr/bin/env bash
# Schema versions: `aftercall migrate` takes a store of an older schema to
# this binary's, serve refuses an older store until then and a newer one
# always; data written before a migration is there after it. Commands that
# only read a store refuse a SQLite file that is not there. Runs on the
# store tests/lib.sh gives (SQLite, or PostgreSQL in the second pass).
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url mig) || { not_ok "create the store"; finish; }
export S1='migrate-secret-0123456789abcdef'
cat >"$WORK/m.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APImigrate: \${S1}
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $WORK/seen.txt}
YAML

# The commands that read a store do not make one: a mistyped SQLite path
# is an error, not an empty store (or an audit chain of no records).
if ! on_postgres; then
	sed "s#^store: .*#store: sqlite:$WORK/typo.db#" "$WORK/m.yaml" >"$WORK/typo.yaml"
	for cmd in "outbox list" "audit --verify" "migrate --status"; do
		# shellcheck disable=SC2086 # the command's words
		out=$("$AFTERCALL" $cmd -c "$WORK/typo.yaml" 2>&1)
		check "$cmd refuses a SQLite store that is not there" 1 $?
		case "$out" in *"$WORK/typo.db: No such file or directory (serve creates the store at its first start)"*) ok "and says so";; *) not_ok "and says so: $out";; esac
	done
	check "and none of them made it" 0 "$(ls "$WORK" | grep -c '^typo\.db')"
	: >"$WORK/empty.db"
	sed "s#^store: .*#store: sqlite:$WORK/empty.db#" "$WORK/m.yaml" >"$WORK/empty.yaml"
	NOSTORE="$WORK/empty.db: no aftercall store in this file"
	NOSTORE_CFG=$WORK/empty.yaml
else
	NOSTORE="$STORE: no aftercall store in this database" # the test URL has no password
	NOSTORE_CFG=$WORK/m.yaml
fi
# Nor do they fill an empty file or database with one.
for cmd in "outbox list" "audit --verify" "replay EV_x"; do
	# shellcheck disable=SC2086 # the command's words
	out=$("$AFTERCALL" $cmd -c "$NOSTORE_CFG" 2>&1)
	check "$cmd refuses a store with no schema" 1 $?
	case "$out" in *"$NOSTORE (serve creates the store at its first start)"*) ok "and says so";; *) not_ok "and says so: $out";; esac
done
if on_postgres; then
	check "and the database is still empty" 0 "$(store_sql "$STORE" "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
else
	check "and the file is still empty" 0 "$(stat -c %s "$WORK/empty.db")"
fi
"$AFTERCALL" migrate --status -c "$NOSTORE_CFG" >"$WORK/status0" 2>&1
check "migrate --status says schema 0 of one" 1 $?
check_grep "naming both" "store schema 0; this aftercall needs 3" "$WORK/status0"

out=$("$AFTERCALL" migrate -c "$WORK/m.yaml" --to 1 2>&1)
check "migrate --to 1 makes an empty store schema 1" 0 $?
case "$out" in *"schema 1: journal, key-value pairs and timers, audit chain, outbox"*) ok "and prints the step";; *) not_ok "and prints the step: $out";; esac

out=$("$AFTERCALL" check -c "$WORK/m.yaml" 2>&1)
check "check refuses a store of an older schema, as serve does" 1 $?
case "$out" in *"store: "*"has schema version 1; this aftercall needs 3: back it up, then run 'aftercall migrate'"*) ok "check says what to run";; *) not_ok "check says what to run: $out";; esac

"$AFTERCALL" serve -c "$WORK/m.yaml" 2>"$WORK/refused.log"
check "serve refuses a store of an older schema" 1 $?
check_grep "saying what to run" "has schema version 1; this aftercall needs 3: back it up, then run 'aftercall migrate'" "$WORK/refused.log"

"$AFTERCALL" migrate -c "$WORK/m.yaml" --status >"$WORK/status" 2>&1
check "migrate --status exits 1 while the store is behind" 1 $?
check_grep "and says both versions" "store schema 1; this aftercall needs 3" "$WORK/status"

# A journaled event from before the migration.
body=$(sed 's/EV_[A-Za-z0-9]*/EV_before_migrate/' "$TEST_DATA/livekit/room_finished.json")
store_sql "$STORE" "INSERT INTO journal(route, dedupe, type, body, received_ms) VALUES('/webhooks/livekit', 'EV_before_migrate', 'room_finished', '{}', 1)" >/dev/null
check "a row written at schema 1" 1 "$(store_sql "$STORE" "select count(*) from journal")"

out=$("$AFTERCALL" migrate -c "$WORK/m.yaml" 2>&1)
check "migrate exits 0" 0 $?
case "$out" in *"schema 2: request ids on outbox rows and timers"*"store schema 1 → 3"*) ok "migrate prints each step and the span";; *) not_ok "migrate prints each step and the span: $out";; esac
out=$("$AFTERCALL" migrate -c "$WORK/m.yaml" 2>&1)
case "$out" in *"store schema 3: nothing to do"*) ok "a second migrate has nothing to do";; *) not_ok "a second migrate has nothing to do: $out";; esac
"$AFTERCALL" migrate -c "$WORK/m.yaml" --status >/dev/null 2>&1
check "migrate --status exits 0 once current" 0 $?
"$AFTERCALL" migrate -c "$WORK/m.yaml" --to 1 >"$WORK/down.log" 2>&1
check "migrate never goes down" 1 $?
check_grep "and says so" "steps are never undone" "$WORK/down.log"

start_host "$WORK/m.yaml" || { not_ok "serve starts on the migrated store"; finish; }
ok "serve starts on the migrated store"
printf '%s' "$body" >"$WORK/ev.json"
tok=$("$AFTERCALL" sign --key APImigrate --secret "$S1" "$WORK/ev.json")
resp=$(curl -s -H "Authorization: $tok" -H 'Content-Type: application/webhook+json' \
	--data-binary @"$WORK/ev.json" "http://127.0.0.1:$PORT/webhooks/livekit")
case "$resp" in *'"status":"duplicate"'*) ok "the event journaled before the migration is a duplicate after it";; *) not_ok "the event journaled before the migration is a duplicate after it: $resp";; esac
if ! on_postgres; then
	"$AFTERCALL" migrate -c "$WORK/m.yaml" >"$WORK/busy.log" 2>&1
	check "migrate refuses a SQLite store serve is using" 1 $?
	check_grep "naming why" "in use by another aftercall serve process" "$WORK/busy.log"
fi
stop_host

store_sql "$STORE" "UPDATE meta SET v = '7' WHERE k = 'schema'" >/dev/null
"$AFTERCALL" serve -c "$WORK/m.yaml" 2>"$WORK/newer.log"
check "serve refuses a store of a newer schema" 1 $?
check_grep "saying to run a newer aftercall" "has schema version 7, newer than this aftercall's 3: run a newer aftercall" "$WORK/newer.log"
"$AFTERCALL" migrate -c "$WORK/m.yaml" >"$WORK/newer2.log" 2>&1
check "and so does migrate" 1 $?
"$AFTERCALL" check -c "$WORK/m.yaml" >"$WORK/newer3.log" 2>&1
check "and so does check" 1 $?
check_grep "in the same words" "store: .*has schema version 7, newer than this aftercall's 3: run a newer aftercall" "$WORK/newer3.log"
if ! on_postgres; then
	printf 'garbage, not a database\n' >"${STORE#sqlite:}"
	"$AFTERCALL" check -c "$WORK/m.yaml" >"$WORK/garbage.log" 2>&1
	check "check refuses a file that is no database" 1 $?
	check_grep "saying so" "store: .*not a database" "$WORK/garbage.log"
fi
finish
