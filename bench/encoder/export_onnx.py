#!/usr/bin/python3
"""export_onnx.py MODEL_DIR OUT.onnx -- the ONNX Runtime peer's model: the
forward of torch_peer.py (same safetensors weights, same maths: embeddings +
LayerNorm, 6 layers of attention and exact-GELU feed-forward, mean pooling
over the mask, L2 normalisation) traced by torch.onnx.export (opset 14) with
dynamic batch and sequence axes.  Inputs input_ids, attention_mask (int64
[batch, seq]); output embeddings (float32 [batch, hidden]).  The weights
become the graph's initialisers, so the file is self-contained."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import Bert, make_ids  # noqa: E402


class Wrapped(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, ids, mask):
        return self.bert.forward(ids, mask)


def main():
    folder, out = sys.argv[1], sys.argv[2]
    model = Wrapped(Bert(folder)).eval()
    ids, mask = make_ids(2, 16)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, mask), out, opset_version=14,
            input_names=["input_ids", "attention_mask"], output_names=["embeddings"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                          "attention_mask": {0: "batch", 1: "seq"},
                          "embeddings": {0: "batch"}})
    print("wrote %s (%.1f MB)" % (out, os.path.getsize(out) / 1e6))


if __name__ == "__main__":
    main()
