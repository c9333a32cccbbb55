#!/bin/sh
# bench/encoder/threads.sh [ROUNDS] — two-thread scaling of the encoder on
# batches of 32 (8 / 32 / 128 tokens, mixed): one thread; two threads with
# the batch cut into one run of texts per thread (core/bert's row split);
# two threads with every product split by columns instead
# (EMBEDSRV_ROW_SPLIT_TOKENS=1000000), taking turns ROUNDS times (default 2).
# One JSON line per configuration (bench_encoder's, with "mode" added);
# compare wall texts/s for the speed-up and median_cpu_s for the work each
# split adds.  Build first: sh bench/encoder/build_bench.sh.
set -eu
cd "$(dirname "$0")/../.."
m=bench/out/minilm-random
lscpu | grep -E '^(Model name|CPU family|Model):' | tr -s ' '
echo "load: $(uptime | sed 's/.*load average: //')"
for r in $(seq 1 "${1:-2}"); do
	bench/out/bench_encoder $m bench/out 1 3 32 8,32,128,0 | sed 's/^{/{"mode":"t1",/'
	bench/out/bench_encoder $m bench/out 2 3 32 8,32,128,0 | sed 's/^{/{"mode":"t2-rows",/'
	EMBEDSRV_ROW_SPLIT_TOKENS=1000000 bench/out/bench_encoder $m bench/out 2 3 32 8,32,128,0 |
		sed 's/^{/{"mode":"t2-cols",/'
done
echo "load: $(uptime | sed 's/.*load average: //')"
