#!/usr/bin/env python3
"""cisi.py — the CISI test collection for retrieval evaluation, and an
independent reference BM25 to check embedsrv's lexical index against.

  cisi.py convert CISI_DIR OUT_DIR
      CISI.ALL / CISI.QRY / CISI.REL -> BEIR-style OUT_DIR/corpus.jsonl
      ({"_id", "title", "text"}), OUT_DIR/queries.jsonl ({"_id", "text"}),
      OUT_DIR/qrels.tsv (BEIR: "query-id<TAB>corpus-id<TAB>score" with a
      header line) and OUT_DIR/qrels.trec (TREC: "qid 0 docid rel").
      A document's text is its .W abstract, its title .T; a query's text
      is its .T and .W joined.  CISI.REL lists relevant pairs only
      ("query doc 0 0.0"): each is relevance 1.  Only the 76 queries with
      judgments are written.

  cisi.py reference OUT_DIR [--k1 0.9] [--b 0.4] [--stem] [--stop]
                    [--rm3 DOCS,TERMS,QUERY_WEIGHT] [--run FILE]
      BM25 over title + " " + text, queries' top 100, metrics printed (and
      the run written as TREC "qid Q0 docid rank score tag" with --run);
      --rm3: with pseudo-relevance feedback as index/lexical.h defines it
      (the server's "feedback"; rm3_query below).  nDCG@10 is also given
      over the odd- and the even-numbered queries (tuned on the odd).

  cisi.py metrics OUT_DIR RUNFILE
      nDCG@10, MAP@100 and recall@100 of a TREC run file.

  cisi.py sweep OUT_DIR
      the reference over a grid of k1, b, stemming and stop words.

  cisi.py http URL OUT_DIR [--collection C] [--lexical JSON] [--runs N]
  cisi.py latency URL OUT_DIR [--collection C] [--runs 7] [--hybrid JSON]
      dense against the default text search (or the --hybrid request
      fields) over HTTP, interleaved per query; prints both p50s and the
      median per-query ratio
      through a running server: creates collection C (default "cisi",
      dropped first if it exists) with the given "lexical" parameters,
      upserts every document by text, then for each mode (dense, lexical,
      hybrid RRF, hybrid weighted at several alphas) searches every query
      with k 100 and prints the metrics, and the p50 of single top-10
      queries (N rounds, default 3; the median over queries of each query's
      median).

The reference shares nothing with the C code but the definitions:
  analysis  words as core/tokenize.h defines them (runs of ASCII letters and
            digits and of non-ASCII characters that are not punctuation; an
            apostrophe or hyphen between two word characters stays inside),
            lowercased; optionally Lucene's 33 English stop words dropped;
            optionally the Snowball English stemmer (the same libstemmer,
            through ctypes: the stemmer is the library's, not ours);
  BM25      score(D,Q) = sum over distinct query terms t in D of
            qtf(t) * ln(1 + (N - df + 0.5) / (df + 0.5))
                   * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |D| / avgdl)),
            |D| the number of terms of D after analysis; ties by doc id;
  metrics   nDCG@10 with gain = relevance and log2(rank + 1) discount over
            the ideal ordering of the judged documents; AP@100 = sum of
            precision at each relevant hit in the top 100 / number of
            relevant documents (trec_eval's map with a 100 cut-off);
            recall@100 = relevant in the top 100 / relevant; each the mean
            over the queries that have judgments.
Standard library only (plus libstemmer0d for --stem).
"""
import ctypes
import json
import statistics
import math
import os
import re
import sys
from collections import Counter, defaultdict

STOP = set("a an and are as at be but by for if in into is it no not of on or "
           "such that the their then there these they this to was will with".split())


def read_records(path):
    """CISI's .I/.T/.A/.W/.B/.X records -> list of (id, {field: text})."""
    recs, cur, field = [], None, None
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^\.([A-Z])\b ?(.*)$", line)
            if m:
                tag, rest = m.group(1), m.group(2)
                if tag == "I":
                    cur = (int(rest.strip()), defaultdict(list))
                    recs.append(cur)
                    field = None
                else:
                    field = tag
                    if rest.strip():
                        cur[1][field].append(rest)
                continue
            if cur is not None and field:
                cur[1][field].append(line)
    return [(i, {k: " ".join(" ".join(v).split()) for k, v in d.items()}) for i, d in recs]


def convert(src, out):
    os.makedirs(out, exist_ok=True)
    docs = read_records(os.path.join(src, "CISI.ALL"))
    queries = read_records(os.path.join(src, "CISI.QRY"))
    rel = defaultdict(set)
    with open(os.path.join(src, "CISI.REL")) as f:
        for line in f:
            p = line.split()
            if len(p) >= 2:
                rel[int(p[0])].add(int(p[1]))
    with open(os.path.join(out, "corpus.jsonl"), "w") as f:
        for i, d in docs:
            f.write(json.dumps({"_id": str(i), "title": d.get("T", ""),
                                "text": d.get("W", "")}) + "\n")
    n = 0
    with open(os.path.join(out, "queries.jsonl"), "w") as f:
        for i, d in queries:
            if i not in rel:
                continue
            text = " ".join(x for x in (d.get("T", ""), d.get("W", "")) if x)
            f.write(json.dumps({"_id": str(i), "text": text}) + "\n")
            n += 1
    with open(os.path.join(out, "qrels.tsv"), "w") as f, \
            open(os.path.join(out, "qrels.trec"), "w") as g:
        f.write("query-id\tcorpus-id\tscore\n")
        for q in sorted(rel):
            for d in sorted(rel[q]):
                f.write(f"{q}\t{d}\t1\n")
                g.write(f"{q} 0 {d} 1\n")
    print(f"{len(docs)} documents, {n} queries with judgments, "
          f"{sum(len(v) for v in rel.values())} judgments -> {out}")


# ---------------------------------------------------------------- analysis

# non-ASCII characters that separate words (core/tokenize.c keeps a table;
# the CISI text is ASCII, so the few Latin-1 punctuation marks suffice here)
NONASCII_PUNCT = set(chr(c) for c in range(0x80, 0xC0)) | {"\u00d7", "\u00f7"} | \
    set(chr(c) for c in range(0x2000, 0x2070))


def is_word_char(ch):
    if ch < "\x80":
        return ch.isascii() and ch.isalnum()
    return ch not in NONASCII_PUNCT and not ch.isspace()


def lower(ch):
    if "A" <= ch <= "Z":
        return chr(ord(ch) + 32)
    if "\u00c0" <= ch <= "\u00de" and ch != "\u00d7":
        return chr(ord(ch) + 32)
    return ch


def words(text):
    out, cur, i, n = [], [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\u2019":
            ch = "'"
        elif ch == "\u2010":
            ch = "-"
        if is_word_char(ch):
            cur.append(lower(ch))
        elif ch in "'-" and cur and i + 1 < n and is_word_char(text[i + 1]):
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
        i += 1
    if cur:
        out.append("".join(cur))
    return out


class Stemmer:
    def __init__(self):
        lib = None
        for name in ("libstemmer.so.0d", "libstemmer.so.0", "libstemmer.so"):
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                pass
        if lib is None:
            sys.exit("cisi.py: --stem needs libstemmer (Debian libstemmer0d)")
        lib.sb_stemmer_new.restype = ctypes.c_void_p
        lib.sb_stemmer_new.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.sb_stemmer_stem.restype = ctypes.POINTER(ctypes.c_ubyte)
        lib.sb_stemmer_stem.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.sb_stemmer_length.argtypes = [ctypes.c_void_p]
        self.lib, self.st = lib, lib.sb_stemmer_new(b"english", b"UTF_8")
        self.cache = {}

    def __call__(self, w):
        r = self.cache.get(w)
        if r is None:
            b = w.encode()
            p = self.lib.sb_stemmer_stem(self.st, b, len(b))
            n = self.lib.sb_stemmer_length(self.st)
            r = bytes(p[:n]).decode()
            self.cache[w] = r
        return r


def analyzer(stem, stop):
    st = Stemmer() if stem else None

    def analyze(text):
        out = []
        for w in words(text):
            if stop and w in STOP:
                continue
            out.append(st(w) if st else w)
        return out
    return analyze


# ---------------------------------------------------------------- BM25

def load(out):
    docs = [json.loads(l) for l in open(os.path.join(out, "corpus.jsonl"))]
    queries = [json.loads(l) for l in open(os.path.join(out, "queries.jsonl"))]
    qrels = defaultdict(dict)
    with open(os.path.join(out, "qrels.trec")) as f:
        for line in f:
            q, _, d, r = line.split()
            if int(r) > 0:
                qrels[q][d] = int(r)
    return docs, queries, qrels


def doc_text(d):
    return (d.get("title", "") + " " + d.get("text", "")).strip()


def bm25_run(docs, queries, k1, b, stem, stop, k=100, rm3=None):
    analyze = analyzer(stem, stop)
    tfs = [Counter(analyze(doc_text(d))) for d in docs]
    lens = [sum(t.values()) for t in tfs]
    N = len(docs)
    avgdl = sum(lens) / N
    df = Counter()
    for t in tfs:
        df.update(t.keys())
    post = defaultdict(list)
    for i, t in enumerate(tfs):
        for w, c in t.items():
            post[w].append((i, c))

    def search(qw, k):
        score = defaultdict(float)
        for w, c in qw.items():
            idf = math.log(1 + (N - df[w] + 0.5) / (df[w] + 0.5))
            for i, tf in post[w]:
                score[i] += c * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lens[i] / avgdl))
        return sorted(score.items(), key=lambda x: (-x[1], int(docs[x[0]]["_id"])))[:k]

    run = {}
    for q in queries:
        qtf = {w: c for w, c in Counter(analyze(q["text"])).items() if w in df}
        if rm3:
            qtf = rm3_query(qtf, search(qtf, rm3[0]), tfs, lens, rm3[1], rm3[2])
        ranked = search(qtf, k)
        run[q["_id"]] = [(docs[i]["_id"], s) for i, s in ranked]
    return run


def rm3_query(qtf, top, tfs, lens, nterms, qweight):
    """RM3 (the relevance model of the feedback documents `top`, [(doc,
    score)], mixed with the query): P(t) = sum over D of score(D) / sum of
    scores * tf(t, D) / |D|; the nterms heaviest, normalised to sum 1, at
    weight 1 - qweight; the query's qtf normalised to sum 1 at qweight."""
    tot = sum(sc for _, sc in top)
    if not top or tot <= 0:
        return qtf
    p = defaultdict(float)
    for i, sc in top:
        for w, c in tfs[i].items():
            p[w] += sc / tot * c / lens[i]
    ex = sorted(p.items(), key=lambda x: -x[1])[:nterms]
    ez, qz = sum(v for _, v in ex), sum(qtf.values())
    out = defaultdict(float)
    for w, c in qtf.items():
        out[w] += qweight * c / qz
    for w, v in ex:
        out[w] += (1 - qweight) * v / ez
    return {w: v for w, v in out.items() if v > 0}


def metrics(run, qrels):
    nd, ap, rc = [], [], []
    for q, rel in qrels.items():
        ranked = [d for d, _ in run.get(q, [])]
        dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
        ideal = sorted(rel.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        nd.append(dcg / idcg if idcg else 0.0)
        hits, s = 0, 0.0
        for i, d in enumerate(ranked[:100]):
            if rel.get(d, 0) > 0:
                hits += 1
                s += hits / (i + 1)
        ap.append(s / len(rel))
        rc.append(hits / len(rel))
    n = len(qrels)
    return sum(nd) / n, sum(ap) / n, sum(rc) / n


def split_ndcg(run, qrels):
    """nDCG@10 over all judged queries, the odd-numbered and the even-numbered
    (tuning on the odd, checking on the even)."""
    out = []
    for par in (None, 1, 0):
        qr = {q: r for q, r in qrels.items() if par is None or int(q) % 2 == par}
        out.append(metrics({q: v for q, v in run.items() if q in qr}, qr)[0])
    return out


def read_run(path):
    run = defaultdict(list)
    with open(path) as f:
        for line in f:
            q, _, d, rank, score = line.split()[:5]
            run[q].append((int(rank), d, float(score)))
    return {q: [(d, s) for _, d, s in sorted(v)] for q, v in run.items()}


def write_run(run, path, tag):
    with open(path, "w") as f:
        for q, hits in run.items():
            for i, (d, s) in enumerate(hits):
                f.write(f"{q} Q0 {d} {i + 1} {s:.6f} {tag}\n")


def http_eval(url, out, a):
    import http.client
    import time
    import urllib.parse
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)

    def req(method, path, body=None):
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)

    name = opt(a, "--collection", "cisi", str)
    lex = json.loads(opt(a, "--lexical", "null", str))
    runs = int(opt(a, "--runs", 3))
    docs, queries, qrels = load(out)
    req("DELETE", f"/v1/collections/{name}")
    st, body = req("PUT", f"/v1/collections/{name}", {"lexical": lex} if lex else {})
    if st != 201:
        sys.exit(f"create: {st} {body}")
    novec = []
    for i in range(0, len(docs), 200):
        pts = [{"id": int(d["_id"]), "text": doc_text(d)} for d in docs[i:i + 200]]
        st, body = req("PUT", f"/v1/collections/{name}/points", {"points": pts})
        if st != 200:
            sys.exit(f"upsert: {st} {body}")
        novec += body["result"].get("without_vector", [])
    st, body = req("GET", f"/v1/collections/{name}")
    info = body["result"]
    print(f"{info['count']} documents ({len(novec)} without a vector), memory "
          f"{info['memory_bytes']} bytes, lexical {info['lexical']}")
    modes = [("dense", {"mode": "dense"}), ("lexical", {"mode": "lexical"}),
             ("lexical + feedback", {"mode": "lexical", "feedback": True}),
             ("hybrid rrf", {"mode": "hybrid", "fusion": {"method": "rrf"}})]
    for alpha in (0.2, 0.3, 0.5):
        modes.append((f"hybrid weighted a={alpha}",
                      {"mode": "hybrid", "fusion": {"method": "weighted", "alpha": alpha}}))
    modes.append(("hybrid weighted a=0.3, no feedback",
                  {"mode": "hybrid", "feedback": False,
                   "fusion": {"method": "weighted", "alpha": 0.3}}))
    modes.append(("hybrid default (request without mode)", {}))
    print("| mode | nDCG@10 | odd | even | MAP@100 | recall@100 | p50 top-10 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, extra in modes:
        run = {}
        for i in range(0, len(queries), 50):
            batch = [dict(extra, text=q["text"], k=100, with_payload=False)
                     for q in queries[i:i + 50]]
            st, body = req("POST", f"/v1/collections/{name}/search", {"searches": batch})
            if st != 200:
                sys.exit(f"search: {st} {body}")
            for q, hits in zip(queries[i:i + 50], body["result"]):
                run[q["_id"]] = [(str(h["id"]), h["score"]) for h in hits]
        m = metrics(run, qrels)
        sp = split_ndcg(run, qrels)
        lat = []
        for q in queries:
            ts = []
            for _ in range(runs):
                t0 = time.perf_counter()
                st, _ = req("POST", f"/v1/collections/{name}/search",
                            dict(extra, text=q["text"], k=10, with_payload=False))
                ts.append(time.perf_counter() - t0)
            lat.append(sorted(ts)[len(ts) // 2])
        lat.sort()
        print(f"| {label} | {m[0]:.4f} | {sp[1]:.4f} | {sp[2]:.4f} | {m[1]:.4f} | {m[2]:.4f} | "
              f"{lat[len(lat) // 2] * 1000:.3f} |", flush=True)


def http_latency(url, out, a):
    """Dense against the default text search (hybrid) over HTTP, interleaved:
    each query R times in each mode, alternating which goes first; a query's
    latency is its median; prints the medians over queries and the median
    of the per-query ratios (top 10, one client, keep-alive)."""
    import http.client
    import time
    import urllib.parse
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)
    name = opt(a, "--collection", "cisi", str)
    reps = int(opt(a, "--runs", 7))
    extra = json.loads(opt(a, "--hybrid", "{}", str))
    _, queries, _ = load(out)

    def once(body):
        t0 = time.perf_counter()
        conn.request("POST", f"/v1/collections/{name}/search", json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            sys.exit(f"search: {r.status}")
        return time.perf_counter() - t0

    dense, hybrid, ratio = [], [], []
    for q in queries:
        td, th = [], []
        for i in range(reps):
            bd = {"text": q["text"], "k": 10, "with_payload": False, "mode": "dense"}
            bh = dict(extra, text=q["text"], k=10, with_payload=False)
            if i % 2:
                th.append(once(bh))
                td.append(once(bd))
            else:
                td.append(once(bd))
                th.append(once(bh))
        d, h = statistics.median(td), statistics.median(th)
        dense.append(d)
        hybrid.append(h)
        ratio.append(h / d)
    print(f"dense p50 {statistics.median(dense) * 1000:.3f} ms, hybrid {extra or 'default'} "
          f"p50 {statistics.median(hybrid) * 1000:.3f} ms, median per-query ratio "
          f"{statistics.median(ratio):.3f} ({len(queries)} queries x {reps} runs)")


def opt(args, name, default, conv=float):
    if name in args:
        return conv(args[args.index(name) + 1])
    return default


def main(argv):
    if len(argv) >= 3 and argv[0] == "convert":
        convert(argv[1], argv[2])
    elif len(argv) >= 2 and argv[0] == "reference":
        out, a = argv[1], argv[2:]
        k1, b = opt(a, "--k1", 0.9), opt(a, "--b", 0.4)
        stem, stop = "--stem" in a, "--stop" in a
        rm3 = opt(a, "--rm3", None, str)
        if rm3:
            d, t, w = rm3.split(",")
            rm3 = (int(d), int(t), float(w))
        docs, queries, qrels = load(out)
        run = bm25_run(docs, queries, k1, b, stem, stop, rm3=rm3)
        if "--run" in a:
            write_run(run, opt(a, "--run", None, str), "reference")
        m = metrics(run, qrels)
        sp = split_ndcg(run, qrels)
        print(f"reference BM25 k1 {k1} b {b} stem {int(stem)} stop {int(stop)} rm3 {rm3}: "
              f"nDCG@10 {m[0]:.4f} (odd {sp[1]:.4f}, even {sp[2]:.4f})  MAP@100 {m[1]:.4f}  "
              f"recall@100 {m[2]:.4f}")
    elif len(argv) >= 3 and argv[0] == "metrics":
        _, _, qrels = load(argv[1])
        m = metrics(read_run(argv[2]), qrels)
        print(f"{argv[2]}: nDCG@10 {m[0]:.4f}  MAP@100 {m[1]:.4f}  recall@100 {m[2]:.4f}")
    elif len(argv) >= 3 and argv[0] == "latency":
        http_latency(argv[1], argv[2], argv[3:])
    elif len(argv) >= 3 and argv[0] == "http":
        http_eval(argv[1], argv[2], argv[3:])
    elif len(argv) >= 2 and argv[0] == "sweep":
        docs, queries, qrels = load(argv[1])
        print("| k1 | b | stemming | stop words | nDCG@10 | MAP@100 | recall@100 |")
        print("|---|---|---|---|---|---|---|")
        for stem in (0, 1):
            for stop in (0, 1):
                for k1 in (0.6, 0.9, 1.2, 1.5, 2.0):
                    for b in (0.3, 0.4, 0.5, 0.6, 0.75):
                        m = metrics(bm25_run(docs, queries, k1, b, stem, stop), qrels)
                        print(f"| {k1} | {b} | {stem} | {stop} | {m[0]:.4f} | {m[1]:.4f} | {m[2]:.4f} |",
                              flush=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
