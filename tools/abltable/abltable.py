#!/usr/bin/env python3
"""The tables of issue 14's ablations (docs/experiments.md, "Ablations of
the adaptation method"), from the runs' own files: each eval-T stage's
report.json (means, Δ against zero-shot, paired t test p and Holm-adjusted
p) and meta.json (held-out perplexities), and the JSON of
"spladapt adapt drift --json" (CKA and cosine per hidden state).

    python3 tools/abltable/abltable.py drift  STUDYRUN DRIFTDIR
    python3 tools/abltable/abltable.py length TARGET... --run STEPS=RUNDIR... --drift DRIFTDIR
    python3 tools/abltable/abltable.py k      TARGET... --run K=RUNDIR... --drift DRIFTDIR

DRIFTDIR holds <label>-<target>-<text>.json files (label "study", a step
count or "k<K>"; text "source" or "target"). Vocabulary shift figures are
tools/vocabshift's, copied from docs/experiments.md (VOCAB below).
"""
import json
import os
import sys

# tools/vocabshift on the recipe's tokenizer (docs/experiments.md):
# share of word occurrences cut into >= 3 pieces, unseen in the source
# (occurrences), unseen (distinct words), in %.
VOCAB = {
    "adi": (2.5, 3.8, 8.9), "cacm": (2.7, 3.9, 26.0), "cisi": (1.9, 2.6, 21.5),
    "climate-fever-evidence": (2.2, 2.4, 20.3), "cranfield": (3.4, 3.9, 25.6),
    "lisa": (2.7, 3.5, 36.1), "med": (7.0, 8.1, 43.4), "npl": (4.4, 5.1, 39.8),
    "scifact": (7.3, 8.9, 60.1),
}
NINE = ["adi", "cacm", "cisi", "climate-fever-evidence", "cranfield", "lisa", "med", "npl", "scifact"]


def load(path):
    with open(path) as f:
        return json.load(f)


def evaluation(run, t):
    """Means, Δ and tests of adapted against zero-shot, and perplexities."""
    rep = load(os.path.join(run, "eval-" + t, "report", "report.json"))
    meta = load(os.path.join(run, "eval-" + t, "meta.json"))
    out = {"ppl": meta["notes"].get("perplexity", {})}
    runs = rep["runs"]
    for m in rep["measures"]:
        d = next(d for d in m["deltas"] if d["run"] == "adapted")
        out[m["measure"]] = {"zs": m["means"][runs.index("zero-shot")], "ad": m["means"][runs.index("adapted")],
                             "bm25": m["means"][runs.index("bm25")] if "bm25" in runs else None,
                             "delta": d["delta"], "p": d["p"], "p_holm": d["p_holm"]}
    return out


def drift(ddir, label, t, text):
    p = os.path.join(ddir, "%s-%s-%s.json" % (label, t, text))
    if not os.path.exists(p):
        return None
    return load(p)["layers"]


def f3(x):
    return ("%+.3f" % x).replace("-", "−") if x is not None else "–"


def p2(x):
    return "%.2f" % x


def cka(layers, i):
    return "%.4f" % layers[i]["cka"] if layers else "–"


def drift_table(run, ddir):
    print("| target | ≥ 3 pieces | unseen (occ.) | Δ nDCG@10 (p Holm) | Δ R@100 (p Holm) | perplexity drop | "
          "CKA emb / L0 / L1 (source text) | cosine emb / L0 / L1 (source text) | CKA emb / L0 / L1 (target text) |")
    print("|---|---:|---:|---:|---:|---:|---|---|---|")
    rows = []
    for t in NINE:
        e = evaluation(run, t)
        s, tg = drift(ddir, "study", t, "source"), drift(ddir, "study", t, "target")
        drop = 1 - e["ppl"]["target-mlm"] / e["ppl"]["source-mlm"]
        rows.append((t, e, s, tg, drop))
        print("| %s | %.1f %% | %.1f %% | %s (%s) | %s (%s) | %.0f %% | %s | %s | %s |" % (
            t, VOCAB[t][0], VOCAB[t][1], f3(e["nDCG@10"]["delta"]), p2(e["nDCG@10"]["p_holm"]),
            f3(e["R@100"]["delta"]), p2(e["R@100"]["p_holm"]), 100 * drop,
            " / ".join(cka(s, i) for i in range(3)), " / ".join("%.4f" % s[i]["cosine"] for i in range(3)),
            " / ".join(cka(tg, i) for i in range(3))))
    # Spearman rank correlations over the nine targets.
    def ranks(xs):
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        r = [0.0] * len(xs)
        i = 0
        while i < len(xs):
            j = i
            while j + 1 < len(xs) and xs[order[j + 1]] == xs[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    def spearman(a, b):
        ra, rb = ranks(a), ranks(b)
        ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
        num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
        den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
        return num / den
    dn = [r[1]["nDCG@10"]["delta"] for r in rows]
    print()
    print("Spearman ρ over the nine targets, against Δ nDCG@10:")
    for name, xs in [("≥ 3 pieces", [VOCAB[r[0]][0] for r in rows]), ("unseen (occurrences)", [VOCAB[r[0]][1] for r in rows]),
                     ("perplexity drop", [r[4] for r in rows])] + \
            [("1 − CKA at %s, source text" % n, [1 - r[2][i]["cka"] for r in rows]) for i, n in enumerate(["embeddings", "layer 0", "layer 1"])] + \
            [("1 − CKA at %s, target text" % n, [1 - r[3][i]["cka"] for r in rows]) for i, n in enumerate(["embeddings", "layer 0", "layer 1"])]:
        print("- %s: %s" % (name, ("%+.2f" % spearman(xs, dn)).replace("-", "−")))


def ablation_table(targets, runs, ddir, what):
    print("| target | %s | zero-shot nDCG@10 | adapted | Δ (p, p Holm) | zero-shot R@100 | adapted | Δ (p, p Holm) | "
          "perplexity P_domain(source) → P_domain(target) | CKA emb / L0 / L1 (source text) |" % what)
    print("|---|---|---:|---:|---|---:|---:|---|---|---|")
    means = {}
    for t in targets:
        for label, run in runs:
            if not os.path.exists(os.path.join(run, "eval-" + t, "meta.json")):
                print("| %s | %s | (not finished) |||||||" % (t, label))
                continue
            e = evaluation(run, t)
            n, r = e["nDCG@10"], e["R@100"]
            means.setdefault(label, []).append((n["zs"], n["ad"], n["delta"], r["zs"], r["ad"], r["delta"]))
            s = drift(ddir, label, t, "source")
            print("| %s | %s | %.3f | %.3f | %s (%s, %s) | %.3f | %.3f | %s (%s, %s) | %.0f → %.0f | %s |" % (
                t, label, n["zs"], n["ad"], f3(n["delta"]), p2(n["p"]), p2(n["p_holm"]),
                r["zs"], r["ad"], f3(r["delta"]), p2(r["p"]), p2(r["p_holm"]),
                e["ppl"]["source-mlm"], e["ppl"]["target-mlm"], " / ".join(cka(s, i) for i in range(len(s))) if s else "–"))
    for label, _ in runs:
        rows = means.get(label, [])
        if len(rows) != len(targets):
            continue
        m = [sum(r[i] for r in rows) / len(rows) for i in range(6)]
        print("| **mean** | %s | %.3f | %.3f | %s | %.3f | %.3f | %s | | |" % (label, m[0], m[1], f3(m[2]), m[3], m[4], f3(m[5])))


def main(argv):
    if len(argv) >= 3 and argv[0] == "drift":
        drift_table(argv[1], argv[2])
        return
    if argv and argv[0] in ("length", "k"):
        targets, runs, ddir, i = [], [], None, 1
        while i < len(argv):
            if argv[i] == "--run":
                label, run = argv[i + 1].split("=", 1)
                runs.append((label, run))
                i += 2
            elif argv[i] == "--drift":
                ddir = argv[i + 1]
                i += 2
            else:
                targets.append(argv[i])
                i += 1
        ablation_table(targets, runs, ddir, "target-MLM steps" if argv[0] == "length" else "k")
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
