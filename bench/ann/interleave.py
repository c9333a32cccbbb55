#!/usr/bin/python3
"""bench/ann/interleave.py — single-thread queries/s of our index and
hnswlib measured alternately (ours, hnswlib, ours, ...) on the indexes and
data left by run.py, so that load from other processes on a shared machine
hits both alike.  Reports the median of R rounds and the ratio.

    nice -n 10 timeout 1200 /usr/bin/python3 bench/ann/interleave.py [--ef 40 80] [--rounds 7]
"""
import argparse, os, statistics, subprocess, sys, time
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, recall, ground_truth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ef", type=int, nargs="+", default=[40, 80])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="hnswlib build threads")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "embedsrv"))
    a = ap.parse_args()
    import hnswlib
    tmp = os.path.join(ROOT, "bench", "data")
    data, qfile = os.path.join(tmp, "ann_base.f32"), os.path.join(tmp, "ann_queries.f32")
    d = 100
    x = np.fromfile(data, dtype=np.float32).reshape(-1, d)
    q = np.fromfile(qfile, dtype=np.float32).reshape(-1, d)
    gt = ground_truth(x, q, 10)
    hpath = os.path.join(tmp, "hnswlib.bin")
    p = hnswlib.Index(space="ip", dim=d)
    if os.path.exists(hpath):
        p.load_index(hpath, max_elements=len(x))
    else:
        p.init_index(max_elements=len(x), M=a.M, ef_construction=a.efc, random_seed=100)
        p.set_num_threads(a.threads)
        p.add_items(x, np.arange(len(x)))
        p.save_index(hpath)
    p.set_num_threads(1)
    ours_idx = os.path.join(tmp, "ours.hnsw")
    out = os.path.join(tmp, "ids_il")
    print("N=%d queries=%d, %d rounds, single thread, alternating (%s)" %
          (len(x), len(q), a.rounds, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("| ef | ours recall | hnswlib recall | ours qps (median) | hnswlib qps (median) | ratio |")
    print("|---|---|---|---|---|---|")
    for ef in a.ef:
        p.set_ef(ef)
        qo, qh = [], []
        for r in range(a.rounds):
            res = subprocess.run([a.binary, "index", "search", "--index", ours_idx, "--queries", qfile,
                                  "--k", "10", "--ef", str(ef), "--threads", "1", "-o", out],
                                 stderr=subprocess.PIPE, text=True, check=True)
            qo.append(float([l.split()[1] for l in res.stderr.splitlines()
                             if l.startswith("queries_per_second")][0]))
            t0 = time.time()
            ids_h, _ = p.knn_query(q, k=10, num_threads=1)
            qh.append(len(q) / (time.time() - t0))
        ids_o = np.fromfile(out, dtype=np.int32).reshape(len(q), 10)
        mo, mh = statistics.median(qo), statistics.median(qh)
        print("| %d | %.4f | %.4f | %.0f | %.0f | %.2fx |" %
              (ef, recall(ids_o, gt), recall(ids_h, gt), mo, mh, mo / mh), flush=True)


if __name__ == "__main__":
    main()
