#!/bin/sh
# test_index.sh — `embedsrv index build|search` end to end: build a small
# clustered file, search held-out queries, compare the ids with exact
# nearest neighbours computed here (python3 standard library only).
set -eu
bin=${ES_BINARY:?ES_BINARY not set}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - "$tmp" <<'PY'
import random, struct, sys
d, n, nq, k = 12, 2000, 100, 10
rnd = random.Random(5)
cent = [[rnd.gauss(0, 1) for _ in range(d)] for _ in range(25)]
def point():
    c = rnd.choice(cent)
    return [x + rnd.gauss(0, 0.3) for x in c]
base = [point() for _ in range(n)]
qs = [point() for _ in range(nq)]
t = sys.argv[1]
with open(t + "/base.f32", "wb") as f:
    for r in base: f.write(struct.pack("<%df" % d, *r))
with open(t + "/base.fvecs", "wb") as f:
    for r in base: f.write(struct.pack("<i%df" % d, d, *r))
with open(t + "/q.f32", "wb") as f:
    for r in qs: f.write(struct.pack("<%df" % d, *r))
for metric in ("l2", "dot", "cosine"):
    def score(q, x):
        if metric == "l2": return -sum((a - b) ** 2 for a, b in zip(q, x))
        dp = sum(a * b for a, b in zip(q, x))
        if metric == "dot": return dp
        return dp / (sum(a * a for a in x) ** 0.5)
    with open(t + "/truth." + metric, "w") as f:
        for q in qs:
            ids = sorted(range(n), key=lambda i: -score(q, base[i]))[:k]
            f.write(" ".join(map(str, ids)) + "\n")
PY

check() { # metric ids-file min-recall
	python3 - "$tmp/truth.$1" "$2" "$3" <<'PY'
import struct, sys
truth = [list(map(int, l.split())) for l in open(sys.argv[1])]
raw = open(sys.argv[2], "rb").read()
k = 10
assert len(raw) == 4 * k * len(truth), "ids file has %d bytes" % len(raw)
ids = struct.unpack("<%di" % (len(raw) // 4), raw)
hit = 0
for qi, t in enumerate(truth):
    got = ids[qi * k:(qi + 1) * k]
    assert len(set(got)) == k, "duplicate ids in query %d" % qi
    hit += len(set(got) & set(t))
r = hit / (k * len(truth))
print("recall@10 %.4f" % r)
sys.exit(0 if r >= float(sys.argv[3]) else 1)
PY
}

for metric in l2 dot cosine; do
	"$bin" index build --input "$tmp/base.f32" --dim 12 --metric $metric \
		--threads 2 -o "$tmp/$metric.hnsw" 2>"$tmp/build.err" ||
		fail "build $metric: $(cat "$tmp/build.err")"
	grep -q '^build_seconds ' "$tmp/build.err" || fail "build: no seconds"
	grep -q '^index_bytes [0-9]' "$tmp/build.err" || fail "build: no bytes"
	"$bin" index search --index "$tmp/$metric.hnsw" --queries "$tmp/q.f32" \
		--k 10 --ef 64 --threads 2 -o "$tmp/ids" 2>"$tmp/search.err" ||
		fail "search $metric: $(cat "$tmp/search.err")"
	grep -q '^queries_per_second [0-9]' "$tmp/search.err" || fail "search: no qps"
	check $metric "$tmp/ids" 0.97 || fail "$metric: recall too low"
done

# .fvecs input (dimension from the file), int8, single thread, seeded
"$bin" index build --input "$tmp/base.fvecs" --metric l2 --quantize int8 \
	--M 12 --ef-construction 100 --threads 1 --seed 9 -o "$tmp/q8.hnsw" 2>/dev/null ||
	fail "build fvecs int8"
"$bin" index search --index "$tmp/q8.hnsw" --queries "$tmp/q.f32" --ef 128 \
	-o "$tmp/ids8" 2>/dev/null || fail "search int8"
check l2 "$tmp/ids8" 0.9 || fail "int8: recall too low"
# same seed, one thread: identical file
"$bin" index build --input "$tmp/base.fvecs" --metric l2 --quantize int8 \
	--M 12 --ef-construction 100 --threads 1 --seed 9 -o "$tmp/q8b.hnsw" 2>/dev/null
cmp -s "$tmp/q8.hnsw" "$tmp/q8b.hnsw" || fail "seeded single-thread build not deterministic"

# errors: usage is 2, bad input is 1 with a message naming the file
set +e
"$bin" index build --input "$tmp/base.f32" -o "$tmp/x" 2>/dev/null; [ $? -eq 2 ] || fail "missing --dim not a usage error"
"$bin" index build --input "$tmp/base.f32" --dim 7 -o "$tmp/x" 2>"$tmp/err"; [ $? -eq 1 ] || fail "bad dim accepted"
grep -q "base.f32" "$tmp/err" || fail "bad size message does not name the file"
"$bin" index build --input "$tmp/base.f32" --dim 12 --metric foo -o "$tmp/x" 2>/dev/null; [ $? -eq 2 ] || fail "bad metric"
head -c 1000 "$tmp/l2.hnsw" > "$tmp/trunc.hnsw"
"$bin" index search --index "$tmp/trunc.hnsw" --queries "$tmp/q.f32" -o "$tmp/x" 2>"$tmp/err"; [ $? -eq 1 ] || fail "truncated index accepted"
grep -q "truncated" "$tmp/err" || fail "truncated index: $(cat "$tmp/err")"
"$bin" index bogus 2>/dev/null; [ $? -eq 2 ] || fail "unknown subcommand"
set -e
echo "index: all passed"
