#!/usr/bin/env bash
# Readiness notification: with NOTIFY_SOCKET set, as systemd sets it for a
# Type=notify unit, serve sends READY=1 once it answers on its port,
# RELOADING=1 and READY=1 around a SIGHUP reload, and STOPPING=1 on SIGTERM.
# A socat process stands in for systemd on a datagram socket: a path, then
# (as systemd may give too) a name in the abstract namespace ("@name").
# A socket that is not there is logged, and serve runs on.
. "${TOP_SRCDIR:-.}/tests/lib.sh"
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
kill "$SOCAT" 2>/dev/null

# The abstract namespace: "@" stands for the leading NUL byte.
NAME="aftercall-notify-$$-$RANDOM"
socat -u ABSTRACT-RECV:"$NAME" STDOUT >"$WORK/notes2" 2>"$WORK/socat2.err" &
SOCAT=$!
sleep 0.2
NOTIFY_SOCKET="@$NAME" "$AFTERCALL" serve -c "$WORK/n.yaml" 2>"$WORK/host.log" &
HOST_PID=$!
for _ in $(seq 1 100); do grep -q 'READY=1' "$WORK/notes2" && break; sleep 0.05; done
check_grep "READY=1 to an abstract socket (@name)" "MAINPID=$HOST_PID" "$WORK/notes2"
stop_host

# No socket there: a warning that names it, and serve runs on.
NOTIFY_SOCKET="$WORK/nobody.sock" "$AFTERCALL" serve -c "$WORK/n.yaml" 2>"$WORK/host.log" &
HOST_PID=$!
for _ in $(seq 1 100); do grep -q '"msg":"listening"' "$WORK/host.log" && break; sleep 0.05; done
PORT=$(sed -n 's/.*"msg":"listening".*"port":"\([0-9]*\)".*/\1/p' "$WORK/host.log")
check "with no socket at NOTIFY_SOCKET, serve still answers" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")"
check_grep "and warns, naming the socket" \
	'"msg":"cannot notify systemd","socket":"'"$WORK"'/nobody.sock","error":"No such file or directory"' \
	"$WORK/host.log"
stop_host
finish
