#!/usr/bin/python3
"""run.py -- exact search, embedsrv (index/flat, metric dot) vs FAISS
IndexFlatIP, on the same vectors in the same run.  Called by bench/flat.sh.

Makes the data once (make_data.py), then for each round and each thread
count runs bench_flat and faiss_peer.py back to back (alternating which
goes first), each reporting medians over REPS repetitions per batch size of the wall
time and of the process CPU time; the table shows the median over rounds
of those medians and the ratios embedsrv / FAISS (> 1: embedsrv faster) in
queries per wall second and queries per CPU second (the CPU figure is the
stable one on a shared machine; the wall figure is what a user sees and
the only one that shows a gain from a second thread).  Also checks
that both return the same neighbours for the largest batch.

usage: run.py [--n 100000] [--d 100] [--nq 1000] [--k 10] [--reps 5]
              [--rounds 3] [--threads 1,2] [--batches 1,1000]
              [--bin build/bench/bench_flat] [--out bench/out/flat]"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (res.returncode, " ".join(cmd), res.stderr))
    return [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,1000")
    ap.add_argument("--bin", default="build/bench/bench_flat")
    ap.add_argument("--out", default="bench/out/flat")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    base, queries = os.path.join(a.out, "base.esbv"), os.path.join(a.out, "queries.esbv")
    nq = max(a.nq, max(int(b) for b in a.batches.split(",")), 100)
    subprocess.run([sys.executable, os.path.join(HERE, "make_data.py"), a.out,
                    str(a.n), str(a.d), str(nq)], check=True)
    print("# exact search: n=%d d=%d k=%d, %d rounds x %d reps; %s, %d CPUs, "
          "load average at start %s" % (a.n, a.d, a.k, a.rounds, a.reps,
                                        platform.processor() or platform.machine(),
                                        os.cpu_count(), loadavg()), flush=True)
    qps = {}
    ours_l, faiss_l = os.path.join(a.out, "ours.i64"), os.path.join(a.out, "faiss.i64")
    for rnd in range(a.rounds):
        for t in a.threads.split(","):
            ours = ([a.bin, base, queries, str(a.k), str(a.reps), a.batches, t]
                    + ([ours_l] if rnd == 0 else []), {})
            peer = ([sys.executable, os.path.join(HERE, "faiss_peer.py"), base, queries,
                     str(a.k), str(a.reps), a.batches, t] + ([faiss_l] if rnd == 0 else []),
                    {"OPENBLAS_NUM_THREADS": t, "OMP_NUM_THREADS": t})
            for cmd, env in ((ours, peer) if rnd % 2 == 0 else (peer, ours)):
                for r in run(cmd, env):
                    qps.setdefault((r["impl"], r["threads"], r["batch"]), []).append(
                        (r["qps"], r["q_per_cpu_s"]))
                    print("round %d %s" % (rnd, json.dumps(r)), flush=True)
    print("# load average at end %s" % loadavg())
    print()
    print("| threads | batch | embedsrv q/s | FAISS q/s | ratio (wall) "
          "| embedsrv q/CPU-s | FAISS q/CPU-s | ratio (CPU) |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|")
    for t in a.threads.split(","):
        for b in a.batches.split(","):
            o = qps[("embedsrv", int(t), int(b))]
            f = qps[("faiss", int(t), int(b))]
            ow, fw = statistics.median(x[0] for x in o), statistics.median(x[0] for x in f)
            oc, fc = statistics.median(x[1] for x in o), statistics.median(x[1] for x in f)
            print("| %s | %s | %.0f | %.0f | %.2fx | %.0f | %.0f | %.2fx |"
                  % (t, b, ow, fw, ow / fw, oc, fc, oc / fc))
    bmax = max(int(b) for b in a.batches.split(","))
    lo = np.fromfile(ours_l, dtype="<i8").reshape(bmax, a.k)
    lf = np.fromfile(faiss_l, dtype="<i8").reshape(bmax, a.k)
    same = sum(len(set(lo[i]) & set(lf[i])) for i in range(bmax))
    exact = int((lo == lf).all(axis=1).sum())
    print()
    print("same neighbours as FAISS (batch of %d, k=%d): %.4f of labels; "
          "%d/%d queries identical in order" % (bmax, a.k, same / (bmax * a.k), exact, bmax))


if __name__ == "__main__":
    main()
