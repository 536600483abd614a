"""Fit one network on training speakers, choosing its epoch and threshold on validation speakers.

The recipe shared by the shipped model, every LOCO fold and every ablation row:
- windows are streamed from `BalancedSampler` batch by batch on worker threads (peak memory is the
  decoded audio plus a few batches, whatever the corpus size);
- after every epoch the network scores the validation speakers' windows; the epoch with the best
  validation ROC AUC (from epoch `min_epoch` on) is kept, and training stops when it has not
  improved for `patience` epochs (or, with `average_from`, every epoch is trained and the mean of
  the weights at the end of each epoch from that one on is kept);
- the int8 export's decision threshold is the one that maximizes balanced accuracy on the same
  validation windows (by default averaged over their corpora, each scored by a stats head fit
  without that corpus, as the test fold will be). No test speaker is ever seen here.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from model.augment import Augment
from model.dataset import BalancedSampler, Clip, WindowSet, build_streams, speakers_of
from model.eval_features import EvalFeatures
from model.evaluate import score_components
from model.metrics import two_class_corpora
from model.stats_head import C_GRID, corpus_mean_auc
from monitor.errors import SpecmonError
from monitor.sample_features import ENCODERS
from monitor.scorer import Scorer, float_model_path, read_model_info, sha256_of
from monitor.window_stats import fuse


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Recipe:
    """Everything that defines a training run (recorded in reports and sidecars)."""

    arch: str = "specmon"
    epochs: int = 14  # at most; the best validation epoch is kept
    patience: int = 4
    min_epoch: int = 1  # the kept epoch is chosen from this one on; early stopping waits for it
    steps: int = 128  # batches per epoch
    batch: int = 32
    lr: float = 2e-3
    label_smoothing: float = 0.05
    augment: str = "all"
    emotion_weight: dict = field(default_factory=lambda: {"sadness": 2.0})
    arousal_balance: bool = True  # happiness and surprise get half of the non-negative draws
    stats_head: bool = True  # fuse a head on window statistics (model/stats_head.py)
    prosody: bool = True  # the head also takes the window's prosody (monitor/prosody.py)
    encoder: str | None = None  # ... and a pretrained encoder's states (monitor.sample_features.ENCODERS)
    head: str = "linear"  # HEADS: the stats head's form (model/stats_head.py fit_head)
    threshold_rule: str = "unseen_corpus"  # THRESHOLD_RULES: how validation picks the threshold
    seed: int = 0
    ema: float = 0.0  # > 0: validate and keep the weights' moving average (decay per batch)
    adversary: float = 0.0  # > 0: a corpus classifier through gradient reversal, at this strength
    average_from: int = 0  # > 0: keep the mean of the epoch-end weights from this epoch on
    emotion_task: float = 0.0  # > 0: also name the emotion (a softmax, training only), this weight
    head_c: tuple[float, ...] = C_GRID  # the stats head's regularizations, validation picks one
    mixup: float = 0.0  # > 0: train on mixed pairs of windows and labels, weights ~ Beta(mixup, mixup)
    epoch_auc: str = "pooled"  # EPOCH_AUCS: the validation AUC that keeps an epoch

    def __post_init__(self) -> None:
        self.head_c = tuple(float(c) for c in self.head_c)
        if not self.head_c or not all(0 < c < float("inf") for c in self.head_c):
            raise SpecmonError(f"--head-c {','.join(f'{c:g}' for c in self.head_c) or '(none)'}: "
                               "give one or more regularizations, each a number above 0")
        if not self.stats_head and self.threshold_rule == "unseen_corpus":
            self.threshold_rule = "corpus_mean"  # no head to fit without a corpus
        check_head(self.head)
        if self.encoder is not None and self.encoder not in ENCODERS:
            raise SpecmonError(f"--encoder {self.encoder!r}: choose {' or '.join(ENCODERS)}")
        if self.encoder and not (self.stats_head and self.prosody):
            raise SpecmonError("--encoder adds to the stats head's prosody: it does not combine "
                               "with --no-stats-head or --no-prosody")
        if self.epoch_auc not in EPOCH_AUCS:
            raise SpecmonError(f"--epoch-auc {self.epoch_auc!r}: choose {' or '.join(EPOCH_AUCS)}")
        if self.epochs < 1:
            raise SpecmonError(f"--epochs {self.epochs}: train for at least one epoch")
        if not 1 <= self.min_epoch <= self.epochs:
            raise SpecmonError(f"--min-epoch {self.min_epoch} is not between 1 and --epochs "
                               f"{self.epochs}")
        if self.average_from and not 1 <= self.average_from <= self.epochs:
            raise SpecmonError(f"--average-from {self.average_from} is not between 1 and --epochs "
                               f"{self.epochs}")
        if self.average_from and self.ema > 0:
            raise SpecmonError("--average-from and --ema do not combine (two averages of the "
                               "weights)")
        if self.average_from and self.min_epoch > 1:
            raise SpecmonError("--average-from and --min-epoch do not combine (no epoch is chosen)")
        if self.ema > 0 and self.adversary > 0:
            raise SpecmonError("--ema and --adversary do not combine (the average would cover the "
                               "corpus classifier's weights too)")
        if not 0 <= self.emotion_task < float("inf"):  # NaN fails too
            raise SpecmonError(f"--emotion-task {self.emotion_task}: a weight is a number, 0 or more")
        if not 0 <= self.mixup < float("inf"):
            raise SpecmonError(f"--mixup {self.mixup}: a Beta distribution's parameter is a number, "
                               "0 (off) or more")
        if self.mixup > 0 and (self.adversary > 0 or self.emotion_task > 0):
            raise SpecmonError("--mixup does not combine with --adversary or --emotion-task (a mixed "
                               "window has no one corpus or emotion)")
        if self.emotion_task > 0 and (self.adversary > 0 or self.ema > 0):
            raise SpecmonError("--emotion-task does not combine with --adversary or --ema (one "
                               "extra output at a time)")

    @property
    def head_prosody(self) -> bool:
        """Whether the model's head takes the window's prosody (its windows need it)."""
        return self.stats_head and self.prosody

    @property
    def head_encoder(self) -> str | None:
        """The encoder whose states the model's head also takes (after the prosody), if any."""
        return self.encoder if self.head_prosody else None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# linear: one logistic regression; gated: a gate on arousal mixing one for high and one for low;
# multinomial: a softmax regression over the emotions, P(negative) the negative ones' sum.
HEADS = ("linear", "gated", "multinomial")


def c_grid_arg(text: str) -> tuple[float, ...]:
    """`--head-c 0.001,0.01`: the regularizations, or SpecmonError (one line)."""
    try:
        return tuple(float(c) for c in text.split(","))
    except ValueError:
        raise SpecmonError(f"--head-c {text!r}: give numbers above 0, separated by commas") from None


def check_head(head: str) -> None:
    """SpecmonError (one line) unless `head` is one of HEADS."""
    if head not in HEADS:
        raise SpecmonError(f"--head {head!r}: choose {', '.join(HEADS[:-1])} or {HEADS[-1]}")


# unseen_corpus: each validation corpus scored by a stats head fit without it, then corpus_mean;
# corpus_mean: balanced accuracy averaged over validation corpora; pooled: over all their windows.
THRESHOLD_RULES = ("unseen_corpus", "corpus_mean", "pooled")
# pooled: the AUC of all validation windows together; corpus_mean: each validation corpus's own AUC,
# averaged, as LOCO averages over held-out corpora (a score shift between corpora does not count).
EPOCH_AUCS = ("pooled", "corpus_mean")


def best_threshold(y: np.ndarray, s: np.ndarray, corpus: np.ndarray | None = None
                   ) -> tuple[float, float]:
    """(threshold, criterion) maximizing, over a grid of 0.05..0.95, the balanced accuracy of the
    windows pooled (corpus None), or its mean over the corpora that have both classes (corpus
    given), as the LOCO headline averages over held-out corpora: a corpus with many validation
    windows does not set the threshold for all."""
    best = (0.5, -1.0)
    if len(set(y.tolist())) < 2:
        return 0.5, float("nan")
    groups = [] if corpus is None else two_class_corpora(y, corpus)
    groups = groups or [np.ones(len(y), bool)]
    for t in np.round(np.arange(0.05, 0.951, 0.025), 3):
        b = float(np.mean([balanced_accuracy_score(y[g], s[g] >= t) for g in groups]))
        if b > best[1] + 1e-9:
            best = (float(t), b)
    return best


def validation_auc(y: np.ndarray, s: np.ndarray, corpus: np.ndarray, how: str = "pooled") -> float:
    """The validation AUC that keeps an epoch (EPOCH_AUCS): corpus_mean falls back to the pooled
    AUC when no corpus has both classes; 0 without both classes at all."""
    by_corpus = corpus_mean_auc(y, s, corpus) if how == "corpus_mean" else None
    if by_corpus is not None:
        return by_corpus
    return float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else 0.0


def mixup(x: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """Mix each window of a batch with another of the same batch, its label in the same proportion
    (Zhang et al. 2018): the network sees the space between the corpora it trains on, not only
    their points. The proportion is drawn per window from Beta(alpha, alpha)."""
    lam = rng.beta(alpha, alpha, len(y)).astype(np.float32)
    other = rng.permutation(len(y))
    mix = lam.reshape((-1,) + (1,) * (x.ndim - 1))
    return mix * x + (1 - mix) * x[other], lam * y + (1 - lam) * y[other]


def predict(model, x: np.ndarray) -> np.ndarray:
    """The Keras network's P(negative) for normalized windows."""
    return model.predict(x[..., None], batch_size=64, verbose=0).reshape(-1).astype(np.float64)


def fit(train: list[Clip], val: list[Clip], audio: dict, recipe: Recipe, tag: str = "",
        callbacks: list | None = None, features: EvalFeatures | None = None):
    """Train `recipe.arch` on `train`, select on `val` (`callbacks`: more Keras callbacks, to
    watch training; `features`: where the validation windows' features are kept, if anywhere).

    Returns (keras model, info, validation windows, 200 un-augmented training windows for int8
    calibration).
    """
    import keras

    from model.cnn import builder

    # Keras warns that shuffle is ignored for a generator: the sampler's batches are already random.
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")

    build = builder(recipe.arch)
    if set(speakers_of(train)) & set(speakers_of(val)):
        raise SpecmonError("a speaker is on both the training and the validation side")
    keras.utils.set_random_seed(recipe.seed)
    sampler = BalancedSampler(build_streams(train, audio, recipe.seed), audio,
                              Augment.from_names(recipe.augment), recipe.emotion_weight,
                              arousal_balance=recipe.arousal_balance)
    features = features or EvalFeatures(None, recipe.head_prosody, recipe.head_encoder)
    vws = features.windows(build_streams(val, audio, recipe.seed))
    lab = vws.y >= 0
    model = build()
    total = recipe.epochs * recipe.steps
    sched = keras.optimizers.schedules.CosineDecay(recipe.lr, total, alpha=0.05)
    loss = keras.losses.BinaryCrossentropy(label_smoothing=recipe.label_smoothing)
    # A second output, in training only: its classes and which of a draw's lists names them.
    trained, callbacks, classes, weights = model, list(callbacks or []), None, None
    if recipe.adversary > 0:
        from model.cnn import with_corpus_adversary

        trained, strength = with_corpus_adversary(model, len(sampler.corpora))
        classes, of_draw = sampler.corpora, lambda emotions, corpora: corpora
        callbacks.append(adversary_ramp(strength, recipe.adversary, total))
    elif recipe.emotion_task > 0:
        from model.cnn import with_emotion_head

        trained = with_emotion_head(model, len(sampler.emotions))
        classes, of_draw = sampler.emotions, lambda emotions, corpora: emotions
        weights = [1.0, recipe.emotion_task]
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        loss = [loss, keras.losses.SparseCategoricalCrossentropy(from_logits=True)]
    trained.compile(optimizer=keras.optimizers.Adam(sched), loss=loss, loss_weights=weights)
    best = {"auc": -1.0, "crit": -1.0, "epoch": 0, "weights": None}
    history = []
    t0 = time.time()
    # Two workers draw and augment batches while Keras trains on the previous one.
    with ThreadPoolExecutor(max_workers=2) as pool:
        seeds = (np.random.SeedSequence([recipe.seed, 17, i]) for i in itertools.count())

        def draw(rng: np.random.Generator):
            x, y, emotions, corpora = sampler.draw(recipe.batch, rng)
            if recipe.mixup > 0:
                x, y = mixup(x, y, recipe.mixup, rng)
            return x, y, emotions, corpora

        def submit():
            return pool.submit(draw, np.random.default_rng(next(seeds)))

        pending = [submit(), submit()]

        def batches():
            while True:
                x, y, emotions, corpora = pending.pop(0).result()
                pending.append(submit())
                if classes is None:
                    yield x[..., None], y
                else:
                    yield x[..., None], (y, np.array([index[c] for c in of_draw(emotions, corpora)]))

        stream = batches()
        average = weight_average(recipe.ema) if recipe.ema > 0 else None
        if average:
            callbacks.append(average)
        mean = EpochMean() if recipe.average_from else None
        for ep in range(recipe.epochs):
            h = trained.fit(stream, steps_per_epoch=recipe.steps, epochs=1, verbose=0,
                            callbacks=callbacks or None)
            # With a second output the total adds its loss: report the label's.
            losses = h.history.get("p_negative_loss", h.history["loss"])
            current = model.get_weights() if average or mean else None
            if mean is not None and ep + 1 >= recipe.average_from:
                mean.add(current)
            if average:
                model.set_weights(average.weights)
            elif mean is not None and mean.n:
                model.set_weights(mean.weights)
            s = predict(model, vws.x[lab])
            auc = validation_auc(vws.y[lab], s, vws.corpus[lab])
            # The criterion that keeps an epoch; history and info report the pooled AUC beside it.
            crit = (auc if recipe.epoch_auc == "pooled" else
                    validation_auc(vws.y[lab], s, vws.corpus[lab], recipe.epoch_auc))
            _, bacc = best_threshold(vws.y[lab], s)
            history.append({"epoch": ep + 1, "loss": round(float(np.mean(losses)), 4),
                            "val_auc": round(auc, 4), "val_balanced_accuracy": round(bacc, 4),
                            **({} if recipe.epoch_auc == "pooled" else
                               {f"val_{recipe.epoch_auc}_auc": round(crit, 4)})})
            # With the mean, the mean so far is kept, whatever validation says of it.
            keep = mean.n > 0 if mean is not None else ep + 1 >= recipe.min_epoch and crit > best["crit"]
            if keep:
                best = {"auc": auc, "crit": crit, "epoch": ep + 1, "weights": model.get_weights()}
            if current is not None:
                model.set_weights(current)  # training goes on from the raw weights
            el = time.time() - t0
            log(f"{tag}epoch {ep + 1:2d}/{recipe.epochs}  loss {np.mean(losses):.3f}  val AUC {auc:.3f}"
                f"  val bal.acc {bacc:.3f}  {el:5.0f} s")
            if mean is None and best["epoch"] and ep + 1 - best["epoch"] >= recipe.patience:
                log(f"{tag}no gain for {recipe.patience} epochs: stopping")
                break
        # Keras keeps the generator it was given (TF's registry of Python generators) for the life
        # of the process; closed, it no longer holds the sampler's training audio or its batches.
        stream.close()
        for p in pending:
            p.cancel()
        pending.clear()
    model.set_weights(best["weights"])
    sampler.augment = None  # calibration windows: clean training speech, from the same streams
    calib, _, _, _ = sampler.draw(200, np.random.default_rng(recipe.seed))
    info = {"best_epoch": best["epoch"], "val_auc": round(best["auc"], 4), "history": history,
            **({"averaged_epochs": [recipe.average_from, best["epoch"]]} if mean is not None else {}),
            "train_speakers": len(speakers_of(train)), "val_speakers": sorted(speakers_of(val)),
            "val_windows": int(lab.sum()), "sampler": sampler.describe(),
            "train_minutes": round((time.time() - t0) / 60, 2)}
    return model, info, vws, list(calib)


def adversary_ramp(strength, peak: float, total_steps: int):
    """A Keras callback raising the gradient reversal's strength from 0 to `peak` over training
    (Ganin et al.'s 2 / (1 + exp(-10 p)) - 1, p the share of batches done): the corpus classifier
    first learns, and the label's features form, before the reversal pushes hard."""
    import keras

    class AdversaryRamp(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.done = 0

        def on_train_batch_begin(self, batch, logs=None) -> None:
            p = min(1.0, self.done / max(1, total_steps))
            strength.assign(peak * (2.0 / (1.0 + np.exp(-10.0 * p)) - 1.0))
            self.done += 1

    return AdversaryRamp()


class EpochMean:
    """The mean of the weights added, one set at the end of each epoch (stochastic weight averaging,
    Izmailov et al. 2018). Validation picks the kept epoch among noisy neighbours (its AUC moves by
    0.02-0.04 from one epoch to the next), so the kept network is partly chance; the mean of the
    late epochs needs no choice and sits in a flatter region of the loss, which helped on unseen
    domains elsewhere (Cha et al. 2021, SWAD). Here it did not: under LOCO the mean of epochs 7-14
    scored lower than the best epoch, on validation and on the held-out corpora (the card's row)."""

    def __init__(self) -> None:
        self.weights: list[np.ndarray] | None = None
        self.n = 0

    def add(self, weights: list[np.ndarray]) -> None:
        self.n += 1
        if self.weights is None:
            self.weights = [np.array(w, dtype=np.float64) for w in weights]
            return
        for a, w in zip(self.weights, weights, strict=True):
            a += (w - a) / self.n


def weight_average(decay: float):
    """A Keras callback keeping the exponential moving average of the weights, batch by batch.

    Reruns of one recipe differ by up to 0.06 test AUC on a held-out corpus (TensorFlow's CPU
    kernels are not bit-exact, and a different epoch wins); the average of many nearby weights is
    less at the mercy of the last batches."""
    import keras

    class WeightAverage(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.weights: list[np.ndarray] | None = None

        def on_train_batch_end(self, batch, logs=None) -> None:
            w = self.model.get_weights()
            if self.weights is None:
                self.weights = [x.copy() for x in w]
                return
            for a, x in zip(self.weights, w, strict=True):
                a *= decay
                a += (1.0 - decay) * x

    return WeightAverage()


@dataclass
class EarlierNetwork:
    """A network trained by an earlier run of the same protocol (loco --networks-from, train
    --network-from), checked before anything is decoded or written."""

    int8: Path
    float32: Path
    record: dict  # the earlier run's fold result or training report (with its "fit")

    @property
    def fit(self) -> dict:
        return self.record["fit"]

    def validation_scores(self, vws: WindowSet) -> np.ndarray:
        """The network's own float32 P(negative) for the labelled validation windows."""
        net = Scorer(self.float32, head=False)
        return np.array([net.cnn_score(w) for w in vws.x[vws.y >= 0]])

    def place(self, out: Path) -> None:
        """Copy both files to `out` and its -float32 (their sidecars are written by the export)."""
        f32 = float_model_path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        for a, b in ((self.int8, out), (self.float32, f32)):
            if a.resolve() != b.resolve():
                b.write_bytes(a.read_bytes())


def earlier_network(src: Path, record: Path, val_speakers: set[str], recipe: Recipe) -> EarlierNetwork:
    """Check an earlier network: both files, the float32 sidecar, its run record (a LOCO fold result
    or a training report, also one of a head-only refit) naming the int8 file's hash, the same
    validation speakers (else they would have trained it), the same architecture and seed.
    SpecmonError naming the file otherwise."""
    f32 = float_model_path(src)
    for p in (src, f32, record):
        if not p.is_file():
            raise SpecmonError(f"{p}: not found (an earlier network needs its int8 file, its float32 "
                               "file with sidecar, and the record of the run that trained it)")
    # The int8 file is checked against the record's hash below; its sidecar is written anew. Its
    # stats head is not read: the new head may take other inputs (a prosody screen).
    old = read_model_info(f32, head=False).meta.get("recipe", {})
    try:
        rec = json.loads(record.read_text())
        # By content, not name: the same network may sit under another name (specmon-fast.tflite).
        recorded = set(rec.get("model_sha256", {}).values())
        # A report of a head-only refit (this network reused before) holds the run that trained it.
        rec = rec["fit"].get("network_training", rec)
        was = set(rec["fit"]["val_speakers"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SpecmonError(f"{record}: not a fold result or training report ({e})") from None
    if was != set(val_speakers):
        raise SpecmonError(f"{src}: trained with other validation speakers than this split's")
    for k in ("arch", "seed"):
        if old.get(k) != getattr(recipe, k):
            raise SpecmonError(f"{src}: trained with {k}={old.get(k)!r}, this run has "
                               f"{getattr(recipe, k)!r}")
    if sha256_of(src) not in recorded:
        raise SpecmonError(f"{record}: does not record this {src.name} ({src})")
    return EarlierNetwork(src, f32, rec)


def check_head_cache(folder: Path, recipe: Recipe) -> Path:
    """`--head-cache`'s folder, created and checked before any long work (SpecmonError, one line)."""
    if not recipe.stats_head:
        raise SpecmonError("--head-cache keeps the stats head's inputs, and --no-stats-head has no "
                           "head")
    from model.head_inputs import check_cache

    return check_cache(folder)


def stats_head_for(train: list[Clip], audio: dict, vws: WindowSet, p_val: np.ndarray,
                   recipe: Recipe, cache: Path | None = None
                   ) -> tuple[dict | None, dict, np.ndarray | None]:
    """The stats head's sidecar entry (None when the recipe has none), how it was chosen, and the
    validation windows' logits from heads fit without their corpus (only for the unseen_corpus
    threshold rule; else None).

    p_val: the network's scores of the labelled validation windows. cache: a folder for the
    training windows' head inputs (model.head_inputs.stream_stats).
    """
    if not recipe.stats_head:
        return None, {}, None
    from model.stats_head import choose_head

    t0 = time.time()
    choice = choose_head(build_streams(train, audio, recipe.seed), vws, p_val,
                         recipe.emotion_weight, recipe.seed, recipe.head_prosody,
                         unseen_corpus=recipe.threshold_rule == "unseen_corpus",
                         form=recipe.head, cache=cache, log=log, c_grid=recipe.head_c,
                         encoder=recipe.head_encoder)
    info = {**choice.info, "seconds": round(time.time() - t0, 1)}
    log(f"stats head ({recipe.head}): C {choice.head.c}, validation AUC network "
        f"{info.get('val_auc_network')} -> fused {info['val_auc_fused']}")
    return choice.head.to_dict(), info, choice.unseen_logits


def export_with_threshold(model, calib: list[np.ndarray], vws: WindowSet, out: Path,
                          meta: dict, unseen_logits: np.ndarray | None = None) -> dict:
    """Write int8 + float32 files; the threshold is chosen on the int8 model's validation scores
    (fused with the stats head when `meta` has one).

    model None: the two .tflite files are already at `out` (a network reused from an earlier run);
    only their sidecars are written. unseen_logits: for the unseen_corpus rule, the labelled
    validation windows' head logits from heads fit without their corpus; the int8 network's
    scores are fused with those instead of the shipped head's (a recipe without a head never has
    this rule: Recipe turns it into corpus_mean).
    """
    from model.quantize import export, write_sidecar

    f32 = float_model_path(out)
    if model is not None:
        export(model, out, calib, meta)
    else:
        write_sidecar(f32, {**meta, "quantization": "float32"})
        write_sidecar(out, {**meta, "quantization": "int8", "float_model": f32.name})
    lab = vws.y >= 0
    y, corpus = vws.y[lab], vws.corpus[lab]
    s, net, _ = score_components(out, vws.select(lab))
    rule = meta.get("recipe", {}).get("threshold_rule", "pooled")
    if rule == "unseen_corpus" and unseen_logits is None:
        raise ValueError("the unseen_corpus threshold rule needs the validation windows' logits "
                         "from heads fit without their corpus (stats_head_for)")
    extra = {}
    if rule == "unseen_corpus":
        thr, bacc = best_threshold(y, fuse(net, unseen_logits), corpus)
        # What corpus_mean would have chosen on the shipped head's scores, for the report.
        extra["threshold_in_corpus"] = best_threshold(y, s, corpus)[0]
    else:
        thr, bacc = best_threshold(y, s, corpus if rule == "corpus_mean" else None)
    how = {"unseen_corpus": ", mean over their corpora, each scored by a head fit without it)",
           "corpus_mean": ", mean over their corpora)", "pooled": ")"}[rule]
    for path in (out, f32):
        m = {**meta, "threshold": thr, "threshold_from": "validation speakers (balanced accuracy"
             + how, "quantization": "int8" if path == out else "float32"}
        if path == out:
            m["float_model"] = f32.name
        write_sidecar(path, m)
    pooled = balanced_accuracy_score(y, s >= thr) if len(set(y.tolist())) == 2 else float("nan")
    return {"threshold": thr, "threshold_rule": rule, "val_criterion": round(bacc, 4),
            "val_balanced_accuracy_int8": round(float(pooled), 4), **extra}
