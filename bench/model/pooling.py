#!/usr/bin/python3
"""pooling.py EMBEDSRV MODEL CORPUS STS — sentence pooling variants for a
static model, measured on the STS Benchmark dev split (issue 18: is SIF
pooling what limits STS, rather than the word vectors?).

Every variant pools the same word vectors (`embedsrv vectors`: a known
word's full vector, an unknown word's n-gram composition) and is scored
like `embedsrv eval sts` (Spearman x100 of the cosine against the gold
scores).  Common components are estimated, as `embedsrv train` does, on
20,000 evenly spaced lines of the training corpus, never on the STS
sentences, except in the one row marked "(transductive)", shown only to
bound what in-domain estimation would give.  Word probabilities are the
corpus counts of words seen 5+ times.  The tokenizer is a regex close to
core/tokenize.c, so the plain SIF row lands within ~0.2 of `eval sts`:
compare rows with each other.  Needs numpy and scipy (/usr/bin/python3 with
python3-numpy, python3-scipy).  About 3 minutes on one core."""
import collections
import re
import subprocess
import sys

import numpy as np
from scipy.stats import spearmanr

TOK = re.compile(r"[0-9a-z\u00c0-\uffff]+(?:['\-][0-9a-z\u00c0-\uffff]+)*")


def tok(s):
    return TOK.findall(s.lower())


def main():
    binary, model, corpus, sts = sys.argv[1:5]
    cnt, lines = collections.Counter(), []
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            t = tok(line)
            cnt.update(t)
            if t:
                lines.append(t)
    step = max(1, len(lines) // 20000)
    samp = lines[::step][:20000]
    total = sum(c for c in cnt.values() if c >= 5)
    pairs = []
    with open(sts, encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            pairs.append((float(p[4]), tok(p[5]), tok(p[6])))
    words = sorted({w for _, a, b in pairs for w in a + b} | {w for s in samp for w in s})
    out = subprocess.run([binary, "vectors", "--model", model], check=True,
                         input="\n".join(words) + "\n", capture_output=True,
                         text=True).stdout.splitlines()
    vec = np.array([[float(x) for x in o.split()[1:]] for o in out])
    assert len(vec) == len(words)
    idx = {w: i for i, w in enumerate(words)}
    known = np.array([cnt[w] >= 5 for w in words])
    prob = np.array([cnt[w] / total if cnt[w] >= 5 else 1.0 / total for w in words])
    gold = [g for g, _, _ in pairs]
    unit = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)

    def enc(sents, wt, vm, skip_oov):
        e = np.zeros((len(sents), vm.shape[1]))
        for i, s in enumerate(sents):
            ids = [idx[w] for w in s if np.any(vec[idx[w]])]
            if skip_oov and any(known[j] for j in ids):
                ids = [j for j in ids if known[j]]
            if ids:
                e[i] = (wt[ids, None] * vm[ids]).sum(0) / len(ids)
        return e

    def row(name, wt, vm=vec, k=1, weighted_pcs=False, skip_oov=False, on_sts=False):
        e1 = enc([a for _, a, _ in pairs], wt, vm, skip_oov)
        e2 = enc([b for _, _, b in pairs], wt, vm, skip_oov)
        if k:
            x = np.vstack([e1, e2]) if on_sts else enc(samp, wt, vm, skip_oov)
            _, s, vt = np.linalg.svd(x, full_matrices=False)
            lam = s[:k] ** 2 / np.sum(s[:k] ** 2) if weighted_pcs else np.ones(k)
            for i in range(k):
                e1 = e1 - lam[i] * np.outer(e1 @ vt[i], vt[i])
                e2 = e2 - lam[i] * np.outer(e2 @ vt[i], vt[i])
        n1 = np.linalg.norm(e1, axis=1)
        n2 = np.linalg.norm(e2, axis=1)
        cos = (e1 * e2).sum(1) / np.maximum(n1 * n2, 1e-30)
        print("| %s | %.2f |" % (name, 100 * spearmanr(cos, gold).correlation), flush=True)

    print("| pooling (on %s) | STS dev x100 |\n|---|---|" % model.split("/")[-1])
    sif = 1e-3 / (1e-3 + prob)
    row("SIF a=1e-3, 1 common component (what the encoder does)", sif)
    for a in (3e-4, 3e-3):
        row("SIF a=%g" % a, a / (a + prob))
    for k in (0, 2, 5):
        row("SIF, %d common components" % k, sif, k=k)
    row("SIF, 1 component from the STS sentences (transductive)", sif, on_sts=True)
    row("SIF, unit-length word vectors", sif, vm=unit)
    row("SIF, unit-length word vectors, 5 components weighted by variance", sif,
        vm=unit, k=5, weighted_pcs=True)
    row("SIF, unknown words left out", sif, skip_oov=True)
    w = sif.copy()
    w[~known] = 1e-3 / (1e-3 + 1e-4)
    row("SIF, unknown words weighted as p=1e-4", w)
    # uSIF (Ethayarajh 2018): a from the vocabulary size and sentence length
    nv, n = known.sum(), 11
    alpha = (prob[known] > 1 - (1 - 1 / nv) ** n).sum() / nv
    au = (1 - alpha) / (alpha * nv / 2)
    us = au / (0.5 * au + prob)
    row("uSIF weights (a=%.4f), raw vectors, 1 component" % au, us)
    row("uSIF: unit vectors, 5 components weighted by variance", us, vm=unit, k=5,
        weighted_pcs=True)
    # all-but-the-top on the word vectors (Mu & Viswanath 2018)
    mu = vec[known].mean(0)
    vt = np.linalg.svd(vec[known] - mu, full_matrices=False)[2]
    for d in (1, 3):
        va = vec - mu
        va -= (va @ vt[:d].T) @ vt[:d]
        row("word vectors minus mean and top %d PCs, SIF, no component" % d, sif, vm=va, k=0)
    # a random-projection sketch of the bag of words added to each word
    r = np.random.default_rng(1).standard_normal(vec.shape) / np.sqrt(vec.shape[1])
    med = np.median(np.linalg.norm(vec[known], axis=1))
    for lam in (0.5, 1.0):
        row("word vector + %g x random word signature (lexical overlap), no component" % lam,
            sif, vm=vec + lam * med * r, k=0)


if __name__ == "__main__":
    main()
