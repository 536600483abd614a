"""The stats head's training inputs: every window of the training streams, as recorded and through a
random recording condition, as window statistics and prosody (monitor/window_stats.py head_inputs).

They do not depend on the network, and computing them (the prosody above all) is most of a head's
fit, so `stream_stats` can keep them in a cache folder: every later run on the same training
streams (each LOCO fold of each screen, any network, any head form) reads them back. An entry is
keyed by the streams' audio, labels and order, the options, the code that computes them (its
syntax tree: comments, docstrings and layout do not count) and the versions of the libraries it
runs on; a change to any of these makes a new entry (old ones are not removed: about 18 MB a fold).
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import time
import zipfile
from pathlib import Path

import numba
import numpy as np
import scipy

from model import augment, dataset
from model.augment import recording_condition
from model.dataset import Stream, stream_prosody, stream_windows
from monitor import features, prosody, window_stats
from monitor.errors import SpecmonError
from monitor.features import SAMPLE_RATE, loop_to_window
from monitor.window_stats import head_inputs

STRIDE = 62  # frames: a window every ~2 s
PROGRESS_EVERY = 60.0  # seconds between progress lines while the inputs are computed


def code_of(source: str) -> str:
    """A module's code without its comments, docstrings and layout (its syntax tree): editing the
    words around the code must not throw away hours of cached inputs."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _code_digest() -> str:
    """The code this process computes the inputs with (read once, at import: a file edited while
    a run goes on must not lend its key to the old code's results) and its libraries' versions."""
    h = hashlib.sha256(repr((np.__version__, scipy.__version__, numba.__version__)).encode())
    for mod in (sys.modules[__name__], window_stats, prosody, features, augment, dataset):
        h.update(code_of(Path(mod.__file__).read_text()).encode())
    return h.hexdigest()


CODE_DIGEST = _code_digest()


def stats_key(streams: list[Stream], stride: int, conditioned: bool, seed: int,
              prosody: bool) -> str:
    """A digest of everything `stream_stats` computes from: each labelled stream's audio, corpus,
    emotion and place in the list (its recording condition is seeded by it), the options, and
    the code (CODE_DIGEST)."""
    h = hashlib.sha256(repr((CODE_DIGEST, stride, conditioned, seed, prosody)).encode())
    for i, s in enumerate(streams):
        if s.label is not None:
            h.update(repr((i, s.corpus, s.emotion, s.audio.dtype.str, len(s.audio))).encode())
            h.update(np.ascontiguousarray(s.audio).data)
    return h.hexdigest()


def check_cache(folder: Path) -> Path:
    """`folder`, created if need be; SpecmonError (one line) unless it is a folder this process can
    write, checked before any long work."""
    if folder.exists() and not folder.is_dir():
        raise SpecmonError(f"--head-cache {folder}: not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpecmonError(f"--head-cache {folder}: {e.strerror or e}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SpecmonError(f"--head-cache {folder}: not writable")
    return folder


def stream_stats(streams: list[Stream], stride: int = STRIDE, conditioned: bool = True,
                 seed: int = 0, prosody: bool = True, cache: Path | None = None,
                 log=None) -> tuple[np.ndarray, dict, bool]:
    """(inputs, meta, cached): the head's inputs for every window of every labelled stream (window
    statistics, then the window's prosody when `prosody`), per-window corpus/emotion/label, and
    whether they came from `cache`.

    conditioned: each stream also once more through a random recording condition (microphone, room,
    noise), so the head does not lean on the training corpora's recording chains.
    cache: a folder for the result (keyed by `stats_key`). An entry that cannot be read is computed
    again; one that cannot be written is reported through `log` and the run goes on.
    """
    path = None
    if cache is not None:
        path = cache / f"stats-{stats_key(streams, stride, conditioned, seed, prosody)[:32]}.npz"
        try:
            with np.load(path) as f:
                return f["x"], {k: f[k] for k in ("corpus", "emotion", "y")}, True
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            if log:
                log(f"head cache: {path.name} unreadable ({e}); computing it again")
    x, meta = _compute(streams, stride, conditioned, seed, prosody, log)
    if path is not None:
        # Renamed when whole: a killed run leaves no torn entry, and a run beside it no clash.
        part = path.with_name(f"{path.stem}.{os.getpid()}.part.npz")
        try:
            np.savez(part, x=x, **meta)
            part.replace(path)
        except OSError as e:
            if log:
                log(f"head cache: could not keep {path.name} ({e.strerror or e}); going on")
        finally:
            part.unlink(missing_ok=True)
    return x, meta, False


def _compute(streams: list[Stream], stride: int, conditioned: bool, seed: int,
             prosody: bool, log=None) -> tuple[np.ndarray, dict]:
    xs, cor, emo, ys = [], [], [], []
    seconds = sum(len(s.audio) for s in streams if s.label is not None) / SAMPLE_RATE
    done, t0, shown = 0.0, time.time(), time.time()
    for i, s in enumerate(streams):
        if s.label is None:
            continue
        if log and time.time() - shown >= PROGRESS_EVERY:  # minutes of work: show it moving
            shown = time.time()
            log(f"stats head inputs: {done / seconds:.0%} of {seconds / 3600:.1f} h of speech "
                f"({shown - t0:.0f} s)")
        done += len(s.audio) / SAMPLE_RATE
        x = loop_to_window(s.audio)
        versions = [x]
        if conditioned:
            versions.append(recording_condition(x, np.random.default_rng([seed, 29, i])))
        for v in versions:
            windows = stream_windows(v, stride)
            pros = stream_prosody(v, stride) if prosody else [None] * len(windows)
            for w, p in zip(windows, pros, strict=True):
                xs.append(head_inputs(w, p))
                cor.append(s.corpus)
                emo.append(s.emotion)
                ys.append(s.label)
    return np.stack(xs), {"corpus": np.array(cor), "emotion": np.array(emo), "y": np.array(ys)}
