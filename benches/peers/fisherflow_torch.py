#!/usr/bin/env python3
"""Fisher-Flow toy training and sampling in plain PyTorch (eager), for timing against fisherflow.

The same model and recipe as fisherflow's toy experiment:
  * data: L = 4 positions, K = 20 categories, independent per position with probabilities
    softmax(U[0,1)^K); a fixed training set of 10,000 sequences drawn from it;
  * points x = sqrt(p) on the positive orthant of the unit sphere, one sphere per position;
  * prior x0 = |z| / ||z||, z ~ N(0, I_K) per position; t ~ U[0, 1) per sequence;
  * geodesic interpolant x_t and target u_t in closed form;
  * vector field: time embedding e = Linear(1 -> 64)(t) concatenated to every block input,
    h = LeakyReLU(Linear(LK+64 -> H)([x, e])), two residual blocks
    h = h + LeakyReLU(Linear(H+64 -> H)([h, e])), v = Linear(H+64 -> LK)([h, e]) projected on
    the tangent space at x_t per position; LeakyReLU slope 0.01;
  * loss: sum over L, K of (v - u_t)^2, averaged over the batch; AdamW lr 1e-3, weight decay 0,
    gradient-norm clipping at 1.0, batch 512;
  * sampler: tangent Euler x <- |exp_x(dt * proj_x(v))| renormalised, 100 steps, argmax.

Prints one JSON object: steps_per_s, samples_per_s, device, torch_version, kl (per-position
KL(empirical || true) of the timed samples, averaged over positions) and the sizes used.

Benchmark-only: fisherflow's build and tests never need Python or PyTorch.
"""

import argparse
import json
import math
import time
import warnings

# The CPU wheel may come without NumPy, which nothing here needs.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class VectorField(nn.Module):
    """The Fisher-Flow MLP vector field with its tangent projection."""

    def __init__(self, seq_len, categories, hidden, blocks=2, time_dim=64, slope=0.01):
        super().__init__()
        self.l, self.k = seq_len, categories
        lk = seq_len * categories
        self.time = nn.Linear(1, time_dim)
        self.inp = nn.Linear(lk + time_dim, hidden)
        self.blocks = nn.ModuleList(
            [nn.Linear(hidden + time_dim, hidden) for _ in range(blocks)]
        )
        self.out = nn.Linear(hidden + time_dim, lk)
        self.act = nn.LeakyReLU(slope)

    def forward(self, x, t):
        # x: [B, L*K] on the product of spheres, t: [B, 1]
        e = self.time(t)
        h = self.act(self.inp(torch.cat([x, e], dim=1)))
        for blk in self.blocks:
            h = h + self.act(blk(torch.cat([h, e], dim=1)))
        v = self.out(torch.cat([h, e], dim=1))
        return project(x, v, self.k)


def project(x, v, k):
    """v - <x, v> x per position (rows of K)."""
    xs = x.reshape(-1, k)
    vs = v.reshape(-1, k)
    return (vs - (xs * vs).sum(-1, keepdim=True) * xs).reshape(v.shape)


def sphere_prior(rows, k, device, gen=None):
    z = torch.randn(rows, k, device=device, generator=gen).abs()
    return z / z.norm(dim=-1, keepdim=True)


def interpolant_target(x0, x1, t):
    """Closed-form geodesic interpolant and its velocity, rows of K, t per row.

    x_t = (sin((1-t)th) x0 + sin(t th) x1) / sin th,
    u_t = th / sin th (cos(t th) x1 - cos((1-t) th) x0), with the th -> 0 limits.
    """
    th = torch.arccos((x0 * x1).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    small = th < 1e-6
    ths = torch.where(small, torch.ones_like(th), th)
    s = torch.sin(ths)
    a0 = torch.where(small, 1.0 - t, torch.sin((1.0 - t) * ths) / s)
    a1 = torch.where(small, t, torch.sin(t * ths) / s)
    c0 = torch.where(small, -torch.ones_like(th), -ths / s * torch.cos((1.0 - t) * ths))
    c1 = torch.where(small, torch.ones_like(th), ths / s * torch.cos(t * ths))
    return a0 * x0 + a1 * x1, c0 * x0 + c1 * x1


def euler_step(x, v, dt, k):
    """|exp_x(dt * proj_x(v))| renormalised, rows of K."""
    xs = x.reshape(-1, k)
    u = dt * project(xs, v.reshape(-1, k), k)
    n = u.norm(dim=-1, keepdim=True)
    tiny = n < 1e-12
    ns = torch.where(tiny, torch.ones_like(n), n)
    y = torch.where(tiny, xs + u, torch.cos(ns) * xs + torch.sin(ns) / ns * u)
    y = y.abs()
    return (y / y.norm(dim=-1, keepdim=True)).reshape(x.shape)


class ToyTarget:
    def __init__(self, seq_len, categories, gen):
        logits = torch.rand(seq_len, categories, generator=gen, dtype=torch.float64)
        self.probs = torch.softmax(logits, dim=-1)

    def sample(self, n, gen):
        l, k = self.probs.shape
        idx = torch.multinomial(self.probs, n, replacement=True, generator=gen)  # [L, n]
        return idx.T.contiguous()  # [n, L]

    def kl(self, tokens):
        """Per-position KL(empirical || true), averaged over positions."""
        l, k = self.probs.shape
        total = 0.0
        for p in range(l):
            counts = torch.bincount(tokens[:, p].cpu(), minlength=k).double()
            emp = counts / counts.sum()
            q = self.probs[p]
            mask = emp > 0
            total += float((emp[mask] * (emp[mask] / q[mask]).log()).sum())
        return total / l


class Trainer:
    def __init__(self, data, model, batch, k, device):
        self.data = data  # [N, L] int64 on device
        self.model = model
        self.batch = batch
        self.k = k
        self.device = device
        self.opt = torch.optim.AdamW(
            model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
        )
        self.loss_sum = torch.zeros((), device=device)
        self.loss_count = 0

    def step(self):
        b, k, dev = self.batch, self.k, self.device
        n, l = self.data.shape
        idx = torch.randint(0, n, (b,), device=dev)
        x1 = nn.functional.one_hot(self.data[idx], k).float().reshape(b * l, k)
        x0 = sphere_prior(b * l, k, dev)
        t = torch.rand(b, 1, device=dev)
        t_rows = t.repeat_interleave(l, dim=0)
        xt, ut = interpolant_target(x0, x1, t_rows)
        xt, ut = xt.reshape(b, l * k), ut.reshape(b, l * k)
        v = self.model(xt, t)
        loss = ((v - ut) ** 2).sum(dim=1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        # Accumulated on the device and read only when asked, like fisherflow's trainer.
        self.loss_sum += loss.detach()
        self.loss_count += 1

    def take_mean_loss(self):
        m = float(self.loss_sum) / max(self.loss_count, 1)
        self.loss_sum.zero_()
        self.loss_count = 0
        return m


@torch.no_grad()
def sample(model, n, steps, l, k, device):
    x = sphere_prior(n * l, k, device).reshape(n, l * k)
    dt = 1.0 / steps
    t = torch.empty(n, 1, device=device)
    for s in range(steps):
        t.fill_(s * dt)
        v = model(x, t)
        x = euler_step(x, v, dt, k)
    return x.reshape(n, l, k).argmax(dim=-1)


def self_check():
    """Check the geometry in float64: x_t on the sphere with the right end points, u_t equal
    to the finite-difference time derivative of x_t and tangent at x_t, Euler steps on the
    positive orthant of the sphere, projection idempotent."""
    torch.manual_seed(1)
    k, rows = 20, 64
    x0 = sphere_prior(rows, k, "cpu").double()
    x0 = x0 / x0.norm(dim=-1, keepdim=True)
    x1 = torch.nn.functional.one_hot(torch.randint(0, k, (rows,)), k).double()
    x1[:4] = x0[:4]  # theta = 0 rows take the limit branch
    t = torch.rand(rows, 1, dtype=torch.float64) * 0.9 + 0.05
    xt, ut = interpolant_target(x0, x1, t)
    assert torch.allclose(xt.norm(dim=-1), torch.ones(rows, dtype=torch.float64), atol=1e-12)
    a, _ = interpolant_target(x0, x1, torch.zeros_like(t))
    b, _ = interpolant_target(x0, x1, torch.ones_like(t))
    assert torch.allclose(a, x0, atol=1e-12) and torch.allclose(b, x1, atol=1e-9)
    h = 1e-6
    xp, _ = interpolant_target(x0, x1, t + h)
    xm, _ = interpolant_target(x0, x1, t - h)
    assert torch.allclose((xp - xm) / (2 * h), ut, atol=1e-6), "u_t is not dx_t/dt"
    assert (xt * ut).sum(-1).abs().max() < 1e-9, "u_t is not tangent"
    v = torch.randn(rows, k, dtype=torch.float64)
    pv = project(xt, v, k)
    assert torch.allclose(project(xt, pv, k), pv, atol=1e-12)
    y = euler_step(xt, v, 0.01, k)
    assert (y >= 0).all()
    assert torch.allclose(y.norm(dim=-1), torch.ones(rows, dtype=torch.float64), atol=1e-12)
    # Small steps follow the tangent direction to first order.
    d = (euler_step(xt, v, 1e-7, k) - xt) / 1e-7
    assert torch.allclose(d, pv, atol=1e-5)
    print("self-check ok")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--samples", type=int, default=4096, help="sequences in the timed sampling run")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--sample-steps", type=int, default=100)
    ap.add_argument("--seq-len", type=int, default=4)
    ap.add_argument("--categories", type=int, default=20)
    ap.add_argument("--data", type=int, default=10_000, help="training-set size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--self-check", action="store_true", help="check the geometry and exit")
    a = ap.parse_args()
    if a.self_check:
        self_check()
        return
    if a.steps <= 0 or a.samples <= 0 or a.sample_steps <= 0 or a.batch <= 0 or a.hidden <= 0:
        ap.error("sizes must be positive")

    if a.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(a.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            ap.error("--device cuda but no CUDA device is available")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    l, k = a.seq_len, a.categories

    gen = torch.Generator().manual_seed(a.seed)
    target = ToyTarget(l, k, gen)
    data = target.sample(a.data, gen).to(device)
    model = VectorField(l, k, a.hidden).to(device)
    tr = Trainer(data, model, a.batch, k, device)

    # Two untimed steps, then the timed ones; the loss is read once at the end (that read
    # waits for the device).
    for _ in range(2):
        tr.step()
    tr.take_mean_loss()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        tr.step()
    loss = tr.take_mean_loss()
    sync(device)
    steps_per_s = a.steps / (time.perf_counter() - t0)

    model.eval()
    sample(model, 8, 2, l, k, device)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    tokens = sample(model, a.samples, a.sample_steps, l, k, device)
    sync(device)
    samples_per_s = a.samples / (time.perf_counter() - t0)

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(
        json.dumps(
            {
                "steps_per_s": steps_per_s,
                "samples_per_s": samples_per_s,
                "device": name,
                "torch_version": torch.__version__,
                "kl": target.kl(tokens),
                "mean_loss": loss if math.isfinite(loss) else None,
                "sizes": {
                    "L": l,
                    "K": k,
                    "hidden": a.hidden,
                    "batch": a.batch,
                    "steps": a.steps,
                    "samples": a.samples,
                    "sample_steps": a.sample_steps,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
