#!/usr/bin/env bash
# The store failing: the disk under the SQLite file fills up. The host must
# answer 503, acknowledge nothing it could not commit, say so on /healthz,
# and recover by itself once there is room again. Then the file system is
# made read-only: serve refuses to start on it, saying so, and starts again
# once it is writable. The disk is a small tmpfs (this needs root, as CI
# runs). On PostgreSQL, readonly.sh makes the store read-only under a
# running host; a SQLite file cannot be, while the host holds it open for
# writing (the kernel refuses to remount it, and a chmod does not reach an
# open descriptor).
. "${TOP_SRCDIR:-.}/tests/lib.sh"

FS="$WORK/fs"
mkdir -p "$FS"
if ! mount -t tmpfs -o size=4M tmpfs "$FS" 2>"$WORK/mount.err"; then
	not_ok "mount a 4 MiB tmpfs for the store: $(cat "$WORK/mount.err")"
	finish
fi
before_finish() { umount "$FS" 2>/dev/null; }
K=APIfull S=full-secret-0123456789
cat >"$WORK/f.yaml" <<YAML
listen: 127.0.0.1:0
store: sqlite:$FS/full.db
livekit:
  keys:
    $K: $S
plugins:
  - name: counter
    path: $TEST_PLUGINS/counter.so
    config: {file: $WORK/seen.txt}
YAML
start_host "$WORK/f.yaml" || finish

event() { # event ID: posts a signed event with a 2 KiB field; prints the status
	printf '{"event":"room_finished","id":"%s","pad":"%s"}' "$1" "$(head -c 2048 /dev/zero | tr '\0' p)" >"$WORK/ev.json"
	post /webhooks/livekit "$WORK/ev.json" "$("$AFTERCALL" sign --key $K --secret $S "$WORK/ev.json")"
}
health() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz"; }

check "before: an event is accepted" 200 "$(event EV_before)"
check "before: healthz 200" 200 "$(health)"

# Fill the disk.
dd if=/dev/zero of="$FS/filler" bs=64k 2>/dev/null
refused=0 acked=()
for i in $(seq 1 40); do
	st=$(event "EV_full_$i")
	case "$st" in
	200) acked+=("EV_full_$i");;
	503) refused=$((refused + 1));;
	*) not_ok "with the disk full: unexpected status $st";;
	esac
done
if [ "$refused" -gt 0 ]; then ok "with the disk full, events get 503 ($refused of 40)"; else not_ok "with the disk full, events get 503"; fi
check "healthz says 503" 503 "$(health)"
check_grep "the log says why" '"msg":"store: commit failed; answering 503"' "$WORK/host.log"

# Room again: the host recovers by itself.
rm -f "$FS/filler"
for _ in $(seq 1 50); do [ "$(health)" = 200 ] && break; sleep 0.1; done
check "after the disk has room, healthz is 200 again" 200 "$(health)"
check "and an event is accepted" 200 "$(event EV_after)"
stop_host

# Every 200 is in the journal; no 503 is.
journal() { sqlite3 "$FS/full.db" "select count(*) from journal where dedupe = '$1'"; }
check "the event before is journaled" 1 "$(journal EV_before)"
check "the event after is journaled" 1 "$(journal EV_after)"
lost=0
for id in "${acked[@]}"; do [ "$(journal "$id")" = 1 ] || lost=$((lost + 1)); done
check "every event acknowledged while the disk filled is journaled (${#acked[@]})" 0 "$lost"
extra=$(sqlite3 "$FS/full.db" "select count(*) from journal where dedupe like 'EV_full_%'")
check "no refused event is journaled" "${#acked[@]}" "$extra"

# The file system made read-only: serve refuses the store, and says why.
rows=$(sqlite3 "$FS/full.db" "select count(*) from journal")
if mount -o remount,ro "$FS" 2>"$WORK/remount.err"; then
	ok "the store's file system is made read-only"
	"$AFTERCALL" serve -c "$WORK/f.yaml" 2>"$WORK/ro.log" &
	ro_pid=$!
	for _ in $(seq 1 50); do kill -0 "$ro_pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$ro_pid" 2>/dev/null; then
		not_ok "serve refuses a read-only store"; kill "$ro_pid"
	else
		wait "$ro_pid"; check "serve refuses a read-only store" 1 $?
	fi
	check_grep "naming it and why" "full.db.*[Rr]ead-only" "$WORK/ro.log"
	mount -o remount,rw "$FS"
	start_host "$WORK/f.yaml" || not_ok "serve starts once the store is writable again"
	check "and takes events again" 200 "$(event EV_after_ro)"
	stop_host
	check "nothing was lost meanwhile" $((rows + 1)) "$(sqlite3 "$FS/full.db" "select count(*) from journal")"
else
	not_ok "make the store's file system read-only: $(cat "$WORK/remount.err")"
fi
finish
