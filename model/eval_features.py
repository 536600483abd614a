"""The evaluation windows' sample features, kept in the --head-cache folder beside the head's
training inputs (model/head_inputs.py).

A LOCO or k-fold run on reused networks computes, for every fold, the prosody (and, with
--encoder, the encoder's states) of its validation windows, its test streams, their mixed streams
and their copies through a worse recording chain: with Whisper that is most of a fold's time, and
it does not depend on the head, the threshold rule or the network. `EvalFeatures` keeps those
features, an entry per stream (per speaker for the mixed streams), so a later run on the same
streams reads them back. The spectrogram windows themselves are computed again (a few ms a window,
and about a hundred times the features' size).

An entry is keyed by the stream's samples, the options, and the code and weights that compute the
features (head_inputs' CODE_DIGEST, STATES_DIGEST and weights_digest): a change to any of them
makes new entries. Without a folder, or for a head without prosody, it is model.dataset's
all_windows and iter_mixed_streams as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from model import head_inputs
from model.dataset import BLOCK_S, Stream, WindowSet, all_windows, iter_mixed_streams


def _samples_digest(streams: list[Stream]) -> str:
    h = hashlib.sha256()
    for s in streams:
        a = np.ascontiguousarray(s.audio, dtype=np.float32)
        h.update(str(a.shape).encode())
        h.update(a.data)
    return h.hexdigest()


class EvalFeatures:
    """all_windows and iter_mixed_streams, their features read from or kept in `folder`."""

    def __init__(self, folder: Path | None, prosody: bool, encoder: str | None, log=None) -> None:
        self.folder = folder if prosody else None
        self.prosody, self.encoder, self.log = prosody, encoder, log
        self.read = self.computed = 0  # entries, for the report: a fold's minutes depend on them

    def _path(self, kind: str, streams: list[Stream], options: tuple) -> Path:
        digests = (head_inputs.CODE_DIGEST,
                   head_inputs.STATES_DIGEST if self.encoder else "",
                   head_inputs.weights_digest(self.encoder))
        key = hashlib.sha256(repr((kind, digests, self.encoder, options,
                                   _samples_digest(streams))).encode()).hexdigest()
        return self.folder / f"eval-{key[:32]}.npy"

    def _cached(self, path: Path, with_features, without_features) -> list[WindowSet]:
        """The window sets of one entry: computed with their features (kept at `path`) on a miss,
        else computed without them and given the kept ones."""
        computed: list[WindowSet] = []

        def compute() -> np.ndarray:
            computed.extend(with_features())
            if not computed:  # a speaker without a whole block: nothing to keep but that
                return np.zeros((0, 0), np.float32)
            return np.concatenate([ws.prosody for ws in computed]).astype(np.float32)

        # head_inputs' reader and writer: an unreadable entry is computed again, a torn one never
        # written (renamed when whole).
        p, hit = head_inputs._part(path, compute, self.log)
        if not hit:
            self.computed += 1
            return computed
        parts, at = [], 0
        for ws in without_features():
            parts.append(dataclasses.replace(ws, prosody=p[at:at + len(ws)]))
            at += len(ws)
        if at != len(p):  # the same samples and code make the same windows: never expected
            path.unlink(missing_ok=True)
            return self._cached(path, with_features, without_features)
        self.read += 1
        return parts

    def counts(self) -> dict:
        """How many entries were read back and how many computed (and kept)."""
        return {"entries_read": self.read, "entries_computed": self.computed}

    def windows(self, streams: list[Stream]) -> WindowSet:
        """all_windows(streams, prosody, encoder): an entry per stream."""
        if self.folder is None or not streams:
            return all_windows(streams, self.prosody, self.encoder)
        return WindowSet.join([w for s in streams for w in self._cached(
            self._path("windows", [s], ()),
            lambda s=s: [all_windows([s], True, self.encoder)],
            lambda s=s: [all_windows([s], False)])])

    def mixed(self, streams: list[Stream], seed: int, stride: int) -> Iterator[WindowSet]:
        """iter_mixed_streams(streams, seed, stride=stride, prosody, encoder): an entry per
        speaker (a speaker's mixed stream depends on their streams only)."""
        if self.folder is None:
            yield from iter_mixed_streams(streams, seed, stride=stride, prosody=self.prosody,
                                          encoder=self.encoder)
            return
        by_speaker: dict[str, list[Stream]] = defaultdict(list)
        for s in streams:
            by_speaker[s.speaker].append(s)
        for speaker in sorted(by_speaker):
            own = by_speaker[speaker]
            yield from self._cached(
                self._path("mixed", own, (seed, stride, BLOCK_S)),
                lambda own=own: list(iter_mixed_streams(own, seed, stride=stride, prosody=True,
                                                        encoder=self.encoder)),
                lambda own=own: list(iter_mixed_streams(own, seed, stride=stride, prosody=False)))
