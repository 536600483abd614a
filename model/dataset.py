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
from monitor.features import (
    HOP,
    N_FFT,
    SAMPLE_RATE,
    WINDOW_FRAMES,
    WINDOW_SAMPLES,
    loop_to_window,
    n_frames_for,
    normalize,
    stft_logpower,
    window_ends,
)
from monitor.sample_features import ENCODERS, SampleFeatures

COLUMNS = ("path", "corpus", "speaker", "gender", "emotion", "language", "seconds")
# The target: negative against everything else a person sounds like.
NEGATIVE = ("anger", "sadness", "fear", "disgust")
NON_NEGATIVE = ("neutral", "calm", "happiness", "surprise")
# Boredom is scored in evaluation only: it is in one corpus (EmoDB, 7 speakers) and its valence is
# ambiguous (low arousal, mildly negative, acoustically between neutral and sadness). Trained on either
# side it would teach a boundary that one corpus drew.
EVAL_ONLY = ("boredom",)
KNOWN_EMOTIONS = NEGATIVE + NON_NEGATIVE + EVAL_ONLY

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
        """1 negative, 0 not negative, None for emotions that are only evaluated."""
        return label_of(self.emotion)


def label_of(emotion: str) -> int | None:
    if emotion in NEGATIVE:
        return 1
    if emotion in NON_NEGATIVE:
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
    """The recipe's dictionary: (speaker, emotion) -> one joined stream, clip order seeded.

    The clips' entries in `audio` become views into their stream, so the corpus is held once, not
    twice (all of ../shared is 2.2 GB of float32 samples).
    """
    groups: dict[tuple[str, str], list[Clip]] = defaultdict(list)
    for c in clips:
        groups[(c.speaker, c.emotion)].append(c)
    streams = []
    for (spk, emo), group in sorted(groups.items()):
        group = sorted(group, key=lambda c: str(c.path))
        key = int(hashlib.sha256(f"{seed}:{spk}:{emo}".encode()).hexdigest()[:8], 16)
        np.random.default_rng(key).shuffle(group)
        x = loop_to_window(np.concatenate([audio[c.path] for c in group]).astype(np.float32))
        off = 0
        for c in group:
            n = len(audio[c.path])
            audio[c.path] = x[off:off + n]
            off += n
        streams.append(Stream(spk, group[0].corpus, emo, x, group))
    return streams


FIELDS = ("x", "y", "speaker", "corpus", "emotion", "prosody")


@dataclass
class WindowSet:
    """Normalized windows with their labels, provenance and prosody, ready for a model."""

    x: np.ndarray  # n x 513 x 125 float32
    y: np.ndarray  # n int (1 negative, 0 not negative, -1 evaluated only)
    speaker: np.ndarray
    corpus: np.ndarray
    emotion: np.ndarray
    prosody: np.ndarray | None  # n x N_PROSODY float32 (monitor/prosody.py), None: not computed

    def __len__(self) -> int:
        return len(self.y)

    def inputs(self):
        """(window, its prosody or None) for every window, in order: what a Scorer takes."""
        return zip(self.x, self.prosody if self.prosody is not None else [None] * len(self),
                   strict=True)

    def select(self, keep: np.ndarray) -> WindowSet:
        return WindowSet(*(None if getattr(self, f) is None else getattr(self, f)[keep]
                           for f in FIELDS))

    @classmethod
    def join(cls, parts: list[WindowSet]) -> WindowSet:
        return cls(*(None if any(getattr(p, f) is None for p in parts) else
                     np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))


def window_starts(n_samples: int, stride: int = WINDOW_FRAMES) -> list[int]:
    """First sample of each window of a signal every `stride` columns (`specmon score`'s schedule)."""
    return [(e - WINDOW_FRAMES) * HOP for e in window_ends(n_frames_for(n_samples), stride)]


def stream_windows(audio: np.ndarray, stride: int = WINDOW_FRAMES) -> np.ndarray:
    """Windows of a signal every `stride` columns (the schedule `specmon score` uses), normalized."""
    spec, _ = stft_logpower(loop_to_window(audio))
    return np.stack([normalize(spec[:, e - WINDOW_FRAMES:e]) for e in
                     window_ends(spec.shape[1], stride)])


def stream_prosody(audio: np.ndarray, stride: int = WINDOW_FRAMES,
                   encoder: str | None = None) -> np.ndarray:
    """The sample features (prosody; with `encoder` that encoder's states after it) of
    stream_windows(audio, stride)'s windows, in their order."""
    x = loop_to_window(audio)
    sf = SampleFeatures(encoder)
    starts = window_starts(len(x), stride)
    sf.fill(x, starts)
    return np.stack([sf(x[a:a + WINDOW_SAMPLES], a) for a in starts])


def stream_states(audio: np.ndarray, stride: int, encoder: str) -> np.ndarray:
    """`encoder`'s states (monitor.sample_features.ENCODERS) of stream_windows(audio, stride)'s
    windows, in their order: what stream_prosody(audio, stride, encoder) has after the prosody."""
    x = loop_to_window(audio)
    window = ENCODERS[encoder].window()
    starts = window_starts(len(x), stride)
    window.fill(x, starts)
    return np.stack([window(x[a:a + WINDOW_SAMPLES], a) for a in starts]).astype(np.float32)


def all_windows(streams: list[Stream], prosody: bool = True, encoder: str | None = None) -> WindowSet:
    """Every non-overlapping window of every stream (each speaker's emotions as they come), with
    their prosody when `prosody` (what a head that takes it needs; ~17 ms a window), and the states
    of `encoder` (monitor.sample_features.ENCODERS) after it."""
    xs, ps, ys, spk, cor, emo = [], [], [], [], [], []
    for s in streams:
        w = stream_windows(s.audio)
        xs.append(w)
        if prosody:
            ps.append(stream_prosody(s.audio, encoder=encoder))
        ys.extend([-1 if s.label is None else s.label] * len(w))
        spk.extend([s.speaker] * len(w))
        cor.extend([s.corpus] * len(w))
        emo.extend([s.emotion] * len(w))
    if not xs:
        raise SpecmonError("no evaluation windows")
    return WindowSet(np.concatenate(xs), np.array(ys), np.array(spk), np.array(cor), np.array(emo),
                     np.concatenate(ps) if prosody else None)


# Kept name: `specmon evaluate` and older scripts call it.
def eval_windows(streams: list[Stream], seed: int = 0, others: bool = True,
                 prosody: bool = True, encoder: str | None = None) -> WindowSet:
    ws = all_windows(streams, prosody, encoder)
    return ws if others else ws.select(ws.y >= 0)


BLOCK_S = 20.0


def mixed_streams(streams: list[Stream], seed: int = 0, block_s: float = BLOCK_S,
                  stride: int = 31, prosody: bool = True, encoder: str | None = None) -> WindowSet:
    """A monitor's view: per speaker, ~20-s blocks of their emotions in random order, one signal.

    Windows (every `stride` columns, ~1 s) are labelled by the block that covers them; windows that
    straddle two blocks have no single label and are left out.
    """
    parts = list(iter_mixed_streams(streams, seed, block_s, stride, prosody, encoder))
    if not parts:
        raise SpecmonError("no mixed-stream windows")
    return WindowSet.join(parts)


def iter_mixed_streams(streams: list[Stream], seed: int = 0, block_s: float = BLOCK_S,
                       stride: int = 31, prosody: bool = True, encoder: str | None = None):
    """mixed_streams() one speaker at a time (a WindowSet each), so memory holds one speaker."""
    by_speaker: dict[str, list[Stream]] = defaultdict(list)
    for s in streams:
        by_speaker[s.speaker].append(s)
    n_block = int(block_s * SAMPLE_RATE)
    for speaker in sorted(by_speaker):
        key = int(hashlib.sha256(f"{seed}:mixed:{speaker}".encode()).hexdigest()[:8], 16)
        rng = np.random.default_rng(key)
        blocks = []
        for s in by_speaker[speaker]:
            for a in range(0, len(s.audio), n_block):
                b = s.audio[a:a + n_block]
                if len(b) >= WINDOW_SAMPLES:
                    blocks.append((s, b))
        if not blocks:
            continue
        order = rng.permutation(len(blocks))
        audio = np.concatenate([blocks[i][1] for i in order])
        bounds = np.cumsum([0] + [len(blocks[i][1]) for i in order])
        spec, _ = stft_logpower(audio)
        kept = []  # (end column, first sample, block) of each window inside one block
        for end in range(WINDOW_FRAMES, spec.shape[1] + 1, stride):
            a = (end - WINDOW_FRAMES) * HOP
            k = int(np.searchsorted(bounds, a, side="right")) - 1
            if (end - 1) * HOP + N_FFT <= bounds[k + 1]:  # else it straddles two blocks
                kept.append((end, a, k))
        wp = SampleFeatures(encoder)
        if prosody:
            wp.fill(audio, [a for _, a, _ in kept])
        xs, ps, ys, emo, cor = [], [], [], [], []
        for end, a, k in kept:
            s = blocks[order[k]][0]
            xs.append(normalize(spec[:, end - WINDOW_FRAMES:end]))
            if prosody:
                ps.append(wp(audio[a:a + WINDOW_SAMPLES], a))
            ys.append(-1 if s.label is None else s.label)
            cor.append(s.corpus)
            emo.append(s.emotion)
        if xs:
            yield WindowSet(np.stack(xs), np.array(ys), np.array([speaker] * len(xs)), np.array(cor),
                            np.array(emo), np.stack(ps) if prosody else None)


def loco_splits(clips: list[Clip]) -> list[tuple[str, list[Clip], list[Clip]]]:
    """Leave-one-corpus-out: (held-out corpus, training clips, test clips) for every corpus."""
    out = []
    for corpus in sorted({c.corpus for c in clips}):
        train = [c for c in clips if c.corpus != corpus]
        test = [c for c in clips if c.corpus == corpus]
        out.append((corpus, train, test))
    return out


def validation_speakers(clips: list[Clip], share: float = 0.2, min_speakers: int = 4,
                        seed: int = 0) -> set[str]:
    """Speakers held out *inside* a training set to choose epochs and the threshold.

    A share of every corpus with at least `min_speakers` speakers (at least one each); corpora with
    fewer speakers stay wholly in training.
    """
    by_corpus: dict[str, list[str]] = defaultdict(list)
    for s in speakers_of(clips):
        by_corpus[next(c.corpus for c in clips if c.speaker == s)].append(s)
    rng = np.random.default_rng(seed)
    val: set[str] = set()
    for corpus in sorted(by_corpus):
        spk = sorted(by_corpus[corpus])
        if len(spk) >= min_speakers:
            val.update(rng.choice(spk, max(1, int(round(share * len(spk)))), replace=False).tolist())
    if not val:  # small (quick-run) manifests: one speaker of every corpus that has two or more
        val = {sorted(v)[-1] for v in by_corpus.values() if len(v) >= 2}
    if not val:
        raise SpecmonError("too few speakers to hold out validation speakers")
    return val


class BalancedSampler:
    """Endless class-balanced training windows, drawn batch by batch (nothing per epoch in memory).

    A draw picks a language, then a corpus of it, then a speaker of it, uniformly, so no language,
    corpus or talkative speaker dominates; it then takes one negative and one non-negative window of
    that speaker (balanced per speaker and class). Within a class, emotions are weighted:
    `emotion_weight` (sadness counts double by default: it is the emotion a depression screen must
    not miss, and the one the network confuses with calm speech), and on the non-negative side the
    high-arousal emotions (happiness, surprise) get as many draws as neutral and calm together, so
    loudness alone cannot separate the classes. Speakers with one class only (LibriSpeech, labelled
    neutral by assumption) add `extra_share` of non-negative windows. `arousal_balance=False` (an
    ablation) drops the happiness/surprise share: non-negative streams are drawn by weight alone.

    A crop is half the time from the joined stream and half from one clip looped to 4 s, the way
    `specmon score` treats short files.
    """

    def __init__(self, streams: list[Stream], audio: dict[Path, np.ndarray], augment=None,
                 emotion_weight: dict[str, float] | None = None, extra_share: float = 0.1,
                 arousal_balance: bool = True) -> None:
        self.audio = audio
        self.augment = augment
        self.weight = {"sadness": 2.0} if emotion_weight is None else emotion_weight
        self.extra_share = extra_share
        self.arousal_balance = arousal_balance
        by_speaker: dict[str, list[Stream]] = defaultdict(list)
        for s in streams:
            if s.label is not None:
                by_speaker[s.speaker].append(s)
        lang_of = {c.speaker: c.language for s in streams for c in s.clips[:1]}
        self.tree: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        self.single: list[str] = []
        self.groups: dict[str, tuple[list[Stream], list[Stream]]] = {}
        for spk, group in sorted(by_speaker.items()):
            neg = [s for s in group if s.label == 1]
            non = [s for s in group if s.label == 0]
            self.groups[spk] = (non, neg)
            if neg and non:
                self.tree[lang_of[spk]][group[0].corpus].append(spk)
            elif non:
                self.single.append(spk)
        if not self.tree:
            raise SpecmonError("no speaker has both negative and non-negative clips to train on")
        self.languages = sorted(self.tree)
        self.corpora = sorted({s.corpus for g in by_speaker.values() for s in g})
        self.emotions = sorted({s.emotion for g in by_speaker.values() for s in g})

    def describe(self) -> dict:
        return {"languages": self.languages,
                "corpora": sorted({c for t in self.tree.values() for c in t}),
                "paired_speakers": sum(len(v) for t in self.tree.values() for v in t.values()),
                "single_class_speakers": len(self.single),
                "emotion_weight": self.weight, "extra_share": self.extra_share,
                "arousal_balance": self.arousal_balance}

    def _pick_stream(self, group: list[Stream], rng: np.random.Generator, label: int) -> Stream:
        w = np.array([self.weight.get(s.emotion, 1.0) for s in group])
        if label == 0 and self.arousal_balance:
            high = np.array([s.emotion in ("happiness", "surprise") for s in group])
            if high.any() and (~high).any():
                w = np.where(high, w / w[high].sum(), w / w[~high].sum())
        return group[rng.choice(len(group), p=w / w.sum())]

    def _crop(self, s: Stream, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < 0.5:
            x = s.audio
        else:
            c = s.clips[rng.integers(len(s.clips))]
            clip = self.audio[c.path]
            x = loop_to_window(np.roll(clip, rng.integers(len(clip))))
        off = rng.integers(0, len(x) - WINDOW_SAMPLES + 1)
        return x[off:off + WINDOW_SAMPLES]

    def _window(self, s: Stream, rng: np.random.Generator) -> np.ndarray:
        w = self._crop(s, rng)
        if self.augment is not None:
            w = self.augment.wave(w, rng)
        spec, _ = stft_logpower(w)
        x = normalize(spec)
        if self.augment is not None:
            x = self.augment.spec(x, rng)
        return x

    def draw(self, n: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
        """n windows (about half negative): (x n x 513 x 125, y, emotions, corpora)."""
        xs, ys, emo, corpus = [], [], [], []
        while len(xs) < n:
            if self.single and rng.random() < self.extra_share:
                s = self._pick_stream(self.groups[self.single[rng.integers(len(self.single))]][0],
                                      rng, 0)
                picks = [(s, 0)]
            else:
                corpora = self.tree[self.languages[rng.integers(len(self.languages))]]
                names = sorted(corpora)
                spk_list = corpora[names[rng.integers(len(names))]]
                non, neg = self.groups[spk_list[rng.integers(len(spk_list))]]
                picks = [(self._pick_stream(non, rng, 0), 0), (self._pick_stream(neg, rng, 1), 1)]
            for s, label in picks:
                xs.append(self._window(s, rng))
                ys.append(label)
                emo.append(s.emotion)
                corpus.append(s.corpus)
        order = rng.permutation(len(xs))[:n]
        return (np.stack([xs[i] for i in order]), np.array(ys, np.float32)[order],
                [emo[i] for i in order], [corpus[i] for i in order])
