#!/usr/bin/python3
"""bench/ann/scale.py — one index of N vectors (default 1,000,000 x 100),
ours and hnswlib, each built, saved, loaded and searched in its own
processes, with peak RSS from /usr/bin/time -v (issue 19, "scale").

Data: bench/ann/run.py's generator (clustered, L2-normalised, held-out
noisy queries), ground truth by exact inner product.  Both build with the
same M / ef_construction / thread count; searches are single-threaded.

    nice -n 19 /usr/bin/python3 bench/ann/scale.py --phase build [--n 1000000] [--threads 2]
    flock /work/bench.lock /usr/bin/python3 bench/ann/scale.py --phase search [--ef 40 80 160]

Two phases, because a 1M build takes many minutes on a shared machine:
"build" makes the data, ground truth and both indexes (wall-clock build time
on a shared machine is only indicative there: CPU seconds, user + sys, are
reported beside it); "search" loads each index and searches it, under the
benchmark lock, and prints the tables (with the build phase's figures, kept
in bench/data/scale_build.json).

Peak RSS covers everything each process holds: for the build, the input
rows (ours reads the file into memory, hnswlib's numpy array) and the
index; for load+search, the loaded index and the queries.  hnswlib's
processes also hold the Python interpreter and numpy (reported as
"python baseline", measured by a process that only imports them).
"""
import argparse, json, os, re, subprocess, sys, time
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, make_data, ground_truth, recall

PEER = r"""
import sys, time, numpy as np, hnswlib
mode, base, qfile, path, d, M, efc, threads = sys.argv[1:9]
d, M, efc, threads = int(d), int(M), int(efc), int(threads)
if mode == "baseline":
    sys.exit(0)
if mode == "build":
    x = np.fromfile(base, dtype=np.float32).reshape(-1, d)
    p = hnswlib.Index(space="ip", dim=d)
    p.init_index(max_elements=len(x), M=M, ef_construction=efc, random_seed=100)
    p.set_num_threads(threads)
    t0 = time.time()
    p.add_items(x, np.arange(len(x)))
    t1 = time.time()
    p.save_index(path)
    t2 = time.time()
    print("build_seconds %.3f" % (t1 - t0), file=sys.stderr)
    print("save_seconds %.3f" % (t2 - t1), file=sys.stderr)
else:
    q = np.fromfile(qfile, dtype=np.float32).reshape(-1, d)
    p = hnswlib.Index(space="ip", dim=d)
    t0 = time.time()
    p.load_index(path)
    print("load_seconds %.3f" % (time.time() - t0), file=sys.stderr)
    p.set_num_threads(1)
    for ef in sys.argv[9:]:
        p.set_ef(int(ef))
        best = 0
        for rep in range(3):
            t0 = time.time()
            ids, _ = p.knn_query(q, k=10, num_threads=1)
            best = max(best, len(q) / (time.time() - t0))
        ids.astype(np.int32).tofile(path + ".ids%s" % ef)
        print("qps %s %.1f" % (ef, best), file=sys.stderr)
"""


def cpu_s(err):
    u = re.search(r"User time \(seconds\): ([0-9.]+)", err)
    s = re.search(r"System time \(seconds\): ([0-9.]+)", err)
    return float(u.group(1)) + float(s.group(1))


def timed(cmd):
    """Run cmd under /usr/bin/time -v: (stderr key/values, peak RSS bytes, wall s)."""
    t0 = time.time()
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, stderr=subprocess.PIPE, text=True)
    wall = time.time() - t0
    if r.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr[-2000:]))
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return r.stderr, int(m.group(1)) * 1024, wall


def kv(err, key):
    for l in err.splitlines():
        f = l.split()
        if len(f) >= 2 and f[0] == key:
            return float(f[1])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", choices=["build", "search"], required=True)
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ef", type=int, nargs="+", default=[40, 80, 160])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "embedsrv"))
    ap.add_argument("--peers", default="hnswlib")
    ap.add_argument("--only", choices=["ours", "hnswlib"],
                    help="build phase: build only this index (two builds can then run side by side, "
                         "each niced); its figures are merged into scale_build.json")
    a = ap.parse_args()
    tmp = os.path.join(ROOT, "bench", "data")
    os.makedirs(tmp, exist_ok=True)
    base, qfile = os.path.join(tmp, "scale_base.f32"), os.path.join(tmp, "scale_queries.f32")
    gtfile, info = os.path.join(tmp, "scale_gt.npy"), os.path.join(tmp, "scale_build.json")
    idx = os.path.join(tmp, "scale_ours.hnsw")
    hp = os.path.join(tmp, "scale_hnswlib.bin")
    peers = [p for p in a.peers.split(",") if p]
    py = ["/usr/bin/python3", "-c", PEER]
    if a.phase == "build":
        if not (os.path.exists(gtfile) and os.path.exists(base) and os.path.getsize(base) == a.n * a.dim * 4 and
                np.load(gtfile).shape == (a.nq, 10)):
            x, q = make_data(a.n, a.nq, a.dim, 12345)
            x.tofile(base)
            q.tofile(qfile)
            np.save(gtfile, ground_truth(x, q, 10))
            del x
        print(time.strftime("%H:%M:%S"), "data and ground truth ready", file=sys.stderr, flush=True)
        built = {"n": a.n, "M": a.M, "efc": a.efc, "threads": a.threads}
        if a.only and os.path.exists(info):
            with open(info) as f:
                old = json.load(f)
            if all(old.get(k) == built[k] for k in built):
                built = old
    if a.phase == "build" and a.only != "hnswlib":
        err, rss, wall = timed([a.binary, "index", "build", "--input", base, "--dim", str(a.dim),
                                "--metric", "cosine", "--M", str(a.M), "--ef-construction", str(a.efc),
                                "--threads", str(a.threads), "-o", idx])
        built["ours"] = {"build_s": kv(err, "build_seconds"), "save_s": kv(err, "save_seconds"),
                         "cpu_s": cpu_s(err), "rss": rss, "file": os.path.getsize(idx)}
        print(time.strftime("%H:%M:%S"), "ours", built["ours"], file=sys.stderr, flush=True)
    if a.phase == "build":
        if "hnswlib" in peers and a.only != "ours":
            common = [base, qfile, hp, str(a.dim), str(a.M), str(a.efc), str(a.threads)]
            err, rss, wall = timed(py + ["build"] + common)
            built["hnswlib"] = {"build_s": kv(err, "build_seconds"), "save_s": kv(err, "save_seconds"),
                                "cpu_s": cpu_s(err), "rss": rss, "file": os.path.getsize(hp)}
            print(time.strftime("%H:%M:%S"), "hnswlib", built["hnswlib"], file=sys.stderr, flush=True)
        if a.only and os.path.exists(info):  # the other build may have finished meanwhile
            with open(info) as f:
                old = json.load(f)
            other = "hnswlib" if a.only == "ours" else "ours"
            if other in old and all(old.get(k) == built[k] for k in ("n", "M", "efc", "threads")):
                built[other] = old[other]
        with open(info, "w") as f:
            json.dump(built, f)
        return
    with open(info) as f:
        built = json.load(f)
    gt = np.load(gtfile)
    nq = len(gt)
    rows, curves = [], {}
    out = os.path.join(tmp, "scale_ids")
    load_s, rss_s = [], 0
    curves["ours"] = {}
    for ef in a.ef:
        err, rss, _ = timed([a.binary, "index", "search", "--index", idx, "--queries", qfile,
                             "--k", "10", "--ef", str(ef), "--threads", "1", "--repeat", "3",
                             "-o", out])
        load_s.append(kv(err, "load_seconds"))
        rss_s = max(rss_s, rss)
        ids = np.fromfile(out, dtype=np.int32).reshape(nq, 10)
        curves["ours"][ef] = (recall(ids, gt), kv(err, "queries_per_second"))
    rows.append(("ours", built["ours"], min(load_s), rss_s))
    if "hnswlib" in peers and "hnswlib" in built:
        common = [base, qfile, hp, str(a.dim), str(a.M), str(a.efc), str(built["threads"])]
        _, rss0, _ = timed(py + ["baseline"] + common)
        err, rss_s, _ = timed(py + ["search"] + common + [str(e) for e in a.ef])
        curves["hnswlib"] = {}
        for ef in a.ef:
            ids = np.fromfile(hp + ".ids%d" % ef, dtype=np.int32).reshape(nq, 10)
            qps = [float(l.split()[2]) for l in err.splitlines() if l.startswith("qps %d " % ef)][0]
            curves["hnswlib"][ef] = (recall(ids, gt), qps)
        rows.append(("hnswlib", built["hnswlib"], kv(err, "load_seconds"), rss_s))
        print("\npython baseline (interpreter + numpy + hnswlib imported): peak RSS %.0f MiB" %
              (rss0 / 2**20))
    print("\nN=%d d=%d queries=%d M=%d efc=%d build threads=%d (%s)\n" %
          (built["n"], a.dim, nq, built["M"], built["efc"], built["threads"],
           time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("| index | build s (wall) | build CPU s | save s | load s | build peak RSS MiB | "
          "load+search peak RSS MiB | file MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, b, ls, rs in rows:
        print("| %s | %.1f | %.1f | %.2f | %.2f | %.0f | %.0f | %.0f |" %
              (name, b["build_s"], b["cpu_s"], b["save_s"], ls, b["rss"] / 2**20, rs / 2**20,
               b["file"] / 2**20))
    print("\nrecall@10 / queries per second, 1 search thread (fastest of 3 passes)\n")
    print("| ef | " + " | ".join(curves) + " |")
    print("|---|" + "---|" * len(curves))
    for ef in a.ef:
        print("| %d | %s |" % (ef, " | ".join("%.4f / %.0f" % curves[n][ef] for n in curves)))


if __name__ == "__main__":
    main()
