#!/usr/bin/env bash
# The manual pages against the code:
#  - for every command, the long options its --help prints and the ones
#    aftercall(1) documents, compared as sets (and each short option's pair);
#  - the commands `aftercall --help` lists and the ones aftercall(1) has;
#  - every key of src/config.c's keys[] arrays, and every config key of the
#    multimail and forward plugins, has an entry in aftercall.yaml(5), and
#    the former are all in examples/aftercall.yaml;
#  - the example plugin of aftercall-plugin(3) builds and loads;
#  - every page renders with man -l, and groff -ww finds nothing to warn about.
# Ends with "N passed, N failed".
set -u
: "${AFTERCALL:?run through make check}" "${TOP_SRCDIR:?run through make check}"
MAN_DIR="$TOP_SRCDIR/man"
PAGE1="$MAN_DIR/aftercall.1" PAGE5="$MAN_DIR/aftercall.yaml.5" PAGE3="$MAN_DIR/aftercall-plugin.3"
PASSED=0
FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aftercall-man.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

ok() {
	PASSED=$((PASSED + 1))
	printf 'ok   %s\n' "$1"
}

not_ok() {
	FAILED=$((FAILED + 1))
	printf 'FAIL %s\n' "$1"
}

# same NAME FILE_A LABEL_A FILE_B LABEL_B: compares two sorted sets.
same() {
	local only_a only_b
	if [ ! -f "$2" ] || [ ! -f "$4" ]; then
		not_ok "$1 (nothing to compare)"
		return
	fi
	only_a=$(comm -23 "$2" "$4" | tr '\n' ' ')
	only_b=$(comm -13 "$2" "$4" | tr '\n' ' ')
	if [ -z "$only_a$only_b" ] && { [ -s "$2" ] || [ "${6:-}" = "empty ok" ]; }; then
		ok "$1"
	else
		not_ok "$1${only_a:+ (only in $3: $only_a)}${only_b:+ (only in $5: $only_b)}"
	fi
}

# roff_text: roff source on stdin to plain words: \- as -, no font escapes.
roff_text() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(dq/"/g' -e 's/\\&//g' -e 's/\\c$//'
}

# section PAGE HEADING_PREFIX: the lines of the .SS whose heading starts with
# the prefix, up to the next .SS or .SH.
section() {
	awk -v want="$2" '
		/^\.S[SH] / { h = $0; sub(/^\.S[SH] +"?/, "", h); sub(/"$/, "", h)
			on = (substr($0, 1, 3) == ".SS" && index(h, want) == 1); next }
		on' "$1"
}

# tags: the tag lines (the line after each .TP) of roff on stdin.
tags() {
	awk 'tp { print; tp = 0; next } /^\.TP/ { tp = 1 }'
}

# ---- command-line options: --help against aftercall(1) --------------------

"$AFTERCALL" --help >"$WORK/help.main" 2>&1
check_rc=$?
if [ "$check_rc" -eq 0 ]; then ok "aftercall --help exits 0"; else not_ok "aftercall --help exits 0 (got $check_rc)"; fi
sed -n '/^Commands:/,/^$/p' "$WORK/help.main" | sed -n 's/^  \([a-z][a-z]*\).*/\1/p' | sort -u >"$WORK/cmds.help"
grep '^\.SS "aftercall ' "$PAGE1" | sed 's/^\.SS "aftercall \([a-z]*\).*/\1/' | sort -u >"$WORK/cmds.man"
same "the commands of aftercall --help are the subsections of aftercall.1" \
	"$WORK/cmds.help" "--help" "$WORK/cmds.man" "aftercall.1"

while read -r cmd; do
	"$AFTERCALL" "$cmd" --help >"$WORK/help.$cmd" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ]; then
		not_ok "aftercall $cmd --help exits 0 (got $rc)"
		continue
	fi
	# Option lines: indented, starting with -x, --long or --long alone.
	sed -nE 's/^[[:space:]]+(-[[:alnum:]], )?(--[[:alnum:]][[:alnum:]-]*).*/\2/p' "$WORK/help.$cmd" |
		sort -u >"$WORK/long.help"
	sed -nE 's/^[[:space:]]+-([[:alnum:]]), (--[[:alnum:]][[:alnum:]-]*).*/-\1 \2/p' "$WORK/help.$cmd" |
		sort -u >"$WORK/pair.help"
	section "$PAGE1" "aftercall $cmd" | tags | roff_text >"$WORK/tags.$cmd"
	grep -oE -- '--[[:alnum:]][[:alnum:]-]*' "$WORK/tags.$cmd" | sort -u >"$WORK/long.man"
	sed -nE 's/^\.[BIR]+ +-([[:alnum:]]) *"?, *"? *(--[[:alnum:]][[:alnum:]-]*).*/-\1 \2/p' \
		"$WORK/tags.$cmd" | sort -u >"$WORK/pair.man"
	empty=
	[ "$cmd" = version ] && empty="empty ok"
	same "aftercall $cmd: the long options of --help and of aftercall.1" \
		"$WORK/long.help" "--help" "$WORK/long.man" "aftercall.1" "$empty"
	same "aftercall $cmd: each short option pairs with the same long one" \
		"$WORK/pair.help" "--help" "$WORK/pair.man" "aftercall.1" "$empty"
done <"$WORK/cmds.help"

# Every option of the synopsis is one the command has.
roff_text <"$PAGE1" | sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' | grep -oE -- '--[[:alnum:]][[:alnum:]-]*' |
	sort -u >"$WORK/long.synopsis"
cat "$WORK"/help.* | sed -nE 's/^[[:space:]]+(-[[:alnum:]], )?(--[[:alnum:]][[:alnum:]-]*).*/\2/p' |
	sort -u >"$WORK/long.all"
extra=$(comm -23 "$WORK/long.synopsis" "$WORK/long.all" | tr '\n' ' ')
if [ -z "$extra" ]; then ok "every option of the synopsis exists"; else not_ok "options in the synopsis that no command has: $extra"; fi

# ---- config keys: src/config.c against aftercall.yaml(5) -------------------

tags <"$PAGE5" | roff_text | sed -E 's/^\.[A-Z]+ +//; s/^"//; s/[" ].*//' | sort -u >"$WORK/keys.man"
# FUNCTION ARRAY KEY for every string of every keys[] = {...} array.
awk '
	/^static [^(]*parse_[a-z_]+\(/ { match($0, /parse_[a-z_]+/); fn = substr($0, RSTART, RLENGTH) }
	/keys\[\] = \{/ { on = 1; match($0, /[a-z_]*keys\[\]/); arr = substr($0, RSTART, RLENGTH - 2) }
	on { s = $0
		if (index(s, "{")) s = substr(s, index(s, "{"))
		while (match(s, /"[^"]*"/)) { print fn, arr, substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH) }
		if ($0 ~ /NULL/) on = 0 }
' "$TOP_SRCDIR/src/config.c" >"$WORK/keys.src"
if [ "$(grep -c '^parse_root keys ' "$WORK/keys.src")" -ge 5 ]; then
	ok "the top-level keys are found in src/config.c ($(grep -c '^parse_root keys ' "$WORK/keys.src"))"
else
	not_ok "the top-level keys are found in src/config.c"
fi
while read -r fn arr key; do
	case "$fn $arr" in
	"parse_root keys") prefix= ;;
	"parse_root mkeys") prefix=metrics. ;;
	"parse_store keys") prefix=store. ;;
	"parse_livekit keys") prefix=livekit. ;;
	"parse_limits keys") prefix=limits. ;;
	"parse_log keys") prefix=log. ;;
	"parse_outbox keys") prefix=outbox. ;;
	"parse_plugins keys") prefix='plugins[].' ;;
	"parse_route keys" | "parse_route plugin_keys") prefix='routes[].' ;;
	"parse_verifier keys") prefix= ;;
	"parse_verifier hkeys") prefix=hmac. ;;
	*)
		not_ok "config key $key ($fn $arr): no section known to this test; add one"
		continue
		;;
	esac
	if grep -qxF -- "$prefix$key" "$WORK/keys.man"; then
		ok "config key $prefix$key is in aftercall.yaml.5"
	else
		not_ok "config key $prefix$key is in aftercall.yaml.5"
	fi
done <"$WORK/keys.src"

# The example config says it shows every key: each key of those arrays is
# there, set or in a comment.
EXAMPLE="$TOP_SRCDIR/examples/aftercall.yaml"
missing=$(awk '{ print $3 }' "$WORK/keys.src" | sort -u | while read -r key; do
	grep -Eq "(^|[#{ ,-])$key:" "$EXAMPLE" || printf '%s ' "$key"
done)
if [ -z "$missing" ]; then
	ok "examples/aftercall.yaml shows every config key"
else
	not_ok "examples/aftercall.yaml shows every config key (missing: $missing)"
fi

# The shipped plugins' config keys, from the known[] lists of their sources:
# init's are top-level keys, parse_target's those of each targets[] item.
for plugin in multimail forward; do
	src="$TOP_SRCDIR/plugin/$plugin/$plugin.c"
	if [ ! -f "$src" ]; then
		not_ok "the $plugin plugin's source is at plugin/$plugin/$plugin.c"
		continue
	fi
	awk '
		/^static [^(]*[a-z_]+\(/ { match($0, /[a-z_]+\(/); fn = substr($0, RSTART, RLENGTH - 1) }
		/known\[\] = \{/ { on = 1 }
		on { s = $0
			if (index(s, "{")) s = substr(s, index(s, "{"))
			while (match(s, /"[^"]*"/)) { print fn, substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH) }
			if ($0 ~ /NULL/) on = 0 }
	' "$src" >"$WORK/pk.raw"
	: >"$WORK/pk.src"
	while read -r fn key; do
		case "$fn" in
		init) echo "$key" ;;
		parse_target) echo "targets[].$key" ;;
		*) not_ok "$plugin config key $key (in $fn): no section known to this test; add one" ;;
		esac >>"$WORK/pk.src"
	done <"$WORK/pk.raw"
	sort -u -o "$WORK/pk.src" "$WORK/pk.src"
	section "$PAGE5" "$plugin" | tags | roff_text | sed -E 's/^\.[A-Z]+ +//; s/^"//; s/[" ].*//' |
		sort -u >"$WORK/pk.man"
	same "the $plugin plugin's config keys are the ones aftercall.yaml.5 lists" \
		"$WORK/pk.src" "$plugin.c" "$WORK/pk.man" "aftercall.yaml.5"
done

# ---- the example plugin of aftercall-plugin(3) ------------------------------

awk '/^\.\\" example end/ { on = 0 } on && !/^\.E[XE]/ { print } /^\.\\" example begin/ { on = 1 }' "$PAGE3" |
	sed -e 's/\\e/\x01/g' -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\&//g' -e 's/\x01/\\/g' >"$WORK/seen.c"
if [ "$(grep -c aftercall_plugin "$WORK/seen.c")" -ge 1 ] &&
	${CC:-cc} -std=c11 -Wall -Wextra -Werror -shared -fPIC -I"$TOP_SRCDIR/include" \
		-o "$WORK/seen.so" "$WORK/seen.c" >"$WORK/cc.log" 2>&1; then
	ok "the example plugin of aftercall-plugin.3 builds with -Wall -Wextra -Werror"
	cat >"$WORK/seen.yaml" <<YAML
listen: 127.0.0.1:0
store: sqlite:$WORK/seen.db
livekit:
  keys:
    APIman: man-secret-0123456789
${TEMPLATES:+templates: $TEMPLATES}
${PLUGIN_BUILDDIR:+template_engine: $PLUGIN_BUILDDIR/mustache/.libs/mustache.so}
plugins:
  - name: seen
    path: $WORK/seen.so
    config:
      every: 10
YAML
	if "$AFTERCALL" check -c "$WORK/seen.yaml" >"$WORK/check.log" 2>&1 &&
		grep -q 'plugin  seen 1.0.0' "$WORK/check.log"; then
		ok "aftercall check loads the example plugin and runs its init"
	else
		not_ok "aftercall check loads the example plugin and runs its init"
		sed 's/^/    /' "$WORK/check.log" | head -5
	fi
else
	not_ok "the example plugin of aftercall-plugin.3 builds with -Wall -Wextra -Werror"
	sed 's/^/    /' "$WORK/cc.log" | head -10
fi

# ---- rendering --------------------------------------------------------------

if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
	not_ok "man and groff are installed (apt-get install man-db groff-base)"
else
	for page in "$PAGE1" "$PAGE5" "$PAGE3"; do
		name=${page##*/}
		MANWIDTH=80 man -l "$page" >"$WORK/out" 2>"$WORK/err"
		rc=$?
		if [ "$rc" -eq 0 ] && [ ! -s "$WORK/err" ] && [ -s "$WORK/out" ]; then
			ok "man -l $name renders"
		else
			not_ok "man -l $name renders (exit $rc)"
			sed 's/^/    /' "$WORK/err" | head -5
		fi
		groff -ww -man -Tutf8 "$page" >/dev/null 2>"$WORK/err"
		if [ ! -s "$WORK/err" ]; then
			ok "groff -ww finds nothing to warn about in $name"
		else
			not_ok "groff -ww finds nothing to warn about in $name"
			sed 's/^/    /' "$WORK/err" | head -5
		fi
	done
fi

printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
