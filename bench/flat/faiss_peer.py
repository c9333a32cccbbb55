#!/usr/bin/python3
"""faiss_peer.py BASE QUERIES K REPS BATCHES THREADS [LABELS_OUT] -- the
FAISS IndexFlatIP side of the exact-search benchmark, with the same
protocol and output as bench_flat (see bench/flat/bench_flat.c):

  batch 1: one repetition = 100 single-query index.search calls in a row;
  batch B: one repetition = index.search on the first B queries at once;
  one JSON line per (threads, batch) with the medians over REPS repetitions
  of the wall time and of the process CPU time.

Threads: faiss.omp_set_num_threads(T) for FAISS's own loops; OpenBLAS (the
sgemm FAISS uses from 20 queries on) reads OPENBLAS_NUM_THREADS at load
time, so run one thread count per process with that variable set (the
driver bench/flat/run.py does)."""
import json
import struct
import sys
import time

import numpy as np
import faiss

NSEQ = 100


def read_esbv(path):
    with open(path, "rb") as f:
        hdr = f.read(12)
        if len(hdr) != 12 or hdr[:4] != b"ESBV":
            sys.exit("%s: not an ESBV vector file" % path)
        n, d = struct.unpack("<II", hdr[4:])
        x = np.fromfile(f, dtype="<f4", count=n * d)
        if x.size != n * d:
            sys.exit("%s: truncated" % path)
        return x.reshape(n, d)


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    base, qs = read_esbv(sys.argv[1]), read_esbv(sys.argv[2])
    k, reps = int(sys.argv[3]), int(sys.argv[4])
    batches = [int(b) for b in sys.argv[5].split(",")]
    threads = [int(t) for t in sys.argv[6].split(",")]
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    for t in threads:
        faiss.omp_set_num_threads(t)
        for b in batches:
            per_rep = NSEQ if b == 1 else b
            times, cpus = [], []
            for r in range(reps + 1):  # first one is a warm-up
                t0, c0 = time.perf_counter(), time.process_time()
                if b == 1:
                    for i in range(NSEQ):
                        index.search(qs[i:i + 1], k)
                else:
                    index.search(qs[:b], k)
                if r:
                    times.append(time.perf_counter() - t0)
                    cpus.append(time.process_time() - c0)
            med, cmed = float(np.median(times)), float(np.median(cpus))
            print(json.dumps({"impl": "faiss", "threads": t, "batch": b,
                              "n": base.shape[0], "d": base.shape[1], "k": k,
                              "reps": reps, "median_s": round(med, 6),
                              "qps": round(per_rep / med, 1),
                              "cpu_s": round(cmed, 6),
                              "q_per_cpu_s": round(per_rep / cmed, 1),
                              "faiss": faiss.__version__}), flush=True)
    if len(sys.argv) > 7:
        _, labels = index.search(qs[:max(batches)], k)
        labels.astype("<i8").tofile(sys.argv[7])


if __name__ == "__main__":
    main()
