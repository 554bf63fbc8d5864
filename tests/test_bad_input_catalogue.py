"""Every bad input to every ``videossm`` sub-command: exit status 2, one line on stderr, no file
written (no temporaries left), every input unchanged.

The sub-commands are found by walking the argparse tree of
:func:`pyro_videossm.cli.build_parser`, so a new sub-command fails
:func:`test_every_subcommand_has_a_base_call` until it gets a valid base call in :data:`BASES`;
from the base call the cases are generated: every input file replaced by each bad file of its
kind, every count/size/rate option set to 0 and -1, unknown names, bad outputs (a folder, a
missing folder, an input by path, symbolic or hard link) and unavailable devices.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from pyro_videossm.cli import build_parser, main
from pyro_videossm.data.conventions import write_netcdf

pytestmark = pytest.mark.filterwarnings("ignore")


# -- the sub-commands --------------------------------------------------------------------------
def leaf_parsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """``{("train", "convlstm"): parser, ...}``: every sub-command at the end of the tree."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix: parser}
    out = {}
    for name, sub in subs[0].choices.items():
        out.update(leaf_parsers(sub, prefix + (name,)))
    return out


LEAVES = leaf_parsers(build_parser())


@dataclass
class Base:
    """A valid call of a sub-command. ``{name}`` is an input file of :func:`inputs` (its kind:
    the name up to the first ``.``), ``{out}`` the test's own output folder. ``outputs``: flags
    whose value is a file written; ``names``: ``(flag, value)`` unknown names to try; ``zero_ok``:
    count options for which 0 is a documented value (only -1 is tried)."""

    argv: list[str]
    outputs: tuple[str, ...] = ("-o",)
    names: tuple[tuple[str, str], ...] = ()
    zero_ok: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    extra: tuple[tuple[str, list[str]], ...] = ()


TINY_FIELD = ["--context", "2", "--leads", "2", "--epochs", "1", "--batch-size", "4",
              "--normalize", "minmax", "--no-progress"]
WINDOWED = {
    "convdmm": ["--latent-channels", "2", "--hidden-channels", "4", "--rnn-channels", "4",
                "--encoder-channels", "4", "--n-down", "1"],
    "convlstm": ["--hidden-channels", "4", "--stem-channels", "4"],
    "dmm-flat": ["--latent-dim", "2", "--hidden-dim", "4", "--rnn-dim", "4",
                 "--conv-channels", "2", "--n-down", "1"],
    "spatrans": ["--d-model", "8", "--heads", "2", "--layers", "1", "--patch", "4"],
    "transformer": ["--d-model", "8", "--heads", "2", "--layers", "1"],
    "lstm": ["--d-model", "8", "--hidden", "8", "--lstm-layers", "1"],
    "seq2seq": ["--d-model", "8", "--hidden", "8", "--lstm-layers", "1"],
    "seq2seq-attn": ["--d-model", "8", "--hidden", "8", "--lstm-layers", "1"],
}
TINY_ANIMATOR = ["--epochs", "1", "--batch-size", "2", "--channels", "2", "--levels", "1",
                 "--disc-channels", "2", "--disc-layers", "1"]
TINY_DSVAE = ["--static-dim", "2", "--dynamic-dim", "2", "--hidden-dim", "4",
              "--feature-dim", "4", "--conv-channels", "2"]

BASES: dict[tuple[str, ...], list[Base]] = {
    ("simulate", "chaotic"): [Base(["simulate", "chaotic", "--system", "lorenz63", "--cycles",
                                    "5", "-o", "{out}/x.nc", "--no-progress"],
                                   names=(("--system", "nosuchsystem"),),
                                   zero_ok=("--spinup", "--process-noise-std"))],
    ("simulate", "lorenz63"): [Base(["simulate", "lorenz63", "--cycles", "5", "-o", "{out}/x.nc",
                                     "--no-progress"],
                                    zero_ok=("--spinup", "--process-noise-std"))],
    ("simulate", "lorenz96"): [Base(["simulate", "lorenz96", "--cycles", "5", "-o", "{out}/x.nc",
                                     "--no-progress"],
                                    zero_ok=("--spinup", "--process-noise-std"),
                                    extra=(("n3", ["--n", "3"]),))],
    ("simulate", "heat"): [Base(["simulate", "heat", "--samples", "1", "--steps", "3", "--grid",
                                 "8", "-o", "{out}/x.nc", "--no-progress"],
                                zero_ok=("--process-noise-scale", "--obs-noise-scale",
                                         "--clip-margin"))],
    ("simulate", "moving-digits"): [Base(["simulate", "moving-digits", "--clips", "2",
                                          "--frames", "4", "-o", "{out}/x.nc", "--no-progress"],
                                         zero_ok=("--speed", "--context"))],
    ("simulate", "clouds"): [Base(["simulate", "clouds", "--clips", "2", "--frames", "3",
                                   "--size", "8", "-o", "{out}/x.nc", "--no-progress"],
                                  zero_ok=("--speed", "--rotation", "--divergence", "--growth",
                                           "--softness", "--seed"))],
    ("train", "flow-animator"): [Base(["train", "flow-animator", "{clouds}", "-o", "{out}/m.pt",
                                       *TINY_ANIMATOR, "--no-progress"],
                                      outputs=("-o", "--checkpoint"),
                                      names=(("--variable", "nosuchvariable"),),
                                      zero_ok=("--adversarial-weight", "--valid-fraction",
                                               "--ema-decay", "--spectral-weight",
                                               "--consistency-weight"))],
    ("animate",): [Base(["animate", "{clouds}", "--driving", "{clouds}", "--model",
                         "{animator_model}", "-o", "{out}/a.nc"],
                        outputs=("-o", "--gif"), names=(("--variable", "nosuchvariable"),),
                        zero_ok=("--source-time",))],
    ("simulate", "sprites"): [Base(["simulate", "sprites", "--size", "8", "--frames", "2",
                                    "--characters", "1", "-o", "{out}/x.nc", "--no-progress"])],
    ("assimilate",): [Base(["assimilate", "{chaotic}", "--method", "etkf", "--members", "5",
                            "-o", "{out}/p.nc", "--no-progress"],
                           names=(("--method", "nosuchmethod"), ("--system", "nosuchsystem"),
                                  ("--set", "nosuchoption=1"),
                                  ("--system-param", "nosuchparameter=1")),
                           zero_ok=("--samples", "--lag")),
                      Base(["assimilate", "{chaotic}", "--method", "dmm", "--model",
                            "{dmm_model}", "-o", "{out}/p.nc", "--no-progress"],
                           names=(("--guide", "nosuchguide"),),
                           skip=("numbers",))],
    ("evaluate",): [Base(["evaluate", "{posterior}", "--truth", "{chaotic}", "--burn-in", "2"],
                         outputs=(), zero_ok=("--burn-in",), skip=("--scales", "--data-range"),
                         extra=(("burn-in=cycles", ["--burn-in", "30"]),)),
                    Base(["evaluate", "{forecast}", "--truth", "{field}"], outputs=(),
                         names=(("--variable", "nosuchvariable"),), skip=("--burn-in",))],
    ("plot",): [Base(["plot", "{posterior}", "--truth", "{chaotic}", "-o", "{out}/f.png"],
                     names=(("--components", "nosuchcomponent"),), zero_ok=("--last",))],
    ("forecast",): [Base(["forecast", "{field}", "--model", "persistence", "--context", "2",
                          "--leads", "2", "-o", "{out}/f.nc", "--no-progress"],
                         outputs=("-o", "--plot"),
                         names=(("--model", "nosuchforecaster"),
                                ("--variable", "nosuchvariable")),
                         zero_ok=("--sample",)),
                    Base(["forecast", "{field}", "--model", "{convlstm_model}", "--context", "2",
                          "--leads", "2", "-o", "{out}/f.nc", "--no-progress"],
                         skip=("numbers",))],
    ("plot-forecast",): [Base(["plot-forecast", "{forecast}", "--truth", "{field}",
                               "-o", "{out}/f.png"],
                              names=(("--variable", "nosuchvariable"),),
                              zero_ok=("--sample",))],
    ("evaluate-disentanglement",): [Base(
        ["evaluate-disentanglement", "{dsvae_model}", "{video}", "--judge", "{judge_model}",
         "--repeats", "1", "--min-judge-accuracy", "0", "--no-progress"],
        outputs=("--json", "--save-judge"),
        names=(("--motion-label", "nosuchlabel"), ("--static-labels", "nosuchlabel")),
        zero_ok=("--min-judge-accuracy",))],
    ("swap",): [Base(["swap", "{dsvae_model}", "{video}", "-o", "{out}/g.png"])],
    ("demo",): [Base(["demo", "-o", "{out}/demo", "--cycles", "30", "--burn-in", "5", "--no-dmm",
                      "--no-progress"],
                     outputs=(), zero_ok=("--burn-in",),
                     extra=(("burn-in=cycles", ["--burn-in", "30"]),
                            ("output-dir-is-a-file", ["-o", "{chaotic}"])))],
    ("train", "dmm"): [Base(["train", "dmm", "{chaotic}", "-o", "{out}/m.pt", "--epochs", "1",
                             "--window", "5", "--rnn-dim", "4", "--correction", "4",
                             "--no-progress"],
                            outputs=("-o", "--checkpoint"),
                            zero_ok=("--look-ahead", "--smoother-iterations", "--anneal-epochs",
                                     "--valid-fraction", "--physics-substeps"),
                            extra=(("correction-a,b", ["--correction", "a,b"]),
                                   ("correction-0", ["--correction", "0"])))],
    ("train", "dsvae"): [Base(["train", "dsvae", "{video}", "-o", "{out}/m.pt", "--epochs", "1",
                               *TINY_DSVAE, "--no-progress"],
                              outputs=("-o", "--checkpoint"),
                              zero_ok=("--anneal-epochs", "--dynamic-kl-weight",
                                       "--adversary-weight"),
                              extra=(("adversarial-unknown-label",
                                      ["--adversarial", "--motion-label", "nosuchlabel"]),))],
    ("train", "judge"): [Base(["train", "judge", "{video}", "-o", "{out}/m.pt", "--epochs", "1",
                               "--conv-channels", "2", "--hidden-dim", "4", "--no-progress"],
                              outputs=("-o", "--checkpoint"),
                              names=(("--labels", "nosuchlabel"),))],
}
BASES[("simulate", "eating")] = [Base(["simulate", "eating", "--clips", "1", "--seconds", "0.5",
                                       "--size", "32", "-o", "{out}/x.nc", "--no-progress"])]
WINDOWED["advection-convdmm"] = ["--latent-channels", "2", "--hidden-channels", "4",
                                 "--rnn-channels", "4", "--encoder-channels", "4", "--n-down",
                                 "1"]
TINY_EATING = ["--crop", "frame", "--crop-size", "8", "--channels", "4", "--hidden", "4",
               "--epochs", "1", "--batch-size", "2", "--no-progress"]
BASES[("train", "eating-sounds")] = [Base(["train", "eating-sounds", "{eating}", "-o",
                                           "{out}/m.pt", *TINY_EATING],
                                          outputs=("-o", "--checkpoint"),
                                          zero_ok=("--valid-fraction",))]
BASES[("sonify",)] = [Base(["sonify", "{eating}", "--model", "{eating_model}", "-o",
                            "{out}/s.wav", "--iterations", "2"], outputs=("-o", "--mux"))]
for _name, _options in WINDOWED.items():
    BASES[("train", _name)] = [Base(
        ["train", _name, "{field}", "-o", "{out}/m.pt", *TINY_FIELD, *_options],
        outputs=("-o", "--checkpoint"), names=(("--variable", "nosuchvariable"),),
        zero_ok=("--anneal-epochs", "--min-anneal", "--valid-fraction", "--n-down"))]
BASES[("train", "recognizer")] = [Base(
    ["train", "recognizer", "{video}", "--dsvae", "{dsvae_model}", "-o", "{out}/m.pt",
     "--steps", "2", "--head-hidden", "4", "--label-fraction", "0.5", "--no-progress"],
    outputs=("-o", "--checkpoint"), names=(("--label", "nosuchlabel"),),
    extra=(("fraction-above-1", ["--label-fraction", "1.5"]),)), Base(
    ["train", "recognizer", "{video}", "--supervised", "-o", "{out}/m.pt", "--steps", "2",
     "--head-hidden", "4", "--conv-channels", "2", "--feature-dim", "4", "--no-progress"],
    skip=("numbers",))]
BASES[("recognize",)] = [Base(["recognize", "{video}", "--model", "{recognizer_model}",
                               "-o", "{out}/p.nc"],
                              extra=(("output-suffix", ["-o", "{out}/p.txt"]),))]

# the nowcasting family (pysteps): a real KNMI composite of tests/data (not a generated kind)
_KNMI_FILE = str(Path(__file__).resolve().parent / "data" / "knmi_crop"
                 / "RAD_NL25_RAP_5min_201008260300.h5")
BASES[("convert-radar",)] = [Base(["convert-radar", "--source", "knmi", _KNMI_FILE,
                                   "-o", "{out}/r.nc", "--no-progress"],
                                  zero_ok=("--min-valid",))]
BASES[("forecast",)].append(Base(["forecast", "{field}", "--model", "extrapolation",
                                  "--context", "2", "--leads", "2", "-o", "{out}/f.nc",
                                  "--no-progress"], skip=("numbers",)))
BASES[("simulate", "sprites-zero-shot")] = [Base(
    ["simulate", "sprites-zero-shot", "--size", "8", "--frames", "2", "--characters", "2",
     "-o", "{out}/x.nc", "--no-progress"])]

BASES[("simulate", "shapes-rgbd")] = [Base(
    ["simulate", "shapes-rgbd", "--clips", "2", "--frames", "2", "--size", "8",
     "-o", "{out}/x.nc", "--no-progress"], zero_ok=("--test-fraction",))]

BASES[("train", "video-judge")] = [Base(
    ["train", "video-judge", "{video}", "-o", "{out}/m.pt", "--epochs", "1", "--conv-channels",
     "2", "--hidden-dim", "4", "--feature-dim", "4", "--no-progress"],
    outputs=("-o", "--checkpoint"),
    names=(("--labels", "nosuchlabel"), ("--frame-labels", "nosuchlabel")))]
BASES[("train", "depth-estimator")] = [Base(
    ["train", "depth-estimator", "{rgbd}", "-o", "{out}/m.pt", "--epochs", "1", "--width", "2",
     "--no-progress"], outputs=("-o", "--checkpoint"))]
BASES[("evaluate-generation",)] = [Base(
    ["evaluate-generation", "{video}", "--judge", "{judge_model}", "--min-judge-accuracy", "0",
     "--batch-size", "2", "--json", "{out}/s.json"],
    outputs=("--json",), zero_ok=("--min-judge-accuracy",),
    extra=(("untrusted-judge", ["--min-judge-accuracy", "0.9"]),))]

# video GANs (train mocogan|cmocogan|dcvgan, generate)
TINY_GAN = ["--epochs", "1", "--batch-size", "4", "--content-dim", "2", "--motion-dim", "2",
            "--noise-dim", "2", "--gen-channels", "2", "--disc-channels", "2", "--no-progress"]
for _name, _data in (("mocogan", "{video}"), ("cmocogan", "{video}"), ("dcvgan", "{rgbd}")):
    BASES[("train", _name)] = [Base(
        ["train", _name, _data, "-o", "{out}/m.pt", *TINY_GAN], outputs=("-o", "--checkpoint"),
        names=(("--depth-variable", "nosuchvariable"),) if _name == "dcvgan" else
        (("--action-label", "nosuchlabel"), ("--content-label", "nosuchlabel"))
        if _name == "cmocogan" else ())]
BASES[("generate",)] = [Base(["generate", "--model", "{cmocogan_model}", "--action", "walk_front",
                              "--content", "red", "-n", "2", "-o", "{out}/g.nc"],
                             outputs=("-o", "--gif", "--mp4"),
                             names=(("--action", "nosuchaction"),
                                    ("--content", "nosuchcontent")),
                             extra=(("fps-0", ["--fps", "0"]),))]

#: option names that are counts, sizes or rates: 0 and -1 are refused
COUNT_WORDS = re.compile(
    r"(epochs|members|^--lr|batch|dim|channels|frames|cycles|^--n$|samples|steps|grid|size|"
    r"clips|digits|canvas|characters|heads|layers|hidden|d-model|patch|repeats|window|rows|"
    r"cols|context|leads|scales|substeps|stride|n-down|iterations|patience|lag|inflation|"
    r"localization|data-range|^--dt$|length|diffusivity|noise|speed|scale|^--df$|spinup|"
    r"weight|fraction|accuracy|burn-in|^--last$|^--sample$|anneal|look-ahead|margin|quantiles|"
    r"^--seed$)")
#: options of every command for which 0 is a valid value
ZERO_OK = ("--seed",)

#: the bad versions of an input file of each kind
DATA_CASES = ("missing", "text", "truncated", "no-variable", "transposed", "renamed-dim", "inf",
              "all-nan", "unsorted-time", "duplicated-time", "single-step")
MODEL_CASES = ("missing", "junk", "truncated", "other-kind", "malicious")


# -- the inputs --------------------------------------------------------------------------------
@pytest.fixture(autouse=True, scope="module")
def _one_parser():
    """``main`` parses with one parser built once (building it is most of a refused call)."""
    import pyro_videossm.cli as cli

    parser = build_parser()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "build_parser", lambda: parser)
        yield


def _call(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse
        return e.code if isinstance(e.code, int) else 1


class _RunsCode:
    """Unpickling calls ``Path.touch(marker)``: a model file that would run code if loaded with
    ``weights_only=False``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _main_variable(kind: str, ds: xr.Dataset) -> str:
    return {"chaotic": "obs", "posterior": "mean", "forecast": "forecast",
            "video": "frames", "clouds": "frames", "rgbd": "frames",
            "eating": "frames"}.get(kind, "obs")


def _bad_data(kind: str, ds: xr.Dataset, case: str, path: Path, good: Path) -> None:
    var = _main_variable(kind, ds)
    time = "lead_time" if kind == "forecast" else "time"
    if case == "text":
        path.write_text("this is not netCDF\n")
    elif case == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "no-variable":
        write_netcdf(ds.drop_vars(var), path)
    elif case == "transposed":
        write_netcdf(ds.assign({var: ds[var].transpose(*reversed(ds[var].dims))}), path)
    elif case == "renamed-dim":
        write_netcdf(ds.rename({ds[var].dims[-1]: "wrongdim"}), path)
    elif case == "inf":
        write_netcdf(ds.assign({var: ds[var].where(ds[var].isnull(), np.inf)}), path)
    elif case == "all-nan":
        write_netcdf(ds.assign({var: ds[var] * np.nan}), path)
    elif case == "unsorted-time":
        n = ds.sizes[time]
        write_netcdf(ds.isel({time: np.r_[n - 1, 0:n - 1]}), path)
    elif case == "duplicated-time":
        n = ds.sizes[time]
        write_netcdf(ds.isel({time: np.r_[0, 0:n - 1]}), path)
    elif case == "single-step":
        write_netcdf(ds.isel({time: slice(0, 1)}), path)
    else:
        raise AssertionError(case)


OTHER_KIND = {"dsvae_model": "convlstm_model", "judge_model": "dsvae_model",
              "convlstm_model": "dsvae_model", "dmm_model": "convlstm_model",
              "animator_model": "dsvae_model", "recognizer_model": "dsvae_model",
              "eating_model": "animator_model",
              "cmocogan_model": "dsvae_model"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """The valid input files (``chaotic``, ``field``, ``video``, ``posterior``, ``forecast``,
    model files) and every bad version (``chaotic.inf``, ``dsvae_model.junk``, ...)."""
    d = tmp_path_factory.mktemp("inputs")
    f = {k: d / n for k, n in (("chaotic", "l63.nc"), ("field", "heat.nc"),
                               ("video", "sprites.nc"), ("posterior", "post.nc"),
                               ("forecast", "fc.nc"), ("dsvae_model", "dsvae.pt"),
                               ("judge_model", "judge.pt"), ("convlstm_model", "convlstm.pt"),
                               ("dmm_model", "dmm.pt"), ("clouds", "clouds.nc"),
                               ("animator_model", "animator.pt"),
                               ("recognizer_model", "recognizer.pt"),
                               ("cmocogan_model", "cmocogan.pt"))}
    ok = [["simulate", "lorenz63", "--cycles", "30", "-o", f["chaotic"], "--no-progress"],
          ["simulate", "heat", "--samples", "2", "--steps", "12", "--grid", "8",
           "-o", f["field"], "--no-progress"],
          ["simulate", "sprites", "--size", "8", "--frames", "3", "--characters", "3",
           "--split", "all", "-o", f["video"], "--no-progress"],
          ["assimilate", f["chaotic"], "--method", "etkf", "--members", "5", "-o",
           f["posterior"], "--no-progress"],
          ["forecast", f["field"], "--model", "persistence", "--context", "2", "--leads", "2",
           "-o", f["forecast"], "--no-progress"],
          ["train", "dsvae", f["video"], "-o", f["dsvae_model"], "--epochs", "1", *TINY_DSVAE,
           "--no-progress"],
          ["train", "judge", f["video"], "-o", f["judge_model"], "--epochs", "1",
           "--conv-channels", "2", "--hidden-dim", "4", "--no-progress"],
          ["train", "convlstm", f["field"], "-o", f["convlstm_model"], *TINY_FIELD,
           *WINDOWED["convlstm"]],
          ["train", "dmm", f["chaotic"], "-o", f["dmm_model"], "--epochs", "1", "--window", "5",
           "--rnn-dim", "4", "--correction", "4", "--no-progress"],
          ["simulate", "clouds", "--clips", "4", "--frames", "3", "--size", "8",
           "-o", f["clouds"], "--no-progress"],
          ["train", "flow-animator", f["clouds"], "-o", f["animator_model"], *TINY_ANIMATOR,
           "--no-progress"]]
    f["rgbd"] = d / "shapes.nc"
    ok.append(["simulate", "shapes-rgbd", "--clips", "4", "--frames", "3", "--size", "8",
               "-o", f["rgbd"], "--no-progress"])
    ok.append(["train", "recognizer", f["video"], "--dsvae", f["dsvae_model"], "-o",
               f["recognizer_model"], "--steps", "2", "--head-hidden", "4", "--no-progress"])
    f.update(eating=d / "eating.nc", eating_model=d / "eating.pt")
    ok += [["simulate", "eating", "--clips", "2", "--seconds", "0.5", "--size", "32", "-o",
            f["eating"], "--no-progress"],
           ["train", "eating-sounds", f["eating"], "-o", f["eating_model"], *TINY_EATING]]
    for argv in ok:
        assert _call([str(a) for a in argv]) == 0, argv
    assert _call(["train", "cmocogan", str(f["video"]), "-o", str(f["cmocogan_model"]),
                  *TINY_GAN]) == 0
    for kind in ("chaotic", "field", "video", "posterior", "forecast", "clouds", "rgbd",
                 "eating"):
        ds = xr.load_dataset(f[kind])
        for case in DATA_CASES:
            path = d / f"{kind}.{case}.nc"
            f[f"{kind}.{case}"] = path
            if case != "missing":
                _bad_data(kind, ds, case, path, f[kind])
    for kind, other in OTHER_KIND.items():
        f[f"{kind}.missing"] = d / f"{kind}.missing.pt"
        f[f"{kind}.junk"] = d / f"{kind}.junk.pt"
        f[f"{kind}.junk"].write_bytes(os.urandom(256))
        f[f"{kind}.truncated"] = d / f"{kind}.truncated.pt"
        data = f[kind].read_bytes()
        f[f"{kind}.truncated"].write_bytes(data[: len(data) // 2])
        f[f"{kind}.other-kind"] = f[other]
        f[f"{kind}.malicious"] = d / f"{kind}.malicious.pt"
        torch.save({"state": _RunsCode(d / "EXECUTED")}, f[f"{kind}.malicious"])
    # a plain pickle too (not a torch zip file)
    f["dsvae_model.pickle"] = d / "pickle.pt"
    f["dsvae_model.pickle"].write_bytes(pickle.dumps(_RunsCode(d / "EXECUTED")))
    return f


# -- the cases ---------------------------------------------------------------------------------
@dataclass
class Case:
    argv: list[str]
    id: str
    links: dict[str, str] = field(default_factory=dict)  # {out-relative name: input name}
    needs_no_cuda: bool = False


def _placeholders(argv: list[str]) -> list[str]:
    return [m for a in argv for m in re.findall(r"\{(\w+)\}", a) if m != "out"]


def _with_option(argv: list[str], flag: str, values: list[str], nargs) -> list[str]:
    """``argv`` with ``flag`` set to ``values`` (replacing its values if present)."""
    argv = list(argv)
    if flag in argv:
        i = argv.index(flag)
        j = i + 1
        while j < len(argv) and not argv[j].startswith("-"):
            j += 1
        return argv[:i] + [flag, *values] + argv[j:]
    return argv + [flag, *values]


def _replace(argv: list[str], old: str, new: str) -> list[str]:
    return [a.replace("{" + old + "}", "{" + new + "}") for a in argv]


def _cases_of(command: tuple[str, ...], parser: argparse.ArgumentParser, base: Base, k: int):
    name = " ".join(command) + ("" if k == 0 else f"#{k}")
    argv = base.argv
    # bad input files
    for slot in dict.fromkeys(_placeholders(argv)):
        kind = slot
        cases = MODEL_CASES if kind.endswith("_model") else DATA_CASES
        for case in cases:
            yield Case(_replace(argv, slot, f"{slot}.{case}"), f"{name}: {slot} {case}")
        if slot == "dsvae_model":
            yield Case(_replace(argv, slot, "dsvae_model.pickle"), f"{name}: {slot} pickle")
    # counts, sizes and rates
    if "numbers" not in base.skip:
        for action in parser._actions:
            flag = next((s for s in action.option_strings if s.startswith("--")), None)
            if (flag is None or action.type not in (int, float) or flag in base.skip
                    or not COUNT_WORDS.search(flag) or action.nargs == 2):
                continue
            for value in ("0", "-1"):
                if value == "0" and (flag in base.zero_ok or flag in ZERO_OK):
                    continue
                yield Case(_with_option(argv, flag, [value], action.nargs),
                           f"{name}: {flag} {value}")
    for flag, value in base.names:
        yield Case(_with_option(argv, flag, [value], None), f"{name}: unknown {flag}")
    for label, args in base.extra:
        out = list(argv)
        for i in range(0, len(args), 1):
            if args[i].startswith("-") and i + 1 < len(args) and not args[i + 1].startswith("-"):
                out = _with_option(out, args[i], [args[i + 1]], None)
            elif args[i].startswith("-"):
                out = out + [args[i]]
        yield Case(out, f"{name}: {label}")
    # outputs
    inputs = list(dict.fromkeys(_placeholders(argv)))
    for flag in base.outputs:
        suffix = ".png" if flag == "--plot" else (".json" if flag == "--json" else
                                                   ".nc" if "assimilate" in command else ".pt")
        target = next((a for i, a in enumerate(argv) if i and argv[i - 1] == flag), None)
        if target is not None:
            suffix = Path(target).suffix
        yield Case(_with_option(argv, flag, ["{out}"], None), f"{name}: {flag} is a folder")
        yield Case(_with_option(argv, flag, [f"{{out}}/nope/x{suffix}"], None),
                   f"{name}: {flag} in a missing folder")
        for slot in inputs:
            yield Case(_with_option(argv, flag, ["{" + slot + "}"], None),
                       f"{name}: {flag} is input {slot}")
            for link in ("symlink", "hardlink"):
                yield Case(_with_option(argv, flag, [f"{{out}}/{link}{suffix}"], None),
                           f"{name}: {flag} is a {link} to {slot}",
                           links={f"{link}{suffix}": f"{link}:{slot}"})
    # devices
    if any("--device" in a.option_strings for a in parser._actions):
        yield Case(_with_option(argv, "--device", ["cuda"], None), f"{name}: --device cuda",
                   needs_no_cuda=True)
        yield Case(_with_option(argv, "--device", ["nonsense"], None),
                   f"{name}: --device nonsense")


#: calls that name no sub-command
UNKNOWN_COMMANDS = (["nosuchcommand"], ["simulate", "nosuchkind", "-o", "{out}/x.nc"],
                    ["train", "nosuchmodel", "{chaotic}", "-o", "{out}/m.pt"])


def all_cases() -> list[Case]:
    cases = [Case(argv, f"unknown command: {' '.join(argv[:2])}") for argv in UNKNOWN_COMMANDS]
    for command, parser in LEAVES.items():
        for k, base in enumerate(BASES.get(command, [])):
            cases.extend(_cases_of(command, parser, base, k))
    return cases


#: cases that are not fixed yet: {case id: reason}
XFAIL: dict[str, str] = {}


def _params():
    for case in all_cases():
        marks = ()
        if case.id in XFAIL:
            marks = pytest.mark.xfail(strict=True, reason=XFAIL[case.id])
        yield pytest.param(case, id=case.id, marks=marks)


# -- the checks --------------------------------------------------------------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_every_subcommand_has_a_base_call():
    missing = [" ".join(c) for c in LEAVES if c not in BASES]
    assert not missing, f"add a base call to BASES for: {missing}"


def test_the_base_calls_are_valid():
    """Each case differs from a call that parses (the catalogue tests the input, not typos)."""
    parser = build_parser()
    for bases in BASES.values():
        for base in bases:
            argv = [re.sub(r"\{\w+\}", "x", a) for a in base.argv]
            parser.parse_args(argv)


@pytest.mark.parametrize("command, k", [(c, k) for c, bases in BASES.items()
                                        for k in range(len(bases))],
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v))
def test_the_base_call_succeeds(command, k, inputs, tmp_path, capsys):
    """Each case is a base call with one thing wrong: the base call itself works."""
    argv = [re.sub(r"\{(\w+)\}", lambda m: str(tmp_path if m.group(1) == "out"
                                                else inputs[m.group(1)]), a)
            for a in BASES[command][k].argv]
    status = _call(argv)
    assert status == 0, capsys.readouterr().err[-500:]


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input_exits_2_with_one_line(case, inputs, tmp_path, capsys):
    if case.needs_no_cuda and torch.cuda.is_available():
        pytest.skip("cuda is available here")
    out = tmp_path / "out"
    out.mkdir()
    for name, spec in case.links.items():
        how, slot = spec.split(":")
        (os.symlink if how == "symlink" else os.link)(inputs[slot], out / name)
    argv = [re.sub(r"\{(\w+)\}", lambda m: str(out if m.group(1) == "out"
                                                else inputs[m.group(1)]), a)
            for a in case.argv]
    used = [inputs[s] for s in _placeholders(case.argv) if inputs[s].exists()]
    before = {p: _digest(p) for p in used}
    in_folder = inputs["chaotic"].parent
    listing_in, listing_out = _listing(in_folder), _listing(out)
    capsys.readouterr()
    status = _call(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, f"exit {status}: {err[-3:]}"
    assert len(err) == 1, err
    assert _listing(out) == listing_out
    assert _listing(in_folder) == listing_in
    assert {p: _digest(p) for p in used} == before
    assert not (in_folder / "EXECUTED").exists()


# -- resuming a checkpoint of another run ------------------------------------------------------
def _one_line_refusal(argv: list[str], capsys, *files: Path) -> str:
    """The error of a call that fails with exit 2: one line on stderr (the run's description
    of its model is printed only once the checkpoint is accepted)."""
    before = {p: _digest(p) for p in files}
    capsys.readouterr()
    status = _call([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "error" in err[0], (status, err)
    assert {p: _digest(p) for p in files} == before
    return err[-1]


def test_resume_refuses_a_checkpoint_of_other_data_or_options(inputs, tmp_path, capsys):
    ckpt, model = tmp_path / "ck.pt", tmp_path / "m.pt"
    base = ["train", "convlstm", inputs["field"], "-o", model, *TINY_FIELD,
            *WINDOWED["convlstm"], "--checkpoint", ckpt]
    assert _call([str(a) for a in base]) == 0
    other = tmp_path / "other.nc"
    assert _call(["simulate", "heat", "--samples", "2", "--steps", "12", "--grid", "8",
                  "--seed", "5", "-o", str(other), "--no-progress"]) == 0
    model.unlink()
    resume = [a if a != inputs["field"] else other for a in base] + ["--resume", "--epochs",
                                                                       "2"]
    err = _one_line_refusal(resume, capsys, ckpt, inputs["field"])
    assert "other training data" in err
    # other windows of the same file are other data too
    err = _one_line_refusal(base + ["--resume", "--epochs", "2", "--context", "3"], capsys, ckpt)
    assert "training items" in err or "other training data" in err
    err = _one_line_refusal(base + ["--resume", "--epochs", "2", "--normalize", "robust"],
                            capsys, ckpt)
    assert "other training data" in err
    err = _one_line_refusal(base + ["--resume", "--epochs", "2", "--stem-channels", "2"],
                            capsys, ckpt)
    assert "another model configuration" in err and "stem_channels" in err
    assert not model.exists()
    # the same run resumes
    assert _call([str(a) for a in base + ["--resume", "--epochs", "2"]]) == 0
    assert model.exists()


def test_resume_refuses_a_checkpoint_of_other_physics(inputs, tmp_path, capsys):
    ckpt, model = tmp_path / "ck.pt", tmp_path / "m.pt"
    base = ["train", "dmm", inputs["chaotic"], "-o", model, "--epochs", "1", "--window", "5",
            "--rnn-dim", "4", "--correction", "4", "--no-progress", "--checkpoint", ckpt]
    assert _call([str(a) for a in base]) == 0
    model.unlink()
    err = _one_line_refusal(base + ["--resume", "--epochs", "2", "--rho", "30"], capsys, ckpt)
    assert "another model configuration" in err and "physics." in err
    assert not model.exists()


def test_missing_checkpoint_folder_is_refused_before_training(tmp_path):
    from pyro_videossm.errors import InputError
    from pyro_videossm.infer import LossObjective, TrainConfig, Trainer

    module = torch.nn.Linear(2, 1)
    steps = []

    def loss(m, batch):
        steps.append(1)
        return ((m(batch["x"]) - batch["y"]) ** 2).sum()

    config = TrainConfig(epochs=1, batch_size=2, progress=False,
                         checkpoint_path=str(tmp_path / "nope" / "ck.pt"))
    with pytest.raises(InputError, match="checkpoint folder .* does not exist"):
        Trainer(LossObjective(module, loss), config).fit({"x": torch.zeros(4, 2),
                                                          "y": torch.zeros(4, 1)})
    assert steps == [] and not (tmp_path / "nope").exists()
