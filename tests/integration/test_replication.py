#!/usr/bin/env python3
"""test_replication.py — one primary and two read-only replicas behind real
nginx, routed by deploy/nginx/embedsrv-readwrite.conf (deploy/SCALING.md,
section 2).

The test starts Debian's nginx on 127.0.0.1 and a free port with a
generated nginx.conf that includes the deploy file as it is (only the three
upstream addresses and the listen port are substituted), and checks:
  - writes sent through nginx (create, upsert, delete points, snapshot)
    land on the primary and are acknowledged;
  - reads through nginx (search, get) are answered by the replicas,
    round-robin (each replica's /metrics counts its own searches), never by
    the primary;
  - a write sent straight to a replica is refused (403 read_only naming
    the primary) and changes nothing;
  - a replica started on a copy of the primary's data directory taken after
    a snapshot (the refresh procedure of SCALING.md) serves what the
    primary held at the copy, and not what was written after it: replicas
    refreshed by copying are stale until the next copy;
and then the same routing with two followers fed by log shipping
(serve --follow, issue 22): under a steady write load through nginx,
  - every write read back through nginx (from a follower) within a bounded
    lag;
  - a follower SIGKILLed and restarted, then the primary SIGKILLed and
    restarted (same address, same data directory), while writes go on;
  - idle followers long-poll (a handful of log requests in 2 s, not ~400);
  - once caught up, every acknowledged write is on every follower, no
    follower ever accepted a write (their /metrics), and both report lag 0
    (/metrics and /v1/info);
and that a follower's bootstrap bundle, seconds of disk work at scale, is
built off the HTTP worker: with one worker thread, /healthz is answered
while it is built; and the log's long poll (GET /v1/replication/wal?
wait_ms=W): a request waiting at the log's end gets a record appended
meanwhile well before W, an empty answer at expiry, holds no HTTP worker
(one worker thread: /healthz answered during the wait), bad wait_ms values
are 400, and SIGTERM does not wait for a pending long poll; a follower
against a primary that ignores wait_ms polls every 20 ms as before.
Skips (exit 77) with a message when nginx is not installed.
"""
import http.client
import os
import re
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import es_server  # noqa: E402
from es_server import HOST, LEE_MODEL as MODEL, ROOT, SLOW  # noqa: E402

CONF = os.path.join(ROOT, "deploy", "nginx", "embedsrv-readwrite.conf")
check = es_server.Checks()


def nginx_for(binary, primary, replicas):
    """nginx routing with deploy/nginx/embedsrv-readwrite.conf to these."""
    return es_server.Nginx(CONF, {
        "embedsrv-primary:8080": "%s:%d" % (HOST, primary.port),
        "embedsrv-replica-0:8080": "%s:%d" % (HOST, replicas[0].port),
        "embedsrv-replica-1:8080": "%s:%d" % (HOST, replicas[1].port)}, binary=binary)


def write_routes():
    """(method, path) of every ROUTE_WRITE route in server/routes.c, with
    {name} as "c" and any other {param} as "1"."""
    with open(os.path.join(ROOT, "server", "routes.c")) as f:
        text = f.read()
    out = []
    for m in re.finditer(r'\{"([A-Z]+)", "([^"]+)", \w+, ([^}]*)\}', text):
        if "ROUTE_WRITE" in m.group(3):
            path = m.group(2).replace("{name}", "c")
            out.append((m.group(1), re.sub(r"\{[a-z_]+\}", "1", path)))
    return out


def searches(srv):
    """Searches this server answered with 200 (its own /metrics)."""
    v = srv.metric('embedsrv_http_requests_total{route="POST /v1/collections/{name}/search",'
                   'status="200"}')
    return int(v or 0)


def copy_data_dir(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("LOCK"))


def info_repl(srv):
    st, js = srv.req("GET", "/v1/info")
    return js.get("replication", {}) if st == 200 else {}


def wait_caught_up(primary, followers, limit):
    """Until every follower applied the primary's last lsn; the seconds it took."""
    t0 = time.time()
    while time.time() - t0 < limit * SLOW:
        last = info_repl(primary).get("last_lsn")
        reps = [info_repl(f) for f in followers]
        if last is not None and all(r.get("applied_lsn") == last and r.get("lag_records") == 0
                                    for r in reps):
            return time.time() - t0
        time.sleep(0.05)
    return None


class Writer(threading.Thread):
    """Upserts through nginx, one point per request, ids 1000, 1001, ...;
    remembers which were acknowledged (200) and how long each took to be
    readable through nginx (the read goes to a follower)."""

    def __init__(self, via):
        super().__init__(daemon=True)
        self.via = via
        self.stop = threading.Event()
        self.acked = []
        self.refused = 0
        self.lags = []
        self.next = 1000

    def run(self):
        while not self.stop.is_set():
            i = self.next
            self.next += 1
            try:
                st, _ = self.via.req("PUT", "/v1/collections/s/points",
                                     {"points": [{"id": i, "vector": [float(i % 97), 1.0, 0.5, 0.25],
                                                  "payload": {"i": i}}]}, timeout=10)
            except OSError:
                st = 0
            if st != 200:
                self.refused += 1  # the primary is down: not acknowledged
                time.sleep(0.02)
                continue
            self.acked.append(i)
            if i % 10 == 0:  # read your write through nginx
                t0 = time.time()
                while time.time() - t0 < 10:
                    try:
                        if self.via.req("GET", "/v1/collections/s/points/%d" % i, timeout=5)[0] == 200:
                            self.lags.append(time.time() - t0)
                            break
                    except OSError:
                        pass
                    time.sleep(0.005)
                else:
                    self.lags.append(None)
            time.sleep(0.005)


def writes_taken(srv):
    """Write requests this server answered 2xx (its own /metrics)."""
    _, text = srv.req("GET", "/metrics")
    n = 0
    for line in (text or "").splitlines():
        if line.startswith("embedsrv_http_requests_total{") and 'status="2' in line and \
                any(m in line for m in ('route="PUT ', 'route="DELETE ', '/points/delete"')):
            n += int(float(line.rsplit(" ", 1)[1]))
    return n


def test_followers(nginx_bin, tmp):
    """One primary, two --follow followers behind the same nginx routing."""
    servers = {}
    ng = None
    try:
        pdir = os.path.join(tmp, "fprimary")
        pargs = ["--model", MODEL, "--quiet", "--data-dir", pdir]
        servers["p"] = es_server.Server(*pargs, wait="readyz")
        pport = servers["p"].port
        purl = "http://%s:%d" % (HOST, pport)
        check(servers["p"].req("PUT", "/v1/collections/s", {"dim": 4, "metric": "l2"})[0] == 201,
              "create on the primary")
        pts = [{"id": i, "vector": [float(i), 0.0, 1.0, 0.0]} for i in range(1, 101)]
        check(servers["p"].req("PUT", "/v1/collections/s/points", {"points": pts})[0] == 200,
              "first points on the primary")
        fargs = {}
        for k in range(2):
            fargs[k] = ["--model", MODEL, "--quiet", "--data-dir", os.path.join(tmp, "f%d" % k),
                        "--follow", purl]
            servers[k] = es_server.Server(*fargs[k], wait="readyz")
        for k in range(2):
            st, js = servers[k].req("GET", "/v1/collections/s")
            check(st == 200 and js["result"]["count"] == 100,
                  "follower %d bootstrapped with the primary's points (%s)" % (k, js))
            st, js = servers[k].req("GET", "/readyz")
            check(st == 200 and js.get("role") == "follower", "follower %d ready (%s)" % (k, js))
        ng = nginx_for(nginx_bin, servers["p"], [servers[0], servers[1]])
        via = ng

        w = Writer(via)
        w.start()
        time.sleep(2.0 * SLOW)
        # a follower crashes and comes back under the write load
        servers[0].kill()
        time.sleep(0.5)
        servers[0] = es_server.Server(*fargs[0], wait="readyz", port=servers[0].port)
        time.sleep(1.0 * SLOW)
        # the primary crashes and comes back
        servers["p"].kill()
        time.sleep(0.5)
        servers["p"] = es_server.Server(*pargs, wait="readyz", port=pport)
        time.sleep(2.0 * SLOW)
        w.stop.set()
        w.join(30)
        check(len(w.acked) > 50, "writes acknowledged under the load (%d, %d refused while the "
              "primary was down)" % (len(w.acked), w.refused))
        took = wait_caught_up(servers["p"], [servers[0], servers[1]], 20)
        check(took is not None, "both followers caught up with the primary (%s s)" % took)
        lags = [x for x in w.lags if x is not None]
        # bound: a poll (20 ms) at most 1 s of reconnect backoff after the
        # primary's restart, and the machine's noise
        check(len(lags) == len(w.lags) and lags and max(lags) < 3.0 * SLOW,
              "every write read back through nginx within 3 s (%d reads, max %.3f s, "
              "median %.3f s; %d never)" % (len(w.lags), max(lags or [0]),
                                             sorted(lags or [0])[len(lags) // 2],
                                             len(w.lags) - len(lags)))
        for k in range(2):
            missing = [i for i in w.acked
                       if servers[k].req("GET", "/v1/collections/s/points/%d" % i)[0] != 200]
            check(not missing, "follower %d holds every acknowledged write (%d missing of %d: %s)"
                  % (k, len(missing), len(w.acked), missing[:10]))
            st, js = servers[k].req("PUT", "/v1/collections/s/points",
                                    {"points": [{"id": 5, "vector": [0.0, 0.0, 0.0, 0.0]}]})
            check(st == 403 and js["error"]["code"] == "read_only" and purl in js["error"]["message"],
                  "direct write to follower %d refused (%s %s)" % (k, st, js))
            check(writes_taken(servers[k]) == 0, "follower %d accepted no write" % k)
            rep = info_repl(servers[k])
            check(rep.get("state") == "following" and rep.get("healthy") is True and
                  rep.get("lag_records") == 0 and rep.get("lag_seconds") == 0,
                  "follower %d reports lag 0 in /v1/info (%s)" % (k, rep))
            check(servers[k].metric("embedsrv_replication_lag_records") == 0 and
                  servers[k].metric("embedsrv_replication_lag_seconds") == 0,
                  "follower %d reports lag 0 in /metrics" % k)
        # idle followers long-poll (wait_ms): a short poll would be ~100
        # answered requests per second per follower
        walm = 'embedsrv_http_requests_total{route="GET /v1/replication/wal",status="200"}'
        n0 = servers["p"].metric(walm) or 0
        time.sleep(2.0)
        nreq = (servers["p"].metric(walm) or 0) - n0
        check(nreq <= 8, "two idle followers long-poll: %d log requests answered in 2 s" % nreq)
        st, js = servers["p"].req("GET", "/v1/collections/s")
        check(st == 200 and js["result"]["count"] >= 100 + len(set(w.acked) - set(range(1, 101))),
              "the primary holds every acknowledged write (%s)" % js.get("result", {}).get("count"))
        print("followers: %d writes acknowledged, %d refused while the primary was down; "
              "read-your-write through nginx: median %.3f s, max %.3f s; caught up %.2f s "
              "after the load" % (len(w.acked), w.refused, sorted(lags or [0])[len(lags) // 2],
                                   max(lags or [0]), took or -1))
        check(not ng.critical_errors(), "nginx logged no critical error (%s)"
              % ng.critical_errors()[:3])
    finally:
        if ng:
            ng.stop()
        for s in servers.values():
            rc, log = s.stop()
            check(rc == 0, "%s exits 0 (%s)" % (" ".join(s.argv[3:9]), rc))


def test_bundle_off_worker(tmp):
    """A follower's bootstrap (GET /v1/replication/snapshot: a checkpoint of
    every collection, each snapshot fsynced, then a copy of every file)
    takes seconds at scale; it is built off the HTTP worker (server/http.c
    defers it), so with ONE worker thread a /healthz sent meanwhile is
    answered at once, not after the bundle.  The build is made slow with
    many collections written since the last checkpoint (one fsync each);
    on a fast disk more are added (60 at a time, up to 600) until the
    bundle's first byte takes over 0.15 s."""
    srv = es_server.Server("--model", MODEL, "--quiet", "--data-dir",
                           os.path.join(tmp, "bundle"), "--threads", "1", wait="readyz")
    ncoll = 0
    try:
        for attempt in range(10):
            for c in range(ncoll, ncoll + 60):
                srv.req("PUT", "/v1/collections/c%d" % c, {"dim": 100, "m": 4,
                                                           "ef_construction": 8})
                pts = [{"id": i, "vector": [float((i * 31 + j * 7) % 101) + 1.0
                                            for j in range(100)]} for i in range(100)]
                if srv.req("PUT", "/v1/collections/c%d/points" % c, {"points": pts})[0] != 200:
                    check(False, "upsert into c%d refused" % c)
                    return
            ncoll += 60
            # a write in every collection since the last checkpoint
            for c in range(ncoll):
                srv.req("PUT", "/v1/collections/c%d/points" % c,
                        {"points": [{"id": 1000 + attempt, "vector": [1.0] * 100}]})
            res = {}

            def bundle():
                t0 = time.time()
                c = http.client.HTTPConnection(HOST, srv.port, timeout=120 * SLOW)
                try:
                    c.request("GET", "/v1/replication/snapshot")
                    r = c.getresponse()
                    res["ttfb"] = time.time() - t0  # the build is done
                    res["st"], res["len"] = r.status, len(r.read())
                    res["lsn"] = r.getheader("X-Embedsrv-Lsn")
                except (OSError, http.client.HTTPException) as e:
                    res["st"] = str(e)
                finally:
                    c.close()

            t = threading.Thread(target=bundle)
            t.start()
            time.sleep(0.02)
            lat = []
            bad = []
            while t.is_alive():
                t0 = time.time()
                st, _ = srv.req("GET", "/healthz", timeout=60)
                if "ttfb" not in res:  # answered while the bundle was being built
                    lat.append(time.time() - t0)
                if st != 200:
                    bad.append(st)
                time.sleep(0.005)
            check(not bad, "/healthz answered 200 during the bundle (%s)" % bad[:5])
            t.join()
            ttfb = res.get("ttfb", 0)
            if ttfb > 0.15:
                break
        check(res.get("st") == 200 and res.get("len", 0) > ncoll * 100 * 400 and res.get("lsn"),
              "the bundle of %d collections arrived (%s, %s bytes, lsn %s)"
              % (ncoll, res.get("st"), res.get("len"), res.get("lsn")))
        # the check means something only when the build is slow
        check(ttfb > 0.15, "the bundle took long enough to build (%.3f s, %d collections)"
              % (ttfb, ncoll))
        check(len(lat) >= 2 and max(lat) < ttfb / 3,
              "with one HTTP worker, /healthz answered while the bundle was built "
              "(%d answers, max %.3f s; bundle built in %.3f s)" % (len(lat), max(lat or [0]), ttfb))
        check(srv.metric('embedsrv_http_requests_total{route="GET /v1/replication/snapshot",'
                         'status="200"}') == attempt + 1, "the deferred answers are in /metrics")
        print("bundle of %d collections: built in %.3f s; /healthz meanwhile: %d answers, "
              "max %.3f s" % (ncoll, ttfb, len(lat), max(lat or [0])))
    finally:
        rc, _ = srv.stop()
        check(rc == 0, "bundle server exits 0 (%s)" % rc)


def wal_get(srv, frm, wait, out, timeout=60):
    """GET /v1/replication/wal?from=frm&wait_ms=wait into out: status,
    body length, the Wait-Ms and Last-Lsn headers, seconds taken."""
    t0 = time.time()
    try:
        st, body, h = srv.request("GET", "/v1/replication/wal?from=%d&wait_ms=%d" % (frm, wait),
                                  timeout=timeout)
        out.update(st=st, n=len(body or ""), wait=h.get("x-embedsrv-wait-ms"),
                   last=h.get("x-embedsrv-last-lsn"))
    except (OSError, http.client.HTTPException) as e:
        out["st"] = str(e)
    out["took"] = time.time() - t0


def test_long_poll(tmp):
    srv = es_server.Server("--model", MODEL, "--quiet", "--data-dir",
                           os.path.join(tmp, "longpoll"), "--threads", "1", wait="readyz")
    try:
        check(srv.req("PUT", "/v1/collections/lp", {"dim": 3})[0] in (200, 201), "create lp")
        check(srv.req("PUT", "/v1/collections/lp/points",
                      {"points": [{"id": 1, "vector": [1.0, 0.0, 0.0]}]})[0] == 200, "upsert 1")
        last = {}
        wal_get(srv, 0, 0, last)
        lsn = int(last["last"])
        check(last["st"] == 200 and last["n"] > 0 and last["wait"] is None,
              "a plain read answers at once with records, no Wait-Ms (%s)" % last)
        # records already there: answered at once even with a long wait
        res = {}
        wal_get(srv, lsn - 1, 20000, res)
        check(res["st"] == 200 and res["n"] > 0 and res["took"] < 5 * SLOW,
              "records after `from` are answered at once (%s)" % res)
        # an append during the wait wakes it, long before the 20 s expiry
        res = {}
        t = threading.Thread(target=wal_get, args=(srv, lsn, 20000, res))
        t.start()
        time.sleep(0.5)
        hz = []
        for _ in range(5):  # one worker thread: not held by the waiting request
            t0 = time.time()
            st, _ = srv.req("GET", "/healthz", timeout=10)
            hz.append((st, time.time() - t0))
        check(t.is_alive(), "the long poll is still waiting after 0.5 s + 5 /healthz")
        check(all(st == 200 and dt < 2.0 * SLOW for st, dt in hz),
              "/healthz answered at once during the long poll, one worker thread (%s)" % hz)
        t_put = time.time()
        check(srv.req("PUT", "/v1/collections/lp/points",
                      {"points": [{"id": 2, "vector": [0.0, 1.0, 0.0]}]})[0] == 200, "upsert 2")
        t.join(30)
        woke = time.time() - t_put
        check(res.get("st") == 200 and res.get("n", 0) > 0 and res.get("wait") == "20000"
              and int(res.get("last", 0)) == lsn + 1,
              "the waiting request got the appended record, with Wait-Ms (%s)" % res)
        check(woke < 3.0 * SLOW and res["took"] < 10,
              "woken by the append %.3f s after it, %.2f s into a 20 s wait" % (woke, res["took"]))
        print("long poll: record appended 0.5 s into a 20 s wait answered %.1f ms after the "
              "append" % (woke * 1000))
        # expiry: an empty answer, with Wait-Ms, after the wait
        res = {}
        wal_get(srv, lsn + 1, 400, res)
        check(res["st"] == 200 and res["n"] == 0 and res["wait"] == "400"
              and 0.38 <= res["took"] < 5 * SLOW,
              "nothing appended: an empty answer at expiry (%s)" % res)
        # bad wait values
        for bad in ("-1", "25001", "abc", "", "1.5", "99999999999999999999999"):
            st, js, _ = srv.request("GET", "/v1/replication/wal?from=0&wait_ms=" + bad)
            check(st == 400 and isinstance(js, dict)
                  and js["error"]["code"] == "invalid_parameter"
                  and "wait_ms" in js["error"]["message"],
                  "wait_ms=%r is 400 (%s %s)" % (bad, st, js))
        # shutdown does not wait for a pending long poll
        res = {}
        t = threading.Thread(target=wal_get, args=(srv, lsn + 1, 25000, res))
        t.start()
        time.sleep(0.5)
        t0 = time.time()
        rc, _ = srv.stop()
        took = time.time() - t0
        t.join(30)
        check(rc == 0 and took < 10, "SIGTERM with a long poll pending: exit %s in %.2f s"
              % (rc, took))
        check(res.get("st") == 200 and res.get("n") == 0 and res.get("wait") is None
              and res["took"] < 10,
              "the pending long poll is answered at shutdown, empty, no Wait-Ms (%s)" % res)
    finally:
        if srv.proc.poll() is None:
            srv.stop()


class OldPrimaryProxy(threading.Thread):
    """An HTTP/1.0 proxy in front of a primary that drops wait_ms from every
    request: to a follower it looks like a primary from before the long
    poll (answers at once, no X-Embedsrv-Wait-Ms).  Counts the log requests."""

    def __init__(self, upstream_port):
        super().__init__(daemon=True)
        import http.server
        import urllib.parse
        proxy = self
        self.wal_requests = 0
        self.saw_wait = 0

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
                if u.path == "/v1/replication/wal":
                    proxy.wal_requests += 1
                    proxy.saw_wait += any(k == "wait_ms" for k, _ in q)
                q = [(k, v) for k, v in q if k != "wait_ms"]
                path = u.path + ("?" + urllib.parse.urlencode(q) if q else "")
                c = http.client.HTTPConnection(HOST, upstream_port, timeout=60)
                try:
                    hdr = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "api-key")}
                    c.request("GET", path, headers=hdr)
                    r = c.getresponse()
                    body = r.read()
                    self.send_response(r.status)
                    for k, v in r.getheaders():
                        if k.lower() not in ("content-length", "connection", "date", "server",
                                             "transfer-encoding"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    c.close()

        self.httpd = http.server.ThreadingHTTPServer((HOST, 0), H)
        self.port = self.httpd.server_address[1]

    def run(self):
        self.httpd.serve_forever()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_old_primary(tmp):
    """A follower against a primary that ignores wait_ms (an older one, here
    a proxy that drops it) follows as before: polls every 20 ms while idle,
    neither waiting nor spinning."""
    p = es_server.Server("--model", MODEL, "--quiet", "--data-dir", os.path.join(tmp, "oldp"),
                         wait="readyz")
    proxy = OldPrimaryProxy(p.port)
    proxy.start()
    f = None
    try:
        check(p.req("PUT", "/v1/collections/o", {"dim": 3})[0] in (200, 201), "create o")
        f = es_server.Server("--model", MODEL, "--quiet", "--data-dir", os.path.join(tmp, "oldf"),
                             "--follow", "http://%s:%d" % (HOST, proxy.port), wait="readyz")
        check(wait_caught_up(p, [f], 20) is not None, "the follower caught up via the old primary")
        n0 = proxy.wal_requests
        time.sleep(1.0)
        n = proxy.wal_requests - n0
        check(proxy.saw_wait > 0, "the follower asks with wait_ms (%d)" % proxy.saw_wait)
        check(5 <= n <= 80, "idle against an old primary: %d log polls in 1 s (every ~20 ms, "
              "no spin)" % n)
        check(p.req("PUT", "/v1/collections/o/points",
                    {"points": [{"id": 1, "vector": [1.0, 0.0, 0.0]}]})[0] == 200, "upsert o/1")
        t0 = time.time()
        got = None
        while time.time() - t0 < 10 * SLOW:
            if f.req("GET", "/v1/collections/o/points/1")[0] == 200:
                got = time.time() - t0
                break
            time.sleep(0.01)
        check(got is not None and got < 3 * SLOW, "a write reaches it by polling (%s s)" % got)
        print("old primary: %d log polls in 1 s idle; a write arrived in %.3f s" % (n, got or -1))
    finally:
        if f:
            f.stop()
        proxy.stop()
        p.stop()


def main():
    nginx_bin = es_server.find_nginx()
    if not nginx_bin:
        print("SKIP: nginx is not installed (apt-get install nginx; it is in "
              "deploy/packages-build.txt)")
        return 77
    tmp = tempfile.mkdtemp(prefix="es_repl_")
    servers = []
    ng = None
    try:
        pdir = os.path.join(tmp, "primary")
        primary = es_server.Server("--model", MODEL, "--quiet", "--data-dir", pdir,
                                   wait="readyz")
        servers.append(primary)
        purl = "http://%s:%d" % (HOST, primary.port)
        check(primary.req("PUT", "/v1/collections/c", {"dim": 3, "metric": "l2"})[0] == 201,
              "create on the primary")
        pts = [{"id": i, "vector": [float(i), 0.0, 1.0], "payload": {"n": i}} for i in range(1, 21)]
        check(primary.req("PUT", "/v1/collections/c/points", {"points": pts})[0] == 200,
              "first points on the primary")
        # the refresh procedure: snapshot, copy (without LOCK), start read-only
        check(primary.req("POST", "/v1/collections/c/snapshot")[0] == 200, "snapshot")
        replicas = []
        for k in range(2):
            rdir = os.path.join(tmp, "replica%d" % k)
            copy_data_dir(pdir, rdir)
            r = es_server.Server("--model", MODEL, "--quiet", "--data-dir", rdir,
                                 "--read-only", "--primary", purl, wait="readyz")
            servers.append(r)
            replicas.append(r)
        ng = nginx_for(nginx_bin, primary, replicas)
        via = ng

        # writes through nginx land on the primary
        st, js = via.req("PUT", "/v1/collections/c/points",
                         {"points": [{"id": 100, "vector": [100.0, 0.0, 1.0]}]})
        check(st == 200, "upsert through nginx acknowledged (%s %s)" % (st, js))
        st, js = via.req("POST", "/v1/collections/c/points/delete", {"points": [1]})
        check(st == 200, "delete through nginx acknowledged (%s %s)" % (st, js))
        st, js = via.req("PUT", "/v1/collections/d", {"dim": 3})
        check(st == 201, "create through nginx (%s %s)" % (st, js))
        check(via.req("DELETE", "/v1/collections/d")[0] == 200, "drop through nginx")
        check(via.req("POST", "/v1/collections/c/snapshot")[0] == 200, "snapshot through nginx")
        # every write route of the server (both dialects) reaches the
        # primary: a replica would answer 403 read_only, the primary 4xx
        # for a collection it does not have
        routes = write_routes()
        check(len(routes) >= 18, "write routes found in server/routes.c (%d)" % len(routes))
        for method, path in routes:
            path = path.replace("/collections/c", "/collections/nosuch")
            body = {} if method in ("PUT", "POST") else None
            st, js = via.req(method, path, body)
            check(st != 403, "%s %s through nginx reaches the primary (%s %s)"
                  % (method, path, st, js))
        st, js = primary.req("GET", "/v1/collections/c")
        check(st == 200 and js["result"]["count"] == 20, "the primary holds the writes (%s)" % js)
        check(primary.req("GET", "/v1/collections/c/points/100")[0] == 200, "primary has 100")
        check(primary.req("GET", "/v1/collections/c/points/1")[0] == 404, "primary deleted 1")

        # reads through nginx go round-robin to the replicas, never the primary
        before = [searches(s) for s in servers]
        n = 40
        ok = 0
        for i in range(n):
            st, js = via.req("POST", "/v1/collections/c/search", {"vector": [5.0, 0.0, 1.0], "k": 1})
            ok += st == 200 and js["result"][0]["id"] == 5
        check(ok == n, "searches through nginx answered (%d of %d)" % (ok, n))
        after = [searches(s) for s in servers]
        got = [a - b for a, b in zip(after, before)]
        check(got[0] == 0, "the primary served no read (%s)" % got)
        check(got[1] + got[2] == n and got[1] >= n // 4 and got[2] >= n // 4,
              "both replicas served reads, round-robin (%s)" % got)

        # replicas refreshed by copying hold what the primary had at the copy
        st, js = via.req("GET", "/v1/collections/c/points/1")
        check(st == 200, "a copied replica still has point 1 (stale until refreshed)")
        check(via.req("GET", "/v1/collections/c/points/100")[0] == 404,
              "a copied replica does not have point 100 yet")

        # a write sent straight to a replica is refused and changes nothing
        for r in replicas:
            st, js = r.req("PUT", "/v1/collections/c/points",
                           {"points": [{"id": 7, "vector": [0.0, 0.0, 0.0]}]})
            check(st == 403 and js["error"]["code"] == "read_only" and purl in js["error"]["message"],
                  "direct write to a replica is 403 naming the primary (%s %s)" % (st, js))
            st, js = r.req("GET", "/v1/collections/c/points/7")
            check(st == 200 and js["result"]["vector"] == [7.0, 0.0, 1.0],
                  "the refused write changed nothing (%s)" % js)
        check(not ng.critical_errors(), "nginx logged no critical error (%s)"
              % ng.critical_errors()[:3])
    finally:
        if ng:
            ng.stop()
        for s in servers:
            rc, log = s.stop()
            check(rc == 0, "%s exits 0 (%s)" % (" ".join(s.argv[3:7]), rc))
        shutil.rmtree(tmp, ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix="es_follow_")
    try:
        test_followers(nginx_bin, tmp)
        test_bundle_off_worker(tmp)
        test_long_poll(tmp)
        test_old_primary(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("replication: %d passed, %d failed" % (check.passed, len(check.failures)))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
