#!/usr/bin/env bash
# libcurl and libpq are opened with dlopen when first wanted (src/libcurl.h,
# src/libpq.h). When the file that opens is not the library (here an empty
# shared object of the same name, found first through LD_LIBRARY_PATH):
# - serve still answers webhooks; each send fails, is logged with the
#   reason, and stays pending for its retry, which loads libcurl once it is
#   there;
# - `aftercall check` warns, with the reason, and still passes; so it does
#   for a libcurl older than 7.85 or not built thread-safe;
# - `aftercall mailbox create` fails with the reason;
# - a PostgreSQL store is refused at start, with the reason; so it is with a
#   libpq whose release lacks a pipeline-mode fix.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
STORE=sqlite:$WORK/libs.db # whatever AFTERCALL_TEST_STORE says: libpq is faked below
FAKE="$WORK/fake"
mkdir -p "$FAKE"
for so in libcurl.so.4 libpq.so.5; do
	${CC:-cc} -shared -o "$FAKE/$so" -x c /dev/null || { not_ok "build an empty $so"; finish; }
done

cat >"$WORK/l.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APIlibs: libs-secret-0123456789abcdef
outbox:
  retry_base_ms: 1000
  retry_cap_ms: 1000
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config:
      file: $WORK/seen.txt
      send_url: http://127.0.0.1:9/v1/send
      send_key: mm_live_libs_test_key
YAML

LD_LIBRARY_PATH="$FAKE" start_host "$WORK/l.yaml" || finish
printf '{"event":"room_finished","id":"EV_libs_1","room":{"name":"r1"}}' >"$WORK/ev.json"
tok=$("$AFTERCALL" sign --key APIlibs --secret libs-secret-0123456789abcdef "$WORK/ev.json")
check "a webhook is answered 200 without libcurl" 200 "$(post /webhooks/livekit "$WORK/ev.json" "$tok")"
for _ in $(seq 1 100); do grep -q '"outbox: cannot send"' "$WORK/host.log" && break; sleep 0.05; done
check_grep "the send's failure is logged with the reason" \
	'"msg":"outbox: cannot send","error":"libcurl.so.4 has no curl_' "$WORK/host.log"
"$AFTERCALL" outbox show -c "$WORK/l.yaml" 1 >"$WORK/row.txt" 2>&1
check_grep "the row is kept for its retry" '^state: *\(pending\|inflight\)' "$WORK/row.txt"
check_grep "with the reason as its last error" '^last error: *libcurl.so.4 has no curl_' "$WORK/row.txt"
rm "$FAKE/libcurl.so.4" # the system's is found next
for _ in $(seq 1 100); do
	"$AFTERCALL" outbox show -c "$WORK/l.yaml" 1 >"$WORK/row.txt" 2>&1
	grep -q '^last error: *libcurl' "$WORK/row.txt" || break
	sleep 0.1
done
check_grep "a later attempt loads libcurl and reaches the network" \
	"^last error: *Couldn't connect to server" "$WORK/row.txt"
check "libcurl is mapped now" 1 "$(grep -c '/libcurl\.so' "/proc/$HOST_PID/maps" | sed 's/^[1-9][0-9]*$/1/')"
for so in libcurl.so.4 libpq.so.5; do
	${CC:-cc} -shared -o "$FAKE/$so" -x c /dev/null || { not_ok "build an empty $so"; finish; }
done
stop_host

out=$("$AFTERCALL" check -c "$WORK/l.yaml" 2>&1)
case $out in
*"outbox  libcurl "[0-9]*) ok "check names the libcurl that sends will use" ;;
*) not_ok "check names the libcurl that sends will use (got '$out')" ;;
esac
out=$(LD_LIBRARY_PATH="$FAKE" "$AFTERCALL" check -c "$WORK/l.yaml" 2>&1)
rc=$?
check "check passes without libcurl" 0 "$rc"
case $out in
*"warning: outbound requests (the outbox) will fail: libcurl.so.4 has no curl_"*) ok "but warns, with the reason" ;;
*) not_ok "but warns, with the reason (got '$out')" ;;
esac

out=$(LD_LIBRARY_PATH="$FAKE" MULTIMAIL_API_KEY=mm_live_libs_test_key "$AFTERCALL" mailbox create \
	followups --api-url http://127.0.0.1:9 2>&1)
rc=$?
check "mailbox create fails without libcurl" 1 "$rc"
case $out in
*"libcurl.so.4 has no curl_"*) ok "and says why" ;;
*) not_ok "and says why (got '$out')" ;;
esac

# A libcurl with every function, too old or not built thread-safe: it is
# refused before curl_global_init, with the reason.
cat >"$WORK/info.c" <<'C'
#include <curl/curl.h>
static curl_version_info_data info = {
	.age = CURLVERSION_NOW, .version = VERSION, .version_num = VERSION_NUM, .features = FEATURES,
};
curl_version_info_data *curl_version_info(CURLversion v)
{
	(void)v;
	return &info;
}
C
: >"$WORK/stubs.c"
for f in global_init easy_init easy_setopt easy_getinfo easy_perform easy_cleanup easy_strerror \
	slist_append slist_free_all getdate multi_init multi_setopt multi_add_handle \
	multi_remove_handle multi_perform multi_info_read multi_poll multi_wakeup multi_cleanup; do
	echo "void curl_$f(void); void curl_$f(void) { abort(); }" >>"$WORK/stubs.c"
done
sed -i '1i #include <stdlib.h>' "$WORK/stubs.c"
fake_curl() { # DIR VERSION VERSION_NUM FEATURES
	mkdir -p "$1" && ${CC:-cc} -shared -fPIC -o "$1/libcurl.so.4" -DVERSION="\"$2\"" \
		-DVERSION_NUM="$3" -DFEATURES="$4" "$WORK/info.c" "$WORK/stubs.c"
}
fake_curl "$WORK/old" 7.84.0 0x075400 CURL_VERSION_THREADSAFE || not_ok "build a libcurl 7.84.0"
fake_curl "$WORK/unsafe" 8.0.0 0x080000 CURL_VERSION_SSL || not_ok "build a libcurl not thread-safe"
out=$(LD_LIBRARY_PATH="$WORK/old" "$AFTERCALL" check -c "$WORK/l.yaml" 2>&1)
case $out in
*"warning: outbound requests (the outbox) will fail: libcurl 7.84.0 is too old (7.85.0 or later is needed)"*)
	ok "check refuses a libcurl older than 7.85" ;;
*) not_ok "check refuses a libcurl older than 7.85 (got '$out')" ;;
esac
out=$(LD_LIBRARY_PATH="$WORK/unsafe" "$AFTERCALL" check -c "$WORK/l.yaml" 2>&1)
case $out in
*"will fail: libcurl 8.0.0 was built without CURL_VERSION_THREADSAFE"*)
	ok "and one not built thread-safe" ;;
*) not_ok "and one not built thread-safe (got '$out')" ;;
esac

sed "s#^store: .*#store: postgres://aftercall@127.0.0.1:9/none#" "$WORK/l.yaml" >"$WORK/pg.yaml"
out=$(LD_LIBRARY_PATH="$FAKE" timeout 10 "$AFTERCALL" serve -c "$WORK/pg.yaml" 2>&1)
rc=$?
check "serve refuses a PostgreSQL store without libpq" 1 "$rc"
case $out in
*"libpq.so.5 has no PQ"*) ok "and says why" ;;
*) not_ok "and says why (got '$out')" ;;
esac

# A libpq with every function whose release lacks a pipeline-mode fix is
# refused before it connects (every function but PQlibVersion aborts).
: >"$WORK/pqstubs.c"
for f in connectdbParams status transactionStatus errorMessage reset finish exec prepare \
	execPrepared sendQueryPrepared setSingleRowMode sendQueryParams enterPipelineMode \
	exitPipelineMode pipelineSync getResult resultStatus resultErrorMessage resultErrorField \
	cmdStatus cmdTuples ntuples getvalue getisnull unescapeBytea freemem clear; do
	echo "void PQ$f(void); void PQ$f(void) { abort(); }" >>"$WORK/pqstubs.c"
done
sed -i '1i #include <stdlib.h>' "$WORK/pqstubs.c"
for v in 15.5:150005 14.10:140010; do
	dir="$WORK/pq${v%:*}" # no colon: LD_LIBRARY_PATH splits on it
	mkdir -p "$dir"
	${CC:-cc} -shared -fPIC -o "$dir/libpq.so.5" -DV="${v#*:}" "$WORK/pqstubs.c" -x c - \
		<<<'int PQlibVersion(void); int PQlibVersion(void) { return V; }' ||
		not_ok "build a libpq ${v%:*}"
	out=$(LD_LIBRARY_PATH="$dir" timeout 10 "$AFTERCALL" serve -c "$WORK/pg.yaml" 2>&1)
	rc=$?
	check "serve refuses libpq ${v%:*}" 1 "$rc"
	case $out in
	*"libpq ${v%:*} is too old (14.11, 15.6, 16.2 or later is needed)"*) ok "and says why" ;;
	*) not_ok "and says why (got '$out')" ;;
	esac
done
finish
