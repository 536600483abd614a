"""The networks (Keras, training only): the paper's six-layer baseline and the shipped specmon CNN.

Both take one normalized 513 x 125 log-power window and give P(negative).

- `build_baseline()`: the paper's layer list, conv -> max-pool -> conv -> max-pool -> flatten ->
  dense -> dense. Sized to train here; flattening keeps *where in time* a pattern was, which the
  paper's network needs and which does not generalize to speech that starts anywhere in a window.
- `build_cnn()`: the shipped network. Three convolutions (the first strided: 513 bins at 15.6 Hz
  resolve more than emotion cues need, the second and third at a finer step than the baseline so
  harmonics, i.e. pitch, stay visible), then statistics over time: the mean *and* the max of every
  channel at every frequency band. The max says "this pattern occurred", the mean says "how much of
  the window it fills"; both are independent of where speech falls in the window.
Dropout is a training aid only. (With batch normalization after each convolution, as in the
network shipped before, training on the balanced sampler stayed at chance for the first epochs.)
"""

from __future__ import annotations

from monitor.errors import SpecmonError
from monitor.features import N_BINS, WINDOW_FRAMES

BASELINE_LAYERS = ("Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense")


def build_baseline(filters: tuple[int, int] = (16, 32), dense: int = 64):
    """The paper's six-layer CNN (two conv, two max-pool, flatten, two dense), sized for this machine."""
    import keras
    from keras import layers

    inp = keras.Input((N_BINS, WINDOW_FRAMES, 1), name="logspec")
    x = layers.Conv2D(filters[0], (5, 5), strides=(2, 2), padding="same", activation="relu")(inp)
    x = layers.MaxPooling2D((4, 4))(x)  # 257 x 63 -> 64 x 15
    x = layers.Conv2D(filters[1], (3, 3), padding="same", activation="relu")(x)
    x = layers.MaxPooling2D((4, 4))(x)  # 64 x 15 -> 16 x 3
    x = layers.Flatten()(x)
    x = layers.Dense(dense, activation="relu")(x)
    out = layers.Dense(1, activation="sigmoid", name="p_negative")(x)
    return keras.Model(inp, out, name="paper_baseline")


def _over_time(x, dense: int, dropout: float):
    """The specmon networks' output from (bands, time, channels) features: statistics over the
    whole time axis (where speech sits in the window does not matter), then two dense layers."""
    from keras import layers

    t = x.shape[2]
    hi = layers.MaxPooling2D((1, t))(x)
    mean = layers.AveragePooling2D((1, t))(x)
    x = layers.Concatenate()([hi, mean])
    # A static Reshape, not Flatten: Flatten exports dynamic shape ops that split the TFLite graph.
    x = layers.Reshape((x.shape[1] * x.shape[3],))(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense, activation="relu")(x)
    x = layers.Dropout(dropout / 2)(x)
    return layers.Dense(1, activation="sigmoid", name="p_negative")(x)


def build_cnn(filters: tuple[int, int, int] = (16, 32, 48), dense: int = 64, dropout: float = 0.3,
              batch_norm: bool = False, center_time: bool = False):
    """The shipped CNN: (513, 125, 1) normalized log-power window -> P(negative).

    `center_time` subtracts each frequency bin's mean over the window first. A microphone or room
    multiplies every frame's spectrum by the same response, which in log power is the same offset
    in every frame of a bin: centering removes it, so the convolutions see only how the spectrum
    moves in time. (The long-term spectrum it removes is still in the stats head's mel bands.)
    """
    import keras
    from keras import layers

    def conv(x, n, k, strides=(1, 1)):
        if not batch_norm:
            return layers.Conv2D(n, k, strides=strides, padding="same", activation="relu")(x)
        x = layers.Conv2D(n, k, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x)

    inp = keras.Input((N_BINS, WINDOW_FRAMES, 1), name="logspec")
    x = inp
    if center_time:
        # Built-in layers only (SUB with broadcasting, MEAN), so the int8 export needs no custom op.
        x = layers.Subtract()([x, layers.AveragePooling2D((1, WINDOW_FRAMES))(x)])
    x = conv(x, filters[0], (5, 5), (2, 2))  # 257 x 63
    x = layers.MaxPooling2D((2, 2))(x)  # 128 x 31: 62 Hz, 64 ms per cell
    x = conv(x, filters[1], (3, 3))
    x = layers.MaxPooling2D((2, 2))(x)  # 64 x 15
    x = conv(x, filters[2], (3, 3))
    x = layers.MaxPooling2D((4, 1))(x)  # 16 frequency bands x 15 time steps
    return keras.Model(inp, _over_time(x, dense, dropout), name="specmon_cnn")


def build_mel(n_mels: int = 64, filters: tuple[int, int, int] = (16, 32, 48), dense: int = 64,
              dropout: float = 0.3):
    """The specmon CNN behind a fixed mel filterbank: (513, 125, 1) -> 64 mel bands x 125 frames.

    The hypothesis: on the linear frequency axis a higher voice spaces its harmonics and places its
    formants differently, which no convolution sees as the same pattern; on a mel axis a shift of
    pitch or vocal tract length is close to a shift along the axis, which the convolutions and
    pooling tolerate. So unseen speakers and languages should look more like the training ones.
    The filterbank is `monitor/window_stats.py`'s (the stats head's, with more bands), as a frozen
    Dense layer on the frequency axis, so the input contract and the int8 export stay as they are.
    """
    import keras
    import numpy as np
    from keras import layers

    from monitor.window_stats import _mel_matrix as mel_matrix  # the stats head's filterbank

    mel = mel_matrix(n_mels)  # (n_mels, 513), rows summing to 1: a mean of log power per band
    inp = keras.Input((N_BINS, WINDOW_FRAMES, 1), name="logspec")
    # A Dense on the frequency axis (a 513 x 1 convolution crashed oneDNN's training kernels).
    x = layers.Permute((2, 1))(layers.Reshape((N_BINS, WINDOW_FRAMES))(inp))  # 125 x 513
    bank = layers.Dense(n_mels, use_bias=False, trainable=False, name="mel")
    x = bank(x)  # 125 x n_mels
    bank.set_weights([mel.T.astype(np.float32)])
    x = layers.Reshape((n_mels, WINDOW_FRAMES, 1))(layers.Permute((2, 1))(x))
    x = layers.Conv2D(filters[0], (5, 5), padding="same", activation="relu")(x)
    x = layers.MaxPooling2D((2, 2))(x)  # 32 bands x 62 frames
    x = layers.Conv2D(filters[1], (3, 3), padding="same", activation="relu")(x)
    x = layers.MaxPooling2D((2, 2))(x)  # 16 x 31
    x = layers.Conv2D(filters[2], (3, 3), padding="same", activation="relu")(x)
    return keras.Model(inp, _over_time(x, dense, dropout), name="specmon_mel")


def build_v1(filters: tuple[int, int] = (16, 32), dense: int = 64, dropout: float = 0.3):
    """The network shipped before (two convolutions, max over time only): an ablation row."""
    import keras
    from keras import layers

    inp = keras.Input((N_BINS, WINDOW_FRAMES, 1), name="logspec")
    x = layers.Conv2D(filters[0], (5, 5), strides=(2, 2), padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D((4, 2))(x)
    x = layers.Conv2D(filters[1], (3, 3), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D((2, x.shape[2]))(x)
    x = layers.Reshape((x.shape[1] * x.shape[3],))(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense, activation="relu")(x)
    out = layers.Dense(1, activation="sigmoid", name="p_negative")(x)
    return keras.Model(inp, out, name="specmon_v1")


def build_wide():
    """The specmon CNN with more channels (24/48/64 against 16/32/48) and dense units (96 against 64):
    a capacity screen (`--arch specmon-wide`). Trained as shipped, the fold networks still end at a
    training loss near 0.53 and some still gain validation AUC at the last epoch, so the network
    may be too small to hold what separates negative speech across nine corpora. It costs about
    twice the multiply-adds of `build_cnn` (77 M against 38 M a window). Under LOCO (network alone,
    stopped after 6 of 10 folds) the five held-out corpora that finished averaged an AUC of 0.637
    against the shipped width's 0.662, and validation fell too: capacity is not what is missing."""
    return build_cnn(filters=(24, 48, 64), dense=96)


def build_centered():
    """The specmon CNN on a window centered per frequency bin over time (an ablation row)."""
    return build_cnn(center_time=True)


def with_corpus_adversary(model, corpora: int, hidden: int = 64):
    """(training model, strength variable): `model` with a second output, a corpus classifier on its
    last hidden layer behind a gradient reversal layer (domain-adversarial training, Ganin et al.
    2016). The classifier learns which corpus a window came from; the reversed gradient, scaled by
    the strength, pushes the shared layers towards features it cannot tell apart: a recording
    chain, a language or a corpus's acting style. Every training corpus has both classes, so the
    corpus says nothing about the label. `model` keeps its own input and output and is what is
    exported; the classifier exists only in training."""
    import keras
    import tensorflow as tf
    from keras import layers

    strength = keras.Variable(0.0, trainable=False, name="adversary_strength")

    class GradientReversal(layers.Layer):
        def call(self, x):
            @tf.custom_gradient
            def reverse(v):
                return tf.identity(v), lambda dy: -tf.cast(strength.value, dy.dtype) * dy

            return reverse(x)

    features = [layer for layer in model.layers if isinstance(layer, layers.Dense)][-2].output
    # On the features' direction only: against a classifier of the raw ReLU features, the reversed
    # gradient wins most simply by inflating them, and training diverged within two epochs.
    z = GradientReversal()(layers.UnitNormalization()(features))
    z = layers.Dense(hidden, activation="relu", name="corpus_hidden")(z)
    out = layers.Dense(corpora, name="corpus")(z)  # logits
    return keras.Model(model.input, [model.output, out], name=f"{model.name}_adversarial"), strength


def with_emotion_head(model, emotions: int):
    """A training model: `model` with a second output, the logits of a softmax over the training
    emotions from its last hidden layer (multi-task learning). `model` keeps its own input and
    output and is what is exported; the emotion classifier exists only in training.

    The hypothesis it tested: the label alone lets the network put anger and sadness, or happiness
    and calm, on one side by whatever cue is cheapest (loudness), and naming the emotion would make
    the shared layers tell each from each other one. Under LOCO (weight 0.5) the network alone
    lost 0.044 of mean AUC, while its in-corpus validation AUC barely moved: the emotion
    categories it learned are the training corpora's own. Not adopted."""
    import keras
    from keras import layers

    features = [layer for layer in model.layers if isinstance(layer, layers.Dense)][-2].output
    out = layers.Dense(emotions, name="emotion")(features)  # logits
    return keras.Model(model.input, [model.output, out], name=f"{model.name}_multitask")


ARCHITECTURES = {"specmon": build_cnn, "specmon-centered": build_centered, "specmon-mel": build_mel,
                 "specmon-wide": build_wide, "v1": build_v1, "baseline": build_baseline}


def builder(name: str):
    """The builder of architecture `name`; SpecmonError naming the known ones otherwise."""
    if name not in ARCHITECTURES:
        raise SpecmonError(f"unknown architecture {name!r} (known: {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[name]


def layer_list(model) -> list[str]:
    """The model's layer types, input excluded (what the baseline test compares)."""
    return [type(layer).__name__ for layer in model.layers if type(layer).__name__ != "InputLayer"]
