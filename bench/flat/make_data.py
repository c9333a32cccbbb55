#!/usr/bin/python3
"""make_data.py OUTDIR N D NQ [SEED] -- the vectors both exact-search
benchmarks read: OUTDIR/base.esbv (N x D) and OUTDIR/queries.esbv (NQ x D).

Vectors are standard normal, L2-normalised (like sentence embeddings), so
inner product == cosine and FAISS IndexFlatIP and embedsrv's dot metric
rank the same way.  Format: b"ESBV", uint32 n, uint32 d (little-endian),
then n*d float32 row-major.  Deterministic for a given seed."""
import os
import struct
import sys

import numpy as np


def write(path, x):
    x = np.ascontiguousarray(x, dtype="<f4")
    with open(path, "wb") as f:
        f.write(b"ESBV" + struct.pack("<II", x.shape[0], x.shape[1]))
        f.write(x.tobytes())


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    out, n, d, nq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 42
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    for name, rows in (("base", n), ("queries", nq)):
        x = rng.standard_normal((rows, d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        write(os.path.join(out, name + ".esbv"), x)


if __name__ == "__main__":
    main()
