#!/usr/bin/python3
"""bench/ann/interleave.py — single-thread queries/s of one or more of our
indexes and hnswlib measured alternately (A, B, ..., hnswlib, A, B, ...) on
the data left by run.py, so that load from other processes on a shared
machine hits all alike.  Reports the median of R rounds per ef, and queries/s
at recall@10 0.95 and 0.99 interpolated between the measured efs (log qps
linear in recall), with ratios to hnswlib.

    flock /work/bench.lock timeout 600 /usr/bin/python3 bench/ann/interleave.py \
        [--ef 10 20 30 40 60 80 120 160] [--rounds 5] \
        [--ours NAME=BINARY:INDEX ...] [--threads-search 1]

--ours defaults to "ours=build/embedsrv:bench/data/ours.hnsw"; give several
to compare variants (two binaries, or two files of the same graph) in the
same run.  Each of our measurements is one `embedsrv index search --repeat
N` (fastest of N passes over the queries, --repeat, default 3); hnswlib's
the fastest of N knn_query calls.  At 20,000-30,000 q/s a pass over 1,000
queries is 30-50 ms: use --repeat 10 or more for figures to quote.
"""
import argparse, math, os, statistics, subprocess, sys, time
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, recall, ground_truth, best_qps


def at_recall(points, target):
    """qps at recall `target` from [(recall, qps)] sorted by ef, or None."""
    for (r0, q0), (r1, q1) in zip(points, points[1:]):
        if r0 <= target <= r1 and r1 > r0:
            t = (target - r0) / (r1 - r0)
            return math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0)))
    if points and points[0][0] >= target:
        return points[0][1]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ef", type=int, nargs="+", default=[10, 20, 30, 40, 60, 80, 120, 160])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3,
                    help="passes per measurement (ours --repeat N, hnswlib N knn_query calls); "
                         "the fastest counts")
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="hnswlib build threads")
    ap.add_argument("--threads-search", type=int, default=1)
    ap.add_argument("--ours", action="append", default=[],
                    help="NAME=BINARY:INDEX (repeatable)")
    ap.add_argument("--no-hnswlib", action="store_true")
    ap.add_argument("--base", default="ann_base.f32")
    ap.add_argument("--queries", default="ann_queries.f32")
    ap.add_argument("--hnswlib-index", default="hnswlib.bin")
    a = ap.parse_args()
    tmp = os.path.join(ROOT, "bench", "data")
    if not a.ours:
        a.ours = ["ours=%s:%s" % (os.path.join(ROOT, "build", "embedsrv"),
                                  os.path.join(tmp, "ours.hnsw"))]
    ours = []
    for spec in a.ours:
        name, rest = spec.split("=", 1)
        binary, idx = rest.split(":", 1)
        ours.append((name, binary, idx))
    data, qfile = os.path.join(tmp, a.base), os.path.join(tmp, a.queries)
    d = 100
    x = np.fromfile(data, dtype=np.float32).reshape(-1, d)
    q = np.fromfile(qfile, dtype=np.float32).reshape(-1, d)
    gt = ground_truth(x, q, 10)
    names = [o[0] for o in ours]
    p = None
    T = a.threads_search
    if not a.no_hnswlib:
        import hnswlib
        hpath = os.path.join(tmp, a.hnswlib_index)
        p = hnswlib.Index(space="ip", dim=d)
        if os.path.exists(hpath):
            p.load_index(hpath, max_elements=len(x))
        else:
            p.init_index(max_elements=len(x), M=a.M, ef_construction=a.efc, random_seed=100)
            p.set_num_threads(a.threads)
            p.add_items(x, np.arange(len(x)))
            p.save_index(hpath)
        p.set_num_threads(T)
        names.append("hnswlib")
    out = os.path.join(tmp, "ids_il")
    print("N=%d queries=%d, %d rounds, %d search thread(s), alternating (%s)\n" %
          (len(x), len(q), a.rounds, T, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("| ef | " + " | ".join("%s recall / qps" % n for n in names) + " |")
    print("|---|" + "---|" * len(names))
    curve = {n: [] for n in names}
    per_round = {n: [[] for _ in range(a.rounds)] for n in names}
    for ef in a.ef:
        qps = {n: [] for n in names}
        rec = {}
        for r in range(a.rounds):
            for name, binary, idx in ours:
                res = subprocess.run([binary, "index", "search", "--index", idx, "--queries", qfile,
                                      "--k", "10", "--ef", str(ef), "--threads", str(T),
                                      "--repeat", str(a.repeat), "-o", out],
                                     stderr=subprocess.PIPE, text=True, check=True)
                qps[name].append(float([l.split()[1] for l in res.stderr.splitlines()
                                        if l.startswith("queries_per_second")][0]))
                if r == 0:
                    rec[name] = recall(np.fromfile(out, dtype=np.int32).reshape(len(q), 10), gt)
            if p is not None:
                p.set_ef(ef)
                ids_h, best = best_qps(p, q, T, a.repeat)
                qps["hnswlib"].append(best)
                rec["hnswlib"] = recall(ids_h, gt)
        cells = []
        for n in names:
            m = statistics.median(qps[n])
            curve[n].append((rec[n], m))
            for r in range(a.rounds):
                per_round[n][r].append((rec[n], qps[n][r]))
            cells.append("%.4f / %.0f (%.0f-%.0f)" % (rec[n], m, min(qps[n]), max(qps[n])))
        print("| %d | %s |" % (ef, " | ".join(cells)), flush=True)
    print()
    for target in (0.95, 0.99):
        ref = at_recall(curve["hnswlib"], target) if p is not None else None
        for n in names:
            v = at_recall(curve[n], target)
            if v is None:
                print("%s: recall %.2f not reached" % (n, target))
            elif ref:
                print("%s: %.0f q/s at recall@10 %.2f -> %.2fx hnswlib" % (n, v, target, v / ref))
            else:
                print("%s: %.0f q/s at recall@10 %.2f" % (n, v, target))
    # Spread: the same interpolation on each round's own curve (round r of
    # every variant and of hnswlib ran back to back), so a ratio per round.
    if p is not None:
        for target in (0.95, 0.99):
            for n in names[:-1]:
                rs = []
                for r in range(a.rounds):
                    v = at_recall(per_round[n][r], target)
                    ref = at_recall(per_round["hnswlib"][r], target)
                    if v and ref:
                        rs.append(v / ref)
                if rs:
                    print("%s / hnswlib at %.2f per round: median %.2fx, min %.2fx, max %.2fx (%s)" %
                          (n, target, statistics.median(rs), min(rs), max(rs),
                           " ".join("%.2f" % x for x in rs)))
    if len(names) > 2:
        for target in (0.95, 0.99):
            for n in names[1:-1] if p is not None else names[1:]:
                rs = [at_recall(per_round[n][r], target) / at_recall(per_round[names[0]][r], target)
                      for r in range(a.rounds)
                      if at_recall(per_round[n][r], target) and at_recall(per_round[names[0]][r], target)]
                if rs:
                    print("%s / %s at %.2f per round: median %.2fx, min %.2fx, max %.2fx" %
                          (n, names[0], target, statistics.median(rs), min(rs), max(rs)))


if __name__ == "__main__":
    main()
