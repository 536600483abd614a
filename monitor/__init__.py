"""specmon: live screening of how negative speech sounds, window by window (not a diagnosis)."""

__version__ = "0.1.0"

from monitor import numba_cache as _numba_cache  # noqa: E402

_numba_cache.configure()  # before anything imports numba: a read-only install still caches kernels
