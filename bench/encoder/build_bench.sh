#!/bin/sh
# bench/encoder/build_bench.sh — build embedsrv (deploy/build.sh) and
# bench/out/bench_encoder against its core library; run.sh and tiles.sh
# call it from the repository root.
set -eu
sh deploy/build.sh >/dev/null
mkdir -p bench/out
cc -O2 -std=c11 -D_GNU_SOURCE -Icore -Ibuild/core $(pkg-config --cflags openblas) \
	bench/encoder/bench_encoder.c build/core/libes_core.a \
	$(pkg-config --libs openblas jansson libutf8proc) -lm -lpthread \
	-o bench/out/bench_encoder
