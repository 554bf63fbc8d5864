"""Every data set the toolkit simulates, by name, from Python and from ``videossm simulate``::

    ds = simulate_dataset("lorenz63", seed=1, cycles=200)          # an xarray.Dataset
    ds = simulate_dataset("rossler", cycles=200, c=9.0)            # any system in SYSTEMS
    ds = simulate_dataset("chaotic", system="my_pkg.rossler:Rossler")
    ds = simulate_dataset("heat", samples=2, steps=4)

A :class:`Simulator` is a function returning an ``xarray.Dataset`` plus the :class:`Option`\\ s
the command line offers for its keyword arguments. :data:`SIMULATORS` holds the built-in ones
(:mod:`pyro_videossm.data.standard_simulators`), those added with :func:`register_simulator`,
those other packages declare in the entry-point group ``pyro_videossm.simulators`` (a
:class:`Simulator` or a plain function, whose keyword defaults become the options) and, for
every system in :data:`~pyro_videossm.dynamics.SYSTEMS` (built in, registered, plug-in), a
simulator of that system with the generic chaotic-system options of
:func:`pyro_videossm.data.chaotic.simulate` and its parameters as ``--param KEY=VALUE``.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from pyro_videossm.dynamics import SYSTEMS, DynamicalSystem
from pyro_videossm.errors import InputError
from pyro_videossm.registry import Registry, import_object

#: Option kinds: ``--flag VALUE``; ``--flag`` alone (True); ``--flag KEY=VALUE`` repeatable, each
#: pair passed as a keyword argument of its own (system parameters).
OPTION_KINDS = ("value", "switch", "pairs")


@dataclass(frozen=True)
class Option:
    """One keyword argument of a simulator as a command-line option.

    Only options given on the command line are passed, so the function's defaults apply to the
    others (the help text states them).

    :param name: the keyword argument (``obs_noise_dist``).
    :param help: help text, defaults included.
    :param type: converts the command-line string (``int``, ``float``, ``Path``...).
    :param flag: the option (default ``--`` + ``name`` with dashes, e.g. ``--obs-noise-dist``).
    :param choices: the allowed values, if few.
    :param kind: one of :data:`OPTION_KINDS`.
    :param required: the command line must give it.
    """

    name: str
    help: str = ""
    type: Callable[[str], Any] = str
    flag: str = ""
    choices: tuple | None = None
    kind: str = "value"
    required: bool = False

    def __post_init__(self) -> None:
        if self.kind not in OPTION_KINDS:
            raise ValueError(f"option kind must be one of {OPTION_KINDS}, got {self.kind!r}")

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        """Attribute of the parsed arguments (prefixed: no clash with the command's own)."""
        return "option_" + self.name

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        common = {"dest": self.dest, "help": self.help, "default": argparse.SUPPRESS}
        if self.kind == "switch":
            parser.add_argument(self.cli_flag, action="store_true", **common)
        elif self.kind == "pairs":
            parser.add_argument(self.cli_flag, action="append", metavar="KEY=VALUE", **common)
        else:
            metavar = None if self.choices else self.cli_flag.lstrip("-").upper().replace("-", "_")
            parser.add_argument(self.cli_flag, type=self.type, choices=self.choices,
                                required=self.required, metavar=metavar, **common)


@dataclass(frozen=True)
class Simulator:
    """A named function ``(**options) -> xarray.Dataset`` and its command-line options.

    :param name: the name in :data:`SIMULATORS` and after ``videossm simulate``.
    :param function: the function, or its import path ``"module:attr"`` (imported on the first
        call, so that listing simulators stays cheap).
    :param help: one line for ``videossm simulate --help``.
    :param options: the command-line options (Python callers may pass any keyword argument
        the function takes).
    :param defaults: keyword arguments passed unless given (where the simulator's defaults
        differ from the function's).
    """

    name: str
    function: Callable[..., xr.Dataset] | str
    help: str = ""
    options: tuple[Option, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    def resolve(self) -> Callable[..., xr.Dataset]:
        """The function itself (imported if given by path)."""
        if isinstance(self.function, str):
            return import_object(self.function, kind="simulator function")
        return self.function

    def __call__(self, **options: Any) -> xr.Dataset:
        function = self.resolve()
        kwargs = {**self.defaults, **options}
        accepted = _keywords(function)
        if accepted is not None:
            unknown = sorted(set(kwargs) - set(accepted))
            if unknown:
                raise InputError(f"simulator {self.name!r} takes no option {unknown[0]!r} "
                                 f"(options: {', '.join(accepted) or 'none'})")
        return function(**kwargs)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the options to a command-line parser."""
        for option in self.options:
            option.add_to(parser)

    def keywords(self, args: argparse.Namespace) -> dict[str, Any]:
        """The keyword arguments given on the command line (parsed by :meth:`add_arguments`).

        ``progress`` is passed too when the function names it among its arguments.
        """
        out: dict[str, Any] = {}
        pairs: dict[str, Any] = {}
        for option in self.options:
            if not hasattr(args, option.dest):
                continue
            value = getattr(args, option.dest)
            if option.kind == "pairs":
                pairs.update(parse_key_values(value, option.cli_flag))
            else:
                out[option.name] = value
        clash = sorted(set(out) & set(pairs))
        if clash:
            raise InputError(f"{clash[0]!r} is given twice (as an option and as KEY=VALUE)")
        out.update(pairs)
        accepted = _keywords(self.resolve()) or ()
        if hasattr(args, "progress") and "progress" in accepted:
            out.setdefault("progress", args.progress)
        return out

    @classmethod
    def from_function(cls, name: str, function: Callable[..., xr.Dataset],
                      help: str = "") -> Simulator:
        """A simulator whose options are the function's keyword arguments with defaults
        (``int``/``float``/``str``/``bool``; ``--name VALUE``, booleans as ``true``/``false``)
        and, without one, required string options."""
        options = []
        for pname, p in inspect.signature(function).parameters.items():
            if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or pname == "progress":
                continue
            if p.default is p.empty:
                options.append(Option(pname, help="(required)", required=True))
                continue
            typ = type(p.default)
            convert = (_parse_bool if typ is bool
                       else typ if typ in (int, float, str) else _literal)
            options.append(Option(pname, help=f"(default {p.default!r})", type=convert))
        doc = (inspect.getdoc(function) or "").strip().splitlines()
        return cls(name, function, help=help or (doc[0] if doc else ""), options=tuple(options))


def _keywords(function: Callable) -> list[str] | None:
    """The keyword arguments ``function`` accepts, or None if it takes ``**kwargs``."""
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return [k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_key_values(pairs: list[str], flag: str = "--param") -> dict[str, Any]:
    """``["rho=30", "name=x"]`` -> ``{"rho": 30, "name": "x"}`` (Python literals, else text)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise InputError(f"{flag} expects KEY=VALUE, got {pair!r}")
        out[key] = _literal(value)
    return out


# -- the options every chaotic system takes --------------------------------------------------
CHAOTIC_OPTIONS: tuple[Option, ...] = (
    Option("seed", "random seed (default 0)", int),
    Option("cycles", "observation cycles after spin-up", int),
    Option("dt", "RK4 integration step", float),
    Option("steps_per_obs", "integration steps between observations", int),
    Option("obs_operator", "'all', 'every:K' or 'subset:I,J,...' (default all)"),
    Option("obs_noise_std", "observation noise std (scale for t)", float),
    Option("obs_noise_dist", "observation noise distribution", flag="--obs-noise",
           choices=("gaussian", "student_t")),
    Option("obs_noise_df", "degrees of freedom of Student-t noise (default 4)", float),
    Option("process_noise_std", "diffusion q of additive process noise (default 0)", float),
    Option("spinup", "model time discarded before cycle 1", float),
)

#: ``--param KEY=VALUE``: the system's constructor parameters.
SYSTEM_PARAMETERS = Option(
    "system_parameters", "system parameter, e.g. --param c=9 (repeatable)",
    flag="--param", kind="pairs")


def simulate_system(system: str, **options: Any) -> xr.Dataset:
    """:func:`pyro_videossm.data.chaotic.simulate` of a system name or import path."""
    from pyro_videossm.data.chaotic import simulate

    return simulate(system, **options)


def system_simulator(system: str, *, help: str = "",
                     parameters: tuple[Option, ...] = ()) -> Simulator:
    """The simulator of a system (registered name or ``"module:Class"``): the generic
    chaotic-system options, ``parameters`` (named system parameters) and ``--param``."""
    return Simulator(
        system, functools.partial(simulate_system, system),
        help=help or f"the {system} system (chaotic-system settings; parameters: --param K=V)",
        options=CHAOTIC_OPTIONS + parameters + (SYSTEM_PARAMETERS,),
    )


class SimulatorRegistry(Registry[Simulator]):
    """A :class:`Registry` of :class:`Simulator`\\ s that also knows every system of
    :data:`~pyro_videossm.dynamics.SYSTEMS` (a name registered here wins over a system's)."""

    def names(self) -> list[str]:
        return sorted(set(super().names()) | set(SYSTEMS.names()))

    def get(self, name: str) -> Simulator:
        if isinstance(name, str) and name in super().names():
            return _as_simulator(name, super().get(name))
        if isinstance(name, str) and name in SYSTEMS.names():
            return system_simulator(name)
        obj = super().get(name)  # module:attr, else the one-line "unknown" error
        if _is_system(obj):
            return system_simulator(name)
        return _as_simulator(name, obj)

    __getitem__ = get


def _is_system(obj: Any) -> bool:
    """A system class or instance (what :func:`~pyro_videossm.dynamics.make_system` builds)."""
    return isinstance(obj, DynamicalSystem) or (isinstance(obj, type) and hasattr(obj, "drift"))


def _as_simulator(name: str, obj: Any) -> Simulator:
    if isinstance(obj, Simulator):
        return obj
    if callable(obj):
        return Simulator.from_function(name, obj)
    raise InputError(f"simulator {name!r} is neither a Simulator nor a function: {obj!r}")


#: name -> :class:`Simulator` (see the module doc).
SIMULATORS: SimulatorRegistry = SimulatorRegistry(
    "simulator", builtins=("pyro_videossm.data.standard_simulators",))


def register_simulator(name: str, function: Callable[..., xr.Dataset] | str | None = None, *,
                       help: str = "", options: tuple[Option, ...] | None = None,
                       defaults: dict[str, Any] | None = None) -> Any:
    """Register ``function`` as simulator ``name`` (returns the :class:`Simulator`).

    ``options`` default: the function's keyword arguments (:meth:`Simulator.from_function`);
    ``help`` default: the first line of its docstring. Without ``function``, a decorator:
    ``@register_simulator("waves", options=(...))`` (returns the function).
    """
    if function is None:
        return lambda f: (register_simulator(name, f, help=help, options=options,
                                             defaults=defaults), f)[1]
    if options is None and callable(function):
        derived = Simulator.from_function(name, function, help=help)
        help, options = derived.help, derived.options
    return SIMULATORS.register(Simulator(name, function, help=help, options=tuple(options or ()),
                                         defaults=dict(defaults or {})))


def simulate_dataset(name: str, **options: Any) -> xr.Dataset:
    """Simulate the data set ``name`` (see :data:`SIMULATORS`) with keyword ``options``."""
    return SIMULATORS.get(name)(**options)


def available_simulators() -> list[str]:
    """Names of every simulator, systems included."""
    return SIMULATORS.names()
