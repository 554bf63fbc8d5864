"""The one writer of docs/RESULTS.md sections, and their regeneration from run records.

A section of a results file sits between two markers::

    <!-- BEGIN name -->
    ...body...
    <!-- END name -->

:func:`write_section` replaces one body (or adds the section), atomically; the permissions of
the file are kept (0644 for a new file) and every byte outside the markers stays the same.
With ``record=`` it also stores the run record (:mod:`pyro_videossm.experiments.records`)
with the body parsed into ``section.blocks``: text blocks and tables whose numeric cells are
stored as numbers with the format that prints them back. :func:`regenerate` rebuilds every
marked section of a file from the stored records, without running anything::

    python -m pyro_videossm.experiments.results --regenerate          # rewrite the files
    python -m pyro_videossm.experiments.results --check               # exit 1 if they differ

A section may be made of several records (``section.part`` 0, 1, ...: e.g. one per
experiment); their bodies are joined with a blank line. A record's ``section.file`` names the
results file (default ``docs/RESULTS.md``, relative to the repository).
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyro_videossm.atomic import atomic_path
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.records import FILE_MODE, REPO, read_records, write_record

DEFAULT_RESULTS = "docs/RESULTS.md"
#: Where the committed records live (read recursively; other JSON files are skipped).
RECORD_FOLDERS = (REPO / "benchmarks" / "results", REPO / "assimilation" / "results")

_MARKER = re.compile(r"<!-- BEGIN (\S+) -->\n")


def markers(name: str) -> tuple[str, str]:
    """The BEGIN and END markers of section ``name``."""
    if not name or any(c.isspace() for c in name) or "--" in name:
        raise InputError(f"bad section name {name!r}")
    return f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"


def section_span(text: str, name: str) -> tuple[int, int] | None:
    """``(start, stop)`` of the body of section ``name`` in ``text`` (between the newline
    after BEGIN and the newline before END), or None if the section is absent."""
    begin, end = markers(name)
    a = text.find(begin + "\n")
    if a < 0:
        return None
    b = text.find("\n" + end, a + len(begin))
    if b < 0:
        raise InputError(f"section {name!r} has a BEGIN marker but no END marker")
    return a + len(begin) + 1, b


def section_body(text: str, name: str) -> str | None:
    span = section_span(text, name)
    return None if span is None else text[span[0]:span[1]]


def section_names(text: str) -> list[str]:
    """Names of the marked sections of ``text``, in order."""
    return _MARKER.findall(text)


def replace_section(text: str, name: str, body: str, *, append: bool = False,
                    where: Callable[[str], int] | None = None) -> str:
    """``text`` with the body of section ``name`` replaced by ``body`` (with ``append``: the
    old body, a blank line, then ``body``). An absent section is inserted at ``where(text)``
    (default: the end of the file), separated by blank lines."""
    begin, end = markers(name)
    span = section_span(text, name)
    if span is not None:
        if append and text[span[0]:span[1]].strip():
            body = text[span[0]:span[1]].strip() + "\n\n" + body
        return text[:span[0]] + body + text[span[1]:]
    block = f"{begin}\n{body}\n{end}"
    at = len(text) if where is None else where(text)
    head, tail = text[:at].rstrip("\n"), text[at:].lstrip("\n")
    return (head + "\n\n" if head else "") + block + "\n" + ("\n" + tail if tail else "")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` atomically; the file keeps its permissions (0644 when new)."""
    path = Path(path)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else FILE_MODE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def write_section(path: str | os.PathLike, name: str, body: str, *, append: bool = False,
                  where: Callable[[str], int] | None = None, header: str = "",
                  record: Mapping[str, Any] | None = None,
                  record_path: str | os.PathLike | None = None, part: int = 0) -> str:
    """Replace (or add) section ``name`` of the markdown file ``path`` with ``body``.

    ``header`` starts a file that does not exist yet. With ``record`` (a run record) the
    record is stored at ``record_path`` with ``section`` = name, file, part and the body's
    blocks, so :func:`regenerate` can rebuild the section from it. Returns the new text.
    """
    path = Path(path)
    body = body.rstrip()
    text = path.read_text(encoding="utf-8") if path.exists() else header
    new = replace_section(text, name, body, append=append, where=where)
    if record is not None:
        if record_path is None:
            raise InputError("write_section: a record needs a record_path")
        store_section_record(record_path, record, name, body, file=path, part=part)
    write_text(path, new)
    return new


def record_path_for(results: str | os.PathLike, relative: str) -> Path:
    """Where a run that writes ``results`` stores its record: ``REPO/relative`` for the
    repository's own docs files, else ``relative`` beside ``results`` (a copy, a test)."""
    results = Path(results).resolve()
    if results.parent == (REPO / "docs").resolve():
        return REPO / relative
    return results.parent / relative


# -- section records ------------------------------------------------------------------------
_NUMBER = re.compile(r"^-?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?(e[+-]\d+)?$")
_FORMATS = (".4f", ".3f", ".2f", ".1f", ".5f", ".0f", ".4g", ".3g", ".5g", ",", "g")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _as_number(cell: str) -> float | int | None:
    if not _NUMBER.match(cell):
        return None
    value = float(cell.replace(",", ""))
    return int(value) if value.is_integer() and "." not in cell and "e" not in cell else value


def _prints_as(value: float | int, spec: str, cell: str) -> bool:
    try:
        return format(value, spec) == cell
    except ValueError:
        return False


def _split_row(line: str) -> list[str] | None:
    if not (line.startswith("| ") or line.startswith("|")) or not line.endswith("|"):
        return None
    cells = [c.strip() for c in _CELL_SPLIT.split(line[1:-1])]
    return cells if render_row(cells) == line else None


def render_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\|( ?:?-+:? ?\|)+", line))


def parse_table(lines: Sequence[str]) -> dict | None:
    """A markdown table as ``{"columns", "separator", "formats", "rows"}``: numeric cells as
    numbers printed by their column's format (or ``{"value", "format"}`` when the column's
    format does not print them); None if the lines do not print back."""
    if len(lines) < 2 or not _is_separator(lines[1]):
        return None
    columns = _split_row(lines[0])
    rows = [_split_row(line) for line in lines[2:]]
    if columns is None or any(r is None or len(r) != len(columns) for r in rows):
        return None
    formats: list[str | None] = []
    for j in range(len(columns)):
        cells = [(r[j], _as_number(r[j])) for r in rows]
        numeric = [(c, v) for c, v in cells if v is not None]
        best, hits = None, 0
        for spec in _FORMATS:
            n = sum(_prints_as(v, spec, c) for c, v in numeric)
            if n > hits:
                best, hits = spec, n
        formats.append(best)
        for r in rows:
            v = _as_number(r[j])
            if v is None:
                continue
            if best is not None and _prints_as(v, best, r[j]):
                r[j] = v
            else:  # a number its column's format does not print: it keeps its own
                spec = next((s for s in _FORMATS if _prints_as(v, s, r[j])), None)
                if spec is not None:
                    r[j] = {"value": v, "format": spec}
    table = {"columns": columns, "separator": lines[1], "formats": formats, "rows": rows}
    return table if render_table(table) == "\n".join(lines) else None


def _render_cell(cell: Any, spec: str | None) -> str:
    if isinstance(cell, str):
        return cell
    if isinstance(cell, Mapping):
        return format(cell["value"], cell["format"])
    return format(cell, spec)


def render_table(table: Mapping[str, Any]) -> str:
    """The markdown of a table stored by :func:`parse_table`."""
    lines = [render_row(table["columns"]), table["separator"]]
    for row in table["rows"]:
        lines.append(render_row([_render_cell(c, spec) for c, spec in zip(row, table["formats"])]))
    return "\n".join(lines)


def parse_blocks(body: str) -> list[dict]:
    """``body`` as a list of ``{"text": str}`` and ``{"table": {...}}`` blocks that
    :func:`render_blocks` prints back byte for byte."""
    lines = body.split("\n")
    blocks: list[dict] = []
    text: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and lines[j].startswith("|"):
            j += 1
        table = parse_table(lines[i:j]) if j - i >= 2 else None
        if table is not None:
            if text:
                blocks.append({"text": "\n".join(text)})
                text = []
            blocks.append({"table": table})
            i = j
        else:
            text.append(lines[i])
            i += 1
    if text or not blocks:
        blocks.append({"text": "\n".join(text)})
    if render_blocks(blocks) != body:  # pragma: no cover - guarded by the tests
        raise InputError("section body does not print back from its blocks")
    return blocks


def render_blocks(blocks: Iterable[Mapping[str, Any]]) -> str:
    return "\n".join(b["text"] if "text" in b else render_table(b["table"]) for b in blocks)


def _relative(path: str | os.PathLike) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def store_section_record(record_path: str | os.PathLike, record: Mapping[str, Any], name: str,
                         body: str, *, file: str | os.PathLike = DEFAULT_RESULTS,
                         part: int = 0) -> Path:
    """Write ``record`` with ``section`` = the parsed ``body`` of section ``name``."""
    payload = {k: v for k, v in record.items() if not k.startswith("_")}
    payload["section"] = {"name": name, "file": _relative(REPO / file), "part": int(part),
                          "blocks": parse_blocks(body)}
    return write_record(record_path, payload)


def remove_section_records(folder: str | os.PathLike, name: str,
                           keep: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Delete the records of section ``name`` in ``folder`` (not recursively) except
    ``keep``: a run that rewrites a whole section drops the parts of older runs."""
    folder, kept = Path(folder), {Path(k).resolve() for k in keep}
    gone = []
    if folder.is_dir():
        for rec in read_records(folder):
            path = Path(rec["_path"])
            if (path.parent == folder and path.resolve() not in kept
                    and isinstance(rec.get("section"), dict)
                    and rec["section"].get("name") == name):
                path.unlink()
                gone.append(path)
    return gone


def render_section(records: Sequence[Mapping[str, Any]]) -> str:
    """The body of one section from its records (joined in ``part`` order)."""
    ordered = sorted(records, key=lambda r: r["section"].get("part", 0))
    parts = [r["section"].get("part", 0) for r in ordered]
    if len(set(parts)) != len(parts):
        paths = [r.get("_path", r.get("name")) for r in ordered]
        raise InputError(f"section {ordered[0]['section']['name']!r}: two records share a "
                         f"part ({', '.join(map(str, paths))})")
    return "\n\n".join(render_blocks(r["section"]["blocks"]) for r in ordered)


def section_records(folders: Iterable[str | os.PathLike] = RECORD_FOLDERS
                    ) -> dict[str, dict[str, list[dict]]]:
    """``{results file: {section name: [records]}}`` of the records below ``folders``."""
    out: dict[str, dict[str, list[dict]]] = {}
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for rec in read_records(folder):
            sec = rec.get("section")
            if isinstance(sec, dict) and "blocks" in sec:
                file = sec.get("file", DEFAULT_RESULTS)
                out.setdefault(file, {}).setdefault(sec["name"], []).append(rec)
    return out


def regenerate_text(text: str, sections: Mapping[str, Sequence[Mapping[str, Any]]],
                    *, source: str = "the results file") -> str:
    """``text`` with every marked section rebuilt from ``sections`` (name -> records); a
    marked section without records is an InputError."""
    missing = [n for n in section_names(text) if n not in sections]
    if missing:
        raise InputError(f"{source}: no run record for section(s) {', '.join(missing)}")
    for name in section_names(text):
        a, b = section_span(text, name)
        text = text[:a] + render_section(sections[name]) + text[b:]
    return text


def regenerate(root: str | os.PathLike = REPO, folders: Iterable[str | os.PathLike] | None = None,
               *, write: bool = True) -> dict[str, tuple[str, str]]:
    """Rebuild every results file named by the records from the records: ``{file: (old,
    new)}``; the files are rewritten (only when they change) unless ``write`` is False."""
    root = Path(root)
    folders = RECORD_FOLDERS if folders is None else folders
    out = {}
    for file, sections in sorted(section_records(folders).items()):
        path = root / file
        if not path.exists():
            raise InputError(f"records name {file}, which does not exist under {root}")
        old = path.read_text(encoding="utf-8")
        new = regenerate_text(old, sections, source=file)
        out[file] = (old, new)
        if write and new != old:
            write_text(path, new)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pyro_videossm.experiments.results",
        description="Rebuild the marked sections of docs/RESULTS.md (and the other results "
                    "files the records name) from the stored run records; nothing is rerun.")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--regenerate", action="store_true", help="rewrite the files (default)")
    what.add_argument("--check", action="store_true",
                      help="only compare; exit 1 if a file differs from its records")
    p.add_argument("--root", type=Path, default=REPO, help="repository root (default: this one)")
    p.add_argument("--records", type=Path, nargs="+", default=None,
                   help="record folders (default: benchmarks/results assimilation/results)")
    args = p.parse_args(argv)
    folders = args.records or [args.root / f.relative_to(REPO) for f in RECORD_FOLDERS]
    try:
        done = regenerate(args.root, folders, write=not args.check)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    differ = [f for f, (old, new) in done.items() if old != new]
    for file in done:
        state = "differs from its records" if file in differ else "matches its records"
        if not args.check and file in differ:
            state = "rewritten from its records"
        print(f"{file}: {state}")
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
