#!/bin/sh
# test_cli.sh — black-box checks of the embedsrv command line.
set -eu
bin=${ES_BINARY:?ES_BINARY not set}
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$bin" --version) || fail "--version exited non-zero"
echo "$out" | grep -q '^embedsrv [0-9]' || fail "--version: no version line"
echo "$out" | grep -q '^commit: ' || fail "--version: no commit line"
echo "$out" | grep -q '^simd compiled: .*scalar' || fail "--version: no compiled paths"
echo "$out" | grep -q '^simd selected: ' || fail "--version: no selected path"

sel=$(EMBEDSRV_SIMD=scalar "$bin" --version | sed -n 's/^simd selected: //p')
[ "$sel" = scalar ] || fail "EMBEDSRV_SIMD=scalar selected '$sel'"

if "$bin" no-such-command 2>/dev/null; then fail "unknown command exited 0"; fi
"$bin" help | grep -q 'usage: embedsrv' || fail "help"
echo "cli: 1 passed, 0 failed"
