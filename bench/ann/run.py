#!/usr/bin/python3
"""bench/ann/run.py — embedsrv's HNSW against hnswlib and FAISS IndexHNSWFlat.

Same vectors, same M / ef_construction / thread count, same run.  Data:
N clustered, L2-normalised d=100 vectors ("real-looking" sentence
embeddings: 2,000 topics of varying spread) plus held-out noisy queries;
ground truth by exact inner product (numpy).  Reports build time, memory,
and recall@10 vs queries/s for ef in 10..320 at 1 thread and at T threads.

Run with Debian's Python (numpy, hnswlib, faiss):
    nice -n 10 timeout 3000 /usr/bin/python3 bench/ann/run.py [--n 200000]
Memory: ours = the index's own heap byte count (hnsw_memory_bytes; under
int8 the float32 originals are in a file-backed store, reported apart as
"float store"); peers = RSS growth of this process over the build (the input
array is allocated before).
"""
import argparse, json, os, resource, subprocess, sys, time
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_data(n, nq, d, seed):
    rng = np.random.default_rng(seed)
    topics = 2000
    cent = rng.standard_normal((topics, d)).astype(np.float32)
    spread = rng.uniform(0.5, 1.2, topics).astype(np.float32)
    pop = rng.zipf(1.3, size=topics).astype(np.float64)
    pop = np.minimum(pop, 1000)
    pop /= pop.sum()
    def draw(m):
        t = rng.choice(topics, size=m, p=pop)
        x = cent[t] + spread[t, None] * rng.standard_normal((m, d)).astype(np.float32)
        return x
    x = draw(n)
    q = draw(nq)
    q += 0.3 * rng.standard_normal(q.shape).astype(np.float32)  # noisy queries
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x.astype(np.float32), q.astype(np.float32)


def ground_truth(x, q, k):
    gt = np.empty((len(q), k), dtype=np.int64)
    for i in range(0, len(q), 200):
        s = q[i:i + 200] @ x.T
        idx = np.argpartition(-s, k, axis=1)[:, :k]
        ss = np.take_along_axis(s, idx, axis=1)
        order = np.argsort(-ss, axis=1)
        gt[i:i + 200] = np.take_along_axis(idx, order, axis=1)
    return gt


def recall(ids, gt):
    k = gt.shape[1]
    hit = sum(len(set(ids[i, :k]) & set(gt[i])) for i in range(len(gt)))
    return hit / gt.size


def run_ours(binary, data, qfile, d, nq, gt, M, efc, threads, efs, quant, tmp):
    idx = os.path.join(tmp, "ours%s.hnsw" % ("_int8" if quant else ""))
    cmd = [binary, "index", "build", "--input", data, "--dim", str(d), "--metric", "cosine",
           "--M", str(M), "--ef-construction", str(efc), "--threads", str(threads), "-o", idx]
    if quant:
        cmd += ["--quantize", "int8"]
    t0 = time.time()
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate()
    if p.returncode:
        sys.exit("ours build failed: " + err)
    kv = dict(l.split()[:2] for l in err.splitlines() if len(l.split()) == 2)
    res = {"build_s": float(kv["build_seconds"]), "mem_bytes": int(kv["index_bytes"]),
           "vector_bytes": int(kv["vector_bytes"]),
           "store_bytes": int(kv.get("float_store_bytes", 0)), "curve": {}}
    out = os.path.join(tmp, "ids")
    for t in sorted({1, threads}):
        for ef in efs:
            best = 0
            for rep in range(2):
                r = subprocess.run([binary, "index", "search", "--index", idx, "--queries", qfile,
                                    "--k", "10", "--ef", str(ef), "--threads", str(t), "-o", out],
                                   stderr=subprocess.PIPE, text=True)
                if r.returncode:
                    sys.exit("ours search failed: " + r.stderr)
                qps = float([l.split()[1] for l in r.stderr.splitlines()
                             if l.startswith("queries_per_second")][0])
                best = max(best, qps)
            ids = np.fromfile(out, dtype=np.int32).reshape(nq, 10)
            res["curve"][(t, ef)] = (recall(ids, gt), best)
    return res


def best_qps(p, q, threads, reps):
    """hnswlib's top-10 ids for the queries q and its best queries/s of reps
    knn_query calls (p's ef already set)."""
    best = 0
    for _ in range(reps):
        t0 = time.time()
        ids, _ = p.knn_query(q, k=10, num_threads=threads)
        best = max(best, len(q) / (time.time() - t0))
    return ids, best


def run_hnswlib(x, q, gt, M, efc, threads, efs):
    import hnswlib
    before = rss_bytes()
    p = hnswlib.Index(space="ip", dim=x.shape[1])
    p.init_index(max_elements=len(x), M=M, ef_construction=efc, random_seed=100)
    p.set_num_threads(threads)
    t0 = time.time()
    p.add_items(x, np.arange(len(x)))
    res = {"build_s": time.time() - t0, "mem_bytes": rss_bytes() - before, "curve": {}}
    for t in sorted({1, threads}):
        p.set_num_threads(t)
        for ef in efs:
            p.set_ef(ef)
            ids, best = best_qps(p, q, t, 2)
            res["curve"][(t, ef)] = (recall(ids, gt), best)
    del p
    return res


def run_faiss(x, q, gt, M, efc, threads, efs):
    import faiss
    before = rss_bytes()
    faiss.omp_set_num_threads(threads)
    idx = faiss.IndexHNSWFlat(x.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    idx.hnsw.efConstruction = efc
    t0 = time.time()
    idx.add(x)
    res = {"build_s": time.time() - t0, "mem_bytes": rss_bytes() - before, "curve": {}}
    for t in sorted({1, threads}):
        faiss.omp_set_num_threads(t)
        for ef in efs:
            idx.hnsw.efSearch = ef
            best = 0
            for rep in range(2):
                t0 = time.time()
                _, ids = idx.search(q, 10)
                best = max(best, len(q) / (time.time() - t0))
            res["curve"][(t, ef)] = (recall(ids, gt), best)
    del idx
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--nq", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "embedsrv"))
    ap.add_argument("--peers", default="hnswlib,faiss")
    ap.add_argument("--int8", action="store_true", help="also run ours with --quantize int8")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "out", "ann.json"))
    a = ap.parse_args()
    efs = [10, 20, 40, 80, 160, 320]
    tmp = os.path.join(ROOT, "bench", "data")
    os.makedirs(tmp, exist_ok=True)
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    x, q = make_data(a.n, a.nq, a.dim, 12345)
    data, qfile = os.path.join(tmp, "ann_base.f32"), os.path.join(tmp, "ann_queries.f32")
    x.tofile(data)
    q.tofile(qfile)
    gt = ground_truth(x, q, 10)
    print(time.strftime("%H:%M:%S"), "data and ground truth ready", file=sys.stderr, flush=True)
    results = {}
    order = ["ours"] + ([] if not a.int8 else ["ours-int8"]) + [p for p in a.peers.split(",") if p]
    for name in order:
        print(time.strftime("%H:%M:%S"), "running", name, file=sys.stderr, flush=True)
        if name == "ours":
            results[name] = run_ours(a.binary, data, qfile, a.dim, a.nq, gt, a.M, a.efc, a.threads, efs, False, tmp)
        elif name == "ours-int8":
            results[name] = run_ours(a.binary, data, qfile, a.dim, a.nq, gt, a.M, a.efc, a.threads, efs, True, tmp)
        elif name == "hnswlib":
            results[name] = run_hnswlib(x, q, gt, a.M, a.efc, a.threads, efs)
        elif name == "faiss":
            results[name] = run_faiss(x, q, gt, a.M, a.efc, a.threads, efs)
    print("\nN=%d d=%d queries=%d M=%d efc=%d build threads=%d (%s)\n" %
          (a.n, a.dim, a.nq, a.M, a.efc, a.threads, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("| index | build s | memory MiB | vectors in memory MiB | float store on disk MiB |")
    print("|---|---|---|---|---|")
    for n, r in results.items():
        vb = "%.1f" % (r["vector_bytes"] / 2**20) if "vector_bytes" in r else "-"
        sb = "%.1f" % (r["store_bytes"] / 2**20) if "store_bytes" in r else "-"
        print("| %s | %.1f | %.1f | %s | %s |" % (n, r["build_s"], r["mem_bytes"] / 2**20, vb, sb))
    for t in sorted({1, a.threads}):
        print("\nrecall@10 / queries per second, %d search thread%s\n" % (t, "s" if t > 1 else ""))
        print("| ef | " + " | ".join(results) + " |")
        print("|---|" + "---|" * len(results))
        for ef in efs:
            cells = ["%.4f / %.0f" % results[n]["curve"][(t, ef)] for n in results]
            print("| %d | %s |" % (ef, " | ".join(cells)))
    # ratios vs hnswlib at the smallest ef reaching recall 0.95 (single thread)
    if "hnswlib" in results:
        def at95(r, t):
            for ef in efs:
                rc, qps = r["curve"][(t, ef)]
                if rc >= 0.95:
                    return ef, rc, qps
            return None
        h = at95(results["hnswlib"], 1)
        print()
        for n, r in results.items():
            o = at95(r, 1)
            if o and h:
                print("%s: first ef with recall>=0.95 (1 thread): ef=%d recall=%.4f qps=%.0f  "
                      "-> %.2fx hnswlib qps; build %.2fx; memory %.2fx" %
                      (n, o[0], o[1], o[2], o[2] / h[2], r["build_s"] / results["hnswlib"]["build_s"],
                       r["mem_bytes"] / results["hnswlib"]["mem_bytes"]))
    with open(a.json, "w") as f:
        json.dump({n: {**{k: v for k, v in r.items() if k != "curve"},
                       "curve": {"%d/%d" % k: v for k, v in r["curve"].items()}}
                   for n, r in results.items()}, f, indent=1)


if __name__ == "__main__":
    main()
