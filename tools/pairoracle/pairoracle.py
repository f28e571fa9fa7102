"""PyTorch oracle for spladapt's pretraining objective with the sentence-pair
task (nn/pairhead.go, pretrain.pair_task nsp).

Plain torch (Debian's python3-torch 1.13) and numpy, float64; the encoder,
the safetensors writer and the vocabulary are tools/ceoracle's. The model is
HuggingFace's BertForPreTraining written out functionally over its HF
parameter names:

  h     = encoder([CLS] A [SEP] B [SEP])            (B,T,C) token types 0…0 1…1
  MLM:  z = LN(gelu(h[m] W_t^T + b_t))               cls.predictions.transform
        logits = z W_word^T + b_dec                  tied decoder, cls.predictions.bias
        mlm = mean over labelled positions of CE(logits, label)
  pair: p = tanh(h[:,0] W_pool^T + b_pool)           bert.pooler.dense
        y = p W_rel^T + b_rel                        (B,2) cls.seq_relationship
        pair = mean_b CE(y_b, next_b)                next 0 = B follows A, 1 = random
  loss  = mlm + w * pair

Usage (writes CASE/model and CASE/golden):
  python3 pairoracle.py --case nsp-bert --seed 21 --weight 0.5 --out DIR
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in tools/ceoracle
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ceoracle"))
import ceoracle as ce  # noqa: E402

torch.set_default_dtype(torch.float64)


def pretraining_params(c, seed):
    """The cross-encoder's perturbed BERT + pooler, with the MLM head and seq_relationship instead of classifier.*."""
    ps = {n: t for n, t in ce.init_params(c, seed).items() if not n.startswith("classifier.")}
    g = torch.Generator().manual_seed(seed + 7)
    C, V = c["hidden"], c["vocab"]
    r = lambda *shape: torch.randn(shape, generator=g, dtype=torch.float32)
    ps["cls.predictions.bias"] = 0.05 * r(V)
    ps["cls.predictions.transform.dense.weight"] = 0.2 * r(C, C)
    ps["cls.predictions.transform.dense.bias"] = 0.05 * r(C)
    ps["cls.predictions.transform.LayerNorm.weight"] = 1 + 0.1 * r(C)
    ps["cls.predictions.transform.LayerNorm.bias"] = 0.1 * r(C)
    ps["cls.seq_relationship.weight"] = 0.3 * r(2, C)
    ps["cls.seq_relationship.bias"] = 0.1 * r(2)
    return ps


def objective(c, ps, ids, types, mask, labels, nxt, w):
    net = ce.Net(c, dict(ps, **{"classifier.weight": None, "classifier.bias": None}))
    x = net.embed(ids, types, 0)
    for l in range(c["layers"]):
        x = net.layer(l, x, x, mask)
    sel = labels.reshape(-1) != -100
    hm = x.reshape(-1, c["hidden"])[sel]
    z = ce.gelu(hm @ ps["cls.predictions.transform.dense.weight"].T + ps["cls.predictions.transform.dense.bias"])
    z = ce.layer_norm(z, ps["cls.predictions.transform.LayerNorm.weight"], ps["cls.predictions.transform.LayerNorm.bias"])
    logits = z @ ps["bert.embeddings.word_embeddings.weight"].T + ps["cls.predictions.bias"]
    mlm = torch.nn.functional.cross_entropy(logits, labels.reshape(-1)[sel])
    p = torch.tanh(x[:, 0] @ ps["bert.pooler.dense.weight"].T + ps["bert.pooler.dense.bias"])
    y = p @ ps["cls.seq_relationship.weight"].T + ps["cls.seq_relationship.bias"]
    pair = torch.nn.functional.cross_entropy(y, nxt)
    return mlm, pair, y, mlm + w * pair


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--ff", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=50)
    ap.add_argument("--maxpos", type=int, default=40)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--weight", type=float, default=0.5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    c = {"arch": "bert", "layers": a.layers, "hidden": a.hidden, "heads": a.heads, "ff": a.ff, "vocab": a.vocab,
         "maxpos": a.maxpos}
    ps32 = pretraining_params(c, a.seed)
    case = os.path.join(a.out, a.case)
    ce.write_model(os.path.join(case, "model"), c, ps32)
    with open(os.path.join(case, "model", "config.json")) as f:
        cfg = json.load(f)
    cfg["architectures"] = ["BertForPreTraining"]
    del cfg["id2label"], cfg["label2id"]
    with open(os.path.join(case, "model", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")

    g = torch.Generator().manual_seed(a.seed + 1000)
    B, T = 6, 16
    ids = torch.zeros(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b in range(B):
        na = int(torch.randint(1, 6, (1,), generator=g))
        nb = T - 3 - na if b == 0 else int(torch.randint(1, T - 3 - na + 1, (1,), generator=g))  # row 0 unpadded
        seq = [ce.CLS] + ce.rand_ids(g, na, a.vocab) + [ce.SEP] + ce.rand_ids(g, nb, a.vocab) + [ce.SEP]
        ids[b, :len(seq)] = torch.tensor(seq)
        types[b, na + 2:len(seq)] = 1
        mask[b, :len(seq)] = 1
        for t, tok in enumerate(seq):
            if tok > ce.MASK and torch.rand(1, generator=g).item() < 0.3:
                labels[b, t] = int(torch.randint(0, a.vocab, (1,), generator=g))
    nxt = torch.tensor([b % 2 for b in range(B)], dtype=torch.long)

    ps = {n: t.to(torch.float64).requires_grad_(True) for n, t in ps32.items()}
    mlm, pair, y, loss = objective(c, ps, ids, types, mask, labels, nxt, a.weight)
    leaves = list(ps.values())
    gs = torch.autograd.grad(loss, leaves)
    gold = os.path.join(case, "golden")
    os.makedirs(gold, exist_ok=True)
    ce.save_safetensors(os.path.join(gold, "grads.safetensors"),
                        {n: gr.numpy().astype(np.float32) for n, gr in zip(ps, gs)})
    ce.save_safetensors(os.path.join(gold, "inputs.safetensors"),
                        {"input_ids": ids.numpy(), "token_type_ids": types.numpy(), "attention_mask": mask.numpy(),
                         "labels": labels.numpy(), "next_sentence_label": nxt.numpy()})
    ce.save_safetensors(os.path.join(gold, "scores.safetensors"), {"pair_logits": y.detach().numpy()})
    with open(os.path.join(gold, "case.json"), "w") as f:
        json.dump({"config": c, "pair_weight": a.weight, "mlm_loss": mlm.item(), "pair_loss": pair.item(),
                   "loss": loss.item()}, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
