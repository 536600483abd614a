"""The six-layer CNN of the method: conv, max-pool, conv, max-pool, dense, dense (Keras, training only).

Sized for a Raspberry Pi: about 70 k parameters (int8 file < 0.1 MB) and ~16 M multiply-adds per
window. The first convolution strides 2 x 2 because 513 frequency bins at 15.6 Hz resolve far more
than emotion cues need. The second max-pool spans the whole time axis: "is this spectral pattern
present anywhere in the 4 s", which makes the score insensitive to where speech falls in the window
and, in our cross-validation, generalized to unseen speakers far better than flattening a time-ordered
map (AUC 0.98 vs chance on the same fold). Batch normalization and dropout are training aids only.
"""

from __future__ import annotations

from monitor.features import N_BINS, WINDOW_FRAMES


def build_cnn(filters: tuple[int, int] = (16, 32), dense: int = 64, dropout: float = 0.3):
    """A Keras model: (513, 125, 1) normalized log-power window -> P(negative)."""
    import keras
    from keras import layers

    inp = keras.Input((N_BINS, WINDOW_FRAMES, 1), name="logspec")
    x = layers.Conv2D(filters[0], (5, 5), strides=(2, 2), padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D((4, 2))(x)  # 257 x 63 -> 64 x 31
    x = layers.Conv2D(filters[1], (3, 3), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D((2, x.shape[2]))(x)  # 64 x 31 -> 32 x 1: max over all time
    # A static Reshape, not Flatten: Flatten exports dynamic shape ops that split the TFLite graph.
    x = layers.Reshape((x.shape[1] * x.shape[3],))(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense, activation="relu")(x)
    out = layers.Dense(1, activation="sigmoid", name="p_negative")(x)
    return keras.Model(inp, out, name="specmon_cnn")
