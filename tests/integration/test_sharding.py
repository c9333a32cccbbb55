#!/usr/bin/env python3
"""test_sharding.py — the arrangements of deploy/SCALING.md without
replication, behind real nginx: collections spread over two embedsrv owners,
routed by deploy/nginx/embedsrv-sharding.conf (an nginx `map` from the
collection name in the path to its owner; section 3), and two stateless
encoders behind deploy/nginx/embedsrv-encoders.conf (section 1).

The test starts two owners and Debian's nginx on 127.0.0.1 and free ports
with a generated nginx.conf that includes the deploy file as it is (only
the two owner addresses and the listen port are substituted), and checks:
  - each collection of the table (products -> owner a, articles and
    images -> owner b) is created, written, read and searched through
    nginx, at /v1/collections/{name}/... and at Qdrant's
    /collections/{name}/..., and every one of those requests reaches its
    owner and only it (each owner's own /metrics and its collections);
  - a collection not in the table goes to the default owner (a);
  - routes that name no collection (/v1/info, /v1/embeddings) go to the
    default owner;
  - listing collections through nginx lists only the default owner's
    collections (the documented limit), while each owner lists its own;
  - encoders: embeddings through nginx are answered by both instances,
    round-robin, with the same vectors as one instance gives directly; a
    collection route is refused there (404), never created on one encoder.
Skips (exit 77) with a message when nginx is not installed.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import es_server  # noqa: E402
from es_server import HOST, LEE_MODEL as MODEL, ROOT  # noqa: E402

CONF = os.path.join(ROOT, "deploy", "nginx", "embedsrv-sharding.conf")
ENCODERS = os.path.join(ROOT, "deploy", "nginx", "embedsrv-encoders.conf")
check = es_server.Checks()


def requests_total(srv):
    """All HTTP requests this server answered, by its own /metrics (the
    /metrics request itself not counted)."""
    _, text = srv.req("GET", "/metrics")
    n = 0
    for line in (text or "").splitlines():
        if line.startswith("embedsrv_http_requests_total{") and 'route="GET /metrics"' not in line:
            n += int(float(line.rsplit(" ", 1)[1]))
    return n


def names(srv, path="/v1/collections"):
    st, js = srv.req("GET", path)
    if st != 200:
        return None
    res = js["result"]
    if isinstance(res, dict):  # Qdrant: {"collections": [{"name": ...}]}
        return sorted(c["name"] for c in res["collections"])
    return sorted(c["name"] for c in res)


def exercise(via, name, dialect):
    """Create, write, read and search collection name through via; the
    number of requests sent."""
    vec = [1.0, 0.5, 0.25, 0.0]
    if dialect == "v1":
        calls = [
            ("PUT", "/v1/collections/%s" % name, {"dim": 4, "metric": "cosine"}, (201,)),
            ("PUT", "/v1/collections/%s/points" % name,
             {"points": [{"id": i, "vector": [vec[0] + i, 0.5, 0.25, float(i)],
                          "payload": {"c": name}} for i in range(1, 6)]}, (200,)),
            ("GET", "/v1/collections/%s/points/3" % name, None, (200,)),
            ("POST", "/v1/collections/%s/search" % name, {"vector": vec, "k": 2}, (200,)),
            ("POST", "/v1/collections/%s/points/delete" % name, {"points": [5]}, (200,)),
            ("GET", "/v1/collections/%s" % name, None, (200,)),
        ]
    else:
        calls = [
            ("PUT", "/collections/%s" % name,
             {"vectors": {"size": 4, "distance": "Cosine"}}, (200,)),
            ("PUT", "/collections/%s/points?wait=true" % name,
             {"points": [{"id": i, "vector": [vec[0] + i, 0.5, 0.25, float(i)],
                          "payload": {"c": name}} for i in range(1, 6)]}, (200,)),
            ("GET", "/collections/%s/points/3" % name, None, (200,)),
            ("POST", "/collections/%s/points/search" % name,
             {"vector": vec, "limit": 2}, (200,)),
            ("POST", "/collections/%s/points/delete?wait=true" % name,
             {"points": [5]}, (200,)),
            ("GET", "/collections/%s" % name, None, (200,)),
        ]
    for method, path, body, want in calls:
        st, js = via.req(method, path, body)
        check(st in want, "%s %s through nginx (%s %s)" % (method, path, st, str(js)[:200]))
    return len(calls)


def count(srv, name):
    st, js = srv.req("GET", "/v1/collections/%s" % name)
    return js["result"]["count"] if st == 200 else None


def embeddings_served(srv):
    v = srv.metric('embedsrv_http_requests_total{route="POST /v1/embeddings",status="200"}')
    return int(v or 0)


def test_encoders(nginx_bin):
    encs = []
    ng = None
    try:
        for _ in range(2):
            encs.append(es_server.Server("--model", MODEL, "--quiet", wait="readyz"))
        ng = es_server.Nginx(ENCODERS, {
            "embedsrv-encoder-0:8080": "%s:%d" % (HOST, encs[0].port),
            "embedsrv-encoder-1:8080": "%s:%d" % (HOST, encs[1].port)}, binary=nginx_bin)
        body = {"input": ["the cat sat", "a dog ran"]}
        st, direct = encs[0].req("POST", "/v1/embeddings", body)
        want = [d["embedding"] for d in direct["data"]] if st == 200 else None
        before = [embeddings_served(e) for e in encs]
        n, same = 20, 0
        for _ in range(n):
            st, js = ng.req("POST", "/v1/embeddings", body)
            same += st == 200 and [d["embedding"] for d in js["data"]] == want
        got = [embeddings_served(e) - b for e, b in zip(encs, before)]
        check(same == n, "embeddings through nginx equal one instance's (%d of %d)" % (same, n))
        check(sum(got) == n and min(got) >= n // 4,
              "both encoders answered, round-robin (%s)" % got)
        st, _ = ng.req("PUT", "/v1/collections/x", {"dim": 4})
        check(st == 404 and all(e.req("GET", "/v1/collections/x")[0] == 404 for e in encs),
              "a collection route is refused by the encoders' nginx (%s)" % st)
        check(not ng.critical_errors(), "nginx logged no critical error (encoders)")
    finally:
        if ng:
            ng.stop()
        for e in encs:
            rc, _ = e.stop()
            check(rc == 0, "encoder exits 0 (%s)" % rc)


def main():
    nginx_bin = es_server.find_nginx()
    if not nginx_bin:
        print("SKIP: nginx is not installed (apt-get install nginx; it is in "
              "deploy/packages-build.txt)")
        return 77
    owners = {}
    ng = None
    try:
        for k in ("a", "b"):
            owners[k] = es_server.Server("--model", MODEL, "--quiet", wait="readyz")
        ng = es_server.Nginx(CONF, {
            "embedsrv-shard-a:8080": "%s:%d" % (HOST, owners["a"].port),
            "embedsrv-shard-b:8080": "%s:%d" % (HOST, owners["b"].port)}, binary=nginx_bin)

        # each collection of the table: every request to its owner only
        for name, owner, dialect in (("products", "a", "v1"), ("articles", "b", "v1"),
                                     ("images", "b", "qdrant"),
                                     ("unlisted", "a", "v1"),      # the default owner
                                     ("unlisted_qd", "a", "qdrant")):
            other = "b" if owner == "a" else "a"
            before = {k: requests_total(s) for k, s in owners.items()}
            sent = exercise(ng, name, dialect)
            after = {k: requests_total(s) for k, s in owners.items()}
            got = {k: after[k] - before[k] for k in owners}
            check(got[owner] == sent and got[other] == 0,
                  "every request for '%s' (%s paths) reached owner %s and only it "
                  "(sent %d, got %s)" % (name, dialect, owner, sent, got))
            check(count(owners[owner], name) == 4,
                  "owner %s holds '%s' with its 4 points (%s)"
                  % (owner, name, count(owners[owner], name)))
            check(owners[other].req("GET", "/v1/collections/%s" % name)[0] == 404,
                  "owner %s does not have '%s'" % (other, name))

        # the same id in two collections on two owners: each read gets its own
        st, js = ng.req("GET", "/v1/collections/articles/points/3")
        check(st == 200 and js["result"]["payload"] == {"c": "articles"},
              "a point read through nginx comes from its collection's owner (%s)" % js)

        # routes that name no collection: the default owner
        for method, path, body in (("GET", "/v1/info", None),
                                   ("POST", "/v1/embeddings", {"input": "the cat"})):
            before = {k: requests_total(s) for k, s in owners.items()}
            st, _ = ng.req(method, path, body)
            after = {k: requests_total(s) for k, s in owners.items()}
            check(st == 200 and after["a"] - before["a"] == 1 and after["b"] == before["b"],
                  "%s %s (no collection) went to the default owner (%s)" % (method, path, st))

        # listing behind the map: the default owner's list only (the limit)
        want_a = ["products", "unlisted", "unlisted_qd"]
        want_b = ["articles", "images"]
        check(names(owners["a"]) == want_a and names(owners["b"]) == want_b,
              "each owner lists its own collections (%s, %s)"
              % (names(owners["a"]), names(owners["b"])))
        check(names(ng) == want_a,
              "GET /v1/collections through nginx lists the default owner's only (%s)"
              % names(ng))
        check(names(ng, "/collections") == want_a,
              "Qdrant's GET /collections through nginx lists the default owner's only (%s)"
              % names(ng, "/collections"))

        # a drop goes to the owner too
        check(ng.req("DELETE", "/v1/collections/articles")[0] == 200, "drop through nginx")
        check(names(owners["b"]) == ["images"] and names(owners["a"]) == want_a,
              "the drop reached owner b only (%s, %s)" % (names(owners["a"]), names(owners["b"])))
        check(not ng.critical_errors(), "nginx logged no critical error (%s)"
              % ng.critical_errors()[:3])
    finally:
        if ng:
            ng.stop()
        for s in owners.values():
            rc, _ = s.stop()
            check(rc == 0, "owner on port %d exits 0 (%s)" % (s.port, rc))
    test_encoders(nginx_bin)
    print("sharding: %d passed, %d failed" % (check.passed, len(check.failures)))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
