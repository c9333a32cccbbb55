#!/bin/sh
# bench/encoder/build_bench.sh — build embedsrv (deploy/build.sh) and
# bench/out/bench_encoder against its core library, and bench/out/fma_peak
# (the CPU's FP32 FMA peak); run.sh and tiles.sh
# call it from the repository root.  The build runs under nice -n 19 (it
# must not compete with a benchmark already holding the machine); its
# output goes to bench/out/build.log, and when it fails the log's tail is
# printed and the script stops with the build's status, so a broken build
# is never benchmarked silently with a stale binary.
set -eu
cd "$(dirname "$0")/../.."
mkdir -p bench/out
log=bench/out/build.log
if ! nice -n 19 sh deploy/build.sh >"$log" 2>&1; then
	echo "build_bench.sh: deploy/build.sh failed; last lines of $log:" >&2
	tail -n 40 "$log" >&2
	exit 1
fi
if ! nice -n 19 cc -O2 -std=c11 -D_GNU_SOURCE -Icore -Ibuild/core $(pkg-config --cflags openblas) \
	bench/encoder/bench_encoder.c build/core/libes_core.a \
	$(pkg-config --libs openblas jansson libutf8proc) -lm -lpthread \
	-o bench/out/bench_encoder; then
	echo "build_bench.sh: compiling bench/encoder/bench_encoder.c failed" >&2
	exit 1
fi
nice -n 19 cc -O2 -std=c11 -pthread bench/encoder/fma_peak.c -o bench/out/fma_peak ||
	{ echo "build_bench.sh: compiling bench/encoder/fma_peak.c failed" >&2; exit 1; }
