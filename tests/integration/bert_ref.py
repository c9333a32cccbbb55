"""bert_ref.py — the bert-tiny fixture and its sentence-transformers
reference, shared by test_bert.py and test_batching.py (a helper module,
not a test): the folder, the parsed reference.json, the tolerance every
vector must meet, and the distance to check it with."""
import json
import os

from es_server import ROOT

DATA = os.path.join(ROOT, "tests", "data", "bert-tiny")
with open(os.path.join(DATA, "reference.json"), encoding="utf-8") as _f:
    REF = json.load(_f)
TOL = 1e-5


def maxdiff(a, b):
    """The largest absolute difference of two vectors (inf: lengths differ)."""
    if len(a) != len(b):
        return float("inf")
    return max(abs(x - y) for x, y in zip(a, b))
