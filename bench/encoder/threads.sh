#!/bin/sh
# bench/encoder/threads.sh [ROUNDS] — two-thread scaling of the encoder on
# batches of 32 (8 / 32 / 128 tokens, mixed): one thread; two threads with
# the batch cut into one run of texts per thread (core/bert's row split);
# two threads with every product split by columns instead
# (EMBEDSRV_ROW_SPLIT_TOKENS=1000000), taking turns ROUNDS times (default 2).
# One JSON line per configuration (bench_encoder's, with "mode" added);
# compare wall texts/s for the speed-up and median_cpu_s for the work each
# split adds.  REPEATS (default 3) timed batches per shape and run;
# NO_COLS=1 skips the column split.  After each round it names the other
# runnable processes not at nice 19.  Build first:
# sh bench/encoder/build_bench.sh.
set -eu
cd "$(dirname "$0")/../.."
m=bench/out/minilm-random
lscpu | grep -E '^(Model name|CPU family|Model):' | tr -s ' '
echo "load: $(uptime | sed 's/.*load average: //')"
reps=${REPEATS:-3}
# processes other than ours running at nice < 19 (they take a core from a
# two-thread run on a small shared machine: a round where one did shows
# the two-thread wall time equal to its CPU time)
others() {
	ps -eo pid=,ni=,stat=,comm= | awk -v me=$$ '$2 < 19 && $3 ~ /^R/ && $4 != "ps" && $4 != "awk" && $1 != me { printf "%s(ni %s) ", $4, $2 }'
}
for r in $(seq 1 "${1:-2}"); do
	bench/out/bench_encoder $m bench/out 1 "$reps" 32 8,32,128,0 | sed 's/^{/{"mode":"t1",/'
	bench/out/bench_encoder $m bench/out 2 "$reps" 32 8,32,128,0 | sed 's/^{/{"mode":"t2-rows",/'
	[ -n "${NO_COLS:-}" ] || EMBEDSRV_ROW_SPLIT_TOKENS=1000000 bench/out/bench_encoder $m bench/out 2 "$reps" 32 8,32,128,0 |
		sed 's/^{/{"mode":"t2-cols",/'
	echo "round $r: other runnable processes at nice < 19: $(others)"
done
echo "load: $(uptime | sed 's/.*load average: //')"
