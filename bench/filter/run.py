#!/usr/bin/env python3
"""bench/filter/run.py — filtered search with and without a payload index
(issue 20: a 1 %-selective keyword filter on 1,000,000 points, >= 5x faster
with the index).

Setup (not timed, not locked): a data directory made by `embedsrv import`
(N random d-dim vectors, ids 0..N-1), served by `embedsrv serve
--data-dir`; every point gets the payload {"tag": "t<id % 100>"} through
POST /v1/collections/C/points/payload (by ids, 10,000 at a time), so each
tag value selects 1 % of the points.

Measured (under --lock, one benchmark on the machine at a time): Q
sequential searches over one keep-alive connection, query q filtered by
tag == t<q % 100>, k 10, default ef: first without an index (the HNSW
walk with the filter as a predicate), then after PUT .../index {"field":
"tag", "type": "keyword"} (the planner scores the 10,000 candidates
exactly), then again after dropping it.  Prints per-phase median and p90
latency and the recall@10 of the unindexed answers against the indexed
(exact) ones.

  python3 bench/filter/run.py --data /tmp/h20-bench/data --queries queries.f32 \
      --binary build/embedsrv --model tests/data/lee-10d.vec --lock /work/bench.lock
"""
import argparse
import fcntl
import http.client
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Conn:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None


def phase(conn, coll, queries, k):
    lat, res = [], []
    for i, q in enumerate(queries):
        body = {"vector": q, "k": k, "with_payload": False,
                "filter": {"must": [{"key": "tag", "match": {"value": "t%d" % (i % 100)}}]}}
        t0 = time.perf_counter()
        st, b = conn.req("POST", "/v1/collections/%s/search" % coll, body)
        lat.append(time.perf_counter() - t0)
        if st != 200:
            sys.exit("search: %s %s" % (st, b))
        res.append([h["id"] for h in b["result"]])
        if len(b["result"]) != k:
            sys.exit("query %d: %d hits, not %d (payloads missing?)" % (i, len(b["result"]), k))
        for h in b["result"]:
            if h["id"] % 100 != i % 100:
                sys.exit("a hit outside the filter: %s" % h)
    lat.sort()
    return {"median_ms": 1000 * statistics.median(lat), "p90_ms": 1000 * lat[int(0.9 * len(lat))],
            "qps": len(lat) / sum(lat)}, res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--collection", default="f")
    ap.add_argument("--queries", required=True)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--nq", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--binary", default="build/embedsrv")
    ap.add_argument("--model", default="tests/data/lee-10d.vec")
    ap.add_argument("--lock", default=None)
    ap.add_argument("--skip-payloads", action="store_true", help="payloads already set")
    a = ap.parse_args()
    raw = open(a.queries, "rb").read()
    nq = min(a.nq, len(raw) // (4 * a.dim))
    queries = [list(struct.unpack_from("<%df" % a.dim, raw, 4 * a.dim * i)) for i in range(nq)]
    port = free_port()
    srv = subprocess.Popen([a.binary, "serve", "--host", "127.0.0.1", "--port", str(port),
                            "--model", a.model, "--data-dir", a.data, "--quiet"])
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        conn = Conn(port)
        C = "/v1/collections/" + a.collection
        st, info = conn.req("GET", C)
        n = info["result"]["count"]
        print("points:", n, file=sys.stderr)
        if not a.skip_payloads:
            t0 = time.time()
            for tag in range(100):
                ids = list(range(tag, n, 100))
                for j in range(0, len(ids), 10000):
                    st, b = conn.req("POST", C + "/points/payload",
                                     {"payload": {"tag": "t%d" % tag}, "points": ids[j:j + 10000]})
                    if st != 200:
                        sys.exit("payload: %s %s" % (st, b))
            print("payloads set in %.1f s" % (time.time() - t0), file=sys.stderr)
        conn.req("DELETE", C + "/index/tag")  # start without one
        lockf = open(a.lock, "w") if a.lock else None
        if lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)
        try:
            conn = Conn(port)  # the server closes a connection idle while we waited
            without, res0 = phase(conn, a.collection, queries, a.k)
            t0 = time.time()
            st, b = conn.req("PUT", C + "/index", {"field": "tag", "type": "keyword"})
            build_s = time.time() - t0
            if st != 200:
                sys.exit("index: %s %s" % (st, b))
            st, info = conn.req("GET", C)
            with_idx, res1 = phase(conn, a.collection, queries, a.k)
            conn.req("DELETE", C + "/index/tag")
            again, _ = phase(conn, a.collection, queries, a.k)
        finally:
            if lockf:
                fcntl.flock(lockf, fcntl.LOCK_UN)
        recall = sum(len(set(x) & set(y)) for x, y in zip(res0, res1)) / max(1, sum(len(y) for y in res1))
        out = {"points": n, "queries": nq, "k": a.k, "selectivity": 0.01,
               "without_index": without, "with_index": with_idx, "without_index_again": again,
               "index_build_s": build_s, "payload_indexes": info["result"]["payload_indexes"],
               "speedup_median": without["median_ms"] / with_idx["median_ms"],
               "recall_unindexed_vs_exact": recall}
        print(json.dumps(out, indent=1))
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    main()
