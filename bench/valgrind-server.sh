#!/bin/sh
# valgrind-server.sh — embedsrv under valgrind memcheck, for ES_BINARY.
#
# The integration tests start whatever ES_BINARY names, so pointing it here
# runs every server (and CLI command) they start under memcheck:
#
#   mkdir -p /tmp/vg && VG_LOG_DIR=/tmp/vg ES_BINARY=$PWD/bench/valgrind-server.sh \
#     ES_SOURCE_ROOT=$PWD ES_BUILD_ROOT=$PWD/build ES_SHARED=$PWD/../shared \
#     python3 tests/integration/test_http.py
#
# One log per process in $VG_LOG_DIR (default /tmp/embedsrv-valgrind),
# vg.<pid>.log; with -q a clean run leaves it empty.  Any memcheck error or
# definite/indirect leak makes the process exit 9 (tests that check the exit
# status fail on it) and fills its log; `find $VG_LOG_DIR -size +0` lists
# them.  A process killed with SIGKILL writes no leak summary.  Startup is
# ~20-50x slower, so tests with tight timing may fail for that reason alone.
#
# VG_BINARY picks the server binary (default build/embedsrv next to this
# script); VG_OPTS adds valgrind options.
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${VG_BINARY:-$here/build/embedsrv}
logs=${VG_LOG_DIR:-/tmp/embedsrv-valgrind}
mkdir -p "$logs"
# shellcheck disable=SC2086
exec valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=9 --log-file="$logs/vg.%p.log" ${VG_OPTS:-} "$bin" "$@"
