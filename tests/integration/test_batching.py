#!/usr/bin/env python3
"""test_batching.py — dynamic batching of /v1/embeddings through the real
binary (server/batcher).

`embedsrv serve` on the bert-tiny fixture with --batch-max 8 and a long
--batch-wait-us so that concurrent one-text requests are encoded together:
every response must still match sentence-transformers' reference within
1e-5, /metrics must count fewer forward passes than requests, a request
whose text is too long with "truncate": false must get its own 422 while
the requests batched with it get 200, and a batch-max of 0 (off) must serve
the same vectors with no batch metrics.  Bad --batch-* values are refused
at start.  Standard library only; the server is started by es_server.py.
"""
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from es_server import BIN, SLOW, Checks, Server  # noqa: E402
from bert_ref import DATA, REF, TOL, maxdiff  # noqa: E402

check = Checks()


def concurrent(srv, bodies):
    """POST each body to /v1/embeddings at once; [(status, parsed)] in order."""
    res = [None] * len(bodies)
    go = threading.Barrier(len(bodies))

    def one(i):
        go.wait()
        res[i] = srv.req("POST", "/v1/embeddings", bodies[i], timeout=60)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


def batch_metric(srv, what):
    return srv.metric('embedsrv_batch_%s_total{model="st-mean"}' % what)


def test_batched():
    # 8 HTTP threads so 8 requests wait in the batcher at once; 1 s of wait
    # lets 8 texts gather even on a loaded machine (a full batch goes at once)
    with Server("--model", os.path.join(DATA, "st-mean"), "--threads", "8",
                "--batch-max", "8", "--batch-wait-us", "1000000", "--quiet") as srv:
        idx = list(range(8))
        res = concurrent(srv, [{"input": REF["sentences"][i]} for i in idx])
        worst = 0.0
        for i, (st, r) in zip(idx, res):
            check(st == 200, "request %d: %d %s" % (i, st, r))
            if st == 200:
                worst = max(worst, maxdiff(r["data"][0]["embedding"], REF["embeddings_mean"][i]))
                check(r["usage"]["prompt_tokens"] == len(REF["input_ids"][i]),
                      "request %d usage %s" % (i, r["usage"]))
        check(worst <= TOL, "batched one-text requests: max diff %g" % worst)
        req_n, texts, fwd = (batch_metric(srv, k) for k in ("requests", "texts", "forwards"))
        check(req_n == 8 and texts == 8, "batch metrics: requests %s texts %s" % (req_n, texts))
        check(fwd is not None and fwd < req_n, "8 concurrent requests took %s forwards" % fwd)

        # a long text with "truncate": false fails alone; its companions do not
        long_text = " ".join(["hello"] * 300)
        bodies = [{"input": REF["sentences"][i], "truncate": False} for i in range(3)]
        bodies.insert(1, {"input": long_text, "truncate": False})
        res = concurrent(srv, bodies)
        check(res[1][0] == 422 and res[1][1]["error"]["param"] == "input",
              "too long with truncate false: %s" % (res[1],))
        for k, i in ((0, 0), (2, 1), (3, 2)):
            st, r = res[k]
            check(st == 200 and maxdiff(r["data"][0]["embedding"], REF["embeddings_mean"][i]) <= TOL,
                  "companion %d of the failing request: %d" % (i, st))

        # a request larger than batch-max runs alone, whole and in order
        st, r = srv.req("POST", "/v1/embeddings", {"input": REF["sentences"]}, timeout=60)
        check(st == 200 and len(r["data"]) == len(REF["sentences"]), "all sentences: %d" % st)
        if st == 200:
            worst = max(maxdiff(d["embedding"], REF["embeddings_mean"][d["index"]]) for d in r["data"])
            check(worst <= TOL, "all sentences through the batcher: max diff %g" % worst)


def test_batch_threads():
    # one batch worker on a pool of 2 threads: 20 sentences are cut into
    # two runs of texts, one per thread; 4 concurrent requests share it
    with Server("--model", os.path.join(DATA, "st-mean"), "--threads", "4",
                "--batch-max", "32", "--batch-threads", "2", "--quiet") as srv:
        st, r = srv.req("POST", "/v1/embeddings", {"input": REF["sentences"]}, timeout=60)
        check(st == 200 and len(r["data"]) == len(REF["sentences"]), "all sentences: %d" % st)
        if st == 200:
            worst = max(maxdiff(d["embedding"], REF["embeddings_mean"][d["index"]]) for d in r["data"])
            check(worst <= TOL, "20 sentences on 2 threads per forward: max diff %g" % worst)
        res = concurrent(srv, [{"input": REF["sentences"][i]} for i in range(4)])
        for i, (st, r) in enumerate(res):
            check(st == 200 and maxdiff(r["data"][0]["embedding"], REF["embeddings_mean"][i]) <= TOL,
                  "request %d with --batch-threads 2: %d" % (i, st))
        wait, fwd = batch_metric(srv, "wait_seconds"), batch_metric(srv, "forward_seconds")
        check(wait is not None and wait >= 0 and fwd is not None and fwd > 0,
              "wait / forward seconds: %s %s" % (wait, fwd))


def test_off():
    with Server("--model", os.path.join(DATA, "st-mean"), "--batch-max", "0", "--quiet") as srv:
        res = concurrent(srv, [{"input": REF["sentences"][i]} for i in range(4)])
        for i, (st, r) in enumerate(res):
            check(st == 200 and maxdiff(r["data"][0]["embedding"], REF["embeddings_mean"][i]) <= TOL,
                  "unbatched request %d: %d" % (i, st))
        check(batch_metric(srv, "forwards") is None, "--batch-max 0 still reports batch metrics")


def test_bad_options():
    for args in (["--batch-max", "-1"], ["--batch-max", "x"], ["--batch-max", "5000"],
                 ["--batch-wait-us", "1000001"], ["--batch-threads", "0"],
                 ["--batch-threads", "2000"]):
        p = subprocess.run([BIN, "serve", "--model", os.path.join(DATA, "st-mean"),
                            "--port", "0"] + args, capture_output=True, timeout=60 * SLOW)
        check(p.returncode != 0 and args[0].encode() in p.stderr,
              "%s: exit %d, %s" % (" ".join(args), p.returncode, p.stderr[-200:]))


def main():
    test_batched()
    test_batch_threads()
    test_off()
    test_bad_options()
    print("batching: %d passed, %d failed" % (check.passed, len(check.failures)))
    sys.exit(1 if check.failures else 0)


if __name__ == "__main__":
    main()
