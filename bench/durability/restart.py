#!/usr/bin/python3
"""restart.py — start-to-ready time of `embedsrv serve --data-dir` (issue 7).

Loads N random vectors (standard normal, seed fixed) of dimension D into a
collection — with `embedsrv import` (parallel graph build, written as the
collection's snapshot; default) or, with --via-api, over HTTP in batches of
5,000 points with --fsync never — then measures:
  * the clean shutdown (SIGTERM: final snapshot of the collection),
  * start-to-ready from that snapshot (HNSW graph loaded, no rebuild),
  * optionally (--replay) start-to-ready after a SIGKILL with no snapshot,
    i.e. rebuilding from the write-ahead log (on a smaller N).
Prints one JSON line per measurement.  Needs numpy (/usr/bin/python3).

usage: restart.py [--n 1000000] [--dim 100] [--efc 100] [--bin build/embedsrv]
                  [--model tests/data/lee-10d.vec] [--via-api] [--replay]
                  [--data DIR  (reuse a data dir made by an earlier run)]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

BATCH = 5000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, args, data, *extra):
        self.port = free_port()
        self.t0 = time.time()
        self.proc = subprocess.Popen(
            [args.bin, "serve", "--model", args.model, "--port", str(self.port),
             "--quiet", "--data-dir", data, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while True:
            if self.proc.poll() is not None:
                sys.exit("server exited: " + self.proc.stderr.read().decode())
            try:
                if self.req("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        self.ready_s = time.time() - self.t0

    def req(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        c.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def stop(self, sig=signal.SIGTERM):
        t = time.time()
        self.proc.send_signal(sig)
        self.proc.wait()
        err = self.proc.stderr.read().decode()
        return time.time() - t, err


def load(srv, n, dim, efc, seed=1):
    st, body = srv.req("PUT", "/v1/collections/bench",
                       json.dumps({"dim": dim, "metric": "l2", "ef_construction": efc}))
    assert st in (200, 201), body
    rng = np.random.default_rng(seed)
    t = time.time()
    for b in range(0, n, BATCH):
        m = min(BATCH, n - b)
        v = rng.standard_normal((m, dim), dtype=np.float32)
        pts = [{"id": b + i, "vector": v[i].tolist()} for i in range(m)]
        st, body = srv.req("PUT", "/v1/collections/bench/points", json.dumps({"points": pts}))
        assert st == 200, body[:300]
        if (b // BATCH) % 50 == 0:
            print("  loaded %d/%d (%.0f s)" % (b + m, n, time.time() - t), file=sys.stderr)
    return time.time() - t


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--efc", type=int, default=100)
    ap.add_argument("--bin", default="build/embedsrv")
    ap.add_argument("--model", default="tests/data/lee-10d.vec")
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--via-api", action="store_true")
    ap.add_argument("--data")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="es_restart_")
    try:
        stop_s = None
        if args.data:
            data, load_s = args.data, None
        elif args.via_api:
            data = os.path.join(tmp, "data")
            srv = Server(args, data, "--fsync", "never")
            load_s = load(srv, args.n, args.dim, args.efc)
            stop_s, _ = srv.stop()
        else:
            data = os.path.join(tmp, "data")
            base = os.path.join(tmp, "base.f32")
            np.random.default_rng(1).standard_normal((args.n, args.dim),
                                                     dtype=np.float32).tofile(base)
            t = time.time()
            subprocess.run([args.bin, "import", "--data-dir", data, "--collection", "bench",
                            "--input", base, "--dim", str(args.dim), "--metric", "l2",
                            "--ef-construction", str(args.efc)], check=True)
            load_s = time.time() - t
            os.unlink(base)
        size = dir_bytes(data)
        times = []
        for _ in range(3):
            srv = Server(args, data)
            times.append(srv.ready_s)
            st, body = srv.req("GET", "/v1/collections/bench")
            count = json.loads(body)["result"].get("count")
            srv.stop(signal.SIGKILL)
        print(json.dumps({"what": "restart from snapshot", "n": args.n, "dim": args.dim,
                          "efc": args.efc, "points_after": count,
                          "load": "api" if args.via_api else "import",
                          "load_s": load_s and round(load_s, 1),
                          "shutdown_snapshot_s": stop_s and round(stop_s, 2),
                          "data_dir_mb": round(size / 2**20, 1),
                          "start_to_ready_s": [round(t, 2) for t in times],
                          "median_s": round(sorted(times)[1], 2)}))
        if args.replay:
            shutil.rmtree(data)
            srv = Server(args, data, "--fsync", "never")
            load(srv, args.n, args.dim, args.efc)
            srv.stop(signal.SIGKILL)  # no snapshot: everything is in the log
            size = dir_bytes(data)
            srv = Server(args, data)
            t = srv.ready_s
            srv.stop(signal.SIGKILL)
            print(json.dumps({"what": "restart from log only (graph rebuilt)", "n": args.n,
                              "dim": args.dim, "efc": args.efc,
                              "data_dir_mb": round(size / 2**20, 1),
                              "start_to_ready_s": round(t, 2)}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
