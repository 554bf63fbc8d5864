"""Pages the site builds from the repository (run by the mkdocs-gen-files plugin, see mkdocs.yml).

- ``api/``: one page per package of ``pyro_videossm`` (and per family under ``models/``),
  found on disk, so a new package appears without editing anything; a ``SUMMARY.md`` gives
  their order to mkdocs-literate-nav.
- ``tutorials/``: the notebooks of ``tutorials/``, copied in as they are committed (the
  mkdocs-jupyter plugin renders them with their stored outputs; nothing is executed).
- ``index.md``: the README, followed by the committed ``docs/index.md`` (the page list).

Relative links to files of the repository outside ``docs/`` (``../benchmarks/x.py`` in a page,
``benchmarks/x.py`` in the README) work on GitHub but not on the site: they become code spans
naming the file. A link whose target does not exist is left alone, so ``mkdocs build --strict``
still reports it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mkdocs_gen_files

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PACKAGE = "pyro_videossm"

#: Top-level packages/modules left out of the API reference (thin command-line layer).
SKIPPED = {"cli", "__main__", "__init__"}
#: Packages whose sub-packages get a page each.
SPLIT = {"models"}
#: The order of the reference: lower layers first (docs/ARCHITECTURE.md); others follow.
ORDER = ["registry", "errors", "atomic", "dynamics", "data", "nn", "models", "filters",
         "assimilate", "forecast", "infer", "metrics", "plots", "evaluation", "experiments"]

LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def repo_links_to_code(text: str, page: Path) -> str:
    """Turn ``[text](path)`` pointing at an existing repository file outside docs/ into
    ``text (`path`)``; ``page`` is the file the text comes from."""

    def replace(match: re.Match) -> str:
        bang, label, target = match.groups()
        if bang or re.match(r"[a-z][a-z0-9+.-]*:|#|/", target):
            return match.group(0)
        path = target.split("#")[0]
        resolved = (page.parent / path).resolve()
        if not resolved.exists() or DOCS in (resolved, *resolved.parents):
            return match.group(0)
        shown = resolved.relative_to(REPO).as_posix()
        return f"`{shown}`" if label.strip("`") == shown or not label else f"{label} (`{shown}`)"

    return LINK.sub(replace, text)


def readme_for_site(text: str) -> str:
    """The README as the site's home page: ``docs/X`` links become ``X``."""
    text = re.sub(r"\]\(docs/", "](", text)
    return repo_links_to_code(text, REPO / "README.md")


def api_pages() -> list[tuple[str, str]]:
    """``(title, dotted name)`` of every API page, lower layers first."""
    root = REPO / PACKAGE
    names = [p.stem for p in root.glob("*.py")] + [
        p.parent.name for p in root.glob("*/__init__.py")]
    names = sorted(set(names) - SKIPPED, key=lambda n: (ORDER.index(n) if n in ORDER
                                                         else len(ORDER), n))
    pages = []
    for name in names:
        pages.append((name, f"{PACKAGE}.{name}"))
        if name in SPLIT:
            for sub in sorted(p.parent.name for p in (root / name).glob("*/__init__.py")):
                pages.append((f"{name}.{sub}", f"{PACKAGE}.{name}.{sub}"))
    return pages


def source_of(dotted: str) -> Path:
    """The file that defines module ``dotted``."""
    path = REPO / Path(*dotted.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def modules_of_page(dotted: str) -> list[str]:
    """The modules a page documents: the module itself, and for a package all modules below
    it, except the sub-packages that have their own page."""
    path = source_of(dotted)
    if path.name != "__init__.py":
        return [dotted]
    found = [dotted]
    own_pages = {d for _, d in api_pages() if d.startswith(dotted + ".")}
    for file in sorted(path.parent.rglob("*.py")):
        parts = file.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name == dotted or any(part.startswith("_") and part != "__init__"
                                 for part in parts):
            continue
        if any(name == p or name.startswith(p + ".") for p in own_pages):
            continue
        found.append(name)
    return found


def defined_names(file: Path) -> list[str]:
    """Public names a module defines itself (not re-exports): classes, functions and
    UPPER_CASE constants, in source order."""
    tree = ast.parse(file.read_text(), filename=str(file))
    names = []
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets
                      if isinstance(t, ast.Name) and t.id.isupper() and len(t.id) > 1]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def directive(dotted: str, *, root_heading: bool) -> str:
    """A mkdocstrings block for one module listing only what it defines, so re-exported
    names are documented once, where they are defined."""
    members = ", ".join(defined_names(source_of(dotted)))
    return (f"::: {dotted}\n    options:\n      show_root_heading: {str(root_heading).lower()}\n"
            f"      show_submodules: false\n      members: [{members}]\n")


def write_api() -> None:
    summary = []
    for title, dotted in api_pages():
        path = Path("api", *title.split(".")).with_suffix(".md")
        blocks = [directive(m, root_heading=m != dotted) for m in modules_of_page(dotted)]
        with mkdocs_gen_files.open(path, "w") as page:
            page.write(f"# `{dotted}`\n\n" + "\n".join(blocks))
        mkdocs_gen_files.set_edit_path(path, Path("..") / source_of(dotted).relative_to(REPO))
        indent = "    " * title.count(".")
        summary.append(f"{indent}* [{title.split('.')[-1]}]({path.relative_to('api').as_posix()})")
    with mkdocs_gen_files.open("api/SUMMARY.md", "w") as nav:
        nav.write("\n".join(summary) + "\n")


def write_tutorials() -> None:
    summary = []
    for notebook in sorted((REPO / "tutorials").glob("*.ipynb")):
        with mkdocs_gen_files.open(f"tutorials/{notebook.name}", "wb") as out:
            out.write(notebook.read_bytes())
        title = notebook.stem.replace("_", " ")
        summary.append(f"* [{title[:1].upper() + title[1:]}]({notebook.name})")
    with mkdocs_gen_files.open("tutorials/SUMMARY.md", "w") as nav:
        nav.write("\n".join(summary) + "\n")


def write_home() -> None:
    readme = readme_for_site((REPO / "README.md").read_text())
    pages = (DOCS / "index.md").read_text()
    with mkdocs_gen_files.open("index.md", "w") as home:
        home.write(readme.rstrip() + "\n\n" + pages)


def fix_page_links() -> None:
    for page in sorted(DOCS.glob("*.md")):
        if page.name == "index.md":
            continue
        text = page.read_text()
        fixed = repo_links_to_code(text, page)
        if fixed != text:
            with mkdocs_gen_files.open(page.name, "w") as out:
                out.write(fixed)


write_api()
write_tutorials()
write_home()
fix_page_links()
