"""Hybrid-physics DMM vs EnKS / particle filter on held-out trajectories (docs/RESULTS.md).

Experiments (training record: seed 100; test record: seed 1, never seen in training)::

    l63        Lorenz-63 standard setting, true physics in the DMM
    l63_rho24  Lorenz-63 data (rho = 28); the DMM's known part and the classical methods'
               forecast model use rho = 24
    l96        Lorenz-96, N = 40, F = 8, true physics

Each trains a hybrid DMM (smoothing guide) with ``train_hybrid_dmm``
(:mod:`pyro_videossm.experiments.dmm`, the shared Trainer), assimilates the test record
with it (guide samples, in overlapping windows as long as the training windows) and with the
classical methods by name, scores everything after a burn-in of 100 cycles, writes
``assimilation/dmm_results/NAME.json`` (scores; training epochs, steps, seconds) and rewrites
the DMM section of docs/RESULTS.md (between ``<!-- BEGIN dmm -->`` and ``<!-- END dmm -->``)
from all the JSON files present::

    nice -n 10 python assimilation/dmm_experiments.py l63 --compile
    nice -n 10 python assimilation/dmm_experiments.py l63_rho24 --compile
    nice -n 10 python assimilation/dmm_experiments.py l96 --compile
    python assimilation/dmm_experiments.py --report-only      # rebuild the section

``--quick`` runs everything at toy sizes (a smoke test; the results are not written to
docs/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from pyro_videossm.assimilate import assimilate
from pyro_videossm.data import simulate
from pyro_videossm.dynamics import Lorenz63
from pyro_videossm.experiments.dmm import HybridDMMOptions, train_hybrid_dmm
from pyro_videossm.metrics.posterior import score_posterior
from pyro_videossm.models.ssm.dmm_file import load_dmm, save_dmm

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "RESULTS.md"
BEGIN, END = "<!-- BEGIN dmm -->", "<!-- END dmm -->"
TRAIN_SEED, TEST_SEED, BURN_IN = 100, 1, 100

EXPERIMENTS = {
    "l63": dict(system="lorenz63", known={}, train_cycles=5000, rnn_dim=64, guide_substeps=None,
                look_ahead=0,
                classical={"enks": dict(members=10), "etkf": dict(members=10),
                           "pf": dict(members=800)}),
    "l63_rho24": dict(system="lorenz63", known={"rho": 24.0}, train_cycles=5000, rnn_dim=64,
                      guide_substeps=None, look_ahead=0,
                      classical={"enks": dict(members=10), "enks-inflated": dict(members=10,
                                 inflation=1.5), "pf": dict(members=800),
                                 "pf-jittered": dict(members=800, jitter=2.0)}),
    "l96": dict(system="lorenz96", known={}, train_cycles=5000, rnn_dim=128, guide_substeps=None,
                look_ahead=0,
                classical={"enks": dict(members=20, localization=4.0, inflation=1.05),
                           "etkf": dict(members=40)}),
}

TITLES = {
    "l63": "Lorenz-63, standard setting, true physics",
    "l63_rho24": "Lorenz-63, known physics with rho = 24 (truth 28)",
    "l96": "Lorenz-96, N = 40, F = 8, true physics",
}


def known_system(spec: dict):
    if spec["system"] == "lorenz63" and spec["known"]:
        return Lorenz63(**spec["known"])
    return None


def run_experiment(name: str, args) -> dict:
    spec = EXPERIMENTS[name]
    quick = args.quick
    train = simulate(spec["system"], cycles=300 if quick else spec["train_cycles"],
                     seed=TRAIN_SEED)
    test = simulate(spec["system"], cycles=120 if quick else None, seed=TEST_SEED)
    burn_in = 10 if quick else BURN_IN
    system = known_system(spec)
    look_ahead = spec["look_ahead"] if args.look_ahead is None else args.look_ahead
    substeps = spec["guide_substeps"] if args.guide_substeps is None else (
        args.guide_substeps or None)
    hidden = () if args.correction == "none" else tuple(int(h) for h in args.correction.split(","))
    window = 20 if quick else args.window
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{name}.pt"
    record: dict = {"experiment": name, "title": TITLES[name], "quick": quick}
    if args.reuse and model_path.exists():
        dmm, extra = load_dmm(model_path, system=system)
        record["training"] = extra["training"]
    else:
        options = HybridDMMOptions(
            window=window, stride=max(1, window // 5), rnn_dim=8 if quick else spec["rnn_dim"],
            correction_hidden=hidden, physics_substeps=args.physics_substeps,
            guide_substeps=substeps, look_ahead=look_ahead,
            smoother_iterations=args.smoother_iterations,
            transition_scale=args.transition_scale,
            learn_transition_scale=not args.fixed_transition_scale,
            epochs=1 if quick else args.epochs, batch_size=args.batch_size, lr=args.lr,
            lr_decay=args.lr_decay, compile=args.compile, seed=args.seed)
        run = train_hybrid_dmm(train, options, system=system, progress=args.progress)
        dmm, done = run.dmm, run.training
        record["training"] = {
            "train_cycles": done["train_cycles"], "window": window,
            "windows": done["windows"], "epochs": done["epochs"], "steps": done["steps"],
            "batch_size": args.batch_size, "lr": args.lr, "lr_decay": args.lr_decay,
            "compiled": bool(args.compile), "look_ahead": look_ahead,
            "smoother_iterations": args.smoother_iterations,
            "physics_substeps": args.physics_substeps, "guide_substeps": substeps,
            "transition_scale": args.transition_scale,
            "fixed_transition_scale": bool(args.fixed_transition_scale),
            "correction": args.correction,
            "rnn_dim": spec["rnn_dim"], "wall_seconds": done["wall_seconds"],
            "cpu_seconds": done["cpu_seconds"], "threads": done["threads"],
            "final_loss_per_cycle": done["final_loss_per_cycle"],
            "learned_transition_scale": float(dmm.transition.log_scale.detach().exp().mean()),
        }
        save_dmm(model_path, dmm, extra={"training": record["training"], "window": window})
    rows = []
    dmm_post = assimilate(test, "dmm", model=dmm, samples=32 if quick else args.samples,
                          window=record["training"]["window"], seed=args.seed)
    rows.append({"method": "hybrid DMM" + (f" ({_known(spec)} + correction)"
                                           if spec["known"] else ""),
                 "estimate": "smoother", **score_posterior(dmm_post, test["truth"],
                                                           burn_in=burn_in),
                 "ms/cycle": 1e3 * dmm_post.attrs["seconds_per_cycle"]})
    for key, options in spec["classical"].items():
        method = key.split("-")[0]  # "enks-inflated" -> enks with other options
        if quick and method == "pf":
            options = {**options, "members": 100}
        post = assimilate(test, method, system=system, seed=args.seed, **options)
        label = f"{method} ({', '.join(f'{k}={v}' for k, v in options.items())}"
        label += f", {_known(spec)})" if spec["known"] else ")"
        rows.append({"method": label, "estimate": post.attrs["estimate"],
                     **score_posterior(post, test["truth"], burn_in=burn_in),
                     "ms/cycle": 1e3 * post.attrs["seconds_per_cycle"]})
    record["rows"] = rows
    record["samples"] = 32 if quick else args.samples
    record["forecast_check"] = forecast_check(dmm, test)
    record["obs_noise_std"] = float(test.attrs["obs_noise_std"])
    record["machine"] = f"{platform.machine()}, torch {torch.__version__}"
    if not quick:
        previous = out / f"{name}.json"
        if previous.exists():  # keep hand-written notes (variants run with other options)
            record["notes"] = json.loads(previous.read_text()).get("notes", [])
        (out / f"{name}.json").write_text(json.dumps(record, indent=1))
        (out / f"{name}.json").chmod(0o644)
    return record


def forecast_check(dmm, test) -> dict:
    """One-cycle forecast RMSE on the test truth: known physics alone, and with the learned
    correction (what the transition mean of the trained model gets wrong)."""
    z = torch.as_tensor(test["truth"].values, dtype=torch.float32)
    with torch.no_grad():
        physics = dmm.transition.physics(z[:-1])
        corrected = dmm.transition(z[:-1])[0]

    def rms(a):
        return float(a.pow(2).mean().sqrt())

    return {"physics": rms(physics - z[1:]), "physics_plus_correction": rms(corrected - z[1:])}


def _options_text(tr: dict, rec: dict) -> str:
    out = ""
    if tr.get("look_ahead"):
        out += f" --look-ahead {tr['look_ahead']}"
    for key, flag in (("physics_substeps", "--physics-substeps"),
                      ("transition_scale", "--transition-scale")):
        if tr.get(key) is not None:
            out += f" {flag} {tr[key]:g}"
    if tr.get("fixed_transition_scale"):
        out += " --fixed-transition-scale"
    if rec.get("samples"):
        out += f" --samples {rec['samples']}"
    return out


def _physics_text(tr: dict) -> str:
    parts = []
    if tr.get("physics_substeps"):
        parts.append(f"{tr['physics_substeps']} RK4 steps per cycle in the model")
    if tr.get("transition_scale") is not None:
        how = "fixed at" if tr.get("fixed_transition_scale") else "starting at"
        parts.append(f"transition noise {how} {tr['transition_scale']:g}")
    if tr.get("learned_transition_scale") is not None:
        parts.append(f"learned transition noise (mean) {tr['learned_transition_scale']:.3f}")
    return "".join(f"{p}, " for p in parts)


def _known(spec: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in spec["known"].items())


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def section(records: list[dict], speed: list[str] | None = None) -> str:
    lines = [
        BEGIN,
        "## Learned data assimilation: hybrid-physics DMM",
        "",
        "Hybrid DMM (`pyro_videossm.models.ssm.hybrid`): latent = physical state, transition = "
        "one observation interval of RK4 with the known physics + a learned MLP correction "
        "(zero at start) + learned noise; emission = observation operator with the dataset's "
        "noise. Smoothing guide: at each step the model's forecast from the guide's own draw "
        "of the previous state is combined (Gaussian product, `GainCombiner`) with the "
        "current observation, a message from a backward GRU, and the message of all later "
        "observations of the window through the transition (physics + correction) "
        "linearised along the guide's mean path, relinearised 3 times (Gauss–Newton: each "
        "new mean path is run on the linearised transition) with the transition "
        "noise annealed from the observation noise "
        "(`pyro_videossm.nn.linearised_smoother`; exact for a linear-Gaussian model). "
        "Trained with `Trace_ELBO` and the shared Trainer on one record "
        f"(seed {TRAIN_SEED}), scored on a held-out record (seed {TEST_SEED}, 1000 cycles, "
        f"burn-in {BURN_IN}); the DMM assimilates it in overlapping windows as long as its "
        "training windows (one batch, windows every half window) and is summarised from "
        "the guide samples given per experiment. "
        "Classical methods get the same (possibly wrong) physics via `system=`; their "
        "options here are fixed, see the classical section for tuned settings.",
        "",
    ]
    for rec in records:
        tr = rec["training"]
        lines += [f"### {rec['title']}", "",
                  f"Training: {tr['train_cycles']} cycles in {tr['windows']} windows of "
                  f"{tr['window']}, {tr['epochs']} epochs = {tr['steps']} steps of "
                  f"{tr['batch_size']} windows, lr {tr['lr']}, "
                  f"{_physics_text(tr)}"
                  f"{'compiled steps, ' if tr.get('compiled') else ''}"
                  f"{tr['wall_seconds']:.0f} s wall / {tr['cpu_seconds']:.0f} s CPU on "
                  f"{tr['threads']} thread(s).", ""]
        dmm_rmse = rec["rows"][0]["rmse"]
        smoothers = [r for r in rec["rows"][1:] if r["estimate"] == "smoother"]
        if smoothers:
            best = min(smoothers, key=lambda r: r["rmse"])
            lines += [f"DMM smoothing RMSE {dmm_rmse:.3f} = {dmm_rmse / best['rmse']:.2f} x "
                      f"that of {best['method']} ({best['rmse']:.3f}).", ""]
        keys = [k for k in rec["rows"][0] if k not in ("method", "estimate")]
        lines.append("| method | estimate | " + " | ".join(keys) + " |")
        lines.append("| --- | --- | " + " | ".join("---" for _ in keys) + " |")
        for row in rec["rows"]:
            lines.append(f"| {row['method']} | {row['estimate']} | "
                         + " | ".join(_fmt(row.get(k, "")) for k in keys) + " |")
        check = rec.get("forecast_check")
        if check:
            lines += ["", f"One-cycle forecast RMSE on the test truth: known physics "
                      f"{check['physics']:.3g}, physics + learned correction "
                      f"{check['physics_plus_correction']:.3g}."]
        if rec.get("notes"):
            lines += [""] + [f"- {note}" for note in rec["notes"]]
        lines += ["", "Command: `nice -n 10 python assimilation/dmm_experiments.py "
                  f"{rec['experiment']} --epochs {tr['epochs']} --window {tr['window']} "
                  f"--batch-size {tr['batch_size']} --lr {tr['lr']} --lr-decay {tr['lr_decay']}"
                  f"{' --compile' if tr.get('compiled') else ''}"
                  f"{_options_text(tr, rec)}"
                  f" --correction {tr.get('correction', '64,64')}"
                  f" --threads {tr.get('threads', 2)}`", ""]
    lines += speed or []
    lines.append(END)
    return "\n".join(lines)


def cost_lines(out: Path) -> list[str]:
    """The cost benchmark's JSON (``benchmarks/dmm_cost.py --json cost.json``) as a table."""
    path = out / "cost.json"
    if not path.exists():
        return []
    rec = json.loads(path.read_text())
    lines = ["### Cost of the posterior (Lorenz-63, 1000 cycles)", "",
             f"Wall seconds for mean, std and quantiles of {rec['cycles']} cycles through "
             f"`assimilate(obs, ...)`, best of {rec['repeats']} after a warm-up, "
             f"{rec['threads']} torch thread(s); {rec['machine']}; load average "
             f"{rec['load_before']} before, {rec['load_after']} after.", "",
             "| method | RMSE | best s | median s | speed-up over the EnKS |",
             "| --- | --- | --- | --- | --- |"]
    for row in rec["rows"]:
        lines.append(f"| {row['method']} | {row['rmse']:.3f} | {row['best_s']:.3f} | "
                     f"{row['median_s']:.3f} | {row['speed-up']:.1f}x |")
    lines += ["", f"Command: `{rec['command']}`", ""]
    return lines


def _steady(path: Path) -> tuple[float, float, float, int, int]:
    """Wall and CPU seconds per epoch (epochs after the first), final loss, epochs, SVI steps
    per epoch."""
    epochs = json.loads(path.read_text())
    steady = epochs[1:] or epochs
    return (sum(e["wall_seconds"] for e in steady) / len(steady),
            sum(e["cpu_seconds"] for e in steady) / len(steady),
            epochs[-1]["loss_per_step"], len(epochs), epochs[0]["steps"])


def speed_lines(out: Path) -> list[str]:
    """The polyphonic speed benchmark's JSON files (``benchmarks/dmm_polyphonic.py --json``)
    as a table, if present: ``polyphonic_{vectorised,per_step}[SUFFIX].json`` for the
    suffixes "" (1 thread), ``_2threads`` and ``_before_scans`` (the code before the
    hand-written scans); repeats ``_r1``, ``_r2``, ... of the 1-thread pair."""
    variants = (("", "1", ""), ("_2threads", "2", ""),
                ("_before_scans", "1", ", before the scans (commit 7e07dd5)"))
    labels = {"vectorised": "vectorised (one site per sequence)",
              "per_step": "per-step reference (one site per time step)"}
    rows, steps = [], None
    for suffix, threads, note in variants:
        found = {name: _steady(out / f"polyphonic_{name}{suffix}.json") for name in labels
                 if (out / f"polyphonic_{name}{suffix}.json").exists()}
        ref = found.get("per_step")
        for name, (wall, cpu, loss, n, per_epoch) in found.items():
            steps = per_epoch  # the same data (and batch size) in every file
            ratio = f"{cpu / ref[1]:.2f}" if ref else ""
            rows.append(f"| {labels[name]}{note} | {threads} | {wall:.2f} | {cpu:.2f} | "
                        f"{ratio} | {loss:.3f} | {n} |")
    if not rows:
        return []
    lines = ["### DMM training speed (polyphonic-music-shaped data)", "",
             "Classic architecture (88-key Bernoulli, z 100, emission 100, transition 200, "
             "ReLU RNN 600, batch 20, ClippedAdam lr 3e-4) on 229 synthetic sequences of "
             f"lengths 40-160 (`data_scripts/make_polyphonic_like.py`), {steps} SVI steps "
             "per epoch. Seconds per epoch (epochs after the first); the ratio is of CPU seconds "
             "against the per-step reference with the same threads and code.", "",
             "| path | threads | wall s / epoch | CPU s / epoch | ratio to per-step | "
             "loss per time step | epochs |",
             "| --- | --- | --- | --- | --- | --- | --- |", *rows]
    pairs, k = [], 1
    while (out / f"polyphonic_vectorised_r{k}.json").exists() and \
            (out / f"polyphonic_per_step_r{k}.json").exists():
        pairs.append(_steady(out / f"polyphonic_vectorised_r{k}.json")[1]
                     / _steady(out / f"polyphonic_per_step_r{k}.json")[1])
        k += 1
    if pairs and (out / "polyphonic_per_step.json").exists():
        pairs.append(_steady(out / "polyphonic_vectorised.json")[1]
                     / _steady(out / "polyphonic_per_step.json")[1])
        lines += ["", f"The 1-thread pair run {len(pairs)} times back to back (files `_r1`, "
                  f"`_r2`, ... and the table's): ratios "
                  + ", ".join(f"{r:.2f}" for r in pairs)
                  + ". The per-step reference's time varies most (Python-bound, sensitive to "
                  "the machine's state)."]
    profiles = {name: json.loads((out / f"polyphonic_profile_{name}.json").read_text())
                for name in ("vectorised", "per_step")
                if (out / f"polyphonic_profile_{name}.json").exists()}
    if profiles:
        lines += ["", "One ELBO step (forward + backward, without SVI's parameter capture "
                  "and the optimiser) on the first training mini-batch, CPU seconds "
                  "(`--profile`): "
                  + "; ".join(f"{name.replace('_', '-')}: whole step "
                              f"{p['elbo_step']:.3f}, backward RNN {p['rnn']:.3f}, guide "
                              f"sampling loop {p['guide_loop']:.3f}"
                              + (f", model {p['model']:.3f}" if "model" in p else "")
                              for name, p in profiles.items()) + "."]
    lines += ["", "How the vectorised path gets there: one `z` site and one `x` site per "
              "batch (Pyro's bookkeeping once, not per step); the model's transition and "
              "emission evaluated once for all valid steps (padding, 35 % of the steps here, "
              "skipped); the backward RNN and the guide's combiner loop as scans with a "
              "hand-written backward (`pyro_videossm/nn/recurrent_scans.py`): rows sorted by "
              "length so padded steps are skipped, no autograd node per small op, and each "
              "weight gradient one matrix product over all steps instead of one outer "
              "product per step. What is left is mostly the sequential matrix products "
              "themselves (RNN 20 x 600 · 600 x 600, combiner 20 x 100 · 100 x 600 and "
              "20 x 600 · 600 x 200 per step, forward and backward). The per-step reference "
              "shares the encoder, so it got the RNN scan too."]
    lines += ["", "Commands: `python data_scripts/make_polyphonic_like.py -o poly.npz`; "
              "`python benchmarks/dmm_polyphonic.py --data poly.npz --epochs 3 "
              "[--per-step] [--threads 2] --json "
              "assimilation/dmm_results/polyphonic_NAME.json`; `--profile` for the breakdown "
              "of one step; the rows before the scans ran the same commands in a checkout of "
              "commit 7e07dd5.", ""]
    figure = Path(__file__).resolve().parents[1] / "docs" / "dmm_polyphonic.png"
    if figure.exists():
        lines += ["![training loss per time step by SVI step, and CPU seconds per epoch, of "
                  "both paths](dmm_polyphonic.png)", "",
                  "Figure: `python benchmarks/dmm_polyphonic.py --figure "
                  "docs/dmm_polyphonic.png --from assimilation/dmm_results/"
                  "polyphonic_vectorised.json assimilation/dmm_results/"
                  "polyphonic_per_step.json`.", ""]
    return lines


def write_section(out: Path) -> None:
    records = [json.loads((out / f"{n}.json").read_text()) for n in EXPERIMENTS
               if (out / f"{n}.json").exists()]
    speed = cost_lines(out) + speed_lines(out)
    if not records and not speed:
        return
    from pyro_videossm.experiments.records import make_record
    from pyro_videossm.experiments.results import (
        record_path_for,
        remove_section_records,
        write_section,
    )

    block = section(records, speed)
    body = block[len(BEGIN):block.rindex(END)].strip("\n")
    target = record_path_for(RESULTS, "assimilation/results/dmm/dmm.json")
    sources = sorted(str(p) for p in Path(out).glob("*.json"))
    write_section(RESULTS, "dmm", body, header="# Results\n", record_path=target,
                  record=make_record("dmm", command="python assimilation/dmm_experiments.py "
                                     f"--out {out}", metrics={"experiments": records},
                                     derived_from=sources))
    remove_section_records(target.parent, "dmm", keep=[target])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*",
                        help=f"experiments to run: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--lr-decay", type=float, default=0.985, help="factor per epoch")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile the step work")
    parser.add_argument("--correction", default="64,64",
                        help="hidden widths of the learned correction, or 'none' (default 64,64)")
    parser.add_argument("--look-ahead", type=int,
                        help="future observations in the guide (default: per experiment)")
    parser.add_argument("--physics-substeps", type=int,
                        help="RK4 steps per cycle of the model's known physics (default: the "
                             "data's integration step)")
    parser.add_argument("--guide-substeps", type=int,
                        help="RK4 steps per cycle in the guide's forecast (default: per "
                             "experiment; 0: exact)")
    parser.add_argument("--transition-scale", type=float,
                        help="initial transition noise std (default: a tenth of the "
                             "observation noise std)")
    parser.add_argument("--fixed-transition-scale", action="store_true",
                        help="keep the transition noise at --transition-scale")
    parser.add_argument("--smoother-iterations", type=int, default=3,
                        help="Gauss-Newton relinearisations of the guide's backward messages "
                             "(default 3; 0: off; a look-ahead turns them off)")
    parser.add_argument("--reuse", action="store_true", help="reuse trained model files")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--quick", action="store_true", help="toy sizes (smoke test)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--no-docs", action="store_true",
                        help="write the JSON only, leave docs/RESULTS.md alone")
    parser.add_argument("--out", default=str(ROOT / "assimilation" / "dmm_results"))
    args = parser.parse_args(argv)
    unknown = [n for n in args.experiments if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    torch.set_num_threads(args.threads)
    for name in args.experiments:
        record = run_experiment(name, args)
        print(json.dumps(record["rows"], indent=1), flush=True)
    if not (args.quick or args.no_docs):
        write_section(Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
