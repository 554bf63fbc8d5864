"""``videossm simulate heat``: heat diffusion from hot disks with Cauchy noise (2D fields)."""

from __future__ import annotations

from pyro_videossm.cli.simulate import register_simulator
from pyro_videossm.data.heat import simulate_heat


def _heat_arguments(parser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--samples", type=int, default=8, help="sequences (default 8)")
    parser.add_argument("--steps", type=int, default=20,
                        help="recorded frames per sequence, the initial disk included (default 20)")
    parser.add_argument("--grid", type=int, default=32,
                        help="grid points per side (default 32; the research uses 100)")
    parser.add_argument("--length", type=float, default=10.0,
                        help="plate side; dx = length / grid (default 10)")
    parser.add_argument("--diffusivity", type=float, default=4.0, help="D (default 4)")
    parser.add_argument("--steps-per-frame", type=int, default=3,
                        help="FTCS steps between recorded frames (default 3)")
    parser.add_argument("--process-noise-scale", type=float, default=3.0,
                        help="Cauchy scale of the process noise per FTCS step (default 3)")
    parser.add_argument("--obs-noise-scale", type=float, default=10.0,
                        help="Cauchy scale of the observation noise (default 10)")
    parser.add_argument("--clip-margin", type=float, default=300.0,
                        help="states clipped to [0, T_hot + margin] (default 300)")
    parser.add_argument("--clip-obs", action="store_true",
                        help="clip the observations to the same range")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")


def _build_heat(args):
    return simulate_heat(
        samples=args.samples, steps=args.steps, grid=args.grid, length=args.length,
        diffusivity=args.diffusivity, steps_per_frame=args.steps_per_frame,
        process_noise_scale=args.process_noise_scale, obs_noise_scale=args.obs_noise_scale,
        clip_margin=args.clip_margin, clip_obs=args.clip_obs, seed=args.seed,
        device=args.device, progress=args.progress,
    )


register_simulator(
    "heat",
    "heat diffusion from a hot disk, FTCS, Cauchy noise (research: --grid 100)",
    _heat_arguments,
    _build_heat,
)
