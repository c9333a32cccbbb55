#!/usr/bin/python3
"""torch_peer.py MODEL_DIR OUT_DIR THREADS REPEATS -- the PyTorch CPU peer for
bench/encoder: the same safetensors weights in a small BERT forward written
with torch operations (transformers' BertModel maths: embeddings + LayerNorm,
per layer Q/K/V, masked softmax attention, output projection + residual +
LayerNorm, exact GELU feed-forward + residual + LayerNorm), mean pooling over
the attention mask and L2 normalisation, under torch.inference_mode with
torch.set_num_threads(THREADS).

Inputs are token ids built by the same formula as bench_encoder.c (the peer
does not tokenize, which favours it).  Prints one JSON line per
configuration, and checks its 32 x 32-token embeddings against the C ones in
OUT_DIR/c_emb.f32 when that file exists."""
import json
import math
import os
import statistics
import struct
import sys
import time

# Debian's torch does its matrix products in OpenBLAS, whose own thread pool
# ignores torch.set_num_threads(): pin it to the thread count under test
# before torch loads, or the "1 thread" run uses every core.
if len(sys.argv) > 3:
    for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = sys.argv[3]

import numpy as np
import torch
import torch.nn.functional as F

NWORDS = 15258


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32"
        b, e = v["data_offsets"]
        arr = np.frombuffer(data, dtype=np.float32, count=(e - b) // 4, offset=base + b)
        out[k] = torch.from_numpy(arr.reshape(v["shape"]).copy())
    return out


class Bert:
    def __init__(self, folder):
        cfg = json.load(open(os.path.join(folder, "config.json")))
        self.H = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.layers = cfg["num_hidden_layers"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        self.w = load_safetensors(os.path.join(folder, "model.safetensors"))

    def forward(self, ids, mask):
        w, H, nh = self.w, self.H, self.nh
        d = H // nh
        B, L = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:L][None]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = F.layer_norm(x, (H,), w["embeddings.LayerNorm.weight"],
                         w["embeddings.LayerNorm.bias"], self.eps)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for i in range(self.layers):
            p = "encoder.layer.%d." % i

            def heads(t):
                return t.view(B, L, nh, d).transpose(1, 2)

            q = heads(F.linear(x, w[p + "attention.self.query.weight"], w[p + "attention.self.query.bias"]))
            k = heads(F.linear(x, w[p + "attention.self.key.weight"], w[p + "attention.self.key.bias"]))
            v = heads(F.linear(x, w[p + "attention.self.value.weight"], w[p + "attention.self.value.bias"]))
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + bias
            ctx = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(B, L, H)
            a = F.linear(ctx, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
            x = F.layer_norm(a + x, (H,), w[p + "attention.output.LayerNorm.weight"],
                             w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = F.gelu(F.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
            o = F.linear(h, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
            x = F.layer_norm(o + x, (H,), w[p + "output.LayerNorm.weight"],
                             w[p + "output.LayerNorm.bias"], self.eps)
        m = mask[:, :, None].to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)


def make_ids(n, L):
    """Token ids and attention mask; L == "mixed": text k has 8 + 120 k / 31
    tokens, padded (id 0, mask 0) to the longest, as transformers pads a batch."""
    lens = [L if L != "mixed" else 8 + 120 * k // 31 for k in range(n)]
    Lmax = max(lens)
    ids = np.zeros((n, Lmax), dtype=np.int64)
    mask = np.zeros((n, Lmax), dtype=np.int64)
    for k in range(n):
        lk = lens[k]
        ids[k, 0] = 2
        for j in range(lk - 2):
            ids[k, 1 + j] = 5 + (k * 7919 + j * 104729) % NWORDS
        ids[k, lk - 1] = 3
        mask[k, :lk] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def main():
    folder, outdir, threads, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    model = Bert(folder)
    with torch.inference_mode():
        for n in (1, 32):
            for L in (8, 32, 128, "mixed"):
                if n == 1 and L == "mixed":
                    continue
                ids, mask = make_ids(n, L)
                r = reps * 10 if n == 1 else reps
                times, cpus = [], []
                for it in range(r + 1):
                    t0, c0 = time.perf_counter(), time.process_time()
                    emb = model.forward(ids, mask)
                    if it:
                        times.append(time.perf_counter() - t0)
                        cpus.append(time.process_time() - c0)
                med = statistics.median(times)
                rec = {"impl": "pytorch", "threads": threads, "batch": n, "tokens": L,
                       "median_s": round(med, 6),
                       "median_cpu_s": round(statistics.median(cpus), 6), "texts_per_s": round(n / med, 2)}
                if n == 32 and L == 32:
                    cpath = os.path.join(outdir, "c_emb.f32")
                    if os.path.exists(cpath):
                        c = np.fromfile(cpath, dtype=np.float32).reshape(emb.shape)
                        rec["max_abs_diff_vs_embedsrv"] = float(np.abs(c - emb.numpy()).max())
                print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
