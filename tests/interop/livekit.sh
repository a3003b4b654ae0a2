#!/usr/bin/env bash
# Interop with LiveKit's own server SDK (npm livekit-server-sdk): its tokens
# are accepted by the host, and its WebhookReceiver accepts ours.
. "${TOP_SRCDIR:-.}/tests/lib.sh"

NM=${AFTERCALL_NODE_MODULES:-$TOP_SRCDIR/tests/interop/node_modules}
if [ ! -d "$NM/livekit-server-sdk" ]; then
	not_ok "livekit-server-sdk is installed (run: npm ci --prefix tests/interop)"
	finish
fi
cat >"$WORK/lk.yaml" <<YAML
listen: 127.0.0.1:0
store: sqlite:$WORK/lk.db
livekit:
  keys:
    abcdefg: abababa
    APIinterop: interop-secret-0123456789
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $WORK/seen.txt}
YAML
start_host "$WORK/lk.yaml" || { not_ok "host starts"; finish; }
export NODE_PATH="$NM" AFTERCALL PORT TEST_DATA
node "$TOP_SRCDIR/tests/interop/interop.cjs" >"$WORK/node.out" 2>&1
rc=$?
cat "$WORK/node.out"
PASSED=$((PASSED + $(grep -c '^ok ' "$WORK/node.out")))
FAILED=$((FAILED + $(grep -c '^FAIL ' "$WORK/node.out")))
check "the node script ran to its end" 0 "$rc"
finish
