"""The package's import structure, checked from the source (no imports executed).

Every ``.py`` file under ``pyro_videossm/`` is parsed with :mod:`ast`; every ``import`` and
``from ... import`` of ``pyro_videossm.*`` (absolute or relative) becomes an edge of the
module graph, wherever the statement sits: at module level, inside a function, a method or an
``if``. Three rules (docs/ARCHITECTURE.md, "Layers"):

(a) **No import cycle** between modules: a strongly connected component with more than one
    module fails. Function-level (lazy) imports count too: a lazy import hides a cycle from
    the interpreter, not from the design. Two modules that import each other, however late,
    cannot be read, tested or moved apart, and a cycle broken only by import order breaks when
    somebody hoists the import. Imports under ``if TYPE_CHECKING:`` are left out of this rule:
    they never run, and they exist so that annotations can name a type of a module that
    imports this one. (Edges into a package's ``__init__`` that Python runs implicitly when
    importing a submodule are not added either: they are not written in the source.)
(b) **No upward import**: each top-level package has a rank (:data:`LAYERS`); a module may
    import modules of its own rank or lower (``TYPE_CHECKING`` imports included: a lower layer
    naming an upper layer's types depends on it). ``pyro_videossm.__main__`` may import
    ``cli``.
(c) **The CLI is thin**: ``cli/`` modules define no ``nn.Module``/``PyroModule`` subclass
    and no training loop (no ``.backward(``, ``SVI(``, ``optim.`` calls); models live in
    ``models/``, the training loop in ``infer/`` and the experiment layer.

Imports by string (``importlib.import_module(name)``) are not edges: that is how a registry
loads its built-in entries and plug-ins (``pyro_videossm.registry``), the sanctioned way for a
lower layer to reach implementations above it.

Violations present when this test was written are listed in :data:`KNOWN_VIOLATIONS`; the
test fails on any violation not listed, and on a listed one that has gone (so the list only
shrinks: delete the entry once the code is fixed).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "pyro_videossm"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: Rank of each top-level module/package of ``pyro_videossm``: a module may import only
#: modules of its own rank or lower. ``""`` is the package's own ``__init__``.
LAYERS: dict[str, int] = {
    "": 0, "errors": 0, "atomic": 0, "registry": 0,
    "dynamics": 1,
    "data": 2,
    "metrics": 3, "nn": 3,
    "assimilate": 4, "forecast": 4, "infer": 4,
    "filters": 5, "models": 5,
    "evaluation": 6, "plots": 6, "experiments": 6,
    "cli": 7,
    "__main__": 8,
}

#: Violations in today's code, to be removed by whoever fixes them (the lead, after merging).
#: Entries: ("cycle", the sorted members of the cycle joined by " <-> "),
#: ("upward", "importer -> imported"), ("cli", "module: what").
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


# -- the graph -----------------------------------------------------------------------------
def module_name(path: Path) -> str:
    """``pyro_videossm/data/windows.py`` -> ``pyro_videossm.data.windows`` (packages: no
    ``__init__``)."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = all_modules()


def _resolve(target: str) -> str | None:
    """The longest prefix of dotted ``target`` that is a module of the package."""
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in MODULES:
            return name
        parts.pop()
    return None


def _type_checking_nodes(tree: ast.AST) -> set[ast.AST]:
    """Import statements inside ``if TYPE_CHECKING:`` blocks (never executed)."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", "")
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    found.update(n for n in ast.walk(stmt)
                                 if isinstance(n, (ast.Import, ast.ImportFrom)))
    return found


def imports_of(name: str, path: Path, *, type_checking: bool = True,
               source: str | None = None) -> set[str]:
    """Modules of the package that module ``name`` (file ``path``, or ``source``) imports
    anywhere in its source (``type_checking=False``: leaving out ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    skipped = set() if type_checking else _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one.
            targets = [f"{module}.{alias.name}" for alias in node.names] or [module]
            targets = [t if t in MODULES else module for t in targets]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                resolved = _resolve(target)
                if resolved is not None and resolved != name:
                    found.add(resolved)
    return found


#: Every import, for the layer rule.
GRAPH: dict[str, set[str]] = {name: imports_of(name, path) for name, path in MODULES.items()}
#: Imports that run, for the cycle rule.
RUNTIME_GRAPH: dict[str, set[str]] = {
    name: imports_of(name, path, type_checking=False) for name, path in MODULES.items()}


def top_level(module: str) -> str:
    """``pyro_videossm.data.windows`` -> ``data``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# -- (a) cycles ----------------------------------------------------------------------------
def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def cycle_violations() -> set[tuple[str, str]]:
    return {("cycle", " <-> ".join(c))
            for c in strongly_connected_components(RUNTIME_GRAPH) if len(c) > 1}


# -- (b) layers ----------------------------------------------------------------------------
def upward_violations() -> set[tuple[str, str]]:
    found = set()
    for importer, targets in GRAPH.items():
        rank = LAYERS[top_level(importer)]
        for target in targets:
            if LAYERS[top_level(target)] > rank:
                found.add(("upward", f"{importer} -> {target}"))
    return found


# -- (c) thin CLI --------------------------------------------------------------------------
MODULE_BASES = {"Module", "PyroModule"}
TRAINING_CALLS = {"backward", "SVI"}


def _name_of(node: ast.expr) -> str:
    """The last name of ``a.b.C`` or ``C`` or ``PyroModule[...]``."""
    if isinstance(node, ast.Subscript):
        return _name_of(node.value)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _mentions_optim(node: ast.expr) -> bool:
    """``optim.X(...)``, ``torch.optim.X(...)``, ``pyro.optim.X(...)``."""
    while isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id == "optim":
            return True
        if node.attr == "optim":
            return True
        node = node.value
    return False


def cli_violations() -> set[tuple[str, str]]:
    found = set()
    for name, path in MODULES.items():
        if top_level(name) != "cli":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {_name_of(b) for b in node.bases}
                if bases & MODULE_BASES:
                    found.add(("cli", f"{name}: class {node.name} is a torch/Pyro module"))
            elif isinstance(node, ast.Call):
                called = _name_of(node.func)
                if called in TRAINING_CALLS:
                    found.add(("cli", f"{name}: calls {called}("))
                elif isinstance(node.func, ast.Attribute) and _mentions_optim(node.func):
                    found.add(("cli", f"{name}: calls an optimiser ({ast.unparse(node.func)})"))
    return found


# -- the tests -----------------------------------------------------------------------------
def test_every_top_level_package_has_a_layer():
    missing = sorted({top_level(m) for m in MODULES} - set(LAYERS))
    assert not missing, (f"give {missing} a rank in LAYERS (tests/test_architecture.py) "
                         "and docs/ARCHITECTURE.md")


def test_the_graph_sees_known_edges():
    """The parser itself: edges that exist must be found (so an empty result is not a broken
    walker), in every form an import can take."""
    assert f"{PACKAGE}.errors" in GRAPH[f"{PACKAGE}.registry"]
    assert f"{PACKAGE}.cli" in GRAPH[f"{PACKAGE}.__main__"]
    assert len(GRAPH) > 50 and sum(map(len, GRAPH.values())) > 100
    source = (
        "import pyro_videossm.dynamics.lorenz63\n"               # plain, to a module
        "from pyro_videossm.data import windows\n"               # a submodule by name
        "from pyro_videossm.infer import Trainer\n"              # a name of a package
        "from . import integrators\n"                            # relative, same package
        "from ..errors import InputError\n"                      # relative, one level up
        "def f():\n    from pyro_videossm.metrics import rmse\n"  # function-level
        "if TYPE_CHECKING:\n    from pyro_videossm.nn import MLP\n"
        "import torch\n"
    )
    path = ROOT / "dynamics" / "example.py"
    name = f"{PACKAGE}.dynamics.example"
    expected = {f"{PACKAGE}.{m}" for m in ("dynamics.lorenz63", "data.windows", "infer",
                                             "dynamics.integrators", "errors", "metrics")}
    assert imports_of(name, path, source=source, type_checking=False) == expected
    assert imports_of(name, path, source=source) == expected | {f"{PACKAGE}.nn"}


def test_the_checks_catch_planted_violations():
    """Each rule fails on a violation planted in a copy of the graph / a synthetic source."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [c for c in strongly_connected_components(graph) if len(c) > 1] == [["a", "b", "c"]]
    assert LAYERS[top_level(f"{PACKAGE}.data.windows")] > LAYERS[top_level(f"{PACKAGE}.errors")]
    assert LAYERS[top_level(f"{PACKAGE}.data.windows")] < LAYERS[top_level(f"{PACKAGE}.cli.x")]
    tree = ast.parse("class M(nn.Module):\n  pass\nloss.backward()\nopt = torch.optim.Adam(p)\n")
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert {_name_of(b) for b in classes[0].bases} & MODULE_BASES
    assert "backward" in {_name_of(c.func) for c in calls}
    assert any(isinstance(c.func, ast.Attribute) and _mentions_optim(c.func) for c in calls)


def _check(rule: str, found: set[tuple[str, str]]) -> None:
    known = {v for v in KNOWN_VIOLATIONS if v[0] == rule}
    new = sorted(found - known)
    fixed = sorted(known - found)
    assert not new, f"new {rule} violation(s): " + "; ".join(v[1] for v in new)
    assert not fixed, ("fixed, remove from KNOWN_VIOLATIONS: "
                       + "; ".join(v[1] for v in fixed))


def test_no_import_cycles():
    _check("cycle", cycle_violations())


def test_no_upward_imports():
    _check("upward", upward_violations())


def test_cli_is_thin():
    _check("cli", cli_violations())
