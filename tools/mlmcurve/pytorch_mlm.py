"""Train the oracle's BERT-tiny (L2 H128 A2 F512) with MLM on the sequences
written by mlmcurve (see main.go), with spladapt's schedule: AdamW
(decay 0.01, none on biases and LayerNorm), linear warm-up 50 steps then
linear decay, clipping at 1.0, batch 32, 15% masking 80/10/10. No dropout
(the oracle has none). Prints "step grad_norm loss" every 40 steps.

usage: /usr/bin/python3 pytorch_mlm.py SEQS.json STEPS LR
"""
import json, sys, math, torch
sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__import__("os").path.abspath(__file__)), "..", "..", "..", "shared", "tools", "oracle"))
import oracle
torch.manual_seed(0); torch.set_num_threads(1)
d = json.load(open(sys.argv[1])); seqs = torch.tensor(d["seqs"]); V = d["vocab"]; MASK = d["mask"]
cfg = oracle.ModelConfig(arch="bert", vocab_size=V, hidden_size=128, num_layers=2, num_heads=2, intermediate_size=512)
m = oracle.BertForMaskedLM(cfg)
oracle.init_params(m, 1, mode="hf")
steps, lr, warm, B = int(sys.argv[2]), float(sys.argv[3]), 50, 32
decay = [p for n, p in m.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
nod = [p for n, p in m.named_parameters() if (n.endswith("bias") or "LayerNorm" in n)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": nod, "weight_decay": 0.0}], lr=lr, eps=1e-6)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / warm if s < warm else max(0.0, (steps - s) / (steps - warm)))
g = torch.Generator().manual_seed(1)
for step in range(steps):
    idx = torch.randint(0, len(seqs), (B,), generator=g)
    x = seqs[idx].clone(); labels = torch.full_like(x, -100)
    special = x < 5
    sel = (torch.rand(x.shape, generator=g) < 0.15) & ~special
    labels[sel] = x[sel]
    r = torch.rand(x.shape, generator=g)
    x[sel & (r < 0.8)] = MASK
    rnd = sel & (r >= 0.8) & (r < 0.9)
    x[rnd] = torch.randint(5, V, (int(rnd.sum()),), generator=g)
    _, logits = m(x, torch.ones_like(x))
    loss = torch.nn.functional.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=-100)
    opt.zero_grad(); loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step(); sched.step()
    if (step + 1) % 40 == 0:
        print(step + 1, round(float(gn), 3), round(float(loss), 4), flush=True)
