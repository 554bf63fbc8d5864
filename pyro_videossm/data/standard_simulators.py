"""The built-in simulators of :data:`~pyro_videossm.data.simulators.SIMULATORS`.

``lorenz63`` and ``lorenz96`` (the standard assimilation benchmark settings, with their
parameters as named options), ``chaotic`` (any system: ``--system NAME|module:Class``),
``heat``, ``moving-digits``, ``sprites``, ``clouds``, ``sprites-zero-shot`` and
``shapes-rgbd``. The data modules are imported on the first call.
"""

from __future__ import annotations

from pathlib import Path

from pyro_videossm.data.chaotic import STANDARD_SETTINGS
from pyro_videossm.data.moving_digits import STANDARD
from pyro_videossm.data.simulators import (
    CHAOTIC_OPTIONS,
    SIMULATORS,
    SYSTEM_PARAMETERS,
    Option,
    Simulator,
    system_simulator,
)
from pyro_videossm.data.sprites import N_CHARACTERS, N_TRAIN_CHARACTERS, SPLITS, STATIC_FACTORS

_s63, _s96 = STANDARD_SETTINGS["lorenz63"], STANDARD_SETTINGS["lorenz96"]

#: The standard assimilation systems: name -> (help, named parameters).
_STANDARD_SYSTEMS: dict[str, tuple[str, tuple[Option, ...]]] = {
    "lorenz63": (
        f"Lorenz-63 (defaults: dt {_s63.dt}, observe all every {_s63.steps_per_obs} steps, "
        f"R = 2 I, {_s63.cycles} cycles)",
        (Option("rho", "rho (default 28)", float),
         Option("sigma", "sigma (default 10)", float),
         Option("beta", "beta (default 8/3)", float))),
    "lorenz96": (
        f"Lorenz-96 (defaults: N 40, F 8, dt {_s96.dt}, observe all every step, R = I, "
        f"{_s96.cycles} cycles)",
        (Option("n", "number of variables (default 40)", int),
         Option("forcing", "forcing F (default 8)", float))),
}
for _name, (_help, _parameters) in _STANDARD_SYSTEMS.items():
    SIMULATORS.register(system_simulator(_name, help=_help, parameters=_parameters))

SIMULATORS.register(Simulator(
    "chaotic",
    "pyro_videossm.data.chaotic:simulate",
    help="any dynamical system: --system NAME or module:Class, parameters with --param K=V",
    options=(Option("system", "registered system name or import path module:Class",
                    required=True),) + CHAOTIC_OPTIONS + (SYSTEM_PARAMETERS,),
))

SIMULATORS.register(Simulator(
    "heat",
    "pyro_videossm.data.heat:simulate_heat",
    help="heat diffusion from a hot disk, FTCS, Cauchy noise (research: --grid 100)",
    options=(
        Option("seed", "random seed (default 0)", int),
        Option("samples", "sequences (default 8)", int),
        Option("steps", "recorded frames per sequence, the initial disk included (default 20)",
               int),
        Option("grid", "grid points per side (default 32; the research uses 100)", int),
        Option("length", "plate side; dx = length / grid (default 10)", float),
        Option("diffusivity", "D (default 4)", float),
        Option("steps_per_frame", "FTCS steps between recorded frames (default 3)", int),
        Option("process_noise_scale", "Cauchy scale of the process noise per FTCS step "
               "(default 3)", float),
        Option("obs_noise_scale", "Cauchy scale of the observation noise (default 10)", float),
        Option("clip_margin", "states clipped to [0, T_hot + margin] (default 300)", float),
        Option("clip_obs", "clip the observations to the same range", kind="switch"),
        Option("device", "torch device (default cpu)"),
    ),
))

SIMULATORS.register(Simulator(
    "moving-digits",
    "pyro_videossm.data.moving_digits:moving_digits",
    help="moving digits (MNIST or bundled): 64x64 canvas, 2 digits, 3.6 px/frame, reflecting "
         "borders, 20 frames",
    options=(
        Option("n_clips", "number of clips (default 1000)", int, flag="--clips"),
        Option("split", "digits from the training part, the held-out test part, or all "
               "(default train)", choices=("train", "test", "all")),
        Option("seed", "random seed (default: 0 for train, a fixed seed for test)", int),
        Option("mnist_path", "digit file, e.g. MNIST: .npz with images (N, h, w) uint8 and "
               "labels (N,) (default: scikit-learn's bundled 8x8 digits upscaled to 28x28)",
               Path, flag="--mnist"),
        Option("canvas", f"canvas side in pixels (default {STANDARD['canvas']})", int),
        Option("n_digits", f"digits per clip (default {STANDARD['n_digits']})", int,
               flag="--digits"),
        Option("n_frames", f"frames per clip (default {STANDARD['n_frames']})", int,
               flag="--frames"),
        Option("n_context", "context frames, recorded as an attribute (default: half the "
               "frames, 10 of 20)", int, flag="--context"),
        Option("speed", f"pixels per frame (default {STANDARD['speed']})", float),
    ),
))

SIMULATORS.register(Simulator(
    "sprites",
    "pyro_videossm.data.sprites:make_sprites",
    help="procedural sprites: 1296 characters (4 static factors x 6) x 9 motions, 8 RGB frames",
    options=(
        Option("size", "frame side in pixels (default 64)", int),
        Option("frames", "frames per clip (default 8)", int),
        Option("split", f"training characters ({N_TRAIN_CHARACTERS}), test characters "
               f"({N_CHARACTERS - N_TRAIN_CHARACTERS}) or all, with a 'split' variable "
               "(default all)", choices=tuple(SPLITS)),
        Option("characters", "keep only the first N characters of the shuffled split (each in "
               "all 9 motions; with --split all, 1000:296 of them train:test)", int),
        Option("seed", "seed of the character shuffle that makes the split (default 0)", int),
    ),
    defaults={"split": "all", "lazy": True},
))

SIMULATORS.register(Simulator(
    "clouds",
    "pyro_videossm.data.clouds:simulate_clouds",
    help="procedural clouds (power-law fields, thresholded and shaded) moved by smooth random "
         "flows with growth and decay; the true flow is stored (32x32, 16 frames)",
    options=(
        Option("clips", "number of clips (default 64)", int),
        Option("frames", "frames per clip (default 16)", int),
        Option("size", "frame side in pixels (default 32; 64 for the larger configuration)",
               int),
        Option("seed", "random seed (default 0)", int),
        Option("exponent", "spectral exponent: power spectrum |k|^-exponent (default 3)",
               float),
        Option("cover", "cloudy fraction of the first frame (default 0.5)", float),
        Option("softness", "shading scale of the field above the threshold (default 0.5)",
               float),
        Option("speed", "std of the translation, pixels per frame (default 0.5)", float),
        Option("rotation", "std of the rotation rate, radians per frame (default 0.02)", float),
        Option("divergence", "std of the divergence rate, per frame (default 0.01)", float),
        Option("growth", "growth/decay amplitude per frame (0: pure advection; default 0.03)",
               float),
    ),
))

SIMULATORS.register(Simulator(
    "sprites-zero-shot",
    "pyro_videossm.data.sprites_zero_shot:make_zero_shot_sprites",
    help="procedural sprites with a zero-shot split: 18 of the 54 (motion, top colour) pairs "
         "never in training (variables split and unseen)",
    options=(
        Option("size", "frame side in pixels (default 64)", int),
        Option("frames", "frames per clip (default 8)", int),
        Option("characters", "keep only the first N characters of the shuffled split "
               "(1000:296 train:test)", int),
        Option("seed", "seed of the character shuffle (default 0; the unseen pairs are fixed)",
               int),
        Option("attribute", "character attribute paired with the motion (default top)",
               choices=tuple(STATIC_FACTORS)),
    ),
    defaults={"lazy": True},
))

SIMULATORS.register(Simulator(
    "shapes-rgbd",
    "pyro_videossm.data.shapes_rgbd:make_shapes_rgbd",
    help="ray-cast 3D scenes (sphere, cube, cylinder, torus) with exact depth: 7 actions x 4 "
         "shapes x 6 colours, frames + depth (16 frames, 64x64; 32x32 for CPU)",
    options=(
        Option("clips", "number of clips (default 256)", int),
        Option("frames", "frames per clip (default 16)", int),
        Option("size", "frame side in pixels (default 64; 32 for the CPU configuration)", int),
        Option("seed", "random seed (default 0)", int),
        Option("max_objects", "1: the main object only; 2: a still second object in about "
               "half the clips (default 2)", int, choices=(1, 2)),
        Option("test_fraction", "fraction of the clips marked split = 1 (default 0.25)", float),
    ),
))
