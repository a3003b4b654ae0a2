#!/usr/bin/env bash
# contrib/aftercall.service, as make wrote it from contrib/aftercall.service.in:
# the real bindir substituted, the directives the deployment relies on
# present, and `systemd-analyze verify` silent about it. verify insists that
# ExecStart's binary exists, so it runs on a copy whose ExecStart is the
# binary just built. Ends with "N passed, N failed".
set -u
: "${AFTERCALL:?run through make check}" "${TOP_BUILDDIR:?run through make check}"
UNIT="$TOP_BUILDDIR/contrib/aftercall.service"
PASSED=0
FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aftercall-systemd.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

ok() {
	PASSED=$((PASSED + 1))
	printf 'ok   %s\n' "$1"
}

not_ok() {
	FAILED=$((FAILED + 1))
	printf 'FAIL %s\n' "$1"
}

finish() {
	printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
	exit $?
}

if [ ! -f "$UNIT" ]; then
	not_ok "make wrote $UNIT"
	finish
fi
ok "make wrote contrib/aftercall.service"

if grep -q '@[a-z_]*@' "$UNIT"; then
	not_ok "no @variable@ is left unsubstituted: $(grep -o '@[a-z_]*@' "$UNIT" | sort -u | tr '\n' ' ')"
else
	ok "no @variable@ is left unsubstituted"
fi
want="ExecStart=${bindir:-}/aftercall serve -c /etc/aftercall/aftercall.yaml"
if [ -n "${bindir:-}" ] && grep -qxF -- "$want" "$UNIT"; then
	ok "ExecStart runs \$bindir/aftercall serve -c /etc/aftercall/aftercall.yaml"
else
	not_ok "ExecStart runs \$bindir/aftercall serve -c /etc/aftercall/aftercall.yaml (got: $(grep '^ExecStart=' "$UNIT"))"
fi

# Type=notify: serve tells systemd when it is ready (tests/integration/notify.sh).
if grep -qxF "Type=notify" "$UNIT"; then ok "Type=notify"; else
	not_ok "Type=notify (got: $(grep '^Type=' "$UNIT"))"; fi

# Each directive the deployment relies on, exactly once and as given.
while IFS= read -r line; do
	n=$(grep -cxF -- "$line" "$UNIT")
	if [ "$n" -eq 1 ]; then ok "$line"; else not_ok "$line (found $n times)"; fi
done <<'EOF'
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
EnvironmentFile=-/etc/aftercall/env
DynamicUser=yes
StateDirectory=aftercall
ConfigurationDirectory=aftercall
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
WantedBy=multi-user.target
EOF

if ! command -v systemd-analyze >/dev/null; then
	not_ok "systemd-analyze is installed (apt-get install systemd)"
	finish
fi
# verify wants the unit's own name and an ExecStart binary that exists; the
# manual pages of Documentation= are not installed yet (--man=no).
mkdir -p "$WORK/units"
sed "s|^ExecStart=[^ ]*|ExecStart=$AFTERCALL|" "$UNIT" >"$WORK/units/aftercall.service"
(cd "$WORK/units" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no ./aftercall.service) >"$WORK/verify.log" 2>&1
rc=$?
# Lines about other units on this machine are not this unit's business.
grep -e 'aftercall' -e "$WORK" "$WORK/verify.log" >"$WORK/about.log"
if [ "$rc" -eq 0 ] && [ ! -s "$WORK/about.log" ]; then
	ok "systemd-analyze verify is silent about the unit"
else
	not_ok "systemd-analyze verify is silent about the unit (exit $rc)"
	sed 's/^/    /' "$WORK/verify.log" | head -20
fi
if [ -s "$WORK/verify.log" ] && [ ! -s "$WORK/about.log" ]; then
	echo "# systemd-analyze said about other units:"
	sed 's/^/#   /' "$WORK/verify.log" | head -10
fi

# And it does notice a mistake in it (the test is not blind).
sed 's/^ProtectHome=yes/ProtectHome=sometimes/' "$WORK/units/aftercall.service" >"$WORK/units/bad.service"
mv "$WORK/units/bad.service" "$WORK/units/aftercall.service"
(cd "$WORK/units" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no ./aftercall.service) >"$WORK/bad.log" 2>&1
if grep -q 'aftercall.service:[0-9]*:.*sometimes' "$WORK/bad.log"; then
	ok "systemd-analyze verify reports a bad value in the unit"
else
	not_ok "systemd-analyze verify reports a bad value in the unit"
	sed 's/^/    /' "$WORK/bad.log" | head -5
fi
finish
