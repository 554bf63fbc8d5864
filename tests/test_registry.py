"""The generic Registry, the toolkit's registries built on it, and a plug-in package made here.

The plug-in test writes a tiny package with a Rössler system and an entry point, and runs the
``videossm`` command on it in a subprocess: the posterior of an ETKF must beat the observation
noise with the right dynamics and not with wrong ones, so the right system really ran.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from documented_system import ROSSLER_SOURCE

from pyro_videossm.assimilate import (
    BUILTIN_METHOD_MODULES,
    METHODS,
    available_methods,
    get_method,
)
from pyro_videossm.cli import main
from pyro_videossm.data import (
    SIMULATORS,
    Option,
    register_simulator,
    setting_for,
    simulate,
    simulate_dataset,
    with_system,
    write_netcdf,
)
from pyro_videossm.data.chaotic import ObservationSetting
from pyro_videossm.dynamics import SYSTEMS, Lorenz63, ODESystem, make_system, register_system
from pyro_videossm.errors import InputError
from pyro_videossm.forecast import FORECASTERS, Persistence, get_forecaster
from pyro_videossm.registry import ENTRY_POINT_GROUPS, Registry

REPO = Path(__file__).resolve().parents[1]

def _write_package(root: Path, name: str, source: str, entry_points: str = "") -> None:
    """``root/name/__init__.py`` and, with ``entry_points``, a ``name-0.1.dist-info``."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(textwrap.dedent(source))
    if entry_points:
        info = root / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


# -- Registry ------------------------------------------------------------------------------
def test_register_bare_named_and_as_decorator():
    reg: Registry = Registry("widget")
    assert reg.group == ""  # not one of the toolkit's kinds

    class Cog:
        name = "cog"

    def gear():
        return "gear"

    assert reg.register(Cog) is Cog
    assert reg.register(gear) is gear  # named by __name__
    assert reg.register(name="sprocket")(Cog) is Cog

    @reg.register
    class Wheel:
        name = "wheel"

    assert reg.names() == ["cog", "gear", "sprocket", "wheel"] == list(reg)
    assert len(reg) == 4 and "wheel" in reg and "axle" not in reg and 3 not in reg
    assert reg.get("cog") is Cog and reg["sprocket"] is Cog and reg.get("wheel") is Wheel
    assert dict(reg.items())["gear"] is gear
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Wheel, name="cog", replace=False)
    reg.register(Cog, name="cog", replace=False)  # the same object again is fine
    reg.unregister("gear")
    assert reg.pop("sprocket") is Cog and reg.pop("sprocket", 7) == 7
    assert reg.names() == ["cog", "wheel"]
    with pytest.raises(ValueError, match="without a name"):
        reg.register(object())


def test_unknown_name_is_one_line_listing_the_known():
    reg: Registry = Registry("widget")
    reg.register(1, name="b")
    reg.register(2, name="a")
    with pytest.raises(InputError) as err:
        reg.get("c")
    assert str(err.value) == "unknown widget 'c'; known: a, b (or give module:attribute)"
    with pytest.raises(InputError, match="non-empty string"):
        reg.get("")
    assert Registry("widget").names() == []
    with pytest.raises(InputError, match="known: none"):
        Registry("widget").get("x")


def test_module_attr_specs():
    reg: Registry = Registry("widget")
    assert reg.get("math:pi") == math.pi
    assert reg.get("os.path:join") is os.path.join
    assert reg.get("pyro_videossm.dynamics:Lorenz63.name") == "lorenz63"  # dotted attribute
    assert "math:pi" not in reg  # a spec is looked up, not registered
    for spec, message in [("no_such_module_xyz:f", "cannot import widget module"),
                          ("math:no_such_attr", "has no widget 'no_such_attr'"),
                          (":pi", "not of the form module:attribute")]:
        with pytest.raises(InputError, match=message) as err:
            reg.get(spec)
        assert "\n" not in str(err.value)


def test_subclass_and_build_check_the_class_and_its_options():
    reg: Registry = Registry("widget")

    class Part:
        def __init__(self, size=1, *args, **kwargs):
            self.size = size

    class Cog(Part):
        name = "cog"

    reg.register(Cog)
    reg.register(len, name="length")
    assert reg.subclass("cog", Part) is Cog and reg.subclass("cog", Cog) is Cog
    with pytest.raises(InputError) as err:
        reg.subclass("length", Part)
    assert str(err.value) == f"widget 'length' is not a Part subclass: {len!r}"
    with pytest.raises(InputError, match="widget 'cog' is not an Exception subclass"):
        reg.subclass("cog", Exception)
    built = reg.build("cog", Part, {"size": 3})
    assert type(built) is Cog and built.size == 3
    with pytest.raises(InputError) as err:
        reg.build("cog", Part, {"colour": "red"}, ignore=("self", "args", "kwargs"))
    assert str(err.value) == "widget 'cog' takes no option 'colour' (options: size)"
    with pytest.raises(InputError, match=r"\(options: args, kwargs, size\)"):
        reg.build("cog", Part, {"colour": "red"})  # only "self" left out by default


def test_builtin_modules_are_imported_on_first_lookup(tmp_path, monkeypatch):
    (tmp_path / "reg_widgets_home.py").write_text(
        "from pyro_videossm.registry import Registry\n"
        "WIDGETS = Registry('widget', builtins=('reg_widgets_impl',))\n")
    (tmp_path / "reg_widgets_impl.py").write_text(
        "from reg_widgets_home import WIDGETS\n\n"
        "@WIDGETS.register\nclass Cog:\n    name = 'cog'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in ("reg_widgets_home", "reg_widgets_impl"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    import reg_widgets_home

    assert "reg_widgets_impl" not in sys.modules
    assert reg_widgets_home.WIDGETS.names() == ["cog"]
    assert reg_widgets_home.WIDGETS.get("cog").__module__ == "reg_widgets_impl"


def test_entry_points_load_lazily_and_broken_ones_are_one_line(tmp_path, monkeypatch):
    _write_package(tmp_path, "reg_gears", "class Gear:\n    name = 'gear'\n", """\
        [pyro_videossm.systems]
        reg-gear = reg_gears:Gear
        reg-missing = reg_gears:Missing
        reg-crash = reg_crash:Anything
        """)
    (tmp_path / "reg_crash.py").write_text("raise RuntimeError('boom\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in ("reg_gears", "reg_crash"):
        monkeypatch.delitem(sys.modules, mod, raising=False)

    reg: Registry = Registry("system")
    assert reg.group == ENTRY_POINT_GROUPS["system"] == "pyro_videossm.systems"
    assert {"reg-gear", "reg-missing", "reg-crash"} <= set(reg.names())
    assert "reg_gears" not in sys.modules  # listed, not imported
    gear = reg.get("reg-gear")
    assert gear.__name__ == "Gear" and gear.__module__ == "reg_gears"
    assert reg.get("reg-gear") is gear
    with pytest.raises(InputError) as err:
        reg.get("reg-missing")
    assert str(err.value).startswith("system 'reg-missing' from entry point 'reg_gears:Missing' "
                                     "failed to load: AttributeError")
    with pytest.raises(InputError, match="RuntimeError: boom second line") as err:
        reg.get("reg-crash")
    assert "\n" not in str(err.value)

    # a name registered in the process wins over an entry point of the same name
    other: Registry = Registry("system")
    other.register(int, name="reg-gear")
    assert other.get("reg-gear") is int


# -- the toolkit's registries ----------------------------------------------------------------
def test_toolkit_registries_are_registries():
    assert all(isinstance(r, Registry) for r in (SYSTEMS, METHODS, FORECASTERS, SIMULATORS))
    assert [r.group for r in (SYSTEMS, METHODS, FORECASTERS, SIMULATORS)] == [
        "pyro_videossm.systems", "pyro_videossm.methods", "pyro_videossm.forecasters",
        "pyro_videossm.simulators"]
    assert METHODS.builtins == BUILTIN_METHOD_MODULES
    assert {"lorenz63", "lorenz96"} <= set(SYSTEMS)
    assert {"etkf", "enks"} <= set(available_methods())
    assert "persistence" in FORECASTERS
    assert {"chaotic", "heat", "lorenz63", "lorenz96", "moving-digits", "sprites"} <= set(
        SIMULATORS)


def test_make_system_by_name_and_import_path():
    assert make_system("lorenz63").rho == 28.0
    system = make_system("pyro_videossm.dynamics.lorenz63:Lorenz63", rho=30)
    assert isinstance(system, Lorenz63) and system.rho == 30.0
    with pytest.raises(InputError, match="system 'lorenz63' takes no parameter 'c' "
                                         r"\(parameters: sigma, rho, beta\)"):
        make_system("lorenz63", c=1)
    with pytest.raises(InputError, match="'math:pi' is not a dynamical system"):
        make_system("math:pi")
    with pytest.raises(InputError, match="unknown system 'nope'; known: .*lorenz63, lorenz96"):
        make_system("nope")


def test_methods_and_forecasters_by_import_path():
    etkf = get_method("pyro_videossm.filters.enkf:ETKFMethod", members=5)
    assert type(etkf) is type(get_method("etkf", members=5)) and etkf.members == 5
    with pytest.raises(InputError, match="not an AssimilationMethod subclass"):
        get_method("math:pi")
    assert isinstance(get_forecaster("pyro_videossm.forecast.persistence:Persistence"),
                      Persistence)
    with pytest.raises(InputError, match="unknown forecaster 'nope'; known: .*persistence"):
        get_forecaster("nope")


class Spiral(ODESystem):
    """A damped linear rotation with a known solution (for the simulator tests)."""

    name = "spiral-test"
    component_names = ("u", "v")
    default_dt = 0.1

    def __init__(self, omega: float = 1.0, decay: float = 0.0):
        super().__init__()
        self.omega, self.decay = float(omega), float(decay)

    def drift(self, x):
        u, v = x.unbind(-1)
        return torch.stack([-self.decay * u - self.omega * v, self.omega * u - self.decay * v], -1)

    def parameters_dict(self):
        return {"omega": self.omega, "decay": self.decay}

    def initial_state(self):
        return torch.tensor([1.0, 0.0])


@pytest.fixture
def spiral():
    register_system(Spiral)
    yield Spiral.name
    SYSTEMS.unregister(Spiral.name)


def test_simulate_dataset_equals_the_chaotic_simulation():
    a = simulate_dataset("lorenz63", seed=1, cycles=30, rho=30)
    b = simulate("lorenz63", seed=1, cycles=30, rho=30)
    assert a.identical(b) and json.loads(a.attrs["system_parameters"])["rho"] == 30.0
    with pytest.raises(InputError, match="simulator 'heat' takes no option 'cycles'"):
        simulate_dataset("heat", cycles=3)
    with pytest.raises(InputError, match="unknown simulator 'nope'; known: chaotic, "):
        simulate_dataset("nope")


def test_every_registered_system_is_a_simulator(spiral, tmp_path):
    assert spiral in SIMULATORS and spiral in SIMULATORS.names()
    ds = simulate_dataset(spiral, seed=0, cycles=20, spinup=0.0, omega=2.0, decay=0.1,
                          obs_noise_std=0.5)
    # no standard setting: dt from the system, one observation per step
    assert ds.attrs["integration_step"] == 0.1 and ds.attrs["steps_per_obs"] == 1
    # the truth is the exact solution from the (perturbed) initial state, to RK4 accuracy
    x0 = ds["truth"].values[0]
    t = 0.1 * np.arange(20)
    r = np.exp(-0.1 * t) * np.hypot(*x0)
    phase = np.arctan2(x0[1], x0[0]) + 2.0 * t
    exact = np.stack([r * np.cos(phase), r * np.sin(phase)], 1)
    assert np.abs(ds["truth"].values - exact).max() < 5e-4  # RK4 with h omega = 0.2
    assert np.abs(simulate_dataset(spiral, seed=0, cycles=20, spinup=0.0, omega=2.1, decay=0.1,
                                   obs_noise_std=0.5)["truth"].values - exact).max() > 0.05

    out = tmp_path / "spiral.nc"
    assert main(["simulate", spiral, "-o", str(out), "--seed", "0", "--cycles", "20",
                 "--spinup", "0", "--obs-noise-std", "0.5", "--param", "omega=2.0",
                 "--param", "decay=0.1"]) == 0
    with xr.open_dataset(out) as cli:
        np.testing.assert_array_equal(cli["truth"].values, ds["truth"].values)
        np.testing.assert_array_equal(cli["obs"].values, ds["obs"].values)
        assert cli.attrs["system_parameters"] == ds.attrs["system_parameters"]
    out2 = tmp_path / "spiral2.nc"
    assert main(["simulate", "chaotic", "--system", spiral, "-o", str(out2), "--cycles", "3",
                 "--param", "omega=3"]) == 0
    with xr.open_dataset(out2) as cli:
        assert json.loads(cli.attrs["system_parameters"]) == {"omega": 3.0, "decay": 0.0}


def test_simulator_options_and_errors(tmp_path, capsys):
    calls = []

    def ramp(length: int = 5, scale: float = 1.0, label: str = "r", flip: bool = False):
        """A ramp 0..length-1 times scale."""
        calls.append((length, scale, label, flip))
        values = np.arange(length) * scale * (-1 if flip else 1)
        return xr.Dataset({"ramp": ("i", values)}, attrs={"label": label})

    register_simulator("reg-ramp", ramp)
    register_simulator("reg-ramp2", ramp, help="a ramp", defaults={"scale": 2.0},
                       options=(Option("length", "samples", int, flag="--n"),
                                Option("flip", "negate", kind="switch")))
    try:
        assert SIMULATORS.get("reg-ramp").help == "A ramp 0..length-1 times scale."
        assert simulate_dataset("reg-ramp2", length=3)["ramp"].values.tolist() == [0, 2, 4]
        out = tmp_path / "ramp.nc"
        assert main(["simulate", "reg-ramp", "-o", str(out), "--length", "3", "--scale",
                     "0.5", "--flip", "true"]) == 0
        assert xr.open_dataset(out)["ramp"].values.tolist() == [0.0, -0.5, -1.0]
        assert main(["simulate", "reg-ramp2", "-o", str(out), "--n", "2", "--flip"]) == 0
        assert calls[-1] == (2, 2.0, "r", True)
        assert main(["simulate", "reg-ramp2", "-o", str(out)]) == 0
        assert calls[-1] == (5, 2.0, "r", False)  # options not given: the defaults
    finally:
        SIMULATORS.unregister("reg-ramp")
        SIMULATORS.unregister("reg-ramp2")

    # --param must be KEY=VALUE; a parameter given twice is refused; both are one line, exit 2
    capsys.readouterr()
    for argv, message in [(["--param", "rho"], "--param expects KEY=VALUE, got 'rho'"),
                          (["--rho", "30", "--param", "rho=31"], "'rho' is given twice"),
                          (["--param", "c=1"], "system 'lorenz63' takes no parameter 'c'")]:
        assert main(["simulate", "lorenz63", "-o", str(tmp_path / "no.nc")] + argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "no.nc").exists()
    with pytest.raises(SystemExit):  # argparse: --system is required
        main(["simulate", "chaotic", "-o", str(tmp_path / "no.nc")])


def test_settings_of_user_systems():
    class Plain:  # the protocol without ODESystem's defaults
        name = "plain"
        component_names = ("x",)
        state_dim = 1

        def drift(self, x):
            return -x

        def parameters_dict(self):
            return {}

        def initial_state(self):
            return torch.zeros(1)

    with pytest.raises(InputError, match="no standard setting and no default_dt: give the "
                                         "integration step dt"):
        simulate(Plain(), cycles=2)

    class Own(Spiral):
        observation_setting = ObservationSetting(dt=0.02, steps_per_obs=5, obs_noise_std=0.3,
                                                 cycles=7, spinup=1.0)

    assert setting_for(Own()) is Own.observation_setting
    assert setting_for(Lorenz63(), "my_pkg:L63") is setting_for(Lorenz63())  # by system.name
    ds = simulate(Own())
    assert (ds.sizes["time"], ds.attrs["integration_step"], ds.attrs["steps_per_obs"],
            ds.attrs["obs_noise_std"]) == (7, 0.02, 5, 0.3)


def test_with_system_keeps_or_replaces_parameters():
    ds = simulate("lorenz63", cycles=5, rho=30)
    same = with_system(ds, "pyro_videossm.dynamics:Lorenz63")  # its class: parameters kept
    assert json.loads(same.attrs["system_parameters"])["rho"] == 30.0
    assert same.attrs["system"] == "pyro_videossm.dynamics:Lorenz63"
    tuned = with_system(ds, "lorenz63", {"sigma": 11})
    assert json.loads(tuned.attrs["system_parameters"]) == {"beta": 8 / 3, "rho": 30.0,
                                                            "sigma": 11.0}
    other = with_system(ds, "lorenz96", {"n": 4})  # another system: its own defaults
    assert json.loads(other.attrs["system_parameters"]) == {"forcing": 8.0, "n": 4}
    assert ds.attrs["system"] == "lorenz63"  # the input is untouched
    with pytest.raises(InputError, match="takes no parameter 'n'"):
        with_system(ds, "lorenz63", {"n": 4})


def test_assimilate_system_option_errors(tmp_path, capsys):
    obs = tmp_path / "obs.nc"
    write_netcdf(simulate("lorenz63", cycles=10), obs)
    for argv, message in [(["--system", "nope"], "unknown system 'nope'"),
                          (["--system-param", "n=1"], "system 'lorenz63' takes no parameter 'n'"),
                          (["--system-param", "rho"], "--system-param expects KEY=VALUE"),
                          (["--system", "lorenz96"], "has 40 components but 'obs' has 3")]:
        assert main(["assimilate", str(obs), "--method", "etkf", "-o",
                     str(tmp_path / "post.nc")] + argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "post.nc").exists()


# -- a plug-in package made here, used from the command line ---------------------------------
def _videossm(args: list[str], pythonpath: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    return subprocess.run([sys.executable, "-m", "pyro_videossm", *args, "--no-progress"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _rmse(post: Path, data: Path) -> float:
    with xr.open_dataset(post) as p, xr.open_dataset(data) as d:
        return float(np.sqrt(((p["mean"] - d["truth"]) ** 2).mean()))


def test_plugin_system_from_an_entry_point_and_an_import_path(tmp_path):
    with_ep, without_ep = tmp_path / "with_ep", tmp_path / "without_ep"
    _write_package(with_ep, "rossler_plugin", ROSSLER_SOURCE,
                   "[pyro_videossm.systems]\nrossler = rossler_plugin:Rossler\n")
    _write_package(without_ep, "rossler_plugin", ROSSLER_SOURCE)
    work = tmp_path / "work"
    work.mkdir()
    settings = ["--seed", "1", "--cycles", "300", "--steps-per-obs", "10", "--obs-noise-std", "1"]

    # the entry point makes "rossler" a system, so a simulator
    res = _videossm(["simulate", "rossler", "-o", "x.nc", *settings], [with_ep, REPO], work)
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(work / "x.nc") as ds:
        assert ds.attrs["system"] == "rossler" and ds.sizes["component"] == 3
        assert json.loads(ds.attrs["system_parameters"]) == {"a": 0.2, "b": 0.2, "c": 5.7}
    res = _videossm(["assimilate", "x.nc", "--method", "etkf", "--members", "10", "-o",
                     "post.nc"], [with_ep, REPO], work)
    assert res.returncode == 0, res.stderr
    assert _rmse(work / "post.nc", work / "x.nc") < 0.5  # obs noise std 1: the right dynamics

    # no entry point: the import path simulates the same trajectory
    res = _videossm(["simulate", "chaotic", "--system", "rossler_plugin:Rossler", "-o", "y.nc",
                     *settings], [without_ep, REPO], work)
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(work / "x.nc") as x, xr.open_dataset(work / "y.nc") as y:
        assert y.attrs["system"] == "rossler_plugin:Rossler"
        np.testing.assert_array_equal(x["truth"].values, y["truth"].values)
        np.testing.assert_array_equal(x["obs"].values, y["obs"].values)

    # ... and "rossler" named in x.nc's attributes is unknown there, until --system supplies it
    res = _videossm(["assimilate", "x.nc", "--method", "etkf", "-o", "bad.nc"],
                    [without_ep, REPO], work)
    assert res.returncode == 2 and "unknown system 'rossler'" in res.stderr
    res = _videossm(["assimilate", "x.nc", "--method", "etkf", "--members", "10", "-o",
                     "post2.nc", "--system", "rossler_plugin:Rossler"], [without_ep, REPO], work)
    assert res.returncode == 0, res.stderr
    assert _rmse(work / "post2.nc", work / "x.nc") < 0.5
    with xr.open_dataset(work / "post2.nc") as post:
        np.testing.assert_array_equal(post["mean"].values, xr.open_dataset(
            work / "post.nc")["mean"].values)  # same system, same seed: same posterior

    # wrong dynamics (c = 9 instead of 5.7) do not beat the noise: the check can fail
    res = _videossm(["assimilate", "y.nc", "--method", "etkf", "--members", "10", "-o",
                     "wrong.nc", "--system-param", "c=9"], [without_ep, REPO], work)
    assert res.returncode == 0, res.stderr
    assert _rmse(work / "wrong.nc", work / "y.nc") > 1.0


def test_simulators_from_entry_points(tmp_path, monkeypatch, capsys):
    _write_package(tmp_path, "reg_waves", '''
        import numpy as np
        import xarray as xr


        def waves(n: int = 4, amplitude: float = 1.0):
            """Sine samples."""
            return xr.Dataset({"wave": ("i", amplitude * np.sin(np.arange(n)))})
        ''', """\
        [pyro_videossm.simulators]
        reg-waves = reg_waves:waves
        reg-broken = reg_waves:nothing_here
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "reg_waves", raising=False)
    SIMULATORS.refresh_entry_points()
    try:
        assert {"reg-waves", "reg-broken"} <= set(SIMULATORS.names())
        out = tmp_path / "w.nc"
        assert main(["simulate", "reg-waves", "-o", str(out), "--n", "3", "--amplitude",
                     "2"]) == 0
        np.testing.assert_allclose(xr.open_dataset(out)["wave"].values, 2 * np.sin([0, 1, 2]))
        capsys.readouterr()
        # a broken plug-in does not break the command, only its own use
        assert main(["simulate", "reg-broken", "-o", str(tmp_path / "b.nc"), "--x", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert "simulator 'reg-broken' from entry point 'reg_waves:nothing_here' failed" in err
        assert len(err.splitlines()) == 1 and not (tmp_path / "b.nc").exists()
    finally:
        SIMULATORS.unregister("reg-waves")
        SIMULATORS.unregister("reg-broken")
