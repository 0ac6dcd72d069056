"""Atomic file writes: write to a temporary file in the same folder, fsync, rename.

Readers never see a half-written file, and an interrupted write leaves the previous version intact.
The file gets the permissions ``open()`` would give it (``0o666`` less the process's umask), not the
``0o600`` of the temporary file: collaborators and a web server can read what a run writes.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO


def current_umask() -> int:
    """The process's umask, read without changing it where the OS tells it (Linux ``/proc``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, then put it back at once
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = True) -> Path:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it to ``path``.

    The temporary file is given the mode a plain ``open()`` would create (``0o666 & ~umask``) before
    the rename, so the result has the user's usual permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any, **json_kwargs) -> Path:
    """Write ``obj`` as JSON atomically (``json_kwargs`` go to ``json.dump``)."""
    return atomic_write(path, lambda f: json.dump(obj, f, **json_kwargs), binary=False)
