"""The stats head's training inputs: every window of the training streams, as recorded and through a
random recording condition, as window statistics and prosody (monitor/window_stats.py head_inputs).

They do not depend on the network, and computing them (the prosody and the voice encoder above all)
is most of a head's fit, so `stream_stats` can keep them in a cache folder, an entry per stream and
copy: every later run on the same streams (each LOCO fold of each screen, any network, any head
form) reads them back. An entry is keyed by the stream's audio and labels, the options, the code
that computes them (its syntax tree: comments, docstrings and layout do not count) and the versions
of the libraries it runs on; a change to any of these makes a new entry (old ones are not removed:
about 20 MB for all of ../shared, 80 MB more with the voice encoder's states). An encoder's states
are an entry of their own ("states-"), keyed by the encoder's code, not the statistics': a change
to the statistics recomputes seconds of work, not the encoder's hour.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import sys
import time
import zlib
from pathlib import Path

import numba
import numpy as np
import scipy

from model import augment, dataset
from model.augment import recording_condition
from model.dataset import Stream, stream_prosody, stream_states, stream_windows
from monitor import features, prosody, sample_features, voice_encoder, whisper_encoder, window_stats
from monitor.errors import SpecmonError
from monitor.features import SAMPLE_RATE, loop_to_window
from monitor.sample_features import ENCODERS
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


def _code_digest(modules: tuple) -> str:
    """The code this process computes a part of the inputs with (read once, at import: a file
    edited while a run goes on must not lend its key to the old code's results) and its libraries'
    versions."""
    h = hashlib.sha256(repr((np.__version__, scipy.__version__, numba.__version__)).encode())
    for mod in modules:
        h.update(code_of(Path(mod.__file__).read_text()).encode())
    return h.hexdigest()


# The two parts of an entry are keyed apart: the window statistics and prosody (seconds to compute
# again), and an encoder's states (an hour for all of ../shared with Whisper), so that a change to
# the statistics does not throw the states away.
_SHARED = (sys.modules[__name__], features, augment, dataset, sample_features)
CODE_DIGEST = _code_digest((*_SHARED, window_stats, prosody))
STATES_DIGEST = _code_digest((*_SHARED, voice_encoder, whisper_encoder))


@functools.cache
def weights_digest(encoder: str | None) -> str:
    """The encoder's weights, as part of a key (none without an encoder)."""
    if encoder is None:
        return ""
    return hashlib.sha256(ENCODERS[encoder].weights.read_bytes()).hexdigest()


def condition_rng(seed: int, s: Stream) -> np.random.Generator:
    """The random recording condition of a stream's training copy: seeded by the stream itself
    (speaker and emotion), not by its place in a fold's list, so every fold that trains on the
    stream gives it the same copy and one cache entry serves them all."""
    return np.random.default_rng([seed, 29, zlib.crc32(f"{s.speaker}\0{s.emotion}".encode())])


def stats_key(s: Stream, stride: int, condition_seed: int | None, prosody: bool) -> str:
    """A digest of everything one stream's window statistics (and prosody when `prosody`) are
    computed from: its audio, corpus and emotion, the recording condition of the copy
    (condition_seed; None: as recorded), the options and the code (CODE_DIGEST)."""
    return _key(s, (CODE_DIGEST, stride, condition_seed, prosody))


def states_key(s: Stream, stride: int, condition_seed: int | None, encoder: str) -> str:
    """The same for one stream's `encoder` states: the code that computes them (STATES_DIGEST)
    and the encoder's weights."""
    return _key(s, (STATES_DIGEST, weights_digest(encoder), stride, condition_seed, encoder))


def _key(s: Stream, options: tuple) -> str:
    h = hashlib.sha256(repr((*options, s.speaker, s.corpus, s.emotion, s.audio.dtype.str,
                             len(s.audio))).encode())
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
                 log=None, encoder: str | None = None) -> tuple[np.ndarray, dict, bool]:
    """(inputs, meta, cached): the head's inputs for every window of every labelled stream (window
    statistics, then the window's prosody when `prosody`, then the states of `encoder`
    (monitor.sample_features.ENCODERS) when given), per-window corpus/emotion/label, and whether all
    of them came from `cache`.

    conditioned: each stream also once more through a random recording condition (microphone, room,
    noise; `condition_rng`), so the head does not lean on the training corpora's recording chains.
    cache: a folder for the result, an entry per stream and copy (keyed by `stats_key`), so folds
    that share streams share entries. An entry that cannot be read is computed again; one that
    cannot be written is reported through `log` and the run goes on.
    """
    labelled = [s for s in streams if s.label is not None]
    seconds = sum(len(s.audio) for s in labelled) / SAMPLE_RATE
    xs, cor, emo, ys = [], [], [], []
    done, t0, shown, all_cached = 0.0, time.time(), time.time(), True
    for s in labelled:
        if log and time.time() - shown >= PROGRESS_EVERY:  # minutes of work: show it moving
            shown = time.time()
            log(f"stats head inputs: {done / seconds:.0%} of {seconds / 3600:.1f} h of speech "
                f"({shown - t0:.0f} s)")
        done += len(s.audio) / SAMPLE_RATE
        for condition_seed in (None, seed) if conditioned else (None,):
            x, hit = _entry(s, stride, condition_seed, prosody, encoder, cache, log)
            all_cached &= hit
            xs.append(x)
            cor += [s.corpus] * len(x)
            emo += [s.emotion] * len(x)
            ys += [s.label] * len(x)
    meta = {"corpus": np.array(cor), "emotion": np.array(emo), "y": np.array(ys)}
    return np.concatenate(xs), meta, all_cached and cache is not None


def _entry(s: Stream, stride: int, condition_seed: int | None, prosody: bool, encoder: str | None,
           cache: Path | None, log) -> tuple[np.ndarray, bool]:
    """One stream's (or its copy's) inputs: the statistics part and the states part, each from its
    own entry or computed."""
    def path(kind: str, key: str) -> Path | None:
        return None if cache is None else cache / f"{kind}-{key[:32]}.npy"

    copy = functools.cache(lambda: _copy(s, condition_seed))  # made once, and only on a miss
    x, hit = _part(path("stream", stats_key(s, stride, condition_seed, prosody)),
                   lambda: _stats(copy(), stride, prosody), log)
    if encoder is None:
        return x, hit
    states, states_hit = _part(path("states", states_key(s, stride, condition_seed, encoder)),
                               lambda: stream_states(copy(), stride, encoder), log)
    return np.hstack([x, states]), hit and states_hit


def _part(path: Path | None, compute, log) -> tuple[np.ndarray, bool]:
    """The entry at `path` if it can be read, else compute() (kept at `path` if one is given)."""
    if path is not None:
        try:
            return np.load(path), True
        except FileNotFoundError:
            pass
        except (OSError, ValueError, EOFError) as e:
            if log:
                log(f"head cache: {path.name} unreadable ({e}); computing it again")
    x = compute()
    if path is not None:
        # Renamed when whole: a killed run leaves no torn entry, and a run beside it no clash.
        part = path.with_name(f"{path.stem}.{os.getpid()}.part.npy")
        try:
            np.save(part, x)
            part.replace(path)
        except OSError as e:
            if log:
                log(f"head cache: could not keep {path.name} ({e.strerror or e}); going on")
        finally:
            part.unlink(missing_ok=True)
    return x, False


def _copy(s: Stream, condition_seed: int | None) -> np.ndarray:
    """The stream's samples as the head's inputs are computed from: as recorded, or its training
    copy through a random recording condition."""
    x = loop_to_window(s.audio)
    return x if condition_seed is None else recording_condition(x, condition_rng(condition_seed, s))


def _stats(x: np.ndarray, stride: int, prosody: bool) -> np.ndarray:
    windows = stream_windows(x, stride)
    pros = stream_prosody(x, stride) if prosody else [None] * len(windows)
    return np.stack([head_inputs(w, p) for w, p in zip(windows, pros, strict=True)])
