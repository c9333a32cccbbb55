#!/usr/bin/env python3
"""fsync_cost.py — what one fdatasync costs on the disk under DIR (default
/tmp): append 128 bytes, fdatasync, N times (stdlib only).  Prints one JSON
line with the median, p90 and p99 in milliseconds.  The ceiling for one
writer under --fsync always is about 1000 / median requests per second.

usage: fsync_cost.py [--dir /tmp] [--n 500]
"""
import argparse
import json
import os
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--dir", default="/tmp")
ap.add_argument("--n", type=int, default=500)
args = ap.parse_args()
fd, path = tempfile.mkstemp(dir=args.dir, prefix="es_fsync_")
try:
    ts = []
    for i in range(args.n):
        os.write(fd, b"x" * 128)
        t = time.perf_counter()
        os.fdatasync(fd)
        ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    q = lambda p: round(ts[min(len(ts) - 1, int(p * len(ts)))], 3)
    print(json.dumps({"what": "append 128 B + fdatasync", "dir": args.dir, "n": args.n,
                      "median_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99)}))
finally:
    os.close(fd)
    os.unlink(path)
