#!/usr/bin/env python3
"""test_durability.py — crash safety of `embedsrv serve --data-dir`.

Against the real binary (standard library only):
  1. restart: write, stop (SIGTERM), start: every point, vector (same
     float bits: the vectors are exact binary fractions and the collection
     uses the l2 metric, so what is stored is what was sent), payload and
     search answer is back; the snapshot route works and is in the log's
     place afterwards.
  2. crash: 24 rounds of concurrent upsert/delete writers with SIGKILL at a
     random moment; after each restart every acknowledged write is there and
     each write whose answer never came is either wholly present or wholly
     absent (batches are all-or-nothing).  Rounds vary the fsync policy and
     force automatic snapshots, so kills also land inside checkpoints.
  3. damage: a torn log tail is dropped and the server starts; a flipped
     byte inside the log stops the start (exit 1, file and offset named)
     until --recover; a flipped byte in a snapshot stops the start naming
     the file.
  5. disk full: with RLIMIT_FSIZE the log's write fails (EFBIG): the upsert
     answers 507, nothing of it is visible, reads and search go on, and
     after a restart exactly the acknowledged points are there.
  4. import: `embedsrv import` bulk-loads a float32 file into a data dir;
     the server starts with it (count, vectors, search).
Servers are started and stopped by es_server.py.
"""
import glob
import http.client
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import es_server  # noqa: E402
from es_server import BIN, LEE_MODEL as MODEL  # noqa: E402

DIM = 10
ROUNDS = 24
check = es_server.Checks()


class Server(es_server.Server):
    """The server on the Lee model with --data-dir data, waited for until
    ready; with expect_fail, not waited for (then wait_exit())."""

    def __init__(self, data, *extra, expect_fail=False):
        super().__init__("--model", MODEL, "--threads", "8", "--quiet",
                         "--data-dir", data, *extra,
                         wait=None if expect_fail else "readyz")


def vec(seed):
    r = random.Random(seed)
    # exact binary fractions: the decimal text round-trips to the same bits
    return [r.randint(-64, 64) / 8.0 + 1.0 / 16 for _ in range(DIM)]


def get_point(srv, name, pid):
    path = "/v1/collections/%s/points/%s" % (name, pid)
    return srv.req("GET", path + "?with_vector=true")


def snapshot_state(srv, name, ids):
    out = {}
    for pid in ids:
        st, body = get_point(srv, name, pid)
        if st == 200:
            res = body["result"]
            out[pid] = (json.dumps(res.get("payload"), sort_keys=True), res.get("vector"))
        else:
            out[pid] = None
    return out


# ---------------------------------------------------------------- 1. restart
def test_restart(tmp):
    data = os.path.join(tmp, "restart")
    srv = Server(data)
    st, _ = srv.req("PUT", "/v1/collections/docs", {"dim": DIM, "metric": "l2"})
    check(st in (200, 201), "create docs: %s" % st)
    st, _ = srv.req("PUT", "/v1/collections/text", {})
    check(st in (200, 201), "create text collection (model dim): %s" % st)
    ids = []
    for b in range(10):
        pts = []
        for i in range(30):
            n = b * 30 + i
            pid = n if n % 2 == 0 else "doc-%d" % n
            ids.append(pid)
            p = {"id": pid, "vector": vec(n)}
            if n % 3:
                p["payload"] = {"n": n, "tags": ["a", "b"], "nested": {"x": n / 4}}
            pts.append(p)
        st, body = srv.req("PUT", "/v1/collections/docs/points", {"points": pts})
        check(st == 200, "upsert batch %d: %s %s" % (b, st, body))
    st, _ = srv.req("POST", "/v1/collections/docs/points/delete",
                    {"points": ids[:20:3]})
    check(st == 200, "delete")
    st, _ = srv.req("PUT", "/v1/collections/text/points",
                    {"points": [{"id": 1, "text": "the river bank"},
                                {"id": 2, "text": "money in the bank"}]})
    check(st == 200, "upsert text")
    queries = [vec(10000 + q) for q in range(10)]

    def answers(s):
        out = []
        for q in queries:
            st, body = s.req("POST", "/v1/collections/docs/search",
                             {"vector": q, "k": 7, "with_payload": True})
            out.append(json.dumps(body, sort_keys=True) if st == 200 else st)
        return out

    before = snapshot_state(srv, "docs", ids)
    text_before = snapshot_state(srv, "text", [1, 2])
    ans_before = answers(srv)
    rc, err = srv.stop()
    check(rc == 0, "clean stop: %s %s" % (rc, err[-300:]))
    check(len(glob.glob(os.path.join(data, "snap", "*.snap"))) == 2,
          "clean shutdown wrote a snapshot per collection")

    srv = Server(data)
    check(snapshot_state(srv, "docs", ids) == before, "points after clean restart")
    check(snapshot_state(srv, "text", [1, 2]) == text_before, "text points after restart")
    check(answers(srv) == ans_before, "search answers after clean restart")
    # more writes, an explicit snapshot, more writes, then a crash
    st, body = srv.req("POST", "/v1/collections/docs/snapshot")
    check(st == 200 and body["result"]["snapshot"] is True, "snapshot route: %s %s" % (st, body))
    st, _ = srv.req("POST", "/v1/collections/nope/snapshot")
    check(st == 404, "snapshot of unknown collection: %s" % st)
    st, _ = srv.req("PUT", "/v1/collections/docs/points",
                    {"points": [{"id": 5000, "vector": vec(5000), "payload": {"late": 1}}]})
    check(st == 200, "write after snapshot")
    ids.append(5000)
    before = snapshot_state(srv, "docs", ids)
    ans_before = answers(srv)
    srv.kill()
    srv = Server(data)
    check(snapshot_state(srv, "docs", ids) == before, "points after snapshot + log + SIGKILL")
    check(answers(srv) == ans_before, "search answers after snapshot + log + SIGKILL")
    rc, err = srv.stop()
    check(rc == 0, "stop after the SIGKILL restart: %s %s" % (rc, err[-300:]))


# ------------------------------------------------------------------ 2. crash
class Writer(threading.Thread):
    """Owns ids [base, base+span); keeps what the server acknowledged."""

    def __init__(self, srv, wid, base, span, seed, state):
        super().__init__(daemon=True)
        self.srv, self.wid, self.base, self.span = srv, wid, base, span
        self.rng = random.Random(seed)
        self.state = state          # id -> (payload json, vector) or None
        self.inflight = None        # (kind, {id: value}) of the unanswered op
        self.stop_flag = False
        self.acked = 0

    def run(self):
        seq = 0
        while not self.stop_flag:
            seq += 1
            k = self.rng.randint(1, 8)
            ids = self.rng.sample(range(self.base, self.base + self.span), k)
            if self.rng.random() < 0.7:
                pts, effect = [], {}
                for pid in ids:
                    v = vec(pid * 1000003 + seq * 7 + self.wid)
                    payload = {"w": self.wid, "seq": seq, "id": pid}
                    pts.append({"id": pid, "vector": v, "payload": payload})
                    effect[pid] = (json.dumps(payload, sort_keys=True), v)
                op = ("PUT", "/v1/collections/crash/points", {"points": pts})
            else:
                effect = {pid: None for pid in ids}
                op = ("POST", "/v1/collections/crash/points/delete", {"points": ids})
            self.inflight = effect
            try:
                st, _ = self.srv.req(*op, timeout=10)
            except (OSError, http.client.HTTPException):
                return  # the server died: the outcome of this op is unknown
            if st != 200:
                return  # e.g. 503 while stopping: treat as unknown
            self.state.update(effect)
            self.inflight = None
            self.acked += 1


def test_crash(tmp):
    data = os.path.join(tmp, "crash")
    rng = random.Random(20261128)
    span, nwriters = 40, 4
    state = {i: None for i in range(span * nwriters)}
    srv = Server(data)
    st, _ = srv.req("PUT", "/v1/collections/crash", {"dim": DIM, "metric": "l2"})
    check(st in (200, 201), "create crash collection")
    total_acked = 0
    policies = ["always", "batch", "never"]
    for rnd in range(ROUNDS):
        writers = [Writer(srv, w, w * span, span, rng.random(), state)
                   for w in range(nwriters)]
        for w in writers:
            w.start()
        time.sleep(rng.uniform(0.05, 0.6))
        if rnd % 5 == 2:
            def snap(s=srv):  # a snapshot racing the writers and, maybe, the kill
                try:
                    s.req("POST", "/v1/collections/crash/snapshot", timeout=10)
                except (OSError, http.client.HTTPException):
                    pass
            threading.Thread(target=snap, daemon=True).start()
            time.sleep(rng.uniform(0, 0.05))
        srv.kill()
        for w in writers:
            w.stop_flag = True
        for w in writers:
            w.join(timeout=15)
        total_acked += sum(w.acked for w in writers)
        extra = ["--fsync", policies[rnd % 3]]
        if rnd % 4 == 1:
            extra += ["--snapshot-bytes", "8192"]
        srv = Server(data, *extra)
        got = snapshot_state(srv, "crash", list(state))
        for w in writers:
            eff = w.inflight
            if eff is None:
                continue
            old = {pid: state[pid] for pid in eff}
            now = {pid: got[pid] for pid in eff}
            if now == eff:
                state.update(eff)  # the unanswered op was applied: wholly
            else:
                check(now == old, "round %d writer %d: unacknowledged batch is "
                      "half-present (%d ids)" % (rnd, w.wid, len(eff)))
        bad = [pid for pid in state if got[pid] != state[pid]]
        check(not bad, "round %d: %d acknowledged writes lost or wrong, e.g. id %s: "
              "want %s got %s" % (rnd, len(bad), bad[:1], bad and state[bad[0]],
                                  bad and got[bad[0]]))
    check(total_acked >= ROUNDS * 5, "writers made progress (%d acknowledged)" % total_acked)
    rc, err = srv.stop()
    check(rc == 0, "final stop: %s" % err[-300:])
    print("crash: %d rounds, %d acknowledged writes" % (ROUNDS, total_acked))


# ----------------------------------------------------------------- 3. damage
def flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x41]))


def test_damage(tmp):
    data = os.path.join(tmp, "damage")
    srv = Server(data)
    srv.req("PUT", "/v1/collections/d", {"dim": DIM, "metric": "l2"})
    for b in range(6):
        st, _ = srv.req("PUT", "/v1/collections/d/points",
                        {"points": [{"id": b * 10 + i, "vector": vec(b * 10 + i)}
                                    for i in range(10)]})
        check(st == 200, "damage setup batch %d" % b)
    srv.kill()
    logs = sorted(glob.glob(os.path.join(data, "wal", "*.log")))
    check(len(logs) == 1, "one log segment: %s" % logs)
    log = logs[-1]
    pristine = data + ".pristine"
    shutil.copytree(data, pristine)

    # torn tail: cut into the last record -> dropped, server starts
    size = os.path.getsize(log)
    os.truncate(log, size - 9)
    srv = Server(data)
    st, _ = get_point(srv, "d", 55)
    check(st == 404, "torn last batch dropped (%s)" % st)
    st, _ = get_point(srv, "d", 45)
    check(st == 200, "earlier batches kept (%s)" % st)
    rc, err = srv.stop()

    # flipped byte in the first record: corruption, not a tear
    shutil.rmtree(data)
    shutil.copytree(pristine, data)
    flip(log, 32 + 40)
    rc, err = Server(data, expect_fail=True).wait_exit(expect=1)
    check(rc == 1, "corrupt log stops the start (rc %s)" % rc)
    check(os.path.basename(log) in err and "offset 32" in err and "--recover" in err,
          "message names file, offset and --recover: %s" % err.strip()[-400:])
    srv = Server(data, "--recover")
    st, _ = get_point(srv, "d", 0)
    check(st == 404, "--recover truncated at the damaged record")
    st, body = srv.req("PUT", "/v1/collections/d/points",
                       {"points": [{"id": 1, "vector": vec(1)}]})
    check(st == 200, "writes work after --recover")
    rc, err = srv.stop()
    check(rc == 0, "stop after recover")

    # flipped byte in a snapshot: the start stops, naming the file
    snaps = glob.glob(os.path.join(data, "snap", "*.snap"))
    check(len(snaps) == 1, "snapshot written at shutdown")
    if snaps:
        flip(snaps[0], os.path.getsize(snaps[0]) // 2)
        rc, err = Server(data, expect_fail=True).wait_exit(expect=1)
        check(rc == 1 and os.path.basename(snaps[0]) in err and "offset" in err,
              "damaged snapshot stops the start naming it: rc %s %s" % (rc, err.strip()[-300:]))
    shutil.rmtree(pristine)

    # a second server on the same directory is refused
    data2 = os.path.join(tmp, "busy")
    with Server(data2):
        rc, err = Server(data2, expect_fail=True).wait_exit(expect=1)
        check(rc == 1 and "in use" in err, "second server on one data dir refused: %s" % err[-200:])


# ------------------------------------------------------------- 5. disk full
def test_disk_full(tmp):
    """A real kernel write error: RLIMIT_FSIZE makes write() fail with EFBIG
    (SIGXFSZ ignored, which exec keeps), which the log reports as no space."""
    import resource
    data = os.path.join(tmp, "full")
    limit = 64 * 1024

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    srv = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data,
                           wait="readyz", preexec_fn=limited)
    st, _ = srv.req("PUT", "/v1/collections/f", {"dim": DIM, "metric": "l2"})
    check(st in (200, 201), "create under a file-size limit")
    acked, refused = [], None
    for b in range(200):
        pts = [{"id": b * 20 + i, "vector": vec(b * 20 + i), "payload": {"b": b}}
               for i in range(20)]
        st, body = srv.req("PUT", "/v1/collections/f/points", {"points": pts})
        if st == 200:
            acked.extend(p["id"] for p in pts)
            continue
        refused = (st, body, [p["id"] for p in pts])
        break
    check(refused is not None and refused[0] == 507 and
          refused[1]["error"]["code"] == "no_space",
          "a full disk answers 507 no_space: %s" % (refused and refused[:2],))
    if refused:
        st, _ = get_point(srv, "f", refused[2][0])
        check(st == 404, "nothing of the refused batch is visible")
        st, _ = get_point(srv, "f", acked[-1])
        check(st == 200, "reads keep working after the disk error")
        st, body = srv.req("POST", "/v1/collections/f/search", {"vector": vec(3), "k": 3})
        check(st == 200 and body["result"][0]["id"] == 3, "search keeps working")
    rc, err = srv.stop()  # the final snapshot cannot be written either
    check(rc == 0, "clean stop even though the final snapshot failed: %s" % err[-300:])
    with Server(data) as srv:
        got = snapshot_state(srv, "f", acked + (refused[2] if refused else []))
        check(all(got[i] is not None for i in acked), "every acknowledged point is back")
        check(not refused or all(got[i] is None for i in refused[2]),
              "the refused batch is absent after restart")


# ----------------------------------------------------------------- 4. import
def test_import(tmp):
    data = os.path.join(tmp, "import")
    base = os.path.join(tmp, "base.f32")
    rows = [vec(7000 + i) for i in range(300)]
    with open(base, "wb") as f:
        for r in rows:
            f.write(struct.pack("<%df" % DIM, *r))
    p = subprocess.run([BIN, "import", "--data-dir", data, "--collection", "imp",
                        "--input", base, "--dim", str(DIM), "--metric", "l2",
                        "--first-id", "1000"], capture_output=True, text=True)
    check(p.returncode == 0, "import: %s" % p.stderr[-300:])
    p = subprocess.run([BIN, "import", "--data-dir", data, "--collection", "imp",
                        "--input", base, "--dim", str(DIM), "--first-id", "1000"],
                       capture_output=True, text=True)
    check(p.returncode == 1 and "exists" in p.stderr, "re-import of the same ids refused: %s"
          % p.stderr[-200:])
    with Server(data) as srv:
        st, body = srv.req("GET", "/v1/collections/imp")
        check(st == 200 and body["result"].get("count") == 300, "imported count: %s %s" % (st, body))
        st, body = get_point(srv, "imp", 1007)
        check(st == 200 and body["result"]["vector"] == rows[7], "imported vector bit-exact")
        st, body = srv.req("POST", "/v1/collections/imp/search", {"vector": rows[9], "k": 1})
        check(st == 200 and body["result"][0]["id"] == 1009, "search finds an imported point")


def main():
    if not os.path.exists(MODEL):
        print("SKIP: no model at", MODEL)
        return 77
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="es_dur_")
    try:
        test_restart(tmp)
        test_damage(tmp)
        test_import(tmp)
        test_disk_full(tmp)
        test_crash(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks passed, %d failed, %.1f s" % (check.passed, len(check.failures), time.time() - t0))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
