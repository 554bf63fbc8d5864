"""Griffe extension for the API reference: Sphinx roles in docstrings become links.

The docstrings name objects the Sphinx way (``:class:`~pyro_videossm.errors.InputError```,
``:func:`jacobian```, ``:meth:`register```). Markdown shows those literally, so each role is
rewritten into an optional cross-reference of mkdocs-autorefs: a link where the object is in
the reference, plain code where it is not (``torch.nn.Module``), never a build warning.
A short name is looked up from the documented object outwards (its class, module, packages).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

EXPLICIT_TITLE = re.compile(r"(.*?)\s*<([^<>]+)>")
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|obj|exc|const):`(~?)([^`]+)`")


def _scopes(obj: griffe.Object) -> list[griffe.Object]:
    """The object (if it holds members), then its parents up to the package."""
    scopes = []
    current: Any = obj
    while current is not None:
        if current.is_class or current.is_module:
            scopes.append(current)
        current = current.parent
    return scopes


def _resolve(name: str, obj: griffe.Object) -> str:
    """The full path ``name`` refers to from ``obj`` (``name`` itself when not found); a
    re-exported name (``pyro_videossm.assimilate.get_method``) leads to where it is defined,
    which is where the reference documents it."""
    first = name.split(".")[0]
    path = name
    for scope in _scopes(obj):
        if first in scope.members:
            path = f"{scope.path}.{name}"
            break
    package = _scopes(obj)[-1]
    if path.startswith(package.path + "."):
        try:
            target = package[path.removeprefix(package.path + ".")]
            return target.final_target.path if target.is_alias else target.path
        except Exception:  # unknown or unresolvable: keep the name as written
            return path
    return path


def rewrite(text: str, obj: griffe.Object) -> str:
    def replace(match: re.Match) -> str:
        short, name = match.groups()
        name = " ".join(name.split())
        explicit = EXPLICIT_TITLE.fullmatch(name)
        if explicit:  # :meth:`title <target>`
            title, name = explicit.groups()
        else:
            name = name.removesuffix("()")
            title = name.split(".")[-1] if short else name
        return (f'<autoref identifier="{html.escape(_resolve(name, obj))}" optional>'
                f"<code>{html.escape(title)}</code></autoref>")

    return ROLE.sub(replace, text)


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


class SphinxRoles(griffe.Extension):
    """Rewrites Sphinx roles in every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None and ":`" in obj.docstring.value:
                obj.docstring.value = rewrite(obj.docstring.value, obj)
