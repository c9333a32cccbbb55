#!/usr/bin/env python3
"""test_hybrid_options.py — hybrid search's request options and offline
evaluation, over real HTTP and the real binary.

Starts `embedsrv serve` on the Lee model (tests/data/lee-10d.vec) and checks:
"fusion": {"candidates": N} (bad values are 4xx; with candidates below k the
depth is k; a small depth changes which points the fusion sees); "feedback"
(bad values are 4xx; off in lexical mode, on in hybrid; expansion finds
documents without the query's words); a hybrid
search of a collection with no texts (vector-only points) is the dense
search (same ids, the dense score, no fusion); and `embedsrv eval retrieval
--data-dir` answers the same metrics offline as --server (encoding with the
collection's own model, refusing another), refuses while a server holds the
directory, and names a missing collection or directory.
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
    {"id": 1, "text": "The hurricane hit the coast of Florida"},
    {"id": 2, "text": "Police arrested two suspects in Sydney"},
    {"id": 3, "text": "Bushfires burned homes near Sydney"},
    {"id": 4, "text": "The government announced new taxes in Sydney"},
    {"id": 5, "text": "rain and storms over Sydney harbour"},
    {"id": 6, "text": "Quercus robur, Fagus sylvatica"},
]


def search(s, name, body):
    return s.req("POST", "/v1/collections/%s/search" % name, body)


def ids(body):
    return [h["id"] for h in body["result"]]


def candidates_checks(s):
    st, _ = s.req("PUT", "/v1/collections/c", {})
    check(st == 201, "create c: %s" % st)
    st, body = s.req("PUT", "/v1/collections/c/points", {"points": DOCS})
    check(st == 200, "upsert: %s" % body)
    for bad, want in ((0, 422), (10001, 422), ("5", 400), (1.5, 400)):
        st, body = search(s, "c", {"text": "Sydney", "fusion": {"candidates": bad}})
        check(st == want and "candidates" in str(body),
              "fusion.candidates %r is %d: %s %s" % (bad, want, st, body))
    # with enough candidates the default and an explicit depth agree
    st, a = search(s, "c", {"text": "Sydney storms", "k": 6})
    st2, b = search(s, "c", {"text": "Sydney storms", "k": 6,
                             "fusion": {"candidates": 50}})
    check(st == 200 and st2 == 200 and a == b, "the default depth (100) and 50 agree on 6 points: %s %s" % (a, b))
    # candidates below k: the depth is k, every list reaches k
    st, c1 = search(s, "c", {"text": "Sydney storms", "k": 6, "fusion": {"candidates": 1}})
    check(st == 200 and ids(c1) == ids(a), "candidates < k fuse the top k: %s %s" % (c1, a))
    # one candidate per list at k 1: the fused best is the best of the two heads
    st, one = search(s, "c", {"text": "Sydney storms", "k": 1, "fusion": {"candidates": 1},
                              "mode": "hybrid"})
    st2, lex = search(s, "c", {"text": "Sydney storms", "k": 1, "mode": "lexical"})
    st3, den = search(s, "c", {"text": "Sydney storms", "k": 1, "mode": "dense"})
    check(st == 200 and len(one["result"]) == 1 and
          one["result"][0]["id"] in (lex["result"][0]["id"], den["result"][0]["id"]),
          "one candidate per list: %s (lexical %s, dense %s)" % (one, lex, den))


def feedback_checks(s):
    """"feedback" (RM3 on the lexical list): on by default in hybrid, off in
    lexical; expands a query with its top documents' words."""
    for bad, want in ((3, 400), ("yes", 400), ({"bogus": 1}, 400), ({"docs": -1}, 422),
                      ({"docs": 1001}, 422), ({"terms": 0}, 422),
                      ({"query_weight": 2}, 422), ({"query_weight": "x"}, 400)):
        st, body = search(s, "c", {"text": "police", "mode": "lexical", "feedback": bad})
        named = list(bad)[0] if isinstance(bad, dict) else "feedback"
        check(st == want and named in body["error"]["param"],
              "feedback %r is %d: %s %s" % (bad, want, st, body))
    st, body = search(s, "c", {"text": "police", "mode": "dense", "feedback": True})
    check(st == 422 and "feedback" in str(body), "feedback in dense mode is 422: %s" % body)
    st, plain = search(s, "c", {"text": "police", "mode": "lexical"})
    st2, off = search(s, "c", {"text": "police", "mode": "lexical", "feedback": False})
    check(st == 200 and plain == off and ids(plain) == [2],
          "lexical mode has no feedback by default: %s %s" % (plain, off))
    # the top document (2: "Police arrested two suspects in Sydney") brings
    # "sydney" into the query: the other Sydney documents are found too
    st, fb = search(s, "c", {"text": "police", "mode": "lexical", "feedback": True, "k": 6})
    check(st == 200 and ids(fb)[0] == 2 and set(ids(fb)) == {2, 3, 4, 5},
          "feedback finds documents without the query's word: %s" % fb)
    st, one = search(s, "c", {"text": "police", "mode": "lexical", "k": 6,
                              "feedback": {"docs": 1, "terms": 1, "query_weight": 0.5}})
    check(st == 200 and ids(one) == [2],
          "one expansion term (the heaviest: police itself) adds nothing: %s" % one)
    # hybrid: the defaults are on; false turns them off
    st, dflt = search(s, "c", {"text": "police", "k": 6})
    st2, expl = search(s, "c", {"text": "police", "k": 6,
                                "feedback": {"docs": 5, "terms": 20, "query_weight": 0.7}})
    st3, hoff = search(s, "c", {"text": "police", "k": 6, "feedback": False})
    check(st == st2 == st3 == 200 and dflt == expl,
          "hybrid's default feedback is docs 5, terms 20, query_weight 0.7: %s %s" % (dflt, expl))
    lex_on = sorted(h["id"] for h in dflt["result"] if "lexical" in h["scores"])
    lex_off = sorted(h["id"] for h in hoff["result"] if "lexical" in h["scores"])
    check(lex_on == [2, 3, 4, 5] and lex_off == [2],
          "hybrid's lexical list with and without feedback: %s %s" % (lex_on, lex_off))


def vector_only_checks(s):
    st, _ = s.req("PUT", "/v1/collections/v", {})
    check(st == 201, "create v: %s" % st)
    st, body = s.req("POST", "/v1/embeddings", {"input": [d["text"] for d in DOCS[:5]]})
    check(st == 200, "embeddings: %s" % st)
    pts = [{"id": d["id"], "vector": e["embedding"]} for d, e in zip(DOCS, body["data"])]
    st, body = s.req("PUT", "/v1/collections/v/points", {"points": pts})
    check(st == 200, "vector-only upsert: %s" % body)
    st, h = search(s, "v", {"text": "Sydney storms", "k": 3})
    st2, d = search(s, "v", {"text": "Sydney storms", "k": 3, "mode": "dense"})
    check(st == 200 and st2 == 200 and ids(h) == ids(d) and len(ids(h)) == 3,
          "hybrid on vector-only points = dense: %s %s" % (h, d))
    check(all(abs(x["score"] - y["score"]) < 1e-6 and abs(x["scores"]["dense"] - y["score"]) < 1e-6
              and "lexical" not in x["scores"] for x, y in zip(h["result"], d["result"])),
          "the dense score, not a fused one: %s %s" % (h, d))
    # once one point has text, hybrid fuses again (fused scores are at most 1)
    st, _ = s.req("PUT", "/v1/collections/v/points", {"points": [DOCS[4]]})
    st, h = search(s, "v", {"text": "Sydney storms", "k": 3})
    check(st == 200 and any("lexical" in x["scores"] for x in h["result"]),
          "with a text, hybrid fuses: %s" % h)


def eval_checks(tmp):
    data = os.path.join(tmp, "data")
    q = os.path.join(tmp, "q.jsonl")
    with open(q, "w") as f:
        f.write('{"_id": "q1", "text": "police suspects"}\n{"_id": 2, "text": "government"}\n')
    qrels = os.path.join(tmp, "r.trec")
    with open(qrels, "w") as f:
        f.write("q1 0 2 1\n2 0 4 1\n")

    def run(*extra):
        return subprocess.run([BIN, "eval", "retrieval", "--collection", "c", "--queries", q,
                               "--qrels", qrels] + list(extra),
                              capture_output=True, text=True, timeout=60)

    s = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data, wait="readyz")
    s.req("PUT", "/v1/collections/c", {})
    st, body = s.req("PUT", "/v1/collections/c/points", {"points": DOCS})
    check(st == 200, "upsert on a data dir: %s" % body)
    online = {}
    for mode in ("dense", "lexical", "hybrid"):
        r = run("--server", "127.0.0.1:%d" % s.port, "--mode", mode)
        check(r.returncode == 0, "eval --server %s: %s %s" % (mode, r.stdout, r.stderr))
        online[mode] = r.stdout.splitlines()[-1]
    r = run("--data-dir", data, "--model", MODEL)
    check(r.returncode == 1 and "a server holds" in r.stderr,
          "eval --data-dir while the server runs: %s %s" % (r.returncode, r.stderr))
    s.kill()  # no snapshot: the offline run replays the log as serve does
    for mode in ("dense", "lexical", "hybrid"):
        r = run("--data-dir", data, "--model", MODEL, "--mode", mode)
        last = r.stdout.splitlines()[-1] if r.stdout else ""
        check(r.returncode == 0 and last == online[mode] and "latency" in r.stdout,
              "eval --data-dir %s = --server: %r vs %r (%s)" % (mode, last, online[mode],
                                                                r.stderr))
    # the collection's own model encodes the queries: the --model whose name
    # it records, wherever it is in the list; another model is refused
    r = run("--data-dir", data, "--model", "other=" + MODEL, "--model", MODEL, "--mode", "dense")
    check(r.returncode == 0 and r.stdout.splitlines()[-1] == online["dense"],
          "eval --data-dir picks the collection's model: %s %s" % (r.stdout, r.stderr))
    r = run("--data-dir", data, "--model", "other=" + MODEL, "--mode", "hybrid")
    check(r.returncode == 1 and "encodes text with model" in r.stderr and
          "--model " in r.stderr, "another model is refused: %s %s" % (r.stdout, r.stderr))
    r = run("--data-dir", data, "--mode", "lexical")
    check(r.returncode == 0 and "nDCG@10 1.0000" in r.stdout,
          "lexical needs no model: %s %s" % (r.stdout, r.stderr))
    r = run("--data-dir", data, "--model", MODEL, "--candidates", "1")
    check(r.returncode == 0, "--candidates: %s %s" % (r.stdout, r.stderr))
    r = run("--data-dir", data, "--model", MODEL, "--candidates", "0", "--server", "x:1")
    check(r.returncode == 2, "both --data-dir and --server is a usage error: %s" % r.stderr)
    r = run("--data-dir", os.path.join(tmp, "none"), "--model", MODEL)
    check(r.returncode == 1 and "not a data directory" in r.stderr and
          not os.path.exists(os.path.join(tmp, "none")),
          "a missing data directory is named and not created: %s" % r.stderr)
    r = subprocess.run([BIN, "eval", "retrieval", "--data-dir", data, "--model", MODEL,
                        "--collection", "nope", "--queries", q, "--qrels", qrels],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "nope" in r.stderr, "a missing collection: %s" % r.stderr)
    # the directory still serves after the offline runs
    s = es_server.Server("--model", MODEL, "--quiet", "--data-dir", data, wait="readyz")
    r = run("--server", "127.0.0.1:%d" % s.port, "--mode", "hybrid")
    check(r.returncode == 0 and r.stdout.splitlines()[-1] == online["hybrid"],
          "served again, same answers: %s" % r.stdout)
    rc, _ = s.stop()
    check(rc == 0, "clean stop: %s" % rc)


def main():
    if not os.path.exists(MODEL):
        print("SKIP: no model at", MODEL)
        return 77
    with es_server.Server("--model", MODEL, "--quiet") as s:
        candidates_checks(s)
        feedback_checks(s)
        vector_only_checks(s)
    with tempfile.TemporaryDirectory() as tmp:
        eval_checks(tmp)
    print("%d checks passed, %d failed" % (check.passed, len(check.failures)))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
