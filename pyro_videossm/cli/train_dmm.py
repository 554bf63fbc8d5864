"""``videossm train dmm obs.nc -o model.pt``: train a (hybrid-physics) DMM for assimilation.

Trains on windows of ``--window`` cycles cut from one long observation record (the
``videossm simulate lorenz63|lorenz96`` layout) with the shared Trainer
(:func:`pyro_videossm.experiments.dmm.train_hybrid_dmm`). With known physics (``--physics
auto``, the default: the system named in the data; or ``lorenz63``/``lorenz96``
with parameters such as ``--rho 24`` that may be wrong) the latent is the physical state and the
transition is RK4 plus a learned correction; ``--physics none`` trains a purely neural DMM.
The model file holds the architecture, so ``videossm assimilate new_obs.nc --method dmm
--model model.pt -o posterior.nc`` rebuilds it. The defaults of the flags are those of
:class:`~pyro_videossm.experiments.dmm.HybridDMMOptions`: the tuned Lorenz-63 recipe, about
10 s on one core for the standard 1000-cycle record (docs/TRAINING.md, "Defaults of
``videossm train dmm``").
"""

from __future__ import annotations

import torch

from pyro_videossm.cli.common import say
from pyro_videossm.cli.train import register_trainer
from pyro_videossm.data.chaotic import load_observations
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.dmm import HybridDMMOptions, train_hybrid_dmm

PHYSICS = ("auto", "lorenz63", "lorenz96", "none")
#: the defaults of every flag (``--epochs``, ``--lr`` and ``--batch-size`` included)
DEFAULTS = HybridDMMOptions()


def _arguments(parser) -> None:
    parser.add_argument("--physics", choices=PHYSICS, default="auto",
                        help="known dynamics: auto (the system named in the data), lorenz63, "
                             "lorenz96, or none (neural transition); default auto")
    parser.add_argument("--rho", type=float, help="Lorenz-63 rho of the known physics")
    parser.add_argument("--sigma", type=float, help="Lorenz-63 sigma of the known physics")
    parser.add_argument("--beta", type=float, help="Lorenz-63 beta of the known physics")
    parser.add_argument("--forcing", type=float, help="Lorenz-96 forcing of the known physics")
    parser.add_argument("--guide", choices=["smoothing", "filtering", "meanfield"],
                        default="smoothing", help="guide (default smoothing)")
    parser.add_argument("--window", type=int, default=DEFAULTS.window,
                        help=f"cycles per training window (default {DEFAULTS.window}); the dmm "
                             "method assimilates in windows of the same length")
    parser.add_argument("--stride", type=int,
                        help="cycles between window starts (default window / 5)")
    parser.add_argument("--valid-fraction", type=float, default=0.0,
                        help="final fraction of the record held out for validation (default 0)")
    parser.add_argument("--patience", type=int,
                        help="early stopping: epochs without validation improvement")
    parser.add_argument("--rnn-dim", type=int, default=DEFAULTS.rnn_dim,
                        help=f"guide RNN units (default {DEFAULTS.rnn_dim})")
    parser.add_argument("--correction", default="64,64",
                        help="hidden widths of the learned correction, e.g. 64,64; 'none' for "
                             "pure physics (default 64,64)")
    parser.add_argument("--physics-substeps", type=int, default=DEFAULTS.physics_substeps,
                        help="RK4 steps per cycle of the known physics, at most the data's "
                             f"own (default {DEFAULTS.physics_substeps}; 0: the data's "
                             "integration step, exact but slower)")
    parser.add_argument("--guide-substeps", type=int,
                        help="RK4 steps per cycle in the guide's forecast (default: exact)")
    parser.add_argument("--look-ahead", type=int, default=0,
                        help="future observations the guide reads through the linearised "
                             "physics at each step (default 0: off; turns off "
                             "--smoother-iterations)")
    parser.add_argument("--smoother-iterations", type=int,
                        default=DEFAULTS.smoother_iterations,
                        help="smoothing guide with physics: relinearisations of the backward "
                             "messages of all later observations (default "
                             f"{DEFAULTS.smoother_iterations}; 3: the earlier default; 0: off)")
    parser.add_argument("--learn-obs-noise", action="store_true",
                        help="learn the observation noise instead of using obs_noise_std")
    parser.add_argument("--likelihood", choices=("gaussian", "student_t"), default="gaussian",
                        help="observation errors (student_t: heavy tails, robust to outliers; "
                             "default gaussian)")
    parser.add_argument("--obs-df", type=float, default=DEFAULTS.obs_df,
                        help="degrees of freedom of the student_t likelihood "
                             f"(default {DEFAULTS.obs_df:g})")
    parser.add_argument("--z-dim", type=int, help="latent dimension with --physics none")
    parser.add_argument("--lr-decay", type=float, default=DEFAULTS.lr_decay,
                        help=f"learning-rate factor per epoch (default {DEFAULTS.lr_decay:g})")
    parser.add_argument("--anneal-epochs", type=int, default=0,
                        help="KL annealing epochs (default 0)")


def _system(args, obs):
    """The known physics: ``None`` for the dataset's own system, else the requested one."""
    from pyro_videossm.data.chaotic import system_from_attrs
    from pyro_videossm.dynamics import make_system

    name = obs.attrs.get("system") if args.physics == "auto" else args.physics
    if name is None:
        raise InputError(f"{args.data} names no system (no 'system' attribute): give "
                         f"--physics {'|'.join(p for p in PHYSICS if p != 'auto')}")
    own = obs.attrs.get("system") == name
    params = system_from_attrs(obs).parameters_dict() if own else {}
    overrides = {"rho": args.rho, "sigma": args.sigma, "beta": args.beta,
                 "forcing": args.forcing}
    allowed = {"lorenz63": ("rho", "sigma", "beta"), "lorenz96": ("forcing",)}.get(name, ())
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in allowed:
            raise InputError(f"--{key} does not apply to the {name} physics")
        params[key] = value
    if name == "lorenz96" and "n" not in params:
        params["n"] = obs.sizes["component"]
    return make_system(name, **params)


def options_from_args(args) -> HybridDMMOptions:
    """The training options the flags describe."""
    try:
        hidden = () if args.correction.strip().lower() == "none" else tuple(
            int(h) for h in args.correction.split(",") if h.strip())
    except ValueError:
        raise InputError(f"--correction takes comma-separated widths such as 64,64 or 'none', "
                         f"got {args.correction!r}") from None
    if any(h < 1 for h in hidden):
        raise InputError(f"--correction widths must be >= 1, got {args.correction!r}")
    for flag, value in (("--window", args.window), ("--look-ahead", args.look_ahead),
                        ("--smoother-iterations", args.smoother_iterations),
                        ("--physics-substeps", args.physics_substeps or 0)):
        low = 2 if flag == "--window" else 0
        if value < low:
            raise InputError(f"{flag} must be >= {low}, got {value}")
    return HybridDMMOptions(
        physics=args.physics != "none", guide=args.guide, window=args.window,
        stride=args.stride, valid_fraction=args.valid_fraction, rnn_dim=args.rnn_dim,
        correction_hidden=hidden, physics_substeps=args.physics_substeps or None,
        guide_substeps=args.guide_substeps, look_ahead=args.look_ahead,
        smoother_iterations=args.smoother_iterations, learn_obs_noise=args.learn_obs_noise,
        likelihood=args.likelihood, obs_df=args.obs_df, z_dim=args.z_dim,
        lr_decay=args.lr_decay, anneal_epochs=args.anneal_epochs,
        patience=args.patience, seed=args.seed,
        **{k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size),
                             ("lr", args.lr)) if v is not None})  # else the defaults


def run(args) -> int:
    torch.manual_seed(args.seed)
    obs = load_observations(args.data)
    options = options_from_args(args)
    system = _system(args, obs) if options.physics else None
    result = train_hybrid_dmm(obs, options, system=system, device=args.device,
                              checkpoint_path=args.checkpoint, resume=args.resume,
                              progress=args.progress, output=args.output,
                              extra={"data": str(args.data)}, announce=True)
    last = result.history[-1] if result.history else {}
    loss = last.get("train_loss")
    say(f"wrote {args.output} (epochs {len(result.history)}, loss per cycle "
        f"{'n/a' if loss is None else f'{loss:.4f}'})")
    return 0


register_trainer("dmm", "deep Markov model for data assimilation (known physics + learned "
                 "correction, or neural)", _arguments, run)
