#!/usr/bin/env bash
# Templates as a user meets them: `aftercall render` of the stock templates,
# the engine named in the config, and SIGHUP reloads that keep the old set
# when the new one does not compile.
. "${TOP_SRCDIR:-.}/tests/lib.sh"

MUSTACHE="$PLUGIN_BUILDDIR/mustache/.libs/mustache.so"
CTX="$TEST_DATA/contexts"
render() { "$AFTERCALL" render --engine "$MUSTACHE" "$@"; }
sighup() { # sighup PATTERN: SIGHUP the host, wait for PATTERN in its log
	kill -HUP "$HOST_PID"
	for _ in $(seq 50); do grep -q "$1" "$WORK/host.log" && break; sleep 0.05; done
}

# Each stock template with a realistic context: a subject, then a body a
# person would send, with the caller's values escaped for Markdown.
declare -A SUBJECT=(
	[confirmation]="Subject: Confirmed: Tuesday 1 December, 10:00 with Acme Dental"
	[summary]="Subject: Summary of your call with Acme Dental on 26 November 2026"
	[sales_followup]="Subject: Following up on the Pro plan | Acme Dental"
)
for t in confirmation summary sales_followup; do
	render "$TEMPLATES/$t.md" "$CTX/full.json" >"$WORK/$t.out" 2>"$WORK/$t.err"
	check "render $t exits 0" 0 $?
	check "$t: subject line" "${SUBJECT[$t]}" "$(head -1 "$WORK/$t.out")"
	check "$t: blank line after the headers" "" "$(sed -n 2p "$WORK/$t.out")"
	check "$t: greets the caller" "Hi Ada Lovelace," "$(sed -n 3p "$WORK/$t.out")"
	check_grep "$t: carries the summary, escaped" 'You asked to move your cleaning to next week\\.' "$WORK/$t.out"
	check_grep "$t: signed" "^Grace, Acme Dental$" "$WORK/$t.out"
	if grep -q '{{\|}}' "$WORK/$t.out"; then not_ok "$t: no template syntax left"; else ok "$t: no template syntax left"; fi

	# With empty data it still reads well: a generic subject and greeting,
	# no dangling words, no empty list items, no doubled blank lines.
	render "$TEMPLATES/$t.md" "$CTX/empty.json" >"$WORK/$t.empty" 2>&1
	check "render $t with empty data exits 0" 0 $?
	check "$t (empty): greeting" "Hello," "$(sed -n 3p "$WORK/$t.empty")"
	check "$t (empty): signed by the team" "The team" "$(tail -1 "$WORK/$t.empty")"
	if grep -qE ' with$|with  | on$|^- *$|: *$|\*\*[^*]*\*\* *$' "$WORK/$t.empty"; then
		not_ok "$t (empty): no dangling words or empty items"; cat "$WORK/$t.empty"
	else ok "$t (empty): no dangling words or empty items"; fi
	if awk 'prev == "" && $0 == "" { bad = 1 } { prev = $0 } END { exit !bad }' "$WORK/$t.empty"; then
		not_ok "$t (empty): no doubled blank lines"
	else ok "$t (empty): no doubled blank lines"; fi
done
check_grep "summary without one says so" "We did not keep a written summary" "$WORK/summary.empty"
check "confirmation (empty): generic subject" "Subject: Confirming our call" "$(head -1 "$WORK/confirmation.empty")"

# A file without front matter prints the body alone, byte for byte.
printf 'Dear {{name}},\n\n{{&raw}}' >"$WORK/plain.md"
printf '{"name":"<Ada>","raw":"*x*"}' >"$WORK/plain.json"
printf '[1]' >"$WORK/array.json"
render "$TEMPLATES/summary.md" "$WORK/array.json" >/dev/null 2>"$WORK/array.err"
check "a context that is not an object is refused" 1 $?
check_grep "saying so" "array.json: expected a JSON object" "$WORK/array.err"
render --escape html "$WORK/plain.md" "$WORK/plain.json" >"$WORK/plain.out"
printf 'Dear &lt;Ada&gt;,\n\n*x*' >"$WORK/plain.want"
if cmp -s "$WORK/plain.out" "$WORK/plain.want"; then ok "no front matter: body byte for byte"; else not_ok "no front matter: body byte for byte"; fi
render --escape text "$WORK/plain.md" "$WORK/plain.json" >"$WORK/plain.text"
check "text mode leaves <> alone" "Dear <Ada>," "$(head -1 "$WORK/plain.text")"

# A compile error names file, line and column; exit 1.
printf -- '---\nsubject: x\n---\nok\n{{#open}}\n' >"$WORK/bad.md"
render "$WORK/bad.md" "$WORK/plain.json" 2>"$WORK/bad.err"
check "a broken template exits 1" 1 $?
check_grep "its error names file:line:col" "^$WORK/bad.md:5:[0-9]*: " "$WORK/bad.err"
render --escape bogus "$WORK/plain.md" "$WORK/plain.json" 2>/dev/null
check "an unknown escape mode exits 2" 2 $?
# A context that cannot be opened or read says which and why; exit 1.
check "a missing context names it and why" \
	"aftercall render: cannot open $WORK/none.json: No such file or directory" \
	"$(render "$WORK/plain.md" "$WORK/none.json" 2>&1)"
check "a context that is a folder names it and why" \
	"aftercall render: cannot read $WORK/subj0: Is a directory" \
	"$(mkdir -p "$WORK/subj0" && render "$WORK/plain.md" "$WORK/subj0" 2>&1)"
# In the subject, the column is the file's, quoted or not.
mkdir -p "$WORK/subj"
printf -- '---\nsubject: "hi {{#x}}"\n---\nbody\n' >"$WORK/subj/q.md"
check "an error in a quoted subject names the file's column" \
	"$WORK/subj/q.md:2:14: unclosed section 'x'" "$(render "$WORK/subj/q.md" "$WORK/plain.json" 2>&1)"
# A good template whose folder holds a broken one: the folder is its
# partials, loaded whole, and the message says so before the error.
printf -- '---\nsubject: fine\n---\nbody\n' >"$WORK/subj/good.md"
render "$WORK/subj/good.md" "$WORK/plain.json" >/dev/null 2>"$WORK/subj.err"
check "a template with a broken partials folder exits 1" 1 $?
check_grep "saying the template compiles and its folder does not" \
	"^aftercall render: $WORK/subj/good.md compiles, but its partials folder $WORK/subj does not" "$WORK/subj.err"

# The engine named in the config: a second engine, from tests/engines.
mkdir -p "$WORK/tpl"
printf -- '---\nsubject: "Order ${order}"\n---\nThanks, ${name}.\n' >"$WORK/tpl/order.md"
cat >"$WORK/subst.yaml" <<YAML
listen: 127.0.0.1:0
store: sqlite:$WORK/subst.db
template_engine: $TEST_ENGINES/subst.so
templates: $WORK/tpl
livekit:
  keys:
    APIt: test-secret-0123456789
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $WORK/subst.txt, render: order}
YAML
"$AFTERCALL" check -c "$WORK/subst.yaml" >"$WORK/subst.check" 2>&1
check "check accepts the subst engine" 0 $?
check_grep "check names the engine" "engine  subst 1.0.0" "$WORK/subst.check"
check_grep "check lists the template" "templates $WORK/tpl: order" "$WORK/subst.check"
start_host "$WORK/subst.yaml" || not_ok "host starts with the subst engine"
printf '{"event":"room_finished","id":"EV_s1","order":"A-17","name":"Ada"}' >"$WORK/ev1.json"
tok=$("$AFTERCALL" sign --key APIt --secret test-secret-0123456789 "$WORK/ev1.json")
check "an event is accepted" 200 "$(post /webhooks/livekit "$WORK/ev1.json" "$tok")"
check_grep "the plugin rendered through the subst engine" "^rendered Order A-17" "$WORK/subst.txt"

# An engine the config names is loaded even with no templates folder.
grep -v '^templates:' "$WORK/subst.yaml" | sed "s|^template_engine: .*|template_engine: $WORK/nope.so|" >"$WORK/nope.yaml"
"$AFTERCALL" check -c "$WORK/nope.yaml" >"$WORK/nope.check" 2>&1
check "check refuses an engine that is not there, with no templates folder" 1 $?
check_grep "naming the key" "^$WORK/nope.yaml: template_engine: .*nope.so" "$WORK/nope.check"

# SIGHUP: a good change is taken; a broken one is refused and the old set kept.
printf -- '---\nsubject: "Your order ${order}"\n---\nThanks.\n' >"$WORK/tpl/order.md"
sighup 'templates reloaded'
check_grep "SIGHUP reloads the templates" '"msg":"SIGHUP: templates reloaded"' "$WORK/host.log"
printf '{"event":"room_finished","id":"EV_s2","order":"B-2"}' >"$WORK/ev2.json"
tok=$("$AFTERCALL" sign --key APIt --secret test-secret-0123456789 "$WORK/ev2.json")
check "an event after the reload is accepted" 200 "$(post /webhooks/livekit "$WORK/ev2.json" "$tok")"
check_grep "it renders with the new template" "^rendered Your order B-2" "$WORK/subst.txt"
printf -- '---\nsubject: "Broken ${order"\n---\nThanks.\n' >"$WORK/tpl/order.md"
sighup 'templates not reloaded'
check_grep "a broken reload is refused" '"msg":"SIGHUP: templates not reloaded; keeping the old ones"' "$WORK/host.log"
printf '{"event":"room_finished","id":"EV_s3","order":"C-3"}' >"$WORK/ev3.json"
tok=$("$AFTERCALL" sign --key APIt --secret test-secret-0123456789 "$WORK/ev3.json")
check "an event after the refused reload is accepted" 200 "$(post /webhooks/livekit "$WORK/ev3.json" "$tok")"
check_grep "it still renders with the kept template" "^rendered Your order C-3" "$WORK/subst.txt"
stop_host


# check reports a broken template with file, line and column.
"$AFTERCALL" check -c "$WORK/subst.yaml" >"$WORK/broken.check" 2>&1
check "check fails on a broken template" 1 $?
check_grep "naming file:line:col" "$WORK/tpl/order.md:2:" "$WORK/broken.check"
# A template a plugin declared it renders (ABI 1.7 template_require) cannot
# be taken away by a reload; one it did not declare can.
printf -- '---\nsubject: "Your order ${order}"\n---\nThanks.\n' >"$WORK/tpl/order.md"
printf -- '---\nsubject: spare\n---\nspare\n' >"$WORK/tpl/spare.md"
sed 's#render: order}#render: order, require: 1, require_late: 1}#' "$WORK/subst.yaml" >"$WORK/require.yaml"
start_host "$WORK/require.yaml" || not_ok "host starts with a required template"
rm "$WORK/tpl/spare.md"
sighup 'templates reloaded'
check_grep "a reload without a template no plugin declared is taken" '"msg":"SIGHUP: templates reloaded","files":"1"' "$WORK/host.log"
mv "$WORK/tpl/order.md" "$WORK/tpl/renamed.md"
sighup 'templates not reloaded'
check_grep "a reload without the declared one is refused, naming it and the plugin" \
	'"msg":"SIGHUP: templates not reloaded; keeping the old ones","errors":"'"$WORK"'/tpl/order.md: missing or without front matter, and the counter plugin renders it"' "$WORK/host.log"
printf '{"event":"room_finished","id":"EV_s4","order":"D-4"}' >"$WORK/ev4.json"
tok=$("$AFTERCALL" sign --key APIt --secret test-secret-0123456789 "$WORK/ev4.json")
check "an event after it is accepted" 200 "$(post /webhooks/livekit "$WORK/ev4.json" "$tok")"
check_grep "and renders with the kept template" "^rendered Your order D-4" "$WORK/subst.txt"
check_grep "template_require outside init() is refused" "^late -1 template_require: only from init()$" "$WORK/subst.txt"
stop_host
"$AFTERCALL" check -c "$WORK/require.yaml" >"$WORK/require.check" 2>&1
check "check refuses a declared template that is not there" 1 $?
check_grep "with the host's words" "plugins\[0\]: plugin counter: init failed: no template named order in $WORK/tpl" "$WORK/require.check"
finish
