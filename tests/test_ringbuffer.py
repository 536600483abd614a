"""The SPSC ring buffer: order, wrap-around, counted drops, and a real producer thread."""

from __future__ import annotations

import threading

import numpy as np

from monitor.ringbuffer import RingBuffer


def test_fifo_and_wraparound() -> None:
    rb = RingBuffer(10)
    seq = np.arange(1000, dtype=np.float32)
    out, pos = [], 0
    for step in (3, 7, 9, 1, 10, 4) * 20:  # odd sizes force every wrap-around case
        pos += rb.write(seq[pos : pos + step])
        out.append(rb.read(max_n=5))
        assert 0 <= rb.available() <= rb.capacity
    out.append(rb.read())
    got = np.concatenate(out)
    assert np.array_equal(got, seq[: got.shape[0]])
    assert got.shape[0] == pos  # everything accepted came out


def test_overflow_drops_and_counts() -> None:
    rb = RingBuffer(8)
    assert rb.write(np.ones(5, np.float32)) == 5
    assert rb.write(np.full(6, 2, np.float32)) == 3  # only 3 free: 3 dropped, never blocks
    assert rb.dropped == 3
    assert rb.available() == 8
    assert np.array_equal(rb.read(), [1, 1, 1, 1, 1, 2, 2, 2])
    assert rb.read().shape == (0,)
    rb.write(np.zeros(4, np.float32))
    rb.clear()
    assert rb.available() == 0


def test_concurrent_producer_keeps_order() -> None:
    """A producer thread writing a ramp while the consumer reads: what arrives is in order, and
    received + dropped accounts for every sample sent."""
    rb = RingBuffer(4096)
    total = 400_000
    done = threading.Event()

    def produce() -> None:
        ramp = np.arange(total, dtype=np.float64).astype(np.float32)
        for i in range(0, total, 256):
            rb.write(ramp[i : i + 256])
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    got = []
    while not done.is_set() or rb.available():
        x = rb.read()
        if x.shape[0]:
            got.append(x)
    t.join()
    y = np.concatenate(got)
    assert y.shape[0] + rb.dropped == total
    # strictly increasing: nothing reordered or duplicated
    assert np.all(np.diff(y.astype(np.float64)) > 0)
