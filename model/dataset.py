"""Dataset builder: manifest -> labelled clips -> speaker-disjoint splits -> class-balanced windows.

The recipe: a speaker's clips of one emotion are joined into one stream (a "dictionary" keyed by
speaker), streams are cut into 4-second windows, and windows are sampled so that, for every speaker,
the negative and neutral classes are equally represented. Splits are by speaker only.
Audio goes through monitor.audio and monitor.features: the exact path `specmon score` uses.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.audio import load_audio
from monitor.errors import SpecmonError
from monitor.features import WINDOW_FRAMES, WINDOW_SAMPLES, loop_to_window, normalize, stft_logpower

COLUMNS = ("path", "corpus", "speaker", "gender", "emotion", "language", "seconds")
NEGATIVE = ("anger", "sadness", "fear", "disgust")
NEUTRAL = ("neutral", "calm")
OTHER = ("happiness", "surprise", "boredom")  # not trained on; scored in evaluation (false alarms)
KNOWN_EMOTIONS = NEGATIVE + NEUTRAL + OTHER


@dataclass(frozen=True)
class Clip:
    path: Path
    corpus: str
    speaker: str
    gender: str
    emotion: str
    language: str
    seconds: float

    @property
    def label(self) -> int | None:
        """1 negative, 0 neutral, None for emotions that are only evaluated."""
        return label_of(self.emotion)


def label_of(emotion: str) -> int | None:
    if emotion in NEGATIVE:
        return 1
    if emotion in NEUTRAL:
        return 0
    return None


def read_manifest(path: str | Path, check_files: bool = True) -> list[Clip]:
    """Read and validate a manifest; audio paths are relative to the manifest's folder."""
    p = Path(path)
    if not p.is_file():
        raise SpecmonError(f"{p}: manifest not found")
    with open(p, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SpecmonError(f"{p}: manifest lacks column(s) {', '.join(missing)}")
        clips = []
        for line, row in enumerate(reader, start=2):
            emo = row["emotion"].strip().lower()
            if emo not in KNOWN_EMOTIONS:
                raise SpecmonError(
                    f"{p}:{line}: unknown emotion {row['emotion']!r} "
                    f"(known: {', '.join(KNOWN_EMOTIONS)})"
                )
            audio = (p.parent / row["path"]).resolve()
            if check_files and not audio.is_file():
                raise SpecmonError(f"{p}:{line}: audio file {row['path']} not found")
            try:
                seconds = float(row["seconds"] or 0.0)
            except ValueError:
                raise SpecmonError(f"{p}:{line}: seconds {row['seconds']!r} is not a number") from None
            clips.append(
                Clip(audio, row["corpus"], row["speaker"], row["gender"], emo, row["language"],
                     seconds)
            )
    if not clips:
        raise SpecmonError(f"{p}: manifest has no rows")
    return clips


def speakers_of(clips: list[Clip]) -> list[str]:
    return sorted({c.speaker for c in clips})


def speaker_folds(clips: list[Clip], k: int, seed: int = 0) -> list[list[str]]:
    """Assign every speaker to one of k folds, spreading each corpus's speakers across folds."""
    by_corpus: dict[str, list[str]] = defaultdict(list)
    for s in speakers_of(clips):
        corpus = next(c.corpus for c in clips if c.speaker == s)
        by_corpus[corpus].append(s)
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    i = 0
    for corpus in sorted(by_corpus):
        spk = list(by_corpus[corpus])
        rng.shuffle(spk)
        for s in spk:
            folds[i % k].append(s)
            i += 1
    return folds


def split_by_speaker(clips: list[Clip], test_speakers: set[str]) -> tuple[list[Clip], list[Clip]]:
    """(train, test) with no speaker on both sides."""
    train = [c for c in clips if c.speaker not in test_speakers]
    test = [c for c in clips if c.speaker in test_speakers]
    assert not ({c.speaker for c in train} & {c.speaker for c in test})
    return train, test


def load_all(clips: list[Clip], progress=None) -> dict[Path, np.ndarray]:
    """Decode every clip once (16 kHz mono float32), in parallel; progress(n_done) after each."""
    out: dict[Path, np.ndarray] = {}
    with ThreadPoolExecutor(max_workers=4) as ex:
        for c, x in zip(clips, ex.map(lambda c: load_audio(c.path), clips), strict=True):
            out[c.path] = x
            if progress:
                progress(len(out))
    return out


@dataclass
class Stream:
    """One speaker's clips of one emotion, joined in a fixed shuffled order."""

    speaker: str
    corpus: str
    emotion: str
    audio: np.ndarray
    clips: list[Clip] = field(default_factory=list)

    @property
    def label(self) -> int | None:
        return label_of(self.emotion)


def build_streams(clips: list[Clip], audio: dict[Path, np.ndarray], seed: int = 0) -> list[Stream]:
    """The recipe's dictionary: (speaker, emotion) -> one joined stream, clip order seeded."""
    groups: dict[tuple[str, str], list[Clip]] = defaultdict(list)
    for c in clips:
        groups[(c.speaker, c.emotion)].append(c)
    streams = []
    for (spk, emo), group in sorted(groups.items()):
        group = sorted(group, key=lambda c: str(c.path))
        key = int(hashlib.sha256(f"{seed}:{spk}:{emo}".encode()).hexdigest()[:8], 16)
        np.random.default_rng(key).shuffle(group)
        x = np.concatenate([audio[c.path] for c in group]).astype(np.float32)
        streams.append(Stream(spk, group[0].corpus, emo, loop_to_window(x), group))
    return streams


@dataclass
class WindowSet:
    """Normalized windows with their labels and provenance, ready for a model."""

    x: np.ndarray  # n x 513 x 125 float32
    y: np.ndarray  # n int (1 negative, 0 neutral, -1 other emotion)
    speaker: np.ndarray
    corpus: np.ndarray
    emotion: np.ndarray


def stream_windows(s: Stream) -> np.ndarray:
    """Non-overlapping windows of a stream (the schedule `specmon score` uses with stride 4 s)."""
    spec, _ = stft_logpower(s.audio)
    n = spec.shape[1] // WINDOW_FRAMES
    return np.stack([normalize(spec[:, i * WINDOW_FRAMES:(i + 1) * WINDOW_FRAMES]) for i in range(n)])


def eval_windows(streams: list[Stream], seed: int = 0, others: bool = True) -> WindowSet:
    """Deterministic evaluation windows, class-balanced per speaker.

    For each speaker, all neutral-class windows are kept and as many negative windows are drawn
    (seeded), spread evenly over the negative emotions; if negative windows are fewer, neutral ones
    are drawn down instead. Other emotions' windows are all kept (label -1) when `others`.
    """
    rng = np.random.default_rng(seed)
    xs, ys, spk, cor, emo = [], [], [], [], []

    def add(s: Stream, w: np.ndarray, label: int) -> None:
        xs.append(w)
        ys.extend([label] * len(w))
        spk.extend([s.speaker] * len(w))
        cor.extend([s.corpus] * len(w))
        emo.extend([s.emotion] * len(w))

    by_speaker: dict[str, list[Stream]] = defaultdict(list)
    for s in streams:
        by_speaker[s.speaker].append(s)
    for speaker in sorted(by_speaker):
        wins = {s.emotion: (s, stream_windows(s)) for s in by_speaker[speaker]}
        neu = [v for e, v in wins.items() if e in NEUTRAL]
        neg = [v for e, v in wins.items() if e in NEGATIVE]
        n_neu = sum(len(w) for _, w in neu)
        n_neg = sum(len(w) for _, w in neg)
        n = min(n_neu, n_neg)
        for group in (neu, neg):
            take = _spread(n, [len(w) for _, w in group])
            for (s, w), t in zip(group, take, strict=True):
                if t:
                    add(s, w[np.sort(rng.choice(len(w), t, replace=False))], s.label)
        if others:
            for e, (s, w) in wins.items():
                if e in OTHER:
                    add(s, w, -1)
    if not xs:
        raise SpecmonError("no evaluation windows: the manifest has no neutral/negative pairs")
    return WindowSet(np.concatenate(xs), np.array(ys), np.array(spk), np.array(cor), np.array(emo))


def _spread(n: int, sizes: list[int]) -> list[int]:
    """Split n draws over groups as evenly as their sizes allow."""
    take = [0] * len(sizes)
    left = n
    while left > 0:
        open_ = [i for i in range(len(sizes)) if take[i] < sizes[i]]
        if not open_:
            break
        for i in open_:
            if left == 0:
                break
            take[i] += 1
            left -= 1
    return take


class TrainSampler:
    """Fresh class-balanced training windows every epoch: random crops of the streams, augmented.

    Per speaker and epoch, `per_class(speaker)` windows of each class are drawn; negative windows
    are spread evenly over the speaker's negative emotions. Half the crops come from the joined
    stream and half from a single clip looped to 4 s, the way `specmon score` treats short files.
    """

    def __init__(self, streams: list[Stream], audio: dict[Path, np.ndarray], augment=None,
                 min_per_class: int = 40, max_per_class: int = 250) -> None:
        self.streams = [s for s in streams if s.label is not None]
        self.audio = audio
        self.augment = augment
        by_speaker: dict[str, list[Stream]] = defaultdict(list)
        for s in self.streams:
            by_speaker[s.speaker].append(s)
        self.plan = []  # (speaker, [neutral streams], [negative streams], windows per class)
        for spk in sorted(by_speaker):
            neu = [s for s in by_speaker[spk] if s.label == 0]
            neg = [s for s in by_speaker[spk] if s.label == 1]
            if not neu or not neg:
                continue
            sec = min(sum(len(s.audio) for s in neu), sum(len(s.audio) for s in neg)) / 16000
            per = int(np.clip(sec, min_per_class, max_per_class))  # ~1 window per second of audio
            self.plan.append((spk, neu, neg, per))
        if not self.plan:
            raise SpecmonError("no speaker has both neutral and negative clips to train on")

    def __len__(self) -> int:
        return 2 * sum(p[3] for p in self.plan)

    def _crop(self, s: Stream, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < 0.5:
            x = s.audio
        else:
            c = s.clips[rng.integers(len(s.clips))]
            clip = self.audio[c.path]
            x = loop_to_window(np.roll(clip, rng.integers(len(clip))))
        off = rng.integers(0, len(x) - WINDOW_SAMPLES + 1)
        return x[off:off + WINDOW_SAMPLES]

    def epoch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for _spk, neu, neg, per in self.plan:
            for label, group in ((0, neu), (1, neg)):
                for i in range(per):
                    s = group[(i + rng.integers(len(group))) % len(group)] if label == 0 \
                        else group[i % len(group)]
                    w = self._crop(s, rng)
                    if self.augment is not None:
                        w = self.augment.wave(w, rng)
                    spec, _ = stft_logpower(w)
                    x = normalize(spec)
                    if self.augment is not None:
                        x = self.augment.spec(x, rng)
                    xs.append(x)
                    ys.append(label)
        order = rng.permutation(len(xs))
        return np.stack(xs)[order], np.array(ys, dtype=np.float32)[order]
