#!/usr/bin/env python3
"""test_points.py — the /v1 point operations over real HTTP.

Starts `embedsrv serve` on the Lee model and checks: filters of every kind
in search, scroll (every page) and count; retrieve many; delete by filter;
the four payload updates by ids and by filter (vectors and texts untouched);
bad input (wrong types, unknown collection, malformed filters: 4xx and
nothing changed); read-only replicas refuse the writes; and, with
--data-dir, that payload updates come back after a SIGKILL (log replay) and
after a snapshot.  Standard library only.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import es_server  # noqa: E402
from es_server import LEE_MODEL as MODEL  # noqa: E402

check = es_server.Checks()
C = "/v1/collections/p"


def pts(n=40):
    out = []
    for i in range(n):
        out.append({"id": i, "vector": [1.0 + i % 7, 0.5 * (i % 3), 1.0, 0, 0, 0, 0, 0, 0, 0.1 * i],
                    "payload": {"n": i, "even": i % 2 == 0, "tag": ["a", "b", "c"][i % 3],
                                "meta": {"src": "web" if i < 20 else "mail"},
                                "words": "item number %d" % i}})
    out.append({"id": "doc-x", "text": "the hurricane hit the coast", "payload": {"n": 100, "empty": []}})
    out.append({"id": "doc-y", "vector": [1] * 10})  # no payload
    return out


def ids(points):
    return sorted(str(p["id"]) for p in points)


def count(s, flt=None):
    st, body = s.req("POST", C + "/points/count", {"filter": flt} if flt is not None else None)
    check(st == 200, "count %s: %s %s" % (flt, st, body))
    return body["result"]["count"] if st == 200 else None


def scroll_all(s, flt=None, limit=7):
    got, off, pages = [], None, 0
    while True:
        body = {"limit": limit, "offset": off}
        if flt is not None:
            body["filter"] = flt
        st, b = s.req("POST", C + "/points/scroll", body)
        check(st == 200, "scroll page: %s %s" % (st, b))
        if st != 200:
            return got
        got += b["result"]["points"]
        pages += 1
        off = b["result"]["next_offset"]
        if off is None or pages > 100:
            return got


def get(s, pid):
    st, b = s.req("POST", C + "/points/get", {"ids": [pid], "with_vector": True})
    check(st == 200, "get %s: %s %s" % (pid, st, b))
    return b["result"][0] if st == 200 and b["result"] else None


def filters(s):
    total = 42
    check(count(s) == total, "count without a filter")
    cases = [
        ({"must": {"key": "n", "range": {"gte": 10, "lt": 20}}}, 10),
        ({"must": [{"key": "tag", "match": {"any": ["a", "b"]}}, {"key": "n", "range": {"lt": 30}}]}, 20),
        ({"must": {"key": "tag", "match": {"except": ["a"]}}}, 28),  # 26 b/c + 2 without tag
        ({"must": {"key": "meta.src", "match": "mail"}}, 20),
        ({"must": {"key": "words", "match": {"text": "number 1"}}}, 11),
        ({"must": {"has_id": [1, 2, "doc-x", 999]}}, 3),
        ({"must": {"is_empty": {"key": "empty"}}}, 42),  # [] or missing
        ({"must": {"is_empty": {"key": "tag"}}}, 2),
        ({"must": {"is_null": {"key": "tag"}}}, 0),
        ({"should": [{"key": "even", "match": True}, {"key": "n", "match": 1}]}, 21),
        ({"must_not": {"key": "even", "match": True}}, 22),  # 20 odd + 2 without
        ({"min_should": {"conditions": [{"key": "even", "match": True}, {"key": "tag", "match": "a"},
                                        {"key": "meta.src", "match": "web"}], "min_count": 3}}, 4),
        ({"must": [{"should": [{"key": "n", "match": 3}, {"key": "n", "match": 4}]}]}, 2),
    ]
    for flt, want in cases:
        got = count(s, flt)
        check(got == want, "count %s = %s, want %s" % (flt, got, want))
        sc = scroll_all(s, flt)
        check(len(sc) == want and len(set(ids(sc))) == want,
              "scroll %s: %d points (%s)" % (flt, len(sc), ids(sc)))
    # every page of a filtered scroll, small pages
    sc = scroll_all(s, {"must": {"key": "even", "match": True}}, limit=3)
    check(sorted(p["id"] for p in sc) == list(range(0, 40, 2)), "even scroll: %s" % ids(sc))
    # the same filter in search
    st, b = s.req("POST", C + "/search", {"vector": [1] * 10, "k": 50,
                                          "filter": {"must": {"key": "n", "range": {"gt": 35}}}})
    check(st == 200 and sorted(str(h["id"]) for h in b["result"]) == ["36", "37", "38", "39", "doc-x"],
          "search with range: %s %s" % (st, b))
    # retrieve many: those that exist, in the order asked
    st, b = s.req("POST", C + "/points/get", {"ids": [5, "doc-x", 777, 5], "with_vector": True})
    check(st == 200 and [p["id"] for p in b["result"]] == [5, "doc-x", 5], "get many: %s" % b)
    check(st == 200 and len(b["result"][0]["vector"]) == 10 and b["result"][0]["payload"]["n"] == 5,
          "get many vector/payload: %s" % b)
    st, b = s.req("POST", C + "/points/get", {"ids": ["doc-y"], "with_payload": True})
    check(st == 200 and b["result"][0]["payload"] is None, "no payload is null: %s" % b)


def payload_updates(s):
    before = get(s, 3)
    st, b = s.req("POST", C + "/points/payload", {"payload": {"color": "red", "n": 1003}, "points": [3, 999]})
    check(st == 200 and b["result"]["updated"] == 1, "set by ids: %s %s" % (st, b))
    p = get(s, 3)
    check(p["payload"]["color"] == "red" and p["payload"]["n"] == 1003 and p["payload"]["tag"] == "a",
          "set merged: %s" % p)
    check(p["vector"] == before["vector"], "set kept the vector")
    st, b = s.req("POST", C + "/points/payload", {"payload": {"deep": 1}, "points": [3], "key": "meta.x"})
    check(st == 200 and get(s, 3)["payload"]["meta"] == {"src": "web", "x": {"deep": 1}},
          "set under a key: %s" % get(s, 3))
    st, b = s.req("POST", C + "/points/payload", {"payload": {"flag": True},
                                                  "filter": {"must": {"key": "meta.src", "match": "mail"}}})
    check(st == 200 and b["result"]["updated"] == 20, "set by filter: %s %s" % (st, b))
    check(count(s, {"must": {"key": "flag", "match": True}}) == 20, "set by filter is visible to filters")
    st, b = s.req("POST", C + "/points/payload/delete", {"keys": ["color", "meta.x"], "points": [3]})
    p = get(s, 3)
    check(st == 200 and "color" not in p["payload"] and p["payload"]["meta"] == {"src": "web"},
          "delete keys: %s %s" % (b, p))
    st, b = s.req("PUT", C + "/points/payload", {"payload": {"only": 1}, "points": [4]})
    check(st == 200 and get(s, 4)["payload"] == {"only": 1}, "overwrite: %s" % get(s, 4))
    st, b = s.req("POST", C + "/points/payload/clear", {"points": [4]})
    check(st == 200 and get(s, 4)["payload"] is None, "clear: %s" % get(s, 4))
    # the text point keeps its lexical entry
    st, b = s.req("POST", C + "/points/payload", {"payload": {"z": 1}, "points": ["doc-x"]})
    st, b = s.req("POST", C + "/search", {"text": "hurricane", "mode": "lexical", "k": 3})
    check(st == 200 and [h["id"] for h in b["result"]] == ["doc-x"] and b["result"][0]["payload"]["z"] == 1,
          "lexical entry kept: %s %s" % (st, b))


def bad_input(s):
    n0 = count(s)
    p3 = get(s, 3)
    bad = [
        ("POST", C + "/points/count", {"filter": {"must": {"key": "n", "range": {"gt": "1"}}}}, 400),
        ("POST", C + "/points/count", {"filter": []}, 400),
        ("POST", C + "/points/count", {"filters": {}}, 400),
        ("POST", C + "/points/scroll", {"filter": {"must": [{"key": "n"}]}}, 400),
        ("POST", C + "/points/get", {"ids": 3}, 400),
        ("POST", C + "/points/get", {"ids": [-1]}, 422),
        ("POST", C + "/points/get", {}, 400),
        ("POST", C + "/points/delete", {"points": [1], "filter": {}}, 400),
        ("POST", C + "/points/delete", {}, 400),
        ("POST", C + "/points/delete", {"filter": {"must": {"key": "n", "match": {"valu": 1}}}}, 400),
        ("POST", C + "/points/payload", {"payload": [1], "points": [3]}, 400),
        ("POST", C + "/points/payload", {"points": [3]}, 400),
        ("POST", C + "/points/payload", {"payload": {"a": 1}}, 400),
        ("POST", C + "/points/payload", {"payload": {"a": 1}, "points": [3], "key": 5}, 400),
        ("POST", C + "/points/payload", {"payload": {"a": 1}, "points": [3], "extra": 1}, 400),
        ("PUT", C + "/points/payload", {"payload": "x", "points": [3]}, 400),
        ("POST", C + "/points/payload/delete", {"keys": "color", "points": [3]}, 400),
        ("POST", C + "/points/payload/delete", {"keys": [""], "points": [3]}, 400),
        ("POST", C + "/points/payload/clear", {"points": "3"}, 400),
        ("POST", C + "/points/payload/clear", {"filter": {"should": 1}}, 400),
        ("POST", "/v1/collections/nope/points/count", {}, 404),
        ("POST", "/v1/collections/nope/points/payload/clear", {"points": [1]}, 404),
        ("POST", "/v1/collections/nope/points/delete", {"filter": {}}, 404),
    ]
    for m, path, body, want in bad:
        st, b = s.req(m, path, body)
        check(st == want and isinstance(b, dict) and "error" in b,
              "%s %s %s -> %s %s (want %s)" % (m, path, body, st, b, want))
    check(count(s) == n0 and get(s, 3) == p3, "bad requests changed nothing")


def delete_by_filter(s):
    n0 = count(s)
    st, b = s.req("POST", C + "/points/delete", {"filter": {"must": {"key": "n", "range": {"gte": 30, "lt": 40}}}})
    check(st == 200 and b["result"]["deleted"] == 10, "delete by filter: %s %s" % (st, b))
    check(count(s) == n0 - 10, "count after delete by filter")
    check(count(s, {"must": {"key": "n", "range": {"gte": 30, "lt": 40}}}) == 0, "none left")
    st, b = s.req("POST", C + "/points/delete", {"filter": {"must": {"key": "n", "match": -5}}})
    check(st == 200 and b["result"]["deleted"] == 0, "delete by a filter matching nothing: %s" % b)


def id_checks(s):
    big = 18446744073709551615
    raw = ('{"points": [{"id": 18446744073709551615, "vector": [1,2,3,4,5,6,7,8,9,10], "payload": {"k": "max"}},'
           ' {"id": 9223372036854775808, "vector": [1,1,1,1,1,1,1,1,1,2]},'
           ' {"id": "0A1B2C3D4E5F60718293A4B5C6D7E8F9", "vector": [2,1,1,1,1,1,1,1,1,1], "payload": {"k": "uuid"}}]}')
    st, b, _ = s.request("PUT", "/v1/collections/ids/points", raw=raw.encode())
    check(st == 200, "upsert with u64 and UUID ids: %s %s" % (st, b))
    st, b = s.req("POST", "/v1/collections/ids/points/get",
                  {"ids": [big, 9223372036854775808, "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"]})
    got = [p["id"] for p in b["result"]] if st == 200 else None
    check(got == [big, 9223372036854775808, "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"],
          "u64 ids come back as integers, the UUID canonical: %s" % (b,))
    st, b = s.req("GET", "/v1/collections/ids/points/18446744073709551615")
    check(st == 200 and b["result"]["id"] == big and b["result"]["payload"]["k"] == "max",
          "GET by the largest id: %s %s" % (st, b))
    for spelling in ["0a1b2c3d4e5f60718293a4b5c6d7e8f9", "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9",
                     "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"]:
        st, b = s.req("GET", "/v1/collections/ids/points/" + spelling)
        check(st == 200 and b["result"]["payload"]["k"] == "uuid", "GET %s: %s %s" % (spelling, st, b))
        st, b = s.req("POST", "/v1/collections/ids/points/count", {"filter": {"must": {"has_id": [spelling]}}})
        check(st == 200 and b["result"]["count"] == 1, "has_id %s: %s" % (spelling, b))
    st, b = s.req("POST", "/v1/collections/ids/search", {"vector": [1] * 9 + [1.01], "k": 3})
    check(st == 200 and big in [h["id"] for h in b["result"]], "search hits carry the u64 id: %s" % b)
    st, b = s.req("POST", "/v1/collections/ids/points/scroll", {"limit": 10})
    check(st == 200 and big in [p["id"] for p in b["result"]["points"]], "scroll carries the u64 id")
    # too large, negative, a big number in a payload: refused, nothing changed
    for raw, want in [('{"points": [{"id": 18446744073709551616, "vector": [1,1,1,1,1,1,1,1,1,1]}]}', 400),
                      ('{"points": [{"id": -1, "vector": [1,1,1,1,1,1,1,1,1,1]}]}', 422),
                      ('{"points": [{"id": 5, "vector": [1,1,1,1,1,1,1,1,1,1], "payload": {"n": 18446744073709551615}}]}', 422)]:
        st, b, _ = s.request("PUT", "/v1/collections/ids/points", raw=raw.encode())
        check(st == want, "%s -> %s %s" % (raw, st, b))
    st, b = s.req("POST", "/v1/collections/ids/points/count", {})
    check(st == 200 and b["result"]["count"] == 3, "still 3 points: %s" % b)
    st, b, _ = s.request("POST", "/v1/collections/ids/points/delete",
                         raw=b'{"points": [18446744073709551615, "0A1B2C3D4E5F60718293A4B5C6D7E8F9"]}')
    check(st == 200 and b["result"]["deleted"] == 2, "delete by u64 and UUID: %s %s" % (st, b))


def mmr_checks(s):
    M = "/v1/collections/mmr"
    st, b = s.req("PUT", M, {"dim": 10})
    base = [1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    dup = [1.0, 0.02, 0, 0, 0, 0, 0, 0, 0, 0]
    other = [0.7, 0, 0.7, 0, 0, 0, 0, 0, 0, 0]
    points = [{"id": 1, "vector": base}, {"id": 2, "vector": dup},
              {"id": 3, "vector": [1.0, 0.03, 0, 0, 0, 0, 0, 0, 0, 0]}, {"id": 4, "vector": other},
              {"id": 5, "vector": [0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0]}]
    st, b = s.req("PUT", M + "/points", {"points": points})
    check(st == 200, "mmr upsert: %s %s" % (st, b))
    st, b = s.req("POST", M + "/search", {"vector": base, "k": 2})
    check(st == 200 and [h["id"] for h in b["result"]] == [1, 2], "plain search: near-duplicates %s" % b)
    st, b = s.req("POST", M + "/search", {"vector": base, "k": 2,
                                          "mmr": {"diversity": 0.7, "candidates_limit": 4}})
    check(st == 200 and [h["id"] for h in b["result"]] == [1, 4] and "vector" not in b["result"][0],
          "mmr picks the other direction over the duplicates: %s %s" % (st, b))
    st, b = s.req("POST", M + "/search", {"vector": base, "k": 2, "with_vector": True,
                                          "mmr": {"diversity": 0, "candidates_limit": 5}})
    check(st == 200 and [h["id"] for h in b["result"]] == [1, 2] and len(b["result"][0]["vector"]) == 10,
          "mmr diversity 0 is relevance order: %s" % b)
    st, b = s.req("POST", M + "/search", {"searches": [{"id": 1, "k": 1, "mmr": {}}]})
    check(st == 200 and len(b["result"][0]) == 1, "mmr in a batch, by id: %s %s" % (st, b))
    for body, want in [({"vector": base, "mmr": {"diversity": 2}}, 422),
                       ({"vector": base, "mmr": {"diversity": "x"}}, 400),
                       ({"vector": base, "mmr": []}, 400),
                       ({"vector": base, "mmr": {"candidates": 5}}, 400),
                       ({"vector": base, "mmr": {"candidates_limit": 0}}, 422),
                       ({"text": "hurricane", "mode": "lexical", "mmr": {}}, 422)]:
        st, b = s.req("POST", M + "/search", body)
        check(st == want, "mmr bad %s -> %s %s" % (body, st, b))


def state(s):
    return sorted((str(p["id"]), repr(p.get("payload"))) for p in scroll_all(s, None, limit=50))


def durability(tmp):
    data = os.path.join(tmp, "data")
    s = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data, wait="readyz")
    st, _ = s.req("PUT", C, {"dim": 10})
    st, _ = s.req("PUT", C + "/points", {"points": pts(10)})
    check(st == 200, "upsert")
    s.req("POST", C + "/points/payload", {"payload": {"k": "v"}, "filter": {"must": {"key": "even", "match": True}}})
    s.req("POST", C + "/points/payload/delete", {"keys": ["words"], "points": [1, 2]})
    s.req("PUT", C + "/points/payload", {"payload": {"o": 1}, "points": [3]})
    s.req("POST", C + "/points/payload/clear", {"points": [5]})
    before = state(s)
    s.kill()
    s = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data, wait="readyz")
    after = state(s)
    check(after == before, "payload updates after a crash (log replay):\n%s\n%s" % (before, after))
    st, _ = s.req("POST", C + "/snapshot", {})
    check(st == 200, "snapshot")
    s.req("POST", C + "/points/payload", {"payload": {"late": True}, "points": [7]})
    before = state(s)
    rc, _ = s.stop()
    check(rc == 0, "clean stop")
    s = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data, wait="readyz")
    after = state(s)
    check(after == before, "payload updates after a snapshot and restart")
    rc, _ = s.stop()
    # a read-only server refuses every payload write
    s = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data, "--read-only", wait="readyz")
    for m, path, body in [("POST", "/points/payload", {"payload": {"a": 1}, "points": [1]}),
                          ("PUT", "/points/payload", {"payload": {"a": 1}, "points": [1]}),
                          ("POST", "/points/payload/delete", {"keys": ["a"], "points": [1]}),
                          ("POST", "/points/payload/clear", {"points": [1]}),
                          ("POST", "/points/delete", {"filter": {}})]:
        st, b = s.req(m, C + path, body)
        check(st == 403, "read-only %s %s -> %s" % (m, path, st))
    check(state(s) == before, "read-only changed nothing")
    rc, _ = s.stop()


def main():
    if not os.path.exists(MODEL):
        print("SKIP: no model at", MODEL)
        return 77
    with es_server.Server("--model", MODEL, "--quiet") as s:
        st, b = s.req("PUT", C, {"dim": 10})
        check(st == 201, "create: %s %s" % (st, b))
        st, b = s.req("PUT", C + "/points", {"points": pts()})
        check(st == 200, "upsert: %s %s" % (st, b))
        filters(s)
        payload_updates(s)
        bad_input(s)
        delete_by_filter(s)
        st, b = s.req("PUT", "/v1/collections/ids", {"dim": 10})
        id_checks(s)
        mmr_checks(s)
    with tempfile.TemporaryDirectory() as tmp:
        durability(tmp)
    print("points: %d passed, %d failed" % (check.passed, len(check.failures)))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
