#!/usr/bin/env bash
# A plugin built out of tree from the installed headers alone, found through
# `pkg-config --cflags aftercall-plugin`, loaded and run by the installed host.
. "${TOP_SRCDIR:-.}/tests/lib.sh"

DEST="$WORK/dest"
$MAKE -s -C "$TOP_BUILDDIR" install DESTDIR="$DEST" >"$WORK/install.log" 2>&1
check "make install into a staging root" 0 $?
for f in "$bindir/aftercall" "$includedir/aftercall/plugin.h" "$includedir/aftercall/template.h" \
	"$libdir/pkgconfig/aftercall-plugin.pc" "$pkglibdir/log.so"; do
	if [ -e "$DEST$f" ]; then ok "installed $f"; else not_ok "installed $f"; fi
done

export PKG_CONFIG_PATH="$DEST$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$DEST"
cflags=$(pkg-config --cflags aftercall-plugin)
check "pkg-config knows aftercall-plugin" 0 $?
mkdir -p "$WORK/src"
cp "$TOP_SRCDIR/tests/plugins/counter.c" "$WORK/src/"
# Nothing from the source tree is on the include path: only what was installed.
(cd "$WORK/src" && $CC -std=c11 -Wall -Wextra -Werror -shared $cflags -o counter.so counter.c) \
	>"$WORK/cc.log" 2>&1
check "the plugin builds against the installed headers" 0 $?

RECORD="$WORK/seen.txt"
cat >"$WORK/oot.yaml" <<YAML
listen: 127.0.0.1:0
store: sqlite:$WORK/oot.db
plugin_dir: $DEST$pkglibdir
livekit:
  keys:
    APIoot: oot-secret-0123456789
plugins:
  - name: log
  - name: counter
    path: $WORK/src/counter.so
    config:
      file: $RECORD
YAML
"$DEST$bindir/aftercall" check -c "$WORK/oot.yaml" >"$WORK/check.log" 2>&1
check "the installed host's check accepts it" 0 $?
start_host "$WORK/oot.yaml" "$DEST$bindir/aftercall" || not_ok "the installed host starts"
f="$TEST_DATA/livekit/participant_left.json"
tok=$("$DEST$bindir/aftercall" sign --key APIoot --secret oot-secret-0123456789 "$f")
check "an event is accepted" 200 "$(post /webhooks/livekit "$f" "$tok")"
check "the out-of-tree plugin saw it" 1 "$(grep -c '^event participant_left ' "$RECORD")"
check_grep "the stock log plugin logged it" '"plugin":"log"' "$WORK/host.log"
finish
