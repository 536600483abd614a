"""Lock-free single-producer single-consumer ring buffer of float32 samples, with holes.

The producer (the audio callback) only ever advances `_w`, the consumer (the pipeline loop) only
`_r`; both are ever-increasing integers, so `_w - _r` is the fill level without wrap-around
ambiguity. Rebinding an int attribute is atomic under the GIL, and each side publishes its counter
only after copying the data, so neither side ever waits for the other.

Lost audio is a *hole at a write position*: when the buffer is full the newest samples are dropped,
and when the driver reports an overrun the samples it discarded are missing. Either way the producer
appends (position, length) to a deque (append/popleft are atomic in CPython) after publishing every
sample before that position. read() never reads across a hole; take_hole() then reports its length,
so the consumer can give the audio before the hole its true time and start afresh after it.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class RingBuffer:
    """Fixed-capacity SPSC sample queue; a full buffer drops new samples and records the hole."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, np.float32)
        self._w = 0  # samples ever written (producer-owned)
        self._r = 0  # samples ever read (consumer-owned)
        self.dropped = 0  # samples refused because the buffer was full (producer-owned)
        self.lost = 0  # samples lost upstream (driver overruns), as reported by mark_hole()
        self._holes: deque[tuple[int, int, bool]] = deque()  # (write position, samples, by driver)

    def available(self) -> int:
        """Samples waiting to be read (holes included as boundaries, not as samples)."""
        return self._w - self._r

    def free(self) -> int:
        return self.capacity - (self._w - self._r)

    def write(self, x: np.ndarray) -> int:
        """Producer: copy as much of x as fits, drop the rest (a hole after what fit). Never blocks."""
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
        n = max(n, 0)
        if n < n_in:
            self.dropped += n_in - n
            self._holes.append((w + n, n_in - n, False))  # after publishing what came before it
        return n

    def mark_hole(self, n: int) -> None:
        """Producer: n samples are missing at the current write position (e.g. a driver overrun)."""
        if n > 0:
            self.lost += n
            self._holes.append((self._w, int(n), True))

    def _limit(self) -> int:
        """How far the consumer may read: the published write position, or the first hole's."""
        w = self._w  # read before the holes: a hole behind w was appended before w moved past it
        if self._holes:
            w = min(w, self._holes[0][0])
        return w

    def read(self, max_n: int | None = None) -> np.ndarray:
        """Consumer: take up to max_n waiting samples (all if None) up to the next hole."""
        r = self._r
        n = self._limit() - r
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

    def take_hole(self) -> tuple[int, int]:
        """Consumer: samples missing at the current read position, as (dropped because the buffer
        was full, lost upstream); (0, 0) if none. Forgets them."""
        full = upstream = 0
        while self._holes and self._holes[0][0] <= self._r:
            _, n, by_driver = self._holes.popleft()
            if by_driver:
                upstream += n
            else:
                full += n
        return full, upstream

    def clear(self) -> int:
        """Consumer: discard everything waiting (e.g. after a device loss). Returns the samples
        discarded, holes included, so the caller can count them in the gap."""
        w = self._w
        n = w - self._r
        self._r = w
        while self._holes and self._holes[0][0] <= w:
            n += self._holes.popleft()[1]
        return n
