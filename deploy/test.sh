#!/bin/sh
# test.sh — install what is missing, build, and run the whole test suite
# (Check unit tests per module + HTTP integration tests against the real
# binary).  This is the README's test command.
set -eu
cd "$(dirname "$0")/.."
sh deploy/install-deps.sh
sh deploy/build.sh build
meson test -C build --print-errorlogs --num-processes "$(nproc)"
