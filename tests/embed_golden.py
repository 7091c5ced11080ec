"""Reference vectors for tests/embed_model.rs, computed independently of samplemix.

- transformer: a numpy implementation of BERT's forward pass (written from the BERT paper's
  equations and Hugging Face's weight names, float64), sentence-transformers' mean or CLS
  pooling and normalisation; tokenised by the `tokenizers` Python package with the model's
  tokenizer.json, truncated to sentence_bert_config.json's max_seq_length.
- static: the `model2vec` package's own `StaticModel.encode` on a static model directory
  (normalised here, as samplemix always normalises).

Usage: python3 tests/embed_golden.py MODEL_DIR TEXTS_JSON OUT_JSON [STATIC_DIR]
TEXTS_JSON: a JSON list of strings. OUT_JSON gets {"transformer": [[...]], "static": [[...]]}.
"""
import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def bert(model_dir, texts):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
    g = lambda k: w[prefix + k]
    window = cfg["max_position_embeddings"]
    sbert = os.path.join(model_dir, "sentence_bert_config.json")
    if os.path.exists(sbert):
        window = min(window, json.load(open(sbert))["max_seq_length"])
    pooling = "mean"
    pool_cfg = os.path.join(model_dir, "1_Pooling", "config.json")
    if os.path.exists(pool_cfg) and json.load(open(pool_cfg)).get("pooling_mode_cls_token"):
        pooling = "cls"
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(window)
    heads, eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]
    out = []
    for text in texts:
        ids = np.array(tok.encode(text).ids)
        n = len(ids)
        x = g("embeddings.word_embeddings.weight")[ids] + g("embeddings.position_embeddings.weight")[:n] \
            + g("embeddings.token_type_embeddings.weight")[0]
        x = layer_norm(x, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
        d = x.shape[1]
        hd = d // heads
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            lin = lambda h, name: h @ g(p + name + ".weight").T + g(p + name + ".bias")
            q = lin(x, "attention.self.query").reshape(n, heads, hd).transpose(1, 0, 2)
            k = lin(x, "attention.self.key").reshape(n, heads, hd).transpose(1, 0, 2)
            v = lin(x, "attention.self.value").reshape(n, heads, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(n, d)
            x = layer_norm(lin(a, "attention.output.dense") + x, g(p + "attention.output.LayerNorm.weight"),
                           g(p + "attention.output.LayerNorm.bias"), eps)
            h = gelu(lin(x, "intermediate.dense"))
            x = layer_norm(lin(h, "output.dense") + x, g(p + "output.LayerNorm.weight"),
                           g(p + "output.LayerNorm.bias"), eps)
        e = x.mean(0) if pooling == "mean" else x[0]
        out.append((e / np.linalg.norm(e)).tolist())
    return out


def static(model_dir, texts):
    from model2vec import StaticModel
    m = StaticModel.from_pretrained(model_dir)
    v = m.encode(texts, normalize=False).astype(np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return [(row / n).tolist() if n > 0 else None for row, n in zip(v, norms[:, 0])]


if __name__ == "__main__":
    model_dir, texts_path, out_path = sys.argv[1:4]
    texts = json.load(open(texts_path))
    result = {"transformer": bert(model_dir, texts)}
    if len(sys.argv) > 4:
        result["static"] = static(sys.argv[4], texts)
    json.dump(result, open(out_path, "w"))
