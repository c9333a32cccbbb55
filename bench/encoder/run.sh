#!/bin/sh
# bench/encoder/run.sh [REPEATS] — embedsrv's BERT encoder vs a PyTorch CPU
# forward of the same weights, same threads, same run.
#   1. builds embedsrv (deploy/build.sh) and bench_encoder against its core;
#   2. writes a random-weight model of all-MiniLM-L6-v2's shape (make_model.py);
#   3. for THREADS in 1 2: runs bench_encoder, then torch_peer.py;
#   4. prints a markdown table (texts/s, medians of REPEATS runs; batch-1
#      rows use 10 x REPEATS) with the ratio embedsrv / PyTorch.
# Needs: sh deploy/install-deps.sh bench/packages.txt (python3-numpy,
# python3-torch).  Uses /usr/bin/python3 (Debian's, which has torch).
set -eu
cd "$(dirname "$0")/../.."
reps=${1:-5}
out=bench/out
model=$out/minilm-random
mkdir -p "$out"
sh deploy/build.sh >/dev/null
cc -O2 -std=c11 -D_GNU_SOURCE -Icore -Ibuild/core $(pkg-config --cflags openblas) \
	bench/encoder/bench_encoder.c build/core/libes_core.a \
	$(pkg-config --libs openblas jansson libutf8proc) -lm -lpthread \
	-o "$out/bench_encoder"
[ -f "$model/model.safetensors" ] || /usr/bin/python3 bench/encoder/make_model.py "$model"
: > "$out/encoder.jsonl"
for t in 1 2; do
	"$out/bench_encoder" "$model" "$out" "$t" "$reps" | tee -a "$out/encoder.jsonl"
	/usr/bin/python3 bench/encoder/torch_peer.py "$model" "$out" "$t" "$reps" | tee -a "$out/encoder.jsonl"
done
/usr/bin/python3 - "$out/encoder.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
key = lambda r: (r["threads"], r["batch"], str(r["tokens"]))
c = {key(r): r for r in rows if r["impl"] == "embedsrv"}
p = {key(r): r for r in rows if r["impl"] == "pytorch"}
print("\n| threads | batch | tokens/text | embedsrv texts/s | PyTorch texts/s | ratio (wall) | embedsrv ms/batch | PyTorch ms/batch | ratio (CPU time) |")
print("|---|---|---|---|---|---|---|---|---|")
for k in c:
    a, b = c[k], p.get(k)
    if not b:
        continue
    print("| %d | %d | %s | %.1f | %.1f | %.2fx | %.2f | %.2f | %.2fx |" % (
        k[0], k[1], k[2], a["texts_per_s"], b["texts_per_s"],
        a["texts_per_s"] / b["texts_per_s"], a["median_s"] * 1e3, b["median_s"] * 1e3,
        b["median_cpu_s"] / a["median_cpu_s"]))
d = [r.get("max_abs_diff_vs_embedsrv") for r in rows if "max_abs_diff_vs_embedsrv" in r]
if d:
    print("\nmax |embedsrv - PyTorch| over the 32 x 32-token embeddings: %.2g" % max(d))
PY
