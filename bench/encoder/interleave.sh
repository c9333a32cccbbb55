#!/bin/sh
# bench/encoder/interleave.sh BEFORE_BIN AFTER_BIN [ROUNDS] — one thread,
# two builds of bench_encoder and the PyTorch peer taking turns (one
# repeat each per round), then the median per configuration over the
# rounds.  On a machine shared with other jobs the load drifts over
# minutes; alternating puts all three under the same drift, which
# back-to-back runs of run.sh do not.
#   BEFORE_BIN / AFTER_BIN: bench_encoder binaries as run.sh builds them
#   (bench/out/bench_encoder), e.g. one from a `git worktree` of the old
#   commit.  Uses the model run.sh writes (bench/out/minilm-random).
set -eu
cd "$(dirname "$0")/../.."
before=$1
after=$2
rounds=${3:-5}
model=bench/out/minilm-random
out=bench/out/interleave.jsonl
[ -f "$model/model.safetensors" ] || /usr/bin/python3 bench/encoder/make_model.py "$model"
: > "$out"
for r in $(seq "$rounds"); do
	"$before" "$model" bench/out 1 1 | sed 's/"embedsrv"/"before"/' >> "$out"
	"$after" "$model" bench/out 1 1 | sed 's/"embedsrv"/"after"/' >> "$out"
	/usr/bin/python3 bench/encoder/torch_peer.py "$model" bench/out 1 1 >> "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import collections, json, statistics, sys
wall, cpu = collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith("{"):
        r = json.loads(line)
        k = (r["impl"], r["batch"], str(r["tokens"]))
        wall[k].append(r["median_s"] * 1e3)
        cpu[k].append(r["median_cpu_s"] * 1e3)
med = lambda d, *k: statistics.median(d[k])
print("\n| batch | tokens/text | before ms | after ms | PyTorch ms | after vs before | after vs PyTorch (wall) | after vs PyTorch (CPU time) | before vs PyTorch (wall) |")
print("|---|---|---|---|---|---|---|---|---|")
for b, t in [(1, "8"), (1, "32"), (1, "128"), (32, "8"), (32, "32"), (32, "128"), (32, "mixed")]:
    B, A, P = med(wall, "before", b, t), med(wall, "after", b, t), med(wall, "pytorch", b, t)
    Ac, Pc = med(cpu, "after", b, t), med(cpu, "pytorch", b, t)
    print("| %d | %s | %.2f | %.2f | %.2f | %.2fx | %.2fx | %.2fx | %.2fx |" % (
        b, t, B, A, P, B / A, P / A, Pc / Ac, P / B))
PY
