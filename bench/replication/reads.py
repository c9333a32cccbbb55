#!/usr/bin/env python3
"""reads.py — search req/s through nginx to two followers vs one instance.

    python3 bench/replication/reads.py [POINTS [DURATION [CONNECTIONS]]]
    (defaults 20000 points, 10 s, 32 connections)

Starts a primary with a POINTS x 100-d collection (random vectors, l2), two
followers (`serve --follow`, --threads 2 each) and Debian's nginx with
deploy/nginx/embedsrv-readwrite.conf (es_server.Nginx), waits until both
followers hold every point, then runs wrk (2 threads, CONNECTIONS
connections, DURATION s) with the same vector search (k = 10) three times
each, interleaved: straight at one follower, and through nginx (round-robin
over the two).  Prints req/s of each run, the medians and their ratio.  On a
machine whose cores are fewer than wrk + nginx + two servers need, the
ratio cannot show the second follower's capacity: see bench/RESULTS.md.
"""
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("ES_SOURCE_ROOT", ROOT)
import es_server  # noqa: E402

npts = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
dur = int(sys.argv[2]) if len(sys.argv) > 2 else 10
conns = int(sys.argv[3]) if len(sys.argv) > 3 else 32
CONF = os.path.join(ROOT, "deploy", "nginx", "embedsrv-readwrite.conf")
D = 100


def wrk(port, lua):
    out = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % dur, "-s", lua,
                          "http://127.0.0.1:%d/v1/collections/c/search" % port],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise RuntimeError("wrk saw %s non-2xx answers:\n%s" % (bad.group(1), out))
    return float(m.group(1))


def main():
    tmp = tempfile.mkdtemp(prefix="es_reads_")
    servers, ng = [], None
    try:
        model = ["--model", es_server.LEE_MODEL, "--quiet", "--threads", "2"]
        p = es_server.Server(*(model + ["--data-dir", os.path.join(tmp, "p")]), wait="readyz")
        servers.append(p)
        p.req("PUT", "/v1/collections/c", {"dim": D, "metric": "l2"})
        rnd = random.Random(3)
        for b in range(0, npts, 1000):
            pts = [{"id": i, "vector": [rnd.random() for _ in range(D)]}
                   for i in range(b, min(npts, b + 1000))]
            p.req("PUT", "/v1/collections/c/points", {"points": pts}, timeout=300)
        fs = []
        for k in range(2):
            f = es_server.Server(*(model + ["--data-dir", os.path.join(tmp, "f%d" % k),
                                            "--follow", "http://127.0.0.1:%d" % p.port]),
                                 wait="readyz", start_timeout=600)
            servers.append(f)
            fs.append(f)
        for f in fs:
            while f.req("GET", "/v1/collections/c")[1]["result"]["count"] < npts:
                time.sleep(0.2)
        ng = es_server.Nginx(CONF, {
            "embedsrv-primary:8080": "127.0.0.1:%d" % p.port,
            "embedsrv-replica-0:8080": "127.0.0.1:%d" % fs[0].port,
            "embedsrv-replica-1:8080": "127.0.0.1:%d" % fs[1].port})
        q = [rnd.random() for _ in range(D)]
        lua = os.path.join(tmp, "search.lua")
        with open(lua, "w") as fh:
            fh.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     "wrk.body = '%s'\n" % json.dumps({"vector": q, "k": 10}))
        one, two = [], []
        for k in range(3):
            one.append(wrk(fs[0].port, lua))
            two.append(wrk(ng.port, lua))
            print("run %d: one follower %.0f req/s; nginx -> two followers %.0f req/s"
                  % (k + 1, one[-1], two[-1]))
        a, b = statistics.median(one), statistics.median(two)
        print("median: one %.0f req/s, two behind nginx %.0f req/s, ratio %.2f "
              "(%d points x %d-d, k 10, wrk -t2 -c%d, %d s; %d cores)"
              % (a, b, b / a, npts, D, conns, dur, os.cpu_count()))
    finally:
        if ng:
            ng.stop()
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
