"""One registry for everything the toolkit looks up by name.

Systems, assimilation methods, forecasters, training recipes and simulators are each a
:class:`Registry`. A registry is filled from three sources, in this order of precedence:

1. objects registered in this process (:meth:`Registry.register`, usable as a decorator);
2. the package's built-in modules (``builtins``), imported on the first lookup;
3. other installed packages, through the entry-point group ``group``
   (e.g. ``pyro_videossm.systems``), loaded on the first lookup, so a user's dynamics or model
   appears in ``videossm`` without editing this package::

       # in the user's pyproject.toml
       [project.entry-points."pyro_videossm.systems"]
       rossler = "my_package.rossler:Rossler"

A lookup may also name an object by import path, ``"module:attr"`` (``--system
my_package.rossler:Rossler`` on the command line), which needs no registration at all.
Unknown names raise a one-line :class:`~pyro_videossm.errors.InputError` listing the known ones.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from pyro_videossm.errors import InputError

T = TypeVar("T")

#: The entry-point groups, one per kind of registry.
ENTRY_POINT_GROUPS: dict[str, str] = {
    "system": "pyro_videossm.systems",
    "method": "pyro_videossm.methods",
    "forecaster": "pyro_videossm.forecasters",
    "recipe": "pyro_videossm.recipes",
    "simulator": "pyro_videossm.simulators",
}


def import_object(spec: str, *, kind: str = "object") -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted). One-line error if it fails."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InputError(f"{kind} {spec!r} is not of the form module:attribute")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise InputError(f"cannot import {kind} module {module_name!r}: {_one_line(err)}") from None
    except Exception as err:  # the module itself is broken: one line, not a traceback
        raise InputError(f"importing {kind} module {module_name!r} failed: "
                         f"{type(err).__name__}: {_one_line(err)}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"module {module_name!r} has no {kind} {attr!r}") from None
    return obj


class Registry(Generic[T]):
    """Name -> object, filled by registration, built-in modules and entry points.

    :param kind: what the registry holds, for messages (``"system"``, ``"method"``, ...).
    :param group: the entry-point group other packages add to (default from
        :data:`ENTRY_POINT_GROUPS`).
    :param builtins: modules of this package whose import registers the built-in entries.
    :param name_of: how :meth:`register` names an object when no name is given (default: its
        ``name`` attribute, else ``__name__``).
    """

    def __init__(self, kind: str, *, group: str | None = None, builtins: tuple[str, ...] = (),
                 name_of: Callable[[Any], str] | None = None) -> None:
        self.kind = kind
        self.group = group if group is not None else ENTRY_POINT_GROUPS.get(kind, "")
        self.builtins = tuple(builtins)
        self._name_of = name_of or _default_name
        self._entries: dict[str, T] = {}
        self._entry_points: dict[str, importlib.metadata.EntryPoint] = {}
        self._loaded = False
        self._lock = threading.RLock()

    # -- filling ---------------------------------------------------------------------------
    def register(self, obj: T | None = None, *, name: str | None = None,
                 replace: bool = True) -> Any:
        """Register ``obj`` under ``name`` (default: ``obj.name``); returns ``obj``.

        Used bare (``@registry.register``) or with a name (``@registry.register(name="x")``).
        """
        if obj is None:
            return lambda o: self.register(o, name=name, replace=replace)
        key = name if name is not None else self._name_of(obj)
        if not key:
            raise ValueError(f"cannot register a {self.kind} without a name: {obj!r}")
        with self._lock:
            if not replace and key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a registered entry or a not-yet-loaded entry point)."""
        with self._lock:
            self._entries.pop(name, None)
            self._entry_points.pop(name, None)

    def pop(self, name: str, default: Any = None) -> Any:
        """Remove ``name`` and return its registered object (``default`` if none), as a dict."""
        with self._lock:
            self._entry_points.pop(name, None)
            return self._entries.pop(name, default)

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True  # first, so that a built-in module may look names up
            try:
                for module in self.builtins:
                    importlib.import_module(module)
                self.refresh_entry_points()
            except BaseException:
                self._loaded = False  # retried (and the error raised again) on the next lookup
                raise

    def refresh_entry_points(self) -> None:
        """Re-read the entry-point group (for packages installed after the first lookup)."""
        if not self.group:
            return
        for ep in importlib.metadata.entry_points(group=self.group):
            if ep.name not in self._entries:
                self._entry_points[ep.name] = ep

    # -- lookup ----------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The known names, sorted (entry points included, not yet imported)."""
        self._load()
        return sorted(set(self._entries) | set(self._entry_points))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def get(self, name: str) -> T:
        """The object registered as ``name``, or imported from ``"module:attr"``."""
        if not isinstance(name, str) or not name:
            raise InputError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        self._load()
        if name in self._entries:
            return self._entries[name]
        if name in self._entry_points:
            ep = self._entry_points[name]
            try:
                obj = ep.load()
            except Exception as err:  # a broken plug-in is reported, not a traceback
                raise InputError(f"{self.kind} {name!r} from entry point {ep.value!r} failed "
                                 f"to load: {type(err).__name__}: {_one_line(err)}") from None
            with self._lock:
                self._entries[name] = obj
                self._entry_points.pop(name, None)
            return obj
        if ":" in name:
            return import_object(name, kind=self.kind)
        known = ", ".join(self.names()) or "none"
        raise InputError(f"unknown {self.kind} {name!r}; known: {known} "
                         f"(or give module:attribute)")

    __getitem__ = get

    def items(self) -> list[tuple[str, T]]:
        """``(name, object)`` for every known name (imports the entry points)."""
        return [(n, self.get(n)) for n in self.names()]

    # -- registries of classes -----------------------------------------------------------
    def subclass(self, name: str, base: type) -> Any:
        """The class registered as ``name`` (or imported from ``"module:Class"``); an
        InputError unless it is a subclass of ``base``."""
        cls = self.get(name)
        if not (isinstance(cls, type) and issubclass(cls, base)):
            article = "an" if base.__name__[:1] in "AEIOU" else "a"
            raise InputError(f"{self.kind} {name!r} is not {article} {base.__name__} subclass: "
                             f"{cls!r}")
        return cls

    def build(self, name: str, base: type, options: dict[str, Any], *,
              ignore: tuple[str, ...] = ("self",)) -> Any:
        """``subclass(name, base)(**options)``; an option its ``__init__`` does not take (the
        parameters named in ``ignore`` left out) is an InputError listing those it takes."""
        cls = self.subclass(name, base)
        accepted = set(inspect.signature(cls.__init__).parameters) - set(ignore)
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise InputError(f"{self.kind} {name!r} takes no option {unknown[0]!r} "
                             f"(options: {', '.join(sorted(accepted)) or 'none'})")
        return cls(**options)


def _default_name(obj: Any) -> str:
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(obj, "__name__", "")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())
