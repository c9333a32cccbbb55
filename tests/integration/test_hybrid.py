#!/usr/bin/env python3
"""test_hybrid.py — lexical and hybrid search over real HTTP.

Starts `embedsrv serve` on the Lee model (tests/data/lee-10d.vec) and checks:
the collection's "lexical" parameters; text points get lexical entries; a
text whose words the model does not know is stored without a vector and
listed in "without_vector"; an empty text and an explicit all-zero vector
are 422; every search mode (dense, lexical, hybrid; RRF and weighted
fusion) with per-hit "scores"; filters inside lexical search; batch search;
updates and deletes; bad modes and fusions; and, with --data-dir, that the
lexical index comes back after a SIGKILL (log replay) and after a snapshot.
Standard library only.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import es_server  # noqa: E402
from es_server import BIN, LEE_MODEL as MODEL  # noqa: E402

check = es_server.Checks()


DOCS = [
    {"id": 1, "text": "The hurricane hit the coast of Florida", "payload": {"city": "Miami"}},
    {"id": 2, "text": "Police arrested two suspects in Sydney", "payload": {"city": "Sydney"}},
    {"id": 3, "text": "Quercus robur, Fagus sylvatica", "payload": {"kind": "plants"}},
    {"id": 4, "text": "Bushfires burned homes near Sydney", "payload": {"city": "Canberra"}},
    {"id": 5, "text": "The government announced new taxes", "payload": {}},
]


def search(s, body, name="h"):
    return s.req("POST", "/v1/collections/%s/search" % name, body)


def ids(res):
    return [h["id"] for h in res]


def create_checks(s):
    """The collection's "lexical" parameters: echoed, validated."""
    st, body = s.req("PUT", "/v1/collections/h",
                     {"lexical": {"k1": 1.2, "b": 0.75, "stemming": True, "stopwords": False}})
    check(st == 201, "create with lexical parameters: %s %s" % (st, body))
    lex = body["result"]["lexical"]
    check(abs(lex["k1"] - 1.2) < 1e-6 and abs(lex["b"] - 0.75) < 1e-6 and lex["stemming"]
          and not lex["stopwords"], "lexical parameters echoed: %s" % lex)
    st, body = s.req("PUT", "/v1/collections/bad", {"lexical": {"k1": -1}})
    check(st == 422, "k1 < 0 is 422: %s" % st)
    st, body = s.req("PUT", "/v1/collections/bad", {"lexical": {"x": 1}})
    check(st == 400, "unknown lexical key is 400: %s" % st)


def text_point_checks(s):
    """Text points, one without a vector: counted, retrievable, found by
    scroll and count; 422s that change nothing."""
    st, body = s.req("PUT", "/v1/collections/h/points", {"points": DOCS})
    check(st == 200, "upsert text points: %s %s" % (st, body))
    check(body["result"].get("without_vector") == [3],
          "the Latin plant names have no vector: %s" % body)
    st, body = s.req("GET", "/v1/collections/h")
    info = body["result"]
    check(info["count"] == 5 and info["lexical"]["count"] == 5,
          "count 5, lexical count 5: %s" % info)
    check(0 < info["lexical"]["memory_bytes"] < info["memory_bytes"],
          "lexical memory is reported and part of memory_bytes: %s" % info)
    st, body = s.req("GET", "/v1/collections/h/points/3?with_vector=true")
    check(st == 200 and body["result"].get("vector") is None and
          body["result"]["payload"] == {"kind": "plants"},
          "the point without a vector is retrievable by id: %s %s" % (st, body))
    plants = {"must": [{"key": "kind", "match": {"value": "plants"}}]}
    st, body = s.req("POST", "/v1/collections/h/points/scroll",
                     {"filter": plants, "with_vector": True})
    check(st == 200 and [p["id"] for p in body["result"]["points"]] == [3] and
          body["result"]["points"][0].get("vector") is None,
          "the point without a vector is found by a filtered scroll: %s %s" % (st, body))
    st, body = s.req("POST", "/v1/collections/h/points/scroll", {"limit": 100})
    check(st == 200 and sorted(p["id"] for p in body["result"]["points"]) == [1, 2, 3, 4, 5],
          "an unfiltered scroll pages every point: %s %s" % (st, body))
    for flt, want in ((plants, 1), (None, 5)):
        st, body = s.req("POST", "/v1/collections/h/points/count",
                         {"filter": flt} if flt else {})
        check(st == 200 and body["result"]["count"] == want,
              "count %s counts the point without a vector: %s %s" % (flt, st, body))

    # 422s that change nothing
    st, body = s.req("PUT", "/v1/collections/h/points",
                     {"points": [{"id": 9, "text": "fine text"}, {"id": 10, "text": ""}]})
    check(st == 422, "an empty text is 422: %s %s" % (st, body))
    st, body = s.req("PUT", "/v1/collections/h/points",
                     {"points": [{"id": 11, "vector": [0.0] * 10}]})
    check(st == 422, "an all-zero vector under cosine stays 422: %s %s" % (st, body))
    check(s.req("GET", "/v1/collections/h")[1]["result"]["count"] == 5, "nothing changed")


def lexical_checks(s):
    """mode "lexical": BM25 scores, words of the point without a vector,
    filters, thresholds, stemming."""
    st, body = search(s, {"text": "Sydney", "mode": "lexical"})
    check(st == 200 and sorted(ids(body["result"])) == [2, 4], "lexical 'Sydney': %s" % body)
    for h in body["result"]:
        check("lexical" in h["scores"] and "dense" not in h["scores"] and
              h["score"] == h["scores"]["lexical"] and h["score"] > 0,
              "lexical hit scores: %s" % h)
    st, body = search(s, {"text": "quercus", "mode": "lexical"})
    check(ids(body["result"]) == [3], "the point without a vector is found by its words: %s"
          % body)
    st, body = search(s, {"text": "Sydney", "mode": "lexical",
                          "filter": {"must": [{"key": "city", "match": "Sydney"}]}})
    check(ids(body["result"]) == [2], "a filter inside lexical search: %s" % body)
    st, body = search(s, {"text": "Sydney", "mode": "lexical", "score_threshold": 1e9})
    check(st == 200 and body["result"] == [], "a BM25 threshold: %s" % body)
    st, body = search(s, {"text": "police", "mode": "lexical", "k": 1})
    check(ids(body["result"]) == [2], "stemming: police: %s" % body)


def dense_hybrid_checks(s):
    """Dense never returns the point without a vector; hybrid with
    weighted and RRF fusion."""
    st, body = search(s, {"text": "Sydney police", "mode": "dense", "k": 10})
    check(st == 200 and 3 not in ids(body["result"]) and len(body["result"]) == 4,
          "dense: the 4 points with vectors: %s" % body)
    check(all("scores" not in h for h in body["result"]), "dense hits keep their old shape")
    st, body = search(s, {"vector": [0.1] * 10, "k": 10})
    check(st == 200 and 3 not in ids(body["result"]), "vector search: %s" % body)

    # hybrid, weighted (the default for text): fused scores in [0, 1]
    st, body = search(s, {"text": "Sydney police", "k": 5})
    check(st == 200 and all("scores" in h and 0 <= h["score"] <= 1 + 1e-6
                            for h in body["result"]) and len(body["result"]) == 4,
          "a text query is hybrid by default: %s" % body)
    st, body = search(s, {"text": "Sydney police", "k": 5, "fusion": {"method": "rrf"}})
    check(st == 200 and sorted(ids(body["result"][:2])) == [2, 4],
          "hybrid: the two points in both lists first: %s" % body)
    for h in body["result"][:2]:
        check("dense" in h["scores"] and "lexical" in h["scores"] and
              1.0 / 61 < h["score"] <= 2.0 / 61 + 1e-9,
              "a hit in both lists has both scores and an RRF score in (1/61, 2/61]: %s" % h)
    for h in body["result"][2:]:
        check(len(h["scores"]) == 1 and h["score"] <= 1.0 / 61 + 1e-9,
              "a hit in one list: one score, RRF at most 1/61: %s" % h)
    st, body = search(s, {"text": "quercus sylvatica", "k": 5})
    check(st == 200 and ids(body["result"]) == [3],
          "hybrid of a text the model cannot encode: the lexical list: %s" % body)
    st, body = search(s, {"text": "Sydney police", "mode": "hybrid",
                          "fusion": {"method": "weighted", "alpha": 0.0}})
    check(st == 200 and body["result"][0]["id"] == 2 and
          abs(body["result"][0]["score"] - 1.0) < 1e-6,
          "weighted fusion, alpha 0: the lexical order, best = 1: %s" % body)
    st, body = search(s, {"text": "Sydney", "mode": "hybrid",
                          "fusion": {"method": "rrf", "rrf_k": 1}})
    check(st == 200 and body["result"][0]["score"] > 0.4, "rrf_k 1: %s" % body)


def batch_and_bad_checks(s):
    """Batch search with modes; bad modes and fusions."""
    st, body = search(s, {"searches": [{"text": "Sydney", "mode": "lexical"},
                                       {"text": "hurricane Florida"},
                                       {"vector": [0.1] * 10, "k": 2}]})
    check(st == 200 and len(body["result"]) == 3 and sorted(ids(body["result"][0])) == [2, 4]
          and body["result"][1][0]["id"] == 1 and len(body["result"][2]) == 2,
          "batch search with modes: %s" % body)

    # bad requests
    for bad, code in (({"vector": [0.1] * 10, "mode": "lexical"}, 422),
                      ({"text": "x", "mode": "fuzzy"}, 422),
                      ({"text": "x", "fusion": {"method": "max"}}, 422),
                      ({"text": "x", "fusion": {"alpha": 2}}, 422),
                      ({"text": "x", "fusion": {"bogus": 1}}, 400),
                      ({"text": "x", "fusion": 3}, 400)):
        st, body = search(s, bad)
        check(st == code, "%s is %d: %s %s" % (bad, code, st, body))


def update_checks(s):
    """Updates replace a point's words, a vector-only update drops them,
    a delete removes them."""
    st, body = s.req("PUT", "/v1/collections/h/points",
                     {"points": [{"id": 2, "text": "a weather report for Perth"}]})
    check(st == 200 and "without_vector" not in body["result"], "update: %s" % body)
    st, body = search(s, {"text": "police", "mode": "lexical"})
    check(body["result"] == [], "updated text replaced the old words: %s" % body)
    st, body = search(s, {"text": "Perth", "mode": "lexical"})
    check(ids(body["result"]) == [2], "and brought the new ones: %s" % body)
    st, body = s.req("PUT", "/v1/collections/h/points",
                     {"points": [{"id": 1, "vector": [0.2] * 10}]})
    st, body = search(s, {"text": "hurricane", "mode": "lexical"})
    check(body["result"] == [], "a vector-only update drops the lexical entry: %s" % body)
    st, body = s.req("POST", "/v1/collections/h/points/delete", {"points": [4]})
    check(st == 200, "delete: %s" % body)
    st, body = search(s, {"text": "bushfires", "mode": "lexical"})
    check(body["result"] == [], "a deleted point is gone from lexical search: %s" % body)


def api_checks(s):
    create_checks(s)
    text_point_checks(s)
    lexical_checks(s)
    dense_hybrid_checks(s)
    batch_and_bad_checks(s)
    update_checks(s)


def eval_checks(s, tmp):
    """embedsrv eval retrieval against this server: TREC and BEIR qrels."""
    q = os.path.join(tmp, "q.jsonl")
    with open(q, "w") as f:
        f.write('{"_id": "q1", "text": "Perth weather"}\n{"_id": 2, "text": "taxes"}\n'
                '{"_id": "q3", "text": "unjudged"}\n')
    trec = os.path.join(tmp, "r.trec")
    with open(trec, "w") as f:
        f.write("q1 0 2 1\n2 0 5 2\n2 0 1 0\n")
    beir = os.path.join(tmp, "r.tsv")
    with open(beir, "w") as f:
        f.write("query-id\tcorpus-id\tscore\nq1\t2\t1\n2\t5\t2\n")
    for qrels in (trec, beir):
        r = subprocess.run([BIN, "eval", "retrieval", "--server", "127.0.0.1:%d" % s.port,
                            "--collection", "h", "--queries", q, "--qrels", qrels,
                            "--mode", "lexical"], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "2 with relevant judgments" in r.stdout and
              "nDCG@10 1.0000  MAP@100 1.0000  recall@100 1.0000" in r.stdout,
              "eval retrieval (%s): %s %s" % (qrels, r.stdout, r.stderr))
    r = subprocess.run([BIN, "eval", "retrieval", "--server", "127.0.0.1:%d" % s.port,
                        "--collection", "nope", "--queries", q, "--qrels", trec],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "404" in r.stderr, "eval of a missing collection: %s" % r.stderr)


def state(s):
    out = []
    for q in ("Sydney", "quercus", "taxes", "Perth"):
        st, body = search(s, {"text": q, "mode": "lexical"}, name="d")
        out.append((q, st, [(h["id"], round(h["score"], 5)) for h in body.get("result", [])]))
    st, body = search(s, {"text": "Sydney taxes"}, name="d")
    out.append(("hybrid", st, ids(body.get("result", []))))
    return out


def durability_checks(tmp):
    data = os.path.join(tmp, "data")
    s = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data, wait="readyz")
    st, _ = s.req("PUT", "/v1/collections/d", {"lexical": {"k1": 1.1, "stemming": False}})
    check(st == 201, "create on a data dir: %s" % st)
    st, body = s.req("PUT", "/v1/collections/d/points", {"points": DOCS})
    check(st == 200, "upsert on a data dir: %s" % body)
    s.req("PUT", "/v1/collections/d/points", {"points": [{"id": 2, "text": "rain in Perth"}]})
    s.req("POST", "/v1/collections/d/points/delete", {"points": [5]})
    before = state(s)
    check(before[0][2] == [(4, before[0][2][0][1])] if before[0][2] else False,
          "before: Sydney -> 4 only: %s" % before)
    s.kill()
    s = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data, wait="readyz")
    after = state(s)
    check(after == before, "after SIGKILL the log replay rebuilt the lexical index:\n%s\n%s"
          % (before, after))
    st, body = s.req("GET", "/v1/collections/d")
    lex = body["result"]["lexical"]
    check(abs(lex["k1"] - 1.1) < 1e-6 and not lex["stemming"] and lex["count"] == 4,
          "parameters and count survive: %s" % lex)
    st, body = s.req("POST", "/v1/collections/d/snapshot")
    check(st == 200, "snapshot: %s %s" % (st, body))
    rc, log = s.stop()
    check(rc == 0, "clean stop: %s" % rc)
    s = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data, wait="readyz")
    again = state(s)
    check(again == before, "after a snapshot and restart, the same answers:\n%s\n%s"
          % (before, again))
    st, body = s.req("GET", "/v1/collections/d/points/3?with_vector=true")
    check(st == 200 and body["result"].get("vector") is None,
          "the point without a vector is still without one: %s" % body)
    rc, log = s.stop()
    check(rc == 0, "clean stop: %s" % rc)


def main():
    if not os.path.exists(MODEL):
        print("SKIP: no model at", MODEL)
        return 77
    with es_server.Server("--model", MODEL, "--quiet") as s, \
            tempfile.TemporaryDirectory() as tmp:
        api_checks(s)
        eval_checks(s, tmp)
    with tempfile.TemporaryDirectory() as tmp:
        durability_checks(tmp)
    print("hybrid: %d passed, %d failed" % (check.passed, len(check.failures)))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
