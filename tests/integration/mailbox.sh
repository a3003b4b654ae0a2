#!/usr/bin/env bash
# aftercall mailbox create against the MultiMail double: 201 and 409 through
# prism (validated against openapi.json), and the 202 "operator approval
# code needed" answer, which openapi.json does not list for this call (prism
# would turn it into a violation), straight from the double.
. "${TOP_SRCDIR:-.}/tests/lib.sh"

start_double || finish
export MULTIMAIL_API_KEY=mm_live_admin_key_for_tests
via_prism="--api-url http://127.0.0.1:$PRISM"
direct="--api-url http://127.0.0.1:$DOUBLE"

"$AFTERCALL" mailbox create agent --display-name "Acme Follow-ups" \
	--webhook-url https://aftercall.example.com/webhooks/multimail $via_prism >"$WORK/c.out" 2>"$WORK/c.err"
check "201: exit 0" 0 $?
check_grep "201: prints the id" '^created mailbox mbx_' "$WORK/c.out"
check_grep "201: prints the address" '^address agent@' "$WORK/c.out"
check_grep "201: says it is gated" '^oversight gated_send$' "$WORK/c.out"
control state >"$WORK/state.json"
check_grep "the double holds it with its display name" '"display_name":"Acme Follow-ups"' "$WORK/state.json"

"$AFTERCALL" mailbox create inbox@custom.example $via_prism >"$WORK/d.out" 2>"$WORK/d.err"
check "a whole address on a custom domain: exit 0" 0 $?
check_grep "and that is the address" '^address inbox@custom.example$' "$WORK/d.out"

"$AFTERCALL" mailbox create agent $via_prism >"$WORK/t.out" 2>"$WORK/t.err"
check "409: exit 4" 4 $?
check_grep "409: says the address is taken" "the address agent is taken" "$WORK/t.err"

control config '{"mailbox_approval":true}' >/dev/null
"$AFTERCALL" mailbox create second $direct >"$WORK/a.out" 2>"$WORK/a.err"
check "202: exit 3" 3 $?
check_grep "202: says an approval code is needed" "wants an operator's approval" "$WORK/a.err"
check_grep "202: and how to pass it" "again with --approval-code CODE" "$WORK/a.err"
code=$(control state | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).pending_approvals;console.log(Object.values(p)[0]||"")})')
"$AFTERCALL" mailbox create second --approval-code WRONG $direct >"$WORK/w.out" 2>"$WORK/w.err"
check "a wrong approval code: exit 1" 1 $?
check "and MultiMail's words come first" "aftercall mailbox: MultiMail refused (403): Invalid approval code" "$(cat "$WORK/w.err")"
"$AFTERCALL" mailbox create second --approval-code "$code" $via_prism >"$WORK/b.out" 2>"$WORK/b.err"
check "with the code: created" 0 $?
check_grep "with the code: prints the address" '^address second@' "$WORK/b.out"

MULTIMAIL_API_KEY=bad "$AFTERCALL" mailbox create third $via_prism 2>"$WORK/k.err"
check "a bad key: exit 1" 1 $?
check_grep "a bad key: says so" "refused the API key (401)" "$WORK/k.err"
"$AFTERCALL" mailbox create 'bad local!' $via_prism 2>"$WORK/l.err"
check "a bad LOCAL is refused before any call" 2 $?
"$AFTERCALL" mailbox create "$(printf 'a%.0s' $(seq 70))" $via_prism 2>"$WORK/l2.err"
check "so is one too long" 2 $?
check "saying how long it is" "aftercall mailbox: address_local: at most 64 characters, not 70" "$(cat "$WORK/l2.err")"
"$AFTERCALL" mailbox create third --api-url ftp://127.0.0.1/x 2>"$WORK/u.err"
check "an API URL that is not http(s) is a usage error" 2 $?
check_grep "naming it" "the API URL must be http:// or https://, not 'ftp://127.0.0.1/x'" "$WORK/u.err"
"$AFTERCALL" mailbox create third --api-url "http://127.0.0.1:$DOUBLE/v1/" 2>"$WORK/v.err"
check "an API URL with /v1 in it: exit 1" 1 $?
check_grep "asking whether it is MultiMail's" "answered 404: is http://127.0.0.1:$DOUBLE/v1 MultiMail's API URL?" "$WORK/v.err"
"$AFTERCALL" mailbox create third --api-url "http://admin:mm-pass-0123@127.0.0.1:9/" 2>"$WORK/p.err"
check "a MultiMail that cannot be reached: exit 1" 1 $?
check_grep "saying so, without the URL's password" "cannot reach MultiMail at http://(hidden)@127.0.0.1:9: " "$WORK/p.err"
if grep -q "mm-pass-0123" "$WORK/p.err"; then not_ok "the URL's password is not printed"; else ok "the URL's password is not printed"; fi
env -u MULTIMAIL_API_KEY "$AFTERCALL" mailbox create x 2>/dev/null
check "no key: exit 2" 2 $?
if grep -q "$MULTIMAIL_API_KEY" "$WORK"/*.out "$WORK"/*.err; then not_ok "the key is never printed"; else ok "the key is never printed"; fi

grep -i 'violation\|✖' "$WORK/prism.log" | grep -v 'Unable to match the returned status code' >"$WORK/violations" || true
check "prism reports no violation" 0 "$(wc -l <"$WORK/violations")"
finish
