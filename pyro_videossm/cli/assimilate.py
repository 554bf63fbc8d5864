"""``videossm assimilate obs.nc --method NAME [--system NAME|module:Class] -o posterior.nc``.

Any netCDF file with ``obs(time, component)`` is accepted: what its attributes do not say
(dynamics, observation noise, the time step of a datetime axis) is given by ``--system``,
``--obs-noise`` and ``--time-unit``, and everything missing is reported in one line (see
:mod:`pyro_videossm.data.observation_settings`).
"""

from __future__ import annotations

from pathlib import Path

from pyro_videossm.assimilate import available_methods, get_method
from pyro_videossm.cli.common import add_output, add_progress_flag, check_output_path, say
from pyro_videossm.data.chaotic import load_observations
from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.data.simulators import parse_key_values
from pyro_videossm.errors import InputError

#: CLI flag -> method option name; only flags given on the command line are passed.
OPTION_FLAGS = {
    "members": "members",
    "inflation": "inflation",
    "localization": "localization",
    "lag": "lag",
    "model": "model",
    "guide": "guide",
}


def register(sub) -> None:
    p = sub.add_parser("assimilate", help="run an assimilation method on observations")
    p.add_argument("observations", type=Path, help="netCDF with obs(time, component)")
    p.add_argument("--method", required=True,
                   help=f"method name (built in: {', '.join(available_methods())})")
    p.add_argument("--members", type=int, help="ensemble members or particles")
    p.add_argument("--inflation", type=float, help="multiplicative inflation factor")
    p.add_argument("--localization", type=float, help="localisation radius (grid points)")
    p.add_argument("--lag", type=int, help="smoother lag in cycles (EnKS; default: full)")
    p.add_argument("--model", type=str, help="trained model file (learned methods)")
    p.add_argument("--guide", type=str, help="which guide of a learned method to use")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other method option, e.g. --set rotate=True (repeatable)")
    p.add_argument("--system", metavar="NAME|module:Class",
                   help="forecast dynamics: a registered system or an import path (default: "
                        "the system named in the observations' attributes)")
    p.add_argument("--system-param", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter of the forecast dynamics, e.g. --system-param rho=30 "
                        "(repeatable; others: the observations' own if it is their system)")
    p.add_argument("--obs-noise", metavar="STD[,STD...]",
                   help="observation noise std, one or one per component (default: the "
                        "observations' 'obs_noise_std' or 'obs_error_std' variable, else their "
                        "'obs_noise_std' attribute)")
    p.add_argument("--time-unit", metavar="DURATION",
                   help="how long one model time unit lasts when 'time' holds dates, e.g. 5D "
                        "or 6h (default: the 'model_time_unit' attribute)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--samples", type=int, default=0,
                   help="posterior members to store as 'samples' (default 0)")
    add_output(p, help="posterior netCDF to write")
    add_progress_flag(p)
    p.set_defaults(func=run)


def parse_set_options(pairs: list[str], flag: str = "--set") -> dict:
    """``["rotate=True", "jitter=0.1"]`` -> ``{"rotate": True, "jitter": 0.1}``."""
    return parse_key_values(pairs, flag)


def parse_obs_noise(text: str | None) -> float | list[float] | None:
    """``"0.5"`` -> 0.5; ``"1,2,1"`` -> ``[1.0, 2.0, 1.0]``; one-line error otherwise."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"--obs-noise must be a number or comma-separated numbers, got "
                         f"{text!r}") from None
    return values[0] if len(values) == 1 else values


def run(args) -> int:
    out = check_output_path(args.output, inputs=(args.observations,))
    options = {opt: getattr(args, flag) for flag, opt in OPTION_FLAGS.items()
               if getattr(args, flag) is not None}
    options.update(parse_set_options(args.set))
    method = get_method(args.method, **options)
    obs = load_observations(args.observations)
    obs.encoding["source"] = str(args.observations)  # named so in error messages
    if args.samples < 0:
        raise InputError(f"--samples must be >= 0, got {args.samples}")
    system_parameters = parse_set_options(args.system_param, "--system-param")
    posterior = method(obs, system=args.system, system_parameters=system_parameters,
                       obs_noise=parse_obs_noise(args.obs_noise), time_unit=args.time_unit,
                       seed=args.seed, device=args.device, progress=args.progress,
                       n_samples=args.samples)
    posterior.attrs["observations_file"] = str(args.observations)
    write_netcdf(posterior, out)
    say(f"wrote {out}: {args.method} posterior over {posterior.sizes['time']} cycles "
        f"({posterior.attrs['seconds_per_cycle'] * 1e3:.2f} ms per cycle)")
    return 0
