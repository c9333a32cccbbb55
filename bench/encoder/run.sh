#!/bin/sh
# bench/encoder/run.sh [REPEATS] — embedsrv's BERT encoder vs a PyTorch CPU
# forward and an ONNX Runtime CPU session of the same weights, same threads,
# same inputs, same run.
#   1. builds embedsrv (deploy/build.sh) and bench_encoder against its core;
#   2. writes a random-weight model of all-MiniLM-L6-v2's shape (make_model.py)
#      and its ONNX export (export_onnx.py: torch.onnx.export of
#      torch_peer.py's forward, dynamic batch and sequence axes);
#   3. installs onnxruntime-node as pinned by package-lock.json
#      (npm ci --ignore-scripts: the install script only fetches GPU
#      binaries; the linux-x64 CPU runtime ships in the package);
#   4. for THREADS in 1 2: runs bench_encoder, torch_peer.py, ort_peer.js
#      (ONNX Runtime intra-op threads = THREADS, inter-op 1);
#   5. prints a markdown table (texts/s, medians of REPEATS runs; batch-1
#      rows use 10 x REPEATS) with the ratios embedsrv / PyTorch and
#      embedsrv / ONNX Runtime, wall and CPU time, and lscpu's CPU.
# Both peers check their 32 x 32-token embeddings against embedsrv's.
# Needs: sh deploy/install-deps.sh bench/packages.txt (python3-numpy,
# python3-torch, nodejs).  Uses /usr/bin/python3 (Debian's, which has torch).
# THREADS="1" (default "1 2") narrows a run to fit a short benchmark slot.
# EMBEDSRV_SIMD=avx2 (or scalar) in the environment measures that path,
# EMBEDSRV_GEMM_TILE=NAME one tile shape (core/gemm.h; tiles.sh compares
# them all).
set -eu
cd "$(dirname "$0")/../.."
reps=${1:-5}
out=bench/out
model=$out/minilm-random
mkdir -p "$out"
sh bench/encoder/build_bench.sh
[ -f "$model/model.safetensors" ] || /usr/bin/python3 bench/encoder/make_model.py "$model"
[ -f "$model.onnx" ] || /usr/bin/python3 bench/encoder/export_onnx.py "$model" "$model.onnx" 2>/dev/null
[ -d bench/encoder/node_modules/onnxruntime-node ] ||
	(cd bench/encoder && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
: > "$out/encoder.jsonl"
for t in ${THREADS:-1 2}; do
	"$out/bench_encoder" "$model" "$out" "$t" "$reps" | tee -a "$out/encoder.jsonl"
	/usr/bin/python3 bench/encoder/torch_peer.py "$model" "$out" "$t" "$reps" | tee -a "$out/encoder.jsonl"
	node bench/encoder/ort_peer.js "$model.onnx" "$out" "$t" "$reps" | tee -a "$out/encoder.jsonl"
done
echo
lscpu | grep -E '^(Model name|CPU family|Model):' | tr -s ' '
echo "AVX-512F: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no); EMBEDSRV_SIMD=${EMBEDSRV_SIMD:-auto}; tile $(sed -n 's/.*"tile":"\([^"]*\)".*/\1/p' "$out/encoder.jsonl" | sort -u | tr '\n' ' ')"

/usr/bin/python3 - "$out/encoder.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
key = lambda r: (r["threads"], r["batch"], str(r["tokens"]))
c = {key(r): r for r in rows if r["impl"] == "embedsrv"}
p = {key(r): r for r in rows if r["impl"] == "pytorch"}
o = {key(r): r for r in rows if r["impl"] == "onnxruntime"}
print("\n| threads | batch | tokens/text | embedsrv texts/s | PyTorch texts/s | ORT texts/s "
      "| vs PyTorch (wall) | vs ORT (wall) | vs PyTorch (CPU) | vs ORT (CPU) |")
print("|---|---|---|---|---|---|---|---|---|---|")
ratio = lambda x, y, f: "%.2fx" % f(x, y) if y else "-"
for k in c:
    a, b, q = c[k], p.get(k), o.get(k)
    print("| %d | %d | %s | %.1f | %s | %s | %s | %s | %s | %s |" % (
        k[0], k[1], k[2], a["texts_per_s"],
        "%.1f" % b["texts_per_s"] if b else "-", "%.1f" % q["texts_per_s"] if q else "-",
        ratio(a, b, lambda x, y: x["texts_per_s"] / y["texts_per_s"]),
        ratio(a, q, lambda x, y: x["texts_per_s"] / y["texts_per_s"]),
        ratio(a, b, lambda x, y: y["median_cpu_s"] / x["median_cpu_s"]),
        ratio(a, q, lambda x, y: y["median_cpu_s"] / x["median_cpu_s"])))
for impl in ("pytorch", "onnxruntime"):
    d = [r["max_abs_diff_vs_embedsrv"] for r in rows
         if r["impl"] == impl and "max_abs_diff_vs_embedsrv" in r]
    if d:
        print("\nmax |embedsrv - %s| over the 32 x 32-token embeddings: %.2g%s" % (
            impl, max(d), "" if max(d) <= 1e-5 else "  ** over 1e-5 **"))
PY
