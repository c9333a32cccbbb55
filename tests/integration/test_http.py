#!/usr/bin/env python3
"""test_http.py — the HTTP API against the real binary.

Starts `embedsrv serve` on 127.0.0.1 on a free port with a small real model
(tests/data/lee-10d.vec: fastText vectors trained on the Lee corpus, 10-d),
talks real HTTP with http.client, and checks every route and every error
class (400 401 404 405 409 413 415 422), that rejected requests change
nothing, concurrent clients, the idle timeout and a clean SIGTERM exit.
Standard library only; the server is started by es_server.py.
"""
import base64
import shutil
import tempfile
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import es_server  # noqa: E402
from es_server import BIN, LEE_MODEL as MODEL  # noqa: E402

KEY = "s3cret-key"
DIM = 10

check = es_server.Checks()


class Server(es_server.Server):
    """The server on the Lee model; req() sends this test's API key unless
    key=None and returns (status, body, headers)."""

    def __init__(self, *extra):
        super().__init__("--model", MODEL, "--threads", "4", *extra)

    def req(self, method, path, body=None, headers=None, key=KEY, raw=None,
            ctype="application/json"):
        h = {"Authorization": "Bearer " + key} if key else {}
        h.update(headers or {})
        return self.request(method, path, body, headers=h, raw=raw, ctype=ctype)


def is_error(js, code=None, param=None):
    if not isinstance(js, dict) or "error" not in js:
        return False
    e = js["error"]
    ok = all(k in e for k in ("message", "type", "param", "code")) and e["message"]
    if code is not None:
        ok = ok and e["code"] == code
    if param is not None:
        ok = ok and e["param"] == param
    return ok


def expect(srv, method, path, body, status, code=None, what=None, **kw):
    st, js, h = srv.req(method, path, body, **kw)
    check(st == status, "%s: %s %s -> %d (want %d) %s" % (what or "", method, path, st, status, js))
    if status >= 400:
        check(is_error(js, code), "%s: error body %s (want code %s)" % (what or path, js, code))
    return js, h


def count(srv, name):
    st, js, _ = srv.req("GET", "/v1/collections/" + name)
    return js["result"]["count"] if st == 200 else None


def test_admin(s):
    st, js, _ = s.req("GET", "/healthz", key=None)
    check(st == 200 and js["status"] == "ok", "healthz open without key")
    # alive comes before ready (the model loads and the data recovers after
    # the socket opens): ready must follow within a bound, not at once
    deadline = time.time() + 30
    while True:
        st, js, _ = s.req("GET", "/readyz", key=None)
        if st == 200 or time.time() > deadline:
            break
        check(st == 503, "readyz is 503 until ready")
        time.sleep(0.05)
    check(st == 200, "readyz")
    st, js, _ = s.req("GET", "/v1/info")
    check(st == 200, "info")
    lim = js["limits"]
    for k in ("max_body_bytes", "max_inputs", "max_input_chars", "max_k", "max_ef",
              "max_points_per_request", "max_json_depth"):
        check(k in lim, "info limit " + k)
    check(lim["max_body_bytes"] == 65536 and lim["max_points_per_request"] == 50,
          "info reports configured limits")
    check(js["models"][0]["dim"] == DIM and "max_seq_length" in js["models"][0], "info models")
    check(js["simd"]["selected"] in ("scalar", "avx2", "avx512", "neon"), "info simd")
    check("version" in js and "commit" in js, "info version/commit")
    st, js, _ = s.req("GET", "/v1/models")
    check(st == 200 and js["data"][0]["id"] == "lee-10d.vec", "models list")


def test_auth_routes_types(s):
    expect(s, "GET", "/v1/info", None, 401, "invalid_api_key", key=None, what="no key")
    expect(s, "GET", "/v1/info", None, 401, "invalid_api_key", key="wrong", what="wrong key")
    expect(s, "POST", "/v1/embeddings", {"input": "x"}, 401, "invalid_api_key", key=None)
    expect(s, "GET", "/no/such/route", None, 404, "route_not_found")
    js, h = expect(s, "DELETE", "/v1/embeddings", None, 405, "method_not_allowed")
    check(h.get("allow") == "POST", "405 Allow header: %s" % h.get("allow"))
    expect(s, "POST", "/v1/embeddings", None, 415, "unsupported_media_type",
           raw=b"input=hello", ctype="application/x-www-form-urlencoded")
    expect(s, "POST", "/v1/embeddings", None, 400, "invalid_json", raw=b'{"input": "x"',
           what="truncated JSON")
    expect(s, "POST", "/v1/embeddings", None, 400, "invalid_json", raw=b'[1,2]',
           what="not an object")
    expect(s, "POST", "/v1/embeddings", None, 400, "invalid_json", raw=b'',
           what="empty body")
    deep = b'{"input":' + b'[' * 40 + b']' * 40 + b'}'
    expect(s, "POST", "/v1/embeddings", None, 400, "too_deep", raw=deep)
    big = {"input": "a " * 40000}
    expect(s, "POST", "/v1/embeddings", big, 413, "body_too_large")
    # the connection still works after a 413
    st, _, _ = s.req("GET", "/healthz")
    check(st == 200, "server fine after 413")


def test_embeddings(s):
    st, js, _ = s.req("POST", "/v1/embeddings", {"input": "the government said", "model": "lee-10d.vec"})
    check(st == 200, "embeddings single %s" % js)
    check(js["object"] == "list" and js["model"] == "lee-10d.vec", "embeddings shape")
    d = js["data"]
    check(len(d) == 1 and d[0]["object"] == "embedding" and d[0]["index"] == 0, "embeddings data")
    v = d[0]["embedding"]
    check(len(v) == DIM, "embedding dim")
    n = sum(x * x for x in v) ** 0.5
    check(abs(n - 1) < 1e-3, "embedding is unit length (%f)" % n)
    check(js["usage"]["prompt_tokens"] == 3 and js["usage"]["total_tokens"] == 3,
          "usage tokens %s" % js["usage"])
    st, js2, _ = s.req("POST", "/v1/embeddings",
                       {"input": ["the government said", "police"], "encoding_format": "base64",
                        "dimensions": DIM})
    check(st == 200 and len(js2["data"]) == 2 and js2["data"][1]["index"] == 1, "embeddings batch")
    raw = base64.b64decode(js2["data"][0]["embedding"])
    vb = struct.unpack("<%df" % DIM, raw)
    check(all(abs(a - b) < 1e-6 for a, b in zip(v, vb)), "base64 equals float")
    # OpenAI client style: unknown model name with a single model loaded, user field
    st, _, _ = s.req("POST", "/v1/embeddings", {"input": "x", "model": "text-embedding-3-small", "user": "u"})
    check(st == 200, "any model name with one model")
    # dimensions below the model's: the first ones, re-normalised (Matryoshka)
    st, js3, _ = s.req("POST", "/v1/embeddings", {"input": "the government said", "dimensions": 3})
    v3 = js3["data"][0]["embedding"] if st == 200 else []
    n3 = sum(x * x for x in v[:3]) ** 0.5
    check(st == 200 and len(v3) == 3 and all(abs(a - b / n3) < 1e-5 for a, b in zip(v3, v)),
          "dimensions 3 truncates and re-normalises %s" % js3)
    expect(s, "POST", "/v1/embeddings", {"input": "x", "dimensions": DIM + 1}, 422, "dimension_mismatch")
    expect(s, "POST", "/v1/embeddings", {"input": "x", "dimensions": 0}, 422, "dimension_mismatch")
    expect(s, "POST", "/v1/embeddings", {"input": [1, 2, 3]}, 422, "token_input_unsupported")
    expect(s, "POST", "/v1/embeddings", {"input": [[1, 2]]}, 422, "token_input_unsupported")
    expect(s, "POST", "/v1/embeddings", {"input": []}, 422, "empty_input")
    expect(s, "POST", "/v1/embeddings", {"input": {"a": 1}}, 400, "invalid_type")
    expect(s, "POST", "/v1/embeddings", {"input": ["ok", 5.5]}, 400, "invalid_type")
    expect(s, "POST", "/v1/embeddings", {"model": "x"}, 400, "missing_field")
    expect(s, "POST", "/v1/embeddings", {"input": "x", "encoding_format": "int8"}, 422, "invalid_value")
    expect(s, "POST", "/v1/embeddings", {"input": ["w"] * 17}, 422, "too_many_inputs")
    # similarity / tokenize
    st, js, _ = s.req("POST", "/v1/similarity", {"a": "the government", "b": "the government"})
    check(st == 200 and abs(js["result"]["score"] - 1) < 1e-4, "similarity self %s" % js)
    st, js, _ = s.req("POST", "/v1/similarity", {"pairs": [["police", "police"], ["police", "Palestinian"]], "kind": "word"})
    check(st == 200 and len(js["result"]) == 2 and abs(js["result"][0] - 1) < 1e-4, "similarity pairs %s" % js)
    expect(s, "POST", "/v1/similarity", {"a": "x"}, 400, "missing_field")
    expect(s, "POST", "/v1/similarity", {"a": "x", "b": "y", "kind": "z"}, 422, "invalid_value")
    st, js, _ = s.req("POST", "/v1/tokenize", {"input": "The police zzqqx"})
    check(st == 200 and js["result"]["count"] == 3, "tokenize count %s" % js)
    toks = js["result"]["tokens"]
    check(toks[0]["token"] == "the" and toks[0]["known"] and not toks[2]["known"], "tokenize flags %s" % toks)
    expect(s, "POST", "/v1/tokenize", {"input": 5}, 400, "invalid_type")
    expect(s, "POST", "/v1/tokenize", {"inptu": "x"}, 400, "unknown_field")


def test_collections_points_search(s):
    # Long on purpose (~140 lines): one collection's life over HTTP (create,
    # upsert, get, search every way, delete, drop), each request checked
    # against what the earlier ones stored.
    C = "/v1/collections/docs"
    st, js, _ = s.req("PUT", C, {"metric": "cosine", "m": 8, "ef_construction": 64})
    check(st == 201 and js["result"]["dim"] == DIM and js["result"]["count"] == 0, "create %s" % js)
    expect(s, "PUT", C, {"metric": "l2", "m": 32}, 409, "already_exists")
    st, js, _ = s.req("GET", C)
    check(st == 200 and js["result"]["metric"] == "cosine" and js["result"]["m"] == 8,
          "409 leaves the existing collection as it was %s" % js)
    st, js, _ = s.req("PUT", "/v1/collections/empty")  # no body at all
    check(st == 201, "create without body")
    expect(s, "PUT", "/v1/collections/bad$name", {}, 422, "invalid_name")
    expect(s, "PUT", "/v1/collections/x1", {"metric": "hamming"}, 422, "invalid_value")
    expect(s, "PUT", "/v1/collections/x1", {"dim": 0}, 422, "out_of_range")
    expect(s, "PUT", "/v1/collections/x1", {"dim": "ten"}, 400, "invalid_type")
    expect(s, "PUT", "/v1/collections/x1", {"quantization": "int4"}, 422, "invalid_value")
    st, js, _ = s.req("PUT", "/v1/collections/v3", {"dim": 3, "metric": "l2", "quantization": "int8"})
    check(st == 201 and js["result"]["quantization"] == "int8" and js["result"]["metric"] == "l2", "create l2 int8")
    st, js, _ = s.req("GET", "/v1/collections")
    names = [c["name"] for c in js["result"]]
    check(names == ["docs", "empty", "v3"], "list %s" % names)
    expect(s, "GET", "/v1/collections/nope", None, 404, "not_found")

    pts = [
        {"id": 1, "text": "the government said on Tuesday", "payload": {"lang": "en", "n": 1, "tags": ["a", "b"]}},
        {"id": 2, "text": "police arrested a man", "payload": {"lang": "de", "n": 2}},
        {"id": "doc-3", "text": "Palestinian and Israeli leaders", "payload": {"lang": "en", "n": 3, "meta": {"src": "x"}}},
        {"id": 4, "vector": [0.1 * (i + 1) for i in range(DIM)]},
    ]
    st, js, _ = s.req("PUT", C + "/points", {"points": pts})
    check(st == 200 and js == {"result": {"upserted": 4}}, "upsert %s" % js)
    check(count(s, "docs") == 4, "count 4")

    # rejected batches change nothing, even with a good point first
    before = s.req("GET", C + "/points/1")[1]
    bad_batches = [
        ({"points": [{"id": 1, "text": "changed", "payload": {"lang": "xx"}}, {"id": 9, "vector": [1, 2]}]}, 422, "dimension_mismatch"),
        ({"points": [{"id": 1, "text": "changed"}, {"id": 9, "vector": [1e39] * DIM}]}, 422, "not_finite"),
        ({"points": [{"id": 1, "text": "changed"}, {"id": "42", "text": "x"}]}, 422, "invalid_id"),
        ({"points": [{"id": 1, "text": "changed"}, {"id": -5, "text": "x"}]}, 422, "invalid_id"),
        ({"points": [{"id": 1, "text": "changed"}, {"id": 9, "text": "x", "vector": [0] * DIM}]}, 400, "invalid_request"),
        ({"points": [{"id": 1, "text": "changed"}, {"id": 9}]}, 400, "invalid_request"),
        ({"points": [{"id": 1, "text": "changed"}, {"id": 9, "text": "x", "payload": [1]}]}, 400, "invalid_type"),
        ({"points": [{"id": 1, "text": "changed"}, {"id": 9, "vector": [0] * DIM}]}, 422, "invalid_value"),
        ({"points": [{"id": 1, "text": "changed"}, {"text": "no id"}]}, 400, "missing_field"),
        ({"points": [{"id": i, "vector": [1] * DIM} for i in range(51)]}, 422, "too_many_points"),
        ({"points": []}, 422, "empty_batch"),
        ({"pts": []}, 400, "unknown_field"),
    ]
    for body, status, code in bad_batches:
        expect(s, "PUT", C + "/points", body, status, code, what="bad batch %s" % code)
    st, _, _ = s.req("PUT", C + "/points", None, raw=b'{"points":[{"id":1,"vector":[NaN,0,0,0,0,0,0,0,0,0]}]}')
    check(st == 400, "NaN literal is malformed JSON (%d)" % st)
    expect(s, "PUT", "/v1/collections/nope/points", {"points": [{"id": 1, "vector": [1] * DIM}]}, 404, "not_found")
    check(count(s, "docs") == 4, "count unchanged after rejected batches")
    check(s.req("GET", C + "/points/1")[1] == before, "point 1 unchanged after rejected batches")

    st, js, _ = s.req("GET", C + "/points/doc-3")
    r = js["result"]
    check(st == 200 and r["id"] == "doc-3" and r["payload"]["meta"]["src"] == "x" and len(r["vector"]) == DIM, "get string id %s" % js)
    st, js, _ = s.req("GET", C + "/points/4")
    check(st == 200 and js["result"]["id"] == 4 and js["result"]["payload"] is None, "get int id")
    expect(s, "GET", C + "/points/77", None, 404, "not_found")
    expect(s, "GET", C + "/points/nope", None, 404, "not_found")

    # search
    st, js, _ = s.req("POST", C + "/search", {"text": "the government said on Tuesday", "k": 3,
                                            "mode": "dense"})
    res = js["result"]
    check(st == 200 and res[0]["id"] == 1 and abs(res[0]["score"] - 1) < 1e-4, "search by text %s" % js)
    check(all(res[i]["score"] >= res[i + 1]["score"] for i in range(len(res) - 1)), "best first")
    check("payload" in res[0] and "vector" not in res[0], "default with_payload/with_vector")
    st, js, _ = s.req("POST", C + "/search", {"id": 1, "k": 10, "with_payload": False, "with_vector": True})
    ids = [h["id"] for h in js["result"]]
    check(st == 200 and 1 not in ids and len(ids) == 3, "search by id excludes itself %s" % ids)
    check("payload" not in js["result"][0] and len(js["result"][0]["vector"]) == DIM, "with_vector")
    st, js, _ = s.req("POST", C + "/search", {"vector": [0.1 * (i + 1) for i in range(DIM)], "k": 1})
    check(st == 200 and js["result"][0]["id"] == 4, "search by vector")
    st, js, _ = s.req("POST", C + "/search", {"text": "government", "k": 10,
                                            "filter": {"must": [{"key": "lang", "match": "en"}]}})
    check(st == 200 and sorted(str(h["id"]) for h in js["result"]) == ["1", "doc-3"], "filter must %s" % js)
    st, js, _ = s.req("POST", C + "/search", {"text": "government", "k": 10,
                                            "filter": {"must_not": [{"key": "lang", "match": {"value": "en"}}]}})
    check(st == 200 and sorted(str(h["id"]) for h in js["result"]) == ["2", "4"], "filter must_not %s" % js)
    st, js, _ = s.req("POST", C + "/search", {"text": "government", "k": 10,
                                            "filter": {"must": [{"key": "tags", "match": {"any": ["b", "z"]}}, {"key": "n", "match": 1.0}]}})
    check(st == 200 and [h["id"] for h in js["result"]] == [1], "filter any/array/number %s" % js)
    st, js, _ = s.req("POST", C + "/search", {"text": "government", "k": 10,
                                            "filter": {"must": [{"key": "meta.src", "match": "x"}]}})
    check(st == 200 and [h["id"] for h in js["result"]] == ["doc-3"], "filter nested key %s" % js)
    st, js, _ = s.req("POST", C + "/search", {"text": "the government said on Tuesday", "k": 10,
                                            "score_threshold": 0.999, "mode": "dense"})
    check(st == 200 and [h["id"] for h in js["result"]] == [1], "score_threshold %s" % js)
    st, js, _ = s.req("POST", C + "/search", {"searches": [{"text": "police", "k": 1}, {"id": "doc-3", "k": 2}]})
    check(st == 200 and len(js["result"]) == 2 and len(js["result"][0]) == 1 and len(js["result"][1]) == 2, "batch search %s" % js)
    st, js, _ = s.req("POST", "/v1/collections/empty/search", {"vector": [1] * DIM})
    check(st == 200 and js["result"] == [], "search empty collection")
    expect(s, "POST", C + "/search", {"text": "x", "k": 0}, 422, "out_of_range")
    expect(s, "POST", C + "/search", {"text": "x", "k": 100000}, 422, "out_of_range")
    expect(s, "POST", C + "/search", {"text": "x", "ef": 0}, 422, "out_of_range")
    expect(s, "POST", C + "/search", {"text": "x", "k": "ten"}, 400, "invalid_type")
    expect(s, "POST", C + "/search", {"vector": [1, 2]}, 422, "dimension_mismatch")
    expect(s, "POST", C + "/search", {"vector": [1e39] * DIM}, 422, "not_finite")
    expect(s, "POST", C + "/search", {"text": "x", "vector": [1] * DIM}, 400, "invalid_request")
    expect(s, "POST", C + "/search", {"id": 999}, 404, "not_found")
    expect(s, "POST", C + "/search", {"text": "x", "filter": {"must": [{"key": "lang"}]}}, 400, "invalid_type")
    expect(s, "POST", C + "/search", {"text": "x", "filter": {"shall": []}}, 400, "unknown_field")
    expect(s, "POST", C + "/search", {"text": "x", "score_treshold": 0.5}, 400, "unknown_field")
    expect(s, "POST", C + "/search", {"searches": []}, 422, "too_many_searches")
    expect(s, "POST", "/v1/collections/nope/search", {"text": "x"}, 404, "not_found")
    expect(s, "POST", "/v1/collections/v3/search", {"text": "x"}, 422, "dimension_mismatch")

    # arithmetic into a collection
    st, js, _ = s.req("POST", "/v1/arithmetic", {"terms": [{"text": "police arrested a man"}], "k": 1, "collection": "docs"})
    check(st == 200 and js["result"]["neighbors"][0]["id"] == 2, "arithmetic collection neighbours %s" % js)

    # delete points
    st, js, _ = s.req("POST", C + "/points/delete", {"points": [2, "doc-3", 12345]})
    check(st == 200 and js["result"]["deleted"] == 2, "delete points %s" % js)
    check(count(s, "docs") == 2, "count after delete")
    expect(s, "POST", C + "/points/delete", {"points": [1.5]}, 422, "invalid_id")
    expect(s, "POST", C + "/points/delete", {"points": "1"}, 400, "invalid_type")
    check(count(s, "docs") == 2, "count unchanged after bad delete")
    expect(s, "GET", C + "/points/2", None, 404, "not_found")
    # int8: codes in memory, float originals in a file-backed store (reported
    # apart from memory_bytes); a point reads back as the float it was given
    st, js, _ = s.req("PUT", "/v1/collections/v3/points",
                      {"points": [{"id": 1, "vector": [0.1, -2.5, 3.25]}, {"id": 2, "vector": [1, 1, 1]}]})
    check(st == 200, "upsert into int8 %s" % js)
    st, js, _ = s.req("GET", "/v1/collections/v3")
    check(st == 200 and js["result"]["vector_store_bytes"] >= 1024 * 3 * 4, "int8 store bytes %s" % js)
    st, js, _ = s.req("GET", "/v1/collections/docs")
    check(st == 200 and js["result"]["vector_store_bytes"] == 0, "float32 has no store %s" % js)
    st, js, _ = s.req("GET", "/v1/collections/v3/points/1")
    check(st == 200 and len(js["result"]["vector"]) == 3 and
          all(abs(a - b) < 1e-6 for a, b in zip(js["result"]["vector"], [0.1, -2.5, 3.25])),
          "int8 point reads back its float vector %s" % js)
    st, js, _ = s.req("POST", "/v1/collections/v3/search", {"vector": [0.1, -2.5, 3.2], "k": 2})
    check(st == 200 and js["result"][0]["id"] == 1 and abs(js["result"][0]["score"] - 0.05) < 1e-4,
          "int8 search re-ranked with floats %s" % js)
    st, js, _ = s.req("DELETE", "/v1/collections/v3")
    check(st == 200 and js["result"]["deleted"] is True, "drop collection")
    expect(s, "DELETE", "/v1/collections/v3", None, 404, "not_found")


def test_words(s):
    st, js, _ = s.req("POST", "/v1/words/neighbors", {"word": "police", "k": 5})
    res = js["result"]
    check(st == 200 and len(res) == 5 and all(r["word"] != "police" for r in res), "neighbors %s" % js)
    check(all(res[i]["score"] >= res[i + 1]["score"] for i in range(4)), "neighbors sorted")
    st, js, _ = s.req("POST", "/v1/words/neighbors", {"vector": [1] * DIM, "k": 2, "restrict_vocab": 50})
    check(st == 200 and len(js["result"]) == 2, "neighbors by vector")
    for method in ("3cosadd", "3cosmul"):
        st, js, _ = s.req("POST", "/v1/words/analogy", {"positive": ["Australia", "Palestinian"], "negative": ["Australian"], "k": 3, "method": method})
        words = [r["word"] for r in js["result"]] if st == 200 else []
        check(st == 200 and len(words) == 3 and not set(words) & {"Australia", "Palestinian", "Australian"},
              "analogy %s %s" % (method, js))
    st, js, _ = s.req("POST", "/v1/words/analogy", {"positive": [{"word": "police", "weight": 2}], "k": 1})
    check(st == 200 and len(js["result"]) == 1, "analogy weights")
    expect(s, "POST", "/v1/words/analogy", {"positive": ["police"], "method": "3cosxx"}, 422, "invalid_value")
    expect(s, "POST", "/v1/words/analogy", {"positive": []}, 422, "empty_input")
    expect(s, "POST", "/v1/words/analogy", {"positive": ["zzqqxx"]}, 422, "word_not_found")
    expect(s, "POST", "/v1/words/neighbors", {"word": "police", "k": 0}, 422, "out_of_range")
    expect(s, "POST", "/v1/words/neighbors", {"word": "police", "score": "spelling"}, 422, "invalid_value")
    st, js, _ = s.req("POST", "/v1/words/neighbors", {"word": "police", "k": 3, "score": "cosine"})
    st2, js2, _ = s.req("POST", "/v1/similarity", {"pairs": [["police", js["result"][0]["word"] if st == 200 else "x"]], "kind": "word"})
    check(st == 200 and st2 == 200 and abs(js["result"][0]["score"] - js2["result"][0]) < 1e-4,
          "neighbors score=cosine is the cosine %s %s" % (js, js2))
    st, js, _ = s.req("POST", "/v1/arithmetic", {"terms": [{"word": "police", "weight": 1}, {"word": "police", "weight": -0.5}], "k": 2})
    v = js["result"]["vector"] if st == 200 else []
    check(st == 200 and len(v) == DIM and abs(sum(x * x for x in v) - 1) < 1e-3 and len(js["result"]["neighbors"]) == 2,
          "arithmetic %s" % js)
    st, js, _ = s.req("POST", "/v1/arithmetic", {"terms": [{"vector": [2] + [0] * (DIM - 1)}], "normalize": False})
    check(st == 200 and abs(js["result"]["vector"][0] - 2) < 1e-6 and "neighbors" not in js["result"], "arithmetic raw vector")
    expect(s, "POST", "/v1/arithmetic", {"terms": []}, 422, "empty_input")
    expect(s, "POST", "/v1/arithmetic", {"terms": [{"vector": [1, 2]}]}, 422, "dimension_mismatch")
    expect(s, "POST", "/v1/arithmetic", {"terms": [{"word": "a", "text": "b"}]}, 400, "invalid_request")


def test_concurrent(s):
    st, _, _ = s.req("PUT", "/v1/collections/conc", {})
    errors = []

    def worker(t):
        try:
            for i in range(40):
                pid = t * 1000 + i
                st, js, _ = s.req("PUT", "/v1/collections/conc/points",
                                  {"points": [{"id": pid, "text": "the police said %d" % i, "payload": {"t": t}}]})
                if st != 200:
                    errors.append(("upsert", st, js))
                st, js, _ = s.req("POST", "/v1/collections/conc/search",
                                  {"text": "police", "k": 5, "filter": {"must": [{"key": "t", "match": t}]}})
                if st != 200 or any(h["payload"]["t"] != t for h in js["result"]):
                    errors.append(("search", st, js))
                st, js, _ = s.req("POST", "/v1/embeddings", {"input": ["government %d" % i]})
                if st != 200:
                    errors.append(("embed", st, js))
        except Exception as e:  # noqa: BLE001 - report any client failure
            errors.append(("exception", repr(e)))

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "concurrent clients: %s" % errors[:3])
    check(count(s, "conc") == 8 * 40, "concurrent upserts all present (%s)" % count(s, "conc"))


def test_metrics(s):
    st, text, h = s.req("GET", "/metrics")
    check(st == 200 and h["content-type"].startswith("text/plain"), "metrics content type")
    check('embedsrv_http_requests_total{route="POST /v1/embeddings",status="200"}' in text, "metrics request counter")
    check('embedsrv_http_requests_total{route="POST /v1/embeddings",status="422"}' in text, "metrics 422 counter")
    check('embedsrv_http_request_duration_seconds_bucket{route="POST /v1/embeddings",le="+Inf"}' in text, "metrics histogram")
    check("embedsrv_encoded_texts_total" in text and "embedsrv_encoded_tokens_total" in text, "metrics encoded")
    check('embedsrv_collection_points{collection="docs"} 2' in text, "metrics collection size")


def test_idle_timeout(s):
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.settimeout(10)
    t0 = time.time()
    try:
        data = sock.recv(1)
    except OSError:
        data = b""
    dt = time.time() - t0
    sock.close()
    check(data == b"" and dt < 8, "idle client cut off after the timeout (%.1fs)" % dt)


def test_raw_limits(s):
    """A huge announced body is answered 413 at once; a trickled body is cut."""
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.settimeout(10)
    sock.sendall(("POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n" % KEY).encode())
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    sock.close()
    check(data.startswith(b"HTTP/1.1 413"), "100 MB announced body answered 413 at once: %r" % data[:40])
    # trickle: 1 byte every 0.5 s for longer than --timeout 2 s
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.settimeout(10)
    sock.sendall(("POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" % KEY).encode())
    t0 = time.time()
    closed = False
    try:
        while time.time() - t0 < 8:
            sock.sendall(b" ")
            time.sleep(0.5)
    except OSError:
        closed = True
    if not closed:
        try:
            closed = sock.recv(1) == b""
        except OSError:
            closed = True
    sock.close()
    check(closed and time.time() - t0 < 8, "trickling client cut off (%.1fs)" % (time.time() - t0))


def test_encoded_nul(s):
    """A path or query parameter that decodes to a NUL byte is a 400 and
    changes nothing: libmicrohttpd's own decoding used to cut the path at the
    NUL, so PUT /v1/collections/a%00b created 'a' and .../points/1%00junk
    read point 1."""
    before = s.req("GET", "/v1/collections")[1]["result"]
    expect(s, "PUT", "/v1/collections/nul%00b", {"dim": DIM}, 400, "invalid_path",
           what="%00 in a collection name")
    expect(s, "GET", "/v1/collections/nul", None, 404, "not_found", what="nothing created")
    expect(s, "PUT", "/v1/collections/nul", {"dim": DIM}, 201, what="create nul")
    expect(s, "PUT", "/v1/collections/nul/points", {"points": [{"id": 1, "vector": [0.5] * DIM}]}, 200)
    expect(s, "GET", "/v1/collections/nul/points/1%00junk", None, 400, "invalid_path",
           what="%00 in a point id")
    expect(s, "DELETE", "/v1/collections/nul%00x", None, 400, "invalid_path")
    expect(s, "POST", "/v1/embeddings%00", {"input": "a"}, 400, "invalid_path")
    expect(s, "GET", "/v1/nothing%00", None, 400, "invalid_path", what="before routing")
    expect(s, "GET", "/v1/collections/nul?x=%00", None, 400, "invalid_query",
           what="%00 in a query value")
    expect(s, "GET", "/v1/collections/nul?a%00=1", None, 400, "invalid_query",
           what="%00 in a query key")
    # still decoded once, as before: %6e%75%6c is 'nul', %2500 is a literal '%00'
    expect(s, "GET", "/v1/collections/%6e%75%6c/points/%31", None, 200, what="encoded path")
    expect(s, "GET", "/v1/collections/nul/points/1%2500", None, 404, "not_found",
           what="literal %00 in an id")
    expect(s, "GET", "/v1/collections/nul?x=%2500", None, 200, what="literal %00 in a query")
    js, _ = expect(s, "GET", "/v1/collections/nul", None, 200)
    check(js["result"]["count"] == 1, "refused requests changed nothing %s" % js)
    # no --data-dir: a snapshot is a 409 persistence_off (as openapi.yaml says)
    expect(s, "POST", "/v1/collections/nul/snapshot", None, 409, "persistence_off",
           what="snapshot without --data-dir")
    expect(s, "DELETE", "/v1/collections/nul", None, 200)
    check(s.req("GET", "/v1/collections")[1]["result"] == before, "collections as before")


def test_read_only():
    """--read-only over HTTP on a data directory a writable server filled:
    every write is a 403 read_only naming --primary (EMBEDSRV_READ_ONLY
    works too), nothing changes, reads go on, /readyz and /v1/info say the
    role."""
    d = tempfile.mkdtemp(prefix="es_ro_")
    try:
        with es_server.Server("--model", MODEL, "--quiet", "--data-dir", d, wait="readyz") as w:
            st, js = w.req("PUT", "/v1/collections/c", {"dim": 3})
            check(st == 201, "ro: create (%s %s)" % (st, js))
            check(w.req("PUT", "/v1/collections/c/points",
                        {"points": [{"id": 1, "vector": [1, 0, 0]}]})[0] == 200, "ro: upsert")
            check(w.req("GET", "/readyz")[1].get("role") == "primary", "ro: primary role")
            check(w.req("GET", "/v1/info")[1].get("search_modes") == ["dense", "lexical", "hybrid"], "info: search modes")
        env = dict(os.environ, EMBEDSRV_READ_ONLY="1")
        with es_server.Server("--model", MODEL, "--quiet", "--data-dir", d,
                              "--primary", "http://10.0.0.1:8080", env=env, wait="readyz") as r:
            for method, path, body in [
                    ("PUT", "/v1/collections/x", {"dim": 3}),
                    ("DELETE", "/v1/collections/c", None),
                    ("PUT", "/v1/collections/c/points", {"points": [{"id": 2, "vector": [0, 1, 0]}]}),
                    ("POST", "/v1/collections/c/points/delete", {"points": [1]})]:
                st, js = r.req(method, path, body)
                check(st == 403 and is_error(js, "read_only")
                      and "http://10.0.0.1:8080" in js["error"]["message"],
                      "ro: %s %s is 403 naming the primary (%s %s)" % (method, path, st, js))
            st, js = r.req("GET", "/v1/collections/c")
            check(st == 200 and js["result"]["count"] == 1, "ro: nothing changed")
            st, js = r.req("POST", "/v1/collections/c/search", {"vector": [1, 0, 0], "k": 1})
            check(st == 200 and js["result"][0]["id"] == 1, "ro: search served")
            check(r.req("GET", "/readyz")[1].get("role") == "read-only", "ro: readyz role")
            st, js = r.req("GET", "/v1/info")
            check(js.get("role") == "read-only" and js.get("primary") == "http://10.0.0.1:8080",
                  "ro: info role and primary")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    if not os.path.exists(BIN):
        print("SKIP: no binary at", BIN)
        return 77
    s = Server("--api-key", KEY, "--max-body", "65536", "--max-points", "50",
               "--max-inputs", "16", "--timeout", "2")
    try:
        test_admin(s)
        test_auth_routes_types(s)
        test_embeddings(s)
        test_collections_points_search(s)
        test_words(s)
        test_encoded_nul(s)
        test_concurrent(s)
        test_metrics(s)
        test_idle_timeout(s)
        test_raw_limits(s)
    finally:
        rc, err = s.stop()
    check(rc == 0, "SIGTERM exit status %s" % rc)
    check("stopped" in err, "clean shutdown message")
    check("POST /v1/embeddings 200" in err, "access log lines on stderr")
    # --quiet silences the access log; env vars work; flags win over env
    # (the helper passes --port; the server answering /healthz there is the
    # flag beating EMBEDSRV_PORT=1)
    env = dict(os.environ, EMBEDSRV_QUIET="1", EMBEDSRV_PORT="1")
    q = es_server.Server("--model", MODEL, env=env)
    rc, err = q.stop(sig=signal.SIGINT)
    check(rc == 0, "SIGINT exit 0, flag beats env port")
    check("GET /healthz" not in err, "quiet: no access log")
    # no model: a clear message, exit 1
    r = subprocess.run([BIN, "serve", "--model", "/nonexistent/model.esm", "--port", "0"],
                       capture_output=True, timeout=30)
    check(r.returncode == 1 and b"not found" in r.stderr, "missing model message")
    r = subprocess.run([BIN, "serve", "--port", "0"], capture_output=True, timeout=30,
                       cwd="/", env=dict(os.environ, EMBEDSRV_MODEL=""))
    check(r.returncode == 1 and b"deploy/run.sh" in r.stderr, "no default model explains how to get one")
    r = subprocess.run([BIN, "serve", "--port", "99999"], capture_output=True, timeout=30)
    check(r.returncode == 2, "bad port is a usage error")
    test_read_only()
    print("http: %d passed, %d failed" % (check.passed, len(check.failures)))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
