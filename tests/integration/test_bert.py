#!/usr/bin/env python3
"""test_bert.py — BERT model folders through the real binary.

`embedsrv encode --model DIR` and `embedsrv serve --model mean=DIR --model
cls=DIR` on the bert-tiny fixture (tests/data/bert-tiny): sentence vectors
must match sentence-transformers' reference (reference.json) within 1e-5,
/v1/tokenize must return Hugging Face's WordPiece pieces, /v1/info must list
both models as BERT, `usage` must count the real tokens, and word
arithmetic must work over the tokenizer's whole-word vocabulary.
Standard library only; the server is started by es_server.py.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from es_server import BIN, ROOT, SLOW, Checks, Server  # noqa: E402
from bert_ref import DATA, REF, TOL, maxdiff  # noqa: E402

check = Checks()


def test_cli():
    # sentences without line breaks: the command reads one text per line
    idx = [i for i, s in enumerate(REF["sentences"]) if "\n" not in s and "\r" not in s]
    text = "".join(REF["sentences"][i] + "\n" for i in idx)
    for folder, key in (("st-mean", "embeddings_mean"), ("st-cls", "embeddings_cls")):
        p = subprocess.run([BIN, "encode", "--model", os.path.join(DATA, folder)],
                           input=text.encode(), capture_output=True, timeout=120 * SLOW)
        check(p.returncode == 0, "encode %s exit %d: %s" % (folder, p.returncode, p.stderr[-300:]))
        lines = p.stdout.decode().splitlines()
        check(len(lines) == len(idx), "encode %s: %d lines for %d texts" % (folder, len(lines), len(idx)))
        worst = 0.0
        for i, line in zip(idx, lines):
            worst = max(worst, maxdiff([float(v) for v in line.split()], REF[key][i]))
        check(worst <= TOL, "encode %s: max diff %g" % (folder, worst))
    p = subprocess.run([BIN, "encode", "--model", os.path.join(ROOT, "tests")],
                       input=b"x\n", capture_output=True, timeout=60 * SLOW)
    check(p.returncode == 1 and b"config.json" in p.stderr,
          "encode on a non-model folder: exit %d, %s" % (p.returncode, p.stderr[-200:]))


def test_http(tmp):
    with Server("--model", "mean=" + os.path.join(DATA, "st-mean"),
                "--model", "cls=" + os.path.join(DATA, "st-cls"),
                "--data-dir", tmp, "--quiet") as srv:
        def req(method, path, body=None):
            return srv.req(method, path, body, timeout=60)

        st, info = req("GET", "/v1/info")
        models = {m["name"]: m for m in info.get("models", [])}
        check(st == 200 and set(models) == {"mean", "cls"}, "info models %s" % list(models))
        for m in models.values():
            check(m.get("kind") == "bert" and m.get("dim") == 128 and m.get("max_seq_length") == 128,
                  "info model %s" % m)

        n_real = sum(len(ids) for ids in REF["input_ids"])
        for name, key in (("mean", "embeddings_mean"), ("cls", "embeddings_cls")):
            st, r = req("POST", "/v1/embeddings", {"input": REF["sentences"], "model": name})
            check(st == 200, "embeddings %s status %d %s" % (name, st, r))
            if st != 200:
                continue
            worst = max(maxdiff(d["embedding"], REF[key][d["index"]]) for d in r["data"])
            check(worst <= TOL, "embeddings %s max diff %g" % (name, worst))
            check(r["usage"]["prompt_tokens"] == n_real,
                  "usage %s: %s, real tokens %d" % (name, r["usage"], n_real))

        for i in (0, 3, 5, 8, 16):
            st, r = req("POST", "/v1/tokenize", {"input": REF["sentences"][i], "model": "mean"})
            toks = [t["token"] for t in r["result"]["tokens"]] if st == 200 else None
            check(toks == REF["tokens"][i], "tokenize %d: %s" % (i, toks))
            ids = [t["id"] for t in r["result"]["tokens"]] if st == 200 else None
            check(ids == REF["input_ids"][i], "tokenize ids %d" % i)

        st, r = req("POST", "/v1/similarity", {"a": "the river bank", "b": "the river bank"})
        check(st == 200 and abs(r["result"]["score"] - 1.0) < 1e-5, "similarity %s" % r)
        st, r = req("POST", "/v1/words/analogy",
                    {"positive": ["king", "woman"], "negative": ["man"], "model": "mean"})
        words = [w["word"] for w in r["result"]] if st == 200 else []
        check(st == 200 and len(words) > 0 and not any(w.startswith("##") or
                                                       (len(w) > 1 and w[0] == "[" and w[-1] == "]")
                                                       for w in words),
              "analogy over whole words: %d %s" % (st, r))


def main():
    import tempfile
    test_cli()
    with tempfile.TemporaryDirectory() as tmp:
        test_http(tmp)
    print("bert: %d passed, %d failed" % (check.passed, len(check.failures)))
    sys.exit(1 if check.failures else 0)


if __name__ == "__main__":
    main()
