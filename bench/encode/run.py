#!/usr/bin/env python3
"""run.py REPEATS — the timing half of bench/encode/run.sh (standard library
only).  Every configuration runs REPEATS times; medians are reported.

End-to-end rows time the whole command (load + read + encode + print) on
the same input file, output to /dev/null.  "encode only" subtracts the
median of the same command on empty input (its load time).  In-process rows
come from bench_encode (es_encoder_encode_batch, no I/O).
"""
import json
import os
import statistics
import subprocess
import sys
import time

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
data, out = "bench/data", "bench/out"
sent = f"{data}/sent10.txt"
n = sum(1 for _ in open(sent))
cores = os.cpu_count()


def timed(cmd, stdin_path):
    ts = []
    for _ in range(reps):
        with open(stdin_path, "rb") as fin, open(os.devnull, "wb") as fout:
            t0 = time.monotonic()
            subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.DEVNULL, check=True)
            ts.append(time.monotonic() - t0)
    return statistics.median(ts)


rows = []
configs = [
    ("fastText print-sentence-vectors (.bin)", 1, ["fasttext", "print-sentence-vectors", f"{data}/ft100.bin"]),
    ("embedsrv encode (.bin)", 1, ["build/embedsrv", "encode", "--model", f"{data}/ft100.bin", "--threads", "1"]),
    ("embedsrv encode (.esm)", 1, ["build/embedsrv", "encode", "--model", f"{data}/ft100.esm", "--threads", "1"]),
    ("embedsrv encode (.esm)", cores, ["build/embedsrv", "encode", "--model", f"{data}/ft100.esm", "--threads", "0"]),
]
for name, threads, cmd in configs:
    total = timed(cmd, sent)
    load = timed(cmd, os.devnull)
    rows.append((name, threads, total, load))

inproc = []
for t in (1, 0):
    r = subprocess.run([f"{out}/bench_encode", "encode", f"{data}/ft100.esm", sent, str(t), str(reps)],
                       capture_output=True, text=True, check=True)
    inproc.append(json.loads(r.stdout))

ft_total, ft_load = rows[0][2], rows[0][3]
ft_rate = n / (ft_total - ft_load)
print(f"\n{n} sentences of 10 words, 100-d fastText skip-gram model, {cores} cores, medians of {reps}\n")
print("| command | threads | end-to-end s | load s | sentences/s (encode only) | vs fastText |")
print("|---|---|---|---|---|---|")
for name, threads, total, load in rows:
    rate = n / max(total - load, 1e-9)
    print(f"| {name} | {threads} | {total:.2f} | {load:.2f} | {rate:,.0f} | {rate / ft_rate:.1f}x |")
for r in inproc:
    print(f"| embedsrv in-process encode_batch (.esm, no I/O) | {r['threads']} | {r['median_s']:.3f} | - | "
          f"{r['sentences_per_s']:,.0f} | {r['sentences_per_s'] / ft_rate:.1f}x |")

r = subprocess.run([f"{out}/bench_encode", "load", f"{out}/synthetic-1m-300.esm", "1000000", "300", "5"],
                   capture_output=True, text=True, check=True)
ld = json.loads(r.stdout)
print(f"\nLoad of a 1,000,000 x 300 .esm ({ld['file_bytes'] / 2**30:.2f} GiB): "
      f"{ld['warm_median_ms']:.1f} ms (median of 5, page cache warm), "
      f"{ld['cold_ms']:.1f} ms (first load after posix_fadvise DONTNEED)")
