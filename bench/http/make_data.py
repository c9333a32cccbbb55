#!/usr/bin/python3
"""make_data.py OUT_DIR — deterministic inputs for bench/http.

Writes OUT_DIR/model-100d.vec: a fastText-format text model of 50,000 words
x 100 dimensions (seeded random unit vectors: serving cost depends on
vocabulary size and dimension, not on what the vectors mean), and
OUT_DIR/points-NNNN.json: upsert bodies of 1,000 points each (100,000 points,
each a 100-d vector with a small payload).
"""
import json
import os
import sys

import numpy as np

out = sys.argv[1]
n_points = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(12345)
V, D = 50000, 100
model = os.path.join(out, "model-100d.vec")
if not os.path.exists(model):
    vec = rng.standard_normal((V, D)).astype(np.float32)
    with open(model + ".tmp", "w") as f:
        f.write("%d %d\n" % (V, D))
        for i in range(V):
            f.write("w%d " % i + " ".join("%.5f" % x for x in vec[i]) + "\n")
    os.rename(model + ".tmp", model)
pts = rng.standard_normal((n_points, D)).astype(np.float32)
for b in range(0, n_points, 1000):
    path = os.path.join(out, "points-%04d.json" % (b // 1000))
    body = {"points": [{"id": int(i), "vector": [round(float(x), 5) for x in pts[i]],
                        "payload": {"g": int(i % 10)}} for i in range(b, min(b + 1000, n_points))]}
    with open(path, "w") as f:
        json.dump(body, f)
print("data in", out)
