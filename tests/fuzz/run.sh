#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan +
# libFuzzer) straight from the sources, with no help from the autotools
# build, then runs each for SECONDS (default 60). Fails (exit 1) on any
# crash, leak, timeout, OOM, sanitizer report or build error.
#
#   bash tests/fuzz/run.sh [SECONDS] [TARGET...]     (targets: all by default)
#
# Environment:
#   CC=clang            the compiler (clang 14 with libclang-rt-14-dev)
#   FUZZ_WORK=DIR       keep the binaries, the grown corpora, logs and crash
#                       files there (default: a temporary folder, removed
#                       after a clean run, kept and named after a failure)
#   FUZZ_BUILD_ONLY=1   build into $FUZZ_WORK/bin and stop
#   FUZZ_TIMEOUT=10     seconds one input may take before it counts as a hang
#   FUZZ_RSS_MB=2048    memory limit
#   FUZZ_ARGS="..."     more libFuzzer flags for every target
#
# Ends with "N passed, N failed" (one per target).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2;; esac
ALL="fuzz_livekit fuzz_event fuzz_hmac fuzz_transcript fuzz_template fuzz_config"
targets=${*:-$ALL}
CC=${CC:-clang}
case "$CC" in *clang*) ;; *) CC=clang;; esac # libFuzzer needs clang, whatever CC configure chose

if [ -n "${FUZZ_WORK:-}" ]; then
	work=$FUZZ_WORK keep=1
	mkdir -p "$work"
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/aftercall-fuzz.XXXXXX") keep=0
fi
work=$(cd "$work" && pwd)
mkdir -p "$work/bin" "$work/include" "$work/artifacts"
# The sources include the configure-made autoconfig.h; they need nothing
# from it, so a stand-in keeps this build independent of any configure run.
echo '/* stand-in for configure'"'"'s autoconfig.h (tests/fuzz/run.sh) */' >"$work/include/autoconfig.h"

libs() { # libs PKG...: pkg-config's flags, or the plain -l names
	local p out=
	for p in "$@"; do
		if pkg-config --exists "$p" 2>/dev/null; then
			out="$out $(pkg-config --cflags --libs "$p")"
		else
			case "$p" in
			libcrypto) out="$out -lcrypto";; yaml-0.1) out="$out -lyaml";;
			libcurl) out="$out -lcurl";; *) out="$out -l$p";;
			esac
		fi
	done
	echo "$out"
}

# What each target compiles and links: only what it needs.
sources() {
	case "$1" in
	fuzz_livekit) echo "src/verify_livekit.c src/json.c src/crypto.c src/strbuf.c";;
	fuzz_event) echo "src/event.c src/json.c src/crypto.c src/strbuf.c";;
	fuzz_hmac) echo "src/verify_hmac.c src/crypto.c";;
	fuzz_transcript) echo "plugin/multimail/multimail.c plugin/multimail/correlate.c
		plugin/multimail/compose.c plugin/multimail/history.c plugin/multimail/api.c";;
	fuzz_template) echo "plugin/mustache/mustache.c plugin/mustache/context_json.c src/json.c
		plugin/mustache/escape.c plugin/mustache/plugin.c";;
	fuzz_config) echo "src/config.c src/strbuf.c src/log.c src/store_url.c";;
	esac
}
deps() {
	case "$1" in
	fuzz_livekit | fuzz_event) libs jansson libcrypto;;
	fuzz_hmac) libs libcrypto;;
	fuzz_transcript) libs jansson libcrypto;;
	fuzz_template) echo "-pthread";;
	fuzz_config) libs yaml-0.1 jansson;;
	esac
}

CFLAGS="-g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
	-fno-omit-frame-pointer -Wall -Wno-unused-parameter"
INCS="-I$work/include -I$top/include -I$top/src -I$top/plugin/multimail -I$top/plugin/mustache"

build() { # build TARGET: 0 when $work/bin/TARGET is made
	local t=$1 srcs
	srcs=$(sources "$t")
	# shellcheck disable=SC2086,SC2046
	(cd "$top" && $CC $CFLAGS $INCS -o "$work/bin/$t" "tests/fuzz/$t.c" $srcs $(deps "$t")) \
		>"$work/$t.build.log" 2>&1
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:allocator_may_return_null=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

pass=0 fail=0
for t in $targets; do
	if [ -z "$(sources "$t")" ]; then
		fail=$((fail + 1))
		echo "FAIL $t: no such target (targets: $ALL)"
		continue
	fi
	if ! build "$t"; then
		fail=$((fail + 1))
		echo "FAIL $t: build failed"
		sed 's/^/    /' "$work/$t.build.log" | head -30
		continue
	fi
	[ -n "${FUZZ_BUILD_ONLY:-}" ] && { echo "built $work/bin/$t"; pass=$((pass + 1)); continue; }
	mkdir -p "$work/corpus/$t"
	seeds="$here/corpus/$t"
	[ -d "$seeds" ] || seeds=
	# The first folder collects what the run finds; the seeds are only read.
	# shellcheck disable=SC2086
	"$work/bin/$t" -max_total_time="$secs" -detect_leaks=1 -print_final_stats=1 \
		-timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
		-artifact_prefix="$work/artifacts/$t-" ${FUZZ_ARGS:-} \
		"$work/corpus/$t" $seeds >"$work/$t.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
	[ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$work/$t.log" | tail -1 | tr -d '#')
	corpus=$(find "$work/corpus/$t" -type f | wc -l)
	artifacts=$(find "$work/artifacts" -name "$t-*" -type f | head -3)
	if [ $rc -eq 0 ] && [ -z "$artifacts" ] &&
		! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz invariant failed' "$work/$t.log"; then
		pass=$((pass + 1))
		printf 'PASS %-16s %10s execs in %ss, corpus %s new\n' "$t" "${execs:-?}" "$secs" "$corpus"
	else
		fail=$((fail + 1))
		printf 'FAIL %-16s %10s execs (exit %s)\n' "$t" "${execs:-?}" "$rc"
		grep -m1 -E 'ERROR: |runtime error:|fuzz invariant failed|SUMMARY:' "$work/$t.log" | sed 's/^/    /'
		grep -E 'SUMMARY:' "$work/$t.log" | head -1 | sed 's/^/    /'
		for a in $artifacts; do echo "    input: $a ($(wc -c <"$a") bytes)"; done
		echo "    log: $work/$t.log"
		keep=1
	fi
done

if [ "$keep" = 1 ]; then
	echo "fuzz work folder: $work"
else
	rm -rf "$work"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
