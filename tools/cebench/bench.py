#!/usr/bin/python3
"""PyTorch peer of nn's BenchmarkRerankDepth100 (cross-encoder): one query
re-ranking 100 documents, batches of 25 pairs of 16 query + 128 document
tokens (144, no padding inside the pair), a BERT cross-encoder of the
benchmark's shape with random weights (speed does not depend on them),
torch.nn.functional ops as HF's BertForSequenceClassification runs them,
inference_mode, 2 threads. Prints one JSON line per shape: the median of
--runs timed queries after one warm-up, as ms/query and pairs/s.

    /usr/bin/python3 tools/cebench/bench.py [--runs 5] [--threads 2]

Run it beside "go test ./nn -run '^$' -bench 'BenchmarkRerankDepth100/model=tiny/arch=cross-encoder'"
(docs/performance.md)."""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {"tiny": (128, 4, 4, 512), "medium": (384, 6, 12, 1536)}


def make(C, L, NH, FF, V=3000, P=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: 0.02 * torch.randn(*s, generator=g)
    p = {"wte": r(V, C), "wpe": r(P, C), "wtt": r(2, C), "eln": (torch.ones(C), torch.zeros(C)),
         "pool": (r(C, C), torch.zeros(C)), "cls": (r(1, C), torch.zeros(1)), "layers": []}
    for _ in range(L):
        p["layers"].append({k: (r(*s), torch.zeros(s[0])) for k, s in
                            (("q", (C, C)), ("k", (C, C)), ("v", (C, C)), ("o", (C, C)), ("f1", (FF, C)), ("f2", (C, FF)))}
                           | {"ln1": (torch.ones(C), torch.zeros(C)), "ln2": (torch.ones(C), torch.zeros(C))})
    return p


def score(p, NH, ids, types):
    B, T = ids.shape
    C = p["wte"].shape[1]
    HS = C // NH
    x = p["wte"][ids] + p["wpe"][:T][None] + p["wtt"][types]
    x = F.layer_norm(x, (C,), *p["eln"], 1e-12)
    for lp in p["layers"]:
        q = F.linear(x, *lp["q"]).view(B, T, NH, HS).transpose(1, 2)
        k = F.linear(x, *lp["k"]).view(B, T, NH, HS).transpose(1, 2)
        v = F.linear(x, *lp["v"]).view(B, T, NH, HS).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HS), -1) @ v
        a = F.linear(a.transpose(1, 2).reshape(B, T, C), *lp["o"])
        x = F.layer_norm(a + x, (C,), *lp["ln1"], 1e-12)
        f = F.linear(F.gelu(F.linear(x, *lp["f1"])), *lp["f2"])
        x = F.layer_norm(f + x, (C,), *lp["ln2"], 1e-12)
    pooled = torch.tanh(F.linear(x[:, 0], *p["pool"]))
    return F.linear(pooled, *p["cls"])[:, 0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", default="tiny")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    depth, batch, tq, td = 100, 25, 16, 128
    for name in a.shapes.split(","):
        C, L, NH, FF = SHAPES[name]
        p = make(C, L, NH, FF)
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(5, 3000, (depth, tq + td), generator=g)
        types = torch.cat([torch.zeros(depth, tq, dtype=torch.long), torch.ones(depth, td, dtype=torch.long)], 1)
        times = []
        with torch.inference_mode():
            for i in range(a.runs + 1):
                t0 = time.perf_counter()
                for lo in range(0, depth, batch):
                    score(p, NH, ids[lo:lo + batch], types[lo:lo + batch])
                if i > 0:
                    times.append(time.perf_counter() - t0)
        ms = 1000 * statistics.median(times)
        print(json.dumps({"shape": name, "C": C, "L": L, "heads": NH, "ff": FF, "torch": torch.__version__,
                          "threads": a.threads, "ms_per_query": round(ms, 1), "pairs_per_s": round(depth / ms * 1000, 1)}))


if __name__ == "__main__":
    main()
