#!/bin/sh
# bench/ann/threads.sh — batch search on 1 vs 2 threads (issue 19 target:
# 2 threads >= 1.85x one), alternating ROUNDS times, same index and queries.
#   flock /work/bench.lock sh bench/ann/threads.sh [BINARY] [INDEX] [EF]
# A pass over the 1,000 held-out queries takes 30-50 ms at 2 threads, too
# short to mean anything on a shared VM, so the queries are tiled TILE times
# (default 20: 20,000 queries, about 1 s per pass at one thread), and each
# measurement is the mean rate over REPEAT passes (default 3).  cpu_per_wall
# (CPU seconds per wall second over those passes) shows whether the pool's
# second thread really ran: ~1.0 at one thread, ~2.0 at two.
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-build/embedsrv}
idx=${2:-bench/data/ours.hnsw}
ef=${3:-40}
q=bench/data/ann_queries.f32
tq=/tmp/threads-queries.$$
for i in $(seq 1 "${TILE:-20}"); do cat "$q"; done >"$tq"
out=/tmp/threads-out.$$
for r in $(seq 1 "${ROUNDS:-5}"); do
	for t in 1 2; do
		"$bin" index search --index "$idx" --queries "$tq" --k 10 --ef "$ef" \
			--threads "$t" --repeat "${REPEAT:-3}" -o /tmp/threads-ids.$$ 2>"$out"
		qps=$(awk '$1 == "mean_queries_per_second" {print $2}' "$out")
		cpw=$(awk '$1 == "cpu_per_wall" {print $2}' "$out")
		echo "round $r threads $t: mean_queries_per_second $qps cpu_per_wall $cpw"
		echo "$t $qps" >>/tmp/threads-all.$$
	done
done
awk '{v[$1] = v[$1] " " $2} END {
	for (t = 1; t <= 2; t++) {
		n = split(v[t], a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
		m[t] = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		printf "median threads %d: %.0f q/s\n", t, m[t]
	}
	printf "2 threads / 1 thread (medians): %.2fx\n", m[2] / m[1]
}' /tmp/threads-all.$$
rm -f /tmp/threads-ids.$$ "$tq" "$out" /tmp/threads-all.$$
