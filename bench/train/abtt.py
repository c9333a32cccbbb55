#!/usr/bin/python3
"""abtt.py IN.vec OUT.vec [D] — the post-processing `embedsrv train` applies
(core/train.h: subtract the mean word vector, project out the top D principal
directions; D defaults to 1), for a model trained elsewhere (fastText's .vec
in bench/train/run.sh), so both trainers can be compared with and without it.
Needs numpy (/usr/bin/python3 with python3-numpy)."""
import sys

import numpy as np


def main():
    src, dst = sys.argv[1], sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    with open(src, encoding="utf-8") as f:
        n, d = map(int, f.readline().split())
        words, rows = [], np.empty((n, d), np.float64)
        for i, line in enumerate(f):
            p = line.rstrip("\n").split(" ")
            words.append(p[0])
            rows[i] = np.asarray(p[1:d + 1], dtype=np.float64)
    x = rows - rows.mean(axis=0)
    if k:
        u = np.linalg.svd(x, full_matrices=False)[2][:k]
        x -= (x @ u.T) @ u
    with open(dst, "w", encoding="utf-8") as f:
        f.write("%d %d\n" % (n, d))
        for w, v in zip(words, x):
            f.write(w + " " + " ".join("%.6g" % e for e in v) + "\n")


if __name__ == "__main__":
    main()
