"""Atomic file writes: a temporary file beside the destination, renamed only when complete.

An interrupted write never leaves a partial file, and an existing file stays intact until
the new one is whole. The temporary name carries the writer's process id
(``.NAME.PID.XXXXXX.tmp``); a process killed mid-write cannot remove its own, so the next
write to the same destination removes the temporaries of writers that no longer run.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success give it the usual permissions
    (``mkstemp`` creates files readable by the owner only) and rename it to ``path``."""
    path = Path(path)
    remove_stale_temporaries(path, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix,
                               dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike, suffix: str = ".tmp") -> list[Path]:
    """Remove ``.NAME.PID.*SUFFIX`` files beside ``path`` whose writer process has ended."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    removed = []
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(f".{glob.escape(path.name)}.*{suffix}"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:
                pass
    return removed
