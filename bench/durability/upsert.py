#!/usr/bin/env python3
"""upsert.py — upsert throughput of `embedsrv serve --data-dir` with
concurrent writers into ONE collection (issue 7: group commit).

For each binary (--bin, repeatable: e.g. the build before and after a
change) and each writer count (--writers 1,4,16), start a fresh server on a
fresh data directory with --fsync POLICY and --threads THREADS, create the
collection `bench` (dim D, l2), then let wrk (bench/durability/upsert.lua)
drive C connections for --seconds, each a writer that sends one single-point
upsert and waits for its acknowledgement before the next.  Repeats --reps
times; prints one JSON line per run and a summary line per (binary,
writers) with the median requests/s and latencies.  Stdlib only; needs wrk.

--strace runs the server under `strace -f --seccomp-bpf -e trace=fdatasync`
(only fdatasync stops) and reports fdatasync calls per acknowledged upsert:
how well writers share fsyncs.  It slows the server a little, so take
throughput from runs without it.

usage: upsert.py [--bin build/embedsrv ...] [--writers 1,4,16] [--seconds 8]
                 [--reps 3] [--fsync always] [--threads 32] [--dim 100]
                 [--model tests/data/lee-10d.vec] [--strace]
Run timing benchmarks under `flock /work/bench.lock` on shared machines.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def req(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def run_one(args, binary, writers, tmp):
    data = tempfile.mkdtemp(prefix="data_", dir=tmp)
    port = free_port()
    cmd = [binary, "serve", "--model", args.model, "--port", str(port), "--quiet",
           "--threads", str(args.threads), "--data-dir", data, "--fsync", args.fsync]
    trace = os.path.join(tmp, "strace.txt")
    if args.strace:
        cmd = ["strace", "-f", "--seccomp-bpf", "-e", "trace=fdatasync", "-o", trace] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def fsyncs():
        with open(trace) as f:
            return f.read().count("fdatasync(")

    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                sys.exit("server exited: " + proc.stderr.read().decode())
            try:
                if req(port, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("server did not become ready")
            time.sleep(0.02)
        st, body = req(port, "PUT", "/v1/collections/bench",
                       json.dumps({"dim": args.dim, "metric": "l2"}))
        assert st in (200, 201), body
        env = dict(os.environ, DIM=str(args.dim))
        st, body = req(port, "GET", "/v1/collections/bench")
        count0 = json.loads(body)["result"]["count"]
        f0 = fsyncs() if args.strace else 0
        out = subprocess.run(
            ["wrk", "-t1", "-c%d" % writers, "-d%ds" % args.seconds, "--latency",
             "-s", os.path.join(HERE, "upsert.lua"), "http://127.0.0.1:%d" % port],
            env=env, capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        errs = re.search(r"Socket errors: (.*)", out)
        st, body = req(port, "GET", "/v1/collections/bench")
        count = json.loads(body)["result"]["count"]
        extra = {}
        if args.strace:
            extra["fdatasync_per_upsert"] = round((fsyncs() - f0) / max(1, count - count0), 3)
        return {**extra, "bin": binary, "writers": writers, "fsync": args.fsync,
                "threads": args.threads, "seconds": args.seconds, "req_s": rps,
                "p50_ms": ms(lat["50"]), "p90_ms": ms(lat["90"]), "p99_ms": ms(lat["99"]),
                "non_2xx": int(bad.group(1)) if bad else 0,
                "socket_errors": errs.group(1) if errs else None, "points": count}
    finally:
        if args.strace:  # the server is strace's child: kill it by its pid
            for t in os.listdir("/proc/%d/task" % proc.pid):
                with open("/proc/%d/task/%s/children" % (proc.pid, t)) as f:
                    for pid in f.read().split():
                        os.kill(int(pid), signal.SIGKILL)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append")
    ap.add_argument("--writers", default="1,4,16")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fsync", default="always")
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--model", default="tests/data/lee-10d.vec")
    ap.add_argument("--strace", action="store_true")
    args = ap.parse_args()
    bins = args.bin or ["build/embedsrv"]
    writers = [int(w) for w in args.writers.split(",")]
    tmp = tempfile.mkdtemp(prefix="es_upsert_", dir=os.environ.get("TMPDIR", "/tmp"))
    results = {}
    try:
        # interleave binaries and writer counts so drift in the machine's load
        # hits every configuration alike
        for rep in range(args.reps):
            for w in writers:
                for b in bins:
                    r = run_one(args, b, w, tmp)
                    r["rep"] = rep
                    print(json.dumps(r), flush=True)
                    results.setdefault((b, w), []).append(r)
        for (b, w), rs in results.items():
            print(json.dumps({"summary": True, "bin": b, "writers": w, "fsync": args.fsync,
                              "runs": len(rs),
                              "req_s": [round(r["req_s"]) for r in rs],
                              "median_req_s": round(statistics.median(r["req_s"] for r in rs)),
                              "median_p50_ms": round(statistics.median(r["p50_ms"] for r in rs), 2),
                              "median_p99_ms": round(statistics.median(r["p99_ms"] for r in rs), 2),
                              "non_2xx": sum(r["non_2xx"] for r in rs),
                              **({"fdatasync_per_upsert": [r["fdatasync_per_upsert"] for r in rs]}
                                 if args.strace else {})}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
