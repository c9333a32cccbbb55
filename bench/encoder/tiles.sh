#!/bin/sh
# bench/encoder/tiles.sh [REPEATS] — texts/s of the encoder on one thread
# with each GEMM tile shape this CPU runs (EMBEDSRV_GEMM_TILE, core/gemm.h),
# batch 32 at 8 / 32 / 128 tokens and mixed, plus one 8-token text; AVX2
# tiles run with EMBEDSRV_SIMD=avx2.  Tiles take turns REPEATS rounds
# (default 3) so a shared machine's load hits them alike; prints the median
# per tile and shape, with lscpu's model name and family, and which tile
# this CPU picks by default.  TILES="a b" narrows the list.
set -eu
cd "$(dirname "$0")/../.."
reps=${1:-3}
model=bench/out/minilm-random
sh bench/encoder/build_bench.sh
[ -f "$model/model.safetensors" ] || /usr/bin/python3 bench/encoder/make_model.py "$model"
all="avx512-12x32 avx512-14x32 avx512-8x32 avx512-4x32 avx2-6x16 avx2-4x16"
grep -qw avx512f /proc/cpuinfo || all="avx2-6x16 avx2-4x16"
out=bench/out/tiles.jsonl
: > "$out"
for r in $(seq 1 "$reps"); do
	for t in ${TILES:-$all}; do
		simd=avx512; case $t in avx2-*) simd=avx2 ;; esac
		EMBEDSRV_SIMD=$simd EMBEDSRV_GEMM_TILE=$t bench/out/bench_encoder "$model" bench/out 1 1 1,32 8,32,128,0 >> "$out"
	done
done
lscpu | grep -E '^(Model name|CPU family|Model):' | tr -s ' '
echo "load: $(uptime | sed 's/.*load average: //')"
/usr/bin/python3 - "$out" <<'PY'
import collections, json, statistics, sys
runs = collections.defaultdict(list)
for l in open(sys.argv[1]):
    r = json.loads(l)
    runs[(r["tile"], r["batch"], str(r["tokens"]))].append((r["texts_per_s"], r["median_cpu_s"]))
shapes = sorted({k[1:] for k in runs}, key=lambda s: (s[0], s[1] == "mixed", int(s[1]) if s[1] != "mixed" else 0))
print("\n| tile | " + " | ".join("%d x %s" % s for s in shapes) + " |")
print("|---|" + "---|" * len(shapes))
for t in dict.fromkeys(k[0] for k in runs):
    print("| %s | " % t + " | ".join("%.1f (%.1f)" % (statistics.median(x[0] for x in runs[(t,) + s]),
          s[0] / statistics.median(x[1] for x in runs[(t,) + s])) for s in shapes) + " |")
print("\ntexts/s: median wall (median CPU-time) over the rounds")
PY
