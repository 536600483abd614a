"""How many threads a process lets its numeric libraries use: `listen` one (a window a second needs
no more, and idle BLAS threads spin), training and evaluation what `--threads` says."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from monitor.errors import SpecmonError


def limit_threads(n: int | None) -> None:
    """At most `n` threads for BLAS (numpy's matrix products: the Whisper encoder's), numba and
    TensorFlow in this process (None: the libraries' own choice, every core). Two processes that
    each take every core of two run four threads on two: BLAS threads then spin against each other
    and the encoder's states take about three times as long."""
    if n is None:
        return
    if n < 1:
        raise SpecmonError(f"--threads {n}: at least one")
    # TensorFlow reads these when it starts (it is imported later, when a network is trained).
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(n)
    _blas_limit(n)
    _numba_limit(n)


@contextmanager
def threads_limited(n: int) -> Iterator[None]:
    """limit_threads(n) for BLAS and numba inside a block only; after it both are as they were. For
    a benchmark that measures `listen`'s computation (one thread) in a process that measures more."""
    import numba

    with _blas_limit(n):
        was = _numba_limit(n)
        try:
            yield
        finally:
            numba.set_num_threads(was)


def _blas_limit(n: int):
    """BLAS limited to n threads from now on; the returned limits, as a context, restore it."""
    import numpy  # noqa: F401  (loads BLAS, so that threadpoolctl finds it)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(n)


def _numba_limit(n: int) -> int:
    """numba's threads (of this thread) limited to n; returns how many it had."""
    import numba

    was = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return was
