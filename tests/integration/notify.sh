#!/usr/bin/env bash
# Readiness notification: with NOTIFY_SOCKET set, as systemd sets it for a
# Type=notify unit, serve sends READY=1 once it answers on its port,
# RELOADING=1 and READY=1 around a SIGHUP reload, and STOPPING=1 on SIGTERM.
# A socat process stands in for systemd on a datagram socket.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
grep -q '^#define HAVE_LIBSYSTEMD 1' "$TOP_BUILDDIR/autoconfig.h" ||
	{ not_ok "this build has readiness notification (configure found no libsystemd: apt-get install libsystemd-dev)"; finish; }
command -v socat >/dev/null || { not_ok "socat is installed (apt-get install socat)"; finish; }
STORE=$(store_url n) || { not_ok "create the store"; finish; }
export S1='notify-secret-0123456789abcdef'
cat >"$WORK/n.yaml" <<YAML
listen: 127.0.0.1:0
store: $STORE
livekit:
  keys:
    APInotify: \${S1}
plugins:
  - name: log
    path: $PLUGIN_BUILDDIR/log/.libs/log.so
YAML
SOCK="$WORK/notify.sock"
# The datagrams, in order, run together (they end in no newline).
socat -u UNIX-RECV:"$SOCK" STDOUT >"$WORK/notes" 2>"$WORK/socat.err" &
SOCAT=$!
before_finish() { kill "$SOCAT" 2>/dev/null; }
for _ in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.05; done

NOTIFY_SOCKET="$SOCK" "$AFTERCALL" serve -c "$WORK/n.yaml" 2>"$WORK/host.log" &
HOST_PID=$!
for _ in $(seq 1 100); do grep -q 'READY=1' "$WORK/notes" && break; sleep 0.05; done
check_grep "READY=1 once started" 'READY=1' "$WORK/notes"
PORT=$(sed -n 's/.*"msg":"listening".*"port":"\([0-9]*\)".*/\1/p' "$WORK/host.log")
check "and the port answers by then" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")"
check_grep "the status names the port" "STATUS=listening on port $PORT" "$WORK/notes"
check_grep "and MAINPID its pid" "MAINPID=$HOST_PID" "$WORK/notes"

kill -HUP "$HOST_PID"
for _ in $(seq 1 100); do grep -q 'reloaded' "$WORK/notes" && break; sleep 0.05; done
check_grep "RELOADING=1 on SIGHUP" 'RELOADING=1' "$WORK/notes"
check_grep "READY=1 again once reloaded" 'STATUS=listening on port [0-9]* (reloaded)' "$WORK/notes"

stop_host
for _ in $(seq 1 50); do grep -q 'STOPPING=1' "$WORK/notes" && break; sleep 0.05; done
check_grep "STOPPING=1 on SIGTERM" 'STOPPING=1' "$WORK/notes"
check "in this order" "READY=1 RELOADING=1 READY=1 STOPPING=1" \
	"$(grep -o 'RELOADING=1\|READY=1\|STOPPING=1' "$WORK/notes" | tr '\n' ' ' | sed 's/ $//')"
finish
