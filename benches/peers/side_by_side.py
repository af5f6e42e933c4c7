#!/usr/bin/env python3
"""fisherflow against plain PyTorch on the Fisher-Flow toy model, same machine, same settings.

Runs `fisherflow bench --only flow --json` (its GPU adapter and its CPU backend, sizes passed
through FISHERFLOW_BENCH_FLOW) and benches/peers/fisherflow_torch.py, then prints training
steps/s and sampling samples/s side by side with the ratio fisherflow / PyTorch and the device
each figure came from. Standard library only; PyTorch is needed by the second script alone.

    cargo build --release
    python3 benches/peers/side_by_side.py --steps 20 --samples 512
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def last_json(text, what):
    """The JSON document at the end of `text` (an object or an array)."""
    for opener in ("[", "{"):
        i = text.find(opener)
        while i != -1:
            try:
                return json.loads(text[i:])
            except json.JSONDecodeError:
                i = text.find(opener, i + 1)
    raise SystemExit(f"no JSON in the output of {what}:\n{text}")


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def run(cmd, env=None):
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr}\n{p.stdout}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--samples", type=int, default=512, help="sequences sampled (timed)")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--sample-steps", type=int, default=100)
    ap.add_argument("--torch-device", choices=["auto", "cpu", "cuda"], default="cpu")
    ap.add_argument(
        "--fisherflow",
        default=os.path.join(ROOT, "target", "release", "fisherflow"),
        help="the fisherflow binary (default: target/release/fisherflow)",
    )
    ap.add_argument("--python", default=sys.executable, help="Python with PyTorch")
    ap.add_argument(
        "--threads", type=int, default=0,
        help="CPU threads of both PyTorch (set_num_threads) and fisherflow's CPU backend "
        "(FISHERFLOW_THREADS); 0: each program's default",
    )
    ap.add_argument(
        "--omp-passive", action="store_true",
        help="run PyTorch with OMP_WAIT_POLICY=PASSIVE (its OpenMP threads sleep instead of "
        "spinning: much faster on a small machine shared with other work)",
    )
    ap.add_argument(
        "--repeat", type=int, default=1,
        help="alternate the two programs this many times and report medians",
    )
    ap.add_argument("--json", action="store_true", help="print the combined figures as JSON")
    a = ap.parse_args()
    if not os.path.exists(a.fisherflow):
        raise SystemExit(f"{a.fisherflow} not found: run `cargo build --release` first")

    sizes = {
        "hidden": a.hidden,
        "batch": a.batch,
        "steps": a.steps,
        "samples": a.samples,
        "sample_steps": a.sample_steps,
    }
    env = dict(os.environ)
    env["FISHERFLOW_BENCH_FLOW"] = ",".join(f"{k}={v}" for k, v in sizes.items())
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    if a.threads > 0:
        env["FISHERFLOW_THREADS"] = str(a.threads)
    ff_runs, pt_runs = [], []
    for _ in range(max(a.repeat, 1)):
        ff_runs.append(
            last_json(run([a.fisherflow, "bench", "--only", "flow", "--json"], env), "fisherflow")
        )
        pt_env = dict(env)
        if a.omp_passive:
            pt_env["OMP_WAIT_POLICY"] = "PASSIVE"
        pt_runs.append(
            last_json(
                run(
                    [
                        a.python,
                        os.path.join(HERE, "fisherflow_torch.py"),
                        "--steps", str(a.steps),
                        "--samples", str(a.samples),
                        "--hidden", str(a.hidden),
                        "--batch", str(a.batch),
                        "--sample-steps", str(a.sample_steps),
                        "--device", a.torch_device,
                        "--threads", str(a.threads),
                    ],
                    pt_env,
                ),
                "fisherflow_torch.py",
            )
        )
    ff, pt = ff_runs[-1], pt_runs[-1]

    def ff_med(unit, key):
        return median([next(r for r in run_ if r["unit"] == unit)[key] for run_ in ff_runs])

    train = {"device": ff[0]["device"]}
    rows = [
        (
            "train steps/s",
            median([r["steps_per_s"] for r in pt_runs]),
            ff_med("steps/s", "baseline"),
            ff_med("steps/s", "value"),
        ),
        (
            "samples/s",
            median([r["samples_per_s"] for r in pt_runs]),
            ff_med("samples/s", "baseline"),
            ff_med("samples/s", "value"),
        ),
    ]
    adapter = train["device"]
    if a.json:
        print(
            json.dumps(
                {
                    "sizes": sizes,
                    "torch": pt_runs,
                    "fisherflow": ff_runs,
                },
                indent=2,
            )
        )
        return
    print(
        f"Fisher-Flow toy model L=4 K=20, hidden {a.hidden}, batch {a.batch}, "
        f"{a.steps} timed steps; sampler {a.samples} samples x {a.sample_steps} Euler steps; "
        f"median of {len(pt_runs)} alternating run(s)"
    )
    omp = os.environ.get("OMP_WAIT_POLICY", "default") if not a.omp_passive else "PASSIVE"
    print(f"  PyTorch {pt['torch_version']} eager on {pt['device']}, OMP_WAIT_POLICY {omp}")
    ff_threads = env.get("FISHERFLOW_THREADS", f"default: {os.cpu_count()} available cores")
    print(f"  fisherflow CPU backend (gemm crate, threads {ff_threads})")
    print(f"  fisherflow GPU path on adapter: {adapter}")
    print()
    head = (
        f"{'':<14} {'PyTorch':>10} {'ff CPU':>10} {'ff GPU':>10} "
        f"{'CPU/PyTorch':>12} {'GPU/PyTorch':>12}"
    )
    print(head)
    for name, p, c, g in rows:
        print(f"{name:<14} {p:>10.2f} {c:>10.2f} {g:>10.2f} {c / p:>12.2f} {g / p:>12.2f}")
    print()
    kls = ", ".join(f"{r['kl']:.4f}" for r in pt_runs)
    print(f"PyTorch KL(samples || target) after {a.steps + 2} steps: {kls}")
    if hasattr(os, "getloadavg"):
        print("load average at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
