"""Where numba keeps its compiled-kernel cache (cache=True), so a read-only install starts warm.

numba caches next to the source (monitor/__pycache__) when that is writable. When specmon is
installed read-only (system site-packages, a Pi image, a container layer) it would otherwise fall
back to its own ~/.cache/numba, or recompile on every start (~1 s cold) when that is unavailable too.
configure() points NUMBA_CACHE_DIR at a specmon user cache dir in that case. It must run before
numba is imported (numba reads the variable once, at import): call it from monitor/__init__.py.
An explicit NUMBA_CACHE_DIR from the user always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/specmon/numba, else ~/.cache/specmon/numba."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "specmon" / "numba"


def _writable(d: Path) -> bool:
    """Can numba create files in d (its __pycache__ inside, that is)?"""
    pyc = d / "__pycache__"
    target = pyc if pyc.is_dir() else d
    return os.access(target, os.W_OK | os.X_OK)


def configure(package_dir: Path = PACKAGE_DIR, environ=os.environ) -> str | None:
    """Set NUMBA_CACHE_DIR to the user cache dir when package_dir is not writable.

    Returns the directory chosen (None: numba's default in-tree cache is used, or the user set it).
    """
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    if _writable(package_dir):
        return None
    d = user_cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # nowhere to cache: numba compiles in memory, start-up is just slower
    environ["NUMBA_CACHE_DIR"] = str(d)
    return str(d)
