"""Lock-free single-producer single-consumer ring buffer of float32 samples.

The producer (the audio callback) only ever advances `_w`, the consumer (the pipeline loop) only
`_r`; both are ever-increasing integers, so `_w - _r` is the fill level without wrap-around
ambiguity. Rebinding an int attribute is atomic under the GIL, and each side publishes its counter
only after copying the data, so neither side ever waits for the other.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Fixed-capacity SPSC sample queue; a full buffer drops new samples and counts them."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, np.float32)
        self._w = 0  # samples ever written (producer-owned)
        self._r = 0  # samples ever read (consumer-owned)
        self.dropped = 0  # samples refused because the buffer was full (producer-owned)

    def available(self) -> int:
        """Samples waiting to be read."""
        return self._w - self._r

    def free(self) -> int:
        return self.capacity - (self._w - self._r)

    def write(self, x: np.ndarray) -> int:
        """Producer: copy as much of x as fits, drop (and count) the rest. Never blocks."""
        n_in = x.shape[0]
        w = self._w
        n = min(n_in, self.capacity - (w - self._r))
        if n > 0:
            i = w % self.capacity
            first = min(n, self.capacity - i)
            self._buf[i : i + first] = x[:first]
            if n > first:
                self._buf[: n - first] = x[first:n]
            self._w = w + n  # publish only after the data is in place
        if n < n_in:
            self.dropped += n_in - n
        return max(n, 0)

    def read(self, max_n: int | None = None) -> np.ndarray:
        """Consumer: take up to max_n waiting samples (all if None) as a new array."""
        r = self._r
        n = self._w - r
        if max_n is not None:
            n = min(n, max_n)
        if n <= 0:
            return np.zeros(0, np.float32)
        i = r % self.capacity
        first = min(n, self.capacity - i)
        out = np.empty(n, np.float32)
        out[:first] = self._buf[i : i + first]
        if n > first:
            out[first:] = self._buf[: n - first]
        self._r = r + n  # free the space only after copying out
        return out

    def clear(self) -> None:
        """Consumer: discard everything waiting (e.g. after a reconnect)."""
        self._r = self._w
