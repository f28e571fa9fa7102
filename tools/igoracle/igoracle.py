"""PyTorch autograd oracle for spladapt's Integrated Gradients over FFN neurons.

For an HF-layout BERT / DistilBERT checkpoint (config.json +
model.safetensors; F32, F16 or BF16) it computes, in float64 with autograd:

  f(x)   = other · w(ids),  w = max_t log1p(relu(MLMlogits_t))  (SPLADE)
  path   = the attributed layers' FFN intermediate activations (after GELU)
           forced to alpha * a_l (zero baseline), everything downstream
           recomputed; forced layers do not depend on their input
  A[l,j] = sum_t a[l,t,j] * sum_k w_k df/dx[l,t,j](alpha_k)   (midpoint rule)

With --ref-steps N it also writes attr_ref, the same attributions at N
midpoint steps: a reference integral for the Go adaptive rule at 64 steps.

and writes the inputs and results as JSON, which neurons/oracle_test.go
compares with the Go implementation. No transformers / safetensors package
is needed.

    python3 tools/igoracle/igoracle.py testdata/oracle/bert-tiny/model \
        neurons/testdata/igoracle/bert-tiny.json --seed 1 --steps 64 --ref-steps 16384
"""

import argparse
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        buf = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = buf[a:b]
        dt = e["dtype"]
        if dt == "F32":
            v = np.frombuffer(raw, "<f4").astype(np.float64)
        elif dt == "F16":
            v = np.frombuffer(raw, "<f2").astype(np.float64)
        elif dt == "BF16":
            v = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        elif dt == "F64":
            v = np.frombuffer(raw, "<f8")
        else:
            continue
        out[name] = torch.tensor(v.reshape(e["shape"]), dtype=torch.float64)
    return out


def load(model_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    t = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    t = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): v for k, v in t.items()}
    return cfg, t


def encode(cfg, t, ids, forced):
    """Hidden states of ids (1,T); forced: layer -> (T,F) tensor or absent."""
    bert = cfg["model_type"] == "bert"
    T = len(ids)
    ids_t = torch.tensor(ids)
    if bert:
        p = "bert."
        eps = cfg.get("layer_norm_eps", 1e-12)
        H, L, NH = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
        e = t[p + "embeddings.word_embeddings.weight"][ids_t] + t[p + "embeddings.position_embeddings.weight"][:T] \
            + t[p + "embeddings.token_type_embeddings.weight"][0]
        x = F.layer_norm(e, (H,), t[p + "embeddings.LayerNorm.weight"], t[p + "embeddings.LayerNorm.bias"], eps)
    else:
        p = "distilbert."
        eps = 1e-12
        H, L, NH = cfg["dim"], cfg["n_layers"], cfg["n_heads"]
        e = t[p + "embeddings.word_embeddings.weight"][ids_t] + t[p + "embeddings.position_embeddings.weight"][:T]
        x = F.layer_norm(e, (H,), t[p + "embeddings.LayerNorm.weight"], t[p + "embeddings.LayerNorm.bias"], eps)
    hs = H // NH
    for l in range(L):
        if bert:
            q = "%sencoder.layer.%d." % (p, l)
            names = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                     "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"]
        else:
            q = "%stransformer.layer.%d." % (p, l)
            names = ["attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                     "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"]
        lin = lambda n, v: F.linear(v, t[q + n + ".weight"], t[q + n + ".bias"])
        Q = lin(names[0], x).view(T, NH, hs).transpose(0, 1)
        K = lin(names[1], x).view(T, NH, hs).transpose(0, 1)
        V = lin(names[2], x).view(T, NH, hs).transpose(0, 1)
        P = torch.softmax(Q @ K.transpose(1, 2) / math.sqrt(hs), dim=-1)
        ctx = (P @ V).transpose(0, 1).reshape(T, H)
        a = F.layer_norm(lin(names[3], ctx) + x, (H,), t[q + names[4] + ".weight"], t[q + names[4] + ".bias"], eps)
        g = F.gelu(lin(names[5], a))
        if l in forced:
            g = forced[l]
        x = F.layer_norm(lin(names[6], g) + a, (H,), t[q + names[7] + ".weight"], t[q + names[7] + ".bias"], eps)
        if l not in forced:
            forced.setdefault("clean", {})[l] = g.detach()
    return x


def splade(cfg, t, h):
    if cfg["model_type"] == "bert":
        eps = cfg.get("layer_norm_eps", 1e-12)
        z = F.layer_norm(F.gelu(F.linear(h, t["cls.predictions.transform.dense.weight"], t["cls.predictions.transform.dense.bias"])),
                         (h.shape[1],), t["cls.predictions.transform.LayerNorm.weight"], t["cls.predictions.transform.LayerNorm.bias"], eps)
        logits = F.linear(z, t["bert.embeddings.word_embeddings.weight"], t["cls.predictions.bias"])
    else:
        z = F.layer_norm(F.gelu(F.linear(h, t["vocab_transform.weight"], t["vocab_transform.bias"])),
                         (h.shape[1],), t["vocab_layer_norm.weight"], t["vocab_layer_norm.bias"], 1e-12)
        logits = F.linear(z, t["distilbert.embeddings.word_embeddings.weight"], t["vocab_projector.bias"])
    return torch.log1p(torch.relu(logits)).max(dim=0).values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--len", type=int, default=12)
    ap.add_argument("--ref-steps", type=int, default=0,
                    help="also write attr_ref: the attributions by the midpoint rule at this many steps (a reference integral)")
    args = ap.parse_args()
    cfg, t = load(args.model)
    Vsz = cfg["vocab_size"]
    L = cfg.get("num_hidden_layers", cfg.get("n_layers"))
    rng = np.random.default_rng(args.seed)
    ids = [2] + [int(i) for i in rng.integers(5, Vsz, args.len - 2)] + [3]
    other = np.zeros(Vsz)
    other[rng.integers(5, Vsz, 12)] = 0.5 + 1.5 * rng.random(12)
    other_t = torch.tensor(other)
    layers = list(range(L))

    clean_store = {}
    h = encode(cfg, t, ids, clean_store)
    clean = clean_store["clean"]
    score = float(other_t @ splade(cfg, t, h))
    base = float(other_t @ splade(cfg, t, encode(cfg, t, ids, {l: torch.zeros_like(clean[l]) for l in layers})))
    def midpoint(m):
        grads = {l: torch.zeros_like(clean[l]) for l in layers}
        for k in range(m):
            alpha = (k + 0.5) / m
            xs = {l: (alpha * clean[l]).clone().requires_grad_(True) for l in layers}
            f = other_t @ splade(cfg, t, encode(cfg, t, ids, dict(xs)))
            gs = torch.autograd.grad(f, [xs[l] for l in layers])
            for l, g in zip(layers, gs):
                grads[l] += g / m
        return {l: (clean[l] * grads[l]).sum(dim=0) for l in layers}

    m = args.steps
    attr = midpoint(m)
    # The gradient at one forced point (alpha = 0.6) for a direct check.
    xs = {l: (0.6 * clean[l]).clone().requires_grad_(True) for l in layers}
    f06 = other_t @ splade(cfg, t, encode(cfg, t, ids, dict(xs)))
    g06 = torch.autograd.grad(f06, [xs[l] for l in layers])
    out = {
        "model": os.path.relpath(args.model),
        "ids": ids,
        "other": [float(v) for v in other],
        "layers": layers,
        "steps": m,
        "rule": "midpoint",
        "score": score,
        "baseline_score": base,
        "attr": [[float(v) for v in attr[l]] for l in layers],
        "attribution_sum": float(sum(attr[l].sum() for l in layers)),
        "f_at_0.6": float(f06),
        "grad_at_0.6": [[float(v) for v in g.flatten()] for g in g06],
        "torch": torch.__version__,
    }
    if args.ref_steps:
        ref = midpoint(args.ref_steps)
        out["ref_steps"] = args.ref_steps
        out["attr_ref"] = [[float(v) for v in ref[l]] for l in layers]
        out["attribution_sum_ref"] = float(sum(ref[l].sum() for l in layers))
    with open(args.out, "w") as fh:
        json.dump(out, fh)
        fh.write("\n")
    print("%s: score %.6f baseline %.6f sum %.6f ref sum %s" % (args.out, score, base, out["attribution_sum"], out.get("attribution_sum_ref")))


if __name__ == "__main__":
    main()
