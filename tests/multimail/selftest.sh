#!/usr/bin/env bash
# The MultiMail double, checked through prism against MultiMail's own
# openapi.json (selftest.cjs prints its own "N passed, N failed").
set -u
MM_DIR=${AFTERCALL_MULTIMAIL_DIR:-$TOP_SRCDIR/tests/multimail}
export MULTIMAIL_OPENAPI=${MULTIMAIL_OPENAPI:-$TOP_SRCDIR/../shared/multimail/openapi.json}
exec node "$MM_DIR/selftest.cjs"
