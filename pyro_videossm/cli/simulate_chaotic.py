"""``videossm simulate lorenz63|lorenz96``: the standard assimilation benchmark settings."""

from __future__ import annotations

from pyro_videossm.cli.simulate import register_simulator
from pyro_videossm.data.chaotic import STANDARD_SETTINGS, simulate


def _arguments(parser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--cycles", type=int, help="observation cycles after spin-up")
    parser.add_argument("--dt", type=float, help="RK4 integration step")
    parser.add_argument("--steps-per-obs", type=int, help="integration steps between observations")
    parser.add_argument("--obs-operator", default="all",
                        help="'all', 'every:K' or 'subset:I,J,...' (default all)")
    parser.add_argument("--obs-noise-std", type=float, help="observation noise std (scale for t)")
    parser.add_argument("--obs-noise", choices=["gaussian", "student_t"], default="gaussian",
                        help="observation noise distribution")
    parser.add_argument("--obs-noise-df", type=float, default=4.0,
                        help="degrees of freedom of Student-t noise (default 4)")
    parser.add_argument("--process-noise-std", type=float, default=0.0,
                        help="diffusion q of additive process noise (default 0)")
    parser.add_argument("--spinup", type=float, help="model time discarded before cycle 1")


def _builder(name: str, extra=None):
    def build(args):
        params = extra(args) if extra else {}
        return simulate(
            name, cycles=args.cycles, dt=args.dt, steps_per_obs=args.steps_per_obs,
            obs_operator=args.obs_operator, obs_noise_std=args.obs_noise_std,
            obs_noise_dist=args.obs_noise, obs_noise_df=args.obs_noise_df,
            process_noise_std=args.process_noise_std, spinup=args.spinup, seed=args.seed,
            **params,
        )

    return build


def _l63_arguments(parser) -> None:
    _arguments(parser)
    parser.add_argument("--rho", type=float, default=28.0)
    parser.add_argument("--sigma", type=float, default=10.0)
    parser.add_argument("--beta", type=float, default=8.0 / 3.0)


def _l96_arguments(parser) -> None:
    _arguments(parser)
    parser.add_argument("--n", type=int, default=40, help="number of variables (default 40)")
    parser.add_argument("--forcing", type=float, default=8.0, help="forcing F (default 8)")


_s63, _s96 = STANDARD_SETTINGS["lorenz63"], STANDARD_SETTINGS["lorenz96"]
register_simulator(
    "lorenz63",
    f"Lorenz-63 (defaults: dt {_s63.dt}, observe all every {_s63.steps_per_obs} steps, "
    f"R = 2 I, {_s63.cycles} cycles)",
    _l63_arguments,
    _builder("lorenz63", lambda a: {"rho": a.rho, "sigma": a.sigma, "beta": a.beta}),
)
register_simulator(
    "lorenz96",
    f"Lorenz-96 (defaults: N 40, F 8, dt {_s96.dt}, observe all every step, R = I, "
    f"{_s96.cycles} cycles)",
    _l96_arguments,
    _builder("lorenz96", lambda a: {"n": a.n, "forcing": a.forcing}),
)
