#!/usr/bin/python3
"""make_model.py OUTDIR -- a random-weight BERT folder with all-MiniLM-L6-v2's
exact shape (6 layers, hidden 384, 12 heads, intermediate 1536, vocab 30522,
256 positions) in sentence-transformers layout (mean pooling + Normalize).

Weights are N(0, 0.02) like BERT's initialiser (LayerNorm weight 1, bias 0),
written as F32 safetensors with numpy only.  The vocabulary is synthetic:
the five BERT specials, then whole words "w5".."w15265" and continuation
pieces "##p..", so a text of k generated words is exactly k + 2 tokens.
Deterministic (seed 1234)."""
import json
import os
import struct
import sys

import numpy as np

V, H, L, NH, FF, P, T = 30522, 384, 6, 12, 1536, 256, 2


def main():
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    os.makedirs(os.path.join(out, "2_Normalize"), exist_ok=True)
    rng = np.random.default_rng(1234)
    tensors = {}

    def normal(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    tensors["embeddings.word_embeddings.weight"] = normal(V, H)
    tensors["embeddings.position_embeddings.weight"] = normal(P, H)
    tensors["embeddings.token_type_embeddings.weight"] = normal(T, H)
    tensors["embeddings.LayerNorm.weight"] = np.ones(H, np.float32)
    tensors["embeddings.LayerNorm.bias"] = np.zeros(H, np.float32)
    for i in range(L):
        p = "encoder.layer.%d." % i
        for n in ("query", "key", "value"):
            tensors[p + "attention.self.%s.weight" % n] = normal(H, H)
            tensors[p + "attention.self.%s.bias" % n] = normal(H)
        tensors[p + "attention.output.dense.weight"] = normal(H, H)
        tensors[p + "attention.output.dense.bias"] = normal(H)
        tensors[p + "attention.output.LayerNorm.weight"] = np.ones(H, np.float32)
        tensors[p + "attention.output.LayerNorm.bias"] = np.zeros(H, np.float32)
        tensors[p + "intermediate.dense.weight"] = normal(FF, H)
        tensors[p + "intermediate.dense.bias"] = normal(FF)
        tensors[p + "output.dense.weight"] = normal(H, FF)
        tensors[p + "output.dense.bias"] = normal(H)
        tensors[p + "output.LayerNorm.weight"] = np.ones(H, np.float32)
        tensors[p + "output.LayerNorm.bias"] = np.zeros(H, np.float32)

    header, off = {"__metadata__": {"format": "pt"}}, 0
    for k, v in tensors.items():
        header[k] = {"dtype": "F32", "shape": list(v.shape),
                     "data_offsets": [off, off + v.nbytes]}
        off += v.nbytes
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for v in tensors.values():
            f.write(v.tobytes())

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    half = (V - len(specials)) // 2
    vocab = specials + ["w%d" % i for i in range(5, 5 + half)]
    vocab += ["##p%d" % i for i in range(V - len(vocab))]
    assert len(vocab) == V
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    cfg = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": V,
           "hidden_size": H, "num_hidden_layers": L, "num_attention_heads": NH,
           "intermediate_size": FF, "max_position_embeddings": P,
           "type_vocab_size": T, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
           "position_embedding_type": "absolute", "pad_token_id": 0}
    files = {
        "config.json": cfg,
        "tokenizer_config.json": {"do_lower_case": True, "model_max_length": 256,
                                  "tokenizer_class": "BertTokenizer"},
        "sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": False},
        "modules.json": [
            {"idx": 0, "name": "0", "path": "",
             "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize",
             "type": "sentence_transformers.models.Normalize"}],
        "1_Pooling/config.json": {"word_embedding_dimension": H,
                                  "pooling_mode_cls_token": False,
                                  "pooling_mode_mean_tokens": True,
                                  "pooling_mode_max_tokens": False,
                                  "pooling_mode_mean_sqrt_len_tokens": False},
    }
    for name, obj in files.items():
        with open(os.path.join(out, name), "w") as f:
            json.dump(obj, f, indent=2)
    print("wrote %s (%.1f MB of weights)" % (out, off / 1e6))


if __name__ == "__main__":
    main()
