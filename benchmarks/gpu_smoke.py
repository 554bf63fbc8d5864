"""GPU smoke test: one SVI (or loss) step of every model, a DMM assimilation and a forecast.

On ``--device cuda`` (the default) it checks that a CUDA install of the toolkit works end to
end and how long each part takes (well under 5 minutes on one GPU)::

    python benchmarks/gpu_smoke.py                     # --device cuda
    python benchmarks/gpu_smoke.py --device cpu --quick

Steps, each timed (wall seconds, the device synchronised), on small simulated data:

* ``dmm hybrid`` / ``dmm neural``: one epoch of one SVI step of the assimilation DMM
  (:func:`~pyro_videossm.experiments.dmm.train_hybrid_dmm`, all windows in one batch) on a
  Lorenz-63 record, with known physics + learned correction and purely neural;
* one epoch of one step of every recipe of :data:`~pyro_videossm.experiments.recipes.RECIPES`
  (the field forecasters and ConvDMM on ``heat``, the frame forecasters on ``moving-digits``,
  DSVAE and the judge on ``sprites``), model file written;
* ``assimilate dmm``: the hybrid DMM's posterior of a held-out Lorenz-63 record;
* ``forecast convdmm``: a ConvDMM ensemble forecast from the trained model file.

Prints a table (step, status, seconds) and writes a run record (``--json``, default
``gpu_smoke.json``). A step that fails is reported (its error's last line) and the others
still run; the exit status is 1 if any failed. ``--quick`` shrinks every size (the test
suite runs it on CPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from pyro_videossm.errors import InputError

#: per size: Lorenz-63 cycles, heat (samples, steps, grid), digits (clips, frames, canvas),
#: sprites (characters, size), shapes-rgbd (clips, frames, size), eating (clips, seconds,
#: size), window of the assimilation DMM
SIZES = {
    "full": {"cycles": 1000, "heat": (8, 20, 32), "digits": (16, 20, 64), "sprites": (2, 64),
             "rgbd": (16, 16, 64), "eating": (8, 2.0, 64), "members": 16},
    "quick": {"cycles": 120, "heat": (2, 12, 16), "digits": (2, 12, 32), "sprites": (1, 32),
              "rgbd": (4, 4, 16), "eating": (2, 0.5, 32), "members": 2},
}
#: small options of each recipe (the rest at their defaults): fast, but the real code paths
RECIPE_OPTIONS = {
    "convdmm": {"context": 4, "leads": 4, "stride": 4, "latent_channels": 4,
                "hidden_channels": 8, "rnn_channels": 8, "encoder_channels": 8},
    "convlstm": {"context": 4, "leads": 4, "stride": 4, "hidden_channels": [8, 8],
                 "stem_channels": 8},
    "dmm-flat": {"context": 4, "leads": 4, "stride": 4, "latent_dim": 8, "hidden_dim": 16,
                 "rnn_dim": 16, "conv_channels": 8},
    "spatrans": {"context": 4, "leads": 4, "stride": 4, "d_model": 32, "layers": 1},
    "transformer": {"context": 4, "leads": 4, "stride": 4, "d_model": 32, "layers": 1},
    "lstm": {"context": 4, "leads": 4, "stride": 4},
    "seq2seq": {"context": 4, "leads": 4, "stride": 4},
    "seq2seq-attn": {"context": 4, "leads": 4, "stride": 4},
    "dsvae": {"static_dim": 8, "dynamic_dim": 4, "hidden_dim": 32, "feature_dim": 32,
              "conv_channels": 8},
    "judge": {"conv_channels": 8, "hidden_dim": 32},
    "advection-convdmm": {"context": 4, "leads": 4, "stride": 4, "latent_channels": 4,
                          "hidden_channels": 8, "rnn_channels": 8, "encoder_channels": 8},
    "video-judge": {"conv_channels": 8, "hidden_dim": 32, "feature_dim": 32},
    "mocogan": {"gen_channels": 8, "disc_channels": 8},
    "cmocogan": {"gen_channels": 8, "disc_channels": 8},
    "dcvgan": {"gen_channels": 8, "disc_channels": 8, "translator_channels": 8},
    "depth-estimator": {"width": 8},
    "eating-sounds": {"channels": 8, "hidden": 16, "crop_size": 16},
    "recognizer": {"steps": 1, "head_hidden": 16},  # on the DSVAE's latents (dsvae.pt below)
}
#: which data set each family of recipes trains on
FIELD_RECIPES = ("convdmm", "convlstm", "dmm-flat", "advection-convdmm")
VIDEO_RECIPES = ("dsvae", "judge", "video-judge", "mocogan", "cmocogan", "recognizer")
RGBD_RECIPES = ("dcvgan", "depth-estimator")
SOUND_RECIPES = ("eating-sounds",)
BATCH = 4096  # larger than any window count here: one step per epoch


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Smoke:
    """Runs the steps, times them, keeps the rows of the table."""

    def __init__(self, device: str):
        self.device = device
        self.rows: list[dict] = []

    def step(self, name: str, action: Callable[[], object]) -> object:
        synchronize(self.device)
        start = time.perf_counter()
        try:
            result = action()
            synchronize(self.device)
        except Exception as err:  # noqa: BLE001 - reported in the table, the others still run
            seconds = time.perf_counter() - start
            lines = [s for s in traceback.format_exception_only(type(err), err) if s.strip()]
            self.rows.append({"step": name, "ok": False, "seconds": round(seconds, 2),
                              "error": lines[-1].strip()[:300]})
            print(f"  {name}: FAILED ({self.rows[-1]['error']})", file=sys.stderr)
            return None
        seconds = time.perf_counter() - start
        self.rows.append({"step": name, "ok": True, "seconds": round(seconds, 2)})
        print(f"  {name}: {seconds:.2f} s", file=sys.stderr)
        return result

    def table(self) -> str:
        width = max(len(r["step"]) for r in self.rows)
        lines = [f"| {'step':<{width}} | status | seconds |", f"|{'-' * (width + 2)}|---|---:|"]
        for r in self.rows:
            status = "ok" if r["ok"] else "FAILED"
            lines.append(f"| {r['step']:<{width}} | {status} | {r['seconds']:.2f} |")
        return "\n".join(lines)


def make_data(folder: Path, size: dict) -> dict[str, Path]:
    """The simulated data sets of the steps, written to ``folder``; name -> path."""
    from pyro_videossm.data.conventions import write_netcdf
    from pyro_videossm.data.simulators import simulate_dataset

    samples, steps, grid = size["heat"]
    clips, frames, canvas = size["digits"]
    characters, side = size["sprites"]
    rgbd_clips, rgbd_frames, rgbd_side = size["rgbd"]
    eating_clips, seconds, eating_side = size["eating"]
    sets = {
        "lorenz63": simulate_dataset("lorenz63", cycles=size["cycles"], seed=1),
        "lorenz63_test": simulate_dataset("lorenz63", cycles=size["cycles"], seed=2),
        "heat": simulate_dataset("heat", samples=samples, steps=steps, grid=grid, seed=0),
        "digits": simulate_dataset("moving-digits", n_clips=clips, n_frames=frames,
                                   canvas=canvas, seed=0),
        "sprites": simulate_dataset("sprites", characters=characters, size=side),
        "rgbd": simulate_dataset("shapes-rgbd", clips=rgbd_clips, frames=rgbd_frames,
                                 size=rgbd_side, seed=0),
        "eating": simulate_dataset("eating", n_clips=eating_clips, seconds=seconds,
                                   size=eating_side, seed=0),
    }
    return {name: write_netcdf(ds, folder / f"{name}.nc") for name, ds in sets.items()}


def run(device: str, quick: bool, folder: Path) -> Smoke:
    from pyro_videossm.assimilate import assimilate
    from pyro_videossm.data.chaotic import load_observations
    from pyro_videossm.experiments.dmm import HybridDMMOptions, train_hybrid_dmm
    from pyro_videossm.experiments.recipes import RECIPES, TrainingRun

    size = SIZES["quick" if quick else "full"]
    smoke = Smoke(device)
    data = smoke.step("simulate data (CPU)", lambda: make_data(folder, size))
    if data is None:
        return smoke
    record = load_observations(data["lorenz63"])
    dmm_options = {"epochs": 1, "batch_size": BATCH, "rnn_dim": 16 if quick else 64,
                   "correction_hidden": (16,) if quick else (64, 64)}
    dmm_file = folder / "dmm_hybrid.pt"
    smoke.step("dmm hybrid: 1 SVI step", lambda: train_hybrid_dmm(
        record, HybridDMMOptions(**dmm_options), device=device, output=dmm_file))
    smoke.step("dmm neural: 1 SVI step", lambda: train_hybrid_dmm(
        record, HybridDMMOptions(physics=False, **dmm_options), device=device))
    for name in RECIPES.names():
        recipe = RECIPES.get(name)
        if recipe.train is None:
            continue
        source = ("heat" if name in FIELD_RECIPES else "sprites" if name in VIDEO_RECIPES
                  else "rgbd" if name in RGBD_RECIPES else "eating" if name in SOUND_RECIPES
                  else "digits")
        training = TrainingRun(data[source], folder / f"{name}.pt", epochs=1, batch_size=BATCH,
                               device=device, progress=False)
        options = dict(RECIPE_OPTIONS.get(name, {}))
        if name == "recognizer":
            options["dsvae"] = str(folder / "dsvae.pt")
        smoke.step(f"{name}: 1 step", lambda r=recipe, t=training, o=options: r.fit(
            t, r.make_options(**o)))
    test = load_observations(data["lorenz63_test"])
    if dmm_file.exists():
        smoke.step("assimilate dmm (hybrid)", lambda: assimilate(
            test, "dmm", model=dmm_file, samples=size["members"] * 4, device=device))
    if (folder / "convdmm.pt").exists():
        smoke.step("forecast convdmm", lambda: forecast(folder / "convdmm.pt", data["heat"],
                                                        device, size["members"]))
    return smoke


def forecast(model: Path, data: Path, device: str, members: int):
    """An ensemble forecast of the last frames of ``data`` from the model file."""
    from pyro_videossm.cli.forecast import select_context
    from pyro_videossm.data.conventions import open_dataset
    from pyro_videossm.forecast import load_forecaster

    forecaster = load_forecaster(model, device=device)
    context, leads = RECIPE_OPTIONS["convdmm"]["context"], RECIPE_OPTIONS["convdmm"]["leads"]
    with open_dataset(data) as ds:
        ctx, _ = select_context(ds, context=context, leads=leads)
        return forecaster.forecast(ctx.load(), leads, members, seed=0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU check)")
    parser.add_argument("--json", type=Path, default=Path("gpu_smoke.json"),
                        help="run record to write (default gpu_smoke.json)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {args.device}: this torch has no CUDA device "
                         f"(torch {torch.__version__}); use --device cpu")
    from pyro_videossm.experiments.records import make_record, write_record

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        smoke = run(args.device, args.quick, Path(tmp))
    total = time.perf_counter() - start
    print(smoke.table())
    failed = [r["step"] for r in smoke.rows if not r["ok"]]
    print(f"{len(smoke.rows) - len(failed)} of {len(smoke.rows)} steps ok on {args.device} "
          f"in {total:.1f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    device_name = (torch.cuda.get_device_name(torch.device(args.device))
                   if args.device.startswith("cuda") else "cpu")
    write_record(args.json, make_record(
        "gpu_smoke", command="python benchmarks/gpu_smoke.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        options={"device": args.device, "quick": args.quick},
        metrics={"ok": not failed, "failed": failed, "steps": smoke.rows},
        timings={"total_seconds": round(total, 1),
                 **{r["step"]: r["seconds"] for r in smoke.rows}},
        device_name=device_name))
    print(f"wrote {args.json}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
