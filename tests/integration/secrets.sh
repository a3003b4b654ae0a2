#!/usr/bin/env bash
# Secrets: the host runs with known secrets, every path is exercised, errors
# included, and none of them shows in the log, the audit trail, the outbox
# as `aftercall outbox show` prints it, or the command line's output.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=$(store_url s) || { not_ok "create the store"; finish; }

start_double || finish
LK_SECRET=lk-Secret-7f3a9c0e5b21d84
BEARER=bearer-Secret-4e8d2a6c1f07b93
HOOK=whsec_hook-Secret-9b5e1d7a3c8f20
MMKEY=mm_live_key-Secret-2c6f8a0d4e1b57
SECRETS=("$LK_SECRET" "$BEARER" "$HOOK" "$MMKEY")
export LK_SECRET BEARER HOOK MMKEY
if on_postgres; then
	# A password in the store's URL (the test server trusts loopback, so
	# any password connects): it must not show anywhere either.
	PG_PASSWORD=pg-Secret-5d1b9e3f7a2c08
	SECRETS+=("$PG_PASSWORD")
	export PG_PASSWORD
	STORE_IN_FILE="postgres://postgres:\${PG_PASSWORD}@${STORE#postgres://postgres@}"
	[ "$STORE_IN_FILE" != "$STORE" ] || not_ok "put a password into the store URL"
else
	STORE_IN_FILE=$STORE
fi
MBX=$(curl -s -X POST -H "Authorization: Bearer $MMKEY" -H 'Content-Type: application/json' \
	--data '{"address_local":"secrets"}' "http://127.0.0.1:$PRISM/v1/mailboxes" |
	sed -n 's/.*"id":"\(mbx_[^"]*\)".*/\1/p')
cat >"$WORK/s.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE_IN_FILE
template_engine: $PLUGIN_BUILDDIR/mustache/.libs/mustache.so
templates: $TEMPLATES
log: {level: debug}
livekit:
  keys:
    APIsecrets: \${LK_SECRET}
routes:
  - path: /webhooks/livekit
    verify: livekit
    plugins: [multimail]
  - path: /v1/transcripts
    verify: [livekit, {bearer: "\${BEARER}"}]
    event_type: transcript
    plugins: [multimail]
  - path: /webhooks/multimail
    verify:
      hmac: {header: X-MultiMail-Signature, prefix: "sha256=", encoding: hex, secret: "\${HOOK}"}
    plugins: [multimail]
plugins:
  - name: multimail
    path: $PLUGIN_BUILDDIR/multimail/.libs/multimail.so
    config: {api_url: "http://127.0.0.1:$PRISM", api_key: "\${MMKEY}", mailbox_id: $MBX}
YAML
chmod 600 "$WORK/s.yaml"
"$AFTERCALL" check -c "$WORK/s.yaml" >"$WORK/out.check" 2>&1
check "check passes" 0 $?
start_host "$WORK/s.yaml" || finish
U="http://127.0.0.1:$PORT"

# Good and bad requests on every route.
printf '{"room":"sec","room_sid":"RM_sec","participant":"p","to":["p@example.com"],"summary":"s"}' >"$WORK/t.json"
printf '{"event":"room_finished","room":{"sid":"RM_sec","name":"sec"},"id":"EV_sec"}' >"$WORK/e.json"
curl -s -o /dev/null -H "Authorization: Bearer $BEARER" --data-binary @"$WORK/t.json" "$U/v1/transcripts"
curl -s -o /dev/null -H "Authorization: Bearer ${BEARER}x" --data-binary @"$WORK/t.json" "$U/v1/transcripts"
curl -s -o /dev/null -H "Authorization: $("$AFTERCALL" sign --key APIsecrets --secret "$LK_SECRET" "$WORK/e.json")" \
	--data-binary @"$WORK/e.json" "$U/webhooks/livekit"
curl -s -o /dev/null -H "Authorization: $("$AFTERCALL" sign --key APIsecrets --secret wrong "$WORK/e.json")" \
	--data-binary @"$WORK/e.json" "$U/webhooks/livekit"
curl -s -o /dev/null -H "Authorization: $LK_SECRET" --data-binary @"$WORK/e.json" "$U/webhooks/livekit"
printf '{"event":"oversight.approved","data":{"email_id":"em_x"}}' >"$WORK/m.json"
curl -s -o /dev/null -H "X-MultiMail-Signature: sha256=$HOOK" --data-binary @"$WORK/m.json" "$U/webhooks/multimail"
curl -s -o /dev/null -H "X-MultiMail-Signature: $(openssl dgst -sha256 -hmac "$HOOK" -hex <"$WORK/m.json" | sed 's/.*= //')" \
	--data-binary @"$WORK/m.json" "$U/webhooks/multimail"
# A send MultiMail refuses, so an error path of the outbox runs too.
control faults '{"status_for_send":401}' >/dev/null
for _ in $(seq 1 50); do
	[ "$(store_sql "$STORE" "select count(*) from outbox where state in ('done','dead')")" -ge 1 ] && break
	sleep 0.1
done
stop_host

"$AFTERCALL" outbox list -c "$WORK/s.yaml" >"$WORK/out.list"
rows=$(awk 'NR > 1 { print $1 }' "$WORK/out.list")
[ -n "$rows" ] && ok "the outbox holds the send" || not_ok "the outbox holds the send"
for id in $rows; do "$AFTERCALL" outbox show -c "$WORK/s.yaml" "$id" >>"$WORK/out.show"; done
check_grep "outbox show names the header it hides" 'Authorization: (hidden)' "$WORK/out.show"
# A plugin's own credentials in a row: in the URL's user information and
# query, and in headers named like a password or an auth scheme.
now=$(($(date +%s) * 1000))
store_sql "$STORE" "INSERT INTO outbox(plugin, tag, method, url, headers, body, idem_key, state,
  max_attempts, max_age_ms, created_ms, next_ms)
  VALUES ('forward', 'crm', 'POST', 'http://crmuser:crm-pass-0123@127.0.0.1:1/hook?access_token=tok-0123&v=2#frag',
  '[\"X-Password: hunter2-0123\", \"X-Auth: Basic dXNlcjpwYXNz\", \"X-Api-Pass: p4ss-0123\", \"X-Session-Id: sess-0123\", \"Accept: application/json\"]',
  '{}', 'creds', 'dead', 1, 1000, $now, $now)" >/dev/null
id=$(store_sql "$STORE" "SELECT id FROM outbox WHERE idem_key = 'creds'")
"$AFTERCALL" outbox show -c "$WORK/s.yaml" "$id" >"$WORK/creds.show"
check_grep "outbox show hides the URL's user information and query values" \
	'^request:      POST http://(hidden)@127.0.0.1:1/hook?access_token=(hidden)&v=(hidden)#frag$' "$WORK/creds.show"
check "and every header named like a credential" 4 "$(grep -c '^  X-[A-Za-z-]*: (hidden)$' "$WORK/creds.show")"
check_grep "but not the others" '^  Accept: application/json$' "$WORK/creds.show"
leaked=0
for s in crm-pass-0123 tok-0123 hunter2-0123 dXNlcjpwYXNz p4ss-0123 sess-0123; do grep -qF "$s" "$WORK/creds.show" && leaked=1; done
check "none of them is printed" 0 "$leaked"
"$AFTERCALL" audit -c "$WORK/s.yaml" --room sec >"$WORK/out.audit" 2>&1
store_sql "$STORE" 'select * from audit' >"$WORK/audit.dump"
[ -s "$WORK/audit.dump" ] && ok "the audit trail has records" || not_ok "the audit trail has records"
for f in host.log out.check out.list out.show out.audit audit.dump; do
	leaked=0
	for s in "${SECRETS[@]}"; do grep -qF "$s" "$WORK/$f" && leaked=1; done
	if [ "$leaked" = 0 ]; then ok "no secret in $f"; else not_ok "a secret leaked into $f"; fi
done

# check warns about a config holding secrets in clear that others can read.
sed "s/\${LK_SECRET}/$LK_SECRET/" "$WORK/s.yaml" >"$WORK/clear.yaml"
chmod 644 "$WORK/clear.yaml"
"$AFTERCALL" check -c "$WORK/clear.yaml" >"$WORK/clear.out" 2>&1
check_grep "check warns about a readable file with secrets in clear" 'warning: the file holds secrets in clear and other users can read it (mode 0644)' "$WORK/clear.out"
chmod 600 "$WORK/clear.yaml"
"$AFTERCALL" check -c "$WORK/clear.yaml" >"$WORK/clear.out" 2>&1
if grep -q 'warning' "$WORK/clear.out"; then not_ok "no warning once the file is private"; else ok "no warning once the file is private"; fi
if grep -qF "$LK_SECRET" "$WORK/clear.out"; then not_ok "the warning does not print the secret"; else ok "the warning does not print the secret"; fi
if on_postgres; then
	# A password written into the store URL counts as a secret in clear.
	sed "s/\${PG_PASSWORD}/$PG_PASSWORD/" "$WORK/s.yaml" >"$WORK/pgclear.yaml"
	chmod 644 "$WORK/pgclear.yaml"
	"$AFTERCALL" check -c "$WORK/pgclear.yaml" >"$WORK/pgclear.out" 2>&1
	check_grep "check warns about a readable file with the store's password in clear" 'warning: the file holds secrets in clear' "$WORK/pgclear.out"
	check_grep "and shows the store with the password hidden" 'store   postgres://postgres:(hidden)@' "$WORK/pgclear.out"
	if grep -qF "$PG_PASSWORD" "$WORK/pgclear.out"; then not_ok "check does not print the password"; else ok "check does not print the password"; fi
fi
finish
