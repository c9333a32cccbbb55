#!/bin/sh
# kernels.sh [REPS] — ns per dot product for every SIMD path this CPU runs
# against OpenBLAS cblas_sdot, single thread, same run (bench/kernels).
set -eu
cd "$(dirname "$0")/.."
sh deploy/install-deps.sh
sh deploy/build.sh build >/dev/null
exec nice -n 10 timeout 900 ./build/bench/bench_kernels "$@"
