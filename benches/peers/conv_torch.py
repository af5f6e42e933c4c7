#!/usr/bin/env python3
"""fisherflow's convolutional Fisher-Flow model (`train --arch conv`) in plain PyTorch (eager),
for a side-by-side of speed and sample quality on DNA.

The same model and recipe as fisherflow's:
  * data: a FASTA file over ACGT (`fisherflow data dna:... --out train.fa`), labels from the
    `class=C` headers when --conditional;
  * points x = sqrt(p) on the positive orthant of the unit sphere, one sphere per position;
    prior x0 = |z| / ||z||, z ~ N(0, I_4); t ~ U[0, 1) per sequence; geodesic interpolant and
    velocity in closed form (shared with fisherflow_torch.py);
  * field, over [B, L, C] with no flattening: time embedding SiLU(Linear([sin 2πωt, cos 2πωt]))
    with trainable ω ~ N(0, 4²) (half of --time-dim of them), plus a class embedding
    (classes + 1 rows, the last the null class) when conditioned; h = Linear(4 -> H)(x); per
    block i: h += Conv1d_i(GELU(LayerNorm(h) + Linear_i(emb))) with kernel --kernel, dilation
    2^(i mod 4), same padding; v = Linear(H -> 4)(LayerNorm(h)) projected on the tangent space;
    GELU is the tanh approximation, layer norm's eps 1e-5;
  * loss: sum over L and K of (v - u_t)^2, averaged over the batch; AdamW lr 1e-3, weight
    decay 0, gradient-norm clipping at 1.0; the learning rate decays along a cosine to 1 % of
    its start over the run (fisherflow's default schedule); label dropout --cond-drop;
  * sampler: tangent Euler x <- |exp_x(dt * v)| renormalised, --sample-steps steps, argmax;
    classifier-free guidance v = v_null + w (v_c - v_null) with sample i of class i mod C.

Parameter initialisation is PyTorch's default for each layer (fisherflow's differs in detail).
Writes the samples as FASTA with class= headers (score them with `fisherflow eval`), prints one
JSON object with steps_per_s, samples_per_s, the final mean loss and the sizes.

Benchmark-only: fisherflow's build and tests never need Python or PyTorch.
"""

import argparse
import json
import math
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fisherflow_torch import euler_step, interpolant_target, project, sphere_prior  # noqa: E402

ACGT = "ACGT"


def read_fasta(path, conditional):
    seqs, labels, cur, label = [], [], [], None

    def flush():
        if cur:
            seqs.append([ACGT.index(c) for c in "".join(cur).upper()])
            labels.append(label)

    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                flush()
                cur, label = [], None
                for word in line[1:].split():
                    if word.startswith("class="):
                        label = int(word[len("class="):])
            else:
                cur.append(line)
    flush()
    if conditional and any(l is None for l in labels):
        raise SystemExit(f"{path}: --conditional needs class=C in every header")
    return torch.tensor(seqs), (torch.tensor(labels) if conditional else None)


class ConvField(nn.Module):
    def __init__(self, k, hidden, blocks, kernel, time_dim, classes):
        super().__init__()
        self.k, self.classes = k, classes
        half = (time_dim + 1) // 2
        self.freq = nn.Parameter(torch.randn(1, half) * 2 * math.pi * 4.0)
        self.time = nn.Linear(2 * half, hidden)
        self.embed = nn.Embedding(classes + 1, hidden) if classes > 0 else None
        self.inp = nn.Linear(k, hidden)
        self.norms = nn.ModuleList([nn.LayerNorm(hidden, eps=1e-5) for _ in range(blocks)])
        self.times = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(blocks)])
        self.convs = nn.ModuleList(
            [
                nn.Conv1d(hidden, hidden, kernel, dilation=2 ** (i % 4), padding="same")
                for i in range(blocks)
            ]
        )
        self.out_norm = nn.LayerNorm(hidden, eps=1e-5)
        self.out = nn.Linear(hidden, k)

    def forward(self, x, t, labels=None):
        # x: [B, L, K], t: [B, 1], labels: [B] (classes = the null class)
        z = t @ self.freq
        emb = nn.functional.silu(self.time(torch.cat([torch.sin(z), torch.cos(z)], dim=1)))
        if self.embed is not None:
            emb = emb + self.embed(labels)
        h = self.inp(x)
        for norm, tl, conv in zip(self.norms, self.times, self.convs):
            a = nn.functional.gelu(norm(h) + tl(emb)[:, None, :], approximate="tanh")
            h = h + conv(a.transpose(1, 2)).transpose(1, 2)
        v = self.out(self.out_norm(h))
        return project(x, v, self.k)


def lr_at(step, steps, lr=1e-3, floor=0.01):
    c = 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
    return lr * (floor + (1.0 - floor) * c)


@torch.no_grad()
def sample(model, n, steps, l, k, classes, guidance):
    x = sphere_prior(n * l, k, "cpu").reshape(n, l, k)
    labels = torch.arange(n) % classes if classes > 0 else None
    null = torch.full((n,), classes) if classes > 0 else None
    dt = 1.0 / steps
    t = torch.empty(n, 1)
    for s in range(steps):
        t.fill_(s * dt)
        if classes > 0 and guidance != 1.0:
            both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
            vc, vn = both[:n], both[n:]
            v = vn + guidance * (vc - vn)
        else:
            v = model(x, t, labels)
        x = euler_step(x, v, dt, k)
    return x.argmax(dim=-1), labels


def write_fasta(path, tokens, labels):
    with open(path + ".tmp", "w") as f:
        for i, row in enumerate(tokens.tolist()):
            head = f">seq{i}" + (f" class={int(labels[i])}" if labels is not None else "")
            f.write(head + "\n" + "".join(ACGT[c] for c in row) + "\n")
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="training FASTA over ACGT")
    ap.add_argument("--out", required=True,
                    help="samples FASTA to write: OUT-wW.fa for each guidance weight W")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--kernel", type=int, default=9)
    ap.add_argument("--time-dim", type=int, default=64)
    ap.add_argument("--conditional", action="store_true")
    ap.add_argument("--cond-drop", type=float, default=0.0)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--sample-steps", type=int, default=100)
    ap.add_argument("--guidance", default="1", help="guidance weights, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    data, labels = read_fasta(a.data, a.conditional)
    n, l = data.shape
    k = 4
    classes = int(labels.max()) + 1 if labels is not None else 0
    model = ConvField(k, a.hidden, a.blocks, a.kernel, a.time_dim, classes)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    losses = []
    t0 = time.perf_counter()
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps)
        idx = torch.randint(0, n, (a.batch,))
        x1 = nn.functional.one_hot(data[idx], k).float().reshape(a.batch * l, k)
        x0 = sphere_prior(a.batch * l, k, "cpu")
        t = torch.rand(a.batch, 1)
        xt, ut = interpolant_target(x0, x1, t.repeat_interleave(l, dim=0))
        lab = None
        if classes > 0:
            lab = labels[idx].clone()
            lab[torch.rand(a.batch) < a.cond_drop] = classes
        v = model(xt.reshape(a.batch, l, k), t, lab)
        loss = ((v - ut.reshape(a.batch, l, k)) ** 2).sum(dim=(1, 2)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss))
    train_s = time.perf_counter() - t0
    model.eval()
    sample_rates = {}
    for w in [float(v) for v in a.guidance.split(",")]:
        t0 = time.perf_counter()
        tokens, sample_labels = sample(model, a.samples, a.sample_steps, l, k, classes, w)
        sample_rates[f"{w:g}"] = a.samples / (time.perf_counter() - t0)
        write_fasta(f"{a.out}-w{w:g}.fa", tokens, sample_labels)
    tail = losses[-max(1, len(losses) // 10):]
    print(
        json.dumps(
            {
                "steps_per_s": a.steps / train_s,
                "train_s": train_s,
                "samples_per_s": sample_rates,
                "mean_loss_last_tenth": sum(tail) / len(tail),
                "threads": torch.get_num_threads(),
                "torch_version": torch.__version__,
                "sizes": {"L": l, "N": n, "hidden": a.hidden, "blocks": a.blocks,
                          "kernel": a.kernel, "batch": a.batch, "steps": a.steps,
                          "classes": classes, "cond_drop": a.cond_drop,
                          "guidance": a.guidance, "samples": a.samples,
                          "sample_steps": a.sample_steps},
            }
        )
    )


if __name__ == "__main__":
    main()
