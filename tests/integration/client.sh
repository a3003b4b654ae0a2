#!/usr/bin/env bash
# The MultiMail client's every call, made for real through prism, which
# checks each request and answer against MultiMail's openapi.json.
. "${TOP_SRCDIR:-.}/tests/lib.sh"

start_double || finish
KEY=mm_live_client_calls_key
MBX=$(curl -s -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	--data '{"address_local":"calls"}' "http://127.0.0.1:$PRISM/v1/mailboxes" |
	sed -n 's/.*"id":"\(mbx_[^"]*\)".*/\1/p')
"$TOP_BUILDDIR/tests/mm_calls" "http://127.0.0.1:$PRISM" "$KEY" "$MBX" >"$WORK/calls.out" 2>&1
rc=$?
grep -v " passed, " "$WORK/calls.out"
# Its own failures are counted below; any other exit (a sanitizer's report)
# is one more.
[ "$rc" -eq 0 ] || grep -q '^FAIL ' "$WORK/calls.out" || not_ok "mm_calls exited $rc"
PASSED=$((PASSED + $(grep -c '^ok ' "$WORK/calls.out")))
FAILED=$((FAILED + $(grep -c '^FAIL ' "$WORK/calls.out")))
grep -i 'violation\|✖' "$WORK/prism.log" | grep -v 'Unable to match the returned status code' >"$WORK/violations" || true
check "prism reports no violation" 0 "$(wc -l <"$WORK/violations")"
head -3 "$WORK/violations"
finish
