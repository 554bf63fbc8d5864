"""DMM training speed on polyphonic-music-shaped data: vectorised sites vs one site per step.

The classic architecture of Pyro's ``examples/dmm.py`` (88-key Bernoulli emission, z 100,
emission 100, transition 200, ReLU RNN 600, smoothing guide, batch 20, ClippedAdam lr 3e-4,
betas (0.96, 0.999), clip 10, lrd 0.99996) trained with a plain SVI loop as in that example
(shuffled mini-batches, same seed for both paths). Prints wall and CPU seconds per epoch (CPU
time of this process: robust to other processes' load on a shared machine) and the training
loss per time step (negative ELBO / number of valid steps)::

    python data_scripts/make_polyphonic_like.py -o polyphonic_like.npz
    python benchmarks/dmm_polyphonic.py --data polyphonic_like.npz --epochs 3
    python benchmarks/dmm_polyphonic.py --data polyphonic_like.npz --epochs 3 --per-step
    python benchmarks/dmm_polyphonic.py --data polyphonic_like.npz --profile   # breakdown
    python benchmarks/dmm_polyphonic.py --data polyphonic_like.npz --epochs 3 --compile
    python benchmarks/dmm_polyphonic.py --figure docs/dmm_polyphonic.png --from v.json p.json

``--profile`` times the parts of one training step (forward + backward) on the first
mini-batch of training: the backward RNN, the guide's sequential sampling loop, the model's
log-density, and the rest of the ELBO step (Pyro's trace bookkeeping).
Timings depend on the machine's load; report them with the command. ``--jit``
(``JitTrace_ELBO``) exists but is impractical at this size: TorchScript runs the traced graph
of 160 unrolled steps so slowly that not one epoch (of 40 sequences, ``--small``) finished
in 5 minutes here for the vectorised path, before and after the scans (2026-12-02, torch 2.13).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import SVI, JitTrace_ELBO, Trace_ELBO
from pyro.optim import ClippedAdam

from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.dmm import DMM


def load_npz(path: Path, limit: int | None = None) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise InputError(f"{path}: no such file (make one with "
                         "data_scripts/make_polyphonic_like.py)")
    with np.load(path) as f:
        if "sequences" not in f or "lengths" not in f:
            raise InputError(f"{path}: needs arrays 'sequences' (N, T, 88) and 'lengths' (N,)")
        x = torch.as_tensor(f["sequences"], dtype=torch.float32)
        lengths = torch.as_tensor(f["lengths"], dtype=torch.int64)
    if x.dim() != 3 or lengths.shape != x.shape[:1]:
        raise InputError(f"{path}: sequences {tuple(x.shape)} and lengths "
                         f"{tuple(lengths.shape)} do not fit")
    if limit:
        x, lengths = x[:limit], lengths[:limit]
    T = int(lengths.max())
    return {"x": x[:, :T].contiguous(), "lengths": lengths}


def classic_dmm(x_dim: int = 88, per_step: bool = False, small: bool = False) -> DMM:
    sizes = dict(z_dim=8, emission_dim=16, transition_dim=16, rnn_dim=32) if small else dict(
        z_dim=100, emission_dim=100, transition_dim=200, rnn_dim=600)
    return DMM(x_dim, **sizes, likelihood="bernoulli", rnn_type="rnn", guide="smoothing",
               combiner="classic", mask_input=False, per_step=per_step)


def _timed(fn, repeats: int) -> float:
    """CPU seconds per call (process time: not inflated by other processes' load)."""
    fn()
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats


def profile(dmm: DMM, batch: dict[str, torch.Tensor], repeats: int) -> dict[str, float]:
    """Seconds per call (forward + backward) of the parts of one ELBO step."""
    params = list(dmm.parameters())

    def backward(loss):
        loss.backward()
        for p in params:
            p.grad = None

    data = dmm.unpack(batch)

    def rnn():
        backward(dmm.encoder(data.x, data.obs_mask, data.lengths).sum())

    def guide():
        backward(dmm.posterior_chain(data).rsample().sum())

    with torch.no_grad():
        z = dmm.posterior_chain(data).rsample()

    def model():
        zz = z.clone().requires_grad_()
        tr = poutine.trace(poutine.condition(dmm.model, data={"z": zz})).get_trace(batch)
        backward(tr.log_prob_sum())

    elbo = Trace_ELBO()

    def step():
        backward(elbo.differentiable_loss(dmm.model, dmm.guide, batch))

    out = {"rnn": _timed(rnn, repeats), "guide": _timed(guide, repeats)}
    if not dmm.per_step:
        out["model"] = _timed(model, repeats)
    out["elbo_step"] = _timed(step, repeats)
    out["guide_loop"] = out["guide"] - out["rnn"]
    if "model" in out:
        out["bookkeeping"] = out["elbo_step"] - out["guide"] - out["model"]
    return out


def train(dmm: DMM, data: dict[str, torch.Tensor], epochs: int, seed: int,
          jit: bool = False) -> list[dict]:
    """SVI as in ``examples/dmm.py``; one dict per epoch (seconds, loss per time step).

    With ``jit`` (``JitTrace_ELBO``, compiled once for the batch shape) the last, partial
    mini-batch of each epoch is dropped."""
    optim = ClippedAdam({"lr": 3e-4, "betas": (0.96, 0.999), "clip_norm": 10.0,
                         "lrd": 0.99996})
    elbo = JitTrace_ELBO(ignore_jit_warnings=True) if jit else Trace_ELBO()
    if jit:
        def model(x, lengths):
            return dmm.model({"x": x, "lengths": lengths})

        def guide(x, lengths):
            return dmm.guide({"x": x, "lengths": lengths})
    else:
        model, guide = dmm.model, dmm.guide
    svi = SVI(model, guide, optim, elbo)
    n = data["x"].shape[0]
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for epoch in range(epochs):
        wall, cpu = time.perf_counter(), time.process_time()
        order = torch.randperm(n, generator=gen)
        total, steps, count, step_losses = 0.0, 0, 0.0, []
        for start in range(0, n - 19 if jit else n, 20):
            idx = order[start:start + 20]
            batch = {k: v[idx] for k, v in data.items()}
            loss = svi.step(batch["x"], batch["lengths"]) if jit else svi.step(batch)
            valid = float(batch["lengths"].sum())
            total += loss
            count += valid
            step_losses.append(round(loss / valid, 4))
            steps += 1
        rows.append({"epoch": epoch + 1, "steps": steps,
                     "wall_seconds": round(time.perf_counter() - wall, 3),
                     "cpu_seconds": round(time.process_time() - cpu, 3),
                     "loss_per_step": round(total / count, 4),
                     "step_losses": step_losses})
    return rows


def figure(runs: dict[str, list[dict]], path: Path) -> Path:
    """PNG: the training loss per time step of every SVI step (left) and the CPU seconds
    per epoch (right) of each path; ``runs`` maps a label to the rows of :func:`train`."""
    from pyro_videossm.plots.figure import plt, save_figure

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8), width_ratios=(2, 1))
    for k, (label, rows) in enumerate(runs.items()):
        losses = [v for r in rows for v in r["step_losses"]]
        ax.plot(range(1, len(losses) + 1), losses, label=label, lw=1.2,
                ls="-" if k == 0 else "--")
        steady = rows[1:] or rows
        bx.bar(k, float(np.mean([r["cpu_seconds"] for r in steady])), label=label)
    ax.set(xlabel="SVI step (mini-batch of 20 sequences)",
           ylabel="loss per time step (-ELBO / steps)", title="same loss after the same steps")
    ax.legend()
    bx.set_xticks(range(len(runs)), [label.split(" ")[0] for label in runs])
    bx.set(ylabel="CPU s per epoch (epochs after the first)", title="one thread")
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help=".npz (sequences, lengths); required "
                        "unless --figure")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--per-step", action="store_true", help="one site per time step")
    parser.add_argument("--profile", action="store_true", help="time the parts of a step")
    parser.add_argument("--jit", action="store_true", help="JitTrace_ELBO (either path)")
    parser.add_argument("--compile", action="store_true",
                        help="vectorised path: torch.compile the guide's per-step work "
                             "(DMM.compile_steps; compiled in the first epoch)")
    parser.add_argument("--limit", type=int, help="use only the first N sequences")
    parser.add_argument("--small", action="store_true", help="tiny network (smoke test)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--figure", type=Path, metavar="PNG",
                        help="train nothing: plot the runs of --from (JSON of --json)")
    parser.add_argument("--from", dest="runs", type=Path, nargs="+", default=[],
                        help="JSON files of earlier runs, for --figure")
    args = parser.parse_args(argv)
    if args.figure:
        if not args.runs:
            raise InputError("--figure needs the runs to plot: --from A.json B.json")
        runs = {}
        for path in args.runs:
            rows = json.loads(path.read_text())
            if not rows or "step_losses" not in rows[0]:
                raise InputError(f"{path}: not a run of this script with per-step losses")
            runs[rows[0].get("path", path.stem)] = rows
        print(f"wrote {figure(runs, args.figure)}")
        return 0
    if args.data is None:
        parser.error("--data is required (or --figure with --from)")
    torch.set_num_threads(args.threads)
    data = load_npz(args.data, args.limit)
    pyro.set_rng_seed(args.seed)
    pyro.clear_param_store()
    dmm = classic_dmm(data["x"].shape[-1], per_step=args.per_step, small=args.small)
    if args.compile:
        if args.per_step:
            raise InputError("--compile is for the vectorised path")
        dmm.compile_steps()
    label = (("per-step" if args.per_step else "vectorised") + (" (jit)" if args.jit else "")
             + (" (compiled)" if args.compile else ""))
    if args.profile:  # the first mini-batch of training (its lengths: a typical mix)
        order = torch.randperm(data["x"].shape[0], generator=torch.Generator().manual_seed(
            args.seed))[:20]
        batch = {k: v[order] for k, v in data.items()}
        parts = profile(dmm, batch, repeats=3)
        print(json.dumps({"path": label, **{k: round(v, 4) for k, v in parts.items()}}))
        if args.json:
            args.json.write_text(json.dumps({"path": label, **parts}))
        return 0
    rows = train(dmm, data, args.epochs, args.seed, jit=args.jit)
    rows = [{"path": label, **row} for row in rows]
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "step_losses"}))
    steady = rows[1:] or rows  # the first epoch includes one-off costs
    wall = float(np.mean([r["wall_seconds"] for r in steady]))
    cpu = float(np.mean([r["cpu_seconds"] for r in steady]))
    print(f"{label}: {wall:.2f} s wall, {cpu:.2f} s CPU per epoch "
          f"({rows[0]['steps']} steps of 20 sequences, {args.threads} thread(s)); "
          f"loss per time step after {len(rows)} epochs {rows[-1]['loss_per_step']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
