#!/usr/bin/env python3
"""bootstrap.py — bootstrapping a follower vs the primary's own restart.

    python3 bench/replication/bootstrap.py DATA_DIR [REPEAT]

DATA_DIR is a primary's data directory (made once, e.g. 1,000,000 x 100-d
vectors with `embedsrv import`, see bench/replication/run.sh); it is opened,
never written (the primary's bundle takes a checkpoint, which finds nothing
new to write).  REPEAT times (default 3), interleaved:
  restart:   start `serve --data-dir DATA_DIR` and time until /readyz
             answers 200 (model load, snapshots, log replay), then stop it;
  bootstrap: with the primary running, start `serve --follow` on an empty
             directory and time until its /readyz answers 200 (the bundle:
             checkpoint, transfer over loopback, checksums, install, then
             the same open as a restart, with the install's fsyncs running
             meanwhile), then stop it.
Prints each time, the medians and their ratio (issue 22's target:
bootstrap <= 1.5 x restart).
"""
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("ES_SOURCE_ROOT", ROOT)
import es_server  # noqa: E402

data = sys.argv[1]
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
MODEL = ["--model", es_server.LEE_MODEL, "--quiet"]


def ready_time(*args):
    t0 = time.time()
    s = es_server.Server(*(MODEL + list(args)), wait="readyz", start_timeout=1800)
    return time.time() - t0, s


def main():
    restarts, boots = [], []
    for k in range(repeat):
        t, p = ready_time("--data-dir", data)
        restarts.append(t)
        _, plog = p.stop()
        rec = re.search(r"recovered in (\S+) s", plog)
        print("run %d: primary restart %.2f s (open %s s)"
              % (k + 1, t, rec.group(1) if rec else "?"), flush=True)
        t, p = ready_time("--data-dir", data)  # the primary the follower copies
        tmp = tempfile.mkdtemp(prefix="es_boot_", dir=os.path.dirname(os.path.abspath(data)))
        try:
            tb, f = ready_time("--data-dir", os.path.join(tmp, "f"), "--follow",
                               "http://127.0.0.1:%d" % p.port)
            _, js = f.req("GET", "/v1/collections")
            n = sum(c["count"] for c in js["result"])
            _, flog = f.stop()
        finally:
            p.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        boots.append(tb)
        # the follower's own account: the transfer and install, then the open
        dl = re.search(r"bootstrapped .*\((\S+ MiB in \S+ s)[;)]", flog)
        op = re.search(r"at lsn \d+ \((\S+) s\)", flog)
        print("run %d: follower bootstrap %.2f s (%d points; download and install %s, "
              "open %s s)" % (k + 1, tb, n, dl.group(1) if dl else "?",
                              op.group(1) if op else "?"), flush=True)
    r, b = statistics.median(restarts), statistics.median(boots)
    print("median: restart %.2f s, bootstrap %.2f s, ratio %.2f (target <= 1.5)" % (r, b, b / r))


if __name__ == "__main__":
    main()
