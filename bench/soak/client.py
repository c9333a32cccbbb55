#!/usr/bin/env python3
"""client.py URL COLLECTION SECONDS OUT_JSON — the writer side of bench/soak.sh.

Standard library only.  First loads the collection and then creates
OUT_JSON.loaded (bench/soak.sh starts wrk then); then runs for SECONDS:

  * WRITERS threads (default 2), each owning its own slice of the id space
    (N_IDS ids, default 10,000 each, loaded in full before), each tick (TICK_HZ per second, default 10) delete DELETE_N live ids and
    upsert UPSERT_N points: the deleted ids of the previous tick come back,
    the rest overwrite live ids.  So writes never stop, yet the live set
    stays the same size: memory should not grow.  Half the points are sent
    by text, half by vector; every payload carries a version number.
  * one thread sends deliberately bad requests (malformed JSON, unknown
    collection, wrong dimension, wrong content type, NaN) at BAD_HZ per
    second (default 2) and checks each gets exactly its 4xx.
At the end it reads back every point that should exist (GET by id: present,
right payload version) and every deleted one (404), and writes a JSON summary
(counts, errors, latency percentiles per request kind) to OUT_JSON.  Exit
status 0 only if every request got the status it should have.
"""
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

url = urllib.parse.urlparse(sys.argv[1])
COLL = sys.argv[2]
SECONDS = float(sys.argv[3])
OUT = sys.argv[4]
WRITERS = int(os.environ.get("WRITERS", "2"))
N_IDS = int(os.environ.get("N_IDS", "10000"))
TICK_HZ = float(os.environ.get("TICK_HZ", "10"))
UPSERT_N = int(os.environ.get("UPSERT_N", "10"))
DELETE_N = int(os.environ.get("DELETE_N", "5"))
BAD_HZ = float(os.environ.get("BAD_HZ", "2"))
VOCAB = int(os.environ.get("VOCAB", "50000"))  # the model's words are w0 .. w{VOCAB-1}


class Conn:
    """A keep-alive connection that reconnects if the server closed it."""

    def __init__(self):
        self.c = None

    def req(self, method, path, body=None, raw=None, ctype="application/json"):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": ctype} if data is not None else {}
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            try:
                t0 = time.perf_counter()
                self.c.request(method, path, body=data, headers=headers)
                r = self.c.getresponse()
                payload = r.read()
                dt = time.perf_counter() - t0
                if r.getheader("Connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                try:
                    js = json.loads(payload) if payload else None
                except ValueError:
                    js = None
                return r.status, js, dt
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # a keep-alive connection the server closed between requests
                # (e.g. after the idle timeout) is retried once on a new one
                self.c.close()
                self.c = None
                if attempt:
                    raise


lock = threading.Lock()
lat = {}        # kind -> [seconds]
counts = {}     # kind -> requests
errors = []     # unexpected statuses / exceptions
stop_at = 0.0


def record(kind, status, dt, want, detail=""):
    with lock:
        lat.setdefault(kind, []).append(dt)
        counts[kind] = counts.get(kind, 0) + 1
        if status != want and len(errors) < 1000:
            errors.append("%s: status %s, want %s %s" % (kind, status, want, detail))


def text_of(rng):
    return " ".join("w%d" % rng.randrange(VOCAB) for _ in range(rng.randint(3, 12)))


class Writer(threading.Thread):
    def __init__(self, k, dim):
        super().__init__(daemon=True)
        self.k = k
        self.dim = dim
        self.rng = random.Random(1000 + k)
        self.ids = list(range(k * N_IDS, (k + 1) * N_IDS))
        self.version = {}       # id -> version of the live point
        self.dead = []          # deleted, to be re-inserted next tick
        self.gone = set()       # ever deleted and not re-inserted since
        self.n = 0
        self.conn = Conn()

    def point(self, pid):
        self.n += 1
        p = {"id": pid, "payload": {"v": self.n, "w": self.k}}
        if pid % 2:
            p["text"] = text_of(self.rng)
        else:
            p["vector"] = [round(self.rng.uniform(-1, 1), 4) for _ in range(self.dim)]
        self.version[pid] = self.n
        return p

    def upsert(self, pids, kind):
        pts = [self.point(pid) for pid in pids]
        st, js, dt = self.conn.req("PUT", "/v1/collections/%s/points" % COLL, {"points": pts})
        ok = st == 200 and js and js.get("result", {}).get("upserted") == len(pts)
        record(kind, 200 if ok else st, dt, 200, str(js)[:200])
        for pid in pids:
            self.gone.discard(pid)

    def load(self):
        for b in range(0, len(self.ids), 500):
            self.upsert(self.ids[b:b + 500], "load")

    def run(self):
        tick = 1.0 / TICK_HZ
        nxt = time.time()
        while time.time() < stop_at:
            live = list(self.version.keys())
            dels = self.rng.sample(live, DELETE_N)
            st, js, dt = self.conn.req("POST", "/v1/collections/%s/points/delete" % COLL,
                                       {"points": dels})
            ok = st == 200 and js and js.get("result", {}).get("deleted") == len(dels)
            record("delete", 200 if ok else st, dt, 200, str(js)[:200])
            for pid in dels:
                del self.version[pid]
                self.gone.add(pid)
            back = self.dead
            self.dead = dels
            over = self.rng.sample(list(self.version.keys()), max(0, UPSERT_N - len(back)))
            self.upsert(back + over, "upsert")
            nxt += tick
            pause = nxt - time.time()
            if pause > 0:
                time.sleep(pause)
            else:
                nxt = time.time()  # fell behind (server busy): no burst to catch up


BAD = [
    ("POST", "/v1/embeddings", b'{"input": ', "application/json", 400),
    ("POST", "/v1/collections/no-such-collection/search", b'{"text": "w1", "k": 3}', "application/json", 404),
    ("POST", "/v1/embeddings", b'{"input": "w1"}', "text/plain", 415),
    ("PUT", "/v1/collections/{c}/points", b'{"points": [{"id": 1, "vector": [1, 2, 3]}]}', "application/json", 422),
    ("POST", "/v1/collections/{c}/search", b'{"text": "w1", "k": 0}', "application/json", 422),
    ("POST", "/v1/collections/{c}/search", b'{"vector": [NaN], "k": 3}', "application/json", 400),
    ("GET", "/v1/no-such-route", None, None, 404),
]


def bad_requests():
    conn = Conn()
    rng = random.Random(7)
    while time.time() < stop_at:
        method, path, raw, ctype, want = rng.choice(BAD)
        st, js, dt = conn.req(method, path.replace("{c}", COLL), raw=raw, ctype=ctype)
        good_shape = isinstance(js, dict) and "error" in js
        record("bad", st if good_shape else -st, dt, want, "%s %s" % (method, path))
        with lock:
            counts["bad_%d" % want] = counts.get("bad_%d" % want, 0) + 1
        time.sleep(1.0 / BAD_HZ)


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 3)


def verify(writers):
    conn = Conn()
    present = absent = 0
    for w in writers:
        for pid, v in w.version.items():
            st, js, dt = conn.req("GET", "/v1/collections/%s/points/%d" % (COLL, pid))
            got = js.get("result", {}).get("payload", {}).get("v") if st == 200 and js else None
            record("verify_get", 200 if got == v else (st if st != 200 else -1), dt, 200,
                   "id %d version %s, want %d" % (pid, got, v))
            present += 1
        for pid in w.gone:
            st, js, dt = conn.req("GET", "/v1/collections/%s/points/%d" % (COLL, pid))
            record("verify_gone", st, dt, 404, "deleted id %d" % pid)
            absent += 1
    return present, absent


def main():
    global stop_at
    c = Conn()
    st, info, _ = c.req("GET", "/v1/info")
    dim = info["models"][0]["dim"]
    writers = [Writer(k, dim) for k in range(WRITERS)]
    t0 = time.time()
    loaders = [threading.Thread(target=w.load) for w in writers]
    for t in loaders:
        t.start()
    for t in loaders:
        t.join()
    load_s = time.time() - t0
    open(OUT + ".loaded", "w").close()
    t0 = time.time()
    stop_at = t0 + SECONDS
    threads = writers + [threading.Thread(target=bad_requests, daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_s = time.time() - t0
    present, absent = verify(writers)
    st, js, _ = c.req("GET", "/v1/collections/%s" % COLL)
    count = js["result"]["count"] if st == 200 else None
    want_count = sum(len(w.version) for w in writers)
    if count != want_count:
        errors.append("collection count %s, want %d" % (count, want_count))
    summary = {
        "seconds": round(run_s, 1), "load_seconds": round(load_s, 1),
        "writers": WRITERS, "ids_per_writer": N_IDS,
        "requests": counts, "errors": len(errors), "first_errors": errors[:20],
        "points_verified_present": present, "points_verified_deleted": absent,
        "collection_count": count,
        "latency_ms": {k: {"p50": pct(v, 0.50), "p99": pct(v, 0.99), "max": pct(v, 1.0)}
                       for k, v in lat.items()},
    }
    with open(OUT, "w") as f:
        json.dump(summary, f, indent=1)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
