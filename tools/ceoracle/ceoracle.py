"""PyTorch oracle for spladapt's cross-encoders and MICE (nn/classifier.go, nn/mice.go).

Plain torch (Debian's python3-torch 1.13) and numpy; no transformers, no
safetensors package. The model is HuggingFace's BertForSequenceClassification /
DistilBertForSequenceClassification with one label, written out functionally
over a dict of parameters under their HF names, in float64:

  h    = encoder([CLS] q [SEP] d [SEP])          (B,T,C) post-LN BERT layers
  BERT:       p = tanh(h[:,0] W_pool^T + b_pool)          bert.pooler.dense
  DistilBERT: p = relu(h[:,0] W_pre^T + b_pre)            pre_classifier
  s    = p w_cls^T + b_cls                        (B)     classifier

MICE (Vast, Morand et al., arXiv:2602.16299): query segment [CLS] q [SEP]
padded to Tq (positions 0..Tq-1, type 0), document segment d [SEP] padded to
Td (positions Tq..Tq+Td-1, type 1, so that its states do not depend on the
query). Layers 0..f-1 encode each segment alone (mid-fusion); then only the
layers listed in `interact` run (layer dropping), each either full (every
token of [q; d] attends to every real token and is updated) or light (only
query tokens are updated; they attend to the query and to the document states,
which stay as they were after layer f-1). The score is the head on the first
query token.

Usage (writes CASE/model and CASE/golden):
  python3 ceoracle.py --case ce-bert --arch bert --heads 2 --seed 11 --out DIR
  python3 ceoracle.py --case mice-bert --arch bert --mice --seed 13 --out DIR
"""

import argparse
import json
import math
import os
import struct

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


# ---------------------------------------------------------------- safetensors


def save_safetensors(path, tensors, metadata=None):
    """Minimal writer: dict name -> numpy array (f4, f8 or i8), row-major."""
    dt = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64"}
    header, off, bufs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"))
        b = a.tobytes()
        header[name] = {"dtype": dt[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        bufs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in bufs:
            f.write(b)


# ---------------------------------------------------------------- the model


def names(arch, L):
    """HF parameter names in model order, with their roles."""
    out = []
    if arch == "bert":
        pre = "bert."
        out += [(pre + "embeddings.word_embeddings.weight", "wte"), (pre + "embeddings.position_embeddings.weight", "wpe"),
                (pre + "embeddings.token_type_embeddings.weight", "wtt"),
                (pre + "embeddings.LayerNorm.weight", "eln.w"), (pre + "embeddings.LayerNorm.bias", "eln.b")]
        for l in range(L):
            p = "bert.encoder.layer.%d." % l
            for role, n in [("q", "attention.self.query"), ("k", "attention.self.key"), ("v", "attention.self.value"),
                            ("o", "attention.output.dense"), ("ln1", "attention.output.LayerNorm"),
                            ("f1", "intermediate.dense"), ("f2", "output.dense"), ("ln2", "output.LayerNorm")]:
                out += [(p + n + ".weight", "%d.%s.w" % (l, role)), (p + n + ".bias", "%d.%s.b" % (l, role))]
        out += [("bert.pooler.dense.weight", "pool.w"), ("bert.pooler.dense.bias", "pool.b")]
    else:
        pre = "distilbert."
        out += [(pre + "embeddings.word_embeddings.weight", "wte"), (pre + "embeddings.position_embeddings.weight", "wpe"),
                (pre + "embeddings.LayerNorm.weight", "eln.w"), (pre + "embeddings.LayerNorm.bias", "eln.b")]
        for l in range(L):
            p = "distilbert.transformer.layer.%d." % l
            for role, n in [("q", "attention.q_lin"), ("k", "attention.k_lin"), ("v", "attention.v_lin"),
                            ("o", "attention.out_lin"), ("ln1", "sa_layer_norm"),
                            ("f1", "ffn.lin1"), ("f2", "ffn.lin2"), ("ln2", "output_layer_norm")]:
                out += [(p + n + ".weight", "%d.%s.w" % (l, role)), (p + n + ".bias", "%d.%s.b" % (l, role))]
        out += [("pre_classifier.weight", "pool.w"), ("pre_classifier.bias", "pool.b")]
    out += [("classifier.weight", "cls.w"), ("classifier.bias", "cls.b")]
    return out


def shape_of(role, c):
    C, F, V, P = c["hidden"], c["ff"], c["vocab"], c["maxpos"]
    if role == "wte":
        return (V, C)
    if role == "wpe":
        return (P, C)
    if role == "wtt":
        return (2, C)
    if role == "cls.w":
        return (1, C)
    if role == "cls.b":
        return (1,)
    kind, wb = role.split(".")[-2], role.split(".")[-1]
    if kind == "f1":
        return (F, C) if wb == "w" else (F,)
    if kind == "f2":
        return (C, F) if wb == "w" else (C,)
    if kind in ("eln", "ln1", "ln2"):
        return (C,)
    return (C, C) if wb == "w" else (C,)


def init_params(c, seed):
    """Perturbed init (every bias and LayerNorm term random, so a dropped term shows), float32-rounded."""
    g = torch.Generator().manual_seed(seed)
    ps = {}
    for name, role in names(c["arch"], c["layers"]):
        z = torch.randn(shape_of(role, c), generator=g, dtype=torch.float32)
        if role.endswith("ln1.w") or role.endswith("ln2.w") or role == "eln.w":
            v = 1 + 0.1 * z
        elif role.endswith("ln1.b") or role.endswith("ln2.b") or role == "eln.b":
            v = 0.1 * z
        elif role.endswith((".q.w", ".k.w")):
            v = 0.1 * z
        elif role in ("pool.w", "cls.w"):
            v = 0.2 * z
        else:
            v = 0.05 * z
        ps[name] = v
    return ps


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-12) * w + b


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


class Net:
    def __init__(self, c, tensors):
        self.c = c
        self.p = {}
        for name, role in names(c["arch"], c["layers"]):
            self.p[role] = tensors[name]

    def embed(self, ids, types, pos0):
        P = self.p
        T = ids.shape[1]
        e = P["wte"][ids] + P["wpe"][torch.arange(pos0, pos0 + T)][None]
        if self.c["arch"] == "bert":
            e = e + P["wtt"][types]
        return layer_norm(e, P["eln.w"], P["eln.b"])

    def layer(self, l, xu, xkv, kmask):
        """Layer l: rows xu (B,U,C) are updated, attending to xkv (B,K,C) with key mask kmask (B,K)."""
        P, NH = self.p, self.c["heads"]
        B, U, C = xu.shape
        K = xkv.shape[1]
        HS = C // NH
        lin = lambda x, r: x @ P["%d.%s.w" % (l, r)].T + P["%d.%s.b" % (l, r)]
        q = lin(xu, "q").view(B, U, NH, HS).transpose(1, 2)
        k = lin(xkv, "k").view(B, K, NH, HS).transpose(1, 2)
        v = lin(xkv, "v").view(B, K, NH, HS).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(HS)
        s = s.masked_fill((kmask == 0)[:, None, None, :], torch.finfo(s.dtype).min)
        ctx = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, U, C)
        a = layer_norm(lin(ctx, "o") + xu, P["%d.ln1.w" % l], P["%d.ln1.b" % l])
        f = lin(gelu(lin(a, "f1")), "f2")
        return layer_norm(f + a, P["%d.ln2.w" % l], P["%d.ln2.b" % l])

    def head(self, x):
        P = self.p
        pre = x @ P["pool.w"].T + P["pool.b"]
        p = torch.tanh(pre) if self.c["arch"] == "bert" else torch.relu(pre)
        return (p @ P["cls.w"].T + P["cls.b"])[:, 0]

    def score(self, ids, types, mask):
        x = self.embed(ids, types, 0)
        for l in range(self.c["layers"]):
            x = self.layer(l, x, x, mask)
        return self.head(x[:, 0])

    def mice(self, qids, qmask, dids, dmask, fusion, interact, light):
        Tq = qids.shape[1]
        xq = self.embed(qids, torch.zeros_like(qids), 0)
        xd = self.embed(dids, torch.ones_like(dids), Tq)
        for l in range(fusion):
            xq = self.layer(l, xq, xq, qmask)
            xd = self.layer(l, xd, xd, dmask)
        m = torch.cat([qmask, dmask], 1)
        for l in interact:
            x = torch.cat([xq, xd], 1)
            if light:
                xq = self.layer(l, xq, x, m)
            else:
                x = self.layer(l, x, x, m)
                xq, xd = x[:, :Tq], x[:, Tq:]
        return self.head(xq[:, 0])


# ---------------------------------------------------------------- losses on scores


def rerank_losses(s, G, NNeg, labels, teacher):
    """s (G*(1+NNeg)) in groups [pos, neg_1..neg_NNeg] per query."""
    grp = s.view(G, 1 + NNeg)
    pointwise = torch.nn.functional.binary_cross_entropy_with_logits(s, labels)
    margins = grp[:, :1] - grp[:, 1:]
    marginmse = ((margins.reshape(-1) - teacher) ** 2).mean()
    infonce = (torch.logsumexp(grp, 1) - grp[:, 0]).mean()
    return {"pointwise": pointwise, "marginmse": marginmse, "infonce": infonce}


# ---------------------------------------------------------------- case files


def vocab(V):
    words = "the of and to in is it that was for on are with as be at by this had not have from or one what".split()
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    i = 0
    while len(toks) < V:
        toks.append("[unused%d]" % i)
        i += 1
    return toks[:V]


def hf_config(c):
    if c["arch"] == "bert":
        return {"architectures": ["BertForSequenceClassification"], "attention_probs_dropout_prob": 0.1,
                "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": c["hidden"],
                "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}, "initializer_range": 0.02,
                "intermediate_size": c["ff"], "layer_norm_eps": 1e-12, "max_position_embeddings": c["maxpos"],
                "model_type": "bert", "num_attention_heads": c["heads"], "num_hidden_layers": c["layers"],
                "pad_token_id": 0, "position_embedding_type": "absolute", "type_vocab_size": 2,
                "vocab_size": c["vocab"]}
    return {"architectures": ["DistilBertForSequenceClassification"], "activation": "gelu", "attention_dropout": 0.1,
            "dim": c["hidden"], "dropout": 0.1, "hidden_dim": c["ff"], "id2label": {"0": "LABEL_0"},
            "label2id": {"LABEL_0": 0}, "initializer_range": 0.02, "max_position_embeddings": c["maxpos"],
            "model_type": "distilbert", "n_heads": c["heads"], "n_layers": c["layers"], "pad_token_id": 0,
            "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False, "vocab_size": c["vocab"]}


def write_model(dirpath, c, ps):
    os.makedirs(dirpath, exist_ok=True)
    with open(os.path.join(dirpath, "config.json"), "w") as f:
        json.dump(hf_config(c), f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(dirpath, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab(c["vocab"])) + "\n")
    save_safetensors(os.path.join(dirpath, "model.safetensors"), {n: t.numpy() for n, t in ps.items()}, {"format": "pt"})


def rand_ids(g, n, V):
    return torch.randint(5, V, (n,), generator=g).tolist()


def grads(ps, loss):
    leaves = list(ps.values())
    gs = torch.autograd.grad(loss, leaves, allow_unused=True)
    return {n: (g if g is not None else torch.zeros_like(t)).numpy().astype(np.float32) for (n, t), g in zip(ps.items(), gs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True)
    ap.add_argument("--arch", default="bert", choices=["bert", "distilbert"])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ff", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=50)
    ap.add_argument("--maxpos", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mice", action="store_true", help="MICE variants instead of the cross-encoder")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    c = {"arch": a.arch, "layers": a.layers, "hidden": a.hidden, "heads": a.heads, "ff": a.ff, "vocab": a.vocab,
         "maxpos": a.maxpos}
    g = torch.Generator().manual_seed(a.seed + 1000)
    ps32 = init_params(c, a.seed)
    case = os.path.join(a.out, a.case)
    write_model(os.path.join(case, "model"), c, ps32)
    gold = os.path.join(case, "golden")
    os.makedirs(gold, exist_ok=True)
    ps = {n: t.to(torch.float64).requires_grad_(True) for n, t in ps32.items()}
    net = Net(c, ps)
    G, NNeg = 2, 2
    B = G * (1 + NNeg)
    inputs, out, meta = {}, {}, {"config": c, "groups": G, "negatives": NNeg}
    r = torch.randn(B, generator=g)
    labels = torch.tensor([1.0 if i % (1 + NNeg) == 0 else 0.0 for i in range(B)])
    teacher = torch.randn(G * NNeg, generator=g)
    inputs.update({"r": r.numpy(), "labels": labels.numpy(), "teacher": teacher.numpy()})
    if not a.mice:
        T = 16
        ids = torch.zeros(B, T, dtype=torch.long)
        types = torch.zeros(B, T, dtype=torch.long)
        mask = torch.zeros(B, T, dtype=torch.long)
        for b in range(B):
            nq = int(torch.randint(1, 5, (1,), generator=g))
            nd = int(torch.randint(1, T - 3 - nq + 1, (1,), generator=g)) if b else T - 3 - nq  # row 0 unpadded
            seq = [CLS] + rand_ids(g, nq, a.vocab) + [SEP] + rand_ids(g, nd, a.vocab) + [SEP]
            ids[b, :len(seq)] = torch.tensor(seq)
            types[b, nq + 2:len(seq)] = 1
            mask[b, :len(seq)] = 1
        inputs.update({"input_ids": ids.numpy(), "token_type_ids": types.numpy(), "attention_mask": mask.numpy()})
        s = net.score(ids, types, mask)
        out["scores"] = s.detach().numpy()
        gr = grads(ps, (s * r).sum())
        save_safetensors(os.path.join(gold, "grads.safetensors"), gr)
        s = net.score(ids, types, mask)
        losses = rerank_losses(s, G, NNeg, labels, teacher)
        meta["losses"] = {}
        for k, v in losses.items():
            ds = torch.autograd.grad(v, s, retain_graph=True)[0]
            meta["losses"][k] = {"value": v.item(), "dscores": ds.tolist()}
    else:
        Tq, Td = 6, 10
        qids = torch.zeros(B, Tq, dtype=torch.long)
        qmask = torch.zeros(B, Tq, dtype=torch.long)
        dids = torch.zeros(B, Td, dtype=torch.long)
        dmask = torch.zeros(B, Td, dtype=torch.long)
        for b in range(B):
            nq = int(torch.randint(1, Tq - 1, (1,), generator=g)) if b else Tq - 2
            nd = int(torch.randint(1, Td, (1,), generator=g)) if b else Td - 1
            qs = [CLS] + rand_ids(g, nq, a.vocab) + [SEP]
            ds_ = rand_ids(g, nd, a.vocab) + [SEP]
            qids[b, :len(qs)], qmask[b, :len(qs)] = torch.tensor(qs), 1
            dids[b, :len(ds_)], dmask[b, :len(ds_)] = torch.tensor(ds_), 1
        inputs.update({"query_ids": qids.numpy(), "query_mask": qmask.numpy(), "doc_ids": dids.numpy(),
                       "doc_mask": dmask.numpy()})
        L = a.layers
        variants = {
            "full": (0, list(range(L)), False),
            "midfusion": (1, list(range(1, L)), False),
            "light": (1, list(range(1, L)), True),
            "light-drop": (1, [L - 1], True),
        }
        meta["variants"] = {}
        for name, (f, inter, light) in variants.items():
            s = net.mice(qids, qmask, dids, dmask, f, inter, light)
            out["scores." + name] = s.detach().numpy()
            gr = grads(ps, (s * r).sum())
            save_safetensors(os.path.join(gold, "grads.%s.safetensors" % name), gr)
            meta["variants"][name] = {"fusion": f, "interact": inter, "light": light}
    save_safetensors(os.path.join(gold, "inputs.safetensors"),
                     {k: (v.astype(np.int64) if v.dtype.kind == "i" else v.astype(np.float64)) for k, v in inputs.items()})
    save_safetensors(os.path.join(gold, "scores.safetensors"), {k: v.astype(np.float64) for k, v in out.items()})
    with open(os.path.join(gold, "case.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
