#!/bin/sh
# test.sh — install what is missing, build, and run the whole test suite
# (Check unit tests per module + HTTP integration tests against the real
# binary + the real Qdrant/LangChain/OpenAI npm clients against it).  This is the README's test command.
set -eu
cd "$(dirname "$0")/.."
sh deploy/install-deps.sh
sh deploy/build.sh build
# the pinned npm clients for tests/compat (skipped there when this fails,
# e.g. offline; .ci/run makes it required)
sh tests/compat/npm-ci.sh || echo "test.sh: npm ci failed: the compat tests will be skipped" >&2
meson test -C build --print-errorlogs --num-processes "$(nproc)"
