#!/bin/sh
# bench/ann/threads.sh — batch search on 1 vs 2 threads (issue 19 target:
# 2 threads >= 1.85x one), alternating ROUNDS times, same index and queries.
#   flock /work/bench.lock sh bench/ann/threads.sh [BINARY] [INDEX] [EF]
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-build/embedsrv}
idx=${2:-bench/data/ours.hnsw}
ef=${3:-40}
q=bench/data/ann_queries.f32
for r in $(seq 1 "${ROUNDS:-5}"); do
	for t in 1 2; do
		printf 'round %s threads %s: ' "$r" "$t"
		"$bin" index search --index "$idx" --queries "$q" --k 10 --ef "$ef" \
			--threads "$t" --repeat 5 -o /tmp/threads-ids.$$ 2>&1 | grep queries_per_second
	done
done
rm -f /tmp/threads-ids.$$
